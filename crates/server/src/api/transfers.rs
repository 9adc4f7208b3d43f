//! Transfers of the formal record (转接组织关系): asking, the queues, and each step.

use axum::extract::State;
use axum::http::StatusCode;
use kite_store::{TransferQueue, TransferRecord, TransferRequest, TransferStepInput, TransferView};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
pub struct TransferListQuery {
    /// `to_approve`, `to_receive`, `overdue` or `all` (the default).
    pub queue: Option<String>,
}

fn queue(q: Option<&str>) -> Result<TransferQueue, ApiError> {
    match q.map(str::trim).unwrap_or("") {
        "" => Ok(TransferQueue::All),
        code => TransferQueue::from_code(code).ok_or_else(|| ApiError::field("queue", "invalid")),
    }
}

/// A queue of transfers touching the caller's subtree, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/transfers", tag = "transfers", params(TransferListQuery),
    responses((status = 200, body = Vec<TransferRecord>), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<TransferListQuery>,
) -> Result<axum::Json<Vec<TransferRecord>>, ApiError> {
    let queue = queue(q.queue.as_deref())?;
    Ok(axum::Json(who.guard(&state).transfers(queue).await?))
}

/// Asks for a transfer: by the sending side, by the receiving side for a member checked in
/// to it, or by the member. The receiving organization is `to_org_code` (in the system)
/// or `to_org_text` (outside it: the letter is printed and the receipt entered by hand).
#[utoipa::path(post, path = "/api/v1/transfers", tag = "transfers", request_body = TransferRequest,
    responses((status = 201, body = TransferView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<TransferRequest>,
) -> Result<(StatusCode, axum::Json<TransferView>), ApiError> {
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).transfer_request(&body).await?)))
}

/// One transfer with its history and the steps the caller may take.
#[utoipa::path(get, path = "/api/v1/transfers/{id}", tag = "transfers", params(("id" = i64, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<TransferView>, ApiError> {
    Ok(axum::Json(who.guard(&state).transfer(id).await?))
}

/// Takes a step (`approve`, `return`, `resubmit`, `refuse`, `withdraw`, `receive`,
/// `record_receipt`, `extend_letter`, `expire`) at the version read.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/steps", tag = "transfers", params(("id" = i64, Path)),
    request_body = TransferStepInput,
    responses((status = 200, body = TransferView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn step(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<TransferStepInput>,
) -> Result<axum::Json<TransferView>, ApiError> {
    Ok(axum::Json(who.guard(&state).transfer_step(id, &body).await?))
}
