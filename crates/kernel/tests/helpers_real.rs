//! The helpers on the repo's real dump (ipi_sleeping_holder.live: CPU 1 waits for CPU 3 to
//! run its cross-CPU call; CPU 3 spins with interrupts off, so the call is still queued):
//! the llist of CPU 3's `call_single_queue` holds that call, whose function is code; the
//! hlist of a `struct pid` holds its task; the online mask; a register note for a CPU the
//! kernel does not have is named as damage and not used.

mod repo_dump;

use repo_dump::{kernel, path};

use lockscope_dump::{Dump, Notes};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::Structure;

#[test]
fn the_pending_cross_cpu_call_is_on_cpu_3s_queue() {
    let k = kernel();
    let mut pending = Vec::new();
    for cpu in 0..4 {
        let head = k.global("call_single_queue").unwrap().per_cpu(cpu).unwrap().address;
        let walk = k.llist_nodes(head, Structure::CallSingleQueue { cpu }, 1024);
        assert!(walk.damage.is_none(), "cpu {cpu}: {:?}", walk.damage);
        pending.extend(walk.nodes.iter().map(|&n| (cpu, n)));
    }
    // Only CPU 3, the one with interrupts off, has calls waiting.
    assert!(!pending.is_empty());
    assert!(pending.iter().all(|&(cpu, _)| cpu == 3), "{pending:x?}");
    // Each node is the `node.llist` of a `struct __call_single_data` whose func is kernel code.
    let off = k.offset_of("__call_single_data", "node.llist").unwrap();
    for &(_, n) in &pending {
        let csd = k.object(n - off, "struct __call_single_data").unwrap();
        let func = csd.member("func").unwrap().read_u64().unwrap();
        assert!(k.is_kernel_text(func), "func {func:#x}");
    }
}

#[test]
fn a_pid_holds_its_task_and_the_cpu_masks_read() {
    let k = kernel();
    let (tasks, _) = k.tasks().unwrap();
    let t = tasks.iter().find(|t| t.state_code == "UN").unwrap();
    let task = k.object(t.address, "struct task_struct").unwrap();
    let pid = task.member("thread_pid").unwrap().read_u64().unwrap();
    let head = k.object(pid, "struct pid").unwrap().member("tasks[0]").unwrap().address;
    let walk = k.hlist_nodes(head, Structure::PidTasks { pid }, 64);
    let link = task.member("pid_links[0]").unwrap().address;
    assert_eq!(walk.nodes, vec![link]);
    assert!(walk.damage.is_none());
    assert_eq!(k.cpumask_at(k.symbol("__cpu_online_mask").unwrap(), 4).unwrap(), [0, 1, 2, 3]);
}

#[test]
fn a_note_for_a_cpu_that_does_not_exist_is_named() {
    let mut notes: Notes = kernel().dump().notes().clone();
    notes.prstatus[2].cpu = 9;
    notes.prstatus[2].pid = 10;
    let k = Kernel::new(Dump::open(path()).unwrap().with_notes(notes)).unwrap();
    let cpus: Vec<u32> = k.cpus_with_registers().iter().map(|c| c.0).collect();
    assert_eq!(cpus, [0, 1, 3]);
    let damage = k.damage();
    assert!(damage.iter().any(|d| d.structure == Structure::CpuNotes && d.to_string().contains("CPU 9")), "{damage:?}");
    // CPU 2 has no registers now, and says so; the others still unwind.
    assert!(k.cpu_frame(2).is_err());
    assert_eq!(k.cpu_traces().len(), 3);
}

/// The spinlock CPU 3 spins on holds 0x1: locked, nobody pending or queued. Nobody is queued
/// on any lock in this dump, so no CPU has an MCS node in use: a value whose tail names CPU 3
/// finds no chain to it and gives the tail alone, read from CPU 3's own `qnodes`.
#[test]
fn the_spinlock_queue_is_read_from_the_per_cpu_mcs_nodes() {
    use lockscope_kernel::helpers::locks::QspinlockValue;
    let k = kernel();
    let cpu3 = k.cpu_trace(3).trace.unwrap();
    let slowpath = cpu3
        .frames
        .iter()
        .find(|f| k.lookup_address(f.lookup_pc()).is_some_and(|s| s.name == "native_queued_spin_lock_slowpath"));
    let rdi = slowpath.and_then(|f| f.regs.get(5)).expect("RDI at the slow path");
    let v = k.memory().read_u32(rdi).unwrap();
    assert_eq!(QspinlockValue::decode(v), QspinlockValue { locked: true, pending: false, tail: None });
    assert!(k.qspinlock_queue(v).unwrap().is_empty());
    let q = k.qspinlock_queue((4 << 18) | 1).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].cpu, q[0].node), (3, 0));
    assert_eq!(q[0].address, k.per_cpu_address("qnodes", 3).unwrap());
}

/// What addresses belong to, as crash's `kmem ADDR` says: every task but the idle tasks is a
/// `task_struct` slab object starting at its own address (a word inside it too); a run queue
/// is CPU n's copy of the per-CPU `runqueues`; `init_task` is a global.
#[test]
fn addresses_are_named_by_their_slab_cache_per_cpu_variable_or_symbol() {
    use lockscope_kernel::helpers::whatis::AddressOwner;
    let k = kernel();
    let (tasks, _) = k.tasks().unwrap();
    let mut slab = 0;
    for t in tasks.iter().filter(|t| t.pid != 0) {
        match k.whatis(t.address + 0x40) {
            Some(AddressOwner::Slab(o)) => {
                assert_eq!((o.cache.as_str(), o.object), ("task_struct", t.address), "pid {}", t.pid);
                // The FPU state at its end is sized at boot: smaller than BTF's static one.
                assert!((4096..=k.size_of("task_struct").unwrap()).contains(&o.size), "{}", o.size);
                slab += 1;
            }
            other => panic!("pid {} at {:#x}: {other:?}", t.pid, t.address),
        }
    }
    assert!(slab > 50, "{slab} tasks");
    let rq2 = k.per_cpu_address("runqueues", 2).unwrap();
    assert_eq!(k.whatis(rq2 + 8), Some(AddressOwner::PerCpu { cpu: 2, name: "runqueues+0x8".into() }));
    let init = k.symbol("init_task").unwrap();
    assert_eq!(k.whatis(init).map(|o| o.to_string()), Some("init_task+0x0: init_task.thread_info.flags".into()));
}

/// A zone's lock (the seeds' `zone->lock`) is named by its member path in its node's
/// `pglist_data` and by the zone's own name, as an expert reads it with crash's `struct`.
#[test]
fn a_zone_lock_is_named_by_its_node_member_path_and_zone_name() {
    use lockscope_kernel::helpers::whatis::AddressOwner;
    let k = kernel();
    let node0 = k.memory().read_u64(k.symbol("node_data").unwrap()).unwrap();
    let zone1 = k.object(node0, "struct pglist_data").unwrap().member("node_zones[1]").unwrap();
    let lock = zone1.member("lock").unwrap().address;
    let name = zone1.member("name").unwrap().deref().unwrap().read_string(16).unwrap();
    let want = format!("NODE_DATA(0).node_zones[1].lock (zone {})", String::from_utf8_lossy(&name));
    assert_eq!(k.whatis(lock), Some(AddressOwner::Member(want.clone())));
    assert!(want.ends_with("(zone DMA32)"), "{want}");
    // Inside the lock word: the offset past the member.
    let Some(AddressOwner::Member(inner)) = k.whatis(lock + 1) else { panic!() };
    assert!(inner.starts_with("NODE_DATA(0).node_zones[1].lock+0x1"), "{inner}");
}
