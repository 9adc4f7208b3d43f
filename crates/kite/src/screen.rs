//! `kite screen match`: compares a roster from another department (CSV, TSV or .xlsx)
//! with the member registry, from a registry export (`--members`, no database) or the
//! live database, and writes MATCHES.csv (`roster_line,member_id_number,score,band`, one
//! row per candidate in the match and review bands, best first). Against the database it
//! can also write what each row means for the place screened (`--outcomes`). Nothing is
//! written to member records; a run against the database is audited before any file is
//! written. The engine is `kite-screen`'s, as the campaign pages will use it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use kite_screen::import::{ColumnMapping, End, Progress, ProgressUnit, Rows};
use kite_screen::matcher::{
    match_stream, Band, Chunk, Matcher, Model, Record, Registry, RegistryBuilder, RowMatch, StreamOptions,
    MATCHES_HEADER,
};
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
    /// A column mapping (as `kite screen columns` prints it) instead of the detected one.
    pub mapping: Option<&'a Path>,
    /// m and u set by the user (as `save_model` writes them) instead of estimated.
    pub model: Option<&'a Path>,
    /// Where to write the model the run used.
    pub save_model: Option<&'a Path>,
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

/// A result file written beside its place and moved there only when the run completes:
/// a cancelled or failed run leaves no partial file. Readable by its owner only.
fn pending_file(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))
}

/// `kite screen columns`: what was detected in a roster — format, encoding, the first rows
/// (ID numbers masked) and the column mapping, as JSON to edit and pass to `--mapping`.
pub fn columns(roster: &Path) -> anyhow::Result<()> {
    let (detected, mapping) = kite_server::screening::detect(roster)
        .map_err(|code| anyhow::anyhow!("{}: {}", roster.display(), message(code)))?;
    let out = serde_json::json!({ "mapping": mapping, "info": detected["info"], "preview": detected["preview"] });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn message(code: &str) -> String {
    kite_server::i18n::t(kite_server::i18n::Lang::En, &format!("err.{code}"))
}

/// A mapping file: a mapping, or the whole output of `kite screen columns`.
fn read_mapping(path: &Path) -> anyhow::Result<ColumnMapping> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let value = value.get("mapping").cloned().unwrap_or(value);
    serde_json::from_value(value).with_context(|| format!("{}: not a column mapping", path.display()))
}

/// Opens a file of rows (roster or registry export) for reading in a stream.
fn open(path: &Path, mapping: Option<ColumnMapping>, cancel: Arc<AtomicBool>) -> anyhow::Result<(Rows, Progress)> {
    kite_server::screening::open_rows(path, mapping, cancel)
        .map_err(|code| anyhow::anyhow!("{}: {}", path.display(), message(code)))
}

/// A registry export as the matcher's registry; any row that cannot be read is an error.
fn read_registry(path: &Path) -> anyhow::Result<Registry> {
    let (mut rows, _) = open(path, None, Arc::new(AtomicBool::new(false)))?;
    let mut b = RegistryBuilder::new();
    for row in rows.by_ref() {
        match row {
            Ok(r) => b.push(r.data_row, &Record::from_fields(&r.fields)),
            Err(e) => anyhow::bail!("{}: line {} could not be read ({})", path.display(), e.line, e.reason.code()),
        }
    }
    if let End::Failed { line, reason } = &rows.summary().end {
        anyhow::bail!("{}: could not be read past line {line} ({})", path.display(), reason.code());
    }
    Ok(b.build())
}

/// A progress bar on standard error while the roster is read (hidden when it is no
/// terminal); dropped, it stops.
struct Bar {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    fn start(progress: Progress) -> Bar {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let first = progress.snapshot();
            let bar = match first.total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::no_length(),
            };
            let template = match first.unit {
                ProgressUnit::Bytes => "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
                ProgressUnit::Rows => "{bar:40} {pos}/{len} {msg} ({eta})",
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            while !stop.load(Ordering::Relaxed) {
                let s = progress.snapshot();
                if let Some(total) = s.total {
                    bar.set_length(total);
                }
                bar.set_position(s.done);
                bar.set_message(format!("{} rows, {} unreadable", s.rows, s.errors));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Bar { done, thread: Some(thread) }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
    let members = match (r.members, store) {
        (Some(_), _) => Vec::new(),
        (None, Some(store)) => {
            store.admin().screening_members(r.scope).await.with_context(|| format!("the scope {:?}", r.scope))?
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
    let mapping = r.mapping.map(read_mapping).transpose()?;
    let model = r.model.map(read_model).transpose()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let (rows, progress) = open(r.roster, mapping, cancel.clone())?;
    // Audited before any result reaches a file.
    if let (Some(store), None) = (store, r.members) {
        let who = std::env::var("USER").unwrap_or_default();
        let started = serde_json::json!({
            "roster": r.roster.display().to_string(), "registry": members.len(), "scope": r.scope,
            "place": r.place.or(r.scope),
        });
        store.admin().audit_screening(&who, "screen.run", started).await?;
    }
    // Ctrl-C cancels the run: the rows stop, and no result file is left.
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.store(true, Ordering::Relaxed);
        }
    });
    let files = Files {
        out: r.out.to_path_buf(),
        outcomes: r.outcomes.map(Path::to_path_buf),
        members_file: r.members.map(Path::to_path_buf),
        save_model: r.save_model.map(Path::to_path_buf),
    };
    let options = StreamOptions { model, ..StreamOptions::default() };
    let summary =
        tokio::task::spawn_blocking(move || match_roster(rows, progress, &members, place.as_deref(), &files, &options))
            .await
            .context("the run stopped")??;
    println!("{summary}");
    Ok(())
}

struct Files {
    out: PathBuf,
    outcomes: Option<PathBuf>,
    members_file: Option<PathBuf>,
    save_model: Option<PathBuf>,
}

/// A model file: m and u per field and level, and the prior (as `--save-model` writes).
fn read_model(path: &Path) -> anyhow::Result<Model> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let model: Model = serde_json::from_str(&text).with_context(|| format!("{}: not a model", path.display()))?;
    model.check().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(model)
}

/// Matches the roster in a stream, writing MATCHES.csv (and the outcomes) chunk by chunk
/// into files moved into place only once the run completes.
fn match_roster(
    rows: Rows,
    progress: Progress,
    members: &[ScreeningMember],
    place: Option<&str>,
    files: &Files,
    options: &StreamOptions,
) -> anyhow::Result<serde_json::Value> {
    let out = pending_file(&files.out)?;
    let mut w = csv::Writer::from_writer(BufWriter::new(out.as_file().try_clone()?));
    w.write_record(MATCHES_HEADER)?;
    let outcomes = files.outcomes.as_deref().map(pending_file).transpose()?;
    let mut o = match &outcomes {
        Some(f) => {
            let mut file = BufWriter::new(f.as_file().try_clone()?);
            // Excel opens UTF-8 CSV as such only with the byte order mark.
            file.write_all("\u{feff}".as_bytes())?;
            let mut o = csv::Writer::from_writer(file);
            o.write_record(OUTCOME_HEADER)?;
            Some(o)
        }
        None => None,
    };
    let mut bands: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unreadable = Vec::new();
    let registry = || match &files.members_file {
        Some(path) => read_registry(path),
        None => Ok(kite_server::screening::registry(members)),
    };
    let bar = Bar::start(progress);
    let report = match_stream(registry, rows, &kite_server::screening::config(), options, |m, chunk, results| {
        for r in results {
            *bands.entry(r.best().map_or(Band::NonMatch, |c| c.band).code()).or_default() += 1;
        }
        m.write_match_rows(&mut w, chunk.lines.iter().copied().zip(results))?;
        if let (Some(o), Some(place)) = (o.as_mut(), place) {
            write_outcomes(o, m, place, members, chunk, results)?;
        }
        let room = MAX_UNREADABLE_SHOWN.saturating_sub(unreadable.len());
        unreadable.extend(chunk.unreadable.iter().take(room).map(|e| (e.line, e.reason.code())));
        Ok::<_, anyhow::Error>(())
    })?;
    drop(bar);
    match &report.roster.end {
        End::Cancelled => anyhow::bail!("cancelled after {} rows; no result file was written", report.rows),
        End::Failed { line, reason } => {
            anyhow::bail!(
                "the roster could not be read past line {line} ({}); no result file was written",
                reason.code()
            )
        }
        End::Completed | End::Running => {}
    }
    w.flush()?;
    drop(w);
    out.persist(&files.out).with_context(|| format!("writing {}", files.out.display()))?;
    if let (Some(mut o), Some(f), Some(path)) = (o, outcomes, &files.outcomes) {
        o.flush()?;
        drop(o);
        f.persist(path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &files.save_model {
        let json = serde_json::to_string_pretty(&report.training.model)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    for (line, reason) in &unreadable {
        eprintln!("line {line}: {reason}");
    }
    if report.unreadable > unreadable.len() {
        eprintln!("… and {} more unreadable rows", report.unreadable - unreadable.len());
    }
    Ok(serde_json::json!({
        "rows": report.rows,
        "unreadable": report.unreadable,
        "bands": bands,
        "trained_on": report.train_rows,
        "em_iterations": report.training.em_iterations,
        "seconds": report.timings.total,
    }))
}

/// Unreadable rows listed on standard error (all are counted, and in --outcomes).
const MAX_UNREADABLE_SHOWN: usize = 1000;

const OUTCOME_HEADER: [&str; 8] =
    ["roster_line", "band", "score", "member_id", "member_name", "id_number_masked", "member_org_code", "outcome"];

/// One row per roster row of the chunk, in line order: the best member found (ID number
/// masked), its band, and the outcome for the place; unreadable rows with their reason.
fn write_outcomes<W: Write>(
    w: &mut csv::Writer<W>,
    matcher: &Matcher<'_>,
    place: &str,
    members: &[ScreeningMember],
    chunk: &Chunk,
    results: &[RowMatch],
) -> anyhow::Result<()> {
    // A cell a spreadsheet would run as a formula is written as text.
    let cell = |s: &str| if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    let mut out: Vec<(u64, Vec<String>)> = Vec::new();
    for (line, result) in chunk.lines.iter().zip(results) {
        let best = result.best().filter(|c| c.band != Band::NonMatch);
        let found = best.and_then(|c| Some((c, members.get(matcher.registry().row(c.member)? as usize)?)));
        let row = match found {
            None => {
                let mut row = vec![line.to_string(), "non_match".into()];
                row.extend(std::iter::repeat_n(String::new(), 5));
                row.push("no_match".into());
                row
            }
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
    for e in &chunk.unreadable {
        let data_row = e.data_row.unwrap_or(0);
        let mut row = vec![data_row.to_string(), "unreadable".to_string()];
        row.extend(std::iter::repeat_n(String::new(), 5));
        row.push(e.reason.code().to_string());
        out.push((data_row, row));
    }
    out.sort_by_key(|(line, _)| *line);
    for (_, row) in out {
        w.write_record(&row)?;
    }
    Ok(())
}
