//! Screening pages: the campaigns of the caller's region, starting one, and a campaign's
//! page with its rosters, the upload, the review of the matches and closing.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;

use super::session::CsrfForm;
use super::{error_page, render, settle, show, Form, PageLang, Path, Query, Viewer};
use crate::api::screening::{
    cancel_run, receive, start_run, store_upload, CampaignBody, DecisionBody, MatchQuery, UPLOAD_BODY_LIMIT,
};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/screening", get(list).post(create))
        .route("/screening/candidates", get(candidates))
        .route("/screening/{id}", get(detail))
        .route("/screening/{id}/rosters", post(upload).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .route("/screening/{id}/rosters/{roster_id}", get(roster))
        .route("/screening/{id}/rosters/{roster_id}/run", post(run))
        .route("/screening/{id}/rosters/{roster_id}/cancel", post(cancel))
        .route("/screening/{id}/matches/{match_id}", post(decide))
        .route("/screening/{id}/close", post(close))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CampaignForm {
    csrf: String,
    #[serde(flatten)]
    body: CampaignBody,
}

async fn list_page(state: &AppState, lang: Lang, who: &Authed, f: &CampaignBody, e: Option<ApiError>) -> Response {
    match who.guard(state).campaigns().await {
        Ok(items) => {
            let ctx = context! { items, f => Value::from_serialize(f) };
            show(state, lang, who, "screening.html", ctx, e)
        }
        Err(e) => error_page(state, lang, who, e.into()),
    }
}

async fn list(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    let today = crate::rules::today();
    let f = CampaignBody {
        org_code: who.user.org_code.clone().unwrap_or_default(),
        starts_on: today.to_string(),
        ends_on: (today + chrono::Months::new(1)).to_string(),
        ..Default::default()
    };
    list_page(&state, lang, &who, &f, None).await
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<CampaignForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let (c, place) = f.body.validate()?;
        Ok::<_, ApiError>(who.guard(&state).campaign_create(f.body.org_code.trim(), place, &c).await?)
    }
    .await;
    match result {
        Ok(c) => Redirect::to(&format!("/screening/{}", c.id)).into_response(),
        Err(e) => list_page(&state, lang, &who, &f.body, Some(e)).await,
    }
}

/// Matches per page on a campaign's page.
const PAGE_SIZE: i64 = 100;

/// The review list's filters and page, as in the address.
#[derive(Deserialize, Default, Clone, serde::Serialize)]
#[serde(default)]
struct ReviewQuery {
    open: Option<bool>,
    band: Option<String>,
    outcome: Option<String>,
    page: Option<i64>,
}

impl ReviewQuery {
    fn page(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 100_000)
    }

    fn filter(&self) -> Result<kite_store::MatchFilter, ApiError> {
        let q = MatchQuery {
            open: self.open,
            band: self.band.clone(),
            outcome: self.outcome.clone(),
            offset: Some((self.page() - 1) * PAGE_SIZE),
            limit: Some(PAGE_SIZE),
        };
        q.filter()
    }

    /// The query string to come back to (only the characters the filters use).
    fn encoded(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

/// A query string sent back by a form, kept only if it is one the review list writes.
fn safe_query(q: &str) -> &str {
    let ok = q.len() <= 200 && q.bytes().all(|b| b.is_ascii_alphanumeric() || b"_=&".contains(&b));
    if ok {
        q
    } else {
        ""
    }
}

async fn detail_page(
    state: &AppState,
    lang: Lang,
    who: &Authed,
    id: i64,
    q: &ReviewQuery,
    e: Option<ApiError>,
) -> Response {
    let g = who.guard(state);
    let mut q = q.clone();
    let result = loop {
        let filter = match q.filter() {
            Ok(f) => f,
            Err(e) => return error_page(state, lang, who, e),
        };
        let result = async {
            Ok::<_, kite_store::StoreError>((g.campaign(id).await?, g.campaign_match_page(id, &filter).await?))
        }
        .await;
        // Past the last page (its last match just decided): the last page.
        if let Ok((_, (total, matches))) = &result {
            let last = (total + PAGE_SIZE - 1) / PAGE_SIZE;
            if matches.is_empty() && q.page() > last && last > 0 {
                q.page = Some(last);
                continue;
            }
        }
        break result;
    };
    let q = &q;
    match result {
        Ok((v, (total, matches))) => {
            let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
            let here = q.encoded();
            let at = |page: i64| ReviewQuery { page: Some(page), ..q.clone() }.encoded();
            let (prev, next) = (q.page() > 1, q.page() < pages);
            let ctx = context! {
                v, c => &v.campaign, matches, total, q => Value::from_serialize(q), page => q.page(), pages, here,
                prev => prev.then(|| at(q.page() - 1)), next => next.then(|| at(q.page() + 1)),
            };
            show(state, lang, who, "screening_campaign.html", ctx, e)
        }
        Err(err) => error_page(state, lang, who, err.into()),
    }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Query(q): Query<ReviewQuery>,
) -> Response {
    detail_page(&state, lang, &who, id, &q, None).await
}

/// The outcome of a form on the campaign's page: back to it (with the review list's
/// filters in `query`), or the page with the message.
async fn back(state: &AppState, lang: Lang, who: &Authed, id: i64, query: &str, r: Result<(), ApiError>) -> Response {
    let query = safe_query(query);
    let sep = if query.is_empty() { "" } else { "?" };
    let to = format!("/screening/{id}{sep}{query}#match-list");
    settle(state, lang, who, r, &to, |e| {
        let q: ReviewQuery = serde_urlencoded::from_str(query).unwrap_or_default();
        async move { detail_page(state, lang, who, id, &q, Some(e)).await }
    })
    .await
}

/// Receives a roster and shows it for its columns to be checked before the run.
async fn upload(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        who.guard(&state).campaign_open(id).await?;
        let received = receive(form).await?;
        who.check_csrf(received.text("csrf").unwrap_or(""))?;
        let source = received.text("source").map(str::to_string);
        store_upload(&state, who.acting(), id, received, source).await
    }
    .await;
    match result {
        Ok(r) => Redirect::to(&format!("/screening/{id}/rosters/{}", r.roster.id)).into_response(),
        Err(e) => back(&state, lang, &who, id, "", Err(e)).await,
    }
}

/// What the mapping form offers for each column.
const FIELDS: &[&str] =
    &["name", "id_number", "gender", "birth_date", "phone", "employer", "address", "hukou_place", "ethnicity"];

async fn roster_page(
    state: &AppState,
    lang: Lang,
    who: &Authed,
    (id, roster_id): (i64, i64),
    e: Option<ApiError>,
) -> Response {
    let g = who.guard(state);
    let result = async {
        Ok::<_, kite_store::StoreError>((g.campaign(id).await?.campaign, g.campaign_roster(id, roster_id).await?))
    }
    .await;
    let (c, r) = match result {
        Ok(x) => x,
        Err(err) => return error_page(state, lang, who, err.into()),
    };
    let progress = state.runs.progress(roster_id);
    let preview = r.detected.as_ref().and_then(|d| d.get("preview")).cloned().unwrap_or_default();
    let width = preview.as_array().map_or(0, |rows| {
        rows.iter().filter_map(|row| row.get(1).and_then(|c| c.as_array()).map(Vec::len)).max().unwrap_or(0)
    });
    // The field each column feeds, by position.
    let mut fields = vec![String::new(); width];
    let mapping = r.mapping.clone().unwrap_or_default();
    for col in mapping.get("columns").and_then(|c| c.as_array()).into_iter().flatten() {
        let index = col.get("index").and_then(|i| i.as_u64()).unwrap_or(u64::MAX) as usize;
        if let (Some(slot), Some(f)) = (fields.get_mut(index), col.get("field").and_then(|f| f.as_str())) {
            *slot = f.to_string();
        }
    }
    let header_line = mapping.get("header_line").and_then(|h| h.as_u64()).unwrap_or(0);
    let ctx = context! {
        c, r, progress, preview, fields, header_line, choices => FIELDS,
        info => r.detected.as_ref().and_then(|d| d.get("info")).cloned(),
    };
    show(state, lang, who, "screening_roster.html", ctx, e)
}

async fn roster(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(ids): Path<(i64, i64)>,
) -> Response {
    roster_page(&state, lang, &who, ids, None).await
}

/// The mapping form: `header_line`, and `col_N` = the field column N feeds (empty: none).
#[derive(Deserialize, Default)]
#[serde(default)]
struct RunForm {
    csrf: String,
    header_line: String,
    #[serde(flatten)]
    columns: std::collections::HashMap<String, String>,
}

impl RunForm {
    fn mapping(&self) -> Result<kite_screen::import::ColumnMapping, ApiError> {
        let bad = || ApiError::field("mapping", "screening.mapping_invalid");
        let header_line = match self.header_line.trim() {
            "" => 0,
            s => s.parse().map_err(|_| bad())?,
        };
        let mut columns = Vec::new();
        for (key, value) in &self.columns {
            let Some(index) = key.strip_prefix("col_") else { continue };
            let index: usize = index.parse().map_err(|_| bad())?;
            if value.is_empty() {
                continue;
            }
            let field = serde_json::from_value(serde_json::Value::String(value.clone())).map_err(|_| bad())?;
            columns.push(kite_screen::import::Column { index, header: String::new(), field: Some(field) });
        }
        columns.sort_by_key(|c| c.index);
        Ok(kite_screen::import::ColumnMapping { header_line, columns })
    }
}

async fn run(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((id, roster_id)): Path<(i64, i64)>,
    Form(f): Form<RunForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        start_run(&state, &who, id, roster_id, Some(f.mapping()?)).await
    }
    .await;
    roster_back(&state, lang, &who, (id, roster_id), result.map(|_| ())).await
}

async fn cancel(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((id, roster_id)): Path<(i64, i64)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        cancel_run(&state, &who, id, roster_id).await.map(|_| ())
    }
    .await;
    roster_back(&state, lang, &who, (id, roster_id), result).await
}

/// The outcome of a form on a roster's page: back to it, or the page with the message.
async fn roster_back(state: &AppState, lang: Lang, who: &Authed, ids: (i64, i64), r: Result<(), ApiError>) -> Response {
    let to = format!("/screening/{}/rosters/{}", ids.0, ids.1);
    settle(state, lang, who, r, &to, |e| roster_page(state, lang, who, ids, Some(e))).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecisionForm {
    csrf: String,
    /// The review list's query string, to come back to.
    q: String,
    decision: String,
    version: String,
    note: String,
}

async fn decide(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path((id, match_id)): Path<(i64, i64)>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = super::form_version(&f.version)?;
        let body = DecisionBody { decision: f.decision.clone(), version, note: Some(f.note.clone()) };
        let (decision, note) = body.validate()?;
        who.guard(&state).campaign_decide(id, match_id, version, decision, note.as_deref()).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    back(&state, lang, &who, id, &f.q, result).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CloseForm {
    csrf: String,
    version: String,
}

async fn close(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<CloseForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let g = who.guard(&state);
        crate::screening::reap_stale(&state, &g, id).await?;
        g.campaign_close(id, super::form_version(&f.version)?).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    back(&state, lang, &who, id, "", result).await
}

/// Members accepted by campaigns as candidates for the caller's subtree to contact.
async fn candidates(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).screening_candidates().await {
        Ok(items) => render(&state, "screening_candidates.html", lang, Some(&who), context! { items }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
