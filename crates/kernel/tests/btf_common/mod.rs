//! Shared by the BTF tests on real blobs: a self-consistency check of a whole blob (every type
//! spelt and sized, struct layouts without overlaps, every member path, name, enumerator and
//! variable lookup answering with what the entries say).

#![allow(dead_code)]

use lockscope_kernel::btf::{Btf, Kind, TypeError};

/// What [`check_blob`] looked at.
#[derive(Debug, Default)]
pub struct Stats {
    pub structs: usize,
    pub unions: usize,
    pub members: usize,
    pub bitfields: usize,
    pub anonymous_members: usize,
    pub enumerators: usize,
    pub vars: usize,
}

/// Checks every type of `btf` (a base's types too) for consistency; panics naming the first
/// type that is not.
pub fn check_blob(btf: &Btf) -> Stats {
    let mut st = Stats::default();
    for id in btf.ids() {
        let t = btf.ty(id).unwrap();
        let what = || format!("{t:?}");
        let name = btf.type_name(id).unwrap_or_else(|e| panic!("{}: no C spelling: {e}", what()));
        match t.kind() {
            Kind::Fwd | Kind::Func | Kind::FuncProto => {
                assert!(matches!(btf.size_of(id), Err(TypeError::Incomplete(_))), "{}", what())
            }
            Kind::Ptr => assert_eq!(btf.size_of(id), Ok(btf.pointer_size() as u64), "{}", what()),
            _ => match btf.size_of(id) {
                Ok(_) => {}
                // Aliases of void or of incomplete types (`const void`, a typedef of a FWD).
                Err(TypeError::Incomplete(inner)) => {
                    let k = (inner.0 != 0).then(|| btf.ty(inner).unwrap().kind());
                    assert!(matches!(k, None | Some(Kind::Fwd | Kind::Func | Kind::FuncProto)), "{}", what());
                }
                Err(e) => panic!("{} ({name}): no size: {e}", what()),
            },
        }
        if !t.name().is_empty() && matches!(t.kind(), Kind::Struct | Kind::Union | Kind::Enum | Kind::Typedef) {
            // Named types are found by name and kind, and by their C spelling, as a type of
            // the same name and kind (the first of duplicates).
            let found = btf.find(t.name(), t.kind()).unwrap_or_else(|| panic!("{} not found by name", what()));
            assert!(found <= id, "{}", what());
            assert!(btf.find_all(t.name()).contains(&id), "{}", what());
            let spelt = btf.ty(btf.lookup(&name).unwrap()).unwrap();
            assert_eq!((spelt.name(), spelt.kind()), (t.name(), t.kind()), "{name}");
        }
        match t.kind() {
            Kind::Struct | Kind::Union => check_layout(btf, &t, &mut st),
            Kind::Enum | Kind::Enum64 => {
                for e in t.enumerators() {
                    st.enumerators += 1;
                    let back = btf.enum_name(id, e.raw).unwrap();
                    assert_eq!(btf.enum_value(id, back).unwrap().raw, e.raw, "{}", what());
                    let (_, first) = btf.find_enumerator(e.name).unwrap_or_else(|| panic!("{} not indexed", e.name));
                    assert_eq!(first.name, e.name);
                }
            }
            Kind::Datasec => {
                let mut end = 0u64;
                for v in t.datasec_vars() {
                    let var = btf.ty(v.var).unwrap();
                    assert!(matches!(var.kind(), Kind::Var | Kind::Func), "{}: entry {var:?}", what());
                    assert!(v.offset as u64 >= end, "{}: {var:?} overlaps", what());
                    end = v.offset as u64 + v.size as u64;
                    if var.kind() == Kind::Var {
                        st.vars += 1;
                        assert_eq!(btf.size_of(v.var).unwrap(), v.size as u64, "{var:?}");
                        let info = btf.find_var(var.name()).unwrap();
                        if info.var == v.var {
                            assert_eq!(info.section, Some((id, v.offset, v.size)), "{var:?}");
                        }
                    }
                }
                assert!(end <= t.size().unwrap() as u64, "{}", what());
            }
            _ => {}
        }
    }
    st
}

/// Members inside the structure, in order and without overlap (struct), each found again by
/// its path, anonymous members' members through the outer type.
fn check_layout(btf: &Btf, t: &lockscope_kernel::btf::Type, st: &mut Stats) {
    let id = t.id();
    let size_bits = t.size().unwrap() as u64 * 8;
    let is_struct = t.kind() == Kind::Struct;
    if is_struct {
        st.structs += 1
    } else {
        st.unions += 1
    }
    let mut end = 0u64;
    for m in t.members() {
        st.members += 1;
        let bits = if m.bitfield_size != 0 {
            st.bitfields += 1;
            m.bitfield_size as u64
        } else {
            let bits = btf.size_of(m.ty).unwrap_or_else(|e| panic!("{t:?}.{}: {e}", m.name)) * 8;
            assert_eq!(m.bit_offset % 8, 0, "{t:?}.{} not byte aligned", m.name);
            bits
        };
        let start = m.bit_offset as u64;
        assert!(start + bits <= size_bits, "{t:?}.{} ends past the struct", m.name);
        if is_struct {
            assert!(start >= end, "{t:?}.{} overlaps the previous member", m.name);
            end = start + bits;
        }
        if m.name.is_empty() {
            st.anonymous_members += 1;
            let inner = btf.resolved(m.ty).unwrap();
            assert!(matches!(inner.kind(), Kind::Struct | Kind::Union), "{t:?}: anonymous {inner:?}");
            for im in inner.members().filter(|im| !im.name.is_empty()) {
                let found = btf.member(id, im.name).unwrap();
                assert_eq!(found.bit_offset - start, btf.member(inner.id(), im.name).unwrap().bit_offset);
            }
        } else {
            let found = btf.member(id, m.name).unwrap_or_else(|e| panic!("{t:?}.{}: {e}", m.name));
            assert_eq!(found.ty, m.ty);
            if m.bitfield_size != 0 {
                assert_eq!((found.bit_offset, found.bitfield_size), (start, Some(m.bitfield_size)));
            } else if found.bitfield_size.is_none() {
                assert_eq!(found.bit_offset, start);
            }
        }
    }
}
