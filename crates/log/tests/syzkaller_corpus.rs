//! Title agreement with syzkaller on its own report test corpus.
//!
//! The corpus is syzkaller's `pkg/report/testdata/linux/report` directory, copied to
//! `../shared/external/syzkaller-report` next to the workspace. Machines without that
//! directory skip these tests (they pass with a note).
//!
//! Each corpus file is a header (`TITLE:`, `ALT:` repeated, `TYPE:`, ... up to the first
//! empty line), then the raw console log. Where a line `REPORT:` follows an empty line,
//! the rest is syzkaller's expected report text, not log, and is cut off.
//!
//! Checked:
//! - HANG files (`TYPE: HANG`): the title of the first lockup event (soft lockup, hard
//!   lockup, RCU stall, hung task) equals the `TITLE:` or one of the `ALT:` lines, in at
//!   least 98% of the files, literally: a report syzkaller calls corrupted must be titled
//!   `FAMILY in corrupted` by lockscope too.
//! - Kind correctness: the event that carries a title of a family comes from the matching
//!   kind (`BUG: soft lockup` from a soft lockup event, `INFO: rcu detected stall` from an
//!   RCU stall, `INFO: task hung`/`INFO: task can't die` from a hung task, `BUG: hard
//!   lockup` from a hard lockup), and the first lockup event of a HANG file has the kind
//!   syzkaller's title names.
//! - Negative files (no `TYPE: HANG`, including those without any `TITLE:`): no lockup
//!   event at all.

use lockscope_facts::{Event, EventKind};
use lockscope_log::Scanner;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/external/syzkaller-report")
}

/// Kinds whose first event is titled against syzkaller.
fn is_titled_lockup(k: EventKind) -> bool {
    matches!(k, EventKind::SoftLockup | EventKind::HardLockup | EventKind::RcuStall | EventKind::HungTask)
}

struct Case {
    name: String,
    titles: Vec<String>,
    hang: bool,
    log: Vec<u8>,
}

fn parse_case(name: &str, bytes: &[u8]) -> Case {
    let mut titles = Vec::new();
    let mut hang = false;
    let mut pos = 0;
    // Header: lines up to the first empty one.
    loop {
        let end = memchr_nl(&bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let line = &bytes[pos..end];
        pos = (end + 1).min(bytes.len());
        if line.is_empty() || end >= bytes.len() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(t) = line.strip_prefix("TITLE: ").or_else(|| line.strip_prefix("ALT: ")) {
            titles.push(t.trim_end().to_string());
        } else if line.trim_end() == "TYPE: HANG" {
            hang = true;
        }
    }
    let mut log = &bytes[pos..];
    if let Some(p) = log.windows(9).position(|w| w == b"\n\nREPORT:") {
        log = &log[..p + 1];
    } else if log.starts_with(b"REPORT:") {
        log = &[];
    }
    Case { name: name.to_string(), titles, hang, log: log.to_vec() }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn load() -> Option<Vec<Case>> {
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!("note: {} not found; syzkaller corpus tests skipped", dir.display());
        return None;
    }
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).unwrap();
        cases.push(parse_case(&name, &bytes));
    }
    cases.sort_by_key(|c| (c.name.parse::<u64>().unwrap_or(u64::MAX), c.name.clone()));
    Some(cases)
}

fn scan(scanner: &Scanner, c: &Case) -> Vec<Event> {
    scanner.scan(0, &c.name, c.log.as_slice()).expect("in-memory read").events
}

/// The kind a title family implies, if it is a lockup family.
fn family_kind(title: &str) -> Option<EventKind> {
    if title.starts_with("BUG: soft lockup") {
        Some(EventKind::SoftLockup)
    } else if title.starts_with("BUG: hard lockup") {
        Some(EventKind::HardLockup)
    } else if title.starts_with("INFO: rcu detected stall") {
        Some(EventKind::RcuStall)
    } else if title.starts_with("INFO: task hung") || title.starts_with("INFO: task can't die") {
        Some(EventKind::HungTask)
    } else {
        None
    }
}

/// The title equals TITLE or one of the ALT lines.
fn agrees(expected: &[String], got: &str) -> bool {
    expected.iter().any(|t| t == got)
}

#[test]
fn hang_titles_agree_with_syzkaller() {
    let Some(cases) = load() else { return };
    let scanner = Scanner::new();
    let mut total = 0;
    let mut ok = 0;
    let mut bad = Vec::new();
    let mut wrong_kind = Vec::new();
    for c in cases.iter().filter(|c| c.hang) {
        total += 1;
        let events = scan(&scanner, c);
        let first = events.iter().find(|e| is_titled_lockup(e.kind));
        let got = first.map_or(String::new(), |e| e.title.clone());
        if agrees(&c.titles, &got) {
            ok += 1;
        } else {
            bad.push(format!("{}: expected {:?}, got {:?}", c.name, c.titles[0], got));
        }
        if let (Some(e), Some(k)) = (first, c.titles.first().and_then(|t| family_kind(t)))
            && e.kind != k
        {
            wrong_kind.push(format!("{}: expected a {} event, got {}", c.name, k.as_str(), e.kind.as_str()));
        }
    }
    let rate = ok as f64 / total.max(1) as f64;
    println!("syzkaller HANG title agreement: {ok}/{total} = {:.1}%", rate * 100.0);
    for b in &bad {
        println!("  disagree {b}");
    }
    assert!(total > 0, "no HANG files in the corpus");
    assert!(wrong_kind.is_empty(), "wrong kinds: {wrong_kind:#?}");
    assert!(rate >= 0.98, "agreement {rate:.3} < 0.98: {bad:#?}");
}

#[test]
fn titles_match_event_kinds() {
    let Some(cases) = load() else { return };
    let scanner = Scanner::new();
    let mut wrong = Vec::new();
    for c in &cases {
        for e in scan(&scanner, c) {
            if let Some(k) = family_kind(&e.title)
                && k != e.kind
            {
                wrong.push(format!("{}: {:?} from a {} event", c.name, e.title, e.kind.as_str()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_lockups_in_negative_files() {
    let Some(cases) = load() else { return };
    let scanner = Scanner::new();
    let mut found = Vec::new();
    let mut n = 0;
    for c in cases.iter().filter(|c| !c.hang) {
        n += 1;
        for e in scan(&scanner, c) {
            if e.kind.is_lockup() {
                found.push(format!(
                    "{} ({:?}): {} at line {}: {:?}",
                    c.name,
                    c.titles.first().map_or("no title", String::as_str),
                    e.kind.as_str(),
                    e.lines.first,
                    e.headline
                ));
            }
        }
    }
    println!("negative files: {n}, lockup events: {}", found.len());
    for f in &found {
        println!("  {f}");
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn corpus_header_parsing() {
    let c = parse_case(
        "x",
        b"TITLE: INFO: task hung in foo\nALT: hang in foo\nTYPE: HANG\n\nlog 1\nlog 2\n\nREPORT:\nexpected\n",
    );
    assert_eq!(c.titles, ["INFO: task hung in foo", "hang in foo"]);
    assert!(c.hang);
    assert_eq!(c.log, b"log 1\nlog 2\n");
    let c = parse_case("y", b"\nlog only\n");
    assert!(c.titles.is_empty() && !c.hang);
    assert_eq!(c.log, b"log only\n");
    assert!(agrees(&["INFO: task hung in corrupted".into()], "INFO: task hung in corrupted"));
    assert!(!agrees(&["INFO: task hung in corrupted".into()], "INFO: task hung"));
    assert!(!agrees(&["INFO: task hung in foo".into()], "INFO: task hung"));
}
