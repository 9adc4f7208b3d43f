//! Transfers: asked for by the sending side, the receiving side (for a member checked in
//! to its subtree) or the member; each step taken by the side the workflow names. Unseen
//! transfers are 404, steps of the other side 403; refusals are audited.

use chrono::NaiveDate;
use kite_domain::access::Action;
use kite_domain::transfer::{self, Initiator, Refusal, Side, Status, Step};
use kite_domain::{validation, FieldErrors, OrgStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::transfers::{self, Change, New, Queue, TransferCounts, TransferRecord, TransferStep};
use crate::{audit, flows, members, orgs, StoreError, Tx};

/// A transfer with its history and the steps the caller may take now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransferView {
    pub transfer: TransferRecord,
    pub steps: Vec<TransferStep>,
    /// Step codes (`approve`, `receive`, …) the caller may take.
    pub may: Vec<String>,
}

/// A request for a transfer: the receiving organization in the system (by code) or named.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct TransferRequest {
    pub member_id: i64,
    pub to_org_code: Option<String>,
    pub to_org_text: Option<String>,
    pub reason: Option<String>,
}

/// What a step carries besides its name.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StepInput {
    pub step: String,
    pub version: i64,
    /// Required to return or refuse.
    pub reason: Option<String>,
    /// The letter's validity in days when approving (the default when absent).
    pub letter_days: Option<u32>,
    /// The letter's new last day when extending.
    pub letter_until: Option<NaiveDate>,
    /// When approving: the month the member's dues are paid up to (`YYYY-MM`), stated on
    /// the letter; blank leaves a space to fill in by hand.
    pub dues_paid_until: Option<String>,
}

fn text_or_none(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Guard<'_> {
    fn sides(&self, t: &TransferRecord) -> Vec<Side> {
        self.who.transfer_sides(&t.from_path, t.to_path.as_deref(), t.member_id)
    }

    /// The transfer if the caller is on one of its sides (404 otherwise, audited).
    async fn transfer_in(&self, tx: &mut Tx, id: i64) -> Result<(TransferRecord, Vec<Side>), StoreError> {
        let t = transfers::by_id(tx, id).await?;
        match t.map(|t| (self.sides(&t), t)) {
            Some((sides, t)) if !sides.is_empty() => Ok((t, sides)),
            _ => {
                self.audit_denial(Action::Transfer.code(), "transfer", &id.to_string()).await?;
                Err(StoreError::NotFound)
            }
        }
    }

    async fn transfer_view(&self, tx: &mut Tx, t: TransferRecord, sides: &[Side]) -> Result<TransferView, StoreError> {
        let steps = transfers::steps(tx, t.id).await?;
        let today = crate::today();
        let mut may: Vec<String> = Vec::new();
        for side in sides {
            for s in transfer::steps_for(&t.state(), *side, today) {
                if s == Step::Approve && !self.may_approve_level(&t, &steps) {
                    continue;
                }
                if !may.iter().any(|m| m == s.code()) {
                    may.push(s.code().to_string());
                }
            }
        }
        Ok(TransferView { transfer: t, steps, may })
    }

    /// Whether the caller acts on transfers for the organization at `path`.
    fn acts_for(&self, path: &str) -> bool {
        use kite_domain::access::{decide, Decision, Target};
        decide(&self.who, Action::Transfer, Target { org_path: path, member_id: None }) == Decision::Allow
    }

    /// With two levels, the first approval is the sending organization's own (or a system
    /// administrator's), the second the committee's above it, by someone else.
    fn may_approve_level(&self, t: &TransferRecord, steps: &[TransferStep]) -> bool {
        if !t.two_levels {
            return true;
        }
        let admin = self.who.role == kite_domain::Role::Admin;
        match t.status {
            Status::Requested => admin || self.who.org_path.as_deref() == Some(t.from_path.as_str()),
            Status::FirstApproved => {
                let first = steps.iter().rev().find(|s| s.step == Step::Approve.code());
                self.who.above(&t.from_path) && first.is_none_or(|s| s.user_id != Some(self.who.user_id))
            }
            _ => true,
        }
    }

    /// On whose behalf the caller would ask for `member`'s transfer: the member, the
    /// sending side, or the receiving side for a member checked in to its subtree.
    async fn asker(&self, tx: &mut Tx, member: &crate::Member) -> Result<Option<Initiator>, StoreError> {
        if self.who.member_id == Some(member.id) && self.who.role == kite_domain::Role::Member {
            return Ok(Some(Initiator::Member));
        }
        if self.acts_for(&member.org_path) {
            return Ok(Some(Initiator::Sending));
        }
        let inflow_path = match flows::checked_in_to(tx, member.id).await? {
            Some(id) => orgs::by_id(tx, id).await?.map(|o| o.path),
            None => None,
        };
        Ok(inflow_path.as_deref().is_some_and(|p| self.acts_for(p)).then_some(Initiator::Receiving))
    }

    /// The name of a member the caller may ask a transfer for (the form's heading);
    /// anyone else's is not found (audited). The identity number is not shown.
    pub async fn transfer_subject(&self, member_id: i64) -> Result<String, StoreError> {
        let mut tx = self.store.read().await?;
        if let Some(m) = members::by_id(&mut tx, member_id).await? {
            if self.asker(&mut tx, &m).await?.is_some() {
                return Ok(m.name);
            }
        }
        drop(tx);
        self.audit_denial(Action::Transfer.code(), "member", &member_id.to_string()).await?;
        Err(StoreError::NotFound)
    }

    /// Asks for a transfer of a member's record.
    pub async fn transfer_request(&self, r: &TransferRequest) -> Result<TransferView, StoreError> {
        let mut tx = self.store.write().await?;
        let denied = || async {
            self.audit_denial(Action::Transfer.code(), "member", &r.member_id.to_string()).await?;
            Err::<TransferView, _>(StoreError::NotFound)
        };
        let Some(member) = members::by_id(&mut tx, r.member_id).await? else {
            return denied().await;
        };
        let mut e = FieldErrors::default();
        let to_text = validation::text(&mut e, "to_org_text", r.to_org_text.as_deref().unwrap_or(""), false, 100);
        let reason = validation::multiline(&mut e, "reason", r.reason.as_deref().unwrap_or(""), false, 500);
        let to = match (text_or_none(&r.to_org_code), &to_text) {
            (Some(code), None) => match orgs::by_code(&mut tx, code).await? {
                None => {
                    e.add("to_org_code", "org.unknown");
                    None
                }
                Some(o) if o.status == OrgStatus::Dissolved => {
                    e.add("to_org_code", "org.dissolved");
                    None
                }
                Some(o) if o.path == member.org_path => {
                    e.add("to_org_code", "transfer.same_org");
                    None
                }
                o => o,
            },
            (None, None) => {
                e.add("to_org_code", "required");
                None
            }
            (Some(_), Some(_)) => {
                e.add("to_org_text", "transfer.one_destination");
                None
            }
            (None, Some(_)) => None,
        };
        let open = flows::open_for(&mut tx, member.id).await?;
        let Some(initiator) = self.asker(&mut tx, &member).await? else {
            drop(tx);
            return denied().await;
        };
        if member.mobility == kite_domain::Mobility::TransferredOut {
            return Err(StoreError::Conflict("member.transferred_out"));
        }
        // The receiving side asks to an organization of its own subtree, in the system.
        if initiator == Initiator::Receiving
            && (to_text.is_some() || to.as_ref().is_some_and(|o| !self.acts_for(&o.path)))
        {
            e.add("to_org_code", "transfer.not_your_org");
        }
        if !e.is_empty() {
            return Err(StoreError::Invalid(e));
        }
        let from = orgs::by_code(&mut tx, &member.org_code).await?.ok_or(StoreError::NotFound)?;
        let new = New {
            member_id: member.id,
            flow_id: open.map(|(id, _)| id),
            from: &from,
            to: to.as_ref(),
            to_text: to_text.as_deref(),
            initiator,
            reason: reason.as_deref(),
            user_id: self.who.user_id,
            username: &self.who.username,
        };
        let id = transfers::insert(&mut tx, &new).await?;
        let t = transfers::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut rec = self.record("transfer.request", "ok", "transfer", id.to_string());
        rec.after = snapshot(&t);
        audit::write(&mut tx, rec).await?;
        let sides = self.sides(&t);
        let view = self.transfer_view(&mut tx, t, &sides).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// A queue of transfers touching the caller's subtree; for a member, their own.
    pub async fn transfers(&self, queue: Queue) -> Result<Vec<TransferRecord>, StoreError> {
        // A member's list is their own transfers, whatever the queue.
        if let (kite_domain::Role::Member, Some(id)) = (self.who.role, self.who.member_id) {
            return transfers::for_member(&mut self.store.read().await?, id).await;
        }
        if !self.who.role.may(Action::Transfer) {
            self.audit_denial(Action::Transfer.code(), "transfer", "list").await?;
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.store.read().await?;
        transfers::list(&mut tx, self.who.org_root(), queue, 200).await
    }

    /// Members arrived from outside the system at the caller's subtree, newest first.
    pub async fn arrivals(&self) -> Result<Vec<crate::ArrivalRecord>, StoreError> {
        if !self.who.role.may(Action::Transfer) {
            self.audit_denial(Action::Transfer.code(), "arrival", "list").await?;
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.store.read().await?;
        transfers::arrivals(&mut tx, self.who.org_root(), 200).await
    }

    /// How a member's record arrived from outside the system, if it did (the member's page).
    pub async fn member_arrival(&self, member_id: i64) -> Result<Option<crate::ArrivalRecord>, StoreError> {
        let mut tx = self.store.read().await?;
        self.member_in(&mut tx, member_id, Action::ReadMember).await?;
        transfers::arrival_of(&mut tx, member_id).await
    }

    /// The caller's queue sizes; nothing for those who do not take part in transfers.
    pub async fn transfer_counts(&self) -> Result<Option<TransferCounts>, StoreError> {
        if !self.who.role.may(Action::Transfer) {
            return Ok(None);
        }
        let mut tx = self.store.read().await?;
        Ok(Some(transfers::counts(&mut tx, self.who.org_root()).await?))
    }

    pub async fn transfer(&self, id: i64) -> Result<TransferView, StoreError> {
        let mut tx = self.store.read().await?;
        let (t, sides) = self.transfer_in(&mut tx, id).await?;
        self.transfer_view(&mut tx, t, &sides).await
    }

    /// Takes one step of a transfer for the side the caller is on.
    pub async fn transfer_step(&self, id: i64, input: &StepInput) -> Result<TransferView, StoreError> {
        let step = Step::from_code(input.step.trim()).ok_or_else(|| StoreError::invalid("step", "invalid"))?;
        let mut tx = self.store.write().await?;
        let (t, sides) = self.transfer_in(&mut tx, id).await?;
        let today = crate::today();
        let mut refusal = Refusal::NotYourStep;
        let mut to = None;
        for side in &sides {
            match transfer::next(&t.state(), step, *side, today) {
                Ok(s) => {
                    to = Some(s);
                    break;
                }
                // The most telling refusal: a state or letter problem over "not yours".
                Err(r) if r != Refusal::NotYourStep => refusal = r,
                Err(_) => {}
            }
        }
        let Some(to) = to else {
            if refusal == Refusal::NotYourStep {
                drop(tx);
                self.audit_denial(&format!("transfer.{}", step.code()), "transfer", &id.to_string()).await?;
                return Err(StoreError::Forbidden);
            }
            return Err(StoreError::Conflict(refusal.code()));
        };
        if t.version != input.version {
            return Err(StoreError::Conflict("stale_version"));
        }
        // The second level is the committee above the sending organization, and another person.
        if step == Step::Approve && t.status == Status::FirstApproved {
            let first =
                transfers::steps(&mut tx, t.id).await?.into_iter().rev().find(|s| s.step == Step::Approve.code());
            if !self.who.above(&t.from_path) || first.is_some_and(|s| s.user_id == Some(self.who.user_id)) {
                drop(tx);
                self.audit_denial("transfer.approve", "transfer", &id.to_string()).await?;
                return Err(StoreError::Forbidden);
            }
        }
        let note = if step.needs_reason() {
            Some(transfer::reason(input.reason.as_deref().unwrap_or("")).map_err(StoreError::Invalid)?)
        } else {
            text_or_none(&input.reason).map(str::to_string)
        };
        let rules = self.store.letter_rules;
        let letter_until = match (step, to) {
            (Step::Approve, Status::Approved) => {
                Some(rules.valid_until(today, input.letter_days).map_err(|c| StoreError::invalid("letter_days", c))?)
            }
            (Step::ExtendLetter, _) => {
                let (issued, until) = (t.letter_issued_on.unwrap_or(today), t.letter_until.unwrap_or(today));
                let new = input.letter_until.ok_or_else(|| StoreError::invalid("letter_until", "required"))?;
                Some(rules.extend(issued, until, new).map_err(|c| StoreError::invalid("letter_until", c))?)
            }
            _ => None,
        };
        if step == Step::Receive {
            if let Some(to_org) = t.to_org_id {
                let o = orgs::by_id(&mut tx, to_org).await?.ok_or(StoreError::NotFound)?;
                if o.status == OrgStatus::Dissolved {
                    return Err(StoreError::Conflict("org.dissolved"));
                }
            }
        }
        let dues = match (step, to) {
            (Step::Approve, Status::Approved) => {
                transfer::dues_month(input.dues_paid_until.as_deref().unwrap_or(""), today)
                    .map_err(|c| StoreError::invalid("dues_paid_until", c))?
            }
            _ => None,
        };
        let change = Change {
            step,
            to,
            version: input.version,
            note: note.as_deref(),
            letter_until,
            dues_paid_until: dues.as_deref(),
            user_id: self.who.user_id,
            username: &self.who.username,
        };
        transfers::apply(&mut tx, &t, &change).await?;
        let after = transfers::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let action = format!("transfer.{}", step.code());
        let mut rec = self.record(&action, "ok", "transfer", id.to_string());
        (rec.before, rec.after) = (snapshot(&t), snapshot(&after));
        audit::write(&mut tx, rec).await?;
        let sides = self.sides(&after);
        let view = self.transfer_view(&mut tx, after, &sides).await?;
        tx.commit().await?;
        Ok(view)
    }
}
