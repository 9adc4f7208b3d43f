//! The real server: `kite user add`, `kite serve`, login, and timed API requests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

pub const USERNAME: &str = "bench";
const PASSWORD: &str = "kite-bench-password";

/// Creates the admin account with the product's command line.
pub fn add_user(kite: &Path, database_url: &str) -> anyhow::Result<()> {
    let mut child = Command::new(kite)
        .args(["user", "add", "--username", USERNAME, "--role", "admin", "--password-stdin"])
        .args(["--database-url", database_url])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", kite.display()))?;
    child.stdin.take().context("stdin")?.write_all(format!("{PASSWORD}\n").as_bytes())?;
    let status = child.wait()?;
    ensure!(status.success(), "kite user add failed: {status}");
    Ok(())
}

/// A running `kite serve`, stopped on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Server {
    pub async fn start(kite: &Path, database_url: &str, log: PathBuf) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(kite)
            .args(["serve", "--listen", &listen, "--database-url", database_url])
            // The binary's default filter; set so that the caller's environment does not change it.
            .env("RUST_LOG", "info")
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", kite.display()))?;
        let mut server = Server { child, base: format!("http://{listen}"), log };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("kite serve exited with {status}; see {}", server.log.display());
            }
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("kite serve did not answer /healthz within 120 s; see {}", server.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS and VmHWM of the server process, from /proc.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") })
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An authenticated API client.
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub async fn login(base: &str) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
        let r = client
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": USERNAME, "password": PASSWORD}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "login answered {}", r.status());
        let body: serde_json::Value = r.json().await?;
        let token = body["token"].as_str().context("no token in the login answer")?.to_string();
        Ok(Api { client, base: base.to_string(), token })
    }

    /// One GET, timed from sending the request to having read the whole body; the
    /// answer is parsed after the clock stops.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<(Duration, serde_json::Value)> {
        let req = self.client.get(format!("{}{path}", self.base)).query(query).bearer_auth(&self.token).build()?;
        let t = Instant::now();
        let r = self.client.execute(req).await?;
        let status = r.status();
        let body = r.bytes().await?;
        let elapsed = t.elapsed();
        ensure!(status.is_success(), "GET {path} {query:?} answered {status}: {}", String::from_utf8_lossy(&body));
        Ok((elapsed, serde_json::from_slice(&body)?))
    }
}
