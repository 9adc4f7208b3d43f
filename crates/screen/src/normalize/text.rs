//! Text and names: width folding, traditional to simplified characters, punctuation,
//! and the keys names are compared and blocked on.

use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

/// The one form of the separator dot in minority and foreign names (阿依古丽·买买提).
pub const NAME_DOT: char = '\u{00B7}';

/// Folds full-width ASCII forms (Ａ１，) and the ideographic space to their half-width forms.
pub fn to_half_width(s: &str) -> String {
    s.chars().map(half_width_char).collect()
}

pub(crate) fn half_width_char(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        c => c,
    }
}

/// Characters that office files carry invisibly (BOMs, zero-width joiners, soft hyphens).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
}

/// The dots people type between the parts of a transliterated name.
fn is_name_dot(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}' | '\u{2022}' | '\u{2027}' | '\u{2219}' | '\u{22C5}' | '\u{30FB}' | '\u{FF65}' | '.' | '\u{3002}'
    )
}

/// General clean-up for free text (employer, address): half-width, simplified characters,
/// no invisible characters, runs of white space collapsed to one space, trimmed.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars().map(half_width_char).filter(|c| !is_invisible(*c)) {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    fast2s::convert(&out)
}

/// A name's canonical form: half-width, simplified characters, no spaces, punctuation,
/// digits or bracketed notes ("张三（女）"), and every separator dot written as `·`
/// (only between two parts: never leading, trailing or doubled). Latin letters keep their case.
pub fn canonical_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    let mut dot = false;
    for c in s.chars().map(half_width_char) {
        match c {
            '(' | '[' | '（' | '【' | '〔' | '［' => depth += 1,
            ')' | ']' | '）' | '】' | '〕' | '］' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if is_name_dot(c) => dot = !out.is_empty(),
            c if c.is_alphabetic() => {
                if dot {
                    out.push(NAME_DOT);
                    dot = false;
                }
                out.push(c);
            }
            _ => {}
        }
    }
    fast2s::convert(&out)
}

/// The key two names must share to be the same written name: the canonical form
/// without dots, Latin letters in lower case. "阿依古丽·买买提", "阿依古丽.买买提" and
/// "阿依古丽 买买提" share one key; so do "張偉" and "张伟".
pub fn name_key(s: &str) -> String {
    canonical_name(s).chars().filter(|c| *c != NAME_DOT).flat_map(char::to_lowercase).collect()
}

/// Pinyin keys of a name, for homophone typos (张伟/张玮) and names written in Latin letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PinyinKeys {
    /// Toneless syllables run together: "zhangwei".
    pub full: String,
    /// First letter of each syllable: "zw". Latin parts of a name are kept whole.
    pub initials: String,
}

/// Surnames whose usual reading differs from the character's most frequent one.
const SURNAME_READINGS: &[(char, &str)] = &[
    ('单', "shan"),
    ('曾', "zeng"),
    ('解', "xie"),
    ('仇', "qiu"),
    ('区', "ou"),
    ('查', "zha"),
    ('朴', "piao"),
    ('覃', "qin"),
    ('盖', "ge"),
    ('乐', "yue"),
    ('缪', "miao"),
    ('翟', "zhai"),
    ('召', "shao"),
    ('种', "chong"),
    ('秘', "bi"),
    ('繁', "po"),
    ('员', "yun"),
    ('黑', "he"),
    ('隗', "wei"),
    ('尉', "yu"),
    ('长', "zhang"),
    ('重', "chong"),
    ('那', "na"),
    ('柏', "bai"),
];

/// The pinyin keys of a name (after [`name_key`]). Characters without a reading
/// (rare characters, digits) are kept as they are, so the key never silently loses them.
/// Returns `None` for a name with nothing left after cleaning.
pub fn pinyin_keys(name: &str) -> Option<PinyinKeys> {
    let key = name_key(name);
    if key.is_empty() {
        return None;
    }
    let mut full = String::with_capacity(key.len() * 2);
    let mut initials = String::with_capacity(key.len());
    let mut latin = false;
    for (i, c) in key.chars().enumerate() {
        let surname = if i == 0 && key.chars().nth(1).is_some() {
            SURNAME_READINGS.iter().find(|(s, _)| *s == c).map(|(_, r)| *r)
        } else {
            None
        };
        match surname.or_else(|| c.to_pinyin().map(|p| p.plain())) {
            Some(syllable) => {
                full.push_str(syllable);
                initials.extend(syllable.chars().next());
                latin = false;
            }
            None => {
                full.push(c);
                // A Latin run counts once in the initials ("Zhang Wei" → "zhangwei" → 'z').
                if !(latin && c.is_ascii_alphabetic()) {
                    initials.push(c);
                }
                latin = c.is_ascii_alphabetic();
            }
        }
    }
    Some(PinyinKeys { full, initials })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_forms_fold_to_ascii() {
        assert_eq!(to_half_width("ＡＢＣ　１２３，（）"), "ABC 123,()");
        assert_eq!(to_half_width("张伟"), "张伟");
    }

    #[test]
    fn clean_text_collapses_space_and_simplifies() {
        assert_eq!(clean_text("  蘇州市　工業園區  星湖街\u{200B}328號 "), "苏州市 工业园区 星湖街328号");
        assert_eq!(clean_text("\u{FEFF}"), "");
    }

    #[test]
    fn canonical_name_keeps_one_dot_form() {
        for written in ["阿依古丽·买买提", "阿依古丽.买买提", "阿依古丽•买买提", "阿依古丽・买买提", "阿依古丽．买买提"]
        {
            assert_eq!(canonical_name(written), "阿依古丽·买买提", "{written}");
        }
        assert_eq!(canonical_name("·阿依古丽··买买提·"), "阿依古丽·买买提");
        // Spaces around the dot are not part of the name.
        assert_eq!(canonical_name("阿依古丽 · 买买提"), "阿依古丽·买买提");
    }

    #[test]
    fn canonical_name_drops_spaces_punctuation_digits_and_notes() {
        assert_eq!(canonical_name(" 王 　小明 "), "王小明");
        assert_eq!(canonical_name("李四（女）"), "李四");
        assert_eq!(canonical_name("刘洋(已调出)"), "刘洋");
        assert_eq!(canonical_name("“赵六”"), "赵六");
        assert_eq!(canonical_name("王伟2"), "王伟");
        assert_eq!(canonical_name("陳國華"), "陈国华");
        assert_eq!(canonical_name("ＬＩ　Ｍｉｎｇ"), "LIMing");
        assert_eq!(canonical_name("（空）"), "");
    }

    #[test]
    fn name_key_matches_the_registry_key_for_ordinary_names() {
        for name in ["张伟", "張偉", "陳 國 華", "阿依古丽·买买提", "ＡＢＣ", "欧阳 娜娜"] {
            assert_eq!(name_key(name), kite_domain::text::name_key(name), "{name}");
        }
        assert_eq!(name_key("阿依古丽 买买提"), name_key("阿依古丽·买买提"));
    }

    #[test]
    fn pinyin_keys_join_homophones() {
        let a = pinyin_keys("张伟").unwrap();
        assert_eq!(a, PinyinKeys { full: "zhangwei".into(), initials: "zw".into() });
        assert_eq!(pinyin_keys("张玮").unwrap(), a);
        assert_eq!(pinyin_keys("張偉").unwrap(), a);
        assert_eq!(pinyin_keys("Zhang Wei").unwrap().full, "zhangwei");
        assert_eq!(pinyin_keys("Zhang Wei").unwrap().initials, "z");
    }

    #[test]
    fn pinyin_keys_read_surnames_as_surnames() {
        assert_eq!(pinyin_keys("单磊").unwrap().full, "shanlei");
        assert_eq!(pinyin_keys("曾志伟").unwrap().full, "zengzhiwei");
        assert_eq!(pinyin_keys("解放").unwrap().full, "xiefang");
        // Only the first character is a surname.
        assert_eq!(pinyin_keys("王单").unwrap().full, "wangdan");
        assert_eq!(pinyin_keys("阿依古丽·买买提").unwrap().initials, "ayglmmt");
    }

    #[test]
    fn pinyin_keys_of_nothing_is_none() {
        assert_eq!(pinyin_keys(" ·（无）"), None);
    }
}
