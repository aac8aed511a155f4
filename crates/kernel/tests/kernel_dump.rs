//! The kernel view on the repo's real dump (tests/data/dumps, a filtered kdump of the
//! corpus case ipi_sleeping_holder.live: Debian 6.1.176, KASLR on). Expected values are
//! what crash 8.0.2 with the DWARF vmlinux printed for the same dump
//! (shared/corpus/ipi_sleeping_holder.live/crash.txt).

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use std::path::PathBuf;

fn kernel() -> Kernel {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    Kernel::new(Dump::open(&p).unwrap()).unwrap()
}

#[test]
fn kallsyms_decode_and_name_addresses_like_crash() {
    let k = kernel();
    let t = std::time::Instant::now();
    let syms = k.symbols().unwrap();
    eprintln!("{} symbols decoded in {:?} ({:?})", syms.len(), t.elapsed(), syms.scheme);
    assert!(syms.len() > 50_000, "{}", syms.len());
    // crash `bt -a`: "[exception RIP: native_safe_halt+11]" at RIP ffffffff8904e8cb, etc.
    for (addr, want) in [
        (0xffffffff8904e8cbu64, "native_safe_halt+0xb"),
        (0xffffffff8876fdc1, "smp_call_function_many_cond+0xf1"),
        (0xffffffff8904f700, "native_queued_spin_lock_slowpath+0x30"),
        (0xffffffff8863eccd, "amd_e400_idle+"),
        (0xffffffff886cd1ba, "kthread+"),
    ] {
        let s = syms.lookup(addr).unwrap_or_else(|| panic!("{addr:#x} not found"));
        let f = s.format(addr);
        assert!(f.starts_with(want), "{addr:#x}: {f} (want {want})");
    }
    // VMCOREINFO's own symbols agree with the decoded table.
    for name in ["_stext", "init_top_pgt", "prb", "init_uts_ns"] {
        let vi = k.vmcoreinfo().symbol(name).unwrap();
        assert_eq!(syms.address_of(name), Some(vi), "{name}");
    }
    // crash: "TASK: ffffffff8a01aa40 ... swapper/0" is init_task.
    assert_eq!(syms.address_of("init_task"), Some(0xffffffff8a01aa40));
    // Per-CPU variables are zero-based offsets on this kernel.
    let rq = syms.address_of("runqueues").unwrap();
    assert!(rq < 0x10_0000, "runqueues at {rq:#x}");
    assert!(syms.lookup(rq).is_none());
}

#[test]
fn virtual_reads_through_the_page_tables() {
    let k = kernel();
    // The kernel image by formula: the banner in init_uts_ns names the release.
    let uts = k.symbol("init_uts_ns").unwrap();
    let off = k.vmcoreinfo().offset("uts_namespace.name").unwrap();
    // new_utsname: sysname, nodename, release (65 bytes each).
    let release = k.memory().read_cstr(uts + off + 2 * 65, 65).unwrap();
    assert_eq!(release, b"6.1.0-50-amd64");
    // The direct map by walking the tables: page_offset_base holds its base, and reading
    // the kernel text through it gives the same bytes as through the image mapping.
    let pob = k.read_symbol_u64("page_offset_base").unwrap();
    assert_eq!(pob & 0xffff_0000_0000_0000, 0xffff_0000_0000_0000, "{pob:#x}");
    let text = k.symbol("_stext").unwrap();
    let phys = k.memory().translate(text).unwrap();
    let via_image = k.memory().read_vec(text, 64).unwrap();
    let via_direct = k.memory().read_vec(pob + phys, 64).unwrap();
    assert_eq!(via_image, via_direct);
    // Every CPU's saved stack pointer is mapped (vmalloc'd stacks or the init stack).
    for cpu in &k.dump().notes().prstatus {
        let sp = cpu.regs.sp();
        k.memory().read_u64(sp).unwrap_or_else(|e| panic!("CPU {} sp {sp:#x}: {e}", cpu.cpu));
    }
}

#[test]
fn the_log_in_the_dump_matches_the_serial_console() {
    let k = kernel();
    let log = k.log().unwrap();
    assert!(log.records.len() > 300, "{} records", log.records.len());
    let text = String::from_utf8_lossy(&log.render(false, false)).into_owned();
    let ours: std::collections::HashSet<&str> = text.lines().collect();
    // The console of the same boot (tests/data/corpus): every time-stamped kernel line it
    // shows up to the dump is in the buffer, byte for byte.
    let console = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/corpus/ipi_sleeping_holder.live.console.log"),
    )
    .unwrap();
    let last_ts = log.records.last().unwrap().ts_nsec as f64 / 1e9;
    let stamped: Vec<&str> = console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| {
            l.starts_with('[') && l.get(1..13).and_then(|t| t.trim().parse::<f64>().ok()).is_some_and(|t| t <= last_ts)
        })
        .collect();
    assert!(stamped.len() > 300, "{}", stamped.len());
    let missing: Vec<&&str> = stamped.iter().filter(|l| !ours.contains(**l)).collect();
    assert!(
        missing.len() * 100 <= stamped.len(),
        "{} of {} console lines not in the dump's log, e.g. {:?}",
        missing.len(),
        stamped.len(),
        &missing[..missing.len().min(5)]
    );
    // Records come in sequence order (time stamps of different CPUs may interleave).
    assert!(log.records.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "gaps in seq");
    // A live machine: at most the record being written at the head is not committed yet.
    assert!(log.skipped <= 1, "{} skipped", log.skipped);
    assert!(text.contains("BUG: scheduling while atomic: zone_drain/135/0x00000002"));
}

#[test]
fn without_a_vmcoreinfo_note_the_kernel_page_of_it_is_found() {
    // The repo dump with its VMCOREINFO note renamed and the sub-header's pointer to it
    // cleared, as a QEMU dump taken without `-device vmcoreinfo` would be.
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let mut bytes = std::fs::read(&p).unwrap();
    let block = u32::from_le_bytes(bytes[428..432].try_into().unwrap()) as usize;
    bytes[block + 32..block + 48].fill(0); // offset_vmcoreinfo, size_vmcoreinfo
    let notes_end = (block * 2).min(bytes.len());
    let mut renamed = 0;
    for i in block..notes_end - 10 {
        if &bytes[i..i + 10] == b"VMCOREINFO" {
            bytes[i] = b'X';
            renamed += 1;
        }
    }
    assert!(renamed >= 1);
    let dump = Dump::from_bytes(bytes).unwrap();
    assert!(dump.vmcoreinfo().is_none(), "the note is gone");
    let k = Kernel::new(dump).unwrap();
    assert_eq!(k.vmcoreinfo().osrelease(), Some("6.1.0-50-amd64"));
    assert_eq!(k.symbols().unwrap().address_of("init_task"), Some(0xffffffff8a01aa40));
    assert!(k.log().unwrap().records.len() > 300);
}

#[test]
fn a_filtered_page_is_named_as_such() {
    let k = kernel();
    let pob = k.read_symbol_u64("page_offset_base").unwrap();
    // A page makedumpfile left out (-d 31: free, cache or user pages), read through the
    // direct map: the error says where and why, it does not read as zeros.
    let pfn = (0x1000..0x10000u64)
        .find(|&pfn| k.dump().page_state(pfn * 4096) == lockscope_dump::PageState::Filtered)
        .expect("a filtered page");
    let err = k.memory().read_u64(pob + pfn * 4096 + 8).unwrap_err();
    assert_eq!(err.vaddr, pob + pfn * 4096 + 8);
    let msg = err.to_string();
    assert!(msg.contains("filtered out of the dump"), "{msg}");
    assert!(msg.contains(&format!("{:#x}", pfn * 4096 + 8)), "{msg}");
    // An address no page table maps.
    let err = k.memory().read_u64(0xffff_8000_0000_0000).unwrap_err();
    assert!(err.to_string().contains("not mapped"), "{err}");
}

#[test]
fn modules_their_symbols_and_their_own_types() {
    let k = kernel();
    let mods = k.modules().unwrap();
    let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&"lockscen"), "{names:?}");
    // The spinlock the stuck CPU spins on (crash `sym demo_zone`: ffffffffc054e0a0 ... [lockscen]).
    assert_eq!(
        k.symbolize(0xffffffffc054e0a0).unwrap(),
        format!(
            "demo_zone+0x0/{:#x} [lockscen]",
            mods.iter()
                .find(|m| m.name == "lockscen")
                .unwrap()
                .symbols
                .iter()
                .find(|s| s.name == "demo_zone")
                .unwrap()
                .size
        )
    );
    assert!(k.symbolize(0xffffffffc054c231).unwrap().starts_with("flush_cpu_caches_demo+0x21/"));
    // Module split BTF: ids continue the kernel's, and the module's own structures resolve.
    let base = k.btf().unwrap();
    let with_btf: Vec<&str> = mods.iter().filter(|m| m.btf.is_some()).map(|m| m.name.as_str()).collect();
    assert!(!with_btf.is_empty(), "no module BTF in {names:?}");
    let mut own_structs = 0;
    for name in with_btf {
        let mb = k.module_btf(name).unwrap();
        assert_eq!(mb.first_id().0, base.last_id().0 + 1, "{name}");
        for id in mb.ids() {
            let t = mb.ty(id).unwrap();
            if t.kind() == lockscope_kernel::btf::Kind::Struct
                && !t.name().is_empty()
                && base.find(t.name(), t.kind()).is_none()
            {
                let obj = k.object_in(&mb, 0xffffffffc054e0a0, &format!("struct {}", t.name())).unwrap();
                assert_eq!(obj.size().unwrap(), u64::from(t.size().unwrap()));
                own_structs += 1;
            }
        }
    }
    assert!(own_structs > 0);
}

#[test]
fn each_cpu_current_task_two_ways() {
    let k = kernel();
    // crash `bt -a`: swapper/0, text_poke (137), swapper/2, page_alloc (136).
    let want = [(0, "swapper/0"), (137, "text_poke"), (0, "swapper/2"), (136, "page_alloc")];
    for c in k.cpus().unwrap() {
        let cur = k.current_task(c.cpu).unwrap();
        assert_eq!(cur, c.curr, "CPU {}: per-CPU current_task and rq->curr agree", c.cpu);
        let t = k.task(cur).unwrap();
        assert_eq!((t.pid, t.comm.as_str()), want[c.cpu as usize], "CPU {}", c.cpu);
    }
}

#[test]
fn without_kallsyms_in_vmcoreinfo_the_error_asks_for_debuginfo() {
    // As a kernel before 6.0 writes VMCOREINFO: no SYMBOL(kallsyms_*) entries.
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let mut bytes = std::fs::read(&p).unwrap();
    let needle = b"SYMBOL(kallsyms_names)=";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    bytes[at + 7..at + 15].copy_from_slice(b"xallsymx");
    let k = Kernel::new(Dump::from_bytes(bytes).unwrap()).unwrap();
    let err = k.symbols().err().unwrap().to_string();
    assert!(err.contains("kallsyms_names") && err.contains("--vmlinux") && err.contains("System.map"), "{err}");
    // What needs no symbols still works: the log is laid out from VMCOREINFO alone.
    assert!(k.log().unwrap().records.len() > 300);
}

#[test]
fn task_states_and_taint_letters_come_from_the_kernel() {
    let k = kernel();
    let states = k.task_states();
    assert!(states.from_kernel, "task_state_array was not read");
    // 6.1's table: S D T t X Z P for bits 0..6, then the idle report.
    for (bit, letter) in [(0x1, 'S'), (0x2, 'D'), (0x4, 'T'), (0x8, 't'), (0x40, 'P'), (0x402, 'I')] {
        assert!(states.bits.contains(&(bit, letter)), "{bit:#x} {letter}: {:?}", states.bits);
    }
    // The console's "Tainted: G        W  OE      L": the same letters from taint_flags.
    assert_eq!(k.system().unwrap().taint.as_deref(), Some("WOEL"));
}
