//! Activity certificates through the guarded API, on SQLite and PostgreSQL: issued by the
//! committee above the member's branch, checked at check-in, reported lost and re-issued,
//! asked for in reverse by the inflow side, verified publicly, void once the record moves.

use chrono::{Datelike, Days, NaiveDate};
use kite_domain::certificate::{Issue, Status};
use kite_domain::checkin::{self, CheckinInput, LinkKind};
use kite_domain::flow::{validate_departure, DepartureInput};
use kite_domain::{FlowReason, OrgLevel, Principal, Role};
use kite_store::{
    CertificateQueue, CertificateStepInput, CertificateView, CheckinQuery, Client, Guard, Member, NewUser, Org, Store,
    StoreError, TransferRequest, TransferStepInput,
};

mod common;
use common::*;

fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive()
}

fn issue() -> Issue {
    Issue {
        destination_division: "320505".into(),
        destination: Some("苏州高新区狮山街道".into()),
        reason: FlowReason::Work,
        valid_from: today(),
        valid_until: today().checked_add_days(Days::new(364)).unwrap(),
    }
}

fn step(step: &str, v: &CertificateView) -> CertificateStepInput {
    CertificateStepInput { step: step.into(), version: v.certificate.version, ..Default::default() }
}

/// TA (甲镇党委) > TA-B1 with 王芳 and 李明, both away; TB (乙镇党委) > TB-B1, where 王芳
/// checked in and was confirmed.
struct World {
    ta: Org,
    ta_b1: Org,
    tb_b1: Org,
    wang: Member,
    li: Member,
    checkin_id: i64,
}

async fn world(store: &Store) -> World {
    // The confirming account must exist: check-ins name who decided them.
    let user = NewUser {
        username: "admin".into(),
        password_hash: "x".into(),
        role: Role::Admin,
        org_code: None,
        member_id: None,
        display_name: None,
        service_point_code: None,
    };
    let u = store.accounts().create_user(&user, "test").await.unwrap();
    let g = guard(store, Principal { user_id: u.id, ..admin() });
    let ta = g.org_create(None, "TA", fields("甲镇党委", OrgLevel::Committee)).await.unwrap();
    g.org_create(None, "TB", fields("乙镇党委", OrgLevel::Committee)).await.unwrap();
    let ta_b1 = g.org_create(Some("TA"), "TA-B1", fields("甲一支部", OrgLevel::Branch)).await.unwrap();
    let tb_b1 = g.org_create(Some("TB"), "TB-B1", fields("乙一支部", OrgLevel::Branch)).await.unwrap();
    let wang = g.member_create(person("王芳", "TA-B1", 1)).await.unwrap();
    let li = g.member_create(person("李明", "TA-B1", 2)).await.unwrap();
    for m in [&wang, &li] {
        depart(&g, m).await;
    }
    let checkin_id = check_in(store, &g, &wang, 1).await;
    World { ta, ta_b1, tb_b1, wang, li, checkin_id }
}

async fn depart(g: &Guard<'_>, m: &Member) {
    let input =
        DepartureInput { destination_division: "320505", reason: "work", left_on: "2024-03-01", ..Default::default() };
    let d = validate_departure(&input, |_| true, NaiveDate::from_ymd_opt(2012, 7, 1).unwrap(), today()).unwrap();
    g.record_departure(m.id, d).await.unwrap();
}

/// A self-service check-in of `m` at TB-B1, confirmed by `g`; returns the check-in's id.
async fn check_in(store: &Store, g: &Guard<'_>, m: &Member, n: u32) -> i64 {
    let phone = format!("138000000{n:02}");
    let input = CheckinInput {
        name: &m.name,
        id_number: &m.id_number,
        phone: &phone,
        home_org_code: "TA-B1",
        division_code: "320505",
        ..Default::default()
    };
    let c = checkin::validate(&input, |_| true).unwrap();
    let public = store.public(Client::default());
    let target = public.checkin_target(LinkKind::Org, "TB-B1").await.unwrap();
    let hash = format!("code-hash-{n}");
    public.send_code(&phone, &hash, "code").await.unwrap();
    public.checkin(&target, &c, &format!("cert-world-{n}"), &hash).await.unwrap();
    let all = g.checkins(&CheckinQuery::default()).await.unwrap().items;
    let rec = all.into_iter().find(|r| r.member_id == Some(m.id)).unwrap();
    g.checkin_confirm(rec.id, rec.version, None).await.unwrap();
    rec.id
}

#[tokio::test]
async fn the_committee_issues_the_inflow_side_checks_and_a_lost_one_is_replaced() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let year = today().year();
        let committee = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &w.ta));
        let branch = guard(&store, at(12, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let inflow = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));

        // The branch sees the member but does not issue: the committee above does.
        assert_conflict(branch.certificate_draft(w.wang.id).await, "certificate.not_issuer");
        assert_conflict(branch.certificate_create(w.wang.id, &issue()).await, "certificate.not_issuer");
        let draft = committee.certificate_draft(w.wang.id).await.unwrap();
        assert_eq!((draft.mode.as_str(), draft.issuer_org_code.as_str()), ("issue", "TA"));
        assert_eq!((draft.destination_division.as_str(), draft.reason.as_str()), ("320505", "work"));

        let v = committee.certificate_create(w.wang.id, &issue()).await.unwrap();
        let c = &v.certificate;
        let first = format!("TA-{year}-00001");
        assert_eq!((c.status, c.number.as_deref(), c.valid_today), (Status::Issued, Some(first.as_str()), true));
        assert_eq!(v.may, vec!["return", "revoke", "report_lost"]);
        assert_conflict(committee.certificate_create(w.wang.id, &issue()).await, "certificate.already_open");
        let li_cert = committee.certificate_create(w.li.id, &issue()).await.unwrap();

        // Anyone may verify: validity, issuer, period and a masked name, nothing else.
        let public = store.public(Client::default());
        let p = public.verify_certificate(&first.to_lowercase()).await.unwrap().expect("found");
        assert_eq!((p.valid, p.masked_name.as_str(), p.issuer_org_name.as_str()), (true, "王**", "甲镇党委"));
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("member_id").is_none() && json.get("id_number_masked").is_none());
        assert!(public.verify_certificate("NO-SUCH-1").await.unwrap().is_none());
        assert!(public.verify_certificate("x'; --").await.unwrap().is_none());

        // The inflow side checks it at check-in, by number or by the QR code's link.
        assert_not_found(inflow.certificate(v.certificate.id).await);
        let other = li_cert.certificate.number.clone().unwrap();
        assert_conflict(inflow.checkin_certificate(w.checkin_id, &other).await, "certificate.other_person");
        assert_invalid(
            inflow.checkin_certificate(w.checkin_id, "TA-1999-00009").await,
            "number",
            "certificate.unknown",
        );
        assert_invalid(inflow.checkin_certificate(w.checkin_id, "??").await, "number", "certificate.number");
        // The home side sees the check-in but does not check certificates there.
        assert_forbidden(branch.checkin_certificate(w.checkin_id, &first).await);
        let link = format!("https://kite.example/verify/{}", first.to_lowercase());
        let rec = inflow.checkin_certificate(w.checkin_id, &link).await.unwrap();
        assert_eq!(rec.certificate_number.as_deref(), Some(first.as_str()));
        assert_eq!((rec.certificate_in_system, rec.certificate_checked_by.as_deref()), (Some(true), Some("tb_b1_sec")));
        // Both sides see it on the member's flow: the certificate in force and the check.
        let flow_id = guard(&store, admin()).member_flows(w.wang.id).await.unwrap()[0].id;
        for side in [&inflow, &branch] {
            let fc = side.flow(flow_id).await.unwrap().certificate;
            assert_eq!((fc.number.as_deref(), fc.valid_today), (Some(first.as_str()), true));
            assert_eq!((fc.checked_number.as_deref(), fc.checked_in_system), (Some(first.as_str()), Some(true)));
        }

        // Reported lost: void, and a new number with the same contents in the same step.
        assert_not_found(inflow.certificate_step(v.certificate.id, &step("report_lost", &v)).await);
        let replaced = committee.certificate_step(v.certificate.id, &step("report_lost", &v)).await.unwrap();
        let second = format!("TA-{year}-00003");
        assert_eq!(replaced.certificate.number.as_deref(), Some(second.as_str()));
        assert_eq!(replaced.certificate.replaces.as_deref(), Some(first.as_str()));
        assert_eq!(replaced.certificate.destination.as_deref(), Some("苏州高新区狮山街道"));
        let old = committee.certificate(v.certificate.id).await.unwrap();
        assert_eq!(
            (old.certificate.status, old.certificate.replaced_by.as_deref()),
            (Status::Lost, Some(second.as_str()))
        );
        assert!(old.may.is_empty());
        let p = public.verify_certificate(&first).await.unwrap().unwrap();
        assert_eq!((p.valid, p.status), (false, Status::Lost));
        assert_conflict(inflow.checkin_certificate(w.checkin_id, &first).await, "certificate.not_valid");

        // Revoking needs a reason; two people handing it back at once take one step.
        assert_invalid(
            committee.certificate_step(replaced.certificate.id, &step("revoke", &replaced)).await,
            "reason",
            "required",
        );
        let back = step("return", &replaced);
        let (a, b) = tokio::join!(
            committee.certificate_step(replaced.certificate.id, &back),
            committee.certificate_step(replaced.certificate.id, &back)
        );
        let returned = match (a, b) {
            (Ok(x), Err(e)) | (Err(e), Ok(x)) => {
                assert!(matches!(e, StoreError::Conflict("stale_version" | "certificate.wrong_status")), "{e:?}");
                x
            }
            other => panic!("exactly one return should pass: {other:?}"),
        };
        assert_eq!(returned.certificate.status, Status::Returned);
        let steps: Vec<&str> = returned.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(steps, vec!["issue", "return"]);
        assert_conflict(
            committee.certificate_step(returned.certificate.id, &step("revoke", &returned)).await,
            "certificate.wrong_status",
        );

        // The committee's list; the member's page; an outsider sees nothing.
        let issued = committee.certificates(CertificateQueue::Issued).await.unwrap();
        assert_eq!(issued.len(), 3);
        assert_eq!(branch.member_certificates(w.wang.id).await.unwrap().len(), 2);
        assert!(inflow.certificates(CertificateQueue::All).await.unwrap().is_empty());
        let staff = guard(&store, at(31, "staff", Role::ServiceStaff, &w.ta));
        assert_forbidden(staff.certificates(CertificateQueue::All).await);
    })
    .await;
}

#[tokio::test]
async fn the_inflow_side_asks_in_reverse_and_hears_the_answer() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let committee = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &w.ta));
        let inflow = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));

        // The inflow side reaches only members checked in to it.
        assert_not_found(inflow.certificate_draft(w.li.id).await);
        let draft = inflow.certificate_draft(w.wang.id).await.unwrap();
        assert_eq!((draft.mode.as_str(), draft.issuer_org_name.as_str()), ("request", "甲镇党委"));
        let asked = inflow.certificate_create(w.wang.id, &issue()).await.unwrap();
        let c = &asked.certificate;
        assert_eq!(
            (c.status, c.number.as_deref(), c.requester_org_code.as_deref()),
            (Status::Requested, None, Some("TB-B1"))
        );
        assert!(asked.may.is_empty(), "the inflow side only asks");
        assert_conflict(inflow.certificate_create(w.wang.id, &issue()).await, "certificate.already_open");
        assert_eq!(committee.certificate_counts().await.unwrap().unwrap().to_decide, 1);
        let to_decide = committee.certificates(CertificateQueue::ToDecide).await.unwrap();
        assert_eq!(to_decide.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c.id]);

        let v = committee.certificate(c.id).await.unwrap();
        assert_eq!(v.may, vec!["issue", "refuse"]);
        assert_invalid(committee.certificate_step(c.id, &step("refuse", &v)).await, "reason", "required");
        let refuse =
            CertificateStepInput { reason: Some("该同志已返回，无需办理".into()), ..step("refuse", &v) };
        let refused = committee.certificate_step(c.id, &refuse).await.unwrap();
        assert_eq!(
            (refused.certificate.status, refused.certificate.note.as_deref()),
            (Status::Refused, Some("该同志已返回，无需办理"))
        );
        // The inflow side is told: an unseen answer until it opens it.
        assert_eq!(inflow.certificate_counts().await.unwrap().unwrap().answers_unseen, 1);
        assert!(inflow.certificate(c.id).await.unwrap().certificate.status == Status::Refused);
        assert_eq!(inflow.certificate_counts().await.unwrap().unwrap().answers_unseen, 0);

        // Asked again, and issued this time: the number is given at issue.
        let again = inflow.certificate_create(w.wang.id, &issue()).await.unwrap();
        let v = committee.certificate(again.certificate.id).await.unwrap();
        let issued = committee.certificate_step(again.certificate.id, &step("issue", &v)).await.unwrap();
        assert_eq!(issued.certificate.status, Status::Issued);
        assert!(issued.certificate.number.as_deref().is_some_and(|n| n.starts_with("TA-")));
        assert_eq!(issued.certificate.issued_on, Some(today()));
        assert_eq!(inflow.certificate_counts().await.unwrap().unwrap().answers_unseen, 1);
        assert_eq!(inflow.certificates(CertificateQueue::Asked).await.unwrap().len(), 2);
        let seen = inflow.certificate(again.certificate.id).await.unwrap();
        assert_eq!((seen.certificate.valid_today, seen.may.len()), (true, 0));
    })
    .await;
}

#[tokio::test]
async fn photos_members_not_away_and_the_void_at_transfer() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let committee = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &w.ta));
        let inflow = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let admin_g = guard(&store, admin());
        let home = admin_g.member_create(person("赵强", "TA-B1", 3)).await.unwrap();
        assert_conflict(committee.certificate_draft(home.id).await, "certificate.not_away");
        assert_conflict(committee.certificate_create(home.id, &issue()).await, "certificate.not_away");

        let v = committee.certificate_create(w.wang.id, &issue()).await.unwrap();
        let id = v.certificate.id;
        assert!(v.may_set_photo && !v.certificate.has_photo);
        assert_invalid(committee.certificate_set_photo(id, b"GIF89a...").await, "photo", "certificate.photo_type");
        let big = [&[0xFFu8, 0xD8, 0xFF][..], &vec![0u8; kite_store::MAX_CERTIFICATE_PHOTO_BYTES]].concat();
        assert_invalid(committee.certificate_set_photo(id, &big).await, "photo", "certificate.photo_too_large");
        let png = [&[0x89u8, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..], b"rest"].concat();
        let with = committee.certificate_set_photo(id, &png).await.unwrap();
        assert!(with.certificate.has_photo);
        assert_eq!(committee.certificate_photo(id).await.unwrap(), ("image/png".to_string(), png.clone()));
        assert_not_found(inflow.certificate_photo(id).await);

        // The record moves to TB-B1: the certificate no longer applies.
        let sending = guard(&store, at(12, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let r = TransferRequest { member_id: w.wang.id, to_org_code: Some("TB-B1".into()), ..Default::default() };
        let t = sending.transfer_request(&r).await.unwrap();
        let s = |name: &str, v: &kite_store::TransferView| TransferStepInput {
            step: name.into(),
            version: v.transfer.version,
            ..Default::default()
        };
        let t = sending.transfer_step(t.transfer.id, &s("approve", &t)).await.unwrap();
        inflow.transfer_step(t.transfer.id, &s("receive", &t)).await.unwrap();
        let after = committee.certificate(id).await.unwrap();
        assert_eq!((after.certificate.status, after.certificate.valid_today), (Status::Void, false));
        assert_eq!(after.steps.last().map(|s| s.step.as_str()), Some("void_on_transfer"));
        let number = after.certificate.number.unwrap();
        let p = store.public(Client::default()).verify_certificate(&number).await.unwrap().unwrap();
        assert_eq!((p.valid, p.status), (false, Status::Void));
        assert_conflict(committee.certificate_set_photo(id, &png).await, "certificate.wrong_status");
    })
    .await;
}

#[tokio::test]
async fn the_inflow_side_is_told_when_three_companions_could_form_a_branch() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let inflow = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let g = guard(&store, admin());
        let flow_of = |m: i64| {
            let g = &g;
            async move { g.member_flows(m).await.unwrap()[0].id }
        };
        let wang_flow = flow_of(w.wang.id).await;
        assert_eq!(
            (inflow.flow(wang_flow).await.unwrap().companions, inflow.flow(wang_flow).await.unwrap().branch_hint),
            (0, false)
        );
        let mut others = vec![w.li.clone()];
        for (name, n) in [("赵强", 5), ("孙丽", 6)] {
            let m = g.member_create(person(name, "TA-B1", n)).await.unwrap();
            depart(&g, &m).await;
            others.push(m);
        }
        for (i, m) in others.iter().enumerate().take(2) {
            check_in(&store, &g, m, 2 + i as u32).await;
        }
        assert_eq!(inflow.flow(wang_flow).await.unwrap().companions, 2);
        assert!(!inflow.flow(wang_flow).await.unwrap().branch_hint);
        check_in(&store, &g, &others[2], 4).await;
        let v = inflow.flow(wang_flow).await.unwrap();
        assert_eq!((v.companions, v.branch_hint), (3, true));
        // The outflow side is not the one to organize a branch there.
        let home = g.flow(wang_flow).await.unwrap();
        assert_eq!((home.side.as_str(), home.branch_hint), ("outflow", false));
    })
    .await;
}

#[tokio::test]
async fn a_lapsed_certificate_expires_and_makes_way_for_a_new_one() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let committee = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &w.ta));
        let inflow = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let wang = committee.certificate_create(w.wang.id, &issue()).await.unwrap();
        let li = committee.certificate_create(w.li.id, &issue()).await.unwrap();
        // An optional note is still checked: no control characters, no 10 kB.
        let nul = CertificateStepInput { reason: Some("a\0b".into()), ..step("return", &wang) };
        assert_invalid(committee.certificate_step(wang.certificate.id, &nul).await, "reason", "invalid");
        kite_store::testing::run_sql(
            &store,
            "UPDATE certificates SET valid_from = '2023-01-01', valid_until = '2024-01-01'",
        )
        .await;

        // The daily job expires what lapsed, with a history step; the public sees it invalid.
        store.run_daily(today()).await.unwrap();
        let old = committee.certificate(wang.certificate.id).await.unwrap();
        assert_eq!((old.certificate.status, old.may.len()), (Status::Expired, 0));
        assert_eq!(old.steps.last().map(|s| (s.step.as_str(), s.username.is_none())), Some(("expire", true)));
        let number = old.certificate.number.clone().unwrap();
        let p = store.public(Client::default()).verify_certificate(&number).await.unwrap().unwrap();
        assert_eq!((p.valid, p.status), (false, Status::Expired));
        // A new one may be issued (or asked for) now.
        committee.certificate_create(w.wang.id, &issue()).await.expect("a new certificate after the old one expired");
        let li = committee.certificate(li.certificate.id).await.unwrap();
        assert_eq!(li.certificate.status, Status::Expired, "every lapsed certificate, not only the one asked about");
        // The printed request is only for a home side outside the system.
        assert_conflict(inflow.certificate_request_letter(w.checkin_id).await, "certificate.request_letter_not_needed");
    })
    .await;
}

#[tokio::test]
async fn a_dissolved_committee_issues_nothing_the_one_above_does() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let g = guard(&store, admin());
        g.org_create(None, "CTY", fields("县委", OrgLevel::Committee)).await.unwrap();
        let top = g.org("CTY").await.unwrap();
        let committee = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &w.ta));
        committee.certificate_create(w.wang.id, &issue()).await.unwrap();
        g.org_move("TA", "CTY", w.ta.version).await.unwrap();
        // Moving the committee carries its certificates' paths along.
        let moved_ta = g.org("TA").await.unwrap();
        let after_move = guard(&store, at(11, "ta_admin", Role::OrgAdmin, &moved_ta));
        assert_eq!(after_move.certificates(CertificateQueue::Issued).await.unwrap().len(), 1);
        let county = guard(&store, at(12, "cty_admin", Role::OrgAdmin, &top));
        assert_eq!(county.certificates(CertificateQueue::Issued).await.unwrap().len(), 1);
        kite_store::testing::run_sql(&store, "UPDATE organizations SET status = 'dissolved' WHERE code = 'TA'").await;
        let draft = g.certificate_draft(w.wang.id).await.unwrap();
        assert_eq!(draft.issuer_org_code, top.code);
    })
    .await;
}
