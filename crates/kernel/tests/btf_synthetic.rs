//! BTF reader on blobs written here, field by field after include/uapi/linux/btf.h: every kind,
//! both byte orders, split BTF, each load error with its offset, the query API's corner cases
//! (anonymous members, both bitfield encodings, flexible arrays, cycles, exponential nesting),
//! and mutated blobs that must neither panic nor hang.

use lockscope_kernel::btf::{Btf, BtfErrorKind, Kind, Linkage, TypeError, TypeId};
use std::sync::Arc;

/// Writes BTF blobs.
struct Builder {
    types: Vec<u32>,
    strs: Vec<u8>,
    next_id: u32,
    /// String offsets this blob's strings start at (the base's string length for split BTF).
    str_base: u32,
}

const INT_SIGNED: u32 = 1;
const INT_CHAR: u32 = 2;
const INT_BOOL: u32 = 4;

impl Builder {
    fn new() -> Builder {
        Builder { types: Vec::new(), strs: vec![0], next_id: 1, str_base: 0 }
    }

    /// Split BTF over a base with `base_last_id` types and `base_str_len` bytes of strings.
    fn split(base_last_id: u32, base_str_len: u32) -> Builder {
        Builder { types: Vec::new(), strs: Vec::new(), next_id: base_last_id + 1, str_base: base_str_len }
    }

    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() && self.str_base == 0 {
            return 0;
        }
        let off = self.str_base + self.strs.len() as u32;
        self.strs.extend_from_slice(name.as_bytes());
        self.strs.push(0);
        off
    }

    fn ty(&mut self, name: &str, kind: u32, kflag: bool, vlen: u32, size_or_type: u32) -> TypeId {
        let n = self.s(name);
        self.raw(n, kind, kflag, vlen, size_or_type)
    }

    fn raw(&mut self, name_off: u32, kind: u32, kflag: bool, vlen: u32, size_or_type: u32) -> TypeId {
        self.types.extend([name_off, (kflag as u32) << 31 | kind << 24 | vlen, size_or_type]);
        self.next_id += 1;
        TypeId(self.next_id - 1)
    }

    fn int(&mut self, name: &str, size: u32, enc: u32, bits: u32, offset: u32) -> TypeId {
        let id = self.ty(name, 1, false, 0, size);
        self.types.push(enc << 24 | offset << 16 | bits);
        id
    }

    fn ptr(&mut self, to: TypeId) -> TypeId {
        self.ty("", 2, false, 0, to.0)
    }

    fn array(&mut self, elem: TypeId, index: TypeId, n: u32) -> TypeId {
        let id = self.ty("", 3, false, 0, 0);
        self.types.extend([elem.0, index.0, n]);
        id
    }

    /// Members (name, type, bit offset, bitfield size); kind_flag set when any has a size.
    fn composite(&mut self, union: bool, name: &str, size: u32, members: &[(&str, TypeId, u32, u32)]) -> TypeId {
        let kflag = members.iter().any(|m| m.3 != 0);
        let id = self.ty(name, if union { 5 } else { 4 }, kflag, members.len() as u32, size);
        for &(n, t, off, bits) in members {
            let n = self.s(n);
            self.types.extend([n, t.0, if kflag { bits << 24 | off } else { off }]);
        }
        id
    }

    fn enum32(&mut self, name: &str, size: u32, signed: bool, values: &[(&str, i64)]) -> TypeId {
        let id = self.ty(name, 6, signed, values.len() as u32, size);
        for &(n, v) in values {
            let n = self.s(n);
            self.types.extend([n, v as u32]);
        }
        id
    }

    fn enum64(&mut self, name: &str, signed: bool, values: &[(&str, u64)]) -> TypeId {
        let id = self.ty(name, 19, signed, values.len() as u32, 8);
        for &(n, v) in values {
            let n = self.s(n);
            self.types.extend([n, v as u32, (v >> 32) as u32]);
        }
        id
    }

    fn proto(&mut self, ret: TypeId, params: &[(&str, TypeId)]) -> TypeId {
        let id = self.ty("", 13, false, params.len() as u32, ret.0);
        for &(n, t) in params {
            let n = self.s(n);
            self.types.extend([n, t.0]);
        }
        id
    }

    fn var(&mut self, name: &str, ty: TypeId, linkage: u32) -> TypeId {
        let id = self.ty(name, 14, false, 0, ty.0);
        self.types.push(linkage);
        id
    }

    fn datasec(&mut self, name: &str, size: u32, vars: &[(TypeId, u32, u32)]) -> TypeId {
        let id = self.ty(name, 15, false, vars.len() as u32, size);
        for &(v, off, sz) in vars {
            self.types.extend([v.0, off, sz]);
        }
        id
    }

    fn decl_tag(&mut self, name: &str, to: TypeId, component: i32) -> TypeId {
        let id = self.ty(name, 17, false, 0, to.0);
        self.types.push(component as u32);
        id
    }

    fn build(&self, big_endian: bool) -> Vec<u8> {
        let w = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let type_len = self.types.len() as u32 * 4;
        let mut out = if big_endian { vec![0xeb, 0x9f, 1, 0] } else { vec![0x9f, 0xeb, 1, 0] };
        for v in [24, 0, type_len, type_len, self.strs.len() as u32] {
            out.extend(w(v));
        }
        for &v in &self.types {
            out.extend(w(v));
        }
        out.extend(&self.strs);
        out
    }
}

/// IDs of the sample "kernel" below.
struct Sample {
    int: TypeId,
    uint: TypeId,
    char_: TypeId,
    bool_: TypeId,
    ulong: TypeId,
    u64_: TypeId,
    list_head: TypeId,
    lock: TypeId,
    task: TypeId,
    node: TypeId,
    state: TypeId,
    anon_enum: TypeId,
    big: TypeId,
    func: TypeId,
    fn_ptr: TypeId,
    var: TypeId,
    sec: TypeId,
    opaque: TypeId,
    old_bits: TypeId,
}

/// A small kernel-like type graph with every kind.
fn sample() -> (Builder, Sample) {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32, 0);
    let uint = b.int("unsigned int", 4, 0, 32, 0);
    let char_ = b.int("char", 1, INT_SIGNED | INT_CHAR, 8, 0);
    let bool_ = b.int("_Bool", 1, INT_BOOL, 8, 0);
    let ulong = b.int("long unsigned int", 8, 0, 64, 0);
    let u64_ = b.ty("u64", 8, false, 0, ulong.0);
    // struct list_head { struct list_head *next, *prev; }
    let list_head = TypeId(b.next_id);
    let lh_ptr = TypeId(b.next_id + 1);
    b.composite(false, "list_head", 16, &[("next", lh_ptr, 0, 0), ("prev", lh_ptr, 64, 0)]);
    b.ptr(list_head);
    // A qspinlock: union { int val; struct { u8 locked; u8 pending; }; struct { u16 lp; u16 tail; }; }
    let u8_ = b.int("unsigned char", 1, 0, 8, 0);
    let u16_ = b.int("short unsigned int", 2, 0, 16, 0);
    let s1 = b.composite(false, "", 2, &[("locked", u8_, 0, 0), ("pending", u8_, 8, 0)]);
    let s2 = b.composite(false, "", 4, &[("locked_pending", u16_, 0, 0), ("tail", u16_, 16, 0)]);
    let inner = b.composite(true, "", 4, &[("val", int, 0, 0), ("", s1, 0, 0), ("", s2, 0, 0)]);
    let lock = b.composite(false, "qspinlock", 4, &[("", inner, 0, 0)]);
    let lock_t = b.ty("arch_spinlock_t", 8, false, 0, lock.0);
    // const volatile qualifiers and a type tag on the way to char.
    let cchar = b.ty("", 10, false, 0, char_.0);
    let ccharp = b.ptr(cchar);
    let index = int;
    let comm = b.array(char_, index, 16);
    let nodes = b.array(list_head, index, 4);
    let flex = b.array(u64_, index, 0);
    let vol = b.ty("", 9, false, 0, uint.0);
    let tagged = b.ty("user", 18, false, 0, u64_.0);
    // struct node { int key; struct list_head links[4]; }
    let node = b.composite(false, "node", 72, &[("key", int, 0, 0), ("links", nodes, 64, 0)]);
    let node_arr = b.array(node, index, 3);
    let task = b.composite(
        false,
        "task_struct",
        304,
        &[
            ("state", vol, 0, 0),
            ("flag_a", uint, 32, 1),
            ("flag_b", uint, 33, 1),
            ("flag_c", uint, 34, 3),
            ("lock", lock_t, 64, 0),
            ("tasks", list_head, 128, 0),
            ("comm", comm, 256, 0),
            ("name", ccharp, 384, 0),
            ("nodes", node_arr, 448, 0),
            ("user_ptr", tagged, 2176, 0),
            ("tail", flex, 2432, 0),
        ],
    );
    // Old-style bitfields: kind_flag 0, width in special int types.
    let bits3 = b.int("unsigned int", 4, 0, 3, 0);
    let bits5_at2 = b.int("unsigned int", 4, 0, 5, 2);
    let old_bits = b.composite(false, "old_bits", 4, &[("three", bits3, 0, 0), ("five", bits5_at2, 3, 0)]);
    let state = b.enum32("pid_type", 4, false, &[("PIDTYPE_PID", 0), ("PIDTYPE_TGID", 1), ("PIDTYPE_MAX", 2)]);
    let anon_enum = b.enum32("", 4, true, &[("TASK_COMM_LEN", 16), ("NEG_ONE", -1)]);
    let big = b.enum64("big", false, &[("SMALL", 1), ("HUGE", 0xffff_ffff_0000_0001)]);
    let fwd = b.ty("opaque", 7, false, 0, 0);
    let ufwd = b.ty("uopaque", 7, true, 0, 0);
    let opaque_p = b.ptr(fwd);
    let proto = b.proto(int, &[("n", int), ("p", ccharp), ("", TypeId(0))]);
    let func = b.ty("printk", 12, false, 1, proto.0);
    let vproto = b.proto(TypeId(0), &[]);
    let fn_ptr = b.ptr(vproto);
    let arr_ptr = b.ptr(comm);
    let const_ptr = b.ty("", 10, false, 0, ccharp.0);
    let ptr_arr = b.array(ccharp, index, 4);
    let restrict = b.ty("", 11, false, 0, opaque_p.0);
    let float = b.ty("double", 16, false, 0, 8);
    let var = b.var("runqueues", task, 1);
    let svar = b.var("static_thing", u64_, 0);
    let sec = b.datasec(".data..percpu", 4096, &[(var, 0x100, 304), (svar, 0x400, 8)]);
    b.decl_tag("tag", task, 1);
    // A second, later definition of a duplicate name (as BTF dedup sometimes leaves).
    b.composite(false, "list_head", 16, &[("next", lh_ptr, 0, 0), ("prev", lh_ptr, 64, 0)]);
    let _ = (ufwd, fn_ptr, arr_ptr, const_ptr, ptr_arr, restrict, float);
    (
        b,
        Sample {
            int,
            uint,
            char_,
            bool_,
            ulong,
            u64_,
            list_head,
            lock,
            task,
            node,
            state,
            anon_enum,
            big,
            func,
            fn_ptr,
            var,
            sec,
            opaque: fwd,
            old_bits,
        },
    )
}

fn load(bytes: &[u8]) -> Btf<'_> {
    Btf::parse(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_kind_in_both_byte_orders() {
    let (b, s) = sample();
    for big in [false, true] {
        let bytes = b.build(big);
        let btf = load(&bytes);
        assert_eq!(btf.is_big_endian(), big);
        assert_eq!(btf.first_id(), TypeId(1));
        assert_eq!(btf.last_id().0, b.next_id - 1);
        assert_eq!(btf.pointer_size(), 8, "size of long");
        let kinds: std::collections::HashSet<Kind> = btf.ids().map(|id| btf.ty(id).unwrap().kind()).collect();
        assert_eq!(kinds.len(), 19, "{kinds:?}");

        let int = btf.ty(s.int).unwrap().int().unwrap();
        assert!(int.signed && int.size == 4 && int.bits == 32 && !int.is_char && !int.is_bool);
        let c = btf.ty(s.char_).unwrap().int().unwrap();
        assert!(c.is_char && c.signed);
        assert!(btf.ty(s.bool_).unwrap().int().unwrap().is_bool);
        assert_eq!(btf.int_encoding(s.u64_).unwrap().unwrap().size, 8);
        assert_eq!(btf.int_encoding(s.list_head), Ok(None));

        assert_eq!(btf.find("task_struct", Kind::Struct), Some(s.task));
        assert_eq!(btf.lookup("struct task_struct"), Ok(s.task));
        assert_eq!(btf.lookup("task_struct"), Ok(s.task));
        assert_eq!(btf.lookup("  struct   node "), Ok(s.node));
        assert_eq!(btf.lookup("u64"), Ok(s.u64_));
        assert_eq!(btf.lookup("unsigned int"), Ok(s.uint), "the first of the two");
        assert_eq!(btf.lookup("enum pid_type"), Ok(s.state));
        assert_eq!(btf.lookup("enum big"), Ok(s.big));
        assert_eq!(btf.lookup("struct opaque"), Ok(s.opaque), "a FWD when nothing else");
        assert_eq!(btf.lookup("union opaque"), Err(TypeError::NotFound));
        assert!(btf.lookup("union uopaque").is_ok());
        assert_eq!(btf.lookup("struct printk"), Err(TypeError::NotFound));
        assert_eq!(btf.lookup("structx"), Err(TypeError::NotFound));
        assert_eq!(btf.find("task_struct", Kind::Union), None);
        assert_eq!(btf.find("", Kind::Struct), None);
        let heads = btf.find_all("list_head");
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[0], s.list_head);
        assert_eq!(btf.find_all("unsigned int").len(), 3);

        assert_eq!(btf.size_of(s.task), Ok(304));
        assert_eq!(btf.size_of(s.u64_), Ok(8));
        assert_eq!(btf.size_of(btf.member(s.task, "nodes").unwrap().ty), Ok(216));
        assert_eq!(btf.size_of(btf.member(s.task, "name").unwrap().ty), Ok(8));
        assert_eq!(btf.size_of(btf.member(s.task, "tail").unwrap().ty), Ok(0));
        assert_eq!(btf.size_of(btf.member(s.task, "user_ptr").unwrap().ty), Ok(8));
        assert_eq!(btf.size_of(s.var), Ok(304));
        assert_eq!(btf.size_of(s.sec), Ok(4096));
        assert_eq!(btf.size_of(TypeId(0)), Err(TypeError::Incomplete(TypeId(0))));
        assert_eq!(btf.size_of(s.opaque), Err(TypeError::Incomplete(s.opaque)));
        assert_eq!(btf.size_of(s.func), Err(TypeError::Incomplete(s.func)));
        assert_eq!(btf.size_of(TypeId(99999)), Err(TypeError::NoSuchType(TypeId(99999))));

        let e: Vec<_> = btf.ty(s.anon_enum).unwrap().enumerators().map(|e| (e.name, e.value())).collect();
        assert_eq!(e, [("TASK_COMM_LEN", 16), ("NEG_ONE", -1)]);
        assert_eq!(btf.enum_value(s.state, "PIDTYPE_TGID").unwrap().value(), 1);
        assert_eq!(btf.enum_name(s.state, 2), Some("PIDTYPE_MAX"));
        assert_eq!(btf.enum_name(s.state, 7), None);
        // Either extension of -1 finds NEG_ONE; the 64-bit enum compares all 64 bits.
        assert_eq!(btf.enum_name(s.anon_enum, u64::MAX), Some("NEG_ONE"));
        assert_eq!(btf.enum_name(s.anon_enum, 0xffff_ffff), Some("NEG_ONE"));
        assert_eq!(btf.enum_name(s.big, 0xffff_ffff_0000_0001), Some("HUGE"));
        assert_eq!(btf.enum_name(s.big, 1), Some("SMALL"));
        assert_eq!(btf.enum_value(s.big, "HUGE").unwrap().value(), 0xffff_ffff_0000_0001);
        assert_eq!(btf.find_enumerator("TASK_COMM_LEN").map(|(t, e)| (t, e.value())), Some((s.anon_enum, 16)));
        assert_eq!(btf.find_enumerator("HUGE").map(|(t, _)| t), Some(s.big));
        assert!(btf.find_enumerator("TASK_RUNNING").is_none());

        let f = btf.ty(s.func).unwrap();
        assert_eq!(f.linkage(), Some(Linkage::Global));
        let proto = btf.ty(f.target().unwrap()).unwrap();
        let params: Vec<_> = proto.params().map(|p| p.name).collect();
        assert_eq!(params, ["n", "p", ""]);

        let v = btf.find_var("runqueues").unwrap();
        assert_eq!((v.var, v.ty, v.linkage, v.section), (s.var, s.task, Linkage::Global, Some((s.sec, 0x100, 304))));
        assert_eq!(btf.find_var("static_thing").unwrap().linkage, Linkage::Static);
        assert!(btf.find_var("printk").is_none());
        let tag = btf.ty(btf.find("tag", Kind::DeclTag).unwrap()).unwrap();
        assert_eq!((tag.target(), tag.decl_tag_component()), (Some(s.task), Some(1)));
        assert!(btf.ty(btf.lookup("union uopaque").unwrap()).unwrap().fwd_is_union());
        assert_eq!(btf.ty(btf.find("double", Kind::Float).unwrap()).unwrap().size(), Some(8));
        assert_eq!(btf.ty(TypeId(0)).map(|_| ()), Err(TypeError::NoSuchType(TypeId(0))));
        assert_eq!(btf.resolve(s.u64_), Ok(s.ulong));
        assert_eq!(format!("{:?}", btf.ty(s.task).unwrap()), format!("[{}] STRUCT 'task_struct'", s.task.0));
    }
}

#[test]
fn member_paths() {
    let (b, s) = sample();
    let bytes = b.build(false);
    let btf = load(&bytes);
    let m = |path: &str| btf.member(s.task, path);
    let at = |path: &str| btf.offset_of(s.task, path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(at("state"), 0);
    assert_eq!(at("tasks"), 16);
    assert_eq!(at("tasks.prev"), 24);
    assert_eq!(at("comm"), 32);
    assert_eq!(at("comm[15]"), 47);
    assert_eq!(at("comm[0xf]"), 47);
    // Anonymous union and structs are crossed.
    assert_eq!(at("lock.val"), 8);
    assert_eq!(at("lock.locked"), 8);
    assert_eq!(at("lock.pending"), 9);
    assert_eq!(at("lock.tail"), 10);
    assert_eq!(btf.type_name(m("lock.tail").unwrap().ty).unwrap(), "short unsigned int");
    // a.b[i].c[j].d
    assert_eq!(at("nodes[2].links[3].prev"), 56 + 2 * 72 + 8 + 3 * 16 + 8);
    assert_eq!(at("nodes[1]"), 56 + 72);
    assert_eq!(m("nodes[2].links[3].prev").unwrap().ty, btf.member(s.list_head, "prev").unwrap().ty);
    // A flexible array takes any index.
    assert_eq!(at("tail[1000]"), 304 + 8000);
    // Bitfields with kind_flag.
    let a = m("flag_a").unwrap();
    assert_eq!((a.bit_offset, a.bitfield_size, a.byte_offset()), (32, Some(1), 4));
    assert_eq!(m("flag_c").unwrap().bitfield_size, Some(3));
    assert_eq!(m("flag_c").unwrap().bit_offset, 34);
    assert_eq!(m("comm").unwrap().bitfield_size, None);
    // Old-style bitfields: width and extra offset from the int type.
    let five = btf.member(s.old_bits, "five").unwrap();
    assert_eq!((five.bit_offset, five.bitfield_size), (5, Some(5)));
    assert_eq!(btf.member(s.old_bits, "three").unwrap().bitfield_size, Some(3));
    // Empty path, leading index, typedef'd outer type, lookup by name.
    assert_eq!(btf.member(s.task, "").unwrap().ty, s.task);
    let nodes_ty = m("nodes").unwrap().ty;
    assert_eq!(btf.offset_of(nodes_ty, "[1].key"), Ok(72));
    let lock_t = btf.lookup("arch_spinlock_t").unwrap();
    assert_eq!(btf.offset_of(lock_t, "tail"), Ok(2));
    assert_eq!(btf.member_of("struct node", "links[1]").unwrap().byte_offset(), 24);
    assert_eq!(btf.offset_of(s.lock, "locked_pending"), Ok(0));

    // Errors name the type and the place in the path.
    assert_eq!(m("nope"), Err(TypeError::NoMember { ty: s.task, at: 0 }));
    assert_eq!(m("tasks.nope"), Err(TypeError::NoMember { ty: s.list_head, at: 6 }));
    assert!(matches!(m("state.x"), Err(TypeError::NotComposite { at: 6, .. })));
    assert!(matches!(m("tasks.next.next"), Err(TypeError::NotComposite { at: 11, .. })));
    assert!(matches!(m("tasks[0]"), Err(TypeError::NotArray { at: 5, .. })));
    assert!(matches!(m("comm[16]"), Err(TypeError::IndexOutOfBounds { at: 4, .. })));
    assert!(matches!(m("nodes[3]"), Err(TypeError::IndexOutOfBounds { at: 5, .. })));
    for (bad, pos) in [
        ("comm[", 5),
        ("comm[]", 5),
        ("comm[x]", 5),
        ("comm[-1]", 5),
        ("comm[+1]", 5),
        ("tasks..next", 6),
        ("tasks.", 6),
        (".tasks", 0),
        ("tasks->next", 5),
        ("tasks next", 5),
        ("comm[1]x", 7),
    ] {
        assert_eq!(m(bad), Err(TypeError::BadPath { at: pos }), "{bad}");
    }
    assert!(matches!(btf.member(TypeId(0), "x"), Err(TypeError::NotComposite { .. })));
    assert_eq!(btf.member(TypeId(12345), "x"), Err(TypeError::NoSuchType(TypeId(12345))));
    assert_eq!(btf.member_of("struct nothing", "x"), Err(TypeError::NotFound));
    // Type and path in one string; error positions count from its start.
    assert_eq!(btf.member_path("task_struct.nodes[2].key").unwrap().byte_offset(), 56 + 144);
    assert_eq!(btf.member_path("struct node.links[1].prev").unwrap().byte_offset(), 32);
    assert_eq!(btf.member_path("task_struct"), Ok(btf.member(s.task, "").unwrap()));
    assert_eq!(btf.member_path("task_struct.nope"), Err(TypeError::NoMember { ty: s.task, at: 12 }));
    assert_eq!(btf.member_path("task_struct.comm[x]"), Err(TypeError::BadPath { at: 17 }));
    assert_eq!(btf.member_path("task_struct."), Err(TypeError::BadPath { at: 12 }));
    assert_eq!(
        btf.offset_of(btf.lookup("u64").unwrap(), "[0]").map_err(|e| matches!(e, TypeError::NotArray { at: 0, .. })),
        Err(true)
    );
}

#[test]
fn c_spelling() {
    let (b, s) = sample();
    let bytes = b.build(true);
    let btf = load(&bytes);
    let name = |path: &str| btf.type_name(btf.member(s.task, path).unwrap().ty).unwrap();
    assert_eq!(name("state"), "volatile unsigned int");
    assert_eq!(name("tasks"), "struct list_head");
    assert_eq!(name("tasks.next"), "struct list_head *");
    assert_eq!(name("comm"), "char [16]");
    assert_eq!(name("name"), "const char *");
    assert_eq!(name("nodes"), "struct node [3]");
    assert_eq!(name("nodes[0].links"), "struct list_head [4]");
    assert_eq!(name("lock"), "arch_spinlock_t");
    assert_eq!(name("user_ptr"), "u64", "type tags are left out");
    assert_eq!(name("tail"), "u64 [0]");
    assert_eq!(name("lock.val"), "int");
    let spelt: Vec<String> = btf.ids().map(|id| btf.type_name(id).unwrap()).collect();
    for expected in [
        "void (*)(void)",
        "char (*)[16]",
        "const char *const",
        "const char *[4]",
        "struct opaque *restrict",
        "union uopaque",
        "enum <anonymous>",
        "enum big",
        "union <anonymous>",
        "struct <anonymous>",
        "int printk(int, const char *, ...)",
        "struct task_struct runqueues",
        "u64 static_thing",
        "double",
        "_Bool",
        "SEC .data..percpu",
    ] {
        assert!(spelt.iter().any(|s| s == expected), "{expected} not among {spelt:#?}");
    }
    assert_eq!(btf.type_name(s.fn_ptr).unwrap(), "void (*)(void)");
    assert_eq!(btf.type_name(s.func).unwrap(), "int printk(int, const char *, ...)");
    assert_eq!(btf.type_name(TypeId(0)).unwrap(), "void");
    assert_eq!(btf.type_name(TypeId(5000)), Err(TypeError::NoSuchType(TypeId(5000))));
}

#[test]
fn owned_and_borrowed_storage_and_pointer_size() {
    let (b, s) = sample();
    let bytes = b.build(false);
    let owned: Btf<'static> = Btf::parse(bytes.clone()).unwrap();
    let borrowed = load(&bytes);
    assert_eq!(owned.bytes(), borrowed.bytes());
    assert_eq!(owned.size_of(s.task), borrowed.size_of(s.task));
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(&owned);
    // A 32-bit ABI: pointers shrink, the rest does not move.
    let mut small = Btf::parse(bytes).unwrap();
    small.set_pointer_size(4);
    assert_eq!(small.size_of(small.member(s.task, "name").unwrap().ty), Ok(4));
    assert_eq!(small.size_of(s.list_head), Ok(16), "sizes recorded in structs stay");
    // Without `long` the pointer size defaults to 8.
    let mut b = Builder::new();
    let c = b.int("char", 1, INT_CHAR, 8, 0);
    b.ptr(c);
    let bytes = b.build(false);
    assert_eq!(load(&bytes).pointer_size(), 8);
    let mut b = Builder::new();
    b.int("long int", 4, INT_SIGNED, 32, 0);
    let bytes = b.build(false);
    assert_eq!(load(&bytes).pointer_size(), 4);
}

/// Split BTF: IDs and string offsets continue the base's, and its types use the base's by ID
/// and by string offset.
#[test]
fn split_btf() {
    let (b, s) = sample();
    for big in [false, true] {
        let base = Arc::new(Btf::parse(b.build(big)).unwrap());
        let mut m = Builder::split(base.last_id().0, b.strs.len() as u32);
        // A type named with a base string ("node" is in the base's strings).
        let node_name = (b.strs.windows(5).position(|w| w == b"node\0").unwrap()) as u32;
        let node2 = m.raw(node_name, 4, false, 1, 8);
        m.types.extend([0, s.u64_.0, 0]);
        let dev = m.composite(false, "fw_cfg_file", 24, &[("size", s.u64_, 0, 0), ("list", s.list_head, 64, 0)]);
        let devp = m.ptr(dev);
        let e = m.enum32("fw_state", 4, false, &[("FW_UP", 1)]);
        let v = m.var("fw_devices", devp, 1);
        let sec = m.datasec(".data", 64, &[(v, 8, 8)]);
        let bytes = m.build(big);
        let split = Btf::parse_split(&bytes[..], base.clone()).unwrap();
        assert_eq!(split.first_id(), TypeId(base.last_id().0 + 1));
        assert_eq!(split.own_len(), 6);
        assert_eq!(split.last_id().0, base.last_id().0 + 6);
        assert_eq!(split.ids().count(), split.last_id().0 as usize);
        assert!(split.base().is_some());
        assert_eq!(split.ty(node2).unwrap().name(), "node");
        assert_eq!(split.find_all("node"), [s.node, node2]);
        assert_eq!(split.find("fw_cfg_file", Kind::Struct), Some(dev));
        assert_eq!(base.find("fw_cfg_file", Kind::Struct), None);
        assert_eq!(split.lookup("struct task_struct"), Ok(s.task));
        assert_eq!(split.offset_of(dev, "list.prev"), Ok(16));
        assert_eq!(split.type_name(split.member(dev, "list").unwrap().ty).unwrap(), "struct list_head");
        assert_eq!(split.type_name(devp).unwrap(), "struct fw_cfg_file *");
        assert_eq!(split.size_of(dev), Ok(24));
        assert_eq!(split.find_enumerator("FW_UP").map(|(t, e)| (t, e.raw)), Some((e, 1)));
        assert_eq!(split.find_enumerator("TASK_COMM_LEN").map(|(t, _)| t), Some(s.anon_enum));
        assert_eq!(split.find_var("fw_devices").unwrap().section, Some((sec, 8, 8)));
        assert_eq!(split.find_var("runqueues").unwrap().section, Some((s.sec, 0x100, 304)));
        // The base's own view is unchanged; a base type seen through split BTF is the base's.
        assert_eq!(split.ty(s.task).unwrap().btf().last_id(), base.last_id());
        // Split BTF alone is not base BTF: its strings do not start with the empty string.
        assert_eq!(Btf::parse(&bytes[..]).unwrap_err().kind, BtfErrorKind::BadStringSection);
        // Byte orders must agree.
        let other = Arc::new(Btf::parse(b.build(!big)).unwrap());
        assert_eq!(Btf::parse_split(&bytes[..], other).unwrap_err().kind, BtfErrorKind::EndianMismatch);
    }
    // A split blob's references and names are checked against the combined ranges.
    let base = Arc::new(Btf::parse(b.build(false)).unwrap());
    let mut m = Builder::split(base.last_id().0, b.strs.len() as u32);
    m.ptr(TypeId(base.last_id().0 + 2));
    let err = Btf::parse_split(m.build(false), base.clone()).unwrap_err();
    assert_eq!((err.kind, err.offset), (BtfErrorKind::BadTypeId(base.last_id().0 + 2), 24 + 8));
    let mut m = Builder::split(base.last_id().0, b.strs.len() as u32);
    m.s("x");
    m.raw(b.strs.len() as u32 + 2, 2, false, 0, 0);
    let err = Btf::parse_split(m.build(false), base.clone()).unwrap_err();
    assert_eq!((err.kind, err.offset), (BtfErrorKind::BadNameOffset(b.strs.len() as u32 + 2), 24));
    // Split BTF with no strings of its own, naming types with the base's.
    let mut m = Builder::split(base.last_id().0, b.strs.len() as u32);
    m.raw(0, 2, false, 0, s.int.0);
    let split = Btf::parse_split(m.build(false), base).unwrap();
    assert_eq!(split.type_name(split.last_id()).unwrap(), "int *");
}

/// Header fields of the sample, rewritten.
fn with_header(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 4].copy_from_slice(&value.to_le_bytes());
    b
}

#[test]
fn load_errors_name_the_offset() {
    let (b, _) = sample();
    let good = b.build(false);
    let type_len = b.types.len() as u32 * 4;
    let err = |bytes: &[u8]| {
        let e = Btf::parse(bytes).unwrap_err();
        (e.kind, e.offset)
    };
    use BtfErrorKind as K;
    assert_eq!(err(&good[..10]), (K::Truncated, 10));
    assert_eq!(err(b"\x9f\xec\x01\x00\x18\x00\x00\x00\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), (K::BadMagic, 0));
    let mut v2 = good.clone();
    v2[2] = 2;
    assert_eq!(err(&v2), (K::UnsupportedVersion(2), 2));
    assert_eq!(err(&with_header(&good, 4, 20)), (K::BadHeaderLength(20), 4));
    assert_eq!(err(&with_header(&good, 4, 1 << 30)), (K::BadHeaderLength(1 << 30), 4));
    // A longer header is fine when its unknown tail is zero, not otherwise.
    let mut longer = good[..24].to_vec();
    longer.extend([0; 8]);
    longer.extend(&good[24..]);
    longer[4] = 32;
    assert!(Btf::parse(&longer[..]).is_ok());
    longer[30] = 1;
    assert_eq!(err(&longer), (K::BadHeaderLength(32), 4));
    assert_eq!(err(&with_header(&good, 12, type_len + 4096)), (K::SectionOutOfBounds, 8));
    assert_eq!(err(&with_header(&good, 20, 1 << 20)), (K::SectionOutOfBounds, 16));
    assert_eq!(err(&with_header(&good, 16, type_len - 4)), (K::SectionOutOfBounds, 16), "overlap");
    assert_eq!(err(&with_header(&good, 8, 2)), (K::SectionOutOfBounds, 8), "misaligned");
    let strs = 24 + type_len as usize;
    let mut s = good.clone();
    s[strs] = b'x';
    assert_eq!(err(&s), (K::BadStringSection, strs as u64));
    let mut s = good.clone();
    *s.last_mut().unwrap() = b'x';
    assert_eq!(err(&s), (K::BadStringSection, good.len() as u64 - 1));
    let mut s = good.clone();
    s[strs + 2] = 0xff;
    assert_eq!(err(&s), (K::BadStringSection, strs as u64 + 2));
    // The type section ends inside an entry.
    assert_eq!(err(&with_header(&good, 12, 8)), (K::TruncatedType, 24));

    // Per-type problems, on a one-type blob.
    let one = |words: &[u32], strs: &[u8]| {
        let mut b = Builder::new();
        b.types.extend(words);
        b.strs = strs.to_vec();
        b.build(false)
    };
    assert_eq!(err(&one(&[0, 20 << 24, 0], b"\0")), (K::UnknownKind(20), 28));
    assert_eq!(err(&one(&[0, 0, 0], b"\0")), (K::UnknownKind(0), 28));
    assert_eq!(err(&one(&[0, 2 << 24 | 1 << 16, 0], b"\0")), (K::BadInfo(2 << 24 | 1 << 16), 28));
    assert_eq!(err(&one(&[9, 2 << 24, 0], b"\0ab\0")), (K::BadNameOffset(9), 24));
    assert_eq!(err(&one(&[2, 2 << 24, 0], b"\0\xc3\xa9\0")), (K::BadNameOffset(2), 24), "inside a character");
    assert_eq!(err(&one(&[0, 2 << 24, 2], b"\0")), (K::BadTypeId(2), 32));
    assert_eq!(err(&one(&[0, 1 << 24, 4, 33], b"\0")), (K::BadInt(33), 36));
    assert_eq!(err(&one(&[0, 1 << 24, 3, 8], b"\0")), (K::BadInt(8), 36));
    assert_eq!(err(&one(&[0, 1 << 24, 4, 1 << 28 | 8], b"\0")), (K::BadInt(1 << 28 | 8), 36));
    assert_eq!(err(&one(&[0, 6 << 24, 3], b"\0")), (K::BadSize(3), 32));
    assert_eq!(err(&one(&[0, 16 << 24, 5], b"\0")), (K::BadSize(5), 32));
    assert_eq!(err(&one(&[0, 4 << 24 | 2, 8, 0, 1, 0], b"\0")), (K::TruncatedType, 24));
    // A member's name and type are checked too.
    assert_eq!(err(&one(&[0, 4 << 24 | 1, 8, 7, 0, 0], b"\0")), (K::BadNameOffset(7), 36));
    assert_eq!(err(&one(&[0, 4 << 24 | 1, 8, 0, 5, 0], b"\0")), (K::BadTypeId(5), 40));
    // An unknown kind after good types names its own offset.
    let mut b2 = Builder::new();
    b2.int("int", 4, INT_SIGNED, 32, 0);
    b2.types.extend([0, 25 << 24, 0]);
    assert_eq!(err(&b2.build(false)), (K::UnknownKind(25), 24 + 16 + 4));
    // Errors print.
    assert!(Btf::parse(&good[..3]).unwrap_err().to_string().contains("truncated"));
}

/// Cycles and blow-ups a hostile blob can encode end in errors, quickly.
#[test]
fn cycles_and_exponential_nesting_are_bounded() {
    let mut b = Builder::new();
    // typedef a → typedef b → a.
    let a = b.ty("a", 8, false, 0, 2);
    b.ty("b", 8, false, 0, 1);
    // An array of itself, a pointer cycle, a struct with an anonymous member of its own type.
    let arr = b.array(TypeId(3), TypeId(3), 1);
    let ptr = b.ptr(TypeId(4));
    let selfish = b.composite(false, "selfish", 4, &[("", TypeId(5), 0, 0)]);
    // 2^40 paths through anonymous members: s0 has two anonymous members of s1, and so on.
    let first = b.next_id;
    for i in 0..40 {
        let next = TypeId(first + i + 1);
        let last = i == 39;
        let int_id = TypeId(first + 40);
        let members: Vec<(&str, TypeId, u32, u32)> =
            if last { vec![("x", int_id, 0, 0)] } else { vec![("", next, 0, 0), ("", next, 0, 0)] };
        b.composite(false, "", 4, &members);
    }
    let int = b.int("int", 4, INT_SIGNED, 32, 0);
    assert_eq!(int.0, first + 40);
    // Function prototypes whose parameters are pointers to the previous one, 30 deep, 50 wide.
    let mut prev = int;
    for _ in 0..30 {
        let p = b.ptr(prev);
        let params: Vec<(&str, TypeId)> = (0..50).map(|_| ("", p)).collect();
        prev = b.proto(int, &params);
    }
    let bytes = b.build(false);
    let btf = load(&bytes);
    let t = std::time::Instant::now();
    assert_eq!(btf.resolve(a), Err(TypeError::TooDeep(a)));
    assert_eq!(btf.size_of(a), Err(TypeError::TooDeep(a)));
    assert_eq!(btf.type_name(a).unwrap(), "a", "a typedef is spelt by its name");
    assert_eq!(btf.size_of(arr), Err(TypeError::TooDeep(arr)));
    assert!(btf.size_of(ptr).is_ok(), "a pointer's size does not follow it");
    assert!(matches!(btf.type_name(ptr), Err(TypeError::TooDeep(_))));
    assert!(matches!(btf.member(selfish, "x"), Err(TypeError::TooDeep(_))));
    assert!(matches!(btf.member(TypeId(first), "nothing"), Err(TypeError::TooDeep(_))));
    assert_eq!(btf.offset_of(TypeId(first), "x"), Ok(0), "the first path is found at once");
    assert!(matches!(btf.type_name(prev), Err(TypeError::TooDeep(_))));
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Exercises every query on whatever loaded.
fn exercise(btf: &Btf) {
    for id in btf.ids() {
        let t = btf.ty(id).unwrap();
        let _ = (btf.size_of(id), btf.resolve(id), btf.type_name(id), btf.int_encoding(id), t.name(), t.size());
        let _ = (t.int(), t.array(), t.linkage(), t.decl_tag_component(), t.fwd_is_union(), t.target());
        for m in t.members() {
            let _ = btf.member(id, m.name);
            let _ = btf.member(id, &format!("{}[1].x", m.name));
        }
        for e in t.enumerators() {
            let _ = (btf.enum_name(id, e.raw), btf.enum_value(id, e.name), btf.find_enumerator(e.name));
        }
        let _ = t.params().count() + t.datasec_vars().count();
        let _ = (btf.find_all(t.name()), btf.find_var(t.name()), btf.lookup(t.name()));
    }
}

#[test]
fn mutated_blobs_neither_panic_nor_hang() {
    let (b, _) = sample();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // LOCKSCOPE_BTF_FUZZ_ROUNDS=1000000 for a longer run.
    let rounds: u32 = std::env::var("LOCKSCOPE_BTF_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut loaded = 0;
    for big in [false, true] {
        let good = b.build(big);
        for len in 0..good.len() {
            if let Ok(btf) = Btf::parse(&good[..len]) {
                exercise(&btf);
            }
        }
        for _ in 0..rounds {
            let mut bytes = good.clone();
            for _ in 0..1 + rand() % 4 {
                let at = (rand() % bytes.len() as u64) as usize;
                bytes[at] = match rand() % 3 {
                    0 => rand() as u8,
                    1 => bytes[at] ^ (1 << (rand() % 8)),
                    _ => [0, 0xff, 1, 0x80][(rand() % 4) as usize],
                };
            }
            if let Ok(btf) = Btf::parse(&bytes[..]) {
                loaded += 1;
                exercise(&btf);
                if let Ok(split) = Btf::parse_split(&good[..], Arc::new(btf)) {
                    exercise(&split);
                }
            }
        }
    }
    eprintln!("{loaded} of {} mutated blobs loaded and were queried", 2 * rounds);
    assert!(loaded > 100, "mutations too destructive to test queries: {loaded}");
}
