//! The demo's activity goes through the guarded API, so what it leaves is what the demo
//! accounts see: check-ins waiting on both sides and this period's evaluations.

use kite_domain::flow::Side;
use kite_store::testing::on_each_backend;
use kite_store::{CheckinQuery, Client, FlowQuery, NewUser, Store};

async fn guard_of<'a>(store: &'a Store, name: &str) -> kite_store::Guard<'a> {
    let (u, _) = store.accounts().user_by_username(name).await.unwrap().expect("demo account");
    store.guard(u.principal(), Client::default())
}

#[tokio::test]
async fn the_demo_leaves_waiting_check_ins_and_evaluations() {
    on_each_backend(
        |_, store| async move { store },
        |store| async move {
            kite_demo::load(&store, 1500).await.expect("demo region");
            for (username, role, org, point, _) in kite_demo::ACCOUNTS {
                let new = NewUser {
                    username: username.to_string(),
                    password_hash: "$argon2id$unused".into(),
                    role: *role,
                    org_code: org.map(str::to_string),
                    member_id: None,
                    display_name: None,
                    service_point_code: point.map(str::to_string),
                };
                store.accounts().create_user(&new, "test").await.expect("demo account");
            }
            let (checkins, evaluations) = kite_demo::activity(&store, 1500).await.expect("demo activity");
            assert_eq!(checkins, 4);
            assert!(evaluations > 0);

            let suzhou = guard_of(&store, "suzhou").await;
            let waiting = CheckinQuery { status: Some("waiting".into()), ..Default::default() };
            let seen = suzhou.checkins(&waiting).await.unwrap().items;
            assert_eq!(seen.len(), 4, "the inflow side sees every check-in made to it");
            assert_eq!(seen.iter().filter(|c| c.status.code() == "home_unknown").count(), 1);
            let inflow =
                suzhou.flows(Side::Inflow, &FlowQuery { limit: Some(200), ..Default::default() }).await.unwrap();
            assert!(inflow.next_cursor.is_none());
            let period = suzhou.flow(inflow.items[0].id).await.unwrap().current_period;
            let open = FlowQuery { unevaluated: Some(period), limit: Some(200), ..Default::default() };
            let left = suzhou.flows(Side::Inflow, &open).await.unwrap().items.len();
            assert_eq!(left + evaluations, inflow.items.len(), "two thirds evaluated, the rest listed");

            // The home side of each member check-in has it in its queue.
            let admin = guard_of(&store, "admin").await;
            let home =
                CheckinQuery { status: Some("pending".into()), side: Some("outflow".into()), ..Default::default() };
            assert_eq!(admin.checkins(&home).await.unwrap().items.len(), 3);

            // Agreements: each party sees its own, with their status from the dates.
            assert_eq!(kite_demo::agreements(&store).await.expect("demo agreements"), 4);
            let all = admin.agreements(&Default::default()).await.unwrap().items;
            assert_eq!(all.len(), 4);
            let statuses: Vec<&str> = all.iter().map(|a| a.status.code()).collect();
            assert!(statuses.contains(&"expired") && statuses.contains(&"upcoming") && statuses.contains(&"active"));
            let seen_by_suzhou = suzhou.agreements(&Default::default()).await.unwrap().items;
            assert_eq!(seen_by_suzhou.len(), 2, "Suzhou is party to two: {seen_by_suzhou:?}");
            let signed = seen_by_suzhou.iter().find(|a| a.outflow.org_code.as_deref() == Some("GN")).unwrap();
            let record = suzhou.agreement(signed.id).await.unwrap();
            assert_eq!(record.files.len(), 1);
            assert_eq!(record.files[0].content_type, "application/pdf");
            let (_, pdf) = suzhou.agreement_file(signed.id, record.files[0].id).await.unwrap();
            assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
            // A Suzhou branch lists Guannan as a partner through its committee's agreement.
            let partners = suzhou.org_partners("SZ-LY01").await.unwrap();
            assert!(partners.iter().any(|p| p.partner.org_code.as_deref() == Some("GN") && p.readable));

            // Certificates in each state, before the transfers void some of them.
            assert_eq!(kite_demo::certificates(&store).await.expect("demo certificates"), 10);

            // Transfers in each state the accounts reach; Suzhou sees those coming to it.
            assert_eq!(kite_demo::transfers(&store).await.expect("demo transfers"), 10);
            let guannan = guard_of(&store, "guannan").await;
            let all = guannan.transfers(kite_store::TransferQueue::All).await.unwrap();
            let mut statuses: Vec<&str> = all.iter().map(|t| t.status.code()).collect();
            statuses.sort_unstable();
            assert_eq!(
                statuses,
                [
                    "approved",
                    "approved",
                    "done",
                    "expired",
                    "first_approved",
                    "received",
                    "refused",
                    "requested",
                    "returned",
                    "withdrawn"
                ]
            );
            assert_eq!(suzhou.transfers(kite_store::TransferQueue::ToReceive).await.unwrap().len(), 1);
            assert_eq!(guannan.transfers(kite_store::TransferQueue::ToApprove).await.unwrap().len(), 2);
            assert!(all.iter().any(|t| t.to_org_text.is_some() && t.letter_number.is_some()));
            let certificates = guannan.certificates(kite_store::CertificateQueue::All).await.unwrap();
            let mut statuses: Vec<&str> = certificates.iter().map(|c| c.status.code()).collect();
            statuses.sort_unstable();
            statuses.dedup();
            assert_eq!(statuses, ["issued", "lost", "refused", "requested", "returned", "revoked", "void"]);
            assert!(
                certificates.iter().any(|c| c.requester_org_code.is_some() && c.number.is_some()),
                "reverse issuing"
            );
            assert_eq!(suzhou.certificates(kite_store::CertificateQueue::Asked).await.unwrap().len(), 3);
        },
    )
    .await;
}
