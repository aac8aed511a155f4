//! Per-incident reasoning: stuck subjects and their waits, the waits-for chain, the root,
//! hardware correlation and the summary sentence.

use crate::waits::{self, StackWait};
use crate::{ChainLink, Evidence, HardwareLink, Incident, Input, LockRef, Node, Root, RootKind, Stuck, Wait, WallTime};
use lockscope_facts::{Arch, Confidence, Event, EventKind, Frame, Subject, WaitKind};
use std::collections::BTreeMap;

mod chain;
mod root;
mod stuck;
mod words;

use chain::build_chain;
use root::{crash_root, find_root, hardware_links};
use stuck::{guilty, stuck_subjects, wait_groups};
use words::summarize;

fn evidence(e: &Event) -> Evidence {
    match &e.memory {
        Some(read) => Evidence::memory(e.lines.source, read, e.headline.clone()),
        None => Evidence::line(e.lines.source, e.lines.first, e.headline.clone()),
    }
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
        // A switched-out task's trace (crash `bt`): kept only when it is shown blocked.
        (None, Some(t)) if e.kind == EventKind::NmiBacktrace => Some(Key::Task(t.pid)),
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
    // Backtraces alone (a crash `bt -a`) that show CPUs spinning are reasoned about like a
    // lockup report.
    if inc.kind.is_lockup() || inc.kind == EventKind::NmiBacktrace {
        let chain = build_chain(inc, input);
        inc.chain = chain;
        inc.hardware = hardware_links(inc, input, hardware);
        inc.root = find_root(inc, input);
        if let Some(r) = inc.root.as_mut() {
            r.lock = held_lock(&inc.chain, r);
        }
    } else {
        inc.root = crash_root(inc, events);
    }
    inc.summary = summarize(inc, events);
}

/// The lock the root holds that others wait for: the one it waits for itself (a
/// self-deadlock), else the first lock a link into it names.
fn held_lock(chain: &[ChainLink], r: &Root) -> Option<LockRef> {
    let node = Node { cpu: r.cpu, task: r.task.clone(), resource: None };
    let into = || chain.iter().filter(|l| l.waits_for == node && l.lock.is_some());
    into().find(|l| l.waiter == node).or_else(|| into().next()).and_then(|l| l.lock.clone())
}

fn stuck_node(s: &Stuck) -> Node {
    Node::subject(&s.subject)
}

fn link(
    waiter: Node,
    waits_for: Node,
    via: String,
    wait: WaitKind,
    confidence: Confidence,
    reasoning: String,
    evidence: Vec<Evidence>,
) -> ChainLink {
    ChainLink { waiter, waits_for, via, wait, lock: None, confidence, reasoning, evidence }
}

fn ev_of(s: &Stuck, events: &[Event]) -> Vec<Evidence> {
    vec![evidence(&events[s.stack_event])]
}

fn sleeping_while_atomic<'a>(inc: &Incident, events: &'a [Event]) -> Vec<&'a Event> {
    inc.precursors
        .iter()
        .map(|&p| &events[p])
        .filter(|e| e.subkind == Some(lockscope_facts::Subkind::SchedulingWhileAtomic) && e.task.is_some())
        .collect()
}

fn holder_name(t: &Option<lockscope_facts::TaskRef>) -> String {
    t.as_ref().map(|t| t.to_string()).unwrap_or_else(|| "?".into())
}

/// When a hung task was blocked from: report time minus the reported duration.
fn blocked_since(e: &Event) -> Option<f64> {
    Some(e.time? - e.duration_s.unwrap_or(0.0))
}
