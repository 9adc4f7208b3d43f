//! Member records and their validation.

use chrono::NaiveDate;

use crate::id_number::IdNumber;
use crate::validation::{self, FieldErrors};
use crate::{Education, Gender, MemberCategory, ETHNICITIES};

/// A validated member as entered in a form; `org_code` names the organization
/// holding the formal record and is resolved by the storage layer.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberFields {
    pub name: String,
    pub gender: Gender,
    pub ethnicity: String,
    pub birth_date: NaiveDate,
    pub id_number: IdNumber,
    pub phone: Option<String>,
    pub education: Option<Education>,
    pub joined_on: NaiveDate,
    pub category: MemberCategory,
    pub org_code: String,
    pub residence_division: Option<String>,
    pub residence_address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
}

/// Raw input as it arrives from a form or JSON: every field a string.
#[derive(Debug, Clone, Default)]
pub struct MemberInput<'a> {
    pub name: &'a str,
    pub gender: &'a str,
    pub ethnicity: &'a str,
    pub birth_date: &'a str,
    pub id_number: &'a str,
    pub phone: &'a str,
    pub education: &'a str,
    pub joined_on: &'a str,
    pub category: &'a str,
    pub org_code: &'a str,
    pub residence_division: &'a str,
    pub residence_address: &'a str,
    pub employer: &'a str,
    pub occupation: &'a str,
}

/// What validation needs to know of the world.
pub trait Context {
    fn division_known(&self, code: &str) -> bool;
    fn province_known(&self, code2: &str) -> bool;
    fn today(&self) -> NaiveDate;
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    // Four-digit years only: chrono also takes a sign and longer years, which PostgreSQL cannot store.
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Validates a member. Besides each field on its own, the identity number must agree
/// with the entered birth date and gender and start with a known province.
pub fn validate(input: &MemberInput, ctx: &impl Context) -> Result<MemberFields, FieldErrors> {
    let mut e = FieldErrors::default();
    let today = ctx.today();
    let name = validation::text(&mut e, "name", input.name, true, 50);
    let gender = Gender::from_code(input.gender.trim());
    if gender.is_none() {
        e.add("gender", if input.gender.trim().is_empty() { "required" } else { "invalid" });
    }
    let ethnicity = input.ethnicity.trim();
    if ethnicity.is_empty() {
        e.add("ethnicity", "required");
    } else if !ETHNICITIES.contains(&ethnicity) {
        e.add("ethnicity", "invalid");
    }
    let birth_date = required_date(&mut e, "birth_date", input.birth_date);
    if birth_date.is_some_and(|d| d > today) {
        e.add("birth_date", "in_future");
    }
    let id_number = validation::id_number(&mut e, "id_number", input.id_number);
    if let Some(id) = &id_number {
        if !ctx.province_known(&id.division_code()[..2]) {
            e.add("id_number", "id_number.province");
        } else if birth_date.is_some_and(|b| b != id.birth_date()) {
            e.add("id_number", "id_number.birth_mismatch");
        } else if gender.is_some_and(|g| g != id.gender()) {
            e.add("id_number", "id_number.gender_mismatch");
        }
    }
    let phone = if input.phone.trim().is_empty() {
        None
    } else {
        let p = validation::phone(input.phone);
        if p.is_none() {
            e.add("phone", "invalid");
        }
        p
    };
    let education = match input.education.trim() {
        "" => None,
        c => {
            let v = Education::from_code(c);
            if v.is_none() {
                e.add("education", "invalid");
            }
            v
        }
    };
    let joined_on = required_date(&mut e, "joined_on", input.joined_on);
    if let Some(j) = joined_on {
        if j > today {
            e.add("joined_on", "in_future");
        } else if birth_date.is_some_and(|b| j < b.with_year_plus(18)) {
            // Membership is open from the age of eighteen.
            e.add("joined_on", "member.joined_too_young");
        }
    }
    let category = MemberCategory::from_code(input.category.trim());
    if category.is_none() {
        e.add("category", if input.category.trim().is_empty() { "required" } else { "invalid" });
    }
    let org_code = input.org_code.trim();
    if org_code.is_empty() {
        e.add("org_code", "required");
    }
    let residence_division = match input.residence_division.trim() {
        "" => None,
        c if ctx.division_known(c) => Some(c.to_string()),
        _ => {
            e.add("residence_division", "unknown");
            None
        }
    };
    let residence_address = validation::text(&mut e, "residence_address", input.residence_address, false, 200);
    let employer = validation::text(&mut e, "employer", input.employer, false, 100);
    let occupation = validation::text(&mut e, "occupation", input.occupation, false, 50);
    if !e.is_empty() {
        return Err(e);
    }
    // Every Option below is Some: a None would have added an error above.
    Ok(MemberFields {
        name: name.unwrap_or_default(),
        gender: gender.unwrap_or(Gender::Male),
        ethnicity: ethnicity.to_string(),
        birth_date: birth_date.unwrap_or_default(),
        id_number: id_number.expect("checked"),
        phone,
        education,
        joined_on: joined_on.unwrap_or_default(),
        category: category.unwrap_or(MemberCategory::Full),
        org_code: org_code.to_string(),
        residence_division,
        residence_address,
        employer,
        occupation,
    })
}

fn required_date(e: &mut FieldErrors, field: &'static str, value: &str) -> Option<NaiveDate> {
    if value.trim().is_empty() {
        e.add(field, "required");
        return None;
    }
    let d = parse_date(value);
    if d.is_none() {
        e.add(field, "invalid_date");
    }
    d
}

trait PlusYears {
    fn with_year_plus(self, years: i32) -> NaiveDate;
}

impl PlusYears for NaiveDate {
    fn with_year_plus(self, years: i32) -> NaiveDate {
        self.checked_add_months(chrono::Months::new(12 * years as u32)).unwrap_or(NaiveDate::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx;
    impl Context for Ctx {
        fn division_known(&self, code: &str) -> bool {
            code == "320724"
        }
        fn province_known(&self, code2: &str) -> bool {
            code2 == "32" || code2 == "11"
        }
        fn today(&self) -> NaiveDate {
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        }
    }

    fn valid() -> MemberInput<'static> {
        MemberInput {
            name: "张伟",
            gender: "male",
            ethnicity: "汉族",
            birth_date: "1985-03-12",
            // 320724 1985-03-12, sequence 01, male digit 1.
            id_number: "320724198503120115",
            phone: "138 1234 5678",
            education: "bachelor",
            joined_on: "2008-07-01",
            category: "full",
            org_code: "GN-01",
            residence_division: "320724",
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_consistent_member() {
        let id = crate::id_number::compose("320724", parse_date("1985-03-12").unwrap(), 1, Gender::Male);
        let mut input = valid();
        let s = id.as_str().to_string();
        input.id_number = &s;
        let m = validate(&input, &Ctx).unwrap();
        assert_eq!(m.phone.as_deref(), Some("13812345678"));
        assert_eq!(m.id_number, id);
    }

    #[test]
    fn id_number_must_agree_with_birth_date_and_gender() {
        let id = crate::id_number::compose("320724", parse_date("1985-03-13").unwrap(), 1, Gender::Male);
        let s = id.as_str().to_string();
        let mut input = valid();
        input.id_number = &s;
        assert_eq!(validate(&input, &Ctx).unwrap_err().get("id_number"), Some("id_number.birth_mismatch"));

        let id = crate::id_number::compose("320724", parse_date("1985-03-12").unwrap(), 1, Gender::Female);
        let s = id.as_str().to_string();
        input.id_number = &s;
        assert_eq!(validate(&input, &Ctx).unwrap_err().get("id_number"), Some("id_number.gender_mismatch"));
    }

    #[test]
    fn id_number_must_start_with_a_known_province() {
        let id = crate::id_number::compose("990101", parse_date("1985-03-12").unwrap(), 1, Gender::Male);
        let s = id.as_str().to_string();
        let mut input = valid();
        input.id_number = &s;
        assert_eq!(validate(&input, &Ctx).unwrap_err().get("id_number"), Some("id_number.province"));
    }

    #[test]
    fn reports_every_bad_field() {
        let input = MemberInput {
            id_number: "320724198503120110",
            birth_date: "1985-13-01",
            joined_on: "2030-01-01",
            phone: "123",
            residence_division: "000000",
            ethnicity: "火星族",
            ..Default::default()
        };
        let e = validate(&input, &Ctx).unwrap_err();
        assert_eq!(e.get("name"), Some("required"));
        assert_eq!(e.get("gender"), Some("required"));
        assert_eq!(e.get("birth_date"), Some("invalid_date"));
        assert_eq!(e.get("id_number"), Some("id_number.check_digit"));
        assert_eq!(e.get("joined_on"), Some("in_future"));
        assert_eq!(e.get("phone"), Some("invalid"));
        assert_eq!(e.get("residence_division"), Some("unknown"));
        assert_eq!(e.get("ethnicity"), Some("invalid"));
        assert_eq!(e.get("org_code"), Some("required"));
    }

    #[test]
    fn members_join_at_eighteen_or_older() {
        let id = crate::id_number::compose("320724", parse_date("1985-03-12").unwrap(), 1, Gender::Male);
        let s = id.as_str().to_string();
        let mut input = valid();
        input.id_number = &s;
        input.joined_on = "2003-03-11";
        assert_eq!(validate(&input, &Ctx).unwrap_err().get("joined_on"), Some("member.joined_too_young"));
        input.joined_on = "2003-03-12";
        assert!(validate(&input, &Ctx).is_ok());
    }
}
