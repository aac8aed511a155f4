//! Spinlocks from memory: the lock each spinning CPU waits for (the first argument, RDI, of
//! its spinlock slow path, read at the spinning instruction), the lock word decoded
//! (queued spinlock: locked byte, pending byte, tail CPU), what the address is (a symbol, a
//! per-CPU variable, a slab object, a member of a node's data), and
//! the tasks that may hold it — those whose stack or saved registers hold the address while
//! they do not spin on it themselves.

use lockscope_facts::TaskRef;
use lockscope_facts::machine::{CpuState, HolderCandidate, LockState, MemoryRead};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::locks::QspinlockValue;
use std::collections::BTreeMap;

/// The queued-spinlock slow paths (the native one, the paravirt wrappers, older names).
const SPIN_SLOWPATHS: &[&str] = &[
    "native_queued_spin_lock_slowpath",
    "queued_spin_lock_slowpath",
    "__pv_queued_spin_lock_slowpath",
    "pv_queued_spin_lock_slowpath",
];
/// Candidate holders listed at most per lock.
const MAX_CANDIDATES: usize = 16;

/// The lock address a spinning CPU's innermost slow-path frame holds in RDI, when all its
/// registers are known there (the CPU's note, or the NMI's saved frame).
fn spun_lock(c: &CpuState) -> Option<u64> {
    let f = c.stack.iter().find(|f| SPIN_SLOWPATHS.contains(&f.function.as_str()))?;
    f.registers.iter().find(|r| r.0 == "rdi").map(|r| r.1)
}

pub fn spinlocks(k: &Kernel, cpus: &[CpuState], unknown: &mut Vec<String>) -> Vec<LockState> {
    let mut by_lock: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for c in cpus {
        if let Some(lock) = spun_lock(c) {
            by_lock.entry(lock).or_default().push(c.cpu);
        }
    }
    by_lock
        .into_iter()
        .map(|(address, waiters)| {
            let value = k.memory().read_u32(address).map(u64::from);
            if let Err(e) = &value {
                unknown.push(format!("spinlock at {address:#x}: {e}"));
            }
            let value = value.ok();
            let decoded = value.map(|v| QspinlockValue::decode(v as u32));
            let queue = match value.map(|v| k.qspinlock_queue(v as u32)) {
                Some(Ok(q)) => q.iter().map(|n| n.cpu).collect(),
                Some(Err(e)) => {
                    unknown.push(format!("queue of the spinlock at {address:#x}: {e}"));
                    Vec::new()
                }
                None => Vec::new(),
            };
            let symbol = k.whatis(address).map(|o| o.to_string());
            let waiting_tasks: Vec<u32> = cpus
                .iter()
                .filter(|c| waiters.contains(&c.cpu))
                .filter_map(|c| c.task.as_ref().map(|t| t.pid))
                .collect();
            LockState {
                address,
                kind: "spinlock".into(),
                bit: None,
                task_waiters: Vec::new(),
                owner: None,
                value,
                locked: decoded.map(|d| d.locked),
                queued_cpu: decoded.and_then(|d| d.tail).map(|t| t.0),
                pending: decoded.map(|d| d.pending),
                queue,
                symbol,
                candidate_holders: holders(k, address, &waiting_tasks),
                waiters,
                origin: vec![
                    MemoryRead::new(address, "the lock word (RDI of the spinning slow path)")
                        .crash(format!("struct qspinlock {address:#x}")),
                ],
            }
        })
        .collect()
}

/// Tasks (other than the waiters) whose kernel stack holds `address`, innermost word first.
pub(crate) fn holders(k: &Kernel, address: u64, waiting_pids: &[u32]) -> Vec<HolderCandidate> {
    let Ok((tasks, _)) = k.tasks() else { return Vec::new() };
    let size = 16 << 10;
    let mut out = Vec::new();
    for t in tasks.iter().filter(|t| !waiting_pids.contains(&t.pid) && t.stack != 0) {
        let Ok(words) = k.memory().read_vec(t.stack, size) else { continue };
        // From the saved stack pointer up: below it lie stale words of returned calls.
        let from = t.thread_sp.saturating_sub(t.stack).min(size as u64) as usize & !7;
        let Some(at) =
            words[from..].chunks_exact(8).position(|w| u64::from_le_bytes(w.try_into().expect("8")) == address)
        else {
            continue;
        };
        let word = t.stack + (from + at * 8) as u64;
        let frame = k.task_trace(t).ok().and_then(|tr| {
            tr.frames
                .iter()
                .rev()
                .find(|f| f.sp <= word)
                .and_then(|f| k.lookup_address(f.lookup_pc()).map(|s| s.name.to_string()))
        });
        out.push(HolderCandidate {
            task: TaskRef { comm: t.comm.clone(), pid: t.pid },
            cpu: t.current_on,
            state: t.state_letter.to_string(),
            frame,
            origin: MemoryRead::new(word, format!("stack word of pid {} holding {address:#x}", t.pid))
                .crash(format!("search -t {address:x}")),
        });
        if out.len() >= MAX_CANDIDATES {
            break;
        }
    }
    out
}
