//! The nineteen BTF kinds and [`Type`], a borrowed view of one type entry: its header fields
//! and the kind-specific data that follows it (integer encoding, array, members, enumerators,
//! parameters, variable linkage, section entries, tag component), decoded on access.

use super::{Btf, TypeId};
use std::fmt;

/// A BTF kind (`BTF_KIND_*`, 1–19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    const ALL: [Kind; 19] = [
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ];

    /// The kind with this `BTF_KIND_*` number.
    pub fn from_raw(raw: u8) -> Option<Kind> {
        Kind::ALL.get((raw as usize).wrapping_sub(1)).copied()
    }

    /// Bytes of kind-specific data after the 12-byte `btf_type`.
    pub(crate) fn trailing_len(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            Kind::Ptr
            | Kind::Fwd
            | Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Func
            | Kind::Float
            | Kind::TypeTag => 0,
        }
    }

    /// The kind's name as bpftool prints it (`STRUCT`, `FUNC_PROTO`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }

    /// Kinds that only qualify or rename another type (typedef, const, volatile, restrict, type tag).
    pub fn is_alias(self) -> bool {
        matches!(self, Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag)
    }
}

/// An integer's encoding (`BTF_KIND_INT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntEncoding {
    /// Storage size in bytes.
    pub size: u32,
    /// Bits used (less than `size * 8` for old-style bitfield members).
    pub bits: u8,
    /// Bit offset of the value in its storage (old-style bitfield members).
    pub offset: u8,
    pub signed: bool,
    pub is_char: bool,
    pub is_bool: bool,
}

/// An array's element type, index type and length (`BTF_KIND_ARRAY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    pub elem: TypeId,
    pub index: TypeId,
    pub nelems: u32,
}

/// A structure or union member as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<'b> {
    /// Empty for an anonymous member.
    pub name: &'b str,
    pub ty: TypeId,
    /// Offset from the start of the structure, in bits.
    pub bit_offset: u32,
    /// Bitfield width when the structure encodes it in the member (kind_flag set); 0 otherwise.
    /// Without kind_flag a bitfield's width is in its integer type's encoding; [`Btf::member`]
    /// reports both forms the same way.
    pub bitfield_size: u8,
}

/// An enumerator (`BTF_KIND_ENUM`, `BTF_KIND_ENUM64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enumerator<'b> {
    pub name: &'b str,
    /// The value's bits: sign-extended from 32 bits for a signed 32-bit enum, else zero-extended.
    pub raw: u64,
    /// The enum says its values are signed (kind_flag; blobs before ENUM64 never say so).
    pub signed: bool,
}

impl Enumerator<'_> {
    /// The value as the enum's signedness reads it.
    pub fn value(&self) -> i128 {
        if self.signed { self.raw as i64 as i128 } else { self.raw as i128 }
    }
}

/// A function prototype's parameter. A last parameter with no name and type 0 means `...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'b> {
    pub name: &'b str,
    pub ty: TypeId,
}

/// One variable (or function) placed in a data section (`BTF_KIND_DATASEC` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSecInfo {
    pub var: TypeId,
    /// Offset in the section (for `.data..percpu`, the per-CPU offset).
    pub offset: u32,
    pub size: u32,
}

/// Linkage of a `FUNC` (in its vlen) or a `VAR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    Static,
    Global,
    Extern,
    Other(u32),
}

impl Linkage {
    fn from_raw(raw: u32) -> Linkage {
        match raw {
            0 => Linkage::Static,
            1 => Linkage::Global,
            2 => Linkage::Extern,
            n => Linkage::Other(n),
        }
    }
}

/// A borrowed view of one type entry. Cheap to copy; all accessors decode on demand.
#[derive(Clone, Copy)]
pub struct Type<'b> {
    btf: &'b Btf<'b>,
    id: TypeId,
    /// Byte offset of the entry in its blob.
    pos: usize,
    name_off: u32,
    info: u32,
    size_or_type: u32,
}

impl fmt::Debug for Type<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} '{}'", self.id.0, self.kind().name(), self.name())
    }
}

impl<'b> Type<'b> {
    pub(super) fn new(btf: &'b Btf<'b>, id: TypeId, pos: usize) -> Type<'b> {
        let (name_off, info, size_or_type) = (btf.u32_at(pos), btf.u32_at(pos + 4), btf.u32_at(pos + 8));
        Type { btf, id, pos, name_off, info, size_or_type }
    }

    pub fn id(&self) -> TypeId {
        self.id
    }

    pub fn kind(&self) -> Kind {
        // Loading accepted only known kinds.
        Kind::from_raw(((self.info >> 24) & 0x1f) as u8).unwrap_or(Kind::Int)
    }

    /// The name; empty for anonymous types. For a DECL_TAG or TYPE_TAG, the tag.
    pub fn name(&self) -> &'b str {
        self.btf.str_at(self.name_off)
    }

    pub fn kind_flag(&self) -> bool {
        self.info >> 31 != 0
    }

    pub fn vlen(&self) -> u16 {
        (self.info & 0xffff) as u16
    }

    /// Byte offset of the entry in the blob that defines it (for messages).
    pub fn blob_offset(&self) -> u64 {
        self.pos as u64
    }

    /// The blob that defines this type (a base, for base types reached through split BTF).
    pub fn btf(&self) -> &'b Btf<'b> {
        self.btf
    }

    /// The size field of sized kinds (int, struct, union, enum, enum64, float, datasec).
    pub fn size(&self) -> Option<u32> {
        matches!(
            self.kind(),
            Kind::Int | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Float | Kind::Datasec
        )
        .then_some(self.size_or_type)
    }

    /// The type referred to: pointee, aliased type, a function's prototype, a prototype's
    /// return type, a variable's type, a tag's target.
    pub fn target(&self) -> Option<TypeId> {
        matches!(
            self.kind(),
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
        )
        .then_some(TypeId(self.size_or_type))
    }

    fn extra(&self, at: usize) -> u32 {
        self.btf.u32_at(self.pos + 12 + at)
    }

    pub fn int(&self) -> Option<IntEncoding> {
        if self.kind() != Kind::Int {
            return None;
        }
        let enc = self.extra(0);
        let flags = (enc >> 24) & 0xf;
        Some(IntEncoding {
            size: self.size_or_type,
            bits: (enc & 0xff) as u8,
            offset: ((enc >> 16) & 0xff) as u8,
            signed: flags & 1 != 0,
            is_char: flags & 2 != 0,
            is_bool: flags & 4 != 0,
        })
    }

    pub fn array(&self) -> Option<ArrayInfo> {
        (self.kind() == Kind::Array).then(|| ArrayInfo {
            elem: TypeId(self.extra(0)),
            index: TypeId(self.extra(4)),
            nelems: self.extra(8),
        })
    }

    /// Count of trailing records when the kind is one of `kinds`, else 0.
    fn records(&self, kinds: &[Kind]) -> usize {
        if kinds.contains(&self.kind()) { self.vlen() as usize } else { 0 }
    }

    /// Members of a struct or union (none for other kinds).
    pub fn members(&self) -> impl ExactSizeIterator<Item = Member<'b>> + use<'b> {
        let t = *self;
        let bitfields = t.kind_flag();
        (0..t.records(&[Kind::Struct, Kind::Union])).map(move |i| {
            let raw = t.extra(12 * i + 8);
            Member {
                name: t.btf.str_at(t.extra(12 * i)),
                ty: TypeId(t.extra(12 * i + 4)),
                bit_offset: if bitfields { raw & 0xff_ffff } else { raw },
                bitfield_size: if bitfields { (raw >> 24) as u8 } else { 0 },
            }
        })
    }

    /// Enumerators of an enum or enum64 (none for other kinds).
    pub fn enumerators(&self) -> impl ExactSizeIterator<Item = Enumerator<'b>> + use<'b> {
        let t = *self;
        let signed = t.kind_flag();
        let wide = t.kind() == Kind::Enum64;
        (0..t.records(&[Kind::Enum, Kind::Enum64])).map(move |i| {
            let (name_off, raw) = if wide {
                (t.extra(12 * i), (t.extra(12 * i + 8) as u64) << 32 | t.extra(12 * i + 4) as u64)
            } else {
                let v = t.extra(8 * i + 4);
                (t.extra(8 * i), if signed { v as i32 as i64 as u64 } else { v as u64 })
            };
            Enumerator { name: t.btf.str_at(name_off), raw, signed }
        })
    }

    /// Parameters of a function prototype (none for other kinds).
    pub fn params(&self) -> impl ExactSizeIterator<Item = Param<'b>> + use<'b> {
        let t = *self;
        (0..t.records(&[Kind::FuncProto]))
            .map(move |i| Param { name: t.btf.str_at(t.extra(8 * i)), ty: TypeId(t.extra(8 * i + 4)) })
    }

    /// Entries of a data section (none for other kinds).
    pub fn datasec_vars(&self) -> impl ExactSizeIterator<Item = VarSecInfo> + use<'b> {
        let t = *self;
        (0..t.records(&[Kind::Datasec])).map(move |i| VarSecInfo {
            var: TypeId(t.extra(12 * i)),
            offset: t.extra(12 * i + 4),
            size: t.extra(12 * i + 8),
        })
    }

    /// Linkage of a function or variable.
    pub fn linkage(&self) -> Option<Linkage> {
        match self.kind() {
            Kind::Func => Some(Linkage::from_raw(self.vlen() as u32)),
            Kind::Var => Some(Linkage::from_raw(self.extra(0))),
            _ => None,
        }
    }

    /// For a DECL_TAG: the member or parameter index it applies to, -1 for the whole target.
    pub fn decl_tag_component(&self) -> Option<i32> {
        (self.kind() == Kind::DeclTag).then(|| self.extra(0) as i32)
    }

    /// For a FWD: whether it declares a union (else a struct).
    pub fn fwd_is_union(&self) -> bool {
        self.kind() == Kind::Fwd && self.kind_flag()
    }
}
