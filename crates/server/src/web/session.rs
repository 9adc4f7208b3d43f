//! Signing in and out, and the language switch.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{error_page, render, Form, PageLang, Path, Query, Viewer};
use crate::auth::{self, SESSION_COOKIE};
use crate::i18n;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(set_lang))
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(State(state): State<AppState>, PageLang(lang): PageLang, Query(q): Query<LoginQuery>) -> Response {
    render(&state, "login.html", lang, None, context! { next => safe_next(q.next.as_deref()), username => "" })
}

/// Only same-site paths may follow a login. Browsers drop tabs and newlines from URLs,
/// so `/\t/evil.example` would read as `//evil.example`: control characters are refused.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.contains(char::is_control) => {
            n
        }
        _ => "/",
    }
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    crate::api::ClientAddr(client): crate::api::ClientAddr,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Response {
    match auth::login(&state, &f.username, &f.password, client.as_deref(), "browser").await {
        Ok(s) => {
            let cookie = Cookie::build((SESSION_COOKIE, s.token))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.secure_cookies)
                .path("/")
                .max_age(time_secs(auth::BROWSER_SESSION.num_seconds()))
                .build();
            (jar.add(cookie), Redirect::to(safe_next(Some(&f.next)))).into_response()
        }
        Err(e) => {
            let status = e.status();
            let mut r = render(
                &state,
                "login.html",
                lang,
                None,
                context! {
                    error => i18n::err(lang, e.code()), next => safe_next(Some(&f.next)), username => f.username,
                },
            );
            *r.status_mut() = status;
            r
        }
    }
}

fn time_secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    if let Err(e) = state.store.accounts().delete_session(&who.token_hash).await {
        return error_page(&state, lang, &who, e.into());
    }
    (jar.remove(Cookie::build(SESSION_COOKIE).path("/")), Redirect::to("/login")).into_response()
}

async fn set_lang(jar: CookieJar, Path(code): Path<String>, headers: axum::http::HeaderMap) -> Response {
    let code = if code == "en" { "en" } else { "zh-CN" };
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").and_then(|i| r[i + 3..].find('/').map(|j| r[i + 3 + j..].to_string())))
        .unwrap_or_else(|| "/".into());
    let cookie =
        Cookie::build(("lang", code)).path("/").same_site(SameSite::Lax).max_age(time_secs(365 * 86400)).build();
    (jar.add(cookie), Redirect::to(safe_next(Some(&back)))).into_response()
}
