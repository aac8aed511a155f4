//! `analyze DUMP` shows what the dump's memory says beside the log's diagnosis: on the repo's
//! dump, CPU 1 waits for CPU 3 by its call data, CPU 3's queue holds that call, CPU 3 spins
//! with interrupts off on a held spinlock whose possible holder is a sleeping task. Logs get
//! no such section, and their JSON no `machine` key.

mod common;

use common::run;
use serde_json::Value;

const DUMP: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";

#[test]
fn analyze_dump_reports_the_machine_state_from_memory() {
    let (out, err, code) = run(&["analyze", "--json", DUMP]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let m = &v["machine"][0];
    assert_eq!(m["name"], DUMP);
    let w = &m["ipi_waits"][0];
    assert_eq!((w["cpu"].as_u64(), w["targets"].clone()), (Some(1), serde_json::json!([3])));
    let calls = m["pending_calls"].as_array().unwrap();
    assert!(calls.iter().any(|c| c["source_cpu"] == 1 && c["target_cpu"] == 3 && c["locked"] == true));
    let lock = &m["locks"][0];
    assert_eq!((lock["kind"].as_str(), lock["locked"].as_bool()), (Some("spinlock"), Some(true)));
    assert_eq!(lock["waiters"], serde_json::json!([3]));
    let holder = &lock["candidate_holders"][0];
    assert_eq!((holder["state"].as_str(), holder["task"]["pid"].as_u64()), (Some("D"), Some(135)));
    let cpu3 = m["cpus"].as_array().unwrap().iter().find(|c| c["cpu"] == 3).unwrap();
    assert_eq!(cpu3["irqs_enabled"], false);
    assert!(cpu3["clock_lag_ns"].as_u64().unwrap() > 30_000_000_000);
    // The lockup detectors' own state: CPU 1 (spinning with interrupts on, never scheduling)
    // has not let the soft-lockup watchdog run for over 30 s; CPU 3 (interrupts off) stopped
    // counting watchdog timer interrupts while the others went on.
    let cpu = |n: u64| m["cpus"].as_array().unwrap().iter().find(|c| c["cpu"] == n).unwrap().clone();
    assert!(cpu(1)["watchdog"]["touched_ago_ns"].as_u64().unwrap() > 30_000_000_000);
    assert!(cpu(0)["watchdog"]["touched_ago_ns"].as_u64().unwrap() < 3_000_000_000);
    let timer_irqs = |n: u64| cpu(n)["watchdog"]["hrtimer_interrupts"].as_u64().unwrap();
    assert!(timer_irqs(3) + 15 < timer_irqs(0), "{} vs {}", timer_irqs(3), timer_irqs(0));

    let (text, _, _) = run(&["analyze", DUMP]);
    let section = &text[text.find("FROM THE DUMP'S MEMORY").expect("memory section")..];
    assert!(section.contains("CPU 1 waits in smp_call_function_many_cond for CPU 3"), "{section}");
    assert!(section.contains("possible holder: zone_drain:135 [D]"), "{section}");

    // A log has no machine state.
    let (log, err, code) = run(&["analyze", "--json", "tests/data/corpus/ipi_sleeping_holder.live.console.log"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&log).unwrap();
    assert!(v.get("machine").is_none());
}

/// (waiter, target) of each chain link, as "cpu N" / "pid N", with its confidence and
/// whether memory is among its evidence.
fn links(v: &Value) -> Vec<(String, String, String, bool)> {
    let node = |n: &Value| match (n["cpu"].as_u64(), n["task"]["pid"].as_u64()) {
        (Some(c), _) => format!("cpu {c}"),
        (None, Some(p)) => format!("pid {p}"),
        _ => n["resource"].as_str().unwrap_or("?").to_string(),
    };
    v["diagnosis"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mem = l["evidence"].as_array().unwrap().iter().any(|e| e.get("memory").is_some());
            (node(&l["waiter"]), node(&l["waits_for"]), l["confidence"].as_str().unwrap().to_string(), mem)
        })
        .collect()
}

#[test]
fn the_diagnosis_uses_what_memory_shows() {
    let (out, err, code) = run(&["analyze", "--json", DUMP]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let l = links(&v);
    // The IPI target read from cfd_data, and the spinlock's holder found on its stack (the
    // log's "scheduling while atomic" agreeing): both certain, both citing memory.
    assert!(l.iter().any(|x| x.0 == "cpu 1" && x.1 == "cpu 3" && x.2 == "certain"), "{l:?}");
    assert!(l.iter().any(|x| x.0 == "cpu 3" && x.1 == "pid 135" && x.2 == "certain" && x.3), "{l:?}");
    assert_eq!(v["diagnosis"]["root"]["task"]["pid"], 135);
    // Each memory fact the root rests on names the crash command that shows it.
    let commands: Vec<&str> = v["diagnosis"]["root"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["memory"]["crash"].as_str())
        .collect();
    for want in ["p cfd_data:1", "p call_single_queue:3", "struct qspinlock 0x", "search -t "] {
        assert!(commands.iter().any(|c| c.starts_with(want)), "{want} not in {commands:?}");
    }
    let (text, _, _) = run(&["analyze", "--no-log", DUMP]);
    // From memory alone, the lockup reports themselves are memory reads too.
    assert!(text.contains("crash> struct qspinlock 0x") && text.contains("crash> runq -T"), "{text}");
}
