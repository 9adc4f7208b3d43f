//! CSV and TSV: encoding and delimiter detection and a streaming record reader.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use encoding_rs::{Encoding, GB18030, UTF_16BE, UTF_16LE, UTF_8};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use serde::{Deserialize, Serialize};

use super::{Next, Progress, RowErrorReason, MAX_RECORD_BYTES};

/// How many bytes are looked at to tell the encoding and the delimiter.
const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    Utf8,
    /// GBK and GB2312 files are read as GB18030, their superset.
    Gb18030,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    fn encoding(self) -> &'static Encoding {
        match self {
            TextEncoding::Utf8 => UTF_8,
            TextEncoding::Gb18030 => GB18030,
            TextEncoding::Utf16Le => UTF_16LE,
            TextEncoding::Utf16Be => UTF_16BE,
        }
    }
}

/// Tells the encoding from the first bytes: a BOM decides; otherwise text that is
/// valid UTF-8 (a sequence cut at the end of the sample aside) is UTF-8, and anything
/// else is taken for GB18030, which is what Chinese office software writes.
pub fn sniff_encoding(sample: &[u8], complete: bool) -> TextEncoding {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return TextEncoding::Utf8;
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return TextEncoding::Utf16Le;
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return TextEncoding::Utf16Be;
    }
    match std::str::from_utf8(sample) {
        Ok(_) => TextEncoding::Utf8,
        Err(e) if e.error_len().is_none() && !complete => TextEncoding::Utf8,
        Err(_) => TextEncoding::Gb18030,
    }
}

/// Picks the delimiter that splits the first lines most: comma, tab, semicolon or bar.
pub fn sniff_delimiter(text: &str) -> u8 {
    let lines: Vec<&str> = text.lines().take(30).collect();
    let score = |d: char| lines.iter().map(|l| l.matches(d).count().min(100)).sum::<usize>();
    [(b',', score(',')), (b'\t', score('\t')), (b';', score(';')), (b'|', score('|'))]
        .into_iter()
        .max_by_key(|(_, s)| *s)
        .filter(|(_, s)| *s > 0)
        .map_or(b',', |(d, _)| d)
}

/// Counts the bytes taken from the file, for the progress bar.
struct Counting<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add_done(n as u64);
        Ok(n)
    }
}

/// Refuses to let one record grow past [`MAX_RECORD_BYTES`]: an unbalanced quote would
/// otherwise swallow the rest of the file into one cell, and all of it into memory.
struct Limited<R> {
    inner: R,
    since_record: Arc<AtomicU64>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.since_record.load(Ordering::Relaxed) > MAX_RECORD_BYTES {
            return Err(io::Error::other("record too large"));
        }
        let n = self.inner.read(buf)?;
        self.since_record.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Decoded = DecodeReaderBytes<io::Chain<Cursor<Vec<u8>>, Counting<File>>, Vec<u8>>;

pub(crate) struct DelimitedSource {
    reader: csv::Reader<Limited<Decoded>>,
    record: csv::ByteRecord,
    since_record: Arc<AtomicU64>,
    done: bool,
}

impl DelimitedSource {
    /// Opens a text roster; `encoding` and `delimiter` are detected unless given.
    pub(crate) fn open(
        file: File,
        encoding: Option<TextEncoding>,
        delimiter: Option<u8>,
        progress: Progress,
    ) -> io::Result<(DelimitedSource, TextEncoding, u8)> {
        let mut counting = Counting { inner: file, progress };
        let mut sample = Vec::with_capacity(SNIFF_BYTES);
        (&mut counting).take(SNIFF_BYTES as u64).read_to_end(&mut sample)?;
        let complete = sample.len() < SNIFF_BYTES;
        let encoding = encoding.unwrap_or_else(|| sniff_encoding(&sample, complete));
        let delimiter = delimiter.unwrap_or_else(|| {
            let (text, _, _) = encoding.encoding().decode(&sample);
            sniff_delimiter(&text)
        });
        let decoded = DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding.encoding()))
            .strip_bom(true)
            .build(Cursor::new(sample).chain(counting));
        let since_record = Arc::new(AtomicU64::new(0));
        let limited = Limited { inner: decoded, since_record: since_record.clone() };
        // Records end at '\n' only: with the default CRLF handling the csv crate counts a
        // record's line before the '\n' of the previous CRLF, one line short.
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(limited);
        Ok((DelimitedSource { reader, record: csv::ByteRecord::new(), since_record, done: false }, encoding, delimiter))
    }

    pub(crate) fn next_record(&mut self) -> Next {
        if self.done {
            return Next::End;
        }
        let line = self.reader.position().line();
        let read = self.reader.read_byte_record(&mut self.record);
        let used = self.since_record.swap(0, Ordering::Relaxed);
        match read {
            Ok(false) => {
                self.done = true;
                Next::End
            }
            Ok(true) => {
                let line = self.record.position().map_or(line, |p| p.line());
                let mut cells = Vec::with_capacity(self.record.len());
                for field in self.record.iter() {
                    match std::str::from_utf8(field) {
                        // The decoder marks bytes that are not text with U+FFFD.
                        Ok(s) if !s.contains('\u{FFFD}') => cells.push(s.to_owned()),
                        _ => return Next::Bad { line, reason: RowErrorReason::BadEncoding },
                    }
                }
                // The '\r' of a CRLF ends the last cell.
                if let Some(last) = cells.last_mut() {
                    if last.ends_with('\r') {
                        last.pop();
                    }
                }
                Next::Record { line, cells }
            }
            Err(e) => {
                self.done = true;
                let reason =
                    if used > MAX_RECORD_BYTES { RowErrorReason::RecordTooLarge } else { RowErrorReason::ReadFailed };
                Next::Fatal { line, reason, detail: e.to_string() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_told_apart() {
        let (gbk, _, _) = GB18030.encode("姓名,身份证号\n张伟,11010519491231002X\n");
        assert_eq!(sniff_encoding(&gbk, true), TextEncoding::Gb18030);
        assert_eq!(sniff_encoding("姓名,身份证号".as_bytes(), true), TextEncoding::Utf8);
        assert_eq!(sniff_encoding(b"\xEF\xBB\xBFname", true), TextEncoding::Utf8);
        assert_eq!(sniff_encoding(b"\xFF\xFEn\x00", true), TextEncoding::Utf16Le);
        assert_eq!(sniff_encoding(b"name,id", true), TextEncoding::Utf8);
        // A UTF-8 character cut by the end of the sample is still UTF-8 …
        let cut = &"姓名".as_bytes()[..4];
        assert_eq!(sniff_encoding(cut, false), TextEncoding::Utf8);
        // … but not at the end of the file.
        assert_eq!(sniff_encoding(cut, true), TextEncoding::Gb18030);
    }

    #[test]
    fn delimiters_are_told_apart() {
        assert_eq!(sniff_delimiter("姓名,性别,身份证号\n张伟,男,1\n"), b',');
        assert_eq!(sniff_delimiter("姓名\t性别\t住址\n张伟\t男\t苏州市,工业园区\n"), b'\t');
        assert_eq!(sniff_delimiter("姓名;性别\n张伟;男\n"), b';');
        assert_eq!(sniff_delimiter("姓名\n张伟\n"), b',');
    }
}
