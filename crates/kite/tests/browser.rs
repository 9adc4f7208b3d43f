//! End to end in headless Chromium, on both backends:
//!
//! - a branch secretary logs in, searches a member, opens the detail page, enters a
//!   wrong ID number and reads the error in Chinese; the member list fits a phone;
//! - a member away from home checks in on a phone (Chromium's mobile emulation, 390 × 844
//!   CSS pixels at three device pixels each): the public page of the inflow branch's
//!   link, the home organization picked from the page's suggestions, the street from
//!   the division picker, the one-time code asked for with the page's button and read
//!   from the outbox; a wrong code is refused beside its field with what was typed kept,
//!   the right one, sent with the keyboard's Go key, gives the receipt; no page is wider
//!   than the phone, and the member's time is printed. Then the home branch's secretary
//!   confirms it from the queue on a desktop screen, and the store shows the member's
//!   flow checked in to the inflow branch and the check-in confirmed.
//!
//! Chromium and ChromeDriver are required (scripts/test.sh installs them); a missing
//! browser fails the test. Screenshots go to `target/tmp/browser/`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use kite_domain::{CheckinStatus, FlowStatus, Principal, Role};
use kite_store::testing::{self, BACKENDS};
use kite_store::{Backend, Client as AuditClient, MemberQuery, NewUser, Store};
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The phone's screen in CSS pixels (today's most common size), and what it reports itself as.
const PHONE_WIDTH: i64 = 390;
const PHONE_HEIGHT: i64 = 844;
const PHONE_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/156.0.0.0 Mobile Safari/537.36";

/// What a browser session looks like.
#[derive(Clone, Copy)]
enum Screen {
    /// A 1280 × 900 window.
    Desktop,
    /// A phone as Chromium emulates one: [`PHONE_WIDTH`] × [`PHONE_HEIGHT`] CSS pixels,
    /// three device pixels each, touch, a mobile user agent.
    Phone,
}

/// A ChromeDriver process, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn browser(&self, screen: Screen) -> Client {
        let mut options = json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"],
            "prefs": { "intl.accept_languages": "zh-CN,zh" },
        });
        match screen {
            Screen::Desktop => options["args"].as_array_mut().expect("args").push("--window-size=1280,900".into()),
            Screen::Phone => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 3.0, "touch": true },
                    "userAgent": PHONE_AGENT,
                });
            }
        }
        let caps = json!({ "goog:chromeOptions": options });
        let caps = caps.as_object().cloned().expect("capabilities object");
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("open a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn serve(store: Store) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = kite_server::app(kite_server::AppState::new(store));
    tokio::spawn(async move {
        axum_serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
}

fn admin() -> Principal {
    Principal {
        user_id: 0,
        username: "test".into(),
        role: Role::Admin,
        org_path: None,
        member_id: None,
        service_point_id: None,
    }
}

/// Creates an account with `password` for `role` at `org`.
async fn account(store: &Store, username: &str, password: &str, role: Role, org: &str) {
    let user = NewUser {
        username: username.into(),
        password_hash: kite_server::auth::hash_password(password).expect("hash"),
        role,
        org_code: Some(org.into()),
        member_id: None,
        display_name: None,
        service_point_code: None,
    };
    store.accounts().create_user(&user, "test").await.expect("account");
}

/// Waits until the browser's address satisfies `done` (a click's navigation finishes
/// after the click returns).
async fn wait_for_url(c: &Client, what: &str, done: impl Fn(&url::Url) -> bool) {
    let started = Instant::now();
    loop {
        // Asked while a navigation starts, the driver may answer with an error: ask again.
        let url = c.current_url().await;
        if url.as_ref().is_ok_and(&done) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still on {url:?}, expected {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_path(c: &Client, path: &str) {
    wait_for_url(c, path, |u| u.path() == path).await;
}

/// Runs `script` until it returns something other than `null`, `false` or `""` (what the
/// page's scripts do happens after the events that start it, and a page may still be
/// loading after a click), and returns that.
async fn wait_for_js(c: &Client, what: &str, script: &str, args: Vec<Value>) -> Value {
    let started = Instant::now();
    loop {
        let last = match c.execute(script, args.clone()).await {
            Ok(v) if !matches!(&v, Value::Null | Value::Bool(false)) && v != "" => return v,
            Ok(v) => v.to_string(),
            Err(e) => e.to_string(),
        };
        if started.elapsed() > Duration::from_secs(10) {
            let page = c.source().await.unwrap_or_default();
            panic!("still waiting for {what} (last: {last})\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An element, waiting for it to appear (pages load after clicks); a lookup cut short by a
/// navigation ("aborted by navigation") is tried again.
async fn element(c: &Client, css: &str) -> Element {
    let started = Instant::now();
    loop {
        let left = Duration::from_secs(10).saturating_sub(started.elapsed());
        match c.wait().at_most(left).for_element(Locator::Css(css)).await {
            Ok(e) => return e,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let page = c.source().await.unwrap_or_default();
                panic!("{css} not on {url}: {e}\n{page}")
            }
        }
    }
}

/// The text of an element ([`element`]); an element replaced by the next page while it is
/// read is looked up again.
async fn text(c: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        match element(c, css).await.text().await {
            Ok(t) => return t,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("reading {css}: {err}"),
        }
    }
}

/// The current value of a form field.
async fn value(c: &Client, css: &str) -> String {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.prop("value").await.expect("value").unwrap_or_default()
}

async fn type_into(c: &Client, css: &str, keys: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.send_keys(keys).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

async fn click(c: &Client, css: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Fills the login form the browser was sent to and submits it.
async fn log_in(c: &Client, username: &str, password: &str) {
    type_into(c, "input[name=username]", username).await;
    type_into(c, "input[name=password]", password).await;
    click(c, "form[action='/login'] button").await;
}

/// Asserts that the page is no wider than the window: nothing to scroll sideways.
async fn assert_fits(c: &Client, what: &str) {
    let widths = c
        .execute("const d = document.documentElement; return [d.scrollWidth, d.clientWidth];", vec![])
        .await
        .expect("measure");
    let (scroll, client) = (widths[0].as_i64().expect("scrollWidth"), widths[1].as_i64().expect("clientWidth"));
    assert!(scroll <= client, "{what}: {scroll} px wide in a {client} px window");
}

/// Keeps a screenshot in `target/tmp/browser/` for a person to look at.
async fn keep_screenshot(c: &Client, name: &str) {
    let shot = c.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(dir.join(format!("{name}.png")), shot).ok();
}

async fn walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    kite_demo::load(&store, 400).await.expect("demo data");
    account(&store, "sec", "secret-pass-1", Role::Secretary, "GN-01-01").await;
    let q = MemberQuery { org: Some("GN-01-01".into()), ..Default::default() };
    let page = store.guard(admin(), AuditClient::default()).members(&q).await.expect("members");
    let target = page.items.first().expect("a member in the branch").clone();
    let full = store.guard(admin(), AuditClient::default()).member(target.id).await.expect("member").id_number;
    let base = serve(store.clone()).await;

    let c = driver.browser(Screen::Desktop).await;
    c.goto(&format!("{base}/members")).await.expect("open");
    assert!(c.current_url().await.expect("url").path().starts_with("/login"), "{backend:?}: not sent to login");
    log_in(&c, "sec", "secret-pass-1").await;
    wait_for_path(&c, "/members").await;

    c.find(Locator::Id("q")).await.expect("search box").send_keys(&target.name).await.expect("type");
    c.find(Locator::Css("form[role=search] button")).await.expect("search").click().await.expect("search");
    wait_for_url(&c, "the search's results", |u| u.query_pairs().any(|(k, v)| k == "q" && !v.is_empty())).await;
    let results = text(&c, "#member-results").await;
    assert!(results.contains(&target.name), "{backend:?}: {} not in results", target.name);
    assert!(!results.contains(&full), "{backend:?}: a list shows a full ID number");
    c.find(Locator::LinkText(&target.name)).await.expect("result link").click().await.expect("open detail");
    wait_for_path(&c, &format!("/members/{}", target.id)).await;
    assert_eq!(text(&c, "#full-id").await, full, "{backend:?}: detail page");

    c.find(Locator::Css("a[href$='/edit']")).await.expect("edit link").click().await.expect("edit");
    wait_for_path(&c, &format!("/members/{}/edit", target.id)).await;
    // The division picker is the page's script at work.
    element(&c, ".division-row select").await;
    let id_field = c.find(Locator::Id("f-id_number")).await.expect("id field");
    id_field.clear().await.expect("clear");
    let last = if full.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &full[..17]);
    id_field.send_keys(&wrong).await.expect("type");
    c.find(Locator::Id("save")).await.expect("save").click().await.expect("save");
    // The form comes back with errors.
    element(&c, "#page-error").await;
    assert_eq!(text(&c, "#e-id_number").await, "公民身份号码校验位错误，请核对", "{backend:?}");
    assert_eq!(text(&c, "#page-error").await, "提交的内容有误，请检查标出的项目", "{backend:?}");

    // On a phone the member list fits the screen's width; the table scrolls inside.
    c.set_window_size(390, 844).await.expect("phone size");
    c.goto(&format!("{base}/members?q={}", target.name)).await.expect("list");
    let fits =
        c.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.expect("measure");
    assert_eq!(fits, Value::Bool(true), "{backend:?}: the member list overflows a phone screen");
    keep_screenshot(&c, &format!("members-phone-{backend:?}")).await;
    c.close().await.expect("close");

    // The full number seen on the detail page is in the audit trail, under the secretary.
    let trail = store.guard(admin(), AuditClient::default()).member_audit(target.id).await.expect("audit");
    assert!(
        trail.iter().any(|e| e.action == "member.view_id" && e.username.as_deref() == Some("sec")),
        "{backend:?}: the view of the full ID number was not audited"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secretary_finds_a_member_and_reads_a_validation_error_in_chinese() {
    let driver = Driver::start();
    for backend in BACKENDS {
        walk(&driver, backend).await;
    }
}

/// The member who checks in: away from home, not yet checked in anywhere.
struct Away {
    member_id: i64,
    flow_id: i64,
    name: &'static str,
    id_number: String,
    phone: &'static str,
}

const SECRETARY_PASSWORD: &str = "风筝-Secret-1";

/// Two places, created through the guarded API as a system administrator:
///
/// ```text
/// GN     灌南县委 (320724)          DST     苏州高新区党工委 (320505)
/// └── GN-B1  新安镇第一支部           └── DST-B1  狮山大厦联合党支部 (building)
///     张伟, left for Suzhou                 its check-in link /c/o/DST-B1
/// ```
///
/// with `gn_sec`, the secretary of GN-B1.
async fn two_places(store: &Store) -> Away {
    use kite_domain::{flow, member, org};
    use kite_server::rules;

    let g = store.guard(admin(), AuditClient::default());
    for (code, parent, name, level, kind, division) in [
        ("GN", None, "灌南县委", "committee", "ordinary", "320724"),
        ("GN-B1", Some("GN"), "新安镇第一支部", "branch", "ordinary", "320724100"),
        ("DST", None, "苏州高新区党工委", "committee", "ordinary", "320505"),
        ("DST-B1", Some("DST"), "狮山大厦联合党支部", "branch", "building", "320505002"),
    ] {
        let input = org::OrgInput { name, level, kind, division_code: division, address: "", phone: "" };
        let fields = org::validate(&input, rules::division_known).expect("a valid organization");
        g.org_create(parent, code, fields).await.expect("organization");
    }
    let birth = chrono::NaiveDate::from_ymd_opt(1988, 5, 17).expect("date");
    let id_number =
        kite_domain::id_number::compose("320724", birth, 31, kite_domain::Gender::Male).as_str().to_string();
    let (name, phone) = ("张伟", "13912345678");
    let input = member::MemberInput {
        name,
        gender: "male",
        ethnicity: "汉族",
        birth_date: "1988-05-17",
        id_number: &id_number,
        phone,
        education: "bachelor",
        joined_on: "2012-07-01",
        category: "full",
        org_code: "GN-B1",
        residence_division: "320724100",
        residence_address: "新安镇幸福路 8 号",
        ..Default::default()
    };
    let fields = member::validate(&input, &rules::Ctx).expect("a valid member");
    let m = g.member_create(fields).await.expect("member");
    let departure = flow::DepartureInput {
        destination_division: "320505",
        destination_address: "苏州高新区狮山街道",
        reason: "work",
        left_on: "2025-03-01",
        expected_months: "12",
        contact_phone: phone,
        note: "",
    };
    let d = flow::validate_departure(&departure, rules::division_known, m.joined_on, rules::today())
        .expect("a valid departure");
    let f = g.record_departure(m.id, d).await.expect("departure");
    assert_eq!(f.status, FlowStatus::NotCheckedIn);
    account(store, "gn_sec", SECRETARY_PASSWORD, Role::Secretary, "GN-B1").await;
    Away { member_id: m.id, flow_id: f.id, name, id_number, phone }
}

/// The member's part, on a phone: the check-in form filled in as a member would, a wrong
/// code refused and the right one accepted. Returns the check-in's reference.
async fn check_in_on_a_phone(driver: &Driver, backend: Backend, base: &str, store: &Store, who: &Away) -> String {
    let c = driver.browser(Screen::Phone).await;
    let started = Instant::now();
    c.goto(&format!("{base}/c/o/DST-B1")).await.expect("open the check-in link");
    assert_eq!(text(&c, "h1").await, "流动党员报到登记", "{backend:?}");
    assert_eq!(text(&c, "#checkin-place").await, "狮山大厦联合党支部", "{backend:?}");
    let width = c.execute("return window.innerWidth;", vec![]).await.expect("width");
    assert_eq!(width.as_i64(), Some(PHONE_WIDTH), "{backend:?}: not a phone's screen");

    type_into(&c, "#f-name", who.name).await;
    type_into(&c, "#f-id_number", &who.id_number).await;
    type_into(&c, "#f-phone", who.phone).await;
    // The home organization: part of its name brings suggestions; picking one puts its
    // code in the field (as choosing from the list does: the value, then an input event)
    // and its name below the field.
    type_into(&c, "#f-home_org_code", "新安镇").await;
    let picked = wait_for_js(
        &c,
        "the home branch among the suggestions",
        "const input = document.getElementById('f-home_org_code');
         const list = input.list;
         const o = list && [...list.options].find((o) => o.label === arguments[0]);
         if (!o) return null;
         input.value = o.value;
         input.dispatchEvent(new Event('input', { bubbles: true }));
         return o.value;",
        vec![json!("新安镇第一支部")],
    )
    .await;
    assert_eq!(picked, "GN-B1", "{backend:?}");
    wait_for_js(
        &c,
        "the picked branch's name",
        "return document.querySelector('.picked[data-for=f-home_org_code]').textContent === arguments[0];",
        vec![json!("新安镇第一支部")],
    )
    .await;
    // Where the member lives: the form starts at the branch's district; the street is
    // one more choice in the division picker.
    let street = ".division-row select[data-level='3']";
    c.wait()
        .for_element(Locator::Css(&format!("{street} option[value='320505002']")))
        .await
        .expect("the district's streets");
    c.find(Locator::Css(street)).await.expect("street").select_by_value("320505002").await.expect("pick");
    assert_eq!(value(&c, "#f-division_code").await, "320505002", "{backend:?}");
    type_into(&c, "#f-address", "狮山路 88 号").await;
    type_into(&c, "#f-employer", "狮山大厦某科技公司").await;
    type_into(&c, "#f-occupation", "软件工程师").await;
    assert_fits(&c, &format!("{backend:?}: the check-in form")).await;
    keep_screenshot(&c, &format!("checkin-form-phone-{backend:?}")).await;

    // The code goes to the phone through the outbox.
    click(&c, "#send-code").await;
    assert_eq!(text(&c, "#notice").await, "验证码已发送到您的手机，10分钟内有效。", "{backend:?}");
    let messages = store.outbox().recent(20).await.expect("outbox");
    let sms = messages.iter().find(|m| m.recipient == who.phone).expect("an SMS to the member's phone");
    let code: String = sms.body.chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(code.len(), 6, "{backend:?}: {}", sms.body);

    // A wrong code: refused beside its field, and nothing typed is lost.
    let wrong: String =
        code.chars().filter_map(|d| d.to_digit(10).and_then(|n| char::from_digit((n + 1) % 10, 10))).collect();
    type_into(&c, "#f-code", &wrong).await;
    click(&c, "#submit-checkin").await;
    assert_eq!(text(&c, "#e-code").await, "验证码不正确", "{backend:?}");
    assert_eq!(text(&c, "#page-error").await, "提交的内容有误，请检查标出的项目", "{backend:?}");
    for (field, typed) in [
        ("name", who.name),
        ("id_number", who.id_number.as_str()),
        ("phone", who.phone),
        ("home_org_code", "GN-B1"),
        ("division_code", "320505002"),
        ("address", "狮山路 88 号"),
        ("employer", "狮山大厦某科技公司"),
        ("occupation", "软件工程师"),
        ("code", wrong.as_str()),
    ] {
        assert_eq!(value(&c, &format!("#f-{field}")).await, typed, "{backend:?}: {field} after the refusal");
    }
    assert_fits(&c, &format!("{backend:?}: the refused form")).await;

    // The right code, sent with the keyboard's Go key: it submits the check-in (the form's
    // default button), it does not ask for another code.
    let field = c.find(Locator::Id("f-code")).await.expect("code field");
    field.clear().await.expect("clear");
    field.send_keys(&(code.clone() + &Key::Enter)).await.expect("type");
    let reference = text(&c, "#reference").await;
    let elapsed = started.elapsed();
    assert_eq!(text(&c, "h1").await, "报到已提交", "{backend:?}");
    let receipt = text(&c, "#receipt").await;
    assert!(receipt.contains("狮山大厦联合党支部"), "{backend:?}: {receipt}");
    assert_fits(&c, &format!("{backend:?}: the receipt")).await;
    let sent = store.outbox().recent(20).await.expect("outbox").iter().filter(|m| m.recipient == who.phone).count();
    assert_eq!(sent, 1, "{backend:?}: the member was sent another code");
    keep_screenshot(&c, &format!("checkin-done-phone-{backend:?}")).await;
    eprintln!("{backend:?}: the member's check-in on the phone took {:.1} s", elapsed.as_secs_f64());
    c.close().await.expect("close");
    reference
}

/// The home side's part, on a desktop screen: the secretary confirms from the queue.
async fn confirm_at_home(driver: &Driver, backend: Backend, base: &str, reference: &str) -> i64 {
    let c = driver.browser(Screen::Desktop).await;
    c.goto(&format!("{base}/checkins")).await.expect("open the queue");
    assert!(c.current_url().await.expect("url").path().starts_with("/login"), "{backend:?}: not sent to login");
    log_in(&c, "gn_sec", SECRETARY_PASSWORD).await;
    wait_for_path(&c, "/checkins").await;
    let queue = text(&c, "#checkins").await;
    assert!(queue.contains(reference) && queue.contains("张伟"), "{backend:?}: {queue}");
    assert!(queue.contains("待原党组织确认"), "{backend:?}: {queue}");
    c.find(Locator::LinkText(reference)).await.expect("the check-in's link").click().await.expect("open");
    wait_for_url(&c, "the check-in's page", |u| u.path().starts_with("/checkins/")).await;
    let path = c.current_url().await.expect("url").path().to_string();
    let id: i64 = path.trim_start_matches("/checkins/").parse().expect("a check-in id");
    let facts = text(&c, "dl.facts").await;
    assert!(facts.contains("已找到，姓名一致") && facts.contains("狮山大厦某科技公司"), "{backend:?}: {facts}");
    click(&c, "#confirm").await;
    wait_for_js(
        &c,
        "the confirmed status",
        "const s = document.getElementById('checkin-status'); return !!s && s.textContent === '已确认' \
         && !document.getElementById('confirm');",
        vec![],
    )
    .await;
    assert_eq!(c.current_url().await.expect("url").path(), path, "{backend:?}");
    c.close().await.expect("close");
    id
}

async fn phone_walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    let who = two_places(&store).await;
    let base = serve(store.clone()).await;

    let reference = check_in_on_a_phone(driver, backend, &base, &store, &who).await;
    let id = confirm_at_home(driver, backend, &base, &reference).await;

    let g = store.guard(admin(), AuditClient::default());
    let checkin = g.checkin(id).await.expect("the check-in");
    assert_eq!(checkin.reference, reference, "{backend:?}");
    assert_eq!(checkin.status, CheckinStatus::Confirmed, "{backend:?}");
    assert_eq!(checkin.member_id, Some(who.member_id), "{backend:?}");
    assert_eq!(checkin.home_org_code.as_deref(), Some("GN-B1"), "{backend:?}");
    assert_eq!(checkin.division_code, "320505002", "{backend:?}");
    let flows = g.member_flows(who.member_id).await.expect("flows");
    let flow = flows.iter().find(|f| f.id == who.flow_id).expect("the member's flow");
    assert_eq!(flow.status, FlowStatus::CheckedIn, "{backend:?}: {flow:?}");
    assert_eq!(flow.inflow_org_code.as_deref(), Some("DST-B1"), "{backend:?}: {flow:?}");
    assert!(flow.checked_in_at.is_some(), "{backend:?}: {flow:?}");
    assert_eq!(flows.len(), 1, "{backend:?}: the check-in joined the open flow, it did not open another");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_checks_in_on_a_phone_and_the_home_branch_confirms_it() {
    let driver = Driver::start();
    for backend in BACKENDS {
        phone_walk(&driver, backend).await;
    }
}

/// WebDriver's Print Page command (W3C): the current page as a PDF, here on A4.
#[derive(Debug)]
struct PrintA4;

impl fantoccini::wd::WebDriverCompatibleCommand for PrintA4 {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/print", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let a4 = json!({"page": {"width": 21.0, "height": 29.7}, "background": false});
        (http::Method::POST, Some(a4.to_string()))
    }
}

/// Prints the current page on A4 and returns the PDF.
async fn print_a4(c: &Client) -> Vec<u8> {
    use base64::Engine;
    let answer = c.issue_cmd(PrintA4).await.expect("print the page");
    let encoded = answer.as_str().expect("the PDF, base64-encoded");
    base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64")
}

/// Pages in a PDF as Chromium writes it (`/Type /Page` objects, not `/Pages`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.matches("/Type /Page").count() - text.matches("/Type /Pages").count()
}

async fn transfer_walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    let who = two_places(&store).await;
    account(&store, "dst_sec", SECRETARY_PASSWORD, Role::Secretary, "DST-B1").await;
    let base = serve(store.clone()).await;

    // The home branch asks for the transfer from the member's page and approves it.
    let home = driver.browser(Screen::Desktop).await;
    home.goto(&format!("{base}/members/{}", who.member_id)).await.expect("open the member");
    log_in(&home, "gn_sec", SECRETARY_PASSWORD).await;
    wait_for_path(&home, &format!("/members/{}", who.member_id)).await;
    click(&home, "#ask-transfer").await;
    wait_for_path(&home, &format!("/members/{}/transfer", who.member_id)).await;
    type_into(&home, "#f-to_org_code", "DST-B1").await;
    type_into(&home, "#f-reason", "在苏州高新区工作生活已满六个月").await;
    click(&home, "#ask").await;
    wait_for_url(&home, "the transfer's page", |u| u.path().starts_with("/transfers/")).await;
    let page = home.current_url().await.expect("url").path().to_string();
    assert_eq!(text(&home, "#transfer-status").await, "已申请", "{backend:?}");
    click(&home, "#step-approve button").await;
    let status = "return document.getElementById('transfer-status')?.textContent";
    wait_for_js(&home, "the letter issued", &format!("{status} === '已开具介绍信'"), vec![]).await;
    let facts = text(&home, "#letter-number").await;
    let number = facts.split_whitespace().next().unwrap_or_default().to_string();
    assert!(number.starts_with("GN-B1-"), "{backend:?}: {facts}");

    // The printable letter: stub, letter and receipt on one A4 page, without the site's header.
    click(&home, "#print-letter").await;
    wait_for_path(&home, &format!("{page}/letter")).await;
    let letter = text(&home, "#transfer-letter").await;
    for part in ["存根", "中国共产党党员组织关系介绍信", "回执", &number] {
        assert!(letter.contains(part), "{backend:?}: no {part} in {letter}");
    }
    assert!(letter.contains("狮山大厦联合党支部") && letter.contains(who.name), "{backend:?}: {letter}");
    let pdf = print_a4(&home).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(dir.join(format!("transfer-letter-{backend:?}.pdf")), &pdf).ok();
    assert!(pdf.starts_with(b"%PDF-"), "{backend:?}: not a PDF");
    assert_eq!(pdf_pages(&pdf), 1, "{backend:?}: the letter should fit one A4 page");
    keep_screenshot(&home, &format!("transfer-letter-{backend:?}")).await;

    // The receiving branch finds it in its queue and receives the member.
    let there = driver.browser(Screen::Desktop).await;
    there.goto(&format!("{base}/transfers?queue=to_receive")).await.expect("open the queue");
    log_in(&there, "dst_sec", SECRETARY_PASSWORD).await;
    wait_for_path(&there, "/transfers").await;
    there.find(Locator::LinkText(who.name)).await.expect("the transfer's link").click().await.expect("open");
    wait_for_path(&there, &page).await;
    click(&there, "#step-receive button").await;
    wait_for_js(&there, "the member received", &format!("{status} === '转入方已接收'"), vec![]).await;
    there.close().await.expect("close");

    // The receipt is back at home: done.
    home.goto(&format!("{base}{page}")).await.expect("back to the transfer");
    click(&home, "#step-record_receipt button").await;
    wait_for_js(&home, "the transfer done", &format!("{status} === '回执已返回，转接完成'"), vec![]).await;
    home.close().await.expect("close");

    let g = store.guard(admin(), AuditClient::default());
    let m = g.member(who.member_id).await.expect("the member");
    assert_eq!(m.org_code, "DST-B1", "{backend:?}: the record moved");
    let flows = g.member_flows(who.member_id).await.expect("flows");
    assert_eq!(flows[0].status, FlowStatus::Transferred, "{backend:?}: {flows:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_goes_from_request_to_receipt_across_two_branches_and_its_letter_prints_on_a4() {
    let driver = Driver::start();
    for backend in BACKENDS {
        transfer_walk(&driver, backend).await;
    }
}

async fn certificate_walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    let who = two_places(&store).await;
    account(&store, "gn_admin", SECRETARY_PASSWORD, Role::OrgAdmin, "GN").await;
    let base = serve(store.clone()).await;

    // The county committee issues it from the member's page, the form filled from the departure.
    let c = driver.browser(Screen::Desktop).await;
    c.goto(&format!("{base}/members/{}", who.member_id)).await.expect("open the member");
    log_in(&c, "gn_admin", SECRETARY_PASSWORD).await;
    wait_for_path(&c, &format!("/members/{}", who.member_id)).await;
    click(&c, "#issue-certificate").await;
    wait_for_path(&c, &format!("/members/{}/certificate", who.member_id)).await;
    assert_eq!(value(&c, "#f-reason").await, "work", "{backend:?}");
    click(&c, "#certificate-submit").await;
    wait_for_url(&c, "the certificate's page", |u| u.path().starts_with("/certificates/")).await;
    assert_eq!(text(&c, "#certificate-status").await, "有效", "{backend:?}");
    let number = text(&c, "#certificate-number").await;
    assert!(number.starts_with("GN-"), "{backend:?}: {number}");

    // The certificate's layout: cover and inside page on one A4 sheet, with the QR code.
    click(&c, "#print-certificate").await;
    wait_for_url(&c, "the printable certificate", |u| u.path().ends_with("/print")).await;
    let card = text(&c, "#certificate-card").await;
    for part in ["流动党员活动证", "灌南县委", who.name, &number, "扫码核验"] {
        assert!(card.contains(part), "{backend:?}: no {part} in {card}");
    }
    let qr = c.find(Locator::Css(".certificate-qr svg")).await.expect("the QR code");
    let size = qr.rectangle().await.expect("its size");
    assert!(size.2 >= 60.0 && size.3 >= 60.0, "{backend:?}: a QR code too small to scan: {size:?}");
    let pdf = print_a4(&c).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(dir.join(format!("certificate-{backend:?}.pdf")), &pdf).ok();
    assert!(pdf.starts_with(b"%PDF-"), "{backend:?}: not a PDF");
    assert_eq!(pdf_pages(&pdf), 1, "{backend:?}: the certificate should fit one A4 page");
    keep_screenshot(&c, &format!("certificate-{backend:?}")).await;
    c.close().await.expect("close");

    // Anyone checks it on a phone without an account: valid, a masked name, nothing more.
    let phone = driver.browser(Screen::Phone).await;
    phone.goto(&format!("{base}/verify")).await.expect("open verification");
    type_into(&phone, "#f-number", &number.to_lowercase()).await;
    click(&phone, "#verify-form button").await;
    assert_eq!(text(&phone, "#verify-verdict").await, "有效", "{backend:?}");
    assert_eq!(text(&phone, "#verify-name").await, "张**", "{backend:?}");
    let page = phone.source().await.expect("page");
    assert!(!page.contains(who.name) && !page.contains(&who.id_number), "{backend:?}: the holder leaked");
    assert_fits(&phone, "verification on a phone").await;
    phone.close().await.expect("close");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_prints_on_a4_and_is_verified_on_a_phone() {
    let driver = Driver::start();
    for backend in BACKENDS {
        certificate_walk(&driver, backend).await;
    }
}

/// Screening in the browser: a county administrator starts a campaign, uploads a roster
/// from Suzhou, checks the columns it found, starts the run and watches it end (the page
/// updates itself), then accepts the member found.
async fn screening_walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    let who = two_places(&store).await;
    account(&store, "gn_admin", SECRETARY_PASSWORD, Role::OrgAdmin, "GN").await;
    let base = serve(store.clone()).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("a directory for the roster");
    let roster = dir.join(format!("roster-{backend:?}.csv"));
    let csv = format!(
        "苏州高新区流动人口登记表\n序号,姓名,身份证号码,联系电话\n1,{},{},{}\n2,陌生人,320101199001011234,13800000000\n",
        who.name, who.id_number, who.phone
    );
    std::fs::write(&roster, csv).expect("the roster");

    let c = driver.browser(Screen::Desktop).await;
    c.goto(&format!("{base}/screening")).await.expect("open screening");
    log_in(&c, "gn_admin", SECRETARY_PASSWORD).await;
    wait_for_path(&c, "/screening").await;
    type_into(&c, "#f-name", "2026年冬季排查").await;
    type_into(&c, "#f-place_org_code", "DST").await;
    click(&c, "#create-campaign").await;
    wait_for_url(&c, "the campaign's page", |u| u.path().starts_with("/screening/")).await;

    // The file goes up; its page shows the columns found and the ID numbers masked.
    let input = c.find(Locator::Css("#f-file")).await.expect("the file field");
    input.send_keys(roster.to_str().expect("a UTF-8 path")).await.expect("choose the file");
    type_into(&c, "#f-source", "苏州高新区公安分局").await;
    click(&c, "#upload-roster").await;
    wait_for_url(&c, "the roster's page", |u| u.path().contains("/rosters/")).await;
    assert_eq!(text(&c, "#roster-status").await, "待核对列", "{backend:?}");
    assert_eq!((value(&c, "#col-1").await, value(&c, "#col-2").await), ("name".into(), "id_number".into()));
    let page = c.source().await.expect("page");
    assert!(!page.contains(&who.id_number), "{backend:?}: the preview shows the ID number whole");
    keep_screenshot(&c, &format!("screening-mapping-{backend:?}")).await;

    // The run: the page follows it and shows the end by itself.
    click(&c, "#start-run").await;
    wait_for_js(
        &c,
        "the run to end",
        "return document.querySelector('#roster-status')?.textContent === '已完成'",
        vec![],
    )
    .await;
    click(&c, "a[href$='#match-list']").await;
    wait_for_url(&c, "the campaign's page", |u| !u.path().contains("/rosters/")).await;
    let row = text(&c, "#match-table tbody tr").await;
    assert!(row.contains(who.name) && row.contains("未报到，需联系报到"), "{backend:?}: {row}");
    let accept = c.find(Locator::Css("#match-table button[value=accepted]")).await.expect("accept");
    accept.click().await.expect("accept");
    wait_for_js(
        &c,
        "the decision",
        "return document.querySelector('#match-table')?.textContent.includes('已确认')",
        vec![],
    )
    .await;
    c.close().await.expect("close");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_is_uploaded_checked_run_and_reviewed_in_the_browser() {
    let driver = Driver::start();
    for backend in BACKENDS {
        screening_walk(&driver, backend).await;
    }
}
