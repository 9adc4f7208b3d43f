//! Dates as written in Chinese office files, possibly only to the year or month.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::text::half_width_char;

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2100;

/// A date known to the day, the month or only the year ("出生年月: 1990.03").
/// Serialized as `1990`, `1990-03` or `1990-03-05`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PartialDate {
    Year(i32),
    YearMonth(i32, u32),
    Day(NaiveDate),
}

/// How far two partial dates agree, at the precision both have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateAgreement {
    /// They say different things.
    Differ,
    /// The same year, and one of them says no more.
    Year,
    /// The same month, and one of them says no more.
    Month,
    /// The same day.
    Day,
}

impl PartialDate {
    pub fn year(self) -> i32 {
        match self {
            PartialDate::Year(y) | PartialDate::YearMonth(y, _) => y,
            PartialDate::Day(d) => d.year(),
        }
    }

    pub fn month(self) -> Option<u32> {
        match self {
            PartialDate::Year(_) => None,
            PartialDate::YearMonth(_, m) => Some(m),
            PartialDate::Day(d) => Some(d.month()),
        }
    }

    pub fn day(self) -> Option<u32> {
        match self {
            PartialDate::Day(d) => Some(d.day()),
            _ => None,
        }
    }

    /// The full date, if known to the day.
    pub fn date(self) -> Option<NaiveDate> {
        match self {
            PartialDate::Day(d) => Some(d),
            _ => None,
        }
    }

    /// Compares at the coarser of the two precisions.
    pub fn agreement(self, other: PartialDate) -> DateAgreement {
        if self.year() != other.year() {
            return DateAgreement::Differ;
        }
        match (self.month(), other.month()) {
            (Some(a), Some(b)) if a != b => DateAgreement::Differ,
            (Some(_), Some(_)) => match (self.day(), other.day()) {
                (Some(a), Some(b)) if a != b => DateAgreement::Differ,
                (Some(_), Some(_)) => DateAgreement::Day,
                _ => DateAgreement::Month,
            },
            _ => DateAgreement::Year,
        }
    }

    fn from_parts(y: i32, m: Option<u32>, d: Option<u32>) -> Option<PartialDate> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
            return None;
        }
        match (m, d) {
            (None, None) => Some(PartialDate::Year(y)),
            (Some(m), None) => (1..=12).contains(&m).then_some(PartialDate::YearMonth(y, m)),
            (Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m, d).map(PartialDate::Day),
            (None, Some(_)) => None,
        }
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartialDate::Year(y) => write!(f, "{y:04}"),
            PartialDate::YearMonth(y, m) => write!(f, "{y:04}-{m:02}"),
            PartialDate::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

impl From<PartialDate> for String {
    fn from(d: PartialDate) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for PartialDate {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        parse_date(&s).ok_or_else(|| format!("not a date: {s}"))
    }
}

/// Reads the date formats found in rosters: `2024-3-5`, `2024/03/05`, `2024.3.5`,
/// `2024年3月5日`, `20240305`, `1990-03`, `199003`, `1990年3月`, `1990`, an Excel serial
/// number (`32937`, 1900 date system) and any of these followed by a time.
/// Day-first and month-first forms (`5/3/2024`) are read only when unambiguous.
pub fn parse_date(raw: &str) -> Option<PartialDate> {
    let s: String = raw.chars().map(half_width_char).collect();
    if s.contains('年') {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        return parse_chinese(&compact);
    }
    // A time after the date ("2024/3/5 0:00:00", "2024-03-05T08:00") is dropped.
    let s = s.trim().split([' ', 'T']).next().unwrap_or("");
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return parse_compact(s);
    }
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 4) {
        // "32937.0": an Excel serial written as a float.
        return match parts.as_slice() {
            [int, frac] if frac.bytes().all(|b| b.is_ascii_digit()) => parse_serial_text(int),
            _ => None,
        };
    }
    let n: Vec<u32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    match (parts.as_slice(), n.as_slice()) {
        ([y, _], [_, m]) if y.len() == 4 => PartialDate::from_parts(year(y)?, Some(*m), None),
        ([y, _, _], [_, m, d]) if y.len() == 4 => PartialDate::from_parts(year(y)?, Some(*m), Some(*d)),
        ([_, _, y], [a, b, _]) if y.len() == 4 => {
            let (m, d) = match (*a > 12, *b > 12) {
                (true, false) => (*b, *a),
                (false, true) => (*a, *b),
                _ if a == b => (*a, *b),
                _ => return None,
            };
            PartialDate::from_parts(year(y)?, Some(m), Some(d))
        }
        _ => None,
    }
}

fn year(s: &str) -> Option<i32> {
    s.parse().ok()
}

fn parse_chinese(s: &str) -> Option<PartialDate> {
    let (y, rest) = s.split_once('年')?;
    let y = year(y)?;
    if rest.is_empty() {
        return PartialDate::from_parts(y, None, None);
    }
    let (m, rest) = rest.split_once('月')?;
    let m = m.parse().ok()?;
    // Whatever follows the day ("5日 14:00") is a time.
    let rest = rest.split(['日', '号']).next().unwrap_or("");
    if rest.is_empty() {
        return PartialDate::from_parts(y, Some(m), None);
    }
    PartialDate::from_parts(y, Some(m), Some(rest.parse().ok()?))
}

fn parse_compact(s: &str) -> Option<PartialDate> {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    match s.len() {
        8 => PartialDate::from_parts(year(&s[..4])?, num(4..6), Some(num(6..8)?)),
        6 => PartialDate::from_parts(year(&s[..4])?, Some(num(4..6)?), None),
        4 => PartialDate::from_parts(year(s)?, None, None),
        5 => parse_serial_text(s),
        _ => None,
    }
}

/// Five-digit serials only: four digits are read as a year, and serials below 10000
/// (before 1927) are rare enough in rosters to leave out of a guess.
fn parse_serial_text(s: &str) -> Option<PartialDate> {
    if s.len() != 5 {
        return None;
    }
    from_excel_serial(s.parse().ok()?, false)
        .and_then(|d| PartialDate::from_parts(d.year(), Some(d.month()), Some(d.day())))
}

/// The date of an Excel serial number. In the 1900 system Excel counts the non-existent
/// 1900-02-29 (serial 60, kept for Lotus 1-2-3 compatibility), so serials from 61 on
/// are one day ahead of a plain count; serial 60 has no date. The 1904 system (old Mac
/// workbooks) counts from 1904-01-01. The time of day (fraction) is ignored.
pub fn from_excel_serial(serial: f64, is_1904: bool) -> Option<NaiveDate> {
    if !(0.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor() as i64;
    let (epoch, offset) = if is_1904 {
        ((1904, 1, 1), days)
    } else if days == 0 || days == 60 {
        return None;
    } else if days < 60 {
        ((1899, 12, 31), days)
    } else {
        ((1899, 12, 30), days)
    };
    NaiveDate::from_ymd_opt(epoch.0, epoch.1, epoch.2)?.checked_add_signed(Duration::days(offset))
}

/// The birth date written in an ID number (18 characters, or 15 digits born 19xx).
pub fn birth_date_from_id(id: &str) -> Option<PartialDate> {
    let cleaned = super::id_number::clean_id(id);
    let digits = match cleaned.len() {
        18 => cleaned.get(6..14)?.to_owned(),
        15 => format!("19{}", cleaned.get(6..12)?),
        _ => return None,
    };
    match parse_compact(&digits)? {
        d @ PartialDate::Day(_) => Some(d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> Option<PartialDate> {
        NaiveDate::from_ymd_opt(y, m, d).map(PartialDate::Day)
    }

    #[test]
    fn full_dates_in_office_formats() {
        for raw in [
            "2024-3-5",
            "2024-03-05",
            "2024/3/5",
            "2024/03/05",
            "2024.3.5",
            "2024.03.05",
            "2024年3月5日",
            "2024年03月05日",
            "2024 年 3 月 5 日",
            "2024年3月5号",
            "20240305",
            "2024/3/5 0:00:00",
            "2024-03-05T08:30:00",
            "２０２４－０３－０５",
            " 2024-3-5 ",
            "45356",
            "45356.0",
        ] {
            assert_eq!(parse_date(raw), day(2024, 3, 5), "{raw}");
        }
    }

    #[test]
    fn partial_dates() {
        assert_eq!(parse_date("1990-03"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("1990.3"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("1990/03"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("199003"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("1990年3月"), Some(PartialDate::YearMonth(1990, 3)));
        assert_eq!(parse_date("1990年"), Some(PartialDate::Year(1990)));
        assert_eq!(parse_date("1990"), Some(PartialDate::Year(1990)));
    }

    #[test]
    fn day_and_month_first_only_when_unambiguous() {
        assert_eq!(parse_date("25/3/2024"), day(2024, 3, 25));
        assert_eq!(parse_date("3/25/2024"), day(2024, 3, 25));
        assert_eq!(parse_date("5/5/2024"), day(2024, 5, 5));
        assert_eq!(parse_date("3/5/2024"), None);
    }

    #[test]
    fn nonsense_is_not_a_date() {
        for raw in [
            "",
            "不详",
            "2024-13-01",
            "2023-02-29",
            "1990-00",
            "1800-01-01",
            "2024年13月",
            "12",
            "2024-3-5-1",
            "abc",
            "2024--5",
            "1234567",
        ] {
            assert_eq!(parse_date(raw), None, "{raw}");
        }
        assert_eq!(parse_date("2024-02-29"), day(2024, 2, 29));
    }

    #[test]
    fn excel_serials_keep_the_1900_leap_year_bug() {
        assert_eq!(from_excel_serial(1.0, false), NaiveDate::from_ymd_opt(1900, 1, 1));
        assert_eq!(from_excel_serial(59.0, false), NaiveDate::from_ymd_opt(1900, 2, 28));
        assert_eq!(from_excel_serial(60.0, false), None);
        assert_eq!(from_excel_serial(61.0, false), NaiveDate::from_ymd_opt(1900, 3, 1));
        assert_eq!(from_excel_serial(32937.0, false), NaiveDate::from_ymd_opt(1990, 3, 5));
        assert_eq!(from_excel_serial(45356.75, false), NaiveDate::from_ymd_opt(2024, 3, 5));
        assert_eq!(from_excel_serial(0.0, true), NaiveDate::from_ymd_opt(1904, 1, 1));
        assert_eq!(from_excel_serial(31475.0, true), NaiveDate::from_ymd_opt(1990, 3, 5));
        assert_eq!(from_excel_serial(-1.0, false), None);
        assert_eq!(from_excel_serial(f64::NAN, false), None);
    }

    #[test]
    fn birth_dates_from_id_numbers() {
        assert_eq!(birth_date_from_id("11010519491231002X"), day(1949, 12, 31));
        assert_eq!(birth_date_from_id("110105491231002"), day(1949, 12, 31));
        assert_eq!(birth_date_from_id("110105194913310020"), None);
        assert_eq!(birth_date_from_id("1101051949"), None);
    }

    #[test]
    fn agreement_is_at_the_coarser_precision() {
        let d = parse_date("1990-03-05").unwrap();
        assert_eq!(d.agreement(d), DateAgreement::Day);
        assert_eq!(d.agreement(PartialDate::YearMonth(1990, 3)), DateAgreement::Month);
        assert_eq!(PartialDate::Year(1990).agreement(d), DateAgreement::Year);
        assert_eq!(d.agreement(parse_date("1990-03-06").unwrap()), DateAgreement::Differ);
        assert_eq!(d.agreement(PartialDate::YearMonth(1990, 4)), DateAgreement::Differ);
        assert_eq!(d.agreement(PartialDate::Year(1991)), DateAgreement::Differ);
    }

    #[test]
    fn serializes_as_iso_text() {
        let v = serde_json::to_string(&[PartialDate::Year(1990), PartialDate::YearMonth(1990, 3)]).unwrap();
        assert_eq!(v, r#"["1990","1990-03"]"#);
        let back: PartialDate = serde_json::from_str(r#""1990-03-05""#).unwrap();
        assert_eq!(Some(back), day(1990, 3, 5));
        assert!(serde_json::from_str::<PartialDate>(r#""soon""#).is_err());
    }
}
