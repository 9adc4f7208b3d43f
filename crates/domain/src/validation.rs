//! Field-level validation results. Codes, not sentences: the server's message
//! catalogue turns `member.phone.invalid` into Chinese or English.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, code: &'static str) {
        // Keep only the first problem per field: that is the one to fix first.
        if !self.0.iter().any(|e| e.field == field) {
            self.0.push(FieldError { field, code });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds another form's problems (two parts of one form checked apart).
    pub fn extend(&mut self, other: FieldErrors) {
        for e in other.0 {
            self.add(e.field, e.code);
        }
    }

    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.code)
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(ok)
        } else {
            Err(self)
        }
    }
}

/// A date field as typed (the formats of [`crate::member::parse_date`]): `None` when
/// empty (an error if `required`) or unreadable (an error).
pub fn date(errors: &mut FieldErrors, field: &'static str, value: &str, required: bool) -> Option<chrono::NaiveDate> {
    match value.trim() {
        "" => {
            if required {
                errors.add(field, "required");
            }
            None
        }
        s => {
            let d = crate::member::parse_date(s);
            if d.is_none() {
                errors.add(field, "invalid_date");
            }
            d
        }
    }
}

/// Trims a free-text field and checks its length in characters.
pub fn text(
    errors: &mut FieldErrors,
    field: &'static str,
    value: &str,
    required: bool,
    max_chars: usize,
) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        if required {
            errors.add(field, "required");
        }
        return None;
    }
    if v.chars().count() > max_chars {
        errors.add(field, "too_long");
        return None;
    }
    if v.chars().any(char::is_control) {
        errors.add(field, "invalid");
        return None;
    }
    Some(v.to_string())
}

/// Like [`text`] for a text area: line breaks are kept (as `\n`), other control
/// characters are refused.
pub fn multiline(
    errors: &mut FieldErrors,
    field: &'static str,
    value: &str,
    required: bool,
    max_chars: usize,
) -> Option<String> {
    let v = value.replace("\r\n", "\n").replace('\r', "\n");
    let v = v.trim();
    if v.is_empty() {
        if required {
            errors.add(field, "required");
        }
        return None;
    }
    if v.chars().count() > max_chars {
        errors.add(field, "too_long");
        return None;
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errors.add(field, "invalid");
        return None;
    }
    Some(v.to_string())
}

/// Mainland mobile numbers (11 digits starting with 1) or landlines with area code.
/// Accepts +86 and common separators and returns the digits.
pub fn phone(value: &str) -> Option<String> {
    let mut digits: String = value.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '（' | '）')).collect();
    if let Some(rest) = digits.strip_prefix("+86") {
        digits = rest.to_string();
    } else if digits.len() == 13 && digits.starts_with("86") {
        digits = digits[2..].to_string();
    }
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mobile = digits.len() == 11 && digits.starts_with('1');
    let landline = digits.starts_with('0') && (10..=12).contains(&digits.len());
    (mobile || landline).then_some(digits)
}

/// A mainland mobile number (the only kind that receives SMS), normalised as [`phone`].
pub fn mobile_phone(value: &str) -> Option<String> {
    phone(value).filter(|p| p.starts_with('1'))
}

/// A required identity-number field: the parsed number, or its error code on `field`.
pub fn id_number(errors: &mut FieldErrors, field: &'static str, value: &str) -> Option<crate::IdNumber> {
    if value.trim().is_empty() {
        errors.add(field, "required");
        return None;
    }
    crate::IdNumber::parse(value).map_err(|err| errors.add(field, err.code())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised() {
        assert_eq!(phone("+86 138-1234-5678").as_deref(), Some("13812345678"));
        assert_eq!(phone("0518-83212345").as_deref(), Some("051883212345"));
        assert_eq!(phone("1381234567"), None);
        assert_eq!(phone("abc"), None);
    }

    #[test]
    fn text_checks_required_and_length() {
        let mut e = FieldErrors::default();
        assert_eq!(text(&mut e, "name", "  张三 ", true, 10).as_deref(), Some("张三"));
        assert_eq!(text(&mut e, "employer", " ", false, 10), None);
        assert!(e.is_empty());
        text(&mut e, "name", "", true, 10);
        text(&mut e, "address", "很长很长很长", false, 3);
        assert_eq!(e.get("name"), Some("required"));
        assert_eq!(e.get("address"), Some("too_long"));
    }

    #[test]
    fn multiline_keeps_line_breaks_only() {
        let mut e = FieldErrors::default();
        assert_eq!(multiline(&mut e, "a", " 一、共建\r\n二、共管 ", true, 50).as_deref(), Some("一、共建\n二、共管"));
        assert!(e.is_empty());
        multiline(&mut e, "b", "x\u{0}y", false, 50);
        assert_eq!(e.get("b"), Some("invalid"));
    }
}
