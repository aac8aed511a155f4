//! Replays the vmcore fuzz corpus (`fuzz/corpus/dump_open/`, and `fuzz/artifacts/dump_open/`
//! when a fuzzing run left crashes there) through what the `dump_open` fuzz target does, on
//! stable and in plain `cargo test`: open (alone, and cut in two as a split set), notes,
//! VMCOREINFO, memory ranges, reads, and writing the dump again and reading that back.

use lockscope_dump::{Compression, Dump, WriteOptions, write_kdump_to_memory};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

fn files(sub: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(sub).join("dump_open");
    let mut v: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// The fuzz target's checks; `Err` says what broke.
fn replay(data: &[u8]) -> Result<(), String> {
    let mid = data.len() / 2;
    let _ = Dump::from_bytes_many(vec![data[..mid].to_vec(), data[mid..].to_vec()]);
    let Ok(dump) = Dump::from_bytes(data.to_vec()) else { return Ok(()) };
    let _ = dump.vmcoreinfo().map(|v| (v.osrelease(), v.kernel_offset(), v.symbol("_stext")));
    let page = dump.metadata().page_size;
    let mut buf = vec![0u8; 2 * page as usize];
    for r in dump.memory_ranges().iter().take(8) {
        let _ = dump.read_phys(r.start, &mut buf);
        let _ = dump.read_phys_zero_filled(r.end.saturating_sub(1), &mut buf);
    }
    let _ = dump.read_phys(u64::MAX - 3, &mut buf);
    if dump.metadata().max_pfn > 1 << 16 {
        return Ok(());
    }
    for (codec, flattened) in [(Compression::Snappy, false), (Compression::Zlib, true), (Compression::None, false)] {
        let opts = WriteOptions { threads: 1, flattened, ..WriteOptions::new(codec) };
        let Ok((files, _)) = write_kdump_to_memory(&dump, 1, &opts) else { continue };
        let again = Dump::from_bytes(files.into_iter().next().unwrap())
            .map_err(|e| format!("{codec:?}: what the writer wrote does not open: {e}"))?;
        let (mut a, mut b) = (vec![0u8; page as usize], vec![0u8; page as usize]);
        for pfn in 0..dump.metadata().max_pfn.min(256) {
            if dump.read_phys(pfn * page, &mut a).is_ok() {
                again.read_phys(pfn * page, &mut b).map_err(|e| format!("{codec:?}: pfn {pfn}: {e}"))?;
                if a != b {
                    return Err(format!("{codec:?}: pfn {pfn} differs after writing"));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn dump_corpus_and_artifacts_replay() {
    let all: Vec<_> = files("corpus").into_iter().chain(files("artifacts")).collect();
    assert!(all.len() >= 8, "fuzz/corpus/dump_open holds only {} files", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|f| {
            let data = std::fs::read(f).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| replay(&data))).unwrap_or_else(|_| Err("panic".into()));
            r.err().map(|e| format!("{}: {e}", f.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
