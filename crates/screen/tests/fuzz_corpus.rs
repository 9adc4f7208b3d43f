//! The fuzz targets' bodies (`kite_screen::import::fuzz`) on stable: over the seed corpus
//! committed under fuzz/corpus, seeded mutations of it, and generated workbooks. A panic
//! in the importer, or counts that disagree with the rows read, fail these tests.
//!
//! `KITE_WRITE_SEEDS=1 cargo test -p kite-screen --test fuzz_corpus` writes the seeds
//! again (see "Fuzzing" in the README).

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use kite_screen::import::{fuzz, End};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Formula, Workbook};
use zip::write::SimpleFileOptions;

const DELIMITED: &str = "roster_delimited";
const XLSX: &str = "roster_xlsx";

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

/// The committed seeds of a target (files named `seed-*`), in name order.
fn committed(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-")))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// The seeds of `roster_delimited`: a control byte (see `fuzz::delimited`), then a file.
fn delimited_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |control: u8, body: &[u8]| [&[control][..], body].concat();
    let office = [
        "XX街道流动人口登记表,,,,,,,",
        "填报日期：2024年3月,,,,,,,",
        "序号,姓名,性别,公民身份号码,出生日期,联系电话,工作单位,现居住地",
        "1,張偉,男,320724198802290012,1988/2/29,138 0013 8000,灌南县某建筑公司,苏州市工业园区星湖街328号",
        "2,阿依古丽·买买提,女,11010519491231002x,1949年12月31日,+86 139-0013-9000,,\"苏州市姑苏区人民路1号,3栋\"",
        "3,李四,男,110105491231001,19491231,0512-65231234,个体,",
        ",,,,,,,",
        "4,王五,2,11010519491231002,199003,13800138000/0512-6523,\"某\"\"公司\"\"\",\"多行\n地址\"",
    ]
    .join("\r\n")
        + "\r\n";
    let mut gbk = encoding_rs::GBK
        .encode("花名册\n姓名,身份证号,现住址,民族\n张伟,11010519491231002X,苏州,汉族\n")
        .0
        .into_owned();
    gbk.extend_from_slice(b"\x80\xFF,110105194912310013,x\n");
    gbk.extend_from_slice(&encoding_rs::GBK.encode("李四,110105194912310013,苏州市,姑苏区\n王五\n赵六,,无锡,回\n").0);
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "姓名\t手机号码\t户籍地\r\n张伟\t13800138000\t江苏省灌南县\r\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let bom = [&[0xEF, 0xBB, 0xBF][..], "姓名,身份证号\n王芳,11010519491231002X\n".as_bytes()].concat();
    let no_header =
        "张伟,11010519491231002X,男,1949-12-31,13800138000,某公司,苏州,灌南,汉\n李四,110105491231001,F,19491231,,,,,\n";
    vec![
        ("seed-office.csv", with(0x00, office.as_bytes())),
        ("seed-gbk.csv", with(0x00, &gbk)),
        ("seed-utf16.tsv", with(0x01, &utf16)),
        ("seed-bom.csv", with(0x00, &bom)),
        ("seed-no-header.csv", with(0x40, no_header.as_bytes())),
        ("seed-moved-header.csv", with(0x40, "姓名,身份证号\n说明,无\n姓名,身份证号\n张伟,1\n".as_bytes())),
        ("seed-semicolon.csv", with(0x10, "姓名;手机;性别\n张伟;13800138000;男\n".as_bytes())),
        ("seed-long-cell.csv", with(0x00, format!("姓名,住址\n张伟,{}\n李四,苏州\n", "长".repeat(1400)).as_bytes())),
        ("seed-unbalanced-quote.csv", with(0x80, "姓名,住址\n张伟,苏州\n李四,\"苏州市\n王五,无锡\n".as_bytes())),
    ]
}

/// A small workbook with a title row, a header and cells of every kind.
fn workbook(constant_memory: bool) -> Vec<u8> {
    let mut book = Workbook::new();
    let created = ExcelDateTime::from_ymd(2024, 3, 5).unwrap();
    book.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = if constant_memory { book.add_worksheet_with_constant_memory().unwrap() } else { book.add_worksheet() };
    sheet.set_name("登记表").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(0, 0, "XX街道流动人口登记表").unwrap();
    let header = ["序号", "姓名", "身份证号码", "性别", "出生日期", "手机号码", "工作单位", "户籍地"];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    sheet.write_number(3, 0, 1).unwrap();
    sheet.write_string(3, 1, "張偉").unwrap();
    sheet.write_string(3, 2, "320724198802290012").unwrap();
    sheet.write_string(3, 3, "男").unwrap();
    sheet.write_datetime_with_format(3, 4, ExcelDateTime::from_ymd(1988, 2, 29).unwrap(), &date).unwrap();
    sheet.write_number(3, 5, 13800138000.0).unwrap();
    sheet.write_string(3, 6, "灌南县某建筑公司").unwrap();
    sheet.write_number(5, 0, 2).unwrap();
    sheet.write_formula(5, 1, Formula::new("=\"李\"&\"四\"").set_result("李四")).unwrap();
    sheet.write_string(5, 2, "110105491231001").unwrap();
    sheet.write_boolean(5, 3, true).unwrap();
    sheet.write_number(5, 4, 32937.5).unwrap();
    sheet.write_string(5, 9, "备注：已联系").unwrap();
    book.save_to_buffer().unwrap()
}

/// The workbook repacked without compression and without its theme and document
/// properties, so that the fuzzer's byte edits reach the XML (the zip's checksums then
/// fail only at the end of each part).
fn stored(xlsx: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(xlsx)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut part = archive.by_index(i).unwrap();
        let name = part.name().unwrap().into_owned();
        if name.starts_with("docProps/") || name.starts_with("xl/theme/") {
            continue;
        }
        let mut bytes = Vec::new();
        part.read_to_end(&mut bytes).unwrap();
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn xlsx_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("seed-roster.xlsx", workbook(false)),
        ("seed-constant-memory.xlsx", workbook(true)),
        ("seed-stored.xlsx", stored(&workbook(false))),
    ]
}

/// The committed seeds are the ones generated here, byte for byte (small enough to commit);
/// with `KITE_WRITE_SEEDS=1` they are written again first.
#[test]
fn the_committed_seeds_are_the_generated_ones() {
    let write = std::env::var_os("KITE_WRITE_SEEDS").is_some();
    for (target, seeds) in [(DELIMITED, delimited_seeds()), (XLSX, xlsx_seeds())] {
        let dir = corpus_dir(target);
        for (name, bytes) in seeds {
            assert!(bytes.len() < 20 * 1024, "{name} is {} bytes", bytes.len());
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(name), &bytes).unwrap();
            }
            let on_disk = std::fs::read(dir.join(name)).unwrap_or_default();
            assert!(on_disk == bytes, "{target}/{name} differs from its generator: KITE_WRITE_SEEDS=1 writes it");
        }
    }
}

const INTERESTING: &[u8] = b"\"\n\r,;|\t \x00\xFF\x80\xEF\xBB\xBF\xFE\xE5\xA7PK\x03\x04<>/=";

/// A libFuzzer-like mutation: one to four edits, or a splice with another input.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = out.len();
        let at = rng.gen_range(0..=len);
        match rng.gen_range(0..7) {
            0 if len > 0 => out[at.min(len - 1)] ^= 1 << rng.gen_range(0..8),
            1 if len > 0 => out[at.min(len - 1)] = INTERESTING[rng.gen_range(0..INTERESTING.len())],
            2 => {
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> =
                    (0..n)
                        .map(|_| {
                            if rng.gen_bool(0.5) {
                                INTERESTING[rng.gen_range(0..INTERESTING.len())]
                            } else {
                                rng.gen()
                            }
                        })
                        .collect();
                out.splice(at..at, bytes);
            }
            3 => {
                let end = rng.gen_range(at..=len.min(at + 64));
                out.drain(at..end);
            }
            4 => {
                // A piece copied elsewhere: repeated lines, cells and quotes.
                let end = rng.gen_range(at..=len.min(at + 200));
                let piece = out[at..end].to_vec();
                let to = rng.gen_range(0..=len);
                out.splice(to..to, piece);
            }
            5 if !other.is_empty() => {
                let from = rng.gen_range(0..other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => out[0] = rng.gen(),
            _ => out.push(rng.gen()),
        }
    }
    out
}

fn all_seeds(target: &str, generated: Vec<(&'static str, Vec<u8>)>) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = committed(target).into_iter().map(|(_, b)| b).collect();
    inputs.extend(generated.into_iter().map(|(_, b)| b));
    inputs
}

#[test]
fn committed_seeds_pass() {
    let delimited = committed(DELIMITED);
    let names: Vec<&str> = delimited.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in delimited_seeds() {
        assert!(names.contains(&name), "{name} is not committed: run write_seed_corpus");
    }
    for (name, bytes) in &delimited {
        let summary = fuzz::delimited(bytes).unwrap_or_else(|| panic!("{name} did not open"));
        assert!(summary.rows > 0, "{name}: {summary:?}");
    }
    let xlsx = committed(XLSX);
    assert!(xlsx.iter().all(|(_, b)| b.starts_with(b"PK\x03\x04") && b.len() < 20 * 1024));
    for (name, bytes) in &xlsx {
        let summary = fuzz::xlsx(bytes).unwrap_or_else(|| panic!("{name} did not open"));
        assert_eq!((summary.rows, summary.errors, summary.end), (2, 0, End::Completed), "{name}");
        // A workbook handed to the text target goes to the xlsx reader too.
        assert_eq!(fuzz::delimited(&[&[0u8][..], bytes].concat()).map(|s| s.rows), Some(2));
    }
    // Nothing, and next to nothing.
    for bytes in [&b""[..], b"\x00", b"\x01", b"PK\x03\x04"] {
        fuzz::delimited(bytes);
        fuzz::xlsx(bytes);
    }
}

#[test]
fn mutated_text_rosters() {
    let seeds = all_seeds(DELIMITED, delimited_seeds());
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0005);
    let (mut opened, mut rows, mut errors) = (0, 0, 0);
    for i in 0..600 {
        let input = &seeds[i % seeds.len()];
        let other = &seeds[rng.gen_range(0..seeds.len())];
        let mut mutated = mutate(&mut rng, input, other);
        // Some of them mutated again: further from the seeds.
        if rng.gen_bool(0.3) {
            mutated = mutate(&mut rng, &mutated, other);
        }
        if let Some(summary) = fuzz::delimited(&mutated) {
            opened += 1;
            rows += summary.rows;
            errors += summary.errors;
        }
    }
    // Most mutations still read as rosters, some rows of which do not read.
    assert!(opened > 500 && rows > 500 && errors > 50, "{opened} opened, {rows} rows, {errors} errors");
}

#[test]
fn mutated_workbooks() {
    let seeds = all_seeds(XLSX, xlsx_seeds());
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0006);
    let (mut opened, mut failed) = (0, 0);
    for i in 0..300 {
        let input = &seeds[i % seeds.len()];
        let other = &seeds[rng.gen_range(0..seeds.len())];
        if let Some(summary) = fuzz::xlsx(&mutate(&mut rng, input, other)) {
            opened += 1;
            failed += usize::from(matches!(summary.end, End::Failed { .. }));
        }
    }
    // Some open, and of those some fail part of the way.
    assert!(opened > 10 && failed > 0, "{opened} opened, {failed} failed part of the way");
}

/// Valid workbooks with random cells where they are awkward: far rows and columns,
/// rows out of the header's shape, odd strings, numbers, dates and formulas.
#[test]
fn random_workbooks() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0007);
    let mut total_rows = 0;
    let words = ["姓名", "身份证号", "手机", "出生日期", "張偉", "11010519491231002X", " ", "", "\"", "·", "1e308"];
    for _ in 0..60 {
        let mut book = Workbook::new();
        let sheet =
            if rng.gen_bool(0.5) { book.add_worksheet_with_constant_memory().unwrap() } else { book.add_worksheet() };
        let header = rng.gen_range(0..3u32);
        if rng.gen_bool(0.7) {
            sheet.write_string(header, 0, "姓名").unwrap();
            sheet.write_string(header, 1, "身份证号").unwrap();
        }
        let mut row = header;
        for _ in 0..rng.gen_range(0..40) {
            row += rng.gen_range(1..4);
            if rng.gen_bool(0.05) {
                row += rng.gen_range(0..1_000_000);
            }
            if row >= 1_048_576 {
                break;
            }
            for _ in 0..rng.gen_range(1..6) {
                let col = if rng.gen_bool(0.1) { rng.gen_range(0..16_384u16) } else { rng.gen_range(0..10u16) };
                match rng.gen_range(0..7) {
                    0 => sheet.write_string(row, col, words[rng.gen_range(0..words.len())]).map(|_| ()),
                    1 => sheet.write_number(row, col, rng.gen::<f64>() * 10f64.powi(rng.gen_range(-5..20))).map(|_| ()),
                    2 => sheet.write_number(row, col, f64::from(rng.gen::<i32>())).map(|_| ()),
                    3 => {
                        let d = ExcelDateTime::from_serial_datetime(rng.gen_range(0.0..2_958_465.0)).unwrap();
                        sheet
                            .write_datetime_with_format(row, col, d, &Format::new().set_num_format("yyyy-mm-dd"))
                            .map(|_| ())
                    }
                    4 => sheet.write_boolean(row, col, rng.gen()).map(|_| ()),
                    5 => {
                        // Numbers shown as dates, far outside the calendar too.
                        let serials = [-1e300, -1.0, 0.0, 59.0, 60.0, 61.0, 2_958_465.9, 2_958_466.0, 1e300];
                        let n = if rng.gen_bool(0.5) {
                            serials[rng.gen_range(0..serials.len())]
                        } else {
                            rng.gen_range(-1e6..1e7)
                        };
                        sheet
                            .write_number_with_format(row, col, n, &Format::new().set_num_format("yyyy-mm-dd"))
                            .map(|_| ())
                    }
                    _ => {
                        let s: String = (0..rng.gen_range(0..30))
                            .map(|_| char::from_u32(rng.gen_range(1..0x3000)).unwrap_or('?'))
                            .collect();
                        sheet.write_string(row, col, s).map(|_| ())
                    }
                }
                .unwrap_or_else(|e| panic!("row {row} column {col}: {e}"));
            }
        }
        let summary = fuzz::xlsx(&book.save_to_buffer().unwrap()).expect("a valid workbook opens");
        assert_eq!(summary.end, End::Completed);
        total_rows += summary.rows;
    }
    assert!(total_rows > 100, "{total_rows} rows");
}
