//! `Dump::with_patches` and `with_vmcoreinfo` on the repository's real dump: patched bytes
//! read back (whole pages, partial reads across a page edge, the page cache, zero-filled
//! reads, what `write_kdump_to_memory` copies); a patched hole stays a hole; the file is not
//! written.

use lockscope_dump::{Compression, Dump, PageState, WriteOptions, write_kdump_to_memory};
use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
}

/// Two adjacent dumped pages and one that is not dumped.
fn pages(d: &Dump) -> (u64, u64) {
    let page = d.metadata().page_size;
    let dumped = |a: u64| d.page_state(a) == PageState::Dumped;
    let two = (1..d.metadata().max_pfn).map(|p| p * page).find(|&a| dumped(a) && dumped(a + page)).unwrap();
    let hole = (1..d.metadata().max_pfn).map(|p| p * page).find(|&a| !dumped(a)).unwrap();
    (two, hole)
}

#[test]
fn patched_bytes_read_back_everywhere() {
    let before = std::fs::read(path()).unwrap();
    let plain = Dump::open(path()).unwrap();
    let (at, hole) = pages(&plain);
    let page = plain.metadata().page_size;
    let mut orig = vec![0u8; 2 * page as usize];
    plain.read_phys(at, &mut orig).unwrap();

    let edge = at + page - 3;
    let d = Dump::open(path()).unwrap().with_patches(vec![(edge, b"\x1b[31m".to_vec()), (hole, vec![7; 8])]);
    let mut want = orig.clone();
    want[(page - 3) as usize..][..5].copy_from_slice(b"\x1b[31m");
    let mut got = vec![0u8; 2 * page as usize];
    d.read_phys(at, &mut got).unwrap();
    assert!(got == want, "two whole pages");
    let mut small = [0u8; 9];
    d.read_phys(edge - 2, &mut small).unwrap(); // through the page cache, across the edge
    assert_eq!(&small, &want[(page - 5) as usize..][..9]);
    d.read_phys(edge - 2, &mut small).unwrap(); // cached now
    assert_eq!(&small, &want[(page - 5) as usize..][..9]);
    let mut z = [1u8; 8];
    assert!(d.read_phys(hole, &mut z).is_err(), "a patch does not make a hole readable");
    assert_eq!(d.read_phys_zero_filled(hole, &mut z).unwrap(), 8);
    assert_eq!(z, [7; 8], "zero-filled bytes are patched too");

    let opts = WriteOptions { threads: 1, ..WriteOptions::new(Compression::None) };
    let (files, _) = write_kdump_to_memory(&d, 1, &opts).unwrap();
    let again = Dump::from_bytes(files.into_iter().next().unwrap()).unwrap();
    again.read_phys(at, &mut got).unwrap();
    assert!(got == want, "the writer copies patched pages");
    assert!(std::fs::read(path()).unwrap() == before, "the input file is unchanged");
}

#[test]
fn vmcoreinfo_can_be_replaced() {
    let d = Dump::open(path()).unwrap();
    assert!(d.vmcoreinfo().unwrap().symbol("prb").is_some());
    let d = d.with_vmcoreinfo(b"OSRELEASE=what-if\nPAGESIZE=8192\n");
    let v = d.vmcoreinfo().unwrap();
    assert_eq!((v.osrelease(), v.page_size(), v.symbol("prb")), (Some("what-if"), Some(8192), None));
    assert_eq!(d.metadata().page_size, 4096, "metadata stays as read");
}
