//! A synthetic demo region shaped like the seeds: outflow counties in northern
//! Jiangsu whose members work in Suzhou, Wuxi, Shanghai and Hangzhou, with building,
//! market, new-resident and stationed organizations. No real person's data: names are
//! drawn from common surname and given-name characters, identity numbers are
//! composed with real division codes, consistent birth dates and correct check digits.

pub mod screening;

use chrono::NaiveDate;
use kite_domain::agreement::{AgreementInput, PartyInput};
use kite_domain::checkin::{Checkin, HomeClaim, LinkKind};
use kite_domain::evaluation::EvaluationInput;
use kite_domain::flow::Departure;
use kite_domain::flow::Side;
use kite_domain::member::MemberFields;
use kite_domain::org::OrgFields;
use kite_domain::Rating;
use kite_domain::{
    id_number, Education, FlowReason, FlowStatus, Gender, MemberCategory, OrgKind, OrgLevel, ServicePointLevel,
};
use kite_store::{Client, FlowQuery, Guard, NewFlow, NewMember, NewOrg, NewServicePoint, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Surnames with rough relative frequencies (most common first).
const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 71),
    ("张", 69),
    ("刘", 53),
    ("陈", 45),
    ("杨", 30),
    ("黄", 24),
    ("赵", 20),
    ("吴", 20),
    ("周", 19),
    ("徐", 15),
    ("孙", 15),
    ("马", 12),
    ("朱", 12),
    ("胡", 11),
    ("郭", 11),
    ("何", 10),
    ("林", 9),
    ("高", 9),
    ("罗", 9),
    ("郑", 8),
    ("梁", 8),
    ("谢", 7),
    ("宋", 6),
    ("唐", 6),
    ("许", 6),
    ("韩", 6),
    ("冯", 5),
    ("邓", 5),
    ("曹", 5),
    ("彭", 4),
    ("曾", 4),
    ("肖", 4),
    ("田", 4),
    ("董", 4),
    ("潘", 3),
    ("袁", 3),
    ("蔡", 3),
    ("蒋", 3),
    ("余", 3),
    ("于", 3),
    ("杜", 3),
    ("叶", 3),
    ("程", 3),
    ("魏", 3),
    ("苏", 2),
    ("吕", 2),
    ("丁", 2),
    ("任", 2),
    ("卢", 2),
    ("姚", 2),
    ("沈", 2),
    ("钟", 2),
    ("姜", 2),
    ("崔", 2),
    ("谭", 2),
    ("陆", 2),
    ("范", 2),
    ("汪", 2),
    ("廖", 2),
    ("石", 2),
    ("金", 2),
    ("韦", 1),
    ("贾", 1),
    ("夏", 1),
    ("付", 1),
    ("方", 1),
    ("邹", 1),
    ("熊", 1),
    ("白", 1),
    ("孟", 1),
    ("秦", 1),
    ("邱", 1),
    ("侯", 1),
    ("江", 1),
    ("尹", 1),
    ("薛", 1),
    ("闫", 1),
    ("段", 1),
    ("雷", 1),
    ("龙", 1),
    ("黎", 1),
    ("史", 1),
    ("陶", 1),
    ("贺", 1),
    ("毛", 1),
    ("郝", 1),
    ("顾", 1),
];
const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "斌", "波", "宇",
    "浩", "建", "国", "峰", "亮", "林", "俊", "文", "龙", "海", "志", "春", "东", "晨", "阳", "凯", "鑫",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "玲", "燕", "萍", "红", "琳", "婷", "雪", "慧", "晶",
    "倩", "颖", "佳", "梅", "兰", "欣", "悦", "洁", "瑶", "琴", "云", "月", "丹", "莉", "璐", "妍", "露",
];
const STREETS: &[&str] =
    &["人民路", "建设路", "解放路", "中山路", "新华路", "长江路", "黄河路", "和平路", "幸福路", "工业园路"];
const EMPLOYERS: &[&str] = &[
    "苏州工业园区某电子有限公司",
    "无锡某物流有限公司",
    "上海某建设工程有限公司",
    "杭州某网络科技有限公司",
    "某外卖配送站",
    "某农贸市场",
    "某家政服务公司",
    "某商贸有限公司",
    "个体经营",
    "某律师事务所",
    "某民营诊所",
];
const OCCUPATIONS: &[&str] =
    &["工人", "快递员", "外卖骑手", "个体工商户", "技术员", "销售", "教师", "司机", "厨师", "建筑工人", "律师", "医生"];

/// Outflow counties (home side) and their town committees.
/// (code, committee name, division, towns as (division, name)).
type Home = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);
/// (code, committee name, division, branches as (code, name, kind, division)).
type Destination =
    (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str, OrgKind, &'static str)]);

const HOMES: &[Home] = &[
    (
        "GN",
        "中共灌南县委员会",
        "320724",
        &[
            ("320724100", "新安镇"),
            ("320724101", "堆沟港镇"),
            ("320724102", "田楼镇"),
            ("320724103", "北陈集镇"),
            ("320724104", "张店镇"),
        ],
    ),
    (
        "SY",
        "中共宿迁市宿豫区委员会",
        "321311",
        &[("321311001", "顺河街道"), ("321311105", "仰化镇"), ("321311106", "大兴镇"), ("321311108", "来龙镇")],
    ),
    (
        "PZ",
        "中共邳州市委员会",
        "320382",
        &[("320382002", "运河街道"), ("320382103", "官湖镇"), ("320382104", "四户镇"), ("320382105", "宿羊山镇")],
    ),
];

/// Destinations (inflow side): (code, committee, division, branches: (code, name, kind, division)).
const DESTS: &[Destination] = &[
    (
        "SZ",
        "中共苏州工业园区工作委员会",
        "320576",
        &[
            ("SZ-LY01", "金鸡湖大厦联合党支部", OrgKind::Building, "320576"),
            ("SZ-HY01", "园区快递物流行业党支部", OrgKind::Industry, "320576"),
            ("SZ-XC01", "娄葑新市民党支部", OrgKind::NewResident, "320576"),
        ],
    ),
    (
        "WX",
        "中共无锡市梁溪区委员会",
        "320213",
        &[
            ("WX-SC01", "朝阳农贸市场党支部", OrgKind::Market, "320213"),
            ("WX-LY01", "恒隆广场楼宇联合党支部", OrgKind::Building, "320213"),
            ("WX-XM01", "地铁三号线项目临时党支部", OrgKind::Project, "320213"),
        ],
    ),
    (
        "SH",
        "中共上海市静安区江宁路街道工作委员会",
        "310106",
        &[
            ("SH-LY01", "嘉里中心楼宇党支部", OrgKind::Building, "310106"),
            ("SH-GN01", "灌南县驻上海流动党员党支部", OrgKind::Stationed, "310106"),
            ("SH-GN02", "外卖骑手功能型党支部", OrgKind::Functional, "310106"),
        ],
    ),
    (
        "HZ",
        "中共杭州市西湖区委员会",
        "330106",
        &[
            ("HZ-SC01", "四季青服装市场党支部", OrgKind::Market, "330106"),
            ("HZ-HY01", "西湖区律师行业党委第一支部", OrgKind::Industry, "330106"),
        ],
    ),
];

fn fields(name: &str, level: OrgLevel, kind: OrgKind, division: &str, address: String) -> OrgFields {
    OrgFields { name: name.into(), level, kind, division_code: division.into(), address: Some(address), phone: None }
}

fn org(code: String, parent: Option<&str>, f: OrgFields) -> NewOrg {
    NewOrg { code, parent_code: parent.map(str::to_string), fields: f }
}

/// The organizations of the demo region, parents first.
pub fn organizations() -> Vec<NewOrg> {
    let mut v = Vec::new();
    for (code, name, division, towns) in HOMES {
        v.push(org(
            code.to_string(),
            None,
            fields(name, OrgLevel::Committee, OrgKind::Ordinary, division, "县政府大院".into()),
        ));
        for (i, (town_div, town)) in towns.iter().enumerate() {
            let tcode = format!("{code}-{:02}", i + 1);
            v.push(org(
                tcode.clone(),
                Some(code),
                fields(
                    &format!("中共{town}委员会"),
                    OrgLevel::Committee,
                    OrgKind::Ordinary,
                    town_div,
                    format!("{town}政府"),
                ),
            ));
            for j in 1..=6 {
                let bcode = format!("{tcode}-{j:02}");
                let village = ["东", "西", "南", "北", "中", "新"][j - 1];
                v.push(org(
                    bcode,
                    Some(&tcode),
                    fields(
                        &format!("{town}{village}村党支部"),
                        OrgLevel::Branch,
                        OrgKind::Ordinary,
                        town_div,
                        format!("{town}{village}村村委会"),
                    ),
                ));
            }
        }
        // A stationed committee of the home county in Suzhou (驻外流动党组织).
        v.push(org(
            format!("{code}-ZS"),
            Some(code),
            fields(
                &format!("{}驻苏州流动党员党委", &name[6..name.len() - 9]),
                OrgLevel::Committee,
                OrgKind::Stationed,
                "320576",
                "苏州工业园区星湖街".into(),
            ),
        ));
    }
    for (code, name, division, branches) in DESTS {
        v.push(org(
            code.to_string(),
            None,
            fields(name, OrgLevel::Committee, OrgKind::Ordinary, division, "区行政中心".into()),
        ));
        for (bcode, bname, kind, bdiv) in *branches {
            v.push(org(
                bcode.to_string(),
                Some(code),
                fields(bname, OrgLevel::Branch, *kind, bdiv, format!("{bname}党群服务站")),
            ));
        }
    }
    v
}

/// (code, parent, name, level, organization running it, division, address).
type PointRow =
    (&'static str, Option<&'static str>, &'static str, ServicePointLevel, &'static str, &'static str, &'static str);

/// The service network of the demo region.
const SERVICE_POINTS: &[PointRow] = &[
    ("GN-C", None, "灌南县流动党员服务中心", ServicePointLevel::Centre, "GN", "320724", "灌南县新安镇人民中路"),
    ("SY-C", None, "宿迁市宿豫区流动党员服务中心", ServicePointLevel::Centre, "SY", "321311", "宿豫区洪泽湖东路"),
    ("PZ-C", None, "邳州市流动党员服务中心", ServicePointLevel::Centre, "PZ", "320382", "邳州市运河街道建设路"),
    ("SZ-C", None, "苏州工业园区流动党员服务中心", ServicePointLevel::Centre, "SZ", "320576", "苏州工业园区现代大道"),
    ("SZ-S01", Some("SZ-C"), "金鸡湖商务区党群驿站", ServicePointLevel::Station, "SZ-LY01", "320576", "金鸡湖大厦一楼"),
    ("SZ-S02", Some("SZ-C"), "娄葑新市民驿站", ServicePointLevel::Station, "SZ-XC01", "320576", "娄葑街道东环路"),
    (
        "SZ-W01",
        Some("SZ-S01"),
        "快递物流行业服务窗口",
        ServicePointLevel::Window,
        "SZ-HY01",
        "320576",
        "园区物流园综合楼",
    ),
    (
        "SZ-P01",
        Some("SZ-S02"),
        "星湖街小区党员服务点",
        ServicePointLevel::Point,
        "SZ-XC01",
        "320576",
        "星湖街社区服务中心",
    ),
    ("WX-S01", None, "梁溪区流动党员驿站", ServicePointLevel::Station, "WX", "320213", "梁溪区解放南路"),
    ("WX-W01", Some("WX-S01"), "朝阳市场服务窗口", ServicePointLevel::Window, "WX-SC01", "320213", "朝阳农贸市场二楼"),
    (
        "SH-S01",
        None,
        "江宁路街道流动党员驿站",
        ServicePointLevel::Station,
        "SH",
        "310106",
        "江宁路街道社区事务受理中心",
    ),
    ("HZ-S01", None, "四季青市场党群服务站", ServicePointLevel::Station, "HZ-SC01", "330106", "四季青服装市场三楼"),
];

/// The service points of the demo region, parents first.
pub fn service_points() -> Vec<NewServicePoint> {
    SERVICE_POINTS
        .iter()
        .enumerate()
        .map(|(i, (code, parent, name, level, org, division, address))| NewServicePoint {
            code: code.to_string(),
            parent_code: parent.map(str::to_string),
            name: name.to_string(),
            level: *level,
            org_code: org.to_string(),
            division_code: division.to_string(),
            address: Some(address.to_string()),
            // Synthetic numbers under the city's area code.
            hotline: Some(format!("{}-6000{:04}", area_code(division), i + 1)),
            opening_hours: Some("周一至周五 8:30-17:30，周六 9:00-12:00".into()),
        })
        .collect()
}

fn area_code(division: &str) -> &'static str {
    match &division[..4] {
        "3207" => "0518",
        "3213" => "0527",
        "3203" => "0516",
        "3205" => "0512",
        "3202" => "0510",
        "3101" => "021",
        "3301" => "0571",
        _ => "0000",
    }
}

fn pick_surname(rng: &mut StdRng) -> &'static str {
    let total: u32 = SURNAMES.iter().map(|s| s.1).sum();
    let mut x = rng.gen_range(0..total);
    for (s, w) in SURNAMES {
        if x < *w {
            return s;
        }
        x -= w;
    }
    SURNAMES[0].0
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Members and flows: `count` members spread over the home branches; about 15% away.
pub fn members(count: usize, seed: u64) -> (Vec<NewMember>, Vec<NewFlow>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let orgs = organizations();
    let home_branches: Vec<&NewOrg> =
        orgs.iter().filter(|o| o.fields.level == OrgLevel::Branch && o.code.matches('-').count() == 2).collect();
    let dest_branches: Vec<(&str, &str)> = DESTS.iter().flat_map(|d| d.3.iter().map(|b| (b.0, b.3))).collect();
    let mut members = Vec::with_capacity(count);
    let mut flows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while members.len() < count {
        let branch = home_branches[rng.gen_range(0..home_branches.len())];
        let gender = if rng.gen_bool(0.7) { Gender::Male } else { Gender::Female };
        let given = if gender == Gender::Male { GIVEN_MALE } else { GIVEN_FEMALE };
        let mut name = pick_surname(&mut rng).to_string();
        for _ in 0..rng.gen_range(1..=2) {
            name.push_str(given.choose(&mut rng).copied().unwrap_or("明"));
        }
        let birth = date(rng.gen_range(1950..=2003), rng.gen_range(1..=12), rng.gen_range(1..=28));
        let county = &branch.fields.division_code[..6];
        let id = id_number::compose(county, birth, rng.gen_range(0..500), gender);
        if !seen.insert(id.as_str().to_string()) {
            continue;
        }
        let earliest = birth.checked_add_months(chrono::Months::new(12 * 18 + 6)).unwrap_or(birth);
        let joined_year = rng.gen_range(earliest.year_ce().1 as i32 + 1..=2025.max(earliest.year_ce().1 as i32 + 1));
        let joined = date(joined_year.min(2025), rng.gen_range(1..=12), 1).max(earliest);
        let probationary = joined_year >= 2025;
        let phone = format!(
            "1{}{:09}",
            ["38", "39", "58", "59", "87", "88"][rng.gen_range(0..6)],
            rng.gen_range(0..1_000_000_000u64) / 100
        );
        let fields = MemberFields {
            name,
            gender,
            ethnicity: if rng.gen_bool(0.98) { "汉族".into() } else { "回族".into() },
            birth_date: birth,
            id_number: id.clone(),
            phone: Some(phone[..11].to_string()),
            education: Some(*Education::ALL.choose(&mut rng).unwrap_or(&Education::HighSchool)),
            joined_on: joined,
            category: if probationary { MemberCategory::Probationary } else { MemberCategory::Full },
            org_code: branch.code.clone(),
            residence_division: Some(branch.fields.division_code.clone()),
            residence_address: Some(format!(
                "{}{}号",
                STREETS.choose(&mut rng).unwrap_or(&"人民路"),
                rng.gen_range(1..300)
            )),
            employer: None,
            occupation: None,
        };
        let away = rng.gen_bool(0.15) && birth.year_ce().1 < 2000;
        let mut fields = fields;
        if away {
            let (dest_code, dest_div) = dest_branches[rng.gen_range(0..dest_branches.len())];
            fields.employer = Some(EMPLOYERS.choose(&mut rng).unwrap_or(&"个体经营").to_string());
            fields.occupation = Some(OCCUPATIONS.choose(&mut rng).unwrap_or(&"工人").to_string());
            let left_on = date(rng.gen_range(2019..=2026), rng.gen_range(1..=10), rng.gen_range(1..=28)).max(joined);
            let roll: f64 = rng.gen();
            let (status, inflow) = if roll < 0.55 {
                (FlowStatus::CheckedIn, Some(dest_code.to_string()))
            } else if roll < 0.9 {
                (FlowStatus::NotCheckedIn, None)
            } else {
                (FlowStatus::LostContact, None)
            };
            flows.push(NewFlow {
                id_number: id.as_str().to_string(),
                outflow_org_code: branch.code.clone(),
                inflow_org_code: inflow,
                departure: Departure {
                    destination_division: dest_div.to_string(),
                    destination_address: Some(format!(
                        "{}{}号",
                        STREETS.choose(&mut rng).unwrap_or(&"人民路"),
                        rng.gen_range(1..500)
                    )),
                    reason: *[
                        FlowReason::Work,
                        FlowReason::Work,
                        FlowReason::Business,
                        FlowReason::Study,
                        FlowReason::Family,
                    ]
                    .choose(&mut rng)
                    .unwrap_or(&FlowReason::Work),
                    left_on,
                    expected_months: Some(rng.gen_range(6..=36)),
                    contact_phone: fields.phone.clone(),
                    note: None,
                },
                status,
            });
        }
        members.push(NewMember { fields });
    }
    (members, flows)
}

use chrono::Datelike;

/// Demo accounts: (user name, role, organization code, password).
/// (user name, role, organization, service point, password).
pub type DemoAccount = (&'static str, kite_domain::Role, Option<&'static str>, Option<&'static str>, &'static str);

pub const ACCOUNTS: &[DemoAccount] = &[
    ("admin", kite_domain::Role::Admin, None, None, "kite-admin-2024"),
    ("guannan", kite_domain::Role::OrgAdmin, Some("GN"), None, "kite-demo-2024"),
    ("xinan-dong", kite_domain::Role::Secretary, Some("GN-01-01"), None, "kite-demo-2024"),
    ("suzhou", kite_domain::Role::OrgAdmin, Some("SZ"), None, "kite-demo-2024"),
    ("jinji-station", kite_domain::Role::ServiceStaff, Some("SZ-LY01"), Some("SZ-S01"), "kite-demo-2024"),
];

const SEED: u64 = 20_240_616;

/// Loads the demo region into an empty store. Accounts are created by the caller,
/// which owns password hashing.
pub async fn load(store: &Store, member_count: usize) -> anyhow::Result<(usize, usize)> {
    let admin = store.admin();
    admin.insert_orgs(&organizations()).await?;
    let (members, flows) = members(member_count, SEED);
    admin.bulk_insert_members(&members).await?;
    admin.bulk_insert_flows(&flows).await?;
    admin.insert_service_points(&service_points()).await?;
    admin.recount().await?;
    Ok((members.len(), flows.len()))
}

/// A guarded handle acting as one of the demo accounts.
async fn acting_as<'a>(store: &'a Store, username: &str) -> anyhow::Result<Guard<'a>> {
    let (user, _) = store
        .accounts()
        .user_by_username(username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("demo account {username} is missing"))?;
    Ok(store.guard(user.principal(), Client { address: Some("demo".into()) }))
}

const EVALUATION_COMMENTS: &[(Rating, &str)] = &[
    (Rating::Qualified, "按时参加支部组织生活，主动亮明身份"),
    (Rating::Excellent, "积极参加社区志愿服务，带动身边流动党员"),
    (Rating::Qualified, "遵守流入地支部各项制度，按时交纳党费"),
    (Rating::Qualified, "工作之余参加楼宇党群活动"),
    (Rating::BasicallyQualified, "因工作调班缺席两次组织生活，已谈心提醒"),
];

/// What the demo's people have been doing, done through the guarded API as the demo
/// accounts (call after [`load`] and after the accounts exist): three check-ins at a
/// Suzhou branch waiting for `xinan-dong`'s branch to confirm them, one from a home
/// organization outside the system, and this period's evaluations of two thirds of the
/// members checked in to Suzhou. Returns (check-ins, evaluations).
pub async fn activity(store: &Store, member_count: usize) -> anyhow::Result<(usize, usize)> {
    let (members, flows) = members(member_count, SEED);
    let by_id: std::collections::HashMap<&str, &MemberFields> =
        members.iter().map(|m| (m.fields.id_number.as_str(), &m.fields)).collect();
    let suzhou = acting_as(store, "suzhou").await?;
    let mut waiting: Vec<&NewFlow> = flows
        .iter()
        .filter(|f| f.status == FlowStatus::NotCheckedIn && f.outflow_org_code == "GN-01-01")
        .take(3)
        .collect();
    if waiting.len() < 3 {
        waiting.extend(flows.iter().filter(|f| f.status == FlowStatus::NotCheckedIn).take(3 - waiting.len()));
    }
    let mut checkins = 0;
    for (i, f) in waiting.iter().enumerate() {
        let Some(m) = by_id.get(f.id_number.as_str()) else { continue };
        let c = Checkin {
            name: m.name.clone(),
            id_number: m.id_number.clone(),
            phone: m.phone.clone().unwrap_or_else(|| "13800000000".into()),
            home: HomeClaim::Code(f.outflow_org_code.clone()),
            division_code: "320576".into(),
            address: Some(format!("金鸡湖大道{}号", 100 + i)),
            employer: m.employer.clone(),
            occupation: m.occupation.clone(),
            inflow_org_code: None,
        };
        suzhou.checkin_at_counter(LinkKind::Org, "SZ-LY01", &c, &format!("demo-checkin-{i}")).await?;
        checkins += 1;
    }
    let stranger = Checkin {
        name: "陈立新".into(),
        id_number: id_number::compose("341221", date(1988, 6, 12), 37, Gender::Male),
        phone: "13956001234".into(),
        home: HomeClaim::Text("安徽省临泉县城关镇党委".into()),
        division_code: "320576".into(),
        address: Some("娄葑街道东环路 66 号".into()),
        employer: Some("园区某电子厂".into()),
        occupation: Some("技术员".into()),
        inflow_org_code: None,
    };
    suzhou.checkin_at_counter(LinkKind::Org, "SZ-XC01", &stranger, "demo-checkin-stranger").await?;
    checkins += 1;

    let inflow = suzhou.flows(Side::Inflow, &FlowQuery { limit: Some(200), ..Default::default() }).await?;
    let mut evaluations = 0;
    for (i, f) in inflow.items.iter().enumerate().filter(|(i, _)| i % 3 != 2) {
        let (rating, comment) = EVALUATION_COMMENTS[i % EVALUATION_COMMENTS.len()];
        let input = EvaluationInput { period: "", rating: rating.code(), comment };
        suzhou.evaluate(f.id, &input, None).await?;
        evaluations += 1;
    }
    Ok((checkins, evaluations))
}

/// A one-page PDF standing for a scanned agreement, so that the demo's files open.
pub fn sample_pdf(title: &str) -> Vec<u8> {
    let text: String =
        title.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').filter(|c| !"()\\".contains(*c)).collect();
    let stream = format!("BT /F1 18 Tf 72 770 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for off in offsets {
        pdf.extend(format!("{off:010} 00000 n \n").bytes());
    }
    pdf.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    pdf
}

/// Co-management agreements as the seeds describe them: Guannan with Suzhou (in force,
/// all five commitments, the signed text attached) and with Wuxi, an expired one with
/// Hangzhou (outside the system), and one of Suzhou's with a home county outside it that
/// is not yet in force. Returns how many.
pub async fn agreements(store: &Store) -> anyhow::Result<usize> {
    let guannan = acting_as(store, "guannan").await?;
    let suzhou = acting_as(store, "suzhou").await?;
    let party = |code: &'static str, name: &'static str, contact: &'static str, phone: &'static str| PartyInput {
        org_code: code,
        name,
        contact_name: contact,
        contact_phone: phone,
    };
    let with_suzhou = AgreementInput {
        title: "灌南县—苏州工业园区流动党员共建共管协议",
        number: "灌组〔2025〕18号",
        outflow: party("GN", "", "王建国", "0518-83212345"),
        inflow: party("SZ", "", "李红梅", "0512-66681234"),
        signed_on: "2025-06-20",
        starts_on: "2025-07-01",
        ends_on: "2028-06-30",
        org_building: "在园区建立灌南籍流动党员党支部，纳入园区党工委序列管理；支部书记列席所在社区党委会议。",
        member_management:
            "园区党组织负责流入党员日常教育管理，就近安排参加组织生活，每半年向灌南县委组织部反馈评价意见。",
        consultation: "双方组织部门定期会商流动党员组织建设、教育管理和作用发挥等事项；开通联络热线和电子信箱。",
        consultation_cycle: "quarterly",
        funding: "灌南县每年从留存党费中拨付活动经费；园区提供活动场所和办公设备。",
        funding_outflow_yuan: "10000",
        funding_inflow_yuan: "5000",
        activities: "共同开展“亮党员身份，树灌南形象”、志愿服务和关爱农民工行动。",
        note: "",
    };
    let a = guannan.agreement_create(&with_suzhou).await?;
    guannan
        .agreement_attach(
            a.id,
            "共建共管协议书（签字盖章）.pdf",
            &sample_pdf("Guannan - Suzhou SIP co-management agreement"),
        )
        .await?;
    let with_wuxi = AgreementInput {
        title: "灌南县—无锡市梁溪区流动党员双向共管协议",
        outflow: party("GN", "", "王建国", "0518-83212345"),
        inflow: party("WX", "", "", ""),
        signed_on: "2026-03-01",
        starts_on: "2026-03-01",
        member_management: "梁溪区各市场、楼宇党支部吸纳灌南籍流动党员参加组织生活，半年函告一次表现情况。",
        activities: "每年联合举办一次流动党员座谈会。",
        consultation_cycle: "half_year",
        ..Default::default()
    };
    guannan.agreement_create(&with_wuxi).await?;
    let hangzhou = AgreementInput {
        title: "灌南县驻杭州流动党组织共建共管协议",
        outflow: party("GN", "", "", ""),
        inflow: party("", "杭州市下城区委组织部", "", "0571-85001234"),
        signed_on: "2020-12-15",
        starts_on: "2021-01-01",
        ends_on: "2023-12-31",
        org_building: "将灌南驻杭州流动党委纳入朝晖街道党工委序列管理。",
        funding: "下城区为流动党委书记、委员配备通讯工具，每月补助通讯费。",
        funding_inflow_yuan: "1200",
        ..Default::default()
    };
    guannan.agreement_create(&hangzhou).await?;
    let linquan = AgreementInput {
        title: "苏州工业园区—临泉县流动党员共建共管协议",
        outflow: party("", "安徽省临泉县委组织部", "", ""),
        inflow: party("SZ", "", "李红梅", "0512-66681234"),
        starts_on: "2027-01-01",
        ends_on: "2029-12-31",
        member_management: "园区新市民党支部接收临泉籍流动党员报到，核实后纳入管理。",
        ..Default::default()
    };
    suzhou.agreement_create(&linquan).await?;
    Ok(4)
}

/// Activity certificates of Guannan's members checked in to Suzhou, in each state the
/// accounts reach: issued by Guannan, asked for by Suzhou and issued (reverse issuing),
/// asked for and waiting, refused, handed back, reported lost and re-issued, revoked. Run
/// before [`transfers`], whose receipts make some of them void. Returns how many.
pub async fn certificates(store: &Store) -> anyhow::Result<usize> {
    use kite_domain::certificate::Issue;
    use kite_store::{CertificateStepInput, CertificateView};
    let guannan = acting_as(store, "guannan").await?;
    let suzhou = acting_as(store, "suzhou").await?;
    let inflow = suzhou.flows(Side::Inflow, &FlowQuery { limit: Some(200), ..Default::default() }).await?;
    let people: Vec<_> = inflow
        .items
        .iter()
        .filter(|f| f.outflow_org_code == "GN" || f.outflow_org_code.starts_with("GN-"))
        .map(|f| (f.member_id, f.destination_division.clone(), f.destination_address.clone(), f.reason))
        .collect();
    let today = chrono::Utc::now().date_naive();
    let issue = |division: &str, address: &Option<String>, reason| Issue {
        destination_division: division.to_string(),
        destination: address.clone(),
        reason,
        valid_from: today,
        valid_until: today.checked_add_months(chrono::Months::new(12)).unwrap_or(today),
    };
    let step = |name: &str, v: &CertificateView, reason: Option<&str>| CertificateStepInput {
        step: name.to_string(),
        version: v.certificate.version,
        reason: reason.map(str::to_string),
    };
    // What happens to each person's certificate, in order.
    const PLAN: [&str; 9] = ["issued", "issued", "issued", "issued", "reverse", "asked", "refused", "returned", "lost"];
    let mut count = 0;
    for ((member, division, address, reason), what) in people.iter().zip(PLAN.iter().chain(["revoked"].iter())) {
        let i = issue(division, address, *reason);
        let v = match *what {
            "reverse" | "asked" | "refused" => suzhou.certificate_create(*member, &i).await?,
            _ => guannan.certificate_create(*member, &i).await?,
        };
        let id = v.certificate.id;
        match *what {
            "reverse" => drop(guannan.certificate_step(id, &step("issue", &v, None)).await?),
            "refused" => {
                drop(guannan.certificate_step(id, &step("refuse", &v, Some("经核实该同志已返乡，无需办理"))).await?)
            }
            "returned" => drop(guannan.certificate_step(id, &step("return", &v, None)).await?),
            "lost" => drop(guannan.certificate_step(id, &step("report_lost", &v, None)).await?),
            "revoked" => {
                drop(guannan.certificate_step(id, &step("revoke", &v, Some("该同志已受党纪处分，收回活动证"))).await?)
            }
            _ => {}
        }
        count += 1;
    }
    Ok(count)
}

/// Transfers of the formal record between Guannan (home) and Suzhou (where the members
/// checked in), one in each state the accounts can reach by their own steps: asked for by
/// Suzhou, approved with the letter issued, received, done with the receipt back,
/// returned for correction, refused, withdrawn, a letter that expired, and a letter to an
/// organization outside the system. Returns how many.
pub async fn transfers(store: &Store) -> anyhow::Result<usize> {
    use kite_store::{TransferRequest, TransferStepInput, TransferView};
    let guannan = acting_as(store, "guannan").await?;
    let suzhou = acting_as(store, "suzhou").await?;
    // Members of Guannan's subtree checked in to Suzhou's.
    let inflow = suzhou.flows(Side::Inflow, &FlowQuery { limit: Some(200), ..Default::default() }).await?;
    let mut people = inflow
        .items
        .iter()
        .filter(|f| f.outflow_org_code == "GN" || f.outflow_org_code.starts_with("GN-"))
        .filter_map(|f| Some((f.member_id, f.inflow_org_code.clone()?, f.outflow_org_code.clone())));
    // A small demo region has few such members: as many transfers as there are people.
    macro_rules! next {
        ($count:ident) => {
            match people.next() {
                Some(p) => p,
                None => return Ok($count),
            }
        };
    }
    let ask = |member_id: i64, to: Option<String>, text: Option<&str>, reason: &str| TransferRequest {
        member_id,
        to_org_code: to,
        to_org_text: text.map(str::to_string),
        reason: Some(reason.to_string()),
    };
    let step = |name: &str, v: &TransferView, reason: Option<&str>| TransferStepInput {
        step: name.to_string(),
        version: v.transfer.version,
        reason: reason.map(str::to_string),
        ..Default::default()
    };
    let settled = "在苏州工作生活已满六个月，应转尽转";
    let mut count = 0;

    // Asked for by Suzhou, waiting for Guannan.
    let (m, to, _) = next!(count);
    suzhou.transfer_request(&ask(m, Some(to), None, settled)).await?;
    count += 1;
    // Approved: the letter is out, waiting for Suzhou to receive.
    let (m, to, _) = next!(count);
    let v = suzhou.transfer_request(&ask(m, Some(to), None, settled)).await?;
    guannan.transfer_step(v.transfer.id, &step("approve", &v, None)).await?;
    count += 1;
    // Received, and received with the receipt back (done).
    for close in [false, true] {
        let (m, to, _) = next!(count);
        let v = guannan.transfer_request(&ask(m, Some(to), None, "已在流入地落户")).await?;
        let v = guannan.transfer_step(v.transfer.id, &step("approve", &v, None)).await?;
        let v = suzhou.transfer_step(v.transfer.id, &step("receive", &v, None)).await?;
        if close {
            guannan.transfer_step(v.transfer.id, &step("record_receipt", &v, None)).await?;
        }
        count += 1;
    }
    // Sent back for a correction, refused, withdrawn.
    let (m, to, _) = next!(count);
    let v = suzhou.transfer_request(&ask(m, Some(to), None, "")).await?;
    guannan.transfer_step(v.transfer.id, &step("return", &v, Some("请补充转接原因和现工作单位"))).await?;
    count += 1;
    let (m, to, _) = next!(count);
    let v = suzhou.transfer_request(&ask(m, Some(to), None, settled)).await?;
    guannan.transfer_step(v.transfer.id, &step("refuse", &v, Some("该同志明年初返乡，暂不转出"))).await?;
    count += 1;
    let (m, to, _) = next!(count);
    let v = guannan.transfer_request(&ask(m, Some(to), None, "拟转入流入地党支部")).await?;
    guannan.transfer_step(v.transfer.id, &step("withdraw", &v, None)).await?;
    count += 1;
    // A branch that approves at two levels: approved by it (here the system administrator
    // on its behalf), waiting for the committee above.
    let admin = acting_as(store, "admin").await?;
    let (m, to, home) = next!(count);
    let branch = admin.org(&home).await?;
    admin.org_set_transfer_levels(&home, true, branch.version).await?;
    let v = suzhou.transfer_request(&ask(m, Some(to), None, settled)).await?;
    admin.transfer_step(v.transfer.id, &step("approve", &v, None)).await?;
    count += 1;
    // A letter nobody came to receive: issued a month ago, expired by the daily job.
    let (m, to, _) = next!(count);
    let v = suzhou.transfer_request(&ask(m, Some(to), None, settled)).await?;
    let v = guannan.transfer_step(v.transfer.id, &step("approve", &v, None)).await?;
    store.admin().backdate_letter(v.transfer.id, 30).await?;
    store.run_daily(chrono::Utc::now().date_naive()).await?;
    count += 1;
    // To an organization outside the system: the letter is printed.
    let (m, _, _) = next!(count);
    let v = guannan.transfer_request(&ask(m, None, Some("浙江省杭州市西湖区西溪街道党工委"), "随配偶迁居杭州")).await?;
    guannan.transfer_step(v.transfer.id, &step("approve", &v, None)).await?;
    count += 1;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_members_are_valid_and_about_fifteen_percent_away() {
        let (members, flows) = members(2000, 7);
        assert_eq!(members.len(), 2000);
        let ratio = flows.len() as f64 / members.len() as f64;
        assert!((0.08..0.2).contains(&ratio), "away ratio {ratio}");
        for m in &members {
            let f = &m.fields;
            let id = kite_domain::IdNumber::parse(f.id_number.as_str()).expect("valid id");
            assert_eq!(id.birth_date(), f.birth_date);
            assert_eq!(id.gender(), f.gender);
            assert!(f.joined_on >= f.birth_date.checked_add_months(chrono::Months::new(216)).unwrap());
            assert!(kite_divisions::get(id.division_code()).is_some(), "{}", id.division_code());
        }
    }

    #[test]
    fn service_points_belong_to_demo_orgs_and_known_divisions() {
        let orgs: std::collections::HashSet<String> = organizations().into_iter().map(|o| o.code).collect();
        let mut seen = std::collections::HashSet::new();
        for p in service_points() {
            assert!(orgs.contains(&p.org_code), "{} run by unknown {}", p.code, p.org_code);
            assert!(kite_divisions::get(&p.division_code).is_some(), "{}", p.division_code);
            assert!(p.parent_code.as_ref().is_none_or(|c| seen.contains(c)), "{} before its parent", p.code);
            assert!(!p.hotline.as_deref().unwrap_or("").starts_with("0000"), "{} has no area code", p.code);
            seen.insert(p.code);
        }
    }

    #[test]
    fn organizations_reference_known_divisions_and_parents_first() {
        let orgs = organizations();
        let mut seen = std::collections::HashSet::new();
        for o in &orgs {
            if let Some(p) = &o.parent_code {
                assert!(seen.contains(p), "parent {p} of {} comes later", o.code);
            }
            assert!(kite_divisions::get(&o.fields.division_code).is_some(), "{}", o.fields.division_code);
            seen.insert(o.code.clone());
        }
    }
}
