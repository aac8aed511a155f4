//! The facts model: what lockscope knows about a hung machine, independent of where it
//! learned it.
//!
//! Position in the flow: `log` (kernel logs) and, later, the dump readers produce
//! [`Event`]s made of these types; `diagnosis` consumes them and never looks at the
//! source again; `report` prints both. Keeping the log path and the dump path on one
//! vocabulary is what lets one diagnosis engine serve both.

pub mod machine;

/// Addresses in JSON: `"0x…"` strings, since kernel addresses do not fit a JSON reader's
/// 53-bit integers.
pub mod hex {
    pub fn address<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    pub fn optional<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => address(v, s),
            None => s.serialize_none(),
        }
    }
}

use serde::Serialize;
use std::fmt;

/// A task as the kernel names it in reports: `comm` and `pid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TaskRef {
    pub comm: String,
    pub pid: u32,
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.comm, self.pid)
    }
}

/// The execution context a stack frame was printed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FrameContext {
    #[default]
    Task,
    Irq,
    SoftIrq,
    Nmi,
    Exception,
}

/// One line of a call trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub function: String,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    pub module: Option<String>,
    pub address: Option<u64>,
    /// False for frames printed with `?`: stale return addresses found on the stack,
    /// not proven part of the call chain.
    pub reliable: bool,
    pub context: FrameContext,
    /// The stack pointer at this frame (frames unwound from a dump).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_pointer: Option<u64>,
    /// The registers known at this frame, by name (a dump's unwinder: all of them where an
    /// interrupt or exception saved them, a few elsewhere).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registers: Vec<(String, u64)>,
}

impl Frame {
    pub fn named(function: &str) -> Frame {
        Frame {
            function: function.to_string(),
            offset: None,
            size: None,
            module: None,
            address: None,
            reliable: true,
            context: FrameContext::Task,
            stack_pointer: None,
            registers: Vec::new(),
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.reliable {
            f.write_str("? ")?;
        }
        f.write_str(&self.function)?;
        match (self.offset, self.size) {
            (Some(o), Some(s)) => write!(f, "+{o:#x}/{s:#x}")?,
            (Some(o), None) => write!(f, "+{o:#x}")?,
            _ => {}
        }
        if let Some(m) = &self.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Arm64,
    /// The architectures below are known from their logs only (`EIP is at`, `PC is at`,
    /// `NIP [..]`, `Krnl PSW :`, `epc :`, `ERA:`): the interrupted function, no analysis.
    I386,
    Arm,
    PowerPc,
    S390,
    RiscV,
    Mips,
    LoongArch,
}

/// Where the instruction pointer was (`RIP:`/`pc :` line), and on arm64 the link register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeLocation {
    pub function: Option<String>,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    pub module: Option<String>,
    pub address: Option<u64>,
    /// User mode (`RIP: 0033:` on x86_64): the CPU was not in the kernel.
    pub user: bool,
}

/// A register set as printed by `show_regs`, parsed to numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registers {
    pub arch: Arch,
    pub ip: Option<CodeLocation>,
    /// arm64 `lr :` line.
    pub lr: Option<CodeLocation>,
    /// Register name (lower case, `rax`, `x0`, `eflags`, `pstate`, `sp`...) and value,
    /// in printed order.
    pub values: Vec<(String, u64)>,
    /// The `Code:` bytes (x86_64), with the index of the byte RIP points at.
    pub code: Option<CodeBytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeBytes {
    pub bytes: Vec<u8>,
    /// Index into `bytes` of the instruction at the faulting/interrupted IP (`<..>`).
    pub ip_index: usize,
}

impl Registers {
    pub fn new(arch: Arch) -> Registers {
        Registers { arch, ip: None, lr: None, values: Vec::new(), code: None }
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    pub fn set(&mut self, name: &str, value: u64) {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_string(), value)),
        }
    }

    /// Whether maskable interrupts were enabled: EFLAGS.IF (bit 9) on x86_64 and i386,
    /// PSTATE.I clear (bit 7) on arm64. `None` when the flags register was not printed.
    pub fn irqs_enabled(&self) -> Option<bool> {
        match self.arch {
            Arch::X86_64 => self.get("eflags").map(|f| f & (1 << 9) != 0),
            Arch::Arm64 => self.get("pstate").map(|p| p & (1 << 7) == 0),
            Arch::I386 => self.get("eflags").map(|f| f & (1 << 9) != 0),
            _ => None,
        }
    }
}

/// What kind of report a log event is. The names are the `kind` strings of the JSON schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SoftLockup,
    HardLockup,
    RcuStall,
    HungTask,
    WorkqueueLockup,
    CsdLockTimeout,
    NmiBacktrace,
    Panic,
    Oops,
    Warning,
    HardwareError,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SoftLockup => "soft_lockup",
            EventKind::HardLockup => "hard_lockup",
            EventKind::RcuStall => "rcu_stall",
            EventKind::HungTask => "hung_task",
            EventKind::WorkqueueLockup => "workqueue_lockup",
            EventKind::CsdLockTimeout => "csd_lock_timeout",
            EventKind::NmiBacktrace => "nmi_backtrace",
            EventKind::Panic => "panic",
            EventKind::Oops => "oops",
            EventKind::Warning => "warning",
            EventKind::HardwareError => "hardware_error",
        }
    }

    /// Lockups and hangs: the events lockscope exists to explain.
    pub fn is_lockup(self) -> bool {
        matches!(
            self,
            EventKind::SoftLockup
                | EventKind::HardLockup
                | EventKind::RcuStall
                | EventKind::HungTask
                | EventKind::WorkqueueLockup
                | EventKind::CsdLockTimeout
        )
    }
}

/// Where in the input an event came from: file index, 1-based line numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct LineRange {
    pub source: usize,
    pub first: u64,
    pub last: u64,
}

/// Details of an RCU stall report, per stalled CPU or task.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RcuStall {
    /// `rcu_sched`, `rcu_preempt`, `rcu_tasks`, ...
    pub flavor: Option<String>,
    /// `self_detected`, `detected`, `expedited`, `tasks`, `tasks_trace`, `tasks_rude`,
    /// `kthread_starved`.
    pub form: String,
    pub detected_by: Option<u32>,
    pub ticks_this_gp: Option<u64>,
    pub jiffies: Option<u64>,
    pub grace_period: Option<i64>,
    pub starved_jiffies: Option<u64>,
    /// Raw per-CPU detail line (`65-....: (3920456 ticks this GP) idle=...`).
    pub detail: Option<String>,
}

/// Details of a CSD lock timeout (`csd: Detected non-responsive CSD lock ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CsdWait {
    pub target_cpu: Option<u32>,
    pub function: Option<String>,
    /// The longest wait the log printed: the first report's, or a later `Continued` line's.
    pub waiting_ns: Option<u64>,
    /// The kernel said the lock got unstuck (`csd: CSD lock (#1) got unstuck on CPU#00,
    /// CPU#01 released the lock.`): the target ran the function in the end.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unstuck: bool,
}

/// A machine-check, EDAC or APEI/GHES record, or an IPMI SEL row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HardwareRecord {
    /// `mce`, `edac`, `ghes`, `aer`, `dpc`, `memory_failure`, `serror`, `ipmi_sel`.
    pub source: String,
    /// `corrected`, `uncorrected`, `fatal`, `non_recoverable`, or `info`.
    pub severity: String,
    /// Memory, CPU, PCIe...: the component the record names, when it names one.
    pub component: Option<String>,
    pub description: String,
}

/// One thing the log (or, later, a dump) reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    /// Variant of the kind: `io_wait`, `cant_die` (hung task), `self_detected` (RCU),
    /// `scheduling_while_atomic` (oops), ...
    pub subkind: Option<Subkind>,
    /// syzkaller-compatible title for lockups (`BUG: soft lockup in FUNC`), the report's
    /// headline otherwise.
    pub title: String,
    /// The function a lockup report's title blames (syzkaller's guilty frame), kept apart so
    /// no one re-reads it from the title. None for reports made from memory: their stack
    /// is the evidence, no title heuristic stands between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guilty: Option<String>,
    /// syzkaller's alternative titles of a lockup report (`stall in F`, the title with the
    /// guilty frame as printed): syzbot files a report under a known bug when its title or
    /// one of these equals one of the bug's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alt_titles: Vec<String>,
    /// The line that opened the report, without prefix.
    pub headline: String,
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
    /// `D`, `R`, ... when the report printed the task state.
    pub task_state: Option<String>,
    /// How long the CPU or task was stuck, in seconds.
    pub duration_s: Option<f64>,
    /// Seconds since boot (printk time stamp).
    pub time: Option<f64>,
    /// Wall-clock time as the log printed it (syslog/journal prefix).
    pub wall_time: Option<String>,
    pub host: Option<String>,
    /// Boot number within the source file, counting `Linux version` banners (0 = before the first).
    pub boot: u32,
    pub release: Option<String>,
    pub taint: Option<String>,
    pub hardware_name: Option<String>,
    /// The CPU/PID/comm of the `CPU: N PID: N Comm: X` line: who printed the report.
    pub reporter_cpu: Option<u32>,
    pub registers: Option<Registers>,
    pub stack: Vec<Frame>,
    /// Tasks listed in the report as lock owners (6.x hung-task "likely owned by").
    pub blocked_on: Option<BlockedOn>,
    pub rcu: Option<RcuStall>,
    pub csd: Option<CsdWait>,
    pub hardware: Option<HardwareRecord>,
    /// Panic message, oops/warning text after the headline prefix.
    pub message: Option<String>,
    pub lines: LineRange,
    /// Where a report derived from a vmcore's memory was read (its lines are then 0): the
    /// provenance of an event is a range of log lines or a memory read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<machine::MemoryRead>,
    /// The task ids printed by `printk` caller ids (`[T123]`/`[C3]`) on the headline.
    pub caller: Option<String>,
    /// This report repeats an earlier event (index in the same event list): same kind,
    /// subkind, CPU, task and reliable frames, shortly after. A repeat keeps its own
    /// headline, time, lines and duration, but not the stack and registers: read them
    /// from the first occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<usize>,
}

impl Event {
    pub fn new(kind: EventKind, headline: &str, lines: LineRange) -> Event {
        Event {
            kind,
            subkind: None,
            title: headline.to_string(),
            guilty: None,
            alt_titles: Vec::new(),
            headline: headline.to_string(),
            cpu: None,
            task: None,
            task_state: None,
            duration_s: None,
            time: None,
            wall_time: None,
            host: None,
            boot: 0,
            release: None,
            taint: None,
            hardware_name: None,
            reporter_cpu: None,
            registers: None,
            stack: Vec::new(),
            blocked_on: None,
            rcu: None,
            csd: None,
            hardware: None,
            message: None,
            lines,
            memory: None,
            caller: None,
            repeat_of: None,
        }
    }

    /// Frames proven to be part of the call chain.
    pub fn reliable_frames(&self) -> impl Iterator<Item = &Frame> {
        self.stack.iter().filter(|f| f.reliable)
    }
}

/// "INFO: task A:1 is blocked on a mutex likely owned by task B:2."
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedOn {
    /// `mutex`, `semaphore`, `rwsem` as the kernel names it.
    pub primitive: String,
    pub owner: Option<TaskRef>,
    /// The owner's stack when the report printed it (6.x does).
    pub owner_stack: Vec<Frame>,
    pub owner_state: Option<String>,
}

/// Locks a task holds, as lockdep lists them (`1 lock held by khugepaged/60:` and the
/// ` #0: addr (name){....}, at: func` lines after it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldLocks {
    pub task: TaskRef,
    pub locks: Vec<HeldLock>,
    pub lines: LineRange,
    pub boot: u32,
    pub host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldLock {
    pub address: Option<u64>,
    /// Lock class name: `&mm->mmap_lock`, `rtnl_mutex`.
    pub name: String,
    pub acquired_at: Option<String>,
}

/// How sure a conclusion is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Possible,
    Likely,
    Certain,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Possible => "possible",
            Confidence::Likely => "likely",
            Confidence::Certain => "certain",
        }
    }
}

/// Who is stuck: a CPU (with the task on it, when known) or a task off CPU.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Subject {
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
}

impl Subject {
    pub fn cpu(cpu: u32, task: Option<TaskRef>) -> Subject {
        Subject { cpu: Some(cpu), task }
    }
    pub fn task(task: TaskRef) -> Subject {
        Subject { cpu: None, task: Some(task) }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.cpu, &self.task) {
            (Some(c), Some(t)) => write!(f, "CPU {c} ({t})"),
            (Some(c), None) => write!(f, "CPU {c}"),
            (None, Some(t)) => write!(f, "task {t}"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

/// The variant of a report, where its kind has several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subkind {
    /// A hung task blocked in I/O wait (`blocked in I/O wait for more than`).
    IoWait,
    /// A hung task killed that cannot die (`can't die for more than`).
    CantDie,
    /// `WARNING: … watchdog_overflow_callback`: the opening of a hard-lockup report.
    HardLockupWarning,
    /// `BUG: scheduling while atomic`.
    SchedulingWhileAtomic,
    /// `BUG: sleeping function called from invalid context`.
    SleepingInAtomic,
    /// `BUG: spinlock lockup suspected`.
    SpinlockLockup,
    /// `BUG: kernel NULL pointer dereference`.
    NullPointer,
}

/// What a stuck CPU or task waits for, read from its stack and registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Spinlock,
    RwlockRead,
    RwlockWrite,
    BitSpinlock,
    /// IPI / cross-CPU function call: waits until other CPUs run a function.
    CsdIpi,
    Mutex,
    RwsemRead,
    RwsemWrite,
    Semaphore,
    PageLock,
    BitWait,
    IoWait,
    Completion,
    RcuGracePeriod,
    StopMachine,
    Sleep,
    WorkqueueFlush,
    /// Runs without waiting for anything we can name (a loop, or simply busy).
    Running,
    Unknown,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::Spinlock => "spinlock",
            WaitKind::RwlockRead => "rwlock (read)",
            WaitKind::RwlockWrite => "rwlock (write)",
            WaitKind::BitSpinlock => "bit spinlock",
            WaitKind::CsdIpi => "IPI/CSD completion",
            WaitKind::Mutex => "mutex",
            WaitKind::RwsemRead => "rwsem (read)",
            WaitKind::RwsemWrite => "rwsem (write)",
            WaitKind::Semaphore => "semaphore",
            WaitKind::PageLock => "page lock",
            WaitKind::BitWait => "bit wait",
            WaitKind::IoWait => "I/O",
            WaitKind::Completion => "completion",
            WaitKind::RcuGracePeriod => "RCU grace period",
            WaitKind::StopMachine => "stop_machine",
            WaitKind::Sleep => "timed sleep",
            WaitKind::WorkqueueFlush => "workqueue flush",
            WaitKind::Running => "nothing (running)",
            WaitKind::Unknown => "unknown",
        }
    }

    /// Waits that spin on a CPU instead of sleeping.
    pub fn spins(self) -> bool {
        matches!(
            self,
            WaitKind::Spinlock
                | WaitKind::RwlockRead
                | WaitKind::RwlockWrite
                | WaitKind::BitSpinlock
                | WaitKind::CsdIpi
                | WaitKind::StopMachine
        )
    }
}
