//! Spinlocks and rwlocks from memory: the lock each spinning CPU waits for (the first
//! argument, RDI or x0, of its slow path, read at the spinning instruction; a queued rwlock's
//! waiters spin on its `wait_lock`, which names the rwlock), the lock word decoded (queued
//! spinlock: locked byte, pending byte, tail CPU; ticket lock: head and tail; queued rwlock:
//! writer byte and readers), what the address is (a symbol, a
//! per-CPU variable, a slab object, a member of a node's data), and
//! the tasks that may hold it — those whose stack or saved registers hold the address while
//! they do not spin on it themselves.

use lockscope_facts::machine::{CpuState, HolderCandidate, LockState, MemoryRead};
use lockscope_facts::{Frame, TaskRef};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::locks::{QrwlockValue, QspinlockValue, SpinlockValue};
use std::collections::BTreeMap;

/// The queued-spinlock slow paths (the native one, the paravirt wrappers, older names).
const SPIN_SLOWPATHS: &[&str] = &[
    "native_queued_spin_lock_slowpath",
    "queued_spin_lock_slowpath",
    "__pv_queued_spin_lock_slowpath",
    "pv_queued_spin_lock_slowpath",
];
/// Whether a function is a queued spinlock's slow path.
pub(crate) fn is_spin_slowpath(function: &str) -> bool {
    SPIN_SLOWPATHS.contains(&function)
}

/// The queued-rwlock slow paths.
const RWLOCK_SLOWPATHS: &[&str] = &["queued_read_lock_slowpath", "queued_write_lock_slowpath"];
/// The register of a function's first argument, per architecture.
const FIRST_ARGUMENT: &[&str] = &["rdi", "x0"];
/// A task's kernel stack when the symbols do not give its size (x86_64 and arm64 without KASAN).
pub(crate) const DEFAULT_STACK: u64 = 16 << 10;
/// Candidate holders listed at most per lock.
const MAX_CANDIDATES: usize = 16;

/// The lock a spinning CPU waits for, its kind, and which register gave it: the address its
/// innermost slow-path frame's spin loop polls where the architecture decodes that (arm64,
/// whose slow path moves its argument out of x0), else that frame's first argument — when
/// all its registers are known there (the CPU's note, or the NMI's saved frame). A spinlock
/// slow path called from an rwlock's is on that rwlock's `wait_lock`.
fn spun_lock(k: &Kernel, c: &CpuState) -> Option<(u64, &'static str, String)> {
    let is = |f: &Frame, names: &[&str]| names.contains(&f.function.as_str());
    let i = c.stack.iter().position(|f| is(f, SPIN_SLOWPATHS) || is(f, RWLOCK_SLOWPATHS))?;
    let f = &c.stack[i];
    let (arg, found_by) = lock_register(k, f)?;
    if is(f, RWLOCK_SLOWPATHS) {
        return Some((arg, "rwlock", found_by));
    }
    let caller = c.stack[i + 1..].iter().find(|f| f.reliable);
    if caller.is_some_and(|f| is(f, RWLOCK_SLOWPATHS)) {
        let wait_lock = k.offset_of("qrwlock", "wait_lock").ok()?;
        return Some((arg.checked_sub(wait_lock)?, "rwlock", found_by));
    }
    Some((arg, "spinlock", found_by))
}

/// What the read of a spun lock's word says of where the address came from.
fn lock_word_read(found_by: Option<&String>) -> String {
    match found_by {
        Some(how) if how.contains(POLLED) => format!("the lock word ({how})"),
        _ => "the lock word (first argument of the spinning slow path)".into(),
    }
}

/// How a lock address found from a spin loop's loads is described.
const POLLED: &str = "the address its spin loop polls";

/// The register of a slow-path frame that holds the lock, its value, and how it was chosen.
fn lock_register(k: &Kernel, f: &Frame) -> Option<(u64, String)> {
    let names = k.arch().register_names();
    let reg = |n: usize| names.get(n).and_then(|name| f.registers.iter().find(|r| r.0 == *name)).map(|r| r.1);
    if let Some(pc) = f.address
        && let Some((v, r)) = k.arch().polled_address(k, pc, &reg)
    {
        let name = names.get(r).map_or_else(|| format!("register {r}"), |n| n.to_ascii_uppercase());
        return Some((v, format!("{name} of the spinning slow path, {POLLED}")));
    }
    let (name, v) = f.registers.iter().find(|r| FIRST_ARGUMENT.contains(&r.0.as_str()))?;
    Some((*v, format!("{} of the spinning slow path", name.to_ascii_uppercase())))
}

pub fn spinlocks(k: &Kernel, cpus: &[CpuState], unknown: &mut Vec<String>) -> Vec<LockState> {
    let mut by_lock: BTreeMap<(u64, &'static str), Vec<u32>> = BTreeMap::new();
    let mut found_by: BTreeMap<u64, String> = BTreeMap::new();
    for c in cpus {
        if let Some((address, kind, how)) = spun_lock(k, c) {
            by_lock.entry((address, kind)).or_default().push(c.cpu);
            found_by.entry(address).or_insert(how);
        }
    }
    by_lock
        .into_iter()
        .map(|((address, kind), waiters)| {
            let word = LockWord::read(k, address, kind, unknown);
            let value = word.value;
            let symbol = k.whatis(address).map(|o| o.to_string());
            let waiting_tasks: Vec<u32> = cpus
                .iter()
                .filter(|c| waiters.contains(&c.cpu))
                .filter_map(|c| c.task.as_ref().map(|t| t.pid))
                .collect();
            let crash_type = if kind == "rwlock" { "qrwlock" } else { "qspinlock" };
            LockState {
                address,
                kind: kind.into(),
                bit: None,
                task_waiters: Vec::new(),
                owner: None,
                found_by: found_by.get(&address).cloned(),
                value,
                locked: word.locked,
                queued_cpu: word.tail,
                pending: word.pending,
                queue: word.queue,
                symbol,
                candidate_holders: holders(k, address, &waiting_tasks),
                waiters,
                origin: vec![
                    MemoryRead::new(address, lock_word_read(found_by.get(&address)))
                        .crash(format!("struct {crash_type} {address:#x}")),
                ],
            }
        })
        .collect()
}

/// A spinning CPU's lock word, decoded by the lock's kind and this kernel's layout.
#[derive(Default)]
struct LockWord {
    value: Option<u64>,
    locked: Option<bool>,
    pending: Option<bool>,
    /// CPUs queued on a queued spinlock (an rwlock's `wait_lock`), head first; the last
    /// one, as the lock word's tail names it.
    queue: Vec<u32>,
    tail: Option<u32>,
}

impl LockWord {
    fn read(k: &Kernel, address: u64, kind: &str, unknown: &mut Vec<String>) -> LockWord {
        let raw = match k.memory().read_u32(address) {
            Ok(v) => v,
            Err(e) => {
                unknown.push(format!("{kind} at {address:#x}: {e}"));
                return LockWord::default();
            }
        };
        let mut word = LockWord { value: Some(u64::from(raw)), ..LockWord::default() };
        let queue_at = match kind {
            "rwlock" => {
                word.locked = k.version().map(|v| QrwlockValue::decode(raw, v).held());
                k.offset_of("qrwlock", "wait_lock").ok().map(|o| address + o)
            }
            _ => match k.spinlock_value(address) {
                Ok(SpinlockValue::Queued(q)) => {
                    (word.locked, word.pending) = (Some(q.locked), Some(q.pending));
                    Some(address)
                }
                Ok(t) => {
                    word.locked = Some(t.locked());
                    None
                }
                Err(e) => {
                    unknown.push(format!("{kind} at {address:#x}: {e}"));
                    None
                }
            },
        };
        let Some(q) = queue_at else { return word };
        let queued = k.memory().read_u32(q).map_err(|e| e.to_string()).and_then(|v| {
            word.tail = QspinlockValue::decode(v).tail.map(|t| t.0);
            k.qspinlock_queue(v).map_err(|e| e.to_string())
        });
        match queued {
            Ok(nodes) => word.queue = nodes.iter().map(|n| n.cpu).collect(),
            Err(e) => unknown.push(format!("queue of the {kind} at {address:#x}: {e}")),
        }
        word
    }
}

/// Code bytes read around a CPU's RIP, as the kernel's `Code:` line prints them.
const CODE_BEFORE: u64 = 42;
const CODE_AFTER: u64 = 22;

/// The functions whose wait loops other rules read (cross-CPU calls, lock slow paths).
fn in_known_wait(c: &CpuState) -> bool {
    c.stack.iter().any(|f| {
        let n = f.function.as_str();
        SPIN_SLOWPATHS.contains(&n)
            || RWLOCK_SLOWPATHS.contains(&n)
            || ["smp_call_function", "csd_lock_wait", "generic_exec_single"].iter().any(|p| n.starts_with(p))
    })
}

/// The bit of a word the loop at a CPU's interrupted RIP polls, decoded from the code in
/// memory with the registers known there (x86_64).
pub fn cpu_spin_bit(k: &Kernel, c: &CpuState) -> Option<lockscope_x86::SpinBit> {
    let f = crate::events::interrupted(&c.stack).first()?;
    let rip = f.address?;
    let mut regs = crate::events::registers(f);
    regs.get("rax")?;
    regs.set("rip", rip);
    let bytes = k.memory().read_vec(rip.checked_sub(CODE_BEFORE)?, (CODE_BEFORE + CODE_AFTER) as usize).ok()?;
    regs.code = Some(lockscope_facts::CodeBytes { bytes, ip_index: CODE_BEFORE as usize });
    lockscope_x86::spin_bit_loop(regs.code.as_ref()?, &regs)
}

/// CPUs spinning on one bit of a word (an inlined `bit_spin_lock`: the loop goes on while
/// the bit is set), merged per word and bit, with the word as read and the tasks whose stacks
/// hold its address.
pub fn bit_spinlocks(k: &Kernel, cpus: &[CpuState], unknown: &mut Vec<String>) -> Vec<LockState> {
    let mut by_bit: BTreeMap<(u64, u32), Vec<&CpuState>> = BTreeMap::new();
    for c in cpus.iter().filter(|c| c.task.as_ref().is_some_and(|t| t.pid != 0) && !in_known_wait(c)) {
        if let Some(s) = cpu_spin_bit(k, c).filter(|s| s.while_set) {
            by_bit.entry((s.word, s.bit)).or_default().push(c);
        }
    }
    by_bit
        .into_iter()
        .map(|((word, bit), spinning)| {
            let value = match k.memory().read_u64(word) {
                Ok(v) => Some(v),
                Err(e) => {
                    unknown.push(format!("bit spinlock word at {word:#x}: {e}"));
                    None
                }
            };
            let waiting_tasks: Vec<u32> = spinning.iter().filter_map(|c| c.task.as_ref().map(|t| t.pid)).collect();
            LockState {
                address: word,
                kind: "bit_spinlock".into(),
                bit: Some(bit),
                value,
                locked: value.map(|v| v >> bit & 1 == 1),
                queued_cpu: None,
                pending: None,
                queue: Vec::new(),
                symbol: k.whatis(word).map(|o| o.to_string()),
                waiters: spinning.iter().map(|c| c.cpu).collect(),
                task_waiters: Vec::new(),
                owner: None,
                found_by: None,
                candidate_holders: holders(k, word, &waiting_tasks),
                origin: vec![
                    MemoryRead::new(word, format!("the word the spin loop polls (bit {bit})"))
                        .crash(format!("rd {word:x}")),
                ],
            }
        })
        .collect()
}

/// Tasks (other than the waiters) whose kernel stack holds `address`, innermost word first.
pub(crate) fn holders(k: &Kernel, address: u64, waiting_pids: &[u32]) -> Vec<HolderCandidate> {
    let Ok((tasks, _)) = k.tasks() else { return Vec::new() };
    let size = k.thread_size().unwrap_or(DEFAULT_STACK) as usize;
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
