//! Which registers belong to which CPU, on the repo's real dump: QEMU's notes are numbered
//! exactly; a dump with no register notes (a hypervisor dump, a damaged note area) falls back
//! to what the kernel's crash path saved in each CPU's `crash_notes` buffer; a kernel-written
//! note is matched to its CPU through that buffer, never by position alone. The buffers are
//! written here (through the dump's memory overlay) with the dump's own registers, laid out
//! as the kernel's `crash_save_cpu` lays them out.

mod repo_dump;

use repo_dump::{kernel, path};

use lockscope_dump::raw::notes::{NT_PRSTATUS, prstatus};
use lockscope_dump::{CpuNumbering, Dump, Notes, Registers};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::stacks::RegisterSource;

/// One `NT_PRSTATUS` note as `crash_save_cpu` writes it: "CORE", pid, registers.
fn prstatus_note(pid: i32, regs: &Registers) -> Vec<u8> {
    let Registers::X86_64(r) = regs else { panic!("x86_64 dump") };
    let words = [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi,
        r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs,
    ];
    let mut desc = vec![0u8; prstatus::X86_64_LEN];
    desc[prstatus::PID..prstatus::PID + 4].copy_from_slice(&pid.to_le_bytes());
    for (i, w) in words.iter().enumerate() {
        desc[prstatus::REGS + 8 * i..][..8].copy_from_slice(&w.to_le_bytes());
    }
    let mut note = Vec::new();
    note.extend_from_slice(&5u32.to_le_bytes());
    note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    note.extend_from_slice(&NT_PRSTATUS.to_le_bytes());
    note.extend_from_slice(b"CORE\0\0\0\0");
    note.extend_from_slice(&desc);
    note.extend_from_slice(&[0u8; 12]);
    note
}

/// The repo dump with each CPU's `crash_notes` buffer holding that CPU's note registers,
/// and with `notes` as its notes.
fn with_crash_notes(notes: Notes) -> Kernel {
    let k = kernel();
    let ptr = k.read_symbol_u64("crash_notes").unwrap();
    let mut patches = Vec::new();
    for n in &k.dump().notes().prstatus {
        let at = ptr + k.per_cpu_offset(n.cpu).unwrap();
        patches.push((k.memory().translate(at).unwrap(), prstatus_note(n.pid, &n.regs)));
    }
    Kernel::new(Dump::open(path()).unwrap().with_patches(patches).with_notes(notes)).unwrap()
}

fn traces(k: &Kernel) -> Vec<(u32, Vec<u64>)> {
    k.cpu_traces().into_iter().map(|c| (c.cpu, c.trace.unwrap().frames.iter().map(|f| f.pc).collect())).collect()
}

#[test]
fn qemu_notes_are_numbered_exactly() {
    let k = kernel();
    let cpus = k.cpus_with_registers();
    assert_eq!(cpus.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(cpus.iter().all(|c| c.2 == RegisterSource::Note));
}

#[test]
fn without_register_notes_the_crash_notes_in_memory_serve() {
    let want = traces(&kernel());
    let mut empty = kernel().dump().notes().clone();
    empty.prstatus.clear();
    empty.qemu.clear();
    empty.numbering = CpuNumbering::None;
    let k = with_crash_notes(empty);
    let cpus = k.cpus_with_registers();
    assert_eq!(cpus.len(), 4);
    assert!(cpus.iter().all(|c| c.2 == RegisterSource::CrashNotesInMemory), "{cpus:?}");
    assert_eq!(traces(&k), want);
    // Without them either (crash_notes all zero, as on a machine that never crashed): no CPU.
    let mut none = kernel().dump().notes().clone();
    none.prstatus.clear();
    none.qemu.clear();
    none.numbering = CpuNumbering::None;
    let bare = Kernel::new(Dump::open(path()).unwrap().with_notes(none)).unwrap();
    assert!(bare.cpus_with_registers().is_empty());
    assert!(bare.cpu_frame(1).is_err());
}

#[test]
fn kernel_written_notes_are_matched_through_crash_notes_not_by_position() {
    let want = traces(&kernel());
    // A kernel's notes, one CPU (1) missing: by position, CPU 2's note would be taken for
    // CPU 1's and CPU 3's for CPU 2's.
    let mut kernel_notes = kernel().dump().notes().clone();
    kernel_notes.prstatus.retain(|n| n.cpu != 1);
    for (i, n) in kernel_notes.prstatus.iter_mut().enumerate() {
        n.cpu = i as u32;
        n.note_index = i as u32;
        n.pid = 0;
    }
    kernel_notes.qemu.clear();
    kernel_notes.numbering = CpuNumbering::NoteOrder;
    let k = with_crash_notes(kernel_notes);
    let cpus = k.cpus_with_registers();
    assert_eq!(cpus.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 2, 3], "{cpus:?}");
    assert!(cpus.iter().all(|c| c.2 == RegisterSource::NoteMatchedInMemory));
    let got = traces(&k);
    for (cpu, pcs) in &got {
        assert_eq!(Some(pcs), want.iter().find(|w| w.0 == *cpu).map(|w| &w.1), "cpu {cpu}");
    }
}

#[test]
fn qemu_cpu_state_notes_serve_when_there_is_no_prstatus() {
    let want = traces(&kernel());
    let mut notes = kernel().dump().notes().clone();
    notes.prstatus.clear();
    notes.numbering = CpuNumbering::None;
    let k = Kernel::new(Dump::open(path()).unwrap().with_notes(notes)).unwrap();
    let cpus = k.cpus_with_registers();
    assert_eq!(cpus.len(), 4);
    assert!(cpus.iter().all(|c| c.2 == RegisterSource::QemuCpuState), "{cpus:?}");
    assert_eq!(traces(&k), want);
}
