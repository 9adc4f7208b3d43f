//! Resident identity numbers (公民身份号码, GB 11643-1999).

use chrono::NaiveDate;

use crate::Gender;

/// Why an identity number was refused. Each variant has a stable code used by the
/// message catalogue and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("id number must have 18 characters (or 15 for the old form)")]
    Length,
    #[error("id number may only hold digits and a final X")]
    Characters,
    #[error("id number has an impossible birth date")]
    BirthDate,
    #[error("id number check digit is wrong")]
    CheckDigit,
    #[error("id number starts with an unknown province code")]
    Province,
}

impl IdNumberError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Length => "id_number.length",
            Self::Characters => "id_number.characters",
            Self::BirthDate => "id_number.birth_date",
            Self::CheckDigit => "id_number.check_digit",
            Self::Province => "id_number.province",
        }
    }
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// The ISO 7064 MOD 11-2 check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// A validated 18-character identity number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses an 18-character number, or upgrades a 15-digit one (born 19xx).
    /// Spaces are ignored and a lower-case x is accepted.
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        let s: String = input.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        match s.len() {
            18 => Self::parse18(s),
            15 => Self::upgrade15(&s),
            _ => Err(IdNumberError::Length),
        }
    }

    fn parse18(s: String) -> Result<Self, IdNumberError> {
        let b = s.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdNumberError::Characters);
        }
        birth_date_at(&s[6..14]).ok_or(IdNumberError::BirthDate)?;
        if check_char(&b[..17]) != b[17] {
            return Err(IdNumberError::CheckDigit);
        }
        Ok(Self(s))
    }

    /// 15-digit numbers (issued before 1999) carry a two-digit year of the 1900s and no check digit.
    fn upgrade15(s: &str) -> Result<Self, IdNumberError> {
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(IdNumberError::Characters);
        }
        let mut v = format!("{}19{}", &s[..6], &s[6..]);
        birth_date_at(&v[6..14]).ok_or(IdNumberError::BirthDate)?;
        let c = check_char(v.as_bytes());
        v.push(c as char);
        Ok(Self(v))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The six-digit division code of the place of first registration.
    pub fn division_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        birth_date_at(&self.0[6..14]).expect("validated at parse")
    }

    /// The 17th digit is odd for men and even for women.
    pub fn gender(&self) -> Gender {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }

    /// The form shown in lists: division code and last four characters.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any stored identity number for display in lists: `320724********1234`.
pub fn mask(id: &str) -> String {
    let n = id.chars().count();
    if n < 10 {
        return "*".repeat(n);
    }
    let head: String = id.chars().take(6).collect();
    let tail: String = id.chars().skip(n - 4).collect();
    format!("{head}{}{tail}", "*".repeat(n - 10))
}

/// Masks every ID number written inside free text, the ways rosters write them: with an
/// apostrophe or `="…"` (spreadsheets), full-width digits, dashes, dots, slashes or spaces
/// between groups of digits, a lower-case x, next to a name or to another number, or with
/// a digit too many or too few. A number of 15 to 19 digits (an X may end it) whose birth
/// date is plausible is masked whole; other digits, such as phones and dates, stay.
pub fn mask_within(text: &str) -> String {
    let chars: Vec<char> = text.chars().map(half_width).collect();
    let groups = digit_groups(&chars);
    // Chains of groups one or two separators apart; in each, windows start at a group.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut k = 0;
    while k < groups.len() {
        let mut best = None;
        let mut total = 0;
        for (m, &(start, end)) in groups.iter().enumerate().skip(k) {
            if m > k && !joined(&chars, groups[m - 1].1, start) {
                break;
            }
            total += end - start;
            if total > 19 {
                break;
            }
            if total >= 15 && plausible_id(&chars, groups[k].0, end) {
                best = Some(m);
            }
        }
        match best {
            Some(m) => {
                spans.push((groups[k].0, groups[m].1));
                k = m + 1;
            }
            None => k += 1,
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.extend(&chars[at..start]);
        let digits: String =
            chars[start..end].iter().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        out.push_str(&mask(&digits));
        at = end;
    }
    out.extend(&chars[at..]);
    out
}

/// Runs of digits (an X may end one) as (start, end) positions. A run longer than 19 (an
/// ID glued to another number) is cut so that an 18-digit number with a plausible birth
/// date at its start is a run of its own.
fn digit_groups(chars: &[char]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i < chars.len() && matches!(chars[i], 'X' | 'x') {
            i += 1;
        }
        let mut s = start;
        while i - s > 19 && plausible_id(chars, s, s + 18) {
            groups.push((s, s + 18));
            s += 18;
        }
        groups.push((s, i));
    }
    groups
}

/// Whether the groups ending at `end` and starting at `next` are one number written with
/// one or two separators between them.
fn joined(chars: &[char], end: usize, next: usize) -> bool {
    let gap = &chars[end..next];
    !matches!(chars[end - 1], 'X' | 'x')
        && (1..=2).contains(&gap.len())
        && gap.iter().all(|c| matches!(c, '-' | '.' | '/' | '_' | '—') || c.is_whitespace())
}

/// Whether the digits between `start` and `end` (separators skipped) could be an ID
/// number: 15 to 19 of them, an X only last, and a birth date where it would be.
fn plausible_id(chars: &[char], start: usize, end: usize) -> bool {
    let digits: Vec<u8> = chars[start..end].iter().filter(|c| c.is_ascii_alphanumeric()).map(|c| *c as u8).collect();
    let n = digits.len();
    if !(15..=19).contains(&n) || digits[..n - 1].iter().any(|d| !d.is_ascii_digit()) {
        return false;
    }
    let number = |r: std::ops::Range<usize>| std::str::from_utf8(&digits[r]).ok()?.parse::<u32>().ok();
    // 18 digits (give or take a typo): YYYYMMDD at 7–14; 15 (or 16): YYMMDD at 7–12.
    let (year, month, day) = if n >= 17 {
        (number(6..10), number(10..12), number(12..14))
    } else {
        (number(6..8).map(|y| 1900 + y), number(8..10), number(10..12))
    };
    matches!((year, month, day), (Some(y), Some(m), Some(d)) if (1900..=2099).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
}

/// Full-width digits and letters as ASCII.
fn half_width(c: char) -> char {
    match c {
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '－' | '．' | '／' | '＿' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

fn birth_date_at(yyyymmdd: &str) -> Option<NaiveDate> {
    let y: i32 = yyyymmdd[..4].parse().ok()?;
    let m: u32 = yyyymmdd[4..6].parse().ok()?;
    let d: u32 = yyyymmdd[6..8].parse().ok()?;
    if !(1900..=2100).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Builds a valid number from its parts; used by the demo and by tests.
pub fn compose(division: &str, birth: NaiveDate, sequence: u16, gender: Gender) -> IdNumber {
    let seq = sequence % 100;
    let g = match gender {
        Gender::Male => 1,
        Gender::Female => 0,
    } + 2 * ((sequence / 100) % 5);
    let mut s = format!("{division}{}{seq:02}{g}", birth.format("%Y%m%d"));
    let c = check_char(s.as_bytes());
    s.push(c as char);
    IdNumber(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_inside_text_are_masked_the_ways_rosters_write_them() {
        let id = "320724198803051216";
        let masked = "320724********1216";
        for (written, shown) in [
            (format!("'{id}"), format!("'{masked}")),
            (format!("=\"{id}\""), format!("=\"{masked}\"")),
            ("３２０７２４１９８８０３０５１２１６".to_string(), masked.to_string()),
            ("320724-19880305-1216".to_string(), masked.to_string()),
            ("320724 1988 0305 1216".to_string(), masked.to_string()),
            ("张三(32072419880305121x)".to_string(), "张三(320724********121X)".to_string()),
            (format!("13912340001 {id}"), format!("13912340001 {masked}")),
            ("320724880305121".to_string(), "320724*****5121".to_string()),
            ("320724\u{3000}19880305\u{a0}1216".to_string(), masked.to_string()),
            ("320724－19880305／1216".to_string(), masked.to_string()),
            ("320724  19880305  1216".to_string(), masked.to_string()),
            // A digit too many or too few.
            ("32072419880305121".to_string(), "320724*******5121".to_string()),
            ("3207241988030512160".to_string(), "320724*********2160".to_string()),
            (format!("{id}13912340001"), format!("{masked}13912340001")),
            (format!("2024-03-05 {id}"), format!("2024-03-05 {masked}")),
            ("2024-03-05 320724-19880305-1216".to_string(), format!("2024-03-05 {masked}")),
        ] {
            assert_eq!(mask_within(&written), shown, "{written}");
        }
        // Phones, dates, amounts and longer numbers stay.
        for kept in [
            "13912340001",
            "+86 139-1234-0001",
            "2024-03-05",
            "6222021234567890123",
            "工号 00123",
            "13912340001 2024",
            "2023.10.1-2024.12.31",
            "0512-6688-1234-567",
            "0086 139 1234 0001",
        ] {
            assert_eq!(mask_within(kept), kept);
        }
    }

    #[test]
    fn accepts_a_valid_number_and_reads_its_parts() {
        // GB 11643 annex example.
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.division_code(), "110105");
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.gender(), Gender::Female);
        assert_eq!(id.masked(), "110105********002X");
    }

    #[test]
    fn lower_case_x_and_spaces_are_normalised() {
        let id = IdNumber::parse(" 110105 19491231 002x ").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn rejects_a_wrong_check_digit() {
        assert_eq!(IdNumber::parse("110105194912310021"), Err(IdNumberError::CheckDigit));
    }

    #[test]
    fn rejects_impossible_dates_lengths_and_characters() {
        assert_eq!(IdNumber::parse("110105194902300020"), Err(IdNumberError::BirthDate));
        assert_eq!(IdNumber::parse("1101051949"), Err(IdNumberError::Length));
        assert_eq!(IdNumber::parse("11010519491231X02X"), Err(IdNumberError::Characters));
    }

    #[test]
    fn upgrades_fifteen_digits() {
        let id = IdNumber::parse("110105491231002").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(IdNumber::parse("11010549123100A").is_err());
    }

    #[test]
    fn composed_numbers_are_valid_and_carry_gender() {
        let birth = NaiveDate::from_ymd_opt(1988, 2, 29).unwrap();
        for seq in [0u16, 7, 99, 123, 499] {
            for g in [Gender::Male, Gender::Female] {
                let id = compose("320724", birth, seq, g);
                let parsed = IdNumber::parse(id.as_str()).unwrap();
                assert_eq!(parsed.gender(), g);
                assert_eq!(parsed.birth_date(), birth);
            }
        }
    }

    #[test]
    fn masking_short_values_hides_everything() {
        assert_eq!(mask("12345"), "*****");
    }
}
