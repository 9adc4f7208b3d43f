//! Kite's storage: one API over SQLite and PostgreSQL.
//!
//! - [`db`] holds the backend differences (connection, migrations, dispatch).
//! - The repository modules (`orgs`, `members`, `flows`, `accounts`, `audit`) hold the
//!   SQL, written once for both backends; they are crate-private.
//! - [`Guard`] is the API the server uses for everything a user does: it decides
//!   access with the domain policy, filters every list by the caller's scope and
//!   writes the audit log in the same transaction as each change.

pub mod db;
mod error;
mod models;

mod accounts;
mod agreements;
mod audit;
mod certificates;
mod checkins;
mod evaluations;
mod flows;
mod guard;
mod history;
mod members;
mod messages;
mod orgs;
mod public;
mod screening;
mod service_points;
pub mod testing;
mod transfers;

pub use accounts::{Accounts, NewSessionRow, NewUser, SessionInfo, User};
pub use agreements::{AgreementFile, AgreementParty, AgreementQuery, AgreementRecord, AgreementSummary, Partner};
pub use audit::AuditEntry;
pub use certificates::{
    CertificateCounts, CertificateRecord, CertificateStep, FlowCertificate, PublicCertificate,
    Queue as CertificateQueue,
};
pub use checkins::{CheckinQuery, CheckinReceipt, CheckinRecord, CheckinTarget, SuggestedOrg};
pub use db::{Backend, Tx};
pub use error::StoreError;
pub use evaluations::InflowEvaluation;
pub use guard::{
    CampaignView, CertificateDraft, CertificateStepInput, CertificateView, Client, FlowView, Guard, PointView,
    TransferRequest, TransferStepInput, TransferView, MAX_CERTIFICATE_PHOTO_BYTES, MAX_EXPORT_ROWS,
};
pub use members::ScreeningMember;
pub use messages::{Outbox, OutboxMessage, MAX_DELIVERIES};
pub use models::*;
pub use public::Public;
pub use screening::{
    CampaignRecord, FollowUp, MatchFilter, MatchRecord, NewMatch, NewRoster, OrgResult, RosterDetail, RosterRecord,
    RunEnd,
};
pub use service_points::{NewServicePoint, PointStaff, ServicePoint};
pub use transfers::{ArrivalRecord, Queue as TransferQueue, TransferCounts, TransferRecord, TransferStep};

use db::Pools;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    evaluation_cycle: kite_domain::EvaluationCycle,
    letter_rules: kite_domain::transfer::LetterRules,
    checkin_writer: checkins::CheckinWriter,
}

impl Store {
    /// Connects to `sqlite://PATH` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(Pools::connect(url).await?))
    }

    pub async fn connect_postgres(opts: sqlx::postgres::PgConnectOptions) -> Result<Self, StoreError> {
        Ok(Self::new(Pools::postgres(opts).await?))
    }

    pub async fn connect_sqlite(opts: sqlx::sqlite::SqliteConnectOptions) -> Result<Self, StoreError> {
        Ok(Self::new(Pools::sqlite(opts).await?))
    }

    fn new(pools: Pools) -> Self {
        Self {
            pools,
            evaluation_cycle: kite_domain::evaluation::DEFAULT_CYCLE,
            letter_rules: Default::default(),
            checkin_writer: Default::default(),
        }
    }

    /// How often inflow members are evaluated (half-yearly unless set).
    pub fn with_evaluation_cycle(mut self, cycle: kite_domain::EvaluationCycle) -> Self {
        self.evaluation_cycle = cycle;
        self
    }

    /// Introduction letters' default and longest validity (10 days, 3 months unless set).
    pub fn with_letter_rules(mut self, rules: kite_domain::transfer::LetterRules) -> Self {
        self.letter_rules = rules;
        self
    }

    pub fn letter_rules(&self) -> kite_domain::transfer::LetterRules {
        self.letter_rules
    }

    pub fn evaluation_cycle(&self) -> kite_domain::EvaluationCycle {
        self.evaluation_cycle
    }

    /// The daily date rules applied for `today` ([`kite_domain::flow::counts_as_mobile`];
    /// introduction letters and activity certificates past their last day become `expired`,
    /// with a history step);
    /// idempotent, so it runs at start and then on a timer. Returns how many flows changed.
    pub async fn run_daily(&self, today: chrono::NaiveDate) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let letters = transfers::expire_letters(&mut tx, today).await?;
        job_audit(
            &mut tx,
            "job.expire_letters",
            "transfer",
            serde_json::json!({ "date": today, "transfers": letters }),
            letters,
        )
        .await?;
        let lapsed = certificates::expire_lapsed(&mut tx, None, today).await?;
        let after = serde_json::json!({ "date": today, "certificates": lapsed });
        job_audit(&mut tx, "job.expire_certificates", "certificate", after, lapsed).await?;
        let n = flows::mark_mobile(&mut tx, today).await?;
        job_audit(&mut tx, "job.mark_mobile", "flow", serde_json::json!({ "date": today, "flows": n }), n).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// Applies pending migrations; safe to run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.pools.migrate().await
    }

    pub async fn close(&self) {
        self.pools.close().await
    }

    /// Acts as `who`, from `client`: every call is access-checked and audited.
    pub fn guard(&self, who: kite_domain::Principal, client: Client) -> Guard<'_> {
        Guard::new(self, who, client)
    }

    /// Accounts, sessions and login throttling: used before a principal exists.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }

    /// What anyone may do without an account (self-service check-in), from `client`.
    pub fn public(&self, client: Client) -> Public<'_> {
        Public::new(self, client)
    }

    /// The message outbox, for the notifier and the development page.
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox { store: self }
    }

    /// Trusted bulk and maintenance operations for the command line and the demo loader.
    pub fn admin(&self) -> Admin<'_> {
        Admin { store: self }
    }

    pub(crate) async fn read(&self) -> Result<Tx, StoreError> {
        self.pools.read().await
    }

    pub(crate) async fn write(&self) -> Result<Tx, StoreError> {
        self.pools.write().await
    }

    pub(crate) async fn side_write(&self) -> Result<Tx, StoreError> {
        self.pools.side_write().await
    }

    /// See [`db::Pools::write_immediate`]: permission checks (which may audit a refusal
    /// through [`Self::side_write`]) come before it, in a read transaction.
    pub(crate) async fn write_immediate(&self) -> Result<Tx, StoreError> {
        self.pools.write_immediate().await
    }

    /// Writes a prepared check-in through the batching writer; answers after the commit.
    pub(crate) async fn write_checkin(&self, submit: Box<checkins::Submit>) -> Result<CheckinReceipt, StoreError> {
        self.checkin_writer.send(&self.pools, submit).await
    }

    /// Answers whether the database responds (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut tx = self.read().await?;
        exec!(&mut tx, sqlx::query("SELECT 1"))?;
        Ok(())
    }
}

/// Today's date in China Standard Time, in which dates are recorded.
/// The audit record of a daily job's run, when it changed anything.
async fn job_audit(
    tx: &mut Tx,
    action: &str,
    target_type: &str,
    after: serde_json::Value,
    changed: u64,
) -> Result<(), StoreError> {
    if changed == 0 {
        return Ok(());
    }
    let record = audit::Record {
        user_id: None,
        username: None,
        client: None,
        action,
        outcome: "ok",
        target_type,
        target_id: String::new(),
        before: None,
        after: Some(after),
    };
    audit::write(tx, record).await
}

pub(crate) fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive()
}

/// Whether text can be in the database at all: PostgreSQL text cannot hold U+0000 and
/// validation refuses it, so a lookup by such a value finds nothing without asking.
pub(crate) fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// Operations without a principal, for trusted callers only (CLI, demo loader, benchmarks).
pub struct Admin<'a> {
    store: &'a Store,
}

impl Admin<'_> {
    pub async fn org_count(&self) -> Result<i64, StoreError> {
        orgs::count_all(&mut self.store.read().await?).await
    }

    /// Inserts organizations (parents before children) in one transaction.
    pub async fn insert_orgs(&self, rows: &[NewOrg]) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.store.write().await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in rows {
            ids.push(orgs::insert(&mut tx, r).await?.id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Inserts members in one transaction without touching counters: call `recount` after.
    pub async fn bulk_insert_members(&self, rows: &[NewMember]) -> Result<(), StoreError> {
        members::bulk_insert(self.store, rows).await
    }

    pub async fn bulk_insert_flows(&self, rows: &[NewFlow]) -> Result<(), StoreError> {
        flows::bulk_insert(self.store, rows).await
    }

    /// The members a screening run compares rosters with: of the subtree at `root`'s
    /// code (all when `None`), with where each is checked in, if anywhere.
    pub async fn screening_members(&self, root: Option<&str>) -> Result<Vec<ScreeningMember>, StoreError> {
        let mut tx = self.store.read().await?;
        let path = match root {
            Some(code) => Some(orgs::by_code(&mut tx, code).await?.ok_or(StoreError::NotFound)?.path),
            None => None,
        };
        members::for_screening(&mut tx, path.as_deref()).await
    }

    /// An organization's path (for subtree checks made outside the store), if it exists.
    pub async fn org_path(&self, code: &str) -> Result<Option<String>, StoreError> {
        Ok(orgs::by_code(&mut self.store.read().await?, code).await?.map(|o| o.path))
    }

    /// At start: screening runs a stop cut off have failed (`screening.interrupted`, to be
    /// run again), uploads it cut off are dropped, and the deletions of closed campaigns it
    /// cut off are finished. Returns how many runs and uploads.
    pub async fn screening_interrupted(&self) -> Result<(u64, u64), StoreError> {
        let mut tx = self.store.write().await?;
        let n = screening::interrupted(&mut tx).await?;
        let closed = screening::unpurged(&mut tx).await?;
        tx.commit().await?;
        // What closing campaigns deletes, finished where a stop cut it off.
        for id in closed {
            screening::purge(self.store, id).await?;
        }
        Ok(n)
    }

    /// Records a run of the command line's screening in the audit log, with the system
    /// user who ran it.
    pub async fn audit_screening(
        &self,
        system_user: &str,
        action: &str,
        after: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        audit::write(
            &mut tx,
            audit::Record {
                user_id: None,
                username: Some(system_user).filter(|u| !u.is_empty()),
                client: Some("cli"),
                action,
                outcome: "ok",
                target_type: "screening",
                target_id: String::new(),
                before: None,
                after: Some(after),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Recomputes every organization's counters from the rows.
    /// Dates an issued letter back, as if issued `days` ago with the default validity (demo
    /// data: a letter that lapsed while nobody received it). The daily job then expires it.
    pub async fn backdate_letter(&self, transfer_id: i64, days: u64) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        let issued = today() - chrono::Days::new(days);
        let until = self.store.letter_rules.valid_until(issued, None).map_err(|c| StoreError::Config(c.into()))?;
        let n = exec!(
            &mut tx,
            sqlx::query(
                "UPDATE transfers SET letter_issued_on = $1, letter_until = $2 WHERE id = $3 AND status = 'approved'"
            )
            .bind(issued)
            .bind(until)
            .bind(transfer_id)
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("transfer.wrong_status"));
        }
        tx.commit().await
    }

    pub async fn recount(&self) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        orgs::recount(&mut tx).await?;
        tx.commit().await
    }

    /// Inserts service points (parents before children) in one transaction.
    pub async fn insert_service_points(&self, rows: &[NewServicePoint]) -> Result<(), StoreError> {
        let mut tx = self.store.write().await?;
        for r in rows {
            service_points::insert(&mut tx, r).await?;
        }
        tx.commit().await
    }

    pub async fn org_by_code(&self, code: &str) -> Result<Option<Org>, StoreError> {
        orgs::by_code(&mut self.store.read().await?, code).await
    }
}
