//! Administrative divisions of mainland China (GB/T 2260 codes for provinces,
//! prefectures and counties, plus the statistical bureau's township/street
//! level), embedded in the binary. See `DATA.md` for the source and version.
//!
//! Codes are handled in their short form: 2 digits for a province (`"32"`),
//! 4 for a prefecture (`"3207"`), 6 for a county (`"320724"`) and 9 for a
//! township or street (`"320724100"`). Every function also accepts the
//! zero-padded 6/9/12-digit forms; see [`normalize`].
//!
//! Quirks of the data worth knowing:
//! - Municipalities (北京, 天津, 上海, 重庆) have filler prefectures named
//!   "市辖区" or "县"; likewise "省直辖县级行政区划" in 河南, 湖北, 海南 and
//!   "自治区直辖县级行政区划" in 新疆. [`full_name`] and [`search`] skip them.
//! - 东莞, 中山 and 儋州 have no county level: their streets are direct
//!   children of the prefecture, and `"441900"` resolves to 东莞市 itself.
//! - County-level codes ending in 71–80 (e.g. `"320771"`, 连云港经济技术开发区)
//!   are statistical-only development zones, not GB/T 2260 codes: [`get`]
//!   knows them, [`county`] does not.
//! - The data is one snapshot; older or abolished codes (still found in old ID
//!   numbers) are unknown. 香港, 澳门 and 台湾 are not included.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

static DATA: &str = include_str!("../data/divisions.tsv");

/// Prefecture-level names that are placeholders, not real places.
const FILLERS: [&str; 4] = ["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"];

/// The level of a division, from the top down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 省级: province, autonomous region or municipality (2-digit code).
    Province,
    /// 地级: prefecture-level city, prefecture, league (4-digit code).
    Prefecture,
    /// 县级: district, county, county-level city, banner (6-digit code).
    County,
    /// 乡级: township, town or street (9-digit code).
    Street,
}

impl Level {
    fn of_code(code: &str) -> Option<Level> {
        match code.len() {
            2 => Some(Level::Province),
            4 => Some(Level::Prefecture),
            6 => Some(Level::County),
            9 => Some(Level::Street),
            _ => None,
        }
    }
}

/// One administrative division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Division {
    /// Short code: 2, 4, 6 or 9 digits.
    pub code: &'static str,
    pub name: &'static str,
    pub level: Level,
}

impl Division {
    fn is_filler(&self) -> bool {
        self.level == Level::Prefecture && FILLERS.contains(&self.name)
    }
}

struct Table {
    /// Sorted by code, so every parent precedes its children.
    all: Vec<Division>,
    index: HashMap<&'static str, usize>,
    parent: Vec<Option<usize>>,
    /// Keyed by parent code; `""` holds the provinces.
    children: HashMap<&'static str, Vec<usize>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table { all: Vec::new(), index: HashMap::new(), parent: Vec::new(), children: HashMap::new() };
        for line in DATA.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (code, name) = line.split_once('\t').expect("code<TAB>name");
            let level = Level::of_code(code).expect("2/4/6/9-digit code");
            // The nearest existing prefix: streets of 东莞 etc. skip the county.
            let parent =
                [6, 4, 2].into_iter().filter(|&n| n < code.len()).find_map(|n| t.index.get(&code[..n]).copied());
            let i = t.all.len();
            t.all.push(Division { code, name, level });
            t.index.insert(code, i);
            t.parent.push(parent);
            let key = parent.map_or("", |p| t.all[p].code);
            t.children.entry(key).or_default().push(i);
        }
        t
    })
}

/// Normalises a code to the short form used by this crate, or `None` if it is
/// not 2, 4, 6, 9 or 12 ASCII digits (surrounding whitespace is ignored).
///
/// Trailing zero groups of the padded GB forms are dropped, repeatedly:
/// `"320724000000"` → `"320724"`, `"320700"` → `"3207"`, `"320000"` → `"32"`,
/// `"320724100000"` → `"320724100"`. A code that is already short is returned
/// as is; so is a 12-digit village code, which matches no division.
pub fn normalize(code: &str) -> Option<&str> {
    let mut code = code.trim();
    if !matches!(code.len(), 2 | 4 | 6 | 9 | 12) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    loop {
        let shorter = match code.len() {
            12 | 9 => code.len() - 3,
            6 | 4 => code.len() - 2,
            _ => return Some(code),
        };
        if code[shorter..].bytes().any(|b| b != b'0') {
            return Some(code);
        }
        code = &code[..shorter];
    }
}

fn find(code: &str) -> Option<usize> {
    table().index.get(normalize(code)?).copied()
}

/// The division with this code (short or padded form).
pub fn get(code: &str) -> Option<Division> {
    find(code).map(|i| table().all[i])
}

/// The direct children of a division, sorted by code; `children("")` returns
/// the provinces. Empty for an unknown code or a street.
pub fn children(code: &str) -> Vec<Division> {
    let t = table();
    let key = if code.trim().is_empty() {
        ""
    } else {
        match find(code) {
            Some(i) => t.all[i].code,
            None => return Vec::new(),
        }
    };
    t.children.get(key).map_or_else(Vec::new, |kids| kids.iter().map(|&i| t.all[i]).collect())
}

/// The division directly above this one (`None` for a province or an unknown
/// code). Filler prefectures such as "市辖区" are real parents here.
pub fn parent(code: &str) -> Option<Division> {
    let t = table();
    t.parent[find(code)?].map(|p| t.all[p])
}

/// The chain from the province down to the division itself (empty if unknown).
pub fn ancestors(code: &str) -> Vec<Division> {
    let t = table();
    let mut chain = Vec::new();
    let mut next = find(code);
    while let Some(i) = next {
        chain.push(t.all[i]);
        next = t.parent[i];
    }
    chain.reverse();
    chain
}

/// The names from the province down, without fillers, e.g. "江苏省连云港市灌南县"
/// or "上海市浦东新区".
pub fn full_name(code: &str) -> Option<String> {
    let chain = ancestors(code);
    if chain.is_empty() {
        return None;
    }
    Some(chain.iter().filter(|d| !d.is_filler()).map(|d| d.name).collect())
}

/// Up to `limit` divisions whose name contains `query` (trimmed), higher levels
/// first, then shorter names, then by code. Filler prefectures never match; a
/// blank query matches nothing. A linear scan: fine for interactive use.
pub fn search(query: &str, limit: usize) -> Vec<Division> {
    let query = query.trim();
    if query.is_empty() || limit == 0 {
        return Vec::new();
    }
    let mut hits: Vec<Division> =
        table().all.iter().filter(|d| d.name.contains(query) && !d.is_filler()).copied().collect();
    hits.sort_by_key(|d| (d.level, d.name.chars().count(), d.code));
    hits.truncate(limit);
    hits
}

/// Whether `code_prefix2` (exactly two digits, e.g. the start of an ID number)
/// is a known province. 香港 81, 澳门 82 and 台湾 71 are not in the data.
pub fn is_known_province(code_prefix2: &str) -> bool {
    code_prefix2.len() == 2 && get(code_prefix2).is_some_and(|d| d.level == Level::Province)
}

/// The county-level division for a 6-digit GB/T 2260 code, such as the first
/// six digits of a resident ID number. Besides counties this returns the
/// prefecture for cities without counties (`"441900"` → 东莞市); it rejects
/// provinces, other prefectures and the statistical-only codes ending in 71–80.
pub fn county(code6: &str) -> Option<Division> {
    if code6.len() != 6 {
        return None;
    }
    let d = get(code6)?;
    match d.level {
        Level::County => (!("71"..="80").contains(&&d.code[4..])).then_some(d),
        Level::Prefecture => children(d.code).first().is_some_and(|c| c.level == Level::Street).then_some(d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ds: &[Division]) -> Vec<&str> {
        ds.iter().map(|d| d.name).collect()
    }

    #[test]
    fn data_is_consistent() {
        let t = table();
        assert!(t.all.windows(2).all(|w| w[0].code < w[1].code));
        let count = |l| t.all.iter().filter(|d| d.level == l).count();
        assert_eq!(count(Level::Province), 31);
        assert!(count(Level::Prefecture) > 300);
        assert!(count(Level::County) > 2800);
        assert!(count(Level::Street) > 40_000);
        for (i, d) in t.all.iter().enumerate() {
            match t.parent[i] {
                None => assert_eq!(d.level, Level::Province, "{d:?}"),
                Some(p) => {
                    assert!(t.all[p].level < d.level, "{d:?}");
                    assert!(d.code.starts_with(t.all[p].code), "{d:?}");
                }
            }
        }
    }

    #[test]
    fn guannan_county() {
        let d = get("320724").unwrap();
        assert_eq!((d.name, d.level), ("灌南县", Level::County));
        assert_eq!(parent("320724").unwrap().name, "连云港市");
        assert_eq!(names(&ancestors("320724")), ["江苏省", "连云港市", "灌南县"]);
        assert_eq!(full_name("320724").unwrap(), "江苏省连云港市灌南县");
        assert_eq!(get("320724000000"), Some(d));
        assert_eq!(county("320724"), Some(d));
    }

    #[test]
    fn street_under_guannan() {
        let streets = children("320724");
        assert!(streets.iter().all(|s| s.level == Level::Street));
        let xinan = streets.iter().find(|s| s.code == "320724100").unwrap();
        assert_eq!(xinan.name, "新安镇");
        assert_eq!(get("320724100000"), Some(*xinan));
        assert_eq!(parent("320724100").unwrap().code, "320724");
        assert_eq!(full_name("320724100").unwrap(), "江苏省连云港市灌南县新安镇");
        assert!(children("320724100").is_empty());
    }

    #[test]
    fn provinces_and_prefectures() {
        let provinces = children("");
        assert_eq!(provinces.len(), 31);
        assert_eq!(provinces[0].name, "北京市");
        assert!(provinces.iter().all(|p| p.level == Level::Province));
        let js = children("32");
        assert!(js.iter().any(|c| c.code == "3201" && c.name == "南京市"));
        assert!(js.iter().all(|c| c.level == Level::Prefecture));
        assert_eq!(children("320000"), js);
        assert_eq!(get("320000").unwrap().name, "江苏省");
        assert_eq!(get("320700").unwrap().name, "连云港市");
        assert_eq!(full_name("32").unwrap(), "江苏省");
    }

    #[test]
    fn municipalities() {
        assert_eq!(names(&children("31")), ["市辖区"]);
        let districts = children("3101");
        assert_eq!(districts.len(), 16);
        assert!(districts.iter().any(|d| d.code == "310115" && d.name == "浦东新区"));
        assert_eq!(full_name("310115").unwrap(), "上海市浦东新区");
        assert_eq!(names(&ancestors("310115")), ["上海市", "市辖区", "浦东新区"]);
        assert_eq!(full_name("500229").unwrap(), "重庆市城口县");
        assert_eq!(full_name("429004").unwrap(), "湖北省仙桃市");
        assert_eq!(full_name("659001").unwrap(), "新疆维吾尔自治区石河子市");
    }

    #[test]
    fn cities_without_counties() {
        let dg = get("4419").unwrap();
        assert_eq!((dg.name, dg.level), ("东莞市", Level::Prefecture));
        assert_eq!(get("441900"), Some(dg));
        assert_eq!(county("441900"), Some(dg));
        let streets = children("4419");
        assert!(streets.iter().all(|s| s.level == Level::Street));
        assert!(streets.iter().any(|s| s.code == "441900003" && s.name == "东城街道"));
        assert_eq!(parent("441900003"), Some(dg));
        assert_eq!(full_name("441900003").unwrap(), "广东省东莞市东城街道");
        assert_eq!(county("442000").unwrap().name, "中山市");
        assert_eq!(county("460400").unwrap().name, "儋州市");
    }

    #[test]
    fn county_is_strict() {
        assert_eq!(county("110101").unwrap().name, "东城区");
        assert_eq!(get("320771").unwrap().name, "连云港经济技术开发区");
        assert_eq!(county("320771"), None);
        assert_eq!(county("320700"), None);
        assert_eq!(county("110100"), None);
        assert_eq!(county("320000"), None);
        assert_eq!(county("3207"), None);
        assert_eq!(county("320799"), None);
        assert_eq!(county("320724100"), None);
    }

    #[test]
    fn normalize_forms() {
        assert_eq!(normalize("320724000000"), Some("320724"));
        assert_eq!(normalize("320724100000"), Some("320724100"));
        assert_eq!(normalize("320724000"), Some("320724"));
        assert_eq!(normalize("320000"), Some("32"));
        assert_eq!(normalize("320700000000"), Some("3207"));
        assert_eq!(normalize(" 3207 "), Some("3207"));
        assert_eq!(normalize("320724100201"), Some("320724100201"));
        assert_eq!(normalize("32072"), None);
        assert_eq!(normalize("32a724"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn unknown_codes() {
        for code in ["99", "3299", "320799", "320724999", "320724100201", "", "abc", "3"] {
            assert_eq!(get(code), None, "{code}");
            assert_eq!(parent(code), None, "{code}");
            assert!(ancestors(code).is_empty(), "{code}");
            assert_eq!(full_name(code), None, "{code}");
        }
        assert!(children("99").is_empty());
        assert_eq!(parent("32"), None);
        assert!(is_known_province("32"));
        assert!(!is_known_province("99"));
        assert!(!is_known_province("81"));
        assert!(!is_known_province("3207"));
    }

    #[test]
    fn search_ranks() {
        assert_eq!(search("灌南", 10)[0].code, "320724");
        let nj = search("南京", 3);
        assert_eq!(nj.len(), 3);
        assert_eq!((nj[0].code, nj[0].name), ("3201", "南京市"));
        assert!(search("县", 50).iter().all(|d| d.name != "县"));
        assert_eq!(search("江苏", 1)[0].code, "32");
        assert!(search("  ", 10).is_empty());
        assert!(search("不存在的地名", 10).is_empty());
    }

    #[test]
    fn serializes_snake_case() {
        let json = serde_json::to_value(get("320724").unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"code": "320724", "name": "灌南县", "level": "county"}));
    }
}
