//! The kdump writer on small dumps built here: every compression round-trips every page state
//! (dumped, filtered, hole, lost), the source's byte order and 32-bit layout and header fields
//! survive, zero pages are stored once, split sets and flattened streams read back the same,
//! and bad requests (output = input, output exists, corrupt input, mismatched split parts)
//! are typed errors that leave no file behind and never touch the input.

mod common;

use common::{Abi, Spec};
use lockscope_dump::{
    Compression, Dump, DumpErrorKind, PageState, ReadErrorKind, WriteErrorKind, WriteOptions, write_kdump,
    write_kdump_to_memory,
};

const BS: usize = 4096;
const MAX_PFN: u64 = 100;

fn page_of(seed: u8) -> Vec<u8> {
    (0..BS).map(|i| seed.wrapping_mul(31) ^ (i % 253) as u8 ^ (i / 97) as u8).collect()
}

/// RAM 0..80; dumped: 2..40 (data), 40..44 (zeros), 50 (lost: descriptor never written);
/// 44..50 and 51..80 filtered.
fn source(abi: Abi, machine: &str, big_endian: bool) -> Vec<u8> {
    let mut s = Spec::new(abi, machine, MAX_PFN);
    s.big_endian = big_endian;
    for pfn in 0..80 {
        Spec::set(&mut s.ram, pfn);
    }
    for pfn in (2..44).chain([50]) {
        Spec::set(&mut s.dumped, pfn);
        let data = if pfn >= 40 { vec![0u8; BS] } else { page_of(pfn as u8) };
        s.pages.push((pfn, 0, data));
    }
    s.add_vmcoreinfo(b"OSRELEASE=5.10.0-test\nPAGESIZE=4096\nKERNELOFFSET=1000000\n");
    let mut f = s.build();
    // Zero the last descriptor (PFN 50): an incomplete dump never wrote it.
    let desc = f.len() - (42 + 1) * BS - 24;
    f[desc..desc + 24].fill(0);
    f
}

/// Every PFN reads the same (data or error kind) from both dumps.
fn assert_same_memory(a: &Dump, b: &Dump, what: &str) {
    let mut x = vec![0u8; BS];
    let mut y = vec![0u8; BS];
    for pfn in 0..a.metadata().max_pfn.max(b.metadata().max_pfn) + 2 {
        let addr = pfn * BS as u64;
        assert_eq!(a.page_state(addr), b.page_state(addr), "{what}: state of pfn {pfn}");
        match (a.read_phys(addr, &mut x), b.read_phys(addr, &mut y)) {
            (Ok(()), Ok(())) => assert!(x == y, "{what}: pfn {pfn} differs"),
            (Err(e), Err(f)) => assert_eq!(e.kind, f.kind, "{what}: pfn {pfn}"),
            (l, r) => panic!("{what}: pfn {pfn}: {l:?} vs {r:?}"),
        }
    }
    assert_eq!(a.notes().prstatus, b.notes().prstatus, "{what}");
    let (va, vb) = (a.vmcoreinfo().unwrap(), b.vmcoreinfo().unwrap());
    assert!(va.entries().eq(vb.entries()), "{what}: VMCOREINFO");
}

fn opts(c: Compression) -> WriteOptions {
    WriteOptions { threads: 2, ..WriteOptions::new(c) }
}

#[test]
fn every_compression_round_trips_every_page_state_and_keeps_the_source_layout() {
    let cases = [(Abi::Lp64, "x86_64", false), (Abi::Ilp32Packed, "i686", false), (Abi::Ilp32Aligned, "ppc", true)];
    for (abi, machine, big) in cases {
        let src = Dump::from_bytes(source(abi, machine, big)).unwrap();
        assert_eq!(src.page_state(50 * BS as u64), PageState::Lost);
        for c in [Compression::Zlib, Compression::Lzo, Compression::Snappy, Compression::Zstd, Compression::None] {
            let what = format!("{machine} {c:?}");
            let (files, stats) = write_kdump_to_memory(&src, 1, &opts(c)).unwrap();
            let out = Dump::from_bytes(files.into_iter().next().unwrap()).unwrap();
            assert_same_memory(&src, &out, &what);
            let (m, n) = (src.metadata(), out.metadata());
            assert_eq!(n.compression, c, "{what}");
            assert_eq!(n.kdump_layout, m.kdump_layout, "{what}: byte order and C layout kept");
            assert_eq!(
                (&n.utsname, n.date, n.phys_base, n.dump_level, n.nr_cpus, n.current_cpu, n.max_pfn),
                (&m.utsname, m.date, m.phys_base, m.dump_level, m.nr_cpus, m.current_cpu, m.max_pfn),
                "{what}: header fields kept"
            );
            assert!(n.incomplete && n.partial, "{what}: a lost page keeps the dump incomplete");
            assert_eq!((stats.pages, stats.lost_pages, stats.zero_pages), (43, 1, 0), "{what}");
        }
    }
}

#[test]
fn zero_pages_are_stored_once_and_still_read_as_zeros() {
    let src = Dump::from_bytes(source(Abi::Lp64, "x86_64", false)).unwrap();
    let plain = write_kdump_to_memory(&src, 1, &opts(Compression::None)).unwrap();
    let o = WriteOptions { exclude_zero: true, ..opts(Compression::None) };
    let (files, stats) = write_kdump_to_memory(&src, 1, &o).unwrap();
    assert_eq!(stats.zero_pages, 4);
    // Four zero pages in, one stored.
    assert_eq!(plain.0[0].len() - files[0].len(), 3 * BS);
    let out = Dump::from_bytes(files.into_iter().next().unwrap()).unwrap();
    assert_same_memory(&src, &out, "exclude zero");
    assert_eq!(out.metadata().dump_level, Some(31 | 1));
}

#[test]
fn split_sets_and_flattened_streams_read_back_the_same() {
    let src = Dump::from_bytes(source(Abi::Lp64, "x86_64", false)).unwrap();
    let (mut files, stats) = write_kdump_to_memory(&src, 3, &opts(Compression::Zstd)).unwrap();
    assert_eq!(stats.files.iter().map(|f| f.pages).collect::<Vec<_>>(), vec![14, 14, 15]);
    assert_eq!((stats.files[0].start_pfn, stats.files[2].end_pfn), (0, MAX_PFN));
    // Given in any order.
    files.swap(0, 2);
    let set = Dump::from_bytes_many(files.clone()).unwrap();
    assert_same_memory(&src, &set, "split set");
    assert_eq!(set.metadata().split_parts.len(), 3);
    assert_eq!(set.metadata().split, Some((0, MAX_PFN)));
    // One file alone: its own pages read, the others are in other files.
    let alone = Dump::from_bytes(files[1].clone()).unwrap();
    let (s, e) = alone.metadata().split.unwrap();
    let mut buf = vec![0u8; BS];
    let inside = (s..e).find(|&p| alone.page_state(p * BS as u64) == PageState::Dumped).unwrap();
    alone.read_phys(inside * BS as u64, &mut buf).unwrap();
    let outside = if s > 2 { 2 } else { 39 };
    assert_eq!(alone.read_phys(outside * BS as u64, &mut buf).unwrap_err().kind, ReadErrorKind::InOtherFile);
    // Two of three: the missing range reads as in another file, and the set is incomplete.
    let two = Dump::from_bytes_many(vec![files[0].clone(), files[2].clone()]).unwrap();
    assert!(two.metadata().incomplete);
    let missing = two.read_phys(inside * BS as u64, &mut buf).unwrap_err();
    assert_eq!((missing.kind, missing.file), (ReadErrorKind::InOtherFile, None), "no given file holds it");
    // The same part twice, a whole dump, or a part of another dump are refused by index.
    let e = Dump::from_bytes_many(vec![files[0].clone(), files[1].clone(), files[0].clone()]).err().unwrap();
    assert_eq!(
        (e.kind, e.file),
        (DumpErrorKind::SplitSet("their PFN ranges overlap (the same part given twice?)"), Some(2))
    );
    let whole = write_kdump_to_memory(&src, 1, &opts(Compression::Zlib)).unwrap().0.remove(0);
    let e = Dump::from_bytes_many(vec![files[0].clone(), whole]).err().unwrap();
    assert_eq!((e.file, matches!(e.kind, DumpErrorKind::SplitSet(_))), (Some(1), true));
    let mut other = files[1].clone();
    other[12 + 65] = b'X'; // nodename
    let e = Dump::from_bytes_many(vec![files[0].clone(), other]).err().unwrap();
    assert_eq!((e.file, matches!(e.kind, DumpErrorKind::SplitSet(_))), (Some(1), true));
    assert!(e.to_string().starts_with("file 2 of the set: not parts of one split dump"), "{e}");

    // Flattened, whole and split.
    for n in [1, 2] {
        let o = WriteOptions { flattened: true, ..opts(Compression::Snappy) };
        let (files, _) = write_kdump_to_memory(&src, n, &o).unwrap();
        assert!(files.iter().all(|f| f.starts_with(b"makedumpfile")));
        let d = Dump::from_bytes_many(files).unwrap();
        assert!(matches!(d.metadata().format, lockscope_dump::Format::KdumpCompressed { flattened: true, .. }));
        assert_same_memory(&src, &d, "flattened");
    }
    // More files than pages.
    let e = write_kdump_to_memory(&src, 44, &opts(Compression::Zlib)).err().unwrap();
    assert!(matches!(e.kind, WriteErrorKind::BadRequest(_)));
}

#[test]
fn outputs_never_replace_the_input_and_failures_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vmcore");
    let bytes = source(Abi::Lp64, "x86_64", false);
    std::fs::write(&input, &bytes).unwrap();
    let src = Dump::open(&input).unwrap();
    let o = WriteOptions { overwrite: true, ..opts(Compression::Zstd) };
    let e = write_kdump(&src, &[&input], &o, &mut |_| {}).err().unwrap();
    assert_eq!((e.kind, e.file), (WriteErrorKind::OutputIsInput, Some(0)));
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let e = write_kdump(&src, &[dir.path().join("a"), link.clone()], &o, &mut |_| {}).err().unwrap();
    assert_eq!((e.kind, e.file), (WriteErrorKind::OutputIsInput, Some(1)));
    assert_eq!(std::fs::read(&input).unwrap(), bytes, "input untouched");

    let out = dir.path().join("out");
    let mut seen = 0;
    let stats = write_kdump(&src, &[&out], &opts(Compression::Zstd), &mut |p| seen = p.pages_done).unwrap();
    assert_eq!((seen, std::fs::metadata(&out).unwrap().len()), (43, stats.bytes));
    assert_same_memory(&src, &Dump::open(&out).unwrap(), "file");
    let e = write_kdump(&src, &[&out], &opts(Compression::Zstd), &mut |_| {}).err().unwrap();
    assert_eq!(e.kind, WriteErrorKind::OutputExists);

    // A corrupt page in the input: a typed error naming the page, and no output left.
    let mut bad = bytes.clone();
    let first_data = bad.len() - 43 * BS;
    bad[first_data..first_data + BS].fill(0xee);
    let desc = first_data - 43 * 24;
    bad[desc + 12..desc + 16].copy_from_slice(&1u32.to_le_bytes()); // says zlib, is not
    let corrupt = Dump::from_bytes(bad).unwrap();
    let failed = dir.path().join("failed");
    let e = write_kdump(&corrupt, &[&failed], &opts(Compression::Lzo), &mut |_| {}).err().unwrap();
    match e.kind {
        WriteErrorKind::Input(r) => {
            assert_eq!((r.kind, r.paddr, r.offset), (ReadErrorKind::Corrupt, 2 * BS as u64, Some(first_data as u64)))
        }
        k => panic!("{k:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "only vmcore, link and out: {left:?}");
}

#[test]
fn an_elf_core_becomes_a_kdump_file_with_what_it_knows() {
    // ELF64 core, one PT_NOTE (VMCOREINFO) and one PT_LOAD of 3 pages whose last is excluded.
    let vmcoreinfo = common::note(b"VMCOREINFO", 0, b"OSRELEASE=6.6.0\nPAGESIZE=4096\nCRASHTIME=1700000000\n", false);
    let mut f = vec![0u8; 64 + 2 * 56];
    f[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    f[16..18].copy_from_slice(&4u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let note_at = f.len() as u64;
    let load_at = note_at + vmcoreinfo.len() as u64;
    let ph = |f: &mut Vec<u8>, i: usize, t: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
        let p = 64 + 56 * i;
        f[p..p + 4].copy_from_slice(&t.to_le_bytes());
        f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        f[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
        f[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
        f[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
    };
    ph(&mut f, 0, 4, note_at, 0, vmcoreinfo.len() as u64, 0);
    ph(&mut f, 1, 1, load_at, 0x10000, 2 * BS as u64, 3 * BS as u64);
    f.extend(vmcoreinfo);
    f.extend(page_of(1));
    f.extend(page_of(2));
    let elf = Dump::from_bytes(f).unwrap();
    let (files, stats) = write_kdump_to_memory(&elf, 1, &opts(Compression::Zlib)).unwrap();
    assert_eq!(stats.pages, 2);
    let k = Dump::from_bytes(files.into_iter().next().unwrap()).unwrap();
    assert_same_memory(&elf, &k, "ELF to kdump");
    assert_eq!(k.page_state(0x12000), PageState::Filtered);
    let m = k.metadata();
    let u = m.utsname.as_ref().unwrap();
    assert_eq!((u.machine.as_str(), u.release.as_str(), m.date), ("x86_64", "6.6.0", Some(1_700_000_000)));
    assert_eq!(m.arch, lockscope_dump::Arch::X86_64);
}
