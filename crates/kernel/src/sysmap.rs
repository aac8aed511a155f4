//! Symbol tables from outside the dump: a `System.map` (the `nm -n vmlinux` listing installed
//! beside the kernel) and the link-time to run-time shift they need.
//!
//! Link-time addresses move by VMCOREINFO's `KERNELOFFSET` under KASLR. Per-CPU symbols of
//! x86_64 kernels before 6.15 are zero-based offsets into `.data..percpu`, which KASLR does not
//! move: like the in-memory kallsyms decoder (its absolute-per-CPU scheme), only addresses in
//! the kernel half (top bit set) are shifted. Absolute symbols with small values (`__crc_*`,
//! sizes) are not addresses and are left out, as kallsyms leaves them out.

use crate::dwarf::SymbolEntry;
use lockscope_dump::VmcoreInfo;
use std::fmt;
use std::path::{Path, PathBuf};

/// Addresses at and above this are kernel addresses (moved by KASLR).
const KERNEL_HALF: u64 = 0x8000_0000_0000_0000;

/// Why a System.map cannot be read.
#[derive(Debug)]
pub struct SysmapError {
    pub path: PathBuf,
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    pub detail: String,
}

impl fmt::Display for SysmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.detail)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.detail)
        }
    }
}

impl std::error::Error for SysmapError {}

/// Reads a System.map file.
pub fn load(path: impl AsRef<Path>) -> Result<Vec<SymbolEntry>, SysmapError> {
    let path = path.as_ref();
    let text =
        std::fs::read(path).map_err(|e| SysmapError { path: path.to_path_buf(), line: 0, detail: e.to_string() })?;
    parse(&text, path)
}

/// Parses `ADDRESS TYPE NAME` lines (`ffffffff81000000 T _text`; a trailing `[module]` is
/// ignored, blank lines are skipped). `path` is for messages.
pub fn parse(text: &[u8], path: &Path) -> Result<Vec<SymbolEntry>, SysmapError> {
    let err = |line: usize, detail: String| SysmapError { path: path.to_path_buf(), line, detail };
    let mut out = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_ascii_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (f.next(), f.next(), f.next()) else {
            return Err(err(i + 1, format!("expected \"ADDRESS TYPE NAME\", found {line:?}")));
        };
        let addr = u64::from_str_radix(addr, 16).map_err(|_| err(i + 1, format!("bad address {addr:?}")))?;
        let mut k = kind.chars();
        let (Some(kind), None) = (k.next(), k.next()) else {
            return Err(err(i + 1, format!("bad symbol type {kind:?}")));
        };
        if !kind.is_ascii_alphabetic() && kind != '?' {
            return Err(err(i + 1, format!("bad symbol type {kind:?}")));
        }
        out.push((addr, kind, name.to_string()));
    }
    if out.is_empty() {
        return Err(err(0, "no symbols: not a System.map".into()));
    }
    Ok(out)
}

/// `_stext` does not land where VMCOREINFO says: the table is of another build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StextMismatch {
    pub link: u64,
    pub shift: u64,
    pub dump: u64,
}

impl StextMismatch {
    /// (what the table says, what the dump says), for a "wrong kernel" message.
    pub fn describe(&self) -> (String, String) {
        (
            format!("_stext at {:#x} + KASLR {:#x} = {:#x}", self.link, self.shift, self.link.wrapping_add(self.shift)),
            format!("SYMBOL(_stext)={:#x}", self.dump),
        )
    }
}

/// The KASLR shift: `KERNELOFFSET` (else `SYMBOL(_stext)` minus the link-time `_stext`, else
/// 0), checked against `_stext` when both sides know it.
pub fn kaslr_offset(link_stext: Option<u64>, info: &VmcoreInfo) -> Result<u64, (String, String)> {
    let dump = info.symbol("_stext");
    let shift = match (info.kernel_offset(), link_stext, dump) {
        (Some(k), _, _) => k,
        (None, Some(l), Some(d)) => d.wrapping_sub(l),
        _ => 0,
    };
    if let (Some(link), Some(dump)) = (link_stext, dump)
        && link.wrapping_add(shift) != dump
    {
        return Err(StextMismatch { link, shift, dump }.describe());
    }
    Ok(shift)
}

/// Link-time entries → run-time ones: kernel addresses shifted by `shift`, per-CPU offsets
/// kept, absolute non-addresses dropped.
pub fn relocate(entries: Vec<SymbolEntry>, shift: u64) -> Vec<SymbolEntry> {
    entries
        .into_iter()
        .filter(|(a, k, _)| *a >= KERNEL_HALF || !matches!(k, 'A' | 'a'))
        .map(|(a, k, n)| (if a >= KERNEL_HALF { a.wrapping_add(shift) } else { a }, k, n))
        .collect()
}

/// Checks a link-time table against the dump: `_stext` (see [`kaslr_offset`]) and, when the
/// table has it, `linux_banner` read from the dump at its run-time address (`read`), which must
/// be a banner naming VMCOREINFO's release. Returns the shift. Errors are (table, dump).
pub fn check(
    entries: &[SymbolEntry],
    info: &VmcoreInfo,
    read: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
) -> Result<u64, (String, String)> {
    let find = |name: &str| entries.iter().find(|e| e.2 == name).map(|e| e.0);
    let shift = kaslr_offset(find("_stext"), info)?;
    if let (Some(b), Some(rel)) = (find("linux_banner"), info.osrelease()) {
        let want = format!("Linux version {rel} ");
        if let Some(bytes) = read(b.wrapping_add(shift), want.len())
            && bytes != want.as_bytes()
        {
            return Err((
                format!("linux_banner at {:#x}", b.wrapping_add(shift)),
                format!("{:?} there, not a banner of release {rel}", String::from_utf8_lossy(&bytes)),
            ));
        }
    }
    Ok(shift)
}
