//! Normalisation of names for search: traditional to simplified characters,
//! full-width to half-width, no spaces or separator dots.

/// The key under which a name is indexed and searched.
pub fn name_key(name: &str) -> String {
    let half: String = name
        .chars()
        .filter_map(|c| match c {
            '\u{3000}' => None,
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0),
            c => Some(c),
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '.' | '・'))
        .flat_map(char::to_lowercase)
        .collect();
    fast2s::convert(&half)
}

/// The exclusive upper bound for a prefix range scan `key >= p AND key < upper(p)`.
/// U+10FFFF sorts after every character in both binary (SQLite) and "C" collation (PostgreSQL).
pub fn prefix_upper(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_and_simplified_share_a_key() {
        assert_eq!(name_key("張偉"), name_key("张伟"));
        assert_eq!(name_key("陳 國 華"), "陈国华");
        assert_eq!(name_key("阿依古丽·买买提"), "阿依古丽买买提");
    }

    #[test]
    fn full_width_letters_fold() {
        assert_eq!(name_key("ＡＢＣ"), "abc");
    }

    #[test]
    fn prefix_upper_bounds_every_continuation() {
        let up = prefix_upper("王");
        assert!(*"王小明" < *up);
        assert!(*"王" < *up);
        assert!(*"瑶" > *up);
        assert!("玉" < "王");
    }
}
