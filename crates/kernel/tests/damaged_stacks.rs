//! Stack walks over damaged stacks, on the repo's real dump (rewritten through the dump's
//! memory overlay, the file untouched): random words, a frame that points back at itself, a
//! return address into data, a stack page that is gone. Each trace must end with a frame and
//! the reason it stopped — never a loop, a hang or a panic — and the other traces must stand.

mod repo_dump;

use repo_dump::{kernel, patched, path};

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use lockscope_kernel::tasks::Task;
use lockscope_kernel::unwind::{StackTrace, Stop};

/// The sleeping tasks in D state (the hung ones), with their traces on the intact dump.
fn sleepers(k: &Kernel) -> Vec<(Task, StackTrace)> {
    let (tasks, _) = k.tasks().unwrap();
    tasks
        .into_iter()
        .filter(|t| t.state_code == "UN" && t.current_on.is_none())
        .map(|t| {
            let tr = k.task_trace(&t).unwrap();
            (t, tr)
        })
        .collect()
}

fn trace_of(k: &Kernel, task: &Task) -> StackTrace {
    k.task_trace(&k.task(task.address).unwrap()).unwrap()
}

#[test]
fn intact_stacks_end_where_kernel_threads_start() {
    let k = kernel();
    let s = sleepers(&k);
    assert!(!s.is_empty());
    for (t, tr) in &s {
        assert_eq!(tr.stop, Stop::End, "pid {}: {:?}", t.pid, tr.stop);
        assert!(tr.frames.len() >= 5, "pid {}: {} frames", t.pid, tr.frames.len());
    }
    // Every CPU that left registers unwinds too.
    for c in k.cpu_traces() {
        let tr = c.trace.unwrap();
        assert!(tr.stop.is_end(), "cpu {}: {}", c.cpu, tr.stop);
    }
}

#[test]
fn a_garbage_return_address_ends_the_trace_there() {
    let k = kernel();
    let (t, tr) = sleepers(&k).remove(0);
    // The third frame's return address slot (just below its stack pointer) gets a data address.
    let f = &tr.frames[2];
    let data = k.symbol("jiffies").unwrap();
    let k2 = patched(&[(f.sp - 8, data)]);
    let bad = trace_of(&k2, &t);
    assert_eq!(bad.frames.len() - bad.scanned, 2, "{:?}", bad.frames);
    assert!(matches!(bad.stop, Stop::BadReturnAddress { pc, .. } if pc == data), "{:?}", bad.stop);
    // Below the break, the scan finds the rest of the real frames, each marked a guess.
    let rest: Vec<u64> = bad.frames[2..].iter().map(|f| f.pc).collect();
    assert!(bad.frames[2..].iter().all(|f| !f.reliable));
    for f in &tr.frames[3..] {
        assert!(rest.contains(&f.pc), "the scan missed {:#x}: {rest:x?}", f.pc);
    }
    // The other sleepers are untouched.
    for (other, before) in sleepers(&k).into_iter().skip(1) {
        assert_eq!(trace_of(&k2, &other), before, "pid {}", other.pid);
    }
}

#[test]
fn random_words_and_loops_never_hang_or_run_away() {
    let k = kernel();
    let (t, tr) = sleepers(&k).remove(0);
    let base = k.object(t.address, "struct task_struct").unwrap().member("stack").unwrap().read_u64().unwrap();
    let sp0 = tr.frames[0].sp;
    // Every word from the first frame to the top of the stack: a fixed pseudo-random series,
    // then words that point back into the stack below (a loop).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = Vec::new();
    let mut looping = Vec::new();
    let mut a = sp0 - 64;
    while a < base + 16384 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push((a, x));
        // A "frame" whose saved return address is a real function and whose next slot
        // points back at itself.
        looping.push((a, if (a / 8) % 2 == 0 { tr.frames[1].pc } else { a - 8 }));
        a += 8;
    }
    for words in [random, looping] {
        let k2 = patched(&words);
        let bad = trace_of(&k2, &t);
        assert!(bad.frames.len() - bad.scanned <= lockscope_kernel::unwind::MAX_FRAMES);
        assert!(bad.frames[bad.frames.len() - bad.scanned..].iter().all(|f| !f.reliable));
        assert!(!bad.frames.is_empty());
        assert_ne!(bad.stop, Stop::DepthLimit, "a walk over {} words ran to the depth limit", words.len());
    }
}

#[test]
fn a_missing_stack_page_is_named() {
    let k = kernel();
    let (t, tr) = sleepers(&k).remove(0);
    // The dump without the page that holds the task's saved frame.
    let page = k.memory().translate(tr.frames[0].sp).unwrap() & !0xfff;
    let k2 = Kernel::new(Dump::open(path()).unwrap().without_pages(&[page])).unwrap();
    match k2.task_trace(&k2.task(t.address).unwrap()) {
        Err(e) => assert!(e.to_string().contains("cannot read") || e.to_string().contains("filtered"), "{e}"),
        Ok(bad) => assert!(matches!(bad.stop, Stop::Unreadable { .. }), "{:?}", bad.stop),
    }
}
