//! The one real dump shipped in the repository (`tests/data/dumps/`, makedumpfile `-c -d 31`
//! of the ipi_sleeping_holder.live case): values checked against the case's truth.json and
//! crash 8.0.2's `sys`/`bt -a` output on the same dump. Then the same memory in other shapes,
//! made at test time (nothing big is committed): a split set of three files built here from
//! its pages, and `write_kdump` conversions to every compression, a flattened stream, a split
//! set and zero pages stored once; every page must read back byte-identical.

mod common;

use common::{Abi, Spec};
use lockscope_dump::{
    Compression, CpuNumbering, Dump, DumpErrorKind, Format, PageState, ReadErrorKind, Registers, WriteOptions,
    X86_64Regs, write_kdump,
};
use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
}

fn dump() -> Dump {
    Dump::open(path()).expect("the repository's test dump opens")
}

/// PFNs compared: all in release builds, every 7th in debug ones (zlib is slow unoptimised).
fn sampled(max_pfn: u64) -> impl Iterator<Item = u64> {
    (0..max_pfn).step_by(if cfg!(debug_assertions) { 7 } else { 1 })
}

/// The same state and bytes for every sampled PFN, the same registers and VMCOREINFO.
fn assert_same_memory(want: &Dump, got: &Dump, what: &str) -> usize {
    let page = want.metadata().page_size;
    let (mut a, mut b) = (vec![0u8; page as usize], vec![0u8; page as usize]);
    let mut compared = 0;
    for pfn in sampled(want.metadata().max_pfn) {
        let addr = pfn * page;
        assert_eq!(want.page_state(addr), got.page_state(addr), "{what}: pfn {pfn:#x}");
        match (want.read_phys(addr, &mut a), got.read_phys(addr, &mut b)) {
            (Ok(()), Ok(())) => {
                assert!(a == b, "{what}: page {addr:#x} differs");
                compared += 1;
            }
            (Err(x), Err(y)) => assert_eq!(x.kind, y.kind, "{what}: pfn {pfn:#x}"),
            (x, y) => panic!("{what}: pfn {pfn:#x}: {x:?} / {y:?}"),
        }
    }
    assert_eq!(want.notes().prstatus, got.notes().prstatus, "{what}: registers");
    assert_eq!(want.notes().qemu, got.notes().qemu, "{what}: QEMU CPU state");
    assert!(want.vmcoreinfo().unwrap().entries().eq(got.vmcoreinfo().unwrap().entries()), "{what}: VMCOREINFO");
    compared
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

/// makedumpfile `--split` shape, built here with the test builder (not with `write_kdump`):
/// the real dump's pages re-encoded (snappy, some raw) into three files with full bitmaps.
#[test]
fn a_split_set_built_from_the_real_pages_reads_as_the_original() {
    let d = dump();
    let m = d.metadata();
    let page = m.page_size;
    let mut spec = Spec::new(Abi::Lp64, "x86_64", m.max_pfn);
    spec.release = "6.1.0-50-amd64";
    spec.status = 0x4;
    let mut buf = vec![0u8; page as usize];
    let mut dumped = Vec::new();
    for pfn in 0..m.max_pfn {
        match d.page_state(pfn * page) {
            PageState::Hole => continue,
            PageState::Dumped => {
                d.read_phys(pfn * page, &mut buf).unwrap();
                Spec::set(&mut spec.dumped, pfn);
                // Like makedumpfile: a page compression does not shrink is stored as is.
                let snappy = snap::raw::Encoder::new().compress_vec(&buf).unwrap();
                let stored = if pfn % 5 == 0 || snappy.len() >= buf.len() { (0, buf.clone()) } else { (0x4, snappy) };
                spec.pages.push((pfn, stored.0, stored.1));
                dumped.push(pfn);
            }
            _ => {}
        }
        Spec::set(&mut spec.ram, pfn);
    }
    let text: String = d.vmcoreinfo().unwrap().entries().map(|(k, v)| format!("{k}={v}\n")).collect();
    spec.add_vmcoreinfo(text.as_bytes());
    let cuts = [0, dumped[dumped.len() / 3], dumped[2 * dumped.len() / 3], m.max_pfn];
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            spec.split = Some((cuts[i], cuts[i + 1]));
            spec.build()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("vmcore.{}", i + 1))).collect();
    for (p, f) in paths.iter().zip(&files) {
        std::fs::write(p, f).unwrap();
    }
    let set = Dump::open_many(&[&paths[2], &paths[0], &paths[1]]).unwrap();
    assert_eq!(set.metadata().split_parts.iter().map(|p| p.file).collect::<Vec<_>>(), vec![1, 2, 0]);
    assert_eq!(set.metadata().compression, Compression::Snappy);
    assert!(!set.metadata().incomplete);
    // Registers are not in the built notes; memory and VMCOREINFO are compared here.
    let mut a = vec![0u8; page as usize];
    for &pfn in dumped.iter().step_by(if cfg!(debug_assertions) { 7 } else { 1 }) {
        d.read_phys(pfn * page, &mut buf).unwrap();
        set.read_phys(pfn * page, &mut a).unwrap();
        assert!(a == buf, "pfn {pfn:#x}");
    }
    for pfn in sampled(m.max_pfn) {
        assert_eq!(d.page_state(pfn * page), set.page_state(pfn * page), "pfn {pfn:#x}");
    }
    assert_eq!(set.vmcoreinfo().unwrap().kernel_offset(), Some(0x7600000));
    // The second file alone holds its third; a missing file is named in errors by index.
    let middle = Dump::open(&paths[1]).unwrap();
    let e = middle.read_phys(dumped[0] * page, &mut a).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::InOtherFile);
    let e = Dump::open_many(&[&paths[0], &dir.path().join("absent")]).err().unwrap();
    assert_eq!((e.file, matches!(e.kind, DumpErrorKind::Io(_))), (Some(1), true));
}

#[test]
fn conversions_made_at_test_time_read_byte_identical() {
    let d = dump();
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    let cases: [(&str, Compression, usize, bool, bool); 8] = [
        ("zlib", Compression::Zlib, 1, false, false),
        ("lzo", Compression::Lzo, 1, false, false),
        ("snappy", Compression::Snappy, 1, false, false),
        ("zstd", Compression::Zstd, 1, false, false),
        ("none", Compression::None, 1, false, false),
        ("flattened-zstd", Compression::Zstd, 1, true, false),
        ("split-snappy", Compression::Snappy, 3, false, false),
        ("zero-once-lzo", Compression::Lzo, 1, false, true),
    ];
    // Unoptimised, the Rust zlib/LZO/snappy encoders take a minute here: debug builds
    // convert with zstd (C, always optimised) and none only; release builds (CI) do all.
    let quick = cfg!(debug_assertions);
    let cases: Vec<_> =
        cases.into_iter().filter(|c| !quick || matches!(c.1, Compression::Zstd | Compression::None)).collect();
    let n = cases.len();
    for (name, compression, files, flattened, exclude_zero) in cases {
        let outs: Vec<PathBuf> = (0..files).map(|i| dir.path().join(format!("{name}.{i}"))).collect();
        let opts = WriteOptions { compression, flattened, exclude_zero, ..WriteOptions::new(compression) };
        let stats = write_kdump(&d, &outs, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stats.pages, 19466, "{name}: every dumped page written");
        let got = Dump::open_many(&outs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let gm = got.metadata();
        assert_eq!(gm.compression, compression, "{name}");
        assert_eq!(matches!(gm.format, Format::KdumpCompressed { flattened: true, .. }), flattened, "{name}");
        assert_eq!(gm.dump_level, Some(31), "{name}: dump level kept");
        assert_eq!((gm.partial, gm.incomplete), (true, false), "{name}");
        assert_eq!(
            (&gm.utsname, gm.date, gm.phys_base),
            (&d.metadata().utsname, d.metadata().date, d.metadata().phys_base)
        );
        total += assert_same_memory(&d, &got, name);
    }
    assert!(total >= n * 19466 / 7, "{total} pages compared");
}
