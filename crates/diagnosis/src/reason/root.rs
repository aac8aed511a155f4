//! The root of an incident: the end most chains reach, its kind and reason; hardware links;
//! the root of a crash that is not a lockup.

use super::*;

pub(super) fn find_root(inc: &Incident, input: &Input<'_>) -> Option<Root> {
    let events = input.events;
    let chain = &inc.chain;
    // The first link out of each node.
    let mut out: BTreeMap<&Node, &ChainLink> = BTreeMap::new();
    for l in chain {
        out.entry(&l.waiter).or_insert(l);
    }
    let next = |n: &Node| out.get(n).copied();
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
            // One read cited once, however many links cite it.
            let same_read = |y: &Evidence| y.memory.is_some() && y.memory == x.memory;
            if !entry.2.iter().any(|y| *y == x || same_read(y)) {
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
        let own = inc.chain.iter().find(|l| l.waiter == node && l.waits_for == node);
        let alone = inc.chain.iter().filter(|l| l.waiter == node || l.waits_for == node).count() <= 2 && own.is_some();
        let reason = match own {
            Some(l) if alone => {
                let others = inc.chain.iter().filter(|x| x.waits_for == node && x.waiter != node).count();
                let behind = if others > 0 { "; the others queue behind locks it holds" } else { "" };
                let sym =
                    l.lock.as_ref().and_then(|k| k.symbol.as_deref()).map(|s| format!(" ({s})")).unwrap_or_default();
                format!(
                    "self-deadlock: {node} waits for the {}{sym} that it holds itself{behind}; the lock records no owner, and no other task refers to it",
                    l.via
                )
            }
            _ => "deadlock: the waits-for chain is a cycle".into(),
        };
        return Some(Root {
            cpu: node.cpu,
            task: node.task.clone(),
            kind: if alone { RootKind::SelfDeadlock } else { RootKind::Deadlock },
            lock: None,
            reason,
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
            lock: None,
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
                    "{} waits for a {} ({}) that nobody in the input is shown holding: a task that never unlocked it, possibly {} itself",
                    node,
                    s.wait.kind.as_str(),
                    s.wait.function.as_deref().unwrap_or("?"),
                    node
                ),
            ),
            WaitKind::PageLock | WaitKind::BitWait => (
                RootKind::SelfDeadlock,
                format!(
                    "{} was blocked first, on a {} ({}), while the others queue behind a lock it presumably holds; the {}'s holder is not shown — most likely {} took it itself earlier and never released it",
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
            // A CPU reported stuck whose stack the input does not show.
            WaitKind::Unknown if s.wait.function.is_none() && s.subject.cpu.is_some() => (
                RootKind::Unknown,
                format!(
                    "{node} is reported stuck, but the input shows none of its stack: what it runs, and why, is unknown"
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
                (
                    // Spinning on a lock nobody is shown holding says nothing of its holder.
                    if k.spins() { RootKind::Unknown } else { RootKind::HolderBlocked },
                    match next(&node).and_then(|l| l.lock.as_ref()) {
                        Some(lk) => format!(
                            "{} waits for the {} {:#x}{}, whose holder the input does not show",
                            node,
                            k.as_str(),
                            lk.address,
                            lk.symbol.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
                        ),
                        None => format!("{} waits for a {} whose holder the input does not show", node, k.as_str()),
                    },
                )
            }
        },
        None => {
            let slept = sleeping_while_atomic(inc, events)
                .into_iter()
                .find(|e| e.task.as_ref().map(|t| t.pid) == node.task.as_ref().map(|t| t.pid));
            let asleep = asleep_in_memory(inc, input, &node);
            match (slept, &node.resource) {
                (Some(sl), _) => (
                    RootKind::SleepsHoldingSpinlock,
                    format!(
                        "{} went to sleep in atomic context ({}) — it sleeps while holding a spinlock",
                        node, sl.headline
                    ),
                ),
                (None, Some(r)) => (RootKind::Unknown, format!("the chain ends at {r}")),
                (None, None) if node.task.is_some() && switched_out(inc, events, &node).is_some() => {
                    let (func, within) = switched_out(inc, events, &node).unwrap_or_default();
                    (
                        RootKind::SleepsHoldingSpinlock,
                        format!(
                            "{node} was switched out ({func}) inside {within} while CPUs spin on the lock it holds there: off CPU, it does not run to release it"
                        ),
                    )
                }
                (None, None) if asleep.is_some() => asleep_root(&node, asleep, inc.source, &mut ev),
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
    // A root spinning on a lock nobody is shown holding: the lock's own evidence too.
    if let Some(l) = next(&node).filter(|l| l.waits_for.resource.is_some()) {
        for x in &l.evidence {
            if !ev.iter().any(|y| y == x || (y.memory.is_some() && y.memory == x.memory)) {
                ev.push(x.clone());
            }
        }
    }
    Some(Root { cpu: node.cpu, task: node.task.clone(), kind, lock: None, reason, confidence: conf, evidence: ev })
}

/// A task the chain's spinners wait for, shown switched out: its trace in the incident starts
/// in the scheduler. (scheduler frame, the first frame below it).
fn switched_out(inc: &Incident, events: &[Event], node: &Node) -> Option<(String, String)> {
    let pid = node.task.as_ref()?.pid;
    if !inc.chain.iter().any(|l| &l.waits_for == node && l.wait.spins()) {
        return None;
    }
    inc.events.iter().map(|&i| &events[i]).filter(|e| e.task.as_ref().is_some_and(|t| t.pid == pid)).find_map(|e| {
        let frames: Vec<&lockscope_facts::Frame> = e.stack.iter().filter(|f| f.reliable).collect();
        let top = frames.first().filter(|f| super::chain::is_scheduler_frame(&f.function))?;
        let below = frames.iter().find(|f| !super::chain::is_scheduler_frame(&f.function))?;
        Some((top.function.clone(), below.function.clone()))
    })
}

/// A task others spin on that memory shows asleep (blocked in D state, no report of it):
/// its state and the first function of its stack that is not the scheduler's.
fn asleep_in_memory<'a>(
    inc: &Incident,
    input: &Input<'a>,
    node: &Node,
) -> Option<(&'a lockscope_facts::machine::TaskState, String)> {
    let pid = node.task.as_ref()?.pid;
    if !inc.chain.iter().any(|l| &l.waits_for == node && l.wait.spins()) {
        return None;
    }
    let m = input.machine_of(inc.source)?;
    let t = m.blocked_tasks.iter().find(|t| t.task.pid == pid)?;
    // The frame that says how it sleeps (msleep, a mutex …), else the first outside the scheduler.
    let wait = waits::classify(&t.stack).frame.map(|f| f.function);
    let func = wait.or_else(|| {
        let f = t.stack.iter().filter(|f| f.reliable).find(|f| !super::chain::is_scheduler_frame(&f.function))?;
        Some(f.function.clone())
    })?;
    Some((t, func))
}

/// The root a task asleep in memory makes, with the read that shows it.
fn asleep_root(
    node: &Node,
    asleep: Option<(&lockscope_facts::machine::TaskState, String)>,
    source: usize,
    ev: &mut Vec<Evidence>,
) -> (RootKind, String) {
    let Some((t, func)) = asleep else { return (RootKind::Unknown, format!("{node} holds what the others wait for")) };
    ev.push(Evidence::memory(source, &t.origin, format!("{node} is in state {} in {func}", t.state)));
    (
        RootKind::SleepsHoldingSpinlock,
        format!(
            "{node} sleeps (state {} in {func}, read from memory) while CPUs spin on a spinlock it holds: a spinlock holder must never sleep, so the lock is not released until it wakes",
            t.state
        ),
    )
}

pub(super) fn crash_root(inc: &Incident, events: &[Event]) -> Option<Root> {
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
        lock: None,
        reason,
        confidence: Confidence::Certain,
        evidence: vec![evidence(first)],
    })
}

pub(super) fn hardware_links(inc: &Incident, input: &Input<'_>, hardware: &[&Event]) -> Vec<HardwareLink> {
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
