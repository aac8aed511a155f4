//! The lockup reports the kernel's own detectors would have printed, derived from memory:
//! for a dump whose log was lost, overwritten or never printed one (a hypervisor dump, a
//! sysrq-c crash, `--no-log`). Each is an [`Event`] like the log path's, so one diagnosis
//! serves both; its headline says it was read from memory and what was read.
//! - a CPU whose run-queue clock stopped for more than twice `watchdog_thresh` while a task
//!   runs on it: it takes no timer interrupt (interrupts off), a hard lockup;
//! - a CPU that has run one task longer than that without scheduling: a soft lockup;
//! - a task in D state longer than `sysctl_hung_task_timeout_secs`: a hung task;
//! - a grace period older than `rcu_cpu_stall_timeout`: an RCU stall, per CPU it waits for.
//!
//! The stack of a CPU event starts where the CPU was interrupted (below the NMI or IPI that
//! stopped it), as a detector's report would show it.

use lockscope_facts::machine::{CpuState, MachineState, MemoryRead};
use lockscope_facts::{Arch, CodeLocation, Event, EventKind, Frame, FrameContext, LineRange, Registers};
use lockscope_kernel::Kernel;
use lockscope_log::title::TitleKind;

const NS: f64 = 1e9;

fn int_global(k: &Kernel, name: &str) -> Option<u64> {
    k.global(name)
        .and_then(|g| g.read_int())
        .ok()
        .or_else(|| k.memory().read_u32(k.symbol(name).ok()?).ok().map(u64::from))
}

/// The frames from where the CPU was interrupted: the outermost frame on the task's stack
/// with every register known (a note or a saved exception frame).
pub(crate) fn interrupted(stack: &[Frame]) -> &[Frame] {
    let full = |f: &Frame| f.registers.len() >= 16;
    let at =
        stack.iter().rposition(|f| full(f) && f.context == FrameContext::Task).or_else(|| stack.iter().position(full));
    at.map_or(stack, |i| &stack[i..])
}

pub(crate) fn registers(f: &Frame) -> Registers {
    let mut r = Registers::new(Arch::X86_64);
    for (n, v) in &f.registers {
        r.set(if n == "rflags" { "eflags" } else { n }, *v);
    }
    r.ip = Some(CodeLocation {
        function: Some(f.function.clone()),
        offset: f.offset,
        size: f.size,
        module: f.module.clone(),
        address: f.address,
        user: false,
    });
    r
}

fn with_read(mut e: Event, read: Option<MemoryRead>) -> Event {
    e.memory = read;
    e
}

fn cpu_event(kind: EventKind, c: &CpuState, source: usize, headline: String, duration: f64) -> Event {
    let stack = interrupted(&c.stack).to_vec();
    let top = stack.first().map_or("?".to_string(), |f| f.function.clone());
    let mut e = Event::new(kind, &headline, LineRange { source, first: 0, last: 0 });
    e.title = match kind {
        EventKind::HardLockup => format!("hard lockup in {top} (from memory)"),
        EventKind::SoftLockup => format!("soft lockup in {top} (from memory)"),
        _ => format!("rcu stall on CPU {} in {top} (from memory)", c.cpu),
    };
    e.cpu = Some(c.cpu);
    e.reporter_cpu = Some(c.cpu);
    e.task = c.task.clone();
    e.task_state = Some("R".into());
    e.duration_s = Some(duration);
    e.registers = stack.first().map(registers);
    e.stack = stack;
    e
}

pub fn lockup_events(k: &Kernel, m: &MachineState, source: usize) -> Vec<Event> {
    let thresh = int_global(k, "watchdog_thresh").map_or(10, |t| t & 0xffff_ffff).max(1) as f64;
    let most_timer_irqs = m.cpus.iter().filter_map(|c| c.watchdog.as_ref()?.hrtimer_interrupts).max();
    let mut out = Vec::new();
    for c in m.cpus.iter().filter(|c| c.task.as_ref().is_some_and(|t| t.pid != 0)) {
        let lag = c.clock_lag_ns.unwrap_or(0) as f64 / NS;
        let ran = c.running_for_ns.unwrap_or(0) as f64 / NS;
        let idle_watchdog = c.watchdog.as_ref().and_then(|w| w.touched_ago_ns).map(|n| n as f64 / NS);
        if lag > 2.0 * thresh {
            let h = format!(
                "lockscope: CPU {} takes no timer interrupt: its run-queue clock stopped {lag:.1} s ago{} (from memory: runqueues[{}].clock)",
                c.cpu,
                missed_timer_interrupts(c, most_timer_irqs, thresh),
                c.cpu
            );
            let read = c.clock_read.clone();
            out.push(with_read(cpu_event(EventKind::HardLockup, c, source, h, lag), read));
        } else if let Some(idle) = idle_watchdog.filter(|&s| s > 2.0 * thresh) {
            // The kernel's own soft-lockup test: the watchdog's stopper work has not run.
            let h = format!(
                "lockscope: CPU {} has not let the soft-lockup watchdog run for {idle:.1} s, running {} (from memory: watchdog_touch_ts[{}])",
                c.cpu,
                c.task.as_ref().map_or("?".into(), |t| t.to_string()),
                c.cpu
            );
            let read = c.watchdog.as_ref().and_then(|w| w.touch_read.clone());
            out.push(with_read(cpu_event(EventKind::SoftLockup, c, source, h, idle), read));
        } else if idle_watchdog.is_none() && ran > 2.0 * thresh {
            let h = format!(
                "lockscope: CPU {} has run {} for {ran:.1} s without scheduling (from memory: sched_info.last_arrival)",
                c.cpu,
                c.task.as_ref().map_or("?".into(), |t| t.to_string())
            );
            out.push(cpu_event(EventKind::SoftLockup, c, source, h, ran));
        }
    }
    out.extend(hung_tasks(k, m, source));
    out.extend(panic_events(k, m, source));
    if let Some(r) = &m.rcu {
        let hz = hz(k);
        let timeout = int_global(k, "rcu_cpu_stall_timeout").map_or(21, |t| t & 0xffff_ffff) as f64;
        let age = r.gp_age_jiffies.unwrap_or(0) as f64 / hz;
        if r.gp_in_progress && age > timeout {
            for cpu in &r.waiting_cpus {
                if let Some(c) = m.cpus.iter().find(|c| c.cpu == *cpu) {
                    let h = format!(
                        "lockscope: the RCU grace period {:#x} has waited {age:.1} s for CPU {cpu} (from memory: rcu_state.node qsmask)",
                        r.gp_seq
                    );
                    out.push(with_read(cpu_event(EventKind::RcuStall, c, source, h, age), r.origin.first().cloned()));
                }
            }
        }
    }
    out
}

/// D-state tasks blocked longer than the hung-task timeout, from the machine state's blocked
/// tasks (how long since each ran, by the most advanced CPU clock).
fn hung_tasks(k: &Kernel, m: &MachineState, source: usize) -> Vec<Event> {
    let timeout = int_global(k, "sysctl_hung_task_timeout_secs").unwrap_or(120).max(1) as f64;
    let mut out = Vec::new();
    for t in &m.blocked_tasks {
        let Some(blocked) = t.blocked_ns.map(|n| n as f64 / NS).filter(|&b| b > timeout) else { continue };
        if t.stack.is_empty() {
            continue;
        }
        let h = format!(
            "lockscope: task {} has been in D state for about {blocked:.0} s (from memory: sched_info.last_arrival)",
            t.task
        );
        let mut e = Event::new(EventKind::HungTask, &h, LineRange { source, first: 0, last: 0 });
        e.task = Some(t.task.clone());
        e.task_state = Some(t.state.clone());
        e.duration_s = Some(blocked);
        e.stack = t.stack.clone();
        e.memory = Some(t.origin.clone());
        // The frame syzkaller's rules name for a hung task's trace, as the log path does.
        let waits_in = lockscope_log::title::guilty_frame(TitleKind::HungTask, &e.stack).unwrap_or_else(|| "?".into());
        e.title = format!("task hung in {waits_in} (from memory)");
        out.push(e);
    }
    out
}

/// The panic, when the dump's kernel panicked (`panic_cpu` set), and the oops behind it: an
/// exception frame on the panicking CPU's stack under the oops path (`page_fault_oops`,
/// `die`, `oops_end`).
fn panic_events(k: &Kernel, m: &MachineState, source: usize) -> Vec<Event> {
    let Some(cpu) = int_global(k, "panic_cpu").map(|c| c as u32 as i32).filter(|&c| c >= 0).map(|c| c as u32) else {
        return Vec::new();
    };
    let Some(c) = m.cpus.iter().find(|c| c.cpu == cpu) else { return Vec::new() };
    let mut out = Vec::new();
    let oops_path = |f: &Frame| {
        ["page_fault_oops", "die", "oops_end", "do_trap", "handle_invalid_op"].iter().any(|n| f.function.starts_with(n))
    };
    // Past the first frame, whose registers are the CPU's own at the dump.
    let exception = c
        .stack
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, f)| f.registers.len() >= 16 && f.context == FrameContext::Task)
        .map(|(i, _)| i);
    if let Some(i) = exception.filter(|&i| c.stack[..i].iter().any(oops_path)) {
        let f = &c.stack[i];
        let h = format!(
            "lockscope: CPU {cpu} took an exception in {}+{:#x} and died in the oops path (from memory: the exception frame on its stack)",
            f.function,
            f.offset.unwrap_or(0)
        );
        let mut e = Event::new(EventKind::Oops, &h, LineRange { source, first: 0, last: 0 });
        e.title = format!("kernel oops in {} (from memory)", f.function);
        e.cpu = Some(cpu);
        e.task = c.task.clone();
        e.registers = Some(registers(f));
        e.stack = c.stack[i..].to_vec();
        out.push(e);
    }
    let h = format!("lockscope: the kernel panicked on CPU {cpu} (from memory: panic_cpu)");
    let mut p = Event::new(EventKind::Panic, &h, LineRange { source, first: 0, last: 0 });
    p.cpu = Some(cpu);
    p.task = c.task.clone();
    p.stack = c.stack.clone();
    p.message = Some(format!("on CPU {cpu} (its message is not kept in memory)"));
    out.push(p);
    out
}

/// How many fewer watchdog timer interrupts the CPU took than the busiest one, in words: the
/// watchdog hrtimer fires every `2 * watchdog_thresh / 5` seconds on every CPU.
fn missed_timer_interrupts(c: &CpuState, most: Option<u64>, thresh: f64) -> String {
    let Some(mine) = c.watchdog.as_ref().and_then(|w| w.hrtimer_interrupts) else { return String::new() };
    let Some(missed) = most.and_then(|m| m.checked_sub(mine)).filter(|&d| d > 1) else { return String::new() };
    format!(
        ", and it took {missed} fewer watchdog timer interrupts than other CPUs (hrtimer_interrupts {mine}: about {:.0} s without one)",
        missed as f64 * thresh * 2.0 / 5.0
    )
}

/// The kernel's HZ, from `tick_nsec` (NSEC_PER_SEC / HZ, adjusted by NTP by a few ppm); 250,
/// Debian's, when it cannot be read.
fn hz(k: &Kernel) -> f64 {
    match int_global(k, "tick_nsec").filter(|&t| t > 0) {
        Some(t) => (NS / t as f64).round(),
        None => 250.0,
    }
}
