//! One test per wait rule, on the repo's small real dumps, from memory alone (`--no-log`):
//! the rwsem rule (a writer to the last reader the rwsem records, a reader queued behind a
//! waiting writer), the bit-lock rule (a task sleeping on a bit no one else refers to: a
//! self-deadlock), the RCU rule (a task in `synchronize_rcu` to the CPU the grace period still
//! waits for), the cross-CPU call and spinlock rules (CPU to CPU by `cfd_data`, CPU to the
//! sleeping holder whose stack holds the lock). No `../shared` needed.

mod common;

use common::run;
use serde_json::Value;

const RWSEM: &str = "tests/data/dumps/hung_rwsem_chain.live.mkd-zlib-d31";
const RCU: &str = "tests/data/dumps/rcu_reader_spin.live.mkd-zlib-d31";
const IPI: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";

fn diagnosis(dump: &str) -> Value {
    let (out, err, code) = run(&["analyze", "--no-log", "--json", dump]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["diagnosis"].clone()
}

fn node(n: &Value) -> String {
    match (n["cpu"].as_u64(), n["task"]["pid"].as_u64()) {
        (Some(c), _) => format!("cpu {c}"),
        (None, Some(p)) => format!("pid {p}"),
        _ => n["resource"].as_str().unwrap_or("?").to_string(),
    }
}

/// The chain link from `waiter`: (target, wait primitive, lock address, confidence).
fn link_from(d: &Value, waiter: &str) -> (String, String, Option<String>, String) {
    let l = d["chain"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| node(&l["waiter"]) == waiter)
        .unwrap_or_else(|| panic!("no link from {waiter}: {:#}", d["chain"]));
    (
        node(&l["waits_for"]),
        l["wait"].as_str().unwrap().to_string(),
        l["lock"]["address"].as_str().map(str::to_string),
        l["confidence"].as_str().unwrap().to_string(),
    )
}

fn reasoning(d: &Value, waiter: &str) -> String {
    d["chain"].as_array().unwrap().iter().find(|l| node(&l["waiter"]) == waiter).unwrap()["reasoning"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn rwsem_writer_waits_for_the_last_reader_the_rwsem_records() {
    let d = diagnosis(RWSEM);
    let (to, wait, lock, conf) = link_from(&d, "pid 136");
    assert_eq!((to.as_str(), wait.as_str()), ("pid 135", "rwsem_write"));
    assert_eq!(lock.as_deref(), Some("0xffffffffc0467060"));
    // Held for read, the owner field is only the last reader: a hint.
    assert_eq!(conf, "likely");
    assert!(reasoning(&d, "pid 136").contains("last reader"), "{}", reasoning(&d, "pid 136"));
}

#[test]
fn rwsem_reader_queues_behind_the_waiting_writer() {
    let d = diagnosis(RWSEM);
    let (to, wait, lock, _) = link_from(&d, "pid 137");
    assert_eq!((to.as_str(), wait.as_str()), ("pid 136", "rwsem_read"));
    assert_eq!(lock.as_deref(), Some("0xffffffffc0467060"));
}

#[test]
fn a_bit_lock_nobody_else_refers_to_is_a_self_deadlock() {
    let d = diagnosis(RWSEM);
    let (to, wait, lock, _) = link_from(&d, "pid 135");
    assert_eq!(to, "pid 135");
    assert_eq!(wait, "bit_wait");
    assert_eq!(lock.as_deref(), Some("0xffffffffc0467040"));
    assert_eq!(d["root"]["kind"], "self_deadlock");
    assert_eq!(d["root"]["task"]["pid"], 135);
    assert_eq!(d["root"]["lock"]["address"], "0xffffffffc0467040");
    // No cycle of two or more: the self-loop is the deadlock.
    let cycle = &d["cycle"];
    assert!(cycle.is_null() || cycle.as_array().is_some_and(|c| c.len() == 1), "{cycle}");
}

#[test]
fn a_task_in_synchronize_rcu_waits_for_the_cpu_the_grace_period_waits_for() {
    let d = diagnosis(RCU);
    let (to, wait, _, conf) = link_from(&d, "pid 135");
    assert_eq!((to.as_str(), wait.as_str(), conf.as_str()), ("cpu 2", "rcu_grace_period", "certain"));
    let why = reasoning(&d, "pid 135");
    assert!(why.contains("qsmask") && why.contains("CPU 2"), "{why}");
    assert_eq!(d["root"]["cpu"], 2);
    assert_eq!(d["root"]["kind"], "preempt_off_loop");
}

#[test]
fn ipi_and_spinlock_rules_from_memory_alone() {
    let d = diagnosis(IPI);
    let (to, wait, _, conf) = link_from(&d, "cpu 1");
    assert_eq!((to.as_str(), wait.as_str(), conf.as_str()), ("cpu 3", "csd_ipi", "certain"));
    let (to, wait, lock, _) = link_from(&d, "cpu 3");
    assert_eq!((to.as_str(), wait.as_str()), ("pid 135", "spinlock"));
    assert!(lock.is_some_and(|a| a.starts_with("0xffff")));
    assert_eq!(d["root"]["kind"], "sleeps_holding_spinlock");
}

#[test]
fn a_completion_waiter_names_the_completion_and_where_it_lives() {
    let (out, err, code) = run(&["analyze", "--no-log", "--json", RCU]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let locks = v["machine"][0]["locks"].as_array().unwrap();
    let c = locks.iter().find(|l| l["kind"] == "completion").expect("the synchronize_rcu waiter's completion");
    assert_eq!(c["task_waiters"][0][0]["pid"], 135);
    // Not completed: `done` is 0.
    assert_eq!((c["value"].as_u64(), c["locked"].as_bool()), (Some(0), Some(true)));
    // synchronize_rcu keeps it on the waiter's own stack.
    assert!(c["symbol"].as_str().unwrap().starts_with("on the stack of rcu_syncer:135"), "{c}");
    assert!(c["address"].as_str().unwrap().starts_with("0xffff"), "addresses are hex strings: {c}");
    assert!(c["origin"][0]["crash"].as_str().unwrap().starts_with("struct completion 0x"), "{c}");
}

#[test]
fn blocked_tasks_are_machine_state_and_the_hung_task_reports_come_from_them() {
    let (out, err, code) = run(&["analyze", "--no-log", "--json", RWSEM]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let blocked = v["machine"][0]["blocked_tasks"].as_array().unwrap();
    let pids: Vec<u64> = blocked.iter().filter_map(|t| t["task"]["pid"].as_u64()).collect();
    // Longest blocked first: the root holder went to sleep first.
    assert_eq!(pids, [135, 136, 137]);
    for t in blocked {
        assert!(t["blocked_ns"].as_u64().unwrap() > 20_000_000_000, "{t}");
        assert!(t["stack"].as_array().unwrap().iter().any(|f| f["function"] == "__schedule"), "{t}");
        assert!(t["origin"]["crash"].as_str().unwrap().starts_with("ps -m "), "{t}");
    }
    let hung: Vec<u64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "hung_task")
        .filter_map(|e| e["task"]["pid"].as_u64())
        .collect();
    assert_eq!(hung.len(), 3, "{hung:?}");
}
