//! Whose stack is whose: each CPU's registers (its dump note, numbered as the dump allows),
//! the task each CPU runs, and the trace of any task — from its CPU's registers when it was
//! running, from the frame it saved when it was switched out otherwise.

use crate::tasks::Task;
use crate::unwind::{StackTrace, TraceOwner};
use crate::{Kernel, KernelError};
use lockscope_dump::{CpuNumbering, Notes, PrStatus, Registers};

/// One CPU's trace.
#[derive(Clone, Debug)]
pub struct CpuTrace {
    pub cpu: u32,
    /// The task it runs (`current`), when readable.
    pub task: Option<Task>,
    pub trace: Result<StackTrace, String>,
}

/// Where a CPU's registers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterSource {
    /// The dump's note for that CPU (QEMU's, numbered exactly).
    Note,
    /// The dump's note, matched to the CPU by the copy the crash path left in the CPU's
    /// `crash_notes` buffer.
    NoteMatchedInMemory,
    /// The dump's note, matched to the CPU by the pid of the task it runs.
    NoteMatchedByPid,
    /// No note in the dump: the registers the crash path saved in `crash_notes`.
    CrashNotesInMemory,
    /// No `NT_PRSTATUS` note, but QEMU's CPU-state note for that vCPU.
    QemuCpuState,
}

impl Kernel {
    /// The CPUs whose registers the dump holds, each with its CPU number (see
    /// [`RegisterSource`] for how the number is known); a note no CPU can be matched to is
    /// left out rather than given to the wrong CPU.
    pub fn cpus_with_registers(&self) -> Vec<(u32, PrStatus, RegisterSource)> {
        let notes = self.dump().notes();
        let mut out: Vec<(u32, PrStatus, RegisterSource)> = Vec::new();
        let in_memory: Vec<(u32, PrStatus)> = match notes.numbering {
            CpuNumbering::QemuIndex => Vec::new(),
            _ => self.crash_notes_in_memory(),
        };
        for n in &notes.prstatus {
            let found = match notes.numbering {
                CpuNumbering::QemuIndex | CpuNumbering::None => Some((n.cpu, RegisterSource::Note)),
                CpuNumbering::NoteOrder => in_memory
                    .iter()
                    .find(|(_, m)| m.regs == n.regs)
                    .map(|&(c, _)| (c, RegisterSource::NoteMatchedInMemory))
                    .or_else(|| self.cpu_running_pid(n.cpu, n.pid).map(|c| (c, RegisterSource::NoteMatchedByPid))),
            };
            if let Some((cpu, source)) = found
                && !out.iter().any(|&(c, _, _)| c == cpu)
            {
                out.push((cpu, PrStatus { cpu, ..*n }, source));
            }
        }
        if notes.prstatus.is_empty() && !notes.qemu.is_empty() {
            out.extend(notes.qemu.iter().map(|q| {
                let p = PrStatus { cpu: q.cpu, note_index: q.cpu, pid: 0, signal: 0, regs: Registers::X86_64(q.regs) };
                (q.cpu, p, RegisterSource::QemuCpuState)
            }));
        } else if notes.prstatus.is_empty() {
            out.extend(in_memory.into_iter().map(|(c, p)| (c, p, RegisterSource::CrashNotesInMemory)));
        }
        out.sort_by_key(|e| e.0);
        // A note for a CPU the kernel does not have is named, not given to another CPU.
        if let Ok(n) = self.nr_cpu_ids() {
            for e in out.iter().filter(|e| e.0 >= n) {
                self.record_damage(super::Damage {
                    structure: super::Structure::CpuNotes,
                    at: u64::from(e.1.note_index),
                    what: super::DamageKind::BadEntry(format!(
                        "note {} is for CPU {}, but the kernel has {n} CPU ids: not used",
                        e.1.note_index, e.0
                    )),
                    recovered: 0,
                });
            }
            out.retain(|e| e.0 < n);
        }
        out
    }

    /// The CPU that runs the task with this pid: the note's own position first, else the one
    /// CPU running that pid (idle's pid 0 is on every CPU and matches only in place).
    fn cpu_running_pid(&self, guess: u32, pid: i32) -> Option<u32> {
        let pid_of = |cpu: u32| self.current_task(cpu).and_then(|t| self.task(t)).map(|t| t.pid as i32).ok();
        if pid_of(guess) == Some(pid) {
            return Some(guess);
        }
        let n = self.nr_cpu_ids().ok()?;
        let matching: Vec<u32> = (0..n).filter(|&c| pid != 0 && pid_of(c) == Some(pid)).collect();
        (matching.len() == 1).then(|| matching[0])
    }

    /// The registers each CPU's crash path saved in its `crash_notes` buffer (all zero on a
    /// CPU that never went through it).
    fn crash_notes_in_memory(&self) -> Vec<(u32, PrStatus)> {
        let Ok(ptr) = self.read_symbol_u64("crash_notes") else { return Vec::new() };
        let Ok(n) = self.nr_cpu_ids() else { return Vec::new() };
        let arch = self.dump().metadata().arch;
        (0..n)
            .filter_map(|cpu| {
                let at = ptr.wrapping_add(self.per_cpu_offset(cpu).ok()?);
                let blob = self.memory().read_vec(at, 1024).ok()?;
                let notes = Notes::parse(&blob, false, arch);
                let p = *notes.prstatus.first()?;
                (p.regs.ip() != 0 && p.regs.sp() != 0).then_some((cpu, PrStatus { cpu, ..p }))
            })
            .collect()
    }

    /// The size of a task's kernel stack, when the symbols show it: the first task's stack
    /// runs from `init_stack` to `__end_init_task`, and every other has the same size.
    pub fn thread_size(&self) -> Option<u64> {
        match (self.symbol("init_stack"), self.symbol("__end_init_task")) {
            (Ok(s), Ok(e)) if e > s && (e - s).is_power_of_two() && e - s <= 1 << 20 => Some(e - s),
            _ => None,
        }
    }

    /// The trace of every CPU that left registers.
    pub fn cpu_traces(&self) -> Vec<CpuTrace> {
        self.cpus_with_registers().into_iter().map(|(cpu, _, _)| self.cpu_trace(cpu)).collect()
    }

    /// One CPU's trace, from its registers.
    pub fn cpu_trace(&self, cpu: u32) -> CpuTrace {
        let task = self.current_task(cpu).and_then(|t| self.task(t)).ok();
        let owner = TraceOwner { task: task.as_ref().map_or(0, |t| t.address), cpu: Some(cpu) };
        CpuTrace { cpu, task, trace: self.stack_trace(owner).map_err(|e| e.to_string()) }
    }

    /// A task's trace: from its CPU's registers when it is current on a CPU that left them,
    /// else from the frame it saved when it was switched out.
    pub fn task_trace(&self, task: &Task) -> Result<StackTrace, KernelError> {
        let cpu = task.current_on.filter(|c| self.cpus_with_registers().iter().any(|&(x, _, _)| x == *c));
        self.stack_trace(TraceOwner { task: task.address, cpu })
    }
}
