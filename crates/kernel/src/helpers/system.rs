//! The facts crash's `sys` prints, read from the kernel: CPUs, date, uptime, load average,
//! task count, utsname, memory, panic and taint. Each is read on its own, so a page missing
//! from the dump costs that one fact (named in `unreadable`), not the whole answer.

use crate::tasks::Task;
use crate::{Kernel, KernelError};

/// The facts of `sys`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SystemFacts {
    pub cpus: usize,
    pub offline: Vec<u32>,
    pub date: Option<i64>,
    pub uptime_ns: u64,
    pub load: [f64; 3],
    pub tasks: usize,
    /// Task or thread lists found damaged while counting (see the notes).
    pub task_damage: usize,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub memory: u64,
    pub panic: Option<String>,
    pub panic_cpu: Option<i32>,
    pub taint: Option<String>,
    /// The task the panicking CPU ran.
    pub panic_task: Option<Task>,
    /// Facts that could not be read, with why.
    pub unreadable: Vec<String>,
}

/// Taint bits in order (kernel/panic.c `taint_flags` of 6.12), the letter printed when set:
/// used where the dump lacks the kernel's own table.
const TAINT_LETTERS: &[u8] = b"PFSRMBUDAWCIOELKXTN";
/// More taint flags than any kernel has.
const MAX_TAINTS: u64 = 64;

/// `tainted_mask` as the kernel prints it in oopses (`POE`), or None when untainted.
fn taint_string(mask: u64, letters: &[u8]) -> Option<String> {
    if mask == 0 {
        return None;
    }
    let s: String =
        letters.iter().enumerate().filter(|(bit, _)| mask >> bit & 1 == 1).map(|(_, &l)| l as char).collect();
    Some(s)
}

/// The taint letters of this kernel: `c_true` of each `struct taint_flag` in `taint_flags`
/// (the table grows with new kernels: 'N' in 5.18, 'J' in 6.15).
fn taint_letters(k: &Kernel) -> Vec<u8> {
    let read = || -> Option<Vec<u8>> {
        let at = k.symbol("taint_flags").ok()?;
        let each = k.size_of("struct taint_flag").ok().filter(|&s| s > 0)?;
        let n = (k.lookup_address(at)?.size? / each).min(MAX_TAINTS);
        let off = k.offset_of("taint_flag", "c_true").ok()?;
        let letters: Vec<u8> = (0..n).map_while(|i| k.memory().read_u8(at + i * each + off).ok()).collect();
        (letters.len() as u64 == n && letters.iter().all(u8::is_ascii_graphic)).then_some(letters)
    };
    read().unwrap_or_else(|| TAINT_LETTERS.to_vec())
}

fn uts_field(k: &Kernel, index: u64) -> Result<String, KernelError> {
    let uts = k.global("init_uts_ns")?.member("name")?;
    let b = k
        .memory()
        .read_cstr(uts.address + index * 65, 65)
        .map_err(|err| KernelError::Memory { what: "init_uts_ns".into(), err })?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

impl Kernel {
    /// What crash's `sys` shows, each fact read on its own: one that cannot be read is
    /// named in `unreadable` and the rest stands.
    pub fn system(&self) -> Result<SystemFacts, KernelError> {
        system_facts(self)
    }
}

fn system_facts(k: &Kernel) -> Result<SystemFacts, KernelError> {
    let cpus = k.cpus()?;
    let clock_ns = cpus.iter().map(|c| c.clock).max().unwrap_or(0);
    let uptime_ns = uptime_from_jiffies(k, clock_ns).unwrap_or(clock_ns);
    let mut unreadable = Vec::new();
    let load = load_average(k).unwrap_or_else(|e| {
        unreadable.push(format!("LOAD AVERAGE: {e}"));
        [f64::NAN; 3]
    });
    let tasks = k.task_addresses()?.len();
    let panic_cpu = k.global("panic_cpu").and_then(|p| p.member("counter")?.read_int()).ok().map(|v| v as i32);
    // The message is in the log; read it only when a CPU panicked.
    let panic = panic_cpu.filter(|&c| c >= 0).and_then(|_| k.log().ok()).and_then(|l| {
        l.records.iter().rev().find_map(|r| {
            let t = String::from_utf8_lossy(&r.text);
            t.strip_prefix("Kernel panic - not syncing: ").map(|m| m.trim_end().to_string())
        })
    });
    let meta = k.dump().metadata();
    // Present pages of every memory node (what crash prints), else the dump's RAM.
    let memory =
        node_present_bytes(k).unwrap_or_else(|| k.dump().memory_ranges().iter().map(|r| r.end - r.start).sum());
    let mut uts = |i: u64, name: &str| {
        uts_field(k, i).unwrap_or_else(|e| {
            unreadable.push(format!("{name}: {e}"));
            "(unreadable)".into()
        })
    };
    let (nodename, release, version, machine) =
        (uts(1, "NODENAME"), uts(2, "RELEASE"), uts(3, "VERSION"), uts(4, "MACHINE"));
    Ok(SystemFacts {
        cpus: cpus.len(),
        offline: cpus.iter().filter(|c| !c.online).map(|c| c.cpu).collect(),
        // The dump's own date, else the kernel's wall clock (what crash does as well).
        date: meta.date.or_else(|| k.vmcoreinfo().crash_time()).or_else(|| {
            let secs = k.global("shadow_timekeeper").and_then(|t| t.member("xtime_sec")?.read_int()).ok()?;
            Some(secs as i64).filter(|&s| s > 0)
        }),
        uptime_ns,
        load,
        tasks,
        task_damage: k.damage().iter().filter(|d| d.structure.holds_tasks()).count(),
        nodename,
        release,
        version,
        machine,
        memory,
        panic,
        panic_cpu: panic_cpu.filter(|&c| c >= 0),
        panic_task: panic_cpu.filter(|&c| c >= 0).and_then(|c| panic_task(k, c as u32)),
        taint: k
            .global("tainted_mask")
            .and_then(|t| t.read_int())
            .ok()
            .and_then(|m| taint_string(m, &taint_letters(k))),
        unreadable,
    })
}

/// `avenrun`: fixed point with 11 fractional bits (FSHIFT), rounded as /proc/loadavg does.
fn load_average(k: &Kernel) -> Result<[f64; 3], KernelError> {
    let avenrun = k.symbol("avenrun")?;
    let mut load = [0.0; 3];
    for (i, l) in load.iter_mut().enumerate() {
        let v = k
            .memory()
            .read_u64(avenrun + i as u64 * 8)
            .map_err(|err| KernelError::Memory { what: "avenrun".into(), err })?;
        let v = v + (1 << 11) / 200;
        *l = (v >> 11) as f64 + (((v & ((1 << 11) - 1)) * 100) >> 11) as f64 / 100.0;
    }
    Ok(load)
}

/// The task the panicking CPU ran.
fn panic_task(k: &Kernel, cpu: u32) -> Option<Task> {
    let c = k.cpus().ok()?.into_iter().find(|c| c.cpu == cpu)?;
    k.task(c.curr).ok()
}

fn node_present_bytes(k: &Kernel) -> Option<u64> {
    let nodes = k.symbol("node_data").ok()?;
    let n = k.vmcoreinfo().length("node_data").unwrap_or(1).min(1024);
    let page = k.dump().metadata().page_size;
    let mut total = 0;
    for i in 0..n {
        let pgdat = k.memory().read_u64(nodes + i * 8).ok()?;
        if pgdat == 0 {
            continue;
        }
        total += k.object(pgdat, "struct pglist_data").ok()?.member("node_present_pages").ok()?.read_int().ok()? * page;
    }
    (total > 0).then_some(total)
}

/// Uptime as crash computes it, from `jiffies_64` (which starts 300 s before wrapping 32
/// bits); HZ is not in the dump, so take the usual value that agrees with the run-queue clock.
fn uptime_from_jiffies(k: &Kernel, clock_ns: u64) -> Option<u64> {
    let j = k.global("jiffies_64").ok()?.read_int().ok()?;
    let clock_s = clock_ns as f64 / 1e9;
    [100u64, 250, 300, 1000]
        .iter()
        .map(|&hz| {
            let initial = u64::from((-300i64 * hz as i64) as u32);
            let up = j.wrapping_sub(initial) as f64 / hz as f64;
            (hz, up)
        })
        .filter(|&(_, up)| up >= 0.0 && (up - clock_s).abs() < 2.0 + clock_s * 0.01)
        .min_by(|a, b| (a.1 - clock_s).abs().total_cmp(&(b.1 - clock_s).abs()))
        .map(|(hz, _)| {
            let initial = u64::from((-300i64 * hz as i64) as u32);
            j.wrapping_sub(initial) * (1_000_000_000 / hz)
        })
}
