//! Co-management agreements (共建共管协议), their files, and each organization's partners.

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kite_domain::agreement::{AgreementInput, PartyInput, MAX_FILE_BYTES};
use kite_store::{AgreementFile, AgreementQuery, AgreementRecord, AgreementSummary, Page, Partner};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::AppState;

/// One party: `org_code` for an organization in the system, else its `name`.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct PartyBody {
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub org_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub contact_name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub contact_phone: String,
}

impl PartyBody {
    fn input(&self) -> PartyInput<'_> {
        PartyInput {
            org_code: &self.org_code,
            name: &self.name,
            contact_name: &self.contact_name,
            contact_phone: &self.contact_phone,
        }
    }
}

/// An agreement as sent; a record read can be sent back as is (the party's code wins
/// over its name). Dates are YYYY-MM-DD; amounts are whole yuan per year.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct AgreementBody {
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub title: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub number: String,
    pub outflow: PartyBody,
    pub inflow: PartyBody,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub signed_on: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub starts_on: String,
    /// Empty or null: no end date.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub ends_on: String,
    /// 组织共建.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub org_building: String,
    /// 党员共管.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub member_management: String,
    /// 工作共商.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub consultation: String,
    /// `monthly`, `quarterly`, `half_year` or `year`.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub consultation_cycle: String,
    /// 经费共担.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub funding: String,
    #[serde(deserialize_with = "crate::extract::number_or_text")]
    #[schema(value_type = Option<i64>)]
    pub funding_outflow_yuan: String,
    #[serde(deserialize_with = "crate::extract::number_or_text")]
    #[schema(value_type = Option<i64>)]
    pub funding_inflow_yuan: String,
    /// 活动共抓.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub activities: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub note: String,
    /// Required to amend: the version read.
    pub version: Option<i64>,
}

impl AgreementBody {
    pub fn input(&self) -> AgreementInput<'_> {
        AgreementInput {
            title: &self.title,
            number: &self.number,
            outflow: self.outflow.input(),
            inflow: self.inflow.input(),
            signed_on: &self.signed_on,
            starts_on: &self.starts_on,
            ends_on: &self.ends_on,
            org_building: &self.org_building,
            member_management: &self.member_management,
            consultation: &self.consultation,
            consultation_cycle: &self.consultation_cycle,
            funding: &self.funding,
            funding_outflow_yuan: &self.funding_outflow_yuan,
            funding_inflow_yuan: &self.funding_inflow_yuan,
            activities: &self.activities,
            note: &self.note,
        }
    }

    /// The form's values from a record, for editing.
    pub fn from_record(a: &AgreementRecord) -> Self {
        let party = |p: &kite_store::AgreementParty| PartyBody {
            org_code: p.org_code.clone().unwrap_or_default(),
            name: if p.org_code.is_some() { String::new() } else { p.name.clone() },
            contact_name: p.contact_name.clone().unwrap_or_default(),
            contact_phone: p.contact_phone.clone().unwrap_or_default(),
        };
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let day = |v: Option<chrono::NaiveDate>| v.map(|d| d.to_string()).unwrap_or_default();
        AgreementBody {
            title: a.title.clone(),
            number: text(&a.number),
            outflow: party(&a.outflow),
            inflow: party(&a.inflow),
            signed_on: day(a.signed_on),
            starts_on: a.starts_on.to_string(),
            ends_on: day(a.ends_on),
            org_building: text(&a.org_building),
            member_management: text(&a.member_management),
            consultation: text(&a.consultation),
            consultation_cycle: a.consultation_cycle.map(|c| c.code().to_string()).unwrap_or_default(),
            funding: text(&a.funding),
            funding_outflow_yuan: num(a.funding_outflow_yuan),
            funding_inflow_yuan: num(a.funding_inflow_yuan),
            activities: text(&a.activities),
            note: text(&a.note),
            version: Some(a.version),
        }
    }
}

/// Agreements that an organization of the subtree is party to (the caller's own by default).
#[utoipa::path(get, path = "/api/v1/agreements", tag = "agreements", params(AgreementQuery),
    responses((status = 200, body = Page<AgreementSummary>), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<AgreementQuery>,
) -> Result<axum::Json<Page<AgreementSummary>>, ApiError> {
    Ok(axum::Json(who.guard(&state).agreements(&q).await?))
}

/// Records an agreement; the caller's subtree must hold one of the parties.
#[utoipa::path(post, path = "/api/v1/agreements", tag = "agreements", request_body = AgreementBody,
    responses((status = 201, body = AgreementRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<AgreementBody>,
) -> Result<(StatusCode, axum::Json<AgreementRecord>), ApiError> {
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).agreement_create(&body.input()).await?)))
}

/// One agreement with its commitments, contacts and files, for its parties.
#[utoipa::path(get, path = "/api/v1/agreements/{id}", tag = "agreements", params(("id" = i64, Path)),
    responses((status = 200, body = AgreementRecord), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<AgreementRecord>, ApiError> {
    Ok(axum::Json(who.guard(&state).agreement(id).await?))
}

/// Amends an agreement at the version read.
#[utoipa::path(put, path = "/api/v1/agreements/{id}", tag = "agreements", params(("id" = i64, Path)),
    request_body = AgreementBody,
    responses((status = 200, body = AgreementRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<AgreementBody>,
) -> Result<axum::Json<AgreementRecord>, ApiError> {
    let version = super::required_version(body.version)?;
    Ok(axum::Json(who.guard(&state).agreement_update(id, &body.input(), version).await?))
}

/// The first `file` part of a multipart body: its name and content, or a field error.
/// Other text parts (the web form's CSRF token) come back by name.
pub async fn file_part(
    form: Result<Multipart, MultipartRejection>,
) -> Result<(String, Bytes, Vec<(String, String)>), ApiError> {
    let mut form = form.map_err(|_| ApiError::BadRequest("invalid_multipart"))?;
    // A body over the limit is cut off while it is read.
    let bad = |e: MultipartError| {
        ApiError::field(
            "file",
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "agreement.file_too_large"
            } else {
                "agreement.file_unreadable"
            },
        )
    };
    let mut texts = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map_err(bad)?;
            return Ok((file_name, bytes, texts));
        }
        if texts.len() < 8 {
            let value = field.text().await.map_err(bad)?;
            texts.push((name, value));
        }
    }
    Err(ApiError::field("file", "agreement.file_missing"))
}

/// Attaches a file (multipart/form-data, part `file`): PDF, OFD, Word, PNG or JPEG,
/// at most 10 MiB, 20 per agreement. The type is read from the content.
#[utoipa::path(post, path = "/api/v1/agreements/{id}/files", tag = "agreements", params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "Part `file`: the document."),
    responses((status = 201, body = AgreementFile), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn attach(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<AgreementFile>), ApiError> {
    // Refused before the upload is read.
    who.guard(&state).agreement_for_edit(id).await?;
    let (name, bytes, _) = file_part(form).await?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).agreement_attach(id, &name, &bytes).await?)))
}

/// A file as a download.
#[utoipa::path(get, path = "/api/v1/agreements/{id}/files/{file_id}", tag = "agreements",
    params(("id" = i64, Path), ("file_id" = i64, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    who: Authed,
    Path((id, file_id)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let (meta, content) = who.guard(&state).agreement_file(id, file_id).await?;
    let disposition = format!(
        "attachment; filename=\"agreement-{id}-{file_id}\"; filename*=UTF-8''{}",
        crate::web::urlencode(&meta.file_name)
    );
    let mut res = content.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&meta.content_type).map_err(|_| ApiError::Internal)?);
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|_| ApiError::Internal)?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Removes a file; the removal is audited with the file's name and checksum.
#[utoipa::path(delete, path = "/api/v1/agreements/{id}/files/{file_id}", tag = "agreements",
    params(("id" = i64, Path), ("file_id" = i64, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn detach(
    State(state): State<AppState>,
    who: Authed,
    Path((id, file_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    who.guard(&state).agreement_detach(id, file_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's partners: the other sides of the agreements it, an organization
/// above it or one below it is party to.
#[utoipa::path(get, path = "/api/v1/orgs/{code}/partners", tag = "agreements", params(("code" = String, Path)),
    responses((status = 200, body = Vec<Partner>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn partners(
    State(state): State<AppState>,
    who: Authed,
    Path(code): Path<String>,
) -> Result<axum::Json<Vec<Partner>>, ApiError> {
    Ok(axum::Json(who.guard(&state).org_partners(&code).await?))
}

/// Uploads beyond the file limit are cut off by the body limit, with room for the form.
pub const UPLOAD_BODY_LIMIT: usize = MAX_FILE_BYTES + 64 * 1024;
