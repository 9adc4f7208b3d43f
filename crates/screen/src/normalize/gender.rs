//! Gender as written in rosters.

pub use kite_domain::Gender;

use super::text::half_width_char;

/// Reads 男/女 and the codes office systems use: GB/T 2261.1 (1 male, 2 female),
/// M/F and the English words. 0 and 9 (unknown, unstated) and anything else are `None`.
pub fn parse_gender(raw: &str) -> Option<Gender> {
    let s: String =
        raw.chars().map(half_width_char).filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    match s.as_str() {
        "男" | "男性" | "男士" | "先生" | "1" | "m" | "male" | "man" | "boy" => Some(Gender::Male),
        "女" | "女性" | "女士" | "2" | "f" | "female" | "woman" | "girl" => Some(Gender::Female),
        _ => None,
    }
}

/// The gender written in an 18-character ID number: its 17th digit is odd for men.
pub fn gender_from_id(id: &str) -> Option<Gender> {
    let cleaned = super::id_number::clean_id(id);
    let digit = match cleaned.len() {
        18 => cleaned.as_bytes()[16],
        15 => cleaned.as_bytes()[14],
        _ => return None,
    };
    digit.is_ascii_digit().then(|| if (digit - b'0') % 2 == 1 { Gender::Male } else { Gender::Female })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        for raw in ["男", " 男 ", "男性", "1", "１", "M", "m", "Male"] {
            assert_eq!(parse_gender(raw), Some(Gender::Male), "{raw}");
        }
        for raw in ["女", "女性", "2", "F", "female", "ｆ"] {
            assert_eq!(parse_gender(raw), Some(Gender::Female), "{raw}");
        }
        for raw in ["", "0", "9", "未知", "男女", "x"] {
            assert_eq!(parse_gender(raw), None, "{raw}");
        }
    }

    #[test]
    fn reads_the_id_number() {
        assert_eq!(gender_from_id("11010519491231002X"), Some(Gender::Female));
        assert_eq!(gender_from_id("110105194912310013"), Some(Gender::Male));
        assert_eq!(gender_from_id("110105491231001"), Some(Gender::Male));
        assert_eq!(gender_from_id("1101"), None);
    }
}
