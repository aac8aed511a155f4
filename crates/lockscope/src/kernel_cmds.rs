//! crash-like commands on a vmcore, without debuginfo: `sys`, `ps`, `log`, `runq`, `sym`,
//! `struct`, `rd`. Output follows crash's layout so users recognise it; `--json` gives the
//! same facts as data.

use lockscope_dump::Dump;
use lockscope_kernel::btf::{Kind, TypeId};
use lockscope_kernel::tasks::Task;
use lockscope_kernel::{Kernel, KernelError};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DumpArg {
    /// The vmcore (ELF or kdump-compressed; several files of a split dump may be given
    /// with `--part`).
    pub dump: String,
    /// Further files of a split dump.
    #[arg(long = "part", value_name = "FILE")]
    pub parts: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// A vmlinux with DWARF debuginfo (`/usr/lib/debug/boot/vmlinux-*`) for kernels whose dump
    /// lacks BTF or kallsyms; it must be the dump's own build.
    #[arg(long, value_name = "FILE")]
    pub vmlinux: Option<std::path::PathBuf>,
    /// A System.map for the symbols of a kernel without kallsyms in VMCOREINFO.
    #[arg(long = "system-map", value_name = "FILE")]
    pub system_map: Option<std::path::PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum KernelCommand {
    /// System facts like crash's `sys`: release, CPUs, uptime, load, tasks, panic.
    Sys(DumpArg),
    /// Tasks like crash's `ps`; `-m` shows how long ago each last ran.
    Ps {
        #[command(flatten)]
        d: DumpArg,
        #[arg(short = 'm')]
        since_ran: bool,
    },
    /// The kernel log from the dump's printk buffer.
    Log {
        #[command(flatten)]
        d: DumpArg,
        /// Prefix each line with its `<level>`.
        #[arg(short = 'm')]
        levels: bool,
        /// Show printk caller ids (`[T123]`, `[C3]`).
        #[arg(short = 'c')]
        callers: bool,
    },
    /// Run queues like crash's `runq`; `-T` shows each CPU's clock lag.
    Runq {
        #[command(flatten)]
        d: DumpArg,
        #[arg(short = 'T')]
        lag: bool,
    },
    /// Name an address, or give a name's address.
    Sym {
        #[command(flatten)]
        d: DumpArg,
        what: String,
    },
    /// Print a structure (or one member path of it) at an address: `struct DUMP rq.clock ADDR`.
    Struct {
        #[command(flatten)]
        d: DumpArg,
        /// `TYPE` or `TYPE.member.path` (`task_struct`, `rq.clock`, `struct list_head`).
        ty: String,
        /// Address or symbol.
        addr: String,
    },
    /// Stack traces like crash's `bt`, from the dump alone: `-a` every CPU (the default), `-c
    /// CPU` one CPU, or the tasks with the PIDs given.
    Bt {
        #[command(flatten)]
        d: DumpArg,
        /// Every CPU that left registers in the dump.
        #[arg(short = 'a')]
        all: bool,
        /// One CPU.
        #[arg(short = 'c', value_name = "CPU")]
        cpu: Option<u32>,
        /// Tasks by PID (0 = every CPU's idle task).
        pids: Vec<u32>,
        #[command(flatten)]
        o: BtFlags,
    },
    /// `foreach DUMP [RU|UN|IN|…] bt`: the stack of every task in those states (all tasks
    /// when none is given).
    Foreach {
        #[command(flatten)]
        d: DumpArg,
        /// Task states (crash's codes: RU IN UN ID ST TR ZO …), then `bt`.
        #[arg(required = true)]
        args: Vec<String>,
        #[command(flatten)]
        o: BtFlags,
    },
    /// Disassemble like crash's `dis`: a whole function, or COUNT instructions from an address.
    Dis {
        #[command(flatten)]
        d: DumpArg,
        /// Symbol (`schedule`, `schedule+12`) or address.
        addr: String,
        /// Number of instructions (default: the whole function).
        count: Option<usize>,
        /// Intel syntax instead of AT&T.
        #[arg(long)]
        intel: bool,
    },
    /// Read memory as 64-bit words, like crash's `rd`.
    Rd {
        #[command(flatten)]
        d: DumpArg,
        /// Address or symbol.
        addr: String,
        /// Number of 64-bit words.
        #[arg(default_value_t = 1)]
        count: u64,
    },
}

/// `bt`'s options.
#[derive(clap::Args, Clone, Copy)]
pub struct BtFlags {
    /// Show each frame's stack words.
    #[arg(short = 'f')]
    words: bool,
    /// Show symbol offsets (`func+off`).
    #[arg(short = 's')]
    offsets: bool,
}

impl From<BtFlags> for crate::bt::BtOptions {
    fn from(f: BtFlags) -> Self {
        crate::bt::BtOptions { words: f.words, offsets: f.offsets }
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("lockscope: {}", lockscope_report::escape::output(&msg.to_string()));
    ExitCode::from(2)
}

fn open(d: &DumpArg) -> Result<Kernel, String> {
    let mut all = vec![d.dump.clone()];
    all.extend(d.parts.iter().cloned());
    // An error about one file of a split set names that file.
    let dump = Dump::open_many(&all).map_err(|e| {
        let who = e.file.and_then(|i| all.get(i as usize)).unwrap_or(&d.dump);
        format!("{who}: {e}")
    })?;
    let options = lockscope_kernel::KernelOptions {
        vmlinux: d.vmlinux.clone(),
        system_map: d.system_map.clone(),
        ..Default::default()
    };
    Kernel::with_options(dump, options).map_err(|e| format!("{}: {e}", d.dump))
}

/// Text output: dump strings in it are escaped for the terminal (unless `--raw`).
pub(crate) fn emit(text: &str) -> ExitCode {
    emit_exact(&lockscope_report::escape::output(text))
}

fn emit_exact(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// JSON output, with the damaged structures the answer met (`damage`: one line each).
pub(crate) fn emit_json(k: &Kernel, v: &Value) -> ExitCode {
    let mut v = v.clone();
    let damage: Vec<String> = k.damage().iter().map(|d| d.to_string()).collect();
    if !damage.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("damage".into(), json!(damage));
    }
    emit_exact(&(serde_json::to_string_pretty(&v).expect("json") + "\n"))
}

/// Text output's companion: each damaged structure the answer met, on standard error.
fn report_damage(k: &Kernel, json: bool) {
    if json {
        return;
    }
    for d in k.damage() {
        eprintln!("lockscope: note: {d}");
    }
}

pub fn run(cmd: KernelCommand) -> ExitCode {
    let d = match &cmd {
        KernelCommand::Sys(d) => d,
        KernelCommand::Ps { d, .. }
        | KernelCommand::Log { d, .. }
        | KernelCommand::Runq { d, .. }
        | KernelCommand::Sym { d, .. }
        | KernelCommand::Struct { d, .. }
        | KernelCommand::Rd { d, .. }
        | KernelCommand::Bt { d, .. }
        | KernelCommand::Foreach { d, .. }
        | KernelCommand::Dis { d, .. } => d,
    };
    let k = match open(d) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let r = match &cmd {
        KernelCommand::Sys(d) => sys(&k, d),
        KernelCommand::Ps { d, since_ran } => ps(&k, d, *since_ran),
        KernelCommand::Log { d, levels, callers } => log(&k, d, *levels, *callers),
        KernelCommand::Runq { d, lag } => runq(&k, d, *lag),
        KernelCommand::Sym { d, what } => sym(&k, d, what),
        KernelCommand::Struct { d, ty, addr } => struct_cmd(&k, d, ty, addr),
        KernelCommand::Rd { d, addr, count } => rd(&k, d, addr, *count),
        KernelCommand::Bt { d, all, cpu, pids, o } => {
            let which = match (cpu, pids.is_empty()) {
                (Some(c), _) if !*all => crate::bt::Which::Cpu(*c),
                (None, false) if !*all => crate::bt::Which::Pids(pids.clone()),
                _ => crate::bt::Which::AllCpus,
            };
            crate::bt::bt(&k, d, &which, (*o).into())
        }
        KernelCommand::Dis { d, addr, count, intel } => {
            parse_addr(&k, addr).and_then(|a| crate::dis::dis(&k, d, a, *count, *intel))
        }
        KernelCommand::Foreach { d, args, o } => match args.split_last() {
            Some((cmd, states)) if cmd == "bt" => crate::bt::foreach_bt(&k, d, states, (*o).into()),
            _ => {
                return fail("foreach: give the task states, then `bt` (the one command foreach runs)");
            }
        },
    };
    report_damage(&k, d.json);
    match r {
        Ok(code) => code,
        Err(e) => fail(format!("{}: {e}", d.dump)),
    }
}

/// Seconds since the epoch as crash prints dates.
fn date(t: i64) -> String {
    crate::dump_info::format_utc(t)
}

fn hms(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn sys(k: &Kernel, d: &DumpArg) -> Result<ExitCode, KernelError> {
    let f = k.system()?;
    let meta = k.dump().metadata();
    if d.json {
        return Ok(emit_json(
            k,
            &json!({
                "dumpfile": d.dump,
                "partial": meta.partial,
                "cpus": f.cpus,
                "offline_cpus": f.offline,
                "date": f.date,
                "uptime_s": f.uptime_ns as f64 / 1e9,
                "load_average": f.load,
                "tasks": f.tasks,
                "nodename": f.nodename,
                "release": f.release,
                "version": f.version,
                "machine": f.machine,
                "memory_bytes": f.memory,
                "panic": f.panic,
                "panic_cpu": f.panic_cpu,
                "panic_task": f.panic_task.as_ref().map(|t| json!({"pid": t.pid, "comm": t.comm, "address": t.address})),
                "taint": f.taint,
                "unreadable": f.unreadable,
            }),
        ));
    }
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:>12}: {v}");
    };
    let taint = f.taint.as_ref().map(|t| format!("  [TAINTED: {t}]")).unwrap_or_default();
    let source = match (&k.options().vmlinux, &k.options().system_map) {
        (Some(v), _) => v.display().to_string(),
        (None, Some(m)) => format!("(from the dump: BTF; symbols: {})", m.display()),
        (None, None) => "(from the dump: kallsyms, BTF)".into(),
    };
    line("KERNEL", format!("{source}{taint}"));
    line("DUMPFILE", format!("{}{}", d.dump, if meta.partial { "  [PARTIAL DUMP]" } else { "" }));
    let offline: Vec<String> = f.offline.iter().map(|c| c.to_string()).collect();
    // After a panic the CPUs stopped by the panicking one are marked offline.
    line(
        "CPUS",
        if offline.is_empty() { f.cpus.to_string() } else { format!("{} [OFFLINE: {}]", f.cpus, offline.join(",")) },
    );
    if let Some(t) = f.date {
        line("DATE", date(t));
    }
    line("UPTIME", hms(f.uptime_ns));
    line("LOAD AVERAGE", format!("{:.2}, {:.2}, {:.2}", f.load[0], f.load[1], f.load[2]));
    line(
        "TASKS",
        match f.task_damage {
            0 => f.tasks.to_string(),
            n => format!("{} ({n} task or thread list(s) damaged: see the notes; the pid tree filled in)", f.tasks),
        },
    );
    line("NODENAME", f.nodename);
    line("RELEASE", f.release);
    line("VERSION", f.version);
    line("MACHINE", f.machine);
    line("MEMORY", format!("{:.1} MB", f.memory as f64 / (1 << 20) as f64));
    let panic = match (&f.panic, f.panic_cpu) {
        (Some(p), Some(c)) => format!("\"{p}\" (CPU {c})"),
        (Some(p), None) => format!("\"{p}\""),
        (None, _) => "\"\"".into(),
    };
    line("PANIC", panic);
    for u in &f.unreadable {
        let _ = writeln!(s, "{:>12}  not read: {u}", "");
    }
    Ok(emit(&s))
}

/// `[d hh:mm:ss.mmm]` as crash's `ps -m` prints time since a task last ran.
fn since(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let s = ms / 1000;
    format!("[{} {:02}:{:02}:{:02}.{:03}]", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60, ms % 1000)
}

fn task_json(t: &Task, since_ns: Option<u64>) -> Value {
    let mut v = serde_json::to_value(t).expect("task");
    if let Some(n) = since_ns {
        v["since_last_ran_ns"] = json!(n);
    }
    v
}

fn ps(k: &Kernel, d: &DumpArg, since_ran: bool) -> Result<ExitCode, KernelError> {
    let (mut tasks, unreadable) = k.tasks_and_unreadable()?;
    let cpus = k.cpus()?;
    let clock_of = |cpu: u32| cpus.iter().find(|c| c.cpu == cpu).map_or(0, |c| c.clock);
    let ago = |t: &Task| clock_of(t.cpu).saturating_sub(t.last_arrival);
    if d.json {
        let v: Vec<Value> = tasks.iter().map(|t| task_json(t, Some(ago(t)))).collect();
        return Ok(emit_json(
            k,
            &json!({ "tasks": v, "unreadable": unreadable.len(), "unreadable_tasks": unreadable }),
        ));
    }
    let mut s = String::new();
    if since_ran {
        tasks.sort_by_key(|t| (ago(t), t.pid));
        for t in &tasks {
            let _ = writeln!(
                s,
                "{} [{}]  PID: {:<7}  TASK: {:016x}  CPU: {:<3}  COMMAND: \"{}\"",
                since(ago(t)),
                t.state_code,
                t.pid,
                t.address,
                t.cpu,
                t.comm
            );
        }
    } else {
        tasks.sort_by_key(|t| (t.pid, t.cpu));
        let _ = writeln!(s, "   PID    PPID  CPU       TASK        ST  COMM");
        for t in &tasks {
            let cur = if t.current_on.is_some() { '>' } else { ' ' };
            let comm = if t.kthread || t.pid == 0 { format!("[{}]", t.comm) } else { t.comm.clone() };
            let _ = writeln!(
                s,
                "{cur}{:>6} {:>7} {:>4}  {:016x}  {}  {comm}",
                t.pid, t.ppid, t.cpu, t.address, t.state_code
            );
        }
    }
    if !unreadable.is_empty() {
        let at: Vec<String> = unreadable.iter().map(|a| format!("{a:x}")).collect();
        let _ = writeln!(s, "({} task(s) could not be read from the dump: {})", at.len(), at.join(" "));
    }
    Ok(emit(&s))
}

fn log(k: &Kernel, d: &DumpArg, levels: bool, callers: bool) -> Result<ExitCode, KernelError> {
    let l = k.log()?;
    if d.json {
        let recs: Vec<Value> = l
            .records
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq, "ts_nsec": r.ts_nsec, "level": r.level, "facility": r.facility,
                    "caller": r.caller.map(|c| c.to_string()), "text": String::from_utf8_lossy(&r.text),
                })
            })
            .collect();
        return Ok(emit_json(
            k,
            &json!({
                "format": l.format, "records": recs, "skipped": l.skipped, "damaged": l.damaged, "damage": l.damage,
            }),
        ));
    }
    let out = l.render(levels, callers);
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(&lockscope_report::escape::output_bytes(&out));
    let _ = o.flush();
    if let Some(note) = l.damage_note() {
        eprintln!("lockscope: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

fn runq(k: &Kernel, d: &DumpArg, lag: bool) -> Result<ExitCode, KernelError> {
    let cpus = k.cpus()?;
    let newest = cpus.iter().map(|c| c.clock).max().unwrap_or(0);
    let (tasks, _) = k.tasks()?;
    let on_rq_off = k.offset_of("task_struct", "on_rq")?;
    let queued = |cpu: u32| -> Vec<&Task> {
        tasks
            .iter()
            .filter(|t| {
                t.cpu == cpu
                    && t.current_on.is_none()
                    && t.pid != 0
                    && k.memory().read_u32(t.address + on_rq_off).is_ok_and(|v| v != 0)
            })
            .collect()
    };
    if d.json {
        let v: Vec<Value> = cpus
            .iter()
            .map(|c| {
                let cur = tasks.iter().find(|t| t.address == c.curr);
                json!({
                    "cpu": c.cpu, "online": c.online, "rq": c.rq, "clock_ns": c.clock,
                    "lag_ns": newest - c.clock, "nr_running": c.nr_running,
                    "current": cur.map(|t| task_json(t, None)),
                    "queued": queued(c.cpu).iter().map(|t| task_json(t, None)).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(emit_json(k, &json!({ "cpus": v })));
    }
    let mut s = String::new();
    if lag {
        let mut order: Vec<_> = cpus.iter().collect();
        order.sort_by_key(|c| (newest - c.clock, c.cpu));
        for c in order {
            let _ = writeln!(s, "  CPU {}: {:.2} secs", c.cpu, (newest - c.clock) as f64 / 1e9);
        }
        return Ok(emit(&s));
    }
    for c in &cpus {
        let _ = writeln!(s, "CPU {} RUNQUEUE: {:x}", c.cpu, c.rq);
        match tasks.iter().find(|t| t.address == c.curr) {
            Some(t) => {
                let _ = writeln!(s, "  CURRENT: PID: {:<6}  TASK: {:x}  COMMAND: \"{}\"", t.pid, t.address, t.comm);
            }
            None => {
                let _ = writeln!(s, "  CURRENT: TASK: {:x}", c.curr);
            }
        }
        let q = queued(c.cpu);
        if q.is_empty() {
            let _ = writeln!(s, "  [no tasks queued]");
        }
        for t in q {
            let _ = writeln!(s, "  [{:3}] PID: {:<6}  TASK: {:x}  COMMAND: \"{}\"", t.prio, t.pid, t.address, t.comm);
        }
        s.push('\n');
    }
    Ok(emit(&s))
}

/// An address in hex (with or without 0x), or a symbol name, optionally `+offset`.
fn parse_addr(k: &Kernel, s: &str) -> Result<u64, KernelError> {
    let (base, off) = match s.split_once('+') {
        Some((b, o)) => (b, parse_num(o).ok_or_else(|| KernelError::NoSymbol(s.to_string()))?),
        None => (s, 0),
    };
    match hex_address(base) {
        Some(v) => Ok(v + off),
        None => match k.symbol(base) {
            Ok(a) => Ok(a + off),
            // A module's symbol.
            Err(e) => k.find_symbols(base).first().map(|&(a, _, _)| a + off).ok_or(e),
        },
    }
}

/// A kernel address written in hex (8 digits or more, `0x` optional), as crash accepts it;
/// anything shorter is taken for a symbol name.
fn hex_address(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) { u64::from_str_radix(hex, 16).ok() } else { None }
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn owner_of(k: &Kernel, d: &DumpArg, a: u64, what: &str) -> Result<ExitCode, KernelError> {
    let owner = k.whatis(a).ok_or_else(|| KernelError::NoSymbol(format!("{what} (nothing known contains it)")))?;
    if d.json {
        return Ok(emit_json(k, &json!({ "address": a, "owner": owner.to_string() })));
    }
    println!("{a:016x}  {owner}");
    Ok(ExitCode::SUCCESS)
}

fn sym(k: &Kernel, d: &DumpArg, what: &str) -> Result<ExitCode, KernelError> {
    k.symbols()?;
    // (address, crash-style name, type letter, module, name+off/size)
    let mut found: Vec<(u64, String, char, Option<String>, String)> = Vec::new();
    if let Some(a) = hex_address(what) {
        // No symbol: what the address belongs to (a per-CPU copy, a slab object, node data).
        let Some(s) = k.lookup_address(a) else { return owner_of(k, d, a, what) };
        let off = a - s.address;
        let shown = if off == 0 { s.name.to_string() } else { format!("{}+{off}", s.name) };
        let (kind, module, full) = (s.kind, s.module.map(str::to_string), s.format(a));
        found.push((a, shown, kind, module, full));
    } else {
        for (a, kind, module) in k.find_symbols(what) {
            let full = k.symbolize(a).unwrap_or_else(|| what.to_string());
            found.push((a, what.to_string(), kind, module, full));
        }
        if found.is_empty() {
            return Err(KernelError::NoSymbol(what.to_string()));
        }
    }
    if d.json {
        let v: Vec<Value> = found
            .iter()
            .map(|(a, n, kind, m, full)| json!({"address": a, "name": n, "type": kind.to_string(), "module": m, "symbol": full}))
            .collect();
        return Ok(emit_json(k, &json!({ "symbols": v })));
    }
    let mut s = String::new();
    for (a, n, kind, m, _) in &found {
        let module = m.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default();
        let _ = writeln!(s, "{a:016x} ({kind}) {n}{module}");
        if let Some(f) = k.found_symbols().symbols.get(n.as_str()).filter(|f| f.address == *a) {
            let _ = writeln!(s, "    (not in kallsyms; found: {})", f.how);
        }
    }
    Ok(emit(&s))
}

/// Prints a value of a BTF type, crash/drgn-style, members indented.
struct Printer<'k> {
    k: &'k Kernel,
    btf: &'k lockscope_kernel::btf::Btf<'static>,
    out: String,
    budget: usize,
}

impl Printer<'_> {
    fn value(&mut self, addr: u64, ty: TypeId, bitfield: Option<(u64, u8)>, depth: usize) -> Value {
        let btf = self.btf;
        if self.budget == 0 {
            return json!("…");
        }
        self.budget -= 1;
        let Ok(t) = btf.resolved(ty) else { return json!(null) };
        let read = |len: usize| self.k.memory().read_vec(addr, len);
        match t.kind() {
            Kind::Struct | Kind::Union => {
                let mut obj = serde_json::Map::new();
                for m in t.members() {
                    let bit = u64::from(m.bit_offset);
                    let width = if m.bitfield_size > 0 {
                        Some(m.bitfield_size)
                    } else {
                        btf.ty(m.ty)
                            .ok()
                            .and_then(|mt| mt.int())
                            .filter(|e| e.bits as u32 != e.size * 8)
                            .map(|e| e.bits)
                    };
                    let a = addr + bit / 8;
                    let bf = width.map(|w| (bit % 8, w));
                    let name = if m.name.is_empty() { "(anonymous)".to_string() } else { m.name.to_string() };
                    let v = if depth >= 6 { json!("…") } else { self.value(a, m.ty, bf, depth + 1) };
                    obj.insert(name, v);
                }
                Value::Object(obj)
            }
            Kind::Array => {
                let Some(ai) = t.array() else { return json!(null) };
                let elem_size = btf.size_of(ai.elem).unwrap_or(0);
                let elem = btf.resolved(ai.elem).ok();
                if elem.as_ref().and_then(|e| e.int()).is_some_and(|e| e.size == 1) {
                    // char arrays print as strings.
                    return match read(ai.nelems as usize) {
                        Ok(b) => {
                            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                            json!(String::from_utf8_lossy(&b[..end]))
                        }
                        Err(e) => json!(format!("<{e}>")),
                    };
                }
                let n = ai.nelems.min(64) as u64;
                Value::Array((0..n).map(|i| self.value(addr + i * elem_size, ai.elem, None, depth + 1)).collect())
            }
            Kind::Ptr => match self.k.memory().read_u64(addr) {
                Ok(v) => json!(format!("{v:#x}")),
                Err(e) => json!(format!("<{e}>")),
            },
            Kind::Int | Kind::Enum | Kind::Enum64 => {
                let size = t.size().unwrap_or(8).clamp(1, 8) as usize;
                let (bit, width) = bitfield.unwrap_or((0, (size * 8) as u8));
                let span = ((bit as usize + width as usize).div_ceil(8)).max(size).min(8);
                match read(span) {
                    Ok(b) => {
                        let mut v = 0u64;
                        for (i, byte) in b.iter().enumerate() {
                            v |= u64::from(*byte) << (8 * i);
                        }
                        v >>= bit;
                        if width < 64 {
                            v &= (1 << width) - 1;
                        }
                        if matches!(t.kind(), Kind::Enum | Kind::Enum64)
                            && let Some(n) = btf.enum_name(t.id(), v)
                        {
                            return json!(n);
                        }
                        let signed = t.int().is_some_and(|e| e.signed);
                        if signed && width < 64 && (v >> (width - 1)) & 1 == 1 {
                            json!((v | (!0u64 << width)) as i64)
                        } else {
                            json!(v)
                        }
                    }
                    Err(e) => json!(format!("<{e}>")),
                }
            }
            _ => json!(null),
        }
    }

    fn text(&mut self, name: &str, v: &Value, indent: usize) {
        let pad = "  ".repeat(indent);
        match v {
            Value::Object(m) => {
                let _ = writeln!(self.out, "{pad}{name} = {{");
                for (k, v) in m {
                    self.text(k, v, indent + 1);
                }
                let _ = writeln!(self.out, "{pad}}},");
            }
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                let _ = writeln!(self.out, "{pad}{name} = {{{}}},", items.join(", "));
            }
            Value::String(s) => {
                let _ = writeln!(self.out, "{pad}{name} = {s:?},");
            }
            other => {
                let _ = writeln!(self.out, "{pad}{name} = {other},");
            }
        }
    }
}

fn struct_cmd(k: &Kernel, d: &DumpArg, ty: &str, addr: &str) -> Result<ExitCode, KernelError> {
    let address = parse_addr(k, addr)?;
    let (type_name, path) = match ty.trim_start_matches("struct ").split_once('.') {
        Some((t, p)) => (t.to_string(), Some(p.to_string())),
        None => (ty.trim_start_matches("struct ").to_string(), None),
    };
    let c_type = if ty.starts_with("union ") { ty.to_string() } else { format!("struct {type_name}") };
    // The kernel's types first, then each module's own (split BTF).
    let module_btfs: Vec<_>;
    let base = match k.object(address, &c_type).or_else(|_| k.object(address, &type_name)) {
        Ok(o) => o,
        Err(e) => {
            module_btfs = k
                .modules()
                .map(|ms| ms.iter().filter(|m| m.btf.is_some()).filter_map(|m| k.module_btf(&m.name).ok()).collect())
                .unwrap_or_default();
            module_btfs
                .iter()
                .find_map(|b| k.object_in(b, address, &c_type).or_else(|_| k.object_in(b, address, &type_name)).ok())
                .ok_or(e)?
        }
    };
    let (obj, label) = match &path {
        Some(p) => (base.member(p)?, p.clone()),
        None => (base, c_type.clone()),
    };
    let btf = obj.types();
    let mut p = Printer { k, btf, out: String::new(), budget: 20_000 };
    let v = p.value(obj.address, obj.ty, None, 0);
    if d.json {
        return Ok(emit_json(
            k,
            &json!({
                "type": btf.type_name(obj.ty).unwrap_or_default(),
                "address": obj.address,
                "value": v,
            }),
        ));
    }
    let tname = btf.type_name(obj.ty).unwrap_or_else(|_| label.clone());
    let _ = writeln!(p.out, "{tname} at {:#x}:", obj.address);
    p.text(&label, &v, 0);
    Ok(emit(&p.out))
}

fn rd(k: &Kernel, d: &DumpArg, addr: &str, count: u64) -> Result<ExitCode, KernelError> {
    let address = parse_addr(k, addr)?;
    let count = count.clamp(1, 1 << 20);
    let bytes = k
        .memory()
        .read_vec(address, (count * 8) as usize)
        .map_err(|err| KernelError::Memory { what: format!("{count} word(s) at {address:#x}"), err })?;
    let words: Vec<u64> = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
    if d.json {
        return Ok(emit_json(k, &json!({ "address": address, "words": words })));
    }
    let mut s = String::new();
    for (i, chunk) in words.chunks(2).enumerate() {
        let a = address + i as u64 * 16;
        let hexes: Vec<String> = chunk.iter().map(|w| format!("{w:016x}")).collect();
        let ascii: String = bytes[i * 16..(i * 16 + chunk.len() * 8)]
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
            .collect();
        let _ = writeln!(s, "{a:016x}:  {:<34} {ascii}", hexes.join(" "));
    }
    Ok(emit(&s))
}
