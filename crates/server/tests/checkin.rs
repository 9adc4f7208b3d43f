//! Check-in over HTTP on both backends: the public self-service path with its one-time
//! code, the counter, the queues, the outflow side's decision and who may see what.

mod common;

use common::*;
use serde_json::{json, Value};

/// A check-in by the `n`-th test person (a member of [`World`] for n = 1..3).
fn checkin_body(name: &str, n: u32, request_id: &str) -> Value {
    json!({
        "name": name,
        "id_number": id_of(n),
        "phone": phone(n),
        "home_org_code": "",
        "home_org_text": "灌南县新安镇",
        "division_code": DEST_DIVISION,
        "address": "狮山路 88 号",
        "employer": "狮山大厦某科技公司",
        "occupation": "软件工程师",
        "request_id": request_id,
    })
}

fn phone(n: u32) -> String {
    format!("138{:08}", 20_000_000 + n)
}

/// Asks for a code and reads it from the outbox, as staff would in development.
async fn code_for(d: &Dest, link: &str, n: u32) -> String {
    let s = &d.w.s;
    s.post(&format!("/api/v1/checkin/{link}/code")).json(&json!({"phone": phone(n)})).send().await.expect(202);
    let outbox = s.get("/api/v1/outbox").auth(&d.w.root).send().await;
    let msg =
        outbox.ok().as_array().unwrap().iter().find(|m| m["recipient"] == phone(n)).expect("the code's SMS").clone();
    let body = msg["body"].as_str().unwrap();
    let code: String = body.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
    assert_eq!(code.len(), 6, "a six-digit code in {body:?}");
    code
}

async fn waiting(s: &Server, token: &str, side: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/checkins?status=waiting&side={side}")).auth(token).send().await;
    r.ok()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn self_service_check_in_is_idempotent_and_confirmed_by_the_outflow_side() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);

        let target = s.get("/api/v1/checkin/o/DST-B1").send().await;
        assert_eq!(target.ok()["org_name"], "狮山大厦联合党支部");
        s.get("/api/v1/checkin/o/NOPE").send().await.error(404, "checkin.link_unknown");
        s.get("/api/v1/checkin/x/DST-B1").send().await.error(404, "not_found");

        // Codes: a landline cannot receive one; a second request within the minute is refused.
        s.post("/api/v1/checkin/o/DST-B1/code")
            .json(&json!({"phone": "0512-65123456"}))
            .send()
            .await
            .invalid("phone", "checkin.phone_mobile");
        let code = code_for(&d, "o/DST-B1", 1).await;
        // An unknown link is named before the body's errors, and a good body does not change that.
        s.post("/api/v1/checkin/o/NOPE").json(&json!({})).send().await.error(404, "checkin.link_unknown");
        let mut elsewhere = checkin_body("张伟", 1, "req-0001-nope");
        elsewhere["code"] = json!(code);
        s.post("/api/v1/checkin/o/NOPE").json(&elsewhere).send().await.error(404, "checkin.link_unknown");
        s.post("/api/v1/checkin/o/DST-B1/code")
            .json(&json!({"phone": phone(1)}))
            .send()
            .await
            .error(429, "otp.too_soon");
        s.get("/api/v1/outbox").auth(&w.b1_sec).send().await.error(403, "forbidden");

        // Bad input is named field by field and stores nothing.
        let mut bad = checkin_body("张伟", 1, "req-0001-aaaa");
        bad["id_number"] = json!(with_wrong_check_digit(&id_of(1)));
        bad["code"] = json!(code);
        s.post("/api/v1/checkin/o/DST-B1").json(&bad).send().await.invalid("id_number", "id_number.check_digit");
        let mut no_key = checkin_body("张伟", 1, "");
        no_key["code"] = json!(code);
        s.post("/api/v1/checkin/o/DST-B1").json(&no_key).send().await.invalid("request_id", "required");
        let mut wrong = checkin_body("张伟", 1, "req-0001-aaaa");
        wrong["code"] = json!(if code == "000000" { "111111" } else { "000000" });
        s.post("/api/v1/checkin/o/DST-B1").json(&wrong).send().await.invalid("code", "otp.wrong");
        assert!(waiting(s, &w.b1_sec, "outflow").await.is_empty());

        // The check-in, then the same request again: one record, the same answer.
        let mut body = checkin_body("张伟", 1, "req-0001-aaaa");
        body["code"] = json!(code);
        let first = s.post("/api/v1/checkin/o/DST-B1").json(&body).send().await;
        let reference = first.expect(201)["reference"].as_str().unwrap().to_string();
        assert!(first.json.get("member_id").is_none() && first.json.get("status").is_none(), "{}", first.json);
        let again = s.post("/api/v1/checkin/o/DST-B1").json(&body).send().await;
        assert_eq!(again.expect(201)["reference"], reference.as_str());

        // The outflow side sees it waiting, with the record found and the name agreeing.
        let queue = waiting(s, &w.b1_sec, "outflow").await;
        assert_eq!(queue.len(), 1, "{queue:?}");
        let c = &queue[0];
        assert_eq!((c["status"].as_str(), c["member_id"].as_i64()), (Some("pending"), Some(w.member("TA-B1"))));
        assert_eq!(c["name_matches"], true);
        assert_eq!(c["id_number_masked"], masked(&id_of(1)));
        assert!(c.get("id_number").is_none());
        let id = c["id"].as_i64().unwrap();
        let version = c["version"].as_i64().unwrap();
        // The audit record is the check-in as stored; the receipts' time is the row's.
        let audit = s.audit().await;
        let id_text = id.to_string();
        let submitted = audit
            .iter()
            .find(|a| a.action == "checkin.submit" && a.target_id.as_deref() == Some(id_text.as_str()))
            .expect("the check-in audited");
        let after: Value = serde_json::from_str(submitted.after_data.as_deref().unwrap_or("null")).unwrap();
        assert_eq!(&after, c);
        assert_eq!((&first.json["created_at"], &again.json["created_at"]), (&c["created_at"], &c["created_at"]));
        // The inflow side sees it as arriving; another town's secretary does not see it at all.
        assert_eq!(waiting(s, &d.dst_admin, "inflow").await.len(), 1);
        assert!(waiting(s, &d.tb_sec, "outflow").await.is_empty());
        s.get(&format!("/api/v1/checkins/{id}")).auth(&d.tb_sec).send().await.error(404, "not_found");
        let decision = json!({"version": version});
        s.post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&d.tb_sec)
            .json(&decision)
            .send()
            .await
            .error(404, "not_found");
        // Only the home side vouches for its member.
        s.post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&d.dst_admin)
            .json(&decision)
            .send()
            .await
            .error(403, "forbidden");
        s.post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&w.b1_sec)
            .json(&json!({"version": version - 1}))
            .send()
            .await
            .error(409, "stale_version");
        let done = s.post(&format!("/api/v1/checkins/{id}/confirm")).auth(&w.b1_sec).json(&decision).send().await;
        assert_eq!(done.ok()["status"], "confirmed");
        s.post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&w.b1_sec)
            .json(&json!({"version": version + 1}))
            .send()
            .await
            .error(409, "checkin.decided");

        // The member now has an open flow checked in to DST-B1, counted on both sides.
        let flows = s.get(&format!("/api/v1/members/{}/flows", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
        let open: Vec<&Value> = flows.ok().as_array().unwrap().iter().filter(|f| f["ended_on"].is_null()).collect();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0]["status"].as_str(), open[0]["inflow_org_code"].as_str()),
            (Some("checked_in"), Some("DST-B1"))
        );
        let dst = s.get("/api/v1/overview?org=DST").auth(&d.dst_admin).send().await;
        assert_eq!(dst.ok()["mobile_in"], 1);
        let home = s.get("/api/v1/overview?org=TA-B1").auth(&w.b1_sec).send().await;
        assert_eq!(home.ok()["mobile_out"], 1);
        let m = s.get(&format!("/api/v1/members/{}", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
        assert_eq!(m.ok()["mobility"], "checked_in");

        let audit = s.audit().await;
        for action in ["checkin.submit", "checkin.confirm"] {
            assert!(audit.iter().any(|a| a.action == action && a.outcome == "ok"), "{action} audited");
        }
        assert!(audit.iter().any(|a| a.action == "checkin.review" && a.outcome == "denied"));
        // The audit never keeps the full number.
        assert!(audit.iter().all(|a| !a.after_data.as_deref().unwrap_or("").contains(&id_of(1))));
    })
    .await;
}

#[tokio::test]
async fn codes_expire_after_too_many_wrong_guesses() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let s = &d.w.s;
        let mut body = checkin_body("张伟", 1, "req-guess-0001");
        body["code"] = json!("123456");
        // No code was ever sent to this phone.
        s.post("/api/v1/checkin/o/DST-B1").json(&body).send().await.invalid("code", "otp.expired");
        let code = code_for(&d, "o/DST-B1", 1).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        body["code"] = json!(wrong);
        for _ in 0..kite_domain::checkin::MAX_ATTEMPTS {
            s.post("/api/v1/checkin/o/DST-B1").json(&body).send().await.invalid("code", "otp.wrong");
        }
        body["code"] = json!(code);
        s.post("/api/v1/checkin/o/DST-B1").json(&body).send().await.invalid("code", "otp.expired");
        assert!(waiting(s, &d.w.root, "outflow").await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn counter_check_ins_home_outside_the_system_and_rejections() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);

        // A person whose number is in no registry, entered at the point's counter.
        let stranger = checkin_body("赵敏", 900, "counter-0001");
        let r = s.post("/api/v1/counter/p/DP1").auth(&d.point_staff).json(&stranger).send().await;
        r.expect(201);
        // Staff of a point work at their point only; secretaries take no check-ins for others.
        s.post("/api/v1/counter/o/DST-B2").auth(&d.point_staff).json(&stranger).send().await.error(403, "forbidden");
        s.post("/api/v1/counter/o/DST-B1").auth(&w.b1_sec).json(&stranger).send().await.error(403, "forbidden");
        // The same request key for another person is refused, not merged.
        let other = checkin_body("李娜", 2, "counter-0001");
        s.post("/api/v1/counter/p/DP1")
            .auth(&d.point_staff)
            .json(&other)
            .send()
            .await
            .error(409, "checkin.request_reused");

        let at_point = waiting(s, &d.point_staff, "inflow").await;
        assert_eq!(at_point.len(), 1);
        let c = &at_point[0];
        assert_eq!((c["status"].as_str(), c["channel"].as_str()), (Some("home_unknown"), Some("counter")));
        assert_eq!(c["home_org_text"], "灌南县新安镇");
        assert_eq!(c["service_point_code"], "DP1");
        assert!(waiting(s, &w.b1_sec, "outflow").await.is_empty());
        let (id, version) = (c["id"].as_i64().unwrap(), c["version"].as_i64().unwrap());
        // With no home side in the system, the inflow side confirms on a verification letter.
        s.post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&d.dst_admin)
            .json(&json!({"version": version}))
            .send()
            .await
            .invalid("note", "checkin.letter_required");
        let ok = s
            .post(&format!("/api/v1/checkins/{id}/confirm"))
            .auth(&d.dst_admin)
            .json(&json!({"version": version, "note": "灌南县委组织部核实函〔2026〕12号"}))
            .send()
            .await;
        assert_eq!(ok.ok()["status"], "confirmed");

        // A check-in under a member's number with another name: the home side rejects it.
        let mut imposter = checkin_body("李四", 2, "counter-0002");
        imposter["home_org_code"] = json!("TA-B2");
        s.post("/api/v1/counter/o/DST-B1").auth(&d.dst_admin).json(&imposter).send().await.expect(201);
        let queue = waiting(s, &w.ta_admin, "outflow").await;
        assert_eq!(queue.len(), 1);
        assert_eq!(
            (queue[0]["name_matches"].as_bool(), queue[0]["home_org_code"].as_str()),
            (Some(false), Some("TA-B2"))
        );
        let (id, version) = (queue[0]["id"].as_i64().unwrap(), queue[0]["version"].as_i64().unwrap());
        s.post(&format!("/api/v1/checkins/{id}/reject"))
            .auth(&w.ta_admin)
            .json(&json!({"version": version, "reason": "  "}))
            .send()
            .await
            .invalid("reason", "required");
        let rejected = s
            .post(&format!("/api/v1/checkins/{id}/reject"))
            .auth(&w.ta_admin)
            .json(&json!({"version": version, "reason": "姓名与本支部党员不符"}))
            .send()
            .await;
        assert_eq!(rejected.ok()["status"], "rejected");
        let m = s.get(&format!("/api/v1/members/{}", w.member("TA-B2"))).auth(&w.ta_admin).send().await;
        assert_eq!(m.ok()["mobility"], "resident", "a rejected check-in changes nothing on the record");
    })
    .await;
}

#[tokio::test]
async fn a_new_check_in_supersedes_the_old_one_only_when_confirmed() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let member = w.member("TA-B1");
        s.post(&format!("/api/v1/members/{member}/flows"))
            .auth(&w.b1_sec)
            .json(&departure_body())
            .send()
            .await
            .expect(201);

        let confirm_latest = |token: String| async move {
            let q = waiting(s, &token, "outflow").await;
            assert_eq!(q.len(), 1, "{q:?}");
            let body = json!({"version": q[0]["version"]});
            s.post(&format!("/api/v1/checkins/{}/confirm", q[0]["id"]))
                .auth(&token)
                .json(&body)
                .send()
                .await
                .ok()
                .clone()
        };
        s.post("/api/v1/counter/o/DST-B1")
            .auth(&d.dst_admin)
            .json(&checkin_body("张伟", 1, "move-0001"))
            .send()
            .await
            .expect(201);
        let first = confirm_latest(w.b1_sec.clone()).await;
        s.post("/api/v1/counter/o/DST-B2")
            .auth(&d.dst_admin)
            .json(&checkin_body("张伟", 1, "move-0002"))
            .send()
            .await
            .expect(201);
        // Until the home side confirms the new one, the member stays with DST-B1.
        let b1 = s.get("/api/v1/overview?org=DST-B1").auth(&d.dst_admin).send().await;
        assert_eq!(b1.ok()["mobile_in"], 1);
        let old = s.get(&format!("/api/v1/checkins/{}", first["id"])).auth(&d.dst_admin).send().await;
        assert_eq!(old.ok()["status"], "confirmed");
        confirm_latest(w.b1_sec.clone()).await;
        let old = s.get(&format!("/api/v1/checkins/{}", first["id"])).auth(&d.dst_admin).send().await;
        assert_eq!(old.ok()["status"], "superseded");
        for (org, n) in [("DST-B1", 0), ("DST-B2", 1)] {
            let o = s.get(&format!("/api/v1/overview?org={org}")).auth(&d.dst_admin).send().await;
            assert_eq!(o.ok()["mobile_in"], n, "{org}");
        }
        let flows = s.get(&format!("/api/v1/members/{member}/flows")).auth(&w.b1_sec).send().await;
        let flows = flows.ok().as_array().unwrap().clone();
        assert_eq!(flows.len(), 1, "the departure's flow was joined, not a new one opened");
        assert_eq!(flows[0]["inflow_org_code"], "DST-B2");
        // The departure that is still open cannot be recorded twice.
        s.post(&format!("/api/v1/members/{member}/flows"))
            .auth(&w.b1_sec)
            .json(&departure_body())
            .send()
            .await
            .error(409, "flow.already_open");
    })
    .await;
}

#[tokio::test]
async fn guidance_ranks_the_workplace_and_home_stationed_organizations() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let s = &d.w.s;
        let mut stationed = org_body("CTY-ZS", Some("CTY"), "灌南县驻苏州流动党员党委", "committee");
        stationed["kind"] = json!("stationed");
        stationed["division_code"] = json!(DEST_DIVISION);
        s.post("/api/v1/orgs").auth(&d.w.root).json(&stationed).send().await.expect(201);
        let r = s
            .get("/api/v1/checkin-suggestions?division_code=320505&home_org_code=TA-B1&employer=%E7%8B%AE%E5%B1%B1%E5%A4%A7%E5%8E%A6")
            .send()
            .await;
        let codes: Vec<&str> = r.ok().as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap()).collect();
        assert_eq!(&codes[..2], ["CTY-ZS", "DST-B1"], "{}", r.json);
        let found = s.get("/api/v1/checkin-orgs?q=%E6%96%B0%E5%AE%89").send().await;
        assert!(found.ok().as_array().unwrap().iter().any(|o| o["code"] == "TA-B1"));
    })
    .await;
}
