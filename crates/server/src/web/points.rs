//! Service point pages: one point with its staff and the points under it, and the form.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use kite_domain::{Action, ServicePointLevel};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, form_version, render, Form, PageLang, Path, Query, Viewer};
use crate::api::points::PointBody;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/points/new", get(new_form).post(create))
        .route("/points/{code}", get(page))
        .route("/points/{code}/edit", get(edit_form).post(update))
}

async fn page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
) -> Response {
    match who.guard(&state).service_point(&code).await {
        Ok(v) => render(&state, "point.html", lang, Some(&who), context! { v }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct PointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(flatten)]
    body: PointBody,
}

fn form_ctx(v: &PointBody, creating: bool) -> Value {
    let levels: Vec<&str> = ServicePointLevel::ALL.iter().map(|l| l.code()).collect();
    context! { v, creating, levels, statuses => ["active", "closed"] }
}

#[derive(Deserialize)]
struct NewQuery {
    org: Option<String>,
    parent: Option<String>,
}

async fn new_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<NewQuery>,
) -> Response {
    let g = who.guard(&state);
    let org = match q.org.as_deref().filter(|o| !o.is_empty()).or(who.user.org_code.as_deref()) {
        Some(code) => g.org_for(code, Action::WriteOrg).await.map(Some),
        None => g.require(Action::WriteOrg).await.map(|_| None),
    };
    let org = match org {
        Ok(o) => o,
        Err(e) => return error_page(&state, lang, &who, e.into()),
    };
    // A new point starts in its organization's place, one level under the parent if any.
    let v = PointBody {
        org_code: org.as_ref().map(|o| o.code.clone()).unwrap_or_default(),
        division_code: org.as_ref().map(|o| o.division_code.clone()).unwrap_or_default(),
        parent_code: q.parent.clone().unwrap_or_default(),
        level: ServicePointLevel::Point.code().into(),
        ..Default::default()
    };
    render(&state, "point_form.html", lang, Some(&who), form_ctx(&v, true))
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<PointForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let fields = f.body.fields(true)?;
        Ok::<_, ApiError>(who.guard(&state).service_point_create(&fields).await?)
    }
    .await;
    match result {
        Ok(p) => Redirect::to(&format!("/points/{}", p.code)).into_response(),
        Err(e) => form_again(&state, lang, &who, "point_form.html", form_ctx(&f.body, true), e),
    }
}

async fn edit_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
) -> Response {
    match who.guard(&state).service_point_for_edit(&code).await {
        Ok(p) => render(&state, "point_form.html", lang, Some(&who), form_ctx(&PointBody::from_point(&p), false)),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn update(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
    Form(mut f): Form<PointForm>,
) -> Response {
    f.body.code = code.clone();
    f.body.version = f.version.trim().parse().ok();
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = form_version(&f.version)?;
        let fields = f.body.fields(false)?;
        Ok::<_, ApiError>(who.guard(&state).service_point_update(&code, &fields, version).await?)
    }
    .await;
    match result {
        Ok(p) => Redirect::to(&format!("/points/{}", p.code)).into_response(),
        Err(e) => form_again(&state, lang, &who, "point_form.html", form_ctx(&f.body, false), e),
    }
}
