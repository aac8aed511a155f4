//! The waits-for chain: who waits for whom, one rule per wait primitive (cross-CPU calls,
//! spinlocks, sleeping locks, page and bit locks, RCU), memory's facts first.

use super::*;
use std::collections::HashMap;

/// What every rule looks at: the incident, the input, the dump's machine state.
struct Ctx<'a, 'i> {
    inc: &'a Incident,
    input: &'a Input<'i>,
    events: &'a [Event],
    mem: Option<&'a lockscope_facts::machine::MachineState>,
    /// Tasks switched out (their trace starts in the scheduler), with the function right
    /// below the scheduler: found once, asked by every spinner.
    switched_out: Vec<(&'a str, &'a Event)>,
    /// Stuck CPUs with interrupts off, and every stuck CPU by number.
    irqs_off: Vec<&'a Stuck>,
    by_cpu: HashMap<u32, &'a Stuck>,
    /// Tasks the log shows scheduling in atomic context.
    sleepers: Vec<&'a Event>,
    /// The first two CPUs that run without waiting (one may be the asker).
    running: Vec<&'a Stuck>,
}

/// The incident's switched-out tasks and the function each was switched out in.
fn switched_out_tasks<'a>(inc: &Incident, events: &'a [Event]) -> Vec<(&'a str, &'a Event)> {
    inc.events
        .iter()
        .map(|&i| &events[i])
        .filter(|e| e.cpu.is_none() && e.task.is_some())
        .filter_map(|e| {
            let mut frames = super::stuck::stack_of(e, events).iter().filter(|x| x.reliable);
            let first = frames.next()?;
            if !is_scheduler_frame(&first.function) {
                return None;
            }
            let below = frames.find(|x| !is_scheduler_frame(&x.function))?;
            Some((below.function.split('.').next().unwrap_or(&below.function), e))
        })
        .collect()
}

impl<'a> Ctx<'a, '_> {
    fn cpu(&self, c: u32) -> Option<&'a Stuck> {
        self.by_cpu.get(&c).copied()
    }
    fn task(&self, pid: u32) -> Option<&'a Stuck> {
        self.inc.stuck.iter().find(|s| s.subject.task.as_ref().is_some_and(|t| t.pid == pid))
    }
    /// The node of a CPU: the stuck subject on it when there is one.
    fn cpu_node(&self, c: u32) -> Node {
        self.cpu(c).map(stuck_node).unwrap_or_else(|| Node::cpu(c))
    }
    fn task_node(&self, t: &lockscope_facts::TaskRef) -> Node {
        self.task(t.pid).map(stuck_node).unwrap_or_else(|| Node::task(t.clone()))
    }
    fn ev(&self, s: &Stuck) -> Vec<Evidence> {
        ev_of(s, self.events)
    }
    fn sleepers(&self) -> Vec<&'a Event> {
        self.sleepers.clone()
    }
    /// The log's sign that this link's holder slept in atomic context makes it certain.
    fn confirm_by_sleeper(&self, l: &mut ChainLink) {
        let holder = l.waits_for.task.as_ref().map(|t| t.pid);
        if let Some(sl) =
            self.sleepers().into_iter().find(|sl| sl.task.as_ref().map(|t| t.pid) == holder && holder.is_some())
        {
            l.confidence = Confidence::Certain;
            l.reasoning
                .push_str(&format!("; the log shows the same task scheduling in atomic context ({})", sl.headline));
            l.evidence.push(evidence(sl));
        }
    }
    fn tasks(&self) -> Vec<&'a Stuck> {
        self.inc.stuck.iter().filter(|s| s.subject.cpu.is_none()).collect()
    }
}

fn linked(chain: &[ChainLink], s: &Stuck) -> bool {
    let n = stuck_node(s);
    chain.iter().any(|l| l.waiter == n)
}

/// The waiters that already have a link: asked once per stuck subject.
fn waiters(chain: &[ChainLink]) -> std::collections::HashSet<Node> {
    chain.iter().map(|l| l.waiter.clone()).collect()
}

pub(super) fn build_chain(inc: &Incident, input: &Input<'_>) -> Vec<ChainLink> {
    let switched_out = switched_out_tasks(inc, input.events);
    let irqs_off = inc.stuck.iter().filter(|o| o.subject.cpu.is_some() && o.irqs_enabled == Some(false)).collect();
    let mut by_cpu = HashMap::new();
    for s in &inc.stuck {
        if let Some(c) = s.subject.cpu {
            by_cpu.entry(c).or_insert(s);
        }
    }
    let mem = input.machine_of(inc.source);
    let sleepers = sleeping_while_atomic(inc, input.events);
    let running =
        inc.stuck.iter().filter(|o| o.wait.kind == WaitKind::Running && o.subject.cpu.is_some()).take(2).collect();
    let cx = Ctx { inc, input, events: input.events, mem, switched_out, irqs_off, by_cpu, sleepers, running };
    let mut chain = Vec::new();
    for s in inc.stuck.iter().filter(|s| s.wait.kind == WaitKind::CsdIpi) {
        csd_links(&cx, s, &mut chain);
    }
    for s in inc.stuck.iter().filter(|s| {
        matches!(s.wait.kind, WaitKind::Spinlock | WaitKind::RwlockRead | WaitKind::RwlockWrite | WaitKind::BitSpinlock)
    }) {
        let l = spinlock_link(&cx, s);
        // No holder found: a task switched out inside the function that takes the lock.
        let switched = if l.waits_for.resource.is_some() { scheduled_out_holders(&cx, s) } else { Vec::new() };
        if switched.is_empty() {
            chain.push(l);
        } else {
            chain.extend(switched);
        }
    }
    let mut has_link = waiters(&chain);
    for s in inc
        .stuck
        .iter()
        .filter(|s| s.subject.cpu.is_some() && matches!(s.wait.kind, WaitKind::Running | WaitKind::BitSpinlock))
    {
        if !has_link.contains(&stuck_node(s)) {
            let found = scheduled_out_holders(&cx, s);
            has_link.extend(found.iter().map(|l| l.waiter.clone()));
            chain.extend(found);
        }
    }
    for s in cx.tasks() {
        if let Some(l) = owner_link(&cx, s, &chain) {
            chain.push(l);
        }
    }
    rwsem_inferred_links(&cx, &mut chain);
    for s in cx.tasks() {
        if !linked(&chain, s)
            && let Some(l) = unheld_link(&cx, s)
        {
            chain.push(l);
        }
    }
    name_locks(&mut chain, cx.mem);
    chain
}

/// Frames a switched-out task's trace starts with: the scheduler itself.
pub(super) fn is_scheduler_frame(name: &str) -> bool {
    let n = name.split('.').next().unwrap_or(name);
    matches!(
        n,
        "__schedule"
            | "schedule"
            | "preempt_schedule"
            | "preempt_schedule_common"
            | "_cond_resched"
            | "__cond_resched"
            | "__switch_to"
    )
}

/// A CPU spinning in a function F that waits on nothing the stack names (an inlined bit
/// spinlock, a lock taken inline): a task switched out right inside F — F directly below the
/// scheduler in its trace — was preempted there, most likely holding what the spinners wait
/// for. One such task is the likely holder; several are each possible.
fn scheduled_out_holders(cx: &Ctx<'_, '_>, s: &Stuck) -> Vec<ChainLink> {
    let Some(f) = s.wait.function.as_deref().map(|f| f.split(' ').next().unwrap_or(f).split('.').next().unwrap_or(f))
    else {
        return Vec::new();
    };
    let holders: Vec<&Event> = cx.switched_out.iter().filter(|(g, _)| *g == f).map(|&(_, e)| e).collect();
    let conf = if holders.len() == 1 { Confidence::Likely } else { Confidence::Possible };
    let kind = if s.wait.kind == WaitKind::BitSpinlock { WaitKind::BitSpinlock } else { WaitKind::Spinlock };
    holders
        .into_iter()
        .filter_map(|e| {
            let t = e.task.clone()?;
            let on = match (s.wait.lock_address, s.wait.lock_bit) {
                (Some(a), Some(b)) => format!(" on bit {b} of {a:#x}, a lock its stack does not name"),
                (Some(a), None) => format!(" on the lock at {a:#x}, which its stack does not name"),
                _ => " and waits on nothing its stack names".to_string(),
            };
            let why = format!(
                "{} spins in {f}{}{on}; {t} was switched out right inside {f} ({f} directly below the scheduler in its trace): preempted there, it most likely holds the lock {f} takes, and does not run to release it",
                stuck_node(s),
                if s.irqs_enabled == Some(false) { " with interrupts off" } else { "" },
            );
            let mut ev = cx.ev(s);
            ev.push(evidence(e));
            let many = s.subject.task.as_ref().and_then(|me| {
                cx.mem.and_then(|m| crate::memory::shared_trace_count(m, f, &me.comm)).map(|c| format!(" ({c})"))
            });
            let why = format!(
                "{why}{}",
                many.map(|c| format!("; the others that share the trace wait alike{c}")).unwrap_or_default()
            );
            let (why, via) = match s.wait.lock_address {
                Some(a) => (
                    format!("{why}{}", code_at_return(cx, e, s)),
                    format!("{} {a:#x}, taken in {f} (presumed)", kind.as_str()),
                ),
                None => (why, format!("a lock taken in {f} (presumed)")),
            };
            let mut l = link(stuck_node(s), cx.task_node(&t), via, kind, conf, why, ev);
            l.lock = s.wait.lock_address.map(|a| LockRef::of_wait(kind, a));
            Some(l)
        })
        .collect()
}

/// What the code a switched-out task returns to does, when a crash session disassembled it:
/// a `lock bts` of the very bit the spinners poll ties the task to their lock.
fn code_at_return(cx: &Ctx<'_, '_>, e: &Event, s: &Stuck) -> String {
    let Some(m) = cx.mem else { return String::new() };
    let Some(ret) =
        e.stack.iter().filter(|x| x.reliable).find(|x| !is_scheduler_frame(&x.function)).and_then(|x| x.address)
    else {
        return String::new();
    };
    let Some(listing) = m.code.iter().find(|l| l.contains(ret)) else { return String::new() };
    let from = listing.lines.iter().position(|l| l.address == ret).unwrap_or(0);
    let bts = listing.lines[from..].iter().take(4).find(|l| l.text.contains("bts"));
    let Some(b) = bts else { return String::new() };
    let bit = b
        .text
        .split('$')
        .nth(1)
        .and_then(|x| x.split(',').next())
        .and_then(|x| x.strip_prefix("0x").map_or_else(|| x.parse().ok(), |h| u32::from_str_radix(h, 16).ok()));
    // `btsl $n` on the word: bit n of its first 32 bits, as the spinners' bit is counted.
    let same = s.wait.lock_bit.zip(bit).is_some_and(|(a, b)| a == b);
    format!(
        "; the crash session's `dis` at its return address {ret:#x} (line {}) shows `{}`{}",
        b.line,
        b.text,
        if same { ": the code it stopped in takes the same bit the spinning CPU polls" } else { "" }
    )
}

/// Each lock a link names, with its symbol and kind as memory shows them.
fn name_locks(chain: &mut [ChainLink], mem: Option<&lockscope_facts::machine::MachineState>) {
    let Some(m) = mem else { return };
    for lock in chain.iter_mut().filter_map(|l| l.lock.as_mut()) {
        if let Some(st) = m.locks.iter().find(|x| x.address == lock.address) {
            lock.symbol = lock.symbol.take().or_else(|| st.symbol.clone());
        }
        lock.symbol = lock.symbol.take().or_else(|| crate::memory::lock_name(m, &lock.kind, lock.address));
    }
}

/// A cross-CPU call: the CPUs it waits for (proven by memory or the log, else suggested by
/// registers or by which CPUs have interrupts off); a target that printed nothing gets its
/// own link from memory or from the log's only sign of lock trouble.
fn csd_links(cx: &Ctx<'_, '_>, s: &Stuck, chain: &mut Vec<ChainLink>) {
    let via = format!("IPI / cross-CPU call ({})", s.wait.function.as_deref().unwrap_or("csd_lock_wait"));
    let ipi = |target: Node, conf: Confidence, why: String| {
        link(stuck_node(s), target, via.clone(), WaitKind::CsdIpi, conf, why, cx.ev(s))
    };
    if s.wait.target_cpus.is_empty() && !s.wait.candidate_cpus.is_empty() {
        for &c in &s.wait.candidate_cpus {
            chain.push(ipi(cx.cpu_node(c), Confidence::Possible, s.wait.reasoning.join("\n")));
        }
        return;
    }
    if s.wait.target_cpus.is_empty() {
        let irqs_off: Vec<&Stuck> =
            cx.irqs_off.iter().copied().filter(|o| o.subject != s.subject).take(MAX_IPI_CANDIDATES + 1).collect();
        if irqs_off.is_empty() || irqs_off.len() > MAX_IPI_CANDIDATES {
            let who = if irqs_off.is_empty() {
                "an unidentified CPU that does not answer the IPI".to_string()
            } else {
                format!("one of {} CPUs with interrupts disabled", irqs_off.len())
            };
            chain.push(ipi(Node::resource(who), Confidence::Possible, s.wait.reasoning.join("; ")));
            return;
        }
        for o in irqs_off {
            let lag = o.subject.cpu.and_then(|c| clock_lag(cx, c));
            let why = format!(
                "the target CPU is not named in the input; {} has interrupts disabled and so cannot answer an IPI{}",
                stuck_node(o),
                lag.as_ref().map(|(t, _)| format!("; {t}")).unwrap_or_default()
            );
            let mut l = ipi(stuck_node(o), Confidence::Possible, why);
            l.evidence.extend(lag.map(|(_, e)| e));
            chain.push(l);
        }
        return;
    }
    for &t in &s.wait.target_cpus {
        let lag = clock_lag(cx, t);
        let why = s.wait.reasoning.join("\n") + &lag.as_ref().map(|(t, _)| format!("\n{t}")).unwrap_or_default();
        let mut l = ipi(cx.cpu_node(t), s.wait.confidence, why);
        l.evidence.extend(cx.mem.map(|m| csd_evidence(m, s.subject.cpu, t, cx.inc.source)).unwrap_or_default());
        l.evidence.extend(lag.map(|(_, e)| e));
        chain.push(l);
        if cx.cpu(t).is_none()
            && let Some(l) = silent_target_link(cx, t)
        {
            chain.push(l);
        }
    }
}

/// CPUs with interrupts off named one by one as a call's possible target; more than this
/// and none of them is a better guess than another.
const MAX_IPI_CANDIDATES: usize = 4;

/// Run-queue clock lags this long and more mean the CPU took no timer tick: interrupts off.
const SILENT_CLOCK_NS: u64 = 2_000_000_000;

/// A CPU's run-queue clock far behind the others (crash's `runq -T`, from memory or as a
/// crash session printed it): it took no timer interrupt for that long.
fn clock_lag(cx: &Ctx<'_, '_>, cpu: u32) -> Option<(String, Evidence)> {
    let c = cx.mem?.cpus.iter().find(|c| c.cpu == cpu)?;
    let lag = c.clock_lag_ns.filter(|&l| l >= SILENT_CLOCK_NS)?;
    let read = c.clock_read.as_ref()?;
    let text = format!(
        "CPU {cpu}'s run-queue clock is {:.2} s behind the most advanced one (runq -T): no timer tick on it for that long, as with interrupts off",
        lag as f64 / 1e9
    );
    Some((text.clone(), Evidence::memory(cx.inc.source, read, text)))
}

/// The memory that shows a CPU's call to `target` still waiting: its `cfd_data` entry for
/// the target, and the call still queued on the target.
fn csd_evidence(
    m: &lockscope_facts::machine::MachineState,
    cpu: Option<u32>,
    target: u32,
    source: usize,
) -> Vec<Evidence> {
    let mut ev = Vec::new();
    if let Some(w) = m.ipi_waits.iter().find(|w| Some(w.cpu) == cpu) {
        for c in w.locked_calls.iter().filter(|c| c.target == target) {
            let text = format!("CPU {}'s call data for CPU {target} still locked (flags {:#x})", w.cpu, c.flags);
            ev.push(Evidence::memory(source, &c.read, text));
        }
    }
    for p in m.pending_calls.iter().filter(|p| p.target_cpu == target && p.source_cpu == cpu) {
        let f = p.function.as_deref().unwrap_or("?");
        ev.push(Evidence::memory(
            source,
            &p.origin,
            format!("CPU {target}'s call_single_queue holds {f} at {:#x}", p.csd),
        ));
    }
    ev
}

/// A CPU a cross-CPU call waits for that printed nothing: memory may show it spinning on a
/// held lock; else the log's only sign of lock trouble (a task that slept in atomic context)
/// may explain it.
fn silent_target_link(cx: &Ctx<'_, '_>, t: u32) -> Option<ChainLink> {
    let task_node = |tr: &lockscope_facts::TaskRef| cx.task_node(tr);
    if let Some(mut l) = cx.mem.and_then(|m| crate::memory::silent_cpu_holder(t, &task_node, m, cx.inc.source)) {
        cx.confirm_by_sleeper(&mut l);
        return Some(l);
    }
    let sl = *cx.sleepers().first()?;
    let task = sl.task.clone()?;
    let why = format!(
        "CPU {t} printed nothing; the input's only sign of lock trouble is that {task} scheduled in atomic context ({}): a task sleeping with a spinlock held makes other CPUs spin on that lock, with interrupts off under spin_lock_irqsave, which would keep CPU {t} from answering the IPI",
        sl.headline
    );
    Some(link(
        Node::cpu(t),
        Node::task(task),
        "spinlock (presumed)".into(),
        WaitKind::Spinlock,
        Confidence::Possible,
        why,
        vec![evidence(sl)],
    ))
}

/// A spinning CPU: the holder memory finds (the one task whose stack holds the lock), else
/// the task the log shows sleeping in atomic context, else a CPU that runs without waiting,
/// else the lock itself.
fn spinlock_link(cx: &Ctx<'_, '_>, s: &Stuck) -> ChainLink {
    let task_node = |t: &lockscope_facts::TaskRef| cx.task_node(t);
    let waiting: Vec<u32> = cx
        .inc
        .stuck
        .iter()
        .filter(|o| o.wait.lock_address.is_some() && o.wait.lock_address == s.wait.lock_address)
        .filter_map(|o| o.subject.task.as_ref().map(|t| t.pid))
        .collect();
    let from_memory = cx.mem.and_then(|m| {
        crate::memory::spinlock_holder(s, &task_node, m, cx.inc.source)
            .or_else(|| crate::memory::stack_word_holder(s, &waiting, &task_node, m, cx.inc.source))
    });
    if let Some(mut l) = from_memory {
        cx.confirm_by_sleeper(&mut l);
        l.evidence.extend(cx.ev(s));
        return l;
    }
    let lock = match s.wait.lock_address {
        Some(a) => format!("{} {a:#x}", s.wait.kind.as_str()),
        None => format!("a {}", s.wait.kind.as_str()),
    };
    let named = s.wait.lock_address.and_then(|a| {
        let kind = LockRef::of_wait(s.wait.kind, a).kind;
        cx.mem.and_then(|m| crate::memory::lock_name(m, &kind, a))
    });
    let lock_named = named.map_or_else(|| lock.clone(), |n| format!("{lock} ({n})"));
    let word =
        s.wait.lock_address.and_then(|a| cx.mem.and_then(|m| crate::memory::lock_word_evidence(m, a, cx.inc.source)));
    let irq_note = if s.irqs_enabled == Some(false) { " with interrupts disabled" } else { "" };
    let via = format!("{lock}, spinning{irq_note}");
    let spin = |target: Node, conf: Confidence, why: String, ev: Vec<Evidence>| {
        let mut l = link(stuck_node(s), target, via.clone(), s.wait.kind, conf, why, ev);
        l.lock = s.wait.lock_address.map(|a| LockRef::of_wait(s.wait.kind, a));
        l
    };
    let sleepers = cx.sleepers();
    if let Some(sl) = sleepers.first()
        && let Some(t) = sl.task.clone()
    {
        let still = cx.task(t.pid);
        let conf = if still.is_some() || sleepers.len() == 1 { Confidence::Likely } else { Confidence::Possible };
        let mut ev = cx.ev(s);
        ev.push(evidence(sl));
        ev.extend(still.map(|st| cx.ev(st)).unwrap_or_default());
        let why = format!(
            "the lock's holder is not running: {t} called schedule() in atomic context ({}{}), which is what sleeping while holding a spinlock looks like{}",
            sl.headline,
            sl.time.map(|x| format!(" at {x:.3} s")).unwrap_or_default(),
            if still.is_some() { ", and it is still blocked" } else { "" }
        );
        return spin(still.map(stuck_node).unwrap_or_else(|| Node::task(t.clone())), conf, why, ev);
    }
    let running = cx.running.iter().copied().find(|o| o.subject != s.subject);
    match running {
        Some(o) => {
            let why = format!("{} runs without waiting and may hold the lock", stuck_node(o));
            spin(stuck_node(o), Confidence::Possible, why, cx.ev(s))
        }
        None => spin(
            Node::resource(format!("{lock_named} (holder not shown)")),
            s.wait.confidence,
            s.wait.reasoning.join("\n"),
            cx.ev(s).into_iter().chain(word).collect(),
        ),
    }
}

/// A task sleeping on a lock whose owner is known: recorded in the lock (memory), named by
/// the hung-task detector, or listed by lockdep.
fn owner_link(cx: &Ctx<'_, '_>, s: &Stuck, chain: &[ChainLink]) -> Option<ChainLink> {
    if linked(chain, s) {
        return None;
    }
    let task_node = |t: &lockscope_facts::TaskRef| cx.task_node(t);
    if let Some(mut l) = cx.mem.and_then(|m| crate::memory::sleeping_owner(s, &task_node, m, cx.inc.source)) {
        l.evidence.extend(cx.ev(s));
        return Some(l);
    }
    let e = &cx.events[s.stack_event];
    if let Some(bo) = s.events.iter().find_map(|&i| cx.events[i].blocked_on.as_ref())
        && let Some(owner) = &bo.owner
    {
        return Some(link(
            stuck_node(s),
            cx.task_node(owner),
            bo.primitive.clone(),
            s.wait.kind,
            Confidence::Likely,
            format!("the hung-task detector reports {owner} as the likely owner of the {}", bo.primitive),
            vec![evidence(e)],
        ));
    }
    lockdep_holder(s, cx.inc, cx.input, &|pid| cx.task(pid))
}

/// Tasks blocked on an rwsem whose holder nothing records: a reader queues behind a waiting
/// writer; the writers (or readers) wait for the task blocked first on something else.
fn rwsem_inferred_links(cx: &Ctx<'_, '_>, chain: &mut Vec<ChainLink>) {
    let events = cx.events;
    let tasks = cx.tasks();
    let is_rw = |s: &&Stuck| matches!(s.wait.kind, WaitKind::RwsemRead | WaitKind::RwsemWrite);
    let writers: Vec<&Stuck> = tasks.iter().copied().filter(|s| s.wait.kind == WaitKind::RwsemWrite).collect();
    let readers: Vec<&Stuck> = tasks.iter().copied().filter(|s| s.wait.kind == WaitKind::RwsemRead).collect();
    if writers.is_empty() && readers.is_empty() {
        return;
    }
    let first_blocked = |s: &Stuck| {
        let e = &events[s.events[0]];
        (blocked_since(e).map(|x| (x * 1000.0) as i64).unwrap_or(i64::MAX), e.lines.first)
    };
    let holder = tasks
        .iter()
        .copied()
        .filter(|s| !is_rw(s) && s.wait.kind != WaitKind::Running)
        .min_by_key(|s| first_blocked(s));
    let done: Vec<Node> = chain.iter().map(|l| l.waiter.clone()).collect();
    let open = |s: &&&Stuck| !done.contains(&stuck_node(s));
    if let Some(w0) = writers.first() {
        for r in readers.iter().filter(open) {
            let why = format!(
                "a reader blocks behind a writer already queued on an rwsem: {} waits in {} while {} waits to write",
                stuck_node(r),
                r.wait.function.as_deref().unwrap_or("down_read"),
                stuck_node(w0)
            );
            let via = "rwsem (read)".to_string();
            chain.push(link(
                stuck_node(r),
                stuck_node(w0),
                via,
                WaitKind::RwsemRead,
                Confidence::Likely,
                why,
                cx.ev(r),
            ));
        }
    }
    let Some(h) = holder else { return };
    let to_holder = if writers.is_empty() { &readers } else { &writers };
    for w in to_holder.iter().filter(open) {
        let earlier = first_blocked(h) < first_blocked(w);
        let why = format!(
            "no task is shown holding the rwsem; {} was blocked {} on a different primitive ({}), so it most likely took the rwsem before it got stuck",
            stuck_node(h),
            if earlier { "first" } else { "at the same time" },
            h.wait.kind.as_str()
        );
        let mut ev = cx.ev(w);
        ev.extend(cx.ev(h));
        let conf = if earlier { Confidence::Likely } else { Confidence::Possible };
        let via = format!("{} held by {}", w.wait.kind.as_str(), stuck_node(h));
        chain.push(link(stuck_node(w), stuck_node(h), via, w.wait.kind, conf, why, ev));
    }
}

/// What a task waits for when nobody visible holds it: a page or bit lock (its own, when
/// memory shows no other task near it), or an RCU grace period a stalled CPU holds up.
fn unheld_link(cx: &Ctx<'_, '_>, s: &Stuck) -> Option<ChainLink> {
    let tasks = cx.tasks();
    match s.wait.kind {
        WaitKind::Completion => {
            let task_node = |t: &lockscope_facts::TaskRef| cx.task_node(t);
            let mut l = cx.mem.and_then(|m| crate::memory::completion_link(s, &task_node, m, cx.inc.source))?;
            l.evidence.extend(cx.ev(s));
            Some(l)
        }
        WaitKind::PageLock | WaitKind::BitWait | WaitKind::Semaphore => {
            let task_node = |t: &lockscope_facts::TaskRef| cx.task_node(t);
            if let Some(l) = cx.mem.and_then(|m| crate::memory::bit_lock_holder(s, &task_node, m, cx.inc.source)) {
                let mut l = l;
                l.evidence.extend(cx.ev(s));
                return Some(l);
            }
            // A lock nobody visible holds matters as a link only when others wait behind it.
            (tasks.len() > 1).then(|| {
                link(
                    stuck_node(s),
                    Node::resource(format!("{} (holder not shown; possibly {} itself)", s.wait.kind.as_str(), stuck_node(s))),
                    format!("{} ({})", s.wait.kind.as_str(), s.wait.function.as_deref().unwrap_or("?")),
                    s.wait.kind,
                    Confidence::Possible,
                    format!(
                        "no task in the input is shown taking this lock; a task that never releases a {} it took itself deadlocks exactly like this",
                        if s.wait.kind == WaitKind::Semaphore { "semaphore" } else { "page/bit lock" }
                    ),
                    cx.ev(s),
                )
            })
        }
        WaitKind::RcuGracePeriod => {
            if let Some((holders, why, read)) = cx.mem.and_then(crate::memory::rcu_holders) {
                // One link, to the first holder: a task waits for the whole grace period.
                let to = holders.first()?;
                let target = match (to.cpu, &to.task) {
                    (Some(c), _) => cx.cpu_node(c),
                    (None, Some(t)) => cx.task_node(t),
                    _ => return None,
                };
                let mut ev = vec![Evidence::memory(cx.inc.source, read, "rcu_state: grace period in progress".into())];
                ev.extend(cx.ev(s));
                return Some(link(
                    stuck_node(s),
                    target,
                    "RCU grace period".into(),
                    WaitKind::RcuGracePeriod,
                    Confidence::Certain,
                    why,
                    ev,
                ));
            }
            let c = cx.inc.stuck.iter().find(|o| o.kinds.contains(&EventKind::RcuStall))?;
            Some(link(
                stuck_node(s),
                stuck_node(c),
                "RCU grace period".into(),
                WaitKind::RcuGracePeriod,
                Confidence::Likely,
                format!("{} stalls the grace period {} waits for", stuck_node(c), stuck_node(s)),
                cx.ev(s),
            ))
        }
        _ => None,
    }
}

/// The holder of the sleeping lock a task waits for, from lockdep's "locks held" listing:
/// lockdep records a lock when acquisition starts, so a blocked waiter lists the lock it
/// waits for last; another task listing the same lock holds it.
pub(super) fn lockdep_holder<'a>(
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
        s.wait.kind,
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
