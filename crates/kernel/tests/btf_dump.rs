//! BTF read from real vmcores of Debian's 6.1.176 kernel: the repository's small dump
//! (makedumpfile `-c -d 31` of ipi_sleeping_holder.live) and, when ../shared is beside the
//! checkout, every corpus case. Without kallsyms yet, the blob is found by scanning physical
//! memory for a BTF header (magic 9F EB, version 1, flags 0, hdr_len 24, plausible section
//! lengths), starting at the kernel image when VMCOREINFO says where that is. Layouts are
//! checked against what the same kernel wrote into VMCOREINFO (`OFFSET(x.y)`, `SIZE(x)`,
//! `LENGTH(x.y)`, computed by its compiler), against memory (`init_uts_ns`), against each
//! other (array lengths = enumerators, nested paths = sums of offsets), and for consistency.

mod btf_common;

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use lockscope_kernel::btf::{Btf, Kind, Linkage, TypeError, TypeId};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const REPO_DUMP: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
/// x86_64 `__START_KERNEL_map`: kernel image addresses are this + physical address − phys_base.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
const PAGE: u64 = 4096;
const NEEDLE: &[u8] = b"\x9f\xeb\x01\x00\x18\x00\x00\x00";

/// A BTF-looking blob found in physical memory.
struct Candidate {
    paddr: u64,
    bytes: Vec<u8>,
}

/// Physical address of the kernel image (`_stext`) from VMCOREINFO, when it says.
fn kernel_image_paddr(dump: &Dump) -> Option<u64> {
    let info = dump.vmcoreinfo()?;
    let stext = info.symbol("_stext")?;
    let phys_base = info.phys_base()?;
    Some(stext.checked_sub(START_KERNEL_MAP)?.wrapping_add(phys_base as u64))
}

/// Scans dumped pages from `from` to the end of memory, then from the start up to `from`,
/// reading each header hit's whole blob (when the dump has all of it). Stops at the first blob
/// that loads as base BTF when `first_base` is set.
fn scan(dump: &Dump, from: u64, first_base: bool) -> Vec<Candidate> {
    let from = from / PAGE * PAGE;
    let ranges = dump.memory_ranges();
    let pages = |lo: u64, hi: u64| {
        ranges.iter().flat_map(move |r| {
            let (s, e) = (r.start.max(lo), r.end.min(hi));
            (s..e.max(s)).step_by(PAGE as usize)
        })
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; PAGE as usize + NEEDLE.len()];
    for page in pages(from, u64::MAX).chain(pages(0, from)) {
        if dump.read_phys(page, &mut buf[..PAGE as usize]).is_err() {
            continue;
        }
        // A header may straddle into the next page.
        let tail_ok = dump.read_phys(page + PAGE, &mut buf[PAGE as usize..]).is_ok();
        let limit = if tail_ok { PAGE as usize } else { PAGE as usize - NEEDLE.len() + 1 };
        for i in 0..limit {
            if buf[i] != NEEDLE[0] || &buf[i..i + NEEDLE.len()] != NEEDLE {
                continue;
            }
            if let Some(c) = read_candidate(dump, page + i as u64) {
                let base = Btf::parse(&c.bytes[..]).is_ok();
                out.push(c);
                if base && first_base {
                    return out;
                }
            }
        }
    }
    out
}

/// The blob whose header is at `paddr`, if its sections are plausible and all dumped.
fn read_candidate(dump: &Dump, paddr: u64) -> Option<Candidate> {
    let mut h = [0u8; 24];
    dump.read_phys(paddr, &mut h).ok()?;
    let w = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let (type_off, type_len, str_off, str_len) = (w(8), w(12), w(16), w(20));
    let plausible = type_off == 0 && type_len > 0 && type_len % 4 == 0 && str_off == type_len && str_len > 0;
    let total = 24 + str_off + str_len;
    if !plausible || total > 64 << 20 {
        return None;
    }
    let mut bytes = vec![0u8; total as usize];
    dump.read_phys(paddr, &mut bytes).ok()?;
    Some(Candidate { paddr, bytes })
}

/// The vmlinux BTF of a dump: the first candidate that loads as base BTF.
fn vmlinux_btf(dump: &Dump) -> Option<Candidate> {
    let from = kernel_image_paddr(dump).unwrap_or(0);
    scan(dump, from, true).into_iter().find(|c| Btf::parse(&c.bytes[..]).is_ok())
}

struct Repo {
    dump: Dump,
    vmlinux: Candidate,
    btf: Arc<Btf<'static>>,
}

fn repo() -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(|| {
        let dump = Dump::open(REPO_DUMP).expect("the repository's test dump opens");
        let vmlinux = vmlinux_btf(&dump).expect("the dump holds the kernel's BTF");
        let btf = Arc::new(Btf::parse(vmlinux.bytes.clone()).unwrap());
        Repo { dump, vmlinux, btf }
    })
}

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    p.is_dir().then_some(p)
}

/// Every `OFFSET(x.y)`, `SIZE(x)` and `LENGTH(x.y)` the kernel put in VMCOREINFO, answered from
/// BTF. Returns how many were compared.
fn check_against_vmcoreinfo(dump: &Dump, btf: &Btf) -> usize {
    let info = dump.vmcoreinfo().expect("VMCOREINFO");
    let mut compared = 0;
    for (key, value) in info.entries() {
        let Some((what, arg)) = key.strip_suffix(')').and_then(|k| k.split_once('(')) else { continue };
        let Ok(expected) = value.trim().parse::<u64>() else { continue };
        let got = match what {
            "SIZE" => btf.size_of(btf.lookup(arg).unwrap_or_else(|e| panic!("SIZE({arg}): {e}"))).unwrap(),
            "OFFSET" => {
                let (ty, path) = arg.split_once('.').unwrap();
                btf.member_of(ty, path).unwrap_or_else(|e| panic!("OFFSET({arg}): {e}")).byte_offset()
            }
            // LENGTH(symbol) is an array variable's length, which BTF does not describe.
            "LENGTH" if arg.contains('.') => {
                let (ty, path) = arg.split_once('.').unwrap();
                let m = btf.member_of(ty, path).unwrap();
                btf.resolved(m.ty).unwrap().array().unwrap_or_else(|| panic!("LENGTH({arg}): no array")).nelems as u64
            }
            _ => continue,
        };
        assert_eq!(got, expected, "{key} from BTF");
        compared += 1;
    }
    compared
}

fn off(btf: &Btf, ty: &str, path: &str) -> u64 {
    btf.member_of(ty, path).unwrap_or_else(|e| panic!("{ty} {path}: {e}")).byte_offset()
}

fn member_type(btf: &Btf, ty: &str, path: &str) -> String {
    btf.type_name(btf.member_of(ty, path).unwrap().ty).unwrap()
}

#[test]
fn vmlinux_btf_is_found_in_the_repository_dump() {
    let r = repo();
    let btf = &r.btf;
    let image = kernel_image_paddr(&r.dump).unwrap();
    eprintln!(
        "vmlinux BTF at paddr {:#x} (_stext at {image:#x}): {} bytes, {} types",
        r.vmlinux.paddr,
        r.vmlinux.bytes.len(),
        btf.last_id().0
    );
    // In the kernel image, after the text.
    assert!(r.vmlinux.paddr > image);
    assert!(!btf.is_big_endian());
    assert_eq!(btf.pointer_size(), 8);
    assert!(btf.last_id().0 > 50_000);
}

#[test]
fn layouts_match_what_the_kernel_wrote_into_vmcoreinfo() {
    let r = repo();
    let n = check_against_vmcoreinfo(&r.dump, &r.btf);
    eprintln!("{n} VMCOREINFO offsets, sizes and lengths agree with BTF");
    assert!(n >= 50, "only {n} compared");
}

#[test]
fn init_uts_ns_reads_back_through_btf_offsets() {
    let r = repo();
    let btf = &r.btf;
    let info = r.dump.vmcoreinfo().unwrap();
    let uts = (info.symbol("init_uts_ns").unwrap() - START_KERNEL_MAP).wrapping_add(info.phys_base().unwrap() as u64);
    let field = |path: &str| {
        let m = btf.member_of("struct uts_namespace", path).unwrap();
        let mut buf = vec![0u8; btf.size_of(m.ty).unwrap() as usize];
        r.dump.read_phys(uts + m.byte_offset(), &mut buf).unwrap();
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(field("name.sysname"), "Linux");
    assert_eq!(field("name.release"), info.osrelease().unwrap());
    assert_eq!(field("name.machine"), r.dump.metadata().machine);
    assert_eq!(member_type(btf, "struct uts_namespace", "name.release"), "char [65]");
}

#[test]
fn task_struct_layout() {
    let btf = &repo().btf;
    let task = btf.lookup("struct task_struct").unwrap();
    assert_eq!(btf.lookup("task_struct"), Ok(task));
    let size = btf.size_of(task).unwrap();
    let comm = btf.member(task, "comm").unwrap();
    eprintln!("struct task_struct: {size} bytes, comm at {}", comm.byte_offset());
    assert_eq!(btf.type_name(comm.ty).unwrap(), "char [16]");
    // The array's length is the kernel's own TASK_COMM_LEN enumerator.
    let (_, comm_len) = btf.find_enumerator("TASK_COMM_LEN").unwrap();
    assert_eq!(btf.ty(comm.ty).unwrap().array().unwrap().nelems as i128, comm_len.value());
    assert!(comm.byte_offset() + 16 <= size);
    assert_eq!(btf.offset_of(task, "comm[15]").unwrap(), comm.byte_offset() + 15);
    // Nested path = sum of the steps.
    let se = off(btf, "struct task_struct", "se");
    assert_eq!(
        off(btf, "struct task_struct", "se.sum_exec_runtime"),
        se + off(btf, "struct sched_entity", "sum_exec_runtime")
    );
    assert_eq!(member_type(btf, "struct task_struct", "se.sum_exec_runtime"), "u64");
    assert_eq!(member_type(btf, "struct task_struct", "__state"), "unsigned int");
    assert_eq!(member_type(btf, "struct task_struct", "pid"), "pid_t");
    assert_eq!(member_type(btf, "struct task_struct", "tasks"), "struct list_head");
    assert_eq!(member_type(btf, "struct task_struct", "stack"), "void *");
    let pid_t = btf.int_encoding(btf.lookup("pid_t").unwrap()).unwrap().unwrap();
    assert!(pid_t.signed && pid_t.size == 4 && pid_t.bits == 32);
    // task_struct has anonymous members (randomized_struct_fields_start/end are an anonymous
    // struct; the kernel's own layout check in VMCOREINFO does not cover it).
    assert!(btf.ty(task).unwrap().members().any(|m| m.name.is_empty()));
}

#[test]
fn task_struct_bitfields() {
    let btf = &repo().btf;
    let bit = |name: &str| btf.member_of("struct task_struct", name).unwrap();
    let reset = bit("sched_reset_on_fork");
    let load = bit("sched_contributes_to_load");
    let migrated = bit("sched_migrated");
    for b in [reset, load, migrated] {
        assert_eq!(b.bitfield_size, Some(1), "{b:?}");
        assert_eq!(btf.type_name(b.ty).unwrap(), "unsigned int");
    }
    // Consecutive one-bit fields share a word, one bit apart.
    assert_eq!(load.bit_offset, reset.bit_offset + 1);
    assert_eq!(migrated.bit_offset, load.bit_offset + 1);
    // `unsigned :0` moves sched_remote_wakeup to the next word.
    let remote = bit("sched_remote_wakeup");
    assert_eq!(remote.bitfield_size, Some(1));
    assert!(remote.bit_offset > migrated.bit_offset && remote.bit_offset % 32 == 0, "{remote:?}");
    // Whole members are no bitfields.
    assert_eq!(bit("comm").bitfield_size, None);
}

#[test]
fn runqueue_and_locks() {
    let btf = &repo().btf;
    let rq = btf.lookup("struct rq").unwrap();
    let clock = btf.member(rq, "clock").unwrap();
    assert_eq!(btf.type_name(clock.ty).unwrap(), "u64");
    assert_eq!(btf.size_of(clock.ty), Ok(8));
    assert_eq!(member_type(btf, "struct rq", "curr"), "struct task_struct *");
    assert_eq!(member_type(btf, "struct rq", "idle"), "struct task_struct *");
    assert!(clock.byte_offset() < btf.size_of(rq).unwrap());

    // list_head: two pointers.
    assert_eq!(btf.size_of(btf.lookup("struct list_head").unwrap()), Ok(16));
    assert_eq!(member_type(btf, "struct list_head", "next"), "struct list_head *");
    assert_eq!(off(btf, "struct list_head", "prev"), 8);

    // A queued spinlock without lock debugging: one 32-bit word, `locked` and `pending` bytes
    // and the `tail` half in anonymous structs of an anonymous union.
    let raw = btf.lookup("raw_spinlock_t").unwrap();
    assert_eq!(btf.type_name(btf.resolve(raw).unwrap()).unwrap(), "struct raw_spinlock");
    assert_eq!(btf.size_of(raw), Ok(4));
    assert_eq!(off(btf, "struct raw_spinlock", "raw_lock.val.counter"), 0);
    assert_eq!(member_type(btf, "struct raw_spinlock", "raw_lock.val.counter"), "int");
    assert_eq!(off(btf, "struct raw_spinlock", "raw_lock.locked"), 0);
    assert_eq!(off(btf, "struct raw_spinlock", "raw_lock.pending"), 1);
    assert_eq!(off(btf, "struct raw_spinlock", "raw_lock.tail"), 2);
    assert_eq!(member_type(btf, "struct raw_spinlock", "raw_lock.tail"), "u16");
    assert_eq!(btf.size_of(btf.lookup("spinlock_t").unwrap()), Ok(4));

    // rq's lock and zone's lock, down to the raw lock: same place as the lock.
    assert_eq!(off(btf, "struct rq", "__lock.raw_lock.val.counter"), off(btf, "struct rq", "__lock"));
    assert_eq!(off(btf, "struct zone", "lock.rlock.raw_lock"), off(btf, "struct zone", "lock"));
    assert_eq!(member_type(btf, "struct zone", "lock.rlock.raw_lock"), "arch_spinlock_t");

    // Indexes: zone.free_area[3].nr_free, pglist_data.node_zones[1].lock.
    let free_area = btf.size_of(btf.lookup("struct free_area").unwrap()).unwrap();
    assert_eq!(
        off(btf, "struct zone", "free_area[3].nr_free"),
        off(btf, "struct zone", "free_area") + 3 * free_area + off(btf, "struct free_area", "nr_free")
    );
    let zone = btf.size_of(btf.lookup("struct zone").unwrap()).unwrap();
    assert_eq!(
        off(btf, "struct pglist_data", "node_zones[1].lock"),
        off(btf, "struct pglist_data", "node_zones") + zone + off(btf, "struct zone", "lock")
    );
}

/// The paths of the brief, type first.
#[test]
fn member_paths_spelt_with_their_type() {
    let btf = &repo().btf;
    for (spec, ty, path) in [
        ("rq.clock", "struct rq", "clock"),
        ("task_struct.se.sum_exec_runtime", "struct task_struct", "se.sum_exec_runtime"),
        ("raw_spinlock.raw_lock.val.counter", "struct raw_spinlock", "raw_lock.val.counter"),
        ("zone.lock.rlock.raw_lock", "struct zone", "lock.rlock.raw_lock"),
        ("task_struct.comm", "struct task_struct", "comm"),
        ("struct pid.tasks[2]", "struct pid", "tasks[2]"),
        ("spinlock_t.rlock", "spinlock_t", "rlock"),
    ] {
        assert_eq!(btf.member_path(spec), btf.member_of(ty, path), "{spec}");
    }
    assert!(matches!(btf.member_path("rq.no_such_member"), Err(TypeError::NoMember { at: 3, .. })));
    assert_eq!(btf.member_path("no_such_type.x"), Err(TypeError::NotFound));
}

#[test]
fn enums() {
    let btf = &repo().btf;
    let pid_type = btf.lookup("enum pid_type").unwrap();
    let values: Vec<(&str, i128)> = btf.ty(pid_type).unwrap().enumerators().map(|e| (e.name, e.value())).collect();
    eprintln!("enum pid_type: {values:?}");
    let names: Vec<&str> = values.iter().map(|v| v.0).collect();
    assert_eq!(names, ["PIDTYPE_PID", "PIDTYPE_TGID", "PIDTYPE_PGID", "PIDTYPE_SID", "PIDTYPE_MAX"]);
    assert!(values.iter().enumerate().all(|(i, v)| v.1 == i as i128));
    // struct pid keeps one task list per pid type.
    let max = btf.enum_value(pid_type, "PIDTYPE_MAX").unwrap();
    let tasks = btf.member_of("struct pid", "tasks").unwrap();
    assert_eq!(btf.ty(tasks.ty).unwrap().array().unwrap().nelems as i128, max.value());
    assert_eq!(btf.enum_name(pid_type, 1), Some("PIDTYPE_TGID"));
    assert_eq!(btf.enum_name(pid_type, 99), None);
    assert_eq!(btf.find_enumerator("PIDTYPE_SID").map(|(id, e)| (id, e.raw)), Some((pid_type, 3)));
    // An anonymous enum's enumerator.
    let (anon, comm_len) = btf.find_enumerator("TASK_COMM_LEN").unwrap();
    assert_eq!(btf.ty(anon).unwrap().name(), "");
    assert_eq!(comm_len.value(), 16);
    assert_eq!(btf.type_name(anon).unwrap(), "enum <anonymous>");
}

#[test]
fn type_names_spelt_like_c() {
    let btf = &repo().btf;
    assert_eq!(
        member_type(btf, "struct sched_class", "enqueue_task"),
        "void (*)(struct rq *, struct task_struct *, int)"
    );
    assert_eq!(member_type(btf, "struct sched_class", "pick_next_task"), "struct task_struct *(*)(struct rq *)");
    assert_eq!(member_type(btf, "struct task_struct", "sched_class"), "const struct sched_class *");
    let bool_ = btf.int_encoding(btf.lookup("_Bool").unwrap()).unwrap().unwrap();
    assert!(bool_.is_bool && bool_.size == 1);
    let u64_ = btf.int_encoding(btf.lookup("u64").unwrap()).unwrap().unwrap();
    assert!(!u64_.signed && u64_.size == 8 && u64_.bits == 64);
    assert_eq!(btf.type_name(btf.lookup("u64").unwrap()).unwrap(), "u64");
    assert_eq!(btf.type_name(btf.resolve(btf.lookup("u64").unwrap()).unwrap()).unwrap(), "long long unsigned int");
    let func = btf.find("schedule", Kind::Func).unwrap();
    assert_eq!(btf.type_name(func).unwrap(), "void schedule(void)");
}

#[test]
fn per_cpu_variables() {
    let btf = &repo().btf;
    let rq = btf.find_var("runqueues").expect("runqueues has a VAR");
    assert_eq!(btf.type_name(rq.ty).unwrap(), "struct rq");
    assert_eq!(rq.linkage, Linkage::Global);
    let (sec, offset, size) = rq.section.expect("runqueues is in a DATASEC");
    assert_eq!(btf.ty(sec).unwrap().name(), ".data..percpu");
    assert_eq!(size as u64, btf.size_of(btf.lookup("struct rq").unwrap()).unwrap());
    eprintln!("runqueues: per-CPU offset {offset:#x}, {size} bytes");
    let current = btf.find_var("current_task").expect("current_task has a VAR in 6.1");
    assert_eq!(btf.type_name(current.ty).unwrap(), "struct task_struct *");
    assert_eq!(btf.type_name(current.var).unwrap(), "struct task_struct *current_task");
    assert!(btf.find_var("no_such_variable").is_none());
}

#[test]
fn whole_blob_is_consistent() {
    let btf = &repo().btf;
    let stats = btf_common::check_blob(btf);
    eprintln!("{stats:?}");
    assert!(stats.structs > 5000 && stats.bitfields > 100 && stats.anonymous_members > 100 && stats.vars > 100);
}

/// Now that kallsyms and page tables are read: the scanned blob is the one between
/// `__start_BTF` and `__stop_BTF`, and BTF offsets lead through real memory from each CPU's
/// runqueue to its current task, whose pid and comm drgn (with DWARF) printed for this dump.
#[test]
fn btf_offsets_walk_real_memory_from_runqueues_to_tasks() {
    let r = repo();
    let btf = &r.btf;
    let kernel = Kernel::new(Dump::open(REPO_DUMP).unwrap()).unwrap();
    let mem = kernel.memory();
    let start = kernel.symbol("__start_BTF").unwrap();
    let stop = kernel.symbol("__stop_BTF").unwrap();
    assert_eq!(stop - start, r.vmlinux.bytes.len() as u64);
    assert_eq!(mem.translate(start).unwrap(), r.vmlinux.paddr);
    assert!(mem.read_vec(start, (stop - start) as usize).unwrap() == r.vmlinux.bytes);

    // x86_64 before 6.15: per-CPU symbols are offsets in .data..percpu, as BTF's DATASEC says.
    let runqueues = btf.find_var("runqueues").unwrap();
    let (_, percpu_offset, _) = runqueues.section.unwrap();
    assert_eq!(kernel.symbol("runqueues").unwrap(), percpu_offset as u64);
    let per_cpu_offset = kernel.symbol("__per_cpu_offset").unwrap();
    let rq = btf.lookup("struct rq").unwrap();
    let task = btf.lookup("struct task_struct").unwrap();
    let (curr, idle, cpu_field) =
        (off(btf, "struct rq", "curr"), off(btf, "struct rq", "idle"), off(btf, "struct rq", "cpu"));
    let (comm, pid) = (btf.offset_of(task, "comm").unwrap(), btf.offset_of(task, "pid").unwrap());
    let task_of = |t: u64| {
        let name = mem.read_cstr(t + comm, 16).unwrap();
        (mem.read_u32(t + pid).unwrap(), String::from_utf8(name).unwrap())
    };
    let drgn = corpus().and_then(|c| std::fs::read_to_string(c.join("ipi_sleeping_holder.live/drgn.txt")).ok());
    for cpu in 0..r.dump.metadata().nr_cpus as u64 {
        let base = mem.read_u64(per_cpu_offset + 8 * cpu).unwrap();
        let this_rq = base.wrapping_add(percpu_offset as u64);
        assert_eq!(mem.read_u32(this_rq + cpu_field).unwrap() as u64, cpu, "rq.cpu of CPU {cpu}");
        // Each CPU's idle task is swapper/<cpu>, pid 0.
        let idle_task = mem.read_u64(this_rq + idle).unwrap();
        assert_eq!(task_of(idle_task), (0, format!("swapper/{cpu}")));
        let (curr_pid, curr_comm) = task_of(mem.read_u64(this_rq + curr).unwrap());
        eprintln!("CPU {cpu}: rq at {this_rq:#x} runs pid {curr_pid} {curr_comm}");
        if let Some(drgn) = &drgn {
            let line = format!("--- CPU {cpu}: pid {curr_pid} comm {curr_comm} state");
            assert!(drgn.contains(&line), "drgn saw another task on CPU {cpu}: not {line}");
        }
    }
    assert!(btf.size_of(rq).unwrap() > curr);
    if drgn.is_none() {
        eprintln!("note: ../shared/corpus not found; current tasks not compared with drgn");
    }
}

#[test]
fn module_split_btf_in_the_repository_dump() {
    let r = repo();
    // Everything BTF-looking in memory, but vmlinux's; a module's split BTF does not load alone
    // (its strings continue vmlinux's) but does on top of vmlinux.
    let all = scan(&r.dump, 0, false);
    let mut modules = 0;
    for c in all.iter().filter(|c| c.paddr != r.vmlinux.paddr) {
        if Btf::parse(&c.bytes[..]).is_ok() {
            assert_eq!(c.bytes, r.vmlinux.bytes, "another base BTF at {:#x}", c.paddr);
            continue;
        }
        let Ok(module) = Btf::parse_split(&c.bytes[..], r.btf.clone()) else { continue };
        modules += 1;
        assert_eq!(module.first_id(), TypeId(r.btf.last_id().0 + 1));
        btf_common::check_blob(&module);
        // Its structs use vmlinux's types by ID, and name lookups reach both.
        let own: Vec<_> = (module.first_id().0..=module.last_id().0).map(TypeId).collect();
        let uses_base = own.iter().flat_map(|&id| module.ty(id).unwrap().members()).find(|m| m.ty < module.first_id());
        let m = uses_base.expect("a module struct with a member of a vmlinux type");
        assert_eq!(module.type_name(m.ty).unwrap(), r.btf.type_name(m.ty).unwrap());
        let named =
            own.iter().map(|&id| module.ty(id).unwrap()).find(|t| t.kind() == Kind::Struct && !t.name().is_empty());
        if let Some(t) = named {
            assert_eq!(module.find(t.name(), Kind::Struct), Some(t.id()));
            assert_eq!(r.btf.find(t.name(), Kind::Struct), None, "{t:?} is the module's own");
            eprintln!(
                "module BTF at {:#x}: {} types, e.g. {}",
                c.paddr,
                module.own_len(),
                module.type_name(t.id()).unwrap()
            );
        }
        assert_eq!(module.lookup("struct task_struct"), r.btf.lookup("struct task_struct"));
    }
    assert!(modules >= 1, "no module BTF found among {} candidates", all.len());
}

#[test]
fn corpus_dumps_carry_the_same_btf() {
    let Some(corpus) = corpus() else {
        eprintln!("note: ../shared/corpus not found; corpus BTF checks skipped");
        return;
    };
    let r = repo();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    let mut checked = 0;
    for case in cases {
        let path = case.join("vmcore.mkd-zlib-d31");
        if !path.is_file() {
            continue;
        }
        let dump = Dump::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Same build, so the blob should sit as far from _stext as in the repository's dump
        // (KASLR moves both together); scan when it does not.
        let image = kernel_image_paddr(&dump).unwrap();
        let delta = r.vmlinux.paddr - kernel_image_paddr(&r.dump).unwrap();
        let found = read_candidate(&dump, image + delta)
            .filter(|c| Btf::parse(&c.bytes[..]).is_ok())
            .or_else(|| vmlinux_btf(&dump))
            .unwrap_or_else(|| panic!("{}: no BTF found", path.display()));
        // Same kernel build, other boots (KASLR moves the image): the same bytes.
        assert!(found.bytes == r.vmlinux.bytes, "{}: BTF differs", path.display());
        let btf = Btf::parse(&found.bytes[..]).unwrap();
        assert!(check_against_vmcoreinfo(&dump, &btf) >= 50);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} corpus dumps");
}

/// Load time of the real blob (run with `--release` for meaningful numbers): parse with
/// validation and the offset table, then the name index, then the enumerator index.
#[test]
fn parse_and_index_time() {
    let bytes = &repo().vmlinux.bytes;
    let mut parse = Vec::new();
    let mut names = Vec::new();
    let mut enums = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let btf = Btf::parse(&bytes[..]).unwrap();
        parse.push(t.elapsed());
        let t = Instant::now();
        btf.build_indexes(false);
        names.push(t.elapsed());
        let t = Instant::now();
        btf.build_indexes(true);
        enums.push(t.elapsed());
        assert!(btf.find("task_struct", Kind::Struct).is_some() && btf.find_enumerator("PIDTYPE_MAX").is_some());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "BTF {} bytes, {} types: parse {:?}, name index {:?}, enumerator index {:?} (median of 7, {} build)",
        bytes.len(),
        Btf::parse(&bytes[..]).unwrap().last_id().0,
        median(&mut parse),
        median(&mut names),
        median(&mut enums),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
}
