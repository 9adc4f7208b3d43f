//! Activity certificates over HTTP on both backends: asked for in reverse by the inflow
//! side and issued by the county committee, checked at check-in, verified publicly with a
//! rate limit, reported lost and replaced, and the errors a client can cause.

mod common;

use chrono::Datelike;
use common::*;
use kite_domain::Role;
use kite_server::rules;
use serde_json::{json, Value};

fn body(member: i64) -> Value {
    let today = rules::today();
    json!({
        "member_id": member, "destination_division": DEST_DIVISION, "destination": "狮山路 88 号",
        "reason": "work", "valid_from": today.to_string(),
        "valid_until": (today + chrono::Months::new(12) - chrono::Days::new(1)).to_string(),
    })
}

fn step(name: &str, v: &Value) -> Value {
    json!({"step": name, "version": v["certificate"]["version"]})
}

#[tokio::test]
async fn a_certificate_asked_in_reverse_issued_checked_verified_and_replaced() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        away_two(&d).await;
        let (s, w) = (&d.w.s, &d.w);
        let cty = s.user_token("cty_admin", Role::OrgAdmin, Some("CTY")).await;
        let (zhang, li) = (w.member("TA-B1"), w.member("TA-B2"));
        let year = rules::today().year();

        // The branch does not issue; bad periods and places are named by field.
        s.post("/api/v1/certificates")
            .auth(&w.b1_sec)
            .json(&body(zhang))
            .send()
            .await
            .error(409, "certificate.not_issuer");
        let mut long = body(zhang);
        long["valid_until"] = json!((rules::today() + chrono::Months::new(40)).to_string());
        s.post("/api/v1/certificates")
            .auth(&cty)
            .json(&long)
            .send()
            .await
            .invalid("valid_until", "certificate.period_too_long");
        let mut nowhere = body(zhang);
        nowhere["destination_division"] = json!("999999");
        s.post("/api/v1/certificates")
            .auth(&cty)
            .json(&nowhere)
            .send()
            .await
            .invalid("destination_division", "unknown");
        // A member at home has no certificate; the inflow side reaches only members checked in to it.
        let wang = w.member("TB-B1");
        s.post("/api/v1/certificates").auth(&w.root).json(&body(wang)).send().await.error(409, "certificate.not_away");
        s.post("/api/v1/certificates").auth(&d.dst_admin).json(&body(li)).send().await.error(404, "not_found");

        // Reverse issuing: the inflow side asks, the committee sees it counted and issues it.
        let draft = s.get(&format!("/api/v1/members/{zhang}/certificate-draft")).auth(&d.dst_admin).send().await;
        assert_eq!(
            (draft.ok()["mode"].as_str(), draft.ok()["issuer_org_code"].as_str()),
            (Some("request"), Some("CTY"))
        );
        let asked =
            s.post("/api/v1/certificates").auth(&d.dst_admin).json(&body(zhang)).send().await.expect(201).clone();
        assert_eq!(
            (asked["certificate"]["status"].as_str(), asked["certificate"]["number"].as_str()),
            (Some("requested"), None)
        );
        let id = asked["certificate"]["id"].as_i64().unwrap();
        let url = format!("/api/v1/certificates/{id}/steps");
        s.post(&url).auth(&d.dst_admin).json(&step("issue", &asked)).send().await.error(403, "forbidden");
        let queue = s.get("/api/v1/certificates?queue=to_decide").auth(&cty).send().await;
        assert_eq!(queue.ok().as_array().map(Vec::len), Some(1));
        s.get("/api/v1/certificates?queue=later").auth(&cty).send().await.invalid("queue", "invalid");
        s.post(&url)
            .auth(&cty)
            .json(&json!({"step": "revoke", "version": 1}))
            .send()
            .await
            .error(409, "certificate.wrong_status");
        s.post(&url).auth(&cty).json(&json!({"step": "fly", "version": 1})).send().await.invalid("step", "invalid");
        s.post(&url).auth(&cty).json(&json!({"step": "issue", "version": 9})).send().await.error(409, "stale_version");
        let issued = s.post(&url).auth(&cty).json(&step("issue", &asked)).send().await.ok().clone();
        let number = issued["certificate"]["number"].as_str().unwrap().to_string();
        assert_eq!(number, format!("CTY-{year}-00001"));
        let answered = s.get("/api/v1/certificates?queue=asked").auth(&d.dst_admin).send().await;
        assert_eq!(answered.ok()[0]["answer_unseen"], true);

        // The inflow side checks it at the member's check-in, by the QR code's link.
        let checkins = s.get("/api/v1/checkins").auth(&d.dst_admin).send().await;
        let cid = checkins.ok()["items"][0]["id"].as_i64().unwrap();
        let check = format!("/api/v1/checkins/{cid}/certificate");
        s.post(&check)
            .auth(&d.dst_admin)
            .json(&json!({"number": "CTY-1990-00001"}))
            .send()
            .await
            .invalid("number", "certificate.unknown");
        s.post(&check).auth(&w.b1_sec).json(&json!({"number": number})).send().await.error(403, "forbidden");
        let link = format!("http://kite.example/verify/{}", number.to_lowercase());
        let rec = s.post(&check).auth(&d.dst_admin).json(&json!({"number": link})).send().await.ok().clone();
        assert_eq!(
            (rec["certificate_number"].as_str(), rec["certificate_in_system"].as_bool()),
            (Some(number.as_str()), Some(true))
        );

        // The photo: the file itself as the body, checked by its first bytes.
        let photo = format!("/api/v1/certificates/{id}/photo");
        let png = [&[0x89u8, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..], &[0u8; 32]].concat();
        s.put(&photo)
            .auth(&cty)
            .header("content-type", "image/gif")
            .body(b"GIF89a".to_vec())
            .send()
            .await
            .invalid("photo", "certificate.photo_type");
        s.put(&photo).auth(&cty).header("content-type", "image/png").body(png.clone()).send().await.ok();
        let got = s.get(&photo).auth(&cty).send().await;
        assert_eq!((got.status.as_u16(), got.bytes.as_slice()), (200, png.as_slice()));
        s.get(&photo).auth(&w.b1_sec).send().await.error(404, "not_found");

        // Reported lost: a new number, the old one answers "not valid" to anyone.
        let v = s.get(&format!("/api/v1/certificates/{id}")).auth(&cty).send().await.ok().clone();
        let replaced = s.post(&url).auth(&cty).json(&step("report_lost", &v)).send().await.ok().clone();
        assert_eq!(replaced["certificate"]["replaces"], json!(number));
        assert_eq!(replaced["certificate"]["has_photo"], true);
        let public = |n: &str| s.get(&format!("/api/v1/public/certificates/{n}")).send();
        let old = public(&number).await.ok().clone();
        assert_eq!(
            (old["valid"].as_bool(), old["status"].as_str(), old["masked_name"].as_str()),
            (Some(false), Some("lost"), Some("张**"))
        );
        assert!(old.get("id_number_masked").is_none() && old.get("member_id").is_none());
        let new_number = replaced["certificate"]["number"].as_str().unwrap().to_string();
        assert_eq!(public(&new_number).await.ok()["valid"], true);
        public("CTY-1990-00009").await.error(404, "certificate.unknown");
        // Ten lookups a minute per client: the eleventh is refused.
        for _ in 0..7 {
            public(&new_number).await.expect(200);
        }
        public(&new_number).await.error(429, "certificate.too_many_lookups");
    })
    .await;
}
