//! Fuzz target: arbitrary bytes as an `ipmitool sel list`/`sel get` listing through
//! `lockscope_log::hardware::parse_sel`. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = lockscope_log::hardware::parse_sel(data);
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    assert!(parsed.records.len() + parsed.rejected.len() <= lines);
});
