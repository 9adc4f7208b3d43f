//! Co-management agreement pages: the list, one agreement with its files, and the form.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kite_domain::{Action, AgreementStatus, ConsultationCycle};
use kite_store::{AgreementQuery, AgreementRecord};
use minijinja::{context, Value};
use serde::Deserialize;

use super::session::CsrfForm;
use super::{
    error_page, form_again, form_version, next_page_link, page_again, render, Form, PageLang, Path, Query, Viewer,
};
use crate::api::agreements::{file_part, AgreementBody, PartyBody, UPLOAD_BODY_LIMIT};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/agreements", get(list))
        .route("/agreements/new", get(new_form).post(create))
        .route("/agreements/{id}", get(detail))
        .route("/agreements/{id}/edit", get(edit_form).post(update))
        .route("/agreements/{id}/files", post(attach).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .route("/agreements/{id}/files/{file_id}/remove", post(detach))
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<AgreementQuery>,
) -> Response {
    let statuses: Vec<&str> = AgreementStatus::ALL.iter().map(|s| s.code()).collect();
    let base = context! { query => &q, statuses };
    match who.guard(&state).agreements(&q).await {
        Ok(page) => {
            let next_link =
                next_page_link("/agreements", &[("org", &q.org), ("status", &q.status)], page.next_cursor.as_deref());
            let ctx =
                context! { ..base, ..context! { items => page.items, next_link, more => page.next_cursor.is_some() } };
            render(&state, "agreements.html", lang, Some(&who), ctx)
        }
        Err(e) => form_again(&state, lang, &who, "agreements.html", base, e.into()),
    }
}

fn detail_ctx(a: &AgreementRecord) -> Value {
    context! { a, commitments => kite_domain::agreement::COMMITMENTS }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).agreement(id).await {
        Ok(a) => render(&state, "agreement.html", lang, Some(&who), detail_ctx(&a)),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// The form's fields, flat as a browser posts them (`outflow.org_code`, …).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AgreementForm {
    csrf: String,
    version: String,
    title: String,
    number: String,
    #[serde(rename = "outflow.org_code")]
    outflow_org_code: String,
    #[serde(rename = "outflow.name")]
    outflow_name: String,
    #[serde(rename = "outflow.contact_name")]
    outflow_contact_name: String,
    #[serde(rename = "outflow.contact_phone")]
    outflow_contact_phone: String,
    #[serde(rename = "inflow.org_code")]
    inflow_org_code: String,
    #[serde(rename = "inflow.name")]
    inflow_name: String,
    #[serde(rename = "inflow.contact_name")]
    inflow_contact_name: String,
    #[serde(rename = "inflow.contact_phone")]
    inflow_contact_phone: String,
    signed_on: String,
    starts_on: String,
    ends_on: String,
    org_building: String,
    member_management: String,
    consultation: String,
    consultation_cycle: String,
    funding: String,
    funding_outflow_yuan: String,
    funding_inflow_yuan: String,
    activities: String,
    note: String,
}

impl AgreementForm {
    fn body(self) -> AgreementBody {
        AgreementBody {
            title: self.title,
            number: self.number,
            outflow: PartyBody {
                org_code: self.outflow_org_code,
                name: self.outflow_name,
                contact_name: self.outflow_contact_name,
                contact_phone: self.outflow_contact_phone,
            },
            inflow: PartyBody {
                org_code: self.inflow_org_code,
                name: self.inflow_name,
                contact_name: self.inflow_contact_name,
                contact_phone: self.inflow_contact_phone,
            },
            signed_on: self.signed_on,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            org_building: self.org_building,
            member_management: self.member_management,
            consultation: self.consultation,
            consultation_cycle: self.consultation_cycle,
            funding: self.funding,
            funding_outflow_yuan: self.funding_outflow_yuan,
            funding_inflow_yuan: self.funding_inflow_yuan,
            activities: self.activities,
            note: self.note,
            version: None,
        }
    }
}

fn form_ctx(v: &AgreementBody, id: Option<i64>) -> Value {
    let cycles: Vec<&str> = ConsultationCycle::ALL.iter().map(|c| c.code()).collect();
    context! { v, id, version => v.version, cycles }
}

async fn new_form(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    if let Err(e) = who.guard(&state).require(Action::WriteAgreements).await {
        return error_page(&state, lang, &who, e.into());
    }
    // The caller's own organization is the usual outflow party.
    let mut v = AgreementBody::default();
    if let Some(code) = &who.user.org_code {
        v.outflow.org_code = code.clone();
    }
    v.starts_on = crate::rules::today().to_string();
    render(&state, "agreement_form.html", lang, Some(&who), form_ctx(&v, None))
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<AgreementForm>,
) -> Response {
    let csrf = f.csrf.clone();
    let body = f.body();
    let result = async {
        who.check_csrf(&csrf)?;
        Ok::<_, ApiError>(who.guard(&state).agreement_create(&body.input()).await?)
    }
    .await;
    match result {
        Ok(a) => Redirect::to(&format!("/agreements/{}", a.id)).into_response(),
        Err(e) => form_again(&state, lang, &who, "agreement_form.html", form_ctx(&body, None), e),
    }
}

async fn edit_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).agreement_for_edit(id).await {
        Ok(a) => {
            render(&state, "agreement_form.html", lang, Some(&who), form_ctx(&AgreementBody::from_record(&a), Some(id)))
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn update(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<AgreementForm>,
) -> Response {
    let (csrf, version) = (f.csrf.clone(), f.version.clone());
    let mut body = f.body();
    body.version = version.trim().parse().ok();
    let result = async {
        who.check_csrf(&csrf)?;
        let version = form_version(&version)?;
        Ok::<_, ApiError>(who.guard(&state).agreement_update(id, &body.input(), version).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/agreements/{id}")).into_response(),
        Err(e) => form_again(&state, lang, &who, "agreement_form.html", form_ctx(&body, Some(id)), e),
    }
}

/// A refused file: the agreement's page again with the message beside the upload.
async fn detail_again(state: &AppState, lang: Lang, who: &Authed, id: i64, e: ApiError) -> Response {
    let reload = async { Ok(detail_ctx(&who.guard(state).agreement(id).await?)) };
    page_again(state, lang, who, "agreement.html", e, reload).await
}

async fn attach(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        // Refused before the upload is read.
        who.guard(&state).agreement_for_edit(id).await?;
        let (name, bytes, texts) = file_part(form).await?;
        let csrf = texts.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        who.check_csrf(csrf)?;
        Ok::<_, ApiError>(who.guard(&state).agreement_attach(id, &name, &bytes).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/agreements/{id}#files")).into_response(),
        Err(e) => detail_again(&state, lang, &who, id, e).await,
    }
}

async fn detach(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((id, file_id)): Path<(i64, i64)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        Ok::<_, ApiError>(who.guard(&state).agreement_detach(id, file_id).await?)
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/agreements/{id}#files")).into_response(),
        Err(e) => detail_again(&state, lang, &who, id, e).await,
    }
}
