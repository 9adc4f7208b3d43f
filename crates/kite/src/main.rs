//! `kite`: serve, migrate, load the demo region, manage accounts.

use std::io::Read;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use kite_domain::Role;
use kite_server::notify::{self, Gateway, Notifier};
use kite_store::{NewUser, Store, StoreError};

mod screen;

const DEFAULT_DATABASE_URL: &str = "sqlite://./kite-data/kite.db";
const DEMO_MEMBERS: usize = 20_000;

#[derive(Parser)]
#[command(name = "kite", version, about = "风筝 Kite: mobile party member management")]
struct Cli {
    /// sqlite://PATH (created if missing) or postgres://USER@HOST/DB
    #[arg(long, env = "KITE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    /// How often inflow organizations evaluate their inflow members: quarter, half_year or year.
    #[arg(long, env = "KITE_EVALUATION_CYCLE", default_value = "half_year", global = true)]
    evaluation_cycle: String,
    /// Days an introduction letter for a transfer is valid unless the approver says otherwise.
    #[arg(long, env = "KITE_LETTER_DAYS", default_value_t = kite_domain::transfer::DEFAULT_LETTER_DAYS, global = true)]
    letter_days: u32,
    /// The longest an introduction letter may be valid, extensions included, in months (1–12).
    #[arg(long, env = "KITE_LETTER_MAX_MONTHS", default_value_t = kite_domain::transfer::DEFAULT_LETTER_MAX_MONTHS, global = true)]
    letter_max_months: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and the JSON API.
    Serve {
        #[arg(long, env = "KITE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Load the demo region first when the database holds no organizations.
        #[arg(long)]
        demo: bool,
        /// Mark cookies Secure (when served behind HTTPS).
        #[arg(long, env = "KITE_SECURE_COOKIES")]
        secure_cookies: bool,
        /// The address the public reaches this server at, e.g. https://kite.example.gov.cn,
        /// printed in check-in QR codes (default: the address each request came to).
        #[arg(long, env = "KITE_PUBLIC_URL")]
        public_url: Option<String>,
        /// A reverse proxy (IP address) whose X-Forwarded-For header names the client, for
        /// the audit log and the rate limits; repeat for each, or separate with commas.
        #[arg(long, env = "KITE_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxy: Vec<std::net::IpAddr>,
        /// An HTTP SMS gateway that delivers one-time codes (POST, JSON; see the README);
        /// without it they stay in the outbox, shown to administrators at /outbox.
        #[arg(long, env = "KITE_SMS_GATEWAY_URL", hide_env_values = true)]
        sms_gateway_url: Option<String>,
        /// Sent to the SMS gateway as `Authorization: Bearer TOKEN`.
        #[arg(long, env = "KITE_SMS_GATEWAY_TOKEN", hide_env_values = true)]
        sms_gateway_token: Option<String>,
    },
    /// Apply database migrations.
    Migrate,
    /// Apply the daily date rules once (`serve` does it every hour by itself).
    Daily,
    /// Load the demo region into an empty database.
    Demo {
        #[arg(long, default_value_t = DEMO_MEMBERS)]
        members: usize,
    },
    /// Screening (动态排查): compare rosters from other departments with the registry.
    Screen {
        #[command(subcommand)]
        command: ScreenCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum ScreenCommand {
    /// Match a roster (CSV, TSV or .xlsx) against the registry: an export (`--members`,
    /// no database) or the database's. Writes MATCHES.csv with
    /// `roster_line,member_id_number,score,band`; nothing is written to member records,
    /// and a run against the database is audited.
    Match {
        /// The roster file.
        #[arg(long)]
        roster: std::path::PathBuf,
        /// A registry export (姓名,公民身份号码,性别,出生日期,手机号码,现居住地) instead of the database.
        #[arg(long)]
        members: Option<std::path::PathBuf>,
        /// Organization code: compare with the members of its subtree only (default: all).
        #[arg(long)]
        scope: Option<String>,
        /// Organization code of the place screened, for --outcomes (default: the scope).
        #[arg(long)]
        place: Option<String>,
        #[arg(long, default_value = "MATCHES.csv")]
        out: std::path::PathBuf,
        /// Also write, per roster row, the member found (ID number masked) and what it
        /// means for the place: known_here, candidate_inflow, lost_contact_found, to_review,
        /// no_match, or unreadable with the reason.
        #[arg(long)]
        outcomes: Option<std::path::PathBuf>,
        /// A column mapping (JSON, as `kite screen columns` prints it, edited) instead of
        /// the one detected from the header.
        #[arg(long)]
        mapping: Option<std::path::PathBuf>,
        /// m and u probabilities set by hand (JSON, as --save-model writes them) instead of
        /// estimated from the roster by EM.
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Write the model the run used (estimated or given) as JSON.
        #[arg(long)]
        save_model: Option<std::path::PathBuf>,
    },
    /// Show what is detected in a roster: format, encoding, the first rows (ID numbers
    /// masked) and the column mapping, as JSON to edit and pass to `match --mapping`.
    Columns {
        /// The roster file.
        roster: std::path::PathBuf,
    },
    /// Write the registry of a scope as the file `match --members` reads (姓名,公民身份号码,
    /// 性别,出生日期,手机号码,现居住地), readable by its owner only; the export of full ID
    /// numbers is audited.
    Export {
        /// Organization code: the members of its subtree (default: all).
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, default_value = "MEMBERS.csv")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        /// admin, org_admin, secretary, service_staff or member
        #[arg(long)]
        role: String,
        /// Code of the organization the account is bound to.
        #[arg(long)]
        org: Option<String>,
        /// Member record of a member account.
        #[arg(long)]
        member_id: Option<i64>,
        /// Code of the service point a service_staff account works at.
        #[arg(long)]
        service_point: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let cycle = kite_domain::EvaluationCycle::from_code(&cli.evaluation_cycle)
        .with_context(|| format!("unknown evaluation cycle {:?} (quarter, half_year, year)", cli.evaluation_cycle))?;
    let letters = kite_domain::transfer::LetterRules::new(cli.letter_days, cli.letter_max_months).map_err(|code| {
        anyhow::anyhow!(
            "--letter-days {} with --letter-max-months {}: {}",
            cli.letter_days,
            cli.letter_max_months,
            kite_server::i18n::t(kite_server::i18n::Lang::En, &format!("err.{code}"))
        )
    })?;
    // A registry export needs no database.
    if let Command::Screen {
        command:
            ScreenCommand::Match { roster, members: Some(members), scope, place, out, outcomes, mapping, model, save_model },
    } = &cli.command
    {
        let run = screen::Run {
            roster,
            members: Some(members),
            scope: scope.as_deref(),
            place: place.as_deref(),
            out,
            outcomes: outcomes.as_deref(),
            mapping: mapping.as_deref(),
            model: model.as_deref(),
            save_model: save_model.as_deref(),
        };
        return screen::run(None, &run).await;
    }
    if let Command::Screen { command: ScreenCommand::Columns { roster } } = &cli.command {
        return screen::columns(roster);
    }
    // Settings are checked before the database is touched.
    let notifier = match &cli.command {
        Command::Serve { sms_gateway_url, sms_gateway_token, .. } => {
            notifier(sms_gateway_url.as_deref(), sms_gateway_token.as_deref())?
        }
        _ => Notifier::OutboxOnly,
    };
    let store = Store::connect(&cli.database_url)
        .await
        .with_context(|| format!("connecting to {}", cli.database_url))?
        .with_evaluation_cycle(cycle)
        .with_letter_rules(letters);
    store.migrate().await.context("migrating the database")?;
    match cli.command {
        Command::Migrate => println!("migrations applied"),
        Command::Daily => {
            let n = store.run_daily(kite_server::rules::today()).await?;
            println!("daily rules applied: {n} flows now count as mobile");
        }
        Command::Screen {
            command: ScreenCommand::Match { roster, members, scope, place, out, outcomes, mapping, model, save_model },
        } => {
            let run = screen::Run {
                roster: &roster,
                members: members.as_deref(),
                scope: scope.as_deref(),
                place: place.as_deref(),
                out: &out,
                outcomes: outcomes.as_deref(),
                mapping: mapping.as_deref(),
                model: model.as_deref(),
                save_model: save_model.as_deref(),
            };
            screen::run(Some(&store), &run).await?;
        }
        Command::Screen { command: ScreenCommand::Export { scope, out } } => {
            screen::export(&store, scope.as_deref(), &out).await?;
        }
        Command::Screen { command: ScreenCommand::Columns { roster } } => screen::columns(&roster)?,
        Command::Demo { members } => {
            demo(&store, members).await?;
        }
        Command::Serve { listen, demo: with_demo, secure_cookies, public_url, trusted_proxy, .. } => {
            if with_demo && store.admin().org_count().await? == 0 {
                demo(&store, DEMO_MEMBERS).await?;
            }
            let mut state = kite_server::AppState::new(store);
            state.secure_cookies = secure_cookies;
            state.public_url = public_url;
            state.trusted_proxies = std::sync::Arc::new(trusted_proxy);
            println!("Kite is serving on http://{listen}/  (API: http://{listen}/api/openapi.json)");
            if with_demo {
                print_demo_accounts();
            }
            kite_server::serve(state, listen, notifier).await?;
        }
        Command::User {
            command: UserCommand::Add { username, role, org, member_id, service_point, password_stdin },
        } => {
            let role = Role::from_code(&role).with_context(|| format!("unknown role {role:?}"))?;
            if !password_stdin {
                bail!("pass the password on standard input with --password-stdin");
            }
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.chars().count() < 8 {
                bail!("the password must have at least 8 characters");
            }
            let hash = kite_server::auth::hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let user = store
                .accounts()
                .create_user(
                    &NewUser {
                        username,
                        password_hash: hash,
                        role,
                        org_code: org,
                        member_id,
                        display_name: None,
                        service_point_code: service_point,
                    },
                    "cli",
                )
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the account: {}", describe(&e)))?;
            println!("created user {} ({})", user.username, role.code());
        }
    }
    Ok(())
}

/// The SMS notifier the flags ask for, checked before anything starts.
fn notifier(url: Option<&str>, token: Option<&str>) -> anyhow::Result<Notifier> {
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    match url {
        None if token.is_some() => {
            bail!("--sms-gateway-token (KITE_SMS_GATEWAY_TOKEN) is set but --sms-gateway-url is not")
        }
        None => Ok(Notifier::OutboxOnly),
        Some(url) => Ok(Notifier::Gateway(Gateway::new(url, token, notify::GATEWAY_TIMEOUT)?)),
    }
}

/// A storage refusal as an operator reads it: each field with its message.
fn describe(e: &StoreError) -> String {
    use kite_server::i18n::{err, Lang};
    match e {
        StoreError::Invalid(fields) => {
            fields.0.iter().map(|f| format!("{}: {}", f.field, err(Lang::En, f.code))).collect::<Vec<_>>().join("; ")
        }
        StoreError::Conflict(code) => err(Lang::En, code),
        other => other.to_string(),
    }
}

async fn demo(store: &Store, members: usize) -> anyhow::Result<()> {
    if store.admin().org_count().await? > 0 {
        bail!("the database already holds organizations; the demo loads only into an empty one");
    }
    println!("loading the demo region ({members} members)…");
    let (m, f) = kite_demo::load(store, members).await?;
    for (username, role, org, point, password) in kite_demo::ACCOUNTS {
        let hash = kite_server::auth::hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        let new = NewUser {
            username: username.to_string(),
            password_hash: hash,
            role: *role,
            org_code: org.map(str::to_string),
            member_id: None,
            display_name: None,
            service_point_code: point.map(str::to_string),
        };
        store
            .accounts()
            .create_user(&new, "demo")
            .await
            .map_err(|e| anyhow::anyhow!("demo account {username}: {e:?}"))?;
    }
    let (checkins, evaluations) = kite_demo::activity(store, members).await?;
    let agreements = kite_demo::agreements(store).await?;
    let certificates = kite_demo::certificates(store).await?;
    let transfers = kite_demo::transfers(store).await?;
    let screened = demo_screening(store).await?;
    println!(
        "demo region loaded: {m} members, {f} away, {checkins} check-ins waiting, {evaluations} evaluations, \
         {agreements} co-management agreements, {certificates} activity certificates, {transfers} transfers, \
         {screened} screening matches"
    );
    Ok(())
}

fn print_demo_accounts() {
    println!("Demo accounts (user / password / role):");
    for (username, role, org, point, password) in kite_demo::ACCOUNTS {
        println!(
            "  {username:<14} {password:<16} {}{}{}",
            role.code(),
            org.map(|o| format!(" @ {o}")).unwrap_or_default(),
            point.map(|p| format!(" (service point {p})")).unwrap_or_default()
        );
    }
}

/// The demo's screening (动态排查): Guannan screens rosters from Suzhou, where its members
/// went. A spring campaign reviewed and closed (its roster deleted), and a winter one still
/// open with matches to review. Returns how many matches the runs found.
async fn demo_screening(store: &Store) -> anyhow::Result<usize> {
    use kite_domain::screening::{Campaign, Decision};
    use std::io::Write;
    let (user, _) = store.accounts().user_by_username("guannan").await?.context("the demo account guannan")?;
    let who = (user.principal(), kite_store::Client { address: Some("demo".into()) });
    let g = store.guard(who.0.clone(), who.1.clone());
    let state = kite_server::AppState::new(store.clone());
    let members = store.admin().screening_members(Some("GN")).await?;
    let suzhou = store.admin().org_path("SZ").await?.context("the demo's Suzhou")?;
    let today = kite_server::rules::today();
    let days = |n: u64| today - chrono::Days::new(n);
    let plan = [
        (
            "2026年上半年流动党员排查（苏州）",
            (days(200), days(140)),
            "苏州工业园区流动人口居住登记名单",
            "苏州市公安局工业园区分局",
            "流动人口居住登记.csv",
            11,
        ),
        (
            "2026年冬季流动党员排查（苏州）",
            (days(10), today + chrono::Days::new(50)),
            "苏州市社会保险参保人员名单",
            "苏州市人力资源和社会保障局",
            "社保参保人员名单.csv",
            12,
        ),
    ];
    let mut found = 0;
    for (i, (name, (starts_on, ends_on), title, source, file_name, seed)) in plan.into_iter().enumerate() {
        let closing = i == 0;
        let c = g.campaign_create("GN", Some("SZ"), &Campaign { name: name.into(), starts_on, ends_on }).await?;
        let csv = kite_demo::screening::roster(&members, &suzhou, title, 25, seed);
        let mut file = tempfile::NamedTempFile::new()?;
        file.write_all(csv.as_bytes())?;
        let received = kite_server::api::screening::Received {
            file,
            file_name: file_name.into(),
            size: csv.len() as u64,
            texts: Vec::new(),
        };
        let r = kite_server::api::screening::store_upload(&state, who.clone(), c.id, received, Some(source.into()))
            .await
            .map_err(|e| anyhow::anyhow!("demo roster: {e:?}"))?;
        let r = kite_server::screening::run_to_end(&state, who.clone(), c.id, r.roster.id).await?;
        anyhow::ensure!(r.roster.status == "done", "demo roster run: {:?}", r.roster.failure);
        let matches = g.campaign_matches(c.id, true).await?;
        found += matches.len();
        // Spring: everything reviewed; winter: the first few, the rest waits.
        let reviewed = if closing { matches.len() } else { 3 };
        for m in matches.iter().take(reviewed) {
            let decision = if m.band == "match" { Decision::Accepted } else { Decision::Rejected };
            let note = match (decision, m.outcome.as_str()) {
                (Decision::Rejected, _) => "核实后不是同一人",
                (_, "candidate_inflow") => "已电话联系，请流入地党组织督促报到",
                (_, "lost_contact_found") => "已取得联系，恢复联系",
                _ => "已在当地报到",
            };
            g.campaign_decide(c.id, m.id, m.version, decision, Some(note)).await?;
        }
        if closing {
            let version = g.campaign(c.id).await?.campaign.version;
            g.campaign_close(c.id, version).await?;
        }
    }
    Ok(found)
}
