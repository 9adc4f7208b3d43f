//! A seeded generator of a member registry and of rosters with ground truth, for tests
//! and the benchmark.
//!
//! Every person is a pure function of the seed and an index, so the registry and the
//! rosters are written as streams: memory does not grow with the number of rows. ID
//! numbers are unique by construction (an index maps one-to-one onto county × birth
//! date × sequence number), so the truth never depends on chance collisions.

pub mod tables;

use std::io::{self, Write};
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate};
use kite_domain::id_number::check_char;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::normalize::Gender;
use tables::*;

/// How much the roster's copy of a member differs from the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// The registry's values in its own formats.
    None,
    /// What a department's roster usually looks like: some typos, varied formats,
    /// people who moved or changed phones.
    Standard,
    /// Two to three times the standard rates.
    Heavy,
}

impl FromStr for Corruption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Corruption::None),
            "standard" => Ok(Corruption::Standard),
            "heavy" => Ok(Corruption::Heavy),
            _ => Err(format!("corruption is none, standard or heavy, not {s:?}")),
        }
    }
}

/// Probabilities of each kind of damage, per roster row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub name_homophone: f64,
    pub name_look_alike: f64,
    pub name_traditional: f64,
    pub name_spacing: f64,
    pub id_missing: f64,
    pub id_digit: f64,
    pub id_swap: f64,
    pub id_15: f64,
    pub id_noise: f64,
    pub gender_missing: f64,
    pub birth_missing: f64,
    pub birth_partial: f64,
    pub birth_swap: f64,
    /// Whether dates, phones and genders are written in varied formats.
    pub formats: bool,
    pub phone_missing: f64,
    pub phone_changed: f64,
    pub phone_typo: f64,
    pub employer_changed: f64,
    pub address_changed: f64,
    pub address_missing: f64,
    pub duplicates: f64,
}

impl Corruption {
    pub fn rates(self) -> Rates {
        let standard = Rates {
            name_homophone: 0.06,
            name_look_alike: 0.01,
            name_traditional: 0.03,
            name_spacing: 0.03,
            id_missing: 0.05,
            id_digit: 0.04,
            id_swap: 0.02,
            id_15: 0.03,
            id_noise: 0.05,
            gender_missing: 0.05,
            birth_missing: 0.05,
            birth_partial: 0.03,
            birth_swap: 0.01,
            formats: true,
            phone_missing: 0.10,
            phone_changed: 0.15,
            phone_typo: 0.02,
            employer_changed: 0.40,
            address_changed: 0.40,
            address_missing: 0.10,
            duplicates: 0.02,
        };
        match self {
            Corruption::None => Rates {
                name_homophone: 0.0,
                name_look_alike: 0.0,
                name_traditional: 0.0,
                name_spacing: 0.0,
                id_missing: 0.0,
                id_digit: 0.0,
                id_swap: 0.0,
                id_15: 0.0,
                id_noise: 0.0,
                gender_missing: 0.0,
                birth_missing: 0.0,
                birth_partial: 0.0,
                birth_swap: 0.0,
                formats: false,
                phone_missing: 0.0,
                phone_changed: 0.0,
                phone_typo: 0.0,
                employer_changed: 0.0,
                address_changed: 0.0,
                address_missing: 0.0,
                duplicates: 0.0,
            },
            Corruption::Standard => standard,
            Corruption::Heavy => Rates {
                name_homophone: 0.15,
                name_look_alike: 0.03,
                name_traditional: 0.08,
                name_spacing: 0.06,
                id_missing: 0.15,
                id_digit: 0.10,
                id_swap: 0.05,
                id_15: 0.06,
                id_noise: 0.10,
                gender_missing: 0.15,
                birth_missing: 0.15,
                birth_partial: 0.06,
                birth_swap: 0.03,
                phone_missing: 0.25,
                phone_changed: 0.30,
                phone_typo: 0.05,
                employer_changed: 0.60,
                address_changed: 0.60,
                address_missing: 0.20,
                duplicates: 0.05,
                ..standard
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenConfig {
    pub seed: u64,
    /// Members in the registry.
    pub members: usize,
    /// Rows in the roster, duplicates included.
    pub roster_rows: usize,
    /// Share of roster rows (before duplicates) that are members.
    pub member_share: f64,
    /// Share of non-member rows that are a member's relative: same surname, county and
    /// address, another birth date. The hard negatives.
    pub relative_share: f64,
    pub corruption: Corruption,
    /// The day ages are counted from; members are 18 to 85.
    pub today: NaiveDate,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 2024,
            members: 20_000,
            roster_rows: 5_000,
            member_share: 0.5,
            relative_share: 0.05,
            corruption: Corruption::Standard,
            today: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default(),
        }
    }
}

/// One person as the registry knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub id_number: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub employer: String,
    pub address: String,
}

/// One roster row, cells as written, with the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRecord {
    pub name: String,
    pub gender: String,
    pub id_number: String,
    pub birth_date: String,
    pub phone: String,
    pub employer: String,
    pub address: String,
    /// The registry row (0-based) of the member this row is, if any.
    pub member: Option<usize>,
    /// That member's ID number.
    pub member_id: Option<String>,
}

/// Sequence numbers 000–799 go to registry and unrelated people, 800–999 to relatives.
const SEQ_HALVES: u64 = 400;

pub struct Generator {
    config: GenConfig,
    /// County codes (6 digits) for ID numbers.
    counties: Vec<&'static str>,
    /// Full county names with their streets, for current addresses.
    places: Vec<(String, Vec<&'static str>)>,
    surname_total: u32,
    first_birth: NaiveDate,
    days: u64,
    slots: u64,
    multiplier: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.gen_bool(p.min(1.0))
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn pick_char(rng: &mut ChaCha8Rng, s: &str) -> char {
    let chars: Vec<char> = s.chars().collect();
    *pick(rng, &chars)
}

impl Generator {
    pub fn new(config: GenConfig) -> Generator {
        let mut counties = Vec::new();
        for province in kite_divisions::children("") {
            for prefecture in kite_divisions::children(province.code) {
                for c in kite_divisions::children(prefecture.code) {
                    if kite_divisions::county(c.code).is_some() {
                        counties.push(c.code);
                    }
                }
            }
        }
        let mut places = Vec::new();
        for prefecture in DESTINATIONS {
            for c in kite_divisions::children(prefecture) {
                let streets: Vec<&'static str> = kite_divisions::children(c.code).iter().map(|s| s.name).collect();
                if let (Some(full), false) = (kite_divisions::full_name(c.code), streets.is_empty()) {
                    places.push((full, streets));
                }
            }
        }
        let today = config.today;
        let first_birth = today.with_year(today.year() - 85).unwrap_or(today) + Duration::days(1);
        let last_birth = today.with_year(today.year() - 18).unwrap_or(today);
        let days = (last_birth - first_birth).num_days().max(1) as u64;
        let slots = counties.len().max(1) as u64 * days * SEQ_HALVES;
        let mut multiplier = 2_654_435_761 % slots.max(2);
        while gcd(multiplier, slots) != 1 {
            multiplier += 1;
        }
        Generator {
            surname_total: SURNAMES.iter().map(|s| s.1).sum(),
            config,
            counties,
            places,
            first_birth,
            days,
            slots,
            multiplier,
        }
    }

    pub fn config(&self) -> &GenConfig {
        &self.config
    }

    fn rng_for(&self, stream: u64, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(splitmix(self.config.seed ^ splitmix(stream)) ^ splitmix(index))
    }

    /// Person `index`: registry members are `0..members`, everyone from `members` on is
    /// someone else. Different indices have different ID numbers (up to the ~10^10
    /// slots of county × birth date × sequence).
    pub fn person(&self, index: usize) -> Person {
        let mut rng = self.rng_for(1, index as u64);
        let slot = ((index as u128 * self.multiplier as u128) % self.slots as u128) as u64;
        let county =
            self.counties.get((slot % self.counties.len().max(1) as u64) as usize).copied().unwrap_or("320724");
        let rest = slot / self.counties.len().max(1) as u64;
        let birth = self.first_birth + Duration::days((rest % self.days) as i64);
        let seq_half = rest / self.days;
        let gender = if rng.gen_bool(0.5) { Gender::Male } else { Gender::Female };
        let name = self.name(&mut rng, gender, None);
        Person {
            id_number: id_number(county, birth, seq_half * 2 + u64::from(gender == Gender::Male)),
            name,
            gender,
            birth_date: birth,
            phone: mobile(&mut rng),
            employer: self.employer(&mut rng),
            address: self.address(&mut rng),
        }
    }

    /// A member's relative who is not a member: same surname, county and address.
    fn relative(&self, rng: &mut ChaCha8Rng, of: &Person) -> Person {
        let gender = if rng.gen_bool(0.5) { Gender::Male } else { Gender::Female };
        let surname = SURNAMES.iter().map(|s| s.0).filter(|s| of.name.starts_with(s)).max_by_key(|s| s.len());
        let mut birth = of.birth_date + Duration::days(rng.gen_range(-12_000..12_000));
        if birth < self.first_birth || birth == of.birth_date {
            birth = of.birth_date + Duration::days(rng.gen_range(1..3000));
        }
        let seq = 800 + rng.gen_range(0..100) * 2 + u64::from(gender == Gender::Male);
        Person {
            name: self.name(rng, gender, surname),
            id_number: id_number(of.id_number.get(..6).unwrap_or("320724"), birth, seq),
            gender,
            birth_date: birth,
            phone: mobile(rng),
            employer: self.employer(rng),
            address: of.address.clone(),
        }
    }

    fn name(&self, rng: &mut ChaCha8Rng, gender: Gender, surname: Option<&str>) -> String {
        if surname.is_none() && rng.gen_bool(0.02) {
            return format!("{}·{}", pick(rng, MINORITY_GIVEN), pick(rng, MINORITY_FATHER));
        }
        let mut name = String::new();
        match surname {
            Some(s) => name.push_str(s),
            None => {
                let mut x = rng.gen_range(0..self.surname_total);
                for (s, w) in SURNAMES {
                    if x < *w {
                        name.push_str(s);
                        break;
                    }
                    x -= w;
                }
            }
        }
        let pool = if gender == Gender::Male { GIVEN_MALE } else { GIVEN_FEMALE };
        let len = if rng.gen_bool(0.25) { 1 } else { 2 };
        for _ in 0..len {
            let from = if rng.gen_bool(0.25) { GIVEN_NEUTRAL } else { pool };
            name.push(pick_char(rng, from));
        }
        name
    }

    fn employer(&self, rng: &mut ChaCha8Rng) -> String {
        let city = ["苏州", "无锡", "南京", "上海", "杭州", "深圳", "昆山"];
        format!(
            "{}{}{}{}",
            pick(rng, &city),
            pick(rng, COMPANY_WORDS),
            pick(rng, COMPANY_TRADES),
            pick(rng, COMPANY_FORMS)
        )
    }

    fn address(&self, rng: &mut ChaCha8Rng) -> String {
        let Some((county, streets)) = (!self.places.is_empty()).then(|| pick(rng, &self.places)) else {
            return String::from("江苏省苏州市");
        };
        format!(
            "{county}{}{}{}{}号",
            pick(rng, streets),
            pick(rng, ROAD_WORDS),
            pick(rng, ROAD_KINDS),
            rng.gen_range(1..999)
        )
    }

    /// The registry's members, in order.
    pub fn members(&self) -> impl Iterator<Item = Person> + '_ {
        (0..self.config.members).map(|i| self.person(i))
    }

    /// The roster rows, in order, each with its truth.
    pub fn roster(&self) -> RosterIter<'_> {
        RosterIter { generator: self, rng: self.rng_for(2, 0), emitted: 0, others: 0, last: None }
    }

    /// Writes the registry as `kite` exports it: 姓名,公民身份号码,性别,出生日期,手机号码,现居住地.
    pub fn write_registry<W: Write>(&self, out: W) -> io::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["姓名", "公民身份号码", "性别", "出生日期", "手机号码", "现居住地"])?;
        for p in self.members() {
            let birth = p.birth_date.format("%Y-%m-%d").to_string();
            w.write_record([&p.name, &p.id_number, gender_text(p.gender), &birth, &p.phone, &p.address])?;
        }
        w.flush()
    }

    /// Writes the roster and its truth (`roster_row,member_row,member_id_number`, rows
    /// 1-based, empty for a non-member). Returns the number of rows that are members.
    pub fn write_roster<W: Write, T: Write>(&self, roster: W, truth: T) -> io::Result<usize> {
        let mut r = csv::Writer::from_writer(roster);
        let mut t = csv::Writer::from_writer(truth);
        r.write_record(["序号", "姓名", "性别", "公民身份号码", "出生日期", "联系电话", "工作单位", "现住址"])?;
        t.write_record(["roster_row", "member_row", "member_id_number"])?;
        let mut members = 0;
        for (i, row) in self.roster().enumerate() {
            let n = (i + 1).to_string();
            r.write_record([
                &n,
                &row.name,
                &row.gender,
                &row.id_number,
                &row.birth_date,
                &row.phone,
                &row.employer,
                &row.address,
            ])?;
            let member_row = row.member.map(|m| (m + 1).to_string()).unwrap_or_default();
            members += usize::from(row.member.is_some());
            t.write_record([&n, &member_row, row.member_id.as_deref().unwrap_or("")])?;
        }
        r.flush()?;
        t.flush()?;
        Ok(members)
    }

    fn corrupt(&self, rng: &mut ChaCha8Rng, p: &Person, member: Option<usize>) -> RosterRecord {
        let r = self.config.corruption.rates();
        let mut name = p.name.clone();
        if chance(rng, r.name_homophone) {
            name = swap_one(rng, &name, |c| {
                HOMOPHONES.iter().find(|g| g.contains(c)).map(|g| g.chars().filter(|x| *x != c).collect())
            });
        }
        if chance(rng, r.name_look_alike) {
            name = swap_one(rng, &name, |c| {
                LOOK_ALIKES.iter().find(|(a, b)| *a == c || *b == c).map(|(a, b)| vec![if *a == c { *b } else { *a }])
            });
        }
        if chance(rng, r.name_traditional) {
            name = name.chars().map(|c| TRADITIONAL.iter().find(|(s, _)| *s == c).map_or(c, |(_, t)| *t)).collect();
        }
        if chance(rng, r.name_spacing) {
            name = if name.contains('·') {
                name.replace('·', if rng.gen_bool(0.5) { "." } else { " " })
            } else {
                let mut chars: Vec<char> = name.chars().collect();
                let at = rng.gen_range(1..chars.len().max(2)).min(chars.len());
                chars.insert(at, if rng.gen_bool(0.5) { ' ' } else { '\u{3000}' });
                chars.into_iter().collect()
            };
        }

        let mut id = p.id_number.clone();
        if chance(rng, r.id_missing) {
            id.clear();
        } else if chance(rng, r.id_digit) {
            let mut b = id.into_bytes();
            let at = rng.gen_range(0..b.len());
            let old = b[at];
            while b[at] == old {
                b[at] = b'0' + rng.gen_range(0..10u8);
            }
            id = String::from_utf8_lossy(&b).into_owned();
        } else if chance(rng, r.id_swap) {
            let mut b = id.into_bytes();
            let options: Vec<usize> = (0..b.len() - 1).filter(|&i| b[i] != b[i + 1]).collect();
            if let Some(&at) = options.choose(rng) {
                b.swap(at, at + 1);
            }
            id = String::from_utf8_lossy(&b).into_owned();
        } else if p.birth_date.year() < 2000 && chance(rng, r.id_15) {
            id = format!("{}{}", &id[..6], &id[8..17]);
        }
        if !id.is_empty() && chance(rng, r.id_noise) {
            id = match rng.gen_range(0..3) {
                0 => id.to_lowercase(),
                1 => format!("'{id}"),
                _ => format!("{} {} {}", &id[..6], &id[6..id.len() - 4], &id[id.len() - 4..]),
            };
        }

        let gender = if chance(rng, r.gender_missing) {
            String::new()
        } else if r.formats && rng.gen_bool(0.1) {
            String::from(if p.gender == Gender::Male { "1" } else { "2" })
        } else {
            gender_text(p.gender).to_owned()
        };

        let birth = if chance(rng, r.birth_missing) {
            String::new()
        } else {
            let mut d = p.birth_date;
            if chance(rng, r.birth_swap) && d.day() <= 12 && d.day() != d.month() {
                d = NaiveDate::from_ymd_opt(d.year(), d.day(), d.month()).unwrap_or(d);
            }
            if chance(rng, r.birth_partial) {
                match rng.gen_range(0..3) {
                    0 => d.format("%Y-%m").to_string(),
                    1 => d.format("%Y%m").to_string(),
                    _ => d.format("%Y年%-m月").to_string(),
                }
            } else if r.formats {
                date_text(rng, d)
            } else {
                d.format("%Y-%m-%d").to_string()
            }
        };

        let mut phone = p.phone.clone();
        if chance(rng, r.phone_changed) {
            phone = mobile(rng);
        } else if chance(rng, r.phone_typo) {
            let mut b = phone.into_bytes();
            let at = rng.gen_range(3..b.len());
            b[at] = b'0' + (b[at] - b'0' + rng.gen_range(1..10u8)) % 10;
            phone = String::from_utf8_lossy(&b).into_owned();
        }
        if chance(rng, r.phone_missing) {
            phone.clear();
        } else if r.formats {
            phone = match rng.gen_range(0..10) {
                0 => format!("+86 {phone}"),
                1 => format!("{} {} {}", &phone[..3], &phone[3..7], &phone[7..]),
                2 => format!("{}-{}-{}", &phone[..3], &phone[3..7], &phone[7..]),
                _ => phone,
            };
        }

        let employer = if chance(rng, r.employer_changed) { self.employer(rng) } else { p.employer.clone() };
        let address = if chance(rng, r.address_missing) {
            String::new()
        } else if chance(rng, r.address_changed) {
            self.address(rng)
        } else if r.formats && rng.gen_bool(0.3) {
            // Rosters often leave out the province.
            p.address.split_once(['省', '市']).map_or(p.address.clone(), |(_, rest)| rest.to_owned())
        } else {
            p.address.clone()
        };

        RosterRecord {
            name,
            gender,
            id_number: id,
            birth_date: birth,
            phone,
            employer,
            address,
            member,
            member_id: member.map(|_| p.id_number.clone()),
        }
    }
}

/// Replaces one character that `alternatives` knows by one of its alternatives.
fn swap_one(rng: &mut ChaCha8Rng, name: &str, alternatives: impl Fn(char) -> Option<Vec<char>>) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let options: Vec<(usize, Vec<char>)> = chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| alternatives(*c).filter(|a| !a.is_empty()).map(|a| (i, a)))
        .collect();
    if let Some((at, alts)) = options.choose(rng) {
        chars[*at] = *pick(rng, alts);
    }
    chars.into_iter().collect()
}

fn gender_text(g: Gender) -> &'static str {
    if g == Gender::Male {
        "男"
    } else {
        "女"
    }
}

fn id_number(county: &str, birth: NaiveDate, seq: u64) -> String {
    let mut s = format!("{county}{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    let check = check_char(s.as_bytes());
    s.push(check as char);
    s
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    let second = *pick(rng, b"35789") as char;
    format!("1{second}{:09}", rng.gen_range(0..1_000_000_000u32))
}

/// A date in one of the formats the normalizers read.
fn date_text(rng: &mut ChaCha8Rng, d: NaiveDate) -> String {
    match rng.gen_range(0..10) {
        0 => d.format("%Y-%-m-%-d").to_string(),
        1 => d.format("%Y/%m/%d").to_string(),
        2 => d.format("%Y.%-m.%-d").to_string(),
        3 => d.format("%Y年%-m月%-d日").to_string(),
        4 => d.format("%Y%m%d").to_string(),
        5 => {
            // An Excel serial number (1900 system), when the date is late enough to have five digits.
            let serial = (d - NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or(d)).num_days();
            if serial >= 10_000 {
                serial.to_string()
            } else {
                d.format("%Y-%m-%d").to_string()
            }
        }
        6 => d.format("%Y/%-m/%-d 0:00:00").to_string(),
        _ => d.format("%Y-%m-%d").to_string(),
    }
}

pub struct RosterIter<'a> {
    generator: &'a Generator,
    rng: ChaCha8Rng,
    emitted: usize,
    others: usize,
    last: Option<(Person, Option<usize>)>,
}

impl Iterator for RosterIter<'_> {
    type Item = RosterRecord;

    fn next(&mut self) -> Option<RosterRecord> {
        let g = self.generator;
        let c = &g.config;
        if self.emitted >= c.roster_rows {
            return None;
        }
        self.emitted += 1;
        let rates = c.corruption.rates();
        let base = match self.last.take() {
            Some(last) if chance(&mut self.rng, rates.duplicates) => last,
            _ if c.members > 0 && chance(&mut self.rng, c.member_share) => {
                let m = self.rng.gen_range(0..c.members);
                (g.person(m), Some(m))
            }
            _ if c.members > 0 && chance(&mut self.rng, c.relative_share) => {
                let of = g.person(self.rng.gen_range(0..c.members));
                (g.relative(&mut self.rng, &of), None)
            }
            _ => {
                self.others += 1;
                (g.person(c.members + self.others), None)
            }
        };
        let record = g.corrupt(&mut self.rng, &base.0, base.1);
        self.last = Some(base);
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.generator.config.roster_rows - self.emitted;
        (left, Some(left))
    }
}

/// Precision and recall of one set of predictions against the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows given a member.
    pub predicted: usize,
    /// Of those, rows given the right member.
    pub correct: usize,
    /// Rows that are a member.
    pub actual: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.actual == 0 {
            1.0
        } else {
            self.correct as f64 / self.actual as f64
        }
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Counts one row: `truth` is the member's ID number if the row is a member,
    /// `predicted` the proposed member's, if any.
    pub fn add(&mut self, truth: Option<&str>, predicted: Option<&str>) {
        self.actual += usize::from(truth.is_some());
        self.predicted += usize::from(predicted.is_some());
        self.correct += usize::from(predicted.is_some() && predicted == truth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{gender_from_id, normalize_id, pinyin_keys, IdCheck};
    use std::collections::HashSet;

    fn generator(corruption: Corruption) -> Generator {
        Generator::new(GenConfig { members: 2_000, roster_rows: 2_000, corruption, ..GenConfig::default() })
    }

    #[test]
    fn registry_ids_are_valid_unique_and_agree_with_the_person() {
        let g = generator(Corruption::Standard);
        let mut seen = HashSet::new();
        for p in g.members().chain((2_000..4_000).map(|i| g.person(i))) {
            let IdCheck::Valid { value, .. } = normalize_id(&p.id_number) else { panic!("{}", p.id_number) };
            assert!(seen.insert(value.clone()), "{value}");
            assert_eq!(gender_from_id(&value), Some(p.gender));
            assert_eq!(&value[6..14], p.birth_date.format("%Y%m%d").to_string());
            let age = g.config.today.year() - p.birth_date.year();
            assert!((17..=86).contains(&age), "{age}");
            assert!(!p.name.is_empty() && p.phone.len() == 11 && !p.address.is_empty());
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_files() {
        let write = || {
            let g = generator(Corruption::Heavy);
            let (mut reg, mut ros, mut tru) = (Vec::new(), Vec::new(), Vec::new());
            g.write_registry(&mut reg).unwrap();
            g.write_roster(&mut ros, &mut tru).unwrap();
            (reg, ros, tru)
        };
        assert!(write() == write());
    }

    #[test]
    fn no_corruption_copies_the_registry() {
        let g = generator(Corruption::None);
        let mut members = 0;
        for row in g.roster() {
            if let Some(m) = row.member {
                let p = g.person(m);
                assert_eq!((row.name.as_str(), row.id_number.as_str()), (p.name.as_str(), p.id_number.as_str()));
                assert_eq!(row.member_id.as_deref(), Some(p.id_number.as_str()));
                members += 1;
            }
        }
        assert!((800..1200).contains(&members), "{members}");
    }

    #[test]
    fn standard_corruption_damages_some_rows_and_not_most() {
        let g = generator(Corruption::Standard);
        let (mut names, mut ids, mut total) = (0, 0, 0);
        for row in g.roster().filter(|r| r.member.is_some()) {
            let p = g.person(row.member.unwrap_or(0));
            total += 1;
            names += usize::from(row.name != p.name);
            ids += usize::from(normalize_id(&row.id_number).valid() != Some(p.id_number.as_str()));
        }
        let (names, ids) = (names as f64 / total as f64, ids as f64 / total as f64);
        assert!((0.05..0.25).contains(&names), "{names}");
        assert!((0.05..0.20).contains(&ids), "{ids}");
    }

    #[test]
    fn homophones_share_their_pinyin() {
        let mixed: Vec<String> = HOMOPHONES
            .iter()
            .filter_map(|group| {
                let keys: HashSet<String> = group.chars().map(|c| pinyin_keys(&c.to_string()).unwrap().full).collect();
                (keys.len() != 1).then(|| format!("{group}: {keys:?}"))
            })
            .collect();
        assert!(mixed.is_empty(), "{mixed:?}");
    }

    #[test]
    fn traditional_forms_simplify_back() {
        for (s, t) in TRADITIONAL {
            assert_ne!(s, t);
            assert_eq!(fast2s::convert(&t.to_string()), s.to_string(), "{t}");
        }
    }
}
