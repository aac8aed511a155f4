//! Hostile and damaged dumps (issue #8), made at test time from the repo's real makedumpfile
//! -d31 zlib dump: a copy is mutated (a bit of the dumpable bitmap flipped, the file cut at
//! several points, a page descriptor damaged, PAGESIZE or a note size edited) and the reader
//! must say precisely what is wrong, never read one page's data as another's.
//!
//! Layout of that dump (checked below): 4 KiB blocks, bitmap 2 at 0x5000, 19466 descriptors
//! from 0x7000, page data from 0x790f0 (the shared zero page, then PFN order), 16343031 bytes.

use lockscope_dump::{Dump, DumpErrorKind, PageState, ReadErrorKind, Truncation};
use std::path::Path;

const BS: usize = 4096;
const BITMAP2: usize = 0x5000;
const HALF: usize = 0x2000;
const DESC_BASE: usize = 0x7000;
const DESCS: u64 = 19466;
const DATA_START: u64 = 0x790f0;
const FILE_SIZE: u64 = 16343031;

fn repo_dump() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    std::fs::read(p).unwrap()
}

fn bit(f: &[u8], pfn: usize) -> bool {
    f[BITMAP2 + pfn / 8] >> (pfn % 8) & 1 == 1
}

/// The PFN of the `n`-th set bit of bitmap 2 (that is, of descriptor `n`).
fn pfn_of_descriptor(f: &[u8], n: u64) -> usize {
    (0..HALF * 8).filter(|&p| bit(f, p)).nth(n as usize).unwrap()
}

#[test]
fn the_repo_dump_has_the_layout_these_tests_assume() {
    let f = repo_dump();
    assert_eq!(f.len() as u64, FILE_SIZE);
    let set: u64 = f[BITMAP2..BITMAP2 + HALF].iter().map(|b| b.count_ones() as u64).sum();
    assert_eq!(set, DESCS);
    assert_eq!(DESC_BASE as u64 + 24 * DESCS, DATA_START);
    // The first descriptor's data is one block after the start (the zero page is there).
    let first = i64::from_le_bytes(f[DESC_BASE..DESC_BASE + 8].try_into().unwrap());
    assert_eq!(first as u64, DATA_START + BS as u64);
    assert!(Dump::from_bytes(f).unwrap().truncation().is_empty());
}

#[test]
fn a_cleared_bit_of_the_dumpable_bitmap_is_refused_at_open() {
    let mut f = repo_dump();
    let pfn = pfn_of_descriptor(&f, 10_000);
    f[BITMAP2 + pfn / 8] &= !(1 << (pfn % 8));
    let e = Dump::from_bytes(f).err().expect("refused");
    assert_eq!(
        e.kind,
        DumpErrorKind::BitmapMismatch {
            set_bits: DESCS - 1,
            expected: DATA_START - 24,
            found: DATA_START,
            block_size: 4096
        }
    );
    assert_eq!(e.offset, BITMAP2 as u64);
    assert_eq!(
        e.to_string(),
        "dumpable bitmap at offset 0x5000 does not match the page descriptors: its 19465 set bits put the page \
         data at offset 0x790d8, but the descriptors' data starts at 0x790f0 (the bitmap counts 1 page(s) fewer \
         than there are descriptors)"
    );
}

#[test]
fn a_set_bit_of_the_dumpable_bitmap_is_refused_at_open() {
    let mut f = repo_dump();
    let pfn = (0x100..0x8000).find(|&p| !bit(&f, p)).unwrap();
    f[BITMAP2 + pfn / 8] |= 1 << (pfn % 8);
    let path = tempfile::tempdir().unwrap();
    let copy = path.path().join("vmcore");
    std::fs::write(&copy, &f).unwrap();
    let e = Dump::open(&copy).err().expect("refused");
    assert_eq!(
        e.to_string(),
        "dumpable bitmap at offset 0x5000 does not match the page descriptors: its 19467 set bits put the page \
         data at offset 0x79108, but the descriptors' data starts at 0x790f0 (the bitmap counts 1 page(s) more \
         than there are descriptors)"
    );
    // Bitmap 1 (RAM) does not index descriptors: a flipped bit there is not a mismatch.
    let mut g = repo_dump();
    g[0x3000 + 0x10] ^= 0x01;
    assert!(Dump::from_bytes(g).is_ok());
}

#[test]
fn damaged_descriptors_are_corrupt_not_missing() {
    let base = repo_dump();
    let n = 5000u64;
    let pfn = pfn_of_descriptor(&base, n) as u64;
    let at = DESC_BASE + 24 * n as usize;
    let read = |offset: i64| {
        let mut f = base.clone();
        f[at..at + 8].copy_from_slice(&offset.to_le_bytes());
        let d = Dump::from_bytes(f).unwrap();
        let mut page = vec![0u8; BS];
        d.read_phys(pfn * BS as u64, &mut page).unwrap_err()
    };
    // Before the data area (into the bitmaps), and past the end of the file.
    for offset in [0x3000, 1 << 40] {
        let e = read(offset);
        assert_eq!((e.kind, e.offset), (ReadErrorKind::BadDescriptor, Some(at as u64)), "offset {offset:#x}");
        assert_eq!(
            e.to_string(),
            format!("physical address {:#x}: corrupt page descriptor at file offset {at:#x}", pfn * 4096)
        );
    }
    // A size of more than a page.
    let mut f = base.clone();
    f[at + 8..at + 12].copy_from_slice(&(BS as u32 + 1).to_le_bytes());
    let d = Dump::from_bytes(f).unwrap();
    assert_eq!(d.read_phys(pfn * BS as u64, &mut [0u8; 8]).unwrap_err().kind, ReadErrorKind::BadDescriptor);
    // The neighbours still read.
    let next = pfn_of_descriptor(&base, n + 1) as u64;
    assert!(d.read_phys(next * BS as u64, &mut [0u8; 8]).is_ok());
}

/// The highest PFN with a descriptor whose data is not the shared zero page.
fn last_data_pfn(f: &[u8]) -> (u64, u64) {
    (0..DESCS)
        .rev()
        .map(|i| {
            let at = DESC_BASE + 24 * i as usize;
            (i, i64::from_le_bytes(f[at..at + 8].try_into().unwrap()) as u64)
        })
        .find(|&(_, off)| off != DATA_START)
        .map(|(i, off)| (pfn_of_descriptor(f, i) as u64, off))
        .unwrap()
}

#[test]
fn a_cut_file_reads_truncated_never_filtered() {
    let full = repo_dump();
    let (last_pfn, last_offset) = last_data_pfn(&full);
    // (cut, promised size, exact, pages lost): inside the descriptor table, in the middle of
    // the page data, one page short, a few bytes short.
    let cases = [
        (400_000u64, DATA_START, false, DESCS),
        (8_000_000, FILE_SIZE, true, 7124),
        (16_000_000, FILE_SIZE, true, 764),
        (FILE_SIZE - 31, FILE_SIZE, true, 1),
    ];
    for (cut, promised, exact, lost) in cases {
        let d = Dump::from_bytes(full[..cut as usize].to_vec()).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(
            d.truncation(),
            vec![Truncation { file: None, file_size: cut, expected_size: promised, exact, pages_lost: lost }],
            "cut at {cut}"
        );
        let mut page = vec![0u8; BS];
        let e = d.read_phys(last_pfn * BS as u64, &mut page).unwrap_err();
        assert_eq!(e.kind, ReadErrorKind::Truncated { file_size: cut }, "cut at {cut}");
        assert_eq!(d.page_state(last_pfn * BS as u64), PageState::Lost);
        if cut > DATA_START {
            assert_eq!(
                e.to_string(),
                format!(
                    "physical address {:#x}: beyond the end of the truncated file (file is {cut} bytes, page data at \
                     offset {last_offset:#x})",
                    last_pfn * 4096
                )
            );
        }
        // Filtered pages are still filtered, not lost to the cut.
        let filtered = (0..0x8000u64).find(|&p| d.page_state(p * BS as u64) == PageState::Filtered).unwrap();
        assert_eq!(d.read_phys(filtered * BS as u64, &mut page).unwrap_err().kind, ReadErrorKind::Filtered);
    }
}

#[test]
fn an_edited_pagesize_is_reported_not_used() {
    let mut f = repo_dump();
    let at = f.windows(13).position(|w| w == b"PAGESIZE=4096").unwrap();
    f[at..at + 13].copy_from_slice(b"PAGESIZE=8192");
    let d = Dump::from_bytes(f).unwrap();
    assert_eq!(d.vmcoreinfo().unwrap().page_size(), Some(8192));
    let m = d.metadata();
    assert_eq!(m.page_size, 4096);
    assert_eq!(m.page_size_ignored, Some((8192, "the x86_64 architecture (4 KiB pages)")));
}

#[test]
fn an_oversized_note_size_keeps_only_the_notes() {
    let mut f = repo_dump();
    // kdump_sub_header (64-bit) offset_note at +48, size_note at +56.
    let offset = u64::from_le_bytes(f[BS + 48..BS + 56].try_into().unwrap());
    let size = u64::from_le_bytes(f[BS + 56..BS + 64].try_into().unwrap());
    f[BS + 56..BS + 64].copy_from_slice(&(30u64 << 20).to_le_bytes());
    let d = Dump::from_bytes(f).unwrap();
    let cut = d.metadata().notes_cut.expect("reported");
    assert_eq!((cut.offset, cut.declared, cut.kept), (offset, 30 << 20, size));
    assert_eq!(d.notes().prstatus.len(), 4);
    assert!(d.vmcoreinfo().is_some());
}

#[test]
fn non_files_are_refused_before_opening() {
    let dir = tempfile::tempdir().unwrap();
    let e = Dump::open(dir.path()).err().unwrap();
    assert_eq!(e.to_string(), "it is a directory, not a regular file");
    assert_eq!(Dump::open("/dev/null").err().unwrap().to_string(), "it is a character device, not a regular file");
    assert_eq!(Dump::open(dir.path().join("none")).err().unwrap().to_string(), "no such file");
    let fifo = dir.path().join("fifo");
    if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        // Would block forever in open(2) if it were opened.
        assert_eq!(Dump::open(&fifo).err().unwrap().to_string(), "it is a FIFO (named pipe), not a regular file");
    }
}

#[test]
fn a_bitmap_flip_in_one_part_of_a_split_dump_names_that_part() {
    use lockscope_dump::{Compression, WriteOptions, write_kdump};
    let dir = tempfile::tempdir().unwrap();
    let src = Dump::from_bytes(repo_dump()).unwrap();
    let parts: Vec<_> = (1..=3).map(|i| dir.path().join(format!("part.{i}"))).collect();
    write_kdump(&src, &parts, &WriteOptions::new(Compression::Zstd), &mut |_| {}).unwrap();
    assert!(Dump::open_many(&parts).is_ok());
    // Each part holds the descriptors of its own PFN range: a bit cleared inside part 2's
    // range shifts part 2 only.
    let mut f = std::fs::read(&parts[1]).unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(f[o..o + 4].try_into().unwrap()) as usize;
    let (sub_blocks, bitmap_blocks) = (u32_at(432), u32_at(436));
    let bitmap2 = (1 + sub_blocks) * BS + bitmap_blocks * BS / 2;
    let start = u64::from_le_bytes(f[BS + 80..BS + 88].try_into().unwrap()) as usize;
    let pfn = (start..start + 0x1000).find(|&p| f[bitmap2 + p / 8] >> (p % 8) & 1 == 1).unwrap();
    f[bitmap2 + pfn / 8] &= !(1 << (pfn % 8));
    std::fs::write(&parts[1], &f).unwrap();
    let e = Dump::open_many(&parts).err().expect("refused");
    assert_eq!(e.file, Some(1));
    assert!(matches!(e.kind, DumpErrorKind::BitmapMismatch { .. }), "{e}");
    assert_eq!(e.offset, bitmap2 as u64);
    assert!(e.to_string().starts_with(&format!("file 2 of the set: dumpable bitmap at offset {bitmap2:#x}")), "{e}");
}
