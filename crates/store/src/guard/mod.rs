//! The guarded API: every read and change a user makes goes through here.
//!
//! Each method asks the domain policy ([`kite_domain::access::decide`]) before it
//! touches a row, filters lists by [`Principal::member_scope`], writes an audit record
//! in the same transaction as each change, and records refusals in the audit log.

mod accounts;
mod agreements;
mod certificates;
mod checkins;
mod dual;
mod network;
mod screening;
mod transfers;

pub use certificates::{
    CertificateDraft, CertificateView, StepInput as CertificateStepInput,
    MAX_PHOTO_BYTES as MAX_CERTIFICATE_PHOTO_BYTES,
};
pub use dual::{FlowView, MAX_EXPORT_ROWS};
pub use network::PointView;
pub use screening::CampaignView;
pub use transfers::{StepInput as TransferStepInput, TransferRequest, TransferView};

use kite_domain::access::{decide, Action, Decision, Target};
use kite_domain::member::MemberFields;
use kite_domain::org::OrgFields;
use kite_domain::{OrgStatus, Principal, Role};
use serde::Serialize;

use crate::audit::{self, AuditEntry, Record};
use crate::{flows, members, orgs, service_points};

use crate::{
    Departure, Flow, Member, MemberQuery, MemberSummary, NewOrg, Org, Overview, Page, ServicePoint, Store, StoreError,
    Tx,
};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<String>,
}

pub struct Guard<'a> {
    store: &'a Store,
    who: Principal,
    client: Client,
}

fn snapshot<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

impl<'a> Guard<'a> {
    pub(crate) fn new(store: &'a Store, who: Principal, client: Client) -> Self {
        Self { store, who, client }
    }

    pub fn principal(&self) -> &Principal {
        &self.who
    }

    fn record<'r>(&'r self, action: &'r str, outcome: &'r str, ttype: &'r str, tid: String) -> Record<'r> {
        Record {
            user_id: Some(self.who.user_id),
            username: Some(&self.who.username),
            client: self.client.address.as_deref(),
            action,
            outcome,
            target_type: ttype,
            target_id: tid,
            before: None,
            after: None,
        }
    }

    /// Decides; on refusal writes the audit record (in its own transaction, since the
    /// caller's is abandoned) and returns the error to answer with.
    async fn check(&self, action: Action, target: Target<'_>, ttype: &str, tid: &str) -> Result<(), StoreError> {
        match decide(&self.who, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny { hide } => {
                self.audit_denial(action.code(), ttype, tid).await?;
                Err(if hide { StoreError::NotFound } else { StoreError::Forbidden })
            }
        }
    }

    /// Writes a refusal in its own transaction, since the caller's is abandoned.
    async fn audit_denial(&self, action: &str, ttype: &str, tid: &str) -> Result<(), StoreError> {
        let mut tx = self.store.side_write().await?;
        audit::write(&mut tx, self.record(action, "denied", ttype, tid.to_string())).await?;
        tx.commit().await
    }

    async fn org_in(&self, tx: &mut Tx, code: &str, action: Action) -> Result<Org, StoreError> {
        let o = orgs::by_code(tx, code).await?.ok_or(StoreError::NotFound)?;
        self.check(action, Target { org_path: &o.path, member_id: None }, "org", &o.code).await?;
        Ok(o)
    }

    // ---- organizations ----

    pub async fn org(&self, code: &str) -> Result<Org, StoreError> {
        self.org_for(code, Action::ReadOrg).await
    }

    /// The organization, if the caller may take `action` on it: forms ask before they
    /// are shown, so that no one fills in a form that cannot be saved.
    pub async fn org_for(&self, code: &str, action: Action) -> Result<Org, StoreError> {
        let mut tx = self.store.read().await?;
        self.org_in(&mut tx, code, action).await
    }

    /// Children of `code`, or the top of what the caller may see: the roots for a
    /// system administrator, the caller's own organization for everyone else.
    pub async fn org_children(&self, code: Option<&str>) -> Result<Vec<Org>, StoreError> {
        let mut tx = self.store.read().await?;
        match code {
            Some(code) => {
                let o = self.org_in(&mut tx, code, Action::ReadOrg).await?;
                orgs::children(&mut tx, Some(o.id)).await
            }
            None => match self.who.org_root() {
                None => orgs::children(&mut tx, None).await,
                Some(path) => {
                    let top = orgs::search(&mut tx, Some(path), "", 1).await?;
                    Ok(top.into_iter().filter(|o| o.path == path).collect())
                }
            },
        }
    }

    /// The chain from the caller's visible top down to `code` (for breadcrumbs).
    pub async fn org_ancestors(&self, code: &str) -> Result<Vec<Org>, StoreError> {
        let mut tx = self.store.read().await?;
        let o = self.org_in(&mut tx, code, Action::ReadOrg).await?;
        let mut chain = Vec::new();
        for id in kite_domain::org::ids(&o.path) {
            if let Some(a) = orgs::by_id(&mut tx, id).await? {
                if decide(&self.who, Action::ReadOrg, Target { org_path: &a.path, member_id: None }) == Decision::Allow
                {
                    chain.push(a);
                }
            }
        }
        Ok(chain)
    }

    /// Organizations whose name or code contains `q`, within the caller's view.
    pub async fn org_search(&self, q: &str, limit: i64) -> Result<Vec<Org>, StoreError> {
        let mut tx = self.store.read().await?;
        orgs::search(&mut tx, self.who.org_root(), q.trim(), limit.clamp(1, 100)).await
    }

    pub async fn org_create(
        &self,
        parent_code: Option<&str>,
        code: &str,
        fields: OrgFields,
    ) -> Result<Org, StoreError> {
        let mut tx = self.store.write().await?;
        match parent_code {
            Some(p) => {
                let parent =
                    orgs::by_code(&mut tx, p).await?.ok_or(StoreError::invalid("parent_code", "org.parent.unknown"))?;
                self.check(Action::WriteOrg, Target { org_path: &parent.path, member_id: None }, "org", p).await?;
            }
            None if self.who.role == Role::Admin => {}
            None => {
                self.check(Action::WriteOrg, Target { org_path: "", member_id: None }, "org", code).await?;
            }
        }
        let new = NewOrg { code: code.trim().to_string(), parent_code: parent_code.map(str::to_string), fields };
        let o = orgs::insert(&mut tx, &new).await?;
        let mut r = self.record("org.create", "ok", "org", o.code.clone());
        r.after = snapshot(&o);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(o)
    }

    pub async fn org_update(
        &self,
        code: &str,
        fields: OrgFields,
        status: OrgStatus,
        version: i64,
    ) -> Result<Org, StoreError> {
        let mut tx = self.store.write().await?;
        let before = self.org_in(&mut tx, code, Action::WriteOrg).await?;
        let after = orgs::update(&mut tx, before.id, &fields, status, version).await?;
        let mut r = self.record("org.update", "ok", "org", code.to_string());
        let (b, a) = audit::diff(
            &serde_json::to_value(&before).unwrap_or_default(),
            &serde_json::to_value(&after).unwrap_or_default(),
        );
        (r.before, r.after) = (Some(b), Some(a));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Whether transfers of the organization's members need a second approval above it.
    pub async fn org_set_transfer_levels(&self, code: &str, two: bool, version: i64) -> Result<Org, StoreError> {
        let mut tx = self.store.write().await?;
        let before = self.org_in(&mut tx, code, Action::WriteOrg).await?;
        let after = orgs::set_transfer_levels(&mut tx, before.id, two, version).await?;
        let mut r = self.record("org.transfer_levels", "ok", "org", code.to_string());
        r.before = Some(serde_json::json!({ "transfer_two_levels": before.transfer_two_levels }));
        r.after = Some(serde_json::json!({ "transfer_two_levels": after.transfer_two_levels }));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn org_move(&self, code: &str, new_parent: &str, version: i64) -> Result<Org, StoreError> {
        let mut tx = self.store.write().await?;
        let o = self.org_in(&mut tx, code, Action::MoveOrg).await?;
        let parent = orgs::by_code(&mut tx, new_parent)
            .await?
            .ok_or(StoreError::invalid("parent_code", "org.parent.unknown"))?;
        self.check(Action::WriteOrg, Target { org_path: &parent.path, member_id: None }, "org", new_parent).await?;
        let after = orgs::move_to(&mut tx, &o, &parent, version).await?;
        let mut r = self.record("org.move", "ok", "org", code.to_string());
        r.before = Some(serde_json::json!({ "parent_code": o.parent_code }));
        r.after = Some(serde_json::json!({ "parent_code": after.parent_code }));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The service points run by organizations of `code`'s subtree.
    pub async fn service_points(&self, code: &str) -> Result<Vec<ServicePoint>, StoreError> {
        let mut tx = self.store.read().await?;
        let o = self.org_in(&mut tx, code, Action::ReadOrg).await?;
        service_points::in_subtree(&mut tx, &o.path).await
    }

    /// Counts for `code`'s subtree, or for everything the caller may see.
    pub async fn overview(&self, code: Option<&str>) -> Result<Overview, StoreError> {
        let mut tx = self.store.read().await?;
        match code {
            Some(c) => {
                let o = self.org_in(&mut tx, c, Action::ReadOrg).await?;
                orgs::overview(&mut tx, Some(&o.path)).await
            }
            None if self.who.role == Role::Member => Ok(Overview::default()),
            None => orgs::overview(&mut tx, self.who.org_root()).await,
        }
    }

    // ---- members ----

    async fn member_in(&self, tx: &mut Tx, id: i64, action: Action) -> Result<Member, StoreError> {
        let Some(m) = members::by_id(tx, id).await? else {
            return Err(StoreError::NotFound);
        };
        self.check(action, Target { org_path: &m.org_path, member_id: Some(m.id) }, "member", &id.to_string()).await?;
        Ok(m)
    }

    /// The member's detail with the full identity number; the view is audited.
    pub async fn member(&self, id: i64) -> Result<Member, StoreError> {
        let m = {
            let mut tx = self.store.read().await?;
            self.member_in(&mut tx, id, Action::ViewFullId).await?
        };
        let mut tx = self.store.write().await?;
        audit::write(&mut tx, self.record(Action::ViewFullId.code(), "ok", "member", id.to_string())).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// The member's record with the identity number masked, if the caller may take
    /// `action` on it: for forms and pages that do not show the number (not a view of it).
    pub async fn member_for(&self, id: i64, action: Action) -> Result<Member, StoreError> {
        let mut tx = self.store.read().await?;
        let mut m = self.member_in(&mut tx, id, action).await?;
        m.id_number = kite_domain::id_number::mask(&m.id_number);
        Ok(m)
    }

    /// Refuses, and audits, an action the caller's role never has: for pages that offer
    /// it before a target is chosen (a new member's form).
    pub async fn require(&self, action: Action) -> Result<(), StoreError> {
        if self.who.role.may(action) {
            return Ok(());
        }
        self.audit_denial(action.code(), "page", "").await?;
        Err(StoreError::Forbidden)
    }

    /// Refuses, and audits, a top-level organization for anyone but a system administrator.
    pub async fn require_root_create(&self) -> Result<(), StoreError> {
        self.check(Action::WriteOrg, Target { org_path: "", member_id: None }, "org", "").await
    }

    pub async fn members(&self, q: &MemberQuery) -> Result<Page<MemberSummary>, StoreError> {
        let mut tx = self.store.read().await?;
        let within = match q.org.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(code) => Some(orgs::by_code(&mut tx, code).await?.ok_or(StoreError::invalid("org", "org.unknown"))?),
            None => None,
        };
        members::search(&mut tx, &self.who.member_scope(), q, within.as_ref()).await
    }

    pub async fn member_create(&self, f: MemberFields) -> Result<Member, StoreError> {
        self.require(Action::WriteMember).await?;
        let mut tx = self.store.write().await?;
        let (m, _) = self.insert_member(&mut tx, &f).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// Registers a member whose record arrives from an organization outside the system,
    /// with the letter they brought, in one transaction (系统外转入). A member who once
    /// left the system for outside comes back on their old record, brought up to date.
    pub async fn member_arrive(
        &self,
        f: MemberFields,
        a: &kite_domain::transfer::Arrival,
    ) -> Result<(Member, crate::ArrivalRecord), StoreError> {
        self.require(Action::WriteMember).await?;
        self.require(Action::Transfer).await?;
        let mut tx = self.store.write().await?;
        // Refusals first: on SQLite nothing may be written before an audited refusal.
        let org = orgs::by_code(&mut tx, &f.org_code).await?.ok_or(StoreError::invalid("org_code", "org.unknown"))?;
        self.check(Action::Transfer, Target { org_path: &org.path, member_id: None }, "org", &org.code)
            .await
            .map_err(org_out_of_scope)?;
        let earlier = match members::id_by_id_number(&mut tx, f.id_number.as_str()).await? {
            Some(id) => members::by_id(&mut tx, id).await?,
            None => None,
        };
        let (m, org) = match earlier {
            Some(old) if old.mobility == kite_domain::Mobility::TransferredOut => {
                self.check(Action::WriteMember, Target { org_path: &org.path, member_id: None }, "org", &org.code)
                    .await
                    .map_err(org_out_of_scope)?;
                if org.status != OrgStatus::Active {
                    return Err(StoreError::invalid("org_code", "org.dissolved"));
                }
                members::readmit(&mut tx, old.id, &f, &org).await?;
                let m = members::by_id(&mut tx, old.id).await?.ok_or(StoreError::NotFound)?;
                let mut r = self.record("member.readmit", "ok", "member", m.id.to_string());
                (r.before, r.after) = (snapshot(&old), snapshot(&m));
                audit::write(&mut tx, r).await?;
                (m, org)
            }
            _ => self.insert_member(&mut tx, &f).await?,
        };
        let arrival = crate::transfers::insert_arrival(&mut tx, m.id, &org, a, self.who.user_id).await?;
        let mut r = self.record("transfer.arrival", "ok", "member", m.id.to_string());
        r.after = snapshot(&arrival);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok((m, arrival))
    }

    /// A new member in the organization the fields name, audited, in the caller's transaction.
    async fn insert_member(&self, tx: &mut Tx, f: &MemberFields) -> Result<(Member, Org), StoreError> {
        let org = orgs::by_code(tx, &f.org_code).await?.ok_or(StoreError::invalid("org_code", "org.unknown"))?;
        self.check(Action::WriteMember, Target { org_path: &org.path, member_id: None }, "org", &org.code)
            .await
            .map_err(org_out_of_scope)?;
        if org.status != OrgStatus::Active {
            return Err(StoreError::invalid("org_code", "org.dissolved"));
        }
        let id = members::insert(tx, f, &org).await?;
        let m = members::by_id(tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("member.create", "ok", "member", id.to_string());
        r.after = snapshot(&m);
        audit::write(tx, r).await?;
        Ok((m, org))
    }

    pub async fn member_update(&self, id: i64, f: MemberFields, version: i64) -> Result<Member, StoreError> {
        let mut tx = self.store.write().await?;
        let before = self.member_in(&mut tx, id, Action::WriteMember).await?;
        let org = orgs::by_code(&mut tx, &f.org_code).await?.ok_or(StoreError::invalid("org_code", "org.unknown"))?;
        // A record transferred out of the system comes back only by an arrival.
        if org.path != before.org_path && before.mobility == kite_domain::Mobility::TransferredOut {
            return Err(StoreError::Conflict("member.transferred_out"));
        }
        if org.path != before.org_path {
            // An open flow belongs to the formal organization: it ends (return) or moves
            // with the record (transfer) before the record moves.
            if before.mobility.is_away() {
                return Err(StoreError::invalid("org_code", "member.away_org_change"));
            }
            // Moving the record elsewhere needs the right on the destination too.
            self.check(Action::WriteMember, Target { org_path: &org.path, member_id: Some(id) }, "org", &org.code)
                .await
                .map_err(org_out_of_scope)?;
            if org.status != OrgStatus::Active {
                return Err(StoreError::invalid("org_code", "org.dissolved"));
            }
        }
        let old_org = orgs::by_code(&mut tx, &before.org_code).await?.ok_or(StoreError::NotFound)?;
        members::update(&mut tx, &before, &f, &org, old_org.id, version).await?;
        let after = members::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("member.update", "ok", "member", id.to_string());
        let (b, a) = audit::diff(
            &serde_json::to_value(&before).unwrap_or_default(),
            &serde_json::to_value(&after).unwrap_or_default(),
        );
        (r.before, r.after) = (Some(b), Some(a));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn member_flows(&self, id: i64) -> Result<Vec<Flow>, StoreError> {
        let mut tx = self.store.read().await?;
        self.member_in(&mut tx, id, Action::ReadMember).await?;
        flows::by_member(&mut tx, id).await
    }

    /// Records a departure for a member of the caller's subtree.
    pub async fn record_departure(&self, id: i64, d: Departure) -> Result<Flow, StoreError> {
        let mut tx = self.store.write().await?;
        let m = self.member_in(&mut tx, id, Action::WriteMember).await?;
        if m.mobility == kite_domain::Mobility::TransferredOut {
            return Err(StoreError::Conflict("member.transferred_out"));
        }
        let org = orgs::by_code(&mut tx, &m.org_code).await?.ok_or(StoreError::NotFound)?;
        if d.left_on < m.joined_on {
            return Err(StoreError::invalid("left_on", "flow.left_before_joining"));
        }
        let flow_id = flows::record_departure(&mut tx, &m, org.id, &d, self.who.user_id).await?;
        let flow =
            flows::by_member(&mut tx, id).await?.into_iter().find(|f| f.id == flow_id).ok_or(StoreError::NotFound)?;
        let mut r = self.record("flow.depart", "ok", "member", id.to_string());
        r.after = snapshot(&flow);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(flow)
    }

    /// The audit trail of one member, for those who may change the record.
    pub async fn member_audit(&self, id: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let mut tx = self.store.read().await?;
        self.member_in(&mut tx, id, Action::WriteMember).await?;
        audit::for_target(&mut tx, "member", &id.to_string(), 100).await
    }

    /// The latest outgoing messages; system administrators only (codes are secrets).
    pub async fn outbox_recent(&self, limit: i64) -> Result<Vec<crate::OutboxMessage>, StoreError> {
        if self.who.role != Role::Admin {
            self.audit_denial("outbox.read", "outbox", "").await?;
            return Err(StoreError::Forbidden);
        }
        self.store.outbox().recent(limit).await
    }

    /// The latest audit records; system administrators only.
    pub async fn audit_recent(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        if self.who.role != Role::Admin {
            self.audit_denial("audit.read", "audit", "").await?;
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.store.read().await?;
        audit::recent(&mut tx, limit.clamp(1, 500)).await
    }
}

/// A member's organization outside the caller's scope is a wrong value in the form, not a
/// hidden record: organizations are not secret (the refusal is audited all the same).
fn org_out_of_scope(e: StoreError) -> StoreError {
    match e {
        StoreError::NotFound | StoreError::Forbidden => StoreError::invalid("org_code", "org.out_of_scope"),
        other => other,
    }
}
