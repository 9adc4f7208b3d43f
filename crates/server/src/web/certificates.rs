//! Certificate pages: the queues, one certificate with its steps and photo, issuing or
//! asking from a member's page, the printable certificate, the check at check-in, and
//! the public verification page.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Days;
use kite_domain::certificate::Status;
use kite_domain::FlowReason;
use kite_store::{CertificateQueue, CertificateStepInput, CertificateView};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, page_again, render, Form, PageLang, Path, Query, Viewer};
use crate::api::certificates::{photo_response, CertificateBody, UPLOAD_BODY_LIMIT};
use crate::api::ClientAddr;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::{rules, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/certificates", get(list))
        .route("/certificates/{id}", get(detail))
        .route("/certificates/{id}/steps", post(step))
        .route(
            "/certificates/{id}/photo",
            get(photo).post(set_photo).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/certificates/{id}/print", get(print))
        .route("/members/{id}/certificate", get(new_form).post(create))
        .route("/checkins/{id}/certificate", post(check))
        .route("/checkins/{id}/certificate-request", get(request_letter))
        .route("/verify", get(verify_form))
        .route("/verify/{number}", get(verify))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    queue: String,
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let queue = CertificateQueue::from_code(&q.queue).unwrap_or(CertificateQueue::All);
    match who.guard(&state).certificates(queue).await {
        Ok(items) => render(
            &state,
            "certificates.html",
            lang,
            Some(&who),
            context! { items, queue => queue.code(), queues => CertificateQueue::ALL.map(CertificateQueue::code) },
        ),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

fn detail_ctx(v: &CertificateView, reason: &str) -> Value {
    context! { v, c => &v.certificate, f => context! { reason } }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).certificate(id).await {
        Ok(v) => render(&state, "certificate.html", lang, Some(&who), detail_ctx(&v, "")),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StepForm {
    csrf: String,
    step: String,
    version: String,
    reason: String,
}

async fn step(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<StepForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let input = CertificateStepInput {
            step: f.step.clone(),
            version: super::form_version(&f.version)?,
            reason: Some(f.reason.clone()),
        };
        Ok::<_, ApiError>(who.guard(&state).certificate_step(id, &input).await?)
    }
    .await;
    match result {
        // A lost certificate's page moves on to its replacement.
        Ok(v) => Redirect::to(&format!("/certificates/{}", v.certificate.id)).into_response(),
        Err(e) => detail_again(&state, lang, &who, id, &f.reason, e).await,
    }
}

/// A refused step or upload: the certificate's page again with the message.
async fn detail_again(state: &AppState, lang: Lang, who: &Authed, id: i64, reason: &str, e: ApiError) -> Response {
    let reload = async { Ok(detail_ctx(&who.guard(state).certificate(id).await?, reason)) };
    page_again(state, lang, who, "certificate.html", e, reload).await
}

async fn photo(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).certificate_photo(id).await.map_err(ApiError::from).and_then(|(t, b)| photo_response(&t, b))
    {
        Ok(r) => r,
        Err(e) => error_page(&state, lang, &who, e),
    }
}

async fn set_photo(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        let (_, bytes, texts) = crate::api::agreements::file_part(form).await.map_err(|e| match e {
            ApiError::Invalid(f) if f.get("file") == Some("agreement.file_too_large") => {
                ApiError::field("photo", "certificate.photo_too_large")
            }
            ApiError::Invalid(_) => ApiError::field("photo", "certificate.photo_type"),
            e => e,
        })?;
        let csrf = texts.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        who.check_csrf(csrf)?;
        Ok::<_, ApiError>(who.guard(&state).certificate_set_photo(id, &bytes).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/certificates/{id}")).into_response(),
        Err(e) => detail_again(&state, lang, &who, id, "", e).await,
    }
}

async fn print(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).certificate(id).await {
        // Printed while in force only: a void or lost certificate must not be handed out again.
        Ok(v) if v.certificate.status == Status::Issued => {
            let number = v.certificate.number.clone().unwrap_or_default();
            let url = super::checkin::absolute(&state, &headers, &format!("/verify/{number}"));
            let qr = qrcode::QrCode::new(url.as_bytes())
                .map(|q| q.render::<qrcode::render::svg::Color>().min_dimensions(120, 120).quiet_zone(false).build())
                .unwrap_or_default();
            // Inline in the page: the XML declaration has no place there.
            let qr = qr.find("<svg").map(|i| qr[i..].to_string()).unwrap_or_default();
            render(&state, "certificate_print.html", lang, Some(&who), context! { c => &v.certificate, qr, url })
        }
        Ok(_) => error_page(&state, lang, &who, ApiError::Conflict("certificate.wrong_status")),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// The form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
struct IssueForm {
    csrf: String,
    destination_division: String,
    destination: String,
    reason: String,
    valid_from: String,
    valid_until: String,
}

fn form_ctx(draft: &kite_store::CertificateDraft, f: &IssueForm) -> Value {
    context! {
        d => draft,
        reasons => FlowReason::ALL.iter().map(|r| r.code()).collect::<Vec<_>>(),
        f => context! {
            destination_division => &f.destination_division, destination => &f.destination, reason => &f.reason,
            valid_from => &f.valid_from, valid_until => &f.valid_until,
        },
    }
}

async fn new_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).certificate_draft(id).await {
        Ok(d) => {
            let today = rules::today();
            // A year by default: the common period of a certificate.
            let until =
                today.checked_add_months(chrono::Months::new(12)).and_then(|d| d.checked_sub_days(Days::new(1)));
            let f = IssueForm {
                destination_division: d.destination_division.clone(),
                destination: d.destination.clone().unwrap_or_default(),
                reason: d.reason.clone(),
                valid_from: today.to_string(),
                valid_until: until.map(|d| d.to_string()).unwrap_or_default(),
                ..Default::default()
            };
            render(&state, "certificate_form.html", lang, Some(&who), form_ctx(&d, &f))
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<IssueForm>,
) -> Response {
    let body = CertificateBody {
        member_id: id,
        destination_division: f.destination_division.clone(),
        destination: f.destination.clone(),
        reason: f.reason.clone(),
        valid_from: f.valid_from.clone(),
        valid_until: f.valid_until.clone(),
    };
    let g = who.guard(&state);
    let result = async {
        who.check_csrf(&f.csrf)?;
        let issue = body.validate()?;
        Ok::<_, ApiError>(g.certificate_create(id, &issue).await?)
    }
    .await;
    match result {
        Ok(v) => Redirect::to(&format!("/certificates/{}", v.certificate.id)).into_response(),
        Err(e) => match g.certificate_draft(id).await {
            Ok(d) => form_again(&state, lang, &who, "certificate_form.html", form_ctx(&d, &f), e),
            Err(_) => error_page(&state, lang, &who, e),
        },
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CheckForm {
    csrf: String,
    number: String,
}

async fn check(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<CheckForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        Ok::<_, ApiError>(who.guard(&state).checkin_certificate(id, &f.number).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/checkins/{id}")).into_response(),
        Err(e) if matches!(e, ApiError::Invalid(_) | ApiError::Conflict(_)) => {
            let g = who.guard(&state);
            match g.checkin(id).await {
                Ok(c) => {
                    let inflow_side = g.on_inflow_side(&c);
                    let ctx = context! { c, inflow_side, number => &f.number };
                    form_again(&state, lang, &who, "checkin_detail.html", ctx, e)
                }
                Err(_) => error_page(&state, lang, &who, e),
            }
        }
        Err(e) => error_page(&state, lang, &who, e),
    }
}

/// The printed request for a certificate, to a home side outside the system (反向发证).
async fn request_letter(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    let g = who.guard(&state);
    let result = async {
        let c = g.certificate_request_letter(id).await?;
        let inflow = g.org(&c.inflow_org_code).await?;
        Ok::<_, kite_store::StoreError>((c, inflow))
    }
    .await;
    match result {
        Ok((c, inflow)) => {
            let today = rules::today().to_string();
            let id_number = c.id_number.clone();
            render(
                &state,
                "certificate_request_letter.html",
                lang,
                Some(&who),
                context! { c, id_number, inflow, today },
            )
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VerifyQuery {
    number: String,
}

/// The public page: a form, and the answer when a number is given.
async fn verify_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    client: ClientAddr,
    Query(q): Query<VerifyQuery>,
) -> Response {
    match q.number.trim() {
        "" => render(&state, "verify.html", lang, None, context! { number => "" }),
        n => answer(&state, lang, client, n).await,
    }
}

async fn verify(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    client: ClientAddr,
    Path(number): Path<String>,
) -> Response {
    answer(&state, lang, client, &number).await
}

async fn answer(state: &AppState, lang: Lang, ClientAddr(client): ClientAddr, number: &str) -> Response {
    let found = async {
        state.lookups.check(client.as_deref())?;
        let public = state.store.public(kite_store::Client { address: client });
        Ok::<_, ApiError>(public.verify_certificate(number).await?)
    }
    .await;
    let (status, ctx) = match found {
        Ok(Some(cert)) => (StatusCode::OK, context! { number, cert }),
        Ok(None) => (StatusCode::NOT_FOUND, context! { number, error => i18n::err(lang, "certificate.unknown") }),
        Err(e) => (e.status(), context! { number, error => i18n::err(lang, e.code()) }),
    };
    let mut r = render(state, "verify.html", lang, None, ctx);
    *r.status_mut() = status;
    r
}
