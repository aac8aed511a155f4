//! Text from dumps and logs must not reach a terminal raw: ESC sequences and other control
//! characters in task names, utsname, log lines and module names print as `\x1b`-style
//! escapes in every text and Markdown output; `--raw` prints them as they are; JSON stays
//! exact (serde escapes controls itself).

mod damage;

use damage::{patched_copy, plain_dump, plain_kernel, run, tmp};
use std::path::PathBuf;

const ESC: u8 = 0x1b;

fn has_esc(b: &[u8]) -> bool {
    b.contains(&ESC) || b.contains(&0x07)
}

/// The repository's console log with ESC sequences (SGR, OSC) in task names.
fn hostile_log() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let log = std::fs::read_to_string(root.join("tests/data/corpus/ipi_sleeping_holder.live.console.log")).unwrap();
    let log = log.replace("zone_drain", "zon\x1b[31mdr").replace("page_alloc", "pa\x1b]0;pwn\x07oc");
    let p = tmp().join("hostile.log");
    std::fs::write(&p, log).unwrap();
    p
}

#[test]
fn analyze_escapes_log_text() {
    let log = hostile_log();
    let l = log.to_str().unwrap();
    for args in [vec!["analyze", l], vec!["analyze", "--format", "markdown", l]] {
        let r = run(&args);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(!has_esc(&r.stdout), "{args:?}: raw ESC or BEL in the output");
        assert!(out.contains("zon\\x1b[31mdr") && out.contains("pa\\x1b]0;pwn\\x07oc"), "{args:?}:\n{out}");
    }
    // Colours on: only lockscope's own SGR codes are raw.
    let r = run(&["analyze", "--color", "always", l]);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("\x1b[1m") && out.contains("zon\\x1b[31mdr"), "{out}");
    assert!(!out.contains("\x1b[31m") && !out.contains("\x1b]") && !out.contains('\x07'), "{out}");
    // --raw: as it is; JSON: exact.
    assert!(has_esc(&run(&["analyze", "--raw", l]).stdout));
    let json = String::from_utf8_lossy(&run(&["analyze", "--format", "json", l]).stdout).into_owned();
    assert!(json.contains("zon\\u001b[31mdr"), "{json}");
}

/// An uncompressed copy of the dump with ESC sequences in a task's comm, the kernel's
/// nodename (memory and the kdump header) and log text.
fn hostile_dump() -> (PathBuf, String) {
    let k = plain_kernel();
    let comm_off = k.offset_of("task_struct", "comm").unwrap();
    let task = k.tasks().unwrap().0.into_iter().find(|t| t.pid == 1).unwrap();
    let uts = k.symbol("init_uts_ns").unwrap() + k.vmcoreinfo().offset("uts_namespace.name").unwrap();
    let p = patched_copy(
        "hostile.kdump",
        &[(task.address + comm_off, b"ev\x1b[31mil\0".to_vec()), (uts + 65, b"ho\x1b]0;pwn\x07st\0".to_vec())],
    );
    let mut b = std::fs::read(&p).unwrap();
    b[12 + 65..12 + 65 + 5].copy_from_slice(b"\x1b[2J\0"); // header utsname.nodename
    // Log text (and the task's comm): every copy in the file.
    let edits: [(&[u8], &[u8]); 2] = [(b"Command line", b"\x1b[31mCommand"), (b"zone_drain", b"zon\x1b[31mdr")];
    for (from, to) in edits {
        assert_eq!(from.len(), to.len());
        let hits: Vec<usize> = b.windows(from.len()).enumerate().filter(|(_, w)| *w == from).map(|(i, _)| i).collect();
        assert!(!hits.is_empty(), "{:?} not in the dump", String::from_utf8_lossy(from));
        for i in hits {
            b[i..i + from.len()].copy_from_slice(to);
        }
    }
    std::fs::write(&p, b).unwrap();
    (p, task.comm)
}

#[test]
fn kernel_commands_escape_dump_strings() {
    let _ = plain_dump();
    let (dump, _) = hostile_dump();
    let d = dump.to_str().unwrap();
    let expect: [(&[&str], &str); 5] = [
        (&["ps", d], "ev\\x1b[31mil"),
        (&["sys", d], "ho\\x1b]0;pwn\\x07st"),
        (&["log", d], "\\x1b[31mCommand"),
        (&["dump-info", d], "\\x1b[2J"),
        (&["analyze", d], "zon\\x1b[31mdr"),
    ];
    for (args, want) in expect {
        let r = run(args);
        let out = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        assert!(!has_esc(&r.stdout), "{args:?}: raw ESC or BEL in the output");
        assert!(out.contains(want), "{args:?}: no {want} in\n{out}");
    }
    assert!(has_esc(&run(&["ps", "--raw", d]).stdout), "--raw prints the comm as it is");
    let json = String::from_utf8_lossy(&run(&["ps", "--json", d]).stdout).into_owned();
    assert!(json.contains("ev\\u001b[31mil"), "JSON stays exact");
}
