//! Errors of the BTF reader: [`BtfError`] when a blob cannot be loaded (it names the byte offset
//! in the blob of the offending field), [`TypeError`] when a query about types cannot be
//! answered (it names the type and, for member paths, the position in the path). Both are small
//! `Copy` values without allocations.

use super::TypeId;
use std::fmt;

/// Why a BTF blob cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfError {
    pub kind: BtfErrorKind,
    /// Byte offset in the blob of the field or entry at fault (0 for the blob as a whole).
    pub offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BtfErrorKind {
    /// The blob is shorter than the header it must start with.
    Truncated,
    /// The first two bytes are not 0xEB9F in either byte order.
    BadMagic,
    /// A header version other than 1.
    UnsupportedVersion(u8),
    /// `hdr_len` is shorter than the known header, runs past the blob, or its unknown tail is not zero.
    BadHeaderLength(u32),
    /// The type or string section lies outside the blob, overlaps the other or the header, or
    /// the type section is not 4-byte aligned.
    SectionOutOfBounds,
    /// The string section does not start (base BTF) or end with a NUL, or is not UTF-8.
    BadStringSection,
    /// A type entry (with its trailing data) runs past the end of the type section.
    TruncatedType,
    /// A kind outside 1–19: the size of the entry, and so everything after it, is unknown.
    UnknownKind(u8),
    /// Reserved bits of a type's `info` word are set.
    BadInfo(u32),
    /// A name offset outside the string section, or not at the start of a character.
    BadNameOffset(u32),
    /// A reference to a type ID that does not exist.
    BadTypeId(u32),
    /// An integer encoding no compiler produces (bits beyond the size, bad size).
    BadInt(u32),
    /// A size field with a value the kind cannot have (enum, float).
    BadSize(u32),
    /// More types than 32-bit type IDs can number (with the base's).
    TooManyTypes,
    /// Split BTF whose byte order differs from its base's.
    EndianMismatch,
}

impl BtfError {
    pub(crate) fn new(kind: BtfErrorKind, offset: u64) -> Self {
        BtfError { kind, offset }
    }
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            BtfErrorKind::Truncated => write!(f, "BTF blob truncated at offset {at:#x}"),
            BtfErrorKind::BadMagic => f.write_str("not BTF: magic is not 0xeb9f"),
            BtfErrorKind::UnsupportedVersion(v) => write!(f, "unsupported BTF version {v}"),
            BtfErrorKind::BadHeaderLength(n) => write!(f, "bad BTF header length {n} (offset {at:#x})"),
            BtfErrorKind::SectionOutOfBounds => write!(f, "BTF section out of bounds (header field at {at:#x})"),
            BtfErrorKind::BadStringSection => write!(f, "bad BTF string section at offset {at:#x}"),
            BtfErrorKind::TruncatedType => write!(f, "BTF type at offset {at:#x} runs past the type section"),
            BtfErrorKind::UnknownKind(k) => write!(f, "unknown BTF kind {k} at offset {at:#x}"),
            BtfErrorKind::BadInfo(i) => write!(f, "BTF type info {i:#x} has reserved bits set (offset {at:#x})"),
            BtfErrorKind::BadNameOffset(o) => write!(f, "BTF name offset {o:#x} outside the strings (at {at:#x})"),
            BtfErrorKind::BadTypeId(id) => write!(f, "BTF type ID {id} does not exist (referenced at {at:#x})"),
            BtfErrorKind::BadInt(e) => write!(f, "bad BTF integer encoding {e:#x} at offset {at:#x}"),
            BtfErrorKind::BadSize(s) => write!(f, "bad BTF type size {s} at offset {at:#x}"),
            BtfErrorKind::TooManyTypes => write!(f, "too many BTF types (at offset {at:#x})"),
            BtfErrorKind::EndianMismatch => f.write_str("split BTF and its base differ in byte order"),
        }
    }
}

impl std::error::Error for BtfError {}

/// Why a question about types has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeError {
    /// No type has this ID (0 is `void`, which has no entry).
    NoSuchType(TypeId),
    /// No type of that name (and kind).
    NotFound,
    /// The type has no size: `void`, a forward declaration, a function.
    Incomplete(TypeId),
    /// The structure or union has no member of the name at byte `at` of the path.
    NoMember { ty: TypeId, at: usize },
    /// A member name at byte `at` of the path applied to a type that is no structure or union.
    NotComposite { ty: TypeId, at: usize },
    /// An index at byte `at` of the path applied to a type that is no array.
    NotArray { ty: TypeId, at: usize },
    /// The index at byte `at` of the path is beyond the array's declared length.
    IndexOutOfBounds { ty: TypeId, at: usize },
    /// The path is malformed at byte `at` (member paths are `a.b[3].c`, no pointers).
    BadPath { at: usize },
    /// A size or offset does not fit in 64 bits.
    Overflow(TypeId),
    /// Following references from this type did not end (a cycle, or a chain deeper than any C type).
    TooDeep(TypeId),
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TypeError::NoSuchType(id) => write!(f, "no BTF type with ID {}", id.0),
            TypeError::NotFound => f.write_str("no such BTF type"),
            TypeError::Incomplete(id) => write!(f, "BTF type {} has no size", id.0),
            TypeError::NoMember { ty, at } => {
                write!(f, "BTF type {} has no member named at byte {at} of the path", ty.0)
            }
            TypeError::NotComposite { ty, at } => {
                write!(f, "BTF type {} is not a struct or union (byte {at} of the path)", ty.0)
            }
            TypeError::NotArray { ty, at } => write!(f, "BTF type {} is not an array (byte {at} of the path)", ty.0),
            TypeError::IndexOutOfBounds { ty, at } => {
                write!(f, "index out of bounds of array type {} (byte {at} of the path)", ty.0)
            }
            TypeError::BadPath { at } => write!(f, "malformed member path at byte {at}"),
            TypeError::Overflow(id) => write!(f, "size or offset overflow in BTF type {}", id.0),
            TypeError::TooDeep(id) => write!(f, "BTF type {} refers to itself or nests too deeply", id.0),
        }
    }
}

impl std::error::Error for TypeError {}
