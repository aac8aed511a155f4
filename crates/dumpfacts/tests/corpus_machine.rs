//! Shared-corpus suite for the machine state read from memory: on every x86_64 dump of
//! ../shared/corpus and ../shared/corpus-6.12 (uncompressed formats; the xz copies are the same
//! memory), each CPU of truth.json's waits-for chain has the interrupt and preemption state
//! the truth records, and a CPU waiting for an IPI waits, by its `cfd_data`, for exactly the
//! CPUs the truth names, whose queue holds its call. Skips without ../shared.

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    p.is_dir().then(|| p.canonicalize().unwrap())
}

fn check(case: &Path, dump: &Path, problems: &mut Vec<String>) {
    let truth: Value = serde_json::from_slice(&std::fs::read(case.join("truth.json")).unwrap()).unwrap();
    let k = Kernel::new(Dump::open(dump).unwrap()).unwrap();
    let m = lockscope_dumpfacts::machine_state(&k);
    let who = dump.display();
    for link in truth["expected"]["waits_for_chain"].as_array().into_iter().flatten() {
        let Some(cpu) = link["cpu"].as_u64().map(|c| c as u32) else { continue };
        let Some(state) = m.cpus.iter().find(|c| c.cpu == cpu) else {
            problems.push(format!("{who}: no state for CPU {cpu}"));
            continue;
        };
        let irqs = link["context"]["irqs"].as_str().map(|s| s == "on");
        if irqs.is_some() && state.irqs_enabled != irqs {
            problems.push(format!("{who}: CPU {cpu} irqs {:?}, truth {irqs:?}", state.irqs_enabled));
        }
        if link["context"]["preempt"] == "disabled" && state.preempt_count.is_none_or(|p| p & 0x7fff_ffff == 0) {
            problems.push(format!("{who}: CPU {cpu} preempt_count {:?}, truth: disabled", state.preempt_count));
        }
        if link["waits_for"]["type"] == "csd_ipi" {
            let want: Vec<u32> = link["waits_for"]["target_cpus"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap() as u32)
                .collect();
            let got = m.ipi_waits.iter().find(|w| w.cpu == cpu).map(|w| w.targets.clone());
            if got.as_ref() != Some(&want) {
                problems.push(format!("{who}: CPU {cpu} IPI targets {got:?}, truth {want:?}"));
            }
            for t in &want {
                if !m.pending_calls.iter().any(|p| p.target_cpu == *t && p.source_cpu == Some(cpu) && p.locked) {
                    problems.push(format!("{who}: CPU {t}'s queue lacks CPU {cpu}'s call: {:?}", m.pending_calls));
                }
            }
        }
    }
    // Spinlocks: the lock each spinning CPU waits for is found, taken, with the truth's holder
    // among the candidates.
    let chain = truth["expected"]["waits_for_chain"].as_array().cloned().unwrap_or_default();
    for link in chain.iter().filter(|l| l["waits_for"]["type"] == "spinlock") {
        let want =
            u64::from_str_radix(link["waits_for"]["lock_address"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap();
        let cpu = link["cpu"].as_u64().unwrap() as u32;
        let Some(l) = m.locks.iter().find(|l| l.address == want) else {
            problems.push(format!("{who}: no lock {want:#x} in {:?}", m.locks));
            continue;
        };
        if !l.waiters.contains(&cpu) || l.locked != Some(true) {
            problems.push(format!("{who}: lock {want:#x}: waiters {:?}, locked {:?}", l.waiters, l.locked));
        }
        let holders: Vec<u64> = chain
            .iter()
            .filter(|h| {
                h["holds_addresses"]
                    .as_object()
                    .is_some_and(|a| a.values().any(|v| v.as_str() == link["waits_for"]["lock_address"].as_str()))
            })
            .filter_map(|h| h["pid"].as_u64())
            .collect();
        for pid in holders {
            if !l.candidate_holders.iter().any(|c| u64::from(c.task.pid) == pid) {
                problems.push(format!("{who}: lock {want:#x}: holder pid {pid} not among {:?}", l.candidate_holders));
            }
        }
    }
    if !m.unknown.is_empty() {
        problems.push(format!("{who}: unknown facts {:?}", m.unknown));
    }
}

#[test]
fn cpu_states_and_ipi_waits_match_the_truth() {
    let Some(shared) = shared() else {
        eprintln!("note: ../shared not found; shared-corpus machine-state suite skipped");
        return;
    };
    let mut problems = Vec::new();
    let mut dumps = 0;
    for corpus in ["corpus", "corpus-6.12"] {
        for case in std::fs::read_dir(shared.join(corpus)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
            for dump in std::fs::read_dir(&case).unwrap().map(|e| e.unwrap().path()) {
                let name = dump.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("vmcore") && !name.ends_with(".xz") {
                    check(&case, &dump, &mut problems);
                    dumps += 1;
                }
            }
        }
    }
    assert!(dumps >= 8, "only {dumps} dumps");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn sleeping_tasks_wait_for_the_truths_locks() {
    let Some(shared) = shared() else { return };
    let mut problems = Vec::new();
    for case in ["corpus/hung_rwsem_chain.live", "corpus/hung_rwsem_chain.panic"] {
        let dir = shared.join(case);
        let truth: Value = serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
        let k = Kernel::new(Dump::open(dir.join("vmcore.mkd-zlib-d31")).unwrap()).unwrap();
        let m = lockscope_dumpfacts::machine_state(&k);
        for link in truth["expected"]["waits_for_chain"].as_array().unwrap() {
            let pid = link["pid"].as_u64().unwrap() as u32;
            let want =
                u64::from_str_radix(link["waits_for"]["lock_address"].as_str().unwrap().trim_start_matches("0x"), 16)
                    .unwrap();
            let ty = link["waits_for"]["type"].as_str().unwrap();
            let Some(l) = m.locks.iter().find(|l| l.task_waiters.iter().any(|(t, _)| t.pid == pid)) else {
                problems.push(format!("{case}: pid {pid} waits for nothing found: {:#?}", m.locks));
                continue;
            };
            let mode = &l.task_waiters.iter().find(|(t, _)| t.pid == pid).unwrap().1;
            let kind = match (l.kind.as_str(), mode.as_str()) {
                ("rwsem", "read") => "rwsem_read",
                ("rwsem", "write") => "rwsem_write",
                ("bit_lock", _) => "bit_lock",
                (k, _) => k,
            };
            if l.address != want || kind != ty {
                problems.push(format!("{case}: pid {pid}: {kind} at {:#x}, truth {ty} at {want:#x}", l.address));
            }
            // The owner the lock records (rwsem: the last reader), or the candidates by stack.
            if let Some(owner) = link["waits_for"]["owner_pid"].as_u64() {
                let by_owner = l.owner.as_ref().is_some_and(|o| u64::from(o.task.pid) == owner);
                let by_stack = l.candidate_holders.iter().any(|c| u64::from(c.task.pid) == owner);
                if !by_owner && !by_stack {
                    problems.push(format!(
                        "{case}: pid {pid}: owner {owner} not found: {:?} {:?}",
                        l.owner, l.candidate_holders
                    ));
                }
            }
        }
        assert!(k.damage().is_empty(), "{case}: {:?}", k.damage());
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn rcu_state_names_the_reader_and_the_waiter() {
    let Some(shared) = shared() else { return };
    let dir = shared.join("corpus/rcu_reader_spin.live");
    let truth: Value = serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let k = Kernel::new(Dump::open(dir.join("vmcore.mkd-zlib-d31")).unwrap()).unwrap();
    let r = lockscope_dumpfacts::machine_state(&k).rcu.expect("rcu_state read");
    assert!(r.gp_in_progress);
    for link in truth["expected"]["waits_for_chain"].as_array().unwrap() {
        let pid = link["pid"].as_u64().unwrap() as u32;
        if let Some(cpu) = link["waits_for"]["blocked_by_cpu"].as_u64() {
            assert_eq!(r.waiting_cpus, [cpu as u32]);
            assert!(r.gp_waiters.iter().any(|t| t.pid == pid), "{:?}", r.gp_waiters);
        }
        if link["context"]["rcu_read_lock_nesting"].as_u64().is_some_and(|n| n > 0) {
            let cpu = link["cpu"].as_u64().map(|c| c as u32);
            assert!(r.readers.iter().any(|(t, c)| t.pid == pid && *c == cpu), "{:?}", r.readers);
        }
    }
}
