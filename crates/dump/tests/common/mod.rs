//! A kdump-compressed file builder for tests, written from the on-disk layout itself
//! (makedumpfile's diskdump_mod.h, libkdumpfile's diskdump.c) and not from the crate's `raw`
//! module, so a wrong offset there cannot hide in both: the 64-bit layout, the 32-bit one
//! (32-bit `struct timeval`, status at 412, nr_cpus at 448) with either 32-bit sub-header
//! (i386: 64-bit fields aligned to 4; arm/ppc: aligned to 8), either byte order, and split
//! parts (each file: full bitmaps, descriptors and data of its own PFN range only).

#![allow(dead_code)]

/// How a 32-bit makedumpfile laid out the sub-header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    Lp64,
    /// i386: `off_t` aligned to 4.
    Ilp32Packed,
    /// arm, ppc, mips: `off_t` aligned to 8.
    Ilp32Aligned,
}

pub struct Spec<'a> {
    pub abi: Abi,
    pub big_endian: bool,
    pub machine: &'a str,
    pub release: &'a str,
    pub block_size: usize,
    pub max_pfn: u64,
    /// Bit per PFN: RAM / dumped.
    pub ram: Vec<u8>,
    pub dumped: Vec<u8>,
    /// Stored form of each dumped page in PFN order: (page_desc flags, bytes).
    pub pages: Vec<(u64, u32, Vec<u8>)>,
    pub notes: Vec<u8>,
    pub timestamp: (i64, i64),
    pub dump_level: i32,
    pub phys_base: u64,
    pub nr_cpus: i32,
    pub status: u32,
    /// `[start, end)` PFNs of this part of a split dump.
    pub split: Option<(u64, u64)>,
    /// (offset in `notes`, size) of the VMCOREINFO text, pointed at by offset_vmcoreinfo.
    pub vmcoreinfo_at: Option<(usize, usize)>,
}

impl<'a> Spec<'a> {
    pub fn new(abi: Abi, machine: &'a str, max_pfn: u64) -> Spec<'a> {
        let bytes = max_pfn.div_ceil(8) as usize;
        Spec {
            abi,
            big_endian: false,
            machine,
            release: "6.1.0",
            block_size: 4096,
            max_pfn,
            ram: vec![0; bytes],
            dumped: vec![0; bytes],
            pages: Vec::new(),
            notes: Vec::new(),
            timestamp: (1_795_238_369, 123_456),
            dump_level: 31,
            phys_base: 0x100000,
            nr_cpus: 2,
            status: 1,
            split: None,
            vmcoreinfo_at: None,
        }
    }

    /// Appends a VMCOREINFO note; the sub-header will point at its text, as makedumpfile's does.
    pub fn add_vmcoreinfo(&mut self, text: &[u8]) {
        let at = self.notes.len() + 12 + 12; // note header, "VMCOREINFO\0" padded to 12
        self.notes.extend(note(b"VMCOREINFO", 0, text, self.big_endian));
        self.vmcoreinfo_at = Some((at, text.len()));
    }

    pub fn set(bits: &mut [u8], pfn: u64) {
        bits[(pfn / 8) as usize] |= 1 << (pfn % 8);
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
    }

    fn u64(&self, v: u64) -> [u8; 8] {
        if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
    }

    pub fn build(&self) -> Vec<u8> {
        let bs = self.block_size;
        let put = |f: &mut Vec<u8>, at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
        let bits32 = self.abi != Abi::Lp64;
        // (sub-header size, offsets of the fields used)
        // Lp64:     phys_base u64 @0, dump_level @8, split @12, start/end u64 @16/24,
        //           off_vmcoreinfo @32, size @40, off_note @48, size @56, off_erase @64,
        //           size @72, start_pfn_64 @80, end_pfn_64 @88, max_mapnr_64 @96; 104 bytes.
        // Packed:   phys_base u32 @0, dump_level @4, split @8, start/end u32 @12/16,
        //           off_vmcoreinfo u64 @20, size u32 @28, off_note @32, size @40,
        //           off_erase @44, size @52, start_64 @56, end_64 @64, max_64 @72; 80 bytes.
        // Aligned:  as packed to end_pfn, then off_vmcoreinfo @24, size @32, off_note @40,
        //           size @48, off_erase @56, size @64, start_64 @72, end_64 @80, max_64 @88; 96.
        let (sub_size, off_vmci, size_vmci, off_note, size_note, start64, end64, max64) = match self.abi {
            Abi::Lp64 => (104, 32, 40, 48, 56, 80, 88, 96),
            Abi::Ilp32Packed => (80, 20, 28, 32, 40, 56, 64, 72),
            Abi::Ilp32Aligned => (96, 24, 32, 40, 48, 72, 80, 88),
        };
        let sub_blocks = (sub_size + self.notes.len()).div_ceil(bs);
        let half = self.max_pfn.div_ceil(8).div_ceil(bs as u64) as usize * bs;
        let bitmap_off = (1 + sub_blocks) * bs;
        let desc_base = bitmap_off + 2 * half;
        let mine: Vec<&(u64, u32, Vec<u8>)> =
            self.pages.iter().filter(|(pfn, _, _)| self.split.is_none_or(|(s, e)| (s..e).contains(pfn))).collect();
        let mut f = vec![0u8; desc_base + 24 * mine.len()];
        put(&mut f, 0, b"KDUMP   ");
        put(&mut f, 8, &self.u32(6));
        for (i, s) in ["Linux", "", self.release, "#1 SMP", self.machine, ""].iter().enumerate() {
            put(&mut f, 12 + 65 * i, s.as_bytes());
        }
        // Main header after utsname (12 + 6*65 = 402): 64-bit timeval at 408, else at 404.
        let at = if bits32 { 404 } else { 408 };
        if bits32 {
            put(&mut f, at, &self.u32(self.timestamp.0 as u32));
            put(&mut f, at + 4, &self.u32(self.timestamp.1 as u32));
        } else {
            put(&mut f, at, &self.u64(self.timestamp.0 as u64));
            put(&mut f, at + 8, &self.u64(self.timestamp.1 as u64));
        }
        let after = if bits32 { 412 } else { 424 };
        let fields = [
            self.status,
            bs as u32,
            sub_blocks as u32,
            (2 * half / bs) as u32,
            self.max_pfn as u32,
            0,
            0,
            0,
            1, // current_cpu
            self.nr_cpus as u32,
        ];
        for (i, v) in fields.iter().enumerate() {
            put(&mut f, after + 4 * i, &self.u32(*v));
        }
        let sub = bs;
        let long = |f: &mut Vec<u8>, at: usize, v: u64| {
            if bits32 { put(f, sub + at, &self.u32(v as u32)) } else { put(f, sub + at, &self.u64(v)) }
        };
        long(&mut f, 0, self.phys_base);
        let dl_at = if bits32 { 4 } else { 8 };
        put(&mut f, sub + dl_at, &self.u32(self.dump_level as u32));
        if let Some((s, e)) = self.split {
            put(&mut f, sub + dl_at + 4, &self.u32(1));
            long(&mut f, if bits32 { 12 } else { 16 }, s);
            long(&mut f, if bits32 { 16 } else { 24 }, e);
            put(&mut f, sub + start64, &self.u64(s));
            put(&mut f, sub + end64, &self.u64(e));
        }
        if !self.notes.is_empty() {
            let note_at = (sub + sub_size) as u64;
            put(&mut f, sub + off_note, &self.u64(note_at));
            long(&mut f, size_note, self.notes.len() as u64);
            put(&mut f, sub + sub_size, &self.notes);
            if let Some((at, size)) = self.vmcoreinfo_at {
                put(&mut f, sub + off_vmci, &self.u64(note_at + at as u64));
                long(&mut f, size_vmci, size as u64);
            }
        }
        put(&mut f, sub + max64, &self.u64(self.max_pfn));
        put(&mut f, bitmap_off, &self.ram);
        put(&mut f, bitmap_off + half, &self.dumped);
        let mut data_at = f.len();
        let mut data = Vec::new();
        for (i, (_, flags, bytes)) in mine.iter().enumerate() {
            let d = desc_base + 24 * i;
            put(&mut f, d, &self.u64(data_at as u64));
            put(&mut f, d + 8, &self.u32(bytes.len() as u32));
            put(&mut f, d + 12, &self.u32(*flags));
            data.extend_from_slice(bytes);
            data_at += bytes.len();
        }
        f.extend(data);
        f
    }
}

/// An ELF note in the given byte order.
pub fn note(name: &[u8], kind: u32, desc: &[u8], big_endian: bool) -> Vec<u8> {
    let w = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut v = Vec::new();
    v.extend_from_slice(&w(name.len() as u32 + 1));
    v.extend_from_slice(&w(desc.len() as u32));
    v.extend_from_slice(&w(kind));
    v.extend_from_slice(name);
    v.push(0);
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}
