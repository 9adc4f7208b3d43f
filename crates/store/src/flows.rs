//! Flows (periods away from home).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use kite_domain::flow::{counts_as_mobile, mobile_cutoff, months_away, ListFilter, Return, Side, StatusFilter};
use kite_domain::{org, FlowReason, FlowStatus, Gender, Mobility};

use crate::checkins::CheckinRecord;
use crate::db::{arg, bind_args, Arg};
use crate::{exec, on, Departure, Flow, FlowEntry, Member, NewFlow, Org, Page, Store, StoreError, Tx};

#[derive(sqlx::FromRow)]
struct FlowRow {
    id: i64,
    member_id: i64,
    outflow_org_code: String,
    outflow_org_name: String,
    inflow_org_code: Option<String>,
    inflow_org_name: Option<String>,
    destination_division: String,
    destination_address: Option<String>,
    reason: String,
    left_on: NaiveDate,
    expected_months: Option<i64>,
    contact_phone: Option<String>,
    status: String,
    checked_in_at: Option<DateTime<Utc>>,
    ended_on: Option<NaiveDate>,
    note: Option<String>,
    return_note: Option<String>,
    mobile: bool,
    version: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<FlowRow> for Flow {
    type Error = StoreError;
    fn try_from(r: FlowRow) -> Result<Self, StoreError> {
        let bad = |w: &str, v: &str| StoreError::Config(format!("unexpected {w} {v:?} in the database"));
        Ok(Flow {
            reason: FlowReason::from_code(&r.reason).ok_or_else(|| bad("reason", &r.reason))?,
            status: FlowStatus::from_code(&r.status).ok_or_else(|| bad("status", &r.status))?,
            id: r.id,
            member_id: r.member_id,
            outflow_org_code: r.outflow_org_code,
            outflow_org_name: r.outflow_org_name,
            inflow_org_code: r.inflow_org_code,
            inflow_org_name: r.inflow_org_name,
            destination_division: r.destination_division,
            destination_address: r.destination_address,
            left_on: r.left_on,
            expected_months: r.expected_months,
            contact_phone: r.contact_phone,
            checked_in_at: r.checked_in_at,
            ended_on: r.ended_on,
            note: r.note,
            return_note: r.return_note,
            mobile: r.mobile,
            version: r.version,
            created_at: r.created_at,
        })
    }
}

pub(crate) async fn by_member(tx: &mut Tx, member_id: i64) -> Result<Vec<Flow>, StoreError> {
    let rows: Vec<FlowRow> = on!(tx, c => sqlx::query_as(
        "SELECT f.id, f.member_id, o.code AS outflow_org_code, o.name AS outflow_org_name, \
         i.code AS inflow_org_code, i.name AS inflow_org_name, f.destination_division, f.destination_address, \
         f.reason, f.left_on, f.expected_months, f.contact_phone, f.status, f.checked_in_at, f.ended_on, f.note, \
         f.return_note, f.mobile, f.version, f.created_at FROM flows f JOIN organizations o ON o.id = f.outflow_org_id \
         LEFT JOIN organizations i ON i.id = f.inflow_org_id WHERE f.member_id = $1 ORDER BY f.left_on DESC, f.id DESC")
        .bind(member_id).fetch_all(c).await)?;
    rows.into_iter().map(Flow::try_from).collect()
}

/// Records a departure: the member gets an open flow from the formal organization.
pub(crate) async fn record_departure(
    tx: &mut Tx,
    m: &Member,
    org_id: i64,
    d: &Departure,
    by: i64,
) -> Result<i64, StoreError> {
    if m.mobility.is_away() {
        return Err(StoreError::Conflict("flow.already_open"));
    }
    let path = crate::orgs::lock_path(tx, org_id).await?;
    let now = Utc::now();
    let res = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO flows (member_id, outflow_org_id, outflow_path, destination_division, destination_address, \
         reason, left_on, expected_months, contact_phone, status, note, created_by, created_at, updated_at, mobile) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) RETURNING id")
        .bind(m.id).bind(org_id).bind(&path).bind(&d.destination_division).bind(&d.destination_address)
        .bind(d.reason.code()).bind(d.left_on).bind(d.expected_months).bind(&d.contact_phone)
        .bind(FlowStatus::NotCheckedIn.code()).bind(&d.note).bind(by).bind(now)
        .bind(counts_as_mobile(d.left_on, crate::today())).fetch_one(c).await);
    let id: i64 = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("flow.already_open")),
        r => r?,
    };
    crate::orgs::adjust_counts(tx, org_id, 0, 1, 0).await?;
    crate::members::set_mobility(tx, m.id, Mobility::NotCheckedIn).await?;
    Ok(id)
}

/// The member's open flow and its inflow organization, if any.
pub(crate) async fn open_for(tx: &mut Tx, member_id: i64) -> Result<Option<(i64, Option<i64>)>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, inflow_org_id FROM flows WHERE member_id = $1 \
         AND status IN ('not_checked_in', 'checked_in', 'lost_contact')")
        .bind(member_id).fetch_optional(c).await)?)
}

/// The organization the member's open flow is checked in to, if it is.
pub(crate) async fn checked_in_to(tx: &mut Tx, member_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT inflow_org_id FROM flows WHERE member_id = $1 AND status = 'checked_in'")
        .bind(member_id).fetch_optional(c).await)?
    .flatten())
}

/// Marks an open flow checked in to `inflow`; a flow closed meanwhile (a return committed
/// between reading and writing) is a conflict, not reopened.
pub(crate) async fn check_in(tx: &mut Tx, flow_id: i64, inflow: &Org) -> Result<(), StoreError> {
    let now = Utc::now();
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE flows SET inflow_org_id = $1, inflow_path = $2, status = $3, checked_in_at = $4, \
         version = version + 1, updated_at = $4 WHERE id = $5 \
         AND status IN ('not_checked_in', 'checked_in', 'lost_contact')"
        )
        .bind(inflow.id)
        .bind(&inflow.path)
        .bind(FlowStatus::CheckedIn.code())
        .bind(now)
        .bind(flow_id)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("flow.closed"));
    }
    Ok(())
}

/// Opens a flow for a member who checked in without a recorded departure: the check-in
/// gives the destination, and the day of the check-in stands for the departure.
pub(crate) async fn open_at_checkin(
    tx: &mut Tx,
    m: &Member,
    home: &Org,
    c: &CheckinRecord,
    inflow: &Org,
    by: i64,
) -> Result<i64, StoreError> {
    let now = Utc::now();
    let res = on!(tx, conn => sqlx::query_scalar(
        "INSERT INTO flows (member_id, outflow_org_id, outflow_path, inflow_org_id, inflow_path, destination_division, \
         destination_address, reason, left_on, contact_phone, status, checked_in_at, note, created_by, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $12, $12) RETURNING id")
        .bind(m.id).bind(home.id).bind(&home.path).bind(inflow.id).bind(&inflow.path).bind(&c.division_code)
        .bind(&c.address).bind(FlowReason::Other.code()).bind(crate::today()).bind(&c.phone)
        .bind(FlowStatus::CheckedIn.code()).bind(now).bind(c.reference.as_str()).bind(by).fetch_one(conn).await);
    match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => Err(StoreError::Conflict("flow.already_open")),
        r => r,
    }
}

/// Inserts flows for existing members (demo, benchmarks); counters need a recount after.
pub(crate) async fn bulk_insert(store: &Store, rows: &[NewFlow]) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    let (now, today) = (Utc::now(), crate::today());
    let mut inflow_orgs: HashMap<String, (i64, String)> = HashMap::new();
    // A chunk at a time: one query finds its members, one statement inserts its flows,
    // one per mobility value marks the members away.
    for chunk in rows.chunks(500) {
        let found: Vec<(i64, i64, String, String)> = on!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new("SELECT id, org_id, org_path, id_number FROM members WHERE id_number IN (");
            let mut list = q.separated(", ");
            for r in chunk {
                list.push_bind(r.id_number.as_str());
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await
        })?;
        let members: HashMap<&str, (i64, i64, &str)> =
            found.iter().map(|(id, org, path, number)| (number.as_str(), (*id, *org, path.as_str()))).collect();
        let mut resolved = Vec::with_capacity(chunk.len());
        for r in chunk {
            let member = *members.get(r.id_number.as_str()).ok_or(StoreError::NotFound)?;
            let inflow = match &r.inflow_org_code {
                Some(code) => {
                    if !inflow_orgs.contains_key(code) {
                        let o = crate::orgs::by_code(&mut tx, code).await?.ok_or(StoreError::NotFound)?;
                        inflow_orgs.insert(code.clone(), (o.id, o.path));
                    }
                    inflow_orgs.get(code).cloned()
                }
                None => None,
            };
            resolved.push((r, member, inflow));
        }
        on!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO flows (member_id, outflow_org_id, outflow_path, inflow_org_id, inflow_path, \
                 destination_division, destination_address, reason, left_on, expected_months, contact_phone, status, \
                 checked_in_at, note, created_at, updated_at, mobile) ",
            );
            q.push_values(&resolved, |mut b, (r, (member, org, path), inflow)| {
                let d = &r.departure;
                b.push_bind(*member)
                    .push_bind(*org)
                    .push_bind(*path)
                    .push_bind(inflow.as_ref().map(|o| o.0))
                    .push_bind(inflow.as_ref().map(|o| o.1.as_str()))
                    .push_bind(&d.destination_division)
                    .push_bind(&d.destination_address)
                    .push_bind(d.reason.code())
                    .push_bind(d.left_on)
                    .push_bind(d.expected_months)
                    .push_bind(&d.contact_phone)
                    .push_bind(r.status.code())
                    .push_bind((r.status == FlowStatus::CheckedIn).then_some(now))
                    .push_bind(&d.note)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(counts_as_mobile(d.left_on, today));
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        let mut away: HashMap<&'static str, Vec<i64>> = HashMap::new();
        for (r, (member, _, _), _) in &resolved {
            if r.status.is_open() {
                away.entry(Mobility::from_open_flow(Some(r.status)).code()).or_default().push(*member);
            }
        }
        for (mobility, ids) in &away {
            on!(&mut tx, c => {
                let mut q = sqlx::QueryBuilder::new("UPDATE members SET mobility = ");
                q.push_bind(*mobility).push(" WHERE id IN (");
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
    }
    tx.commit().await
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    member_id: i64,
    name: String,
    gender: String,
    id_number: String,
    phone: Option<String>,
    outflow_org_code: String,
    outflow_org_name: String,
    home_division: String,
    inflow_org_code: Option<String>,
    inflow_org_name: Option<String>,
    destination_division: String,
    destination_address: Option<String>,
    reason: String,
    left_on: NaiveDate,
    mobile: bool,
    status: String,
    checked_in_at: Option<DateTime<Utc>>,
    ended_on: Option<NaiveDate>,
    version: i64,
    outflow_path: String,
    inflow_path: Option<String>,
}

const ENTRY_SELECT: &str = "SELECT f.id, f.member_id, m.name, m.gender, m.id_number, \
    COALESCE(f.contact_phone, m.phone) AS phone, o.code AS outflow_org_code, o.name AS outflow_org_name, \
    o.division_code AS home_division, i.code AS inflow_org_code, i.name AS inflow_org_name, \
    f.destination_division, f.destination_address, f.reason, f.left_on, f.mobile, f.status, f.checked_in_at, \
    f.ended_on, f.version, f.outflow_path, f.inflow_path FROM flows f JOIN members m ON m.id = f.member_id \
    JOIN organizations o ON o.id = f.outflow_org_id LEFT JOIN organizations i ON i.id = f.inflow_org_id";

impl EntryRow {
    fn into_entry(self, today: NaiveDate) -> Result<FlowEntry, StoreError> {
        let bad = |w: &str, v: &str| StoreError::Config(format!("unexpected {w} {v:?} in the database"));
        Ok(FlowEntry {
            gender: Gender::from_code(&self.gender).ok_or_else(|| bad("gender", &self.gender))?,
            reason: FlowReason::from_code(&self.reason).ok_or_else(|| bad("reason", &self.reason))?,
            status: FlowStatus::from_code(&self.status).ok_or_else(|| bad("status", &self.status))?,
            id_number_masked: kite_domain::id_number::mask(&self.id_number),
            months_away: months_away(self.left_on, self.ended_on.unwrap_or(today)),
            id: self.id,
            member_id: self.member_id,
            name: self.name,
            phone: self.phone,
            outflow_org_code: self.outflow_org_code,
            outflow_org_name: self.outflow_org_name,
            home_division: self.home_division,
            inflow_org_code: self.inflow_org_code,
            inflow_org_name: self.inflow_org_name,
            destination_division: self.destination_division,
            destination_address: self.destination_address,
            left_on: self.left_on,
            mobile: self.mobile,
            checked_in_at: self.checked_in_at,
            ended_on: self.ended_on,
            version: self.version,
        })
    }
}

/// One flow as a list line, with the paths that decide who sees it.
pub(crate) async fn entry(tx: &mut Tx, id: i64) -> Result<Option<(FlowEntry, String, Option<String>)>, StoreError> {
    let sql = format!("{ENTRY_SELECT} WHERE f.id = $1");
    let row: Option<EntryRow> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    match row {
        Some(r) => {
            let (out, inflow) = (r.outflow_path.clone(), r.inflow_path.clone());
            Ok(Some((r.into_entry(crate::today())?, out, inflow)))
        }
        None => Ok(None),
    }
}

/// One page of the outflow or inflow list of the subtree at `root` (everything when `None`).
pub(crate) async fn list(
    tx: &mut Tx,
    root: Option<&str>,
    f: &ListFilter,
    cursor: Option<i64>,
    limit: i64,
) -> Result<Page<FlowEntry>, StoreError> {
    let mut filters: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let path = match f.side {
        Side::Outflow => "f.outflow_path",
        Side::Inflow => "f.inflow_path",
    };
    match root {
        Some(root) => {
            let (lo, hi) = org::subtree_range(root);
            let (lo, hi) = (arg(&mut args, Arg::Text(lo)), arg(&mut args, Arg::Text(hi)));
            filters.push(format!("{path} >= {lo} AND {path} < {hi}"));
        }
        None if f.side == Side::Inflow => filters.push("f.inflow_path IS NOT NULL".into()),
        None => {}
    }
    match f.status {
        StatusFilter::Open => filters.push("f.status IN ('not_checked_in', 'checked_in', 'lost_contact')".into()),
        StatusFilter::All => {}
        StatusFilter::Only(st) => {
            let p = arg(&mut args, Arg::Text(st.code().into()));
            filters.push(format!("f.status = {p}"));
        }
    }
    if let Some(d) = &f.division {
        let column = match f.side {
            Side::Outflow => "f.destination_division",
            Side::Inflow => "o.division_code",
        };
        let p = arg(&mut args, Arg::Text(format!("{d}%")));
        filters.push(format!("{column} LIKE {p}"));
    }
    if let Some(d) = f.left_from {
        let p = arg(&mut args, Arg::Date(d));
        filters.push(format!("f.left_on >= {p}"));
    }
    if let Some(d) = f.left_to {
        let p = arg(&mut args, Arg::Date(d));
        filters.push(format!("f.left_on <= {p}"));
    }
    if f.mobile_only {
        let p = arg(&mut args, Arg::Bool(true));
        filters.push(format!("f.mobile = {p}"));
    }
    if let Some(period) = &f.unevaluated {
        // Checked in before the period ended (in China Standard Time, as the evaluation
        // rule reads the check-in day), and no evaluation for it yet.
        let end = period.ends().succ_opt().unwrap_or(period.ends());
        let end = end.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - chrono::TimeDelta::hours(8);
        let end = arg(&mut args, Arg::Time(end));
        let label = arg(&mut args, Arg::Text(period.label()));
        filters.push(format!(
            "f.status = 'checked_in' AND f.checked_in_at < {end} AND NOT EXISTS \
             (SELECT 1 FROM inflow_evaluations e WHERE e.flow_id = f.id AND e.period = {label})"
        ));
    }
    if let Some(c) = cursor {
        let p = arg(&mut args, Arg::Int(c));
        filters.push(format!("f.id < {p}"));
    }
    let l = arg(&mut args, Arg::Int(limit + 1));
    let filter = if filters.is_empty() { "1 = 1".to_string() } else { filters.join(" AND ") };
    let sql = format!("{ENTRY_SELECT} WHERE {filter} ORDER BY f.id DESC LIMIT {l}");
    let rows: Vec<EntryRow> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?;
    let today = crate::today();
    let items: Vec<FlowEntry> = rows.into_iter().map(|r| r.into_entry(today)).collect::<Result<_, _>>()?;
    Ok(Page::by_id(items, limit, |r| r.id))
}

/// Ends an open flow with the member's return: the counters and the member's mobility
/// move with it, and the flow stays as history.
pub(crate) async fn close_with_return(
    tx: &mut Tx,
    flow: &Flow,
    outflow_org_id: i64,
    r: &Return,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE flows SET status = $1, ended_on = $2, return_note = $3, version = version + 1, \
             updated_at = $4 WHERE id = $5 AND version = $6 AND status IN ('not_checked_in', 'checked_in', 'lost_contact')"
        )
        .bind(FlowStatus::Returned.code())
        .bind(r.returned_on)
        .bind(&r.note)
        .bind(now)
        .bind(flow.id)
        .bind(flow.version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    crate::orgs::adjust_counts(tx, outflow_org_id, 0, -1, 0).await?;
    if flow.status == FlowStatus::CheckedIn {
        let inflow: Option<i64> = on!(tx, c => sqlx::query_scalar("SELECT inflow_org_id FROM flows WHERE id = $1").bind(flow.id).fetch_one(c).await)?;
        if let Some(i) = inflow {
            crate::orgs::adjust_counts(tx, i, 0, 0, -1).await?;
        }
    }
    crate::members::set_mobility(tx, flow.member_id, Mobility::Resident).await
}

/// The daily date rule: open flows whose departure is [`kite_domain::flow::MOBILE_AFTER_MONTHS`]
/// or more behind `today` count as mobile from now on. Returns how many changed.
/// Other members from the same home county checked in to the same organization as this
/// flow's member (the three-companions rule: enough of them should form a branch there).
pub(crate) async fn companions(tx: &mut Tx, flow_id: i64) -> Result<i64, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM flows f \
         JOIN organizations o ON o.id = f.outflow_org_id \
         JOIN flows g ON g.inflow_org_id = f.inflow_org_id AND g.id <> f.id AND g.status = 'checked_in' \
         JOIN organizations h ON h.id = g.outflow_org_id \
         WHERE f.id = $1 AND f.inflow_org_id IS NOT NULL \
         AND SUBSTR(h.division_code, 1, 6) = SUBSTR(o.division_code, 1, 6)")
        .bind(flow_id).fetch_one(c).await)?)
}

pub(crate) async fn mark_mobile(tx: &mut Tx, today: NaiveDate) -> Result<u64, StoreError> {
    Ok(exec!(
        tx,
        sqlx::query(
            // Literal FALSE, as in the partial index's predicate, so that the index serves.
            "UPDATE flows SET mobile = TRUE WHERE mobile = FALSE AND left_on <= $1 \
             AND status IN ('not_checked_in', 'checked_in', 'lost_contact')"
        )
        .bind(mobile_cutoff(today))
    )?)
}
