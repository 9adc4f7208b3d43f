//! Transfers of the formal record: the rows, their steps as history, letter numbers,
//! and the move of the member at "received". The rules are in `kite_domain::transfer`;
//! who may do what is decided in `guard/transfers.rs`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kite_domain::transfer::{self, Initiator, Overdue, Status, Step};
use kite_domain::{id_number, FlowStatus, Mobility};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::history::{self, By, Counter, History, StepRow};
use crate::models::Org;
use crate::{exec, on, orgs, StoreError, Tx};

/// A transfer as both sides see it; the identity number is masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransferRecord {
    pub id: i64,
    pub member_id: i64,
    pub member_name: String,
    pub id_number_masked: String,
    pub gender: kite_domain::Gender,
    pub ethnicity: String,
    /// Full or probationary member, as the letter states.
    pub category: kite_domain::MemberCategory,
    /// The month dues are paid up to (`2026-10`), given when the letter is issued.
    pub dues_paid_until: Option<String>,
    pub from_org_code: String,
    pub from_org_name: String,
    pub to_org_code: Option<String>,
    pub to_org_name: Option<String>,
    /// The receiving organization when it is outside the system.
    pub to_org_text: Option<String>,
    pub initiator: Initiator,
    pub status: Status,
    pub two_levels: bool,
    pub reason: Option<String>,
    pub letter_number: Option<String>,
    pub letter_issued_on: Option<NaiveDate>,
    pub letter_until: Option<NaiveDate>,
    pub received_on: Option<NaiveDate>,
    pub receipt_on: Option<NaiveDate>,
    /// The last reason given for returning or refusing.
    pub note: Option<String>,
    /// `letter_expired` or `receipt_missing` when overdue.
    pub overdue: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub from_org_id: i64,
    #[serde(skip)]
    pub from_path: String,
    #[serde(skip)]
    pub to_org_id: Option<i64>,
    #[serde(skip)]
    pub to_path: Option<String>,
    #[serde(skip)]
    pub flow_id: Option<i64>,
}

impl TransferRecord {
    pub fn state(&self) -> transfer::State {
        transfer::State {
            status: self.status,
            initiator: self.initiator,
            two_levels: self.two_levels,
            receiver_outside: self.to_org_id.is_none(),
            letter_until: self.letter_until,
        }
    }
}

/// One step of a transfer's history.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TransferStep {
    pub step: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which transfers to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Waiting for the caller's subtree to approve (as the sending side).
    ToApprove,
    /// Letters issued to the caller's subtree, waiting to be received.
    ToReceive,
    /// Letters expired and receipts a month late, either side.
    Overdue,
    /// Every transfer touching the caller's subtree.
    All,
}

impl Queue {
    pub const ALL: [Queue; 4] = [Queue::ToApprove, Queue::ToReceive, Queue::Overdue, Queue::All];

    pub fn code(self) -> &'static str {
        match self {
            Queue::ToApprove => "to_approve",
            Queue::ToReceive => "to_receive",
            Queue::Overdue => "overdue",
            Queue::All => "all",
        }
    }

    pub fn from_code(code: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.code() == code.trim())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    member_id: i64,
    member_name: String,
    id_number: String,
    gender: String,
    ethnicity: String,
    category: String,
    dues_paid_until: Option<String>,
    flow_id: Option<i64>,
    from_org_id: i64,
    from_org_code: String,
    from_org_name: String,
    from_path: String,
    to_org_id: Option<i64>,
    to_org_code: Option<String>,
    to_org_name: Option<String>,
    to_path: Option<String>,
    to_org_text: Option<String>,
    initiator: String,
    status: String,
    two_levels: bool,
    reason: Option<String>,
    letter_number: Option<String>,
    letter_issued_on: Option<NaiveDate>,
    letter_until: Option<NaiveDate>,
    received_on: Option<NaiveDate>,
    receipt_on: Option<NaiveDate>,
    note: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn record(self, today: NaiveDate) -> Result<TransferRecord, StoreError> {
        let status = Status::from_code(&self.status).ok_or_else(|| bad("status", &self.status))?;
        let initiator = Initiator::from_code(&self.initiator).ok_or_else(|| bad("initiator", &self.initiator))?;
        let overdue = transfer::overdue(status, self.letter_until, self.received_on, today).map(|o| match o {
            Overdue::LetterExpired => "letter_expired".to_string(),
            Overdue::ReceiptMissing => "receipt_missing".to_string(),
        });
        Ok(TransferRecord {
            id: self.id,
            member_id: self.member_id,
            member_name: self.member_name,
            id_number_masked: id_number::mask(&self.id_number),
            gender: kite_domain::Gender::from_code(&self.gender).ok_or_else(|| bad("gender", &self.gender))?,
            ethnicity: self.ethnicity,
            category: kite_domain::MemberCategory::from_code(&self.category)
                .ok_or_else(|| bad("category", &self.category))?,
            dues_paid_until: self.dues_paid_until,
            from_org_code: self.from_org_code,
            from_org_name: self.from_org_name,
            to_org_code: self.to_org_code,
            to_org_name: self.to_org_name,
            to_org_text: self.to_org_text,
            initiator,
            status,
            two_levels: self.two_levels,
            reason: self.reason,
            letter_number: self.letter_number,
            letter_issued_on: self.letter_issued_on,
            letter_until: self.letter_until,
            received_on: self.received_on,
            receipt_on: self.receipt_on,
            note: self.note,
            overdue,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            from_org_id: self.from_org_id,
            from_path: self.from_path,
            to_org_id: self.to_org_id,
            to_path: self.to_path,
            flow_id: self.flow_id,
        })
    }
}

fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Config(format!("unknown transfer {what} {value:?} in the database"))
}

const SELECT: &str = "SELECT t.id, t.member_id, m.name AS member_name, m.id_number, m.gender, m.ethnicity, \
     m.category, t.dues_paid_until, t.flow_id, \
     t.from_org_id, f.code AS from_org_code, f.name AS from_org_name, t.from_path, \
     t.to_org_id, o.code AS to_org_code, o.name AS to_org_name, t.to_path, t.to_org_text, \
     t.initiator, t.status, t.two_levels, t.reason, t.letter_number, t.letter_issued_on, t.letter_until, \
     t.received_on, t.receipt_on, t.note, t.version, t.created_at, t.updated_at \
     FROM transfers t JOIN members m ON m.id = t.member_id JOIN organizations f ON f.id = t.from_org_id \
     LEFT JOIN organizations o ON o.id = t.to_org_id";

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<TransferRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE t.id = $1");
    let row: Option<Row> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    row.map(|r| r.record(crate::today())).transpose()
}

/// How many transfers wait in each queue of a subtree (the overview page).
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct TransferCounts {
    pub to_approve: i64,
    pub to_receive: i64,
    pub overdue: i64,
}

/// The `WHERE` of a queue, over `$1`/`$2` (the subtree's range), `$3` (today) and `$4`
/// (a receipt is late when received before this day).
fn queue_filter(queue: Queue) -> String {
    let from = "(t.from_path >= $1 AND t.from_path < $2)";
    let to = "(t.to_path >= $1 AND t.to_path < $2)";
    match queue {
        Queue::ToApprove => format!("{from} AND t.status IN ('requested', 'first_approved')"),
        Queue::ToReceive => format!("{to} AND t.status = 'approved'"),
        Queue::Overdue => format!(
            "({from} OR {to}) AND ((t.status = 'approved' AND t.letter_until < $3) OR t.status = 'expired' \
             OR (t.status = 'received' AND t.received_on < $4))"
        ),
        Queue::All => format!("({from} OR {to})"),
    }
}

/// The bind values of [`queue_filter`] for the subtree at `root` (`None`: everywhere).
fn queue_args(root: Option<&str>) -> (String, String, NaiveDate, NaiveDate) {
    let today = crate::today();
    let (lo, hi) = kite_domain::org::scope_range(root);
    (lo, hi, today, transfer::receipt_late_before(today))
}

/// Transfers in a queue for the subtree at `root` (`None`: everywhere), newest first.
pub(crate) async fn list(
    tx: &mut Tx,
    root: Option<&str>,
    queue: Queue,
    limit: i64,
) -> Result<Vec<TransferRecord>, StoreError> {
    let (lo, hi, today, cutoff) = queue_args(root);
    let sql = format!("{SELECT} WHERE {} ORDER BY t.id DESC LIMIT $5", queue_filter(queue));
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(&lo).bind(&hi).bind(today).bind(cutoff)
        .bind(limit).fetch_all(c).await)?;
    rows.into_iter().map(|r| r.record(today)).collect()
}

/// One member's transfers, newest first.
pub(crate) async fn for_member(tx: &mut Tx, member_id: i64) -> Result<Vec<TransferRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE t.member_id = $1 ORDER BY t.id DESC");
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(member_id).fetch_all(c).await)?;
    let today = crate::today();
    rows.into_iter().map(|r| r.record(today)).collect()
}

pub(crate) async fn counts(tx: &mut Tx, root: Option<&str>) -> Result<TransferCounts, StoreError> {
    let (lo, hi, today, cutoff) = queue_args(root);
    let mut n = [0i64; 3];
    for (i, queue) in [Queue::ToApprove, Queue::ToReceive, Queue::Overdue].into_iter().enumerate() {
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM transfers t WHERE {}", queue_filter(queue));
        n[i] = on!(&mut *tx, c => sqlx::query_scalar(&sql).bind(&lo).bind(&hi).bind(today).bind(cutoff)
            .fetch_one(c).await)?;
    }
    Ok(TransferCounts { to_approve: n[0], to_receive: n[1], overdue: n[2] })
}

pub(crate) async fn steps(tx: &mut Tx, id: i64) -> Result<Vec<TransferStep>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT step, from_status, to_status, user_id, username, note, at FROM transfer_steps \
         WHERE transfer_id = $1 ORDER BY id")
        .bind(id).fetch_all(c).await)?)
}

/// What a new transfer starts from.
pub(crate) struct New<'a> {
    pub member_id: i64,
    pub flow_id: Option<i64>,
    pub from: &'a Org,
    pub to: Option<&'a Org>,
    pub to_text: Option<&'a str>,
    pub initiator: Initiator,
    pub reason: Option<&'a str>,
    pub user_id: i64,
    pub username: &'a str,
}

/// Inserts a requested transfer and its first step; a member with one in progress is a conflict.
pub(crate) async fn insert(tx: &mut Tx, n: &New<'_>) -> Result<i64, StoreError> {
    let now = Utc::now();
    let res = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO transfers (member_id, flow_id, from_org_id, from_path, to_org_id, to_path, to_org_text, \
         initiator, status, two_levels, reason, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', \
         (SELECT transfer_two_levels FROM organizations WHERE id = $3), $9, $10, $11, $11) RETURNING id")
        .bind(n.member_id).bind(n.flow_id).bind(n.from.id).bind(&n.from.path).bind(n.to.map(|o| o.id))
        .bind(n.to.map(|o| o.path.as_str())).bind(n.to_text).bind(n.initiator.code())
        .bind(n.reason).bind(n.user_id).bind(now).fetch_one(c).await);
    let id: i64 = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("transfer.in_progress")),
        r => r?,
    };
    let by = By { user_id: Some(n.user_id), username: Some(n.username) };
    record_step(tx, id, ("request", None, Status::Requested), &by, None, now).await?;
    Ok(id)
}

async fn record_step(
    tx: &mut Tx,
    id: i64,
    (step, from, to): (&str, Option<Status>, Status),
    by: &By<'_>,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (user_id, username) = (by.user_id, by.username);
    let row = StepRow { step, from: from.map(|s| s.code()), to: to.code(), user_id, username, note, at };
    history::record_step(tx, History::Transfer, id, &row).await
}

/// Letters past their last day on `today` expire (the daily job), each with its history
/// step; the sending side may still extend them. Returns how many.
pub(crate) async fn expire_letters(tx: &mut Tx, today: NaiveDate) -> Result<u64, StoreError> {
    let now = Utc::now();
    let ids: Vec<i64> = on!(&mut *tx, c => sqlx::query_scalar(
        "UPDATE transfers SET status = 'expired', version = version + 1, updated_at = $1 \
         WHERE status = 'approved' AND letter_until < $2 RETURNING id")
        .bind(now).bind(today).fetch_all(c).await)?;
    for id in &ids {
        record_step(tx, *id, (Step::Expire.code(), Some(Status::Approved), Status::Expired), &By::NOBODY, None, now)
            .await?;
    }
    Ok(ids.len() as u64)
}

/// A step to apply, with what it changes besides the status.
pub(crate) struct Change<'a> {
    pub step: Step,
    pub to: Status,
    pub version: i64,
    pub note: Option<&'a str>,
    /// A letter's last valid day: issued with an approval to `approved`, or extended.
    pub letter_until: Option<NaiveDate>,
    /// The dues month the letter states, given when it is issued.
    pub dues_paid_until: Option<&'a str>,
    pub user_id: i64,
    pub username: &'a str,
}

/// Applies a step under optimistic concurrency (two people acting at once: one wins,
/// the other gets `stale_version`), with its history row; at "received" (or "done" for a
/// receiving side outside the system) the member's formal organization changes and the
/// flow closes as transferred, in this same transaction.
pub(crate) async fn apply(tx: &mut Tx, t: &TransferRecord, c: &Change<'_>) -> Result<(), StoreError> {
    let now = Utc::now();
    let today = crate::today();
    let issuing = c.step == Step::Approve && c.to == Status::Approved;
    let letter_number = match issuing {
        true => {
            let seq = history::next_number(tx, Counter::Letters, t.from_org_id, today.year()).await?;
            Some(transfer::letter_number(&t.from_org_code, today.year(), seq))
        }
        false => None,
    };
    let issued_on = issuing.then_some(today);
    let received = matches!((c.step, c.to), (Step::Receive, Status::Received | Status::Done));
    let receipt = c.to == Status::Done;
    let note = if c.step.needs_reason() { c.note } else { None };
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE transfers SET status = $1, letter_number = COALESCE($2, letter_number), \
             letter_issued_on = COALESCE($3, letter_issued_on), letter_until = COALESCE($4, letter_until), \
             received_on = COALESCE($5, received_on), receipt_on = COALESCE($6, receipt_on), \
             note = COALESCE($7, note), \
             dues_paid_until = CASE WHEN $12 THEN $11 ELSE dues_paid_until END, version = version + 1, \
             updated_at = $8 WHERE id = $9 AND version = $10"
        )
        .bind(c.to.code())
        .bind(&letter_number)
        .bind(issued_on)
        .bind(c.letter_until)
        .bind(received.then_some(today))
        .bind(receipt.then_some(today))
        .bind(note)
        .bind(now)
        .bind(t.id)
        .bind(c.version)
        .bind(if issuing { c.dues_paid_until } else { None })
        .bind(issuing)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    let by = By { user_id: Some(c.user_id), username: Some(c.username) };
    record_step(tx, t.id, (c.step.code(), Some(t.status), c.to), &by, c.note, now).await?;
    if received {
        move_member(tx, t, today).await?;
    }
    Ok(())
}

/// The member's open flow ends as transferred (first, in the order `close_with_return`
/// takes its locks: the flow, then the counters), then the record moves to the receiving
/// organization. Outside the system the record stays where it was, marked transferred out.
async fn move_member(tx: &mut Tx, t: &TransferRecord, today: NaiveDate) -> Result<(), StoreError> {
    let now = Utc::now();
    let open: Option<(i64, i64, Option<i64>, String)> = on!(&mut *tx, c => sqlx::query_as(
        "SELECT id, outflow_org_id, inflow_org_id, status FROM flows WHERE member_id = $1 \
         AND status IN ('not_checked_in', 'checked_in', 'lost_contact')")
        .bind(t.member_id).fetch_optional(c).await)?;
    if let Some((flow_id, outflow_org, inflow_org, before)) = open {
        // Guarded by the status read: a return or check-in committed meanwhile is a
        // conflict to try again, not overwritten with counters moved twice.
        let n = exec!(
            tx,
            sqlx::query(
                "UPDATE flows SET status = $1, ended_on = $2, version = version + 1, updated_at = $3 \
                 WHERE id = $4 AND status = $5"
            )
            .bind(FlowStatus::Transferred.code())
            .bind(today)
            .bind(now)
            .bind(flow_id)
            .bind(&before)
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("stale_version"));
        }
        orgs::adjust_counts(tx, outflow_org, 0, -1, 0).await?;
        if let (Some(i), true) = (inflow_org, before == FlowStatus::CheckedIn.code()) {
            orgs::adjust_counts(tx, i, 0, 0, -1).await?;
        }
    }
    // The activity certificate belongs to the flow that has just ended.
    crate::certificates::void_for_member(tx, t.member_id, &By::NOBODY).await?;
    let Some(to) = t.to_org_id else {
        // To an organization outside the system: the member leaves the registry here and
        // stays as history, no longer counted at the sending organization.
        let n = exec!(
            tx,
            sqlx::query(
                "UPDATE members SET mobility = 'transferred_out', version = version + 1, updated_at = $1 \
                 WHERE id = $2 AND org_id = $3 AND mobility <> 'transferred_out'"
            )
            .bind(now)
            .bind(t.member_id)
            .bind(t.from_org_id)
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("transfer.member_moved"));
        }
        return orgs::adjust_counts(tx, t.from_org_id, -1, 0, 0).await;
    };
    crate::members::set_mobility(tx, t.member_id, Mobility::Resident).await?;
    let path = orgs::lock_path(tx, to).await?;
    // The record must still be where the transfer started: an edit that moved it meanwhile
    // would make the counts wrong.
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE members SET org_id = $1, org_path = $2, version = version + 1, updated_at = $3 \
             WHERE id = $4 AND org_id = $5"
        )
        .bind(to)
        .bind(&path)
        .bind(now)
        .bind(t.member_id)
        .bind(t.from_org_id)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("transfer.member_moved"));
    }
    orgs::adjust_counts(tx, t.from_org_id, -1, 0, 0).await?;
    orgs::adjust_counts(tx, to, 1, 0, 0).await
}

/// A member whose record arrived from outside the system, with the letter they brought.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ArrivalRecord {
    pub id: i64,
    pub member_id: i64,
    pub member_name: String,
    pub org_code: String,
    pub org_name: String,
    pub from_org_text: String,
    pub letter_number: Option<String>,
    pub letter_date: Option<NaiveDate>,
    pub received_on: NaiveDate,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

const ARRIVALS: &str = "SELECT a.id, a.member_id, m.name AS member_name, o.code AS org_code, o.name AS org_name, \
     a.from_org_text, a.letter_number, a.letter_date, a.received_on, a.note, a.created_at \
     FROM arrivals a JOIN members m ON m.id = a.member_id JOIN organizations o ON o.id = a.org_id";

pub(crate) async fn insert_arrival(
    tx: &mut Tx,
    member_id: i64,
    org: &Org,
    a: &transfer::Arrival,
    user_id: i64,
) -> Result<ArrivalRecord, StoreError> {
    let id: i64 = on!(&mut *tx, c => sqlx::query_scalar(
        "INSERT INTO arrivals (member_id, org_id, org_path, from_org_text, letter_number, letter_date, received_on, \
         note, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id")
        .bind(member_id).bind(org.id).bind(&org.path).bind(&a.from_org_text).bind(&a.letter_number)
        .bind(a.letter_date).bind(crate::today()).bind(&a.note).bind(user_id).bind(Utc::now())
        .fetch_one(c).await)?;
    let sql = format!("{ARRIVALS} WHERE a.id = $1");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_one(c).await)?)
}

/// Arrivals at the subtree at `root` (`None`: everywhere), newest first.
pub(crate) async fn arrivals(tx: &mut Tx, root: Option<&str>, limit: i64) -> Result<Vec<ArrivalRecord>, StoreError> {
    let (lo, hi, _, _) = queue_args(root);
    let sql = format!("{ARRIVALS} WHERE a.org_path >= $1 AND a.org_path < $2 ORDER BY a.id DESC LIMIT $3");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(&lo).bind(&hi).bind(limit).fetch_all(c).await)?)
}

pub(crate) async fn arrival_of(tx: &mut Tx, member_id: i64) -> Result<Option<ArrivalRecord>, StoreError> {
    // The latest: a member may leave for outside and come back more than once.
    let sql = format!("{ARRIVALS} WHERE a.member_id = $1 ORDER BY a.id DESC LIMIT 1");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(member_id).fetch_optional(c).await)?)
}
