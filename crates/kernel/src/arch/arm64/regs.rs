//! arm64 registers: numbering (x0–x30 as DWARF numbers them, then sp, pc, pstate), the
//! dump note's register set, `struct pt_regs` frames on a stack, and the context a task
//! saves in `thread.cpu_context` when it is switched out.

use crate::arch::RegisterSet;
use crate::unwind::Frame;
use crate::{Kernel, KernelError};

pub const X29: usize = 29;
pub const LR: usize = 30;
pub const SP: usize = 31;
pub const PC: usize = 32;
pub const PSTATE: usize = 33;

pub const NAMES: &[&str] = &[
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17",
    "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30", "sp", "pc", "pstate",
];

/// crash's register block of an arm64 exception frame: (label, register, hex digits) by row,
/// labels padded as crash pads them.
pub const CRASH_ROWS: &[&[(&str, &str, usize)]] = &[
    &[(" PC", "pc", 16)],
    &[(" LR", "x30", 16)],
    &[(" SP", "sp", 16), ("PSTATE", "pstate", 8)],
    &[("X29", "x29", 16), ("X28", "x28", 16), ("X27", "x27", 16)],
    &[("X26", "x26", 16), ("X25", "x25", 16), ("X24", "x24", 16)],
    &[("X23", "x23", 16), ("X22", "x22", 16), ("X21", "x21", 16)],
    &[("X20", "x20", 16), ("X19", "x19", 16), ("X18", "x18", 16)],
    &[("X17", "x17", 16), ("X16", "x16", 16), ("X15", "x15", 16)],
    &[("X14", "x14", 16), ("X13", "x13", 16), ("X12", "x12", 16)],
    &[("X11", "x11", 16), ("X10", "x10", 16), (" X9", "x9", 16)],
    &[(" X8", "x8", 16), (" X7", "x7", 16), (" X6", "x6", 16)],
    &[(" X5", "x5", 16), (" X4", "x4", 16), (" X3", "x3", 16)],
    &[(" X2", "x2", 16), (" X1", "x1", 16), (" X0", "x0", 16)],
];

/// PSTATE.I: IRQs masked.
pub const PSTATE_I: u64 = 1 << 7;

/// The first 34 words of `struct pt_regs` (x0–x30, sp, pc, pstate): the note's layout too.
pub const PT_REGS_WORDS: usize = 34;

pub fn from_words(words: &[u64; PT_REGS_WORDS]) -> RegisterSet {
    let mut r = RegisterSet::default();
    for (i, &v) in words.iter().enumerate() {
        r.set(i, v);
    }
    r
}

pub fn from_note(n: &lockscope_dump::Aarch64Regs) -> RegisterSet {
    let mut words = [0u64; PT_REGS_WORDS];
    words[..31].copy_from_slice(&n.x);
    words[SP] = n.sp;
    words[PC] = n.pc;
    words[PSTATE] = n.pstate;
    from_words(&words)
}

/// Whether saved registers are user mode's: PSTATE.M is EL0t (or AArch32, M[4] set).
pub fn user_mode(r: &RegisterSet) -> bool {
    r.get(PSTATE).is_some_and(|p| p & 0xf == 0 || p & 0x10 != 0)
}

/// Where a task that is not running resumes: `thread.cpu_context` holds x19–x28, fp, sp and
/// pc as `cpu_switch_to` saved them; pc returns into `__switch_to`, fp is its frame record.
pub fn sleeping_task_frame(k: &Kernel, task: u64) -> Result<Frame, KernelError> {
    let ctx = k.object(task, "struct task_struct")?.member("thread.cpu_context")?;
    let mut regs = RegisterSet::default();
    for reg in 19..=28 {
        if let Ok(v) = ctx.member(&format!("x{reg}")).and_then(|m| m.read_u64()) {
            regs.set(reg, v);
        }
    }
    let fp = ctx.member("fp")?.read_u64()?;
    let sp = ctx.member("sp")?.read_u64()?;
    let pc = ctx.member("pc")?.read_u64()?;
    let pc = super::frames::strip_pac(pc, k.vmcoreinfo().number("KERNELPACMASK").unwrap_or(0) as u64);
    regs.set(X29, fp);
    regs.set(SP, sp);
    regs.set(PC, pc);
    // A task that never ran resumes at `ret_from_fork` itself: exact, not a return address.
    let exact = k.lookup_address(pc).is_some_and(|s| s.address == pc);
    Ok(Frame { exact_pc: exact, ..Frame::from_registers(regs, pc, sp) })
}
