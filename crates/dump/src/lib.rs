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
mod lzo;
mod notes;
mod overlay;
pub mod raw;
mod source;
mod vmcoreinfo;
mod write;

pub use elf::LoadSegment;
pub use error::{DumpError, DumpErrorKind, ReadError, ReadErrorKind};
pub use kdump::{KdumpLayout, SubHeaderLayout, Utsname};
pub use notes::{Aarch64Regs, Arch, CpuNumbering, Notes, NotesCut, PrStatus, QemuCpuState, Registers, X86_64Regs};
pub use vmcoreinfo::VmcoreInfo;
pub use write::{
    FileStats, MAX_SPLIT, Progress, WriteError, WriteErrorKind, WriteOptions, WriteStats, write_kdump,
    write_kdump_to_memory,
};

use cache::PageCache;
use elf::{ElfCore, SpanKind};
use kdump::{KdumpFile, PageSlot};
use raw::kdump::status;
use source::{FlatIndex, Source, Storage};
use std::path::Path;
use std::sync::Mutex;

/// The page decoder `read_phys` uses (`page_desc.flags`, stored bytes, one page out): for
/// benchmarks. `Some(true)` when it decoded to exactly one page, `None` for an unknown method.
#[doc(hidden)]
pub fn decode_page(flags: u32, data: &[u8], out: &mut [u8]) -> Option<bool> {
    kdump::decode_page(flags, data, out)
}

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
    /// dumped, or an ELF segment has an excluded tail. kdump files of more than 128 GiB are
    /// not read to the end for this: past that, the dump level says (see `any_filtered`).
    pub partial: bool,
    /// The writer could not finish (kdump status bit, ELF `e_flags` bit 0).
    pub incomplete: bool,
    pub page_size: u64,
    /// VMCOREINFO's PAGESIZE when it disagrees with what fixes the page size (the kdump
    /// header's block size, or the architecture), and what that is: the value is not used.
    pub page_size_ignored: Option<(u64, &'static str)>,
    /// A note area whose size field says more than it holds: only its notes are used (and
    /// carried into a converted file).
    pub notes_cut: Option<NotesCut>,
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
    /// `[start, end)` PFNs the file (or files given together) hold, when the dump was split
    /// over several files.
    pub split: Option<(u64, u64)>,
    /// The files of a split dump that were opened, in PFN order (empty when not split).
    pub split_parts: Vec<SplitPart>,
    /// kdump: the C ABI the header was written with (32/64-bit, byte order).
    pub kdump_layout: Option<KdumpLayout>,
    /// Bytes of the file, or of all files of a split dump.
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
    /// Promised but not readable: missing from an incomplete file, or dumped into a file of
    /// a split dump that was not opened.
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

/// One kdump-compressed file of the dump: the whole dump, or one part of a split dump.
struct Part {
    src: Source,
    kdump: KdumpFile,
    /// `[start, end)` PFNs whose pages this file holds (everything for an unsplit file).
    start: u64,
    end: u64,
    /// Index in the list given to `open_many`.
    file: Option<u32>,
}

enum Backend {
    Elf {
        src: Source,
        core: Box<ElfCore>,
    },
    /// Sorted by `start`, ranges disjoint.
    Kdump {
        parts: Vec<Part>,
    },
}

/// A file that ends before the data its headers promise (see `Dump::truncation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Index in the list given to `open_many` (`None` for one file).
    pub file: Option<u32>,
    pub file_size: u64,
    /// The size the headers promise; a lower bound when `exact` is false (the descriptor
    /// table itself is cut, or its last entries do not say where the data ends).
    pub expected_size: u64,
    pub exact: bool,
    /// Pages whose data (or descriptor) is past the end of the file.
    pub pages_lost: u64,
}

/// One file of a split dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPart {
    /// Index in the list of files given to `Dump::open_many` (0 when opened alone).
    pub file: u32,
    pub start_pfn: u64,
    pub end_pfn: u64,
    pub file_size: u64,
}

/// An open vmcore.
pub struct Dump {
    backend: Backend,
    vmcoreinfo: Option<VmcoreInfo>,
    meta: Metadata,
    cache: Mutex<PageCache>,
    /// Bytes patched in memory (`with_patches`); applied on top of every read.
    overlay: overlay::Overlay,
    /// Notes given instead of the file's (`with_notes`).
    notes_override: Option<Box<Notes>>,
}

/// What `read_page_for_copy` found.
pub(crate) enum CopyRead {
    /// `buf` holds the page (holes and filtered bytes of a partly covered ELF page as zeros).
    Data,
    /// Dumped, but the data is not in the file (incomplete dump, a split part not given).
    Lost,
}

/// Refuses what is not a regular file before anything opens it: opening a FIFO would block
/// until a writer comes, a device cannot be mapped, a directory has no bytes. The CLI checks
/// its inputs with this too, so every command says the same thing.
pub fn check_regular_file(path: &Path) -> Result<std::fs::Metadata, DumpError> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(path).map_err(|e| DumpError::new(DumpErrorKind::Io(e.kind()), 0))?;
    let t = md.file_type();
    let what = if t.is_file() {
        return Ok(md);
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(DumpError::new(DumpErrorKind::NotAFile(what), 0))
}

fn map_file(path: &Path) -> Result<Storage, DumpError> {
    let io = |e: std::io::Error| DumpError::new(DumpErrorKind::Io(e.kind()), 0);
    check_regular_file(path)?;
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the map is read-only; a dump file changed under us while open gives wrong
    // bytes, not memory unsafety beyond what every mmap-based reader accepts.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let id = file.metadata().ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    Ok(Storage::Mapped(map, id))
}

impl Dump {
    /// Maps and indexes a dump file. Reads only headers, notes and (for a flattened stream)
    /// the record headers; page data is decoded on demand.
    pub fn open(path: impl AsRef<Path>) -> Result<Dump, DumpError> {
        Dump::from_storage(map_file(path.as_ref())?)
    }

    /// A dump held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Dump, DumpError> {
        Dump::from_storage(Storage::Owned(bytes))
    }

    /// A dump over bytes shared with other dumps: opening costs only the header parse, so a
    /// fuzzer can open one base file per input and patch it (`with_patches`).
    pub fn from_shared(bytes: std::sync::Arc<[u8]>) -> Result<Dump, DumpError> {
        Dump::from_storage(Storage::Shared(bytes))
    }

    /// Opens the files of a split dump (makedumpfile `--split`: each file holds the pages of
    /// one PFN range) as one dump. They must share utsname, time stamp, page size and size
    /// of memory, and their ranges must not overlap; a range no file covers reads as
    /// `ReadErrorKind::InOtherFile`. Errors name the file by its index in `paths`. One path is
    /// the same as `open`.
    pub fn open_many<P: AsRef<Path>>(paths: &[P]) -> Result<Dump, DumpError> {
        if let [one] = paths {
            return Dump::open(one);
        }
        let mut storages = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            storages.push(map_file(p.as_ref()).map_err(|e| e.in_file(i))?);
        }
        Dump::from_storages(storages)
    }

    /// `open_many` on files held in memory.
    pub fn from_bytes_many(files: Vec<Vec<u8>>) -> Result<Dump, DumpError> {
        Dump::from_storages(files.into_iter().map(Storage::Owned).collect())
    }

    fn from_storages(storages: Vec<Storage>) -> Result<Dump, DumpError> {
        if storages.len() == 1 {
            return Dump::from_storage(storages.into_iter().next().expect("one"));
        }
        if storages.is_empty() {
            return Err(DumpError::new(DumpErrorKind::SplitSet("no file given"), 0));
        }
        let mut parts = Vec::with_capacity(storages.len());
        for (i, storage) in storages.into_iter().enumerate() {
            let in_file = |e: DumpError| e.in_file(i);
            let src = Source::new(storage).map_err(in_file)?;
            let head = src.bytes(0, 8.min(src.len() as usize)).unwrap_or_default().into_owned();
            if !kdump::is_kdump(&head) {
                let what =
                    if head.starts_with(b"\x7fELF") { "an ELF core is never split" } else { "not kdump-compressed" };
                return Err(DumpError::new(DumpErrorKind::SplitSet(what), 0).in_file(i));
            }
            let kdump = KdumpFile::parse(&src).map_err(in_file)?;
            let Some((start, end)) = kdump.split else {
                return Err(
                    DumpError::new(DumpErrorKind::SplitSet("a file is a whole dump, not a split part"), 0).in_file(i)
                );
            };
            parts.push(Part { src, kdump, start, end, file: Some(i as u32) });
        }
        let first = &parts[0].kdump;
        for (i, p) in parts.iter().enumerate().skip(1) {
            let k = &p.kdump;
            let same = k.utsname == first.utsname
                && k.timestamp == first.timestamp
                && k.block_size == first.block_size
                && k.max_pfn == first.max_pfn
                && k.header_version == first.header_version
                && k.layout == first.layout;
            if !same {
                let what = "utsname, time stamp, page size or memory size differ from the first file";
                return Err(DumpError::new(DumpErrorKind::SplitSet(what), 0).in_file(i));
            }
        }
        parts.sort_by_key(|p| p.start);
        for w in parts.windows(2) {
            if w[1].start < w[0].end {
                let what = "their PFN ranges overlap (the same part given twice?)";
                return Err(DumpError::new(DumpErrorKind::SplitSet(what), 0).in_file(w[1].file.unwrap_or(0) as usize));
            }
        }
        Ok(Dump::from_backend(Backend::Kdump { parts }))
    }

    fn from_storage(storage: Storage) -> Result<Dump, DumpError> {
        let src = Source::new(storage)?;
        let head = src.bytes(0, 8.min(src.len() as usize)).unwrap_or_default().into_owned();
        let backend = if kdump::is_kdump(&head) {
            let kdump = KdumpFile::parse(&src)?;
            let (start, end) = kdump.split.unwrap_or((0, u64::MAX));
            Backend::Kdump { parts: vec![Part { src, kdump, start, end, file: None }] }
        } else if head.starts_with(b"\x7fELF") {
            if src.flat().is_some() {
                return Err(DumpError::new(DumpErrorKind::Unsupported("ELF core in a flattened stream"), 0));
            }
            let core = Box::new(elf::parse(src.raw())?);
            Backend::Elf { src, core }
        } else if FlatIndex::is_flattened(src.raw()) && src.len() == 0 {
            return Err(DumpError::truncated(src.raw().len() as u64));
        } else {
            return Err(DumpError::new(DumpErrorKind::UnknownFormat, 0));
        };
        Ok(Dump::from_backend(backend))
    }

    fn from_backend(backend: Backend) -> Dump {
        let notes = match &backend {
            Backend::Elf { core, .. } => &core.notes,
            Backend::Kdump { parts } => &parts[0].kdump.notes,
        };
        let vmcoreinfo = notes.vmcoreinfo.as_deref().map(VmcoreInfo::parse);
        let meta = metadata(&backend, vmcoreinfo.as_ref());
        let cache = Mutex::new(PageCache::new(meta.page_size as usize, CACHE_PAGES));
        Dump { backend, vmcoreinfo, meta, cache, overlay: overlay::Overlay::default(), notes_override: None }
    }

    /// The same dump with `patches` (physical address, bytes) laid over its memory: every
    /// later `read_phys` (and what `write_kdump` copies) sees the patched bytes; the file is
    /// never written. The way to rewrite kernel data for tests, fuzzing and what-if questions.
    /// Patches apply to bytes the dump provides (a patched hole stays a hole); later patches
    /// win where they overlap.
    pub fn with_patches(mut self, patches: Vec<(u64, Vec<u8>)>) -> Dump {
        for (paddr, bytes) in patches {
            self.overlay.insert(paddr, &bytes);
        }
        self
    }

    /// The same dump without the pages holding these physical addresses: they read as
    /// filtered out, as if makedumpfile had dropped them (for tests of what a missing page
    /// does to the answers built on it).
    pub fn without_pages(mut self, paddrs: &[u64]) -> Dump {
        for &a in paddrs {
            self.overlay.remove_page(a / self.meta.page_size.max(1));
        }
        self
    }

    /// The same dump with other notes (for tests of dumps whose register notes are missing or
    /// numbered differently); VMCOREINFO stays as read.
    pub fn with_notes(mut self, notes: Notes) -> Dump {
        self.notes_override = Some(Box::new(notes));
        self
    }

    /// The same dump with `text` as its VMCOREINFO (as if the note held it), for tests and
    /// fuzzing of what is built on VMCOREINFO. The notes and metadata stay as read.
    pub fn with_vmcoreinfo(mut self, text: &[u8]) -> Dump {
        self.vmcoreinfo = Some(VmcoreInfo::parse(text));
        self
    }

    /// Lays the overlay (if any) over `buf`, read from `paddr`.
    fn patch(&self, paddr: u64, buf: &mut [u8]) {
        if !self.overlay.is_empty() {
            self.overlay.apply(paddr, buf);
        }
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    pub fn notes(&self) -> &Notes {
        if let Some(n) = &self.notes_override {
            return n;
        }
        match &self.backend {
            Backend::Elf { core, .. } => &core.notes,
            Backend::Kdump { parts } => &parts[0].kdump.notes,
        }
    }

    pub fn vmcoreinfo(&self) -> Option<&VmcoreInfo> {
        self.vmcoreinfo.as_ref()
    }

    /// The file holding `pfn`'s page (the first file when none does, for its bitmaps).
    fn part_for(parts: &[Part], pfn: u64) -> (&Part, bool) {
        let i = parts.partition_point(|p| p.start <= pfn);
        match i.checked_sub(1).map(|i| &parts[i]) {
            Some(p) if pfn < p.end => (p, true),
            _ => (&parts[0], false),
        }
    }

    /// What the dump holds for the page containing `paddr`. A page dumped into a file of a
    /// split dump that was not opened is `Lost`.
    pub fn page_state(&self, paddr: u64) -> PageState {
        match &self.backend {
            Backend::Elf { core, .. } => match elf_span(core, paddr).map(|s| s.kind) {
                Some(SpanKind::Data { .. }) => PageState::Dumped,
                Some(SpanKind::Filtered) => PageState::Filtered,
                Some(SpanKind::Lost { .. }) => PageState::Lost,
                None => PageState::Hole,
            },
            Backend::Kdump { parts } => {
                let pfn = paddr / self.meta.page_size;
                let (part, _) = Dump::part_for(parts, pfn);
                match part.kdump.slot(&part.src, pfn) {
                    PageSlot::Hole => PageState::Hole,
                    PageSlot::Filtered => PageState::Filtered,
                    // A descriptor never written (or pointing past the end) is a lost page.
                    PageSlot::Dumped { desc_offset } if part.kdump.data_present(&part.src, desc_offset) => {
                        PageState::Dumped
                    }
                    PageSlot::Dumped { .. } | PageSlot::Elsewhere => PageState::Lost,
                }
            }
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
                file: None,
            })?;
            let chunk = match self.overlay.is_removed(addr / self.meta.page_size.max(1)) {
                true => {
                    let page_left = self.meta.page_size.max(1) - addr % self.meta.page_size.max(1);
                    let n = (buf.len() - done).min(page_left as usize);
                    Err((ReadError { kind: ReadErrorKind::Filtered, paddr: addr, offset: None, file: None }, n))
                }
                false => self.read_chunk(addr, &mut buf[done..], true),
            };
            let n = match chunk {
                Ok(n) => n,
                Err((err, n)) if zero_fill && matches!(err.kind, ReadErrorKind::Hole | ReadErrorKind::Filtered) => {
                    buf[done..done + n].fill(0);
                    filled += n as u64;
                    n
                }
                Err((err, _)) => {
                    self.patch(paddr, &mut buf[..done]);
                    return Err(err);
                }
            };
            done += n;
        }
        self.patch(paddr, buf);
        Ok(filled)
    }

    /// Reads from `addr` up to the end of its page or span; on failure also says how many
    /// bytes the failure covers (for zero filling).
    fn read_chunk(&self, addr: u64, out: &mut [u8], cached: bool) -> Result<usize, (ReadError, usize)> {
        let page = self.meta.page_size;
        let in_page = (page - addr % page).min(out.len() as u64) as usize;
        match &self.backend {
            Backend::Elf { src, core } => {
                let hole =
                    |n: usize| (ReadError { kind: ReadErrorKind::Hole, paddr: addr, offset: None, file: None }, n);
                let Some(span) = elf_span(core, addr) else {
                    // Up to the next span or page end, whichever is first.
                    let next = core.spans.partition_point(|s| s.end <= addr);
                    let gap = core.spans.get(next).map_or(u64::MAX, |s| s.start - addr);
                    let n = (gap.min(out.len() as u64)) as usize;
                    return Err(hole(n.max(1)));
                };
                let n = (span.end - addr).min(out.len() as u64) as usize;
                let err = |kind| (ReadError { kind, paddr: addr, offset: None, file: None }, n);
                match span.kind {
                    SpanKind::Data { file_offset } => {
                        let from = (file_offset + (addr - span.start)) as usize;
                        out[..n].copy_from_slice(&src.raw()[from..from + n]);
                        Ok(n)
                    }
                    SpanKind::Filtered => Err(err(ReadErrorKind::Filtered)),
                    SpanKind::Lost { file_offset } => {
                        let kind = ReadErrorKind::Truncated { file_size: src.raw().len() as u64 };
                        let at = file_offset.saturating_add(addr - span.start);
                        Err((ReadError { kind, paddr: addr, offset: Some(at), file: None }, n))
                    }
                }
            }
            Backend::Kdump { parts } => {
                let pfn = addr / page;
                let (part, covered) = Dump::part_for(parts, pfn);
                // A PFN no given file holds is blamed on none of them.
                let file = part.file.filter(|_| covered);
                let err = |kind, offset| (ReadError { kind, paddr: addr, offset, file }, in_page);
                let desc_offset = match part.kdump.slot(&part.src, pfn) {
                    PageSlot::Hole => return Err(err(ReadErrorKind::Hole, None)),
                    PageSlot::Filtered => return Err(err(ReadErrorKind::Filtered, None)),
                    PageSlot::Elsewhere => return Err(err(ReadErrorKind::InOtherFile, None)),
                    PageSlot::Dumped { desc_offset } => desc_offset,
                };
                let from = (addr % page) as usize;
                // A whole page is decoded straight into the caller's buffer, without the
                // cache and its lock: bulk reads on several threads then run in parallel, and
                // pages read whole are rarely read again.
                if !cached || in_page as u64 == page {
                    part.kdump
                        .read_page(&part.src, desc_offset, &mut out[..page as usize])
                        .map_err(|(kind, offset)| err(kind, Some(offset)))?;
                    return Ok(page as usize);
                }
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(data) = cache.get(pfn) {
                    out[..in_page].copy_from_slice(&data[from..from + in_page]);
                    return Ok(in_page);
                }
                let data = cache
                    .insert_with(pfn, |buf| part.kdump.read_page(&part.src, desc_offset, buf))
                    .map_err(|(kind, offset)| err(kind, Some(offset)))?;
                out[..in_page].copy_from_slice(&data[from..from + in_page]);
                Ok(in_page)
            }
        }
    }

    /// One whole page for copying into another file, without the page cache (safe to call
    /// from several threads at once). Holes and filtered bytes of a page an ELF segment
    /// covers only in part read as zeros; data promised but missing is `Lost`.
    pub(crate) fn read_page_for_copy(&self, pfn: u64, buf: &mut [u8]) -> Result<CopyRead, ReadError> {
        let paddr = pfn * self.meta.page_size;
        let read = self.read_page_unpatched(paddr, buf);
        if let Ok(CopyRead::Data) = read {
            self.patch(paddr, buf);
        }
        read
    }

    fn read_page_unpatched(&self, paddr: u64, buf: &mut [u8]) -> Result<CopyRead, ReadError> {
        let lost = |e: &ReadError| {
            matches!(e.kind, ReadErrorKind::Lost | ReadErrorKind::InOtherFile | ReadErrorKind::Truncated { .. })
        };
        match &self.backend {
            Backend::Elf { .. } => match self.read_inner(paddr, buf, true) {
                Ok(_) => Ok(CopyRead::Data),
                Err(e) if lost(&e) => Ok(CopyRead::Lost),
                Err(e) => Err(e),
            },
            Backend::Kdump { .. } => match self.read_chunk(paddr, buf, false) {
                Ok(_) => Ok(CopyRead::Data),
                Err((e, _)) if lost(&e) => Ok(CopyRead::Lost),
                Err((e, _)) => Err(e),
            },
        }
    }

    /// PFN ranges with the file whose bitmaps describe them: the parts' own ranges, and
    /// the gaps between them with the first file.
    fn bitmap_segments(parts: &[Part], max_pfn: u64) -> Vec<(u64, u64, &Part)> {
        let mut out = Vec::new();
        let mut at = 0u64;
        for p in parts {
            let (s, e) = (p.start.min(max_pfn), p.end.min(max_pfn));
            if s > at {
                out.push((at, s, &parts[0]));
            }
            if e > s {
                out.push((s, e, p));
            }
            at = at.max(e);
        }
        if at < max_pfn {
            out.push((at, max_pfn, &parts[0]));
        }
        out
    }

    /// Sets, in `ram` and `dumped` (bit `pfn - from` for each PFN of `[from, to)`, cleared by
    /// the caller, `from` a multiple of 8), which PFNs are RAM and which have data, or had it:
    /// lost pages count as dumped. For the writer, a chunk at a time.
    pub(crate) fn fill_bitmaps(&self, from: u64, to: u64, ram: &mut [u8], dumped: &mut [u8]) {
        debug_assert!(from.is_multiple_of(8));
        let to = to.min(self.meta.max_pfn);
        let base = (from / 8) as usize;
        match &self.backend {
            Backend::Elf { core, .. } => {
                let page = self.meta.page_size;
                let first = core.spans.partition_point(|s| s.end <= from * page);
                for s in &core.spans[first..] {
                    let (a, b) = ((s.start / page).max(from), s.end.div_ceil(page).min(to));
                    if s.start / page >= to {
                        break;
                    }
                    set_bits(ram, base, a, b);
                    if !matches!(s.kind, SpanKind::Filtered) {
                        set_bits(dumped, base, a, b);
                    }
                }
            }
            Backend::Kdump { parts } => {
                for (s, e, p) in Dump::bitmap_segments(parts, self.meta.max_pfn) {
                    let (s, e) = (s.max(from), e.min(to).min(p.kdump.max_pfn));
                    if s < e {
                        copy_bits(ram, p.kdump.ram_bitmap(&p.src), base, s, e);
                        copy_bits(dumped, p.kdump.dumped_bitmap(&p.src), base, s, e);
                    }
                }
            }
        }
    }

    /// The files of the dump that were cut short, and how many pages each loses to it
    /// (distinct from filtering: those pages were written, then cut off). Walks the tail of
    /// the descriptor table or the segment table: meant for summaries.
    pub fn truncation(&self) -> Vec<Truncation> {
        match &self.backend {
            Backend::Elf { src, core } => {
                elf_truncation(src.raw().len() as u64, core, self.meta.page_size).into_iter().collect()
            }
            Backend::Kdump { parts } => parts.iter().filter_map(kdump_truncation).collect(),
        }
    }

    /// (device, inode) of the files this dump was opened from: the writer never writes there.
    pub(crate) fn file_ids(&self) -> Vec<(u64, u64)> {
        match &self.backend {
            Backend::Elf { src, .. } => src.file_id().into_iter().collect(),
            Backend::Kdump { parts } => parts.iter().filter_map(|p| p.src.file_id()).collect(),
        }
    }

    /// The physical memory the dump describes, as contiguous ranges with how much of each is
    /// in the file. Walks the bitmaps or segment table: meant for summaries, not hot paths.
    pub fn memory_ranges(&self) -> Vec<MemoryRange> {
        let mut out: Vec<MemoryRange> = Vec::new();
        match &self.backend {
            Backend::Elf { core, .. } => {
                for s in &core.spans {
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
            Backend::Kdump { parts } => {
                let page = self.meta.page_size;
                for (from, to, p) in Dump::bitmap_segments(parts, self.meta.max_pfn) {
                    let ram = p.kdump.ram_bitmap(&p.src);
                    let dumped = p.kdump.dumped_bitmap(&p.src);
                    let to = to.min(p.kdump.max_pfn);
                    let mut pfn = from;
                    while pfn < to {
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
        }
        out
    }

    /// Raw pieces the writer carries over: the note blob, the VMCOREINFO text when it is not
    /// in a note, and makedumpfile's erase information.
    pub(crate) fn carried_over(&self) -> Carried {
        match &self.backend {
            Backend::Elf { src, core } => {
                // Bounded like a kdump file's note blob; the rest would not be carried.
                let mut notes = Vec::new();
                for &(off, len) in &core.note_ranges {
                    let len = len.min(kdump::MAX_NOTE_BYTES.saturating_sub(notes.len() as u64));
                    notes.extend_from_slice(&src.raw()[off as usize..(off + len) as usize]);
                }
                Carried {
                    notes,
                    vmcoreinfo_only: None,
                    eraseinfo: Vec::new(),
                    endian: core.endian,
                    layout: KdumpLayout {
                        timeval_bits: if core.class32 { 32 } else { 64 },
                        sub_header: if core.class32 { SubHeaderLayout::Ilp32Aligned } else { SubHeaderLayout::Lp64 },
                        big_endian: core.endian == raw::Endian::Big,
                    },
                    header: None,
                    elf_machine: Some(elf_machine_name(core.machine, core.class32, core.endian)),
                }
            }
            Backend::Kdump { parts } => {
                let p = &parts[0];
                let k = &p.kdump;
                let read = |r: Option<(u64, u64)>| -> Vec<u8> {
                    r.filter(|&(_, s)| s <= kdump::MAX_NOTE_BYTES)
                        .and_then(|(o, s)| p.src.bytes(o, s as usize))
                        .map(|b| b.into_owned())
                        .unwrap_or_default()
                };
                let notes = read(k.note_range);
                let vmcoreinfo_only = if k.note_range.is_none() { k.notes.vmcoreinfo.clone() } else { None };
                Carried {
                    notes,
                    vmcoreinfo_only,
                    eraseinfo: read(k.eraseinfo_range),
                    endian: k.endian,
                    layout: k.layout,
                    header: Some(HeaderCopy {
                        status: k.status,
                        total_ram_blocks: k.total_ram_blocks,
                        device_blocks: k.device_blocks,
                        written_blocks: k.written_blocks,
                        timestamp: k.timestamp,
                    }),
                    elf_machine: None,
                }
            }
        }
    }
}

/// What a written kdump file takes from the dump beyond its pages (see `carried_over`).
pub(crate) struct Carried {
    pub notes: Vec<u8>,
    pub vmcoreinfo_only: Option<Vec<u8>>,
    pub eraseinfo: Vec<u8>,
    pub endian: raw::Endian,
    pub layout: KdumpLayout,
    /// Main-header fields of a kdump source.
    pub header: Option<HeaderCopy>,
    /// utsname.machine for an ELF source (from `e_machine`).
    pub elf_machine: Option<String>,
}

/// `uname -m` of the machine an ELF core's `e_machine` names (empty when unknown).
fn elf_machine_name(machine: u16, class32: bool, endian: raw::Endian) -> String {
    let little = endian == raw::Endian::Little;
    let name = match (machine, class32) {
        (62, _) => "x86_64",
        (183, _) => "aarch64",
        (3, _) => "i686",
        (40, _) => "arm",
        (20, _) => "ppc",
        (21, _) if little => "ppc64le",
        (21, _) => "ppc64",
        (22, true) => "s390",
        (22, false) => "s390x",
        (8, true) => "mips",
        (8, false) => "mips64",
        (243, true) => "riscv32",
        (243, false) => "riscv64",
        (258, _) => "loongarch64",
        _ => "",
    };
    name.to_string()
}

pub(crate) struct HeaderCopy {
    pub status: u32,
    pub total_ram_blocks: u32,
    pub device_blocks: u32,
    pub written_blocks: u32,
    pub timestamp: (i64, i64),
}

/// Sets bits `[from, to)` of a bitmap whose byte 0 is byte `base` of the whole one.
fn set_bits(bits: &mut [u8], base: usize, from: u64, to: u64) {
    let mut pfn = from;
    while pfn < to {
        if pfn.is_multiple_of(8) && pfn + 8 <= to {
            let (a, b) = ((pfn / 8) as usize - base, (to / 8) as usize - base);
            bits[a..b].fill(0xff);
            pfn = to / 8 * 8;
            continue;
        }
        bits[(pfn / 8) as usize - base] |= 1 << (pfn % 8);
        pfn += 1;
    }
}

/// Copies bits `[from, to)` of `src` into `dst` (which has them clear; its byte 0 is byte
/// `base` of `src`).
fn copy_bits(dst: &mut [u8], src: &[u8], base: usize, from: u64, to: u64) {
    let mut pfn = from;
    while pfn < to {
        if pfn.is_multiple_of(8) && pfn + 8 <= to {
            let (a, b) = ((pfn / 8) as usize, (to / 8) as usize);
            dst[a - base..b - base].copy_from_slice(&src[a..b]);
            pfn = to / 8 * 8;
            continue;
        }
        let (byte, bit) = ((pfn / 8) as usize, pfn % 8);
        dst[byte - base] |= src[byte] & (1 << bit);
        pfn += 1;
    }
}

fn elf_truncation(file_size: u64, core: &ElfCore, page: u64) -> Option<Truncation> {
    let expected = core.segments.iter().map(|s| s.file_offset.saturating_add(s.file_size)).max().unwrap_or(0);
    let lost_pages: u64 = core
        .spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Lost { .. }))
        .map(|s| s.end.div_ceil(page) - s.start / page)
        .sum();
    (expected > file_size).then_some(Truncation {
        file: None,
        file_size,
        expected_size: expected,
        exact: true,
        pages_lost: lost_pages,
    })
}

/// Counts, from the end of the descriptor table, the pages whose descriptor or data is past
/// the end of the file. Data is written in PFN order, so the scan stops at the first page
/// (from the end) whose data is in the file; the shared zero page does not stop it.
fn kdump_truncation(p: &Part) -> Option<Truncation> {
    let (k, src) = (&p.kdump, &p.src);
    let file_size = src.len();
    if file_size >= k.expected_len() {
        return None;
    }
    let desc_len = raw::kdump::page_desc::LEN as u64;
    let base = k.data_start - k.descriptors * desc_len;
    let readable = (file_size.saturating_sub(base) / desc_len).min(k.descriptors);
    let mut lost = k.descriptors - readable;
    for i in (0..readable).rev() {
        let Some(d) = k.descriptor(src, base + i * desc_len) else { break };
        let end = (d.offset as u64).saturating_add(d.size as u64);
        if d.offset > 0 && d.offset as u64 != k.data_start && end <= file_size {
            break;
        }
        if end > file_size {
            lost += 1;
        }
    }
    Some(Truncation {
        file: p.file,
        file_size,
        expected_size: k.expected_len(),
        exact: k.data_end.is_some(),
        pages_lost: lost,
    })
}

fn elf_span(e: &ElfCore, addr: u64) -> Option<&elf::Span> {
    let i = e.spans.partition_point(|s| s.end <= addr);
    e.spans.get(i).filter(|s| s.start <= addr)
}

/// An ELF core has no page size of its own: x86_64 pages are always 4 KiB, an aarch64 kernel
/// uses 4, 16 or 64 KiB (VMCOREINFO says which), other machines take VMCOREINFO's value when
/// it is a plausible page size. A value that cannot be right is returned as ignored, with
/// what fixed the size instead; an edited PAGESIZE must not rescale all of memory.
fn elf_page_size(arch: Arch, from_vmcoreinfo: Option<u64>) -> (u64, Option<(u64, &'static str)>) {
    let (size, fixed_by) = match (arch, from_vmcoreinfo) {
        (Arch::X86_64, _) => (4096, "the x86_64 architecture (4 KiB pages)"),
        (Arch::Aarch64, Some(p @ (4096 | 16384 | 65536))) => (p, ""),
        (Arch::Aarch64, _) => (4096, "the aarch64 architecture (4, 16 or 64 KiB pages)"),
        (_, Some(p)) if p.is_power_of_two() && (1024..=1 << 20).contains(&p) => (p, ""),
        (_, _) => (4096, "the usual 4 KiB (no plausible value)"),
    };
    let ignored = from_vmcoreinfo.filter(|&p| p != size).map(|p| (p, fixed_by));
    (size, ignored)
}

/// A kdump file's block size is the dump's page unit (makedumpfile: the kernel's page size;
/// QEMU: the largest page size of the machine, 64 KiB on aarch64 under a 4 KiB kernel). A
/// VMCOREINFO PAGESIZE is reported as ignored when it cannot be the kernel's: larger than the
/// block or not dividing it, or not 4 KiB on x86_64.
fn kdump_page_size_ignored(k: &KdumpFile, from_vmcoreinfo: Option<u64>) -> Option<(u64, &'static str)> {
    let p = from_vmcoreinfo?;
    let block = k.block_size as u64;
    if k.arch == Arch::X86_64 && p != 4096 {
        return Some((p, "the x86_64 architecture (4 KiB pages)"));
    }
    let fits = p.is_power_of_two() && p >= 1024 && p <= block;
    (!fits).then_some((p, "the dump header's block_size"))
}

fn metadata(backend: &Backend, vmcoreinfo: Option<&VmcoreInfo>) -> Metadata {
    let crash_time = vmcoreinfo.and_then(|v| v.crash_time());
    let osrelease = vmcoreinfo.and_then(|v| v.osrelease()).map(str::to_string);
    match backend {
        Backend::Elf { src, core: e } => {
            let (page_size, page_size_ignored) = elf_page_size(e.arch, vmcoreinfo.and_then(|v| v.page_size()));
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
                page_size_ignored,
                notes_cut: e.notes_cut,
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
                split_parts: Vec::new(),
                kdump_layout: None,
                file_size: src.raw().len() as u64,
                flattened_records: None,
                eraseinfo_bytes: 0,
                load_segments: e.segments.clone(),
            }
        }
        Backend::Kdump { parts } => {
            let first = &parts[0];
            let (src, k) = (&first.src, &first.kdump);
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
            let split_parts: Vec<SplitPart> = parts
                .iter()
                .filter(|p| p.kdump.split.is_some())
                .map(|p| SplitPart {
                    file: p.file.unwrap_or(0),
                    start_pfn: p.start,
                    end_pfn: p.end,
                    file_size: p.src.raw().len() as u64,
                })
                .collect();
            // A set that leaves some PFNs to files not given cannot provide every page.
            let covered = k.split.is_none()
                || (parts[0].start == 0
                    && parts.windows(2).all(|w| w[0].end == w[1].start)
                    && parts.last().is_some_and(|p| p.end >= k.max_pfn));
            Metadata {
                format: Format::KdumpCompressed { flattened: src.flat().is_some(), diskdump: k.old_signature },
                compression,
                header_version: Some(k.header_version),
                dump_level: k.dump_level,
                // QEMU writes dump level 1 yet dumps every page, so look at the bitmaps.
                partial: k.any_filtered(src),
                incomplete: parts.iter().any(|p| p.kdump.status & status::INCOMPLETE != 0) || !covered,
                page_size: k.block_size as u64,
                page_size_ignored: kdump_page_size_ignored(k, vmcoreinfo.and_then(|v| v.page_size())),
                notes_cut: k.notes_cut,
                max_pfn: k.max_pfn,
                nr_cpus: if k.nr_cpus > 0 { k.nr_cpus as u32 } else { k.notes.prstatus.len() as u32 },
                current_cpu: Some(k.current_cpu),
                date: Some(k.timestamp.0).filter(|&t| t != 0).or(crash_time),
                arch: k.arch,
                machine: k.utsname.machine.clone(),
                release,
                utsname: Some(k.utsname.clone()),
                phys_base: k.phys_base,
                split: k.split.map(|_| (parts[0].start, parts.last().map_or(0, |p| p.end))),
                split_parts,
                kdump_layout: Some(k.layout),
                file_size: parts.iter().map(|p| p.src.raw().len() as u64).sum(),
                flattened_records: src.flat().map(|f| f.records),
                eraseinfo_bytes: k.eraseinfo_size,
                load_segments: Vec::new(),
            }
        }
    }
}
