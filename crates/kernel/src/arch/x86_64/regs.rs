//! x86_64 registers: numbering, the dump note's register set, `struct pt_regs` frames on a
//! stack, and the frame a task saves when it is switched out.

use crate::arch::RegisterSet;
use crate::unwind::Frame;
use crate::{Kernel, KernelError};

// DWARF numbering for the general registers (so CFI from a vmlinux maps directly), then the
// ones DWARF numbers far apart.
pub const RAX: usize = 0;
pub const RDX: usize = 1;
pub const RCX: usize = 2;
pub const RBX: usize = 3;
pub const RSI: usize = 4;
pub const RDI: usize = 5;
pub const RBP: usize = 6;
pub const RSP: usize = 7;
pub const R8: usize = 8;
pub const R10: usize = 10;
pub const R13: usize = 13;
pub const RIP: usize = 16;
pub const RFLAGS: usize = 17;
pub const CS: usize = 18;
pub const SS: usize = 19;
pub const ORIG_RAX: usize = 20;

/// RFLAGS.IF: interrupts enabled.
pub const RFLAGS_IF: u64 = 1 << 9;

/// crash's `[exception RIP: …]` block: (label, register, hex digits) by row, labels padded
/// as crash pads them.
pub const CRASH_ROWS: &[&[(&str, &str, usize)]] = &[
    &[("RIP", "rip", 16), ("RSP", "rsp", 16), ("RFLAGS", "rflags", 8)],
    &[("RAX", "rax", 16), ("RBX", "rbx", 16), ("RCX", "rcx", 16)],
    &[("RDX", "rdx", 16), ("RSI", "rsi", 16), ("RDI", "rdi", 16)],
    &[("RBP", "rbp", 16), (" R8", "r8", 16), (" R9", "r9", 16)],
    &[("R10", "r10", 16), ("R11", "r11", 16), ("R12", "r12", 16)],
    &[("R13", "r13", 16), ("R14", "r14", 16), ("R15", "r15", 16)],
    &[("ORIG_RAX", "orig_rax", 16), ("CS", "cs", 4), ("SS", "ss", 4)],
];

pub const NAMES: &[&str] = &[
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags", "cs", "ss", "orig_rax",
];

/// `struct pt_regs` as 21 words, in its order (also the start of the note's `user_regs_struct`).
const PT_REGS_ORDER: [usize; 21] =
    [15, 14, 13, 12, RBP, RBX, 11, R10, 9, R8, RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, CS, RFLAGS, RSP, SS];
pub const PT_REGS_SIZE: u64 = 21 * 8;
/// Offset of `ip` in `struct pt_regs`: where the hardware's iret frame starts.
pub const IRET_FRAME_OFFSET: u64 = 16 * 8;

/// The registers of a `struct pt_regs`, from its 21 words.
pub fn from_pt_regs(words: &[u64; 21]) -> RegisterSet {
    let mut r = RegisterSet::default();
    for (i, &reg) in PT_REGS_ORDER.iter().enumerate() {
        r.set(reg, words[i]);
    }
    r
}

/// The registers of an iret frame (ip, cs, flags, sp, ss): all an interrupt saves before the
/// entry code saves the rest.
pub fn from_iret_frame(words: &[u64; 5]) -> RegisterSet {
    let mut r = RegisterSet::default();
    for (reg, v) in [RIP, CS, RFLAGS, RSP, SS].into_iter().zip(words) {
        r.set(reg, *v);
    }
    r
}

pub fn from_note(n: &lockscope_dump::X86_64Regs) -> RegisterSet {
    from_pt_regs(&[
        n.r15, n.r14, n.r13, n.r12, n.rbp, n.rbx, n.r11, n.r10, n.r9, n.r8, n.rax, n.rcx, n.rdx, n.rsi, n.rdi,
        n.orig_rax, n.rip, n.cs, n.eflags, n.rsp, n.ss,
    ])
}

/// Whether saved registers are user mode's (the CPL bits of CS).
pub fn user_mode(r: &RegisterSet) -> bool {
    r.get(CS).is_some_and(|cs| cs & 3 == 3)
}

/// Where a task that is not running resumes: `thread.sp` points at the `struct
/// inactive_task_frame` that `__switch_to_asm` pushed (callee-saved registers, then the
/// return address into `__schedule`); the task's stack continues above it.
pub fn sleeping_task_frame(k: &Kernel, task: u64) -> Result<Frame, KernelError> {
    let sp = k.object(task, "struct task_struct")?.member("thread.sp")?.read_u64()?;
    let frame = k.object(sp, "struct inactive_task_frame")?;
    let mut regs = RegisterSet::default();
    for (name, reg) in [("r15", 15), ("r14", 14), ("r13", 13), ("r12", 12), ("bx", RBX), ("bp", RBP)] {
        if let Ok(v) = frame.member(name).and_then(|m| m.read_u64()) {
            regs.set(reg, v);
        }
    }
    let pc = frame.member("ret_addr")?.read_u64()?;
    let size = k.size_of("struct inactive_task_frame").unwrap_or(7 * 8);
    regs.set(RIP, pc);
    regs.set(RSP, sp + size);
    // A task that never ran resumes at the first instruction of the fork return path: that
    // address is exact, not a return address (the kernel's unwinder says the same).
    let exact = k.lookup_address(pc).is_some_and(|s| s.address == pc);
    Ok(Frame { exact_pc: exact, ..Frame::from_registers(regs, pc, sp + size) })
}
