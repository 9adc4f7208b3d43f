//! End to end in headless Chromium: a branch secretary logs in, searches a member,
//! opens the detail page, enters a wrong ID number and reads the error in Chinese.
//! Chromium and ChromeDriver are required (scripts/test.sh installs them); a missing
//! browser fails the test.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use kite_domain::{Principal, Role};
use kite_store::testing::{self, BACKENDS};
use kite_store::{Backend, Client as AuditClient, MemberQuery, NewUser, Store};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

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

    async fn browser(&self) -> Client {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=zh-CN"],
                "prefs": { "intl.accept_languages": "zh-CN,zh" },
            }
        });
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

/// Waits until the browser's address satisfies `done` (a click's navigation finishes
/// after the click returns).
async fn wait_for_url(c: &Client, what: &str, done: impl Fn(&url::Url) -> bool) {
    let started = Instant::now();
    loop {
        let url = c.current_url().await.expect("url");
        if done(&url) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still on {url}, expected {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_path(c: &Client, path: &str) {
    wait_for_url(c, path, |u| u.path() == path).await;
}

/// The text of an element, waiting for it to appear (pages load after clicks); an element
/// replaced by the next page while it is read is looked up again.
async fn text(c: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        let found = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
        let e = match found {
            Ok(e) => e,
            Err(e) => {
                let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let page = c.source().await.unwrap_or_default();
                panic!("{css} not on {url}: {e}\n{page}")
            }
        };
        match e.text().await {
            Ok(t) => return t,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("reading {css}: {err}"),
        }
    }
}

async fn walk(driver: &Driver, backend: Backend) {
    let store = testing::store(backend).await;
    kite_demo::load(&store, 400).await.expect("demo data");
    let hash = kite_server::auth::hash_password("secret-pass-1").expect("hash");
    let user = NewUser {
        username: "sec".into(),
        password_hash: hash,
        role: Role::Secretary,
        org_code: Some("GN-01-01".into()),
        member_id: None,
        display_name: None,
        service_point_code: None,
    };
    store.accounts().create_user(&user, "test").await.expect("secretary");
    let q = MemberQuery { org: Some("GN-01-01".into()), ..Default::default() };
    let page = store.guard(admin(), AuditClient::default()).members(&q).await.expect("members");
    let target = page.items.first().expect("a member in the branch").clone();
    let full = store.guard(admin(), AuditClient::default()).member(target.id).await.expect("member").id_number;
    let base = serve(store.clone()).await;

    let c = driver.browser().await;
    c.goto(&format!("{base}/members")).await.expect("open");
    assert!(c.current_url().await.expect("url").path().starts_with("/login"), "{backend:?}: not sent to login");
    c.find(Locator::Css("input[name=username]")).await.expect("username").send_keys("sec").await.expect("type");
    c.find(Locator::Css("input[name=password]"))
        .await
        .expect("password")
        .send_keys("secret-pass-1")
        .await
        .expect("type");
    c.find(Locator::Css("form[action='/login'] button")).await.expect("submit").click().await.expect("log in");
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
    c.wait().for_element(Locator::Css(".division-row select")).await.expect("division picker");
    let id_field = c.find(Locator::Id("f-id_number")).await.expect("id field");
    id_field.clear().await.expect("clear");
    let last = if full.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &full[..17]);
    id_field.send_keys(&wrong).await.expect("type");
    c.find(Locator::Id("save")).await.expect("save").click().await.expect("save");
    c.wait().for_element(Locator::Id("page-error")).await.expect("the form comes back with errors");
    assert_eq!(text(&c, "#e-id_number").await, "公民身份号码校验位错误，请核对", "{backend:?}");
    assert_eq!(text(&c, "#page-error").await, "提交的内容有误，请检查标出的项目", "{backend:?}");

    // On a phone the member list fits the screen's width; the table scrolls inside.
    c.set_window_size(390, 844).await.expect("phone size");
    c.goto(&format!("{base}/members?q={}", target.name)).await.expect("list");
    let fits =
        c.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.expect("measure");
    assert_eq!(fits, serde_json::Value::Bool(true), "{backend:?}: the member list overflows a phone screen");
    let shot = c.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(dir.join(format!("members-phone-{backend:?}.png")), shot).ok();
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
