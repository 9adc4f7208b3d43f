//! Integration tests of `kite-store` through its public API, each run on SQLite and
//! on PostgreSQL: the organization tree, members, search, departures, counters,
//! accounts, and the behaviour of concurrent writers.
//!
//! Every test body runs once per backend (see [`on_each_backend`]); a failure names
//! the backend it happened on, and the other backend still runs.

use std::collections::HashSet;

use chrono::{Days, NaiveDate, TimeDelta, Utc};
use kite_domain::flow::{validate_departure, DepartureInput};
use kite_domain::member::{validate, MemberFields, MemberInput};
use kite_domain::org::OrgFields;
use kite_domain::{
    id_number, FlowReason, FlowStatus, Gender, Mobility, OrgKind, OrgLevel, OrgStatus, Principal, Role,
    ServicePointLevel,
};
use kite_store::testing::{self, BACKENDS};
use kite_store::{
    AuditEntry, Client, Departure, Guard, MemberQuery, MemberSummary, NewFlow, NewMember, NewOrg, NewServicePoint,
    NewUser, Org, Overview, ServicePoint, Store,
};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

const DIVISION: &str = "320724";

fn guard(store: &Store) -> Guard<'_> {
    store.guard(admin(), Client { address: Some("127.0.0.1".into()) })
}

fn org_fields(name: &str, level: OrgLevel) -> OrgFields {
    OrgFields {
        name: name.into(),
        level,
        kind: OrgKind::Ordinary,
        division_code: DIVISION.into(),
        address: None,
        phone: None,
    }
}

/// The `n`-th test person's birth date: distinct for distinct `n`.
fn birth(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1960, 1, 1).unwrap() + Days::new(u64::from(n))
}

fn gender(n: u32) -> Gender {
    if n & 1 == 1 {
        Gender::Female
    } else {
        Gender::Male
    }
}

/// The identity number of the `n`-th test person (unique per `n` and division).
fn id_of(n: u32, division: &str) -> String {
    id_number::compose(division, birth(n), (n % 500) as u16, gender(n)).as_str().to_string()
}

/// A valid member, through the domain's own validation.
fn person_with(name: &str, org: &str, n: u32, division: &str, phone: Option<&str>) -> MemberFields {
    let id = id_of(n, division);
    let birth = birth(n).format("%Y-%m-%d").to_string();
    let input = MemberInput {
        name,
        gender: gender(n).code(),
        ethnicity: "汉族",
        birth_date: &birth,
        id_number: &id,
        phone: phone.unwrap_or(""),
        education: "bachelor",
        joined_on: "2010-07-01",
        category: "full",
        org_code: org,
        residence_division: DIVISION,
        ..Default::default()
    };
    validate(&input, &Ctx).unwrap_or_else(|e| panic!("test member {name} should be valid: {e:?}"))
}

fn person(name: &str, org: &str, n: u32) -> MemberFields {
    person_with(name, org, n, DIVISION, None)
}

fn departure(left_on: &str) -> Departure {
    let input = DepartureInput {
        destination_division: "320506",
        destination_address: "苏州工业园区",
        reason: "work",
        left_on,
        expected_months: "12",
        contact_phone: "13912345678",
        ..Default::default()
    };
    validate_departure(&input, |_| true, NaiveDate::from_ymd_opt(2010, 7, 1).unwrap(), Utc::now().date_naive())
        .expect("valid departure")
}

/// The tree used by most tests:
///
/// ```text
/// CTY
/// ├── TA
/// │   ├── TA-B1
/// │   └── TA-B2
/// └── TB
///     └── TB-B1
/// ```
struct Tree {
    cty: Org,
    ta: Org,
    ta_b1: Org,
    ta_b2: Org,
    tb: Org,
    tb_b1: Org,
}

async fn tree(store: &Store) -> Tree {
    let g = guard(store);
    let cty = g.org_create(None, "CTY", org_fields("县委", OrgLevel::Committee)).await.unwrap();
    let ta = g.org_create(Some("CTY"), "TA", org_fields("甲镇党委", OrgLevel::Committee)).await.unwrap();
    let tb = g.org_create(Some("CTY"), "TB", org_fields("乙镇党委", OrgLevel::Committee)).await.unwrap();
    let ta_b1 = g.org_create(Some("TA"), "TA-B1", org_fields("甲一村党支部", OrgLevel::Branch)).await.unwrap();
    let ta_b2 = g.org_create(Some("TA"), "TA-B2", org_fields("甲二村党支部", OrgLevel::Branch)).await.unwrap();
    let tb_b1 = g.org_create(Some("TB"), "TB-B1", org_fields("乙一村党支部", OrgLevel::Branch)).await.unwrap();
    Tree { cty, ta, ta_b1, ta_b2, tb, tb_b1 }
}

/// Every page of a search, following the cursors.
async fn search_all(g: &Guard<'_>, mut q: MemberQuery) -> Vec<MemberSummary> {
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = g.members(&q).await.expect("search");
        if let Some(limit) = q.limit {
            assert!(page.items.len() <= limit as usize, "a page holds at most `limit` rows");
        }
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return all,
        }
    }
    panic!("pagination did not end");
}

fn query(q: &str) -> MemberQuery {
    MemberQuery { q: Some(q.into()), ..Default::default() }
}

fn ids(rows: &[MemberSummary]) -> Vec<i64> {
    rows.iter().map(|m| m.id).collect()
}

async fn audit_log(store: &Store) -> Vec<AuditEntry> {
    guard(store).audit_recent(500).await.expect("admin reads the audit log")
}

async fn overview(store: &Store, code: Option<&str>) -> Overview {
    guard(store).overview(code).await.expect("overview")
}

fn counts(organizations: i64, members: i64, mobile_out: i64, mobile_in: i64) -> Overview {
    Overview { organizations, members, mobile_out, mobile_in }
}

// ---------------------------------------------------------------------------
// 1. The organization tree
// ---------------------------------------------------------------------------

#[tokio::test]
async fn org_tree_is_built_and_browsed() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);

        let roots = g.org_children(None).await.unwrap();
        assert_eq!(roots.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["CTY"]);
        assert_eq!(roots[0].child_count, 2);
        assert_eq!(roots[0].parent_code, None);

        let kids = g.org_children(Some("CTY")).await.unwrap();
        assert_eq!(kids.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA", "TB"]);
        assert!(kids.iter().all(|o| o.parent_code.as_deref() == Some("CTY")));
        let ta_kids = g.org_children(Some("TA")).await.unwrap();
        assert_eq!(ta_kids.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA-B1", "TA-B2"]);
        assert!(g.org_children(Some("TA-B1")).await.unwrap().is_empty());
        assert_not_found(g.org_children(Some("NOPE")).await);

        // Paths nest: each child's path extends its parent's.
        assert!(t.ta_b1.path.starts_with(&t.ta.path) && t.ta.path.starts_with(&t.cty.path));
        assert!(!t.tb_b1.path.starts_with(&t.ta.path));

        let o = g.org("TA-B2").await.unwrap();
        assert_eq!(
            (o.name.as_str(), o.level, o.status, o.version),
            ("甲二村党支部", OrgLevel::Branch, OrgStatus::Active, 1)
        );
        assert_eq!(o.id, t.ta_b2.id);

        let chain = g.org_ancestors("TA-B1").await.unwrap();
        assert_eq!(chain.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["CTY", "TA", "TA-B1"]);

        let found = g.org_search("乙", 10).await.unwrap();
        assert_eq!(found.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TB", "TB-B1"]);

        assert_eq!(overview(&store, None).await.organizations, 6);
        assert_eq!(overview(&store, Some("TA")).await.organizations, 3);
        assert_eq!(store.admin().org_count().await.unwrap(), 6);

        let created: Vec<_> = audit_log(&store).await.into_iter().filter(|a| a.action == "org.create").collect();
        assert_eq!(created.len(), 6);
        assert!(created.iter().all(|a| a.outcome == "ok" && a.username.as_deref() == Some("root")));
        assert!(created.iter().all(|a| a.client.as_deref() == Some("127.0.0.1")));
    })
    .await;
}

#[tokio::test]
async fn org_create_refuses_duplicates_bad_codes_and_unknown_or_dissolved_parents() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);
        assert_conflict(
            g.org_create(Some("TB"), "TA-B1", org_fields("重复", OrgLevel::Branch)).await,
            "org.code.duplicate",
        );
        assert_conflict(g.org_create(None, "CTY", org_fields("重复", OrgLevel::Committee)).await, "org.code.duplicate");
        // Nor in another case: certificate numbers are written in capitals.
        assert_conflict(g.org_create(None, "cty", org_fields("重复", OrgLevel::Committee)).await, "org.code.duplicate");
        assert_invalid(
            g.org_create(Some("CTY"), "x", org_fields("短", OrgLevel::Branch)).await,
            "code",
            "org.code.invalid",
        );
        assert_invalid(
            g.org_create(Some("CTY"), "有中文", org_fields("中", OrgLevel::Branch)).await,
            "code",
            "org.code.invalid",
        );
        assert_invalid(
            g.org_create(Some("NOPE"), "NEW", org_fields("新", OrgLevel::Branch)).await,
            "parent_code",
            "org.parent.unknown",
        );

        // A dissolved organization takes neither children nor members.
        g.org_update("TB-B1", org_fields("乙一村党支部", OrgLevel::Branch), OrgStatus::Dissolved, t.tb_b1.version)
            .await
            .unwrap();
        assert_invalid(
            g.org_create(Some("TB-B1"), "NEW", org_fields("新", OrgLevel::Group)).await,
            "parent_code",
            "org.move.parent_dissolved",
        );
        assert_invalid(g.member_create(person("赵六", "TB-B1", 1)).await, "org_code", "org.dissolved");

        // Nothing of the refused attempts was kept.
        assert_eq!(store.admin().org_count().await.unwrap(), 6);
        assert_eq!(g.org_children(Some("TB")).await.unwrap().len(), 1);
        assert_eq!(g.org("TA-B1").await.unwrap().name, "甲一村党支部");
    })
    .await;
}

#[tokio::test]
async fn org_update_uses_optimistic_versions_and_is_audited() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);
        let mut f = org_fields("甲镇党委（新）", OrgLevel::Committee);
        f.phone = Some("051883212345".into());
        let after = g.org_update("TA", f.clone(), OrgStatus::Active, t.ta.version).await.unwrap();
        assert_eq!(after.version, t.ta.version + 1);
        assert_eq!(after.name, "甲镇党委（新）");
        assert_eq!(after.phone.as_deref(), Some("051883212345"));
        assert_eq!(after.path, t.ta.path);

        // The old version is stale now: the second writer loses and nothing changes.
        let mut g2 = f.clone();
        g2.name = "覆盖".into();
        assert_conflict(g.org_update("TA", g2, OrgStatus::Active, t.ta.version).await, "stale_version");
        let now = g.org("TA").await.unwrap();
        assert_eq!((now.name.as_str(), now.version), ("甲镇党委（新）", after.version));
        assert_not_found(g.org_update("NOPE", f, OrgStatus::Active, 1).await);

        let log = audit_log(&store).await;
        let upd: Vec<_> = log.iter().filter(|a| a.action == "org.update").collect();
        assert_eq!(upd.len(), 1, "only the successful update is recorded");
        assert_eq!(upd[0].target_id.as_deref(), Some("TA"));
        let before: serde_json::Value = serde_json::from_str(upd[0].before_data.as_deref().unwrap()).unwrap();
        let after: serde_json::Value = serde_json::from_str(upd[0].after_data.as_deref().unwrap()).unwrap();
        assert_eq!(before["name"], "甲镇党委");
        assert_eq!(after["name"], "甲镇党委（新）");
        assert_eq!(after["phone"], "051883212345");
        assert!(
            after.get("code").is_none() && after.get("version").is_none(),
            "the diff holds changed fields only: {after}"
        );
    })
    .await;
}

#[tokio::test]
async fn org_move_carries_the_subtree_members_and_counts() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);
        let a = g.member_create(person("张三", "TA", 1)).await.unwrap();
        let b = g.member_create(person("李四", "TA-B1", 2)).await.unwrap();
        let c = g.member_create(person("王五", "TA-B2", 3)).await.unwrap();
        let d = g.member_create(person("赵六", "TB-B1", 4)).await.unwrap();
        g.record_departure(b.id, departure("2024-03-01")).await.unwrap();

        assert_eq!(overview(&store, Some("TA")).await, counts(3, 3, 1, 0));
        assert_eq!(overview(&store, Some("TB")).await, counts(2, 1, 0, 0));

        // Move TA (with TA-B1 and TA-B2) under TB.
        let moved = g.org_move("TA", "TB", t.ta.version).await.unwrap();
        assert_eq!(moved.parent_code.as_deref(), Some("TB"));
        assert_eq!(moved.version, t.ta.version + 1);
        assert!(moved.path.starts_with(&t.tb.path), "{} under {}", moved.path, t.tb.path);
        let b1 = g.org("TA-B1").await.unwrap();
        assert!(b1.path.starts_with(&moved.path), "descendants follow: {} under {}", b1.path, moved.path);
        assert_eq!(b1.parent_code.as_deref(), Some("TA"));
        assert_eq!(
            g.org_children(Some("CTY")).await.unwrap().iter().map(|o| o.code.clone()).collect::<Vec<_>>(),
            ["TB"]
        );
        assert_eq!(
            g.org_children(Some("TB")).await.unwrap().iter().map(|o| o.code.clone()).collect::<Vec<_>>(),
            ["TA", "TB-B1"]
        );
        let chain = g.org_ancestors("TA-B2").await.unwrap();
        assert_eq!(chain.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["CTY", "TB", "TA", "TA-B2"]);

        // Members' subtree searches follow the move.
        let in_tb = |org: &str| MemberQuery { org: Some(org.into()), ..Default::default() };
        let mut found = ids(&search_all(&g, in_tb("TB")).await);
        found.sort();
        assert_eq!(found, vec![a.id, b.id, c.id, d.id]);
        assert_eq!(ids(&search_all(&g, in_tb("TA")).await), vec![a.id, b.id, c.id]);
        assert_eq!(ids(&search_all(&g, in_tb("TA-B1")).await), vec![b.id]);
        let away = MemberQuery { org: Some("TB".into()), mobility: Some("away".into()), ..Default::default() };
        assert_eq!(ids(&search_all(&g, away).await), vec![b.id]);
        assert!(g.member(b.id).await.unwrap().org_path.starts_with(&moved.path));

        // So do the counters.
        assert_eq!(overview(&store, Some("TB")).await, counts(5, 4, 1, 0));
        assert_eq!(overview(&store, Some("TA")).await, counts(3, 3, 1, 0));
        assert_eq!(overview(&store, None).await, counts(6, 4, 1, 0));

        let mv: Vec<_> = audit_log(&store).await.into_iter().filter(|a| a.action == "org.move").collect();
        assert_eq!(mv.len(), 1);
        assert!(mv[0].before_data.as_deref().unwrap().contains("CTY"));
        assert!(mv[0].after_data.as_deref().unwrap().contains("TB"));
    })
    .await;
}

#[tokio::test]
async fn org_move_refuses_cycles_stale_versions_and_unknown_parents() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);
        assert_invalid(g.org_move("TA", "TA-B1", t.ta.version).await, "parent_code", "org.move.cycle");
        assert_invalid(g.org_move("TA", "TA", t.ta.version).await, "parent_code", "org.move.cycle");
        assert_invalid(g.org_move("CTY", "TB-B1", t.cty.version).await, "parent_code", "org.move.cycle");
        assert_invalid(g.org_move("TA", "NOPE", t.ta.version).await, "parent_code", "org.parent.unknown");
        assert_conflict(g.org_move("TA", "TB", t.ta.version + 7).await, "stale_version");
        let tb_b1 =
            g.org_update("TB-B1", org_fields("乙一村党支部", OrgLevel::Branch), OrgStatus::Dissolved, t.tb_b1.version);
        tb_b1.await.unwrap();
        assert_invalid(g.org_move("TA-B2", "TB-B1", t.ta_b2.version).await, "parent_code", "org.move.parent_dissolved");

        // Nothing moved.
        let ta = g.org("TA").await.unwrap();
        assert_eq!(
            (ta.parent_code.as_deref(), ta.path.as_str(), ta.version),
            (Some("CTY"), t.ta.path.as_str(), t.ta.version)
        );
        assert_eq!(g.org("TA-B1").await.unwrap().path, t.ta_b1.path);
        assert_eq!(g.org("TA-B2").await.unwrap().path, t.ta_b2.path);
        assert_eq!(g.org_children(Some("TA")).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn org_search_offers_active_organizations_only() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let g = guard(&store);
        g.org_update("TB-B1", org_fields("乙一村党支部", OrgLevel::Branch), OrgStatus::Dissolved, t.tb_b1.version)
            .await
            .unwrap();
        let found: Vec<_> = g.org_search("乙", 10).await.unwrap().into_iter().map(|o| o.code).collect();
        assert_eq!(found, ["TB"], "a dissolved organization is offered by the picker");
    })
    .await;
}

#[tokio::test]
async fn org_search_answers_alike_on_both_backends() {
    let mut answers = Vec::new();
    for backend in BACKENDS {
        let store = testing::store(backend).await;
        tree(&store).await;
        let g = guard(&store);
        let mut row = vec![format!("{backend:?}")];
        for q in ["TA-B", "ta-b", "Ta"] {
            let codes: Vec<_> = g.org_search(q, 10).await.unwrap().into_iter().map(|o| o.code).collect();
            row.push(format!("{q}: {codes:?}"));
        }
        answers.push(row);
        store.close().await;
    }
    assert_eq!(answers[0][1], r#"TA-B: ["TA-B1", "TA-B2"]"#);
    assert_eq!(answers[0][1..], answers[1][1..], "SQLite and PostgreSQL disagree: {answers:?}");
}

// ---------------------------------------------------------------------------
// 2. Members
// ---------------------------------------------------------------------------

#[tokio::test]
async fn member_create_then_detail_shows_the_full_id_and_audits_the_view() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let f = person_with("张伟", "TA-B1", 7, DIVISION, Some("138 1234 5678"));
        let full = f.id_number.as_str().to_string();
        let created = g.member_create(f).await.unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(created.mobility, Mobility::Resident);
        assert_eq!((created.org_code.as_str(), created.org_name.as_str()), ("TA-B1", "甲一村党支部"));

        let m = g.member(created.id).await.unwrap();
        assert_eq!(m.id_number, full);
        assert_eq!(m.name, "张伟");
        assert_eq!(m.phone.as_deref(), Some("13812345678"));
        assert_eq!(m.birth_date, birth(7));
        assert_eq!(m.gender, gender(7));
        assert_eq!(m.joined_on, NaiveDate::from_ymd_opt(2010, 7, 1).unwrap());

        let trail = g.member_audit(created.id).await.unwrap();
        let actions: Vec<_> = trail.iter().map(|a| (a.action.as_str(), a.outcome.as_str())).collect();
        assert_eq!(actions, [("member.view_id", "ok"), ("member.create", "ok")], "newest first");
        assert!(trail.iter().all(|a| a.target_type.as_deref() == Some("member")));
        assert!(trail.iter().all(|a| a.target_id.as_deref() == Some(created.id.to_string().as_str())));
        // The audit log never holds the full number.
        let create = &trail[1];
        let after = create.after_data.as_deref().unwrap();
        assert!(!after.contains(&full), "audit holds the full id number: {after}");
        assert!(after.contains(&id_number::mask(&full)));

        let recent = audit_log(&store).await;
        assert_eq!(recent[0].action, "member.view_id", "the view is the latest record");
        assert!(recent.iter().all(|a| !a.after_data.as_deref().unwrap_or("").contains(&full)));

        assert_eq!(overview(&store, Some("TA-B1")).await.members, 1);
        assert_eq!(overview(&store, Some("CTY")).await.members, 1);
        assert_eq!(overview(&store, Some("TB")).await.members, 0);
        assert_not_found(g.member(created.id + 1000).await);
        assert_invalid(g.member_create(person("孙七", "NOPE", 8)).await, "org_code", "org.unknown");
    })
    .await;
}

#[tokio::test]
async fn member_id_numbers_are_unique() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let first = g.member_create(person("张三", "TA-B1", 1)).await.unwrap();
        let mut twin = person("张三丰", "TB-B1", 1);
        assert_conflict(g.member_create(twin.clone()).await, "member.id_number.duplicate");

        // Nor can an update take another member's number.
        let second = g.member_create(person("李四", "TA-B2", 2)).await.unwrap();
        twin = person("李四", "TA-B2", 1);
        assert_conflict(g.member_update(second.id, twin, second.version).await, "member.id_number.duplicate");

        let all = search_all(&g, MemberQuery::default()).await;
        assert_eq!(ids(&all), vec![first.id, second.id]);
        assert_eq!(g.member(second.id).await.unwrap().id_number, id_of(2, DIVISION));
        assert_eq!(overview(&store, None).await.members, 2);
        assert_eq!(overview(&store, Some("TB")).await.members, 0);
    })
    .await;
}

#[tokio::test]
async fn member_update_is_versioned_and_its_diff_audited() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let m = g.member_create(person_with("张三", "TA-B1", 1, DIVISION, Some("13800000001"))).await.unwrap();
        let changed = person_with("张三", "TA-B1", 1, DIVISION, Some("13900000002"));
        let after = g.member_update(m.id, changed.clone(), m.version).await.unwrap();
        assert_eq!(after.version, m.version + 1);
        assert_eq!(after.phone.as_deref(), Some("13900000002"));

        // A second writer holding the old version loses.
        let other = person_with("张三", "TA-B1", 1, DIVISION, Some("13700000003"));
        assert_conflict(g.member_update(m.id, other, m.version).await, "stale_version");
        assert_eq!(g.member(m.id).await.unwrap().phone.as_deref(), Some("13900000002"));

        let trail = g.member_audit(m.id).await.unwrap();
        let upd: Vec<_> = trail.iter().filter(|a| a.action == "member.update").collect();
        assert_eq!(upd.len(), 1);
        let before: serde_json::Value = serde_json::from_str(upd[0].before_data.as_deref().unwrap()).unwrap();
        let after_j: serde_json::Value = serde_json::from_str(upd[0].after_data.as_deref().unwrap()).unwrap();
        assert_eq!(before, serde_json::json!({ "phone": "13800000001" }));
        assert_eq!(after_j, serde_json::json!({ "phone": "13900000002" }));

        // Moving the formal record to another organization moves its count.
        let moved =
            g.member_update(m.id, person_with("张三", "TB-B1", 1, DIVISION, None), after.version).await.unwrap();
        assert_eq!(moved.org_code, "TB-B1");
        assert_eq!(moved.phone, None);
        assert_eq!(overview(&store, Some("TA")).await.members, 0);
        assert_eq!(overview(&store, Some("TB")).await.members, 1);
        assert_eq!(overview(&store, None).await.members, 1);
        let in_tb = MemberQuery { org: Some("TB".into()), ..Default::default() };
        assert_eq!(ids(&search_all(&g, in_tb).await), vec![m.id]);
        assert_not_found(g.member_update(m.id + 1000, changed, 1).await);
    })
    .await;
}

#[tokio::test]
async fn a_corrected_id_number_is_audited_masked() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let m = g.member_create(person("张三", "TA-B1", 1)).await.unwrap();
        // The number was mistyped at entry: correct it (with the birth date it encodes).
        let fixed = g.member_update(m.id, person("张三", "TA-B1", 51), m.version).await.unwrap();
        let (old, new) = (id_of(1, DIVISION), id_of(51, DIVISION));
        assert_eq!(fixed.id_number, new);
        assert_eq!(fixed.birth_date, birth(51));
        assert_eq!(ids(&search_all(&g, query(&new)).await), vec![m.id]);
        assert!(search_all(&g, query(&old)).await.is_empty());

        let trail = g.member_audit(m.id).await.unwrap();
        let upd = trail.iter().find(|a| a.action == "member.update").expect("update audited");
        let before: serde_json::Value = serde_json::from_str(upd.before_data.as_deref().unwrap()).unwrap();
        let after: serde_json::Value = serde_json::from_str(upd.after_data.as_deref().unwrap()).unwrap();
        assert_eq!(before["id_number"], id_number::mask(&old));
        assert_eq!(after["id_number"], id_number::mask(&new));
        // The mask hides the birth-date digits, so the date itself is kept to its year.
        assert_eq!(after["birth_date"], birth(51).format("%Y-**-**").to_string());
        for a in &trail {
            for data in [&a.before_data, &a.after_data].into_iter().flatten() {
                assert!(!data.contains(&old) && !data.contains(&new), "full number in the audit log: {data}");
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Search
// ---------------------------------------------------------------------------

#[tokio::test]
async fn search_by_name_id_number_phone_org_and_mobility() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let zhang = g.member_create(person_with("张伟", "TA-B1", 1, DIVISION, Some("13812345678"))).await.unwrap();
        let zhang2 = g.member_create(person_with("张伟华", "TB-B1", 2, DIVISION, None)).await.unwrap();
        let wang = g.member_create(person_with("王芳", "TA-B2", 3, DIVISION, Some("13900000003"))).await.unwrap();
        let chen = g.member_create(person_with("陳國華", "TA-B2", 4, "110105", None)).await.unwrap();
        let ayi = g.member_create(person_with("阿依古丽·买买提", "TB-B1", 5, DIVISION, None)).await.unwrap();

        let names = |q: &str| {
            let g = &g;
            let q = q.to_string();
            async move { ids(&search_all(g, query(&q)).await) }
        };
        // Name prefix.
        assert_eq!(names("张").await, vec![zhang.id, zhang2.id]);
        assert_eq!(names("张伟").await, vec![zhang.id, zhang2.id]);
        assert_eq!(names("张伟华").await, vec![zhang2.id]);
        assert_eq!(names("王").await, vec![wang.id]);
        assert!(names("李").await.is_empty());
        // Traditional characters find simplified names and the other way round.
        assert_eq!(names("張偉").await, vec![zhang.id, zhang2.id]);
        assert_eq!(names("陈国").await, vec![chen.id]);
        assert_eq!(names("陳 國 華").await, vec![chen.id]);
        // Separator dots and spaces are ignored.
        assert_eq!(names("阿依古丽买买提").await, vec![ayi.id]);

        // The full identity number, in the 18 and the old 15-character form.
        let id18 = id_of(3, DIVISION);
        assert_eq!(names(&id18).await, vec![wang.id]);
        let id15 = format!("{}{}", &id18[..6], &id18[8..17]);
        assert_eq!(id15.len(), 15);
        assert_eq!(names(&id15).await, vec![wang.id]);
        assert!(names(&id_of(99, DIVISION)).await.is_empty());
        // A prefix of digits matches identity numbers (and phones).
        assert_eq!(names("110105").await, vec![chen.id]);

        // Phone, with separators and country code.
        assert_eq!(names("138-1234-5678").await, vec![zhang.id]);
        assert_eq!(names("+86 139 0000 0003").await, vec![wang.id]);

        // Organization subtree filter, alone and with text.
        let org = |code: &str, q: Option<&str>| MemberQuery {
            org: Some(code.into()),
            q: q.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(ids(&search_all(&g, org("TA", None)).await), vec![zhang.id, wang.id, chen.id]);
        assert_eq!(ids(&search_all(&g, org("TB", None)).await), vec![zhang2.id, ayi.id]);
        assert_eq!(ids(&search_all(&g, org("TB", Some("张"))).await), vec![zhang2.id]);
        assert_eq!(ids(&search_all(&g, org("CTY", None)).await).len(), 5);
        assert_invalid(g.members(&org("NOPE", None)).await, "org", "org.unknown");

        // Lists show the masked number only.
        let rows = search_all(&g, query("王芳")).await;
        assert_eq!(rows[0].id_number_masked, format!("{}********{}", &id18[..6], &id18[14..]));
        assert_eq!(rows[0].id_number_masked.len(), 18);
        assert!(!rows[0].id_number_masked.contains(&id18[6..14]));
        assert_eq!((rows[0].org_code.as_str(), rows[0].org_name.as_str()), ("TA-B2", "甲二村党支部"));
        assert_eq!(rows[0].phone.as_deref(), Some("13900000003"));

        // Mobility.
        g.record_departure(wang.id, departure("2024-05-01")).await.unwrap();
        let mob = |m: &str| MemberQuery { mobility: Some(m.into()), ..Default::default() };
        assert_eq!(ids(&search_all(&g, mob("away")).await), vec![wang.id]);
        assert_eq!(ids(&search_all(&g, mob("not_checked_in")).await), vec![wang.id]);
        assert!(search_all(&g, mob("checked_in")).await.is_empty());
        assert_eq!(ids(&search_all(&g, mob("resident")).await), vec![zhang.id, zhang2.id, chen.id, ayi.id]);
        let away_in_tb = MemberQuery { org: Some("TB".into()), mobility: Some("away".into()), ..Default::default() };
        assert!(search_all(&g, away_in_tb).await.is_empty());
        assert_invalid(g.members(&mob("gone")).await, "mobility", "invalid");
        assert_eq!(search_all(&g, query("王")).await[0].mobility, Mobility::NotCheckedIn);
    })
    .await;
}

#[tokio::test]
async fn search_by_id_number_ignores_case_of_the_check_character() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let n = (0..2000).find(|n| id_of(*n, DIVISION).ends_with('X')).expect("some number ends in X");
        let m = g.member_create(person("钱八", "TA-B1", n)).await.unwrap();
        let id = id_of(n, DIVISION);
        assert_eq!(ids(&search_all(&g, query(&id.to_lowercase())).await), vec![m.id]);
        assert_eq!(ids(&search_all(&g, query(&id)).await), vec![m.id]);
    })
    .await;
}

#[tokio::test]
async fn cursor_pagination_returns_every_row_once_in_order() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        // Names sharing prefixes and whole keys (ties are broken by id), in both scripts.
        let given = ["芳", "伟", "小明", "國華", "国华", "芳", "丽", "强", "芳", "敏", "静", "磊"];
        let mut created = Vec::new();
        for (i, n) in (0..37u32).enumerate() {
            let name = format!("王{}", given[i % given.len()]);
            let org = ["TA-B1", "TA-B2", "TB-B1"][i % 3];
            let m = g.member_create(person(&name, org, n)).await.unwrap();
            created.push((kite_domain::text::name_key(&m.name), m.id));
        }
        // Someone who must not match the prefix.
        let other = g.member_create(person("汪洋", "TA-B1", 100)).await.unwrap();

        // By name: ordered by the search key, then id.
        created.sort();
        let expected: Vec<i64> = created.iter().map(|(_, id)| *id).collect();
        for limit in [1u32, 5, 7, 36, 37] {
            let q = MemberQuery { q: Some("王".into()), limit: Some(limit), ..Default::default() };
            let got = ids(&search_all(&g, q).await);
            assert_eq!(got, expected, "name search, limit {limit}");
        }
        // The traditional spelling pages the same way.
        let q = MemberQuery { q: Some("王國".into()), limit: Some(2), ..Default::default() };
        let got = ids(&search_all(&g, q).await);
        let want: Vec<i64> = created.iter().filter(|(k, _)| k == "王国华").map(|(_, id)| *id).collect();
        assert_eq!(got, want);
        assert_eq!(want.len(), 6);

        // By leading ID digits: ordered by the number, then id, across pages.
        let mut by_number: Vec<(String, i64)> = Vec::new();
        for id in expected.iter().chain([&other.id]) {
            by_number.push((g.member(*id).await.unwrap().id_number, *id));
        }
        by_number.sort();
        let want: Vec<i64> = by_number.iter().map(|(_, id)| *id).collect();
        for limit in [1u32, 6, 38] {
            let q = MemberQuery { q: Some(DIVISION.into()), limit: Some(limit), ..Default::default() };
            assert_eq!(ids(&search_all(&g, q).await), want, "ID prefix search, limit {limit}");
        }

        // Without text: ordered by id.
        let mut all_ids = expected.clone();
        all_ids.push(other.id);
        all_ids.sort();
        for limit in [4u32, 38, 200] {
            let q = MemberQuery { limit: Some(limit), ..Default::default() };
            assert_eq!(ids(&search_all(&g, q).await), all_ids, "unfiltered, limit {limit}");
        }
        // With an organization filter.
        let q = MemberQuery { org: Some("TA".into()), limit: Some(3), ..Default::default() };
        let ta = ids(&search_all(&g, q).await);
        let want: HashSet<i64> = all_ids.iter().copied().collect();
        assert_eq!(ta.iter().copied().collect::<HashSet<_>>().len(), ta.len(), "no duplicates");
        assert!(ta.iter().all(|id| want.contains(id)));
        assert_eq!(ta.len(), 26); // 25 of the 37 plus 汪洋
        assert!(ta.windows(2).all(|w| w[0] < w[1]));

        // An exact last page has no cursor; a page of 5 over 38 rows has one.
        let page = g.members(&MemberQuery { limit: Some(38), ..Default::default() }).await.unwrap();
        assert_eq!((page.items.len(), page.next_cursor.is_none()), (38, true));
        let page = g.members(&MemberQuery { limit: Some(5), ..Default::default() }).await.unwrap();
        assert_eq!(page.items.len(), 5);
        let cursor = page.next_cursor.expect("more pages");
        // A cursor of the other ordering, or garbage, is refused.
        let bad = MemberQuery { q: Some("王".into()), cursor: Some(cursor), ..Default::default() };
        assert_invalid(g.members(&bad).await, "cursor", "invalid");
        let bad = MemberQuery { cursor: Some("!!!".into()), ..Default::default() };
        assert_invalid(g.members(&bad).await, "cursor", "invalid");
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. Departures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn departure_opens_a_flow_and_counts_the_member_away() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let g = guard(&store);
        let m = g.member_create(person("张三", "TA-B1", 1)).await.unwrap();
        let stay = g.member_create(person("李四", "TA-B1", 2)).await.unwrap();
        assert_eq!(overview(&store, Some("TA")).await.mobile_out, 0);

        let flow = g.record_departure(m.id, departure("2024-03-01")).await.unwrap();
        assert_eq!(flow.member_id, m.id);
        assert_eq!(flow.status, FlowStatus::NotCheckedIn);
        assert_eq!(flow.reason, FlowReason::Work);
        assert_eq!((flow.outflow_org_code.as_str(), flow.outflow_org_name.as_str()), ("TA-B1", "甲一村党支部"));
        assert_eq!(flow.inflow_org_code, None);
        assert_eq!(flow.destination_division, "320506");
        assert_eq!(flow.left_on, NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        assert_eq!(flow.expected_months, Some(12));
        assert_eq!(flow.contact_phone.as_deref(), Some("13912345678"));

        let now = g.member(m.id).await.unwrap();
        assert_eq!(now.mobility, Mobility::NotCheckedIn);
        assert_eq!(g.member(stay.id).await.unwrap().mobility, Mobility::Resident);

        let flows = g.member_flows(m.id).await.unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].id, flow.id);
        assert!(g.member_flows(stay.id).await.unwrap().is_empty());

        for code in ["TA-B1", "TA", "CTY"] {
            assert_eq!(overview(&store, Some(code)).await.mobile_out, 1, "{code}");
        }
        for code in ["TA-B2", "TB", "TB-B1"] {
            assert_eq!(overview(&store, Some(code)).await.mobile_out, 0, "{code}");
        }
        assert_eq!(overview(&store, None).await, counts(6, 2, 1, 0));

        // While the flow is open, there is no second departure.
        assert_conflict(g.record_departure(m.id, departure("2024-04-01")).await, "flow.already_open");
        assert_eq!(g.member_flows(m.id).await.unwrap().len(), 1);
        assert_eq!(overview(&store, None).await.mobile_out, 1);

        // Not before joining.
        let early = Departure { left_on: NaiveDate::from_ymd_opt(2009, 1, 1).unwrap(), ..departure("2024-03-01") };
        assert_invalid(g.record_departure(stay.id, early).await, "left_on", "flow.left_before_joining");
        assert!(g.member_flows(stay.id).await.unwrap().is_empty());
        assert_not_found(g.record_departure(m.id + 1000, departure("2024-03-01")).await);

        let trail = g.member_audit(m.id).await.unwrap();
        assert!(trail.iter().any(|a| a.action == "flow.depart" && a.outcome == "ok"));
        assert_eq!(trail.iter().filter(|a| a.action == "flow.depart").count(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Counters after bulk loading
// ---------------------------------------------------------------------------

fn new_org(code: &str, parent: Option<&str>, level: OrgLevel) -> NewOrg {
    NewOrg { code: code.into(), parent_code: parent.map(str::to_string), fields: org_fields(code, level) }
}

/// Organizations: R0 > {A0 > {A1, A2}, B0 > {B1}}; members per leaf and flows as listed.
async fn bulk_load(store: &Store) {
    let admin = store.admin();
    let ids = admin
        .insert_orgs(&[
            new_org("R0", None, OrgLevel::Committee),
            new_org("A0", Some("R0"), OrgLevel::Committee),
            new_org("A1", Some("A0"), OrgLevel::Branch),
            new_org("A2", Some("A0"), OrgLevel::Branch),
            new_org("B0", Some("R0"), OrgLevel::Committee),
            new_org("B1", Some("B0"), OrgLevel::Branch),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 6);
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>().len(), 6);

    // A0: 3, A1: 10, A2: 7, B1: 5, R0: 1
    let mut rows = Vec::new();
    let mut n = 0;
    for (org, count) in [("A0", 3), ("A1", 10), ("A2", 7), ("B1", 5), ("R0", 1)] {
        for _ in 0..count {
            rows.push(NewMember { fields: person(&format!("成员{n}"), org, n) });
            n += 1;
        }
    }
    admin.bulk_insert_members(&rows).await.unwrap();

    let flow = |n: u32, out: &str, inflow: Option<&str>, status: FlowStatus| NewFlow {
        id_number: id_of(n, DIVISION),
        outflow_org_code: out.into(),
        inflow_org_code: inflow.map(str::to_string),
        departure: departure("2023-06-01"),
        status,
    };
    admin
        .bulk_insert_flows(&[
            // Members 3..13 are in A1, 13..20 in A2, 20..25 in B1.
            flow(3, "A1", None, FlowStatus::NotCheckedIn),
            flow(4, "A1", Some("B1"), FlowStatus::CheckedIn),
            flow(5, "A1", None, FlowStatus::LostContact),
            flow(6, "A1", Some("B1"), FlowStatus::Returned),
            flow(13, "A2", Some("B1"), FlowStatus::CheckedIn),
            flow(20, "B1", Some("A2"), FlowStatus::CheckedIn),
            flow(21, "B1", None, FlowStatus::Transferred),
        ])
        .await
        .unwrap();
    admin.recount().await.unwrap();
}

#[tokio::test]
async fn overview_counts_match_a_bulk_load_after_recount() {
    on_each_backend(|_, store| async move {
        bulk_load(&store).await;
        // mobile_out: open flows (not_checked_in, checked_in, lost_contact) by outflow org;
        // mobile_in: checked-in flows by inflow org.
        assert_eq!(overview(&store, None).await, counts(6, 26, 5, 3));
        assert_eq!(overview(&store, Some("R0")).await, counts(6, 26, 5, 3));
        assert_eq!(overview(&store, Some("A0")).await, counts(3, 20, 4, 1));
        assert_eq!(overview(&store, Some("A1")).await, counts(1, 10, 3, 0));
        assert_eq!(overview(&store, Some("A2")).await, counts(1, 7, 1, 1));
        assert_eq!(overview(&store, Some("B0")).await, counts(2, 5, 1, 2));
        assert_eq!(overview(&store, Some("B1")).await, counts(1, 5, 1, 2));

        // The rows agree with the counters.
        let g = guard(&store);
        let away = MemberQuery { mobility: Some("away".into()), ..Default::default() };
        assert_eq!(search_all(&g, away).await.len(), 5);
        let in_a = MemberQuery { org: Some("A0".into()), ..Default::default() };
        assert_eq!(search_all(&g, in_a).await.len(), 20);
        let m = search_all(&g, query(&id_of(4, DIVISION))).await;
        assert_eq!(m[0].mobility, Mobility::CheckedIn);
        let m = search_all(&g, query(&id_of(6, DIVISION))).await;
        assert_eq!(m[0].mobility, Mobility::Resident, "a returned member is home");
        let m = search_all(&g, query(&id_of(5, DIVISION))).await;
        assert_eq!(m[0].mobility, Mobility::LostContact);

        // Recounting again changes nothing; guarded changes keep the counters in step.
        store.admin().recount().await.unwrap();
        assert_eq!(overview(&store, None).await, counts(6, 26, 5, 3));
        let m = g.member_create(person("新人", "A2", 500)).await.unwrap();
        g.record_departure(m.id, departure("2024-01-01")).await.unwrap();
        assert_eq!(overview(&store, Some("A0")).await, counts(3, 21, 5, 1));
        store.admin().recount().await.unwrap();
        assert_eq!(overview(&store, Some("A0")).await, counts(3, 21, 5, 1));
    })
    .await;
}

#[tokio::test]
async fn bulk_insert_members_counts_after_recount() {
    on_each_backend(|_, store| async move {
        let admin = store.admin();
        admin
            .insert_orgs(&[new_org("R0", None, OrgLevel::Committee), new_org("A1", Some("R0"), OrgLevel::Branch)])
            .await
            .unwrap();
        let rows: Vec<_> = (0..4).map(|n| NewMember { fields: person(&format!("成员{n}"), "A1", n) }).collect();
        admin.bulk_insert_members(&rows).await.unwrap();
        // Bulk loads leave the counters alone, as documented; `recount` makes them exact.
        assert_eq!(overview(&store, Some("R0")).await.members, 0);
        admin.recount().await.unwrap();
        assert_eq!(overview(&store, Some("R0")).await.members, 4);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 7. Accounts, sessions and throttling
// ---------------------------------------------------------------------------

fn new_user(username: &str, role: Role, org: Option<&str>, member_id: Option<i64>) -> NewUser {
    NewUser {
        username: username.into(),
        password_hash: "$argon2id$fake".into(),
        role,
        org_code: org.map(str::to_string),
        member_id,
        display_name: Some("测试".into()),
        service_point_code: None,
    }
}

#[tokio::test]
async fn accounts_are_created_with_their_scope() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let acc = store.accounts();
        let u = acc.create_user(&new_user("ta_admin", Role::OrgAdmin, Some("TA"), None), "cli").await.unwrap();
        assert_eq!((u.role, u.org_code.as_deref(), u.disabled), (Role::OrgAdmin, Some("TA"), false));
        let p = u.principal();
        assert_eq!((p.user_id, p.username.as_str(), p.role), (u.id, "ta_admin", Role::OrgAdmin));
        assert_eq!(p.org_path.as_deref(), Some(t.ta.path.as_str()));

        let (found, hash) = acc.user_by_username("ta_admin").await.unwrap().expect("user exists");
        assert_eq!((found.id, hash.as_str()), (u.id, "$argon2id$fake"));
        assert!(acc.user_by_username("nobody").await.unwrap().is_none());

        for role in [Role::OrgAdmin, Role::Secretary, Role::ServiceStaff] {
            assert_invalid(
                acc.create_user(&new_user("orgless", role, None, None), "cli").await,
                "org",
                "user.org.required",
            );
        }
        assert_invalid(
            acc.create_user(&new_user("x", Role::Secretary, Some("NOPE"), None), "cli").await,
            "org",
            "org.unknown",
        );
        assert_invalid(acc.create_user(&new_user("m", Role::Member, None, None), "cli").await, "member_id", "required");
        assert_invalid(
            acc.create_user(&new_user("m", Role::Member, None, Some(987_654)), "cli").await,
            "member_id",
            "member.unknown",
        );
        assert_invalid(
            acc.create_user(&new_user("bad name", Role::Admin, None, None), "cli").await,
            "username",
            "user.username.invalid",
        );
        assert_invalid(
            acc.create_user(&new_user("  ", Role::Admin, None, None), "cli").await,
            "username",
            "user.username.invalid",
        );
        assert_conflict(
            acc.create_user(&new_user("ta_admin", Role::Admin, None, None), "cli").await,
            "user.username.duplicate",
        );
        assert!(acc.user_by_username("orgless").await.unwrap().is_none());

        let root = acc.create_user(&new_user("root", Role::Admin, None, None), "cli").await.unwrap();
        assert_eq!((root.org_code.as_deref(), root.principal().org_path), (None, None));
        let member = guard(&store).member_create(person("张三", "TA-B1", 1)).await.unwrap();
        let mu = acc.create_user(&new_user("zhangsan", Role::Member, None, Some(member.id)), "cli").await.unwrap();
        assert_eq!(mu.principal().member_id, Some(member.id));

        acc.audit_login(Some(&u), "ta_admin", Some("10.0.0.1"), "ok").await.unwrap();
        acc.audit_login(None, "ghost", Some("10.0.0.2"), "failed").await.unwrap();
        let log = audit_log(&store).await;
        let created: Vec<_> = log.iter().filter(|a| a.action == "user.create").collect();
        assert_eq!(created.len(), 3);
        assert!(created.iter().all(|a| a.username.as_deref() == Some("cli") && a.outcome == "ok"));
        assert_eq!(log[0].action, "auth.login");
        assert_eq!(
            (log[0].username.as_deref(), log[0].outcome.as_str(), log[0].user_id),
            (Some("ghost"), "failed", None)
        );
        assert_eq!((log[1].client.as_deref(), log[1].user_id), (Some("10.0.0.1"), Some(u.id)));
    })
    .await;
}

#[tokio::test]
async fn sessions_live_until_they_expire_or_are_deleted() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let acc = store.accounts();
        let u = acc.create_user(&new_user("sec", Role::Secretary, Some("TA-B1"), None), "cli").await.unwrap();
        let in_an_hour = Utc::now() + TimeDelta::hours(1);
        acc.create_session(u.id, "hash-live", "browser", "csrf-1", in_an_hour).await.unwrap();
        acc.create_session(u.id, "hash-api", "api", "csrf-2", in_an_hour).await.unwrap();
        acc.create_session(u.id, "hash-old", "browser", "csrf-3", Utc::now() - TimeDelta::minutes(1)).await.unwrap();

        let s = acc.session("hash-live").await.unwrap().expect("live session");
        assert_eq!((s.user.id, s.user.username.as_str(), s.user.role), (u.id, "sec", Role::Secretary));
        assert_eq!((s.csrf_token.as_str(), s.kind.as_str()), ("csrf-1", "browser"));
        assert!((s.expires_at - in_an_hour).num_milliseconds().abs() < 1000);
        assert_eq!(s.user.principal(), u.principal());
        assert_eq!(acc.session("hash-api").await.unwrap().expect("api session").kind, "api");

        assert!(acc.session("hash-old").await.unwrap().is_none(), "expired");
        assert!(acc.session("hash-unknown").await.unwrap().is_none());

        acc.delete_session("hash-live").await.unwrap();
        assert!(acc.session("hash-live").await.unwrap().is_none());
        assert!(acc.session("hash-api").await.unwrap().is_some(), "other sessions stay");
        acc.delete_session("hash-live").await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn failed_logins_lock_after_the_threshold() {
    on_each_backend(|_, store| async move {
        let acc = store.accounts();
        let user = ("user:alice".to_string(), 3);
        let addr = ("addr:10.0.0.1".to_string(), 5);
        for _ in 0..2 {
            acc.record_failure(&[user.clone(), addr.clone()]).await.unwrap();
        }
        assert_eq!(acc.locked_until("user:alice").await.unwrap(), None);
        let before = Utc::now();
        acc.record_failure(&[user.clone(), addr.clone()]).await.unwrap();
        let until = acc.locked_until("user:alice").await.unwrap().expect("locked at the threshold");
        assert!(until > before && until <= Utc::now() + TimeDelta::minutes(1), "a first lock lasts a minute: {until}");
        assert_eq!(acc.locked_until("addr:10.0.0.1").await.unwrap(), None, "each key has its own threshold");

        // Each further failure doubles the lock.
        acc.record_failure(std::slice::from_ref(&user)).await.unwrap();
        let longer = acc.locked_until("user:alice").await.unwrap().expect("still locked");
        assert!(longer > Utc::now() + TimeDelta::seconds(90), "second lock lasts two minutes: {longer}");

        acc.record_failure(std::slice::from_ref(&addr)).await.unwrap();
        acc.record_failure(std::slice::from_ref(&addr)).await.unwrap();
        assert!(acc.locked_until("addr:10.0.0.1").await.unwrap().is_some());

        acc.clear_failures("user:alice").await.unwrap();
        assert_eq!(acc.locked_until("user:alice").await.unwrap(), None);
        assert!(acc.locked_until("addr:10.0.0.1").await.unwrap().is_some(), "clearing one key leaves the others");
        // The count starts again from zero.
        acc.record_failure(std::slice::from_ref(&user)).await.unwrap();
        acc.record_failure(std::slice::from_ref(&user)).await.unwrap();
        assert_eq!(acc.locked_until("user:alice").await.unwrap(), None);
        assert_eq!(acc.locked_until("never-seen").await.unwrap(), None);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Concurrent writers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_id_number_let_exactly_one_through() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let org = if i % 2 == 0 { "TA-B1" } else { "TB-B1" };
                let f = person(&format!("重号{i}"), org, 42);
                tokio::spawn(async move { guard(&store).member_create(f).await.map(|m| m.id) })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                r => assert_conflict(r, "member.id_number.duplicate"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(search_all(&guard(&store), MemberQuery::default()).await.len(), 1);
        assert_eq!(overview(&store, None).await.members, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_keep_the_counters_exact() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let tasks: Vec<_> = (0..24)
            .map(|n| {
                let store = store.clone();
                let org = ["TA-B1", "TA-B2", "TB-B1"][n as usize % 3];
                let f = person(&format!("并发{n}"), org, n);
                tokio::spawn(async move { guard(&store).member_create(f).await.map(|m| m.id) })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("distinct members are all created");
        }
        assert_eq!(overview(&store, None).await.members, 24);
        assert_eq!(overview(&store, Some("TA")).await.members, 16);
        assert_eq!(overview(&store, Some("TB-B1")).await.members, 8);
        store.admin().recount().await.unwrap();
        assert_eq!(overview(&store, Some("TA")).await.members, 16);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_departures_open_one_flow() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let m = guard(&store).member_create(person("张三", "TA-B1", 1)).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    guard(&store).record_departure(m.id, departure("2024-03-01")).await.map(|f| f.id)
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                r => assert_conflict(r, "flow.already_open"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(guard(&store).member_flows(m.id).await.unwrap().len(), 1);
        assert_eq!(overview(&store, Some("TA")).await.mobile_out, 1);
        store.admin().recount().await.unwrap();
        assert_eq!(overview(&store, Some("TA")).await.mobile_out, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_one_version_let_exactly_one_through() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let m = guard(&store).member_create(person("张三", "TA-B1", 1)).await.unwrap();
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let store = store.clone();
                let phone = format!("1390000000{i}");
                let f = person_with("张三", "TA-B1", 1, DIVISION, Some(&phone));
                tokio::spawn(async move { guard(&store).member_update(m.id, f, m.version).await.map(|m| m.phone) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(phone) => winners.push(phone),
                r => assert_conflict(r, "stale_version"),
            }
        }
        assert_eq!(winners.len(), 1);
        let now = guard(&store).member(m.id).await.unwrap();
        assert_eq!((now.phone, now.version), (winners[0].clone(), m.version + 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_created_during_moves_are_kept_and_follow_the_move() {
    on_each_backend(|_, store| async move {
        tree(&store).await;
        let mover = {
            let store = store.clone();
            tokio::spawn(async move {
                let g = guard(&store);
                for i in 0..30 {
                    let v = g.org("TA-B1").await.unwrap().version;
                    let to = if i % 2 == 0 { "TB" } else { "TA" };
                    g.org_move("TA-B1", to, v).await.unwrap_or_else(|e| panic!("move {i} to {to}: {e:?}"));
                }
            })
        };
        let creators: Vec<_> = (0..3u32)
            .map(|k| {
                let store = store.clone();
                tokio::spawn(async move {
                    let g = guard(&store);
                    let mut ids = Vec::new();
                    for n in (0..20u32).map(|n| k * 100 + n) {
                        let m = g.member_create(person(&format!("移{n}"), "TA-B1", n)).await;
                        ids.push(m.unwrap_or_else(|e| panic!("create {n}: {e:?}")).id);
                    }
                    ids
                })
            })
            .collect();
        mover.await.unwrap();
        let mut all = Vec::new();
        for c in creators {
            all.extend(c.await.unwrap());
        }
        let g = guard(&store);
        let b1 = g.org("TA-B1").await.unwrap();
        assert_eq!(b1.parent_code.as_deref(), Some("TA"), "an even number of moves ends where it began");
        for id in &all {
            let m = g.member(*id).await.unwrap();
            assert_eq!(m.org_path, b1.path, "member {id} kept a stale organization path");
        }
        let in_b1 = MemberQuery { org: Some("TA-B1".into()), limit: Some(200), ..Default::default() };
        assert_eq!(search_all(&g, in_b1).await.len(), 60);
        assert_eq!(overview(&store, Some("TA")).await.members, 60);
        assert_eq!(overview(&store, Some("TB")).await.members, 0);
    })
    .await;
}

fn point(code: &str, parent: Option<&str>, level: ServicePointLevel, org: &str) -> NewServicePoint {
    NewServicePoint {
        code: code.into(),
        parent_code: parent.map(str::to_string),
        name: format!("{code}服务点"),
        level,
        org_code: org.into(),
        division_code: DIVISION.into(),
        address: Some("人民路1号".into()),
        hotline: Some("0518-60000001".into()),
        opening_hours: None,
    }
}

#[tokio::test]
async fn service_points_are_listed_by_subtree_centres_first_and_follow_moves() {
    on_each_backend(|_, store| async move {
        let t = tree(&store).await;
        let admin_api = store.admin();
        admin_api
            .insert_service_points(&[
                point("C1", None, ServicePointLevel::Centre, "CTY"),
                point("W1", Some("C1"), ServicePointLevel::Window, "TA-B1"),
                point("S1", Some("C1"), ServicePointLevel::Station, "TA"),
                point("S2", Some("C1"), ServicePointLevel::Station, "TB"),
            ])
            .await
            .unwrap();
        let g = guard(&store);
        let codes = |v: Vec<ServicePoint>| v.into_iter().map(|p| p.code).collect::<Vec<_>>();
        assert_eq!(codes(g.service_points("CTY").await.unwrap()), ["C1", "S1", "S2", "W1"]);
        assert_eq!(codes(g.service_points("TA").await.unwrap()), ["S1", "W1"]);
        let w1 = g.service_points("TA-B1").await.unwrap().remove(0);
        assert_eq!((w1.parent_code.as_deref(), w1.org_name.as_str()), (Some("C1"), t.ta_b1.name.as_str()));

        // The list follows the tree: a branch moved to another town takes its window along.
        g.org_move("TA-B1", "TB", t.ta_b1.version).await.unwrap();
        assert_eq!(codes(g.service_points("TB").await.unwrap()), ["S2", "W1"]);

        // Bad references are refused whole: nothing of the batch is written.
        assert_invalid(
            admin_api
                .insert_service_points(&[
                    point("OK1", None, ServicePointLevel::Point, "TA"),
                    point("BAD", Some("NOPE"), ServicePointLevel::Point, "TA"),
                ])
                .await,
            "parent_code",
            "service_point.parent.unknown",
        );
        assert_invalid(
            admin_api.insert_service_points(&[point("BAD2", None, ServicePointLevel::Point, "NOPE")]).await,
            "org_code",
            "org.unknown",
        );
        assert_conflict(
            admin_api.insert_service_points(&[point("C1", None, ServicePointLevel::Centre, "CTY")]).await,
            "service_point.code.duplicate",
        );
        assert_eq!(codes(g.service_points("TA").await.unwrap()), ["S1"]);

        // Outside one's subtree the list is refused like the organization itself.
        let tb_admin = Principal {
            user_id: 2,
            username: "tb".into(),
            role: Role::OrgAdmin,
            org_path: Some(t.tb.path.clone()),
            member_id: None,
            service_point_id: None,
        };
        assert_forbidden(store.guard(tb_admin, Client::default()).service_points("TA").await);
    })
    .await;
}

#[tokio::test]
async fn a_session_opens_only_on_the_password_that_was_checked() {
    on_each_backend(|_, store| async move {
        let acc = store.accounts();
        let user = acc.create_user(&new_user("root2", Role::Admin, None, None), "cli").await.expect("account");
        let until = chrono::Utc::now() + chrono::Duration::hours(1);
        let row = |hash: &'static str| kite_store::NewSessionRow { token_hash: hash, kind: "api", csrf_token: "c" };
        // A reset between the check and the session: the old password opens nothing.
        let stale = acc.create_session_if(user.id, "$argon2id$before-reset", &row("t1"), until).await;
        assert!(!stale.expect("no error"));
        assert!(acc.session("t1").await.expect("read").is_none());
        assert!(acc.create_session_if(user.id, "$argon2id$fake", &row("t2"), until).await.expect("opened"));
        assert!(acc.session("t2").await.expect("read").is_some());
    })
    .await;
}
