//! Screening campaigns (动态排查): campaigns over a region, rosters matched against its
//! registry, the review of the matches, and closing (which deletes the rosters).

use std::io::Write;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::screening::{self, CampaignInput, Decision};
use kite_store::{CampaignRecord, CampaignView, FollowUp, MatchRecord, NewRoster, RosterRecord};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::AppState;

/// Rosters up to this size are taken in one request; larger ones go through `kite screen`.
pub const UPLOAD_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// One roster run at a time: each holds the file and the region's registry in memory and
/// keeps the cores busy; others wait their turn.
static RUNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Deserialize, serde::Serialize, ToSchema, Default)]
#[serde(default)]
pub struct CampaignBody {
    /// The organization whose subtree's registry is screened.
    pub org_code: String,
    /// The organization whose area the rosters come from (default: `org_code`'s): members
    /// found are known there or candidates for it to contact.
    pub place_org_code: Option<String>,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub starts_on: String,
    pub ends_on: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct DecisionBody {
    /// `accepted` or `rejected`.
    pub decision: String,
    pub version: i64,
    pub note: Option<String>,
}

impl DecisionBody {
    pub fn validate(&self) -> Result<(Decision, Option<String>), ApiError> {
        let decision = Decision::from_code(&self.decision).ok_or_else(|| ApiError::field("decision", "invalid"))?;
        let mut e = kite_domain::FieldErrors::default();
        let note = kite_domain::validation::multiline(&mut e, "note", self.note.as_deref().unwrap_or(""), false, 500);
        match e.is_empty() {
            true => Ok((decision, note)),
            false => Err(ApiError::Invalid(e)),
        }
    }
}

impl CampaignBody {
    /// The campaign and the place's code, validated.
    pub fn validate(&self) -> Result<(kite_domain::screening::Campaign, Option<&str>), ApiError> {
        let input = CampaignInput { name: &self.name, starts_on: &self.starts_on, ends_on: &self.ends_on };
        let c = screening::validate(&input).map_err(ApiError::Invalid)?;
        Ok((c, self.place_org_code.as_deref().map(str::trim).filter(|p| !p.is_empty())))
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct CloseBody {
    pub version: i64,
}

#[derive(Deserialize, IntoParams)]
pub struct MatchQuery {
    /// `true`: only the matches not yet decided.
    pub open: Option<bool>,
}

/// The campaigns over the caller's region, newest first.
#[utoipa::path(get, path = "/api/v1/screening/campaigns", tag = "screening",
    responses((status = 200, body = Vec<CampaignRecord>), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<CampaignRecord>>, ApiError> {
    Ok(axum::Json(who.guard(&state).campaigns().await?))
}

/// Starts a campaign over the registry of an organization's subtree (the screening
/// permission of that region is needed).
#[utoipa::path(post, path = "/api/v1/screening/campaigns", tag = "screening", request_body = CampaignBody,
    responses((status = 201, body = CampaignRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<CampaignBody>,
) -> Result<(StatusCode, axum::Json<CampaignRecord>), ApiError> {
    let (c, place) = body.validate()?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).campaign_create(body.org_code.trim(), place, &c).await?)))
}

/// One campaign with its counts and rosters.
#[utoipa::path(get, path = "/api/v1/screening/campaigns/{id}", tag = "screening", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    Ok(axum::Json(who.guard(&state).campaign(id).await?))
}

/// Uploads a roster (multipart: `file` — CSV, TSV or .xlsx, UTF-8 or GB18030 — and
/// `source`, the department it came from) and matches it against the campaign's registry.
/// Unreadable rows are counted and listed with their line and reason.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/rosters", tag = "screening", params(("id" = i64, Path)),
    request_body(content = String, content_type = "multipart/form-data"),
    responses((status = 201, body = RosterRecord), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<RosterRecord>), ApiError> {
    let g = who.guard(&state);
    // Refused before the upload is read; the registry is the campaign's region only.
    let (campaign, members) = g.campaign_registry(id).await?;
    let (file_name, bytes, texts) = roster_part(form).await?;
    let source = texts.iter().find(|(k, _)| k == "source").map(|(_, v)| v.as_str());
    let roster = add_roster(&g, &campaign, members, &file_name, bytes.to_vec(), source).await?;
    Ok((StatusCode::CREATED, axum::Json(roster)))
}

/// The uploaded file and the form's text parts, with the upload's errors in screening's words.
pub async fn roster_part(
    form: Result<Multipart, MultipartRejection>,
) -> Result<(String, axum::body::Bytes, Vec<(String, String)>), ApiError> {
    super::agreements::file_part(form).await.map_err(|e| match e {
        ApiError::Invalid(f) => ApiError::field(
            "file",
            match f.get("file") {
                Some("agreement.file_too_large") => "screening.file_too_large",
                Some("agreement.file_missing") => "screening.file_missing",
                _ => "screening.file_unreadable",
            },
        ),
        e => e,
    })
}

/// Matches an uploaded roster against the campaign's registry and stores the run (the API
/// and the page share it).
pub async fn add_roster(
    g: &kite_store::Guard<'_>,
    campaign: &CampaignRecord,
    members: Vec<kite_store::ScreeningMember>,
    file_name: &str,
    bytes: Vec<u8>,
    source: Option<&str>,
) -> Result<RosterRecord, ApiError> {
    let name = file_name.trim().chars().take(200).collect::<String>();
    let source = source.map(|s| s.trim().chars().take(100).collect::<String>()).filter(|s| !s.is_empty());
    // The format is told by the content; the suffix only names TSV and workbooks.
    let lower = name.to_lowercase();
    let suffix = ["xlsx", "tsv", "tab"].into_iter().find(|x| lower.ends_with(&format!(".{x}"))).unwrap_or("csv");
    let place = campaign.place().to_string();
    let content = bytes.clone();
    let _turn = RUNS.acquire().await.map_err(|_| ApiError::Internal)?;
    // Parsing and matching are CPU work: off the request threads.
    let run = tokio::task::spawn_blocking(move || {
        let mut file = tempfile::Builder::new().suffix(&format!(".{suffix}")).tempfile().map_err(|_| "internal")?;
        file.write_all(&content).map_err(|_| "internal")?;
        crate::screening::run_roster(file.path(), &members, &place)
    })
    .await
    .map_err(|_| ApiError::Internal)?;
    let run = match run {
        Ok(run) => run,
        Err("internal") => return Err(ApiError::Internal),
        Err(code) => {
            g.campaign_run_failed(campaign.id, &name, code).await?;
            return Err(ApiError::field("file", code));
        }
    };
    let roster = NewRoster {
        file_name: if name.is_empty() { "roster" } else { &name },
        source: source.as_deref(),
        rows_read: run.rows_read,
        unreadable: run.unreadable,
        errors: run.errors,
        content: &bytes,
        matches: run.matches,
    };
    Ok(g.campaign_add_roster(campaign.id, &roster).await?)
}

/// The campaign's matches, best first (at most 1000): the roster row, the member found
/// (ID number masked), score, band, outcome for the region and why.
#[utoipa::path(get, path = "/api/v1/screening/campaigns/{id}/matches", tag = "screening",
    params(("id" = i64, Path), MatchQuery),
    responses((status = 200, body = Vec<MatchRecord>), (status = 404, body = ErrorBody)))]
pub async fn matches(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Query(q): Query<MatchQuery>,
) -> Result<axum::Json<Vec<MatchRecord>>, ApiError> {
    Ok(axum::Json(who.guard(&state).campaign_matches(id, q.open.unwrap_or(false)).await?))
}

/// Accepts or rejects a match (at the version read); accepting makes it a follow-up.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/matches/{match_id}/decision", tag = "screening",
    params(("id" = i64, Path), ("match_id" = i64, Path)), request_body = DecisionBody,
    responses((status = 200, body = MatchRecord), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    who: Authed,
    Path((id, match_id)): Path<(i64, i64)>,
    Json(body): Json<DecisionBody>,
) -> Result<axum::Json<MatchRecord>, ApiError> {
    let (decision, note) = body.validate()?;
    let g = who.guard(&state);
    Ok(axum::Json(g.campaign_decide(id, match_id, body.version, decision, note.as_deref()).await?))
}

/// Closes the campaign: the rosters are deleted, and the roster data of every match not
/// accepted.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/close", tag = "screening", params(("id" = i64, Path)),
    request_body = CloseBody,
    responses((status = 200, body = CampaignRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<CloseBody>,
) -> Result<axum::Json<CampaignRecord>, ApiError> {
    Ok(axum::Json(who.guard(&state).campaign_close(id, body.version).await?))
}

/// Members accepted as candidates for the caller's subtree to contact and check in: the
/// follow-ups of campaigns whose place is there.
#[utoipa::path(get, path = "/api/v1/screening/candidates", tag = "screening",
    responses((status = 200, body = Vec<FollowUp>), (status = 403, body = ErrorBody)))]
pub async fn candidates(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<FollowUp>>, ApiError> {
    Ok(axum::Json(who.guard(&state).screening_candidates().await?))
}

/// Where screening found a member who had lost contact (accepted matches).
#[utoipa::path(get, path = "/api/v1/members/{id}/screening-found", tag = "screening", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<FollowUp>), (status = 404, body = ErrorBody)))]
pub async fn found(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<FollowUp>>, ApiError> {
    Ok(axum::Json(who.guard(&state).member_screening_found(id).await?))
}
