//! Questions about types: lookup by name and kind (or by C spelling), resolving aliases, sizes,
//! member paths (`se.sum_exec_runtime`, `a.b[3].c`, anonymous members crossed, bitfields),
//! enumerators, and the variables BTF records. Split BTF answers for its base's types too.
//!
//! Every walk is bounded: alias and array chains by [`MAX_DEPTH`], searches through anonymous
//! members and C spelling by a budget of visited entries, so a hostile blob with cycles or
//! exponential nesting gets an error, not a hang.

use super::index::{EnumIndex, NameIndex};
use super::{Btf, Enumerator, IntEncoding, Kind, Linkage, Type, TypeError, TypeId};

/// Longest chain of typedefs/qualifiers/arrays followed (C types nest far less).
pub(super) const MAX_DEPTH: usize = 64;
/// Most entries visited by one search through anonymous members or one C spelling.
pub(super) const BUDGET: usize = 1 << 16;

/// Where a member (or array element) is, from [`Btf::member`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's declared type (not resolved: may be a typedef).
    pub ty: TypeId,
    /// Offset from the start of the outer type, in bits.
    pub bit_offset: u64,
    /// Width in bits when the member is a bitfield.
    pub bitfield_size: Option<u8>,
}

impl MemberInfo {
    /// Offset in bytes (of the byte holding the first bit, for a bitfield).
    pub fn byte_offset(&self) -> u64 {
        self.bit_offset / 8
    }
}

/// A variable a DATASEC lists: its name, offset in the section and size.
pub type SectionVar<'b> = (&'b str, u32, u32);

/// A global variable BTF describes (`VAR`), with its place when a DATASEC lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarInfo {
    /// The VAR entry.
    pub var: TypeId,
    /// The variable's type.
    pub ty: TypeId,
    pub linkage: Linkage,
    /// The DATASEC listing the variable and the entry's offset and size (for `.data..percpu`,
    /// the per-CPU offset).
    pub section: Option<(TypeId, u32, u32)>,
}

impl<'a> Btf<'a> {
    fn names(&self) -> &NameIndex {
        self.names.get_or_init(|| NameIndex::build(self))
    }

    fn enum_index(&self) -> &EnumIndex {
        self.enumerators.get_or_init(|| EnumIndex::build(self))
    }

    /// Builds the name index now (it is otherwise built by the first lookup by name), and the
    /// enumerator index when `enumerators` is set; the base's too.
    pub fn build_indexes(&self, enumerators: bool) {
        if let Some(b) = &self.base {
            b.build_indexes(enumerators);
        }
        self.names();
        if enumerators {
            self.enum_index();
        }
    }

    /// Calls `f` with every type named `name`, the base's first, in ascending ID order, until
    /// it returns `Some`.
    fn each_named<'s, T>(&'s self, name: &str, f: &mut impl FnMut(Type<'s>) -> Option<T>) -> Option<T> {
        if name.is_empty() {
            return None;
        }
        if let Some(b) = &self.base
            && let Some(found) = b.each_named(name, f)
        {
            return Some(found);
        }
        self.names().find(self, name).find_map(|i| f(self.type_at(i)))
    }

    /// All types named `name` (any kind, VAR, FUNC and tags included), in ascending ID order.
    pub fn find_all(&self, name: &str) -> Vec<TypeId> {
        let mut out = Vec::new();
        self.each_named(name, &mut |t| {
            out.push(t.id());
            None::<()>
        });
        out
    }

    /// The first type of this name and kind (`Kind::Struct` never returns a FWD). For enums,
    /// `Kind::Enum` also finds an ENUM64.
    pub fn find(&self, name: &str, kind: Kind) -> Option<TypeId> {
        self.each_named(name, &mut |t| {
            let k = t.kind();
            (k == kind || (kind == Kind::Enum && k == Kind::Enum64)).then_some(t.id())
        })
    }

    /// A type by its C spelling: `struct rq`, `union thread_union`, `enum pid_type`, or a bare
    /// name (a typedef or base type such as `u64`, `unsigned int`; failing those, a struct,
    /// union or enum of that tag, so `task_struct` works). A forward declaration is returned
    /// only when no definition exists.
    pub fn lookup(&self, c_name: &str) -> Result<TypeId, TypeError> {
        let s = c_name.trim();
        let tagged =
            |prefix: &str| s.strip_prefix(prefix).filter(|r| r.starts_with(char::is_whitespace)).map(str::trim);
        let order: &[Kind] = &[Kind::Typedef, Kind::Int, Kind::Float, Kind::Struct, Kind::Union, Kind::Enum];
        let (name, kinds, fwd_union) = if let Some(n) = tagged("struct") {
            (n, &[Kind::Struct][..], Some(false))
        } else if let Some(n) = tagged("union") {
            (n, &[Kind::Union][..], Some(true))
        } else if let Some(n) = tagged("enum") {
            (n, &[Kind::Enum][..], None)
        } else {
            (s, order, None)
        };
        if let Some(id) = kinds.iter().find_map(|&k| self.find(name, k)) {
            return Ok(id);
        }
        if let Some(union) = fwd_union
            && let Some(id) =
                self.each_named(name, &mut |t| (t.kind() == Kind::Fwd && t.fwd_is_union() == union).then_some(t.id()))
        {
            return Ok(id);
        }
        Err(TypeError::NotFound)
    }

    /// `id` with typedefs, const, volatile, restrict and type tags taken off (void stays 0).
    pub fn resolve(&self, id: TypeId) -> Result<TypeId, TypeError> {
        let mut cur = id;
        for _ in 0..MAX_DEPTH {
            if cur == TypeId::VOID {
                return Ok(cur);
            }
            let t = self.ty(cur)?;
            match t.kind() {
                k if k.is_alias() => cur = t.target().unwrap_or(TypeId::VOID),
                _ => return Ok(cur),
            }
        }
        Err(TypeError::TooDeep(id))
    }

    /// The resolved type's entry (`NoSuchType(0)` for void).
    pub fn resolved(&self, id: TypeId) -> Result<Type<'_>, TypeError> {
        self.ty(self.resolve(id)?)
    }

    /// Size in bytes: aliases resolved, arrays as length × element size, pointers as
    /// [`Btf::pointer_size`]; a VAR has its type's size. `Incomplete` for void, FWD, FUNC and
    /// FUNC_PROTO.
    pub fn size_of(&self, id: TypeId) -> Result<u64, TypeError> {
        let mut cur = id;
        let mut count: u64 = 1;
        for _ in 0..MAX_DEPTH {
            if cur == TypeId::VOID {
                return Err(TypeError::Incomplete(cur));
            }
            let t = self.ty(cur)?;
            let unit = match t.kind() {
                Kind::Int | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Float | Kind::Datasec => {
                    t.size().unwrap_or(0) as u64
                }
                Kind::Ptr => self.pointer_size as u64,
                Kind::Array => {
                    let a = t.array().ok_or(TypeError::NoSuchType(cur))?;
                    count = count.checked_mul(a.nelems as u64).ok_or(TypeError::Overflow(id))?;
                    cur = a.elem;
                    continue;
                }
                Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Var
                | Kind::DeclTag => {
                    cur = t.target().unwrap_or(TypeId::VOID);
                    continue;
                }
                Kind::Fwd | Kind::Func | Kind::FuncProto => return Err(TypeError::Incomplete(cur)),
            };
            return count.checked_mul(unit).ok_or(TypeError::Overflow(id));
        }
        Err(TypeError::TooDeep(id))
    }

    /// The integer encoding of `id` after resolving aliases (None when it is no INT).
    pub fn int_encoding(&self, id: TypeId) -> Result<Option<IntEncoding>, TypeError> {
        match self.resolve(id)? {
            TypeId::VOID => Ok(None),
            r => Ok(self.ty(r)?.int()),
        }
    }

    /// Locates a member path in type `id` (aliases resolved at every step): names separated by
    /// dots, array indexes in brackets (decimal or 0x hex), e.g. `se.sum_exec_runtime`,
    /// `raw_lock.val.counter`, `a.b[3].c`, `[2].x` on an array type. Members of anonymous
    /// structs and unions are found as if they were the outer type's. An empty path is `id`
    /// itself. Indexes must be below the array length, except for flexible arrays (length 0).
    pub fn member(&self, id: TypeId, path: &str) -> Result<MemberInfo, TypeError> {
        let b = path.as_bytes();
        let mut i = 0;
        let mut info = MemberInfo { ty: id, bit_offset: 0, bitfield_size: None };
        let mut want_name = !b.is_empty() && b[0] != b'[';
        loop {
            if want_name {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if i == start {
                    return Err(TypeError::BadPath { at: i });
                }
                let name = &path[start..i];
                let sid = self.resolve(info.ty)?;
                let composite = sid != TypeId::VOID && matches!(self.ty(sid)?.kind(), Kind::Struct | Kind::Union);
                if !composite {
                    return Err(TypeError::NotComposite { ty: sid, at: start });
                }
                let mut budget = BUDGET;
                let m =
                    self.find_member(sid, name, 0, &mut budget)?.ok_or(TypeError::NoMember { ty: sid, at: start })?;
                info.bit_offset = info.bit_offset.checked_add(m.bit_offset).ok_or(TypeError::Overflow(sid))?;
                info.ty = m.ty;
                info.bitfield_size = m.bitfield_size;
                want_name = false;
            }
            match b.get(i) {
                None => return Ok(info),
                Some(b'.') => {
                    i += 1;
                    want_name = true;
                }
                Some(b'[') => {
                    let at = i;
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i] != b']' {
                        i += 1;
                    }
                    if i == b.len() {
                        return Err(TypeError::BadPath { at: i });
                    }
                    let index = parse_index(&path[start..i]).ok_or(TypeError::BadPath { at: start })?;
                    i += 1;
                    let aid = self.resolve(info.ty)?;
                    let array = (aid != TypeId::VOID).then(|| self.ty(aid)).transpose()?.and_then(|t| t.array());
                    let array = array.ok_or(TypeError::NotArray { ty: aid, at })?;
                    if array.nelems != 0 && index >= array.nelems as u64 {
                        return Err(TypeError::IndexOutOfBounds { ty: aid, at });
                    }
                    let elem_bits = self.size_of(array.elem)?.checked_mul(8).ok_or(TypeError::Overflow(aid))?;
                    let delta = index.checked_mul(elem_bits).ok_or(TypeError::Overflow(aid))?;
                    info.bit_offset = info.bit_offset.checked_add(delta).ok_or(TypeError::Overflow(aid))?;
                    info.ty = array.elem;
                    info.bitfield_size = None;
                }
                Some(_) => return Err(TypeError::BadPath { at: i }),
            }
        }
    }

    /// The member `name` of struct/union `sid`, searching anonymous members depth first.
    fn find_member(
        &self,
        sid: TypeId,
        name: &str,
        depth: usize,
        budget: &mut usize,
    ) -> Result<Option<MemberInfo>, TypeError> {
        if depth > MAX_DEPTH {
            return Err(TypeError::TooDeep(sid));
        }
        let t = self.ty(sid)?;
        for m in t.members() {
            *budget = budget.checked_sub(1).ok_or(TypeError::TooDeep(sid))?;
            if m.name == name {
                let mut info = MemberInfo { ty: m.ty, bit_offset: m.bit_offset as u64, bitfield_size: None };
                if m.bitfield_size != 0 {
                    info.bitfield_size = Some(m.bitfield_size);
                } else if let Ok(Some(int)) = self.int_encoding(m.ty)
                    && (int.offset != 0 || (int.bits as u32) < int.size.saturating_mul(8))
                {
                    // Bitfield in the pre-kind_flag encoding: width and offset in the int type.
                    info.bitfield_size = Some(int.bits);
                    info.bit_offset += int.offset as u64;
                }
                return Ok(Some(info));
            }
            if m.name.is_empty() {
                let inner = self.resolve(m.ty)?;
                if inner != TypeId::VOID
                    && matches!(self.ty(inner)?.kind(), Kind::Struct | Kind::Union)
                    && let Some(mut found) = self.find_member(inner, name, depth + 1, budget)?
                {
                    found.bit_offset += m.bit_offset as u64;
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// Byte offset of a member path (see [`Btf::member`]).
    pub fn offset_of(&self, id: TypeId, path: &str) -> Result<u64, TypeError> {
        Ok(self.member(id, path)?.byte_offset())
    }

    /// [`Btf::member`] of the type spelt `c_type` (see [`Btf::lookup`]).
    pub fn member_of(&self, c_type: &str, path: &str) -> Result<MemberInfo, TypeError> {
        self.member(self.lookup(c_type)?, path)
    }

    /// [`Btf::member`] from one string naming the type first: `rq.clock`,
    /// `task_struct.se.sum_exec_runtime`, `struct zone.lock.rlock.raw_lock`, `pid.tasks[1]`.
    /// The type part (up to the first `.` or `[`) is looked up as by [`Btf::lookup`]; positions
    /// in errors count from the start of `spec`.
    pub fn member_path(&self, spec: &str) -> Result<MemberInfo, TypeError> {
        let split = spec.find(['.', '[']).unwrap_or(spec.len());
        let id = self.lookup(&spec[..split])?;
        let path_start = if spec[split..].starts_with('.') { split + 1 } else { split };
        let shift = |e: TypeError| match e {
            TypeError::NoMember { ty, at } => TypeError::NoMember { ty, at: at + path_start },
            TypeError::NotComposite { ty, at } => TypeError::NotComposite { ty, at: at + path_start },
            TypeError::NotArray { ty, at } => TypeError::NotArray { ty, at: at + path_start },
            TypeError::IndexOutOfBounds { ty, at } => TypeError::IndexOutOfBounds { ty, at: at + path_start },
            TypeError::BadPath { at } => TypeError::BadPath { at: at + path_start },
            other => other,
        };
        if split < spec.len() && path_start == spec.len() {
            return Err(TypeError::BadPath { at: spec.len() });
        }
        self.member(id, &spec[path_start..]).map_err(shift)
    }

    /// The member path at byte `off` of type `id` (`node_zones[1].lock`), innermost member
    /// the offset falls in, with each structure passed through: (its type, its byte offset
    /// from the start). Anonymous members add no name.
    /// Structures `opaque` names (locks, say) are not entered: the path ends at them.
    pub fn path_at(&self, id: TypeId, off: u64, opaque: &dyn Fn(&str) -> bool) -> (String, Vec<(TypeId, u64)>) {
        let mut path = String::new();
        let mut passed = Vec::new();
        let (mut ty, mut off, mut base) = (id, off, 0u64);
        for _ in 0..32 {
            let Ok(t) = self.resolved(ty) else { break };
            match t.kind() {
                Kind::Struct | Kind::Union if passed.is_empty() || !opaque(t.name()) => {
                    passed.push((t.id(), base));
                    let hit = t.members().filter(|m| m.bitfield_size == 0).find(|m| {
                        let start = u64::from(m.bit_offset / 8);
                        self.size_of(m.ty).is_ok_and(|n| (start..start + n.max(1)).contains(&off))
                    });
                    let Some(m) = hit else { break };
                    if !m.name.is_empty() {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(m.name);
                    }
                    let start = u64::from(m.bit_offset / 8);
                    (ty, off, base) = (m.ty, off - start, base + start);
                }
                Kind::Array => {
                    let Some(a) = t.array() else { break };
                    let Ok(size) = self.size_of(a.elem) else { break };
                    let i = off / size.max(1);
                    path.push_str(&format!("[{i}]"));
                    (ty, off, base) = (a.elem, off - i * size, base + i * size);
                }
                _ => break,
            }
        }
        if off != 0 {
            path.push_str(&format!("+{off:#x}"));
        }
        (path, passed)
    }

    /// The enumerator `name` of enum `id` (aliases resolved).
    pub fn enum_value(&self, id: TypeId, name: &str) -> Option<Enumerator<'_>> {
        self.resolved(id).ok()?.enumerators().find(|e| e.name == name)
    }

    /// The name of the first enumerator of enum `id` with this value. Compared on the enum's
    /// size, so a value read from memory matches whether sign- or zero-extended.
    pub fn enum_name(&self, id: TypeId, value: u64) -> Option<&str> {
        let t = self.resolved(id).ok()?;
        let bits = t.size()?.saturating_mul(8);
        let mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        t.enumerators().find(|e| e.raw & mask == value & mask).map(|e| e.name)
    }

    /// An enumerator by name among all enums, named or anonymous (`PIDTYPE_PID`,
    /// `TASK_COMM_LEN`): the enum's ID and the enumerator. The first (lowest ID) wins.
    pub fn find_enumerator(&self, name: &str) -> Option<(TypeId, Enumerator<'_>)> {
        if let Some(b) = &self.base
            && let Some(found) = b.find_enumerator(name)
        {
            return Some(found);
        }
        let (i, j) = self.enum_index().find(self, name).next()?;
        let t = self.type_at(i);
        Some((t.id(), t.enumerators().nth(j)?))
    }

    /// A global variable BTF describes (VAR entries exist mostly for per-CPU variables).
    pub fn find_var(&self, name: &str) -> Option<VarInfo> {
        let var = self.find(name, Kind::Var)?;
        let t = self.ty(var).ok()?;
        let section = self.datasec_of(var);
        Some(VarInfo { var, ty: t.target()?, linkage: t.linkage()?, section })
    }

    /// The variables a DATASEC (`.data..percpu`, …) of this blob lists: (name, offset in the
    /// section, size), and the section's size; `None` when no DATASEC has that name.
    pub fn section_vars(&self, section: &str) -> Option<(Vec<SectionVar<'_>>, u32)> {
        let sec = self.names().datasecs.iter().map(|&i| self.type_at(i as usize)).find(|t| t.name() == section)?;
        let vars = sec
            .datasec_vars()
            .filter_map(|v| Some((self.ty(v.var).ok()?.name(), v.offset, v.size)))
            .filter(|(name, _, _)| !name.is_empty())
            .collect();
        Some((vars, sec.size().unwrap_or(0)))
    }

    /// The DATASEC entry listing `var`, searching this blob and its bases.
    fn datasec_of(&self, var: TypeId) -> Option<(TypeId, u32, u32)> {
        let own = self.names().datasecs.iter().find_map(|&i| {
            let sec = self.type_at(i as usize);
            sec.datasec_vars().find(|v| v.var == var).map(|v| (sec.id(), v.offset, v.size))
        });
        own.or_else(|| self.base.as_ref()?.datasec_of(var))
    }
}

/// `123` or `0x7b`.
fn parse_index(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
    .filter(|_| !s.starts_with('+'))
}
