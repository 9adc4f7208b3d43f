//! Screening campaigns: run by those with the screening permission of a region (its
//! organization administrators), over that region's registry only. Every run, decision
//! and closing is audited; nothing is written to member records.

use kite_domain::access::{Action, Target};
use kite_domain::screening::{Campaign, Decision};
use serde::Serialize;
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::screening::{
    self, CampaignRecord, FollowUp, MatchFilter, MatchRecord, NewMatch, NewRoster, OrgResult, RosterDetail,
    RosterRecord, RunEnd,
};
use crate::{audit, members, orgs, ScreeningMember, StoreError, Tx};

/// A campaign with its rosters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignView {
    pub campaign: CampaignRecord,
    pub rosters: Vec<RosterRecord>,
    /// The matches by organization of the region.
    pub by_org: Vec<OrgResult>,
}

impl Guard<'_> {
    /// A write of a long task (upload, run) on a campaign of the caller's region: the
    /// permission is checked first in a read, then the writer is taken at once, so that
    /// the write cannot fail because another connection wrote between its read and write.
    async fn background_write(&self, id: i64) -> Result<Tx, StoreError> {
        self.campaign_in(&mut self.store.read().await?, id).await?;
        self.store.write_immediate().await
    }

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
        let by_org = screening::results_by_org(&mut tx, &campaign).await?;
        Ok(CampaignView { campaign, rosters, by_org })
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

    /// An open campaign of the caller's region (refused with `screening.closed` otherwise).
    pub async fn campaign_open(&self, id: i64) -> Result<CampaignRecord, StoreError> {
        self.open_campaign_in(&mut self.store.read().await?, id).await
    }

    /// A roster of the campaign, with what was detected in it.
    pub async fn campaign_roster(&self, id: i64, roster_id: i64) -> Result<RosterDetail, StoreError> {
        let mut tx = self.store.read().await?;
        self.campaign_in(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await
    }

    /// Starts an upload: the roster's row, to which the file's parts are then added.
    pub async fn roster_upload_begin(&self, id: i64, r: &NewRoster<'_>) -> Result<i64, StoreError> {
        let mut tx = self.store.write().await?;
        self.open_campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        let roster_id = screening::begin_roster(&mut tx, id, r, self.who.user_id).await?;
        tx.commit().await?;
        Ok(roster_id)
    }

    /// Adds part `seq` of an upload's file, each in its own transaction so that a large
    /// file does not hold the writer. Refused once the campaign has closed.
    pub async fn roster_upload_part(&self, id: i64, roster_id: i64, seq: i64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.background_write(id).await?;
        screening::lock_open(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::set_status(&mut tx, roster_id, &["uploading"], "uploading").await?;
        screening::add_part(&mut tx, roster_id, seq, bytes).await?;
        tx.commit().await
    }

    /// Ends an upload: the roster waits for its columns to be checked and a run. Audited.
    pub async fn roster_upload_end(&self, id: i64, roster_id: i64) -> Result<RosterDetail, StoreError> {
        let mut tx = self.store.write().await?;
        self.campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::set_status(&mut tx, roster_id, &["uploading"], "uploaded").await?;
        let roster = roster_of(&mut tx, id, roster_id).await?;
        let mut rec = self.record("screen.upload", "ok", "campaign", id.to_string());
        rec.after = snapshot(&serde_json::json!({
            "roster": roster_id, "file_name": roster.roster.file_name, "size_bytes": roster.roster.size_bytes,
        }));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(roster)
    }

    /// Drops an upload that could not be finished, with the parts stored so far.
    pub async fn roster_upload_abort(&self, id: i64, roster_id: i64) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        self.campaign_in(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::drop_upload(&mut tx, roster_id).await?;
        tx.commit().await
    }

    /// Part `seq` of a roster's file, for a run (`None` past the last).
    pub async fn roster_file_part(&self, id: i64, roster_id: i64, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut tx = self.store.read().await?;
        self.campaign_in(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::part(&mut tx, roster_id, seq).await
    }

    /// Marks a roster running with the mapping it is read with; its rows are then matched
    /// against [`Self::campaign_registry`]. Audited: a run reads the region's registry.
    pub async fn roster_run_start(
        &self,
        id: i64,
        roster_id: i64,
        mapping: &serde_json::Value,
    ) -> Result<RosterDetail, StoreError> {
        let mut tx = self.store.write().await?;
        self.open_campaign_in(&mut tx, id).await?;
        screening::lock_open(&mut tx, id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::start_run(&mut tx, roster_id, mapping).await?;
        let roster = roster_of(&mut tx, id, roster_id).await?;
        let mut rec = self.record("screen.run_start", "ok", "campaign", id.to_string());
        rec.after = snapshot(&serde_json::json!({ "roster": roster_id, "mapping": mapping }));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(roster)
    }

    /// Stores a batch of a running roster's matches (shown once the run is done).
    pub async fn roster_run_matches(&self, id: i64, roster_id: i64, matches: &[NewMatch]) -> Result<(), StoreError> {
        let mut tx = self.background_write(id).await?;
        screening::lock_open(&mut tx, id).await?;
        screening::set_status(&mut tx, roster_id, &["running"], "running").await?;
        screening::insert_matches(&mut tx, id, roster_id, matches).await?;
        tx.commit().await
    }

    /// Removes up to a few thousand matches of a running roster (before a failed or
    /// cancelled run's end); returns how many.
    pub async fn roster_run_clear(&self, id: i64, roster_id: i64) -> Result<u64, StoreError> {
        let mut tx = self.background_write(id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::set_status(&mut tx, roster_id, &["running"], "running").await?;
        let n = screening::delete_matches(&mut tx, roster_id, 5000).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Ends a run: done with its counts, or failed or cancelled with its matches removed.
    /// Every run is audited, whatever its end.
    pub async fn roster_run_finish(&self, id: i64, roster_id: i64, end: &RunEnd) -> Result<RosterDetail, StoreError> {
        let mut tx = self.background_write(id).await?;
        roster_of(&mut tx, id, roster_id).await?;
        screening::finish_run(&mut tx, roster_id, end).await?;
        let roster = roster_of(&mut tx, id, roster_id).await?;
        let outcome = match end {
            RunEnd::Done { .. } => "ok",
            RunEnd::Failed(_) => "failed",
            RunEnd::Cancelled => "cancelled",
        };
        let mut rec = self.record("screen.run", outcome, "campaign", id.to_string());
        let mut after = serde_json::to_value(&roster.roster).unwrap_or_default();
        if let Some(o) = after.as_object_mut() {
            o.remove("errors");
        }
        rec.after = Some(after);
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(roster)
    }

    /// A campaign's matches, best first; only the undecided ones when `open_only`.
    pub async fn campaign_matches(&self, id: i64, open_only: bool) -> Result<Vec<MatchRecord>, StoreError> {
        let f = MatchFilter { open_only, limit: 1000, ..Default::default() };
        Ok(self.campaign_match_page(id, &f).await?.1)
    }

    /// A page of a campaign's matches as filtered, best first, with how many there are.
    pub async fn campaign_match_page(&self, id: i64, f: &MatchFilter) -> Result<(i64, Vec<MatchRecord>), StoreError> {
        let mut tx = self.store.read().await?;
        self.campaign_in(&mut tx, id).await?;
        screening::matches(&mut tx, id, f).await
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
        if screening::running(&mut tx, id).await? {
            return Err(StoreError::Conflict("screening.run_in_progress"));
        }
        screening::close(&mut tx, id, version).await?;
        let closed = screening::campaign(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut rec = self.record("screen.close", "ok", "campaign", id.to_string());
        (rec.before, rec.after) = (snapshot(&before), snapshot(&closed));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        // The deletions, batch by batch; a stop midway is finished at the next start.
        screening::purge(self.store, id).await?;
        screening::campaign(&mut self.store.read().await?, id).await?.ok_or(StoreError::NotFound)
    }
}

/// The roster `roster_id` if it belongs to campaign `id`.
async fn roster_of(tx: &mut Tx, id: i64, roster_id: i64) -> Result<RosterDetail, StoreError> {
    screening::roster(tx, roster_id).await?.filter(|r| r.campaign_id == id).ok_or(StoreError::NotFound)
}
