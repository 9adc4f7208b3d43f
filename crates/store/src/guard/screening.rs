//! Screening campaigns: run by those with the screening permission of a region (its
//! organization administrators), over that region's registry only. Every run, decision
//! and closing is audited; nothing is written to member records.

use kite_domain::access::{Action, Target};
use kite_domain::screening::{Campaign, Decision};
use serde::Serialize;
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::screening::{self, CampaignRecord, FollowUp, MatchRecord, NewRoster, RosterRecord};
use crate::{audit, members, orgs, ScreeningMember, StoreError, Tx};

/// A campaign with its rosters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignView {
    pub campaign: CampaignRecord,
    pub rosters: Vec<RosterRecord>,
}

impl Guard<'_> {
    async fn campaign_in(&self, tx: &mut Tx, id: i64) -> Result<CampaignRecord, StoreError> {
        let c = screening::campaign(tx, id).await?.ok_or(StoreError::NotFound)?;
        self.check(Action::Screen, Target { org_path: &c.scope_path, member_id: None }, "campaign", &id.to_string())
            .await?;
        Ok(c)
    }

    async fn open_campaign_in(&self, tx: &mut Tx, id: i64) -> Result<CampaignRecord, StoreError> {
        let c = self.campaign_in(tx, id).await?;
        if c.status != "open" {
            return Err(StoreError::Conflict("screening.closed"));
        }
        Ok(c)
    }

    /// Starts a campaign over the registry of the organization's subtree, for rosters from
    /// the area of `place_code` (any organization: where the members found live; the
    /// region itself when `None`).
    pub async fn campaign_create(
        &self,
        org_code: &str,
        place_code: Option<&str>,
        c: &Campaign,
    ) -> Result<CampaignRecord, StoreError> {
        let mut tx = self.store.write().await?;
        let org = orgs::by_code(&mut tx, org_code).await?.ok_or(StoreError::invalid("org_code", "org.unknown"))?;
        let place = match place_code {
            Some(code) => {
                Some(orgs::by_code(&mut tx, code).await?.ok_or(StoreError::invalid("place_org_code", "org.unknown"))?)
            }
            None => None,
        };
        self.check(Action::Screen, Target { org_path: &org.path, member_id: None }, "org", &org.code).await?;
        let id = screening::insert_campaign(&mut tx, c, &org, place.as_ref(), self.who.user_id).await?;
        let rec = screening::campaign(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut r = self.record("screen.campaign", "ok", "campaign", id.to_string());
        r.after = snapshot(&rec);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The campaigns over the caller's region, newest first.
    pub async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        if !self.who.role.may(Action::Screen) {
            self.audit_denial(Action::Screen.code(), "campaign", "list").await?;
            return Err(StoreError::Forbidden);
        }
        screening::campaigns(&mut self.store.read().await?, self.who.org_root()).await
    }

    pub async fn campaign(&self, id: i64) -> Result<CampaignView, StoreError> {
        let mut tx = self.store.read().await?;
        let campaign = self.campaign_in(&mut tx, id).await?;
        let rosters = screening::rosters(&mut tx, id).await?;
        Ok(CampaignView { campaign, rosters })
    }

    /// The registry a roster of an open campaign is matched against: the members of the
    /// campaign's region, with where each is checked in. Reading it is part of a run,
    /// audited with the roster when the results are stored.
    pub async fn campaign_registry(&self, id: i64) -> Result<(CampaignRecord, Vec<ScreeningMember>), StoreError> {
        let mut tx = self.store.read().await?;
        let c = self.open_campaign_in(&mut tx, id).await?;
        let members = members::for_screening(&mut tx, Some(&c.scope_path)).await?;
        Ok((c, members))
    }

    /// Stores a roster run: the file (kept until the campaign closes) and its matches.
    pub async fn campaign_add_roster(&self, id: i64, r: &NewRoster<'_>) -> Result<RosterRecord, StoreError> {
        let mut tx = self.store.write().await?;
        self.campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        let roster_id = screening::insert_roster(&mut tx, id, r, self.who.user_id).await?;
        let roster = screening::rosters(&mut tx, id).await?.into_iter().find(|x| x.id == roster_id);
        let roster = roster.ok_or(StoreError::NotFound)?;
        let mut rec = self.record("screen.run", "ok", "campaign", id.to_string());
        rec.after = snapshot(&roster);
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(roster)
    }

    /// A run that failed (a file that could not be read) is audited too: the registry was read.
    pub async fn campaign_run_failed(&self, id: i64, file_name: &str, code: &str) -> Result<(), StoreError> {
        let mut tx = self.store.side_write().await?;
        let mut rec = self.record("screen.run", "failed", "campaign", id.to_string());
        rec.after = Some(serde_json::json!({ "file_name": file_name, "error": code }));
        audit::write(&mut tx, rec).await?;
        tx.commit().await
    }

    /// A campaign's matches, best first; only the undecided ones when `open_only`.
    pub async fn campaign_matches(&self, id: i64, open_only: bool) -> Result<Vec<MatchRecord>, StoreError> {
        let mut tx = self.store.read().await?;
        self.campaign_in(&mut tx, id).await?;
        screening::matches(&mut tx, id, open_only).await
    }

    /// Accepts or rejects a match of an open campaign, audited. Accepting makes it a
    /// follow-up (a member to contact here, or a lost-contact member found); nothing is
    /// merged into the member's record.
    pub async fn campaign_decide(
        &self,
        id: i64,
        match_id: i64,
        version: i64,
        decision: Decision,
        note: Option<&str>,
    ) -> Result<MatchRecord, StoreError> {
        let mut tx = self.store.write().await?;
        self.campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        let found = screening::match_by_id(&mut tx, match_id).await?;
        let Some((campaign_id, before)) = found.filter(|(c, _)| *c == id) else {
            return Err(StoreError::NotFound);
        };
        screening::decide(&mut tx, match_id, version, decision, note, self.who.user_id).await?;
        let (_, after) = screening::match_by_id(&mut tx, match_id).await?.ok_or(StoreError::NotFound)?;
        let action = format!("screen.{}", decision.code());
        let mut rec = self.record(&action, "ok", "screen_match", match_id.to_string());
        rec.before = snapshot(&serde_json::json!({ "campaign": campaign_id, "member": before.member_id }));
        rec.after = snapshot(&serde_json::json!({ "decision": decision.code(), "outcome": after.outcome }));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Members accepted as candidates for the caller's subtree to contact and check in
    /// (campaigns whose place is there), newest first.
    pub async fn screening_candidates(&self) -> Result<Vec<FollowUp>, StoreError> {
        if !self.who.role.may(Action::ReadFlows) {
            self.audit_denial(Action::ReadFlows.code(), "screen_match", "candidates").await?;
            return Err(StoreError::Forbidden);
        }
        screening::candidates_for_place(&mut self.store.read().await?, self.who.org_root()).await
    }

    /// Where screening found a member who had lost contact (for the member's page).
    pub async fn member_screening_found(&self, member_id: i64) -> Result<Vec<FollowUp>, StoreError> {
        let mut tx = self.store.read().await?;
        // The outflow side's: not the member's own page.
        self.member_in(&mut tx, member_id, Action::ReadFlows).await?;
        screening::found_member(&mut tx, member_id).await
    }

    /// Closes a campaign: its roster files are deleted, and the roster data of every match
    /// not accepted.
    pub async fn campaign_close(&self, id: i64, version: i64) -> Result<CampaignRecord, StoreError> {
        let mut tx = self.store.write().await?;
        let before = self.campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        screening::close(&mut tx, id, version).await?;
        let after = screening::campaign(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut rec = self.record("screen.close", "ok", "campaign", id.to_string());
        (rec.before, rec.after) = (snapshot(&before), snapshot(&after));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(after)
    }
}
