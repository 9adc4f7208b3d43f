//! .xlsx rosters, read cell by cell with calamine's streaming reader.
//!
//! The cell reader borrows the workbook, so both live on a reader thread that hands
//! whole rows over a small bounded channel: memory stays bounded by the channel and
//! the workbook's shared-string table, and dropping the receiver stops the thread.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use calamine::{DataRef, Reader, Xlsx};

use super::{ImportError, Next, Progress, RowErrorReason, MAX_COLUMNS};

/// Rows in flight between the reader thread and the consumer.
const CHANNEL_ROWS: usize = 256;

pub(crate) struct XlsxSource {
    rows: Receiver<Next>,
    done: bool,
}

impl XlsxSource {
    /// Opens the workbook on a reader thread and waits until the sheet is found.
    /// Returns the sheet's name.
    pub(crate) fn open(
        path: &Path,
        sheet: Option<String>,
        progress: Progress,
    ) -> Result<(XlsxSource, String), ImportError> {
        let file = File::open(path).map_err(ImportError::Io)?;
        let (meta_tx, meta_rx) = sync_channel::<Result<String, ImportError>>(1);
        let (tx, rx) = sync_channel::<Next>(CHANNEL_ROWS);
        thread::Builder::new()
            .name("kite-screen-xlsx".into())
            .spawn(move || read_workbook(file, sheet, progress, meta_tx, tx))
            .map_err(ImportError::Io)?;
        let name = meta_rx.recv().map_err(|_| ImportError::Xlsx("reader thread stopped".into()))??;
        Ok((XlsxSource { rows: rx, done: false }, name))
    }

    pub(crate) fn next_record(&mut self) -> Next {
        if self.done {
            return Next::End;
        }
        match self.rows.recv() {
            Ok(next @ (Next::End | Next::Fatal { .. })) => {
                self.done = true;
                next
            }
            Ok(next) => next,
            Err(_) => {
                self.done = true;
                Next::Fatal { line: 0, reason: RowErrorReason::ReadFailed, detail: "reader thread stopped".into() }
            }
        }
    }
}

fn read_workbook(
    file: File,
    sheet: Option<String>,
    progress: Progress,
    meta: SyncSender<Result<String, ImportError>>,
    tx: SyncSender<Next>,
) {
    let mut book: Xlsx<_> = match Xlsx::new(BufReader::new(file)) {
        Ok(book) => book,
        Err(e) => {
            let _ = meta.send(Err(ImportError::Xlsx(e.to_string())));
            return;
        }
    };
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) if names.contains(&s) => s,
        Some(s) => {
            let _ = meta.send(Err(ImportError::SheetNotFound(s)));
            return;
        }
        None => match names.into_iter().next() {
            Some(s) => s,
            None => {
                let _ = meta.send(Err(ImportError::SheetNotFound(String::new())));
                return;
            }
        },
    };
    let mut cells = match book.worksheet_cells_reader(&name) {
        Ok(cells) => cells,
        Err(e) => {
            let _ = meta.send(Err(ImportError::Xlsx(e.to_string())));
            return;
        }
    };
    progress.set_total(u64::from(cells.dimensions().end.0) + 1);
    if meta.send(Ok(name)).is_err() {
        return;
    }
    let mut row: Option<(u32, Vec<String>)> = None;
    loop {
        let next = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                let line = row.as_ref().map_or(0, |(r, _)| u64::from(*r) + 1);
                let _ = tx.send(Next::Fatal { line, reason: RowErrorReason::ReadFailed, detail: e.to_string() });
                return;
            }
        };
        let (r, c) = next.get_position();
        let value = cell_text(next.get_value());
        if row.as_ref().is_some_and(|(current, _)| *current != r) {
            if let Some(done) = row.take() {
                if !send_row(&tx, &progress, done) {
                    return;
                }
            }
        }
        let (_, values) = row.get_or_insert_with(|| (r, Vec::new()));
        let c = c as usize;
        if c < MAX_COLUMNS && !value.is_empty() {
            if values.len() <= c {
                values.resize(c + 1, String::new());
            }
            values[c] = value;
        }
    }
    if let Some(done) = row.take() {
        if !send_row(&tx, &progress, done) {
            return;
        }
    }
    let _ = tx.send(Next::End);
}

/// Hands one row over; false when the consumer is gone.
fn send_row(tx: &SyncSender<Next>, progress: &Progress, (r, cells): (u32, Vec<String>)) -> bool {
    progress.set_done(u64::from(r) + 1);
    tx.send(Next::Record { line: u64::from(r) + 1, cells }).is_ok()
}

/// A cell as the user sees it. Whole numbers lose the ".0" (phones typed as numbers),
/// dates are written ISO-style, errors (#N/A) read as empty.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty | DataRef::Error(_) => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => float_text(*f),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(d) if d.is_datetime() => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{day:02}")
        }
        DataRef::DateTime(d) => float_text(d.as_f64()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
    }
}

fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_typed() {
        assert_eq!(float_text(13800138000.0), "13800138000");
        assert_eq!(float_text(1.5), "1.5");
        assert_eq!(float_text(-3.0), "-3");
        // An ID number stored as a number has lost its last digits; it stays visibly wrong.
        assert_eq!(float_text(110105194912310020.0), "110105194912310020");
    }
}
