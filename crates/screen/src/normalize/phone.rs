//! Phone numbers: country prefixes, separators, full-width digits, several numbers in one cell.

use serde::{Deserialize, Serialize};

use super::text::half_width_char;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    /// Eleven digits starting 13–19.
    Mobile,
    /// A fixed line with its area code, written `0512-65231234`.
    Landline,
    /// Digits that are neither (a local number without area code, a service number, a typo).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone {
    pub number: String,
    pub kind: PhoneKind,
}

/// Splits a cell into the numbers it holds ("138 0013 8000/0512-65231234") and normalizes
/// each; parts without any digit are dropped.
pub fn normalize_phones(raw: &str) -> Vec<Phone> {
    let half: String = raw.chars().map(half_width_char).collect();
    half.split(['/', ',', ';', '、', '，', '；', '|', '\\', '或'])
        .flat_map(split_joined)
        .filter_map(normalize_one)
        .collect()
}

/// The first number in a cell, preferring a mobile number.
pub fn normalize_phone(raw: &str) -> Option<Phone> {
    let all = normalize_phones(raw);
    let mobile = all.iter().position(|p| p.kind == PhoneKind::Mobile);
    all.into_iter().nth(mobile.unwrap_or(0))
}

/// Two numbers separated only by spaces ("13800138000 13900139000") are split; spaces
/// inside one number ("138 0013 8000") are not.
fn split_joined(part: &str) -> Vec<&str> {
    let words: Vec<&str> = part.split_whitespace().collect();
    let whole_numbers = words.len() > 1
        && words.iter().all(|w| {
            let d: String = w.chars().filter(char::is_ascii_digit).collect();
            (d.len() == 11 && d.starts_with('1')) || (d.len() >= 10 && d.starts_with('0'))
        });
    if whole_numbers {
        words
    } else {
        vec![part]
    }
}

fn normalize_one(part: &str) -> Option<Phone> {
    // An extension ("转 801", "ext. 12") is not part of the number people are reached on.
    let lower = part.to_lowercase();
    let main = ["转", "ext", "分机"].iter().filter_map(|m| lower.find(m)).min().map_or(lower.as_str(), |i| &lower[..i]);
    let plus = main.trim_start().starts_with('+');
    let mut digits: String = main.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    // +86, 0086 and a bare 86 in front of a mobile number.
    let mut international = false;
    if let Some(rest) = digits.strip_prefix("0086") {
        digits = rest.to_owned();
        international = true;
    } else if let Some(rest) = digits.strip_prefix("86").filter(|r| plus || is_mobile(r)) {
        digits = rest.to_owned();
        international = true;
    }
    if is_mobile(&digits) {
        return Some(Phone { number: digits, kind: PhoneKind::Mobile });
    }
    // In the international form a landline drops its trunk 0: +86 512 6523 1234.
    if international && !digits.starts_with('0') {
        digits.insert(0, '0');
    }
    if let Some(number) = landline(&digits) {
        return Some(Phone { number, kind: PhoneKind::Landline });
    }
    Some(Phone { number: digits, kind: PhoneKind::Other })
}

fn is_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

/// Area codes are 010 and 02x (three digits) or 0xxx (four); local numbers 7 or 8 digits.
fn landline(d: &str) -> Option<String> {
    if !d.starts_with('0') || d.starts_with("00") {
        return None;
    }
    let area = if d.starts_with("010") || d.starts_with("02") { 3 } else { 4 };
    let local = d.len().checked_sub(area)?;
    (7..=8).contains(&local).then(|| format!("{}-{}", &d[..area], &d[area..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mobile(n: &str) -> Option<Phone> {
        Some(Phone { number: n.into(), kind: PhoneKind::Mobile })
    }

    fn landline(n: &str) -> Option<Phone> {
        Some(Phone { number: n.into(), kind: PhoneKind::Landline })
    }

    #[test]
    fn mobile_numbers_in_their_usual_disguises() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+8613800138000",
            "0086-13800138000",
            "8613800138000",
            "１３８００１３８０００",
            "(+86)13800138000",
            "'13800138000",
        ] {
            assert_eq!(normalize_phone(raw), mobile("13800138000"), "{raw}");
        }
    }

    #[test]
    fn landlines_keep_their_area_code() {
        assert_eq!(normalize_phone("0512-65231234"), landline("0512-65231234"));
        assert_eq!(normalize_phone("(0512)65231234"), landline("0512-65231234"));
        assert_eq!(normalize_phone("010 6512 3456"), landline("010-65123456"));
        assert_eq!(normalize_phone("025-8888888"), landline("025-8888888"));
        assert_eq!(normalize_phone("+86 512 6523 1234"), landline("0512-65231234"));
        assert_eq!(normalize_phone("0512-65231234 转 801"), landline("0512-65231234"));
    }

    #[test]
    fn other_digits_are_kept_as_digits() {
        assert_eq!(normalize_phone("65231234"), Some(Phone { number: "65231234".into(), kind: PhoneKind::Other }));
        // Ten digits: a mobile number with one digit missing.
        assert_eq!(normalize_phone("1380013800").map(|p| p.kind), Some(PhoneKind::Other));
        // 12 is not a mobile prefix.
        assert_eq!(normalize_phone("12345678901").map(|p| p.kind), Some(PhoneKind::Other));
        assert_eq!(normalize_phone("无"), None);
        assert_eq!(normalize_phone(""), None);
    }

    #[test]
    fn several_numbers_in_one_cell() {
        let all = normalize_phones("0512-65231234/138 0013 8000、13900139000");
        let numbers: Vec<&str> = all.iter().map(|p| p.number.as_str()).collect();
        assert_eq!(numbers, ["0512-65231234", "13800138000", "13900139000"]);
        assert_eq!(normalize_phone("0512-65231234；13800138000"), mobile("13800138000"));
        assert_eq!(normalize_phones("13800138000 13900139000").len(), 2);
    }
}
