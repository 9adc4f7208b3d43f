//! Test support for the HTTP-level API tests: a real server per backend on a local
//! port, a small HTTP client that keeps status, headers and JSON together, assertions
//! on the API's error shape, and seeding through the store.
#![allow(dead_code)] // not every helper is used by every test file

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use chrono::{Days, NaiveDate, Utc};
use kite_domain::{id_number, Gender, Principal, Role, ServicePointLevel};
use kite_server::api::members::MemberBody;
use kite_server::{auth, rules};
use kite_store::testing;
use kite_store::{AuditEntry, Backend, Client, NewMember, NewServicePoint, NewUser, Store};
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The password of every seeded user.
pub const PASSWORD: &str = "风筝-Test-1";

/// A server over a fresh store, listening on 127.0.0.1; stopped when dropped.
pub struct Server {
    pub backend: Backend,
    pub store: Store,
    pub base: String,
    pub http: reqwest::Client,
    /// The server's screening runs.
    pub runs: std::sync::Arc<kite_server::screening::Runs>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(backend: Backend, store: Store) -> Server {
        Server::start_with(backend, store, Vec::new()).await
    }

    /// A server behind a reverse proxy on this machine, trusted for X-Forwarded-For.
    pub async fn behind_proxy(backend: Backend, store: Store) -> Server {
        Server::start_with(backend, store, vec!["127.0.0.1".parse().expect("an address")]).await
    }

    async fn start_with(backend: Backend, store: Store, trusted: Vec<std::net::IpAddr>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let mut state = kite_server::AppState::new(store.clone());
        state.trusted_proxies = std::sync::Arc::new(trusted);
        let runs = state.runs.clone();
        let app = kite_server::app(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("server runs");
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("http client");
        Server { backend, store, base: format!("http://{addr}"), http, runs, task }
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call(self.http.request(method, format!("{}{path}", self.base)))
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        self.call(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.call(Method::DELETE, path)
    }

    /// Creates an account with [`PASSWORD`] through the store.
    pub async fn user(&self, username: &str, role: Role, org: Option<&str>, member_id: Option<i64>) -> i64 {
        let new = NewUser {
            username: username.into(),
            password_hash: password_hash().to_string(),
            role,
            org_code: org.map(str::to_string),
            member_id,
            display_name: Some(format!("{username} (test)")),
            service_point_code: None,
        };
        self.store.accounts().create_user(&new, "test").await.unwrap_or_else(|e| panic!("create {username}: {e}")).id
    }

    /// A live bearer token for a user, opened through the store as the login does, so
    /// that tests which are not about logging in do not each pay for Argon2.
    pub async fn token_for(&self, user_id: i64) -> String {
        let token = auth::random_token();
        self.store
            .accounts()
            .create_session(
                user_id,
                &auth::token_hash(&token),
                "api",
                &auth::random_token(),
                Utc::now() + auth::API_TOKEN,
            )
            .await
            .expect("open a session");
        token
    }

    /// Creates an account and returns a bearer token for it.
    pub async fn user_token(&self, username: &str, role: Role, org: Option<&str>) -> String {
        let id = self.user(username, role, org, None).await;
        self.token_for(id).await
    }

    /// Logs in through `POST /api/v1/login`.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post("/api/v1/login").json(&json!({"username": username, "password": password})).send().await
    }

    /// Inserts members `ns` of `org` in bulk through the store (as the demo loader
    /// does), validated as the API validates them, and recounts.
    pub async fn bulk_members(&self, org: &str, ns: std::ops::Range<u32>) {
        let rows: Vec<NewMember> = ns
            .map(|n| {
                let body: MemberBody = serde_json::from_value(member_body(&format!("批量{n}"), org, n)).unwrap();
                let fields = kite_domain::member::validate(&body.input(), &rules::Ctx)
                    .unwrap_or_else(|e| panic!("member {n} should be valid: {e:?}"));
                NewMember { fields }
            })
            .collect();
        self.store.admin().bulk_insert_members(&rows).await.expect("bulk insert");
        self.store.admin().recount().await.expect("recount");
    }

    /// The latest audit records, read through the store as a system administrator.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        let admin = Principal {
            user_id: 0,
            username: "auditor".into(),
            role: Role::Admin,
            org_path: None,
            member_id: None,
            service_point_id: None,
        };
        self.store.guard(admin, Client::default()).audit_recent(500).await.expect("read the audit log")
    }
}

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| auth::hash_password(PASSWORD).expect("hash the test password"))
}

/// Runs `test` against a server on a fresh store of every backend (see
/// [`testing::on_each_backend`]).
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    testing::on_each_backend(Server::start, test).await;
}

pub struct Call(reqwest::RequestBuilder);

impl Call {
    pub fn auth(self, token: &str) -> Self {
        Call(self.0.bearer_auth(token))
    }

    pub fn json(self, body: &Value) -> Self {
        Call(self.0.json(body))
    }

    /// A body sent as JSON as is, well-formed or not.
    pub fn raw_json(self, body: impl Into<String>) -> Self {
        Call(self.0.header(CONTENT_TYPE, "application/json").body(body.into()))
    }

    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        Call(self.0.form(fields))
    }

    /// A multipart/form-data body: text parts first, then the file part `file` if any.
    pub fn multipart(self, texts: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Self {
        const BOUNDARY: &str = "kite-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in texts {
            body.extend(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
            );
        }
        if let Some((file_name, content)) = file {
            body.extend(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .bytes(),
            );
            body.extend_from_slice(content);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{BOUNDARY}--\r\n").bytes());
        Call(self.0.header(CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}")).body(body))
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        Call(self.0.header(name, value))
    }

    /// A body sent as these bytes.
    pub fn body(self, bytes: Vec<u8>) -> Self {
        Call(self.0.body(bytes))
    }

    pub fn cookie(self, cookie: &str) -> Self {
        Call(self.0.header(COOKIE, cookie))
    }

    pub fn lang(self, accept_language: &str) -> Self {
        Call(self.0.header(ACCEPT_LANGUAGE, accept_language))
    }

    pub async fn send(self) -> Reply {
        let (client, req) = self.0.build_split();
        let req = req.expect("a well-formed request");
        let what = format!("{} {}", req.method(), req.url().path());
        let res = client.execute(req).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_else(|e| panic!("{what}: reading the body: {e}")).to_vec();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { what, status, headers, text, json, bytes }
    }
}

/// A response: status, headers, the raw body and the body as JSON (`Null` if it is not).
#[derive(Debug)]
pub struct Reply {
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}: unexpected status; body: {}", self.what, self.text);
        &self.json
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        self.expect(200)
    }

    /// Asserts an API error: the status, a JSON body of exactly the shape
    /// `{"error": {"code", "message", "fields"?}}`, the code, and a message from the
    /// catalogue (not the bare key). Returns the `error` object.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> &Value {
        let ctx = format!("{} (expected {status} {code})", self.what);
        assert_eq!(self.status.as_u16(), status, "{ctx}: unexpected status; body: {}", self.text);
        let ctype = self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ctype.starts_with("application/json"), "{ctx}: content type {ctype:?}, body {:?}", self.text);
        let top = self.json.as_object().unwrap_or_else(|| panic!("{ctx}: not a JSON object: {:?}", self.text));
        assert_eq!(top.keys().collect::<Vec<_>>(), ["error"], "{ctx}: {}", self.text);
        let e = &self.json["error"];
        let obj = e.as_object().unwrap_or_else(|| panic!("{ctx}: `error` is not an object: {}", self.text));
        for k in obj.keys() {
            assert!(matches!(k.as_str(), "code" | "message" | "fields"), "{ctx}: unexpected key {k} in {}", self.text);
        }
        assert_eq!(e["code"], code, "{ctx}: {}", self.text);
        let message = e["message"].as_str().unwrap_or_else(|| panic!("{ctx}: no message in {}", self.text));
        assert!(
            !message.is_empty() && message != format!("err.{code}"),
            "{ctx}: message {message:?} is not from the catalogue"
        );
        if let Some(fields) = e.get("fields") {
            let fields = fields.as_array().unwrap_or_else(|| panic!("{ctx}: `fields` is not a list: {}", self.text));
            for f in fields {
                let (field, fcode, msg) = (f["field"].as_str(), f["code"].as_str(), f["message"].as_str());
                assert!(
                    field.is_some_and(|s| !s.is_empty()) && fcode.is_some() && msg.is_some_and(|m| !m.is_empty()),
                    "{ctx}: malformed field entry {f}"
                );
                assert_ne!(msg, Some(format!("err.{}", fcode.unwrap_or_default()).as_str()), "{ctx}: {f}");
            }
        }
        e
    }

    /// Asserts a 400 `invalid_input` naming `field` with `code`; returns the `error` object.
    #[track_caller]
    pub fn invalid(&self, field: &str, code: &str) -> &Value {
        let e = self.error(400, "invalid_input");
        let fields = e["fields"].as_array().unwrap_or_else(|| panic!("{}: no fields in {}", self.what, self.text));
        assert!(
            fields.iter().any(|f| f["field"] == field && f["code"] == code),
            "{}: expected field {field} with {code}, got {}",
            self.what,
            self.text
        );
        e
    }

    /// Any client error with the API's JSON error shape (for inputs where several
    /// answers are reasonable but a 5xx or a bare body is not).
    #[track_caller]
    pub fn client_error(&self) -> &Value {
        let s = self.status.as_u16();
        assert!((400..500).contains(&s), "{}: expected a 4xx, got {s}; body: {}", self.what, self.text);
        let code = self.json["error"]["code"].as_str().unwrap_or_else(|| {
            panic!("{}: {s} without a JSON error body: {:?}", self.what, self.text);
        });
        self.error(s, code)
    }

    /// The value of a `Set-Cookie` header whose cookie is `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

// ---------------------------------------------------------------------------
// Seed data
// ---------------------------------------------------------------------------

/// The county of the test region (灌南县) and two other real divisions.
pub const COUNTY: &str = "320724";
pub const ELSEWHERE: &str = "320505";
pub const PROVINCE: &str = "320000";

/// An organization as the API takes it.
pub fn org_body(code: &str, parent: Option<&str>, name: &str, level: &str) -> Value {
    json!({
        "code": code,
        "parent_code": parent,
        "name": name,
        "level": level,
        "kind": "ordinary",
        "division_code": COUNTY,
        "address": "新安镇人民路 1 号",
        "phone": "0518-83212345",
    })
}

/// The `n`-th test person's birth date: distinct for distinct `n`, and old enough to
/// have joined in 2010 for `n` up to 1,400.
pub fn birth(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1965, 3, 1).unwrap() + Days::new(u64::from(n) * 7)
}

pub fn gender(n: u32) -> Gender {
    if n % 2 == 1 {
        Gender::Female
    } else {
        Gender::Male
    }
}

/// The identity number of the `n`-th test person.
/// The list view of an identity number: division code, eight stars, last four.
pub fn masked(id: &str) -> String {
    format!("{}********{}", &id[..6], &id[14..])
}

/// The same identity number with a wrong check character.
pub fn with_wrong_check_digit(id: &str) -> String {
    let wrong = match id.as_bytes()[17] {
        b'X' => '0',
        b'9' => 'X',
        d => (d + 1) as char,
    };
    format!("{}{wrong}", &id[..17])
}

pub fn id_of(n: u32) -> String {
    id_number::compose(COUNTY, birth(n), (n % 500) as u16, gender(n)).as_str().to_string()
}

/// A valid member of `org` as the API takes it; `n` makes the identity unique.
pub fn member_body(name: &str, org: &str, n: u32) -> Value {
    json!({
        "name": name,
        "gender": gender(n).code(),
        "ethnicity": "汉族",
        "birth_date": birth(n).format("%Y-%m-%d").to_string(),
        "id_number": id_of(n),
        "phone": format!("139{:08}", 10_000_000 + n),
        "education": "bachelor",
        "joined_on": "2010-07-01",
        "category": "full",
        "org_code": org,
        "residence_division": COUNTY,
        "residence_address": "新安镇幸福路 8 号",
        "employer": "灌南县某公司",
        "occupation": "工人",
    })
}

/// A valid departure as the API takes it.
pub fn departure_body() -> Value {
    json!({
        "destination_division": ELSEWHERE,
        "destination_address": "苏州高新区狮山街道",
        "reason": "work",
        "left_on": "2024-03-01",
        "expected_months": "12",
        "contact_phone": "13912345678",
        "note": "在苏州务工",
    })
}

/// The tree most tests use, created through the API by the system administrator:
///
/// ```text
/// CTY   灌南县委 (committee)
/// ├── TA      (general_branch)
/// │   ├── TA-B1   (branch)
/// │   └── TA-B2   (branch)
/// └── TB      (general_branch)
///     └── TB-B1   (branch)
/// ```
///
/// with one member in each branch, and accounts: `root` (admin), `ta_admin`
/// (org_admin of TA), `b1_sec` (secretary of TA-B1), `staff` (service staff of TA).
pub struct World {
    pub s: Server,
    pub root: String,
    pub ta_admin: String,
    pub b1_sec: String,
    pub staff: String,
    /// Member ids by branch code.
    pub members: HashMap<&'static str, i64>,
}

pub const TREE: [(&str, Option<&str>, &str, &str); 6] = [
    ("CTY", None, "灌南县委", "committee"),
    ("TA", Some("CTY"), "新安镇党委", "general_branch"),
    ("TA-B1", Some("TA"), "新安镇第一支部", "branch"),
    ("TA-B2", Some("TA"), "新安镇第二支部", "branch"),
    ("TB", Some("CTY"), "堆沟港镇党委", "general_branch"),
    ("TB-B1", Some("TB"), "堆沟港镇第一支部", "branch"),
];

/// Member numbers used by [`World`]; tests add their own from 100 on.
pub const WORLD_MEMBERS: [(&str, &str, u32); 3] = [("TA-B1", "张伟", 1), ("TA-B2", "李娜", 2), ("TB-B1", "王芳", 3)];

impl World {
    pub async fn new(s: Server) -> World {
        let root_id = s.user("root", Role::Admin, None, None).await;
        let root = s.token_for(root_id).await;
        for (code, parent, name, level) in TREE {
            s.post("/api/v1/orgs").auth(&root).json(&org_body(code, parent, name, level)).send().await.expect(201);
        }
        let mut members = HashMap::new();
        for (org, name, n) in WORLD_MEMBERS {
            let m = s.post("/api/v1/members").auth(&root).json(&member_body(name, org, n)).send().await;
            members.insert(org, m.expect(201)["id"].as_i64().expect("member id"));
        }
        let ta_admin = s.user_token("ta_admin", Role::OrgAdmin, Some("TA")).await;
        let b1_sec = s.user_token("b1_sec", Role::Secretary, Some("TA-B1")).await;
        let staff = s.user_token("staff", Role::ServiceStaff, Some("TA")).await;
        World { s, root, ta_admin, b1_sec, staff, members }
    }

    pub fn member(&self, branch: &str) -> i64 {
        self.members[branch]
    }
}

/// The destination side beside [`World`]'s home county: a Suzhou committee with two
/// branches, a service point run by the first, and its accounts.
pub struct Dest {
    pub w: World,
    pub dst_admin: String,
    pub point_staff: String,
    pub tb_sec: String,
}

pub const DEST_DIVISION: &str = "320505";

pub async fn dest(s: Server) -> Dest {
    let w = World::new(s).await;
    let s = &w.s;
    for (code, parent, name, level, kind) in [
        ("DST", None, "苏州高新区党工委", "committee", "ordinary"),
        ("DST-B1", Some("DST"), "狮山大厦联合党支部", "branch", "building"),
        ("DST-B2", Some("DST"), "狮山街道新市民党支部", "branch", "new_resident"),
    ] {
        let mut body = org_body(code, parent, name, level);
        body["kind"] = json!(kind);
        body["division_code"] = json!(DEST_DIVISION);
        s.post("/api/v1/orgs").auth(&w.root).json(&body).send().await.expect(201);
    }
    s.store
        .admin()
        .insert_service_points(&[NewServicePoint {
            code: "DP1".into(),
            parent_code: None,
            name: "狮山党群驿站".into(),
            level: ServicePointLevel::Station,
            org_code: "DST-B1".into(),
            division_code: DEST_DIVISION.into(),
            address: Some("狮山路 1 号".into()),
            hotline: Some("0512-60000001".into()),
            opening_hours: None,
        }])
        .await
        .expect("service point");
    let dst_admin = s.user_token("dst_admin", Role::OrgAdmin, Some("DST")).await;
    let tb_sec = s.user_token("tb_sec", Role::Secretary, Some("TB-B1")).await;
    let staff = NewUser {
        username: "dp1_staff".into(),
        password_hash: "$argon2id$unused".into(),
        role: Role::ServiceStaff,
        org_code: None,
        member_id: None,
        display_name: None,
        service_point_code: Some("DP1".into()),
    };
    let staff_id = s.store.accounts().create_user(&staff, "test").await.expect("point staff").id;
    let point_staff = s.token_for(staff_id).await;
    Dest { w, dst_admin, point_staff, tb_sec }
}

/// World's 张伟 (TA-B1) checked in at DST-B1 and confirmed, 李娜 (TA-B2) away and not
/// checked in since a month ago, 王芳 (TB-B1) at home. Returns the two flow ids.
pub async fn away_two(d: &Dest) -> (i64, i64) {
    let (s, w) = (&d.w.s, &d.w);
    let recent = (rules::today() - Days::new(30)).to_string();
    let mut dep = departure_body();
    s.post(&format!("/api/v1/members/{}/flows", w.member("TA-B1"))).auth(&w.root).json(&dep).send().await.expect(201);
    dep["left_on"] = json!(recent);
    dep["destination_division"] = json!("110105");
    let f2 = s.post(&format!("/api/v1/members/{}/flows", w.member("TA-B2"))).auth(&w.root).json(&dep).send().await;
    let f2 = f2.expect(201)["id"].as_i64().unwrap();
    let counter = json!({
        "name": "张伟", "id_number": id_of(1), "phone": "13820000001", "home_org_code": "TA-B1",
        "division_code": DEST_DIVISION, "address": "狮山路 88 号", "employer": "狮山大厦某科技公司",
        "occupation": "软件工程师", "request_id": "dual-0001",
    });
    s.post("/api/v1/counter/o/DST-B1").auth(&d.dst_admin).json(&counter).send().await.expect(201);
    let queue = s.get("/api/v1/checkins?status=waiting&side=outflow").auth(&w.b1_sec).send().await;
    let c = queue.ok()["items"][0].clone();
    let (cid, version) = (c["id"].as_i64().unwrap(), c["version"].as_i64().unwrap());
    let done = s
        .post(&format!("/api/v1/checkins/{cid}/confirm"))
        .auth(&w.b1_sec)
        .json(&json!({"version": version}))
        .send()
        .await;
    assert_eq!(done.ok()["status"], "confirmed");
    let flows = s.get(&format!("/api/v1/members/{}/flows", w.member("TA-B1"))).auth(&w.b1_sec).send().await;
    let f1 = flows.ok()[0]["id"].as_i64().unwrap();
    (f1, f2)
}
