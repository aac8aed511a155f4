//! kdump-compressed files ("KDUMP   " / "DISKDUMP", written by makedumpfile and QEMU): the
//! header and sub-header, the two PFN bitmaps (1: the PFN is RAM; 2: the page was dumped),
//! and page descriptors. The descriptor of a PFN is the n-th, n = set bits of bitmap 2
//! before it; prefix counts per 4096-bit chunk, built on first use, make that O(1).
//!
//! The header is written with the C ABI of the machine makedumpfile ran on: a 32-bit build has
//! a 32-bit `struct timeval` (fields after `utsname` sit 12 bytes earlier) and 32-bit `long`s
//! in the sub-header, aligned to 4 (i386) or 8 bytes (arm, ppc, mips). The layout is chosen
//! from utsname.machine and checked against the fields it implies; when the machine is
//! unknown the layout whose fields make sense wins.

use crate::error::{DumpError, DumpErrorKind, ReadErrorKind};
use crate::notes::{self, Arch, Notes};
use crate::raw::kdump::{
    SIGNATURE_DISKDUMP, SIGNATURE_KDUMP, header32, header64, page_desc, page_flags, sub_header32_aligned,
    sub_header32_packed, sub_header64,
};
use crate::raw::{Endian, c_string, i32_at, i64_at, u32_at, u64_at};
use crate::source::Source;
use std::sync::OnceLock;

/// Bits per prefix-count chunk: 512 bytes of bitmap, at most 64 popcounts per lookup.
const CHUNK_BITS: u64 = 4096;
/// Bitmap bytes `any_filtered` reads at most (at open).
const EXACT_SCAN_BYTES: usize = 4 << 20;
/// Descriptors read at open at the head of the table (to check the bitmap against them) and
/// at its tail (to find where page data ends).
const HEAD_PROBE: u64 = 64;
const TAIL_PROBE: u64 = 256;
/// Largest note blob accepted (real ones are a few KiB per CPU).
pub(crate) const MAX_NOTE_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// The C ABI a kdump header was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdumpLayout {
    /// Bits of each `struct timeval` member in the main header (64, or 32 on a 32-bit build).
    pub timeval_bits: u8,
    pub sub_header: SubHeaderLayout,
    pub big_endian: bool,
}

/// `struct kdump_sub_header` variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubHeaderLayout {
    /// 64-bit `long` (every 64-bit Linux machine).
    Lp64,
    /// 32-bit `long`, 64-bit fields aligned to 4 bytes (i386, m68k).
    Ilp32Packed,
    /// 32-bit `long`, 64-bit fields aligned to 8 bytes (arm, ppc, mips).
    Ilp32Aligned,
}

/// Byte offsets of the sub-header fields and the width of its `unsigned long`s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SubOffsets {
    pub long: usize,
    pub phys_base: usize,
    pub dump_level: usize,
    pub split: usize,
    pub start_pfn: usize,
    pub end_pfn: usize,
    pub offset_vmcoreinfo: usize,
    pub size_vmcoreinfo: usize,
    pub offset_note: usize,
    pub size_note: usize,
    pub offset_eraseinfo: usize,
    pub size_eraseinfo: usize,
    pub start_pfn_64: usize,
    pub end_pfn_64: usize,
    pub max_mapnr_64: usize,
    pub size: usize,
}

macro_rules! sub_offsets {
    ($m:ident, $long:expr) => {
        SubOffsets {
            long: $long,
            phys_base: $m::PHYS_BASE,
            dump_level: $m::DUMP_LEVEL,
            split: $m::SPLIT,
            start_pfn: $m::START_PFN,
            end_pfn: $m::END_PFN,
            offset_vmcoreinfo: $m::OFFSET_VMCOREINFO,
            size_vmcoreinfo: $m::SIZE_VMCOREINFO,
            offset_note: $m::OFFSET_NOTE,
            size_note: $m::SIZE_NOTE,
            offset_eraseinfo: $m::OFFSET_ERASEINFO,
            size_eraseinfo: $m::SIZE_ERASEINFO,
            start_pfn_64: $m::START_PFN_64,
            end_pfn_64: $m::END_PFN_64,
            max_mapnr_64: $m::MAX_MAPNR_64,
            size: $m::SIZE,
        }
    };
}

impl SubHeaderLayout {
    pub(crate) fn offsets(self) -> SubOffsets {
        match self {
            SubHeaderLayout::Lp64 => sub_offsets!(sub_header64, 8),
            SubHeaderLayout::Ilp32Packed => sub_offsets!(sub_header32_packed, 4),
            SubHeaderLayout::Ilp32Aligned => sub_offsets!(sub_header32_aligned, 4),
        }
    }
}

/// Byte offsets of the main-header fields after `utsname`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MainOffsets {
    pub timeval_bits: u8,
    pub timestamp_sec: usize,
    pub timestamp_usec: usize,
    pub status: usize,
    pub block_size: usize,
    pub sub_hdr_size: usize,
    pub bitmap_blocks: usize,
    pub max_mapnr: usize,
    pub total_ram_blocks: usize,
    pub device_blocks: usize,
    pub written_blocks: usize,
    pub current_cpu: usize,
    pub nr_cpus: usize,
    pub size: usize,
}

macro_rules! main_offsets {
    ($m:ident, $bits:expr) => {
        MainOffsets {
            timeval_bits: $bits,
            timestamp_sec: $m::TIMESTAMP_SEC,
            timestamp_usec: $m::TIMESTAMP_USEC,
            status: $m::STATUS,
            block_size: $m::BLOCK_SIZE,
            sub_hdr_size: $m::SUB_HDR_SIZE,
            bitmap_blocks: $m::BITMAP_BLOCKS,
            max_mapnr: $m::MAX_MAPNR,
            total_ram_blocks: $m::TOTAL_RAM_BLOCKS,
            device_blocks: $m::DEVICE_BLOCKS,
            written_blocks: $m::WRITTEN_BLOCKS,
            current_cpu: $m::CURRENT_CPU,
            nr_cpus: $m::NR_CPUS,
            size: $m::SIZE,
        }
    };
}

pub(crate) const MAIN64: MainOffsets = main_offsets!(header64, 64);
pub(crate) const MAIN32: MainOffsets = main_offsets!(header32, 32);

/// Width of `long` on the machine named by utsname.machine, when the name is known.
pub(crate) fn machine_long_bits(machine: &str) -> Option<u8> {
    const LP64: &[&str] = &[
        "x86_64",
        "amd64",
        "aarch64",
        "aarch64_be",
        "arm64",
        "ppc64",
        "ppc64le",
        "s390x",
        "mips64",
        "mips64el",
        "riscv64",
        "loongarch64",
        "sparc64",
        "ia64",
        "alpha",
        "parisc64",
    ];
    const ILP32: &[&str] = &[
        "ppc",
        "powerpc",
        "mips",
        "mipsel",
        "s390",
        "riscv32",
        "sparc",
        "parisc",
        "m68k",
        "microblaze",
        "xtensa",
        "arc",
        "csky",
        "nios2",
        "openrisc",
        "or1k",
        "hexagon",
    ];
    let m = machine;
    if LP64.contains(&m) {
        Some(64)
    } else if ILP32.contains(&m) || is_x86_32(m) || m.starts_with("arm") || (m.starts_with("sh") && m != "sh64") {
        Some(32)
    } else {
        None
    }
}

/// The sub-header layout a machine's makedumpfile writes, when the machine is known.
pub(crate) fn sub_layout_of_machine(machine: &str) -> Option<SubHeaderLayout> {
    match machine_long_bits(machine)? {
        64 => Some(SubHeaderLayout::Lp64),
        _ if is_x86_32(machine) || machine == "m68k" => Some(SubHeaderLayout::Ilp32Packed),
        _ => Some(SubHeaderLayout::Ilp32Aligned),
    }
}

/// i386 … i686: the ABI that aligns 64-bit members to 4 bytes (as does m68k).
fn is_x86_32(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 4 && b[0] == b'i' && b[2..] == *b"86" && (b'3'..=b'6').contains(&b[1])
}

/// The fields of the main header, checked as far as they can be without the sub-header.
#[derive(Clone, Copy, Debug)]
struct Main {
    at: MainOffsets,
    timestamp: (i64, i64),
    status: u32,
    block_size: u32,
    max_mapnr: u32,
    nr_cpus: i32,
    current_cpu: u32,
    total_ram_blocks: u32,
    device_blocks: u32,
    written_blocks: u32,
    bitmap_offset: u64,
    bitmap_bytes: u64,
}

impl Main {
    fn read(head: &[u8], e: Endian, at: MainOffsets, file_len: u64) -> Result<Main, DumpError> {
        if head.len() < at.size {
            return Err(DumpError::truncated(head.len() as u64));
        }
        let u32f = |off: usize| u32_at(head, off, e).unwrap_or(0);
        let time = |off: usize| match at.timeval_bits {
            64 => i64_at(head, off, e).unwrap_or(0),
            _ => i32_at(head, off, e).unwrap_or(0) as i64,
        };
        let block_size = u32f(at.block_size);
        if !block_size.is_power_of_two() || !(1024..=1 << 20).contains(&block_size) {
            return Err(DumpError::bad("block_size is not a page size", at.block_size as u64));
        }
        let bs = block_size as u64;
        let sub_hdr_size = u32f(at.sub_hdr_size) as i32;
        if sub_hdr_size < 0 {
            return Err(DumpError::bad("negative sub_hdr_size", at.sub_hdr_size as u64));
        }
        let bitmap_blocks = u32f(at.bitmap_blocks) as u64;
        if bitmap_blocks == 0 || !bitmap_blocks.is_multiple_of(2) {
            return Err(DumpError::bad("bitmap_blocks must be even and non-zero", at.bitmap_blocks as u64));
        }
        let bitmap_offset = (1 + sub_hdr_size as u64) * bs;
        let bitmap_bytes =
            bitmap_blocks.checked_mul(bs).ok_or(DumpError::bad("bitmap_blocks too large", at.bitmap_blocks as u64))?;
        if bitmap_offset + bitmap_bytes > file_len {
            return Err(DumpError::truncated(bitmap_offset));
        }
        Ok(Main {
            at,
            timestamp: (time(at.timestamp_sec), time(at.timestamp_usec)),
            status: u32f(at.status),
            block_size,
            max_mapnr: u32f(at.max_mapnr),
            nr_cpus: u32f(at.nr_cpus) as i32,
            current_cpu: u32f(at.current_cpu),
            total_ram_blocks: u32f(at.total_ram_blocks),
            device_blocks: u32f(at.device_blocks),
            written_blocks: u32f(at.written_blocks),
            bitmap_offset,
            bitmap_bytes,
        })
    }

    /// How many of the values no writer would produce are absent.
    fn plausibility(&self) -> u32 {
        let (sec, usec) = self.timestamp;
        [
            (0..1_000_000).contains(&usec),
            sec >= 0,
            (0..=1 << 20).contains(&self.nr_cpus),
            self.status & !0x3f == 0,
            self.max_mapnr as u64 <= self.bitmap_bytes / 2 * 8,
            self.current_cpu <= 1 << 20 || self.current_cpu == u32::MAX,
        ]
        .iter()
        .filter(|&&ok| ok)
        .count() as u32
    }
}

/// A bitmap, read in place from the mapped file, or copied once when the file is a
/// flattened stream (where it may be split over several records).
enum Bits {
    InFile { offset: u64, len: usize },
    Owned(Vec<u8>),
}

pub(crate) struct KdumpFile {
    pub endian: Endian,
    pub layout: KdumpLayout,
    pub old_signature: bool,
    pub header_version: i32,
    pub utsname: Utsname,
    pub timestamp: (i64, i64),
    pub status: u32,
    pub block_size: u32,
    pub nr_cpus: i32,
    pub current_cpu: u32,
    pub total_ram_blocks: u32,
    pub device_blocks: u32,
    pub written_blocks: u32,
    /// Largest PFN + 1 the bitmaps can describe (header value, bounded by the bitmap size).
    pub max_pfn: u64,
    pub phys_base: Option<u64>,
    pub dump_level: Option<i32>,
    /// `[start, end)` PFNs this file holds when the dump was split over several files.
    pub split: Option<(u64, u64)>,
    pub eraseinfo_size: u64,
    /// File ranges (offset, size) of the note blob and the erase info.
    pub note_range: Option<(u64, u64)>,
    pub eraseinfo_range: Option<(u64, u64)>,
    /// The note blob or VMCOREINFO text when its size field says more than it holds.
    pub notes_cut: Option<notes::NotesCut>,
    pub notes: Notes,
    pub arch: Arch,
    ram_bits: Bits,
    dumped_bits: Bits,
    desc_base: u64,
    /// File offset of the dumped bitmap (bitmap 2).
    dumped_bits_offset: u64,
    /// Where page data starts: right after this file's descriptors.
    pub data_start: u64,
    /// Where page data ends, as the last descriptors say (`None` when they cannot tell).
    pub data_end: Option<u64>,
    /// Page descriptors this file holds.
    pub descriptors: u64,
    /// Set bits of the dumped bitmap before each chunk.
    prefix: OnceLock<Vec<u64>>,
    /// Set bits of the dumped bitmap before this file's first PFN (split files).
    first_index: OnceLock<u64>,
}

/// One page descriptor as stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Desc {
    pub offset: i64,
    pub size: u32,
    pub flags: u32,
}

/// Where one PFN's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageSlot {
    Hole,
    Filtered,
    Dumped {
        desc_offset: u64,
    },
    /// Dumped, but into another file of a split dump.
    Elsewhere,
}

pub(crate) fn is_kdump(data: &[u8]) -> bool {
    data.len() >= 8 && (&data[..8] == SIGNATURE_KDUMP || &data[..8] == SIGNATURE_DISKDUMP)
}

impl KdumpFile {
    pub fn parse(src: &Source) -> Result<KdumpFile, DumpError> {
        let avail = src.len().min(header64::SIZE as u64) as usize;
        if avail < header32::SIZE {
            return Err(DumpError::truncated(src.len()));
        }
        let head = src.bytes(0, avail).ok_or(DumpError::truncated(src.len()))?;
        let old_signature = &head[..8] == SIGNATURE_DISKDUMP;
        // The header is in the dumped machine's byte order; a version number that reads as
        // a small value in one order tells which.
        let plausible = |v: i32| (0..=64).contains(&v);
        let endian = if plausible(i32_at(&head, header64::HEADER_VERSION, Endian::Little).unwrap_or(-1)) {
            Endian::Little
        } else if plausible(i32_at(&head, header64::HEADER_VERSION, Endian::Big).unwrap_or(-1)) {
            Endian::Big
        } else {
            return Err(DumpError::bad("header_version out of range", header64::HEADER_VERSION as u64));
        };
        let e = endian;
        let header_version = i32_at(&head, header64::HEADER_VERSION, e).unwrap_or(0);
        let field = |i: usize| {
            let off = header64::UTSNAME + i * header64::UTSNAME_FIELD_LEN;
            c_string(&head[off..off + header64::UTSNAME_FIELD_LEN])
        };
        let utsname = Utsname {
            sysname: field(0),
            nodename: field(1),
            release: field(2),
            version: field(3),
            machine: field(4),
            domainname: field(5),
        };
        let long_bits = machine_long_bits(&utsname.machine);

        // Main header: the machine's word size says which layout to try first (a 32-bit
        // build with a 64-bit time_t writes the 64-bit one); the fields decide.
        let order = if long_bits == Some(32) { [MAIN32, MAIN64] } else { [MAIN64, MAIN32] };
        let tries = order.map(|at| Main::read(&head, e, at, src.len()));
        let main = match (&tries[0], &tries[1]) {
            (Ok(a), Ok(b)) if b.plausibility() > a.plausibility() && long_bits.is_none() => *b,
            (Ok(a), _) => *a,
            (Err(_), Ok(b)) => *b,
            (Err(err), Err(_)) => return Err(*err),
        };
        let bs = main.block_size as u64;
        let half = (main.bitmap_bytes / 2) as usize;
        let mut max_mapnr = main.max_mapnr as u64;

        // Sub-header: the machine's ABI when it is known, else tried in turn (below).
        let candidates: &[SubHeaderLayout] = match long_bits {
            Some(64) => &[SubHeaderLayout::Lp64],
            Some(_) if is_x86_32(&utsname.machine) || utsname.machine == "m68k" => {
                &[SubHeaderLayout::Ilp32Packed, SubHeaderLayout::Ilp32Aligned]
            }
            Some(_) => &[SubHeaderLayout::Ilp32Aligned, SubHeaderLayout::Ilp32Packed],
            None if main.at.timeval_bits == 32 => {
                &[SubHeaderLayout::Ilp32Packed, SubHeaderLayout::Ilp32Aligned, SubHeaderLayout::Lp64]
            }
            None => &[SubHeaderLayout::Lp64, SubHeaderLayout::Ilp32Aligned, SubHeaderLayout::Ilp32Packed],
        };
        let mut layout = KdumpLayout {
            timeval_bits: main.at.timeval_bits,
            sub_header: candidates[0],
            big_endian: endian == Endian::Big,
        };
        let mut phys_base = None;
        let mut dump_level = None;
        let mut split = None;
        let mut eraseinfo_size = 0;
        let mut note_range = None;
        let mut vmcoreinfo_range = None;
        let mut eraseinfo_range = None;
        if header_version >= 1 {
            let sub = src.bytes(bs, sub_header64::SIZE).ok_or(DumpError::truncated(bs))?;
            // Versions 3+ point into the header blocks and version 6 repeats max_mapnr: the
            // layout whose fields agree with that wins.
            let consistent = |l: SubHeaderLayout| {
                let at = l.offsets();
                let long =
                    |off: usize| if at.long == 8 { u64_at(&sub, off, e) } else { u32_at(&sub, off, e).map(u64::from) };
                let ok = |off: usize, size: usize| {
                    let (o, s) = (u64_at(&sub, off, e).unwrap_or(u64::MAX), long(size).unwrap_or(u64::MAX));
                    (o == 0 && s == 0)
                        || (o >= bs + at.size as u64 && s <= MAX_NOTE_BYTES && o + s <= main.bitmap_offset)
                };
                let max64 = u64_at(&sub, at.max_mapnr_64, e).unwrap_or(0);
                (header_version < 3
                    || (ok(at.offset_vmcoreinfo, at.size_vmcoreinfo)
                        && (header_version < 4 || ok(at.offset_note, at.size_note))))
                    && (header_version < 6 || max64.min(u32::MAX as u64) == main.max_mapnr as u64)
            };
            layout.sub_header = candidates.iter().copied().find(|&l| consistent(l)).unwrap_or(candidates[0]);
            let at = layout.sub_header.offsets();
            let s64 = |off: usize| u64_at(&sub, off, e).unwrap_or(0);
            let long = |off: usize| if at.long == 8 { s64(off) } else { u32_at(&sub, off, e).unwrap_or(0) as u64 };
            let field_offset = |off: usize| bs + off as u64;
            phys_base = Some(long(at.phys_base));
            dump_level = Some(i32_at(&sub, at.dump_level, e).unwrap_or(0));
            if header_version >= 2 && i32_at(&sub, at.split, e).unwrap_or(0) != 0 {
                let (start, end) = if header_version >= 6 {
                    (s64(at.start_pfn_64), s64(at.end_pfn_64))
                } else {
                    (long(at.start_pfn), long(at.end_pfn))
                };
                if start >= end {
                    return Err(DumpError::bad("split file with start_pfn >= end_pfn", field_offset(at.start_pfn_64)));
                }
                split = Some((start, end));
            }
            if header_version >= 3 {
                vmcoreinfo_range =
                    Some((s64(at.offset_vmcoreinfo), long(at.size_vmcoreinfo))).filter(|&(o, s)| o != 0 && s != 0);
            }
            if header_version >= 4 {
                note_range = Some((s64(at.offset_note), long(at.size_note))).filter(|&(o, s)| o != 0 && s != 0);
                if let Some((_, size)) = note_range
                    && size > MAX_NOTE_BYTES
                {
                    return Err(DumpError::bad("size_note too large", field_offset(at.size_note)));
                }
            }
            if header_version >= 5 {
                eraseinfo_size = long(at.size_eraseinfo);
                eraseinfo_range = Some((s64(at.offset_eraseinfo), eraseinfo_size)).filter(|&(o, s)| o != 0 && s != 0);
            }
            if header_version >= 6 {
                max_mapnr = s64(at.max_mapnr_64);
            }
            if let Some((_, size)) = vmcoreinfo_range
                && size > MAX_NOTE_BYTES
            {
                return Err(DumpError::bad("size_vmcoreinfo too large", field_offset(at.size_vmcoreinfo)));
            }
        }
        let max_pfn = max_mapnr.min(half as u64 * 8);

        // 32-bit register notes are not decoded (no layout for them yet); VMCOREINFO is.
        let arch = if layout.sub_header == SubHeaderLayout::Lp64 && main.at.timeval_bits == 64 {
            Arch::from_machine_name(&utsname.machine)
        } else {
            Arch::Other
        };
        let mut notes = Notes::empty();
        let mut notes_cut = None;
        // Notes and VMCOREINFO live in the header blocks: a size reaching into the bitmaps
        // is damaged, and only what is before them (and parses, for notes) is used.
        let in_header = |off: u64, size: u64| size.min(main.bitmap_offset.saturating_sub(off));
        if let Some((off, size)) = note_range {
            let blob = src.bytes(off, in_header(off, size) as usize).ok_or(DumpError::truncated(off))?;
            let used = notes::collect(&mut notes, &blob, e, arch);
            notes_cut = notes::NotesCut::check(off, size, &blob, used);
            note_range = Some((off, used as u64));
        }
        // Version 3 files point at VMCOREINFO without a note blob.
        if let Some((off, size)) = vmcoreinfo_range.filter(|_| notes.vmcoreinfo.is_none()) {
            let kept = in_header(off, size);
            let text = src.bytes(off, kept as usize).ok_or(DumpError::truncated(off))?;
            notes_cut = notes_cut.or((kept < size).then_some(notes::NotesCut { offset: off, declared: size, kept }));
            notes.vmcoreinfo = Some(text.into_owned());
        }
        notes::number_cpus(&mut notes);
        let arch = match arch {
            Arch::Other if layout.sub_header == SubHeaderLayout::Lp64 => Arch::from_notes(&notes),
            a => a,
        };

        // A flattened stream's bitmaps are copied out; records must really carry them (a
        // stream names its length itself, so a small one could claim a huge file).
        if src.flat().is_some() && main.bitmap_bytes > src.raw().len() as u64 {
            return Err(DumpError::bad("bitmaps larger than the whole stream", main.at.bitmap_blocks as u64));
        }
        let bits_at = |offset: u64| -> Result<Bits, DumpError> {
            Ok(if src.flat().is_some() {
                Bits::Owned(src.bytes(offset, half).ok_or(DumpError::truncated(offset))?.into_owned())
            } else {
                Bits::InFile { offset, len: half }
            })
        };
        let ram_bits = bits_at(main.bitmap_offset)?;
        let dumped_bits = bits_at(main.bitmap_offset + half as u64)?;
        let mut file = KdumpFile {
            endian,
            layout,
            old_signature,
            header_version,
            utsname,
            timestamp: main.timestamp,
            status: main.status,
            block_size: main.block_size,
            nr_cpus: main.nr_cpus,
            current_cpu: main.current_cpu,
            total_ram_blocks: main.total_ram_blocks,
            device_blocks: main.device_blocks,
            written_blocks: main.written_blocks,
            max_pfn,
            phys_base,
            dump_level,
            split,
            eraseinfo_size,
            note_range,
            eraseinfo_range,
            notes_cut,
            notes,
            arch,
            ram_bits,
            dumped_bits,
            desc_base: main.bitmap_offset + main.bitmap_bytes,
            dumped_bits_offset: main.bitmap_offset + half as u64,
            data_start: 0,
            data_end: None,
            descriptors: 0,
            prefix: OnceLock::new(),
            first_index: OnceLock::new(),
        };
        file.locate_data(src)?;
        Ok(file)
    }

    /// The descriptor at `at`, when the file holds it.
    pub fn descriptor(&self, src: &Source, at: u64) -> Option<Desc> {
        let d = src.bytes(at, page_desc::LEN)?;
        let e = self.endian;
        Some(Desc {
            offset: i64_at(&d, page_desc::OFFSET, e)?,
            size: u32_at(&d, page_desc::SIZE, e)?,
            flags: u32_at(&d, page_desc::FLAGS, e)?,
        })
    }

    /// Descriptors this file holds: the set bits of the dumped bitmap in its PFN range.
    fn descriptor_count(&self, src: &Source) -> u64 {
        let end = self.split.map_or(self.max_pfn, |(_, e)| e.min(self.max_pfn));
        let start = self.split.map_or(0, |(s, _)| s.min(end));
        self.dumped_before(src, end) - self.dumped_before(src, start)
    }

    /// Checks the dumped bitmap against the descriptor table and finds the page data.
    ///
    /// The table has one 24-byte entry per set bit and every writer (makedumpfile, QEMU,
    /// ours) puts page data right after it: the first data is the shared zero page or the
    /// first page, so the smallest offset among the first descriptors is the data start or
    /// one block after it. A bitmap with a bit flipped miscounts the table, which would make
    /// every later page read another page's data; that is refused here. Reads the bitmap
    /// once (for its prefix counts) and a few hundred descriptors, never the whole table.
    fn locate_data(&mut self, src: &Source) -> Result<(), DumpError> {
        let bs = self.block_size as u64;
        let ndesc = self.descriptor_count(src);
        let start = self.desc_base + ndesc * page_desc::LEN as u64;
        let at = |i: u64| self.desc_base + i * page_desc::LEN as u64;
        // Descriptors never written (an incomplete dump) are zero and say nothing.
        let found = (0..ndesc.min(HEAD_PROBE))
            .map_while(|i| self.descriptor(src, at(i)))
            .filter(|d| d.offset > 0)
            .map(|d| d.offset as u64)
            .min();
        if let Some(found) = found
            && found != start
            && found != start + bs
        {
            let kind =
                DumpErrorKind::BitmapMismatch { set_bits: ndesc, expected: start, found, block_size: self.block_size };
            return Err(DumpError::new(kind, self.dumped_bits_offset));
        }
        // Pages are written in PFN order, so the tail of the table points at the end of the
        // data; a descriptor claiming more than a block per page is not believed.
        let bound = start.saturating_add((ndesc + 1).saturating_mul(bs));
        let tail_end = (ndesc.saturating_sub(TAIL_PROBE)..ndesc)
            .filter_map(|i| self.descriptor(src, at(i)))
            .filter(|d| d.offset as u64 >= start && d.offset > 0 && (1..=bs).contains(&(d.size as u64)))
            .map(|d| d.offset as u64 + d.size as u64)
            .filter(|&end| end <= bound)
            .max();
        // Only the shared zero page in the tail: the end is somewhere before, unknown.
        let data_end = tail_end.filter(|&end| end > start + bs);
        let erase_end = self.eraseinfo_range.filter(|&(o, _)| o >= start).map(|(o, s)| o.saturating_add(s));
        self.data_start = start;
        self.data_end = data_end.map(|e| e.max(erase_end.unwrap_or(0)));
        self.descriptors = ndesc;
        Ok(())
    }

    /// Bytes the file should have, when the descriptors tell (at least `data_start`).
    pub fn expected_len(&self) -> u64 {
        self.data_end.unwrap_or(0).max(self.data_start)
    }

    fn bits<'a>(&'a self, src: &'a Source, which: &'a Bits) -> &'a [u8] {
        match which {
            Bits::InFile { offset, len } => &src.raw()[*offset as usize..*offset as usize + len],
            Bits::Owned(v) => v,
        }
    }

    pub fn ram_bitmap<'a>(&'a self, src: &'a Source) -> &'a [u8] {
        self.bits(src, &self.ram_bits)
    }

    pub fn dumped_bitmap<'a>(&'a self, src: &'a Source) -> &'a [u8] {
        self.bits(src, &self.dumped_bits)
    }

    /// Whether some RAM page was left out (bitmap 1 set, bitmap 2 clear). Exact for up to
    /// `EXACT_SCAN_BYTES` of bitmap (128 GiB of 4 KiB pages), read a word at a time and
    /// stopping at the first such page. Bigger dumps, so that opening stays quick whatever
    /// their size: the first `EXACT_SCAN_BYTES`, then the dump level (cache, user or free pages
    /// excluded) decides.
    pub fn any_filtered(&self, src: &Source) -> bool {
        let bytes = self.max_pfn.div_ceil(8) as usize;
        let n = bytes.min(EXACT_SCAN_BYTES);
        let ram = &self.ram_bitmap(src)[..n];
        let dumped = &self.dumped_bitmap(src)[..n];
        let (rw, rt) = ram.as_chunks::<8>();
        let (dw, dt) = dumped.as_chunks::<8>();
        let found = rw.iter().zip(dw).any(|(r, d)| u64::from_ne_bytes(*r) & !u64::from_ne_bytes(*d) != 0)
            || rt.iter().zip(dt).any(|(r, d)| r & !d != 0);
        found || (bytes > EXACT_SCAN_BYTES && self.dump_level.is_some_and(|l| l & !1 != 0))
    }

    /// Set bits of the dumped bitmap in PFNs `[0, pfn)`, `pfn <= max_pfn`.
    pub fn dumped_before(&self, src: &Source, pfn: u64) -> u64 {
        let bits = self.dumped_bitmap(src);
        let prefix = self.prefix.get_or_init(|| {
            let mut acc = 0u64;
            let mut v = Vec::with_capacity(bits.len() / (CHUNK_BITS as usize / 8) + 2);
            v.push(0);
            for chunk in bits.chunks(CHUNK_BITS as usize / 8) {
                acc += popcount(chunk);
                v.push(acc);
            }
            v
        });
        let chunk = pfn / CHUNK_BITS;
        let mut n = prefix[chunk as usize];
        let first_byte = (chunk * CHUNK_BITS / 8) as usize;
        let last_byte = (pfn / 8) as usize;
        n += popcount(&bits[first_byte..last_byte]);
        let rem = (pfn % 8) as u32;
        if rem != 0 {
            n += (bits[last_byte] & ((1u8 << rem) - 1)).count_ones() as u64;
        }
        n
    }

    pub fn slot(&self, src: &Source, pfn: u64) -> PageSlot {
        if pfn >= self.max_pfn {
            return PageSlot::Hole;
        }
        let bit = |b: &[u8]| b[(pfn >> 3) as usize] >> (pfn & 7) & 1 == 1;
        if !bit(self.ram_bitmap(src)) {
            return PageSlot::Hole;
        }
        if !bit(self.dumped_bitmap(src)) {
            return PageSlot::Filtered;
        }
        let first = match self.split {
            Some((start, end)) if pfn < start || pfn >= end => return PageSlot::Elsewhere,
            Some((start, _)) => *self.first_index.get_or_init(|| self.dumped_before(src, start.min(self.max_pfn))),
            None => 0,
        };
        let index = self.dumped_before(src, pfn) - first;
        PageSlot::Dumped { desc_offset: self.desc_base + index * page_desc::LEN as u64 }
    }

    /// Where the descriptor at `desc_offset` says the page's data is, checked: `Lost` when it
    /// was never written, `Truncated` when it or the data is past the end of a file cut short,
    /// `BadDescriptor` when it cannot be right.
    fn locate_page(&self, src: &Source, desc_offset: u64) -> Result<(Desc, u64), (ReadErrorKind, u64)> {
        let truncated = ReadErrorKind::Truncated { file_size: src.len() };
        let desc = self.descriptor(src, desc_offset).ok_or((truncated, desc_offset))?;
        if desc.offset <= 0 {
            // An incomplete dump leaves the descriptors it never wrote zeroed.
            return Err((ReadErrorKind::Lost, desc_offset));
        }
        let offset = desc.offset as u64;
        let size = desc.size as u64;
        let end = offset.saturating_add(size);
        let past_data = end > self.data_end.unwrap_or(u64::MAX).max(src.len());
        if size == 0 || size > self.block_size as u64 || offset < self.data_start || past_data {
            return Err((ReadErrorKind::BadDescriptor, desc_offset));
        }
        if end > src.len() {
            return Err((truncated, offset));
        }
        Ok((desc, offset))
    }

    /// Whether the descriptor at `desc_offset` was written and points at data inside the file.
    pub fn data_present(&self, src: &Source, desc_offset: u64) -> bool {
        self.locate_page(src, desc_offset).is_ok()
    }

    /// Decodes one dumped page into `out` (exactly one block). On failure: the kind and the
    /// file offset to blame.
    pub fn read_page(&self, src: &Source, desc_offset: u64, out: &mut [u8]) -> Result<(), (ReadErrorKind, u64)> {
        let (desc, offset) = self.locate_page(src, desc_offset)?;
        let data =
            src.bytes(offset, desc.size as usize).ok_or((ReadErrorKind::Truncated { file_size: src.len() }, offset))?;
        match decode_page(desc.flags, &data, out) {
            Some(true) => Ok(()),
            Some(false) => Err((ReadErrorKind::Corrupt, offset)),
            None => Err((ReadErrorKind::UnsupportedCompression, desc_offset)),
        }
    }
}

/// Decodes one page stored with `page_desc.flags` = `flags` into `out` (exactly one page):
/// whether it decoded to exactly `out.len()` bytes; `None` for an unknown method.
pub(crate) fn decode_page(flags: u32, data: &[u8], out: &mut [u8]) -> Option<bool> {
    Some(match flags {
        0 => {
            if data.len() != out.len() {
                return Some(false);
            }
            out.copy_from_slice(data);
            true
        }
        page_flags::ZLIB => inflate_zlib(data, out),
        page_flags::LZO => crate::lzo::decompress(data, out).is_ok_and(|n| n == out.len()),
        page_flags::SNAPPY => {
            snap::raw::decompress_len(data).is_ok_and(|n| n == out.len())
                && snap::raw::Decoder::new().decompress(data, out).is_ok_and(|n| n == out.len())
        }
        page_flags::ZSTD => inflate_zstd(data, out),
        _ => return None,
    })
}

fn inflate_zlib(data: &[u8], out: &mut [u8]) -> bool {
    let mut z = flate2::Decompress::new(true);
    matches!(z.decompress(data, out, flate2::FlushDecompress::Finish), Ok(flate2::Status::StreamEnd))
        && z.total_out() == out.len() as u64
}

/// zstd frames of one page, decoded by libzstd in one shot into `out`: the page itself is the
/// window, so a frame asking for a bigger one cannot make it allocate (the decoder context
/// is one per thread, reused).
fn inflate_zstd(data: &[u8], out: &mut [u8]) -> bool {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { std::cell::RefCell::new(None) };
    }
    if data.len() < 6 || data[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return false;
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        matches!(dctx.decompress(out, data), Ok(n) if n == out.len())
    })
}

/// Set bits in `bytes`, eight at a time.
pub(crate) fn popcount(bytes: &[u8]) -> u64 {
    let (words, tail) = bytes.as_chunks::<8>();
    words.iter().map(|w| u64::from_ne_bytes(*w).count_ones() as u64).sum::<u64>()
        + tail.iter().map(|b| b.count_ones() as u64).sum::<u64>()
}
