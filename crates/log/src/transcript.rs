//! A pasted crash session's command output, read as machine state: what `runq -T`, `ps -m`,
//! `struct`/`p`, `kmem` and `dis` printed becomes the same [`MachineState`] facts a dump's
//! memory gives (each naming the transcript line and the command that printed it), so the
//! diagnosis rules written for dumps serve transcripts too. `bt` blocks are read as reports
//! by the event parser; here they only say which task each CPU runs.
//!
//! Lines come already stripped of their log prefix (and of e-mail quoting, `> `); engineers'
//! remarks glued to a line (`-----这个RIP`, `// (1)`) are cut off where a value ends.

use lockscope_facts::TaskRef;
use lockscope_facts::machine::{
    CodeLine, CodeListing, CpuState, LockState, MachineState, MemoryRead, ObjectState, TaskState,
};

/// Commands of crash (and a few of the shell) that are not a structure print.
const COMMANDS: &[&str] = &[
    "alias", "ascii", "bpf", "bt", "btop", "dev", "dis", "eval", "exit", "extend", "files", "foreach", "fuser", "gdb",
    "help", "ipcs", "irq", "kmem", "list", "log", "mach", "mod", "mount", "net", "ps", "pte", "ptob", "ptov", "q",
    "rd", "repeat", "runq", "search", "set", "sig", "swap", "sym", "sys", "task", "timer", "tree", "union", "vm",
    "vtop", "waitq", "whatis", "wr", "grep", "cat", "less", "wc",
];

/// Lock types whose word, printed, is a spinlock's value.
const SPINLOCK_TYPES: &[&str] =
    &["qspinlock", "arch_spinlock_t", "raw_spinlock_t", "raw_spinlock", "spinlock_t", "spinlock"];

/// A structure print in progress: `struct zone.name,lock… ADDR` and its member lines.
struct StructPrint {
    command: String,
    type_name: String,
    address: u64,
    path: Vec<String>,
    name: Option<String>,
    members: Vec<(String, u64)>,
    /// The line each member was printed on.
    member_lines: Vec<u64>,
}

/// A `bt` header: its first frame tells a running task from a sleeping one.
struct BtHeader {
    task: TaskRef,
    cpu: u32,
    /// The task the frames that follow belong to.
    current: TaskRef,
    line: u64,
}

/// A `ps -m` line.
struct PsLine {
    line: u64,
    task: TaskRef,
    cpu: u32,
    state: String,
    ns: u64,
}

/// Reads crash command output line by line.
#[derive(Default)]
pub struct Transcript {
    machine: MachineState,
    command: Option<(u64, String)>,
    print: Option<StructPrint>,
    kmem_header: bool,
    listing: Vec<CodeLine>,
    source_line: Option<String>,
    header: Option<BtHeader>,
    /// Tasks by `task_struct` address (every `PID: … TASK: …` line).
    tasks: std::collections::HashMap<u64, TaskRef>,
    /// The frames (stack pointer, function) of the task whose `bt` is being read, and of
    /// every task whose trace waits in a sleeping lock's slow path: a lock's wait list points
    /// into their stacks.
    frames: Vec<(u64, String)>,
    lock_waiters: Vec<(TaskRef, Vec<(u64, String)>)>,
    /// Rwsems and mutexes printed, read at the end (their waiters' traces may come later).
    sleeping_locks: Vec<ObjectState>,
    /// How many `>` quote the current line, and quoted the last `ps` header: a row with one
    /// more is a running task.
    quote_depth: usize,
    ps_header_depth: Option<usize>,
    /// The CPU whose `runq` block is being read, and the tasks queued on run queues.
    runq_cpu: Option<u32>,
    queued: Vec<(u64, TaskRef, u32)>,
    /// A `… | wc -l` pipeline waiting for its count on the next line.
    pipeline: Option<String>,
    /// Tasks a `bt` shows running on a CPU (their trace does not start in the scheduler).
    running: std::collections::BTreeMap<u32, TaskRef>,
    /// Where each CPU is in `machine.cpus`.
    cpu_index: std::collections::HashMap<u32, usize>,
    ps: Vec<PsLine>,
}

fn hex_prefix(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let end = s.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(s.len());
    u64::from_str_radix(&s[..end], 16).ok().filter(|_| end > 0)
}

/// A printed number: `0x1`, `74`, `0x6fffff00008000,` (remarks after it ignored).
fn number(s: &str) -> Option<u64> {
    let s = s.trim().trim_start_matches('"');
    if let Some(h) = s.strip_prefix("0x") {
        return hex_prefix(h);
    }
    // crash prints an `atomic_long_t` signed: `counter = -131285316270013`.
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let v: u64 = s[..end].parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The instruction text of a `dis` line without the engineer's remarks.
fn instruction_text(s: &str) -> &str {
    let mut end = s.find(|c: char| !c.is_ascii()).unwrap_or(s.len());
    for mark in ["//", "--"] {
        if let Some(i) = s[..end].find(mark) {
            end = end.min(i);
        }
    }
    s[..end].trim_end()
}

/// `0xffffffff8c134057 <smp_call_function_many+0x227>:  and $0x1,%ecx`.
fn dis_line(t: &str) -> Option<(u64, &str, &str)> {
    let rest = t.strip_prefix("0x")?;
    let (addr, rest) = rest.split_once(' ')?;
    let address = u64::from_str_radix(addr, 16).ok()?;
    let rest = rest.trim_start().strip_prefix('<')?;
    let (location, ins) = rest.split_once(">:")?;
    Some((address, location, instruction_text(ins.trim())))
}

/// `/usr/src/…/kernel/smp.c: 405`: the source line `dis -l` prints above instructions.
fn source_line(t: &str) -> Option<&str> {
    if !t.starts_with('/') {
        return None;
    }
    let (path, n) = t.rsplit_once(": ")?;
    (path.starts_with('/') && !path.contains(' ') && n.trim().parse::<u32>().is_ok()).then_some(t)
}

/// The command after a crash prompt: `crash> bt -a`, or as a script logs it,
/// `===== crash> runq -T =====`.
fn prompt(t: &str) -> Option<&str> {
    let t = t.trim_start_matches('=').trim_start();
    let cmd = t.strip_prefix("crash>")?.trim();
    Some(cmd.trim_end_matches('=').trim_end())
}

/// `ffffffffc054e0a0 (?) demo_zone [lockscen]` (`sym`): an address and the symbol there.
fn sym_line(t: &str) -> Option<(u64, String)> {
    let (addr, rest) = t.split_once(' ')?;
    if addr.len() != 16 {
        return None;
    }
    let address = u64::from_str_radix(addr, 16).ok()?;
    let rest = rest.trim_start();
    let (kind, name) = rest.strip_prefix('(')?.split_once(") ")?;
    let plain = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c));
    let mut words = name.split_whitespace();
    let symbol = words.next().filter(|w| plain(w))?;
    let module = words.next().filter(|w| w.starts_with('[') && w.ends_with(']'));
    (kind.len() == 1 && words.next().is_none())
        .then(|| (address, module.map_or(symbol.to_string(), |m| format!("{symbol} {m}"))))
}

/// The pattern of each `grep` of a pipeline: its first word that is neither an option nor
/// an option's argument.
fn grep_patterns(cmd: &str) -> Vec<String> {
    let with_arg = ["-A", "-B", "-C", "-m", "-e", "-f"];
    cmd.split('|')
        .filter_map(|seg| {
            let mut words = seg.split_whitespace();
            (words.next()? == "grep").then_some(())?;
            let mut skip = false;
            for w in words {
                if skip {
                    skip = false;
                } else if w.starts_with('-') {
                    skip = with_arg.contains(&w);
                } else {
                    return Some(w.trim_matches(['\'', '"']).to_string());
                }
            }
            None
        })
        .collect()
}

/// `ffffd31c8035bef8: ffffffffc054e0a0 ffffffffc054c0d0` (`bt -f`): the address of the
/// first word and the words.
fn stack_words(t: &str) -> Option<(u64, Vec<u64>)> {
    let (at, rest) = t.split_once(": ")?;
    if at.len() != 16 {
        return None;
    }
    let at = u64::from_str_radix(at, 16).ok()?;
    let words: Option<Vec<u64>> =
        rest.split_whitespace().take_while(|w| w.len() == 16).map(|w| u64::from_str_radix(w, 16).ok()).collect();
    words.filter(|w| !w.is_empty()).map(|w| (at, w))
}

/// Kernel addresses start here; other stack words cannot be a lock's address.
const KERNEL_SPACE: u64 = 0xffff_8000_0000_0000;

/// Stack words kept in all: a lock's holder is searched among them.
const MAX_STACK_WORDS: usize = 1 << 20;

/// `CPU 1 RUNQUEUE: ffff8f6f7b2a1680` (`runq`).
fn runq_header(t: &str) -> Option<u32> {
    let (cpu, rest) = t.strip_prefix("CPU ")?.split_once(' ')?;
    rest.starts_with("RUNQUEUE:").then(|| cpu.parse().ok()).flatten()
}

/// `PID: 61  TASK: ffff…  COMMAND: "kworker/1:1"` (a `runq` line: no CPU field).
fn task_fields_no_cpu(t: &str) -> Option<(TaskRef, u64)> {
    let pid = t.strip_prefix("PID:")?.split_whitespace().next()?.parse().ok()?;
    let comm = t.split_once("COMMAND: \"")?.1.rsplit_once('"')?.0.to_string();
    Some((TaskRef { comm, pid }, task_address(t)?))
}

/// `[120] PID: 14  TASK: ffff…  COMMAND: "watchdog/1"`: a task queued on a run queue.
fn queued_task(t: &str) -> Option<TaskRef> {
    let rest = t.strip_prefix('[')?.split_once(']')?.1.trim_start();
    task_fields_no_cpu(rest).map(|(task, _)| task)
}

/// A `ps` row: `>  61  2  1  ffff8f6f76863e80  RU  0.0  0  0  [kworker/1:1]`.
struct PsRow {
    current: bool,
    task: TaskRef,
    cpu: u32,
    address: u64,
    state: String,
}

fn ps_row(t: &str) -> Option<PsRow> {
    let (current, rest) = match t.strip_prefix('>') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let w: Vec<&str> = rest.split_whitespace().collect();
    let [pid, ppid, cpu, task, state, ..] = w.as_slice() else { return None };
    const STATES: &[&str] = &["RU", "IN", "UN", "ZO", "ST", "TR", "DE", "SW", "WA", "PA", "ID", "NE"];
    if task.len() != 16 || !STATES.contains(state) || ppid.parse::<u32>().is_err() {
        return None;
    }
    let comm = w.last()?.trim_start_matches('[').trim_end_matches(']').to_string();
    Some(PsRow {
        current,
        task: TaskRef { comm, pid: pid.parse().ok()? },
        cpu: cpu.parse().ok()?,
        address: u64::from_str_radix(task, 16).ok()?,
        state: state.to_string(),
    })
}

/// `CPU 3: 27.95 secs` (`runq -T`).
fn runq_lag(t: &str) -> Option<(u32, u64)> {
    let rest = t.strip_prefix("CPU ")?;
    let (cpu, rest) = rest.split_once(':')?;
    let secs = rest.trim().strip_suffix("secs")?.trim();
    let s: f64 = secs.parse().ok()?;
    Some((cpu.trim().parse().ok()?, (s * 1e9) as u64))
}

/// `PID: 61  TASK: ffff…  CPU: 1  COMMAND: "kworker/1:1"` (the tail of a `bt` or `ps` line).
fn task_fields(t: &str) -> Option<(TaskRef, u32)> {
    let pid = t.strip_prefix("PID:")?.split_whitespace().next()?.parse().ok()?;
    let cpu = t.split_once("CPU:")?.1.split_whitespace().next()?.parse().ok()?;
    let comm = t.split_once("COMMAND: \"")?.1.rsplit_once('"')?.0.to_string();
    Some((TaskRef { comm, pid }, cpu))
}

/// `[0 00:00:27.782] [RU]  PID: 61 …` (`ps -m`): the time, the state and the task.
fn ps_line(t: &str) -> Option<(u64, String, TaskRef, u32)> {
    let rest = t.strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    let (days, hms) = time.split_once(' ')?;
    let mut parts = hms.split(':');
    let (h, m, s): (u64, u64, f64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let ns = ((days.parse::<u64>().ok()? * 86400 + h * 3600 + m * 60) as f64 * 1e9 + s * 1e9) as u64;
    let rest = rest.trim_start().strip_prefix('[')?;
    let (state, rest) = rest.split_once(']')?;
    let (task, cpu) = task_fields(rest.trim_start())?;
    Some((ns, state.to_string(), task, cpu))
}

/// A structure print command: `struct zone.name,lock ADDR`, `qspinlock ADDR`,
/// `struct page -x ADDR`, `p ((struct page *)ADDR)`-like forms are left alone.
fn struct_command(cmd: &str) -> Option<(String, u64)> {
    // `p *(struct rw_semaphore *)0xffff…` (also `p/x`): a typed address.
    if let Some(rest) =
        cmd.strip_prefix("p ").or_else(|| cmd.strip_prefix("p/x ")).or_else(|| cmd.strip_prefix("print "))
    {
        let inner = rest.trim().strip_prefix("*(struct ")?;
        let (type_name, addr) = inner.split_once('*')?;
        let address = hex_prefix(addr.trim_start_matches(')').trim()).filter(|&a| a >= 0xffff_0000_0000_0000)?;
        let type_name = type_name.trim().to_string();
        return type_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_').then_some((type_name, address));
    }
    let words: Vec<&str> = cmd.split_whitespace().filter(|w| !w.starts_with('-')).collect();
    let (first, rest) = words.split_first()?;
    let (spec, addr) = match *first {
        "struct" | "union" => (*rest.first()?, *rest.get(1)?),
        w if !COMMANDS.contains(&w) && !w.starts_with('$') && !w.starts_with('/') => (w, *rest.first()?),
        _ => return None,
    };
    let address = hex_prefix(addr).filter(|&a| a >= 0xffff_0000_0000_0000)?;
    let type_name = spec.split(['.', ',']).next()?.to_string();
    type_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_').then_some((type_name, address))
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// One line of the session, its log prefix and quoting removed.
    pub fn line(&mut self, lineno: u64, text: &[u8]) {
        self.quoted_line(lineno, text, text);
    }

    /// One line, as read (`raw`, with its e-mail quoting) and without its prefix (`text`):
    /// crash marks the running tasks of a `ps` with a `>` that quoting strips too.
    pub fn quoted_line(&mut self, lineno: u64, raw: &[u8], text: &[u8]) {
        self.quote_depth = raw.iter().take_while(|&&b| b == b'>' || b == b' ').filter(|&&b| b == b'>').count();
        // Pages pasted from the web space with NBSP; most lines need no copy.
        let owned: std::borrow::Cow<str> = match std::str::from_utf8(text) {
            Ok(s) if !s.contains('\u{a0}') => s.into(),
            _ => String::from_utf8_lossy(text).replace('\u{a0}', " ").into(),
        };
        let t = owned.trim();
        if self.struct_member(lineno, t) {
            return;
        }
        if let Some((address, location, ins)) = dis_line(t) {
            let source = self.source_line.take();
            self.listing.push(CodeLine {
                address,
                location: location.to_string(),
                text: ins.to_string(),
                source,
                line: lineno,
            });
            return;
        }
        if let Some(src) = source_line(t) {
            self.source_line = Some(src.to_string());
            return;
        }
        self.end_listing();
        if let Some(cmd) = self.pipeline.take()
            && let Ok(count) = t.parse::<u64>()
        {
            let patterns = grep_patterns(&cmd);
            self.machine.counts.push(lockscope_facts::machine::CountShown {
                command: cmd,
                patterns,
                count,
                line: lineno,
            });
            return;
        }
        if let Some(i) = t.ends_with("wc -l").then(|| t.find("grep ")).flatten() {
            self.pipeline = Some(t[i..].to_string());
            return;
        }
        self.kmem_header = self.kmem_header && self.kmem_row(lineno, t);
        match prompt(t) {
            Some(cmd) => self.command(lineno, cmd),
            None => self.output(lineno, t),
        }
    }

    /// A line of a command's output (or prose, which matches none of them).
    fn output(&mut self, lineno: u64, t: &str) {
        if let Some((address, name)) = sym_line(t) {
            let origin = MemoryRead::shown(lineno, format!("sym {address:x}"), Some(address), format!("symbol {name}"));
            let o = ObjectState {
                address,
                type_name: "symbol".into(),
                name: Some(name),
                members: Vec::new(),
                flags: Vec::new(),
                origin,
            };
            self.add_object(o);
        } else if let Some((cpu, lag)) = runq_lag(t) {
            let c = self.cpu(cpu);
            c.clock_lag_ns = Some(lag);
            c.clock_read = Some(MemoryRead::shown(lineno, "runq -T", None, format!("CPU {cpu}'s run-queue clock lag")));
        } else if let Some((ns, state, task, cpu)) = ps_line(t) {
            if let Some(addr) = task_address(t.split_once("PID:").map_or("", |x| x.1)) {
                self.tasks.insert(addr, task.clone());
            }
            self.ps.push(PsLine { line: lineno, task, cpu, state, ns });
        } else if let Some(cpu) = runq_header(t) {
            self.runq_cpu = Some(cpu);
        } else if let Some(rest) = t.strip_prefix("CURRENT: ") {
            if let (Some((task, _)), Some(cpu)) = (task_fields_no_cpu(rest), self.runq_cpu) {
                self.running.insert(cpu, task);
            }
        } else if let Some((task, cpu)) = self.runq_cpu.and_then(|c| queued_task(t).map(|x| (x, c))) {
            self.queued.push((lineno, task, cpu));
        } else if t.starts_with("PID") && t.contains("PPID") && t.contains("TASK") {
            self.ps_header_depth = Some(self.quote_depth);
        } else if let Some(mut p) = ps_row(t) {
            p.current |= self.ps_header_depth.is_some_and(|d| self.quote_depth == d + 1);
            self.ps_row(lineno, p);
        } else if let Some(words) = stack_words(t) {
            self.words(&words);
        } else if t.starts_with("PID:") {
            self.end_trace();
            self.header =
                task_fields(t).map(|(task, cpu)| BtHeader { task: task.clone(), cpu, current: task, line: lineno });
            if let (Some(addr), Some(h)) = (task_address(t), self.header.as_ref()) {
                self.tasks.insert(addr, h.task.clone());
            }
        } else if t.starts_with('#') && t.contains("] ") {
            self.frame(t);
        } else if t.contains("PAGE") && t.contains("PHYSICAL") && t.contains("FLAGS") {
            self.kmem_header = true;
        }
    }

    fn cpu(&mut self, cpu: u32) -> &mut CpuState {
        let i = match self.cpu_index.get(&cpu) {
            Some(&i) => i,
            None => {
                self.cpu_index.insert(cpu, self.machine.cpus.len());
                self.machine.cpus.push(CpuState {
                    cpu,
                    online: None,
                    task: None,
                    stack: Vec::new(),
                    irqs_enabled: None,
                    preempt_count: None,
                    clock_lag_ns: None,
                    running_for_ns: None,
                    watchdog: None,
                    clock_read: None,
                    origin: Vec::new(),
                });
                self.machine.cpus.len() - 1
            }
        };
        &mut self.machine.cpus[i]
    }

    fn command(&mut self, lineno: u64, cmd: &str) {
        // A remark glued to the command (`kmem 0xffff…------确认`) is not part of it.
        let cmd = cmd.split("--").next().unwrap_or(cmd).trim();
        self.end_trace();
        self.header = None;
        self.runq_cpu = None;
        self.command = Some((lineno, cmd.to_string()));
        self.print = struct_command(cmd).map(|(type_name, address)| StructPrint {
            command: cmd.to_string(),
            type_name,
            address,
            path: Vec::new(),
            name: None,
            members: Vec::new(),
            member_lines: Vec::new(),
        });
    }

    /// A member line of an open structure print (`counter = 0x1`, `val = {`, `}`, `struct
    /// qspinlock {`); anything else closes the print.
    fn struct_member(&mut self, lineno: u64, t: &str) -> bool {
        let Some(p) = self.print.as_mut() else { return false };
        // The print's opening: `struct qspinlock {`, or `p`'s `$1 = {`.
        if (t.starts_with("struct ") || t.starts_with('$')) && t.ends_with('{') {
            return true;
        }
        if t.starts_with('}') {
            p.path.pop();
            return true;
        }
        // An anonymous union or struct: `{` alone (crash) or `(anonymous) = {`.
        if t == "{" || t.starts_with("(anonymous) = {") {
            p.path.push(String::new());
            return true;
        }
        let Some((member, value)) = t.split_once(" = ") else {
            self.end_print();
            return false;
        };
        if !member.chars().all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c)) {
            self.end_print();
            return false;
        }
        let path: Vec<&str> = p.path.iter().map(String::as_str).chain([member]).filter(|x| !x.is_empty()).collect();
        let path = path.join(".");
        let value = value.trim();
        if value.starts_with('{') {
            p.path.push(member.to_string());
        } else if let Some(v) = number(value) {
            if member == "name"
                && let Some(q) = value.split('"').nth(1)
            {
                p.name = Some(q.to_string());
            }
            p.members.push((path, v));
            p.member_lines.push(lineno);
        }
        true
    }

    fn end_print(&mut self) {
        let Some(p) = self.print.take() else { return };
        if p.members.is_empty() {
            return;
        }
        let what = format!("struct {} at {:#x}", p.type_name, p.address);
        let origin = MemoryRead::shown(p.member_lines[0], p.command.clone(), Some(p.address), what);
        if SPINLOCK_TYPES.contains(&p.type_name.as_str())
            && let Some(i) = p.members.iter().position(|(m, _)| m.ends_with("counter") || m.ends_with("val"))
        {
            let v = p.members[i].1;
            let what = format!("{} {:#x}: {} = {v:#x}", p.type_name, p.address, p.members[i].0);
            let read = MemoryRead::shown(p.member_lines[i], p.command.clone(), Some(p.address), what);
            self.machine.locks.push(spinlock_state(p.address, v, read));
        }
        if SLEEPING_LOCK_TYPES.contains(&p.type_name.as_str()) {
            self.sleeping_locks.push(ObjectState {
                address: p.address,
                type_name: p.type_name.clone(),
                name: None,
                members: p.members.clone(),
                flags: Vec::new(),
                origin: origin.clone(),
            });
        }
        self.add_object(ObjectState {
            address: p.address,
            type_name: p.type_name,
            name: p.name,
            members: p.members,
            flags: Vec::new(),
            origin,
        });
    }

    /// Objects printed twice (`struct page` then `kmem`) become one.
    fn add_object(&mut self, o: ObjectState) {
        match self.machine.objects.iter_mut().find(|x| x.address == o.address && x.type_name == o.type_name) {
            Some(x) => {
                for m in o.members {
                    if !x.members.iter().any(|(p, _)| *p == m.0) {
                        x.members.push(m);
                    }
                }
                x.name = x.name.take().or(o.name);
                if x.flags.is_empty() {
                    x.flags = o.flags;
                }
            }
            None => self.machine.objects.push(o),
        }
    }

    /// A `kmem` page row: `PAGE PHYSICAL [MAPPING] INDEX CNT FLAGS names`.
    fn kmem_row(&mut self, lineno: u64, t: &str) -> bool {
        let words: Vec<&str> = t.split_whitespace().collect();
        let Some(page) = words.first().and_then(|w| hex_prefix(w)).filter(|_| words.len() >= 5) else { return false };
        let names_last = words.last().is_some_and(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit()) || w.contains(',')
        });
        let (flags_word, names) = if names_last {
            (words[words.len() - 2], Some(words[words.len() - 1]))
        } else {
            (words[words.len() - 1], None)
        };
        let Some(flags) = hex_prefix(flags_word) else { return false };
        let names: Vec<String> = names
            .map(|n| {
                let end = n.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ',')).unwrap_or(n.len());
                n[..end].split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()
            })
            .unwrap_or_default();
        let command = self.command.as_ref().map_or("kmem".to_string(), |(_, c)| c.clone());
        let origin = MemoryRead::shown(lineno, command, Some(page), format!("page {page:#x}: flags {flags:#x}"));
        self.add_object(ObjectState {
            address: page,
            type_name: "page".into(),
            name: None,
            members: vec![("flags".into(), flags)],
            flags: names,
            origin,
        });
        true
    }

    /// A frame line `#N [sp] func at addr`: the first of a trace tells whether the task runs.
    fn frame(&mut self, t: &str) {
        let sp = t.split_once('[').and_then(|(_, r)| r.split_once(']')).and_then(|(x, _)| hex_prefix(x));
        let func = t.split("] ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
        let func = func.split('+').next().unwrap_or(func);
        let Some(h) = self.header.as_mut() else { return };
        if self.frames.is_empty() && !(func == "__schedule" || func == "schedule" || func.starts_with("__switch_to")) {
            self.running.insert(h.cpu, h.task.clone());
        }
        // Names are kept where they are needed (a blocked task's stack, a lock slow path):
        // a `foreach bt` of thousands of tasks then allocates little.
        let with_words = self.command.as_ref().is_some_and(|(_, c)| c.split_whitespace().any(|w| w == "-f"));
        let named = with_words || self.un_command() || SLEEPING_LOCK_SLOWPATHS.iter().any(|p| func.starts_with(p));
        if let Some(sp) = sp {
            self.frames.push((sp, if named { func.to_string() } else { String::new() }));
        }
    }

    /// Words of a `bt -f` frame: kept, for the current task, where they are kernel addresses.
    fn words(&mut self, (at, words): &(u64, Vec<u64>)) {
        let Some(h) = self.header.as_ref() else { return };
        let kept: usize = self.machine.stack_words.iter().map(|w| w.words.len()).sum();
        if kept >= MAX_STACK_WORDS {
            return;
        }
        let frame = self.frames.len().saturating_sub(1) as u16;
        let fresh = self.machine.stack_words.last().is_none_or(|w| w.line != h.line);
        if fresh {
            self.machine.stack_words.push(lockscope_facts::machine::StackWords {
                task: h.current.clone(),
                cpu: Some(h.cpu),
                frames: Vec::new(),
                words: Vec::new(),
                line: h.line,
            });
        }
        let w = self.machine.stack_words.last_mut().expect("pushed above");
        while w.frames.len() < self.frames.len() {
            w.frames.push(self.frames[w.frames.len()].1.clone());
        }
        for (i, &v) in words.iter().enumerate() {
            if v >= KERNEL_SPACE {
                w.words.push((at + 8 * i as u64, v, frame));
            }
        }
    }

    /// A `ps` row: the task's address; the running task of its CPU (`>`); a task in D state.
    fn ps_row(&mut self, lineno: u64, p: PsRow) {
        self.tasks.insert(p.address, p.task.clone());
        if p.current && p.task.pid != 0 {
            self.running.insert(p.cpu, p.task.clone());
        }
        if p.state == "UN" && !self.machine.blocked_tasks.iter().any(|t| t.task.pid == p.task.pid) {
            let cmd = self.command.as_ref().map_or("ps".to_string(), |(_, c)| c.clone());
            let origin = MemoryRead::shown(lineno, cmd, Some(p.address), format!("{} in D state", p.task));
            self.machine.blocked_tasks.push(TaskState {
                task: p.task,
                state: "D".into(),
                blocked_ns: None,
                stack: Vec::new(),
                origin,
            });
        }
    }

    /// The current command is `foreach UN bt`: every trace is a task blocked in D state.
    fn un_command(&self) -> bool {
        self.command.as_ref().is_some_and(|(_, c)| {
            let w: Vec<&str> = c.split_whitespace().collect();
            w.first() == Some(&"foreach") && w.contains(&"UN") && w.contains(&"bt")
        })
    }

    /// The end of a `bt`: its frames are kept when it waits in a sleeping lock's slow path.
    fn end_trace(&mut self) {
        let frames = std::mem::take(&mut self.frames);
        let un = self.un_command();
        if let Some(h) = self.header.as_ref().filter(|_| un && !frames.is_empty())
            && !self.machine.blocked_tasks.iter().any(|t| t.task.pid == h.current.pid)
        {
            let cmd = self.command.as_ref().map_or(String::new(), |(_, c)| c.clone());
            let origin = MemoryRead::shown(h.line, cmd, None, format!("{} in D state", h.current));
            let stack = frames.iter().map(|(_, f)| lockscope_facts::Frame::named(f)).collect();
            self.machine.blocked_tasks.push(TaskState {
                task: h.current.clone(),
                state: "D".into(),
                blocked_ns: None,
                stack,
                origin,
            });
        }
        if let Some(h) = self.header.as_ref()
            && frames.iter().any(|(_, f)| SLEEPING_LOCK_SLOWPATHS.iter().any(|p| f.starts_with(p)))
        {
            self.lock_waiters.push((h.current.clone(), frames));
        }
    }

    fn end_listing(&mut self) {
        self.source_line = None;
        if !self.listing.is_empty() {
            let lines = std::mem::take(&mut self.listing);
            self.machine.code.push(CodeListing { lines });
        }
    }

    /// The machine state the session showed; None when it showed none.
    pub fn finish(mut self) -> Option<MachineState> {
        self.end_print();
        self.end_listing();
        self.end_trace();
        self.finish_locks();
        self.finish_tasks();
        let m = &mut self.machine;
        m.cpus.sort_by_key(|c| c.cpu);
        m.runnable_tasks.sort_by_key(|t| std::cmp::Reverse(t.blocked_ns));
        m.blocked_tasks.sort_by_key(|t| std::cmp::Reverse(t.blocked_ns));
        let shown = m.cpus.iter().any(|c| c.clock_lag_ns.is_some() || c.running_for_ns.is_some() || c.task.is_some())
            || !m.locks.is_empty()
            || !m.objects.is_empty()
            || !m.code.is_empty()
            || !m.counts.is_empty()
            || !m.stack_words.is_empty()
            || !m.runnable_tasks.is_empty()
            || !m.blocked_tasks.is_empty();
        shown.then_some(self.machine)
    }

    /// The sleeping locks printed, now that every trace is read; locks named by `sym`.
    fn finish_locks(&mut self) {
        for o in std::mem::take(&mut self.sleeping_locks) {
            if let Some(l) = self.sleeping_lock(&o) {
                self.machine.locks.push(l);
            }
        }
        let symbols: Vec<(u64, String)> = self
            .machine
            .objects
            .iter()
            .filter(|o| o.type_name == "symbol")
            .filter_map(|o| Some((o.address, o.name.clone()?)))
            .collect();
        for l in self.machine.locks.iter_mut().filter(|l| l.symbol.is_none()) {
            l.symbol = symbols.iter().find(|(a, _)| *a == l.address).map(|(_, n)| n.clone());
        }
    }

    /// `ps -m` lines and run queues, now that the running task of each CPU is known.
    fn finish_tasks(&mut self) {
        for p in std::mem::take(&mut self.ps) {
            self.ps_m(p);
        }
        for (line, task, cpu) in std::mem::take(&mut self.queued) {
            let known = self.machine.runnable_tasks.iter().any(|t| t.task.pid == task.pid);
            if !known && task.pid != 0 {
                let origin = MemoryRead::shown(line, "runq", None, format!("{task} queued on CPU {cpu}'s run queue"));
                let t = TaskState { task, state: "RU".into(), blocked_ns: None, stack: Vec::new(), origin };
                self.machine.runnable_tasks.push(t);
            }
        }
        for (cpu, task) in std::mem::take(&mut self.running) {
            self.cpu(cpu).task.get_or_insert(task);
        }
    }

    /// One `ps -m` line: how long the running task of a CPU has run, or how long a task has
    /// waited to run or slept in D state.
    fn ps_m(&mut self, p: PsLine) {
        let origin = MemoryRead::shown(p.line, "ps -m", None, format!("{}: {} since it last ran", p.task, p.state));
        if self.running.get(&p.cpu).is_some_and(|t| t.pid == p.task.pid) {
            let c = self.cpu(p.cpu);
            c.task = Some(p.task);
            // `ps -m` counts by the task's own CPU clock, which stops with the CPU: add how
            // far that clock lags to get the time by the most advanced one.
            c.running_for_ns = Some(p.ns + c.clock_lag_ns.unwrap_or(0));
            c.origin.push(origin);
            return;
        }
        // An idle task not running is not waiting for a CPU.
        if p.task.pid == 0 {
            return;
        }
        let task =
            TaskState { task: p.task, state: p.state.clone(), blocked_ns: Some(p.ns), stack: Vec::new(), origin };
        match p.state.as_str() {
            "RU" => self.machine.runnable_tasks.push(task),
            "UN" => match self.machine.blocked_tasks.iter_mut().find(|t| t.task.pid == task.task.pid) {
                Some(t) => t.blocked_ns = task.blocked_ns,
                None => self.machine.blocked_tasks.push(TaskState { state: "D".into(), ..task }),
            },
            _ => {}
        }
    }
}

/// Sleeping locks whose owner and wait list a structure print shows.
const SLEEPING_LOCK_TYPES: &[&str] = &["rw_semaphore", "mutex"];

/// Slow paths a task sleeps in waiting for one of them: its `rwsem_waiter`/`mutex_waiter`
/// is in their frame.
const SLEEPING_LOCK_SLOWPATHS: &[&str] =
    &["rwsem_down_read_slowpath", "rwsem_down_write_slowpath", "__rwsem_down_", "__mutex_lock", "mutex_lock"];

/// `TASK: ffff8d8f82c01840` in a `bt` or `ps` line.
fn task_address(t: &str) -> Option<u64> {
    hex_prefix(t.split_once("TASK:")?.1.trim_start())
}

impl Transcript {
    /// An rwsem or mutex as its structure print shows it: the owner the lock records (the
    /// task at `owner & ~7`, named by a `PID: … TASK:` line), and the tasks its wait list
    /// points at (the first and last waiters: `wait_list.next`/`prev` lie in the frame of
    /// their slow path).
    fn sleeping_lock(&self, o: &ObjectState) -> Option<LockState> {
        let rwsem = o.type_name == "rw_semaphore";
        let owner_word = o.member("owner.counter").or_else(|| o.member("owner"))?;
        let count = if rwsem { o.member("count.counter").or_else(|| o.member("count")) } else { Some(owner_word) };
        let owner = self.tasks.get(&(owner_word & !7)).map(|t| lockscope_facts::machine::LockOwner {
            task: t.clone(),
            how: match (rwsem, owner_word & 1) {
                (false, _) => "owner".into(),
                (true, 1) => "last reader".into(),
                (true, _) => "writer".into(),
            },
            origin: o.origin.clone(),
        });
        let mut task_waiters: Vec<(TaskRef, String)> = Vec::new();
        for end in ["wait_list.next", "wait_list.prev"] {
            let Some(at) = o.member(end).filter(|&a| a != o.address) else { continue };
            let found = self.lock_waiters.iter().find_map(|(t, frames)| {
                let i = frames.windows(2).position(|w| w[0].0 <= at && at < w[1].0)?;
                Some((t.clone(), frames[i].1.clone())).filter(|(_, f)| !f.is_empty())
            });
            if let Some((t, f)) = found
                && !task_waiters.iter().any(|(x, _)| x.pid == t.pid)
            {
                let mode = if f.contains("read") {
                    "read"
                } else if f.contains("write") {
                    "write"
                } else {
                    "lock"
                };
                task_waiters.push((t, mode.to_string()));
            }
        }
        Some(LockState {
            address: o.address,
            kind: if rwsem { "rwsem".into() } else { "mutex".into() },
            bit: None,
            value: count,
            locked: count.map(|c| c != 0),
            queued_cpu: None,
            pending: None,
            queue: Vec::new(),
            symbol: None,
            waiters: Vec::new(),
            task_waiters,
            owner,
            found_by: None,
            candidate_holders: Vec::new(),
            origin: vec![o.origin.clone()],
        })
    }
}

/// A queued spinlock's word: locked byte, pending bit, tail (CPU + 1 in bits 18 and up).
fn spinlock_state(address: u64, v: u64, origin: MemoryRead) -> LockState {
    let tail = (v >> 18) & 0x3fff;
    LockState {
        address,
        kind: "spinlock".into(),
        bit: None,
        value: Some(v),
        locked: Some(v & 0xff != 0),
        queued_cpu: tail.checked_sub(1).map(|c| c as u32),
        pending: Some(v & 0x100 != 0),
        queue: Vec::new(),
        symbol: None,
        waiters: Vec::new(),
        task_waiters: Vec::new(),
        owner: None,
        found_by: None,
        candidate_holders: Vec::new(),
        origin: vec![origin],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> MachineState {
        let mut t = Transcript::new();
        for (i, l) in text.lines().enumerate() {
            t.quoted_line(i as u64 + 1, l.as_bytes(), l.trim_start_matches("> ").as_bytes());
        }
        t.finish().expect("machine state")
    }

    #[test]
    fn seed_000_runq_ps_and_structures() {
        // tests/data/seed-000/crash-session.txt
        let m = read(
            "crash> runq -T
  CPU 0: 0.00 secs
  CPU 3: 27.95 secs
crash> foreach RU kernel ps -m
[0 00:00:27.782] [RU]  PID: 61     TASK: ffff8f6f76863e80  CPU: 1   COMMAND: \"kworker/1:1\"
[0 00:00:27.998] [RU]  PID: 14     TASK: ffff8f6f7a083e80  CPU: 1   COMMAND: \"watchdog/1\"
crash> bt
PID: 61     TASK: ffff8f6f76863e80  CPU: 1   COMMAND: \"kworker/1:1\"
 #0 [ffff8f6f7b243d68] machine_kexec at ffffffff8c0582ae
> crash> qspinlock ffff8f6f7ffd2bc0
> struct qspinlock {
>   val = {
>     counter = 0x1
>   }
> }
>
crash> zone.name,lock.rlock.raw_lock.val.counter ffff8f6f7ffd2680
  name = 0xffffffff8d0a3961 \"DMA32\"
  lock.rlock.raw_lock.val.counter = 0x1
~~~",
        );
        let lag = |c: u32| m.cpus.iter().find(|x| x.cpu == c).and_then(|x| x.clock_lag_ns);
        assert_eq!((lag(0), lag(3)), (Some(0), Some(27_950_000_000)));
        let c1 = m.cpus.iter().find(|x| x.cpu == 1).unwrap();
        assert_eq!((c1.task.as_ref().unwrap().pid, c1.running_for_ns), (61, Some(27_782_000_000)));
        assert_eq!(m.runnable_tasks[0].task.comm, "watchdog/1");
        let l = &m.locks[0];
        assert_eq!((l.address, l.value, l.locked), (0xffff8f6f7ffd2bc0, Some(1), Some(true)));
        assert_eq!(l.origin[0].line, Some(13));
        let z = m.objects.iter().find(|o| o.type_name == "zone").unwrap();
        assert_eq!((z.address, z.name.as_deref()), (0xffff8f6f7ffd2680, Some("DMA32")));
        assert_eq!(z.member("lock.rlock.raw_lock.val.counter"), Some(1));
    }

    #[test]
    fn seed_002_pages_and_a_cut_listing_with_remarks() {
        // tests/data/seed-002/crash-session.txt
        let m = read(
            "  crash> kmem 0xffffea0123300000------------------确认当时head的标志如下:
      PAGE         PHYSICAL      MAPPING       INDEX CNT FLAGS
ffffea0123300000 48cc000000 ffff882f74a96701     a600 74 6016c60138402c referenced,uptodate,lru,head,swapbacked,unevictable,mlocked,compound_lock
  crash> kmem ffffea0123302a40
      PAGE         PHYSICAL      MAPPING       INDEX CNT FLAGS
ffffea0123302a40 48cc0a9000                0        0  0 6fffff00008000 tail-----------------有tail标志
  /usr/src/debug/kernel-3.10.0-327.22.2.el7/linux-3.10.0-327.22.2.el7.x86_64/arch/x86/include/asm/processor.h: 689
0xffffffff81178b5a <put_compound_page+330>:     pause  
0xffffffff81178b5c <put_compound_page+332>:     mov    (%r12),%rax
/usr/src/debug/kernel-3.10.0-327.22.2.el7/linux-3.10.0-327.22.2.el7.x86_64/include/linux/bit_spinlock.h: 30
0xffffffff81178b60 <put_compound_page+336>:     test   $0x1000000,%eax
  说明调用了bit_spin_lock。
0xffffffff81178af8 <put_compound_page+232>:     lock btsl $0x18,(%r12)  -----查看",
        );
        let head = m.objects.iter().find(|o| o.address == 0xffffea0123300000).unwrap();
        assert_eq!(head.member("flags"), Some(0x6016c60138402c));
        assert!(head.flags.contains(&"compound_lock".to_string()));
        let tail = m.objects.iter().find(|o| o.address == 0xffffea0123302a40).unwrap();
        assert_eq!(tail.flags, vec!["tail".to_string()]);
        assert_eq!(m.code.len(), 2);
        let run = &m.code[0].lines;
        assert_eq!(run.len(), 3);
        assert_eq!(run[2].text, "test   $0x1000000,%eax");
        assert!(run[2].source.as_deref().unwrap().ends_with("bit_spinlock.h: 30"));
        assert_eq!(m.code[1].lines[0].text, "lock btsl $0x18,(%r12)");
    }

    #[test]
    fn scripted_prompts_symbols_counts_and_idle_tasks() {
        // ../shared/corpus/ipi_sleeping_holder.live/crash.txt (a script's `===== crash> … =====`
        // prompts) and seed 002's shell count.
        let m = read(
            "===== crash> runq -T =====
  CPU 3: 33.81 secs
===== crash> ps -m | head -50 =====
[0 00:00:00.000] [RU]  PID: 136      TASK: ffff8bbb82b90000  CPU: 3    COMMAND: \"page_alloc\"
[0 00:00:40.113] [RU]  PID: 0        TASK: ffff8bbb81276100  CPU: 1    COMMAND: \"swapper/1\"
===== crash> sym demo_zone =====
ffffffffc054e0a0 (?) demo_zone [lockscen]
PID: 136      TASK: ffff8bbb82b90000  CPU: 3    COMMAND: \"page_alloc\"
 #0 [ffffd31c80363ef0] _raw_spin_lock_irqsave at ffffffff8904f0b9
[iyunv@host-10-229-143-10 127.0.0.1-2017-10-18-20:38:02]# grep put_compound_page -B 10 -A 5 caq_bt_all.txt |grep fas_readwriter |wc -l
34",
        );
        let c3 = m.cpus.iter().find(|c| c.cpu == 3).unwrap();
        // ps -m counts by CPU 3's stopped clock: the lag is added.
        assert_eq!((c3.task.as_ref().unwrap().pid, c3.running_for_ns), (136, Some(33_810_000_000)));
        assert!(m.runnable_tasks.is_empty(), "idle tasks do not wait: {:?}", m.runnable_tasks);
        let sym = m.objects.iter().find(|o| o.type_name == "symbol").unwrap();
        assert_eq!((sym.address, sym.name.as_deref()), (0xffffffffc054e0a0, Some("demo_zone [lockscen]")));
        assert_eq!(m.counts.len(), 1);
        assert_eq!(
            (m.counts[0].count, m.counts[0].patterns.clone()),
            (34, vec!["put_compound_page".to_string(), "fas_readwriter".to_string()])
        );
    }

    #[test]
    fn prose_and_other_output_give_no_state() {
        let mut t = Transcript::new();
        for (i, l) in ["crash> bt", "bt: invalid task or pid value: 99", "CPU 3 je zacyklené", "0x10 is not a dis line"]
            .iter()
            .enumerate()
        {
            t.line(i as u64 + 1, l.as_bytes());
        }
        assert_eq!(t.finish(), None);
    }

    #[test]
    fn bt_f_words_belong_to_their_task_and_frame() {
        // `lockscope bt -f` of zone_drain on tests/data/dumps/ipi_sleeping_holder.live (crash's layout).
        let m = read(
            "crash> bt -f 135
PID: 135      TASK: ffff8bbb82b948c0  CPU: 2    COMMAND: \"zone_drain\"
 #2 [ffffd31c8035bea0] schedule_timeout at ffffffff8904dc84
    ffffd31c8035bea8: 0000000000000000 ffff8bbb8b9214d0
 #3 [ffffd31c8035bef0] msleep at ffffffff88754409
    ffffd31c8035bef8: ffffffffc054e0a0 ffffffffc054c0d0
 #4 [ffffd31c8035bf00] drain_zone_pages_sleep_demo at ffffffffc054c0d0 [lockscen]",
        );
        let w = &m.stack_words[0];
        assert_eq!((w.task.pid, w.cpu, w.line), (135, Some(2), 2));
        // Only kernel addresses are kept: 0 is not.
        assert_eq!(w.words[0], (0xffffd31c8035beb0, 0xffff8bbb8b9214d0, 0));
        let &(at, _, f) = w.words.iter().find(|x| x.1 == 0xffffffffc054e0a0).unwrap();
        assert_eq!((at, w.frames[usize::from(f)].as_str()), (0xffffd31c8035bef8, "msleep"));
        // Words with no `bt` header before them belong to no task.
        let mut t = Transcript::new();
        t.line(1, b"    ffff882f10c47db8: ffff885f706ae400 01ffc9004039e688");
        assert_eq!(t.finish(), None);
    }

    #[test]
    fn runq_and_ps_rows() {
        // crash's `runq` and `ps` layouts (the PIDs and addresses of seed 000's machine).
        let m = read(
            "crash> runq
CPU 1 RUNQUEUE: ffff8f6f7b2a1680
  CURRENT: PID: 61     TASK: ffff8f6f76863e80  COMMAND: \"kworker/1:1\"
  RT PRIO_ARRAY: ffff8f6f7b2a18c0
     [  0] PID: 14     TASK: ffff8f6f7a083e80  COMMAND: \"watchdog/1\"
  CFS RB_ROOT: ffff8f6f7b2a1730
     [no tasks queued]
crash> ps
   PID    PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM
>  2818      1   3  ffff8f6f76f0be80  RU   1.2  400000  50000  yum
    135      2   1  ffff8d8f82c01840  UN   0.0       0      0  [ksmd_demo]",
        );
        // The `>` of a running task survives e-mail quoting: one level more than the header.
        let mut t = Transcript::new();
        for (i, raw) in [
            "> crash> ps",
            ">    PID    PPID  CPU       TASK        ST  COMM",
            "> >  2818      1   3  ffff8f6f76f0be80  RU  yum",
            ">     136      2   2  ffff8f6f76f0be81  RU  other",
        ]
        .iter()
        .enumerate()
        {
            let text = raw.trim_start_matches(['>', ' ']);
            t.quoted_line(i as u64 + 1, raw.as_bytes(), text.as_bytes());
        }
        let q = t.finish().unwrap();
        assert_eq!(
            q.cpus.iter().map(|c| (c.cpu, c.task.as_ref().map(|t| t.pid))).collect::<Vec<_>>(),
            vec![(3, Some(2818))]
        );
        let task = |c: u32| m.cpus.iter().find(|x| x.cpu == c).and_then(|x| x.task.clone()).map(|t| t.pid);
        assert_eq!((task(1), task(3)), (Some(61), Some(2818)));
        assert_eq!(m.runnable_tasks[0].task.comm, "watchdog/1");
        assert_eq!((m.blocked_tasks[0].task.pid, m.blocked_tasks[0].state.as_str()), (135, "D"));
    }

    #[test]
    fn a_p_of_a_cast_address_is_a_structure_print() {
        // crash 8 on ../shared/corpus/hung_rwsem_chain.live: `p/x *(struct rw_semaphore *)…`.
        let m = read(
            "crash> p/x *(struct rw_semaphore *)0xffffffffc0467060
$2 = {
  count = {
    counter = 0x102
  },
  owner = {
    counter = 0xffff8d8f82c01843
  },
  wait_lock = {
    raw_lock = {
      {
        val = {
          counter = 0x0
        },
      }
    }
  },
  wait_list = {
    next = 0xffffd42200343e90,
    prev = 0xffffd42200373e80
  }
}",
        );
        let o = m.objects.iter().find(|o| o.type_name == "rw_semaphore").unwrap();
        assert_eq!(o.address, 0xffffffffc0467060);
        assert_eq!(
            (o.member("owner.counter"), o.member("wait_list.prev")),
            (Some(0xffff8d8f82c01843), Some(0xffffd42200373e80))
        );
        assert_eq!(o.member("wait_lock.raw_lock.val.counter"), Some(0));
        let l = &m.locks[0];
        assert_eq!((l.kind.as_str(), l.value, l.locked), ("rwsem", Some(0x102), Some(true)));
    }
}
