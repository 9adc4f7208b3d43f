//! The web UI: server-rendered pages over the same guarded store as the API.
//! One file per capability; this one holds what every page shares.

mod accounts;
mod agreements;
mod certificates;
mod checkin;
mod flows;
mod members;
mod orgs;
mod points;
mod screening;
mod session;
mod transfers;

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::CookieJar;
use kite_domain::{Action, FieldErrors};
use minijinja::{context, Environment, Value};

use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::{rules, AppState};

pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, src) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("forms.html", include_str!("../../templates/forms.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("overview.html", include_str!("../../templates/overview.html")),
        ("orgs.html", include_str!("../../templates/orgs.html")),
        ("org_form.html", include_str!("../../templates/org_form.html")),
        ("org_move.html", include_str!("../../templates/org_move.html")),
        ("members.html", include_str!("../../templates/members.html")),
        ("member.html", include_str!("../../templates/member.html")),
        ("member_form.html", include_str!("../../templates/member_form.html")),
        ("member_audit.html", include_str!("../../templates/member_audit.html")),
        ("departure_form.html", include_str!("../../templates/departure_form.html")),
        ("checkin.html", include_str!("../../templates/checkin.html")),
        ("checkin_done.html", include_str!("../../templates/checkin_done.html")),
        ("checkin_poster.html", include_str!("../../templates/checkin_poster.html")),
        ("checkins.html", include_str!("../../templates/checkins.html")),
        ("checkin_detail.html", include_str!("../../templates/checkin_detail.html")),
        ("lists.html", include_str!("../../templates/lists.html")),
        ("checkin_letter.html", include_str!("../../templates/checkin_letter.html")),
        ("flow.html", include_str!("../../templates/flow.html")),
        ("evaluations.html", include_str!("../../templates/evaluations.html")),
        ("outbox.html", include_str!("../../templates/outbox.html")),
        ("agreements.html", include_str!("../../templates/agreements.html")),
        ("agreement.html", include_str!("../../templates/agreement.html")),
        ("agreement_form.html", include_str!("../../templates/agreement_form.html")),
        ("point.html", include_str!("../../templates/point.html")),
        ("point_form.html", include_str!("../../templates/point_form.html")),
        ("transfers.html", include_str!("../../templates/transfers.html")),
        ("certificates.html", include_str!("../../templates/certificates.html")),
        ("certificate.html", include_str!("../../templates/certificate.html")),
        ("certificate_form.html", include_str!("../../templates/certificate_form.html")),
        ("certificate_print.html", include_str!("../../templates/certificate_print.html")),
        ("certificate_request_letter.html", include_str!("../../templates/certificate_request_letter.html")),
        ("verify.html", include_str!("../../templates/verify.html")),
        ("screening.html", include_str!("../../templates/screening.html")),
        ("screening_campaign.html", include_str!("../../templates/screening_campaign.html")),
        ("screening_candidates.html", include_str!("../../templates/screening_candidates.html")),
        ("screening_roster.html", include_str!("../../templates/screening_roster.html")),
        ("accounts.html", include_str!("../../templates/accounts.html")),
        ("password.html", include_str!("../../templates/password.html")),
        ("transfer.html", include_str!("../../templates/transfer.html")),
        ("transfer_form.html", include_str!("../../templates/transfer_form.html")),
        ("transfer_letter.html", include_str!("../../templates/transfer_letter.html")),
        ("arrival_receipt.html", include_str!("../../templates/arrival_receipt.html")),
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
    env.add_function("division_name", |code: Option<&str>| code.and_then(kite_divisions::full_name));
    env.add_filter("local_time", local_time);
    env
}

/// A stored UTC instant as the users read it: China Standard Time, to the second.
fn local_time(value: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(t) => t.with_timezone(&rules::CST).format("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => value.to_string(),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .merge(session::router())
        .merge(accounts::router())
        .merge(orgs::router())
        .merge(members::router())
        .merge(checkin::router())
        .merge(flows::router())
        .merge(agreements::router())
        .merge(transfers::router())
        .merge(certificates::router())
        .merge(screening::router())
        .merge(points::router())
        .route("/assets/pico.min.css", get(|| async { asset(CSS, include_str!("../../assets/vendor/pico.min.css")) }))
        .route("/assets/app.css", get(|| async { asset(CSS, include_str!("../../assets/app.css")) }))
        .route("/assets/app.js", get(|| async { asset(JS, include_str!("../../assets/app.js")) }))
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body).into_response()
}

/// Pages are not to be framed, sniffed or to load anything from elsewhere.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "content-security-policy",
        // Pico's form icons are data: SVGs.
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    // Pages carry personal data: neither the browser nor a proxy keeps a copy.
    if h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html")) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
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

/// Page versions of axum's `Path`, `Query` and `Form`: a malformed address, query or form
/// answers with a 400 page in the reader's language instead of plain text.
pub struct Path<T>(pub T);
pub struct Query<T>(pub T);
pub struct Form<T>(pub T);

fn bad_request_page(state: &AppState, headers: &axum::http::HeaderMap, code: &str) -> Response {
    let jar = CookieJar::from_headers(headers);
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = Lang::pick(jar.get("lang").map(|c| c.value()), accept);
    error_status_page(state, lang, StatusCode::BAD_REQUEST, code)
}

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(bad_request_page(state, &parts.headers, "invalid_path")),
        }
    }
}

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(_) => Err(bad_request_page(state, &parts.headers, "invalid_query")),
        }
    }
}

impl<T: serde::de::DeserializeOwned + Send> axum::extract::FromRequest<AppState> for Form<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            Err(_) => Err(bad_request_page(state, &headers, "invalid_form")),
        }
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
            Err(ApiError::PasswordChangeRequired) => Err(Redirect::to("/me/password").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The address of a list's next page: the filters that are set, then the cursor.
fn next_page_link(path: &str, filters: &[(&str, &Option<String>)], cursor: Option<&str>) -> String {
    let mut params: Vec<String> = filters
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    if let Some(c) = cursor {
        params.push(format!("cursor={}", urlencode(c)));
    }
    format!("{path}?{}", params.join("&"))
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Renders a page; every page gets the language, the user, the CSRF token and what
/// the user's role may do, so templates offer only controls that can work.
fn render(state: &AppState, name: &str, lang: Lang, who: Option<&Authed>, ctx: Value) -> Response {
    let may = |a: Action| who.is_some_and(|w| w.user.role.may(a));
    let base = context! {
        lang => lang.code(),
        user => who.map(|w| &w.user),
        csrf => who.map(|w| w.csrf_token.as_str()),
        may_write_orgs => may(Action::WriteOrg),
        may_move_orgs => may(Action::MoveOrg),
        may_write_members => may(Action::WriteMember),
        may_take_checkins => may(Action::TakeCheckin),
        may_checkins => may(Action::TakeCheckin) || may(Action::ReviewCheckin),
        may_read_flows => may(Action::ReadFlows),
        may_evaluate => may(Action::EvaluateInflow),
        may_read_agreements => may(Action::ReadAgreements),
        may_write_agreements => may(Action::WriteAgreements),
        may_transfer => may(Action::Transfer),
        may_certificates => may(Action::Certificates),
        may_screen => may(Action::Screen),
        may_accounts => may(Action::ManageAccounts),
        // Forms read `errors[field]`; pages without errors get an empty map.
        errors => BTreeMap::<String, String>::new(),
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

/// The field a conflict is about, so that the form can show it beside that field.
fn conflict_field(code: &str) -> Option<&'static str> {
    match code {
        "member.id_number.duplicate" => Some("id_number"),
        "org.code.duplicate" => Some("code"),
        _ => None,
    }
}

/// The version a form was read at; one that does not parse was not this page's.
fn form_version(value: &str) -> Result<i64, ApiError> {
    value.trim().parse().map_err(|_| ApiError::Conflict("stale_version"))
}

/// A form page shown again after `e`: field errors beside their fields (400), a
/// conflict beside its field or on top (409); anything else becomes an error page.
fn form_again(state: &AppState, lang: Lang, who: &Authed, template: &str, ctx: Value, e: ApiError) -> Response {
    if !matches!(e, ApiError::Invalid(_) | ApiError::Conflict(_) | ApiError::Throttled(_) | ApiError::Unavailable(_)) {
        return error_page(state, lang, who, e);
    }
    let (errors, message) = invalid_fields(lang, &e);
    let mut r = render(state, template, lang, Some(who), context! { ..ctx, ..context! { errors, error => message } });
    *r.status_mut() = e.status();
    r
}

/// A page, or the same page again with a refused form's message (see [`form_again`]).
fn show(state: &AppState, lang: Lang, who: &Authed, template: &str, ctx: Value, e: Option<ApiError>) -> Response {
    match e {
        Some(e) => form_again(state, lang, who, template, ctx, e),
        None => render(state, template, lang, Some(who), ctx),
    }
}

/// A form's outcome: on to `to`, or the page again from `again` with the message beside
/// the form (400, 409). Other refusals are an error page: they are audited already, and
/// reading the page again would audit them twice.
async fn settle<Fut>(
    state: &AppState,
    lang: Lang,
    who: &Authed,
    r: Result<(), ApiError>,
    to: &str,
    again: impl FnOnce(ApiError) -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Response>,
{
    match r {
        Ok(()) => Redirect::to(to).into_response(),
        Err(e @ (ApiError::Invalid(_) | ApiError::Conflict(_))) => again(e).await,
        Err(e) => error_page(state, lang, who, e),
    }
}

/// A form on a record's page refused: the page again, read by `reload`, with the message
/// beside the form (400, 409). Other refusals are an error page: they are audited already,
/// and reading the page again would audit them twice.
async fn page_again<F>(state: &AppState, lang: Lang, who: &Authed, template: &str, e: ApiError, reload: F) -> Response
where
    F: std::future::Future<Output = Result<Value, kite_store::StoreError>>,
{
    if !matches!(e, ApiError::Invalid(_) | ApiError::Conflict(_)) {
        return error_page(state, lang, who, e);
    }
    match reload.await {
        Ok(ctx) => form_again(state, lang, who, template, ctx, e),
        Err(_) => error_page(state, lang, who, e),
    }
}

/// Each field's message and the message on top, for a refused form.
fn invalid_fields(lang: Lang, e: &ApiError) -> (BTreeMap<&'static str, String>, String) {
    let mut fields = FieldErrors::default();
    let message = match e {
        ApiError::Invalid(f) => {
            fields = f.clone();
            i18n::err(lang, "invalid_input")
        }
        ApiError::Conflict(code) => {
            if let Some(field) = conflict_field(code) {
                fields.add(field, code);
            }
            i18n::err(lang, code)
        }
        other => i18n::err(lang, other.code()),
    };
    (fields.0.iter().map(|f| (f.field, i18n::err(lang, f.code))).collect(), message)
}

/// A page with only a message, for addresses or methods that lead nowhere.
pub fn error_status_page(state: &AppState, lang: Lang, status: StatusCode, code: &str) -> Response {
    let mut r = render(state, "base.html", lang, None, context! { error => i18n::err(lang, code) });
    *r.status_mut() = status;
    r
}

async fn overview(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    let g = who.guard(&state);
    let result = async {
        Ok::<_, kite_store::StoreError>((
            g.overview(None).await?,
            g.transfer_counts().await?,
            g.certificate_counts().await?,
        ))
    }
    .await;
    match result {
        Ok((counts, transfers, certificates)) => {
            render(&state, "overview.html", lang, Some(&who), context! { counts, transfers, certificates })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
