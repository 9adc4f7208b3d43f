//! Kite's domain: the types, the rules and the access policy, with no I/O.
//!
//! Everything here is pure so that the rules can be tested without a database and
//! shared by the storage layer, the server and the command line.

pub mod access;
pub mod agreement;
pub mod certificate;
pub mod checkin;
pub mod enums;
pub mod evaluation;
pub mod flow;
pub mod id_number;
pub mod member;
pub mod org;
pub mod screening;
pub mod service_point;
pub mod text;
pub mod transfer;
pub mod validation;

pub use access::{Action, CheckinScope, Decision, Principal, Role};
pub use enums::*;
pub use id_number::{IdNumber, IdNumberError};
pub use validation::{FieldError, FieldErrors};
