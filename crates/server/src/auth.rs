//! Authentication: Argon2id passwords, session cookies and bearer tokens, CSRF,
//! and login throttling. Produces the [`Principal`] that the guarded store enforces.

use std::net::SocketAddr;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::CookieJar;
use base64::Engine;
use chrono::{TimeDelta, Utc};
use kite_domain::Principal;
use kite_store::{Client, Guard, NewSessionRow, User};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "kite_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const BROWSER_SESSION: TimeDelta = TimeDelta::hours(12);
pub const API_TOKEN: TimeDelta = TimeDelta::hours(24);
/// Failed logins before a user name, or a client address, is locked for a while.
pub(crate) const USER_THRESHOLD: i64 = 5;
const CLIENT_THRESHOLD: i64 = 20;

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A random secret (session token, CSRF token), URL-safe.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Only a hash of each token is stored, so a leaked table opens no session.
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A valid hash to verify against when the user does not exist, so that the answer
/// takes as long either way and does not reveal which user names exist.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a password").expect("hashing works"))
}

pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub user: User,
}

/// Longest user name kept from a login attempt (accounts have at most 64 characters).
const MAX_TYPED_NAME: usize = 128;

/// Checks credentials with throttling and audit; on success opens a session.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client: Option<&str>,
    kind: &str,
) -> Result<NewSession, ApiError> {
    let accounts = state.store.accounts();
    let typed = username.trim();
    // What was typed is kept for throttling and audit; bound it and drop NULs, which
    // PostgreSQL text cannot hold. Lookups use the name as typed, so a cleaned-up
    // name never matches an account it does not name.
    let username: String = typed.chars().filter(|c| *c != '\0').take(MAX_TYPED_NAME).collect();
    let username = username.as_str();
    let user_key = format!("user:{username}");
    let client_key = format!("client:{}", client.unwrap_or("-"));
    for key in [&user_key, &client_key] {
        if accounts.locked_until(key).await?.is_some() {
            accounts.audit_login(None, username, client, "throttled").await?;
            return Err(ApiError::Throttled("throttled"));
        }
    }
    let found = accounts.user_by_username(typed).await?;
    let ok = match &found {
        Some((u, hash)) => verify_password(password, hash) && !u.disabled,
        None => {
            verify_password(password, dummy_hash());
            false
        }
    };
    let (user, checked_hash) = match (ok, found) {
        (true, Some((u, hash))) => (u, hash),
        (_, found) => {
            accounts.record_failure(&[(user_key, USER_THRESHOLD), (client_key, CLIENT_THRESHOLD)]).await?;
            accounts.audit_login(found.as_ref().map(|(u, _)| u), username, client, "failed").await?;
            return Err(ApiError::Unauthorized("bad_credentials"));
        }
    };
    accounts.clear_failures(&user_key).await?;
    let token = random_token();
    let csrf_token = random_token();
    let ttl = if kind == "api" { API_TOKEN } else { BROWSER_SESSION };
    // Opened only if the password checked is still the account's (a reset meanwhile wins).
    let session = NewSessionRow { token_hash: &token_hash(&token), kind, csrf_token: &csrf_token };
    if !accounts.create_session_if(user.id, &checked_hash, &session, Utc::now() + ttl).await? {
        accounts.audit_login(Some(&user), username, client, "failed").await?;
        return Err(ApiError::Unauthorized("bad_credentials"));
    }
    accounts.audit_login(Some(&user), username, client, "ok").await?;
    Ok(NewSession { token, csrf_token, user })
}

/// The authenticated caller of a request.
pub struct Authed {
    pub user: User,
    pub principal: Principal,
    pub csrf_token: String,
    pub client: Client,
    /// True when authenticated by cookie (a browser): unsafe requests need the CSRF token.
    pub by_cookie: bool,
    pub token_hash: String,
}

impl Authed {
    pub fn guard<'a>(&self, state: &'a AppState) -> Guard<'a> {
        state.store.guard(self.principal.clone(), self.client.clone())
    }

    /// Who acts, for work that goes on after the request (a screening run or upload).
    pub fn acting(&self) -> (kite_domain::Principal, kite_store::Client) {
        (self.principal.clone(), self.client.clone())
    }

    /// Form posts carry the CSRF token as a field.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), ApiError> {
        if constant_time_eq(submitted.as_bytes(), self.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Csrf)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address as [`client_address`] found it, else the peer's.
pub fn client_of(parts: &Parts) -> Client {
    let address = match parts.extensions.get::<ClientIp>() {
        Some(ClientIp(ip)) => Some(ip.to_string()),
        None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string()),
    };
    Client { address }
}

/// The address a request came from, past the trusted reverse proxies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// Finds the client's address: the peer's, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not one (each proxy appends the address it saw, so
/// only the entries the trusted ones added can be believed).
pub async fn client_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip());
    if let Some(peer) = peer {
        let trusted = |ip: &std::net::IpAddr| state.trusted_proxies.contains(ip);
        let mut client = peer;
        if trusted(&peer) {
            let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
            let hops: Vec<std::net::IpAddr> =
                forwarded.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse().ok()).collect();
            for hop in hops.iter().rev() {
                client = *hop;
                if !trusted(hop) {
                    break;
                }
            }
        }
        req.extensions_mut().insert(ClientIp(client));
    }
    next.run(req).await
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .map(str::to_string);
        let jar = CookieJar::from_headers(&parts.headers);
        let (token, by_cookie) = match bearer {
            Some(t) => (t, false),
            None => match jar.get(SESSION_COOKIE) {
                Some(c) => (c.value().to_string(), true),
                None => return Err(ApiError::Unauthorized("unauthorized")),
            },
        };
        let hash = token_hash(&token);
        let info = state.store.accounts().session(&hash).await?.ok_or(ApiError::Unauthorized("unauthorized"))?;
        let authed = Authed {
            principal: info.user.principal(),
            user: info.user,
            csrf_token: info.csrf_token,
            client: client_of(parts),
            by_cookie,
            token_hash: hash,
        };
        // Browser-made API calls that change things must prove they come from our pages.
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let is_api = parts.uri.path().starts_with("/api/");
        if by_cookie && unsafe_method && is_api {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), authed.csrf_token.as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        // A password an administrator set is changed before anything else is done.
        if authed.user.must_change_password && !PASSWORD_CHANGE_PATHS.contains(&parts.uri.path()) {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(authed)
    }
}

/// What an account that must change its password may still reach.
const PASSWORD_CHANGE_PATHS: [&str; 5] =
    ["/me/password", "/logout", "/api/v1/me/password", "/api/v1/me", "/api/v1/logout"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_secret() {
        let h = hash_password("正确的密码").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("正确的密码", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
