//! The screening engine (`kite-screen`) over the registry as the store gives it: the
//! registry's side of a member, and one roster run from a file to the matches to review.
//! Used by the campaign API and by `kite screen`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use kite_domain::screening::Outcome;
use kite_screen::import::{End, ImportOptions, NormalizedFields, RawFields, Roster};
use kite_screen::matcher::{train, Band, MatchConfig, Matcher, Record, RegistryBuilder, TrainOptions};
use kite_store::{NewMatch, ScreeningMember};

/// Unreadable rows kept with a roster (the count is kept whole).
const MAX_ERRORS_KEPT: usize = 1000;

/// The registry's side of a member, as a roster row would give it.
pub fn record(m: &ScreeningMember) -> Record {
    let raw = RawFields {
        name: Some(m.name.clone()),
        id_number: Some(m.id_number.clone()),
        gender: Some(if m.gender == "female" { "女" } else { "男" }.to_string()),
        birth_date: Some(m.birth_date.to_string()),
        phone: m.phone.clone(),
        address: m.residence_address.clone(),
        ..Default::default()
    };
    Record::from_fields(&NormalizedFields::from_raw(&raw, &mut Vec::new()))
}

/// What one roster run found.
pub struct RosterRun {
    pub rows_read: i64,
    pub unreadable: i64,
    /// `[{"line": …, "reason": …}]`, the first [`MAX_ERRORS_KEPT`].
    pub errors: serde_json::Value,
    /// The best candidate of each row in the match or review band.
    pub matches: Vec<NewMatch>,
}

/// Reads the roster at `path` and matches it against `members` (the region at `place`, a
/// path). A file that cannot be opened or read to its end is an error code for the `file`
/// field; a row that cannot be read is counted and kept with its line and reason.
pub fn run_roster(path: &Path, members: &[ScreeningMember], place: &str) -> Result<RosterRun, &'static str> {
    let roster = Roster::open(path, &ImportOptions::default()).map_err(|e| match e.code() {
        "file.unsupported" => "screening.file_unsupported",
        "mapping.incomplete" => "screening.mapping_incomplete",
        _ => "screening.file_unreadable",
    })?;
    let mut rows = roster.rows(Arc::new(AtomicBool::new(false))).map_err(|e| match e.code() {
        "mapping.incomplete" => "screening.mapping_incomplete",
        _ => "screening.file_unreadable",
    })?;
    let (mut read, mut errors, mut unreadable) = (Vec::new(), Vec::new(), 0i64);
    for row in rows.by_ref() {
        match row {
            Ok(r) => {
                read.push((r.line, serde_json::to_value(&r.raw).unwrap_or_default(), Record::from_fields(&r.fields)))
            }
            Err(e) => {
                unreadable += 1;
                if errors.len() < MAX_ERRORS_KEPT {
                    errors.push(serde_json::json!({ "line": e.line, "reason": e.reason.code() }));
                }
            }
        }
    }
    if let End::Failed { .. } = rows.summary().end {
        return Err("screening.file_unreadable");
    }
    let mut b = RegistryBuilder::new();
    for (i, m) in members.iter().enumerate() {
        b.push(i as u64, &record(m));
    }
    let registry = b.build();
    let records: Vec<Record> = read.iter().map(|(_, _, r)| r.clone()).collect();
    let config = MatchConfig { today: crate::rules::today(), ..MatchConfig::default() };
    let training = train(&registry, &records, &config, &TrainOptions::default());
    let matcher = Matcher::new(&registry, training.model, config);
    let results = matcher.match_all(&records);
    let mut matches = Vec::new();
    for ((line, raw, _), found) in read.iter().zip(&results) {
        let Some(best) = found.best().filter(|c| c.band != Band::NonMatch) else { continue };
        let Some(m) = registry.row(best.member).and_then(|i| members.get(i as usize)) else { continue };
        matches.push(NewMatch {
            line: *line as i64,
            row: raw.clone(),
            member_id: m.id,
            score: best.probability,
            band: best.band.code(),
            outcome: Outcome::of(&m.mobility, &m.org_path, m.inflow_path.as_deref(), place).code(),
            explanation: serde_json::to_value(matcher.explain(best)).unwrap_or_default(),
        });
    }
    Ok(RosterRun {
        rows_read: read.len() as i64 + unreadable,
        unreadable,
        errors: serde_json::Value::Array(errors),
        matches,
    })
}
