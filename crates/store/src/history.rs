//! What the workflows (transfers, certificates) share: numbers from a counter per
//! organization and year, and one history row per step.

use chrono::{DateTime, Utc};

use crate::{exec, on, StoreError, Tx};

/// The counter tables, one row per organization and year.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    /// Introduction letters of a sending organization.
    Letters,
    /// Activity certificates of an issuing committee.
    Certificates,
}

impl Counter {
    fn sql(self) -> &'static str {
        match self {
            Counter::Letters => {
                "INSERT INTO letter_counters (org_id, year, last) VALUES ($1, $2, 1) \
                 ON CONFLICT (org_id, year) DO UPDATE SET last = letter_counters.last + 1 \
                 RETURNING CAST(last AS BIGINT)"
            }
            Counter::Certificates => {
                "INSERT INTO certificate_counters (org_id, year, last) VALUES ($1, $2, 1) \
                 ON CONFLICT (org_id, year) DO UPDATE SET last = certificate_counters.last + 1 \
                 RETURNING CAST(last AS BIGINT)"
            }
        }
    }
}

/// The next sequence number of `org_id` for `year` (1 for the first).
pub(crate) async fn next_number(tx: &mut Tx, counter: Counter, org_id: i64, year: i32) -> Result<u32, StoreError> {
    let seq: i64 = on!(tx, c => sqlx::query_scalar(counter.sql()).bind(org_id).bind(year).fetch_one(c).await)?;
    Ok(seq as u32)
}

/// Who takes a step, for its history row (nobody: the daily job).
pub(crate) struct By<'a> {
    pub user_id: Option<i64>,
    pub username: Option<&'a str>,
}

impl By<'static> {
    pub const NOBODY: By<'static> = By { user_id: None, username: None };
}

/// The history tables, one row per step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum History {
    Transfer,
    Certificate,
}

/// One step as its history row records it.
pub(crate) struct StepRow<'a> {
    pub step: &'a str,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub user_id: Option<i64>,
    pub username: Option<&'a str>,
    pub note: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub(crate) async fn record_step(tx: &mut Tx, history: History, id: i64, s: &StepRow<'_>) -> Result<(), StoreError> {
    let sql = match history {
        History::Transfer => {
            "INSERT INTO transfer_steps (transfer_id, step, from_status, to_status, user_id, username, note, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
        History::Certificate => {
            "INSERT INTO certificate_steps (certificate_id, step, from_status, to_status, user_id, username, note, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
    };
    exec!(
        tx,
        sqlx::query(sql)
            .bind(id)
            .bind(s.step)
            .bind(s.from)
            .bind(s.to)
            .bind(s.user_id)
            .bind(s.username)
            .bind(s.note)
            .bind(s.at)
    )?;
    Ok(())
}
