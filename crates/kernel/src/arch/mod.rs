//! Architecture-specific address translation behind one trait: x86_64 now, arm64 later.

pub mod x86_64;

use lockscope_dump::ReadErrorKind;

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
