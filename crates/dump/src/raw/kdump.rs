//! makedumpfile's kdump-compressed layout (diskdump_mod.h) and its flattened stream format.
//! Offsets are bytes from the start of each structure. The header's `struct timeval` and the
//! sub-header's `unsigned long` fields follow the C ABI of the machine makedumpfile ran on,
//! so there is a 64-bit layout and 32-bit ones (`header32`, `sub_header32_packed`,
//! `sub_header32_aligned`).

/// `disk_dump_header.signature` of current makedumpfile and QEMU files.
pub const SIGNATURE_KDUMP: &[u8; 8] = b"KDUMP   ";
/// The signature of the original (Red Hat diskdump) files, same layout.
pub const SIGNATURE_DISKDUMP: &[u8; 8] = b"DISKDUMP";

/// `struct disk_dump_header` for a 64-bit dumped machine.
pub mod header64 {
    pub const HEADER_VERSION: usize = 8; // i32
    /// `struct new_utsname`: six fields of 65 bytes each.
    pub const UTSNAME: usize = 12;
    pub const UTSNAME_FIELD_LEN: usize = 65;
    pub const TIMESTAMP_SEC: usize = 408; // i64 (timeval.tv_sec)
    pub const TIMESTAMP_USEC: usize = 416; // i64
    pub const STATUS: usize = 424; // u32
    pub const BLOCK_SIZE: usize = 428; // i32
    pub const SUB_HDR_SIZE: usize = 432; // i32, in blocks
    pub const BITMAP_BLOCKS: usize = 436; // u32, both bitmaps together
    pub const MAX_MAPNR: usize = 440; // u32, truncated for > 16 TiB (see sub-header v6)
    pub const TOTAL_RAM_BLOCKS: usize = 444; // u32
    pub const DEVICE_BLOCKS: usize = 448; // u32
    pub const WRITTEN_BLOCKS: usize = 452; // u32
    pub const CURRENT_CPU: usize = 456; // u32
    pub const NR_CPUS: usize = 460; // i32
    pub const SIZE: usize = 464;
}

/// `struct disk_dump_header` written by a 32-bit makedumpfile: `struct timeval` is two 32-bit
/// `long`s, aligned to 4, so everything after `utsname` sits 4 to 12 bytes earlier.
pub mod header32 {
    pub const TIMESTAMP_SEC: usize = 404; // i32
    pub const TIMESTAMP_USEC: usize = 408; // i32
    pub const STATUS: usize = 412;
    pub const BLOCK_SIZE: usize = 416;
    pub const SUB_HDR_SIZE: usize = 420;
    pub const BITMAP_BLOCKS: usize = 424;
    pub const MAX_MAPNR: usize = 428;
    pub const TOTAL_RAM_BLOCKS: usize = 432;
    pub const DEVICE_BLOCKS: usize = 436;
    pub const WRITTEN_BLOCKS: usize = 440;
    pub const CURRENT_CPU: usize = 444;
    pub const NR_CPUS: usize = 448;
    pub const SIZE: usize = 452;
}

/// `struct kdump_sub_header` of a 32-bit machine whose ABI aligns 64-bit fields to 4 bytes
/// (i386): `unsigned long` is 4 bytes, `off_t` 8, no padding.
pub mod sub_header32_packed {
    pub const PHYS_BASE: usize = 0; // u32
    pub const DUMP_LEVEL: usize = 4;
    pub const SPLIT: usize = 8;
    pub const START_PFN: usize = 12; // u32
    pub const END_PFN: usize = 16; // u32
    pub const OFFSET_VMCOREINFO: usize = 20; // u64
    pub const SIZE_VMCOREINFO: usize = 28; // u32
    pub const OFFSET_NOTE: usize = 32; // u64
    pub const SIZE_NOTE: usize = 40; // u32
    pub const OFFSET_ERASEINFO: usize = 44; // u64
    pub const SIZE_ERASEINFO: usize = 52; // u32
    pub const START_PFN_64: usize = 56;
    pub const END_PFN_64: usize = 64;
    pub const MAX_MAPNR_64: usize = 72;
    pub const SIZE: usize = 80;
}

/// `struct kdump_sub_header` of a 32-bit machine whose ABI aligns 64-bit fields to 8 bytes
/// (arm, ppc, mips): 4 bytes of padding before each `off_t` and before `start_pfn_64`.
pub mod sub_header32_aligned {
    pub const PHYS_BASE: usize = 0; // u32
    pub const DUMP_LEVEL: usize = 4;
    pub const SPLIT: usize = 8;
    pub const START_PFN: usize = 12; // u32
    pub const END_PFN: usize = 16; // u32
    pub const OFFSET_VMCOREINFO: usize = 24; // u64
    pub const SIZE_VMCOREINFO: usize = 32; // u32
    pub const OFFSET_NOTE: usize = 40; // u64
    pub const SIZE_NOTE: usize = 48; // u32
    pub const OFFSET_ERASEINFO: usize = 56; // u64
    pub const SIZE_ERASEINFO: usize = 64; // u32
    pub const START_PFN_64: usize = 72;
    pub const END_PFN_64: usize = 80;
    pub const MAX_MAPNR_64: usize = 88;
    pub const SIZE: usize = 96;
}

/// `struct kdump_sub_header` for a 64-bit dumped machine, at file offset `block_size`.
/// Fields exist from the header version named beside them.
pub mod sub_header64 {
    pub const PHYS_BASE: usize = 0; // u64, v1
    pub const DUMP_LEVEL: usize = 8; // i32, v1
    pub const SPLIT: usize = 12; // i32, v2
    pub const START_PFN: usize = 16; // u64, v2 (32-bit PFNs, obsolete)
    pub const END_PFN: usize = 24; // u64, v2
    pub const OFFSET_VMCOREINFO: usize = 32; // u64, v3
    pub const SIZE_VMCOREINFO: usize = 40; // u64, v3
    pub const OFFSET_NOTE: usize = 48; // u64, v4
    pub const SIZE_NOTE: usize = 56; // u64, v4
    pub const OFFSET_ERASEINFO: usize = 64; // u64, v5
    pub const SIZE_ERASEINFO: usize = 72; // u64, v5
    pub const START_PFN_64: usize = 80; // u64, v6
    pub const END_PFN_64: usize = 88; // u64, v6
    pub const MAX_MAPNR_64: usize = 96; // u64, v6
    pub const SIZE: usize = 104;
}

/// `struct page_desc`: where one dumped page's data is and how it is compressed.
pub mod page_desc {
    pub const OFFSET: usize = 0; // i64, file offset of the data
    pub const SIZE: usize = 8; // u32, bytes stored
    pub const FLAGS: usize = 12; // u32, compression
    pub const PAGE_FLAGS: usize = 16; // u64, the kernel's page->flags (unused here)
    pub const LEN: usize = 24;
}

/// `disk_dump_header.status` bits.
pub mod status {
    pub const COMPRESSED_ZLIB: u32 = 0x1;
    pub const COMPRESSED_LZO: u32 = 0x2;
    pub const COMPRESSED_SNAPPY: u32 = 0x4;
    pub const INCOMPLETE: u32 = 0x8;
    pub const EXCLUDED_VMEMMAP: u32 = 0x10;
    pub const COMPRESSED_ZSTD: u32 = 0x20;
}

/// `page_desc.flags` bits (same values as the status compression bits).
pub mod page_flags {
    pub const ZLIB: u32 = 0x1;
    pub const LZO: u32 = 0x2;
    pub const SNAPPY: u32 = 0x4;
    pub const ZSTD: u32 = 0x20;
}

/// `kdump_sub_header.dump_level` bits: which kinds of pages makedumpfile left out.
pub mod dump_level {
    pub const ZERO: i32 = 1;
    pub const CACHE: i32 = 2;
    pub const CACHE_PRIVATE: i32 = 4;
    pub const USER: i32 = 8;
    pub const FREE: i32 = 16;
}

/// makedumpfile's flattened format (`-F`), always big-endian: a 4096-byte header, then
/// records `{i64 offset, i64 size, data}` meant to be written at `offset` of the real file.
pub mod flattened {
    pub const SIGNATURE: &[u8; 12] = b"makedumpfile";
    pub const SIGNATURE_FIELD_LEN: usize = 16;
    pub const TYPE: usize = 16; // i64 BE, 1
    pub const VERSION: usize = 24; // i64 BE, 1
    pub const HEADER_SIZE: usize = 4096;
    pub const RECORD_HEADER_LEN: usize = 16;
    /// offset = size = -1 ends the stream.
    pub const END_MARK: i64 = -1;
}
