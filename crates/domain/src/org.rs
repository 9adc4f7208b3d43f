//! The organization tree. Each organization stores a materialized path: the
//! concatenation of its ancestors' ids and its own, each as a fixed-width decimal
//! segment, so that a subtree is one index range `path >= p AND path < p || '~'`.

use crate::validation::{self, FieldErrors};
use crate::{OrgKind, OrgLevel};

pub const SEGMENT_WIDTH: usize = 10;

pub fn segment(id: i64) -> String {
    format!("{id:0width$}", width = SEGMENT_WIDTH)
}

pub fn child_path(parent_path: Option<&str>, id: i64) -> String {
    format!("{}{}", parent_path.unwrap_or(""), segment(id))
}

/// The bounds of the subtree rooted at `path` (the root included).
pub fn subtree_range(path: &str) -> (String, String) {
    (path.to_string(), format!("{path}~"))
}

/// The bounds of the subtree at `root`, or of every path when `None` (a caller who sees
/// everything).
pub fn scope_range(root: Option<&str>) -> (String, String) {
    match root {
        Some(r) => subtree_range(r),
        None => (String::new(), "\u{10FFFF}".to_string()),
    }
}

pub fn depth(path: &str) -> usize {
    path.len() / SEGMENT_WIDTH
}

pub fn is_within(path: &str, root_path: &str) -> bool {
    path.starts_with(root_path)
}

/// The ids on a path, root first.
pub fn ids(path: &str) -> Vec<i64> {
    path.as_bytes().chunks(SEGMENT_WIDTH).filter_map(|c| std::str::from_utf8(c).ok()?.parse().ok()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("an organization cannot be moved under itself or its descendants")]
    Cycle,
    #[error("a dissolved organization cannot receive children")]
    ParentDissolved,
}

impl MoveError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Cycle => "org.move.cycle",
            Self::ParentDissolved => "org.move.parent_dissolved",
        }
    }
}

/// Checks a move of the subtree at `path` under `new_parent_path`.
pub fn check_move(path: &str, new_parent_path: &str, parent_active: bool) -> Result<(), MoveError> {
    if is_within(new_parent_path, path) {
        return Err(MoveError::Cycle);
    }
    if !parent_active {
        return Err(MoveError::ParentDissolved);
    }
    Ok(())
}

/// Rewrites a descendant's path after its subtree root moved from `old_root` to `new_root`.
pub fn rebase(path: &str, old_root: &str, new_root: &str) -> Option<String> {
    path.strip_prefix(old_root).map(|rest| format!("{new_root}{rest}"))
}

/// Organization codes are stable identifiers chosen by people: letters, digits, `-` and `_`.
pub fn valid_code(code: &str) -> bool {
    (2..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A validated organization as entered in a form.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgFields {
    pub name: String,
    pub level: OrgLevel,
    pub kind: OrgKind,
    pub division_code: String,
    pub address: Option<String>,
    pub phone: Option<String>,
}

/// Raw form or JSON input for an organization.
#[derive(Debug, Clone, Default)]
pub struct OrgInput<'a> {
    pub name: &'a str,
    pub level: &'a str,
    pub kind: &'a str,
    pub division_code: &'a str,
    pub address: &'a str,
    pub phone: &'a str,
}

/// Validates an organization; `division_known` answers whether a division code exists.
pub fn validate(input: &OrgInput, division_known: impl Fn(&str) -> bool) -> Result<OrgFields, FieldErrors> {
    let mut e = FieldErrors::default();
    let name = validation::text(&mut e, "name", input.name, true, 100);
    let level = OrgLevel::from_code(input.level);
    if level.is_none() {
        e.add("level", "invalid");
    }
    let kind = OrgKind::from_code(input.kind);
    if kind.is_none() {
        e.add("kind", "invalid");
    }
    let division = input.division_code.trim();
    if division.is_empty() {
        e.add("division_code", "required");
    } else if !division_known(division) {
        e.add("division_code", "unknown");
    }
    let address = validation::text(&mut e, "address", input.address, false, 200);
    let phone = if input.phone.trim().is_empty() {
        None
    } else {
        let p = validation::phone(input.phone);
        if p.is_none() {
            e.add("phone", "invalid");
        }
        p
    };
    if !e.is_empty() {
        return Err(e);
    }
    Ok(OrgFields {
        name: name.unwrap_or_default(),
        level: level.unwrap_or(OrgLevel::Branch),
        kind: kind.unwrap_or(OrgKind::Ordinary),
        division_code: division.to_string(),
        address,
        phone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_and_ranges_contain_descendants_only() {
        let root = child_path(None, 1);
        let child = child_path(Some(&root), 23);
        let sibling = child_path(None, 2);
        let (lo, hi) = subtree_range(&root);
        assert!(child >= lo && child < hi);
        assert!(root >= lo && root < hi);
        assert!(!(sibling >= lo && sibling < hi));
        assert_eq!(scope_range(Some(&root)), (lo, hi));
        let (all_lo, all_hi) = scope_range(None);
        assert!([&root, &child, &sibling].iter().all(|p| **p >= all_lo && **p < all_hi));
        assert_eq!(ids(&child), vec![1, 23]);
        assert_eq!(depth(&child), 2);
    }

    #[test]
    fn moving_under_own_descendant_is_a_cycle() {
        let a = child_path(None, 1);
        let b = child_path(Some(&a), 2);
        let c = child_path(Some(&b), 3);
        assert_eq!(check_move(&b, &c, true), Err(MoveError::Cycle));
        assert_eq!(check_move(&b, &b, true), Err(MoveError::Cycle));
        assert_eq!(check_move(&c, &a, true), Ok(()));
        assert_eq!(check_move(&c, &a, false), Err(MoveError::ParentDissolved));
    }

    #[test]
    fn rebase_moves_descendants() {
        let old = child_path(Some(&segment(1)), 2);
        let new = child_path(Some(&segment(9)), 2);
        let d = format!("{old}{}", segment(5));
        assert_eq!(rebase(&d, &old, &new), Some(format!("{new}{}", segment(5))));
        assert_eq!(rebase(&segment(7), &old, &new), None);
    }

    #[test]
    fn validation_names_each_bad_field() {
        let input = OrgInput {
            name: "",
            level: "x",
            kind: "building",
            division_code: "999999",
            phone: "12",
            ..Default::default()
        };
        let e = validate(&input, |c| c == "320724").unwrap_err();
        assert_eq!(e.get("name"), Some("required"));
        assert_eq!(e.get("level"), Some("invalid"));
        assert_eq!(e.get("kind"), None);
        assert_eq!(e.get("division_code"), Some("unknown"));
        assert_eq!(e.get("phone"), Some("invalid"));
    }

    #[test]
    fn codes_are_restricted() {
        assert!(valid_code("GN-001"));
        assert!(!valid_code("a"));
        assert!(!valid_code("有中文"));
    }
}
