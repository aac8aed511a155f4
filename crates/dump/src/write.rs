//! The kdump-compressed writer: any open dump (ELF core, kdump-compressed, flattened, a split
//! set) written again in makedumpfile's kdump-compressed format, header version 6, as one
//! file or split over several (makedumpfile `--split`), with the page compression asked for.
//!
//! What is carried over: every page the dump has (filtered pages stay filtered, pages a dump
//! promised but lost stay lost: their descriptors are zero and the header says incomplete),
//! the note blob (registers, QEMU CPU state, VMCOREINFO) byte for byte, the erase information,
//! utsname, time stamp, CPU numbers, phys_base, dump level and the header's other counters,
//! in the byte order and C layout (32 or 64-bit) of the source. An ELF core has no header:
//! the machine comes from `e_machine`, the release and time from VMCOREINFO.
//!
//! The only filtering done here is what needs no kernel knowledge: `exclude_zero` stores every
//! page of zeros once, as makedumpfile does for dump level bit 1 (their descriptors point to
//! one shared zero page, so they still read back as zeros). The other levels (cache, user,
//! free pages) need the kernel's page flags, which the dump layer does not read.
//!
//! Memory stays bounded whatever the dump's size: bitmaps are produced and written a chunk
//! at a time, pages in batches. Pages are decoded and compressed on several threads; the
//! output does not depend on their number. Files are written under a temporary name and
//! renamed at the end; a file the dump was opened from is never opened for writing.

use crate::error::ReadError;
use crate::kdump::{KdumpLayout, MAIN32, MAIN64, MainOffsets, SubOffsets, popcount, sub_layout_of_machine};
use crate::notes::iter_notes;
use crate::raw::Endian;
use crate::raw::kdump::{SIGNATURE_KDUMP, flattened, header64, page_desc, page_flags, status};
use crate::{Compression, CopyRead, Dump};
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Largest bitmap written (each of the two): 2^36 PFNs, 256 TiB of 4 KiB pages.
const MAX_BITMAP_BYTES: u64 = 8 << 30;
/// PFNs per bitmap chunk (8 MiB of each bitmap in memory at a time).
const CHUNK_PFNS: u64 = 1 << 26;
/// Page bytes per thread per batch (256 pages of 4 KiB).
const BATCH_BYTES_PER_THREAD: usize = 1 << 20;
/// Bytes buffered before a write.
const FLUSH_BYTES: usize = 1 << 20;
/// Most files one dump is split into.
pub const MAX_SPLIT: usize = 256;

/// How to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Store pages of zeros once (dump level bit 1, as makedumpfile does).
    pub exclude_zero: bool,
    /// Write makedumpfile's flattened stream (`-F`) instead of a seekable file.
    pub flattened: bool,
    /// Threads decoding and compressing pages; 0 = one per core.
    pub threads: usize,
    /// Replace output files that exist (never a file the dump was opened from).
    pub overwrite: bool,
}

impl WriteOptions {
    pub fn new(compression: Compression) -> WriteOptions {
        WriteOptions { compression, exclude_zero: false, flattened: false, threads: 0, overwrite: false }
    }
}

/// Reported after each batch of pages.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub pages_done: u64,
    pub pages_total: u64,
    pub bytes_written: u64,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct WriteStats {
    pub files: Vec<FileStats>,
    /// Page descriptors written (dumped pages, zero and lost ones included).
    pub pages: u64,
    /// Pages of zeros stored once (`exclude_zero`).
    pub zero_pages: u64,
    /// Pages the source promised but could not provide (written as lost).
    pub lost_pages: u64,
    /// Pages stored uncompressed because compression did not make them smaller.
    pub stored_raw: u64,
    /// Bytes of all output files.
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FileStats {
    pub start_pfn: u64,
    pub end_pfn: u64,
    pub pages: u64,
    pub bytes: u64,
}

/// Why writing failed. Output files are removed then; the input is never touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub kind: WriteErrorKind,
    /// Which output file (index into the list given), when it is about one.
    pub file: Option<u32>,
    /// Offset in that output file.
    pub offset: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteErrorKind {
    /// Creating, writing or renaming an output failed.
    Io(io::ErrorKind),
    /// A page of the input cannot be decoded (corrupt, or an unknown compression).
    Input(ReadError),
    /// An output names a file the dump was opened from.
    OutputIsInput,
    /// An output exists and `overwrite` was not set.
    OutputExists,
    /// A request that cannot be met (no output, more files than pages, a name twice).
    BadRequest(&'static str),
    /// The dump describes more memory than this writer handles.
    TooLarge(&'static str),
}

impl WriteError {
    fn new(kind: WriteErrorKind) -> Self {
        WriteError { kind, file: None, offset: None }
    }
    fn io(file: usize, offset: Option<u64>) -> impl Fn(io::Error) -> WriteError {
        move |e| WriteError { kind: WriteErrorKind::Io(e.kind()), file: Some(file as u32), offset }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.file {
            write!(f, "output {}: ", i + 1)?;
        }
        match self.kind {
            WriteErrorKind::Io(k) => write!(f, "cannot write: {k}")?,
            WriteErrorKind::Input(e) => write!(f, "input unreadable: {e}")?,
            WriteErrorKind::OutputIsInput => f.write_str("is a file the dump was opened from; it is never written")?,
            WriteErrorKind::OutputExists => f.write_str("exists (overwrite not asked for)")?,
            WriteErrorKind::BadRequest(what) => f.write_str(what)?,
            WriteErrorKind::TooLarge(what) => write!(f, "dump too large: {what}")?,
        }
        if let Some(o) = self.offset {
            write!(f, " (offset {o:#x})")?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteError {}

/// Writes `dump` as kdump-compressed file(s): one per entry of `outputs` (several = a split
/// dump). `progress` is called after each batch of pages.
pub fn write_kdump<P: AsRef<Path>>(
    dump: &Dump,
    outputs: &[P],
    opts: &WriteOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<WriteStats, WriteError> {
    let finals: Vec<PathBuf> = outputs.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let inputs = dump.file_ids();
    let id_of = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
    };
    for (i, p) in finals.iter().enumerate() {
        if finals[..i].contains(p) {
            return Err(WriteError {
                file: Some(i as u32),
                ..WriteError::new(WriteErrorKind::BadRequest("output named twice"))
            });
        }
        if let Some(id) = id_of(p) {
            let kind = if inputs.contains(&id) {
                WriteErrorKind::OutputIsInput
            } else if !opts.overwrite {
                WriteErrorKind::OutputExists
            } else {
                continue;
            };
            return Err(WriteError { file: Some(i as u32), ..WriteError::new(kind) });
        }
    }
    let temps: Vec<PathBuf> = finals.iter().map(|p| temp_name(p)).collect();
    let mut sinks = Vec::with_capacity(temps.len());
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (i, t) in temps.iter().enumerate() {
        if id_of(t).is_some_and(|id| inputs.contains(&id)) {
            return Err(WriteError { file: Some(i as u32), ..WriteError::new(WriteErrorKind::OutputIsInput) });
        }
        let _ = std::fs::remove_file(t);
        let file = match std::fs::OpenOptions::new().write(true).create_new(true).open(t) {
            Ok(f) => f,
            Err(e) => {
                cleanup(&temps[..i]);
                return Err(WriteError::io(i, None)(e));
            }
        };
        sinks.push(if opts.flattened { Sink::flat(FlatOut::File(io::BufWriter::new(file))) } else { Sink::File(file) });
    }
    let result = write_to(dump, &mut sinks, opts, progress).and_then(|stats| {
        for (i, s) in sinks.into_iter().enumerate() {
            s.finish().map_err(WriteError::io(i, None))?;
        }
        for (i, (t, f)) in temps.iter().zip(&finals).enumerate() {
            std::fs::rename(t, f).map_err(WriteError::io(i, None))?;
        }
        Ok(stats)
    });
    if result.is_err() {
        cleanup(&temps);
    }
    result
}

/// Like `write_kdump`, into memory: one buffer per file (`files` of them).
pub fn write_kdump_to_memory(
    dump: &Dump,
    files: usize,
    opts: &WriteOptions,
) -> Result<(Vec<Vec<u8>>, WriteStats), WriteError> {
    let mut sinks: Vec<Sink> = (0..files)
        .map(|_| if opts.flattened { Sink::flat(FlatOut::Mem(Vec::new())) } else { Sink::Mem(Vec::new()) })
        .collect();
    let stats = write_to(dump, &mut sinks, opts, &mut |_| {})?;
    let mut out = Vec::with_capacity(files);
    for s in sinks {
        out.push(match s {
            Sink::Mem(v) => v,
            Sink::Flat(FlatOut::Mem(mut v), _) => {
                v.extend_from_slice(&flattened::END_MARK.to_be_bytes());
                v.extend_from_slice(&flattened::END_MARK.to_be_bytes());
                v
            }
            _ => unreachable!("memory sinks only"),
        });
    }
    Ok((out, stats))
}

/// `dir/.name.lockscope-partial`: same directory, so the final rename does not copy.
fn temp_name(p: &Path) -> PathBuf {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "vmcore".into());
    p.with_file_name(format!(".{name}.lockscope-partial"))
}

enum FlatOut {
    File(io::BufWriter<File>),
    Mem(Vec<u8>),
}

impl Write for FlatOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FlatOut::File(f) => f.write(buf),
            FlatOut::Mem(v) => v.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            FlatOut::File(f) => f.flush(),
            FlatOut::Mem(_) => Ok(()),
        }
    }
}

/// Where a file's bytes go: a seekable file (all-zero writes are skipped, leaving holes), memory,
/// or a flattened stream of `{offset, size, data}` records.
enum Sink {
    File(File),
    Mem(Vec<u8>),
    /// The stream and the end of the file it describes so far.
    Flat(FlatOut, u64),
}

impl Sink {
    fn flat(mut out: FlatOut) -> Sink {
        let mut header = [0u8; flattened::HEADER_SIZE];
        header[..flattened::SIGNATURE.len()].copy_from_slice(flattened::SIGNATURE);
        header[flattened::TYPE..flattened::TYPE + 8].copy_from_slice(&1i64.to_be_bytes());
        header[flattened::VERSION..flattened::VERSION + 8].copy_from_slice(&1i64.to_be_bytes());
        // Memory cannot fail; a file's error shows again at the first record.
        let _ = out.write_all(&header);
        Sink::Flat(out, 0)
    }

    fn put(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        match self {
            Sink::File(f) => {
                if data.iter().all(|&b| b == 0) {
                    return Ok(());
                }
                f.write_all_at(data, offset)
            }
            Sink::Mem(v) => {
                let end = offset as usize + data.len();
                if v.len() < end {
                    v.resize(end, 0);
                }
                v[offset as usize..end].copy_from_slice(data);
                Ok(())
            }
            Sink::Flat(out, end) => {
                *end = (*end).max(offset + data.len() as u64);
                out.write_all(&(offset as i64).to_be_bytes())?;
                out.write_all(&(data.len() as i64).to_be_bytes())?;
                out.write_all(data)
            }
        }
    }

    /// Sets the file's length (skipped zeros at the end become a hole), ends a stream.
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        match self {
            Sink::File(f) => f.set_len(len),
            Sink::Mem(v) => {
                v.resize(len as usize, 0);
                Ok(())
            }
            // A stream is as long as its records reach: one byte at the end sets the length.
            Sink::Flat(out, end) if *end < len => {
                out.write_all(&(len as i64 - 1).to_be_bytes())?;
                out.write_all(&1i64.to_be_bytes())?;
                out.write_all(&[0])?;
                *end = len;
                Ok(())
            }
            Sink::Flat(..) => Ok(()),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.sync_all(),
            Sink::Mem(_) => Ok(()),
            Sink::Flat(FlatOut::File(mut w), _) => {
                w.write_all(&flattened::END_MARK.to_be_bytes())?;
                w.write_all(&flattened::END_MARK.to_be_bytes())?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()
            }
            Sink::Flat(FlatOut::Mem(_), _) => Ok(()),
        }
    }
}

/// Bytes for one region of a file, written in large pieces.
struct Buffered {
    at: u64,
    buf: Vec<u8>,
}

impl Buffered {
    fn new(at: u64) -> Buffered {
        Buffered { at, buf: Vec::with_capacity(FLUSH_BYTES) }
    }
    fn push(&mut self, sink: &mut Sink, bytes: &[u8], file: usize) -> Result<(), WriteError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= FLUSH_BYTES { self.flush(sink, file) } else { Ok(()) }
    }
    fn flush(&mut self, sink: &mut Sink, file: usize) -> Result<(), WriteError> {
        sink.put(self.at, &self.buf).map_err(WriteError::io(file, Some(self.at)))?;
        self.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// A page compressor of one kind, kept across pages.
enum Encoder {
    None,
    Zlib(Box<flate2::Compress>),
    Lzo(Box<lzokay::compress::Dict>),
    Snappy(Box<snap::raw::Encoder>),
    Zstd(Box<zstd::bulk::Compressor<'static>>),
}

impl Encoder {
    fn new(c: Compression) -> io::Result<Encoder> {
        Ok(match c {
            Compression::None => Encoder::None,
            // Level 1 for zlib and zstd, as makedumpfile. LZO: lzokay's compressor writes LZO1X
            // like liblzo2's LZO1X-1 but searches harder (smaller, much slower).
            Compression::Zlib => Encoder::Zlib(Box::new(flate2::Compress::new(flate2::Compression::fast(), true))),
            Compression::Lzo => Encoder::Lzo(lzokay::compress::Dict::new()),
            Compression::Snappy => Encoder::Snappy(Box::new(snap::raw::Encoder::new())),
            Compression::Zstd => Encoder::Zstd(Box::new(zstd::bulk::Compressor::new(1)?)),
        })
    }

    /// Compresses `page` into `out`; `None` when that does not make it smaller (it is then
    /// stored as is, flags 0, as makedumpfile does).
    fn encode(&mut self, page: &[u8], out: &mut Vec<u8>) -> Option<u32> {
        out.clear();
        let n = match self {
            Encoder::None => return None,
            Encoder::Zlib(z) => {
                z.reset();
                out.reserve(page.len());
                let done = z.compress_vec(page, out, flate2::FlushCompress::Finish);
                if !matches!(done, Ok(flate2::Status::StreamEnd)) {
                    return None;
                }
                out.len()
            }
            Encoder::Lzo(dict) => {
                out.resize(lzokay::compress::compress_worst_size(page.len()), 0);
                lzokay::compress::compress_no_alloc(page, out, dict).ok()?
            }
            Encoder::Snappy(s) => {
                out.resize(snap::raw::max_compress_len(page.len()), 0);
                s.compress(page, out).ok()?
            }
            Encoder::Zstd(z) => {
                out.resize(zstd::zstd_safe::compress_bound(page.len()), 0);
                z.compress_to_buffer(page, &mut out[..]).ok()?
            }
        };
        out.truncate(n);
        let flags = match self {
            Encoder::None => return None,
            Encoder::Zlib(_) => page_flags::ZLIB,
            Encoder::Lzo(_) => page_flags::LZO,
            Encoder::Snappy(_) => page_flags::SNAPPY,
            Encoder::Zstd(_) => page_flags::ZSTD,
        };
        (n < page.len()).then_some(flags)
    }
}

/// How one page went into the file.
#[derive(Clone, Copy)]
enum Stored {
    Data { flags: u32, len: u32 },
    Zero,
    Lost,
}

/// One thread's share of a batch: per page how it is stored, and the bytes.
#[derive(Default)]
struct Encoded {
    pages: Vec<Stored>,
    data: Vec<u8>,
}

fn put_u32(b: &mut [u8], off: usize, v: u32, e: Endian) {
    b[off..off + 4].copy_from_slice(&match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    });
}

fn put_u64(b: &mut [u8], off: usize, v: u64, e: Endian) {
    b[off..off + 8].copy_from_slice(&match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    });
}

/// A `long` of the sub-header (32-bit layouts keep the low half, as a 32-bit makedumpfile would).
fn put_long(b: &mut [u8], off: usize, v: u64, sub: &SubOffsets, e: Endian) {
    if sub.long == 8 { put_u64(b, off, v, e) } else { put_u32(b, off, v.min(u32::MAX as u64) as u32, e) }
}

/// Everything about the files that does not depend on which part of the split they are.
struct Plan {
    bs: u64,
    max_pfn: u64,
    endian: Endian,
    main: MainOffsets,
    sub: SubOffsets,
    /// Note blob plus a VMCOREINFO text kept apart (v3 sources), at `bs + sub.size`.
    note_area: Vec<u8>,
    notes_len: u64,
    /// VMCOREINFO's (offset, size) relative to the note area.
    vmcoreinfo: Option<(u64, u64)>,
    sub_hdr_blocks: u64,
    bitmap_off: u64,
    bitmap_len: u64,
    desc_base: u64,
    utsname: [String; 6],
    timestamp: (i64, i64),
    status_kept: u32,
    counters: [u32; 3],
    nr_cpus: i32,
    current_cpu: u32,
    phys_base: u64,
    dump_level: i32,
    eraseinfo: Vec<u8>,
}

impl Plan {
    fn new(dump: &Dump, opts: &WriteOptions) -> Result<Plan, WriteError> {
        let meta = dump.metadata();
        let bs = meta.page_size;
        let carried = dump.carried_over();
        let KdumpLayout { timeval_bits, sub_header, .. } = carried.layout;
        let main = if timeval_bits == 32 { MAIN32 } else { MAIN64 };
        let machine = carried.elf_machine.clone().or_else(|| meta.utsname.as_ref().map(|u| u.machine.clone()));
        // What the machine's own makedumpfile would write, so readers infer the same layout.
        let sub_header = machine.as_deref().and_then(sub_layout_of_machine).unwrap_or(sub_header);
        let sub = sub_header.offsets();
        let max_pfn = meta.max_pfn.max(1);
        let bitmap_bytes = max_pfn.div_ceil(8);
        if bitmap_bytes > MAX_BITMAP_BYTES {
            return Err(WriteError::new(WriteErrorKind::TooLarge("more than 2^36 page frames")));
        }
        let bitmap_len = bitmap_bytes.div_ceil(bs) * bs;
        let mut note_area = carried.notes;
        let notes_len = note_area.len() as u64;
        let mut vmcoreinfo = iter_notes(&note_area, carried.endian).find(|n| n.name == b"VMCOREINFO").map(|n| {
            let at = n.desc.as_ptr() as usize - note_area.as_ptr() as usize;
            (at as u64, n.desc.len() as u64)
        });
        if let Some(text) = carried.vmcoreinfo_only.filter(|_| vmcoreinfo.is_none()) {
            vmcoreinfo = Some((note_area.len() as u64, text.len() as u64));
            note_area.extend_from_slice(&text);
        }
        let sub_hdr_blocks = (sub.size as u64 + note_area.len() as u64).div_ceil(bs).max(1);
        let bitmap_off = (1 + sub_hdr_blocks) * bs;
        let desc_base = bitmap_off + 2 * bitmap_len;
        let uts = meta.utsname.clone().unwrap_or_default();
        let vi = dump.vmcoreinfo();
        let utsname = match &carried.elf_machine {
            None => [uts.sysname, uts.nodename, uts.release, uts.version, uts.machine, uts.domainname],
            Some(machine) => [
                "Linux".into(),
                String::new(),
                meta.release.clone().unwrap_or_default(),
                String::new(),
                machine.clone(),
                String::new(),
            ],
        };
        // Fields a header lacks (ELF sources, QEMU's kdump files) come from the kernel's own
        // utsname when VMCOREINFO locates it: libkdumpfile wants release, version and machine.
        let mut utsname = utsname;
        if (utsname[0].is_empty() || utsname[2].is_empty() || utsname[3].is_empty())
            && let Some(mem) = utsname_from_memory(dump)
        {
            for (field, from) in utsname.iter_mut().zip(mem) {
                if field.is_empty() {
                    *field = from;
                }
            }
        }
        let (timestamp, status_kept, counters) = match &carried.header {
            Some(h) => (
                h.timestamp,
                h.status & (status::INCOMPLETE | status::EXCLUDED_VMEMMAP),
                [h.total_ram_blocks, h.device_blocks, h.written_blocks],
            ),
            None => ((meta.date.unwrap_or(0), 0), if meta.incomplete { status::INCOMPLETE } else { 0 }, [0; 3]),
        };
        let phys_base = meta.phys_base.or_else(|| vi.and_then(|v| v.phys_base()).map(|p| p as u64)).unwrap_or(0);
        let dump_level = meta.dump_level.unwrap_or(0) | if opts.exclude_zero { 1 } else { 0 };
        Ok(Plan {
            bs,
            max_pfn,
            endian: carried.endian,
            main,
            sub,
            note_area,
            notes_len,
            vmcoreinfo,
            sub_hdr_blocks,
            bitmap_off,
            bitmap_len,
            desc_base,
            utsname,
            timestamp,
            status_kept,
            counters,
            nr_cpus: meta.nr_cpus as i32,
            current_cpu: meta.current_cpu.unwrap_or(0),
            phys_base,
            dump_level,
            eraseinfo: carried.eraseinfo,
        })
    }

    /// Header block, sub-header and note area of one file.
    fn header(&self, opts: &WriteOptions, split: Option<(u64, u64)>, lost: bool, eraseinfo_at: u64) -> Vec<u8> {
        let e = self.endian;
        let (m, s) = (&self.main, &self.sub);
        let bs = self.bs as usize;
        let mut h = vec![0u8; bs + s.size + self.note_area.len()];
        h[..8].copy_from_slice(SIGNATURE_KDUMP);
        put_u32(&mut h, header64::HEADER_VERSION, 6, e);
        for (i, field) in self.utsname.iter().enumerate() {
            let at = header64::UTSNAME + i * header64::UTSNAME_FIELD_LEN;
            let n = field.len().min(header64::UTSNAME_FIELD_LEN - 1);
            h[at..at + n].copy_from_slice(&field.as_bytes()[..n]);
        }
        let (sec, usec) = self.timestamp;
        if m.timeval_bits == 32 {
            put_u32(&mut h, m.timestamp_sec, sec as u32, e);
            put_u32(&mut h, m.timestamp_usec, usec as u32, e);
        } else {
            put_u64(&mut h, m.timestamp_sec, sec as u64, e);
            put_u64(&mut h, m.timestamp_usec, usec as u64, e);
        }
        let compressed = match opts.compression {
            Compression::None => 0,
            Compression::Zlib => status::COMPRESSED_ZLIB,
            Compression::Lzo => status::COMPRESSED_LZO,
            Compression::Snappy => status::COMPRESSED_SNAPPY,
            Compression::Zstd => status::COMPRESSED_ZSTD,
        };
        let incomplete = if lost { status::INCOMPLETE } else { 0 };
        put_u32(&mut h, m.status, compressed | self.status_kept | incomplete, e);
        put_u32(&mut h, m.block_size, self.bs as u32, e);
        put_u32(&mut h, m.sub_hdr_size, self.sub_hdr_blocks as u32, e);
        put_u32(&mut h, m.bitmap_blocks, (2 * self.bitmap_len / self.bs) as u32, e);
        put_u32(&mut h, m.max_mapnr, self.max_pfn.min(u32::MAX as u64) as u32, e);
        put_u32(&mut h, m.total_ram_blocks, self.counters[0], e);
        put_u32(&mut h, m.device_blocks, self.counters[1], e);
        put_u32(&mut h, m.written_blocks, self.counters[2], e);
        put_u32(&mut h, m.current_cpu, self.current_cpu, e);
        put_u32(&mut h, m.nr_cpus, self.nr_cpus as u32, e);

        let sh = &mut h[bs..];
        put_long(sh, s.phys_base, self.phys_base, s, e);
        put_u32(sh, s.dump_level, self.dump_level as u32, e);
        if let Some((start, end)) = split {
            put_u32(sh, s.split, 1, e);
            put_long(sh, s.start_pfn, start, s, e);
            put_long(sh, s.end_pfn, end, s, e);
            put_u64(sh, s.start_pfn_64, start, e);
            put_u64(sh, s.end_pfn_64, end, e);
        }
        let area = self.bs + s.size as u64;
        if let Some((at, size)) = self.vmcoreinfo {
            put_u64(sh, s.offset_vmcoreinfo, area + at, e);
            put_long(sh, s.size_vmcoreinfo, size, s, e);
        }
        if self.notes_len > 0 {
            put_u64(sh, s.offset_note, area, e);
            put_long(sh, s.size_note, self.notes_len, s, e);
        }
        if !self.eraseinfo.is_empty() {
            put_u64(sh, s.offset_eraseinfo, eraseinfo_at, e);
            put_long(sh, s.size_eraseinfo, self.eraseinfo.len() as u64, s, e);
        }
        put_u64(sh, s.max_mapnr_64, self.max_pfn, e);
        sh[s.size..].copy_from_slice(&self.note_area);
        h
    }
}

/// The running kernel's `init_uts_ns.name` (x86_64: kernel-image address to physical through
/// phys_base), when VMCOREINFO gives its place and it reads as a Linux utsname.
fn utsname_from_memory(dump: &Dump) -> Option<[String; 6]> {
    const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
    if dump.metadata().arch != crate::Arch::X86_64 {
        return None;
    }
    let vi = dump.vmcoreinfo()?;
    let va = vi.symbol("init_uts_ns")?.checked_add(vi.offset("uts_namespace.name")?)?;
    let pa = va.checked_sub(START_KERNEL_MAP)?.wrapping_add(vi.phys_base()? as u64);
    let mut raw = [0u8; 6 * header64::UTSNAME_FIELD_LEN];
    dump.read_phys(pa, &mut raw).ok()?;
    let fields: Vec<String> = raw.chunks(header64::UTSNAME_FIELD_LEN).map(crate::raw::c_string).collect();
    (fields[0] == "Linux" && fields[4] == "x86_64").then(|| fields.try_into().ok()).flatten()
}

/// Bitmaps of PFNs `[from, from + CHUNK_PFNS)`.
fn chunk_bitmaps(dump: &Dump, from: u64, max_pfn: u64) -> (Vec<u8>, Vec<u8>) {
    let to = (from + CHUNK_PFNS).min(max_pfn);
    let len = (to - from).div_ceil(8) as usize;
    let (mut ram, mut dumped) = (vec![0u8; len], vec![0u8; len]);
    dump.fill_bitmaps(from, to, &mut ram, &mut dumped);
    (ram, dumped)
}

/// The PFN of the `n`-th (from 0) dumped page.
fn nth_dumped(dump: &Dump, counts: &[u64], n: u64, max_pfn: u64) -> u64 {
    let mut before = 0;
    for (c, &count) in counts.iter().enumerate() {
        if before + count > n {
            let from = c as u64 * CHUNK_PFNS;
            let (_, dumped) = chunk_bitmaps(dump, from, max_pfn);
            let mut left = n - before;
            for (i, &byte) in dumped.iter().enumerate() {
                let ones = byte.count_ones() as u64;
                if left < ones {
                    let mut b = byte;
                    for _ in 0..left {
                        b &= b - 1;
                    }
                    return from + i as u64 * 8 + b.trailing_zeros() as u64;
                }
                left -= ones;
            }
        }
        before += count;
    }
    max_pfn
}

fn write_to(
    dump: &Dump,
    sinks: &mut [Sink],
    opts: &WriteOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<WriteStats, WriteError> {
    let nfiles = sinks.len();
    if nfiles == 0 {
        return Err(WriteError::new(WriteErrorKind::BadRequest("no output file")));
    }
    if nfiles > MAX_SPLIT {
        return Err(WriteError::new(WriteErrorKind::BadRequest("at most 256 files")));
    }
    let plan = Plan::new(dump, opts)?;
    let max_pfn = plan.max_pfn;

    // Pass 1: the bitmaps (the same in every file) and how many pages each chunk has.
    let mut counts = Vec::new();
    let mut from = 0;
    while from < max_pfn {
        let (ram, dumped) = chunk_bitmaps(dump, from, max_pfn);
        let at = from / 8;
        for (i, sink) in sinks.iter_mut().enumerate() {
            let ram_at = plan.bitmap_off + at;
            sink.put(ram_at, &ram).map_err(WriteError::io(i, Some(ram_at)))?;
            let dumped_at = plan.bitmap_off + plan.bitmap_len + at;
            sink.put(dumped_at, &dumped).map_err(WriteError::io(i, Some(dumped_at)))?;
        }
        counts.push(popcount(&dumped));
        from += CHUNK_PFNS;
    }
    let total: u64 = counts.iter().sum();
    if nfiles > 1 && total < nfiles as u64 {
        return Err(WriteError::new(WriteErrorKind::BadRequest("more split files than dumped pages")));
    }
    // Split points: each file gets an equal share of the dumped pages.
    let goals: Vec<u64> = (0..=nfiles as u64).map(|k| total * k / nfiles as u64).collect();
    let bounds: Vec<u64> = (0..=nfiles)
        .map(|k| match k {
            0 => 0,
            k if k == nfiles => max_pfn,
            k => nth_dumped(dump, &counts, goals[k], max_pfn),
        })
        .collect();

    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(64);
    let mut encoders = Vec::with_capacity(threads);
    for _ in 0..threads {
        encoders.push(Encoder::new(opts.compression).map_err(|e| WriteError {
            kind: WriteErrorKind::Io(e.kind()),
            file: None,
            offset: None,
        })?);
    }
    let mut stats = WriteStats::default();
    let mut done = 0u64;
    let bs = plan.bs as usize;
    for (fi, sink) in sinks.iter_mut().enumerate() {
        let (start, end) = (bounds[fi], bounds[fi + 1]);
        let ndesc = goals[fi + 1] - goals[fi];
        let data_base = plan.desc_base + ndesc * page_desc::LEN as u64;
        let zero_off = opts.exclude_zero.then_some(data_base);
        let mut descs = Buffered::new(plan.desc_base);
        let mut data = Buffered::new(data_base + if opts.exclude_zero { plan.bs } else { 0 });
        let mut file_lost = false;
        let mut file_pages = 0u64;
        let mut batch: Vec<u64> = Vec::with_capacity(threads * (BATCH_BYTES_PER_THREAD / bs).max(1));
        let mut process = |batch: &mut Vec<u64>, sink: &mut Sink| -> Result<(), WriteError> {
            let encoded = encode_batch(dump, batch, &mut encoders, bs, opts.exclude_zero)?;
            for part in &encoded {
                let mut data_at = 0usize;
                for &stored in &part.pages {
                    let mut d = [0u8; page_desc::LEN];
                    match stored {
                        Stored::Data { flags, len } => {
                            put_u64(&mut d, page_desc::OFFSET, data.at + data.buf.len() as u64, plan.endian);
                            put_u32(&mut d, page_desc::SIZE, len, plan.endian);
                            put_u32(&mut d, page_desc::FLAGS, flags, plan.endian);
                            data.push(sink, &part.data[data_at..data_at + len as usize], fi)?;
                            data_at += len as usize;
                            if flags == 0 && opts.compression != Compression::None {
                                stats.stored_raw += 1;
                            }
                        }
                        Stored::Zero => {
                            put_u64(&mut d, page_desc::OFFSET, zero_off.unwrap_or(0), plan.endian);
                            put_u32(&mut d, page_desc::SIZE, plan.bs as u32, plan.endian);
                            stats.zero_pages += 1;
                        }
                        Stored::Lost => {
                            file_lost = true;
                            stats.lost_pages += 1;
                        }
                    }
                    descs.push(sink, &d, fi)?;
                }
            }
            file_pages += batch.len() as u64;
            done += batch.len() as u64;
            batch.clear();
            progress(Progress { pages_done: done, pages_total: total, bytes_written: stats.bytes + data.at });
            Ok(())
        };
        let mut chunk_from = start / CHUNK_PFNS * CHUNK_PFNS;
        while chunk_from < end {
            let (_, dumped) = chunk_bitmaps(dump, chunk_from, max_pfn);
            let lo = start.max(chunk_from);
            let hi = end.min(chunk_from + CHUNK_PFNS).min(max_pfn);
            let mut pfn = lo;
            while pfn < hi {
                let rel = pfn - chunk_from;
                let byte = dumped[(rel / 8) as usize];
                if byte == 0 && rel.is_multiple_of(8) {
                    pfn += 8;
                    continue;
                }
                if byte >> (rel % 8) & 1 == 1 {
                    batch.push(pfn);
                    if batch.len() == batch.capacity() {
                        process(&mut batch, sink)?;
                    }
                }
                pfn += 1;
            }
            chunk_from += CHUNK_PFNS;
        }
        if !batch.is_empty() {
            process(&mut batch, sink)?;
        }
        descs.flush(sink, fi)?;
        data.flush(sink, fi)?;
        if file_pages != ndesc {
            // The bitmaps changed between passes: only possible if the input file did.
            return Err(WriteError {
                file: Some(fi as u32),
                ..WriteError::new(WriteErrorKind::BadRequest("input changed while being read"))
            });
        }
        let eraseinfo_at = data.at;
        sink.put(eraseinfo_at, &plan.eraseinfo).map_err(WriteError::io(fi, Some(eraseinfo_at)))?;
        let len = eraseinfo_at + plan.eraseinfo.len() as u64;
        let split = (nfiles > 1).then_some((start, end));
        let header = plan.header(opts, split, file_lost, eraseinfo_at);
        sink.put(0, &header).map_err(WriteError::io(fi, Some(0)))?;
        sink.set_len(len).map_err(WriteError::io(fi, Some(len)))?;
        stats.files.push(FileStats { start_pfn: start, end_pfn: end, pages: ndesc, bytes: len });
        stats.pages += ndesc;
        stats.bytes += len;
    }
    Ok(stats)
}

/// Decodes and compresses `pfns` on `encoders.len()` threads; the parts come back in order.
fn encode_batch(
    dump: &Dump,
    pfns: &[u64],
    encoders: &mut [Encoder],
    bs: usize,
    exclude_zero: bool,
) -> Result<Vec<Encoded>, WriteError> {
    let per = pfns.len().div_ceil(encoders.len()).max(1);
    let work = |pfns: &[u64], enc: &mut Encoder| -> Result<Encoded, WriteError> {
        let mut out = Encoded { pages: Vec::with_capacity(pfns.len()), data: Vec::with_capacity(pfns.len() * bs / 2) };
        let mut page = vec![0u8; bs];
        let mut scratch = Vec::with_capacity(2 * bs);
        for &pfn in pfns {
            let read =
                dump.read_page_for_copy(pfn, &mut page).map_err(|e| WriteError::new(WriteErrorKind::Input(e)))?;
            if matches!(read, CopyRead::Lost) {
                out.pages.push(Stored::Lost);
                continue;
            }
            if exclude_zero && page.iter().all(|&b| b == 0) {
                out.pages.push(Stored::Zero);
                continue;
            }
            match enc.encode(&page, &mut scratch) {
                Some(flags) => {
                    out.data.extend_from_slice(&scratch);
                    out.pages.push(Stored::Data { flags, len: scratch.len() as u32 });
                }
                None => {
                    out.data.extend_from_slice(&page);
                    out.pages.push(Stored::Data { flags: 0, len: bs as u32 });
                }
            }
        }
        Ok(out)
    };
    if encoders.len() == 1 || pfns.len() <= 32 {
        return Ok(vec![work(pfns, &mut encoders[0])?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            pfns.chunks(per).zip(encoders.iter_mut()).map(|(p, enc)| scope.spawn(move || work(p, enc))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}
