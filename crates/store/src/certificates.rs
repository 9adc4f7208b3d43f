//! Activity certificates: the rows, their steps as history, numbers, photos, the check
//! recorded on a check-in, and the public lookup. The rules are in
//! `kite_domain::certificate`; who may do what is decided in `guard/certificates.rs`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kite_domain::certificate::{self, Status, Step};
use kite_domain::{id_number, FlowReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(crate) use crate::history::By;
use crate::history::{self, Counter, History, StepRow};
use crate::{exec, on, StoreError, Tx};

/// A certificate as the issuing and the requesting sides see it; the identity number is masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateRecord {
    pub id: i64,
    /// Given at issue; `None` for a reverse request not yet issued.
    pub number: Option<String>,
    pub member_id: i64,
    pub member_name: String,
    pub id_number_masked: String,
    pub gender: kite_domain::Gender,
    pub ethnicity: String,
    /// The organization holding the member's formal record.
    pub member_org_name: String,
    pub issuer_org_code: String,
    pub issuer_org_name: String,
    /// The inflow organization that asked for it in reverse.
    pub requester_org_code: Option<String>,
    pub requester_org_name: Option<String>,
    pub destination_division: String,
    pub destination: Option<String>,
    pub reason: FlowReason,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub status: Status,
    /// Issued and within its period today.
    pub valid_today: bool,
    /// The last reason given for refusing or revoking.
    pub note: Option<String>,
    /// The number of the certificate this one replaces, and of the one that replaced it.
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
    pub issued_on: Option<NaiveDate>,
    pub has_photo: bool,
    /// A decision on a reverse request the requesting side has not opened yet.
    pub answer_unseen: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub issuer_org_id: i64,
    #[serde(skip)]
    pub issuer_path: String,
    #[serde(skip)]
    pub requester_path: Option<String>,
    #[serde(skip)]
    pub member_path: String,
}

/// One step of a certificate's history.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct CertificateStep {
    pub step: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// What anyone may learn from a certificate's number: whether it is valid, who issued it
/// for which period, and a masked name; nothing else about the member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicCertificate {
    pub number: String,
    pub valid: bool,
    pub status: Status,
    pub issuer_org_name: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub masked_name: String,
}

/// Which certificates to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Reverse requests waiting for the caller's subtree to issue or refuse.
    ToDecide,
    /// Certificates the caller's subtree issued, in any state after issue.
    Issued,
    /// Reverse requests the caller's subtree sent, in any state.
    Asked,
    /// Everything the caller's subtree issued or asked for.
    All,
}

impl Queue {
    pub const ALL: [Queue; 4] = [Queue::ToDecide, Queue::Issued, Queue::Asked, Queue::All];

    pub fn code(self) -> &'static str {
        match self {
            Queue::ToDecide => "to_decide",
            Queue::Issued => "issued",
            Queue::Asked => "asked",
            Queue::All => "all",
        }
    }

    pub fn from_code(code: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.code() == code.trim())
    }
}

/// How many certificates need the caller's attention (the overview page).
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct CertificateCounts {
    /// Reverse requests to issue or refuse.
    pub to_decide: i64,
    /// Decisions on the subtree's reverse requests not opened yet.
    pub answers_unseen: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    number: Option<String>,
    member_id: i64,
    member_name: String,
    id_number: String,
    gender: String,
    ethnicity: String,
    member_org_name: String,
    member_path: String,
    issuer_org_id: i64,
    issuer_org_code: String,
    issuer_org_name: String,
    issuer_path: String,
    requester_org_code: Option<String>,
    requester_org_name: Option<String>,
    requester_path: Option<String>,
    destination_division: String,
    destination: Option<String>,
    reason: String,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
    status: String,
    note: Option<String>,
    replaces: Option<String>,
    replaced_by: Option<String>,
    issued_on: Option<NaiveDate>,
    has_photo: bool,
    answer_unseen: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Config(format!("unknown certificate {what} {value:?} in the database"))
}

impl Row {
    fn record(self, today: NaiveDate) -> Result<CertificateRecord, StoreError> {
        let status = Status::from_code(&self.status).ok_or_else(|| bad("status", &self.status))?;
        let reason = FlowReason::from_code(&self.reason).ok_or_else(|| bad("reason", &self.reason))?;
        let gender = kite_domain::Gender::from_code(&self.gender).ok_or_else(|| bad("gender", &self.gender))?;
        Ok(CertificateRecord {
            id: self.id,
            number: self.number,
            member_id: self.member_id,
            member_name: self.member_name,
            id_number_masked: id_number::mask(&self.id_number),
            gender,
            ethnicity: self.ethnicity,
            member_org_name: self.member_org_name,
            issuer_org_code: self.issuer_org_code,
            issuer_org_name: self.issuer_org_name,
            requester_org_code: self.requester_org_code,
            requester_org_name: self.requester_org_name,
            destination_division: self.destination_division,
            destination: self.destination,
            reason,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            status,
            valid_today: certificate::valid_on(status, self.valid_from, self.valid_until, today),
            note: self.note,
            replaces: self.replaces,
            replaced_by: self.replaced_by,
            issued_on: self.issued_on,
            has_photo: self.has_photo,
            answer_unseen: self.answer_unseen,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            issuer_org_id: self.issuer_org_id,
            issuer_path: self.issuer_path,
            requester_path: self.requester_path,
            member_path: self.member_path,
        })
    }
}

const SELECT: &str = "SELECT c.id, c.number, c.member_id, m.name AS member_name, m.id_number, m.gender, m.ethnicity, \
     mo.name AS member_org_name, m.org_path AS member_path, \
     c.issuer_org_id, i.code AS issuer_org_code, i.name AS issuer_org_name, c.issuer_path, \
     r.code AS requester_org_code, r.name AS requester_org_name, c.requester_path, \
     c.destination_division, c.destination, c.reason, c.valid_from, c.valid_until, c.status, c.note, \
     p.number AS replaces, (SELECT n.number FROM certificates n WHERE n.replaces_id = c.id) AS replaced_by, \
     c.issued_on, EXISTS (SELECT 1 FROM certificate_photos ph WHERE ph.certificate_id = c.id) AS has_photo, \
     c.answer_unseen, c.version, c.created_at, c.updated_at \
     FROM certificates c JOIN members m ON m.id = c.member_id JOIN organizations mo ON mo.id = m.org_id \
     JOIN organizations i ON i.id = c.issuer_org_id LEFT JOIN organizations r ON r.id = c.requester_org_id \
     LEFT JOIN certificates p ON p.id = c.replaces_id";

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<CertificateRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE c.id = $1");
    let row: Option<Row> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    row.map(|r| r.record(crate::today())).transpose()
}

pub(crate) async fn by_number(tx: &mut Tx, number: &str) -> Result<Option<CertificateRecord>, StoreError> {
    if !crate::storable(number) {
        return Ok(None);
    }
    let sql = format!("{SELECT} WHERE c.number = $1");
    let row: Option<Row> = on!(tx, c => sqlx::query_as(&sql).bind(number).fetch_optional(c).await)?;
    row.map(|r| r.record(crate::today())).transpose()
}

/// One member's certificates and requests, newest first.
pub(crate) async fn for_member(tx: &mut Tx, member_id: i64) -> Result<Vec<CertificateRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE c.member_id = $1 ORDER BY c.id DESC");
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(member_id).fetch_all(c).await)?;
    let today = crate::today();
    rows.into_iter().map(|r| r.record(today)).collect()
}

/// The `WHERE` of a queue over `$1`/`$2`, the subtree's range.
fn queue_filter(queue: Queue) -> String {
    let issuer = "(c.issuer_path >= $1 AND c.issuer_path < $2)";
    let requester = "(c.requester_path >= $1 AND c.requester_path < $2)";
    match queue {
        Queue::ToDecide => format!("{issuer} AND c.status = 'requested'"),
        Queue::Issued => format!("{issuer} AND c.status NOT IN ('requested', 'refused')"),
        Queue::Asked => requester.to_string(),
        Queue::All => format!("({issuer} OR {requester})"),
    }
}

/// Certificates in a queue for the subtree at `root` (`None`: everywhere), newest first.
pub(crate) async fn list(
    tx: &mut Tx,
    root: Option<&str>,
    queue: Queue,
    limit: i64,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let (lo, hi) = kite_domain::org::scope_range(root);
    let sql = format!("{SELECT} WHERE {} ORDER BY c.id DESC LIMIT $3", queue_filter(queue));
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(&lo).bind(&hi).bind(limit).fetch_all(c).await)?;
    let today = crate::today();
    rows.into_iter().map(|r| r.record(today)).collect()
}

pub(crate) async fn counts(tx: &mut Tx, root: Option<&str>) -> Result<CertificateCounts, StoreError> {
    let (lo, hi) = kite_domain::org::scope_range(root);
    let to_decide =
        format!("SELECT CAST(COUNT(*) AS BIGINT) FROM certificates c WHERE {}", queue_filter(Queue::ToDecide));
    let unseen = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM certificates c WHERE {} AND c.answer_unseen",
        queue_filter(Queue::Asked)
    );
    let to_decide: i64 = on!(&mut *tx, c => sqlx::query_scalar(&to_decide).bind(&lo).bind(&hi).fetch_one(c).await)?;
    let answers_unseen: i64 = on!(&mut *tx, c => sqlx::query_scalar(&unseen).bind(&lo).bind(&hi).fetch_one(c).await)?;
    Ok(CertificateCounts { to_decide, answers_unseen })
}

pub(crate) async fn steps(tx: &mut Tx, id: i64) -> Result<Vec<CertificateStep>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT step, from_status, to_status, user_id, username, note, at FROM certificate_steps \
         WHERE certificate_id = $1 ORDER BY id")
        .bind(id).fetch_all(c).await)?)
}

async fn record_step(
    tx: &mut Tx,
    id: i64,
    (step, from, to): (&str, Option<Status>, Status),
    by: &By<'_>,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let row = StepRow {
        step,
        from: from.map(|s| s.code()),
        to: to.code(),
        user_id: by.user_id,
        username: by.username,
        note,
        at: Utc::now(),
    };
    history::record_step(tx, History::Certificate, id, &row).await
}

/// The next number of the issuing committee for `year`.
async fn next_number(tx: &mut Tx, org_id: i64, org_code: &str, year: i32) -> Result<String, StoreError> {
    let seq = history::next_number(tx, Counter::Certificates, org_id, year).await?;
    Ok(certificate::number(org_code, year, seq))
}

/// A new certificate or reverse request.
pub(crate) struct New<'a> {
    pub member_id: i64,
    pub issuer_org_id: i64,
    pub issuer_org_code: &'a str,
    pub issuer_path: &'a str,
    /// The inflow organization asking (id, path): a reverse request, left `requested`.
    pub requester: Option<(i64, &'a str)>,
    pub issue: &'a certificate::Issue,
    pub replaces_id: Option<i64>,
}

/// Inserts an issued certificate (with its number) or a reverse request, and its first
/// step; a member with one in force or asked for is a conflict.
pub(crate) async fn insert(tx: &mut Tx, n: &New<'_>, by: &By<'_>) -> Result<i64, StoreError> {
    let now = Utc::now();
    let today = crate::today();
    let (status, step) = match n.requester {
        Some(_) => (Status::Requested, "request"),
        None => (Status::Issued, Step::Issue.code()),
    };
    let number = match status {
        Status::Issued => Some(next_number(tx, n.issuer_org_id, n.issuer_org_code, today.year()).await?),
        _ => None,
    };
    let i = n.issue;
    let res = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO certificates (number, member_id, issuer_org_id, issuer_path, requester_org_id, requester_path, \
         destination_division, destination, reason, valid_from, valid_until, status, replaces_id, issued_on, \
         created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id")
        .bind(&number).bind(n.member_id).bind(n.issuer_org_id).bind(n.issuer_path)
        .bind(n.requester.map(|r| r.0)).bind(n.requester.map(|r| r.1))
        .bind(&i.destination_division).bind(&i.destination).bind(i.reason.code())
        .bind(i.valid_from).bind(i.valid_until).bind(status.code()).bind(n.replaces_id)
        .bind(number.as_ref().map(|_| today)).bind(by.user_id).bind(now).fetch_one(c).await);
    let id: i64 = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("certificate.already_open")),
        r => r?,
    };
    record_step(tx, id, (step, None, status), by, None).await?;
    Ok(id)
}

/// A step to apply to a certificate read at `version`.
pub(crate) struct Change<'a> {
    pub step: Step,
    pub to: Status,
    pub version: i64,
    pub note: Option<&'a str>,
}

/// Applies a step under optimistic concurrency (two people acting at once: one wins, the
/// other gets `stale_version`), with its history row. Issuing a request gives it its
/// number; a decision on a request is flagged for the requesting side.
pub(crate) async fn apply(tx: &mut Tx, c: &CertificateRecord, ch: &Change<'_>, by: &By<'_>) -> Result<(), StoreError> {
    let now = Utc::now();
    let today = crate::today();
    let issuing = ch.step == Step::Issue;
    let number = match issuing {
        true => Some(next_number(tx, c.issuer_org_id, &c.issuer_org_code, today.year()).await?),
        false => None,
    };
    let answered = c.status == Status::Requested && c.requester_path.is_some();
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE certificates SET status = $1, number = COALESCE($2, number), issued_on = COALESCE($3, issued_on), \
             note = COALESCE($4, note), answer_unseen = $5, version = version + 1, updated_at = $6 \
             WHERE id = $7 AND version = $8"
        )
        .bind(ch.to.code())
        .bind(&number)
        .bind(issuing.then_some(today))
        .bind(if ch.step.needs_reason() { ch.note } else { None })
        .bind(answered || c.answer_unseen)
        .bind(now)
        .bind(c.id)
        .bind(ch.version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    record_step(tx, c.id, (ch.step.code(), Some(c.status), ch.to), by, ch.note).await
}

/// The requesting side has opened the decision on its request.
pub(crate) async fn mark_answer_seen(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    exec!(tx, sqlx::query("UPDATE certificates SET answer_unseen = FALSE WHERE id = $1").bind(id))?;
    Ok(())
}

/// A re-issued certificate takes the lost one's photo.
pub(crate) async fn copy_photo(tx: &mut Tx, from: i64, to: i64) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query(
            "INSERT INTO certificate_photos (certificate_id, content_type, content) \
             SELECT $1, content_type, content FROM certificate_photos WHERE certificate_id = $2"
        )
        .bind(to)
        .bind(from)
    )?;
    Ok(())
}

pub(crate) async fn set_photo(tx: &mut Tx, id: i64, content_type: &str, content: &[u8]) -> Result<(), StoreError> {
    exec!(tx, sqlx::query("DELETE FROM certificate_photos WHERE certificate_id = $1").bind(id))?;
    exec!(
        tx,
        sqlx::query("INSERT INTO certificate_photos (certificate_id, content_type, content) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(content_type)
            .bind(content)
    )?;
    Ok(())
}

pub(crate) async fn photo(tx: &mut Tx, id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT content_type, content FROM certificate_photos WHERE certificate_id = $1")
        .bind(id).fetch_optional(c).await)?)
}

/// At "received" the record has moved: the member's certificate in force no longer applies
/// and a request still open has nothing to issue for. Returns how many changed.
pub(crate) async fn void_for_member(tx: &mut Tx, member_id: i64, by: &By<'_>) -> Result<u64, StoreError> {
    let now = Utc::now();
    let open: Vec<(i64, String)> = on!(&mut *tx, c => sqlx::query_as(
        "SELECT id, status FROM certificates WHERE member_id = $1 AND status IN ('requested', 'issued')")
        .bind(member_id).fetch_all(c).await)?;
    for (id, status) in &open {
        let from = Status::from_code(status).ok_or_else(|| bad("status", status))?;
        let to = if from == Status::Issued { Status::Void } else { Status::Refused };
        // Guarded by the status read: a step committed meanwhile is a conflict to retry.
        let n = exec!(
            tx,
            sqlx::query(
                "UPDATE certificates SET status = $1, answer_unseen = (requester_path IS NOT NULL AND status = 'requested'), \
                 version = version + 1, updated_at = $2 WHERE id = $3 AND status = $4"
            )
            .bind(to.code())
            .bind(now)
            .bind(id)
            .bind(status)
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("stale_version"));
        }
        record_step(tx, *id, ("void_on_transfer", Some(from), to), by, None).await?;
    }
    Ok(open.len() as u64)
}

/// Issued certificates whose period ended before `today` become `expired` (the daily job,
/// and before a new one is issued to `member`), each with its history step. Returns how many.
pub(crate) async fn expire_lapsed(tx: &mut Tx, member: Option<i64>, today: NaiveDate) -> Result<u64, StoreError> {
    let now = Utc::now();
    let ids: Vec<i64> = on!(&mut *tx, c => sqlx::query_scalar(
        "UPDATE certificates SET status = 'expired', version = version + 1, updated_at = $1 \
         WHERE status = 'issued' AND valid_until < $2 AND ($3 IS NULL OR member_id = $3) RETURNING id")
        .bind(now).bind(today).bind(member).fetch_all(c).await)?;
    for id in &ids {
        record_step(tx, *id, ("expire", Some(Status::Issued), Status::Expired), &By::NOBODY, None).await?;
    }
    Ok(ids.len() as u64)
}

/// What the public lookup answers for a number; `None` when no certificate has it.
pub(crate) async fn public(tx: &mut Tx, number: &str) -> Result<Option<PublicCertificate>, StoreError> {
    Ok(by_number(tx, number).await?.map(|c| PublicCertificate {
        number: c.number.clone().unwrap_or_default(),
        valid: c.valid_today,
        status: c.status,
        issuer_org_name: c.issuer_org_name,
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        masked_name: certificate::masked_name(&c.member_name),
    }))
}

/// What a flow's page says about the member's certificate: the one in force (or asked for)
/// and the last one the inflow side checked at a check-in of this flow.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct FlowCertificate {
    pub number: Option<String>,
    pub status: Option<Status>,
    pub valid_until: Option<NaiveDate>,
    pub valid_today: bool,
    pub checked_number: Option<String>,
    pub checked_in_system: Option<bool>,
    pub checked_at: Option<DateTime<Utc>>,
}

pub(crate) async fn for_flow(tx: &mut Tx, flow_id: i64, member_id: i64) -> Result<FlowCertificate, StoreError> {
    let open: Option<(Option<String>, String, NaiveDate, NaiveDate)> = on!(&mut *tx, c => sqlx::query_as(
        "SELECT number, status, valid_from, valid_until FROM certificates \
         WHERE member_id = $1 AND status IN ('requested', 'issued') ORDER BY id DESC LIMIT 1")
        .bind(member_id).fetch_optional(c).await)?;
    let checked: Option<(String, Option<bool>, Option<DateTime<Utc>>)> = on!(tx, c => sqlx::query_as(
        "SELECT certificate_number, certificate_in_system, certificate_checked_at FROM checkins \
         WHERE flow_id = $1 AND certificate_number IS NOT NULL ORDER BY certificate_checked_at DESC LIMIT 1")
        .bind(flow_id).fetch_optional(c).await)?;
    let mut f = FlowCertificate::default();
    if let Some((number, status, from, until)) = open {
        let status = Status::from_code(&status).ok_or_else(|| bad("status", &status))?;
        f.valid_today = certificate::valid_on(status, from, until, crate::today());
        (f.number, f.status, f.valid_until) = (number, Some(status), Some(until));
    }
    if let Some((number, in_system, at)) = checked {
        (f.checked_number, f.checked_in_system, f.checked_at) = (Some(number), in_system, at);
    }
    Ok(f)
}

/// A certificate checked at check-in: its number, whether it is one of the system's, who
/// checked it and when.
pub(crate) async fn record_check(
    tx: &mut Tx,
    checkin_id: i64,
    number: &str,
    in_system: bool,
    username: &str,
) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query(
            "UPDATE checkins SET certificate_number = $1, certificate_in_system = $2, certificate_checked_at = $3, \
             certificate_checked_by = $4 WHERE id = $5"
        )
        .bind(number)
        .bind(in_system)
        .bind(Utc::now())
        .bind(username)
        .bind(checkin_id)
    )?;
    Ok(())
}
