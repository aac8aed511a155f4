//! BTF (BPF Type Format): the kernel's own description of its C types, kept in the kernel image
//! between `__start_BTF` and `__stop_BTF` and, for modules, as split BTF whose type IDs and
//! string offsets continue those of vmlinux. This module loads such a blob without copying it
//! and answers the type questions the rest of lockscope asks, in the spirit of drgn's types.
//!
//! Loading ([`Btf::parse`], [`Btf::parse_split`]) validates the header and every type entry
//! (all kinds 1–19, every name offset and type reference) and records where each type starts;
//! the name and enumerator indexes are built on the first lookup that needs them. Queries:
//! - [`Btf::find`] / [`Btf::lookup`] (`"struct rq"`, `"task_struct"`, `"u64"`), [`Btf::find_all`];
//! - [`Btf::size_of`], [`Btf::resolve`] (through typedef/const/volatile/restrict/type tags);
//! - [`Btf::member`] / [`Btf::offset_of`] / [`Btf::member_path`] (`"rq.clock"`): dotted paths
//!   with array indexes, anonymous
//!   structures and unions crossed transparently, bitfields reported as such;
//! - enumerators ([`Btf::enum_value`], [`Btf::enum_name`], [`Btf::find_enumerator`]);
//! - [`Btf::type_name`]: C spelling (`struct list_head *`, `char [16]`, `void (*)(int)`);
//! - variables ([`Btf::find_var`]): the few globals (mostly per-CPU ones) BTF describes.
//!
//! Layout facts come from the kernel's `include/uapi/linux/btf.h` and `Documentation/bpf/btf.rst`.
//! Blobs of either byte order are read. Nothing here panics or allocates by an untrusted count:
//! the only allocations are the offset table (one entry per type actually present) and the
//! name hash tables (a small multiple of the number of named entries).

mod cname;
mod error;
mod index;
mod query;
mod types;

pub use error::{BtfError, BtfErrorKind, TypeError};
pub use query::{MemberInfo, SectionVar, VarInfo};
pub use types::{ArrayInfo, Enumerator, IntEncoding, Kind, Linkage, Member, Param, Type, VarSecInfo};

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// A BTF type ID. 0 is `void`; real types are numbered from 1, and split BTF continues after
/// its base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const VOID: TypeId = TypeId(0);
}

/// Length of the header fields this reader knows (`struct btf_header`).
const HEADER_LEN: usize = 24;
/// Bits of `btf_type.info` that carry meaning: vlen (0–15), kind (24–28), kind_flag (31).
const INFO_MASK: u32 = 0x9f00_ffff;

/// A loaded BTF blob: vmlinux BTF, or split (module) BTF on top of a base.
pub struct Btf<'a> {
    data: Cow<'a, [u8]>,
    big_endian: bool,
    /// Type section: `types_start..types_start + types_len` of `data`.
    types_start: usize,
    types_len: usize,
    /// String section: `strs_start..strs_start + strs_len` of `data`.
    strs_start: usize,
    strs_len: usize,
    /// Where each own type starts, relative to `types_start`; index i is type `first_id + i`.
    offsets: Vec<u32>,
    first_id: u32,
    /// String offsets below this belong to the base (0 without one).
    str_base: u32,
    base: Option<Arc<Btf<'a>>>,
    pointer_size: u8,
    names: OnceLock<index::NameIndex>,
    enumerators: OnceLock<index::EnumIndex>,
}

impl std::fmt::Debug for Btf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("bytes", &self.data.len())
            .field("big_endian", &self.big_endian)
            .field("first_id", &self.first_id)
            .field("types", &self.offsets.len())
            .field("split", &self.base.is_some())
            .finish()
    }
}

impl<'a> Btf<'a> {
    /// Loads a complete (base) BTF blob, such as vmlinux's, from borrowed or owned bytes.
    pub fn parse(data: impl Into<Cow<'a, [u8]>>) -> Result<Btf<'a>, BtfError> {
        Btf::load(data.into(), None)
    }

    /// Loads split BTF (a module's): its type IDs start at `base.last_id() + 1` and its string
    /// offsets continue after the base's strings. Lookups on the result also see the base's types.
    pub fn parse_split(data: impl Into<Cow<'a, [u8]>>, base: Arc<Btf<'a>>) -> Result<Btf<'a>, BtfError> {
        Btf::load(data.into(), Some(base))
    }

    fn load(data: Cow<'a, [u8]>, base: Option<Arc<Btf<'a>>>) -> Result<Btf<'a>, BtfError> {
        use BtfErrorKind as K;
        let bytes: &[u8] = &data;
        if bytes.len() < HEADER_LEN {
            return Err(BtfError::new(K::Truncated, bytes.len() as u64));
        }
        let big_endian = match [bytes[0], bytes[1]] {
            [0x9f, 0xeb] => false,
            [0xeb, 0x9f] => true,
            _ => return Err(BtfError::new(K::BadMagic, 0)),
        };
        if let Some(b) = &base
            && b.big_endian != big_endian
        {
            return Err(BtfError::new(K::EndianMismatch, 0));
        }
        if bytes[2] != 1 {
            return Err(BtfError::new(K::UnsupportedVersion(bytes[2]), 2));
        }
        let word = |at: usize| read_u32(bytes, at, big_endian);
        let hdr_len = word(4);
        if (hdr_len as usize) < HEADER_LEN
            || hdr_len as usize > bytes.len()
            || bytes[HEADER_LEN..hdr_len as usize].iter().any(|&b| b != 0)
        {
            return Err(BtfError::new(K::BadHeaderLength(hdr_len), 4));
        }
        let section = |off_at: usize| -> Result<(usize, usize), BtfError> {
            let start = hdr_len as u64 + word(off_at) as u64;
            let len = word(off_at + 4) as u64;
            if start + len > bytes.len() as u64 {
                return Err(BtfError::new(K::SectionOutOfBounds, off_at as u64));
            }
            Ok((start as usize, len as usize))
        };
        let (types_start, types_len) = section(8)?;
        let (strs_start, strs_len) = section(16)?;
        if !word(8).is_multiple_of(4) {
            return Err(BtfError::new(K::SectionOutOfBounds, 8));
        }
        let overlap = types_len > 0
            && strs_len > 0
            && types_start < strs_start + strs_len
            && strs_start < types_start + types_len;
        if overlap {
            return Err(BtfError::new(K::SectionOutOfBounds, 16));
        }
        let strs = &bytes[strs_start..strs_start + strs_len];
        if base.is_none() && strs.first() != Some(&0) {
            return Err(BtfError::new(K::BadStringSection, strs_start as u64));
        }
        if let Some(&last) = strs.last()
            && last != 0
        {
            return Err(BtfError::new(K::BadStringSection, (strs_start + strs_len - 1) as u64));
        }
        if let Err(e) = std::str::from_utf8(strs) {
            return Err(BtfError::new(K::BadStringSection, (strs_start + e.valid_up_to()) as u64));
        }
        let (first_id, str_base, pointer_size) = match &base {
            Some(b) => {
                let next = b.last_id().0.checked_add(1).ok_or(BtfError::new(K::TooManyTypes, 0))?;
                let str_base = u32::try_from(b.str_base as u64 + b.strs_len as u64)
                    .map_err(|_| BtfError::new(K::BadStringSection, 0))?;
                (next, str_base, b.pointer_size)
            }
            None => (1, 0, 8),
        };
        let mut btf = Btf {
            data: Cow::Borrowed(&[]),
            big_endian,
            types_start,
            types_len,
            strs_start,
            strs_len,
            offsets: Vec::new(),
            first_id,
            str_base,
            base,
            pointer_size,
            names: OnceLock::new(),
            enumerators: OnceLock::new(),
        };
        // Validate and index with the borrowed bytes, then move the storage in.
        let (offsets, long_size) = btf.scan_types(bytes)?;
        btf.offsets = offsets;
        if let Some(size) = long_size {
            btf.pointer_size = size;
        }
        btf.data = data;
        Ok(btf)
    }

    /// One pass over the type section: checks every entry, returns where each starts and the
    /// size of `long` when the blob has it (the pointer size of the kernel's ABI).
    fn scan_types(&self, bytes: &[u8]) -> Result<(Vec<u32>, Option<u8>), BtfError> {
        use BtfErrorKind as K;
        let be = self.big_endian;
        let word = |at: usize| read_u32(bytes, at, be);
        let end = self.types_start + self.types_len;
        // Every type takes at least 12 bytes: the table is bounded by the section's real length.
        let mut offsets = Vec::with_capacity(self.types_len / 16);
        let mut long_size = None;
        let mut max_ref = (0u32, 0usize);
        let mut pos = self.types_start;
        let check_name = |name_off: u32, at: usize| -> Result<(), BtfError> {
            if self.name_ok(bytes, name_off) {
                Ok(())
            } else {
                Err(BtfError::new(K::BadNameOffset(name_off), at as u64))
            }
        };
        let mut note_ref = |id: u32, at: usize| {
            if id > max_ref.0 {
                max_ref = (id, at);
            }
        };
        while pos < end {
            if end - pos < 12 {
                return Err(BtfError::new(K::TruncatedType, pos as u64));
            }
            let (name_off, info, size_or_type) = (word(pos), word(pos + 4), word(pos + 8));
            if info & !INFO_MASK != 0 {
                return Err(BtfError::new(K::BadInfo(info), pos as u64 + 4));
            }
            let raw_kind = ((info >> 24) & 0x1f) as u8;
            let kind = Kind::from_raw(raw_kind).ok_or(BtfError::new(K::UnknownKind(raw_kind), pos as u64 + 4))?;
            let vlen = (info & 0xffff) as usize;
            let next = pos + 12 + kind.trailing_len(vlen);
            if next > end {
                return Err(BtfError::new(K::TruncatedType, pos as u64));
            }
            check_name(name_off, pos)?;
            let extra = pos + 12;
            match kind {
                Kind::Int => {
                    let enc = word(extra);
                    let bits = enc & 0xff;
                    let offset = (enc >> 16) & 0xff;
                    let size_ok = matches!(size_or_type, 1 | 2 | 4 | 8 | 16);
                    if enc >> 28 != 0 || !size_ok || bits + offset > size_or_type * 8 {
                        return Err(BtfError::new(K::BadInt(enc), extra as u64));
                    }
                    let name = self.name_bytes(bytes, name_off);
                    if name == b"long int" || name == b"long unsigned int" {
                        long_size = Some(size_or_type as u8);
                    }
                }
                Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Func
                | Kind::Var
                | Kind::DeclTag => note_ref(size_or_type, pos + 8),
                Kind::Array => {
                    note_ref(word(extra), extra);
                    note_ref(word(extra + 4), extra + 4);
                }
                Kind::Struct | Kind::Union => {
                    for m in (extra..next).step_by(12) {
                        check_name(word(m), m)?;
                        note_ref(word(m + 4), m + 4);
                    }
                }
                Kind::FuncProto => {
                    note_ref(size_or_type, pos + 8);
                    for p in (extra..next).step_by(8) {
                        check_name(word(p), p)?;
                        note_ref(word(p + 4), p + 4);
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    if !matches!(size_or_type, 1 | 2 | 4 | 8) {
                        return Err(BtfError::new(K::BadSize(size_or_type), pos as u64 + 8));
                    }
                    let step = if kind == Kind::Enum { 8 } else { 12 };
                    for e in (extra..next).step_by(step) {
                        check_name(word(e), e)?;
                    }
                }
                Kind::Datasec => {
                    for v in (extra..next).step_by(12) {
                        note_ref(word(v), v);
                    }
                }
                Kind::Float => {
                    if !matches!(size_or_type, 2 | 4 | 8 | 12 | 16) {
                        return Err(BtfError::new(K::BadSize(size_or_type), pos as u64 + 8));
                    }
                }
                Kind::Fwd => {}
            }
            offsets.push((pos - self.types_start) as u32);
            pos = next;
        }
        let last = (self.first_id as u64) + offsets.len() as u64 - 1;
        if last > u32::MAX as u64 - 1 {
            return Err(BtfError::new(K::TooManyTypes, pos as u64));
        }
        if max_ref.0 as u64 > last {
            return Err(BtfError::new(K::BadTypeId(max_ref.0), max_ref.1 as u64));
        }
        Ok((offsets, long_size))
    }

    /// A name offset points at the start of a character in the strings (own or the base's).
    fn name_ok(&self, own_bytes: &[u8], off: u32) -> bool {
        if off < self.str_base {
            return self.base.as_ref().is_some_and(|b| b.name_ok(&b.data, off));
        }
        let rel = (off - self.str_base) as usize;
        rel < self.strs_len && own_bytes.get(self.strs_start + rel).is_some_and(|&b| !(0x80..0xc0).contains(&b))
    }

    /// The NUL-terminated bytes at a string offset (empty when out of range).
    fn name_bytes<'s>(&'s self, own_bytes: &'s [u8], off: u32) -> &'s [u8] {
        let (strs, rel) = self.string_section(own_bytes, off);
        let s = strs.get(rel..).unwrap_or(&[]);
        let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        &s[..n]
    }

    /// The string section holding string offset `off` (own or a base's) and the offset in it.
    fn string_section<'s>(&'s self, own_bytes: &'s [u8], off: u32) -> (&'s [u8], usize) {
        if off < self.str_base {
            return match &self.base {
                Some(b) => b.string_section(&b.data, off),
                None => (&[], 0),
            };
        }
        let strs = own_bytes.get(self.strs_start..self.strs_start + self.strs_len).unwrap_or(&[]);
        (strs, (off - self.str_base) as usize)
    }

    /// The string at a string offset ("" for 0, out of range or not UTF-8, which loading rules out).
    pub fn str_at(&self, off: u32) -> &str {
        std::str::from_utf8(self.name_bytes(&self.data, off)).unwrap_or("")
    }

    /// The raw blob.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The base of split BTF.
    pub fn base(&self) -> Option<&Arc<Btf<'a>>> {
        self.base.as_ref()
    }

    /// Whether the blob is big-endian (a big-endian kernel's).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The first type ID this blob defines (1, or after the base's for split BTF).
    pub fn first_id(&self) -> TypeId {
        TypeId(self.first_id)
    }

    /// The last valid type ID, the base's included (`first_id() - 1` when the blob has no types).
    pub fn last_id(&self) -> TypeId {
        TypeId(self.first_id + self.offsets.len() as u32 - 1)
    }

    /// Number of types this blob itself defines.
    pub fn own_len(&self) -> usize {
        self.offsets.len()
    }

    /// All type IDs, the base's first (void excluded).
    pub fn ids(&self) -> impl Iterator<Item = TypeId> + use<> {
        (1..=self.last_id().0).map(TypeId)
    }

    /// Size of a pointer in bytes: the size of `long` in the base blob, else 8. Split BTF takes
    /// its base's.
    pub fn pointer_size(&self) -> u8 {
        self.pointer_size
    }

    /// Overrides the pointer size (for a blob without `long`, or a 32-bit target).
    pub fn set_pointer_size(&mut self, size: u8) {
        self.pointer_size = size;
    }

    /// The blob that defines `id` (self or a base) and the index of `id` in its table.
    fn owner(&self, id: TypeId) -> Option<(&Btf<'a>, usize)> {
        if id.0 < self.first_id {
            return self.base.as_ref()?.owner(id);
        }
        let i = (id.0 - self.first_id) as usize;
        (i < self.offsets.len()).then_some((self, i))
    }

    /// The type with this ID (`NoSuchType` for 0, `void`, which has no entry).
    pub fn ty(&self, id: TypeId) -> Result<Type<'_>, TypeError> {
        let (owner, i) = self.owner(id).ok_or(TypeError::NoSuchType(id))?;
        Ok(owner.type_at(i))
    }

    /// Own type number `i` (in range by construction).
    fn type_at(&self, i: usize) -> Type<'_> {
        Type::new(self, TypeId(self.first_id + i as u32), self.type_pos(i))
    }

    /// Where own type number `i` starts in the blob.
    fn type_pos(&self, i: usize) -> usize {
        self.types_start + self.offsets.get(i).copied().unwrap_or(0) as usize
    }

    fn u32_at(&self, pos: usize) -> u32 {
        read_u32(&self.data, pos, self.big_endian)
    }
}

/// Reads a u32 in the blob's byte order; 0 past the end (loading keeps reads in bounds).
fn read_u32(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    match bytes.get(at..at.wrapping_add(4)).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        Some(b) if big_endian => u32::from_be_bytes(b),
        Some(b) => u32::from_le_bytes(b),
        None => 0,
    }
}
