//! Check-in (报到登记, 亮身份): what a member reports on arrival, the one-time code
//! that proves the phone, and the guidance towards a suitable organization.

use chrono::TimeDelta;
use serde::Serialize;

use crate::id_number::IdNumber;
use crate::validation::{self, FieldErrors};
use crate::OrgKind;

/// A one-time code is good for this long after it is sent.
pub const CODE_TTL: TimeDelta = TimeDelta::minutes(10);
/// A phone gets at most one code in this interval.
pub const RESEND_AFTER: TimeDelta = TimeDelta::seconds(60);
/// Wrong guesses before a code is spent.
pub const MAX_ATTEMPTS: i64 = 5;
pub const CODE_DIGITS: usize = 6;

/// What a check-in link points at: an organization that takes inflow members, or a
/// service point. Links are `/c/o/{org code}` and `/c/p/{point code}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    Org,
    Point,
}

impl LinkKind {
    pub fn segment(self) -> &'static str {
        match self {
            LinkKind::Org => "o",
            LinkKind::Point => "p",
        }
    }

    pub fn from_segment(s: &str) -> Option<Self> {
        match s {
            "o" => Some(LinkKind::Org),
            "p" => Some(LinkKind::Point),
            _ => None,
        }
    }
}

/// The home organization as the member gives it: one in the system, or free text
/// when it is not (it is then verified by a printed letter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HomeClaim {
    Code(String),
    Text(String),
}

/// A validated check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkin {
    pub name: String,
    pub id_number: IdNumber,
    pub phone: String,
    pub home: HomeClaim,
    pub division_code: String,
    pub address: Option<String>,
    pub employer: Option<String>,
    pub occupation: Option<String>,
    /// The organization picked at a service point; at an organization's own link, that one.
    pub inflow_org_code: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckinInput<'a> {
    pub name: &'a str,
    pub id_number: &'a str,
    pub phone: &'a str,
    pub home_org_code: &'a str,
    pub home_org_text: &'a str,
    pub division_code: &'a str,
    pub address: &'a str,
    pub employer: &'a str,
    pub occupation: &'a str,
    pub inflow_org_code: &'a str,
}

pub fn validate(input: &CheckinInput, division_known: impl Fn(&str) -> bool) -> Result<Checkin, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = validation::text(&mut e, "name", input.name, true, 50);
    let id_number = validation::id_number(&mut e, "id_number", input.id_number);
    let phone = match input.phone.trim() {
        "" => {
            e.add("phone", "required");
            None
        }
        s => {
            let p = validation::mobile_phone(s);
            if p.is_none() {
                // The code is sent by SMS: a mobile number is needed.
                e.add("phone", "checkin.phone_mobile");
            }
            p
        }
    };
    let code = validation::text(&mut e, "home_org_code", input.home_org_code, false, 40);
    let text = validation::text(&mut e, "home_org_text", input.home_org_text, false, 100);
    let home = match (code, text) {
        (Some(c), _) => Some(HomeClaim::Code(c)),
        (None, Some(t)) => Some(HomeClaim::Text(t)),
        (None, None) => {
            if e.get("home_org_code").is_none() && e.get("home_org_text").is_none() {
                e.add("home_org_code", "checkin.home_required");
            }
            None
        }
    };
    let division = input.division_code.trim();
    if division.is_empty() {
        e.add("division_code", "required");
    } else if !division_known(division) {
        e.add("division_code", "unknown");
    }
    let address = validation::text(&mut e, "address", input.address, false, 200);
    let employer = validation::text(&mut e, "employer", input.employer, false, 100);
    let occupation = validation::text(&mut e, "occupation", input.occupation, false, 50);
    let inflow_org_code = validation::text(&mut e, "inflow_org_code", input.inflow_org_code, false, 40);
    match (name, id_number, phone, home) {
        (Some(name), Some(id_number), Some(phone), Some(home)) if e.is_empty() => Ok(Checkin {
            name,
            id_number,
            phone,
            home,
            division_code: division.to_string(),
            address,
            employer,
            occupation,
            inflow_org_code,
        }),
        _ => Err(e),
    }
}

/// A client's idempotency key: 8 to 64 letters, digits, `-` or `_`.
pub fn request_key(s: &str) -> Option<&str> {
    let s = s.trim();
    let ok = (8..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(s)
}

/// A one-time code as typed: exactly [`CODE_DIGITS`] digits, spaces ignored.
pub fn code(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Why a place is suggested, strongest first in [`Suggestion::reasons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A stationed organization (驻外) of the member's home county.
    HomeStationed,
    /// A building, market, industry or project organization named like the workplace.
    Workplace,
    SameStreet,
    SameCounty,
    SameCity,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::HomeStationed => "home_stationed",
            Reason::Workplace => "workplace",
            Reason::SameStreet => "same_street",
            Reason::SameCounty => "same_county",
            Reason::SameCity => "same_city",
        }
    }
}

/// The member looking for an organization.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seeker<'a> {
    /// Where the member lives now (a county or street code).
    pub division: &'a str,
    /// The home county (six digits), from the home organization or the ID number.
    pub home_county: Option<&'a str>,
    pub employer: &'a str,
    pub occupation: &'a str,
    pub address: &'a str,
}

/// An organization that could take the member in.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub division: &'a str,
    pub kind: OrgKind,
    pub name: &'a str,
    /// The division of the top of its tree: a stationed organization belongs to its home county's tree.
    pub root_division: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub score: u32,
    pub reasons: Vec<Reason>,
}

/// How well `place` suits `seeker`; `None` when nothing ties them (another city, no link).
pub fn suggest(seeker: &Seeker, place: &Place) -> Option<Suggestion> {
    let mut reasons = Vec::new();
    let mut score = 0;
    if place.kind == OrgKind::Stationed
        && seeker.home_county.is_some_and(|h| h.len() >= 6 && place.root_division.starts_with(&h[..6]))
    {
        score += 50;
        reasons.push(Reason::HomeStationed);
    }
    if matches!(place.kind, OrgKind::Building | OrgKind::Market | OrgKind::Industry | OrgKind::Project)
        && names_workplace(place.name, &[seeker.employer, seeker.occupation, seeker.address])
    {
        score += 30;
        reasons.push(Reason::Workplace);
    }
    let common = common_prefix(seeker.division, place.division);
    let nearness = if common >= 9 && place.division.len() >= 9 {
        Some((40, Reason::SameStreet))
    } else if common >= 6 {
        Some((30, Reason::SameCounty))
    } else if common >= 4 {
        Some((20, Reason::SameCity))
    } else {
        None
    };
    if let Some((s, r)) = nearness {
        score += s;
        reasons.push(r);
    }
    // Far away and no other tie: not a suggestion.
    if nearness.is_none() && !reasons.contains(&Reason::HomeStationed) {
        return None;
    }
    Some(Suggestion { score, reasons })
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Words every organization name has; what remains names the place or trade.
const GENERIC: &[&str] = &[
    "中共",
    "委员会",
    "党委",
    "党总支",
    "党支部",
    "党小组",
    "第一",
    "第二",
    "联合",
    "楼宇",
    "行业",
    "市场",
    "项目",
    "临时",
    "功能型",
    "新市民",
    "新居民",
];

/// Whether the distinctive part of an organization's name shares two adjacent
/// characters with what the member said about the workplace.
fn names_workplace(org_name: &str, said: &[&str]) -> bool {
    let mut core = org_name.to_string();
    for g in GENERIC {
        core = core.replace(g, " ");
    }
    let said: String = said.join(" ");
    let chars: Vec<char> = core.chars().collect();
    chars
        .windows(2)
        .any(|w| !w[0].is_whitespace() && !w[1].is_whitespace() && said.contains(&w.iter().collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_number::compose;
    use crate::Gender;

    fn valid_id() -> String {
        compose("320724", chrono::NaiveDate::from_ymd_opt(1990, 5, 1).unwrap(), 12, Gender::Male).as_str().to_string()
    }

    #[test]
    fn a_complete_check_in_passes_and_home_may_be_free_text() {
        let id = valid_id();
        let input = CheckinInput {
            name: " 王强 ",
            id_number: &id,
            phone: "+86 139-1234-5678",
            home_org_text: "灌南县某村党支部",
            division_code: "320576",
            ..Default::default()
        };
        let c = validate(&input, |d| d == "320576").unwrap();
        assert_eq!(c.name, "王强");
        assert_eq!(c.phone, "13912345678");
        assert_eq!(c.home, HomeClaim::Text("灌南县某村党支部".into()));
        let c = validate(&CheckinInput { home_org_code: "GN-01-01", ..input }, |_| true).unwrap();
        assert_eq!(c.home, HomeClaim::Code("GN-01-01".into()));
    }

    #[test]
    fn each_missing_or_wrong_field_is_named() {
        let mut id = valid_id();
        id.replace_range(17.., if id.ends_with('0') { "1" } else { "0" });
        let input =
            CheckinInput { id_number: &id, phone: "051883212345", division_code: "999999", ..Default::default() };
        let e = validate(&input, |_| false).unwrap_err();
        assert_eq!(e.get("name"), Some("required"));
        assert_eq!(e.get("id_number"), Some("id_number.check_digit"));
        assert_eq!(e.get("phone"), Some("checkin.phone_mobile"));
        assert_eq!(e.get("home_org_code"), Some("checkin.home_required"));
        assert_eq!(e.get("division_code"), Some("unknown"));
    }

    #[test]
    fn request_keys_and_codes() {
        assert_eq!(request_key(" 3f1c9a7e-aa "), Some("3f1c9a7e-aa"));
        assert_eq!(request_key("short"), None);
        assert_eq!(request_key("has space in it"), None);
        assert_eq!(code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(code("12345"), None);
        assert_eq!(code("12345a"), None);
    }

    #[test]
    fn suggestions_rank_home_stationed_workplace_and_nearness() {
        let seeker = Seeker {
            division: "320576001",
            home_county: Some("320724"),
            employer: "金鸡湖大厦某科技公司",
            occupation: "快递员",
            address: "",
        };
        let place = |division, kind, name, root| Place { division, kind, name, root_division: root };
        let stationed =
            suggest(&seeker, &place("320576", OrgKind::Stationed, "灌南县驻苏州流动党员党委", "320724")).unwrap();
        let building = suggest(&seeker, &place("320576", OrgKind::Building, "金鸡湖大厦联合党支部", "320576")).unwrap();
        let street = suggest(&seeker, &place("320576001", OrgKind::Ordinary, "某社区党支部", "320576")).unwrap();
        let city = suggest(&seeker, &place("320505", OrgKind::Ordinary, "某党支部", "320505")).unwrap();
        assert_eq!(stationed.reasons, vec![Reason::HomeStationed, Reason::SameCounty]);
        assert_eq!(building.reasons, vec![Reason::Workplace, Reason::SameCounty]);
        assert_eq!(street.reasons, vec![Reason::SameStreet]);
        assert_eq!(city.reasons, vec![Reason::SameCity]);
        assert!(stationed.score > building.score && building.score > street.score && street.score > city.score);
        // Another province's stationed organization of another county: nothing ties them.
        assert_eq!(suggest(&seeker, &place("310106", OrgKind::Stationed, "某县驻上海党支部", "321311")), None);
        // A market elsewhere in the city whose name shares nothing with the workplace.
        let market = suggest(&seeker, &place("320508", OrgKind::Market, "朝阳农贸市场党支部", "320508")).unwrap();
        assert_eq!(market.reasons, vec![Reason::SameCity]);
    }
}
