//! The service network: a point's page with its staff and the points under it, and the
//! point form for the administrators of the organization that runs it.

use kite_domain::access::{decide, Action, Decision, Target};
use kite_domain::service_point::{self, PointFields};
use kite_domain::{FieldErrors, OrgStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::service_points::{self, PointStaff};
use crate::{audit, orgs, NewServicePoint, ServicePoint, StoreError, Tx};

/// One point as its page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointView {
    pub point: ServicePoint,
    pub children: Vec<ServicePoint>,
    /// The accounts working at the point; only for those who may manage it.
    pub staff: Vec<PointStaff>,
    pub may_edit: bool,
}

impl Guard<'_> {
    async fn point_in(&self, tx: &mut Tx, code: &str, action: Action) -> Result<ServicePoint, StoreError> {
        let p = service_points::by_code(tx, code).await?.ok_or(StoreError::NotFound)?;
        // Staff see the point they work at, whatever organization runs it.
        if action == Action::ReadOrg && self.who.service_point_id == Some(p.id) {
            return Ok(p);
        }
        self.check(action, Target { org_path: &p.org_path, member_id: None }, "service_point", &p.code).await?;
        Ok(p)
    }

    fn may(&self, action: Action, path: &str) -> bool {
        decide(&self.who, action, Target { org_path: path, member_id: None }) == Decision::Allow
    }

    pub async fn service_point(&self, code: &str) -> Result<PointView, StoreError> {
        let mut tx = self.store.read().await?;
        let point = self.point_in(&mut tx, code, Action::ReadOrg).await?;
        let may_edit = self.may(Action::WriteOrg, &point.org_path);
        let staff = if may_edit { service_points::staff(&mut tx, point.id).await? } else { Vec::new() };
        let children = service_points::children(&mut tx, point.id).await?;
        Ok(PointView { point, children, staff, may_edit })
    }

    /// The point, if the caller may change it (for the edit form).
    pub async fn service_point_for_edit(&self, code: &str) -> Result<ServicePoint, StoreError> {
        let mut tx = self.store.read().await?;
        self.point_in(&mut tx, code, Action::WriteOrg).await
    }

    /// Finds the running organization (in the caller's subtree, active) and the parent
    /// point (of a higher level, not the point itself).
    async fn point_refs(
        &self,
        tx: &mut Tx,
        f: &PointFields,
        own_id: Option<i64>,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let mut e = FieldErrors::default();
        let org = match orgs::by_code(tx, &f.org_code).await? {
            None => {
                e.add("org_code", "org.unknown");
                None
            }
            Some(o) if !self.may(Action::WriteOrg, &o.path) => {
                e.add("org_code", "org.out_of_scope");
                None
            }
            Some(o) if o.status == OrgStatus::Dissolved => {
                e.add("org_code", "service_point.org_dissolved");
                None
            }
            Some(o) => Some(o.id),
        };
        let parent = match &f.parent_code {
            None => None,
            Some(code) => match service_points::by_code(tx, code).await? {
                None => {
                    e.add("parent_code", "service_point.parent.unknown");
                    None
                }
                Some(p) if Some(p.id) == own_id || !service_point::fits_under(p.level, f.level) => {
                    e.add("parent_code", "service_point.parent.level");
                    None
                }
                Some(p) => Some(p.id),
            },
        };
        match org {
            Some(org) if e.is_empty() => Ok((org, parent)),
            _ => Err(StoreError::Invalid(e)),
        }
    }

    fn new_point(code: &str, f: &PointFields) -> NewServicePoint {
        NewServicePoint {
            code: code.to_string(),
            parent_code: f.parent_code.clone(),
            name: f.name.clone(),
            level: f.level,
            org_code: f.org_code.clone(),
            division_code: f.division_code.clone(),
            address: f.address.clone(),
            hotline: f.hotline.clone(),
            opening_hours: f.opening_hours.clone(),
        }
    }

    /// Records a new point from validated fields ([`service_point::validate`] with `new`).
    pub async fn service_point_create(&self, f: &PointFields) -> Result<ServicePoint, StoreError> {
        self.require(Action::WriteOrg).await?;
        let code = f.code.as_str();
        let mut tx = self.store.write().await?;
        self.point_refs(&mut tx, f, None).await?;
        let id = service_points::insert(&mut tx, &Self::new_point(code, f)).await?;
        if !f.active {
            service_points::set_closed(&mut tx, id).await?;
        }
        let saved = service_points::by_code(&mut tx, code).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("service_point.create", "ok", "service_point", saved.code.clone());
        r.after = snapshot(&saved);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Changes a point at the version read; moving it to another organization needs the
    /// right to manage both.
    pub async fn service_point_update(
        &self,
        code: &str,
        f: &PointFields,
        version: i64,
    ) -> Result<ServicePoint, StoreError> {
        let mut tx = self.store.write().await?;
        let before = self.point_in(&mut tx, code, Action::WriteOrg).await?;
        if before.version != version {
            return Err(StoreError::Conflict("stale_version"));
        }
        let (org_id, parent_id) = self.point_refs(&mut tx, f, Some(before.id)).await?;
        service_points::update(&mut tx, before.id, version, &Self::new_point(code, f), org_id, parent_id, f.active)
            .await?;
        let after = service_points::by_code(&mut tx, code).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("service_point.update", "ok", "service_point", after.code.clone());
        r.before = snapshot(&before);
        r.after = snapshot(&after);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }
}
