//! The one place where SQLite and PostgreSQL differ at run time: connecting,
//! migrating, and dispatching a query to the right driver. Every SQL text in this
//! crate is written once, with `$1`-style parameters that both drivers accept.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Prepared statements kept per connection: the check-in writer's multi-row statements
/// come in one shape per batch size (see [`ROWS_PER_STATEMENT`]).
const STATEMENT_CACHE: usize = 400;

/// Rows in one multi-row `INSERT`; more go in several.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite allows one writer at a time: writes go through a single connection so
    /// that they queue in-process instead of failing with SQLITE_BUSY.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// A transaction on either backend. Use [`on!`](crate::on) to run a query in it.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs one sqlx expression on the transaction's connection, whatever the backend:
/// `exec!(tx, sqlx::query("…").bind(x))`.
#[macro_export]
macro_rules! on {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Executes a statement and returns the number of rows it affected:
/// `exec!(tx, sqlx::query("UPDATE …").bind(x))`.
#[macro_export]
macro_rules! exec {
    ($tx:expr, $q:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => $q.execute(&mut **t).await.map(|r| r.rows_affected()),
            $crate::db::Tx::Postgres(t) => $q.execute(&mut **t).await.map(|r| r.rows_affected()),
        }
    };
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Pools {
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?;
            Self::sqlite(opts).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::postgres(PgConnectOptions::from_str(url)?).await
        } else {
            Err(StoreError::Config(format!("unsupported database URL {url:?}: use sqlite://PATH or postgres://…")))
        }
    }

    pub(crate) async fn sqlite(opts: SqliteConnectOptions) -> Result<Self, StoreError> {
        let file = opts.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed change survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted content is overwritten, not left in free pages: rosters and their rows
            // are deleted when a campaign closes, and must be gone from the file.
            .pragma("secure_delete", "on")
            .busy_timeout(Duration::from_secs(10));
        // Index upkeep on a large registry touches many pages: the one writer gets a 64 MiB
        // page cache (readers keep SQLite's default).
        let write_opts = opts.clone().pragma("cache_size", "-65536").statement_cache_capacity(STATEMENT_CACHE);
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(write_opts).await?;
        let read = SqlitePoolOptions::new().max_connections(8).connect_with(opts.read_only(false)).await?;
        Ok(Pools::Sqlite { read, write })
    }

    pub(crate) async fn postgres(opts: PgConnectOptions) -> Result<Self, StoreError> {
        let opts = opts.statement_cache_capacity(STATEMENT_CACHE);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Pools::Postgres(pool))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Pools::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite").run(write).await?,
            Pools::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    pub(crate) async fn read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pools::Sqlite { read, .. } => Tx::Sqlite(read.begin().await?),
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub(crate) async fn write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pools::Sqlite { write, .. } => Tx::Sqlite(write.begin().await?),
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// [`Self::write`] for a transaction that reads a while before its first write: on
    /// SQLite it takes the write lock at once (waiting out the busy timeout), so that its
    /// first write cannot fail because another connection wrote meanwhile. Not for
    /// transactions that audit refusals through [`Self::side_write`], which would wait on it.
    pub(crate) async fn write_immediate(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pools::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A write transaction on a connection other than the single SQLite writer, for
    /// audit records of refusals made while the caller's transaction holds the writer.
    /// Refusals are decided before the caller writes anything, so the caller holds no
    /// write lock and this transaction can commit.
    pub(crate) async fn side_write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pools::Sqlite { read, .. } => Tx::Sqlite(read.begin().await?),
            Pools::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Pools::Sqlite { write, .. } => write.is_closed(),
            Pools::Postgres(p) => p.is_closed(),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(p) => p.close().await,
        }
    }
}

/// A bind value for queries whose shape is decided at run time (searches).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
    Date(chrono::NaiveDate),
    Time(chrono::DateTime<chrono::Utc>),
}

/// Adds a bind value and returns its placeholder (`$n`).
pub(crate) fn arg(args: &mut Vec<Arg>, a: Arg) -> String {
    args.push(a);
    format!("${}", args.len())
}

/// Binds run-time arguments in order; generic so one call serves both drivers.
pub(crate) fn bind_args<'q, DB, O>(
    mut q: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    chrono::NaiveDate: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(i) => q.bind(*i),
            Arg::Bool(b) => q.bind(*b),
            Arg::Date(d) => q.bind(*d),
            Arg::Time(t) => q.bind(*t),
        };
    }
    q
}

/// `$from, $from+1, …` for an `IN` list of `n` values padded to the next power of two
/// (see [`padded`]), so that lists of any length share a few statement texts and the
/// drivers' prepared-statement caches keep working.
pub(crate) fn in_list(from: usize, n: usize) -> String {
    if n == 0 {
        // Matches nothing, as an empty list would.
        return "NULL".into();
    }
    let n = n.next_power_of_two();
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `values` padded with its last value to the length [`in_list`] expects (a repeated
/// value does not change what an `IN` list matches).
pub(crate) fn padded<T: Clone>(values: &[T]) -> Vec<T> {
    let mut v = values.to_vec();
    if let Some(last) = values.last() {
        v.resize(values.len().next_power_of_two(), last.clone());
    }
    v
}

/// `VALUES` rows of `cols` placeholders each, numbered from `$1`.
pub(crate) fn values_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", (1..=cols).map(|c| format!("${}", r * cols + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_in_powers_of_two() {
        assert_eq!(in_list(3, 3), "$3, $4, $5, $6");
        assert_eq!(in_list(1, 0), "NULL");
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded::<i32>(&[]), Vec::<i32>::new());
        assert_eq!(values_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
