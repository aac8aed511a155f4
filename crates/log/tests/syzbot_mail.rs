//! Title agreement with syzbot on reports lockscope was not tuned on.
//!
//! `tests/data/syzbot-mail/` holds syzbot's report e-mails as they were sent to the kernel
//! mailing lists (lore.kernel.org, 2018–2026; `INDEX.md` there gives each source). Each file
//! is a `TITLE:` line (the e-mail's subject without its tags), a `SOURCE:` line, an empty
//! line, then the report text syzbot mailed: the console lines syzkaller cut out of the
//! whole log, without time stamps.
//!
//! Checked:
//! - hang reports (titles of the families `INFO: task hung`, `INFO: rcu detected stall`,
//!   `BUG: soft lockup`, `INFO: task can't die`): syzbot would file the first lockup event
//!   under the bug the mail is about, in at least 98% of them. The subject is that bug's
//!   title (syzbot's re-report counter ` (2)` and a tree's `boot error: ` prefix removed);
//!   syzbot files a report under a bug when the report's title or one of its alternative
//!   titles equals the bug's title or one of the bug's alternatives (`stall in F`,
//!   `hang in F`). The exact title is counted apart, and printed.
//! - the other reports (deadlocks, KASAN, warnings...): no lockup event.

use lockscope_facts::{Event, EventKind};
use lockscope_log::Scanner;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/syzbot-mail")
}

struct Mail {
    name: String,
    title: String,
    report: Vec<u8>,
}

const HANG_FAMILIES: &[&str] =
    &["INFO: task hung", "INFO: rcu detected stall", "BUG: soft lockup", "INFO: task can't die"];

impl Mail {
    fn is_hang(&self) -> bool {
        HANG_FAMILIES.iter().any(|f| self.title.starts_with(f))
    }
}

/// The title syzkaller computes for one report: the subject without syzbot's counter of
/// re-reports and without the `<tree> boot error: ` / `test error: ` prefix.
fn report_title(subject: &str) -> String {
    let mut t = subject.trim();
    for marker in ["boot error: ", "test error: "] {
        if let Some(i) = t.find(marker) {
            t = &t[i + marker.len()..];
        }
    }
    if let Some(open) = t.rfind(" (")
        && t[open + 2..].strip_suffix(')').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        t = &t[..open];
    }
    t.to_string()
}

fn parse_mail(name: &str, bytes: &[u8]) -> Mail {
    let split = bytes.windows(2).position(|w| w == b"\n\n").map_or(bytes.len(), |i| i + 2);
    let header = String::from_utf8_lossy(&bytes[..split]);
    let subject = header.lines().find_map(|l| l.strip_prefix("TITLE: ")).unwrap_or_default();
    Mail { name: name.to_string(), title: report_title(subject), report: bytes[split..].to_vec() }
}

fn load() -> Vec<Mail> {
    let mut mails: Vec<Mail> = std::fs::read_dir(data_dir())
        .expect("tests/data/syzbot-mail")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| parse_mail(&p.file_name().unwrap().to_string_lossy(), &std::fs::read(&p).unwrap()))
        .collect();
    mails.sort_by(|a, b| a.name.cmp(&b.name));
    mails
}

fn events(scanner: &Scanner, m: &Mail) -> Vec<Event> {
    scanner.scan(0, &m.name, m.report.as_slice()).expect("in-memory read").events
}

fn is_titled_lockup(k: EventKind) -> bool {
    matches!(k, EventKind::SoftLockup | EventKind::HardLockup | EventKind::RcuStall | EventKind::HungTask)
}

/// The bug's own alternative title: its kind-neutral `stall in F` / `hang in F`.
fn bug_alt(title: &str) -> Option<String> {
    let (family, func) = title.split_once(" in ")?;
    let alt = match family {
        "BUG: soft lockup" | "INFO: rcu detected stall" => "stall",
        "INFO: task hung" | "INFO: task can't die" => "hang",
        _ => return None,
    };
    Some(format!("{alt} in {func}"))
}

/// Whether syzbot files event `e` under the bug titled `bug`.
fn same_bug(bug: &str, e: &Event) -> bool {
    let alt = bug_alt(bug);
    e.title == bug || e.alt_titles.iter().any(|a| a == bug || Some(a) == alt.as_ref())
}

#[test]
fn hang_titles_agree_with_syzbot_mail() {
    let mails = load();
    let scanner = Scanner::new();
    let (mut total, mut ok, mut exact, mut bad) = (0, 0, 0, Vec::new());
    for m in mails.iter().filter(|m| m.is_hang()) {
        total += 1;
        let evs = events(&scanner, m);
        let first = evs.iter().find(|e| is_titled_lockup(e.kind));
        exact += usize::from(first.is_some_and(|e| e.title == m.title));
        if first.is_some_and(|e| same_bug(&m.title, e)) {
            ok += 1;
        } else {
            bad.push(format!("{}: expected {:?}, got {:?}", m.name, m.title, first.map(|e| &e.title)));
        }
    }
    let rate = ok as f64 / total.max(1) as f64;
    println!("syzbot mail hang reports filed under their bug: {ok}/{total} = {:.1}%", rate * 100.0);
    println!("  with the bug's exact title: {exact}/{total}");
    for b in &bad {
        println!("  disagree {b}");
    }
    assert!(total >= 300, "only {total} hang reports");
    assert!(rate >= 0.98, "agreement {rate:.3} < 0.98");
}

#[test]
fn no_lockups_in_other_reports() {
    let mails = load();
    let scanner = Scanner::new();
    let mut found = Vec::new();
    let others: Vec<&Mail> = mails.iter().filter(|m| !m.is_hang()).collect();
    for m in &others {
        for e in events(&scanner, m).iter().filter(|e| e.kind.is_lockup()) {
            found.push(format!("{} ({:?}): {} {:?}", m.name, m.title, e.kind.as_str(), e.headline));
        }
    }
    println!("other reports: {}, lockup events: {}", others.len(), found.len());
    assert!(others.len() >= 50, "only {} other reports", others.len());
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn alternative_titles_file_reports_as_syzbot_does() {
    let mut e = Event::new(EventKind::SoftLockup, "watchdog: BUG: soft lockup", Default::default());
    e.title = "BUG: soft lockup in sock_close".into();
    e.alt_titles = vec!["stall in sock_close".into()];
    assert!(same_bug("INFO: rcu detected stall in sock_close", &e));
    assert!(!same_bug("INFO: rcu detected stall in sock_release", &e));
    assert!(!same_bug("INFO: task hung in sock_close", &e));
}

#[test]
fn subjects_give_report_titles() {
    assert_eq!(report_title("INFO: task hung in sys_mount (8)"), "INFO: task hung in sys_mount");
    assert_eq!(report_title("usb-testing boot error: INFO: task hung in x"), "INFO: task hung in x");
    assert_eq!(report_title("BUG: soft lockup in corrupted"), "BUG: soft lockup in corrupted");
    assert_eq!(report_title("KASAN: use-after-free Read in f (x)"), "KASAN: use-after-free Read in f (x)");
}
