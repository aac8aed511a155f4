//! Any bytes given to the vmcore reader as a whole file: opening, notes, VMCOREINFO,
//! memory ranges and page reads must return typed errors, never panic or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dump) = lockscope_dump::Dump::from_bytes(data.to_vec()) else { return };
    let _ = dump.vmcoreinfo().map(|v| (v.osrelease(), v.kernel_offset(), v.symbol("_stext")));
    let ranges = dump.memory_ranges();
    let mut buf = vec![0u8; 2 * dump.metadata().page_size as usize];
    for r in ranges.iter().take(8) {
        let _ = dump.read_phys(r.start, &mut buf);
        let _ = dump.read_phys_zero_filled(r.end.saturating_sub(1), &mut buf);
    }
    let _ = dump.read_phys(u64::MAX - 3, &mut buf);
});
