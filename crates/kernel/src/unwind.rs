//! Stack traces from the dump: the arch-neutral unwinding loop.
//!
//! A trace starts from registers — a CPU's dump note, or the frame a sleeping task saved
//! when it was switched out — and asks the architecture for one step at a time
//! ([`crate::arch::Architecture::unwind_step`]). The loop owns the rules that keep a walk
//! over damaged memory finite and honest: the stack pointer grows within one stack (or stays,
//! once, from a frame caught with whole registers to its caller), moves
//! only to a stack not visited before (IRQ or exception stack → the task stack), return
//! addresses are kernel text, and the depth is bounded. Every trace ends with the reason it
//! stopped.

use crate::arch::RegisterSet;
use crate::{Kernel, KernelError};

/// No kernel stack holds more frames than this; a walk that gets here is looping.
pub const MAX_FRAMES: usize = 192;
/// Return addresses a stack scan shows at most after the unwinder stopped.
const MAX_SCANNED: usize = 48;

/// Which stack a frame is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StackKind {
    /// The task's own kernel stack.
    Task,
    /// The CPU's hard-IRQ stack (softirqs run on it too on x86_64).
    Irq,
    /// An exception stack: NMI, DF (double fault), DB (debug), MCE, VC, VC2.
    Exception(&'static str),
    /// The entry trampoline stack.
    Entry,
    /// On no stack known for this task and CPU.
    Unknown,
}

impl StackKind {
    /// crash's name for the stack, as in `--- <IRQ stack> ---`.
    pub fn crash_name(self) -> String {
        match self {
            StackKind::Task => "task stack".into(),
            StackKind::Irq => "IRQ stack".into(),
            StackKind::Exception(n) => format!("{n} exception stack"),
            StackKind::Entry => "entry stack".into(),
            StackKind::Unknown => "unknown stack".into(),
        }
    }
}

/// One stack: `[start, end)` and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    pub kind: StackKind,
    pub start: u64,
    pub end: u64,
}

/// One frame of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The instruction: where the CPU was (first frame, interrupted context) or where a call
    /// returns to.
    pub pc: u64,
    pub sp: u64,
    /// `pc` is the instruction itself, not a return address (look-ups use it as is rather than
    /// `pc - 1`).
    pub exact_pc: bool,
    /// The registers known at this frame: all of them where they were saved whole (a CPU's
    /// note, an exception frame); the few an unwinder recovers elsewhere.
    pub regs: RegisterSet,
    /// Where the registers were saved when this frame was interrupted (`struct pt_regs`):
    /// crash's `[exception RIP: …]` block.
    pub exception: Option<ExceptionFrame>,
    pub stack: StackKind,
    /// False where the unwinder guessed (no unwind data: frame pointers or a stack scan).
    pub reliable: bool,
}

/// A register frame saved on a stack by an interrupt or exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionFrame {
    /// Its address on the stack (`struct pt_regs *`).
    pub address: u64,
    /// Only the hardware part was saved (x86_64 iret frame: ip, cs, flags, sp, ss).
    pub partial: bool,
}

impl Frame {
    /// The address to name this frame by: a return address may lie just past the end of
    /// its function (a call to a function that never returns is its last instruction), so
    /// the call instruction's last byte is looked up instead.
    pub fn lookup_pc(&self) -> u64 {
        if self.exact_pc { self.pc } else { self.pc.wrapping_sub(1) }
    }

    /// A caller's frame: `pc` is the return address found at `sp - 8`-ish, `regs` what the
    /// unwinder recovered (the program counter and stack pointer set here).
    pub fn call(pc: u64, sp: u64, mut regs: RegisterSet, (pc_reg, sp_reg): (usize, usize), reliable: bool) -> Frame {
        regs.set(pc_reg, pc);
        regs.set(sp_reg, sp);
        Frame { pc, sp, exact_pc: false, regs, exception: None, stack: StackKind::Unknown, reliable }
    }

    /// A first frame from a full register set (a CPU's note).
    pub fn from_registers(regs: RegisterSet, pc: u64, sp: u64) -> Frame {
        Frame { pc, sp, exact_pc: true, regs, exception: None, stack: StackKind::Unknown, reliable: true }
    }
}

/// Why a trace ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stop {
    /// The stack's end: where kernel threads start, or the entry from user mode.
    End,
    /// The next frame is in user mode (its registers are the user's).
    UserMode { pc: u64 },
    /// No unwind data for this address, and no frame pointer to follow.
    NoUnwindInfo { pc: u64 },
    /// A stack or unwind-table word could not be read from the dump.
    Unreadable { address: u64, why: String },
    /// The return address found is not kernel text.
    BadReturnAddress { pc: u64, sp: u64 },
    /// The next stack pointer does not lie above this one on the same stack.
    NotGrowing { sp: u64, next_sp: u64 },
    /// The next stack pointer lies on no stack of this task or CPU, or on one already left.
    OffStack { sp: u64 },
    /// More than [`MAX_FRAMES`] frames.
    DepthLimit,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::End => f.write_str("end of stack"),
            Stop::UserMode { pc } => write!(f, "entered from user mode (user RIP {pc:016x})"),
            Stop::NoUnwindInfo { pc } => write!(f, "no unwind data for {pc:016x}"),
            Stop::Unreadable { address, why } => write!(f, "cannot read {address:016x}: {why}"),
            Stop::BadReturnAddress { pc, sp } => {
                write!(f, "return address {pc:016x} (at stack {sp:016x}) is not kernel text")
            }
            Stop::NotGrowing { sp, next_sp } => {
                write!(f, "next stack pointer {next_sp:016x} does not lie above {sp:016x}")
            }
            Stop::OffStack { sp } => write!(f, "stack pointer {sp:016x} lies on no stack of this task or CPU"),
            Stop::DepthLimit => write!(f, "more than {MAX_FRAMES} frames: stopped"),
        }
    }
}

impl Stop {
    /// A stack or unwind word that could not be read.
    pub fn unreadable(address: u64, err: crate::MemError) -> Stop {
        Stop::Unreadable { address, why: err.to_string() }
    }

    /// Whether the trace reached a natural end (not damage, not missing data).
    pub fn is_end(&self) -> bool {
        matches!(self, Stop::End | Stop::UserMode { .. })
    }
}

/// A whole trace: the frames, innermost first, and why the unwinder stopped. Frames after
/// an early stop come from a scan of the rest of the stack and are marked unreliable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackTrace {
    pub frames: Vec<Frame>,
    pub stop: Stop,
    /// How many of the last frames come from the stack scan.
    pub scanned: usize,
}

/// One word of a stack, for an unwinding step.
pub(crate) fn read_word(k: &Kernel, address: u64) -> Result<u64, Stop> {
    k.memory().read_u64(address).map_err(|err| Stop::unreadable(address, err))
}

/// `N` words at `address` (a register frame saved on a stack).
pub(crate) fn read_words<const N: usize>(k: &Kernel, address: u64) -> Result<[u64; N], Stop> {
    let mut out = [0u64; N];
    for (i, w) in out.iter_mut().enumerate() {
        *w = read_word(k, address + 8 * i as u64)?;
    }
    Ok(out)
}

/// Whose stack a trace is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOwner {
    pub task: u64,
    /// The CPU the task runs on, when it was running (its registers came from that CPU).
    pub cpu: Option<u32>,
}

/// The stack holding an address, from a list of stacks.
pub fn stack_of(stacks: &[Stack], sp: u64) -> StackKind {
    stacks.iter().find(|s| sp >= s.start && sp < s.end).map_or(StackKind::Unknown, |s| s.kind)
}

/// An unreadable stack word named with the stack it lies on (what a reader needs to know
/// which part of the dump is missing).
fn name_the_stack(stop: Stop, stacks: &[Stack]) -> Stop {
    match stop {
        Stop::Unreadable { address, why } => match stack_of(stacks, address) {
            StackKind::Unknown => Stop::Unreadable { address, why },
            kind => Stop::Unreadable { address, why: format!("{why} (on the {})", kind.crash_name()) },
        },
        other => other,
    }
}

impl Kernel {
    /// Unwinds from a first frame over the given stacks.
    pub fn unwind(&self, first: Frame, stacks: &[Stack]) -> StackTrace {
        let arch = self.arch();
        let mut frames: Vec<Frame> = Vec::new();
        let mut left: Vec<StackKind> = Vec::new();
        let mut cur = first;
        cur.stack = stack_of(stacks, cur.sp);
        let stop = loop {
            if frames.len() >= MAX_FRAMES {
                break Stop::DepthLimit;
            }
            let next = arch.unwind_step(self, &cur);
            frames.push(cur.clone());
            let mut next = match next {
                Ok(n) => n,
                Err(stop) => break stop,
            };
            next.stack = stack_of(stacks, next.sp);
            if let Err(stop) = self.check_step(&cur, &next, &left) {
                break stop;
            }
            if next.stack != cur.stack {
                left.push(cur.stack);
            }
            cur = next;
        };
        let stop = name_the_stack(stop, stacks);
        let mut scanned = Vec::new();
        if !stop.is_end() && stop != Stop::DepthLimit {
            scanned = self.scan(&cur, stacks);
        }
        let n = scanned.len();
        frames.extend(scanned);
        StackTrace { frames, stop, scanned: n }
    }

    /// The last resort after the unwinder stopped early: the words of the rest of the
    /// current stack that are kernel code just after a call instruction, each a guess
    /// (`reliable: false`, crash's `?` frames).
    fn scan(&self, from: &Frame, stacks: &[Stack]) -> Vec<Frame> {
        let Some(stack) = stacks.iter().find(|s| from.sp >= s.start && from.sp < s.end) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut at = (from.sp + 7) & !7;
        while at + 8 <= stack.end && out.len() < MAX_SCANNED {
            if let Ok(w) = self.memory().read_u64(at).map(|w| self.arch().return_address(w))
                && self.is_kernel_text(w)
                && self.arch().follows_call(self, w)
            {
                let f = Frame::call(w, at + 8, RegisterSet::default(), self.arch().pc_sp_registers(), false);
                out.push(Frame { stack: stack.kind, ..f });
            }
            at += 8;
        }
        out
    }

    /// The loop's rules for one step (see the module comment).
    fn check_step(&self, cur: &Frame, next: &Frame, left: &[StackKind]) -> Result<(), Stop> {
        if !self.is_kernel_text(next.pc) {
            return Err(Stop::BadReturnAddress { pc: next.pc, sp: next.sp });
        }
        if next.stack == StackKind::Unknown || left.contains(&next.stack) {
            return Err(Stop::OffStack { sp: next.sp });
        }
        // The caller of a frame caught with whole registers may share its stack pointer (an
        // arm64 leaf function's caller, known from the link register alone).
        let shrinks = next.sp < cur.sp || next.sp == cur.sp && !cur.exact_pc;
        if next.stack == cur.stack && shrinks && next.exception.is_none() {
            return Err(Stop::NotGrowing { sp: cur.sp, next_sp: next.sp });
        }
        Ok(())
    }

    /// Whether an address is in the kernel's or a module's code.
    pub fn is_kernel_text(&self, pc: u64) -> bool {
        if !self.memory().address_space().is_kernel_address(pc) {
            return false;
        }
        self.lookup_address(pc).is_some_and(|s| matches!(s.kind, 't' | 'T' | 'W' | 'w') || s.module.is_some())
    }

    /// The trace of a task: from its CPU's registers when it runs on one (`cpu` from the
    /// caller, who knows which CPUs' notes are trusted), else from the frame it saved.
    pub fn stack_trace(&self, owner: TraceOwner) -> Result<StackTrace, KernelError> {
        let arch = self.arch();
        let first = match owner.cpu {
            Some(cpu) => self.cpu_frame(cpu)?,
            None => arch.sleeping_task_frame(self, owner.task)?,
        };
        let stacks = arch.stacks(self, owner.task, owner.cpu);
        Ok(self.unwind(first, &stacks))
    }

    /// A CPU's first frame, from its register note.
    pub fn cpu_frame(&self, cpu: u32) -> Result<Frame, KernelError> {
        let note = self
            .cpus_with_registers()
            .into_iter()
            .find(|&(c, _, _)| c == cpu)
            .map(|(_, n, _)| n)
            .ok_or(KernelError::NoRegisters { cpu, why: "the dump has no register note for it" })?;
        let arch = self.arch();
        let regs = arch
            .registers_from_note(&note.regs)
            .ok_or(KernelError::NoRegisters { cpu, why: "its note is of another architecture" })?;
        let (pc, sp) = arch.pc_sp_registers();
        Ok(Frame::from_registers(regs, regs.get(pc).unwrap_or(0), regs.get(sp).unwrap_or(0)))
    }
}
