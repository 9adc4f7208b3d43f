//! Transfers of the formal record (转接组织关系): asking, the queues, and each step.

use axum::extract::State;
use axum::http::StatusCode;
use kite_store::{ArrivalRecord, TransferQueue, TransferRecord, TransferRequest, TransferStepInput, TransferView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

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

/// A member arriving from an organization outside the system, with the letter they brought.
#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct ArrivalBody {
    /// The member as `POST /api/v1/members` takes it; `org_code` is the receiving organization.
    pub member: crate::api::members::MemberBody,
    /// The sending organization's full name.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub from_org_text: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub letter_number: String,
    /// `YYYY-MM-DD`, not after today.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub letter_date: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub note: String,
}

impl ArrivalBody {
    pub fn validate(&self) -> Result<(kite_domain::member::MemberFields, kite_domain::transfer::Arrival), ApiError> {
        let member = kite_domain::member::validate(&self.member.input(), &crate::rules::Ctx);
        let input = kite_domain::transfer::ArrivalInput {
            from_org_text: &self.from_org_text,
            letter_number: &self.letter_number,
            letter_date: &self.letter_date,
            note: &self.note,
        };
        let arrival = kite_domain::transfer::validate_arrival(&input, crate::rules::today());
        match (member, arrival) {
            (Ok(m), Ok(a)) => Ok((m, a)),
            (m, a) => {
                let mut e = m.err().unwrap_or_default();
                e.extend(a.err().unwrap_or_default());
                Err(ApiError::Invalid(e))
            }
        }
    }
}

#[derive(serde::Serialize, ToSchema)]
pub struct Arrived {
    pub member: kite_store::Member,
    pub arrival: ArrivalRecord,
}

/// Members arrived from outside the system at the caller's subtree, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/arrivals", tag = "transfers",
    responses((status = 200, body = Vec<ArrivalRecord>), (status = 403, body = ErrorBody)))]
pub async fn arrivals(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<ArrivalRecord>>, ApiError> {
    Ok(axum::Json(who.guard(&state).arrivals().await?))
}

/// Registers a member whose record arrives from an organization outside the system, with
/// the letter they brought (系统外转入); the receipt is printed from the member's page.
#[utoipa::path(post, path = "/api/v1/arrivals", tag = "transfers", request_body = ArrivalBody,
    responses((status = 201, body = Arrived), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn arrive(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<ArrivalBody>,
) -> Result<(StatusCode, axum::Json<Arrived>), ApiError> {
    let (fields, arrival) = body.validate()?;
    let (member, arrival) = who.guard(&state).member_arrive(fields, &arrival).await?;
    Ok((StatusCode::CREATED, axum::Json(Arrived { member, arrival })))
}
