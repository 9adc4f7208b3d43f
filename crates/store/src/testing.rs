//! Fresh, migrated stores for tests: a temporary SQLite file, or a new schema in the
//! PostgreSQL named by `KITE_TEST_POSTGRES_URL` (default: the local `test` database).
//! A missing PostgreSQL is an error, never a skipped test.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection;

use crate::{Backend, Store};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{n}_{}", std::process::id(), t % 1_000_000_000)
}

pub async fn store(backend: Backend) -> Store {
    let store = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("kite-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join(format!("{}.db", unique("t")));
            Store::connect_sqlite(SqliteConnectOptions::new().filename(path)).await.expect("sqlite store")
        }
        Backend::Postgres => {
            let url = std::env::var("KITE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
            let schema = unique("kite_t");
            let mut c = sqlx::PgConnection::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for the tests at {url}: {e}"));
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut c).await.expect("create schema");
            c.close().await.ok();
            let opts = PgConnectOptions::from_str(&url).expect("url").options([("search_path", schema.as_str())]);
            Store::connect_postgres(opts).await.expect("postgres store")
        }
    };
    store.migrate().await.expect("migrate");
    store
}

/// Both backends, for tests that must hold on each.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// Runs a test once per backend on a fresh store: `start` turns the store into what the
/// test takes (the store itself, a server around it), `test` runs in a task of its own,
/// so that a panic on one backend is reported with the backend's name and does not keep
/// the other from running. A missing PostgreSQL fails the test.
pub async fn on_each_backend<T, S, SFut, F, Fut>(start: S, test: F)
where
    S: Fn(Backend, Store) -> SFut,
    SFut: std::future::Future<Output = T>,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut failed = Vec::new();
    for backend in BACKENDS {
        let store = store(backend).await;
        assert_eq!(store.backend(), backend);
        let subject = start(backend, store.clone()).await;
        if let Err(e) = tokio::spawn(test(subject)).await {
            let msg = match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            failed.push(format!("{backend:?}: {msg}"));
        }
        store.close().await;
    }
    assert!(failed.is_empty(), "failed on {}", failed.join("\n  and on "));
}

/// Keeps the store's check-in writer from starting its next batch until the guard is
/// dropped: check-ins sent meanwhile are then committed together (up to the batch size).
pub async fn hold_checkin_writer(store: &Store) -> tokio::sync::OwnedRwLockWriteGuard<()> {
    store.checkin_writer.hold(&store.pools).await
}

/// Check-ins queued for the writer and not yet in a batch.
pub fn checkins_waiting(store: &Store) -> usize {
    store.checkin_writer.waiting(&store.pools)
}

/// The most check-ins the writer has committed in one transaction so far.
pub fn largest_checkin_batch(store: &Store) -> usize {
    store.checkin_writer.largest_batch(&store.pools)
}

/// Check-in batches that could not be written whole and went one request at a time.
pub fn checkin_batches_one_by_one(store: &Store) -> usize {
    store.checkin_writer.one_by_one(&store.pools)
}

/// Runs SQL statements as they are (separated by `;`, on the writer), for tests that
/// need the database to misbehave, e.g. a trigger that refuses some rows.
pub async fn run_sql(store: &Store, sql: &str) {
    use sqlx::Executor;
    let mut tx = store.pools.write().await.expect("a write transaction");
    match &mut tx {
        crate::db::Tx::Sqlite(t) => {
            t.execute(sql).await.expect("the SQL runs");
        }
        crate::db::Tx::Postgres(t) => {
            t.execute(sql).await.expect("the SQL runs");
        }
    }
    tx.commit().await.expect("committed");
}

/// The audit records of one target, newest first.
pub async fn audit_of(store: &Store, target_type: &str, target_id: &str) -> Vec<crate::AuditEntry> {
    let mut tx = store.pools.read().await.expect("a read transaction");
    crate::audit::for_target(&mut tx, target_type, target_id, 100).await.expect("the audit log")
}

/// How many audit records there are of `action`.
pub async fn audit_count(store: &Store, action: &str) -> i64 {
    let mut tx = store.pools.read().await.expect("a read transaction");
    crate::on!(&mut tx, c => sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
        .bind(action).fetch_one(c).await)
    .expect("the audit log")
}
