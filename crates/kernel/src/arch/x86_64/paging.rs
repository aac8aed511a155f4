//! x86_64 kernel address translation: the kernel-image mapping by formula (phys_base),
//! everything else (direct map, vmalloc, vmemmap, modules, per-CPU areas) by walking the
//! kernel page tables from `swapper_pg_dir` / `init_top_pgt`, 4- or 5-level, with 1 GiB and
//! 2 MiB pages and the SME encryption bit masked off.

use crate::arch::{AddressSpace, Mapping, PhysRead, TranslateError};

/// `__START_KERNEL_map`: where the kernel image is mapped (before KASLR's shift).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Physical-address bits of a page-table entry.
const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;

#[derive(Clone, Debug)]
pub struct Paging {
    /// Physical address of the top-level page table.
    pub pgd_phys: u64,
    /// `phys_base`: how far the kernel image was loaded from where it was linked (physically).
    pub phys_base: i64,
    pub five_level: bool,
    /// AMD SME's encryption bit, cleared from entries before use.
    pub sme_mask: u64,
    /// The kernel image's virtual range `[start, end)`, translated by formula.
    pub image: (u64, u64),
}

impl Paging {
    /// From VMCOREINFO's facts: the virtual address of the top page table (a kernel-image
    /// symbol), `phys_base`, the paging mode, the SME mask and the image size.
    pub fn new(pgd_vaddr: u64, phys_base: i64, five_level: bool, sme_mask: u64, image_size: u64) -> Paging {
        let mut x =
            Paging { pgd_phys: 0, phys_base, five_level, sme_mask, image: (START_KERNEL_MAP, START_KERNEL_MAP) };
        x.image = (START_KERNEL_MAP, START_KERNEL_MAP.wrapping_add(image_size.max(1 << 30)));
        x.pgd_phys = x.image_phys(pgd_vaddr);
        x
    }

    /// Physical address of a kernel-image virtual address.
    pub fn image_phys(&self, vaddr: u64) -> u64 {
        vaddr.wrapping_sub(START_KERNEL_MAP).wrapping_add(self.phys_base as u64)
    }

    fn canonical(&self, vaddr: u64) -> bool {
        let bits = if self.five_level { 57 } else { 48 };
        let top = (vaddr as i64) >> (bits - 1);
        top == 0 || top == -1
    }
}

impl AddressSpace for Paging {
    fn is_kernel_address(&self, vaddr: u64) -> bool {
        let bits = if self.five_level { 57 } else { 48 };
        (vaddr as i64) >> (bits - 1) == -1
    }

    fn translate(&self, mem: &dyn PhysRead, vaddr: u64) -> Result<Mapping, TranslateError> {
        if !self.canonical(vaddr) {
            return Err(TranslateError::NonCanonical);
        }
        if vaddr >= self.image.0 && vaddr < self.image.1 {
            // The image is mapped with 2 MiB pages, linearly: no walk needed.
            return Ok(Mapping { paddr: self.image_phys(vaddr), page_size: 1 << 21 });
        }
        let mut table = self.pgd_phys;
        let levels: &[u8] = if self.five_level { &[5, 4, 3, 2, 1] } else { &[4, 3, 2, 1] };
        for &level in levels {
            let shift = 12 + 9 * (u32::from(level) - 1);
            let index = (vaddr >> shift) & 0x1ff;
            let entry = crate::arch::table_entry(mem, table + index * 8, level)? & !self.sme_mask;
            if entry & PRESENT == 0 {
                return Err(TranslateError::NotMapped { level });
            }
            let base = entry & PTE_ADDR_MASK;
            if level == 1 || ((level == 2 || level == 3) && entry & HUGE != 0) {
                let size = 1u64 << shift;
                return Ok(Mapping { paddr: (base & !(size - 1)) | (vaddr & (size - 1)), page_size: size });
            }
            table = base;
        }
        unreachable!("level 1 always returns")
    }

    fn translate_fixed(&self, vaddr: u64) -> Option<u64> {
        (vaddr >= self.image.0 && vaddr < self.image.1).then(|| self.image_phys(vaddr))
    }

    fn describe(&self) -> String {
        format!(
            "x86_64, {}-level paging, top page table at physical {:#x}, phys_base {:#x}",
            if self.five_level { 5 } else { 4 },
            self.pgd_phys,
            self.phys_base
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockscope_dump::{ReadError, ReadErrorKind};
    use std::collections::HashMap;

    /// Physical memory made of a few 8-byte words (page tables built by hand).
    struct Words(HashMap<u64, u64>);
    impl PhysRead for Words {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            match self.0.get(&paddr) {
                Some(v) => {
                    buf.copy_from_slice(&v.to_le_bytes()[..buf.len()]);
                    Ok(())
                }
                None => Err(ReadError { kind: ReadErrorKind::Filtered, paddr, offset: None, file: None }),
            }
        }
    }

    fn idx(v: u64, level: u32) -> u64 {
        (v >> (12 + 9 * (level - 1))) & 0x1ff
    }

    #[test]
    fn walks_4k_2m_1g_pages_and_masks_sme() {
        let sme = 1u64 << 47;
        let x = Paging { pgd_phys: 0x1000, phys_base: 0, five_level: false, sme_mask: sme, image: (0, 0) };
        let va4k = 0xffff_8880_0123_4567u64;
        let va2m = 0xffff_c900_0040_1234u64;
        let va1g = 0xffff_ea00_4000_0010u64;
        let mut m = HashMap::new();
        // 4 KiB: PML4 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 -> page 0x77000
        m.insert(0x1000 + idx(va4k, 4) * 8, 0x2000 | 3 | sme);
        m.insert(0x2000 + idx(va4k, 3) * 8, 0x3000 | 3);
        m.insert(0x3000 + idx(va4k, 2) * 8, 0x4000 | 3);
        m.insert(0x4000 + idx(va4k, 1) * 8, 0x77000 | 3 | (1 << 63));
        // 2 MiB page at 0x40000000
        m.insert(0x1000 + idx(va2m, 4) * 8, 0x5000 | 3);
        m.insert(0x5000 + idx(va2m, 3) * 8, 0x6000 | 3);
        m.insert(0x6000 + idx(va2m, 2) * 8, 0x4000_0000 | 3 | HUGE);
        // 1 GiB page at 0x80000000
        m.insert(0x1000 + idx(va1g, 4) * 8, 0x7000 | 3);
        m.insert(0x7000 + idx(va1g, 3) * 8, 0x8000_0000 | 3 | HUGE);
        let mem = Words(m);
        assert_eq!(x.translate(&mem, va4k).unwrap(), Mapping { paddr: 0x77567, page_size: 4096 });
        assert_eq!(x.translate(&mem, va2m).unwrap(), Mapping { paddr: 0x4000_1234, page_size: 1 << 21 });
        assert_eq!(x.translate(&mem, va1g).unwrap(), Mapping { paddr: 0x8000_0010, page_size: 1 << 30 });
        assert_eq!(x.translate(&mem, 0x0000_8000_0000_0000), Err(TranslateError::NonCanonical));
        assert!(matches!(
            x.translate(&mem, 0xffff_8880_4000_0000),
            Err(TranslateError::TableUnreadable { level: 3, .. })
        ));
    }
}

#[cfg(test)]
mod five_level {
    use super::*;
    use lockscope_dump::{ReadError, ReadErrorKind};
    use std::collections::HashMap;

    struct Words(HashMap<u64, u64>);
    impl PhysRead for Words {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            let v =
                self.0.get(&paddr).ok_or(ReadError { kind: ReadErrorKind::Hole, paddr, offset: None, file: None })?;
            buf.copy_from_slice(&v.to_le_bytes()[..buf.len()]);
            Ok(())
        }
    }

    #[test]
    fn five_level_walk_and_57_bit_canonical_addresses() {
        // The 5-level direct map base: 0xff11000000000000.
        let va = 0xff11_0000_0000_5123u64;
        let x = Paging { pgd_phys: 0x1000, phys_base: 0, five_level: true, sme_mask: 0, image: (0, 0) };
        let i = |l: u32| (va >> (12 + 9 * (l - 1))) & 0x1ff;
        let mut m = HashMap::new();
        m.insert(0x1000 + i(5) * 8, 0x2000 | 1);
        m.insert(0x2000 + i(4) * 8, 0x3000 | 1);
        m.insert(0x3000 + i(3) * 8, 0x4000 | 1);
        m.insert(0x4000 + i(2) * 8, 0x5000 | 1);
        m.insert(0x5000 + i(1) * 8, 0xabc000 | 1);
        assert_eq!(x.translate(&Words(m), va).unwrap(), Mapping { paddr: 0xabc123, page_size: 4096 });
        // Canonical with 57 bits, not with 48: only 5-level paging accepts it.
        let four = Paging { five_level: false, ..x.clone() };
        assert_eq!(four.translate(&Words(HashMap::new()), va), Err(TranslateError::NonCanonical));
        // The kernel image by formula, shifted by phys_base.
        let img = Paging::new(0xffff_ffff_8a01_0000, -0xa0_0000, false, 0, 1 << 30);
        assert_eq!(img.pgd_phys, 0x960_0000 + 0x1_0000);
    }
}
