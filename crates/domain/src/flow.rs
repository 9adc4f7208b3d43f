//! Flows: one period away from home, starting with a departure (外出登记).

use chrono::{Datelike, Months, NaiveDate};

use crate::validation::{self, FieldErrors};
use crate::{FlowReason, FlowStatus};

/// Away this many months without a transfer, a member counts as mobile (流动党员).
pub const MOBILE_AFTER_MONTHS: u32 = 6;

/// Whole months from `left_on` to `today` (0 if not yet left).
pub fn months_away(left_on: NaiveDate, today: NaiveDate) -> u32 {
    if today <= left_on {
        return 0;
    }
    let months = (today.year() - left_on.year()) * 12 + today.month() as i32 - left_on.month() as i32;
    let months = if today.day() < left_on.day() { months - 1 } else { months };
    months.max(0) as u32
}

/// Whether an open flow that left on `left_on` makes its member mobile by `today`.
pub fn counts_as_mobile(left_on: NaiveDate, today: NaiveDate) -> bool {
    months_away(left_on, today) >= MOBILE_AFTER_MONTHS
}

/// The latest departure date that counts as mobile on `today`: the same rule as
/// [`counts_as_mobile`], in the form a query or a scheduled job can use on a column.
pub fn mobile_cutoff(today: NaiveDate) -> NaiveDate {
    today.checked_sub_months(Months::new(MOBILE_AFTER_MONTHS)).unwrap_or(NaiveDate::MIN)
}

/// The end of a flow: the member is back home (返回).
#[derive(Debug, Clone, PartialEq)]
pub struct Return {
    pub returned_on: NaiveDate,
    pub note: Option<String>,
}

/// Validates a return: not before the departure, not in the future.
pub fn validate_return(
    returned_on: &str,
    note: &str,
    left_on: NaiveDate,
    today: NaiveDate,
) -> Result<Return, FieldErrors> {
    let mut e = FieldErrors::default();
    let day = date_field(&mut e, "returned_on", returned_on, today);
    if day.is_some_and(|d| d < left_on) {
        e.add("returned_on", "flow.return_before_leaving");
    }
    let note = validation::text(&mut e, "note", note, false, 500);
    match day {
        Some(returned_on) if e.is_empty() => Ok(Return { returned_on, note }),
        _ => Err(e),
    }
}

/// A required date, not after `today`.
fn date_field(e: &mut FieldErrors, field: &'static str, value: &str, today: NaiveDate) -> Option<NaiveDate> {
    match validation::date(e, field, value, true) {
        Some(d) if d > today => {
            e.add(field, "in_future");
            None
        }
        d => d,
    }
}

/// Which side's list: members of the subtree away (流出), or members from elsewhere
/// checked in to the subtree (流入).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Outflow,
    Inflow,
}

impl Side {
    pub fn code(self) -> &'static str {
        match self {
            Side::Outflow => "outflow",
            Side::Inflow => "inflow",
        }
    }
}

/// Which flows a list shows by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Not checked in, checked in or lost contact: the flows that still bind two places.
    Open,
    All,
    Only(FlowStatus),
}

/// A validated filter for the two lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFilter {
    pub side: Side,
    pub status: StatusFilter,
    /// Division code prefix: the destination on the outflow list, the home
    /// organization's division on the inflow list.
    pub division: Option<String>,
    pub left_from: Option<NaiveDate>,
    pub left_to: Option<NaiveDate>,
    /// Only members away [`MOBILE_AFTER_MONTHS`] or more (as the daily job last found).
    pub mobile_only: bool,
    /// Only checked-in members without an evaluation for this period.
    pub unevaluated: Option<crate::evaluation::Period>,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilterInput<'a> {
    pub status: &'a str,
    pub division: &'a str,
    pub left_from: &'a str,
    pub left_to: &'a str,
    pub mobile: &'a str,
    pub unevaluated: &'a str,
}

pub fn validate_list_filter(side: Side, input: &ListFilterInput) -> Result<ListFilter, FieldErrors> {
    let mut e = FieldErrors::default();
    let status = match input.status.trim() {
        "" | "open" => StatusFilter::Open,
        "all" => StatusFilter::All,
        s => match FlowStatus::from_code(s) {
            Some(st) => StatusFilter::Only(st),
            None => {
                e.add("status", "invalid");
                StatusFilter::Open
            }
        },
    };
    let division = match input.division.trim() {
        "" => None,
        d if (2..=12).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) => Some(d.to_string()),
        _ => {
            e.add("division", "invalid");
            None
        }
    };
    let left_from = validation::date(&mut e, "left_from", input.left_from, false);
    let left_to = validation::date(&mut e, "left_to", input.left_to, false);
    if let (Some(a), Some(b)) = (left_from, left_to) {
        if a > b {
            e.add("left_to", "flow.range_reversed");
        }
    }
    let mobile_only = match input.mobile.trim() {
        "" | "false" | "0" => false,
        "true" | "1" | "on" => true,
        _ => {
            e.add("mobile", "invalid");
            false
        }
    };
    let unevaluated = match input.unevaluated.trim() {
        "" => None,
        s => {
            let p = crate::evaluation::Period::parse(s);
            if p.is_none() {
                e.add("unevaluated", "invalid");
            }
            p
        }
    };
    e.into_result(ListFilter { side, status, division, left_from, left_to, mobile_only, unevaluated })
}

/// A validated departure.
#[derive(Debug, Clone, PartialEq)]
pub struct Departure {
    pub destination_division: String,
    pub destination_address: Option<String>,
    pub reason: FlowReason,
    pub left_on: NaiveDate,
    pub expected_months: Option<i64>,
    pub contact_phone: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DepartureInput<'a> {
    pub destination_division: &'a str,
    pub destination_address: &'a str,
    pub reason: &'a str,
    pub left_on: &'a str,
    pub expected_months: &'a str,
    pub contact_phone: &'a str,
    pub note: &'a str,
}

/// Validates a departure; a member cannot leave before joining nor in the future.
pub fn validate_departure(
    input: &DepartureInput,
    division_known: impl Fn(&str) -> bool,
    joined_on: NaiveDate,
    today: NaiveDate,
) -> Result<Departure, FieldErrors> {
    let mut e = FieldErrors::default();
    let division = input.destination_division.trim();
    if division.is_empty() {
        e.add("destination_division", "required");
    } else if !division_known(division) {
        e.add("destination_division", "unknown");
    }
    let destination_address = validation::text(&mut e, "destination_address", input.destination_address, false, 200);
    let reason = FlowReason::from_code(input.reason.trim());
    if reason.is_none() {
        e.add("reason", if input.reason.trim().is_empty() { "required" } else { "invalid" });
    }
    let left_on = match date_field(&mut e, "left_on", input.left_on, today) {
        Some(d) if d < joined_on => {
            e.add("left_on", "flow.left_before_joining");
            None
        }
        d => d,
    };
    let expected_months = match input.expected_months.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) if (1..=600).contains(&n) => Some(n),
            _ => {
                e.add("expected_months", "invalid");
                None
            }
        },
    };
    let contact_phone = match input.contact_phone.trim() {
        "" => None,
        s => {
            let p = validation::phone(s);
            if p.is_none() {
                e.add("contact_phone", "invalid");
            }
            p
        }
    };
    let note = validation::text(&mut e, "note", input.note, false, 500);
    if !e.is_empty() {
        return Err(e);
    }
    Ok(Departure {
        destination_division: division.to_string(),
        destination_address,
        reason: reason.unwrap_or(FlowReason::Other),
        left_on: left_on.unwrap_or(today),
        expected_months,
        contact_phone,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::parse_date;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn six_whole_months_make_a_member_mobile() {
        assert_eq!(months_away(d("2026-01-31"), d("2026-02-28")), 0);
        assert_eq!(months_away(d("2026-01-31"), d("2026-03-31")), 2);
        assert_eq!(months_away(d("2026-05-24"), d("2026-11-23")), 5);
        assert!(counts_as_mobile(d("2026-05-24"), d("2026-11-24")));
        assert!(!counts_as_mobile(d("2026-05-25"), d("2026-11-24")));
        assert_eq!(months_away(d("2027-01-01"), d("2026-11-24")), 0);
    }

    #[test]
    fn the_cutoff_is_the_same_rule_as_months_away() {
        let mut today = d("2027-01-01");
        while today < d("2028-12-31") {
            let cutoff = mobile_cutoff(today);
            for back in 150..220 {
                let left = today - chrono::Days::new(back);
                assert_eq!(counts_as_mobile(left, today), left <= cutoff, "left {left} today {today}");
            }
            today = today + chrono::Days::new(1);
        }
    }

    #[test]
    fn dates_have_four_digit_years() {
        assert_eq!(parse_date(" 2026-03-05 "), Some(d("2026-03-05")));
        for bad in ["-5000-01-01", "+2026-01-01", "12026-01-01", "26-01-01", "2026/01/01", "2026-02-30"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_return_falls_between_departure_and_today() {
        let (left, today) = (d("2026-03-01"), d("2026-11-24"));
        assert_eq!(validate_return("2026-11-01", "", left, today).unwrap().returned_on, d("2026-11-01"));
        let e = validate_return("2026-02-01", "", left, today).unwrap_err();
        assert_eq!(e.get("returned_on"), Some("flow.return_before_leaving"));
        assert_eq!(validate_return("2026-12-01", "", left, today).unwrap_err().get("returned_on"), Some("in_future"));
        assert_eq!(validate_return("", "", left, today).unwrap_err().get("returned_on"), Some("required"));
    }

    #[test]
    fn list_filters_parse_or_name_the_bad_field() {
        let f = validate_list_filter(
            Side::Inflow,
            &ListFilterInput { status: "checked_in", division: "3213", mobile: "1", ..Default::default() },
        )
        .unwrap();
        assert_eq!(f.status, StatusFilter::Only(FlowStatus::CheckedIn));
        assert_eq!(f.division.as_deref(), Some("3213"));
        assert!(f.mobile_only);
        let e = validate_list_filter(
            Side::Outflow,
            &ListFilterInput {
                status: "gone",
                division: "32a",
                left_from: "2026-05-01",
                left_to: "2026-04-01",
                unevaluated: "2026-H3",
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.get("status"), Some("invalid"));
        assert_eq!(e.get("division"), Some("invalid"));
        assert_eq!(e.get("left_to"), Some("flow.range_reversed"));
        assert_eq!(e.get("unevaluated"), Some("invalid"));
    }

    #[test]
    fn accepts_a_departure() {
        let input = DepartureInput {
            destination_division: "320506",
            reason: "work",
            left_on: "2026-03-01",
            expected_months: "12",
            contact_phone: "13912345678",
            ..Default::default()
        };
        let dep = validate_departure(&input, |c| c == "320506", d("2010-07-01"), d("2026-11-24")).unwrap();
        assert_eq!(dep.reason, FlowReason::Work);
        assert_eq!(dep.expected_months, Some(12));
    }

    #[test]
    fn refuses_impossible_dates_and_unknown_places() {
        let input = DepartureInput {
            destination_division: "999999",
            reason: "x",
            left_on: "2009-01-01",
            expected_months: "0",
            ..Default::default()
        };
        let e = validate_departure(&input, |_| false, d("2010-07-01"), d("2026-11-24")).unwrap_err();
        assert_eq!(e.get("destination_division"), Some("unknown"));
        assert_eq!(e.get("reason"), Some("invalid"));
        assert_eq!(e.get("left_on"), Some("flow.left_before_joining"));
        assert_eq!(e.get("expected_months"), Some("invalid"));
        let input = DepartureInput { left_on: "2027-01-01", ..input };
        let e = validate_departure(&input, |_| true, d("2010-07-01"), d("2026-11-24")).unwrap_err();
        assert_eq!(e.get("left_on"), Some("in_future"));
    }
}
