//! Fuzz target: arbitrary bytes as a kernel log through `Scanner::scan`. Must never panic,
//! and every event's line range must lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockscope_log::Scanner;
use std::sync::OnceLock;

static SCANNER: OnceLock<Scanner> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let scanner = SCANNER.get_or_init(Scanner::new);
    let scan = scanner
        .scan(0, "fuzz", data)
        .expect("reading from a slice cannot fail");
    assert_eq!(scan.info.bytes, data.len() as u64);
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(scan.info.lines <= newlines + 1);
    assert!(scan.events.len() as u64 <= scan.info.lines);
    for e in &scan.events {
        assert!(e.lines.first <= e.lines.last && e.lines.last <= scan.info.lines);
    }
});
