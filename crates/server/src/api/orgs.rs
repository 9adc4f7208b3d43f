use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::org::{self, OrgInput};
use kite_domain::OrgStatus;
use kite_store::{Org, Overview};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::rules;
use crate::AppState;

/// An organization as sent by a client. Enumerations use their codes
/// (`level`: committee, general_branch, branch, group; `kind`: ordinary, building,
/// market, industry, project, new_resident, functional, stationed).
#[derive(Deserialize, serde::Serialize, ToSchema, Default)]
#[serde(default)]
pub struct OrgBody {
    /// Creation only: the stable unique code.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub code: String,
    /// Creation only: the parent's code; omit for a root (system administrators only).
    pub parent_code: Option<String>,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub level: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub kind: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub division_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub address: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub phone: String,
    /// Update only: `active` or `dissolved`.
    pub status: Option<String>,
    /// Update only: the version read, for optimistic concurrency.
    pub version: Option<i64>,
}

impl OrgBody {
    /// The form as filled from a stored organization, for editing.
    pub fn from_org(o: &Org) -> Self {
        OrgBody {
            code: o.code.clone(),
            parent_code: o.parent_code.clone(),
            name: o.name.clone(),
            level: o.level.code().into(),
            kind: o.kind.code().into(),
            division_code: o.division_code.clone(),
            address: o.address.clone().unwrap_or_default(),
            phone: o.phone.clone().unwrap_or_default(),
            status: Some(o.status.code().into()),
            version: Some(o.version),
        }
    }

    pub fn fields(&self) -> Result<org::OrgFields, ApiError> {
        let input = OrgInput {
            name: &self.name,
            level: &self.level,
            kind: &self.kind,
            division_code: &self.division_code,
            address: &self.address,
            phone: &self.phone,
        };
        org::validate(&input, rules::division_known).map_err(ApiError::Invalid)
    }

    /// As [`OrgBody::fields`], for a new organization: its code is checked too.
    pub fn new_fields(&self) -> Result<org::OrgFields, ApiError> {
        let fields = self.fields();
        if org::valid_code(self.code.trim()) {
            return fields;
        }
        let mut errors = match fields {
            Err(ApiError::Invalid(e)) => e,
            _ => kite_domain::FieldErrors::default(),
        };
        errors.add("code", "org.code.invalid");
        Err(ApiError::Invalid(errors))
    }
}

/// Counts of organizations, members and mobile members in the caller's scope.
#[utoipa::path(get, path = "/api/v1/overview", tag = "organizations", params(OverviewQuery),
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<OverviewQuery>,
) -> Result<axum::Json<Overview>, ApiError> {
    Ok(axum::Json(who.guard(&state).overview(q.org.as_deref()).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct OverviewQuery {
    /// Limit to this organization's subtree.
    pub org: Option<String>,
}

/// The top of the tree the caller may see.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organizations",
    responses((status = 200, body = Vec<Org>), (status = 401, body = ErrorBody)))]
pub async fn roots(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<Org>>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_children(None).await?))
}

/// Creates an organization under `parent_code`.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organizations", request_body = OrgBody,
    responses((status = 201, body = Org), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<OrgBody>,
) -> Result<(StatusCode, axum::Json<Org>), ApiError> {
    let fields = body.new_fields()?;
    let o = who.guard(&state).org_create(body.parent_code.as_deref(), &body.code, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(o)))
}

/// One organization by code.
#[utoipa::path(get, path = "/api/v1/orgs/{code}", tag = "organizations", params(("code" = String, Path)),
    responses((status = 200, body = Org), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
) -> Result<axum::Json<Org>, ApiError> {
    Ok(axum::Json(who.guard(&state).org(&code).await?))
}

/// Updates an organization's fields and status (send the `version` read).
#[utoipa::path(put, path = "/api/v1/orgs/{code}", tag = "organizations", params(("code" = String, Path)),
    request_body = OrgBody,
    responses((status = 200, body = Org), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
    Json(body): Json<OrgBody>,
) -> Result<axum::Json<Org>, ApiError> {
    let fields = body.fields()?;
    let status = match body.status.as_deref() {
        None | Some("") => OrgStatus::Active,
        Some(s) => OrgStatus::from_code(s).ok_or_else(|| ApiError::field("status", "invalid"))?,
    };
    let version = super::required_version(body.version)?;
    Ok(axum::Json(who.guard(&state).org_update(&code, fields, status, version).await?))
}

/// Direct children of an organization.
#[utoipa::path(get, path = "/api/v1/orgs/{code}/children", tag = "organizations", params(("code" = String, Path)),
    responses((status = 200, body = Vec<Org>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn children(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
) -> Result<axum::Json<Vec<Org>>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_children(Some(&code)).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct MoveBody {
    pub parent_code: String,
    pub version: i64,
}

/// Moves an organization, with its subtree, under another parent.
#[utoipa::path(post, path = "/api/v1/orgs/{code}/move", tag = "organizations", params(("code" = String, Path)),
    request_body = MoveBody,
    responses((status = 200, body = Org), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn move_org(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
    Json(body): Json<MoveBody>,
) -> Result<axum::Json<Org>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_move(&code, &body.parent_code, body.version).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct TransferLevelsBody {
    /// Transfers of the organization's members are approved by it, then by the committee above.
    pub two_levels: bool,
    pub version: i64,
}

/// Sets whether transfers of the organization's members need a second approval above it.
#[utoipa::path(put, path = "/api/v1/orgs/{code}/transfer-approval", tag = "organizations",
    params(("code" = String, Path)), request_body = TransferLevelsBody,
    responses((status = 200, body = Org), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn transfer_levels(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
    Json(body): Json<TransferLevelsBody>,
) -> Result<axum::Json<Org>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_set_transfer_levels(&code, body.two_levels, body.version).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct OrgSearch {
    /// Part of a name or code.
    pub q: String,
}

/// Organizations in the caller's view whose name or code contains `q`.
#[utoipa::path(get, path = "/api/v1/org-search", tag = "organizations", params(OrgSearch),
    responses((status = 200, body = Vec<Org>), (status = 401, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<OrgSearch>,
) -> Result<axum::Json<Vec<Org>>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_search(&q.q, 20).await?))
}
