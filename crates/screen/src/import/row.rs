//! One roster row: the cells as read and their normalized forms.

use serde::Serialize;

use super::columns::{ColumnMapping, Field};
use crate::normalize::{
    birth_date_from_id, canonical_name, clean_text, gender_from_id, name_key, normalize_id, normalize_phones,
    parse_date, parse_gender, pinyin_keys, Gender, IdCheck, PartialDate, Phone, PhoneKind, PinyinKeys,
};

/// The mapped cells as they were read (trimmed), before any normalization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawFields {
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    /// All phone columns' cells, joined with `/`.
    pub phone: Option<String>,
    pub employer: Option<String>,
    pub address: Option<String>,
    pub hukou_place: Option<String>,
    pub ethnicity: Option<String>,
}

impl RawFields {
    /// Reads the mapped cells of a row. Missing cells count as empty.
    pub fn from_cells(cells: &[String], mapping: &ColumnMapping) -> RawFields {
        let first = |field: Field| {
            mapping
                .columns_of(field)
                .filter_map(|i| cells.get(i))
                .map(|s| s.trim())
                .find(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let phones: Vec<&str> = mapping
            .columns_of(Field::Phone)
            .filter_map(|i| cells.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        RawFields {
            name: first(Field::Name),
            id_number: first(Field::IdNumber),
            gender: first(Field::Gender),
            birth_date: first(Field::BirthDate),
            phone: (!phones.is_empty()).then(|| phones.join("/")),
            employer: first(Field::Employer),
            address: first(Field::Address),
            hukou_place: first(Field::HukouPlace),
            ethnicity: first(Field::Ethnicity),
        }
    }
}

/// The normalized fields the matcher compares. Birth date and gender are the columns'
/// own; the ID number's are available from [`NormalizedFields::id_birth_date`] and
/// [`NormalizedFields::id_gender`], so that a disagreement stays visible.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedFields {
    /// [`canonical_name`]: simplified, half-width, one dot form.
    pub name: Option<String>,
    pub name_key: Option<String>,
    pub pinyin: Option<PinyinKeys>,
    pub id_number: IdCheck,
    pub gender: Option<Gender>,
    pub birth_date: Option<PartialDate>,
    /// Mobile numbers first, then landlines and other digits.
    pub phones: Vec<Phone>,
    pub employer: Option<String>,
    pub address: Option<String>,
    pub hukou_place: Option<String>,
    /// Without the trailing 族: "汉族" and "汉" are one value.
    pub ethnicity: Option<String>,
}

/// A field whose cell held something that could not be read. The row is still usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    pub field: Field,
    /// `id_number.check_digit`, `birth_date.unreadable`, …
    pub code: &'static str,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl NormalizedFields {
    /// Normalizes raw fields, noting every non-empty cell that could not be read.
    pub fn from_raw(raw: &RawFields, issues: &mut Vec<FieldIssue>) -> NormalizedFields {
        let mut issue = |field, code| issues.push(FieldIssue { field, code });
        let text = |s: &Option<String>| s.as_deref().map(clean_text).and_then(non_empty);

        let name = raw.name.as_deref().map(canonical_name).and_then(non_empty);
        if raw.name.is_some() && name.is_none() {
            issue(Field::Name, "name.unreadable");
        }
        let id_number = raw.id_number.as_deref().map_or(IdCheck::Empty, normalize_id);
        if let IdCheck::Invalid { problem, .. } = &id_number {
            issue(Field::IdNumber, problem.code());
        }
        let gender = raw.gender.as_deref().and_then(parse_gender);
        if raw.gender.is_some() && gender.is_none() {
            issue(Field::Gender, "gender.unreadable");
        }
        let birth_date = raw.birth_date.as_deref().and_then(parse_date);
        if raw.birth_date.is_some() && birth_date.is_none() {
            issue(Field::BirthDate, "birth_date.unreadable");
        }
        let mut phones = raw.phone.as_deref().map(normalize_phones).unwrap_or_default();
        phones.sort_by_key(|p| p.kind != PhoneKind::Mobile);
        phones.dedup();
        if raw.phone.is_some() && !phones.iter().any(|p| p.kind != PhoneKind::Other) {
            issue(Field::Phone, "phone.unreadable");
        }
        let ethnicity = text(&raw.ethnicity).map(|e| {
            let e: String = e.chars().filter(|c| !c.is_whitespace()).collect();
            match e.strip_suffix('族') {
                Some(stem) if !stem.is_empty() => stem.to_owned(),
                _ => e,
            }
        });
        NormalizedFields {
            name_key: name.as_deref().map(name_key),
            pinyin: name.as_deref().and_then(pinyin_keys),
            name,
            id_number,
            gender,
            birth_date,
            phones,
            employer: text(&raw.employer),
            address: text(&raw.address),
            hukou_place: text(&raw.hukou_place),
            ethnicity,
        }
    }

    /// The birth date written in a valid ID number.
    pub fn id_birth_date(&self) -> Option<PartialDate> {
        self.id_number.valid().and_then(birth_date_from_id)
    }

    /// The gender written in a valid ID number.
    pub fn id_gender(&self) -> Option<Gender> {
        self.id_number.valid().and_then(gender_from_id)
    }
}

/// A roster row that could be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RosterRow {
    /// The line (CSV) or row (xlsx) where the row starts, 1-based as the user sees it.
    pub line: u64,
    /// The row's number among the data rows after the header, 1-based. Rows that could
    /// not be read and rows whose cells are all empty count too, so that it never shifts;
    /// an empty line (CSV) or a row absent from the sheet (xlsx) is no row.
    pub data_row: u64,
    pub raw: RawFields,
    pub fields: NormalizedFields,
    pub issues: Vec<FieldIssue>,
}

impl RosterRow {
    pub fn new(line: u64, data_row: u64, raw: RawFields) -> RosterRow {
        let mut issues = Vec::new();
        let fields = NormalizedFields::from_raw(&raw, &mut issues);
        RosterRow { line, data_row, raw, fields, issues }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn mapping() -> ColumnMapping {
        ColumnMapping::from_headers(
            1,
            &cells(&[
                "序号",
                "姓名",
                "性别",
                "民族",
                "出生年月",
                "公民身份号码",
                "手机",
                "联系电话",
                "工作单位",
                "现住址",
                "户籍地",
            ]),
        )
    }

    #[test]
    fn a_typical_row_is_normalized() {
        let row = cells(&[
            "1",
            " 陳國華 ",
            "男",
            "汉族",
            "1949.12",
            "11010519491231002x",
            "",
            "0512-65231234/+86 138 0013 8000",
            "蘇州工業園區 某某科技有限公司",
            "苏州市工业园区星湖街328号",
            "江苏省灌南县",
        ]);
        let r = RosterRow::new(2, 1, RawFields::from_cells(&row, &mapping()));
        assert_eq!(r.raw.name.as_deref(), Some("陳國華"));
        assert_eq!(r.fields.name.as_deref(), Some("陈国华"));
        assert_eq!(r.fields.pinyin.as_ref().map(|p| p.full.as_str()), Some("chenguohua"));
        assert_eq!(r.fields.id_number.valid(), Some("11010519491231002X"));
        assert_eq!(r.fields.gender, Some(Gender::Male));
        assert_eq!(r.fields.id_gender(), Some(Gender::Female));
        assert_eq!(r.fields.birth_date, Some(PartialDate::YearMonth(1949, 12)));
        assert_eq!(r.fields.id_birth_date().map(|d| d.to_string()).as_deref(), Some("1949-12-31"));
        let phones: Vec<&str> = r.fields.phones.iter().map(|p| p.number.as_str()).collect();
        assert_eq!(phones, ["13800138000", "0512-65231234"]);
        assert_eq!(r.fields.employer.as_deref(), Some("苏州工业园区 某某科技有限公司"));
        assert_eq!(r.fields.ethnicity.as_deref(), Some("汉"));
        assert!(r.issues.is_empty(), "{:?}", r.issues);
    }

    #[test]
    fn unreadable_cells_are_issues_not_failures() {
        let row = cells(&["2", "（空）", "未知", "", "不详", "110105194912310021", "12345", "", "", "", ""]);
        let r = RosterRow::new(3, 2, RawFields::from_cells(&row, &mapping()));
        let codes: Vec<&str> = r.issues.iter().map(|i| i.code).collect();
        assert_eq!(
            codes,
            [
                "name.unreadable",
                "id_number.check_digit",
                "gender.unreadable",
                "birth_date.unreadable",
                "phone.unreadable"
            ]
        );
        assert_eq!(r.fields.id_number.cleaned(), Some("110105194912310021"));
        assert_eq!(r.fields.ethnicity, None);
    }

    #[test]
    fn short_rows_read_as_empty_cells() {
        let r = RosterRow::new(4, 3, RawFields::from_cells(&cells(&["3", "王芳"]), &mapping()));
        assert_eq!(r.fields.name.as_deref(), Some("王芳"));
        assert_eq!(r.fields.id_number, IdCheck::Empty);
        assert!(r.issues.is_empty());
    }
}
