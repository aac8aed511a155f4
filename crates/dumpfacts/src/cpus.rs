//! Per-CPU facts from memory: the task each CPU runs, its stack, whether interrupts were on
//! where it was caught, its preemption counter, how far its run-queue clock lags, and how
//! long its task has been running.

use crate::frames;
use lockscope_facts::TaskRef;
use lockscope_facts::machine::{CpuState, MemoryRead, WatchdogState};
use lockscope_kernel::Kernel;
use lockscope_kernel::unwind::{StackKind, StackTrace};

pub fn cpu_states(k: &Kernel, unknown: &mut Vec<String>) -> Vec<CpuState> {
    let cpus = match k.cpus() {
        Ok(c) => c,
        Err(e) => {
            unknown.push(format!("CPUs: {e}"));
            return Vec::new();
        }
    };
    let newest = cpus.iter().map(|c| c.clock).max().unwrap_or(0);
    let mut states: Vec<CpuState> = cpus
        .iter()
        .map(|c| {
            let t = k.cpu_trace(c.cpu);
            let trace = t.trace.map_err(|e| unknown.push(format!("stack of CPU {}: {e}", c.cpu))).ok();
            let task = t.task.as_ref().map(|t| TaskRef { comm: t.comm.clone(), pid: t.pid });
            // By the most advanced clock: a CPU whose own clock stopped has been running its
            // task at least that long.
            let running_for =
                t.task.as_ref().and_then(|t| newest.checked_sub(t.last_arrival)).filter(|_| c.curr != c.idle);
            let clock_read =
                MemoryRead::new(c.rq + k.offset_of("rq", "clock").unwrap_or(0), format!("runqueues[{}].clock", c.cpu))
                    .crash("runq -T");
            let mut origin = vec![
                clock_read.clone(),
                MemoryRead::new(c.curr, format!("runqueues[{}].curr", c.cpu)).crash(format!("bt -c {}", c.cpu)),
            ];
            let preempt = preempt_count(k, c.cpu, &mut origin);
            CpuState {
                cpu: c.cpu,
                online: Some(c.online),
                task,
                stack: trace.as_ref().map(|tr| frames(k, tr)).unwrap_or_default(),
                irqs_enabled: trace.as_ref().and_then(|tr| irqs_enabled(k, tr)),
                preempt_count: preempt,
                clock_lag_ns: Some(newest - c.clock),
                running_for_ns: running_for,
                watchdog: watchdog(k, c.cpu, newest, &mut origin),
                clock_read: Some(clock_read),
                origin,
            }
        })
        .collect();
    uncounted_preemption(&mut states, unknown);
    states
}

/// A kernel without `CONFIG_PREEMPT_COUNT` never counts: a CPU inside a spinlock's slow path
/// (preemption off by taking the lock) that reads 0 shows it, and then no count means anything.
fn uncounted_preemption(states: &mut [CpuState], unknown: &mut Vec<String>) {
    let spinning_at_zero = states.iter().find(|c| {
        c.preempt_count == Some(0) && c.stack.first().is_some_and(|f| crate::locks::is_spin_slowpath(&f.function))
    });
    if let Some(c) = spinning_at_zero {
        unknown.push(format!(
            "preemption counts: CPU {} reads 0 inside {}, where taking the lock disabled preemption: this kernel does not count it (no CONFIG_PREEMPT_COUNT)",
            c.cpu, c.stack[0].function
        ));
        for c in states.iter_mut() {
            c.preempt_count = None;
        }
    }
}

/// The interrupt flag of the context the CPU was caught in: the outermost register frame
/// saved on the task's own stack (what a panic's stop NMI or IPI interrupted), else the
/// registers the CPU had at the dump.
fn irqs_enabled(k: &Kernel, t: &StackTrace) -> Option<bool> {
    let interrupted = t.frames.iter().rev().find(|f| f.exception.is_some() && f.stack == StackKind::Task);
    k.arch().irqs_enabled(&interrupted.or(t.frames.first())?.regs)
}

/// The preemption counter: per CPU, `__preempt_count` (x86_64 to 6.1 and from 6.15) or
/// `pcpu_hot.preempt_count` (6.2–6.14); else the running task's `thread_info.preempt_count`.
fn preempt_count(k: &Kernel, cpu: u32, origin: &mut Vec<MemoryRead>) -> Option<u64> {
    let read = |name: &str, path: Option<&str>| -> Option<(u64, u64)> {
        let mut o = k.global(name).ok()?.per_cpu(cpu).ok()?;
        if let Some(p) = path {
            o = o.member(p).ok()?;
        }
        Some((o.address, o.read_int().ok()?))
    };
    let per_cpu = match read("__preempt_count", None) {
        Some(r) => Some((r, "__preempt_count")),
        None => read("pcpu_hot", Some("preempt_count")).map(|r| (r, "pcpu_hot.preempt_count")),
    };
    let (at, v) = match per_cpu {
        Some(((at, v), what)) => {
            let var = what.split('.').next().unwrap_or(what);
            origin.push(MemoryRead::new(at, format!("{what}[{cpu}]")).crash(format!("p {var}:{cpu}")));
            (at, v)
        }
        // arm64 and others keep it in the running task's thread_info.
        None => {
            let task = k.current_task(cpu).ok()?;
            let o = k.object(task, "struct task_struct").ok()?.member("thread_info.preempt_count").ok()?;
            let v = o.read_int().ok()?;
            let what = format!("thread_info.preempt_count of CPU {cpu}'s task");
            origin.push(MemoryRead::new(o.address, what).crash(format!("struct thread_info.preempt_count {task:#x}")));
            (o.address, v)
        }
    };
    let _ = at;
    // An `int`: read_int sign-extends it.
    Some(v & 0xffff_ffff)
}

/// The lockup detectors' counters of one CPU. The soft-lockup timestamp is in
/// `running_clock() >> 30` units (about seconds); `ULONG_MAX` or 0 means just touched. The
/// hrtimer counters changed type (`unsigned long` to 6.6, `atomic_t`/`int` after): read by
/// their BTF type only.
fn watchdog(k: &Kernel, cpu: u32, newest_ns: u64, origin: &mut Vec<MemoryRead>) -> Option<WatchdogState> {
    let mut counter = |name: &str| -> Option<u64> {
        let o = k.global(name).ok()?.per_cpu(cpu).ok()?;
        let v = o.read_int().ok()? & 0xffff_ffff;
        origin.push(MemoryRead::new(o.address, format!("{name}[{cpu}]")).crash(format!("p {name}:{cpu}")));
        Some(v)
    };
    let hrtimer_interrupts = counter("hrtimer_interrupts");
    let hrtimer_interrupts_saved = counter("hrtimer_interrupts_saved");
    let touch_at = k.per_cpu_address("watchdog_touch_ts", cpu).ok();
    let touch = touch_at.and_then(|at| k.memory().read_u64(at).ok());
    let touch_read = touch_at
        .filter(|_| touch.is_some())
        .map(|at| MemoryRead::new(at, format!("watchdog_touch_ts[{cpu}]")).crash(format!("p watchdog_touch_ts:{cpu}")));
    origin.extend(touch_read.clone());
    if touch.is_none() && hrtimer_interrupts.is_none() {
        return None;
    }
    let touched_ago_ns = touch.filter(|&t| t != 0 && t != u64::MAX).map(|t| newest_ns.saturating_sub(t << 30));
    Some(WatchdogState { touched_ago_ns, hrtimer_interrupts, hrtimer_interrupts_saved, touch_read })
}
