//! The message catalogue: every user-facing sentence, in Chinese and English.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Picks the language from a `lang` cookie value or an Accept-Language header;
    /// Chinese unless English is asked for first.
    pub fn pick(cookie: Option<&str>, accept: Option<&str>) -> Lang {
        match cookie {
            Some("en") => return Lang::En,
            Some("zh-CN") => return Lang::Zh,
            _ => {}
        }
        let first = accept.and_then(|a| a.split(',').next()).unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }
}

type Catalogue = HashMap<String, String>;

fn catalogues() -> &'static (Catalogue, Catalogue) {
    static C: OnceLock<(Catalogue, Catalogue)> = OnceLock::new();
    C.get_or_init(|| {
        let zh = serde_json::from_str(include_str!("../locales/zh-CN.json")).expect("zh-CN catalogue is valid JSON");
        let en = serde_json::from_str(include_str!("../locales/en.json")).expect("en catalogue is valid JSON");
        (zh, en)
    })
}

/// The message for `key`, falling back to Chinese, then to the key itself.
pub fn t(lang: Lang, key: &str) -> String {
    let (zh, en) = catalogues();
    let primary = if lang == Lang::En { en } else { zh };
    primary.get(key).or_else(|| zh.get(key)).cloned().unwrap_or_else(|| key.to_string())
}

/// The message for an error code (`err.<code>`).
pub fn err(lang: Lang, code: &str) -> String {
    t(lang, &format!("err.{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let (zh, en) = catalogues();
        let mut a: Vec<_> = zh.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn every_domain_code_has_a_message() {
        use kite_domain::*;
        let mut keys = vec![];
        for v in OrgLevel::ALL {
            keys.push(format!("enum.org_level.{}", v.code()))
        }
        for v in OrgKind::ALL {
            keys.push(format!("enum.org_kind.{}", v.code()))
        }
        for v in Mobility::ALL {
            keys.push(format!("enum.mobility.{}", v.code()))
        }
        for v in FlowStatus::ALL {
            keys.push(format!("enum.flow_status.{}", v.code()))
        }
        for v in FlowReason::ALL {
            keys.push(format!("enum.flow_reason.{}", v.code()))
        }
        for v in Education::ALL {
            keys.push(format!("enum.education.{}", v.code()))
        }
        for v in Role::ALL {
            keys.push(format!("enum.role.{}", v.code()))
        }
        for v in ServicePointLevel::ALL {
            keys.push(format!("enum.service_point_level.{}", v.code()))
        }
        for v in kite_domain::CheckinStatus::ALL {
            keys.push(format!("enum.checkin_status.{}", v.code()))
        }
        for v in Rating::ALL {
            keys.push(format!("enum.rating.{}", v.code()))
        }
        for v in EvaluationCycle::ALL {
            keys.push(format!("enum.evaluation_cycle.{}", v.code()))
        }
        for v in kite_domain::CheckinChannel::ALL {
            keys.push(format!("enum.checkin_channel.{}", v.code()))
        }
        for v in kite_domain::TransferStatus::ALL {
            keys.push(format!("enum.transfer_status.{}", v.code()))
        }
        for v in kite_domain::TransferInitiator::ALL {
            keys.push(format!("enum.transfer_initiator.{}", v.code()))
        }
        for r in [
            kite_domain::transfer::Refusal::NotYourStep,
            kite_domain::transfer::Refusal::WrongStatus,
            kite_domain::transfer::Refusal::LetterExpired,
            kite_domain::transfer::Refusal::LetterStillValid,
        ] {
            keys.push(format!("err.{}", r.code()));
        }
        for c in [
            "transfer.letter_too_long",
            "transfer.letter_days_invalid",
            "transfer.letter_months_invalid",
            "transfer.extend_not_later",
        ] {
            keys.push(format!("err.{c}"));
        }
        for r in ["home_stationed", "workplace", "same_street", "same_county", "same_city"] {
            keys.push(format!("checkin.reason.{r}"))
        }
        for e in [
            IdNumberError::Length,
            IdNumberError::Characters,
            IdNumberError::BirthDate,
            IdNumberError::CheckDigit,
            IdNumberError::Province,
        ] {
            keys.push(format!("err.{}", e.code()));
        }
        let (zh, _) = catalogues();
        for k in keys {
            assert!(zh.contains_key(&k), "missing {k}");
        }
    }

    /// The string literals that follow each `marker` in `text`.
    fn literals_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        text.match_indices(marker)
            .filter_map(|(i, _)| {
                let rest = &text[i + marker.len()..];
                rest.split('"').next().filter(|k| !k.is_empty() && !k.contains([' ', '{']))
            })
            .collect()
    }

    /// The files with extension `ext` under `dir`, subdirectories included.
    fn sources(dir: &str, ext: &str) -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, ext: &str, out: &mut Vec<(String, String)>) {
            let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if p.is_dir() {
                    walk(&p, ext, out);
                } else if p.extension().is_some_and(|x| x == ext) {
                    out.push((p.display().to_string(), std::fs::read_to_string(&p).expect("readable")));
                }
            }
        }
        let mut out = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), ext, &mut out);
        out
    }

    #[test]
    fn every_message_the_templates_name_exists() {
        let (zh, _) = catalogues();
        let mut checked = 0;
        for (file, text) in sources("templates", "html") {
            for marker in ["t(\"", "t('"] {
                let quote = if marker.ends_with('"') { '"' } else { '\'' };
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    let key = rest.split(quote).next().unwrap_or_default();
                    // Keys completed at run time (`"enum.gender." ~ m.gender`) are checked above.
                    if rest[key.len() + 1..].trim_start().starts_with('~') {
                        continue;
                    }
                    assert!(zh.contains_key(key), "{file}: no message {key:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "only {checked} keys found: is the scan broken?");
    }

    #[test]
    fn every_error_code_the_store_returns_has_a_message() {
        let (zh, en) = catalogues();
        let mut checked = 0;
        let files = [sources("../store/src", "rs"), sources("../domain/src", "rs")].concat();
        for (file, text) in files {
            let mut codes = literals_after(&text, "Conflict(\"");
            // invalid("field", "code") and errors.add("field", "code"): the second literal.
            for marker in ["StoreError::invalid(\"", ".add(\""] {
                for (i, _) in text.match_indices(marker) {
                    let call = text[i..].split(')').next().unwrap_or_default();
                    if let Some(code) = call.split('"').nth(3).filter(|c| !c.is_empty() && !c.contains(' ')) {
                        codes.push(code);
                    }
                }
            }
            for code in codes {
                let key = format!("err.{code}");
                assert!(zh.contains_key(&key) && en.contains_key(&key), "{file}: no message {key:?}");
                checked += 1;
            }
        }
        assert!(checked > 10, "only {checked} codes found: is the scan broken?");
    }

    #[test]
    fn language_choice() {
        assert_eq!(Lang::pick(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::pick(None, Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::pick(Some("zh-CN"), Some("en")), Lang::Zh);
        assert_eq!(Lang::pick(None, None), Lang::Zh);
        assert_eq!(t(Lang::En, "nav.members"), "Members");
        assert_eq!(t(Lang::Zh, "no.such.key"), "no.such.key");
    }
}
