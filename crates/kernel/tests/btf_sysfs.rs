//! The running kernel's own BTF (/sys/kernel/btf/vmlinux, and module split BTF beside it): a
//! development check on whatever kernel this machine runs. Skips when the files are absent.

mod btf_common;

use lockscope_kernel::btf::{Btf, Kind};
use std::path::Path;
use std::sync::Arc;

fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("note: {}: {e}; skipped", path.display());
            None
        }
    }
}

#[test]
fn running_kernel_vmlinux_btf() {
    let Some(bytes) = read(Path::new("/sys/kernel/btf/vmlinux")) else { return };
    let t = std::time::Instant::now();
    let btf = Btf::parse(&bytes[..]).expect("the running kernel's BTF loads");
    let parsed = t.elapsed();
    btf.build_indexes(true);
    eprintln!("{} bytes: parse {parsed:?}, + indexes {:?}", bytes.len(), t.elapsed());
    let stats = btf_common::check_blob(&btf);
    eprintln!("vmlinux BTF: {} types, {stats:?}", btf.last_id().0);
    assert!(stats.structs > 1000 && stats.bitfields > 0 && stats.anonymous_members > 0);
    let list_head = btf.lookup("struct list_head").unwrap();
    assert_eq!(btf.size_of(list_head), Ok(2 * btf.pointer_size() as u64));
    assert_eq!(btf.type_name(btf.member(list_head, "prev").unwrap().ty).unwrap(), "struct list_head *");
    assert!(btf.find("task_struct", Kind::Struct).is_some());
}

#[test]
fn running_kernel_module_btf() {
    let dir = Path::new("/sys/kernel/btf");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("note: /sys/kernel/btf absent; skipped");
        return;
    };
    let modules: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n != "vmlinux")).collect();
    if modules.is_empty() {
        eprintln!("note: no module BTF in /sys/kernel/btf; skipped");
        return;
    }
    let Some(bytes) = read(&dir.join("vmlinux")) else { return };
    let base = Arc::new(Btf::parse(bytes).unwrap());
    for path in modules {
        let Some(bytes) = read(&path) else { continue };
        let module = Btf::parse_split(&bytes[..], base.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(module.first_id().0, base.last_id().0 + 1);
        btf_common::check_blob(&module);
    }
}
