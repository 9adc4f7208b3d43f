//! `kite-bench`: loads N members (default 1,000,000) into SQLite and PostgreSQL with the
//! store's bulk API, measures searches and subtree counts through the real `kite serve`,
//! measures the product's storage queries next to classic baselines on the same data,
//! and prints a markdown report on standard output (progress goes to standard error).
//!
//! Not part of the test suite: run it with `scripts/bench.sh`, which writes BENCHMARKS.md.
//!
//! `kite-bench checkin` is the check-in load benchmark instead (`scripts/bench-checkin.sh`).

mod baseline;
mod checkin;
mod data;
mod http;
mod report;
mod stats;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use kite_store::Store;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use baseline::{CountMethod, Db, NameMethod, Subtree};
use stats::{Plan, Stats};

#[derive(Parser, Debug)]
#[command(
    name = "kite-bench",
    about = "Load N members into SQLite and PostgreSQL and measure Kite",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Another suite than the Foundation benchmark (the default).
    #[command(subcommand)]
    pub suite: Option<Suite>,
    /// Members to load into each backend.
    #[arg(long, default_value_t = 1_000_000)]
    pub members: usize,
    /// Backends to run, in order: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// A PostgreSQL database to connect to for creating (and dropping) the bench database.
    #[arg(long, env = "KITE_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_admin_url: String,
    /// The PostgreSQL database the bench creates (dropped first if it exists).
    #[arg(long, default_value = "kite_bench")]
    pub postgres_db: String,
    /// The `kite` binary (default: next to this one, i.e. target/release/kite).
    #[arg(long)]
    pub kite_bin: Option<PathBuf>,
    /// Where the SQLite database and server logs go (default: a new directory under the temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Measured samples per case.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Unmeasured requests per case before the samples.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Time cap per HTTP case once `--min-samples` are taken, in seconds.
    #[arg(long, default_value_t = 120)]
    pub http_budget_secs: u64,
    /// Time cap per storage-level case once `--min-samples` are taken, in seconds.
    #[arg(long, default_value_t = 30)]
    pub baseline_budget_secs: u64,
    #[arg(long, default_value_t = 50)]
    pub min_samples: usize,
    /// Average branch size the org tree is scaled to.
    #[arg(long, default_value_t = 40)]
    pub members_per_branch: usize,
    #[arg(long, default_value_t = 12)]
    pub branches_per_general: usize,
    #[arg(long, default_value_t = 20_240_616)]
    pub seed: u64,
    /// Keep the SQLite file and the PostgreSQL database afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum Suite {
    /// The check-in load benchmark: concurrent self-service check-ins through `kite serve`
    /// next to raw inserts into the same database, and a kill -9 in the middle of a run.
    Checkin(checkin::CheckinArgs),
    /// The load generator the check-in benchmark runs as a second process.
    #[command(hide = true)]
    LoadGen(checkin::loadgen::LoadGenArgs),
}

/// What a search or count case is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Search,
    Subtree,
}

pub struct HttpCase {
    pub label: String,
    pub request: String,
    pub detail: String,
    pub target: Target,
    pub stats: Stats,
}

pub struct CountCase {
    pub group: usize,
    pub method: CountMethod,
    pub stats: Stats,
}

pub struct NameCase {
    pub input: &'static str,
    pub method: NameMethod,
    pub stats: Stats,
    pub rows_min: usize,
    pub rows_max: usize,
}

pub struct BackendRun {
    pub name: &'static str,
    pub version: String,
    pub phases: Vec<(&'static str, Duration)>,
    pub load_total: Duration,
    pub post_load: Option<(&'static str, Duration)>,
    pub db_bytes: u64,
    pub http: Vec<HttpCase>,
    pub mem_start: http::Memory,
    pub mem_end: http::Memory,
    pub counts: Vec<CountCase>,
    pub names: Vec<NameCase>,
    pub plans: Vec<(String, Vec<String>)>,
}

/// Subtrees of one size class, as organization codes (`None`: the whole registry).
pub struct Group {
    pub label: &'static str,
    pub codes: Vec<Option<String>>,
    pub members_min: i64,
    pub members_max: i64,
    pub orgs_min: i64,
    pub orgs_max: i64,
}

fn groups(d: &data::Dataset, n: usize, seed: u64) -> Vec<Group> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7472_6565);
    let mut sample = |v: &[String]| -> Vec<Option<String>> {
        let mut v = v.to_vec();
        v.shuffle(&mut rng);
        v.truncate(n);
        v.into_iter().map(Some).collect()
    };
    let total = d.members.len() as i64;
    let all_orgs = d.orgs.len() as i64;
    let raw: Vec<(&'static str, Vec<Option<String>>)> = vec![
        ("whole registry (no org filter)", vec![None]),
        ("county committee", sample(&d.counties)),
        ("town committee", sample(&d.towns)),
        ("general branch", sample(&d.generals)),
        ("branch", sample(&d.branches)),
    ];
    raw.into_iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(label, codes)| {
            let m = |c: &Option<String>| c.as_ref().map(|c| d.subtree_members[c]).unwrap_or(total);
            let o = |c: &Option<String>| c.as_ref().map(|c| d.subtree_orgs[c]).unwrap_or(all_orgs);
            Group {
                label,
                members_min: codes.iter().map(m).min().unwrap_or(0),
                members_max: codes.iter().map(m).max().unwrap_or(0),
                orgs_min: codes.iter().map(o).min().unwrap_or(0),
                orgs_max: codes.iter().map(o).max().unwrap_or(0),
                codes,
            }
        })
        .collect()
}

fn postgres_url(admin: &str, db: &str) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(admin).context("--postgres-admin-url")?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio");
    match args.suite.take() {
        // One thread: the generator should take as little CPU from the server as it can.
        Some(Suite::LoadGen(a)) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting tokio")?
            .block_on(checkin::loadgen::run(a)),
        Some(Suite::Checkin(a)) => runtime()?.block_on(checkin::run(a)),
        None => runtime()?.block_on(foundation(args)),
    }
}

async fn foundation(args: Args) -> anyhow::Result<()> {
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
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kite-bench-{}", std::process::id())));
    std::fs::create_dir_all(&work)?;

    eprintln!("generating {} members…", args.members);
    let d = data::generate(args.members, args.seed, args.members_per_branch, args.branches_per_general);
    eprintln!(
        "  {} organizations, {} members, {} flows in {:.1} s",
        d.orgs.len(),
        d.members.len(),
        d.flows.len(),
        d.generation_secs
    );
    let q = data::queries(&d, args.samples.max(1), args.seed);
    let groups = groups(&d, args.samples.max(1), args.seed);

    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for b in &args.backends {
        let run = match b.as_str() {
            "sqlite" => {
                let path = work.join("kite.db");
                for ext in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                }
                let url = format!("sqlite://{}", path.display());
                let r = run_backend(&args, "SQLite", &url, None, &kite, &work, &d, &q, &groups, &mut problems).await?;
                if !args.keep {
                    for ext in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                    }
                }
                r
            }
            "postgres" => {
                let admin = Db::postgres(&args.postgres_admin_url).await.context("connecting to PostgreSQL")?;
                let db = &args.postgres_db;
                admin.execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
                admin.execute(&format!("CREATE DATABASE \"{db}\"")).await?;
                let url = postgres_url(&args.postgres_admin_url, db)?;
                let r =
                    run_backend(&args, "PostgreSQL", &url, Some(&admin), &kite, &work, &d, &q, &groups, &mut problems)
                        .await?;
                if !args.keep {
                    admin.execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
                }
                admin.close().await;
                r
            }
            other => anyhow::bail!("unknown backend {other:?}: use sqlite, postgres"),
        };
        runs.push(run);
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
        data: &d,
        groups: &groups,
        queries: &q,
        problems: &problems,
    };
    print!("{}", report::render(&ctx, &runs));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_backend(
    args: &Args,
    name: &'static str,
    url: &str,
    pg_admin: Option<&Db>,
    kite: &std::path::Path,
    work: &std::path::Path,
    d: &data::Dataset,
    q: &data::Queries,
    groups: &[Group],
    problems: &mut Vec<String>,
) -> anyhow::Result<BackendRun> {
    eprintln!("== {name}: loading");
    let mut phases: Vec<(&'static str, Duration)> = Vec::new();
    let t0 = Instant::now();
    let t = Instant::now();
    let store = Store::connect(url).await?;
    store.migrate().await?;
    phases.push(("connect + schema", t.elapsed()));
    let admin = store.admin();
    let t = Instant::now();
    admin.insert_orgs(&d.orgs).await?;
    phases.push(("organizations", t.elapsed()));
    eprintln!("  organizations: {:?}", t.elapsed());
    let t = Instant::now();
    admin.bulk_insert_members(&d.members).await?;
    phases.push(("members", t.elapsed()));
    eprintln!("  members: {:?}", t.elapsed());
    let t = Instant::now();
    admin.bulk_insert_flows(&d.flows).await?;
    phases.push(("flows", t.elapsed()));
    eprintln!("  flows: {:?}", t.elapsed());
    let t = Instant::now();
    admin.recount().await?;
    phases.push(("recount", t.elapsed()));
    eprintln!("  recount: {:?}", t.elapsed());
    let load_total = t0.elapsed();
    store.close().await;
    eprintln!("  load total: {load_total:?}");

    let db = if pg_admin.is_some() { Db::postgres(url).await? } else { Db::sqlite(url).await? };
    let post_load = if pg_admin.is_some() {
        // What autovacuum would do within a minute or so; run now so that every query
        // below sees statistics and a visibility map instead of depending on timing.
        let t = Instant::now();
        db.execute("VACUUM ANALYZE").await?;
        eprintln!("  VACUUM ANALYZE: {:?}", t.elapsed());
        Some(("VACUUM ANALYZE (bench, after the load)", t.elapsed()))
    } else {
        None
    };
    let version = match pg_admin {
        Some(_) => db.text("SHOW server_version").await?,
        None => db.text("SELECT sqlite_version()").await?,
    };

    // ---- through the server ----
    eprintln!("== {name}: HTTP");
    http::add_user(kite, url)?;
    let mut server = http::Server::start(kite, url, work.join(format!("server-{}.log", name.to_lowercase()))).await?;
    let api = http::Api::login(&server.base).await?;
    let mem_start = server.memory()?;
    let http_plan = Plan {
        warmup: args.warmup,
        samples: args.samples,
        budget: Duration::from_secs(args.http_budget_secs),
        min_samples: args.min_samples,
    };
    let mut cases = Vec::new();
    let searches: [(&str, &str, &Vec<String>, bool); 8] = [
        ("search by name: full name", "q=<full name>", &q.full_names, false),
        ("search by name: surname + first given character", "q=<2 characters>", &q.prefixes, false),
        ("search by name: surname only", "q=<1 character>", &q.surnames, false),
        ("search by name: traditional characters", "q=<full name, traditional>", &q.traditional, false),
        ("search by ID: full 18-digit number", "q=<18 digits>", &q.ids, true),
        ("search by ID: 14-digit prefix (county + birth date)", "q=<14 digits>", &q.id_prefix_14, false),
        ("search by ID: 10-digit prefix (county + birth year)", "q=<10 digits>", &q.id_prefix_10, false),
        ("search by ID: 6-digit prefix (county code)", "q=<6 digits>", &q.id_prefix_6, false),
    ];
    for (label, shape, items, exact_id) in searches {
        eprintln!("  {label}");
        let rows = Cell::new((usize::MAX, 0usize));
        let (api, rows_ref) = (&api, &rows);
        let stats = stats::run(items, http_plan, move |v: String| {
            let rows = rows_ref;
            async move {
                let (t, body) = api.get("/api/v1/members", &[("q", v.as_str())]).await?;
                let items = body["items"].as_array().map(|a| a.len()).unwrap_or(0);
                ensure!(items > 0, "no member found for q={v}");
                if exact_id {
                    let masked = kite_domain::id_number::mask(&v);
                    ensure!(
                        items == 1 && body["items"][0]["id_number_masked"] == masked.as_str(),
                        "q={v} did not find exactly that member"
                    );
                }
                let (lo, hi) = rows.get();
                rows.set((lo.min(items), hi.max(items)));
                Ok(t)
            }
        })
        .await?;
        let rows = rows.get();
        cases.push(HttpCase {
            label: label.into(),
            request: format!("GET /api/v1/members?{shape}"),
            detail: format!("{} distinct inputs; {}–{} items per answer (page of 50)", distinct(items), rows.0, rows.1),
            target: Target::Search,
            stats,
        });
    }
    for g in groups {
        eprintln!("  overview: {}", g.label);
        let items: Vec<(Option<String>, i64)> = g
            .codes
            .iter()
            .map(|c| (c.clone(), c.as_ref().map(|c| d.subtree_members[c]).unwrap_or(d.members.len() as i64)))
            .collect();
        let api = &api;
        let stats = stats::run(&items, http_plan, move |(code, expect): (Option<String>, i64)| async move {
            let query: Vec<(&str, &str)> = code.as_deref().map(|c| vec![("org", c)]).unwrap_or_default();
            let (t, body) = api.get("/api/v1/overview", &query).await?;
            ensure!(body["members"] == expect, "overview {code:?}: {body} but {expect} members were loaded");
            Ok(t)
        })
        .await?;
        cases.push(HttpCase {
            label: format!("subtree count: {}", g.label),
            request: if g.codes == [None] {
                "GET /api/v1/overview".into()
            } else {
                "GET /api/v1/overview?org=<code>".into()
            },
            detail: format!(
                "{} subtrees of {} members, {} organizations",
                g.codes.len(),
                range(g.members_min, g.members_max),
                range(g.orgs_min, g.orgs_max)
            ),
            target: Target::Subtree,
            stats,
        });
    }
    let mem_end = server.memory()?;
    server.stop();

    // ---- storage level, same data, product query next to the baselines ----
    eprintln!("== {name}: storage-level baselines");
    let plan = Plan {
        warmup: args.warmup.min(5),
        samples: args.samples,
        budget: Duration::from_secs(args.baseline_budget_secs),
        min_samples: args.min_samples,
    };
    let mut counts = Vec::new();
    let mut first_subtree = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut subtrees = Vec::new();
        for c in &g.codes {
            let expect = c.as_ref().map(|c| d.subtree_members[c]).unwrap_or(d.members.len() as i64);
            subtrees.push(Subtree::resolve(&db, c.as_deref(), expect).await?);
        }
        first_subtree.push((g.label, subtrees[0].clone()));
        for method in CountMethod::ALL {
            eprintln!("  {}: {}", g.label, method.short());
            let wrong: RefCell<Option<String>> = RefCell::new(None);
            let (db, wrong_ref) = (&db, &wrong);
            let stats = stats::run(&subtrees, plan, move |s: Subtree| async move {
                let (t, n) = baseline::count(db, &s, method).await?;
                if n != s.expect_members && wrong_ref.borrow().is_none() {
                    *wrong_ref.borrow_mut() = Some(format!("{n} instead of {}", s.expect_members));
                }
                Ok(t)
            })
            .await?;
            if let Some(w) = wrong.into_inner() {
                problems.push(format!("{name}: {} {} counted {w}", g.label, method.short()));
            }
            counts.push(CountCase { group: gi, method, stats });
        }
    }
    let mut names = Vec::new();
    for (input, list) in [("full name", &q.full_names), ("surname + first given character", &q.prefixes)] {
        for method in [NameMethod::NameKeyPrefix, NameMethod::LikeScan] {
            eprintln!("  name {input}: {}", method.label());
            let rows = Cell::new((usize::MAX, 0usize));
            let (db, rows_ref) = (&db, &rows);
            let stats = stats::run(list, plan, move |v: String| async move {
                let (t, n) = baseline::name_search(db, &v, method).await?;
                let (lo, hi) = rows_ref.get();
                rows_ref.set((lo.min(n), hi.max(n)));
                Ok(t)
            })
            .await?;
            let rows = rows.get();
            names.push(NameCase { input, method, stats, rows_min: rows.0, rows_max: rows.1 });
        }
    }

    // The plans behind the figures, for reading them.
    let mut plans = Vec::new();
    let statistics = match pg_admin {
        Some(_) => "pg_statistic filled by the VACUUM ANALYZE after the load".to_string(),
        None => match db.int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'", &[]).await? {
            0 => "no sqlite_stat1 table: the planner has no statistics (the product never runs ANALYZE)".to_string(),
            _ => "sqlite_stat1 present".to_string(),
        },
    };
    plans.push(("planner statistics".to_string(), vec![statistics]));
    for (label, sub) in &first_subtree {
        for method in CountMethod::ALL {
            let (sql, args) = baseline::count_sql(sub, method);
            plans.push((format!("{} — {label}", method.short()), db.plan(sql, &args).await?));
        }
    }
    for method in [NameMethod::NameKeyPrefix, NameMethod::LikeScan] {
        let name = &q.full_names[0];
        let (sql, args) = baseline::name_sql(name, method);
        plans.push((format!("name search, {} — q={name}", method.label()), db.plan(&sql, &args).await?));
    }
    for digits in [&q.id_prefix_6[0], &q.id_prefix_10[0]] {
        let (sql, args) = baseline::id_prefix_sql(digits);
        plans.push((format!("product: ID-prefix search — q={digits}"), db.plan(&sql, &args).await?));
    }

    let db_bytes = match pg_admin {
        Some(_) => db.int("SELECT CAST(pg_database_size(current_database()) AS BIGINT)", &[]).await? as u64,
        None => {
            let page_count = db.int("PRAGMA page_count", &[]).await?;
            let page_size = db.int("PRAGMA page_size", &[]).await?;
            (page_count * page_size) as u64
        }
    };
    db.close().await;
    Ok(BackendRun {
        name,
        version,
        phases,
        load_total,
        post_load,
        db_bytes,
        http: cases,
        mem_start,
        mem_end,
        counts,
        names,
        plans,
    })
}

fn distinct(v: &[String]) -> usize {
    v.iter().collect::<std::collections::HashSet<_>>().len()
}

pub fn range(a: i64, b: i64) -> String {
    if a == b {
        report::thousands(a)
    } else {
        format!("{}–{}", report::thousands(a), report::thousands(b))
    }
}
