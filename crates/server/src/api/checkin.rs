//! Check-in: the public self-service endpoints (no account; a one-time code proves the
//! phone), the counter for staff, and the queues where check-ins are decided.

use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::checkin::{self, Checkin, CheckinInput, LinkKind, Seeker};
use kite_store::{
    CheckinQuery, CheckinReceipt, CheckinRecord, CheckinTarget, Client, OutboxMessage, Page, Store, SuggestedOrg,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ClientAddr;
use crate::auth::{self, Authed};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::i18n::{self, Lang};
use crate::{rules, AppState};

/// A check-in as the member (or the staff member at the counter) fills it in.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct CheckinBody {
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub name: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub id_number: String,
    /// A mobile number: the one-time code is sent to it.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub phone: String,
    /// The home organization's code, if it is in the system.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub home_org_code: String,
    /// The home organization's name as known, when it is not in the system.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub home_org_text: String,
    /// Where the member lives now (division code, county or street).
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub division_code: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub address: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub employer: String,
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub occupation: String,
    /// At a service point: the organization picked among the suggestions (default: the point's).
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub inflow_org_code: String,
    /// The one-time code received by SMS (self-service only).
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub code: String,
    /// An idempotency key chosen by the client (8–64 letters, digits, `-`, `_`): a retry
    /// with the same key answers with the first check-in instead of making a second.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub request_id: String,
}

impl CheckinBody {
    pub fn input(&self) -> CheckinInput<'_> {
        CheckinInput {
            name: &self.name,
            id_number: &self.id_number,
            phone: &self.phone,
            home_org_code: &self.home_org_code,
            home_org_text: &self.home_org_text,
            division_code: &self.division_code,
            address: &self.address,
            employer: &self.employer,
            occupation: &self.occupation,
            inflow_org_code: &self.inflow_org_code,
        }
    }

    /// Validates the check-in, its request key and (self-service) its code's form;
    /// field errors name every problem at once.
    pub fn validate(&self, needs_code: bool) -> Result<(Checkin, String, Option<String>), ApiError> {
        let checked = checkin::validate(&self.input(), rules::division_known);
        let mut e = checked.as_ref().err().cloned().unwrap_or_default();
        let key = checkin::request_key(&self.request_id).map(str::to_string);
        if key.is_none() {
            e.add("request_id", if self.request_id.trim().is_empty() { "required" } else { "invalid" });
        }
        let code = needs_code.then(|| checkin::code(&self.code)).flatten();
        if needs_code && code.is_none() {
            e.add("code", if self.code.trim().is_empty() { "required" } else { "otp.format" });
        }
        match (checked, key) {
            (Ok(c), Some(k)) if e.is_empty() => Ok((c, k, code)),
            _ => Err(ApiError::Invalid(e)),
        }
    }
}

/// The hash under which a code for `phone` is kept: the code alone would be guessable.
pub fn code_hash(phone: &str, code: &str) -> String {
    auth::token_hash(&format!("{phone}:{code}"))
}

/// Parses the `{kind}` segment of a link (`o` or `p`).
pub fn link_kind(s: &str) -> Result<LinkKind, ApiError> {
    LinkKind::from_segment(s).ok_or(ApiError::NotFound)
}

/// A public link that leads nowhere: its own message, so a mistyped poster is recognised.
pub fn unknown_link(e: kite_store::StoreError) -> ApiError {
    match e {
        kite_store::StoreError::NotFound => ApiError::Missing("checkin.link_unknown"),
        other => other.into(),
    }
}

/// Sends a fresh one-time code to `phone` (via the outbox, waking the delivery loop);
/// answers with the wait before another.
pub async fn send_code(state: &AppState, client: Client, lang: Lang, phone: &str) -> Result<i64, ApiError> {
    let phone =
        kite_domain::validation::mobile_phone(phone).ok_or_else(|| ApiError::field("phone", "checkin.phone_mobile"))?;
    let code = random_code();
    let sms = i18n::t(lang, "sms.checkin_code").replace("{code}", &code);
    state.store.public(client).send_code(&phone, &code_hash(&phone, &code), &sms).await?;
    state.outbox_wake.notify_one();
    Ok(checkin::RESEND_AFTER.num_seconds())
}

fn random_code() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    format!("{:06}", OsRng.next_u32() % 1_000_000)
}

/// Guidance for what the form holds; the home county comes from the home organization.
pub async fn suggestions_for(store: &Store, body: &CheckinBody) -> Result<Vec<SuggestedOrg>, ApiError> {
    let seeker = Seeker {
        division: body.division_code.trim(),
        home_county: None,
        employer: &body.employer,
        occupation: &body.occupation,
        address: &body.address,
    };
    let home = Some(body.home_org_code.trim()).filter(|c| !c.is_empty());
    Ok(store.public(Client::default()).suggestions(&seeker, home).await?)
}

/// What a check-in link opens.
#[utoipa::path(get, path = "/api/v1/checkin/{kind}/{code}", tag = "checkin", security(()),
    params(("kind" = String, Path, description = "`o` (organization) or `p` (service point)"), ("code" = String, Path)),
    responses((status = 200, body = CheckinTarget), (status = 404, body = ErrorBody)))]
pub async fn target(
    State(state): State<AppState>,
    Path((kind, code)): Path<(String, String)>,
) -> Result<axum::Json<CheckinTarget>, ApiError> {
    let kind = link_kind(&kind)?;
    Ok(axum::Json(state.store.public(Client::default()).checkin_target(kind, &code).await.map_err(unknown_link)?))
}

#[derive(Deserialize, IntoParams)]
pub struct SuggestQuery {
    /// Where the member lives now.
    pub division_code: Option<String>,
    pub home_org_code: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
    pub address: Option<String>,
}

/// Organizations that suit the member, best first, with the reasons.
#[utoipa::path(get, path = "/api/v1/checkin-suggestions", tag = "checkin", security(()), params(SuggestQuery),
    responses((status = 200, body = Vec<SuggestedOrg>)))]
pub async fn suggestions(
    State(state): State<AppState>,
    Query(q): Query<SuggestQuery>,
) -> Result<axum::Json<Vec<SuggestedOrg>>, ApiError> {
    let body = CheckinBody {
        division_code: q.division_code.unwrap_or_default(),
        home_org_code: q.home_org_code.unwrap_or_default(),
        employer: q.employer.unwrap_or_default(),
        occupation: q.occupation.unwrap_or_default(),
        address: q.address.unwrap_or_default(),
        ..Default::default()
    };
    Ok(axum::Json(suggestions_for(&state.store, &body).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct OrgFind {
    /// At least two characters of a name, code or division code.
    pub q: Option<String>,
}

/// A home organization as the public may find it.
#[derive(Serialize, ToSchema)]
pub struct OrgBrief {
    pub code: String,
    pub name: String,
    pub division_code: String,
}

/// Finds an organization by name, code or division, to name one's home organization.
#[utoipa::path(get, path = "/api/v1/checkin-orgs", tag = "checkin", security(()), params(OrgFind),
    responses((status = 200, body = Vec<OrgBrief>)))]
pub async fn find_orgs(
    State(state): State<AppState>,
    Query(q): Query<OrgFind>,
) -> Result<axum::Json<Vec<OrgBrief>>, ApiError> {
    let found = state.store.public(Client::default()).find_orgs(q.q.as_deref().unwrap_or(""), 10).await?;
    Ok(axum::Json(
        found.into_iter().map(|o| OrgBrief { code: o.code, name: o.name, division_code: o.division_code }).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    pub phone: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    /// Seconds before another code can be sent to this phone.
    pub resend_after_seconds: i64,
}

/// Sends a one-time code to a mobile phone, at most once a minute per phone.
#[utoipa::path(post, path = "/api/v1/checkin/{kind}/{code}/code", tag = "checkin", security(()),
    params(("kind" = String, Path), ("code" = String, Path)), request_body = CodeRequest,
    responses((status = 202, body = CodeSent), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn request_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    lang: crate::web::PageLang,
    Path((kind, code)): Path<(String, String)>,
    Json(req): Json<CodeRequest>,
) -> Result<(StatusCode, axum::Json<CodeSent>), ApiError> {
    let kind = link_kind(&kind)?;
    let client = Client { address: client };
    state.store.public(client.clone()).checkin_target(kind, &code).await.map_err(unknown_link)?;
    let wait = send_code(&state, client, lang.0, req.phone.as_deref().unwrap_or("")).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(CodeSent { resend_after_seconds: wait })))
}

/// A self-service check-in. The answer never says whether the ID number was known.
#[utoipa::path(post, path = "/api/v1/checkin/{kind}/{code}", tag = "checkin", security(()),
    params(("kind" = String, Path), ("code" = String, Path)), request_body = CheckinBody,
    responses((status = 201, body = CheckinReceipt), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path((kind, code)): Path<(String, String)>,
    Json(body): Json<CheckinBody>,
) -> Result<(StatusCode, axum::Json<CheckinReceipt>), ApiError> {
    let kind = link_kind(&kind)?;
    let public = state.store.public(Client { address: client });
    // An unknown link answers 404 before the body's errors; a good body reads the link
    // in the same read transaction as the rest of the check-in.
    let (c, key, otp) = match body.validate(true) {
        Ok(v) => v,
        Err(e) => {
            public.checkin_target(kind, &code).await.map_err(unknown_link)?;
            return Err(e);
        }
    };
    let hash = code_hash(&c.phone, otp.as_deref().unwrap_or_default());
    let receipt = public.checkin_at_link(kind, &code, &c, &key, &hash).await.map_err(unknown_link)?;
    Ok((StatusCode::CREATED, axum::Json(receipt)))
}

/// A check-in entered by staff at the counter of an organization or a service point.
#[utoipa::path(post, path = "/api/v1/counter/{kind}/{code}", tag = "checkin",
    params(("kind" = String, Path), ("code" = String, Path)), request_body = CheckinBody,
    responses((status = 201, body = CheckinReceipt), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn counter(
    State(state): State<AppState>,
    who: Authed,
    Path((kind, code)): Path<(String, String)>,
    Json(body): Json<CheckinBody>,
) -> Result<(StatusCode, axum::Json<CheckinReceipt>), ApiError> {
    let kind = link_kind(&kind)?;
    let g = who.guard(&state);
    g.counter_target(kind, &code).await.map_err(unknown_link)?;
    let (c, key, _) = body.validate(false)?;
    Ok((StatusCode::CREATED, axum::Json(g.checkin_at_counter(kind, &code, &c, &key).await?)))
}

/// Check-ins in the caller's view: of its members (outflow side), made to its
/// organizations (inflow side), or taken at its service point.
#[utoipa::path(get, path = "/api/v1/checkins", tag = "checkin", params(CheckinQuery),
    responses((status = 200, body = Page<CheckinRecord>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<CheckinQuery>,
) -> Result<axum::Json<Page<CheckinRecord>>, ApiError> {
    Ok(axum::Json(who.guard(&state).checkins(&q).await?))
}

#[utoipa::path(get, path = "/api/v1/checkins/{id}", tag = "checkin", params(("id" = i64, Path)),
    responses((status = 200, body = CheckinRecord), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
) -> Result<axum::Json<CheckinRecord>, ApiError> {
    Ok(axum::Json(who.guard(&state).checkin(id).await?))
}

/// A decision on a waiting check-in.
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(default)]
pub struct DecisionBody {
    /// The version read.
    pub version: Option<i64>,
    /// Confirm: an optional remark; for a home side outside the system, the verification letter's reference.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub note: String,
    /// Reject: why.
    #[serde(deserialize_with = "crate::extract::nullable")]
    pub reason: String,
}

/// Confirms: the outflow side recognises its member and the check-in joins the member's flow.
#[utoipa::path(post, path = "/api/v1/checkins/{id}/confirm", tag = "checkin", params(("id" = i64, Path)),
    request_body = DecisionBody,
    responses((status = 200, body = CheckinRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<DecisionBody>,
) -> Result<axum::Json<CheckinRecord>, ApiError> {
    let version = super::required_version(body.version)?;
    let note = Some(body.note.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::field("note", "too_long"));
    }
    Ok(axum::Json(who.guard(&state).checkin_confirm(id, version, note).await?))
}

/// Rejects a waiting check-in with a reason.
#[utoipa::path(post, path = "/api/v1/checkins/{id}/reject", tag = "checkin", params(("id" = i64, Path)),
    request_body = DecisionBody,
    responses((status = 200, body = CheckinRecord), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<DecisionBody>,
) -> Result<axum::Json<CheckinRecord>, ApiError> {
    let version = super::required_version(body.version)?;
    Ok(axum::Json(who.guard(&state).checkin_reject(id, version, &body.reason).await?))
}

/// The latest outgoing messages (SMS codes); system administrators only.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "system",
    responses((status = 200, body = Vec<OutboxMessage>), (status = 403, body = ErrorBody)))]
pub async fn outbox(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<OutboxMessage>>, ApiError> {
    Ok(axum::Json(who.guard(&state).outbox_recent(100).await?))
}
