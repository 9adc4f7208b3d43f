//! The raw baseline: the same rows a self-service check-in writes into `checkins`,
//! inserted as single-row transactions (one autocommit `INSERT … ON CONFLICT DO NOTHING`
//! each) from C concurrent tasks, straight into the database under test.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::stats::Stats;

/// A row as `checkins::submit` writes it for a known member of a known home branch.
#[derive(Debug, Clone)]
pub struct Row {
    pub request_key: String,
    pub inflow_org_id: i64,
    pub inflow_path: String,
    pub member_id: i64,
    pub home_org_id: i64,
    pub home_path: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub division_code: String,
    pub address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
}

const INSERT: &str = "INSERT INTO checkins (request_key, channel, status, service_point_id, inflow_org_id, \
     inflow_path, member_id, name_matches, home_org_id, home_path, home_org_text, name, id_number, phone, \
     division_code, address, employer, occupation, entered_by, created_at, updated_at) \
     VALUES ($1, 'self', 'pending', NULL, $2, $3, $4, TRUE, $5, $6, NULL, $7, $8, $9, $10, $11, $12, $13, NULL, $14, $14) \
     ON CONFLICT DO NOTHING";

macro_rules! insert {
    ($row:expr, $now:expr) => {
        sqlx::query(INSERT)
            .bind(&$row.request_key)
            .bind($row.inflow_org_id)
            .bind(&$row.inflow_path)
            .bind($row.member_id)
            .bind($row.home_org_id)
            .bind(&$row.home_path)
            .bind(&$row.name)
            .bind(&$row.id_number)
            .bind(&$row.phone)
            .bind(&$row.division_code)
            .bind(&$row.address)
            .bind(&$row.employer)
            .bind(&$row.occupation)
            .bind($now)
    };
}

/// The durability the inserts run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SQLite as the product opens it: WAL, synchronous=FULL, one writer connection.
    SqliteFull,
    /// The same with synchronous=NORMAL (not durable across a power cut), for reference.
    SqliteNormal,
    /// PostgreSQL with the server's settings, C connections.
    Postgres,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::SqliteFull => "WAL, synchronous=FULL, 1 writer connection (the product's settings)",
            Mode::SqliteNormal => {
                "WAL, synchronous=NORMAL, 1 writer connection (reference only, not durable on power loss)"
            }
            Mode::Postgres => "C connections, server defaults (see synchronous_commit above)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Mode::SqliteFull => "full",
            Mode::SqliteNormal => "normal",
            Mode::Postgres => "pg",
        }
    }

    /// Whether this is the durable rate the check-in target is measured against.
    pub fn durable(self) -> bool {
        self != Mode::SqliteNormal
    }
}

pub struct Measured {
    pub mode: Mode,
    pub concurrency: usize,
    pub rows: usize,
    pub inserted: u64,
    pub elapsed: Duration,
    pub stats: Stats,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.inserted as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub async fn run(url: &str, mode: Mode, concurrency: usize, rows: Vec<Row>) -> anyhow::Result<Measured> {
    let pool = match mode {
        Mode::SqliteFull | Mode::SqliteNormal => {
            let sync = if mode == Mode::SqliteFull { SqliteSynchronous::Full } else { SqliteSynchronous::Normal };
            // As `kite_store::db::Pools::sqlite` opens its writer.
            let opts = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sync)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", "-65536");
            Pool::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?)
        }
        Mode::Postgres => {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(concurrency as u32)
                .min_connections(concurrency as u32)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await?;
            Pool::Postgres(pool)
        }
    };
    let n = rows.len();
    let rows = Arc::new(rows);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (pool, rows, next) = (pool.clone(), rows.clone(), next.clone());
        tasks.spawn(async move {
            let mut times = Vec::new();
            let mut inserted = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(row) = rows.get(i) else { break };
                let now: DateTime<Utc> = Utc::now();
                let t = Instant::now();
                let done = match &pool {
                    Pool::Sqlite(p) => insert!(row, now).execute(p).await.map(|r| r.rows_affected()),
                    Pool::Postgres(p) => insert!(row, now).execute(p).await.map(|r| r.rows_affected()),
                };
                times.push(t.elapsed());
                inserted += done.with_context(|| format!("raw insert of {}", row.request_key))?;
            }
            anyhow::Ok((times, inserted))
        });
    }
    let mut times = Vec::with_capacity(n);
    let mut inserted = 0;
    while let Some(r) = tasks.join_next().await {
        let (t, k) = r.context("a raw insert task failed")??;
        times.extend(t);
        inserted += k;
    }
    let elapsed = t0.elapsed();
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Postgres(p) => p.close().await,
    }
    ensure!(inserted as usize == n, "raw inserts: {inserted} rows inserted of {n} (keys already present?)");
    Ok(Measured { mode, concurrency, rows: n, inserted, elapsed, stats: Stats::from_durations(times) })
}
