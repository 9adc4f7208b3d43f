//! SMS delivery. The outbox is the queue; a [`Notifier`] empties it. Without a gateway
//! (development, demos, tests) messages stay in the outbox, where staff read them on
//! `/outbox`; with one, [`spawn_outbox_delivery`] posts each due message to it.
//!
//! The gateway request is `POST URL` with `{"id", "to", "body"}` (see the README); any
//! 2xx answer means sent. Anything else is a failed try, retried after a growing wait
//! ([`retry_delay`]) until the store gives the message up after `MAX_DELIVERIES` tries.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kite_store::{OutboxMessage, Store, StoreError, MAX_DELIVERIES};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::sync::Notify;

/// How long one request to the gateway may take, answer included.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the delivery loop looks for due messages when nothing wakes it.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// Messages taken per round.
const BATCH: i64 = 50;
/// The longest error text kept from a gateway's answer.
const ERROR_SNIPPET: usize = 200;

/// Seconds to wait after the 1st, 2nd, 3rd and 4th failed try. A code lives ten minutes
/// (`kite_domain::checkin::CODE_TTL`), so all five tries fall within its life (at about
/// 0 s, 15 s, 1 min, 3 min and 8 min) while a gateway that is down gets few requests.
const RETRY_AFTER: [i64; 4] = [15, 45, 120, 300];

/// The wait before the next try of a message that has failed `failed_tries` times.
pub fn retry_delay(failed_tries: i64) -> TimeDelta {
    let i = usize::try_from(failed_tries.saturating_sub(1)).unwrap_or(0).min(RETRY_AFTER.len() - 1);
    TimeDelta::seconds(RETRY_AFTER[i])
}

/// Where outbox messages go.
#[derive(Clone, Debug, Default)]
pub enum Notifier {
    /// They stay in the outbox, pending, for staff to read (development and demos).
    #[default]
    OutboxOnly,
    /// They are posted to an HTTP SMS gateway.
    Gateway(Gateway),
}

/// A gateway setting that cannot work, found at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the SMS gateway URL {0:?} is not a URL: {1}")]
    Url(String, String),
    #[error("the SMS gateway URL must start with http:// or https:// (got {0:?})")]
    Scheme(String),
    #[error("the SMS gateway URL must not hold a user name or password; pass a token with --sms-gateway-token")]
    Credentials,
    #[error("the SMS gateway token must be printable ASCII without spaces")]
    Token,
    #[error("cannot set up the HTTP client for the SMS gateway: {0}")]
    Client(String),
}

/// An HTTP SMS gateway (usually an internal relay in front of a provider).
#[derive(Clone, Debug)]
pub struct Gateway {
    url: Url,
    auth: Option<HeaderValue>,
    timeout: Duration,
    http: reqwest::Client,
}

/// What the gateway receives.
#[derive(Serialize)]
struct SmsRequest<'a> {
    /// The outbox id: the same message always carries the same id, so the gateway can
    /// drop a retry of a message it already sent.
    id: i64,
    to: &'a str,
    body: &'a str,
}

/// A failed try.
#[derive(Debug)]
pub struct Failure {
    /// Short text kept as the message's `last_error`.
    pub error: String,
    /// The gateway itself is in trouble (unreachable, slow, 5xx, 429), not this message:
    /// the other messages would fail too, so the round stops.
    pub gateway_down: bool,
}

impl Gateway {
    /// Checks the URL and token; `timeout` bounds each request.
    pub fn new(url: &str, token: Option<&str>, timeout: Duration) -> Result<Gateway, ConfigError> {
        let url = url.trim();
        let parsed = Url::parse(url).map_err(|e| ConfigError::Url(url.to_string(), e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Scheme(url.to_string()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::Url(url.to_string(), "no host".into()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ConfigError::Credentials);
        }
        let auth = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if t.chars().all(|c| c.is_ascii_graphic()) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| ConfigError::Token)?;
                v.set_sensitive(true);
                Some(v)
            }
            Some(_) => return Err(ConfigError::Token),
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirected POST would turn into a GET without the message.
            .redirect(reqwest::redirect::Policy::none())
            // Phone numbers and codes go only where the operator said, not through an
            // ambient HTTP_PROXY.
            .no_proxy()
            .user_agent(concat!("kite/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Gateway { url: parsed, auth, timeout, http })
    }

    /// The gateway's scheme, host and port, for logs (path and query may hold keys).
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// Posts one message.
    pub async fn send(&self, m: &OutboxMessage) -> Result<(), Failure> {
        let mut req = self.http.post(self.url.clone()).header("Idempotency-Key", m.id.to_string()).json(&SmsRequest {
            id: m.id,
            to: &m.recipient,
            body: &m.body,
        });
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => {
                let status = res.status();
                let said = snippet(res).await;
                let error = if said.is_empty() {
                    format!("gateway answered {status}")
                } else {
                    format!("gateway answered {status}: {said}")
                };
                Err(Failure {
                    error,
                    gateway_down: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                })
            }
            Err(e) => Err(Failure { error: self.describe(&e), gateway_down: true }),
        }
    }

    /// A transport error in a few words, without the URL (its query may hold a key).
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("gateway did not answer within {} s", self.timeout.as_secs_f64());
        }
        let mut text =
            String::from(if e.is_connect() { "gateway unreachable" } else { "request to the gateway failed" });
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// The start of an error answer's body, on one line; the rest is not read.
async fn snippet(mut res: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_SNIPPET * 4 {
        match res.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let line: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(ERROR_SNIPPET).collect::<String>();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What one round of delivery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub failed: usize,
    /// The round ended early because the gateway looks down.
    pub stopped: bool,
    /// A full batch was due: more may be waiting.
    pub more: bool,
}

/// Delivers the messages due now; see [`deliver_due`].
pub async fn deliver_pending(store: &Store, notifier: &Notifier) -> Result<Round, StoreError> {
    deliver_due(store, notifier, Utc::now()).await
}

/// One round: the messages due at `now`, oldest first, each claimed, posted and marked
/// sent or failed. The clock starts at `now` and runs with real time, so tests can step
/// past the backoff by passing a later `now`. The outbox-only notifier leaves them.
pub async fn deliver_due(store: &Store, notifier: &Notifier, now: DateTime<Utc>) -> Result<Round, StoreError> {
    let Notifier::Gateway(gateway) = notifier else {
        return Ok(Round::default());
    };
    let started = Utc::now();
    let clock = || now + (Utc::now() - started);
    // A claimed try that never reports back is retried after this.
    let hold = TimeDelta::from_std(gateway.timeout).unwrap_or(TimeDelta::hours(1)) + TimeDelta::seconds(30);
    let outbox = store.outbox();
    let due = outbox.due(now, BATCH).await?;
    let mut round = Round { more: due.len() as i64 == BATCH, ..Round::default() };
    for m in due {
        let t = clock();
        if !outbox.claim(m.id, t, t.checked_add_signed(hold).unwrap_or(t)).await? {
            continue;
        }
        match gateway.send(&m).await {
            Ok(()) => {
                outbox.mark_sent(m.id).await?;
                round.sent += 1;
            }
            Err(f) => {
                let tries = m.attempts + 1;
                outbox.mark_failed(m.id, &f.error, clock() + retry_delay(tries)).await?;
                round.failed += 1;
                if tries >= MAX_DELIVERIES {
                    tracing::error!(outbox_id = m.id, tries, error = %f.error, "SMS given up");
                } else {
                    tracing::warn!(outbox_id = m.id, tries, error = %f.error, "SMS delivery failed; will retry");
                }
                if f.gateway_down {
                    round.stopped = true;
                    round.more = false;
                    break;
                }
            }
        }
    }
    Ok(round)
}

/// Delivers the outbox in the background: a round every [`POLL_EVERY`], at once when
/// `wake` is notified (a code was just queued), and straight again while batches come
/// full. Errors are logged; a panicking round is logged and the loop goes on. Does
/// nothing for the outbox-only notifier.
pub fn spawn_outbox_delivery(store: Store, notifier: Notifier, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if matches!(notifier, Notifier::OutboxOnly) {
            return;
        }
        loop {
            let round = tokio::spawn({
                let (store, notifier) = (store.clone(), notifier.clone());
                async move { deliver_pending(&store, &notifier).await }
            })
            .await;
            let more = match round {
                Ok(Ok(r)) => {
                    if r.sent > 0 {
                        tracing::info!(sent = r.sent, failed = r.failed, "SMS delivered");
                    }
                    r.more
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "SMS delivery: the outbox cannot be read or updated");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "SMS delivery round stopped unexpectedly");
                    false
                }
            };
            if !more {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                    _ = wake.notified() => {}
                }
            }
        }
    })
}
