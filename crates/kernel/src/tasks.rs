//! Kernel objects a lockup analysis starts from: CPUs (online mask, per-CPU run queue, its
//! clock and current task), and every task (processes, their threads, and the per-CPU idle
//! tasks) with the fields `ps` shows. Member offsets come from BTF; the task-state bits,
//! which are `#define`s and so absent from BTF, from the kernel's own `task_state_array`
//! ([`helpers::sched`]).

use crate::helpers;
use crate::object::Object;
use crate::{Kernel, KernelError};

/// Walks stop here: a corrupted list must not loop forever.
const MAX_TASKS: usize = 1 << 20;
const MAX_CPUS: u32 = 8192;

const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Task {
    pub address: u64,
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub comm: String,
    /// `__state` (or `state` before 5.14).
    pub state: u64,
    pub exit_state: u64,
    /// `R`, `S`, `D`, `I`, `T`, `t`, `P`, `Z`, `X`...
    pub state_letter: char,
    /// crash's two-letter code: RU IN UN ID ST TR PA ZO DE WA NE.
    pub state_code: &'static str,
    pub cpu: u32,
    pub on_cpu: bool,
    /// The task is the one a CPU's run queue says runs now.
    pub current_on: Option<u32>,
    pub prio: i32,
    pub flags: u64,
    pub kthread: bool,
    /// `sched_info.last_arrival`: when it last got a CPU (ns of its CPU's rq clock).
    pub last_arrival: u64,
    /// Kernel stack base and the saved stack pointer of a task not running.
    pub stack: u64,
    pub thread_sp: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cpu {
    pub cpu: u32,
    pub online: bool,
    /// `struct rq` of the CPU.
    pub rq: u64,
    /// `rq->clock`, ns: stops advancing on a CPU that no longer takes the timer interrupt.
    pub clock: u64,
    pub nr_running: u32,
    pub curr: u64,
    pub idle: u64,
}

/// The letter and crash code of a state, by the built-in (4.14+) table.
pub fn state_of(state: u64, exit_state: u64) -> (char, &'static str) {
    helpers::sched::TaskStates::built_in().decode(state, exit_state)
}

impl Kernel {
    /// Number of CPU ids (`nr_cpu_ids`).
    pub fn nr_cpu_ids(&self) -> Result<u32, KernelError> {
        let n = self.global("nr_cpu_ids")?.read_int()? as u32;
        if n == 0 || n > MAX_CPUS {
            return Err(crate::validate::bad("nr_cpu_ids", n.into(), "is not a plausible number of CPUs"));
        }
        Ok(n)
    }

    /// Every possible CPU with its run queue.
    pub fn cpus(&self) -> Result<Vec<Cpu>, KernelError> {
        let n = self.nr_cpu_ids()?;
        let online = self.cpumask_flags("__cpu_online_mask", n).unwrap_or_else(|_| vec![true; n as usize]);
        let possible = self.cpumask_flags("__cpu_possible_mask", n).unwrap_or_else(|_| vec![true; n as usize]);
        let rq0 = self.global("runqueues")?;
        let mut out = Vec::new();
        for cpu in 0..n {
            if !possible[cpu as usize] {
                continue;
            }
            let rq = rq0.per_cpu(cpu)?;
            out.push(Cpu {
                cpu,
                online: online[cpu as usize],
                rq: rq.address,
                clock: rq.member("clock")?.read_int()?,
                nr_running: rq.member("nr_running")?.read_int()? as u32,
                curr: rq.member("curr")?.read_u64()?,
                idle: rq.member("idle")?.read_u64()?,
            });
        }
        Ok(out)
    }

    /// Reads one task.
    pub fn task(&self, address: u64) -> Result<Task, KernelError> {
        let t = self.object(address, "struct task_struct")?;
        let state = match t.member("__state") {
            Ok(s) => s.read_int()?,
            Err(_) => t.member("state")?.read_int()?,
        };
        let exit_state = t.member("exit_state")?.read_int()?;
        let (state_letter, state_code) = self.task_states().decode(state, exit_state);
        let cpu = match t.member("thread_info.cpu") {
            Ok(c) => c.read_int()?,
            Err(_) => t.member("cpu")?.read_int()?,
        } as u32;
        let flags = t.member("flags")?.read_int()?;
        let parent = t.member("real_parent")?.deref()?;
        let ppid = if parent.address == address || parent.address == 0 {
            0
        } else {
            parent.member("pid")?.read_int().unwrap_or(0) as u32
        };
        Ok(Task {
            address,
            pid: t.member("pid")?.read_int()? as u32,
            tgid: t.member("tgid")?.read_int()? as u32,
            ppid,
            comm: String::from_utf8_lossy(&t.member("comm")?.read_string(16)?).into_owned(),
            state,
            exit_state,
            state_letter,
            state_code,
            cpu,
            on_cpu: t.member("on_cpu")?.read_int()? != 0,
            current_on: None,
            prio: t.member("prio")?.read_int()? as i32,
            flags,
            kthread: flags & PF_KTHREAD != 0,
            last_arrival: t.member("sched_info.last_arrival")?.read_int()?,
            stack: t.member("stack")?.read_u64()?,
            // x86_64 keeps it in `thread.sp`, arm64 in `thread.cpu_context.sp`.
            thread_sp: t.member("thread.sp").or_else(|_| t.member("thread.cpu_context.sp"))?.read_u64()?,
        })
    }

    /// Addresses of every task: each process on `init_task.tasks`, each thread of it on its
    /// signal's `thread_head`, and the idle and current task of every CPU. A list that breaks
    /// (a loop, a bad pointer, a page missing from the dump) is recorded in the damage log
    /// and completed from its other end; then the pid tree, an index of its own, fills in
    /// the tasks the lists lost.
    pub fn task_addresses(&self) -> Result<Vec<u64>, KernelError> {
        let init = self.global("init_task")?;
        let tasks_off = self.offset_of("task_struct", "tasks")?;
        let head = init.member("tasks")?.address;
        let processes = self.list_nodes(head, helpers::Structure::TaskList, MAX_TASKS);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut damaged = processes.damage.is_some();
        for leader in std::iter::once(init.address).chain(processes.nodes.iter().map(|n| n - tasks_off)) {
            damaged |= self.push_threads(leader, &mut out, &mut seen);
        }
        // Idle tasks (pid 0) other than init_task are on no list; a CPU's current task may
        // be the one a damaged list lost.
        for c in self.cpus().unwrap_or_default() {
            for t in [c.idle, c.curr] {
                if t != 0 && seen.insert(t) {
                    out.push(t);
                }
            }
        }
        if damaged && let Ok(from_pids) = self.tasks_from_pid_tree(MAX_TASKS) {
            out.extend(from_pids.into_iter().filter(|t| seen.insert(*t)));
        }
        Ok(out)
    }

    /// Adds a process and its threads; true when its thread list is damaged.
    fn push_threads(&self, leader: u64, out: &mut Vec<u64>, seen: &mut std::collections::HashSet<u64>) -> bool {
        if seen.insert(leader) {
            out.push(leader);
        }
        let (head, off) = match self.thread_list_head(leader) {
            Ok(h) => h,
            Err(KernelError::Memory { err, .. }) => {
                let what = helpers::DamageKind::Unreadable(err);
                let structure = helpers::Structure::ThreadList { leader };
                self.record_damage(helpers::Damage { structure, at: leader, what, recovered: 0 });
                return true;
            }
            Err(_) => return false,
        };
        let threads = self.list_nodes(head, helpers::Structure::ThreadList { leader }, MAX_TASKS);
        for node in threads.nodes {
            let task = node.wrapping_sub(off);
            if seen.insert(task) {
                out.push(task);
            }
        }
        threads.damage.is_some()
    }

    /// 6.1 and later: signal->thread_head / task->thread_node; before: task->thread_group.
    fn thread_list_head(&self, leader: u64) -> Result<(u64, u64), KernelError> {
        let t = self.object(leader, "struct task_struct")?;
        match self.offset_of("task_struct", "thread_node") {
            Ok(off) => Ok((t.member("signal")?.deref()?.member("thread_head")?.address, off)),
            Err(_) => Ok((t.member("thread_group")?.address, self.offset_of("task_struct", "thread_group")?)),
        }
    }

    /// Every task, read; marks each CPU's current one. Tasks that cannot be read are skipped
    /// and counted.
    pub fn tasks(&self) -> Result<(Vec<Task>, usize), KernelError> {
        let (tasks, unreadable) = self.tasks_and_unreadable()?;
        Ok((tasks, unreadable.len()))
    }

    /// Every task that reads, and the addresses of those that do not (a page missing from
    /// the dump, a damaged pointer).
    pub fn tasks_and_unreadable(&self) -> Result<(Vec<Task>, Vec<u64>), KernelError> {
        if let Some(read) = self.task_list.get() {
            return Ok(read.clone());
        }
        let read = self.read_task_list()?;
        Ok(self.task_list.get_or_init(|| read).clone())
    }

    fn read_task_list(&self) -> Result<(Vec<Task>, Vec<u64>), KernelError> {
        let cpus = self.cpus().unwrap_or_default();
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for a in self.task_addresses()? {
            match self.task(a) {
                Ok(mut t) => {
                    t.current_on = cpus.iter().find(|c| c.curr == a).map(|c| c.cpu);
                    out.push(t);
                }
                Err(_) => unreadable.push(a),
            }
        }
        Ok((out, unreadable))
    }
}

impl Object<'_> {
    /// Whether the object looks like a task (used to check guesses cheaply).
    pub fn is_null(&self) -> bool {
        self.address == 0
    }
}
