//! Whose stack is whose: each CPU's registers (its dump note, numbered as the dump allows),
//! the task each CPU runs, and the trace of any task — from its CPU's registers when it was
//! running, from the frame it saved when it was switched out otherwise.

use crate::tasks::Task;
use crate::unwind::{StackTrace, TraceOwner};
use crate::{Kernel, KernelError};
use lockscope_dump::CpuNumbering;

/// One CPU's trace.
#[derive(Clone, Debug)]
pub struct CpuTrace {
    pub cpu: u32,
    /// The task it runs (`current`), when readable.
    pub task: Option<Task>,
    pub trace: Result<StackTrace, String>,
}

impl Kernel {
    /// The CPUs whose registers the dump holds, each mapped to its CPU number: exact for
    /// QEMU's notes; for a kernel's crash notes (one per CPU that answered, in CPU order) the
    /// note's pid must be the pid of the task that CPU runs, else the CPU running that pid
    /// is taken (a CPU that left no note shifts every later one).
    pub fn cpus_with_registers(&self) -> Vec<(u32, usize)> {
        let notes = self.dump().notes();
        let mut out = Vec::new();
        for (i, n) in notes.prstatus.iter().enumerate() {
            let cpu = match notes.numbering {
                CpuNumbering::QemuIndex | CpuNumbering::None => n.cpu,
                CpuNumbering::NoteOrder => match self.cpu_running_pid(n.cpu, n.pid) {
                    Some(c) => c,
                    None => continue,
                },
            };
            if !out.iter().any(|&(c, _)| c == cpu) {
                out.push((cpu, i));
            }
        }
        out.sort_unstable();
        out
    }

    fn cpu_running_pid(&self, guess: u32, pid: i32) -> Option<u32> {
        let pid_of = |cpu: u32| self.current_task(cpu).and_then(|t| self.task(t)).map(|t| t.pid as i32).ok();
        if pid_of(guess) == Some(pid) {
            return Some(guess);
        }
        let n = self.nr_cpu_ids().ok()?;
        let matching: Vec<u32> = (0..n).filter(|&c| pid != 0 && pid_of(c) == Some(pid)).collect();
        (matching.len() == 1).then(|| matching[0])
    }

    /// The trace of every CPU that left registers.
    pub fn cpu_traces(&self) -> Vec<CpuTrace> {
        self.cpus_with_registers().into_iter().map(|(cpu, _)| self.cpu_trace(cpu)).collect()
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
        let cpu = task.current_on.filter(|c| self.cpus_with_registers().iter().any(|&(x, _)| x == *c));
        self.stack_trace(TraceOwner { task: task.address, cpu })
    }
}
