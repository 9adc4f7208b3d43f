//! Co-management agreements and their files. A party in the system is stored by its
//! organization id; its code, name and path are read through the join.

use chrono::{DateTime, NaiveDate, Utc};
use kite_domain::agreement::{self, Agreement, PartySide};
use kite_domain::{org, AgreementStatus, ConsultationCycle};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::{arg, bind_args, Arg};
use crate::{exec, on, Page, StoreError, Tx};

/// One party as shown: the organization in the system, or the name typed for one outside.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgreementParty {
    /// The organization's code when the party is in the system.
    pub org_code: Option<String>,
    pub name: String,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgreementFile {
    pub id: i64,
    pub file_name: String,
    /// Found from the content: PDF, OFD, Word, PNG or JPEG.
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: Option<String>,
    pub uploaded_at: DateTime<Utc>,
}

/// An agreement with its five commitments, contacts and files.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgreementRecord {
    pub id: i64,
    pub title: String,
    pub number: Option<String>,
    pub outflow: AgreementParty,
    pub inflow: AgreementParty,
    pub signed_on: Option<NaiveDate>,
    pub starts_on: NaiveDate,
    /// None: no end date.
    pub ends_on: Option<NaiveDate>,
    /// From the dates, today.
    pub status: AgreementStatus,
    /// 组织共建.
    pub org_building: Option<String>,
    /// 党员共管.
    pub member_management: Option<String>,
    /// 工作共商.
    pub consultation: Option<String>,
    pub consultation_cycle: Option<ConsultationCycle>,
    /// 经费共担, with each side's yearly amount in yuan.
    pub funding: Option<String>,
    pub funding_outflow_yuan: Option<i64>,
    pub funding_inflow_yuan: Option<i64>,
    /// 活动共抓.
    pub activities: Option<String>,
    pub note: Option<String>,
    pub files: Vec<AgreementFile>,
    /// Whether the caller may amend it and its files.
    pub may_edit: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An agreement as a list line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgreementSummary {
    pub id: i64,
    pub title: String,
    pub number: Option<String>,
    pub outflow: AgreementParty,
    pub inflow: AgreementParty,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub status: AgreementStatus,
}

/// A partner of an organization: the other side of an agreement that the organization,
/// an organization above it or one below it is party to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Partner {
    pub agreement_id: i64,
    pub title: String,
    pub status: AgreementStatus,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    /// The side the organization's party is on.
    pub side: PartySide,
    /// The party on the organization's side: itself, an ancestor or a descendant.
    pub party: PartnerName,
    pub partner: PartnerName,
    /// Whether the caller may open the agreement itself.
    pub readable: bool,
}

/// A party as partner lists show it: who, not whom to call (contacts stay with the parties).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerName {
    pub org_code: Option<String>,
    pub name: String,
}

impl From<AgreementParty> for PartnerName {
    fn from(p: AgreementParty) -> Self {
        PartnerName { org_code: p.org_code, name: p.name }
    }
}

/// Filters of the agreement list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgreementQuery {
    /// Organization code: agreements that an organization of its subtree is party to.
    pub org: Option<String>,
    /// `active`, `upcoming`, `expired`, or `all` (default).
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The long columns of [`SELECT`], left out of partner lines.
const COMMITMENT_COLUMNS: &str = "a.org_building, a.member_management, a.consultation, a.consultation_cycle, \
    a.funding, a.funding_outflow_yuan, a.funding_inflow_yuan, a.activities, a.note,";

const SELECT: &str = "SELECT a.id, a.title, a.number, \
    oo.code AS outflow_code, oo.name AS outflow_org_name, oo.path AS outflow_path, a.outflow_name, \
    a.outflow_contact_name, a.outflow_contact_phone, \
    io.code AS inflow_code, io.name AS inflow_org_name, io.path AS inflow_path, a.inflow_name, \
    a.inflow_contact_name, a.inflow_contact_phone, \
    a.signed_on, a.starts_on, a.ends_on, a.org_building, a.member_management, a.consultation, \
    a.consultation_cycle, a.funding, a.funding_outflow_yuan, a.funding_inflow_yuan, a.activities, a.note, \
    a.version, a.created_at, a.updated_at \
    FROM agreements a LEFT JOIN organizations oo ON oo.id = a.outflow_org_id \
    LEFT JOIN organizations io ON io.id = a.inflow_org_id";

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    pub(crate) id: i64,
    title: String,
    number: Option<String>,
    pub(crate) outflow_code: Option<String>,
    outflow_org_name: Option<String>,
    pub(crate) outflow_path: Option<String>,
    outflow_name: Option<String>,
    outflow_contact_name: Option<String>,
    outflow_contact_phone: Option<String>,
    pub(crate) inflow_code: Option<String>,
    inflow_org_name: Option<String>,
    pub(crate) inflow_path: Option<String>,
    inflow_name: Option<String>,
    inflow_contact_name: Option<String>,
    inflow_contact_phone: Option<String>,
    signed_on: Option<NaiveDate>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    org_building: Option<String>,
    member_management: Option<String>,
    consultation: Option<String>,
    consultation_cycle: Option<String>,
    funding: Option<String>,
    funding_outflow_yuan: Option<i64>,
    funding_inflow_yuan: Option<i64>,
    activities: Option<String>,
    note: Option<String>,
    pub(crate) version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn party(
    code: &Option<String>,
    org_name: &Option<String>,
    name: &Option<String>,
    contact: (&Option<String>, &Option<String>),
) -> AgreementParty {
    AgreementParty {
        org_code: code.clone(),
        name: org_name.clone().or_else(|| name.clone()).unwrap_or_default(),
        contact_name: contact.0.clone(),
        contact_phone: contact.1.clone(),
    }
}

impl Row {
    fn outflow(&self) -> AgreementParty {
        party(
            &self.outflow_code,
            &self.outflow_org_name,
            &self.outflow_name,
            (&self.outflow_contact_name, &self.outflow_contact_phone),
        )
    }

    fn inflow(&self) -> AgreementParty {
        party(
            &self.inflow_code,
            &self.inflow_org_name,
            &self.inflow_name,
            (&self.inflow_contact_name, &self.inflow_contact_phone),
        )
    }

    fn status(&self, today: NaiveDate) -> AgreementStatus {
        agreement::status(self.starts_on, self.ends_on, today)
    }

    pub(crate) fn paths(&self) -> (Option<&str>, Option<&str>) {
        (self.outflow_path.as_deref(), self.inflow_path.as_deref())
    }

    pub(crate) fn summary(&self, today: NaiveDate) -> AgreementSummary {
        AgreementSummary {
            id: self.id,
            title: self.title.clone(),
            number: self.number.clone(),
            outflow: self.outflow(),
            inflow: self.inflow(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            status: self.status(today),
        }
    }

    pub(crate) fn record(
        self,
        files: Vec<AgreementFile>,
        may_edit: bool,
        today: NaiveDate,
    ) -> Result<AgreementRecord, StoreError> {
        let consultation_cycle =
            match &self.consultation_cycle {
                Some(c) => Some(ConsultationCycle::from_code(c).ok_or_else(|| {
                    StoreError::Config(format!("unexpected consultation cycle {c:?} in the database"))
                })?),
                None => None,
            };
        Ok(AgreementRecord {
            id: self.id,
            outflow: self.outflow(),
            inflow: self.inflow(),
            status: self.status(today),
            title: self.title,
            number: self.number,
            signed_on: self.signed_on,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            org_building: self.org_building,
            member_management: self.member_management,
            consultation: self.consultation,
            consultation_cycle,
            funding: self.funding,
            funding_outflow_yuan: self.funding_outflow_yuan,
            funding_inflow_yuan: self.funding_inflow_yuan,
            activities: self.activities,
            note: self.note,
            files,
            may_edit,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<Row>, StoreError> {
    let sql = format!("{SELECT} WHERE a.id = $1");
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
}

/// The parties resolved to organization ids (None: named only).
pub(crate) struct Parties {
    pub outflow_org_id: Option<i64>,
    pub inflow_org_id: Option<i64>,
}

/// Inserts or, with `version`, replaces an agreement's fields; returns its id.
pub(crate) async fn save(
    tx: &mut Tx,
    id_version: Option<(i64, i64)>,
    a: &Agreement,
    p: &Parties,
    by: i64,
) -> Result<i64, StoreError> {
    let now = Utc::now();
    let columns = "title, number, outflow_org_id, outflow_name, outflow_contact_name, outflow_contact_phone, \
        inflow_org_id, inflow_name, inflow_contact_name, inflow_contact_phone, signed_on, starts_on, ends_on, \
        org_building, member_management, consultation, consultation_cycle, funding, funding_outflow_yuan, \
        funding_inflow_yuan, activities, note";
    macro_rules! bind_fields {
        ($q:expr) => {
            $q.bind(&a.title)
                .bind(&a.number)
                .bind(p.outflow_org_id)
                .bind(&a.outflow.name)
                .bind(&a.outflow.contact_name)
                .bind(&a.outflow.contact_phone)
                .bind(p.inflow_org_id)
                .bind(&a.inflow.name)
                .bind(&a.inflow.contact_name)
                .bind(&a.inflow.contact_phone)
                .bind(a.signed_on)
                .bind(a.starts_on)
                .bind(a.ends_on)
                .bind(&a.org_building)
                .bind(&a.member_management)
                .bind(&a.consultation)
                .bind(a.consultation_cycle.map(|c| c.code()))
                .bind(&a.funding)
                .bind(a.funding_outflow_yuan)
                .bind(a.funding_inflow_yuan)
                .bind(&a.activities)
                .bind(&a.note)
        };
    }
    match id_version {
        None => {
            let sql = format!(
                "INSERT INTO agreements ({columns}, created_by, created_at, updated_at) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                 $21, $22, $23, $24, $24) RETURNING id"
            );
            Ok(on!(tx, c => bind_fields!(sqlx::query_scalar(&sql)).bind(by).bind(now).fetch_one(c).await)?)
        }
        Some((id, version)) => {
            let sets: Vec<String> =
                columns.split(", ").enumerate().map(|(i, col)| format!("{col} = ${}", i + 1)).collect();
            let sql = format!(
                "UPDATE agreements SET {}, version = version + 1, updated_at = $23 WHERE id = $24 AND version = $25",
                sets.join(", ")
            );
            let n = exec!(tx, bind_fields!(sqlx::query(&sql)).bind(now).bind(id).bind(version))?;
            if n == 0 {
                return Err(StoreError::Conflict("stale_version"));
            }
            Ok(id)
        }
    }
}

/// One page of the agreements an organization of `root`'s subtree is party to (all without a root).
pub(crate) async fn list(
    tx: &mut Tx,
    root: Option<&str>,
    status: Option<AgreementStatus>,
    today: NaiveDate,
    cursor: Option<i64>,
    limit: i64,
) -> Result<Page<AgreementSummary>, StoreError> {
    let mut args: Vec<Arg> = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    if let Some(root) = root {
        let (lo, hi) = org::subtree_range(root);
        let (lo, hi) = (arg(&mut args, Arg::Text(lo)), arg(&mut args, Arg::Text(hi)));
        filters.push(format!("((oo.path >= {lo} AND oo.path < {hi}) OR (io.path >= {lo} AND io.path < {hi}))"));
    }
    if let Some(status) = status {
        let t = arg(&mut args, Arg::Date(today));
        filters.push(match status {
            AgreementStatus::Upcoming => format!("a.starts_on > {t}"),
            AgreementStatus::Active => format!("a.starts_on <= {t} AND (a.ends_on IS NULL OR a.ends_on >= {t})"),
            AgreementStatus::Expired => format!("a.ends_on < {t}"),
        });
    }
    if let Some(c) = cursor {
        let p = arg(&mut args, Arg::Int(c));
        filters.push(format!("a.id < {p}"));
    }
    let l = arg(&mut args, Arg::Int(limit + 1));
    let filter = if filters.is_empty() { "1 = 1".to_string() } else { filters.join(" AND ") };
    let sql = format!("{SELECT} WHERE {filter} ORDER BY a.id DESC LIMIT {l}");
    let rows: Vec<Row> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?;
    let items: Vec<AgreementSummary> = rows.iter().map(|r| r.summary(today)).collect();
    Ok(Page::by_id(items, limit, |r| r.id))
}

/// Most partner lines an organization's page shows (those in force first).
pub const MAX_PARTNERS: i64 = 500;

/// Agreements whose party is the organization at `path`, one above it or one below it.
pub(crate) async fn touching(tx: &mut Tx, path: &str, today: NaiveDate) -> Result<Vec<Row>, StoreError> {
    let mut args: Vec<Arg> = Vec::new();
    let ids: Vec<String> = org::ids(path)
        .into_iter()
        .map(|id| {
            args.push(Arg::Int(id));
            format!("${}", args.len())
        })
        .collect();
    let (lo, hi) = org::subtree_range(path);
    args.push(Arg::Text(lo));
    let lo = format!("${}", args.len());
    args.push(Arg::Text(hi));
    let hi = format!("${}", args.len());
    let ids = if ids.is_empty() { "NULL".to_string() } else { ids.join(", ") };
    args.push(Arg::Date(today));
    let t = format!("${}", args.len());
    // Only the columns a partner line shows; those in force first, then by start.
    let light = SELECT.replace(
        COMMITMENT_COLUMNS,
        "NULL AS org_building, NULL AS member_management, NULL AS consultation, NULL AS consultation_cycle, \
         NULL AS funding, NULL AS funding_outflow_yuan, NULL AS funding_inflow_yuan, NULL AS activities, \
         NULL AS note,",
    );
    let sql = format!(
        "{light} WHERE a.outflow_org_id IN ({ids}) OR a.inflow_org_id IN ({ids}) \
         OR (oo.path >= {lo} AND oo.path < {hi}) OR (io.path >= {lo} AND io.path < {hi}) \
         ORDER BY CASE WHEN a.ends_on IS NULL OR a.ends_on >= {t} THEN 0 ELSE 1 END, a.starts_on DESC, a.id DESC \
         LIMIT {MAX_PARTNERS}"
    );
    Ok(on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?)
}

/// The partner line of `row` for the organization at `path`.
pub(crate) fn partner_of(row: &Row, path: &str, readable: bool, today: NaiveDate) -> Partner {
    let related = |p: &Option<String>| p.as_deref().is_some_and(|p| org::is_within(path, p) || org::is_within(p, path));
    let side = if related(&row.outflow_path) { PartySide::Outflow } else { PartySide::Inflow };
    let (party, partner) = match side {
        PartySide::Outflow => (row.outflow(), row.inflow()),
        PartySide::Inflow => (row.inflow(), row.outflow()),
    };
    Partner {
        agreement_id: row.id,
        title: row.title.clone(),
        status: row.status(today),
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        side,
        party: party.into(),
        partner: partner.into(),
        readable,
    }
}

#[derive(sqlx::FromRow)]
struct FileRow {
    id: i64,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    uploaded_by: Option<String>,
    uploaded_at: DateTime<Utc>,
}

impl From<FileRow> for AgreementFile {
    fn from(r: FileRow) -> Self {
        AgreementFile {
            id: r.id,
            file_name: r.file_name,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            uploaded_by: r.uploaded_by,
            uploaded_at: r.uploaded_at,
        }
    }
}

const FILE_SELECT: &str = "SELECT f.id, f.file_name, f.content_type, f.size_bytes, f.sha256, \
    u.username AS uploaded_by, f.uploaded_at FROM agreement_files f LEFT JOIN users u ON u.id = f.uploaded_by";

pub(crate) async fn files(tx: &mut Tx, agreement_id: i64) -> Result<Vec<AgreementFile>, StoreError> {
    let sql = format!("{FILE_SELECT} WHERE f.agreement_id = $1 ORDER BY f.id");
    let rows: Vec<FileRow> = on!(tx, c => sqlx::query_as(&sql).bind(agreement_id).fetch_all(c).await)?;
    Ok(rows.into_iter().map(AgreementFile::from).collect())
}

/// A file to attach, already checked.
pub(crate) struct NewFile<'a> {
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub sha256: &'a str,
    pub content: &'a [u8],
}

pub(crate) async fn add_file(tx: &mut Tx, agreement_id: i64, f: &NewFile<'_>, by: i64) -> Result<i64, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar(
        "INSERT INTO agreement_files (agreement_id, file_name, content_type, size_bytes, sha256, content, \
         uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
        .bind(agreement_id).bind(f.file_name).bind(f.content_type).bind(f.content.len() as i64).bind(f.sha256)
        .bind(f.content).bind(by).bind(Utc::now()).fetch_one(c).await)?)
}

/// A file's content with its description.
pub(crate) async fn file(
    tx: &mut Tx,
    agreement_id: i64,
    file_id: i64,
) -> Result<Option<(AgreementFile, Vec<u8>)>, StoreError> {
    let sql = format!("{FILE_SELECT} WHERE f.agreement_id = $1 AND f.id = $2");
    let meta: Option<FileRow> =
        on!(tx, c => sqlx::query_as(&sql).bind(agreement_id).bind(file_id).fetch_optional(c).await)?;
    let Some(meta) = meta else { return Ok(None) };
    let content: Vec<u8> = on!(tx, c => sqlx::query_scalar("SELECT content FROM agreement_files WHERE id = $1")
        .bind(file_id).fetch_one(c).await)?;
    Ok(Some((meta.into(), content)))
}

pub(crate) async fn remove_file(tx: &mut Tx, agreement_id: i64, file_id: i64) -> Result<u64, StoreError> {
    Ok(exec!(
        tx,
        sqlx::query("DELETE FROM agreement_files WHERE agreement_id = $1 AND id = $2").bind(agreement_id).bind(file_id)
    )?)
}

/// Takes the agreement's row lock until the transaction ends (SQLite's one writer already
/// runs writes in turn).
pub(crate) async fn lock(tx: &mut Tx, agreement_id: i64) -> Result<(), StoreError> {
    exec!(tx, sqlx::query("UPDATE agreements SET updated_at = updated_at WHERE id = $1").bind(agreement_id))?;
    Ok(())
}

pub(crate) async fn file_count(tx: &mut Tx, agreement_id: i64) -> Result<i64, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM agreement_files WHERE agreement_id = $1")
        .bind(agreement_id).fetch_one(c).await)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn partner_lines_leave_the_commitments_out() {
        assert!(super::SELECT.contains(super::COMMITMENT_COLUMNS));
    }
}
