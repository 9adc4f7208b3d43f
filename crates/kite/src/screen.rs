//! `kite screen match`: compares a roster from another department (CSV, TSV or .xlsx)
//! with the member registry, from a registry export (`--members`, no database) or the
//! live database, and writes MATCHES.csv (`roster_line,member_id_number,score,band`, one
//! row per candidate in the match and review bands, best first). Against the database it
//! can also write what each row means for the place screened (`--outcomes`). Nothing is
//! written to member records; a run against the database is audited before any file is
//! written. The engine is `kite-screen`'s, as the campaign pages will use it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use kite_screen::import::{End, ImportOptions, Roster};
use kite_screen::matcher::{train, Band, MatchConfig, Matcher, Record, RegistryBuilder, RowMatch, TrainOptions};
use kite_store::{ScreeningMember, Store};

pub struct Run<'a> {
    pub roster: &'a Path,
    /// A registry export; the database's registry when `None`.
    pub members: Option<&'a Path>,
    /// The registry's subtree in the database (organization code); everyone when `None`.
    pub scope: Option<&'a str>,
    /// The place screened (organization code), for `outcomes`.
    pub place: Option<&'a str>,
    pub out: &'a Path,
    pub outcomes: Option<&'a Path>,
}

/// What a matched row means for the place at `place` (a path).
fn outcome(m: &ScreeningMember, place: &str) -> &'static str {
    kite_domain::screening::Outcome::of(&m.mobility, &m.org_path, m.inflow_path.as_deref(), place).code()
}

/// A file only its owner may read: results hold personal data.
fn private_file(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok(BufWriter::new(options.open(path).with_context(|| format!("creating {}", path.display()))?))
}

/// Reads a file of rows (roster or registry export): each readable row with its data row
/// number, each unreadable one with its line and reason; a file that cannot be read to
/// its end is an error.
/// Unreadable rows: (data row number, line in the file, reason).
type Unreadable = Vec<(u64, u64, &'static str)>;

fn read(path: &Path) -> anyhow::Result<(Vec<(u64, Record)>, Unreadable)> {
    let roster =
        Roster::open(path, &ImportOptions::default()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut rows =
        roster.rows(Arc::new(AtomicBool::new(false))).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for row in rows.by_ref() {
        match row {
            Ok(r) => ok.push((r.data_row, Record::from_fields(&r.fields))),
            // Reported with its line, never dropped in silence.
            Err(e) => bad.push((e.data_row.unwrap_or(0), e.line, e.reason.code())),
        }
    }
    if let End::Failed { .. } = rows.summary().end {
        let (_, line, reason) = bad.last().copied().unwrap_or((0, 0, "file.read_failed"));
        anyhow::bail!("{}: could not be read past line {line} ({reason})", path.display());
    }
    Ok((ok, bad))
}

/// `kite screen export`: the members of a scope as a registry export, in the columns the
/// generator and `--members` use. Audited (full ID numbers leave the database) before the
/// file is written.
pub async fn export(store: &Store, scope: Option<&str>, out: &Path) -> anyhow::Result<()> {
    let members = store.admin().screening_members(scope).await.with_context(|| format!("the scope {scope:?}"))?;
    let summary = serde_json::json!({ "export": out.display().to_string(), "scope": scope, "members": members.len() });
    let who = std::env::var("USER").unwrap_or_default();
    store.admin().audit_screening(&who, "screen.export", summary.clone()).await?;
    let mut w = csv::Writer::from_writer(private_file(out)?);
    w.write_record(["姓名", "公民身份号码", "性别", "出生日期", "手机号码", "现居住地"])?;
    for m in &members {
        let gender = if m.gender == "female" { "女" } else { "男" };
        let birth = m.birth_date.to_string();
        let (phone, address) = (m.phone.as_deref().unwrap_or(""), m.residence_address.as_deref().unwrap_or(""));
        w.write_record([m.name.as_str(), &m.id_number, gender, &birth, phone, address])?;
    }
    w.flush().with_context(|| format!("writing {}", out.display()))?;
    println!("{summary}");
    Ok(())
}

pub async fn run(store: Option<&Store>, r: &Run<'_>) -> anyhow::Result<()> {
    // The registry: an export, or the database's members of the scope.
    let (members, registry) = match (r.members, store) {
        (Some(file), _) => {
            let (rows, bad) = read(file)?;
            if let Some((_, line, reason)) = bad.first() {
                anyhow::bail!("{}: line {line} could not be read ({reason})", file.display());
            }
            let mut b = RegistryBuilder::new();
            for (row, rec) in &rows {
                b.push(*row, rec);
            }
            (Vec::new(), b.build())
        }
        (None, Some(store)) => {
            let members =
                store.admin().screening_members(r.scope).await.with_context(|| format!("the scope {:?}", r.scope))?;
            let mut b = RegistryBuilder::new();
            for (i, m) in members.iter().enumerate() {
                b.push(i as u64, &kite_server::screening::record(m));
            }
            (members, b.build())
        }
        (None, None) => anyhow::bail!("no registry: give --members FILE or a database"),
    };
    let place = match (r.outcomes, store, r.place.or(r.scope)) {
        (None, _, _) => None,
        (Some(_), Some(store), Some(code)) if r.members.is_none() => {
            Some(store.admin().org_path(code).await?.with_context(|| format!("no organization {code:?}"))?)
        }
        _ => anyhow::bail!("--outcomes needs the database's registry and --place (or --scope)"),
    };

    let (rows, unreadable) = read(r.roster)?;
    let records: Vec<Record> = rows.iter().map(|(_, rec)| rec.clone()).collect();
    let config = MatchConfig { today: kite_server::rules::today(), ..MatchConfig::default() };
    let training = train(&registry, &records, &config, &TrainOptions::default());
    let matcher = Matcher::new(&registry, training.model, config);
    let results = matcher.match_all(&records);

    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for m in &results {
        let band = m.best().map(|c| c.band).unwrap_or(Band::NonMatch);
        *counts.entry(band.code()).or_default() += 1;
    }
    let summary = serde_json::json!({
        "roster": r.roster.display().to_string(),
        "registry": registry.len(),
        "scope": r.scope,
        "place": r.place.or(r.scope),
        "rows": rows.len(),
        "unreadable": unreadable.len(),
        "bands": counts,
    });
    // Audited before any result reaches a file.
    if let (Some(store), None) = (store, r.members) {
        let who = std::env::var("USER").unwrap_or_default();
        store.admin().audit_screening(&who, "screen.run", summary.clone()).await?;
    }
    let lines: Vec<u64> = rows.iter().map(|(line, _)| *line).collect();
    matcher
        .write_matches(private_file(r.out)?, lines.iter().copied().zip(&results))
        .with_context(|| format!("writing {}", r.out.display()))?;
    if let (Some(path), Some(place)) = (r.outcomes, &place) {
        write_outcomes(path, place, &members, &registry, &lines, &results, &unreadable)?;
    }
    println!("{summary}");
    for (_, line, reason) in &unreadable {
        eprintln!("line {line}: {reason}");
    }
    Ok(())
}

/// One row per roster row, in line order: the best member found (ID number masked), its
/// band, and the outcome for the place; unreadable rows with their reason.
fn write_outcomes(
    path: &Path,
    place: &str,
    members: &[ScreeningMember],
    registry: &kite_screen::matcher::Registry,
    lines: &[u64],
    results: &[RowMatch],
    unreadable: &[(u64, u64, &'static str)],
) -> anyhow::Result<()> {
    let mut file = private_file(path)?;
    // Excel opens UTF-8 CSV as such only with the byte order mark.
    file.write_all("\u{feff}".as_bytes())?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record([
        "roster_line",
        "band",
        "score",
        "member_id",
        "member_name",
        "id_number_masked",
        "member_org_code",
        "outcome",
    ])?;
    // A cell a spreadsheet would run as a formula is written as text.
    let cell = |s: &str| if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    let mut out: Vec<(u64, Vec<String>)> = Vec::new();
    for (line, result) in lines.iter().zip(results) {
        let best = result.best().filter(|c| c.band != Band::NonMatch);
        let found = best.and_then(|c| Some((c, members.get(registry.row(c.member)? as usize)?)));
        let row = match found {
            None => vec![
                line.to_string(),
                "non_match".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "no_match".into(),
            ],
            Some((c, m)) => {
                let what = if c.band == Band::Review { "to_review" } else { outcome(m, place) };
                vec![
                    line.to_string(),
                    c.band.code().to_string(),
                    format!("{:.4}", c.probability),
                    m.id.to_string(),
                    cell(&m.name),
                    kite_domain::id_number::mask(&m.id_number),
                    cell(&m.org_code),
                    what.to_string(),
                ]
            }
        };
        out.push((*line, row));
    }
    for (data_row, _, reason) in unreadable {
        let mut row = vec![data_row.to_string(), "unreadable".to_string()];
        row.extend(std::iter::repeat_n(String::new(), 5));
        row.push(reason.to_string());
        out.push((*data_row, row));
    }
    out.sort_by_key(|(line, _)| *line);
    for (_, row) in out {
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}
