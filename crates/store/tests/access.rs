//! Access control through the guarded API, on SQLite and on PostgreSQL: each role
//! reaches exactly its scope, refusals answer as the policy says (members outside
//! scope are "not found", organizations are "forbidden"), and every refusal leaves an
//! audit record with outcome `denied`.

use std::future::Future;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use kite_domain::flow::{validate_departure, DepartureInput};
use kite_domain::member::{validate, MemberFields, MemberInput};
use kite_domain::org::OrgFields;
use kite_domain::{id_number, Gender, Mobility, OrgKind, OrgLevel, OrgStatus, Principal, Role};
use kite_store::{AuditEntry, Client, Departure, Guard, Member, MemberQuery, Org, Overview, Store};

mod common;
use common::*;

/// A refused call must answer promptly; a refusal that waits for a database
/// connection it can never get fails here instead of after the pool's 30 s timeout.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s (waiting for a database connection?)"))
}

fn person_with(name: &str, org: &str, n: u32, phone: &str) -> MemberFields {
    let birth = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Days::new(u64::from(n));
    let gender = if n & 1 == 1 { Gender::Female } else { Gender::Male };
    let id = id_number::compose("320724", birth, (n % 500) as u16, gender);
    let birth = birth.format("%Y-%m-%d").to_string();
    let input = MemberInput {
        name,
        gender: gender.code(),
        ethnicity: "汉族",
        birth_date: &birth,
        id_number: id.as_str(),
        phone,
        joined_on: "2012-07-01",
        category: "full",
        org_code: org,
        ..Default::default()
    };
    validate(&input, &Ctx).unwrap_or_else(|e| panic!("test member {name} should be valid: {e:?}"))
}

fn person(name: &str, org: &str, n: u32) -> MemberFields {
    person_with(name, org, n, "")
}

fn departure() -> Departure {
    let input = DepartureInput {
        destination_division: "320506",
        reason: "business",
        left_on: "2024-02-01",
        ..Default::default()
    };
    validate_departure(&input, |_| true, NaiveDate::from_ymd_opt(2012, 7, 1).unwrap(), Utc::now().date_naive())
        .expect("valid departure")
}

fn org_fields(name: &str, level: OrgLevel) -> OrgFields {
    OrgFields {
        name: name.into(),
        level,
        kind: OrgKind::Building,
        division_code: "320724".into(),
        address: None,
        phone: None,
    }
}

fn at(username: &str, role: Role, org: &Org) -> Principal {
    Principal {
        user_id: 100,
        username: username.into(),
        role,
        org_path: Some(org.path.clone()),
        member_id: None,
        service_point_id: None,
    }
}

fn as_member(username: &str, member: &Member) -> Principal {
    Principal {
        user_id: 200,
        username: username.into(),
        role: Role::Member,
        org_path: None,
        member_id: Some(member.id),
        service_point_id: None,
    }
}

fn guard(store: &Store, who: Principal) -> Guard<'_> {
    store.guard(who, Client { address: Some("192.0.2.7".into()) })
}

/// CTY > {TA > {TA-B1, TA-B2}, TB > {TB-B1}}, one member in each branch and one in TA.
struct World {
    ta: Org,
    ta_b1: Org,
    ta_b2: Org,
    tb_b1: Org,
    /// Members of TA-B1, TA-B2, TA and TB-B1.
    in_b1: Member,
    in_b2: Member,
    in_ta: Member,
    outside: Member,
}

async fn world(store: &Store) -> World {
    let g = guard(store, admin());
    g.org_create(None, "CTY", org_fields("县委", OrgLevel::Committee)).await.unwrap();
    let ta = g.org_create(Some("CTY"), "TA", org_fields("甲镇党委", OrgLevel::Committee)).await.unwrap();
    g.org_create(Some("CTY"), "TB", org_fields("乙镇党委", OrgLevel::Committee)).await.unwrap();
    let ta_b1 = g.org_create(Some("TA"), "TA-B1", org_fields("甲一", OrgLevel::Branch)).await.unwrap();
    let ta_b2 = g.org_create(Some("TA"), "TA-B2", org_fields("甲二", OrgLevel::Branch)).await.unwrap();
    let tb_b1 = g.org_create(Some("TB"), "TB-B1", org_fields("乙一", OrgLevel::Branch)).await.unwrap();
    let in_b1 = g.member_create(person_with("张一", "TA-B1", 1, "13800000001")).await.unwrap();
    let in_b2 = g.member_create(person_with("张二", "TA-B2", 2, "13800000002")).await.unwrap();
    let in_ta = g.member_create(person_with("张三", "TA", 3, "13800000003")).await.unwrap();
    let outside = g.member_create(person_with("张四", "TB-B1", 4, "13800000004")).await.unwrap();
    World { ta, ta_b1, ta_b2, tb_b1, in_b1, in_b2, in_ta, outside }
}

async fn audit_log(store: &Store) -> Vec<AuditEntry> {
    guard(store, admin()).audit_recent(500).await.expect("admin reads the audit log")
}

/// The refusals recorded for `username`, oldest first, as (action, target type, target id).
async fn denials(store: &Store, username: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = audit_log(store)
        .await
        .into_iter()
        .filter(|a| a.outcome == "denied" && a.username.as_deref() == Some(username))
        .map(|a| (a.action, a.target_type.unwrap_or_default(), a.target_id.unwrap_or_default()))
        .collect();
    v.reverse();
    v
}

fn d(action: &str, ttype: &str, tid: impl ToString) -> (String, String, String) {
    (action.to_string(), ttype.to_string(), tid.to_string())
}

async fn search_ids(g: &Guard<'_>, q: MemberQuery) -> Vec<i64> {
    let page = g.members(&MemberQuery { limit: Some(200), ..q }).await.expect("search");
    assert!(page.next_cursor.is_none());
    page.items.iter().map(|m| m.id).collect()
}

fn text(q: &str) -> MemberQuery {
    MemberQuery { q: Some(q.into()), ..Default::default() }
}

// ---------------------------------------------------------------------------
// Organization administrators
// ---------------------------------------------------------------------------

#[tokio::test]
async fn org_admin_reads_only_their_subtree() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("ta_admin", Role::OrgAdmin, &w.ta));

        // Members inside: visible, with the full number.
        assert_eq!(g.member(w.in_b1.id).await.unwrap().id_number, w.in_b1.id_number);
        assert!(g.member_flows(w.in_ta.id).await.unwrap().is_empty());
        let mut all = search_ids(&g, MemberQuery::default()).await;
        all.sort();
        assert_eq!(all, vec![w.in_b1.id, w.in_b2.id, w.in_ta.id]);

        // Members outside: as if they did not exist, and each attempt is recorded.
        assert_not_found(g.member(w.outside.id).await);
        assert_not_found(g.member_flows(w.outside.id).await);
        assert_not_found(g.member_audit(w.outside.id).await);
        assert!(search_ids(&g, text(&w.outside.id_number)).await.is_empty());
        assert!(search_ids(&g, text("13800000004")).await.is_empty());
        assert!(search_ids(&g, text("张四")).await.is_empty());
        assert!(search_ids(&g, MemberQuery { org: Some("TB".into()), ..Default::default() }).await.is_empty());
        assert_eq!(search_ids(&g, text("张")).await.len(), 3);
        assert_eq!(
            denials(&store, "ta_admin").await,
            [
                d("member.view_id", "member", w.outside.id),
                d("member.read", "member", w.outside.id),
                d("member.write", "member", w.outside.id),
            ]
        );
        let log = audit_log(&store).await;
        let denied = log.iter().find(|a| a.outcome == "denied").unwrap();
        assert_eq!((denied.user_id, denied.client.as_deref()), (Some(100), Some("192.0.2.7")));
        // The refused view did not also count as a view.
        assert!(!log.iter().any(|a| a.action == "member.view_id"
            && a.outcome == "ok"
            && a.target_id.as_deref() == Some(w.outside.id.to_string().as_str())));

        // Organizations: their own tree, with plain refusals outside it.
        let top = g.org_children(None).await.unwrap();
        assert_eq!(top.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA"]);
        assert_eq!(g.org_children(Some("TA")).await.unwrap().len(), 2);
        let chain = g.org_ancestors("TA-B1").await.unwrap();
        assert_eq!(chain.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA", "TA-B1"]);
        let mut found: Vec<_> = g.org_search("", 50).await.unwrap().into_iter().map(|o| o.code).collect();
        found.sort();
        assert_eq!(found, ["TA", "TA-B1", "TA-B2"]);
        assert_forbidden(g.org("TB").await);
        assert_forbidden(g.org("CTY").await);
        assert_forbidden(g.org_children(Some("TB")).await);
        assert_forbidden(g.overview(Some("TB")).await);
        assert_eq!(
            g.overview(None).await.unwrap(),
            Overview { organizations: 3, members: 3, mobile_out: 0, mobile_in: 0 }
        );
        assert_eq!(g.overview(Some("TA-B2")).await.unwrap().members, 1);
        assert_eq!(
            denials(&store, "ta_admin").await[3..],
            [
                d("org.read", "org", "TB"),
                d("org.read", "org", "CTY"),
                d("org.read", "org", "TB"),
                d("org.read", "org", "TB"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn org_admin_writes_only_their_subtree() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("ta_admin", Role::OrgAdmin, &w.ta));

        // Inside: allowed.
        let mut f = person_with("张一", "TA-B1", 1, "13900000001");
        let updated = g.member_update(w.in_b1.id, f.clone(), w.in_b1.version).await.unwrap();
        assert_eq!(updated.phone.as_deref(), Some("13900000001"));
        g.record_departure(w.in_b2.id, departure()).await.unwrap();
        let created = g.member_create(person("张五", "TA-B2", 5)).await.unwrap();
        let child = g.org_create(Some("TA-B1"), "TA-B1-G1", org_fields("甲一第一小组", OrgLevel::Group)).await.unwrap();
        assert_eq!(child.parent_code.as_deref(), Some("TA-B1"));

        // Outside: not found, nothing changes.
        let outside = person_with("张四", "TB-B1", 4, "13700000000");
        assert_not_found(bounded("member_update", g.member_update(w.outside.id, outside, w.outside.version)).await);
        assert_not_found(bounded("record_departure", g.record_departure(w.outside.id, departure())).await);
        // Organizations are not secret: an outside one is a wrong value, refused beside its field.
        assert_invalid(
            bounded("member_create", g.member_create(person("张六", "TB-B1", 6))).await,
            "org_code",
            "org.out_of_scope",
        );
        // Nor may a member of their own be handed to an organization outside.
        f.org_code = "TB-B1".into();
        assert_invalid(
            bounded("member_update (move out)", g.member_update(w.in_b1.id, f, updated.version)).await,
            "org_code",
            "org.out_of_scope",
        );
        assert_forbidden(
            bounded("org_create", g.org_create(Some("TB"), "TB-X", org_fields("乙新", OrgLevel::Branch))).await,
        );
        assert_forbidden(
            bounded(
                "org_update",
                g.org_update("TB-B1", org_fields("改名", OrgLevel::Branch), OrgStatus::Active, w.tb_b1.version),
            )
            .await,
        );

        let admin = guard(&store, admin());
        let o = admin.member(w.outside.id).await.unwrap();
        assert_eq!(
            (o.phone.as_deref(), o.mobility, o.version),
            (Some("13800000004"), Mobility::Resident, w.outside.version)
        );
        let mine = admin.member(w.in_b1.id).await.unwrap();
        assert_eq!((mine.org_code.as_str(), mine.version), ("TA-B1", updated.version));
        assert_eq!(admin.org("TB-B1").await.unwrap().name, "乙一");
        assert_not_found(admin.org("TB-X").await);
        assert_eq!(
            admin.overview(Some("TB")).await.unwrap(),
            Overview { organizations: 2, members: 1, mobile_out: 0, mobile_in: 0 }
        );
        assert_eq!(
            admin.overview(Some("TA")).await.unwrap(),
            Overview { organizations: 4, members: 4, mobile_out: 1, mobile_in: 0 }
        );
        assert_eq!(created.org_code, "TA-B2");

        assert_eq!(
            denials(&store, "ta_admin").await,
            [
                d("member.write", "member", w.outside.id),
                d("member.write", "member", w.outside.id),
                d("member.write", "org", "TB-B1"),
                d("member.write", "org", "TB-B1"),
                d("org.write", "org", "TB"),
                d("org.write", "org", "TB-B1"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn org_admin_cannot_move_their_root_or_carry_an_org_outside() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("ta_admin", Role::OrgAdmin, &w.ta));

        assert_forbidden(bounded("move own root", g.org_move("TA", "TB", w.ta.version)).await);
        assert_forbidden(bounded("move out of subtree", g.org_move("TA-B1", "TB", w.ta_b1.version)).await);
        assert_forbidden(bounded("move under an outside branch", g.org_move("TA-B1", "TB-B1", w.ta_b1.version)).await);
        assert_forbidden(bounded("move an outside org in", g.org_move("TB-B1", "TA", w.tb_b1.version)).await);

        let admin = guard(&store, admin());
        let ta = admin.org("TA").await.unwrap();
        assert_eq!(
            (ta.parent_code.as_deref(), ta.path.as_str(), ta.version),
            (Some("CTY"), w.ta.path.as_str(), w.ta.version)
        );
        let b1 = admin.org("TA-B1").await.unwrap();
        assert_eq!((b1.parent_code.as_deref(), b1.path.as_str()), (Some("TA"), w.ta_b1.path.as_str()));
        assert_eq!(admin.org("TB-B1").await.unwrap().path, w.tb_b1.path);
        assert_eq!(admin.overview(Some("TB")).await.unwrap().organizations, 2);

        assert_eq!(
            denials(&store, "ta_admin").await,
            [
                d("org.move", "org", "TA"),
                d("org.write", "org", "TB"),
                d("org.write", "org", "TB-B1"),
                d("org.move", "org", "TB-B1"),
            ]
        );

        // Within their subtree the move is theirs to make.
        let moved = g.org_move("TA-B1", "TA-B2", w.ta_b1.version).await.unwrap();
        assert_eq!(moved.parent_code.as_deref(), Some("TA-B2"));
        assert!(moved.path.starts_with(&w.ta_b2.path));
        let in_b2 = MemberQuery { org: Some("TA-B2".into()), ..Default::default() };
        let mut ids = search_ids(&g, in_b2).await;
        ids.sort();
        assert_eq!(ids, vec![w.in_b1.id, w.in_b2.id]);
        assert_eq!(g.overview(Some("TA-B2")).await.unwrap().members, 2);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Branch secretaries
// ---------------------------------------------------------------------------

#[tokio::test]
async fn secretary_cannot_create_or_change_orgs() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("sec_b1", Role::Secretary, &w.ta_b1));

        assert_forbidden(
            bounded(
                "org_create under own branch",
                g.org_create(Some("TA-B1"), "TA-B1-G1", org_fields("小组", OrgLevel::Group)),
            )
            .await,
        );
        assert_forbidden(
            bounded("org_create root", g.org_create(None, "ROOT2", org_fields("另一个", OrgLevel::Committee))).await,
        );
        assert_forbidden(
            bounded(
                "org_update",
                g.org_update("TA-B1", org_fields("改名", OrgLevel::Branch), OrgStatus::Active, w.ta_b1.version),
            )
            .await,
        );
        assert_forbidden(bounded("org_move", g.org_move("TA-B1", "TA-B2", w.ta_b1.version)).await);

        let admin = guard(&store, admin());
        assert_not_found(admin.org("TA-B1-G1").await);
        assert_not_found(admin.org("ROOT2").await);
        let b1 = admin.org("TA-B1").await.unwrap();
        assert_eq!((b1.name.as_str(), b1.version, b1.parent_code.as_deref()), ("甲一", w.ta_b1.version, Some("TA")));
        assert_eq!(
            denials(&store, "sec_b1").await,
            [
                d("org.write", "org", "TA-B1"),
                d("org.write", "org", "ROOT2"),
                d("org.write", "org", "TA-B1"),
                d("org.move", "org", "TA-B1"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn secretary_reads_the_members_of_their_branch_only() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("sec_b1", Role::Secretary, &w.ta_b1));
        assert_eq!(search_ids(&g, MemberQuery::default()).await, vec![w.in_b1.id]);
        assert_eq!(g.member(w.in_b1.id).await.unwrap().id_number, w.in_b1.id_number);
        assert_not_found(g.member(w.in_b2.id).await);
        assert_not_found(g.member(w.in_ta.id).await);
        assert!(search_ids(&g, text(&w.in_ta.id_number)).await.is_empty());
        assert!(search_ids(&g, MemberQuery { org: Some("TA".into()), ..Default::default() }).await == vec![w.in_b1.id]);
        let top = g.org_children(None).await.unwrap();
        assert_eq!(top.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA-B1"]);
        assert_forbidden(g.org("TA").await);
        assert_eq!(g.overview(None).await.unwrap().members, 1);
        assert_eq!(
            denials(&store, "sec_b1").await,
            [
                d("member.view_id", "member", w.in_b2.id),
                d("member.view_id", "member", w.in_ta.id),
                d("org.read", "org", "TA")
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn secretary_writes_the_members_of_their_branch() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("sec_b1", Role::Secretary, &w.ta_b1));
        let m = g.member_create(person("李一", "TA-B1", 11)).await.unwrap();
        let f = g.record_departure(m.id, departure()).await.unwrap();
        assert_eq!(f.outflow_org_code, "TA-B1");
        let u =
            g.member_update(w.in_b1.id, person_with("张一", "TA-B1", 1, "13911111111"), w.in_b1.version).await.unwrap();
        assert_eq!(u.phone.as_deref(), Some("13911111111"));
        assert_eq!(g.member_audit(m.id).await.unwrap().len(), 2);
        assert_eq!(
            g.overview(None).await.unwrap(),
            Overview { organizations: 1, members: 2, mobile_out: 1, mobile_in: 0 }
        );
        assert!(denials(&store, "sec_b1").await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Members and service staff
// ---------------------------------------------------------------------------

#[tokio::test]
async fn member_sees_only_their_own_record() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        guard(&store, admin()).record_departure(w.in_b1.id, departure()).await.unwrap();
        let g = guard(&store, as_member("zhangyi", &w.in_b1));

        assert_eq!(search_ids(&g, MemberQuery::default()).await, vec![w.in_b1.id]);
        assert_eq!(search_ids(&g, text("张")).await, vec![w.in_b1.id]);
        assert!(search_ids(&g, text(&w.in_b2.id_number)).await.is_empty());
        assert!(search_ids(&g, text("13800000004")).await.is_empty());
        assert_eq!(
            search_ids(&g, MemberQuery { org: Some("CTY".into()), ..Default::default() }).await,
            vec![w.in_b1.id]
        );

        let me = g.member(w.in_b1.id).await.unwrap();
        assert_eq!((me.id_number.as_str(), me.mobility), (w.in_b1.id_number.as_str(), Mobility::NotCheckedIn));
        assert_eq!(g.member_flows(w.in_b1.id).await.unwrap().len(), 1);
        assert_not_found(g.member(w.in_b2.id).await);
        assert_not_found(g.member_flows(w.outside.id).await);
        // The audit trail is for those who keep the record.
        assert_not_found(g.member_audit(w.in_b1.id).await);
        assert_forbidden(g.audit_recent(10).await);

        assert_eq!(g.overview(None).await.unwrap(), Overview::default());
        assert!(g.org_children(None).await.unwrap().is_empty());
        assert!(g.org_search("", 50).await.unwrap().is_empty());
        assert_forbidden(g.org("TA-B1").await);

        assert_eq!(
            denials(&store, "zhangyi").await,
            [
                d("member.view_id", "member", w.in_b2.id),
                d("member.read", "member", w.outside.id),
                d("member.write", "member", w.in_b1.id),
                d("audit.read", "audit", ""),
                d("org.read", "org", "TA-B1"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn member_cannot_change_their_record() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, as_member("zhangyi", &w.in_b1));
        let f = person_with("张一", "TA-B1", 1, "13999999999");
        assert_not_found(bounded("member_update", g.member_update(w.in_b1.id, f, w.in_b1.version)).await);
        assert_not_found(bounded("record_departure", g.record_departure(w.in_b1.id, departure())).await);
        assert_forbidden(bounded("member_create", g.member_create(person("新", "TA-B1", 12))).await);
        let me = guard(&store, admin()).member(w.in_b1.id).await.unwrap();
        assert_eq!(
            (me.phone.as_deref(), me.mobility, me.version),
            (Some("13800000001"), Mobility::Resident, w.in_b1.version)
        );
        assert_eq!(denials(&store, "zhangyi").await.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn service_staff_browse_organizations_but_get_no_members() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, at("desk", Role::ServiceStaff, &w.ta));

        assert!(search_ids(&g, MemberQuery::default()).await.is_empty());
        assert!(search_ids(&g, text("张")).await.is_empty());
        assert!(search_ids(&g, text(&w.in_b1.id_number)).await.is_empty());
        assert!(search_ids(&g, MemberQuery { org: Some("TA".into()), ..Default::default() }).await.is_empty());
        assert_not_found(g.member(w.in_b1.id).await);
        assert_not_found(g.member_flows(w.in_ta.id).await);

        let top = g.org_children(None).await.unwrap();
        assert_eq!(top.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["TA"]);
        assert_eq!(g.org_children(Some("TA")).await.unwrap().len(), 2);
        assert_eq!(g.org("TA-B2").await.unwrap().id, w.ta_b2.id);
        assert_forbidden(g.org("TB").await);
        // Counts, not people: the overview of their subtree is open to them.
        assert_eq!(
            g.overview(None).await.unwrap(),
            Overview { organizations: 3, members: 3, mobile_out: 0, mobile_in: 0 }
        );

        assert_eq!(
            denials(&store, "desk").await,
            [
                d("member.view_id", "member", w.in_b1.id),
                d("member.read", "member", w.in_ta.id),
                d("org.read", "org", "TB")
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn audit_log_is_for_system_administrators_only() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        for (name, who) in [
            ("oa", at("oa", Role::OrgAdmin, &w.ta)),
            ("sec", at("sec", Role::Secretary, &w.ta_b1)),
            ("desk", at("desk", Role::ServiceStaff, &w.ta)),
            ("mem", as_member("mem", &w.in_b1)),
        ] {
            assert_forbidden(guard(&store, who).audit_recent(10).await);
            assert_eq!(denials(&store, name).await, [d("audit.read", "audit", "")]);
        }
        assert!(!guard(&store, admin()).audit_recent(1).await.unwrap().is_empty());
    })
    .await;
}
