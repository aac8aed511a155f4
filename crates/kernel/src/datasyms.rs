//! Data symbols a kernel built without `CONFIG_KALLSYMS_ALL` leaves out of kallsyms (Debian's
//! arm64 kernel: kallsyms lists code only), found from what the dump does have, each with
//! the way it was found:
//!
//! - per-CPU variables: BTF's `.data..percpu` section gives each one's offset; the section's
//!   start (`__per_cpu_start`) is the address that code adding the CPU's per-CPU offset
//!   (`tpidr_el1`) to a built address agrees on most;
//! - `__per_cpu_offset`: the array code indexes by CPU number whose entries put every CPU's
//!   `runqueues.cpu` where it holds that CPU's number;
//! - `init_task` and `init_pid_ns`: pointers from those (`runqueues[0].idle`, its pid's
//!   namespace);
//! - other globals from the code of functions known to use them ([`RECIPES`]), each candidate
//!   checked against what the variable must hold.
//!
//! Used by [`crate::Kernel::symbol`] after VMCOREINFO and kallsyms; never consulted when
//! kallsyms has data symbols. A `--vmlinux` or `--system-map` remains the sure way.

use crate::Kernel;
use crate::arch::RefKind;
use std::collections::HashMap;

/// A symbol found, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSymbol {
    pub address: u64,
    pub how: String,
}

/// Every data symbol found, and what could not be.
#[derive(Clone, Debug, Default)]
pub struct FoundSymbols {
    pub symbols: HashMap<String, FoundSymbol>,
    pub missing: Vec<String>,
}

impl FoundSymbols {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|s| s.address)
    }

    fn add(&mut self, name: &str, address: u64, how: impl Into<String>) {
        self.symbols.entry(name.to_string()).or_insert(FoundSymbol { address, how: how.into() });
    }
}

/// What a recipe's candidate must hold.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// A `struct list_head` of `struct module`s with printable names.
    ModuleList,
    /// A jiffies count that agrees with the run-queue clocks' uptime.
    Jiffies,
    /// Three load averages in fixed point.
    LoadAverages,
    /// An `unsigned int` equal to the number of possible CPUs.
    CpuCount,
    /// A `struct rcu_state` (its `name` points to "rcu_sched" or "rcu_preempt").
    RcuState,
    /// A small bit mask (taint flags).
    SmallMask,
    /// An `atomic_t` that holds -1 or a CPU number.
    CpuOrNone,
    /// A number of seconds a sysctl holds (at most `LONG_MAX / HZ`; 0 turns the check off).
    Seconds,
    /// A CPU mask of possible CPUs that holds every CPU running a task other than its idle one.
    OnlineMask,
}

/// A global found from code: the functions that use it, the member (if any) they reach it
/// by, the references to take, and the check.
struct Recipe {
    name: &'static str,
    aliases: &'static [&'static str],
    functions: &'static [&'static str],
    member: Option<(&'static str, &'static str)>,
    kinds: &'static [RefKind],
    check: Check,
}

const WORD: &[RefKind] = &[RefKind::Load(8), RefKind::Store(8)];
const INT: &[RefKind] = &[RefKind::Load(4), RefKind::Store(4)];
const ANY: &[RefKind] = &[RefKind::Address, RefKind::Load(8), RefKind::Load(4), RefKind::Store(8), RefKind::Store(4)];

/// The globals found from code, by the kernel functions that use them (names from 4.x to 6.x).
const RECIPES: &[Recipe] = &[
    Recipe {
        name: "jiffies_64",
        aliases: &["jiffies"],
        functions: &["do_timer", "get_jiffies_64", "jiffies_64_to_clock_t", "schedule_timeout"],
        member: None,
        kinds: WORD,
        check: Check::Jiffies,
    },
    Recipe {
        name: "nr_cpu_ids",
        aliases: &[],
        functions: &["smp_call_function_many_cond", "cpumask_local_spread", "nr_iowait", "cpumask_any_but"],
        member: None,
        kinds: INT,
        check: Check::CpuCount,
    },
    Recipe {
        name: "modules",
        aliases: &[],
        functions: &["find_module_all", "print_modules", "module_kallsyms_lookup_name", "__module_address"],
        member: None,
        kinds: ANY,
        check: Check::ModuleList,
    },
    Recipe {
        name: "avenrun",
        aliases: &[],
        functions: &["get_avenrun", "calc_global_load"],
        member: None,
        kinds: ANY,
        check: Check::LoadAverages,
    },
    Recipe {
        name: "rcu_state",
        aliases: &[],
        functions: &["rcu_get_gp_seq", "rcu_exp_batches_completed", "rcu_gp_kthread", "rcu_check_gp_start_stall"],
        member: Some(("struct rcu_state", "gp_seq")),
        kinds: ANY,
        check: Check::RcuState,
    },
    Recipe {
        name: "tainted_mask",
        aliases: &[],
        functions: &["get_taint", "test_taint", "add_taint"],
        member: None,
        kinds: ANY,
        check: Check::SmallMask,
    },
    Recipe {
        name: "__cpu_online_mask",
        aliases: &[],
        // The bitmap's word indexed by cpu / 64 (`__num_online_cpus`, next to it, is not).
        functions: &["set_cpu_online"],
        member: None,
        kinds: &[RefKind::Indexed(8)],
        check: Check::OnlineMask,
    },
    Recipe {
        name: "sysctl_hung_task_timeout_secs",
        aliases: &[],
        // The khungtaskd loop reads the timeout, then the check interval beside it (0 unless
        // set): the first word that holds seconds is the timeout.
        functions: &["watchdog"],
        member: None,
        kinds: &[RefKind::Load(8)],
        check: Check::Seconds,
    },
    Recipe {
        name: "panic_cpu",
        aliases: &[],
        functions: &["nmi_panic", "panic"],
        member: None,
        kinds: &[RefKind::Address, RefKind::Load(4)],
        check: Check::CpuOrNone,
    },
];

/// Functions whose code reaches per-CPU variables through the per-CPU offset register.
const PER_CPU_USERS: &[&str] = &[
    "scheduler_tick",
    "irq_enter_rcu",
    "rcu_sched_clock_irq",
    "account_process_tick",
    "__do_softirq",
    "raise_softirq",
    "update_process_times",
    "smp_call_function_many_cond",
    "try_to_wake_up",
];

/// Functions that index `__per_cpu_offset` by a CPU number.
const PER_CPU_OFFSET_USERS: &[&str] =
    &["nr_iowait_cpu", "idle_cpu", "available_idle_cpu", "smp_call_function_many_cond", "kick_process", "resched_cpu"];

/// Bytes of a function read at most (its size when kallsyms gives it).
const MAX_FUNCTION: u64 = 16 << 10;

impl Kernel {
    /// The data symbols found from BTF and code, once (empty when kallsyms has them).
    pub fn found_symbols(&self) -> &FoundSymbols {
        self.found.get_or_init(|| {
            let listed =
                self.symbols().map(|s| s.address_of("init_task").is_some() || s.address_of("jiffies").is_some());
            if listed.unwrap_or(true) { FoundSymbols::default() } else { find_all(self) }
        })
    }

    /// The data references of one function's code.
    fn function_references(&self, name: &str) -> Vec<crate::arch::CodeRef> {
        let Ok(syms) = self.symbols() else { return Vec::new() };
        let Some(f) = syms.find(name).into_iter().find(|s| matches!(s.kind, 't' | 'T')) else { return Vec::new() };
        let len = f.size.unwrap_or(1024).min(MAX_FUNCTION);
        match self.memory().read_vec(f.address, len as usize) {
            Ok(code) => self.arch().code_references(&code, f.address),
            Err(_) => Vec::new(),
        }
    }
}

fn find_all(k: &Kernel) -> FoundSymbols {
    let mut found = FoundSymbols::default();
    let Some(btf) = k.btf().ok() else {
        found.missing.push("every data symbol: no BTF to place per-CPU variables".into());
        return found;
    };
    if let Some((vars, size)) = btf.section_vars(".data..percpu") {
        per_cpu_variables(k, &vars, size, &mut found);
    }
    per_cpu_offsets(k, &mut found);
    init_task(k, &mut found);
    for r in RECIPES {
        from_code(k, r, &mut found);
    }
    found
}

/// `__per_cpu_start`: the section start most per-CPU references agree on (page aligned), then
/// every per-CPU variable at its BTF offset from it.
fn per_cpu_variables(k: &Kernel, vars: &[(&str, u32, u32)], size: u32, found: &mut FoundSymbols) {
    let targets: Vec<(u64, String)> = PER_CPU_USERS
        .iter()
        .flat_map(|f| {
            k.function_references(f)
                .into_iter()
                .filter(|r| r.kind == RefKind::PerCpu)
                .map(move |r| (r.target, f.to_string()))
        })
        .collect();
    let mut votes: HashMap<u64, (usize, String)> = HashMap::new();
    for (t, f) in &targets {
        for &(_, off, _) in vars {
            let start = t.wrapping_sub(u64::from(off));
            if start % 4096 == 0 {
                let e = votes.entry(start).or_insert((0, f.clone()));
                e.0 += 1;
            }
        }
    }
    let Some((&start, (n, _))) = votes.iter().max_by_key(|(s, (n, _))| (*n, std::cmp::Reverse(**s))) else {
        found.missing.push("__per_cpu_start: no per-CPU reference in the code read".into());
        return;
    };
    if *n < 2 {
        found.missing.push("__per_cpu_start: per-CPU references do not agree".into());
        return;
    }
    let how = format!("{n} per-CPU references (tpidr_el1 + address) in the code of {} agree", PER_CPU_USERS.join(", "));
    found.add("__per_cpu_start", start, how);
    found.add("__per_cpu_end", start + u64::from(size), "__per_cpu_start + the size of BTF's .data..percpu");
    for &(name, off, _) in vars {
        found.add(name, start + u64::from(off), "__per_cpu_start + its offset in BTF's .data..percpu");
    }
}

/// `__per_cpu_offset`: an array the code indexes by CPU whose entries place each CPU's
/// `runqueues.cpu` where it reads that CPU's number.
fn per_cpu_offsets(k: &Kernel, found: &mut FoundSymbols) {
    let (Some(rq), Ok(cpu_off)) = (found.get("runqueues"), k.offset_of("rq", "cpu")) else {
        found.missing.push("__per_cpu_offset: runqueues or rq.cpu unknown".into());
        return;
    };
    let cpus = k.dump().notes().prstatus.len().max(1) as u64;
    let mut tried = Vec::new();
    for f in PER_CPU_OFFSET_USERS {
        for r in k.function_references(f).into_iter().filter(|r| r.kind == RefKind::Indexed(8)) {
            if tried.contains(&r.target) {
                continue;
            }
            tried.push(r.target);
            let places_rq = |cpu: u64| {
                let off = k.memory().read_u64(r.target + 8 * cpu).ok()?;
                k.memory().read_u32(rq.wrapping_add(off) + cpu_off).ok().map(|c| u64::from(c) == cpu)
            };
            if (0..cpus).all(|c| places_rq(c) == Some(true)) {
                let how = format!("the array {f} indexes by CPU; runqueues.cpu reads 0..{} through it", cpus - 1);
                found.add("__per_cpu_offset", r.target, how);
                return;
            }
        }
    }
    found.missing.push(format!("__per_cpu_offset: no array indexed in {} fits", PER_CPU_OFFSET_USERS.join(", ")));
}

/// `init_task` is the boot CPU's idle task; `init_pid_ns` the namespace of its pid.
fn init_task(k: &Kernel, found: &mut FoundSymbols) {
    let (Some(rq), Some(offs)) = (found.get("runqueues"), found.get("__per_cpu_offset")) else { return };
    let read = |a: u64| k.memory().read_u64(a).ok();
    let Some(task) = (|| read(rq.wrapping_add(read(offs)?) + k.offset_of("rq", "idle").ok()?))() else { return };
    found.add("init_task", task, "runqueues[0].idle (the boot CPU's idle task)");
    init_stack(k, task, found);
    let ns = (|| {
        let pid = read(task + k.offset_of("task_struct", "thread_pid").ok()?)?;
        read(pid + k.offset_of("pid", "numbers").ok()? + k.offset_of("upid", "ns").ok()?)
    })();
    if let Some(ns) = ns {
        found.add("init_pid_ns", ns, "init_task.thread_pid->numbers[0].ns");
    }
}

/// `init_stack` (and `__end_init_task`, THREAD_SIZE above it): `init_task.stack`, when the
/// boot CPU's idle task still runs on it (its saved stack pointer lies within).
fn init_stack(k: &Kernel, task: u64, found: &mut FoundSymbols) {
    let Ok(t) = k.object(task, "struct task_struct") else { return };
    let Ok(stack) = t.member("stack").and_then(|m| m.read_u64()) else { return };
    let sp = ["thread.cpu_context.sp", "thread.sp"].iter().find_map(|p| t.member(p).and_then(|m| m.read_u64()).ok());
    // THREAD_SIZE: the power of two from 16 KiB whose upper half holds the saved stack pointer
    // (an idle task's stack is shallow).
    let Some(size) = sp.and_then(|sp| (14..=16).map(|b| 1u64 << b).find(|s| sp >= stack + s / 2 && sp < stack + s))
    else {
        return;
    };
    found.add("init_stack", stack, "init_task.stack");
    found.add("__end_init_task", stack + size, "init_task.stack + the stack size its saved stack pointer shows");
}

/// A recipe's global: the candidate referenced most often that passes its check.
fn from_code(k: &Kernel, r: &Recipe, found: &mut FoundSymbols) {
    let member = r.member.and_then(|(t, m)| k.offset_of(t.trim_start_matches("struct "), m).ok());
    let mut counts: Vec<(u64, usize, &str)> = Vec::new();
    for f in r.functions {
        for c in k.function_references(f).into_iter().filter(|c| r.kinds.contains(&c.kind)) {
            for base in [Some(c.target), member.map(|m| c.target.wrapping_sub(m))].into_iter().flatten() {
                match counts.iter_mut().find(|e| e.0 == base) {
                    Some(e) => e.1 += 1,
                    None => counts.push((base, 1, f)),
                }
            }
        }
    }
    counts.sort_by_key(|e| std::cmp::Reverse(e.1));
    let hit = counts.iter().find(|(a, _, _)| check(k, r.check, *a, found));
    match hit {
        Some(&(a, n, f)) => {
            let others: Vec<&str> = r.functions.iter().copied().filter(|g| *g != f).collect();
            let also = if others.is_empty() { String::new() } else { format!(" (also read: {})", others.join(", ")) };
            let how = format!("referenced {n}× by the code of {f}{also}; it holds a plausible value");
            for name in std::iter::once(&r.name).chain(r.aliases) {
                found.add(name, a, how.clone());
            }
        }
        None => found.missing.push(format!("{}: no address referenced by {} fits", r.name, r.functions.join(", "))),
    }
}

fn check(k: &Kernel, c: Check, a: u64, found: &FoundSymbols) -> bool {
    let mem = k.memory();
    match c {
        Check::Jiffies => mem.read_u64(a).is_ok_and(|j| jiffies_fit(k, j, found)),
        Check::CpuCount => mem.read_u32(a).is_ok_and(|n| Some(u64::from(n)) == possible_cpus(k, found)),
        Check::LoadAverages => (0..3).all(|i| mem.read_u64(a + 8 * i).is_ok_and(|v| v < 2048 * 1_000_000)),
        Check::SmallMask => mem.read_u64(a).is_ok_and(|v| v < 1 << 20),
        Check::CpuOrNone => mem.read_u32(a).is_ok_and(|v| v == u32::MAX || v < 4096),
        Check::ModuleList => module_list(k, a),
        Check::Seconds => mem.read_u64(a).is_ok_and(|v| v < 1 << 31),
        Check::OnlineMask => mem.read_u64(a).is_ok_and(|m| online_mask_fits(k, m, found)),
        Check::RcuState => rcu_state(k, a),
    }
}

/// Possible CPUs: the leading non-zero entries of `__per_cpu_offset`.
fn possible_cpus(k: &Kernel, found: &FoundSymbols) -> Option<u64> {
    let offs = found.get("__per_cpu_offset")?;
    Some((0..8192u64).take_while(|&c| k.memory().read_u64(offs + 8 * c).is_ok_and(|v| v != 0)).count() as u64)
}

/// A mask within the possible CPUs, holding each CPU whose run queue runs a task that is
/// not its idle task (a CPU running one is online).
fn online_mask_fits(k: &Kernel, mask: u64, found: &FoundSymbols) -> bool {
    let (Some(n), Some(rq), Some(offs)) =
        (possible_cpus(k, found), found.get("runqueues"), found.get("__per_cpu_offset"))
    else {
        return false;
    };
    let (Ok(curr), Ok(idle)) = (k.offset_of("rq", "curr"), k.offset_of("rq", "idle")) else { return false };
    if mask == 0 || n < 64 && mask >> n != 0 {
        return false;
    }
    (0..n.min(64)).all(|c| {
        let busy = (|| {
            let at = rq.wrapping_add(k.memory().read_u64(offs + 8 * c).ok()?);
            Some(k.memory().read_u64(at + curr).ok()? != k.memory().read_u64(at + idle).ok()?)
        })();
        busy != Some(true) || mask & (1 << c) != 0
    })
}

/// jiffies since boot (from `INITIAL_JIFFIES`, five minutes before the 32-bit wrap) agree
/// with the newest run-queue clock for one of the usual HZ.
fn jiffies_fit(k: &Kernel, j: u64, found: &FoundSymbols) -> bool {
    let Some(uptime) = newest_rq_clock(k, found) else { return false };
    [100u64, 250, 300, 1000].iter().any(|&hz| {
        let initial = (0u64.wrapping_sub(300 * hz)) & 0xffff_ffff;
        let secs = j.wrapping_sub(initial) as f64 / hz as f64;
        let up = uptime as f64 / 1e9;
        (secs - up).abs() < (up * 0.05).max(2.0)
    })
}

fn newest_rq_clock(k: &Kernel, found: &FoundSymbols) -> Option<u64> {
    let (rq, offs) = (found.get("runqueues")?, found.get("__per_cpu_offset")?);
    let clock = k.offset_of("rq", "clock").ok()?;
    let n = possible_cpus(k, found)?;
    (0..n)
        .filter_map(|c| {
            let off = k.memory().read_u64(offs + 8 * c).ok()?;
            k.memory().read_u64(rq.wrapping_add(off) + clock).ok()
        })
        .max()
}

/// A list head of modules: empty (pointing to itself) or each entry's module name printable.
fn module_list(k: &Kernel, head: u64) -> bool {
    let (Ok(list), Ok(name)) = (k.offset_of("module", "list"), k.offset_of("module", "name")) else { return false };
    let mut at = head;
    for _ in 0..4096 {
        let Ok(next) = k.memory().read_u64(at) else { return false };
        if next == head {
            return true;
        }
        let Ok(bytes) = k.memory().read_vec(next.wrapping_sub(list) + name, 56) else { return false };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(0);
        if end == 0 || !bytes[..end].iter().all(|b| b.is_ascii_graphic()) {
            return false;
        }
        at = next;
    }
    false
}

fn rcu_state(k: &Kernel, a: u64) -> bool {
    let Ok(off) = k.offset_of("rcu_state", "name") else { return false };
    let Ok(p) = k.memory().read_u64(a + off) else { return false };
    k.memory().read_vec(p, 12).is_ok_and(|b| b.starts_with(b"rcu_sched\0") || b.starts_with(b"rcu_preempt\0"))
}
