//! Screening benchmark: generates a registry and a roster with ground truth, runs the
//! engine on the files as `kite screen match` would, and prints accuracy per band, time
//! per stage and peak memory.
//!
//! ```text
//! cargo run --release -p kite-screen --example screen_bench -- \
//!     --members 100000 --rows 100000 --corruption standard --threads 2
//! ```
//!
//! Options: `--members N`, `--rows N`, `--member-share F`, `--corruption none|standard|heavy`,
//! `--seed N`, `--threads N`, `--train-rows N`, `--match F`, `--review F`, `--dir PATH`
//! (keep the files there), `--weights` (print the model).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use kite_screen::gen::{Corruption, Counts, GenConfig, Generator};
use kite_screen::import::{ImportOptions, Roster};
use kite_screen::matcher::{
    train, Band, MatchConfig, Matcher, Path as Found, Record, RegistryBuilder, TrainOptions, FIELDS, LEVELS,
};
use kite_screen::normalize::{normalize_id, repair_candidates};
use rustc_hash::FxHashMap;

type Error = Box<dyn std::error::Error>;

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

fn open(path: &Path) -> Result<kite_screen::import::Rows, Error> {
    let roster = Roster::open(path, &ImportOptions::default())?;
    Ok(roster.rows(Arc::new(AtomicBool::new(false)))?)
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

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let today = NaiveDate::from_ymd_opt(2025, 6, 1).ok_or("date")?;
    let gen_config = GenConfig {
        seed: arg(&args, "--seed", 2024)?,
        members: arg(&args, "--members", 20_000)?,
        roster_rows: arg(&args, "--rows", 5_000)?,
        member_share: arg(&args, "--member-share", 0.5)?,
        corruption: arg(&args, "--corruption", Corruption::Standard)?,
        today,
        ..GenConfig::default()
    };
    let defaults = MatchConfig::default();
    let config = MatchConfig {
        threads: arg(&args, "--threads", defaults.threads)?,
        match_threshold: arg(&args, "--match", defaults.match_threshold)?,
        review_threshold: arg(&args, "--review", defaults.review_threshold)?,
        today,
        ..defaults
    };
    let train_rows: usize = arg(&args, "--train-rows", 50_000)?;
    let temp = tempfile::tempdir()?;
    let dir: PathBuf = arg(&args, "--dir", temp.path().to_owned())?;
    std::fs::create_dir_all(&dir)?;
    let (members_csv, roster_csv, truth_csv, matches_csv) =
        (dir.join("members.csv"), dir.join("roster.csv"), dir.join("truth.csv"), dir.join("matches.csv"));

    println!(
        "# screen_bench: {} members, {} roster rows, corruption {:?}, member share {}, seed {}, {} threads",
        gen_config.members,
        gen_config.roster_rows,
        gen_config.corruption,
        gen_config.member_share,
        gen_config.seed,
        config.threads
    );
    let mut stages: Vec<(&str, f64)> = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, stages: &mut Vec<(&str, f64)>| {
        stages.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };

    let generator = Generator::new(gen_config.clone());
    generator.write_registry(BufWriter::new(File::create(&members_csv)?))?;
    generator.write_roster(BufWriter::new(File::create(&roster_csv)?), BufWriter::new(File::create(&truth_csv)?))?;
    lap("generate files (not part of the run)", &mut stages);
    let start = Instant::now();

    let mut builder = RegistryBuilder::new();
    for row in open(&members_csv)? {
        let row = row.map_err(|e| format!("registry line {}: {}", e.line, e.reason.code()))?;
        builder.push(row.data_row, &Record::from_fields(&row.fields));
    }
    lap("read + normalize registry", &mut stages);
    let registry = builder.build();
    lap("index registry", &mut stages);

    let mut lines = Vec::new();
    let mut rows = Vec::new();
    let mut unreadable = 0;
    for row in open(&roster_csv)? {
        match row {
            Ok(row) => {
                lines.push(row.data_row);
                rows.push(Record::from_fields(&row.fields));
            }
            Err(_) => unreadable += 1,
        }
    }
    lap("read + normalize roster", &mut stages);

    let sample = &rows[..rows.len().min(train_rows)];
    let training = train(&registry, sample, &config, &TrainOptions::default());
    lap("train (u from random pairs, EM)", &mut stages);
    let matcher = Matcher::new(&registry, training.model.clone(), config);
    let results = matcher.match_all(&rows);
    lap("match", &mut stages);
    matcher.write_matches(BufWriter::new(File::create(&matches_csv)?), lines.iter().copied().zip(&results))?;
    lap("write MATCHES.csv", &mut stages);
    let total = start.elapsed().as_secs_f64();
    let peak = peak_memory_mib();

    let join_start = Instant::now();
    let joined = plain_join(&members_csv, &roster_csv)?;
    let join_secs = join_start.elapsed().as_secs_f64();
    let id_start = Instant::now();
    let id_found = id_path(&members_csv, &roster_csv, today)?;
    let id_secs = id_start.elapsed().as_secs_f64();

    // Truth by data row.
    let mut truth: HashMap<u64, String> = HashMap::new();
    for rec in csv::Reader::from_path(&truth_csv)?.records() {
        let rec = rec?;
        if let (Some(row), Some(id)) = (rec.get(0).and_then(|r| r.parse().ok()), rec.get(2).filter(|s| !s.is_empty())) {
            truth.insert(row, id.to_owned());
        }
    }
    let mut per_band: Vec<(&str, Vec<Band>, Counts)> = vec![
        ("match", vec![Band::Match], Counts::default()),
        ("review", vec![Band::Review], Counts::default()),
        ("match + review (best match)", vec![Band::Match, Band::Review], Counts::default()),
    ];
    let (mut compared, mut by_path) = (0u64, [0usize; 3]);
    for (line, result) in lines.iter().zip(&results) {
        compared += u64::from(result.compared);
        let t = truth.get(line).map(String::as_str);
        for (_, bands, counts) in per_band.iter_mut() {
            let predicted = result.best().filter(|c| bands.contains(&c.band)).map(|c| registry.id_number(c.member));
            counts.add(t, predicted);
        }
        if let Some(c) = result.best().filter(|c| c.band == Band::Match) {
            by_path[match c.path {
                Found::Id => 0,
                Found::RepairedId => 1,
                Found::Blocking => 2,
            }] += 1;
        }
    }
    // Review-band recall is over all member rows; its precision is what a reviewer sees.
    println!("\n| band | rows proposed | correct | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|");
    for (name, _, c) in &per_band {
        println!(
            "| {name} | {} | {} | {:.4} | {:.4} | {:.4} |",
            c.predicted,
            c.correct,
            c.precision(),
            c.recall(),
            c.f1()
        );
    }
    println!(
        "\nmember rows {}, unreadable rows {unreadable}, candidate pairs compared {compared} ({:.1} per row); sure matches by path: ID {}, repaired ID {}, blocking {}",
        per_band[0].2.actual,
        compared as f64 / rows.len().max(1) as f64,
        by_path[0],
        by_path[1],
        by_path[2]
    );
    println!(
        "training: {} rows, {} candidate pairs, {} distinct vectors, EM {} iterations (converged {}), match share among candidates {:.4}, prior {:.3e}",
        sample.len(),
        training.pairs,
        training.patterns,
        training.em_iterations,
        training.converged,
        training.candidate_prior,
        training.model.prior
    );
    println!("\n| stage | seconds |\n|---|---:|");
    for (name, secs) in &stages {
        println!("| {name} | {secs:.3} |");
    }
    println!("| **end to end (without generation)** | **{total:.3}** |");
    println!(
        "\nplain hash join on the raw ID column: {join_secs:.3} s ({joined} rows found); ID path with normalization, 15→18 and repair: {id_secs:.3} s ({id_found} rows found), ratio {:.2}",
        id_secs / join_secs.max(1e-9)
    );
    println!("registry index {:.1} MiB; peak memory (VmHWM) {peak:.1} MiB", registry.heap_bytes() as f64 / 1048576.0);
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
    Ok(())
}
