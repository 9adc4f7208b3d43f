//! A check-in batch on PostgreSQL in two round trips, on a connection its writer keeps
//! out of the pool ([`connect`]; no pool check, no `BEGIN`, no `COMMIT`): one read of all
//! the batch needs, which
//! also draws the ids of its new rows from the table's identity sequence, and one
//! statement that writes it all. A statement commits whole or not at all, so that one
//! write is the batch's transaction; the read before it sees what the first statement
//! of a transaction would (READ COMMITTED gives each statement its own snapshot, and the
//! read takes no locks). Both statements take arrays, so each is one text whatever the
//! batch's size and stays prepared. When the write fails (a code spent meanwhile, a
//! unique index met), nothing of it is stored and the batch goes through a transaction
//! one request at a time ([`super::batch`]).

use chrono::Utc;
use kite_domain::checkin::MAX_ATTEMPTS;
use sqlx::PgConnection;

use sqlx::{Executor, PgPool};

use super::submit::{audit_record, decide_all, facts, facts_sql, now, FactRow, Prepared, Submit, Wants, Write};
use super::CheckinReceipt;
use crate::{audit, StoreError};

/// A connection of the writer's own, taken out of the pool, on which statements keep
/// their generic plan. Otherwise PostgreSQL plans the read and the write again for each
/// batch (their arrays' lengths vary), and that planning was a large part of its CPU
/// (BENCHMARKS.md, "Reading the check-in figures").
pub(super) async fn connect(pool: &PgPool) -> Result<PgConnection, StoreError> {
    let mut conn = pool.acquire().await?.detach();
    conn.execute("SET plan_cache_mode = force_generic_plan").await?;
    Ok(conn)
}

/// Reads what `subs` need and decides each, in order, with ids drawn for new rows (one
/// per submission).
pub(super) async fn prepare_many(
    conn: &mut PgConnection,
    subs: &[&Submit],
) -> Result<(Vec<Result<Prepared, StoreError>>, Vec<i64>), StoreError> {
    let wants = Wants::of(subs);
    let tests = std::array::from_fn(|i| format!("= ANY(${})", i + 2));
    let sql = facts_sql(
        tests,
        " UNION ALL SELECT 'n', nextval('checkins_id_seq'), CAST(NULL AS BIGINT), \
         CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
         CAST(NULL AS TEXT), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ) FROM generate_series(1, $7)",
    );
    let mut q = sqlx::query_as::<_, FactRow>(&sql).bind(Utc::now());
    for list in wants.lists() {
        q = q.bind(list.clone());
    }
    let rows = q.bind(subs.len() as i64).fetch_all(conn).await?;
    let (facts, ids) = facts(rows);
    if ids.len() != subs.len() {
        return Err(StoreError::NotStored("the sequence of check-ins gave too few ids".into()));
    }
    Ok((decide_all(subs, &facts), ids))
}

/// The batch's writes: wrong codes counted, codes spent, earlier waiting check-ins of
/// the same people superseded, the rows inserted with `ids` (in order), their audit
/// records. The supersede runs before the insert (the insert waits for its count), so
/// that the one-waiting-per-person index sees the old rows gone. The statement fails
/// (division by zero) when a code was spent meanwhile, and then stores nothing.
const WRITE: &str = "WITH wrong AS (\
    UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = ANY($1)), \
  spent AS (\
    UPDATE one_time_codes SET used_at = $2 \
    WHERE id = ANY($3) AND used_at IS NULL AND attempts < $4 AND expires_at > $2 RETURNING id), \
  gone AS (\
    UPDATE checkins SET status = 'superseded', version = version + 1, updated_at = $2 \
    WHERE id_number = ANY($18) AND status IN ('pending', 'home_unknown') RETURNING id), \
  added AS (\
    INSERT INTO checkins (id, request_key, channel, status, service_point_id, inflow_org_id, inflow_path, \
      member_id, name_matches, home_org_id, home_path, home_org_text, name, id_number, phone, division_code, \
      address, employer, occupation, entered_by, created_at, updated_at) \
    SELECT r.*, $2, $2 FROM UNNEST($5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], \
      $11::TEXT[], $12::BIGINT[], $13::BOOLEAN[], $14::BIGINT[], $15::TEXT[], $16::TEXT[], $17::TEXT[], \
      $18::TEXT[], $19::TEXT[], $20::TEXT[], $21::TEXT[], $22::TEXT[], $23::TEXT[], $24::BIGINT[]) AS r \
    WHERE (SELECT count(*) FROM gone) >= 0 RETURNING id), \
  logged AS (\
    INSERT INTO audit_log (at, user_id, username, client, action, outcome, target_type, target_id, before_data, \
      after_data) \
    SELECT $2, a.* FROM UNNEST($25::BIGINT[], $26::TEXT[], $27::TEXT[], $28::TEXT[], $29::TEXT[], $30::TEXT[], \
      $31::TEXT[], $32::TEXT[], $33::TEXT[]) AS a) \
SELECT 1 / CASE WHEN (SELECT count(*) FROM spent) = $34 AND (SELECT count(*) FROM added) = $35 THEN 1 ELSE 0 END";

/// Writes check-ins [`prepare_many`] decided, with one statement that commits. The
/// writes must not share a request key, an ID number or a code among themselves or with
/// `wrong_codes`. Any error leaves nothing written.
pub(super) async fn write_many(
    conn: &mut PgConnection,
    writes: &[&Write],
    ids: &[i64],
    wrong_codes: &[i64],
) -> Result<Vec<CheckinReceipt>, StoreError> {
    let now = now();
    let records: Vec<_> = writes.iter().zip(ids).map(|(w, id)| w.record(*id, now)).collect();
    let codes: Vec<i64> = writes.iter().filter_map(|w| w.code_id).collect();
    let logged: Vec<_> = writes.iter().zip(&records).map(|(w, rec)| audit::stored(audit_record(w, rec))).collect();
    let text = |f: &dyn Fn(&Write) -> Option<&str>| writes.iter().map(|w| f(w)).collect::<Vec<_>>();
    let number = |f: &dyn Fn(&Write) -> Option<i64>| writes.iter().map(|w| f(w)).collect::<Vec<_>>();
    let q = sqlx::query(WRITE)
        .bind(wrong_codes)
        .bind(now)
        .bind(&codes)
        .bind(MAX_ATTEMPTS)
        .bind(&ids[..writes.len()])
        .bind(text(&|w| Some(&w.request_key)))
        .bind(text(&|w| Some(w.channel.code())))
        .bind(text(&|w| Some(w.status.code())))
        .bind(number(&|w| w.point.as_ref().map(|p| p.0)))
        .bind(number(&|w| Some(w.inflow.id)))
        .bind(text(&|w| Some(&w.inflow.path)))
        .bind(number(&|w| w.member_id))
        .bind(writes.iter().map(|w| w.name_matches).collect::<Vec<_>>())
        .bind(number(&|w| w.home.as_ref().map(|o| o.id)))
        .bind(text(&|w| w.home.as_ref().map(|o| o.path.as_str())))
        .bind(text(&|w| w.home_text.as_deref()))
        .bind(text(&|w| Some(&w.checkin.name)))
        .bind(text(&|w| Some(w.id_number())))
        .bind(text(&|w| Some(&w.checkin.phone)))
        .bind(text(&|w| Some(&w.checkin.division_code)))
        .bind(text(&|w| w.checkin.address.as_deref()))
        .bind(text(&|w| w.checkin.employer.as_deref()))
        .bind(text(&|w| w.checkin.occupation.as_deref()))
        .bind(number(&|w| w.user_id))
        .bind(logged.iter().map(|(r, _, _)| r.user_id).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.username).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.client).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.action).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.outcome).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.target_type).collect::<Vec<_>>())
        .bind(logged.iter().map(|(r, _, _)| r.target_id.as_str()).collect::<Vec<_>>())
        .bind(logged.iter().map(|(_, b, _)| b.as_deref()).collect::<Vec<_>>())
        .bind(logged.iter().map(|(_, _, a)| a.as_deref()).collect::<Vec<_>>())
        .bind(codes.len() as i64)
        .bind(writes.len() as i64);
    q.execute(conn).await?;
    Ok(records.iter().map(CheckinReceipt::from).collect())
}
