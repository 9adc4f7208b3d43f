//! The organization tree: browse, create, edit (including dissolving) and move.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use kite_domain::{Action, OrgKind, OrgLevel, OrgStatus};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, form_version, render, Form, PageLang, Path, Query, Viewer};
use crate::api::orgs::OrgBody;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(roots))
        .route("/orgs/new", get(new_form).post(create))
        .route("/orgs/{code}", get(page))
        .route("/orgs/{code}/edit", get(edit_form).post(update))
        .route("/orgs/{code}/move", get(move_form).post(move_submit))
        .route("/orgs/{code}/transfer-approval", axum::routing::post(transfer_levels))
}

async fn roots(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    match who.guard(&state).org_children(None).await {
        Ok(children) => {
            render(&state, "orgs.html", lang, Some(&who), context! { children, ancestors => Vec::<()>::new() })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
) -> Response {
    let g = who.guard(&state);
    let result = async {
        let org = g.org(&code).await?;
        let children = g.org_children(Some(&code)).await?;
        let ancestors = g.org_ancestors(&code).await?;
        let counts = g.overview(Some(&code)).await?;
        let points = g.service_points(&code).await?;
        let partners = g.org_partners(&code).await?;
        Ok::<_, kite_store::StoreError>((org, children, ancestors, counts, points, partners))
    }
    .await;
    match result {
        Ok((org, children, ancestors, counts, points, partners)) => {
            let ancestors: Vec<_> = ancestors.into_iter().filter(|a| a.code != org.code).collect();
            let ctx = context! { org, children, ancestors, counts, points, partners };
            render(&state, "orgs.html", lang, Some(&who), ctx)
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct OrgForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(flatten)]
    body: OrgBody,
}

/// What the organization form needs besides the values: the choices and where it posts.
fn form_context(lang: Lang, v: &OrgBody, creating: bool, parent_name: Option<String>) -> Value {
    let action = if creating { "/orgs/new".to_string() } else { format!("/orgs/{}/edit", v.code) };
    let title =
        if creating { i18n::t(lang, "orgs.new") } else { format!("{} · {}", i18n::t(lang, "orgs.edit"), v.name) };
    context! {
        title, action, creating, parent_name,
        v => Value::from_serialize(v),
        levels => OrgLevel::ALL.iter().map(|l| l.code()).collect::<Vec<_>>(),
        kinds => OrgKind::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
        statuses => OrgStatus::ALL.iter().map(|s| s.code()).collect::<Vec<_>>(),
    }
}

#[derive(Deserialize)]
struct NewQuery {
    parent: Option<String>,
}

async fn new_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<NewQuery>,
) -> Response {
    let parent = match q.parent.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => match who.guard(&state).org_for(p, Action::WriteOrg).await {
            Ok(o) => Some(o),
            Err(e) => return error_page(&state, lang, &who, e.into()),
        },
        None => match who.guard(&state).require_root_create().await {
            Ok(()) => None,
            Err(e) => return error_page(&state, lang, &who, e.into()),
        },
    };
    // A child starts as a branch in its parent's place, the most common case.
    let v = OrgBody {
        parent_code: parent.as_ref().map(|p| p.code.clone()),
        level: OrgLevel::Branch.code().into(),
        kind: OrgKind::Ordinary.code().into(),
        division_code: parent.as_ref().map(|p| p.division_code.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let ctx = form_context(lang, &v, true, parent.map(|p| p.name));
    render(&state, "org_form.html", lang, Some(&who), ctx)
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<OrgForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    let parent = f.body.parent_code.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let result = async {
        let fields = f.body.new_fields()?;
        Ok::<_, ApiError>(who.guard(&state).org_create(parent, &f.body.code, fields).await?)
    }
    .await;
    match result {
        Ok(o) => Redirect::to(&format!("/orgs/{}", o.code)).into_response(),
        Err(e) => {
            // Looked up again only for a form shown again, so a refusal is audited once.
            let parent_name = match &e {
                ApiError::Invalid(_) | ApiError::Conflict(_) => parent_name(&state, &who, parent).await,
                _ => None,
            };
            form_again(&state, lang, &who, "org_form.html", form_context(lang, &f.body, true, parent_name), e)
        }
    }
}

async fn parent_name(state: &AppState, who: &Authed, code: Option<&str>) -> Option<String> {
    who.guard(state).org(code?).await.ok().map(|o| o.name)
}

async fn edit_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
) -> Response {
    match who.guard(&state).org_for(&code, Action::WriteOrg).await {
        Ok(o) => {
            let ctx = form_context(lang, &OrgBody::from_org(&o), false, None);
            render(&state, "org_form.html", lang, Some(&who), ctx)
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn update(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
    Form(mut f): Form<OrgForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    f.body.code = code.clone();
    f.body.version = f.version.trim().parse().ok();
    let result = async {
        let fields = f.body.fields()?;
        let status = OrgStatus::from_code(f.body.status.as_deref().unwrap_or("active"))
            .ok_or_else(|| ApiError::field("status", "invalid"))?;
        let version = f.body.version.ok_or(ApiError::Conflict("stale_version"))?;
        Ok::<_, ApiError>(who.guard(&state).org_update(&code, fields, status, version).await?)
    }
    .await;
    match result {
        Ok(o) => Redirect::to(&format!("/orgs/{}", o.code)).into_response(),
        Err(e) => form_again(&state, lang, &who, "org_form.html", form_context(lang, &f.body, false, None), e),
    }
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    parent_code: String,
}

async fn move_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
) -> Response {
    match who.guard(&state).org_for(&code, Action::MoveOrg).await {
        Ok(org) => {
            let parent_code = org.parent_code.clone().unwrap_or_default();
            render(&state, "org_move.html", lang, Some(&who), context! { org, parent_code })
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn move_submit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
    Form(f): Form<MoveForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    let g = who.guard(&state);
    let org = match g.org(&code).await {
        Ok(o) => o,
        Err(e) => return error_page(&state, lang, &who, e.into()),
    };
    let result = async {
        let version = form_version(&f.version)?;
        Ok::<_, ApiError>(g.org_move(&code, f.parent_code.trim(), version).await?)
    }
    .await;
    match result {
        Ok(o) => Redirect::to(&format!("/orgs/{}", o.code)).into_response(),
        Err(e) => {
            let ctx = context! { org, parent_code => f.parent_code };
            form_again(&state, lang, &who, "org_move.html", ctx, e)
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LevelsForm {
    csrf: String,
    version: String,
    /// Present ("on") when the box is ticked.
    two_levels: Option<String>,
}

/// The organization page's switch for two-level transfer approval.
async fn transfer_levels(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(code): Path<String>,
    Form(f): Form<LevelsForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let version = form_version(&f.version)?;
        Ok::<_, ApiError>(who.guard(&state).org_set_transfer_levels(&code, f.two_levels.is_some(), version).await?)
    }
    .await;
    match result {
        Ok(o) => Redirect::to(&format!("/orgs/{}", o.code)).into_response(),
        Err(e) => error_page(&state, lang, &who, e),
    }
}
