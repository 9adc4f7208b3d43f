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
        },
    )
    .await;
}
