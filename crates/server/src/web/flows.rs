//! The outflow and inflow list pages, one flow's page with the return and the
//! evaluation forms.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kite_domain::evaluation::Period;
use kite_domain::flow::Side;
use kite_domain::{FlowStatus, Rating};
use kite_store::{FlowEntry, FlowQuery, FlowView};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, form_version, next_page_link, render, Form, PageLang, Path, Query, Viewer};
use crate::api::flows::{side, EvaluationBody};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::export::flow_columns;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lists/{side}", get(list))
        .route("/flows/{id}", get(detail))
        .route("/flows/{id}/return", post(return_home))
        .route("/flows/{id}/evaluations", post(evaluate))
}

/// The filters of a list, in the order of the form (also the export's query).
fn filters(q: &FlowQuery) -> [(&'static str, &Option<String>); 7] {
    [
        ("org", &q.org),
        ("status", &q.status),
        ("division", &q.division),
        ("left_from", &q.left_from),
        ("left_to", &q.left_to),
        ("mobile", &q.mobile),
        ("unevaluated", &q.unevaluated),
    ]
}

/// Table rows with the same columns as the export, so the page and the file agree.
fn rows(side: Side, items: &[FlowEntry], lang: Lang) -> Vec<Value> {
    items
        .iter()
        .map(|e| {
            let cells: Vec<String> = flow_columns(side).iter().map(|(_, cell)| cell(e, lang)).collect();
            context! { id => e.id, cells }
        })
        .collect()
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(segment): Path<String>,
    Query(q): Query<FlowQuery>,
) -> Response {
    let side = match side(&segment) {
        Ok(s) => s,
        Err(e) => return error_page(&state, lang, &who, e),
    };
    let cycle = state.store.evaluation_cycle();
    let current = Period::containing(crate::rules::today(), cycle);
    let periods = [current.label(), current.previous().label()];
    let statuses: Vec<&str> = FlowStatus::ALL.iter().map(|s| s.code()).collect();
    let headers: Vec<&str> = flow_columns(side).iter().map(|(key, _)| *key).collect();
    let path = format!("/lists/{}", side.code());
    let export_link = next_page_link(&format!("/api/v1/lists/{}/export", side.code()), &filters(&q), None);
    let base = context! {
        side => side.code(), query => &q, statuses, periods, headers, export_link,
    };
    match who.guard(&state).flows(side, &q).await {
        Ok(page) => {
            let next_link = next_page_link(&path, &filters(&q), page.next_cursor.as_deref());
            let rows = rows(side, &page.items, lang);
            let ctx = context! { ..base, ..context! { rows, next_link, more => page.next_cursor.is_some() } };
            render(&state, "lists.html", lang, Some(&who), ctx)
        }
        // A bad filter is shown beside its field, with what was typed kept.
        Err(e) => form_again(&state, lang, &who, "lists.html", base, e.into()),
    }
}

fn detail_ctx(v: &FlowView) -> Value {
    let ratings: Vec<&str> = Rating::ALL.iter().map(|r| r.code()).collect();
    let current = v.evaluations.iter().find(|e| e.period == v.current_period);
    context! { v, ratings, current, today => crate::rules::today().to_string() }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).flow(id).await {
        Ok(v) => render(&state, "flow.html", lang, Some(&who), detail_ctx(&v)),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// A form on the flow's page failed: the page again with the message, or an error page.
async fn flow_again(state: &AppState, lang: Lang, who: &Authed, id: i64, e: ApiError) -> Response {
    match who.guard(state).flow(id).await {
        Ok(v) => form_again(state, lang, who, "flow.html", detail_ctx(&v), e),
        Err(_) => error_page(state, lang, who, e),
    }
}

#[derive(Deserialize)]
struct ReturnForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    returned_on: String,
    #[serde(default)]
    note: String,
}

async fn return_home(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<ReturnForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = form_version(&f.version)?;
        Ok::<_, ApiError>(who.guard(&state).flow_return(id, version, &f.returned_on, &f.note).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/flows/{id}")).into_response(),
        Err(e) => flow_again(&state, lang, &who, id, e).await,
    }
}

#[derive(Deserialize)]
struct EvaluationForm {
    #[serde(default)]
    csrf: String,
    /// Empty for a first evaluation of the period.
    #[serde(default)]
    version: String,
    #[serde(flatten)]
    body: EvaluationBody,
}

async fn evaluate(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<EvaluationForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = match f.version.trim() {
            "" => None,
            v => Some(form_version(v)?),
        };
        Ok::<_, ApiError>(who.guard(&state).evaluate(id, &f.body.input(), version).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/flows/{id}#evaluations")).into_response(),
        Err(e) => flow_again(&state, lang, &who, id, e).await,
    }
}
