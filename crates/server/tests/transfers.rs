//! Transfers of the formal record over HTTP on both backends: a transfer walked from
//! request to done by two organizations' accounts, and the errors a client can cause,
//! each with its status and code.

mod common;

use common::*;
use kite_domain::Role;
use serde_json::{json, Value};

fn step(name: &str, v: &Value) -> Value {
    json!({"step": name, "version": v["transfer"]["version"]})
}

#[tokio::test]
async fn a_transfer_across_two_organizations_and_its_refusals() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let tb_sec = s.user_token("tb_sec", Role::Secretary, Some("TB-B1")).await;
        let zhang = w.member("TA-B1");
        let ask = json!({"member_id": zhang, "to_org_code": "TB-B1", "reason": "在堆沟港镇定居"});

        // Bad input: an unknown or missing destination, the member's own branch, both kinds at once.
        let bad = |body: Value| s.post("/api/v1/transfers").auth(&w.b1_sec).json(&body).send();
        bad(json!({"member_id": zhang, "to_org_code": "NOPE"})).await.invalid("to_org_code", "org.unknown");
        bad(json!({"member_id": zhang})).await.invalid("to_org_code", "required");
        bad(json!({"member_id": zhang, "to_org_code": "TA-B1"})).await.invalid("to_org_code", "transfer.same_org");
        bad(json!({"member_id": zhang, "to_org_code": "TB-B1", "to_org_text": "外省某支部"}))
            .await
            .invalid("to_org_text", "transfer.one_destination");
        s.post("/api/v1/transfers").auth(&w.b1_sec).json(&json!({"to_org_code": 3})).send().await.expect(400);
        // A member out of the caller's reach is not found.
        s.post("/api/v1/transfers").auth(&tb_sec).json(&ask).send().await.error(404, "not_found");

        let v = s.post("/api/v1/transfers").auth(&w.b1_sec).json(&ask).send().await.expect(201).clone();
        let id = v["transfer"]["id"].as_i64().unwrap();
        assert_eq!(
            (v["transfer"]["status"].as_str(), v["transfer"]["initiator"].as_str()),
            (Some("requested"), Some("sending"))
        );
        s.post("/api/v1/transfers").auth(&w.b1_sec).json(&ask).send().await.error(409, "transfer.in_progress");
        let url = format!("/api/v1/transfers/{id}/steps");
        // The receiving side sees the transfer but may not approve it; unknown steps are 400.
        assert_eq!(s.get(&format!("/api/v1/transfers/{id}")).auth(&tb_sec).send().await.ok()["may"], json!([]));
        s.post(&url).auth(&tb_sec).json(&step("approve", &v)).send().await.error(403, "forbidden");
        s.post(&url)
            .auth(&w.b1_sec)
            .json(&json!({"step": "fly", "version": 1}))
            .send()
            .await
            .invalid("step", "invalid");
        s.post(&url)
            .auth(&w.b1_sec)
            .json(&json!({"step": "approve", "version": 7}))
            .send()
            .await
            .error(409, "stale_version");
        let long = json!({"step": "approve", "version": 1, "letter_days": 400});
        s.post(&url).auth(&w.b1_sec).json(&long).send().await.invalid("letter_days", "transfer.letter_too_long");
        s.post(&url).auth(&w.b1_sec).json(&step("receive", &v)).send().await.error(409, "transfer.wrong_status");

        let approved = s.post(&url).auth(&w.b1_sec).json(&step("approve", &v)).send().await.ok().clone();
        assert_eq!(approved["transfer"]["status"], "approved");
        assert!(approved["transfer"]["letter_number"].as_str().unwrap().starts_with("TA-B1-"));
        s.post(&url).auth(&w.b1_sec).json(&step("approve", &approved)).send().await.error(409, "transfer.wrong_status");
        let queue = s.get("/api/v1/transfers?queue=to_receive").auth(&tb_sec).send().await;
        assert_eq!(queue.ok().as_array().unwrap().len(), 1);
        s.get("/api/v1/transfers?queue=soon").auth(&tb_sec).send().await.invalid("queue", "invalid");

        let received = s.post(&url).auth(&tb_sec).json(&step("receive", &approved)).send().await.ok().clone();
        assert_eq!(received["transfer"]["status"], "received");
        let m = s.get(&format!("/api/v1/members/{zhang}")).auth(&w.root).send().await;
        assert_eq!(m.ok()["org_code"], "TB-B1");
        // Closing the file is the sending side's step.
        s.post(&url).auth(&tb_sec).json(&step("record_receipt", &received)).send().await.error(403, "forbidden");
        let done = s.post(&url).auth(&w.b1_sec).json(&step("record_receipt", &received)).send().await.ok().clone();
        assert_eq!(done["transfer"]["status"], "done");
        let steps: Vec<&str> = done["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(steps, ["request", "approve", "receive", "record_receipt"]);
        // Messages in the reader's language.
        let en = s
            .post("/api/v1/transfers")
            .auth(&tb_sec)
            .lang("en")
            .json(&json!({"member_id": zhang, "to_org_code": "TB-B1"}))
            .send()
            .await;
        let fields = en.invalid("to_org_code", "transfer.same_org")["fields"].clone();
        assert_eq!(fields[0]["message"], "The receiving organization is the member's own");

        // Two-level approval is set per organization by those who may edit it.
        let org = s.get("/api/v1/orgs/TA-B1").auth(&w.root).send().await.ok().clone();
        assert_eq!(org["transfer_two_levels"], false);
        let url = "/api/v1/orgs/TA-B1/transfer-approval";
        let on = json!({"two_levels": true, "version": org["version"]});
        s.put(url).auth(&w.b1_sec).json(&on).send().await.error(403, "forbidden");
        let set = s.put(url).auth(&w.ta_admin).json(&on).send().await.ok().clone();
        assert_eq!(
            (set["transfer_two_levels"].as_bool(), set["version"].as_i64()),
            (Some(true), org["version"].as_i64().map(|v| v + 1))
        );
        s.put(url).auth(&w.ta_admin).json(&on).send().await.error(409, "stale_version");
        // The next transfer from TA-B1 waits for the committee after the branch.
        let li = w.member("TA-B2");
        let v = s
            .post("/api/v1/transfers")
            .auth(&w.root)
            .json(&json!({"member_id": li, "to_org_code": "TA-B1"}))
            .send()
            .await;
        assert_eq!(v.expect(201)["transfer"]["two_levels"], false, "TA-B2 approves at one level");
    })
    .await;
}

#[tokio::test]
async fn an_arrival_from_outside_over_the_api() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let member = member_body("陈静", "TA-B1", 120);
        let r = s
            .post("/api/v1/arrivals")
            .auth(&w.b1_sec)
            .json(&json!({"member": member, "letter_date": "2099-01-01"}))
            .send()
            .await;
        r.invalid("from_org_text", "required");
        r.invalid("letter_date", "transfer.letter_date_future");
        let mut no_name = member.clone();
        no_name["name"] = json!("");
        let r = s
            .post("/api/v1/arrivals")
            .auth(&w.b1_sec)
            .json(&json!({"member": no_name, "from_org_text": "外省某党委"}))
            .send()
            .await;
        r.invalid("name", "required");
        s.get("/api/v1/arrivals").auth(&w.staff).send().await.error(403, "forbidden");
        let body =
            json!({"member": member, "from_org_text": "浙江省杭州市西湖区西溪街道党工委", "letter_number": "XX-031"});
        let done = s.post("/api/v1/arrivals").auth(&w.b1_sec).json(&body).send().await.expect(201).clone();
        assert_eq!(
            (done["member"]["org_code"].as_str(), done["arrival"]["letter_number"].as_str()),
            (Some("TA-B1"), Some("XX-031"))
        );
        let list = s.get("/api/v1/arrivals").auth(&w.ta_admin).send().await;
        assert_eq!(list.ok().as_array().map(Vec::len), Some(1));
        // The same person again is the same ID number: refused, nothing written.
        s.post("/api/v1/arrivals").auth(&w.b1_sec).json(&body).send().await.error(409, "member.id_number.duplicate");
        assert_eq!(s.get("/api/v1/arrivals").auth(&w.ta_admin).send().await.ok().as_array().map(Vec::len), Some(1));
    })
    .await;
}
