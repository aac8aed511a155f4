//! The `btf` target: any bytes as a BTF blob, then the queries the kernel commands make.
//! Also a tiny BTF writer for its seeds.

use lockscope_kernel::btf::Btf;

/// Parses the input as BTF; when it loads, looks types up, follows member paths and prints
/// C names.
pub fn btf(data: &[u8]) {
    let Ok(b) = Btf::parse(data) else { return };
    b.build_indexes(true);
    for name in ["task_struct", "struct task_struct", "struct list_head", "pid_t", "int", "char *"] {
        if let Ok(id) = b.lookup(name) {
            let _ = (b.size_of(id), b.type_name(id), b.resolve(id));
        }
    }
    for path in ["task_struct.tasks.next", "task_struct.comm[3]", "list_head.prev", "struct task_struct.pid"] {
        let _ = b.member_path(path).map(|m| m.byte_offset());
    }
    let _ = (b.find_enumerator("TASK_DEAD"), b.find_var("init_task"), b.find_all("task_struct"));
    for id in b.ids().take(512) {
        let _ = (b.type_name(id), b.size_of(id), b.int_encoding(id));
        if let Ok(t) = b.ty(id) {
            let _ = (t.members().count(), t.enumerators().count(), t.params().count(), t.array());
        }
    }
}

/// A small BTF blob (little-endian) built from `(name, info, size_or_type, extra words)`.
pub(crate) fn build(types: &[(&str, u32, u32, &[u32])], names: &[&str]) -> Vec<u8> {
    let mut strs = vec![0u8];
    let mut offset_of = |s: &str| -> u32 {
        if s.is_empty() {
            return 0;
        }
        let at = strs.len() as u32;
        strs.extend_from_slice(s.as_bytes());
        strs.push(0);
        at
    };
    let mut ty = Vec::new();
    let word = |w: u32, ty: &mut Vec<u8>| ty.extend_from_slice(&w.to_le_bytes());
    for (name, info, size, extra) in types {
        word(offset_of(name), &mut ty);
        word(*info, &mut ty);
        word(*size, &mut ty);
        // Extra words whose value is u32::MAX - i name the i-th string of `names`.
        for &e in *extra {
            let v = match u32::MAX - e {
                i if (i as usize) < names.len() => offset_of(names[i as usize]),
                _ => e,
            };
            word(v, &mut ty);
        }
    }
    let mut out = vec![0x9f, 0xeb, 1, 0];
    for w in [24u32, 0, ty.len() as u32, ty.len() as u32, strs.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&ty);
    out.extend_from_slice(&strs);
    out
}

/// A string reference for `build`'s extra words.
pub(crate) const fn s(i: u32) -> u32 {
    u32::MAX - i
}
