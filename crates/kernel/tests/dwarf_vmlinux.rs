//! The DWARF path on the real Debian 6.1.176 vmlinux of the corpus dumps
//! (`linux-image-6.1.0-50-amd64-dbg`: /usr/lib/debug/boot/vmlinux-6.1.0-50-amd64). Runs only
//! when LOCKSCOPE_VMLINUX names that file; best in release (`cargo test --release`), where the
//! conversion takes seconds. The dump is the corpus case ipi_sleeping_holder.live (from
//! shared/ when present, else the repository's copy). Checked:
//! - DWARF-derived BTF and the dump's own BTF agree on every struct/union layout both
//!   describe once (sizes, member offsets, bitfields) and on enums; core types must be among them;
//! - the vmlinux symbols, shifted by KASLR, equal the kallsyms decoded from memory;
//! - `Kernel::tasks()` is the same with either types, and with kallsyms hidden from VMCOREINFO
//!   (symbols then from the vmlinux or from a System.map);
//! - a vmlinux or System.map of another build is refused.

mod btf_common;

use lockscope_dump::Dump;
use lockscope_kernel::btf::{Btf, Kind, TypeId};
use lockscope_kernel::dwarf::Vmlinux;
use lockscope_kernel::kallsyms::Symbols;
use lockscope_kernel::{Kernel, KernelOptions, sysmap};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Types every lockup analysis reads.
const CORE_TYPES: &[&str] = &[
    "task_struct",
    "rq",
    "cfs_rq",
    "sched_entity",
    "mm_struct",
    "page",
    "zone",
    "pglist_data",
    "module",
    "printk_info",
    "printk_ringbuffer",
    "prb_desc_ring",
    "list_head",
    "hlist_node",
    "spinlock",
    "raw_spinlock",
    "qspinlock",
    "mutex",
    "rw_semaphore",
    "semaphore",
    "rcu_state",
    "rcu_data",
    "pid",
    "signal_struct",
    "thread_struct",
    "uts_namespace",
    "new_utsname",
    "timekeeper",
    "cpumask",
    "__call_single_data",
    "irq_desc",
    "hrtimer",
    "timer_list",
    "work_struct",
    "worker_pool",
    "kernfs_node",
    "inode",
    "file",
    "dentry",
    "super_block",
    "vm_area_struct",
    "sk_buff",
];

fn vmlinux_path() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("LOCKSCOPE_VMLINUX")?);
    if !p.is_file() {
        eprintln!("LOCKSCOPE_VMLINUX={} is no file: skipped", p.display());
        return None;
    }
    Some(p)
}

fn dump_path() -> PathBuf {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/ipi_sleeping_holder.live/vmcore.mkd-zlib-d31");
    if shared.is_file() {
        return shared;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
}

/// The dump with byte strings of its (uncompressed) VMCOREINFO replaced, same lengths.
fn patched_dump(edits: &[(&str, &str)]) -> Dump {
    let mut bytes = std::fs::read(dump_path()).unwrap();
    for (from, to) in edits {
        assert_eq!(from.len(), to.len());
        let mut n = 0;
        let mut i = 0;
        while let Some(p) = bytes[i..].windows(from.len()).position(|w| w == from.as_bytes()) {
            bytes[i + p..i + p + to.len()].copy_from_slice(to.as_bytes());
            i += p + to.len();
            n += 1;
        }
        assert!(n > 0, "{from} not in the dump");
    }
    Dump::from_bytes(bytes).unwrap()
}

fn with_vmlinux(dump: Dump, vmlinux: Option<PathBuf>, system_map: Option<PathBuf>) -> Kernel {
    Kernel::with_options(dump, KernelOptions { vmlinux, system_map, ..Default::default() }).unwrap()
}

/// The dump's kernel, with its own BTF and kallsyms.
fn plain() -> &'static Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| Kernel::new(Dump::open(dump_path()).unwrap()).unwrap())
}

/// The dump's kernel with `--vmlinux` (types from DWARF, converted once for all tests).
fn dwarf_kernel(vm: &std::path::Path) -> &'static Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| {
        let k = with_vmlinux(Dump::open(dump_path()).unwrap(), Some(vm.to_path_buf()), None);
        let t = std::time::Instant::now();
        k.btf().unwrap();
        eprintln!("Kernel::btf() from DWARF in {:?}", t.elapsed());
        k
    })
}

/// Named members reachable from `id` (anonymous members crossed), as paths.
fn member_paths(btf: &Btf, id: TypeId, prefix: &str, out: &mut Vec<String>, depth: usize) {
    let Ok(t) = btf.resolved(id) else { return };
    if depth > 8 {
        return;
    }
    for m in t.members() {
        if m.name.is_empty() {
            member_paths(btf, m.ty, prefix, out, depth + 1);
        } else {
            out.push(format!("{prefix}{}", m.name));
        }
    }
}

/// The C spelling of a type, arrays flattened to one dimension: pahole writes `u32 [6][18]`
/// as `u32 [108]`, DWARF (and so the conversion) keeps the dimensions.
fn flat_name(btf: &Btf, id: TypeId) -> String {
    let (mut count, mut elem) = (1u64, id);
    while let Ok(t) = btf.ty(elem)
        && let Some(a) = t.array()
    {
        count *= a.nelems as u64;
        elem = a.elem;
    }
    match elem == id {
        true => btf.type_name(id).unwrap(),
        false => format!("{} [{count}]", btf.type_name(elem).unwrap()),
    }
}

/// Named structs, unions and enums with exactly one definition of that name and kind.
fn unique_named(btf: &Btf) -> HashMap<(String, Kind), TypeId> {
    let mut seen: HashMap<(String, Kind), Option<TypeId>> = HashMap::new();
    for id in btf.ids() {
        let t = btf.ty(id).unwrap();
        let kind = match t.kind() {
            Kind::Enum64 => Kind::Enum,
            k => k,
        };
        if !t.name().is_empty() && matches!(kind, Kind::Struct | Kind::Union | Kind::Enum) {
            seen.entry((t.name().to_string(), kind)).and_modify(|v| *v = None).or_insert(Some(id));
        }
    }
    seen.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

#[test]
fn conversion_time_size_and_consistency() {
    let Some(p) = vmlinux_path() else { return };
    let vm = Vmlinux::open(&p).unwrap();
    assert_eq!(vm.build_id().as_deref(), Some("06f8bde30046985060c60820f7a11515a33afb06"));
    let (blob, stats) = vm.to_btf().unwrap();
    eprintln!("{stats:?}");
    assert!(stats.units > 2000 && stats.btf_bytes < 16 << 20, "{stats:?}");
    let btf = Btf::parse(blob).unwrap();
    let st = btf_common::check_blob(&btf);
    eprintln!("{st:?}");
    assert!(st.structs > 5000 && st.vars > 20_000, "{st:?}");
}

#[test]
fn dwarf_layouts_agree_with_the_dumps_btf() {
    let Some(p) = vmlinux_path() else { return };
    let theirs = plain().btf().unwrap();
    let ours = dwarf_kernel(&p).btf().unwrap();
    let a = unique_named(theirs);
    let b = unique_named(ours);
    let (mut types, mut members, mut enumerators) = (0, 0, 0);
    let mut bad = Vec::new();
    for ((name, kind), &tid) in &a {
        let Some(&oid) = b.get(&(name.clone(), *kind)) else { continue };
        types += 1;
        let (tt, ot) = (theirs.ty(tid).unwrap(), ours.ty(oid).unwrap());
        if tt.size() != ot.size() {
            bad.push(format!("{kind:?} {name}: size {:?} vs {:?}", tt.size(), ot.size()));
            continue;
        }
        if *kind == Kind::Enum {
            for e in tt.enumerators() {
                enumerators += 1;
                if ours.enum_value(oid, e.name).map(|o| o.raw) != Some(e.raw) {
                    bad.push(format!("enum {name}: {} = {:#x}", e.name, e.raw));
                }
            }
            continue;
        }
        let mut paths = Vec::new();
        member_paths(theirs, tid, "", &mut paths, 0);
        for path in paths {
            members += 1;
            let (x, y) = (theirs.member(tid, &path).unwrap(), ours.member(oid, &path));
            match y {
                Ok(y) if (x.bit_offset, x.bitfield_size) == (y.bit_offset, y.bitfield_size) => {
                    let (xn, yn) = (flat_name(theirs, x.ty), flat_name(ours, y.ty));
                    if xn != yn {
                        bad.push(format!("{name}.{path}: type {xn} vs {yn}"));
                    }
                }
                other => bad.push(format!("{name}.{path}: {x:?} vs {other:?}")),
            }
        }
    }
    // Every type the dump's BTF names once is there once (types local to functions too).
    let absent: Vec<_> = a.keys().filter(|k| !b.contains_key(k)).collect();
    assert!(absent.is_empty(), "{} absent or repeated, e.g. {:?}", absent.len(), &absent[..absent.len().min(10)]);
    eprintln!("compared {types} types, {members} members, {enumerators} enumerators; {} differences", bad.len());
    assert!(bad.is_empty(), "{} differences, e.g. {:#?}", bad.len(), &bad[..bad.len().min(20)]);
    assert!(types > 5000 && members > 50_000, "{types} types, {members} members");
    let key = |t: &str, k| (t.to_string(), k);
    let missing: Vec<&&str> = CORE_TYPES
        .iter()
        .filter(|t| {
            ![Kind::Struct, Kind::Union].iter().any(|&k| a.contains_key(&key(t, k)) && b.contains_key(&key(t, k)))
        })
        .collect();
    assert!(missing.is_empty(), "not compared: {missing:?}");
}

#[test]
fn globals_are_typed_from_dwarf() {
    let Some(p) = vmlinux_path() else { return };
    let k = dwarf_kernel(&p);
    let btf = k.btf().unwrap();
    let vm = Vmlinux::open(&p).unwrap();
    for (name, ty, section) in [
        ("init_task", "struct task_struct", ".data"),
        ("init_uts_ns", "struct uts_namespace", ".data"),
        ("avenrun", "long unsigned int [3]", ".bss"),
        ("nr_cpu_ids", "unsigned int", ".data"),
        ("runqueues", "struct rq", ".data..percpu"),
        ("jiffies_64", "u64", ".data"),
        ("modules", "struct list_head", ".data"),
        ("prb", "struct printk_ringbuffer *", ".data"),
    ] {
        let v = btf.find_var(name).unwrap_or_else(|| panic!("no VAR {name}"));
        assert_eq!(btf.type_name(v.ty).unwrap(), ty, "{name}");
        let (sec, off, size) = v.section.unwrap_or_else(|| panic!("{name} in no DATASEC"));
        let sec = btf.ty(sec).unwrap();
        assert_eq!(sec.name(), section, "{name}");
        assert_eq!(size as u64, btf.size_of(v.ty).unwrap(), "{name}");
        if section == ".data..percpu" {
            assert_eq!(Some(off as u64), vm.symbol(name), "{name}: per-CPU offset");
        }
        // Object reads through the VAR's type: no table of known globals needed.
        let o = k.global(name).unwrap();
        assert_eq!(o.ty, v.ty, "{name}");
    }
    // A global the BTF of the dump does not type, read through the DWARF types.
    let release = k.global("init_uts_ns").unwrap().member("name.release").unwrap().read_string(65).unwrap();
    assert_eq!(release, b"6.1.0-50-amd64");
    assert!(plain().btf().unwrap().find_var("init_uts_ns").is_none());
}

#[test]
fn vmlinux_symbols_equal_kallsyms_from_memory() {
    let Some(p) = vmlinux_path() else { return };
    let k = plain();
    let memory = k.symbols().unwrap();
    let vm = Vmlinux::open(&p).unwrap();
    let entries = vm.symbols().unwrap();
    let shift = sysmap::check(&entries, k.vmcoreinfo(), &|a, l| k.memory().read_vec(a, l).ok()).unwrap();
    assert_eq!(shift, 0x760_0000);
    let file = Symbols::from_entries(sysmap::relocate(entries, shift));
    let count = |s: &Symbols| {
        let mut m: HashMap<String, Vec<u64>> = HashMap::new();
        for (a, _, n) in s.iter() {
            m.entry(n.to_string()).or_default().push(a);
        }
        m
    };
    let (mm, fm) = (count(memory), count(&file));
    let mut shared = 0;
    let mut bad = Vec::new();
    for (name, addrs) in &mm {
        let Some(faddrs) = fm.get(name) else { continue };
        shared += 1;
        let (mut x, mut y) = (addrs.clone(), faddrs.clone());
        x.sort();
        y.sort();
        if !x.iter().all(|a| y.contains(a)) {
            bad.push(format!("{name}: memory {x:x?} file {y:x?}"));
        }
    }
    eprintln!("{} symbols in memory, {} in the file, {shared} names shared", memory.len(), file.len());
    assert!(bad.is_empty(), "{} differ: {:?}", bad.len(), &bad[..bad.len().min(10)]);
    assert!(shared * 100 >= mm.len() * 99, "{shared} of {}", mm.len());
    for name in ["init_task", "runqueues", "_stext", "native_safe_halt", "__per_cpu_offset"] {
        assert_eq!(file.address_of(name), memory.address_of(name), "{name}");
    }
    assert_eq!(
        file.lookup(0xffffffff8904e8cb).unwrap().format(0xffffffff8904e8cb).split('/').next(),
        Some("native_safe_halt+0xb")
    );
}

#[test]
fn tasks_are_the_same_with_dwarf_types() {
    let Some(p) = vmlinux_path() else { return };
    let (want, skipped) = plain().tasks().unwrap();
    let (got, skipped2) = dwarf_kernel(&p).tasks().unwrap();
    assert!(want.len() > 50, "{}", want.len());
    assert_eq!((got, skipped2), (want, skipped));
}

/// VMCOREINFO without the kallsyms symbols, as before 6.0.
const HIDE_KALLSYMS: (&str, &str) = ("SYMBOL(kallsyms_names)=", "SYMBOL(kallsyms_xxxxx)=");

#[test]
fn without_kallsyms_symbols_come_from_the_vmlinux_or_a_system_map() {
    let Some(p) = vmlinux_path() else { return };
    let (want, _) = plain().tasks().unwrap();
    // Nothing given: the message says what to give.
    let bare = Kernel::new(patched_dump(&[HIDE_KALLSYMS])).unwrap();
    let e = bare.symbols().err().unwrap().to_string();
    assert!(e.contains("--vmlinux") && e.contains("System.map"), "{e}");
    // The vmlinux: symbols from its table, types from its DWARF.
    let k = with_vmlinux(patched_dump(&[HIDE_KALLSYMS]), Some(p.clone()), None);
    assert_eq!(k.symbols().unwrap().address_of("init_task"), Some(0xffffffff8a01aa40));
    assert_eq!(k.tasks().unwrap().0, want);
    // A System.map written from the vmlinux's table: symbols from it, types from the dump's BTF.
    let vm = Vmlinux::open(&p).unwrap();
    let mut text = String::new();
    for (a, c, n) in vm.symbols().unwrap() {
        text.push_str(&format!("{a:016x} {c} {n}\n"));
    }
    let dir = std::env::temp_dir().join(format!("lockscope-sysmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let map = dir.join("System.map-6.1.0-50-amd64");
    std::fs::write(&map, &text).unwrap();
    let k = with_vmlinux(patched_dump(&[HIDE_KALLSYMS]), None, Some(map.clone()));
    assert_eq!(k.tasks().unwrap().0, want);
    // A System.map of another build (here: everything moved by a page) is refused.
    let mut moved = String::new();
    for (a, c, n) in vm.symbols().unwrap() {
        let a = if a >= 0x8000_0000_0000_0000 { a + 0x1000 } else { a };
        moved.push_str(&format!("{a:016x} {c} {n}\n"));
    }
    let other = dir.join("System.map-other");
    std::fs::write(&other, &moved).unwrap();
    let k = with_vmlinux(patched_dump(&[HIDE_KALLSYMS]), None, Some(other));
    let e = k.symbols().err().unwrap().to_string();
    assert!(e.contains("System.map-other") && e.contains("_stext"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_vmlinux_of_another_build_is_refused() {
    let Some(p) = vmlinux_path() else { return };
    // The dump says another build id: types and (without kallsyms) symbols are refused,
    // naming both ids.
    let other_id = ("BUILD-ID=06f8bde3", "BUILD-ID=16f8bde3");
    let k = with_vmlinux(patched_dump(&[other_id]), Some(p.clone()), None);
    let e = k.btf().err().unwrap().to_string();
    assert!(
        e.contains("06f8bde30046985060c60820f7a11515a33afb06")
            && e.contains("16f8bde30046985060c60820f7a11515a33afb06"),
        "{e}"
    );
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(k.symbols().is_ok(), "kallsyms from memory need no vmlinux");
    let k = with_vmlinux(patched_dump(&[other_id, HIDE_KALLSYMS]), Some(p.clone()), None);
    let e = k.symbols().err().unwrap().to_string();
    assert!(e.contains("16f8bde30046985060c60820f7a11515a33afb06"), "{e}");
    // Without a build id in the dump, the banner decides: the dump's own one matches.
    let vm = Vmlinux::open(&p).unwrap();
    let no_id = plain().vmcoreinfo().entries().filter(|(k, _)| *k != "BUILD-ID").map(|(k, v)| format!("{k}={v}\n"));
    let no_id = lockscope_dump::VmcoreInfo::parse(no_id.collect::<String>().as_bytes());
    let mem = |a: u64, l: usize| plain().memory().read_vec(a, l).ok();
    vm.check_against(&no_id, &mem).unwrap();
    assert!(vm.banner().unwrap().starts_with(b"Linux version 6.1.0-50-amd64 "));
    // ... and another banner in memory does not.
    let other = |a: u64, l: usize| {
        mem(a, l).map(|mut b| {
            b[20] ^= 1;
            b
        })
    };
    let e = vm.check_against(&no_id, &other).unwrap_err().to_string();
    assert!(e.contains("banner"), "{e}");
}

/// Every trace of a kernel: each CPU's and each task's (pc, sp) list.
fn all_traces(k: &Kernel) -> Vec<(String, Vec<(u64, u64)>)> {
    let pcs = |t: &lockscope_kernel::unwind::StackTrace| t.frames.iter().map(|f| (f.pc, f.sp)).collect::<Vec<_>>();
    let mut out: Vec<(String, Vec<(u64, u64)>)> =
        k.cpu_traces().into_iter().map(|c| (format!("cpu {}", c.cpu), pcs(&c.trace.unwrap()))).collect();
    for t in k.tasks().unwrap().0 {
        if t.current_on.is_none() {
            out.push((format!("pid {}", t.pid), pcs(&k.task_trace(&t).unwrap())));
        }
    }
    out
}

#[test]
fn dwarf_cfi_unwinds_every_stack_as_orc_does() {
    let Some(p) = vmlinux_path() else { return };
    let dwarf_first = Kernel::with_options(
        Dump::open(dump_path()).unwrap(),
        KernelOptions { vmlinux: Some(p), dwarf_unwind_first: true, ..Default::default() },
    )
    .unwrap();
    let (cfi, shift) = dwarf_first.call_frame_info().expect("the vmlinux has .debug_frame");
    assert!(cfi.len() > 30_000, "{} FDEs", cfi.len());
    let want = all_traces(plain());
    let got = all_traces(&dwarf_first);
    // CFI really served: most return addresses lie in functions it describes (entry code and
    // modules are not in the vmlinux's CFI; ORC took those).
    let pcs: Vec<u64> = got.iter().flat_map(|(_, t)| t.iter().skip(1).map(|f| f.0)).collect();
    let described = pcs.iter().filter(|&&pc| cfi.row(pc - 1 - shift).is_some()).count();
    assert!(described * 2 > pcs.len(), "CFI describes {described} of {} return addresses", pcs.len());
    assert_eq!(want.len(), got.len());
    for ((who, w), (_, g)) in want.iter().zip(&got) {
        assert_eq!(w, g, "{who}: DWARF CFI and ORC disagree");
    }
}

#[test]
fn source_lines_name_the_line_drgn_names() {
    let Some(p) = vmlinux_path() else { return };
    let k = Kernel::with_options(
        Dump::open(dump_path()).unwrap(),
        KernelOptions { vmlinux: Some(p), ..Default::default() },
    )
    .unwrap();
    // CPU 3 spins at native_queued_spin_lock_slowpath+48; drgn (DWARF) says the innermost
    // inlined call there is cpu_relax, arch/x86/include/asm/vdso/processor.h:19.
    let pc = k.cpu_frame(3).unwrap().pc;
    let f = k.symbols().unwrap().lookup(pc).unwrap();
    let lines = k.source_lines(f.address, pc + 1).unwrap();
    let at = lines.iter().rev().find(|l| l.address <= pc).unwrap();
    assert_eq!((at.file.as_str(), at.line), ("arch/x86/include/asm/vdso/processor.h", 19), "{lines:?}");
    assert!(lines.iter().any(|l| l.file == "kernel/locking/qspinlock.c"), "{lines:?}");
    // Without a vmlinux there are none, and no error.
    assert!(plain().source_lines(f.address, pc).unwrap().is_empty());
}
