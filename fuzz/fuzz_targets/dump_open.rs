//! Any bytes given to the vmcore reader as a whole file: opening, notes, VMCOREINFO,
//! memory ranges and page reads must return typed errors, never panic or allocate without
//! bound. The same bytes cut in two are tried as a split set, and a dump that opens is
//! written again (`write_kdump_to_memory`): what the writer produces must open, and every
//! page the input could read must read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockscope_dump::{Compression, Dump, WriteOptions, write_kdump_to_memory};

fuzz_target!(|data: &[u8]| {
    let mid = data.len() / 2;
    let _ = Dump::from_bytes_many(vec![data[..mid].to_vec(), data[mid..].to_vec()]);
    let Ok(dump) = Dump::from_bytes(data.to_vec()) else { return };
    let _ = dump.vmcoreinfo().map(|v| (v.osrelease(), v.kernel_offset(), v.symbol("_stext")));
    let ranges = dump.memory_ranges();
    let page = dump.metadata().page_size;
    let mut buf = vec![0u8; 2 * page as usize];
    for r in ranges.iter().take(8) {
        let _ = dump.read_phys(r.start, &mut buf);
        let _ = dump.read_phys_zero_filled(r.end.saturating_sub(1), &mut buf);
    }
    let _ = dump.read_phys(u64::MAX - 3, &mut buf);

    if dump.metadata().max_pfn > 1 << 16 {
        return;
    }
    let codec = [Compression::Snappy, Compression::Zlib, Compression::None][data.len() % 3];
    let opts = WriteOptions { threads: 1, flattened: data.len() % 2 == 1, ..WriteOptions::new(codec) };
    let Ok((files, _)) = write_kdump_to_memory(&dump, 1, &opts) else { return };
    let again = Dump::from_bytes(files.into_iter().next().unwrap()).expect("what the writer wrote opens");
    let (mut a, mut b) = (vec![0u8; page as usize], vec![0u8; page as usize]);
    for pfn in 0..dump.metadata().max_pfn.min(256) {
        if dump.read_phys(pfn * page, &mut a).is_ok() {
            again.read_phys(pfn * page, &mut b).expect("a page the input had reads back");
            assert!(a == b, "pfn {pfn} differs after writing");
        }
    }
});
