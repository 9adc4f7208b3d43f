//! Co-management agreements over HTTP on both backends: the parties record, amend and
//! read them, everyone else is refused; bad input names its fields and writes nothing;
//! files are checked by content, downloaded and removed; partner lists on either side.

mod common;

use common::*;
use kite_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn agreement_body() -> Value {
    json!({
        "title": "新安镇—苏州高新区流动党员共建共管协议",
        "number": "新组〔2026〕3号",
        "outflow": { "org_code": "TA", "contact_name": "王建国", "contact_phone": "0518-8321 2345" },
        "inflow": { "org_code": "DST", "contact_name": "李红梅", "contact_phone": "13912345678" },
        "signed_on": "2026-01-10",
        "starts_on": "2026-01-10",
        "ends_on": "2028-12-31",
        "org_building": "在狮山街道建立新安镇流动党员党小组",
        "member_management": "流入地负责日常教育管理，每半年反馈评价意见",
        "consultation": "双方组织部门定期会商",
        "consultation_cycle": "quarterly",
        "funding": "新安镇拨付活动经费，高新区提供场地",
        "funding_outflow_yuan": 10000,
        "funding_inflow_yuan": "3000",
        "activities": "联合开展志愿服务",
    })
}

async fn count(s: &Server, token: &str) -> usize {
    s.get("/api/v1/agreements").auth(token).send().await.ok()["items"].as_array().unwrap().len()
}

async fn audits(s: &Server, action: &str, outcome: &str) -> usize {
    s.audit().await.iter().filter(|a| a.action == action && a.outcome == outcome).count()
}

#[tokio::test]
async fn the_parties_record_amend_and_read_an_agreement_and_no_one_else_does() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let tb_admin = s.user_token("tb_admin", Role::OrgAdmin, Some("TB")).await;

        let r = s.post("/api/v1/agreements").auth(&w.ta_admin).json(&agreement_body()).send().await;
        let a = r.expect(201).clone();
        let id = a["id"].as_i64().unwrap();
        assert_eq!(a["outflow"]["org_code"], "TA");
        assert_eq!(a["outflow"]["name"], "新安镇党委", "a party in the system shows its own name");
        assert_eq!(a["outflow"]["contact_phone"], "051883212345");
        assert_eq!(a["inflow"]["name"], "苏州高新区党工委");
        assert_eq!(a["consultation_cycle"], "quarterly");
        assert_eq!((a["funding_outflow_yuan"].as_i64(), a["funding_inflow_yuan"].as_i64()), (Some(10000), Some(3000)));
        assert_eq!(a["status"], "active");
        assert_eq!(a["may_edit"], true);
        assert_eq!(audits(s, "agreement.create", "ok").await, 1);

        // The other party sees it and may amend it; a record read goes back as is.
        let read = s.get(&format!("/api/v1/agreements/{id}")).auth(&d.dst_admin).send().await.ok().clone();
        assert_eq!(read["member_management"], a["member_management"]);
        let mut amended = read.clone();
        amended["ends_on"] = Value::Null;
        amended["activities"] = json!("一、每年联合举办一次流动党员座谈会；\r\n二、共同开展志愿服务。");
        let r = s.put(&format!("/api/v1/agreements/{id}")).auth(&d.dst_admin).json(&amended).send().await;
        let after = r.ok().clone();
        assert_eq!((after["version"].as_i64(), after["ends_on"].is_null()), (Some(2), true));
        assert_eq!(after["outflow"]["org_code"], "TA");
        assert_eq!(after["activities"], "一、每年联合举办一次流动党员座谈会；\n二、共同开展志愿服务。");
        assert_eq!(audits(s, "agreement.update", "ok").await, 1);
        // Neither side can take the agreement away from the other.
        let mut taken = after.clone();
        taken["outflow"] = json!({ "name": "某县委组织部" });
        let r = s.put(&format!("/api/v1/agreements/{id}")).auth(&d.dst_admin).json(&taken).send().await;
        r.invalid("outflow.org_code", "agreement.other_party_fixed");
        let mut taken = after.clone();
        taken["inflow"]["org_code"] = json!("TB");
        let r = s.put(&format!("/api/v1/agreements/{id}")).auth(&w.ta_admin).json(&taken).send().await;
        r.invalid("inflow.org_code", "agreement.other_party_fixed");
        let unchanged = s.get(&format!("/api/v1/agreements/{id}")).auth(&w.ta_admin).send().await;
        assert_eq!(
            (unchanged.ok()["version"].as_i64(), unchanged.ok()["inflow"]["org_code"].as_str()),
            (Some(2), Some("DST"))
        );
        // The version read a moment ago is stale now; a missing one is named.
        s.put(&format!("/api/v1/agreements/{id}"))
            .auth(&w.ta_admin)
            .json(&amended)
            .send()
            .await
            .error(409, "stale_version");
        let mut no_version = amended.clone();
        no_version["version"] = Value::Null;
        s.put(&format!("/api/v1/agreements/{id}"))
            .auth(&w.ta_admin)
            .json(&no_version)
            .send()
            .await
            .invalid("version", "required");

        // Lists: each party's own; a subtree below a party is not a party.
        assert_eq!(count(s, &w.ta_admin).await, 1);
        assert_eq!(count(s, &d.dst_admin).await, 1);
        assert_eq!(count(s, &w.root).await, 1);
        assert_eq!(count(s, &tb_admin).await, 0);
        assert_eq!(count(s, &w.b1_sec).await, 0);
        let active = s.get("/api/v1/agreements?status=active").auth(&w.ta_admin).send().await;
        assert_eq!(active.ok()["items"].as_array().unwrap().len(), 1);
        let expired = s.get("/api/v1/agreements?status=expired").auth(&w.ta_admin).send().await;
        assert!(expired.ok()["items"].as_array().unwrap().is_empty());
        s.get("/api/v1/agreements?status=signed").auth(&w.ta_admin).send().await.invalid("status", "invalid");
        s.get("/api/v1/agreements?org=TB").auth(&w.ta_admin).send().await.error(404, "not_found");

        // Everyone else: hidden (404) or refused (403), each refusal audited.
        let denied = audits(s, "agreement.read", "denied").await;
        s.get(&format!("/api/v1/agreements/{id}")).auth(&tb_admin).send().await.error(404, "not_found");
        s.get(&format!("/api/v1/agreements/{id}")).auth(&w.b1_sec).send().await.error(404, "not_found");
        s.put(&format!("/api/v1/agreements/{id}")).auth(&tb_admin).json(&amended).send().await.error(404, "not_found");
        assert_eq!(audits(s, "agreement.read", "denied").await, denied + 3);
        s.get("/api/v1/agreements").auth(&w.staff).send().await.error(403, "forbidden");
        s.get("/api/v1/agreements").auth(&d.point_staff).send().await.error(403, "forbidden");
        // A secretary of a party reads it but does not amend it.
        let dst_sec = s.user_token("dst_sec", Role::Secretary, Some("DST")).await;
        let seen = s.get(&format!("/api/v1/agreements/{id}")).auth(&dst_sec).send().await;
        assert_eq!(seen.ok()["may_edit"], false);
        let mut fresh = after.clone();
        fresh["title"] = json!("改名");
        s.put(&format!("/api/v1/agreements/{id}")).auth(&dst_sec).json(&fresh).send().await.error(403, "forbidden");
        s.post("/api/v1/agreements").auth(&dst_sec).json(&agreement_body()).send().await.error(403, "forbidden");
        let unchanged = s.get(&format!("/api/v1/agreements/{id}")).auth(&w.root).send().await;
        assert_eq!(unchanged.ok()["title"], after["title"]);

        // Partners: a branch below either party lists the other side, and may open the
        // agreement only if it may read it.
        let p = s.get("/api/v1/orgs/TA-B1/partners").auth(&w.b1_sec).send().await;
        let p = &p.ok()[0];
        assert_eq!((p["partner"]["org_code"].as_str(), p["side"].as_str()), (Some("DST"), Some("outflow")));
        assert_eq!((p["party"]["org_code"].as_str(), p["readable"].as_bool()), (Some("TA"), Some(false)));
        // Names only: whom to call stays with the parties.
        assert!(p["partner"].get("contact_phone").is_none() && p["party"].get("contact_name").is_none(), "{p}");
        let p = s.get("/api/v1/orgs/DST-B2/partners").auth(&d.dst_admin).send().await;
        let p = &p.ok()[0];
        assert_eq!((p["partner"]["org_code"].as_str(), p["side"].as_str()), (Some("TA"), Some("inflow")));
        assert_eq!(p["readable"], true);
        let none = s.get("/api/v1/orgs/TB/partners").auth(&w.root).send().await;
        assert!(none.ok().as_array().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn refused_agreements_name_each_field_and_write_nothing() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let tb_admin = s.user_token("tb_admin", Role::OrgAdmin, Some("TB")).await;
        let post = |token: &str, body: Value| {
            let call = s.post("/api/v1/agreements").auth(token).json(&body);
            async move { call.send().await }
        };

        let mut bad = agreement_body();
        bad["title"] = json!("");
        bad["starts_on"] = json!("2026-13-01");
        bad["inflow"]["contact_phone"] = json!("12345");
        bad["funding_outflow_yuan"] = json!(-1);
        bad["consultation_cycle"] = json!("weekly");
        let r = post(&w.ta_admin, bad).await;
        r.invalid("title", "required");
        r.invalid("starts_on", "invalid_date");
        r.invalid("inflow.contact_phone", "invalid");
        r.invalid("funding_outflow_yuan", "agreement.amount_invalid");
        r.invalid("consultation_cycle", "invalid");

        let mut reversed = agreement_body();
        reversed["ends_on"] = json!("2025-12-31");
        post(&w.ta_admin, reversed).await.invalid("ends_on", "agreement.range_reversed");
        let mut empty = agreement_body();
        for c in ["org_building", "member_management", "consultation", "funding", "activities"] {
            empty[c] = Value::Null;
        }
        post(&w.ta_admin, empty).await.invalid("org_building", "agreement.no_commitment");
        let mut outside = agreement_body();
        outside["outflow"] = json!({ "name": "某县委组织部" });
        outside["inflow"] = json!({ "name": "某区委组织部" });
        post(&w.ta_admin, outside).await.invalid("outflow.org_code", "agreement.none_in_system");
        let mut unknown = agreement_body();
        unknown["inflow"]["org_code"] = json!("NOPE");
        post(&w.ta_admin, unknown).await.invalid("inflow.org_code", "org.unknown");
        let mut same = agreement_body();
        same["inflow"]["org_code"] = json!("TA");
        post(&w.ta_admin, same).await.invalid("inflow.org_code", "agreement.same_party");
        // Neither party is in the caller's subtree.
        post(&tb_admin, agreement_body()).await.invalid("outflow.org_code", "agreement.not_a_party");
        // English on request.
        let mut nothing = agreement_body();
        nothing["outflow"] = json!({});
        let r = s.post("/api/v1/agreements").auth(&w.ta_admin).lang("en").json(&nothing).send().await;
        let field = &r.invalid("outflow.org_code", "agreement.party_required")["fields"][0];
        assert!(field["message"].as_str().unwrap().starts_with("Give the organization"), "{field}");
        s.post("/api/v1/agreements").auth(&w.ta_admin).raw_json("{\"title\":").send().await.error(400, "invalid_json");

        assert_eq!(count(s, &w.root).await, 0);
        assert_eq!(audits(s, "agreement.create", "ok").await, 0);
    })
    .await;
}

/// A small PDF as a scanner would send it.
fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

#[tokio::test]
async fn files_are_checked_by_content_downloaded_by_the_parties_and_removed() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let tb_admin = s.user_token("tb_admin", Role::OrgAdmin, Some("TB")).await;
        let id = s.post("/api/v1/agreements").auth(&w.ta_admin).json(&agreement_body()).send().await.expect(201)["id"]
            .as_i64()
            .unwrap();
        let files = format!("/api/v1/agreements/{id}/files");
        let content = pdf();

        let r = s.post(&files).auth(&w.ta_admin).multipart(&[], Some(("C:\\扫描\\协议书.hta", &content))).send().await;
        let f = r.expect(201).clone();
        assert_eq!(f["file_name"], "协议书.pdf");
        assert_eq!(f["content_type"], "application/pdf");
        assert_eq!(f["size_bytes"].as_u64(), Some(content.len() as u64));
        let sha: String = Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(f["sha256"], sha.as_str());
        assert_eq!(audits(s, "agreement.attach", "ok").await, 1);

        // The other party downloads it byte for byte, named as uploaded.
        let file = format!("{files}/{}", f["id"]);
        let got = s.get(&file).auth(&d.dst_admin).send().await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text.as_bytes(), content.as_slice());
        assert_eq!(got.headers["content-type"], "application/pdf");
        let disposition = got.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;") && disposition.contains("%E5%8D%8F%E8%AE%AE"), "{disposition}");
        s.get(&file).auth(&tb_admin).send().await.error(404, "not_found");
        let listed = s.get(&format!("/api/v1/agreements/{id}")).auth(&d.dst_admin).send().await;
        assert_eq!(listed.ok()["files"][0]["uploaded_by"], "ta_admin");

        // Refused files: by content, not by name; empty; too large; not multipart; not a party.
        let html = b"<html><script>alert(1)</script></html>".to_vec();
        let r = s.post(&files).auth(&w.ta_admin).multipart(&[], Some(("协议.pdf", &html))).send().await;
        r.invalid("file", "agreement.file_type");
        let zip = b"PK\x03\x04rest-of-an-archive".to_vec();
        s.post(&files)
            .auth(&w.ta_admin)
            .multipart(&[], Some(("a.zip", &zip)))
            .send()
            .await
            .invalid("file", "agreement.file_type");
        s.post(&files)
            .auth(&w.ta_admin)
            .multipart(&[], Some(("a.pdf", &[])))
            .send()
            .await
            .invalid("file", "agreement.file_missing");
        s.post(&files)
            .auth(&w.ta_admin)
            .multipart(&[("note", "x")], None)
            .send()
            .await
            .invalid("file", "agreement.file_missing");
        let mut big = content.clone();
        big.resize(10 * 1024 * 1024 + 1, b' ');
        let r = s.post(&files).auth(&w.ta_admin).multipart(&[], Some(("big.pdf", &big))).send().await;
        r.invalid("file", "agreement.file_too_large");
        // Larger than axum's default body limit, smaller than the upload's.
        big.truncate(3 * 1024 * 1024);
        let r = s.post(&files).auth(&w.ta_admin).multipart(&[], Some(("scan.pdf", &big))).send().await;
        let scan = r.expect(201)["id"].clone();
        assert_eq!(s.delete(&format!("{files}/{scan}")).auth(&w.ta_admin).send().await.status, 204);
        s.post(&files).auth(&w.ta_admin).json(&json!({})).send().await.error(400, "invalid_multipart");
        s.post(&files).auth(&tb_admin).multipart(&[], Some(("a.pdf", &content))).send().await.error(404, "not_found");
        let sec = s.user_token("dst_sec", Role::Secretary, Some("DST")).await;
        s.post(&files).auth(&sec).multipart(&[], Some(("a.pdf", &content))).send().await.error(403, "forbidden");
        s.get(&format!("/api/v1/agreements/{}/files/1", id + 1)).auth(&w.root).send().await.error(404, "not_found");
        let one = s.get(&format!("/api/v1/agreements/{id}")).auth(&w.root).send().await;
        assert_eq!(one.ok()["files"].as_array().unwrap().len(), 1, "refused files are not kept");

        // Removal: by a party's admin, audited with what was removed.
        s.delete(&file).auth(&sec).send().await.error(403, "forbidden");
        assert_eq!(s.delete(&file).auth(&d.dst_admin).send().await.status, 204);
        s.get(&file).auth(&d.dst_admin).send().await.error(404, "not_found");
        s.delete(&file).auth(&d.dst_admin).send().await.error(404, "not_found");
        let removed = s.audit().await.into_iter().find(|a| a.action == "agreement.detach").expect("detach audited");
        let before: Value = serde_json::from_str(removed.before_data.as_deref().unwrap()).unwrap();
        assert_eq!(before["sha256"], sha.as_str());

        // Twenty-five at once: twenty are kept, the rest are refused, never twenty-one.
        let uploads: Vec<_> = (0..25)
            .map(|i| {
                let name = format!("第{i}页.pdf");
                tokio::spawn(s.post(&files).auth(&w.ta_admin).multipart(&[], Some((&name, &content))).send())
            })
            .collect();
        let mut statuses = Vec::new();
        for u in uploads {
            let r = u.await.unwrap();
            if r.status == 409 {
                r.error(409, "agreement.too_many_files");
            }
            statuses.push(r.status.as_u16());
        }
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
        let all = s.get(&format!("/api/v1/agreements/{id}")).auth(&w.root).send().await;
        assert_eq!(all.ok()["files"].as_array().unwrap().len(), 20);
    })
    .await;
}
