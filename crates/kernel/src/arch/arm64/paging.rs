//! arm64 kernel address translation (issue #12's first piece): the TTBR1 tables from
//! `swapper_pg_dir` walked for every granule (4, 16, 64 KiB) and depth (2–4 levels, from
//! `VA_BITS`), block and page descriptors, 48-bit output addresses (52 with 64 KiB pages:
//! bits 51:48 in descriptor bits 15:12); the linear map by formula from `PHYS_OFFSET`, the
//! kernel image by `kimage_voffset` — all from VMCOREINFO. Not yet wired into
//! [`crate::arch::for_dump`]: the rest of the arm64 architecture (registers, unwinding, data
//! symbols without `CONFIG_KALLSYMS_ALL`) comes next.

use crate::arch::{AddressSpace, Mapping, PhysRead, TranslateError};

/// Output-address bits of a descriptor (48-bit physical addresses).
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

#[derive(Clone, Debug)]
pub struct Paging {
    /// Physical address of `swapper_pg_dir`.
    pub pgd_phys: u64,
    /// log2 of the granule: 12, 14 or 16.
    pub granule_shift: u32,
    /// `VA_BITS` (the kernel half of the address space is the top `2^VA_BITS`).
    pub va_bits: u32,
    /// `PHYS_OFFSET` (`memstart_addr`): the linear map's physical base, wrapping.
    pub phys_offset: u64,
    /// `kimage_voffset`: kernel-image virtual minus physical.
    pub kimage_voffset: u64,
    /// 52-bit physical addresses (64 KiB pages with `ARM64_PA_BITS_52`).
    pub pa_52: bool,
}

impl Paging {
    /// From VMCOREINFO: `SYMBOL(swapper_pg_dir)`, `PAGESIZE`, `NUMBER(VA_BITS)`,
    /// `NUMBER(PHYS_OFFSET)`, `NUMBER(kimage_voffset)`.
    pub fn new(swapper_pg_dir: u64, page_size: u64, va_bits: u32, phys_offset: u64, kimage_voffset: u64) -> Paging {
        Paging {
            pgd_phys: swapper_pg_dir.wrapping_sub(kimage_voffset),
            granule_shift: page_size.trailing_zeros(),
            va_bits,
            phys_offset,
            kimage_voffset,
            pa_52: false,
        }
    }

    /// From a dump's VMCOREINFO; the name of the first key missing, if one is.
    pub fn from_vmcoreinfo(info: &lockscope_dump::VmcoreInfo) -> Result<Paging, &'static str> {
        let pgd = info.symbol("swapper_pg_dir").ok_or("SYMBOL(swapper_pg_dir)")?;
        let page = info.page_size().ok_or("PAGESIZE")?;
        let va_bits = info.number("VA_BITS").ok_or("NUMBER(VA_BITS)")? as u32;
        let phys_offset = info.number("PHYS_OFFSET").ok_or("NUMBER(PHYS_OFFSET)")? as u64;
        let voffset = info.number("kimage_voffset").ok_or("NUMBER(kimage_voffset)")? as u64;
        Ok(Paging::new(pgd, page, va_bits, phys_offset, voffset))
    }

    /// `PAGE_OFFSET`: the start of the linear map, the bottom of the kernel half.
    pub fn page_offset(&self) -> u64 {
        0u64.wrapping_sub(1 << self.va_bits)
    }

    /// `PAGE_END`: the end of the linear map (half the kernel space).
    fn page_end(&self) -> u64 {
        0u64.wrapping_sub(1 << (self.va_bits - 1))
    }

    /// The linear map's virtual address of a physical one.
    pub fn linear_vaddr(&self, paddr: u64) -> u64 {
        (paddr.wrapping_sub(self.phys_offset) & !self.page_offset()) | self.page_offset()
    }

    /// Table levels below the top: `VA_BITS` minus the page offset, `granule - 3` bits a level.
    pub fn levels(&self) -> u32 {
        let per = self.granule_shift - 3;
        (self.va_bits - self.granule_shift).div_ceil(per)
    }

    fn output_address(&self, entry: u64) -> u64 {
        // Bits below the granule are not address bits (with 52-bit PAs, 15:12 are PA 51:48).
        let oa = entry & OA_MASK & !((1u64 << self.granule_shift) - 1);
        if self.pa_52 && self.granule_shift == 16 { oa | ((entry >> 12) & 0xf) << 48 } else { oa }
    }

    /// Walks the tables, whatever the address (the formulas' check).
    pub fn walk(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError> {
        let levels = self.levels();
        let per = self.granule_shift - 3;
        let mut table = self.pgd_phys;
        for i in 0..levels {
            // Level numbers as the architecture counts them: the last is 3.
            let level = (4 - levels + i) as u8;
            let shift = self.granule_shift + per * (levels - 1 - i);
            let bits = if i == 0 { self.va_bits - shift } else { per };
            let index = (vaddr >> shift) & ((1 << bits) - 1);
            let entry = crate::arch::table_entry(mem, table + index * 8, level)?;
            let last = i + 1 == levels;
            match entry & 3 {
                0 | 2 => return Err(TranslateError::NotMapped { level }),
                // A block: the rest of the address is the offset in it.
                1 if !last => {
                    let size = 1u64 << shift;
                    let base = self.output_address(entry) & !(size - 1);
                    return Ok(Mapping { paddr: base | (vaddr & (size - 1)), page_size: size });
                }
                1 => return Err(TranslateError::NotMapped { level }),
                _ if last => {
                    let size = 1u64 << self.granule_shift;
                    return Ok(Mapping { paddr: self.output_address(entry) | (vaddr & (size - 1)), page_size: size });
                }
                _ => table = self.output_address(entry),
            }
        }
        Err(TranslateError::NotMapped { level: 3 })
    }
}

impl AddressSpace for Paging {
    fn is_kernel_address(&self, vaddr: u64) -> bool {
        vaddr >= self.page_offset()
    }

    fn translate(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError> {
        if !self.is_kernel_address(vaddr) {
            return Err(TranslateError::NonCanonical);
        }
        if vaddr < self.page_end() {
            let page = 1u64 << self.granule_shift;
            let paddr = (vaddr & !self.page_offset()).wrapping_add(self.phys_offset);
            return Ok(Mapping { paddr, page_size: page });
        }
        self.walk(mem, vaddr)
    }

    fn describe(&self) -> String {
        format!(
            "arm64 {}-level tables, {} KiB pages, VA_BITS {}, swapper_pg_dir at physical {:#x}",
            self.levels(),
            (1u64 << self.granule_shift) / 1024,
            self.va_bits,
            self.pgd_phys
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Physical memory as a map of 8-byte words (page tables built by hand).
    #[derive(Default)]
    struct Words(HashMap<u64, u64>);

    impl PhysRead for Words {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), lockscope_dump::ReadError> {
            let v = self.0.get(&paddr).copied().unwrap_or(0);
            buf.copy_from_slice(&v.to_le_bytes()[..buf.len()]);
            Ok(())
        }
    }

    /// Tables for one virtual address: each level's table one granule further on; the
    /// last entry maps `target` (a page, or a block at `block_level`).
    fn build(p: &Paging, vaddr: u64, target: u64, block_level: Option<u32>) -> Words {
        let mut w = Words::default();
        let levels = p.levels();
        let per = p.granule_shift - 3;
        let mut table = p.pgd_phys;
        for i in 0..levels {
            let shift = p.granule_shift + per * (levels - 1 - i);
            let bits = if i == 0 { p.va_bits - shift } else { per };
            let index = (vaddr >> shift) & ((1 << bits) - 1);
            let level = 4 - levels + i;
            if Some(level) == block_level {
                w.0.insert(table + index * 8, (target & !((1 << shift) - 1)) | 1);
                return w;
            }
            if i + 1 == levels {
                w.0.insert(table + index * 8, (target & !((1 << p.granule_shift) - 1)) | 3);
            } else {
                let next = table + (1 << p.granule_shift);
                w.0.insert(table + index * 8, next | 3);
                table = next;
            }
        }
        w
    }

    fn paging(page: u64, va_bits: u32) -> Paging {
        Paging {
            pgd_phys: 0x4100_0000,
            granule_shift: page.trailing_zeros(),
            va_bits,
            phys_offset: 0x4000_0000,
            kimage_voffset: 0,
            pa_52: false,
        }
    }

    #[test]
    fn every_granule_and_depth_walks_to_its_page() {
        for (page, va_bits, levels) in
            [(4096, 48, 4), (4096, 39, 3), (16384, 47, 3), (16384, 36, 2), (65536, 48, 3), (65536, 42, 2)]
        {
            let p = paging(page, va_bits);
            assert_eq!(p.levels(), levels, "{page} {va_bits}");
            // A vmalloc-like address in the upper half of the kernel space.
            let vaddr = 0u64.wrapping_sub(1 << (va_bits - 2)) + 3 * page + 0x123;
            let target = 0x4567_0000_u64 & !(page - 1);
            let mem = build(&p, vaddr, target, None);
            let m = p.translate(&mem, vaddr).unwrap();
            assert_eq!((m.paddr, m.page_size), (target + 0x123, page), "{page} {va_bits}");
            // An address whose entry is missing.
            assert!(matches!(p.translate(&mem, vaddr + (1 << 30)), Err(TranslateError::NotMapped { .. })));
        }
    }

    #[test]
    fn blocks_map_the_rest_of_the_address() {
        let p = paging(4096, 48);
        let vaddr = 0xffff_8000_1234_5678;
        let mem = build(&p, vaddr, 0x8000_0000, Some(2));
        let m = p.translate(&mem, vaddr).unwrap();
        assert_eq!((m.paddr, m.page_size), (0x8000_0000 | (vaddr & 0x1f_ffff), 2 << 20));
        let mem = build(&p, vaddr, 0x8000_0000, Some(1));
        assert_eq!(p.translate(&mem, vaddr).unwrap().page_size, 1 << 30);
    }

    #[test]
    fn the_linear_map_is_a_formula_and_user_addresses_are_not_kernel() {
        let p = paging(4096, 48);
        let v = p.linear_vaddr(0x4185_3000);
        assert_eq!(v, 0xffff_0000_0185_3000);
        assert_eq!(p.translate(&Words::default(), v).unwrap().paddr, 0x4185_3000);
        assert_eq!(p.translate(&Words::default(), 0x0000_ffff_0000_0000), Err(TranslateError::NonCanonical));
    }

    #[test]
    fn fifty_two_bit_output_addresses_with_64k_pages() {
        let mut p = paging(65536, 48);
        p.pa_52 = true;
        assert_eq!(p.output_address(0x0000_1234_5678_0000 | (0xa << 12) | 3), 0x000a_1234_5678_0000);
    }

    #[test]
    fn a_missing_vmcoreinfo_key_is_named() {
        let info = lockscope_dump::VmcoreInfo::parse(b"PAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffba4f06c53000\n");
        assert_eq!(Paging::from_vmcoreinfo(&info).err(), Some("NUMBER(VA_BITS)"));
    }
}
