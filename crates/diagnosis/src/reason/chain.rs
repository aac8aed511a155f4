//! The waits-for chain: who waits for whom, one rule per wait primitive (cross-CPU calls,
//! spinlocks, sleeping locks, page and bit locks, RCU), memory's facts first.

use super::*;

pub(super) fn build_chain(inc: &Incident, input: &Input<'_>) -> Vec<ChainLink> {
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
