use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::flow::{validate_departure, DepartureInput};
use kite_domain::member::{self, MemberInput};
use kite_store::{AuditEntry, Flow, Member, MemberQuery, MemberSummary, Page};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::rules;
use crate::AppState;

/// A member as sent by a client; dates are `YYYY-MM-DD`, enumerations their codes
/// (`gender`: male, female; `category`: full, probationary; `education`: postgraduate,
/// bachelor, college, secondary, high_school, junior_or_below).
#[derive(Deserialize, serde::Serialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct MemberBody {
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub gender: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub ethnicity: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub birth_date: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub id_number: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub phone: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub education: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub joined_on: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub category: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub org_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub residence_division: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub residence_address: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub employer: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub occupation: String,
    /// Update only: the version read.
    pub version: Option<i64>,
}

impl MemberBody {
    /// The form as filled from a stored record, for editing.
    pub fn from_member(m: &Member) -> Self {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        MemberBody {
            name: m.name.clone(),
            gender: m.gender.code().into(),
            ethnicity: m.ethnicity.clone(),
            birth_date: m.birth_date.to_string(),
            id_number: m.id_number.clone(),
            phone: s(&m.phone),
            education: m.education.map(|e| e.code().to_string()).unwrap_or_default(),
            joined_on: m.joined_on.to_string(),
            category: m.category.code().into(),
            org_code: m.org_code.clone(),
            residence_division: s(&m.residence_division),
            residence_address: s(&m.residence_address),
            employer: s(&m.employer),
            occupation: s(&m.occupation),
            version: Some(m.version),
        }
    }

    pub fn input(&self) -> MemberInput<'_> {
        MemberInput {
            name: &self.name,
            gender: &self.gender,
            ethnicity: &self.ethnicity,
            birth_date: &self.birth_date,
            id_number: &self.id_number,
            phone: &self.phone,
            education: &self.education,
            joined_on: &self.joined_on,
            category: &self.category,
            org_code: &self.org_code,
            residence_division: &self.residence_division,
            residence_address: &self.residence_address,
            employer: &self.employer,
            occupation: &self.occupation,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Name (simplified or traditional, prefix), ID number (full, or at least 4 leading digits)
    /// or phone (the whole number).
    pub q: Option<String>,
    /// Organization code: only its subtree.
    pub org: Option<String>,
    /// resident, not_checked_in, checked_in, lost_contact, or away.
    pub mobility: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

/// Searches members in the caller's scope; ID numbers are masked.
#[utoipa::path(get, path = "/api/v1/members", tag = "members", params(ListQuery),
    responses((status = 200, body = Page<MemberSummary>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Page<MemberSummary>>, ApiError> {
    let q = MemberQuery { q: q.q, org: q.org, mobility: q.mobility, cursor: q.cursor, limit: q.limit };
    Ok(axum::Json(who.guard(&state).members(&q).await?))
}

/// Registers a member in an organization of the caller's subtree.
#[utoipa::path(post, path = "/api/v1/members", tag = "members", request_body = MemberBody,
    responses((status = 201, body = Member), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<MemberBody>,
) -> Result<(StatusCode, axum::Json<Member>), ApiError> {
    let f = member::validate(&body.input(), &rules::Ctx).map_err(ApiError::Invalid)?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).member_create(f).await?)))
}

/// One member with the full ID number; every call is written to the audit log.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members", params(("id" = i64, Path)),
    responses((status = 200, body = Member), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Member>, ApiError> {
    Ok(axum::Json(who.guard(&state).member(id).await?))
}

/// Updates a member (send the `version` read; a stale version is refused with 409).
#[utoipa::path(put, path = "/api/v1/members/{id}", tag = "members", params(("id" = i64, Path)),
    request_body = MemberBody,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<MemberBody>,
) -> Result<axum::Json<Member>, ApiError> {
    let f = member::validate(&body.input(), &rules::Ctx).map_err(ApiError::Invalid)?;
    let version = super::required_version(body.version)?;
    Ok(axum::Json(who.guard(&state).member_update(id, f, version).await?))
}

/// The member's periods away, newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/flows", tag = "members", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Flow>), (status = 404, body = ErrorBody)))]
pub async fn flows(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<Flow>>, ApiError> {
    Ok(axum::Json(who.guard(&state).member_flows(id).await?))
}

/// A departure (外出登记); `reason`: work, business, study, family, other.
#[derive(Deserialize, serde::Serialize, ToSchema, Default)]
#[serde(default)]
pub struct DepartureBody {
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub destination_division: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub destination_address: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub reason: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub left_on: String,
    /// Whole months, as a number or as text.
    #[serde(deserialize_with = "crate::extract::number_or_text")]
    #[schema(value_type = Option<i64>)]
    pub expected_months: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub contact_phone: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub note: String,
}

impl DepartureBody {
    pub fn input(&self) -> DepartureInput<'_> {
        DepartureInput {
            destination_division: &self.destination_division,
            destination_address: &self.destination_address,
            reason: &self.reason,
            left_on: &self.left_on,
            expected_months: &self.expected_months,
            contact_phone: &self.contact_phone,
            note: &self.note,
        }
    }
}

/// Records that a member is leaving; the member is then away, not yet checked in.
#[utoipa::path(post, path = "/api/v1/members/{id}/flows", tag = "members", params(("id" = i64, Path)),
    request_body = DepartureBody,
    responses((status = 201, body = Flow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn depart(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<DepartureBody>,
) -> Result<(StatusCode, axum::Json<Flow>), ApiError> {
    // The joining date is checked against the record inside the store.
    let d = validate_departure(&body.input(), rules::division_known, chrono::NaiveDate::MIN, rules::today())
        .map_err(ApiError::Invalid)?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).record_departure(id, d).await?)))
}

/// The member's change and view history.
#[utoipa::path(get, path = "/api/v1/members/{id}/audit", tag = "members", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AuditEntry>), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    Ok(axum::Json(who.guard(&state).member_audit(id).await?))
}
