//! Spreadsheet exports (.xlsx) with headers from the message catalogue.

use kite_domain::flow::Side;
use kite_store::FlowEntry;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::i18n::{self, Lang};

/// A column: its header key in the catalogue and its cell text.
type Column = (&'static str, fn(&FlowEntry, Lang) -> String);

fn division(code: &str) -> String {
    kite_divisions::full_name(code).unwrap_or_else(|| code.to_string())
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

const NAME: Column = ("field.name", |e, _| e.name.clone());
const GENDER: Column = ("field.gender", |e, l| i18n::t(l, &format!("enum.gender.{}", e.gender.code())));
const ID: Column = ("field.id_number", |e, _| e.id_number_masked.clone());
const PHONE: Column = ("field.phone", |e, _| opt(&e.phone));
const HOME_ORG: Column = ("flows.home_org", |e, _| e.outflow_org_name.clone());
const HOME_DIVISION: Column = ("flows.home_division", |e, _| division(&e.home_division));
const DESTINATION: Column = ("field.destination_division", |e, _| division(&e.destination_division));
const ADDRESS: Column = ("field.destination_address", |e, _| opt(&e.destination_address));
const REASON: Column = ("field.reason", |e, l| i18n::t(l, &format!("enum.flow_reason.{}", e.reason.code())));
const LEFT_ON: Column = ("field.left_on", |e, _| e.left_on.to_string());
const MONTHS: Column = ("flows.months_away", |e, _| e.months_away.to_string());
const MOBILE: Column = ("flows.mobile", |e, l| i18n::t(l, if e.mobile { "common.yes" } else { "common.no" }));
const STATUS: Column = ("field.status", |e, l| i18n::t(l, &format!("enum.flow_status.{}", e.status.code())));
const INFLOW_ORG: Column = ("field.inflow_org", |e, _| opt(&e.inflow_org_name));
const CHECKED_IN: Column = ("flows.checked_in_at", |e, _| {
    e.checked_in_at.map(|t| t.with_timezone(&crate::rules::CST).format("%Y-%m-%d").to_string()).unwrap_or_default()
});
const ENDED: Column = ("flows.ended_on", |e, _| e.ended_on.map(|d| d.to_string()).unwrap_or_default());

/// The columns of each list: the inflow side gets what managing the member there needs.
pub fn flow_columns(side: Side) -> &'static [Column] {
    match side {
        Side::Outflow => &[
            NAME,
            GENDER,
            ID,
            PHONE,
            HOME_ORG,
            DESTINATION,
            ADDRESS,
            REASON,
            LEFT_ON,
            MONTHS,
            MOBILE,
            STATUS,
            INFLOW_ORG,
            CHECKED_IN,
            ENDED,
        ],
        Side::Inflow => &[
            NAME,
            GENDER,
            ID,
            PHONE,
            HOME_DIVISION,
            HOME_ORG,
            INFLOW_ORG,
            ADDRESS,
            CHECKED_IN,
            LEFT_ON,
            MONTHS,
            STATUS,
        ],
    }
}

/// The list as a workbook: one sheet named after the list, a bold header row, frozen.
pub fn flows_xlsx(side: Side, rows: &[FlowEntry], lang: Lang) -> Result<Vec<u8>, XlsxError> {
    let columns = flow_columns(side);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory()?;
    sheet.set_name(i18n::t(lang, &format!("flows.title_{}", side.code())))?;
    let bold = Format::new().set_bold();
    for (c, (key, _)) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, i18n::t(lang, key), &bold)?;
        sheet.set_column_width(c as u16, if *key == "field.destination_address" { 36 } else { 16 })?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (r, e) in rows.iter().enumerate() {
        for (c, (_, cell)) in columns.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, cell(e, lang))?;
        }
    }
    book.save_to_buffer()
}
