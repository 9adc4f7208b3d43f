//! Accounts, sessions and login throttling.

use chrono::{DateTime, Utc};
use kite_domain::{Principal, Role};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Record};
use crate::{exec, on, Store, StoreError};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub org_code: Option<String>,
    pub member_id: Option<i64>,
    pub display_name: Option<String>,
    pub disabled: bool,
    /// Set by an administrator's password (a new account, a reset): to be changed first.
    pub must_change_password: bool,
    /// The service point a staff account works at.
    pub service_point_code: Option<String>,
    #[serde(skip)]
    pub service_point_id: Option<i64>,
    #[serde(skip)]
    pub org_path: Option<String>,
}

impl User {
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            username: self.username.clone(),
            role: self.role,
            org_path: self.org_path.clone(),
            member_id: self.member_id,
            service_point_id: self.service_point_id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    org_code: Option<String>,
    org_path: Option<String>,
    member_id: Option<i64>,
    display_name: Option<String>,
    disabled: bool,
    must_change_password: bool,
    service_point_id: Option<i64>,
    service_point_code: Option<String>,
    password_hash: String,
}

impl UserRow {
    fn split(self) -> Result<(User, String), StoreError> {
        let role = Role::from_code(&self.role)
            .ok_or_else(|| StoreError::Config(format!("unexpected role {:?} in the database", self.role)))?;
        Ok((
            User {
                id: self.id,
                username: self.username,
                role,
                org_code: self.org_code,
                org_path: self.org_path,
                member_id: self.member_id,
                display_name: self.display_name,
                disabled: self.disabled,
                must_change_password: self.must_change_password,
                service_point_id: self.service_point_id,
                service_point_code: self.service_point_code,
            },
            self.password_hash,
        ))
    }
}

const SELECT_USER: &str = "SELECT u.id, u.username, u.role, o.code AS org_code, o.path AS org_path, u.member_id, \
     u.display_name, u.disabled, u.must_change_password, u.service_point_id, sp.code AS service_point_code, u.password_hash \
     FROM users u LEFT JOIN organizations o ON o.id = u.org_id LEFT JOIN service_points sp ON sp.id = u.service_point_id";

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub org_code: Option<String>,
    pub member_id: Option<i64>,
    pub display_name: Option<String>,
    /// Staff of a service point: the point's code; the organization defaults to the point's.
    pub service_point_code: Option<String>,
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user: User,
    pub csrf_token: String,
    pub kind: String,
    pub expires_at: DateTime<Utc>,
}

/// A session to open: a hash of its token, its kind (`browser`, `api`) and CSRF token.
pub struct NewSessionRow<'a> {
    pub token_hash: &'a str,
    pub kind: &'a str,
    pub csrf_token: &'a str,
}

pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

impl Accounts<'_> {
    /// Creates an account; `actor` names who did it for the audit log (e.g. `cli`).
    pub async fn create_user(&self, new: &NewUser, actor: &str) -> Result<User, StoreError> {
        let mut tx = self.store.write().await?;
        let user = insert_user(&mut tx, new).await?;
        audit::write(
            &mut tx,
            Record {
                user_id: None,
                username: Some(actor),
                client: None,
                action: "user.create",
                outcome: "ok",
                target_type: "user",
                target_id: user.id.to_string(),
                before: None,
                after: serde_json::to_value(&user).ok(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user and their password hash, for login.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<(User, String)>, StoreError> {
        if !crate::storable(username) {
            return Ok(None);
        }
        let mut tx = self.store.read().await?;
        let sql = format!("{SELECT_USER} WHERE u.username = $1");
        let row: Option<UserRow> = on!(&mut tx, c => sqlx::query_as(&sql).bind(username).fetch_optional(c).await)?;
        row.map(UserRow::split).transpose()
    }

    pub async fn create_session(
        &self,
        user_id: i64,
        token_hash: &str,
        kind: &str,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        let now = Utc::now();
        // Expired sessions are swept whenever a new one starts.
        exec!(&mut tx, sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now))?;
        exec!(
            &mut tx,
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, kind, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(kind)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
        )?;
        tx.commit().await
    }

    /// Opens a session if the account still has `password_hash` and is enabled (a login
    /// checked the password before; a reset or disable since wins). False if not opened.
    pub async fn create_session_if(
        &self,
        user_id: i64,
        password_hash: &str,
        s: &NewSessionRow<'_>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.write().await?;
        let now = Utc::now();
        exec!(&mut tx, sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now))?;
        let n = exec!(
            &mut tx,
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, kind, csrf_token, created_at, expires_at) \
                 SELECT $1, id, $2, $3, $4, $5 FROM users WHERE id = $6 AND password_hash = $7 AND disabled = $8"
            )
            .bind(s.token_hash)
            .bind(s.kind)
            .bind(s.csrf_token)
            .bind(now)
            .bind(expires_at)
            .bind(user_id)
            .bind(password_hash)
            .bind(false)
        )?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The live session for a token hash, if any and if its user is enabled.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionInfo>, StoreError> {
        let mut tx = self.store.read().await?;
        let row: Option<(i64, String, String, DateTime<Utc>)> = on!(&mut tx, c => sqlx::query_as(
            "SELECT user_id, csrf_token, kind, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash).bind(Utc::now()).fetch_optional(c).await)?;
        let Some((user_id, csrf_token, kind, expires_at)) = row else { return Ok(None) };
        let Some((user, _)) = by_id(&mut tx, user_id).await? else { return Ok(None) };
        if user.disabled {
            return Ok(None);
        }
        Ok(Some(SessionInfo { user, csrf_token, kind, expires_at }))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        exec!(&mut tx, sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash))?;
        tx.commit().await
    }

    /// When the key is locked out, the time the lock ends.
    pub async fn locked_until(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.store.read().await?;
        let until: Option<Option<DateTime<Utc>>> = on!(&mut tx, c => sqlx::query_scalar(
            "SELECT locked_until FROM login_throttle WHERE key = $1").bind(key).fetch_optional(c).await)?;
        Ok(until.flatten().filter(|t| *t > Utc::now()))
    }

    /// Counts a failed login for each key and locks those past the threshold.
    pub async fn record_failure(&self, keys: &[(String, i64)]) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        let now = Utc::now();
        let window_start = now - kite_domain::access::FAILURE_WINDOW;
        for (key, threshold) in keys {
            exec!(
                &mut tx,
                sqlx::query(
                    "DELETE FROM login_throttle WHERE key = $1 AND updated_at < $2 \
                 AND (locked_until IS NULL OR locked_until < $3)"
                )
                .bind(key)
                .bind(window_start)
                .bind(now)
            )?;
            let failures: i64 = on!(&mut tx, c => sqlx::query_scalar(
                "INSERT INTO login_throttle (key, failures, locked_until, updated_at) VALUES ($1, 1, NULL, $2) \
                 ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures + 1, updated_at = $2 \
                 RETURNING failures")
                .bind(key).bind(now).fetch_one(c).await)?;
            if let Some(lock) = kite_domain::access::lockout(failures, *threshold) {
                exec!(
                    &mut tx,
                    sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE key = $2")
                        .bind(now + lock)
                        .bind(key)
                )?;
            }
        }
        tx.commit().await
    }

    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        exec!(&mut tx, sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key))?;
        tx.commit().await
    }

    /// Audits a login attempt (success, failure, lock-out).
    pub async fn audit_login(
        &self,
        user: Option<&User>,
        username: &str,
        client: Option<&str>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        audit::write(
            &mut tx,
            Record {
                user_id: user.map(|u| u.id),
                username: Some(username),
                client,
                action: "auth.login",
                outcome,
                target_type: "user",
                target_id: user.map(|u| u.id.to_string()).unwrap_or_default(),
                before: None,
                after: None,
            },
        )
        .await?;
        tx.commit().await
    }
}

/// What an account names must fit its role: a member's account belongs where the member
/// is (no organization or service point of its own); other accounts to no member.
pub(crate) fn check_shape(new: &NewUser) -> Result<(), StoreError> {
    if new.role == Role::Member && (new.org_code.is_some() || new.service_point_code.is_some()) {
        return Err(StoreError::invalid("org", "user.member.org"));
    }
    if new.role != Role::Member && new.member_id.is_some() {
        return Err(StoreError::invalid("member_id", "user.member.role"));
    }
    Ok(())
}

/// Checks and inserts an account (the caller audits it).
pub(crate) async fn insert_user(tx: &mut crate::Tx, new: &NewUser) -> Result<User, StoreError> {
    let name = new.username.trim();
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c))
    {
        return Err(StoreError::invalid("username", "user.username.invalid"));
    }
    check_shape(new)?;
    let point = match &new.service_point_code {
        Some(_) if new.role != Role::ServiceStaff => {
            return Err(StoreError::invalid("service_point", "user.service_point.role"));
        }
        Some(code) => Some(
            crate::service_points::by_code(&mut *tx, code)
                .await?
                .ok_or(StoreError::invalid("service_point", "service_point.unknown"))?,
        ),
        None => None,
    };
    let org_code = match (&new.org_code, &point) {
        (Some(o), Some(p)) if *o != p.org_code => {
            return Err(StoreError::invalid("service_point", "user.service_point.other_org"))
        }
        (None, Some(p)) => Some(p.org_code.clone()),
        (o, _) => o.clone(),
    };
    let org_id = match (&org_code, new.role.needs_org()) {
        (Some(code), _) => {
            Some(crate::orgs::by_code(&mut *tx, code).await?.ok_or(StoreError::invalid("org", "org.unknown"))?.id)
        }
        (None, true) => return Err(StoreError::invalid("org", "user.org.required")),
        (None, false) => None,
    };
    if new.role == Role::Member && new.member_id.is_none() {
        return Err(StoreError::invalid("member_id", "required"));
    }
    if let Some(id) = new.member_id {
        if crate::members::by_id(&mut *tx, id).await?.is_none() {
            return Err(StoreError::invalid("member_id", "member.unknown"));
        }
    }
    let now = Utc::now();
    let res = on!(&mut *tx, c => sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, org_id, member_id, display_name, disabled, \
         service_point_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id")
        .bind(name).bind(&new.password_hash).bind(new.role.code()).bind(org_id).bind(new.member_id)
        .bind(&new.display_name).bind(false).bind(point.as_ref().map(|p| p.id)).bind(now).fetch_one(c).await);
    let id: i64 = match res.map_err(StoreError::from) {
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("user.username.duplicate")),
        r => r?,
    };
    let (user, _) = by_id(tx, id).await?.ok_or(StoreError::NotFound)?;
    Ok(user)
}

/// The accounts whose place (a member's account: the member's organization) is in
/// `[lo, hi)`, by user name, at most `limit`.
pub(crate) async fn in_range(tx: &mut crate::Tx, lo: &str, hi: &str, limit: i64) -> Result<Vec<User>, StoreError> {
    let place = "(CASE WHEN u.role = 'member' THEN COALESCE(mo.path, '') ELSE COALESCE(o.path, '') END)";
    let sql = format!(
        "{SELECT_USER} LEFT JOIN members m ON m.id = u.member_id LEFT JOIN organizations mo ON mo.id = m.org_id \
         WHERE {place} >= $1 AND {place} < $2 ORDER BY u.username LIMIT {limit}"
    );
    let rows: Vec<UserRow> = on!(tx, c => sqlx::query_as(&sql).bind(lo).bind(hi).fetch_all(c).await)?;
    rows.into_iter().map(|r| r.split().map(|(u, _)| u)).collect()
}

pub(crate) async fn by_id(tx: &mut crate::Tx, id: i64) -> Result<Option<(User, String)>, StoreError> {
    let sql = format!("{SELECT_USER} WHERE u.id = $1");
    let row: Option<UserRow> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    row.map(UserRow::split).transpose()
}
