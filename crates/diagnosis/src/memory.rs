//! The rules that use facts read from a vmcore's memory ([`MachineState`]), beside what the
//! log printed. A fact from memory outranks a reading of the log: the CPUs a cross-CPU call
//! still waits for are in the caller's `cfd_data`; an rwsem or mutex records its owner; a
//! held spinlock's holder is the one task whose stack holds its address. Each link cites the
//! memory it was read from.

use crate::{ChainLink, Evidence, LockRef, Node, Stuck, Wait};
use lockscope_facts::machine::{LockState, MachineState, MemoryRead};
use lockscope_facts::{Confidence, TaskRef, WaitKind};

/// The CPUs a CPU waiting for a cross-CPU call still waits for, from its `cfd_data`.
pub(crate) fn csd_targets(w: &mut Wait, cpu: Option<u32>, m: &MachineState) -> bool {
    let Some(wait) = m.ipi_waits.iter().find(|x| Some(x.cpu) == cpu && !x.targets.is_empty()) else { return false };
    w.target_cpus = wait.targets.clone();
    w.confidence = Confidence::Certain;
    let call = wait.call.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    let targets: Vec<String> = wait.targets.iter().map(|t| format!("CPU {t}")).collect();
    w.reasoning.push(format!(
        "read from memory: cfd_data[{}] still holds the call data for {} locked (CSD_FLAG_LOCK): the call{call} has not run there",
        wait.cpu,
        targets.join(", ")
    ));
    for p in m.pending_calls.iter().filter(|p| p.source_cpu == Some(wait.cpu) && wait.targets.contains(&p.target_cpu)) {
        w.reasoning.push(format!("CPU {}'s call_single_queue still holds it, not run", p.target_cpu));
    }
    true
}

/// The lock a spinning CPU waits for, from memory, when the log did not show it; and what
/// the lock word says.
pub(crate) fn spinlock(w: &mut Wait, cpu: Option<u32>, m: &MachineState) {
    let found = m.locks.iter().find(|l| spins_on(l) && cpu.is_some_and(|c| l.waiters.contains(&c)));
    let found = found.or_else(|| m.locks.iter().find(|l| spins_on(l) && Some(l.address) == w.lock_address));
    let Some(l) = found else { return };
    if w.lock_address.is_none() {
        w.lock_address = Some(l.address);
        w.confidence = Confidence::Likely;
        let how = l.found_by.as_deref().unwrap_or("the first argument of the spinning slow path");
        w.reasoning.push(format!("read from memory: the lock is {:#x}, {how}", l.address));
    }
    if w.lock_address == Some(l.address)
        && let Some(v) = l.value
    {
        let held = if l.locked == Some(true) { "held" } else { "not held any more" };
        let name = lock_name(m, &l.kind, l.address).map(|s| format!(" ({s})")).unwrap_or_default();
        w.reasoning.push(format!("the lock word {} is {v:#x}: {held}{name}", where_read(&l.origin[0])));
    }
}

/// How a link says where its fact comes from: memory, or a crash session's output.
pub(crate) fn read_from(r: &MemoryRead) -> String {
    match r.line {
        Some(line) => format!("as the crash session printed it (line {line})"),
        None => "read from memory".to_string(),
    }
}

/// Where a value was read: memory, or a crash session's line.
pub(crate) fn where_read(r: &MemoryRead) -> String {
    match (r.line, r.crash.as_deref()) {
        (Some(line), Some(cmd)) => format!("crash printed (line {line}, `{cmd}`)"),
        (Some(line), None) => format!("crash printed (line {line})"),
        _ => "in memory".to_string(),
    }
}

/// What a lock is, as far as the facts tell: its symbol, the page flag a bit lock is, or the
/// printed object it lies in.
pub(crate) fn lock_name(m: &MachineState, kind: &str, address: u64) -> Option<String> {
    let printed_symbol =
        || m.objects.iter().find(|o| o.address == address && o.type_name == "symbol").and_then(|o| o.name.clone());
    let symbol = m.locks.iter().find(|x| x.address == address).and_then(|x| x.symbol.clone());
    symbol.or_else(printed_symbol).or_else(|| match kind {
        "bit_spinlock" => page_lock_name(m, address),
        _ => containing_object(m, address),
    })
}

/// The read of a lock word, as evidence.
pub(crate) fn lock_word_evidence(m: &MachineState, address: u64, source: usize) -> Option<Evidence> {
    let l = m.locks.iter().find(|l| l.address == address)?;
    let v = l.value?;
    let held = if l.locked == Some(true) { "held" } else { "free" };
    Some(Evidence::memory(source, l.origin.first()?, format!("lock word {v:#x} at {address:#x}: {held}")))
}

/// Names the page flag a bit lock is, when a crash session printed the page (`kmem`,
/// `struct page`): the word is a page's flags, the bit is set, and the lock flags `kmem`
/// names among those set.
pub(crate) fn page_flag_lock(m: &MachineState, word: u64, bit: u32) -> Vec<String> {
    let Some(p) = m.objects.iter().find(|o| o.address == word && o.type_name == "page") else { return Vec::new() };
    let Some(flags) = p.member("flags") else { return Vec::new() };
    let line = p.origin.line.map(|l| format!("line {l}: ")).unwrap_or_default();
    let set = if flags >> bit & 1 == 1 { "set" } else { "clear" };
    let mut out = vec![format!("{line}the word is page {word:#x}'s flags, {flags:#x}: bit {bit} is {set}")];
    let locks: Vec<&String> = p.flags.iter().filter(|f| PAGE_LOCK_FLAGS.contains(&f.as_str())).collect();
    match locks.as_slice() {
        [one] if flags >> bit & 1 == 1 => out.push(format!(
            "of the flags kmem names set ({}), the only lock is {one}: the CPU spins on PG_{one} of page {word:#x}",
            p.flags.join(",")
        )),
        [] => {}
        many => out.push(format!(
            "kmem names these lock flags set: {}",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
    out
}

/// How many tasks named like `comm` a crash session counted with `function` in their traces
/// (a `grep function … | grep comm | wc -l` over saved `bt -a` output).
pub(crate) fn shared_trace_count(m: &MachineState, function: &str, comm: &str) -> Option<String> {
    let c =
        m.counts.iter().find(|c| c.patterns.iter().any(|p| p == function) && c.patterns.iter().any(|p| p == comm))?;
    Some(format!(
        "line {}: `{}` = {}: {} {comm} tasks have {function} in their traces",
        c.line, c.command, c.count, c.count
    ))
}

/// Page flags that are locks (kmem's names for PG_locked, PG_compound_lock).
const PAGE_LOCK_FLAGS: &[&str] = &["locked", "compound_lock"];

/// What a bit lock is when a crash session printed its word as a page's flags and named one
/// lock flag set: `PG_compound_lock of page 0x…`.
pub(crate) fn page_lock_name(m: &MachineState, word: u64) -> Option<String> {
    let p = m.objects.iter().find(|o| o.address == word && o.type_name == "page")?;
    let [one] = p.flags.iter().filter(|f| PAGE_LOCK_FLAGS.contains(&f.as_str())).collect::<Vec<_>>()[..] else {
        return None;
    };
    Some(format!("PG_{one} of page {word:#x}"))
}

/// Bytes past an object's start a lock is still taken to be inside it.
const OBJECT_SPAN: u64 = 4096;

/// The printed object a lock lies in: one a crash session printed with a lock member
/// (`zone.name,lock.rlock.raw_lock.val.counter ADDR`), starting at most a page before the
/// lock, whose printed lock value agrees with the lock word.
pub(crate) fn containing_object(m: &MachineState, address: u64) -> Option<String> {
    let o = container(m, address)?;
    let name = o.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
    Some(format!("+{:#x} in struct {} {:#x}{name}", address - o.address, o.type_name, o.address))
}

fn container(m: &MachineState, address: u64) -> Option<&lockscope_facts::machine::ObjectState> {
    let word = m.locks.iter().find(|l| l.address == address).and_then(|l| l.value);
    m.objects.iter().find(|o| {
        let lock = o.members.iter().find(|(p, _)| p.split('.').any(|x| x == "lock" || x.ends_with("_lock")));
        address > o.address
            && address - o.address < OBJECT_SPAN
            && lock.is_some_and(|&(_, v)| word.is_none_or(|w| w == v))
    })
}

/// A register of the spinning CPU pointing at the object its lock lies in: the code that
/// spins works on that object.
pub(crate) fn container_in_register(w: &mut Wait, regs: &lockscope_facts::Registers, m: &MachineState) {
    let Some(o) = w.lock_address.and_then(|a| container(m, a)) else { return };
    if let Some((name, v)) = regs.values.iter().find(|(n, v)| *v == o.address && n != "rdi") {
        w.reasoning.push(format!(
            "{} = {v:#x} points at that struct {}: the code that takes the lock works on it",
            name.to_ascii_uppercase(),
            o.type_name
        ));
    }
}

/// Locks CPUs spin on.
fn spins_on(l: &LockState) -> bool {
    matches!(l.kind.as_str(), "spinlock" | "rwlock")
}

fn symbol(l: &LockState) -> String {
    l.symbol.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
}

fn lock_ref(l: &LockState) -> Option<LockRef> {
    Some(LockRef { address: l.address, symbol: l.symbol.clone(), kind: l.kind.clone() })
}

/// A link from a spinning CPU to the one task whose stack holds the lock's address.
pub(crate) fn spinlock_holder(
    s: &Stuck,
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let addr = s.wait.lock_address?;
    let l = m.locks.iter().find(|l| l.address == addr && l.locked == Some(true))?;
    holder_link(Node::subject(&s.subject), s.wait.kind, s.irqs_enabled, l, node, source)
}

/// A spinning CPU's lock found among the stack words a crash session's `bt -f` printed: the
/// one task (not among the `waiting` pids, which wait for it themselves) whose stack holds the lock's address is its likely
/// holder; several are each possible (only the first is linked, the others named).
pub(crate) fn stack_word_holder(
    s: &Stuck,
    waiting: &[u32],
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let addr = s.wait.lock_address?;
    let found: Vec<(&lockscope_facts::machine::StackWords, u64, &str)> = m
        .stack_words
        .iter()
        .filter(|w| !waiting.contains(&w.task.pid))
        .filter_map(|w| {
            let &(at, _, f) = w.words.iter().find(|(_, v, _)| *v == addr)?;
            Some((w, at, w.frames.get(usize::from(f)).map_or("", String::as_str)))
        })
        .collect();
    let (w, at, frame) = *found.first()?;
    let conf = if found.len() == 1 { Confidence::Likely } else { Confidence::Possible };
    let others: Vec<String> = found[1..].iter().map(|(o, _, _)| o.task.to_string()).collect();
    let frame = if frame.is_empty() { String::new() } else { format!(", in the frame of {frame}") };
    let irq = if s.irqs_enabled == Some(false) { " with interrupts disabled" } else { "" };
    let reasoning = format!(
        "the crash session's `bt -f` of {} (line {}) shows the lock's address {addr:#x} on its stack at {at:#x}{frame}{}: it took the lock and keeps it there (crash's `search -t` reasoning; a hint, not proof)",
        w.task,
        w.line,
        if others.is_empty() {
            "; no other stack shown holds it".to_string()
        } else {
            format!("; so do the stacks of {}", others.join(", "))
        }
    );
    let read = MemoryRead::shown(w.line, "bt -f", Some(at), format!("{addr:#x} on the stack of {}", w.task));
    Some(ChainLink {
        waiter: Node::subject(&s.subject),
        waits_for: node(&w.task),
        via: format!("{} {addr:#x}, spinning{irq}", s.wait.kind.as_str()),
        wait: s.wait.kind,
        lock: Some(LockRef::of_wait(s.wait.kind, addr)),
        confidence: conf,
        reasoning,
        evidence: vec![Evidence::memory(source, &read, format!("{} holds {addr:#x} on its stack at {at:#x}", w.task))],
    })
}

/// The same for a CPU the log printed nothing about (a target of a cross-CPU call): memory
/// shows it spinning on a held lock.
pub(crate) fn silent_cpu_holder(
    cpu: u32,
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let l = m.locks.iter().find(|l| spins_on(l) && l.waiters.contains(&cpu) && l.locked == Some(true))?;
    let c = m.cpus.iter().find(|c| c.cpu == cpu)?;
    // The node the cross-CPU link already points at.
    let mut link = holder_link(Node::cpu(cpu), WaitKind::Spinlock, c.irqs_enabled, l, node, source)?;
    let top = c
        .stack
        .iter()
        .find(|f| f.function.contains("spin_lock_slowpath"))
        .map_or("its spinlock slow path", |f| f.function.as_str());
    let task = c.task.as_ref().map(|t| format!(" ({t})")).unwrap_or_default();
    link.reasoning = format!(
        "read from memory: CPU {cpu}{task} spins in {top} on the lock at {:#x}; {}",
        l.address,
        link.reasoning.trim_start_matches("read from memory: ")
    );
    Some(link)
}

fn holder_link(
    waiter: Node,
    kind: WaitKind,
    irqs_enabled: Option<bool>,
    l: &LockState,
    node: &dyn Fn(&TaskRef) -> Node,
    source: usize,
) -> Option<ChainLink> {
    let addr = l.address;
    let [h] = l.candidate_holders.as_slice() else { return None };
    let irq = if irqs_enabled == Some(false) { " with interrupts disabled" } else { "" };
    let frame = h.frame.as_deref().map(|f| format!(", in the frame of {f}")).unwrap_or_default();
    let running = match h.cpu {
        Some(c) => format!("it runs on CPU {c}"),
        None => format!("it is not running (state {})", h.state),
    };
    Some(ChainLink {
        waiter,
        waits_for: node(&h.task),
        via: format!("{} {addr:#x}, spinning{irq}", kind.as_str()),
        wait: kind,
        lock: lock_ref(l),
        confidence: Confidence::Likely,
        reasoning: format!(
            "read from memory: the lock word is {:#x} (held){}, and of all tasks only {}'s stack holds the lock's address (at {:#x}{frame}); {running}",
            l.value.unwrap_or(0),
            symbol(l),
            h.task,
            h.origin.address.unwrap_or(0)
        ),
        evidence: vec![
            Evidence::memory(source, &l.origin[0], format!("lock word {:#x}", l.value.unwrap_or(0))),
            Evidence::memory(source, &h.origin, format!("{} holds {addr:#x} on its stack", h.task)),
        ],
    })
}

/// The lock of one of `kinds` that the stuck task sleeps on (and that passes `also`), with
/// how it wants it (`read`, `write`, `lock`, `wait`).
fn waited_lock<'m>(
    s: &'m Stuck,
    m: &'m MachineState,
    kinds: &[&str],
    also: impl Fn(&LockState) -> bool,
) -> Option<(&'m TaskRef, &'m LockState, &'m String)> {
    let me = s.subject.task.as_ref()?;
    m.locks.iter().filter(|l| kinds.contains(&l.kind.as_str()) && also(l)).find_map(|l| {
        let (_, mode) = l.task_waiters.iter().find(|(t, _)| t.pid == me.pid)?;
        Some((me, l, mode))
    })
}

/// A link from a task sleeping on an rwsem or mutex to whom the lock records: its owner
/// (a writer, a mutex owner: certain), the writer queued ahead of a reader, or the last
/// reader of a read-held rwsem (a hint: likely).
pub(crate) fn sleeping_owner(
    s: &Stuck,
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let (me, l, mode) = waited_lock(s, m, &["rwsem", "mutex"], |_| true)?;
    let via = match (l.kind.as_str(), mode.as_str()) {
        ("rwsem", "read") => WaitKind::RwsemRead,
        ("rwsem", _) => WaitKind::RwsemWrite,
        _ => WaitKind::Mutex,
    };
    // A reader queues behind a writer waiting ahead of it.
    if mode == "read"
        && let Some((writer, _)) = l.task_waiters.iter().find(|(_, m)| m == "write")
    {
        return Some(ChainLink {
            waiter: Node::subject(&s.subject),
            waits_for: node(writer),
            via: format!("{} {:#x}", via.as_str(), l.address),
            wait: via,
            lock: lock_ref(l),
            confidence: Confidence::Likely,
            reasoning: format!(
                "{}: {writer} waits to write on the same rwsem at {:#x}{}, so {me} queues behind it",
                read_from(&l.origin[0]),
                l.address,
                symbol(l)
            ),
            evidence: vec![Evidence::memory(source, &l.origin[0], format!("{writer} and {me} on the wait list"))],
        });
    }
    let owner = l.owner.as_ref()?;
    if owner.task.pid == me.pid {
        return None;
    }
    let conf = if owner.how == "last reader" { Confidence::Likely } else { Confidence::Certain };
    let hint = if owner.how == "last reader" {
        ": held for read, the rwsem keeps only the last reader to take it, which is a hint, not proof"
    } else {
        ""
    };
    Some(ChainLink {
        waiter: Node::subject(&s.subject),
        waits_for: node(&owner.task),
        via: format!("{} {:#x}", via.as_str(), l.address),
        wait: via,
        lock: lock_ref(l),
        confidence: conf,
        reasoning: format!(
            "{}: the {} at {:#x}{} records {} as its {}{hint}",
            read_from(&owner.origin),
            l.kind,
            l.address,
            symbol(l),
            owner.task,
            owner.how
        ),
        evidence: vec![Evidence::memory(
            source,
            &owner.origin,
            format!("{} {} of {:#x}", owner.task, owner.how, l.address),
        )],
    })
}

/// A task sleeping on a held bit lock, page lock or semaphore. None records an owner: when no other
/// task's stack or registers hold the word's address, the likeliest holder is the task
/// itself, which took it earlier on its path and never released it; when exactly one other
/// task's does, that task is the likely holder.
pub(crate) fn bit_lock_holder(
    s: &Stuck,
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let (me, l, _) = waited_lock(s, m, &["bit_lock", "page_lock", "semaphore"], |l| l.locked == Some(true))?;
    let others: Vec<_> = l.candidate_holders.iter().filter(|h| h.task.pid != me.pid).collect();
    let bit = l.bit.unwrap_or(0);
    let word = l.value.unwrap_or(0);
    let (what, held, read) = match l.kind.as_str() {
        "semaphore" => (
            "semaphore",
            format!(
                "read from memory: the semaphore at {:#x}{} has no count left: it is taken, and {me} sleeps until it is released",
                l.address,
                symbol(l)
            ),
            format!("semaphore {:#x} taken", l.address),
        ),
        kind => {
            let what = if kind == "page_lock" { "page lock (PG_locked)" } else { "bit lock" };
            (
                what,
                format!(
                    "read from memory: bit {bit} of the word at {:#x}{} is set ({word:#x}): the {what} is held, and {me} sleeps until it clears",
                    l.address,
                    symbol(l)
                ),
                format!("bit {bit} of {:#x} set: {word:#x}", l.address),
            )
        }
    };
    let mut ev = vec![Evidence::memory(source, &l.origin[0], read)];
    let (to, why) = match others.as_slice() {
        [] if l.task_waiters.len() == 1 => (
            Node::subject(&s.subject),
            format!(
                "{held}; of all tasks only {me}'s own stack holds the lock's address. A {what} records no owner: the likeliest holder is {me} itself, which took it earlier on this path (or I/O it started that never completes)"
            ),
        ),
        [h] => {
            ev.push(Evidence::memory(source, &h.origin, format!("{} holds {:#x} on its stack", h.task, l.address)));
            (
                node(&h.task),
                format!(
                    "{held}; a {what} records no owner, and of the other tasks only {}'s stack holds its address (state {}): the likely holder",
                    h.task, h.state
                ),
            )
        }
        _ => return None,
    };
    Some(ChainLink {
        waiter: Node::subject(&s.subject),
        waits_for: to,
        via: match l.bit {
            Some(bit) => format!("{what} {:#x} bit {bit}", l.address),
            None => format!("{what} {:#x}", l.address),
        },
        wait: s.wait.kind,
        lock: lock_ref(l),
        confidence: Confidence::Likely,
        reasoning: why,
        evidence: ev,
    })
}

/// A task waiting for a completion memory shows not done: nothing records who will complete
/// it, so the link names the completion (where it is) and, when exactly one other task's
/// stack holds its address, that task as the possible completer.
pub(crate) fn completion_link(
    s: &Stuck,
    node: &dyn Fn(&TaskRef) -> Node,
    m: &MachineState,
    source: usize,
) -> Option<ChainLink> {
    let (me, l, _) = waited_lock(s, m, &["completion"], |_| true)?;
    let others: Vec<_> = l.candidate_holders.iter().filter(|h| h.task.pid != me.pid).collect();
    let done = match l.locked {
        Some(true) => "not done (done = 0)",
        Some(false) => "already done: the waiter should wake",
        None => "in an unknown state",
    };
    let head = format!("read from memory: {me} waits on the completion at {:#x}{}, {done}", l.address, symbol(l));
    let mut ev = vec![Evidence::memory(source, &l.origin[0], format!("completion {:#x}", l.address))];
    let (to, why) = match others.as_slice() {
        [h] => {
            ev.push(Evidence::memory(source, &h.origin, format!("{} holds {:#x} on its stack", h.task, l.address)));
            (
                node(&h.task),
                format!(
                    "{head}; a completion records no completer, and only {}'s stack holds its address: possibly the one to complete it",
                    h.task
                ),
            )
        }
        _ => (
            Node::resource(format!("completion {:#x}{}", l.address, symbol(l))),
            format!("{head}; a completion records no completer, and no other task refers to it"),
        ),
    };
    Some(ChainLink {
        waiter: Node::subject(&s.subject),
        waits_for: to,
        via: format!("completion {:#x}", l.address),
        wait: WaitKind::Completion,
        lock: lock_ref(l),
        confidence: Confidence::Possible,
        reasoning: why,
        evidence: ev,
    })
}

/// The CPUs and preempted readers a grace period still waits for, from `rcu_state` and its
/// leaf `rcu_node`s: a task waiting for that grace period waits for them.
pub(crate) fn rcu_holders(m: &MachineState) -> Option<(Vec<Node>, String, &MemoryRead)> {
    let r = m.rcu.as_ref().filter(|r| r.gp_in_progress)?;
    let mut nodes: Vec<Node> = r.waiting_cpus.iter().map(|&c| Node::cpu(c)).collect();
    nodes.extend(r.blocked_readers.iter().cloned().map(Node::task));
    let origin = r.origin.first()?;
    if nodes.is_empty() {
        return None;
    }
    let age = r.gp_age_jiffies.map(|a| format!(", started {a} jiffies ago")).unwrap_or_default();
    let mut why = format!("read from memory: grace period {:#x} is in progress{age}", r.gp_seq);
    if !r.waiting_cpus.is_empty() {
        let cpus: Vec<String> = r.waiting_cpus.iter().map(|c| format!("CPU {c}")).collect();
        why.push_str(&format!(
            "; the leaf rcu_node's qsmask still waits for a quiescent state from {}",
            cpus.join(", ")
        ));
    }
    for (t, cpu) in &r.readers {
        let on = cpu.map(|c| format!(" on CPU {c}")).unwrap_or_default();
        why.push_str(&format!("; {t}{on} is inside rcu_read_lock()"));
    }
    if !r.blocked_readers.is_empty() {
        let names: Vec<String> = r.blocked_readers.iter().map(|t| t.to_string()).collect();
        why.push_str(&format!("; readers preempted inside their read-side section block it: {}", names.join(", ")));
    }
    Some((nodes, why, origin))
}
