//! `lockscope-dump`: a Linux vmcore as physical memory plus notes.
//!
//! The first stage of lockscope's dump path (issue #3): `dump` opens a vmcore — an ELF core
//! (/proc/vmcore, `makedumpfile -E`, QEMU `dump-guest-memory`) or a kdump-compressed file
//! (makedumpfile, QEMU; plain or in makedumpfile's flattened stream) — and answers "what bytes
//! were at this physical address", "what registers did each CPU save" and "what does
//! VMCOREINFO say". The next stage (`kernel`: symbols, page tables, tasks, stacks) builds on
//! it; nothing here knows about kernel data structures.
//!
//! ```no_run
//! let dump = lockscope_dump::Dump::open("vmcore")?;
//! let mut page = [0u8; 4096];
//! dump.read_phys(0x1000, &mut page)?;
//! for cpu in &dump.notes().prstatus {
//!     println!("CPU {} ip {:#x}", cpu.cpu, cpu.regs.ip());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Files are mapped read-only and parsed in place; headers are checked before anything is
//! sized from them, and every failure is a small typed error naming the file offset.

mod cache;
mod elf;
mod error;
mod kdump;
mod notes;
pub mod raw;
mod source;
mod vmcoreinfo;

pub use elf::LoadSegment;
pub use error::{DumpError, DumpErrorKind, ReadError, ReadErrorKind};
pub use kdump::Utsname;
pub use notes::{Aarch64Regs, Arch, CpuNumbering, Notes, PrStatus, QemuCpuState, Registers, X86_64Regs};
pub use vmcoreinfo::VmcoreInfo;

use cache::PageCache;
use elf::{ElfCore, SpanKind};
use kdump::{KdumpFile, PageSlot};
use raw::kdump::status;
use source::{FlatIndex, Source, Storage};
use std::path::Path;
use std::sync::Mutex;

/// Decoded pages kept per dump (1 MiB with 4 KiB pages).
const CACHE_PAGES: usize = 256;

/// The container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An ELF core (`ET_CORE`).
    Elf,
    /// makedumpfile's kdump-compressed format ("KDUMP   "), or "DISKDUMP" when `diskdump`.
    KdumpCompressed { flattened: bool, diskdump: bool },
}

impl Format {
    pub fn describe(self) -> &'static str {
        match self {
            Format::Elf => "ELF core",
            Format::KdumpCompressed { flattened: false, diskdump: false } => "kdump-compressed",
            Format::KdumpCompressed { flattened: true, diskdump: false } => "kdump-compressed (flattened stream)",
            Format::KdumpCompressed { flattened: false, diskdump: true } => "diskdump",
            Format::KdumpCompressed { flattened: true, diskdump: true } => "diskdump (flattened stream)",
        }
    }
}

/// How page data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Lzo,
    Snappy,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        }
    }
}

/// What a dump says about itself.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub format: Format,
    pub compression: Compression,
    /// kdump header version (0–6).
    pub header_version: Option<i32>,
    /// makedumpfile's dump level: which page kinds were left out (see `excluded_page_kinds`).
    pub dump_level: Option<i32>,
    /// Some RAM was left out on purpose (crash: "[PARTIAL DUMP]"): a page is RAM but not
    /// dumped, or an ELF segment has an excluded tail.
    pub partial: bool,
    /// The writer could not finish (kdump status bit, ELF `e_flags` bit 0).
    pub incomplete: bool,
    pub page_size: u64,
    /// One past the highest page frame number the dump describes.
    pub max_pfn: u64,
    /// CPUs of the dumped machine, as its header says (kdump), else the register notes found.
    pub nr_cpus: u32,
    /// kdump: the CPU that crashed (as recorded by the writer).
    pub current_cpu: Option<u32>,
    /// Seconds since the epoch: the header's time, else VMCOREINFO's CRASHTIME.
    pub date: Option<i64>,
    pub arch: Arch,
    /// utsname.machine (kdump) or the ELF machine's name.
    pub machine: String,
    /// Kernel release: utsname.release, else VMCOREINFO's OSRELEASE.
    pub release: Option<String>,
    /// Full utsname (kdump-compressed only; QEMU fills only `machine`).
    pub utsname: Option<Utsname>,
    /// kdump sub-header `phys_base`.
    pub phys_base: Option<u64>,
    /// `[start, end)` PFNs this file holds, when the dump was split over several files.
    pub split: Option<(u64, u64)>,
    pub file_size: u64,
    /// Records of a flattened stream.
    pub flattened_records: Option<u64>,
    /// Bytes of makedumpfile's erase information (`--config` erased symbols), 0 if none.
    pub eraseinfo_bytes: u64,
    /// ELF PT_LOAD segments as written.
    pub load_segments: Vec<LoadSegment>,
}

/// dump_level bit names, in bit order (makedumpfile's `-d`).
pub const DUMP_LEVEL_BITS: [(i32, &str); 5] =
    [(1, "zero pages"), (2, "cache pages"), (4, "private cache pages"), (8, "user pages"), (16, "free pages")];

impl Metadata {
    /// Names of the page kinds the dump level excluded.
    pub fn excluded_page_kinds(&self) -> Vec<&'static str> {
        let level = self.dump_level.unwrap_or(0);
        DUMP_LEVEL_BITS.iter().filter(|(bit, _)| level & bit != 0).map(|(_, n)| *n).collect()
    }
}

/// What the dump holds for one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    Dumped,
    Filtered,
    Hole,
    Lost,
}

/// A run of RAM (or what the dump calls memory) with how much of it is in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    pub start: u64,
    pub end: u64,
    pub dumped_bytes: u64,
    pub filtered_bytes: u64,
}

enum Backend {
    Elf(ElfCore),
    Kdump(Box<KdumpFile>),
}

/// An open vmcore.
pub struct Dump {
    src: Source,
    backend: Backend,
    vmcoreinfo: Option<VmcoreInfo>,
    meta: Metadata,
    cache: Mutex<PageCache>,
}

impl Dump {
    /// Maps and indexes a dump file. Reads only headers, notes and (for a flattened stream)
    /// the record headers; page data is decoded on demand.
    pub fn open(path: impl AsRef<Path>) -> Result<Dump, DumpError> {
        let io = |e: std::io::Error| DumpError::new(DumpErrorKind::Io(e.kind()), 0);
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; a dump file changed under us while open gives wrong
        // bytes, not memory unsafety beyond what every mmap-based reader accepts.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Dump::from_storage(Storage::Mapped(map))
    }

    /// A dump held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Dump, DumpError> {
        Dump::from_storage(Storage::Owned(bytes))
    }

    fn from_storage(storage: Storage) -> Result<Dump, DumpError> {
        let src = Source::new(storage)?;
        let head = src.bytes(0, 8.min(src.len() as usize)).unwrap_or_default().into_owned();
        let backend = if kdump::is_kdump(&head) {
            Backend::Kdump(Box::new(KdumpFile::parse(&src)?))
        } else if head.starts_with(b"\x7fELF") {
            if src.flat().is_some() {
                return Err(DumpError::new(DumpErrorKind::Unsupported("ELF core in a flattened stream"), 0));
            }
            Backend::Elf(elf::parse(src.raw())?)
        } else if FlatIndex::is_flattened(src.raw()) && src.len() == 0 {
            return Err(DumpError::truncated(src.raw().len() as u64));
        } else {
            return Err(DumpError::new(DumpErrorKind::UnknownFormat, 0));
        };
        let notes = match &backend {
            Backend::Elf(e) => &e.notes,
            Backend::Kdump(k) => &k.notes,
        };
        let vmcoreinfo = notes.vmcoreinfo.as_deref().map(VmcoreInfo::parse);
        let meta = metadata(&src, &backend, vmcoreinfo.as_ref());
        let cache = Mutex::new(PageCache::new(meta.page_size as usize, CACHE_PAGES));
        Ok(Dump { src, backend, vmcoreinfo, meta, cache })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    pub fn notes(&self) -> &Notes {
        match &self.backend {
            Backend::Elf(e) => &e.notes,
            Backend::Kdump(k) => &k.notes,
        }
    }

    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.vmcoreinfo.as_ref()
    }

    /// What the dump holds for the page containing `paddr`.
    pub fn page_state(&self, paddr: u64) -> PageState {
        match &self.backend {
            Backend::Elf(e) => match elf_span(e, paddr).map(|s| s.kind) {
                Some(SpanKind::Data { .. }) => PageState::Dumped,
                Some(SpanKind::Filtered) => PageState::Filtered,
                Some(SpanKind::Lost) => PageState::Lost,
                None => PageState::Hole,
            },
            Backend::Kdump(k) => match k.slot(&self.src, paddr / self.meta.page_size) {
                PageSlot::Hole => PageState::Hole,
                PageSlot::Filtered => PageState::Filtered,
                PageSlot::Dumped { .. } => PageState::Dumped,
            },
        }
    }

    /// Fills `buf` with the physical memory at `paddr`. Fails at the first byte the dump
    /// cannot provide (hole, filtered, lost, corrupt); `buf` is then partly written.
    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.read_inner(paddr, buf, false).map(|_| ())
    }

    /// Like `read_phys`, but holes and filtered pages read as zeros (as crash and drgn do
    /// when asked to). Returns how many bytes were zero-filled that way.
    pub fn read_phys_zero_filled(&self, paddr: u64, buf: &mut [u8]) -> Result<u64, ReadError> {
        self.read_inner(paddr, buf, true)
    }

    fn read_inner(&self, paddr: u64, buf: &mut [u8], zero_fill: bool) -> Result<u64, ReadError> {
        let mut done = 0usize;
        let mut filled = 0u64;
        while done < buf.len() {
            let addr = paddr.checked_add(done as u64).ok_or(ReadError {
                kind: ReadErrorKind::Hole,
                paddr: u64::MAX,
                offset: None,
            })?;
            let n = match self.read_chunk(addr, &mut buf[done..]) {
                Ok(n) => n,
                Err((err, n)) if zero_fill && matches!(err.kind, ReadErrorKind::Hole | ReadErrorKind::Filtered) => {
                    buf[done..done + n].fill(0);
                    filled += n as u64;
                    n
                }
                Err((err, _)) => return Err(err),
            };
            done += n;
        }
        Ok(filled)
    }

    /// Reads from `addr` up to the end of its page or span; on failure also says how many
    /// bytes the failure covers (for zero filling).
    fn read_chunk(&self, addr: u64, out: &mut [u8]) -> Result<usize, (ReadError, usize)> {
        let page = self.meta.page_size;
        let in_page = (page - addr % page).min(out.len() as u64) as usize;
        let err = |kind, offset| (ReadError { kind, paddr: addr, offset }, in_page);
        match &self.backend {
            Backend::Elf(e) => {
                let Some(span) = elf_span(e, addr) else {
                    // Up to the next span or page end, whichever is first.
                    let next = e.spans.partition_point(|s| s.end <= addr);
                    let gap = e.spans.get(next).map_or(u64::MAX, |s| s.start - addr);
                    let n = (gap.min(out.len() as u64)) as usize;
                    return Err((ReadError { kind: ReadErrorKind::Hole, paddr: addr, offset: None }, n.max(1)));
                };
                let n = (span.end - addr).min(out.len() as u64) as usize;
                match span.kind {
                    SpanKind::Data { file_offset } => {
                        let from = (file_offset + (addr - span.start)) as usize;
                        out[..n].copy_from_slice(&self.src.raw()[from..from + n]);
                        Ok(n)
                    }
                    SpanKind::Filtered => {
                        Err((ReadError { kind: ReadErrorKind::Filtered, paddr: addr, offset: None }, n))
                    }
                    SpanKind::Lost => Err((ReadError { kind: ReadErrorKind::Lost, paddr: addr, offset: None }, n)),
                }
            }
            Backend::Kdump(k) => {
                let pfn = addr / page;
                let desc_offset = match k.slot(&self.src, pfn) {
                    PageSlot::Hole => return Err(err(ReadErrorKind::Hole, None)),
                    PageSlot::Filtered => return Err(err(ReadErrorKind::Filtered, None)),
                    PageSlot::Dumped { desc_offset } => desc_offset,
                };
                let from = (addr % page) as usize;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(data) = cache.get(pfn) {
                    out[..in_page].copy_from_slice(&data[from..from + in_page]);
                    return Ok(in_page);
                }
                let data = cache
                    .insert_with(pfn, |buf| k.read_page(&self.src, desc_offset, buf))
                    .map_err(|(kind, offset)| err(kind, Some(offset)))?;
                out[..in_page].copy_from_slice(&data[from..from + in_page]);
                Ok(in_page)
            }
        }
    }

    /// The physical memory the dump describes, as contiguous ranges with how much of each is
    /// in the file. Walks the bitmaps or segment table: meant for summaries, not hot paths.
    pub fn memory_ranges(&self) -> Vec<MemoryRange> {
        let mut out: Vec<MemoryRange> = Vec::new();
        match &self.backend {
            Backend::Elf(e) => {
                for s in &e.spans {
                    let len = s.end - s.start;
                    let (d, f) = if matches!(s.kind, SpanKind::Data { .. }) { (len, 0) } else { (0, len) };
                    match out.last_mut() {
                        Some(last) if last.end == s.start => {
                            last.end = s.end;
                            last.dumped_bytes += d;
                            last.filtered_bytes += f;
                        }
                        _ => out.push(MemoryRange { start: s.start, end: s.end, dumped_bytes: d, filtered_bytes: f }),
                    }
                }
            }
            Backend::Kdump(k) => {
                let ram = k.ram_bitmap(&self.src);
                let dumped = k.dumped_bitmap(&self.src);
                let page = self.meta.page_size;
                let mut pfn = 0u64;
                while pfn < k.max_pfn {
                    let byte = (pfn / 8) as usize;
                    // Whole bytes of holes are skipped at once.
                    if pfn.is_multiple_of(8) && ram[byte] == 0 {
                        pfn += 8;
                        continue;
                    }
                    if ram[byte] >> (pfn % 8) & 1 == 1 {
                        let d = if dumped[byte] >> (pfn % 8) & 1 == 1 { page } else { 0 };
                        let start = pfn * page;
                        match out.last_mut() {
                            Some(last) if last.end == start => {
                                last.end += page;
                                last.dumped_bytes += d;
                                last.filtered_bytes += page - d;
                            }
                            _ => out.push(MemoryRange {
                                start,
                                end: start + page,
                                dumped_bytes: d,
                                filtered_bytes: page - d,
                            }),
                        }
                    }
                    pfn += 1;
                }
            }
        }
        out
    }
}

fn elf_span(e: &ElfCore, addr: u64) -> Option<&elf::Span> {
    let i = e.spans.partition_point(|s| s.end <= addr);
    e.spans.get(i).filter(|s| s.start <= addr)
}

fn metadata(src: &Source, backend: &Backend, vmcoreinfo: Option<&VmcoreInfo>) -> Metadata {
    let crash_time = vmcoreinfo.and_then(|v| v.crash_time());
    let osrelease = vmcoreinfo.and_then(|v| v.osrelease()).map(str::to_string);
    match backend {
        Backend::Elf(e) => {
            let page_size = vmcoreinfo
                .and_then(|v| v.page_size())
                .filter(|p| p.is_power_of_two() && (1024..=1 << 20).contains(p))
                .unwrap_or(4096);
            let max_end = e.spans.last().map_or(0, |s| s.end);
            let partial = e.spans.iter().any(|s| s.kind == SpanKind::Filtered);
            let cpus = e.notes.prstatus.len().max(e.notes.qemu.len()) as u32;
            Metadata {
                format: Format::Elf,
                compression: Compression::None,
                header_version: None,
                dump_level: None,
                partial,
                incomplete: e.incomplete,
                page_size,
                max_pfn: max_end.div_ceil(page_size),
                nr_cpus: cpus,
                current_cpu: None,
                date: crash_time,
                arch: e.arch,
                machine: e.arch.name().to_string(),
                release: osrelease,
                utsname: None,
                phys_base: None,
                split: None,
                file_size: src.raw().len() as u64,
                flattened_records: None,
                eraseinfo_bytes: 0,
                load_segments: e.segments.clone(),
            }
        }
        Backend::Kdump(k) => {
            let compression = if k.status & status::COMPRESSED_ZLIB != 0 {
                Compression::Zlib
            } else if k.status & status::COMPRESSED_LZO != 0 {
                Compression::Lzo
            } else if k.status & status::COMPRESSED_SNAPPY != 0 {
                Compression::Snappy
            } else if k.status & status::COMPRESSED_ZSTD != 0 {
                Compression::Zstd
            } else {
                Compression::None
            };
            let release = Some(k.utsname.release.clone()).filter(|r| !r.is_empty()).or(osrelease);
            Metadata {
                format: Format::KdumpCompressed { flattened: src.flat().is_some(), diskdump: k.old_signature },
                compression,
                header_version: Some(k.header_version),
                dump_level: k.dump_level,
                // QEMU writes dump level 1 yet dumps every page, so look at the bitmaps.
                partial: k.any_filtered(src),
                incomplete: k.status & status::INCOMPLETE != 0,
                page_size: k.block_size as u64,
                max_pfn: k.max_pfn,
                nr_cpus: if k.nr_cpus > 0 { k.nr_cpus as u32 } else { k.notes.prstatus.len() as u32 },
                current_cpu: Some(k.current_cpu),
                date: Some(k.timestamp.0).filter(|&t| t != 0).or(crash_time),
                arch: k.arch,
                machine: k.utsname.machine.clone(),
                release,
                utsname: Some(k.utsname.clone()),
                phys_base: k.phys_base,
                split: k.split,
                file_size: src.raw().len() as u64,
                flattened_records: src.flat().map(|f| f.records),
                eraseinfo_bytes: k.eraseinfo_size,
                load_segments: Vec::new(),
            }
        }
    }
}
