//! Roster files written to a temporary directory and read back through the importer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kite_screen::import::{
    ColumnMapping, End, Field, Format, ImportError, ImportOptions, ProgressUnit, Roster, RosterRow, RowError,
    RowErrorReason, TextEncoding,
};
use kite_screen::normalize::{Gender, PartialDate, PhoneKind};
use rust_xlsxwriter::{ExcelDateTime, Format as XlsxFormat, Formula, Workbook};
use tempfile::TempDir;

const HEADER: &str = "序号,姓名,性别,公民身份号码,出生日期,联系电话,工作单位,现居住地";

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn never() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn read_all(path: &Path) -> (Vec<RosterRow>, Vec<RowError>, End) {
    let roster = Roster::open(path, &ImportOptions::default()).unwrap();
    let mut rows = roster.rows(never()).unwrap();
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for r in rows.by_ref() {
        match r {
            Ok(r) => ok.push(r),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad, rows.summary().end.clone())
}

fn names(rows: &[RosterRow]) -> Vec<&str> {
    rows.iter().map(|r| r.fields.name.as_deref().unwrap_or("")).collect()
}

/// A roster as a street office would send it: a title row, a note row, the header on
/// line 3, and data rows with the usual variety.
fn sample_csv() -> String {
    [
        "XX街道流动人口登记表,,,,,,,",
        "填报日期：2024年3月,,,,,,,",
        HEADER,
        "1,張偉,男,320724198802290012,1988/2/29,138 0013 8000,灌南县某建筑公司,苏州市工业园区星湖街328号",
        "2,阿依古丽·买买提,女,11010519491231002x,1949年12月31日,+86 139-0013-9000,,\"苏州市姑苏区人民路1号,3栋\"",
        "3,李四,男,110105491231001,19491231,0512-65231234,个体,",
    ]
    .join("\r\n")
        + "\r\n"
}

#[test]
fn utf8_csv_with_title_rows_is_read() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "roster.csv", sample_csv().as_bytes());
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert_eq!(roster.info().format, Format::Csv);
    assert_eq!(roster.info().encoding, Some(TextEncoding::Utf8));
    assert_eq!(roster.info().delimiter, Some(','));
    assert!(roster.info().header_detected);
    assert_eq!(roster.mapping().header_line, 3);
    assert_eq!(roster.mapping().columns_of(Field::IdNumber).collect::<Vec<_>>(), [3]);
    assert_eq!(roster.mapping().columns_of(Field::Address).collect::<Vec<_>>(), [7]);

    let (rows, errors, end) = read_all(&path);
    assert_eq!(end, End::Completed);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names(&rows), ["张伟", "阿依古丽·买买提", "李四"]);
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(rows.iter().map(|r| r.data_row).collect::<Vec<_>>(), [1, 2, 3]);

    let first = &rows[0];
    assert_eq!(first.raw.name.as_deref(), Some("張偉"));
    assert_eq!(first.fields.id_number.valid(), Some("320724198802290012"));
    assert_eq!(first.fields.birth_date, PartialDate::try_from("1988-02-29".to_owned()).ok());
    assert_eq!(first.fields.phones[0].number, "13800138000");
    assert_eq!(first.fields.gender, Some(Gender::Male));

    let second = &rows[1];
    assert_eq!(second.fields.id_number.valid(), Some("11010519491231002X"));
    assert_eq!(second.fields.phones[0].number, "13900139000");
    assert_eq!(second.fields.employer, None);
    // The quoted comma stays inside the address.
    assert_eq!(second.fields.address.as_deref(), Some("苏州市姑苏区人民路1号,3栋"));

    let third = &rows[2];
    assert_eq!(third.fields.id_number.valid(), Some("110105194912310011"));
    assert!(matches!(third.fields.id_number, kite_screen::normalize::IdCheck::Valid { upgraded: true, .. }));
    assert_eq!(third.fields.phones[0].kind, PhoneKind::Landline);
}

#[test]
fn a_bom_does_not_hide_the_first_header() {
    let dir = TempDir::new().unwrap();
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(format!("姓名,身份证号\n王芳,{}\n", "11010519491231002X").as_bytes());
    let path = write(&dir, "bom.csv", &bytes);
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert_eq!(roster.mapping().header_line, 1);
    assert_eq!(roster.mapping().columns[0].header, "姓名");
    assert_eq!(roster.mapping().columns[0].field, Some(Field::Name));
    let (rows, errors, _) = read_all(&path);
    assert!(errors.is_empty());
    assert_eq!(names(&rows), ["王芳"]);
}

#[test]
fn gbk_csv_is_detected_and_decoded() {
    let dir = TempDir::new().unwrap();
    let text = sample_csv();
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    let path = write(&dir, "gbk.csv", &gbk);
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert_eq!(roster.info().encoding, Some(TextEncoding::Gb18030));
    assert_eq!(roster.mapping().header_line, 3);
    let (rows, errors, end) = read_all(&path);
    assert_eq!(end, End::Completed);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names(&rows), ["张伟", "阿依古丽·买买提", "李四"]);
    assert_eq!(rows[0].fields.employer.as_deref(), Some("灌南县某建筑公司"));
}

#[test]
fn a_bad_row_in_the_middle_is_reported_and_the_rest_read() {
    let dir = TempDir::new().unwrap();
    // GBK file; line 4 holds a byte sequence that is not GB18030, line 5 an unquoted comma
    // in the address (one field too many), line 6 lacks most of its fields.
    let mut bytes =
        encoding_rs::GBK.encode("花名册\n姓名,身份证号,现住址\n张伟,11010519491231002X,苏州\n").0.into_owned();
    bytes.extend_from_slice(b"\x80\xFF,110105194912310013,x\n");
    bytes.extend_from_slice(&encoding_rs::GBK.encode("李四,110105194912310013,苏州市,姑苏区\n王五\n赵六,,无锡\n").0);
    let path = write(&dir, "bad.csv", &bytes);
    let (rows, errors, end) = read_all(&path);
    assert_eq!(end, End::Completed);
    assert_eq!(names(&rows), ["张伟", "赵六"]);
    assert_eq!(rows[1].line, 7);
    assert_eq!(rows[1].data_row, 5);
    let got: Vec<(u64, Option<u64>, &str)> = errors.iter().map(|e| (e.line, e.data_row, e.reason.code())).collect();
    assert_eq!(
        got,
        [(4, Some(2), "row.bad_encoding"), (5, Some(3), "row.too_many_fields"), (6, Some(4), "row.too_few_fields")]
    );
}

#[test]
fn invalid_utf8_in_a_utf8_file_is_a_row_error() {
    let dir = TempDir::new().unwrap();
    // The first 64 KiB are clean UTF-8, so the file is taken for UTF-8.
    let mut text = String::from("姓名,手机\n");
    for i in 0..4000 {
        text.push_str(&format!("王{i},13800138000\n"));
    }
    let mut bytes = text.into_bytes();
    assert!(bytes.len() > 64 * 1024);
    bytes.extend_from_slice(b"\xD5\xC5\xCE\xB0,13800138000\n");
    bytes.extend_from_slice("最后,13800138000\n".as_bytes());
    let path = write(&dir, "mixed.csv", &bytes);
    let (rows, errors, end) = read_all(&path);
    assert_eq!(end, End::Completed);
    assert_eq!(rows.len(), 4001);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, RowErrorReason::BadEncoding);
    assert_eq!(errors[0].line, 4002);
    assert_eq!(rows.last().unwrap().fields.name.as_deref(), Some("最后"));
}

#[test]
fn tsv_by_extension_and_by_content() {
    let dir = TempDir::new().unwrap();
    let text = "姓名\t身份证号码\t居住地址\n张伟\t11010519491231002X\t苏州市,工业园区\n";
    for name in ["roster.tsv", "roster.txt"] {
        let path = write(&dir, name, text.as_bytes());
        let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
        assert_eq!(roster.info().delimiter, Some('\t'), "{name}");
        let (rows, errors, _) = read_all(&path);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(rows[0].fields.address.as_deref(), Some("苏州市,工业园区"), "{name}");
    }
}

#[test]
fn utf16_text_from_excel_is_read() {
    let dir = TempDir::new().unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "姓名\t手机号码\r\n张伟\t13800138000\r\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let path = write(&dir, "unicode.txt", &bytes);
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert_eq!(roster.info().encoding, Some(TextEncoding::Utf16Le));
    let (rows, errors, _) = read_all(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(names(&rows), ["张伟"]);
    assert_eq!(rows[0].fields.phones[0].number, "13800138000");
}

#[test]
fn cancellation_stops_between_rows() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("姓名,手机\n");
    for i in 0..1000 {
        text.push_str(&format!("王{i},13800138000\n"));
    }
    let path = write(&dir, "long.csv", text.as_bytes());
    let cancel = never();
    let mut rows = Roster::open(&path, &ImportOptions::default()).unwrap().rows(cancel.clone()).unwrap();
    let mut read = 0;
    for row in rows.by_ref() {
        assert!(row.is_ok());
        read += 1;
        if read == 10 {
            cancel.store(true, Ordering::Relaxed);
        }
    }
    assert_eq!(read, 10);
    assert_eq!(rows.summary().end, End::Cancelled);
    assert_eq!(rows.summary().rows, 10);
    assert!(rows.next().is_none());

    // A flag set before the first row reads nothing.
    let cancelled = Arc::new(AtomicBool::new(true));
    let mut rows = Roster::open(&path, &ImportOptions::default()).unwrap().rows(cancelled).unwrap();
    assert!(rows.next().is_none());
    assert_eq!(rows.summary().end, End::Cancelled);
}

#[test]
fn progress_counts_bytes_up_to_the_file_size() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("姓名,手机\n");
    for i in 0..20_000 {
        text.push_str(&format!("王{i},13800138000\n"));
    }
    let path = write(&dir, "progress.csv", text.as_bytes());
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    let progress = roster.progress();
    let mut rows = roster.rows(never()).unwrap();
    let start = progress.snapshot();
    assert_eq!(start.unit, ProgressUnit::Bytes);
    assert_eq!(start.total, Some(text.len() as u64));
    assert!(start.done < text.len() as u64);
    assert_eq!(rows.by_ref().count(), 20_000);
    let end = progress.snapshot();
    assert_eq!(end.done, text.len() as u64);
    assert_eq!(end.rows, 20_000);
    assert_eq!(end.errors, 0);
}

#[test]
fn an_unbalanced_quote_fails_the_run_without_eating_memory() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("姓名,住址\n张伟,苏州\n李四,\"苏州市\n");
    for _ in 0..40_000 {
        text.push_str("王五,无锡市梁溪区中山路\n");
    }
    let path = write(&dir, "quote.csv", text.as_bytes());
    let (rows, errors, end) = read_all(&path);
    assert_eq!(names(&rows), ["张伟"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, RowErrorReason::RecordTooLarge);
    assert_eq!(errors[0].line, 3);
    assert_eq!(errors[0].data_row, None);
    assert_eq!(end, End::Failed { line: 3, reason: RowErrorReason::RecordTooLarge });
}

#[test]
fn the_mapping_can_be_changed_before_the_run() {
    let dir = TempDir::new().unwrap();
    let text = "张伟,11010519491231002X,男\n李四,110105194912310013,男\n";
    let path = write(&dir, "noheader.csv", text.as_bytes());
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert!(!roster.info().header_detected);
    assert!(matches!(roster.rows(never()), Err(ImportError::MappingIncomplete)));

    let mut roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    let bad = ColumnMapping { header_line: 40, columns: vec![] };
    assert_eq!(roster.set_mapping(bad).map_err(|e| e.code()), Err("mapping.header_out_of_range"));
    let json = r#"{"header_line":0,"columns":[
        {"index":0,"header":"","field":"name"},
        {"index":1,"header":"","field":"id_number"},
        {"index":2,"header":"","field":null}]}"#;
    roster.set_mapping(serde_json::from_str(json).unwrap()).unwrap();
    let mut rows = roster.rows(never()).unwrap();
    let all: Vec<RosterRow> = rows.by_ref().map(Result::unwrap).collect();
    assert_eq!(names(&all), ["张伟", "李四"]);
    assert_eq!(all[0].line, 1);
    assert_eq!(all[0].fields.gender, None);
    assert_eq!(rows.summary().end, End::Completed);
}

#[test]
fn moving_the_header_down_turns_rows_above_it_into_title_rows() {
    let dir = TempDir::new().unwrap();
    let text = "姓名,身份证号\n报表说明,无\n姓名,身份证号\n张伟,11010519491231002X\n";
    let path = write(&dir, "twoheaders.csv", text.as_bytes());
    let mut roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    assert_eq!(roster.mapping().header_line, 1);
    let mut mapping = roster.mapping().clone();
    mapping.header_line = 3;
    roster.set_mapping(mapping).unwrap();
    let all: Vec<_> = roster.rows(never()).unwrap().collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].as_ref().unwrap().line, 4);
}

#[test]
fn huge_cells_are_row_errors() {
    let dir = TempDir::new().unwrap();
    let text = format!("姓名,住址\n张伟,{}\n李四,苏州\n", "长".repeat(3000));
    let path = write(&dir, "huge.csv", text.as_bytes());
    let (rows, errors, _) = read_all(&path);
    assert_eq!(names(&rows), ["李四"]);
    assert_eq!(errors[0].reason.code(), "row.cell_too_long");
    assert_eq!(errors[0].line, 2);
}

#[test]
fn old_excel_files_are_refused_clearly() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "old.xls", &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    let err = Roster::open(&path, &ImportOptions::default()).err().unwrap();
    assert_eq!(err.code(), "file.unsupported");
}

fn write_xlsx(path: &Path, constant_memory: bool) {
    let mut book = Workbook::new();
    let sheet = if constant_memory { book.add_worksheet_with_constant_memory().unwrap() } else { book.add_worksheet() };
    sheet.set_name("登记表").unwrap();
    let date = XlsxFormat::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(0, 0, "XX街道流动人口登记表").unwrap();
    for (c, h) in ["序号", "姓名", "身份证号码", "性别", "出生日期", "手机号码", "工作单位"].iter().enumerate()
    {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    // Row 4: an ID typed as text, a phone typed as a number, a real date cell.
    sheet.write_number(3, 0, 1).unwrap();
    sheet.write_string(3, 1, "張偉").unwrap();
    sheet.write_string(3, 2, "320724198802290012").unwrap();
    sheet.write_string(3, 3, "男").unwrap();
    sheet.write_datetime_with_format(3, 4, ExcelDateTime::from_ymd(1988, 2, 29).unwrap(), &date).unwrap();
    sheet.write_number(3, 5, 13800138000.0).unwrap();
    sheet.write_string(3, 6, "灌南县某建筑公司").unwrap();
    // Row 5: a blank row. Row 6: a name from a formula, a birth month as text, a serial number.
    sheet.write_number(5, 0, 2).unwrap();
    sheet.write_formula(5, 1, Formula::new("=\"李\"&\"四\"").set_result("李四")).unwrap();
    sheet.write_string(5, 2, "110105491231001").unwrap();
    sheet.write_string(5, 4, "1949.12").unwrap();
    sheet.write_number(5, 5, 32937).unwrap();
    // A note beyond the header is not an error in a workbook.
    sheet.write_string(5, 9, "备注：已联系").unwrap();
    book.save(path).unwrap();
}

#[test]
fn xlsx_rosters_are_streamed() {
    for constant_memory in [false, true] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("roster.xlsx");
        write_xlsx(&path, constant_memory);
        let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
        assert_eq!(roster.info().format, Format::Xlsx);
        assert_eq!(roster.info().sheet.as_deref(), Some("登记表"));
        assert_eq!(roster.mapping().header_line, 3);
        let progress = roster.progress();
        let mut rows = roster.rows(never()).unwrap();
        let all: Vec<RosterRow> = rows.by_ref().map(|r| r.unwrap()).collect();
        assert_eq!(rows.summary().end, End::Completed);
        assert_eq!(names(&all), ["张伟", "李四"]);
        assert_eq!(all.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 6]);
        assert_eq!(all[0].fields.birth_date, PartialDate::try_from("1988-02-29".to_owned()).ok());
        assert_eq!(all[0].raw.phone.as_deref(), Some("13800138000"));
        assert_eq!(all[0].fields.phones[0].kind, PhoneKind::Mobile);
        assert_eq!(all[1].fields.id_number.valid(), Some("110105194912310011"));
        assert_eq!(all[1].fields.birth_date, Some(PartialDate::YearMonth(1949, 12)));
        assert_eq!(all[1].issues.iter().map(|i| i.code).collect::<Vec<_>>(), ["phone.unreadable"]);
        let p = progress.snapshot();
        assert_eq!(p.unit, ProgressUnit::Rows);
        assert_eq!(p.rows, 2);
        assert_eq!(Some(p.done), p.total);
    }
}

#[test]
fn an_xlsx_sheet_can_be_chosen_and_a_missing_one_is_an_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("roster.xlsx");
    write_xlsx(&path, false);
    let options = ImportOptions { sheet: Some("Sheet9".into()), ..Default::default() };
    assert_eq!(Roster::open(&path, &options).err().map(|e| e.code()), Some("file.sheet_not_found"));
    let options = ImportOptions { sheet: Some("登记表".into()), ..Default::default() };
    assert!(Roster::open(&path, &options).unwrap().info().header_detected);
}

#[test]
fn cancelling_an_xlsx_run_stops_its_reader() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("big.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory().unwrap();
    sheet.write_string(0, 0, "姓名").unwrap();
    sheet.write_string(0, 1, "手机").unwrap();
    for r in 1..3000u32 {
        sheet.write_string(r, 0, format!("王{r}")).unwrap();
        sheet.write_number(r, 1, 13800138000.0).unwrap();
    }
    book.save(&path).unwrap();
    let cancel = never();
    let mut rows = Roster::open(&path, &ImportOptions::default()).unwrap().rows(cancel.clone()).unwrap();
    assert!(rows.next().unwrap().is_ok());
    cancel.store(true, Ordering::Relaxed);
    assert!(rows.next().is_none());
    assert_eq!(rows.summary().end, End::Cancelled);
    assert_eq!(rows.summary().rows, 1);
}

#[test]
fn a_run_can_move_to_a_worker_thread() {
    fn send<T: Send + 'static>() {}
    send::<Roster>();
    send::<kite_screen::import::Rows>();
    send::<kite_screen::import::Progress>();
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "thread.csv", "姓名,手机\n张伟,13800138000\n".as_bytes());
    let roster = Roster::open(&path, &ImportOptions::default()).unwrap();
    let count = std::thread::spawn(move || roster.rows(never()).unwrap().count()).join().unwrap();
    assert_eq!(count, 1);
}
