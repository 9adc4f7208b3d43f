//! The service network over HTTP on both backends: points recorded and changed by the
//! administrators of the organization that runs them, their staff and the points under
//! them, and every refusal.

mod common;

use common::*;
use kite_domain::Role;
use serde_json::{json, Value};

fn window() -> Value {
    json!({
        "code": "DW1", "name": "狮山社区党群服务窗口", "level": "window", "parent_code": "DP1",
        "org_code": "DST-B2", "division_code": DEST_DIVISION, "address": "狮山路 20 号",
        "hotline": "0512-6000 0002", "opening_hours": "工作日 9:00–17:00",
    })
}

#[tokio::test]
async fn an_org_admin_runs_the_network_of_its_subtree() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let r = s.post("/api/v1/service-points").auth(&d.dst_admin).json(&window()).send().await;
        let p = r.expect(201).clone();
        assert_eq!((p["parent_code"].as_str(), p["org_name"].as_str()), (Some("DP1"), Some("狮山街道新市民党支部")));
        assert_eq!(
            (p["hotline"].as_str(), p["status"].as_str(), p["version"].as_i64()),
            (Some("051260000002"), Some("active"), Some(1))
        );
        s.get("/api/v1/checkin/p/DW1").send().await.ok();

        // The station lists the window under it and, for its managers, its staff.
        let v = s.get("/api/v1/service-points/DP1").auth(&d.dst_admin).send().await;
        let v = v.ok();
        assert_eq!(v["children"][0]["code"], "DW1");
        assert_eq!((v["staff"][0]["username"].as_str(), v["may_edit"].as_bool()), (Some("dp1_staff"), Some(true)));
        // Its own staff see it, without the staff list; other subtrees see nothing.
        let v = s.get("/api/v1/service-points/DP1").auth(&d.point_staff).send().await;
        assert_eq!((v.ok()["staff"].as_array().map(Vec::len), v.ok()["may_edit"].as_bool()), (Some(0), Some(false)));
        s.get("/api/v1/service-points/DP1").auth(&w.ta_admin).send().await.error(403, "forbidden");
        s.get("/api/v1/service-points/NOPE").auth(&w.root).send().await.error(404, "not_found");

        // Closed: its check-in link stops working; a stale version is refused.
        let mut closed = p.clone();
        closed["status"] = json!("closed");
        let r = s.put("/api/v1/service-points/DW1").auth(&d.dst_admin).json(&closed).send().await;
        assert_eq!((r.ok()["status"].as_str(), r.ok()["version"].as_i64()), (Some("closed"), Some(2)));
        s.get("/api/v1/checkin/p/DW1").send().await.error(404, "checkin.link_unknown");
        s.put("/api/v1/service-points/DW1").auth(&d.dst_admin).json(&closed).send().await.error(409, "stale_version");
        let mut no_version = closed.clone();
        no_version["version"] = Value::Null;
        s.put("/api/v1/service-points/DW1")
            .auth(&d.dst_admin)
            .json(&no_version)
            .send()
            .await
            .invalid("version", "required");
        // Moving it to an organization outside the caller's subtree is a field error.
        let mut moved = s.get("/api/v1/service-points/DW1").auth(&d.dst_admin).send().await.ok()["point"].clone();
        moved["org_code"] = json!("TA-B1");
        let r = s.put("/api/v1/service-points/DW1").auth(&d.dst_admin).json(&moved).send().await;
        r.invalid("org_code", "org.out_of_scope");
        let actions: Vec<String> =
            s.audit().await.into_iter().filter(|a| a.outcome == "ok").map(|a| a.action).collect();
        assert_eq!(actions.iter().filter(|a| a.starts_with("service_point.")).count(), 2, "{actions:?}");
    })
    .await;
}

#[tokio::test]
async fn refused_points_name_each_field_and_write_nothing() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let post = |token: &str, body: Value| {
            let call = s.post("/api/v1/service-points").auth(token).json(&body);
            async move { call.send().await }
        };
        let mut bad = window();
        bad["code"] = json!("站点");
        bad["name"] = json!("");
        bad["level"] = json!("kiosk");
        bad["division_code"] = json!("999999");
        bad["hotline"] = json!("12");
        let r = post(&d.dst_admin, bad).await;
        for (field, code) in [
            ("code", "invalid"),
            ("name", "required"),
            ("level", "invalid"),
            ("division_code", "unknown"),
            ("hotline", "invalid"),
        ] {
            r.invalid(field, code);
        }
        let mut upward = window();
        upward["level"] = json!("centre");
        post(&d.dst_admin, upward).await.invalid("parent_code", "service_point.parent.level");
        let mut orphan = window();
        orphan["parent_code"] = json!("NOPE");
        post(&d.dst_admin, orphan).await.invalid("parent_code", "service_point.parent.unknown");
        let mut taken = window();
        taken["code"] = json!("DP1");
        post(&d.dst_admin, taken).await.error(409, "service_point.code.duplicate");
        post(&w.ta_admin, window()).await.invalid("org_code", "org.out_of_scope");
        let mut unknown = window();
        unknown["org_code"] = json!("NOPE");
        post(&d.dst_admin, unknown).await.invalid("org_code", "org.unknown");
        let dst_sec = s.user_token("dst_sec", Role::Secretary, Some("DST")).await;
        post(&dst_sec, window()).await.error(403, "forbidden");
        post(&d.point_staff, window()).await.error(403, "forbidden");
        let mut read = window();
        read["version"] = json!(1);
        s.put("/api/v1/service-points/DP1").auth(&dst_sec).json(&read).send().await.error(403, "forbidden");
        s.get("/api/v1/service-points/DW1").auth(&w.root).send().await.error(404, "not_found");
    })
    .await;
}
