//! Properties of the normalizers over many generated inputs (seeded, so reproducible):
//! no panics, idempotence, round trips, and repair of every one-typo ID number.

use chrono::{Duration, NaiveDate};
use kite_screen::normalize::id_number::{birth_date_of, check_digit_ok};
use kite_screen::normalize::{
    canonical_name, clean_id, from_excel_serial, name_key, normalize_id, normalize_phones, parse_date, parse_gender,
    pinyin_keys, repair_candidates, IdCheck, NAME_DOT,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ALPHABET: &[char] = &[
    '张', '伟', '陳', '國', '华', '阿', '依', '古', '丽', '买', '提', '单', '曾', '·', '.', '•', '・', '．', ' ', '　',
    '(', ')', '（', '）', '【', '】', '0', '1', '2', '3', '5', '9', 'X', 'x', 'Ａ', '１', '９', '-', '/', '+', '年',
    '月', '日', '号', ',', '，', '、', '\'', '"', '\t', '\u{200B}', '\u{FEFF}', 'é', '𠮷', '转', ':',
];

fn random_text(rng: &mut StdRng) -> String {
    let len = rng.gen_range(0..24);
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

#[test]
fn names_normalize_idempotently() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20_000 {
        let s = random_text(&mut rng);
        let canonical = canonical_name(&s);
        assert_eq!(canonical_name(&canonical), canonical, "{s:?}");
        assert!(!canonical.starts_with(NAME_DOT) && !canonical.ends_with(NAME_DOT), "{s:?}");
        assert!(!canonical.contains("··") && !canonical.chars().any(char::is_whitespace), "{s:?}");
        let key = name_key(&s);
        assert_eq!(name_key(&key), key, "{s:?}");
        assert!(!key.contains(NAME_DOT));
        assert_eq!(pinyin_keys(&s).is_some(), !key.is_empty(), "{s:?}");
        let _ = parse_gender(&s);
    }
}

#[test]
fn ids_phones_and_dates_never_panic_and_are_stable() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20_000 {
        let s = random_text(&mut rng);
        let cleaned = clean_id(&s);
        assert_eq!(clean_id(&cleaned), cleaned, "{s:?}");
        if let IdCheck::Valid { value, .. } = normalize_id(&s) {
            assert!(check_digit_ok(&value), "{s:?}");
            assert_eq!(normalize_id(&value), IdCheck::Valid { value: value.clone(), upgraded: false });
        }
        let _ = repair_candidates(&s, today());
        for phone in normalize_phones(&s) {
            assert_eq!(normalize_phones(&phone.number), vec![phone.clone()], "{s:?}");
        }
        if let Some(d) = parse_date(&s) {
            assert_eq!(parse_date(&d.to_string()), Some(d), "{s:?}");
        }
    }
}

fn random_valid_id(rng: &mut StdRng) -> String {
    let provinces = ["11", "32", "34", "41", "44", "51", "65"];
    let born = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap() + Duration::days(rng.gen_range(0..30_000));
    let mut s = format!(
        "{}{:04}{}{:03}",
        provinces[rng.gen_range(0..provinces.len())],
        rng.gen_range(100..10_000),
        born.format("%Y%m%d"),
        rng.gen_range(0..1000)
    );
    for c in ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'X'] {
        s.push(c);
        if check_digit_ok(&s) {
            return s;
        }
        s.pop();
    }
    unreachable!("one check character always fits")
}

#[test]
fn every_invalid_one_typo_id_is_repaired_to_the_original() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut repaired = 0;
    for _ in 0..3_000 {
        let id = random_valid_id(&mut rng);
        assert!(normalize_id(&id).valid().is_some(), "{id}");
        let mut typo: Vec<u8> = id.clone().into_bytes();
        if rng.gen_bool(0.5) {
            let i = rng.gen_range(0..17);
            typo[i] = b'0' + rng.gen_range(0..10u8);
        } else {
            let i = rng.gen_range(0..17);
            typo.swap(i, i + 1);
        }
        let typo = String::from_utf8(typo).unwrap();
        if typo == id || normalize_id(&typo).valid().is_some() {
            continue; // no typo, or one that made another valid number
        }
        let candidates = repair_candidates(&typo, today());
        assert!(candidates.contains(&id), "{typo} → {candidates:?}, expected {id}");
        for c in &candidates {
            assert!(check_digit_ok(c) && birth_date_of(c).is_some_and(|d| d <= today()), "{c}");
        }
        assert!(candidates.len() <= 35, "{typo}: {}", candidates.len());
        repaired += 1;
    }
    assert!(repaired > 2_000, "{repaired}");
}

#[test]
fn excel_serials_count_consecutive_days_after_the_phantom_leap_day() {
    let mut previous = from_excel_serial(61.0, false).unwrap();
    for serial in 62..60_000 {
        let d = from_excel_serial(f64::from(serial), false).unwrap();
        assert_eq!(d, previous + Duration::days(1), "{serial}");
        previous = d;
    }
}
