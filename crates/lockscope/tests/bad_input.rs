//! Bad input: a clear one-line message, exit 2 only when nothing could be analysed,
//! partial results otherwise, never a panic or a hang.

mod common;

use common::{root, run};
use std::path::PathBuf;

fn tmp(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockscope-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn one_line_error(err: &str, needle: &str) {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {err:?}");
    assert!(lines[0].starts_with("lockscope: ") && lines[0].contains(needle), "{err:?}");
}

#[test]
fn missing_file() {
    let (_, err, code) = run(&["analyze", "/nonexistent/kern.log"]);
    assert_eq!(code, 2);
    one_line_error(&err, "cannot open /nonexistent/kern.log: no such file");
}

#[test]
fn directory() {
    let (_, err, code) = run(&["analyze", "tests"]);
    assert_eq!(code, 2);
    one_line_error(&err, "is a directory");
}

#[test]
fn empty_file() {
    let p = tmp("empty.log", b"");
    let (_, err, code) = run(&["analyze", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    one_line_error(&err, "empty file");
}

#[test]
fn binary_file() {
    let bytes: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let p = tmp("random.bin", &bytes);
    let (_, err, code) = run(&["analyze", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    one_line_error(&err, "no kernel log lines");
}

#[test]
fn no_kernel_lines() {
    let p = tmp("prose.txt", b"Dear user,\nthis is a letter, not a log.\n");
    let (_, err, code) = run(&["analyze", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    one_line_error(&err, "no kernel log lines");
}

#[test]
fn truncated_vmcore_is_refused_with_offset() {
    let p = tmp("vmcore", b"KDUMP   \x06\x00\x00\x00rest of a header");
    let (_, err, code) = run(&["analyze", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    one_line_error(&err, "file truncated: data expected at offset 0x1c");
}

#[test]
fn analyze_reads_the_kernel_log_of_a_vmcore() {
    // The dump and the serial console of the same machine give the same diagnosis.
    let (dump, err, code) = run(&["analyze", "--json", "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31"]);
    assert_eq!(code, 0, "{err}");
    let (console, _, _) = run(&["analyze", "--json", "tests/data/corpus/ipi_sleeping_holder.live.console.log"]);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let console: serde_json::Value = serde_json::from_str(&console).unwrap();
    assert_eq!(dump["inputs"][0]["kind"], "vmcore");
    assert_eq!(dump["diagnosis"]["root"]["task"], console["diagnosis"]["root"]["task"]);
    assert_eq!(
        dump["diagnosis"]["chain"].as_array().unwrap().len(),
        console["diagnosis"]["chain"].as_array().unwrap().len()
    );
    assert_eq!(dump["diagnosis"]["root"]["task"]["pid"], 135);
}

#[test]
fn partial_results_when_one_input_is_bad() {
    let (out, err, code) =
        run(&["analyze", "--color", "never", "/nonexistent", "tests/data/corpus/rcu_reader_spin.live.console.log"]);
    assert_eq!(code, 0);
    one_line_error(&err, "cannot open /nonexistent");
    assert!(out.contains("rcu_hog:134"));
}

#[test]
fn trace_cut_in_the_middle() {
    // The soft lockup report of the corpus, cut inside its register dump.
    let full = std::fs::read_to_string(root().join("tests/data/corpus/ipi_sleeping_holder.panic.console.log")).unwrap();
    let cut: String = full.lines().take(398).map(|l| format!("{l}\n")).collect();
    let p = tmp("cut.log", cut.as_bytes());
    let (out, _, code) = run(&["analyze", "--json", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let soft: Vec<&serde_json::Value> =
        v["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "soft_lockup").collect();
    assert_eq!(soft.len(), 1);
    assert_eq!(soft[0]["cpu"], 1);
}

#[test]
fn sel_with_garbage_rows() {
    let mut sel = std::fs::read(root().join("tests/data/seed-003/sel.txt")).unwrap();
    sel.extend_from_slice(b"\n\xff\xfe garbage | | |\nnot a row at all\n");
    let p = tmp("sel.txt", &sel);
    let (out, err, code) =
        run(&["analyze", "--color", "never", "tests/data/seed-003/dmesg.log", "--sel", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not SEL records"), "{out}");
}

#[test]
fn long_line_and_nul_bytes() {
    // A 6 MiB line (more than a 4 MiB read chunk: cut to 1 MiB) with NULs, then a real report.
    let mut data = vec![b'x'; 6 << 20];
    data[100] = 0;
    data.push(b'\n');
    data.extend_from_slice(&std::fs::read(root().join("tests/data/corpus/rcu_reader_spin.live.console.log")).unwrap());
    let p = tmp("long.log", &data);
    let (out, err, code) = run(&["analyze", "--color", "never", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("over-long line"), "{out}");
    assert!(out.contains("rcu_hog:134"));
}

/// A reader producing one enormous line, then a real log: memory must stay bounded and
/// the report after it must still be found.
struct HugeLine {
    left: u64,
    tail: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for HugeLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left > 0 {
            let n = (buf.len() as u64).min(self.left) as usize;
            buf[..n].fill(b'A');
            self.left -= n as u64;
            if self.left == 0 {
                buf[n - 1] = b'\n';
            }
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

#[test]
fn two_gigabyte_line() {
    // 2 GiB in release builds (the test command), 256 MiB in debug builds.
    let size: u64 = if cfg!(debug_assertions) { 256 << 20 } else { 2 << 30 };
    let tail = std::fs::read(root().join("tests/data/corpus/rcu_reader_spin.live.console.log")).unwrap();
    let r = HugeLine { left: size, tail: std::io::Cursor::new(tail) };
    let scan = lockscope_log::Scanner::new().scan(0, "huge", r).unwrap();
    assert_eq!(scan.info.truncated_lines, 1);
    assert_eq!(
        scan.info.bytes,
        size + std::fs::metadata(root().join("tests/data/corpus/rcu_reader_spin.live.console.log")).unwrap().len()
    );
    assert!(scan.events.iter().any(|e| e.kind == lockscope_facts::EventKind::SoftLockup && e.cpu == Some(2)));
}
