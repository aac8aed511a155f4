//! Shared-corpus suite for the diagnosis: `analyze --json DUMP` on every x86_64 dump of
//! ../shared/corpus and ../shared/corpus-6.12, in every format, with the dump's kernel log
//! and without it (`--no-log`: from memory alone), gets each case's truth.json: every link
//! of the waits-for chain (waiter → the CPU or task it waits for, the primitive, the lock's
//! address), the root (task or CPU, kind, the lock it holds) and the cycle (a self-deadlock
//! is a cycle of one; the other cases have none), as one incident. Skips (passes with a note) without
//! ../shared.

#[path = "common/corpus.rs"]
mod corpus;

use corpus::{cases, dumps_of, shared};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn analyze(dump: &Path, mode: Option<&str>) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lockscope"))
        .args(["analyze", "--json"])
        .args(mode)
        .arg(dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: {}", dump.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A node as (cpu, pid): a CPU node keeps its CPU only, as the truth names CPUs.
type Key = (Option<u64>, Option<u64>);

fn node(n: &Value) -> Key {
    (n["cpu"].as_u64(), n["task"]["pid"].as_u64())
}

fn hex(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// The truth's waiter of a chain entry, and what it waits for: (target, our primitive
/// names, lock address).
fn truth_link(entry: &Value, chain: &[Value]) -> Option<(Key, Key, &'static [&'static str], Option<u64>)> {
    let w = &entry["waits_for"];
    let waiter = if entry["kind"] == "cpu" { (entry["cpu"].as_u64(), None) } else { (None, entry["pid"].as_u64()) };
    let lock = hex(&w["lock_address"]);
    // The task whose `holds_addresses` lists the lock.
    let holder = || {
        chain.iter().find(|e| {
            e["holds_addresses"].as_object().is_some_and(|h| h.values().any(|a| hex(a).is_some() && hex(a) == lock))
        })
    };
    let (target, wait): (Key, &'static [&'static str]) = match w["type"].as_str()? {
        "csd_ipi" => ((w["target_cpus"][0].as_u64(), None), &["csd_ipi"]),
        "spinlock" => ((None, holder()?["pid"].as_u64()), &["spinlock"]),
        "rwsem_read" => ((None, w["blocked_behind_pid"].as_u64()), &["rwsem_read"]),
        "rwsem_write" => ((None, w["owner_pid"].as_u64()), &["rwsem_write"]),
        "bit_lock" => ((None, w["owner_pid"].as_u64()), &["bit_wait", "page_lock", "bit_spinlock"]),
        "rcu_grace_period" => ((w["blocked_by_cpu"].as_u64(), None), &["rcu_grace_period"]),
        other => panic!("truth wait type {other} not known to this test"),
    };
    Some((waiter, target, wait, lock))
}

/// Whether one of our links joins the truth's waiter and target: a CPU matches by number, a
/// task by pid.
fn joins(ours: Key, want: Key) -> bool {
    match want {
        (Some(c), _) => ours.0 == Some(c),
        (None, Some(p)) => ours.1 == Some(p),
        _ => false,
    }
}

fn check(truth: &Value, v: &Value, who: &str, problems: &mut Vec<String>) {
    let expected = &truth["expected"];
    // One scenario is one incident: memory's reading of a crash or lockup the log reports is
    // merged into the log's, not told twice.
    let incidents = v["incidents"].as_array().map_or(0, |i| i.len());
    if incidents != 1 {
        problems.push(format!("{who}: {incidents} incidents, want 1"));
    }
    let chain = v["diagnosis"]["chain"].as_array().cloned().unwrap_or_default();
    let truth_chain = expected["waits_for_chain"].as_array().cloned().unwrap_or_default();
    for entry in &truth_chain {
        let Some((waiter, target, waits, lock)) = truth_link(entry, &truth_chain) else { continue };
        let found = chain.iter().find(|l| joins(node(&l["waiter"]), waiter) && joins(node(&l["waits_for"]), target));
        let Some(l) = found else {
            problems.push(format!("{who}: no link {waiter:?} → {target:?}"));
            continue;
        };
        if !waits.contains(&l["wait"].as_str().unwrap_or("")) {
            problems.push(format!("{who}: link {waiter:?} → {target:?} waits on {}, want one of {waits:?}", l["wait"]));
        }
        if lock.is_some() && hex(&l["lock"]["address"]) != lock {
            problems.push(format!("{who}: link {waiter:?} → {target:?} names lock {}, want {lock:x?}", l["lock"]));
        }
    }
    let root = &expected["root_cause"];
    let ours = &v["diagnosis"]["root"];
    if root["pid"].is_u64() && ours["task"]["pid"] != root["pid"] {
        problems.push(format!("{who}: root {} ≠ truth pid {}", ours["task"], root["pid"]));
    }
    // The truth's words for root kinds, and ours (docs/json-schema.md).
    let want = match root["kind"].as_str().unwrap_or("") {
        "sleep_while_holding_spinlock" => "sleeps_holding_spinlock",
        "self_deadlock_bit_lock" => "self_deadlock",
        "endless_loop_in_rcu_read_side" => "preempt_off_loop",
        "null_pointer_dereference" => "crash",
        other => other,
    };
    if ours["kind"] != want {
        problems.push(format!("{who}: root kind {} ≠ {want}", ours["kind"]));
    }
    // The lock the root holds, by the truth's name of it.
    let held = root["lock"]
        .as_str()
        .and_then(|name| truth_chain.iter().find_map(|e| e["holds_addresses"].get(name)).and_then(hex));
    if held.is_some() && hex(&ours["lock"]["address"]) != held {
        problems.push(format!("{who}: root lock {} ≠ {held:x?}", ours["lock"]));
    }
    // A self-deadlock is a cycle of its one task; no other case is a cycle.
    let cycle: Vec<Key> = v["diagnosis"]["cycle"].as_array().map_or(Vec::new(), |c| c.iter().map(node).collect());
    let want_cycle: Vec<Key> = if want == "self_deadlock" { vec![(None, root["pid"].as_u64())] } else { Vec::new() };
    if cycle != want_cycle {
        problems.push(format!("{who}: cycle {cycle:?} ≠ {want_cycle:?}"));
    }
    // The graph holds the chain.
    let edges = v["diagnosis"]["graph"]["edges"].as_array().map_or(0, |e| e.len());
    if edges != chain.len() {
        problems.push(format!("{who}: graph has {edges} edges for {} links", chain.len()));
    }
}

#[test]
fn every_dump_gets_the_truths_chain_root_and_cycle_with_and_without_its_log() {
    let Some(shared) = shared() else {
        eprintln!("note: ../shared not found; shared-corpus diagnosis suite skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut runs = 0;
    for corpus in ["corpus", "corpus-6.12"] {
        for case in cases(&shared, corpus) {
            let truth: Value = serde_json::from_slice(&std::fs::read(case.join("truth.json")).unwrap()).unwrap();
            for dump in dumps_of(&case, tmp.path()) {
                for mode in [None, Some("--no-log")] {
                    let who = format!("{} {}", dump.display(), mode.unwrap_or(""));
                    check(&truth, &analyze(&dump, mode), &who, &mut problems);
                    runs += 1;
                }
            }
        }
    }
    assert!(runs >= 20, "only {runs} runs");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
