//! Pure normalization functions for the fields of a roster row.
//!
//! Each takes the cell as read and returns a canonical form (or `None` when nothing
//! usable is there); none panics on any input.

pub mod date;
pub mod gender;
pub mod id_number;
pub mod phone;
pub mod text;

pub use date::{birth_date_from_id, from_excel_serial, parse_date, DateAgreement, PartialDate};
pub use gender::{gender_from_id, parse_gender, Gender};
pub use id_number::{clean_id, normalize_id, repair_candidates, upgrade_15, IdCheck, IdProblem};
pub use phone::{normalize_phone, normalize_phones, Phone, PhoneKind};
pub use text::{canonical_name, clean_text, name_key, pinyin_keys, to_half_width, PinyinKeys, NAME_DOT};
