//! The web UI: server-rendered pages over the same guarded store as the API.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use kite_domain::member;
use kite_domain::{Education, Gender, MemberCategory, Mobility, ETHNICITIES};
use kite_store::MemberQuery;
use minijinja::{context, Environment, Value};
use serde::Deserialize;

use crate::api::members_body::MemberBody;
use crate::auth::{self, Authed, SESSION_COOKIE};
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::{rules, AppState};

pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, src) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("overview.html", include_str!("../../templates/overview.html")),
        ("orgs.html", include_str!("../../templates/orgs.html")),
        ("members.html", include_str!("../../templates/members.html")),
        ("member.html", include_str!("../../templates/member.html")),
        ("member_form.html", include_str!("../../templates/member_form.html")),
    ] {
        env.add_template(name, src).expect("templates compile");
    }
    env.add_function("t", |state: &minijinja::State, key: &str| {
        let lang = match state.lookup("lang").as_ref().and_then(|v| v.as_str()) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        };
        i18n::t(lang, key)
    });
    env
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(set_lang))
        .route("/orgs", get(orgs_root))
        .route("/orgs/{code}", get(org_page))
        .route("/members", get(members_page))
        .route("/members/{id}", get(member_page))
        .route("/members/{id}/edit", get(member_edit).post(member_save))
        .route("/assets/pico.min.css", get(|| async { css(include_str!("../../assets/vendor/pico.min.css")) }))
        .route("/assets/app.css", get(|| async { css(include_str!("../../assets/app.css")) }))
}

fn css(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], body)
        .into_response()
}

/// Pages are not to be framed, sniffed or to load anything from elsewhere.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}

/// The request's language, from the `lang` cookie or Accept-Language.
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let accept = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Ok(PageLang(Lang::pick(jar.get("lang").map(|c| c.value()), accept)))
    }
}

/// A logged-in browser user; anyone else is sent to the login page.
pub struct Viewer(pub Authed);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Authed::from_request_parts(parts, state).await {
            Ok(a) => Ok(Viewer(a)),
            Err(ApiError::Unauthorized(_)) => {
                let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                Err(Redirect::to(&format!("/login?next={}", urlencode(next))).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn render(state: &AppState, name: &str, lang: Lang, who: Option<&Authed>, ctx: Value) -> Response {
    let base = context! {
        lang => lang.code(),
        user => who.map(|w| &w.user),
        csrf => who.map(|w| w.csrf_token.as_str()),
    };
    let merged = context! { ..ctx, ..base };
    match state.templates.get_template(name).and_then(|t| t.render(merged)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "render failed");
            (StatusCode::INTERNAL_SERVER_ERROR, i18n::err(lang, "internal")).into_response()
        }
    }
}

/// An error shown as a page, in the user's language, with the right status.
fn error_page(state: &AppState, lang: Lang, who: &Authed, e: ApiError) -> Response {
    let status = e.status();
    let msg = i18n::err(lang, e.code());
    let mut r = render(state, "base.html", lang, Some(who), context! { error => msg });
    *r.status_mut() = status;
    r
}

async fn overview(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).overview(None).await {
        Ok(counts) => render(&state, "overview.html", lang, Some(&who), context! { counts }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    render(&state, "login.html", lang, None, context! { next => safe_next(q.next.as_deref()), username => "" })
}

/// Only same-site paths may follow a login.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
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
struct CsrfForm {
    #[serde(default)]
    csrf: String,
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

async fn set_lang(
    jar: CookieJar,
    axum::extract::Path(code): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
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

async fn orgs_root(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).org_children(None).await {
        Ok(children) => {
            render(&state, "orgs.html", lang, Some(&who), context! { children, ancestors => Vec::<()>::new() })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn org_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Response {
    let g = who.guard(&state);
    let result = async {
        let org = g.org(&code).await?;
        let children = g.org_children(Some(&code)).await?;
        let ancestors = g.org_ancestors(&code).await?;
        let counts = g.overview(Some(&code)).await?;
        Ok::<_, kite_store::StoreError>((org, children, ancestors, counts))
    }
    .await;
    match result {
        Ok((org, children, ancestors, counts)) => {
            let division_name = kite_divisions::full_name(&org.division_code).unwrap_or_default();
            let ancestors: Vec<_> = ancestors.into_iter().filter(|a| a.code != org.code).collect();
            render(&state, "orgs.html", lang, Some(&who), context! { org, children, ancestors, counts, division_name })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn members_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    axum::extract::Query(q): axum::extract::Query<MemberQuery>,
) -> Response {
    match who.guard(&state).members(&q).await {
        Ok(page) => {
            let mut params: Vec<String> = Vec::new();
            for (k, v) in [("q", &q.q), ("org", &q.org), ("mobility", &q.mobility)] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    params.push(format!("{k}={}", urlencode(v)));
                }
            }
            if let Some(c) = &page.next_cursor {
                params.push(format!("cursor={c}"));
            }
            let next_link = format!("/members?{}", params.join("&"));
            let mobilities: Vec<&str> = Mobility::ALL.iter().map(|m| m.code()).collect();
            let query = context! { q => q.q, org => q.org, mobility => q.mobility };
            render(&state, "members.html", lang, Some(&who), context! { page, query, mobilities, next_link })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn member_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Response {
    let g = who.guard(&state);
    let result = async { Ok::<_, kite_store::StoreError>((g.member(id).await?, g.member_flows(id).await?)) }.await;
    match result {
        Ok((m, flows)) => {
            let residence_name = m.residence_division.as_deref().and_then(kite_divisions::full_name);
            let flows: Vec<Value> = flows
                .iter()
                .map(|f| {
                    let destination_name = kite_divisions::full_name(&f.destination_division).unwrap_or_default();
                    context! { ..Value::from_serialize(f), ..context! { destination_name } }
                })
                .collect();
            render(&state, "member.html", lang, Some(&who), context! { m, flows, residence_name })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

fn form_context(lang: Lang, v: &MemberBody, errors: &kite_domain::FieldErrors, id: i64) -> Value {
    let errors: std::collections::BTreeMap<&str, String> =
        errors.0.iter().map(|e| (e.field, i18n::err(lang, e.code))).collect();
    context! {
        title => i18n::t(lang, "member.edit"),
        action => format!("/members/{id}/edit"),
        v => Value::from_serialize(v),
        errors,
        genders => Gender::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        educations => Education::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        categories => MemberCategory::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        ethnicities => ETHNICITIES.to_vec(),
    }
}

async fn member_edit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Response {
    match who.guard(&state).member(id).await {
        Ok(m) => {
            let v = MemberBody::from_member(&m);
            render(&state, "member_form.html", lang, Some(&who), form_context(lang, &v, &Default::default(), id))
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(flatten)]
    body: MemberBody,
}

async fn member_save(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(mut f): Form<MemberForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    f.body.version = f.version.trim().parse().ok();
    let show_errors = |errors: &kite_domain::FieldErrors, message: Option<String>| {
        let ctx = form_context(lang, &f.body, errors, id);
        let mut r =
            render(&state, "member_form.html", lang, Some(&who), context! { ..ctx, ..context! { error => message } });
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    let fields = match member::validate(&f.body.input(), &rules::Ctx) {
        Ok(x) => x,
        Err(errors) => return show_errors(&errors, Some(i18n::err(lang, "invalid_input"))),
    };
    let Some(version) = f.body.version else {
        return show_errors(&Default::default(), Some(i18n::err(lang, "stale_version")));
    };
    match who.guard(&state).member_update(id, fields, version).await {
        Ok(_) => Redirect::to(&format!("/members/{id}")).into_response(),
        Err(kite_store::StoreError::Invalid(errors)) => show_errors(&errors, Some(i18n::err(lang, "invalid_input"))),
        Err(kite_store::StoreError::Conflict(code)) => {
            let mut errors = kite_domain::FieldErrors::default();
            if code == "member.id_number.duplicate" {
                errors.add("id_number", code);
            }
            let mut r = show_errors(&errors, Some(i18n::err(lang, code)));
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
