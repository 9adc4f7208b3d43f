//! The service network's points (市级中心 › 区镇驿站 › 村社窗口 › 小区点位) as entered in a form.

use crate::validation::{self, FieldErrors};
use crate::ServicePointLevel;

/// Raw form or JSON input for a service point.
#[derive(Debug, Clone, Default)]
pub struct PointInput<'a> {
    /// Chosen once, at creation (letters, digits, `-`, `_`); ignored on updates.
    pub code: &'a str,
    pub name: &'a str,
    pub level: &'a str,
    /// The point it belongs to (a station under a centre, …); empty for a top point.
    pub parent_code: &'a str,
    /// The organization that runs it.
    pub org_code: &'a str,
    pub division_code: &'a str,
    pub address: &'a str,
    pub hotline: &'a str,
    pub opening_hours: &'a str,
    /// `active` or `closed` (a closed point's check-in link stops working).
    pub status: &'a str,
}

/// A validated point; the parent and the organization are still to be found by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFields {
    /// Empty on updates.
    pub code: String,
    pub name: String,
    pub level: ServicePointLevel,
    pub parent_code: Option<String>,
    pub org_code: String,
    pub division_code: String,
    pub address: Option<String>,
    pub hotline: Option<String>,
    pub opening_hours: Option<String>,
    pub active: bool,
}

fn rank(level: ServicePointLevel) -> u8 {
    match level {
        ServicePointLevel::Centre => 0,
        ServicePointLevel::Station => 1,
        ServicePointLevel::Window => 2,
        ServicePointLevel::Point => 3,
    }
}

/// A point sits under one of a higher level: a station under a centre, a window under a
/// centre or a station, and so on.
pub fn fits_under(parent: ServicePointLevel, child: ServicePointLevel) -> bool {
    rank(parent) < rank(child)
}

/// Validates a point; `new` also checks the code, which is set only at creation.
pub fn validate(
    input: &PointInput,
    new: bool,
    division_known: impl Fn(&str) -> bool,
) -> Result<PointFields, FieldErrors> {
    let mut e = FieldErrors::default();
    let code = if new { input.code.trim() } else { "" };
    if new && code.is_empty() {
        e.add("code", "required");
    } else if new && !crate::org::valid_code(code) {
        e.add("code", "invalid");
    }
    let name = validation::text(&mut e, "name", input.name, true, 100);
    let level = ServicePointLevel::from_code(input.level.trim());
    if level.is_none() {
        e.add("level", if input.level.trim().is_empty() { "required" } else { "invalid" });
    }
    let parent_code = validation::text(&mut e, "parent_code", input.parent_code, false, 32);
    let org_code = validation::text(&mut e, "org_code", input.org_code, true, 32);
    let division = input.division_code.trim();
    if division.is_empty() {
        e.add("division_code", "required");
    } else if !division_known(division) {
        e.add("division_code", "unknown");
    }
    let address = validation::text(&mut e, "address", input.address, false, 200);
    let hotline = match input.hotline.trim() {
        "" => None,
        s => {
            let p = validation::phone(s);
            if p.is_none() {
                e.add("hotline", "invalid");
            }
            p
        }
    };
    let opening_hours = validation::text(&mut e, "opening_hours", input.opening_hours, false, 100);
    let active = match input.status.trim() {
        "" | "active" => true,
        "closed" => false,
        _ => {
            e.add("status", "invalid");
            true
        }
    };
    let (Some(name), Some(level), Some(org_code)) = (name, level, org_code) else {
        return Err(e);
    };
    e.into_result(PointFields {
        code: code.to_string(),
        name,
        level,
        parent_code,
        org_code,
        division_code: division.to_string(),
        address,
        hotline,
        opening_hours,
        active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_nest_downwards_only() {
        use ServicePointLevel::*;
        assert!(fits_under(Centre, Station) && fits_under(Centre, Point) && fits_under(Window, Point));
        assert!(!fits_under(Station, Station) && !fits_under(Point, Window) && !fits_under(Station, Centre));
    }

    #[test]
    fn each_field_is_checked() {
        let ok = PointInput {
            code: "DP1",
            name: "狮山党群驿站",
            level: "station",
            org_code: "DST-B1",
            division_code: "320505",
            hotline: "0512-6000 0001",
            ..Default::default()
        };
        let p = validate(&ok, true, |d| d == "320505").unwrap();
        assert_eq!((p.hotline.as_deref(), p.active, p.parent_code), (Some("051260000001"), true, None));
        let bad = PointInput {
            code: "站点",
            name: "",
            level: "kiosk",
            division_code: "999999",
            hotline: "12",
            status: "gone",
            ..ok
        };
        let e = validate(&bad, true, |d| d == "320505").unwrap_err();
        assert!(validate(&bad, false, |d| d == "320505").unwrap_err().get("code").is_none());
        for (field, code) in [
            ("code", "invalid"),
            ("name", "required"),
            ("level", "invalid"),
            ("division_code", "unknown"),
            ("hotline", "invalid"),
            ("status", "invalid"),
        ] {
            assert_eq!(e.get(field), Some(code), "{field}");
        }
        let closed = PointInput { status: "closed", ..ok };
        assert!(!validate(&closed, false, |_| true).unwrap().active);
    }
}
