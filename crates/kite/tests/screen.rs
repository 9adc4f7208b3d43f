//! `kite screen` on both backends: a roster with a title row, members' rows as they are
//! and with a mistyped ID digit, a stranger and an unreadable line is compared with the
//! demo registry; each row gets the right member (or none), what it means for the place
//! screened, and the run is audited. Nothing is written to member records.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use kite_store::{Backend, ScreeningMember, Store};

fn kite(url: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kite"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("kite runs");
    assert!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A digit of the ID number changed (the check digit then fails: the engine repairs it).
fn mistyped(id: &str) -> String {
    let mut b = id.as_bytes().to_vec();
    b[12] = if b[12] == b'5' { b'6' } else { b'5' };
    String::from_utf8(b).expect("ASCII")
}

async fn screen_on(url: &str, dir: &Path, what: &str) {
    kite(url, &["demo", "--members", "600"]);
    let store = Store::connect(url).await.expect("store");
    let members: Vec<ScreeningMember> = store.admin().screening_members(None).await.expect("members");
    let home = members.iter().find(|m| m.org_code.starts_with("SZ")).expect("a member recorded in Suzhou");
    let away: Vec<&ScreeningMember> = members.iter().filter(|m| !m.org_code.starts_with("SZ")).take(6).collect();

    // Line 1 is a title, line 2 the header; data from line 3.
    let mut csv = String::from("苏州市流动人口登记表\n姓名,公民身份号码,联系电话\n");
    for m in away.iter().chain([&home]) {
        csv.push_str(&format!("{},{},{}\n", m.name, m.id_number, m.phone.clone().unwrap_or_default()));
    }
    let typo = away[0];
    csv.push_str(&format!("{},{},\n", typo.name, mistyped(&typo.id_number)));
    csv.push_str("陌生人,320101199001011234,13800000000\n");
    csv.push_str("\"只有,一格\"\n");
    let roster = dir.join(format!("roster-{what}.csv"));
    std::fs::write(&roster, csv).expect("roster written");
    let out_csv = dir.join(format!("out-{what}.csv"));
    let args = ["screen", "--roster", roster.to_str().unwrap(), "--place", "SZ", "--out", out_csv.to_str().unwrap()];
    let out = kite(url, &args);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!((summary["rows"].as_u64(), summary["unreadable"].as_u64()), (Some(9), Some(1)), "{what}: {summary}");

    let text = std::fs::read_to_string(&out_csv).expect("results");
    let rows: HashMap<u64, Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<String> = l.split(',').map(str::to_string).collect();
            (f[0].parse().expect("a line number"), f)
        })
        .collect();
    let (band, member, outcome) = (1, 3, 7);
    for (i, m) in away.iter().enumerate() {
        let r = &rows[&(3 + i as u64)];
        assert_eq!((r[band].as_str(), r[member].as_str()), ("match", m.id.to_string().as_str()), "{what}: {r:?}");
        // Recorded elsewhere: a member to contact and check in here, or one found again.
        let expected = if m.mobility == "lost_contact" { "lost_contact_found" } else { "candidate_inflow" };
        assert_eq!(r[outcome], expected, "{what}: {r:?}");
        assert!(!r.join(",").contains(&m.id_number), "{what}: the full ID number is not written out");
    }
    let r = &rows[&9];
    assert_eq!((r[member].as_str(), r[outcome].as_str()), (home.id.to_string().as_str(), "known_here"), "{what}");
    let r = &rows[&10];
    assert_eq!((r[band].as_str(), r[member].as_str()), ("match", typo.id.to_string().as_str()), "{what}: {r:?}");
    assert_eq!(rows[&11][outcome], "no_match", "{what}");
    assert_eq!((rows[&12][band].as_str(), rows[&12][outcome].as_str()), ("unreadable", "row.too_few_fields"), "{what}");

    // Audited; member records untouched.
    let admin = kite_domain::Principal {
        user_id: 0,
        username: "test".into(),
        role: kite_domain::Role::Admin,
        org_path: None,
        member_id: None,
        service_point_id: None,
    };
    let audit = store.guard(admin, kite_store::Client::default()).audit_recent(20).await.expect("audit");
    assert!(audit
        .iter()
        .any(|a| a.action == "screen.run" && a.after_data.as_deref().is_some_and(|d| d.contains("\"rows\":9"))));
    let again: Vec<ScreeningMember> = store.admin().screening_members(None).await.expect("members");
    assert_eq!(again.len(), members.len());
    store.close().await;
}

#[tokio::test]
async fn a_roster_is_screened_against_the_registry_on_each_backend() {
    let dir = std::env::temp_dir().join(format!("kite-screen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for backend in kite_store::testing::BACKENDS {
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.join("screen.db").display());
                screen_on(&url, &dir, "sqlite").await;
            }
            Backend::Postgres => {
                // A database of its own: the command runs in a process of its own.
                let admin = std::env::var("KITE_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| kite_store::testing::DEFAULT_POSTGRES_URL.into());
                let name = format!("kite_screen_{}", std::process::id());
                let (base, _) = admin.rsplit_once('/').expect("a database URL");
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL is required for the tests at {admin}: {e}"));
                sqlx::Executor::execute(&mut c, format!("DROP DATABASE IF EXISTS {name}").as_str()).await.ok();
                sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str()).await.expect("database");
                screen_on(&format!("{base}/{name}"), &dir, "postgres").await;
                sqlx::Executor::execute(&mut c, format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.ok();
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
