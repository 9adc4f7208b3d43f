//! Storage-level queries on the loaded database over the bench's own connection: the
//! product's query next to the classic alternatives, on the same data in the same run.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// One connection to the database under test.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
}

macro_rules! bound {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query($sql);
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

impl Db {
    pub async fn sqlite(url: &str) -> anyhow::Result<Db> {
        let opts = SqliteConnectOptions::from_str(url)?.read_only(true);
        Ok(Db::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?))
    }

    pub async fn postgres(url: &str) -> anyhow::Result<Db> {
        let opts = PgConnectOptions::from_str(url)?;
        Ok(Db::Postgres(PgPoolOptions::new().max_connections(1).connect_with(opts).await?))
    }

    /// The first column of the first row, as an integer.
    pub async fn int(&self, sql: &str, args: &[Arg]) -> anyhow::Result<i64> {
        use sqlx::Row;
        Ok(match self {
            Db::Sqlite(p) => bound!(sql, args).fetch_one(p).await?.try_get::<i64, _>(0)?,
            Db::Postgres(p) => bound!(sql, args).fetch_one(p).await?.try_get::<i64, _>(0)?,
        })
    }

    pub async fn text(&self, sql: &str) -> anyhow::Result<String> {
        use sqlx::Row;
        Ok(match self {
            Db::Sqlite(p) => sqlx::query(sql).fetch_one(p).await?.try_get::<String, _>(0)?,
            Db::Postgres(p) => sqlx::query(sql).fetch_one(p).await?.try_get::<String, _>(0)?,
        })
    }

    /// Runs a query, fetches every row (undecoded) and answers how many there were.
    pub async fn rows(&self, sql: &str, args: &[Arg]) -> anyhow::Result<usize> {
        Ok(match self {
            Db::Sqlite(p) => bound!(sql, args).fetch_all(p).await?.len(),
            Db::Postgres(p) => bound!(sql, args).fetch_all(p).await?.len(),
        })
    }

    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(p) => {
                sqlx::query(sql).execute(p).await?;
            }
            Db::Postgres(p) => {
                sqlx::query(sql).execute(p).await?;
            }
        }
        Ok(())
    }

    /// The plan the engine picks for `sql` with these arguments: `EXPLAIN QUERY PLAN` on
    /// SQLite (indented by parent), `EXPLAIN` on PostgreSQL.
    pub async fn plan(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<String>> {
        use sqlx::Row;
        Ok(match self {
            Db::Sqlite(p) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let rows = bound!(&explain, args).fetch_all(p).await?;
                let mut depth: std::collections::HashMap<i64, usize> = Default::default();
                let mut out = Vec::new();
                for r in rows {
                    let (id, parent, detail): (i64, i64, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(3)?);
                    let d = depth.get(&parent).map(|d| d + 1).unwrap_or(0);
                    depth.insert(id, d);
                    out.push(format!("{}{detail}", "  ".repeat(d)));
                }
                out
            }
            Db::Postgres(p) => {
                let explain = format!("EXPLAIN {sql}");
                let rows = bound!(&explain, args).fetch_all(p).await?;
                rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?
            }
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A subtree to count: its path range and root id (`None`: the whole registry).
#[derive(Debug, Clone)]
pub struct Subtree {
    pub lo: String,
    pub hi: String,
    pub root_id: Option<i64>,
    pub expect_members: i64,
}

impl Subtree {
    pub async fn resolve(db: &Db, code: Option<&str>, expect_members: i64) -> anyhow::Result<Subtree> {
        let Some(code) = code else {
            return Ok(Subtree { lo: String::new(), hi: "~".into(), root_id: None, expect_members });
        };
        let id = db.int("SELECT id FROM organizations WHERE code = $1", &[Arg::Text(code.into())]).await?;
        let path: String = match db {
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT path FROM organizations WHERE id = $1").bind(id).fetch_one(p).await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar("SELECT path FROM organizations WHERE id = $1").bind(id).fetch_one(p).await?
            }
        };
        let (lo, hi) = kite_domain::org::subtree_range(&path);
        Ok(Subtree { lo, hi, root_id: Some(id), expect_members })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    /// What `/overview` runs (`store/src/orgs.rs::overview`): a range sum of the
    /// organizations' own counters over the covering index `(path, status, counters…)`.
    Counters,
    /// COUNT(*) of members over the materialized-path index `members (org_path, id)`.
    PathRange,
    /// A recursive CTE over `organizations.parent_id`, joined to `members.org_id`.
    RecursiveCte,
}

impl CountMethod {
    pub const ALL: [CountMethod; 3] = [CountMethod::Counters, CountMethod::PathRange, CountMethod::RecursiveCte];

    pub fn label(self) -> &'static str {
        match self {
            CountMethod::Counters => "(a) product: per-organization counters, range sum over path",
            CountMethod::PathRange => "(b) COUNT(*) members by org_path range (materialized path index)",
            CountMethod::RecursiveCte => "(c) recursive CTE over parent_id joined to members",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            CountMethod::Counters => "(a) counters",
            CountMethod::PathRange => "(b) path range",
            CountMethod::RecursiveCte => "(c) recursive CTE",
        }
    }
}

/// The product's `orgs::overview` statement, verbatim.
const OVERVIEW_SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(member_count), 0) AS BIGINT), \
     CAST(COALESCE(SUM(outflow_count), 0) AS BIGINT), CAST(COALESCE(SUM(inflow_count), 0) AS BIGINT) \
     FROM organizations WHERE path >= $1 AND path < $2 AND status = 'active'";

const PATH_RANGE_SQL: &str = "SELECT COUNT(*) FROM members WHERE org_path >= $1 AND org_path < $2";
const CTE_SQL: &str = "WITH RECURSIVE sub(id) AS (SELECT id FROM organizations WHERE id = $1 \
     UNION ALL SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id) \
     SELECT COUNT(*) FROM members m JOIN sub ON m.org_id = sub.id";
const CTE_ALL_SQL: &str = "WITH RECURSIVE sub(id) AS (SELECT id FROM organizations WHERE parent_id IS NULL \
     UNION ALL SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id) \
     SELECT COUNT(*) FROM members m JOIN sub ON m.org_id = sub.id";

/// The statement and arguments that count the subtree's members by `method`.
pub fn count_sql(s: &Subtree, method: CountMethod) -> (&'static str, Vec<Arg>) {
    let range = vec![Arg::Text(s.lo.clone()), Arg::Text(s.hi.clone())];
    match (method, s.root_id) {
        (CountMethod::Counters, _) => (OVERVIEW_SQL, range),
        (CountMethod::PathRange, _) => (PATH_RANGE_SQL, range),
        (CountMethod::RecursiveCte, Some(id)) => (CTE_SQL, vec![Arg::Int(id)]),
        (CountMethod::RecursiveCte, None) => (CTE_ALL_SQL, vec![]),
    }
}

/// Member count for the subtree by `method`, timed. The counters statement answers the
/// member total in its second column; the others in their only one.
pub async fn count(db: &Db, s: &Subtree, method: CountMethod) -> anyhow::Result<(Duration, i64)> {
    use sqlx::Row;
    let (sql, args) = count_sql(s, method);
    let col = if method == CountMethod::Counters { 1 } else { 0 };
    let t = Instant::now();
    let n = match db {
        Db::Sqlite(p) => bound!(sql, &args).fetch_one(p).await?.try_get::<i64, _>(col)?,
        Db::Postgres(p) => bound!(sql, &args).fetch_one(p).await?.try_get::<i64, _>(col)?,
    };
    Ok((t.elapsed(), n))
}

/// The product's search statement for an admin and free text of digits (`Text::DigitsPrefix`
/// in `store/src/members.rs`: one `id_number` range read in index order), for its plan.
/// A copy: keep it in step with the product when that statement changes.
pub fn id_prefix_sql(digits: &str) -> (String, Vec<Arg>) {
    let hi = format!("{digits}~");
    (
        format!("{SEARCH_COLUMNS} WHERE m.id_number >= $1 AND m.id_number < $2 ORDER BY m.id_number, m.id LIMIT $3"),
        vec![Arg::Text(digits.into()), Arg::Text(hi), Arg::Int(51)],
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMethod {
    /// The product's search (`store/src/members.rs::search`, admin scope): a prefix
    /// range over `members (name_key, id)`, ordered by the index, first page of 50 (+1).
    NameKeyPrefix,
    /// The classic substring match: `name LIKE '%…%'`, same columns, order and page.
    LikeScan,
}

impl NameMethod {
    pub fn label(self) -> &'static str {
        match self {
            NameMethod::NameKeyPrefix => "product: name_key prefix range (index)",
            NameMethod::LikeScan => "baseline: name LIKE '%…%' (scan)",
        }
    }
}

const SEARCH_COLUMNS: &str = "SELECT m.id, m.name, m.name_key, m.gender, m.birth_date, m.id_number, m.phone, \
     o.code AS org_code, o.name AS org_name, m.mobility FROM members m JOIN organizations o ON o.id = m.org_id";

/// The statement and arguments of a name search by `method`.
pub fn name_sql(name: &str, method: NameMethod) -> (String, Vec<Arg>) {
    match method {
        NameMethod::NameKeyPrefix => {
            let k = kite_domain::text::name_key(name);
            let hi = kite_domain::text::prefix_upper(&k);
            (
                format!(
                    "{SEARCH_COLUMNS} WHERE m.name_key >= $1 AND m.name_key < $2 ORDER BY m.name_key, m.id LIMIT $3"
                ),
                vec![Arg::Text(k), Arg::Text(hi), Arg::Int(51)],
            )
        }
        NameMethod::LikeScan => (
            format!("{SEARCH_COLUMNS} WHERE m.name LIKE $1 ORDER BY m.name_key, m.id LIMIT $2"),
            vec![Arg::Text(format!("%{name}%")), Arg::Int(51)],
        ),
    }
}

pub async fn name_search(db: &Db, name: &str, method: NameMethod) -> anyhow::Result<(Duration, usize)> {
    let (sql, args) = name_sql(name, method);
    let t = Instant::now();
    let n = db.rows(&sql, &args).await?;
    Ok((t.elapsed(), n))
}
