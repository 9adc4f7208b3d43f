//! The service network: centres, stations, windows and points, each run by an
//! organization. Members check in at a point through its link (see `checkins`).

use chrono::{DateTime, Utc};
use kite_domain::org;
use kite_domain::ServicePointLevel;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{exec, on, StoreError, Tx};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServicePoint {
    pub id: i64,
    pub code: String,
    pub parent_code: Option<String>,
    pub name: String,
    pub level: ServicePointLevel,
    pub org_code: String,
    pub org_name: String,
    pub division_code: String,
    pub address: Option<String>,
    pub hotline: Option<String>,
    pub opening_hours: Option<String>,
    /// `active`, or `closed` (its check-in link no longer works).
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub org_path: String,
}

/// An account that works at a point.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PointStaff {
    pub username: String,
    pub display_name: Option<String>,
    pub disabled: bool,
}

/// A service point to insert; the parent (if any) and the organization must exist.
#[derive(Debug, Clone)]
pub struct NewServicePoint {
    pub code: String,
    pub parent_code: Option<String>,
    pub name: String,
    pub level: ServicePointLevel,
    pub org_code: String,
    pub division_code: String,
    pub address: Option<String>,
    pub hotline: Option<String>,
    pub opening_hours: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    code: String,
    parent_code: Option<String>,
    name: String,
    level: String,
    org_code: String,
    org_name: String,
    org_path: String,
    division_code: String,
    address: Option<String>,
    hotline: Option<String>,
    opening_hours: Option<String>,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
}

pub(crate) async fn insert(tx: &mut Tx, p: &NewServicePoint) -> Result<i64, StoreError> {
    let org: Option<i64> = on!(tx, c => sqlx::query_scalar("SELECT id FROM organizations WHERE code = $1")
        .bind(&p.org_code).fetch_optional(c).await)?;
    let org = org.ok_or(StoreError::invalid("org_code", "org.unknown"))?;
    let parent: Option<i64> = match &p.parent_code {
        Some(code) => Some(
            on!(tx, c => sqlx::query_scalar("SELECT id FROM service_points WHERE code = $1")
                .bind(code).fetch_optional(c).await)?
            .ok_or(StoreError::invalid("parent_code", "service_point.parent.unknown"))?,
        ),
        None => None,
    };
    let res: Result<i64, sqlx::Error> = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO service_points (code, parent_id, name, level, org_id, division_code, address, hotline, \
         opening_hours, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id")
        .bind(&p.code).bind(parent).bind(&p.name).bind(p.level.code()).bind(org).bind(&p.division_code)
        .bind(&p.address).bind(&p.hotline).bind(&p.opening_hours).bind(Utc::now()).fetch_one(c).await);
    match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => Err(StoreError::Conflict("service_point.code.duplicate")),
        r => r,
    }
}

const SELECT: &str = "SELECT s.id, s.code, p.code AS parent_code, s.name, s.level, o.code AS org_code, \
     o.name AS org_name, o.path AS org_path, s.division_code, s.address, s.hotline, s.opening_hours, s.status, \
     s.version, s.created_at FROM service_points s JOIN organizations o ON o.id = s.org_id \
     LEFT JOIN service_points p ON p.id = s.parent_id";

/// The points run by the organizations of a subtree (closed ones last): centres, stations,
/// windows, then points, each level in the order they were created.
pub(crate) async fn in_subtree(tx: &mut Tx, root_path: &str) -> Result<Vec<ServicePoint>, StoreError> {
    let (lo, hi) = org::subtree_range(root_path);
    let sql = format!(
        "{SELECT} WHERE o.path >= $1 AND o.path < $2 \
         ORDER BY CASE s.status WHEN 'active' THEN 0 ELSE 1 END, \
         CASE s.level WHEN 'centre' THEN 0 WHEN 'station' THEN 1 WHEN 'window' THEN 2 ELSE 3 END, s.id \
         LIMIT 500"
    );
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(&lo).bind(&hi).fetch_all(c).await)?;
    rows.into_iter().map(ServicePoint::try_from).collect()
}

pub(crate) async fn by_code(tx: &mut Tx, code: &str) -> Result<Option<ServicePoint>, StoreError> {
    if !crate::storable(code) {
        return Ok(None);
    }
    let sql = format!("{SELECT} WHERE s.code = $1");
    let row: Option<Row> = on!(tx, c => sqlx::query_as(&sql).bind(code).fetch_optional(c).await)?;
    row.map(ServicePoint::try_from).transpose()
}

impl TryFrom<Row> for ServicePoint {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(ServicePoint {
            level: ServicePointLevel::from_code(&r.level)
                .ok_or_else(|| StoreError::Config(format!("unexpected service point level {:?}", r.level)))?,
            id: r.id,
            code: r.code,
            parent_code: r.parent_code,
            name: r.name,
            org_code: r.org_code,
            org_name: r.org_name,
            division_code: r.division_code,
            address: r.address,
            hotline: r.hotline,
            opening_hours: r.opening_hours,
            status: r.status,
            version: r.version,
            created_at: r.created_at,
            org_path: r.org_path,
        })
    }
}

/// Replaces a point's fields at `version`; the code stays.
pub(crate) async fn update(
    tx: &mut Tx,
    id: i64,
    version: i64,
    p: &NewServicePoint,
    org_id: i64,
    parent_id: Option<i64>,
    active: bool,
) -> Result<(), StoreError> {
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE service_points SET parent_id = $1, name = $2, level = $3, org_id = $4, division_code = $5, \
             address = $6, hotline = $7, opening_hours = $8, status = $9, version = version + 1, updated_at = $10 \
             WHERE id = $11 AND version = $12"
        )
        .bind(parent_id)
        .bind(&p.name)
        .bind(p.level.code())
        .bind(org_id)
        .bind(&p.division_code)
        .bind(&p.address)
        .bind(&p.hotline)
        .bind(&p.opening_hours)
        .bind(if active { "active" } else { "closed" })
        .bind(Utc::now())
        .bind(id)
        .bind(version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    Ok(())
}

pub(crate) async fn set_closed(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    exec!(tx, sqlx::query("UPDATE service_points SET status = 'closed' WHERE id = $1").bind(id))?;
    Ok(())
}

pub(crate) async fn staff(tx: &mut Tx, point_id: i64) -> Result<Vec<PointStaff>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT username, display_name, disabled FROM users WHERE service_point_id = $1 ORDER BY username")
        .bind(point_id).fetch_all(c).await)?)
}

/// The points directly under a point.
pub(crate) async fn children(tx: &mut Tx, point_id: i64) -> Result<Vec<ServicePoint>, StoreError> {
    let sql = format!("{SELECT} WHERE s.parent_id = $1 ORDER BY s.id LIMIT 500");
    let rows: Vec<Row> = on!(tx, c => sqlx::query_as(&sql).bind(point_id).fetch_all(c).await)?;
    rows.into_iter().map(ServicePoint::try_from).collect()
}
