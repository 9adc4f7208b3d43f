//! SMS delivery through an HTTP gateway, on both backends. A mock gateway inside the
//! test records what it receives; rounds are driven through `deliver_due`, with the clock
//! stepped past the backoff, so nothing waits on the delivery loop's timers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeDelta, Utc};
use common::*;
use kite_server::notify::{self, deliver_due, ConfigError, Gateway, Notifier, Round};
use kite_store::{testing, Client, OutboxMessage, Store, MAX_DELIVERIES};
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-Token_1";

/// A gateway on a local port that answers every POST to `/sms` with `status` after
/// `delay` and records the request's headers and JSON body.
struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    async fn start(status: u16, delay: Duration) -> Mock {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let handler = move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let json = serde_json::from_str(&body).unwrap_or(Value::Null);
                record.lock().unwrap().push((headers, json));
                tokio::time::sleep(delay).await;
                (StatusCode::from_u16(status).unwrap(), "upstream provider\nerror")
            }
        };
        let app = axum::Router::new().route("/sms", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("mock gateway runs");
        });
        Mock { url: format!("http://{addr}/sms"), seen, task }
    }

    fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }

    fn notifier(&self, token: Option<&str>) -> Notifier {
        Notifier::Gateway(Gateway::new(&self.url, token, notify::GATEWAY_TIMEOUT).expect("gateway"))
    }
}

/// A port on which nothing listens.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    listener.local_addr().expect("local address").port()
}

/// Queues a code's SMS for `phone` as the check-in does, and returns it.
async fn queue(store: &Store, phone: &str) -> OutboxMessage {
    let sms = format!("验证码 123456，发给 {phone}");
    store.public(Client::default()).send_code(phone, &format!("hash-{phone}"), &sms).await.expect("queue a code");
    message(store, phone).await
}

async fn message(store: &Store, phone: &str) -> OutboxMessage {
    let all = store.outbox().recent(50).await.expect("read the outbox");
    all.into_iter().find(|m| m.recipient == phone).expect("the message")
}

/// Runs `test` on a fresh store of each backend.
async fn on_each_store<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    testing::on_each_backend(|_, store| async move { store }, test).await;
}

#[tokio::test]
async fn a_code_sms_is_posted_with_its_id_and_token_then_marked_sent() {
    on_each_backend(|s| async move {
        let d = dest(s).await;
        let (s, w) = (&d.w.s, &d.w);
        let gateway = Mock::start(200, Duration::ZERO).await;
        let notifier = gateway.notifier(Some(TOKEN));

        s.post("/api/v1/checkin/o/DST-B1/code").json(&json!({"phone": "13820000001"})).send().await.expect(202);
        let m = message(&s.store, "13820000001").await;
        assert_eq!((m.status.as_str(), m.attempts), ("pending", 0));

        let round = deliver_due(&s.store, &notifier, Utc::now()).await.expect("deliver");
        assert_eq!(round, Round { sent: 1, ..Round::default() });
        let seen = gateway.requests();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        assert_eq!(body, &json!({"id": m.id, "to": "13820000001", "body": m.body}));
        assert!(m.body.starts_with("【风筝】您的报到验证码为"), "{}", m.body);
        assert_eq!(headers["authorization"], format!("Bearer {TOKEN}").as_str());
        assert_eq!(headers["idempotency-key"], m.id.to_string().as_str());
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));

        let m = message(&s.store, "13820000001").await;
        assert_eq!((m.status.as_str(), m.attempts, m.last_error.as_deref()), ("sent", 1, None));
        assert!(m.sent_at.is_some() && m.next_attempt_at.is_none(), "{m:?}");
        let listed = s.get("/api/v1/outbox").auth(&w.root).send().await;
        assert_eq!(listed.ok()[0]["status"], "sent");

        // Nothing is sent twice, however late the next round.
        let later = deliver_due(&s.store, &notifier, Utc::now() + TimeDelta::days(1)).await.unwrap();
        assert_eq!(later, Round::default());
        assert_eq!(gateway.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_gateway_answering_500_is_retried_after_a_wait_then_given_up() {
    on_each_store(|store| async move {
        let gateway = Mock::start(500, Duration::ZERO).await;
        let notifier = gateway.notifier(None);
        queue(&store, "13800000001").await;

        let before = Utc::now();
        let round = deliver_due(&store, &notifier, before).await.unwrap();
        assert_eq!(round, Round { failed: 1, stopped: true, ..Round::default() });
        let m = message(&store, "13800000001").await;
        assert_eq!((m.status.as_str(), m.attempts), ("pending", 1));
        assert_eq!(
            m.last_error.as_deref(),
            Some("gateway answered 500 Internal Server Error: upstream provider error")
        );
        assert!(m.next_attempt_at.unwrap() >= before + notify::retry_delay(1), "{m:?}");
        assert!(gateway.requests()[0].0.get("authorization").is_none());

        // Backoff: not tried again at once.
        assert_eq!(deliver_due(&store, &notifier, Utc::now()).await.unwrap(), Round::default());
        assert_eq!(gateway.requests().len(), 1);
        assert!(notify::retry_delay(2) > notify::retry_delay(1));

        for hours in 1..MAX_DELIVERIES {
            let round = deliver_due(&store, &notifier, Utc::now() + TimeDelta::hours(hours)).await.unwrap();
            assert_eq!(round.failed, 1, "try {}", hours + 1);
        }
        let m = message(&store, "13800000001").await;
        assert_eq!((m.status.as_str(), m.attempts), ("failed", MAX_DELIVERIES));
        let later = deliver_due(&store, &notifier, Utc::now() + TimeDelta::days(1)).await.unwrap();
        assert_eq!(later, Round::default());
        assert_eq!(gateway.requests().len() as i64, MAX_DELIVERIES);
        // The same message always carried the same id.
        assert!(gateway.requests().iter().all(|(_, b)| b["id"] == m.id));
    })
    .await;
}

#[tokio::test]
async fn a_refused_message_does_not_hold_up_the_others() {
    on_each_store(|store| async move {
        // A 4xx is about the message (say, a number the provider refuses): the round goes on.
        let gateway = Mock::start(400, Duration::ZERO).await;
        queue(&store, "13800000001").await;
        queue(&store, "13800000002").await;
        let round = deliver_due(&store, &gateway.notifier(None), Utc::now()).await.unwrap();
        assert_eq!(round, Round { failed: 2, ..Round::default() });
        let m = message(&store, "13800000002").await;
        assert_eq!(m.last_error.as_deref(), Some("gateway answered 400 Bad Request: upstream provider error"));
    })
    .await;
}

#[tokio::test]
async fn a_gateway_that_is_down_or_slow_counts_as_a_failed_try() {
    on_each_store(|store| async move {
        queue(&store, "13800000001").await;
        queue(&store, "13800000002").await;
        let port = closed_port().await;
        for scheme in ["http", "https"] {
            let down = Gateway::new(&format!("{scheme}://127.0.0.1:{port}/sms"), Some(TOKEN), notify::GATEWAY_TIMEOUT);
            let down = Notifier::Gateway(down.expect("gateway"));
            // Down: the round stops at the first failure instead of trying every message.
            let round = deliver_due(&store, &down, Utc::now() + TimeDelta::hours(1)).await.unwrap();
            assert_eq!(round, Round { failed: 1, stopped: true, ..Round::default() }, "{scheme}");
        }
        let (first, second) = (message(&store, "13800000001").await, message(&store, "13800000002").await);
        assert_eq!((first.attempts, second.attempts), (1, 1));
        for m in [&first, &second] {
            let error = m.last_error.as_deref().unwrap_or_default();
            assert!(error.starts_with("gateway unreachable: "), "{error}");
            assert_eq!(m.status, "pending");
        }

        let slow = Mock::start(200, Duration::from_secs(5)).await;
        let notifier = Notifier::Gateway(Gateway::new(&slow.url, None, Duration::from_millis(300)).unwrap());
        deliver_due(&store, &notifier, Utc::now() + TimeDelta::hours(2)).await.unwrap();
        let m = message(&store, "13800000001").await;
        assert_eq!((m.attempts, m.last_error.as_deref()), (2, Some("gateway did not answer within 0.3 s")));
    })
    .await;
}

#[tokio::test]
async fn the_outbox_only_notifier_leaves_messages_pending() {
    on_each_store(|store| async move {
        queue(&store, "13800000001").await;
        let round = deliver_due(&store, &Notifier::OutboxOnly, Utc::now() + TimeDelta::days(1)).await.unwrap();
        assert_eq!(round, Round::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        notify::spawn_outbox_delivery(store.clone(), Notifier::OutboxOnly, wake).await.expect("returns at once");
        let m = message(&store, "13800000001").await;
        assert_eq!((m.status.as_str(), m.attempts, m.last_error), ("pending", 0, None));
        assert_eq!(store.outbox().pending(10).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_delivery_loop_sends_what_is_queued() {
    on_each_store(|store| async move {
        let gateway = Mock::start(204, Duration::ZERO).await;
        let wake = Arc::new(tokio::sync::Notify::new());
        let task = notify::spawn_outbox_delivery(store.clone(), gateway.notifier(Some(TOKEN)), wake.clone());
        queue(&store, "13800000001").await;
        wake.notify_one();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while message(&store, "13800000001").await.status != "sent" {
            assert!(tokio::time::Instant::now() < deadline, "not delivered: {:?}", gateway.requests());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        task.abort();
        assert_eq!(gateway.requests().len(), 1);
    })
    .await;
}

#[test]
fn gateway_settings_are_checked_at_startup() {
    let t = notify::GATEWAY_TIMEOUT;
    assert!(matches!(Gateway::new("relay.internal/sms", None, t), Err(ConfigError::Url(..))));
    assert!(matches!(Gateway::new("localhost:8080/sms", None, t), Err(ConfigError::Scheme(_))));
    assert!(matches!(Gateway::new("ftp://relay.internal/sms", None, t), Err(ConfigError::Scheme(_))));
    assert!(matches!(Gateway::new("http://u:p@relay.internal/sms", None, t), Err(ConfigError::Credentials)));
    assert!(matches!(Gateway::new("http://relay.internal/sms", Some("a b"), t), Err(ConfigError::Token)));
    assert!(matches!(Gateway::new("http://relay.internal/sms", Some("令牌"), t), Err(ConfigError::Token)));
    let e = Gateway::new("localhost:8080/sms", None, t).unwrap_err().to_string();
    assert!(e.contains("http:// or https://"), "{e}");
    let g = Gateway::new(" https://relay.internal:8443/v1/sms?key=k ", Some(" "), t).expect("a good URL");
    assert_eq!(g.origin(), "https://relay.internal:8443");
}
