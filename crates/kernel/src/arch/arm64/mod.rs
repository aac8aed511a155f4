//! arm64: address translation ([`paging`]), registers ([`regs`]), stacks ([`stacks`]),
//! unwinding by frame records ([`frames`]) through the exception frames the entry code
//! saves, and disassembly ([`disasm`]).
//!
//! The unwinding step follows x29: each non-leaf function saved (caller's x29, x30) there.
//! Two things the chain alone misses are added from registers: the caller of a leaf function
//! (or of one caught before its prologue) is only in the link register, and an exception's
//! entry code (`el1h_64_irq` …) saved the interrupted context whole in a `struct pt_regs`
//! whose embedded frame record the chain passes through.

pub mod disasm;
pub mod frames;
pub mod paging;
pub mod refs;
pub mod regs;
pub mod stacks;

use crate::arch::{
    AddressSpace, Architecture, CodeRef, Instruction, Mapping, PhysRead, RegisterSet, Syntax, TranslateError,
};
use crate::unwind::{ExceptionFrame, Frame, Stack, StackKind, Stop, read_word as read_u64, read_words};
use crate::{Kernel, KernelError};
use lockscope_dump::VmcoreInfo;
pub use paging::Paging;
use regs::{LR, PC, PSTATE, SP, X29};

/// The exception entry code whose frame record is the `stackframe` member of the `struct
/// pt_regs` it saved: 5.13+ names, then the older ones.
const EXCEPTION_ENTRIES: &[&str] = &[
    "el1h_64_irq",
    "el1h_64_sync",
    "el1h_64_fiq",
    "el1h_64_error",
    "el1t_64_irq",
    "el1t_64_sync",
    "el1t_64_fiq",
    "el1t_64_error",
    "el1_irq",
    "el1_sync",
    "el1_fiq",
    "el1_error",
];

/// Offset of `stackframe` in `struct pt_regs` on 5.x–6.x kernels, when BTF does not say.
const PT_REGS_STACKFRAME: u64 = 0x130;

pub struct Arm64 {
    pub paging: Paging,
    /// The pointer-authentication bits of a signed return address: `NUMBER(KERNELPACMASK)`,
    /// or every bit above the virtual address.
    pac_mask: u64,
}

impl Arm64 {
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<Arm64, KernelError> {
        let paging = Paging::from_vmcoreinfo(info).map_err(|key| KernelError::MissingInfo(key.into()))?;
        let va_bits = match info.number("TCR_EL1_T1SZ") {
            Some(t1sz) if (12..=28).contains(&t1sz) => 64 - t1sz as u32,
            _ => paging.va_bits,
        };
        // 0 (a CPU without pointer authentication) is taken as "not said": stripping changes
        // nothing in an unsigned kernel address, and a dump edited or mislabelled still unwinds.
        let pac_mask =
            info.number("KERNELPACMASK").filter(|&m| m != 0).map_or(frames::default_pac_mask(va_bits), |m| m as u64);
        Ok(Arm64 { paging, pac_mask })
    }

    /// The frame a `struct pt_regs` describes: the interrupted context, whole.
    fn exception_step(&self, k: &Kernel, record: u64) -> Result<Frame, Stop> {
        let off = k.offset_of("pt_regs", "stackframe").unwrap_or(PT_REGS_STACKFRAME);
        let at = record.wrapping_sub(off);
        let words: [u64; regs::PT_REGS_WORDS] = read_words(k, at)?;
        let r = regs::from_words(&words);
        if regs::user_mode(&r) {
            return Err(Stop::UserMode { pc: words[PC] });
        }
        Ok(Frame {
            pc: words[PC],
            sp: words[SP],
            exact_pc: true,
            regs: r,
            exception: Some(ExceptionFrame { address: at, partial: false }),
            stack: StackKind::Unknown,
            reliable: true,
        })
    }

    /// The caller a frame with whole registers has in its link register only: when the
    /// frame record at x29 does not hold the same return address, the function has not
    /// saved its own record (a leaf, or caught in its prologue or epilogue).
    fn link_register_caller(&self, k: &Kernel, f: &Frame) -> Option<Frame> {
        let lr = frames::strip_pac(f.regs.get(LR)?, self.pac_mask);
        let fp = f.regs.get(X29)?;
        let saved = k.memory().read_u64(fp.checked_add(8)?).ok().map(|v| frames::strip_pac(v, self.pac_mask));
        if saved == Some(lr) || !k.is_kernel_text(lr) || !self.follows_call(k, lr) {
            return None;
        }
        // A return address into the function itself: it called something since, so its
        // link register is stale.
        let same = k.lookup_address(f.pc).zip(k.lookup_address(lr - 4)).is_some_and(|(a, b)| a.address == b.address);
        if same {
            return None;
        }
        let mut r = RegisterSet::default();
        r.set(X29, fp);
        Some(Frame::call(lr, f.sp, r, (PC, SP), true))
    }

    /// Whether `pc` is in exception entry code that saved a `struct pt_regs`.
    fn is_exception_entry(&self, k: &Kernel, pc: u64) -> bool {
        k.lookup_address(pc).is_some_and(|s| s.module.is_none() && EXCEPTION_ENTRIES.contains(&s.name))
    }
}

impl AddressSpace for Arm64 {
    fn translate(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError> {
        self.paging.translate(mem, vaddr)
    }
    fn is_kernel_address(&self, vaddr: u64) -> bool {
        self.paging.is_kernel_address(vaddr)
    }
    fn describe(&self) -> String {
        self.paging.describe()
    }
}

impl Architecture for Arm64 {
    fn register_names(&self) -> &'static [&'static str] {
        regs::NAMES
    }

    fn pc_sp_registers(&self) -> (usize, usize) {
        (PC, SP)
    }

    fn registers_from_note(&self, r: &lockscope_dump::Registers) -> Option<RegisterSet> {
        match r {
            lockscope_dump::Registers::Aarch64(n) => Some(regs::from_note(n)),
            _ => None,
        }
    }

    fn irqs_enabled(&self, r: &RegisterSet) -> Option<bool> {
        r.get(PSTATE).map(|p| p & regs::PSTATE_I == 0)
    }

    fn crash_register_rows(&self) -> &'static [&'static [(&'static str, &'static str, usize)]] {
        regs::CRASH_ROWS
    }

    fn sleeping_task_frame(&self, k: &Kernel, task: u64) -> Result<Frame, KernelError> {
        regs::sleeping_task_frame(k, task)
    }

    fn stacks(&self, k: &Kernel, task: u64, cpu: Option<u32>) -> Vec<Stack> {
        stacks::stacks(k, task, cpu)
    }

    fn unwind_step(&self, k: &Kernel, f: &Frame) -> Result<Frame, Stop> {
        let fp = f.regs.get(X29).ok_or(Stop::NoUnwindInfo { pc: f.pc })?;
        if self.is_exception_entry(k, f.pc) && fp != 0 {
            return self.exception_step(k, fp);
        }
        if f.exact_pc
            && let Some(caller) = self.link_register_caller(k, f)
        {
            return Ok(caller);
        }
        if fp == 0 {
            return Err(Stop::End);
        }
        let next_fp = read_u64(k, fp)?;
        let lr = read_u64(k, fp + 8)?;
        // The final frame record (zeros) at the top of a task's stack.
        if next_fp == 0 && lr == 0 {
            return Err(Stop::End);
        }
        let mut r = RegisterSet::default();
        r.set(X29, next_fp);
        Ok(Frame::call(frames::strip_pac(lr, self.pac_mask), fp + 8, r, (PC, SP), true))
    }

    fn return_address(&self, word: u64) -> u64 {
        frames::strip_pac(word, self.pac_mask)
    }

    fn follows_call(&self, k: &Kernel, pc: u64) -> bool {
        let Ok(code) = k.memory().read_vec(pc.wrapping_sub(4), 4) else { return false };
        disasm::is_call(u32::from_le_bytes([code[0], code[1], code[2], code[3]]))
    }

    fn polled_address(&self, k: &Kernel, pc: u64, reg: &dyn Fn(usize) -> Option<u64>) -> Option<(u64, usize)> {
        // The loop around pc, within its function: loads just before and after it.
        let f = k.lookup_address(pc)?;
        let start = pc.saturating_sub(32).max(f.address);
        let end = (pc + 48).min(f.address + f.size.unwrap_or(48 + pc - f.address));
        let code = k.memory().read_vec(start, end.checked_sub(start)? as usize).ok()?;
        let mut loads = refs::loads(&code, start);
        loads.sort_by_key(|&(at, _)| if at >= pc { at - pc } else { 2 * (pc - at) });
        loads.into_iter().find_map(|(_, base)| {
            let v = reg(base as usize).filter(|_| base < 29)?;
            self.paging.is_kernel_address(v).then_some((v, base as usize))
        })
    }

    fn code_references(&self, code: &[u8], address: u64) -> Vec<CodeRef> {
        refs::code_references(code, address)
    }

    fn disassemble(
        &self,
        code: &[u8],
        address: u64,
        count: usize,
        _syntax: Syntax,
        symbolize: &dyn Fn(u64) -> Option<String>,
    ) -> Vec<Instruction> {
        disasm::disassemble(code, address, count, symbolize)
    }
}
