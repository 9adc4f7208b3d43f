//! Screening campaigns over HTTP on both backends: a region's administrator screens a
//! roster from the place its members went to, reviews the matches and closes the
//! campaign, which deletes the roster; others are refused.

mod common;

use common::*;
use kite_domain::Role;
use serde_json::{json, Value};

fn campaign(org: &str, place: Option<&str>) -> Value {
    json!({"org_code": org, "place_org_code": place, "name": "2026年冬季流动党员排查",
           "starts_on": "2026-11-01", "ends_on": "2026-12-31"})
}

/// The roster once its run has ended.
async fn finished(s: &Server, token: &str, roster: &str) -> Value {
    for _ in 0..300 {
        let r = s.get(roster).auth(token).send().await.ok().clone();
        if r["status"] != "running" {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the run of {roster} did not end in 30 s");
}

#[tokio::test]
async fn a_roster_from_the_place_is_screened_reviewed_and_deleted_at_close() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        away_two(&d).await;
        let (s, w) = (&d.w.s, &d.w);
        let cty = s.user_token("cty_admin", Role::OrgAdmin, Some("CTY")).await;

        // The screening permission of a region: its administrators, over their region only.
        let url = "/api/v1/screening/campaigns";
        s.post(url).auth(&w.b1_sec).json(&campaign("TA-B1", None)).send().await.error(403, "forbidden");
        s.post(url).auth(&w.ta_admin).json(&campaign("CTY", None)).send().await.error(403, "forbidden");
        let mut bad = campaign("CTY", None);
        bad["ends_on"] = json!("2026-10-01");
        s.post(url).auth(&cty).json(&bad).send().await.invalid("ends_on", "screening.ends_before_start");
        let c = s.post(url).auth(&cty).json(&campaign("CTY", Some("DST"))).send().await.expect(201).clone();
        let id = c["id"].as_i64().unwrap();
        assert_eq!((c["status"].as_str(), c["place_org_code"].as_str()), (Some("open"), Some("DST")));

        // A Suzhou roster: 张伟 (checked in there), 李娜 with a mistyped ID digit (away, not
        // checked in), 王芳 (at home in the county), a stranger, and an unreadable line.
        let mut li = id_of(2).into_bytes();
        li[12] = if li[12] == b'5' { b'6' } else { b'5' };
        let li = String::from_utf8(li).unwrap();
        let csv = format!(
            "苏州高新区流动人口登记表\n姓名,公民身份号码,联系电话\n张伟,{},13820000001\n李娜,{li},\n王芳,{},\n\
             陌生人,320101199001011234,13800000000\n\"只有,一格\"\n",
            id_of(1),
            id_of(3)
        );
        // 王芳 lost contact: the roster finds her again.
        kite_store::testing::run_sql(
            &s.store,
            &format!("UPDATE members SET mobility = 'lost_contact' WHERE id = {}", w.member("TB-B1")),
        )
        .await;
        let rosters = format!("{url}/{id}/rosters");
        let up = |token: String, body: Vec<u8>| {
            s.post(&rosters)
                .auth(&token)
                .multipart(&[("source", "苏州高新区公安分局")], Some(("流动人口.csv", &body)))
                .send()
        };
        up(w.staff.clone(), csv.clone().into_bytes()).await.error(403, "forbidden");
        up(cty.clone(), Vec::new()).await.invalid("file", "screening.file_missing");
        up(cty.clone(), b"\xD0\xCF\x11\xE0 old workbook".to_vec()).await.invalid("file", "screening.file_unsupported");
        up(cty.clone(), b"  \n\n".to_vec()).await.invalid("file", "screening.file_unreadable");

        // The upload shows what was found before anything is matched: the header below the
        // title row, the columns it names, the first rows with ID numbers masked.
        let r = up(cty.clone(), csv.clone().into_bytes()).await.expect(201).clone();
        assert_eq!((r["status"].as_str(), r["source"].as_str()), (Some("uploaded"), Some("苏州高新区公安分局")));
        assert_eq!(r["mapping"]["header_line"], 2, "{r}");
        let fields: Vec<&str> =
            r["mapping"]["columns"].as_array().unwrap().iter().filter_map(|c| c["field"].as_str()).collect();
        assert_eq!(fields, ["name", "id_number", "phone"], "{r}");
        assert_eq!(r["detected"]["preview"][2][1][0], "张伟", "{r}");
        assert!(!r.to_string().contains(&id_of(1)), "ID numbers are masked in the preview: {r}");
        let rid = r["id"].as_i64().unwrap();
        let roster = format!("{rosters}/{rid}");

        // The mapping is checked before the run.
        let run = |body: Value| s.post(&format!("{roster}/run")).auth(&cty).json(&body).send();
        let phone_only = json!({"mapping": {"header_line": 2, "columns": [{"index": 2, "field": "phone"}]}});
        run(phone_only).await.invalid("mapping", "screening.mapping_incomplete");
        let far = json!({"mapping": {"header_line": 40, "columns": [{"index": 0, "field": "name"}]}});
        run(far).await.invalid("mapping", "screening.header_out_of_range");
        let wide = json!({"mapping": {"header_line": 2, "columns": [{"index": 9, "field": "name"}]}});
        run(wide).await.invalid("mapping", "screening.column_out_of_range");
        s.post(&format!("{roster}/cancel")).auth(&cty).send().await.error(409, "screening.not_running");
        assert_eq!(s.get(&roster).auth(&cty).send().await.ok()["status"], "uploaded");

        // Runs wait their turn; one waiting can be cancelled, and run again afterwards.
        let turn = s.runs.turn().await.expect("the turn");
        assert_eq!(run(json!({})).await.expect(202)["status"], "running");
        let queued = s.get(&roster).auth(&cty).send().await.ok().clone();
        assert_eq!(queued["progress"]["phase"], "queued", "{queued}");
        s.post(&format!("{roster}/run")).auth(&cty).json(&json!({})).send().await.error(409, "screening.roster_state");
        let v = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok().clone();
        let close =
            |version: &Value| s.post(&format!("{url}/{id}/close")).auth(&cty).json(&json!({"version": version})).send();
        close(&v["campaign"]["version"]).await.error(409, "screening.run_in_progress");
        s.post(&format!("{roster}/cancel")).auth(&cty).send().await.expect(202);
        drop(turn);
        assert_eq!(finished(s, &cty, &roster).await["status"], "cancelled");

        // The run: unreadable rows counted with their line, never dropped.
        assert_eq!(run(json!({})).await.expect(202)["status"], "running");
        let r = finished(s, &cty, &roster).await;
        assert_eq!(r["status"], "done", "{r}");
        assert_eq!((r["rows_read"].as_i64(), r["unreadable"].as_i64()), (Some(5), Some(1)), "{r}");
        assert_eq!(r["errors"][0]["line"], 7, "{r}");
        run(json!({})).await.error(409, "screening.roster_state");

        // The matches: each member once, with what it means for Suzhou; the stranger none.
        let all = s.get(&format!("{url}/{id}/matches")).auth(&cty).send().await.ok().clone();
        let by_name = |n: &str| all.as_array().unwrap().iter().find(|m| m["member_name"] == n).cloned();
        let zhang = by_name("张伟").expect("张伟 found");
        assert_eq!(zhang["outcome"], "known_here");
        assert_eq!(by_name("李娜").expect("李娜 found despite the typo")["outcome"], "candidate_inflow");
        assert_eq!(by_name("王芳").expect("王芳 found")["outcome"], "lost_contact_found");
        assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
        assert!(!all.to_string().contains(&id_of(1)), "member ID numbers are masked");
        assert!(zhang["explanation"]["fields"].is_array(), "{zhang}");
        // Side by side: the member's fields next to the roster's.
        assert!(zhang["member_birth_date"].is_string() && zhang["row"]["name"] == "张伟", "{zhang}");
        // Filtered and paged, with the total in a header; results by organization.
        let page = s.get(&format!("{url}/{id}/matches?outcome=candidate_inflow&limit=1")).auth(&cty).send().await;
        assert_eq!(page.headers["x-total-count"], "1");
        assert_eq!(page.ok()[0]["member_name"], "李娜");
        let rest = s.get(&format!("{url}/{id}/matches?limit=2&offset=2")).auth(&cty).send().await;
        assert_eq!(
            (rest.headers["x-total-count"].to_str().unwrap(), rest.ok().as_array().map(Vec::len)),
            ("3", Some(1))
        );
        s.get(&format!("{url}/{id}/matches?band=maybe")).auth(&cty).send().await.invalid("band", "invalid");
        let v = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok().clone();
        let counted: i64 = v["by_org"].as_array().unwrap().iter().map(|o| o["matches"].as_i64().unwrap()).sum();
        assert_eq!(counted, 3, "{v}");

        // Review: accept 李娜, reject 王芳; a stale or repeated decision is refused.
        let decide = |m: &Value, decision: &str| {
            let u = format!("{url}/{id}/matches/{}/decision", m["id"]);
            s.post(&u)
                .auth(&cty)
                .json(&json!({"decision": decision, "version": m["version"], "note": "已电话联系"}))
                .send()
        };
        let li_match = by_name("李娜").unwrap();
        decide(&li_match, "maybe").await.invalid("decision", "invalid");
        assert_eq!(decide(&li_match, "accepted").await.ok()["decision"], "accepted");
        decide(&li_match, "rejected").await.error(409, "stale_version");
        decide(&by_name("王芳").unwrap(), "accepted").await.ok();
        decide(&zhang, "rejected").await.ok();
        let open = s.get(&format!("{url}/{id}/matches?open=true")).auth(&cty).send().await.ok().clone();
        assert_eq!(open.as_array().map(Vec::len), Some(0));

        // The follow-ups: the place's list of members to contact, and the found note on the
        // lost-contact member's record for the outflow side.
        let to_contact = s.get("/api/v1/screening/candidates").auth(&d.dst_admin).send().await.ok().clone();
        let names: Vec<&str> =
            to_contact.as_array().unwrap().iter().filter_map(|f| f["match"]["member_name"].as_str()).collect();
        assert_eq!(names, ["李娜"], "{to_contact}");
        let row = &to_contact[0]["match"]["row"];
        assert!(row.get("phone").is_some() || row.get("name").is_some(), "{row}");
        assert!(row.get("id_number").is_none() && row.get("birth_date").is_none(), "contact fields only: {row}");
        assert!(to_contact[0]["match"]["explanation"].is_null());
        assert!(to_contact[0]["match"]["member_birth_date"].is_null(), "no birth date beside the masked ID");
        assert_eq!(
            s.get("/api/v1/screening/candidates").auth(&w.b1_sec).send().await.ok().as_array().map(Vec::len),
            Some(0)
        );
        s.get("/api/v1/screening/candidates").auth(&w.staff).send().await.error(403, "forbidden");
        let wang = w.member("TB-B1");
        let found = s.get(&format!("/api/v1/members/{wang}/screening-found")).auth(&w.root).send().await.ok().clone();
        assert_eq!(found[0]["campaign_name"], "2026年冬季流动党员排查", "{found}");
        s.get(&format!("/api/v1/members/{wang}/screening-found"))
            .auth(&d.dst_admin)
            .send()
            .await
            .error(404, "not_found");
        s.get(&format!("{url}/{id}")).auth(&w.ta_admin).send().await.error(403, "forbidden");

        // 李娜, contacted, checks in at Suzhou: the campaign counts her as registered since.
        let before = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok()["campaign"]["registered"].clone();
        assert_eq!(before, 0);
        let counter = json!({
            "name": "李娜", "id_number": id_of(2), "phone": "13820000002", "home_org_code": "TA-B2",
            "division_code": common::DEST_DIVISION, "address": "狮山路 90 号", "request_id": "screen-0001",
        });
        s.post("/api/v1/counter/o/DST-B1").auth(&d.dst_admin).json(&counter).send().await.expect(201);
        let after = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok()["campaign"]["registered"].clone();
        assert_eq!(after, 1);

        // A roster left `running` with no run under way (its end could not be stored) is
        // set aside as interrupted, to be run again; it does not block the close.
        let second = up(cty.clone(), csv.clone().into_bytes()).await.expect(201)["id"].as_i64().unwrap();
        let sql = format!("UPDATE screen_rosters SET status = 'running' WHERE id = {second}");
        kite_store::testing::run_sql(&s.store, &sql).await;
        let stale = format!("{rosters}/{second}");
        s.post(&format!("{stale}/cancel")).auth(&cty).send().await.error(409, "screening.not_running");
        let r = s.get(&stale).auth(&cty).send().await.ok().clone();
        assert_eq!((r["status"].as_str(), r["failure"].as_str()), (Some("failed"), Some("screening.interrupted")));

        // Closing deletes the roster files, the first rows seen on upload and the rows not
        // accepted.
        let v = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok().clone();
        assert_eq!((v["campaign"]["accepted"].as_i64(), v["rosters"][0]["kept"].as_bool()), (Some(2), Some(true)));
        let closed = close(&v["campaign"]["version"]).await;
        assert_eq!(closed.ok()["status"], "closed");
        let after = s.get(&format!("{url}/{id}")).auth(&cty).send().await.ok().clone();
        assert_eq!(after["rosters"][0]["kept"], false);
        assert!(s.get(&roster).auth(&cty).send().await.ok()["detected"].is_null());
        let left = s.get(&format!("{url}/{id}/matches")).auth(&cty).send().await.ok().clone();
        for m in left.as_array().unwrap() {
            assert_eq!(m["row"].is_null(), m["decision"] != "accepted", "{m}");
        }
        up(cty.clone(), csv.into_bytes()).await.error(409, "screening.closed");

        // A deletion a stop cut off is finished at the next start.
        let sql =
            format!("UPDATE screen_matches SET row_data = '{{}}' WHERE campaign_id = {id} AND decision = 'rejected'");
        kite_store::testing::run_sql(&s.store, &sql).await;
        s.store.admin().screening_interrupted().await.expect("the start's sweep");
        let left = s.get(&format!("{url}/{id}/matches")).auth(&cty).send().await.ok().clone();
        assert!(left.as_array().unwrap().iter().all(|m| m["decision"] == "accepted" || m["row"].is_null()), "{left}");
    })
    .await;
}
