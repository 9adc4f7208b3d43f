//! Kite's screening engine (动态排查): reads rosters from other departments, normalizes
//! their fields and matches them against the member registry; `gen` makes synthetic
//! registries and rosters with ground truth for tests and the benchmark.
//!
//! This crate has no server or database code; the server and the command line will
//! both drive it. See README.md for what is here and what comes next.

pub mod normalize;

pub mod import;

pub mod gen;
pub mod matcher;
