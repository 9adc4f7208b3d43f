//! Screening pages: the campaigns of the caller's region, starting one, and a campaign's
//! page with its rosters, the upload, the review of the matches and closing.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, render, Form, PageLang, Path, Viewer};
use crate::api::screening::{add_roster, CampaignBody, DecisionBody, UPLOAD_BODY_LIMIT};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/screening", get(list).post(create))
        .route("/screening/candidates", get(candidates))
        .route("/screening/{id}", get(detail))
        .route("/screening/{id}/rosters", post(upload).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .route("/screening/{id}/matches/{match_id}", post(decide))
        .route("/screening/{id}/close", post(close))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CampaignForm {
    csrf: String,
    #[serde(flatten)]
    body: CampaignBody,
}

async fn list_page(state: &AppState, lang: Lang, who: &Authed, f: &CampaignBody, e: Option<ApiError>) -> Response {
    match who.guard(state).campaigns().await {
        Ok(items) => {
            let ctx = context! { items, f => Value::from_serialize(f) };
            match e {
                Some(e) => form_again(state, lang, who, "screening.html", ctx, e),
                None => render(state, "screening.html", lang, Some(who), ctx),
            }
        }
        Err(e) => error_page(state, lang, who, e.into()),
    }
}

async fn list(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    let today = crate::rules::today();
    let f = CampaignBody {
        org_code: who.user.org_code.clone().unwrap_or_default(),
        starts_on: today.to_string(),
        ends_on: (today + chrono::Months::new(1)).to_string(),
        ..Default::default()
    };
    list_page(&state, lang, &who, &f, None).await
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<CampaignForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let (c, place) = f.body.validate()?;
        Ok::<_, ApiError>(who.guard(&state).campaign_create(f.body.org_code.trim(), place, &c).await?)
    }
    .await;
    match result {
        Ok(c) => Redirect::to(&format!("/screening/{}", c.id)).into_response(),
        Err(e) => list_page(&state, lang, &who, &f.body, Some(e)).await,
    }
}

async fn detail_page(state: &AppState, lang: Lang, who: &Authed, id: i64, e: Option<ApiError>) -> Response {
    let g = who.guard(state);
    let result =
        async { Ok::<_, kite_store::StoreError>((g.campaign(id).await?, g.campaign_matches(id, false).await?)) }.await;
    match result {
        Ok((v, matches)) => {
            let ctx = context! { v, c => &v.campaign, matches };
            match e {
                Some(e) => form_again(state, lang, who, "screening_campaign.html", ctx, e),
                None => render(state, "screening_campaign.html", lang, Some(who), ctx),
            }
        }
        Err(err) => error_page(state, lang, who, err.into()),
    }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    detail_page(&state, lang, &who, id, None).await
}

/// The outcome of a form on the campaign's page: back to it, or the page with the message.
async fn back(state: &AppState, lang: Lang, who: &Authed, id: i64, r: Result<(), ApiError>) -> Response {
    match r {
        Ok(()) => Redirect::to(&format!("/screening/{id}")).into_response(),
        Err(e @ (ApiError::Invalid(_) | ApiError::Conflict(_))) => detail_page(state, lang, who, id, Some(e)).await,
        Err(e) => error_page(state, lang, who, e),
    }
}

async fn upload(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        let g = who.guard(&state);
        let (campaign, members) = g.campaign_registry(id).await?;
        let (file_name, bytes, texts) = crate::api::screening::roster_part(form).await?;
        let text = |name: &str| texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        who.check_csrf(text("csrf").unwrap_or(""))?;
        add_roster(&g, &campaign, members, &file_name, bytes.to_vec(), text("source")).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    back(&state, lang, &who, id, result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecisionForm {
    csrf: String,
    decision: String,
    version: String,
    note: String,
}

async fn decide(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((id, match_id)): Path<(i64, i64)>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = super::form_version(&f.version)?;
        let body = DecisionBody { decision: f.decision.clone(), version, note: Some(f.note.clone()) };
        let (decision, note) = body.validate()?;
        who.guard(&state).campaign_decide(id, match_id, version, decision, note.as_deref()).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    back(&state, lang, &who, id, result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CloseForm {
    csrf: String,
    version: String,
}

async fn close(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<CloseForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        who.guard(&state).campaign_close(id, super::form_version(&f.version)?).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    back(&state, lang, &who, id, result).await
}

/// Members accepted by campaigns as candidates for the caller's subtree to contact.
async fn candidates(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).screening_candidates().await {
        Ok(items) => render(&state, "screening_candidates.html", lang, Some(&who), context! { items }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
