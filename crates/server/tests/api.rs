//! The JSON API over HTTP, on SQLite and on PostgreSQL: a real server on a local port,
//! driven with reqwest. Every test body runs once per backend (see
//! [`common::on_each_backend`]); a failure names the backend it happened on.
//!
//! Each test asserts both the status and the body; every refusal is checked for the
//! API's error shape `{"error": {"code", "message", "fields"?}}` (see [`Reply::error`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{Duration, Utc};
use kite_domain::Role;
use kite_server::auth;
use serde_json::{json, Value};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The routes the API router serves (`crates/server/src/api/mod.rs`), with whether
/// they are open without credentials.
const ROUTES: [(&str, &str, bool); 82] = [
    ("GET", "/healthz", true),
    ("POST", "/api/v1/login", true),
    ("POST", "/api/v1/logout", false),
    ("GET", "/api/v1/accounts", false),
    ("POST", "/api/v1/accounts", false),
    ("PUT", "/api/v1/accounts/{id}/password", false),
    ("PUT", "/api/v1/accounts/{id}/status", false),
    ("PUT", "/api/v1/me/password", false),
    ("GET", "/api/v1/me", false),
    ("GET", "/api/v1/overview", false),
    ("GET", "/api/v1/orgs", false),
    ("POST", "/api/v1/orgs", false),
    ("GET", "/api/v1/orgs/{code}", false),
    ("PUT", "/api/v1/orgs/{code}", false),
    ("GET", "/api/v1/orgs/{code}/children", false),
    ("POST", "/api/v1/orgs/{code}/move", false),
    ("GET", "/api/v1/org-search", false),
    ("GET", "/api/v1/members", false),
    ("POST", "/api/v1/members", false),
    ("GET", "/api/v1/members/{id}", false),
    ("PUT", "/api/v1/members/{id}", false),
    ("GET", "/api/v1/members/{id}/flows", false),
    ("POST", "/api/v1/members/{id}/flows", false),
    ("GET", "/api/v1/members/{id}/audit", false),
    ("GET", "/api/v1/divisions", true),
    ("GET", "/api/v1/checkin/{kind}/{code}", true),
    ("POST", "/api/v1/checkin/{kind}/{code}", true),
    ("POST", "/api/v1/checkin/{kind}/{code}/code", true),
    ("GET", "/api/v1/checkin-suggestions", true),
    ("GET", "/api/v1/checkin-orgs", true),
    ("POST", "/api/v1/counter/{kind}/{code}", false),
    ("GET", "/api/v1/checkins", false),
    ("GET", "/api/v1/checkins/{id}", false),
    ("POST", "/api/v1/checkins/{id}/confirm", false),
    ("POST", "/api/v1/checkins/{id}/reject", false),
    ("GET", "/api/v1/outbox", false),
    ("GET", "/api/v1/lists/{side}", false),
    ("GET", "/api/v1/lists/{side}/export", false),
    ("GET", "/api/v1/flows/{id}", false),
    ("POST", "/api/v1/flows/{id}/return", false),
    ("POST", "/api/v1/flows/{id}/evaluations", false),
    ("GET", "/api/v1/members/{id}/evaluations", false),
    ("GET", "/api/v1/agreements", false),
    ("POST", "/api/v1/agreements", false),
    ("GET", "/api/v1/agreements/{id}", false),
    ("PUT", "/api/v1/agreements/{id}", false),
    ("POST", "/api/v1/agreements/{id}/files", false),
    ("GET", "/api/v1/agreements/{id}/files/{file_id}", false),
    ("DELETE", "/api/v1/agreements/{id}/files/{file_id}", false),
    ("GET", "/api/v1/orgs/{code}/partners", false),
    ("POST", "/api/v1/service-points", false),
    ("GET", "/api/v1/service-points/{code}", false),
    ("PUT", "/api/v1/service-points/{code}", false),
    ("PUT", "/api/v1/orgs/{code}/transfer-approval", false),
    ("GET", "/api/v1/transfers", false),
    ("POST", "/api/v1/transfers", false),
    ("GET", "/api/v1/transfers/{id}", false),
    ("POST", "/api/v1/transfers/{id}/steps", false),
    ("GET", "/api/v1/certificates", false),
    ("POST", "/api/v1/certificates", false),
    ("GET", "/api/v1/certificates/{id}", false),
    ("POST", "/api/v1/certificates/{id}/steps", false),
    ("GET", "/api/v1/certificates/{id}/photo", false),
    ("PUT", "/api/v1/certificates/{id}/photo", false),
    ("GET", "/api/v1/members/{id}/certificate-draft", false),
    ("GET", "/api/v1/members/{id}/certificates", false),
    ("POST", "/api/v1/checkins/{id}/certificate", false),
    ("GET", "/api/v1/public/certificates/{number}", true),
    ("GET", "/api/v1/arrivals", false),
    ("POST", "/api/v1/arrivals", false),
    ("GET", "/api/v1/screening/campaigns", false),
    ("POST", "/api/v1/screening/campaigns", false),
    ("GET", "/api/v1/screening/campaigns/{id}", false),
    ("POST", "/api/v1/screening/campaigns/{id}/rosters", false),
    ("GET", "/api/v1/screening/campaigns/{id}/rosters/{roster_id}", false),
    ("POST", "/api/v1/screening/campaigns/{id}/rosters/{roster_id}/run", false),
    ("POST", "/api/v1/screening/campaigns/{id}/rosters/{roster_id}/cancel", false),
    ("GET", "/api/v1/screening/campaigns/{id}/matches", false),
    ("POST", "/api/v1/screening/campaigns/{id}/matches/{match_id}/decision", false),
    ("POST", "/api/v1/screening/campaigns/{id}/close", false),
    ("GET", "/api/v1/screening/candidates", false),
    ("GET", "/api/v1/members/{id}/screening-found", false),
];

/// A route's path with its parameters filled in.
fn concrete(path: &str, member: i64) -> String {
    path.replace("{kind}", "o")
        .replace("{side}", "outflow")
        .replace("{code}", "TA")
        .replace("{id}", &member.to_string())
        .replace("{file_id}", "1")
        .replace("{number}", "TA-2026-00001")
        .replace("{match_id}", "1")
}

fn method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).expect("an HTTP method")
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"].as_array().expect("a page of items").iter().map(|m| m["id"].as_i64().expect("an id")).collect()
}

fn names(page: &Value) -> BTreeSet<String> {
    page["items"].as_array().expect("items").iter().map(|m| m["name"].as_str().expect("a name").to_string()).collect()
}

fn codes(orgs: &Value) -> Vec<String> {
    orgs.as_array().expect("a list of organizations").iter().map(|o| o["code"].as_str().unwrap().to_string()).collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Follows `next_cursor` from `first` (a query string without `cursor`) to the last
/// page and returns every item's id in order; each page holds at most `limit` items.
async fn all_pages(s: &Server, token: &str, first: &str, limit: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut url = format!("/api/v1/members?{first}&limit={limit}");
    for _ in 0..100 {
        let page = s.get(&url).auth(token).send().await;
        let page = page.ok();
        let items = ids(page);
        assert!(items.len() <= limit, "{url}: {} items for limit {limit}", items.len());
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page["items"].as_array().unwrap().is_empty(), "{url}: an empty page with a next cursor");
                url = format!("/api/v1/members?{first}&limit={limit}&cursor={c}");
            }
            None => return seen,
        }
    }
    panic!("{first}: more than 100 pages");
}

/// The catalogue messages, to compare answers with.
fn catalogue(lang: &str) -> HashMap<String, String> {
    let src = match lang {
        "en" => include_str!("../locales/en.json"),
        _ => include_str!("../locales/zh-CN.json"),
    };
    serde_json::from_str(src).expect("catalogue is JSON")
}

/// The CSRF token of a browser session, as the pages carry it (in every form).
async fn csrf_of_page(s: &Server, cookie: &str) -> String {
    let page = s.get("/").cookie(cookie).send().await;
    assert_eq!(page.status, 200, "the overview page: {}", page.text);
    let marker = r#"name="csrf" value=""#;
    let start =
        page.text.find(marker).unwrap_or_else(|| panic!("no CSRF field in the page: {}", page.text)) + marker.len();
    let token = &page.text[start..];
    token[..token.find('"').expect("closing quote")].to_string()
}

/// Logs in through the web form and returns the `name=value` of the session cookie.
async fn browser_login(s: &Server, username: &str) -> String {
    let r = s.post("/login").form(&[("username", username), ("password", PASSWORD), ("next", "/")]).send().await;
    assert_eq!(r.status, 303, "form login: {}", r.text);
    let cookie = r.set_cookie(auth::SESSION_COOKIE).expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// System routes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_and_divisions_answer_without_credentials() {
    on_each_backend(|s| async move {
        assert_eq!(s.get("/healthz").send().await.ok(), &json!({"status": "ok"}));

        let provinces = s.get("/api/v1/divisions").send().await;
        let provinces = provinces.ok().as_array().expect("a list").clone();
        assert!(provinces.iter().any(|d| d["code"] == "32" && d["name"] == "江苏省"), "{provinces:?}");
        assert!(provinces.len() >= 31, "{} provinces", provinces.len());

        let counties = s.get("/api/v1/divisions?parent=3207").send().await;
        assert!(counties.ok().as_array().unwrap().iter().any(|d| d["code"] == COUNTY && d["name"] == "灌南县"));

        let found = s.get("/api/v1/divisions?q=%E7%81%8C%E5%8D%97").send().await; // 灌南
        assert_eq!(found.ok()[0]["code"], COUNTY, "{}", found.text);

        let none = s.get("/api/v1/divisions?parent=999999").send().await;
        assert_eq!(none.ok(), &json!([]));
    })
    .await;
}

// ---------------------------------------------------------------------------
// Logging in with a bearer token
// ---------------------------------------------------------------------------

#[tokio::test]
async fn login_gives_a_bearer_token_that_logout_ends() {
    on_each_backend(|s| async move {
        s.user("alice", Role::Admin, None, None).await;

        let r = s.login("alice", PASSWORD).await;
        let body = r.ok();
        let token = body["token"].as_str().expect("a token").to_string();
        assert!(token.len() >= 32, "token {token:?}");
        assert_eq!(body["expires_in_seconds"], auth::API_TOKEN.num_seconds());
        assert_eq!(body["user"]["username"], "alice");
        assert_eq!(body["user"]["role"], "admin");
        assert!(!r.text.contains("argon2") && !r.text.contains(PASSWORD), "secrets leak: {}", r.text);

        // The user name is trimmed; a second login is a second, independent token.
        let second = s.login("  alice ", PASSWORD).await.ok()["token"].as_str().unwrap().to_string();
        assert_ne!(second, token);

        let me = s.get("/api/v1/me").auth(&token).send().await;
        assert_eq!(me.ok()["username"], "alice");
        assert_eq!(me.json["role"], "admin");
        assert!(me.json.get("password_hash").is_none(), "{}", me.text);

        s.get("/api/v1/me").send().await.error(401, "unauthorized");
        s.get("/api/v1/me").auth("not-a-token").send().await.error(401, "unauthorized");
        s.get("/api/v1/me").header("authorization", &format!("Basic {token}")).send().await.error(401, "unauthorized");

        let out = s.post("/api/v1/logout").auth(&token).send().await;
        assert_eq!(out.status, 204, "{}", out.text);
        s.get("/api/v1/me").auth(&token).send().await.error(401, "unauthorized");
        s.post("/api/v1/logout").auth(&token).send().await.error(401, "unauthorized");
        // Only the session used ends.
        assert_eq!(s.get("/api/v1/me").auth(&second).send().await.ok()["username"], "alice");

        let audit = s.audit().await;
        let logins: Vec<&str> = audit
            .iter()
            .filter(|e| e.action == "auth.login" && e.username.as_deref() == Some("alice"))
            .map(|e| e.outcome.as_str())
            .collect();
        assert_eq!(logins, ["ok", "ok"], "{audit:?}");
        let login = audit.iter().find(|e| e.action == "auth.login").expect("logins are audited");
        assert_eq!(login.client.as_deref(), Some("127.0.0.1"));
        assert_eq!(login.user_id, body["user"]["id"].as_i64());
    })
    .await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_alike() {
    on_each_backend(|s| async move {
        s.user("alice", Role::Admin, None, None).await;
        let wrong = s.login("alice", "not the password").await;
        let e = wrong.error(401, "bad_credentials").clone();
        assert!(wrong.json.get("token").is_none());
        // An unknown user gets exactly the same answer: names do not leak.
        let unknown = s.login("nobody", PASSWORD).await;
        assert_eq!(unknown.error(401, "bad_credentials"), &e);
        // Passwords are case-sensitive and not trimmed.
        s.login("alice", &PASSWORD.to_uppercase()).await.error(401, "bad_credentials");
        s.login("alice", &format!(" {PASSWORD}")).await.error(401, "bad_credentials");
        s.login("alice", "").await.error(401, "bad_credentials");
        // A missing field is malformed input, not a failed login.
        s.post("/api/v1/login").json(&json!({"username": "alice"})).send().await.error(400, "invalid_json");
        s.post("/api/v1/login").raw_json("{\"username\":").send().await.error(400, "invalid_json");

        let audit = s.audit().await;
        let failed = |name: &str| {
            audit
                .iter()
                .filter(|e| e.action == "auth.login" && e.outcome == "failed" && e.username.as_deref() == Some(name))
                .count()
        };
        assert_eq!((failed("alice"), failed("nobody")), (4, 1), "{audit:?}");
    })
    .await;
}

#[tokio::test]
async fn repeated_failures_lock_the_user_name() {
    on_each_backend(|s| async move {
        s.user("alice", Role::Admin, None, None).await;
        s.user("bob", Role::Admin, None, None).await;
        // A success clears earlier failures.
        for _ in 0..4 {
            s.login("alice", "guess").await.error(401, "bad_credentials");
        }
        s.login("alice", PASSWORD).await.ok();
        // Five failures in a row: the fifth is still answered as a failure...
        for _ in 0..5 {
            s.login("alice", "guess").await.error(401, "bad_credentials");
        }
        // ...and then the user name is locked, even with the right password.
        s.login("alice", PASSWORD).await.error(429, "throttled");
        s.login("alice", "guess").await.error(429, "throttled");
        // Other user names from the same address are not (20 failures lock an address).
        s.login("bob", PASSWORD).await.ok();

        let audit = s.audit().await;
        let alice: Vec<&str> = audit
            .iter()
            .rev()
            .filter(|e| e.action == "auth.login" && e.username.as_deref() == Some("alice"))
            .map(|e| e.outcome.as_str())
            .collect();
        let mut expected = vec!["failed"; 4];
        expected.push("ok");
        expected.extend(["failed"; 5]);
        expected.extend(["throttled"; 2]);
        assert_eq!(alice, expected);
    })
    .await;
}

#[tokio::test]
async fn repeated_failures_from_one_address_lock_every_user_name() {
    on_each_backend(|s| async move {
        s.user("alice", Role::Admin, None, None).await;
        for i in 0..20 {
            s.login(&format!("guess{i}"), "guess").await.error(401, "bad_credentials");
        }
        s.login("alice", PASSWORD).await.error(429, "throttled");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Browser sessions and CSRF
// ---------------------------------------------------------------------------

#[tokio::test]
async fn browser_sessions_need_the_csrf_token_for_unsafe_api_calls() {
    on_each_backend(|s| async move {
        s.user("root", Role::Admin, None, None).await;

        let r = s.post("/login").form(&[("username", "root"), ("password", PASSWORD), ("next", "/orgs")]).send().await;
        assert_eq!(r.status, 303, "{}", r.text);
        assert_eq!(r.headers["location"], "/orgs");
        let set = r.set_cookie(auth::SESSION_COOKIE).expect("a session cookie");
        let attrs: Vec<String> = set.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
        for want in ["httponly", "samesite=strict", "path=/"] {
            assert!(attrs.iter().any(|a| a == want), "cookie {set:?} lacks {want}");
        }
        assert!(attrs.iter().any(|a| a.starts_with("max-age=")), "cookie {set:?} has no lifetime");
        let cookie = set.split(';').next().unwrap().to_string();

        // A failed form login sets no cookie; an off-site `next` is not followed.
        let bad = s.post("/login").form(&[("username", "root"), ("password", "x"), ("next", "/")]).send().await;
        assert_eq!(bad.status, 401);
        assert!(bad.set_cookie(auth::SESSION_COOKIE).is_none());
        let off = s
            .post("/login")
            .form(&[("username", "root"), ("password", PASSWORD), ("next", "//evil.example/")])
            .send()
            .await;
        assert_eq!(off.headers["location"], "/");

        // Reads need no token.
        assert_eq!(s.get("/api/v1/me").cookie(&cookie).send().await.ok()["username"], "root");

        // Changes do.
        let body = org_body("CK", None, "浏览器建的组织", "committee");
        s.post("/api/v1/orgs").cookie(&cookie).json(&body).send().await.error(403, "csrf");
        s.post("/api/v1/orgs")
            .cookie(&cookie)
            .header("x-csrf-token", "forged")
            .json(&body)
            .send()
            .await
            .error(403, "csrf");
        s.post("/api/v1/orgs").cookie(&cookie).header("x-csrf-token", "").json(&body).send().await.error(403, "csrf");
        s.get("/api/v1/orgs/CK").cookie(&cookie).send().await.error(404, "not_found");

        let csrf = csrf_of_page(&s, &cookie).await;
        // Scripts read the same token from /me; bearer clients have none to send.
        assert_eq!(s.get("/api/v1/me").cookie(&cookie).send().await.ok()["csrf_token"], csrf.as_str());
        let bearer = s.user_token("api-client", Role::Admin, None).await;
        assert!(s.get("/api/v1/me").auth(&bearer).send().await.ok().get("csrf_token").is_none());
        // Another session's token does not fit this one.
        let other = browser_login(&s, "root").await;
        let other_csrf = csrf_of_page(&s, &other).await;
        assert_ne!(csrf, other_csrf);
        s.post("/api/v1/orgs")
            .cookie(&cookie)
            .header("x-csrf-token", &other_csrf)
            .json(&body)
            .send()
            .await
            .error(403, "csrf");

        let created = s.post("/api/v1/orgs").cookie(&cookie).header("x-csrf-token", &csrf).json(&body).send().await;
        assert_eq!(created.expect(201)["code"], "CK");

        // Logging out through the API is a change too.
        s.post("/api/v1/logout").cookie(&cookie).send().await.error(403, "csrf");
        let out = s.post("/api/v1/logout").cookie(&cookie).header("x-csrf-token", &csrf).send().await;
        assert_eq!(out.status, 204, "{}", out.text);
        s.get("/api/v1/me").cookie(&cookie).send().await.error(401, "unauthorized");
        assert_eq!(s.get("/api/v1/me").cookie(&other).send().await.ok()["username"], "root");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_administrator_builds_the_tree() {
    on_each_backend(|s| async move {
        let root = s.user_token("root", Role::Admin, None).await;
        let created =
            s.post("/api/v1/orgs").auth(&root).json(&org_body("GN", None, "灌南县委", "committee")).send().await;
        let gn = created.expect(201).clone();
        assert_eq!(gn["code"], "GN");
        assert_eq!(gn["parent_code"], Value::Null);
        assert_eq!(gn["name"], "灌南县委");
        assert_eq!(gn["level"], "committee");
        assert_eq!(gn["kind"], "ordinary");
        assert_eq!(gn["division_code"], COUNTY);
        assert_eq!(gn["phone"], "051883212345");
        assert_eq!(gn["status"], "active");
        assert_eq!(gn["child_count"], 0);
        assert!(gn["version"].is_i64() && gn.get("path").is_none(), "{gn}");

        for (code, level) in [("GN-B", "branch"), ("GN-A", "general_branch")] {
            let mut body = org_body(code, Some("GN"), &format!("{code} 党组织"), level);
            body["kind"] = json!("market");
            let c = s.post("/api/v1/orgs").auth(&root).json(&body).send().await;
            assert_eq!(c.expect(201)["parent_code"], "GN");
            assert_eq!(c.json["kind"], "market");
        }
        // A province-level division code (padded form) is a real division too.
        let mut body = org_body("GN-A-1", Some("GN-A"), "省直单位", "branch");
        body["division_code"] = json!(PROVINCE);
        s.post("/api/v1/orgs").auth(&root).json(&body).send().await.expect(201);

        let got = s.get("/api/v1/orgs/GN").auth(&root).send().await;
        assert_eq!(got.ok()["child_count"], 2);
        assert_eq!(got.json["name"], "灌南县委");
        let children = s.get("/api/v1/orgs/GN/children").auth(&root).send().await;
        assert_eq!(codes(children.ok()), ["GN-A", "GN-B"]);
        assert_eq!(codes(s.get("/api/v1/orgs/GN-A/children").auth(&root).send().await.ok()), ["GN-A-1"]);
        assert_eq!(codes(s.get("/api/v1/orgs").auth(&root).send().await.ok()), ["GN"]);
        let found = s.get("/api/v1/org-search?q=gn-a").auth(&root).send().await;
        assert_eq!(codes(found.ok()), ["GN-A", "GN-A-1"]);

        // Refusals.
        let dup = s.post("/api/v1/orgs").auth(&root).json(&org_body("GN-A", Some("GN"), "重复", "branch")).send().await;
        dup.error(409, "org.code.duplicate");
        let mut bad = org_body("GN-C", Some("GN"), "无效区划", "branch");
        bad["division_code"] = json!("999999");
        s.post("/api/v1/orgs").auth(&root).json(&bad).send().await.invalid("division_code", "unknown");
        bad["division_code"] = json!("");
        s.post("/api/v1/orgs").auth(&root).json(&bad).send().await.invalid("division_code", "required");
        bad["division_code"] = json!("32072");
        s.post("/api/v1/orgs").auth(&root).json(&bad).send().await.invalid("division_code", "unknown");
        let bad_code = org_body("有中文", Some("GN"), "代码无效", "branch");
        s.post("/api/v1/orgs").auth(&root).json(&bad_code).send().await.invalid("code", "org.code.invalid");
        let orphan = org_body("GN-X", Some("NOPE"), "无上级", "branch");
        s.post("/api/v1/orgs").auth(&root).json(&orphan).send().await.invalid("parent_code", "org.parent.unknown");
        let empty = s.post("/api/v1/orgs").auth(&root).json(&json!({})).send().await;
        let fields = &empty.invalid("name", "required")["fields"];
        for (field, code) in [("level", "invalid"), ("kind", "invalid"), ("division_code", "required")] {
            assert!(fields.as_array().unwrap().iter().any(|f| f["field"] == field && f["code"] == code), "{fields}");
        }
        s.get("/api/v1/orgs/NOPE").auth(&root).send().await.error(404, "not_found");
        s.get("/api/v1/orgs/NOPE/children").auth(&root).send().await.error(404, "not_found");
        // Nothing refused was created.
        assert_eq!(codes(s.get("/api/v1/orgs/GN/children").auth(&root).send().await.ok()), ["GN-A", "GN-B"]);
    })
    .await;
}

#[tokio::test]
async fn organization_updates_need_the_current_version() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let ta = s.get("/api/v1/orgs/TA").auth(&w.root).send().await.ok().clone();
        let v = ta["version"].as_i64().unwrap();

        let mut body = org_body("TA", None, "新安镇党委（更名）", "committee");
        body["version"] = json!(v);
        let updated = s.put("/api/v1/orgs/TA").auth(&w.root).json(&body).send().await;
        assert_eq!(updated.ok()["name"], "新安镇党委（更名）");
        assert_eq!(updated.json["level"], "committee");
        assert_eq!(updated.json["version"], v + 1);
        assert_eq!(updated.json["parent_code"], "CTY", "an update does not move");

        body["name"] = json!("另一个人的修改");
        s.put("/api/v1/orgs/TA").auth(&w.root).json(&body).send().await.error(409, "stale_version");
        assert_eq!(s.get("/api/v1/orgs/TA").auth(&w.root).send().await.ok()["name"], "新安镇党委（更名）");

        body.as_object_mut().unwrap().remove("version");
        s.put("/api/v1/orgs/TA").auth(&w.root).json(&body).send().await.invalid("version", "required");
        body["version"] = json!(v + 1);
        body["status"] = json!("zombie");
        s.put("/api/v1/orgs/TA").auth(&w.root).json(&body).send().await.invalid("status", "invalid");
        body["status"] = json!("active");
        body["division_code"] = json!("000000");
        s.put("/api/v1/orgs/TA").auth(&w.root).json(&body).send().await.invalid("division_code", "unknown");
        s.put("/api/v1/orgs/NOPE").auth(&w.root).json(&json!({"version": 1})).send().await.error(400, "invalid_input");
        let mut nope = org_body("NOPE", None, "不存在", "branch");
        nope["version"] = json!(1);
        s.put("/api/v1/orgs/NOPE").auth(&w.root).json(&nope).send().await.error(404, "not_found");

        // A dissolved organization takes no members and no children.
        let b2 = s.get("/api/v1/orgs/TA-B2").auth(&w.root).send().await.ok().clone();
        let mut dissolve = org_body("TA-B2", None, "新安镇第二支部", "branch");
        dissolve["status"] = json!("dissolved");
        dissolve["version"] = b2["version"].clone();
        let d = s.put("/api/v1/orgs/TA-B2").auth(&w.root).json(&dissolve).send().await;
        assert_eq!(d.ok()["status"], "dissolved");
        let m = s.post("/api/v1/members").auth(&w.root).json(&member_body("赵六", "TA-B2", 100)).send().await;
        m.invalid("org_code", "org.dissolved");
        let child = org_body("TA-B2-1", Some("TA-B2"), "小组", "group");
        s.post("/api/v1/orgs")
            .auth(&w.root)
            .json(&child)
            .send()
            .await
            .invalid("parent_code", "org.move.parent_dissolved");
    })
    .await;
}

#[tokio::test]
async fn organizations_move_with_their_subtree_but_never_under_themselves() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let version = |o: &Value| o["version"].as_i64().unwrap();
        let ta = s.get("/api/v1/orgs/TA").auth(&w.root).send().await.ok().clone();

        // Under its own child, and under itself: a cycle, refused as invalid input.
        let cyc = json!({"parent_code": "TA-B1", "version": version(&ta)});
        let r = s.post("/api/v1/orgs/TA/move").auth(&w.root).json(&cyc).send().await;
        r.invalid("parent_code", "org.move.cycle");
        let own = json!({"parent_code": "TA", "version": version(&ta)});
        s.post("/api/v1/orgs/TA/move").auth(&w.root).json(&own).send().await.invalid("parent_code", "org.move.cycle");
        let unknown = json!({"parent_code": "NOPE", "version": version(&ta)});
        let r = s.post("/api/v1/orgs/TA/move").auth(&w.root).json(&unknown).send().await;
        r.invalid("parent_code", "org.parent.unknown");
        s.post("/api/v1/orgs/TA/move")
            .auth(&w.root)
            .json(&json!({"parent_code": "TB"}))
            .send()
            .await
            .error(400, "invalid_json");
        assert_eq!(s.get("/api/v1/orgs/TA").auth(&w.root).send().await.ok(), &ta, "refused moves change nothing");

        // A real move carries the subtree's members along.
        let b2 = s.get("/api/v1/orgs/TA-B2").auth(&w.root).send().await.ok().clone();
        let stale = json!({"parent_code": "TB", "version": version(&b2) - 1});
        s.post("/api/v1/orgs/TA-B2/move").auth(&w.root).json(&stale).send().await.error(409, "stale_version");
        let mv = json!({"parent_code": "TB", "version": version(&b2)});
        let moved = s.post("/api/v1/orgs/TA-B2/move").auth(&w.root).json(&mv).send().await;
        assert_eq!(moved.ok()["parent_code"], "TB");
        assert_eq!(moved.json["version"], version(&b2) + 1);
        assert_eq!(codes(s.get("/api/v1/orgs/TB/children").auth(&w.root).send().await.ok()), ["TA-B2", "TB-B1"]);
        assert_eq!(codes(s.get("/api/v1/orgs/TA/children").auth(&w.root).send().await.ok()), ["TA-B1"]);
        let in_tb = s.get("/api/v1/members?org=TB").auth(&w.root).send().await;
        assert_eq!(names(in_tb.ok()), set(["李娜", "王芳"]));
        let ov = s.get("/api/v1/overview?org=TB").auth(&w.root).send().await;
        assert_eq!(ov.ok(), &json!({"organizations": 3, "members": 2, "mobile_out": 0, "mobile_in": 0}));
        // TA's administrator no longer reaches the moved member.
        let b2_member = w.member("TA-B2");
        s.get(&format!("/api/v1/members/{b2_member}")).auth(&w.ta_admin).send().await.error(404, "not_found");
        assert_eq!(names(s.get("/api/v1/members").auth(&w.ta_admin).send().await.ok()), set(["张伟"]));
    })
    .await;
}

// ---------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------

#[tokio::test]
async fn members_are_created_and_validated() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let mut body = member_body("赵 六", "TA-B1", 100);
        body["phone"] = json!("+86 139-1000-0100");
        let created = s.post("/api/v1/members").auth(&w.root).json(&body).send().await;
        let m = created.expect(201).clone();
        assert!(m["id"].as_i64().is_some_and(|id| id > 0));
        assert_eq!(m["name"], "赵 六");
        assert_eq!(m["id_number"], id_of(100));
        assert_eq!(m["phone"], "13910000100");
        assert_eq!(m["org_code"], "TA-B1");
        assert_eq!(m["org_name"], "新安镇第一支部");
        assert_eq!(m["mobility"], "resident");
        assert_eq!(m["gender"], gender(100).code());
        assert_eq!(m["birth_date"], birth(100).format("%Y-%m-%d").to_string());
        assert!(m.get("org_path").is_none(), "{m}");

        // A wrong check digit.
        let mut bad = member_body("钱七", "TA-B1", 101);
        bad["id_number"] = json!(with_wrong_check_digit(&id_of(101)));
        let r = s.post("/api/v1/members").auth(&w.root).json(&bad).send().await;
        let e = r.invalid("id_number", "id_number.check_digit");
        assert_eq!(e["fields"].as_array().unwrap().len(), 1, "only the ID number is wrong: {e}");

        // The same number again, also written with spaces.
        let dup = member_body("孙八", "TA-B1", 100);
        s.post("/api/v1/members").auth(&w.root).json(&dup).send().await.error(409, "member.id_number.duplicate");
        let mut spaced = dup.clone();
        let id = id_of(100);
        spaced["id_number"] = json!(format!("{} {} {}", &id[..6], &id[6..14], &id[14..]));
        s.post("/api/v1/members").auth(&w.root).json(&spaced).send().await.error(409, "member.id_number.duplicate");

        // Every bad field is named.
        let mut many = member_body("", "NOPE", 102);
        many["gender"] = json!("robot");
        many["ethnicity"] = json!("火星族");
        many["birth_date"] = json!("1985-13-01");
        many["education"] = json!("phd");
        many["category"] = json!("honorary");
        many["phone"] = json!("12345");
        many["residence_division"] = json!("999999");
        let r = s.post("/api/v1/members").auth(&w.root).json(&many).send().await;
        let e = r.invalid("name", "required");
        let got: HashMap<String, String> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap().to_string(), f["code"].as_str().unwrap().to_string()))
            .collect();
        for (field, code) in [
            ("name", "required"),
            ("gender", "invalid"),
            ("ethnicity", "invalid"),
            ("birth_date", "invalid_date"),
            ("education", "invalid"),
            ("category", "invalid"),
            ("phone", "invalid"),
            ("residence_division", "unknown"),
        ] {
            assert_eq!(got.get(field).map(String::as_str), Some(code), "{field}: {e}");
        }
        // The ID number must agree with the birth date and the gender entered.
        let mut mismatch = member_body("周九", "TA-B1", 103);
        mismatch["birth_date"] = json!("1990-01-01");
        s.post("/api/v1/members")
            .auth(&w.root)
            .json(&mismatch)
            .send()
            .await
            .invalid("id_number", "id_number.birth_mismatch");
        let mut mismatch = member_body("周九", "TA-B1", 103);
        mismatch["gender"] = json!(if gender(103).code() == "male" { "female" } else { "male" });
        let r = s.post("/api/v1/members").auth(&w.root).json(&mismatch).send().await;
        r.invalid("id_number", "id_number.gender_mismatch");
        // An unknown organization is named once the fields are valid.
        let r = s.post("/api/v1/members").auth(&w.root).json(&member_body("吴十", "NOPE", 104)).send().await;
        r.invalid("org_code", "org.unknown");

        let all = s.get("/api/v1/members?limit=200").auth(&w.root).send().await;
        assert_eq!(names(all.ok()), set(["张伟", "李娜", "王芳", "赵 六"]), "refused members were not stored");
        let ov = s.get("/api/v1/overview").auth(&w.root).send().await;
        assert_eq!(ov.ok(), &json!({"organizations": 6, "members": 4, "mobile_out": 0, "mobile_in": 0}));
    })
    .await;
}

#[tokio::test]
async fn the_detail_shows_the_full_id_number_and_lists_mask_it() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let id = w.member("TA-B1");
        let full = id_of(1);
        let detail = s.get(&format!("/api/v1/members/{id}")).auth(&w.root).send().await;
        assert_eq!(detail.ok()["id_number"], full);
        assert_eq!(detail.json["name"], "张伟");

        let list = s.get("/api/v1/members?q=%E5%BC%A0%E4%BC%9F").auth(&w.root).send().await; // 张伟
        let item = &list.ok()["items"][0];
        assert_eq!(item["id"], id);
        assert_eq!(item["id_number_masked"], masked(&full));
        assert!(item["id_number_masked"].as_str().unwrap().starts_with("320724********"));
        assert!(item.get("id_number").is_none(), "{item}");
        let everyone = s.get("/api/v1/members").auth(&w.root).send().await;
        for n in 1..=3 {
            assert!(!everyone.text.contains(&id_of(n)), "a full ID number in a list: {}", everyone.text);
        }
        assert_eq!(everyone.ok()["items"].as_array().unwrap().len(), 3);
        assert_eq!(everyone.json["next_cursor"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn members_are_found_by_name_id_number_and_phone() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        for (name, n) in [("张三丰", 100), ("欧阳娜娜", 101), ("阿依古丽·买买提", 102)] {
            s.post("/api/v1/members").auth(&w.root).json(&member_body(name, "TA-B2", n)).send().await.expect(201);
        }
        let root = &w.root;
        let find = |q: &str| {
            let url = format!("/api/v1/members?q={}", urlencode(q));
            async move { names(s.get(&url).auth(root).send().await.ok()) }
        };
        // Names: by prefix, in simplified or traditional characters, spaces ignored.
        assert_eq!(find("张").await, set(["张伟", "张三丰"]));
        assert_eq!(find("張").await, set(["张伟", "张三丰"]));
        assert_eq!(find("張偉").await, set(["张伟"]));
        assert_eq!(find("张 伟").await, set(["张伟"]));
        assert_eq!(find("歐陽").await, set(["欧阳娜娜"]));
        assert_eq!(find("阿依古丽买买提").await, set(["阿依古丽·买买提"]));
        assert_eq!(find("伟").await, set([]), "names match from the start");
        assert_eq!(find("无此人").await, set([]));
        // Identity numbers: whole (any case of X, with spaces) or by leading digits.
        let zhang = id_of(1);
        assert_eq!(find(&zhang).await, set(["张伟"]));
        assert_eq!(find(&format!("{} {}", &zhang[..6], &zhang[6..])).await, set(["张伟"]));
        assert_eq!(find(&zhang[..14]).await, set(["张伟"]));
        assert_eq!(find(&zhang[..10]).await, set(["张伟", "李娜", "王芳"]), "born in 1965");
        assert_eq!(find("320724").await.len(), 6);
        assert_eq!(find("110105").await, set([]));
        // Phones, as people write them.
        assert_eq!(find("13910000001").await, set(["张伟"]));
        assert_eq!(find("139-1000-0002").await, set(["李娜"]));
        assert_eq!(find("+86 139 1000 0003").await, set(["王芳"]));
        // Leading digits are read as an identity number: a phone is found by the whole number.
        assert_eq!(find("1391000").await, set([]), "no ID number starts with 1391000");
        // Combined with the organization and mobility filters.
        let r = s.get("/api/v1/members?q=%E5%BC%A0&org=TA-B1").auth(&w.root).send().await; // 张
        assert_eq!(names(r.ok()), set(["张伟"]));
        let r = s.get("/api/v1/members?org=TA&mobility=resident").auth(&w.root).send().await;
        assert_eq!(names(r.ok()), set(["张伟", "李娜", "张三丰", "欧阳娜娜", "阿依古丽·买买提"]));
    })
    .await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn cursor_pagination_returns_every_member_exactly_once() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let mut wang = HashSet::from([w.member("TB-B1")]); // 王芳
        for i in 0..23u32 {
            // Some share a name, so that the name order needs the id to break ties.
            let name = format!("王{}", ["一", "二", "三", "四", "五"][(i % 5) as usize]);
            let org = ["TA-B1", "TA-B2", "TB-B1"][(i % 3) as usize];
            let m = s.post("/api/v1/members").auth(&w.root).json(&member_body(&name, org, 200 + i)).send().await;
            wang.insert(m.expect(201)["id"].as_i64().unwrap());
        }
        let everyone: HashSet<i64> = wang.iter().copied().chain(w.members.values().copied()).collect();
        assert_eq!(everyone.len(), 26);

        for limit in [1, 5, 7, 26, 200] {
            let seen = all_pages(s, &w.root, "q=", limit).await;
            assert_eq!(seen.len(), 26, "limit {limit}: {seen:?}");
            assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), everyone, "limit {limit}");
            assert!(seen.windows(2).all(|p| p[0] < p[1]), "id order: {seen:?}");

            let by_name = all_pages(s, &w.root, "q=%E7%8E%8B", limit).await; // 王
            assert_eq!(by_name.len(), 24, "limit {limit}: {by_name:?}");
            assert_eq!(by_name.iter().copied().collect::<HashSet<_>>(), wang, "limit {limit}");
        }
        // Within a scope and a filter too.
        let ta = all_pages(s, &w.ta_admin, "org=TA", 4).await;
        let expected = s.get("/api/v1/members?org=TA&limit=200").auth(&w.root).send().await;
        assert_eq!(ta, ids(expected.ok()));
        assert_eq!(ta.len(), 2 + 16);

        // Cursors are opaque and checked.
        for bad in ["garbage", "!!!", "aTpub3RhbnVtYmVy", "%FF%FE"] {
            let r = s.get(&format!("/api/v1/members?cursor={bad}")).auth(&w.root).send().await;
            r.invalid("cursor", "invalid");
        }
        // A name-order cursor does not fit an id-order query.
        let page = s.get("/api/v1/members?q=%E7%8E%8B&limit=2").auth(&w.root).send().await;
        let cursor = page.ok()["next_cursor"].as_str().expect("more pages").to_string();
        s.get(&format!("/api/v1/members?cursor={cursor}")).auth(&w.root).send().await.invalid("cursor", "invalid");
    })
    .await;
}

#[tokio::test]
async fn member_updates_need_the_current_version() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let id = w.member("TA-B1");
        let path = format!("/api/v1/members/{id}");
        let v = s.get(&path).auth(&w.root).send().await.ok()["version"].as_i64().unwrap();

        let mut body = member_body("张伟", "TA-B1", 1);
        body["phone"] = json!("13800000000");
        body["version"] = json!(v);
        let r = s.put(&path).auth(&w.root).json(&body).send().await;
        assert_eq!(r.ok()["phone"], "13800000000");
        assert_eq!(r.json["version"], v + 1);

        body["phone"] = json!("13900000000");
        s.put(&path).auth(&w.root).json(&body).send().await.error(409, "stale_version");
        assert_eq!(s.get(&path).auth(&w.root).send().await.ok()["phone"], "13800000000");

        body.as_object_mut().unwrap().remove("version");
        s.put(&path).auth(&w.root).json(&body).send().await.invalid("version", "required");

        // Taking another member's identity number is a conflict as well.
        let mut theft = member_body("张伟", "TA-B1", 1);
        theft["id_number"] = json!(id_of(2));
        theft["birth_date"] = json!(birth(2).format("%Y-%m-%d").to_string());
        theft["gender"] = json!(gender(2).code());
        theft["version"] = json!(v + 1);
        s.put(&path).auth(&w.root).json(&theft).send().await.error(409, "member.id_number.duplicate");

        // Moving the record to another branch moves the counts.
        let mut moved = member_body("张伟", "TB-B1", 1);
        moved["version"] = json!(v + 1);
        let r = s.put(&path).auth(&w.root).json(&moved).send().await;
        assert_eq!(r.ok()["org_code"], "TB-B1");
        let ov = s.get("/api/v1/overview?org=TA").auth(&w.root).send().await;
        assert_eq!(ov.ok()["members"], 1);
        let ov = s.get("/api/v1/overview?org=TB").auth(&w.root).send().await;
        assert_eq!(ov.ok()["members"], 2);

        s.put("/api/v1/members/999999").auth(&w.root).json(&moved).send().await.error(404, "not_found");

        let audit = s.get(&format!("{path}/audit")).auth(&w.root).send().await;
        let updates: Vec<&Value> =
            audit.ok().as_array().unwrap().iter().filter(|e| e["action"] == "member.update").collect();
        assert_eq!(updates.len(), 2, "{}", audit.text);
        let phone_change = updates.last().unwrap();
        assert_eq!(phone_change["outcome"], "ok");
        let before: Value = serde_json::from_str(phone_change["before_data"].as_str().unwrap()).unwrap();
        let after: Value = serde_json::from_str(phone_change["after_data"].as_str().unwrap()).unwrap();
        assert_eq!((&before["phone"], &after["phone"]), (&json!("13910000001"), &json!("13800000000")));

        // A record read back can be sent back as it is, its empty fields as null.
        let mut read = s.get(&path).auth(&w.root).send().await.ok().clone();
        read["phone"] = json!(null);
        read["occupation"] = json!(null);
        let back = s.put(&path).auth(&w.root).json(&read).send().await;
        assert!(back.ok()["phone"].is_null() && back.json["occupation"].is_null(), "{}", back.text);
        assert_eq!(back.json["version"], read["version"].as_i64().unwrap() + 1);
    })
    .await;
}

#[tokio::test]
async fn viewing_the_full_id_number_is_audited() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let id = w.member("TA-B1");
        let views = |audit: &Value| {
            audit.as_array().unwrap().iter().filter(|e| e["action"] == "member.view_id" && e["outcome"] == "ok").count()
        };
        let audit_path = format!("/api/v1/members/{id}/audit");
        let before = s.get(&audit_path).auth(&w.root).send().await.ok().clone();
        assert_eq!(views(&before), 0);
        let create =
            before.as_array().unwrap().iter().find(|e| e["action"] == "member.create").expect("create audited");
        let snapshot = create["after_data"].as_str().unwrap();
        assert!(snapshot.contains(&masked(&id_of(1))) && !snapshot.contains(&id_of(1)), "{snapshot}");

        s.get(&format!("/api/v1/members/{id}")).auth(&w.root).send().await.ok();
        s.get(&format!("/api/v1/members/{id}")).auth(&w.b1_sec).send().await.ok();
        // Lists, flows and the audit trail itself are not views of the number.
        s.get("/api/v1/members?q=%E5%BC%A0").auth(&w.root).send().await.ok();
        s.get(&format!("/api/v1/members/{id}/flows")).auth(&w.root).send().await.ok();

        let after = s.get(&audit_path).auth(&w.root).send().await;
        assert_eq!(views(after.ok()), 2, "{}", after.text);
        let latest = &after.json[0];
        assert_eq!(latest["action"], "member.view_id");
        assert_eq!(latest["username"], "b1_sec");
        assert_eq!(latest["client"], "127.0.0.1");
        assert_eq!(latest["target_type"], "member");
        assert_eq!(latest["target_id"], id.to_string());
        assert!(!after.text.contains(&id_of(1)), "a full ID number in the audit trail: {}", after.text);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_org_admin_is_confined_to_their_subtree() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let t = &w.ta_admin;
        let outside = w.member("TB-B1");
        let inside = w.member("TA-B2");

        // Members outside are answered exactly as members that do not exist.
        let missing = s.get("/api/v1/members/999999").auth(t).send().await;
        let hidden = s.get(&format!("/api/v1/members/{outside}")).auth(t).send().await;
        assert_eq!(hidden.error(404, "not_found"), missing.error(404, "not_found"));
        let mut edit = member_body("王芳", "TB-B1", 3);
        edit["version"] = json!(1);
        s.put(&format!("/api/v1/members/{outside}")).auth(t).json(&edit).send().await.error(404, "not_found");
        s.get(&format!("/api/v1/members/{outside}/flows")).auth(t).send().await.error(404, "not_found");
        let depart = s.post(&format!("/api/v1/members/{outside}/flows")).auth(t).json(&departure_body()).send().await;
        depart.error(404, "not_found");
        s.get(&format!("/api/v1/members/{outside}/audit")).auth(t).send().await.error(404, "not_found");
        // Lists hold only the subtree, whatever the filter asks for.
        assert_eq!(names(s.get("/api/v1/members").auth(t).send().await.ok()), set(["张伟", "李娜"]));
        assert_eq!(names(s.get("/api/v1/members?org=TB").auth(t).send().await.ok()), set([]));
        assert_eq!(names(s.get("/api/v1/members?q=%E7%8E%8B").auth(t).send().await.ok()), set([]));
        // Creating a member elsewhere is refused beside the organization (organizations
        // are not secret); inside works.
        let r = s.post("/api/v1/members").auth(t).json(&member_body("外人", "TB-B1", 100)).send().await;
        r.invalid("org_code", "org.out_of_scope");
        s.post("/api/v1/members").auth(t).json(&member_body("自己人", "TA-B2", 101)).send().await.expect(201);
        assert_eq!(s.get(&format!("/api/v1/members/{inside}")).auth(t).send().await.ok()["name"], "李娜");

        // Organizations outside are not secret, but not theirs: 403.
        s.get("/api/v1/orgs/TB").auth(t).send().await.error(403, "forbidden");
        s.get("/api/v1/orgs/CTY/children").auth(t).send().await.error(403, "forbidden");
        let mut tb = org_body("TB", None, "改名", "general_branch");
        tb["version"] = json!(1);
        s.put("/api/v1/orgs/TB").auth(t).json(&tb).send().await.error(403, "forbidden");
        let under_tb = org_body("TB-B9", Some("TB"), "新支部", "branch");
        s.post("/api/v1/orgs").auth(t).json(&under_tb).send().await.error(403, "forbidden");
        s.post("/api/v1/orgs")
            .auth(t)
            .json(&org_body("ROOT2", None, "新根", "committee"))
            .send()
            .await
            .error(403, "forbidden");
        let own_root = json!({"parent_code": "TB", "version": 1});
        s.post("/api/v1/orgs/TA/move").auth(t).json(&own_root).send().await.error(403, "forbidden");
        let out_of_scope = json!({"parent_code": "TB", "version": 1});
        s.post("/api/v1/orgs/TA-B1/move").auth(t).json(&out_of_scope).send().await.error(403, "forbidden");
        s.get("/api/v1/overview?org=TB").auth(t).send().await.error(403, "forbidden");
        // Inside, the tree is theirs.
        assert_eq!(codes(s.get("/api/v1/orgs").auth(t).send().await.ok()), ["TA"]);
        s.post("/api/v1/orgs")
            .auth(t)
            .json(&org_body("TA-B3", Some("TA"), "第三支部", "branch"))
            .send()
            .await
            .expect(201);
        let ov = s.get("/api/v1/overview").auth(t).send().await;
        assert_eq!(ov.ok(), &json!({"organizations": 4, "members": 3, "mobile_out": 0, "mobile_in": 0}));
        assert_eq!(codes(s.get("/api/v1/org-search?q=TB").auth(t).send().await.ok()), Vec::<String>::new());
        let mv = json!({"parent_code": "TA-B1", "version": 1});
        assert_eq!(s.post("/api/v1/orgs/TA-B3/move").auth(t).json(&mv).send().await.ok()["parent_code"], "TA-B1");

        // Every refusal is in the audit log, and nothing refused happened.
        assert_eq!(codes(s.get("/api/v1/orgs/TB/children").auth(&w.root).send().await.ok()), ["TB-B1"]);
        assert_eq!(s.get("/api/v1/orgs/TB").auth(&w.root).send().await.ok()["name"], "堆沟港镇党委");
        let denied: Vec<(String, String, String)> = s
            .audit()
            .await
            .into_iter()
            .filter(|e| e.outcome == "denied" && e.username.as_deref() == Some("ta_admin"))
            .map(|e| (e.action, e.target_type.unwrap_or_default(), e.target_id.unwrap_or_default()))
            .collect();
        let o = outside.to_string();
        for want in [
            ("member.view_id", "member", o.as_str()),
            ("member.write", "member", o.as_str()),
            ("member.read", "member", o.as_str()),
            ("member.write", "org", "TB-B1"),
            ("org.read", "org", "TB"),
            ("org.read", "org", "CTY"),
            ("org.write", "org", "TB"),
            ("org.write", "org", "ROOT2"),
            ("org.move", "org", "TA"),
            ("org.write", "org", "TB"),
        ] {
            let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
            assert!(denied.contains(&want), "no denied {want:?} in {denied:?}");
        }
        assert!(!denied.iter().any(|d| d.2 == "999999"), "a missing member is no refusal: {denied:?}");
        // The administrator sees the refusals on the member's own trail.
        let trail = s.get(&format!("/api/v1/members/{outside}/audit")).auth(&w.root).send().await;
        let refused =
            trail.ok().as_array().unwrap().iter().filter(|e| e["outcome"] == "denied" && e["username"] == "ta_admin");
        assert_eq!(refused.count(), 5, "{}", trail.text);
    })
    .await;
}

#[tokio::test]
async fn a_secretary_is_limited_to_their_branch() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let t = &w.b1_sec;
        let mine = w.member("TA-B1");
        let sibling = w.member("TA-B2");

        assert_eq!(names(s.get("/api/v1/members").auth(t).send().await.ok()), set(["张伟"]));
        assert_eq!(names(s.get("/api/v1/members?org=TA").auth(t).send().await.ok()), set(["张伟"]));
        s.get(&format!("/api/v1/members/{sibling}")).auth(t).send().await.error(404, "not_found");
        assert_eq!(s.get(&format!("/api/v1/members/{mine}")).auth(t).send().await.ok()["id_number"], id_of(1));

        // Their own members they may edit, but not send to another branch.
        let mut body = member_body("张伟", "TA-B1", 1);
        body["occupation"] = json!("教师");
        body["version"] = json!(1);
        let r = s.put(&format!("/api/v1/members/{mine}")).auth(t).json(&body).send().await;
        assert_eq!(r.ok()["occupation"], "教师");
        let mut away = member_body("张伟", "TA-B2", 1);
        away["version"] = r.json["version"].clone();
        s.put(&format!("/api/v1/members/{mine}"))
            .auth(t)
            .json(&away)
            .send()
            .await
            .invalid("org_code", "org.out_of_scope");
        assert_eq!(s.get(&format!("/api/v1/members/{mine}")).auth(t).send().await.ok()["org_code"], "TA-B1");
        s.post("/api/v1/members").auth(t).json(&member_body("新人", "TA-B1", 100)).send().await.expect(201);
        let r = s.post("/api/v1/members").auth(t).json(&member_body("邻居", "TA-B2", 101)).send().await;
        r.invalid("org_code", "org.out_of_scope");
        let flows = format!("/api/v1/members/{mine}/flows");
        s.post(&flows).auth(t).json(&departure_body()).send().await.expect(201);

        // Organizations: they may look at their branch, not change it or look above it.
        assert_eq!(s.get("/api/v1/orgs/TA-B1").auth(t).send().await.ok()["code"], "TA-B1");
        s.get("/api/v1/orgs/TA").auth(t).send().await.error(403, "forbidden");
        let mut b1 = org_body("TA-B1", None, "改名", "branch");
        b1["version"] = json!(1);
        s.put("/api/v1/orgs/TA-B1").auth(t).json(&b1).send().await.error(403, "forbidden");
        let child = org_body("TA-B1-G1", Some("TA-B1"), "小组", "group");
        s.post("/api/v1/orgs").auth(t).json(&child).send().await.error(403, "forbidden");
        let ov = s.get("/api/v1/overview").auth(t).send().await;
        assert_eq!(ov.ok(), &json!({"organizations": 1, "members": 2, "mobile_out": 1, "mobile_in": 0}));
    })
    .await;
}

#[tokio::test]
async fn service_staff_and_member_accounts_reach_no_one_else() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let zhang = w.member("TA-B1");
        let li = w.member("TA-B2");

        // Service staff browse organizations, never members.
        let t = &w.staff;
        assert_eq!(codes(s.get("/api/v1/orgs/TA/children").auth(t).send().await.ok()), ["TA-B1", "TA-B2"]);
        assert_eq!(s.get("/api/v1/members").auth(t).send().await.ok()["items"], json!([]));
        s.get(&format!("/api/v1/members/{zhang}")).auth(t).send().await.error(404, "not_found");
        let r = s.post("/api/v1/members").auth(t).json(&member_body("新人", "TA-B1", 100)).send().await;
        r.error(403, "forbidden");
        s.post("/api/v1/orgs")
            .auth(t)
            .json(&org_body("TA-X", Some("TA"), "x", "branch"))
            .send()
            .await
            .error(403, "forbidden");

        // A member account sees its own record only, and changes nothing.
        let uid = s.user("zhangwei", Role::Member, None, Some(zhang)).await;
        let t = s.token_for(uid).await;
        assert_eq!(s.get(&format!("/api/v1/members/{zhang}")).auth(&t).send().await.ok()["id_number"], id_of(1));
        s.get(&format!("/api/v1/members/{li}")).auth(&t).send().await.error(404, "not_found");
        assert_eq!(ids(s.get("/api/v1/members").auth(&t).send().await.ok()), [zhang]);
        assert_eq!(ids(s.get("/api/v1/members?q=%E6%9D%8E").auth(&t).send().await.ok()), Vec::<i64>::new());
        let mut body = member_body("张伟", "TA-B1", 1);
        body["version"] = json!(1);
        s.put(&format!("/api/v1/members/{zhang}")).auth(&t).json(&body).send().await.error(404, "not_found");
        let r = s.post(&format!("/api/v1/members/{zhang}/flows")).auth(&t).json(&departure_body()).send().await;
        r.error(404, "not_found");
        s.get("/api/v1/orgs/TA-B1").auth(&t).send().await.error(403, "forbidden");
        let ov = s.get("/api/v1/overview").auth(&t).send().await;
        assert_eq!(ov.ok(), &json!({"organizations": 0, "members": 0, "mobile_out": 0, "mobile_in": 0}));
    })
    .await;
}

#[tokio::test]
async fn every_protected_route_needs_credentials() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let member = w.member("TA-B1");
        // A session that was logged out, and one that has expired (opened last: opening
        // a session sweeps the expired ones).
        let uid = s.user("late", Role::Admin, None, None).await;
        let gone = s.token_for(uid).await;
        assert_eq!(s.post("/api/v1/logout").auth(&gone).send().await.status, 204);
        let expired = auth::random_token();
        s.store
            .accounts()
            .create_session(uid, &auth::token_hash(&expired), "api", "csrf", Utc::now() - Duration::seconds(1))
            .await
            .unwrap();

        let bodies = json!({
            "/api/v1/orgs": org_body("UNAUTH", Some("TA"), "未登录", "branch"),
            "/api/v1/members": member_body("未登录", "TA-B1", 100),
        });
        for (m, path, public) in ROUTES {
            let url = concrete(path, member);
            let body = bodies.get(path).cloned().unwrap_or(json!({"version": 1, "parent_code": "TB"}));
            let call = |extra: Option<(&str, String)>| {
                let mut c = s.call(method(m), &url);
                if m != "GET" {
                    c = c.json(&body);
                }
                if let Some((h, v)) = extra {
                    c = c.header(h, &v);
                }
                c.send()
            };
            if public {
                let r = call(None).await;
                assert!(r.status != 401 && r.status.as_u16() < 500, "{m} {path} is public: {} {}", r.status, r.text);
                continue;
            }
            call(None).await.error(401, "unauthorized");
            for (h, v) in [
                ("authorization", "Bearer not-a-token".to_string()),
                ("authorization", format!("Bearer {expired}")),
                ("authorization", format!("Bearer {gone}")),
                ("authorization", "Bearer ".to_string()),
                ("cookie", format!("{}=not-a-session", auth::SESSION_COOKIE)),
                ("cookie", format!("{}={expired}", auth::SESSION_COOKIE)),
            ] {
                call(Some((h, v.clone()))).await.error(401, "unauthorized");
            }
        }
        // Nothing was done.
        s.get("/api/v1/orgs/UNAUTH").auth(&w.root).send().await.error(404, "not_found");
        let ta = s.get("/api/v1/orgs/TA").auth(&w.root).send().await;
        assert_eq!(ta.ok()["parent_code"], "CTY");
        assert_eq!(s.get("/api/v1/members").auth(&w.root).send().await.ok()["items"].as_array().unwrap().len(), 3);
        let flows = s.get(&format!("/api/v1/members/{member}/flows")).auth(&w.root).send().await;
        assert_eq!(flows.ok(), &json!([]));
    })
    .await;
}

// ---------------------------------------------------------------------------
// Departures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_departure_opens_one_flow_and_moves_the_counts() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let id = w.member("TA-B1");
        let root = &w.root;
        let overview = |q: &'static str| async move {
            s.get(&format!("/api/v1/overview{q}")).auth(root).send().await.ok().clone()
        };
        let counts =
            |o: i64, m: i64, out: i64| json!({"organizations": o, "members": m, "mobile_out": out, "mobile_in": 0});
        assert_eq!(overview("").await, counts(6, 3, 0));
        assert_eq!(overview("?org=TA").await, counts(3, 2, 0));

        let flows = format!("/api/v1/members/{id}/flows");
        let r = s.post(&flows).auth(&w.root).json(&departure_body()).send().await;
        let f = r.expect(201).clone();
        assert_eq!(f["member_id"], id);
        assert_eq!(f["status"], "not_checked_in");
        assert_eq!(f["outflow_org_code"], "TA-B1");
        assert_eq!(f["destination_division"], ELSEWHERE);
        assert_eq!(f["reason"], "work");
        assert_eq!(f["left_on"], "2024-03-01");
        assert_eq!(f["expected_months"], 12);
        assert_eq!(f["inflow_org_code"], Value::Null);

        let mut again = departure_body();
        again["left_on"] = json!("2024-04-01");
        s.post(&flows).auth(&w.root).json(&again).send().await.error(409, "flow.already_open");
        let listed = s.get(&flows).auth(&w.root).send().await;
        assert_eq!(listed.ok().as_array().unwrap().len(), 1);
        assert_eq!(listed.json[0]["id"], f["id"]);
        let m = s.get(&format!("/api/v1/members/{id}")).auth(&w.root).send().await;
        assert_eq!(m.ok()["mobility"], "not_checked_in");

        assert_eq!(overview("").await, counts(6, 3, 1));
        assert_eq!(overview("?org=TA").await, counts(3, 2, 1));
        assert_eq!(overview("?org=TA-B2").await, counts(1, 1, 0));
        assert_eq!(overview("?org=TB").await, counts(2, 1, 0));
        let away = s.get("/api/v1/members?mobility=away").auth(&w.root).send().await;
        assert_eq!(ids(away.ok()), [id]);
        let away = s.get("/api/v1/members?mobility=not_checked_in").auth(&w.root).send().await;
        assert_eq!(ids(away.ok()), [id]);
        let home = s.get("/api/v1/members?mobility=resident").auth(&w.root).send().await;
        assert_eq!(names(home.ok()), set(["李娜", "王芳"]));
        assert_eq!(away.ok()["items"][0]["mobility"], "not_checked_in");

        // Refused departures, each naming its field.
        let other = format!("/api/v1/members/{}/flows", w.member("TA-B2"));
        for (field, value, code) in [
            ("left_on", json!("2009-12-31"), "flow.left_before_joining"),
            ("left_on", json!("2999-01-01"), "in_future"),
            ("left_on", json!("01/03/2024"), "invalid_date"),
            ("left_on", json!(""), "required"),
            ("destination_division", json!("999999"), "unknown"),
            ("reason", json!("vacation"), "invalid"),
            ("expected_months", json!("0"), "invalid"),
            ("expected_months", json!("twelve"), "invalid"),
            ("contact_phone", json!("12"), "invalid"),
        ] {
            let mut body = departure_body();
            body[field] = value;
            s.post(&other).auth(&w.root).json(&body).send().await.invalid(field, code);
        }
        s.post("/api/v1/members/999999/flows")
            .auth(&w.root)
            .json(&departure_body())
            .send()
            .await
            .error(404, "not_found");
        assert_eq!(overview("").await, counts(6, 3, 1), "refused departures change nothing");

        let audit = s.get(&format!("/api/v1/members/{id}/audit")).auth(&w.root).send().await;
        assert!(audit.ok().as_array().unwrap().iter().any(|e| e["action"] == "flow.depart" && e["username"] == "root"));
    })
    .await;
}

// ---------------------------------------------------------------------------
// Client input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_bodies_are_refused_as_bad_requests() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let member = format!("/api/v1/members/{}", w.member("TA-B1"));
        for (path, put) in [("/api/v1/members", false), ("/api/v1/orgs", false), (member.as_str(), true)] {
            let call = |body: &str| {
                let c = if put { s.put(path) } else { s.post(path) };
                c.auth(&w.root).raw_json(body.to_string()).send()
            };
            call("[]").await.client_error();
            for body in
                ["{", "", "null", "\"text\"", "{\"name\": 5}", "{\"name\": [\"张伟\"]}", "{\"version\": \"one\"}"]
            {
                call(body).await.error(400, "invalid_json");
            }
            call(r#"{"version": 1e400}"#).await.error(400, "invalid_json");
            call(r#"{"version": 99999999999999999999}"#).await.error(400, "invalid_json");
            call("\u{feff}{}").await.client_error();
            // No JSON content type at all.
            let c = if put { s.put(path) } else { s.post(path) };
            c.auth(&w.root).header("content-type", "text/plain").send().await.error(400, "invalid_json");
        }
        s.post("/api/v1/login").raw_json("{\"username\": 1, \"password\": 2}").send().await.error(400, "invalid_json");
        let flows = format!("{member}/flows");
        s.post(&flows).auth(&w.root).raw_json("{\"expected_months\": [12]}").send().await.error(400, "invalid_json");
        let mv = "/api/v1/orgs/TA-B1/move";
        s.post(mv)
            .auth(&w.root)
            .raw_json("{\"parent_code\": \"TB\", \"version\": \"1\"}")
            .send()
            .await
            .error(400, "invalid_json");
    })
    .await;
}

#[tokio::test]
async fn malformed_paths_and_queries_are_refused_as_bad_requests() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let get = |url: String| s.get(&url).auth(&w.root).send();
        for id in ["abc", "1.5", "99999999999999999999", "%E5%BC%A0", "1%00", "0x10", "%20"] {
            get(format!("/api/v1/members/{id}")).await.error(400, "invalid_path");
            get(format!("/api/v1/members/{id}/flows")).await.error(400, "invalid_path");
            get(format!("/api/v1/members/{id}/audit")).await.error(400, "invalid_path");
            let r = s.put(&format!("/api/v1/members/{id}")).auth(&w.root).json(&member_body("张伟", "TA-B1", 1)).send();
            r.await.error(400, "invalid_path");
        }
        for id in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            get(format!("/api/v1/members/{id}")).await.error(404, "not_found");
        }
        get("/api/v1/orgs/%E4%B8%8D%E5%AD%98%E5%9C%A8".into()).await.error(404, "not_found");

        // Page sizes are clamped to 1..=200 (default 50).
        s.bulk_members("TB-B1", 300..500).await;
        let ov = get("/api/v1/overview".into()).await;
        assert_eq!(ov.ok()["members"], 203);
        for (q, n) in [("limit=0", 1), ("limit=1", 1), ("limit=100000", 200), ("limit=4294967295", 200), ("", 50)] {
            let page = get(format!("/api/v1/members?{q}")).await;
            assert_eq!(ids(page.ok()).len(), n, "{q}");
            assert!(page.json["next_cursor"].is_string(), "{q}: {}", page.text);
        }
        for q in ["limit=-1", "limit=abc", "limit=4294967296", "limit=1.5", "limit=", "q=a&q=b"] {
            get(format!("/api/v1/members?{q}")).await.error(400, "invalid_query");
        }
        // An empty cursor is no cursor, like the other empty filters.
        get("/api/v1/members?cursor=".into()).await.ok();
        get("/api/v1/members?mobility=flying".into()).await.invalid("mobility", "invalid");
        get("/api/v1/members?org=NOPE".into()).await.invalid("org", "org.unknown");
        get("/api/v1/overview?org=NOPE".into()).await.error(404, "not_found");
        get("/api/v1/org-search".into()).await.error(400, "invalid_query");
        // Unknown parameters are ignored.
        assert_eq!(ids(get("/api/v1/members?colour=blue".into()).await.ok()).len(), 50);
    })
    .await;
}

/// A string of `n` characters that does not compress (as a database would store it).
fn incompressible(n: usize) -> String {
    let mut x: u32 = 2463534242;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from_u32(0x4E00 + x % 0x5000).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn long_strings_are_refused_as_bad_requests() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let long = incompressible(10_000);

        let mut m = member_body(&long, "TA-B1", 100);
        s.post("/api/v1/members").auth(&w.root).json(&m).send().await.invalid("name", "too_long");
        m["name"] = json!("张伟");
        for field in ["residence_address", "employer", "occupation"] {
            let mut b = m.clone();
            b[field] = json!(long);
            s.post("/api/v1/members").auth(&w.root).json(&b).send().await.invalid(field, "too_long");
        }
        m["org_code"] = json!(long);
        s.post("/api/v1/members").auth(&w.root).json(&m).send().await.invalid("org_code", "org.unknown");
        let mut o = org_body("LONG", Some("TA"), &long, "branch");
        s.post("/api/v1/orgs").auth(&w.root).json(&o).send().await.invalid("name", "too_long");
        o["name"] = json!("长代码");
        o["code"] = json!(long);
        s.post("/api/v1/orgs").auth(&w.root).json(&o).send().await.invalid("code", "org.code.invalid");
        // Also for someone who may not create it: a refusal is audited with the code asked for.
        o["parent_code"] = Value::Null;
        s.post("/api/v1/orgs").auth(&w.ta_admin).json(&o).send().await.client_error();
        s.put(&format!("/api/v1/orgs/{}", urlencode(&incompressible(1000))))
            .auth(&w.ta_admin)
            .json(&o)
            .send()
            .await
            .client_error();
        let mut d = departure_body();
        d["note"] = json!(long);
        let flows = format!("/api/v1/members/{}/flows", w.member("TA-B1"));
        s.post(&flows).auth(&w.root).json(&d).send().await.invalid("note", "too_long");

        let q = urlencode(&incompressible(2000));
        assert_eq!(s.get(&format!("/api/v1/members?q={q}")).auth(&w.root).send().await.ok()["items"], json!([]));
        let r = s.get(&format!("/api/v1/orgs/{}", urlencode(&incompressible(1000)))).auth(&w.root).send().await;
        r.error(404, "not_found");
        s.login("root", &long).await.error(401, "bad_credentials");
    })
    .await;
}

/// Collects every answer that differs from what it should be, so that one run lists
/// them all: `(what was asked, expected status, expected error code)`.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn check(&mut self, what: &str, r: &Reply, status: u16, code: Option<&str>) {
        let got_code = r.json["error"]["code"].as_str();
        if r.status.as_u16() != status || got_code != code {
            self.0.push(format!("{what}: expected {status} {code:?}, got {} {}", r.status.as_u16(), r.text));
        }
    }

    #[track_caller]
    fn assert_none(&self) {
        assert!(self.0.is_empty(), "{} wrong answers:\n    {}", self.0.len(), self.0.join("\n    "));
    }
}

#[tokio::test]
async fn a_long_user_name_on_a_failed_login_is_a_bad_credential() {
    on_each_backend(|s| async move {
        // The throttle keeps one row per user name tried (`user:<name>`, the primary
        // key); a long name that does not compress must not turn a failed login into a
        // server error. 1,000 CJK characters are 3,000 bytes.
        let mut wrong = Mismatches::default();
        for n in [800, 1_000, 3_000] {
            let r = s.login(&incompressible(n), "guess").await;
            wrong.check(&format!("login with a {n}-character user name"), &r, 401, Some("bad_credentials"));
        }
        wrong.assert_none();
    })
    .await;
}

#[tokio::test]
async fn nul_bytes_and_control_characters_are_refused_as_bad_requests() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let mut m = member_body("张\u{0}伟", "TA-B1", 100);
        s.post("/api/v1/members").auth(&w.root).json(&m).send().await.invalid("name", "invalid");
        m["name"] = json!("张伟");
        m["employer"] = json!("公司\u{7}");
        s.post("/api/v1/members").auth(&w.root).json(&m).send().await.invalid("employer", "invalid");
        let mut o = org_body("NUL", Some("TA"), "名\u{0}称", "branch");
        s.post("/api/v1/orgs").auth(&w.root).json(&o).send().await.invalid("name", "invalid");
        o["name"] = json!("名称");
        o["code"] = json!("NU\u{0}L");
        s.post("/api/v1/orgs").auth(&w.root).json(&o).send().await.invalid("code", "org.code.invalid");
    })
    .await;
}

#[tokio::test]
async fn nul_bytes_in_lookups_are_client_errors() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let root = &w.root;
        let mut wrong = Mismatches::default();
        // Values that are looked up rather than validated as text.
        let r = s.post("/api/v1/members").auth(root).json(&member_body("张伟", "TA\u{0}-B1", 100)).send().await;
        wrong.check("a member in organization TA\\0-B1", &r, 400, Some("invalid_input"));
        let r =
            s.post("/api/v1/orgs").auth(root).json(&org_body("NUL", Some("T\u{0}A"), "名称", "branch")).send().await;
        wrong.check("an organization under T\\0A", &r, 400, Some("invalid_input"));
        let mv = json!({"parent_code": "T\u{0}B", "version": 1});
        let r = s.post("/api/v1/orgs/TA-B1/move").auth(root).json(&mv).send().await;
        wrong.check("a move under T\\0B", &r, 400, Some("invalid_input"));
        let mut ta = org_body("TA", None, "名称", "branch");
        ta["version"] = json!(1);
        let r = s.put("/api/v1/orgs/TA%00").auth(root).json(&ta).send().await;
        wrong.check("PUT /api/v1/orgs/TA%00", &r, 404, Some("not_found"));
        for (url, status, code) in [
            ("/api/v1/orgs/TA%00", 404, Some("not_found")),
            ("/api/v1/orgs/TA%00/children", 404, Some("not_found")),
            ("/api/v1/members?org=TA%00", 400, Some("invalid_input")),
            ("/api/v1/overview?org=TA%00", 404, Some("not_found")),
            ("/api/v1/members?q=%E5%BC%A0%00", 200, None),
            ("/api/v1/members?q=%00", 200, None),
            ("/api/v1/org-search?q=TA%00", 200, None),
        ] {
            let r = s.get(url).auth(root).send().await;
            wrong.check(&format!("GET {url}"), &r, status, code);
        }
        let r = s.login("ro\u{0}ot", PASSWORD).await;
        wrong.check("login as ro\\0ot", &r, 401, Some("bad_credentials"));
        wrong.assert_none();
    })
    .await;
}

// ---------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------

#[tokio::test]
async fn errors_are_in_english_when_asked_for() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let (zh, en) = (catalogue("zh"), catalogue("en"));
        let message = |r: &Reply, code: &str| r.error(r.status.as_u16(), code)["message"].as_str().unwrap().to_string();

        let login = |lang: Option<&'static str>| {
            let mut c = s.post("/api/v1/login").json(&json!({"username": "root", "password": "wrong"}));
            if let Some(l) = lang {
                c = c.lang(l);
            }
            c.send()
        };
        assert_eq!(message(&login(None).await, "bad_credentials"), zh["err.bad_credentials"]);
        assert_eq!(message(&login(Some("en")).await, "bad_credentials"), en["err.bad_credentials"]);
        assert_eq!(message(&login(Some("en-US,en;q=0.9")).await, "bad_credentials"), "Wrong user name or password");
        assert_eq!(
            message(&login(Some("zh-CN,zh;q=0.9,en;q=0.8")).await, "bad_credentials"),
            zh["err.bad_credentials"]
        );
        assert_ne!(zh["err.bad_credentials"], en["err.bad_credentials"]);

        let me = s.get("/api/v1/me").lang("en").send().await;
        assert_eq!(message(&me, "unauthorized"), en["err.unauthorized"]);
        let me = s.get("/api/v1/me").header("cookie", "lang=en").send().await;
        assert_eq!(message(&me, "unauthorized"), en["err.unauthorized"], "the language cookie");

        // Field messages too, and rejections from the extractors.
        let mut bad = member_body("钱七", "TA-B1", 101);
        bad["id_number"] = json!(with_wrong_check_digit(&id_of(101)));
        let fields = |r: &Reply| r.invalid("id_number", "id_number.check_digit")["fields"][0]["message"].clone();
        let r = s.post("/api/v1/members").auth(&w.root).json(&bad).send().await;
        assert_eq!(message(&r, "invalid_input"), zh["err.invalid_input"]);
        assert_eq!(fields(&r), zh["err.id_number.check_digit"].as_str());
        let r = s.post("/api/v1/members").auth(&w.root).lang("en").json(&bad).send().await;
        assert_eq!(message(&r, "invalid_input"), en["err.invalid_input"]);
        assert_eq!(fields(&r), "The ID number's check digit is wrong");
        let r = s.post("/api/v1/members").auth(&w.root).lang("en").raw_json("{").send().await;
        assert_eq!(message(&r, "invalid_json"), en["err.invalid_json"]);
        let r = s.get("/api/v1/members/abc").auth(&w.root).lang("en").send().await;
        assert_eq!(message(&r, "invalid_path"), en["err.invalid_path"]);
        let r = s.get("/api/v1/members?limit=x").auth(&w.root).lang("en").send().await;
        assert_eq!(message(&r, "invalid_query"), en["err.invalid_query"]);
        let r = s.get("/api/v1/members/999999").auth(&w.root).lang("en").send().await;
        assert_eq!(message(&r, "not_found"), en["err.not_found"]);
        let r = s.get("/api/v1/orgs/TB").auth(&w.ta_admin).lang("en").send().await;
        assert_eq!(message(&r, "forbidden"), en["err.forbidden"]);
        let r = s.get("/api/v1/members/999999").auth(&w.root).send().await;
        assert_eq!(message(&r, "not_found"), zh["err.not_found"]);
    })
    .await;
}

// ---------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let r = s.get("/api/openapi.json").send().await;
        let doc = r.ok().clone();
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
        assert_eq!(doc["info"]["title"], "Kite API");
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(doc["security"], json!([{"bearer": []}]));

        let mut documented = BTreeSet::new();
        let mut public = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (m, op) in item.as_object().unwrap() {
                let m = m.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    continue;
                }
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{m} {path}: no responses");
                if op.get("security") == Some(&json!([{}])) {
                    public.insert((m.clone(), path.clone()));
                }
                documented.insert((m, path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        let open: BTreeSet<(String, String)> =
            ROUTES.iter().filter(|r| r.2).map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        assert_eq!(
            documented,
            served,
            "documented routes differ from the routes served: only documented {:?}, only served {:?}",
            documented.difference(&served).collect::<Vec<_>>(),
            served.difference(&documented).collect::<Vec<_>>()
        );
        assert_eq!(public, open, "routes documented as open without credentials");

        // Every schema the document refers to is in it.
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "dangling $ref {r}");
        }

        // What the router answers agrees with the document: a documented method is
        // handled (an answer with a JSON body), any other method on the path is 405.
        let member = w.member("TA-B1");
        let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
        for path in paths {
            let url = concrete(path, member);
            for m in METHODS {
                let r = s.call(method(m), &url).send().await;
                if documented.contains(&(m.to_string(), path.to_string())) {
                    assert_ne!(r.status, 405, "{m} {path} is documented but not served");
                    assert!(r.json.is_object() || r.json.is_array(), "{m} {path}: {} {:?}", r.status, r.text);
                    assert!(r.status.as_u16() < 500, "{m} {path}: {} {}", r.status, r.text);
                } else {
                    assert_eq!(r.status, 405, "{m} {path} answers {} but is not documented: {}", r.status, r.text);
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_addresses_and_methods_answer_in_the_error_shape() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        s.get("/api/v1/no-such-thing").auth(&w.root).send().await.error(404, "not_found");
        s.get("/api/v2/orgs").send().await.error(404, "not_found");
        s.call(reqwest::Method::DELETE, "/api/v1/orgs/TA").auth(&w.root).send().await.error(405, "method_not_allowed");
        assert_eq!(s.get("/api/v1/orgs/TA").auth(&w.root).send().await.ok()["code"], "TA", "nothing was deleted");
        let page = s.get("/no-such-page").send().await;
        assert_eq!(page.status.as_u16(), 404);
        assert!(page.text.contains("页面不存在"), "{}", page.text);
    })
    .await;
}

/// The login's audited client address: the peer's, or behind a trusted proxy the last
/// address X-Forwarded-For gives that is not the proxy's (earlier ones the client wrote).
async fn audited_client(s: &Server) -> Option<String> {
    s.post("/api/v1/login")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .json(&json!({"username": "nobody", "password": "wrong password"}))
        .send()
        .await
        .error(401, "bad_credentials");
    let audit = s.audit().await;
    audit.iter().find(|a| a.action == "auth.login").and_then(|a| a.client.clone())
}

#[tokio::test]
async fn the_client_address_is_taken_from_trusted_proxies_only() {
    kite_store::testing::on_each_backend(Server::start, |s| async move {
        assert_eq!(audited_client(&s).await.as_deref(), Some("127.0.0.1"), "a header from anyone is ignored");
    })
    .await;
    kite_store::testing::on_each_backend(Server::behind_proxy, |s| async move {
        assert_eq!(audited_client(&s).await.as_deref(), Some("203.0.113.7"));
    })
    .await;
}
