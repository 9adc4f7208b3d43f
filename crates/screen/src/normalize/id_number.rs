//! Resident identity numbers (公民身份号码) as found in rosters: cleaning, the 15 to 18
//! upgrade, validation, and the valid numbers one typo away from an invalid one.

use chrono::NaiveDate;
use kite_domain::id_number::check_char;
use kite_domain::{IdNumber, IdNumberError};
use serde::{Deserialize, Serialize};

use super::text::half_width_char;

/// The outcome of normalizing one ID cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IdCheck {
    /// The cell held nothing that looks like a number.
    Empty,
    /// A valid 18-character number; `upgraded` when the cell held the old 15-digit form.
    Valid { value: String, upgraded: bool },
    /// Not valid; `cleaned` is the cell without separators, for fuzzy comparison and repair.
    Invalid { cleaned: String, problem: IdProblem },
}

impl IdCheck {
    /// The valid 18-character number, if any.
    pub fn valid(&self) -> Option<&str> {
        match self {
            IdCheck::Valid { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whatever characters the cell held after cleaning (valid or not).
    pub fn cleaned(&self) -> Option<&str> {
        match self {
            IdCheck::Empty => None,
            IdCheck::Valid { value, .. } => Some(value),
            IdCheck::Invalid { cleaned, .. } => Some(cleaned),
        }
    }
}

/// Why a number is not valid. The codes are the registry's (`id_number.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdProblem {
    Length,
    Characters,
    BirthDate,
    CheckDigit,
    Province,
}

impl IdProblem {
    pub fn code(self) -> &'static str {
        match self {
            IdProblem::Length => "id_number.length",
            IdProblem::Characters => "id_number.characters",
            IdProblem::BirthDate => "id_number.birth_date",
            IdProblem::CheckDigit => "id_number.check_digit",
            IdProblem::Province => "id_number.province",
        }
    }
}

impl From<IdNumberError> for IdProblem {
    fn from(e: IdNumberError) -> Self {
        match e {
            IdNumberError::Length => IdProblem::Length,
            IdNumberError::Characters => IdProblem::Characters,
            IdNumberError::BirthDate => IdProblem::BirthDate,
            IdNumberError::CheckDigit => IdProblem::CheckDigit,
            IdNumberError::Province => IdProblem::Province,
        }
    }
}

/// Removes what office files put around and inside numbers: full-width digits, spaces,
/// hyphens, dots, the apostrophe Excel uses to keep a number as text, and a lower-case x.
pub fn clean_id(raw: &str) -> String {
    raw.chars()
        .map(half_width_char)
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '.' | '\'' | '`' | '"' | '\u{FEFF}' | '\u{200B}'))
        .map(|c| if c == '×' { 'X' } else { c.to_ascii_uppercase() })
        .collect()
}

/// Cleans and validates one ID cell; a valid 15-digit number is upgraded to 18.
pub fn normalize_id(raw: &str) -> IdCheck {
    let cleaned = clean_id(raw);
    if cleaned.is_empty() {
        return IdCheck::Empty;
    }
    match IdNumber::parse(&cleaned) {
        Ok(id) if province_known(id.as_str()) => {
            IdCheck::Valid { value: id.as_str().to_owned(), upgraded: cleaned.len() == 15 }
        }
        Ok(_) => IdCheck::Invalid { cleaned, problem: IdProblem::Province },
        Err(e) => IdCheck::Invalid { cleaned, problem: e.into() },
    }
}

/// Upgrades a 15-digit number (born 19xx, no check digit) to its 18-character form.
/// Returns `None` unless the result is valid.
pub fn upgrade_15(raw: &str) -> Option<String> {
    let cleaned = clean_id(raw);
    if cleaned.len() != 15 {
        return None;
    }
    normalize_id(&cleaned).valid().map(str::to_owned)
}

/// Whether an 18-character number's check character is right (ISO 7064 MOD 11-2).
pub fn check_digit_ok(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) && check_char(&b[..17]) == b[17]
}

/// Province-level division codes (GB/T 2260), the first two digits of every number.
const PROVINCES: &[&[u8; 2]] = &[
    b"11", b"12", b"13", b"14", b"15", b"21", b"22", b"23", b"31", b"32", b"33", b"34", b"35", b"36", b"37", b"41",
    b"42", b"43", b"44", b"45", b"46", b"50", b"51", b"52", b"53", b"54", b"61", b"62", b"63", b"64", b"65", b"71",
    b"81", b"82", b"83",
];

fn province_known(id: &str) -> bool {
    id.as_bytes().get(..2).is_some_and(|p| PROVINCES.iter().any(|known| &known[..] == p))
}

/// The birth date written in an 18-character number, if it is a real date.
pub fn birth_date_of(id: &str) -> Option<NaiveDate> {
    let digits = id.get(6..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = digits[..4].parse().ok()?;
    let m = digits[4..6].parse().ok()?;
    let d = digits[6..8].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

fn plausible(id: &[u8], today: NaiveDate) -> bool {
    let Ok(s) = std::str::from_utf8(id) else { return false };
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    check_digit_ok(s) && province_known(s) && birth_date_of(s).is_some_and(|born| born >= earliest && born <= today)
}

/// The valid numbers one substitution or one swap of neighbours away from an invalid
/// 18-character number, each with a known province and a birth date between 1900 and
/// `today`. Sorted; empty for a valid number or one of another length.
///
/// MOD 11-2 lets at most one digit at each position fix the sum, so the list is short
/// (at most 18 substitutions and 17 swaps) and the matcher picks among them with the
/// other fields.
pub fn repair_candidates(raw: &str, today: NaiveDate) -> Vec<String> {
    let cleaned = clean_id(raw);
    let b = cleaned.as_bytes();
    if b.len() != 18 || !b.iter().all(|c| c.is_ascii_digit() || *c == b'X') || plausible(b, today) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut work = b.to_vec();
    for i in 0..18 {
        let alphabet: &[u8] = if i == 17 { b"0123456789X" } else { b"0123456789" };
        for &c in alphabet {
            if c == b[i] {
                continue;
            }
            work[i] = c;
            if plausible(&work, today) {
                out.push(String::from_utf8_lossy(&work).into_owned());
            }
        }
        work[i] = b[i];
    }
    for i in 0..17 {
        if b[i] == b[i + 1] {
            continue;
        }
        work.swap(i, i + 1);
        if plausible(&work, today) {
            out.push(String::from_utf8_lossy(&work).into_owned());
        }
        work.swap(i, i + 1);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    // A valid number of Guannan county (320724), born 1988-02-29.
    const VALID: &str = "320724198802290012";

    #[test]
    fn the_fixture_is_valid() {
        assert!(check_digit_ok(VALID), "{}", check_char(&VALID.as_bytes()[..17]) as char);
    }

    #[test]
    fn cleans_office_file_noise() {
        assert_eq!(clean_id(" 11010519491231002x "), "11010519491231002X");
        assert_eq!(clean_id("'110105 1949 1231 002X"), "11010519491231002X");
        assert_eq!(clean_id("１１０１０５１９４９１２３１００２Ｘ"), "11010519491231002X");
        assert_eq!(clean_id("110105-19491231-002X"), "11010519491231002X");
    }

    #[test]
    fn normalizes_valid_and_upgraded_numbers() {
        assert_eq!(
            normalize_id("11010519491231002x"),
            IdCheck::Valid { value: "11010519491231002X".into(), upgraded: false }
        );
        assert_eq!(
            normalize_id("110105491231002"),
            IdCheck::Valid { value: "11010519491231002X".into(), upgraded: true }
        );
        assert_eq!(upgrade_15("110105 491231 002").as_deref(), Some("11010519491231002X"));
        assert_eq!(upgrade_15("11010519491231002X"), None);
        assert_eq!(normalize_id(" "), IdCheck::Empty);
    }

    #[test]
    fn reports_why_a_number_is_invalid() {
        let problem = |raw: &str| match normalize_id(raw) {
            IdCheck::Invalid { problem, .. } => Some(problem),
            _ => None,
        };
        assert_eq!(problem("110105194912310021"), Some(IdProblem::CheckDigit));
        assert_eq!(problem("110105194902300020"), Some(IdProblem::BirthDate));
        assert_eq!(problem("1101051949"), Some(IdProblem::Length));
        assert_eq!(problem("11010519491231X02X"), Some(IdProblem::Characters));
        // 99 is no province; the check digit is right for it.
        let mut s = String::from("99010519491231002");
        s.push(check_char(s.as_bytes()) as char);
        assert_eq!(problem(&s), Some(IdProblem::Province));
        assert_eq!(IdProblem::CheckDigit.code(), "id_number.check_digit");
    }

    #[test]
    fn a_wrong_check_digit_has_exactly_the_right_one_among_candidates() {
        let typo = "110105194912310021";
        let candidates = repair_candidates(typo, today());
        assert!(candidates.contains(&"11010519491231002X".to_owned()), "{candidates:?}");
        for c in &candidates {
            assert!(check_digit_ok(c));
            let diff = c.bytes().zip(typo.bytes()).filter(|(a, b)| a != b).count();
            assert!(diff == 1 || diff == 2, "{c}");
        }
    }

    #[test]
    fn every_single_typo_of_a_valid_number_is_repaired() {
        let b = VALID.as_bytes();
        for i in 0..18 {
            for c in b"0123456789" {
                if *c == b[i] {
                    continue;
                }
                let mut typo = b.to_vec();
                typo[i] = *c;
                let typo = String::from_utf8(typo).unwrap();
                if plausible(typo.as_bytes(), today()) {
                    continue; // another valid number, not a typo we can see
                }
                let candidates = repair_candidates(&typo, today());
                assert!(candidates.iter().any(|x| x == VALID), "{typo}: {candidates:?}");
            }
        }
    }

    #[test]
    fn transpositions_are_repaired() {
        let mut seen = 0;
        for i in 0..17 {
            let mut b = VALID.as_bytes().to_vec();
            if b[i] == b[i + 1] {
                continue;
            }
            b.swap(i, i + 1);
            let swapped = String::from_utf8(b).unwrap();
            if check_digit_ok(&swapped) {
                continue; // this swap happens to keep the sum
            }
            assert!(repair_candidates(&swapped, today()).contains(&VALID.to_owned()), "{swapped}");
            seen += 1;
        }
        assert!(seen >= 10, "{seen}");
    }

    #[test]
    fn candidates_have_plausible_birth_dates() {
        let typo = "320724198802290017";
        assert!(!repair_candidates(typo, today()).is_empty());
        for c in repair_candidates(typo, today()) {
            let born = birth_date_of(&c).expect("a real date");
            assert!(born.year_ce().1 >= 1900 && born <= today(), "{c}");
        }
        // A birth date in the future is not plausible.
        let mut future = String::from("32072420300101001");
        future.push(check_char(future.as_bytes()) as char);
        assert!(!repair_candidates(&future, today()).contains(&future));
    }

    #[test]
    fn valid_and_wrong_length_numbers_have_no_candidates() {
        assert!(repair_candidates(VALID, today()).is_empty());
        assert!(repair_candidates("3207241988022900", today()).is_empty());
        assert!(repair_candidates("", today()).is_empty());
    }

    #[test]
    fn birth_date_is_read_from_the_number() {
        assert_eq!(birth_date_of(VALID), NaiveDate::from_ymd_opt(1988, 2, 29));
        assert_eq!(birth_date_of("320724198802300012"), None);
        assert_eq!(birth_date_of("3207"), None);
    }

    use chrono::Datelike;
}
