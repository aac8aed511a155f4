//! Report headlines: the table of every line that opens (or re-labels) a kernel report,
//! across kernel versions from 2.6 to 6.x. Each entry is a literal trigger found in the
//! line plus a parser for the rest; the triggers double as the fast pre-filter that lets
//! the scanner skip uninteresting parts of a log without looking at each line.

use crate::lines::{contains_str, find_str};
use lockscope_facts::{EventKind, Subkind, TaskRef};

/// What a headline says, before it becomes an [`lockscope_facts::Event`].
#[derive(Clone, Debug, PartialEq)]
pub enum Headline {
    /// A new report of `kind`.
    Open(Opening),
    /// `Linux version X ...`: a new boot.
    Boot {
        release: String,
    },
    /// `Watchdog detected hard LOCKUP on cpu N` right after the old `WARNING: at
    /// kernel/watchdog.c ... watchdog_overflow_callback` headline: same report.
    HardLockupLine {
        cpu: Option<u32>,
    },
    /// RCU report body lines.
    RcuCpuDetail {
        cpu: u32,
        detail: String,
    },
    RcuTaskDetail {
        pid: u32,
    },
    RcuDetectedBy {
        by: Option<u32>,
        jiffies: Option<u64>,
        gp: Option<i64>,
    },
    RcuStarved {
        jiffies: Option<u64>,
        cpu: Option<u32>,
    },
    /// `Task dump for CPU N:`
    TaskDumpForCpu(u32),
    /// `INFO: task A:1 is blocked on a mutex likely owned by task B:2.`
    BlockedOn {
        task: TaskRef,
        primitive: String,
        owner: Option<TaskRef>,
    },
    /// `csd: CSD lock (#1) unresponsive.` and friends: part of an open CSD report.
    CsdFollowUp,
    /// `csd: Continued non-responsive CSD lock (#1) on CPU#0, waiting 10000001888 ns for
    /// CPU#01 ...`: the wait of an earlier report goes on (every 5 s, without a stack).
    CsdContinued {
        cpu: Option<u32>,
        target: Option<u32>,
        waiting_ns: Option<u64>,
    },
    /// `csd: CSD lock (#1) got unstuck on CPU#00, CPU#01 released the lock.`: it ended.
    CsdUnstuck {
        cpu: Option<u32>,
        target: Option<u32>,
    },
    /// `N locks held by comm/pid:`
    LocksHeld {
        task: TaskRef,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Opening {
    pub kind: Option<EventKind>,
    pub subkind: Option<Subkind>,
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
    pub duration_s: Option<f64>,
    pub message: Option<String>,
    /// CPUs named on the headline (old RCU `{ 3 5}` lists, expedited `{ 3-... }`).
    pub cpus: Vec<u32>,
    pub pids: Vec<u32>,
    pub rcu_flavor: Option<String>,
    pub rcu_form: Option<&'static str>,
    pub csd_target: Option<u32>,
    pub csd_function: Option<String>,
    pub csd_waiting_ns: Option<u64>,
}

impl Opening {
    pub(crate) fn new(kind: EventKind) -> Opening {
        Opening { kind: Some(kind), ..Default::default() }
    }
}

/// Literal substrings at least one of which occurs in every headline: the pre-filter.
pub const TRIGGERS: &[&str] = &[
    "soft lockup",
    "LOCKUP",
    "watchdog_overflow_callback",
    "stall",
    // RCU headlines wrapped before `stall`: `rcu: INFO: rcu_sched detected expedited`.
    "INFO: rcu",
    "starved for",
    "blocked for more than",
    // The start of a hung-task headline split in two by a newline in the comm.
    "INFO: task",
    "blocked in I/O wait",
    "can't die",
    "is blocked on",
    "workqueue lockup",
    "CSD lock",
    "NMI backtrace",
    // powerpc, for a CPU that ignores the backtrace IPI: its task comes from its paca.
    "respond to backtrace IPI",
    "Kernel panic",
    "BUG",
    "Oops",
    "WARNING:",
    "general protection",
    "Unable to handle",
    "Internal error",
    "error: 0000",
    "opcode: 0000",
    "Hardware Error",
    "HARDWARE ERROR",
    "EDAC",
    "mce:",
    "Machine check",
    "Memory failure",
    "AER:",
    "SError",
    // Hardware lines without the words above (`hardware::classify_hardware_line` is asked
    // only about lines with a trigger): `CPU 2: Machine Check Exception:`, `CMCI storm
    // detected`, old `MCE 0x1234:` memory failures, `PCIe Bus Error: severity=`, DPC.
    "Machine Check",
    "CMCI storm",
    "MCE 0x",
    "PCIe Bus Error",
    "DPC: containment",
    "Linux version",
    // crash's `sys`: a new session, a new dump.
    "RELEASE: ",
    // `CPU: N PID: N Comm: X` of a register dump whose headline is missing.
    "PID: ",
    "held by",
    "Task dump for CPU",
    "detected by",
    "ticks this GP",
    "GPs behind",
];

/// Strips `watchdog: `, `NMI watchdog: `, `rcu: `, `CPU3: ` and similar facility prefixes.
fn strip_facility(mut s: &str) -> &str {
    const FACILITIES: [&str; 5] = ["NMI watchdog: ", "watchdog: ", "rcu: ", "kernel: ", "smp: "];
    loop {
        let before = s;
        // A stray byte of a garbled console before the facility: `?rcu: INFO: rcu_sched ..`.
        if let Some(r) = s.strip_prefix(|c: char| c.is_ascii_punctuation())
            && FACILITIES.iter().any(|p| r.starts_with(p))
        {
            s = r;
        }
        for p in FACILITIES {
            if let Some(r) = s.strip_prefix(p) {
                s = r;
            }
        }
        // `CPU10: Watchdog detected hard LOCKUP on cpu 10`
        if let Some(r) = s.strip_prefix("CPU") {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n > 0 && r[n..].starts_with(": ") {
                s = &r[n + 2..];
            }
        }
        if s == before {
            return s;
        }
    }
}

/// The `csd: ` lines of `csd_lock_wait_toolong()`, in every wording since 5.10 (and the
/// `waiting 5.000 secs` of its first backports).
fn csd(rest: &str) -> Headline {
    if let Some(r) = after(rest, "CSD lock (#")
        .filter(|_| rest.starts_with("CSD lock"))
        .and_then(|r| after(r, "got unstuck on CPU#"))
    {
        return Headline::CsdUnstuck { cpu: num(r), target: after(r, ", CPU#").and_then(num) };
    }
    let Some(r) = after(rest, "non-responsive CSD lock") else {
        return Headline::CsdFollowUp;
    };
    let cpu = after(r, "on CPU#").and_then(num);
    let waiting_ns = after(r, "waiting ").and_then(|w| {
        let whole: u64 = num(w)?;
        // `waiting 5.000 secs`: seconds and milliseconds.
        match w.split_once(" secs").map(|(n, _)| n) {
            Some(secs) => {
                let millis: u64 = secs.split_once('.').and_then(|(_, m)| m.parse().ok()).unwrap_or(0);
                Some(whole * 1_000_000_000 + millis * 1_000_000)
            }
            None => Some(whole),
        }
    });
    let tail = after(r, " for CPU#");
    let target = tail.and_then(num);
    if rest.starts_with("Continued") {
        return Headline::CsdContinued { cpu, target, waiting_ns };
    }
    let mut o = Opening::new(EventKind::CsdLockTimeout);
    (o.cpu, o.csd_waiting_ns, o.csd_target) = (cpu, waiting_ns, target);
    let func = tail.and_then(|t| t.split_once(' ')).map_or("", |x| x.1);
    let func = func.split('(').next().unwrap_or("").trim();
    if !func.is_empty() {
        o.csd_function = Some(func.to_string());
    }
    Headline::Open(o)
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    let sign = usize::from(s.starts_with('-'));
    let end = sign + s[sign..].bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len() - sign);
    s[..end].parse().ok()
}

fn after<'a>(s: &'a str, pat: &str) -> Option<&'a str> {
    find_str(s, pat).map(|i| &s[i + pat.len()..])
}

/// `comm:pid` where comm may itself hold colons and blanks: the pid is after the last colon.
pub fn comm_pid(s: &str) -> Option<TaskRef> {
    let (comm, pid) = s.rsplit_once(':')?;
    let pid: u32 = pid.trim().parse().ok()?;
    Some(TaskRef { comm: comm.trim().to_string(), pid })
}

/// Parses a report headline (message text without prefix). `line` is already known to
/// contain one of [`TRIGGERS`].
pub fn parse_headline(text: &str) -> Option<Headline> {
    let s = strip_facility(text.trim_start());
    // crash's `sys`: `PANIC: "Kernel panic - not syncing: softlockup: hung tasks"`.
    let s = match s.strip_prefix("PANIC: \"") {
        Some(r) => r.trim_end().strip_suffix('"').unwrap_or(r),
        None => s,
    };
    if let Some(rest) = s.strip_prefix("Linux version ") {
        let release = rest.split_whitespace().next()?.to_string();
        return Some(Headline::Boot { release });
    }
    // crash's `sys` names the dumped kernel: what follows is another machine's session.
    if let Some(rest) = s.strip_prefix("RELEASE: ") {
        let release = rest.split_whitespace().next()?.to_string();
        return Some(Headline::Boot { release });
    }
    if let Some(rest) = s.strip_prefix("BUG: soft lockup") {
        let mut o = Opening::new(EventKind::SoftLockup);
        // `- CPU#0 stuck for 61s! [comm:pid]` or ` detected on CPU#3!`
        if let Some(c) = after(rest, "CPU#") {
            o.cpu = num(c);
        }
        if let Some(d) = after(rest, "stuck for ") {
            o.duration_s = num::<u64>(d).map(|v| v as f64);
        }
        if let (Some(open), Some(close)) = (find_str(rest, "! ["), rest.rfind(']'))
            && open + 3 < close
        {
            o.task = comm_pid(&rest[open + 3..close]);
        }
        return Some(Headline::Open(o));
    }
    // 2.6–3.x x86: `BUG: NMI Watchdog detected LOCKUP on CPU1, ip ...`, 2.6.1x: `NMI Watchdog
    // detected LOCKUP on CPU 1` (then `CPU 1` and `Pid: 284, comm: ...` lines).
    if let Some(rest) = after(s, "NMI Watchdog detected LOCKUP on CPU") {
        let mut o = Opening::new(EventKind::HardLockup);
        o.cpu = num(rest.trim_start());
        return Some(Headline::Open(o));
    }
    if let Some(rest) = after(s, "Watchdog detected hard LOCKUP on cpu") {
        let cpu = num(rest.trim_start());
        if let Some(message) = s.strip_prefix("Kernel panic - not syncing: ") {
            let mut o = Opening::new(EventKind::Panic);
            o.message = Some(message.trim().to_string());
            o.cpu = cpu;
            return Some(Headline::Open(o));
        }
        return Some(Headline::HardLockupLine { cpu });
    }
    if let Some(msg) = s.strip_prefix("Kernel panic - not syncing: ") {
        let mut o = Opening::new(EventKind::Panic);
        o.message = Some(msg.trim().to_string());
        return Some(Headline::Open(o));
    }
    if s.starts_with("INFO: task ") || s.starts_with("INFO: task:") {
        return hung_task(&s["INFO: task ".len()..]);
    }
    if let Some(h) = rcu(s) {
        return Some(h);
    }
    if let Some(rest) = s.strip_prefix("BUG: workqueue lockup") {
        let mut o = Opening::new(EventKind::WorkqueueLockup);
        if let Some(c) = after(rest, "cpus=") {
            let tok = c.split_whitespace().next().unwrap_or("");
            o.cpu = tok.parse().ok();
        }
        if let Some(d) = after(rest, "stuck for ") {
            o.duration_s = num::<u64>(d).map(|v| v as f64);
        }
        return Some(Headline::Open(o));
    }
    if let Some(rest) = s.strip_prefix("csd: ") {
        return Some(csd(rest));
    }
    if let Some(o) = crash_bt_header(s) {
        return Some(Headline::Open(o));
    }
    if let Some(rest) = s.strip_prefix("NMI backtrace for cpu ") {
        let mut o = Opening::new(EventKind::NmiBacktrace);
        o.cpu = num(rest);
        if let Some(m) = after(rest, "skipped: ") {
            o.message = Some(m.trim().to_string());
        }
        return Some(Headline::Open(o));
    }
    // powerpc: `CPU 40 didn't respond to backtrace IPI, inspecting paca.`, then
    // `irq_soft_mask: 0x01 in_mce: 0 in_nmi: 0 current: 217 (kworker/40:0H)`: the backtrace
    // of that CPU, as far as it goes.
    if let Some(rest) = s.strip_prefix("CPU ")
        && contains_str(rest, " respond to backtrace IPI")
    {
        let mut o = Opening::new(EventKind::NmiBacktrace);
        o.cpu = num(rest);
        return Some(Headline::Open(o));
    }
    if let Some(rest) = s.strip_prefix("Task dump for CPU ") {
        return num(rest).map(Headline::TaskDumpForCpu);
    }
    if let Some(h) = locks_held(s) {
        return Some(h);
    }
    oops_or_warning(s)
}

/// crash's `bt` header, `PID: 61  TASK: ffff8f6f76863e80  CPU: 1  COMMAND: "kworker/1:1"`:
/// a backtrace of the task on that CPU as crash unwound it from the dump, read like a
/// kernel-printed backtrace of a CPU.
fn crash_bt_header(s: &str) -> Option<Opening> {
    let rest = s.strip_prefix("PID: ")?;
    let pid: u32 = num(rest.trim_start())?;
    let task = after(rest, "TASK: ")?;
    if !task.split_whitespace().next()?.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let cpu = after(rest, "CPU: ")?.trim_start();
    let comm = after(rest, "COMMAND: \"")?;
    let comm = &comm[..comm.rfind('"')?];
    let mut o = Opening::new(EventKind::NmiBacktrace);
    // `CPU: -` for a task that never ran on one.
    o.cpu = num(cpu);
    o.task = Some(TaskRef { comm: comm.to_string(), pid });
    Some(o)
}

/// `INFO: task COMM` with nothing after the comm: the comm held a newline, and the rest
/// of the headline (`COMM:PID blocked for more than N seconds.`) is on the next line
/// (syzkaller corpus file 1001).
pub fn is_split_task_headline(text: &str) -> bool {
    let s = strip_facility(text.trim_start());
    let s = s.trim_end();
    s.strip_prefix("INFO: task")
        .filter(|rest| rest.is_empty() || rest.starts_with(' '))
        .is_some_and(|rest| !contains_str(rest, " for more than ") && !contains_str(rest, " is blocked on "))
}

fn hung_task(rest: &str) -> Option<Headline> {
    // `A:1 is blocked on a mutex likely owned by task B:2.`
    if let Some(i) = find_str(rest, " is blocked on ") {
        let task = comm_pid(&rest[..i])?;
        let tail = &rest[i + " is blocked on ".len()..];
        let tail = tail.strip_prefix("a ").or_else(|| tail.strip_prefix("an ")).unwrap_or(tail);
        let primitive = tail.split_whitespace().next().unwrap_or("lock").to_string();
        let owner = after(tail, " by task ").and_then(|o| comm_pid(o.trim().trim_end_matches('.')));
        return Some(Headline::BlockedOn { task, primitive, owner });
    }
    // The headline may be cut anywhere after `blocked for` (a wrap): `... for more` / `than
    // 120 seconds.`
    let (i, subkind) = [
        (" blocked for", None),
        (" blocked in I/O wait for", Some(Subkind::IoWait)),
        (" can't die for", Some(Subkind::CantDie)),
    ]
    .iter()
    .find_map(|(pat, sk)| {
        let i = find_str(rest, pat)?;
        let tail = rest[i + pat.len()..].trim_end();
        let fits = tail.starts_with(" more than") || " more than".starts_with(tail);
        fits.then(|| ((i, pat.len() + tail.len().min(" more than".len())), *sk))
    })?;
    let mut o = Opening::new(EventKind::HungTask);
    o.subkind = subkind;
    o.task = comm_pid(&rest[..i.0]);
    o.duration_s = num::<u64>(rest[i.0 + i.1..].trim_start()).map(|v| v as f64);
    Some(Headline::Open(o))
}

fn rcu(s: &str) -> Option<Headline> {
    // Without `INFO: ` when a wrap left it on the line before (`rcu: INFO: ` /
    // `rcu_sched detected stalls on CPUs/tasks:`): the flavor names it.
    let bare_stall = s.starts_with("rcu")
        && (contains_str(s, " detected stall") || contains_str(s, " self-detected stall"))
        || contains_str(s, " detected expedited stall");
    let info = s.strip_prefix("INFO: ").or_else(|| bare_stall.then_some(s));
    if let Some(rest) = info {
        // `rcu_sched self-detected stall on CPU`, `rcu_preempt detected stalls on CPUs/tasks:`,
        // `rcu_preempt detected expedited stalls on CPUs/tasks: { 3-... } 21003 jiffies s: ..`,
        // `rcu_tasks detected stalls on tasks:`
        let (flavor, body) = rest.split_once(' ')?;
        if !flavor.starts_with("rcu") && !contains_str(flavor, "rcu") {
            return None;
        }
        let form: &'static str = if body.starts_with("self-detected stall") {
            "self_detected"
        } else if body.starts_with("detected expedited") {
            "expedited"
        } else if body.starts_with("detected stall") {
            match flavor {
                "rcu_tasks" => "tasks",
                "rcu_tasks_trace" => "tasks_trace",
                "rcu_tasks_rude" => "tasks_rude",
                _ if contains_str(body, "on tasks") && !contains_str(body, "CPUs") => "tasks",
                _ => "detected",
            }
        } else {
            return None;
        };
        let mut o = Opening::new(EventKind::RcuStall);
        o.rcu_flavor = Some(flavor.to_string());
        o.rcu_form = Some(form);
        // Old single-line forms list CPUs in braces: `{ 3 5}`, `{ 3-...D }`, `{ P1234 }`.
        if let (Some(a), Some(b)) = (body.find('{'), body.find('}'))
            && a < b
        {
            for tok in body[a + 1..b].split_whitespace() {
                if let Some(p) = tok.strip_prefix('P') {
                    if let Some(pid) = num(p) {
                        o.pids.push(pid);
                    }
                } else if let Some(c) = num::<u32>(tok) {
                    o.cpus.push(c);
                }
            }
        }
        if let Some(by) = after(body, "detected by ") {
            o.cpu = None;
            o.message = Some(format!("detected by {}", by.split(',').next().unwrap_or("").trim()));
        }
        return Some(Headline::Open(o));
    }
    // `rcu_preempt kthread starved for 10502 jiffies! g-811 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1`
    if let Some(r) = after(s, "kthread starved for ") {
        return Some(Headline::RcuStarved { jiffies: num(r), cpu: after(r, "->cpu=").and_then(num) });
    }
    // Per-CPU detail: `\t65-....: (3920456 ticks this GP) idle=...`, old `\t3: (1 GPs behind) idle=..`
    let t = s.trim_start();
    if contains_str(t, "ticks this GP") || contains_str(t, "GPs behind") {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let rest = &t[digits..];
            let colon = find_str(rest, ": (")?;
            if colon <= 8 && (colon == 0 || rest.starts_with('-')) {
                return Some(Headline::RcuCpuDetail { cpu: t[..digits].parse().ok()?, detail: t.to_string() });
            }
        }
    }
    // `(detected by 1, t=2506 jiffies, g=-807, q=13 ncpus=4)` / `(t=3930738 jiffies g=4128081 q=39909432)`
    if t.starts_with('(') && (contains_str(t, "detected by") || contains_str(t, "jiffies")) {
        return Some(Headline::RcuDetectedBy {
            by: after(t, "detected by ").and_then(num),
            jiffies: after(t, "t=").and_then(num),
            gp: after(t, "g=").and_then(num),
        });
    }
    if let Some(r) = t.strip_prefix("Tasks blocked on level-") {
        let pid = after(r, ": P").and_then(num)?;
        return Some(Headline::RcuTaskDetail { pid });
    }
    None
}

/// `1 lock held by khugepaged/60:` / `2 locks held by syz-executor/1234:`
fn locks_held(s: &str) -> Option<Headline> {
    let t = s.trim_start();
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let rest = t[n..].strip_prefix(" lock held by ").or_else(|| t[n..].strip_prefix(" locks held by "))?;
    let rest = rest.trim_end().trim_end_matches(':');
    let (comm, pid) = rest.rsplit_once('/')?;
    Some(Headline::LocksHeld { task: TaskRef { comm: comm.to_string(), pid: pid.parse().ok()? } })
}

fn oops_or_warning(s: &str) -> Option<Headline> {
    const OOPS: &[(&str, Option<Subkind>)] = &[
        ("BUG: scheduling while atomic", Some(Subkind::SchedulingWhileAtomic)),
        ("BUG: sleeping function called from invalid context", Some(Subkind::SleepingInAtomic)),
        ("BUG: spinlock lockup suspected", Some(Subkind::SpinlockLockup)),
        ("BUG: unable to handle", None),
        ("BUG: kernel NULL pointer dereference", Some(Subkind::NullPointer)),
        ("BUG: ", None),
        ("kernel BUG at ", None),
        ("Oops: ", None),
        ("general protection fault", None),
        ("Unable to handle kernel ", None),
        ("Internal error: ", None),
        ("divide error: ", None),
        ("invalid opcode: ", None),
    ];
    for (p, sub) in OOPS {
        if s.starts_with(p) {
            let mut o = Opening::new(EventKind::Oops);
            o.subkind = *sub;
            o.message = Some(s.to_string());
            if *sub == Some(Subkind::SchedulingWhileAtomic) {
                // `BUG: scheduling while atomic: zone_drain/136/0x00000002`
                if let Some(r) = after(s, "atomic: ") {
                    let mut parts = r.rsplitn(3, '/');
                    let _preempt = parts.next();
                    let pid = parts.next().and_then(|p| p.parse().ok());
                    if let (Some(pid), Some(comm)) = (pid, parts.next()) {
                        o.task = Some(TaskRef { comm: comm.to_string(), pid });
                    }
                }
            } else if *sub == Some(Subkind::SpinlockLockup) {
                o.cpu = after(s, "CPU#").and_then(num);
            }
            return Some(Headline::Open(o));
        }
    }
    if s.starts_with("WARNING: ") {
        let mut o = Opening::new(EventKind::Warning);
        o.message = Some(s.to_string());
        if let Some(c) = s.strip_prefix("WARNING: CPU: ") {
            o.cpu = num(c);
            o.task = after(c, "PID: ").and_then(num).map(|pid| TaskRef { comm: String::new(), pid });
        }
        if contains_str(s, "watchdog_overflow_callback") {
            o.subkind = Some(Subkind::HardLockupWarning);
        }
        return Some(Headline::Open(o));
    }
    None
}

/// `CPU: 1 PID: 138 Comm: text_poke Tainted: G        W  OE      6.1.0-50-amd64 #1  Debian 6.1.176-1`
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CpuLine {
    pub cpu: Option<u32>,
    pub task: Option<TaskRef>,
    pub taint: Option<String>,
    pub release: Option<String>,
}

pub fn parse_cpu_line(s: &str) -> Option<CpuLine> {
    let s = s.trim_start();
    // 2.6–3.x: `Pid: 0, comm: swapper/0 Not tainted 3.8.9-200.fc18.x86_64 #1` (no CPU).
    if let Some(rest) = s.strip_prefix("Pid: ") {
        let pid: u32 = num(rest)?;
        let c = after(rest, ", comm: ")?;
        let end =
            [" Tainted:", " Not tainted", " Kdump:"].iter().filter_map(|m| find_str(c, m)).min().unwrap_or(c.len());
        let (taint, release) = parse_taint(rest);
        return Some(CpuLine {
            cpu: None,
            task: Some(TaskRef { comm: c[..end].trim().to_string(), pid }),
            taint,
            release,
        });
    }
    let rest = s.strip_prefix("CPU: ")?;
    let mut l = CpuLine { cpu: num(rest), ..Default::default() };
    let pid: Option<u32> = after(rest, "PID: ").and_then(num);
    if let Some(c) = after(rest, "Comm: ") {
        let mut end =
            [" Tainted:", " Not tainted", " Kdump:"].iter().filter_map(|m| find_str(c, m)).min().unwrap_or(c.len());
        // A line wrapped inside `Not tainted`/`Tainted:` leaves its first word.
        for cut in [" Not", " Tainted", " Kdump"] {
            if c[..end].trim_end().ends_with(cut) {
                end = c[..end].trim_end().len() - cut.len();
            }
        }
        if let Some(pid) = pid {
            l.task = Some(TaskRef { comm: c[..end].trim().to_string(), pid });
        }
    }
    let (taint, release) = parse_taint(rest);
    l.taint = taint;
    l.release = release;
    Some(l)
}

/// powerpc's paca line: `irq_soft_mask: 0x01 in_mce: 0 in_nmi: 0 current: 217 (kworker/40:0H)`.
pub fn paca_current(s: &str) -> Option<TaskRef> {
    let rest = after(s, " current: ")?;
    let pid: u32 = num(rest)?;
    let comm = after(rest, "(")?.strip_suffix(')')?;
    Some(TaskRef { comm: comm.to_string(), pid })
}

/// The taint flags and release from `Tainted: G   W  OE   6.1.0-50-amd64 #1` or `Not tainted 6.1.0 #1`.
pub fn parse_taint(s: &str) -> (Option<String>, Option<String>) {
    let (taint, rest) = if let Some(r) = after(s, "Tainted: ") {
        let flags: Vec<&str> = r.split_whitespace().take_while(|w| w.bytes().all(|b| b.is_ascii_uppercase())).collect();
        (Some(flags.join(" ")), r)
    } else if let Some(r) = after(s, "Not tainted") {
        (None, r)
    } else {
        return (None, None);
    };
    let release =
        rest.split_whitespace().find(|w| w.as_bytes()[0].is_ascii_digit() && w.contains('.')).map(str::to_string);
    (taint.filter(|t| !t.is_empty()), release)
}

/// `task:ksmd_demo       state:D stack:0     pid:135   ppid:2      flags:0x00004000`
/// and the 2.6-era `uksmd D ffff88011b60a0c0 0 81 2 0x00000000`.
pub fn parse_task_line(s: &str) -> Option<(TaskRef, String)> {
    let t = s.trim_start();
    if let Some(rest) = t.strip_prefix("task:") {
        let si = find_str(rest, " state:")?;
        let comm = rest[..si].trim().to_string();
        let state = rest[si + 7..].split_whitespace().next()?.to_string();
        let pid = after(rest, " pid:").and_then(|p| num(p.trim_start()))?;
        return Some((TaskRef { comm, pid }, state));
    }
    if let Some(found) = sched_show_task_4x(t) {
        return Some(found);
    }
    // Old format: comm, one state letter, task address, then numbers (pid is the 3rd number
    // in 2.6.3x: `free stack pid ppid`, shown as `0 81 2 0 0x..`).
    let is_state = |w: &str| w.len() == 1 && "RSDTtXZIPKW".contains(w);
    // Most lines have no state word: find out before collecting the words.
    if !t.split_whitespace().any(is_state) {
        return None;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    let si = words.iter().position(|w| is_state(w))?;
    if si == 0 || words.len() < si + 5 {
        return None;
    }
    let addr = words[si + 1];
    if addr.len() < 8 || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let nums: Vec<u32> = words[si + 2..]
        .iter()
        .take_while(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|w| w.parse().ok())
        .collect();
    let pid = *nums.get(1)?;
    Some((TaskRef { comm: words[..si].join(" "), pid }, words[si].to_string()))
}

/// 4.x `sched_show_task`: `comm R  running task    22056 22277   3688 0x00000008`
/// (state, `running task`, free stack, pid, ppid, flags) or, for a sleeping task, the
/// state letter glued to the free stack: `comm  D12800  6102   3860 0x30020000`.
fn sched_show_task_4x(t: &str) -> Option<(TaskRef, String)> {
    let words: Vec<&str> = t.split_whitespace().collect();
    let is_state = |c: u8| b"RSDTtXZIPKW".contains(&c);
    let digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    let flags_at = |i: usize| words.get(i).is_some_and(|w| w.starts_with("0x"));
    for si in 1..words.len() {
        let w = words[si].as_bytes();
        // `R running task <stack> <pid> <ppid> 0x..` (3.x: `R running <stack> <pid> ...`)
        if w.len() == 1 && is_state(w[0]) && words.get(si + 1) == Some(&"running") {
            let n = si + 2 + usize::from(words.get(si + 2) == Some(&"task"));
            if digits(words.get(n)?) && digits(words.get(n + 1)?) && digits(words.get(n + 2)?) && flags_at(n + 3) {
                let pid = words[n + 1].parse().ok()?;
                return Some((TaskRef { comm: words[..si].join(" "), pid }, words[si].to_string()));
            }
            return None;
        }
        // `D12800 <pid> <ppid> 0x..`
        if w.len() > 1 && is_state(w[0]) && digits(&words[si][1..]) {
            if digits(words.get(si + 1)?) && digits(words.get(si + 2)?) && flags_at(si + 3) {
                let pid = words[si + 1].parse().ok()?;
                return Some((TaskRef { comm: words[..si].join(" "), pid }, words[si][..1].to_string()));
            }
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_show_task_4x_lines() {
        // syzbot files 145 and 482 (running), 367 (sleeping, state glued to the stack size)
        assert_eq!(
            parse_task_line("syz-executor5   R  running task    22056 22277   3688 0x00000008"),
            Some((TaskRef { comm: "syz-executor5".into(), pid: 22277 }, "R".into()))
        );
        assert_eq!(
            parse_task_line("syz-executor.1  R  running task    29600 12632   8638 0x00004006 "),
            Some((TaskRef { comm: "syz-executor.1".into(), pid: 12632 }, "R".into()))
        );
        assert_eq!(
            parse_task_line("syz-executor.0  D12800  6102   3860 0x30020000 115507005282"),
            Some((TaskRef { comm: "syz-executor.0".into(), pid: 6102 }, "D".into()))
        );
        assert_eq!(parse_task_line("Dear user, R running late"), None);
    }

    fn open(s: &str) -> Opening {
        match parse_headline(s) {
            Some(Headline::Open(o)) => o,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn a_stray_console_byte_before_the_facility() {
        // realworld/rcu-019 (s390x console that garbles line starts and tails)
        let o = open("?rcu: INFO: rcu_sched detected stalls on CPUs/tasks:s:");
        assert_eq!((o.kind, o.rcu_form), (Some(EventKind::RcuStall), Some("detected")));
        assert!(parse_headline("?: INFO: something").is_none());
    }

    #[test]
    fn soft_lockups() {
        // seed 003, corpus, 2.6 wording
        let o = open("watchdog: BUG: soft lockup - CPU#65 stuck for 22s! [kcompactd4:925]");
        assert_eq!((o.cpu, o.duration_s), (Some(65), Some(22.0)));
        assert_eq!(o.task, Some(TaskRef { comm: "kcompactd4".into(), pid: 925 }));
        let o = open("BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:1:61]");
        assert_eq!(o.task.unwrap().comm, "kworker/1:1");
        let o = open("BUG: soft lockup detected on CPU#3!");
        assert_eq!((o.kind, o.cpu), (Some(EventKind::SoftLockup), Some(3)));
        let o = open("NMI watchdog: BUG: soft lockup - CPU#0 stuck for 61s! [swapper/0:0]");
        assert_eq!(o.task.unwrap().pid, 0);
    }

    #[test]
    fn hard_lockups_and_panics() {
        assert_eq!(
            parse_headline("Watchdog detected hard LOCKUP on cpu 10"),
            Some(Headline::HardLockupLine { cpu: Some(10) })
        );
        assert_eq!(
            parse_headline("NMI watchdog: Watchdog detected hard LOCKUP on cpu 2"),
            Some(Headline::HardLockupLine { cpu: Some(2) })
        );
        assert_eq!(
            parse_headline("watchdog: CPU3: Watchdog detected hard LOCKUP on cpu 3"),
            Some(Headline::HardLockupLine { cpu: Some(3) })
        );
        let o = open("Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 10");
        assert_eq!((o.kind, o.cpu), (Some(EventKind::Panic), Some(10)));
        let o = open("Kernel panic - not syncing: softlockup: hung tasks");
        assert_eq!(o.message.as_deref(), Some("softlockup: hung tasks"));
        let o = open("WARNING: at kernel/watchdog.c:245 watchdog_overflow_callback+0x9c/0xd0()");
        assert_eq!(o.subkind, Some(Subkind::HardLockupWarning));
    }

    #[test]
    fn hung_tasks() {
        let o = open("INFO: task uksmd:81 blocked for more than 120 seconds.");
        assert_eq!((o.task.unwrap().pid, o.duration_s), (81, Some(120.0)));
        let o = open("INFO: task udevd:5612 blocked in I/O wait for more than 143 seconds.");
        assert_eq!((o.subkind, o.duration_s), (Some(Subkind::IoWait), Some(143.0)));
        let o = open("INFO: task syz-executor.0:1234 can't die for more than 143 seconds.");
        assert_eq!(o.subkind, Some(Subkind::CantDie));
        // syzkaller file 1001: the comm holds a newline, the headline goes on next line.
        assert!(is_split_task_headline("INFO: task \u{fffd}\u{fffd}\u{fffd}\u{fffd}"));
        assert_eq!(parse_headline("INFO: task \u{fffd}\u{fffd}\u{fffd}\u{fffd}"), None);
        assert!(!is_split_task_headline("INFO: task uksmd:81 blocked for more than 120 seconds."));
        let h = parse_headline("INFO: task a b:1 is blocked on a mutex likely owned by task kworker/0:1:2.");
        assert_eq!(
            h,
            Some(Headline::BlockedOn {
                task: TaskRef { comm: "a b".into(), pid: 1 },
                primitive: "mutex".into(),
                owner: Some(TaskRef { comm: "kworker/0:1".into(), pid: 2 })
            })
        );
    }

    #[test]
    fn rcu_forms() {
        let o = open("rcu: INFO: rcu_sched self-detected stall on CPU");
        assert_eq!((o.rcu_flavor.as_deref(), o.rcu_form), (Some("rcu_sched"), Some("self_detected")));
        let o = open("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:");
        assert_eq!(o.rcu_form, Some("detected"));
        let o = open(
            "INFO: rcu_sched detected stalls on CPUs/tasks: { 3 5} (detected by 1, t=60002 jiffies, g=1, c=0, q=2)",
        );
        assert_eq!(o.cpus, vec![3, 5]);
        let o = open(
            "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 3-...D P123 } 21003 jiffies s: 1 root: 0x8/.",
        );
        assert_eq!((o.rcu_form, o.cpus.clone(), o.pids.clone()), (Some("expedited"), vec![3], vec![123]));
        let o = open("INFO: rcu_tasks detected stalls on tasks:");
        assert_eq!(o.rcu_form, Some("tasks"));
        assert!(matches!(
            parse_headline(
                "rcu: \t65-....: (3920456 ticks this GP) idle=b2e/1/0x4000000000000002 softirq=1073098/1073098 fqs=1552284 "
            ),
            Some(Headline::RcuCpuDetail { cpu: 65, .. })
        ));
        assert!(matches!(
            parse_headline("rcu: \t3-...0: (2 ticks this GP) idle=9464/1/0x4000000000000000 softirq=148/148 fqs=549"),
            Some(Headline::RcuCpuDetail { cpu: 3, .. })
        ));
        assert_eq!(
            parse_headline("\t(detected by 1, t=2506 jiffies, g=-807, q=13 ncpus=4)"),
            Some(Headline::RcuDetectedBy { by: Some(1), jiffies: Some(2506), gp: Some(-807) })
        );
        assert_eq!(
            parse_headline(
                "rcu: rcu_preempt kthread starved for 10502 jiffies! g-811 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1"
            ),
            Some(Headline::RcuStarved { jiffies: Some(10502), cpu: Some(1) })
        );
    }

    #[test]
    fn csd_and_others() {
        let o = open(
            "csd: Detected non-responsive CSD lock (#1) on CPU#0, waiting 5000000001 ns for CPU#02 do_flush_tlb_all+0x0/0x40(0x0).",
        );
        assert_eq!((o.cpu, o.csd_target, o.csd_waiting_ns), (Some(0), Some(2), Some(5000000001)));
        assert_eq!(o.csd_function.as_deref(), Some("do_flush_tlb_all+0x0/0x40"));
        assert_eq!(parse_headline("csd: CSD lock (#1) unresponsive."), Some(Headline::CsdFollowUp));
        // realworld/ext-027
        assert_eq!(
            parse_headline(
                "csd: Continued non-responsive CSD lock (#1) on CPU#0, waiting 10000001888 ns for CPU#01 __lkdtm_CSDLOCKUP+0x0/0x8(0x0)."
            ),
            Some(Headline::CsdContinued { cpu: Some(0), target: Some(1), waiting_ns: Some(10000001888) })
        );
        // the wording of the first backports (kernel/smp.c of 5.x distribution kernels)
        let o = open(
            "csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5.000 secs for CPU#07 flush_tlb_func(0xffff9a), currently unresponsive.",
        );
        assert_eq!((o.cpu, o.csd_target, o.csd_waiting_ns), (Some(3), Some(7), Some(5_000_000_000)));
        assert_eq!(o.csd_function.as_deref(), Some("flush_tlb_func"));
        assert_eq!(
            parse_headline("csd: CSD lock (#1) got unstuck on CPU#00, CPU#01 released the lock."),
            Some(Headline::CsdUnstuck { cpu: Some(0), target: Some(1) })
        );
        assert_eq!(
            parse_headline("csd: Re-sending CSD lock (#7) IPI from CPU#07 to CPU#03"),
            Some(Headline::CsdFollowUp)
        );
        let o = open("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 40s!");
        assert_eq!((o.cpu, o.duration_s), (Some(0), Some(40.0)));
        let o = open("NMI backtrace for cpu 3");
        assert_eq!(o.cpu, Some(3));
        let o = open("BUG: scheduling while atomic: zone_drain/136/0x00000002");
        assert_eq!(o.task, Some(TaskRef { comm: "zone_drain".into(), pid: 136 }));
        assert_eq!(
            parse_headline("Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org)"),
            Some(Headline::Boot { release: "6.1.0-50-amd64".into() })
        );
        assert_eq!(
            parse_headline("1 lock held by khugepaged/60:"),
            Some(Headline::LocksHeld { task: TaskRef { comm: "khugepaged".into(), pid: 60 } })
        );
    }

    #[test]
    fn cpu_and_task_lines() {
        let l = parse_cpu_line("CPU: 65 PID: 925 Comm: kcompactd4 Kdump: loaded Tainted: G        W  OEL   --------- -  - 4.18.0-372.19.1.es8_10.aarch64 #1").unwrap();
        assert_eq!((l.cpu, l.task.unwrap().comm.as_str()), (Some(65), "kcompactd4"));
        assert_eq!(l.taint.as_deref(), Some("G W OEL"));
        assert_eq!(l.release.as_deref(), Some("4.18.0-372.19.1.es8_10.aarch64"));
        assert_eq!(
            paca_current("irq_soft_mask: 0x01 in_mce: 0 in_nmi: 0 current: 217 (kworker/40:0H)"),
            Some(TaskRef { comm: "kworker/40:0H".into(), pid: 217 })
        );
        let l = parse_cpu_line("Pid: 0, comm: swapper/0 Not tainted 3.8.9-200.fc18.x86_64 #1").unwrap();
        assert_eq!(
            (l.cpu, l.task.unwrap().comm.as_str(), l.release.as_deref()),
            (None, "swapper/0", Some("3.8.9-200.fc18.x86_64"))
        );
        let l = parse_cpu_line("CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0 #1").unwrap();
        assert_eq!((l.task.unwrap().pid, l.release.as_deref(), l.taint), (1, Some("6.12.0"), None));
        assert_eq!(
            parse_task_line("task:ksmd_demo       state:D stack:0     pid:135   ppid:2      flags:0x00004000"),
            Some((TaskRef { comm: "ksmd_demo".into(), pid: 135 }, "D".into()))
        );
        assert_eq!(
            parse_task_line("zeusmp_base.a D ffff88011a05b0c0 0 5957 5956 0 0x00000080"),
            Some((TaskRef { comm: "zeusmp_base.a".into(), pid: 5957 }, "D".into()))
        );
        assert_eq!(
            parse_task_line(
                "task:kcompactd4      state:R  running task     stack:    0 pid:  925 ppid:     2 flags:0x0000002a"
            )
            .unwrap()
            .0
            .pid,
            925
        );
    }
}
