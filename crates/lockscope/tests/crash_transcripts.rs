//! crash session transcripts (seeds 000, 001, 002 as the engineers saved them, in
//! tests/data/seed-00N/crash-session.txt) read like any log: `bt` blocks are backtraces of
//! their CPUs with the exception frame's registers, `sys`'s PANIC line is the panic, and the
//! diagnosis reaches the experts' conclusions where the transcript holds the evidence.

mod common;
#[path = "common/corpus.rs"]
mod corpus;

use common::run;
use serde_json::Value;

fn analyze(path: &str) -> Value {
    let (out, err, code) = run(&["analyze", "--json", path]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn stuck(v: &Value, cpu: u64) -> &Value {
    v["incidents"][0]["stuck"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"]["cpu"] == cpu)
        .unwrap_or_else(|| panic!("CPU {cpu} not stuck: {:#}", v["incidents"][0]["stuck"]))
}

/// Seeds 000 and 001 (one dump, two sessions): CPU 1 waits in smp_call_function_many for a
/// cross-CPU call; CPU 3 spins with interrupts off on the lock in RDI of its exception frame.
/// The call's target is CPU 3 by the `dis` listing of the wait loop read with CPU 1's
/// registers (RAX indexes the per-CPU offsets); the lock word crash printed is 1 (held); in
/// seed 000, `runq -T` shows CPU 3's clock 27.95 s behind and the lock lies in the zone
/// "DMA32" that R14 points at. The root is CPU 3's spin, its holder unknown.
#[test]
fn seeds_000_and_001_cpu_1_waits_for_cpu_3_spinning_on_the_zone_lock() {
    for seed in ["tests/data/seed-000/crash-session.txt", "tests/data/seed-001/crash-session.txt"] {
        let v = analyze(seed);
        assert_eq!(v["incidents"].as_array().unwrap().len(), 1, "{seed}");
        assert!(
            v["incidents"][0]["counts"].to_string().contains("soft_lockup"),
            "{seed}: {}",
            v["incidents"][0]["counts"]
        );
        let cpu1 = stuck(&v, 1);
        assert_eq!(cpu1["subject"]["task"]["pid"], 61, "{seed}");
        assert_eq!(
            (cpu1["wait"]["kind"].as_str(), cpu1["wait"]["function"].as_str()),
            (Some("csd_ipi"), Some("smp_call_function_many")),
            "{seed}"
        );
        assert_eq!(cpu1["wait"]["target_cpus"], serde_json::json!([3]), "{seed}");
        let cpu3 = stuck(&v, 3);
        assert_eq!(cpu3["subject"]["task"]["comm"], "yum", "{seed}");
        assert_eq!(cpu3["irqs_enabled"], false, "{seed}: RFLAGS 0x2");
        assert_eq!(cpu3["wait"]["kind"], "spinlock", "{seed}");
        assert_eq!(cpu3["wait"]["lock_address"], "0xffff8f6f7ffd2bc0", "{seed}");
        let why3 = cpu3["wait"]["reasoning"].to_string();
        assert!(why3.contains("RFLAGS = 0x2"), "{seed}: {why3}");
        assert!(why3.contains("is 0x1: held"), "{seed}: the qspinlock crash printed: {why3}");
        let chain = v["diagnosis"]["chain"].as_array().unwrap();
        let ipi = chain.iter().find(|l| l["waiter"]["cpu"] == 1).unwrap();
        assert_eq!((ipi["waits_for"]["cpu"].as_u64(), ipi["confidence"].as_str()), (Some(3), Some("likely")), "{seed}");
        let why = ipi["reasoning"].as_str().unwrap();
        assert!(why.contains("`dis`") && why.contains("RAX = 0x3"), "{seed}: say which evidence: {why}");
        let root = &v["diagnosis"]["root"];
        assert_eq!(root["cpu"], 3, "{seed}");
        assert!(root["reason"].as_str().unwrap().contains("holder the input does not show"), "{seed}");
        // The frames are named, never `?`.
        let (text, _, _) = run(&["analyze", seed]);
        assert!(!text.contains("runs ?"), "{seed}: {text}");
        assert!(text.contains("FROM THE CRASH SESSION'S OUTPUT"), "{seed}");
    }
    let v = analyze("tests/data/seed-000/crash-session.txt");
    let root = &v["diagnosis"]["root"];
    assert!(root["reason"].as_str().unwrap().contains("struct zone 0xffff8f6f7ffd2680 \"DMA32\""), "{root}");
    assert!(stuck(&v, 3)["wait"]["reasoning"].to_string().contains("R14 = 0xffff8f6f7ffd2680"));
    let ipi = &v["diagnosis"]["chain"][0];
    assert!(ipi["reasoning"].as_str().unwrap().contains("27.95 s behind"), "runq -T: {ipi}");
    let cpus = v["machine"][0]["cpus"].as_array().unwrap();
    let lag: Vec<u64> = cpus.iter().map(|c| c["clock_lag_ns"].as_u64().unwrap()).collect();
    assert_eq!(lag, vec![0, 70_000_000, 25_840_000_000, 27_950_000_000]);
}

/// Seed 002: CPU 10 spins in put_compound_page with interrupts off (the NMI watchdog's
/// panic path is not where it loops); the one task switched out right inside
/// put_compound_page, pid 24194, is the likely holder, sleeping while holding the lock.
#[test]
fn seed_002_the_task_switched_out_inside_put_compound_page_holds_the_bit_lock() {
    let v = analyze("tests/data/seed-002/crash-session.txt");
    let cpu10 = stuck(&v, 10);
    assert_eq!(cpu10["subject"]["task"]["pid"], 24023);
    assert_eq!(cpu10["irqs_enabled"], false);
    assert_eq!(cpu10["wait"]["function"], "put_compound_page");
    // The `dis` lines around RIP with R12: bit 24 of the head page's flags; `kmem` names it.
    assert_eq!(
        (cpu10["wait"]["kind"].as_str(), cpu10["wait"]["lock_address"].as_str(), cpu10["wait"]["lock_bit"].as_u64()),
        (Some("bit_spinlock"), Some("0xffffea0123300000"), Some(24))
    );
    assert!(cpu10["wait"]["reasoning"].to_string().contains("PG_compound_lock of page 0xffffea0123300000"));
    let root = &v["diagnosis"]["root"];
    assert_eq!((root["task"]["pid"].as_u64(), root["kind"].as_str()), (Some(24194), Some("sleeps_holding_spinlock")));
    assert_eq!(root["confidence"], "likely");
    let link = &v["diagnosis"]["chain"][0];
    assert_eq!((link["waiter"]["cpu"].as_u64(), link["waits_for"]["task"]["pid"].as_u64()), (Some(10), Some(24194)));
    let why = link["reasoning"].as_str().unwrap();
    assert!(why.contains("switched out right inside put_compound_page"), "{why}");
    assert!(why.contains("lock btsl $0x18,(%r12)`: the code it stopped in takes the same bit"), "{why}");
    assert_eq!(link["lock"]["symbol"], "PG_compound_lock of page 0xffffea0123300000");
    assert!(why.contains("= 34: 34 fas_readwriter tasks have put_compound_page in their traces"), "{why}");
    // The task's `CPU: 3` is where it last ran: CPU 3 is not reported stuck.
    assert!(v["incidents"][0]["stuck"].as_array().unwrap().iter().all(|s| s["subject"]["cpu"] != 3));
}

/// The crash sessions stored beside the corpus dumps (`crash.txt`: `sys; bt -a; runq -T;
/// foreach UN bt; ps -m; log | tail -80`) give the truth's root where they hold its evidence:
/// the self-deadlocked task of the rwsem chain, the RCU reader's CPU, the oops. The IPI cases'
/// sessions lack it (crash misses the holder's task, the log tail lost the "scheduling while
/// atomic" line): the root stays at the spinning CPU, its holder said to be unknown.
#[test]
fn corpus_crash_sessions_give_the_truths_root_where_they_hold_its_evidence() {
    let Some(shared) = corpus::shared() else {
        eprintln!("note: ../shared not found; corpus crash-session test skipped");
        return;
    };
    for case in corpus::cases(&shared, "corpus") {
        let transcript = case.join("crash.txt");
        let truth: Value = serde_json::from_slice(&std::fs::read(case.join("truth.json")).unwrap()).unwrap();
        let v = analyze(transcript.to_str().unwrap());
        let root = &v["diagnosis"]["root"];
        let want = &truth["expected"]["root_cause"];
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        match want["kind"].as_str().unwrap() {
            "sleep_while_holding_spinlock" => {
                assert_eq!((root["kind"].as_str(), root["cpu"].as_u64()), (Some("unknown"), Some(3)), "{name}: {root}");
                assert!(root["reason"].as_str().unwrap().contains("holder the input does not show"), "{name}");
            }
            "null_pointer_dereference" => assert_eq!(root["kind"], "crash", "{name}"),
            kind => {
                assert_eq!(root["task"]["pid"], want["pid"], "{name}: {root}");
                let ours = if kind == "self_deadlock_bit_lock" { "self_deadlock" } else { "preempt_off_loop" };
                assert_eq!(root["kind"], ours, "{name}");
            }
        }
    }
}

/// Transcripts as they arrive: cut in the middle of a block, two sessions pasted one after
/// the other (two machines: two incidents, not one), crash's own error lines. Partial
/// results, exit 0, never a panic.
#[test]
fn cut_concatenated_and_erroneous_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &str| std::fs::read(common::root().join(p)).unwrap();
    let s000 = read("tests/data/seed-000/crash-session.txt");
    let s001 = read("tests/data/seed-001/crash-session.txt");
    let s002 = read("tests/data/seed-002/crash-session.txt");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Cut inside CPU 1's register block: CPU 1's wait is still read.
    let cut = write("cut.txt", &s001[..2500]);
    let v = analyze(&cut);
    assert_eq!(stuck(&v, 1)["wait"]["kind"], "csd_ipi");
    // Seed 001 then seed 002: two dumps, two incidents, each with its own root.
    let two = write("two.txt", &[s001.as_slice(), s002.as_slice()].concat());
    let v = analyze(&two);
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{:#}", v["incidents"]);
    let roots: Vec<(Option<u64>, Option<u64>)> =
        incidents.iter().map(|i| (i["root"]["cpu"].as_u64(), i["root"]["task"]["pid"].as_u64())).collect();
    assert!(roots.contains(&(Some(3), Some(2818))) && roots.contains(&(None, Some(24194))), "{roots:?}");
    // The quoted session without a `RELEASE:` line, then another: still read.
    let quoted = write("quoted.txt", &[s000.as_slice(), s002.as_slice()].concat());
    assert!(analyze(&quoted)["incidents"].as_array().unwrap().len() >= 2);
    // crash's errors are not reports.
    let err = write(
        "err.txt",
        b"crash> bt 99999\nbt: invalid task or pid value: 99999\ncrash> bt -c 7\nbt: invalid cpu number: 7\n",
    );
    let (out, stderr, code) = run(&["analyze", &err]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("0 event(s)"), "{out}");
}

/// A lockup report cut to its headline (seed 001's `log | grep BUG` line alone): what the CPU
/// runs is unknown, said as unknown — never "nothing (running) [certain]".
#[test]
fn a_cpu_whose_stack_the_input_does_not_show_waits_for_the_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("grep.txt");
    std::fs::write(&p, "[ 1552.035262] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:1:61]\n").unwrap();
    let v = analyze(p.to_str().unwrap());
    let s = stuck(&v, 1);
    assert_eq!((s["wait"]["kind"].as_str(), s["wait"]["confidence"].as_str()), (Some("unknown"), Some("possible")));
    assert_eq!(
        (v["diagnosis"]["root"]["kind"].as_str(), v["diagnosis"]["root"]["confidence"].as_str()),
        (Some("unknown"), Some("possible"))
    );
    let (text, _, _) = run(&["analyze", p.to_str().unwrap()]);
    // Words, not lines: the report wraps its sentences.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("runs code the input does not show") && !words.contains("runs ?"), "{text}");
}

/// A `bt -a` alone, no report in it (what `lockscope bt -a` prints of the repo's real
/// ipi_sleeping_holder dump, as a user would paste crash's): the CPUs it shows spinning make
/// the incident — CPU 3 on the lock in RDI with interrupts off, CPU 1 in the cross-CPU call
/// waiting for it — instead of "only informational reports".
#[test]
fn a_backtrace_only_session_shows_the_spinning_cpus() {
    let dump = common::root().join("tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let (bt, err, code) = run(&["bt", "-a", dump.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = std::env::temp_dir().join(format!("lockscope-bt-only-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bt-a.txt");
    std::fs::write(&path, &bt).unwrap();
    let v = analyze(path.to_str().unwrap());
    assert_eq!(v["incidents"].as_array().unwrap().len(), 1, "{}", v["diagnosis"]["summary"]);
    assert_eq!(stuck(&v, 3)["wait"]["lock_address"], "0xffffffffc054e0a0");
    assert_eq!(stuck(&v, 1)["wait"]["kind"], "csd_ipi");
    let ipi = v["diagnosis"]["chain"].as_array().unwrap().iter().find(|l| l["waiter"]["cpu"] == 1).cloned().unwrap();
    assert_eq!(ipi["waits_for"]["cpu"], 3);
    assert_eq!(v["diagnosis"]["root"]["cpu"], 3);
    // Idle CPUs stopped by the dump are not stuck.
    assert!(v["incidents"][0]["stuck"].as_array().unwrap().iter().all(|s| s["subject"]["task"]["pid"] != 0));
    // Only the idle CPUs: nothing spins, no incident.
    let idle: String = bt.split("\n\n").filter(|b| b.starts_with("PID: 0 ")).collect::<Vec<_>>().join("\n\n");
    std::fs::write(&path, idle).unwrap();
    let v = analyze(path.to_str().unwrap());
    assert!(v["incidents"].as_array().unwrap().is_empty(), "{}", v["diagnosis"]["summary"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A session on the corpus's hung_rwsem_chain dump (tests/data/crash-sessions: crash's own
/// `sys`, `sym` and `struct rw_semaphore`, with the `foreach UN bt` that crash misses on this
/// dump taken from `lockscope foreach`): the struct print's owner word names the last reader
/// (`owner & ~7` is ksmd_demo's TASK), its wait list points into the frames of the writer
/// and the reader queued behind it, and the root is ksmd_demo's self-deadlock, as on the
/// dump itself.
#[test]
fn a_struct_print_of_the_rwsem_gives_its_owner_and_waiters() {
    let v = analyze("tests/data/crash-sessions/hung_rwsem_chain.session.txt");
    let chain = v["diagnosis"]["chain"].as_array().unwrap();
    let link = |from: u64| chain.iter().find(|l| l["waiter"]["task"]["pid"] == from).cloned().unwrap();
    assert_eq!(link(137)["waits_for"]["task"]["pid"], 136, "the reader queues behind the writer");
    assert_eq!(link(136)["waits_for"]["task"]["pid"], 135, "the writer waits for the last reader");
    let why = link(136)["reasoning"].as_str().unwrap().to_string();
    assert!(why.contains("as the crash session printed it (line 55)"), "{why}");
    assert_eq!(link(136)["lock"]["symbol"], "demo_mm [lockscen]");
    let root = &v["diagnosis"]["root"];
    assert_eq!((root["task"]["pid"].as_u64(), root["kind"].as_str()), (Some(135), Some("self_deadlock")), "{root}");
    // Without the struct print the owner is only inferred (blocked first on something else),
    // with no lock address.
    let text =
        std::fs::read_to_string(common::root().join("tests/data/crash-sessions/hung_rwsem_chain.session.txt")).unwrap();
    let cut = text.split("crash> struct rw_semaphore").next().unwrap();
    let dir = std::env::temp_dir().join(format!("lockscope-rwsem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.txt");
    std::fs::write(&path, cut).unwrap();
    let v = analyze(path.to_str().unwrap());
    let chain = v["diagnosis"]["chain"].as_array().unwrap();
    let inferred = chain.iter().find(|l| l["waiter"]["task"]["pid"] == 136).unwrap();
    assert_eq!(inferred["lock"], Value::Null, "{inferred}");
    assert!(!inferred["reasoning"].as_str().unwrap().contains("crash session printed"), "{inferred}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The corpus's crash session on ipi_sleeping_holder.live (crash.txt, whose tasks list lacks
/// the holder) with a `bt -f` of the sleeping task added: the spinning CPU's lock address
/// (RDI) is on zone_drain's stack, in msleep's frame, and on no other stack shown — the same
/// root as `analyze` on the dump itself, which finds it by searching every stack.
#[test]
fn bt_f_stack_words_name_the_sleeping_holder() {
    let v = analyze("tests/data/crash-sessions/ipi_sleeping_holder.session.txt");
    let root = &v["diagnosis"]["root"];
    assert_eq!(
        (root["task"]["pid"].as_u64(), root["kind"].as_str()),
        (Some(135), Some("sleeps_holding_spinlock")),
        "{root}"
    );
    let link = v["diagnosis"]["chain"].as_array().unwrap().iter().find(|l| l["waiter"]["cpu"] == 3).cloned().unwrap();
    assert_eq!((link["waits_for"]["task"]["pid"].as_u64(), link["confidence"].as_str()), (Some(135), Some("likely")));
    let why = link["reasoning"].as_str().unwrap();
    assert!(why.contains("at 0xffffd31c8035bef8, in the frame of msleep; no other stack shown holds it"), "{why}");
    let truth: Value = match corpus::shared() {
        Some(shared) => {
            serde_json::from_slice(&std::fs::read(shared.join("corpus/ipi_sleeping_holder.live/truth.json")).unwrap())
                .unwrap()
        }
        None => return,
    };
    assert_eq!(root["task"]["pid"], truth["expected"]["root_cause"]["pid"]);
}

/// A session holding only command output, no report and no trace (seed 000's `runq -T`):
/// read, its machine state shown, not rejected as "not a kernel log".
#[test]
fn a_session_of_command_output_alone_is_read() {
    let text = std::fs::read_to_string(common::root().join("tests/data/seed-000/crash-session.txt")).unwrap();
    let runq: String = text
        .lines()
        .filter(|l| l.starts_with("crash> runq") || l.trim_start().starts_with("CPU "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(runq.contains("27.95 secs"), "{runq}");
    let dir = std::env::temp_dir().join(format!("lockscope-runq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runq.txt");
    std::fs::write(&path, &runq).unwrap();
    let v = analyze(path.to_str().unwrap());
    let lags: Vec<u64> =
        v["machine"][0]["cpus"].as_array().unwrap().iter().map(|c| c["clock_lag_ns"].as_u64().unwrap()).collect();
    assert_eq!(lags, vec![0, 70_000_000, 25_840_000_000, 27_950_000_000]);
    assert_eq!(v["machine"][0]["crash_session"], true);
    let _ = std::fs::remove_dir_all(&dir);
}
