//! `lockscope-kernel`: the kernel view, the third stage of the flow
//! (dump file → physical memory → **kernel view** → facts → diagnosis → report).
//!
//! Built on [`lockscope_dump::Dump`] (physical memory plus notes), it knows the kernel that was
//! running without any debuginfo: virtual-to-physical translation, symbols from the in-memory
//! kallsyms tables, types from the in-memory BTF blob, and typed reads on top of them.

pub mod btf;
