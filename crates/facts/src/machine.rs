//! Machine state as facts: what each CPU was doing and the cross-CPU calls in flight, read
//! from a dump's memory (or, for some of it, printed in a log). Every fact says where it came
//! from ([`Origin`]), so the engine treats a memory read and a log line alike and a human can
//! check either.

use crate::{Frame, LineRange, TaskRef};
use serde::Serialize;

/// Where a fact came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Lines of a log.
    Log(LineRange),
    /// A read of the dump's memory.
    Memory(MemoryRead),
}

/// One read of kernel memory: where, and what it is (`runqueues[3].clock`,
/// `cfd_data[1].cpumask`), so the same value can be found with crash or drgn. A read crash
/// made and a transcript shows names the transcript line instead of (or beside) an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryRead {
    /// None when the transcript does not print it (`runq -T` reads each run queue's clock).
    #[serde(serialize_with = "crate::hex::optional")]
    pub address: Option<u64>,
    pub what: String,
    /// The crash command that shows the same memory (`struct rw_semaphore 0x…`, `runq -T`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    /// The line of a pasted crash session that printed the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl MemoryRead {
    pub fn new(address: u64, what: impl Into<String>) -> MemoryRead {
        MemoryRead { address: Some(address), what: what.into(), crash: None, line: None }
    }

    /// A read a crash session printed on `line` of a transcript, by `command`.
    pub fn shown(line: u64, command: impl Into<String>, address: Option<u64>, what: impl Into<String>) -> MemoryRead {
        MemoryRead { address, what: what.into(), crash: Some(command.into()), line: Some(line) }
    }

    /// The crash command that reproduces the read.
    pub fn crash(mut self, command: impl Into<String>) -> MemoryRead {
        self.crash = Some(command.into());
        self
    }
}

/// The state of the machine at the moment of the dump.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MachineState {
    pub cpus: Vec<CpuState>,
    /// CPUs waiting for other CPUs to run a function (IPI / CSD).
    pub ipi_waits: Vec<IpiWait>,
    /// Cross-CPU calls queued on a CPU and not yet run.
    pub pending_calls: Vec<PendingCall>,
    /// Locks CPUs or tasks wait for.
    pub locks: Vec<LockState>,
    /// RCU's grace period and who holds it up, when readable.
    pub rcu: Option<RcuState>,
    /// Tasks blocked in D state (uninterruptible), longest blocked first.
    pub blocked_tasks: Vec<TaskState>,
    /// Tasks ready to run that no CPU runs (a pasted `ps -m` of RU tasks), longest waiting
    /// first: a CPU that does not schedule keeps them waiting (its watchdog thread, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runnable_tasks: Vec<TaskState>,
    /// Kernel objects a crash session printed (`struct zone.name,lock… ADDR`, `kmem PAGE`):
    /// what a lock address may belong to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectState>,
    /// Counts a shell pipeline over saved crash output printed (`grep put_compound_page
    /// bt_all.txt | grep fas_readwriter | wc -l` → 34): how many tasks share a trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountShown>,
    /// Stack words `bt -f` printed, per task: a lock's address on a task's stack makes it a
    /// possible holder (crash's `search -t`), as a dump's stack search does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack_words: Vec<StackWords>,
    /// Code as crash's `dis` printed it in a transcript (a dump's own code is read where it
    /// is needed): runs of instructions, by address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<CodeListing>,
    /// Facts that could not be read, and why (a page not in the dump, a structure that does
    /// not parse).
    pub unknown: Vec<String>,
}

/// A kernel object as a crash session printed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectState {
    #[serde(serialize_with = "crate::hex::address")]
    pub address: u64,
    /// Its type (`zone`, `page`, `qspinlock`).
    pub type_name: String,
    /// Its `name` member when printed as a string (`"DMA32"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Numeric members by path (`lock.rlock.raw_lock.val.counter`, `flags`).
    pub members: Vec<(String, u64)>,
    /// Flag names `kmem` printed for a page (`head`, `compound_lock`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    pub origin: MemoryRead,
}

impl ObjectState {
    pub fn member(&self, path: &str) -> Option<u64> {
        self.members.iter().find(|(p, _)| p == path).map(|&(_, v)| v)
    }
}

/// The kernel-address words of one task's stack as `bt -f` printed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackWords {
    pub task: TaskRef,
    /// The CPU its `bt` header names (where it runs or last ran).
    pub cpu: Option<u32>,
    /// The functions of its frames, in printed order.
    pub frames: Vec<String>,
    /// (stack address, word, index into `frames` of the frame the word belongs to).
    pub words: Vec<(u64, u64, u16)>,
    /// The line of its `bt` header.
    pub line: u64,
}

/// A `… | wc -l` pipeline and the count it printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CountShown {
    /// The pipeline as typed.
    pub command: String,
    /// The pattern of each `grep` in it, in order.
    pub patterns: Vec<String>,
    pub count: u64,
    /// The line the count was printed on.
    pub line: u64,
}

/// One run of consecutive instructions as `dis` printed them (AT&T syntax): nothing missing
/// between two of its lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CodeListing {
    pub lines: Vec<CodeLine>,
}

/// One instruction of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeLine {
    #[serde(serialize_with = "crate::hex::address")]
    pub address: u64,
    /// `put_compound_page+336`, as printed.
    pub location: String,
    /// The instruction, AT&T syntax (`mov 0x18(%rdx),%ecx`).
    pub text: String,
    /// The source line `dis -l` printed above it (`include/linux/bit_spinlock.h: 30`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where the transcript printed it.
    pub line: u64,
}

impl CodeListing {
    /// Whether the listing shows the instruction at `address`.
    pub fn contains(&self, address: u64) -> bool {
        self.lines.iter().any(|l| l.address == address)
    }
}

/// One CPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuState {
    pub cpu: u32,
    pub online: Option<bool>,
    /// The task it runs (`current`).
    pub task: Option<TaskRef>,
    /// Its stack, innermost first, unwound from its registers.
    pub stack: Vec<Frame>,
    /// Interrupts enabled in the context the CPU was in — the interrupted one when a stop
    /// NMI or IPI of a panic caught it (RFLAGS.IF, PSTATE.I) — when known.
    pub irqs_enabled: Option<bool>,
    /// The raw preemption counter (x86_64: `__preempt_count`, bit 31 inverted need-resched).
    pub preempt_count: Option<u64>,
    /// How far the CPU's run-queue clock lags the most advanced one: a CPU that stopped taking
    /// the timer interrupt stops its clock (crash's `runq -T`).
    pub clock_lag_ns: Option<u64>,
    /// How long the current task has been on the CPU, by the most advanced CPU clock (crash's
    /// `ps -m` uses the CPU's own clock, which stops with the CPU).
    pub running_for_ns: Option<u64>,
    /// The lockup detectors' own per-CPU state, when the kernel has them.
    pub watchdog: Option<WatchdogState>,
    /// Where the run-queue clock was read.
    pub clock_read: Option<MemoryRead>,
    pub origin: Vec<MemoryRead>,
}

/// A task that is not running, as memory shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskState {
    pub task: TaskRef,
    /// `D`, `S`, … (crash's `ps` letters).
    pub state: String,
    /// How long since it last ran (`sched_info.last_arrival`), by the most advanced CPU
    /// clock (crash's `ps -m`).
    pub blocked_ns: Option<u64>,
    /// Its stack, innermost first, unwound from where it switched out.
    pub stack: Vec<Frame>,
    /// Where `last_arrival` was read.
    pub origin: MemoryRead,
}

/// The soft- and hard-lockup detectors' per-CPU counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchdogState {
    /// How long since the soft-lockup watchdog last ran on this CPU (`watchdog_touch_ts`,
    /// kept in `running_clock() >> 30` units, against the most advanced CPU clock): a CPU
    /// that does not schedule never lets it run. None when it was just touched.
    pub touched_ago_ns: Option<u64>,
    /// Watchdog hrtimer interrupts taken (`hrtimer_interrupts`): stops counting while
    /// interrupts are off.
    pub hrtimer_interrupts: Option<u64>,
    /// The count the hard-lockup NMI saw last time (`hrtimer_interrupts_saved`): equal to the
    /// above at the NMI means no timer interrupt in a whole period.
    pub hrtimer_interrupts_saved: Option<u64>,
    /// Where `watchdog_touch_ts` was read.
    pub touch_read: Option<MemoryRead>,
}

/// A CPU waiting until other CPUs have run a function it sent them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpiWait {
    pub cpu: u32,
    /// The frame that waits (`smp_call_function_many_cond`).
    pub function: String,
    /// CPUs whose call from this CPU is still locked (not run yet).
    pub targets: Vec<u32>,
    /// The function sent, when one target's call names it.
    pub call: Option<String>,
    /// For each target, the call data still locked for it.
    pub locked_calls: Vec<LockedCall>,
    pub origin: Vec<MemoryRead>,
}

/// A CPU's call data for one target, still locked (`CSD_FLAG_LOCK`): the call has not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockedCall {
    pub target: u32,
    pub flags: u64,
    pub read: MemoryRead,
}

/// A call queued on `target_cpu`'s `call_single_queue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingCall {
    pub target_cpu: u32,
    /// The CPU that queued it, when the call is one CPU's per-CPU call data.
    pub source_cpu: Option<u32>,
    /// Its `call_single_data`.
    #[serde(serialize_with = "crate::hex::address")]
    pub csd: u64,
    pub function: Option<String>,
    #[serde(serialize_with = "crate::hex::address")]
    pub function_address: u64,
    /// `CSD_FLAG_LOCK` set: the sender still waits for it.
    pub locked: bool,
    pub origin: MemoryRead,
}

/// A lock something waits for, as memory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockState {
    #[serde(serialize_with = "crate::hex::address")]
    pub address: u64,
    /// `spinlock` (queued spinlock), `rwsem`, `mutex`, `semaphore`, `bit_lock`.
    pub kind: String,
    /// For a bit lock: the bit of the word at `address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit: Option<u32>,
    /// The lock word as read.
    pub value: Option<u64>,
    /// Taken (a queued spinlock's locked byte is set).
    pub locked: Option<bool>,
    /// The CPU at the tail of a queued spinlock's waiter queue.
    pub queued_cpu: Option<u32>,
    /// A queued spinlock's pending bit: its first waiter spins on the locked byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<bool>,
    /// The CPUs queued on a queued spinlock, head (next to take it) first, from the per-CPU
    /// MCS nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<u32>,
    /// What it is: a global `symbol+off [module]`, when a symbol covers it.
    pub symbol: Option<String>,
    /// CPUs spinning on it.
    pub waiters: Vec<u32>,
    /// Tasks sleeping until they get it, with how they want it (`read`, `write`, `lock`).
    pub task_waiters: Vec<(TaskRef, String)>,
    /// Who holds it, where the lock itself records it.
    pub owner: Option<LockOwner>,
    /// How the address was found, when a spinning CPU's registers gave it: which register
    /// of which function ("RDI of the spinning slow path").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_by: Option<String>,
    /// Tasks that may hold it: the lock's address is in their saved registers or on their
    /// stack, and they are not among the waiters (crash's `search -t`). A guess, not proof.
    pub candidate_holders: Vec<HolderCandidate>,
    pub origin: Vec<MemoryRead>,
}

/// A task whose stack or registers hold a lock's address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderCandidate {
    pub task: TaskRef,
    /// The CPU it runs on, when it runs.
    pub cpu: Option<u32>,
    /// `D`, `S`, `R`, …
    pub state: String,
    /// The frame whose stack area holds the address, when one does.
    pub frame: Option<String>,
    pub origin: MemoryRead,
}

/// A lock's owner as the lock records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockOwner {
    pub task: TaskRef,
    /// `writer`, `owner` (mutex), or `last reader`: an rwsem held for read records only the
    /// last reader to take it, a hint rather than proof.
    pub how: String,
    pub origin: MemoryRead,
}

/// RCU (tree RCU) as memory shows it: whether a grace period is in progress, since when,
/// which CPUs have not reported a quiescent state, which tasks are inside read-side critical
/// sections, and which wait for the grace period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RcuState {
    /// `rcu_state.gp_seq`.
    pub gp_seq: u64,
    pub gp_in_progress: bool,
    /// Jiffies since the grace period started (`jiffies - rcu_state.gp_start`).
    pub gp_age_jiffies: Option<u64>,
    /// CPUs the grace period still waits for (`qsmask` bits of the leaf `rcu_node`s).
    pub waiting_cpus: Vec<u32>,
    /// Readers preempted inside a read-side critical section that block it (`blkd_tasks`).
    pub blocked_readers: Vec<TaskRef>,
    /// Tasks inside a read-side critical section (`rcu_read_lock_nesting` > 0), with the CPU
    /// they run on.
    pub readers: Vec<(TaskRef, Option<u32>)>,
    /// Tasks waiting for a grace period (`synchronize_rcu` on their stack).
    pub gp_waiters: Vec<TaskRef>,
    pub origin: Vec<MemoryRead>,
}
