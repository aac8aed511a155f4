//! Agreement on real logs nobody here wrote (issue #13): `tests/data/realworld/*.log`, each a
//! kernel log as a user posted it publicly, with a `.json` of the lockup and hang reports it
//! holds, read by hand (kind, CPU, comm, pid where printed; rules in tests/data/realworld/README.md).
//!
//! An expected event is found when the scanner gives an event of its kind, not yet matched,
//! whose CPU, comm and pid equal the expected ones where those are given. The scanner gives
//! an RCU stall report that names several stalled CPUs one event per CPU (each from its CPU's
//! detail line, with the report's headline), and the set lists one per report: those events
//! (RCU stalls of other CPUs with the same headline within a few lines) count as one, found
//! by any of them. Lockup reports the scanner gives beyond the expected ones (on a
//! negative log: any) count against agreement. Agreement = found / (expected + extra), over
//! the whole set; the test fails below 98%.
//!
//! The same logs, damaged (CRLF line ends; NULs, Latin-1 and a 1.5 MB line around them;
//! bytes of other encodings inside report lines) and two machines interleaved line by line
//! on one syslog, must give the same events.

use lockscope_facts::{Event, EventKind};
use lockscope_log::Scanner;
use std::path::{Path, PathBuf};

/// What the whole set must reach.
const REQUIRED: f64 = 0.98;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/realworld")
}

#[derive(Debug, serde::Deserialize)]
struct Expected {
    kind: String,
    cpu: Option<u32>,
    comm: Option<String>,
    pid: Option<u32>,
}

#[derive(Debug, serde::Deserialize)]
struct Case {
    source: String,
    events: Vec<Expected>,
}

fn matches(want: &Expected, got: &Event) -> bool {
    got.kind.as_str() == want.kind
        && want.cpu.is_none_or(|c| got.cpu == Some(c))
        && want.comm.as_ref().is_none_or(|c| got.task.as_ref().is_some_and(|t| &t.comm == c))
        && want.pid.is_none_or(|p| got.task.as_ref().is_some_and(|t| t.pid == p))
}

fn describe(e: &Event) -> String {
    let task = e.task.as_ref().map_or("-".into(), |t| format!("{}:{}", t.comm, t.pid));
    let cpu = e.cpu.map_or("-".into(), |c| c.to_string());
    format!("{} cpu {cpu} task {task}", e.kind.as_str())
}

/// Per file: (expected, found, extra, what went wrong).
fn check(name: &str, log: &[u8], case: &Case) -> (usize, usize, usize, Vec<String>) {
    let events: Vec<Event> = Scanner::new()
        .scan(0, name, log)
        .expect("in-memory read")
        .events
        .into_iter()
        .filter(|e| e.kind.is_lockup())
        .collect();
    // Reports: an RCU stall's events of several CPUs are one.
    const DETAIL_LINES: u64 = 20;
    let mut reports: Vec<Vec<&Event>> = Vec::new();
    for e in &events {
        let same_report = |r: &Vec<&Event>| {
            let last = r[r.len() - 1];
            e.kind == EventKind::RcuStall
                && last.kind == EventKind::RcuStall
                && last.headline == e.headline
                && e.lines.first <= last.lines.first + DETAIL_LINES
                && r.iter().all(|m| m.cpu != e.cpu)
        };
        match reports.last_mut().filter(|r| same_report(r)) {
            Some(r) => r.push(e),
            None => reports.push(vec![e]),
        }
    }
    let mut used = vec![false; reports.len()];
    let mut problems = Vec::new();
    let mut found = 0;
    for want in &case.events {
        match (0..reports.len()).find(|&i| !used[i] && reports[i].iter().any(|e| matches(want, e))) {
            Some(i) => {
                used[i] = true;
                found += 1;
            }
            None => problems.push(format!("missed {want:?}")),
        }
    }
    let extra: Vec<&Event> = reports.iter().zip(&used).filter(|(_, u)| !**u).map(|(r, _)| r[0]).collect();
    problems.extend(extra.iter().map(|e| format!("extra {}", describe(e))));
    (case.events.len(), found, extra.len(), problems)
}

#[test]
fn real_world_logs_agree() {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir()) {
        Ok(d) => {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "log")).collect()
        }
        Err(e) => panic!("{}: {e}", dir().display()),
    };
    files.sort();
    let mut unreadable = Vec::new();
    let (mut expected, mut found, mut extra, mut negatives, mut clean) = (0, 0, 0, 0, 0);
    let mut report = Vec::new();
    for log in &files {
        let name = log.file_name().unwrap().to_string_lossy().to_string();
        let case = std::fs::read(log.with_extension("json"))
            .map_err(|e| e.to_string())
            .and_then(|j| serde_json::from_slice::<Case>(&j).map_err(|e| e.to_string()));
        let case = match case {
            Ok(c) => c,
            Err(e) => {
                unreadable.push(format!("{name}: its .json: {e}"));
                continue;
            }
        };
        assert!(!case.source.is_empty(), "{name}: no source");
        let bytes = std::fs::read(log).unwrap();
        let (e, f, x, problems) = check(&name, &bytes, &case);
        if case.events.is_empty() {
            negatives += 1;
            clean += usize::from(x == 0);
        }
        (expected, found, extra) = (expected + e, found + f, extra + x);
        if !problems.is_empty() {
            report.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    let agreement = found as f64 / (expected + extra).max(1) as f64;
    println!(
        "{} logs: {found}/{expected} events found, {extra} extra; negatives clean {clean}/{negatives}; agreement {:.1}%",
        files.len(),
        100.0 * agreement
    );
    for r in &report {
        println!("  {r}");
    }
    assert!(unreadable.is_empty(), "{unreadable:#?}");
    assert!(files.len() >= 150, "{} real-world logs: the set needs at least 150", files.len());
    assert!(negatives >= 20, "{negatives} negative logs: the set needs at least 20");
    assert!(agreement >= REQUIRED, "agreement {:.1}% < {:.0}%", 100.0 * agreement, 100.0 * REQUIRED);
}

/// What an event says: kind, CPU, comm, pid.
type Seen = (String, Option<u32>, Option<String>, Option<u32>);

fn seen(e: &Event) -> Seen {
    (e.kind.as_str().to_string(), e.cpu, e.task.as_ref().map(|t| t.comm.clone()), e.task.as_ref().map(|t| t.pid))
}

/// What every lockup event of a log says, sorted.
fn fingerprint(name: &str, log: &[u8]) -> Vec<Seen> {
    let events = Scanner::new().scan(0, name, log).expect("in-memory read").events;
    let mut v: Vec<Seen> = events.iter().filter(|e| e.kind.is_lockup()).map(seen).collect();
    v.sort();
    v
}

/// The set's time-stamped logs that hold events.
fn dmesg_logs_with_events() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir()).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for log in files.iter().filter(|p| p.extension().is_some_and(|x| x == "log")) {
        let Ok(json) = std::fs::read(log.with_extension("json")) else { continue };
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        if v["format"] == "dmesg" && v["events"].as_array().is_some_and(|e| !e.is_empty()) {
            out.push((log.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(log).unwrap()));
        }
    }
    out
}

#[test]
fn damaged_copies_of_real_logs_give_the_same_events() {
    let logs = dmesg_logs_with_events();
    assert!(logs.len() >= 40, "{} logs", logs.len());
    // A serial console's garbage: NULs, a line of Latin-1, one line over 1 MiB.
    let mut junk = b"\0\0\0\0\0\0\0\0\n\xe9t\xe9 \xff\xfe caf\xe9\n".to_vec();
    junk.extend(std::iter::repeat_n(b'x', 1_500_000));
    junk.push(b'\n');
    for (name, log) in &logs {
        let clean = fingerprint(name, log);
        let crlf: Vec<u8> = log.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        assert_eq!(fingerprint(name, &crlf), clean, "{name} with CRLF line ends");
        let framed = [&junk[..], log, b"\n", &junk[..]].concat();
        assert_eq!(fingerprint(name, &framed), clean, "{name} between NULs, Latin-1 and a 1.5 MB line");
    }
}

/// `hay` with every `from` replaced by `to`.
fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[test]
fn bytes_of_other_encodings_inside_report_lines_keep_the_events() {
    let logs = dmesg_logs_with_events();
    let mut renamed = 0;
    for (name, log) in &logs {
        let clean = fingerprint(name, log);
        // Firmware strings in Windows-1252 (DMI names), a module name in Latin-1.
        let mut damaged: Vec<u8> = Vec::new();
        for line in log.split_inclusive(|&c| c == b'\n') {
            let (text, nl) = line.split_at(line.len() - usize::from(line.ends_with(b"\n")));
            damaged.extend_from_slice(text);
            if text.windows(15).any(|w| w == b"Hardware name: ") {
                damaged.extend_from_slice(b" Caf\xe9 \x93Pro\x94");
            } else if text.windows(18).any(|w| w == b"Modules linked in:") {
                damaged.extend_from_slice(b" m\xf6dule");
            }
            damaged.extend_from_slice(nl);
        }
        // Task names ending in a Latin-1 byte, wherever the report prints them.
        let mut want = clean.clone();
        for (_, _, comm, pid) in &clean {
            let (Some(c), Some(pid)) = (comm, pid) else { continue };
            if c.len() < 3 || !c.is_ascii() {
                continue;
            }
            // `INFO: task c:pid blocked`, `[c:pid]`, `Comm: c`, `task:c state:`, and the old
            // task lines `c R  running task` / `c D ffff..` at the start of a message, powerpc's
            // `current: pid (c)`.
            let forms = [
                format!("{c}:{pid} "),
                format!("[{c}:{pid}]"),
                format!("Comm: {c} "),
                format!("task:{c} "),
                format!("] {c} "),
                format!("current: {pid} ({c})"),
            ];
            for from in forms {
                let at = from.find(c.as_str()).unwrap() + c.len();
                let to = [&from.as_bytes()[..at], b"\xe9", &from.as_bytes()[at..]].concat();
                damaged = replace_bytes(&damaged, from.as_bytes(), &to);
            }
            for s in &mut want {
                if s.2.as_deref() == Some(c.as_str()) && s.3 == Some(*pid) {
                    s.2 = Some(format!("{c}\u{fffd}"));
                    renamed += 1;
                }
            }
        }
        want.sort();
        assert_eq!(fingerprint(name, &damaged), want, "{name} with other encodings inside its lines");
    }
    assert!(renamed >= 20, "only {renamed} task names renamed");
}

#[test]
fn two_machines_interleaved_on_one_syslog_keep_their_events() {
    // Logs whose every line has its time stamp (a wrapped line, prefixed, would no longer
    // read as the rest of the line before).
    let stamped = |log: &[u8]| log.split(|&c| c == b'\n').all(|l| l.is_empty() || l.starts_with(b"["));
    let logs: Vec<_> = dmesg_logs_with_events().into_iter().filter(|(_, l)| stamped(l)).collect();
    assert!(logs.len() >= 20, "{} logs", logs.len());
    // Pairs of logs, each line given its machine's syslog prefix, the two alternated line by line.
    for pair in logs.chunks(2).filter(|p| p.len() == 2) {
        let ((na, a), (nb, b)) = (&pair[0], &pair[1]);
        let prefixed = |log: &[u8], host: &str| -> Vec<Vec<u8>> {
            log.split(|&c| c == b'\n')
                .map(|l| [format!("Mar  3 10:00:00 {host} kernel: ").as_bytes(), l].concat())
                .collect()
        };
        let (la, lb) = (prefixed(a, "alpha"), prefixed(b, "beta"));
        let mut mixed = Vec::new();
        for i in 0..la.len().max(lb.len()) {
            for l in [la.get(i), lb.get(i)].into_iter().flatten() {
                mixed.extend_from_slice(l);
                mixed.push(b'\n');
            }
        }
        let events = Scanner::new().scan(0, "mixed", &mixed[..]).unwrap().events;
        for (host, name, log) in [("alpha", na, a), ("beta", nb, b)] {
            let mut got: Vec<Seen> =
                events.iter().filter(|e| e.kind.is_lockup() && e.host.as_deref() == Some(host)).map(seen).collect();
            got.sort();
            assert_eq!(
                got,
                fingerprint(name, log),
                "{name} interleaved with {}",
                if host == "alpha" { nb } else { na }
            );
        }
    }
}
