//! The outflow and inflow lists (流出清单, 流入清单), one flow, the return, and inflow evaluations.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kite_domain::evaluation::EvaluationInput;
use kite_domain::flow::Side;
use kite_store::{FlowEntry, FlowQuery, FlowView, InflowEvaluation, Page};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::i18n;
use crate::web::PageLang;
use crate::AppState;

/// `outflow` or `inflow`; anything else is no list at all.
pub fn side(segment: &str) -> Result<Side, ApiError> {
    match segment {
        "outflow" => Ok(Side::Outflow),
        "inflow" => Ok(Side::Inflow),
        _ => Err(ApiError::NotFound),
    }
}

/// One page of a list: `outflow`, the subtree's members away (open flows by default);
/// `inflow`, members from elsewhere checked in to the subtree. ID numbers are masked.
#[utoipa::path(get, path = "/api/v1/lists/{side}", tag = "flows",
    params(("side" = String, Path, description = "outflow or inflow"), FlowQuery),
    responses((status = 200, body = Page<FlowEntry>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Path(segment): Path<String>,
    Query(q): Query<FlowQuery>,
) -> Result<axum::Json<Page<FlowEntry>>, ApiError> {
    Ok(axum::Json(who.guard(&state).flows(side(&segment)?, &q).await?))
}

/// The whole list as an .xlsx workbook with headers in the request's language
/// (Chinese by default); at most 200,000 lines. Each export is audited.
#[utoipa::path(get, path = "/api/v1/lists/{side}/export", tag = "flows",
    params(("side" = String, Path, description = "outflow or inflow"), FlowQuery),
    responses((status = 200, description = "The workbook",
               content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    who: Authed,
    PageLang(lang): PageLang,
    Path(segment): Path<String>,
    Query(q): Query<FlowQuery>,
) -> Result<Response, ApiError> {
    let side = side(&segment)?;
    let rows = who.guard(&state).flows_export(side, &q).await?;
    let book = tokio::task::spawn_blocking(move || crate::export::flows_xlsx(side, &rows, lang))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "xlsx export failed");
            ApiError::Internal
        })?;
    let title = i18n::t(lang, &format!("flows.title_{}", side.code()));
    let day = crate::rules::today();
    let disposition = format!(
        "attachment; filename=\"{}-{day}.xlsx\"; filename*=UTF-8''{}-{day}.xlsx",
        side.code(),
        crate::web::urlencode(&title)
    );
    let mut res = book.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    );
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|_| ApiError::Internal)?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// One flow as the caller's side sees it, with its inflow evaluations.
#[utoipa::path(get, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = i64, Path)),
    responses((status = 200, body = FlowView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<FlowView>, ApiError> {
    Ok(axum::Json(who.guard(&state).flow(id).await?))
}

/// The member is back (返回): sent by the outflow side with the flow's version.
#[derive(Deserialize, serde::Serialize, ToSchema, Default)]
#[serde(default)]
pub struct ReturnBody {
    /// YYYY-MM-DD, not before the departure nor after today.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub returned_on: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub note: String,
    pub version: Option<i64>,
}

/// Ends the flow with the member's return; the flow stays in the member's history.
#[utoipa::path(post, path = "/api/v1/flows/{id}/return", tag = "flows", params(("id" = i64, Path)),
    request_body = ReturnBody,
    responses((status = 200, body = FlowEntry), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn return_home(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<ReturnBody>,
) -> Result<axum::Json<FlowEntry>, ApiError> {
    let version = super::required_version(body.version)?;
    Ok(axum::Json(who.guard(&state).flow_return(id, version, &body.returned_on, &body.note).await?))
}

/// A period's evaluation of an inflow member; `rating`: excellent, qualified,
/// basically_qualified, unqualified. Without `version` it is the period's first;
/// with the version read it revises that one.
#[derive(Deserialize, serde::Serialize, ToSchema, Default)]
#[serde(default)]
pub struct EvaluationBody {
    /// `2026-H2` (half-yearly, the default cycle), `2026-Q4` or `2026`; empty for the current period.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub period: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub rating: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub comment: String,
    pub version: Option<i64>,
}

impl EvaluationBody {
    pub fn input(&self) -> EvaluationInput<'_> {
        EvaluationInput { period: &self.period, rating: &self.rating, comment: &self.comment }
    }
}

/// Records the inflow organization's evaluation of a member checked in to it.
#[utoipa::path(post, path = "/api/v1/flows/{id}/evaluations", tag = "flows", params(("id" = i64, Path)),
    request_body = EvaluationBody,
    responses((status = 201, body = InflowEvaluation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn evaluate(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<EvaluationBody>,
) -> Result<(StatusCode, axum::Json<InflowEvaluation>), ApiError> {
    let e = who.guard(&state).evaluate(id, &body.input(), body.version).await?;
    Ok((if body.version.is_some() { StatusCode::OK } else { StatusCode::CREATED }, axum::Json(e)))
}

/// The member's evaluations from the organizations the member was checked in to.
#[utoipa::path(get, path = "/api/v1/members/{id}/evaluations", tag = "members", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<InflowEvaluation>), (status = 404, body = ErrorBody)))]
pub async fn member_evaluations(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<InflowEvaluation>>, ApiError> {
    Ok(axum::Json(who.guard(&state).member_evaluations(id).await?))
}
