//! One-time codes and the outbox. A code's SMS is written to the outbox in the same
//! transaction as the code, so a code is never valid without its message queued; a
//! notifier delivers the outbox afterwards and marks each message sent or failed.

use chrono::{DateTime, Utc};
use kite_domain::checkin::{CODE_TTL, MAX_ATTEMPTS, RESEND_AFTER};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{exec, on, Store, StoreError, Tx};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    /// `sms`.
    pub channel: String,
    pub recipient: String,
    pub body: String,
    /// `pending`, `sent` or `failed` (given up after [`MAX_DELIVERIES`] tries).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// While pending: not tried again before this time (after a failed try, or while a
    /// try is under way); none means due now.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Delivery tries before a message is marked failed.
pub const MAX_DELIVERIES: i64 = 5;

const SELECT: &str = "SELECT id, channel, recipient, body, status, attempts, last_error, created_at, sent_at, \
     next_attempt_at FROM outbox";

pub(crate) async fn enqueue(tx: &mut Tx, channel: &str, recipient: &str, body: &str) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query(
            "INSERT INTO outbox (channel, recipient, body, status, created_at) VALUES ($1, $2, $3, 'pending', $4)"
        )
        .bind(channel)
        .bind(recipient)
        .bind(body)
        .bind(Utc::now())
    )?;
    Ok(())
}

/// Issues a code for `phone` (its hash) with its SMS, unless one was sent too recently.
pub(crate) async fn issue_code(tx: &mut Tx, phone: &str, code_hash: &str, sms: &str) -> Result<(), StoreError> {
    let now = Utc::now();
    let last: Option<DateTime<Utc>> = on!(tx, c => sqlx::query_scalar(
        "SELECT created_at FROM one_time_codes WHERE phone = $1 ORDER BY id DESC LIMIT 1")
        .bind(phone).fetch_optional(c).await)?;
    if last.is_some_and(|t| now - t < RESEND_AFTER) {
        return Err(StoreError::Throttled);
    }
    exec!(
        tx,
        sqlx::query("INSERT INTO one_time_codes (phone, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(phone)
            .bind(code_hash)
            .bind(now + CODE_TTL)
            .bind(now)
    )?;
    enqueue(tx, "sms", phone, sms).await
}

/// What checking a code found.
pub(crate) enum CodeCheck {
    /// Right: the code's id, to be spent in the transaction that stores the check-in.
    Good(i64),
    /// Wrong: count the attempt (in a transaction that commits) and refuse.
    Wrong(i64),
    /// No live code for this phone: none sent, expired, used or out of attempts.
    Dead,
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    pub id: i64,
    pub phone: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What typing `code_hash` against the phone's latest code (if any) amounts to.
pub(crate) fn judge(latest: Option<&CodeRow>, code_hash: &str) -> CodeCheck {
    match latest {
        Some(r) if r.used_at.is_none() && r.expires_at > Utc::now() && r.attempts < MAX_ATTEMPTS => {
            if r.code_hash == code_hash {
                CodeCheck::Good(r.id)
            } else {
                CodeCheck::Wrong(r.id)
            }
        }
        _ => CodeCheck::Dead,
    }
}

/// Spends a code found good on the read pool; false if it was used, worn out by wrong
/// guesses or expired since (the guard makes a concurrent second use fail here).
pub(crate) async fn spend_code(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE one_time_codes SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND attempts < $3 AND expires_at > $1"
        )
        .bind(now)
        .bind(id)
        .bind(MAX_ATTEMPTS)
    )?;
    Ok(n == 1)
}

/// Counts a wrong guess; the caller commits it even though the check-in is refused.
pub(crate) async fn count_wrong_attempt(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    exec!(tx, sqlx::query("UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1").bind(id))?;
    Ok(())
}

/// [`spend_code`] for several distinct codes at once: how many were still live and spent.
pub(crate) async fn spend_codes(tx: &mut Tx, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids = crate::db::padded(ids);
    let sql = format!(
        "UPDATE one_time_codes SET used_at = $1 \
         WHERE id IN ({}) AND used_at IS NULL AND attempts < $2 AND expires_at > $1",
        crate::db::in_list(3, ids.len())
    );
    let n = exec!(tx, {
        let mut q = sqlx::query(&sql).bind(now).bind(MAX_ATTEMPTS);
        for id in &ids {
            q = q.bind(*id);
        }
        q
    })?;
    Ok(n)
}

/// [`count_wrong_attempt`] for several distinct codes at once.
pub(crate) async fn count_wrong_attempts(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = crate::db::padded(ids);
    let sql =
        format!("UPDATE one_time_codes SET attempts = attempts + 1 WHERE id IN ({})", crate::db::in_list(1, ids.len()));
    exec!(tx, {
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(*id);
        }
        q
    })?;
    Ok(())
}

/// The outbox as the notifier and the development page see it.
pub struct Outbox<'a> {
    pub(crate) store: &'a Store,
}

impl Outbox<'_> {
    /// Messages waiting to be delivered, oldest first.
    pub async fn pending(&self, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.store.read().await?;
        let sql = format!("{SELECT} WHERE status = 'pending' ORDER BY id LIMIT $1");
        Ok(on!(&mut tx, c => sqlx::query_as(&sql).bind(limit).fetch_all(c).await)?)
    }

    /// Pending messages whose next try is due at `now`, oldest first.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.store.read().await?;
        let sql = format!(
            "{SELECT} WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1) ORDER BY id LIMIT $2"
        );
        Ok(on!(&mut tx, c => sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(c).await)?)
    }

    /// Takes a due message for one try, holding it until `until`; false if it is no longer
    /// due (another server took it, or it was delivered). A try that never reports back
    /// (the process stopped) is retried once the hold runs out.
    pub async fn claim(&self, id: i64, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.store.write().await?;
        let n = exec!(
            &mut tx,
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $3)"
            )
            .bind(until)
            .bind(id)
            .bind(now)
        )?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn mark_sent(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        exec!(
            &mut tx,
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, next_attempt_at = NULL \
                 WHERE id = $2"
            )
            .bind(Utc::now())
            .bind(id)
        )?;
        tx.commit().await
    }

    /// Counts a failed try, not to be tried again before `retry_at`; after
    /// [`MAX_DELIVERIES`] the message is given up.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        let error: String = error.chars().filter(|c| *c != '\0').take(500).collect();
        exec!(
            &mut tx,
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
                 status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE status END \
                 WHERE id = $4 AND status = 'pending'"
            )
            .bind(error)
            .bind(retry_at)
            .bind(MAX_DELIVERIES)
            .bind(id)
        )?;
        tx.commit().await
    }

    /// The latest messages, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.store.read().await?;
        let sql = format!("{SELECT} ORDER BY id DESC LIMIT $1");
        Ok(on!(&mut tx, c => sqlx::query_as(&sql).bind(limit.clamp(1, 500)).fetch_all(c).await)?)
    }
}
