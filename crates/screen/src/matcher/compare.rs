//! Comparison of two records field by field, each into a level of agreement.

use serde::{Deserialize, Serialize};

use crate::import::NormalizedFields;
use crate::normalize::{birth_date_from_id, Gender, PartialDate, PhoneKind};

/// The compared fields, in the order of [`Vector`]'s levels.
pub const FIELDS: [&str; 6] = ["name", "id_number", "birth_date", "gender", "phone", "address"];
pub const NFIELDS: usize = FIELDS.len();
/// Most levels any field has (level 0 is always "missing").
pub const MAX_LEVELS: usize = 6;

/// Level names per field; level 0 is "missing" (one side has no value) and weighs nothing.
pub const LEVELS: [&[&str]; NFIELDS] = [
    &["missing", "exact", "same_pinyin", "one_edit", "different"],
    &["missing", "exact", "one_edit", "two_edits", "different"],
    &["missing", "exact", "same_month", "day_month_swapped", "same_year", "different"],
    &["missing", "same", "different"],
    &["missing", "exact", "last8_or_one_digit", "different"],
    &["missing", "exact", "similar", "different"],
];

pub const NAME: usize = 0;
pub const ID: usize = 1;
pub const BIRTH: usize = 2;
pub const GENDER: usize = 3;
pub const PHONE: usize = 4;
pub const ADDRESS: usize = 5;

/// The levels of all fields for one pair, three bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vector(pub u32);

impl Vector {
    pub fn from_levels(levels: [u8; NFIELDS]) -> Vector {
        Vector(levels.iter().enumerate().fold(0, |acc, (i, l)| acc | (u32::from(*l & 7) << (3 * i))))
    }

    pub fn level(self, field: usize) -> usize {
        ((self.0 >> (3 * field)) & 7) as usize
    }

    pub fn levels(self) -> [u8; NFIELDS] {
        std::array::from_fn(|f| self.level(f) as u8)
    }
}

/// A roster row or a member in the form the matcher compares and blocks on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The name's key (simplified, no dots or spaces); empty if unknown.
    pub name_key: String,
    /// Toneless pinyin of the name run together.
    pub pinyin: String,
    /// The ID number as cleaned (valid 18 characters, or whatever the cell held).
    pub id: String,
    pub id_valid: bool,
    pub birth: Option<PartialDate>,
    /// The birth date written in the ID number, even an invalid one (for blocking).
    pub id_birth: Option<PartialDate>,
    pub gender: Option<Gender>,
    /// Mobile number, else a landline's digits.
    pub phone: Option<u64>,
    pub address: String,
}

impl Record {
    pub fn from_fields(f: &NormalizedFields) -> Record {
        let id = f.id_number.cleaned().unwrap_or_default().to_owned();
        let phone = f
            .phones
            .iter()
            .find(|p| p.kind != PhoneKind::Other)
            .and_then(|p| p.number.bytes().filter(u8::is_ascii_digit).try_fold(0u64, digit));
        Record {
            name_key: f.name_key.clone().unwrap_or_default(),
            pinyin: f.pinyin.as_ref().map(|p| p.full.clone()).unwrap_or_default(),
            id_valid: f.id_number.valid().is_some(),
            id_birth: birth_date_from_id(&id),
            id,
            birth: f.birth_date,
            gender: f.gender,
            phone,
            address: f.address.clone().unwrap_or_default(),
        }
    }

    pub fn view(&self) -> View<'_> {
        View {
            name_key: &self.name_key,
            pinyin: &self.pinyin,
            id: &self.id,
            birth: self.birth,
            gender: self.gender,
            phone: self.phone,
            address: &self.address,
        }
    }
}

fn digit(acc: u64, b: u8) -> Option<u64> {
    acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
}

/// What [`compare`] reads of a record, borrowed (the registry keeps its strings packed).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub name_key: &'a str,
    pub pinyin: &'a str,
    pub id: &'a str,
    pub birth: Option<PartialDate>,
    pub gender: Option<Gender>,
    pub phone: Option<u64>,
    pub address: &'a str,
}

/// The comparison vector of a pair.
pub fn compare(a: &View<'_>, b: &View<'_>) -> Vector {
    Vector::from_levels([
        compare_names(a, b),
        compare_ids(a.id.as_bytes(), b.id.as_bytes()),
        compare_births(a.birth, b.birth),
        match (a.gender, b.gender) {
            (Some(x), Some(y)) => 1 + u8::from(x != y),
            _ => 0,
        },
        compare_phones(a.phone, b.phone),
        compare_addresses(a.address, b.address),
    ])
}

fn compare_names(a: &View<'_>, b: &View<'_>) -> u8 {
    if a.name_key.is_empty() || b.name_key.is_empty() {
        0
    } else if a.name_key == b.name_key {
        1
    } else if a.pinyin == b.pinyin {
        2
    } else if within_one_edit(a.name_key, b.name_key) {
        3
    } else {
        4
    }
}

/// One substitution, insertion, deletion or swap of neighbours, counted in characters.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.chars(), b.chars());
    // Skip the common prefix, then compare the rests.
    loop {
        let (p, q) = (x.clone(), y.clone());
        match (x.next(), y.next()) {
            (Some(c), Some(d)) if c == d => continue,
            (None, None) => return true,
            (c, d) => {
                let (rest_a, rest_b) = (x.as_str(), y.as_str());
                let sub = rest_a == rest_b;
                let del = p.as_str().get(c.map_or(0, char::len_utf8)..) == Some(q.as_str()); // a has an extra char
                let ins = q.as_str().get(d.map_or(0, char::len_utf8)..) == Some(p.as_str());
                let swap = match (c, d) {
                    (Some(c), Some(d)) => {
                        let (mut ra, mut rb) = (rest_a.chars(), rest_b.chars());
                        ra.next() == Some(d) && rb.next() == Some(c) && ra.as_str() == rb.as_str()
                    }
                    _ => false,
                };
                return (c.is_some() && d.is_some() && sub) || del || ins || swap;
            }
        }
    }
}

/// ID numbers: exact, one substitution or swap of neighbours, two substitutions, or
/// different. A 15-character number is compared with the 15-character form of the other.
pub fn compare_ids(a: &[u8], b: &[u8]) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let short = |x: &[u8]| -> Vec<u8> { x[..6].iter().chain(&x[8..17]).copied().collect() };
    let (a, b): (std::borrow::Cow<[u8]>, std::borrow::Cow<[u8]>) = match (a.len(), b.len()) {
        (15, 18) => (a.into(), short(b).into()),
        (18, 15) => (short(a).into(), b.into()),
        _ => (a.into(), b.into()),
    };
    if a.len() != b.len() {
        return 4;
    }
    let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).take(3).collect();
    match diffs.as_slice() {
        [] => 1,
        [_] => 2,
        [i, j] if *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i] => 2,
        [_, _] => 3,
        _ => 4,
    }
}

fn compare_births(a: Option<PartialDate>, b: Option<PartialDate>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    if a.year() != b.year() {
        return 5;
    }
    match (a.month(), b.month(), a.day(), b.day()) {
        (Some(am), Some(bm), Some(ad), Some(bd)) => {
            if am == bm && ad == bd {
                1
            } else if am == bm {
                2
            } else if am == bd && ad == bm {
                3
            } else {
                4
            }
        }
        (Some(am), Some(bm), _, _) if am == bm => 2,
        (Some(_), Some(_), _, _) => 4,
        _ => 4,
    }
}

fn compare_phones(a: Option<u64>, b: Option<u64>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    if a == b {
        return 1;
    }
    let (mut x, mut y, mut diffs) = (a, b, 0);
    while x > 0 || y > 0 {
        diffs += u32::from(x % 10 != y % 10);
        x /= 10;
        y /= 10;
    }
    if diffs <= 1 || a % 100_000_000 == b % 100_000_000 {
        2
    } else {
        3
    }
}

/// Addresses: the same place (equal, or one is the other without its leading
/// province or city), similar (Dice coefficient of character bigrams at least 0.6),
/// or different.
pub fn compare_addresses(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if long.ends_with(short) && short.chars().count() >= 6 {
        return 1;
    }
    if dice(a, b) >= 0.6 {
        2
    } else {
        3
    }
}

/// Dice coefficient of character bigrams, without allocating for ordinary addresses.
pub fn dice(a: &str, b: &str) -> f64 {
    const N: usize = 64;
    fn bigrams(s: &str, out: &mut [u64; N]) -> usize {
        let mut n = 0;
        let mut prev = None;
        for c in s.chars() {
            if let Some(p) = prev {
                if n == N {
                    break;
                }
                out[n] = (u64::from(p) << 32) | u64::from(c as u32);
                n += 1;
            }
            prev = Some(c as u32);
        }
        out[..n].sort_unstable();
        n
    }
    let (mut x, mut y) = ([0u64; N], [0u64; N]);
    let (nx, ny) = (bigrams(a, &mut x), bigrams(b, &mut y));
    if nx + ny == 0 {
        return if a == b { 1.0 } else { 0.0 };
    }
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < nx && j < ny {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (nx + ny) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(y: i32, m: u32, d: u32) -> Option<PartialDate> {
        NaiveDate::from_ymd_opt(y, m, d).map(PartialDate::Day)
    }

    fn view<'a>(name_key: &'a str, pinyin: &'a str) -> View<'a> {
        View { name_key, pinyin, id: "", birth: None, gender: None, phone: None, address: "" }
    }

    #[test]
    fn vectors_pack_and_unpack() {
        let v = Vector::from_levels([4, 3, 5, 2, 1, 0]);
        assert_eq!(v.levels(), [4, 3, 5, 2, 1, 0]);
        assert_eq!(v.level(BIRTH), 5);
    }

    #[test]
    fn names_compare_by_key_pinyin_and_one_edit() {
        let l = |a: View, b: View| compare_names(&a, &b);
        assert_eq!(l(view("张伟", "zhangwei"), view("张伟", "zhangwei")), 1);
        assert_eq!(l(view("张伟", "zhangwei"), view("张玮", "zhangwei")), 2);
        assert_eq!(l(view("王伟", "wangwei"), view("玉伟", "yuwei")), 3);
        assert_eq!(l(view("张伟", "zhangwei"), view("李娜", "lina")), 4);
        assert_eq!(l(view("", ""), view("李娜", "lina")), 0);
    }

    #[test]
    fn one_edit_in_characters() {
        for (a, b) in [
            ("张伟", "张玮"),
            ("张伟", "张伟明"),
            ("张伟明", "张明"),
            ("欧阳娜娜", "欧阳娜"),
            ("张伟明", "张明伟"),
            ("a", ""),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        for (a, b) in [("张伟", "李娜"), ("abc", "cab"), ("张伟", "伟张三"), ("张伟明", "明")] {
            assert!(!within_one_edit(a, b), "{a} {b}");
            assert!(!within_one_edit(b, a), "{b} {a}");
        }
        assert!(within_one_edit("张伟", "张伟"));
    }

    #[test]
    fn ids_compare_with_transpositions_and_the_old_form() {
        let id = b"11010519491231002X";
        assert_eq!(compare_ids(id, id), 1);
        assert_eq!(compare_ids(id, b"110105194912310021"), 2);
        assert_eq!(compare_ids(id, b"11010519492131002X"), 2); // 12 → 21
        assert_eq!(compare_ids(id, b"11010519491213002X"), 2); // 31 → 13
        assert_eq!(compare_ids(id, b"110105194912310120"), 3);
        assert_eq!(compare_ids(id, b"11010519491231012X"), 2);
        assert_eq!(compare_ids(id, b"11010519491231112X"), 3);
        assert_eq!(compare_ids(id, b"999999999999999999"), 4);
        assert_eq!(compare_ids(id, b"110105491231002"), 1);
        assert_eq!(compare_ids(id, b"110105491231003"), 2);
        assert_eq!(compare_ids(id, b"1101"), 4);
        assert_eq!(compare_ids(b"", id), 0);
    }

    #[test]
    fn birth_dates_agree_in_part() {
        assert_eq!(compare_births(day(1990, 3, 5), day(1990, 3, 5)), 1);
        assert_eq!(compare_births(day(1990, 3, 5), day(1990, 3, 6)), 2);
        assert_eq!(compare_births(day(1990, 3, 5), Some(PartialDate::YearMonth(1990, 3))), 2);
        assert_eq!(compare_births(day(1990, 3, 5), day(1990, 5, 3)), 3);
        assert_eq!(compare_births(day(1990, 3, 5), day(1990, 7, 5)), 4);
        assert_eq!(compare_births(Some(PartialDate::Year(1990)), day(1990, 7, 5)), 4);
        assert_eq!(compare_births(day(1990, 3, 5), day(1991, 3, 5)), 5);
        assert_eq!(compare_births(None, day(1991, 3, 5)), 0);
    }

    #[test]
    fn phones_agree_on_the_last_eight_or_all_but_one_digit() {
        assert_eq!(compare_phones(Some(13800138000), Some(13800138000)), 1);
        assert_eq!(compare_phones(Some(13800138000), Some(13800138001)), 2);
        assert_eq!(compare_phones(Some(13800138000), Some(15900138000)), 2);
        assert_eq!(compare_phones(Some(13800138000), Some(13912345678)), 3);
        assert_eq!(compare_phones(None, Some(13912345678)), 0);
    }

    #[test]
    fn addresses_without_the_province_are_the_same_place() {
        let full = "江苏省苏州市昆山市玉山镇人民路12号";
        assert_eq!(compare_addresses(full, "苏州市昆山市玉山镇人民路12号"), 1);
        assert_eq!(compare_addresses(full, "江苏省苏州市昆山市玉山镇人民路13号"), 2);
        assert_eq!(compare_addresses(full, "上海市浦东新区花木街道世纪大道8号"), 3);
        assert_eq!(compare_addresses(full, ""), 0);
        assert!((dice("abc", "abc") - 1.0).abs() < 1e-9);
        assert_eq!(dice("ab", "cd"), 0.0);
    }
}
