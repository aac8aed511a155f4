//! Merging the units' type arenas into one BTF blob.
//!
//! 1. Per unit (in parallel, batches in unit order): a **shape** hash of every node, structural
//!    except that a reference to a named struct, union or enum (defined or only declared)
//!    counts by kind and name. C allows cycles only through such types, so the hashes are well
//!    defined. The members of a named definition whose shape an earlier unit has are dropped
//!    right away: only the first is written, and that is most of a kernel's DWARF.
//! 2. Globally: each named struct/union/enum name gets its definitions' shapes, and the one a
//!    mere declaration stands for (the unit's own definition if it has one, else the most
//!    common one; none: the declaration stays a FWD).
//! 3. Per unit (in parallel): a **final** hash of every node, where a named definition is its
//!    shape, a declaration is the definition it stands for, and anything else is structural over
//!    final hashes. Equal final hashes are one BTF type.
//! 4. In unit order: IDs by first appearance (a named type's body comes from its first
//!    definition), then the BTF records, the array index type, VAR entries of the variables and
//!    one DATASEC per ELF section holding them.
//!
//! Hashes are 128 bits; a collision would merge two types, which 2^-100 odds make moot.

use super::ConvertStats;
use super::parse::{BuildFx, F_BOOL, F_DECL, F_SIGNED, F_UNION, F_VARIADIC, Item, NK, Ref, TypeNode, UnitTypes, Units};
use crate::btf::{Btf, TypeId};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

/// An allocated ELF section, for DATASEC entries.
pub(super) struct ElfSection<'d> {
    pub name: &'d str,
    pub address: u64,
    pub size: u64,
}

/// Deepest reference chain hashed (C nests far less; a crafted file gets a marker, not a crash).
const MAX_DEPTH: u32 = 256;

/// A 128-bit hash under construction: two 64-bit lanes of multiply-fold mixing.
#[derive(Clone, Copy)]
struct H(u64, u64);

fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

impl H {
    fn new(tag: u64) -> H {
        H(0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344).u(tag)
    }
    fn u(self, x: u64) -> H {
        H(fold(self.0 ^ x, 0x9e37_79b9_7f4a_7c15), fold(self.1 ^ x.rotate_left(29), 0xc2b2_ae3d_27d4_eb4f))
    }
    fn h(self, x: u128) -> H {
        self.u(x as u64).u((x >> 64) as u64)
    }
    fn bytes(mut self, s: &[u8]) -> H {
        for c in s.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self = self.u(u64::from_le_bytes(w));
        }
        self.u(s.len() as u64)
    }
    fn done(self) -> u128 {
        let v =
            (fold(self.0, 0x8ebc_6af0_9c88_c6e3) as u128) << 64 | fold(self.1 ^ self.0, 0x5899_65cc_7537_4cc3) as u128;
        // 0 means void.
        v.max(1)
    }
}

const T_NOMINAL: u64 = 1;
const T_DEF: u64 = 2;
const T_FWD: u64 = 3;
const T_CYCLE: u64 = 4;
const T_DEEP: u64 = 5;
const T_NODE: u64 = 16;

/// Struct 0, union 1, enum 2: the tag namespace a name lives in.
fn class(n: &TypeNode<'_>) -> u8 {
    match n.kind {
        NK::Struct => 0,
        NK::Fwd if n.flags & F_UNION == 0 => 0,
        NK::Union | NK::Fwd => 1,
        _ => 2,
    }
}

/// A named struct/union/enum with a body.
fn is_named_def(n: &TypeNode<'_>) -> bool {
    !n.name.is_empty() && (matches!(n.kind, NK::Struct | NK::Union) || (n.kind == NK::Enum && n.flags & F_DECL == 0))
}

/// A declaration that stands for a definition elsewhere.
fn is_decl(n: &TypeNode<'_>) -> bool {
    n.kind == NK::Fwd || (n.kind == NK::Enum && n.flags & F_DECL != 0)
}

type Resolution<'d> = HashMap<(u8, &'d [u8]), u128>;
/// Shapes of the definitions of each named type, with how many units define each.
type Definitions<'d> = HashMap<(u8, &'d [u8]), Vec<(u128, u32)>>;
/// A unit read and shaped, or where it failed.
type Shaped<'d> = Result<(UnitTypes<'d>, Vec<u128>), (u64, String)>;

/// Memoised hashing of one unit's nodes, in shape mode (`res` None) or final mode.
struct Hasher<'u, 'd> {
    unit: &'u UnitTypes<'d>,
    /// Final mode: the shapes of this unit, what declarations stand for (global and own).
    shapes: Option<&'u [u128]>,
    global: Option<&'u Resolution<'d>>,
    own: Resolution<'d>,
    memo: Vec<u128>,
    busy: Vec<bool>,
}

impl<'u, 'd> Hasher<'u, 'd> {
    fn new(unit: &'u UnitTypes<'d>, shapes: Option<&'u [u128]>, global: Option<&'u Resolution<'d>>) -> Self {
        let mut own = Resolution::new();
        if let Some(shapes) = shapes {
            for (i, n) in unit.nodes.iter().enumerate() {
                if is_named_def(n) {
                    own.entry((class(n), n.name)).or_insert(shapes[i]);
                }
            }
        }
        let len = unit.nodes.len();
        Hasher { unit, shapes, global, own, memo: vec![0; len], busy: vec![false; len] }
    }

    /// The hash a reference contributes.
    fn reference(&mut self, r: Ref, depth: u32) -> u128 {
        let Ref::Local(i) = r else { return 0 };
        let n = &self.unit.nodes[i as usize];
        if depth > MAX_DEPTH {
            return H::new(T_DEEP).done();
        }
        if n.kind == NK::Skip {
            return self.reference(n.target, depth + 1);
        }
        let named = is_named_def(n) || (is_decl(n) && !n.name.is_empty());
        match (self.shapes, named) {
            (None, true) => H::new(T_NOMINAL).u(class(n) as u64).bytes(n.name).done(),
            (Some(shapes), true) if is_named_def(n) => H::new(T_DEF).h(shapes[i as usize]).done(),
            (Some(_), true) => {
                let key = (class(n), n.name);
                match self.own.get(&key).or_else(|| self.global.and_then(|g| g.get(&key))) {
                    Some(&s) => H::new(T_DEF).h(s).done(),
                    None => H::new(T_FWD).u(key.0 as u64).bytes(n.name).done(),
                }
            }
            _ => self.body(i as usize, depth),
        }
    }

    /// The structural hash of node `i`.
    fn body(&mut self, i: usize, depth: u32) -> u128 {
        if self.memo[i] != 0 {
            return self.memo[i];
        }
        if self.busy[i] {
            return H::new(T_CYCLE).done();
        }
        self.busy[i] = true;
        let unit = self.unit;
        let n = &unit.nodes[i];
        let mut h = H::new(T_NODE + n.kind as u64).u(n.flags as u64).bytes(n.name).u(n.size as u64);
        match n.kind {
            NK::Ptr | NK::Typedef | NK::Const | NK::Volatile | NK::Restrict | NK::Array | NK::FuncProto => {
                h = h.h(self.reference(n.target, depth + 1));
            }
            _ => {}
        }
        for it in unit.items(n) {
            h = h.bytes(it.name).u(it.off).u(it.bits as u64);
            if n.kind != NK::Enum {
                h = h.h(self.reference(it.ty, depth + 1));
            }
        }
        let v = h.done();
        self.busy[i] = false;
        self.memo[i] = v;
        v
    }

    /// Every node's hash as references see it (0 for void).
    fn all(mut self) -> Vec<u128> {
        (0..self.unit.nodes.len()).map(|i| self.reference(Ref::Local(i as u32), 0)).collect()
    }

    /// Shape mode: every node's own structural hash (a named type's definition included).
    fn all_bodies(mut self) -> Vec<u128> {
        (0..self.unit.nodes.len())
            .map(|i| if self.unit.nodes[i].kind == NK::Skip { 0 } else { self.body(i, 0) })
            .collect()
    }
}

/// Why the blob cannot be built.
pub(super) enum Failure {
    /// Malformed DWARF at this `.debug_info` offset.
    Dwarf(u64, String),
    /// The result is not valid BTF (a bug).
    Btf(String),
}

/// Builds the BTF blob of all units.
pub(super) fn build(
    reader: &Units<'_>,
    sections: &[ElfSection<'_>],
    stats: &mut ConvertStats,
) -> Result<Vec<u8>, Failure> {
    // 1. Units read and shaped in parallel, a batch at a time in order, so that the bodies of
    //    named types already seen can be dropped at once (most of a kernel's members are
    //    repeated in every unit including the same headers).
    let t0 = std::time::Instant::now();
    let mut units: Vec<UnitTypes<'_>> = Vec::with_capacity(reader.len());
    let mut shapes: Vec<Vec<u128>> = Vec::with_capacity(reader.len());
    let mut seen: HashSet<u128, BuildFx> = HashSet::with_hasher(BuildFx);
    let mut counts = Definitions::new();
    let batch = rayon::current_num_threads() * 16;
    for start in (0..reader.len()).step_by(batch) {
        let end = (start + batch).min(reader.len());
        let read: Vec<Shaped<'_>> = (start..end)
            .into_par_iter()
            .map(|i| {
                let u = reader.read(i)?;
                let s = Hasher::new(&u, None, None).all_bodies();
                Ok((u, s))
            })
            .collect();
        for r in read {
            let (mut u, s) = r.map_err(|(o, e)| Failure::Dwarf(o, e))?;
            stats.type_dies += u.nodes.len();
            stats.unresolved_refs += u.unresolved;
            // 2. (counted here) What each named declaration stands for: the most common definition.
            for (i, n) in u.nodes.iter().enumerate() {
                if is_named_def(n) {
                    let v = counts.entry((class(n), n.name)).or_default();
                    match v.iter_mut().find(|(h, _)| *h == s[i]) {
                        Some(e) => e.1 += 1,
                        None => v.push((s[i], 1)),
                    }
                }
            }
            drop_repeated_bodies(&mut u, &s, &mut seen);
            units.push(u);
            shapes.push(s);
        }
    }
    stats.units = units.len();
    stats.read_time = t0.elapsed();
    let global: Resolution<'_> = counts
        .into_iter()
        .map(|(k, v)| {
            // Most common, the first seen among equals.
            let best = v.iter().fold(v[0], |b, &e| if e.1 > b.1 { e } else { b });
            (k, best.0)
        })
        .collect();
    // 3. Final hashes.
    let finals: Vec<Vec<u128>> =
        units.par_iter().zip(shapes.par_iter()).map(|(u, s)| Hasher::new(u, Some(s), Some(&global)).all()).collect();
    drop(shapes);
    // 4. IDs by first appearance; a definition replaces a declaration as representative.
    let mut ids: HashMap<u128, u32, BuildFx> = HashMap::with_hasher(BuildFx);
    let mut reps: Vec<(u32, u32)> = Vec::new();
    for (ui, (u, f)) in units.iter().zip(&finals).enumerate() {
        for (i, n) in u.nodes.iter().enumerate() {
            if n.kind == NK::Skip || f[i] == 0 {
                continue;
            }
            match ids.entry(f[i]) {
                Entry::Vacant(v) => {
                    reps.push((ui as u32, i as u32));
                    v.insert(reps.len() as u32);
                }
                Entry::Occupied(o) => {
                    let r = &mut reps[*o.get() as usize - 1];
                    if is_decl(&units[r.0 as usize].nodes[r.1 as usize]) && !is_decl(n) {
                        *r = (ui as u32, i as u32);
                    }
                }
            }
        }
    }
    let mut w = Writer::default();
    let index_type = reps.len() as u32 + 1;
    let id_of = |ui: usize, r: Ref| -> u32 {
        match r {
            Ref::Local(i) => match finals[ui][i as usize] {
                0 => 0,
                f => ids.get(&f).copied().unwrap_or(0),
            },
            _ => 0,
        }
    };
    for &(ui, i) in &reps {
        let u = &units[ui as usize];
        let n = &u.nodes[i as usize];
        w.node(n, u.items(n), |r| id_of(ui as usize, r), index_type);
    }
    // The arrays' index type, as pahole names it.
    let name = w.name(b"__ARRAY_SIZE_TYPE__");
    w.head(name, 1, 0, false, 4);
    w.u32(32);
    let mut next_id = index_type + 1;
    // Variables: one per name and address, globals first, then by address.
    let mut vars: Vec<(&[u8], u32, u64, bool)> = Vec::new();
    let mut seen: HashMap<(&[u8], u64), ()> = HashMap::new();
    for (ui, u) in units.iter().enumerate() {
        for v in &u.vars {
            let ty = id_of(ui, v.ty);
            if ty != 0 && seen.insert((v.name, v.address), ()).is_none() {
                vars.push((v.name, ty, v.address, v.external));
            }
        }
    }
    vars.sort_by_key(|v| (!v.3, v.2));
    // Sizes of the variables' types, from the types written so far.
    let sizes: Vec<Option<u64>> = {
        let blob = w.blob();
        let btf = Btf::parse(&blob[..]).map_err(|e| Failure::Btf(e.to_string()))?;
        vars.iter().map(|v| btf.size_of(TypeId(v.1)).ok()).collect()
    };
    let mut by_section: Vec<Vec<(u32, u32, u32)>> = sections.iter().map(|_| Vec::new()).collect();
    for (v, size) in vars.iter().zip(&sizes) {
        let name = w.name(v.0);
        w.head(name, 14, 0, false, v.1);
        w.u32(if v.3 { 1 } else { 0 });
        let var_id = next_id;
        next_id += 1;
        let Some(size) = size.and_then(|s| u32::try_from(s).ok()) else { continue };
        let Some(si) = sections.iter().position(|s| s.address <= v.2 && v.2 - s.address < s.size) else { continue };
        let off = v.2 - sections[si].address;
        if off + size as u64 <= sections[si].size
            && let Ok(off) = u32::try_from(off)
        {
            by_section[si].push((var_id, off, size));
        }
    }
    for (s, mut entries) in sections.iter().zip(by_section) {
        let (Ok(size), false) = (u32::try_from(s.size), entries.is_empty()) else { continue };
        entries.sort_by_key(|e| (e.1, std::cmp::Reverse(e.2)));
        let mut end = 0u64;
        entries.retain(|e| {
            let keep = e.1 as u64 >= end;
            if keep {
                end = e.1 as u64 + e.2 as u64;
            }
            keep
        });
        for chunk in entries.chunks(0xffff) {
            let name = w.name(s.name.as_bytes());
            w.head(name, 15, chunk.len() as u32, false, size);
            for e in chunk {
                w.u32(e.0);
                w.u32(e.1);
                w.u32(e.2);
            }
            next_id += 1;
        }
    }
    stats.vars = vars.len();
    stats.btf_types = next_id as usize - 1;
    Ok(w.blob())
}

/// Drops the members and enumerators of the unit's named definitions whose shape an earlier
/// unit (or node) already has: only the first one's body is written, and final hashes of named
/// definitions need only their shapes.
fn drop_repeated_bodies(u: &mut UnitTypes<'_>, shapes: &[u128], seen: &mut HashSet<u128, BuildFx>) {
    let mut items = Vec::new();
    for (i, n) in u.nodes.iter_mut().enumerate() {
        if is_named_def(n) && !seen.insert(shapes[i]) {
            n.first = 0;
            n.count = 0;
            continue;
        }
        let at = items.len() as u32;
        items.extend_from_slice(&u.items[n.first as usize..][..n.count as usize]);
        n.first = at;
    }
    items.shrink_to_fit();
    u.items = items;
}

/// The type and string sections under construction.
#[derive(Default)]
struct Writer<'d> {
    types: Vec<u8>,
    strs: Vec<u8>,
    offsets: HashMap<Cow<'d, [u8]>, u32>,
}

impl<'d> Writer<'d> {
    fn u32(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }

    fn head(&mut self, name: u32, kind: u32, vlen: u32, kind_flag: bool, size_or_type: u32) {
        self.u32(name);
        self.u32((kind_flag as u32) << 31 | kind << 24 | vlen.min(0xffff));
        self.u32(size_or_type);
    }

    /// The string offset of a name (0 for none); names that are not UTF-8 are stored lossily.
    fn name(&mut self, s: &'d [u8]) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if self.strs.is_empty() {
            self.strs.push(0);
        }
        if let Some(&o) = self.offsets.get(s) {
            return o;
        }
        let o = self.strs.len() as u32;
        match std::str::from_utf8(s) {
            Ok(_) => self.strs.extend_from_slice(s),
            Err(_) => self.strs.extend_from_slice(String::from_utf8_lossy(s).as_bytes()),
        }
        self.strs.push(0);
        self.offsets.insert(Cow::Borrowed(s), o);
        o
    }

    /// One type's record.
    fn node(&mut self, n: &TypeNode<'d>, items: &[Item<'d>], id: impl Fn(Ref) -> u32, index_type: u32) {
        let name = self.name(n.name);
        let size = n.size;
        let items = &items[..items.len().min(0xffff)];
        let vlen = items.len() as u32;
        match n.kind {
            NK::Int => {
                self.head(name, 1, 0, false, size);
                // Signed and bool, as pahole writes them (it never sets the char bit).
                let enc = (n.flags & F_SIGNED != 0) as u32 | ((n.flags & F_BOOL != 0) as u32) << 2;
                self.u32(enc << 24 | size.saturating_mul(8).min(128));
            }
            NK::Float => self.head(name, 16, 0, false, size),
            NK::Opaque => self.head(name, 4, 0, false, size),
            NK::Ptr => self.head(name, 2, 0, false, id(n.target)),
            NK::Typedef => self.head(name, 8, 0, false, id(n.target)),
            NK::Volatile => self.head(name, 9, 0, false, id(n.target)),
            NK::Const => self.head(name, 10, 0, false, id(n.target)),
            NK::Restrict => self.head(name, 11, 0, false, id(n.target)),
            NK::Array => {
                self.head(name, 3, 0, false, 0);
                self.u32(id(n.target));
                self.u32(index_type);
                self.u32(size);
            }
            NK::Struct | NK::Union => {
                // Bitfield widths go in the offsets (kind_flag) when every offset fits 24 bits.
                let bitfields = items.iter().any(|m| m.bits != 0);
                let kind_flag = bitfields && items.iter().all(|m| m.off < 1 << 24);
                self.head(name, if n.kind == NK::Struct { 4 } else { 5 }, vlen, kind_flag, size);
                for m in items {
                    let mname = self.name(m.name);
                    self.u32(mname);
                    self.u32(id(m.ty));
                    let off = u32::try_from(m.off).unwrap_or(u32::MAX);
                    self.u32(if kind_flag { m.bits.min(255) << 24 | off } else { off });
                }
            }
            NK::Enum => {
                let signed = n.flags & F_SIGNED != 0;
                let fits = |v: u64| if signed { v as i64 == v as i64 as i32 as i64 } else { v <= u32::MAX as u64 };
                let wide = n.size == 8 || !items.iter().all(|e| fits(e.off));
                self.head(name, if wide { 19 } else { 6 }, vlen, signed, size);
                for e in items {
                    let ename = self.name(e.name);
                    self.u32(ename);
                    self.u32(e.off as u32);
                    if wide {
                        self.u32((e.off >> 32) as u32);
                    }
                }
            }
            NK::Fwd => self.head(name, 7, 0, n.flags & F_UNION != 0, 0),
            NK::FuncProto => {
                let variadic = n.flags & F_VARIADIC != 0 && vlen < 0xffff;
                self.head(0, 13, vlen + variadic as u32, false, id(n.target));
                for p in items {
                    let pname = self.name(p.name);
                    self.u32(pname);
                    self.u32(id(p.ty));
                }
                if variadic {
                    self.u32(0);
                    self.u32(0);
                }
            }
            NK::Skip => {}
        }
    }

    /// Header, types and strings.
    fn blob(&self) -> Vec<u8> {
        let strs: &[u8] = if self.strs.is_empty() { &[0] } else { &self.strs };
        let mut b = Vec::with_capacity(24 + self.types.len() + strs.len());
        b.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
        for v in [24u32, 0, self.types.len() as u32, self.types.len() as u32, strs.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.types);
        b.extend_from_slice(strs);
        b
    }
}
