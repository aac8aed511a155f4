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
