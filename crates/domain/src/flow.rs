//! Flows: one period away from home, starting with a departure (外出登记).

use chrono::{Datelike, NaiveDate};

use crate::member::parse_date;
use crate::validation::{self, FieldErrors};
use crate::FlowReason;

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
    let left_on = if input.left_on.trim().is_empty() {
        e.add("left_on", "required");
        None
    } else {
        match parse_date(input.left_on) {
            None => {
                e.add("left_on", "invalid_date");
                None
            }
            Some(d) if d > today => {
                e.add("left_on", "in_future");
                None
            }
            Some(d) if d < joined_on => {
                e.add("left_on", "flow.left_before_joining");
                None
            }
            d => d,
        }
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
