//! kdump-compressed files ("KDUMP   " / "DISKDUMP", written by makedumpfile and QEMU): the
//! header and sub-header, the two PFN bitmaps (1: the PFN is RAM; 2: the page was dumped),
//! and page descriptors. The descriptor of a PFN is the n-th, n = set bits of bitmap 2
//! before it; prefix counts per 4096-bit chunk, built on first use, make that O(1).

use crate::error::{DumpError, DumpErrorKind, ReadErrorKind};
use crate::notes::{self, Arch, Notes};
use crate::raw::kdump::{SIGNATURE_DISKDUMP, SIGNATURE_KDUMP, header64, page_desc, page_flags, sub_header64};
use crate::raw::{Endian, c_string, i32_at, i64_at, u32_at, u64_at};
use crate::source::Source;
use std::io::Read;
use std::sync::OnceLock;

/// Bits per prefix-count chunk: 512 bytes of bitmap, at most 64 popcounts per lookup.
const CHUNK_BITS: u64 = 4096;
/// Largest note blob accepted (real ones are a few KiB per CPU).
const MAX_NOTE_BYTES: u64 = 64 << 20;
/// Machines whose kdump header uses the 32-bit layout (long = 4 bytes).
const MACHINES_32BIT: &[&str] = &["i386", "i486", "i586", "i686", "arm", "armv7l", "ppc", "mips", "s390", "sh"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// A bitmap, read in place from the mapped file, or copied once when the file is a
/// flattened stream (where it may be split over several records).
enum Bits {
    InFile { offset: u64, len: usize },
    Owned(Vec<u8>),
}

pub(crate) struct KdumpFile {
    pub endian: Endian,
    pub old_signature: bool,
    pub header_version: i32,
    pub utsname: Utsname,
    pub timestamp: (i64, i64),
    pub status: u32,
    pub block_size: u32,
    pub nr_cpus: i32,
    pub current_cpu: u32,
    /// Largest PFN + 1 the bitmaps can describe (header value, bounded by the bitmap size).
    pub max_pfn: u64,
    pub phys_base: Option<u64>,
    pub dump_level: Option<i32>,
    /// `[start, end)` PFNs this file holds when the dump was split over several files.
    pub split: Option<(u64, u64)>,
    pub eraseinfo_size: u64,
    pub notes: Notes,
    pub arch: Arch,
    ram_bits: Bits,
    dumped_bits: Bits,
    desc_base: u64,
    /// Set bits of the dumped bitmap before each chunk.
    prefix: OnceLock<Vec<u64>>,
}

/// Where one PFN's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageSlot {
    Hole,
    Filtered,
    Dumped { desc_offset: u64 },
}

pub(crate) fn is_kdump(data: &[u8]) -> bool {
    data.len() >= 8 && (&data[..8] == SIGNATURE_KDUMP || &data[..8] == SIGNATURE_DISKDUMP)
}

impl KdumpFile {
    pub fn parse(src: &Source) -> Result<KdumpFile, DumpError> {
        let head = src.bytes(0, header64::SIZE).ok_or(DumpError::truncated(src.len()))?;
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
        if MACHINES_32BIT.contains(&utsname.machine.as_str()) {
            return Err(DumpError::new(
                DumpErrorKind::Unsupported("kdump header of a 32-bit machine"),
                (header64::UTSNAME + 4 * header64::UTSNAME_FIELD_LEN) as u64,
            ));
        }
        let u32f = |off: usize| u32_at(&head, off, e).unwrap_or(0);
        let timestamp = (
            i64_at(&head, header64::TIMESTAMP_SEC, e).unwrap_or(0),
            i64_at(&head, header64::TIMESTAMP_USEC, e).unwrap_or(0),
        );
        let status = u32f(header64::STATUS);
        let block_size = u32f(header64::BLOCK_SIZE);
        if !block_size.is_power_of_two() || !(1024..=1 << 20).contains(&block_size) {
            return Err(DumpError::bad("block_size is not a page size", header64::BLOCK_SIZE as u64));
        }
        let bs = block_size as u64;
        let sub_hdr_size = u32f(header64::SUB_HDR_SIZE) as i32;
        if sub_hdr_size < 0 {
            return Err(DumpError::bad("negative sub_hdr_size", header64::SUB_HDR_SIZE as u64));
        }
        let bitmap_blocks = u32f(header64::BITMAP_BLOCKS) as u64;
        if bitmap_blocks == 0 || !bitmap_blocks.is_multiple_of(2) {
            return Err(DumpError::bad("bitmap_blocks must be even and non-zero", header64::BITMAP_BLOCKS as u64));
        }
        let bitmap_offset = (1 + sub_hdr_size as u64) * bs;
        let bitmap_bytes = bitmap_blocks
            .checked_mul(bs)
            .ok_or(DumpError::bad("bitmap_blocks too large", header64::BITMAP_BLOCKS as u64))?;
        let desc_base = bitmap_offset + bitmap_bytes;
        if desc_base > src.len() {
            return Err(DumpError::truncated(bitmap_offset));
        }
        let half = (bitmap_bytes / 2) as usize;
        let mut max_mapnr = u32f(header64::MAX_MAPNR) as u64;

        let mut phys_base = None;
        let mut dump_level = None;
        let mut split = None;
        let mut eraseinfo_size = 0;
        let mut note_range = None;
        let mut vmcoreinfo_range = None;
        if header_version >= 1 {
            let sub = src.bytes(bs, sub_header64::SIZE).ok_or(DumpError::truncated(bs))?;
            let s64 = |off: usize| u64_at(&sub, off, e).unwrap_or(0);
            phys_base = Some(s64(sub_header64::PHYS_BASE));
            dump_level = Some(i32_at(&sub, sub_header64::DUMP_LEVEL, e).unwrap_or(0));
            if header_version >= 2 && i32_at(&sub, sub_header64::SPLIT, e).unwrap_or(0) != 0 {
                split = Some(if header_version >= 6 {
                    (s64(sub_header64::START_PFN_64), s64(sub_header64::END_PFN_64))
                } else {
                    (s64(sub_header64::START_PFN), s64(sub_header64::END_PFN))
                });
            }
            if header_version >= 3 {
                vmcoreinfo_range = Some((s64(sub_header64::OFFSET_VMCOREINFO), s64(sub_header64::SIZE_VMCOREINFO)));
            }
            if header_version >= 4 {
                note_range = Some((s64(sub_header64::OFFSET_NOTE), s64(sub_header64::SIZE_NOTE)));
            }
            if header_version >= 5 {
                eraseinfo_size = s64(sub_header64::SIZE_ERASEINFO);
            }
            if header_version >= 6 {
                max_mapnr = s64(sub_header64::MAX_MAPNR_64);
            }
        }
        let max_pfn = max_mapnr.min(half as u64 * 8);

        let arch = Arch::from_machine_name(&utsname.machine);
        let mut notes = Notes::empty();
        if let Some((off, size)) = note_range.filter(|&(o, s)| o != 0 && s != 0) {
            if size > MAX_NOTE_BYTES {
                return Err(DumpError::bad("size_note too large", bs + sub_header64::SIZE_NOTE as u64));
            }
            let blob = src.bytes(off, size as usize).ok_or(DumpError::truncated(off))?;
            notes::collect(&mut notes, &blob, e, arch);
        }
        // Version 3 files point at VMCOREINFO without a note blob.
        let vmcoreinfo_only = vmcoreinfo_range.filter(|&(o, s)| o != 0 && s != 0 && notes.vmcoreinfo.is_none());
        if let Some((off, size)) = vmcoreinfo_only {
            if size > MAX_NOTE_BYTES {
                return Err(DumpError::bad("size_vmcoreinfo too large", bs + sub_header64::SIZE_VMCOREINFO as u64));
            }
            let text = src.bytes(off, size as usize).ok_or(DumpError::truncated(off))?;
            notes.vmcoreinfo = Some(text.into_owned());
        }
        notes::number_cpus(&mut notes);

        let bits_at = |offset: u64| -> Result<Bits, DumpError> {
            Ok(if src.flat().is_some() {
                Bits::Owned(src.bytes(offset, half).ok_or(DumpError::truncated(offset))?.into_owned())
            } else {
                Bits::InFile { offset, len: half }
            })
        };
        let ram_bits = bits_at(bitmap_offset)?;
        let dumped_bits = bits_at(bitmap_offset + half as u64)?;
        Ok(KdumpFile {
            endian,
            old_signature,
            header_version,
            utsname,
            timestamp,
            status,
            block_size,
            nr_cpus: i32_at(&head, header64::NR_CPUS, e).unwrap_or(0),
            current_cpu: u32f(header64::CURRENT_CPU),
            max_pfn,
            phys_base,
            dump_level,
            split,
            eraseinfo_size,
            notes,
            arch,
            ram_bits,
            dumped_bits,
            desc_base,
            prefix: OnceLock::new(),
        })
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

    /// Whether some RAM page was left out (bitmap 1 set, bitmap 2 clear).
    pub fn any_filtered(&self, src: &Source) -> bool {
        let bytes = self.max_pfn.div_ceil(8) as usize;
        let ram = &self.ram_bitmap(src)[..bytes];
        let dumped = &self.dumped_bitmap(src)[..bytes];
        ram.iter().zip(dumped).any(|(r, d)| r & !d != 0)
    }

    /// Set bits of the dumped bitmap in PFNs `[0, pfn)`.
    fn dumped_before(&self, src: &Source, pfn: u64) -> u64 {
        let bits = self.dumped_bitmap(src);
        let prefix = self.prefix.get_or_init(|| {
            let mut acc = 0u64;
            let mut v = Vec::with_capacity(bits.len() / (CHUNK_BITS as usize / 8) + 2);
            v.push(0);
            for chunk in bits.chunks(CHUNK_BITS as usize / 8) {
                acc += chunk.iter().map(|b| b.count_ones() as u64).sum::<u64>();
                v.push(acc);
            }
            v
        });
        let chunk = pfn / CHUNK_BITS;
        let mut n = prefix[chunk as usize];
        let first_byte = (chunk * CHUNK_BITS / 8) as usize;
        let last_byte = (pfn / 8) as usize;
        n += bits[first_byte..last_byte].iter().map(|b| b.count_ones() as u64).sum::<u64>();
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
            Some((start, end)) if pfn < start || pfn >= end => return PageSlot::Hole,
            Some((start, _)) => self.dumped_before(src, start.min(self.max_pfn)),
            None => 0,
        };
        let index = self.dumped_before(src, pfn) - first;
        PageSlot::Dumped { desc_offset: self.desc_base + index * page_desc::LEN as u64 }
    }

    /// Decodes one dumped page into `out` (exactly one block). On failure: the kind and the
    /// file offset to blame.
    pub fn read_page(&self, src: &Source, desc_offset: u64, out: &mut [u8]) -> Result<(), (ReadErrorKind, u64)> {
        let e = self.endian;
        let desc = src.bytes(desc_offset, page_desc::LEN).ok_or((ReadErrorKind::Lost, desc_offset))?;
        let offset = i64_at(&desc, page_desc::OFFSET, e).unwrap_or(0);
        let size = u32_at(&desc, page_desc::SIZE, e).unwrap_or(0) as u64;
        let flags = u32_at(&desc, page_desc::FLAGS, e).unwrap_or(0);
        if offset <= 0 {
            // An incomplete dump leaves the descriptors it never wrote zeroed.
            return Err((ReadErrorKind::Lost, desc_offset));
        }
        let offset = offset as u64;
        if size == 0 || size > self.block_size as u64 {
            return Err((ReadErrorKind::Corrupt, desc_offset));
        }
        let data = src.bytes(offset, size as usize).ok_or((ReadErrorKind::Lost, offset))?;
        let corrupt = (ReadErrorKind::Corrupt, offset);
        let ok = match flags {
            0 => {
                if data.len() != out.len() {
                    return Err(corrupt);
                }
                out.copy_from_slice(&data);
                true
            }
            page_flags::ZLIB => inflate_zlib(&data, out),
            page_flags::LZO => lzokay::decompress::decompress(&data, out).is_ok_and(|n| n == out.len()),
            page_flags::SNAPPY => {
                snap::raw::decompress_len(&data).is_ok_and(|n| n == out.len())
                    && snap::raw::Decoder::new().decompress(&data, out).is_ok_and(|n| n == out.len())
            }
            page_flags::ZSTD => inflate_zstd(&data, out),
            _ => return Err((ReadErrorKind::UnsupportedCompression, desc_offset)),
        };
        if ok { Ok(()) } else { Err(corrupt) }
    }
}

fn inflate_zlib(data: &[u8], out: &mut [u8]) -> bool {
    let mut z = flate2::Decompress::new(true);
    matches!(z.decompress(data, out, flate2::FlushDecompress::Finish), Ok(flate2::Status::StreamEnd))
        && z.total_out() == out.len() as u64
}

/// zstd frames of one page. The frame's window size is checked first because the decoder
/// allocates a window of the size the frame asks for.
fn inflate_zstd(data: &[u8], out: &mut [u8]) -> bool {
    if data.len() < 6 || data[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return false;
    }
    let descriptor = data[4];
    let single_segment = descriptor & 0x20 != 0;
    let window = if single_segment {
        // The window is the frame content size, stored after the optional dictionary id.
        let did_len = [0usize, 1, 2, 4][(descriptor & 3) as usize];
        let fcs_len = [1usize, 2, 4, 8][(descriptor >> 6) as usize];
        let at = 5 + did_len;
        let Some(field) = data.get(at..at + fcs_len) else { return false };
        let mut le = [0u8; 8];
        le[..fcs_len].copy_from_slice(field);
        u64::from_le_bytes(le) + if fcs_len == 2 { 256 } else { 0 }
    } else {
        let w = data[5];
        let base = 1u64 << (10 + (w >> 3));
        base + (base / 8) * (w & 7) as u64
    };
    if window > 4 * out.len() as u64 {
        return false;
    }
    let Ok(mut dec) = ruzstd::StreamingDecoder::new(data) else { return false };
    if dec.read_exact(out).is_err() {
        return false;
    }
    let mut extra = [0u8; 1];
    matches!(dec.read(&mut extra), Ok(0))
}
