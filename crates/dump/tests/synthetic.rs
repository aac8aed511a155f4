//! Edge cases the real corpus lacks, on small dumps built here: every page compression
//! (snappy and zstd have no writer on this machine), 32-bit kdump headers (both sub-header
//! packings, both byte orders, with and without a known machine), damaged descriptors and data,
//! truncated files, absurd header values, flattened streams out of order, and ELF cores with
//! PN_XNUM, overlapping segments and excluded tails. The real dumps are tested elsewhere.

mod common;

use common::{Abi, Spec};
use flate2::write::ZlibEncoder;
use lockscope_dump::{Dump, DumpErrorKind, Format, PageState, ReadErrorKind, SubHeaderLayout};
use std::io::Write;

const BS: usize = 4096;
const MAX_PFN: u64 = 8 * BS as u64; // one block per bitmap

/// One page of a synthetic kdump file: (pfn, page_desc flags, stored bytes).
type Page = (u64, u32, Vec<u8>);

fn page_of(byte: u8) -> Vec<u8> {
    (0..BS).map(|i| byte ^ (i % 251) as u8).collect()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zstd frame of one RLE block (no encoder needed): single segment, 2-byte content size.
fn zstd_rle(byte: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x60];
    v.extend_from_slice(&((len - 256) as u16).to_le_bytes());
    let block = 1u32 | (1 << 1) | ((len as u32) << 3);
    v.extend_from_slice(&block.to_le_bytes()[..3]);
    v.push(byte);
    v
}

fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(name);
    v.push(0);
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// A 64-bit little-endian kdump-compressed file, header version 6, with `ram` PFNs marked as
/// RAM and `pages` dumped (descriptors in PFN order).
fn kdump(ram: std::ops::Range<u64>, pages: &[Page], notes: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 4 * BS];
    f[..8].copy_from_slice(b"KDUMP   ");
    f[8..12].copy_from_slice(&6i32.to_le_bytes());
    f[12 + 4 * 65..12 + 4 * 65 + 6].copy_from_slice(b"x86_64");
    f[12 + 2 * 65..12 + 2 * 65 + 5].copy_from_slice(b"6.1.0");
    f[424..428].copy_from_slice(&1u32.to_le_bytes()); // zlib
    f[428..432].copy_from_slice(&(BS as i32).to_le_bytes());
    f[432..436].copy_from_slice(&1i32.to_le_bytes()); // sub-header: 1 block
    f[436..440].copy_from_slice(&2u32.to_le_bytes()); // bitmaps: 1 block each
    f[440..444].copy_from_slice(&(MAX_PFN as u32).to_le_bytes());
    f[460..464].copy_from_slice(&2i32.to_le_bytes());
    let sub = BS;
    f[sub + 8..sub + 12].copy_from_slice(&31i32.to_le_bytes());
    let note_off = (sub + 128) as u64;
    f[sub + 48..sub + 56].copy_from_slice(&note_off.to_le_bytes());
    f[sub + 56..sub + 64].copy_from_slice(&(notes.len() as u64).to_le_bytes());
    f[sub + 96..sub + 104].copy_from_slice(&MAX_PFN.to_le_bytes());
    f[sub + 128..sub + 128 + notes.len()].copy_from_slice(notes);
    for pfn in ram {
        f[2 * BS + (pfn / 8) as usize] |= 1 << (pfn % 8);
    }
    for (pfn, _, _) in pages {
        f[3 * BS + (*pfn / 8) as usize] |= 1 << (pfn % 8);
    }
    let mut data_off = 4 * BS + 24 * pages.len();
    let mut descs = Vec::new();
    let mut data = Vec::new();
    for (_, flags, bytes) in pages {
        descs.extend_from_slice(&(data_off as i64).to_le_bytes());
        descs.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        descs.extend_from_slice(&flags.to_le_bytes());
        descs.extend_from_slice(&0u64.to_le_bytes());
        data.extend_from_slice(bytes);
        data_off += bytes.len();
    }
    f.extend(descs);
    f.extend(data);
    f
}

fn all_kinds() -> Vec<Page> {
    vec![
        (1, 0, page_of(1)),
        (2, 0x1, zlib(&page_of(2))),
        (3, 0x2, lzokay::compress::compress(&page_of(3)).unwrap()),
        (4, 0x4, snap::raw::Encoder::new().compress_vec(&page_of(4)).unwrap()),
        (5, 0x20, zstd_rle(5, BS)),
    ]
}

fn read_page(d: &Dump, pfn: u64) -> Result<Vec<u8>, lockscope_dump::ReadError> {
    let mut buf = vec![0u8; BS];
    d.read_phys(pfn * BS as u64, &mut buf).map(|_| buf)
}

#[test]
fn every_compression_decodes_and_page_states_are_told_apart() {
    let d = Dump::from_bytes(kdump(0..16, &all_kinds(), &[])).unwrap();
    for pfn in 1..=4 {
        assert_eq!(read_page(&d, pfn).unwrap(), page_of(pfn as u8), "pfn {pfn}");
    }
    assert_eq!(read_page(&d, 5).unwrap(), vec![5u8; BS]);
    assert_eq!(d.page_state(0), PageState::Filtered);
    assert_eq!(read_page(&d, 0).unwrap_err().kind, ReadErrorKind::Filtered);
    assert_eq!(read_page(&d, 16).unwrap_err().kind, ReadErrorKind::Hole);
    assert_eq!(read_page(&d, MAX_PFN + 1).unwrap_err().kind, ReadErrorKind::Hole);
    // A read spanning dumped pages 1..=3 crosses two page boundaries and the cache.
    let mut three = vec![0u8; 3 * BS];
    d.read_phys(BS as u64, &mut three).unwrap();
    assert_eq!(&three[2 * BS..], &page_of(3)[..]);
    let m = d.metadata();
    assert_eq!((m.dump_level, m.partial, m.nr_cpus, m.release.as_deref()), (Some(31), true, 2, Some("6.1.0")));
    let ranges = d.memory_ranges();
    assert_eq!((ranges.len(), ranges[0].end, ranges[0].dumped_bytes), (1, 16 * BS as u64, 5 * BS as u64));
}

#[test]
fn damaged_pages_are_lost_or_corrupt_never_a_panic() {
    let mut pages = all_kinds();
    pages.push((6, 0x1, b"not zlib at all".to_vec()));
    pages.push((7, 0x40, page_of(7))); // unknown compression flag
    pages.push((8, 0, page_of(8)[..100].to_vec())); // raw but short
    pages.push((9, 0x2, vec![0x11, 0, 0])); // LZO end marker only: too little output
    let mut f = kdump(0..16, &pages, &[]);
    let desc = |pfn: usize| 4 * BS + 24 * (pfn - 1);
    // pfn 1: descriptor offset 0 (never written); pfn 2: size larger than a page.
    f[desc(1)..desc(1) + 8].copy_from_slice(&0i64.to_le_bytes());
    f[desc(2) + 8..desc(2) + 12].copy_from_slice(&(BS as u32 + 1).to_le_bytes());
    // pfn 3: data beyond the end of the file.
    f[desc(3)..desc(3) + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    let d = Dump::from_bytes(f).unwrap();
    let kind = |pfn| read_page(&d, pfn).unwrap_err().kind;
    assert_eq!(kind(1), ReadErrorKind::Lost);
    assert_eq!(kind(2), ReadErrorKind::BadDescriptor);
    // Past the end of the data the table describes: the descriptor is wrong, the file is whole.
    assert_eq!(kind(3), ReadErrorKind::BadDescriptor);
    assert_eq!(read_page(&d, 4).unwrap(), page_of(4));
    assert_eq!(kind(6), ReadErrorKind::Corrupt);
    assert_eq!(kind(7), ReadErrorKind::UnsupportedCompression);
    assert_eq!(kind(8), ReadErrorKind::Corrupt);
    assert_eq!(kind(9), ReadErrorKind::Corrupt);
    let e = read_page(&d, 2).unwrap_err();
    assert_eq!(e.offset, Some(desc(2) as u64), "the error names the descriptor");

    // Descriptors cut off by the end of the file (an incomplete dump).
    let f = kdump(0..16, &all_kinds(), &[]);
    let cut = 4 * BS + 24 * 2 + 10;
    let d = Dump::from_bytes(f[..cut].to_vec()).unwrap();
    let truncated = ReadErrorKind::Truncated { file_size: cut as u64 };
    assert_eq!(read_page(&d, 1).unwrap_err().kind, truncated);
    let e = read_page(&d, 4).unwrap_err();
    assert_eq!((e.kind, e.offset), (truncated, Some(4 * BS as u64 + 24 * 3)));
}

#[test]
fn absurd_or_truncated_headers_are_typed_errors() {
    let good = kdump(0..16, &all_kinds(), &note(b"VMCOREINFO", 0, b"OSRELEASE=6.1.0\n"));
    assert_eq!(Dump::from_bytes(good.clone()).unwrap().vmcoreinfo().unwrap().osrelease(), Some("6.1.0"));
    let with = |off: usize, bytes: &[u8]| {
        let mut f = good.clone();
        f[off..off + bytes.len()].copy_from_slice(bytes);
        Dump::from_bytes(f).err().expect("refused")
    };
    let e = with(428, &3i32.to_le_bytes());
    assert_eq!((e.kind, e.offset), (DumpErrorKind::BadHeader("block_size is not a page size"), 428));
    assert!(matches!(with(436, &u32::MAX.to_le_bytes()).kind, DumpErrorKind::BadHeader(_)));
    let e = with(436, &0x7fff_fffeu32.to_le_bytes());
    assert_eq!((e.kind, e.offset), (DumpErrorKind::Truncated, 2 * BS as u64));
    assert!(matches!(with(8, &0x7fff_ffffi32.to_le_bytes()).kind, DumpErrorKind::BadHeader(_)));
    assert!(matches!(with(BS + 56, &u64::MAX.to_le_bytes()).kind, DumpErrorKind::BadHeader(_)));
    assert_eq!(with(BS + 48, &(1u64 << 50).to_le_bytes()).kind, DumpErrorKind::Truncated);
    // A header far larger than the bitmaps: bounded by them, no giant allocation.
    let mut f = good.clone();
    f[BS + 96..BS + 104].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(Dump::from_bytes(f).unwrap().metadata().max_pfn, MAX_PFN);
    // Truncated anywhere in the headers or bitmaps.
    for cut in [0, 7, 100, 463, BS + 50, 2 * BS + 10, 4 * BS - 1] {
        let e = Dump::from_bytes(good[..cut].to_vec()).err().unwrap_or_else(|| panic!("cut at {cut} accepted"));
        assert!(matches!(e.kind, DumpErrorKind::Truncated | DumpErrorKind::UnknownFormat), "cut {cut}: {e}");
    }
    assert_eq!(Dump::from_bytes(b"hello".to_vec()).err().unwrap().kind, DumpErrorKind::UnknownFormat);
    assert!(matches!(Dump::open("/nonexistent/vmcore").err().unwrap().kind, DumpErrorKind::Io(_)));
}

#[test]
fn flattened_stream_in_any_record_order_reads_like_the_file() {
    let plain = kdump(0..16, &all_kinds(), &[]);
    let mut f = vec![0u8; 4096];
    f[..12].copy_from_slice(b"makedumpfile");
    f[16..24].copy_from_slice(&1i64.to_be_bytes());
    f[24..32].copy_from_slice(&1i64.to_be_bytes());
    // Records of 1000 bytes, written back to front, plus a stale copy overwritten later.
    f.extend_from_slice(&0i64.to_be_bytes());
    f.extend_from_slice(&8i64.to_be_bytes());
    f.extend_from_slice(b"garbage!");
    let chunks: Vec<(usize, &[u8])> = plain.chunks(1000).enumerate().map(|(i, c)| (i * 1000, c)).collect();
    for (off, c) in chunks.iter().rev() {
        f.extend_from_slice(&(*off as i64).to_be_bytes());
        f.extend_from_slice(&(c.len() as i64).to_be_bytes());
        f.extend_from_slice(c);
    }
    f.extend_from_slice(&(-1i64).to_be_bytes());
    f.extend_from_slice(&(-1i64).to_be_bytes());
    let d = Dump::from_bytes(f).unwrap();
    assert_eq!(d.metadata().format, Format::KdumpCompressed { flattened: true, diskdump: false });
    for pfn in 1..=4 {
        assert_eq!(read_page(&d, pfn).unwrap(), page_of(pfn as u8));
    }
    assert_eq!(read_page(&d, 5).unwrap(), vec![5u8; BS]);
}

/// A little-endian ELF64 core: PT_NOTE then the given PT_LOADs (paddr, filesz, memsz), data
/// filled with `pfn as u8` per page; optionally with the program header count in section 0.
fn elf_core(loads: &[(u64, u64, u64)], notes: &[u8], pn_xnum: bool) -> Vec<u8> {
    let phnum = 1 + loads.len();
    let phoff = 64 + if pn_xnum { 64 } else { 0 };
    let mut f = vec![0u8; phoff + 56 * phnum];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    if pn_xnum {
        f[40..48].copy_from_slice(&64u64.to_le_bytes()); // e_shoff: section 0 right after
        f[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
        f[58..60].copy_from_slice(&64u16.to_le_bytes());
        f[64 + 44..64 + 48].copy_from_slice(&(phnum as u32).to_le_bytes()); // sh_info
    } else {
        f[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    }
    let mut data = notes.to_vec();
    let phdr = |i: usize, typ: u32, off: u64, paddr: u64, filesz: u64, memsz: u64, f: &mut Vec<u8>| {
        let p = phoff + 56 * i;
        f[p..p + 4].copy_from_slice(&typ.to_le_bytes());
        f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        f[p + 16..p + 24].copy_from_slice(&paddr.to_le_bytes());
        f[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
        f[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
        f[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
    };
    let base = f.len() as u64;
    phdr(0, 4, base, 0, notes.len() as u64, 0, &mut f);
    for (i, &(paddr, filesz, memsz)) in loads.iter().enumerate() {
        let off = base + data.len() as u64;
        phdr(i + 1, 1, off, paddr, filesz, memsz, &mut f);
        for a in (paddr..paddr + filesz).step_by(BS) {
            data.extend(std::iter::repeat_n((a / BS as u64) as u8, BS));
        }
    }
    f.extend(data);
    f
}

fn prstatus(pid: i32, rip: u64) -> Vec<u8> {
    let mut d = vec![0u8; 336];
    d[32..36].copy_from_slice(&pid.to_le_bytes());
    d[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&rip.to_le_bytes());
    note(b"CORE", 1, &d)
}

#[test]
fn elf_cores_with_pn_xnum_overlaps_and_excluded_tails() {
    let mut notes = prstatus(10, 0x1111);
    notes.extend(prstatus(0, 0x2222));
    notes.extend(note(b"VMCOREINFO", 0, b"OSRELEASE=5.14.0\nPAGESIZE=4096\nKERNELOFFSET=0\n"));
    let page = BS as u64;
    // RAM 0..4 pages (page 3 excluded), a kernel-text segment repeating pages 1..3.
    let f = elf_core(&[(0, 3 * page, 4 * page), (page, 2 * page, 2 * page)], &notes, true);
    let d = Dump::from_bytes(f).unwrap();
    assert_eq!(d.metadata().format, Format::Elf);
    assert_eq!(d.metadata().load_segments.len(), 2, "PN_XNUM: the count came from section 0");
    assert!(d.metadata().partial);
    for pfn in 0..3u64 {
        let mut buf = vec![0u8; BS];
        d.read_phys(pfn * page, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == pfn as u8));
    }
    assert_eq!(d.page_state(3 * page), PageState::Filtered);
    assert_eq!(d.page_state(4 * page), PageState::Hole);
    let mut buf = vec![0u8; 2 * BS];
    assert_eq!(d.read_phys(2 * page, &mut buf).unwrap_err().kind, ReadErrorKind::Filtered);
    assert_eq!(d.read_phys_zero_filled(2 * page, &mut buf).unwrap(), page);
    assert!(buf[..BS].iter().all(|&b| b == 2) && buf[BS..].iter().all(|&b| b == 0));
    // Kernel-written notes: numbered in order, pids kept.
    let n = d.notes();
    assert_eq!(n.numbering, lockscope_dump::CpuNumbering::NoteOrder);
    assert_eq!((n.prstatus[1].cpu, n.prstatus[1].pid, n.prstatus[1].regs.ip()), (1, 0, 0x2222));
    assert_eq!(d.vmcoreinfo().unwrap().osrelease(), Some("5.14.0"));
    assert_eq!(d.metadata().release.as_deref(), Some("5.14.0"));

    // The same core cut short: the cut-off part is lost, not zeros.
    let f = elf_core(&[(0, 3 * page, 4 * page)], &notes, false);
    let cut = f.len() - BS - 100;
    let d = Dump::from_bytes(f[..cut].to_vec()).unwrap();
    assert_eq!(d.page_state(2 * page), PageState::Lost);
    assert_eq!(d.page_state(page), PageState::Dumped);
    // Headers out of the file are refused.
    let mut f = elf_core(&[(0, page, page)], &notes, false);
    f[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(Dump::from_bytes(f).err().unwrap().kind, DumpErrorKind::BadElf(_)));
}

/// A 32- or 64-bit dump from `common::Spec`: RAM 0..40, pages 1..=5 in four encodings,
/// page 6 RAM but filtered, a VMCOREINFO note.
fn layout_case(abi: Abi, machine: &str, big_endian: bool) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let mut s = Spec::new(abi, machine, 64);
    s.big_endian = big_endian;
    for pfn in 0..40 {
        Spec::set(&mut s.ram, pfn);
    }
    let plain: Vec<(u64, Vec<u8>)> = (1..=5).map(|p| (p, page_of(p as u8 * 17))).collect();
    for (pfn, data) in &plain {
        Spec::set(&mut s.dumped, *pfn);
        let stored = match pfn {
            1 => (0x1, zlib(data)),
            2 => (0x2, lzokay::compress::compress(data).unwrap()),
            3 => (0x4, snap::raw::Encoder::new().compress_vec(data).unwrap()),
            _ => (0, data.clone()),
        };
        s.pages.push((*pfn, stored.0, stored.1));
    }
    s.add_vmcoreinfo(b"OSRELEASE=6.1.0-32bit\nPAGESIZE=4096\n");
    (s.build(), plain)
}

#[test]
fn kdump_32bit_headers_both_packings_both_byte_orders_known_or_unknown_machine() {
    use SubHeaderLayout::*;
    let cases = [
        (Abi::Ilp32Packed, "i686", false, Ilp32Packed, 32),
        (Abi::Ilp32Aligned, "armv7l", false, Ilp32Aligned, 32),
        (Abi::Ilp32Aligned, "ppc", true, Ilp32Aligned, 32),
        // utsname.machine not filled: the fields decide.
        (Abi::Ilp32Packed, "", false, Ilp32Packed, 32),
        (Abi::Ilp32Aligned, "", false, Ilp32Aligned, 32),
        (Abi::Ilp32Aligned, "", true, Ilp32Aligned, 32),
        (Abi::Lp64, "", false, Lp64, 64),
        (Abi::Lp64, "s390x", true, Lp64, 64),
    ];
    for (abi, machine, big, want_sub, want_time) in cases {
        let name = format!("{abi:?} {machine:?} big-endian {big}");
        let (file, pages) = layout_case(abi, machine, big);
        let d = Dump::from_bytes(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = d.metadata();
        let l = m.kdump_layout.expect("kdump");
        assert_eq!((l.sub_header, l.timeval_bits, l.big_endian), (want_sub, want_time, big), "{name}");
        assert_eq!(m.date, Some(1_795_238_369), "{name}: time stamp");
        assert_eq!(
            (m.phys_base, m.dump_level, m.nr_cpus, m.current_cpu),
            (Some(0x100000), Some(31), 2, Some(1)),
            "{name}"
        );
        assert_eq!((m.max_pfn, m.page_size, m.compression), (64, 4096, lockscope_dump::Compression::Zlib), "{name}");
        assert_eq!(d.vmcoreinfo().and_then(|v| v.osrelease()), Some("6.1.0-32bit"), "{name}");
        for (pfn, want) in &pages {
            assert_eq!(&read_page(&d, *pfn).unwrap_or_else(|e| panic!("{name}: {e}")), want, "{name}: pfn {pfn}");
        }
        assert_eq!(d.page_state(6 * BS as u64), PageState::Filtered, "{name}");
        assert_eq!(d.page_state(40 * BS as u64), PageState::Hole, "{name}");
        assert!(m.partial);
    }
}

#[test]
fn kdump_32bit_split_part_and_header_errors() {
    // A 32-bit split part (i386 packing): only its own range has descriptors.
    let mut s = Spec::new(Abi::Ilp32Packed, "i686", 64);
    for pfn in 0..16 {
        Spec::set(&mut s.ram, pfn);
        Spec::set(&mut s.dumped, pfn);
        s.pages.push((pfn, 0, page_of(pfn as u8)));
    }
    s.split = Some((8, 16));
    let d = Dump::from_bytes(s.build()).unwrap();
    assert_eq!(d.metadata().split, Some((8, 16)));
    assert_eq!(read_page(&d, 9).unwrap(), page_of(9));
    assert_eq!(read_page(&d, 3).unwrap_err().kind, ReadErrorKind::InOtherFile);
    assert_eq!(d.page_state(3 * BS as u64), PageState::Lost);

    // Errors name the 32-bit field's own offset.
    let file = layout_case(Abi::Ilp32Packed, "i686", false).0;
    let mut bad = file.clone();
    bad[416..420].copy_from_slice(&3u32.to_le_bytes());
    let e = Dump::from_bytes(bad).err().unwrap();
    assert_eq!((e.kind, e.offset), (DumpErrorKind::BadHeader("block_size is not a page size"), 416));
    let mut bad = file.clone();
    bad[424..428].copy_from_slice(&0x7fff_fffeu32.to_le_bytes());
    assert_eq!(Dump::from_bytes(bad).err().unwrap().kind, DumpErrorKind::Truncated);
    assert_eq!(Dump::from_bytes(file[..451].to_vec()).err().unwrap().kind, DumpErrorKind::Truncated);
    // A note size that runs past the header blocks is refused by both 32-bit packings, so
    // the first one is used and the blob is read as far as the file goes.
    let mut bad = file.clone();
    bad[BS + 40..BS + 44].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    assert!(matches!(
        Dump::from_bytes(bad).err().unwrap().kind,
        DumpErrorKind::BadHeader(_) | DumpErrorKind::Truncated
    ));
}
