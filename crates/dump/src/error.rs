//! Small, copyable errors. Each names where in the file the problem is, so a user can look
//! with a hex editor, and none carries an allocation.

use std::fmt;

/// Why a dump cannot be opened at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpError {
    pub kind: DumpErrorKind,
    /// File offset of the offending field or structure (0 when it is about the whole file).
    pub offset: u64,
    /// Which file, as an index into the list given to `Dump::open_many` (`None` for one file).
    pub file: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpErrorKind {
    /// Opening or mapping the file failed.
    Io(std::io::ErrorKind),
    /// The path is not a regular file ("a directory", "a FIFO (named pipe)", …): refused
    /// before opening, so a FIFO cannot block and a device cannot be mapped.
    NotAFile(&'static str),
    /// Neither ELF, kdump-compressed nor flattened.
    UnknownFormat,
    /// The file ends before a structure its headers promise.
    Truncated,
    /// A header field has a value no writer produces (the field is at `offset`).
    BadHeader(&'static str),
    /// A valid dump of a kind this reader does not handle yet.
    Unsupported(&'static str),
    /// The ELF parser refused the file.
    BadElf(&'static str),
    /// Files given together (`Dump::open_many`) are not the parts of one split dump.
    SplitSet(&'static str),
    /// The dumpable bitmap (at `offset`) does not count the page descriptors the file holds:
    /// its set bits put the page data at `expected`, the descriptors say it starts at `found`.
    /// Every page after the damage would read another page's data, so the file is refused.
    BitmapMismatch { set_bits: u64, expected: u64, found: u64, block_size: u32 },
}

impl DumpError {
    pub(crate) fn new(kind: DumpErrorKind, offset: u64) -> Self {
        DumpError { kind, offset, file: None }
    }
    /// The same error, blamed on file `index` of a set.
    pub(crate) fn in_file(self, index: usize) -> Self {
        DumpError { file: Some(index as u32), ..self }
    }
    pub(crate) fn truncated(offset: u64) -> Self {
        DumpError::new(DumpErrorKind::Truncated, offset)
    }
    pub(crate) fn bad(what: &'static str, offset: u64) -> Self {
        DumpError::new(DumpErrorKind::BadHeader(what), offset)
    }
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.file {
            write!(f, "file {} of the set: ", i + 1)?;
        }
        match self.kind {
            DumpErrorKind::Io(std::io::ErrorKind::NotFound) => f.write_str("no such file"),
            DumpErrorKind::Io(std::io::ErrorKind::PermissionDenied) => f.write_str("permission denied"),
            DumpErrorKind::Io(k) => write!(f, "cannot read the file: {k}"),
            DumpErrorKind::NotAFile(what) => write!(f, "it is {what}, not a regular file"),
            DumpErrorKind::UnknownFormat => {
                f.write_str("not a vmcore (neither ELF core, kdump-compressed nor flattened)")
            }
            DumpErrorKind::Truncated => write!(f, "file truncated: data expected at offset {:#x}", self.offset),
            DumpErrorKind::BadHeader(what) => write!(f, "bad header at offset {:#x}: {what}", self.offset),
            DumpErrorKind::Unsupported(what) => write!(f, "unsupported dump (offset {:#x}): {what}", self.offset),
            DumpErrorKind::BadElf(what) => write!(f, "bad ELF core at offset {:#x}: {what}", self.offset),
            DumpErrorKind::SplitSet(what) => write!(f, "not parts of one split dump: {what}"),
            DumpErrorKind::BitmapMismatch { set_bits, expected, found, block_size } => {
                write!(
                    f,
                    "dumpable bitmap at offset {:#x} does not match the page descriptors: its {set_bits} set bits \
                     put the page data at offset {expected:#x}, but the descriptors' data starts at {found:#x}",
                    self.offset
                )?;
                match bitmap_shift(expected, found, block_size) {
                    Some(n) if n > 0 => write!(f, " (the bitmap counts {n} page(s) fewer than there are descriptors)"),
                    Some(n) => write!(f, " (the bitmap counts {} page(s) more than there are descriptors)", -n),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for DumpError {}

/// How many descriptors the bitmap miscounts, when the data start it implies is off by whole
/// descriptors from where the data really begins (or from the page after a shared zero page).
fn bitmap_shift(expected: u64, found: u64, block_size: u32) -> Option<i64> {
    let desc = crate::raw::kdump::page_desc::LEN as i64;
    let diff = found as i64 - expected as i64;
    [diff, diff - block_size as i64].into_iter().find(|d| d % desc == 0).map(|d| d / desc)
}

/// Why some physical memory cannot be read. Holes and filtered pages are ordinary in a
/// filtered dump; the caller decides whether zeros will do (see `Dump::read_phys_zero_filled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub kind: ReadErrorKind,
    /// The first physical address that could not be read.
    pub paddr: u64,
    /// File offset involved (page descriptor or page data), when there is one.
    pub offset: Option<u64>,
    /// Which file of a split dump opened with `Dump::open_many` (index into its list).
    pub file: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// No RAM there: the machine had none, or the dump does not describe it.
    Hole,
    /// RAM that the dump left out on purpose (makedumpfile's dump level: zero, cache, user,
    /// free pages), or the excluded tail of an ELF segment.
    Filtered,
    /// Promised by the dump but missing from the file (an incomplete or truncated dump).
    Lost,
    /// Present but undecodable: compressed data that does not inflate to exactly one page.
    Corrupt,
    /// The page descriptor (at `offset`) cannot be right: its data would lie before the page
    /// data area, past where the file's data ends, or is not one page's worth.
    BadDescriptor,
    /// The page's data (or its descriptor) lies beyond the end of a file cut short: the file
    /// is `file_size` bytes. Not filtering: the writer put the page there.
    Truncated { file_size: u64 },
    /// Compressed with a method this build cannot decode.
    UnsupportedCompression,
    /// Dumped into another file of a split dump, which was not given.
    InOtherFile,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ReadErrorKind::Truncated { file_size } = self.kind {
            write!(
                f,
                "physical address {:#x}: beyond the end of the truncated file (file is {file_size} bytes",
                self.paddr
            )?;
            if let Some(i) = self.file {
                write!(f, ", file {} of the set", i + 1)?;
            }
            return match self.offset {
                Some(o) => write!(f, ", page data at offset {o:#x})"),
                None => f.write_str(")"),
            };
        }
        if let (ReadErrorKind::BadDescriptor, Some(o)) = (self.kind, self.offset) {
            write!(f, "physical address {:#x}: corrupt page descriptor at file offset {o:#x}", self.paddr)?;
            return match self.file {
                Some(i) => write!(f, " (file {} of the set)", i + 1),
                None => Ok(()),
            };
        }
        let what = match self.kind {
            ReadErrorKind::Hole => "not in the dump (no RAM there)",
            ReadErrorKind::Filtered => "filtered out of the dump",
            ReadErrorKind::Lost => "missing from the file (incomplete dump)",
            ReadErrorKind::Corrupt => "corrupt page data",
            ReadErrorKind::BadDescriptor => "corrupt page descriptor",
            ReadErrorKind::Truncated { .. } => "beyond the end of the truncated file",
            ReadErrorKind::UnsupportedCompression => "compressed with an unsupported method",
            ReadErrorKind::InOtherFile => "in another file of the split dump (not opened)",
        };
        write!(f, "physical address {:#x}: {what}", self.paddr)?;
        match (self.file, self.offset) {
            (Some(i), Some(o)) => write!(f, " (file {} of the set, offset {o:#x})", i + 1)?,
            (Some(i), None) => write!(f, " (file {} of the set)", i + 1)?,
            (None, Some(o)) => write!(f, " (file offset {o:#x})")?,
            (None, None) => {}
        }
        Ok(())
    }
}

impl std::error::Error for ReadError {}
