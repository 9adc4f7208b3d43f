//! What domain validation needs from the world: the division table and today's date.

use chrono::{FixedOffset, NaiveDate, Utc};

/// China Standard Time, in which users read dates and times.
pub const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(o) => o,
    None => panic!("UTC+8 is a valid offset"),
};

/// Dates are China Standard Time dates.
pub fn today() -> NaiveDate {
    Utc::now().with_timezone(&CST).date_naive()
}

pub fn division_known(code: &str) -> bool {
    kite_divisions::get(code).is_some()
}

pub struct Ctx;

impl kite_domain::member::Context for Ctx {
    fn division_known(&self, code: &str) -> bool {
        division_known(code)
    }
    fn province_known(&self, code2: &str) -> bool {
        kite_divisions::is_known_province(code2)
    }
    fn today(&self) -> NaiveDate {
        today()
    }
}
