//! Records as the rest of the system sees them.

use chrono::{DateTime, NaiveDate, Utc};
use kite_domain::{Education, FlowReason, FlowStatus, Gender, MemberCategory, Mobility, OrgKind, OrgLevel, OrgStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Org {
    pub id: i64,
    pub code: String,
    pub parent_code: Option<String>,
    pub name: String,
    pub level: OrgLevel,
    pub kind: OrgKind,
    pub division_code: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub status: OrgStatus,
    /// Number of direct child organizations.
    pub child_count: i64,
    /// Transfers of its members are approved by it, then by the committee above.
    pub transfer_two_levels: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub path: String,
}

/// An organization to insert; `parent_code` must exist.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub code: String,
    pub parent_code: Option<String>,
    pub fields: kite_domain::org::OrgFields,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    pub id: i64,
    pub name: String,
    pub gender: Gender,
    pub ethnicity: String,
    pub birth_date: NaiveDate,
    /// The full number: only returned by the detail view, which is audited.
    pub id_number: String,
    pub phone: Option<String>,
    pub education: Option<Education>,
    pub joined_on: NaiveDate,
    pub category: MemberCategory,
    pub org_code: String,
    pub org_name: String,
    pub residence_division: Option<String>,
    pub residence_address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
    pub mobility: Mobility,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub org_path: String,
}

/// A member as shown in lists: the identity number masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberSummary {
    pub id: i64,
    pub name: String,
    pub gender: Gender,
    /// The year only: with the full birth date, the masked number would give the whole one.
    pub birth_year: i32,
    pub id_number_masked: String,
    pub phone: Option<String>,
    pub org_code: String,
    pub org_name: String,
    pub mobility: Mobility,
}

/// A member to insert in bulk (demo, benchmarks); validated by the caller.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub fields: kite_domain::member::MemberFields,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Flow {
    pub id: i64,
    pub member_id: i64,
    pub outflow_org_code: String,
    pub outflow_org_name: String,
    pub inflow_org_code: Option<String>,
    pub inflow_org_name: Option<String>,
    pub destination_division: String,
    pub destination_address: Option<String>,
    pub reason: FlowReason,
    pub left_on: NaiveDate,
    pub expected_months: Option<i64>,
    pub contact_phone: Option<String>,
    pub status: FlowStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub ended_on: Option<NaiveDate>,
    pub note: Option<String>,
    /// Recorded with the return.
    pub return_note: Option<String>,
    /// Away six months or more, as the daily job last found ([`kite_domain::flow::counts_as_mobile`]).
    pub mobile: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

pub use kite_domain::flow::Departure;

/// One line of the outflow or inflow list, and what the inflow side may see of a member:
/// who, how to reach them, where they come from and where they are; the identity number
/// masked and nothing of the rest of the record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowEntry {
    pub id: i64,
    pub member_id: i64,
    pub name: String,
    pub gender: Gender,
    pub id_number_masked: String,
    /// The contact phone given at departure, else the member's.
    pub phone: Option<String>,
    pub outflow_org_code: String,
    pub outflow_org_name: String,
    /// The division of the member's home organization (the origin, seen from the inflow side).
    pub home_division: String,
    pub inflow_org_code: Option<String>,
    pub inflow_org_name: Option<String>,
    pub destination_division: String,
    pub destination_address: Option<String>,
    pub reason: FlowReason,
    pub left_on: NaiveDate,
    /// Whole months since departure, today.
    pub months_away: u32,
    pub mobile: bool,
    pub status: FlowStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub ended_on: Option<NaiveDate>,
    pub version: i64,
}

/// The two lists' query: the subtree (default: the caller's), then the filters of
/// [`kite_domain::flow::ListFilterInput`], a cursor and a page size.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowQuery {
    /// Organization code: only flows of its subtree.
    pub org: Option<String>,
    /// `open` (default: not checked in, checked in, lost contact), `all`, or one flow status.
    pub status: Option<String>,
    /// Division code prefix: destination (outflow list) or home organization's division (inflow list).
    pub division: Option<String>,
    /// Departed on or after (YYYY-MM-DD).
    pub left_from: Option<String>,
    /// Departed on or before (YYYY-MM-DD).
    pub left_to: Option<String>,
    /// `true`: only members away six months or more.
    pub mobile: Option<String>,
    /// A period label (`2026-H2`): only checked-in members not yet evaluated for it.
    pub unevaluated: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl FlowQuery {
    pub fn filter_input(&self) -> kite_domain::flow::ListFilterInput<'_> {
        fn s(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("")
        }
        kite_domain::flow::ListFilterInput {
            status: s(&self.status),
            division: s(&self.division),
            left_from: s(&self.left_from),
            left_to: s(&self.left_to),
            mobile: s(&self.mobile),
            unevaluated: s(&self.unevaluated),
        }
    }
}

/// A flow to insert in bulk (demo, benchmarks).
#[derive(Debug, Clone)]
pub struct NewFlow {
    pub id_number: String,
    pub outflow_org_code: String,
    pub inflow_org_code: Option<String>,
    pub departure: Departure,
    pub status: FlowStatus,
}

/// A member search: free text (name, identity number or phone) and filters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct MemberQuery {
    pub q: Option<String>,
    /// Only members whose formal organization is in this organization's subtree.
    pub org: Option<String>,
    /// `resident`, `not_checked_in`, `checked_in`, `lost_contact`, `away` for any of those three,
    /// or `transferred_out` (left out otherwise).
    pub mobility: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of a list read newest id first with `LIMIT limit + 1`: the extra row says
    /// there is more, and the last kept row's id is the next cursor.
    pub(crate) fn by_id(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// The id cursor of such a list, as sent back by a client.
pub(crate) fn id_cursor(cursor: Option<&str>) -> Result<Option<i64>, crate::StoreError> {
    match cursor.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => c.parse().map(Some).map_err(|_| crate::StoreError::invalid("cursor", "invalid")),
        None => Ok(None),
    }
}

/// Counts for a subtree (or the whole region).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Overview {
    pub organizations: i64,
    pub members: i64,
    /// Members of the subtree away from home (open flows).
    pub mobile_out: i64,
    /// Members from elsewhere checked in to the subtree.
    pub mobile_in: i64,
}
