//! Activity certificates: issued and acted on by the basic-level committee above the
//! member's organization; asked for in reverse and checked at check-in by the inflow side.
//! Unseen certificates are 404, steps of the other side 403; refusals are audited.

use kite_domain::access::{decide, Action, Decision, Target};
use kite_domain::certificate::{self, Issue, Status, Step};
use kite_domain::{transfer, validation, CheckinStatus, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::certificates::{self, By, CertificateCounts, CertificateRecord, CertificateStep, Change, New, Queue};
use crate::{audit, checkins, flows, members, orgs, CheckinRecord, Member, Org, StoreError, Tx};

/// The largest photo accepted (a passport photo is far smaller).
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

/// A certificate with its history and what the caller may do with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateView {
    pub certificate: CertificateRecord,
    pub steps: Vec<CertificateStep>,
    /// Step codes (`issue`, `refuse`, `return`, `revoke`, `report_lost`) the caller may take.
    pub may: Vec<String>,
    /// Whether the caller may upload the photo (the issuing side, while in force or asked for).
    pub may_set_photo: bool,
}

/// What the form for a member's certificate starts from: the issuing committee and the
/// departure's destination and reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateDraft {
    pub member_id: i64,
    pub member_name: String,
    pub issuer_org_code: String,
    pub issuer_org_name: String,
    pub destination_division: String,
    pub destination: Option<String>,
    pub reason: String,
    /// `issue` for the issuing side, `request` for the inflow side asking in reverse.
    pub mode: String,
}

/// A step as the API takes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StepInput {
    pub step: String,
    pub version: i64,
    /// Required to refuse or revoke.
    pub reason: Option<String>,
}

/// How the caller may act for a member's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The issuing committee's side.
    Issue,
    /// The inflow organization the member is checked in to, asking in reverse.
    Request,
}

impl Mode {
    fn code(self) -> &'static str {
        match self {
            Mode::Issue => "issue",
            Mode::Request => "request",
        }
    }
}

impl Guard<'_> {
    fn acts_on_certificates(&self, path: &str) -> bool {
        decide(&self.who, Action::Certificates, Target { org_path: path, member_id: None }) == Decision::Allow
    }

    /// The basic-level committee that issues for a member of `path`: the nearest committee
    /// at or above the member's organization.
    async fn issuing_committee(&self, tx: &mut Tx, path: &str) -> Result<Option<Org>, StoreError> {
        for id in kite_domain::org::ids(path).into_iter().rev() {
            if let Some(o) = orgs::by_id(tx, id).await? {
                // A dissolved committee issues nothing: the one above it does.
                if certificate::may_issue(o.level) && o.status != kite_domain::OrgStatus::Dissolved {
                    return Ok(Some(o));
                }
            }
        }
        Ok(None)
    }

    /// The member, the issuing committee and how the caller acts for them; anyone else's
    /// member is not found (audited).
    async fn certificate_subject(&self, tx: &mut Tx, member_id: i64) -> Result<(Member, Org, Mode), StoreError> {
        let found = match members::by_id(tx, member_id).await? {
            Some(m) => {
                let committee = self.issuing_committee(tx, &m.org_path).await?;
                let inflow = match flows::checked_in_to(tx, m.id).await? {
                    Some(id) => orgs::by_id(tx, id).await?,
                    None => None,
                };
                let mode = match &committee {
                    Some(c) if self.acts_on_certificates(&c.path) => Some(Mode::Issue),
                    _ if inflow.as_ref().is_some_and(|o| self.acts_on_certificates(&o.path)) => Some(Mode::Request),
                    _ => None,
                };
                // Members of the caller's own subtree: say what is missing rather than hide them.
                if mode.is_none() && self.acts_on_certificates(&m.org_path) {
                    let code = match committee {
                        Some(_) => "certificate.not_issuer",
                        None => "certificate.no_committee",
                    };
                    self.audit_denial(Action::Certificates.code(), "member", &member_id.to_string()).await?;
                    return Err(StoreError::Conflict(code));
                }
                mode.zip(committee).map(|(mode, c)| (m, c, mode))
            }
            None => None,
        };
        match found {
            Some((m, c, mode)) => Ok((m, c, mode)),
            None => {
                self.audit_denial(Action::Certificates.code(), "member", &member_id.to_string()).await?;
                Err(StoreError::NotFound)
            }
        }
    }

    /// What the form for a member's certificate starts from. A member who is not away
    /// (no open departure) gets no certificate.
    pub async fn certificate_draft(&self, member_id: i64) -> Result<CertificateDraft, StoreError> {
        let mut tx = self.store.read().await?;
        let (m, committee, mode) = self.certificate_subject(&mut tx, member_id).await?;
        let flow = flows::by_member(&mut tx, m.id).await?.into_iter().find(|f| f.status.is_open());
        let Some(flow) = flow else {
            return Err(StoreError::Conflict("certificate.not_away"));
        };
        Ok(CertificateDraft {
            member_id: m.id,
            member_name: m.name,
            issuer_org_code: committee.code,
            issuer_org_name: committee.name,
            destination_division: flow.destination_division,
            destination: flow.destination_address,
            reason: flow.reason.code().to_string(),
            mode: mode.code().to_string(),
        })
    }

    /// Issues a certificate to a member who is away (the issuing side), or asks the
    /// issuing side for one (the inflow side the member is checked in to: 反向发证).
    pub async fn certificate_create(&self, member_id: i64, issue: &Issue) -> Result<CertificateView, StoreError> {
        let mut tx = self.store.write().await?;
        let (m, committee, mode) = self.certificate_subject(&mut tx, member_id).await?;
        if flows::open_for(&mut tx, m.id).await?.is_none() {
            return Err(StoreError::Conflict("certificate.not_away"));
        }
        // A certificate whose period is over no longer stands in the way of a new one.
        let today = crate::today();
        certificates::expire_lapsed(&mut tx, Some(m.id), today).await?;
        let requester = match mode {
            Mode::Issue => None,
            Mode::Request => {
                let id = flows::checked_in_to(&mut tx, m.id).await?.ok_or(StoreError::NotFound)?;
                Some(orgs::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?)
            }
        };
        let new = New {
            member_id: m.id,
            issuer_org_id: committee.id,
            issuer_org_code: &committee.code,
            issuer_path: &committee.path,
            requester: requester.as_ref().map(|o| (o.id, o.path.as_str())),
            issue,
            replaces_id: None,
        };
        let by = By { user_id: Some(self.who.user_id), username: Some(&self.who.username) };
        let id = certificates::insert(&mut tx, &new, &by).await?;
        let c = certificates::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let action = if mode == Mode::Issue { "certificate.issue" } else { "certificate.request" };
        let mut rec = self.record(action, "ok", "certificate", id.to_string());
        rec.after = snapshot(&c);
        audit::write(&mut tx, rec).await?;
        let view = self.certificate_view(&mut tx, c).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Whether the caller acts for the issuing side, the requesting side, or is the holder.
    fn certificate_sides(&self, c: &CertificateRecord) -> (bool, bool, bool) {
        let issuer = self.acts_on_certificates(&c.issuer_path);
        let requester = c.requester_path.as_deref().is_some_and(|p| self.acts_on_certificates(p));
        let holder = self.who.role == Role::Member && self.who.member_id == Some(c.member_id);
        (issuer, requester, holder)
    }

    async fn certificate_in(&self, tx: &mut Tx, id: i64) -> Result<CertificateRecord, StoreError> {
        match certificates::by_id(tx, id).await? {
            Some(c) if self.certificate_sides(&c) != (false, false, false) => Ok(c),
            _ => {
                self.audit_denial(Action::Certificates.code(), "certificate", &id.to_string()).await?;
                Err(StoreError::NotFound)
            }
        }
    }

    async fn certificate_view(&self, tx: &mut Tx, c: CertificateRecord) -> Result<CertificateView, StoreError> {
        let steps = certificates::steps(tx, c.id).await?;
        let (issuer, _, _) = self.certificate_sides(&c);
        let may = match issuer {
            true => Step::open_from(c.status).into_iter().map(|s| s.code().to_string()).collect(),
            false => Vec::new(),
        };
        let may_set_photo = issuer && matches!(c.status, Status::Issued | Status::Requested);
        Ok(CertificateView { certificate: c, steps, may, may_set_photo })
    }

    /// One certificate; the requesting side opening a decision marks it seen.
    pub async fn certificate(&self, id: i64) -> Result<CertificateView, StoreError> {
        let mut tx = self.store.read().await?;
        let c = self.certificate_in(&mut tx, id).await?;
        // Only the requesting side's own opening counts as seen (not an account above both).
        let (issuer, requester, _) = self.certificate_sides(&c);
        if requester && !issuer && c.answer_unseen {
            drop(tx);
            let mut w = self.store.write().await?;
            certificates::mark_answer_seen(&mut w, id).await?;
            let c = certificates::by_id(&mut w, id).await?.ok_or(StoreError::NotFound)?;
            let view = self.certificate_view(&mut w, c).await?;
            w.commit().await?;
            return Ok(view);
        }
        self.certificate_view(&mut tx, c).await
    }

    /// A queue of the certificates the caller's subtree issued or asked for; for a member,
    /// their own.
    pub async fn certificates(&self, queue: Queue) -> Result<Vec<CertificateRecord>, StoreError> {
        if let (Role::Member, Some(id)) = (self.who.role, self.who.member_id) {
            return certificates::for_member(&mut self.store.read().await?, id).await;
        }
        if !self.who.role.may(Action::Certificates) {
            self.audit_denial(Action::Certificates.code(), "certificate", "list").await?;
            return Err(StoreError::Forbidden);
        }
        let mut tx = self.store.read().await?;
        certificates::list(&mut tx, self.who.org_root(), queue, 200).await
    }

    /// The caller's counts; nothing for those who do not handle certificates.
    pub async fn certificate_counts(&self) -> Result<Option<CertificateCounts>, StoreError> {
        if !self.who.role.may(Action::Certificates) {
            return Ok(None);
        }
        let mut tx = self.store.read().await?;
        Ok(Some(certificates::counts(&mut tx, self.who.org_root()).await?))
    }

    /// A member's certificates, for the member's page (whoever may read the member).
    pub async fn member_certificates(&self, member_id: i64) -> Result<Vec<CertificateRecord>, StoreError> {
        let mut tx = self.store.read().await?;
        self.member_in(&mut tx, member_id, Action::ReadMember).await?;
        certificates::for_member(&mut tx, member_id).await
    }

    /// Takes a step for the issuing side. Reporting a certificate lost issues its
    /// replacement (same contents, a new number, the photo carried over) in the same
    /// transaction; the view returned is the replacement's.
    pub async fn certificate_step(&self, id: i64, input: &StepInput) -> Result<CertificateView, StoreError> {
        let step = Step::from_code(&input.step).ok_or_else(|| StoreError::invalid("step", "invalid"))?;
        let mut tx = self.store.write().await?;
        let c = self.certificate_in(&mut tx, id).await?;
        if !self.certificate_sides(&c).0 {
            drop(tx);
            self.audit_denial(&format!("certificate.{}", step.code()), "certificate", &id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        let to = step.next(c.status).ok_or(StoreError::Conflict("certificate.wrong_status"))?;
        if c.version != input.version {
            return Err(StoreError::Conflict("stale_version"));
        }
        let note = match step.needs_reason() {
            true => Some(transfer::reason(input.reason.as_deref().unwrap_or("")).map_err(StoreError::Invalid)?),
            false => {
                let mut e = kite_domain::FieldErrors::default();
                let note = validation::multiline(&mut e, "reason", input.reason.as_deref().unwrap_or(""), false, 500);
                if !e.is_empty() {
                    return Err(StoreError::Invalid(e));
                }
                note
            }
        };
        let today = crate::today();
        if step == Step::Issue && c.valid_until < today {
            return Err(StoreError::Conflict("certificate.period_over"));
        }
        let by = By { user_id: Some(self.who.user_id), username: Some(&self.who.username) };
        let change = Change { step, to, version: input.version, note: note.as_deref() };
        certificates::apply(&mut tx, &c, &change, &by).await?;
        let mut shown = id;
        if step == Step::ReportLost {
            let issue = Issue {
                destination_division: c.destination_division.clone(),
                destination: c.destination.clone(),
                reason: c.reason,
                valid_from: c.valid_from.max(today),
                valid_until: c.valid_until,
            };
            let new = New {
                member_id: c.member_id,
                issuer_org_id: c.issuer_org_id,
                issuer_org_code: &c.issuer_org_code,
                issuer_path: &c.issuer_path,
                requester: None,
                issue: &issue,
                replaces_id: Some(c.id),
            };
            if c.valid_until >= today {
                shown = certificates::insert(&mut tx, &new, &by).await?;
                certificates::copy_photo(&mut tx, c.id, shown).await?;
            }
        }
        let after = certificates::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let action = format!("certificate.{}", step.code());
        let mut rec = self.record(&action, "ok", "certificate", id.to_string());
        (rec.before, rec.after) = (snapshot(&c), snapshot(&after));
        audit::write(&mut tx, rec).await?;
        let shown = match shown == id {
            true => after,
            false => {
                let replacement = certificates::by_id(&mut tx, shown).await?.ok_or(StoreError::NotFound)?;
                let mut rec = self.record("certificate.issue", "ok", "certificate", shown.to_string());
                rec.after = snapshot(&replacement);
                audit::write(&mut tx, rec).await?;
                replacement
            }
        };
        let view = self.certificate_view(&mut tx, shown).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The photo, for whoever may see the certificate.
    pub async fn certificate_photo(&self, id: i64) -> Result<(String, Vec<u8>), StoreError> {
        let mut tx = self.store.read().await?;
        self.certificate_in(&mut tx, id).await?;
        certificates::photo(&mut tx, id).await?.ok_or(StoreError::NotFound)
    }

    /// Sets the photo (JPEG or PNG, recognised by its first bytes, at most
    /// [`MAX_PHOTO_BYTES`]); the issuing side only.
    pub async fn certificate_set_photo(&self, id: i64, content: &[u8]) -> Result<CertificateView, StoreError> {
        let content_type = match content {
            [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
            [0x89, b'P', b'N', b'G', ..] => "image/png",
            _ => return Err(StoreError::invalid("photo", "certificate.photo_type")),
        };
        if content.len() > MAX_PHOTO_BYTES {
            return Err(StoreError::invalid("photo", "certificate.photo_too_large"));
        }
        let mut tx = self.store.write().await?;
        let c = self.certificate_in(&mut tx, id).await?;
        if !self.certificate_sides(&c).0 {
            drop(tx);
            self.audit_denial("certificate.photo", "certificate", &id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        if !matches!(c.status, Status::Issued | Status::Requested) {
            return Err(StoreError::Conflict("certificate.wrong_status"));
        }
        certificates::set_photo(&mut tx, id, content_type, content).await?;
        let mut rec = self.record("certificate.photo", "ok", "certificate", id.to_string());
        rec.after = Some(serde_json::json!({ "content_type": content_type, "bytes": content.len() }));
        audit::write(&mut tx, rec).await?;
        let c = certificates::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let view = self.certificate_view(&mut tx, c).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Whether the caller takes check-ins where this one was made: the inflow organization's
    /// subtree, or the service point it was taken at.
    pub fn on_inflow_side(&self, rec: &CheckinRecord) -> bool {
        let at_point = rec.service_point_id.is_some() && self.who.service_point_id == rec.service_point_id;
        at_point
            || decide(&self.who, Action::TakeCheckin, Target { org_path: &rec.inflow_path, member_id: None })
                == Decision::Allow
    }

    /// A check-in whose home side is outside the system, with the full identity number, for
    /// the printed request for a certificate (反向发证) the inflow side sends there; the view
    /// is audited.
    pub async fn certificate_request_letter(&self, checkin_id: i64) -> Result<CheckinRecord, StoreError> {
        let rec = {
            let mut tx = self.store.read().await?;
            self.checkin_in(&mut tx, checkin_id).await?
        };
        if !self.on_inflow_side(&rec) {
            self.audit_denial("certificate.request_letter", "checkin", &checkin_id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        let open = matches!(rec.status, CheckinStatus::HomeUnknown | CheckinStatus::Confirmed);
        if rec.home_org_text.is_none() || !open {
            return Err(StoreError::Conflict("certificate.request_letter_not_needed"));
        }
        let mut tx = self.store.write().await?;
        let record = self.record("certificate.request_letter", "ok", "checkin", checkin_id.to_string());
        audit::write(&mut tx, record).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The inflow side checks the certificate a member shows at check-in (its number, or
    /// its QR code's link as a scanner types it) and records it on the check-in. A number
    /// of the system must be valid today and be the same person's; a number unknown here
    /// is taken as shown only when the member's home side is outside the system.
    pub async fn checkin_certificate(&self, checkin_id: i64, scanned: &str) -> Result<CheckinRecord, StoreError> {
        let number = certificate::number_from_scan(scanned)
            .ok_or_else(|| StoreError::invalid("number", "certificate.number"))?;
        let mut tx = self.store.write().await?;
        let rec = self.checkin_in(&mut tx, checkin_id).await?;
        if !self.on_inflow_side(&rec) {
            drop(tx);
            self.audit_denial("certificate.check", "checkin", &checkin_id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        if !matches!(rec.status, CheckinStatus::Pending | CheckinStatus::HomeUnknown | CheckinStatus::Confirmed) {
            return Err(StoreError::Conflict("certificate.checkin_closed"));
        }
        let in_system = match certificates::by_number(&mut tx, &number).await? {
            Some(c) if rec.member_id != Some(c.member_id) => {
                return Err(StoreError::Conflict("certificate.other_person"))
            }
            Some(c) if !c.valid_today => return Err(StoreError::Conflict("certificate.not_valid")),
            Some(_) => true,
            None if rec.home_org_text.is_some() => false,
            None => return Err(StoreError::invalid("number", "certificate.unknown")),
        };
        certificates::record_check(&mut tx, checkin_id, &number, in_system, &self.who.username).await?;
        let mut audit_rec = self.record("certificate.check", "ok", "checkin", checkin_id.to_string());
        audit_rec.after = Some(serde_json::json!({ "number": number, "in_system": in_system }));
        audit::write(&mut tx, audit_rec).await?;
        let after = checkins::by_id(&mut tx, checkin_id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(after)
    }
}
