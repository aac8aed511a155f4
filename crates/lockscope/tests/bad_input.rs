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
    one_line_error(&err, "binary data, not a kernel log (a vmcore with a damaged header?)");
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

const REPO_DUMP: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";

/// A mutated copy of the repo dump in a fresh directory.
fn damaged_copy(dir: &tempfile::TempDir, mutate: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut f = std::fs::read(root().join(REPO_DUMP)).unwrap();
    mutate(&mut f);
    let p = dir.path().join("vmcore");
    std::fs::write(&p, &f).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn non_files_get_one_line_naming_them_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let fifo = dir.path().join("fifo");
    let have_fifo = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    let missing = format!("{d}/none");
    let mut cases = vec![
        (d.clone(), "it is a directory, not a regular file"),
        ("/dev/null".to_string(), "it is a character device, not a regular file"),
        (missing, "no such file"),
    ];
    if have_fifo {
        cases.push((fifo.to_str().unwrap().to_string(), "it is a FIFO (named pipe), not a regular file"));
    }
    let out = format!("{d}/out");
    for (path, why) in &cases {
        if !why.contains("FIFO") && !why.contains("character device") {
            let (_, err, code) = run(&["analyze", path]);
            assert_eq!(code, 2);
            one_line_error(&err, &format!("{path}: {why}"));
        }
        for cmd in [
            vec!["dump-info", path],
            vec!["convert", "--compress", "zlib", path, &out],
            vec!["sys", path],
            vec!["ps", path],
            vec!["runq", path],
            vec!["log", path],
            vec!["sym", path, "jiffies"],
            vec!["struct", path, "task_struct", "0xffff888000000000"],
            vec!["rd", path, "0xffffffff81000000"],
        ] {
            let (_, err, code) = run(&cmd);
            assert_eq!(code, 2, "{cmd:?}");
            one_line_error(&err, &format!("{path}: {why}"));
        }
    }
}

#[test]
fn analyze_reads_logs_from_pipes_and_devices() {
    let (_, err, code) = run(&["analyze", "/dev/null"]);
    assert_eq!(code, 2);
    one_line_error(&err, "/dev/null: empty file");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    if !std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        return;
    }
    let f = fifo.to_str().unwrap();
    // A writer, as `analyze <(zcat kern.log.gz)` has one.
    let log = root().join("tests/data/corpus/ipi_sleeping_holder.live.console.log");
    let writer = std::process::Command::new("sh").arg("-c").arg(format!("cat {} > {f}", log.display())).spawn();
    let (out, err, code) = run(&["analyze", f]);
    writer.unwrap().wait().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Root cause (likely): task zone_drain:135"), "{out}");
    // A vmcore through a pipe cannot be read at random: said so, not read as text.
    let dump = root().join(REPO_DUMP);
    let writer = std::process::Command::new("sh").arg("-c").arg(format!("cat {} > {f}", dump.display())).spawn();
    let (out, err, code) = run(&["analyze", f]);
    let _ = writer.unwrap().kill();
    assert_eq!(code, 2, "{out}");
    one_line_error(&err, "give it as a file");
}

#[test]
fn a_dump_with_a_damaged_magic_is_never_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    // The signature turned into an ELF magic over a kdump header: an ELF that fails to open.
    let elf = damaged_copy(&dir, |f| f[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00"));
    let (out, err, code) = run(&["analyze", &elf]);
    assert_eq!(code, 2, "{out}");
    one_line_error(&err, &format!("{elf}: bad ELF core at offset 0x10: not a core file (e_type is not ET_CORE)"));
    assert!(!out.contains("lockup"), "{out}");
    // The signature zeroed: binary data, refused rather than scanned.
    let zeroed = damaged_copy(&dir, |f| f[..8].fill(0));
    let (out, err, code) = run(&["analyze", &zeroed]);
    assert_eq!(code, 2, "{out}");
    one_line_error(&err, &format!("{zeroed}: binary data, not a kernel log (a vmcore with a damaged header?)"));
}

#[test]
fn a_flipped_bitmap_bit_is_an_error_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    // Clear the last set bit of bitmap 2 (0x5000..0x7000 in this dump).
    let p = damaged_copy(&dir, |f| {
        let i = (0x5000..0x7000).rev().find(|&i| f[i] != 0).unwrap();
        f[i] &= f[i] - 1;
    });
    let why = "dumpable bitmap at offset 0x5000 does not match the page descriptors: its 19465 set bits put the \
               page data at offset 0x790d8, but the descriptors' data starts at 0x790f0";
    for cmd in [vec!["analyze", &p], vec!["log", &p], vec!["dump-info", &p]] {
        let (out, err, code) = run(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {out}");
        one_line_error(&err, &format!("{p}: {why}"));
    }
}

#[test]
fn dump_info_tells_truncation_from_filtering() {
    let dir = tempfile::tempdir().unwrap();
    let p = damaged_copy(&dir, |f| f.truncate(16_000_000));
    let (out, err, code) = run(&["dump-info", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[PARTIAL DUMP]  [TRUNCATED]"), "{out}");
    assert!(
        out.contains(
            "TRUNCATED: file is 16000000 bytes, its headers promise 16343031 bytes: 764 page(s) past the end are \
             lost (not filtered)"
        ),
        "{out}"
    );
    assert!(out.contains("DUMP LEVEL: 31 (excluded zero pages"), "{out}");
    let (json, _, _) = run(&["dump-info", "--json", &p]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["dumps"][0]["truncated"][0]["pages_lost"], 764);
    // Cut inside the descriptor table: the kernel view cannot start, and says why.
    let p = damaged_copy(&dir, |f| f.truncate(400_000));
    let (_, err, code) = run(&["sys", &p]);
    assert_eq!(code, 2);
    one_line_error(&err, "beyond the end of the truncated dump file");
}

#[test]
fn an_edited_pagesize_does_not_rescale_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = damaged_copy(&dir, |f| {
        let at = f.windows(13).position(|w| w == b"PAGESIZE=4096").unwrap();
        f[at..at + 13].copy_from_slice(b"PAGESIZE=8192");
    });
    let (out, _, code) = run(&["dump-info", &p]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "PAGE SIZE: 4096 (VMCOREINFO says PAGESIZE=8192: not used, the x86_64 architecture (4 KiB pages) fixes it)"
        ),
        "{out}"
    );
    let (sys, err, code) = run(&["sys", &p]);
    assert_eq!(code, 0, "{err}");
    let (reference, _, _) = run(&["sys", REPO_DUMP]);
    let memory = |s: &str| s.lines().find(|l| l.trim_start().starts_with("MEMORY:")).map(str::to_string);
    assert_eq!(memory(&sys), memory(&reference));
}

#[test]
fn convert_keeps_only_the_notes_of_an_oversized_note_area() {
    let dir = tempfile::tempdir().unwrap();
    // kdump_sub_header size_note (block 1, +56) claims 30 MB.
    let p = damaged_copy(&dir, |f| f[4096 + 56..4096 + 64].copy_from_slice(&(30u64 << 20).to_le_bytes()));
    let out = dir.path().join("out");
    let (stdout, err, code) = run(&["convert", "--compress", "zstd", &p, out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("note area at offset 0x1068 declares 31457280 bytes but holds"), "{stdout}");
    let (info, _, _) = run(&["dump-info", out.to_str().unwrap()]);
    assert!(info.contains("CPUS: 4") && !info.contains("NOTES:"), "{info}");
}

/// The ELF of the shared corpus with header bytes damaged (skipped without ../shared or xz).
#[test]
fn a_corpus_elf_with_a_damaged_header_is_an_error() {
    let xz = root().join("../shared/corpus/ipi_sleeping_holder.live/vmcore.mkd-elf-d31.xz");
    if !xz.is_file() {
        eprintln!("note: ../shared/corpus not found; damaged-ELF test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("vmcore");
    let Some(ok) = std::fs::File::create(&elf)
        .ok()
        .and_then(|f| std::process::Command::new("xz").arg("-dc").arg(&xz).stdout(f).status().ok())
    else {
        eprintln!("note: xz not available; damaged-ELF test skipped");
        return;
    };
    assert!(ok.success());
    let good = std::fs::read(&elf).unwrap();
    // (offset, bytes, message): e_type, e_phoff far outside the file, the class byte.
    let cases: [(usize, &[u8], &str); 3] = [
        (16, &[2, 0], "bad ELF core at offset 0x10: not a core file (e_type is not ET_CORE)"),
        (32, &[0, 0, 0, 0, 0, 0, 0, 0x40], "bad ELF core at offset 0x0: program headers out of the file"),
        (4, &[9], "bad header at offset 0x4: unknown ELF class"),
    ];
    for (at, bytes, why) in cases {
        let mut f = good.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        std::fs::write(&elf, &f).unwrap();
        let path = elf.to_str().unwrap();
        for cmd in ["analyze", "dump-info", "log"] {
            let (out, err, code) = run(&[cmd, path]);
            assert_eq!(code, 2, "{cmd} {at}: {out}");
            one_line_error(&err, &format!("{path}: {why}"));
        }
    }
}
