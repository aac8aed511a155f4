//! The bodies of the fuzz targets that reach the kernel view, in one place so that
//! cargo-fuzz (`fuzz/fuzz_targets/*.rs`) and the corpus replay on stable
//! (`crates/bench/tests/kernel_fuzz_replay.rs`) run exactly the same code.
//!
//! Every target but `btf` starts from the repository's real dump, decoded once per process
//! into an uncompressed image shared by every input ([`base`]). The fuzz input becomes
//! patches over chosen kernel data (the printk ring, the kallsyms tables, task structs and
//! list heads) laid with [`lockscope_dump::Dump::with_patches`], or replaces VMCOREINFO.
//! The input is a list of records `[u32 LE offset][u16 LE length][bytes]`: the bytes land at
//! `offset` (modulo the size) in the concatenation of the target's regions ([`Regions`]).

mod base;
mod btf;
mod regions;
mod seeds;

pub use base::{Base, base};
pub use btf::btf;
pub use regions::Regions;
pub use seeds::seeds;

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;

/// A target's body: one fuzz input.
pub type Body = fn(&[u8]);

/// The targets, by name (also the corpus directory names).
pub const TARGETS: &[(&str, Body)] = &[
    ("vmcoreinfo", vmcoreinfo),
    ("printk_ring", printk_ring),
    ("kallsyms", kallsyms),
    ("btf", btf),
    ("task_walk", task_walk),
    ("stacks", stacks),
];

/// The base dump with `data`'s patch records laid over `regions`, as a kernel.
fn patched_kernel(regions: &Regions, data: &[u8]) -> Option<Kernel> {
    let dump = base().dump().with_patches(regions.patches(data));
    Kernel::new(dump).ok()
}

/// The input as the dump's VMCOREINFO: the kernel view built on it, then the log, symbols
/// and the reads `sys` makes.
pub fn vmcoreinfo(data: &[u8]) {
    let Ok(k) = Kernel::new(base().dump().with_vmcoreinfo(data)) else { return };
    read_log(&k);
    if let Ok(s) = k.symbols() {
        let _ = (s.len(), s.address_of("init_task"), s.lookup(k.vmcoreinfo().symbol("_stext").unwrap_or(0)));
    }
    let _ = (k.nr_cpu_ids(), k.cpus());
    let _ = k.read_symbol_u64("jiffies_64");
    let _ = k.global("init_uts_ns").and_then(|u| u.member("name.release")?.read_int());
    let _ = k.task_addresses().map(|t| t.len());
}

/// Fuzz bytes over the printk ring's control block, descriptors, infos and text.
pub fn printk_ring(data: &[u8]) {
    let Some(k) = patched_kernel(&base().printk, data) else { return };
    read_log(&k);
}

fn read_log(k: &Kernel) {
    if let Ok(log) = k.log() {
        let text = log.render(true, true);
        assert!(text.len() >= log.records.len(), "rendered log shorter than its records");
    }
}

/// Fuzz bytes over the kallsyms tables, then the symbol table and its look-ups.
pub fn kallsyms(data: &[u8]) {
    let Some(k) = patched_kernel(&base().kallsyms, data) else { return };
    let Ok(s) = k.symbols() else { return };
    let stext = k.vmcoreinfo().symbol("_stext").unwrap_or(0);
    for a in [0, stext, stext + 0x1234, u64::MAX] {
        let _ = s.lookup(a).map(|r| r.format(a));
    }
    let _ = (s.find("schedule"), s.address_of("init_task"), s.iter().take(64).count());
}

/// Fuzz bytes over task structs, the task and module list heads and a run queue; then the
/// task walk (every list, as `tasks()` does), the first tasks read, CPUs and modules.
pub fn task_walk(data: &[u8]) {
    let b = base();
    let dump = b.dump().with_vmcoreinfo(&b.task_vmcoreinfo).with_patches(b.tasks.patches(data));
    let Ok(k) = Kernel::new(dump) else { return };
    let _ = k.cpus();
    if let Ok(all) = k.task_addresses() {
        for a in all.iter().take(12) {
            let _ = k.task(*a).map(|t| t.comm.len());
        }
    }
    if let Ok(m) = k.modules() {
        let first = m.first().map_or(0, |m| m.address);
        let _ = (m.iter().map(|m| m.symbols.len()).sum::<usize>(), m.iter().find_map(|m| m.lookup(first)));
    }
}

/// Fuzz bytes over task stacks and a module's ORC tables; then every CPU's trace and every
/// D-state task's, each bounded and ended with a reason.
pub fn stacks(data: &[u8]) {
    let Some(k) = patched_kernel(&base().stacks, data) else { return };
    for c in k.cpu_traces() {
        if let Ok(t) = c.trace {
            bounded(&t);
        }
    }
    let Ok((tasks, _)) = k.tasks() else { return };
    for t in tasks.iter().filter(|t| t.state_code == "UN") {
        if let Ok(tr) = k.task_trace(t) {
            bounded(&tr);
        }
    }
}

fn bounded(t: &lockscope_kernel::unwind::StackTrace) {
    assert!(t.frames.len() - t.scanned <= lockscope_kernel::unwind::MAX_FRAMES, "unbounded trace");
    assert!(t.scanned <= 64, "unbounded stack scan");
}

/// A fresh dump over the shared base image.
impl Base {
    pub fn dump(&self) -> Dump {
        Dump::from_shared(self.image.clone()).expect("the base image opens")
    }
}
