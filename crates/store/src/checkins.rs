//! Check-ins: the link a member opens, the submission (self-service or at a counter),
//! and the outflow side's decision, which joins the check-in to the member's flow.

use chrono::{DateTime, Utc};
use kite_domain::checkin::{self, LinkKind, Seeker};
use kite_domain::{id_number, org, CheckinChannel, CheckinScope, CheckinStatus, OrgKind, OrgStatus, ServicePointLevel};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{arg, bind_args, Arg};
use crate::{exec, flows, members, on, orgs, service_points, Page, StoreError, Tx};

mod batch;
mod postgres;
mod submit;
pub(crate) use batch::CheckinWriter;
pub(crate) use submit::{submit, submit_at_link, Actor, Submission, Submit};

/// What a check-in link opens: the organization or service point, as the public sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckinTarget {
    pub kind: LinkKind,
    pub code: String,
    pub name: String,
    /// The service point's level; absent for an organization.
    pub level: Option<ServicePointLevel>,
    /// The organization that takes the member in (for a point: the one running it).
    pub org_code: String,
    pub org_name: String,
    pub division_code: String,
    pub address: Option<String>,
    pub hotline: Option<String>,
    pub opening_hours: Option<String>,
    #[serde(skip)]
    pub org_id: i64,
    #[serde(skip)]
    pub org_path: String,
    #[serde(skip)]
    pub point_id: Option<i64>,
    /// Whether that organization is active (a point's may have been dissolved).
    #[serde(skip)]
    pub org_active: bool,
}

/// A check-in as staff see it; the identity number is masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckinRecord {
    pub id: i64,
    /// The number the member is given, e.g. `BD00000042`.
    pub reference: String,
    pub channel: CheckinChannel,
    pub status: CheckinStatus,
    pub service_point_code: Option<String>,
    pub service_point_name: Option<String>,
    pub inflow_org_code: String,
    pub inflow_org_name: String,
    /// The member record the identity number belongs to, if any.
    pub member_id: Option<i64>,
    /// Whether the name given agrees with that record's.
    pub name_matches: bool,
    pub home_org_code: Option<String>,
    pub home_org_name: Option<String>,
    /// The home organization as typed, when it is not in the system.
    pub home_org_text: Option<String>,
    pub name: String,
    pub id_number_masked: String,
    pub phone: String,
    pub division_code: String,
    pub address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    /// The activity certificate the inflow side checked, whether it is one of the system's
    /// (otherwise issued outside and taken as shown), and who checked it when.
    pub certificate_number: Option<String>,
    pub certificate_in_system: Option<bool>,
    pub certificate_checked_at: Option<DateTime<Utc>>,
    pub certificate_checked_by: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub id_number: String,
    #[serde(skip)]
    pub home_path: Option<String>,
    #[serde(skip)]
    pub inflow_path: String,
    #[serde(skip)]
    pub inflow_org_id: i64,
    #[serde(skip)]
    pub service_point_id: Option<i64>,
}

/// What the member is told after submitting: nothing about whether the number was known.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckinReceipt {
    pub reference: String,
    pub inflow_org_name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&CheckinRecord> for CheckinReceipt {
    fn from(r: &CheckinRecord) -> Self {
        CheckinReceipt {
            reference: r.reference.clone(),
            inflow_org_name: r.inflow_org_name.clone(),
            created_at: r.created_at,
        }
    }
}

/// An organization suggested to a member, with why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuggestedOrg {
    pub code: String,
    pub name: String,
    pub kind: OrgKind,
    pub division_code: String,
    pub address: Option<String>,
    pub score: u32,
    /// `home_stationed`, `workplace`, `same_street`, `same_county`, `same_city`.
    pub reasons: Vec<String>,
}

/// A list of check-ins.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct CheckinQuery {
    /// `waiting` (pending or home_unknown), or one status code.
    pub status: Option<String>,
    /// `outflow`: check-ins of the caller's members; `inflow`: check-ins made to the caller's organizations.
    pub side: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn reference(id: i64) -> String {
    format!("BD{id:08}")
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    channel: String,
    status: String,
    service_point_id: Option<i64>,
    point_code: Option<String>,
    point_name: Option<String>,
    inflow_org_id: i64,
    inflow_org_code: String,
    inflow_org_name: String,
    inflow_path: String,
    member_id: Option<i64>,
    name_matches: bool,
    home_org_code: Option<String>,
    home_org_name: Option<String>,
    home_path: Option<String>,
    home_org_text: Option<String>,
    name: String,
    id_number: String,
    phone: String,
    division_code: String,
    address: Option<String>,
    employer: Option<String>,
    occupation: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    decision_note: Option<String>,
    certificate_number: Option<String>,
    certificate_in_system: Option<bool>,
    certificate_checked_at: Option<DateTime<Utc>>,
    certificate_checked_by: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for CheckinRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let bad = |w: &str, v: &str| StoreError::Config(format!("unexpected check-in {w} {v:?} in the database"));
        Ok(CheckinRecord {
            channel: CheckinChannel::from_code(&r.channel).ok_or_else(|| bad("channel", &r.channel))?,
            status: CheckinStatus::from_code(&r.status).ok_or_else(|| bad("status", &r.status))?,
            reference: reference(r.id),
            id: r.id,
            service_point_code: r.point_code,
            service_point_name: r.point_name,
            inflow_org_code: r.inflow_org_code,
            inflow_org_name: r.inflow_org_name,
            member_id: r.member_id,
            name_matches: r.name_matches,
            home_org_code: r.home_org_code,
            home_org_name: r.home_org_name,
            home_org_text: r.home_org_text,
            name: r.name,
            id_number_masked: id_number::mask(&r.id_number),
            phone: r.phone,
            division_code: r.division_code,
            address: r.address,
            employer: r.employer,
            occupation: r.occupation,
            decided_at: r.decided_at,
            decision_note: r.decision_note,
            certificate_number: r.certificate_number,
            certificate_in_system: r.certificate_in_system,
            certificate_checked_at: r.certificate_checked_at,
            certificate_checked_by: r.certificate_checked_by,
            version: r.version,
            created_at: r.created_at,
            id_number: r.id_number,
            home_path: r.home_path,
            inflow_path: r.inflow_path,
            inflow_org_id: r.inflow_org_id,
            service_point_id: r.service_point_id,
        })
    }
}

const SELECT: &str = "SELECT c.id, c.channel, c.status, c.service_point_id, sp.code AS point_code, \
     sp.name AS point_name, c.inflow_org_id, i.code AS inflow_org_code, i.name AS inflow_org_name, c.inflow_path, \
     c.member_id, c.name_matches, h.code AS home_org_code, h.name AS home_org_name, c.home_path, c.home_org_text, \
     c.name, c.id_number, c.phone, c.division_code, c.address, c.employer, c.occupation, c.decided_at, \
     c.decision_note, c.certificate_number, c.certificate_in_system, c.certificate_checked_at, \
     c.certificate_checked_by, c.version, c.created_at \
     FROM checkins c JOIN organizations i ON i.id = c.inflow_org_id \
     LEFT JOIN organizations h ON h.id = c.home_org_id \
     LEFT JOIN service_points sp ON sp.id = c.service_point_id";

async fn one(tx: &mut Tx, filter: &str, arg: Arg) -> Result<Option<CheckinRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE {filter}");
    let args = [arg];
    let row: Option<Row> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_optional(c).await)?;
    row.map(CheckinRecord::try_from).transpose()
}

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<CheckinRecord>, StoreError> {
    one(tx, "c.id = $1", Arg::Int(id)).await
}

/// The link's organization or service point, if it exists and is active.
pub(crate) async fn target(tx: &mut Tx, kind: LinkKind, code: &str) -> Result<Option<CheckinTarget>, StoreError> {
    if !crate::storable(code) {
        return Ok(None);
    }
    Ok(match kind {
        LinkKind::Org => {
            orgs::by_code(tx, code).await?.filter(|o| o.status == OrgStatus::Active).map(|o| CheckinTarget {
                kind,
                code: o.code.clone(),
                name: o.name.clone(),
                level: None,
                org_code: o.code,
                org_name: o.name,
                division_code: o.division_code,
                address: o.address,
                hotline: o.phone,
                opening_hours: None,
                org_id: o.id,
                org_path: o.path,
                point_id: None,
                org_active: true,
            })
        }
        LinkKind::Point => match service_points::by_code(tx, code).await?.filter(|p| p.status == "active") {
            None => None,
            Some(p) => {
                let o = orgs::by_code(tx, &p.org_code).await?.ok_or(StoreError::NotFound)?;
                Some(CheckinTarget {
                    kind,
                    code: p.code,
                    name: p.name,
                    level: Some(p.level),
                    org_code: o.code,
                    org_name: o.name,
                    division_code: p.division_code,
                    address: p.address,
                    hotline: p.hotline,
                    opening_hours: p.opening_hours,
                    org_active: o.status == OrgStatus::Active,
                    org_id: o.id,
                    org_path: o.path,
                    point_id: Some(p.id),
                })
            }
        },
    })
}

/// Organizations near the member, best first (at most `limit`).
pub(crate) async fn suggestions(
    tx: &mut Tx,
    seeker: &Seeker<'_>,
    limit: usize,
) -> Result<Vec<SuggestedOrg>, StoreError> {
    if seeker.division.len() < 4 || !seeker.division.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Vec::new());
    }
    let city = &seeker.division[..4];
    let candidates = orgs::in_division(tx, city, 500).await?;
    let roots: Vec<i64> = candidates.iter().filter_map(|o| org::ids(&o.path).first().copied()).collect();
    let root_divisions = orgs::divisions_of(tx, &roots).await?;
    let mut out: Vec<SuggestedOrg> = candidates
        .into_iter()
        .filter_map(|o| {
            let root = org::ids(&o.path).first().and_then(|id| root_divisions.get(id)).cloned().unwrap_or_default();
            let place =
                checkin::Place { division: &o.division_code, kind: o.kind, name: &o.name, root_division: &root };
            checkin::suggest(seeker, &place).map(|s| SuggestedOrg {
                code: o.code,
                name: o.name,
                kind: o.kind,
                division_code: o.division_code,
                address: o.address,
                score: s.score,
                reasons: s.reasons.iter().map(|r| r.code().to_string()).collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.code.cmp(&b.code)));
    out.truncate(limit);
    Ok(out)
}

/// A decision on a waiting check-in: by whom, with what note, and for a confirmed
/// member's check-in the record and the flow it joined.
pub(crate) struct Verdict<'a> {
    pub status: CheckinStatus,
    pub by: i64,
    pub note: Option<&'a str>,
    pub member_id: Option<i64>,
    pub flow_id: Option<i64>,
}

/// Marks a waiting check-in decided, if it is still at `version`.
pub(crate) async fn decide(tx: &mut Tx, id: i64, version: i64, v: &Verdict<'_>) -> Result<(), StoreError> {
    let now = Utc::now();
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE checkins SET status = $1, decided_by = $2, decided_at = $3, decision_note = $4, \
         member_id = COALESCE($5, member_id), flow_id = COALESCE($6, flow_id), version = version + 1, \
         updated_at = $3 WHERE id = $7 AND version = $8 AND status IN ('pending', 'home_unknown')"
        )
        .bind(v.status.code())
        .bind(v.by)
        .bind(now)
        .bind(v.note)
        .bind(v.member_id)
        .bind(v.flow_id)
        .bind(id)
        .bind(version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    Ok(())
}

/// Joins a confirmed check-in to the member's open flow (or opens one) and moves the
/// inflow counters; an earlier confirmed check-in of the same flow is superseded.
pub(crate) async fn join_flow(tx: &mut Tx, rec: &CheckinRecord, m: &crate::Member, by: i64) -> Result<i64, StoreError> {
    let inflow = orgs::by_id(tx, rec.inflow_org_id).await?.ok_or(StoreError::NotFound)?;
    let home = orgs::by_code(tx, &m.org_code).await?.ok_or(StoreError::NotFound)?;
    let flow_id = match flows::open_for(tx, m.id).await? {
        Some((flow_id, previous)) => {
            if previous != Some(inflow.id) {
                if let Some(p) = previous {
                    orgs::adjust_counts(tx, p, 0, 0, -1).await?;
                }
                orgs::adjust_counts(tx, inflow.id, 0, 0, 1).await?;
            }
            flows::check_in(tx, flow_id, &inflow).await?;
            flow_id
        }
        None => {
            let flow_id = flows::open_at_checkin(tx, m, &home, rec, &inflow, by).await?;
            orgs::adjust_counts(tx, home.id, 0, 1, 0).await?;
            orgs::adjust_counts(tx, inflow.id, 0, 0, 1).await?;
            flow_id
        }
    };
    exec!(
        tx,
        sqlx::query(
            "UPDATE checkins SET status = 'superseded', version = version + 1, updated_at = $1 \
         WHERE flow_id = $2 AND status = 'confirmed' AND id <> $3"
        )
        .bind(Utc::now())
        .bind(flow_id)
        .bind(rec.id)
    )?;
    members::set_mobility(tx, m.id, kite_domain::Mobility::CheckedIn).await?;
    Ok(flow_id)
}

pub(crate) async fn list(
    tx: &mut Tx,
    scope: &CheckinScope,
    q: &CheckinQuery,
) -> Result<Page<CheckinRecord>, StoreError> {
    let mut filters: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let side = q.side.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if side.is_some_and(|s| s != "outflow" && s != "inflow") {
        return Err(StoreError::invalid("side", "invalid"));
    }
    match scope {
        CheckinScope::Nothing => return Ok(Page { items: Vec::new(), next_cursor: None }),
        CheckinScope::All => {
            if side == Some("outflow") {
                filters.push("c.home_path IS NOT NULL".into());
            }
        }
        CheckinScope::Point(id) => {
            let p = arg(&mut args, Arg::Int(*id));
            filters.push(format!("c.service_point_id = {p}"));
        }
        CheckinScope::Subtree(root) => {
            let (lo, hi) = org::subtree_range(root);
            let (lo, hi) = (arg(&mut args, Arg::Text(lo)), arg(&mut args, Arg::Text(hi)));
            let home = format!("(c.home_path >= {lo} AND c.home_path < {hi})");
            let inflow = format!("(c.inflow_path >= {lo} AND c.inflow_path < {hi})");
            filters.push(match side {
                Some("outflow") => home,
                Some(_) => inflow,
                None => format!("({home} OR {inflow})"),
            });
        }
    }
    match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {}
        Some("waiting") => filters.push("c.status IN ('pending', 'home_unknown')".into()),
        Some(s) => match CheckinStatus::from_code(s) {
            Some(st) => {
                let p = arg(&mut args, Arg::Text(st.code().into()));
                filters.push(format!("c.status = {p}"));
            }
            None => return Err(StoreError::invalid("status", "invalid")),
        },
    }
    if let Some(id) = crate::models::id_cursor(q.cursor.as_deref())? {
        let p = arg(&mut args, Arg::Int(id));
        filters.push(format!("c.id < {p}"));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
    let l = arg(&mut args, Arg::Int(limit + 1));
    let filter = if filters.is_empty() { "1 = 1".to_string() } else { filters.join(" AND ") };
    let sql = format!("{SELECT} WHERE {filter} ORDER BY c.id DESC LIMIT {l}");
    let rows: Vec<Row> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?;
    let items: Vec<CheckinRecord> = rows.into_iter().map(CheckinRecord::try_from).collect::<Result<_, _>>()?;
    Ok(Page::by_id(items, limit, |r| r.id))
}
