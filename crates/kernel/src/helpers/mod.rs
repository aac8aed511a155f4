//! Helpers over kernel data structures, as drgn has them: list, hlist and llist walks that
//! survive damaged memory ([`list`]), the pid radix tree ([`idr`]), per-CPU data
//! ([`percpu`]), CPU masks ([`cpumask`]), the task of a CPU and task states ([`sched`]),
//! whose registers and stacks are whose ([`stacks`]), lock words and spinlock queues
//! ([`locks`]), what an address belongs to ([`whatis`]), the facts of `sys` ([`system`]) and
//! code ([`code`]). Every walk reports what it could not follow as a [`Damage`], recorded in
//! the kernel's damage log ([`crate::Kernel::damage`]) so that each command can say which of
//! its facts stand on a broken structure.

pub mod code;
pub mod cpumask;
pub mod idr;
pub mod list;
pub mod locks;
pub mod percpu;
pub mod sched;
pub mod stacks;
pub mod system;
pub mod whatis;

use crate::MemError;

/// A kernel structure walked by a helper: typed, so that callers ask which one broke
/// without reading back the text printed for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// `init_task.tasks`: every process.
    TaskList,
    /// A process's threads (`signal->thread_head`, or `thread_group` before 6.1).
    ThreadList { leader: u64 },
    /// `modules`.
    ModuleList,
    /// `init_pid_ns.idr`.
    PidTree,
    /// The tasks attached to one `struct pid` (`pid->tasks[type]`, an hlist).
    PidTasks { pid: u64 },
    /// A CPU's queue of pending cross-CPU function calls (`call_single_queue`, an llist).
    CallSingleQueue { cpu: u32 },
    /// The dump's register notes.
    CpuNotes,
    /// The wait list a sleeping task's waiter structure is on.
    WaitList { waiter: u64 },
    /// An `rcu_node`'s readers preempted in a critical section (`blkd_tasks`).
    RcuBlockedTasks { node: u64 },
}

impl Structure {
    /// Lists of tasks: what `sys` counts as damage to its task count.
    pub fn holds_tasks(self) -> bool {
        matches!(self, Structure::TaskList | Structure::ThreadList { .. })
    }
}

impl std::fmt::Display for Structure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Structure::TaskList => f.write_str("task list (init_task.tasks)"),
            Structure::ThreadList { leader } => write!(f, "thread list of task {leader:#x}"),
            Structure::ModuleList => f.write_str("module list (modules)"),
            Structure::PidTree => f.write_str("pid tree (init_pid_ns.idr)"),
            Structure::PidTasks { pid } => write!(f, "task list of struct pid {pid:#x}"),
            Structure::CallSingleQueue { cpu } => write!(f, "call_single_queue of CPU {cpu}"),
            Structure::CpuNotes => f.write_str("register notes"),
            Structure::WaitList { waiter } => write!(f, "wait list of the waiter at {waiter:#x}"),
            Structure::RcuBlockedTasks { node } => write!(f, "blkd_tasks of rcu_node {node:#x}"),
        }
    }
}

/// A kernel structure that could not be followed to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub structure: Structure,
    /// The address whose link is bad.
    pub at: u64,
    pub what: DamageKind,
    /// Entries found anyway by another route (the walk back along `prev`, another index).
    pub recovered: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The link leads back to an entry already seen that is not the head.
    Loop { to: u64 },
    /// `next->prev` does not point back: `next` is not a member of this list.
    BrokenLink { next: u64, back: u64 },
    /// NULL, misaligned, or not a kernel address.
    BadPointer(u64),
    /// The next entry is not in the dump.
    Unreadable(MemError),
    /// Longer than any such structure can be.
    TooLong(usize),
    /// An entry whose own fields are impossible or unreadable (the error says which).
    BadEntry(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} damaged at {:#x}: ", self.structure, self.at)?;
        match &self.what {
            DamageKind::Loop { to } => write!(f, "it loops back to {to:#x}")?,
            DamageKind::BrokenLink { next, back } => {
                write!(f, "next {next:#x} does not link back (its prev is {back:#x})")?
            }
            DamageKind::BadPointer(p) => write!(f, "bad pointer {p:#x}")?,
            DamageKind::Unreadable(e) => write!(f, "{e}")?,
            DamageKind::TooLong(n) => write!(f, "more than {n} entries")?,
            DamageKind::BadEntry(e) => write!(f, "{e}")?,
        }
        if self.recovered > 0 {
            write!(f, " ({} entries recovered by another route)", self.recovered)?;
        }
        Ok(())
    }
}
