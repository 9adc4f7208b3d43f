//! Accounts: the staff and member accounts of a subtree, managed by its organization
//! administrators (the system administrator's only by another system administrator).
//! Every change is audited, and a reset or disabled account's sessions end at once.

use chrono::Utc;
use kite_domain::access::{Action, Target};
use kite_domain::Role;

use super::{snapshot, Guard};
use crate::accounts::{self, NewUser, User};
use crate::{audit, exec, members, orgs, service_points, StoreError, Tx};

/// Accounts listed at most.
const MAX_ACCOUNTS: i64 = 500;

impl Guard<'_> {
    /// The organization path an account belongs to: its organization's, or for a member's
    /// account the member's; none for the system administrator's.
    async fn account_path(&self, tx: &mut Tx, user: &User) -> Result<String, StoreError> {
        match (user.role, user.member_id) {
            // Wherever the member is now (a transfer moves the account with the record).
            (Role::Member, Some(id)) => Ok(members::by_id(tx, id).await?.map(|m| m.org_path).unwrap_or_default()),
            _ => Ok(user.org_path.clone().unwrap_or_default()),
        }
    }

    /// Whether the caller may manage an account of `role` at `path` (checked by `decide`
    /// for the subtree already): an organization administrator manages the administrators
    /// of organizations below its own, not its peers at its own organization.
    async fn may_manage(&self, role: Role, path: &str, target: &str) -> Result<(), StoreError> {
        let peer =
            self.who.role == Role::OrgAdmin && role == Role::OrgAdmin && self.who.org_path.as_deref() == Some(path);
        if !self.who.role.may_grant(role) || peer {
            self.audit_denial(Action::ManageAccounts.code(), "user", target).await?;
            return Err(StoreError::Forbidden);
        }
        Ok(())
    }

    /// An account the caller may manage: in its subtree, and of a role it may grant.
    async fn managed(&self, tx: &mut Tx, id: i64) -> Result<User, StoreError> {
        let (user, _) = accounts::by_id(tx, id).await?.ok_or(StoreError::NotFound)?;
        let path = self.account_path(tx, &user).await?;
        self.check(Action::ManageAccounts, Target { org_path: &path, member_id: None }, "user", &id.to_string())
            .await?;
        self.may_manage(user.role, &path, &id.to_string()).await?;
        Ok(user)
    }

    /// The accounts of the caller's subtree (all for the system administrator), by name.
    pub async fn accounts(&self) -> Result<Vec<User>, StoreError> {
        if !self.who.role.may(Action::ManageAccounts) {
            self.audit_denial(Action::ManageAccounts.code(), "user", "list").await?;
            return Err(StoreError::Forbidden);
        }
        let (lo, hi) = kite_domain::org::scope_range(self.who.org_root());
        accounts::in_range(&mut self.store.read().await?, &lo, &hi, MAX_ACCOUNTS).await
    }

    /// Creates an account in the caller's subtree, of a role the caller may grant.
    pub async fn account_create(&self, new: &NewUser) -> Result<User, StoreError> {
        accounts::check_shape(new)?;
        let mut tx = self.store.write().await?;
        // Decided on every place the account names, before anything is written.
        let mut places = Vec::new();
        if let Some(code) = &new.org_code {
            places.push(orgs::by_code(&mut tx, code).await?.ok_or(StoreError::invalid("org", "org.unknown"))?.path);
        }
        if let Some(code) = &new.service_point_code {
            let p = service_points::by_code(&mut tx, code)
                .await?
                .ok_or(StoreError::invalid("service_point", "service_point.unknown"))?;
            places.push(orgs::by_code(&mut tx, &p.org_code).await?.map(|o| o.path).unwrap_or_default());
        }
        if let Some(id) = new.member_id {
            // An unknown member and one elsewhere are answered alike.
            places.push(members::by_id(&mut tx, id).await?.map(|m| m.org_path).unwrap_or_default());
        }
        if places.is_empty() {
            places.push(String::new());
        }
        for path in &places {
            self.check(Action::ManageAccounts, Target { org_path: path, member_id: None }, "user", &new.username)
                .await?;
            self.may_manage(new.role, path, &new.username).await?;
        }
        let user = accounts::insert_user(&mut tx, new).await?;
        // The administrator knows the password: the account changes it first.
        exec!(
            &mut tx,
            sqlx::query("UPDATE users SET must_change_password = $1 WHERE id = $2").bind(true).bind(user.id)
        )?;
        let (user, _) = accounts::by_id(&mut tx, user.id).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("user.create", "ok", "user", user.id.to_string());
        r.after = snapshot(&user);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a new password on an account; its sessions end.
    pub async fn account_set_password(&self, id: i64, password_hash: &str) -> Result<User, StoreError> {
        // One's own goes through [`Self::own_password`], with the current one.
        if id == self.who.user_id {
            return Err(StoreError::Conflict("user.self"));
        }
        let mut tx = self.store.write().await?;
        self.managed(&mut tx, id).await?;
        set_password(&mut tx, id, password_hash, None).await?;
        let (user, _) = accounts::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
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

impl Guard<'_> {
    /// A wrong current password given to change one's own: audited.
    pub async fn own_password_refused(&self) -> Result<(), StoreError> {
        let mut tx = self.store.side_write().await?;
        let r = self.record("user.password_change", "failed", "user", self.who.user_id.to_string());
        audit::write(&mut tx, r).await?;
        tx.commit().await
    }
}

/// A new password hash; the account's sessions end but `keep` (a reset must shut out
/// whoever had it).
/// Set by someone else (`keep` is `None`), it must be changed at the next login.
async fn set_password(tx: &mut Tx, id: i64, password_hash: &str, keep: Option<&str>) -> Result<(), StoreError> {
    let n = exec!(
        &mut *tx,
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4")
            .bind(password_hash)
            .bind(keep.is_none())
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
