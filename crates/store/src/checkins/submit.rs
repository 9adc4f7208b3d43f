//! Storing a check-in. A submission waits in the writer's queue ([`super::batch`]); the
//! writer reads what a whole batch needs with one statement per kind and one lookup per
//! distinct link ([`prepare_many`]),
//! decides each submission on its own ([`decide`]) and writes the batch with one
//! statement per kind ([`write_many`]), all in one transaction. [`write`] stores one
//! check-in at a time: the way back when a batch does not go through whole.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use kite_domain::checkin::{Checkin, HomeClaim, LinkKind};
use kite_domain::{id_number, CheckinChannel, CheckinStatus, OrgStatus};

use super::{reference, CheckinReceipt, CheckinRecord, CheckinTarget};
use crate::audit::{self, Record};
use crate::db::{in_list, padded, values_rows, ROWS_PER_STATEMENT};
use crate::messages::{self, CodeCheck, CodeRow};
use crate::{exec, on, Store, StoreError, Tx};

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

/// A submission as it waits for the writer: owned, and with its link not read yet.
#[derive(Debug)]
pub(crate) struct Submit {
    link: (LinkKind, String),
    checkin: Checkin,
    request_key: String,
    channel: CheckinChannel,
    code_hash: Option<String>,
    user_id: Option<i64>,
    username: Option<String>,
    client: Option<String>,
}

/// An organization as a check-in records it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct OrgRef {
    pub(super) id: i64,
    code: String,
    name: String,
    pub(super) path: String,
}

/// Where a link leads, as a check-in needs it.
#[derive(Debug, Clone)]
struct Link {
    kind: LinkKind,
    code: String,
    name: String,
    point_id: Option<i64>,
    /// The organization that takes the member in (for a point: the one running it).
    org: OrgRef,
    org_active: bool,
}

#[derive(sqlx::FromRow)]
struct OrgState {
    id: i64,
    code: String,
    name: String,
    path: String,
    status: String,
}

impl OrgState {
    fn active(&self) -> bool {
        self.status == OrgStatus::Active.code()
    }

    fn org(&self) -> OrgRef {
        OrgRef { id: self.id, code: self.code.clone(), name: self.name.clone(), path: self.path.clone() }
    }
}

struct MemberRef {
    id: i64,
    id_number: String,
    name: String,
    org_id: i64,
    org_code: String,
    org_name: String,
    org_path: String,
}

/// A check-in ready to be written, with everything it needs resolved.
#[derive(Debug)]
pub(crate) struct Write {
    pub request_key: String,
    pub(super) channel: CheckinChannel,
    pub(super) status: CheckinStatus,
    /// The service point's id, code and name.
    pub(super) point: Option<(i64, String, String)>,
    pub(super) inflow: OrgRef,
    pub(super) member_id: Option<i64>,
    pub(super) name_matches: bool,
    pub(super) home: Option<OrgRef>,
    pub(super) home_text: Option<String>,
    pub(super) checkin: Checkin,
    /// The one-time code to spend (self-service).
    pub code_id: Option<i64>,
    pub(super) user_id: Option<i64>,
    pub(super) username: Option<String>,
    pub(super) client: Option<String>,
}

impl Write {
    pub fn id_number(&self) -> &str {
        self.checkin.id_number.as_str()
    }

    /// The record this write stores as `id`, written at `now`.
    pub(super) fn record(&self, id: i64, now: DateTime<Utc>) -> CheckinRecord {
        record(self, id, &self.inflow, self.home.as_ref(), now)
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

/// Everything a batch of submissions needs to know, read with one statement.
pub(super) struct Facts {
    /// Open service points of the batch's links, by code, as links.
    points: HashMap<String, Link>,
    /// Earlier answers by request key, with the ID number each was given for.
    receipts: HashMap<String, (String, CheckinReceipt)>,
    /// Organizations of links, picked at a point or claimed as home, by code.
    orgs: HashMap<String, OrgState>,
    /// The latest code sent to each phone.
    codes: HashMap<String, CodeRow>,
    /// Member records by ID number.
    members: HashMap<String, MemberRef>,
}

impl Facts {
    /// Where `link` leads, if to an open organization or point.
    fn link(&self, (kind, code): &(LinkKind, String)) -> Option<Link> {
        match kind {
            LinkKind::Org => self.orgs.get(code).filter(|o| o.active()).map(|o| Link {
                kind: LinkKind::Org,
                code: o.code.clone(),
                name: o.name.clone(),
                point_id: None,
                org: o.org(),
                org_active: true,
            }),
            LinkKind::Point => self.points.get(code).cloned(),
        }
    }
}

/// The values a batch reads by: request keys, organization codes, phones with a code to
/// check, ID numbers and service point codes. Values the database could not store (a
/// NUL from a link's path) are left out: they match nothing.
pub(super) struct Wants<'a>([Vec<&'a str>; 5]);

impl<'a> Wants<'a> {
    pub(super) fn of(subs: &[&'a Submit]) -> Self {
        let (mut orgs, mut points) = (Vec::new(), Vec::new());
        for s in subs {
            match (s.link.0, &s.checkin.inflow_org_code) {
                (LinkKind::Org, _) => orgs.push(s.link.1.as_str()),
                (LinkKind::Point, picked) => {
                    points.push(s.link.1.as_str());
                    orgs.extend(picked.as_deref());
                }
            }
            if let HomeClaim::Code(code) = &s.checkin.home {
                orgs.push(code);
            }
        }
        let keys = subs.iter().map(|s| s.request_key.as_str()).collect();
        let phones = subs.iter().filter(|s| s.code_hash.is_some()).map(|s| s.checkin.phone.as_str()).collect();
        let ids = subs.iter().map(|s| s.checkin.id_number.as_str()).collect();
        let mut lists = [keys, orgs, phones, ids, points];
        for l in &mut lists {
            l.retain(|v| crate::storable(v));
            l.sort_unstable();
            l.dedup();
        }
        Wants(lists)
    }

    pub(super) fn lists(&self) -> &[Vec<&'a str>; 5] {
        &self.0
    }
}

/// Reads what `subs` need and decides each: `Ok` with one answer per submission, in
/// order, or `Err` when the transaction itself failed.
pub(crate) async fn prepare_many(
    tx: &mut Tx,
    subs: &[&Submit],
) -> Result<Vec<Result<Prepared, StoreError>>, StoreError> {
    let wants = Wants::of(subs);
    let lists: Vec<Vec<&str>> = wants.lists().iter().map(|l| padded(l)).collect();
    let mut next = 2;
    let tests = std::array::from_fn(|i| {
        let s = format!("IN ({})", in_list(next, lists[i].len()));
        next += lists[i].len();
        s
    });
    let sql = facts_sql(tests, "");
    let rows: Vec<FactRow> = on!(tx, c => {
        let mut q = sqlx::query_as(&sql).bind(Utc::now());
        for v in lists.iter().flatten() {
            q = q.bind(*v);
        }
        q.fetch_all(c).await
    })?;
    Ok(decide_all(subs, &facts(rows).0))
}

/// Each submission decided against what was read, in order.
pub(super) fn decide_all(subs: &[&Submit], f: &Facts) -> Vec<Result<Prepared, StoreError>> {
    subs.iter().map(|s| decide(s, f)).collect()
}

/// A row of [`facts_sql`]: its kind, then columns whose meaning depends on it.
pub(super) type FactRow = (
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// All a batch reads, in one statement: earlier answers to the keys, the organizations
/// by code, the phones' live codes, the members by ID number and the open service points
/// by code, as rows of one shape told apart by their first column; then `more` (further
/// rows of that shape). `tests` are the right-hand sides of the five lists' tests (an `IN`
/// list, or `= ANY` of an array), in the order of [`Wants`]; `$1` is the time now.
/// Codes live [`CODE_TTL`] from when they were sent, one at a time per phone, so a phone's
/// latest code is live exactly when it has a live code, and then it is the newest of those
/// (no subquery for the newest: without statistics, as on a new database, PostgreSQL
/// would scan the table).
///
/// [`CODE_TTL`]: kite_domain::checkin::CODE_TTL
pub(super) fn facts_sql([k, o, p, m, s]: [String; 5], more: &str) -> String {
    const NO_TEXT: &str = "CAST(NULL AS TEXT)";
    const NO_TIME: &str = "CAST(NULL AS TIMESTAMPTZ)";
    format!(
        "SELECT 'r', c.id, CAST(NULL AS BIGINT), c.request_key, c.id_number, i.name, {NO_TEXT}, {NO_TEXT},          {NO_TEXT}, c.created_at, {NO_TIME}          FROM checkins c JOIN organizations i ON i.id = c.inflow_org_id WHERE c.request_key {k}          UNION ALL SELECT 'o', id, CAST(NULL AS BIGINT), code, name, path, status, {NO_TEXT}, {NO_TEXT}, {NO_TIME},          {NO_TIME} FROM organizations WHERE code {o}          UNION ALL SELECT 'c', id, attempts, phone, code_hash, {NO_TEXT}, {NO_TEXT}, {NO_TEXT}, {NO_TEXT},          expires_at, used_at FROM one_time_codes WHERE phone {p} AND expires_at > $1          UNION ALL SELECT 'm', m.id, o.id, m.id_number, m.name, o.code, o.name, o.path, {NO_TEXT}, {NO_TIME},          {NO_TIME} FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.id_number {m}          AND m.mobility <> 'transferred_out'          UNION ALL SELECT 'p', s.id, o.id, s.code, s.name, o.code, o.name, o.path, o.status, {NO_TIME}, {NO_TIME}          FROM service_points s JOIN organizations o ON o.id = s.org_id WHERE s.code {s} AND s.status = 'active'{more}"
    )
}

/// The facts in `rows`, and the values of rows of kind `n` (ids drawn for new check-ins).
pub(super) fn facts(rows: Vec<FactRow>) -> (Facts, Vec<i64>) {
    let mut f = Facts {
        points: HashMap::new(),
        receipts: HashMap::new(),
        orgs: HashMap::new(),
        codes: HashMap::new(),
        members: HashMap::new(),
    };
    let mut drawn = Vec::new();
    for (kind, id, n, s1, s2, s3, s4, s5, s6, t1, t2) in rows {
        let text = |v: Option<String>| v.unwrap_or_default();
        match kind.as_str() {
            "r" => {
                let receipt = CheckinReceipt {
                    reference: reference(id),
                    inflow_org_name: text(s3),
                    created_at: t1.unwrap_or_default(),
                };
                f.receipts.insert(text(s1), (text(s2), receipt));
            }
            "o" => {
                let o = OrgState { id, code: text(s1), name: text(s2), path: text(s3), status: text(s4) };
                f.orgs.insert(o.code.clone(), o);
            }
            "c" => {
                let c = CodeRow {
                    id,
                    phone: text(s1),
                    code_hash: text(s2),
                    attempts: n.unwrap_or_default(),
                    expires_at: t1.unwrap_or_default(),
                    used_at: t2,
                };
                if f.codes.get(&c.phone).is_none_or(|l| l.id < c.id) {
                    f.codes.insert(c.phone.clone(), c);
                }
            }
            "m" => {
                let m = MemberRef {
                    id,
                    id_number: text(s1),
                    name: text(s2),
                    org_id: n.unwrap_or_default(),
                    org_code: text(s3),
                    org_name: text(s4),
                    org_path: text(s5),
                };
                f.members.insert(m.id_number.clone(), m);
            }
            "p" => {
                let code = text(s1);
                let link = Link {
                    kind: LinkKind::Point,
                    code: code.clone(),
                    name: text(s2),
                    point_id: Some(id),
                    org: OrgRef { id: n.unwrap_or_default(), code: text(s3), name: text(s4), path: text(s5) },
                    org_active: s6.as_deref() == Some(OrgStatus::Active.code()),
                };
                f.points.insert(code, link);
            }
            _ => drawn.push(id),
        }
    }
    (f, drawn)
}

/// One submission against what was read. Refusals come in the order the member should
/// hear them: the request key's earlier answer, the link, the organization, the code.
fn decide(s: &Submit, f: &Facts) -> Result<Prepared, StoreError> {
    let c = &s.checkin;
    let id_number = c.id_number.as_str();
    if let Some((first_id_number, receipt)) = f.receipts.get(&s.request_key) {
        return if first_id_number == id_number {
            Ok(Prepared::Answer(receipt.clone()))
        } else {
            Err(StoreError::Conflict("checkin.request_reused"))
        };
    }
    let t = f.link(&s.link).ok_or(StoreError::NotFound)?;
    let inflow = inflow_org(&t, c, &f.orgs)?;
    let code_id = match &s.code_hash {
        None => None,
        Some(hash) => match messages::judge(f.codes.get(&c.phone), hash) {
            CodeCheck::Good(id) => Some(id),
            CodeCheck::Wrong(id) => return Ok(Prepared::WrongCode(id)),
            CodeCheck::Dead => return Err(StoreError::invalid("code", "otp.expired")),
        },
    };
    // The home side: the record the number belongs to, else the organization claimed.
    let member = f.members.get(id_number);
    let home = match (member, &c.home) {
        (Some(m), _) => {
            Some(OrgRef { id: m.org_id, code: m.org_code.clone(), name: m.org_name.clone(), path: m.org_path.clone() })
        }
        (None, HomeClaim::Code(code)) => f.orgs.get(code).filter(|o| o.active()).map(OrgState::org),
        (None, HomeClaim::Text(_)) => None,
    };
    let home_text = match (&c.home, member) {
        (HomeClaim::Text(t), _) => Some(t.clone()),
        (HomeClaim::Code(code), None) if home.is_none() => Some(code.clone()),
        _ => None,
    };
    let status = if home.is_some() { CheckinStatus::Pending } else { CheckinStatus::HomeUnknown };
    let name_matches =
        member.is_some_and(|m| kite_domain::text::name_key(&m.name) == kite_domain::text::name_key(&c.name));
    Ok(Prepared::Write(Box::new(Write {
        request_key: s.request_key.clone(),
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
        user_id: s.user_id,
        username: s.username.clone(),
        client: s.client.clone(),
    })))
}

/// At an organization's link, that organization (found active with the link); at a point,
/// the one picked or the point's own.
fn inflow_org(t: &Link, c: &Checkin, orgs: &HashMap<String, OrgState>) -> Result<OrgRef, StoreError> {
    let picked = match (t.kind, &c.inflow_org_code) {
        (LinkKind::Point, Some(code)) => Some(code.as_str()),
        _ => None,
    };
    let (o, active) = match picked {
        Some(code) => {
            let o = orgs.get(code).ok_or(StoreError::invalid("inflow_org_code", "org.unknown"))?;
            (o.org(), o.active())
        }
        None => (t.org.clone(), t.org_active),
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

/// The columns of a check-in as written; `created_at` and `updated_at` both get `now`.
const INSERT: &str =
    "INSERT INTO checkins (request_key, channel, status, service_point_id, inflow_org_id, inflow_path, \
     member_id, name_matches, home_org_id, home_path, home_org_text, name, id_number, phone, division_code, address, \
     employer, occupation, entered_by, created_at, updated_at) VALUES";
const INSERT_COLUMNS: usize = 21;

/// Binds one row of [`INSERT`].
macro_rules! bind_row {
    ($q:expr, $w:expr, $inflow:expr, $home:expr, $now:expr) => {{
        let (w, c) = ($w, &$w.checkin);
        $q.bind(&w.request_key)
            .bind(w.channel.code())
            .bind(w.status.code())
            .bind(w.point.as_ref().map(|p| p.0))
            .bind($inflow.id)
            .bind(&$inflow.path)
            .bind(w.member_id)
            .bind(w.name_matches)
            .bind($home.map(|o: &OrgRef| o.id))
            .bind($home.map(|o: &OrgRef| o.path.as_str()))
            .bind(&w.home_text)
            .bind(&c.name)
            .bind(c.id_number.as_str())
            .bind(&c.phone)
            .bind(&c.division_code)
            .bind(&c.address)
            .bind(&c.employer)
            .bind(&c.occupation)
            .bind(w.user_id)
            .bind($now)
            .bind($now)
    }};
}

/// Waiting check-ins of these people give way to the new ones.
async fn supersede(tx: &mut Tx, id_numbers: &[&str], now: DateTime<Utc>) -> Result<(), StoreError> {
    let ids = padded(id_numbers);
    let sql = format!(
        "UPDATE checkins SET status = 'superseded', version = version + 1, updated_at = $1 \
         WHERE id_number IN ({}) AND status IN ('pending', 'home_unknown')",
        in_list(2, ids.len())
    );
    exec!(tx, {
        let mut q = sqlx::query(&sql).bind(now);
        for id in &ids {
            q = q.bind(*id);
        }
        q
    })?;
    Ok(())
}

/// The record as a read of the row would give it, without reading it.
fn record(w: &Write, id: i64, inflow: &OrgRef, home: Option<&OrgRef>, now: DateTime<Utc>) -> CheckinRecord {
    let c = &w.checkin;
    CheckinRecord {
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
        home_org_code: home.map(|o| o.code.clone()),
        home_org_name: home.map(|o| o.name.clone()),
        home_org_text: w.home_text.clone(),
        name: c.name.clone(),
        id_number_masked: id_number::mask(c.id_number.as_str()),
        phone: c.phone.clone(),
        division_code: c.division_code.clone(),
        address: c.address.clone(),
        employer: c.employer.clone(),
        occupation: c.occupation.clone(),
        decided_at: None,
        decision_note: None,
        certificate_number: None,
        certificate_in_system: None,
        certificate_checked_at: None,
        certificate_checked_by: None,
        version: 1,
        created_at: now,
        id_number: c.id_number.as_str().to_string(),
        home_path: home.map(|o| o.path.clone()),
        inflow_path: inflow.path.clone(),
        inflow_org_id: inflow.id,
        service_point_id: w.point.as_ref().map(|p| p.0),
    }
}

pub(super) fn audit_record<'a>(w: &'a Write, rec: &CheckinRecord) -> Record<'a> {
    Record {
        user_id: w.user_id,
        username: w.username.as_deref(),
        client: w.client.as_deref(),
        action: "checkin.submit",
        outcome: "ok",
        target_type: "checkin",
        target_id: rec.id.to_string(),
        before: None,
        after: serde_json::to_value(rec).ok(),
    }
}

/// Microseconds: what PostgreSQL keeps, so a retry's answer is the same to the digit.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One check-in on its own, with the organizations read again just before the insert
/// (on PostgreSQL each statement sees what others committed meanwhile). A unique
/// violation is returned as it is: the caller rolls back what this wrote and answers
/// with [`answer_after_conflict`].
pub(crate) async fn write(tx: &mut Tx, w: &Write) -> Result<CheckinReceipt, StoreError> {
    let now = now();
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
    supersede(tx, &[w.id_number()], now).await?;
    // The organizations as they are in this transaction: a move or a dissolution since
    // the request was read must not file the check-in under the old place.
    let fresh: Option<OrgState> = on!(&mut *tx, conn => sqlx::query_as(
        "SELECT id, code, name, path, status FROM organizations WHERE id = $1")
        .bind(w.inflow.id).fetch_optional(conn).await)?;
    let inflow = match fresh {
        Some(o) if o.active() => o.org(),
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
    let sql = format!("{INSERT} {} RETURNING id", values_rows(1, INSERT_COLUMNS));
    let id: i64 = on!(&mut *tx, conn => {
        let q = sqlx::query_scalar(&sql);
        bind_row!(q, w, &inflow, home.as_ref(), now).fetch_one(conn).await
    })?;
    let rec = record(w, id, &inflow, home.as_ref(), now);
    audit::write(tx, audit_record(w, &rec)).await?;
    Ok(CheckinReceipt::from(&rec))
}

/// Check-ins prepared in this very transaction by [`prepare_many`], with one statement
/// per kind: wrong codes counted, codes spent, earlier waiting check-ins superseded, the
/// rows inserted, their audit records. The writes must not share a request key, an ID
/// number or a code among themselves or with `wrong_codes`. Any error (a code spent
/// meanwhile, a unique index met) leaves the caller to undo this and go one by one.
pub(crate) async fn write_many(
    tx: &mut Tx,
    writes: &[&Write],
    wrong_codes: &[i64],
) -> Result<Vec<CheckinReceipt>, StoreError> {
    let now = now();
    messages::count_wrong_attempts(tx, wrong_codes).await?;
    let codes: Vec<i64> = writes.iter().filter_map(|w| w.code_id).collect();
    if messages::spend_codes(tx, &codes, now).await? != codes.len() as u64 {
        return Err(StoreError::Conflict("otp.spent_meanwhile"));
    }
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let id_numbers: Vec<&str> = writes.iter().map(|w| w.id_number()).collect();
    supersede(tx, &id_numbers, now).await?;
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(writes.len());
    for chunk in writes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!("{INSERT} {} RETURNING id, request_key", values_rows(chunk.len(), INSERT_COLUMNS));
        let rows: Vec<(i64, String)> = on!(&mut *tx, conn => {
            let mut q = sqlx::query_as(&sql);
            for w in chunk {
                q = bind_row!(q, *w, &w.inflow, w.home.as_ref(), now);
            }
            q.fetch_all(conn).await
        })?;
        ids.extend(rows.into_iter().map(|(id, key)| (key, id)));
    }
    let mut records = Vec::with_capacity(writes.len());
    for w in writes {
        let id = *ids.get(&w.request_key).ok_or(StoreError::Conflict("checkin.not_inserted"))?;
        records.push(w.record(id, now));
    }
    audit::write_many(tx, writes.iter().zip(&records).map(|(w, rec)| audit_record(w, rec)).collect()).await?;
    Ok(records.iter().map(CheckinReceipt::from).collect())
}

/// Stores a check-in. A retried request (same key) answers with the first one; a
/// second person's waiting check-in replaces the earlier waiting one; the code is
/// spent in the same transaction as the check-in is written, and a wrong code's
/// attempt is counted in a transaction that commits. The write goes through the
/// store's batching writer ([`super::batch`]), which reads the link again.
pub(crate) async fn submit(store: &Store, who: &Actor<'_>, s: &Submission<'_>) -> Result<CheckinReceipt, StoreError> {
    let link = (s.target.kind, s.target.code.as_str());
    submit_at_link(store, who, link, s.checkin, s.request_key, s.channel, s.code_hash).await
}

/// [`submit`] at a link not looked up yet (an unknown or closed link is not found).
pub(crate) async fn submit_at_link(
    store: &Store,
    who: &Actor<'_>,
    (kind, code): (LinkKind, &str),
    checkin: &Checkin,
    request_key: &str,
    channel: CheckinChannel,
    code_hash: Option<&str>,
) -> Result<CheckinReceipt, StoreError> {
    if !crate::storable(code) {
        return Err(StoreError::NotFound);
    }
    store
        .write_checkin(Box::new(Submit {
            link: (kind, code.to_string()),
            checkin: checkin.clone(),
            request_key: request_key.to_string(),
            channel,
            code_hash: code_hash.map(str::to_string),
            user_id: who.user_id,
            username: who.username.map(str::to_string),
            client: who.client.map(str::to_string),
        }))
        .await
}
