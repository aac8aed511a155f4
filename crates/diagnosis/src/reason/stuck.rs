//! Stuck subjects: the reports about one CPU or task merged, and what each waits for (the
//! wait primitive from its stack, a spinlock's address, the CPUs a cross-CPU call waits for).

use super::*;

pub(super) fn stuck_subjects(inc: &Incident, input: &Input<'_>) -> Vec<Stuck> {
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
    // The idle task (pid 0) with interrupts off is a CPU stopped while idle (a crash `bt -a`
    // of a panicked machine), not a stuck one.
    // A task a crash session shows blocked in D state is stuck like a hung-task report's.
    let blocked_pid = |e: &Event| -> Option<&lockscope_facts::machine::TaskState> {
        let pid = e.task.as_ref()?.pid;
        mem?.blocked_tasks.iter().find(|t| t.task.pid == pid && t.origin.line.is_some())
    };
    by_key.retain(|_, idxs| {
        idxs.iter().any(|&i| events[i].kind != EventKind::NmiBacktrace) || {
            let e = &events[idxs[0]];
            let idle_task = e.task.as_ref().is_some_and(|t| t.pid == 0);
            waits::classify(stack_of(e, events)).kind.spins()
                || (!idle_task && e.registers.as_ref().and_then(|r| r.irqs_enabled()) == Some(false))
                || (e.cpu.is_none() && blocked_pid(e).is_some())
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
        let state = idxs
            .iter()
            .rev()
            .find_map(|&i| events[i].task_state.clone())
            .or_else(|| cpu.map(|_| "R".to_string()))
            .or_else(|| blocked_pid(b).map(|t| t.state.clone()));
        let mut wait = wait_of(b, idxs.iter().map(|&i| &events[i]), events, inc, mem.map(|m| (m, cpu)));
        if let Some(m) = mem
            && matches!(wait.kind, WaitKind::Spinlock | WaitKind::RwlockRead | WaitKind::RwlockWrite)
        {
            crate::memory::spinlock(&mut wait, cpu, m);
            if let Some(r) = b.registers.as_ref() {
                crate::memory::container_in_register(&mut wait, r, m);
            }
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
pub(super) fn stuck_for(idxs: &[usize], events: &[Event]) -> Option<f64> {
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

pub(super) fn wait_groups(stuck: &[Stuck]) -> Vec<crate::WaitGroup> {
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

/// The function a lockup report blames (`BUG: soft lockup in FUNC`).
pub(super) fn guilty(e: &Event) -> Option<String> {
    e.guilty.clone()
}

/// An event's stack, or for a compacted repeat the stack of the report it repeats.
pub(super) fn stack_of<'a>(e: &'a Event, events: &'a [Event]) -> &'a [Frame] {
    match e.repeat_of {
        Some(r) if e.stack.is_empty() => events.get(r).map_or(&e.stack[..], |o| &o.stack[..]),
        _ => &e.stack,
    }
}

pub(super) fn ip_function(e: &Event) -> Option<&str> {
    e.registers.as_ref()?.ip.as_ref()?.function.as_deref()
}

pub(super) fn wait_of<'a>(
    best: &Event,
    all: impl Iterator<Item = &'a Event>,
    events: &[Event],
    inc: &Incident,
    mem: Option<(&lockscope_facts::machine::MachineState, Option<u32>)>,
) -> Wait {
    let StackWait { kind, frame, caller } = waits::classify(&best.stack);
    // No frame at all (a report cut to its headline, a `log | grep`): what it runs is
    // unknown, not "nothing".
    let (kind, unseen) = if stack_of(best, events).is_empty() && kind == WaitKind::Running {
        (WaitKind::Unknown, true)
    } else {
        (kind, false)
    };
    let mut w = Wait {
        kind,
        function: frame.map(|f| f.function),
        called_from: caller.map(|f| f.function),
        lock_address: None,
        lock_bit: None,
        target_cpus: Vec::new(),
        candidate_cpus: Vec::new(),
        confidence: Confidence::Certain,
        reasoning: Vec::new(),
    };
    if unseen {
        w.confidence = Confidence::Possible;
        w.reasoning.push("the input shows no stack for it: what it runs or waits for is unknown".to_string());
    }
    let all: Vec<&Event> = all.collect();
    // The hung-task detector says the task is in I/O wait (`blocked in I/O wait`): a
    // folio/bit wait under it is waiting for I/O, not for a lock holder.
    if matches!(w.kind, WaitKind::PageLock | WaitKind::BitWait | WaitKind::Unknown | WaitKind::Sleep)
        && all.iter().any(|e| e.subkind == Some(lockscope_facts::Subkind::IoWait))
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
        WaitKind::CsdIpi => csd_targets(&mut w, &all, events, inc, mem.map(|(m, _)| m)),
        WaitKind::Running if spin_bit(&mut w, &all, mem) => {}
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

/// A running CPU whose loop polls one bit of a word until it clears: an inlined
/// `bit_spin_lock`. Memory's reading of the loop first, else the log's `Code:` bytes with
/// the report's registers.
fn spin_bit(w: &mut Wait, all: &[&Event], mem: Option<(&lockscope_facts::machine::MachineState, Option<u32>)>) -> bool {
    let from_memory = mem.and_then(|(m, cpu)| {
        m.locks.iter().find(|l| l.kind == "bit_spinlock" && cpu.is_some_and(|c| l.waiters.contains(&c)))
    });
    if let Some(l) = from_memory {
        let bit = l.bit.unwrap_or(0);
        w.reasoning.push(format!(
            "read from memory: the loop at the CPU's RIP polls bit {bit} of the word at {:#x} and goes on while it is set: a bit spinlock (bit_spin_lock, inlined){}",
            l.address,
            l.value.map(|v| format!("; the word is {v:#x} now")).unwrap_or_default()
        ));
        (w.kind, w.lock_address, w.confidence) = (WaitKind::BitSpinlock, Some(l.address), Confidence::Likely);
        w.lock_bit = l.bit;
        return true;
    }
    for e in all {
        let Some(regs) = e.registers.as_ref().filter(|r| r.arch == Arch::X86_64) else { continue };
        let from_bytes = regs.code.as_ref().and_then(|c| lockscope_x86::spin_bit_loop(c, regs)).map(|s| {
            (
                s,
                format!(
                    "RIP is in a loop that polls one bit of a word (line {}); decoding its Code: bytes:",
                    e.lines.first
                ),
                None,
            )
        });
        let from_listing = || {
            let (l, rip) = listing_at(e, mem.map(|(m, _)| m))?;
            let s = lockscope_x86::spin_bit_loop_in_listing(&l.lines, rip, regs)?;
            let source = l.lines.iter().find(|x| x.address == rip).and_then(|x| x.source.clone());
            let how = format!(
                "RIP is in a loop that polls one bit of a word; the registers of line {} read with the crash session's `dis` ({}):",
                e.lines.first,
                listing_lines(l)
            );
            Some((s, how, source))
        };
        let Some((s, how, source)) = from_bytes.or_else(from_listing).filter(|(s, _, _)| s.while_set) else { continue };
        w.reasoning.push(how);
        w.reasoning.extend(s.evidence.iter().map(|x| format!("  {x}")));
        if let Some(src) = source.filter(|x| x.contains("bit_spinlock")) {
            w.reasoning.push(format!("  `dis -l` places RIP in {}", src.rsplit('/').next().unwrap_or(&src)));
        }
        if let Some(m) = mem.map(|(m, _)| m) {
            w.reasoning.extend(crate::memory::page_flag_lock(m, s.word, s.bit));
            let f = w.function.as_deref().unwrap_or("");
            let comm = e.task.as_ref().map_or("", |t| t.comm.as_str());
            w.reasoning.extend(crate::memory::shared_trace_count(m, f, comm));
        }
        w.reasoning.push(format!(
            "so the CPU spins until bit {} of {:#x} clears: a bit spinlock (bit_spin_lock, inlined)",
            s.bit, s.word
        ));
        (w.kind, w.lock_address, w.confidence) = (WaitKind::BitSpinlock, Some(s.word), Confidence::Likely);
        w.lock_bit = Some(s.bit);
        return true;
    }
    false
}

/// The `dis` listing a crash session printed that shows the instruction at the event's RIP.
fn listing_at<'m>(
    e: &Event,
    mem: Option<&'m lockscope_facts::machine::MachineState>,
) -> Option<(&'m lockscope_facts::machine::CodeListing, u64)> {
    let regs = e.registers.as_ref()?;
    let rip = regs.get("rip").or_else(|| regs.ip.as_ref()?.address)?;
    mem?.code.iter().find(|l| l.contains(rip)).map(|l| (l, rip))
}

/// `lines 80–120` of a listing.
fn listing_lines(l: &lockscope_facts::machine::CodeListing) -> String {
    match (l.lines.first(), l.lines.last()) {
        (Some(a), Some(b)) if a.line != b.line => format!("lines {}–{}", a.line, b.line),
        (Some(a), _) => format!("line {}", a.line),
        _ => String::new(),
    }
}

/// The lock address of a spinning CPU: the slowpath's first argument.
pub(super) fn spinlock_address(w: &mut Wait, all: &[&Event]) {
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
            // Registers read from logs of other architectures: no calling convention here.
            _ => continue,
        };
        let Some(addr) = regs.get(reg) else { continue };
        w.lock_address = Some(addr);
        w.confidence = conf;
        w.reasoning.push(format!(
            "the CPU is inside {ip}; its first argument ({}) is the lock: {addr:#x}",
            reg.to_ascii_uppercase()
        ));
        if let Some(f) = regs.get("eflags").filter(|_| regs.irqs_enabled() == Some(false)) {
            w.reasoning.push(format!("RFLAGS = {f:#x}: IF clear, it spins with interrupts disabled"));
        }
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
pub(super) fn csd_targets(
    w: &mut Wait,
    all: &[&Event],
    events: &[Event],
    inc: &Incident,
    mem: Option<&lockscope_facts::machine::MachineState>,
) {
    let cpu = all.iter().find_map(|e| e.cpu);
    let has_timeouts = inc.counts.iter().any(|(k, _)| *k == EventKind::CsdLockTimeout);
    for &i in inc.events.iter().filter(|_| has_timeouts) {
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
                let from_bytes = regs.code.as_ref().and_then(|c| lockscope_x86::percpu_loop_target(c, regs)).map(|t| {
                    (t, format!("RIP is in the wait loop of {ip} (line {}); decoding its Code: bytes:", e.lines.first))
                });
                let from_listing = || {
                    let (l, rip) = listing_at(e, mem)?;
                    let t = lockscope_x86::percpu_loop_target_in_listing(&l.lines, rip, regs)?;
                    Some((
                        t,
                        format!(
                            "RIP is in the wait loop of {ip}; the registers of line {} read with the crash session's `dis` of it ({}):",
                            e.lines.first,
                            listing_lines(l)
                        ),
                    ))
                };
                if let Some((t, how)) = from_bytes.or_else(from_listing) {
                    w.target_cpus.push(t.cpu);
                    w.confidence = Confidence::Likely;
                    w.reasoning.push(format!(
                        "the wait loop polls the call data of CPU {} (%{} indexes the per-CPU offsets): it waits for CPU {} to run the function and release its csd",
                        t.cpu, t.register, t.cpu
                    ));
                    w.reasoning.push(how);
                    w.reasoning.extend(t.evidence.iter().map(|s| format!("  {s}")));
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
            _ => {}
        }
    }
    w.reasoning.push("the log does not say which CPU the call waits for".to_string());
}
