//! `bt` and `foreach … bt`: stack traces from the dump in crash's layout (`#N [sp] func at
//! addr`, `[exception RIP: …]` register blocks, `--- <IRQ stack> ---` where a trace leaves a
//! stack), or as JSON. The kernel crate unwinds; this file only prints.

use crate::kernel_cmds::{DumpArg, emit, emit_json};
use lockscope_kernel::helpers::stacks::CpuTrace;
use lockscope_kernel::tasks::Task;
use lockscope_kernel::unwind::{Frame, StackTrace};
use lockscope_kernel::{Kernel, KernelError};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::process::ExitCode;

/// What `bt` prints besides the frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct BtOptions {
    /// The stack words of each frame (`-f`).
    pub words: bool,
    /// `func+offset` instead of `func` (`-s`).
    pub offsets: bool,
}

/// Which traces: every CPU, one CPU, or tasks by pid.
pub enum Which {
    AllCpus,
    Cpu(u32),
    Pids(Vec<u32>),
}

pub fn bt(k: &Kernel, d: &DumpArg, which: &Which, o: BtOptions) -> Result<ExitCode, KernelError> {
    let mut entries: Vec<Entry> = Vec::new();
    match which {
        Which::AllCpus => {
            for CpuTrace { cpu, task, trace } in k.cpu_traces() {
                entries.push((Some(cpu), task, trace));
            }
        }
        Which::Cpu(c) => {
            if !k.cpus_with_registers().iter().any(|&(x, _, _)| x == *c) {
                return Err(KernelError::NoRegisters { cpu: *c, why: "the dump has no register note for it" });
            }
            let CpuTrace { cpu, task, trace } = k.cpu_trace(*c);
            entries.push((Some(cpu), task, trace));
        }
        Which::Pids(pids) => {
            let (tasks, _) = k.tasks()?;
            for pid in pids {
                // A pid names a thread; pid 0 names every CPU's idle task, as in crash.
                let found: Vec<&Task> = tasks.iter().filter(|t| t.pid == *pid).collect();
                if found.is_empty() {
                    return Err(KernelError::NoTask(*pid));
                }
                for t in found {
                    entries.push((t.current_on, Some(t.clone()), k.task_trace(t).map_err(|e| e.to_string())));
                }
            }
        }
    }
    print_traces(k, d, &entries, o)
}

/// `foreach [STATES] bt`: every task whose crash state code (RU, UN, IN, …) is listed.
pub fn foreach_bt(k: &Kernel, d: &DumpArg, states: &[String], o: BtOptions) -> Result<ExitCode, KernelError> {
    let (tasks, _) = k.tasks()?;
    let wanted = |t: &Task| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(t.state_code));
    let entries: Vec<_> = tasks
        .iter()
        .filter(|t| wanted(t))
        .map(|t| (t.current_on, Some(t.clone()), k.task_trace(t).map_err(|e| e.to_string())))
        .collect();
    print_traces(k, d, &entries, o)
}

type Entry = (Option<u32>, Option<Task>, Result<StackTrace, String>);

fn print_traces(k: &Kernel, d: &DumpArg, entries: &[Entry], o: BtOptions) -> Result<ExitCode, KernelError> {
    if d.json {
        let v: Vec<Value> =
            entries.iter().map(|(cpu, task, trace)| trace_json(k, *cpu, task.as_ref(), trace)).collect();
        return Ok(emit_json(k, &json!({ "traces": v })));
    }
    let mut s = String::new();
    for (i, (cpu, task, trace)) in entries.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        header(&mut s, *cpu, task.as_ref());
        match trace {
            Ok(t) => frames_text(&mut s, k, t, o),
            Err(e) => {
                let _ = writeln!(s, "    (no stack trace: {e})");
            }
        }
    }
    Ok(emit(&s))
}

fn header(s: &mut String, cpu: Option<u32>, task: Option<&Task>) {
    let cpu_text = match (cpu, task) {
        (Some(c), _) => c.to_string(),
        (None, Some(t)) => t.cpu.to_string(),
        (None, None) => "?".into(),
    };
    match task {
        Some(t) => {
            let _ =
                writeln!(s, "PID: {:<8} TASK: {:x}  CPU: {:<4} COMMAND: \"{}\"", t.pid, t.address, cpu_text, t.comm);
        }
        None => {
            let _ = writeln!(s, "PID: ?        TASK: ?  CPU: {cpu_text:<4} COMMAND: ?");
        }
    }
}

/// The name crash shows for a frame: `func`, `func+off` with `-s`, and the module.
fn name_of(k: &Kernel, f: &Frame, offsets: bool) -> String {
    let pc = f.pc;
    match k.lookup_address(f.lookup_pc()) {
        Some(sym) => {
            let mut n = sym.name.to_string();
            if offsets {
                let _ = write!(n, "+{}", pc - sym.address);
            }
            n
        }
        None => "(unknown)".into(),
    }
}

fn module_suffix(k: &Kernel, f: &Frame) -> String {
    k.lookup_address(f.lookup_pc()).and_then(|s| s.module.map(|m| format!(" [{m}]"))).unwrap_or_default()
}

fn frames_text(s: &mut String, k: &Kernel, t: &StackTrace, o: BtOptions) {
    let reliable = t.frames.len() - t.scanned;
    for (i, f) in t.frames.iter().enumerate() {
        if i == reliable && !t.stop.is_end() {
            let _ =
                writeln!(s, "    (trace stops: {}; below, words of the stack that look like return addresses)", t.stop);
        }
        let prev = i.checked_sub(1).map(|p| &t.frames[p]);
        let switched = prev.filter(|p| p.stack != f.stack);
        if f.exception.is_some() || i == 0 && k.arch().irqs_enabled(&f.regs).is_some() {
            exception_block(s, k, f);
        }
        if let Some(p) = switched {
            let _ = writeln!(s, "--- <{}> ---", p.stack.crash_name());
        }
        // crash shows where on the stack each frame's address lies: the return address's
        // slot, or the stack pointer itself for an interrupted frame.
        let slot = if f.exact_pc { f.sp } else { f.sp.wrapping_sub(8) };
        let mark = if f.reliable { "" } else { " ?" };
        let _ = writeln!(
            s,
            "{:>3} [{slot:x}]{mark} {} at {:x}{}",
            format!("#{i}"),
            name_of(k, f, o.offsets),
            f.pc,
            module_suffix(k, f)
        );
        if o.words {
            let end = t.frames.get(i + 1).filter(|n| n.stack == f.stack).map_or(f.sp, |n| n.sp);
            stack_words(s, k, f.sp, end);
        }
    }
    if reliable == t.frames.len() && !t.stop.is_end() {
        let _ = writeln!(s, "    (trace stops: {})", t.stop);
    }
}

/// crash's register block of an exception frame (or of a CPU's note), in the rows the
/// architecture gives.
fn exception_block(s: &mut String, k: &Kernel, f: &Frame) {
    let names = k.arch().register_names();
    let rows = k.arch().crash_register_rows();
    let pc_label = rows.first().and_then(|r| r.first()).map_or("PC", |c| c.0.trim());
    let _ = writeln!(s, "    [exception {pc_label}: {}]", name_of(k, f, true));
    let reg = |n: &str, digits: usize| {
        let v = names.iter().position(|x| *x == n).and_then(|i| f.regs.get(i));
        v.map_or("?".repeat(digits), |v| format!("{:0digits$x}", v & (u64::MAX >> (64 - 4 * digits))))
    };
    let last = rows.len().saturating_sub(1);
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|(label, n, digits)| format!("{label}: {}", reg(n, *digits))).collect();
        let partial = if i == last && f.exception.is_some_and(|e| e.partial) { "  (iret frame only)" } else { "" };
        let _ = writeln!(s, "    {}{partial}", cells.join("  "));
    }
}

/// `bt -f`: the words of a frame, two per line.
fn stack_words(s: &mut String, k: &Kernel, from: u64, to: u64) {
    let to = to.min(from + 4096);
    let mut a = from;
    while a < to {
        let _ = write!(s, "    {a:x}:");
        for w in [a, a + 8] {
            if w >= to {
                break;
            }
            match k.memory().read_u64(w) {
                Ok(v) => {
                    let _ = write!(s, " {v:016x}");
                }
                Err(_) => s.push_str(" ????????????????"),
            }
        }
        s.push('\n');
        a += 16;
    }
}

fn trace_json(k: &Kernel, cpu: Option<u32>, task: Option<&Task>, trace: &Result<StackTrace, String>) -> Value {
    let names = k.arch().register_names();
    let task = task
        .map(|t| json!({ "pid": t.pid, "task": format!("{:#x}", t.address), "comm": t.comm, "state": t.state_code }));
    let body = match trace {
        Err(e) => json!({ "error": e }),
        Ok(t) => {
            let frames: Vec<Value> = t
                .frames
                .iter()
                .map(|f| {
                    let regs: serde_json::Map<String, Value> = f
                        .regs
                        .known()
                        .filter_map(|(r, v)| names.get(r).map(|n| (n.to_string(), json!(format!("{v:#x}")))))
                        .collect();
                    json!({
                        "pc": format!("{:#x}", f.pc), "sp": format!("{:#x}", f.sp),
                        "symbol": k.lookup_address(f.lookup_pc()).map(|s| s.format(f.pc)), "stack": f.stack, "reliable": f.reliable,
                        "exact_pc": f.exact_pc,
                        "exception_frame": f.exception.map(|e| json!({ "address": format!("{:#x}", e.address), "partial": e.partial })),
                        "registers": regs,
                    })
                })
                .collect();
            json!({ "frames": frames, "stop": t.stop, "stop_reason": t.stop.to_string(), "scanned_frames": t.scanned })
        }
    };
    json!({ "cpu": cpu, "task": task, "trace": body })
}
