//! Activity certificates (流动党员活动证): issuing and asking in reverse, the queues, the
//! steps, the photo, the check at check-in, and public verification.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kite_domain::certificate::{self, Issue, IssueInput};
use kite_store::{
    CertificateDraft, CertificateQueue, CertificateRecord, CertificateStepInput, CertificateView, CheckinRecord,
    PublicCertificate,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::ClientAddr;
use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::{rules, AppState};

/// Uploads a little over the photo limit are read, so that the limit answers in words.
pub const UPLOAD_BODY_LIMIT: usize = kite_store::MAX_CERTIFICATE_PHOTO_BYTES + 64 * 1024;

#[derive(Deserialize, IntoParams)]
pub struct CertificateListQuery {
    /// `to_decide`, `issued`, `asked` or `all` (the default).
    pub queue: Option<String>,
}

/// A certificate to issue, or to ask for in reverse (the caller's side decides which).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct CertificateBody {
    pub member_id: i64,
    /// Six-digit division code of the destination.
    pub destination_division: String,
    pub destination: String,
    /// `work`, `business`, `study`, `family` or `other`.
    pub reason: String,
    /// `YYYY-MM-DD`; at most a month from today.
    pub valid_from: String,
    /// `YYYY-MM-DD`; at most three years from `valid_from`.
    pub valid_until: String,
}

impl CertificateBody {
    pub fn validate(&self) -> Result<Issue, ApiError> {
        let input = IssueInput {
            destination_division: &self.destination_division,
            destination: &self.destination,
            reason: &self.reason,
            valid_from: &self.valid_from,
            valid_until: &self.valid_until,
        };
        certificate::validate(&input, rules::division_known, rules::today()).map_err(ApiError::Invalid)
    }
}

/// A number as typed, or the link a scanner read from the certificate's QR code.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CheckBody {
    pub number: String,
}

pub fn queue(q: Option<&str>) -> Result<CertificateQueue, ApiError> {
    match q.map(str::trim).unwrap_or("") {
        "" => Ok(CertificateQueue::All),
        code => CertificateQueue::from_code(code).ok_or_else(|| ApiError::field("queue", "invalid")),
    }
}

/// Certificates the caller's subtree issued or asked for, newest first (at most 200); a
/// member's own.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(CertificateListQuery),
    responses((status = 200, body = Vec<CertificateRecord>), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<CertificateListQuery>,
) -> Result<axum::Json<Vec<CertificateRecord>>, ApiError> {
    let queue = queue(q.queue.as_deref())?;
    Ok(axum::Json(who.guard(&state).certificates(queue).await?))
}

/// Issues a certificate to a member who is away (the basic-level committee above the
/// member's organization), or asks that committee for one (the inflow organization the
/// member is checked in to: reverse issuing).
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", request_body = CertificateBody,
    responses((status = 201, body = CertificateView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<CertificateBody>,
) -> Result<(StatusCode, axum::Json<CertificateView>), ApiError> {
    let issue = body.validate()?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).certificate_create(body.member_id, &issue).await?)))
}

/// What a certificate for a member would start from, and whether the caller would issue
/// it or ask for it.
#[utoipa::path(get, path = "/api/v1/members/{id}/certificate-draft", tag = "certificates", params(("id" = i64, Path)),
    responses((status = 200, body = CertificateDraft), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn draft(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<CertificateDraft>, ApiError> {
    Ok(axum::Json(who.guard(&state).certificate_draft(id).await?))
}

/// A member's certificates and requests, newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/certificates", tag = "certificates", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<CertificateRecord>), (status = 404, body = ErrorBody)))]
pub async fn for_member(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<CertificateRecord>>, ApiError> {
    Ok(axum::Json(who.guard(&state).member_certificates(id).await?))
}

/// One certificate with its history and the steps the caller may take.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates", params(("id" = i64, Path)),
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<CertificateView>, ApiError> {
    Ok(axum::Json(who.guard(&state).certificate(id).await?))
}

/// Takes a step (`issue`, `refuse`, `return`, `revoke`, `report_lost`) at the version
/// read. `report_lost` answers with the replacement.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/steps", tag = "certificates", params(("id" = i64, Path)),
    request_body = CertificateStepInput,
    responses((status = 200, body = CertificateView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn step(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<CertificateStepInput>,
) -> Result<axum::Json<CertificateView>, ApiError> {
    Ok(axum::Json(who.guard(&state).certificate_step(id, &body).await?))
}

/// The holder's photo.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/photo", tag = "certificates", params(("id" = i64, Path)),
    responses((status = 200, description = "The photo (JPEG or PNG)"), (status = 404, body = ErrorBody)))]
pub async fn photo(State(state): State<AppState>, who: Authed, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let (content_type, bytes) = who.guard(&state).certificate_photo(id).await?;
    photo_response(&content_type, bytes)
}

pub fn photo_response(content_type: &str, bytes: Vec<u8>) -> Result<Response, ApiError> {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).map_err(|_| ApiError::Internal)?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(res)
}

/// Sets the holder's photo: the body is the JPEG or PNG file itself, at most 2 MiB.
#[utoipa::path(put, path = "/api/v1/certificates/{id}/photo", tag = "certificates", params(("id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, body = CertificateView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_photo(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<CertificateView>, ApiError> {
    let bytes = body.map_err(|_| ApiError::field("photo", "certificate.photo_too_large"))?;
    Ok(axum::Json(who.guard(&state).certificate_set_photo(id, &bytes).await?))
}

/// The inflow side checks the certificate a member shows at check-in and records it on
/// the check-in: a number of the system must be valid and the same person's; a number
/// unknown here is taken as shown only when the home side is outside the system.
#[utoipa::path(post, path = "/api/v1/checkins/{id}/certificate", tag = "certificates", params(("id" = i64, Path)),
    request_body = CheckBody,
    responses((status = 200, body = CheckinRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<CheckBody>,
) -> Result<axum::Json<CheckinRecord>, ApiError> {
    Ok(axum::Json(who.guard(&state).checkin_certificate(id, &body.number).await?))
}

/// Public verification, no account needed: whether the certificate is valid today, its
/// issuing organization and period, and a masked name. Ten lookups a minute per client.
#[utoipa::path(get, path = "/api/v1/public/certificates/{number}", tag = "certificates", security(()),
    params(("number" = String, Path)),
    responses((status = 200, body = PublicCertificate), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(number): Path<String>,
) -> Result<axum::Json<PublicCertificate>, ApiError> {
    state.lookups.check(client.as_deref())?;
    let found = state.store.public(kite_store::Client { address: client }).verify_certificate(&number).await?;
    found.map(axum::Json).ok_or(ApiError::Missing("certificate.unknown"))
}
