//! Dual management over HTTP on both backends: the outflow and inflow lists with their
//! filters and export, one flow seen from either side, the return, inflow evaluations
//! and the daily mobility rule, with every refusal.

mod common;

use chrono::Days;
use common::*;
use kite_server::rules;
use serde_json::json;

async fn names(s: &Server, token: &str, path: &str) -> Vec<String> {
    let r = s.get(path).auth(token).send().await;
    let mut v: Vec<String> =
        r.ok()["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn each_side_sees_its_list_and_filters_narrow_it() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let (f1, _) = away_two(&d).await;

        // Outflow: the home subtree's members away, wherever they are.
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow").await, ["张伟", "李娜"]);
        assert_eq!(names(s, &w.b1_sec, "/api/v1/lists/outflow").await, ["张伟"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?org=TA-B2").await, ["李娜"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?status=not_checked_in").await, ["李娜"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?division=11").await, ["李娜"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?division=3205").await, ["张伟"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?left_to=2024-12-31").await, ["张伟"]);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?left_from=2025-01-01").await, ["李娜"]);
        // Departed in 2024: away six months and more, from the moment it was recorded.
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?mobile=true").await, ["张伟"]);
        assert!(names(s, &d.tb_sec, "/api/v1/lists/outflow").await.is_empty());

        // Inflow: only those checked in to the subtree, with only the fields for managing them.
        assert_eq!(names(s, &d.dst_admin, "/api/v1/lists/inflow").await, ["张伟"]);
        assert_eq!(names(s, &d.dst_admin, "/api/v1/lists/inflow?division=3207").await, ["张伟"]);
        assert!(names(s, &d.dst_admin, "/api/v1/lists/inflow?division=3205").await.is_empty());
        assert!(names(s, &d.dst_admin, "/api/v1/lists/inflow?org=DST-B2").await.is_empty());
        assert!(names(s, &w.ta_admin, "/api/v1/lists/inflow").await.is_empty());
        assert!(names(s, &d.dst_admin, "/api/v1/lists/outflow").await.is_empty());
        let r = s.get("/api/v1/lists/inflow").auth(&d.dst_admin).send().await;
        let line = &r.ok()["items"][0];
        assert_eq!(line["id"], f1);
        assert_eq!(line["id_number_masked"], masked(&id_of(1)));
        assert_eq!(
            (line["outflow_org_code"].as_str(), line["inflow_org_code"].as_str()),
            (Some("TA-B1"), Some("DST-B1"))
        );
        assert!(line.get("id_number").is_none() && line.get("birth_date").is_none(), "{line}");

        // Refusals: no list for service staff or members; another subtree's organization is hidden.
        s.get("/api/v1/lists/outflow").auth(&d.point_staff).send().await.error(403, "forbidden");
        s.get("/api/v1/lists/outflow").auth(&w.staff).send().await.error(403, "forbidden");
        s.get("/api/v1/lists/outflow?org=TA").auth(&d.tb_sec).send().await.error(404, "not_found");
        s.get("/api/v1/lists/sideways").auth(&w.root).send().await.error(404, "not_found");
        s.get("/api/v1/lists/outflow?org=NOPE").auth(&w.root).send().await.error(404, "not_found");
        // Bad filters are named field by field.
        let bad =
            s.get("/api/v1/lists/outflow?status=gone&division=32x&left_from=2026-02-30").auth(&w.root).send().await;
        bad.invalid("status", "invalid");
        bad.invalid("division", "invalid");
        bad.invalid("left_from", "invalid_date");
        s.get("/api/v1/lists/outflow?left_from=2026-05-01&left_to=2026-04-01")
            .auth(&w.root)
            .send()
            .await
            .invalid("left_to", "flow.range_reversed");
        s.get("/api/v1/lists/outflow?left_from=-5000-01-01")
            .auth(&w.root)
            .send()
            .await
            .invalid("left_from", "invalid_date");
        s.get("/api/v1/lists/outflow?cursor=abc").auth(&w.root).send().await.invalid("cursor", "invalid");

        // Pages: one line at a time, each once.
        let first = s.get("/api/v1/lists/outflow?limit=1").auth(&w.root).send().await;
        let cursor = first.ok()["next_cursor"].as_str().expect("a second page").to_string();
        let second = s.get(&format!("/api/v1/lists/outflow?limit=1&cursor={cursor}")).auth(&w.root).send().await;
        assert!(second.ok()["next_cursor"].is_null());
        assert_ne!(first.ok()["items"][0]["id"], second.ok()["items"][0]["id"]);

        // The daily rule: 李娜 left a month ago; seven months on, the job counts her as mobile, once.
        let later = rules::today() + Days::new(215);
        assert_eq!(s.store.run_daily(rules::today()).await.unwrap(), 0);
        assert_eq!(s.store.run_daily(later).await.unwrap(), 1);
        assert_eq!(s.store.run_daily(later).await.unwrap(), 0);
        assert_eq!(names(s, &w.ta_admin, "/api/v1/lists/outflow?mobile=true").await, ["张伟", "李娜"]);
    })
    .await;
}

#[tokio::test]
async fn a_flow_shows_each_side_its_part_and_the_home_side_ends_it() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let (f1, f2) = away_two(&d).await;
        let before_home = s.get("/api/v1/overview?org=TA-B1").auth(&w.root).send().await.ok().clone();
        let before_dest = s.get("/api/v1/overview?org=DST").auth(&w.root).send().await.ok().clone();
        assert_eq!((before_home["mobile_out"].as_i64(), before_dest["mobile_in"].as_i64()), (Some(1), Some(1)));

        let home = s.get(&format!("/api/v1/flows/{f1}")).auth(&w.b1_sec).send().await;
        assert_eq!(home.ok()["side"], "outflow");
        let away = s.get(&format!("/api/v1/flows/{f1}")).auth(&d.dst_admin).send().await;
        assert_eq!(away.ok()["side"], "inflow");
        assert_eq!(away.ok()["flow"]["id_number_masked"], masked(&id_of(1)));
        // The inflow side sees nothing of members not checked in to it; others see nothing at all.
        s.get(&format!("/api/v1/flows/{f2}")).auth(&d.dst_admin).send().await.error(404, "not_found");
        s.get(&format!("/api/v1/flows/{f1}")).auth(&d.tb_sec).send().await.error(404, "not_found");
        s.get(&format!("/api/v1/flows/{f1}")).auth(&d.point_staff).send().await.error(404, "not_found");
        s.get("/api/v1/flows/999999").auth(&w.root).send().await.error(404, "not_found");
        s.get(&format!("/api/v1/members/{}", w.member("TA-B1")))
            .auth(&d.dst_admin)
            .send()
            .await
            .error(404, "not_found");

        // While away, the record stays with the organization its flow started from.
        let m = s.get(&format!("/api/v1/members/{}", w.member("TA-B1"))).auth(&w.ta_admin).send().await;
        let mut moved = member_body("张伟", "TA-B2", 1);
        moved["version"] = m.ok()["version"].clone();
        s.put(&format!("/api/v1/members/{}", w.member("TA-B1")))
            .auth(&w.ta_admin)
            .json(&moved)
            .send()
            .await
            .invalid("org_code", "member.away_org_change");

        // Only the home side records the return, with the version it read and a sensible date.
        let version = home.ok()["flow"]["version"].as_i64().unwrap();
        let today = rules::today().to_string();
        let back = json!({"returned_on": today, "note": "返乡创业", "version": version});
        s.post(&format!("/api/v1/flows/{f1}/return"))
            .auth(&d.dst_admin)
            .json(&back)
            .send()
            .await
            .error(404, "not_found");
        s.post(&format!("/api/v1/flows/{f1}/return"))
            .auth(&w.b1_sec)
            .json(&json!({"returned_on": "2024-01-01", "version": version}))
            .send()
            .await
            .invalid("returned_on", "flow.return_before_leaving");
        s.post(&format!("/api/v1/flows/{f1}/return"))
            .auth(&w.b1_sec)
            .json(&json!({"returned_on": today}))
            .send()
            .await
            .invalid("version", "required");
        s.post(&format!("/api/v1/flows/{f1}/return"))
            .auth(&w.b1_sec)
            .json(&json!({"returned_on": today, "version": version - 1}))
            .send()
            .await
            .error(409, "stale_version");
        let ended = s.post(&format!("/api/v1/flows/{f1}/return")).auth(&w.b1_sec).json(&back).send().await;
        assert_eq!(
            (ended.ok()["status"].as_str(), ended.ok()["ended_on"].as_str()),
            (Some("returned"), Some(today.as_str()))
        );
        let again = json!({"returned_on": today, "version": ended.ok()["version"]});
        s.post(&format!("/api/v1/flows/{f1}/return"))
            .auth(&w.b1_sec)
            .json(&again)
            .send()
            .await
            .error(409, "flow.closed");

        // Both sides' counts move, the member is at home, and the flow stays as history.
        let after_home = s.get("/api/v1/overview?org=TA-B1").auth(&w.root).send().await.ok().clone();
        let after_dest = s.get("/api/v1/overview?org=DST").auth(&w.root).send().await.ok().clone();
        assert_eq!((after_home["mobile_out"].as_i64(), after_dest["mobile_in"].as_i64()), (Some(0), Some(0)));
        let m = s.get(&format!("/api/v1/members/{}", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
        assert_eq!(m.ok()["mobility"], "resident");
        let history = s.get(&format!("/api/v1/members/{}/flows", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
        let ended = &history.ok()[0];
        assert_eq!((ended["note"].as_str(), ended["return_note"].as_str()), (Some("在苏州务工"), Some("返乡创业")));
        assert!(names(s, &d.dst_admin, "/api/v1/lists/inflow").await.is_empty());
        assert_eq!(names(s, &d.dst_admin, "/api/v1/lists/inflow?status=all").await, ["张伟"]);
        assert_eq!(names(s, &w.b1_sec, "/api/v1/lists/outflow?status=returned").await, ["张伟"]);
        // A new departure is possible again.
        s.post(&format!("/api/v1/members/{}/flows", w.member("TA-B1")))
            .auth(&w.b1_sec)
            .json(&departure_body())
            .send()
            .await
            .expect(201);
        let audit = s.audit().await;
        assert!(audit
            .iter()
            .any(|a| a.action == "flow.return" && a.outcome == "ok" && a.username.as_deref() == Some("b1_sec")));
        assert!(audit.iter().any(|a| a.action == "member.write"
            && a.outcome == "denied"
            && a.username.as_deref() == Some("dst_admin")));
    })
    .await;
}

#[tokio::test]
async fn the_inflow_side_evaluates_and_the_home_side_reads_it() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let (f1, f2) = away_two(&d).await;
        let view = s.get(&format!("/api/v1/flows/{f1}")).auth(&d.dst_admin).send().await;
        let period = view.ok()["current_period"].as_str().unwrap().to_string();
        assert!(period.contains("-H"), "half-yearly by default: {period}");
        let unevaluated = format!("/api/v1/lists/inflow?unevaluated={period}");
        assert_eq!(names(s, &d.dst_admin, &unevaluated).await, ["张伟"]);
        assert_eq!(names(s, &w.ta_admin, &format!("/api/v1/lists/outflow?unevaluated={period}")).await, ["张伟"]);

        let path = format!("/api/v1/flows/{f1}/evaluations");
        // Only the inflow side rates; bad input is named.
        let body = json!({"rating": "excellent", "comment": "按时参加组织生活，积极参与社区志愿服务"});
        s.post(&path).auth(&w.b1_sec).json(&body).send().await.error(404, "not_found");
        s.post(&path).auth(&d.point_staff).json(&body).send().await.error(404, "not_found");
        s.post(&path).auth(&d.dst_admin).json(&json!({"rating": "best"})).send().await.invalid("rating", "invalid");
        s.post(&path)
            .auth(&d.dst_admin)
            .json(&json!({"rating": "qualified", "period": "2099-H1"}))
            .send()
            .await
            .invalid("period", "evaluation.future_period");
        s.post(&path)
            .auth(&d.dst_admin)
            .json(&json!({"rating": "qualified", "period": "2026-Q1"}))
            .send()
            .await
            .invalid("period", "evaluation.wrong_cycle");
        let first = s.post(&path).auth(&d.dst_admin).json(&body).send().await;
        let saved = first.expect(201).clone();
        assert_eq!((saved["period"].as_str(), saved["rating"].as_str()), (Some(period.as_str()), Some("excellent")));
        // A second first evaluation of the period is refused; a revision needs the version.
        s.post(&path).auth(&d.dst_admin).json(&body).send().await.error(409, "evaluation.exists");
        let revise = json!({"rating": "qualified", "comment": "改为合格", "version": saved["version"]});
        assert_eq!(s.post(&path).auth(&d.dst_admin).json(&revise).send().await.ok()["rating"], "qualified");
        s.post(&path).auth(&d.dst_admin).json(&revise).send().await.error(409, "stale_version");
        // 李娜 is not checked in anywhere: no inflow side can rate her.
        s.post(&format!("/api/v1/flows/{f2}/evaluations"))
            .auth(&d.dst_admin)
            .json(&body)
            .send()
            .await
            .error(404, "not_found");
        s.post(&format!("/api/v1/flows/{f2}/evaluations"))
            .auth(&w.root)
            .json(&body)
            .send()
            .await
            .error(409, "evaluation.not_checked_in");

        // The home side reads it on the member and the flow, and the unevaluated lists empty.
        let mine = s.get(&format!("/api/v1/members/{}/evaluations", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
        let list = mine.ok().as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0]["rating"].as_str(), list[0]["inflow_org_code"].as_str()),
            (Some("qualified"), Some("DST-B1"))
        );
        s.get(&format!("/api/v1/members/{}/evaluations", w.member("TA-B1")))
            .auth(&d.tb_sec)
            .send()
            .await
            .error(404, "not_found");
        let home = s.get(&format!("/api/v1/flows/{f1}")).auth(&w.b1_sec).send().await;
        assert_eq!(home.ok()["evaluations"][0]["comment"], "改为合格");
        assert!(names(s, &d.dst_admin, &unevaluated).await.is_empty());
        s.get("/api/v1/lists/inflow?unevaluated=2026-H3")
            .auth(&d.dst_admin)
            .send()
            .await
            .invalid("unevaluated", "invalid");
        assert!(s
            .audit()
            .await
            .iter()
            .any(|a| a.action == "inflow.evaluate" && a.username.as_deref() == Some("dst_admin")));
    })
    .await;
}

#[tokio::test]
async fn lists_export_to_xlsx_with_chinese_headers() {
    use calamine::{Data, Reader, Xlsx};
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        away_two(&d).await;
        let r = s
            .http
            .get(format!("{}/api/v1/lists/outflow/export?org=TA", s.base))
            .bearer_auth(&w.ta_admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.contains("attachment") && disposition.contains(".xlsx"), "{disposition}");
        let bytes = r.bytes().await.unwrap();
        let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("an xlsx file");
        let sheet = book.worksheet_range("流出清单").expect("the sheet is named after the list");
        let rows: Vec<Vec<String>> = sheet
            .rows()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Data::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(rows[0][..5], ["姓名", "性别", "公民身份号码", "联系电话", "原所在党组织"]);
        assert_eq!(rows.len(), 3, "a header and two members: {rows:?}");
        let zhang = rows.iter().find(|r| r[0] == "张伟").expect("张伟's line");
        assert_eq!(zhang[2], masked(&id_of(1)));
        assert!(
            zhang.contains(&"已报到".to_string()) && zhang.contains(&"狮山大厦联合党支部".to_string()),
            "{zhang:?}"
        );

        // The inflow export has its own, smaller set of columns; English on request.
        let r = s
            .http
            .get(format!("{}/api/v1/lists/inflow/export", s.base))
            .bearer_auth(&d.dst_admin)
            .header("accept-language", "en")
            .send()
            .await
            .unwrap();
        let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(r.bytes().await.unwrap().to_vec())).unwrap();
        let sheet = book.worksheet_range("Inflow list").unwrap();
        let header: Vec<String> = sheet.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
        assert!(header.contains(&"Comes from".to_string()) && !header.contains(&"Reason".to_string()), "{header:?}");

        // Refused and bad exports answer like the list; each export is audited.
        s.get("/api/v1/lists/outflow/export").auth(&d.point_staff).send().await.error(403, "forbidden");
        s.get("/api/v1/lists/outflow/export?status=x").auth(&w.root).send().await.invalid("status", "invalid");
        let exports: Vec<_> = s.audit().await.into_iter().filter(|a| a.action == "flow.export").collect();
        assert_eq!(exports.len(), 2);
        assert!(exports.iter().any(|a| a.after_data.as_deref().is_some_and(|d| d.contains("\"rows\":2"))));
    })
    .await;
}
