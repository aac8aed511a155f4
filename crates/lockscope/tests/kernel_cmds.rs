//! `sys`, `ps`, `runq`, `log`, `sym`, `struct`, `rd` on real dumps, without debuginfo.
//! The repo's dump always; every corpus dump when ../shared is there, checked against what
//! crash 8.0.2 (with the DWARF vmlinux) printed for it and against truth.json.

mod common;

use common::{root, run};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

const DUMP: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (out, err, code) = run(&a);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn text(args: &[&str]) -> String {
    let (out, err, code) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

#[test]
fn repo_dump_sys_ps_runq() {
    let sys = json(&["sys", DUMP]);
    assert_eq!(sys["release"], "6.1.0-50-amd64");
    assert_eq!(sys["cpus"], 4);
    assert_eq!(sys["panic"], Value::Null);
    // Out-of-tree unsigned module (OE, as the console's "Tainted: G OE" says), then a
    // warning and the soft lockup itself (W, L).
    assert_eq!(sys["taint"], "WOEL");
    assert!(sys["tasks"].as_u64().unwrap() > 60, "{sys}");
    let ps = json(&["ps", DUMP]);
    let tasks = ps["tasks"].as_array().unwrap();
    let by_pid = |pid: u64| tasks.iter().find(|t| t["pid"] == pid && t["comm"] != "swapper/0").unwrap();
    // The task sleeping with the spinlock held is in D state; the two spinning CPUs' tasks run.
    assert_eq!(by_pid(135)["comm"], "zone_drain");
    assert_eq!(by_pid(135)["state_letter"], "D");
    assert_eq!(by_pid(136)["current_on"], 3);
    assert_eq!(by_pid(137)["current_on"], 1);
    // crash `runq -T`: "CPU 3: 33.81 secs" — the CPU spinning with interrupts off stopped its clock.
    let runq = text(&["runq", "-T", DUMP]);
    assert!(runq.contains("CPU 3: 33.81 secs"), "{runq}");
    assert!(runq.contains("CPU 0: 0.00 secs"), "{runq}");
}

#[test]
fn repo_dump_log_sym_struct_rd() {
    let log = text(&["log", DUMP]);
    assert!(log.contains("BUG: scheduling while atomic: zone_drain/135/0x00000002"));
    // crash `sym demo_zone`: ffffffffc054e0a0 (?) demo_zone [lockscen]
    let sym = text(&["sym", DUMP, "demo_zone"]);
    assert!(sym.starts_with("ffffffffc054e0a0 (") && sym.trim_end().ends_with(") demo_zone [lockscen]"), "{sym}");
    let sym = text(&["sym", DUMP, "ffffffff8876fdc1"]);
    assert_eq!(sym.trim_end(), "ffffffff8876fdc1 (t) smp_call_function_many_cond+241");
    // The spinlock the page_alloc CPU spins on (RDI in crash's bt): held, so its value is non-zero.
    let lock = json(&["struct", DUMP, "raw_spinlock.raw_lock.val.counter", "ffffffffc054e0a0"]);
    assert_ne!(lock["value"], 0, "{lock}");
    let rd = json(&["rd", DUMP, "ffffffffc054e0a0", "2"]);
    assert_eq!(rd["words"][0].as_u64().unwrap() & 0xffff_ffff, lock["value"].as_u64().unwrap());
    // A whole structure: task_struct of pid 135 reads back its own pid and comm.
    let ps = json(&["ps", DUMP]);
    let t = ps["tasks"].as_array().unwrap().iter().find(|t| t["pid"] == 135).unwrap();
    let addr = format!("{:x}", t["address"].as_u64().unwrap());
    let ts = json(&["struct", DUMP, "task_struct", &addr]);
    assert_eq!(ts["value"]["pid"], 135);
    assert_eq!(ts["value"]["comm"], "zone_drain");
    let txt = text(&["struct", DUMP, "task_struct.comm", &addr]);
    assert!(txt.contains("\"zone_drain\""), "{txt}");
}

#[test]
fn bad_addresses_and_names_are_errors_not_panics() {
    for args in [
        vec!["sym", DUMP, "no_such_symbol_anywhere"],
        vec!["rd", DUMP, "0000000012345678", "4"],
        vec!["struct", DUMP, "no_such_type", "ffffffffc054e0a0"],
        vec!["struct", DUMP, "task_struct.no_such_member", "ffffffffc054e0a0"],
        vec!["sys", "Cargo.toml"],
        vec!["ps", "/nonexistent/vmcore"],
    ] {
        let (_, err, code) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("lockscope: ") && err.lines().count() == 1, "{args:?}: {err}");
    }
}

fn shared() -> Option<PathBuf> {
    let p = root().join("../shared/corpus");
    p.is_dir().then_some(p)
}

/// `KEY: value` lines of crash's `sys` section.
fn crash_sys(crash: &str) -> HashMap<String, String> {
    let sec = crash.split("===== crash> sys =====").nth(1).unwrap().split("=====").next().unwrap();
    sec.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

#[test]
fn corpus_dumps_agree_with_crash_and_truth() {
    let Some(corpus) = shared() else {
        eprintln!("../shared absent: skipped");
        return;
    };
    let mut checked = 0;
    for case in std::fs::read_dir(&corpus).unwrap() {
        let dir = case.unwrap().path();
        let dump = dir.join("vmcore.mkd-zlib-d31");
        if !dump.exists() {
            continue;
        }
        let d = dump.to_str().unwrap();
        let crash = std::fs::read_to_string(dir.join("crash.txt")).unwrap();
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
        // sys: every field crash prints that does not depend on what crash could walk.
        let want = crash_sys(&crash);
        let ours: HashMap<String, String> = text(&["sys", d])
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        for key in ["DATE", "UPTIME", "LOAD AVERAGE", "NODENAME", "RELEASE", "VERSION", "MEMORY"] {
            assert_eq!(ours.get(key), want.get(key), "{}: sys {key}", dir.display());
        }
        // CPUs: the count as crash; the offline ones as the kernel's online mask says, which
        // is what drgn reports ("(offline)") — crash 8.0.2 names fewer after a panic.
        let count = |s: &str| s.split_whitespace().next().unwrap().to_string();
        assert_eq!(count(&ours["CPUS"]), count(&want["CPUS"]), "{}", dir.display());
        let drgn = std::fs::read_to_string(dir.join("drgn.txt")).unwrap();
        let drgn_offline: Vec<String> = drgn
            .lines()
            .filter(|l| l.starts_with("--- CPU ") && l.ends_with("(offline)"))
            .map(|l| l[8..].split(':').next().unwrap().to_string())
            .collect();
        let our_offline = ours["CPUS"].split("OFFLINE: ").nth(1).map(|s| s.trim_end_matches(']').to_string());
        assert_eq!(our_offline, (!drgn_offline.is_empty()).then(|| drgn_offline.join(",")), "{}", dir.display());
        assert!(ours["MACHINE"].starts_with("x86_64"));
        // The panic: message, CPU and task as truth.json recorded them.
        if let Some(p) = truth["panic"].as_object() {
            let sys = json(&["sys", d]);
            if let Some(cpu) = p.get("cpu").and_then(|c| c.as_u64()) {
                assert_eq!(sys["panic_cpu"], cpu, "{}", dir.display());
            }
            if let Some(msg) = p.get("message").and_then(|m| m.as_str()) {
                assert_eq!(sys["panic"], msg, "{}", dir.display());
            }
            if let Some(pid) = p.get("pid") {
                assert_eq!(&sys["panic_task"]["pid"], pid, "{}", dir.display());
                assert_eq!(sys["panic_task"]["comm"], p["comm"], "{}", dir.display());
            }
        }
        // runq -T: the same lag per CPU, to the hundredth of a second.
        let crash_runq: Vec<&str> = crash
            .split("===== crash> runq -T =====")
            .nth(1)
            .unwrap()
            .split("=====")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.contains("secs"))
            .collect();
        let our_runq = text(&["runq", "-T", d]);
        for l in &crash_runq {
            assert!(our_runq.contains(l.trim()), "{}: {l} not in\n{our_runq}", dir.display());
        }
        // ps: the test threads of truth.json with their PIDs and states (crash cannot list
        // the sleeping ones on this kernel).
        let ps = json(&["ps", d]);
        let tasks = ps["tasks"].as_array().unwrap();
        for th in truth["threads"].as_array().unwrap() {
            let t = tasks
                .iter()
                .find(|t| t["pid"] == th["pid"] && t["comm"] == th["comm"])
                .unwrap_or_else(|| panic!("{}: {th} not in ps", dir.display()));
            if let Some(st) = th["snapshot_state"].as_str() {
                assert_eq!(t["state_letter"], st, "{}: {th}", dir.display());
            }
        }
        // sym: the lock objects named by truth.json.
        if let Some(locks) = truth["locks"].as_object() {
            for (_, l) in locks {
                let sym = json(&["sym", d, l["symbol"].as_str().unwrap()]);
                let addr =
                    u64::from_str_radix(l["symbol_address"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
                assert_eq!(sym["symbols"][0]["address"], addr, "{}: {l}", dir.display());
                assert_eq!(sym["symbols"][0]["module"], "lockscen");
            }
        }
        // log: crash's last 80 lines are in ours, in order.
        let ours = text(&["log", d]);
        let tail: Vec<&str> = crash
            .split("===== crash> log | tail -80 =====")
            .nth(1)
            .unwrap()
            .split("===== crash>")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('['))
            .collect();
        assert!(tail.len() > 40, "{}", dir.display());
        let mut at = 0;
        for l in &tail {
            let pos = ours[at..].find(l).unwrap_or_else(|| panic!("{}: log line {l:?} missing", dir.display()));
            at += pos + l.len();
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} corpus dumps checked");
}
