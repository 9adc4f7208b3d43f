//! The activity certificate (流动党员活动证): issued by the basic-level committee of the
//! outflow side to a mobile member, shown at the inflow side, verified by anyone by its
//! number. Here are the rules over values: who may issue, the states and their steps,
//! the validity of a period, what the public sees, and the rule reminders.

use chrono::{Months, NaiveDate};

use crate::validation::{self, FieldErrors};
use crate::{FlowReason, OrgLevel};

/// The longest period a certificate covers; it is re-issued after.
pub const MAX_PERIOD_MONTHS: u32 = 36;
/// Companions at one place from which the inflow side should organize a branch there
/// (three or more besides the member: a branch needs three full members).
pub const BRANCH_HINT_COMPANIONS: usize = 3;
/// Public lookups allowed per client address and minute.
pub const LOOKUPS_PER_MINUTE: u32 = 10;

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Asked for by the inflow side (反向发证), waiting for the issuing committee.
    Requested,
    /// The request was refused, with a reason.
    Refused,
    Issued,
    /// Handed back on coming home (交回查验).
    Returned,
    Revoked,
    /// Reported lost; a new one was issued in its place.
    Lost,
    /// The record was transferred: the certificate no longer applies.
    Void,
    /// Its period ended.
    Expired,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Requested,
        Status::Refused,
        Status::Issued,
        Status::Returned,
        Status::Revoked,
        Status::Lost,
        Status::Void,
        Status::Expired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Refused => "refused",
            Status::Issued => "issued",
            Status::Returned => "returned",
            Status::Revoked => "revoked",
            Status::Lost => "lost",
            Status::Void => "void",
            Status::Expired => "expired",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// What the issuing committee does to a certificate (the inflow side only asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Issue a certificate asked for in reverse.
    Issue,
    /// Refuse a reverse request, with a reason.
    Refuse,
    /// Handed back on coming home (交回查验).
    Return,
    /// Withdrawn, with a reason.
    Revoke,
    /// Reported lost: this one is no longer valid and a new one is issued in its place.
    ReportLost,
}

impl Step {
    pub const ALL: [Step; 5] = [Step::Issue, Step::Refuse, Step::Return, Step::Revoke, Step::ReportLost];

    pub fn code(self) -> &'static str {
        match self {
            Step::Issue => "issue",
            Step::Refuse => "refuse",
            Step::Return => "return",
            Step::Revoke => "revoke",
            Step::ReportLost => "report_lost",
        }
    }

    pub fn from_code(code: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.code() == code.trim())
    }

    pub fn needs_reason(self) -> bool {
        matches!(self, Step::Refuse | Step::Revoke)
    }

    /// The status a step leads to from `from`; `None` when the step does not apply there.
    pub fn next(self, from: Status) -> Option<Status> {
        match (from, self) {
            (Status::Requested, Step::Issue) => Some(Status::Issued),
            (Status::Requested, Step::Refuse) => Some(Status::Refused),
            (Status::Issued, Step::Return) => Some(Status::Returned),
            (Status::Issued, Step::Revoke) => Some(Status::Revoked),
            (Status::Issued, Step::ReportLost) => Some(Status::Lost),
            _ => None,
        }
    }

    /// The steps open from `from`.
    pub fn open_from(from: Status) -> Vec<Step> {
        Step::ALL.into_iter().filter(|s| s.next(from).is_some()).collect()
    }
}

/// Whether an organization of this level may issue certificates: the basic-level
/// committee (township, street, institution or enterprise committee), not a branch.
pub fn may_issue(level: OrgLevel) -> bool {
    level == OrgLevel::Committee
}

/// Whether a certificate in `status` covering `from..=until` is valid on `today`.
pub fn valid_on(status: Status, from: NaiveDate, until: NaiveDate, today: NaiveDate) -> bool {
    status == Status::Issued && from <= today && today <= until
}

/// What a certificate says about its holder's trip, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub destination_division: String,
    pub destination: Option<String>,
    pub reason: FlowReason,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
}

/// The form's values as typed.
#[derive(Debug, Clone, Default)]
pub struct IssueInput<'a> {
    pub destination_division: &'a str,
    pub destination: &'a str,
    pub reason: &'a str,
    pub valid_from: &'a str,
    pub valid_until: &'a str,
}

/// Validates a certificate's contents: a known division, a reason of the flow's list, a
/// period that starts by `today` plus a month at most and lasts at most
/// [`MAX_PERIOD_MONTHS`].
pub fn validate(
    input: &IssueInput,
    division_known: impl Fn(&str) -> bool,
    today: NaiveDate,
) -> Result<Issue, FieldErrors> {
    let mut e = FieldErrors::default();
    let division = input.destination_division.trim();
    if division.is_empty() {
        e.add("destination_division", "required");
    } else if !division_known(division) {
        e.add("destination_division", "unknown");
    }
    let destination = validation::text(&mut e, "destination", input.destination, false, 200);
    let reason = match FlowReason::from_code(input.reason.trim()) {
        Some(r) => Some(r),
        None => {
            e.add("reason", if input.reason.trim().is_empty() { "required" } else { "invalid" });
            None
        }
    };
    let from = validation::date(&mut e, "valid_from", input.valid_from, true);
    let until = validation::date(&mut e, "valid_until", input.valid_until, true);
    if let Some(f) = from {
        if today.checked_add_months(Months::new(1)).is_some_and(|limit| f > limit) {
            e.add("valid_from", "certificate.starts_too_late");
        }
    }
    if let (Some(f), Some(u)) = (from, until) {
        if u < f || u < today {
            e.add("valid_until", "certificate.ends_before_start");
        } else if f.checked_add_months(Months::new(MAX_PERIOD_MONTHS)).is_some_and(|end| u >= end) {
            // Three years from the first day: the day before the same date three years on.
            e.add("valid_until", "certificate.period_too_long");
        }
    }
    match (reason, from, until) {
        (Some(reason), Some(valid_from), Some(valid_until)) if e.is_empty() => {
            Ok(Issue { destination_division: division.to_string(), destination, reason, valid_from, valid_until })
        }
        _ => Err(e),
    }
}

/// A number out of what a scanner typed: the number itself, or the verification link its
/// QR code holds (`…/verify/GN-2026-00042`, possibly with a query or a fragment).
pub fn number_from_scan(input: &str) -> Option<String> {
    let s = input.trim();
    let s = s.split(['?', '#']).next().unwrap_or(s);
    let number = match s.rfind("/verify/") {
        Some(i) => s[i + "/verify/".len()..].split('/').next().unwrap_or(""),
        None if s.contains('/') => s.trim_end_matches('/').rsplit('/').next().unwrap_or(""),
        None => s,
    };
    clean_number(number)
}

/// A certificate's number: the issuing committee's code, the year and a sequence, e.g.
/// `GN-2026-00042`.
pub fn number(org_code: &str, year: i32, seq: u32) -> String {
    // Upper case, as numbers are typed and scanned (see [`clean_number`]).
    format!("{}-{year}-{seq:05}", org_code.to_uppercase())
}

/// A number as someone typed or scanned it: trimmed, upper-case, no inner spaces; `None`
/// for what cannot be a number (so that a lookup never reaches the database with it).
pub fn clean_number(input: &str) -> Option<String> {
    let n: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let ok = (6..=48).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(n)
}

/// The name as public verification shows it: the first character and two stars, whatever
/// the name's length (which would say something too): 张伟 → 张**, 欧阳娜娜 → 欧**.
pub fn masked_name(name: &str) -> String {
    name.trim().chars().next().map(|first| format!("{first}**")).unwrap_or_default()
}

/// Whether the inflow side should be told to organize a branch: three or more other
/// mobile members of the same home at the same place.
pub fn branch_hint(companions: usize) -> bool {
    companions >= BRANCH_HINT_COMPANIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn input<'a>(from: &'a str, until: &'a str) -> IssueInput<'a> {
        IssueInput {
            destination_division: "320505",
            destination: "苏州高新区狮山街道",
            reason: "work",
            valid_from: from,
            valid_until: until,
        }
    }

    #[test]
    fn only_committees_issue_and_only_issued_certificates_in_their_period_are_valid() {
        assert!(may_issue(OrgLevel::Committee));
        assert!(!may_issue(OrgLevel::Branch) && !may_issue(OrgLevel::GeneralBranch));
        let (from, until) = (day("2026-01-01"), day("2026-12-31"));
        assert!(valid_on(Status::Issued, from, until, day("2026-12-31")));
        assert!(!valid_on(Status::Issued, from, until, day("2027-01-01")));
        assert!(!valid_on(Status::Issued, from, until, day("2025-12-31")));
        for s in [Status::Requested, Status::Refused, Status::Returned, Status::Revoked, Status::Lost, Status::Void] {
            assert!(!valid_on(s, from, until, day("2026-06-01")), "{s:?}");
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn a_period_is_checked() {
        let today = day("2026-11-24");
        let ok = validate(&input("2026-11-24", "2027-11-23"), |_| true, today).unwrap();
        assert_eq!((ok.reason, ok.valid_until), (FlowReason::Work, day("2027-11-23")));
        let e = validate(&input("2026-11-24", "2026-11-01"), |_| true, today).unwrap_err();
        assert_eq!(e.get("valid_until"), Some("certificate.ends_before_start"));
        let e = validate(&input("2026-11-24", "2029-11-24"), |_| true, today).unwrap_err();
        assert_eq!(e.get("valid_until"), Some("certificate.period_too_long"));
        assert!(validate(&input("2026-11-24", "2029-11-23"), |_| true, today).is_ok());
        // Already over: nothing to issue.
        let e = validate(&input("2026-01-01", "2026-06-30"), |_| true, today).unwrap_err();
        assert_eq!(e.get("valid_until"), Some("certificate.ends_before_start"));
        let e = validate(&input("2027-01-01", "2027-06-01"), |_| true, today).unwrap_err();
        assert_eq!(e.get("valid_from"), Some("certificate.starts_too_late"));
        let e = validate(&IssueInput { reason: "fun", ..input("x", "") }, |_| false, today).unwrap_err();
        assert_eq!(e.get("destination_division"), Some("unknown"));
        assert_eq!(e.get("reason"), Some("invalid"));
        assert_eq!(e.get("valid_from"), Some("invalid_date"));
        assert_eq!(e.get("valid_until"), Some("required"));
    }

    #[test]
    fn numbers_names_and_hints() {
        assert_eq!(number("GN", 2026, 42), "GN-2026-00042");
        assert_eq!(number("gn-town", 2026, 1), "GN-TOWN-2026-00001");
        assert_eq!(clean_number(" gn-2026-00042 "), Some("GN-2026-00042".into()));
        assert_eq!(clean_number("GN 2026 00042"), Some("GN202600042".into()));
        assert_eq!(clean_number("gn'; drop"), None);
        assert_eq!(clean_number("ab"), None);
        assert_eq!(masked_name("张伟"), "张**");
        assert_eq!(masked_name("欧阳娜娜"), "欧**");
        assert_eq!(masked_name("买买提·艾力"), "买**");
        assert_eq!(masked_name(""), "");
        assert!(!branch_hint(2) && branch_hint(3));
        assert_eq!(number_from_scan("https://kite.example/verify/gn-2026-00042?x=1"), Some("GN-2026-00042".into()));
        assert_eq!(number_from_scan("/verify/GN-2026-00042/"), Some("GN-2026-00042".into()));
        assert_eq!(number_from_scan("GN-2026-00042"), Some("GN-2026-00042".into()));
        assert_eq!(number_from_scan("https://kite.example/verify/"), None);
    }

    #[test]
    fn steps_follow_the_states() {
        assert_eq!(Step::Issue.next(Status::Requested), Some(Status::Issued));
        assert_eq!(Step::Refuse.next(Status::Requested), Some(Status::Refused));
        assert_eq!(Step::Return.next(Status::Issued), Some(Status::Returned));
        assert_eq!(Step::Revoke.next(Status::Issued), Some(Status::Revoked));
        assert_eq!(Step::ReportLost.next(Status::Issued), Some(Status::Lost));
        for from in [Status::Refused, Status::Returned, Status::Revoked, Status::Lost, Status::Void, Status::Expired] {
            assert!(Step::open_from(from).is_empty(), "{from:?}");
        }
        assert_eq!(Step::open_from(Status::Requested), vec![Step::Issue, Step::Refuse]);
        assert_eq!(Step::Return.next(Status::Requested), None);
        assert!(Step::Refuse.needs_reason() && Step::Revoke.needs_reason() && !Step::Return.needs_reason());
        for s in Step::ALL {
            assert_eq!(Step::from_code(s.code()), Some(s));
        }
    }
}
