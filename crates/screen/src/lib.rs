//! Kite's screening engine (动态排查): reads rosters from other departments and
//! normalizes their fields so that they can be matched against the member registry.
//!
//! This crate has no server or database code; the server and the command line will
//! both drive it. See README.md for what is here and what comes next.

pub mod normalize;

pub mod import;

pub mod gen;
pub mod matcher;
