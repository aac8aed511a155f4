//! Kernel data rewritten in the repo's real dump (through the dump's memory overlay, the
//! file untouched): a task list that loops, a pointer into nowhere, a broken module list,
//! garbage over the printk text ring. Each answer must name the damage and keep what the
//! rest of memory still gives.

mod repo_dump;

use repo_dump::{kernel, patched};

use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::DamageKind;

/// `tasks` list nodes of the processes, in list order.
fn process_nodes(k: &Kernel) -> Vec<u64> {
    let head = k.global("init_task").unwrap().member("tasks").unwrap().address;
    let mut nodes = vec![];
    let mut n = k.memory().read_u64(head).unwrap();
    while n != head {
        nodes.push(n);
        n = k.memory().read_u64(n).unwrap();
    }
    nodes
}

#[test]
fn a_task_list_that_loops_is_named_and_no_task_is_lost() {
    let k = kernel();
    let all = k.task_addresses().unwrap();
    assert!(k.damage().is_empty(), "{:?}", k.damage());
    let nodes = process_nodes(&k);
    // The 10th process's next goes back to the 3rd: a loop that skips everything after.
    let bad = patched(&[(nodes[9], nodes[2])]);
    // The 10th process's next goes to the 30th, whose prev is the 29th: a link that skips.
    let skip = patched(&[(nodes[9], nodes[29])]);
    skip.task_addresses().unwrap();
    let d = skip.damage();
    assert!(
        matches!(d[0].what, DamageKind::BrokenLink { next, back } if next == nodes[29] && back == nodes[28]),
        "{d:?}"
    );
    assert!(d[0].to_string().contains("does not link back"), "{}", d[0]);
    let found = bad.task_addresses().unwrap();
    let damage = bad.damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].at, nodes[9]);
    assert!(matches!(damage[0].what, DamageKind::Loop { to } if to == nodes[2]), "{damage:?}");
    assert!(damage[0].recovered >= nodes.len() - 10, "{damage:?}");
    assert!(damage[0].to_string().contains("task list (init_task.tasks) damaged at"), "{}", damage[0]);
    let mut a = all.clone();
    let mut b = found.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "every task is still found");
}

#[test]
fn a_task_list_broken_both_ways_is_completed_from_the_pid_tree() {
    let k = kernel();
    let total = k.task_addresses().unwrap().len();
    let nodes = process_nodes(&k);
    // next of one node and prev of a later one point into nowhere (non-canonical, unmapped).
    let bad = patched(&[(nodes[5], 0x1234_5678), (nodes[40] + 8, 0xffff_8bbb_0000_0000)]);
    let found = bad.task_addresses().unwrap();
    let damage = bad.damage();
    assert!(matches!(damage[0].what, DamageKind::BadPointer(0x1234_5678)), "{damage:?}");
    assert_eq!(found.len(), total, "the pid tree gives back what both walks lost");
    let (tasks, unreadable) = bad.tasks().unwrap();
    assert_eq!((tasks.len(), unreadable), (total, 0));
}

#[test]
fn a_broken_module_list_keeps_the_modules_before_the_break() {
    let k = kernel();
    let before = k.modules().unwrap().len();
    let head = k.symbol("modules").unwrap();
    let first = k.memory().read_u64(head).unwrap();
    let bad = patched(&[(first, first)]);
    let after = bad.modules().unwrap().len();
    assert!(after >= 1 && after <= before, "{after} of {before}");
    let damage = bad.damage();
    assert!(damage.iter().any(|d| d.structure.to_string().starts_with("module list")), "{damage:?}");
}

#[test]
fn garbage_over_the_printk_text_is_counted_as_damage_not_printed() {
    let k = kernel();
    let clean = k.log().unwrap();
    assert_eq!((clean.damaged, clean.skipped), (0, 0));
    let prb = k.read_symbol_u64("prb").unwrap();
    // prb->text_data_ring.data (OFFSET 48 + 16 on this kernel, from VMCOREINFO).
    let info = k.vmcoreinfo();
    let data_at =
        prb + info.offset("printk_ringbuffer.text_data_ring").unwrap() + info.offset("prb_data_ring.data").unwrap();
    let data = k.memory().read_u64(data_at).unwrap();
    // One page of the ring's text, overwritten with a repeated pattern.
    let words: Vec<(u64, u64)> = (0..512).map(|i| (data + 0x2000 + i * 8, 0x4141_4141_4141_4141)).collect();
    let bad = patched(&words);
    let log = bad.log().unwrap();
    assert!(log.damaged > 0, "{:?}", log.damage);
    assert!(log.records.len() + log.damaged as usize >= clean.records.len() - 1);
    assert!(log.records.iter().all(|r| !r.text.starts_with(b"AAAAAAAA")));
    let note = log.damage_note().unwrap();
    assert!(note.contains("damaged and not shown"), "{note}");
    // The records outside that page are all still there.
    assert!(log.records.len() > clean.records.len() / 2);
}
