//! Matching a roster of any length in bounded memory: the roster is read in chunks on a
//! thread of its own while the registry is built on another; the model is trained on the
//! first rows, then each chunk is matched (on `config.threads` threads) while the next
//! one is read. At most about three chunks are held at once (one being read, one waiting,
//! one being matched), besides the registry, or more while the first `train_rows` rows
//! are gathered if chunks are smaller than that.

use std::collections::VecDeque;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use serde::Serialize;

use super::{train, MatchConfig, Matcher, Model, Record, Registry, RowMatch, TrainOptions, Training};
use crate::import::{RawFields, RowError, Rows, Summary};

/// Roster rows in file order: the readable ones with their data row numbers, and the
/// ones that could not be read (reported, never dropped).
#[derive(Debug, Default)]
pub struct Chunk {
    pub lines: Vec<u64>,
    pub records: Vec<Record>,
    pub unreadable: Vec<RowError>,
    /// With [`StreamOptions::keep_raw`]: each readable row's line in the file and its
    /// fields as written, beside `records`.
    pub raw: Vec<(u64, RawFields)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamOptions {
    /// Readable roster rows per chunk.
    pub chunk_rows: usize,
    /// The model is trained on the first rows, at most this many.
    pub train_rows: usize,
    pub train: TrainOptions,
    /// Keep each row's fields as written (for a reviewer to see), at the cost of memory.
    pub keep_raw: bool,
    /// m and u set by the user instead of estimated from the roster: nothing is trained.
    pub model: Option<Model>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk_rows: 250_000,
            train_rows: 50_000,
            train: TrainOptions::default(),
            keep_raw: false,
            model: None,
        }
    }
}

/// Seconds since the start of [`match_stream`], and time spent in each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StreamTimings {
    /// When the first chunk was read (the registry is built meanwhile).
    pub first_chunk: f64,
    /// When the registry was ready.
    pub registry_ready: f64,
    pub train: f64,
    pub matching: f64,
    /// Time in `on_chunk` (writing the results).
    pub output: f64,
    /// Time spent waiting for the reader after the first chunk.
    pub waiting: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    pub rows: usize,
    pub unreadable: usize,
    pub chunks: usize,
    /// Rows the model was trained on.
    pub train_rows: usize,
    pub training: Training,
    /// How reading the roster ended ([`crate::import::End::Failed`] if it stopped early).
    pub roster: Summary,
    pub timings: StreamTimings,
}

fn read_chunks(mut rows: Rows, chunk_rows: usize, keep_raw: bool, tx: std::sync::mpsc::SyncSender<Chunk>) -> Summary {
    let mut chunk = Chunk::default();
    for row in rows.by_ref() {
        match row {
            Ok(row) => {
                chunk.lines.push(row.data_row);
                chunk.records.push(Record::from_fields(&row.fields));
                if keep_raw {
                    chunk.raw.push((row.line, row.raw));
                }
            }
            Err(e) => chunk.unreadable.push(e),
        }
        // Unreadable rows count too: a file of nothing else must not pile them up.
        let full = chunk.records.len() >= chunk_rows || chunk.unreadable.len() >= chunk_rows;
        if full && tx.send(std::mem::take(&mut chunk)).is_err() {
            return rows.summary().clone();
        }
    }
    if !chunk.records.is_empty() || !chunk.unreadable.is_empty() {
        let _ = tx.send(chunk);
    }
    rows.summary().clone()
}

/// Builds the registry (`registry`, on its own thread) while reading `roster` in chunks
/// (on another), trains on the first `options.train_rows` rows, then hands each chunk
/// with its results to `on_chunk`, in file order. An error from `registry` or `on_chunk`
/// stops the run (the reader stops at its next chunk).
pub fn match_stream<E: Send>(
    registry: impl FnOnce() -> Result<Registry, E> + Send,
    roster: Rows,
    config: &MatchConfig,
    options: &StreamOptions,
    mut on_chunk: impl FnMut(&Matcher<'_>, &Chunk, &[RowMatch]) -> Result<(), E>,
) -> Result<StreamReport, E> {
    let start = Instant::now();
    let mut timings = StreamTimings::default();
    let chunk_rows = options.chunk_rows.max(1);
    let (tx, rx) = sync_channel::<Chunk>(1);
    std::thread::scope(|s| {
        let keep_raw = options.keep_raw;
        let reader = s.spawn(move || read_chunks(roster, chunk_rows, keep_raw, tx));
        let builder = s.spawn(registry);
        // The chunks that hold the first `train_rows` rows (one, unless chunks are small).
        let mut pending: VecDeque<Chunk> = rx.recv().ok().into_iter().collect();
        timings.first_chunk = start.elapsed().as_secs_f64();
        let mut read: usize = pending.iter().map(|c| c.records.len()).sum();
        let train_rows = if options.model.is_some() { 0 } else { options.train_rows };
        while read < train_rows && !pending.is_empty() {
            let Ok(chunk) = rx.recv() else { break };
            read += chunk.records.len();
            pending.push_back(chunk);
        }
        let registry = match builder.join() {
            Ok(r) => r?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        timings.registry_ready = start.elapsed().as_secs_f64();

        let clock = Instant::now();
        let joined: Vec<Record>;
        let sample = match pending.len() {
            0 => &[][..],
            1 => &pending[0].records[..],
            _ => {
                joined = pending.iter().flat_map(|c| &c.records).take(options.train_rows).cloned().collect();
                &joined[..]
            }
        };
        let sample = &sample[..sample.len().min(train_rows)];
        let train_rows = sample.len();
        let training = match &options.model {
            Some(model) => Training::given(model.clone()),
            None => train(&registry, sample, config, &options.train),
        };
        timings.train = clock.elapsed().as_secs_f64();
        let matcher = Matcher::new(&registry, training.model.clone(), *config);

        let (mut rows, mut unreadable, mut chunks) = (0, 0, 0);
        loop {
            let clock = Instant::now();
            let Some(chunk) = pending.pop_front().or_else(|| rx.recv().ok()) else { break };
            timings.waiting += clock.elapsed().as_secs_f64();
            let clock = Instant::now();
            let results = matcher.match_all(&chunk.records);
            timings.matching += clock.elapsed().as_secs_f64();
            let clock = Instant::now();
            on_chunk(&matcher, &chunk, &results)?;
            timings.output += clock.elapsed().as_secs_f64();
            rows += chunk.records.len();
            unreadable += chunk.unreadable.len();
            chunks += 1;
        }
        drop(rx);
        let roster = match reader.join() {
            Ok(summary) => summary,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        timings.total = start.elapsed().as_secs_f64();
        Ok(StreamReport { rows, unreadable, chunks, train_rows, training, roster, timings })
    })
}
