//! Accounts: the staff and member accounts of a subtree, managed by its organization
//! administrators (the system administrator's only by another system administrator).
//! Every change is audited, and a reset or disabled account's sessions end at once.

use chrono::Utc;
use kite_domain::access::{Action, Target};
use kite_domain::Role;

use super::{snapshot, Guard};
use crate::accounts::{self, NewUser, User};
use crate::{audit, exec, members, on, orgs, service_points, StoreError, Tx};

/// Accounts listed at most.
const MAX_ACCOUNTS: i64 = 500;

impl Guard<'_> {
    /// The organization path an account belongs to: its organization's, or for a member's
    /// account the member's; none for the system administrator's.
    async fn account_path(&self, tx: &mut Tx, user: &User) -> Result<String, StoreError> {
        if let Some(path) = &user.org_path {
            return Ok(path.clone());
        }
        match user.member_id {
            Some(id) => Ok(members::by_id(tx, id).await?.map(|m| m.org_path).unwrap_or_default()),
            None => Ok(String::new()),
        }
    }

    /// An account the caller may manage: in its subtree, and of a role it may grant.
    async fn managed(&self, tx: &mut Tx, id: i64) -> Result<User, StoreError> {
        let (user, _) = accounts::by_id(tx, id).await?.ok_or(StoreError::NotFound)?;
        let path = self.account_path(tx, &user).await?;
        self.check(Action::ManageAccounts, Target { org_path: &path, member_id: None }, "user", &id.to_string())
            .await?;
        if !self.who.role.may_grant(user.role) {
            self.audit_denial(Action::ManageAccounts.code(), "user", &id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        Ok(user)
    }

    /// The accounts of the caller's subtree (all for the system administrator), by name.
    pub async fn accounts(&self) -> Result<Vec<User>, StoreError> {
        if !self.who.role.may(Action::ManageAccounts) {
            self.audit_denial(Action::ManageAccounts.code(), "user", "list").await?;
            return Err(StoreError::Forbidden);
        }
        let (lo, hi) = kite_domain::org::scope_range(self.who.org_root());
        let mut tx = self.store.read().await?;
        let ids: Vec<i64> = on!(&mut tx, c => sqlx::query_scalar(&format!(
            "SELECT u.id FROM users u LEFT JOIN organizations o ON o.id = u.org_id \
             LEFT JOIN members m ON m.id = u.member_id LEFT JOIN organizations mo ON mo.id = m.org_id \
             WHERE COALESCE(o.path, mo.path, '') >= $1 AND COALESCE(o.path, mo.path, '') < $2 \
             ORDER BY u.username LIMIT {MAX_ACCOUNTS}"))
            .bind(&lo).bind(&hi).fetch_all(c).await)?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((user, _)) = accounts::by_id(&mut tx, id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Creates an account in the caller's subtree, of a role the caller may grant.
    pub async fn account_create(&self, new: &NewUser) -> Result<User, StoreError> {
        if !self.who.role.may_grant(new.role) {
            self.audit_denial(Action::ManageAccounts.code(), "user", &new.username).await?;
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.store.write().await?;
        // Decided on the new account's place, before anything is written.
        let path = match (&new.org_code, &new.service_point_code, new.member_id) {
            (Some(code), _, _) => orgs::by_code(&mut tx, code).await?.map(|o| o.path),
            (None, Some(point), _) => match service_points::by_code(&mut tx, point).await? {
                Some(p) => orgs::by_code(&mut tx, &p.org_code).await?.map(|o| o.path),
                None => None,
            },
            (None, None, Some(member)) => members::by_id(&mut tx, member).await?.map(|m| m.org_path),
            (None, None, None) => None,
        };
        if let Some(path) = &path {
            self.check(Action::ManageAccounts, Target { org_path: path, member_id: None }, "user", &new.username)
                .await?;
        } else if self.who.role != Role::Admin {
            // No place (or an unknown one, which the insert reports): the administrator's.
            self.check(Action::ManageAccounts, Target { org_path: "", member_id: None }, "user", &new.username).await?;
        }
        let user = accounts::insert_user(&mut tx, new).await?;
        let mut r = self.record("user.create", "ok", "user", user.id.to_string());
        r.after = snapshot(&user);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a new password on an account; its sessions end.
    pub async fn account_set_password(&self, id: i64, password_hash: &str) -> Result<User, StoreError> {
        let mut tx = self.store.write().await?;
        let user = self.managed(&mut tx, id).await?;
        set_password(&mut tx, id, password_hash, None).await?;
        audit::write(&mut tx, self.record("user.password_reset", "ok", "user", id.to_string())).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Disables or enables an account (not the caller's own); a disabled account's
    /// sessions end and it cannot log in.
    pub async fn account_set_disabled(&self, id: i64, disabled: bool) -> Result<User, StoreError> {
        if id == self.who.user_id {
            return Err(StoreError::Conflict("user.self"));
        }
        let mut tx = self.store.write().await?;
        let before = self.managed(&mut tx, id).await?;
        exec!(
            &mut tx,
            sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
                .bind(disabled)
                .bind(Utc::now())
                .bind(id)
        )?;
        if disabled {
            exec!(&mut tx, sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id))?;
        }
        let (after, _) = accounts::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let action = if disabled { "user.disable" } else { "user.enable" };
        let mut r = self.record(action, "ok", "user", id.to_string());
        (r.before, r.after) = (snapshot(&before), snapshot(&after));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the caller's own password (checked by the caller against the current one);
    /// the caller's other sessions end, the one at `keep` (a token hash) stays.
    pub async fn own_password(&self, password_hash: &str, keep: &str) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        let id = self.who.user_id;
        set_password(&mut tx, id, password_hash, Some(keep)).await?;
        audit::write(&mut tx, self.record("user.password_change", "ok", "user", id.to_string())).await?;
        tx.commit().await
    }
}

/// A new password hash; the account's sessions end but `keep` (a reset must shut out
/// whoever had it).
async fn set_password(tx: &mut Tx, id: i64, password_hash: &str, keep: Option<&str>) -> Result<(), StoreError> {
    let n = exec!(
        &mut *tx,
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(Utc::now())
            .bind(id)
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    exec!(
        tx,
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2").bind(id).bind(keep.unwrap_or(""))
    )?;
    Ok(())
}
