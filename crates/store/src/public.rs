//! What anyone may do without an account: open a check-in link, find an organization,
//! ask for a one-time code and check in with it.

use kite_domain::checkin::{Checkin, LinkKind, Seeker};
use kite_domain::CheckinChannel;

use crate::checkins::{self, Actor, CheckinReceipt, CheckinTarget, Submission, SuggestedOrg};
use crate::{messages, orgs, Client, Org, Store, StoreError};

pub struct Public<'a> {
    store: &'a Store,
    client: Client,
}

impl<'a> Public<'a> {
    pub(crate) fn new(store: &'a Store, client: Client) -> Self {
        Self { store, client }
    }

    /// The organization or service point a link opens; unknown or closed links are not found.
    pub async fn checkin_target(&self, kind: LinkKind, code: &str) -> Result<CheckinTarget, StoreError> {
        let mut tx = self.store.read().await?;
        checkins::target(&mut tx, kind, code).await?.ok_or(StoreError::NotFound)
    }

    /// Public verification of an activity certificate: whether it is valid, who issued it
    /// for which period and a masked name; nothing else. Numbers that cannot be one are
    /// not looked up.
    pub async fn verify_certificate(&self, number: &str) -> Result<Option<crate::PublicCertificate>, StoreError> {
        let Some(number) = kite_domain::certificate::number_from_scan(number) else {
            return Ok(None);
        };
        let mut tx = self.store.read().await?;
        crate::certificates::public(&mut tx, &number).await
    }

    /// Active organizations by name, code or division, for naming one's home organization.
    pub async fn find_orgs(&self, q: &str, limit: i64) -> Result<Vec<Org>, StoreError> {
        let q = q.trim();
        if q.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let mut tx = self.store.read().await?;
        orgs::search(&mut tx, None, q, limit.clamp(1, 20)).await
    }

    /// Organizations that suit the member, best first. Without a home county in `seeker`,
    /// the home organization named by `home_org_code` gives it.
    pub async fn suggestions(
        &self,
        seeker: &Seeker<'_>,
        home_org_code: Option<&str>,
    ) -> Result<Vec<SuggestedOrg>, StoreError> {
        let mut tx = self.store.read().await?;
        let home_division = match (seeker.home_county, home_org_code) {
            (None, Some(code)) if crate::storable(code) => orgs::by_code(&mut tx, code).await?.map(|o| o.division_code),
            _ => None,
        };
        let seeker = Seeker { home_county: seeker.home_county.or(home_division.as_deref()), ..*seeker };
        checkins::suggestions(&mut tx, &seeker, 8).await
    }

    /// Queues a one-time code's SMS for `phone`; refused if one was sent within the minute.
    pub async fn send_code(&self, phone: &str, code_hash: &str, sms: &str) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        messages::issue_code(&mut tx, phone, code_hash, sms).await?;
        tx.commit().await
    }

    /// A self-service check-in at `target` (as [`Self::checkin_target`] found it), proven by
    /// the one-time code sent to its phone.
    pub async fn checkin(
        &self,
        target: &CheckinTarget,
        c: &Checkin,
        request_key: &str,
        code_hash: &str,
    ) -> Result<CheckinReceipt, StoreError> {
        let who = Actor { user_id: None, username: None, client: self.client.address.as_deref() };
        let s = Submission {
            target,
            checkin: c,
            request_key,
            channel: CheckinChannel::SelfService,
            code_hash: Some(code_hash),
        };
        checkins::submit(self.store, &who, &s).await
    }

    /// [`Self::checkin`] at a link not looked up yet: one read transaction instead of
    /// two. An unknown or closed link is not found.
    pub async fn checkin_at_link(
        &self,
        kind: LinkKind,
        code: &str,
        c: &Checkin,
        request_key: &str,
        code_hash: &str,
    ) -> Result<CheckinReceipt, StoreError> {
        let who = Actor { user_id: None, username: None, client: self.client.address.as_deref() };
        let link = (kind, code);
        checkins::submit_at_link(self.store, &who, link, c, request_key, CheckinChannel::SelfService, Some(code_hash))
            .await
    }
}
