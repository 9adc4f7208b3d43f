//! Inflow evaluations: each period the inflow organization rates each member checked in
//! to it (民主评议 result and daily performance); the outflow side reads them.

use crate::validation::{self, FieldErrors};
use chrono::{Datelike, Months, NaiveDate};

pub use crate::{EvaluationCycle as Cycle, Rating};

/// Half-yearly unless configured otherwise.
pub const DEFAULT_CYCLE: Cycle = Cycle::HalfYear;

impl Cycle {
    fn months(self) -> u32 {
        match self {
            Cycle::Quarter => 3,
            Cycle::HalfYear => 6,
            Cycle::Year => 12,
        }
    }
}

/// One evaluation period, named `2026-Q4`, `2026-H2` or `2026`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub cycle: Cycle,
    pub year: i32,
    /// 1-based index within the year (always 1 for a year).
    pub index: u32,
}

impl Period {
    pub fn containing(day: NaiveDate, cycle: Cycle) -> Self {
        Period { cycle, year: day.year(), index: day.month0() / cycle.months() + 1 }
    }

    pub fn parse(label: &str) -> Option<Self> {
        let label = label.trim();
        let (year, rest) = match label.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (label, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let (cycle, index) = match rest {
            None => (Cycle::Year, 1),
            Some(r) => {
                let (cycle, max) = match r.as_bytes().first()? {
                    b'Q' => (Cycle::Quarter, 4),
                    b'H' => (Cycle::HalfYear, 2),
                    _ => return None,
                };
                let index: u32 = r.get(1..)?.parse().ok()?;
                if !(1..=max).contains(&index) || r.len() != 2 {
                    return None;
                }
                (cycle, index)
            }
        };
        Some(Period { cycle, year, index })
    }

    pub fn label(&self) -> String {
        match self.cycle {
            Cycle::Quarter => format!("{}-Q{}", self.year, self.index),
            Cycle::HalfYear => format!("{}-H{}", self.year, self.index),
            Cycle::Year => format!("{}", self.year),
        }
    }

    pub fn starts(&self) -> NaiveDate {
        let month = (self.index - 1) * self.cycle.months() + 1;
        NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The last day of the period.
    pub fn ends(&self) -> NaiveDate {
        self.starts()
            .checked_add_months(Months::new(self.cycle.months()))
            .and_then(|d| d.pred_opt())
            .unwrap_or(NaiveDate::MAX)
    }

    pub fn previous(&self) -> Self {
        Period::containing(self.starts().pred_opt().unwrap_or(NaiveDate::MIN), self.cycle)
    }
}

/// A validated evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub period: Period,
    pub rating: Rating,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EvaluationInput<'a> {
    pub period: &'a str,
    pub rating: &'a str,
    pub comment: &'a str,
}

/// Validates an evaluation for a member checked in on `checked_in_on`: the period must
/// have begun, and the member must have been checked in before it ended.
pub fn validate(
    input: &EvaluationInput,
    cycle: Cycle,
    checked_in_on: NaiveDate,
    today: NaiveDate,
) -> Result<Evaluation, FieldErrors> {
    let mut e = FieldErrors::default();
    let period = match input.period.trim() {
        "" => Some(Period::containing(today, cycle)),
        s => match Period::parse(s) {
            Some(p) if p.cycle != cycle => {
                e.add("period", "evaluation.wrong_cycle");
                None
            }
            Some(p) if p.starts() > today => {
                e.add("period", "evaluation.future_period");
                None
            }
            Some(p) if p.ends() < checked_in_on => {
                e.add("period", "evaluation.before_checkin");
                None
            }
            Some(p) => Some(p),
            None => {
                e.add("period", "invalid");
                None
            }
        },
    };
    let rating = Rating::from_code(input.rating.trim());
    if rating.is_none() {
        e.add("rating", if input.rating.trim().is_empty() { "required" } else { "invalid" });
    }
    let comment = validation::text(&mut e, "comment", input.comment, false, 1000);
    match (period, rating) {
        (Some(period), Some(rating)) if e.is_empty() => Ok(Evaluation { period, rating, comment }),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::parse_date;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn periods_name_and_bound_their_days() {
        let p = Period::containing(d("2026-11-24"), Cycle::HalfYear);
        assert_eq!(p.label(), "2026-H2");
        assert_eq!((p.starts(), p.ends()), (d("2026-07-01"), d("2026-12-31")));
        assert_eq!(p.previous().label(), "2026-H1");
        let q = Period::containing(d("2026-01-01"), Cycle::Quarter);
        assert_eq!((q.label(), q.ends()), ("2026-Q1".to_string(), d("2026-03-31")));
        assert_eq!(q.previous().label(), "2025-Q4");
        assert_eq!(Period::containing(d("2026-06-30"), Cycle::Year).label(), "2026");
        for label in ["2026-H1", "2026-Q4", "2026"] {
            assert_eq!(Period::parse(label).map(|p| p.label()).as_deref(), Some(label));
        }
        for bad in ["2026-H3", "2026-Q0", "26-H1", "2026-X1", "2026-H12", "2026-", "２０２６"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn evaluations_need_a_begun_period_after_check_in() {
        let today = d("2026-11-24");
        let ok = validate(
            &EvaluationInput { rating: "excellent", comment: "积极参加活动", ..Default::default() },
            Cycle::HalfYear,
            d("2026-03-01"),
            today,
        )
        .unwrap();
        assert_eq!((ok.period.label(), ok.rating), ("2026-H2".to_string(), Rating::Excellent));
        let e = |period: &str, rating: &str, checked_in: &str| {
            validate(&EvaluationInput { period, rating, comment: "" }, Cycle::HalfYear, d(checked_in), today)
                .unwrap_err()
        };
        assert_eq!(e("2027-H1", "qualified", "2026-03-01").get("period"), Some("evaluation.future_period"));
        assert_eq!(e("2025-H2", "qualified", "2026-03-01").get("period"), Some("evaluation.before_checkin"));
        assert_eq!(e("2026-Q1", "qualified", "2026-03-01").get("period"), Some("evaluation.wrong_cycle"));
        assert_eq!(e("2026-H1", "", "2026-03-01").get("rating"), Some("required"));
        assert_eq!(e("2026-H1", "best", "2026-03-01").get("rating"), Some("invalid"));
    }
}
