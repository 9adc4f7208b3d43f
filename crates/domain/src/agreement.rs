//! Co-management agreements (共建共管协议) between an outflow and an inflow side: the
//! parties, the period, the five commitments as fields of their own, and the contacts.
//! One party at least is an organization in the system; the other may be named only.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::{self, FieldErrors};

use crate::{AgreementStatus, ConsultationCycle};

/// Longest text of one commitment.
pub const COMMITMENT_MAX_CHARS: usize = 2000;
/// Largest yearly amount either side may commit, in yuan.
pub const FUNDING_MAX_YUAN: i64 = 1_000_000_000;

/// One party as typed: an organization code in the system, or a name when it is not.
#[derive(Debug, Clone, Default)]
pub struct PartyInput<'a> {
    pub org_code: &'a str,
    pub name: &'a str,
    pub contact_name: &'a str,
    pub contact_phone: &'a str,
}

#[derive(Debug, Clone, Default)]
pub struct AgreementInput<'a> {
    pub title: &'a str,
    /// The parties' own reference (协议编号), optional.
    pub number: &'a str,
    pub outflow: PartyInput<'a>,
    pub inflow: PartyInput<'a>,
    pub signed_on: &'a str,
    pub starts_on: &'a str,
    /// Empty for an agreement without an end date.
    pub ends_on: &'a str,
    /// 组织共建.
    pub org_building: &'a str,
    /// 党员共管.
    pub member_management: &'a str,
    /// 工作共商, with how often the parties meet.
    pub consultation: &'a str,
    pub consultation_cycle: &'a str,
    /// 经费共担, with each side's yearly amount in yuan.
    pub funding: &'a str,
    pub funding_outflow_yuan: &'a str,
    pub funding_inflow_yuan: &'a str,
    /// 活动共抓.
    pub activities: &'a str,
    pub note: &'a str,
}

/// A validated party: the code still has to be found in the system by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub org_code: Option<String>,
    pub name: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
}

/// A validated agreement.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub title: String,
    pub number: Option<String>,
    pub outflow: Party,
    pub inflow: Party,
    pub signed_on: Option<NaiveDate>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub org_building: Option<String>,
    pub member_management: Option<String>,
    pub consultation: Option<String>,
    pub consultation_cycle: Option<ConsultationCycle>,
    pub funding: Option<String>,
    pub funding_outflow_yuan: Option<i64>,
    pub funding_inflow_yuan: Option<i64>,
    pub activities: Option<String>,
    pub note: Option<String>,
}

/// The five commitments' fields, in the order the seeds name them.
pub const COMMITMENTS: [&str; 5] = ["org_building", "member_management", "consultation", "funding", "activities"];

fn party(
    e: &mut FieldErrors,
    p: &PartyInput,
    fields: [&'static str; 4], // org code, name, contact name, contact phone
) -> Party {
    let org_code = validation::text(e, fields[0], p.org_code, false, 64);
    let name = validation::text(e, fields[1], p.name, false, 100);
    if org_code.is_none() && name.is_none() && e.get(fields[0]).is_none() && e.get(fields[1]).is_none() {
        e.add(fields[0], "agreement.party_required");
    }
    let contact_name = validation::text(e, fields[2], p.contact_name, false, 50);
    let contact_phone = match p.contact_phone.trim() {
        "" => None,
        s => {
            let v = validation::phone(s);
            if v.is_none() {
                e.add(fields[3], "invalid");
            }
            v
        }
    };
    // A party named by code is the organization in the system; a name typed beside it is dropped.
    let name = if p.org_code.trim().is_empty() { name } else { None };
    Party { org_code, name, contact_name, contact_phone }
}

fn yuan(e: &mut FieldErrors, field: &'static str, value: &str) -> Option<i64> {
    match value.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) if (0..=FUNDING_MAX_YUAN).contains(&n) => Some(n),
            _ => {
                e.add(field, "agreement.amount_invalid");
                None
            }
        },
    }
}

/// Validates an agreement's fields on their own; the store then finds the parties'
/// organizations and checks that the caller is one of them.
pub fn validate(input: &AgreementInput, today: NaiveDate) -> Result<Agreement, FieldErrors> {
    let mut e = FieldErrors::default();
    let title = validation::text(&mut e, "title", input.title, true, 100);
    let number = validation::text(&mut e, "number", input.number, false, 50);
    let outflow = party(
        &mut e,
        &input.outflow,
        ["outflow.org_code", "outflow.name", "outflow.contact_name", "outflow.contact_phone"],
    );
    let inflow =
        party(&mut e, &input.inflow, ["inflow.org_code", "inflow.name", "inflow.contact_name", "inflow.contact_phone"]);
    if outflow.org_code.is_some() && outflow.org_code == inflow.org_code {
        e.add("inflow.org_code", "agreement.same_party");
    }
    let signed_on = validation::date(&mut e, "signed_on", input.signed_on, false);
    if signed_on.is_some_and(|d| d > today) {
        e.add("signed_on", "in_future");
    }
    let starts_on = validation::date(&mut e, "starts_on", input.starts_on, true);
    let ends_on = validation::date(&mut e, "ends_on", input.ends_on, false);
    if let (Some(a), Some(b)) = (starts_on, ends_on) {
        if b < a {
            e.add("ends_on", "agreement.range_reversed");
        }
    }
    let mut commitment =
        |field: &'static str, v: &str| validation::multiline(&mut e, field, v, false, COMMITMENT_MAX_CHARS);
    let org_building = commitment("org_building", input.org_building);
    let member_management = commitment("member_management", input.member_management);
    let consultation = commitment("consultation", input.consultation);
    let funding = commitment("funding", input.funding);
    let activities = commitment("activities", input.activities);
    let consultation_cycle = match input.consultation_cycle.trim() {
        "" => None,
        s => {
            let c = ConsultationCycle::from_code(s);
            if c.is_none() {
                e.add("consultation_cycle", "invalid");
            }
            c
        }
    };
    let funding_outflow_yuan = yuan(&mut e, "funding_outflow_yuan", input.funding_outflow_yuan);
    let funding_inflow_yuan = yuan(&mut e, "funding_inflow_yuan", input.funding_inflow_yuan);
    let texts = [&org_building, &member_management, &consultation, &funding, &activities];
    let typed = COMMITMENTS.iter().any(|f| e.get(f).is_some());
    if !typed && texts.iter().all(|t| t.is_none()) {
        e.add("org_building", "agreement.no_commitment");
    }
    let note = validation::multiline(&mut e, "note", input.note, false, 1000);
    let (Some(title), Some(starts_on)) = (title, starts_on) else {
        return Err(e);
    };
    e.into_result(Agreement {
        title,
        number,
        outflow,
        inflow,
        signed_on,
        starts_on,
        ends_on,
        org_building,
        member_management,
        consultation,
        consultation_cycle,
        funding,
        funding_outflow_yuan,
        funding_inflow_yuan,
        activities,
        note,
    })
}

/// Where an agreement with these dates stands on `today`.
pub fn status(starts_on: NaiveDate, ends_on: Option<NaiveDate>, today: NaiveDate) -> AgreementStatus {
    if today < starts_on {
        AgreementStatus::Upcoming
    } else if ends_on.is_some_and(|end| today > end) {
        AgreementStatus::Expired
    } else {
        AgreementStatus::Active
    }
}

/// Which side of an agreement an organization is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartySide {
    Outflow,
    Inflow,
}

/// Attached files: the signed text as a scan or document. The type is found from the
/// content, never from the name or the browser's claim.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Attachments one agreement may hold.
pub const MAX_FILES: i64 = 20;

/// The kind of a file an agreement may carry (PDF, OFD, Word, PNG, JPEG), from its
/// first bytes: `(content type, extension)`. Containers (zip, OLE2) hold many kinds, so
/// they count only when named as the document kinds they carry.
pub fn sniff_file(bytes: &[u8], name: &str) -> Option<(&'static str, &'static str)> {
    const KINDS: [(&[u8], &str, &str); 3] = [
        (b"%PDF-", "application/pdf", "pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
        (b"\xFF\xD8\xFF", "image/jpeg", "jpg"),
    ];
    let lower = name.to_lowercase();
    if bytes.starts_with(b"PK\x03\x04") {
        return if lower.ends_with(".docx") {
            Some(("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"))
        } else if lower.ends_with(".ofd") {
            Some(("application/ofd", "ofd"))
        } else {
            None
        };
    }
    if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return lower.ends_with(".doc").then_some(("application/msword", "doc"));
    }
    KINDS.iter().find(|(magic, _, _)| bytes.starts_with(magic)).map(|(_, t, x)| (*t, *x))
}

/// The name a file is stored and offered under: [`clean_file_name`] with the extension
/// of its detected kind, so that a download never opens as something else.
pub fn stored_file_name(name: &str, extension: &str) -> String {
    let clean = clean_file_name(name).unwrap_or_default();
    let stem = match clean.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => clean,
    };
    let stem = if stem.is_empty() { "agreement".to_string() } else { stem };
    format!("{stem}.{extension}")
}

fn is_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A file name as stored and offered on download: the last path segment, without
/// control or quoting characters, at most 100 characters.
pub fn clean_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        // Format characters (bidi overrides, zero widths) could make a name read as another.
        .filter(|c| !c.is_control() && !is_format(*c) && !matches!(c, '"' | '<' | '>' | '|' | '*' | '?' | ':'))
        .take(100)
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn input<'a>() -> AgreementInput<'a> {
        AgreementInput {
            title: "灌南县驻苏州流动党员共建共管协议",
            outflow: PartyInput { org_code: "GN", ..Default::default() },
            inflow: PartyInput {
                name: "苏州市姑苏区委组织部", contact_phone: "0512-6512 3456", ..Default::default()
            },
            starts_on: "2026-01-01",
            ends_on: "2028-12-31",
            member_management: "流入地党组织负责日常教育管理，每半年反馈评价意见",
            consultation_cycle: "quarterly",
            funding_outflow_yuan: "10000",
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_agreement_is_accepted() {
        let a = validate(&input(), d("2026-11-24")).unwrap();
        assert_eq!(a.outflow.org_code.as_deref(), Some("GN"));
        assert_eq!(a.inflow.name.as_deref(), Some("苏州市姑苏区委组织部"));
        assert_eq!(a.inflow.contact_phone.as_deref(), Some("051265123456"));
        assert_eq!(a.consultation_cycle, Some(ConsultationCycle::Quarterly));
        assert_eq!(a.funding_outflow_yuan, Some(10000));
        assert_eq!(a.ends_on, Some(d("2028-12-31")));
    }

    #[test]
    fn each_problem_is_named_on_its_field() {
        let bad = AgreementInput {
            title: " ",
            outflow: PartyInput::default(),
            inflow: PartyInput { org_code: "X", contact_phone: "12", ..Default::default() },
            signed_on: "2027-01-01",
            starts_on: "2026-05-01",
            ends_on: "2026-04-30",
            member_management: "",
            consultation_cycle: "weekly",
            funding_inflow_yuan: "-5",
            ..input()
        };
        let e = validate(&bad, d("2026-11-24")).unwrap_err();
        assert_eq!(e.get("title"), Some("required"));
        assert_eq!(e.get("outflow.org_code"), Some("agreement.party_required"));
        assert_eq!(e.get("inflow.contact_phone"), Some("invalid"));
        assert_eq!(e.get("signed_on"), Some("in_future"));
        assert_eq!(e.get("ends_on"), Some("agreement.range_reversed"));
        assert_eq!(e.get("consultation_cycle"), Some("invalid"));
        assert_eq!(e.get("funding_inflow_yuan"), Some("agreement.amount_invalid"));
        assert_eq!(e.get("org_building"), Some("agreement.no_commitment"));
    }

    #[test]
    fn the_same_organization_cannot_be_both_parties() {
        let same = AgreementInput { inflow: PartyInput { org_code: "GN", ..Default::default() }, ..input() };
        assert_eq!(validate(&same, d("2026-11-24")).unwrap_err().get("inflow.org_code"), Some("agreement.same_party"));
    }

    #[test]
    fn a_code_wins_over_a_typed_name() {
        let both = AgreementInput {
            outflow: PartyInput { org_code: "GN", name: "别的名字", ..Default::default() },
            ..input()
        };
        assert_eq!(validate(&both, d("2026-11-24")).unwrap().outflow.name, None);
    }

    #[test]
    fn status_follows_the_dates() {
        let (start, end) = (d("2026-01-01"), Some(d("2026-12-31")));
        assert_eq!(status(start, end, d("2025-12-31")), AgreementStatus::Upcoming);
        assert_eq!(status(start, end, d("2026-01-01")), AgreementStatus::Active);
        assert_eq!(status(start, end, d("2026-12-31")), AgreementStatus::Active);
        assert_eq!(status(start, end, d("2027-01-01")), AgreementStatus::Expired);
        assert_eq!(status(start, None, d("2099-01-01")), AgreementStatus::Active);
    }

    #[test]
    fn files_are_known_by_their_content_and_names_are_cleaned() {
        assert_eq!(sniff_file(b"%PDF-1.4\n...", "协议.hta"), Some(("application/pdf", "pdf")));
        assert_eq!(sniff_file(b"\xFF\xD8\xFF\xE0rest", "scan"), Some(("image/jpeg", "jpg")));
        assert_eq!(sniff_file(b"PK\x03\x04....", "协议.DOCX").map(|t| t.1), Some("docx"));
        assert_eq!(sniff_file(b"PK\x03\x04....", "archive.zip"), None);
        assert_eq!(sniff_file(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1..", "setup.msi"), None);
        assert_eq!(sniff_file(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1..", "旧协议.doc").map(|t| t.1), Some("doc"));
        assert_eq!(stored_file_name("协议.hta", "pdf"), "协议.pdf");
        assert_eq!(stored_file_name("扫描件", "jpg"), "扫描件.jpg");
        assert_eq!(stored_file_name("协议\u{202E}fdp.exe", "pdf"), "协议fdp.pdf");
        assert_eq!(stored_file_name("...", "pdf"), "agreement.pdf");
        assert_eq!(sniff_file(b"<html>", "a.pdf"), None);
        assert_eq!(sniff_file(b"", "a.pdf"), None);
        assert_eq!(clean_file_name("C:\\扫描\\协议书.pdf").as_deref(), Some("协议书.pdf"));
        assert_eq!(clean_file_name("../../etc/\"x\".pdf").as_deref(), Some("x.pdf"));
        assert_eq!(clean_file_name("..."), None);
    }
}
