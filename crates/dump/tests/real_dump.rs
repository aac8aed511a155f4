//! The one real dump shipped in the repository (`tests/data/dumps/`, makedumpfile `-c -d 31`
//! of the ipi_sleeping_holder.live case): values checked against the case's truth.json and
//! crash 8.0.2's `sys`/`bt -a` output on the same dump.

use lockscope_dump::{Compression, CpuNumbering, Dump, Format, PageState, ReadErrorKind, Registers, X86_64Regs};
use std::path::PathBuf;

fn dump() -> Dump {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    Dump::open(path).expect("the repository's test dump opens")
}

fn x86(dump: &Dump, cpu: u32) -> X86_64Regs {
    let p = dump.notes().prstatus.iter().find(|p| p.cpu == cpu).expect("cpu has a note");
    match p.regs {
        Registers::X86_64(r) => r,
        other => panic!("not x86_64: {other:?}"),
    }
}

#[test]
fn metadata_matches_what_makedumpfile_wrote() {
    let d = dump();
    let m = d.metadata();
    assert_eq!(m.format, Format::KdumpCompressed { flattened: false, diskdump: false });
    assert_eq!(m.compression, Compression::Zlib);
    assert_eq!(m.header_version, Some(6));
    assert_eq!(m.dump_level, Some(31));
    assert_eq!(m.excluded_page_kinds().len(), 5);
    assert!(m.partial && !m.incomplete);
    assert_eq!(m.page_size, 4096);
    assert_eq!(m.nr_cpus, 4);
    assert_eq!(m.machine, "x86_64");
    assert_eq!(m.release.as_deref(), Some("6.1.0-50-amd64"));
    // 192 MiB guest: RAM ends at 0xc000000.
    let ranges = d.memory_ranges();
    assert_eq!(ranges.last().unwrap().end, 0xc000000);
}

#[test]
fn vmcoreinfo_agrees_with_truth() {
    let d = dump();
    let vi = d.vmcoreinfo().expect("vmcoreinfo");
    assert_eq!(vi.osrelease(), Some("6.1.0-50-amd64"));
    // truth.json: kaslr_offset 0x7600000, kaslr_text 0xffffffff88600000.
    assert_eq!(vi.kernel_offset(), Some(0x7600000));
    assert_eq!(vi.symbol("_stext"), Some(0xffffffff88600000));
    assert_eq!(vi.page_size(), Some(4096));
    assert_eq!(vi.phys_base(), Some(-0xa00000));
    assert_eq!(vi.number("pgtable_l5_enabled"), Some(0));
    assert_eq!(vi.size("page"), Some(64));
    assert_eq!(vi.offset("list_head.prev"), Some(8));
    assert_eq!(vi.number("PAGE_BUDDY_MAPCOUNT_VALUE"), Some(-129));
}

#[test]
fn registers_agree_with_crash_bt() {
    let d = dump();
    assert_eq!(d.notes().numbering, CpuNumbering::QemuIndex);
    assert_eq!(d.notes().prstatus.len(), 4);
    assert_eq!(d.notes().qemu.len(), 4);
    // crash `bt -a`, CPU 1 (text_poke, smp_call_function_many_cond+241).
    let r = x86(&d, 1);
    assert_eq!((r.rip, r.rsp, r.eflags), (0xffffffff8876fdc1, 0xffffd31c8036fe98, 0x202));
    assert_eq!((r.rax, r.rcx, r.rbx), (3, 1, 0xffff8bbb8b8b2e00));
    assert_eq!((r.cs, r.ss), (0x10, 0x18));
    // CPU 3 spins in native_queued_spin_lock_slowpath+48 on the lock in RDI.
    let r = x86(&d, 3);
    assert_eq!((r.rip, r.rsp, r.eflags), (0xffffffff8904f700, 0xffffd31c80363ed0, 0x2));
    assert_eq!((r.rdi, r.rbx, r.r15), (0xffffffffc054e0a0, 0xffffffffc054e0a0, 0xffffffffc054c7d0));
    // CPU 0 idles in native_safe_halt+11.
    assert_eq!(x86(&d, 0).rip, 0xffffffff8904e8cb);
    // QEMU's notes carry CR3 and the per-CPU GS base.
    let q = &d.notes().qemu[1];
    assert_eq!(q.regs.rip, 0xffffffff8876fdc1);
    assert_eq!(q.cr[3] & 0xfff, 0);
    assert_eq!(q.gs_base, 0xffff8bbb8b880000);
}

#[test]
fn reads_the_vmcoreinfo_note_page_from_physical_memory() {
    let d = dump();
    // truth.json: vmcoreinfo_note_paddr 0x1a60000, 1024 bytes: an ELF note "VMCOREINFO"
    // whose text is the same as the dump's own copy.
    let mut note = vec![0u8; 1024];
    d.read_phys(0x1a60000, &mut note).unwrap();
    assert_eq!(u32::from_le_bytes(note[0..4].try_into().unwrap()), 11);
    assert_eq!(&note[12..22], b"VMCOREINFO");
    let text_in_memory = &note[24..];
    assert!(text_in_memory.starts_with(b"OSRELEASE=6.1.0-50-amd64\n"));
    // An unaligned read across a page boundary goes through two pages.
    let mut across = [0u8; 64];
    d.read_phys(0x1a60000 - 32, &mut across).unwrap();
    assert_eq!(&across[32 + 12..32 + 22], b"VMCOREINFO");
    // Kernel text is present: phys(_stext) = _stext - __START_KERNEL_map + phys_base.
    let stext_phys = 0xffffffff88600000u64 - 0xffffffff80000000 - 0xa00000;
    assert_eq!(d.page_state(stext_phys), PageState::Dumped);
}

#[test]
fn holes_and_filtered_pages_are_told_apart() {
    let d = dump();
    // 0xa0000-0xc0000 is the legacy VGA hole.
    assert_eq!(d.page_state(0xa0000), PageState::Hole);
    let mut buf = [0u8; 8];
    let e = d.read_phys(0xa0000, &mut buf).unwrap_err();
    assert_eq!((e.kind, e.paddr), (ReadErrorKind::Hole, 0xa0000));
    // -d 31 filtered most RAM; the first filtered page reads as Filtered, or as zeros on request.
    let ranges = d.memory_ranges();
    let filtered = (0..0xc000u64)
        .map(|pfn| pfn * 4096)
        .find(|&a| d.page_state(a) == PageState::Filtered)
        .expect("a filtered page");
    assert!(ranges.iter().any(|r| r.start <= filtered && filtered < r.end));
    let e = d.read_phys(filtered, &mut buf).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Filtered);
    let mut page = vec![0xffu8; 4096];
    assert_eq!(d.read_phys_zero_filled(filtered, &mut page).unwrap(), 4096);
    assert!(page.iter().all(|&b| b == 0));
    // Beyond the end of RAM.
    assert_eq!(d.read_phys(1 << 40, &mut buf).unwrap_err().kind, ReadErrorKind::Hole);
}
