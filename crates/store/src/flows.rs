//! Flows (periods away from home).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use kite_domain::{FlowReason, FlowStatus, Mobility};

use crate::checkins::CheckinRecord;
use crate::{exec, on, Departure, Flow, Member, NewFlow, Org, Store, StoreError, Tx};

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
         f.version, f.created_at FROM flows f JOIN organizations o ON o.id = f.outflow_org_id \
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
         reason, left_on, expected_months, contact_phone, status, note, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id")
        .bind(m.id).bind(org_id).bind(&path).bind(&d.destination_division).bind(&d.destination_address)
        .bind(d.reason.code()).bind(d.left_on).bind(d.expected_months).bind(&d.contact_phone)
        .bind(FlowStatus::NotCheckedIn.code()).bind(&d.note).bind(by).bind(now).fetch_one(c).await);
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

/// Marks an open flow checked in to `inflow`.
pub(crate) async fn check_in(tx: &mut Tx, flow_id: i64, inflow: &Org) -> Result<(), StoreError> {
    let now = Utc::now();
    exec!(
        tx,
        sqlx::query(
            "UPDATE flows SET inflow_org_id = $1, inflow_path = $2, status = $3, checked_in_at = $4, \
         version = version + 1, updated_at = $4 WHERE id = $5"
        )
        .bind(inflow.id)
        .bind(&inflow.path)
        .bind(FlowStatus::CheckedIn.code())
        .bind(now)
        .bind(flow_id)
    )?;
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
    let now = Utc::now();
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
                 checked_in_at, note, created_at, updated_at) ",
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
                    .push_bind(now);
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
