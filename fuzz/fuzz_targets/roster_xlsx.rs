//! Any bytes opened as an .xlsx roster (see `kite_screen::import::fuzz::xlsx`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kite_screen::import::fuzz::xlsx(data);
});
