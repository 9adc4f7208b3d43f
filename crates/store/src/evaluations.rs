//! Inflow evaluations: one per flow and period, written by the inflow side.

use chrono::{DateTime, Utc};
use kite_domain::evaluation::Evaluation;
use kite_domain::Rating;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{exec, on, StoreError, Tx};

/// One period's evaluation of a member by the organization the member was checked in to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InflowEvaluation {
    pub id: i64,
    pub flow_id: i64,
    /// `2026-H2`, `2026-Q4` or `2026`.
    pub period: String,
    pub rating: Rating,
    pub comment: Option<String>,
    pub inflow_org_code: String,
    pub inflow_org_name: String,
    pub evaluated_by: Option<String>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    flow_id: i64,
    period: String,
    rating: String,
    comment: Option<String>,
    inflow_org_code: String,
    inflow_org_name: String,
    evaluated_by: Option<String>,
    version: i64,
    updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT e.id, e.flow_id, e.period, e.rating, e.comment, o.code AS inflow_org_code, \
    o.name AS inflow_org_name, u.username AS evaluated_by, e.version, e.updated_at FROM inflow_evaluations e \
    JOIN organizations o ON o.id = e.inflow_org_id LEFT JOIN users u ON u.id = e.evaluated_by";

fn convert(rows: Vec<Row>) -> Result<Vec<InflowEvaluation>, StoreError> {
    rows.into_iter()
        .map(|r| {
            Ok(InflowEvaluation {
                rating: Rating::from_code(&r.rating)
                    .ok_or_else(|| StoreError::Config(format!("unexpected rating {:?} in the database", r.rating)))?,
                id: r.id,
                flow_id: r.flow_id,
                period: r.period,
                comment: r.comment,
                inflow_org_code: r.inflow_org_code,
                inflow_org_name: r.inflow_org_name,
                evaluated_by: r.evaluated_by,
                version: r.version,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// A member's evaluations over all flows, latest period first.
pub(crate) async fn for_member(tx: &mut Tx, member_id: i64) -> Result<Vec<InflowEvaluation>, StoreError> {
    let sql = format!("{SELECT} WHERE e.member_id = $1 ORDER BY e.period DESC, e.id DESC");
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(member_id).fetch_all(c).await)?;
    convert(rows)
}

pub(crate) async fn for_flow(tx: &mut Tx, flow_id: i64) -> Result<Vec<InflowEvaluation>, StoreError> {
    let sql = format!("{SELECT} WHERE e.flow_id = $1 ORDER BY e.period DESC");
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(flow_id).fetch_all(c).await)?;
    convert(rows)
}

/// What an evaluation is about: the flow, its member and its inflow organization.
pub(crate) struct Subject {
    pub flow_id: i64,
    pub member_id: i64,
    pub inflow_org_id: i64,
}

/// Records the period's evaluation; without `version` it must be the first for the
/// period, with one it replaces the evaluation at that version. Returns its id.
pub(crate) async fn save(
    tx: &mut Tx,
    s: &Subject,
    e: &Evaluation,
    version: Option<i64>,
    by: i64,
) -> Result<i64, StoreError> {
    let now = Utc::now();
    let label = e.period.label();
    match version {
        None => {
            let res = on!(tx, c => sqlx::query_scalar(
                "INSERT INTO inflow_evaluations (flow_id, member_id, inflow_org_id, period, rating, comment, \
                 evaluated_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id")
                .bind(s.flow_id).bind(s.member_id).bind(s.inflow_org_id).bind(&label).bind(e.rating.code())
                .bind(&e.comment).bind(by).bind(now).fetch_one(c).await);
            match res.map_err(StoreError::from) {
                Err(err) if err.is_unique_violation() => Err(StoreError::Conflict("evaluation.exists")),
                r => r,
            }
        }
        Some(v) => {
            let n = exec!(
                tx,
                sqlx::query(
                    "UPDATE inflow_evaluations SET rating = $1, comment = $2, evaluated_by = $3, \
                     inflow_org_id = $4, version = version + 1, updated_at = $5 \
                     WHERE flow_id = $6 AND period = $7 AND version = $8"
                )
                .bind(e.rating.code())
                .bind(&e.comment)
                .bind(by)
                .bind(s.inflow_org_id)
                .bind(now)
                .bind(s.flow_id)
                .bind(&label)
                .bind(v)
            )?;
            if n == 0 {
                return Err(StoreError::Conflict("stale_version"));
            }
            let id: i64 = on!(tx, c => sqlx::query_scalar(
                "SELECT id FROM inflow_evaluations WHERE flow_id = $1 AND period = $2")
                .bind(s.flow_id).bind(&label).fetch_one(c).await)?;
            Ok(id)
        }
    }
}
