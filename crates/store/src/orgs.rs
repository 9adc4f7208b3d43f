//! Organization rows and the tree.

use chrono::{DateTime, Utc};
use kite_domain::org::{self, OrgFields};
use kite_domain::{OrgKind, OrgLevel, OrgStatus};

use crate::{exec, on, NewOrg, Org, Overview, StoreError, Tx};

macro_rules! select_org {
    ($($tail:literal)*) => {
        concat!(
            "SELECT o.id, o.code, p.code AS parent_code, o.path, o.name, o.level, o.kind, o.division_code, \
             o.address, o.phone, o.status, o.transfer_two_levels, \
             (SELECT COUNT(*) FROM organizations c WHERE c.parent_id = o.id) AS child_count, \
             o.version, o.created_at, o.updated_at \
             FROM organizations o LEFT JOIN organizations p ON p.id = o.parent_id ",
            $($tail),*
        )
    };
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: i64,
    code: String,
    parent_code: Option<String>,
    path: String,
    name: String,
    level: String,
    kind: String,
    division_code: String,
    address: Option<String>,
    phone: Option<String>,
    status: String,
    transfer_two_levels: bool,
    child_count: i64,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Config(format!("unexpected {what} {v:?} in the database"))
}

impl TryFrom<OrgRow> for Org {
    type Error = StoreError;
    fn try_from(r: OrgRow) -> Result<Self, StoreError> {
        Ok(Org {
            level: OrgLevel::from_code(&r.level).ok_or_else(|| corrupt("level", &r.level))?,
            kind: OrgKind::from_code(&r.kind).ok_or_else(|| corrupt("kind", &r.kind))?,
            status: OrgStatus::from_code(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            id: r.id,
            code: r.code,
            parent_code: r.parent_code,
            path: r.path,
            name: r.name,
            division_code: r.division_code,
            address: r.address,
            phone: r.phone,
            child_count: r.child_count,
            transfer_two_levels: r.transfer_two_levels,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn convert(rows: Vec<OrgRow>) -> Result<Vec<Org>, StoreError> {
    rows.into_iter().map(Org::try_from).collect()
}

pub(crate) async fn count_all(tx: &mut Tx) -> Result<i64, StoreError> {
    let n: i64 = on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(c).await)?;
    Ok(n)
}

pub(crate) async fn by_code(tx: &mut Tx, code: &str) -> Result<Option<Org>, StoreError> {
    if !crate::storable(code) {
        return Ok(None);
    }
    let row: Option<OrgRow> =
        on!(tx, c => sqlx::query_as(select_org!("WHERE o.code = $1")).bind(code).fetch_optional(c).await)?;
    row.map(Org::try_from).transpose()
}

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<Org>, StoreError> {
    let row: Option<OrgRow> =
        on!(tx, c => sqlx::query_as(select_org!("WHERE o.id = $1")).bind(id).fetch_optional(c).await)?;
    row.map(Org::try_from).transpose()
}

/// Direct children of `parent`, or the roots of the tree.
pub(crate) async fn children(tx: &mut Tx, parent: Option<i64>) -> Result<Vec<Org>, StoreError> {
    let rows: Vec<OrgRow> = match parent {
        Some(id) => on!(tx, c => sqlx::query_as(select_org!("WHERE o.parent_id = $1 ORDER BY o.code"))
            .bind(id).fetch_all(c).await)?,
        None => on!(tx, c => sqlx::query_as(select_org!("WHERE o.parent_id IS NULL ORDER BY o.code"))
            .fetch_all(c).await)?,
    };
    convert(rows)
}

/// Searches active organizations by name or code within a subtree (for pickers).
pub(crate) async fn search(tx: &mut Tx, root: Option<&str>, q: &str, limit: i64) -> Result<Vec<Org>, StoreError> {
    let (lo, hi) = root.map(org::subtree_range).unwrap_or_else(|| (String::new(), "~".into()));
    let pattern = format!("%{}%", q.replace(['%', '_', '\0'], "").to_lowercase());
    let rows: Vec<OrgRow> = on!(tx, c => sqlx::query_as(select_org!(
        "WHERE o.path >= $1 AND o.path < $2 AND o.status = 'active' "
        "AND (o.name LIKE $3 OR LOWER(o.code) LIKE $3 OR o.division_code LIKE $3) "
        "ORDER BY length(o.path), o.code LIMIT $4"))
        .bind(&lo).bind(&hi).bind(&pattern).bind(limit).fetch_all(c).await)?;
    convert(rows)
}

/// Active organizations whose division code starts with `prefix`, for guidance.
pub(crate) async fn in_division(tx: &mut Tx, prefix: &str, limit: i64) -> Result<Vec<Org>, StoreError> {
    let rows: Vec<OrgRow> = on!(tx, c => sqlx::query_as(select_org!(
        "WHERE o.division_code >= $1 AND o.division_code < $2 AND o.status = 'active' ORDER BY o.path LIMIT $3"))
        .bind(prefix).bind(kite_domain::text::prefix_upper(prefix)).bind(limit).fetch_all(c).await)?;
    convert(rows)
}

/// The division codes of the given organizations.
pub(crate) async fn divisions_of(
    tx: &mut Tx,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(i64, String)> = on!(tx, c => {
        let mut q = sqlx::QueryBuilder::new("SELECT id, division_code FROM organizations WHERE id IN (");
        let mut list = q.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build_query_as().fetch_all(c).await
    })?;
    Ok(rows.into_iter().collect())
}

pub(crate) async fn insert(tx: &mut Tx, new: &NewOrg) -> Result<Org, StoreError> {
    if !org::valid_code(&new.code) {
        return Err(StoreError::invalid("code", "org.code.invalid"));
    }
    let parent = match &new.parent_code {
        Some(code) => {
            let p = by_code(tx, code).await?.ok_or(StoreError::invalid("parent_code", "org.parent.unknown"))?;
            if p.status != OrgStatus::Active {
                return Err(StoreError::invalid("parent_code", "org.move.parent_dissolved"));
            }
            Some(p)
        }
        None => None,
    };
    // Codes differing only in case would name the same certificates and letters (their
    // numbers are written in capitals): one of them only.
    let taken: i64 = on!(&mut *tx, c => sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM organizations WHERE UPPER(code) = UPPER($1)")
        .bind(&new.code).fetch_one(c).await)?;
    if taken > 0 {
        return Err(StoreError::Conflict("org.code.duplicate"));
    }
    let f = &new.fields;
    let now = Utc::now();
    // The path needs the new id: insert with a unique placeholder, then set it.
    let placeholder = format!("new:{}", new.code);
    let res: Result<i64, sqlx::Error> = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO organizations (code, parent_id, path, name, level, kind, division_code, address, phone, \
         status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10) RETURNING id")
        .bind(&new.code).bind(parent.as_ref().map(|p| p.id)).bind(&placeholder).bind(&f.name)
        .bind(f.level.code()).bind(f.kind.code()).bind(&f.division_code).bind(&f.address).bind(&f.phone)
        .bind(now).fetch_one(c).await);
    let id = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("org.code.duplicate")),
        r => r?,
    };
    let path = org::child_path(parent.as_ref().map(|p| p.path.as_str()), id);
    exec!(tx, sqlx::query("UPDATE organizations SET path = $1 WHERE id = $2").bind(&path).bind(id))?;
    by_id(tx, id).await?.ok_or(StoreError::NotFound)
}

/// Updates fields and status under optimistic concurrency.
pub(crate) async fn update(
    tx: &mut Tx,
    id: i64,
    f: &OrgFields,
    status: OrgStatus,
    version: i64,
) -> Result<Org, StoreError> {
    let n =
        exec!(tx, sqlx::query(
        "UPDATE organizations SET name = $1, level = $2, kind = $3, division_code = $4, address = $5, phone = $6, \
         status = $7, version = version + 1, updated_at = $8 WHERE id = $9 AND version = $10")
        .bind(&f.name).bind(f.level.code()).bind(f.kind.code()).bind(&f.division_code).bind(&f.address)
        .bind(&f.phone).bind(status.code()).bind(Utc::now()).bind(id).bind(version))?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    by_id(tx, id).await?.ok_or(StoreError::NotFound)
}

/// Moves `o` (with its subtree) under `parent`, rewriting every copy of the paths.
pub(crate) async fn move_to(tx: &mut Tx, o: &Org, parent: &Org, version: i64) -> Result<Org, StoreError> {
    org::check_move(&o.path, &parent.path, parent.status == OrgStatus::Active)
        .map_err(|e| StoreError::invalid("parent_code", e.code()))?;
    let (lo, hi) = org::subtree_range(&o.path);
    if tx.backend() == crate::Backend::Postgres {
        // Lock the whole subtree before touching any of it; see `lock_path`.
        let _: Vec<i64> = on!(tx, c => sqlx::query_scalar("SELECT id FROM organizations WHERE path >= $1 AND path < $2 ORDER BY path FOR UPDATE")
            .bind(&lo).bind(&hi).fetch_all(c).await)?;
    }
    let n = exec!(tx, sqlx::query(
        "UPDATE organizations SET parent_id = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4")
        .bind(parent.id).bind(Utc::now()).bind(o.id).bind(version))?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    let new_path = org::child_path(Some(&parent.path), o.id);
    // PostgreSQL has substr(text, integer) only: bind an i32.
    let cut = o.path.len() as i32 + 1;
    for sql in [
        "UPDATE organizations SET path = $1 || substr(path, $2) WHERE path >= $3 AND path < $4",
        "UPDATE members SET org_path = $1 || substr(org_path, $2) WHERE org_path >= $3 AND org_path < $4",
        "UPDATE flows SET outflow_path = $1 || substr(outflow_path, $2) WHERE outflow_path >= $3 AND outflow_path < $4",
        "UPDATE flows SET inflow_path = $1 || substr(inflow_path, $2) WHERE inflow_path >= $3 AND inflow_path < $4",
        "UPDATE checkins SET home_path = $1 || substr(home_path, $2) WHERE home_path >= $3 AND home_path < $4",
        "UPDATE checkins SET inflow_path = $1 || substr(inflow_path, $2) WHERE inflow_path >= $3 AND inflow_path < $4",
        "UPDATE transfers SET from_path = $1 || substr(from_path, $2) WHERE from_path >= $3 AND from_path < $4",
        "UPDATE transfers SET to_path = $1 || substr(to_path, $2) WHERE to_path >= $3 AND to_path < $4",
        "UPDATE certificates SET issuer_path = $1 || substr(issuer_path, $2) WHERE issuer_path >= $3 AND issuer_path < $4",
        "UPDATE certificates SET requester_path = $1 || substr(requester_path, $2) \
         WHERE requester_path >= $3 AND requester_path < $4",
        "UPDATE arrivals SET org_path = $1 || substr(org_path, $2) WHERE org_path >= $3 AND org_path < $4",
        "UPDATE screen_campaigns SET scope_path = $1 || substr(scope_path, $2) WHERE scope_path >= $3 AND scope_path < $4",
        "UPDATE screen_campaigns SET place_path = $1 || substr(place_path, $2) WHERE place_path >= $3 AND place_path < $4",
    ] {
        exec!(tx, sqlx::query(sql).bind(&new_path).bind(cut).bind(&lo).bind(&hi))?;
    }
    by_id(tx, o.id).await?.ok_or(StoreError::NotFound)
}

/// Sets whether transfers of the organization's members are approved at two levels,
/// at the version read.
pub(crate) async fn set_transfer_levels(tx: &mut Tx, id: i64, two: bool, version: i64) -> Result<Org, StoreError> {
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE organizations SET transfer_two_levels = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND version = $4"
        )
        .bind(two)
        .bind(Utc::now())
        .bind(id)
        .bind(version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    by_id(tx, id).await?.ok_or(StoreError::NotFound)
}

/// Locks an organization row for a change that counts under it and returns its current
/// path. Taking this lock before inserting rows that reference the organization orders
/// such changes after any concurrent move (which locks the subtree first), so no row is
/// written with a stale path and no lock cycle forms. SQLite has one writer: no lock needed.
pub(crate) async fn lock_path(tx: &mut Tx, id: i64) -> Result<String, StoreError> {
    let sql = match tx.backend() {
        crate::Backend::Postgres => "SELECT path FROM organizations WHERE id = $1 FOR NO KEY UPDATE",
        crate::Backend::Sqlite => "SELECT path FROM organizations WHERE id = $1",
    };
    let path: Option<String> = on!(tx, c => sqlx::query_scalar(sql).bind(id).fetch_optional(c).await)?;
    path.ok_or(StoreError::NotFound)
}

/// Adds deltas to one organization's own counters.
pub(crate) async fn adjust_counts(tx: &mut Tx, id: i64, members: i64, out: i64, inflow: i64) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query(
            "UPDATE organizations SET member_count = member_count + $1, outflow_count = outflow_count + $2, \
         inflow_count = inflow_count + $3 WHERE id = $4"
        )
        .bind(members)
        .bind(out)
        .bind(inflow)
        .bind(id)
    )?;
    Ok(())
}

/// Totals for the subtree at `root` (all organizations when `None`): one index range.
pub(crate) async fn overview(tx: &mut Tx, root: Option<&str>) -> Result<Overview, StoreError> {
    let (lo, hi) = root.map(org::subtree_range).unwrap_or_else(|| (String::new(), "~".into()));
    let row: (i64, i64, i64, i64) = on!(tx, c => sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(member_count), 0) AS BIGINT), \
         CAST(COALESCE(SUM(outflow_count), 0) AS BIGINT), CAST(COALESCE(SUM(inflow_count), 0) AS BIGINT) \
         FROM organizations WHERE path >= $1 AND path < $2 AND status = 'active'")
        .bind(&lo).bind(&hi).fetch_one(c).await)?;
    Ok(Overview { organizations: row.0, members: row.1, mobile_out: row.2, mobile_in: row.3 })
}

pub(crate) async fn recount(tx: &mut Tx) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query(
            "UPDATE organizations SET \
         member_count = (SELECT COUNT(*) FROM members m WHERE m.org_id = organizations.id \
         AND m.mobility <> 'transferred_out'), \
         outflow_count = (SELECT COUNT(*) FROM flows f WHERE f.outflow_org_id = organizations.id \
                          AND f.status IN ('not_checked_in', 'checked_in', 'lost_contact')), \
         inflow_count = (SELECT COUNT(*) FROM flows f WHERE f.inflow_org_id = organizations.id \
                         AND f.status = 'checked_in')"
        )
    )?;
    Ok(())
}
