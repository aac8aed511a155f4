//! Golden tests: the `lockscope analyze` report for real logs and the repo's small real dumps
//! in tests/data (a dump with its log, and from memory alone), as text and as the stable part
//! of the JSON, compared with reviewed snapshots (tests/snapshots).

mod common;

use common::{root, run};
use std::process::Command;

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["analyze", "--json"];
    a.extend_from_slice(args);
    let (out, err, code) = run(&a);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The contract part of the JSON: what outside checks rely on.
fn contract(v: &serde_json::Value) -> serde_json::Value {
    let events: Vec<serde_json::Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::json!({
                "kind": e["kind"], "cpu": e["cpu"], "task": e["task"], "duration_s": e["duration_s"], "title": e["title"],
                "frames": e["stack"].as_array().unwrap().iter().filter(|f| f["reliable"] == true).take(6).map(|f| f["function"].clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "schema": v["schema"], "events": events, "diagnosis": v["diagnosis"]["root"], "chain": v["diagnosis"]["chain"].as_array().unwrap().iter().map(|l| serde_json::json!({"waiter": l["waiter"], "waits_for": l["waits_for"], "via": l["via"], "wait": l["wait"], "lock": l["lock"], "confidence": l["confidence"]})).collect::<Vec<_>>() })
}

macro_rules! golden {
    ($name:ident, $($arg:expr),+) => {
        #[test]
        fn $name() {
            let args = [$($arg),+];
            let mut a = vec!["analyze", "--color", "never"];
            a.extend_from_slice(&args);
            let (out, err, code) = run(&a);
            assert_eq!(code, 0, "{err}");
            insta::assert_snapshot!(concat!(stringify!($name), "_text"), out);
            insta::assert_json_snapshot!(concat!(stringify!($name), "_json"), contract(&json(&args)));
        }
    };
}

golden!(corpus_ipi_sleeping_holder_live, "tests/data/corpus/ipi_sleeping_holder.live.console.log");
golden!(corpus_ipi_sleeping_holder_panic, "tests/data/corpus/ipi_sleeping_holder.panic.console.log");
golden!(corpus_hung_rwsem_chain_live, "tests/data/corpus/hung_rwsem_chain.live.console.log");
golden!(corpus_hung_rwsem_chain_panic, "tests/data/corpus/hung_rwsem_chain.panic.console.log");
golden!(corpus_rcu_reader_spin_live, "tests/data/corpus/rcu_reader_spin.live.console.log");
golden!(corpus_null_oops_panic, "tests/data/corpus/null_oops.panic.console.log");
golden!(seed_004_syslog, "tests/data/seed-004/messages.log");
golden!(
    seed_003_dmesg_sel_syslog,
    "tests/data/seed-003/dmesg.log",
    "tests/data/seed-003/messages.log",
    "--sel",
    "tests/data/seed-003/sel.txt"
);
golden!(syzbot_hung_task_arm64, "tests/data/syzbot/1000.log");
golden!(syzbot_soft_lockup, "tests/data/syzbot/67.log");
golden!(syzbot_rcu_stall, "tests/data/syzbot/145.log");
golden!(syzbot_cant_die, "tests/data/syzbot/482.log");
golden!(seed_000_crash_session, "tests/data/seed-000/crash-session.txt");
golden!(seed_001_crash_session, "tests/data/seed-001/crash-session.txt");
golden!(seed_002_crash_session, "tests/data/seed-002/crash-session.txt");
golden!(crash_session_hung_rwsem_chain, "tests/data/crash-sessions/hung_rwsem_chain.session.txt");
golden!(crash_session_ipi_sleeping_holder, "tests/data/crash-sessions/ipi_sleeping_holder.session.txt");
golden!(dump_ipi_sleeping_holder_live, "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
golden!(dump_ipi_sleeping_holder_live_memory, "--no-log", "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
golden!(dump_hung_rwsem_chain_live, "tests/data/dumps/hung_rwsem_chain.live.mkd-zlib-d31");
golden!(dump_hung_rwsem_chain_live_memory, "--no-log", "tests/data/dumps/hung_rwsem_chain.live.mkd-zlib-d31");
golden!(dump_rcu_reader_spin_live, "tests/data/dumps/rcu_reader_spin.live.mkd-zlib-d31");
golden!(dump_rcu_reader_spin_live_memory, "--no-log", "tests/data/dumps/rcu_reader_spin.live.mkd-zlib-d31");
golden!(dump_ipi_6_12_memory, "--no-log", "tests/data/dumps/ipi_sleeping_holder.live.6.12.mkd1.7.2-zlib-d31");
golden!(dump_arm64_ipi_sleeping_holder_live, "tests/data/dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib");
golden!(
    dump_arm64_ipi_sleeping_holder_live_memory,
    "--no-log",
    "tests/data/dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib"
);

/// crash's `bt -a` on the arm64 dump: frame records, the leaf caller from LR, the register
/// block of each CPU's note.
#[test]
fn arm64_bt_a() {
    let (out, err, code) = run(&["bt", "-a", "tests/data/dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("arm64_bt_a", out);
}

#[test]
fn markdown_and_json_say_what_text_says() {
    let (md, _, code) =
        run(&["analyze", "--format", "markdown", "tests/data/corpus/ipi_sleeping_holder.live.console.log"]);
    assert_eq!(code, 0);
    let v = json(&["tests/data/corpus/ipi_sleeping_holder.live.console.log"]);
    let summary = v["diagnosis"]["summary"].as_str().unwrap();
    assert!(md.contains(summary), "markdown lacks the summary");
    assert_eq!(v["schema"], "lockscope/1");
    assert_eq!(v["diagnosis"]["root"]["task"]["comm"], "zone_drain");
}

#[test]
fn stdin_is_read_with_dash() {
    let data = std::fs::read(root().join("tests/data/corpus/rcu_reader_spin.live.console.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lockscope"))
        .args(["analyze", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["diagnosis"]["root"]["cpu"], 2);
}

#[test]
fn color_only_when_asked() {
    let f = "tests/data/corpus/rcu_reader_spin.live.console.log";
    let (plain, _, _) = run(&["analyze", f]);
    assert!(!plain.contains('\x1b'), "piped output must not be coloured");
    let (colored, _, _) = run(&["analyze", "--color", "always", f]);
    assert!(colored.contains("\x1b["));
}

#[test]
fn seed_003_memory_error_took_the_ipi_target_out() {
    let v = json(&[
        "tests/data/seed-003/dmesg.log",
        "tests/data/seed-003/messages.log",
        "--sel",
        "tests/data/seed-003/sel.txt",
    ]);
    let root = &v["diagnosis"]["root"];
    assert_eq!(root["confidence"], "likely");
    let reason = root["reason"].as_str().unwrap();
    assert!(reason.starts_with("hardware: CPU 0 never answered"), "{reason}");
    assert!(reason.contains("SEL 146") && reason.contains("Memory") && reason.contains("+8 h"), "{reason}");
    // The register reading is offered as a candidate only: it cannot be checked without disassembly.
    let link = &v["diagnosis"]["chain"][0];
    assert_eq!((link["waiter"]["cpu"].as_u64(), link["waits_for"]["cpu"].as_u64()), (Some(65), Some(0)));
    assert_eq!(link["confidence"], "possible");
}

#[test]
fn seed_004_uksmd_holds_the_page_lock() {
    let v = json(&["tests/data/seed-004/messages.log"]);
    let root = &v["diagnosis"]["root"];
    assert_eq!((root["task"]["comm"].as_str(), root["task"]["pid"].as_u64()), (Some("uksmd"), Some(81)));
    assert!(root["reason"].as_str().unwrap().contains("page lock"));
    let stuck = v["incidents"][0]["stuck"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = stuck
        .iter()
        .map(|s| (s["subject"]["task"]["comm"].as_str().unwrap(), s["wait"]["kind"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("khugepaged", "rwsem_write")) && kinds.contains(&("zeusmp_base.amd", "rwsem_read")),
        "{kinds:?}"
    );
}

golden!(syzbot_lockdep_holder, "tests/data/syzbot/367.log");

#[test]
fn lockdep_listing_names_the_mutex_holder() {
    // syzbot 367: syz-executor.0:6102 hangs in mutex_lock; lockdep lists &rp->fetch_lock for it
    // (being acquired) and for syz-executor.0:6065 (holding it).
    let v = json(&["tests/data/syzbot/367.log"]);
    let link = &v["diagnosis"]["chain"][0];
    assert_eq!(link["waiter"]["task"]["pid"], 6102);
    assert_eq!(link["waits_for"]["task"]["pid"], 6065);
    assert_eq!(link["via"], "mutex &rp->fetch_lock");
    assert_eq!(v["diagnosis"]["root"]["task"]["pid"], 6065);
}

#[test]
fn hosts_and_boots_are_kept_apart() {
    // Seed 004's syslog interleaved line by line with a copy of itself from another host
    // (a synthetic mix of real lines), then a reboot banner and seed 004 again: three
    // incidents, on two hosts and two boots.
    let log = std::fs::read_to_string(root().join("tests/data/seed-004/messages.log")).unwrap();
    let mut mixed = String::new();
    for l in log.lines() {
        mixed.push_str(l);
        mixed.push('\n');
        mixed.push_str(&l.replace(" localhost kernel: ", " otherhost kernel: "));
        mixed.push('\n');
    }
    mixed.push_str("Mar 28 09:00:00 localhost kernel: [    0.000000] Linux version 2.6.32 (mock@build)\n");
    mixed.push_str(&log);
    let dir = std::env::temp_dir().join(format!("lockscope-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("messages");
    std::fs::write(&p, mixed).unwrap();
    let v = json(&[p.to_str().unwrap()]);
    let incidents = v["incidents"].as_array().unwrap();
    let keys: Vec<(String, u64)> =
        incidents.iter().map(|i| (i["host"].as_str().unwrap().to_string(), i["boot"].as_u64().unwrap())).collect();
    assert_eq!(keys, vec![("localhost".into(), 0), ("localhost".into(), 1), ("otherhost".into(), 0)]);
    for i in incidents {
        assert_eq!(i["root"]["task"]["comm"], "uksmd", "{}", i["summary"]);
    }
}
