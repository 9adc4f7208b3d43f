//! The closed vocabularies of the domain. Each value has a stable snake_case code,
//! stored in the database and used in the API; display names live in the server's
//! message catalogue under `enum.<type>.<code>`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

vocabulary!(
    /// 党委, 党总支, 党支部, 党小组.
    OrgLevel { Committee = "committee", GeneralBranch = "general_branch", Branch = "branch", Group = "group" }
);

vocabulary!(
    /// The kinds of organization that exist because members move.
    OrgKind {
        Ordinary = "ordinary",
        Building = "building",
        Market = "market",
        Industry = "industry",
        Project = "project",
        NewResident = "new_resident",
        Functional = "functional",
        Stationed = "stationed",
    }
);

vocabulary!(OrgStatus { Active = "active", Dissolved = "dissolved" });

vocabulary!(
    /// The service network's levels: 市级中心, 区镇驿站, 村社窗口, 小区点位.
    ServicePointLevel { Centre = "centre", Station = "station", Window = "window", Point = "point" }
);

vocabulary!(Gender { Male = "male", Female = "female" });

vocabulary!(
    /// Highest education completed.
    Education {
        Postgraduate = "postgraduate",
        Bachelor = "bachelor",
        College = "college",
        Secondary = "secondary",
        HighSchool = "high_school",
        JuniorOrBelow = "junior_or_below",
    }
);

vocabulary!(
    /// 正式党员 or 预备党员.
    MemberCategory { Full = "full", Probationary = "probationary" }
);

vocabulary!(
    /// Why a member left: 务工, 经商, 求学, 随迁, 其他.
    FlowReason { Work = "work", Business = "business", Study = "study", Family = "family", Other = "other" }
);

vocabulary!(
    /// The state of one period away from home.
    FlowStatus {
        NotCheckedIn = "not_checked_in",
        CheckedIn = "checked_in",
        Transferred = "transferred",
        Returned = "returned",
        LostContact = "lost_contact",
    }
);

impl FlowStatus {
    /// A flow that still binds the member to two places.
    pub fn is_open(self) -> bool {
        matches!(self, Self::NotCheckedIn | Self::CheckedIn | Self::LostContact)
    }
}

vocabulary!(
    /// How often inflow members are evaluated.
    EvaluationCycle { Quarter = "quarter", HalfYear = "half_year", Year = "year" }
);

vocabulary!(
    /// An inflow evaluation's result, in the grades of 民主评议党员: 优秀, 合格, 基本合格, 不合格.
    Rating {
        Excellent = "excellent",
        Qualified = "qualified",
        BasicallyQualified = "basically_qualified",
        Unqualified = "unqualified",
    }
);

vocabulary!(
    /// A member's current mobility, kept on the member row for filtering. `transferred_out`:
    /// the record went to an organization outside the system; kept as history, no longer
    /// counted or listed as a member here.
    Mobility {
        Resident = "resident",
        NotCheckedIn = "not_checked_in",
        CheckedIn = "checked_in",
        LostContact = "lost_contact",
        TransferredOut = "transferred_out",
    }
);

impl Mobility {
    pub fn from_open_flow(status: Option<FlowStatus>) -> Self {
        match status {
            Some(FlowStatus::NotCheckedIn) => Self::NotCheckedIn,
            Some(FlowStatus::CheckedIn) => Self::CheckedIn,
            Some(FlowStatus::LostContact) => Self::LostContact,
            _ => Self::Resident,
        }
    }

    pub fn is_away(self) -> bool {
        matches!(self, Self::NotCheckedIn | Self::CheckedIn | Self::LostContact)
    }
}

vocabulary!(
    /// Where a check-in stands. `pending` waits for the outflow side to confirm that the
    /// person is its member; `home_unknown` has no home side in the system and waits for a
    /// printed verification letter; `superseded` was replaced by a later check-in.
    CheckinStatus {
        Pending = "pending",
        HomeUnknown = "home_unknown",
        Confirmed = "confirmed",
        Rejected = "rejected",
        Superseded = "superseded",
    }
);

impl CheckinStatus {
    /// Still waiting for a decision.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Pending | Self::HomeUnknown)
    }
}

vocabulary!(
    /// How a check-in was entered: by the member on a phone, or by staff at a counter.
    CheckinChannel { SelfService = "self", Counter = "counter" }
);

/// The 56 recognised ethnic groups, by name, as entered on Chinese forms.
pub const ETHNICITIES: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for k in OrgKind::ALL {
            assert_eq!(OrgKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(OrgKind::from_code("nonsense"), None);
    }

    #[test]
    fn open_flows_make_a_member_away() {
        assert_eq!(Mobility::from_open_flow(Some(FlowStatus::CheckedIn)), Mobility::CheckedIn);
        assert_eq!(Mobility::from_open_flow(Some(FlowStatus::Returned)), Mobility::Resident);
        assert!(!Mobility::from_open_flow(None).is_away());
        assert!(FlowStatus::LostContact.is_open());
        assert!(!FlowStatus::Transferred.is_open());
    }
}

vocabulary!(
    /// How often the parties of a co-management agreement meet (工作共商).
    ConsultationCycle { Monthly = "monthly", Quarterly = "quarterly", HalfYear = "half_year", Year = "year" }
);

vocabulary!(
    /// Where a co-management agreement stands today, from its dates.
    AgreementStatus { Upcoming = "upcoming", Active = "active", Expired = "expired" }
);

vocabulary!(
    /// Where a transfer of the formal record stands: asked for, sent back for correction,
    /// approved at the first of two levels, approved with the introduction letter issued,
    /// the member received on the other side, done when the receipt is back; or refused,
    /// the letter expired, withdrawn.
    TransferStatus {
        Requested = "requested",
        Returned = "returned",
        FirstApproved = "first_approved",
        Approved = "approved",
        Received = "received",
        Done = "done",
        Refused = "refused",
        Expired = "expired",
        Withdrawn = "withdrawn",
    }
);

vocabulary!(
    /// Who asked for a transfer: the sending organization, the receiving one, or the member.
    TransferInitiator { Sending = "sending", Receiving = "receiving", Member = "member" }
);
