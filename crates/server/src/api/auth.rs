use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use kite_store::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{self, Authed};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_in_seconds: i64,
    pub user: User,
}

/// Client address of the request (for throttling and audit).
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(auth::client_of(parts).address))
    }
}

/// Exchanges a user name and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/login", tag = "auth", security(()), request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    let s = auth::login(&state, &req.username, &req.password, client.as_deref(), "api").await?;
    Ok(axum::Json(LoginResponse { token: s.token, expires_in_seconds: auth::API_TOKEN.num_seconds(), user: s.user }))
}

/// Ends the session or token used for this request.
#[utoipa::path(post, path = "/api/v1/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, who: Authed) -> Result<StatusCode, ApiError> {
    state.store.accounts().delete_session(&who.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    /// Browser (cookie) sessions only: send it as the `x-csrf-token` header on calls
    /// that change something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(who: Authed) -> axum::Json<Me> {
    let csrf_token = who.by_cookie.then_some(who.csrf_token);
    axum::Json(Me { user: who.user, csrf_token })
}
