//! arm64: what exists so far of the second architecture (issue #12). Address translation
//! from VMCOREINFO; registers, unwinding and the data symbols a kernel without
//! `CONFIG_KALLSYMS_ALL` lacks come next, through the same [`crate::arch::Architecture`] trait.

pub mod frames;
pub mod paging;
