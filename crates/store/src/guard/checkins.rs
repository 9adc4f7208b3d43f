//! Check-ins as staff handle them: at the counter, in the queues, and the decision.

use kite_domain::access::{decide, Action, Decision, Target};
use kite_domain::checkin::{Checkin, LinkKind};
use kite_domain::{CheckinChannel, CheckinStatus};

use super::Guard;
use crate::audit;
use crate::checkins::{self, Actor, CheckinQuery, CheckinRecord, CheckinTarget, Submission, Verdict};
use crate::{members, CheckinReceipt, Page, StoreError, Tx};

impl Guard<'_> {
    /// The organization or service point of a link, if the caller may take check-ins there.
    pub async fn counter_target(&self, kind: LinkKind, code: &str) -> Result<CheckinTarget, StoreError> {
        let target = {
            let mut tx = self.store.read().await?;
            checkins::target(&mut tx, kind, code).await?.ok_or(StoreError::NotFound)?
        };
        // Staff of a service point take check-ins at their point only.
        let at_own_point = match (self.who.service_point_id, target.point_id) {
            (Some(mine), Some(point)) => mine == point,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let allowed = at_own_point
            && decide(&self.who, Action::TakeCheckin, Target { org_path: &target.org_path, member_id: None })
                == Decision::Allow;
        if !allowed {
            self.audit_denial(Action::TakeCheckin.code(), kind.segment(), code).await?;
            return Err(StoreError::Forbidden);
        }
        Ok(target)
    }

    /// A check-in entered by staff for a member at the counter; idempotent on `request_key`.
    pub async fn checkin_at_counter(
        &self,
        kind: LinkKind,
        code: &str,
        c: &Checkin,
        request_key: &str,
    ) -> Result<CheckinReceipt, StoreError> {
        let target = self.counter_target(kind, code).await?;
        let who = Actor {
            user_id: Some(self.who.user_id),
            username: Some(&self.who.username),
            client: self.client.address.as_deref(),
        };
        let s =
            Submission { target: &target, checkin: c, request_key, channel: CheckinChannel::Counter, code_hash: None };
        checkins::submit(self.store, &who, &s).await
    }

    /// The check-ins in the caller's view, newest first.
    pub async fn checkins(&self, q: &CheckinQuery) -> Result<Page<CheckinRecord>, StoreError> {
        let mut tx = self.store.read().await?;
        checkins::list(&mut tx, &self.who.checkin_scope(), q).await
    }

    pub(super) async fn checkin_in(&self, tx: &mut Tx, id: i64) -> Result<CheckinRecord, StoreError> {
        let rec = checkins::by_id(tx, id).await?;
        match rec {
            Some(r) if self.who.sees_checkin(r.home_path.as_deref(), &r.inflow_path, r.service_point_id) => Ok(r),
            _ => {
                self.audit_denial("checkin.read", "checkin", &id.to_string()).await?;
                Err(StoreError::NotFound)
            }
        }
    }

    pub async fn checkin(&self, id: i64) -> Result<CheckinRecord, StoreError> {
        let mut tx = self.store.read().await?;
        self.checkin_in(&mut tx, id).await
    }

    /// A check-in whose home side is not in the system, with the full identity number, for
    /// the verification letter (核实函) the inflow side sends there; the view is audited.
    pub async fn checkin_letter(&self, id: i64) -> Result<CheckinRecord, StoreError> {
        let rec = {
            let mut tx = self.store.read().await?;
            self.checkin_in(&mut tx, id).await?
        };
        if rec.status != CheckinStatus::HomeUnknown {
            return Err(StoreError::Conflict("checkin.letter_not_needed"));
        }
        self.review(&rec.inflow_path, id).await?;
        let mut tx = self.store.write().await?;
        audit::write(&mut tx, self.record("checkin.letter", "ok", "checkin", id.to_string())).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Confirms a check-in: the outflow side vouches for its member and the check-in
    /// joins the member's flow; a check-in whose home side is not in the system is
    /// confirmed by the inflow side on a verification letter, named in `note`.
    pub async fn checkin_confirm(
        &self,
        id: i64,
        version: i64,
        note: Option<String>,
    ) -> Result<CheckinRecord, StoreError> {
        let mut tx = self.store.write().await?;
        let rec = self.checkin_in(&mut tx, id).await?;
        let by = self.who.user_id;
        match rec.status {
            CheckinStatus::Pending => {
                let home = rec.home_path.clone().unwrap_or_default();
                self.review(&home, id).await?;
                let member = match rec.member_id {
                    Some(m) => members::by_id(&mut tx, m).await?,
                    None => match members::id_by_id_number(&mut tx, &rec.id_number).await? {
                        Some(m) => members::by_id(&mut tx, m).await?,
                        None => None,
                    },
                };
                let m = member.ok_or(StoreError::Conflict("checkin.member_not_registered"))?;
                // The record may have moved since: the decision is the current organization's.
                self.review(&m.org_path, id).await?;
                // A stale version fails the decision below and rolls the joined flow back with it.
                let flow_id = checkins::join_flow(&mut tx, &rec, &m, by).await?;
                let v = Verdict {
                    status: CheckinStatus::Confirmed,
                    by,
                    note: note.as_deref(),
                    member_id: Some(m.id),
                    flow_id: Some(flow_id),
                };
                checkins::decide(&mut tx, id, version, &v).await?;
            }
            CheckinStatus::HomeUnknown => {
                self.review(&rec.inflow_path, id).await?;
                if note.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    return Err(StoreError::invalid("note", "checkin.letter_required"));
                }
                let v = Verdict {
                    status: CheckinStatus::Confirmed,
                    by,
                    note: note.as_deref(),
                    member_id: None,
                    flow_id: None,
                };
                checkins::decide(&mut tx, id, version, &v).await?;
            }
            _ => return Err(StoreError::Conflict("checkin.decided")),
        }
        self.finish_decision(tx, &rec, "checkin.confirm").await
    }

    /// Rejects a waiting check-in with a reason: the person is not the member claimed.
    pub async fn checkin_reject(&self, id: i64, version: i64, reason: &str) -> Result<CheckinRecord, StoreError> {
        let mut tx = self.store.write().await?;
        let rec = self.checkin_in(&mut tx, id).await?;
        match rec.status {
            CheckinStatus::Pending => self.review(rec.home_path.as_deref().unwrap_or_default(), id).await?,
            CheckinStatus::HomeUnknown => self.review(&rec.inflow_path, id).await?,
            _ => return Err(StoreError::Conflict("checkin.decided")),
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::invalid("reason", "required"));
        }
        if reason.chars().count() > 500 || reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(StoreError::invalid("reason", "invalid"));
        }
        let v = Verdict {
            status: CheckinStatus::Rejected,
            by: self.who.user_id,
            note: Some(reason),
            member_id: None,
            flow_id: None,
        };
        checkins::decide(&mut tx, id, version, &v).await?;
        self.finish_decision(tx, &rec, "checkin.reject").await
    }

    /// Refuses (audited) a decision outside the caller's subtree.
    async fn review(&self, path: &str, id: i64) -> Result<(), StoreError> {
        match decide(&self.who, Action::ReviewCheckin, Target { org_path: path, member_id: None }) {
            Decision::Allow => Ok(()),
            Decision::Deny { .. } => {
                self.audit_denial(Action::ReviewCheckin.code(), "checkin", &id.to_string()).await?;
                Err(StoreError::Forbidden)
            }
        }
    }

    async fn finish_decision(
        &self,
        mut tx: Tx,
        before: &CheckinRecord,
        action: &str,
    ) -> Result<CheckinRecord, StoreError> {
        let after = checkins::by_id(&mut tx, before.id).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record(action, "ok", "checkin", before.id.to_string());
        r.before = Some(serde_json::json!({ "status": before.status, "version": before.version }));
        r.after = Some(serde_json::json!({
            "status": after.status, "version": after.version, "decision_note": after.decision_note,
            "member_id": after.member_id,
        }));
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }
}
