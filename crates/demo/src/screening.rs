//! Rosters for the demo's screening campaigns: what a department in the place the members
//! went to would send, with the members found in it written the ways such lists write
//! them (a mistyped digit, traditional characters, no ID number, a 15-digit number, dates
//! and phones in other formats), people who are no members, and a row that cannot be read.

use chrono::Datelike;
use kite_domain::{id_number, Gender};
use kite_store::ScreeningMember;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::{date, pick_surname, GIVEN_FEMALE, GIVEN_MALE, STREETS};

/// What the demo screens: members of the home region and how they appear in a roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    AsRegistered,
    MistypedDigit,
    Traditional,
    NoIdNumber,
    FifteenDigits,
    /// A name written differently and the birth date only (an employer's list): for a
    /// reviewer to decide.
    NameAndBirth,
}

/// Simplified characters of the demo's names and their traditional forms.
const TRADITIONAL: &[(char, char)] = &[
    ('张', '張'),
    ('陈', '陳'),
    ('刘', '劉'),
    ('杨', '楊'),
    ('黄', '黃'),
    ('赵', '趙'),
    ('吴', '吳'),
    ('孙', '孫'),
    ('马', '馬'),
    ('胡', '胡'),
    ('国', '國'),
    ('华', '華'),
    ('军', '軍'),
    ('红', '紅'),
    ('丽', '麗'),
    ('兰', '蘭'),
    ('凤', '鳳'),
    ('东', '東'),
    ('伟', '偉'),
    ('刚', '剛'),
];

fn traditional(name: &str) -> String {
    name.chars().map(|c| TRADITIONAL.iter().find(|(s, _)| *s == c).map_or(c, |(_, t)| *t)).collect()
}

fn mistyped(id: &str) -> String {
    let mut b = id.as_bytes().to_vec();
    if let Some(d) = b.get_mut(14) {
        *d = if *d == b'3' { b'8' } else { b'3' };
    }
    String::from_utf8(b).unwrap_or_default()
}

/// The 15-digit form of an 18-digit number of someone born in the 1900s (before 1999).
fn fifteen(id: &str) -> Option<String> {
    (id.len() == 18 && id.get(6..8) == Some("19")).then(|| format!("{}{}", &id[..6], &id[8..17]))
}

/// A roster of the place `place` (an organization path) from `members` (the registry
/// screened), as CSV text: members checked in there, members away and not checked in,
/// members who lost contact, and `strangers` people who are no members. `seed` varies the
/// selection, so that two rosters of one place overlap but differ.
pub fn roster(members: &[ScreeningMember], place: &str, title: &str, strangers: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let within = |p: &str| kite_domain::org::is_within(p, place);
    let mut pick = |filter: &dyn Fn(&ScreeningMember) -> bool, n: usize| {
        let mut found: Vec<&ScreeningMember> = members.iter().filter(|m| filter(m)).collect();
        found.shuffle(&mut rng);
        found.truncate(n);
        found
    };
    let here = pick(&|m| m.inflow_path.as_deref().is_some_and(within), 3);
    let away = pick(&|m| m.mobility == "not_checked_in", 8);
    let lost = pick(&|m| m.mobility == "lost_contact", 2);
    let ways = [
        Written::AsRegistered,
        Written::MistypedDigit,
        Written::Traditional,
        Written::NoIdNumber,
        Written::FifteenDigits,
        Written::AsRegistered,
        Written::NameAndBirth,
        Written::NameAndBirth,
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for m in here.iter().chain(&lost) {
        rows.push(row(m, Written::AsRegistered, &mut rng));
    }
    for (m, way) in away.iter().zip(ways) {
        rows.push(row(m, way, &mut rng));
    }
    for _ in 0..strangers {
        rows.push(stranger(&mut rng));
    }
    rows.shuffle(&mut rng);
    let mut out = format!("{title}\n序号,姓名,性别,公民身份号码,出生日期,联系电话,现居住地址,登记日期\n");
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!("{},{}\n", i + 1, r.join(",")));
        // A row pasted twice into one cell's place: reported, the rest still read.
        if i == rows.len() / 2 {
            out.push_str(&format!("{},{},{}\n", i + 1, r.join(","), r.join(",")));
        }
    }
    out
}

fn registered_on(rng: &mut StdRng) -> String {
    format!("2026年{}月{}日", rng.gen_range(1..=10), rng.gen_range(1..=28))
}

fn row(m: &ScreeningMember, way: Written, rng: &mut StdRng) -> Vec<String> {
    let gender = if m.gender == "female" { "女" } else { "男" };
    let name = match way {
        Written::Traditional => traditional(&m.name),
        // A given name misheard at the counter: one character written differently.
        Written::NameAndBirth => {
            let mut chars: Vec<char> = m.name.chars().collect();
            if let Some(last) = chars.last_mut() {
                *last = if *last == '明' { '鸣' } else { '明' };
            }
            chars.into_iter().collect()
        }
        _ => m.name.clone(),
    };
    let id = match way {
        Written::MistypedDigit => mistyped(&m.id_number),
        Written::NoIdNumber | Written::NameAndBirth => String::new(),
        Written::FifteenDigits => fifteen(&m.id_number).unwrap_or_else(|| m.id_number.clone()),
        _ => m.id_number.clone(),
    };
    let birth = m.birth_date;
    // Dates as such lists write them.
    let birth = match way {
        Written::NoIdNumber => format!("{}年{}月{}日", birth.year(), birth.month(), birth.day()),
        Written::NameAndBirth => format!("{}.{}.{}", birth.year(), birth.month(), birth.day()),
        _ => birth.format("%Y%m%d").to_string(),
    };
    let phone = match (way, &m.phone) {
        (Written::NoIdNumber, Some(p)) if p.len() == 11 && p.is_ascii() => {
            format!("+86 {}-{}-{}", &p[..3], &p[3..7], &p[7..])
        }
        (Written::NameAndBirth, _) => String::new(),
        (_, Some(p)) => p.clone(),
        (_, None) => String::new(),
    };
    let address = format!("苏州工业园区{}{}号", STREETS.choose(rng).unwrap_or(&"人民路"), rng.gen_range(1..300));
    vec![name, gender.into(), id, birth, phone, address, registered_on(rng)]
}

/// Someone who is no member: a Suzhou or Anhui number, a name like the members'.
fn stranger(rng: &mut StdRng) -> Vec<String> {
    let gender = if rng.gen_bool(0.6) { Gender::Male } else { Gender::Female };
    let given = if gender == Gender::Male { GIVEN_MALE } else { GIVEN_FEMALE };
    let mut name = pick_surname(rng).to_string();
    for _ in 0..rng.gen_range(1..=2) {
        name.push_str(given.choose(rng).copied().unwrap_or("明"));
    }
    let birth = date(rng.gen_range(1965..=2004), rng.gen_range(1..=12), rng.gen_range(1..=28));
    let county = ["320506", "320508", "341202", "341221", "410523"][rng.gen_range(0..5)];
    let id = id_number::compose(county, birth, rng.gen_range(500..999), gender);
    let phone =
        format!("1{}{:08}", ["36", "37", "51", "77", "86"][rng.gen_range(0..5)], rng.gen_range(0..100_000_000u64));
    let address = format!("苏州工业园区{}{}号", STREETS.choose(rng).unwrap_or(&"人民路"), rng.gen_range(1..300));
    let g = if gender == Gender::Male { "男" } else { "女" };
    vec![
        name,
        g.into(),
        id.as_str().to_string(),
        birth.format("%Y-%m-%d").to_string(),
        phone,
        address,
        registered_on(rng),
    ]
}
