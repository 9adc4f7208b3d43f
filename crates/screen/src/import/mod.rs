//! Streaming roster import: CSV/TSV in UTF-8, GB18030 (GBK) or UTF-16, and .xlsx.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use kite_screen::import::{ImportOptions, Roster};
//!
//! let mut roster = Roster::open("roster.csv".as_ref(), &ImportOptions::default())?;
//! let mut mapping = roster.mapping().clone(); // show it to the user, let them edit it
//! mapping.columns[0].field = None;
//! roster.set_mapping(mapping)?;
//! let progress = roster.progress(); // poll from another thread
//! let mut rows = roster.rows(Arc::new(AtomicBool::new(false)))?;
//! for row in rows.by_ref() {
//!     match row {
//!         Ok(row) => { /* row.fields … */ }
//!         Err(e) => eprintln!("line {}: {}", e.line, e.reason.code()),
//!     }
//! }
//! println!("{:?}", rows.summary());
//! # Ok::<(), kite_screen::import::ImportError>(())
//! ```

pub mod columns;
pub mod delimited;
#[doc(hidden)]
pub mod fuzz;
pub mod row;
mod xlsx;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use columns::{Column, ColumnMapping, Field};
pub use delimited::TextEncoding;
pub use row::{FieldIssue, NormalizedFields, RawFields, RosterRow};

/// Longest record (in decoded bytes) before the file is taken to be broken.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;
/// Longest mapped cell (in bytes); longer ones make the row an error.
pub const MAX_CELL_BYTES: usize = 4096;
/// Columns read per row; cells further right are ignored.
pub const MAX_COLUMNS: usize = 1024;
/// Records read ahead on open to find the header (and shown as a preview).
pub const PREAMBLE_ROWS: usize = 30;

/// Failures that stop a file from being read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[source] io::Error),
    #[error("cannot read the workbook: {0}")]
    Xlsx(String),
    #[error("no sheet named {0:?}")]
    SheetNotFound(String),
    #[error("file format not supported: {0}")]
    Unsupported(&'static str),
    #[error("the mapping's header line {0} is not among the first rows")]
    HeaderOutOfRange(u64),
    #[error("no column is mapped to the name or the ID number")]
    MappingIncomplete,
}

impl ImportError {
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Io(_) => "file.io",
            ImportError::Xlsx(_) => "file.xlsx",
            ImportError::SheetNotFound(_) => "file.sheet_not_found",
            ImportError::Unsupported(_) => "file.unsupported",
            ImportError::HeaderOutOfRange(_) => "mapping.header_out_of_range",
            ImportError::MappingIncomplete => "mapping.incomplete",
        }
    }
}

/// Why a row could not be read. The last two end the run (see [`End::Failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowErrorReason {
    /// Fewer fields than the header, so that a mapped column is missing.
    TooFewFields,
    /// More non-empty fields than the header: an unquoted delimiter shifted the columns.
    TooManyFields,
    /// Bytes that are not text in the file's encoding.
    BadEncoding,
    /// A mapped cell longer than [`MAX_CELL_BYTES`].
    CellTooLong,
    /// A record longer than [`MAX_RECORD_BYTES`], most likely an unbalanced quote.
    RecordTooLarge,
    /// The file could not be read further (I/O error, damaged workbook).
    ReadFailed,
}

impl RowErrorReason {
    pub fn code(self) -> &'static str {
        match self {
            RowErrorReason::TooFewFields => "row.too_few_fields",
            RowErrorReason::TooManyFields => "row.too_many_fields",
            RowErrorReason::BadEncoding => "row.bad_encoding",
            RowErrorReason::CellTooLong => "row.cell_too_long",
            RowErrorReason::RecordTooLarge => "file.record_too_large",
            RowErrorReason::ReadFailed => "file.read_failed",
        }
    }

    /// Whether reading stops after this error.
    pub fn is_fatal(self) -> bool {
        matches!(self, RowErrorReason::RecordTooLarge | RowErrorReason::ReadFailed)
    }
}

/// A row that could not be read, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line (CSV) or row (xlsx) as the user sees it; 0 if unknown.
    pub line: u64,
    /// The data row number it takes (see [`RosterRow::data_row`]); `None` for errors
    /// that end the file rather than a row.
    pub data_row: Option<u64>,
    pub reason: RowErrorReason,
    /// Technical detail for the log (never shown as the message).
    pub detail: Option<String>,
}

/// What a source hands the importer next.
#[derive(Debug)]
pub(crate) enum Next {
    Record { line: u64, cells: Vec<String> },
    Bad { line: u64, reason: RowErrorReason },
    Fatal { line: u64, reason: RowErrorReason, detail: String },
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Tsv,
    Xlsx,
}

/// What progress counts: bytes of the file (CSV, TSV) or rows of the sheet (xlsx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressUnit {
    Bytes,
    Rows,
}

#[derive(Debug)]
struct ProgressState {
    unit: ProgressUnit,
    done: AtomicU64,
    total: AtomicU64,
    rows: AtomicU64,
    errors: AtomicU64,
}

/// A handle on a run's progress, cheap to clone and to read from another thread.
#[derive(Debug, Clone)]
pub struct Progress(Arc<ProgressState>);

/// A reading of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProgressSnapshot {
    pub unit: ProgressUnit,
    pub done: u64,
    /// Unknown (`None`) until the source says.
    pub total: Option<u64>,
    /// Rows read and rows that could not be read so far.
    pub rows: u64,
    pub errors: u64,
}

impl Progress {
    fn new(unit: ProgressUnit, total: Option<u64>) -> Progress {
        Progress(Arc::new(ProgressState {
            unit,
            done: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(0)),
            rows: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }))
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let total = self.0.total.load(Ordering::Relaxed);
        ProgressSnapshot {
            unit: self.0.unit,
            done: self.0.done.load(Ordering::Relaxed),
            total: (total > 0).then_some(total),
            rows: self.0.rows.load(Ordering::Relaxed),
            errors: self.0.errors.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add_done(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_done(&self, n: u64) {
        self.0.done.store(n, Ordering::Relaxed);
    }

    pub(crate) fn set_total(&self, n: u64) {
        self.0.total.store(n, Ordering::Relaxed);
    }
}

/// Choices the caller may make instead of the detection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportOptions {
    pub format: Option<Format>,
    pub encoding: Option<TextEncoding>,
    /// A single ASCII byte: `,`, `\t`, `;`, `|`.
    pub delimiter: Option<u8>,
    /// The xlsx sheet; the first one if not given.
    pub sheet: Option<String>,
}

/// What was found on open, for the user to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterInfo {
    pub format: Format,
    pub encoding: Option<TextEncoding>,
    pub delimiter: Option<char>,
    pub sheet: Option<String>,
    /// Whether a header row was recognised; if not, the mapping is empty and the
    /// caller must set one before reading.
    pub header_detected: bool,
}

enum Source {
    Delimited(Box<delimited::DelimitedSource>),
    Xlsx(xlsx::XlsxSource),
}

impl Source {
    fn next_record(&mut self) -> Next {
        match self {
            Source::Delimited(s) => s.next_record(),
            Source::Xlsx(s) => s.next_record(),
        }
    }
}

/// An opened roster: format and encoding known, first rows read, mapping proposed.
pub struct Roster {
    info: RosterInfo,
    mapping: ColumnMapping,
    preamble: Vec<Next>,
    source: Source,
    progress: Progress,
}

fn format_of(path: &Path, head: &[u8], options: &ImportOptions) -> Result<Format, ImportError> {
    if let Some(f) = options.format {
        return Ok(f);
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::Xlsx);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(ImportError::Unsupported("xls"));
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("tsv" | "tab") => Format::Tsv,
        _ => Format::Csv,
    })
}

impl Roster {
    /// Opens a roster file, detects its format, encoding and delimiter, reads the
    /// first [`PREAMBLE_ROWS`] rows and proposes a column mapping.
    pub fn open(path: &Path, options: &ImportOptions) -> Result<Roster, ImportError> {
        let mut head = [0u8; 8];
        let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(ImportError::Io)?;
        let format = format_of(path, &head[..n], options)?;
        let (source, progress, info) = match format {
            Format::Xlsx => {
                let progress = Progress::new(ProgressUnit::Rows, None);
                let (source, sheet) = xlsx::XlsxSource::open(path, options.sheet.clone(), progress.clone())?;
                let info =
                    RosterInfo { format, encoding: None, delimiter: None, sheet: Some(sheet), header_detected: false };
                (Source::Xlsx(source), progress, info)
            }
            Format::Csv | Format::Tsv => {
                let file = File::open(path).map_err(ImportError::Io)?;
                let size = file.metadata().map_err(ImportError::Io)?.len();
                let progress = Progress::new(ProgressUnit::Bytes, Some(size));
                let delimiter = options.delimiter.or((format == Format::Tsv).then_some(b'\t'));
                let (source, encoding, delimiter) =
                    delimited::DelimitedSource::open(file, options.encoding, delimiter, progress.clone())
                        .map_err(ImportError::Io)?;
                let info = RosterInfo {
                    format,
                    encoding: Some(encoding),
                    delimiter: Some(char::from(delimiter)),
                    sheet: None,
                    header_detected: false,
                };
                (Source::Delimited(Box::new(source)), progress, info)
            }
        };
        let mut roster = Roster {
            info,
            mapping: ColumnMapping { header_line: 0, columns: Vec::new() },
            preamble: Vec::new(),
            source,
            progress,
        };
        roster.read_preamble();
        let records: Vec<(u64, Vec<String>)> = roster.preview().map(|(l, c)| (l, c.to_vec())).collect();
        if let Some(mapping) = columns::detect(&records) {
            roster.mapping = mapping;
            roster.info.header_detected = true;
        }
        Ok(roster)
    }

    fn read_preamble(&mut self) {
        while self.preamble.len() < PREAMBLE_ROWS {
            let next = self.source.next_record();
            let stop = matches!(next, Next::End | Next::Fatal { .. });
            self.preamble.push(next);
            if stop {
                break;
            }
        }
    }

    pub fn info(&self) -> &RosterInfo {
        &self.info
    }

    pub fn mapping(&self) -> &ColumnMapping {
        &self.mapping
    }

    /// The first rows as read (line, cells), for a preview next to the mapping.
    pub fn preview(&self) -> impl Iterator<Item = (u64, &[String])> {
        self.preamble.iter().filter_map(|n| match n {
            Next::Record { line, cells } => Some((*line, cells.as_slice())),
            _ => None,
        })
    }

    /// Replaces the proposed mapping. A different header line must be one of the
    /// previewed rows (or 0 for no header); its cells become the column headers
    /// where the given mapping has none.
    pub fn set_mapping(&mut self, mut mapping: ColumnMapping) -> Result<(), ImportError> {
        if mapping.header_line > 0 {
            let Some((_, headers)) = self.preview().find(|(l, _)| *l == mapping.header_line) else {
                return Err(ImportError::HeaderOutOfRange(mapping.header_line));
            };
            for c in &mut mapping.columns {
                if c.header.is_empty() {
                    c.header = headers.get(c.index).cloned().unwrap_or_default();
                }
            }
        }
        mapping.columns.retain(|c| c.index < MAX_COLUMNS);
        self.mapping = mapping;
        Ok(())
    }

    /// A handle on the progress of the run, for another thread to poll.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Starts reading the data rows. `cancel` is checked before every row; once it is
    /// set the iteration ends and [`Rows::summary`] says [`End::Cancelled`].
    pub fn rows(self, cancel: Arc<AtomicBool>) -> Result<Rows, ImportError> {
        if !self.mapping.has(Field::Name) && !self.mapping.has(Field::IdNumber) {
            return Err(ImportError::MappingIncomplete);
        }
        let header = self.mapping.header_line;
        let width =
            if header == 0 { None } else { self.preview().find(|(l, _)| *l == header).map(|(_, cells)| cells.len()) };
        // Everything up to the header row is title rows.
        let skip = if header == 0 {
            0
        } else {
            self.preamble
                .iter()
                .position(|n| matches!(n, Next::Record { line, .. } if *line == header))
                .map_or(0, |i| i + 1)
        };
        let pending: VecDeque<Next> = self.preamble.into_iter().skip(skip).collect();
        Ok(Rows {
            pending,
            source: self.source,
            max_mapped: self.mapping.columns.iter().filter(|c| c.field.is_some()).map(|c| c.index).max(),
            ragged_check: self.info.format != Format::Xlsx,
            width,
            mapping: self.mapping,
            cancel,
            progress: self.progress,
            data_row: 0,
            summary: Summary::default(),
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum End {
    /// Still reading.
    #[default]
    Running,
    Completed,
    Cancelled,
    /// The file could not be read past `line`; the rows before it were read.
    Failed {
        line: u64,
        reason: RowErrorReason,
    },
}

/// Counts of a run, final once the iteration has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rows: u64,
    pub errors: u64,
    /// Rows with every cell empty: counted, neither read nor reported.
    pub blank_rows: u64,
    pub end: End,
}

/// The data rows of a roster: each read row or the reason it could not be read.
pub struct Rows {
    pending: VecDeque<Next>,
    source: Source,
    mapping: ColumnMapping,
    /// The header's width, to tell ragged rows.
    width: Option<usize>,
    max_mapped: Option<usize>,
    ragged_check: bool,
    cancel: Arc<AtomicBool>,
    progress: Progress,
    data_row: u64,
    summary: Summary,
}

impl Rows {
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn mapping(&self) -> &ColumnMapping {
        &self.mapping
    }

    fn error(&mut self, line: u64, data_row: Option<u64>, reason: RowErrorReason, detail: Option<String>) -> RowError {
        self.summary.errors += 1;
        self.progress.0.errors.fetch_add(1, Ordering::Relaxed);
        RowError { line, data_row, reason, detail }
    }

    /// Checks a record's shape before its cells are read.
    fn shape_error(&self, cells: &[String]) -> Option<RowErrorReason> {
        if self.ragged_check {
            if let Some(width) = self.width {
                if self.max_mapped.is_some_and(|m| m >= cells.len()) && cells.len() < width {
                    return Some(RowErrorReason::TooFewFields);
                }
                if cells.iter().skip(width).any(|c| !c.trim().is_empty()) {
                    return Some(RowErrorReason::TooManyFields);
                }
            }
        }
        let long = self
            .mapping
            .columns
            .iter()
            .filter(|c| c.field.is_some())
            .any(|c| cells.get(c.index).is_some_and(|s| s.len() > MAX_CELL_BYTES));
        long.then_some(RowErrorReason::CellTooLong)
    }
}

impl Iterator for Rows {
    type Item = Result<RosterRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.summary.end != End::Running {
                return None;
            }
            if self.cancel.load(Ordering::Relaxed) {
                self.summary.end = End::Cancelled;
                return None;
            }
            let next = self.pending.pop_front().unwrap_or_else(|| self.source.next_record());
            match next {
                Next::End => {
                    self.summary.end = End::Completed;
                    return None;
                }
                Next::Fatal { line, reason, detail } => {
                    self.summary.end = End::Failed { line, reason };
                    return Some(Err(self.error(line, None, reason, Some(detail))));
                }
                Next::Bad { line, reason } => {
                    self.data_row += 1;
                    let data_row = Some(self.data_row);
                    return Some(Err(self.error(line, data_row, reason, None)));
                }
                Next::Record { line, cells } => {
                    self.data_row += 1;
                    if cells.iter().all(|c| c.trim().is_empty()) {
                        self.summary.blank_rows += 1;
                        continue;
                    }
                    if let Some(reason) = self.shape_error(&cells) {
                        let data_row = Some(self.data_row);
                        return Some(Err(self.error(line, data_row, reason, None)));
                    }
                    self.summary.rows += 1;
                    self.progress.0.rows.fetch_add(1, Ordering::Relaxed);
                    let raw = RawFields::from_cells(&cells, &self.mapping);
                    return Some(Ok(RosterRow::new(line, self.data_row, raw)));
                }
            }
        }
    }
}
