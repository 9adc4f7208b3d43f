//! Transfers of the formal record through the guarded API, on SQLite and PostgreSQL:
//! the path from request to done across two organizations' accounts, the member's
//! record moving only at "received", refusals by side, and two approvals at once.

use chrono::{Days, NaiveDate};
use kite_domain::transfer::Status;
use kite_domain::{OrgLevel, Principal, Role};
use kite_store::{
    Member, MemberQuery, Org, Store, StoreError, TransferQueue, TransferRequest, TransferStepInput, TransferView,
};

mod common;
use common::*;

/// CTY > {TA > TA-B1, TB > {TB-B1, TB-B9 (dissolved)}}; one member in TA-B1.
struct World {
    ta: Org,
    ta_b1: Org,
    tb: Org,
    tb_b1: Org,
    member: Member,
}

async fn world(store: &Store) -> World {
    let g = guard(store, admin());
    g.org_create(None, "CTY", fields("县委", OrgLevel::Committee)).await.unwrap();
    let ta = g.org_create(Some("CTY"), "TA", fields("甲镇党委", OrgLevel::Committee)).await.unwrap();
    let tb = g.org_create(Some("CTY"), "TB", fields("乙镇党委", OrgLevel::Committee)).await.unwrap();
    let ta_b1 = g.org_create(Some("TA"), "TA-B1", fields("甲一支部", OrgLevel::Branch)).await.unwrap();
    let tb_b1 = g.org_create(Some("TB"), "TB-B1", fields("乙一支部", OrgLevel::Branch)).await.unwrap();
    g.org_create(Some("TB"), "TB-B9", fields("乙九支部", OrgLevel::Branch)).await.unwrap();
    kite_store::testing::run_sql(store, "UPDATE organizations SET status = 'dissolved' WHERE code = 'TB-B9'").await;
    let member = g.member_create(person("王芳", "TA-B1", 1)).await.unwrap();
    World { ta, ta_b1, tb, tb_b1, member }
}

fn request(member: &Member, to: &str) -> TransferRequest {
    TransferRequest {
        member_id: member.id,
        to_org_code: Some(to.into()),
        reason: Some("在乙镇定居".into()),
        ..Default::default()
    }
}

fn step(step: &str, v: &TransferView) -> TransferStepInput {
    TransferStepInput { step: step.into(), version: v.transfer.version, ..Default::default() }
}

#[tokio::test]
async fn a_transfer_runs_from_request_to_done_across_two_organizations() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let sending = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let receiving = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));

        // The receiving side cannot ask for a member not checked in to it: not found.
        assert_not_found(receiving.transfer_request(&request(&w.member, "TB-B1")).await);
        // A dissolved organization cannot receive; a destination is required.
        assert_invalid(sending.transfer_request(&request(&w.member, "TB-B9")).await, "to_org_code", "org.dissolved");
        let nowhere = TransferRequest { member_id: w.member.id, ..Default::default() };
        assert_invalid(sending.transfer_request(&nowhere).await, "to_org_code", "required");

        let v = sending.transfer_request(&request(&w.member, "TB-B1")).await.unwrap();
        assert_eq!((v.transfer.status, v.transfer.to_org_code.as_deref()), (Status::Requested, Some("TB-B1")));
        assert_eq!(v.may, vec!["approve", "withdraw"]);
        assert_conflict(sending.transfer_request(&request(&w.member, "TB-B1")).await, "transfer.in_progress");
        // The receiving side sees it, but approving is the sending side's step.
        assert_eq!(receiving.transfer(v.transfer.id).await.unwrap().may, Vec::<String>::new());
        assert_forbidden(receiving.transfer_step(v.transfer.id, &step("approve", &v)).await);
        let colleague = guard(&store, at(31, "ta_b1_sec2", Role::Secretary, &w.ta_b1));
        assert!(colleague.transfer(v.transfer.id).await.is_ok(), "the sending branch's other account sees it");
        // Outside both sides (another branch, service staff): not found.
        let ta_b2 =
            guard(&store, admin()).org_create(Some("TA"), "TA-B2", fields("甲二支部", OrgLevel::Branch)).await.unwrap();
        for who in [at(32, "b2_sec", Role::Secretary, &ta_b2), at(33, "staff", Role::ServiceStaff, &w.ta_b1)] {
            let outsider = guard(&store, who);
            assert_not_found(outsider.transfer(v.transfer.id).await);
            assert_not_found(outsider.transfer_step(v.transfer.id, &step("approve", &v)).await);
        }

        // Two approvals at once: one transition, the other is stale.
        let approve = step("approve", &v);
        let (a, b) = tokio::join!(
            sending.transfer_step(v.transfer.id, &approve),
            sending.transfer_step(v.transfer.id, &approve)
        );
        let approved = match (a, b) {
            (Ok(x), Err(e)) | (Err(e), Ok(x)) => {
                assert!(matches!(e, StoreError::Conflict("stale_version" | "transfer.wrong_status")), "{e:?}");
                x
            }
            other => panic!("exactly one approval should pass: {other:?}"),
        };
        let t = &approved.transfer;
        assert_eq!(t.status, Status::Approved);
        // Dates are recorded in China Standard Time.
        let today = (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive();
        let year = chrono::Datelike::year(&today);
        assert_eq!(t.letter_number.as_deref(), Some(format!("TA-B1-{year}-0001").as_str()));
        assert_eq!((t.letter_issued_on, t.letter_until), (Some(today), today.checked_add_days(Days::new(9))));
        // Still the sending side's member until received.
        assert_eq!(guard(&store, admin()).member(w.member.id).await.unwrap().org_code, "TA-B1");
        assert_eq!(receiving.transfers(TransferQueue::ToReceive).await.unwrap().len(), 1);
        assert!(sending.transfers(TransferQueue::ToReceive).await.unwrap().is_empty());
        let counts = receiving.transfer_counts().await.unwrap().expect("a secretary's queues");
        assert_eq!((counts.to_approve, counts.to_receive, counts.overdue), (0, 1, 0));

        let received = receiving.transfer_step(t.id, &step("receive", &approved)).await.unwrap();
        assert_eq!((received.transfer.status, received.transfer.received_on), (Status::Received, Some(today)));
        let moved = guard(&store, admin()).member(w.member.id).await.unwrap();
        assert_eq!(moved.org_code, "TB-B1");
        let done = sending.transfer_step(t.id, &step("record_receipt", &received)).await.unwrap();
        assert_eq!(done.transfer.status, Status::Done);
        let steps: Vec<(&str, &str)> =
            done.steps.iter().map(|s| (s.step.as_str(), s.username.as_deref().unwrap_or(""))).collect();
        assert_eq!(
            steps,
            vec![
                ("request", "ta_b1_sec"),
                ("approve", "ta_b1_sec"),
                ("receive", "tb_b1_sec"),
                ("record_receipt", "ta_b1_sec")
            ]
        );
        // Now a member of TB-B1: the old sending side no longer reaches it, the new one may start another.
        assert_not_found(sending.transfer_request(&request(&w.member, "TA-B1")).await);
        receiving.transfer_request(&request(&w.member, "TA-B1")).await.expect("a new transfer from TB-B1");
        let _ = (&w.ta, &w.tb);
    })
    .await;
}

#[tokio::test]
async fn two_levels_refusals_returns_and_expired_letters() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        kite_store::testing::run_sql(
            &store,
            "UPDATE organizations SET transfer_two_levels = TRUE WHERE code = 'TA-B1'",
        )
        .await;
        let branch = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let committee = guard(&store, at(12, "ta_admin", Role::OrgAdmin, &w.ta));
        let receiving = guard(&store, at(21, "tb_admin", Role::OrgAdmin, &w.tb));
        let member = guard(
            &store,
            Principal {
                user_id: 41,
                username: "wangfang".into(),
                role: Role::Member,
                org_path: None,
                member_id: Some(w.member.id),
                service_point_id: None,
            },
        );

        // The member asks; the branch sends it back for a correction, with a reason.
        let v = member.transfer_request(&request(&w.member, "TB-B1")).await.unwrap();
        assert_eq!(v.may, vec!["withdraw"]);
        let own = member.transfers(TransferQueue::ToApprove).await.unwrap();
        assert_eq!(own.iter().map(|t| t.id).collect::<Vec<_>>(), vec![v.transfer.id], "a member lists their own");
        assert_invalid(branch.transfer_step(v.transfer.id, &step("return", &v)).await, "reason", "required");
        let returned = branch
            .transfer_step(
                v.transfer.id,
                &TransferStepInput { reason: Some("请写明工作单位".into()), ..step("return", &v) },
            )
            .await
            .unwrap();
        assert_eq!(
            (returned.transfer.status, returned.transfer.note.as_deref()),
            (Status::Returned, Some("请写明工作单位"))
        );
        let again = member.transfer_step(v.transfer.id, &step("resubmit", &returned)).await.unwrap();

        // Two levels: the branch first, then the committee above, not the branch twice.
        let first = branch.transfer_step(v.transfer.id, &step("approve", &again)).await.unwrap();
        assert_eq!(first.transfer.status, Status::FirstApproved);
        assert_forbidden(branch.transfer_step(v.transfer.id, &step("approve", &first)).await);
        // A letter longer than three months is refused.
        let too_long = TransferStepInput { letter_days: Some(200), ..step("approve", &first) };
        assert_invalid(
            committee.transfer_step(v.transfer.id, &too_long).await,
            "letter_days",
            "transfer.letter_too_long",
        );
        let approved = committee
            .transfer_step(v.transfer.id, &TransferStepInput { letter_days: Some(30), ..step("approve", &first) })
            .await
            .unwrap();
        assert_eq!(approved.transfer.status, Status::Approved);

        // The letter runs out: receiving is refused until the sending side extends it.
        kite_store::testing::run_sql(&store, "UPDATE transfers SET letter_until = '2020-01-01'").await;
        let stale = receiving.transfer(v.transfer.id).await.unwrap();
        assert_eq!(stale.transfer.overdue.as_deref(), Some("letter_expired"));
        assert_eq!(receiving.transfers(TransferQueue::Overdue).await.unwrap().len(), 1);
        assert_eq!(branch.transfer_counts().await.unwrap().map(|c| c.overdue), Some(1));
        assert!(member.transfer_counts().await.unwrap().is_none(), "members have no queues");
        assert_conflict(
            receiving.transfer_step(v.transfer.id, &step("receive", &stale)).await,
            "transfer.letter_expired",
        );
        // The receiving side refuses instead, with its reason; the transfer is closed.
        let refused = receiving
            .transfer_step(
                v.transfer.id,
                &TransferStepInput { reason: Some("不在本辖区".into()), ..step("refuse", &stale) },
            )
            .await
            .unwrap();
        assert_eq!(refused.transfer.status, Status::Refused);
        assert_conflict(branch.transfer_step(v.transfer.id, &step("approve", &refused)).await, "transfer.wrong_status");
        // The member's record never moved.
        assert_eq!(guard(&store, admin()).member(w.member.id).await.unwrap().org_code, "TA-B1");
    })
    .await;
}

#[tokio::test]
async fn the_daily_job_expires_letters_and_the_sending_side_extends_them() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let sending = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let receiving = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let v = sending.transfer_request(&request(&w.member, "TB-B1")).await.unwrap();
        let v = sending.transfer_step(v.transfer.id, &step("approve", &v)).await.unwrap();
        let until = v.transfer.letter_until.unwrap();
        // Nothing expires on the letter's last day; the day after, it does, once.
        store.run_daily(until).await.unwrap();
        assert_eq!(receiving.transfer(v.transfer.id).await.unwrap().transfer.status, Status::Approved);
        let after = until.checked_add_days(Days::new(1)).unwrap();
        store.run_daily(after).await.unwrap();
        store.run_daily(after).await.unwrap();
        let expired = sending.transfer(v.transfer.id).await.unwrap();
        assert_eq!(expired.transfer.status, Status::Expired);
        assert_eq!(expired.steps.iter().filter(|s| s.step == "expire").count(), 1);
        assert_eq!(expired.may, vec!["withdraw", "extend_letter"]);
        // Extended within three months of issue: back to approved, to be received.
        let later = v.transfer.letter_issued_on.unwrap().checked_add_days(Days::new(40)).unwrap();
        let extend = TransferStepInput { letter_until: Some(later), ..step("extend_letter", &expired) };
        let extended = sending.transfer_step(v.transfer.id, &extend).await.unwrap();
        assert_eq!((extended.transfer.status, extended.transfer.letter_until), (Status::Approved, Some(later)));
        receiving
            .transfer_step(v.transfer.id, &step("receive", &extended))
            .await
            .expect("received on the extended letter");
    })
    .await;
}

#[tokio::test]
async fn approving_and_withdrawing_at_once_take_one_step() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let sending = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let colleague = guard(&store, at(12, "ta_b1_sec2", Role::Secretary, &w.ta_b1));
        let v = sending.transfer_request(&request(&w.member, "TB-B1")).await.unwrap();
        let (approve, withdraw) = (step("approve", &v), step("withdraw", &v));
        let (a, b) = tokio::join!(
            sending.transfer_step(v.transfer.id, &approve),
            colleague.transfer_step(v.transfer.id, &withdraw)
        );
        assert!(a.is_ok() != b.is_ok(), "exactly one step: {a:?} / {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(matches!(loser, Err(StoreError::Conflict("stale_version" | "transfer.wrong_status"))), "{loser:?}");
        let after = sending.transfer(v.transfer.id).await.unwrap();
        assert_eq!(after.steps.len(), 2, "one history row besides the request");
        assert!(matches!(after.transfer.status, Status::Approved | Status::Withdrawn));
    })
    .await;
}

#[tokio::test]
async fn a_member_transferred_outside_the_system_leaves_the_registry_as_history() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let sending = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let outside = TransferRequest {
            member_id: w.member.id,
            to_org_text: Some("浙江省杭州市西湖区西溪街道党工委".into()),
            reason: Some("随配偶迁居杭州".into()),
            ..Default::default()
        };
        let v = sending.transfer_request(&outside).await.unwrap();
        let v = sending.transfer_step(v.transfer.id, &step("approve", &v)).await.unwrap();
        assert!(v.may.iter().any(|s| s == "receive"), "the sending side enters the receipt by hand: {:?}", v.may);
        let admin_g = guard(&store, admin());
        let before = admin_g.overview(Some("TA-B1")).await.unwrap().members;
        let done = sending.transfer_step(v.transfer.id, &step("receive", &v)).await.unwrap();
        assert_eq!(done.transfer.status, Status::Done);

        // Kept as history, no longer counted or listed; asked for by its mobility, it is there.
        let m = admin_g.member(w.member.id).await.unwrap();
        assert_eq!((m.org_code.as_str(), m.mobility), ("TA-B1", kite_domain::Mobility::TransferredOut));
        assert_eq!(admin_g.overview(Some("TA-B1")).await.unwrap().members, before - 1);
        let listed = |mobility: Option<&str>| {
            let q =
                MemberQuery { org: Some("TA-B1".into()), mobility: mobility.map(str::to_string), ..Default::default() };
            let g = &admin_g;
            async move { g.members(&q).await.unwrap().items.len() }
        };
        assert_eq!((listed(None).await, listed(Some("transferred_out")).await, listed(Some("away")).await), (0, 1, 0));
        store.admin().recount().await.unwrap();
        assert_eq!(admin_g.overview(Some("TA-B1")).await.unwrap().members, before - 1, "a recount agrees");
        // Nothing more is done for the record here.
        assert_conflict(sending.transfer_request(&outside).await, "member.transferred_out");
        let d = kite_domain::flow::DepartureInput {
            destination_division: "320505",
            reason: "work",
            left_on: "2025-01-01",
            ..Default::default()
        };
        let d = kite_domain::flow::validate_departure(
            &d,
            |_| true,
            NaiveDate::from_ymd_opt(2012, 7, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        )
        .unwrap();
        assert_conflict(admin_g.record_departure(w.member.id, d).await, "member.transferred_out");
        let mut moved = person("王芳", "TB-B1", 1);
        assert_conflict(admin_g.member_update(w.member.id, moved.clone(), m.version).await, "member.transferred_out");

        // Back from outside years later: the old record returns, up to date, at the new branch.
        moved.employer = Some("苏州某公司".into());
        let letter = kite_domain::transfer::Arrival {
            from_org_text: "浙江省杭州市西湖区西溪街道党工委".into(),
            letter_number: None,
            letter_date: None,
            note: None,
        };
        let receiving = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let tb_before = admin_g.overview(Some("TB-B1")).await.unwrap().members;
        let (back, arrival) = receiving.member_arrive(moved, &letter).await.unwrap();
        assert_eq!(
            (back.id, back.org_code.as_str(), back.mobility),
            (w.member.id, "TB-B1", kite_domain::Mobility::Resident)
        );
        assert_eq!((back.employer.as_deref(), arrival.member_id), (Some("苏州某公司"), w.member.id));
        assert_eq!(admin_g.overview(Some("TB-B1")).await.unwrap().members, tb_before + 1);
        store.admin().recount().await.unwrap();
        assert_eq!(admin_g.overview(Some("TB-B1")).await.unwrap().members, tb_before + 1, "a recount agrees");
        // A member still here is not taken over by an arrival: the number is someone's.
        assert_conflict(
            receiving.member_arrive(person("王芳", "TB-B1", 1), &letter).await,
            "member.id_number.duplicate",
        );
    })
    .await;
}

#[tokio::test]
async fn a_member_arrives_from_outside_the_system_with_a_letter() {
    on_each_backend(|_, store| async move {
        let w = world(&store).await;
        let receiving = guard(&store, at(21, "tb_b1_sec", Role::Secretary, &w.tb_b1));
        let letter = kite_domain::transfer::Arrival {
            from_org_text: "浙江省杭州市西湖区西溪街道党工委".into(),
            letter_number: Some("XX-2026-031".into()),
            letter_date: NaiveDate::from_ymd_opt(2026, 11, 1),
            note: None,
        };
        let (m, a) = receiving.member_arrive(person("陈静", "TB-B1", 7), &letter).await.unwrap();
        assert_eq!((m.org_code.as_str(), a.member_id, a.org_code.as_str()), ("TB-B1", m.id, "TB-B1"));
        assert_eq!(a.letter_number.as_deref(), Some("XX-2026-031"));
        let admin_g = guard(&store, admin());
        assert_eq!(admin_g.member_arrival(m.id).await.unwrap().map(|a| a.id), Some(a.id));
        assert_eq!(receiving.arrivals().await.unwrap().len(), 1);
        assert_eq!(admin_g.overview(Some("TB-B1")).await.unwrap().members, 1, "counted as a member here");
        // Another branch neither registers arrivals here nor sees them; service staff do neither.
        let sending = guard(&store, at(11, "ta_b1_sec", Role::Secretary, &w.ta_b1));
        let refused = sending.member_arrive(person("周明", "TB-B1", 8), &letter).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_)) | Err(StoreError::Forbidden)), "{refused:?}");
        assert!(sending.arrivals().await.unwrap().is_empty());
        assert_not_found(sending.member_arrival(m.id).await);
        let staff = guard(&store, at(33, "staff", Role::ServiceStaff, &w.tb_b1));
        assert_forbidden(staff.arrivals().await);
        assert_forbidden(staff.member_arrive(person("吴刚", "TB-B1", 9), &letter).await);
        // Nothing half-written: the refused ones left no member behind.
        assert_eq!(admin_g.overview(Some("TB-B1")).await.unwrap().members, 1);
        let _ = (&w.ta, &w.tb);
    })
    .await;
}
