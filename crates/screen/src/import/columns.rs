//! Header detection and the mapping of columns to roster fields.

use serde::{Deserialize, Serialize};

use crate::normalize::text::half_width_char;

/// The fields the matcher uses. Other columns are kept in the file but not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Name,
    IdNumber,
    Gender,
    BirthDate,
    Phone,
    Employer,
    Address,
    HukouPlace,
    Ethnicity,
}

impl Field {
    pub const ALL: &'static [Field] = &[
        Field::Name,
        Field::IdNumber,
        Field::Gender,
        Field::BirthDate,
        Field::Phone,
        Field::Employer,
        Field::Address,
        Field::HukouPlace,
        Field::Ethnicity,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::IdNumber => "id_number",
            Field::Gender => "gender",
            Field::BirthDate => "birth_date",
            Field::Phone => "phone",
            Field::Employer => "employer",
            Field::Address => "address",
            Field::HukouPlace => "hukou_place",
            Field::Ethnicity => "ethnicity",
        }
    }
}

/// One column of the file: its position (0-based), its header as written, and the
/// field it feeds, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub index: usize,
    /// Filled from the header row when left empty.
    #[serde(default)]
    pub header: String,
    pub field: Option<Field>,
}

/// Which row is the header and what each column means. Detected on open; the caller
/// may show it to the user, change it and hand it back before reading the rows.
/// A field may be fed by several columns (手机 and 联系电话): phones are all kept, for
/// the other fields the first non-empty column wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    /// The header's line as the user sees it (1-based); 0 when the file has no header
    /// and data starts on the first line.
    pub header_line: u64,
    pub columns: Vec<Column>,
}

impl ColumnMapping {
    /// The columns feeding `field`, in file order.
    pub fn columns_of(&self, field: Field) -> impl Iterator<Item = usize> + '_ {
        self.columns.iter().filter(move |c| c.field == Some(field)).map(|c| c.index)
    }

    pub fn has(&self, field: Field) -> bool {
        self.columns_of(field).next().is_some()
    }

    /// Maps a header row by the usual Chinese (and a few English) headers.
    pub fn from_headers(header_line: u64, headers: &[String]) -> ColumnMapping {
        let columns = headers
            .iter()
            .enumerate()
            .map(|(index, header)| Column { index, header: header.trim().to_owned(), field: field_for_header(header) })
            .collect();
        ColumnMapping { header_line, columns }
    }

    /// How many different fields a header row names: the evidence that it is the header.
    pub(crate) fn recognized(&self) -> usize {
        Field::ALL.iter().filter(|f| self.has(**f)).count()
    }
}

/// Strips what decorates headers: spaces, required-field stars, notes in brackets
/// ("身份证号码（18位）"), colons, and folds width and case.
fn header_key(header: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    for c in header.chars().map(half_width_char) {
        match c {
            '(' | '[' | '（' | '【' => depth += 1,
            ')' | ']' | '）' | '】' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => {}
        }
    }
    out
}

/// The field a header names. Rules are tried in order, so 户籍地址 is the household
/// registration place and not the current address, and 出生地 (birthplace) is no date.
pub fn field_for_header(header: &str) -> Option<Field> {
    let k = header_key(header);
    let has = |words: &[&str]| words.iter().any(|w| k.contains(w));
    let is = |words: &[&str]| words.iter().any(|w| k == *w);
    if k.is_empty() {
        return None;
    }
    if has(&["身份证", "身份号码", "证件号", "公民身份"]) || is(&["idcard", "idnumber", "idno", "sfzh"]) {
        return Some(Field::IdNumber);
    }
    if has(&["姓名"]) || is(&["名字", "name", "xm"]) {
        return Some(Field::Name);
    }
    if has(&["性别"]) || is(&["gender", "sex", "xb"]) {
        return Some(Field::Gender);
    }
    if (has(&["出生"]) && has(&["日期", "年月", "时间"]))
        || has(&["生日"])
        || is(&["出生", "birthdate", "birthday", "dob"])
    {
        return Some(Field::BirthDate);
    }
    if has(&["手机", "电话", "联系方式", "联系号码"]) || is(&["phone", "mobile", "tel", "sjhm"]) {
        return Some(Field::Phone);
    }
    if has(&["户籍", "户口"]) {
        return Some(Field::HukouPlace);
    }
    if has(&["民族"]) || is(&["ethnicity", "nation"]) {
        return Some(Field::Ethnicity);
    }
    if has(&["住址", "居住", "现住", "现居", "暂住", "家庭地址"]) || is(&["地址", "address"]) {
        return Some(Field::Address);
    }
    if has(&["单位", "公司", "企业名称", "雇主"]) || is(&["employer", "company"]) {
        return Some(Field::Employer);
    }
    None
}

/// Picks the header among the first rows: the first one naming at least two fields,
/// one of them the name or the ID number. Title rows ("XX街道流动人口登记表") and
/// blank rows before it are skipped.
pub(crate) fn detect(rows: &[(u64, Vec<String>)]) -> Option<ColumnMapping> {
    rows.iter()
        .map(|(line, cells)| ColumnMapping::from_headers(*line, cells))
        .find(|m| m.recognized() >= 2 && (m.has(Field::Name) || m.has(Field::IdNumber)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_headers_map_to_fields() {
        let cases = [
            ("姓名", Some(Field::Name)),
            ("*姓名", Some(Field::Name)),
            ("党员姓名", Some(Field::Name)),
            ("公民身份号码", Some(Field::IdNumber)),
            ("身份证号", Some(Field::IdNumber)),
            ("身份证号码（18位）", Some(Field::IdNumber)),
            ("证件号码", Some(Field::IdNumber)),
            ("证件类型", None),
            ("性别", Some(Field::Gender)),
            ("出生日期", Some(Field::BirthDate)),
            ("出生年月", Some(Field::BirthDate)),
            ("出生地", None),
            ("手机", Some(Field::Phone)),
            ("手机号码", Some(Field::Phone)),
            ("联系电话", Some(Field::Phone)),
            ("电话", Some(Field::Phone)),
            ("工作单位", Some(Field::Employer)),
            ("单位", Some(Field::Employer)),
            ("现住址", Some(Field::Address)),
            ("居住地址", Some(Field::Address)),
            ("现居住地", Some(Field::Address)),
            ("户籍地", Some(Field::HukouPlace)),
            ("户籍地址", Some(Field::HukouPlace)),
            ("户口所在地", Some(Field::HukouPlace)),
            ("民族", Some(Field::Ethnicity)),
            ("序号", None),
            ("备注", None),
            ("", None),
            ("Name", Some(Field::Name)),
            ("姓　名", Some(Field::Name)),
        ];
        for (header, field) in cases {
            assert_eq!(field_for_header(header), field, "{header}");
        }
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_header_is_found_below_title_rows() {
        let rows = vec![
            (1, row(&["XX街道流动人口登记表", "", ""])),
            (2, row(&["填报单位：XX社区", "", "2024年3月"])),
            (3, row(&["序号", "姓名", "身份证号", "联系电话"])),
            (4, row(&["1", "张伟", "11010519491231002X", "13800138000"])),
        ];
        let m = detect(&rows).unwrap();
        assert_eq!(m.header_line, 3);
        assert_eq!(m.columns_of(Field::Name).collect::<Vec<_>>(), [1]);
        assert_eq!(m.columns_of(Field::IdNumber).collect::<Vec<_>>(), [2]);
        assert_eq!(m.columns_of(Field::Phone).collect::<Vec<_>>(), [3]);
        assert_eq!(m.columns[0].field, None);
    }

    #[test]
    fn a_title_naming_one_field_is_not_a_header() {
        let rows = vec![(1, row(&["姓名登记表"])), (2, row(&["张伟", "男"]))];
        assert_eq!(detect(&rows), None);
    }

    #[test]
    fn a_mapping_round_trips_through_json() {
        let m = ColumnMapping::from_headers(1, &row(&["姓名", "手机", "联系电话"]));
        assert_eq!(m.columns_of(Field::Phone).count(), 2);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""field":"phone""#), "{json}");
        let back: ColumnMapping = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }
}
