//! x86_64: address translation ([`paging`]), registers ([`regs`]), stacks ([`stacks`]) and
//! unwinding by the kernel's ORC tables ([`orc`]), frame pointers where ORC has nothing.

pub mod disasm;
pub mod orc;
pub mod paging;
pub mod regs;
pub mod stacks;

use crate::arch::{AddressSpace, Architecture, Instruction, Mapping, PhysRead, RegisterSet, Syntax, TranslateError};
use crate::unwind::{ExceptionFrame, Frame, Stack, StackKind, Stop, read_word as read_u64, read_words};
use crate::{Kernel, KernelError};
use lockscope_dump::VmcoreInfo;
use orc::{Orc, OrcEntry, OrcReg, OrcType};
pub use paging::{Paging, START_KERNEL_MAP};
use regs::{RBP, RIP, RSP};

pub struct X86_64 {
    pub paging: Paging,
    orc: Orc,
}

impl X86_64 {
    /// From VMCOREINFO: the top page table, `phys_base`, the paging mode, SME and image size.
    pub fn from_vmcoreinfo(info: &VmcoreInfo) -> Result<X86_64, KernelError> {
        let pgd = info
            .symbol("init_top_pgt")
            .or_else(|| info.symbol("swapper_pg_dir"))
            .ok_or(KernelError::MissingInfo("SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)".into()))?;
        let phys_base = info.phys_base().ok_or(KernelError::MissingInfo("NUMBER(phys_base)".into()))?;
        let five = info.number("pgtable_l5_enabled").unwrap_or(0) != 0;
        let sme = info.number("sme_mask").unwrap_or(0) as u64;
        let image = info.number("KERNEL_IMAGE_SIZE").map_or(1 << 30, |n| n as u64);
        Ok(X86_64 { paging: Paging::new(pgd, phys_base, five, sme, image), orc: Orc::default() })
    }

    /// The CFA (the caller's stack pointer) an entry describes.
    fn cfa(&self, k: &Kernel, f: &Frame, e: &OrcEntry) -> Result<u64, Stop> {
        let reg = |r: usize| f.regs.get(r).ok_or(Stop::NoUnwindInfo { pc: f.pc });
        let off = i64::from(e.sp_offset);
        Ok(match e.sp_reg {
            OrcReg::Sp => f.sp.wrapping_add_signed(off),
            OrcReg::Bp => reg(RBP)?.wrapping_add_signed(off),
            // Since 5.12 the offset applies after the load (call_on_stack's saved pointer).
            OrcReg::SpIndirect => read_u64(k, f.sp)?.wrapping_add_signed(off),
            OrcReg::BpIndirect => read_u64(k, reg(RBP)?.wrapping_add_signed(off))?,
            OrcReg::R10 => reg(regs::R10)?,
            OrcReg::R13 => reg(regs::R13)?,
            OrcReg::Di => reg(regs::RDI)?,
            OrcReg::Dx => reg(regs::RDX)?,
            OrcReg::Ax => reg(regs::RAX)?,
            OrcReg::Undefined | OrcReg::PrevSp | OrcReg::Unknown(_) => return Err(Stop::NoUnwindInfo { pc: f.pc }),
        })
    }

    /// One step by an ORC entry.
    fn orc_step(&self, k: &Kernel, f: &Frame, e: &OrcEntry) -> Result<Frame, Stop> {
        match e.kind {
            OrcType::EndOfStack => return Err(Stop::End),
            OrcType::Undefined => return Err(Stop::NoUnwindInfo { pc: f.pc }),
            _ => {}
        }
        let cfa = self.cfa(k, f, e)?;
        let mut next = match e.kind {
            OrcType::Regs => {
                let words: [u64; 21] = read_words(k, cfa)?;
                exception_frame(regs::from_pt_regs(&words), cfa, false)
            }
            OrcType::RegsPartial => {
                let words: [u64; 5] = read_words(k, cfa)?;
                exception_frame(regs::from_iret_frame(&words), cfa - regs::IRET_FRAME_OFFSET, true)
            }
            _ => {
                let ra = read_u64(k, cfa - 8)?;
                Frame::call(ra, cfa, RegisterSet::default(), (RIP, RSP), true)
            }
        };
        if e.kind != OrcType::Call && regs::user_mode(&next.regs) {
            return Err(Stop::UserMode { pc: next.pc });
        }
        next.exact_pc = e.signal || e.kind != OrcType::Call;
        let bp = match e.bp_reg {
            OrcReg::PrevSp => Some(read_u64(k, cfa.wrapping_add_signed(e.bp_offset.into()))?),
            OrcReg::Bp => match f.regs.get(RBP) {
                Some(bp) => Some(read_u64(k, bp.wrapping_add_signed(e.bp_offset.into()))?),
                None => None,
            },
            // Unchanged, unless a register frame saved it.
            _ => next.regs.get(RBP).or(f.regs.get(RBP)),
        };
        if let Some(bp) = bp {
            next.regs.set(RBP, bp);
        }
        Ok(next)
    }

    /// Without ORC data: follow the frame pointer (`[rbp]` = the caller's rbp, `[rbp + 8]` =
    /// the return address), as the kernel's own fallback does; such frames are guesses.
    fn frame_pointer_step(&self, k: &Kernel, f: &Frame) -> Result<Frame, Stop> {
        let bp = f.regs.get(RBP).ok_or(Stop::NoUnwindInfo { pc: f.pc })?;
        if bp <= f.sp {
            return Err(Stop::NoUnwindInfo { pc: f.pc });
        }
        let caller_bp = read_u64(k, bp)?;
        let ra = read_u64(k, bp + 8)?;
        let mut r = RegisterSet::default();
        r.set(RBP, caller_bp);
        Ok(Frame::call(ra, bp + 16, r, (RIP, RSP), false))
    }
}

/// One step by the vmlinux's DWARF CFI (register numbers are DWARF's, as ours), or `None`
/// when it does not describe `lookup`.
fn cfi_step(k: &Kernel, f: &Frame, lookup: u64) -> Option<Result<Frame, Stop>> {
    let (cfi, shift) = k.call_frame_info()?;
    let row = cfi.row(lookup.wrapping_sub(*shift))?;
    let base = f.regs.get(usize::from(row.cfa_register))?;
    let cfa = base.wrapping_add_signed(row.cfa_offset);
    let ra_at = row.saved.iter().find(|s| s.0 == row.return_address)?.1;
    let step = || -> Result<Frame, Stop> {
        let ra = read_u64(k, cfa.wrapping_add_signed(ra_at))?;
        let mut r = RegisterSet::default();
        // The psABI's callee-saved registers keep their value unless the row says where they
        // were saved.
        for reg in [regs::RBX as u16, RBP as u16, 12, 13, 14, 15].into_iter().chain(row.same.iter().copied()) {
            if let Some(v) = f.regs.get(usize::from(reg)) {
                r.set(usize::from(reg), v);
            }
        }
        for &(reg, off) in &row.saved {
            if let Ok(v) = read_u64(k, cfa.wrapping_add_signed(off)) {
                r.set(usize::from(reg), v);
            }
        }
        Ok(Frame::call(ra, cfa, r, (RIP, RSP), true))
    };
    Some(step())
}

fn exception_frame(r: RegisterSet, at: u64, partial: bool) -> Frame {
    Frame {
        pc: r.get(RIP).unwrap_or(0),
        sp: r.get(RSP).unwrap_or(0),
        exact_pc: true,
        regs: r,
        exception: Some(ExceptionFrame { address: at, partial }),
        stack: StackKind::Unknown,
        reliable: true,
    }
}

impl AddressSpace for X86_64 {
    fn translate(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError> {
        self.paging.translate(mem, vaddr)
    }
    fn translate_fixed(&self, vaddr: u64) -> Option<u64> {
        self.paging.translate_fixed(vaddr)
    }
    fn is_kernel_address(&self, vaddr: u64) -> bool {
        self.paging.is_kernel_address(vaddr)
    }
    fn describe(&self) -> String {
        self.paging.describe()
    }
}

impl Architecture for X86_64 {
    fn register_names(&self) -> &'static [&'static str] {
        regs::NAMES
    }

    fn pc_sp_registers(&self) -> (usize, usize) {
        (RIP, RSP)
    }

    fn registers_from_note(&self, r: &lockscope_dump::Registers) -> Option<RegisterSet> {
        match r {
            lockscope_dump::Registers::X86_64(n) => Some(regs::from_note(n)),
            _ => None,
        }
    }

    fn irqs_enabled(&self, r: &RegisterSet) -> Option<bool> {
        r.get(regs::RFLAGS).map(|f| f & regs::RFLAGS_IF != 0)
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

    fn follows_call(&self, k: &Kernel, pc: u64) -> bool {
        let Ok(code) = k.memory().read_vec(pc.wrapping_sub(7), 7) else { return false };
        disasm::ends_with_call(&code, pc)
    }

    fn disassemble(
        &self,
        code: &[u8],
        address: u64,
        count: usize,
        syntax: Syntax,
        symbolize: &dyn Fn(u64) -> Option<String>,
    ) -> Vec<Instruction> {
        disasm::disassemble(code, address, count, syntax, symbolize)
    }

    fn unwind_step(&self, k: &Kernel, f: &Frame) -> Result<Frame, Stop> {
        let lookup = if f.exact_pc { f.pc } else { f.pc.wrapping_sub(1) };
        let orc = self.orc.find(k, lookup);
        if (orc.is_none() || k.options().dwarf_unwind_first)
            && let Some(step) = cfi_step(k, f, lookup)
        {
            return step;
        }
        match orc {
            Some(e) => self.orc_step(k, f, &e),
            None => self.frame_pointer_step(k, f),
        }
    }
}
