//! The service network's points: one point with the points under it and its staff,
//! recorded and changed by the administrators of the organization that runs it.

use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::service_point::{self, PointFields, PointInput};
use kite_store::{PointView, ServicePoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::{rules, AppState};

/// A point; `level`: centre, station, window or point (市级中心, 区镇驿站, 村社窗口, 小区点位).
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct PointBody {
    /// Creation only: the stable unique code used in its check-in link (`/c/p/{code}`).
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub level: String,
    /// The point above it, of a higher level; empty for a top point.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub parent_code: String,
    /// The organization that runs it.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub org_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub division_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub address: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub hotline: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub opening_hours: String,
    /// `active` (default) or `closed`: a closed point's check-in link stops working.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub status: String,
    /// Update only: the version read.
    pub version: Option<i64>,
}

impl PointBody {
    pub fn from_point(p: &ServicePoint) -> Self {
        PointBody {
            code: p.code.clone(),
            name: p.name.clone(),
            level: p.level.code().into(),
            parent_code: p.parent_code.clone().unwrap_or_default(),
            org_code: p.org_code.clone(),
            division_code: p.division_code.clone(),
            address: p.address.clone().unwrap_or_default(),
            hotline: p.hotline.clone().unwrap_or_default(),
            opening_hours: p.opening_hours.clone().unwrap_or_default(),
            status: p.status.clone(),
            version: Some(p.version),
        }
    }

    pub fn fields(&self, new: bool) -> Result<PointFields, ApiError> {
        let input = PointInput {
            code: &self.code,
            name: &self.name,
            level: &self.level,
            parent_code: &self.parent_code,
            org_code: &self.org_code,
            division_code: &self.division_code,
            address: &self.address,
            hotline: &self.hotline,
            opening_hours: &self.opening_hours,
            status: &self.status,
        };
        service_point::validate(&input, new, rules::division_known).map_err(ApiError::Invalid)
    }
}

/// Records a point run by an organization of the caller's subtree.
#[utoipa::path(post, path = "/api/v1/service-points", tag = "organizations", request_body = PointBody,
    responses((status = 201, body = ServicePoint), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<PointBody>,
) -> Result<(StatusCode, axum::Json<ServicePoint>), ApiError> {
    let fields = body.fields(true)?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).service_point_create(&fields).await?)))
}

/// One point with the points under it; its staff for those who may manage it.
#[utoipa::path(get, path = "/api/v1/service-points/{code}", tag = "organizations", params(("code" = String, Path)),
    responses((status = 200, body = PointView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
) -> Result<axum::Json<PointView>, ApiError> {
    Ok(axum::Json(who.guard(&state).service_point(&code).await?))
}

/// Changes a point at the version read (the code stays).
#[utoipa::path(put, path = "/api/v1/service-points/{code}", tag = "organizations", params(("code" = String, Path)),
    request_body = PointBody,
    responses((status = 200, body = ServicePoint), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
    Json(body): Json<PointBody>,
) -> Result<axum::Json<ServicePoint>, ApiError> {
    let version = super::required_version(body.version)?;
    let fields = body.fields(false)?;
    Ok(axum::Json(who.guard(&state).service_point_update(&code, &fields, version).await?))
}
