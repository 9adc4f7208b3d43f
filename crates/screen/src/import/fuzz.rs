//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), public so that the
//! stable test `tests/fuzz_corpus.rs` runs the same code over the seed corpus and its
//! mutations. Not an API: see "Fuzzing" in the crate's README.
//!
//! Each function writes the input to a temporary file, opens it as a roster, maps a
//! column to the name if no header was found, reads every row and panics if the
//! importer panicked (here or on the xlsx reader thread) or if what it counted disagrees
//! with what was iterated. A file that cannot be opened and rows that cannot be read
//! are not failures.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{
    Column, ColumnMapping, End, Field, Format, ImportError, ImportOptions, ProgressUnit, Roster, RowErrorReason,
    Summary, TextEncoding, MAX_CELL_BYTES, MAX_COLUMNS,
};

/// What the xlsx source says when its reader thread died without a word: a panic there.
const READER_STOPPED: &str = "reader thread stopped";

/// A CSV or TSV roster. The first byte chooses how it is opened (the rest is the file):
///
/// - bit 0: the file is named `.tsv` (tab-delimited unless bits 4–5 say) instead of `.csv`;
/// - bits 1–3: the encoding given in [`ImportOptions`]: 1 UTF-8, 2 GB18030, 3 UTF-16LE,
///   4 UTF-16BE, otherwise detected;
/// - bits 4–5: the delimiter given: 1 `;`, 2 `|`, 3 `,`, otherwise detected;
/// - bit 6: the mapping is changed: without a header, the first nine columns feed every
///   field instead of only column 0 the name; with one, the header moves down to the next
///   previewed row, whose cells become the column headers;
/// - bit 7: the header is dropped (header line 0, every row read as data).
///
/// Returns the run's summary, `None` if the file did not open.
pub fn delimited(data: &[u8]) -> Option<Summary> {
    let (&control, body) = data.split_first()?;
    let options = ImportOptions {
        format: None,
        encoding: match (control >> 1) & 7 {
            1 => Some(TextEncoding::Utf8),
            2 => Some(TextEncoding::Gb18030),
            3 => Some(TextEncoding::Utf16Le),
            4 => Some(TextEncoding::Utf16Be),
            _ => None,
        },
        delimiter: match (control >> 4) & 3 {
            1 => Some(b';'),
            2 => Some(b'|'),
            3 => Some(b','),
            _ => None,
        },
        sheet: None,
    };
    let file = TempFile::new(if control & 1 == 0 { "csv" } else { "tsv" }, body);
    let roster = match Roster::open(file.path(), &options) {
        Ok(roster) => roster,
        Err(e) => {
            // Only a zip or an old .xls signature leaves the text reader.
            let binary = body.starts_with(b"PK\x03\x04") || body.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
            assert!(binary, "a text roster failed to open: {e:?}");
            check_open_error(&e);
            return None;
        }
    };
    let format = roster.info().format;
    if format != Format::Xlsx {
        assert_eq!(format, if control & 1 == 0 { Format::Csv } else { Format::Tsv });
        assert!(roster.info().encoding.is_some() && roster.info().delimiter.is_some());
    }
    Some(read_to_end(
        roster,
        Change { all_fields: control & 0x40 != 0, move_header: control & 0x40 != 0, drop_header: control & 0x80 != 0 },
    ))
}

/// An xlsx roster: any bytes, opened as a workbook whatever their signature. Most do
/// not open; that must be an error and not a panic. Returns the run's summary, `None` if
/// the workbook did not open.
pub fn xlsx(data: &[u8]) -> Option<Summary> {
    let file = TempFile::new("xlsx", data);
    let options = ImportOptions { format: Some(Format::Xlsx), ..ImportOptions::default() };
    match Roster::open(file.path(), &options) {
        Ok(roster) => {
            assert_eq!(roster.info().format, Format::Xlsx);
            assert!(roster.info().sheet.is_some());
            // Every field mapped when there is no header: all the normalizers run.
            Some(read_to_end(roster, Change { all_fields: true, move_header: false, drop_header: false }))
        }
        Err(e) => {
            check_open_error(&e);
            None
        }
    }
}

fn check_open_error(e: &ImportError) {
    match e {
        ImportError::Xlsx(detail) => assert!(!detail.contains(READER_STOPPED), "the xlsx reader thread died"),
        ImportError::SheetNotFound(_) | ImportError::Unsupported(_) => {}
        ImportError::Io(_) | ImportError::HeaderOutOfRange(_) | ImportError::MappingIncomplete => {
            panic!("unexpected error on open: {e:?}")
        }
    }
}

/// How the proposed mapping is changed before the run.
struct Change {
    /// Without a header, map the first nine columns to every field (else column 0 to the name).
    all_fields: bool,
    /// With one, the next previewed row becomes the header.
    move_header: bool,
    /// Read every row as data (header line 0).
    drop_header: bool,
}

/// Changes the mapping, reads every row and checks the counts.
fn read_to_end(mut roster: Roster, change: Change) -> Summary {
    let format = roster.info().format;
    let lines: Vec<u64> = roster.preview().map(|(line, _)| line).collect();
    // A workbook's rows come in the order the sheet lists them; a text file's in order.
    let in_order = |w: &[u64]| w[0] < w[1];
    assert!(format == Format::Xlsx || lines.windows(2).all(in_order), "preview lines out of order: {lines:?}");
    assert!(lines.len() <= super::PREAMBLE_ROWS);
    let detected = roster.info().header_detected;
    let mut mapping = roster.mapping().clone();
    if !detected {
        assert!(mapping.columns.is_empty());
        let fields: &[Field] = if change.all_fields { Field::ALL } else { &[Field::Name] };
        let columns = fields.iter().enumerate();
        mapping = ColumnMapping {
            header_line: 0,
            columns: columns.map(|(index, f)| Column { index, header: String::new(), field: Some(*f) }).collect(),
        };
    } else {
        assert!(mapping.has(Field::Name) || mapping.has(Field::IdNumber));
        assert!(lines.contains(&mapping.header_line), "header {} not previewed", mapping.header_line);
        // The row after the header becomes the header, if there is one.
        if let Some(next) = lines.iter().find(|l| **l > mapping.header_line).filter(|_| change.move_header) {
            mapping.header_line = *next;
            mapping.columns.iter_mut().for_each(|c| c.header.clear());
        }
    }
    if change.drop_header {
        mapping.header_line = 0;
    }
    // A column past the limit is dropped by set_mapping.
    mapping.columns.push(Column { index: MAX_COLUMNS, header: String::new(), field: Some(Field::Address) });
    roster.set_mapping(mapping).expect("a previewed header line is accepted");
    assert!(roster.mapping().columns.iter().all(|c| c.index < MAX_COLUMNS));

    let progress = roster.progress();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut rows = roster.rows(cancel).expect("the name or the ID number is mapped");
    let (mut ok, mut errors, mut nonfatal) = (0u64, 0u64, 0u64);
    let mut last_data_row = 0u64;
    let mut last_line = 0u64;
    let mut failed = None;
    for item in rows.by_ref() {
        assert!(failed.is_none(), "a row after a fatal error");
        let (line, data_row) = match item {
            Ok(row) => {
                ok += 1;
                let r = &row.raw;
                let cells = [&r.name, &r.id_number, &r.gender, &r.birth_date, &r.employer, &r.address, &r.hukou_place];
                for cell in cells.into_iter().chain([&r.ethnicity]).flatten() {
                    assert!(!cell.is_empty() && cell.len() <= MAX_CELL_BYTES && cell.trim() == cell, "{cell:?}");
                }
                (row.line, Some(row.data_row))
            }
            Err(e) => {
                errors += 1;
                assert_eq!(e.data_row.is_none(), e.reason.is_fatal(), "{e:?}");
                if e.reason.is_fatal() {
                    let detail = e.detail.as_deref().unwrap_or_default();
                    assert!(!detail.contains(READER_STOPPED), "the xlsx reader thread died");
                    failed = Some((e.line, e.reason));
                } else {
                    nonfatal += 1;
                }
                (e.line, e.data_row)
            }
        };
        if let Some(data_row) = data_row {
            assert!(data_row > last_data_row, "data row {data_row} after {last_data_row}");
            last_data_row = data_row;
            assert!(line >= 1);
            if format != Format::Xlsx {
                assert!(line > last_line, "line {line} after {last_line}");
            }
            last_line = line;
        }
    }
    assert!(rows.next().is_none(), "rows after the end");
    let summary = rows.summary().clone();
    assert_eq!((summary.rows, summary.errors), (ok, errors), "{summary:?}");
    assert!(last_data_row <= ok + nonfatal + summary.blank_rows, "{summary:?}, last data row {last_data_row}");
    match failed {
        Some((line, reason)) => assert_eq!(summary.end, End::Failed { line, reason }),
        None => assert_eq!(summary.end, End::Completed),
    }
    let p = progress.snapshot();
    assert_eq!((p.rows, p.errors), (ok, errors), "{p:?}");
    if p.unit == ProgressUnit::Bytes {
        let total = p.total.unwrap_or(0);
        assert!(p.done <= total, "{p:?}");
        if summary.end == End::Completed {
            assert_eq!(p.done, total, "{p:?}");
        }
    }
    if let Some((_, reason)) = failed {
        assert!(matches!(reason, RowErrorReason::RecordTooLarge | RowErrorReason::ReadFailed));
    }
    summary
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, data: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("kite-screen-fuzz-{}-{n}.{extension}", std::process::id());
            let path = std::env::temp_dir().join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(data).expect("the temporary file is written");
                    return TempFile(path);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
