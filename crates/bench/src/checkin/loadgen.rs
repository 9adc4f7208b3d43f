//! The load generator: a second process (`kite-bench load-gen`, hidden) that posts the
//! requests of an input file to the server from C concurrent keep-alive connections and
//! writes one line per request (status, latency, the answer's reference) to an output
//! file. Running it apart from the bench keeps the bench's own work out of the figures
//! and lets the bench kill the server while the generator keeps count.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

#[derive(clap::Args, Debug)]
pub struct LoadGenArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub base: String,
    /// Concurrent connections (one request in flight on each).
    #[arg(long)]
    pub concurrency: usize,
    /// One request per line: `PATH<TAB>JSON BODY`, posted in order of taking.
    #[arg(long)]
    pub input: PathBuf,
    /// Where the outcome lines go.
    #[arg(long)]
    pub output: PathBuf,
}

/// One request's outcome as the generator saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Line of the input file.
    pub index: usize,
    /// HTTP status; 0 when no answer came (connection refused or reset, timeout).
    pub status: u16,
    pub latency: Duration,
    /// The `reference` of a 2xx answer, else the error.
    pub detail: String,
}

impl Outcome {
    pub fn acknowledged(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a run produced: the outcomes in input order and the wall time from the first
/// request sent to the last answer read.
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
}

pub async fn run(a: LoadGenArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let requests: Vec<(String, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            l.split_once('\t')
                .map(|(p, b)| (format!("{}{p}", a.base), b.to_string()))
                .with_context(|| format!("{} line {}: no tab", a.input.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(a.concurrency > 0, "--concurrency must be at least 1");
    let requests = Arc::new(requests);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency {
        let (client, requests, next) = (client.clone(), requests.clone(), next.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((url, body)) = requests.get(index) else { break };
                let started = Instant::now();
                let sent = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let answer = match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.bytes().await.map(|b| (status, b))
                    }
                    Err(e) => Err(e),
                };
                let latency = started.elapsed();
                // The answer is read after the clock stops.
                out.push(match answer {
                    Ok((status, body)) => {
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        let detail = if (200..300).contains(&status) {
                            v["reference"].as_str().unwrap_or("").to_string()
                        } else {
                            v["error"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| String::from_utf8_lossy(&body).into())
                        };
                        Outcome { index, status, latency, detail }
                    }
                    Err(e) => Outcome { index, status: 0, latency, detail: error_chain(&e) },
                });
            }
            out
        });
    }
    let mut outcomes = Vec::with_capacity(requests.len());
    while let Some(r) = tasks.join_next().await {
        outcomes.extend(r.context("a generator task failed")?);
    }
    let elapsed = t0.elapsed();
    outcomes.sort_by_key(|o| o.index);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output.display()))?,
    );
    writeln!(w, "elapsed_us\t{}", elapsed.as_micros())?;
    for o in &outcomes {
        let detail: String = o.detail.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
        writeln!(w, "{}\t{}\t{}\t{detail}", o.index, o.status, o.latency.as_micros())?;
    }
    w.flush()?;
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Writes the requests for a generator run.
pub fn write_input(path: &Path, requests: &[(String, String)]) -> anyhow::Result<()> {
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for (p, body) in requests {
        ensure!(!p.contains('\t') && !body.contains('\n'), "request {p} cannot be written on one line");
        writeln!(w, "{p}\t{body}")?;
    }
    w.flush()?;
    Ok(())
}

/// Starts `kite-bench load-gen` (this very binary) as a child process.
pub fn spawn(base: &str, concurrency: usize, input: &Path, output: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the kite-bench binary")?;
    Command::new(&exe)
        .args(["load-gen", "--base", base, "--concurrency", &concurrency.to_string()])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} load-gen", exe.display()))
}

/// Waits for a generator and reads what it wrote.
pub async fn finish(mut child: Child, output: &Path, expected: usize) -> anyhow::Result<Run> {
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure!(status.success(), "the load generator exited with {status}");
    let text = std::fs::read_to_string(output).with_context(|| format!("reading {}", output.display()))?;
    let mut lines = text.lines();
    let elapsed = lines
        .next()
        .and_then(|l| l.strip_prefix("elapsed_us\t"))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_micros)
        .with_context(|| format!("{}: no elapsed_us line", output.display()))?;
    let mut outcomes = Vec::with_capacity(expected);
    for l in lines {
        let mut f = l.splitn(4, '\t');
        let bad = || format!("{}: bad line {l:?}", output.display());
        let index = f.next().and_then(|v| v.parse().ok()).with_context(bad)?;
        let status = f.next().and_then(|v| v.parse().ok()).with_context(bad)?;
        let latency = f.next().and_then(|v| v.parse().ok()).map(Duration::from_micros).with_context(bad)?;
        let detail = f.next().unwrap_or("").to_string();
        outcomes.push(Outcome { index, status, latency, detail });
    }
    ensure!(
        outcomes.len() == expected,
        "the load generator reported {} outcomes for {expected} requests",
        outcomes.len()
    );
    Ok(Run { outcomes, elapsed })
}

/// Runs a generator to the end.
pub async fn run_to_end(
    base: &str,
    concurrency: usize,
    requests: &[(String, String)],
    dir: &Path,
    name: &str,
) -> anyhow::Result<Run> {
    let input = dir.join(format!("{name}.in"));
    let output = dir.join(format!("{name}.out"));
    write_input(&input, requests)?;
    let child = spawn(base, concurrency, &input, &output)?;
    finish(child, &output, requests.len()).await
}
