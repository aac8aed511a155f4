//! The arm64 kernel view on the real arm64 dump in tests/data (QEMU's kdump-zlib of Debian
//! 6.1.0-50-arm64, whose kallsyms lists code only): the data symbols found from BTF and code
//! against that kernel's System.map, and the stacks against truth.json.

use lockscope_kernel::Kernel;
use lockscope_kernel::unwind::{Stop, TraceOwner};
use std::path::PathBuf;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(rel)
}

fn kernel() -> Kernel {
    let dump = lockscope_dump::Dump::open(data("dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib")).unwrap();
    Kernel::new(dump).unwrap()
}

fn truth() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data("arm64/ipi_sleeping_holder.live.truth.json")).unwrap()).unwrap()
}

/// System.map's link-time addresses moved by the dump's KASLR offset.
fn system_map(k: &Kernel) -> Vec<(String, u64)> {
    let shift = k.vmcoreinfo().kernel_offset().unwrap();
    std::fs::read_to_string(data("arm64/System.map-6.1.0-50-arm64.subset"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let a = u64::from_str_radix(f.next().unwrap(), 16).unwrap();
            let name = f.nth(1).unwrap().to_string();
            (name, a.wrapping_add(shift))
        })
        .collect()
}

#[test]
fn data_symbols_found_without_kallsyms_match_the_system_map() {
    let k = kernel();
    let kallsyms = k.symbols().unwrap();
    assert!(kallsyms.address_of("init_task").is_none(), "this kernel's kallsyms lists code only");
    let map = system_map(&k);
    // What lockscope must find, and what it may not (then it must say so, not guess).
    let required = [
        "__per_cpu_offset",
        "__per_cpu_start",
        "__per_cpu_end",
        "runqueues",
        "cfd_data",
        "call_single_queue",
        "irq_stack_ptr",
        "overflow_stack",
        "init_task",
        "init_pid_ns",
        "jiffies",
        "jiffies_64",
        "modules",
        "nr_cpu_ids",
        "rcu_state",
        "avenrun",
        "tainted_mask",
        "panic_cpu",
        "rcu_data",
        "qnodes",
        "__cpu_online_mask",
        "init_stack",
        "__end_init_task",
        "sysctl_hung_task_timeout_secs",
    ];
    for (name, address) in &map {
        match k.symbol(name) {
            Ok(a) => assert_eq!(a, *address, "{name}: found {a:#x}, System.map says {address:#x}"),
            Err(e) => assert!(!required.contains(&name.as_str()), "{name} not found: {e}"),
        }
    }
    let found = k.found_symbols();
    for name in required {
        assert!(found.symbols.contains_key(name), "{name} is not among the found symbols");
    }
    assert!(
        found.symbols["__per_cpu_start"].how.contains("per-CPU references"),
        "{:?}",
        found.symbols["__per_cpu_start"]
    );
    assert!(found.symbols["init_task"].how.contains("runqueues[0].idle"));
}

#[test]
fn the_btf_blob_is_found_after_the_text() {
    let k = kernel();
    let map = system_map(&k);
    let start = map.iter().find(|(n, _)| n == "__start_BTF").unwrap().1;
    let btf = k.btf().unwrap();
    assert!(btf.lookup("struct task_struct").is_ok());
    // The blob read is the one System.map places: its first bytes are BTF's header.
    let head = k.memory().read_vec(start, 4).unwrap();
    assert_eq!(head, [0x9f, 0xeb, 1, 0]);
}

/// Function names of a trace, innermost first.
fn names(k: &Kernel, owner: TraceOwner) -> (Vec<String>, Stop) {
    let t = k.stack_trace(owner).unwrap();
    let names = t
        .frames
        .iter()
        .filter(|f| f.reliable)
        .map(|f| k.lookup_address(f.lookup_pc()).map_or("?".into(), |s| s.name.to_string()))
        .collect();
    (names, t.stop)
}

/// Whether `want` appears in `got` in order, consecutively.
fn contains_run(got: &[String], want: &[String]) -> bool {
    got.windows(want.len()).any(|w| w == want)
}

#[test]
fn every_thread_of_truth_unwinds_to_its_frames() {
    let k = kernel();
    let truth = truth();
    for link in truth["expected"]["waits_for_chain"].as_array().unwrap() {
        let want: Vec<String> = link["frames"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().into()).collect();
        let pid = link["pid"].as_u64().unwrap() as u32;
        let task = k.tasks().unwrap().0.into_iter().find(|t| t.pid == pid).unwrap();
        let cpu = link["cpu"].as_u64().map(|c| c as u32);
        let (got, stop) = names(&k, TraceOwner { task: task.address, cpu });
        assert!(contains_run(&got, &want), "pid {pid}: {got:?} lacks {want:?}");
        assert_eq!(stop, Stop::End, "pid {pid}: {got:?}");
        assert_eq!(got.last().map(String::as_str), Some("ret_from_fork"), "pid {pid}");
    }
}

#[test]
fn a_leaf_functions_caller_comes_from_the_link_register() {
    // CPU 3 stopped in queued_spin_lock_slowpath's spin loop, whose frame record (at x29) was
    // saved by its caller's caller: the caller itself is only in LR.
    let k = kernel();
    let t = k.stack_trace(TraceOwner { task: k.current_task(3).unwrap(), cpu: Some(3) }).unwrap();
    let lr = t.frames[0].regs.get(30).unwrap();
    assert_eq!(t.frames[1].pc, lr);
    assert!(k.lookup_address(lr).unwrap().module.is_some(), "the caller is the module's");
    // Interrupts masked: PSTATE.I.
    assert_eq!(k.arch().irqs_enabled(&t.frames[0].regs), Some(false));
    let t1 = k.stack_trace(TraceOwner { task: k.current_task(1).unwrap(), cpu: Some(1) }).unwrap();
    assert_eq!(k.arch().irqs_enabled(&t1.frames[0].regs), Some(true));
}

#[test]
fn the_spin_loop_polls_the_lock_of_truth() {
    let k = kernel();
    let truth = truth();
    let want = truth["locks"]["demo_zone.lock"]["lock_address"].as_str().unwrap();
    let want = u64::from_str_radix(want.trim_start_matches("0x"), 16).unwrap();
    let t = k.stack_trace(TraceOwner { task: k.current_task(3).unwrap(), cpu: Some(3) }).unwrap();
    let f = &t.frames[0];
    let (addr, reg) = k.arch().polled_address(&k, f.pc, &|r| f.regs.get(r)).unwrap();
    assert_eq!(addr, want);
    assert_eq!(k.arch().register_names()[reg], "x19");
}
