//! Per-incident reasoning: stuck subjects and their waits, the waits-for chain, the root,
//! hardware correlation and the summary sentence.

use crate::waits::{self, StackWait};
use crate::{ChainLink, Evidence, HardwareLink, Incident, Input, Node, Root, RootKind, Stuck, Wait, WallTime};
use lockscope_facts::{Arch, Confidence, Event, EventKind, Frame, Subject, WaitKind};
use std::collections::BTreeMap;

fn evidence(e: &Event) -> Evidence {
    Evidence::line(e.lines.source, e.lines.first, e.headline.clone())
}

fn is_cpu_report(k: EventKind) -> bool {
    matches!(
        k,
        EventKind::SoftLockup
            | EventKind::HardLockup
            | EventKind::RcuStall
            | EventKind::NmiBacktrace
            | EventKind::CsdLockTimeout
            | EventKind::WorkqueueLockup
    )
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Cpu(u32),
    Task(u32),
}

/// The CPU a report is about. An RCU stall report that names no stalled CPU or task ("All
/// QSes seen": the grace-period kthread is starved) dumps the detecting CPU's stack instead.
fn cpu_of(e: &Event) -> Option<u32> {
    e.cpu.or_else(|| {
        let rcu = e.rcu.as_ref().filter(|r| r.form == "detected")?;
        (e.kind == EventKind::RcuStall && !e.stack.is_empty()).then_some(rcu.detected_by).flatten()
    })
}

fn key_of(e: &Event) -> Option<Key> {
    match (cpu_of(e), &e.task) {
        (Some(c), _) if is_cpu_report(e.kind) => Some(Key::Cpu(c)),
        (_, Some(t)) if matches!(e.kind, EventKind::HungTask | EventKind::RcuStall) => Some(Key::Task(t.pid)),
        _ => None,
    }
}

fn kind_rank(k: EventKind) -> u8 {
    match k {
        EventKind::NmiBacktrace | EventKind::SoftLockup | EventKind::HardLockup => 3,
        EventKind::RcuStall | EventKind::HungTask => 2,
        EventKind::CsdLockTimeout => 1,
        _ => 0,
    }
}

pub(crate) fn analyze(inc: &mut Incident, input: &Input<'_>, hardware: &[&Event]) {
    let events = input.events;
    inc.stuck = stuck_subjects(inc, input);
    inc.groups = wait_groups(&inc.stuck);
    if inc.kind.is_lockup() {
        let chain = build_chain(inc, input);
        inc.chain = chain;
        inc.hardware = hardware_links(inc, input, hardware);
        inc.root = find_root(inc, input);
    } else {
        inc.root = crash_root(inc, events);
    }
    inc.summary = summarize(inc, events);
}

fn stuck_subjects(inc: &Incident, input: &Input<'_>) -> Vec<Stuck> {
    let events = input.events;
    let mem = input.machine_of(inc.source);
    let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for &i in &inc.events {
        let e = &events[i];
        if e.kind == EventKind::Panic {
            continue;
        }
        if e.kind == EventKind::NmiBacktrace && (e.message.is_some() || waits::is_idle(stack_of(e, events))) {
            continue;
        }
        if let Some(k) = key_of(e) {
            by_key.entry(k).or_default().push(i);
        }
    }
    // An NMI backtrace tells about a stuck CPU only when a lockup report names that CPU, or
    // when it shows the CPU spinning or with interrupts off; otherwise it is one of the
    // all-CPU dumps a detector prints (the hung-task thread's own CPU, idle CPUs).
    by_key.retain(|_, idxs| {
        idxs.iter().any(|&i| events[i].kind != EventKind::NmiBacktrace) || {
            let e = &events[idxs[0]];
            waits::classify(&e.stack).kind.spins() || e.registers.as_ref().and_then(|r| r.irqs_enabled()) == Some(false)
        }
    });
    let mut out = Vec::new();
    for (_, idxs) in by_key {
        let best = *idxs
            .iter()
            .max_by_key(|&&i| {
                let e = &events[i];
                let meaningful = waits::meaningful_frames(&e.stack).len().min(1);
                (meaningful, kind_rank(e.kind), e.registers.is_some(), std::cmp::Reverse(i))
            })
            .unwrap();
        let b = &events[best];
        let task = idxs
            .iter()
            .rev()
            .find_map(|&i| events[i].task.clone().filter(|t| !t.comm.is_empty()))
            .or_else(|| b.task.clone());
        let cpu = idxs.iter().find_map(|&i| if is_cpu_report(events[i].kind) { cpu_of(&events[i]) } else { None });
        let mut kinds: Vec<EventKind> = idxs.iter().map(|&i| events[i].kind).collect();
        kinds.sort();
        kinds.dedup();
        let times: Vec<f64> = idxs.iter().filter_map(|&i| events[i].time).collect();
        let irqs_enabled = if kinds.contains(&EventKind::HardLockup) {
            Some(false)
        } else {
            b.registers.as_ref().and_then(|r| r.irqs_enabled()).or_else(|| {
                // The log printed no registers for it: memory knows.
                mem.and_then(|m| m.cpus.iter().find(|c| cpu == Some(c.cpu))).and_then(|c| c.irqs_enabled)
            })
        };
        let state =
            idxs.iter().rev().find_map(|&i| events[i].task_state.clone()).or_else(|| cpu.map(|_| "R".to_string()));
        let mut wait = wait_of(b, idxs.iter().map(|&i| &events[i]), events, inc, mem.map(|m| (m, cpu)));
        if let Some(m) = mem
            && matches!(wait.kind, WaitKind::Spinlock | WaitKind::RwlockRead | WaitKind::RwlockWrite)
        {
            crate::memory::spinlock(&mut wait, cpu, m);
        }
        out.push(Stuck {
            subject: Subject { cpu, task },
            kinds,
            events: idxs.clone(),
            first_time: times.iter().copied().reduce(f64::min),
            last_time: times.iter().copied().reduce(f64::max),
            max_duration_s: stuck_for(&idxs, events),
            irqs_enabled,
            state,
            stack_event: best,
            wait,
        });
    }
    // CPUs first, then tasks by when they were first reported.
    out.sort_by(|a, b| (a.subject.cpu.is_none(), a.events.first()).cmp(&(b.subject.cpu.is_none(), b.events.first())));
    out
}

/// How long it has been stuck by the last report: the longest reported duration, or for
/// repeated reports the span from when the first one says it got stuck.
fn stuck_for(idxs: &[usize], events: &[Event]) -> Option<f64> {
    let reported = idxs.iter().filter_map(|&i| events[i].duration_s).reduce(f64::max);
    let first = &events[*idxs.first()?];
    let last = idxs.iter().filter_map(|&i| events[i].time).reduce(f64::max);
    let span = match (first.time, first.duration_s, last) {
        (Some(t0), Some(d0), Some(t1)) => Some(t1 - (t0 - d0)),
        _ => None,
    };
    match (reported, span) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn wait_groups(stuck: &[Stuck]) -> Vec<crate::WaitGroup> {
    let mut groups: Vec<crate::WaitGroup> = Vec::new();
    for s in stuck.iter().filter(|s| !matches!(s.wait.kind, WaitKind::Running | WaitKind::Unknown)) {
        match groups.iter_mut().find(|g| g.kind == s.wait.kind && g.lock_address == s.wait.lock_address) {
            Some(g) => g.members.push(s.subject.clone()),
            None => groups.push(crate::WaitGroup {
                kind: s.wait.kind,
                lock_address: s.wait.lock_address,
                members: vec![s.subject.clone()],
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    groups
}

/// The function a lockup report's title blames (`BUG: soft lockup in FUNC`).
fn guilty(e: &Event) -> Option<String> {
    let (_, f) = e.title.rsplit_once(" in ")?;
    (!f.is_empty() && !f.contains(' ')).then(|| f.to_string())
}

/// An event's stack, or for a compacted repeat the stack of the report it repeats.
fn stack_of<'a>(e: &'a Event, events: &'a [Event]) -> &'a [Frame] {
    match e.repeat_of {
        Some(r) if e.stack.is_empty() => events.get(r).map_or(&e.stack[..], |o| &o.stack[..]),
        _ => &e.stack,
    }
}

fn ip_function(e: &Event) -> Option<&str> {
    e.registers.as_ref()?.ip.as_ref()?.function.as_deref()
}

fn wait_of<'a>(
    best: &Event,
    all: impl Iterator<Item = &'a Event>,
    events: &[Event],
    inc: &Incident,
    mem: Option<(&lockscope_facts::machine::MachineState, Option<u32>)>,
) -> Wait {
    let StackWait { kind, frame } = waits::classify(&best.stack);
    let mut w = Wait {
        kind,
        function: frame.map(|f| f.function),
        lock_address: None,
        target_cpus: Vec::new(),
        candidate_cpus: Vec::new(),
        confidence: Confidence::Certain,
        reasoning: Vec::new(),
    };
    let all: Vec<&Event> = all.collect();
    // The hung-task detector says the task is in I/O wait (`blocked in I/O wait`): a
    // folio/bit wait under it is waiting for I/O, not for a lock holder.
    if matches!(w.kind, WaitKind::PageLock | WaitKind::BitWait | WaitKind::Unknown | WaitKind::Sleep)
        && all.iter().any(|e| e.subkind.as_deref() == Some("io_wait"))
    {
        w.reasoning.push(format!(
            "the hung-task report says the task is blocked in I/O wait, so {} waits for I/O to finish",
            w.function.as_deref().unwrap_or("it")
        ));
        w.kind = WaitKind::IoWait;
    }
    if waits::only_unreliable(&best.stack) {
        w.confidence = Confidence::Possible;
        w.reasoning.push("every frame of the trace is unreliable ('?'): read from stale return addresses".to_string());
    }
    match kind {
        WaitKind::Spinlock | WaitKind::RwlockRead | WaitKind::RwlockWrite => spinlock_address(&mut w, &all),
        // Memory names the targets outright; the log's registers only point at them.
        WaitKind::CsdIpi if mem.is_some_and(|(m, cpu)| crate::memory::csd_targets(&mut w, cpu, m)) => {}
        WaitKind::CsdIpi => csd_targets(&mut w, &all, events, inc),
        WaitKind::Running => {
            if let Some(f) = &w.function {
                w.reasoning.push(format!("no wait primitive on the stack: the CPU executes {f} (a loop that neither sleeps nor waits on a lock)"));
                // Helpers at the top of the stack (unlock, sanitizer checks) hide the
                // function that loops; the report's title names it.
                if let Some(g) = guilty(best).filter(|g| g != f) {
                    w.reasoning.push(format!("the loop is in {g} (the report's guilty frame), which calls {f}"));
                    w.function = Some(format!("{f} in {g}"));
                }
            }
        }
        _ => {}
    }
    if w.function.is_some() && w.reasoning.is_empty() && kind != WaitKind::Running {
        w.reasoning.push(format!(
            "{} on the stack means the {} waits for a {}",
            w.function.as_deref().unwrap_or("?"),
            if best.cpu.is_some() && is_cpu_report(best.kind) { "CPU" } else { "task" },
            kind.as_str()
        ));
    }
    w
}

/// The lock address of a spinning CPU: the slowpath's first argument.
fn spinlock_address(w: &mut Wait, all: &[&Event]) {
    for e in all {
        let Some(regs) = &e.registers else { continue };
        let Some(ip) = ip_function(e) else { continue };
        let in_slowpath =
            ip.contains("spin_lock_slowpath") || ip.contains("_raw_spin_lock") || ip.contains("lock_slowpath");
        if !in_slowpath {
            continue;
        }
        let (reg, conf) = match regs.arch {
            Arch::X86_64 => ("rdi", Confidence::Likely),
            Arch::Arm64 => ("x0", Confidence::Possible),
        };
        let Some(addr) = regs.get(reg) else { continue };
        w.lock_address = Some(addr);
        w.confidence = conf;
        w.reasoning.push(format!(
            "the CPU is inside {ip}; its first argument ({}) is the lock: {addr:#x}",
            reg.to_ascii_uppercase()
        ));
        if regs.arch == Arch::X86_64 && regs.get("rbx") == Some(addr) {
            w.reasoning.push(format!(
                "RBX holds the same pointer ({addr:#x}): the slowpath keeps the lock there across the loop"
            ));
        }
        return;
    }
    w.reasoning.push("the lock address is not in the printed registers".to_string());
    w.confidence = Confidence::Certain;
}

/// The CPUs a cross-CPU call waits for: from CSD debug lines, else from the registers of
/// the wait loop.
fn csd_targets(w: &mut Wait, all: &[&Event], events: &[Event], inc: &Incident) {
    let cpu = all.iter().find_map(|e| e.cpu);
    for &i in &inc.events {
        let e = &events[i];
        if e.kind == EventKind::CsdLockTimeout
            && e.cpu == cpu
            && let Some(t) = e.csd.as_ref().and_then(|c| c.target_cpu)
            && !w.target_cpus.contains(&t)
        {
            w.target_cpus.push(t);
            w.reasoning.push(format!("line {}: {}", e.lines.first, e.headline));
            w.confidence = Confidence::Certain;
        }
    }
    if !w.target_cpus.is_empty() {
        return;
    }
    for e in all {
        let Some(regs) = &e.registers else { continue };
        let Some(ip) = ip_function(e) else { continue };
        if !ip.starts_with("smp_call_function")
            && !ip.starts_with("csd_lock_wait")
            && !ip.starts_with("generic_exec_single")
        {
            continue;
        }
        match regs.arch {
            Arch::X86_64 => {
                if let Some(t) = regs.code.as_ref().and_then(|c| crate::x86::percpu_loop_target(c, regs)) {
                    w.target_cpus.push(t.cpu);
                    w.confidence = Confidence::Likely;
                    w.reasoning.push(format!(
                        "RIP is in the wait loop of {ip} (line {}); decoding its Code: bytes:",
                        e.lines.first
                    ));
                    w.reasoning.extend(t.evidence.iter().map(|s| format!("  {s}")));
                    w.reasoning
                        .push(format!("so the loop waits for CPU {} to run the function and release its csd", t.cpu));
                    if let Some(rcx) = regs.get("rcx").filter(|v| v & 1 == 1) {
                        w.reasoning
                            .push(format!("RCX = {rcx:#x}: the csd flags last read still have CSD_FLAG_LOCK set"));
                    }
                    return;
                }
            }
            Arch::Arm64 => {
                if let (Some(x0), Some(x1)) = (regs.get("x0"), regs.get("x1"))
                    && x1 & 1 == 1
                    && x0 < 4096
                {
                    w.reasoning.push(format!(
                            "x1 = {x1:#x} looks like csd->flags with CSD_FLAG_LOCK{} set and x0 = {x0} like a CPU number, as in some builds of {ip}; without this kernel's disassembly that register use cannot be verified, so the target CPU stays unknown (candidate: CPU {x0})",
                            if x1 & 2 == 2 { " and CSD_FLAG_SYNCHRONOUS" } else { "" }
                        ));
                    w.confidence = Confidence::Possible;
                    w.candidate_cpus.push(x0 as u32);
                    return;
                }
            }
        }
    }
    w.reasoning.push("the log does not say which CPU the call waits for".to_string());
}

fn stuck_node(s: &Stuck) -> Node {
    Node::subject(&s.subject)
}

fn link(
    waiter: Node,
    waits_for: Node,
    via: String,
    confidence: Confidence,
    reasoning: String,
    evidence: Vec<Evidence>,
) -> ChainLink {
    ChainLink { waiter, waits_for, via, confidence, reasoning, evidence }
}

fn ev_of(s: &Stuck, events: &[Event]) -> Vec<Evidence> {
    vec![evidence(&events[s.stack_event])]
}

fn sleeping_while_atomic<'a>(inc: &Incident, events: &'a [Event]) -> Vec<&'a Event> {
    inc.precursors
        .iter()
        .map(|&p| &events[p])
        .filter(|e| e.subkind.as_deref() == Some("scheduling_while_atomic") && e.task.is_some())
        .collect()
}

fn build_chain(inc: &Incident, input: &Input<'_>) -> Vec<ChainLink> {
    let events = input.events;
    let mut chain = Vec::new();
    let stuck = &inc.stuck;
    let find_cpu = |c: u32| stuck.iter().find(|s| s.subject.cpu == Some(c));
    let find_task = |pid: u32| stuck.iter().find(|s| s.subject.task.as_ref().is_some_and(|t| t.pid == pid));

    // Cross-CPU calls.
    for s in stuck.iter().filter(|s| s.wait.kind == WaitKind::CsdIpi) {
        let via = format!("IPI / cross-CPU call ({})", s.wait.function.as_deref().unwrap_or("csd_lock_wait"));
        if s.wait.target_cpus.is_empty() && !s.wait.candidate_cpus.is_empty() {
            for &c in &s.wait.candidate_cpus {
                let target = find_cpu(c).map(stuck_node).unwrap_or_else(|| Node::cpu(c));
                chain.push(link(
                    stuck_node(s),
                    target,
                    via.clone(),
                    Confidence::Possible,
                    s.wait.reasoning.join("\n"),
                    ev_of(s, events),
                ));
            }
            continue;
        }
        if s.wait.target_cpus.is_empty() {
            let irqs_off: Vec<&Stuck> = stuck
                .iter()
                .filter(|o| o.subject.cpu.is_some() && o.subject != s.subject && o.irqs_enabled == Some(false))
                .collect();
            if irqs_off.is_empty() {
                chain.push(link(
                    stuck_node(s),
                    Node::resource("an unidentified CPU that does not answer the IPI".into()),
                    via.clone(),
                    Confidence::Possible,
                    s.wait.reasoning.join("; "),
                    ev_of(s, events),
                ));
            }
            for o in irqs_off {
                chain.push(link(
                    stuck_node(s),
                    stuck_node(o),
                    via.clone(),
                    Confidence::Possible,
                    format!("the target CPU is not named in the log; {} has interrupts disabled and so cannot answer an IPI", stuck_node(o)),
                    ev_of(s, events),
                ));
            }
            continue;
        }
        for &t in &s.wait.target_cpus {
            let target = find_cpu(t).map(stuck_node).unwrap_or_else(|| Node::cpu(t));
            chain.push(link(
                stuck_node(s),
                target,
                via.clone(),
                s.wait.confidence,
                s.wait.reasoning.join("\n"),
                ev_of(s, events),
            ));
            // A target that printed nothing: memory may show what it does; else the only lock
            // trouble the log shows may explain it.
            let task_node = |tr: &lockscope_facts::TaskRef| {
                find_task(tr.pid).map(stuck_node).unwrap_or_else(|| Node::task(tr.clone()))
            };
            if find_cpu(t).is_none()
                && let Some(mut l) = input
                    .machine_of(inc.source)
                    .and_then(|m| crate::memory::silent_cpu_holder(t, &task_node, m, inc.source))
            {
                if let Some(sl) = sleeping_while_atomic(inc, events).first().filter(|sl| {
                    sl.task.as_ref().is_some_and(|x| l.waits_for.task.as_ref().is_some_and(|w| w.pid == x.pid))
                }) {
                    l.confidence = Confidence::Certain;
                    l.reasoning.push_str(&format!(
                        "; the log shows the same task scheduling in atomic context ({})",
                        sl.headline
                    ));
                    l.evidence.push(evidence(sl));
                }
                chain.push(l);
            } else if find_cpu(t).is_none()
                && let Some(sl) = sleeping_while_atomic(inc, events).first()
            {
                let task = sl.task.clone().unwrap();
                chain.push(link(
                        Node::cpu(t),
                        Node::task(task.clone()),
                        "spinlock (presumed)".into(),
                        Confidence::Possible,
                        format!(
                            "CPU {t} printed nothing; the log's only sign of lock trouble is that {task} scheduled in atomic context ({}): a task sleeping with a spinlock held makes other CPUs spin on that lock, with interrupts off under spin_lock_irqsave, which would keep CPU {t} from answering the IPI",
                            sl.headline
                        ),
                        vec![evidence(sl)],
                    ));
            }
        }
    }

    // Spinlocks: waiters on one address are one group; the holder is whoever slept or
    // spins while holding it.
    let sleepers = sleeping_while_atomic(inc, events);
    let mem = input.machine_of(inc.source);
    let task_node =
        |t: &lockscope_facts::TaskRef| find_task(t.pid).map(stuck_node).unwrap_or_else(|| Node::task(t.clone()));
    for s in stuck.iter().filter(|s| {
        matches!(s.wait.kind, WaitKind::Spinlock | WaitKind::RwlockRead | WaitKind::RwlockWrite | WaitKind::BitSpinlock)
    }) {
        if let Some(mut l) = mem.and_then(|m| crate::memory::spinlock_holder(s, &task_node, m, inc.source)) {
            // The log's sign of the same holder (it slept in atomic context) makes it certain.
            if let Some(sl) = sleepers.first().filter(|sl| {
                sl.task.as_ref().is_some_and(|t| l.waits_for.task.as_ref().is_some_and(|w| w.pid == t.pid))
            }) {
                l.confidence = Confidence::Certain;
                l.reasoning
                    .push_str(&format!("; the log shows the same task scheduling in atomic context ({})", sl.headline));
                l.evidence.push(evidence(sl));
            }
            l.evidence.extend(ev_of(s, events));
            chain.push(l);
            continue;
        }
        let lock = match s.wait.lock_address {
            Some(a) => format!("{} {a:#x}", s.wait.kind.as_str()),
            None => format!("a {}", s.wait.kind.as_str()),
        };
        let irq_note = match s.irqs_enabled {
            Some(false) => " with interrupts disabled",
            _ => "",
        };
        if let Some(sl) = sleepers.first() {
            let t = sl.task.clone().unwrap();
            let still = find_task(t.pid);
            let conf = if still.is_some() || sleepers.len() == 1 { Confidence::Likely } else { Confidence::Possible };
            let mut ev = ev_of(s, events);
            ev.push(evidence(sl));
            if let Some(st) = still {
                ev.extend(ev_of(st, events));
            }
            chain.push(link(
                stuck_node(s),
                still.map(stuck_node).unwrap_or_else(|| Node::task(t.clone())),
                format!("{lock}, spinning{irq_note}"),
                conf,
                format!(
                    "the lock's holder is not running: {t} called schedule() in atomic context ({}{}), which is what sleeping while holding a spinlock looks like{}",
                    sl.headline,
                    sl.time.map(|x| format!(" at {x:.3} s")).unwrap_or_default(),
                    if still.is_some() { ", and it is still blocked" } else { "" }
                ),
                ev,
            ));
            continue;
        }
        let running: Vec<&Stuck> = stuck
            .iter()
            .filter(|o| o.subject != s.subject && o.wait.kind == WaitKind::Running && o.subject.cpu.is_some())
            .collect();
        if let Some(o) = running.first() {
            chain.push(link(
                stuck_node(s),
                stuck_node(o),
                format!("{lock}, spinning{irq_note}"),
                Confidence::Possible,
                format!("{} runs without waiting and may hold the lock", stuck_node(o)),
                ev_of(s, events),
            ));
        } else {
            chain.push(link(
                stuck_node(s),
                Node::resource(format!("{lock} (holder not in the log)")),
                format!("{lock}, spinning{irq_note}"),
                s.wait.confidence,
                s.wait.reasoning.join("\n"),
                ev_of(s, events),
            ));
        }
    }

    // Sleeping locks of hung tasks: what the lock itself records first.
    let tasks: Vec<&Stuck> = stuck.iter().filter(|s| s.subject.cpu.is_none()).collect();
    if let Some(m) = mem {
        for s in &tasks {
            if let Some(mut l) = crate::memory::sleeping_owner(s, &task_node, m, inc.source) {
                l.evidence.extend(ev_of(s, events));
                chain.push(l);
            }
        }
    }
    for s in &tasks {
        if chain.iter().any(|l| l.waiter == stuck_node(s)) {
            continue;
        }
        let e = &events[s.stack_event];
        if let Some(bo) = s.events.iter().find_map(|&i| events[i].blocked_on.as_ref())
            && let Some(owner) = &bo.owner
        {
            let target = find_task(owner.pid).map(stuck_node).unwrap_or_else(|| Node::task(owner.clone()));
            chain.push(link(
                stuck_node(s),
                target,
                bo.primitive.clone(),
                Confidence::Likely,
                format!("the hung-task detector reports {owner} as the likely owner of the {}", bo.primitive),
                vec![evidence(e)],
            ));
        }
    }
    for s in &tasks {
        if chain.iter().any(|l| l.waiter == stuck_node(s)) {
            continue;
        }
        if let Some(l) = lockdep_holder(s, inc, input, &find_task) {
            chain.push(l);
        }
    }
    let owner_linked: Vec<Node> = chain.iter().map(|l| l.waiter.clone()).collect();
    let has_owner_link = |s: &Stuck| owner_linked.contains(&stuck_node(s));
    let rw: Vec<&Stuck> =
        tasks.iter().copied().filter(|s| matches!(s.wait.kind, WaitKind::RwsemRead | WaitKind::RwsemWrite)).collect();
    if !rw.is_empty() {
        // The holder: a task blocked first, on something else than the rwsem, or a
        // task lockdep lists as holding a semaphore.
        let odd: Vec<&Stuck> = tasks
            .iter()
            .copied()
            .filter(|s| !matches!(s.wait.kind, WaitKind::RwsemRead | WaitKind::RwsemWrite | WaitKind::Running))
            .collect();
        let first_blocked = |s: &&Stuck| {
            let e = &events[s.events[0]];
            (blocked_since(e).map(|x| (x * 1000.0) as i64).unwrap_or(i64::MAX), e.lines.first)
        };
        let holder = odd.iter().copied().min_by_key(first_blocked);
        let writers: Vec<&Stuck> = rw.iter().copied().filter(|s| s.wait.kind == WaitKind::RwsemWrite).collect();
        let readers: Vec<&Stuck> = rw.iter().copied().filter(|s| s.wait.kind == WaitKind::RwsemRead).collect();
        if let Some(w0) = writers.first() {
            for r in readers.iter().filter(|r| !has_owner_link(r)) {
                chain.push(link(
                    stuck_node(r),
                    stuck_node(w0),
                    "rwsem (read)".into(),
                    Confidence::Likely,
                    format!("a reader blocks behind a writer already queued on an rwsem: {} waits in {} while {} waits to write", stuck_node(r), r.wait.function.as_deref().unwrap_or("down_read"), stuck_node(w0)),
                    ev_of(r, events),
                ));
            }
        }
        let to_holder: Vec<&Stuck> = if writers.is_empty() { readers.clone() } else { writers.clone() };
        if let Some(h) = holder {
            let h_first = first_blocked(&h);
            for w in to_holder.iter().filter(|w| !has_owner_link(w)) {
                let earlier = h_first < first_blocked(w);
                chain.push(link(
                    stuck_node(w),
                    stuck_node(h),
                    format!("{} held by {}", w.wait.kind.as_str(), stuck_node(h)),
                    if earlier { Confidence::Likely } else { Confidence::Possible },
                    format!(
                        "no task is shown holding the rwsem; {} was blocked {} on a different primitive ({}), so it most likely took the rwsem before it got stuck",
                        stuck_node(h),
                        if earlier { "first" } else { "at the same time" },
                        h.wait.kind.as_str()
                    ),
                    {
                        let mut v = ev_of(w, events);
                        v.extend(ev_of(h, events));
                        v
                    },
                ));
            }
        }
    }
    // What the remaining tasks wait for when nobody visible holds it.
    for s in &tasks {
        if chain.iter().any(|l| l.waiter == stuck_node(s)) {
            continue;
        }
        match s.wait.kind {
            // A lock nobody visible holds matters as a link only when others wait behind it.
            WaitKind::PageLock | WaitKind::BitWait if tasks.len() > 1 => {
                chain.push(link(
                    stuck_node(s),
                    Node::resource(format!("{} (holder not in the log; possibly {} itself)", s.wait.kind.as_str(), stuck_node(s))),
                    format!("{} ({})", s.wait.kind.as_str(), s.wait.function.as_deref().unwrap_or("?")),
                    Confidence::Possible,
                    "no reported task is shown taking this lock; a task that never releases a page/bit lock it took itself deadlocks exactly like this".to_string(),
                    ev_of(s, events),
                ));
            }
            WaitKind::RcuGracePeriod => {
                if let Some(c) = stuck.iter().find(|o| o.kinds.contains(&EventKind::RcuStall)) {
                    chain.push(link(
                        stuck_node(s),
                        stuck_node(c),
                        "RCU grace period".into(),
                        Confidence::Likely,
                        format!("{} stalls the grace period {} waits for", stuck_node(c), stuck_node(s)),
                        ev_of(s, events),
                    ));
                }
            }
            _ => {}
        }
    }
    chain
}

/// The holder of the sleeping lock a task waits for, from lockdep's "locks held" listing:
/// lockdep records a lock when acquisition starts, so a blocked waiter lists the lock it
/// waits for last; another task listing the same lock holds it.
fn lockdep_holder<'a>(
    s: &Stuck,
    inc: &Incident,
    input: &Input<'_>,
    find_task: &dyn Fn(u32) -> Option<&'a Stuck>,
) -> Option<ChainLink> {
    if !matches!(s.wait.kind, WaitKind::Mutex | WaitKind::RwsemRead | WaitKind::RwsemWrite | WaitKind::Semaphore) {
        return None;
    }
    let pid = s.subject.task.as_ref()?.pid;
    let same_boot =
        |h: &&lockscope_facts::HeldLocks| h.boot == inc.boot && h.host == inc.host && h.lines.source == inc.source;
    let mine = input.held_locks.iter().filter(same_boot).find(|h| h.task.pid == pid)?;
    let wanted = mine.locks.last()?;
    let near = |h: &&lockscope_facts::HeldLocks| h.lines.first.abs_diff(mine.lines.first) < 5000;
    let (holder, lock) = input
        .held_locks
        .iter()
        .filter(same_boot)
        .filter(near)
        .filter(|h| h.task.pid != pid)
        .filter_map(|h| {
            let pos = h.locks.iter().position(|l| {
                l.name == wanted.name
                    && (l.address.is_none() || wanted.address.is_none() || l.address == wanted.address)
            })?;
            // Listed last by a task blocked on the same kind of lock: a fellow waiter.
            let fellow_waiter =
                pos + 1 == h.locks.len() && find_task(h.task.pid).is_some_and(|o| o.wait.kind == s.wait.kind);
            (!fellow_waiter).then_some((h, &h.locks[pos]))
        })
        .next()?;
    let target = find_task(holder.task.pid).map(stuck_node).unwrap_or_else(|| Node::task(holder.task.clone()));
    Some(link(
        stuck_node(s),
        target,
        format!("{} {}", s.wait.kind.as_str(), wanted.name),
        Confidence::Likely,
        format!(
            "lockdep lists {} last for {} (being acquired{}), and {} holds it{}",
            wanted.name,
            holder_name(&s.subject.task),
            wanted.acquired_at.as_deref().map(|a| format!(" at {a}")).unwrap_or_default(),
            holder.task,
            lock.acquired_at.as_deref().map(|a| format!(" (taken at {a})")).unwrap_or_default()
        ),
        vec![
            Evidence::line(
                mine.lines.source,
                mine.lines.first,
                format!("locks held by {}: {}", mine.task, wanted.name),
            ),
            Evidence::line(
                holder.lines.source,
                holder.lines.first,
                format!("locks held by {}: {}", holder.task, lock.name),
            ),
        ],
    ))
}

fn holder_name(t: &Option<lockscope_facts::TaskRef>) -> String {
    t.as_ref().map(|t| t.to_string()).unwrap_or_else(|| "?".into())
}

/// When a hung task was blocked from: report time minus the reported duration.
fn blocked_since(e: &Event) -> Option<f64> {
    Some(e.time? - e.duration_s.unwrap_or(0.0))
}

fn find_root(inc: &Incident, input: &Input<'_>) -> Option<Root> {
    let events = input.events;
    let chain = &inc.chain;
    let next = |n: &Node| chain.iter().find(|l| &l.waiter == n);
    // Follow each stuck subject's chain to its end; the end most reached is the root.
    let mut ends: BTreeMap<Node, (usize, Confidence, Vec<Evidence>, bool, usize)> = BTreeMap::new();
    for s in &inc.stuck {
        let mut n = stuck_node(s);
        let mut conf = Confidence::Certain;
        let mut seen = vec![n.clone()];
        let mut ev = Vec::new();
        let mut cycle = false;
        while let Some(l) = next(&n) {
            // A chain ending at a resource nobody visible holds ends, for the root, at the
            // last CPU or task on it: that is who to look at.
            if l.waits_for.resource.is_some() && next(&l.waits_for).is_none() && !seen.iter().all(|x| x == &n) {
                break;
            }
            conf = conf.min(l.confidence);
            ev.extend(l.evidence.iter().cloned());
            n = l.waits_for.clone();
            if seen.contains(&n) {
                cycle = true;
                break;
            }
            seen.push(n.clone());
        }
        let steps = seen.len();
        let entry = ends.entry(n).or_insert((0, conf, Vec::new(), cycle, 0));
        entry.0 += 1;
        entry.4 = entry.4.max(steps);
        entry.1 = entry.1.min(conf);
        for x in ev {
            if !entry.2.contains(&x) {
                entry.2.push(x);
            }
        }
    }
    // The end most chains reach; among equals, the end of the longest chain.
    let (node, (_, mut conf, mut ev, cycle, _)) =
        ends.into_iter().max_by_key(|(n, (count, conf, _, _, steps))| (*count, *steps, n.resource.is_none(), *conf))?;
    let hw = inc.hardware.iter().find(|h| h.confidence >= Confidence::Likely);
    let stuck_here = inc.stuck.iter().find(|s| stuck_node(s) == node);
    if cycle {
        // A task on a cycle of its own waits for itself.
        let alone = inc.chain.iter().filter(|l| l.waiter == node || l.waits_for == node).count() <= 2
            && inc.chain.iter().any(|l| l.waiter == node && l.waits_for == node);
        return Some(Root {
            cpu: node.cpu,
            task: node.task.clone(),
            kind: if alone { RootKind::SelfDeadlock } else { RootKind::Deadlock },
            reason: "deadlock: the waits-for chain is a cycle".into(),
            confidence: conf,
            evidence: ev,
        });
    }
    // An IPI target that never answered and printed nothing: look for hardware.
    let silent_cpu = stuck_here.is_none() && node.task.is_none();
    if silent_cpu && let Some(h) = hw {
        ev.push(h.evidence.clone());
        return Some(Root {
            cpu: node.cpu,
            task: None,
            kind: RootKind::Hardware,
            reason: format!(
                "hardware: {} never answered and printed nothing, and a hardware error was recorded when the machine went quiet ({}): {}",
                match node.cpu {
                    Some(c) => format!("CPU {c}"),
                    None => "the CPU the cross-CPU call waits for".to_string(),
                },
                h.record.description,
                h.reasoning
            ),
            confidence: Confidence::Likely.min(h.confidence),
            evidence: ev,
        });
    }
    // A log shows where things wait, never the cause itself: that is a judgement.
    conf = conf.min(Confidence::Likely);
    if let Some(s) = stuck_here {
        conf = conf.min(s.wait.confidence.max(Confidence::Possible));
    }
    let (kind, reason) = match stuck_here {
        Some(s) => match s.wait.kind {
            WaitKind::Running => (
                if s.irqs_enabled == Some(false) { RootKind::IrqsOffLoop } else { RootKind::PreemptOffLoop },
                format!(
                    "{} runs {} in a loop without sleeping, waiting on a lock or letting RCU advance{}{}",
                    node,
                    s.wait.function.as_deref().unwrap_or("kernel code"),
                    match s.irqs_enabled {
                        Some(false) => ", with interrupts disabled",
                        _ => "",
                    },
                    if s.kinds.contains(&EventKind::SoftLockup) {
                        "; the soft lockup shows it never scheduled, so preemption is off (or the kernel is not preemptible) in that loop"
                    } else {
                        ""
                    }
                ),
            ),
            WaitKind::PageLock | WaitKind::BitWait if inc.stuck.len() == 1 => (
                RootKind::SelfDeadlock,
                format!(
                    "{} waits for a {} ({}) that nobody in the log is shown holding: a task that never unlocked it, possibly {} itself",
                    node,
                    s.wait.kind.as_str(),
                    s.wait.function.as_deref().unwrap_or("?"),
                    node
                ),
            ),
            WaitKind::PageLock | WaitKind::BitWait => (
                RootKind::SelfDeadlock,
                format!(
                    "{} was blocked first, on a {} ({}), while the others queue behind a lock it presumably holds; the {}'s holder is not in the log — most likely {} took it itself earlier and never released it",
                    node,
                    s.wait.kind.as_str(),
                    s.wait.function.as_deref().unwrap_or("?"),
                    s.wait.kind.as_str(),
                    node.task.as_ref().map(|t| t.comm.as_str()).unwrap_or("it")
                ),
            ),
            WaitKind::IoWait if inc.stuck.len() == 1 => (
                RootKind::IoWait,
                format!(
                    "{} waits for I/O that never completes ({}{}); nothing in the log holds it up — the device, its driver or the layer below did not finish the request",
                    node,
                    s.wait.function.as_deref().unwrap_or("io_schedule"),
                    guilty(&events[s.stack_event]).map(|g| format!(" under {g}")).unwrap_or_default()
                ),
            ),
            WaitKind::Sleep | WaitKind::Unknown | WaitKind::IoWait => {
                let slept = sleeping_while_atomic(inc, events)
                    .into_iter()
                    .find(|e| e.task.as_ref().map(|t| t.pid) == node.task.as_ref().map(|t| t.pid));
                match slept {
                    Some(sl) => (
                        RootKind::SleepsHoldingSpinlock,
                        format!(
                            "{} sleeps ({}) while holding a spinlock: it scheduled in atomic context ({}), so the lock it holds is never released",
                            node,
                            s.wait.function.as_deref().unwrap_or("schedule"),
                            sl.headline
                        ),
                    ),
                    // CPUs spin on a lock it holds while it sleeps: the same fault, shown by
                    // the chain rather than by a "scheduling while atomic" report.
                    None if inc.chain.iter().any(|l| l.waits_for == node && l.via.contains("spinning")) => (
                        RootKind::SleepsHoldingSpinlock,
                        format!(
                            "{} sleeps ({}) while CPUs spin on a spinlock it holds: a spinlock holder must never sleep, so the lock is not released until it wakes",
                            node,
                            s.wait.function.as_deref().unwrap_or("schedule")
                        ),
                    ),
                    None => (
                        RootKind::HolderBlocked,
                        format!(
                            "{} is blocked in {} and holds what the others wait for",
                            node,
                            s.wait.function.as_deref().unwrap_or("schedule")
                        ),
                    ),
                }
            }
            k => {
                (RootKind::HolderBlocked, format!("{} waits for a {} whose holder is not in the log", node, k.as_str()))
            }
        },
        None => {
            let slept = sleeping_while_atomic(inc, events)
                .into_iter()
                .find(|e| e.task.as_ref().map(|t| t.pid) == node.task.as_ref().map(|t| t.pid));
            match (slept, &node.resource) {
                (Some(sl), _) => (
                    RootKind::SleepsHoldingSpinlock,
                    format!(
                        "{} went to sleep in atomic context ({}) — it sleeps while holding a spinlock",
                        node, sl.headline
                    ),
                ),
                (None, Some(r)) => (RootKind::Unknown, format!("the chain ends at {r}")),
                (None, None) if node.task.is_some() => {
                    let via = inc.chain.iter().find(|l| l.waits_for == node).map(|l| l.via.clone()).unwrap_or_default();
                    (
                        RootKind::Unknown,
                        format!(
                            "{node} holds what the others wait for ({via}) and is not reported blocked itself: it keeps the lock while running or sleeping elsewhere; the log does not show what it does"
                        ),
                    )
                }
                (None, None) => {
                    (RootKind::Unknown, format!("{} does not answer and the log shows nothing from it", node))
                }
            }
        }
    };
    Some(Root { cpu: node.cpu, task: node.task.clone(), kind, reason, confidence: conf, evidence: ev })
}

fn crash_root(inc: &Incident, events: &[Event]) -> Option<Root> {
    let first = inc
        .events
        .iter()
        .map(|&i| &events[i])
        .find(|e| e.kind != EventKind::Panic)
        .or_else(|| inc.events.first().map(|&i| &events[i]))?;
    let func = waits::meaningful_frames(&first.stack).first().map(|f| f.function.clone());
    let reason = match (&func, first.kind) {
        (Some(f), EventKind::Oops) => {
            format!("not a lockup — a kernel oops in {f}: {}", first.headline)
        }
        (_, EventKind::Panic) => format!("kernel panic: {}", first.message.as_deref().unwrap_or(&first.headline)),
        _ => first.headline.clone(),
    };
    Some(Root {
        cpu: first.cpu,
        task: first.task.clone(),
        kind: RootKind::Crash,
        reason,
        confidence: Confidence::Certain,
        evidence: vec![evidence(first)],
    })
}

fn hardware_links(inc: &Incident, input: &Input<'_>, hardware: &[&Event]) -> Vec<HardwareLink> {
    let mut out = Vec::new();
    let serious = |sev: &str| matches!(sev, "uncorrected" | "non_recoverable" | "fatal");
    let inc_wall: Option<WallTime> =
        inc.events.iter().find_map(|&i| input.events[i].wall_time.as_deref().and_then(WallTime::parse));
    let mut consider = |record: &lockscope_facts::HardwareRecord, wall: Option<WallTime>, ev: Evidence| {
        if record.severity == "info" {
            return;
        }
        let mut conf = Confidence::Possible;
        let mut why = String::from("a hardware error was recorded, but its time cannot be tied to the lockup");
        if let (Some(w), Some(iw)) = (wall, inc_wall)
            && w.near(&iw, 600)
        {
            conf = Confidence::Likely;
            why = format!("recorded at {w}, within minutes of the lockup report ({iw})");
        }
        if conf < Confidence::Likely
            && let Some(w) = wall
        {
            for s in input.sources.iter() {
                for &last in &s.silences {
                    let (d, tz) = w.distance(&last);
                    if (-60..=180).contains(&d) {
                        conf = Confidence::Likely;
                        why = format!(
                            "{} goes silent at {last}, {d:+} s from the error recorded at {w}{}",
                            s.name,
                            if tz != 0 {
                                format!(" (taking a {tz:+} h time-zone difference between the two clocks)")
                            } else {
                                String::new()
                            }
                        );
                    }
                }
            }
        }
        if !serious(&record.severity) {
            conf = Confidence::Possible;
        }
        out.push(HardwareLink { record: record.clone(), evidence: ev, confidence: conf, reasoning: why });
    };
    for e in hardware.iter().filter(|e| e.boot == inc.boot && e.host == inc.host && e.lines.source == inc.source) {
        if let Some(h) = &e.hardware {
            consider(h, e.wall_time.as_deref().and_then(WallTime::parse), evidence(e));
        }
    }
    for x in input.external {
        consider(&x.record, x.wall, Evidence::line(x.source, x.line, x.text.clone()));
    }
    // The most telling first; keep the list short.
    let rank = |h: &HardwareLink| {
        let sev = match h.record.severity.as_str() {
            "fatal" | "non_recoverable" => 3,
            "uncorrected" => 2,
            "corrected" => 1,
            _ => 0,
        };
        let part = matches!(h.record.component.as_deref(), Some("memory" | "cpu" | "cache"));
        (h.confidence, sev, part)
    };
    out.sort_by_key(|h| std::cmp::Reverse(rank(h)));
    out.truncate(5);
    out
}

fn describe_stuck(s: &Stuck) -> String {
    let mut d = format!("{}", Node::subject(&s.subject));
    match s.wait.kind {
        WaitKind::Running => d.push_str(&format!(" runs {}", s.wait.function.as_deref().unwrap_or("?"))),
        WaitKind::Sleep => d.push_str(&format!(" sleeps in {}", s.wait.function.as_deref().unwrap_or("?"))),
        WaitKind::Unknown => {
            d.push_str(&format!(" is blocked in {}", s.wait.function.as_deref().unwrap_or("schedule")))
        }
        k => {
            d.push_str(&format!(" waits for {}", k.as_str()));
            if let Some(a) = s.wait.lock_address {
                d.push_str(&format!(" at {a:#x}"));
            }
            if !s.wait.target_cpus.is_empty() {
                let cpus: Vec<String> = s.wait.target_cpus.iter().map(|c| c.to_string()).collect();
                d.push_str(&format!(" from CPU {}", cpus.join(",")));
            }
            if let Some(f) = &s.wait.function {
                d.push_str(&format!(" in {f}"));
            }
        }
    }
    if s.irqs_enabled == Some(false) {
        d.push_str(" with interrupts off");
    }
    d
}

fn summarize(inc: &Incident, events: &[Event]) -> String {
    let mut parts = Vec::new();
    let kinds: Vec<String> = inc
        .counts
        .iter()
        .filter(|(k, _)| *k != EventKind::NmiBacktrace)
        .map(
            |(k, n)| {
                if *n > 1 { format!("{} ×{n}", k.as_str().replace('_', " ")) } else { k.as_str().replace('_', " ") }
            },
        )
        .collect();
    let span = match (inc.first_time, inc.last_time) {
        (Some(a), Some(b)) if b - a >= 1.0 => format!(" over {:.0} s", b - a),
        _ => String::new(),
    };
    parts.push(format!("{} ({}{}).", inc.title, kinds.join(", "), span));
    if !inc.stuck.is_empty() {
        // Tell the chain from its first waiter to its end.
        let steps = |s: &Stuck| {
            let mut n = stuck_node(s);
            let mut k = 0;
            while let Some(l) = inc.chain.iter().find(|l| l.waiter == n) {
                n = l.waits_for.clone();
                k += 1;
                if k > inc.chain.len() {
                    break;
                }
            }
            k
        };
        let mut ordered: Vec<&Stuck> = inc.stuck.iter().collect();
        ordered.sort_by_key(|s| std::cmp::Reverse(steps(s)));
        let d: Vec<String> = ordered.into_iter().map(describe_stuck).collect();
        parts.push(format!("{}.", capitalize(&d.join("; "))));
    }
    if let Some(r) = &inc.root {
        parts.push(format!("Root cause ({}): {}.", r.confidence.as_str(), r.reason.trim_end_matches('.')));
    }
    if let Some(p) = inc.panic {
        parts.push(format!("It ended in a panic: {}.", events[p].message.as_deref().unwrap_or("")));
    }
    parts.join(" ")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
