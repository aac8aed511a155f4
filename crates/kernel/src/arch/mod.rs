//! What differs between architectures, behind one trait ([`Architecture`]): address
//! translation, the registers of a CPU from its dump note, the registers of a task that is
//! not running, the stacks a CPU may be on, and one unwinding step. Everything above this
//! module (the unwinding loop in [`crate::unwind`], the helpers, the commands) is
//! arch-neutral: x86_64 ([`x86_64`]) and arm64 ([`arm64`]) implement it.

pub mod arm64;
pub mod x86_64;

use crate::unwind::{Frame, Stack, Stop};
use crate::{Kernel, KernelError};
use lockscope_dump::{Dump, ReadErrorKind, VmcoreInfo};
use std::sync::Arc;

/// Reads physical memory for a page-table walk.
pub trait PhysRead {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), lockscope_dump::ReadError>;
}

impl PhysRead for lockscope_dump::Dump {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), lockscope_dump::ReadError> {
        lockscope_dump::Dump::read_phys(self, paddr, buf)
    }
}

/// Where a virtual page lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Physical address of the byte asked for.
    pub paddr: u64,
    /// Size of the page that maps it (4 KiB, 2 MiB, 1 GiB), so callers can cache it.
    pub page_size: u64,
}

/// Why a virtual address has no physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranslateError {
    /// Not a canonical address for this paging mode.
    NonCanonical,
    /// A page-table entry on the way is not present (level: 5 PML5 … 1 PT).
    NotMapped { level: u8 },
    /// A page table itself could not be read from the dump.
    TableUnreadable { level: u8, paddr: u64, kind: ReadErrorKind },
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TranslateError::NonCanonical => f.write_str("not a canonical address"),
            TranslateError::NotMapped { level } => {
                write!(f, "not mapped (no present entry at page-table level {level})")
            }
            TranslateError::TableUnreadable { level, paddr, kind } => {
                write!(f, "the level-{level} page table at physical {paddr:#x} is not in the dump ({kind:?})")
            }
        }
    }
}

/// The 8-byte page-table entry at physical `at`, read on the way through `level`.
pub(crate) fn table_entry(mem: &dyn PhysRead, at: u64, level: u8) -> Result<u64, TranslateError> {
    let mut raw = [0u8; 8];
    mem.read_phys(at, &mut raw).map_err(|e| TranslateError::TableUnreadable { level, paddr: at, kind: e.kind })?;
    Ok(u64::from_le_bytes(raw))
}

/// An architecture's kernel address space.
pub trait AddressSpace: Send + Sync {
    /// Translates a kernel virtual address through the kernel page tables.
    fn translate(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError>;
    /// Translation without page tables where the layout is fixed (the kernel image), so
    /// the hottest reads need no cache and no lock.
    fn translate_fixed(&self, _vaddr: u64) -> Option<u64> {
        None
    }
    /// Whether a pointer can point into the kernel's half of the address space: the cheap
    /// first check on a pointer read from damaged memory.
    fn is_kernel_address(&self, _vaddr: u64) -> bool {
        true
    }
    /// Pointer size in bytes.
    fn pointer_size(&self) -> usize {
        8
    }
    /// A short description for `sys`-like output.
    fn describe(&self) -> String;
}

/// Most registers an architecture has (arm64: x0–x30, sp, pc, pstate).
pub const MAX_REGISTERS: usize = 40;

/// The registers known at one point of a stack: values by the architecture's register
/// numbers, and which of them are known (an unwinder recovers only some of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterSet {
    values: [u64; MAX_REGISTERS],
    known: u64,
}

impl Default for RegisterSet {
    fn default() -> RegisterSet {
        RegisterSet { values: [0; MAX_REGISTERS], known: 0 }
    }
}

impl RegisterSet {
    pub fn get(&self, reg: usize) -> Option<u64> {
        (reg < MAX_REGISTERS && self.known >> reg & 1 == 1).then(|| self.values[reg])
    }

    pub fn set(&mut self, reg: usize, value: u64) {
        if reg < MAX_REGISTERS {
            self.values[reg] = value;
            self.known |= 1 << reg;
        }
    }

    pub fn forget(&mut self, reg: usize) {
        if reg < MAX_REGISTERS {
            self.known &= !(1 << reg);
        }
    }

    /// Known registers as (number, value), by number.
    pub fn known(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (0..MAX_REGISTERS).filter_map(|r| self.get(r).map(|v| (r, v)))
    }

    pub fn count_known(&self) -> u32 {
        self.known.count_ones()
    }
}

/// One architecture: its address space plus what the unwinder needs from it.
pub trait Architecture: AddressSpace {
    /// Register names by number (for printing and JSON).
    fn register_names(&self) -> &'static [&'static str];
    /// The register numbers of the program counter and the stack pointer.
    fn pc_sp_registers(&self) -> (usize, usize);
    /// The registers of a CPU's dump note.
    fn registers_from_note(&self, regs: &lockscope_dump::Registers) -> Option<RegisterSet>;
    /// Whether interrupts were enabled in a saved context (x86_64 RFLAGS.IF, arm64 PSTATE.I
    /// clear); `None` when the flags register is not among those known.
    fn irqs_enabled(&self, regs: &RegisterSet) -> Option<bool>;
    /// How crash prints a register frame: rows of (label, register name, hex digits).
    fn crash_register_rows(&self) -> &'static [&'static [(&'static str, &'static str, usize)]];
    /// Where a task that is not running resumes: its saved registers (x86_64: `thread.sp`
    /// → `struct inactive_task_frame`) as the first frame of its stack.
    fn sleeping_task_frame(&self, k: &Kernel, task: u64) -> Result<Frame, KernelError>;
    /// Every stack a task (and, when it runs, its CPU) can be on, with its kind.
    fn stacks(&self, k: &Kernel, task: u64, cpu: Option<u32>) -> Vec<Stack>;
    /// From one frame to its caller, or why not.
    fn unwind_step(&self, k: &Kernel, frame: &Frame) -> Result<Frame, Stop>;
    /// Whether `pc` can be a return address: the instruction before it is a call (the test
    /// a stack scan uses to tell return addresses from other code pointers).
    fn follows_call(&self, k: &Kernel, pc: u64) -> bool;
    /// A word saved as a return address, as the CPU would return to it (arm64 strips the
    /// pointer-authentication code); a stack scan reads words through this.
    fn return_address(&self, word: u64) -> u64 {
        word
    }
    /// The data addresses the code at `address` builds and reaches (what
    /// [`crate::datasyms`] reads to find data symbols kallsyms lacks); none where the
    /// architecture does not decode them.
    fn code_references(&self, _code: &[u8], _address: u64) -> Vec<CodeRef> {
        Vec::new()
    }
    /// The address a spin loop at `pc` polls, and the register holding it (`reg` gives the
    /// registers known there); `None` where the architecture leaves it to the calling
    /// convention (x86_64's slow paths keep their argument in RDI).
    fn polled_address(&self, _k: &Kernel, _pc: u64, _reg: &dyn Fn(usize) -> Option<u64>) -> Option<(u64, usize)> {
        None
    }
    /// Decodes machine code at `address`, at most `count` instructions; branch and
    /// memory targets named by `symbolize`.
    fn disassemble(
        &self,
        code: &[u8],
        address: u64,
        count: usize,
        syntax: Syntax,
        symbolize: &dyn Fn(u64) -> Option<String>,
    ) -> Vec<Instruction>;
}

/// One data address a function's code builds or reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeRef {
    /// The instruction that completes it.
    pub at: u64,
    pub target: u64,
    pub kind: RefKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// The address itself is made (`adrp` + `add`, `adr`).
    Address,
    /// A load of this many bytes from it.
    Load(u8),
    /// A store of this many bytes to it.
    Store(u8),
    /// Added to the CPU's per-CPU offset: a per-CPU variable.
    PerCpu,
    /// The base of an array indexed by a register, elements of this many bytes.
    Indexed(u8),
}

/// Assembly syntax for `dis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Syntax {
    /// AT&T, as crash and objdump print by default.
    #[default]
    Att,
    Intel,
}

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub address: u64,
    pub bytes: Vec<u8>,
    /// Mnemonic and operands, targets symbolised (`call 0xffffffff81001234 <schedule>`).
    pub text: String,
    /// The bytes do not decode.
    pub invalid: bool,
}

/// The architecture of a dump, set up from its VMCOREINFO.
pub fn for_dump(dump: &Dump, info: &VmcoreInfo) -> Result<Arc<dyn Architecture>, KernelError> {
    match dump.metadata().arch {
        lockscope_dump::Arch::X86_64 => Ok(Arc::new(x86_64::X86_64::from_vmcoreinfo(info)?)),
        lockscope_dump::Arch::Aarch64 => Ok(Arc::new(arm64::Arm64::from_vmcoreinfo(info)?)),
        other => Err(KernelError::UnsupportedArch(other.name().to_string())),
    }
}
