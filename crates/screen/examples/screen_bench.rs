//! Screening benchmark: generates a registry and a roster with ground truth, runs the
//! engine on the files as `kite screen match` would, and scores any MATCHES.csv (ours or
//! Splink's) against the truth with one scorer. `scripts/bench-screen.sh` drives it and
//! runs Splink on the same files.
//!
//! ```text
//! # everything in one process, on files in a temporary directory (quick look):
//! cargo run --release -p kite-screen --example screen_bench -- \
//!     --members 100000 --rows 100000 --corruption standard --threads 2
//! # the steps the script runs, on files kept in DIR:
//! screen_bench gen    --dir DIR --members N --rows N [--seed S] [--corruption C] [--splink]
//! screen_bench run    --dir DIR [--threads N] [--chunk-rows N] [--train-rows N] [--out FILE]
//! screen_bench idpath --dir DIR
//! screen_bench score  --dir DIR --matches FILE
//! ```
//!
//! Options: `--members N`, `--rows N`, `--member-share F`, `--corruption none|standard|heavy`,
//! `--seed N`, `--threads N`, `--train-rows N`, `--chunk-rows N` (roster rows held at once),
//! `--match F`, `--review F`, `--dir PATH` (keep the files there), `--weights` (print the
//! model), `--splink` (`gen` also writes the normalized fields as CSV for Splink).
//!
//! `run` reads the registry on one thread while another reads the roster in chunks of
//! `--chunk-rows` rows; it trains on the first `--train-rows` rows, then matches chunk by
//! chunk while the next one is read, so memory is the registry plus about three chunks,
//! whatever the roster's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use kite_screen::gen::{Corruption, Counts, GenConfig, Generator};
use kite_screen::import::{ImportOptions, Roster};
use kite_screen::matcher::{
    match_stream, Band, MatchConfig, Path as Found, Record, Registry, RegistryBuilder, StreamOptions, StreamReport,
    TrainOptions, FIELDS, LEVELS,
};
use kite_screen::normalize::{normalize_id, repair_candidates, Gender};
use rustc_hash::FxHashMap;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, Error> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("bad value for {name}").into()),
        None => Ok(default),
    }
}

fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default()
}

fn open(path: &Path) -> Result<kite_screen::import::Rows, Error> {
    let roster = Roster::open(path, &ImportOptions::default())?;
    Ok(roster.rows(Arc::new(AtomicBool::new(false)))?)
}

struct Files {
    members: PathBuf,
    roster: PathBuf,
    truth: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files { members: dir.join("members.csv"), roster: dir.join("roster.csv"), truth: dir.join("truth.csv") }
    }
}

fn gen_config(args: &[String]) -> Result<GenConfig, Error> {
    Ok(GenConfig {
        seed: arg(args, "--seed", 2024)?,
        members: arg(args, "--members", 20_000)?,
        roster_rows: arg(args, "--rows", 5_000)?,
        member_share: arg(args, "--member-share", 0.5)?,
        corruption: arg(args, "--corruption", Corruption::Standard)?,
        today: today(),
        ..GenConfig::default()
    })
}

fn match_config(args: &[String]) -> Result<MatchConfig, Error> {
    let defaults = MatchConfig::default();
    Ok(MatchConfig {
        threads: arg(args, "--threads", defaults.threads)?,
        match_threshold: arg(args, "--match", defaults.match_threshold)?,
        review_threshold: arg(args, "--review", defaults.review_threshold)?,
        today: today(),
        ..defaults
    })
}

/// Writes the registry, the roster and the truth; with `splink`, also the fields our
/// normalizer gives (as the matcher compares them) for Splink.
fn generate(config: &GenConfig, files: &Files, splink: bool) -> Result<(), Error> {
    let generator = Generator::new(config.clone());
    generator.write_registry(BufWriter::new(File::create(&files.members)?))?;
    generator
        .write_roster(BufWriter::new(File::create(&files.roster)?), BufWriter::new(File::create(&files.truth)?))?;
    if splink {
        for (from, to) in [(&files.members, "members_norm.csv"), (&files.roster, "roster_norm.csv")] {
            let dir = from.parent().ok_or("no directory")?;
            write_normalized(from, &dir.join(to))?;
        }
    }
    Ok(())
}

/// One CSV row per readable data row: the record the matcher compares, with the birth
/// date split so that SQL can compare it at each precision. Empty means unknown.
fn write_normalized(from: &Path, to: &Path) -> Result<(), Error> {
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(to)?));
    w.write_record([
        "unique_id",
        "name",
        "pinyin",
        "id",
        "birth_date",
        "birth_ym",
        "birth_year",
        "birth_md",
        "birth_dm",
        "gender",
        "phone",
        "address",
    ])?;
    for row in open(from)? {
        let Ok(row) = row else { continue };
        let r = Record::from_fields(&row.fields);
        let b = r.birth;
        let text = |v: Option<String>| v.unwrap_or_default();
        w.write_record([
            row.data_row.to_string(),
            r.name_key.clone(),
            r.pinyin.clone(),
            r.id.clone(),
            text(b.and_then(|d| d.date()).map(|d| d.format("%Y-%m-%d").to_string())),
            text(b.and_then(|d| d.month().map(|m| format!("{}-{m:02}", d.year())))),
            text(b.map(|d| d.year().to_string())),
            text(b.and_then(|d| d.date()).map(|d| format!("{:02}-{:02}", d.month(), d.day()))),
            text(b.and_then(|d| d.date()).map(|d| format!("{:02}-{:02}", d.day(), d.month()))),
            match r.gender {
                Some(Gender::Male) => "m".into(),
                Some(Gender::Female) => "f".into(),
                None => String::new(),
            },
            text(r.phone.map(|p| p.to_string())),
            r.address.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// A plain hash join of the two files on the ID column, as the baseline of the ID path.
fn plain_join(members: &Path, roster: &Path) -> Result<usize, Error> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, rec) in csv::Reader::from_path(members)?.records().enumerate() {
        ids.insert(rec?.get(1).unwrap_or("").to_owned(), i);
    }
    let mut found = 0;
    for rec in csv::Reader::from_path(roster)?.records() {
        found += usize::from(ids.contains_key(rec?.get(3).unwrap_or("")));
    }
    Ok(found)
}

/// The ID path alone on the same files: normalization, the 15 to 18 upgrade, repair.
fn id_path(members: &Path, roster: &Path, today: NaiveDate) -> Result<usize, Error> {
    let mut ids: FxHashMap<String, usize> = FxHashMap::default();
    for (i, rec) in csv::Reader::from_path(members)?.records().enumerate() {
        if let Some(id) = normalize_id(rec?.get(1).unwrap_or("")).valid() {
            ids.insert(id.to_owned(), i);
        }
    }
    let mut found = 0;
    for rec in csv::Reader::from_path(roster)?.records() {
        let rec = rec?;
        let check = normalize_id(rec.get(3).unwrap_or(""));
        found += usize::from(match check.valid() {
            Some(id) => ids.contains_key(id),
            None => check.cleaned().is_some_and(|c| repair_candidates(c, today).iter().any(|r| ids.contains_key(r))),
        });
    }
    Ok(found)
}

fn read_registry(path: &Path) -> Result<(Registry, f64, f64), Error> {
    let start = Instant::now();
    let mut builder = RegistryBuilder::new();
    for row in open(path)? {
        let row = row.map_err(|e| format!("registry line {}: {}", e.line, e.reason.code()))?;
        builder.push(row.data_row, &Record::from_fields(&row.fields));
    }
    let read = start.elapsed().as_secs_f64();
    let registry = builder.build();
    Ok((registry, read, start.elapsed().as_secs_f64() - read))
}

/// What `run` measured.
#[derive(Default)]
struct RunStats {
    compared: u64,
    by_path: [usize; 3],
    registry_read: f64,
    registry_index: f64,
    peak_mib: f64,
    registry_mib: f64,
}

/// The engine on the files, as `kite screen match` does it, with the registry and the
/// roster read at once and the roster streamed in chunks ([`match_stream`]).
fn run_engine(
    files: &Files,
    config: MatchConfig,
    options: &StreamOptions,
    out: &Path,
) -> Result<(RunStats, StreamReport), Error> {
    let mut stats = RunStats::default();
    let mut file = BufWriter::new(File::create(out)?);
    writeln!(file, "roster_line,member_id_number,score,band")?;
    let mut registry_times = (0.0, 0.0);
    let mut registry_mib = 0.0;
    let times = &mut registry_times;
    let report = match_stream(
        move || -> Result<Registry, Error> {
            let (registry, read, index) = read_registry(&files.members)?;
            *times = (read, index);
            Ok(registry)
        },
        open(&files.roster)?,
        &config,
        options,
        |matcher, chunk, results| -> Result<(), Error> {
            // One header for the whole file: write each chunk without its own.
            let mut buf = Vec::new();
            matcher.write_matches(&mut buf, chunk.lines.iter().copied().zip(results))?;
            let body = buf.iter().position(|b| *b == b'\n').map_or(&buf[..0], |i| &buf[i + 1..]);
            file.write_all(body)?;
            registry_mib = matcher.registry().heap_bytes() as f64 / 1048576.0;
            for result in results {
                stats.compared += u64::from(result.compared);
                if let Some(c) = result.best().filter(|c| c.band == Band::Match) {
                    stats.by_path[match c.path {
                        Found::Id => 0,
                        Found::RepairedId => 1,
                        Found::Blocking => 2,
                    }] += 1;
                }
            }
            Ok(())
        },
    )?;
    file.flush()?;
    stats.registry_read = registry_times.0;
    stats.registry_index = registry_times.1;
    stats.registry_mib = registry_mib;
    stats.peak_mib = peak_memory_mib();
    Ok((stats, report))
}

fn print_run(stats: &RunStats, report: &StreamReport, args: &[String]) {
    let (s, t, training) = (stats, &report.timings, &report.training);
    println!("| stage | seconds |\n|---|---:|");
    println!("| read + normalize registry (thread 1) | {:.3} |", s.registry_read);
    println!("| index registry (thread 1) | {:.3} |", s.registry_index);
    println!("| first roster chunk read + normalized (thread 2, at the same time) | {:.3} |", t.first_chunk);
    println!("| registry ready | {:.3} |", t.registry_ready);
    println!("| train ({} rows; u from random pairs, EM) | {:.3} |", report.train_rows, t.train);
    println!("| match ({} chunks) | {:.3} |", report.chunks, t.matching);
    println!("| write MATCHES.csv | {:.3} |", t.output);
    println!("| waiting for the roster reader after the first chunk | {:.3} |", t.waiting);
    println!("| **end to end** | **{:.3}** |", t.total);
    println!(
        "\nroster rows {}, unreadable {}, candidate pairs compared {} ({:.2} per row); sure matches by path: ID {}, repaired ID {}, blocking {}",
        report.rows,
        report.unreadable,
        s.compared,
        s.compared as f64 / report.rows.max(1) as f64,
        s.by_path[0],
        s.by_path[1],
        s.by_path[2]
    );
    println!(
        "training: {} candidate pairs, {} distinct vectors, EM {} iterations (converged {}), match share among candidates {:.4}, prior {:.3e}",
        training.pairs,
        training.patterns,
        training.em_iterations,
        training.converged,
        training.candidate_prior,
        training.model.prior
    );
    println!("registry index {:.1} MiB; peak memory (VmHWM) {:.1} MiB", s.registry_mib, s.peak_mib);
    println!("ENGINE_SECONDS {:.3}", t.total);
    if args.iter().any(|a| a == "--weights") {
        let w = training.model.weights();
        println!("\n| field | level | m | u | weight |\n|---|---|---:|---:|---:|");
        for (f, name) in FIELDS.iter().enumerate() {
            for (l, level) in LEVELS[f].iter().enumerate().skip(1) {
                println!(
                    "| {name} | {level} | {:.4} | {:.6} | {:.2} |",
                    training.model.m[f][l], training.model.u[f][l], w.w[f][l]
                );
            }
        }
    }
}

fn print_idpath(files: &Files) -> Result<(), Error> {
    let clock = Instant::now();
    let joined = plain_join(&files.members, &files.roster)?;
    let join_secs = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let found = id_path(&files.members, &files.roster, today())?;
    let id_secs = clock.elapsed().as_secs_f64();
    println!(
        "plain hash join on the raw ID column: {join_secs:.3} s ({joined} rows found); ID path with normalization, 15→18 and repair: {id_secs:.3} s ({found} rows found), ratio {:.2}",
        id_secs / join_secs.max(1e-9)
    );
    println!("IDPATH {join_secs:.3} {id_secs:.3} {:.2} {joined} {found}", id_secs / join_secs.max(1e-9));
    Ok(())
}

/// The best candidate of each roster row in a MATCHES.csv (highest score, first on ties)
/// against the truth, per band. The same scorer reads ours and Splink's.
fn score(truth_path: &Path, matches: &Path) -> Result<(), Error> {
    let mut truth: FxHashMap<u64, String> = FxHashMap::default();
    let mut rows = 0usize;
    for rec in csv::Reader::from_path(truth_path)?.records() {
        let rec = rec?;
        rows += 1;
        if let (Some(row), Some(id)) = (rec.get(0).and_then(|r| r.parse().ok()), rec.get(2).filter(|s| !s.is_empty())) {
            truth.insert(row, id.to_owned());
        }
    }
    let mut best: FxHashMap<u64, (f64, String, bool)> = FxHashMap::default();
    let mut pairs = 0usize;
    for rec in csv::Reader::from_path(matches)?.records() {
        let rec = rec?;
        let (Some(line), Some(id), Some(score), Some(band)) = (
            rec.get(0).and_then(|r| r.parse::<u64>().ok()),
            rec.get(1),
            rec.get(2).and_then(|s| s.parse::<f64>().ok()),
            rec.get(3),
        ) else {
            return Err(format!("{}: bad line {:?}", matches.display(), rec).into());
        };
        pairs += 1;
        let sure = band == "match";
        if !sure && band != "review" {
            continue;
        }
        let e = best.entry(line).or_insert((f64::NEG_INFINITY, String::new(), false));
        if score > e.0 {
            *e = (score, id.to_owned(), sure);
        }
    }
    let bands: [(&str, &str, &[bool]); 3] = [
        ("match", "match", &[true]),
        ("review", "review", &[false]),
        ("best", "match + review (best match)", &[true, false]),
    ];
    println!(
        "{rows} roster rows, {} of them members; {pairs} pairs listed, {} rows with a candidate",
        truth.len(),
        best.len()
    );
    println!(
        "\n| band | rows proposed | right | wrong | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (key, name, sure) in bands {
        let mut c = Counts::default();
        for row in 1..=rows as u64 {
            let predicted = best.get(&row).filter(|b| sure.contains(&b.2)).map(|b| b.1.as_str());
            c.add(truth.get(&row).map(String::as_str), predicted);
        }
        println!(
            "| {name} | {} | {} | {} | {:.4} | {:.4} | {:.4} |",
            c.predicted,
            c.correct,
            c.predicted - c.correct,
            c.precision(),
            c.recall(),
            c.f1()
        );
        println!(
            "SCORE {key} {} {} {} {:.4} {:.4} {:.4}",
            c.predicted,
            c.correct,
            c.predicted - c.correct,
            c.precision(),
            c.recall(),
            c.f1()
        );
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let command = args.get(1).filter(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "all".into());
    let defaults = StreamOptions::default();
    let options = StreamOptions {
        train_rows: arg(&args, "--train-rows", defaults.train_rows)?,
        chunk_rows: arg(&args, "--chunk-rows", defaults.chunk_rows)?,
        train: TrainOptions {
            random_pairs: arg(&args, "--random-pairs", defaults.train.random_pairs)?,
            ..defaults.train
        },
        keep_raw: false,
        model: None,
    };
    let temp = tempfile::tempdir()?;
    let dir: PathBuf = arg(&args, "--dir", temp.path().to_owned())?;
    std::fs::create_dir_all(&dir)?;
    let files = Files::in_dir(&dir);
    match command.as_str() {
        "gen" => {
            let config = gen_config(&args)?;
            let clock = Instant::now();
            generate(&config, &files, args.iter().any(|a| a == "--splink"))?;
            println!("generated in {:.3} s into {}", clock.elapsed().as_secs_f64(), dir.display());
        }
        "run" => {
            let out: PathBuf = arg(&args, "--out", dir.join("matches.csv"))?;
            let config = match_config(&args)?;
            let (stats, report) = run_engine(&files, config, &options, &out)?;
            print_run(&stats, &report, &args);
        }
        "idpath" => print_idpath(&files)?,
        "score" => {
            let matches: PathBuf = arg(&args, "--matches", dir.join("matches.csv"))?;
            score(&files.truth, &matches)?;
        }
        "all" => {
            let gen = gen_config(&args)?;
            let config = match_config(&args)?;
            println!(
                "# screen_bench: {} members, {} roster rows, corruption {:?}, member share {}, seed {}, {} threads\n",
                gen.members, gen.roster_rows, gen.corruption, gen.member_share, gen.seed, config.threads
            );
            let clock = Instant::now();
            generate(&gen, &files, false)?;
            println!("generated in {:.3} s (not part of the run)\n", clock.elapsed().as_secs_f64());
            let out = dir.join("matches.csv");
            let (stats, report) = run_engine(&files, config, &options, &out)?;
            print_run(&stats, &report, &args);
            println!();
            print_idpath(&files)?;
            println!();
            score(&files.truth, &out)?;
        }
        other => return Err(format!("unknown command {other}: gen, run, idpath, score or none").into()),
    }
    Ok(())
}
