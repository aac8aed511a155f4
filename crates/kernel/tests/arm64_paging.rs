//! arm64 address translation, kallsyms and frame records on the real arm64 dump of
//! ../shared/corpus-arm64 (QEMU's kdump-zlib of Debian 6.1.0-50-arm64, 4 KiB pages, 48-bit
//! VA, KASLR): the walk from `swapper_pg_dir` must agree with the kernel image's formula
//! (`kimage_voffset`) and the linear map's (`PHYS_OFFSET`); through it the dump's kallsyms
//! decode and name each CPU's PC, and CPU 1's frame records give truth.json's frames.
//! Skipped without ../shared.

use lockscope_kernel::arch::AddressSpace;
use lockscope_kernel::arch::arm64::frames::{End, frame_records};
use lockscope_kernel::arch::arm64::paging::Paging;
use lockscope_kernel::kallsyms::{Symbols, Tables};
use lockscope_kernel::memory::KernelMemory;
use std::path::{Path, PathBuf};

fn dump_path() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus-arm64/ipi_sleeping_holder.live/vmcore.qemu-kdump-zlib");
    p.exists().then_some(p)
}

/// The dump, its VMCOREINFO and its paging; None (test skipped) without ../shared.
fn open(what: &str) -> Option<(PathBuf, lockscope_dump::Dump, lockscope_dump::VmcoreInfo, Paging)> {
    let Some(path) = dump_path() else {
        eprintln!("note: ../shared not found; arm64 {what} test skipped");
        return None;
    };
    let dump = lockscope_dump::Dump::open(&path).unwrap();
    let info = dump.vmcoreinfo().unwrap().clone();
    let p = Paging::from_vmcoreinfo(&info).unwrap();
    Some((path, dump, info, p))
}

/// The kernel's memory through `p`, and its kallsyms.
fn symbols(dump: lockscope_dump::Dump, info: &lockscope_dump::VmcoreInfo, p: Paging) -> (KernelMemory, Symbols) {
    let mem = KernelMemory::new(dump, std::sync::Arc::new(p));
    let syms = Symbols::load(&mem, &Tables::from_vmcoreinfo(info).unwrap()).unwrap();
    (mem, syms)
}

/// The test module's text, from truth.json.
fn module_text(path: &Path) -> std::ops::Range<u64> {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_file_name("truth.json")).unwrap()).unwrap();
    let text = truth["kernel"]["lockscen_module_sections"][".text"].as_str().unwrap();
    let start = u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap();
    start..start + 0x10000
}

/// (cpu, pc, lr, x29, pstate) of each CPU's note.
fn cpus(dump: &lockscope_dump::Dump) -> Vec<(u32, u64, u64, u64, u64)> {
    dump.notes()
        .prstatus
        .iter()
        .filter_map(|n| match n.regs {
            lockscope_dump::Registers::Aarch64(r) => Some((n.cpu, r.pc, r.x[30], r.x[29], r.pstate)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_walk_agrees_with_the_image_and_linear_formulas() {
    let Some((_, dump, info, p)) = open("translation") else { return };
    assert_eq!(p.levels(), 4);
    let stext = info.symbol("_stext").unwrap();
    let by_walk = p.translate(&dump, stext).unwrap();
    assert_eq!(by_walk.paddr, stext.wrapping_sub(p.kimage_voffset), "{}", p.describe());
    // The same physical page through the linear map: the formula (from PHYS_OFFSET) and the
    // kernel's own tables agree.
    let lin = p.linear_vaddr(p.pgd_phys);
    assert_eq!(p.translate(&dump, lin).unwrap().paddr, p.pgd_phys);
    assert_eq!(p.walk(&dump, lin).unwrap().paddr, p.pgd_phys, "linear {lin:#x}");
    assert_eq!(p.walk(&dump, p.linear_vaddr(by_walk.paddr)).unwrap().paddr, by_walk.paddr);
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    dump.read_phys(by_walk.paddr, &mut a).unwrap();
    dump.read_phys(p.translate(&dump, p.linear_vaddr(by_walk.paddr)).unwrap().paddr, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&x| x != 0), "kernel text at _stext is not zero");
    // A CPU's saved stack pointer (vmalloc'd stacks) translates by walking.
    let sp = dump.notes().prstatus.iter().map(|n| n.regs.sp()).find(|&sp| sp >= 0xffff_8000_0000_0000);
    if let Some(sp) = sp {
        assert!(p.translate(&dump, sp).is_ok(), "stack pointer {sp:#x}");
    }
}

/// Through the walk, the dump's own kallsyms decode (text symbols only: this kernel has no
/// `CONFIG_KALLSYMS_ALL`), and each CPU's saved PC names the function truth.json says it ran.
#[test]
fn kallsyms_through_the_walk_names_each_cpus_pc() {
    let Some((path, dump, info, p)) = open("kallsyms") else { return };
    let cpus = cpus(&dump);
    let (_mem, syms) = symbols(dump, &info, p);
    assert!(syms.len() > 10_000, "{} symbols", syms.len());
    let func = |pc: u64| syms.lookup(pc).map(|s| s.format(pc)).unwrap_or_default();
    let cpu = |c: u32| *cpus.iter().find(|x| x.0 == c).unwrap();
    // CPU 1 waits for the cross-CPU call; CPU 3 spins on the lock with IRQs masked (PSTATE.I),
    // called straight from the module (its LR is in the module's text); 0 and 2 are idle.
    let (_, pc1, _, _, pstate1) = cpu(1);
    assert!(func(pc1).starts_with("smp_call_function_many_cond+"), "{}", func(pc1));
    assert_eq!(pstate1 >> 7 & 1, 0, "CPU 1 takes interrupts");
    let (_, pc3, lr3, _, pstate3) = cpu(3);
    assert!(func(pc3).starts_with("queued_spin_lock_slowpath+"), "{}", func(pc3));
    assert_eq!(pstate3 >> 7 & 1, 1, "CPU 3 has IRQs masked");
    assert!(module_text(&path).contains(&lr3), "LR {lr3:#x}");
    for c in [0, 2] {
        assert!(func(cpu(c).1).starts_with("cpu_do_idle+"), "CPU {c}: {}", func(cpu(c).1));
    }
}

/// CPU 1's frame records (from x29 in its note) give truth.json's frames above the
/// interrupted function: on_each_cpu_cond_mask, the module's flush_cpu_caches_demo and
/// text_poke_fn, then kthread and ret_from_fork, where the final zero record ends them.
#[test]
fn frame_records_walk_cpu_1_to_ret_from_fork() {
    let Some((path, dump, info, p)) = open("frame-record") else { return };
    let fp = cpus(&dump).iter().find(|c| c.0 == 1).unwrap().3;
    let pac = info.number("KERNELPACMASK").map_or(0, |m| m as u64);
    let (mem, syms) = symbols(dump, &info, p);
    let (records, end) = frame_records(&mem, fp, pac);
    assert_eq!(end, End::Outermost, "{records:x?}");
    let module = module_text(&path);
    // Core-kernel return addresses by name, module ones as "[module]".
    let names: Vec<String> = records
        .iter()
        .map(|r| match module.contains(&r.lr) {
            true => "[module]".to_string(),
            false => syms.lookup(r.lr).map(|s| s.name.to_string()).unwrap_or_default(),
        })
        .collect();
    assert_eq!(names, ["on_each_cpu_cond_mask", "[module]", "[module]", "kthread", "ret_from_fork"], "{records:x?}");
}
