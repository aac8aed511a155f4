//! The diagnosis engine: from facts to "who waits for whom, and why it all stopped".
//!
//! Position in the flow: takes the [`Event`]s and lock listings produced by the log reader
//! (and, later, by the dump readers — the same types), plus hardware records from an IPMI
//! SEL, and produces a [`Diagnosis`]: incidents (events of one lockup merged, repeats
//! counted), what each stuck CPU or task waits for ([`waits`], [`x86`]), the waits-for
//! chain, the root cause with a confidence word, and the evidence for every step.
//! `lockscope-report` prints it.

pub mod graph;
pub mod waits;
pub mod wall;

mod memory;
mod reason;
pub mod stream;

use lockscope_facts::machine::{MachineState, MemoryRead};
use lockscope_facts::{Confidence, Event, EventKind, HardwareRecord, HeldLocks, Subject, TaskRef, WaitKind};
use serde::Serialize;
pub use wall::WallTime;

/// A hardware record from outside the kernel log (an IPMI SEL row).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExternalRecord {
    pub record: HardwareRecord,
    pub wall: Option<WallTime>,
    pub source: usize,
    pub line: u64,
    pub text: String,
}

/// What an input file tells beyond its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SourceFacts {
    pub name: String,
    pub hosts: Vec<String>,
    /// When the log went silent: the last line before each reboot, and the last line.
    pub silences: Vec<WallTime>,
    pub last_line: u64,
}

/// Everything the engine reasons about.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub events: &'a [Event],
    pub held_locks: &'a [HeldLocks],
    pub external: &'a [ExternalRecord],
    pub sources: &'a [SourceFacts],
    /// The machine state read from a vmcore's memory, by input index: facts the rules use
    /// beside (and before) what the log printed.
    pub machine: &'a [(usize, MachineState)],
}

impl<'a> Input<'a> {
    /// The machine state of one input, when it is a vmcore.
    pub fn machine_of(&self, source: usize) -> Option<&'a MachineState> {
        self.machine.iter().find(|(s, _)| *s == source).map(|(_, m)| m)
    }
}

/// A pointer into the input that proves a step: a file and line, or a read of a vmcore's
/// memory (then `line` is 0 and `memory` says where and what was read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub source: usize,
    pub line: u64,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryRead>,
}

impl Evidence {
    /// A line of a log.
    pub fn line(source: usize, line: u64, text: String) -> Evidence {
        Evidence { source, line, text, memory: None }
    }

    /// A read of a vmcore's memory, or one a pasted crash session shows (then its line).
    pub fn memory(source: usize, read: &MemoryRead, text: String) -> Evidence {
        Evidence { source, line: read.line.unwrap_or(0), text, memory: Some(read.clone()) }
    }
}

/// A node of the waits-for graph: a CPU, a task, or a resource nobody visible holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Node {
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
    /// A lock or condition when the holder is not known (`spinlock 0xffffffffc054e0a0`).
    pub resource: Option<String>,
}

impl Node {
    pub fn subject(s: &Subject) -> Node {
        Node { cpu: s.cpu, task: s.task.clone(), resource: None }
    }
    pub fn cpu(cpu: u32) -> Node {
        Node { cpu: Some(cpu), task: None, resource: None }
    }
    pub fn task(t: TaskRef) -> Node {
        Node { cpu: None, task: Some(t), resource: None }
    }
    pub fn resource(r: String) -> Node {
        Node { cpu: None, task: None, resource: Some(r) }
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.cpu, &self.task, &self.resource) {
            (Some(c), Some(t), _) => write!(f, "CPU {c} ({t})"),
            (Some(c), None, _) => write!(f, "CPU {c}"),
            (None, Some(t), _) => write!(f, "task {t}"),
            (None, None, Some(r)) => f.write_str(r),
            (None, None, None) => f.write_str("unknown"),
        }
    }
}

/// One edge of the waits-for chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChainLink {
    pub waiter: Node,
    pub waits_for: Node,
    /// How, in words: `spinlock 0xffffffffc054e0a0`, `IPI (csd_lock_wait)`, `rwsem (write)`.
    pub via: String,
    /// The primitive waited on.
    pub wait: WaitKind,
    /// The lock waited for, when its address is known.
    pub lock: Option<LockRef>,
    pub confidence: Confidence,
    pub reasoning: String,
    pub evidence: Vec<Evidence>,
}

/// A lock as the chain and the root name it: where it is, what covers it, what kind it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockRef {
    #[serde(serialize_with = "lockscope_facts::hex::address")]
    pub address: u64,
    /// `symbol+off [module]`, when a symbol covers it.
    pub symbol: Option<String>,
    /// `spinlock`, `rwlock`, `bit_spinlock`, `mutex`, `rwsem`, `semaphore`, `bit_lock`,
    /// `page_lock`, `completion`.
    pub kind: String,
}

impl LockRef {
    /// The lock a wait of this kind at this address is on; its symbol is filled in from
    /// memory when a dump shows it.
    pub fn of_wait(wait: WaitKind, address: u64) -> LockRef {
        let kind = match wait {
            WaitKind::Spinlock => "spinlock",
            WaitKind::RwlockRead | WaitKind::RwlockWrite => "rwlock",
            WaitKind::BitSpinlock => "bit_spinlock",
            WaitKind::Mutex => "mutex",
            WaitKind::RwsemRead | WaitKind::RwsemWrite => "rwsem",
            WaitKind::Semaphore => "semaphore",
            WaitKind::PageLock => "page_lock",
            WaitKind::BitWait => "bit_lock",
            WaitKind::Completion => "completion",
            _ => "unknown",
        };
        LockRef { address, symbol: None, kind: kind.into() }
    }
}

/// What a stuck CPU or task waits for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Wait {
    pub kind: WaitKind,
    /// The frame that shows the wait.
    pub function: Option<String>,
    /// The first frame outside the wait machinery above it: the code that took the lock or
    /// started the wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_from: Option<String>,
    #[serde(serialize_with = "lockscope_facts::hex::optional")]
    pub lock_address: Option<u64>,
    /// For a bit lock: the bit of the word at `lock_address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_bit: Option<u32>,
    /// CPUs a cross-CPU call waits for.
    pub target_cpus: Vec<u32>,
    /// CPUs it may wait for, when the registers suggest but cannot prove it.
    pub candidate_cpus: Vec<u32>,
    pub confidence: Confidence,
    /// Step-by-step justification (register reads, decoded instructions).
    pub reasoning: Vec<String>,
}

/// A CPU or task that some report says is stuck, with every report about it merged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stuck {
    pub subject: Subject,
    pub kinds: Vec<EventKind>,
    /// Indexes into the input events.
    pub events: Vec<usize>,
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    pub max_duration_s: Option<f64>,
    /// Interrupts enabled where the CPU was stuck (from EFLAGS/PSTATE), when known.
    pub irqs_enabled: Option<bool>,
    pub state: Option<String>,
    /// The event whose stack best shows where it is stuck.
    pub stack_event: usize,
    pub wait: Wait,
}

/// Stuck CPUs/tasks waiting on the same primitive (and the same lock, when its address is
/// known): 34 CPUs spinning on one lock are one fact, not 34.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WaitGroup {
    pub kind: WaitKind,
    #[serde(serialize_with = "lockscope_facts::hex::optional")]
    pub lock_address: Option<u64>,
    pub members: Vec<Subject>,
}

/// A hardware error that may explain an incident.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareLink {
    pub record: HardwareRecord,
    pub evidence: Evidence,
    pub confidence: Confidence,
    pub reasoning: String,
}

/// The root cause of an incident.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Root {
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
    /// What kind of cause it is (docs/json-schema.md lists them).
    pub kind: RootKind,
    /// The lock the root holds that others wait for, when the chain names one.
    pub lock: Option<LockRef>,
    pub reason: String,
    pub confidence: Confidence,
    pub evidence: Vec<Evidence>,
}

/// The kinds of root cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A task sleeps while holding a spinlock others spin on.
    SleepsHoldingSpinlock,
    /// A CPU spins (or runs) while holding a lock others wait for.
    SpinsHoldingLock,
    /// A CPU loops with interrupts disabled.
    IrqsOffLoop,
    /// A CPU loops with preemption disabled (an RCU reader that never ends among them).
    PreemptOffLoop,
    /// The waits-for chain is a cycle.
    Deadlock,
    /// A task waits for a lock it holds itself.
    SelfDeadlock,
    /// The holder of what the others wait for is itself blocked on something else.
    HolderBlocked,
    /// I/O that never completes.
    IoWait,
    /// A hardware error.
    Hardware,
    /// Not a lockup: an oops or a panic.
    Crash,
    Unknown,
}

/// The events of one lockup or crash, merged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    pub id: usize,
    pub title: String,
    pub kind: EventKind,
    pub source: usize,
    pub host: Option<String>,
    pub boot: u32,
    pub release: Option<String>,
    /// All events of the incident, by index into the input.
    pub events: Vec<usize>,
    /// Oopses and warnings shortly before, which often hold the cause (`scheduling while atomic`).
    pub precursors: Vec<usize>,
    /// The panic that ended it.
    pub panic: Option<usize>,
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    /// Lockup reports per kind, repeats included.
    pub counts: Vec<(EventKind, usize)>,
    pub stuck: Vec<Stuck>,
    pub groups: Vec<WaitGroup>,
    pub chain: Vec<ChainLink>,
    pub root: Option<Root>,
    pub hardware: Vec<HardwareLink>,
    pub summary: String,
    /// Later incidents that were the same as this one (same kind, title, stuck CPUs and
    /// tasks by name, waits and root): folded into it instead of reported again.
    #[serde(skip_serializing_if = "Recurrences::is_empty")]
    pub recurrences: Recurrences,
}

/// How often an incident came back, with where it did the first few times.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Recurrences {
    pub count: usize,
    /// The first [`stream::RECURRENCE_SAMPLES`] of them.
    pub samples: Vec<Occurrence>,
}

impl Recurrences {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Where an incident happened again.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Occurrence {
    pub source: usize,
    pub host: Option<String>,
    pub boot: u32,
    pub line: u64,
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    pub summary: String,
    pub incidents: Vec<Incident>,
    /// Root and chain of the main incident (the first lockup; else the first crash).
    pub root: Option<Root>,
    pub chain: Vec<ChainLink>,
}

/// Seconds between events still counted as one incident.
const INCIDENT_GAP_S: f64 = 900.0;
/// Lines between events without time stamps still counted as one incident.
const INCIDENT_GAP_LINES: u64 = 5000;
/// How long before a lockup an oops or warning is kept as a precursor.
const PRECURSOR_WINDOW_S: f64 = 900.0;

fn near(a: &Event, b: &Event) -> bool {
    match (a.time, b.time) {
        (Some(x), Some(y)) => (y - x).abs() <= INCIDENT_GAP_S,
        _ => b.lines.first.abs_diff(a.lines.last) <= INCIDENT_GAP_LINES,
    }
}

pub fn diagnose(input: Input<'_>) -> Diagnosis {
    let mut incidents = analyze_incidents(&input);
    for (id, inc) in incidents.iter_mut().enumerate() {
        inc.id = id + 1;
    }
    conclude(incidents, input.events.is_empty())
}

/// Groups the events into incidents and reasons about each (ids not yet given).
pub(crate) fn analyze_incidents(input: &Input<'_>) -> Vec<Incident> {
    // Tasks a crash session shows blocked in D state (`foreach UN bt`, `ps` UN).
    let blocked: std::collections::HashSet<(usize, u32)> = input
        .machine
        .iter()
        .flat_map(|(src, m)| {
            m.blocked_tasks.iter().filter(|t| t.origin.line.is_some()).map(move |t| (*src, t.task.pid))
        })
        .collect();
    let mut incidents = group(input.events, &blocked);
    // Hardware errors are few; find them once, not once per incident.
    let hardware: Vec<&Event> = input.events.iter().filter(|e| e.kind == EventKind::HardwareError).collect();
    for inc in incidents.iter_mut() {
        reason::analyze(inc, input, &hardware);
    }
    incidents
}

/// The verdict over all incidents: the main one's root and chain, and a summary.
pub(crate) fn conclude(incidents: Vec<Incident>, no_events: bool) -> Diagnosis {
    let main = incidents.iter().find(|i| i.kind.is_lockup()).or_else(|| incidents.first());
    let (summary, root, chain) = match main {
        Some(m) => {
            let mut s = m.summary.clone();
            let others = incidents.len() - 1;
            if others > 0 {
                s.push_str(&format!(" The input holds {others} more incident{}.", if others == 1 { "" } else { "s" }));
            }
            let again: usize = incidents.iter().map(|i| i.recurrences.count).sum();
            if again > 0 {
                s.push_str(&format!(
                    " Incidents came back {again} more time{}, folded into the first occurrence.",
                    if again == 1 { "" } else { "s" }
                ));
            }
            (s, m.root.clone(), m.chain.clone())
        }
        None if no_events => {
            ("No kernel report (lockup, hang, oops or panic) found in the input.".to_string(), None, Vec::new())
        }
        None => ("No lockup or crash found; only informational reports.".to_string(), None, Vec::new()),
    };
    Diagnosis { summary, incidents, root, chain }
}

fn empty_incident(kind: EventKind, e: &Event) -> Incident {
    Incident {
        id: 0,
        title: e.title.clone(),
        kind,
        source: e.lines.source,
        host: e.host.clone(),
        boot: e.boot,
        release: e.release.clone(),
        events: Vec::new(),
        precursors: Vec::new(),
        panic: None,
        first_time: e.time,
        last_time: e.time,
        counts: Vec::new(),
        stuck: Vec::new(),
        groups: Vec::new(),
        chain: Vec::new(),
        root: None,
        hardware: Vec::new(),
        summary: String::new(),
        recurrences: Recurrences::default(),
    }
}

/// Merges events into incidents: per input, host and boot, lockup reports close in time
/// form one incident; NMI backtraces and the ending panic join it; oopses and warnings
/// shortly before are its precursors. A crash without lockup is an incident of its own.
fn group(events: &[Event], blocked: &std::collections::HashSet<(usize, u32)>) -> Vec<Incident> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&events[a], &events[b]);
        (x.lines.source, &x.host, x.boot, x.lines.first).cmp(&(y.lines.source, &y.host, y.boot, y.lines.first))
    });
    let mut out: Vec<Incident> = Vec::new();
    let mut open: Option<usize> = None; // index into out
    let mut pending: Vec<usize> = Vec::new(); // oopses/warnings/NMI backtraces before any lockup
    let mut last_key = None;
    let mut last_event: Option<usize> = None;
    for &i in &order {
        let e = &events[i];
        let key = (e.lines.source, e.host.clone(), e.boot);
        if last_key.as_ref() != Some(&key) {
            flush_pending(&mut out, &mut pending, events, blocked);
            open = None;
            last_key = Some(key);
        }
        let joins = open.is_some() && last_event.is_some_and(|l| near(&events[l], e));
        match e.kind {
            k if k.is_lockup() => {
                if joins {
                    out[open.unwrap()].events.push(i);
                } else {
                    let mut inc = empty_incident(k, e);
                    inc.events.push(i);
                    // Earlier reports of this boot, close enough, belong to it.
                    for &p in &pending {
                        let pe = &events[p];
                        let in_window = match (pe.time, e.time) {
                            (Some(a), Some(b)) => b - a <= PRECURSOR_WINDOW_S,
                            _ => true,
                        };
                        if !in_window {
                            continue;
                        }
                        if pe.kind == EventKind::NmiBacktrace {
                            inc.events.push(p);
                        } else {
                            inc.precursors.push(p);
                        }
                    }
                    pending.retain(|p| !inc.events.contains(p) && !inc.precursors.contains(p));
                    flush_pending(&mut out, &mut pending, events, blocked);
                    out.push(inc);
                    open = Some(out.len() - 1);
                }
                last_event = Some(i);
            }
            EventKind::NmiBacktrace if joins => {
                out[open.unwrap()].events.push(i);
                last_event = Some(i);
            }
            EventKind::Panic if joins && out[open.unwrap()].panic.is_none() => {
                let inc = &mut out[open.unwrap()];
                inc.panic = Some(i);
                inc.events.push(i);
                last_event = Some(i);
            }
            EventKind::Oops | EventKind::Warning if joins => {
                out[open.unwrap()].precursors.push(i);
            }
            EventKind::HardwareError => {}
            _ => {
                pending.push(i);
                last_event = if open.is_some() { last_event } else { Some(i) };
            }
        }
    }
    flush_pending(&mut out, &mut pending, events, blocked);
    for inc in &mut out {
        inc.events.sort_by_key(|&i| (events[i].lines.first, i));
        let times: Vec<f64> = inc.events.iter().filter_map(|&i| events[i].time).collect();
        inc.first_time = times.iter().copied().reduce(f64::min);
        inc.last_time = times.iter().copied().reduce(f64::max);
        let mut counts: Vec<(EventKind, usize)> = Vec::new();
        for &i in &inc.events {
            let k = events[i].kind;
            match counts.iter_mut().find(|(c, _)| *c == k) {
                Some(c) => c.1 += 1,
                None => counts.push((k, 1)),
            }
        }
        inc.counts = counts;
        if inc.release.is_none() {
            inc.release = inc.events.iter().find_map(|&i| events[i].release.clone());
        }
    }
    out
}

/// A backtrace crash printed (`bt -a` of a dump) showing a CPU spin — on a lock, for a
/// cross-CPU call — or run with interrupts off outside the idle task.
fn spinning_snapshot(e: &Event) -> bool {
    let from_crash = e.stack.iter().any(|f| f.stack_pointer.is_some());
    let idle = e.task.as_ref().is_some_and(|t| t.pid == 0) || waits::is_idle(&e.stack);
    let irqs_off = e.registers.as_ref().and_then(|r| r.irqs_enabled()) == Some(false);
    e.kind == EventKind::NmiBacktrace
        && e.cpu.is_some()
        && from_crash
        && !idle
        && (waits::classify(&e.stack).kind.spins() || irqs_off)
}

/// Crashes that no lockup followed become incidents of their own (an oops and its panic);
/// so do crash backtraces alone that show CPUs spinning (a pasted `bt -a`, no report).
fn flush_pending(
    out: &mut Vec<Incident>,
    pending: &mut Vec<usize>,
    events: &[Event],
    blocked: &std::collections::HashSet<(usize, u32)>,
) {
    let crashes: Vec<usize> =
        pending.iter().copied().filter(|&p| matches!(events[p].kind, EventKind::Oops | EventKind::Panic)).collect();
    let blocked_task = |e: &Event| {
        e.kind == EventKind::NmiBacktrace
            && e.cpu.is_none()
            && e.task.as_ref().is_some_and(|t| blocked.contains(&(e.lines.source, t.pid)))
    };
    let spinning = pending.iter().find(|&&p| spinning_snapshot(&events[p]));
    let sleeping = pending.iter().find(|&&p| blocked_task(&events[p]));
    if crashes.is_empty()
        && let Some(&first) = spinning.or(sleeping)
    {
        let mut inc = empty_incident(EventKind::NmiBacktrace, &events[first]);
        inc.title = if spinning.is_some() {
            "CPUs spinning in crash backtraces (no lockup report in the input)".to_string()
        } else {
            "tasks blocked in D state in crash backtraces (no hung-task report in the input)".to_string()
        };
        inc.events = pending.iter().copied().filter(|&p| events[p].kind == EventKind::NmiBacktrace).collect();
        out.push(inc);
        pending.clear();
        return;
    }
    if let Some(&first) = crashes.first() {
        let e = &events[first];
        let mut inc = empty_incident(e.kind, e);
        for &p in pending.iter() {
            let pe = &events[p];
            match pe.kind {
                EventKind::Panic if inc.panic.is_none() => {
                    inc.panic = Some(p);
                    inc.events.push(p);
                }
                EventKind::Oops | EventKind::Panic | EventKind::NmiBacktrace => inc.events.push(p),
                _ => inc.precursors.push(p),
            }
        }
        out.push(inc);
    }
    pending.clear();
}
