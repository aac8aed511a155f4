//! Frames from the repo's real dump in the facts vocabulary: CPU 3's trace, as a log's call
//! trace of the same spin would name it, with the registers only memory has.

use lockscope_dump::Dump;
use lockscope_facts::FrameContext;
use lockscope_kernel::Kernel;
use std::path::PathBuf;

#[test]
fn a_spinning_cpus_frames_carry_names_contexts_and_registers() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let k = Kernel::new(Dump::open(p).unwrap()).unwrap();
    let trace = k.cpu_trace(3).trace.unwrap();
    let frames = lockscope_dumpfacts::frames(&k, &trace);
    let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(
        names,
        [
            "native_queued_spin_lock_slowpath",
            "_raw_spin_lock_irqsave",
            "rmqueue_bulk_demo",
            "page_alloc_fn",
            "kthread",
            "ret_from_fork"
        ]
    );
    assert_eq!(frames[0].offset, Some(0x30));
    assert_eq!(frames[2].module.as_deref(), Some("lockscen"));
    assert!(frames.iter().all(|f| f.reliable && f.context == FrameContext::Task && f.stack_pointer.is_some()));
    // The spinning frame knows every register; RDI is the lock (a module's data symbol).
    let rdi = frames[0].registers.iter().find(|r| r.0 == "rdi").unwrap().1;
    assert_eq!(k.lookup_address(rdi).unwrap().name, "demo_zone");
    assert!(frames[0].registers.len() >= 16);
    // Callers know only what the unwinder recovered.
    assert!(frames[1].registers.len() < 5, "{:?}", frames[1].registers);
}

#[test]
fn machine_state_of_the_ipi_case() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let k = Kernel::new(Dump::open(p).unwrap()).unwrap();
    let m = lockscope_dumpfacts::machine_state(&k);
    assert!(m.unknown.is_empty(), "{:?}", m.unknown);
    let cpu = |n: u32| m.cpus.iter().find(|c| c.cpu == n).unwrap();
    // CPU 3 spins with interrupts off and preemption disabled; its clock stopped 33.8 s ago
    // (crash's runq -T says 33.81 secs).
    assert_eq!(cpu(3).irqs_enabled, Some(false));
    assert_eq!(cpu(3).preempt_count.map(|p| p & 0x7fff_ffff), Some(1));
    assert_eq!(cpu(3).clock_lag_ns.map(|n| n / 10_000_000), Some(3380));
    // CPU 1 waits with interrupts on, preemption off, for CPU 3 only.
    assert_eq!(cpu(1).irqs_enabled, Some(true));
    assert_eq!(cpu(1).preempt_count.map(|p| p & 0x7fff_ffff), Some(1));
    assert_eq!(m.ipi_waits.len(), 1);
    let w = &m.ipi_waits[0];
    assert_eq!((w.cpu, w.targets.as_slice(), w.function.as_str()), (1, &[3][..], "smp_call_function_many_cond"));
    // ...and CPU 3's queue holds CPU 1's call, still locked, with the function it names.
    let from_1: Vec<_> = m.pending_calls.iter().filter(|c| c.source_cpu == Some(1)).collect();
    assert_eq!(from_1.len(), 1);
    assert_eq!((from_1[0].target_cpu, from_1[0].locked), (3, true));
    assert_eq!(from_1[0].function, w.call);
    assert!(m.pending_calls.iter().all(|c| c.target_cpu == 3));
}

#[test]
fn the_spinlock_its_waiter_and_its_possible_holder() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let k = Kernel::new(Dump::open(p).unwrap()).unwrap();
    let m = lockscope_dumpfacts::machine_state(&k);
    assert_eq!(m.locks.len(), 1, "{:#?}", m.locks);
    let l = &m.locks[0];
    assert_eq!(l.waiters, [3]);
    assert_eq!((l.value, l.locked, l.queued_cpu), (Some(1), Some(true), None));
    assert_eq!(l.symbol.as_deref(), Some("demo_zone+0x0 [lockscen]"));
    let holders: Vec<u32> = l.candidate_holders.iter().map(|h| h.task.pid).collect();
    assert_eq!(holders, [135], "{:#?}", l.candidate_holders);
    assert_eq!(l.candidate_holders[0].state, "D");
}

/// The spin-loop reader on real code and registers: CPU 1's cross-CPU wait loop polls bit 0
/// (`CSD_FLAG_LOCK`) of the flags of its call data for CPU 3, the very word `cfd_data` names;
/// CPU 0, idle, is in no such loop.
#[test]
fn the_spin_loop_at_a_cpus_rip_is_read_from_the_dump() {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    let k = Kernel::new(Dump::open(p).unwrap()).unwrap();
    let m = lockscope_dumpfacts::machine_state(&k);
    let cpu = |n: u32| m.cpus.iter().find(|c| c.cpu == n).unwrap();
    let s = lockscope_dumpfacts::cpu_spin_bit(&k, cpu(1)).expect("CPU 1 spins on a bit");
    assert_eq!((s.bit, s.while_set), (0, true));
    let call = &m.ipi_waits[0].locked_calls[0];
    assert_eq!(call.target, 3);
    let flags =
        k.offset_of("__call_single_data", "node.u_flags").or_else(|_| k.offset_of("__call_single_data", "flags"));
    let csd = m.pending_calls.iter().find(|p| p.source_cpu == Some(1)).unwrap().csd;
    assert_eq!(s.word, (csd + flags.unwrap()) & !7, "{:?}", s.evidence);
    assert_eq!(lockscope_dumpfacts::cpu_spin_bit(&k, cpu(0)), None);
    // CPU 1's loop is the cross-CPU wait's, read by that rule: no bit spinlock is reported.
    assert!(m.locks.iter().all(|l| l.kind != "bit_spinlock"), "{:?}", m.locks);
}
