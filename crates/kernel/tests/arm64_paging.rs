//! arm64 address translation on the real arm64 dump of ../shared/corpus-arm64 (QEMU's
//! kdump-zlib of Debian 6.1.0-50-arm64, 4 KiB pages, 48-bit VA, KASLR): the walk from
//! `swapper_pg_dir` must agree with the kernel image's formula (`kimage_voffset`) on `_stext`
//! and the linear map's formula (`PHYS_OFFSET`) on the page tables' own page, and the text it
//! reads at `_stext` must be the same bytes both ways. Skipped without ../shared.

use lockscope_kernel::arch::AddressSpace;
use lockscope_kernel::arch::arm64::paging::Paging;
use std::path::PathBuf;

fn dump_path() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus-arm64/ipi_sleeping_holder.live/vmcore.qemu-kdump-zlib");
    p.exists().then_some(p)
}

#[test]
fn the_walk_agrees_with_the_image_and_linear_formulas() {
    let Some(path) = dump_path() else {
        eprintln!("note: ../shared not found; arm64 translation test skipped");
        return;
    };
    let dump = lockscope_dump::Dump::open(&path).unwrap();
    let info = dump.vmcoreinfo().unwrap();
    let p = Paging::new(
        info.symbol("swapper_pg_dir").unwrap(),
        info.page_size().unwrap(),
        info.number("VA_BITS").unwrap() as u32,
        info.number("PHYS_OFFSET").unwrap() as u64,
        info.number("kimage_voffset").unwrap() as u64,
    );
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
    let Some(path) = dump_path() else {
        eprintln!("note: ../shared not found; arm64 kallsyms test skipped");
        return;
    };
    let dump = lockscope_dump::Dump::open(&path).unwrap();
    let info = dump.vmcoreinfo().unwrap().clone();
    let p = Paging::new(
        info.symbol("swapper_pg_dir").unwrap(),
        info.page_size().unwrap(),
        info.number("VA_BITS").unwrap() as u32,
        info.number("PHYS_OFFSET").unwrap() as u64,
        info.number("kimage_voffset").unwrap() as u64,
    );
    let cpus: Vec<(u32, u64, u64, u64)> = dump
        .notes()
        .prstatus
        .iter()
        .filter_map(|n| match n.regs {
            lockscope_dump::Registers::Aarch64(r) => Some((n.cpu, r.pc, r.x[30], r.pstate)),
            _ => None,
        })
        .collect();
    let mem = lockscope_kernel::memory::KernelMemory::new(dump, std::sync::Arc::new(p));
    let tables = lockscope_kernel::kallsyms::Tables::from_vmcoreinfo(&info).unwrap();
    let syms = lockscope_kernel::kallsyms::Symbols::load(&mem, &tables).unwrap();
    assert!(syms.len() > 10_000, "{} symbols", syms.len());
    let func = |pc: u64| syms.lookup(pc).map(|s| s.format(pc)).unwrap_or_default();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_file_name("truth.json")).unwrap()).unwrap();
    let module_text = u64::from_str_radix(
        truth["kernel"]["lockscen_module_sections"][".text"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let cpu = |c: u32| *cpus.iter().find(|x| x.0 == c).unwrap();
    // CPU 1 waits for the cross-CPU call; CPU 3 spins on the lock with IRQs masked (PSTATE.I),
    // called straight from the module (its LR is in the module's text); 0 and 2 are idle.
    let (_, pc1, _, pstate1) = cpu(1);
    assert!(func(pc1).starts_with("smp_call_function_many_cond+"), "{}", func(pc1));
    assert_eq!(pstate1 >> 7 & 1, 0, "CPU 1 takes interrupts");
    let (_, pc3, lr3, pstate3) = cpu(3);
    assert!(func(pc3).starts_with("queued_spin_lock_slowpath+"), "{}", func(pc3));
    assert_eq!(pstate3 >> 7 & 1, 1, "CPU 3 has IRQs masked");
    assert!((module_text..module_text + 0x10000).contains(&lr3), "LR {lr3:#x}");
    for c in [0, 2] {
        assert!(func(cpu(c).1).starts_with("cpu_do_idle+"), "CPU {c}: {}", func(cpu(c).1));
    }
}

/// CPU 1's frame records (from x29 in its note) give truth.json's frames above the
/// interrupted function: on_each_cpu_cond_mask, the module's flush_cpu_caches_demo and
/// text_poke_fn, then kthread and ret_from_fork, where x29 ends at 0.
#[test]
fn frame_records_walk_cpu_1_to_ret_from_fork() {
    use lockscope_kernel::arch::arm64::frames::{End, frame_records};
    let Some(path) = dump_path() else {
        eprintln!("note: ../shared not found; arm64 frame-record test skipped");
        return;
    };
    let dump = lockscope_dump::Dump::open(&path).unwrap();
    let info = dump.vmcoreinfo().unwrap().clone();
    let p = Paging::new(
        info.symbol("swapper_pg_dir").unwrap(),
        info.page_size().unwrap(),
        info.number("VA_BITS").unwrap() as u32,
        info.number("PHYS_OFFSET").unwrap() as u64,
        info.number("kimage_voffset").unwrap() as u64,
    );
    let fp = dump
        .notes()
        .prstatus
        .iter()
        .find(|n| n.cpu == 1)
        .and_then(|n| match n.regs {
            lockscope_dump::Registers::Aarch64(r) => Some(r.x[29]),
            _ => None,
        })
        .unwrap();
    let pac = info.number("KERNELPACMASK").map_or(0, |m| m as u64);
    let mem = lockscope_kernel::memory::KernelMemory::new(dump, std::sync::Arc::new(p));
    let syms = lockscope_kernel::kallsyms::Symbols::load(
        &mem,
        &lockscope_kernel::kallsyms::Tables::from_vmcoreinfo(&info).unwrap(),
    )
    .unwrap();
    let (records, end) = frame_records(&mem, fp, pac);
    assert_eq!(end, End::Outermost, "{records:x?}");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_file_name("truth.json")).unwrap()).unwrap();
    let module_text = u64::from_str_radix(
        truth["kernel"]["lockscen_module_sections"][".text"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    // Core-kernel return addresses by name, module ones as "[module]".
    let names: Vec<String> = records
        .iter()
        .map(|r| {
            if (module_text..module_text + 0x10000).contains(&r.lr) {
                "[module]".to_string()
            } else {
                syms.lookup(r.lr).map(|s| s.name.to_string()).unwrap_or_default()
            }
        })
        .collect();
    assert_eq!(names, ["on_each_cpu_cond_mask", "[module]", "[module]", "kthread", "ret_from_fork"], "{records:x?}");
}
