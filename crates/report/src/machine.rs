//! The printer of what a dump's memory shows (one [`MachineReport`] per vmcore input): each
//! CPU's state, the CPUs waiting for cross-CPU calls and the calls queued, the locks waited
//! for with their owners or candidate holders, and what could not be read.

use lockscope_facts::machine::{CpuState, LockState, MachineState, TaskState};
use serde::Serialize;
use std::fmt::Write;

/// The machine state read from one vmcore input.
#[derive(Clone, Debug, Serialize)]
pub struct MachineReport {
    /// Index of the input.
    pub input: usize,
    pub name: String,
    /// The state is what a pasted crash session's command output showed, not a dump read.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub crash_session: bool,
    #[serde(flatten)]
    pub state: MachineState,
}

impl MachineReport {
    /// The section title.
    pub fn title(&self) -> String {
        if self.crash_session {
            format!("FROM THE CRASH SESSION'S OUTPUT: {}", self.name)
        } else {
            format!("FROM THE DUMP'S MEMORY: {}", self.name)
        }
    }
}

fn secs(ns: Option<u64>) -> String {
    ns.map_or("?".into(), |n| format!("{:.2} s", n as f64 / 1e9))
}

fn cpu_line(c: &CpuState) -> String {
    let task = c.task.as_ref().map_or("?".into(), |t| t.to_string());
    let irqs = match c.irqs_enabled {
        Some(true) => "IRQs on ",
        Some(false) => "IRQs off",
        None => "IRQs ?  ",
    };
    let preempt = c.preempt_count.map_or("?".into(), |p| format!("{:#x}", p & 0x7fff_ffff));
    let top = c.stack.first().map_or(String::new(), |f| f.function.clone());
    let running = c.running_for_ns.map(|n| format!("  running {}", secs(Some(n)))).unwrap_or_default();
    let watchdog = c
        .watchdog
        .as_ref()
        .and_then(|w| w.touched_ago_ns)
        .filter(|&ns| ns >= 2_000_000_000)
        .map(|ns| format!("  watchdog idle {}", secs(Some(ns))))
        .unwrap_or_default();
    format!(
        "CPU {:<3} {:<24} {irqs}  preempt {preempt:<7} clock lag {}{running}{watchdog}  {top}",
        c.cpu,
        task,
        secs(c.clock_lag_ns)
    )
}

fn lock_lines(out: &mut String, l: &LockState) {
    let what = l.symbol.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
    let bit = l.bit.map(|b| format!(" bit {b}")).unwrap_or_default();
    let value = l.value.map_or("unreadable".into(), |v| format!("{v:#x}"));
    let completion = l.kind == "completion";
    let state = match (l.locked, completion) {
        (Some(true), false) => " held",
        (Some(false), false) => " free",
        (Some(true), true) => " (done = 0: not completed)",
        (Some(false), true) => " (completed)",
        (None, _) => "",
    };
    let _ = writeln!(out, "    {} at {:#x}{bit}{what} = {value}{state}", l.kind, l.address);
    if !l.waiters.is_empty() {
        let cpus: Vec<String> = l.waiters.iter().map(|c| format!("CPU {c}")).collect();
        let _ = writeln!(out, "      spinning on it: {}", cpus.join(", "));
    }
    if l.pending == Some(true) {
        let _ = writeln!(out, "      pending bit set: its first waiter spins on the locked byte");
    }
    if !l.queue.is_empty() {
        let cpus: Vec<String> = l.queue.iter().map(|c| format!("CPU {c}")).collect();
        let _ = writeln!(out, "      queued (MCS, next first): {}", cpus.join(" → "));
    } else if let Some(q) = l.queued_cpu {
        let _ = writeln!(out, "      queued last: CPU {q}");
    }
    if !l.task_waiters.is_empty() {
        let who: Vec<String> = l.task_waiters.iter().map(|(t, m)| format!("{t} ({m})")).collect();
        let until = if completion { "until it completes" } else { "until it is free" };
        let _ = writeln!(out, "      sleeping {until}: {}", who.join(", "));
    }
    if let Some(o) = &l.owner {
        let _ = writeln!(out, "      {} (recorded in the lock): {}", o.how, o.task);
    }
    let waiting = |pid: u32| l.task_waiters.iter().any(|(t, _)| t.pid == pid);
    // Nothing records who completes a completion: the other tasks that refer to it.
    let shown = l.candidate_holders.iter().filter(|h| !completion || !waiting(h.task.pid));
    let who = if completion { "refers to it" } else { "possible holder" };
    for h in shown {
        let frame = h.frame.as_deref().map(|f| format!(", in {f}")).unwrap_or_default();
        let on = h.cpu.map(|c| format!(" on CPU {c}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "      {who}: {} [{}]{on}: its stack holds the address at {:#x}{frame}",
            h.task,
            h.state,
            h.origin.address.unwrap_or(0)
        );
    }
}

/// Tasks shown in the blocked-task list at most; the rest are counted.
const BLOCKED_SHOWN: usize = 10;

/// The tasks blocked in D state, longest first, with where each sleeps.
fn blocked_lines(out: &mut String, tasks: &[TaskState]) {
    if tasks.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n    blocked in D state (longest first):");
    for t in tasks.iter().take(BLOCKED_SHOWN) {
        let sleeps_in = t
            .stack
            .iter()
            .map(|f| f.function.as_str())
            .find(|f| !f.starts_with("__schedule") && !f.starts_with("schedule") && !f.ends_with("schedule_timeout"))
            .unwrap_or("?");
        let _ =
            writeln!(out, "      {:<28} [{}] for {}  in {sleeps_in}", t.task.to_string(), t.state, secs(t.blocked_ns));
    }
    if tasks.len() > BLOCKED_SHOWN {
        let _ = writeln!(out, "      … and {} more", tasks.len() - BLOCKED_SHOWN);
    }
}

/// A CPU as a crash session showed it: only what it printed (`runq -T`, `ps -m`, `bt`).
fn shown_cpu_line(c: &CpuState) -> String {
    let mut line = format!("CPU {:<3}", c.cpu);
    if let Some(t) = &c.task {
        line.push_str(&format!(" {t}"));
    }
    if let Some(lag) = c.clock_lag_ns {
        let note = if lag >= 2_000_000_000 { " (no timer tick for that long)" } else { "" };
        line.push_str(&format!("  run-queue clock {} behind{note}", secs(Some(lag))));
    }
    if let Some(n) = c.running_for_ns {
        line.push_str(&format!("  running for {}", secs(Some(n))));
    }
    line
}

/// Tasks ready to run that no CPU runs, and the objects a crash session printed.
fn shown_lines(out: &mut String, s: &MachineState) {
    for t in s.runnable_tasks.iter().take(BLOCKED_SHOWN) {
        let _ = writeln!(out, "    {} runnable, not run for {}", t.task, secs(t.blocked_ns));
    }
    for o in s.objects.iter().filter(|o| o.type_name == "symbol") {
        let _ = writeln!(out, "    symbol {:#x}: {}", o.address, o.name.as_deref().unwrap_or("?"));
    }
    for o in s.objects.iter().filter(|o| o.type_name != "symbol") {
        let name = o.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
        let members: Vec<String> = o.members.iter().map(|(p, v)| format!("{p} = {v:#x}")).collect();
        let flags = if o.flags.is_empty() { String::new() } else { format!(" [{}]", o.flags.join(",")) };
        let _ = writeln!(out, "    struct {} {:#x}{name}: {}{flags}", o.type_name, o.address, members.join(", "));
    }
    if !s.code.is_empty() {
        let n: usize = s.code.iter().map(|c| c.lines.len()).sum();
        let _ = writeln!(out, "    dis: {} listing(s), {n} instruction(s)", s.code.len());
    }
}

/// The section for one dump (or crash session).
pub fn text(m: &MachineReport) -> String {
    let mut out = String::new();
    let s = &m.state;
    for c in &s.cpus {
        let line = if m.crash_session { shown_cpu_line(c) } else { cpu_line(c) };
        let _ = writeln!(out, "    {line}");
    }
    if m.crash_session {
        shown_lines(&mut out, s);
    }
    for w in &s.ipi_waits {
        let targets: Vec<String> = w.targets.iter().map(|t| format!("CPU {t}")).collect();
        let call = w.call.as_deref().map(|c| format!(" to run {c}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "\n    CPU {} waits in {} for {}{call} (cfd_data[{}]: the call data still locked)",
            w.cpu,
            w.function,
            if targets.is_empty() { "no CPU any more".into() } else { targets.join(", ") },
            w.cpu
        );
    }
    for p in &s.pending_calls {
        let from = p.source_cpu.map_or("queued by an unknown sender".into(), |c| format!("sent by CPU {c}"));
        let func = p.function.as_deref().unwrap_or("?");
        let locked = if p.locked { ", not run yet" } else { "" };
        let _ = writeln!(out, "    CPU {}'s call_single_queue: {func} ({from}{locked})", p.target_cpu);
    }
    if !s.locks.is_empty() {
        out.push('\n');
        for l in &s.locks {
            lock_lines(&mut out, l);
        }
    }
    blocked_lines(&mut out, &s.blocked_tasks);
    if let Some(r) = &s.rcu {
        let cpus: Vec<String> = r.waiting_cpus.iter().map(|c| format!("CPU {c}")).collect();
        let age = r.gp_age_jiffies.map(|j| format!(", started {j} jiffies ago")).unwrap_or_default();
        let state = if r.gp_in_progress { format!("in progress{age}") } else { "idle".into() };
        let waits = if cpus.is_empty() { String::new() } else { format!("; waiting for {}", cpus.join(", ")) };
        let _ = writeln!(out, "\n    RCU grace period {:#x}: {state}{waits}", r.gp_seq);
        let who = |v: Vec<String>| v.join(", ");
        if !r.readers.is_empty() {
            let readers =
                r.readers.iter().map(|(t, c)| c.map_or(t.to_string(), |c| format!("{t} on CPU {c}"))).collect();
            let _ = writeln!(out, "      inside rcu_read_lock(): {}", who(readers));
        }
        if !r.blocked_readers.is_empty() {
            let _ = writeln!(
                out,
                "      preempted readers blocking it: {}",
                who(r.blocked_readers.iter().map(|t| t.to_string()).collect())
            );
        }
        if !r.gp_waiters.is_empty() {
            let _ =
                writeln!(out, "      waiting for it: {}", who(r.gp_waiters.iter().map(|t| t.to_string()).collect()));
        }
    }
    for u in &s.unknown {
        let _ = writeln!(out, "    unknown: {u}");
    }
    out
}
