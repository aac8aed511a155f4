//! Shared-corpus suite: every format of ipi_sleeping_holder.live is the same frozen memory,
//! so the same physical pages must read back byte-identical from each (makedumpfile zlib and
//! LZO, QEMU's flattened kdump-zlib, makedumpfile's filtered ELF and QEMU's full ELF, the
//! ELF ones decompressed with `xz` into a temporary directory, plus snappy and zstd files that
//! no tool here writes, so `write_kdump` makes them at test time: snappy from the filtered
//! zlib file, zstd from QEMU's full ELF, checked on all of memory), and registers and
//! VMCOREINFO must agree. Every case's kdump file must match its truth.json. Skips with a note when
//! ../shared is not beside the checkout (and the ELF part when `xz` is missing).

use lockscope_dump::{Compression, CpuNumbering, Dump, PageState, ReadErrorKind, WriteOptions, write_kdump};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    p.is_dir().then_some(p)
}

fn truth(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap()
}

fn hex(v: &Value) -> u64 {
    let s = v.as_str().unwrap().split_whitespace().next().unwrap();
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// `xz -dc file > dir/name`; None when xz is not installed.
fn unxz(file: &Path, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(file.file_stem().unwrap());
    let status = Command::new("xz").arg("-dc").arg(file).stdout(std::fs::File::create(&out).ok()?).status().ok()?;
    status.success().then_some(out)
}

#[test]
fn every_format_of_one_case_reads_the_same_memory() {
    let Some(corpus) = corpus() else {
        eprintln!("note: ../shared/corpus not found; shared-corpus dump suite skipped");
        return;
    };
    let case = corpus.join("ipi_sleeping_holder.live");
    let reference = Dump::open(case.join("vmcore.mkd-zlib-d31")).unwrap();
    let mut others: Vec<(String, Dump)> = Vec::new();
    for name in ["vmcore.mkd-lzo-d31", "vmcore.qemu-kdump-zlib"] {
        others.push((name.into(), Dump::open(case.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))));
    }
    let tmp = tempfile::tempdir().unwrap();
    for name in ["vmcore.mkd-elf-d31.xz", "vmcore.qemu-elf.xz"] {
        match unxz(&case.join(name), tmp.path()) {
            Some(path) => others.push((name.into(), Dump::open(&path).unwrap_or_else(|e| panic!("{name}: {e}")))),
            None => eprintln!("note: xz not available; {name} skipped"),
        }
    }
    assert!(others[1].1.metadata().flattened_records.is_some(), "QEMU's kdump file is a flattened stream");
    // snappy and zstd made here: from the filtered zlib file, and from QEMU's full ELF (or,
    // without xz, from QEMU's flattened kdump file, which also holds every page).
    let convert = |from: &Dump, name: &str, c: Compression| -> Dump {
        let out = tmp.path().join(name);
        write_kdump(from, &[&out], &WriteOptions::new(c), &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        Dump::open(&out).unwrap()
    };
    let snappy = convert(&reference, "vmcore.snappy", Compression::Snappy);
    let full = others.iter().find(|(n, _)| n == "vmcore.qemu-elf.xz").unwrap_or(&others[1]);
    let zstd = convert(&full.1, "vmcore.full.zstd", Compression::Zstd);
    assert!(!zstd.metadata().partial, "converted from a full dump, the zstd file holds every page");
    // QEMU's files carry no utsname (the ELF none, its kdump file only the machine): the writer
    // reads the kernel's own, which must be what makedumpfile put in its header.
    assert_eq!(zstd.metadata().utsname, reference.metadata().utsname, "utsname from memory ({})", full.0);
    // Every page of the full dump reads the same from the zstd file made from it.
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut full_pages = 0;
    for pfn in (0..full.1.metadata().max_pfn).step_by(if cfg!(debug_assertions) { 37 } else { 1 }) {
        if full.1.page_state(pfn * 4096) == PageState::Dumped {
            full.1.read_phys(pfn * 4096, &mut a).unwrap();
            zstd.read_phys(pfn * 4096, &mut b).unwrap();
            assert!(a == b, "zstd from {}: pfn {pfn:#x} differs", full.0);
            full_pages += 1;
        }
    }
    assert!(full_pages > 40_000 / if cfg!(debug_assertions) { 37 } else { 1 }, "{full_pages} full-memory pages");
    others.push(("vmcore.snappy (converted)".into(), snappy));
    others.push(("vmcore.full.zstd (converted)".into(), zstd));

    // Dumped pages of the filtered zlib file: every one in release builds (~19k pages × 7
    // formats), sampled evenly in debug ones.
    let page = reference.metadata().page_size;
    let dumped: Vec<u64> = (0..reference.metadata().max_pfn)
        .map(|pfn| pfn * page)
        .filter(|&a| reference.page_state(a) == PageState::Dumped)
        .collect();
    assert!(dumped.len() > 10_000, "{} dumped pages", dumped.len());
    let stride = if cfg!(debug_assertions) { 37 } else { 1 };
    let vmcoreinfo_page = hex(&truth(&case)["kernel"]["vmcoreinfo_note_paddr"]);
    let sample: Vec<u64> = dumped.iter().copied().step_by(stride).chain([vmcoreinfo_page]).collect();
    let mut want = vec![0u8; page as usize];
    let mut got = vec![0u8; page as usize];
    let mut compared = 0;
    for &addr in &sample {
        reference.read_phys(addr, &mut want).unwrap();
        for (name, d) in &others {
            match d.read_phys(addr, &mut got) {
                Ok(()) => {
                    assert!(want == got, "{name}: page {addr:#x} differs from the zlib file");
                    compared += 1;
                }
                // makedumpfile's ELF writer decides excluded runs on its own; a page it
                // left out is fine, a different page is not.
                Err(e) if name.contains("mkd-elf") && e.kind == ReadErrorKind::Filtered => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    assert!(compared >= sample.len() * 5, "only {compared} page comparisons");

    // Same CPUs, same registers, same VMCOREINFO in every format.
    let regs = &reference.notes().prstatus;
    for (name, d) in &others {
        assert_eq!(d.notes().numbering, CpuNumbering::QemuIndex, "{name}");
        assert_eq!(&d.notes().prstatus, regs, "{name}: registers differ");
        assert_eq!(d.notes().qemu, reference.notes().qemu, "{name}: QEMU CPU state differs");
        let (a, b) = (d.vmcoreinfo().unwrap(), reference.vmcoreinfo().unwrap());
        assert!(a.entries().eq(b.entries()), "{name}: vmcoreinfo differs");
    }
    // The ELF's PRSTATUS registers equal QEMU's own CPU state notes.
    for (p, q) in regs.iter().zip(&reference.notes().qemu) {
        let lockscope_dump::Registers::X86_64(r) = p.regs else { panic!() };
        assert_eq!(
            (r.rip, r.rsp, r.rax, r.rdi, r.eflags),
            (q.regs.rip, q.regs.rsp, q.regs.rax, q.regs.rdi, q.regs.eflags)
        );
    }
    // The QEMU files hold all of RAM; the makedumpfile ones do not.
    assert!(reference.metadata().partial);
    assert!(!others[1].1.metadata().partial, "QEMU kdump holds every page");
}

#[test]
fn every_case_matches_its_truth() {
    let Some(corpus) = corpus() else {
        eprintln!("note: ../shared/corpus not found; shared-corpus dump suite skipped");
        return;
    };
    let mut cases = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("vmcore.mkd-zlib-d31");
        if !file.is_file() {
            continue;
        }
        let t = truth(&dir);
        let d = Dump::open(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let vi = d.vmcoreinfo().expect("vmcoreinfo");
        let name = dir.display();
        assert_eq!(vi.kernel_offset(), Some(hex(&t["kernel"]["kaslr_offset"])), "{name}");
        assert_eq!(vi.symbol("_stext"), Some(hex(&t["kernel"]["kaslr_text"])), "{name}");
        assert_eq!(Some(vi.osrelease().unwrap()), t["kernel"]["release"].as_str(), "{name}");
        assert_eq!(d.notes().prstatus.len() as u64, t["guest"]["vcpus"].as_u64().unwrap(), "{name}");
        // The kernel's own copy of the VMCOREINFO note, read from physical memory.
        let mut note = vec![0u8; 64];
        d.read_phys(hex(&t["kernel"]["vmcoreinfo_note_paddr"]), &mut note).unwrap();
        assert_eq!(&note[12..22], b"VMCOREINFO", "{name}");
        cases += 1;
    }
    assert!(cases >= 6, "{cases} cases");
}
