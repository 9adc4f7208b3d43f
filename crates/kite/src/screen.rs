//! `kite screen`: compares a roster from another department (CSV, TSV or .xlsx) with the
//! member registry and writes, for every roster row, the best member found, its band and
//! what the match means for the place screened. Nothing is written to member records; the
//! run is audited. The engine is `kite-screen`'s, as the campaign pages will use it.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use kite_screen::import::{ImportOptions, RawFields, Roster};
use kite_screen::matcher::{train, Band, MatchConfig, Matcher, Record, RegistryBuilder, TrainOptions};
use kite_store::{ScreeningMember, Store};

/// What a matched row means for the place screened.
fn outcome(m: &ScreeningMember, place: Option<&str>) -> &'static str {
    let here = |path: &str| place.is_none_or(|p| kite_domain::org::is_within(path, p));
    if here(&m.org_path) || m.inflow_path.as_deref().is_some_and(here) {
        "known_here"
    } else if m.mobility == kite_domain::Mobility::LostContact.code() {
        "lost_contact_found"
    } else {
        "candidate_inflow"
    }
}

/// The registry's side of a member, as a roster row would give it.
fn record(m: &ScreeningMember) -> Record {
    let raw = RawFields {
        name: Some(m.name.clone()),
        id_number: Some(m.id_number.clone()),
        gender: Some(if m.gender == "female" { "女" } else { "男" }.to_string()),
        birth_date: Some(m.birth_date.to_string()),
        phone: m.phone.clone(),
        address: m.residence_address.clone(),
        ..Default::default()
    };
    Record::from_fields(&kite_screen::import::NormalizedFields::from_raw(&raw, &mut Vec::new()))
}

pub struct Run<'a> {
    pub roster: &'a Path,
    /// The registry's subtree (organization code); everyone when `None`.
    pub scope: Option<&'a str>,
    /// The place screened (organization code); the scope when `None`.
    pub place: Option<&'a str>,
    pub out: &'a Path,
}

pub async fn run(store: &Store, r: &Run<'_>) -> anyhow::Result<()> {
    let admin = store.admin();
    let members = admin.screening_members(r.scope).await.with_context(|| format!("the scope {:?}", r.scope))?;
    let place = match r.place.or(r.scope) {
        Some(code) => Some(admin.org_path(code).await?.with_context(|| format!("no organization {code:?}"))?),
        None => None,
    };
    let mut builder = RegistryBuilder::new();
    for (i, m) in members.iter().enumerate() {
        builder.push(i as u64, &record(m));
    }
    let registry = builder.build();

    let roster = Roster::open(r.roster, &ImportOptions::default())
        .map_err(|e| anyhow::anyhow!("{}: {e}", r.roster.display()))?;
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    let reading =
        roster.rows(Arc::new(AtomicBool::new(false))).map_err(|e| anyhow::anyhow!("{}: {e}", r.roster.display()))?;
    for row in reading {
        match row {
            Ok(row) => {
                lines.push(row.line);
                rows.push(Record::from_fields(&row.fields));
            }
            // Reported with its line, never dropped in silence.
            Err(e) => unreadable.push((e.line, e.reason.code())),
        }
    }
    let config = MatchConfig { today: kite_server::rules::today(), ..MatchConfig::default() };
    let training = train(&registry, &rows, &config, &TrainOptions::default());
    let matcher = Matcher::new(&registry, training.model, config);
    let results = matcher.match_all(&rows);

    let mut out =
        std::io::BufWriter::new(std::fs::File::create(r.out).with_context(|| format!("creating {}", r.out.display()))?);
    writeln!(out, "roster_line,band,score,member_id,member_name,id_number_masked,member_org_code,outcome")?;
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (line, result) in lines.iter().zip(&results) {
        let best = result.best().filter(|c| c.band != Band::NonMatch);
        let Some((c, m)) = best.and_then(|c| Some((c, &members[registry.row(c.member)? as usize]))) else {
            writeln!(out, "{line},non_match,,,,,,no_match")?;
            *counts.entry("no_match").or_default() += 1;
            continue;
        };
        let what = if c.band == Band::Review { "to_review" } else { outcome(m, place.as_deref()) };
        *counts.entry(what).or_default() += 1;
        writeln!(
            out,
            "{line},{},{:.4},{},{},{},{},{what}",
            c.band.code(),
            c.probability,
            m.id,
            m.name.replace([',', '"', '\n'], " "),
            kite_domain::id_number::mask(&m.id_number),
            m.org_code
        )?;
    }
    for (line, reason) in &unreadable {
        writeln!(out, "{line},unreadable,,,,,,{reason}")?;
    }
    out.flush()?;
    let summary = serde_json::json!({
        "roster": r.roster.display().to_string(),
        "scope": r.scope,
        "place": r.place.or(r.scope),
        "registry": members.len(),
        "rows": rows.len(),
        "unreadable": unreadable.len(),
        "outcomes": counts,
    });
    admin.audit_screening(summary.clone()).await?;
    println!("{summary}");
    for (line, reason) in unreadable.iter().take(20) {
        eprintln!("line {line}: {reason}");
    }
    Ok(())
}
