//! The JSON API under `/api/v1`, documented by the OpenAPI document that utoipa
//! builds from these handlers (`/api/openapi.json`).

pub mod accounts;
pub mod agreements;
mod auth;
pub mod certificates;
pub mod checkin;
mod divisions;
pub mod flows;
pub mod members;
pub mod orgs;
pub mod points;
pub mod screening;
pub mod transfers;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorMarker};
use crate::i18n::Lang;
use crate::AppState;
pub use auth::ClientAddr;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kite API", description = "Mobile party member management: organizations, members, flows."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::reset_password))
        .routes(routes!(accounts::set_status))
        .routes(routes!(accounts::own_password))
        .routes(routes!(orgs::overview))
        .routes(routes!(orgs::roots, orgs::create))
        .routes(routes!(orgs::get, orgs::update))
        .routes(routes!(orgs::children))
        .routes(routes!(orgs::move_org))
        .routes(routes!(orgs::transfer_levels))
        .routes(routes!(orgs::search))
        .routes(routes!(members::list, members::create))
        .routes(routes!(members::get, members::update))
        .routes(routes!(members::flows, members::depart))
        .routes(routes!(members::audit))
        .routes(routes!(divisions::list))
        .routes(routes!(checkin::target, checkin::submit))
        .routes(routes!(checkin::request_code))
        .routes(routes!(checkin::suggestions))
        .routes(routes!(checkin::find_orgs))
        .routes(routes!(checkin::counter))
        .routes(routes!(checkin::list))
        .routes(routes!(checkin::get))
        .routes(routes!(checkin::confirm))
        .routes(routes!(checkin::reject))
        .routes(routes!(checkin::outbox))
        .routes(routes!(flows::list))
        .routes(routes!(flows::export))
        .routes(routes!(flows::get))
        .routes(routes!(flows::return_home))
        .routes(routes!(flows::evaluate))
        .routes(routes!(flows::member_evaluations))
        .routes(routes!(agreements::list, agreements::create))
        .routes(routes!(agreements::get, agreements::update))
        .routes(routes!(agreements::download, agreements::detach))
        .routes(routes!(agreements::partners))
        .routes(routes!(points::create))
        .routes(routes!(points::get, points::update))
        .routes(routes!(transfers::list, transfers::create))
        .routes(routes!(transfers::get))
        .routes(routes!(transfers::step))
        .routes(routes!(transfers::arrivals, transfers::arrive))
        .routes(routes!(certificates::list, certificates::create))
        .routes(routes!(certificates::get))
        .routes(routes!(certificates::step))
        .routes(routes!(certificates::draft))
        .routes(routes!(certificates::for_member))
        .routes(routes!(certificates::check))
        .routes(routes!(certificates::verify))
        .routes(routes!(screening::list, screening::create))
        .routes(routes!(screening::get))
        .routes(routes!(screening::matches))
        .routes(routes!(screening::decide))
        .routes(routes!(screening::close))
        .routes(routes!(screening::roster))
        .routes(routes!(screening::run))
        .routes(routes!(screening::cancel))
        .routes(routes!(screening::candidates))
        .routes(routes!(screening::found))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(screening::upload))
                .layer(axum::extract::DefaultBodyLimit::max(screening::UPLOAD_BODY_LIMIT)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(certificates::photo, certificates::set_photo))
                .layer(axum::extract::DefaultBodyLimit::max(certificates::UPLOAD_BODY_LIMIT)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(agreements::attach))
                .layer(axum::extract::DefaultBodyLimit::max(agreements::UPLOAD_BODY_LIMIT)),
        )
}

/// Updates must send the version they read (optimistic concurrency).
fn required_version(v: Option<i64>) -> Result<i64, crate::error::ApiError> {
    v.ok_or_else(|| crate::error::ApiError::field("version", "required"))
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "The server and its database answer"), (status = 500, body = ErrorBody)))]
async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// Re-renders API errors in the language the request asked for.
pub async fn language_layer(req: Request, next: Next) -> Response {
    let jar = axum_extra::extract::CookieJar::from_headers(req.headers());
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let lang = Lang::pick(jar.get("lang").map(|c| c.value()), accept.as_deref());
    let res = next.run(req).await;
    if lang == Lang::Zh {
        return res;
    }
    match res.extensions().get::<ErrorMarker>().cloned() {
        Some(ErrorMarker(e)) => (e.status(), axum::Json(e.body(lang))).into_response(),
        None => res,
    }
}
