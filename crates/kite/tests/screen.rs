//! `kite screen` on both backends: a roster with a title row, members' rows as they are
//! and with a mistyped ID digit, a stranger and an unreadable line is compared with the
//! demo registry; each row gets the right member (or none), what it means for the place
//! screened, and the run is audited. Nothing is written to member records.

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

fn kite_fails(url: &str, args: &[&str]) -> String {
    let out =
        Command::new(env!("CARGO_BIN_EXE_kite")).arg("--database-url").arg(url).args(args).output().expect("kite runs");
    assert!(!out.status.success(), "kite {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `file`'s CSV rows after the header, as fields.
fn csv_rows(file: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).expect("results");
    text.trim_start_matches('\u{feff}').lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn admin() -> kite_domain::Principal {
    kite_domain::Principal {
        user_id: 0,
        username: "test".into(),
        role: kite_domain::Role::Admin,
        org_path: None,
        member_id: None,
        service_point_id: None,
    }
}

async fn screen_on(url: &str, dir: &Path, what: &str) {
    kite(url, &["demo", "--members", "600"]);
    let store = Store::connect(url).await.expect("store");

    // The demo's campaigns: one reviewed and closed, its roster deleted; one open, with
    // matches still to review, some of them uncertain.
    let g = store.guard(admin(), kite_store::Client::default());
    let campaigns = g.campaigns().await.expect("campaigns");
    let closed = campaigns.iter().find(|c| c.status == "closed").expect("a finished campaign");
    let open = campaigns.iter().find(|c| c.status == "open").expect("an open campaign");
    assert!(closed.accepted > 0 && closed.rows_read > 0, "{what}: {closed:?}");
    let rosters = g.campaign(closed.id).await.expect("campaign").rosters;
    assert!(rosters.iter().all(|r| !r.kept && r.status == "done"), "{what}: {rosters:?}");
    let waiting = g.campaign_matches(open.id, true).await.expect("matches");
    assert!(waiting.iter().any(|m| m.band == "review"), "{what}: {waiting:?}");
    assert!(waiting.iter().any(|m| m.outcome == "candidate_inflow"), "{what}: {waiting:?}");
    let members: Vec<ScreeningMember> = store.admin().screening_members(None).await.expect("members");
    let sz = store.admin().org_path("SZ").await.expect("read").expect("the demo's Suzhou");
    let in_sz = |p: &str| kite_domain::org::is_within(p, &sz);
    let lost =
        members.iter().find(|m| m.mobility == "lost_contact" && !in_sz(&m.org_path)).expect("a lost-contact member");
    let recorded = members.iter().find(|m| in_sz(&m.org_path)).expect("a member recorded in Suzhou");
    let checked_in = members
        .iter()
        .find(|m| !in_sz(&m.org_path) && m.inflow_path.as_deref().is_some_and(in_sz) && m.mobility != "lost_contact")
        .expect("a member checked in to Suzhou");
    let elsewhere: Vec<&ScreeningMember> = members
        .iter()
        .filter(|m| !in_sz(&m.org_path) && m.inflow_path.is_none() && m.mobility != "lost_contact")
        .take(3)
        .collect();
    // (person, expected outcome) from data row 1 (line 3: a title, then the header).
    let mut people: Vec<(&ScreeningMember, &str)> = elsewhere.iter().map(|m| (*m, "candidate_inflow")).collect();
    people.extend([(lost, "lost_contact_found"), (recorded, "known_here"), (checked_in, "known_here")]);

    let mut csv = String::from("苏州市流动人口登记表\n姓名,公民身份号码,联系电话\n");
    for (m, _) in &people {
        csv.push_str(&format!("{},{},{}\n", m.name, m.id_number, m.phone.clone().unwrap_or_default()));
    }
    let typo = elsewhere[0];
    csv.push_str(&format!("{},{},\n", typo.name, mistyped(&typo.id_number)));
    csv.push_str("陌生人,320101199001011234,13800000000\n");
    csv.push_str("\"只有,一格\"\n");
    let roster = dir.join(format!("roster-{what}.csv"));
    std::fs::write(&roster, csv).expect("roster written");
    let (matches, outcomes) = (dir.join(format!("matches-{what}.csv")), dir.join(format!("outcomes-{what}.csv")));
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    let base = ["screen", "match", "--roster"];
    // Outcomes need a place.
    let err = kite_fails(url, &[&base[..], &[&path(&roster), "--outcomes", &path(&outcomes)]].concat());
    assert!(err.contains("--place"), "{what}: {err}");
    let out = kite(
        url,
        &[&base[..], &[&path(&roster), "--place", "SZ", "--out", &path(&matches), "--outcomes", &path(&outcomes)]]
            .concat(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    let n = people.len() as u64 + 2;
    assert_eq!((summary["rows"].as_u64(), summary["unreadable"].as_u64()), (Some(n), Some(1)), "{what}: {summary}");

    // MATCHES.csv: the interface of the issue, best candidate first for each data row.
    let m_rows = csv_rows(&matches);
    let first = |row: u64| m_rows.iter().find(|r| r[0] == row.to_string()).cloned();
    for (i, (m, _)) in people.iter().enumerate() {
        let r = first(i as u64 + 1).unwrap_or_else(|| panic!("{what}: no match for data row {}", i + 1));
        assert_eq!((r[1].as_str(), r[3].as_str()), (m.id_number.as_str(), "match"), "{what}: {r:?}");
    }
    let typo_row = first(people.len() as u64 + 1).expect("the mistyped row matched");
    assert_eq!(typo_row[1], typo.id_number, "{what}: repaired to the member");
    assert!(first(people.len() as u64 + 2).is_none(), "{what}: the stranger has no candidate");

    // Outcomes: one row per roster row in order, ID numbers masked.
    let o_rows = csv_rows(&outcomes);
    assert_eq!(o_rows.len() as u64, n + 1, "{what}: {o_rows:?}");
    for (i, (m, expected)) in people.iter().enumerate() {
        let r = &o_rows[i];
        assert_eq!((r[3].as_str(), r[7].as_str()), (m.id.to_string().as_str(), *expected), "{what}: {r:?}");
        assert!(!r.join(",").contains(&m.id_number), "{what}: the full ID number is not in the outcomes");
    }
    assert_eq!(o_rows[people.len() + 1][7], "no_match", "{what}");
    assert_eq!(
        (o_rows[people.len() + 2][1].as_str(), o_rows[people.len() + 2][7].as_str()),
        ("unreadable", "row.too_few_fields")
    );

    // The same matches from a registry export, with no database.
    let export = dir.join(format!("members-{what}.csv"));
    kite(url, &["screen", "export", "--out", &path(&export)]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).expect("the export").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{what}: the export is its owner's only");
    }
    assert_eq!(csv_rows(&export).len(), members.len(), "{what}: one row per member");
    let from_file = dir.join(format!("matches-file-{what}.csv"));
    kite(
        "sqlite:///nonexistent/never.db",
        &[&base[..], &[&path(&roster), "--members", &path(&export), "--out", &path(&from_file)]].concat(),
    );
    let f_rows = csv_rows(&from_file);
    for (i, (m, _)) in people.iter().enumerate() {
        let r = f_rows.iter().find(|r| r[0] == (i + 1).to_string()).expect("a match from the export");
        assert_eq!(r[1], m.id_number, "{what}: {r:?}");
    }

    // Audited; member records untouched.
    let audit = store.guard(admin(), kite_store::Client::default()).audit_recent(20).await.expect("audit");
    let runs = audit.iter().filter(|a| a.action == "screen.run" && a.client.as_deref() == Some("cli")).count();
    assert_eq!(runs, 1, "{what}: one audited run (the refused one and the export's are not against the database)");
    assert_eq!(audit.iter().filter(|a| a.action == "screen.export").count(), 1, "{what}: the export is audited");
    let again: Vec<ScreeningMember> = store.admin().screening_members(None).await.expect("members");
    assert_eq!(format!("{again:?}"), format!("{members:?}"), "{what}: member records untouched");
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

/// A registry export of two members, as `kite screen export` writes it.
fn two_members(dir: &Path) -> (std::path::PathBuf, [String; 2]) {
    use kite_domain::id_number::compose;
    use kite_domain::Gender;
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a date");
    let ids = [
        compose("320724", date(1988, 3, 5), 12, Gender::Male).as_str().to_string(),
        compose("320724", date(1992, 11, 20), 34, Gender::Female).as_str().to_string(),
    ];
    let file = dir.join("members.csv");
    let text = format!(
        "姓名,公民身份号码,性别,出生日期,手机号码,现居住地\n赵建国,{},男,1988-03-05,13912340001,\n\
         钱秀英,{},女,1992-11-20,13912340002,\n",
        ids[0], ids[1]
    );
    std::fs::write(&file, text).expect("members written");
    (file, ids)
}

/// With no database: `kite screen columns` shows the mapping found (ID numbers masked); a
/// roster without a header is read with a mapping given in a file; a roster that cannot be
/// read to its end leaves no result file.
#[test]
fn a_roster_is_read_with_the_mapping_the_user_gives() {
    let dir = std::env::temp_dir().join(format!("kite-columns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (members, ids) = two_members(&dir);
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    let no_db = "sqlite:///nonexistent/never.db";

    let with_header = dir.join("with-header.csv");
    std::fs::write(&with_header, format!("序号,姓名,身份证号码\n1,钱秀英,{}\n", ids[1])).expect("roster");
    let shown: serde_json::Value =
        serde_json::from_slice(&kite(no_db, &["screen", "columns", &path(&with_header)]).stdout).expect("JSON");
    let fields: Vec<&str> =
        shown["mapping"]["columns"].as_array().expect("columns").iter().filter_map(|c| c["field"].as_str()).collect();
    assert_eq!(fields, ["name", "id_number"], "{shown}");
    assert!(!shown.to_string().contains(&ids[1]), "masked: {shown}");

    // No header: the detection finds nothing to map, the user's mapping does.
    let bare = dir.join("bare.csv");
    std::fs::write(&bare, format!("13912340009,赵建国,{}\n", ids[0])).expect("roster");
    let out = dir.join("bare-matches.csv");
    let base = ["screen", "match", "--members", &path(&members), "--out", &path(&out)];
    let err = kite_fails(no_db, &[&base[..], &["--roster", &path(&bare)]].concat());
    assert!(err.contains("name or ID number"), "{err}");
    assert!(!out.exists(), "nothing written");
    let mapping = dir.join("mapping.json");
    let m = r#"{"mapping": {"header_line": 0, "columns": [{"index": 1, "field": "name"}, {"index": 2, "field": "id_number"}]}}"#;
    std::fs::write(&mapping, m).expect("mapping");
    kite(no_db, &[&base[..], &["--roster", &path(&bare), "--mapping", &path(&mapping)]].concat());
    let rows = csv_rows(&out);
    // (A two-member registry trains no confident model: the band may be either.)
    assert_eq!((rows[0][0].as_str(), rows[0][1].as_str()), ("1", ids[0].as_str()), "{rows:?}");

    // The model the run used, saved; set by hand it gives the same results without EM.
    let model = dir.join("model.json");
    let saved = dir.join("saved-matches.csv");
    let with = |extra: &[&str], out: &Path| {
        let args =
            ["screen", "match", "--members", &path(&members), "--roster", &path(&bare), "--mapping", &path(&mapping)];
        [&args[..], &["--out", &path(out)], extra].concat().iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| kite(no_db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    run(with(&["--save-model", &path(&model)], &saved));
    let given = dir.join("given-matches.csv");
    let summary: serde_json::Value =
        serde_json::from_slice(&run(with(&["--model", &path(&model)], &given)).stdout).expect("JSON");
    assert_eq!(summary["em_iterations"], 0, "{summary}");
    assert_eq!(std::fs::read_to_string(&given).ok(), std::fs::read_to_string(&saved).ok());
    let mut bad: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    bad["prior"] = serde_json::json!(2.0);
    std::fs::write(&model, bad.to_string()).expect("model");
    let args = with(&["--model", &path(&model)], &given);
    let err = kite_fails(no_db, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("prior must be strictly between 0 and 1"), "{err}");

    // A quote never closed: the file cannot be read past it, and no partial result is left.
    let broken = dir.join("broken.csv");
    let text = format!("姓名,公民身份号码\n赵建国,{}\n\"钱秀英,{}\n{}", ids[0], ids[1], "x".repeat(1_200_000));
    std::fs::write(&broken, text).expect("roster");
    let out2 = dir.join("broken-matches.csv");
    let err = kite_fails(
        no_db,
        &["screen", "match", "--members", &path(&members), "--roster", &path(&broken), "--out", &path(&out2)],
    );
    assert!(err.contains("no result file"), "{err}");
    assert!(!out2.exists(), "no partial MATCHES.csv");
    let leftovers = std::fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".tmp")));
    assert_eq!(leftovers.count(), 0, "no temporary file left behind");
    std::fs::remove_dir_all(&dir).ok();
}
