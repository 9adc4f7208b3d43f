//! Screening campaigns (动态排查): rosters from other departments compared with the
//! registry of a region. The rules over values: a campaign's fields, what a matched row
//! means for the region, and the review's decisions. The matching itself is `kite-screen`.

use chrono::NaiveDate;

use crate::validation::{self, FieldErrors};
use crate::{org, Mobility};

/// What a roster row turned out to be for the region screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A member who lost contact, found again.
    LostContactFound,
    /// A member recorded in the region or checked in to it.
    KnownHere,
    /// A registered member living in the region who never checked in: to contact.
    CandidateInflow,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::LostContactFound => "lost_contact_found",
            Outcome::KnownHere => "known_here",
            Outcome::CandidateInflow => "candidate_inflow",
        }
    }

    pub fn from_code(code: &str) -> Option<Outcome> {
        [Outcome::LostContactFound, Outcome::KnownHere, Outcome::CandidateInflow].into_iter().find(|o| o.code() == code)
    }

    /// What a member found means for the region at `place` (a path).
    pub fn of(mobility: &str, org_path: &str, inflow_path: Option<&str>, place: &str) -> Outcome {
        let here = |path: &str| org::is_within(path, place);
        if mobility == Mobility::LostContact.code() {
            Outcome::LostContactFound
        } else if here(org_path) || inflow_path.is_some_and(here) {
            Outcome::KnownHere
        } else {
            Outcome::CandidateInflow
        }
    }
}

/// A reviewer's decision on a matched row. Accepting creates the follow-up; nothing is
/// merged into member records either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accepted,
    Rejected,
}

impl Decision {
    pub fn code(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
        }
    }

    pub fn from_code(code: &str) -> Option<Decision> {
        match code.trim() {
            "accepted" | "accept" => Some(Decision::Accepted),
            "rejected" | "reject" => Some(Decision::Rejected),
            _ => None,
        }
    }
}

/// A campaign as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignInput<'a> {
    pub name: &'a str,
    pub starts_on: &'a str,
    pub ends_on: &'a str,
}

/// A name and a period that ends on or after it starts.
pub fn validate(input: &CampaignInput) -> Result<Campaign, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = validation::text(&mut e, "name", input.name, true, 100);
    let starts = validation::date(&mut e, "starts_on", input.starts_on, true);
    let ends = validation::date(&mut e, "ends_on", input.ends_on, true);
    if let (Some(s), Some(t)) = (starts, ends) {
        if t < s {
            e.add("ends_on", "screening.ends_before_start");
        }
    }
    match (name, starts, ends) {
        (Some(name), Some(starts_on), Some(ends_on)) if e.is_empty() => Ok(Campaign { name, starts_on, ends_on }),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_for_the_region() {
        let place = "0000000002";
        let here = "00000000020000000005";
        let home = "00000000010000000003";
        assert_eq!(Outcome::of("lost_contact", home, None, place), Outcome::LostContactFound);
        assert_eq!(Outcome::of("resident", here, None, place), Outcome::KnownHere);
        assert_eq!(Outcome::of("checked_in", home, Some(here), place), Outcome::KnownHere);
        assert_eq!(Outcome::of("not_checked_in", home, None, place), Outcome::CandidateInflow);
        for o in [Outcome::LostContactFound, Outcome::KnownHere, Outcome::CandidateInflow] {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
    }

    #[test]
    fn campaigns_and_decisions() {
        let ok =
            validate(&CampaignInput { name: "2026年冬季排查", starts_on: "2026-11-01", ends_on: "2026-12-31" });
        assert_eq!(ok.map(|c| c.name), Ok("2026年冬季排查".into()));
        let e = validate(&CampaignInput { name: "", starts_on: "2026-12-01", ends_on: "2026-11-01" }).unwrap_err();
        assert_eq!((e.get("name"), e.get("ends_on")), (Some("required"), Some("screening.ends_before_start")));
        assert_eq!(Decision::from_code("accept"), Some(Decision::Accepted));
        assert_eq!(Decision::from_code("maybe"), None);
    }
}
