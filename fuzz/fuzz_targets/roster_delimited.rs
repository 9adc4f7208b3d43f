//! CSV and TSV rosters: the first byte chooses the extension, encoding, delimiter and
//! mapping, the rest is the file (see `kite_screen::import::fuzz::delimited`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kite_screen::import::fuzz::delimited(data);
});
