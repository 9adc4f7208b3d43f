//! Co-management agreements: seen and kept by their parties' subtrees; partner lists
//! for every organization.

use kite_domain::access::Action;
use kite_domain::agreement::{self, AgreementInput, Party, MAX_FILES, MAX_FILE_BYTES};
use kite_domain::{AgreementStatus, FieldErrors, OrgStatus};
use sha2::{Digest, Sha256};

use super::{snapshot, Guard};
use crate::agreements::{
    self, AgreementFile, AgreementQuery, AgreementRecord, AgreementSummary, NewFile, Parties, Partner, Row,
};
use crate::{audit, orgs, Page, StoreError, Tx};

impl Guard<'_> {
    /// The agreement if the caller may take `action` on it: unseen ones are 404, seen but
    /// not writable ones 403; refusals are audited.
    async fn agreement_in(&self, tx: &mut Tx, id: i64, action: Action) -> Result<Row, StoreError> {
        let row = agreements::by_id(tx, id).await?;
        let (out, inflow) = row.as_ref().map(|r| r.paths()).unwrap_or((None, None));
        if row.is_none() || !self.who.on_agreement(Action::ReadAgreements, out, inflow) {
            self.audit_denial(Action::ReadAgreements.code(), "agreement", &id.to_string()).await?;
            return Err(StoreError::NotFound);
        }
        if action != Action::ReadAgreements && !self.who.on_agreement(action, out, inflow) {
            self.audit_denial(action.code(), "agreement", &id.to_string()).await?;
            return Err(StoreError::Forbidden);
        }
        row.ok_or(StoreError::NotFound)
    }

    async fn agreement_record(&self, tx: &mut Tx, row: Row) -> Result<AgreementRecord, StoreError> {
        let files = agreements::files(tx, row.id).await?;
        let (out, inflow) = row.paths();
        let may_edit = self.who.on_agreement(Action::WriteAgreements, out, inflow);
        row.record(files, may_edit, crate::today())
    }

    pub async fn agreements(&self, q: &AgreementQuery) -> Result<Page<AgreementSummary>, StoreError> {
        let status = match q.status.as_deref().map(str::trim).unwrap_or("") {
            "" | "all" => None,
            s => Some(AgreementStatus::from_code(s).ok_or_else(|| StoreError::invalid("status", "invalid"))?),
        };
        let cursor = crate::models::id_cursor(q.cursor.as_deref())?;
        let mut tx = self.store.read().await?;
        let root = match q.org.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(code) => Some(self.org_in(&mut tx, code, Action::ReadAgreements).await?.path),
            None => {
                self.require(Action::ReadAgreements).await?;
                self.who.org_root().map(str::to_string)
            }
        };
        let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
        agreements::list(&mut tx, root.as_deref(), status, crate::today(), cursor, limit).await
    }

    pub async fn agreement(&self, id: i64) -> Result<AgreementRecord, StoreError> {
        let mut tx = self.store.read().await?;
        let row = self.agreement_in(&mut tx, id, Action::ReadAgreements).await?;
        self.agreement_record(&mut tx, row).await
    }

    /// The agreement, if the caller may change it (for the edit form).
    pub async fn agreement_for_edit(&self, id: i64) -> Result<AgreementRecord, StoreError> {
        let mut tx = self.store.read().await?;
        let row = self.agreement_in(&mut tx, id, Action::WriteAgreements).await?;
        self.agreement_record(&mut tx, row).await
    }

    /// Finds the parties' organizations; the caller must act for one of them.
    async fn parties(&self, tx: &mut Tx, outflow: &Party, inflow: &Party) -> Result<Parties, StoreError> {
        let mut e = FieldErrors::default();
        let mut found = [None, None];
        let mut ids = [None, None];
        for (i, (party, field)) in [(outflow, "outflow.org_code"), (inflow, "inflow.org_code")].into_iter().enumerate()
        {
            let Some(code) = &party.org_code else { continue };
            match orgs::by_code(tx, code).await? {
                None => e.add(field, "org.unknown"),
                Some(o) if o.status == OrgStatus::Dissolved => e.add(field, "agreement.org_dissolved"),
                Some(o) => {
                    ids[i] = Some(o.id);
                    found[i] = Some(o.path);
                }
            }
        }
        if !e.is_empty() {
            return Err(StoreError::Invalid(e));
        }
        if found.iter().all(Option::is_none) {
            return Err(StoreError::invalid("outflow.org_code", "agreement.none_in_system"));
        }
        if !self.who.on_agreement(Action::WriteAgreements, found[0].as_deref(), found[1].as_deref()) {
            self.audit_denial(Action::WriteAgreements.code(), "agreement", "").await?;
            return Err(StoreError::invalid("outflow.org_code", "agreement.not_a_party"));
        }
        Ok(Parties { outflow_org_id: ids[0], inflow_org_id: ids[1] })
    }

    pub async fn agreement_create(&self, input: &AgreementInput<'_>) -> Result<AgreementRecord, StoreError> {
        self.require(Action::WriteAgreements).await?;
        let a = agreement::validate(input, crate::today()).map_err(StoreError::Invalid)?;
        let mut tx = self.store.write().await?;
        let parties = self.parties(&mut tx, &a.outflow, &a.inflow).await?;
        let id = agreements::save(&mut tx, None, &a, &parties, self.who.user_id).await?;
        let row = agreements::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let saved = self.agreement_record(&mut tx, row).await?;
        let mut r = self.record("agreement.create", "ok", "agreement", id.to_string());
        r.after = snapshot(&saved);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Amends an agreement at the version read; the caller stays one of its parties.
    pub async fn agreement_update(
        &self,
        id: i64,
        input: &AgreementInput<'_>,
        version: i64,
    ) -> Result<AgreementRecord, StoreError> {
        let mut tx = self.store.write().await?;
        let row = self.agreement_in(&mut tx, id, Action::WriteAgreements).await?;
        if row.version != version {
            return Err(StoreError::Conflict("stale_version"));
        }
        let a = agreement::validate(input, crate::today()).map_err(StoreError::Invalid)?;
        // A party in the system stays unless the caller may act for it too: one side
        // cannot take the agreement away from the other.
        let (out_path, in_path) = row.paths();
        for (path, was, now, field) in [
            (out_path, &row.outflow_code, &a.outflow.org_code, "outflow.org_code"),
            (in_path, &row.inflow_code, &a.inflow.org_code, "inflow.org_code"),
        ] {
            if path.is_some() && was != now && !self.who.on_agreement(Action::WriteAgreements, path, None) {
                return Err(StoreError::invalid(field, "agreement.other_party_fixed"));
            }
        }
        let parties = self.parties(&mut tx, &a.outflow, &a.inflow).await?;
        let before = self.agreement_record(&mut tx, row).await?;
        agreements::save(&mut tx, Some((id, version)), &a, &parties, self.who.user_id).await?;
        let row = agreements::by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let after = self.agreement_record(&mut tx, row).await?;
        let mut r = self.record("agreement.update", "ok", "agreement", id.to_string());
        r.before = snapshot(&before);
        r.after = snapshot(&after);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Attaches a file (the signed text): PDF, OFD, Word, PNG or JPEG, at most 10 MiB.
    pub async fn agreement_attach(
        &self,
        id: i64,
        file_name: &str,
        content: &[u8],
    ) -> Result<AgreementFile, StoreError> {
        let mut tx = self.store.write().await?;
        self.agreement_in(&mut tx, id, Action::WriteAgreements).await?;
        if content.is_empty() {
            return Err(StoreError::invalid("file", "agreement.file_missing"));
        }
        if content.len() > MAX_FILE_BYTES {
            return Err(StoreError::invalid("file", "agreement.file_too_large"));
        }
        let (content_type, extension) = agreement::sniff_file(content, file_name)
            .ok_or_else(|| StoreError::invalid("file", "agreement.file_type"))?;
        let name = agreement::stored_file_name(file_name, extension);
        // Locks the agreement's row (PostgreSQL) so that uploads to one agreement count in turn.
        agreements::lock(&mut tx, id).await?;
        if agreements::file_count(&mut tx, id).await? >= MAX_FILES {
            return Err(StoreError::Conflict("agreement.too_many_files"));
        }
        let sha256: String = Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
        let new = NewFile { file_name: &name, content_type, sha256: &sha256, content };
        let file_id = agreements::add_file(&mut tx, id, &new, self.who.user_id).await?;
        let file =
            agreements::files(&mut tx, id).await?.into_iter().find(|f| f.id == file_id).ok_or(StoreError::NotFound)?;
        let mut r = self.record("agreement.attach", "ok", "agreement", id.to_string());
        r.after = snapshot(&file);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(file)
    }

    /// A file's description and content, for the parties.
    pub async fn agreement_file(&self, id: i64, file_id: i64) -> Result<(AgreementFile, Vec<u8>), StoreError> {
        let mut tx = self.store.read().await?;
        self.agreement_in(&mut tx, id, Action::ReadAgreements).await?;
        agreements::file(&mut tx, id, file_id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn agreement_detach(&self, id: i64, file_id: i64) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        self.agreement_in(&mut tx, id, Action::WriteAgreements).await?;
        let file =
            agreements::files(&mut tx, id).await?.into_iter().find(|f| f.id == file_id).ok_or(StoreError::NotFound)?;
        agreements::remove_file(&mut tx, id, file_id).await?;
        let mut r = self.record("agreement.detach", "ok", "agreement", id.to_string());
        r.before = snapshot(&file);
        audit::write(&mut tx, r).await?;
        tx.commit().await
    }

    /// The organization's partners: the other sides of the agreements it, an organization
    /// above it or one below it is party to. Names and periods only, for anyone who may
    /// see the organization; the agreement itself stays with its parties.
    pub async fn org_partners(&self, code: &str) -> Result<Vec<Partner>, StoreError> {
        let mut tx = self.store.read().await?;
        let o = self.org_in(&mut tx, code, Action::ReadOrg).await?;
        let today = crate::today();
        Ok(agreements::touching(&mut tx, &o.path, today)
            .await?
            .iter()
            .map(|row| {
                let (out, inflow) = row.paths();
                let readable = self.who.on_agreement(Action::ReadAgreements, out, inflow);
                agreements::partner_of(row, &o.path, readable, today)
            })
            .collect())
    }
}
