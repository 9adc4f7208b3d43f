//! Check-in pages: the public self-service page a poster's QR code opens, the counter
//! form for staff, the posters themselves, and the queues where check-ins are decided.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kite_domain::checkin::LinkKind;
use kite_domain::CheckinStatus;
use kite_store::{CheckinQuery, CheckinTarget, Client};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{
    error_page, error_status_page, form_again, form_version, invalid_fields, next_page_link, render, urlencode, Form,
    PageLang, Path, Query, Viewer,
};
use crate::api::checkin::{self as api, CheckinBody};
use crate::api::ClientAddr;
use crate::auth::{random_token, Authed};
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/c/{kind}/{code}", get(page).post(submit))
        .route("/c/{kind}/{code}/code", post(send_code))
        .route("/c/{kind}/{code}/qr.svg", get(qr))
        .route("/c/{kind}/{code}/poster", get(poster))
        .route("/counter/{kind}/{code}", get(counter_page).post(counter_submit))
        .route("/checkins", get(list))
        .route("/checkins/{id}", get(detail))
        .route("/checkins/{id}/letter", get(letter))
        .route("/checkins/{id}/confirm", post(confirm))
        .route("/checkins/{id}/reject", post(reject))
        .route("/outbox", get(outbox))
}

fn link(kind: LinkKind, code: &str) -> String {
    format!("/c/{}/{}", kind.segment(), urlencode(code))
}

/// The place a public link opens, or the page to answer with: an unknown link gets its own message.
async fn target_or_page(state: &AppState, lang: Lang, kind: &str, code: &str) -> Result<CheckinTarget, Response> {
    let found = match api::link_kind(kind) {
        Ok(kind) => state.store.public(Client::default()).checkin_target(kind, code).await.map_err(api::unknown_link),
        Err(_) => Err(ApiError::Missing("checkin.link_unknown")),
    };
    found.map_err(|e| error_status_page(state, lang, e.status(), e.code()))
}

/// The form's context: the place, the values, and at a service point the suggested organizations.
async fn form_ctx(state: &AppState, target: &CheckinTarget, v: &CheckinBody, counter: bool) -> Value {
    let mut seeker = v.clone();
    if seeker.division_code.trim().is_empty() {
        seeker.division_code = target.division_code.clone();
    }
    let suggestions = if target.kind == LinkKind::Point {
        api::suggestions_for(&state.store, &seeker).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let action = if counter {
        format!("/counter/{}/{}", target.kind.segment(), urlencode(&target.code))
    } else {
        link(target.kind, &target.code)
    };
    context! { target, v, suggestions, counter, action }
}

fn fresh_body() -> CheckinBody {
    CheckinBody { request_id: random_token(), ..Default::default() }
}

async fn page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Path((kind, code)): Path<(String, String)>,
) -> Response {
    match target_or_page(&state, lang, &kind, &code).await {
        Ok(t) => render(&state, "checkin.html", lang, None, form_ctx(&state, &t, &fresh_body(), false).await),
        Err(page) => page,
    }
}

/// The public form shown again with each error beside its field, or a notice on top.
async fn public_again(state: &AppState, lang: Lang, t: &CheckinTarget, v: &CheckinBody, e: ApiError) -> Response {
    let (errors, message) = invalid_fields(lang, &e);
    let ctx = form_ctx(state, t, v, false).await;
    let mut r = render(state, "checkin.html", lang, None, context! { ..ctx, ..context! { errors, error => message } });
    *r.status_mut() = e.status();
    r
}

async fn send_code(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    ClientAddr(client): ClientAddr,
    Path((kind, code)): Path<(String, String)>,
    Form(v): Form<CheckinBody>,
) -> Response {
    let t = match target_or_page(&state, lang, &kind, &code).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    match api::send_code(&state, Client { address: client }, lang, &v.phone).await {
        Ok(_) => {
            let ctx = form_ctx(&state, &t, &v, false).await;
            let notice = i18n::t(lang, "checkin.code_sent");
            render(&state, "checkin.html", lang, None, context! { ..ctx, ..context! { notice } })
        }
        Err(e) => public_again(&state, lang, &t, &v, e).await,
    }
}

async fn submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    ClientAddr(client): ClientAddr,
    Path((kind, code)): Path<(String, String)>,
    Form(v): Form<CheckinBody>,
) -> Response {
    let t = match target_or_page(&state, lang, &kind, &code).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let result = async {
        let (c, key, otp) = v.validate(true)?;
        let hash = api::code_hash(&c.phone, otp.as_deref().unwrap_or_default());
        Ok::<_, ApiError>(state.store.public(Client { address: client }).checkin(&t, &c, &key, &hash).await?)
    }
    .await;
    match result {
        Ok(receipt) => render(&state, "checkin_done.html", lang, None, context! { receipt, target => t }),
        Err(e) => public_again(&state, lang, &t, &v, e).await,
    }
}

/// The absolute address of a path, for QR codes: the configured public address, or
/// the one the request came to.
pub(super) fn absolute(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let base = match &state.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{base}{path}")
}

async fn qr(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Path((kind, code)): Path<(String, String)>,
) -> Response {
    let t = match target_or_page(&state, lang, &kind, &code).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let url = absolute(&state, &headers, &link(t.kind, &t.code));
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(q) => {
            let svg = q.render::<qrcode::render::svg::Color>().min_dimensions(320, 320).quiet_zone(true).build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(_) => error_status_page(&state, lang, axum::http::StatusCode::NOT_FOUND, "checkin.link_unknown"),
    }
}

async fn poster(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Path((kind, code)): Path<(String, String)>,
) -> Response {
    match target_or_page(&state, lang, &kind, &code).await {
        Ok(t) => {
            let path = link(t.kind, &t.code);
            let url = absolute(&state, &headers, &path);
            render(&state, "checkin_poster.html", lang, None, context! { target => t, url, path })
        }
        Err(page) => page,
    }
}

#[derive(Deserialize)]
struct CounterForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    body: CheckinBody,
}

async fn counter_target(state: &AppState, who: &Authed, kind: &str, code: &str) -> Result<CheckinTarget, ApiError> {
    let kind = api::link_kind(kind)?;
    Ok(who.guard(state).counter_target(kind, code).await?)
}

async fn counter_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((kind, code)): Path<(String, String)>,
) -> Response {
    match counter_target(&state, &who, &kind, &code).await {
        Ok(t) => render(&state, "checkin.html", lang, Some(&who), form_ctx(&state, &t, &fresh_body(), true).await),
        Err(e) => error_page(&state, lang, &who, e),
    }
}

async fn counter_submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((kind, code)): Path<(String, String)>,
    Form(f): Form<CounterForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    let t = match counter_target(&state, &who, &kind, &code).await {
        Ok(t) => t,
        Err(e) => return error_page(&state, lang, &who, e),
    };
    let result = async {
        let (c, key, _) = f.body.validate(false)?;
        Ok::<_, ApiError>(who.guard(&state).checkin_at_counter(t.kind, &t.code, &c, &key).await?)
    }
    .await;
    match result {
        Ok(receipt) => {
            let again = format!("/counter/{}/{}", t.kind.segment(), urlencode(&t.code));
            render(&state, "checkin_done.html", lang, Some(&who), context! { receipt, target => t, again })
        }
        Err(e) => {
            let ctx = form_ctx(&state, &t, &f.body, true).await;
            form_again(&state, lang, &who, "checkin.html", ctx, e)
        }
    }
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<CheckinQuery>,
) -> Response {
    let mut q = q;
    if q.status.is_none() {
        q.status = Some("waiting".into());
    }
    match who.guard(&state).checkins(&q).await {
        Ok(page) => {
            let filters = [("status", &q.status), ("side", &q.side)];
            let next_link = next_page_link("/checkins", &filters, page.next_cursor.as_deref());
            let statuses: Vec<&str> = CheckinStatus::ALL.iter().map(|s| s.code()).collect();
            let query = context! { status => q.status, side => q.side };
            render(&state, "checkins.html", lang, Some(&who), context! { page, query, statuses, next_link })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    let g = who.guard(&state);
    match g.checkin(id).await {
        Ok(c) => {
            let inflow_side = g.on_inflow_side(&c);
            render(&state, "checkin_detail.html", lang, Some(&who), context! { c, inflow_side })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// The printable verification letter with its receipt, for a home side outside the system.
async fn letter(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    let g = who.guard(&state);
    let result = async {
        let c = g.checkin_letter(id).await?;
        let inflow = g.org(&c.inflow_org_code).await?;
        Ok::<_, kite_store::StoreError>((c, inflow))
    }
    .await;
    match result {
        Ok((c, inflow)) => {
            let today = crate::rules::today().to_string();
            let arrived = c.created_at.with_timezone(&crate::rules::CST).date_naive().to_string();
            let id_number = c.id_number.clone();
            render(&state, "checkin_letter.html", lang, Some(&who), context! { c, id_number, inflow, today, arrived })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

async fn decided(state: &AppState, lang: Lang, who: &Authed, id: i64, f: &DecisionForm, confirm: bool) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(state, lang, who, e);
    }
    let g = who.guard(state);
    let result = async {
        let version = form_version(&f.version)?;
        let note = Some(f.note.trim().to_string()).filter(|n| !n.is_empty());
        Ok::<_, ApiError>(if confirm {
            g.checkin_confirm(id, version, note).await?
        } else {
            g.checkin_reject(id, version, &f.reason).await?
        })
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/checkins/{id}")).into_response(),
        Err(e) => match g.checkin(id).await {
            Ok(c) => {
                let inflow_side = g.on_inflow_side(&c);
                form_again(state, lang, who, "checkin_detail.html", context! { c, inflow_side }, e)
            }
            Err(_) => error_page(state, lang, who, e),
        },
    }
}

async fn confirm(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<DecisionForm>,
) -> Response {
    decided(&state, lang, &who, id, &f, true).await
}

async fn reject(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<DecisionForm>,
) -> Response {
    decided(&state, lang, &who, id, &f, false).await
}

async fn outbox(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).outbox_recent(100).await {
        Ok(messages) => render(&state, "outbox.html", lang, Some(&who), context! { messages }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
