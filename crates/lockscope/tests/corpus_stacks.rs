//! Shared-corpus suite for stacks: on every x86_64 dump in ../shared/corpus and
//! ../shared/corpus-6.12 (every format), `bt -a` and `bt PID` unwind every CPU and every task
//! in D state to a natural end, with no debuginfo; the functions agree, in order, with what
//! drgn (with the DWARF vmlinux) printed for the same CPU or task; the frames each case's
//! truth.json lists in its waits-for chain are on the right CPU or task; and at the spinning
//! frame the registers hold the lock's address. Skips (passes with a note) without ../shared.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

#[path = "common/corpus.rs"]
mod corpus;
use corpus::{cases, dumps_of, shared};

fn json(args: &[&str], dump: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lockscope"))
        .arg(args[0])
        .arg(dump)
        .args(&args[1..])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?} {}: {}", dump.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A function name without the compiler's suffixes (`.cold`, `.part.0`, `.isra.0`).
fn base(name: &str) -> &str {
    name.split('.').next().unwrap()
}

/// The function of one of our frames (`symbol` is `name+0xoff/0xsize [module]`). Labels
/// inside assembly functions (`end_repeat_nmi` in the NMI entry,
/// `secondary_startup_64_no_verify` in `secondary_startup_64`) are kallsyms symbols of their
/// own, and crash names frames by them too; drgn's DWARF names the enclosing function.
fn our_function(frame: &Value) -> String {
    let s = frame["symbol"].as_str().unwrap_or("?");
    let name = base(s.split('+').next().unwrap());
    match name {
        "end_repeat_nmi" | "repeat_nmi" | "first_nmi" | "nested_nmi" | "nested_nmi_out" => "asm_exc_nmi".into(),
        "secondary_startup_64_no_verify" => "secondary_startup_64".into(),
        n => n.into(),
    }
}

fn functions(trace: &Value) -> Vec<String> {
    trace["trace"]["frames"].as_array().map_or(Vec::new(), |f| f.iter().map(our_function).collect())
}

/// drgn's traces in drgn.txt: `--- CPU N: …` and `--- pid N comm …` sections of `#i  func …`.
fn drgn_traces(text: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("--- ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            key = match words.as_slice() {
                ["CPU", n, ..] => Some(format!("cpu {}", n.trim_end_matches(':'))),
                ["pid", n, ..] => Some(format!("pid {n}")),
                _ => None,
            };
            continue;
        }
        if line.starts_with("====") {
            key = None;
        }
        if let (Some(k), Some(rest)) = (&key, line.strip_prefix('#')) {
            let func = rest.split_whitespace().nth(1).unwrap_or("");
            out.entry(k.clone()).or_default().push(base(func.split('+').next().unwrap()).to_string());
        }
    }
    out
}

/// Whether `ours` appears in `theirs` in order (drgn adds the inlined calls we cannot see).
fn subsequence(ours: &[String], theirs: &[String]) -> bool {
    let mut it = theirs.iter();
    ours.iter().all(|o| it.any(|t| t == o))
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn check_dump(case: &Path, dump: &Path, problems: &mut Vec<String>) {
    let truth: Value = serde_json::from_slice(&std::fs::read(case.join("truth.json")).unwrap()).unwrap();
    let drgn = std::fs::read_to_string(case.join("drgn.txt")).map(|t| drgn_traces(&t)).unwrap_or_default();
    let who = format!("{}", dump.display());
    let cpus = json(&["bt", "-a"], dump);
    let mut by_key: HashMap<String, Value> = HashMap::new();
    for t in cpus["traces"].as_array().unwrap() {
        by_key.insert(format!("cpu {}", t["cpu"]), t.clone());
    }
    for chain in truth["expected"]["waits_for_chain"].as_array().into_iter().flatten() {
        if chain["kind"] == "task" {
            let pid = chain["pid"].as_u64().unwrap();
            let v = json(&["bt", &pid.to_string()], dump);
            by_key.insert(format!("pid {pid}"), v["traces"][0].clone());
        }
    }
    for (key, t) in &by_key {
        let stop = &t["trace"]["stop"]["kind"];
        if stop != "end" && stop != "user_mode" {
            problems.push(format!("{who}: {key}: trace stops early: {}", t["trace"]["stop_reason"]));
        }
        let ours = functions(t);
        if let Some(theirs) = drgn.get(key)
            && !subsequence(&ours, theirs)
        {
            problems.push(format!("{who}: {key}: ours {ours:?} is not in drgn's order {theirs:?}"));
        }
    }
    for chain in truth["expected"]["waits_for_chain"].as_array().into_iter().flatten() {
        let key = match chain["kind"].as_str() {
            Some("cpu") => format!("cpu {}", chain["cpu"]),
            _ => format!("pid {}", chain["pid"]),
        };
        let Some(t) = by_key.get(&key) else {
            problems.push(format!("{who}: no trace for {key}"));
            continue;
        };
        let want: Vec<String> =
            chain["frames"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().into()).collect();
        let ours = functions(t);
        // Frames drgn's DWARF shows as inlined calls (schedule_timeout inside msleep on 6.1)
        // are no frames of their own: only the real ones must be there, in order.
        let real: Vec<String> = want.iter().filter(|f| ours.contains(f)).cloned().collect();
        if real.len() + 1 < want.len() || !subsequence(&real, &ours) {
            problems.push(format!("{who}: {key}: truth frames {want:?} not found in {ours:?}"));
        }
        // A spinning CPU's registers are all known (its note, or the NMI's saved frame); a
        // sleeping task's argument registers are not saved anywhere.
        if let (Some(lock), "cpu") = (chain["waits_for"]["lock_address"].as_str(), chain["kind"].as_str().unwrap()) {
            let frames = t["trace"]["frames"].as_array().unwrap();
            let spin = frames.iter().find(|f| our_function(f) == want[0]);
            let rdi = spin.and_then(|f| f["registers"]["rdi"].as_str()).map(|r| hex(&Value::from(r)));
            if rdi != Some(hex(&Value::from(lock))) {
                problems.push(format!("{who}: {key}: rdi at {} is {rdi:x?}, the lock is {lock}", want[0]));
            }
        }
    }
}

#[test]
fn every_cpu_and_waiting_task_unwinds_like_drgn_and_the_truth() {
    let Some(shared) = shared() else {
        eprintln!("note: ../shared not found; shared-corpus stack suite skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut dumps = 0;
    for corpus in ["corpus", "corpus-6.12"] {
        for case in cases(&shared, corpus) {
            for dump in dumps_of(&case, tmp.path()) {
                check_dump(&case, &dump, &mut problems);
                dumps += 1;
            }
        }
    }
    assert!(dumps >= 8, "only {dumps} dumps found");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
