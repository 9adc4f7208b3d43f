//! Storing a check-in. Everything that cannot race (the organizations, the member, the
//! code's row, an earlier answer to the same request key) is read on the read pool first,
//! so that the write transaction holds only what must be atomic: spending the code, the
//! supersede of a waiting check-in, the insert and its audit record.

use chrono::{DateTime, SubsecRound, Utc};
use kite_domain::checkin::{Checkin, HomeClaim, LinkKind};
use kite_domain::{id_number, CheckinChannel, CheckinStatus, OrgStatus};

use super::batch::Job;
use super::{reference, CheckinReceipt, CheckinRecord, CheckinTarget};
use crate::audit::{self, Record};
use crate::messages::{self, CodeCheck};
use crate::{exec, on, orgs, Store, StoreError, Tx};

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

/// An organization as a check-in records it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct OrgRef {
    id: i64,
    code: String,
    name: String,
    path: String,
}

#[derive(sqlx::FromRow)]
struct MemberRef {
    id: i64,
    name: String,
    org_id: i64,
    org_code: String,
    org_name: String,
    org_path: String,
}

/// A check-in ready to be written, with everything it needs resolved; owned, so that it
/// can wait in the writer's queue.
#[derive(Debug)]
pub(crate) struct Write {
    pub request_key: String,
    channel: CheckinChannel,
    status: CheckinStatus,
    /// The service point's id, code and name.
    point: Option<(i64, String, String)>,
    inflow: OrgRef,
    member_id: Option<i64>,
    name_matches: bool,
    home: Option<OrgRef>,
    home_text: Option<String>,
    checkin: Checkin,
    /// The one-time code to spend (self-service).
    code_id: Option<i64>,
    user_id: Option<i64>,
    username: Option<String>,
    client: Option<String>,
}

impl Write {
    pub fn id_number(&self) -> &str {
        self.checkin.id_number.as_str()
    }
}

/// What reading found before any write.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// The request key was answered before: the same answer again.
    Answer(CheckinReceipt),
    /// A wrong code: its attempt is counted (and committed), then the check-in is refused.
    WrongCode(i64),
    Write(Box<Write>),
}

pub(crate) fn wrong_code() -> StoreError {
    StoreError::invalid("code", "otp.wrong")
}

/// Reads what a submission needs, on the read pool. Refusals come in the order the
/// member should hear them: the request key's earlier answer, the organization, the code.
async fn prepare(tx: &mut Tx, who: &Actor<'_>, s: &Submission<'_>) -> Result<Prepared, StoreError> {
    let c = s.checkin;
    let id_number = c.id_number.as_str();
    if let Some((first_id_number, receipt)) = receipt_by_key(tx, s.request_key).await? {
        return if first_id_number == id_number {
            Ok(Prepared::Answer(receipt))
        } else {
            Err(StoreError::Conflict("checkin.request_reused"))
        };
    }
    let inflow = inflow_org(tx, s).await?;
    let code_id = match s.code_hash {
        None => None,
        Some(hash) => match messages::check_code(tx, &c.phone, hash).await? {
            CodeCheck::Good(id) => Some(id),
            CodeCheck::Wrong(id) => return Ok(Prepared::WrongCode(id)),
            CodeCheck::Dead => return Err(StoreError::invalid("code", "otp.expired")),
        },
    };
    // The home side: the record the number belongs to, else the organization claimed.
    let member: Option<MemberRef> = on!(&mut *tx, conn => sqlx::query_as(
        "SELECT m.id, m.name, o.id AS org_id, o.code AS org_code, o.name AS org_name, o.path AS org_path \
         FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.id_number = $1")
        .bind(id_number).fetch_optional(conn).await)?;
    let home = match (&member, &c.home) {
        (Some(m), _) => {
            Some(OrgRef { id: m.org_id, code: m.org_code.clone(), name: m.org_name.clone(), path: m.org_path.clone() })
        }
        (None, HomeClaim::Code(code)) => orgs::by_code(tx, code)
            .await?
            .filter(|o| o.status == OrgStatus::Active)
            .map(|o| OrgRef { id: o.id, code: o.code, name: o.name, path: o.path }),
        (None, HomeClaim::Text(_)) => None,
    };
    let home_text = match (&c.home, &member) {
        (HomeClaim::Text(t), _) => Some(t.clone()),
        (HomeClaim::Code(code), None) if home.is_none() => Some(code.clone()),
        _ => None,
    };
    let status = if home.is_some() { CheckinStatus::Pending } else { CheckinStatus::HomeUnknown };
    let name_matches =
        member.as_ref().is_some_and(|m| kite_domain::text::name_key(&m.name) == kite_domain::text::name_key(&c.name));
    let t = s.target;
    Ok(Prepared::Write(Box::new(Write {
        request_key: s.request_key.to_string(),
        channel: s.channel,
        status,
        point: t.point_id.map(|id| (id, t.code.clone(), t.name.clone())),
        inflow,
        member_id: member.map(|m| m.id),
        name_matches,
        home,
        home_text,
        checkin: c.clone(),
        code_id,
        user_id: who.user_id,
        username: who.username.map(str::to_string),
        client: who.client.map(str::to_string),
    })))
}

/// At an organization's link, that organization (found active with the link); at a point,
/// the one picked or the point's own.
async fn inflow_org(tx: &mut Tx, s: &Submission<'_>) -> Result<OrgRef, StoreError> {
    let t = s.target;
    let picked = match (t.kind, &s.checkin.inflow_org_code) {
        (LinkKind::Point, Some(code)) => Some(code.as_str()),
        _ => None,
    };
    let (o, active) = match picked {
        Some(code) => {
            let o = orgs::by_code(tx, code).await?.ok_or(StoreError::invalid("inflow_org_code", "org.unknown"))?;
            let active = o.status == OrgStatus::Active;
            (OrgRef { id: o.id, code: o.code, name: o.name, path: o.path }, active)
        }
        None => (
            OrgRef { id: t.org_id, code: t.org_code.clone(), name: t.org_name.clone(), path: t.org_path.clone() },
            t.org_active,
        ),
    };
    if !active {
        return Err(StoreError::invalid("inflow_org_code", "org.dissolved"));
    }
    Ok(o)
}

/// The answer given to a request key, with the ID number it was given for.
async fn receipt_by_key(tx: &mut Tx, key: &str) -> Result<Option<(String, CheckinReceipt)>, StoreError> {
    let row: Option<(i64, String, DateTime<Utc>, String)> = on!(tx, c => sqlx::query_as(
        "SELECT c.id, c.id_number, c.created_at, i.name FROM checkins c \
         JOIN organizations i ON i.id = c.inflow_org_id WHERE c.request_key = $1")
        .bind(key).fetch_optional(c).await)?;
    Ok(row.map(|(id, id_number, created_at, inflow_org_name)| {
        (id_number, CheckinReceipt { reference: reference(id), inflow_org_name, created_at })
    }))
}

/// After the insert met a unique index (the same key stored meanwhile, or another waiting
/// check-in of the same person in flight): the first answer if it is this request's.
pub(crate) async fn answer_after_conflict(tx: &mut Tx, w: &Write) -> Result<CheckinReceipt, StoreError> {
    match receipt_by_key(tx, &w.request_key).await? {
        Some((id_number, first)) if id_number == w.id_number() => Ok(first),
        _ => Err(StoreError::Conflict("checkin.in_progress")),
    }
}

/// The statements that must be atomic. A unique violation is returned as it is: the
/// caller rolls back what this wrote and answers with [`answer_after_conflict`].
pub(crate) async fn write(tx: &mut Tx, w: &Write) -> Result<CheckinReceipt, StoreError> {
    // Microseconds: what PostgreSQL keeps, so a retry's answer is the same to the digit.
    let now = Utc::now().trunc_subsecs(6);
    if let Some(code) = w.code_id {
        if !messages::spend_code(tx, code, now).await? {
            // Spent (or worn out) since it was read: by this very request sent twice at
            // once, whose answer is then this one's; otherwise the code is no longer good.
            return match receipt_by_key(tx, &w.request_key).await? {
                Some((id_number, first)) if id_number == w.id_number() => Ok(first),
                Some(_) => Err(StoreError::Conflict("checkin.request_reused")),
                None => Err(StoreError::invalid("code", "otp.expired")),
            };
        }
    }
    let c = &w.checkin;
    let id_number = c.id_number.as_str();
    exec!(
        &mut *tx,
        sqlx::query(
            "UPDATE checkins SET status = 'superseded', version = version + 1, updated_at = $1 \
         WHERE id_number = $2 AND status IN ('pending', 'home_unknown')"
        )
        .bind(now)
        .bind(id_number)
    )?;
    // The organizations as they are in this transaction: a move or a dissolution since
    // the request was read must not file the check-in under the old place.
    let fresh: Option<(OrgRef, String)> =
        on!(&mut *tx, conn => sqlx::query_as::<_, (i64, String, String, String, String)>(
        "SELECT id, code, name, path, status FROM organizations WHERE id = $1")
        .bind(w.inflow.id).fetch_optional(conn).await)?
        .map(|(id, code, name, path, status)| (OrgRef { id, code, name, path }, status));
    let inflow = match fresh {
        Some((o, status)) if status == OrgStatus::Active.code() => o,
        _ => return Err(StoreError::invalid("inflow_org_code", "org.dissolved")),
    };
    let home: Option<OrgRef> = match (w.member_id, &w.home) {
        (Some(member), _) => on!(&mut *tx, conn => sqlx::query_as(
            "SELECT o.id, o.code, o.name, o.path FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.id = $1")
            .bind(member).fetch_optional(conn).await)?,
        (None, Some(claimed)) => on!(&mut *tx, conn => sqlx::query_as(
            "SELECT id, code, name, path FROM organizations WHERE id = $1")
            .bind(claimed.id).fetch_optional(conn).await)?,
        (None, None) => None,
    };
    let point_id = w.point.as_ref().map(|p| p.0);
    let (home_id, home_path) = (home.as_ref().map(|o| o.id), home.as_ref().map(|o| o.path.as_str()));
    let id: i64 = on!(&mut *tx, conn => sqlx::query_scalar(
        "INSERT INTO checkins (request_key, channel, status, service_point_id, inflow_org_id, inflow_path, member_id, \
         name_matches, home_org_id, home_path, home_org_text, name, id_number, phone, division_code, address, employer, \
         occupation, entered_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
         RETURNING id")
        .bind(&w.request_key).bind(w.channel.code()).bind(w.status.code()).bind(point_id).bind(inflow.id)
        .bind(&inflow.path).bind(w.member_id).bind(w.name_matches).bind(home_id).bind(home_path)
        .bind(&w.home_text).bind(&c.name).bind(id_number).bind(&c.phone).bind(&c.division_code).bind(&c.address)
        .bind(&c.employer).bind(&c.occupation).bind(w.user_id).bind(now)
        .fetch_one(conn).await)?;
    // The record as a read of the row would give it, without reading it.
    let rec = CheckinRecord {
        id,
        reference: reference(id),
        channel: w.channel,
        status: w.status,
        service_point_code: w.point.as_ref().map(|p| p.1.clone()),
        service_point_name: w.point.as_ref().map(|p| p.2.clone()),
        inflow_org_code: inflow.code.clone(),
        inflow_org_name: inflow.name.clone(),
        member_id: w.member_id,
        name_matches: w.name_matches,
        home_org_code: home.as_ref().map(|o| o.code.clone()),
        home_org_name: home.as_ref().map(|o| o.name.clone()),
        home_org_text: w.home_text.clone(),
        name: c.name.clone(),
        id_number_masked: id_number::mask(id_number),
        phone: c.phone.clone(),
        division_code: c.division_code.clone(),
        address: c.address.clone(),
        employer: c.employer.clone(),
        occupation: c.occupation.clone(),
        decided_at: None,
        decision_note: None,
        version: 1,
        created_at: now,
        id_number: id_number.to_string(),
        home_path: home_path.map(str::to_string),
        inflow_path: inflow.path.clone(),
        inflow_org_id: inflow.id,
        service_point_id: point_id,
    };
    audit::write(
        tx,
        Record {
            user_id: w.user_id,
            username: w.username.as_deref(),
            client: w.client.as_deref(),
            action: "checkin.submit",
            outcome: "ok",
            target_type: "checkin",
            target_id: id.to_string(),
            before: None,
            after: serde_json::to_value(&rec).ok(),
        },
    )
    .await?;
    Ok(CheckinReceipt::from(&rec))
}

/// Stores a check-in. A retried request (same key) answers with the first one; a
/// second person's waiting check-in replaces the earlier waiting one; the code is
/// spent in the same transaction as the check-in is written, and a wrong code's
/// attempt is counted in a transaction that commits. The write goes through the
/// store's batching writer ([`super::batch`]).
pub(crate) async fn submit(store: &Store, who: &Actor<'_>, s: &Submission<'_>) -> Result<CheckinReceipt, StoreError> {
    let prepared = prepare(&mut store.read().await?, who, s).await?;
    finish(store, prepared).await
}

/// [`submit`] at a link not looked up yet: the link is read in the same read
/// transaction as the rest (an unknown or closed link is not found).
pub(crate) async fn submit_at_link(
    store: &Store,
    who: &Actor<'_>,
    (kind, code): (LinkKind, &str),
    checkin: &Checkin,
    request_key: &str,
    channel: CheckinChannel,
    code_hash: Option<&str>,
) -> Result<CheckinReceipt, StoreError> {
    let prepared = {
        let mut tx = store.read().await?;
        let target = super::target(&mut tx, kind, code).await?.ok_or(StoreError::NotFound)?;
        let s = Submission { target: &target, checkin, request_key, channel, code_hash };
        prepare(&mut tx, who, &s).await?
    };
    finish(store, prepared).await
}

async fn finish(store: &Store, prepared: Prepared) -> Result<CheckinReceipt, StoreError> {
    let job = match prepared {
        Prepared::Answer(receipt) => return Ok(receipt),
        Prepared::WrongCode(id) => Job::WrongCode(id),
        Prepared::Write(w) => Job::Write(w),
    };
    store.write_checkin(job).await
}
