//! Accounts: organization administrators create the accounts of their subtree, reset
//! passwords and disable accounts; everyone changes their own password.

use axum::extract::State;
use axum::http::StatusCode;
use kite_domain::{FieldErrors, Role};
use kite_store::{NewUser, User};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{hash_password, verify_password, Authed};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::AppState;

/// Passwords have at least this many characters.
pub const MIN_PASSWORD: usize = 8;

#[derive(Deserialize, ToSchema, Default, Clone)]
#[serde(default)]
pub struct AccountBody {
    pub username: String,
    pub password: String,
    /// `org_admin`, `secretary`, `service_staff`, `member` (or `admin`, by an administrator).
    pub role: String,
    /// The organization the account is bound to (staff roles).
    pub org_code: Option<String>,
    /// The service point a `service_staff` account works at.
    pub service_point_code: Option<String>,
    /// The member a `member` account belongs to.
    pub member_id: Option<i64>,
    pub display_name: Option<String>,
}

fn password_ok(e: &mut FieldErrors, field: &'static str, password: &str) {
    if password.chars().count() < MIN_PASSWORD {
        e.add(field, "user.password.too_short");
    }
}

/// An argon2 hash, off the request threads (it is slow on purpose).
async fn hashed(password: &str) -> Result<String, ApiError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)
}

impl AccountBody {
    /// The account to create, with its password hashed.
    pub async fn new_user(&self) -> Result<NewUser, ApiError> {
        let mut e = FieldErrors::default();
        let role = Role::from_code(self.role.trim());
        if role.is_none() {
            e.add("role", "invalid");
        }
        password_ok(&mut e, "password", &self.password);
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let display_name = kite_domain::validation::text(
            &mut e,
            "display_name",
            self.display_name.as_deref().unwrap_or(""),
            false,
            50,
        );
        match role {
            Some(role) if e.is_empty() => Ok(NewUser {
                username: self.username.trim().to_string(),
                password_hash: hashed(&self.password).await?,
                role,
                org_code: text(&self.org_code),
                member_id: self.member_id,
                display_name,
                service_point_code: text(&self.service_point_code),
            }),
            _ => Err(ApiError::Invalid(e)),
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct PasswordBody {
    pub password: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct StatusBody {
    pub disabled: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(default)]
pub struct OwnPasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// The accounts of the caller's subtree, by user name.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, who: Authed) -> Result<axum::Json<Vec<User>>, ApiError> {
    Ok(axum::Json(who.guard(&state).accounts().await?))
}

/// Creates an account in the caller's subtree.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = AccountBody,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<AccountBody>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let new = body.new_user().await?;
    Ok((StatusCode::CREATED, axum::Json(who.guard(&state).account_create(&new).await?)))
}

/// Sets a new password on an account the caller manages; its sessions end.
#[utoipa::path(put, path = "/api/v1/accounts/{id}/password", tag = "accounts", params(("id" = i64, Path)),
    request_body = PasswordBody,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<PasswordBody>,
) -> Result<axum::Json<User>, ApiError> {
    Ok(axum::Json(set_password(&state, &who, id, &body.password).await?))
}

pub async fn set_password(state: &AppState, who: &Authed, id: i64, password: &str) -> Result<User, ApiError> {
    let mut e = FieldErrors::default();
    password_ok(&mut e, "password", password);
    if !e.is_empty() {
        return Err(ApiError::Invalid(e));
    }
    Ok(who.guard(state).account_set_password(id, &hashed(password).await?).await?)
}

/// Disables or enables an account the caller manages (not the caller's own).
#[utoipa::path(put, path = "/api/v1/accounts/{id}/status", tag = "accounts", params(("id" = i64, Path)),
    request_body = StatusBody,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn set_status(
    State(state): State<AppState>,
    who: Authed,
    Path(id): Path<i64>,
    Json(body): Json<StatusBody>,
) -> Result<axum::Json<User>, ApiError> {
    Ok(axum::Json(who.guard(&state).account_set_disabled(id, body.disabled).await?))
}

/// Changes the caller's own password; the caller's other sessions end.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "accounts", request_body = OwnPasswordBody,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn own_password(
    State(state): State<AppState>,
    who: Authed,
    Json(body): Json<OwnPasswordBody>,
) -> Result<StatusCode, ApiError> {
    change_own(&state, &who, &body.current_password, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn change_own(state: &AppState, who: &Authed, current: &str, new: &str) -> Result<(), ApiError> {
    let mut e = FieldErrors::default();
    // Guesses at the current password count with the login's for the account.
    let accounts = state.store.accounts();
    let key = format!("user:{}", who.user.username);
    if accounts.locked_until(&key).await?.is_some() {
        return Err(ApiError::Throttled("throttled"));
    }
    let stored = accounts.user_by_username(&who.user.username).await?;
    let (current, hash) = (current.to_string(), stored.map(|(_, h)| h).unwrap_or_default());
    let right =
        tokio::task::spawn_blocking(move || verify_password(&current, &hash)).await.map_err(|_| ApiError::Internal)?;
    if !right {
        accounts.record_failure(&[(key, crate::auth::USER_THRESHOLD)]).await?;
        who.guard(state).own_password_refused().await?;
        e.add("current_password", "user.password.wrong");
        return Err(ApiError::Invalid(e));
    }
    accounts.clear_failures(&key).await?;
    password_ok(&mut e, "new_password", new);
    if !e.is_empty() {
        return Err(ApiError::Invalid(e));
    }
    Ok(who.guard(state).own_password(&hashed(new).await?, &who.token_hash).await?)
}
