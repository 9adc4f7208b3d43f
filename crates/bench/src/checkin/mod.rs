//! The check-in load benchmark (`kite-bench checkin`, `scripts/bench-checkin.sh`).
//!
//! Per backend: a fresh database with the demo region's organizations and only members
//! away from home (with their open flows), loaded with the store's bulk API; `kite serve`
//! as a child process. For each concurrency C: the raw baseline (the same rows inserted
//! straight into `checkins` as single-row transactions from C tasks), then one-time codes
//! requested over HTTP and read from the outbox (not timed), then N self-service
//! check-ins posted by the load generator (a second process) from C connections. Every
//! acknowledged check-in is then looked up by its request key. Last, a run in which the
//! server is killed with SIGKILL halfway, checked after a restart, and retries.

pub mod loadgen;
mod raw;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use kite_domain::OrgLevel;
use kite_store::{NewFlow, NewMember, NewOrg, Store};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::baseline::Db;
use crate::http::Server;
use crate::stats::Stats;

#[derive(clap::Args, Debug)]
pub struct CheckinArgs {
    /// Check-ins per concurrency level and backend, each by a different member.
    #[arg(long, default_value_t = 20_000)]
    pub checkins: usize,
    /// Concurrent connections of the load generator: one measured run per value.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub concurrency: Vec<usize>,
    /// Check-ins in the run during which the server is killed (0: no such run).
    #[arg(long, default_value_t = 10_000)]
    pub kill_checkins: usize,
    #[arg(long, default_value_t = 64)]
    pub kill_concurrency: usize,
    /// Acknowledged check-ins re-sent in the retry check, from each of two runs.
    #[arg(long, default_value_t = 500)]
    pub retries: usize,
    /// Backends to run, in order: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// A PostgreSQL database to connect to for creating (and dropping) the bench database.
    #[arg(long, env = "KITE_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_admin_url: String,
    /// The PostgreSQL database the bench creates (dropped first if it exists).
    #[arg(long, default_value = "kite_bench_checkin")]
    pub postgres_db: String,
    /// The `kite` binary (default: next to this one, i.e. target/release/kite).
    #[arg(long)]
    pub kite_bin: Option<PathBuf>,
    /// Where the SQLite database, generator files and server logs go (default: a new
    /// directory under the temp dir, removed afterwards unless --keep).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 20_240_616)]
    pub seed: u64,
    /// Keep the work directory and the PostgreSQL database afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Concurrency of the (untimed) code requests before each run.
const SETUP_CONCURRENCY: usize = 16;

/// A member away from home who checks in, and where.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub id_number: String,
    /// Unique per person, so that each has its own one-time code.
    pub phone: String,
    pub home_org_code: String,
    /// The destination branch whose check-in link (`/c/o/{code}`) the member opens.
    pub dest_code: String,
    pub division_code: String,
    pub address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
}

pub struct People {
    pub orgs: Vec<NewOrg>,
    pub members: Vec<NewMember>,
    pub flows: Vec<NewFlow>,
    pub persons: Vec<Person>,
    /// Members the demo generator made to find enough who are away.
    pub generated: usize,
}

/// The demo region's members away from home, `total` of them (the others are dropped).
fn people(total: usize, seed: u64) -> anyhow::Result<People> {
    let orgs = kite_demo::organizations();
    // Destination branches: branch level, code CITY-XXnn (home branches have two dashes).
    let dests: Vec<(&str, &str)> = orgs
        .iter()
        .filter(|o| o.fields.level == OrgLevel::Branch && o.code.matches('-').count() == 1)
        .map(|o| (o.code.as_str(), o.fields.division_code.as_str()))
        .collect();
    ensure!(!dests.is_empty(), "the demo region has no destination branches");
    let mut generate = total * 9 + 1000;
    let (members, flows) = loop {
        let (m, f) = kite_demo::members(generate, seed);
        if f.len() >= total {
            break (m, f);
        }
        generate += generate / 2;
    };
    let mut flows = flows;
    flows.truncate(total);
    let by_id: HashMap<&str, &NewMember> = members.iter().map(|m| (m.fields.id_number.as_str(), m)).collect();
    let mut away = Vec::with_capacity(total);
    let mut persons = Vec::with_capacity(total);
    for (i, f) in flows.iter().enumerate() {
        let m = *by_id.get(f.id_number.as_str()).context("a demo flow without its member")?;
        away.push(m.clone());
        let here: Vec<&(&str, &str)> = dests.iter().filter(|(_, d)| *d == f.departure.destination_division).collect();
        let (dest_code, division) = match here.as_slice() {
            [] => dests[i % dests.len()],
            h => *h[i % h.len()],
        };
        persons.push(Person {
            name: m.fields.name.clone(),
            id_number: f.id_number.clone(),
            phone: format!("139{i:08}"),
            home_org_code: f.outflow_org_code.clone(),
            dest_code: dest_code.to_string(),
            division_code: division.to_string(),
            address: f.departure.destination_address.clone(),
            employer: m.fields.employer.clone(),
            occupation: m.fields.occupation.clone(),
        });
    }
    Ok(People { orgs, members: away, flows, persons, generated: generate })
}

/// The bench's own connection to the database under test (not the server's).
enum Conn {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! fetch_all {
    ($conn:expr, $ty:ty, $sql:expr $(, $bind:expr)*) => {
        match $conn {
            Conn::Sqlite(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_all(p).await,
            Conn::Postgres(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_all(p).await,
        }
    };
}

impl Conn {
    async fn open(url: &str) -> anyhow::Result<Conn> {
        Ok(if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(false);
            Conn::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?)
        } else {
            let opts = PgConnectOptions::from_str(url)?;
            Conn::Postgres(PgPoolOptions::new().max_connections(1).connect_with(opts).await?)
        })
    }

    async fn close(self) {
        match self {
            Conn::Sqlite(p) => p.close().await,
            Conn::Postgres(p) => p.close().await,
        }
    }

    /// (id, request key, ID number) of the check-ins whose key starts with `prefix`.
    async fn checkins(&self, prefix: &str) -> anyhow::Result<Vec<(i64, String, String)>> {
        let like = format!("{prefix}%");
        fetch_all!(
            self,
            (i64, String, String),
            "SELECT id, request_key, id_number FROM checkins WHERE request_key LIKE $1",
            &like
        )
        .context("reading check-ins")
    }

    /// The latest code sent to each phone, from the outbox.
    async fn codes(&self) -> anyhow::Result<HashMap<String, String>> {
        let rows = fetch_all!(self, (String, String), "SELECT recipient, body FROM outbox ORDER BY id")
            .context("reading the outbox")?;
        Ok(rows.into_iter().filter_map(|(phone, body)| code_in(&body).map(|c| (phone, c))).collect())
    }

    async fn analyze(&self) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(p) => sqlx::query("ANALYZE").execute(p).await.map(|_| ()),
            Conn::Postgres(p) => sqlx::query("ANALYZE").execute(p).await.map(|_| ()),
        }
        .context("ANALYZE")
    }

    async fn text(&self, sql: &str) -> anyhow::Result<String> {
        let rows = fetch_all!(self, (String,), sql).with_context(|| format!("running {sql}"))?;
        Ok(rows.into_iter().next().map(|r| r.0).unwrap_or_default())
    }

    async fn int(&self, sql: &str) -> anyhow::Result<i64> {
        let rows = fetch_all!(self, (i64,), sql).with_context(|| format!("running {sql}"))?;
        Ok(rows.into_iter().next().map(|r| r.0).unwrap_or_default())
    }
}

/// The six-digit code in an SMS text.
fn code_in(body: &str) -> Option<String> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(body[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// What the bench found in the database for one run's requests.
#[derive(Debug, Clone, Default)]
pub struct Verify {
    pub requests: usize,
    pub acknowledged: usize,
    /// Acknowledged and present.
    pub found: usize,
    /// Acknowledged and absent: a lost check-in.
    pub missing: usize,
    /// Request keys with more than one row.
    pub duplicate_keys: usize,
    /// Members of this run with more than one row.
    pub duplicate_people: usize,
    /// Acknowledged with a reference other than the row's.
    pub wrong_reference: usize,
    /// Rows for requests that were not acknowledged (committed, answer lost).
    pub unacknowledged_rows: usize,
    /// Rows of this run in the table.
    pub rows: usize,
}

impl Verify {
    pub fn clean(&self) -> bool {
        self.missing == 0 && self.duplicate_keys == 0 && self.duplicate_people == 0 && self.wrong_reference == 0
    }
}

/// One run's requests: the key and member of each, and the outcome's reference if acknowledged.
struct Sent<'a> {
    prefix: String,
    keys: Vec<String>,
    persons: &'a [Person],
    acked: Vec<Option<String>>,
}

async fn verify(conn: &Conn, s: &Sent<'_>) -> anyhow::Result<Verify> {
    let rows = conn.checkins(&s.prefix).await?;
    let mut by_key: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut by_person: HashMap<&str, usize> = HashMap::new();
    for (id, key, idn) in &rows {
        by_key.entry(key.as_str()).or_default().push(*id);
        *by_person.entry(idn.as_str()).or_default() += 1;
    }
    let mut v = Verify { requests: s.keys.len(), rows: rows.len(), ..Default::default() };
    v.duplicate_keys = by_key.values().filter(|ids| ids.len() > 1).count();
    v.duplicate_people =
        s.persons.iter().filter(|p| by_person.get(p.id_number.as_str()).is_some_and(|n| *n > 1)).count();
    for (key, acked) in s.keys.iter().zip(&s.acked) {
        let ids = by_key.get(key.as_str());
        match acked {
            Some(reference) => {
                v.acknowledged += 1;
                match ids {
                    Some(ids) => {
                        v.found += 1;
                        if !ids.iter().any(|id| format!("BD{id:08}") == *reference) {
                            v.wrong_reference += 1;
                        }
                    }
                    None => v.missing += 1,
                }
            }
            None if ids.is_some() => v.unacknowledged_rows += 1,
            None => {}
        }
    }
    Ok(v)
}

fn body(p: &Person, code: &str, key: &str) -> String {
    serde_json::json!({
        "name": p.name,
        "id_number": p.id_number,
        "phone": p.phone,
        "home_org_code": p.home_org_code,
        "division_code": p.division_code,
        "address": p.address,
        "employer": p.employer,
        "occupation": p.occupation,
        "code": code,
        "request_id": key,
    })
    .to_string()
}

/// Asks the server for a one-time code for each person, from `SETUP_CONCURRENCY`
/// connections, and reads the codes from the outbox: the path a member takes, short of
/// the SMS. Answers the requests (path, body) of the check-ins and how long it took.
async fn prepare(
    base: &str,
    url: &str,
    persons: &[Person],
    prefix: &str,
) -> anyhow::Result<(Vec<String>, Vec<(String, String)>, Duration)> {
    let t = Instant::now();
    let client = reqwest::Client::builder().pool_max_idle_per_host(SETUP_CONCURRENCY).build()?;
    let jobs: Arc<Vec<(String, String)>> = Arc::new(
        persons
            .iter()
            .map(|p| {
                (
                    format!("{base}/api/v1/checkin/o/{}/code", p.dest_code),
                    serde_json::json!({"phone": p.phone}).to_string(),
                )
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SETUP_CONCURRENCY {
        let (client, jobs, next) = (client.clone(), jobs.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((u, b)) = jobs.get(i) else { break };
                let r = client
                    .post(u)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone())
                    .send()
                    .await
                    .with_context(|| format!("POST {u}"))?;
                let status = r.status();
                if status != reqwest::StatusCode::ACCEPTED {
                    bail!("POST {u} {b} answered {status}: {}", r.text().await.unwrap_or_default());
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a code request task failed")??;
    }
    let conn = Conn::open(url).await?;
    let codes = conn.codes().await?;
    // Planner statistics, as a database in service has them from autovacuum: a new
    // database has none for the tables just filled, and its plans are for empty tables.
    conn.analyze().await?;
    conn.close().await;
    let mut keys = Vec::with_capacity(persons.len());
    let mut requests = Vec::with_capacity(persons.len());
    for (i, p) in persons.iter().enumerate() {
        let code = codes.get(&p.phone).with_context(|| format!("no code in the outbox for {}", p.phone))?;
        let key = format!("{prefix}{i:07}");
        requests.push((format!("/api/v1/checkin/o/{}", p.dest_code), body(p, code, &key)));
        keys.push(key);
    }
    Ok((keys, requests, t.elapsed()))
}

/// The statuses of the requests that were not acknowledged, counted, e.g. `409 checkin.in_progress`.
fn failures(outcomes: &[loadgen::Outcome]) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.acknowledged()) {
        let what = if o.status == 0 {
            // Keep the kind of transport error, not the addresses in it.
            let d = &o.detail;
            let kind = if d.contains("Connection refused") {
                "connection refused"
            } else if d.contains("reset") {
                "connection reset"
            } else if d.contains("timed out") || d.contains("timeout") {
                "timeout"
            } else if d.contains("closed") || d.contains("IncompleteMessage") {
                "connection closed before an answer"
            } else {
                "other transport error"
            };
            format!("no answer ({kind})")
        } else {
            format!("{} {}", o.status, o.detail)
        };
        *m.entry(what).or_default() += 1;
    }
    m.into_iter().collect()
}

pub struct LoadRun {
    pub concurrency: usize,
    pub requests: usize,
    pub acknowledged: usize,
    pub failures: Vec<(String, usize)>,
    pub elapsed: Duration,
    /// Latencies of the acknowledged requests.
    pub stats: Stats,
    pub setup: Duration,
    pub verify: Verify,
}

impl LoadRun {
    pub fn rate(&self) -> f64 {
        self.acknowledged as f64 / self.elapsed.as_secs_f64()
    }
}

pub struct Level {
    pub raw: Vec<raw::Measured>,
    pub load: LoadRun,
}

#[derive(Default)]
pub struct Retry {
    pub sent: usize,
    /// 2xx with the reference first acknowledged (or, for a committed but
    /// unacknowledged check-in, the reference of its row).
    pub same_reference: usize,
    /// 2xx with a new check-in (the first attempt had not committed).
    pub new: usize,
    pub other: Vec<(String, usize)>,
}

pub struct KillRun {
    pub concurrency: usize,
    pub requests: usize,
    pub kill_after: Duration,
    pub generator_elapsed: Duration,
    pub generator_done_before_kill: bool,
    pub acknowledged: usize,
    pub failures: Vec<(String, usize)>,
    pub restart: Duration,
    pub verify: Verify,
    pub retry_acked: Retry,
    pub retry_unacked: Retry,
    pub after_retries: Verify,
    /// The first run's figures again after the retries: its rows must not have changed.
    pub first_run_after: Option<Verify>,
}

pub struct BackendResult {
    pub name: &'static str,
    pub version: String,
    pub settings: Vec<String>,
    pub load: Duration,
    pub levels: Vec<Level>,
    pub kill: Option<KillRun>,
    pub db_bytes: u64,
    pub checkin_rows: i64,
}

/// The first measured run, kept for the retry check after the kill.
struct FirstRun {
    prefix: String,
    keys: Vec<String>,
    acked: Vec<Option<String>>,
    requests: Vec<(String, String)>,
    level: usize,
}

fn postgres_url(admin: &str, db: &str) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(admin).context("--postgres-admin-url")?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

pub async fn run(args: CheckinArgs) -> anyhow::Result<()> {
    ensure!(args.checkins > 0 && !args.concurrency.is_empty(), "nothing to run");
    ensure!(args.concurrency.iter().all(|c| *c > 0) && args.kill_concurrency > 0, "concurrency must be at least 1");
    let started = chrono::Local::now();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let kite = match &args.kite_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.parent().context("exe dir")?.join("kite"),
    };
    ensure!(kite.exists(), "{} not found: build it with cargo build --release -p kite", kite.display());
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kite-bench-checkin-{}", std::process::id())));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let levels = args.concurrency.len();
    // Check-ins per level, the kill run, then raw rows (two modes per level on SQLite).
    let total = levels * args.checkins + args.kill_checkins + 2 * levels * args.checkins;
    eprintln!("generating the demo region's members until {total} are away from home…");
    let t = Instant::now();
    let people = people(total, args.seed)?;
    eprintln!(
        "  {} generated, {} loaded, in {:.1} s",
        people.generated,
        people.members.len(),
        t.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for b in &args.backends {
        let r = match b.as_str() {
            "sqlite" => {
                let path = work.join("kite.db");
                for ext in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                }
                let url = format!("sqlite://{}", path.display());
                run_backend(&args, "SQLite", &url, &kite, &work, &people).await?
            }
            "postgres" => {
                let admin = Db::postgres(&args.postgres_admin_url).await.context("connecting to PostgreSQL")?;
                let db = &args.postgres_db;
                ensure!(
                    db.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
                    "--postgres-db: letters, digits and _ only"
                );
                admin.execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
                admin.execute(&format!("CREATE DATABASE \"{db}\"")).await?;
                let url = postgres_url(&args.postgres_admin_url, db)?;
                let r = run_backend(&args, "PostgreSQL", &url, &kite, &work, &people).await;
                if !args.keep {
                    admin.execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
                }
                admin.close().await;
                r?
            }
            other => bail!("unknown backend {other:?}: use sqlite, postgres"),
        };
        results.push(r);
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    let ctx = report::Context {
        args: &args,
        started,
        finished: chrono::Local::now(),
        load_before,
        load_after: std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
        people: &people,
    };
    print!("{}", report::render(&ctx, &results));
    Ok(())
}

async fn run_backend(
    args: &CheckinArgs,
    name: &'static str,
    url: &str,
    kite: &Path,
    work: &Path,
    people: &People,
) -> anyhow::Result<BackendResult> {
    let sqlite = url.starts_with("sqlite:");
    let slug = name.to_lowercase();
    eprintln!("== {name}: loading");
    let t = Instant::now();
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let admin = store.admin();
    admin.insert_orgs(&people.orgs).await?;
    admin.bulk_insert_members(&people.members).await?;
    admin.bulk_insert_flows(&people.flows).await?;
    admin.insert_service_points(&kite_demo::service_points()).await?;
    admin.recount().await?;
    store.close().await;
    let load = t.elapsed();
    eprintln!("  {:.1} s", load.as_secs_f64());

    let conn = Conn::open(url).await?;
    let (version, settings) = if sqlite {
        let v = conn.text("SELECT sqlite_version()").await?;
        (v, vec!["the server and the raw baseline open the file in WAL mode, one writer connection".to_string()])
    } else {
        let v = conn.text("SHOW server_version").await?;
        let mut s = Vec::new();
        for k in ["synchronous_commit", "fsync", "wal_sync_method", "commit_delay", "max_connections", "shared_buffers"]
        {
            s.push(format!("{k}={}", conn.text(&format!("SHOW {k}")).await?));
        }
        (v, s)
    };
    // Ids and paths for the raw rows, as `checkins::submit` would find them.
    let orgs: HashMap<String, (i64, String)> =
        fetch_all!(&conn, (i64, String, String), "SELECT id, code, path FROM organizations")?
            .into_iter()
            .map(|(id, code, path)| (code, (id, path)))
            .collect();
    let members: HashMap<String, i64> = fetch_all!(&conn, (i64, String), "SELECT id, id_number FROM members")?
        .into_iter()
        .map(|(id, n)| (n, id))
        .collect();
    conn.close().await;
    let raw_row = |p: &Person, key: String| -> anyhow::Result<raw::Row> {
        let (inflow_org_id, inflow_path) = orgs.get(&p.dest_code).context("destination not loaded")?.clone();
        let (home_org_id, home_path) = orgs.get(&p.home_org_code).context("home branch not loaded")?.clone();
        Ok(raw::Row {
            request_key: key,
            inflow_org_id,
            inflow_path,
            member_id: *members.get(&p.id_number).context("member not loaded")?,
            home_org_id,
            home_path,
            name: p.name.clone(),
            id_number: p.id_number.clone(),
            phone: p.phone.clone(),
            division_code: p.division_code.clone(),
            address: p.address.clone(),
            employer: p.employer.clone(),
            occupation: p.occupation.clone(),
        })
    };

    let mut server = Server::start(kite, url, work.join(format!("server-{slug}.log"))).await?;
    let base = server.base.clone();
    let n = args.checkins;
    let levels = args.concurrency.len();
    let raw_start = levels * n + args.kill_checkins;
    let mut out_levels = Vec::new();
    let mut first_run: Option<FirstRun> = None;
    for (li, &c) in args.concurrency.iter().enumerate() {
        // The raw baseline first, into the same table, with the server up and idle.
        let modes: &[raw::Mode] =
            if sqlite { &[raw::Mode::SqliteFull, raw::Mode::SqliteNormal] } else { &[raw::Mode::Postgres] };
        let mut raws = Vec::new();
        for (mi, &mode) in modes.iter().enumerate() {
            let start = raw_start + (li * 2 + mi) * n;
            let rows = people.persons[start..start + n]
                .iter()
                .enumerate()
                .map(|(i, p)| raw_row(p, format!("raw-{}-c{c}-{i:07}", mode.key())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            eprintln!("  raw inserts, {}, C={c}", mode.key());
            let r = raw::run(url, mode, c, rows).await?;
            eprintln!("    {:.0} rows/s, p99 {} ms", r.rate(), crate::stats::ms(r.stats.pct(99.0)));
            raws.push(r);
        }

        let persons = &people.persons[li * n..(li + 1) * n];
        let prefix = format!("ck-c{c}-");
        eprintln!("== {name}: {n} check-ins from {c} connections");
        let (keys, requests, setup) = prepare(&base, url, persons, &prefix).await?;
        eprintln!("  codes requested and read in {:.1} s", setup.as_secs_f64());
        let run = loadgen::run_to_end(&base, c, &requests, work, &format!("{slug}-c{c}")).await?;
        let acked: Vec<Option<String>> =
            run.outcomes.iter().map(|o| o.acknowledged().then(|| o.detail.clone())).collect();
        let conn = Conn::open(url).await?;
        let sent = Sent { prefix: prefix.clone(), keys: keys.clone(), persons, acked: acked.clone() };
        let v = verify(&conn, &sent).await?;
        conn.close().await;
        let lat: Vec<Duration> = run.outcomes.iter().filter(|o| o.acknowledged()).map(|o| o.latency).collect();
        let load = LoadRun {
            concurrency: c,
            requests: n,
            acknowledged: lat.len(),
            failures: failures(&run.outcomes),
            elapsed: run.elapsed,
            stats: Stats::from_durations(lat),
            setup,
            verify: v,
        };
        eprintln!(
            "  {:.0} check-ins/s, p50 {} ms, p99 {} ms, {} not acknowledged; found {} of {} acknowledged",
            load.rate(),
            crate::stats::ms(load.stats.pct(50.0)),
            crate::stats::ms(load.stats.pct(99.0)),
            n - load.acknowledged,
            load.verify.found,
            load.verify.acknowledged
        );
        if first_run.is_none() {
            first_run = Some(FirstRun { prefix, keys, acked, requests, level: li });
        }
        out_levels.push(Level { raw: raws, load });
    }

    let kill = if args.kill_checkins > 0 {
        let k = args.kill_checkins;
        let c = args.kill_concurrency;
        let persons = &people.persons[levels * n..levels * n + k];
        let prefix = "ck-kill-".to_string();
        eprintln!("== {name}: {k} check-ins from {c} connections, kill -9 of the server halfway");
        let (keys, requests, _) = prepare(&base, url, persons, &prefix).await?;
        // Halfway by the rate measured at the closest concurrency.
        let rate = out_levels
            .iter()
            .min_by_key(|l| l.load.concurrency.abs_diff(c))
            .map(|l| l.load.rate())
            .filter(|r| *r > 0.0)
            .unwrap_or(1000.0);
        let kill_after = Duration::from_secs_f64((k as f64 / 2.0 / rate).clamp(0.2, 120.0));
        let input = work.join(format!("{slug}-kill.in"));
        let output = work.join(format!("{slug}-kill.out"));
        loadgen::write_input(&input, &requests)?;
        let mut child = loadgen::spawn(&base, c, &input, &output)?;
        tokio::time::sleep(kill_after).await;
        let generator_done_before_kill = child.try_wait()?.is_some();
        server.stop(); // SIGKILL
        let run = loadgen::finish(child, &output, k).await?;
        let acked: Vec<Option<String>> =
            run.outcomes.iter().map(|o| o.acknowledged().then(|| o.detail.clone())).collect();
        let acknowledged = acked.iter().filter(|a| a.is_some()).count();
        eprintln!("  killed after {:.2} s; {acknowledged} of {k} acknowledged", kill_after.as_secs_f64());

        let t = Instant::now();
        server = Server::start(kite, url, work.join(format!("server-{slug}-restarted.log"))).await?;
        let restart = t.elapsed();
        let base = server.base.clone();
        let conn = Conn::open(url).await?;
        let sent = Sent { prefix: prefix.clone(), keys: keys.clone(), persons, acked: acked.clone() };
        let v = verify(&conn, &sent).await?;
        eprintln!(
            "  after restart: {} of {} acknowledged found, {} missing, {} duplicate keys, {} committed but unacknowledged",
            v.found, v.acknowledged, v.missing, v.duplicate_keys, v.unacknowledged_rows
        );
        // Which unacknowledged requests had committed, and as which row.
        let committed: HashMap<String, i64> =
            conn.checkins(&prefix).await?.into_iter().map(|(id, key, _)| (key, id)).collect();

        // Retry 1: acknowledged requests sent again, from the first run and this one.
        let mut again: Vec<(String, String)> = Vec::new();
        let mut expect: Vec<String> = Vec::new();
        if let Some(f) = &first_run {
            for (r, a) in f.requests.iter().zip(&f.acked).filter_map(|(r, a)| a.as_ref().map(|a| (r, a))) {
                if expect.len() >= args.retries {
                    break;
                }
                again.push(r.clone());
                expect.push(a.clone());
            }
        }
        for (r, a) in requests.iter().zip(&acked).filter_map(|(r, a)| a.as_ref().map(|a| (r, a))).take(args.retries) {
            again.push(r.clone());
            expect.push(a.clone());
        }
        let rr = loadgen::run_to_end(&base, SETUP_CONCURRENCY, &again, work, &format!("{slug}-retry-acked")).await?;
        let mut retry_acked = Retry { sent: again.len(), other: failures(&rr.outcomes), ..Default::default() };
        for (o, e) in rr.outcomes.iter().zip(&expect) {
            if o.acknowledged() {
                if o.detail == *e {
                    retry_acked.same_reference += 1;
                } else {
                    retry_acked.new += 1;
                }
            }
        }

        // Retry 2: every unacknowledged request, as a client would until answered.
        let unacked: Vec<usize> = (0..k).filter(|i| acked[*i].is_none()).collect();
        let again: Vec<(String, String)> = unacked.iter().map(|i| requests[*i].clone()).collect();
        let ru = loadgen::run_to_end(&base, c, &again, work, &format!("{slug}-retry-unacked")).await?;
        let mut retry_unacked = Retry { sent: again.len(), other: failures(&ru.outcomes), ..Default::default() };
        let mut acked_after = acked.clone();
        for (o, i) in ru.outcomes.iter().zip(&unacked) {
            if o.acknowledged() {
                match committed.get(&keys[*i]) {
                    Some(id) if format!("BD{id:08}") == o.detail => retry_unacked.same_reference += 1,
                    _ => retry_unacked.new += 1,
                }
                acked_after[*i] = Some(o.detail.clone());
            }
        }
        let sent = Sent { prefix, keys, persons, acked: acked_after };
        let after_retries = verify(&conn, &sent).await?;
        let first_run_after = match &first_run {
            Some(f) => {
                let persons = &people.persons[f.level * n..(f.level + 1) * n];
                let s = Sent { prefix: f.prefix.clone(), keys: f.keys.clone(), persons, acked: f.acked.clone() };
                Some(verify(&conn, &s).await?)
            }
            None => None,
        };
        conn.close().await;
        eprintln!(
            "  retries: {} acknowledged re-sent, {} same reference; {} unacknowledged re-sent, {} acknowledged now; \
             rows {} for {k} members",
            retry_acked.sent,
            retry_acked.same_reference,
            retry_unacked.sent,
            retry_unacked.same_reference + retry_unacked.new,
            after_retries.rows
        );
        Some(KillRun {
            concurrency: c,
            requests: k,
            kill_after,
            generator_elapsed: run.elapsed,
            generator_done_before_kill,
            acknowledged,
            failures: failures(&run.outcomes),
            restart,
            verify: v,
            retry_acked,
            retry_unacked,
            after_retries,
            first_run_after,
        })
    } else {
        None
    };
    server.stop();

    let conn = Conn::open(url).await?;
    let checkin_rows = conn.int("SELECT COUNT(*) FROM checkins").await?;
    let db_bytes = if sqlite {
        conn.int("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").await? as u64
    } else {
        conn.int("SELECT CAST(pg_database_size(current_database()) AS BIGINT)").await? as u64
    };
    conn.close().await;
    Ok(BackendResult { name, version, settings, load, levels: out_levels, kill, db_bytes, checkin_rows })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_code_in_either_language() {
        assert_eq!(super::code_in("【风筝】您的报到验证码为042917，10分钟内有效。").as_deref(), Some("042917"));
        assert_eq!(
            super::code_in("[Kite] Your check-in code is 123456, valid for 10 minutes.").as_deref(),
            Some("123456")
        );
        assert_eq!(super::code_in("no code 12345 here 1234567"), None);
    }
}
