//! Accounts over HTTP on both backends: an organization administrator creates, resets and
//! disables the accounts of its subtree only, never a system administrator's; everyone
//! changes their own password; a reset or disabled account's sessions end.

mod common;

use common::*;
use serde_json::{json, Value};

fn account(username: &str, role: &str, org: &str) -> Value {
    json!({"username": username, "password": "kite-pass-2026", "role": role, "org_code": org, "display_name": "王建国"})
}

#[tokio::test]
async fn administrators_manage_the_accounts_of_their_subtree() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let url = "/api/v1/accounts";

        // Within the subtree, of a role the administrator may grant.
        let made = s.post(url).auth(&w.ta_admin).json(&account("b2_sec", "secretary", "TA-B2")).send().await;
        let made = made.expect(201).clone();
        assert_eq!((made["role"].as_str(), made["org_code"].as_str()), (Some("secretary"), Some("TA-B2")));
        assert!(made.get("password_hash").is_none(), "{made}");
        s.post(url)
            .auth(&w.ta_admin)
            .json(&account("tb_sec", "secretary", "TB-B1"))
            .send()
            .await
            .error(403, "forbidden");
        s.post(url).auth(&w.ta_admin).json(&account("boss", "admin", "TA")).send().await.error(403, "forbidden");
        s.post(url).auth(&w.b1_sec).json(&account("x_sec", "secretary", "TA-B1")).send().await.error(403, "forbidden");
        s.post(url)
            .auth(&w.ta_admin)
            .json(&account("b2_sec", "secretary", "TA-B2"))
            .send()
            .await
            .error(409, "user.username.duplicate");
        let mut short = account("b2_two", "secretary", "TA-B2");
        short["password"] = json!("short");
        s.post(url).auth(&w.ta_admin).json(&short).send().await.invalid("password", "user.password.too_short");
        s.post(url)
            .auth(&w.ta_admin)
            .json(&account("b2_three", "chief", "TA-B2"))
            .send()
            .await
            .invalid("role", "invalid");

        // A member's account belongs where the member is: one of another region is refused
        // whatever organization the request names.
        let tb_member = w.member("TB-B1");
        let mut cross = account("tb_m", "member", "TA");
        cross["member_id"] = json!(tb_member);
        s.post(url).auth(&w.ta_admin).json(&cross).send().await.invalid("org", "user.member.org");
        cross["org_code"] = Value::Null;
        s.post(url).auth(&w.ta_admin).json(&cross).send().await.error(403, "forbidden");
        let mut own_member = account("ta_m", "member", "");
        (own_member["org_code"], own_member["member_id"]) = (Value::Null, json!(w.member("TA-B1")));
        assert_eq!(s.post(url).auth(&w.ta_admin).json(&own_member).send().await.expect(201)["role"], "member");
        let mut sec_member = account("sec_m", "secretary", "TA-B1");
        sec_member["member_id"] = json!(tb_member);
        s.post(url).auth(&w.ta_admin).json(&sec_member).send().await.invalid("member_id", "user.member.role");
        s.post(url)
            .auth(&w.ta_admin)
            .json(&account("x_sec", "secretary", "NOWHERE"))
            .send()
            .await
            .invalid("org", "org.unknown");
        let mut nul = account("nul_sec", "secretary", "TA-B1");
        nul["display_name"] = json!("王\u{0}建国");
        s.post(url).auth(&w.ta_admin).json(&nul).send().await.client_error();

        // Administrators of organizations below, not peers at one's own organization.
        s.post(url).auth(&w.ta_admin).json(&account("b1_admin", "org_admin", "TA-B1")).send().await.expect(201);
        s.post(url).auth(&w.ta_admin).json(&account("ta_peer", "org_admin", "TA")).send().await.error(403, "forbidden");
        let peer = s.post(url).auth(&w.root).json(&account("ta_peer", "org_admin", "TA")).send().await;
        let peer = peer.expect(201)["id"].as_i64().unwrap();
        let take_over = json!({"password": "taken-over-1"});
        s.put(&format!("{url}/{peer}/password"))
            .auth(&w.ta_admin)
            .json(&take_over)
            .send()
            .await
            .error(403, "forbidden");

        // The list: the subtree's accounts only.
        let names = |v: &Value| -> Vec<String> {
            v.as_array().unwrap().iter().filter_map(|u| u["username"].as_str().map(str::to_string)).collect()
        };
        let mine = names(s.get(url).auth(&w.ta_admin).send().await.ok());
        assert!(mine.contains(&"b2_sec".to_string()) && mine.contains(&"b1_sec".to_string()), "{mine:?}");
        assert!(!mine.contains(&"root".to_string()), "{mine:?}");
        s.get(url).auth(&w.b1_sec).send().await.error(403, "forbidden");

        // The new account logs in; a reset ends its sessions and the new password works.
        let id = made["id"].as_i64().unwrap();
        let login = |password: &str| s.post("/api/v1/login").json(&json!({"username": "b2_sec", "password": password}));
        let token = login("kite-pass-2026").send().await.ok()["token"].as_str().unwrap().to_string();
        // The administrator set the password: nothing else until it is changed.
        assert_eq!(s.get("/api/v1/me").auth(&token).send().await.ok()["must_change_password"], true);
        s.get("/api/v1/members").auth(&token).send().await.error(403, "password_change_required");
        let reset = format!("{url}/{id}/password");
        s.put(&reset)
            .auth(&w.ta_admin)
            .json(&json!({"password": "1234"}))
            .send()
            .await
            .invalid("password", "user.password.too_short");
        s.put(&reset).auth(&w.ta_admin).json(&json!({"password": "new-pass-2026"})).send().await.ok();
        s.get("/api/v1/me").auth(&token).send().await.error(401, "unauthorized");
        login("kite-pass-2026").send().await.error(401, "bad_credentials");
        let token = login("new-pass-2026").send().await.ok()["token"].as_str().unwrap().to_string();

        // Disabled: its sessions end, it cannot log in; enabled again, it can.
        let status = format!("{url}/{id}/status");
        assert_eq!(
            s.put(&status).auth(&w.ta_admin).json(&json!({"disabled": true})).send().await.ok()["disabled"],
            true
        );
        s.get("/api/v1/me").auth(&token).send().await.error(401, "unauthorized");
        login("new-pass-2026").send().await.error(401, "bad_credentials");
        s.put(&status).auth(&w.ta_admin).json(&json!({"disabled": false})).send().await.ok();
        let token = login("new-pass-2026").send().await.ok()["token"].as_str().unwrap().to_string();

        // Not the administrator's own, nor one above it or outside its subtree.
        let me = s.get("/api/v1/me").auth(&w.ta_admin).send().await.ok()["id"].as_i64().unwrap();
        s.put(&format!("{url}/{me}/status"))
            .auth(&w.ta_admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .error(409, "user.self");
        // One's own password only with the current one.
        s.put(&format!("{url}/{me}/password")).auth(&w.ta_admin).json(&take_over).send().await.error(409, "user.self");
        let root = s.get("/api/v1/me").auth(&w.root).send().await.ok()["id"].as_i64().unwrap();
        s.put(&format!("{url}/{root}/password"))
            .auth(&w.ta_admin)
            .json(&json!({"password": "taken-over-1"}))
            .send()
            .await
            .error(403, "forbidden");
        let other = s.post(url).auth(&w.root).json(&account("tb_sec", "secretary", "TB-B1")).send().await;
        let other = other.expect(201)["id"].as_i64().unwrap();
        s.put(&format!("{url}/{other}/status"))
            .auth(&w.ta_admin)
            .json(&json!({"disabled": true}))
            .send()
            .await
            .error(403, "forbidden");

        // Everyone changes their own password with the current one; other sessions end.
        let own = "/api/v1/me/password";
        let second = login("new-pass-2026").send().await.ok()["token"].as_str().unwrap().to_string();
        let wrong = json!({"current_password": "nope", "new_password": "mine-2026-x"});
        s.put(own).auth(&token).json(&wrong).send().await.invalid("current_password", "user.password.wrong");
        let right = json!({"current_password": "new-pass-2026", "new_password": "mine-2026-x"});
        s.put(own).auth(&token).json(&right).send().await.expect(204);
        assert_eq!(s.get("/api/v1/me").auth(&token).send().await.ok()["must_change_password"], false);
        s.get("/api/v1/members").auth(&token).send().await.ok();
        s.get("/api/v1/me").auth(&second).send().await.error(401, "unauthorized");
        login("mine-2026-x").send().await.ok();
        // Guessing the current password is throttled as logins are.
        for _ in 0..5 {
            s.put(own).auth(&token).json(&wrong).send().await.invalid("current_password", "user.password.wrong");
        }
        s.put(own).auth(&token).json(&right).send().await.error(429, "throttled");

        // Audited.
        let audit = s.audit().await;
        assert!(audit.iter().any(|a| a.action == "user.password_change" && a.outcome == "failed"));
        for action in ["user.create", "user.password_reset", "user.disable", "user.enable", "user.password_change"] {
            assert!(audit.iter().any(|a| a.action == action && a.outcome == "ok"), "{action} not audited");
        }
        assert!(audit.iter().any(|a| a.action == "account.manage" && a.outcome == "denied"));
    })
    .await;
}
