//! The kernel's own symbol table, decoded from the kallsyms arrays in memory: what `crash`
//! takes from a 600 MB debuginfo package, read from the dump itself.
//!
//! VMCOREINFO gives the addresses of the arrays (`kallsyms_names`, `kallsyms_num_syms`,
//! `kallsyms_token_table`, `kallsyms_token_index`, and `kallsyms_offsets` with
//! `kallsyms_relative_base`, or `kallsyms_addresses`). Names are token-compressed; addresses
//! come in one of several schemes that changed across versions. The scheme — and the width
//! of the name-length prefix (two bytes possible from 6.1) — is chosen by decoding and
//! checking that `_stext` comes out at VMCOREINFO's `SYMBOL(_stext)`.

use crate::memory::{KernelMemory, MemError};
use std::sync::OnceLock;

/// More symbols than any kernel has: a bound against a corrupt count.
const MAX_SYMS: u32 = 4_000_000;
/// Longest compressed name (two-byte length prefix).
const MAX_NAME: usize = 0x7fff;

/// A decoded name: where it starts in the joined names, its length, its type letter.
type NameEntry = (u32, u16, u8);

#[derive(Clone, Copy, Debug)]
struct Sym {
    addr: u64,
    name_start: u32,
    name_len: u16,
    /// `nm` type letter: T t D d B b R r A W ...
    kind: u8,
}

/// A symbol found for an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolRef<'a> {
    pub name: &'a str,
    pub address: u64,
    pub kind: char,
    /// Bytes to the next symbol (kallsyms keeps no sizes).
    pub size: Option<u64>,
    /// Module name, for module symbols.
    pub module: Option<&'a str>,
}

impl SymbolRef<'_> {
    /// `name+0xoff/0xsize [module]` for an address inside the symbol.
    pub fn format(&self, addr: u64) -> String {
        let mut s = format!("{}+{:#x}", self.name, addr - self.address);
        if let Some(sz) = self.size {
            s.push_str(&format!("/{sz:#x}"));
        }
        if let Some(m) = self.module {
            s.push_str(&format!(" [{m}]"));
        }
        s
    }
}

/// Which address scheme the arrays use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressScheme {
    /// `kallsyms_addresses[i]`.
    Absolute,
    /// `relative_base + (u32)offsets[i]`.
    BaseRelative,
    /// x86_64 SMP until 6.15: `offsets[i] >= 0 ? offsets[i] : relative_base - 1 - offsets[i]`;
    /// per-CPU symbols are the non-negative (absolute, zero-based) ones.
    AbsolutePercpu,
    /// 6.15+: `&offsets[i] + offsets[i]`.
    PlaceRelative,
}

#[derive(Debug)]
pub enum KallsymsError {
    /// VMCOREINFO lacks the symbol (kernel < 6.0 without the backport): a `--vmlinux` or
    /// System.map is needed.
    Missing(&'static str),
    Memory {
        what: &'static str,
        err: MemError,
    },
    Corrupt(String),
}

impl std::fmt::Display for KallsymsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KallsymsError::Missing(s) => write!(
                f,
                "VMCOREINFO has no SYMBOL({s}): this kernel does not export kallsyms to dumps (before 6.0); give --vmlinux or a System.map"
            ),
            KallsymsError::Memory { what, err } => write!(f, "kallsyms: cannot read {what}: {err}"),
            KallsymsError::Corrupt(s) => write!(f, "kallsyms tables look corrupt: {s}"),
        }
    }
}

impl std::error::Error for KallsymsError {}

pub struct Symbols {
    syms: Vec<Sym>,
    names: String,
    /// (hash of the name, index into `syms`), sorted: built on the first name look-up.
    /// Hashes sort far faster than 100 000 strings.
    by_name: OnceLock<Vec<(u64, u32)>>,
    pub scheme: AddressScheme,
    /// Symbols whose addresses are per-CPU offsets (AbsolutePercpu scheme), by index.
    percpu_end: u64,
}

/// Addresses of the kallsyms arrays.
#[derive(Clone, Copy, Debug)]
pub struct Tables {
    pub names: u64,
    pub num_syms: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub offsets: Option<u64>,
    pub relative_base: Option<u64>,
    pub addresses: Option<u64>,
    /// Where `_stext` must come out.
    pub stext: u64,
}

impl Tables {
    pub fn from_vmcoreinfo(vi: &lockscope_dump::VmcoreInfo) -> Result<Tables, KallsymsError> {
        let need = |s: &'static str| vi.symbol(s).ok_or(KallsymsError::Missing(s));
        Ok(Tables {
            names: need("kallsyms_names")?,
            num_syms: need("kallsyms_num_syms")?,
            token_table: need("kallsyms_token_table")?,
            token_index: need("kallsyms_token_index")?,
            offsets: vi.symbol("kallsyms_offsets"),
            relative_base: vi.symbol("kallsyms_relative_base"),
            addresses: vi.symbol("kallsyms_addresses"),
            stext: need("_stext")?,
        })
    }
}

/// Sequential reader over kernel memory in 64 KiB pieces.
struct Stream<'a> {
    mem: &'a KernelMemory,
    base: u64,
    buf: Vec<u8>,
    buf_at: u64,
}

impl Stream<'_> {
    fn byte(&mut self, off: u64) -> Result<u8, MemError> {
        if off < self.buf_at || off >= self.buf_at + self.buf.len() as u64 {
            self.buf_at = off;
            // Up to the end of the 64 KiB window; shorter if the page after is unreadable.
            let want = 0x10000 - (self.base.wrapping_add(off) & 0xfff) as usize;
            self.buf = match self.mem.read_vec(self.base + off, want) {
                Ok(v) => v,
                Err(_) => self.mem.read_vec(self.base + off, 4096 - ((self.base + off) & 0xfff) as usize)?,
            };
        }
        Ok(self.buf[(off - self.buf_at) as usize])
    }
}

impl Symbols {
    /// Decodes the kernel's symbol table.
    pub fn load(mem: &KernelMemory, t: &Tables) -> Result<Symbols, KallsymsError> {
        let rd = |what: &'static str| move |err| KallsymsError::Memory { what, err };
        let n = mem.read_u32(t.num_syms).map_err(rd("kallsyms_num_syms"))?;
        if n == 0 || n > MAX_SYMS {
            return Err(KallsymsError::Corrupt(format!("kallsyms_num_syms = {n}")));
        }
        let idx_bytes = mem.read_vec(t.token_index, 512).map_err(rd("kallsyms_token_index"))?;
        let token_index: Vec<u16> = idx_bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let last = *token_index.iter().max().expect("256 entries") as usize;
        let table = mem.read_vec(t.token_table, last + 256).map_err(rd("kallsyms_token_table"))?;
        let mut tokens: Vec<&[u8]> = Vec::with_capacity(256);
        for &start in &token_index {
            let start = start as usize;
            let end = table[start..].iter().position(|&b| b == 0).map(|z| start + z);
            match end {
                Some(e) => tokens.push(&table[start..e]),
                None => return Err(KallsymsError::Corrupt("token table entry without an end".into())),
            }
        }
        let addrs = read_addresses(mem, t, n)?;
        // Two-byte name lengths (6.1+) or one: whichever puts `_stext` where VMCOREINFO says.
        let mut last_err = None;
        let prefetch = t.token_table.checked_sub(t.names).filter(|&l| l > 0 && l < 32 << 20);
        for wide in [true, false] {
            match decode_names(mem, t.names, n, &tokens, wide, prefetch) {
                Ok((names, entries)) => {
                    for scheme in schemes(t) {
                        let Some(pos) = entries.iter().position(|e| &names[e.0 as usize..][..e.1 as usize] == "_stext")
                        else {
                            break;
                        };
                        if resolve(scheme, &addrs, t, pos) == Some(t.stext) {
                            return Ok(Symbols::build(names, entries, &addrs, scheme, t));
                        }
                    }
                    last_err = Some(KallsymsError::Corrupt(format!("no address scheme puts _stext at {:#x}", t.stext)));
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("tried"))
    }

    fn build(
        names: String,
        entries: Vec<(u32, u16, u8)>,
        addrs: &Addresses,
        scheme: AddressScheme,
        t: &Tables,
    ) -> Symbols {
        let mut syms: Vec<Sym> = entries
            .iter()
            .enumerate()
            .map(|(i, &(start, len, kind))| Sym {
                addr: resolve(scheme, addrs, t, i).unwrap_or(0),
                name_start: start,
                name_len: len,
                kind,
            })
            .collect();
        syms.sort_unstable_by_key(|s| (s.addr, s.name_start));
        // Per-CPU symbols are small zero-based offsets; everything else is in the top half.
        let percpu_end = syms.iter().take_while(|s| s.addr < 0x8000_0000_0000_0000).map(|s| s.addr).max().unwrap_or(0);
        Symbols { syms, names, by_name: OnceLock::new(), scheme, percpu_end }
    }

    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    fn name(&self, s: &Sym) -> &str {
        &self.names[s.name_start as usize..][..s.name_len as usize]
    }

    fn to_ref(&self, i: usize) -> SymbolRef<'_> {
        let s = &self.syms[i];
        let size = self.syms[i + 1..].iter().find(|n| n.addr > s.addr).map(|n| n.addr - s.addr);
        SymbolRef { name: self.name(s), address: s.addr, kind: s.kind as char, size, module: None }
    }

    /// The symbol an address falls in. Per-CPU offsets (small numbers) never match.
    pub fn lookup(&self, addr: u64) -> Option<SymbolRef<'_>> {
        if addr <= self.percpu_end && addr < 0x8000_0000_0000_0000 {
            return None;
        }
        let i = self.syms.partition_point(|s| s.addr <= addr).checked_sub(1)?;
        // Prefer a global name among aliases at the same address.
        let at = self.syms[i].addr;
        let first = self.syms[..=i].iter().rposition(|s| s.addr != at).map_or(0, |p| p + 1);
        let best = (first..=i).find(|&j| self.syms[j].kind.is_ascii_uppercase()).unwrap_or(i);
        let r = self.to_ref(best);
        // A per-CPU offset below the address (a direct-map address lies between them and
        // the kernel image): not a symbol of this address.
        if r.address <= self.percpu_end && self.percpu_end != 0 {
            return None;
        }
        // Past the last text symbol by far: not this symbol.
        if r.size.is_none() && addr - r.address > 1 << 20 {
            return None;
        }
        Some(r)
    }

    /// The per-CPU variable at offset `off` of a CPU's per-CPU area (the symbols
    /// [`Symbols::lookup`] leaves out, as they are offsets, not addresses).
    pub fn lookup_per_cpu(&self, off: u64) -> Option<SymbolRef<'_>> {
        if off >= self.percpu_end {
            return None;
        }
        let i = self.syms.partition_point(|s| s.addr <= off).checked_sub(1)?;
        Some(self.to_ref(i))
    }

    fn by_name(&self) -> &[(u64, u32)] {
        self.by_name.get_or_init(|| {
            let mut v: Vec<(u64, u32)> =
                self.syms.iter().enumerate().map(|(i, s)| (name_hash(self.name(s)), i as u32)).collect();
            v.sort_unstable();
            v
        })
    }

    /// Every symbol of that name (static functions repeat), by address.
    pub fn find(&self, name: &str) -> Vec<SymbolRef<'_>> {
        let idx = self.by_name();
        let h = name_hash(name);
        let lo = idx.partition_point(|&(x, _)| x < h);
        let mut out: Vec<SymbolRef<'_>> = idx[lo..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .filter(|&&(_, i)| self.name(&self.syms[i as usize]) == name)
            .map(|&(_, i)| self.to_ref(i as usize))
            .collect();
        out.sort_by_key(|s| s.address);
        out
    }

    /// The address of a symbol, preferring a global one.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        let all = self.find(name);
        all.iter().find(|s| s.kind.is_ascii_uppercase()).or(all.first()).map(|s| s.address)
    }

    /// All symbols in address order: (address, type letter, name).
    pub fn iter(&self) -> impl Iterator<Item = (u64, char, &str)> + '_ {
        self.syms.iter().map(|s| (s.addr, s.kind as char, self.name(s)))
    }
}

/// FNV-1a: stable, and fast on short names.
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

enum Addresses {
    Absolute(Vec<u64>),
    Offsets { offsets: Vec<i32>, base: u64, at: u64 },
}

fn read_addresses(mem: &KernelMemory, t: &Tables, n: u32) -> Result<Addresses, KallsymsError> {
    if let (Some(off), Some(base_sym)) = (t.offsets, t.relative_base) {
        let base =
            mem.read_u64(base_sym).map_err(|err| KallsymsError::Memory { what: "kallsyms_relative_base", err })?;
        let raw =
            mem.read_vec(off, n as usize * 4).map_err(|err| KallsymsError::Memory { what: "kallsyms_offsets", err })?;
        let offsets = raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        return Ok(Addresses::Offsets { offsets, base, at: off });
    }
    if let Some(a) = t.addresses {
        let raw =
            mem.read_vec(a, n as usize * 8).map_err(|err| KallsymsError::Memory { what: "kallsyms_addresses", err })?;
        return Ok(Addresses::Absolute(
            raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect(),
        ));
    }
    if let Some(off) = t.offsets {
        // 6.15+ place-relative offsets have no base.
        let raw =
            mem.read_vec(off, n as usize * 4).map_err(|err| KallsymsError::Memory { what: "kallsyms_offsets", err })?;
        let offsets = raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        return Ok(Addresses::Offsets { offsets, base: 0, at: off });
    }
    Err(KallsymsError::Missing("kallsyms_offsets"))
}

fn schemes(t: &Tables) -> Vec<AddressScheme> {
    use AddressScheme::*;
    match (t.offsets, t.relative_base, t.addresses) {
        (Some(_), Some(_), _) => vec![AbsolutePercpu, BaseRelative, PlaceRelative],
        (None, _, Some(_)) => vec![Absolute],
        _ => vec![PlaceRelative],
    }
}

fn resolve(scheme: AddressScheme, a: &Addresses, _t: &Tables, i: usize) -> Option<u64> {
    match (scheme, a) {
        (AddressScheme::Absolute, Addresses::Absolute(v)) => v.get(i).copied(),
        (AddressScheme::BaseRelative, Addresses::Offsets { offsets, base, .. }) => {
            Some(base.wrapping_add(*offsets.get(i)? as u32 as u64))
        }
        (AddressScheme::AbsolutePercpu, Addresses::Offsets { offsets, base, .. }) => {
            let o = *offsets.get(i)?;
            Some(if o >= 0 { o as u64 } else { base.wrapping_sub(1).wrapping_sub(o as i64 as u64) })
        }
        (AddressScheme::PlaceRelative, Addresses::Offsets { offsets, at, .. }) => {
            Some(at.wrapping_add(i as u64 * 4).wrapping_add(*offsets.get(i)? as i64 as u64))
        }
        _ => None,
    }
}

/// Decodes `n` names: returns the concatenated names (type letters removed) and per symbol
/// (start, length, type letter).
fn decode_names(
    mem: &KernelMemory,
    at: u64,
    n: u32,
    tokens: &[&[u8]],
    wide: bool,
    prefetch_len: Option<u64>,
) -> Result<(String, Vec<NameEntry>), KallsymsError> {
    let mut st = Stream { mem, base: at, buf: Vec::new(), buf_at: 0 };
    // The names usually end where the marker and token tables begin: read them in one go
    // (on several threads) instead of 64 KiB at a time.
    if let Some(len) = prefetch_len
        && let Ok(all) = mem.read_vec(at, len as usize)
    {
        st.buf = all;
    }
    let rd = |err| KallsymsError::Memory { what: "kallsyms_names", err };
    let mut names = String::with_capacity(n as usize * 24);
    let mut entries = Vec::with_capacity(n as usize);
    let mut off = 0u64;
    let mut word = Vec::with_capacity(128);
    for _ in 0..n {
        let b0 = st.byte(off).map_err(rd)?;
        off += 1;
        let mut len = b0 as usize;
        if wide && b0 & 0x80 != 0 {
            let b1 = st.byte(off).map_err(rd)?;
            off += 1;
            len = (len & 0x7f) | (usize::from(b1) << 7);
        }
        if len == 0 || len > MAX_NAME {
            return Err(KallsymsError::Corrupt(format!("name of length {len} at offset {off}")));
        }
        word.clear();
        for k in 0..len as u64 {
            let b = st.byte(off + k).map_err(rd)?;
            word.extend_from_slice(tokens[b as usize]);
        }
        off += len as u64;
        let Some((&kind, name)) = word.split_first() else {
            return Err(KallsymsError::Corrupt("empty symbol name".into()));
        };
        let name = String::from_utf8_lossy(name);
        if name.len() > u16::MAX as usize {
            return Err(KallsymsError::Corrupt("symbol name too long".into()));
        }
        entries.push((names.len() as u32, name.len() as u16, kind));
        names.push_str(&name);
    }
    Ok((names, entries))
}

impl Symbols {
    /// A table from outside the dump: a vmlinux's ELF symbols or a System.map, already at
    /// run-time addresses (see [`crate::sysmap::relocate`]): (address, `nm` type letter, name).
    /// Per-CPU symbols are the zero-based ones below the kernel half, as for the in-memory
    /// tables of x86_64; the scheme says [`AddressScheme::AbsolutePercpu`] when there are any,
    /// else [`AddressScheme::Absolute`]. Names longer than 65535 bytes are left out.
    pub fn from_entries(entries: Vec<(u64, char, String)>) -> Symbols {
        let mut names = String::with_capacity(entries.iter().map(|e| e.2.len()).sum());
        let mut syms = Vec::with_capacity(entries.len());
        for (addr, kind, name) in entries {
            let (Ok(len), Ok(start)) = (u16::try_from(name.len()), u32::try_from(names.len())) else { continue };
            let kind = if kind.is_ascii() { kind as u8 } else { b'?' };
            syms.push(Sym { addr, name_start: start, name_len: len, kind });
            names.push_str(&name);
        }
        // Stable: aliases keep the table's order.
        syms.sort_by_key(|s| s.addr);
        let percpu_end = syms.iter().take_while(|s| s.addr < 0x8000_0000_0000_0000).map(|s| s.addr).max().unwrap_or(0);
        let scheme = if syms.first().is_some_and(|s| s.addr < 0x8000_0000_0000_0000) {
            AddressScheme::AbsolutePercpu
        } else {
            AddressScheme::Absolute
        };
        Symbols { syms, names, by_name: OnceLock::new(), scheme, percpu_end }
    }
}

#[cfg(test)]
mod schemes {
    use super::*;

    fn tables(offsets: Option<u64>, base: Option<u64>, addresses: Option<u64>) -> Tables {
        Tables {
            names: 0,
            num_syms: 0,
            token_table: 0,
            token_index: 0,
            offsets,
            relative_base: base,
            addresses,
            stext: 0,
        }
    }

    #[test]
    fn every_address_scheme() {
        let t = tables(Some(0xffff_ffff_8200_0000), Some(0xffff_ffff_8100_0000), None);
        let offs = Addresses::Offsets {
            offsets: vec![0x31c40, -1, -0x1001, 0x10],
            base: 0xffff_ffff_8100_0000,
            at: 0xffff_ffff_8200_0000,
        };
        // x86_64 absolute-percpu: non-negative = per-CPU offset as is; negative = base - 1 - off.
        assert_eq!(resolve(AddressScheme::AbsolutePercpu, &offs, &t, 0), Some(0x31c40));
        assert_eq!(resolve(AddressScheme::AbsolutePercpu, &offs, &t, 1), Some(0xffff_ffff_8100_0000));
        assert_eq!(resolve(AddressScheme::AbsolutePercpu, &offs, &t, 2), Some(0xffff_ffff_8100_1000));
        // base-relative: base + (u32)off.
        assert_eq!(resolve(AddressScheme::BaseRelative, &offs, &t, 3), Some(0xffff_ffff_8100_0010));
        assert_eq!(
            resolve(AddressScheme::BaseRelative, &offs, &t, 1),
            Some(0xffff_ffff_8100_0000u64.wrapping_add(0xffff_ffff))
        );
        // 6.15+ place-relative: &offsets[i] + (s32)off.
        assert_eq!(resolve(AddressScheme::PlaceRelative, &offs, &t, 3), Some(0xffff_ffff_8200_000c + 0x10));
        assert_eq!(resolve(AddressScheme::PlaceRelative, &offs, &t, 1), Some(0xffff_ffff_8200_0004 - 1));
        // absolute addresses.
        let abs = Addresses::Absolute(vec![0xffff_ffff_8100_0000]);
        assert_eq!(
            resolve(AddressScheme::Absolute, &abs, &tables(None, None, Some(1)), 0),
            Some(0xffff_ffff_8100_0000)
        );
        assert_eq!(resolve(AddressScheme::Absolute, &abs, &t, 5), None);
        // Which schemes are tried depends on the arrays VMCOREINFO names.
        assert_eq!(schemes(&tables(None, None, Some(1))), vec![AddressScheme::Absolute]);
        assert_eq!(schemes(&tables(Some(1), None, None)), vec![AddressScheme::PlaceRelative]);
        assert_eq!(schemes(&t)[0], AddressScheme::AbsolutePercpu);
    }
}
