//! Kernel virtual memory: a dump's physical memory seen through the kernel page tables,
//! with a small translation cache, so that walking a list costs a hash lookup per page and
//! not a page-table walk per pointer.

use crate::arch::{AddressSpace, TranslateError};
use lockscope_dump::{Dump, ReadErrorKind};
use std::collections::HashMap;
use std::sync::Mutex;

/// Translations kept (4 KiB granules); the cache is dropped whole when full.
const TLB_ENTRIES: usize = 1 << 16;

/// Why kernel memory could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemError {
    /// The first virtual address that could not be read.
    pub vaddr: u64,
    pub kind: MemErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemErrorKind {
    /// No translation: the address is bad or unmapped.
    Translate(TranslateError),
    /// Translated, but the physical page is not in the dump (filtered out, a hole, lost...).
    Phys { paddr: u64, kind: ReadErrorKind },
}

impl std::fmt::Display for MemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            MemErrorKind::Translate(t) => write!(f, "cannot read {:#x}: {t}", self.vaddr),
            MemErrorKind::Phys { paddr, kind } => {
                let why = match kind {
                    ReadErrorKind::Filtered => "filtered out of the dump (makedumpfile dump level)",
                    ReadErrorKind::Hole => "not RAM in the dump",
                    ReadErrorKind::Lost => "missing from an incomplete dump",
                    ReadErrorKind::Corrupt => "corrupt in the dump",
                    ReadErrorKind::BadDescriptor => "with a corrupt descriptor in the dump",
                    ReadErrorKind::Truncated { .. } => "beyond the end of the truncated dump file",
                    ReadErrorKind::UnsupportedCompression => "compressed with an unsupported method",
                    ReadErrorKind::InOtherFile => "in another file of the split dump",
                };
                write!(f, "cannot read {:#x} (physical {paddr:#x}): page {why}", self.vaddr)
            }
        }
    }
}

impl std::error::Error for MemError {}

pub struct KernelMemory {
    dump: Dump,
    space: std::sync::Arc<dyn AddressSpace>,
    tlb: Mutex<HashMap<u64, u64>>,
}

impl KernelMemory {
    pub fn new(dump: Dump, space: std::sync::Arc<dyn AddressSpace>) -> KernelMemory {
        KernelMemory { dump, space, tlb: Mutex::new(HashMap::new()) }
    }

    pub fn dump(&self) -> &Dump {
        &self.dump
    }

    pub fn address_space(&self) -> &dyn AddressSpace {
        self.space.as_ref()
    }

    /// Physical address of a kernel virtual address.
    pub fn translate(&self, vaddr: u64) -> Result<u64, MemError> {
        if let Some(p) = self.space.translate_fixed(vaddr) {
            return Ok(p);
        }
        let granule = vaddr & !0xfff;
        if let Some(&p) = self.tlb.lock().expect("tlb").get(&granule) {
            return Ok(p | (vaddr & 0xfff));
        }
        let m = self
            .space
            .translate(&self.dump, vaddr)
            .map_err(|t| MemError { vaddr, kind: MemErrorKind::Translate(t) })?;
        let mut tlb = self.tlb.lock().expect("tlb");
        if tlb.len() >= TLB_ENTRIES {
            tlb.clear();
        }
        tlb.insert(granule, m.paddr & !0xfff);
        Ok(m.paddr)
    }

    /// Reads `buf.len()` bytes at a kernel virtual address, page by page; big reads (the BTF
    /// blob, symbol tables) on several threads, as page decompression dominates them.
    pub fn read(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        const PARALLEL_FROM: usize = 256 << 10;
        // Asked only for big reads: `available_parallelism` reads cgroup files each call.
        if buf.len() < PARALLEL_FROM {
            return self.read_serial(vaddr, buf);
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        if threads < 2 {
            return self.read_serial(vaddr, buf);
        }
        // Page-aligned pieces, so each page is decoded by one thread only.
        let piece = (buf.len() / threads).next_multiple_of(4096);
        let head = ((4096 - (vaddr & 0xfff)) as usize) % 4096;
        let (first, rest) = buf.split_at_mut(head.min(buf.len()));
        self.read_serial(vaddr, first)?;
        let base = vaddr + head as u64;
        std::thread::scope(|sc| {
            let jobs: Vec<_> = rest
                .chunks_mut(piece)
                .enumerate()
                .map(|(i, chunk)| sc.spawn(move || self.read_serial(base + (i * piece) as u64, chunk)))
                .collect();
            jobs.into_iter().try_for_each(|j| j.join().expect("reader thread"))
        })
    }

    fn read_serial(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0;
        while done < buf.len() {
            let va = vaddr.wrapping_add(done as u64);
            let in_page = (4096 - (va & 0xfff) as usize).min(buf.len() - done);
            let pa = self.translate(va)?;
            self.dump
                .read_phys(pa, &mut buf[done..done + in_page])
                .map_err(|e| MemError { vaddr: va, kind: MemErrorKind::Phys { paddr: e.paddr, kind: e.kind } })?;
            done += in_page;
        }
        Ok(())
    }

    pub fn read_vec(&self, vaddr: u64, len: usize) -> Result<Vec<u8>, MemError> {
        let mut v = vec![0u8; len];
        self.read(vaddr, &mut v)?;
        Ok(v)
    }

    pub fn read_u64(&self, vaddr: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(vaddr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, vaddr: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read(vaddr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn read_u16(&self, vaddr: u64) -> Result<u16, MemError> {
        let mut b = [0u8; 2];
        self.read(vaddr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn read_u8(&self, vaddr: u64) -> Result<u8, MemError> {
        let mut b = [0u8; 1];
        self.read(vaddr, &mut b)?;
        Ok(b[0])
    }

    /// A NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&self, vaddr: u64, max: usize) -> Result<Vec<u8>, MemError> {
        let mut out = Vec::new();
        let mut va = vaddr;
        while out.len() < max {
            let n = (4096 - (va & 0xfff) as usize).min(max - out.len());
            let chunk = self.read_vec(va, n)?;
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            va += n as u64;
        }
        Ok(out)
    }
}
