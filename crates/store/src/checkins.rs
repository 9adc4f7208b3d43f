//! Check-ins: the link a member opens, the submission (self-service or at a counter),
//! and the outflow side's decision, which joins the check-in to the member's flow.

use chrono::{DateTime, Utc};
use kite_domain::checkin::{self, Checkin, HomeClaim, LinkKind, Seeker};
use kite_domain::{id_number, org, CheckinChannel, CheckinScope, CheckinStatus, OrgKind, OrgStatus, ServicePointLevel};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Record};
use crate::db::{bind_args, Arg};
use crate::messages::{self, CodeCheck};
use crate::{exec, flows, members, on, orgs, service_points, Org, Page, Store, StoreError, Tx};

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

fn reference(id: i64) -> String {
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
     c.decision_note, c.version, c.created_at \
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

async fn by_request_key(tx: &mut Tx, key: &str) -> Result<Option<CheckinRecord>, StoreError> {
    one(tx, "c.request_key = $1", Arg::Text(key.to_string())).await
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

/// Who is submitting, for the record and the audit log.
pub(crate) struct Actor<'a> {
    pub user_id: Option<i64>,
    pub username: Option<&'a str>,
    pub client: Option<&'a str>,
}

pub(crate) struct Submission<'a> {
    pub target: &'a CheckinTarget,
    pub checkin: &'a Checkin,
    pub request_key: &'a str,
    pub channel: CheckinChannel,
    /// The one-time code's hash (self-service); counters vouch with the staff account.
    pub code_hash: Option<&'a str>,
}

/// Stores a check-in. A retried request (same key) answers with the first one; a
/// second person's waiting check-in replaces the earlier waiting one; the code is
/// spent in the same transaction as the check-in is written.
pub(crate) async fn submit(store: &Store, who: &Actor<'_>, s: &Submission<'_>) -> Result<CheckinRecord, StoreError> {
    let id_number = s.checkin.id_number.as_str();
    let mut tx = store.write().await?;
    if let Some(first) = by_request_key(&mut tx, s.request_key).await? {
        return if first.id_number == id_number {
            Ok(first)
        } else {
            Err(StoreError::Conflict("checkin.request_reused"))
        };
    }
    let inflow = inflow_org(&mut tx, s).await?;
    let code_id = match s.code_hash {
        None => None,
        Some(hash) => match messages::check_code(&mut tx, &s.checkin.phone, hash).await? {
            CodeCheck::Good(id) => Some(id),
            CodeCheck::Wrong(id) => {
                drop(tx);
                messages::count_wrong_code(store, id).await?;
                return Err(StoreError::invalid("code", "otp.wrong"));
            }
            CodeCheck::Dead => return Err(StoreError::invalid("code", "otp.expired")),
        },
    };
    // The home side: the record the number belongs to, else the organization claimed.
    let member = match members::id_by_id_number(&mut tx, id_number).await? {
        Some(id) => members::by_id(&mut tx, id).await?,
        None => None,
    };
    let claimed = match &s.checkin.home {
        HomeClaim::Code(code) => orgs::by_code(&mut tx, code).await?.filter(|o| o.status == OrgStatus::Active),
        HomeClaim::Text(_) => None,
    };
    let home: Option<Org> = match &member {
        Some(m) => orgs::by_code(&mut tx, &m.org_code).await?,
        None => claimed,
    };
    let home_text = match (&s.checkin.home, &member) {
        (HomeClaim::Text(t), _) => Some(t.clone()),
        (HomeClaim::Code(c), None) if home.is_none() => Some(c.clone()),
        _ => None,
    };
    let status = if home.is_some() { CheckinStatus::Pending } else { CheckinStatus::HomeUnknown };
    let name_matches = member
        .as_ref()
        .is_some_and(|m| kite_domain::text::name_key(&m.name) == kite_domain::text::name_key(&s.checkin.name));
    let now = Utc::now();
    exec!(
        &mut tx,
        sqlx::query(
            "UPDATE checkins SET status = 'superseded', version = version + 1, updated_at = $1 \
         WHERE id_number = $2 AND status IN ('pending', 'home_unknown')"
        )
        .bind(now)
        .bind(id_number)
    )?;
    let c = s.checkin;
    let res = on!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO checkins (request_key, channel, status, service_point_id, inflow_org_id, inflow_path, member_id, \
         name_matches, home_org_id, home_path, home_org_text, name, id_number, phone, division_code, address, employer, \
         occupation, entered_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
         RETURNING id")
        .bind(s.request_key).bind(s.channel.code()).bind(status.code()).bind(s.target.point_id).bind(inflow.id)
        .bind(&inflow.path).bind(member.as_ref().map(|m| m.id)).bind(name_matches).bind(home.as_ref().map(|o| o.id))
        .bind(home.as_ref().map(|o| o.path.as_str())).bind(&home_text).bind(&c.name).bind(id_number).bind(&c.phone)
        .bind(&c.division_code).bind(&c.address).bind(&c.employer).bind(&c.occupation).bind(who.user_id).bind(now)
        .fetch_one(conn).await);
    let id: i64 = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => {
            // A concurrent submission won: the same request answers with it.
            drop(tx);
            let mut tx = store.read().await?;
            return match by_request_key(&mut tx, s.request_key).await? {
                Some(first) if first.id_number == id_number => Ok(first),
                _ => Err(StoreError::Conflict("checkin.in_progress")),
            };
        }
        r => r?,
    };
    if let Some(code) = code_id {
        messages::use_code(&mut tx, code).await?;
    }
    let rec = by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
    audit::write(
        &mut tx,
        Record {
            user_id: who.user_id,
            username: who.username,
            client: who.client,
            action: "checkin.submit",
            outcome: "ok",
            target_type: "checkin",
            target_id: id.to_string(),
            before: None,
            after: serde_json::to_value(&rec).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(rec)
}

/// At an organization's link, that organization; at a point, the one picked or the point's own.
async fn inflow_org(tx: &mut Tx, s: &Submission<'_>) -> Result<Org, StoreError> {
    let picked = match (s.target.kind, &s.checkin.inflow_org_code) {
        (LinkKind::Point, Some(code)) => Some(code.as_str()),
        _ => None,
    };
    let o = match picked {
        Some(code) => orgs::by_code(tx, code).await?.ok_or(StoreError::invalid("inflow_org_code", "org.unknown"))?,
        None => orgs::by_id(tx, s.target.org_id).await?.ok_or(StoreError::NotFound)?,
    };
    if o.status != OrgStatus::Active {
        return Err(StoreError::invalid("inflow_org_code", "org.dissolved"));
    }
    Ok(o)
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
    let arg = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
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
    if let Some(c) = q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        let id: i64 = c.parse().map_err(|_| StoreError::invalid("cursor", "invalid"))?;
        let p = arg(&mut args, Arg::Int(id));
        filters.push(format!("c.id < {p}"));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
    let l = arg(&mut args, Arg::Int(limit + 1));
    let filter = if filters.is_empty() { "1 = 1".to_string() } else { filters.join(" AND ") };
    let sql = format!("{SELECT} WHERE {filter} ORDER BY c.id DESC LIMIT {l}");
    let rows: Vec<Row> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?;
    let mut items: Vec<CheckinRecord> = rows.into_iter().map(CheckinRecord::try_from).collect::<Result<_, _>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
