//! A vmlinux with DWARF debuginfo (`/usr/lib/debug/boot/vmlinux-*`), for kernels whose dump
//! alone is not enough: no BTF, or no kallsyms in VMCOREINFO (before 6.0).
//!
//! [`Vmlinux`] maps the ELF file read-only and gives:
//! - its identity: the GNU build id note and the `linux_banner` string, so a vmlinux of another
//!   build is refused ([`Vmlinux::check_against`]);
//! - its link-time symbol table with `nm` type letters ([`Vmlinux::symbols`]);
//! - its DWARF types **converted into a BTF blob** ([`Vmlinux::to_btf`]), the way `pahole -J`
//!   does, so [`crate::btf::Btf`] and everything built on it work unchanged. Unlike the kernel's
//!   own BTF, the result also describes every global variable that has a fixed address (VAR
//!   entries listed in one DATASEC per ELF section), not only the per-CPU ones.
//!
//! The conversion ([`parse`](self) per compile unit in parallel, then [`dedup`](self)) reads each
//! unit's top-level DIEs, follows type references on demand (also into other units, for
//! `DW_FORM_ref_addr`), and merges identical types across units by a structural key in which
//! references to named structs, unions and enums count by name, which breaks every cycle C
//! allows. Nothing is cached on disk. Facts about DWARF come from the DWARF 5 standard, about
//! BTF from the kernel's `Documentation/bpf/btf.rst`.

pub mod cfi;
mod dedup;
pub mod lines;
mod parse;

use crate::btf::Btf;
use object::{Object, ObjectSection, ObjectSymbol};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a vmlinux cannot be used.
#[derive(Debug)]
pub struct DwarfError {
    /// The file at fault.
    pub path: PathBuf,
    pub kind: DwarfErrorKind,
}

#[derive(Debug)]
pub enum DwarfErrorKind {
    /// The file cannot be opened or mapped.
    Io(std::io::Error),
    /// The file is not an ELF file (or its headers are broken).
    NotElf(String),
    /// The ELF file has no `.debug_info` (a stripped vmlinux, or a bzImage's).
    NoDwarf,
    /// A section lies (partly) outside the file or cannot be decompressed.
    Section { name: String, detail: String },
    /// Malformed DWARF at this `.debug_info` offset.
    Dwarf { offset: u64, detail: String },
    /// The vmlinux is not the build of the kernel in the dump: what each says.
    WrongKernel { vmlinux: String, dump: String },
    /// The converted types do not form valid BTF (a bug: the message says where).
    Btf(String),
}

impl DwarfError {
    fn new(path: &Path, kind: DwarfErrorKind) -> DwarfError {
        DwarfError { path: path.to_path_buf(), kind }
    }
}

impl fmt::Display for DwarfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            DwarfErrorKind::Io(e) => write!(f, "{p}: {e}"),
            DwarfErrorKind::NotElf(e) => write!(f, "{p}: not an ELF vmlinux: {e}"),
            DwarfErrorKind::NoDwarf => write!(
                f,
                "{p}: no DWARF debuginfo (.debug_info is missing or empty): give the vmlinux of the debug package (/usr/lib/debug/boot/vmlinux-*)"
            ),
            DwarfErrorKind::Section { name, detail } => write!(f, "{p}: section {name}: {detail}"),
            DwarfErrorKind::Dwarf { offset, detail } => {
                write!(f, "{p}: bad DWARF at .debug_info offset {offset:#x}: {detail}")
            }
            DwarfErrorKind::WrongKernel { vmlinux, dump } => {
                write!(f, "{p} is not the kernel of this dump: the vmlinux has {vmlinux}, the dump's kernel has {dump}")
            }
            DwarfErrorKind::Btf(e) => write!(f, "{p}: the types converted from DWARF are not valid BTF: {e}"),
        }
    }
}

impl std::error::Error for DwarfError {}

/// One symbol of a symbol table: link-time (or run-time) address, `nm` type letter, name.
pub type SymbolEntry = (u64, char, String);

/// What a conversion did, for messages and measurements.
#[derive(Clone, Debug, Default)]
pub struct ConvertStats {
    /// Compile (and partial) units read.
    pub units: usize,
    /// Type DIEs read, all units together (before merging).
    pub type_dies: usize,
    /// BTF types written (VAR and DATASEC included).
    pub btf_types: usize,
    /// Global variables described.
    pub vars: usize,
    /// Size of the BTF blob.
    pub btf_bytes: usize,
    /// Type references that could not be followed (type units, unknown forms): read as `void`.
    pub unresolved_refs: usize,
    /// Reading the units (in parallel), of `elapsed`; the rest is merging and writing.
    pub read_time: Duration,
    pub elapsed: Duration,
}

/// An ELF vmlinux, mapped read-only.
pub struct Vmlinux {
    path: PathBuf,
    map: memmap2::Mmap,
}

impl fmt::Debug for Vmlinux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vmlinux").field("path", &self.path).field("bytes", &self.map.len()).finish()
    }
}

impl Vmlinux {
    /// Maps the file and checks that it is ELF.
    pub fn open(path: impl AsRef<Path>) -> Result<Vmlinux, DwarfError> {
        let path = path.as_ref();
        let io = |e| DwarfError::new(path, DwarfErrorKind::Io(e));
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only and private; a file truncated by someone else while
        // mapped is the one case that can fault, as with any reader of a mapped file.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let vm = Vmlinux { path: path.to_path_buf(), map };
        vm.elf()?;
        Ok(vm)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, kind: DwarfErrorKind) -> DwarfError {
        DwarfError::new(&self.path, kind)
    }

    fn elf(&self) -> Result<object::File<'_>, DwarfError> {
        let f = object::File::parse(&*self.map).map_err(|e| self.err(DwarfErrorKind::NotElf(e.to_string())))?;
        if f.format() != object::BinaryFormat::Elf {
            return Err(self.err(DwarfErrorKind::NotElf(format!("a {:?} file", f.format()))));
        }
        Ok(f)
    }

    /// The GNU build id (`NT_GNU_BUILD_ID` note), as VMCOREINFO's `BUILD-ID` spells it.
    pub fn build_id(&self) -> Option<String> {
        let f = self.elf().ok()?;
        let id = f.build_id().ok()??;
        Some(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether the file has DWARF type information.
    pub fn has_dwarf(&self) -> bool {
        self.elf().ok().and_then(|f| f.section_by_name(".debug_info").map(|s| s.size() > 0)).unwrap_or(false)
    }

    /// Link-time address of a symbol (a global one preferred).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        let f = self.elf().ok()?;
        let mut found = None;
        for s in f.symbols() {
            if s.name_bytes().ok() == Some(name.as_bytes()) && !s.is_undefined() {
                if s.is_global() {
                    return Some(s.address());
                }
                found.get_or_insert(s.address());
            }
        }
        found
    }

    /// The bytes at a link-time address of an allocated section (None where the file has none).
    pub fn read_at(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let f = self.elf().ok()?;
        let s = f.sections().find(|s| {
            s.address() <= address
                && address - s.address() < s.size()
                && s.kind() != object::SectionKind::UninitializedData
                && matches!(s.flags(), object::SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0)
        })?;
        let data = s.data().ok()?;
        let at = (address - s.address()) as usize;
        Some(data.get(at..)?.iter().take(len).copied().collect())
    }

    /// The `linux_banner` string ("Linux version 6.1.0-... (...) #1 SMP ..."), without its NUL.
    pub fn banner(&self) -> Option<Vec<u8>> {
        let mut b = self.read_at(self.symbol("linux_banner")?, 1024)?;
        let end = b.iter().position(|&c| c == 0)?;
        b.truncate(end);
        Some(b)
    }

    /// The ELF symbol table at link-time addresses, with `nm` type letters (T t D d B b R r
    /// A W V). Section, file and undefined symbols are left out. Empty for a stripped file.
    pub fn symbols(&self) -> Result<Vec<SymbolEntry>, DwarfError> {
        use object::{SectionKind, SymbolKind, SymbolSection};
        let f = self.elf()?;
        // The `nm` letter of each section, by section index.
        let mut letters = Vec::new();
        for s in f.sections() {
            let flags = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            let c = match s.kind() {
                _ if flags & u64::from(object::elf::SHF_ALLOC) == 0 => 'n',
                SectionKind::Text => 't',
                SectionKind::UninitializedData | SectionKind::UninitializedTls => 'b',
                _ if flags & u64::from(object::elf::SHF_EXECINSTR) != 0 => 't',
                _ if flags & u64::from(object::elf::SHF_WRITE) != 0 => 'd',
                _ => 'r',
            };
            let i = s.index().0;
            if letters.len() <= i {
                letters.resize(i + 1, 'n');
            }
            letters[i] = c;
        }
        let mut out = Vec::new();
        for s in f.symbols() {
            if matches!(s.kind(), SymbolKind::Section | SymbolKind::File) {
                continue;
            }
            let Ok(name) = s.name_bytes() else { continue };
            if name.is_empty() {
                continue;
            }
            let mut c = match s.section() {
                SymbolSection::Absolute => 'a',
                SymbolSection::Common => 'c',
                SymbolSection::Section(i) => match letters.get(i.0) {
                    Some('n') | None => continue,
                    Some(&c) => c,
                },
                _ => continue,
            };
            if s.is_weak() {
                c = if s.kind() == SymbolKind::Data { 'v' } else { 'w' };
            }
            if s.is_global() || s.is_weak() {
                c = c.to_ascii_uppercase();
            }
            out.push((s.address(), c, String::from_utf8_lossy(name).into_owned()));
        }
        Ok(out)
    }

    /// Checks that this vmlinux is the build of the dump's kernel: the build ids when both are
    /// known (VMCOREINFO's `BUILD-ID`, since 5.9); else `_stext` must land at VMCOREINFO's
    /// `SYMBOL(_stext)` after the KASLR shift, and `linux_banner` must hold the same bytes in
    /// the dump (`read` reads it at a run-time address) or, where the dump lacks that page,
    /// name VMCOREINFO's release. A file with none of these facts is accepted.
    pub fn check_against(
        &self,
        info: &lockscope_dump::VmcoreInfo,
        read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Result<(), DwarfError> {
        let wrong = |vmlinux: String, dump: String| Err(self.err(DwarfErrorKind::WrongKernel { vmlinux, dump }));
        if let (Some(ours), Some(theirs)) = (self.build_id(), info.build_id()) {
            let theirs = theirs.trim();
            if !ours.eq_ignore_ascii_case(theirs) {
                return wrong(format!("build id {ours}"), format!("BUILD-ID {theirs}"));
            }
            return Ok(());
        }
        let shift = crate::sysmap::kaslr_offset(self.symbol("_stext"), info)
            .map_err(|e| self.err(DwarfErrorKind::WrongKernel { vmlinux: e.0, dump: e.1 }))?;
        if let Some(banner) = self.banner() {
            let at = self.symbol("linux_banner").unwrap_or(0).wrapping_add(shift);
            let shown = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
            match read(at, banner.len()) {
                Some(in_dump) if in_dump == banner => return Ok(()),
                Some(in_dump) => {
                    return wrong(format!("banner \"{}\"", shown(&banner)), format!("banner \"{}\"", shown(&in_dump)));
                }
                None => {
                    if let Some(rel) = info.osrelease() {
                        let want = format!("Linux version {rel} ");
                        if !banner.starts_with(want.as_bytes()) {
                            return wrong(format!("banner \"{}\"", shown(&banner)), format!("release {rel}"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Converts the DWARF types and global variables into a BTF blob that
    /// [`Btf::parse`] loads. Seconds for a distribution kernel (all cores are used).
    pub fn to_btf(&self) -> Result<(Vec<u8>, ConvertStats), DwarfError> {
        let t0 = Instant::now();
        let f = self.elf()?;
        let sections = self.dwarf_sections(&f)?;
        let little = f.is_little_endian();
        let alloc_sections: Vec<dedup::ElfSection<'_>> = f
            .sections()
            .filter(|s| matches!(s.flags(), object::SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0))
            .filter_map(|s| Some(dedup::ElfSection { name: s.name().ok()?, address: s.address(), size: s.size() }))
            .filter(|s| s.size > 0)
            .collect();
        let units = parse::Units::open(&sections, little)
            .map_err(|(offset, detail)| self.err(DwarfErrorKind::Dwarf { offset, detail }))?;
        let mut stats = ConvertStats::default();
        let blob = dedup::build(&units, &alloc_sections, &mut stats).map_err(|e| match e {
            dedup::Failure::Dwarf(offset, detail) => self.err(DwarfErrorKind::Dwarf { offset, detail }),
            dedup::Failure::Btf(e) => self.err(DwarfErrorKind::Btf(e)),
        })?;
        stats.btf_bytes = blob.len();
        stats.elapsed = t0.elapsed();
        Ok((blob, stats))
    }

    /// [`Vmlinux::to_btf`], loaded.
    pub fn btf(&self) -> Result<Btf<'static>, DwarfError> {
        let (blob, _) = self.to_btf()?;
        Btf::parse(blob).map_err(|e| self.err(DwarfErrorKind::Btf(e.to_string())))
    }

    /// The DWARF sections (decompressed where needed), by gimli's section names.
    fn dwarf_sections<'d>(&'d self, f: &object::File<'d>) -> Result<parse::Sections<'d>, DwarfError> {
        let mut out = parse::Sections::default();
        for id in parse::SECTIONS {
            let name = id.name();
            let zname = name.replacen(".debug_", ".zdebug_", 1);
            let Some(s) = f.section_by_name(name).or_else(|| f.section_by_name(&zname)) else { continue };
            let data: Cow<'d, [u8]> = s.uncompressed_data().map_err(|e| {
                let (off, size) = s.file_range().unwrap_or((0, 0));
                self.err(DwarfErrorKind::Section {
                    name: name.to_string(),
                    detail: format!("{e} (file offset {off:#x}, {size:#x} bytes, file is {:#x} bytes)", self.map.len()),
                })
            })?;
            out.insert(id, data);
        }
        if out.get(gimli::SectionId::DebugInfo).is_empty() {
            return Err(self.err(DwarfErrorKind::NoDwarf));
        }
        Ok(out)
    }
}
