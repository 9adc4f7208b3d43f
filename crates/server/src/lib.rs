//! Kite's HTTP server: the JSON API under `/api` and the web UI, both thin over the
//! guarded store.

pub mod api;
pub mod auth;
pub mod error;
pub mod export;
pub mod extract;
pub mod i18n;
pub mod limits;
pub mod notify;
pub mod rules;
pub mod screening;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Router;
use kite_store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// Whether cookies get the `Secure` flag (behind HTTPS).
    pub secure_cookies: bool,
    /// The address the public reaches the server at (for QR codes); else the request's Host.
    pub public_url: Option<String>,
    /// Poked when a message is queued, so the delivery loop sends it without waiting.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Public certificate lookups allowed per client and minute.
    pub lookups: Arc<limits::Lookups>,
    /// Screening runs under way in this process.
    pub runs: Arc<screening::Runs>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (audit, rate limits).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            templates: Arc::new(web::templates()),
            secure_cookies: false,
            public_url: None,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            lookups: Arc::new(limits::Lookups::default()),
            runs: Arc::new(screening::Runs::default()),
            trusted_proxies: Arc::new(Vec::new()),
        }
    }
}

/// The whole application: API, OpenAPI document, web pages and assets.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(api::language_layer))
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::client_address))
        .with_state(state)
}

/// Unknown addresses: a JSON error under `/api/`, a page elsewhere.
async fn not_found(state: axum::extract::State<AppState>, lang: web::PageLang, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return error::ApiError::NotFound.into_response();
    }
    web::error_status_page(&state, lang.0, axum::http::StatusCode::NOT_FOUND, "page_not_found")
}

async fn method_not_allowed(
    state: axum::extract::State<AppState>,
    lang: web::PageLang,
    uri: axum::http::Uri,
) -> Response {
    if uri.path().starts_with("/api/") {
        return error::ApiError::MethodNotAllowed.into_response();
    }
    web::error_status_page(&state, lang.0, axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
}

/// Applies the daily date rules now and then every hour: the rules are idempotent, so a
/// restart or a missed run only delays them.
pub fn spawn_daily_rules(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match store.run_daily(rules::today()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(flows = n, "daily rules: flows now count as mobile"),
                Err(e) => tracing::error!(error = %e, "daily rules failed"),
            }
        }
    })
}

/// Serves until the process is interrupted; with a gateway, delivers the outbox too.
pub async fn serve(state: AppState, addr: SocketAddr, notifier: notify::Notifier) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (runs, uploads) = state.store.admin().screening_interrupted().await?;
    if runs + uploads > 0 {
        tracing::warn!(runs, uploads, "screening runs and uploads cut off by the last stop were set aside");
    }
    let swept = screening::sweep_spool(std::time::Duration::from_secs(2 * 24 * 3600));
    if swept > 0 {
        tracing::warn!(files = swept, "roster files left by a crash were removed");
    }
    spawn_daily_rules(state.store.clone());
    match &notifier {
        notify::Notifier::OutboxOnly => tracing::info!("no SMS gateway: messages stay in the outbox (/outbox)"),
        notify::Notifier::Gateway(g) => {
            tracing::info!(gateway = %g.origin(), "delivering SMS through the gateway");
            notify::spawn_outbox_delivery(state.store.clone(), notifier.clone(), state.outbox_wake.clone());
        }
    }
    let runs = state.runs.clone();
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown({
            let runs = runs.clone();
            async move {
                tokio::signal::ctrl_c().await.ok();
                // Runs under way end as cancelled (to be run again after the restart).
                runs.cancel_all();
            }
        })
        .await?;
    runs.wait_idle(std::time::Duration::from_secs(30)).await;
    Ok(())
}
