//! Screening campaigns (动态排查): campaigns over a region, rosters matched against its
//! registry, the review of the matches, and closing (which deletes the rosters).

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::screening::{self, CampaignInput, Decision};
use kite_screen::import::{ColumnMapping, Field};
use kite_store::{CampaignRecord, CampaignView, FollowUp, MatchFilter, MatchRecord, NewRoster, RosterDetail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authed;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::screening::RunProgress;
use crate::AppState;

/// The largest roster taken (tens of millions of rows). It is received to a temporary
/// file as it arrives and stored in parts, never held in memory whole.
pub const UPLOAD_BODY_LIMIT: usize = 4 << 30;

/// A roster's stored file is cut in parts of this size.
const PART_BYTES: usize = 4 << 20;

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

#[derive(Deserialize, IntoParams, Default)]
#[serde(default)]
pub struct MatchQuery {
    /// `true`: only the matches not yet decided.
    pub open: Option<bool>,
    /// `match` or `review`.
    pub band: Option<String>,
    /// `known_here`, `candidate_inflow` or `lost_contact_found`.
    pub outcome: Option<String>,
    pub offset: Option<i64>,
    /// At most 1000 (the default).
    pub limit: Option<i64>,
}

impl MatchQuery {
    pub fn filter(&self) -> Result<MatchFilter, ApiError> {
        let pick = |v: &Option<String>, allowed: &[&str], field: &'static str| match v.as_deref() {
            None | Some("") => Ok(None),
            Some(x) if allowed.contains(&x) => Ok(Some(x.to_string())),
            Some(_) => Err(ApiError::field(field, "invalid")),
        };
        Ok(MatchFilter {
            open_only: self.open.unwrap_or(false),
            band: pick(&self.band, &["match", "review"], "band")?,
            outcome: pick(&self.outcome, &["known_here", "candidate_inflow", "lost_contact_found"], "outcome")?,
            offset: self.offset.unwrap_or(0).max(0),
            limit: self.limit.unwrap_or(1000).clamp(1, 1000),
        })
    }
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

/// A roster with the progress of its run, if one is under way.
#[derive(Serialize, ToSchema)]
pub struct RosterView {
    #[serde(flatten)]
    pub roster: RosterDetail,
    pub progress: Option<RunProgress>,
}

fn view(state: &AppState, roster: RosterDetail) -> RosterView {
    let progress = state.runs.progress(roster.roster.id);
    RosterView { roster, progress }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct RunBody {
    /// The column mapping to read the roster with; the one detected on upload (or set by
    /// the last run) if absent. `{"header_line": 1, "columns": [{"index": 0, "field": "name"}, …]}`;
    /// fields: `name`, `id_number`, `gender`, `birth_date`, `phone`, `employer`, `address`,
    /// `hukou_place`, `ethnicity`.
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<ColumnMapping>,
}

/// Uploads a roster (multipart: `source`, the department it came from, and `file` — CSV,
/// TSV or .xlsx, UTF-8 or GB18030, up to 4 GiB). Its format, encoding and first rows are
/// read and a column mapping proposed; check it, then start the run.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/rosters", tag = "screening", params(("id" = i64, Path)),
    request_body(content = String, content_type = "multipart/form-data"),
    responses((status = 201, body = RosterView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<RosterView>), ApiError> {
    // Refused before the upload is read.
    who.guard(&state).campaign_open(id).await?;
    let received = receive(form).await?;
    let source = received.text("source").map(str::to_string);
    let roster = store_upload(&state, who.acting(), id, received, source).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, roster))))
}

/// A roster as received: its file on disk, and the form's text parts.
pub struct Received {
    pub file: tempfile::NamedTempFile,
    pub file_name: String,
    pub size: u64,
    pub texts: Vec<(String, String)>,
}

impl Received {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Receives a multipart roster upload, writing part `file` to a temporary file as it
/// arrives.
pub async fn receive(form: Result<Multipart, MultipartRejection>) -> Result<Received, ApiError> {
    let mut form = form.map_err(|_| ApiError::BadRequest("invalid_multipart"))?;
    // A body over the limit is cut off while it is read.
    let bad = |e: MultipartError| {
        let code = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "screening.file_too_large",
            _ => "screening.file_unreadable",
        };
        ApiError::field("file", code)
    };
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "a roster upload could not be written to a temporary file");
        ApiError::Internal
    };
    let (mut texts, mut received) = (Vec::new(), None);
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" && received.is_none() {
            let file_name = clean_text(field.file_name().unwrap_or_default(), 200);
            let file =
                tempfile::NamedTempFile::new_in(crate::screening::spool().map_err(internal)?).map_err(internal)?;
            let mut out = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
            let mut size = 0u64;
            while let Some(bytes) = field.chunk().await.map_err(bad)? {
                size += bytes.len() as u64;
                out.write_all(&bytes).await.map_err(internal)?;
            }
            out.flush().await.map_err(internal)?;
            received = Some((file, file_name, size));
        } else {
            // The other parts are short texts (the CSRF token, the source): read a little
            // of each, never a second file whole.
            let mut value = Vec::new();
            while let Some(bytes) = field.chunk().await.map_err(bad)? {
                if value.len() + bytes.len() > MAX_TEXT_PART || texts.len() >= 8 {
                    return Err(ApiError::BadRequest("invalid_multipart"));
                }
                value.extend_from_slice(&bytes);
            }
            texts.push((name, clean_text(&String::from_utf8_lossy(&value), 1000)));
        }
    }
    match received {
        Some((_, _, 0)) | None => Err(ApiError::field("file", "screening.file_missing")),
        Some((file, file_name, size)) => Ok(Received { file, file_name, size, texts }),
    }
}

/// A text part of the upload form is at most this long.
const MAX_TEXT_PART: usize = 4096;

/// Free text as stored: trimmed, without control characters, at most `max` characters.
fn clean_text(s: &str, max: usize) -> String {
    s.trim().chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Stores a received roster after reading what it holds: its row, then its file in parts
/// (each in its own transaction), then its status. This goes on in a task of its own, so
/// that a client that goes away midway does not leave half a roster: it is removed.
pub async fn store_upload(
    state: &AppState,
    (principal, client): (kite_domain::Principal, kite_store::Client),
    campaign_id: i64,
    received: Received,
    source: Option<String>,
) -> Result<RosterDetail, ApiError> {
    let store = state.store.clone();
    tokio::spawn(async move {
        let g = store.guard(principal, client);
        store_parts(&g, campaign_id, &received, source.as_deref()).await
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

async fn store_parts(
    g: &kite_store::Guard<'_>,
    campaign_id: i64,
    received: &Received,
    source: Option<&str>,
) -> Result<RosterDetail, ApiError> {
    let path = received.file.path().to_path_buf();
    // The format is told by the content; the name's suffix only tells TSV from CSV.
    let named = path.with_extension(crate::screening::suffix_of(&received.file_name));
    let detected = tokio::task::spawn_blocking(move || {
        std::fs::hard_link(&path, &named).or_else(|_| std::fs::copy(&path, &named).map(|_| ()))?;
        let detected = crate::screening::detect(&named);
        std::fs::remove_file(&named)?;
        Ok::<_, std::io::Error>(detected)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|e| {
        tracing::error!(error = %e, "a roster upload could not be read back");
        ApiError::Internal
    })?;
    let (detected, mapping) = detected.map_err(|code| ApiError::field("file", code))?;
    let name = if received.file_name.is_empty() { "roster" } else { received.file_name.as_str() };
    let source = source.map(|s| clean_text(s, 100)).filter(|s| !s.is_empty());
    let new = NewRoster {
        file_name: name,
        source: source.as_deref(),
        size_bytes: received.size as i64,
        mapping: serde_json::to_value(&mapping).unwrap_or_default(),
        detected,
    };
    let roster_id = g.roster_upload_begin(campaign_id, &new).await?;
    let stored = async {
        let mut file = tokio::fs::File::open(received.file.path()).await.map_err(|e| {
            tracing::error!(error = %e, "a roster upload could not be read back");
            ApiError::Internal
        })?;
        let mut buf = vec![0u8; PART_BYTES];
        let mut seq = 0;
        loop {
            let n = fill(&mut file, &mut buf).await.map_err(|_| ApiError::Internal)?;
            if n == 0 {
                break;
            }
            g.roster_upload_part(campaign_id, roster_id, seq, &buf[..n]).await?;
            seq += 1;
        }
        Ok::<_, ApiError>(g.roster_upload_end(campaign_id, roster_id).await?)
    }
    .await;
    if stored.is_err() {
        let _ = g.roster_upload_abort(campaign_id, roster_id).await;
    }
    stored
}

/// Reads until `buf` is full or the file ends.
async fn fill(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One roster: status, counts, the mapping and the first rows (ID numbers masked), and
/// the progress of its run.
#[utoipa::path(get, path = "/api/v1/screening/campaigns/{id}/rosters/{roster_id}", tag = "screening",
    params(("id" = i64, Path), ("roster_id" = i64, Path)),
    responses((status = 200, body = RosterView), (status = 404, body = ErrorBody)))]
pub async fn roster(
    State(state): State<AppState>,
    who: Authed,
    Path((id, roster_id)): Path<(i64, i64)>,
) -> Result<axum::Json<RosterView>, ApiError> {
    let g = who.guard(&state);
    crate::screening::reap_stale(&state, &g, id).await?;
    Ok(axum::Json(view(&state, g.campaign_roster(id, roster_id).await?)))
}

/// Starts matching a roster against the campaign's registry, in the background, with the
/// mapping given (the body `{}`: the one detected on upload, or set by the last run). Poll the roster for progress; its matches are shown
/// once it is `done`. A roster that failed or was cancelled can be run again.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/rosters/{roster_id}/run", tag = "screening",
    params(("id" = i64, Path), ("roster_id" = i64, Path)), request_body = RunBody,
    responses((status = 202, body = RosterView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    who: Authed,
    Path((id, roster_id)): Path<(i64, i64)>,
    Json(body): Json<RunBody>,
) -> Result<(StatusCode, axum::Json<RosterView>), ApiError> {
    let roster = start_run(&state, &who, id, roster_id, body.mapping).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, roster))))
}

/// Checks the mapping against the roster and starts its run (the API and the page share it).
pub async fn start_run(
    state: &AppState,
    who: &Authed,
    id: i64,
    roster_id: i64,
    mapping: Option<ColumnMapping>,
) -> Result<RosterDetail, ApiError> {
    let g = who.guard(state);
    crate::screening::reap_stale(state, &g, id).await?;
    let current = g.campaign_roster(id, roster_id).await?;
    let mapping = match mapping {
        Some(m) => m,
        None => current
            .mapping
            .clone()
            .and_then(|m| serde_json::from_value(m).ok())
            .ok_or(ApiError::field("mapping", "screening.mapping_incomplete"))?,
    };
    check_mapping(&mapping, current.detected.as_ref())?;
    let json = serde_json::to_value(&mapping).map_err(|_| ApiError::Internal)?;
    Ok(crate::screening::start_run(state, who.acting(), id, roster_id, &json).await?)
}

/// A mapping must feed the name or the ID number from columns the file has (as far as the
/// rows seen on upload show), and its header line must be one of those rows (or 0: no
/// header).
fn check_mapping(m: &ColumnMapping, detected: Option<&serde_json::Value>) -> Result<(), ApiError> {
    if !m.has(Field::Name) && !m.has(Field::IdNumber) {
        return Err(ApiError::field("mapping", "screening.mapping_incomplete"));
    }
    let lines = detected.and_then(|d| d.get("preview")).and_then(|p| p.as_array());
    let width = lines.into_iter().flatten().filter_map(|r| r.get(1)?.as_array().map(Vec::len)).max().unwrap_or(0);
    if m.columns.iter().any(|c| c.field.is_some() && c.index >= width.min(crate::screening::MAX_PREVIEW_COLUMNS)) {
        return Err(ApiError::field("mapping", "screening.column_out_of_range"));
    }
    if m.header_line > 0 {
        let seen =
            lines.is_some_and(|rows| rows.iter().any(|r| r.get(0).and_then(|l| l.as_u64()) == Some(m.header_line)));
        if !seen {
            return Err(ApiError::field("mapping", "screening.header_out_of_range"));
        }
    }
    Ok(())
}

/// Cancels a run under way: it stops at the next row, and its matches are removed. The
/// roster can be run again.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/rosters/{roster_id}/cancel", tag = "screening",
    params(("id" = i64, Path), ("roster_id" = i64, Path)),
    responses((status = 202, body = RosterView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    who: Authed,
    Path((id, roster_id)): Path<(i64, i64)>,
) -> Result<(StatusCode, axum::Json<RosterView>), ApiError> {
    let roster = cancel_run(&state, &who, id, roster_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, roster))))
}

pub async fn cancel_run(state: &AppState, who: &Authed, id: i64, roster_id: i64) -> Result<RosterDetail, ApiError> {
    let g = who.guard(state);
    crate::screening::reap_stale(state, &g, id).await?;
    let roster = g.campaign_roster(id, roster_id).await?;
    if roster.roster.status != "running" || !state.runs.cancel(roster_id) {
        return Err(ApiError::Conflict("screening.not_running"));
    }
    Ok(roster)
}

/// The campaign's matches, best first, filtered and paged (`offset`, `limit` up to 1000;
/// the header `X-Total-Count` says how many there are): the roster row, the member found
/// (ID number masked), score, band, outcome for the region and which fields agreed.
#[utoipa::path(get, path = "/api/v1/screening/campaigns/{id}/matches", tag = "screening",
    params(("id" = i64, Path), MatchQuery),
    responses((status = 200, body = Vec<MatchRecord>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn matches(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Query(q): Query<MatchQuery>,
) -> Result<([(&'static str, String); 1], axum::Json<Vec<MatchRecord>>), ApiError> {
    let (total, items) = who.guard(&state).campaign_match_page(id, &q.filter()?).await?;
    Ok(([("x-total-count", total.to_string())], axum::Json(items)))
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
/// accepted. Refused while a roster is being matched.
#[utoipa::path(post, path = "/api/v1/screening/campaigns/{id}/close", tag = "screening", params(("id" = i64, Path)),
    request_body = CloseBody,
    responses((status = 200, body = CampaignRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<CloseBody>,
) -> Result<axum::Json<CampaignRecord>, ApiError> {
    let g = who.guard(&state);
    crate::screening::reap_stale(&state, &g, id).await?;
    Ok(axum::Json(g.campaign_close(id, body.version).await?))
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
