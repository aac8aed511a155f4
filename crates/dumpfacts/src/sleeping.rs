//! Sleeping locks from memory: what each task in D state waits for, found the way the kernel
//! queues it — a waiter structure on the task's own stack whose `task` field is the task —
//! and the lock at the head of that wait list with the owner it records.
//! - rwsem (`struct rwsem_waiter` on `rw_semaphore.wait_list`): owner from `owner` when held
//!   for write; held for read, `owner` keeps the last reader only (a hint).
//! - mutex (`struct mutex_waiter` on `mutex.wait_list`): owner = `owner & ~flags`.
//! - semaphore (`struct semaphore_waiter` on `semaphore.wait_list`): no owner recorded; taken
//!   when `count` is 0; the tasks whose stacks hold its address are the candidates.
//! - bit locks and bit waits (`struct wait_bit_queue_entry` with `wake_bit_function`): the
//!   word and bit from its key; no owner recorded, so the tasks whose stacks hold the word's
//!   address are the candidates (the waiter itself among them: a task can wait for a bit it
//!   holds).
//! - page locks and page bit waits (`struct wait_page_queue` with `wake_page_function`): the
//!   folio (or page, before 5.16) and the bit; `PG_locked` makes it a page lock. Candidates as
//!   for bit locks.
//! - completions (`struct swait_queue` on `completion.wait.task_list`): nothing records who
//!   will complete one; the completion's address and what holds it are the facts.

use crate::locks::holders;
use lockscope_facts::TaskRef;
use lockscope_facts::machine::{LockOwner, LockState, MemoryRead};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::Structure;
use lockscope_kernel::tasks::Task;
use std::collections::{BTreeMap, HashSet};

/// Waiters on one list at most.
const MAX_WAITERS: usize = 4096;
/// rwsem `owner` flag bits; `count` bit 0 = held for write.
const RWSEM_OWNER_FLAGS: u64 = 0x7;
const RWSEM_WRITER_LOCKED: u64 = 0x1;
const RWSEM_READER_OWNED: u64 = 0x1;
const MUTEX_FLAGS: u64 = 0x7;

/// A kind of waiter: its struct, the lock struct whose `wait_list` it hangs on.
struct WaiterKind {
    waiter: &'static str,
    lock: &'static str,
    kind: &'static str,
}

const WAITERS: [WaiterKind; 3] = [
    WaiterKind { waiter: "rwsem_waiter", lock: "rw_semaphore", kind: "rwsem" },
    WaiterKind { waiter: "mutex_waiter", lock: "mutex", kind: "mutex" },
    WaiterKind { waiter: "semaphore_waiter", lock: "semaphore", kind: "semaphore" },
];

/// The lock each D-state task waits for, merged per lock.
pub fn sleeping_locks(k: &Kernel, unknown: &mut Vec<String>) -> Vec<LockState> {
    let Ok((tasks, _)) = k.tasks() else { return Vec::new() };
    let size = k.thread_size().unwrap_or(crate::locks::DEFAULT_STACK);
    let stacks: Vec<(u64, u64)> = tasks.iter().filter(|t| t.stack != 0).map(|t| (t.stack, t.stack + size)).collect();
    let task_addresses: HashSet<u64> = tasks.iter().map(|t| t.address).collect();
    let mut locks: BTreeMap<(u64, Option<u32>), LockState> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.state_code == "UN" && t.current_on.is_none()) {
        let Ok(words) = k.memory().read_vec(t.stack, size as usize) else {
            unknown.push(format!("stack of pid {}: not in the dump", t.pid));
            continue;
        };
        let from = t.thread_sp.saturating_sub(t.stack).min(size) as usize & !7;
        let me = TaskRef { comm: t.comm.clone(), pid: t.pid };
        for (i, w) in words[from..].chunks_exact(8).enumerate() {
            if u64::from_le_bytes(w.try_into().expect("8")) != t.address {
                continue;
            }
            let at = t.stack + (from + i * 8) as u64;
            let found = list_waiter(k, t, at, &stacks)
                .or_else(|| bit_waiter(k, at))
                .or_else(|| page_waiter(k, at))
                .or_else(|| completion_waiter(k, t, at, &task_addresses));
            if let Some(found) = found {
                let entry = locks.entry((found.address, found.bit)).or_insert_with(|| found.lock(k));
                entry.task_waiters.push((me.clone(), found.mode));
                break;
            }
        }
    }
    let mut out: Vec<LockState> = locks.into_values().collect();
    for l in out.iter_mut().filter(|l| matches!(l.kind.as_str(), "bit_lock" | "page_lock" | "completion" | "semaphore"))
    {
        l.candidate_holders = holders(k, l.address, &[]);
    }
    out
}

/// What a waiter structure says.
struct Found {
    kind: &'static str,
    address: u64,
    bit: Option<u32>,
    mode: String,
    origin: MemoryRead,
}

impl Found {
    fn lock(&self, k: &Kernel) -> LockState {
        let value = k.memory().read_u64(self.address).ok();
        let (locked, owner) = match self.kind {
            "rwsem" => rwsem_owner(k, self.address),
            "mutex" => mutex_owner(k, self.address),
            "bit_lock" | "page_lock" => (value.zip(self.bit).map(|(v, b)| v >> b & 1 == 1), None),
            "completion" => (k.object(self.address, "struct completion").ok().and_then(completion_pending), None),
            "semaphore" => (semaphore_taken(k, self.address), None),
            _ => (None, None),
        };
        LockState {
            address: self.address,
            kind: self.kind.into(),
            bit: self.bit,
            value,
            locked,
            queued_cpu: None,
            pending: None,
            queue: Vec::new(),
            symbol: k.whatis(self.address).map(|o| o.to_string()),
            waiters: Vec::new(),
            task_waiters: Vec::new(),
            owner,
            found_by: None,
            candidate_holders: Vec::new(),
            origin: vec![self.origin.clone()],
        }
    }
}

/// A `*_waiter { list, task, … }` whose `task` is at `at`: the lock is the one whose
/// `wait_list` is the list's head, the one node not on any task's stack.
fn list_waiter(k: &Kernel, t: &Task, at: u64, stacks: &[(u64, u64)]) -> Option<Found> {
    for w in &WAITERS {
        let Ok(task_off) = k.offset_of(w.waiter, "task") else { continue };
        let Ok(list_off) = k.offset_of(w.waiter, "list") else { continue };
        let node = at.checked_sub(task_off)? + list_off;
        if !is_list_node(k, node) {
            continue;
        }
        let walk = k.list_nodes(node, Structure::WaitList { waiter: node }, MAX_WAITERS);
        if walk.damage.is_some() || walk.nodes.is_empty() {
            continue;
        }
        let on_stack = |a: u64| stacks.iter().any(|&(s, e)| a >= s && a < e);
        let heads: Vec<u64> = walk.nodes.iter().copied().filter(|&n| !on_stack(n)).collect();
        let [head] = heads.as_slice() else { continue };
        let Ok(wl) = k.offset_of(w.lock, "wait_list") else { continue };
        let lock = head.checked_sub(wl)?;
        let mode = match w.kind {
            "rwsem" => k
                .object(node - list_off, &format!("struct {}", w.waiter))
                .and_then(|o| o.member("type")?.read_int())
                .map_or("?".to_string(), |ty| if ty == 0 { "write".into() } else { "read".into() }),
            _ => "lock".into(),
        };
        return Some(Found {
            kind: w.kind,
            address: lock,
            bit: None,
            mode,
            origin: MemoryRead::new(node - list_off, format!("struct {} on the stack of pid {}", w.waiter, t.pid))
                .crash(format!("struct {} {:#x}", w.waiter, node - list_off)),
        });
    }
    None
}

/// Whether `node` is a `list_head` linked both ways with its neighbours: checked before a
/// walk, so that a word that only looks like a waiter's is not reported as a damaged list.
fn is_list_node(k: &Kernel, node: u64) -> bool {
    let m = k.memory();
    let kernel = |p: u64| p != 0 && p.is_multiple_of(8) && m.address_space().is_kernel_address(p);
    let (Ok(next), Ok(prev)) = (m.read_u64(node), m.read_u64(node + 8)) else { return false };
    kernel(next) && kernel(prev) && m.read_u64(next + 8).ok() == Some(node) && m.read_u64(prev).ok() == Some(node)
}

/// A `wait_bit_queue_entry` whose `wq_entry.private` is at `at` and whose `func` is
/// `wake_bit_function`: the task waits for bit `key.bit_nr` of the word `key.flags`.
fn bit_waiter(k: &Kernel, at: u64) -> Option<Found> {
    let private = k.offset_of("wait_bit_queue_entry", "wq_entry.private").ok()?;
    let entry = k.object(at.checked_sub(private)?, "struct wait_bit_queue_entry").ok()?;
    let func = entry.member("wq_entry.func").ok()?.read_u64().ok()?;
    if k.symbol("wake_bit_function").ok()? != func {
        return None;
    }
    let word = entry.member("key.flags").ok()?.read_u64().ok()?;
    let bit = entry.member("key.bit_nr").ok()?.read_int().ok()? as u32;
    Some(Found {
        kind: "bit_lock",
        address: word,
        bit: Some(bit),
        mode: "lock".into(),
        origin: MemoryRead::new(entry.address, "struct wait_bit_queue_entry on the waiter's stack")
            .crash(format!("struct wait_bit_queue_entry {:#x}", entry.address)),
    })
}

/// A `wait_page_queue` whose `wait.private` is at `at` and whose `wait.func` is
/// `wake_page_function`: the task waits for bit `bit_nr` of a folio's (a page's) flags.
fn page_waiter(k: &Kernel, at: u64) -> Option<Found> {
    let private = k.offset_of("wait_page_queue", "wait.private").ok()?;
    let queue = k.object(at.checked_sub(private)?, "struct wait_page_queue").ok()?;
    let func = queue.member("wait.func").ok()?.read_u64().ok()?;
    if k.symbol("wake_page_function").ok()? != func {
        return None;
    }
    // 5.16 and later wait on a folio, before on a page; `flags` leads both.
    let (holder, page) =
        ["folio", "page"].into_iter().find_map(|m| Some((m, queue.member(m).ok()?.read_u64().ok()?)))?;
    let flags = page + k.offset_of(holder, "flags").ok()?;
    let bit = queue.member("bit_nr").ok()?.read_int().ok()? as u32;
    let pg_locked = k.btf().ok()?.find_enumerator("PG_locked").map(|(_, e)| e.raw as u32);
    Some(Found {
        kind: if pg_locked == Some(bit) { "page_lock" } else { "bit_lock" },
        address: flags,
        bit: Some(bit),
        mode: "lock".into(),
        origin: MemoryRead::new(
            queue.address,
            format!("struct wait_page_queue on the waiter's stack ({holder} {page:#x})"),
        )
        .crash(format!("struct wait_page_queue {:#x}", queue.address)),
    })
}

/// A `swait_queue { task, task_list }` whose `task` is at `at`: the list's head, the one
/// node whose `task` slot holds no task, is a completion's `wait.task_list`.
fn completion_waiter(k: &Kernel, t: &Task, at: u64, tasks: &HashSet<u64>) -> Option<Found> {
    let task_off = k.offset_of("swait_queue", "task").ok()?;
    let list_off = k.offset_of("swait_queue", "task_list").ok()?;
    let node = at.checked_sub(task_off)? + list_off;
    if !is_list_node(k, node) {
        return None;
    }
    let walk = k.list_nodes(node, Structure::WaitList { waiter: node }, MAX_WAITERS);
    if walk.damage.is_some() {
        return None;
    }
    let holds_task = |n: u64| k.memory().read_u64(n - list_off + task_off).is_ok_and(|v| tasks.contains(&v));
    let heads: Vec<u64> = walk.nodes.iter().copied().filter(|&n| n != node && !holds_task(n)).collect();
    let [head] = heads.as_slice() else { return None };
    let completion = head.checked_sub(k.offset_of("completion", "wait.task_list").ok()?)?;
    Some(Found {
        kind: "completion",
        address: completion,
        bit: None,
        mode: "wait".into(),
        origin: MemoryRead::new(node - list_off, format!("struct swait_queue on the stack of pid {}", t.pid))
            .crash(format!("struct completion {completion:#x}")),
    })
}

/// A semaphore with no count left (`count` 0): taken as many times as it allows.
fn semaphore_taken(k: &Kernel, sem: u64) -> Option<bool> {
    let count = k.object(sem, "struct semaphore").ok()?.member("count").ok()?.read_int().ok()?;
    Some(count as u32 as i32 <= 0)
}

/// A completion not yet completed (`done` is 0): its waiters still wait.
fn completion_pending(c: lockscope_kernel::object::Object<'_>) -> Option<bool> {
    Some(c.member("done").ok()?.read_int().ok()? == 0)
}

fn task_ref(k: &Kernel, task: u64) -> Option<TaskRef> {
    let t = k.task(task).ok()?;
    Some(TaskRef { comm: t.comm, pid: t.pid })
}

/// (held, owner) of an rwsem: held for write → the writer; for read → the last reader.
fn rwsem_owner(k: &Kernel, sem: u64) -> (Option<bool>, Option<LockOwner>) {
    let Ok(o) = k.object(sem, "struct rw_semaphore") else { return (None, None) };
    let count = o.member("count").and_then(|c| c.read_int()).ok();
    let Ok(owner_field) = o.member("owner") else { return (count.map(|c| c != 0), None) };
    let owner = owner_field.read_int().ok();
    let held = count.map(|c| c & RWSEM_WRITER_LOCKED != 0 || c >> 8 != 0);
    let who = owner.and_then(|v| {
        let task = task_ref(k, v & !RWSEM_OWNER_FLAGS)?;
        let how = if v & RWSEM_READER_OWNED != 0 { "last reader" } else { "writer" };
        Some(LockOwner {
            task,
            how: how.into(),
            origin: MemoryRead::new(owner_field.address, "rw_semaphore.owner")
                .crash(format!("struct rw_semaphore {sem:#x}")),
        })
    });
    (held, who)
}

fn mutex_owner(k: &Kernel, m: u64) -> (Option<bool>, Option<LockOwner>) {
    let Ok(o) = k.object(m, "struct mutex").and_then(|o| o.member("owner")) else { return (None, None) };
    let Ok(v) = o.read_int() else { return (None, None) };
    let owner = task_ref(k, v & !MUTEX_FLAGS).map(|task| LockOwner {
        task,
        how: "owner".into(),
        origin: MemoryRead::new(o.address, "mutex.owner").crash(format!("struct mutex {m:#x}")),
    });
    (Some(v & !MUTEX_FLAGS != 0), owner)
}
