//! The server-rendered web pages over HTTP, on SQLite and on PostgreSQL: a real server
//! on a local port, driven as a browser drives it (session cookie, forms read from the
//! page and posted back with their hidden CSRF token and version). Every test body runs
//! once per backend (see [`common::on_each_backend`]).
//!
//! Each test asserts the status, the `Location` of redirects and the page text, then
//! checks the data through the JSON API or the store, so that a test proves that a
//! change happened, or that a refused one did not.

use chrono::{Days, Utc};
use kite_server::{auth, rules};
use serde_json::Value;

mod common;
use common::*;

// ---------------------------------------------------------------------------
// A browser
// ---------------------------------------------------------------------------

/// A signed-in browser: the cookies it sends with every request.
struct Web<'a> {
    s: &'a Server,
    cookie: String,
}

impl<'a> Web<'a> {
    /// A browser session for an existing account, opened through the store as the
    /// login form opens it, so that only the login tests pay for Argon2.
    async fn open(s: &'a Server, username: &str) -> Web<'a> {
        let accounts = s.store.accounts();
        let (user, _) = accounts.user_by_username(username).await.expect("look the user up").expect("the user exists");
        let token = auth::random_token();
        accounts
            .create_session(
                user.id,
                &auth::token_hash(&token),
                "browser",
                &auth::random_token(),
                Utc::now() + auth::BROWSER_SESSION,
            )
            .await
            .expect("open a browser session");
        Web { s, cookie: format!("{}={token}", auth::SESSION_COOKIE) }
    }

    /// The same browser with one more cookie (e.g. `lang=en`).
    fn with_cookie(&self, cookie: &str) -> Web<'a> {
        Web { s: self.s, cookie: format!("{}; {cookie}", self.cookie) }
    }

    async fn get(&self, path: &str) -> Reply {
        self.s.get(path).cookie(&self.cookie).send().await
    }

    async fn post(&self, path: &str, fields: &Fields) -> Reply {
        self.s.post(path).cookie(&self.cookie).form(&fields.pairs()).send().await
    }

    /// Opens a page that must answer 200.
    async fn page(&self, path: &str) -> Reply {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r
    }

    /// Opens the form page at `path` and returns where its form posts and what a
    /// browser would submit without changes.
    async fn form(&self, path: &str) -> (String, Fields) {
        form_of(&self.page(path).await)
    }

    /// Opens the form page at `path`, changes `changes` and submits it where it posts.
    async fn submit(&self, path: &str, changes: &[(&str, &str)]) -> Reply {
        let (action, mut fields) = self.form(path).await;
        for (k, v) in changes {
            fields.set(k, v);
        }
        self.post(&action, &fields).await
    }
}

/// Form fields in order, as a browser sends them.
#[derive(Debug, Clone, Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets a field, adding it when the form has none of that name.
    fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(f) => f.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    /// The fields with `name` set to `value`.
    fn with(mut self, name: &str, value: &str) -> Fields {
        self.set(name, value);
        self
    }

    fn without(&self, name: &str) -> Fields {
        Fields(self.0.iter().filter(|(k, _)| k != name).cloned().collect())
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

/// The fields of a JSON test body (see `common`), as form fields.
fn fields_of(body: &Value) -> Fields {
    let obj = body.as_object().expect("a JSON object");
    Fields(
        obj.iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Reading pages
// ---------------------------------------------------------------------------

/// Undoes minijinja's HTML escaping.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')?;
    Some(unescape(&tag[i..i + j]))
}

/// The last POST form of a page (the first is the logout button of the header): where
/// it posts, and every named input with its value and every select with its selected
/// option (or its first), as a browser would submit them.
fn form_of(page: &Reply) -> (String, Fields) {
    let html = &page.text;
    let start = html.rfind("<form method=\"post\"").unwrap_or_else(|| panic!("{}: no form in {html}", page.what));
    let end = start + html[start..].find("</form>").expect("the end of the form");
    let form = &html[start..end];
    let action = attr(&form[..form.find('>').expect("form tag")], "action").expect("the form's action");
    let mut fields = Fields::default();
    let mut rest = form;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let tag = &rest[..=rest.find('>').expect("the end of a tag")];
        if tag.starts_with("<input") {
            if let Some(name) = attr(tag, "name") {
                fields.0.push((name, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<textarea") {
            let name = attr(tag, "name").expect("a textarea's name");
            let close = rest.find("</textarea>").expect("the end of a textarea");
            fields.0.push((name, unescape(&rest[tag.len()..close])));
            rest = &rest[close..];
            continue;
        } else if tag.starts_with("<select") {
            let name = attr(tag, "name").expect("a select's name");
            let close = rest.find("</select>").expect("the end of a select");
            let (mut first, mut chosen) = (None, None);
            for option in rest[..close].split("<option").skip(1) {
                let otag = &option[..option.find('>').expect("option tag")];
                let value = attr(otag, "value").unwrap_or_default();
                if otag.split_whitespace().any(|w| w == "selected") {
                    chosen = Some(value.clone());
                }
                first.get_or_insert(value);
            }
            fields.0.push((name, chosen.or(first).unwrap_or_default()));
            rest = &rest[close..];
            continue;
        }
        rest = &rest[tag.len()..];
    }
    (action, fields)
}

/// The text between `open` and the next `close`, unescaped.
fn between(html: &str, open: &str, close: &str) -> Option<String> {
    let i = html.find(open)? + open.len();
    let j = html[i..].find(close)?;
    Some(unescape(&html[i..i + j]))
}

/// The message shown beside a field.
fn field_error(page: &Reply, field: &str) -> Option<String> {
    between(&page.text, &format!("<small class=\"field-error\" id=\"e-{field}\">"), "</small>")
}

/// Every field that has a message beside it.
fn error_fields(page: &Reply) -> Vec<String> {
    let marker = "<small class=\"field-error\" id=\"e-";
    page.text.split(marker).skip(1).map(|s| s[..s.find('"').expect("closing quote")].to_string()).collect()
}

/// The page-level message.
fn page_error(page: &Reply) -> Option<String> {
    between(&page.text, "<div class=\"alert\" role=\"alert\" id=\"page-error\">", "</div>")
}

/// The `Location` of a redirect, which must be a 303.
#[track_caller]
fn see_other(r: &Reply) -> String {
    assert_eq!(r.status, 303, "{}: expected a redirect; body: {}", r.what, r.text);
    r.headers.get("location").and_then(|v| v.to_str().ok()).expect("a Location header").to_string()
}

/// Asserts a refused form: the status, the page-level message and each field's message.
#[track_caller]
fn assert_refused(r: &Reply, status: u16, page_message: &str, fields: &[(&str, &str)]) {
    assert_eq!(r.status.as_u16(), status, "{}: unexpected status; body: {}", r.what, r.text);
    assert_eq!(page_error(r).as_deref(), Some(page_message), "{}: page-level message in {}", r.what, r.text);
    for (field, message) in fields {
        assert_eq!(field_error(r, field).as_deref(), Some(*message), "{}: the message beside {field}", r.what);
        assert!(
            r.text.contains(&format!("aria-describedby=\"e-{field}\"")),
            "{}: the {field} input does not point at its message",
            r.what
        );
    }
    let mut shown = error_fields(r);
    shown.sort();
    let mut expected: Vec<String> = fields.iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(shown, expected, "{}: fields with a message", r.what);
}

/// Asserts an error page: the status and its message, with no form on it.
#[track_caller]
fn assert_error_page(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status.as_u16(), status, "{}: unexpected status; body: {}", r.what, r.text);
    assert_eq!(page_error(r).as_deref(), Some(message), "{}: message in {}", r.what, r.text);
    let ctype = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ctype.starts_with("text/html"), "{}: content type {ctype}", r.what);
}

/// Decodes `%XX` escapes (the `next` parameter of the login redirect).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ASCII escape");
            out.push(u8::from_str_radix(hex, 16).expect("a hex escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// The member id of a `/members/{id}` address.
fn member_id_of(location: &str) -> i64 {
    location
        .strip_prefix("/members/")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a member: {location}"))
}

// ---------------------------------------------------------------------------
// Reading data through the API (as the system administrator)
// ---------------------------------------------------------------------------

async fn api(w: &World, path: &str) -> Value {
    w.s.get(path).auth(&w.root).send().await.ok().clone()
}

async fn api_status(w: &World, path: &str) -> u16 {
    w.s.get(path).auth(&w.root).send().await.status.as_u16()
}

/// Names of the members a search finds (through the list, which does not audit).
async fn api_names(w: &World, query: &str) -> Vec<String> {
    let page = api(w, &format!("/api/v1/members?{query}&limit=200")).await;
    page["items"].as_array().expect("items").iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

async fn member_count(w: &World) -> i64 {
    api(w, "/api/v1/overview").await["members"].as_i64().expect("a count")
}

async fn flows_of(w: &World, id: i64) -> Vec<Value> {
    api(w, &format!("/api/v1/members/{id}/flows")).await.as_array().expect("flows").clone()
}

/// Audit records of `action` about member `id`, read through the store.
async fn audits(s: &Server, action: &str, id: i64) -> usize {
    let id = id.to_string();
    s.audit().await.iter().filter(|e| e.action == action && e.target_id.as_deref() == Some(id.as_str())).count()
}

/// A member n's form fields (see `common::member_body`).
fn member_fields(name: &str, org: &str, n: u32) -> Fields {
    fields_of(&member_body(name, org, n))
}

/// Registers a member through the page; returns their id.
async fn register(web: &Web<'_>, name: &str, org: &str, n: u32) -> i64 {
    let (action, mut fields) = web.form(&format!("/members/new?org={org}")).await;
    for (k, v) in member_fields(name, org, n).0 {
        fields.set(&k, &v);
    }
    member_id_of(&see_other(&web.post(&action, &fields).await))
}

// ---------------------------------------------------------------------------
// Signing in
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_page_sends_a_stranger_to_the_login_and_the_login_returns_there() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let id = w.member("TA-B1");
        let pages = [
            "/".to_string(),
            "/orgs".into(),
            "/orgs/TA".into(),
            "/orgs/new?parent=TA".into(),
            "/orgs/TA/edit".into(),
            "/orgs/TA-B1/move".into(),
            "/members".into(),
            "/members?q=%E5%BC%A0&org=TA&mobility=resident".into(),
            "/members/new?org=TA-B1".into(),
            format!("/members/{id}"),
            format!("/members/{id}/edit"),
            format!("/members/{id}/depart"),
            format!("/members/{id}/audit"),
            "/lists/outflow".into(),
            "/lists/inflow?status=all&mobile=true".into(),
            "/flows/1".into(),
        ];
        for path in &pages {
            let to = see_other(&w.s.get(path).send().await);
            let next = to.strip_prefix("/login?next=").unwrap_or_else(|| panic!("{path}: redirected to {to}"));
            assert_eq!(percent_decode(next), *path, "{path}: the login is to return here");
            // The login page carries the way back in its form.
            let login = w.s.get(&to).send().await;
            assert_eq!(login.status, 200, "{to}: {}", login.text);
            assert_eq!(form_of(&login).1.get("next"), Some(path.as_str()), "{to}: the form's next");
            assert!(login.text.contains("登录"), "{to}: a Chinese login page");
        }

        // Form posts are sent to the login too, and change nothing.
        let org = fields_of(&org_body("WEB-X", Some("TA"), "未登录创建", "branch"));
        let r = w.s.post("/orgs/new").form(&org.pairs()).send().await;
        assert_eq!(see_other(&r), "/login?next=/orgs/new");
        let r = w.s.post(&format!("/members/{id}/depart")).form(&fields_of(&departure_body()).pairs()).send().await;
        assert_eq!(see_other(&r), format!("/login?next=/members/{id}/depart"));
        assert_eq!(api_status(&w, "/api/v1/orgs/WEB-X").await, 404);
        assert!(flows_of(&w, id).await.is_empty());

        // Signing in through the form returns to the page asked for.
        let path = &pages[7];
        let login = w.s.get(&format!("/login?next={}", percent_encode_all(path))).send().await;
        let (action, mut fields) = form_of(&login);
        assert_eq!(action, "/login");
        fields.set("username", "ta_admin");
        fields.set("password", PASSWORD);
        let r = w.s.post("/login").form(&fields.pairs()).send().await;
        assert_eq!(see_other(&r), *path);
        let cookie = r.set_cookie(auth::SESSION_COOKIE).expect("a session cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "cookie flags: {cookie}");
        let cookie = cookie.split(';').next().unwrap().to_string();
        let list = w.s.get(path).cookie(&cookie).send().await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert!(list.text.contains("张伟") && list.text.contains("ta_admin"), "{}", list.text);
        assert!(!list.text.contains("李娜"), "the search for 张 finds 张伟 only: {}", list.text);
    })
    .await;
}

/// Every byte as `%XX` (a query value the login page must decode).
fn percent_encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn the_login_stays_on_site_and_refuses_wrong_passwords_in_chinese() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        // An off-site `next` is never offered nor followed.
        for evil in ["//evil.example", "https://evil.example", "/\\evil.example", "evil.example"] {
            let login = w.s.get(&format!("/login?next={}", percent_encode_all(evil))).send().await;
            assert_eq!(login.status, 200);
            assert_eq!(form_of(&login).1.get("next"), Some("/"), "the login page offered {evil:?}");
        }
        for evil in ["//evil.example", "https://evil.example/x", "/\\evil.example"] {
            let r =
                w.s.post("/login").form(&[("username", "b1_sec"), ("password", PASSWORD), ("next", evil)]).send().await;
            assert_eq!(see_other(&r), "/", "after a login with next={evil:?}");
            assert!(r.set_cookie(auth::SESSION_COOKIE).is_some());
        }

        // A wrong password: 401, the Chinese message, the typed name kept, no session.
        let r =
            w.s.post("/login")
                .form(&[("username", "ta_admin"), ("password", "wrong"), ("next", "/orgs/TA")])
                .send()
                .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(page_error(&r).as_deref(), Some("用户名或密码错误"));
        let (_, fields) = form_of(&r);
        assert_eq!(fields.get("username"), Some("ta_admin"), "the typed user name is kept");
        assert_eq!(fields.get("password"), Some(""), "the password is not sent back");
        assert_eq!(fields.get("next"), Some("/orgs/TA"), "the way back is kept");
        assert!(r.set_cookie(auth::SESSION_COOKIE).is_none(), "no session after a failed login");
        // An unknown user gets the same answer.
        let r = w.s.post("/login").form(&[("username", "nobody"), ("password", PASSWORD)]).send().await;
        assert_eq!(r.status, 401);
        assert_eq!(page_error(&r).as_deref(), Some("用户名或密码错误"));
        let failed = w.s.audit().await.iter().filter(|e| e.action == "auth.login" && e.outcome == "failed").count();
        assert_eq!(failed, 2, "both failures are audited");

        // Logging out ends the session (with the page's CSRF token).
        let web = Web::open(&w.s, "ta_admin").await;
        let (action, fields) = form_of_first(&web.page("/").await);
        assert_eq!(action, "/logout");
        let r = web.post("/logout", &fields).await;
        assert_eq!(see_other(&r), "/login");
        let cleared = r.set_cookie(auth::SESSION_COOKIE).expect("the session cookie is removed");
        assert!(cleared.contains("Max-Age=0") || cleared.contains("expires=Thu, 01 Jan 1970"), "{cleared}");
        assert_eq!(see_other(&web.get("/").await), "/login?next=/");
    })
    .await;
}

/// The first POST form of a page: the header's logout button.
fn form_of_first(page: &Reply) -> (String, Fields) {
    form_from(page, page.text.find("<form method=\"post\"").expect("a form"))
}

/// The form of a page that starts at `start`, alone.
fn form_from(page: &Reply, start: usize) -> (String, Fields) {
    let end = start + page.text[start..].find("</form>").expect("end of form") + "</form>".len();
    let only = Reply {
        what: page.what.clone(),
        status: page.status,
        headers: page.headers.clone(),
        text: page.text[start..end].to_string(),
        json: Value::Null,
        bytes: Vec::new(),
    };
    form_of(&only)
}

#[tokio::test]
async fn a_login_next_with_control_characters_stays_on_site() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        // Browsers drop tabs and newlines from URLs: "/\t/evil.example" is "//evil.example".
        let mut wrong = Vec::new();
        for evil in ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\t\\evil.example"] {
            let r =
                w.s.post("/login").form(&[("username", "b1_sec"), ("password", PASSWORD), ("next", evil)]).send().await;
            let to = r.headers.get("location").map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
            let as_browsers_read_it = to.as_deref().map(|t| t.replace(['\t', '\n', '\r'], ""));
            let off_site = as_browsers_read_it.is_some_and(|t| t.starts_with("//") || t.starts_with("/\\"));
            if r.status != 303 || off_site {
                wrong.push(format!("next={evil:?}: {} to {to:?} ({:?})", r.status, r.text));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("; "));
    })
    .await;
}

// ---------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_form_post_needs_this_sessions_csrf_token() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let id = w.member("TA-B1");
        let web = Web::open(&w.s, "root").await;
        let other = Web::open(&w.s, "b1_sec").await;
        let others_token = form_of_first(&other.page("/").await).1.get("csrf").unwrap().to_string();
        let before_count = member_count(&w).await;
        let b1 = api(&w, "/api/v1/orgs/TA-B1").await;

        // Each form, filled in validly, as its page offers it.
        let mut forms: Vec<(String, Fields)> = Vec::new();
        let (a, mut f) = web.form("/orgs/new?parent=TA").await;
        for (k, v) in [("code", "CSRF-X"), ("name", "不该出现的支部")] {
            f.set(k, v);
        }
        forms.push((a, f));
        let (a, mut f) = web.form("/orgs/TA-B1/edit").await;
        f.set("name", "不该出现的名称");
        forms.push((a, f));
        let (a, mut f) = web.form("/orgs/TA-B2/move").await;
        f.set("parent_code", "TB");
        forms.push((a, f));
        let (a, mut f) = web.form("/members/new?org=TA-B1").await;
        for (k, v) in member_fields("不该出现", "TA-B1", 150).0 {
            f.set(&k, &v);
        }
        forms.push((a, f));
        let (a, mut f) = web.form(&format!("/members/{id}/edit")).await;
        f.set("occupation", "不该出现的职业");
        forms.push((a, f));
        let (a, mut f) = web.form(&format!("/members/{id}/depart")).await;
        for (k, v) in fields_of(&departure_body()).0 {
            f.set(&k, &v);
        }
        forms.push((a, f));
        forms.push(form_of_first(&web.page("/").await));
        let actions: Vec<&str> = forms.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            actions,
            [
                "/orgs/new".to_string(),
                "/orgs/TA-B1/edit".into(),
                "/orgs/TA-B2/move".into(),
                "/members/new".into(),
                format!("/members/{id}/edit"),
                format!("/members/{id}/depart"),
                "/logout".into(),
            ]
        );

        for (action, fields) in &forms {
            let token = fields.get("csrf").expect("every form has a CSRF field");
            assert!(token.len() >= 32, "{action}: a real token: {token:?}");
            let wrong = format!("{}A", &token[..token.len() - 1]);
            let wrong = if wrong == token { format!("{}B", &token[..token.len() - 1]) } else { wrong };
            let mut tries = vec![("no token", fields.without("csrf"))];
            for (what, value) in
                [("an empty token", ""), ("a wrong token", wrong.as_str()), ("another's token", &others_token)]
            {
                let mut f = fields.clone();
                f.set("csrf", value);
                tries.push((what, f));
            }
            for (what, f) in tries {
                let r = web.post(action, &f).await;
                assert_error_page(&r, 403, "页面已过期，请刷新后重试");
                assert!(r.headers.get("location").is_none(), "{action} with {what}: no redirect");
            }
        }

        // Nothing changed, and the session still works.
        assert_eq!(api_status(&w, "/api/v1/orgs/CSRF-X").await, 404);
        let b1_now = api(&w, "/api/v1/orgs/TA-B1").await;
        assert_eq!((&b1_now["name"], &b1_now["version"]), (&b1["name"], &b1["version"]));
        assert_eq!(api(&w, "/api/v1/orgs/TA-B2").await["parent_code"], "TA");
        assert_eq!(member_count(&w).await, before_count);
        assert!(api_names(&w, "q=不该出现").await.is_empty());
        assert_eq!(api(&w, &format!("/api/v1/members/{id}")).await["occupation"], "工人");
        assert!(flows_of(&w, id).await.is_empty());
        web.page("/").await;

        // The same forms with the page's token do go through (so the refusals above
        // were about the token): the logout, last, ends the session.
        for (action, fields) in &forms {
            let r = web.post(action, fields).await;
            see_other(&r);
        }
        assert_eq!(api(&w, "/api/v1/orgs/CSRF-X").await["parent_code"], "TA");
        assert_eq!(api(&w, "/api/v1/orgs/TA-B2").await["parent_code"], "TB");
        assert_eq!(flows_of(&w, id).await.len(), 1);
        assert_eq!(see_other(&web.get("/").await), "/login?next=/");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Organizations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_org_admin_creates_a_child_organization() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let ta = web.page("/orgs/TA").await;
        assert!(ta.text.contains("href=\"/orgs/new?parent=TA\""), "the 新增下级组织 link: {}", ta.text);
        assert!(ta.text.contains("新增下级组织") && ta.text.contains("编辑组织"));

        let (action, fields) = web.form("/orgs/new?parent=TA").await;
        assert_eq!(action, "/orgs/new");
        assert_eq!(fields.get("parent_code"), Some("TA"));
        assert_eq!(fields.get("division_code"), Some(COUNTY), "the parent's division is the default");
        assert_eq!(fields.get("level"), Some("branch"));
        assert_eq!(fields.get("version"), None, "a new organization has no version");
        let new = web.page("/orgs/new?parent=TA").await;
        assert!(new.text.contains("新安镇党委"), "the parent's name is shown");

        let r = web
            .submit("/orgs/new?parent=TA", &[("code", "TA-B3"), ("name", "新安镇第三支部"), ("phone", "0518-83210000")])
            .await;
        assert_eq!(see_other(&r), "/orgs/TA-B3");
        let page = web.page("/orgs/TA-B3").await;
        assert!(page.text.contains("<h1>新安镇第三支部</h1>"), "{}", page.text);
        assert!(page.text.contains("href=\"/orgs/TA\""), "the breadcrumb leads to the parent");
        let ta = web.page("/orgs/TA").await;
        assert!(ta.text.contains("<a href=\"/orgs/TA-B3\">新安镇第三支部</a>"), "a child of TA: {}", ta.text);

        let o = api(&w, "/api/v1/orgs/TA-B3").await;
        assert_eq!(o["parent_code"], "TA");
        assert_eq!(o["name"], "新安镇第三支部");
        assert_eq!(o["level"], "branch");
        assert_eq!(o["division_code"], COUNTY);
        assert_eq!(o["status"], "active");
        assert_eq!(api(&w, "/api/v1/orgs/TA").await["child_count"], 2 + 1);

        // The system administrator alone is offered, and may make, a new root.
        let admin = Web::open(&w.s, "root").await;
        assert!(admin.page("/orgs").await.text.contains("href=\"/orgs/new\""), "the 新增顶级党组织 link");
        let (_, fields) = admin.form("/orgs/new").await;
        assert_eq!(fields.get("parent_code"), Some(""));
        let r = admin
            .submit(
                "/orgs/new",
                &[("code", "CTY2"), ("name", "响水县委"), ("level", "committee"), ("division_code", "320921")],
            )
            .await;
        assert_eq!(see_other(&r), "/orgs/CTY2");
        let o = api(&w, "/api/v1/orgs/CTY2").await;
        assert_eq!((o["parent_code"].clone(), o["level"].as_str()), (Value::Null, Some("committee")));
        assert!(admin.page("/orgs").await.text.contains("<a href=\"/orgs/CTY2\">响水县委</a>"));
    })
    .await;
}

#[tokio::test]
async fn what_people_type_is_shown_escaped() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let name = "<b>韩\"梅'</b>";
        let escaped = "&lt;b&gt;韩&quot;梅&#x27;&lt;&#x2f;b&gt;";
        let id = register(&web, name, "TA-B1", 102).await;
        assert_eq!(api(&w, &format!("/api/v1/members/{id}")).await["name"], name, "stored as typed");
        let r = web.submit("/orgs/TA-B1/edit", &[("address", "<script>alert(1)</script>")]).await;
        see_other(&r);
        for path in [
            format!("/members/{id}"),
            format!("/members/{id}/edit"),
            format!("/members/{id}/depart"),
            format!("/members/{id}/audit"),
            "/members?org=TA-B1".to_string(),
            "/orgs/TA-B1".to_string(),
        ] {
            let page = web.page(&path).await;
            assert!(!page.text.contains("<b>韩") && !page.text.contains("<script>alert"), "{path}: {}", page.text);
        }
        assert!(web.page(&format!("/members/{id}")).await.text.contains(&format!("<h1>{escaped}</h1>")));
        assert_eq!(web.form(&format!("/members/{id}/edit")).await.1.get("name"), Some(name), "round trip");
        assert!(web.page("/orgs/TA-B1").await.text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    })
    .await;
}

#[tokio::test]
async fn a_refused_organization_form_shows_every_error_and_keeps_the_input() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let r = web
            .submit(
                "/orgs/new?parent=TA",
                &[("code", "坏 code!"), ("name", ""), ("division_code", "999999"), ("address", "人民路<b>&\"1\"号")],
            )
            .await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[
                ("name", "必填"),
                ("code", "组织代码应为2到32位字母、数字、-或_"),
                ("division_code", "不存在的行政区划代码"),
            ],
        );
        let (action, kept) = form_of(&r);
        assert_eq!(action, "/orgs/new");
        assert_eq!(kept.get("code"), Some("坏 code!"));
        assert_eq!(kept.get("division_code"), Some("999999"));
        assert_eq!(kept.get("address"), Some("人民路<b>&\"1\"号"));
        assert_eq!(kept.get("parent_code"), Some("TA"));
        assert!(!r.text.contains("<b>&"), "typed text is escaped");
        assert!(r.text.contains("新安镇党委"), "the parent's name is shown again");
        assert_eq!(api(&w, "/api/v1/orgs/TA").await["child_count"], 2);

        // A code in use: 409, beside the code, the rest kept.
        let r = web.submit("/orgs/new?parent=TA", &[("code", "TB-B1"), ("name", "重复代码支部")]).await;
        assert_refused(&r, 409, "组织代码已被使用", &[("code", "组织代码已被使用")]);
        assert_eq!(form_of(&r).1.get("name"), Some("重复代码支部"));
        assert_eq!(api(&w, "/api/v1/orgs/TA").await["child_count"], 2);
        let tb_b1 = api(&w, "/api/v1/orgs/TB-B1").await;
        assert_eq!((&tb_b1["name"], &tb_b1["parent_code"]), (&"堆沟港镇第一支部".into(), &"TB".into()));

        // The refused form, corrected, goes through.
        let (_, mut fixed) = form_of(&r);
        fixed.set("code", "TA-B9");
        assert_eq!(see_other(&web.post("/orgs/new", &fixed).await), "/orgs/TA-B9");
        assert_eq!(api(&w, "/api/v1/orgs/TA-B9").await["name"], "重复代码支部");
    })
    .await;
}

#[tokio::test]
async fn organization_edits_need_the_version_the_page_was_read_at() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let (action, stale) = web.form("/orgs/TA-B1/edit").await;
        assert_eq!(action, "/orgs/TA-B1/edit");
        let version = api(&w, "/api/v1/orgs/TA-B1").await["version"].as_i64().unwrap();
        assert_eq!(stale.get("version"), Some(version.to_string().as_str()));
        assert_eq!(stale.get("name"), Some("新安镇第一支部"));
        assert_eq!(stale.get("status"), Some("active"));
        assert_eq!(stale.get("address"), Some("新安镇人民路 1 号"));

        let r = web.submit("/orgs/TA-B1/edit", &[("name", "新安镇第一党支部"), ("address", "新安镇人民路 2 号")]).await;
        assert_eq!(see_other(&r), "/orgs/TA-B1");
        assert!(web.page("/orgs/TA-B1").await.text.contains("<h1>新安镇第一党支部</h1>"));
        let o = api(&w, "/api/v1/orgs/TA-B1").await;
        assert_eq!((o["name"].as_str(), o["address"].as_str()), (Some("新安镇第一党支部"), Some("新安镇人民路 2 号")));
        assert_eq!(o["version"], version + 1);
        assert_eq!(o["parent_code"], "TA", "an edit does not move");

        // The first page's form, sent after that change: refused, shown again as typed.
        let mut late = stale.clone();
        late.set("name", "过时的名称");
        let r = web.post(&action, &late).await;
        assert_refused(&r, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        assert_eq!(form_of(&r).1.get("name"), Some("过时的名称"));
        // Without a version at all: the same.
        let r = web.post(&action, &late.without("version")).await;
        assert_refused(&r, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        let o = api(&w, "/api/v1/orgs/TA-B1").await;
        assert_eq!((o["name"].as_str(), o["version"].as_i64()), (Some("新安镇第一党支部"), Some(version + 1)));

        // Field errors on an edit are shown beside their fields.
        let r = web.submit("/orgs/TA-B1/edit", &[("name", " "), ("phone", "电话")]).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("name", "必填"), ("phone", "格式不正确")]);
        let r = web.submit("/orgs/TA-B1/edit", &[("status", "bogus")]).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("status", "格式不正确")]);
        assert_eq!(api(&w, "/api/v1/orgs/TA-B1").await["version"], version + 1);
    })
    .await;
}

#[tokio::test]
async fn a_dissolved_organization_takes_no_members() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        assert_eq!(
            see_other(&web.submit("/orgs/new?parent=TA", &[("code", "TA-OLD"), ("name", "旧支部")]).await),
            "/orgs/TA-OLD"
        );
        let page = web.page("/orgs/TA-OLD").await;
        assert!(page.text.contains("href=\"/members/new?org=TA-OLD\""), "an active org takes members");

        let r = web.submit("/orgs/TA-OLD/edit", &[("status", "dissolved")]).await;
        assert_eq!(see_other(&r), "/orgs/TA-OLD");
        assert_eq!(api(&w, "/api/v1/orgs/TA-OLD").await["status"], "dissolved");
        let page = web.page("/orgs/TA-OLD").await;
        assert!(page.text.contains("<dd>已撤销</dd>"), "{}", page.text);
        assert!(!page.text.contains("/members/new?org=TA-OLD"), "no 新增党员 link any more");
        assert!(!page.text.contains("/orgs/new?parent=TA-OLD"), "no 新增下级组织 link any more");
        assert!(web.page("/orgs/TA").await.text.contains("旧支部</a> <small>(已撤销)</small>"));

        // Registering a member into it is refused beside the organization.
        let count = member_count(&w).await;
        let (action, mut fields) = web.form("/members/new?org=TA-OLD").await;
        assert_eq!(fields.get("org_code"), Some("TA-OLD"));
        for (k, v) in member_fields("撤销后新增", "TA-OLD", 160).0 {
            fields.set(&k, &v);
        }
        let r = web.post(&action, &fields).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("org_code", "该党组织已撤销，不能接收党员")]);
        assert_eq!(form_of(&r).1.get("name"), Some("撤销后新增"));
        assert_eq!(member_count(&w).await, count);
        assert!(api_names(&w, "q=撤销后新增").await.is_empty());
        // Nor can it take children.
        let r = web.submit("/orgs/new?parent=TA-OLD", &[("code", "TA-OLD-1"), ("name", "旧支部下级")]).await;
        assert!(matches!(r.status.as_u16(), 400 | 409), "{}: {}", r.status, r.text);
        assert_eq!(api_status(&w, "/api/v1/orgs/TA-OLD-1").await, 404);
    })
    .await;
}

#[tokio::test]
async fn organizations_move_with_their_subtree_but_never_under_themselves() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "root").await;
        let (action, fields) = web.form("/orgs/TA/move").await;
        assert_eq!(action, "/orgs/TA/move");
        assert_eq!(fields.get("parent_code"), Some("CTY"));
        let version = api(&w, "/api/v1/orgs/TA").await["version"].as_i64().unwrap();
        assert_eq!(fields.get("version"), Some(version.to_string().as_str()));

        for (under, message) in [("TA-B1", "不能移动到自身或其下级组织之下"), ("TA", "不能移动到自身或其下级组织之下")]
        {
            let r = web.submit("/orgs/TA/move", &[("parent_code", under)]).await;
            assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("parent_code", message)]);
            assert_eq!(form_of(&r).1.get("parent_code"), Some(under), "the typed parent is kept");
        }
        let r = web.submit("/orgs/TA/move", &[("parent_code", "NOPE")]).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("parent_code", "上级党组织不存在")]);
        let ta = api(&w, "/api/v1/orgs/TA").await;
        assert_eq!((ta["parent_code"].as_str(), ta["version"].as_i64()), (Some("CTY"), Some(version)));

        // A valid move carries the subtree and its members.
        let r = web.submit("/orgs/TA/move", &[("parent_code", "TB")]).await;
        assert_eq!(see_other(&r), "/orgs/TA");
        assert_eq!(api(&w, "/api/v1/orgs/TA").await["parent_code"], "TB");
        assert_eq!(api(&w, "/api/v1/orgs/TA-B1").await["parent_code"], "TA");
        let tb = api(&w, "/api/v1/orgs/TB/children").await;
        let mut codes: Vec<&str> = tb.as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap()).collect();
        codes.sort();
        assert_eq!(codes, ["TA", "TB-B1"]);
        let mut names = api_names(&w, "org=TB").await;
        names.sort();
        assert_eq!(names, ["张伟", "李娜", "王芳"], "TB's subtree now holds TA's members");
        let b1 = web.page("/orgs/TA-B1").await;
        assert!(b1.text.contains("href=\"/orgs/TB\""), "the breadcrumb passes through TB: {}", b1.text);

        // The form read before the move is stale now.
        let r = web.post(&action, &fields.clone().with("parent_code", "CTY")).await;
        assert_refused(&r, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        assert_eq!(api(&w, "/api/v1/orgs/TA").await["parent_code"], "TB");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------

#[tokio::test]
async fn members_are_registered_through_the_form() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let count = member_count(&w).await;
        let (action, fields) = web.form("/members/new?org=TA-B2").await;
        assert_eq!(action, "/members/new");
        assert_eq!(fields.get("org_code"), Some("TA-B2"));
        assert_eq!(fields.get("category"), Some("full"));

        // A wrong check digit: refused beside the ID number, nothing created, all kept.
        let mut bad = member_fields("赵敏", "TA-B2", 101);
        let wrong = with_wrong_check_digit(&id_of(101));
        bad.set("id_number", &wrong);
        bad.set("csrf", fields.get("csrf").unwrap());
        let r = web.post(&action, &bad).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("id_number", "公民身份号码校验位错误，请核对")]);
        let (_, kept) = form_of(&r);
        for k in ["name", "id_number", "birth_date", "phone", "org_code", "residence_division", "occupation"] {
            assert_eq!(kept.get(k), bad.get(k), "{k} is kept");
        }
        assert_eq!(kept.get("gender"), bad.get("gender"), "the chosen gender stays selected");
        assert_eq!(kept.get("education"), Some("bachelor"), "the chosen education stays selected");
        assert_eq!(member_count(&w).await, count);
        assert!(api_names(&w, "q=赵敏").await.is_empty());

        // Valid: to the new member's page.
        let mut good = kept.clone();
        good.set("id_number", &id_of(101));
        let to = see_other(&web.post(&action, &good).await);
        let id = member_id_of(&to);
        assert_eq!(member_count(&w).await, count + 1);
        let page = web.page(&to).await;
        assert!(page.text.contains("<h1>赵敏</h1>"));
        assert!(page.text.contains(&format!("<dd id=\"full-id\">{}</dd>", id_of(101))), "{}", page.text);
        assert!(page.text.contains("新安镇第二支部"));
        let m = api(&w, &format!("/api/v1/members/{id}")).await;
        assert_eq!((m["name"].as_str(), m["org_code"].as_str()), (Some("赵敏"), Some("TA-B2")));
        assert_eq!(m["id_number"], id_of(101));
        assert_eq!(m["mobility"], "resident");

        // The list masks the number.
        let list = web.page("/members?q=赵敏").await;
        assert!(list.text.contains(&format!("<a href=\"/members/{id}\">赵敏</a>")), "{}", list.text);
        assert!(list.text.contains(&masked(&id_of(101))));
        assert!(!list.text.contains(&id_of(101)), "the full number is not in the list");

        // The same ID number again: 409 beside it, nothing created.
        let mut dup = member_fields("赵敏二", "TA-B1", 101);
        dup.set("csrf", fields.get("csrf").unwrap());
        let r = web.post(&action, &dup).await;
        assert_refused(&r, 409, "该公民身份号码已登记", &[("id_number", "该公民身份号码已登记")]);
        assert_eq!(form_of(&r).1.get("name"), Some("赵敏二"));
        assert_eq!(member_count(&w).await, count + 1);
        assert!(api_names(&w, "q=赵敏二").await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn member_edits_need_the_version_the_page_was_read_at() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let id = w.member("TA-B1");
        let web = Web::open(&w.s, "b1_sec").await;
        let (action, stale) = web.form(&format!("/members/{id}/edit")).await;
        assert_eq!(action, format!("/members/{id}/edit"));
        // The form holds the record as stored.
        let expected = member_fields("张伟", "TA-B1", 1);
        for (k, v) in &expected.0 {
            assert_eq!(stale.get(k), Some(v.as_str()), "the edit form's {k}");
        }
        let version = stale.get("version").and_then(|v| v.parse::<i64>().ok()).expect("a version");

        let r = web.submit(&format!("/members/{id}/edit"), &[("occupation", "教师"), ("phone", "13800001111")]).await;
        assert_eq!(see_other(&r), format!("/members/{id}"));
        let m = api(&w, &format!("/api/v1/members/{id}")).await;
        assert_eq!((m["occupation"].as_str(), m["phone"].as_str()), (Some("教师"), Some("13800001111")));
        assert_eq!(m["version"], version + 1);

        let mut late = stale.clone();
        late.set("occupation", "过时的职业");
        let r = web.post(&action, &late).await;
        assert_refused(&r, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        assert_eq!(form_of(&r).1.get("occupation"), Some("过时的职业"), "what was typed is kept");
        let r = web.post(&action, &late.without("version")).await;
        assert_refused(&r, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        let m = api(&w, &format!("/api/v1/members/{id}")).await;
        assert_eq!((m["occupation"].as_str(), m["version"].as_i64()), (Some("教师"), Some(version + 1)));

        // A field error on an edit: beside the field, nothing saved.
        let r = web.submit(&format!("/members/{id}/edit"), &[("name", ""), ("joined_on", "2099-01-01")]).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("name", "必填"), ("joined_on", "日期不能晚于今天")],
        );
        assert_eq!(api(&w, &format!("/api/v1/members/{id}")).await["name"], "张伟");
    })
    .await;
}

#[tokio::test]
async fn a_departure_is_recorded_once_and_shown_on_the_member() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let id = w.member("TA-B1");
        let web = Web::open(&w.s, "b1_sec").await;
        let depart_link = format!("href=\"/members/{id}/depart\"");
        let page = web.page(&format!("/members/{id}")).await;
        assert!(page.text.contains(&depart_link) && page.text.contains("外出登记"), "{}", page.text);
        assert!(page.text.contains("<dd>未外出</dd>") && page.text.contains("暂无流动记录"));

        let (action, fields) = web.form(&format!("/members/{id}/depart")).await;
        assert_eq!(action, format!("/members/{id}/depart"));
        assert_eq!(fields.get("left_on"), Some(kite_server::rules::today().to_string().as_str()));
        assert_eq!(fields.get("contact_phone"), Some("13910000001"), "the member's phone is the default");

        // A future date: beside the date, nothing recorded.
        let future = (kite_server::rules::today() + Days::new(3)).to_string();
        let mut body = fields_of(&departure_body());
        body.set("csrf", fields.get("csrf").unwrap());
        let mut f = body.clone();
        f.set("left_on", &future);
        let r = web.post(&action, &f).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("left_on", "日期不能晚于今天")]);
        assert_eq!(form_of(&r).1.get("left_on"), Some(future.as_str()));
        assert_eq!(form_of(&r).1.get("destination_address"), Some("苏州高新区狮山街道"));
        // Before joining, and an unknown destination: each beside its field.
        f.set("left_on", "2001-01-01");
        f.set("destination_division", "999999");
        let r = web.post(&action, &f).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("left_on", "外出日期不能早于入党日期"), ("destination_division", "不存在的行政区划代码")],
        );
        assert!(flows_of(&w, id).await.is_empty());

        // Valid: recorded, and the page shows it.
        let r = web.post(&action, &body).await;
        assert_eq!(see_other(&r), format!("/members/{id}"));
        let flows = flows_of(&w, id).await;
        assert_eq!(flows.len(), 1);
        assert_eq!(
            (flows[0]["status"].as_str(), flows[0]["left_on"].as_str()),
            (Some("not_checked_in"), Some("2024-03-01"))
        );
        assert_eq!(flows[0]["destination_division"], ELSEWHERE);
        let page = web.page(&format!("/members/{id}")).await;
        assert!(page.text.contains("<dd>外出未报到</dd>"), "{}", page.text);
        assert!(page.text.contains(">2024-03-01</a></td>") && page.text.contains("苏州高新区狮山街道"));
        assert!(!page.text.contains(&depart_link), "no 外出登记 link while away");
        assert!(!page.text.contains(">外出登记</a>"));
        let away = web.page("/members?mobility=away").await;
        assert!(away.text.contains("张伟") && away.text.contains("外出未报到"));
        assert_eq!(api(&w, "/api/v1/overview?org=TA-B1").await["mobile_out"], 1);

        // A second departure while away: 409, still one flow.
        let r = web.post(&action, &body).await;
        assert_refused(&r, 409, "该党员已有未结束的外出登记", &[]);
        assert_eq!(flows_of(&w, id).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_audit_page_lists_changes_and_views_without_adding_one() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let id = register(&web, "孙丽", "TA-B1", 120).await;
        let r = web.submit(&format!("/members/{id}/edit"), &[("employer", "灌南县另一家公司")]).await;
        assert_eq!(see_other(&r), format!("/members/{id}"));
        // Opening the detail (the full number) is one audited view each time; the edit
        // form shows the full number too.
        let views = audits(&w.s, "member.view_id", id).await;
        assert_eq!(views, 1, "the edit form showed the full number once");
        web.page(&format!("/members/{id}")).await;
        web.page(&format!("/members/{id}")).await;
        assert_eq!(audits(&w.s, "member.view_id", id).await, views + 2);
        let views = views + 2;

        // The history and the departure form do not show the full number: no view.
        let audit = web.page(&format!("/members/{id}/audit")).await;
        let depart = web.page(&format!("/members/{id}/depart")).await;
        web.page(&format!("/members/{id}/audit")).await;
        assert_eq!(audits(&w.s, "member.view_id", id).await, views, "the history and the form are not views");
        for page in [&audit, &depart] {
            assert!(!page.text.contains(&id_of(120)), "{}: the full number is shown", page.what);
            assert!(page.text.contains(&masked(&id_of(120))), "{}: the masked number", page.what);
        }

        // The history lists each change and each view, as stored.
        assert!(audit.text.contains("<h1>操作记录</h1>"));
        let rows = |label: &str| audit.text.matches(&format!("<td>{label}</td>")).count();
        assert_eq!(rows("新增党员"), 1);
        assert_eq!(rows("修改党员信息"), 1);
        assert_eq!(rows("查看完整身份证号"), views, "every view of the full number is listed");
        assert!(audit.text.contains("灌南县另一家公司") && audit.text.contains("灌南县某公司"), "the change's diff");
        assert!(audit.text.contains("ta_admin"), "who");
        let stored = w.s.audit().await;
        let about: Vec<_> = stored
            .iter()
            .filter(|e| {
                e.target_type.as_deref() == Some("member") && e.target_id.as_deref() == Some(id.to_string().as_str())
            })
            .collect();
        assert_eq!(audit.text.matches("<tr><td>").count(), about.len(), "one row per record about the member");
        // The departure then appears in the history.
        let r = web
            .post(
                &format!("/members/{id}/depart"),
                &fields_of(&departure_body()).with("csrf", form_of(&depart).1.get("csrf").unwrap()),
            )
            .await;
        see_other(&r);
        let audit = web.page(&format!("/members/{id}/audit")).await;
        assert_eq!(audit.text.matches("<td>外出登记</td>").count(), 1);
        assert_eq!(audits(&w.s, "member.view_id", id).await, views);
    })
    .await;
}

#[tokio::test]
async fn the_member_list_searches_filters_and_pages() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        w.s.bulk_members("TA-B2", 200..260).await;
        let web = Web::open(&w.s, "ta_admin").await;
        // The search form's own submission (every filter empty) lists everyone in scope.
        let mut seen = std::collections::BTreeSet::new();
        let mut url = "/members?q=&org=&mobility=".to_string();
        for _ in 0..5 {
            let page = web.page(&url).await;
            let before = seen.len();
            let rows: Vec<&str> = page.text.split("<tr><td><a href=\"/members/").skip(1).collect();
            for row in &rows {
                let id: i64 = row[..row.find('"').unwrap()].parse().unwrap();
                assert!(seen.insert(id), "member {id} listed twice");
            }
            assert_eq!(seen.len() - before, rows.len());
            match between(&page.text, "<p><a href=\"", "\" role=\"button\" class=\"secondary\">下一页") {
                Some(next) => url = next,
                None => break,
            }
        }
        assert_eq!(seen.len(), 2 + 60, "every member of TA once, across pages");
        assert!(!seen.contains(&w.member("TB-B1")));

        let b1 = web.page("/members?org=TA-B1").await;
        assert!(b1.text.contains("张伟") && !b1.text.contains("李娜") && !b1.text.contains("批量"));
        assert_eq!(form_of_search(&b1), "TA-B1", "the filter is kept in the form");
        let none = web.page("/members?q=没有这个人").await;
        assert!(none.text.contains("没有符合条件的党员"));
        let r = web.get("/members?mobility=flying").await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = web.get("/members?org=NOPE").await;
        assert_error_page(&r, 400, "提交的内容有误，请检查标出的项目");
    })
    .await;
}

/// The organization filter's value in the member search form.
fn form_of_search(page: &Reply) -> String {
    let start = page.text.find("id=\"f-org\"").expect("the org filter");
    let tag_start = page.text[..start].rfind('<').unwrap();
    let tag = &page.text[tag_start..start + page.text[start..].find('>').unwrap()];
    attr(tag, "value").unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Scope
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_org_admin_sees_and_changes_only_their_subtree() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let tb_member = w.member("TB-B1");
        let tb_version = api(&w, &format!("/api/v1/members/{tb_member}")).await["version"].clone();
        let hidden = ["王芳", "堆沟港镇", id_of(3).as_str(), &masked(&id_of(3))].map(str::to_string);
        let no_leak = |r: &Reply| {
            for h in &hidden {
                assert!(!r.text.contains(h.as_str()), "{} shows {h}: {}", r.what, r.text);
            }
        };
        for path in ["", "/edit", "/depart", "/audit"] {
            let r = web.get(&format!("/members/{tb_member}{path}")).await;
            assert_error_page(&r, 404, "记录不存在或无权查看");
            no_leak(&r);
        }
        for path in ["/orgs/TB", "/orgs/TB/edit", "/orgs/TB/move", "/orgs/TB-B1", "/orgs/new?parent=TB"] {
            let r = web.get(path).await;
            assert_error_page(&r, 403, "没有执行此操作的权限");
            no_leak(&r);
        }
        for path in ["/", "/orgs", "/orgs/TA", "/members", "/members?org=TB"] {
            let r = web.page(path).await;
            no_leak(&r);
        }
        // A search by the name finds nothing (the page repeats only what was typed).
        let r = web.page("/members?q=王芳").await;
        assert!(r.text.contains("没有符合条件的党员") && !r.text.contains("member-results"), "{}", r.text);
        assert_eq!(r.text.matches("王芳").count(), 1, "only in the search box: {}", r.text);
        no_leak(&Reply { text: r.text.replacen("value=\"王芳\"", "", 1), ..r });
        let list = web.page("/members").await;
        assert!(list.text.contains("张伟") && list.text.contains("李娜"));
        assert!(web.page("/").await.text.contains("<strong id=\"count-members\">2</strong>"));

        // Posts outside the subtree are refused and change nothing.
        let csrf = form_of_first(&web.page("/").await).1.get("csrf").unwrap().to_string();
        let mut edit = member_fields("王芳改", "TB-B1", 3);
        edit.set("csrf", &csrf);
        edit.set("version", "1");
        let r = web.post(&format!("/members/{tb_member}/edit"), &edit).await;
        assert_error_page(&r, 404, "记录不存在或无权查看");
        no_leak(&r);
        let mut dep = fields_of(&departure_body());
        dep.set("csrf", &csrf);
        let r = web.post(&format!("/members/{tb_member}/depart"), &dep).await;
        assert_error_page(&r, 404, "记录不存在或无权查看");
        no_leak(&r);
        let mut new = member_fields("越界新增", "TB-B1", 170);
        new.set("csrf", &csrf);
        let r = web.post("/members/new", &new).await;
        // Organizations are not secret: the form comes back with the reason beside the field.
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("org_code", "该党组织不在您的管理范围内")]);
        no_leak(&r);
        assert_error_page(&web.get("/members/new?org=TB-B1").await, 404, "记录不存在或无权查看");
        let tb = api(&w, "/api/v1/orgs/TB").await;
        let mut org = fields_of(&org_body("TB", None, "改名", "general_branch"));
        org.set("csrf", &csrf);
        org.set("version", &tb["version"].to_string());
        let r = web.post("/orgs/TB/edit", &org).await;
        assert_error_page(&r, 403, "没有执行此操作的权限");
        let mut org = fields_of(&org_body("TB-B2", Some("TB"), "越界支部", "branch"));
        org.set("csrf", &csrf);
        let r = web.post("/orgs/new", &org).await;
        assert_eq!(r.status, 403, "{}", r.text);
        // Moving one's own subtree away, or a branch under TB, is refused too.
        for (code, under) in [("TA", "TB"), ("TA-B2", "TB")] {
            let version = api(&w, &format!("/api/v1/orgs/{code}")).await["version"].to_string();
            let mv = Fields(vec![
                ("csrf".into(), csrf.clone()),
                ("version".into(), version),
                ("parent_code".into(), under.into()),
            ]);
            let r = web.post(&format!("/orgs/{code}/move"), &mv).await;
            assert_error_page(&r, 403, "没有执行此操作的权限");
        }
        // A root of one's own is refused; the system administrator's control is not offered.
        assert!(!web.page("/orgs").await.text.contains("href=\"/orgs/new\""), "no 新增顶级党组织 link");
        assert_error_page(&web.get("/orgs/new").await, 403, "没有执行此操作的权限");
        let mut top = fields_of(&org_body("TOP-X", None, "越界顶级", "committee"));
        top.set("csrf", &csrf);
        assert_error_page(&web.post("/orgs/new", &top).await, 403, "没有执行此操作的权限");
        assert_eq!(w.s.get("/api/v1/orgs/TOP-X").auth(&w.root).send().await.status, 404, "no root was made");
        // Moving the member's record out of the subtree: refused, the record stays.
        let zw = w.member("TA-B1");
        let r = web.submit(&format!("/members/{zw}/edit"), &[("org_code", "TB-B1")]).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("org_code", "该党组织不在您的管理范围内")]);
        assert_eq!(api(&w, &format!("/api/v1/members/{zw}")).await["org_code"], "TA-B1");
        // Within the subtree the same forms work.
        let r = web.submit("/orgs/TA-B2/move", &[("parent_code", "TA-B1")]).await;
        assert_eq!(see_other(&r), "/orgs/TA-B2");
        assert_eq!(api(&w, "/api/v1/orgs/TA-B2").await["parent_code"], "TA-B1");

        let m = api(&w, &format!("/api/v1/members/{tb_member}")).await;
        assert_eq!((&m["name"], &m["version"]), (&"王芳".into(), &tb_version));
        assert!(flows_of(&w, tb_member).await.is_empty());
        assert!(api_names(&w, "q=越界新增").await.is_empty());
        assert_eq!(api(&w, "/api/v1/orgs/TB").await["name"], "堆沟港镇党委");
        assert_eq!(api_status(&w, "/api/v1/orgs/TB-B2").await, 404);
        assert_eq!(api_status(&w, "/api/v1/orgs/TOP-X").await, 404);
        // Each refusal is audited as denied.
        let denied =
            w.s.audit()
                .await
                .iter()
                .filter(|e| e.outcome == "denied" && e.username.as_deref() == Some("ta_admin"))
                .count();
        assert!(denied >= 4 + 5 + 9, "denied attempts are audited: {denied}");
    })
    .await;
}

#[tokio::test]
async fn a_secretary_keeps_members_but_not_organizations() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "b1_sec").await;
        let page = web.page("/orgs/TA-B1").await;
        for link in ["/orgs/TA-B1/edit", "/orgs/new?parent=TA-B1", "/orgs/TA-B1/move"] {
            assert!(!page.text.contains(&format!("href=\"{link}\"")), "a secretary is offered {link}");
        }
        for label in ["编辑组织", "新增下级组织", "移动组织"] {
            assert!(!page.text.contains(label), "a secretary is offered {label}");
        }
        assert!(page.text.contains("href=\"/members/new?org=TA-B1\""), "but may register members");
        let me = web.page(&format!("/members/{}", w.member("TA-B1"))).await;
        assert!(
            me.text.contains(">编辑</a>") && me.text.contains(">外出登记</a>") && me.text.contains(">操作记录</a>")
        );

        // Typing the forms' addresses: refused before anything is filled in.
        for path in ["/orgs/TA-B1/edit", "/orgs/new?parent=TA-B1", "/orgs/TA-B1/move"] {
            assert_error_page(&web.get(path).await, 403, "没有执行此操作的权限");
        }

        // Posting the organization forms anyway: 403, nothing changed.
        let csrf = form_of_first(&page).1.get("csrf").unwrap().to_string();
        let b1 = api(&w, "/api/v1/orgs/TA-B1").await;
        let mut f = fields_of(&org_body("TA-B1", Some("TA"), "书记改名", "branch"));
        f.set("csrf", &csrf);
        f.set("version", &b1["version"].to_string());
        f.set("status", "dissolved");
        let r = web.post("/orgs/TA-B1/edit", &f).await;
        assert_error_page(&r, 403, "没有执行此操作的权限");
        let mut f = fields_of(&org_body("TA-B1-G", Some("TA-B1"), "书记建的小组", "group"));
        f.set("csrf", &csrf);
        let r = web.post("/orgs/new", &f).await;
        assert_eq!(r.status, 403, "{}", r.text);
        let now = api(&w, "/api/v1/orgs/TA-B1").await;
        assert_eq!((&now["name"], &now["status"], &now["version"]), (&b1["name"], &"active".into(), &b1["version"]));
        assert_eq!(api_status(&w, "/api/v1/orgs/TA-B1-G").await, 404);

        // Only the branch's members.
        let list = web.page("/members").await;
        assert!(list.text.contains("张伟") && !list.text.contains("李娜") && !list.text.contains("王芳"));
        let r = web.get(&format!("/members/{}", w.member("TA-B2"))).await;
        assert_error_page(&r, 404, "记录不存在或无权查看");
        assert!(!r.text.contains("李娜"));
        // A member registered by the secretary lands in the branch.
        let id = register(&web, "周杰", "TA-B1", 130).await;
        assert_eq!(api(&w, &format!("/api/v1/members/{id}")).await["org_code"], "TA-B1");
    })
    .await;
}

#[tokio::test]
async fn service_staff_see_organizations_but_no_member() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "staff").await;
        let list = web.page("/members").await;
        assert!(list.text.contains("没有符合条件的党员"), "{}", list.text);
        assert!(!list.text.contains("新增党员"), "no registration offered");
        for (_, name, n) in WORLD_MEMBERS {
            assert!(!list.text.contains(name) && !list.text.contains(&masked(&id_of(n))));
        }
        let found = web.page("/members?q=张伟").await;
        assert!(found.text.contains("没有符合条件的党员") && !found.text.contains("member-results"));
        for path in ["", "/edit", "/depart", "/audit"] {
            let r = web.get(&format!("/members/{}{path}", w.member("TA-B1"))).await;
            assert_error_page(&r, 404, "记录不存在或无权查看");
            assert!(!r.text.contains("张伟"));
        }
        let ta = web.page("/orgs/TA").await;
        assert!(ta.text.contains("<h1>新安镇党委</h1>") && ta.text.contains("新安镇第一支部"));
        for label in ["编辑组织", "新增下级组织", "移动组织", "新增党员"] {
            assert!(!ta.text.contains(label), "service staff are offered {label}");
        }
        let mut f = member_fields("站点新增", "TA-B1", 180);
        f.set("csrf", form_of_first(&ta).1.get("csrf").unwrap());
        let r = web.post("/members/new", &f).await;
        assert_error_page(&r, 403, "没有执行此操作的权限");
        assert_error_page(&web.get("/members/new").await, 403, "没有执行此操作的权限");
        assert!(api_names(&w, "q=站点新增").await.is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Language and unknown pages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_language_switch_turns_messages_into_english() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "ta_admin").await;
        let form_page = "/members/new?org=TA-B1";
        let r = w.s.get("/lang/en").header("referer", &format!("{}{form_page}", w.s.base)).send().await;
        assert_eq!(see_other(&r), form_page, "back to the page the switch was made on");
        let lang = r.set_cookie("lang").expect("a language cookie");
        let en = web.with_cookie(lang.split(';').next().unwrap());
        assert_eq!(lang.split(';').next(), Some("lang=en"));

        let page = en.page(form_page).await;
        assert!(page.text.contains("<html lang=\"en\">") && page.text.contains("New member"), "{}", page.text);
        let (action, mut f) = form_of(&page);
        for (k, v) in member_fields("", "TA-B1", 190).0 {
            f.set(&k, &v);
        }
        f.set("id_number", &with_wrong_check_digit(&id_of(190)));
        let r = en.post(&action, &f).await;
        assert_refused(
            &r,
            400,
            "Please correct the marked fields",
            &[("name", "Required"), ("id_number", "The ID number's check digit is wrong")],
        );
        let r = en.post(&action, &f.without("csrf")).await;
        assert_error_page(&r, 403, "The page expired; reload and try again");
        let r = en.get(&format!("/members/{}", w.member("TB-B1"))).await;
        assert_error_page(&r, 404, "Not found, or not yours to see");

        // Without the cookie the same form is refused in Chinese; Accept-Language works too.
        let r = web.post(&action, &f).await;
        assert_eq!(field_error(&r, "name").as_deref(), Some("必填"));
        let r = w.s.post(&action).cookie(&web.cookie).lang("en-GB,en;q=0.9").form(&f.pairs()).send().await;
        assert_eq!(field_error(&r, "name").as_deref(), Some("Required"));
        // And switching back.
        let r = en.get("/lang/zh-CN").await;
        assert_eq!(see_other(&r), "/", "no referer: to the overview");
        assert_eq!(r.set_cookie("lang").unwrap().split(';').next(), Some("lang=zh-CN"));
        let zh = web.with_cookie("lang=zh-CN");
        let r = w.s.post(&action).cookie(&zh.cookie).lang("en").form(&f.pairs()).send().await;
        assert_eq!(field_error(&r, "name").as_deref(), Some("必填"), "the cookie wins over the header");
        assert_eq!(member_count(&w).await, 3, "nothing was created");
    })
    .await;
}

#[tokio::test]
async fn unknown_pages_answer_with_a_not_found_page() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        for path in ["/no-such-page", "/orgs/TA/nothing", "/members/1/nothing"] {
            let r = w.s.get(path).send().await;
            assert_error_page(&r, 404, "页面不存在");
            assert_eq!(r.headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
        }
        let r = w.s.get("/no-such-page").lang("en").send().await;
        assert_error_page(&r, 404, "There is no such page");
        let web = Web::open(&w.s, "root").await;
        let r = web.get("/no-such-page").await;
        assert_error_page(&r, 404, "页面不存在");
        for path in ["/orgs/NOPE", "/orgs/NOPE/edit", "/members/999999", "/members/999999/audit"] {
            let r = web.get(path).await;
            assert_error_page(&r, 404, "记录不存在或无权查看");
        }
        // Malformed addresses, queries and forms get a page too, never plain text.
        for path in ["/members/abc", "/flows/99999999999999999999", "/agreements/x", "/checkins/1e3"] {
            assert_error_page(&web.get(path).await, 400, "请求地址中的参数格式不正确");
        }
        assert_error_page(&web.get("/lists/outflow?limit=many").await, 400, "查询参数格式不正确");
        assert_error_page(&web.get("/agreements?limit=-1").await, 400, "查询参数格式不正确");
        let r = w.s.post("/orgs/new").cookie(&web.cookie).json(&serde_json::json!({"name": "x"})).send().await;
        assert_error_page(&r, 400, "提交的表单无法读取，请刷新页面后重试");
        let r = w.s.post("/c/o/TA").raw_json("{}").send().await;
        assert_error_page(&r, 400, "提交的表单无法读取，请刷新页面后重试");
    })
    .await;
}

#[tokio::test]
async fn forms_keep_their_input_limits_and_personal_pages_are_not_cached() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let web = Web::open(&w.s, "root").await;
        let id = w.member("TA-B1");
        let form = web.page(&format!("/members/{id}/edit")).await;
        let tag = between(&form.text, "<input id=\"f-id_number\"", ">").expect("the ID number input");
        assert!(tag.contains(" maxlength=\"18\"") && tag.contains(" autocomplete=\"off\""), "{tag}");
        let dep = web.page(&format!("/members/{id}/depart")).await;
        let tag = between(&dep.text, "<input id=\"f-expected_months\"", ">").expect("the months input");
        assert!(tag.contains(" min=\"1\"") && tag.contains(" max=\"120\""), "{tag}");
        for r in [&form, &dep, &web.page(&format!("/members/{id}")).await] {
            assert_eq!(r.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{}", r.what);
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Check-in pages
// ---------------------------------------------------------------------------

/// The latest code sent to `phone`, read from the outbox as staff would in development.
async fn code_sent_to(s: &Server, phone: &str) -> String {
    let messages = s.store.outbox().recent(20).await.expect("read the outbox");
    let m = messages.iter().find(|m| m.recipient == phone).expect("an SMS to the phone");
    m.body.chars().filter(|c| c.is_ascii_digit()).take(6).collect()
}

#[tokio::test]
async fn a_member_checks_in_on_a_phone_page_and_the_branch_confirms_it() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let s = &w.s;
        let mut dst = org_body("DST", None, "苏州高新区党工委", "committee");
        dst["division_code"] = serde_json::json!("320505");
        s.post("/api/v1/orgs").auth(&w.root).json(&dst).send().await.expect(201);

        assert_error_page(&s.get("/c/o/NOPE").send().await, 404, "报到链接无效或该站点已停用，请向工作人员确认");
        let page = s.get("/c/o/DST").send().await;
        assert_eq!(page.status, 200, "{}", page.text);
        let (action, fields) = form_of(&page);
        assert_eq!(action, "/c/o/DST");
        assert!(fields.get("request_id").is_some_and(|k| k.len() >= 8), "a fresh request key");
        let phone = "13800000001";
        let fields = fields
            .with("name", "张伟")
            .with("id_number", &id_of(1))
            .with("phone", phone)
            .with("home_org_code", "TA-B1")
            .with("division_code", "320505")
            .with("employer", "狮山路某公司");

        // Asking for the code keeps what was typed and says where it went.
        let sent = s.post(&format!("{action}/code")).form(&fields.pairs()).send().await;
        assert_eq!(sent.status, 200, "{}", sent.text);
        assert!(sent.text.contains("id=\"notice\""), "{}", sent.text);
        assert_eq!(form_of(&sent).1.get("name"), Some("张伟"));
        let again = s.post(&format!("{action}/code")).form(&fields.pairs()).send().await;
        assert_eq!(again.status, 429);
        assert_eq!(page_error(&again).as_deref(), Some("验证码发送过于频繁，请一分钟后再试"));

        let missing = s.post(&action).form(&fields.pairs()).send().await;
        assert_refused(&missing, 400, "提交的内容有误，请检查标出的项目", &[("code", "必填")]);
        let fields = fields.with("code", &code_sent_to(s, phone).await);
        let done = s.post(&action).form(&fields.pairs()).send().await;
        assert_eq!(done.status, 200, "{}", done.text);
        let reference = between(&done.text, "<dd id=\"reference\">", "</dd>").expect("a reference");
        // A double submission shows the same check-in again.
        let twice = s.post(&action).form(&fields.pairs()).send().await;
        assert_eq!(between(&twice.text, "<dd id=\"reference\">", "</dd>"), Some(reference.clone()));

        // The poster and its QR code.
        let qr = s.get("/c/o/DST/qr.svg").send().await;
        assert_eq!(qr.headers.get("content-type").unwrap(), "image/svg+xml");
        assert!(qr.text.contains("<svg"));
        let poster = s.get("/c/o/DST/poster").send().await;
        assert!(unescape(&poster.text).contains("src=\"/c/o/DST/qr.svg\""), "{}", poster.text);

        // The branch secretary finds it in the queue and confirms it.
        let sec = Web::open(s, "b1_sec").await;
        let queue = sec.page("/checkins").await;
        assert!(queue.text.contains(&reference), "{}", queue.text);
        let id: i64 = reference.trim_start_matches("BD").parse().unwrap();
        let detail = sec.page(&format!("/checkins/{id}")).await;
        assert!(detail.text.contains("已找到，姓名一致"), "{}", detail.text);
        let (_, decision) = form_of(&detail);
        let stale = decision.clone().with("version", "0");
        let r = sec.post(&format!("/checkins/{id}/confirm"), &stale).await;
        assert_eq!(r.status, 409);
        let r = sec.post(&format!("/checkins/{id}/confirm"), &decision.without("reason")).await;
        assert_eq!(see_other(&r), format!("/checkins/{id}"));
        let after = sec.page(&format!("/checkins/{id}")).await;
        assert_eq!(between(&after.text, "<span id=\"checkin-status\">", "</span>").as_deref(), Some("已确认"));
        // Another town's secretary cannot open it.
        s.user("tb_sec", kite_domain::Role::Secretary, Some("TB-B1"), None).await;
        let other = Web::open(s, "tb_sec").await;
        assert_error_page(&other.get(&format!("/checkins/{id}")).await, 404, "记录不存在或无权查看");
    })
    .await;
}

#[tokio::test]
async fn the_lists_and_a_flow_page_serve_both_sides() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (f1, _) = away_two(&d).await;
        let w = &d.w;
        let id = w.member("TA-B1");
        let home = Web::open(&w.s, "b1_sec").await;
        let away = Web::open(&w.s, "dst_admin").await;

        // Each side's list, with the export keeping the filters.
        let list = home.page("/lists/outflow?status=checked_in").await;
        assert!(list.text.contains(&format!("href=\"/flows/{f1}\">张伟</a>")), "{}", list.text);
        assert!(
            unescape(&list.text).contains("href=\"/api/v1/lists/outflow/export?status=checked_in\""),
            "{}",
            list.text
        );
        assert!(list.text.contains("流出清单") && !list.text.contains("李娜"));
        let inflow = away.page("/lists/inflow").await;
        assert!(inflow.text.contains("张伟") && inflow.text.contains("新安镇第一支部"), "{}", inflow.text);
        // A bad filter is named beside its field, and what was typed stays.
        let r = home.get("/lists/outflow?division=32x&left_from=2026-05-01").await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(field_error(&r, "division").as_deref(), Some("格式不正确"));
        assert!(r.text.contains("value=\"32x\"") && r.text.contains("value=\"2026-05-01\""), "{}", r.text);
        assert_error_page(&home.get("/lists/sideways").await, 404, "记录不存在或无权查看");
        let staff = Web::open(&w.s, "dp1_staff").await;
        assert_eq!(staff.get("/lists/outflow").await.status, 403);

        // The inflow side rates the member on the flow's page, without the record's link.
        let page = away.page(&format!("/flows/{f1}")).await;
        assert!(!page.text.contains(&format!("href=\"/members/{id}\"")) && !page.text.contains("return-form"));
        assert!(page.text.contains("只显示日常管理所需的信息"), "{}", page.text);
        let (action, mut f) = form_of(&page);
        assert_eq!(action, format!("/flows/{f1}/evaluations"));
        let r = away.post(&action, &f).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("rating", "必填")]);
        f.set("rating", "excellent");
        f.set("comment", "积极参加社区志愿服务");
        let mut forged = f.clone();
        forged.set("csrf", "not-this-sessions-token");
        assert_eq!(away.post(&action, &forged).await.status, 403);
        assert!(!away.page(&format!("/flows/{f1}")).await.text.contains("积极参加社区志愿服务"));
        assert_eq!(see_other(&away.post(&action, &f).await), format!("/flows/{f1}#evaluations"));
        let rated = away.page(&format!("/flows/{f1}")).await;
        assert!(rated.text.contains("积极参加社区志愿服务") && rated.text.contains("<td>优秀</td>"), "{}", rated.text);
        // The same form again, from a stale page: the period already has its evaluation.
        let r = away.post(&action, &f).await;
        assert_refused(&r, 409, "本期已有评议，请刷新页面后修改", &[]);
        // Revised from a fresh page.
        let (action, mut f) = away.form(&format!("/flows/{f1}")).await;
        f.set("rating", "qualified");
        assert_eq!(see_other(&away.post(&action, &f).await), format!("/flows/{f1}#evaluations"));

        // The home side reads it on the member's page and ends the flow.
        let member = home.page(&format!("/members/{id}")).await;
        assert!(member.text.contains("合格") && member.text.contains("积极参加社区志愿服务"), "{}", member.text);
        assert!(member.text.contains(&format!("href=\"/flows/{f1}\"")));
        let page = home.page(&format!("/flows/{f1}")).await;
        assert!(page.text.contains(&format!("href=\"/members/{id}\"")) && page.text.contains("return-form"));
        let (action, mut f) = form_of(&page);
        assert_eq!(action, format!("/flows/{f1}/return"));
        f.set("returned_on", "2024-01-01");
        let r = home.post(&action, &f).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("returned_on", "返回日期不能早于外出日期")]);
        f.set("returned_on", &kite_server::rules::today().to_string());
        let mut forged = f.clone();
        forged.set("csrf", "not-this-sessions-token");
        assert_eq!(home.post(&action, &forged).await.status, 403);
        assert!(home.page(&format!("/flows/{f1}")).await.text.contains("return-form"));
        assert_eq!(see_other(&home.post(&action, &f).await), format!("/flows/{f1}"));
        let page = home.page(&format!("/flows/{f1}")).await;
        assert!(page.text.contains("<span id=\"flow-status\">已返回</span>") && !page.text.contains("return-form"));
        assert!(home.page(&format!("/members/{id}")).await.text.contains("<dd>未外出</dd>"));
        // The same return posted again: refused, nothing changes.
        let r = home.post(&action, &f).await;
        assert_eq!(r.status, 409, "{}", r.text);
    })
    .await;
}

#[tokio::test]
async fn a_home_side_outside_the_system_gets_a_printable_letter() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let w = &d.w;
        let stranger_id = id_of(150);
        let stranger = serde_json::json!({
            "name": "陈立新", "id_number": stranger_id, "phone": "13956001234", "home_org_text": "安徽省临泉县城关镇党委",
            "division_code": DEST_DIVISION, "address": "狮山路 66 号", "request_id": "letter-0001",
        });
        w.s.post("/api/v1/counter/o/DST-B1").auth(&d.dst_admin).json(&stranger).send().await.expect(201);
        let queue = w.s.get("/api/v1/checkins?status=home_unknown").auth(&d.dst_admin).send().await;
        let id = queue.ok()["items"][0]["id"].as_i64().unwrap();

        let away = Web::open(&w.s, "dst_admin").await;
        let detail = away.page(&format!("/checkins/{id}")).await;
        assert!(detail.text.contains(&format!("/checkins/{id}/letter")), "{}", detail.text);
        let letter = away.page(&format!("/checkins/{id}/letter")).await;
        for part in ["流动党员身份核实函", "安徽省临泉县城关镇党委", stranger_id.as_str(), "狮山大厦联合党支部", "回　执"] {
            assert!(letter.text.contains(part), "{part} in {}", letter.text);
        }
        // Printing it shows the full number, so it is audited as a view; others never get it.
        let views = w.s.audit().await.into_iter().filter(|a| a.action == "checkin.letter").count();
        assert_eq!(views, 1);
        let other = Web::open(&w.s, "tb_sec").await;
        assert_eq!(other.get(&format!("/checkins/{id}/letter")).await.status, 404);
        assert_eq!(w.s.audit().await.into_iter().filter(|a| a.action == "checkin.letter").count(), 1);

        // Without an activity certificate: the request for one goes to that home side on paper.
        assert!(detail.text.contains(&format!("/checkins/{id}/certificate-request")), "{}", detail.text);
        let request = away.page(&format!("/checkins/{id}/certificate-request")).await;
        for part in ["流动党员活动证补发申请函", "安徽省临泉县城关镇党委", stranger_id.as_str(), "狮山大厦联合党支部"] {
            assert!(request.text.contains(part), "{part} in {}", request.text);
        }
        let requests = w.s.audit().await.into_iter().filter(|a| a.action == "certificate.request_letter").count();
        assert_eq!(requests, 1, "the full number shown, the view audited");
        assert_eq!(other.get(&format!("/checkins/{id}/certificate-request")).await.status, 404);
        // A certificate the member shows from outside the system is recorded as shown.
        let (url, check) = form_with_id(&detail, "check-certificate");
        see_other(&away.post(&url, &check.with("number", "AH-LQ-2026-0031")).await);
        let after = away.page(&format!("/checkins/{id}")).await;
        assert!(after.text.contains("AH-LQ-2026-0031") && after.text.contains("按原件登记"), "{}", after.text);
    })
    .await;
}

#[tokio::test]
async fn an_agreement_is_recorded_through_the_form_with_its_signed_text() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let w = &d.w;
        let ta = Web::open(&w.s, "ta_admin").await;
        let list = ta.page("/agreements").await;
        assert!(
            list.text.contains("href=\"/agreements/new\"") && list.text.contains("没有符合条件的协议"),
            "{}",
            list.text
        );

        // The caller's organization is the outflow party to begin with; what is missing is
        // named beside each field.
        let (action, f) = ta.form("/agreements/new").await;
        assert_eq!((action.as_str(), f.get("outflow.org_code")), ("/agreements/new", Some("TA")));
        assert_eq!(f.get("starts_on"), Some(rules::today().to_string().as_str()));
        let r = ta.post(&action, &f).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[
                ("title", "必填"),
                ("inflow.org_code", "请填写系统内党组织代码或系统外单位名称"),
                ("org_building", "五项共建内容至少填写一项"),
            ],
        );
        let typed = f
            .clone()
            .with("title", "新安镇—高新区共建共管协议")
            .with("inflow.org_code", "DST")
            .with("member_management", "流入地负责日常管理 <每半年> 反馈")
            .with("ends_on", "2020-01-01");
        let r = ta.post(&action, &typed).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("ends_on", "截止日期不能早于生效日期")]);
        let (_, kept) = form_of(&r);
        assert_eq!(kept.get("member_management"), Some("流入地负责日常管理 <每半年> 反馈"));
        assert_eq!(kept.get("inflow.org_code"), Some("DST"));
        let r = ta.post(&action, &kept.with("ends_on", "").with("consultation_cycle", "quarterly")).await;
        let at = see_other(&r);
        let id: i64 = at.trim_start_matches("/agreements/").parse().expect("the new agreement's page");
        let page = ta.page(&at).await;
        assert!(
            page.text.contains("流入地负责日常管理 &lt;每半年&gt; 反馈") && page.text.contains("每季度"),
            "{}",
            page.text
        );
        assert!(page.text.contains("苏州高新区党工委") && page.text.contains(">有效<") && page.text.contains("长期"));

        // The signed text, with this session's token in the multipart form.
        let (upload, fields) = form_of(&page);
        assert_eq!(upload, format!("/agreements/{id}/files"));
        let csrf = fields.get("csrf").expect("the upload form's token").to_string();
        let pdf = b"%PDF-1.4\n%%EOF\n".to_vec();
        let post = |token: &str, file: (&'static str, Vec<u8>)| {
            let call = w.s.post(&upload).cookie(&ta.cookie).multipart(&[("csrf", token)], Some((file.0, &file.1)));
            async move { call.send().await }
        };
        assert_eq!(post("forged", ("协议书.pdf", pdf.clone())).await.status, 403);
        let r = post(&csrf, ("网页.pdf", b"<html></html>".to_vec())).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("file", "只能上传 PDF、OFD、Word、PNG 或 JPEG 文件")],
        );
        assert_eq!(see_other(&post(&csrf, ("协议书.pdf", pdf.clone())).await), format!("/agreements/{id}#files"));
        let page = ta.page(&at).await;
        assert!(page.text.contains("协议书.pdf</a>") && !page.text.contains("网页.pdf"), "{}", page.text);
        // A second copy of a few megabytes (over axum's default body limit), then removed
        // with the row's button.
        let mut scan = pdf.clone();
        scan.resize(3 * 1024 * 1024, b' ');
        assert_eq!(see_other(&post(&csrf, ("副本.pdf", scan)).await), format!("/agreements/{id}#files"));
        let page = ta.page(&at).await;
        let prefix = format!("action=\"/agreements/{id}/files/");
        let forms: Vec<&str> = page.text.split(prefix.as_str()).skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        assert_eq!(forms.len(), 2, "one remove button per file");
        let remove = format!("/agreements/{id}/files/{}", forms[1]);
        let token = Fields::default().with("csrf", &csrf);
        assert_eq!(see_other(&ta.post(&remove, &token).await), format!("/agreements/{id}#files"));
        let page = ta.page(&at).await;
        assert!(page.text.contains("协议书.pdf</a>") && !page.text.contains("副本.pdf"), "{}", page.text);

        // The other party amends it from its edit page; a stale page is refused.
        let away = Web::open(&w.s, "dst_admin").await;
        let edit = format!("/agreements/{id}/edit");
        let (action, f) = away.form(&edit).await;
        assert_eq!(f.get("member_management"), Some("流入地负责日常管理 <每半年> 反馈"));
        assert_eq!(see_other(&away.post(&action, &f.clone().with("activities", "联合开展志愿服务")).await), at);
        assert_refused(&away.post(&action, &f).await, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);
        assert!(ta.page(&at).await.text.contains("联合开展志愿服务"));

        // A branch below a party sees the partner on its page, not the agreement.
        let b1 = Web::open(&w.s, "b1_sec").await;
        let org = b1.page("/orgs/TA-B1").await;
        assert!(org.text.contains("共建共管伙伴") && org.text.contains("苏州高新区党工委"), "{}", org.text);
        assert!(!org.text.contains(&format!("href=\"/agreements/{id}\"")));
        assert_error_page(&b1.get(&at).await, 404, "记录不存在或无权查看");
        assert_eq!(b1.get("/agreements/new").await.status, 403);
        assert!(!b1.page("/agreements").await.text.contains("href=\"/agreements/new\""));
    })
    .await;
}

#[tokio::test]
async fn service_points_are_kept_from_their_pages() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let w = &d.w;
        let admin = Web::open(&w.s, "dst_admin").await;
        let org = admin.page("/orgs/DST-B1").await;
        assert!(org.text.contains("href=\"/points/DP1\"") && org.text.contains("href=\"/points/new?org=DST-B1\""));
        let point = admin.page("/points/DP1").await;
        assert!(point.text.contains("dp1_staff") && point.text.contains("狮山路 1 号"), "{}", point.text);

        // A window under the station, from the station's page.
        let (action, f) = admin.form("/points/new?org=DST-B1&parent=DP1").await;
        assert_eq!((f.get("parent_code"), f.get("org_code")), (Some("DP1"), Some("DST-B1")));
        let r = admin.post(&action, &f.clone().with("level", "centre")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("code", "必填"), ("name", "必填")]);
        let typed = f.with("code", "DW9").with("name", "狮山社区服务窗口").with("level", "centre");
        let r = admin.post(&action, &typed).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("parent_code", "上级站点的层级须高于本站点（市级中心 › 区镇驿站 › 村社窗口 › 小区点位）")],
        );
        let (_, kept) = form_of(&r);
        assert_eq!(kept.get("name"), Some("狮山社区服务窗口"));
        assert_eq!(see_other(&admin.post(&action, &kept.with("level", "window")).await), "/points/DW9");
        assert!(admin.page("/points/DP1").await.text.contains("href=\"/points/DW9\""));

        // Closed from its edit page: the poster link goes, the page says so.
        let (action, f) = admin.form("/points/DW9/edit").await;
        assert_eq!(see_other(&admin.post(&action, &f.clone().with("status", "closed")).await), "/points/DW9");
        let closed = admin.page("/points/DW9").await;
        assert!(closed.text.contains("已关闭") && !closed.text.contains("/c/p/DW9/poster"), "{}", closed.text);
        assert_refused(&admin.post(&action, &f).await, 409, "该记录已被他人修改，请刷新后重新编辑", &[]);

        // Someone else's subtree: no form.
        let ta = Web::open(&w.s, "ta_admin").await;
        assert_eq!(ta.get("/points/DW9/edit").await.status, 403);
        assert_eq!(ta.get("/points/new?org=DST-B1").await.status, 403);
    })
    .await;
}

/// The post form whose `id` attribute is `id`.
fn form_with_id(page: &Reply, id: &str) -> (String, Fields) {
    let at = page.text.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{}: no form {id}", page.what));
    form_from(page, page.text[..at].rfind("<form method=\"post\"").expect("the form's start"))
}

#[tokio::test]
async fn a_transfer_is_asked_for_approved_printed_and_received_through_the_pages() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        w.s.user("tb_sec", kite_domain::Role::Secretary, Some("TB-B1"), None).await;
        let zhang = w.member("TA-B1");
        let b1 = Web::open(&w.s, "b1_sec").await;
        let tb = Web::open(&w.s, "tb_sec").await;

        // From the member's page to the form; a missing destination is named beside its field.
        let member = b1.page(&format!("/members/{zhang}")).await;
        assert!(member.text.contains(&format!("href=\"/members/{zhang}/transfer\"")), "{}", member.text);
        let (action, f) = b1.form(&format!("/members/{zhang}/transfer")).await;
        let r = b1.post(&action, &f.clone().with("reason", "在堆沟港镇定居")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("to_org_code", "必填")]);
        let (_, kept) = form_of(&r);
        assert_eq!(kept.get("reason"), Some("在堆沟港镇定居"));
        let at = see_other(&b1.post(&action, &kept.with("to_org_code", "TB-B1")).await);
        let page = b1.page(&at).await;
        assert!(page.text.contains("已申请") && page.text.contains("堆沟港镇第一支部"), "{}", page.text);

        // Refusing needs a reason, shown beside the field; approving issues the letter.
        let (url, refuse) = form_with_id(&page, "step-approve");
        assert!(!page.text.contains("id=\"step-refuse\""), "the sending side's own request is withdrawn, not refused");
        let r = b1.post(&url, &refuse.clone().with("letter_days", "0")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("letter_days", "介绍信有效天数应为正整数")]);
        let r = b1.post(&url, &refuse.clone().with("letter_days", "15").with("dues_paid_until", "2099-01")).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("dues_paid_until", "党费交至月份格式应为“2026-10”，不早于2000年、不晚于一年之后")],
        );
        see_other(&b1.post(&url, &refuse.with("letter_days", "15").with("dues_paid_until", "2026-10")).await);
        let page = b1.page(&at).await;
        assert!(page.text.contains("已开具介绍信") && page.text.contains("id=\"print-letter\""), "{}", page.text);
        // The same form sent again is stale: said on the page, nothing changes.
        let r = b1.post(&url, &form_with_id(&page, "step-withdraw").1.with("version", "1")).await;
        assert_eq!(r.status, 409, "{}", r.text);

        let letter = b1.page(&format!("{at}/letter")).await;
        assert!(
            letter.text.contains("中国共产党党员组织关系介绍信")
                && letter.text.contains("党费已交到2026-10")
                && letter.text.contains("系中共正式党员")
                && letter.text.contains("TA-B1-")
                && letter.text.contains("回执"),
            "{}",
            letter.text
        );

        // The receiving side finds it counted on its overview and in its queue, and receives it.
        let overview = tb.page("/").await;
        assert!(overview.text.contains("id=\"count-to-receive\">1<"), "{}", overview.text);
        let queue = tb.page("/transfers?queue=to_receive").await;
        assert!(queue.text.contains(&format!("href=\"{at}\"")), "{}", queue.text);
        let page = tb.page(&at).await;
        let (url, receive) = form_with_id(&page, "step-receive");
        see_other(&tb.post(&url, &receive).await);
        let page = tb.page(&at).await;
        assert!(page.text.contains("转入方已接收"), "{}", page.text);
        assert!(!page.text.contains("id=\"step-record_receipt\""), "closing the file is the sending side's");
        let page = b1.page(&at).await;
        let (url, receipt) = form_with_id(&page, "step-record_receipt");
        see_other(&b1.post(&url, &receipt).await);
        assert!(b1.page(&at).await.text.contains("回执已返回，转接完成"));

        // A member asks from their own page, and may withdraw what they asked.
        let li = w.member("TA-B2");
        w.s.user("lina", kite_domain::Role::Member, None, Some(li)).await;
        let member = Web::open(&w.s, "lina").await;
        let own = member.page(&format!("/members/{li}")).await;
        assert!(own.text.contains(&format!("href=\"/members/{li}/transfer\"")), "{}", own.text);
        let (action, f) = member.form(&format!("/members/{li}/transfer")).await;
        let at = see_other(&member.post(&action, &f.with("to_org_code", "TB-B1").with("reason", "随配偶迁居")).await);
        let page = member.page(&at).await;
        assert!(page.text.contains("党员本人") && page.text.contains("id=\"step-withdraw\""), "{}", page.text);
        assert!(!page.text.contains("id=\"step-approve\""), "{}", page.text);
        // Their own transfers, and only theirs, are listed for them.
        let mine = member.page("/transfers?queue=all").await;
        assert!(mine.text.contains(&format!("href=\"{at}\"")) && !mine.text.contains("张伟"), "{}", mine.text);
        // Someone else's record is not found, and asking for it is refused the same way.
        let other = w.s.get(&format!("/members/{zhang}/transfer")).cookie(&member.cookie).send().await;
        assert_eq!(other.status, 404, "{}", other.text);
    })
    .await;
}

#[tokio::test]
async fn a_certificate_is_issued_printed_checked_at_check_in_and_verified_through_the_pages() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        away_two(&d).await;
        let w = &d.w;
        w.s.user("cty_admin", kite_domain::Role::OrgAdmin, Some("CTY"), None).await;
        let cty = Web::open(&w.s, "cty_admin").await;
        let dst = Web::open(&w.s, "dst_admin").await;
        let zhang = w.member("TA-B1");

        // From the member's page to the form, filled from the departure; a period too long is named.
        let member = cty.page(&format!("/members/{zhang}")).await;
        assert!(member.text.contains(&format!("href=\"/members/{zhang}/certificate\"")), "{}", member.text);
        let (action, f) = cty.form(&format!("/members/{zhang}/certificate")).await;
        assert_eq!((f.get("destination_division"), f.get("reason")), (Some(DEST_DIVISION), Some("work")));
        let too_long = (rules::today() + chrono::Months::new(37)).to_string();
        let r = cty.post(&action, &f.clone().with("valid_until", &too_long)).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("valid_until", "活动证有效期不能超过三年，到期后重新办理")],
        );
        let at = see_other(&cty.post(&action, &f).await);
        let page = cty.page(&at).await;
        assert!(page.text.contains("id=\"print-certificate\"") && page.text.contains("灌南县委"), "{}", page.text);
        let number =
            page.text.split("id=\"certificate-number\">").nth(1).and_then(|t| t.split('<').next()).unwrap().to_string();
        assert!(number.starts_with("CTY-"), "{number}");

        // The print layout: the card, the number and the QR code pointing at public verification.
        let print = cty.page(&format!("{at}/print")).await;
        assert!(print.text.contains("流动党员活动证") && print.text.contains("<svg"), "{}", print.text);
        let link = format!("&#x2f;verify&#x2f;{number}</small>");
        assert!(print.text.contains(&link) && print.text.contains("不赋予"), "{}", print.text);
        assert!(!print.text.contains("<?xml"), "the QR code is inline SVG");

        // The inflow side checks it on the check-in's page; a wrong number is said beside the form.
        let checkins = dst.page("/checkins?status=confirmed").await;
        let cid =
            checkins.text.split("href=\"/checkins/").nth(1).and_then(|t| t.split('"').next()).unwrap().to_string();
        let detail = dst.page(&format!("/checkins/{cid}")).await;
        let (url, check) = form_with_id(&detail, "check-certificate");
        let r = dst.post(&url, &check.clone().with("number", "CTY-1990-00001")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("number", "系统中没有这个活动证编号，请核对")]);
        see_other(&dst.post(&url, &check.with("number", &number)).await);
        let detail = dst.page(&format!("/checkins/{cid}")).await;
        assert!(
            detail.text.contains("id=\"checked-certificate\"") && detail.text.contains("查验有效"),
            "{}",
            detail.text
        );

        // Anyone verifies it without an account: the masked name, never the full one.
        let public = w.s.get(&format!("/verify/{number}")).send().await;
        assert_eq!(public.status, 200, "{}", public.text);
        assert!(public.text.contains("张**") && !public.text.contains("张伟"), "{}", public.text);
        assert!(public.text.contains("id=\"verify-verdict\">有效"), "{}", public.text);
        assert_eq!(w.s.get("/verify?number=NOPE-0001").send().await.status, 404);

        // Reported lost: the page moves to the replacement, and the old number is no longer valid.
        let (url, lost) = form_with_id(&page, "step-report_lost");
        let next = see_other(&cty.post(&url, &lost).await);
        assert_ne!(next, at);
        assert!(cty.page(&next).await.text.contains(&number), "the replacement names the number it replaces");
        let old = w.s.get(&format!("/verify/{number}")).send().await;
        assert!(old.text.contains("无效") && old.text.contains("已挂失"), "{}", old.text);
        assert!(cty.page("/").await.text.contains("id=\"certificate-counts\""));
    })
    .await;
}

#[tokio::test]
async fn a_member_arriving_from_outside_is_registered_and_the_receipt_printed() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let b1 = Web::open(&w.s, "b1_sec").await;
        let list = b1.page("/transfers?queue=all").await;
        assert!(list.text.contains("href=\"/members/new?from_outside=1\""), "{}", list.text);
        let (action, f) = b1.form("/members/new?from_outside=1").await;
        assert_eq!(f.get("from_outside"), Some("1"));
        // The member as the letter describes them (birth date and gender agree with the ID number).
        let id = id_of(120);
        let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        let sex = if gender(120) == kite_domain::Gender::Female { "female" } else { "male" };
        let filled = f
            .clone()
            .with("name", "陈静")
            .with("id_number", &id)
            .with("birth_date", &birth)
            .with("gender", sex)
            .with("joined_on", "2015-07-01")
            .with("org_code", "TA-B1");
        // The sending organization is required; a letter from the future is refused.
        let r = b1.post(&action, &filled.clone().with("letter_date", "2099-01-01")).await;
        assert_refused(
            &r,
            400,
            "提交的内容有误，请检查标出的项目",
            &[("from_org_text", "必填"), ("letter_date", "介绍信日期不能晚于今天")],
        );
        let done = filled.with("from_org_text", "浙江省杭州市西湖区西溪街道党工委").with("letter_number", "XX-031");
        let at = see_other(&b1.post(&action, &done).await);
        let page = b1.page(&at).await;
        assert!(page.text.contains("id=\"arrival\"") && page.text.contains("西溪街道党工委"), "{}", page.text);
        let receipt = b1.page(&format!("{at}/arrival-receipt")).await;
        assert!(receipt.text.contains("党员组织关系介绍信回执") && receipt.text.contains("XX-031"), "{}", receipt.text);
        let list = b1.page("/transfers?queue=all").await;
        assert!(list.text.contains("id=\"arrival-list\"") && list.text.contains("陈静"), "{}", list.text);
    })
    .await;
}

#[tokio::test]
async fn a_screening_campaign_runs_through_the_pages() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        away_two(&d).await;
        let w = &d.w;
        w.s.user("cty_admin", kite_domain::Role::OrgAdmin, Some("CTY"), None).await;
        let cty = Web::open(&w.s, "cty_admin").await;
        assert!(cty.page("/").await.text.contains("href=\"/screening\""));
        // A secretary has no screening permission.
        let b1 = Web::open(&w.s, "b1_sec").await;
        assert_eq!(b1.get("/screening").await.status, 403);

        let (action, f) = cty.form("/screening").await;
        assert_eq!(f.get("org_code"), Some("CTY"));
        let r = cty.post(&action, &f.clone().with("name", "")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("name", "必填")]);
        let at = see_other(&cty.post(&action, &f.with("name", "冬季排查").with("place_org_code", "DST")).await);

        // A roster uploaded from the campaign's page; the matches are listed for review.
        let page = cty.page(&at).await;
        let csrf = form_with_id(&page, "roster-form").1.get("csrf").unwrap_or_default().to_string();
        let csv = format!("姓名,公民身份号码\n张伟,{}\n李娜,{}\n", id_of(1), id_of(2));
        let up =
            w.s.post(&format!("{at}/rosters"))
                .cookie(&cty.cookie)
                .multipart(&[("csrf", &csrf), ("source", "公安分局")], Some(("名单.csv", csv.as_bytes())))
                .send()
                .await;
        // The roster's page: the columns found, to check; the ID column is masked.
        let roster = see_other(&up);
        let page = cty.page(&roster).await;
        assert!(page.text.contains("待核对列") && page.text.contains("张伟"), "{}", page.text);
        assert!(!page.text.contains(&id_of(1)), "the preview masks ID numbers");
        let (url, mapping) = form_with_id(&page, "start-run");
        assert_eq!((mapping.get("col_0"), mapping.get("col_1")), (Some("name"), Some("id_number")));
        // Without the name and the ID number nothing can be matched: said beside the form.
        let r = cty.post(&url, &mapping.clone().with("col_0", "").with("col_1", "phone")).await;
        assert_eq!(r.status, 400);
        assert!(r.text.contains("名单中没有找到姓名或身份证号码列"), "{}", r.text);
        see_other(&cty.post(&url, &mapping).await);
        let mut page = cty.page(&roster).await;
        for _ in 0..300 {
            if !page.text.contains("id=\"run-progress\"") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            page = cty.page(&roster).await;
        }
        assert!(page.text.contains("已完成"), "{}", page.text);
        let page = cty.page(&at).await;
        assert!(page.text.contains("公安分局") && page.text.contains("未报到，需联系报到"), "{}", page.text);
        // Why each pair matched, field by field; the results by organization.
        assert!(page.text.contains("身份证号码一致") && page.text.contains("各单位比对结果"), "{}", page.text);
        // Filters: only the candidates to contact.
        let only = cty.page(&format!("{at}?outcome=candidate_inflow&open=true")).await;
        assert!(only.text.contains("李娜") && !only.text.contains("<td>张伟"), "{}", only.text);
        let row = page.text.split("<tr id=\"match-").find(|r| r.contains("李娜")).expect("李娜's match");
        let first = row.split('"').next().unwrap().to_string();
        let (url, decide) = form_with_id(&page, &format!("accept-{first}"));
        see_other(&cty.post(&url, &decide.with("decision", "accepted").with("note", "已联系")).await);
        let page = cty.page(&at).await;
        assert!(page.text.contains("已确认") && page.text.contains("已联系"), "{}", page.text);
        // Suzhou, where the roster came from, lists her to contact.
        let dst = Web::open(&w.s, "dst_admin").await;
        assert!(dst.page("/lists/inflow").await.text.contains("href=\"/screening/candidates\""));
        let list = dst.page("/screening/candidates").await;
        assert!(list.text.contains("李娜") && list.text.contains("冬季排查"), "{}", list.text);

        // Closing: the file is deleted, the page says so, no more uploads.
        let (url, close) = form_with_id(&page, "close-campaign");
        see_other(&cty.post(&url, &close).await);
        let page = cty.page(&at).await;
        assert!(page.text.contains("已结束") && page.text.contains("（已删除）"), "{}", page.text);
        assert!(!page.text.contains("id=\"roster-form\""));
    })
    .await;
}

#[tokio::test]
async fn an_administrator_makes_an_account_and_everyone_changes_their_password() {
    on_each_backend(|s| async move {
        let w = World::new(s).await;
        let ta = Web::open(&w.s, "ta_admin").await;
        assert!(ta.page("/").await.text.contains("href=\"/accounts\""));
        let list = ta.page("/accounts").await;
        assert!(list.text.contains("b1_sec") && !list.text.contains(">root<"), "{}", list.text);
        // A secretary manages no accounts.
        let b1 = Web::open(&w.s, "b1_sec").await;
        assert!(!b1.page("/").await.text.contains("href=\"/accounts\""));
        assert_eq!(b1.get("/accounts").await.status, 403);
        let count = |audit: Vec<kite_store::AuditEntry>| {
            audit.iter().filter(|a| a.action == "account.manage" && a.outcome == "denied").count()
        };
        let before = count(w.s.audit().await);
        let (_, form) = form_with_id(&ta.page("/accounts").await, "account-form");
        let csrf = form_of(&b1.page("/").await).1.get("csrf").unwrap_or_default().to_string();
        let form = form.with("csrf", &csrf).with("username", "sneaky").with("password", "kite-pass-2026");
        let r = b1.post("/accounts", &form).await;
        assert_eq!((r.status.as_u16(), count(w.s.audit().await)), (403, before + 1), "refused and audited once");

        let (action, f) = form_with_id(&list, "account-form");
        let f = f.with("username", "b2_sec").with("role", "secretary").with("org_code", "TA-B2");
        let r = ta.post(&action, &f.clone().with("password", "short")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("password", "密码至少 8 位")]);
        assert!(!r.text.contains("value=\"short\""), "the password typed is not sent back");
        see_other(&ta.post(&action, &f.with("password", "kite-pass-2026")).await);
        assert!(ta.page("/accounts").await.text.contains("b2_sec"));
        // Its first page is the one to change the password the administrator set.
        let b2 = Web::open(&w.s, "b2_sec").await;
        assert_eq!(see_other(&b2.get("/members").await), "/me/password");
        assert!(b2.page("/me/password").await.text.contains("请先修改密码"));

        // One's own password, from the link on one's name.
        let (action, f) = b1.form("/me/password").await;
        let r =
            b1.post(&action, &f.clone().with("current_password", "wrong").with("new_password", "mine-2026-x")).await;
        assert_refused(&r, 400, "提交的内容有误，请检查标出的项目", &[("current_password", "当前密码不正确")]);
        let r = b1.post(&action, &f.with("current_password", PASSWORD).with("new_password", "mine-2026-x")).await;
        assert!(r.text.contains("密码已修改"), "{}", r.text);
        assert_eq!(w.s.login("b1_sec", "mine-2026-x").await.status, 200);
    })
    .await;
}
