//! Screening campaigns: the campaign, its rosters and the matches under review. The
//! matching runs in the server with `kite-screen`; who may do what is decided in
//! `guard/screening.rs`.

use chrono::{DateTime, NaiveDate, Utc};
use kite_domain::id_number;
use kite_domain::screening::{Campaign, Decision};
use serde::Serialize;
use utoipa::ToSchema;

use crate::models::Org;
use crate::{exec, on, StoreError, Tx};

/// A campaign with its counts.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct CampaignRecord {
    pub id: i64,
    pub name: String,
    /// The region screened: this organization's subtree.
    pub org_code: String,
    pub org_name: String,
    /// Where the rosters come from; the region itself when `None`.
    pub place_org_code: Option<String>,
    pub place_org_name: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// `open` or `closed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub rosters: i64,
    pub rows_read: i64,
    pub matches: i64,
    pub accepted: i64,
    pub rejected: i64,
    /// Accepted matches whose member has checked in at the place since (登记上).
    pub registered: i64,
    #[serde(skip)]
    pub scope_path: String,
    #[serde(skip)]
    pub place_path: Option<String>,
}

impl CampaignRecord {
    /// The path outcomes are decided against.
    pub fn place(&self) -> &str {
        self.place_path.as_deref().unwrap_or(&self.scope_path)
    }
}

/// A roster as uploaded and matched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RosterRecord {
    pub id: i64,
    pub file_name: String,
    /// The department it came from.
    pub source: Option<String>,
    /// `uploading`, `uploaded` (columns to check, then run), `running`, `done`, `failed`
    /// or `cancelled`.
    pub status: String,
    /// Why the last run failed (a message code such as `screening.file_unreadable`).
    pub failure: Option<String>,
    pub size_bytes: i64,
    pub rows_read: i64,
    pub unreadable: i64,
    /// Rows with a sure match, and rows whose best candidates are to review (the other
    /// rows read had no match).
    pub matched: i64,
    pub to_review: i64,
    pub uploaded_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the file is still kept (until the campaign closes).
    pub kept: bool,
    /// Unreadable rows: `[{"line": 7, "reason": "row.too_few_fields"}, …]`.
    pub errors: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct RosterRow {
    id: i64,
    file_name: String,
    source: Option<String>,
    status: String,
    failure: Option<String>,
    size_bytes: i64,
    rows_read: i64,
    unreadable: i64,
    matched: i64,
    to_review: i64,
    uploaded_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    kept: bool,
    errors: Option<String>,
}

impl From<RosterRow> for RosterRecord {
    fn from(r: RosterRow) -> Self {
        RosterRecord {
            id: r.id,
            file_name: r.file_name,
            source: r.source,
            status: r.status,
            failure: r.failure,
            size_bytes: r.size_bytes,
            rows_read: r.rows_read,
            unreadable: r.unreadable,
            matched: r.matched,
            to_review: r.to_review,
            uploaded_at: r.uploaded_at,
            finished_at: r.finished_at,
            kept: r.kept,
            errors: r.errors.and_then(|e| serde_json::from_str(&e).ok()),
        }
    }
}

/// A roster with what was detected on upload: the column mapping (as set for the next
/// run) and the file's format and first rows (ID numbers masked), until the campaign closes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RosterDetail {
    pub campaign_id: i64,
    #[serde(flatten)]
    pub roster: RosterRecord,
    /// `{"header_line": 1, "columns": [{"index": 0, "header": "姓名", "field": "name"}, …]}`.
    pub mapping: Option<serde_json::Value>,
    /// `{"info": {"format": "csv", …}, "preview": [[line, [cells…]], …]}`.
    pub detected: Option<serde_json::Value>,
}

/// A roster row matched to a member, for review. The member's ID number is masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MatchRecord {
    pub id: i64,
    pub roster_id: i64,
    pub line: i64,
    /// The roster row as read (its ID number masked); `None` once the campaign closed
    /// without accepting it.
    pub row: Option<serde_json::Value>,
    pub member_id: i64,
    pub member_name: String,
    pub member_id_number_masked: String,
    pub member_org_name: String,
    /// The member's side for the side-by-side review (the birth date is left out of
    /// follow-ups: beside the masked ID number it gives the whole number back).
    pub member_birth_date: Option<NaiveDate>,
    pub member_phone: Option<String>,
    pub member_address: Option<String>,
    pub score: f64,
    /// `match` or `review`.
    pub band: String,
    /// `lost_contact_found`, `known_here` or `candidate_inflow`.
    pub outcome: String,
    /// Each field's agreement level and weight.
    pub explanation: Option<serde_json::Value>,
    pub decision: Option<Decision>,
    pub decided_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub version: i64,
}

/// A matched row to store.
#[derive(Debug, Clone)]
pub struct NewMatch {
    pub line: i64,
    pub row: serde_json::Value,
    pub member_id: i64,
    pub score: f64,
    pub band: &'static str,
    pub outcome: &'static str,
    pub explanation: serde_json::Value,
}

/// A roster being uploaded, with what was detected in it.
#[derive(Debug, Clone)]
pub struct NewRoster<'a> {
    pub file_name: &'a str,
    pub source: Option<&'a str>,
    pub size_bytes: i64,
    /// The proposed column mapping (JSON).
    pub mapping: serde_json::Value,
    /// Format, encoding and first rows (ID numbers masked), JSON.
    pub detected: serde_json::Value,
}

const CAMPAIGNS: &str = "SELECT c.id, c.name, o.code AS org_code, o.name AS org_name, p.code AS place_org_code, \
     p.name AS place_org_name, c.starts_on, c.ends_on, c.status, c.created_at, c.closed_at, c.version, c.scope_path, \
     c.place_path, \
     (SELECT CAST(COUNT(*) AS BIGINT) FROM screen_rosters r WHERE r.campaign_id = c.id \
      AND r.status <> 'uploading') AS rosters, \
     (SELECT CAST(COALESCE(SUM(r.rows_read), 0) AS BIGINT) FROM screen_rosters r WHERE r.campaign_id = c.id) AS rows_read, \
     (SELECT CAST(COALESCE(SUM(r.matched + r.to_review), 0) AS BIGINT) FROM screen_rosters r \
      WHERE r.campaign_id = c.id) AS matches, \
     (SELECT CAST(COUNT(*) AS BIGINT) FROM screen_matches m WHERE m.campaign_id = c.id \
      AND m.decision = 'accepted') AS accepted, \
     (SELECT CAST(COUNT(*) AS BIGINT) FROM screen_matches m WHERE m.campaign_id = c.id \
      AND m.decision = 'rejected') AS rejected, \
     (SELECT CAST(COUNT(*) AS BIGINT) FROM screen_matches m WHERE m.campaign_id = c.id \
      AND m.decision = 'accepted' AND EXISTS (SELECT 1 FROM checkins k WHERE k.member_id = m.member_id \
      AND k.created_at >= m.decided_at AND k.status IN ('pending', 'home_unknown', 'confirmed') \
      AND k.inflow_path >= COALESCE(c.place_path, c.scope_path) \
      AND k.inflow_path < COALESCE(c.place_path, c.scope_path) || '~')) AS registered \
     FROM screen_campaigns c JOIN organizations o ON o.id = c.org_id \
     LEFT JOIN organizations p ON p.id = c.place_org_id";

pub(crate) async fn insert_campaign(
    tx: &mut Tx,
    c: &Campaign,
    org: &Org,
    place: Option<&Org>,
    user_id: i64,
) -> Result<i64, StoreError> {
    Ok(on!(tx, conn => sqlx::query_scalar(
        "INSERT INTO screen_campaigns (name, org_id, scope_path, place_org_id, place_path, starts_on, ends_on, status, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING id")
        .bind(&c.name).bind(org.id).bind(&org.path).bind(place.map(|p| p.id)).bind(place.map(|p| p.path.as_str()))
        .bind(c.starts_on).bind(c.ends_on).bind(user_id).bind(Utc::now())
        .fetch_one(conn).await)?)
}

pub(crate) async fn campaign(tx: &mut Tx, id: i64) -> Result<Option<CampaignRecord>, StoreError> {
    let sql = format!("{CAMPAIGNS} WHERE c.id = $1");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
}

/// Campaigns over the subtree at `root` or inside it (`None`: all), newest first.
pub(crate) async fn campaigns(tx: &mut Tx, root: Option<&str>) -> Result<Vec<CampaignRecord>, StoreError> {
    let (lo, hi) = kite_domain::org::scope_range(root);
    let sql = format!("{CAMPAIGNS} WHERE c.scope_path >= $1 AND c.scope_path < $2 ORDER BY c.id DESC LIMIT 200");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(&lo).bind(&hi).fetch_all(c).await)?)
}

const ROSTERS: &str = "SELECT r.id, r.file_name, r.source, r.status, r.failure, r.size_bytes, r.rows_read, \
     r.unreadable, r.matched, r.to_review, r.uploaded_at, r.finished_at, \
     EXISTS (SELECT 1 FROM screen_roster_parts p WHERE p.roster_id = r.id) AS kept, r.errors \
     FROM screen_rosters r";

pub(crate) async fn rosters(tx: &mut Tx, campaign_id: i64) -> Result<Vec<RosterRecord>, StoreError> {
    let sql = format!("{ROSTERS} WHERE r.campaign_id = $1 AND r.status <> 'uploading' ORDER BY r.id");
    let rows: Vec<RosterRow> = on!(tx, c => sqlx::query_as(&sql).bind(campaign_id).fetch_all(c).await)?;
    Ok(rows.into_iter().map(RosterRecord::from).collect())
}

pub(crate) async fn roster(tx: &mut Tx, roster_id: i64) -> Result<Option<RosterDetail>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        campaign_id: i64,
        mapping: Option<String>,
        detected: Option<String>,
        #[sqlx(flatten)]
        r: RosterRow,
    }
    let sql = format!(
        "SELECT x.*, s.campaign_id, s.mapping, s.detected FROM ({ROSTERS}) x JOIN screen_rosters s ON s.id = x.id \
         WHERE x.id = $1"
    );
    let row: Option<Row> = on!(tx, c => sqlx::query_as(&sql).bind(roster_id).fetch_optional(c).await)?;
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(row.map(|r| RosterDetail {
        campaign_id: r.campaign_id,
        roster: r.r.into(),
        mapping: json(r.mapping),
        detected: json(r.detected),
    }))
}

/// A roster being uploaded: its row, before its parts.
pub(crate) async fn begin_roster(
    tx: &mut Tx,
    campaign_id: i64,
    r: &NewRoster<'_>,
    user_id: i64,
) -> Result<i64, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "INSERT INTO screen_rosters (campaign_id, file_name, source, status, size_bytes, mapping, detected, rows_read, \
         unreadable, matched, to_review, uploaded_by, uploaded_at) \
         VALUES ($1, $2, $3, 'uploading', $4, $5, $6, 0, 0, 0, 0, $7, $8) RETURNING id")
        .bind(campaign_id).bind(r.file_name).bind(r.source).bind(r.size_bytes).bind(r.mapping.to_string())
        .bind(r.detected.to_string()).bind(user_id).bind(Utc::now())
        .fetch_one(c).await)?)
}

/// Moves a roster from one of `from` to `to`; a conflict if it is in none of them.
pub(crate) async fn set_status(tx: &mut Tx, roster_id: i64, from: &[&str], to: &str) -> Result<(), StoreError> {
    let list = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let sql = format!("UPDATE screen_rosters SET status = $1 WHERE id = $2 AND status IN ({list})");
    if exec!(tx, sqlx::query(&sql).bind(to).bind(roster_id))? == 0 {
        return Err(StoreError::Conflict("screening.roster_state"));
    }
    Ok(())
}

pub(crate) async fn add_part(tx: &mut Tx, roster_id: i64, seq: i64, bytes: &[u8]) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query("INSERT INTO screen_roster_parts (roster_id, seq, bytes) VALUES ($1, $2, $3)")
            .bind(roster_id)
            .bind(seq)
            .bind(bytes)
    )?;
    Ok(())
}

/// Part `seq` of a roster's file (`None` past the last).
pub(crate) async fn part(tx: &mut Tx, roster_id: i64, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT bytes FROM screen_roster_parts WHERE roster_id = $1 AND seq = $2")
        .bind(roster_id).bind(seq).fetch_optional(c).await)?)
}

/// Sets the mapping a run uses and marks the roster running.
pub(crate) async fn start_run(tx: &mut Tx, roster_id: i64, mapping: &serde_json::Value) -> Result<(), StoreError> {
    set_status(tx, roster_id, &["uploaded", "failed", "cancelled"], "running").await?;
    exec!(
        tx,
        sqlx::query(
            "UPDATE screen_rosters SET mapping = $1, failure = NULL, rows_read = 0, unreadable = 0, matched = 0, \
             to_review = 0, errors = NULL, finished_at = NULL WHERE id = $2"
        )
        .bind(mapping.to_string())
        .bind(roster_id)
    )?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunEnd {
    Done { rows_read: i64, unreadable: i64, errors: serde_json::Value },
    Failed(&'static str),
    Cancelled,
}

/// Ends a running roster: its counts when done; otherwise its matches go and the failure
/// is kept (the file stays, for another run).
pub(crate) async fn finish_run(tx: &mut Tx, roster_id: i64, end: &RunEnd) -> Result<(), StoreError> {
    let (status, failure) = match end {
        RunEnd::Done { .. } => ("done", None),
        RunEnd::Failed(code) => ("failed", Some(*code)),
        RunEnd::Cancelled => ("cancelled", None),
    };
    set_status(tx, roster_id, &["running"], status).await?;
    if let RunEnd::Done { rows_read, unreadable, errors } = end {
        exec!(
            tx,
            sqlx::query(
                "UPDATE screen_rosters SET rows_read = $1, unreadable = $2, errors = $3, finished_at = $4, \
                 matched = (SELECT COUNT(DISTINCT m.line) FROM screen_matches m WHERE m.roster_id = $5 \
                            AND m.band = 'match'), \
                 to_review = (SELECT COUNT(DISTINCT m.line) FROM screen_matches m WHERE m.roster_id = $5 \
                              AND m.band = 'review' AND NOT EXISTS (SELECT 1 FROM screen_matches x \
                              WHERE x.roster_id = $5 AND x.line = m.line AND x.band = 'match')) \
                 WHERE id = $5"
            )
            .bind(rows_read)
            .bind(unreadable)
            .bind(errors.to_string())
            .bind(Utc::now())
            .bind(roster_id)
        )?;
    } else {
        exec!(tx, sqlx::query("DELETE FROM screen_matches WHERE roster_id = $1").bind(roster_id))?;
        exec!(
            tx,
            sqlx::query("UPDATE screen_rosters SET failure = $1, finished_at = $2 WHERE id = $3")
                .bind(failure)
                .bind(Utc::now())
                .bind(roster_id)
        )?;
    }
    Ok(())
}

/// Deletes up to `limit` matches of a roster; returns how many.
pub(crate) async fn delete_matches(tx: &mut Tx, roster_id: i64, limit: i64) -> Result<u64, StoreError> {
    Ok(exec!(
        tx,
        sqlx::query(&format!(
            "DELETE FROM screen_matches WHERE id IN (SELECT id FROM screen_matches WHERE roster_id = $1 LIMIT {limit})"
        ))
        .bind(roster_id)
    )?)
}

/// Removes an upload that did not finish.
pub(crate) async fn drop_upload(tx: &mut Tx, roster_id: i64) -> Result<(), StoreError> {
    set_status(tx, roster_id, &["uploading"], "uploading").await?;
    exec!(&mut *tx, sqlx::query("DELETE FROM screen_roster_parts WHERE roster_id = $1").bind(roster_id))?;
    exec!(tx, sqlx::query("DELETE FROM screen_rosters WHERE id = $1").bind(roster_id))?;
    Ok(())
}

/// Whether one of the campaign's rosters is being matched.
pub(crate) async fn running(tx: &mut Tx, campaign_id: i64) -> Result<bool, StoreError> {
    let n: i64 = on!(tx, c => sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM screen_rosters WHERE campaign_id = $1 AND status = 'running'")
        .bind(campaign_id).fetch_one(c).await)?;
    Ok(n > 0)
}

/// After a restart: runs that were under way failed (their partial matches go), and
/// uploads that were under way are dropped. Returns how many of each.
pub(crate) async fn interrupted(tx: &mut Tx) -> Result<(u64, u64), StoreError> {
    exec!(
        &mut *tx,
        sqlx::query(
            "DELETE FROM screen_matches WHERE roster_id IN (SELECT id FROM screen_rosters WHERE status = 'running')"
        )
    )?;
    let runs = exec!(
        &mut *tx,
        sqlx::query(
            "UPDATE screen_rosters SET status = 'failed', failure = 'screening.interrupted', finished_at = $1 \
             WHERE status = 'running'"
        )
        .bind(Utc::now())
    )?;
    exec!(
        &mut *tx,
        sqlx::query(
            "DELETE FROM screen_roster_parts WHERE roster_id IN \
             (SELECT id FROM screen_rosters WHERE status = 'uploading')"
        )
    )?;
    let uploads = exec!(tx, sqlx::query("DELETE FROM screen_rosters WHERE status = 'uploading'"))?;
    Ok((runs, uploads))
}

/// Stores matches of a running roster (many rows per statement: a large roster must
/// not hold the writer for long).
pub(crate) async fn insert_matches(
    tx: &mut Tx,
    campaign_id: i64,
    roster_id: i64,
    matches: &[NewMatch],
) -> Result<(), StoreError> {
    for chunk in matches.chunks(500) {
        on!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO screen_matches (campaign_id, roster_id, line, row_data, member_id, score, band, outcome, \
                 explanation) ",
            );
            q.push_values(chunk, |mut b, m| {
                b.push_bind(campaign_id)
                    .push_bind(roster_id)
                    .push_bind(m.line)
                    .push_bind(m.row.to_string())
                    .push_bind(m.member_id)
                    .push_bind(m.score)
                    .push_bind(m.band)
                    .push_bind(m.outcome)
                    .push_bind(m.explanation.to_string());
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct MatchRow {
    id: i64,
    roster_id: i64,
    line: i64,
    row_data: Option<String>,
    member_id: i64,
    member_name: String,
    id_number: String,
    member_org_name: String,
    member_birth_date: NaiveDate,
    member_phone: Option<String>,
    member_address: Option<String>,
    score: f64,
    band: String,
    outcome: String,
    explanation: Option<String>,
    decision: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    note: Option<String>,
    version: i64,
}

impl From<MatchRow> for MatchRecord {
    fn from(r: MatchRow) -> Self {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
        let mut row = json(r.row_data);
        // The roster's ID number would be the member's: shown masked, as the member's is,
        // and so is one written in any other column.
        if let Some(fields) = row.as_mut().and_then(|v| v.as_object_mut()) {
            for (key, value) in fields.iter_mut() {
                let Some(text) = value.as_str() else { continue };
                let masked = if key == "id_number" { id_number::mask(text) } else { id_number::mask_within(text) };
                *value = serde_json::Value::String(masked);
            }
        }
        MatchRecord {
            id: r.id,
            roster_id: r.roster_id,
            line: r.line,
            row,
            member_id: r.member_id,
            member_name: r.member_name,
            member_id_number_masked: id_number::mask(&r.id_number),
            member_org_name: r.member_org_name,
            member_birth_date: Some(r.member_birth_date),
            member_phone: r.member_phone,
            member_address: r.member_address,
            score: r.score,
            band: r.band,
            outcome: r.outcome,
            explanation: json(r.explanation),
            decision: r.decision.as_deref().and_then(Decision::from_code),
            decided_at: r.decided_at,
            note: r.note,
            version: r.version,
        }
    }
}

const MATCHES: &str = "SELECT s.id, s.roster_id, s.line, s.row_data, s.member_id, m.name AS member_name, m.id_number, \
     o.name AS member_org_name, m.birth_date AS member_birth_date, m.phone AS member_phone, \
     m.residence_address AS member_address, s.score, s.band, s.outcome, s.explanation, s.decision, s.decided_at, \
     s.note, s.version \
     FROM screen_matches s JOIN screen_rosters r ON r.id = s.roster_id AND r.status = 'done' \
     JOIN members m ON m.id = s.member_id JOIN organizations o ON o.id = m.org_id";

/// Which of a campaign's matches to list.
#[derive(Debug, Clone, Default)]
pub struct MatchFilter {
    /// Only those not yet decided.
    pub open_only: bool,
    /// `match` or `review`.
    pub band: Option<String>,
    /// `known_here`, `candidate_inflow` or `lost_contact_found`.
    pub outcome: Option<String>,
    pub offset: i64,
    /// At most 1000.
    pub limit: i64,
}

impl MatchFilter {
    /// The SQL conditions after `s.campaign_id = $1`, binding from `$2`.
    fn conditions(&self) -> String {
        let mut sql = String::new();
        if self.open_only {
            sql.push_str(" AND s.decision IS NULL");
        }
        let mut n = 1;
        for (column, value) in [("s.band", &self.band), ("s.outcome", &self.outcome)] {
            if value.is_some() {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
            }
        }
        sql
    }

    fn binds(&self) -> impl Iterator<Item = &str> {
        self.band.as_deref().into_iter().chain(self.outcome.as_deref())
    }
}

/// A campaign's matches as filtered, best first, and how many there are in all.
pub(crate) async fn matches(
    tx: &mut Tx,
    campaign_id: i64,
    f: &MatchFilter,
) -> Result<(i64, Vec<MatchRecord>), StoreError> {
    let conditions = f.conditions();
    let count = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM screen_matches s JOIN screen_rosters r ON r.id = s.roster_id \
         AND r.status = 'done' WHERE s.campaign_id = $1{conditions}"
    );
    let total: i64 = on!(&mut *tx, c => {
        let mut q = sqlx::query_scalar(&count).bind(campaign_id);
        for v in f.binds() {
            q = q.bind(v);
        }
        q.fetch_one(c).await
    })?;
    let sql = format!(
        "{MATCHES} WHERE s.campaign_id = $1{conditions} ORDER BY s.score DESC, s.id LIMIT {} OFFSET {}",
        f.limit.clamp(1, 1000),
        f.offset.max(0)
    );
    let rows: Vec<MatchRow> = on!(tx, c => {
        let mut q = sqlx::query_as(&sql).bind(campaign_id);
        for v in f.binds() {
            q = q.bind(v);
        }
        q.fetch_all(c).await
    })?;
    Ok((total, rows.into_iter().map(MatchRecord::from).collect()))
}

/// A campaign's matches counted by the organization of the region (the scope's children,
/// or the scope itself) their member belongs to.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrgResult {
    pub org_code: String,
    pub org_name: String,
    pub matches: i64,
    pub accepted: i64,
    pub rejected: i64,
}

pub(crate) async fn results_by_org(tx: &mut Tx, c: &CampaignRecord) -> Result<Vec<OrgResult>, StoreError> {
    // INTEGER: PostgreSQL has no SUBSTR(text, int, bigint).
    let width = (c.scope_path.len() + kite_domain::org::SEGMENT_WIDTH) as i32;
    Ok(on!(tx, conn => sqlx::query_as(
        "SELECT o.code AS org_code, o.name AS org_name, CAST(COUNT(*) AS BIGINT) AS matches, \
         CAST(SUM(CASE WHEN s.decision = 'accepted' THEN 1 ELSE 0 END) AS BIGINT) AS accepted, \
         CAST(SUM(CASE WHEN s.decision = 'rejected' THEN 1 ELSE 0 END) AS BIGINT) AS rejected \
         FROM screen_matches s JOIN screen_rosters r ON r.id = s.roster_id AND r.status = 'done' \
         JOIN members m ON m.id = s.member_id JOIN organizations mo ON mo.id = m.org_id \
         JOIN organizations o ON o.path = SUBSTR(mo.path, 1, $2) \
         WHERE s.campaign_id = $1 GROUP BY o.code, o.name ORDER BY matches DESC, o.code LIMIT 200")
        .bind(c.id).bind(width).fetch_all(conn).await)?)
}

/// A match with its campaign's id.
pub(crate) async fn match_by_id(tx: &mut Tx, id: i64) -> Result<Option<(i64, MatchRecord)>, StoreError> {
    let campaign: Option<i64> = on!(&mut *tx, c => sqlx::query_scalar(
        "SELECT s.campaign_id FROM screen_matches s JOIN screen_rosters r ON r.id = s.roster_id \
         WHERE s.id = $1 AND r.status = 'done'").bind(id).fetch_optional(c).await)?;
    let Some(campaign_id) = campaign else { return Ok(None) };
    let sql = format!("{MATCHES} WHERE s.id = $1");
    let r: Option<MatchRow> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    Ok(r.map(|r| (campaign_id, MatchRecord::from(r))))
}

/// Records a decision on an undecided match at the version read.
pub(crate) async fn decide(
    tx: &mut Tx,
    id: i64,
    version: i64,
    decision: Decision,
    note: Option<&str>,
    user_id: i64,
) -> Result<(), StoreError> {
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE screen_matches SET decision = $1, note = $2, decided_by = $3, decided_at = $4, \
             version = version + 1 WHERE id = $5 AND version = $6 AND decision IS NULL"
        )
        .bind(decision.code())
        .bind(note)
        .bind(user_id)
        .bind(Utc::now())
        .bind(id)
        .bind(version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    Ok(())
}

/// Takes the campaign's row for this transaction if it is open: a close committed
/// meanwhile makes this a conflict, and a close waits for this transaction to end (on
/// PostgreSQL a plain read would let a roster or decision slip in after the close).
pub(crate) async fn lock_open(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    let n = exec!(
        tx,
        sqlx::query("UPDATE screen_campaigns SET status = status WHERE id = $1 AND status = 'open'").bind(id)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("screening.closed"));
    }
    Ok(())
}

/// Closes a campaign: the rosters' files are deleted, the matches never reviewed too, and
/// the roster data of those rejected.
pub(crate) async fn close(tx: &mut Tx, id: i64, version: i64) -> Result<(), StoreError> {
    let n = exec!(
        &mut *tx,
        sqlx::query(
            "UPDATE screen_campaigns SET status = 'closed', closed_at = $1, version = version + 1 \
             WHERE id = $2 AND version = $3 AND status = 'open'"
        )
        .bind(Utc::now())
        .bind(id)
        .bind(version)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    // The first rows seen on upload go now; the files and rows in batches ([`purge_step`]).
    exec!(tx, sqlx::query("UPDATE screen_rosters SET detected = NULL WHERE campaign_id = $1").bind(id))?;
    Ok(())
}

/// One batch of what a closed campaign deletes: a few parts of its roster files, or
/// matches never reviewed, or the roster data of matches not accepted, or uploads cut off
/// by the close. Returns how many rows it changed (0: nothing is left). In batches so that
/// closing a campaign of large rosters does not hold the writer for long.
async fn purge_step(tx: &mut Tx, id: i64) -> Result<u64, StoreError> {
    let steps = [
        "DELETE FROM screen_roster_parts WHERE roster_id IN (SELECT id FROM screen_rosters WHERE campaign_id = $1) \
         AND seq IN (SELECT p.seq FROM screen_roster_parts p WHERE p.roster_id = screen_roster_parts.roster_id \
         ORDER BY p.seq LIMIT 4)",
        "DELETE FROM screen_matches WHERE id IN (SELECT id FROM screen_matches WHERE campaign_id = $1 \
         AND decision IS NULL LIMIT 5000)",
        "UPDATE screen_matches SET row_data = NULL WHERE id IN (SELECT id FROM screen_matches WHERE campaign_id = $1 \
         AND decision <> 'accepted' AND row_data IS NOT NULL LIMIT 5000)",
        "DELETE FROM screen_rosters WHERE campaign_id = $1 AND status = 'uploading'",
    ];
    for sql in steps {
        let n = exec!(&mut *tx, sqlx::query(sql).bind(id))?;
        if n > 0 {
            return Ok(n);
        }
    }
    Ok(0)
}

/// Everything a closed campaign deletes, one batch per transaction (the writer taken at
/// once: no write slips in between a batch's read and its write).
pub(crate) async fn purge(store: &crate::Store, id: i64) -> Result<(), StoreError> {
    loop {
        let mut tx = store.write_immediate().await?;
        let n = purge_step(&mut tx, id).await?;
        tx.commit().await?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// Closed campaigns with something left to delete (a purge a stop cut off).
pub(crate) async fn unpurged(tx: &mut Tx) -> Result<Vec<i64>, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "SELECT c.id FROM screen_campaigns c WHERE c.status = 'closed' AND (\
         EXISTS (SELECT 1 FROM screen_rosters r JOIN screen_roster_parts p ON p.roster_id = r.id \
                 WHERE r.campaign_id = c.id) \
         OR EXISTS (SELECT 1 FROM screen_matches m WHERE m.campaign_id = c.id \
                    AND (m.decision IS NULL OR (m.decision <> 'accepted' AND m.row_data IS NOT NULL))) \
         OR EXISTS (SELECT 1 FROM screen_rosters r WHERE r.campaign_id = c.id AND r.status = 'uploading'))")
        .fetch_all(c).await)?)
}

/// An accepted match as the follow-up it makes: a member for the place to contact, or a
/// lost-contact member found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FollowUp {
    pub campaign_id: i64,
    pub campaign_name: String,
    #[serde(rename = "match")]
    pub item: MatchRecord,
}

async fn follow_ups(tx: &mut Tx, filter: &str, arg: FollowUpArg<'_>) -> Result<Vec<FollowUp>, StoreError> {
    let sql = format!(
        "SELECT c.id AS campaign_id, c.name AS campaign_name, x.* FROM ({MATCHES}) x \
         JOIN screen_matches sm ON sm.id = x.id JOIN screen_campaigns c ON c.id = sm.campaign_id \
         WHERE x.decision = 'accepted' AND {filter} ORDER BY x.decided_at DESC LIMIT 200"
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        campaign_id: i64,
        campaign_name: String,
        #[sqlx(flatten)]
        m: MatchRow,
    }
    let rows: Vec<Row> = match arg {
        FollowUpArg::Range(lo, hi) => on!(tx, c => sqlx::query_as(&sql).bind(lo).bind(hi).fetch_all(c).await)?,
        FollowUpArg::Member(id) => on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_all(c).await)?,
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut item = MatchRecord::from(r.m);
            item.row = item.row.map(contact_fields);
            // Which fields agreed says something about the roster's data too.
            item.explanation = None;
            // The member's registered contact details are the outflow side's to give.
            item.member_birth_date = None;
            item.member_phone = None;
            item.member_address = None;
            FollowUp { campaign_id: r.campaign_id, campaign_name: r.campaign_name, item }
        })
        .collect())
}

/// What a follow-up needs of a roster row: how to reach the person. The rest (the birth
/// date beside a masked ID number gives the whole number back) stays with the reviewers.
fn contact_fields(row: serde_json::Value) -> serde_json::Value {
    let keep = ["name", "phone", "address", "employer"];
    match row {
        serde_json::Value::Object(m) => m.into_iter().filter(|(k, _)| keep.contains(&k.as_str())).collect(),
        other => other,
    }
}

enum FollowUpArg<'a> {
    Range(&'a str, &'a str),
    Member(i64),
}

/// Members to contact found by accepted matches of campaigns whose place is in the subtree
/// at `root` (`None`: everywhere).
pub(crate) async fn candidates_for_place(tx: &mut Tx, root: Option<&str>) -> Result<Vec<FollowUp>, StoreError> {
    let (lo, hi) = kite_domain::org::scope_range(root);
    let filter = "x.outcome = 'candidate_inflow' AND COALESCE(c.place_path, c.scope_path) >= $1 \
                  AND COALESCE(c.place_path, c.scope_path) < $2";
    follow_ups(tx, filter, FollowUpArg::Range(&lo, &hi)).await
}

/// Where screening found a lost-contact member (accepted matches), newest first.
pub(crate) async fn found_member(tx: &mut Tx, member_id: i64) -> Result<Vec<FollowUp>, StoreError> {
    follow_ups(tx, "x.outcome = 'lost_contact_found' AND x.member_id = $1", FollowUpArg::Member(member_id)).await
}
