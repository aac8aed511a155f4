//! The real arm64 dump in tests/data made harder, through the dump's overlays (the file is
//! never written): every return address signed with pointer-authentication bits, as on a
//! CPU with PAC and a kernel built with it, though VMCOREINFO's `KERNELPACMASK` says 0; and a
//! CPU interrupted on an IRQ stack whose page is gone; and, since no CPU of this dump was
//! caught in an interrupt, an interrupt frame laid out as the kernel's entry code lays it.
//! Traces must come out as on the intact dump, or end naming the address and the stack that
//! could not be read.

use lockscope_dump::{Dump, Notes, Registers};
use lockscope_kernel::Kernel;
use lockscope_kernel::arch::arm64::frames::frame_records;
use lockscope_kernel::unwind::{StackKind, StackTrace, Stop, TraceOwner};
use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib")
}

fn kernel() -> Kernel {
    Kernel::new(Dump::open(path()).unwrap()).unwrap()
}

/// A return address as a PAC-enabled kernel saves it: a code in bits 63:56 and 54:48 (here a
/// pseudo-random one per address), bit 55 kept.
fn sign(lr: u64) -> u64 {
    let code = (lr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) | 0x0080;
    (lr & 0x0000_ffff_ffff_ffff) | (code << 48)
}

/// Every trace of the dump: each CPU's, then each sleeping task's.
fn traces(k: &Kernel) -> Vec<(String, StackTrace)> {
    let mut out: Vec<(String, StackTrace)> =
        k.cpu_traces().into_iter().map(|c| (format!("cpu {}", c.cpu), c.trace.unwrap())).collect();
    for t in k.tasks().unwrap().0.into_iter().filter(|t| t.current_on.is_none()) {
        out.push((format!("pid {}", t.pid), k.task_trace(&t).unwrap()));
    }
    out
}

/// The frame pointers the traces start from: each CPU's x29, each sleeping task's saved one.
fn first_frame_pointers(k: &Kernel) -> Vec<u64> {
    let mut fps: Vec<u64> =
        k.cpu_traces().iter().filter_map(|c| c.trace.as_ref().ok()?.frames[0].regs.get(29)).collect();
    for t in k.tasks().unwrap().0.into_iter().filter(|t| t.current_on.is_none()) {
        let tr = k.stack_trace(TraceOwner { task: t.address, cpu: None }).unwrap();
        fps.extend(tr.frames[0].regs.get(29));
    }
    fps
}

/// The dump with every saved return address (frame records on all stacks, and x30 in each
/// CPU's note) signed.
fn signed_kernel() -> Kernel {
    let k = kernel();
    let mut patches = Vec::new();
    for fp in first_frame_pointers(&k) {
        for r in frame_records(k.memory(), fp, 0).0 {
            let at = k.memory().translate(r.fp + 8).unwrap();
            patches.push((at, sign(r.lr).to_le_bytes().to_vec()));
        }
    }
    assert!(patches.len() > 100, "{} return addresses", patches.len());
    let mut notes: Notes = k.dump().notes().clone();
    for p in &mut notes.prstatus {
        if let Registers::Aarch64(r) = &mut p.regs {
            r.x[30] = sign(r.x[30]);
        }
    }
    Kernel::new(Dump::open(path()).unwrap().with_patches(patches).with_notes(notes)).unwrap()
}

#[test]
fn signed_return_addresses_unwind_as_plain_ones() {
    let k = kernel();
    // This dump's CPU has no pointer authentication: VMCOREINFO says KERNELPACMASK=0.
    assert_eq!(k.vmcoreinfo().number("KERNELPACMASK"), Some(0));
    let signed = signed_kernel();
    let (before, after) = (traces(&k), traces(&signed));
    assert_eq!(before.len(), after.len());
    for ((who, a), (_, b)) in before.iter().zip(&after) {
        let pcs = |t: &StackTrace| t.frames.iter().map(|f| f.pc).collect::<Vec<_>>();
        assert_eq!(pcs(a), pcs(b), "{who}");
        assert_eq!(a.stop, b.stop, "{who}");
    }
}

#[test]
fn a_stack_scan_reads_signed_return_addresses() {
    // CPU 1's first frame record broken (its saved x29 points below itself): the unwinder
    // stops there and the scan of the rest of the stack must still see the signed callers.
    let k = kernel();
    let intact = k.cpu_trace(1).trace.unwrap();
    let fp = intact.frames[0].regs.get(29).unwrap();
    // Sign every record but the first, whose saved x29 becomes 8 (below it: no record).
    let mut patches = vec![(k.memory().translate(fp).unwrap(), 8u64.to_le_bytes().to_vec())];
    for r in frame_records(k.memory(), fp, 0).0.iter().skip(1) {
        patches.push((k.memory().translate(r.fp + 8).unwrap(), sign(r.lr).to_le_bytes().to_vec()));
    }
    let broken = Kernel::new(Dump::open(path()).unwrap().with_patches(patches)).unwrap();
    let t = broken.cpu_trace(1).trace.unwrap();
    assert!(!t.stop.is_end(), "{:?}", t.stop);
    assert!(t.scanned > 0, "nothing scanned: {:?}", t.stop);
    let scanned: Vec<u64> = t.frames[t.frames.len() - t.scanned..].iter().map(|f| f.pc).collect();
    for f in intact.frames.iter().skip(3) {
        assert!(scanned.contains(&f.pc), "the scan missed {:#x}: {scanned:x?}", f.pc);
    }
}

#[test]
fn a_missing_irq_stack_page_is_named() {
    // CPU 2 (idle) as if an interrupt had come: its stack and frame pointers on its IRQ
    // stack, whose pages the dump lacks.
    let k = kernel();
    let task = k.current_task(2).unwrap();
    let irq = k.arch().stacks(&k, task, Some(2)).into_iter().find(|s| s.kind == StackKind::Irq).unwrap();
    let page = k.dump().metadata().page_size;
    let gone: Vec<u64> =
        (irq.start..irq.end).step_by(page as usize).map(|va| k.memory().translate(va).unwrap()).collect();
    let at = irq.end - 0x100;
    let mut notes: Notes = k.dump().notes().clone();
    let p = notes.prstatus.iter_mut().find(|p| p.cpu == 2).unwrap();
    let Registers::Aarch64(r) = &mut p.regs else { panic!("not arm64") };
    (r.sp, r.x[29]) = (at, at);
    let hit = Kernel::new(Dump::open(path()).unwrap().with_notes(notes).without_pages(&gone)).unwrap();
    let t = hit.cpu_trace(2).trace.unwrap();
    assert_eq!(t.frames[0].pc, k.cpu_trace(2).trace.unwrap().frames[0].pc, "the interrupted PC stays");
    match &t.stop {
        Stop::Unreadable { address, why } => {
            assert!((irq.start..irq.end).contains(address), "{address:#x}");
            assert!(why.contains("IRQ stack"), "{why}");
        }
        other => panic!("stopped for {other:?}"),
    }
    // The other CPUs and every sleeping task are untouched.
    for c in [0, 1, 3] {
        assert_eq!(hit.cpu_trace(c).trace.unwrap(), k.cpu_trace(c).trace.unwrap(), "cpu {c}");
    }
}

#[test]
fn an_interrupt_frame_gives_the_interrupted_context_whole() {
    // CPU 2 (idle in cpu_do_idle) as if an IRQ had come, laid out as 6.1's el1h_64_irq does
    // it: a struct pt_regs below the interrupted stack pointer with its `stackframe` record,
    // x29 pointing at that record when el1h_64_irq_handler is called, and the handler's own
    // frame record below.
    let k = kernel();
    let intact = k.cpu_trace(2).trace.unwrap();
    let note = k.dump().notes().prstatus.iter().find(|p| p.cpu == 2).unwrap().regs;
    let Registers::Aarch64(real) = note else { panic!("not arm64") };
    let stackframe = k.offset_of("pt_regs", "stackframe").unwrap();
    let regs_at = (real.sp - 0x200) & !15;
    let record = regs_at - 16;
    let mut pt_regs: Vec<u64> = real.x.to_vec();
    pt_regs.extend([real.sp, real.pc, real.pstate & !0x80]);
    let entry = k.symbol("el1h_64_irq").unwrap();
    let call_return = entry + 100;
    assert!(k.arch().follows_call(&k, call_return), "el1h_64_irq+100 follows its bl");
    let mut words: Vec<(u64, u64)> = pt_regs.iter().enumerate().map(|(i, &v)| (regs_at + 8 * i as u64, v)).collect();
    words.push((regs_at + stackframe, real.x[29]));
    words.push((regs_at + stackframe + 8, real.pc));
    words.push((record, regs_at + stackframe));
    words.push((record + 8, call_return));
    let patches = words.iter().map(|&(va, v)| (k.memory().translate(va).unwrap(), v.to_le_bytes().to_vec())).collect();
    let handler = k.symbol("el1h_64_irq_handler").unwrap();
    let mut notes: Notes = k.dump().notes().clone();
    let p = notes.prstatus.iter_mut().find(|p| p.cpu == 2).unwrap();
    let Registers::Aarch64(r) = &mut p.regs else { unreachable!() };
    (r.pc, r.sp, r.x[29], r.x[30]) = (handler + 12, record, record, call_return);
    let hit = Kernel::new(Dump::open(path()).unwrap().with_patches(patches).with_notes(notes)).unwrap();
    let t = hit.cpu_trace(2).trace.unwrap();
    let name = |pc: u64| hit.lookup_address(pc).map(|s| s.name.to_string()).unwrap_or_default();
    assert_eq!(name(t.frames[0].pc), "el1h_64_irq_handler");
    assert_eq!(t.frames[1].pc, call_return);
    let ex = &t.frames[2];
    assert_eq!(ex.exception.as_ref().map(|e| e.address), Some(regs_at), "{:?}", t.frames);
    assert_eq!((ex.pc, ex.sp), (real.pc, real.sp));
    assert_eq!(ex.regs.get(19), Some(real.x[19]), "the interrupted registers come whole");
    assert_eq!(hit.arch().irqs_enabled(&ex.regs), Some(true));
    // Below the exception frame: the idle task's own trace, as without the interrupt.
    let rest: Vec<u64> = t.frames[2..].iter().map(|f| f.pc).collect();
    let before: Vec<u64> = intact.frames.iter().map(|f| f.pc).collect();
    assert_eq!(rest, before);
    assert_eq!(t.stop, intact.stop);
}
