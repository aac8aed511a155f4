//! Replays the fuzz corpus (`fuzz/corpus/*/`, and `fuzz/artifacts/*/` when a fuzzing run
//! left crashes there) and a few adversarial inputs generated here (too big to commit)
//! through `Scanner::scan` and `hardware::parse_sel`, on stable and in plain `cargo test`:
//! no input may panic, and the output must stay bounded by the input.

use lockscope_log::{Scanner, SourceScan, hardware::parse_sel};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file one level below `fuzz/<sub>/`.
fn files_under(sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(fuzz_dir().join(sub)) else {
        return out;
    };
    for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.path().is_file() {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// A reader that hands out at most `step` bytes per call, to cross chunk boundaries.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn check_scan(scan: &SourceScan, data: &[u8]) -> Result<(), String> {
    let newlines = memchr::memchr_iter(b'\n', data).count() as u64;
    let lines = scan.info.lines;
    let checks = [
        (scan.info.bytes == data.len() as u64, "bytes read != input length"),
        (lines <= newlines + 1, "more lines than the input has"),
        (scan.events.len() as u64 <= lines, "more events than lines"),
        (scan.held_locks.len() as u64 <= lines, "more held-lock lists than lines"),
        (
            scan.events.iter().all(|e| e.lines.first <= e.lines.last && e.lines.last <= lines),
            "an event's line range lies outside the input",
        ),
        (
            scan.events.iter().all(|e| e.stack.len() as u64 <= lines),
            "a stack with more frames than the input has lines",
        ),
        (
            // Text copied out of the input (headlines, titles, messages) is bounded by it.
            format!("{:?}", scan.events).len() <= 64 * data.len() + (1 << 16),
            "event output out of proportion to the input",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, why)) => Err(why.to_string()),
        None => Ok(()),
    }
}

/// Runs one input through both parsers; `Err` says what went wrong.
fn replay(scanner: &Scanner, data: &[u8]) -> Result<(), String> {
    let run = || -> Result<(), String> {
        let scan = scanner.scan(0, "replay", data).map_err(|e| e.to_string())?;
        check_scan(&scan, data)?;
        // Reading a byte (then 4 KiB) at a time must give the same result.
        for step in [1, 4096] {
            if data.len() > (1 << 16) && step == 1 {
                continue;
            }
            let other = scanner.scan(0, "replay", Trickle { data, step }).map_err(|e| e.to_string())?;
            if format!("{:?}", other.events) != format!("{:?}", scan.events) {
                return Err(format!("events differ when read {step} bytes at a time"));
            }
        }
        let sel = parse_sel(data);
        let lines = memchr::memchr_iter(b'\n', data).count() + 1;
        if sel.records.len() + sel.rejected.len() > lines {
            return Err("parse_sel gave more records and rejections than lines".into());
        }
        Ok(())
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panic: {}",
            p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("?")
        )),
    }
}

fn assert_all_pass(inputs: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
    let scanner = Scanner::new();
    let mut n = 0;
    let failures: Vec<String> = inputs
        .into_iter()
        .inspect(|_| n += 1)
        .filter_map(|(name, data)| replay(&scanner, &data).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{} inputs failed:\n{}", failures.len(), failures.join("\n"));
    n
}

#[test]
fn corpus_and_artifacts_replay() {
    let files: Vec<PathBuf> = files_under("corpus").into_iter().chain(files_under("artifacts")).collect();
    let n = assert_all_pass(files.iter().map(|f| (f.display().to_string(), std::fs::read(f).unwrap())));
    assert!(n >= 10, "fuzz/corpus holds only {n} files");
}

#[test]
fn generated_adversarial_inputs() {
    let report = b"[  21.160707] INFO: task a:135 blocked for more than 10 seconds.\n\
        [  21.160710] Call Trace:\n[  21.160711]  schedule+0x1/0x2\n";
    let big = |fill: u8, n: usize| vec![fill; n];
    let join = |parts: &[&[u8]]| parts.concat();
    let five_mb = 5 << 20;
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("5 MB line, no newline", big(b'A', five_mb)),
        ("5 MB line with a trigger at each end", join(&[b"BUG: soft lockup ", &big(b'x', five_mb), b" soft lockup\n"])),
        ("5 MB line inside a report", join(&[report, &big(b'y', five_mb), b"\n", report])),
        ("5 MB of a trace frame line", join(&[report, b"[  21.2]  ", &big(b'f', five_mb), b"+0x1/0x2\n"])),
        ("1 MB of NUL", big(0, 1 << 20)),
        ("1 MB of \\r", big(b'\r', 1 << 20)),
        ("1 MB of \\n", big(b'\n', 1 << 20)),
        (
            "100k headlines without traces",
            b"[ 1.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [x:1]\n".repeat(100_000),
        ),
        ("20k reports", report.repeat(20_000)),
        ("10k truncated reports", report[..report.len() - 9].repeat(10_000)),
        ("1 MB of 0xff", big(0xff, 1 << 20)),
        ("1 MB of SEL pipes", b" 1 | | | | | | | |\n".repeat(1 << 16)),
    ];
    assert_all_pass(inputs.into_iter().map(|(n, d)| (n.to_string(), d)));
}
