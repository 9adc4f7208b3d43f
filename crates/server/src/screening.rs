//! The screening engine (`kite-screen`) over the registry as the store gives it, shared by
//! the campaign API and pages and by `kite screen`: the registry's side of a member, a
//! roster opened with its column mapping, and the campaign runs, which go on in the
//! background with progress and can be cancelled.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use kite_domain::access::Principal;
use kite_domain::screening::Outcome;
use kite_screen::import::{
    ColumnMapping, End, Field, ImportOptions, NormalizedFields, Progress, RawFields, Roster, Rows,
};
use kite_screen::matcher::{match_stream, Band, MatchConfig, Record, Registry, RegistryBuilder, StreamOptions};
use kite_store::{Client, Guard, NewMatch, RosterDetail, RunEnd, ScreeningMember, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// Unreadable rows kept with a roster (the count is kept whole).
const MAX_ERRORS_KEPT: usize = 1000;

/// Candidates kept per roster row (best first).
const CANDIDATES_KEPT: usize = 3;

/// Matches stored per transaction during a run.
const MATCHES_PER_WRITE: usize = 2000;

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

/// The registry of `members`, each under its position in the slice.
pub fn registry(members: &[ScreeningMember]) -> Registry {
    let mut b = RegistryBuilder::new();
    for (i, m) in members.iter().enumerate() {
        b.push(i as u64, &record(m));
    }
    b.build()
}

/// The matcher's settings as of today.
pub fn config() -> MatchConfig {
    MatchConfig { today: crate::rules::today(), ..MatchConfig::default() }
}

/// An opening error as a message code for the `file` field.
fn open_error(e: &kite_screen::import::ImportError) -> &'static str {
    match e.code() {
        "file.unsupported" => "screening.file_unsupported",
        "mapping.incomplete" => "screening.mapping_incomplete",
        "mapping.header_out_of_range" => "screening.header_out_of_range",
        _ => "screening.file_unreadable",
    }
}

/// Opens a roster, with `mapping` instead of the detected one if given, and starts its
/// rows; `cancel` stops them. The progress handle reads from another thread.
pub fn open_rows(
    path: &Path,
    mapping: Option<ColumnMapping>,
    cancel: Arc<AtomicBool>,
) -> Result<(Rows, Progress), &'static str> {
    let mut roster = Roster::open(path, &ImportOptions::default()).map_err(|e| open_error(&e))?;
    if let Some(m) = mapping {
        roster.set_mapping(m).map_err(|e| open_error(&e))?;
    }
    let progress = roster.progress();
    Ok((roster.rows(cancel).map_err(|e| open_error(&e))?, progress))
}

/// What an uploaded roster shows before its run: format, encoding and the first rows, with
/// every ID number masked, and the mapping proposed (of the columns shown). A file with no
/// readable row is refused.
pub fn detect(path: &Path) -> Result<(serde_json::Value, ColumnMapping), &'static str> {
    let roster = Roster::open(path, &ImportOptions::default()).map_err(|e| open_error(&e))?;
    let mut mapping = roster.mapping().clone();
    mapping.columns.retain(|c| c.index < MAX_PREVIEW_COLUMNS);
    let id_columns: Vec<usize> = mapping.columns_of(Field::IdNumber).collect();
    let preview: Vec<(u64, Vec<String>)> = roster
        .preview()
        .map(|(line, cells)| {
            let data = line > mapping.header_line;
            let shown = cells.iter().take(MAX_PREVIEW_COLUMNS).enumerate().map(|(i, c)| {
                // Masked whole, then cut: a cut could leave the first digits of a number.
                let mut masked = kite_domain::id_number::mask_within(c.trim());
                // Whatever the ID column holds is not shown whole.
                if data && id_columns.contains(&i) && !masked.is_empty() && !masked.contains('*') {
                    masked = kite_domain::id_number::mask(&masked);
                }
                masked.chars().take(60).collect::<String>()
            });
            (line, shown.collect())
        })
        .collect();
    if preview.iter().all(|(_, cells)| cells.iter().all(String::is_empty)) {
        return Err("screening.file_unreadable");
    }
    Ok((serde_json::json!({ "info": roster.info(), "preview": preview }), mapping))
}

/// Columns shown and mappable on the roster's page.
pub const MAX_PREVIEW_COLUMNS: usize = 200;

/// The directory roster files pass through (uploads on their way to the database, runs'
/// copies), readable by this user only. Files are removed when done with; those a crash
/// left behind go at the next start ([`sweep_spool`]).
pub fn spool() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join("kite-rosters");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    // One made by another user of a shared temporary directory is not ours to use.
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Our user: the owner of a file we make.
        let me = tempfile::tempfile()?.metadata()?.uid();
        let dir_meta = std::fs::symlink_metadata(&dir)?;
        if !dir_meta.is_dir() || dir_meta.uid() != me || dir_meta.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!("{} is not this user's private directory", dir.display())));
        }
    }
    Ok(dir)
}

/// Removes spooled roster files older than `age` (left by a crash; another server on the
/// machine may be using newer ones). Returns how many.
pub fn sweep_spool(age: std::time::Duration) -> usize {
    let Ok(dir) = spool() else { return 0 };
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let old = |e: &std::fs::DirEntry| {
        e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|a| a > age)
    };
    entries.flatten().filter(|e| old(e) && std::fs::remove_file(e.path()).is_ok()).count()
}

/// The suffix a roster's file is read with: TSV and workbooks by name, CSV otherwise (the
/// format is told by the content; the suffix only tells TSV from CSV).
pub fn suffix_of(file_name: &str) -> &'static str {
    let lower = file_name.to_lowercase();
    ["xlsx", "tsv", "tab"].into_iter().find(|x| lower.ends_with(&format!(".{x}"))).unwrap_or("csv")
}

/// Where a run stands, for its progress bar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunProgress {
    /// `queued` (another run goes first), `preparing` (registry and file), `matching`.
    pub phase: &'static str,
    /// `bytes` of the file (CSV, TSV) or `rows` of the sheet (xlsx).
    pub unit: Option<String>,
    pub done: u64,
    /// Unknown (`None`) until the file says.
    pub total: Option<u64>,
    /// Rows read so far, and rows that could not be read.
    pub rows: u64,
    pub errors: u64,
    /// 0 to 100, when the total is known.
    pub percent: Option<f64>,
}

const QUEUED: u8 = 0;
const PREPARING: u8 = 1;
const MATCHING: u8 = 2;

/// A run under way in this process.
#[derive(Default)]
struct Run {
    cancel: Arc<AtomicBool>,
    phase: AtomicU8,
    progress: Mutex<Option<Progress>>,
    /// Poked on cancel, for a run still waiting for its turn.
    wake: tokio::sync::Notify,
}

impl Run {
    fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// The runs under way, by roster.
pub struct Runs {
    runs: Mutex<HashMap<i64, Arc<Run>>>,
    /// One run at a time: each holds the region's registry in memory and keeps the cores
    /// busy; others wait their turn (`queued`).
    turn: tokio::sync::Semaphore,
}

impl Default for Runs {
    fn default() -> Self {
        Runs { runs: Mutex::default(), turn: tokio::sync::Semaphore::new(1) }
    }
}

impl Runs {
    fn get(&self, roster_id: i64) -> Option<Arc<Run>> {
        self.runs.lock().ok()?.get(&roster_id).cloned()
    }

    /// A new run of the roster; `None` if one is under way.
    fn register(&self, roster_id: i64) -> Option<Arc<Run>> {
        let mut runs = self.runs.lock().ok()?;
        if runs.contains_key(&roster_id) {
            return None;
        }
        let run = Arc::new(Run::default());
        runs.insert(roster_id, run.clone());
        Some(run)
    }

    /// Waits until no run is under way, or `limit` has passed (at shutdown, after
    /// [`Self::cancel_all`], so that each stores its end).
    pub async fn wait_idle(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.runs.lock().map(|r| !r.is_empty()).unwrap_or(false) && started.elapsed() < limit {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Takes the turn, as a run does: the runs started meanwhile wait, queued.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.turn.acquire().await.ok()
    }

    pub fn progress(&self, roster_id: i64) -> Option<RunProgress> {
        let run = self.get(roster_id)?;
        let phase = match run.phase.load(Ordering::Relaxed) {
            QUEUED => "queued",
            PREPARING => "preparing",
            _ => "matching",
        };
        let snapshot = run.progress.lock().ok()?.as_ref().map(Progress::snapshot);
        let Some(s) = snapshot else {
            return Some(RunProgress { phase, unit: None, done: 0, total: None, rows: 0, errors: 0, percent: None });
        };
        let unit = serde_json::to_value(s.unit).ok().and_then(|v| v.as_str().map(str::to_string));
        let percent = s.total.filter(|t| *t > 0).map(|t| (s.done.min(t) as f64 * 1000.0 / t as f64).floor() / 10.0);
        Some(RunProgress { phase, unit, done: s.done, total: s.total, rows: s.rows, errors: s.errors, percent })
    }

    /// Asks the run to stop; false if it is not under way here.
    pub fn cancel(&self, roster_id: i64) -> bool {
        self.get(roster_id).map(|r| r.cancel()).is_some()
    }

    /// Stops every run (the server is shutting down): each ends as cancelled.
    pub fn cancel_all(&self) {
        if let Ok(runs) = self.runs.lock() {
            runs.values().for_each(|r| r.cancel());
        }
    }

    /// The rosters with a run under way in this process.
    fn under_way(&self) -> Vec<i64> {
        self.runs.lock().map(|r| r.keys().copied().collect()).unwrap_or_default()
    }

    /// Whether a run of the roster is under way in this process.
    pub fn is_running(&self, roster_id: i64) -> bool {
        self.get(roster_id).is_some()
    }

    /// Forgets a run that ended (and not a later run of the same roster).
    fn remove(&self, roster_id: i64, run: &Arc<Run>) {
        if let Ok(mut runs) = self.runs.lock() {
            if runs.get(&roster_id).is_some_and(|r| Arc::ptr_eq(r, run)) {
                runs.remove(&roster_id);
            }
        }
    }
}

/// Marks the campaign's rosters that say `running` with no run under way here (its end
/// could not be stored, or another process ran it and stopped) as failed, so that they
/// can be run again and the campaign closed.
pub async fn reap_stale(state: &AppState, g: &Guard<'_>, campaign_id: i64) -> Result<(), StoreError> {
    // A run is known here before its roster says running and until it says otherwise, so a
    // roster running and unknown both before and after it is read has no run: one that
    // just ended is no longer running when read, one just started is known afterwards.
    let before: Vec<i64> = state.runs.under_way();
    for r in g.campaign(campaign_id).await?.rosters {
        if r.status != "running" || before.contains(&r.id) || state.runs.is_running(r.id) {
            continue;
        }
        let reaped = async {
            clear_matches(g, campaign_id, r.id).await?;
            g.roster_run_finish(campaign_id, r.id, &RunEnd::Failed("screening.interrupted")).await
        };
        match reaped.await {
            // Ended meanwhile by someone else: nothing to do.
            Ok(_) | Err(StoreError::Conflict("screening.roster_state")) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes a running roster's matches a few thousand at a time (a large run must not hold
/// the writer for long).
async fn clear_matches(g: &Guard<'_>, campaign_id: i64, roster_id: i64) -> Result<(), StoreError> {
    while g.roster_run_clear(campaign_id, roster_id).await? > 0 {}
    Ok(())
}

/// Marks a roster running with `mapping` and matches it in the background, on behalf of
/// `who`; its end is stored whatever happens. The run is known here before the roster says
/// `running`, so that nothing takes it for one a stop cut off.
pub async fn start_run(
    state: &AppState,
    who: (Principal, Client),
    campaign_id: i64,
    roster_id: i64,
    mapping: &serde_json::Value,
) -> Result<RosterDetail, StoreError> {
    let (started, run, place) = begin(state, &who, campaign_id, roster_id, mapping).await?;
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = finish(&state, who, campaign_id, place, roster_id, run).await {
            tracing::error!(error = %e, roster_id, "a screening run's end could not be stored");
        }
    });
    Ok(started)
}

/// Runs a roster to its end in this task, with its stored mapping (the demo loader).
pub async fn run_to_end(
    state: &AppState,
    who: (Principal, Client),
    campaign_id: i64,
    roster_id: i64,
) -> Result<RosterDetail, StoreError> {
    let g = state.store.guard(who.0.clone(), who.1.clone());
    let mapping = g.campaign_roster(campaign_id, roster_id).await?.mapping.unwrap_or_default();
    let (_, run, place) = begin(state, &who, campaign_id, roster_id, &mapping).await?;
    finish(state, who, campaign_id, place, roster_id, run).await
}

async fn begin(
    state: &AppState,
    who: &(Principal, Client),
    campaign_id: i64,
    roster_id: i64,
    mapping: &serde_json::Value,
) -> Result<(RosterDetail, Arc<Run>, String), StoreError> {
    let g = state.store.guard(who.0.clone(), who.1.clone());
    let campaign = g.campaign_open(campaign_id).await?;
    let run = state.runs.register(roster_id).ok_or(StoreError::Conflict("screening.roster_state"))?;
    match g.roster_run_start(campaign_id, roster_id, mapping).await {
        Ok(started) => Ok((started, run, campaign.place().to_string())),
        Err(e) => {
            state.runs.remove(roster_id, &run);
            Err(e)
        }
    }
}

/// Runs a roster marked running and stores its end.
async fn finish(
    state: &AppState,
    who: (Principal, Client),
    campaign_id: i64,
    place: String,
    roster_id: i64,
    run: Arc<Run>,
) -> Result<RosterDetail, StoreError> {
    let end = run_roster(state, who.clone(), campaign_id, place, roster_id, &run).await;
    let g = state.store.guard(who.0, who.1);
    // The end is stored, with a few tries: a roster left running blocks the campaign's close.
    let mut stored = Err(StoreError::NotFound);
    for pause in [0, 1, 5, 30] {
        tokio::time::sleep(std::time::Duration::from_secs(pause)).await;
        let cleared = match end {
            RunEnd::Done { .. } => Ok(()),
            _ => clear_matches(&g, campaign_id, roster_id).await,
        };
        stored = match cleared {
            Ok(()) => g.roster_run_finish(campaign_id, roster_id, &end).await,
            Err(e) => Err(e),
        };
        match &stored {
            Err(StoreError::Db(e)) => tracing::warn!(error = %e, roster_id, "storing a screening run's end, again"),
            _ => break,
        }
    }
    state.runs.remove(roster_id, &run);
    stored
}

async fn run_roster(
    state: &AppState,
    who: (Principal, Client),
    campaign_id: i64,
    place: String,
    roster_id: i64,
    run: &Arc<Run>,
) -> RunEnd {
    // A run cancelled while it waits ends at once.
    let turn = tokio::select! {
        turn = state.runs.turn() => turn,
        _ = run.wake.notified() => return RunEnd::Cancelled,
    };
    let Some(_turn) = turn else {
        return RunEnd::Failed("screening.run_failed");
    };
    if run.cancel.load(Ordering::Relaxed) {
        return RunEnd::Cancelled;
    }
    run.phase.store(PREPARING, Ordering::Relaxed);
    let g = state.store.guard(who.0.clone(), who.1.clone());
    let prepared = async {
        let detail = g.campaign_roster(campaign_id, roster_id).await.map_err(|e| e.to_string())?;
        let (_, members) = g.campaign_registry(campaign_id).await.map_err(|e| e.to_string())?;
        let file = roster_file(&g, campaign_id, roster_id, &detail.roster.file_name).await?;
        Ok::<_, String>((detail, members, file))
    }
    .await;
    let (detail, members, file) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, roster_id, "a screening run could not start");
            return RunEnd::Failed("screening.run_failed");
        }
    };
    let mapping = detail.mapping.and_then(|m| serde_json::from_value::<ColumnMapping>(m).ok());
    run.phase.store(MATCHING, Ordering::Relaxed);
    let (state, run) = (state.clone(), run.clone());
    let rt = tokio::runtime::Handle::current();
    let matched = tokio::task::spawn_blocking(move || {
        let g = state.store.guard(who.0, who.1);
        let (rows, progress) = match open_rows(file.path(), mapping, run.cancel.clone()) {
            Ok(r) => r,
            Err(code) => return RunEnd::Failed(code),
        };
        if let Ok(mut p) = run.progress.lock() {
            *p = Some(progress);
        }
        let mut errors = Vec::new();
        let report = match_stream(
            || Ok::<_, StoreError>(registry(&members)),
            rows,
            &config(),
            &StreamOptions { keep_raw: true, ..StreamOptions::default() },
            |matcher, chunk, results| {
                for e in &chunk.unreadable {
                    if errors.len() < MAX_ERRORS_KEPT {
                        errors.push(serde_json::json!({ "line": e.line, "reason": e.reason.code() }));
                    }
                }
                let mut found = Vec::new();
                for ((line, raw), result) in chunk.raw.iter().zip(results) {
                    // The best candidates in the match and review bands, for the reviewers
                    // to compare (a row may fit more than one member).
                    let candidates = result.candidates.iter().filter(|c| c.band != Band::NonMatch);
                    for c in candidates.take(CANDIDATES_KEPT) {
                        let Some(m) = matcher.registry().row(c.member).and_then(|i| members.get(i as usize)) else {
                            continue;
                        };
                        found.push(NewMatch {
                            line: *line as i64,
                            row: serde_json::to_value(raw).unwrap_or_default(),
                            member_id: m.id,
                            score: c.probability,
                            band: c.band.code(),
                            outcome: Outcome::of(&m.mobility, &m.org_path, m.inflow_path.as_deref(), &place).code(),
                            explanation: serde_json::to_value(matcher.explain(c)).unwrap_or_default(),
                        });
                    }
                }
                // A few thousand per transaction: the writer is shared with check-ins.
                for batch in found.chunks(MATCHES_PER_WRITE) {
                    rt.block_on(g.roster_run_matches(campaign_id, roster_id, batch))?;
                }
                Ok(())
            },
        );
        match report {
            Err(e) => {
                tracing::error!(error = %e, roster_id, "a screening run's matches could not be stored");
                RunEnd::Failed("screening.run_failed")
            }
            Ok(report) => match report.roster.end {
                End::Cancelled => RunEnd::Cancelled,
                End::Failed { .. } => RunEnd::Failed("screening.file_unreadable"),
                End::Completed | End::Running => RunEnd::Done {
                    rows_read: (report.rows + report.unreadable) as i64,
                    unreadable: report.unreadable as i64,
                    errors: serde_json::Value::Array(errors),
                },
            },
        }
    })
    .await;
    matched.unwrap_or(RunEnd::Failed("screening.run_failed"))
}

/// The roster's file from its stored parts, in a temporary file named with its suffix (the
/// format is told by the content; the suffix only names TSV).
async fn roster_file(
    g: &Guard<'_>,
    campaign_id: i64,
    roster_id: i64,
    file_name: &str,
) -> Result<tempfile::NamedTempFile, String> {
    let suffix = suffix_of(file_name);
    let io = |e: std::io::Error| e.to_string();
    let mut file =
        tempfile::Builder::new().suffix(&format!(".{suffix}")).tempfile_in(spool().map_err(io)?).map_err(io)?;
    let mut seq = 0;
    while let Some(bytes) = g.roster_file_part(campaign_id, roster_id, seq).await.map_err(|e| e.to_string())? {
        file.write_all(&bytes).map_err(io)?;
        seq += 1;
    }
    file.flush().map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_files_a_crash_left_are_swept_and_fresh_ones_kept() {
        let dir = spool().expect("the spool");
        let (old, fresh) = (dir.join("swept-old.csv"), dir.join("swept-fresh.csv"));
        for path in [&old, &fresh] {
            std::fs::write(path, "姓名\n张伟\n").expect("a file");
        }
        let three_days = std::time::Duration::from_secs(3 * 24 * 3600);
        let file = std::fs::File::options().write(true).open(&old).expect("open");
        file.set_modified(std::time::SystemTime::now() - three_days).expect("age it");
        assert!(sweep_spool(std::time::Duration::from_secs(2 * 24 * 3600)) >= 1);
        assert!(!old.exists() && fresh.exists());
        std::fs::remove_file(&fresh).ok();
    }

    #[test]
    fn the_preview_masks_id_numbers_however_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("roster.csv");
        let text =
            "姓名,身份证号码,备注\n张伟,'320724198803051216,\n李娜,32072419900101002X,证件 320724-19900101-0021\n";
        std::fs::write(&path, text).expect("roster");
        let (detected, mapping) = detect(&path).expect("detected");
        let shown = detected.to_string();
        for id in ["320724198803051216", "32072419900101002X", "320724-19900101-0021"] {
            assert!(!shown.contains(id), "{id} in {shown}");
        }
        assert!(shown.contains("320724********1216"), "{shown}");
        assert_eq!(mapping.columns_of(Field::IdNumber).collect::<Vec<_>>(), [1]);
    }
}
