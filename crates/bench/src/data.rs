//! The data set: the demo region's organizations and members (`kite_demo`), with the
//! org tree scaled in this crate so that a million members sit in branches of a
//! realistic size instead of 78 branches of 13,000 members each.
//!
//! Each home town keeps its six demo branches and gets general branches (党总支),
//! each with `branches_per_general` branches, until the town has about
//! `members / towns / members_per_branch` branches. Every member is then moved to a
//! branch drawn uniformly from the branches of the town the demo put them in, so ID
//! numbers and residence divisions stay consistent with the organization.

use std::collections::HashMap;

use kite_domain::org::OrgFields;
use kite_domain::{OrgKind, OrgLevel};
use kite_store::{NewFlow, NewMember, NewOrg};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub struct Dataset {
    pub orgs: Vec<NewOrg>,
    pub members: Vec<NewMember>,
    pub flows: Vec<NewFlow>,
    /// Members in each organization's subtree (the organization included), by code.
    pub subtree_members: HashMap<String, i64>,
    /// Organizations in each organization's subtree (itself included), by code.
    pub subtree_orgs: HashMap<String, i64>,
    pub towns: Vec<String>,
    pub counties: Vec<String>,
    pub generals: Vec<String>,
    pub branches: Vec<String>,
    pub generation_secs: f64,
}

fn parent_of(code: &str) -> &str {
    &code[..code.rfind('-').unwrap_or(0)]
}

pub fn generate(count: usize, seed: u64, members_per_branch: usize, branches_per_general: usize) -> Dataset {
    let started = std::time::Instant::now();
    let mut orgs = kite_demo::organizations();
    // Home branches as the demo picks them: branch level, code COUNTY-TOWN-NN.
    let demo_branches: Vec<String> = orgs
        .iter()
        .filter(|o| o.fields.level == OrgLevel::Branch && o.code.matches('-').count() == 2)
        .map(|o| o.code.clone())
        .collect();
    let mut towns: Vec<String> = Vec::new();
    for b in &demo_branches {
        let t = parent_of(b).to_string();
        if !towns.contains(&t) {
            towns.push(t);
        }
    }
    let mut counties: Vec<String> = Vec::new();
    for t in &towns {
        let c = parent_of(t).to_string();
        if !counties.contains(&c) {
            counties.push(c);
        }
    }
    let per_town = count.div_ceil(towns.len().max(1) * members_per_branch.max(1)).max(6);
    let mut town_branches: HashMap<String, Vec<String>> = HashMap::new();
    for b in &demo_branches {
        town_branches.entry(parent_of(b).to_string()).or_default().push(b.clone());
    }
    let mut generals = Vec::new();
    for t in &towns {
        let town = orgs.iter().find(|o| &o.code == t).expect("town exists").clone();
        let short = town.fields.name.trim_start_matches("中共").trim_end_matches("委员会").to_string();
        let division = town.fields.division_code.clone();
        let extra = per_town.saturating_sub(6);
        let n_general = extra.div_ceil(branches_per_general.max(1));
        let mut left = extra;
        for g in 1..=n_general {
            let gcode = format!("{t}-G{g:03}");
            orgs.push(NewOrg {
                code: gcode.clone(),
                parent_code: Some(t.clone()),
                fields: OrgFields {
                    name: format!("{short}第{g}村（社区）党总支"),
                    level: OrgLevel::GeneralBranch,
                    kind: OrgKind::Ordinary,
                    division_code: division.clone(),
                    address: Some(format!("{short}第{g}村（社区）党群服务中心")),
                    phone: None,
                },
            });
            generals.push(gcode.clone());
            for b in 1..=branches_per_general.min(left) {
                let bcode = format!("{gcode}-{b:02}");
                orgs.push(NewOrg {
                    code: bcode.clone(),
                    parent_code: Some(gcode.clone()),
                    fields: OrgFields {
                        name: format!("{short}第{g}村（社区）第{b}党支部"),
                        level: OrgLevel::Branch,
                        kind: OrgKind::Ordinary,
                        division_code: division.clone(),
                        address: Some(format!("{short}第{g}村（社区）党群服务中心")),
                        phone: None,
                    },
                });
                town_branches.entry(t.clone()).or_default().push(bcode);
            }
            left -= branches_per_general.min(left);
        }
    }

    let (mut members, mut flows) = kite_demo::members(count, seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6b69_7465);
    let mut moved: HashMap<String, String> = HashMap::with_capacity(members.len());
    for m in &mut members {
        let town = parent_of(&m.fields.org_code).to_string();
        let list = &town_branches[&town];
        let b = list[rng.gen_range(0..list.len())].clone();
        moved.insert(m.fields.id_number.as_str().to_string(), b.clone());
        m.fields.org_code = b;
    }
    for f in &mut flows {
        if let Some(b) = moved.get(&f.id_number) {
            f.outflow_org_code = b.clone();
        }
    }

    // Subtree sizes, computed from the rows so the queries' answers can be checked.
    let parent: HashMap<&str, Option<&str>> =
        orgs.iter().map(|o| (o.code.as_str(), o.parent_code.as_deref())).collect();
    let mut subtree_members: HashMap<String, i64> = orgs.iter().map(|o| (o.code.clone(), 0)).collect();
    let mut subtree_orgs: HashMap<String, i64> = orgs.iter().map(|o| (o.code.clone(), 0)).collect();
    let mut own: HashMap<&str, i64> = HashMap::new();
    for m in &members {
        *own.entry(m.fields.org_code.as_str()).or_default() += 1;
    }
    for o in &orgs {
        let n = own.get(o.code.as_str()).copied().unwrap_or(0);
        let mut at = Some(o.code.as_str());
        while let Some(c) = at {
            *subtree_members.get_mut(c).expect("known org") += n;
            *subtree_orgs.get_mut(c).expect("known org") += 1;
            at = parent[c];
        }
    }
    let branches = town_branches.into_values().flatten().collect::<Vec<_>>();
    Dataset {
        orgs,
        members,
        flows,
        subtree_members,
        subtree_orgs,
        towns,
        counties,
        generals,
        branches,
        generation_secs: started.elapsed().as_secs_f64(),
    }
}

/// Simplified → traditional for the characters the demo draws names from; only
/// variants whose search key folds back to the simplified name are used.
const TRADITIONAL: &[(char, char)] = &[
    ('张', '張'),
    ('刘', '劉'),
    ('陈', '陳'),
    ('杨', '楊'),
    ('黄', '黃'),
    ('赵', '趙'),
    ('吴', '吳'),
    ('孙', '孫'),
    ('马', '馬'),
    ('罗', '羅'),
    ('郑', '鄭'),
    ('谢', '謝'),
    ('许', '許'),
    ('韩', '韓'),
    ('冯', '馮'),
    ('邓', '鄧'),
    ('蒋', '蔣'),
    ('叶', '葉'),
    ('苏', '蘇'),
    ('吕', '呂'),
    ('卢', '盧'),
    ('钟', '鍾'),
    ('谭', '譚'),
    ('陆', '陸'),
    ('韦', '韋'),
    ('贾', '賈'),
    ('邹', '鄒'),
    ('龙', '龍'),
    ('贺', '賀'),
    ('顾', '顧'),
    ('伟', '偉'),
    ('强', '強'),
    ('军', '軍'),
    ('涛', '濤'),
    ('刚', '剛'),
    ('辉', '輝'),
    ('鹏', '鵬'),
    ('华', '華'),
    ('飞', '飛'),
    ('国', '國'),
    ('东', '東'),
    ('阳', '陽'),
    ('凯', '凱'),
    ('静', '靜'),
    ('丽', '麗'),
    ('红', '紅'),
    ('颖', '穎'),
    ('兰', '蘭'),
    ('悦', '悅'),
    ('洁', '潔'),
    ('瑶', '瑤'),
    ('云', '雲'),
];

fn traditional(name: &str) -> Option<String> {
    let t: String = name.chars().map(|c| TRADITIONAL.iter().find(|p| p.0 == c).map(|p| p.1).unwrap_or(c)).collect();
    (t != name && kite_domain::text::name_key(&t) == kite_domain::text::name_key(name)).then_some(t)
}

/// What the searches send, drawn from the loaded members.
pub struct Queries {
    pub full_names: Vec<String>,
    pub prefixes: Vec<String>,
    pub surnames: Vec<String>,
    pub traditional: Vec<String>,
    pub ids: Vec<String>,
    pub id_prefix_14: Vec<String>,
    pub id_prefix_10: Vec<String>,
    pub id_prefix_6: Vec<String>,
}

pub fn queries(d: &Dataset, n: usize, seed: u64) -> Queries {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7175_6572);
    let pick: Vec<&NewMember> = (0..n).map(|_| &d.members[rng.gen_range(0..d.members.len())]).collect();
    let first = |s: &str, k: usize| s.chars().take(k).collect::<String>();
    let ids: Vec<String> = pick.iter().map(|m| m.fields.id_number.as_str().to_string()).collect();
    let mut traditional_names = Vec::new();
    let mut tries = 0;
    while traditional_names.len() < n && tries < n * 50 {
        tries += 1;
        let m = d.members.choose(&mut rng).expect("members");
        if let Some(t) = traditional(&m.fields.name) {
            traditional_names.push(t);
        }
    }
    Queries {
        full_names: pick.iter().map(|m| m.fields.name.clone()).collect(),
        prefixes: pick.iter().map(|m| first(&m.fields.name, 2)).collect(),
        surnames: pick.iter().map(|m| first(&m.fields.name, 1)).collect(),
        traditional: traditional_names,
        id_prefix_14: ids.iter().map(|i| i[..14].to_string()).collect(),
        id_prefix_10: ids.iter().map(|i| i[..10].to_string()).collect(),
        id_prefix_6: ids.iter().map(|i| i[..6].to_string()).collect(),
        ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_tree_keeps_members_in_their_town_and_counts_add_up() {
        let d = generate(3000, 7, 20, 10);
        let total: i64 = d.counties.iter().map(|c| d.subtree_members[c]).sum();
        assert_eq!(total, 3000);
        for m in &d.members {
            let b = d.orgs.iter().find(|o| o.code == m.fields.org_code).unwrap();
            assert_eq!(Some(b.fields.division_code.clone()), m.fields.residence_division);
        }
        assert!(d.branches.len() >= 3000 / 20);
    }

    #[test]
    fn traditional_variants_fold_back() {
        assert_eq!(traditional("张伟").as_deref(), Some("張偉"));
        assert_eq!(traditional("王明"), None);
    }
}
