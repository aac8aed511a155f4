//! DWARF → a compact arena of type nodes, one per compile unit, read in parallel.
//!
//! Each unit's top-level type DIEs are read, then every type reference is followed on demand
//! (types nested in structures or functions, and with `DW_FORM_ref_addr` types of other units)
//! until all are read. Subprograms are skipped whole, so the code's DIEs (inlined calls,
//! parameters, lexical blocks: most of a kernel's DWARF) are never decoded. Top-level variables
//! with a fixed address are kept for VAR entries.

use gimli::{AttributeValue, EndianSlice, Reader, RunTimeEndian, SectionId, UnitOffset};
use std::borrow::Cow;
use std::collections::HashMap;

pub(super) type Rd<'d> = EndianSlice<'d, RunTimeEndian>;
type Unit<'d> = gimli::Unit<Rd<'d>>;
type Node<'a, 'u, 't, 'd> = gimli::EntriesTreeNode<'a, 'u, 't, Rd<'d>>;
/// A failure: the `.debug_info` offset and what went wrong.
pub(super) type Fail = (u64, String);

/// The sections the reader uses.
pub(super) const SECTIONS: [SectionId; 12] = [
    SectionId::DebugAranges,
    SectionId::DebugInfo,
    SectionId::DebugAbbrev,
    SectionId::DebugStr,
    SectionId::DebugLineStr,
    SectionId::DebugStrOffsets,
    SectionId::DebugAddr,
    SectionId::DebugLine,
    SectionId::DebugRngLists,
    SectionId::DebugRanges,
    SectionId::DebugLocLists,
    SectionId::DebugLoc,
];

#[derive(Default)]
pub(super) struct Sections<'d> {
    data: Vec<(SectionId, Cow<'d, [u8]>)>,
}

impl<'d> Sections<'d> {
    pub(super) fn insert(&mut self, id: SectionId, data: Cow<'d, [u8]>) {
        self.data.push((id, data));
    }

    pub(super) fn get(&self, id: SectionId) -> &[u8] {
        self.data.iter().find(|(i, _)| *i == id).map_or(&[], |(_, d)| d)
    }
}

/// What a node is. `Skip` stands for its target (atomic qualifier, unknown tags: void).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum NK {
    Int,
    Float,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    FuncProto,
    /// A base type BTF cannot express (complex float): an empty struct of its size and name.
    Opaque,
    Skip,
}

/// A type reference: void, a `.debug_info` offset not yet read (below 4 GiB: a reference past
/// that is not followed), or a node of the unit's arena. Eight bytes: there are millions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ref {
    Void,
    Raw(u32),
    Local(u32),
}

/// Node flags.
pub(super) const F_UNION: u8 = 1; // a FWD of a union
pub(super) const F_SIGNED: u8 = 2; // INT or ENUM values are signed
pub(super) const F_BOOL: u8 = 8; // INT is a boolean
pub(super) const F_DECL: u8 = 16; // ENUM is only declared
pub(super) const F_VARIADIC: u8 = 32; // FUNC_PROTO ends with `...`

#[derive(Clone, Copy, Debug)]
pub(super) struct TypeNode<'d> {
    pub kind: NK,
    pub flags: u8,
    pub name: &'d [u8],
    /// Size in bytes (INT, FLOAT, STRUCT, UNION, ENUM, OPAQUE); element count (ARRAY).
    pub size: u32,
    /// Pointee, aliased type, element type, return type.
    pub target: Ref,
    /// Members, enumerators or parameters: `items[first..first + count]`.
    pub first: u32,
    pub count: u32,
}

/// A member (`off` in bits, `bits` the bitfield width or 0), an enumerator (`off` the value's
/// bits) or a parameter.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item<'d> {
    pub name: &'d [u8],
    pub ty: Ref,
    pub off: u64,
    pub bits: u32,
}

// Millions of each are kept until the merge: keep them small.
const _: () = assert!(size_of::<TypeNode<'static>>() <= 40 && size_of::<Item<'static>>() <= 40);

#[derive(Clone, Copy, Debug)]
pub(super) struct VarNode<'d> {
    pub name: &'d [u8],
    pub ty: Ref,
    pub address: u64,
    pub external: bool,
}

/// One unit's types and variables; after reading, every `Ref` is `Void` or `Local`.
#[derive(Default)]
pub(super) struct UnitTypes<'d> {
    pub nodes: Vec<TypeNode<'d>>,
    pub items: Vec<Item<'d>>,
    pub vars: Vec<VarNode<'d>>,
    /// References not followed (type units, supplementary files): read as void.
    pub unresolved: usize,
}

impl<'d> UnitTypes<'d> {
    pub(super) fn items(&self, n: &TypeNode<'d>) -> &[Item<'d>] {
        &self.items[n.first as usize..][..n.count as usize]
    }
}

struct Span<'d> {
    start: u64,
    end: u64,
    header: gimli::UnitHeader<Rd<'d>>,
}

/// The units of a file's DWARF, each read on request (from any thread).
pub(super) struct Units<'d> {
    dwarf: gimli::Dwarf<Rd<'d>>,
    spans: Vec<Span<'d>>,
    big_endian: bool,
}

impl<'d> Units<'d> {
    /// Reads the unit headers.
    pub(super) fn open(sections: &'d Sections<'d>, little: bool) -> Result<Units<'d>, Fail> {
        let endian = if little { RunTimeEndian::Little } else { RunTimeEndian::Big };
        let dwarf: gimli::Dwarf<Rd<'d>> =
            gimli::Dwarf::load(|id| Ok::<_, gimli::Error>(EndianSlice::new(sections.get(id), endian)))
                .map_err(|e| (0, e.to_string()))?;
        let mut spans = Vec::new();
        let mut it = dwarf.units();
        let mut at = 0u64;
        loop {
            match it.next() {
                Ok(Some(h)) => {
                    let start = h.offset().as_debug_info_offset().map_or(at, |o| o.0 as u64);
                    let end = start + h.length_including_self() as u64;
                    at = end;
                    spans.push(Span { start, end, header: h });
                }
                Ok(None) => break,
                Err(e) => return Err((at, format!("unit header: {e}"))),
            }
        }
        Ok(Units { dwarf, spans, big_endian: !little })
    }

    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Reads unit `i`'s types and variables.
    pub(super) fn read(&self, i: usize) -> Result<UnitTypes<'d>, Fail> {
        UnitReader::read(&self.dwarf, &self.spans, i, self.big_endian)
    }
}

struct UnitReader<'a, 'd> {
    dwarf: &'a gimli::Dwarf<Rd<'d>>,
    spans: &'a [Span<'d>],
    /// Units other than the own one, built when a reference leads there.
    others: HashMap<usize, Unit<'d>>,
    out: UnitTypes<'d>,
    by_offset: HashMap<u64, u32, BuildFx>,
    /// Raw references met, to read.
    pending: Vec<u64>,
    /// The DIE being read, for error messages.
    at: u64,
    big_endian: bool,
}

impl<'a, 'd> UnitReader<'a, 'd> {
    fn read(
        dwarf: &'a gimli::Dwarf<Rd<'d>>,
        spans: &'a [Span<'d>],
        i: usize,
        big_endian: bool,
    ) -> Result<UnitTypes<'d>, Fail> {
        let span = &spans[i];
        let unit = dwarf.unit(span.header).map_err(|e| (span.start, format!("unit: {e}")))?;
        let mut r = UnitReader {
            dwarf,
            spans,
            others: HashMap::new(),
            out: UnitTypes::default(),
            by_offset: HashMap::with_hasher(BuildFx),
            pending: Vec::new(),
            at: span.start,
            big_endian,
        };
        r.top_level(&unit, span.start).map_err(|e| (r.at, e.to_string()))?;
        while let Some(off) = r.pending.pop() {
            if !r.by_offset.contains_key(&off) {
                r.read_at(&unit, i, off).map_err(|e| (r.at, e.to_string()))?;
            }
        }
        r.link();
        // Vectors grown by doubling hold up to twice their length: all units are kept until
        // merged, so give the slack back.
        r.out.nodes.shrink_to_fit();
        r.out.items.shrink_to_fit();
        r.out.vars.shrink_to_fit();
        Ok(r.out)
    }

    /// The unit's top-level type DIEs and variables.
    fn top_level(&mut self, unit: &Unit<'d>, base: u64) -> gimli::Result<()> {
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(child) = children.next()? {
            let tag = child.entry().tag();
            if tag == gimli::DW_TAG_variable {
                self.at = base + child.entry().offset().0 as u64;
                self.variable(unit, base, child.entry())?;
            } else if is_type_tag(tag) {
                self.type_die(unit, base, child)?;
            } else if tag == gimli::DW_TAG_subprogram {
                // Types declared in a function body (its lexical blocks and inlined calls are
                // skipped whole).
                let mut inner = child.children();
                while let Some(c) = inner.next()? {
                    if is_type_tag(c.entry().tag()) {
                        self.type_die(unit, base, c)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the DIE at a `.debug_info` offset, in whichever unit holds it.
    fn read_at(&mut self, own: &Unit<'d>, own_index: usize, off: u64) -> gimli::Result<()> {
        let Some(ui) = self.unit_of(off) else {
            return self.unreadable(off);
        };
        let span = &self.spans[ui];
        let local = UnitOffset((off - span.start) as usize);
        if ui == own_index {
            let mut tree = own.entries_tree(Some(local))?;
            let node = tree.root()?;
            return self.type_die(own, span.start, node).map(|_| ());
        }
        let unit = match self.others.remove(&ui) {
            Some(u) => u,
            None => self.dwarf.unit(span.header)?,
        };
        let res = (|| {
            let mut tree = unit.entries_tree(Some(local))?;
            let node = tree.root()?;
            self.type_die(&unit, span.start, node).map(|_| ())
        })();
        self.others.insert(ui, unit);
        res
    }

    /// The unit holding a `.debug_info` offset.
    fn unit_of(&self, off: u64) -> Option<usize> {
        let i = self.spans.partition_point(|s| s.end <= off);
        self.spans.get(i).filter(|s| s.start <= off).map(|_| i)
    }

    /// A reference that leads nowhere readable: void.
    fn unreadable(&mut self, off: u64) -> gimli::Result<()> {
        self.out.unresolved += 1;
        let i = self.push(TypeNode { kind: NK::Skip, ..blank() });
        self.by_offset.insert(off, i);
        Ok(())
    }

    fn push(&mut self, n: TypeNode<'d>) -> u32 {
        self.out.nodes.push(n);
        (self.out.nodes.len() - 1) as u32
    }

    fn reference(&mut self, base: u64, v: AttributeValue<Rd<'d>>) -> Ref {
        let off = match v {
            AttributeValue::UnitRef(o) => base + o.0 as u64,
            AttributeValue::DebugInfoRef(o) => o.0 as u64,
            _ => {
                self.out.unresolved += 1;
                return Ref::Void;
            }
        };
        let Ok(raw) = u32::try_from(off) else {
            self.out.unresolved += 1;
            return Ref::Void;
        };
        self.pending.push(off);
        Ref::Raw(raw)
    }

    fn string(&self, unit: &Unit<'d>, v: AttributeValue<Rd<'d>>) -> &'d [u8] {
        self.dwarf.attr_string(unit, v).map(|s| s.slice()).unwrap_or(&[])
    }

    /// Reads one type DIE (and its members, enumerators or parameters).
    fn type_die(&mut self, unit: &Unit<'d>, base: u64, node: Node<'_, '_, '_, 'd>) -> gimli::Result<u32> {
        let entry = node.entry();
        let off = base + entry.offset().0 as u64;
        if let Some(&i) = self.by_offset.get(&off) {
            return Ok(i);
        }
        self.at = off;
        let tag = entry.tag();
        let mut n = blank();
        let mut declaration = false;
        let mut has_size = false;
        let mut encoding = 0u8;
        let mut attrs = entry.attrs();
        while let Some(a) = attrs.next()? {
            match a.name() {
                gimli::DW_AT_name => n.name = self.string(unit, a.value()),
                gimli::DW_AT_byte_size => {
                    if let Some(s) = a.udata_value() {
                        n.size = u32::try_from(s).unwrap_or(u32::MAX);
                        has_size = true;
                    }
                }
                gimli::DW_AT_type => n.target = self.reference(base, a.value()),
                gimli::DW_AT_encoding => {
                    if let AttributeValue::Encoding(e) = a.value() {
                        encoding = e.0;
                    }
                }
                gimli::DW_AT_declaration => declaration = matches!(a.value(), AttributeValue::Flag(true)),
                _ => {}
            }
        }
        let idx = self.push(n);
        self.by_offset.insert(off, idx);
        let kind = match tag {
            gimli::DW_TAG_base_type => {
                const ATE_BOOL: u8 = 0x02;
                const ATE_COMPLEX: u8 = 0x03;
                const ATE_FLOAT: u8 = 0x04;
                const ATE_SIGNED: u8 = 0x05;
                const ATE_SIGNED_CHAR: u8 = 0x06;
                const ATE_DECIMAL_FLOAT: u8 = 0x0f;
                let int_ok = matches!(n.size, 1 | 2 | 4 | 8 | 16);
                match encoding {
                    ATE_FLOAT | ATE_DECIMAL_FLOAT if matches!(n.size, 2 | 4 | 8 | 12 | 16) => NK::Float,
                    ATE_COMPLEX | ATE_FLOAT | ATE_DECIMAL_FLOAT => NK::Opaque,
                    _ if !int_ok => NK::Opaque,
                    e => {
                        n.flags = match e {
                            ATE_BOOL => F_BOOL,
                            ATE_SIGNED | ATE_SIGNED_CHAR => F_SIGNED,
                            _ => 0,
                        };
                        NK::Int
                    }
                }
            }
            gimli::DW_TAG_pointer_type | gimli::DW_TAG_reference_type | gimli::DW_TAG_rvalue_reference_type => NK::Ptr,
            gimli::DW_TAG_const_type => NK::Const,
            gimli::DW_TAG_volatile_type => NK::Volatile,
            gimli::DW_TAG_restrict_type => NK::Restrict,
            gimli::DW_TAG_typedef => NK::Typedef,
            gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type | gimli::DW_TAG_union_type => {
                let union = tag == gimli::DW_TAG_union_type;
                if declaration || (!has_size && !entry.has_children()) {
                    n.flags = if union { F_UNION } else { 0 };
                    n.target = Ref::Void;
                    NK::Fwd
                } else {
                    n.target = Ref::Void;
                    (n.first, n.count) = self.members(unit, base, node)?;
                    if union { NK::Union } else { NK::Struct }
                }
            }
            gimli::DW_TAG_enumeration_type => {
                let underlying = n.target;
                n.target = Ref::Void;
                // BTF enums are 1, 2, 4 or 8 bytes.
                if !matches!(n.size, 1 | 2 | 4 | 8) {
                    n.size = 4;
                }
                if declaration || !has_size {
                    n.flags = F_DECL;
                } else {
                    let signed_base = match underlying {
                        Ref::Raw(o) => self.base_type_signed(unit, base, o as u64),
                        _ => false,
                    };
                    let (first, count, signed) = self.enumerators(unit, node, n.size as u64, signed_base)?;
                    (n.first, n.count) = (first, count);
                    n.flags = if signed { F_SIGNED } else { 0 };
                }
                NK::Enum
            }
            gimli::DW_TAG_array_type => {
                let dims = self.dimensions(node)?;
                // int a[2][3]: this node is the [2] array of a synthetic [3] array of int.
                let elem = n.target;
                let mut prev = idx;
                self.out.nodes[idx as usize].size = dims[0];
                for &d in &dims[1..] {
                    let next = self.push(TypeNode { kind: NK::Array, size: d, target: elem, ..blank() });
                    self.out.nodes[prev as usize].target = Ref::Local(next);
                    prev = next;
                }
                self.out.nodes[idx as usize].kind = NK::Array;
                return Ok(idx);
            }
            gimli::DW_TAG_subroutine_type => {
                let (first, count, variadic) = self.params(unit, base, node)?;
                (n.first, n.count) = (first, count);
                n.flags = if variadic { F_VARIADIC } else { 0 };
                NK::FuncProto
            }
            // Atomic (and other qualifiers BTF lacks) stand for their type; anything else that
            // a type reference leads to is void.
            gimli::DW_TAG_atomic_type | gimli::DW_TAG_immutable_type => NK::Skip,
            _ => {
                n.target = Ref::Void;
                NK::Skip
            }
        };
        self.out.nodes[idx as usize] = TypeNode { kind, ..n };
        Ok(idx)
    }

    /// Members of a structure or union, into `items`.
    fn members(&mut self, unit: &Unit<'d>, base: u64, node: Node<'_, '_, '_, 'd>) -> gimli::Result<(u32, u32)> {
        let first = self.out.items.len() as u32;
        let big_endian = self.big_endian;
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_member {
                continue;
            }
            self.at = base + e.offset().0 as u64;
            let mut item = Item { name: &[], ty: Ref::Void, off: 0, bits: 0 };
            let mut location = 0u64;
            let mut data_bit_offset = None;
            let mut old_bit_offset = None;
            let mut storage = None;
            let mut attrs = e.attrs();
            while let Some(a) = attrs.next()? {
                match a.name() {
                    gimli::DW_AT_name => item.name = self.string(unit, a.value()),
                    gimli::DW_AT_type => item.ty = self.reference(base, a.value()),
                    gimli::DW_AT_data_member_location => location = member_location(a.raw_value()),
                    gimli::DW_AT_data_bit_offset => data_bit_offset = a.udata_value(),
                    gimli::DW_AT_bit_offset => old_bit_offset = a.sdata_value(),
                    gimli::DW_AT_bit_size => item.bits = a.udata_value().unwrap_or(0).min(255) as u32,
                    gimli::DW_AT_byte_size => storage = a.udata_value(),
                    _ => {}
                }
            }
            item.off = match (data_bit_offset, old_bit_offset) {
                (Some(b), _) => b,
                (None, Some(b)) if item.bits > 0 => {
                    // DWARF 2/3: bits counted from the most significant bit of the storage unit.
                    let unit_bytes = storage.or_else(|| self.byte_size_of(unit, base, item.ty)).unwrap_or(0);
                    if big_endian {
                        location.wrapping_mul(8).wrapping_add(b as u64)
                    } else {
                        location
                            .wrapping_add(unit_bytes)
                            .wrapping_mul(8)
                            .wrapping_sub(b as u64)
                            .wrapping_sub(item.bits as u64)
                    }
                }
                _ => location.wrapping_mul(8),
            };
            self.out.items.push(item);
        }
        Ok((first, self.out.items.len() as u32 - first))
    }

    /// Enumerators, into `items` (value in `off`); whether they are signed.
    fn enumerators(
        &mut self,
        unit: &Unit<'d>,
        node: Node<'_, '_, '_, 'd>,
        size: u64,
        signed_base: bool,
    ) -> gimli::Result<(u32, u32, bool)> {
        let first = self.out.items.len() as u32;
        let mut signed = signed_base;
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_enumerator {
                continue;
            }
            let mut item = Item { name: &[], ty: Ref::Void, off: 0, bits: 0 };
            let mut attrs = e.attrs();
            while let Some(a) = attrs.next()? {
                match a.name() {
                    gimli::DW_AT_name => item.name = self.string(unit, a.value()),
                    gimli::DW_AT_const_value => {
                        // gcc writes negative values as sdata and others in the smallest
                        // data form, whatever the enum's signedness: data forms are unsigned.
                        item.off = match a.raw_value() {
                            AttributeValue::Data1(v) => v as u64,
                            AttributeValue::Data2(v) => v as u64,
                            AttributeValue::Data4(v) => v as u64,
                            AttributeValue::Data8(v) => v,
                            AttributeValue::Sdata(v) => {
                                signed |= v < 0;
                                v as u64
                            }
                            AttributeValue::Udata(v) => v,
                            _ => 0,
                        };
                    }
                    _ => {}
                }
            }
            self.out.items.push(item);
        }
        // Values of a narrower enum are its size's bits (`size` is 1, 2, 4 or 8).
        if size < 8 {
            let mask = (1u64 << (size * 8)) - 1;
            for it in &mut self.out.items[first as usize..] {
                let v = it.off & mask;
                it.off = if signed && (v >> (size * 8 - 1)) & 1 == 1 { v | !mask } else { v };
            }
        }
        Ok((first, self.out.items.len() as u32 - first, signed))
    }

    /// Parameters of a subroutine type; whether it ends with `...`.
    fn params(&mut self, unit: &Unit<'d>, base: u64, node: Node<'_, '_, '_, 'd>) -> gimli::Result<(u32, u32, bool)> {
        let first = self.out.items.len() as u32;
        let mut variadic = false;
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            match e.tag() {
                gimli::DW_TAG_formal_parameter => {
                    let mut item = Item { name: &[], ty: Ref::Void, off: 0, bits: 0 };
                    let mut attrs = e.attrs();
                    while let Some(a) = attrs.next()? {
                        match a.name() {
                            gimli::DW_AT_name => item.name = self.string(unit, a.value()),
                            gimli::DW_AT_type => item.ty = self.reference(base, a.value()),
                            _ => {}
                        }
                    }
                    self.out.items.push(item);
                }
                gimli::DW_TAG_unspecified_parameters => variadic = true,
                _ => {}
            }
        }
        Ok((first, self.out.items.len() as u32 - first, variadic))
    }

    /// Element counts of an array's dimensions (0 for flexible or variable-length ones).
    fn dimensions(&mut self, node: Node<'_, '_, '_, 'd>) -> gimli::Result<Vec<u32>> {
        let mut dims = Vec::new();
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_subrange_type {
                continue;
            }
            let (mut lower, mut upper, mut count) = (0u64, None, None);
            let mut attrs = e.attrs();
            while let Some(a) = attrs.next()? {
                let v = match a.raw_value() {
                    AttributeValue::Data1(v) => Some(v as u64),
                    AttributeValue::Data2(v) => Some(v as u64),
                    AttributeValue::Data4(v) => Some(v as u64),
                    AttributeValue::Data8(v) => Some(v),
                    AttributeValue::Udata(v) => Some(v),
                    AttributeValue::Sdata(v) => Some(v as u64),
                    _ => None,
                };
                match a.name() {
                    gimli::DW_AT_lower_bound => lower = v.unwrap_or(0),
                    gimli::DW_AT_upper_bound => upper = Some(v),
                    gimli::DW_AT_count => count = Some(v),
                    _ => {}
                }
            }
            let n = match (count, upper) {
                (Some(Some(c)), _) => c,
                (_, Some(Some(u))) => u.wrapping_sub(lower).wrapping_add(1),
                _ => 0,
            };
            dims.push(u32::try_from(n).unwrap_or(0));
        }
        if dims.is_empty() {
            dims.push(0);
        }
        Ok(dims)
    }

    /// A top-level variable with a fixed address (its name and type may come from the
    /// declaration its `DW_AT_specification` points at).
    fn variable(
        &mut self,
        unit: &Unit<'d>,
        base: u64,
        e: &gimli::DebuggingInformationEntry<'_, '_, Rd<'d>>,
    ) -> gimli::Result<()> {
        let mut v = VarNode { name: &[], ty: Ref::Void, address: 0, external: false };
        let mut address = None;
        let mut spec = None;
        let mut ty = None;
        let mut attrs = e.attrs();
        while let Some(a) = attrs.next()? {
            match a.name() {
                gimli::DW_AT_name => v.name = self.string(unit, a.value()),
                gimli::DW_AT_type => ty = Some((base, a.value())),
                gimli::DW_AT_external => v.external = matches!(a.value(), AttributeValue::Flag(true)),
                gimli::DW_AT_location => address = self.location_address(unit, a.raw_value()),
                gimli::DW_AT_specification | gimli::DW_AT_abstract_origin => {
                    spec = match a.value() {
                        AttributeValue::UnitRef(o) => Some(base + o.0 as u64),
                        AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        let Some(address) = address else { return Ok(()) };
        if let Some(off) = spec {
            self.declaration(unit, base, off, &mut v, &mut ty)?;
        }
        if v.name.is_empty() {
            return Ok(());
        }
        v.address = address;
        v.ty = match ty {
            Some((b, t)) => self.reference(b, t),
            None => Ref::Void,
        };
        self.out.vars.push(v);
        Ok(())
    }

    /// Name, type and linkage a variable's definition takes from its declaration (at a
    /// `.debug_info` offset, in this unit or, with `DW_FORM_ref_addr`, another).
    fn declaration(
        &mut self,
        own: &Unit<'d>,
        own_base: u64,
        off: u64,
        v: &mut VarNode<'d>,
        ty: &mut Option<(u64, AttributeValue<Rd<'d>>)>,
    ) -> gimli::Result<()> {
        let Some(ui) = self.unit_of(off) else { return Ok(()) };
        let base = self.spans[ui].start;
        if base == own_base {
            return self.declaration_in(own, base, off, v, ty);
        }
        let unit = match self.others.remove(&ui) {
            Some(u) => u,
            None => self.dwarf.unit(self.spans[ui].header)?,
        };
        let res = self.declaration_in(&unit, base, off, v, ty);
        self.others.insert(ui, unit);
        res
    }

    fn declaration_in(
        &self,
        unit: &Unit<'d>,
        base: u64,
        off: u64,
        v: &mut VarNode<'d>,
        ty: &mut Option<(u64, AttributeValue<Rd<'d>>)>,
    ) -> gimli::Result<()> {
        let d = unit.entry(UnitOffset((off - base) as usize))?;
        let mut attrs = d.attrs();
        while let Some(a) = attrs.next()? {
            match a.name() {
                gimli::DW_AT_name if v.name.is_empty() => v.name = self.string(unit, a.value()),
                gimli::DW_AT_type if ty.is_none() => *ty = Some((base, a.value())),
                gimli::DW_AT_external => v.external |= matches!(a.value(), AttributeValue::Flag(true)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The address of a location that is exactly `DW_OP_addr a` or `DW_OP_addrx i`.
    fn location_address(&self, unit: &Unit<'d>, v: AttributeValue<Rd<'d>>) -> Option<u64> {
        let mut r = match v {
            AttributeValue::Exprloc(e) => e.0,
            AttributeValue::Block(b) => b,
            _ => return None,
        };
        const OP_ADDR: u8 = 0x03;
        const OP_ADDRX: u8 = 0xa1;
        const OP_GNU_ADDR_INDEX: u8 = 0xfb;
        let addr = match r.read_u8().ok()? {
            OP_ADDR => r.read_address(unit.encoding().address_size).ok()?,
            OP_ADDRX | OP_GNU_ADDR_INDEX => {
                let i = r.read_uleb128().ok()?;
                self.dwarf.address(unit, gimli::DebugAddrIndex(i as usize)).ok()?
            }
            _ => return None,
        };
        r.is_empty().then_some(addr)
    }

    /// Whether the base type at `off` (same unit) is signed.
    fn base_type_signed(&self, unit: &Unit<'d>, base: u64, off: u64) -> bool {
        let Some(local) = off.checked_sub(base) else { return false };
        let Ok(e) = unit.entry(UnitOffset(local as usize)) else { return false };
        match e.attr_value(gimli::DW_AT_encoding) {
            Ok(Some(AttributeValue::Encoding(enc))) => matches!(enc, gimli::DW_ATE_signed | gimli::DW_ATE_signed_char),
            _ => false,
        }
    }

    /// `DW_AT_byte_size` of a type in the same unit, through typedefs and qualifiers.
    fn byte_size_of(&self, unit: &Unit<'d>, base: u64, r: Ref) -> Option<u64> {
        let Ref::Raw(off) = r else { return None };
        let mut off = off as u64;
        for _ in 0..16 {
            let e = unit.entry(UnitOffset(off.checked_sub(base)? as usize)).ok()?;
            if let Ok(Some(s)) = e.attr_value(gimli::DW_AT_byte_size) {
                return s.udata_value();
            }
            match e.attr_value(gimli::DW_AT_type).ok()?? {
                AttributeValue::UnitRef(o) => off = base + o.0 as u64,
                _ => return None,
            }
        }
        None
    }

    /// Turns every raw reference into a node index.
    fn link(&mut self) {
        let map = &self.by_offset;
        let fix = |r: &mut Ref| {
            if let Ref::Raw(o) = *r {
                *r = map.get(&(o as u64)).map_or(Ref::Void, |&i| Ref::Local(i));
            }
        };
        self.out.nodes.iter_mut().for_each(|n| fix(&mut n.target));
        self.out.items.iter_mut().for_each(|i| fix(&mut i.ty));
        self.out.vars.iter_mut().for_each(|v| fix(&mut v.ty));
    }
}

fn blank<'d>() -> TypeNode<'d> {
    TypeNode { kind: NK::Skip, flags: 0, name: &[], size: 0, target: Ref::Void, first: 0, count: 0 }
}

fn is_type_tag(tag: gimli::DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_base_type
            | gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type
            | gimli::DW_TAG_typedef
            | gimli::DW_TAG_structure_type
            | gimli::DW_TAG_class_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_enumeration_type
            | gimli::DW_TAG_array_type
            | gimli::DW_TAG_subroutine_type
    )
}

/// `DW_AT_data_member_location`: a constant, or (DWARF 2) `DW_OP_plus_uconst n`.
fn member_location(v: AttributeValue<Rd<'_>>) -> u64 {
    match v {
        AttributeValue::Data1(v) => v as u64,
        AttributeValue::Data2(v) => v as u64,
        AttributeValue::Data4(v) => v as u64,
        AttributeValue::Data8(v) => v,
        AttributeValue::Udata(v) => v,
        AttributeValue::Sdata(v) => v as u64,
        AttributeValue::Exprloc(gimli::Expression(mut r)) | AttributeValue::Block(mut r) => {
            const OP_PLUS_UCONST: u8 = 0x23;
            match r.read_u8() {
                Ok(OP_PLUS_UCONST) => r.read_uleb128().unwrap_or(0),
                _ => 0,
            }
        }
        _ => 0,
    }
}

/// A fast hasher for `u64` keys (DIE offsets): one multiply, high bits folded down.
#[derive(Clone, Copy, Default)]
pub(super) struct BuildFx;

impl std::hash::BuildHasher for BuildFx {
    type Hasher = Fx;
    fn build_hasher(&self) -> Fx {
        Fx(0)
    }
}

#[derive(Default)]
pub(super) struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        let p = ((self.0 ^ v) as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}
