//! The repository's real dump (tests/data/dumps, a filtered kdump of the corpus case
//! ipi_sleeping_holder.live: Debian 6.1.176, KASLR on) for the kernel crate's tests, and the
//! same dump with kernel data rewritten through its memory overlay (the file untouched).
#![allow(dead_code)]

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use std::path::PathBuf;

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
}

pub fn kernel() -> Kernel {
    Kernel::new(Dump::open(path()).unwrap()).unwrap()
}

/// The same dump with 8-byte words written at kernel virtual addresses.
pub fn patched(words: &[(u64, u64)]) -> Kernel {
    let k = kernel();
    let patches = words.iter().map(|&(va, v)| (k.memory().translate(va).unwrap(), v.to_le_bytes().to_vec())).collect();
    Kernel::new(Dump::open(path()).unwrap().with_patches(patches)).unwrap()
}
