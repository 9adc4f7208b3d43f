//! The batching check-in writer on both backends: concurrent check-ins land exactly
//! once, a request that fails inside a batch leaves the others alone, the same request
//! twice in a batch gives one row, and closing the store does not leave anyone waiting.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use kite_domain::checkin::{self, Checkin, CheckinInput, LinkKind};
use kite_domain::member::{validate, MemberInput};
use kite_domain::org::OrgFields;
use kite_domain::{id_number, Gender, OrgKind, OrgLevel};
use kite_store::{testing, Backend};
use kite_store::{
    CheckinQuery, CheckinReceipt, CheckinRecord, CheckinTarget, Client, NewMember, NewOrg, Store, StoreError,
};

mod common;
use common::*;

const DIVISION: &str = "320724";
const DEST_DIVISION: &str = "320506";

fn org(code: &str, parent: Option<&str>, level: OrgLevel) -> NewOrg {
    let fields = OrgFields {
        name: format!("{code} 支部"),
        level,
        kind: OrgKind::Ordinary,
        division_code: DIVISION.into(),
        address: None,
        phone: None,
    };
    NewOrg { code: code.into(), parent_code: parent.map(str::to_string), fields }
}

fn birth(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Days::new(u64::from(n))
}

fn gender(n: u32) -> Gender {
    if n & 1 == 1 {
        Gender::Female
    } else {
        Gender::Male
    }
}

fn id_of(n: u32) -> String {
    id_number::compose(DIVISION, birth(n), (n % 500) as u16, gender(n)).as_str().to_string()
}

fn phone(n: u32) -> String {
    format!("139{n:08}")
}

/// Hashes are the store's business only: any text stands for one.
fn hash(n: u32) -> String {
    format!("hash-of-code-{n}")
}

/// Home branch H1 with members 1..=count, destination branch D1 (the link).
async fn world(store: &Store, count: u32) -> CheckinTarget {
    let admin = store.admin();
    admin
        .insert_orgs(&[
            org("R0", None, OrgLevel::Committee),
            org("H1", Some("R0"), OrgLevel::Branch),
            org("D1", Some("R0"), OrgLevel::Branch),
        ])
        .await
        .unwrap();
    let rows: Vec<NewMember> = (1..=count)
        .map(|n| {
            let (id, birth) = (id_of(n), birth(n).format("%Y-%m-%d").to_string());
            let input = MemberInput {
                name: "成员",
                gender: gender(n).code(),
                ethnicity: "汉族",
                birth_date: &birth,
                id_number: &id,
                education: "bachelor",
                joined_on: "2010-07-01",
                category: "full",
                org_code: "H1",
                residence_division: DIVISION,
                ..Default::default()
            };
            NewMember { fields: validate(&input, &Ctx).expect("a valid member") }
        })
        .collect();
    admin.bulk_insert_members(&rows).await.unwrap();
    admin.recount().await.unwrap();
    store.public(Client::default()).checkin_target(LinkKind::Org, "D1").await.unwrap()
}

fn checkin(n: u32, phone_of: u32) -> Checkin {
    let (id, phone) = (id_of(n), phone(phone_of));
    let input = CheckinInput {
        name: "成员",
        id_number: &id,
        phone: &phone,
        home_org_text: "家乡某支部",
        division_code: DEST_DIVISION,
        ..Default::default()
    };
    checkin::validate(&input, |_| true).expect("a valid check-in")
}

async fn send_code(store: &Store, n: u32) {
    store.public(Client::default()).send_code(&phone(n), &hash(n), "code").await.expect("a code");
}

/// One self-service check-in in a task of its own, as a request would make it.
fn submit(
    store: &Store,
    target: &CheckinTarget,
    c: Checkin,
    key: &str,
    code_hash: String,
) -> tokio::task::JoinHandle<Result<CheckinReceipt, StoreError>> {
    let (store, target, key) = (store.clone(), target.clone(), key.to_string());
    tokio::spawn(async move { store.public(Client::default()).checkin(&target, &c, &key, &code_hash).await })
}

async fn all_checkins(store: &Store) -> Vec<CheckinRecord> {
    let g = store.guard(admin(), Client::default());
    let mut out = Vec::new();
    let mut q = CheckinQuery { limit: Some(200), ..Default::default() };
    loop {
        let page = g.checkins(&q).await.unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

async fn wait_for_queue(store: &Store, n: usize) {
    for _ in 0..2000 {
        if testing::checkins_waiting(store) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{n} check-ins never reached the writer (waiting: {})", testing::checkins_waiting(store));
}

#[tokio::test]
async fn concurrent_check_ins_land_exactly_once() {
    on_each_backend(|_, store| async move {
        const N: u32 = 300;
        let target = world(&store, N).await;
        for n in 1..=N {
            send_code(&store, n).await;
        }
        let send_all = || {
            (1..=N).map(|n| submit(&store, &target, checkin(n, n), &format!("key-{n:06}"), hash(n))).collect::<Vec<_>>()
        };
        let mut first = HashMap::new();
        for (n, h) in (1..=N).zip(send_all()) {
            first.insert(n, h.await.unwrap().expect("a check-in"));
        }
        // All of them again, at once: the first answers, no new rows.
        for (n, h) in (1..=N).zip(send_all()) {
            let again = h.await.unwrap().expect("the first answer");
            assert_eq!((&again.reference, again.created_at), (&first[&n].reference, first[&n].created_at));
        }
        let rows = all_checkins(&store).await;
        assert_eq!(rows.len(), N as usize);
        let refs: HashSet<&str> = rows.iter().map(|r| r.reference.as_str()).collect();
        assert_eq!(refs, first.values().map(|r| r.reference.as_str()).collect());
        assert!(rows.iter().all(|r| r.member_id.is_some() && r.name_matches));
    })
    .await;
}

#[tokio::test]
async fn a_failing_request_in_a_batch_leaves_the_others_alone() {
    on_each_backend(|backend, store| async move {
        let target = world(&store, 10).await;
        for n in 1..=9 {
            send_code(&store, n).await;
        }
        // Member 5 has a waiting check-in already (phone 5).
        let earlier = submit(&store, &target, checkin(5, 5), "key-earlier", hash(5)).await.unwrap().unwrap();

        let hold = testing::hold_checkin_writer(&store).await;
        let mut queued = Vec::new();
        // Good ones.
        for n in 1..=3 {
            queued.push((n, submit(&store, &target, checkin(n, n), &format!("key-good-{n}"), hash(n))));
        }
        // The same request twice.
        for _ in 0..2 {
            queued.push((4, submit(&store, &target, checkin(4, 4), "key-twice", hash(4))));
        }
        // A wrong code: refused, the attempt counted.
        queued.push((6, submit(&store, &target, checkin(6, 6), "key-wrong", "not-the-code".into())));
        // Member 7 twice with two keys: the later one replaces the earlier, both stored.
        queued.push((7, submit(&store, &target, checkin(7, 7), "key-seven-a", hash(7))));
        queued.push((7, submit(&store, &target, checkin(7, 8), "key-seven-b", hash(8))));
        // Member 5 again, refused by the database at the insert: after the code was spent
        // and member 5's waiting check-in superseded, which must be undone.
        refuse_key(backend, &store, "key-refused").await;
        let bad = submit(&store, &target, checkin(5, 9), "key-refused", hash(9));
        let count = queued.len() + 1;
        wait_for_queue(&store, count).await;
        drop(hold);

        assert!(matches!(bad.await.unwrap(), Err(StoreError::Db(_))), "refused by the database");
        let mut answers: HashMap<&str, Vec<Result<CheckinReceipt, StoreError>>> = HashMap::new();
        for (n, h) in queued {
            let what = match n {
                4 => "twice",
                6 => "wrong",
                7 => "seven",
                _ => "good",
            };
            answers.entry(what).or_default().push(h.await.unwrap());
        }
        assert_eq!(testing::largest_checkin_batch(&store), count, "one batch");
        assert_eq!(testing::checkin_batches_one_by_one(&store), 1, "the same request twice: one by one");
        assert!(answers["good"].iter().all(|a| a.is_ok()), "{:?}", answers["good"]);
        assert!(answers["seven"].iter().all(|a| a.is_ok()), "{:?}", answers["seven"]);
        let twice: Vec<&CheckinReceipt> = answers["twice"].iter().map(|a| a.as_ref().unwrap()).collect();
        assert_eq!((&twice[0].reference, twice[0].created_at), (&twice[1].reference, twice[1].created_at));
        assert_invalid(answers.remove("wrong").unwrap().pop().unwrap(), "code", "otp.wrong");

        let rows = all_checkins(&store).await;
        let of = |n: u32| rows.iter().filter(move |r| r.id_number == id_of(n)).collect::<Vec<_>>();
        for n in [1, 2, 3, 4] {
            assert_eq!(of(n).len(), 1, "member {n}");
        }
        assert!(of(6).is_empty());
        let seven = of(7);
        assert_eq!(seven.len(), 2);
        assert_eq!(seven.iter().filter(|r| r.status.code() == "superseded").count(), 1);
        // Member 5: only the earlier check-in, still waiting.
        let five = of(5);
        assert_eq!(five.len(), 1);
        assert_eq!((five[0].reference.as_str(), five[0].status.code()), (earlier.reference.as_str(), "pending"));
        // Phone 9's code was not spent: it still checks member 5 in, replacing the earlier one.
        stop_refusing(backend, &store).await;
        let later = submit(&store, &target, checkin(5, 9), "key-refused", hash(9)).await.unwrap().unwrap();
        let five = all_checkins(&store).await.into_iter().filter(|r| r.id_number == id_of(5)).collect::<Vec<_>>();
        assert_eq!(five.len(), 2);
        assert!(five.iter().any(|r| r.reference == later.reference && r.status.code() == "pending"));
        // Phone 6's wrong guess was counted.
        assert_one_wrong_guess_counted(&store, &target, 6, 6, "key-wrong").await;
    })
    .await;
}

const MAX_ATTEMPTS: i64 = kite_domain::checkin::MAX_ATTEMPTS;

/// Phone `phone`'s code has exactly one wrong guess counted: the guesses left (member
/// `member`'s check-in, sent as `key`) are refused as wrong, and then even the right code
/// is dead.
async fn assert_one_wrong_guess_counted(store: &Store, target: &CheckinTarget, member: u32, phone: u32, key: &str) {
    for _ in 1..MAX_ATTEMPTS {
        let r = submit(store, target, checkin(member, phone), key, "not-the-code".into()).await.unwrap();
        assert_invalid(r, "code", "otp.wrong");
    }
    let r = submit(store, target, checkin(member, phone), key, hash(phone)).await.unwrap();
    assert_invalid(r, "code", "otp.expired");
}

/// Makes the database refuse the check-in with request key `key` at its insert: a
/// failure after the request's code was spent and earlier check-ins superseded.
async fn refuse_key(backend: Backend, store: &Store, key: &str) {
    let sql = match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON checkins WHEN NEW.request_key = '{key}' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.request_key = '{key}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON checkins FOR EACH ROW EXECUTE FUNCTION refuse()"
        ),
    };
    testing::run_sql(store, &sql).await;
}

async fn stop_refusing(backend: Backend, store: &Store) {
    let sql = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse",
        Backend::Postgres => "DROP TRIGGER refuse ON checkins; DROP FUNCTION refuse()",
    };
    testing::run_sql(store, sql).await;
}

#[tokio::test]
async fn a_batch_is_written_whole_and_undone_whole_when_a_row_is_refused() {
    on_each_backend(|backend, store| async move {
        const N: u32 = 40;
        let target = world(&store, N + 1).await;
        for n in 1..=N + 1 {
            send_code(&store, n).await;
        }
        // One batch of different people: written whole.
        let hold = testing::hold_checkin_writer(&store).await;
        let first: Vec<_> =
            (1..=20).map(|n| submit(&store, &target, checkin(n, n), &format!("key-a{n}"), hash(n))).collect();
        wait_for_queue(&store, 20).await;
        drop(hold);
        let mut refs = HashSet::new();
        for h in first {
            refs.insert(h.await.unwrap().expect("stored").reference);
        }
        assert_eq!(refs.len(), 20);
        assert_eq!(testing::checkin_batches_one_by_one(&store), 0, "written whole");

        // Member 1 again (superseding its waiting check-in) and one wrong code, in a batch
        // where the database refuses one row: everything of the batch is undone, then
        // done one by one, so that only the refused request fails.
        refuse_key(backend, &store, "key-b25").await;
        send_code(&store, 50).await;
        let hold = testing::hold_checkin_writer(&store).await;
        let mut second: Vec<_> =
            (21..=N).map(|n| (n, submit(&store, &target, checkin(n, n), &format!("key-b{n}"), hash(n)))).collect();
        second.push((1, submit(&store, &target, checkin(1, N + 1), "key-b-again", hash(N + 1))));
        let wrong = submit(&store, &target, checkin(2, 50), "key-b-wrong", "not-the-code".into());
        wait_for_queue(&store, second.len() + 1).await;
        drop(hold);
        for (n, h) in second {
            let answer = h.await.unwrap();
            if n == 25 {
                assert!(matches!(answer, Err(StoreError::Db(_))), "refused: {answer:?}");
            } else {
                answer.expect("stored");
            }
        }
        assert_invalid(wrong.await.unwrap(), "code", "otp.wrong");
        assert_eq!(testing::checkin_batches_one_by_one(&store), 1, "undone once, then one by one");

        let rows = all_checkins(&store).await;
        assert_eq!(rows.len(), 20 + 20 - 1 + 1);
        assert!(!rows.iter().any(|r| r.id_number == id_of(25)));
        let one: Vec<_> = rows.iter().filter(|r| r.id_number == id_of(1)).collect();
        assert_eq!(one.iter().filter(|r| r.status.code() == "superseded").count(), 1);
        assert_eq!(one.iter().filter(|r| r.status.code() == "pending").count(), 1);
        // Phone 25's code was not spent, and phone 50's wrong guess was counted once.
        stop_refusing(backend, &store).await;
        submit(&store, &target, checkin(25, 25), "key-b25", hash(25)).await.unwrap().expect("stored now");
        assert_one_wrong_guess_counted(&store, &target, 2, 50, "key-b-wrong").await;
    })
    .await;
}

/// Makes the database leave the code sent to `phone` unspent, as if another request had
/// spent it between the batch's read and its write.
async fn keep_code_unspent(backend: Backend, store: &Store, phone: &str) {
    let sql = match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER unspent BEFORE UPDATE OF used_at ON one_time_codes WHEN OLD.phone = '{phone}' \
             BEGIN SELECT RAISE(IGNORE); END"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION unspent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF OLD.phone = '{phone}' AND NEW.used_at IS NOT NULL THEN RETURN NULL; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER unspent BEFORE UPDATE ON one_time_codes FOR EACH ROW EXECUTE FUNCTION unspent()"
        ),
    };
    testing::run_sql(store, &sql).await;
}

#[tokio::test]
async fn a_code_spent_meanwhile_undoes_the_batch_and_refuses_only_its_request() {
    on_each_backend(|backend, store| async move {
        let target = world(&store, 7).await;
        for n in 1..=7 {
            send_code(&store, n).await;
        }
        keep_code_unspent(backend, &store, &phone(3)).await;
        let hold = testing::hold_checkin_writer(&store).await;
        let sent: Vec<_> =
            (1..=6).map(|n| submit(&store, &target, checkin(n, n), &format!("key-{n}"), hash(n))).collect();
        // A wrong guess in the same batch: counted once, though the batch is written twice.
        let wrong = submit(&store, &target, checkin(7, 7), "key-wrong", "not-the-code".into());
        wait_for_queue(&store, 7).await;
        drop(hold);
        let mut answers = Vec::new();
        for h in sent {
            answers.push(h.await.unwrap());
        }
        assert_invalid(wrong.await.unwrap(), "code", "otp.wrong");
        assert_eq!(testing::largest_checkin_batch(&store), 7, "one batch");
        assert_eq!(testing::checkin_batches_one_by_one(&store), 1, "undone, then one by one");
        for (n, a) in (1..=6).zip(answers) {
            if n == 3 {
                assert_invalid(a, "code", "otp.expired");
            } else {
                a.expect("stored");
            }
        }
        let rows = all_checkins(&store).await;
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r.id_number != id_of(3)));
        // Nothing of the undone write stayed: one audit record per stored check-in, no other.
        assert_eq!(testing::audit_count(&store, "checkin.submit").await, 5);
        for r in &rows {
            let audit = testing::audit_of(&store, "checkin", &r.id.to_string()).await;
            assert_eq!(audit.len(), 1, "{}", r.reference);
        }
        // The wrong guess was counted once.
        assert_one_wrong_guess_counted(&store, &target, 7, 7, "key-wrong").await;
    })
    .await;
}

#[tokio::test]
async fn closing_the_store_answers_every_request() {
    on_each_backend(|_, store| async move {
        const N: u32 = 100;
        let target = world(&store, N).await;
        for n in 1..=N {
            send_code(&store, n).await;
        }
        let hold = testing::hold_checkin_writer(&store).await;
        let handles: Vec<_> =
            (1..=N).map(|n| submit(&store, &target, checkin(n, n), &format!("key-{n:06}"), hash(n))).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(hold);
        store.close().await;
        for h in handles {
            let answered = tokio::time::timeout(Duration::from_secs(20), h).await;
            assert!(answered.is_ok(), "a check-in still waiting after the store was closed");
        }
        // A check-in after the close is refused at once.
        let late = submit(&store, &target, checkin(1, 1), "key-late", hash(1));
        let answered = tokio::time::timeout(Duration::from_secs(20), late).await.expect("answered").unwrap();
        assert!(answered.is_err());
    })
    .await;
}

#[tokio::test]
async fn a_move_while_a_check_in_waits_files_it_under_the_new_place() {
    on_each_backend(|_, store| async move {
        let target = world(&store, 2).await;
        store.admin().insert_orgs(&[org("R9", None, OrgLevel::Committee)]).await.unwrap();
        send_code(&store, 1).await;
        let hold = testing::hold_checkin_writer(&store).await;
        let queued = submit(&store, &target, checkin(1, 1), "key-moved", hash(1));
        wait_for_queue(&store, 1).await;
        // The home branch moves after the check-in was read, before it is written.
        let g = store.guard(admin(), Client::default());
        let h1 = g.org("H1").await.unwrap();
        let moved = g.org_move("H1", "R9", h1.version).await.unwrap();
        assert_ne!(moved.path, h1.path);
        drop(hold);
        queued.await.unwrap().expect("stored");
        let rows = all_checkins(&store).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].home_path.as_deref(), Some(moved.path.as_str()), "filed under the new place");
    })
    .await;
}

fn checkin_with(n: u32, phone_of: u32, home_code: &str, inflow_code: &str) -> Checkin {
    let (id, phone) = (id_of(n), phone(phone_of));
    let input = CheckinInput {
        name: "成员",
        id_number: &id,
        phone: &phone,
        home_org_code: home_code,
        home_org_text: if home_code.is_empty() { "家乡某支部" } else { "" },
        division_code: DEST_DIVISION,
        inflow_org_code: inflow_code,
        ..Default::default()
    };
    checkin::validate(&input, |_| true).expect("a valid check-in")
}

/// A station of destination branch D1.
fn station(code: &str) -> kite_store::NewServicePoint {
    kite_store::NewServicePoint {
        code: code.into(),
        parent_code: None,
        name: format!("{code} 驿站"),
        level: kite_domain::ServicePointLevel::Station,
        org_code: "D1".into(),
        division_code: DIVISION.into(),
        address: None,
        hotline: None,
        opening_hours: None,
    }
}

#[tokio::test]
async fn one_batch_reads_links_picked_and_claimed_organizations_together() {
    on_each_backend(|_, store| async move {
        let target = world(&store, 3).await;
        let admin = store.admin();
        admin
            .insert_orgs(&[org("D2", Some("R0"), OrgLevel::Branch), org("D3", Some("R0"), OrgLevel::Branch)])
            .await
            .unwrap();
        admin.insert_service_points(&[station("P1"), station("P2")]).await.unwrap();
        let public = store.public(Client::default());
        let point = public.checkin_target(LinkKind::Point, "P1").await.unwrap();
        let d3 = public.checkin_target(LinkKind::Org, "D3").await.unwrap();
        let p2 = public.checkin_target(LinkKind::Point, "P2").await.unwrap();
        testing::run_sql(&store, "UPDATE organizations SET status = 'dissolved' WHERE code = 'D3'").await;
        testing::run_sql(&store, "UPDATE service_points SET status = 'closed' WHERE code = 'P2'").await;
        for n in 1..=8 {
            send_code(&store, n).await;
        }
        let hold = testing::hold_checkin_writer(&store).await;
        let picked = submit(&store, &point, checkin_with(1, 1, "", "D2"), "key-picked", hash(1));
        let unknown = submit(&store, &point, checkin_with(2, 2, "", "NOPE"), "key-unknown", hash(2));
        let dissolved = submit(&store, &point, checkin_with(3, 3, "", "D3"), "key-dissolved", hash(3));
        // Two people with no record: one names a home branch in the system, one does not.
        let claimed = submit(&store, &target, checkin_with(501, 4, "H1", ""), "key-claimed", hash(4));
        let unclaimed = submit(&store, &target, checkin_with(502, 5, "ZZ9", ""), "key-unclaimed", hash(5));
        let closed_link = submit(&store, &d3, checkin_with(503, 6, "", ""), "key-closed", hash(6));
        let own = submit(&store, &point, checkin_with(504, 7, "", ""), "key-own", hash(7));
        let closed_point = submit(&store, &p2, checkin_with(505, 8, "", ""), "key-closed-point", hash(8));
        // A link no database can hold (a NUL from the path): unknown, and the batch goes on.
        let c = checkin_with(506, 8, "", "");
        let nul = public.checkin_at_link(LinkKind::Org, "D1\0", &c, "key-nul-link", &hash(8)).await;
        assert!(matches!(nul, Err(StoreError::NotFound)), "{nul:?}");
        wait_for_queue(&store, 8).await;
        drop(hold);

        picked.await.unwrap().expect("stored");
        assert_invalid(unknown.await.unwrap(), "inflow_org_code", "org.unknown");
        assert_invalid(dissolved.await.unwrap(), "inflow_org_code", "org.dissolved");
        claimed.await.unwrap().expect("stored");
        unclaimed.await.unwrap().expect("stored");
        assert!(matches!(closed_link.await.unwrap(), Err(StoreError::NotFound)));
        own.await.unwrap().expect("stored");
        assert!(matches!(closed_point.await.unwrap(), Err(StoreError::NotFound)));
        assert_eq!(testing::largest_checkin_batch(&store), 8, "one batch");
        assert_eq!(testing::checkin_batches_one_by_one(&store), 0, "written whole");

        let rows = all_checkins(&store).await;
        let by = |n: u32| rows.iter().find(|r| r.id_number == id_of(n)).expect("a row");
        assert_eq!(rows.len(), 4);
        let p = by(1);
        assert_eq!((p.inflow_org_code.as_str(), p.service_point_code.as_deref()), ("D2", Some("P1")));
        assert_eq!((p.status.code(), p.home_org_code.as_deref()), ("pending", Some("H1")));
        let c = by(501);
        assert_eq!((c.status.code(), c.home_org_code.as_deref(), c.member_id), ("pending", Some("H1"), None));
        let u = by(502);
        assert_eq!((u.status.code(), u.home_org_text.as_deref()), ("home_unknown", Some("ZZ9")));
        let o = by(504);
        assert_eq!((o.inflow_org_code.as_str(), o.service_point_code.as_deref()), ("D1", Some("P1")));
    })
    .await;
}
