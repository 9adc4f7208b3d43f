//! The access policy: who may do what to which organization or member.
//!
//! This is the only place where the rules are written. The storage layer's guarded
//! API asks [`decide`] before every read or change and turns [`Principal::member_scope`]
//! into the SQL filter of every list, so no handler can reach outside a caller's scope.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::org;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System administrator: everything.
    Admin,
    /// Organization administrator (组织部 or 党委 staff): their subtree, including its tree.
    OrgAdmin,
    /// Branch secretary: the members of their subtree.
    Secretary,
    /// Service-point staff: browse organizations to guide members, take check-ins at the counter.
    ServiceStaff,
    /// A member: their own record only.
    Member,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::OrgAdmin, Role::Secretary, Role::ServiceStaff, Role::Member];

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::OrgAdmin => "org_admin",
            Role::Secretary => "secretary",
            Role::ServiceStaff => "service_staff",
            Role::Member => "member",
        }
    }

    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether the role may take `action` at all, somewhere in its scope. Pages use it
    /// to offer only the controls that can work; [`decide`] still rules on each target.
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            // Listed, not a wildcard: a new action is refused until someone grants it here.
            Role::OrgAdmin => matches!(
                action,
                ReadOrg
                    | WriteOrg
                    | MoveOrg
                    | ReadMember
                    | WriteMember
                    | ViewFullId
                    | TakeCheckin
                    | ReviewCheckin
                    | ReadFlows
                    | EvaluateInflow
                    | ReadAgreements
                    | WriteAgreements
                    | Transfer
                    | Certificates
                    | Screen
                    | ManageAccounts
            ),
            Role::Secretary => matches!(
                action,
                ReadOrg
                    | ReadMember
                    | WriteMember
                    | ViewFullId
                    | TakeCheckin
                    | ReviewCheckin
                    | ReadFlows
                    | EvaluateInflow
                    | ReadAgreements
                    | Transfer
                    | Certificates
            ),
            Role::ServiceStaff => matches!(action, ReadOrg | TakeCheckin),
            Role::Member => matches!(action, ReadMember | ViewFullId),
        }
    }

    /// Whether an account of this role may give `role` to an account it manages: an
    /// organization administrator every role but the system administrator's.
    pub fn may_grant(self, role: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::OrgAdmin => role != Role::Admin,
            _ => false,
        }
    }

    /// Roles bound to an organization must name one when the account is created.
    pub fn needs_org(self) -> bool {
        matches!(self, Role::OrgAdmin | Role::Secretary | Role::ServiceStaff)
    }
}

/// The authenticated caller, as the access layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// Materialized path of the organization the account is bound to.
    pub org_path: Option<String>,
    /// The member record of a member account.
    pub member_id: Option<i64>,
    /// The service point a staff account works at.
    pub service_point_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadOrg,
    /// Create a child, edit, dissolve.
    WriteOrg,
    /// Move an organization (checked on both the subtree and the new parent).
    MoveOrg,
    ReadMember,
    /// Create, edit, record a departure.
    WriteMember,
    /// See the full identity number (always audited).
    ViewFullId,
    /// Enter a check-in at the counter for an organization (the target) or a service point.
    TakeCheckin,
    /// Confirm or reject a check-in: the outflow side for its members, the inflow side
    /// for check-ins whose home side is not in the system.
    ReviewCheckin,
    /// The outflow and inflow lists of a subtree, and the flows in them.
    ReadFlows,
    /// Rate a member checked in to the subtree (decided on the inflow organization).
    EvaluateInflow,
    /// See the co-management agreements a subtree is party to, with their contacts and files.
    ReadAgreements,
    /// Record, amend and attach files to an agreement the subtree is party to.
    WriteAgreements,
    /// Ask for and act on transfers of the formal record, for the side the subtree is on.
    Transfer,
    /// Activity certificates: issue and act on them for the subtree's members (decided on
    /// the issuing committee); check them and ask for them in reverse for members checked
    /// in to the subtree (decided on the inflow organization).
    Certificates,
    /// Run screening campaigns over the subtree's registry and review their matches: the
    /// screening permission of a region, held by its organization administrators.
    Screen,
    /// Create the staff and member accounts of the subtree, reset their passwords, disable
    /// them (decided on the account's organization; see [`Role::may_grant`]).
    ManageAccounts,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::ReadOrg => "org.read",
            Action::WriteOrg => "org.write",
            Action::MoveOrg => "org.move",
            Action::ReadMember => "member.read",
            Action::WriteMember => "member.write",
            Action::ViewFullId => "member.view_id",
            Action::TakeCheckin => "checkin.take",
            Action::ReviewCheckin => "checkin.review",
            Action::ReadFlows => "flow.read",
            Action::EvaluateInflow => "inflow.evaluate",
            Action::ReadAgreements => "agreement.read",
            Action::WriteAgreements => "agreement.write",
            Action::Transfer => "transfer.act",
            Action::Certificates => "certificate.act",
            Action::Screen => "screen.run",
            Action::ManageAccounts => "account.manage",
        }
    }
}

/// What an action is aimed at: the organization's path (for a member, the path of
/// the organization holding the formal record) and, for members, the member id.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub org_path: &'a str,
    pub member_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; `hide` means answer as if the thing did not exist.
    Deny {
        hide: bool,
    },
}

/// The member rows a caller may see in lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberScope {
    All,
    Subtree(String),
    Only(i64),
    Nothing,
}

/// The check-ins a caller may see in lists: those of members from the subtree (outflow
/// side), those made to the subtree (inflow side), or those taken at one service point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckinScope {
    All,
    Subtree(String),
    Point(i64),
    Nothing,
}

impl Principal {
    pub fn checkin_scope(&self) -> CheckinScope {
        match (self.role, &self.org_path, self.service_point_id) {
            (Role::Admin, _, _) => CheckinScope::All,
            (Role::ServiceStaff, _, Some(point)) => CheckinScope::Point(point),
            (Role::OrgAdmin | Role::Secretary | Role::ServiceStaff, Some(p), _) => CheckinScope::Subtree(p.clone()),
            _ => CheckinScope::Nothing,
        }
    }

    /// Whether a check-in is in the caller's view: a subtree sees the check-ins of its
    /// members (home side) and those made to it (inflow side), staff of a point those
    /// taken at the point.
    pub fn sees_checkin(&self, home_path: Option<&str>, inflow_path: &str, point: Option<i64>) -> bool {
        match self.checkin_scope() {
            CheckinScope::All => true,
            CheckinScope::Subtree(root) => {
                org::is_within(inflow_path, &root) || home_path.is_some_and(|h| org::is_within(h, &root))
            }
            CheckinScope::Point(id) => point == Some(id),
            CheckinScope::Nothing => false,
        }
    }

    /// From which side the caller sees a flow: the outflow side (the member's formal
    /// organization, with the whole record) before the inflow side (only what managing
    /// the member there needs); `None` when neither is in the caller's view.
    pub fn flow_side(&self, outflow_path: &str, inflow_path: Option<&str>) -> Option<crate::flow::Side> {
        let sees = |path: &str| decide(self, Action::ReadFlows, Target { org_path: path, member_id: None });
        if sees(outflow_path) == Decision::Allow {
            Some(crate::flow::Side::Outflow)
        } else if inflow_path.is_some_and(|p| sees(p) == Decision::Allow) {
            Some(crate::flow::Side::Inflow)
        } else {
            None
        }
    }

    /// Whether the caller may take `action` on an agreement: on behalf of either party
    /// that is an organization in the system.
    pub fn on_agreement(&self, action: Action, outflow_path: Option<&str>, inflow_path: Option<&str>) -> bool {
        [outflow_path, inflow_path]
            .into_iter()
            .flatten()
            .any(|path| decide(self, action, Target { org_path: path, member_id: None }) == Decision::Allow)
    }

    /// The sides of a transfer the caller acts for: the sending organization's subtree,
    /// the receiving one's, the member themself.
    pub fn transfer_sides(&self, from_path: &str, to_path: Option<&str>, member_id: i64) -> Vec<crate::transfer::Side> {
        use crate::transfer::Side;
        let on =
            |path: &str| decide(self, Action::Transfer, Target { org_path: path, member_id: None }) == Decision::Allow;
        let mut sides = Vec::new();
        if on(from_path) {
            sides.push(Side::Sending);
        }
        if to_path.is_some_and(on) {
            sides.push(Side::Receiving);
        }
        if self.role == Role::Member && self.member_id == Some(member_id) {
            sides.push(Side::Member);
        }
        sides
    }

    /// Whether the caller approves at the second level for a sending organization: the
    /// committee above it, not the organization itself.
    pub fn above(&self, from_path: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::OrgAdmin => self.org_path.as_deref().is_some_and(|root| root != from_path && self.within(from_path)),
            _ => false,
        }
    }

    pub fn member_scope(&self) -> MemberScope {
        match (self.role, &self.org_path, self.member_id) {
            (Role::Admin, _, _) => MemberScope::All,
            (Role::OrgAdmin | Role::Secretary, Some(p), _) => MemberScope::Subtree(p.clone()),
            (Role::Member, _, Some(id)) => MemberScope::Only(id),
            _ => MemberScope::Nothing,
        }
    }

    /// The subtree whose organizations the caller may browse; `None` means all.
    pub fn org_root(&self) -> Option<&str> {
        match self.role {
            Role::Admin => None,
            _ => Some(self.org_path.as_deref().unwrap_or("~")),
        }
    }

    fn within(&self, path: &str) -> bool {
        self.org_path.as_deref().is_some_and(|root| org::is_within(path, root))
    }
}

/// Decides one action. Members outside scope are hidden (their existence is personal
/// data); organizations are not secret, so refusals on them are plain.
pub fn decide(p: &Principal, action: Action, target: Target) -> Decision {
    let allowed = p.role.may(action)
        && match p.role {
            Role::Admin => true,
            // Moving the caller's own root would carry it outside their scope.
            Role::OrgAdmin if action == Action::MoveOrg => {
                p.within(target.org_path) && p.org_path.as_deref() != Some(target.org_path)
            }
            Role::OrgAdmin | Role::Secretary | Role::ServiceStaff => p.within(target.org_path),
            Role::Member => target.member_id.is_some() && target.member_id == p.member_id,
        };
    if allowed {
        Decision::Allow
    } else {
        let hide = matches!(
            action,
            Action::ReadMember
                | Action::WriteMember
                | Action::ViewFullId
                | Action::ReviewCheckin
                | Action::ReadFlows
                | Action::EvaluateInflow
                | Action::ReadAgreements
        );
        Decision::Deny { hide }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{child_path, segment};

    fn who(role: Role, org: Option<&str>, member: Option<i64>) -> Principal {
        Principal {
            user_id: 1,
            username: "u".into(),
            role,
            org_path: org.map(str::to_string),
            member_id: member,
            service_point_id: None,
        }
    }

    #[test]
    fn subtree_roles_stop_at_their_subtree() {
        let county = segment(1);
        let branch = child_path(Some(&county), 2);
        let other = segment(3);
        let admin = who(Role::OrgAdmin, Some(&county), None);
        let sec = who(Role::Secretary, Some(&branch), None);
        let m = |path| Target { org_path: path, member_id: Some(9) };
        assert_eq!(decide(&admin, Action::WriteMember, m(&branch)), Decision::Allow);
        assert_eq!(decide(&admin, Action::ReadMember, m(&other)), Decision::Deny { hide: true });
        assert_eq!(decide(&sec, Action::ViewFullId, m(&branch)), Decision::Allow);
        assert_eq!(decide(&sec, Action::ReadMember, m(&county)), Decision::Deny { hide: true });
        let o = |path| Target { org_path: path, member_id: None };
        assert_eq!(decide(&sec, Action::WriteOrg, o(&branch)), Decision::Deny { hide: false });
        assert_eq!(decide(&admin, Action::WriteOrg, o(&branch)), Decision::Allow);
        assert_eq!(decide(&admin, Action::MoveOrg, o(&county)), Decision::Deny { hide: false });
        assert_eq!(decide(&admin, Action::MoveOrg, o(&branch)), Decision::Allow);
    }

    #[test]
    fn members_see_only_themselves() {
        let p = who(Role::Member, None, Some(7));
        let path = segment(1);
        assert_eq!(decide(&p, Action::ReadMember, Target { org_path: &path, member_id: Some(7) }), Decision::Allow);
        assert_eq!(
            decide(&p, Action::ReadMember, Target { org_path: &path, member_id: Some(8) }),
            Decision::Deny { hide: true }
        );
        assert_eq!(
            decide(&p, Action::WriteMember, Target { org_path: &path, member_id: Some(7) }),
            Decision::Deny { hide: true }
        );
        assert_eq!(p.member_scope(), MemberScope::Only(7));
    }

    #[test]
    fn scopes_follow_roles() {
        assert_eq!(who(Role::Admin, None, None).member_scope(), MemberScope::All);
        assert_eq!(who(Role::ServiceStaff, Some("0000000001"), None).member_scope(), MemberScope::Nothing);
        assert_eq!(who(Role::Secretary, None, None).member_scope(), MemberScope::Nothing);
        assert_eq!(
            who(Role::Secretary, Some("0000000001"), None).member_scope(),
            MemberScope::Subtree("0000000001".into())
        );
    }

    #[test]
    fn a_flow_is_seen_from_the_outflow_side_first() {
        use crate::flow::Side;
        let (home, away, elsewhere) = (segment(1), segment(2), segment(3));
        let home_branch = child_path(Some(&home), 4);
        let away_branch = child_path(Some(&away), 5);
        let both = who(Role::Admin, None, None);
        assert_eq!(both.flow_side(&home_branch, Some(&away_branch)), Some(Side::Outflow));
        let out = who(Role::Secretary, Some(&home_branch), None);
        assert_eq!(out.flow_side(&home_branch, Some(&away_branch)), Some(Side::Outflow));
        let inflow = who(Role::OrgAdmin, Some(&away), None);
        assert_eq!(inflow.flow_side(&home_branch, Some(&away_branch)), Some(Side::Inflow));
        assert_eq!(inflow.flow_side(&home_branch, None), None);
        let other = who(Role::Secretary, Some(&elsewhere), None);
        assert_eq!(other.flow_side(&home_branch, Some(&away_branch)), None);
        let staff = who(Role::ServiceStaff, Some(&away), None);
        assert_eq!(staff.flow_side(&home_branch, Some(&away_branch)), None);
        let member = who(Role::Member, None, Some(9));
        assert_eq!(member.flow_side(&home_branch, Some(&away_branch)), None);
    }

    #[test]
    fn agreements_are_for_their_parties() {
        let (home, away, elsewhere) = (segment(1), segment(2), segment(3));
        let home_branch = child_path(Some(&home), 4);
        let (out, inflow) = (Some(home.as_str()), Some(away.as_str()));
        let admin_home = who(Role::OrgAdmin, Some(&home), None);
        assert!(admin_home.on_agreement(Action::WriteAgreements, out, inflow));
        assert!(admin_home.on_agreement(Action::WriteAgreements, None, Some(&home_branch)));
        let admin_away = who(Role::OrgAdmin, Some(&away), None);
        assert!(admin_away.on_agreement(Action::ReadAgreements, out, inflow));
        assert!(!admin_away.on_agreement(Action::ReadAgreements, out, None));
        // A branch is not a party to its county's agreement: it sees it as a partner only.
        let branch_secretary = who(Role::Secretary, Some(&home_branch), None);
        assert!(!branch_secretary.on_agreement(Action::ReadAgreements, out, inflow));
        let county_secretary = who(Role::Secretary, Some(&home), None);
        assert!(county_secretary.on_agreement(Action::ReadAgreements, out, inflow));
        assert!(!county_secretary.on_agreement(Action::WriteAgreements, out, inflow));
        assert!(!who(Role::OrgAdmin, Some(&elsewhere), None).on_agreement(Action::ReadAgreements, out, inflow));
        assert!(!who(Role::ServiceStaff, Some(&home), None).on_agreement(Action::ReadAgreements, out, inflow));
        assert!(!who(Role::Admin, None, None).on_agreement(Action::WriteAgreements, None, None));
        assert!(who(Role::Admin, None, None).on_agreement(Action::WriteAgreements, out, None));
    }

    #[test]
    fn service_staff_browse_but_never_touch_members() {
        let p = who(Role::ServiceStaff, Some("0000000001"), None);
        let t = Target { org_path: "0000000001", member_id: Some(1) };
        assert_eq!(decide(&p, Action::ReadOrg, t), Decision::Allow);
        assert_eq!(decide(&p, Action::ReadMember, t), Decision::Deny { hide: true });
        assert_eq!(decide(&p, Action::TakeCheckin, t), Decision::Allow);
        assert_eq!(decide(&p, Action::ReviewCheckin, t), Decision::Deny { hide: true });
        assert_eq!(p.checkin_scope(), CheckinScope::Subtree("0000000001".into()));
        let at_point = Principal { service_point_id: Some(4), ..p };
        assert_eq!(at_point.checkin_scope(), CheckinScope::Point(4));
    }

    #[test]
    fn check_ins_are_reviewed_inside_the_subtree_only() {
        let county = segment(1);
        let branch = child_path(Some(&county), 2);
        let sec = who(Role::Secretary, Some(&branch), None);
        let at = |path| Target { org_path: path, member_id: None };
        assert_eq!(decide(&sec, Action::ReviewCheckin, at(&branch)), Decision::Allow);
        assert_eq!(decide(&sec, Action::ReviewCheckin, at(&county)), Decision::Deny { hide: true });
        assert_eq!(
            decide(&who(Role::Member, None, Some(1)), Action::TakeCheckin, at(&branch)),
            Decision::Deny { hide: false }
        );
    }
}

/// Failed logins older than this no longer count.
pub const FAILURE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// How long a key is locked after `failures` failed logins: from the threshold on,
/// one minute, doubling with each further failure, at most an hour.
pub fn lockout(failures: i64, threshold: i64) -> Option<chrono::TimeDelta> {
    if failures < threshold {
        return None;
    }
    let doublings = (failures - threshold).min(6) as u32;
    Some(chrono::TimeDelta::minutes((1i64 << doublings).min(60)))
}

#[cfg(test)]
mod lockout_tests {
    use super::*;

    #[test]
    fn lockout_grows_and_caps() {
        assert_eq!(lockout(4, 5), None);
        assert_eq!(lockout(5, 5), Some(chrono::TimeDelta::minutes(1)));
        assert_eq!(lockout(7, 5), Some(chrono::TimeDelta::minutes(4)));
        assert_eq!(lockout(50, 5), Some(chrono::TimeDelta::minutes(60)));
    }
}
