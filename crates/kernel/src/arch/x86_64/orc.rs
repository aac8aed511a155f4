//! ORC, the x86_64 kernel's own unwind tables (since 4.14), read from the dump: for every
//! code address, how to find the caller's stack pointer (the CFA), return address and frame
//! pointer. The kernel's tables are `__start_orc_unwind_ip` (signed 32-bit offsets, each
//! relative to its own slot) and `__start_orc_unwind` (6-byte entries), narrowed by
//! `orc_lookup` (one table index per 256 bytes of text); each module has its own in
//! `struct module`'s `arch.orc_unwind_ip` / `arch.orc_unwind` / `arch.num_orcs`.
//!
//! The entry's bit layout changed twice (4.19 added `end`; 6.3 `signal`; 6.4 widened `type`
//! to three bits, dropped `end` and renumbered the types; 7.1 renumbered the registers). The
//! layout is read from the kernel itself: the bitfields of `struct orc_entry` in its BTF, and
//! the register numbers from the kernel's own frame-pointer entry `orc_fp_entry`, whose
//! `bp_reg` is PREV_SP.

use crate::{Kernel, KernelError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Entries to read at most from a module's table (a module has a few thousand).
const MAX_MODULE_ORCS: u64 = 1 << 20;
/// The kernel's `LOOKUP_BLOCK_ORDER`: one `orc_lookup` slot per 256 bytes of text.
const LOOKUP_BLOCK_SHIFT: u32 = 8;

/// Where the CFA (or the frame pointer) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrcReg {
    Undefined,
    PrevSp,
    Ax,
    Dx,
    Di,
    Bp,
    Sp,
    R10,
    R13,
    BpIndirect,
    SpIndirect,
    Unknown(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrcType {
    /// No data: an error to meet (6.4+; older kernels use `sp_reg` UNDEFINED without `end`).
    Undefined,
    /// The bottom of a stack.
    EndOfStack,
    /// An ordinary call frame: the return address lies just below the CFA.
    Call,
    /// A full `struct pt_regs` at the CFA.
    Regs,
    /// The hardware's iret frame at the CFA (the rest of `pt_regs` not saved yet).
    RegsPartial,
}

/// One decoded `struct orc_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrcEntry {
    pub sp_offset: i16,
    pub bp_offset: i16,
    pub sp_reg: OrcReg,
    pub bp_reg: OrcReg,
    pub kind: OrcType,
    /// The next frame's pc is exact (an interrupted instruction), not a return address.
    pub signal: bool,
}

/// Register numbering of `sp_reg` / `bp_reg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegNumbering {
    /// 4.14 to 7.0: UNDEFINED 0, PREV_SP 1, DX 2, DI 3, BP 4, SP 5, R10 6, R13 7,
    /// BP_INDIRECT 8, SP_INDIRECT 9 (AX 10 in some trees).
    Classic,
    /// 7.1+: UNDEFINED 0, AX 1, DX 2, SP 3, BP 4, DI 5, R10 6, R13 7, PREV_SP 8,
    /// SP_INDIRECT 9, BP_INDIRECT 10.
    Renumbered,
}

/// The bit layout of the 16-bit flags word that follows the two offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrcFormat {
    pub type_shift: u8,
    pub type_bits: u8,
    /// 4.19–6.3: the `end` bit.
    pub end_bit: Option<u8>,
    /// 6.3+: the `signal` bit.
    pub signal_bit: Option<u8>,
    /// Types numbered UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4 (6.4+),
    /// else CALL 0, REGS 1, REGS_PARTIAL 2.
    pub typed_ends: bool,
    pub regs: RegNumbering,
}

impl OrcFormat {
    /// 4.19 to 6.2 (6.1 LTS among them): type in bits 8–9, `end` in bit 10.
    pub const V4_19: OrcFormat = OrcFormat {
        type_shift: 8,
        type_bits: 2,
        end_bit: Some(10),
        signal_bit: None,
        typed_ends: false,
        regs: RegNumbering::Classic,
    };
    /// 6.4 to 7.0: type in bits 8–10, `signal` in bit 11.
    pub const V6_4: OrcFormat = OrcFormat {
        type_shift: 8,
        type_bits: 3,
        end_bit: None,
        signal_bit: Some(11),
        typed_ends: true,
        regs: RegNumbering::Classic,
    };

    /// Decodes one 6-byte entry.
    pub fn decode(&self, raw: [u8; 6]) -> OrcEntry {
        let flags = u16::from_le_bytes([raw[4], raw[5]]);
        let bit = |b: Option<u8>| b.is_some_and(|b| flags >> b & 1 == 1);
        let ty = (flags >> self.type_shift) & ((1 << self.type_bits) - 1);
        let end = bit(self.end_bit);
        let sp_reg = self.reg((flags & 0xf) as u8);
        let kind = match (self.typed_ends, ty) {
            (true, 0) => OrcType::Undefined,
            (true, 1) => OrcType::EndOfStack,
            (true, 2) | (false, 0) => OrcType::Call,
            (true, 3) | (false, 1) => OrcType::Regs,
            (true, 4) | (false, 2) => OrcType::RegsPartial,
            _ => OrcType::Undefined,
        };
        // Before 6.4 the end of a stack is an UNDEFINED sp_reg with `end` set; without `end`
        // (4.19+) it is a gap in the table, i.e. no data.
        let kind = match (self.typed_ends, sp_reg, end) {
            (false, OrcReg::Undefined, true) => OrcType::EndOfStack,
            (false, OrcReg::Undefined, false) if self.end_bit.is_some() => OrcType::Undefined,
            (false, OrcReg::Undefined, false) => OrcType::EndOfStack,
            _ => kind,
        };
        let signal = match self.signal_bit {
            Some(_) => bit(self.signal_bit),
            None => matches!(kind, OrcType::Regs | OrcType::RegsPartial),
        };
        OrcEntry {
            sp_offset: i16::from_le_bytes([raw[0], raw[1]]),
            bp_offset: i16::from_le_bytes([raw[2], raw[3]]),
            sp_reg,
            bp_reg: self.reg((flags >> 4 & 0xf) as u8),
            kind,
            signal,
        }
    }

    fn reg(&self, n: u8) -> OrcReg {
        use OrcReg::*;
        match (self.regs, n) {
            (_, 0) => Undefined,
            (_, 2) => Dx,
            (_, 4) => Bp,
            (_, 6) => R10,
            (_, 7) => R13,
            (RegNumbering::Classic, 1) => PrevSp,
            (RegNumbering::Classic, 3) => Di,
            (RegNumbering::Classic, 5) => Sp,
            (RegNumbering::Classic, 8) => BpIndirect,
            (RegNumbering::Classic, 9) => SpIndirect,
            (RegNumbering::Classic, 10) => Ax,
            (RegNumbering::Renumbered, 1) => Ax,
            (RegNumbering::Renumbered, 3) => Sp,
            (RegNumbering::Renumbered, 5) => Di,
            (RegNumbering::Renumbered, 8) => PrevSp,
            (RegNumbering::Renumbered, 9) => SpIndirect,
            (RegNumbering::Renumbered, 10) => BpIndirect,
            (_, n) => Unknown(n),
        }
    }

    /// The layout of this kernel's entries, from its BTF and its `orc_fp_entry`.
    pub fn of_kernel(k: &Kernel) -> OrcFormat {
        let mut f = OrcFormat::V4_19;
        if let Ok(btf) = k.btf() {
            let bit = |name: &str| btf.member_of("struct orc_entry", name).ok();
            if let Some(t) = bit("type") {
                f.type_shift = (t.bit_offset.saturating_sub(32)) as u8;
                f.type_bits = t.bitfield_size.unwrap_or(2);
                f.end_bit = bit("end").map(|m| m.bit_offset.saturating_sub(32) as u8);
                f.signal_bit = bit("signal").map(|m| m.bit_offset.saturating_sub(32) as u8);
                f.typed_ends = f.end_bit.is_none() && f.signal_bit.is_some();
            }
        }
        // `orc_fp_entry` is {CALL, sp = BP + 16, bp = *(PREV_SP - 16)}: its bp_reg number is
        // this kernel's PREV_SP.
        if let Ok(a) = k.symbol("orc_fp_entry")
            && let Ok(flags) = k.memory().read_u16(a + 4)
            && flags >> 4 & 0xf == 8
        {
            f.regs = RegNumbering::Renumbered;
        }
        f
    }
}

/// One module's table, read whole (small).
struct ModuleTable {
    ips: Vec<u64>,
    entries: Vec<[u8; 6]>,
}

/// Where the kernel image's tables are.
#[derive(Clone, Copy, Debug)]
struct ImageTable {
    ip_start: u64,
    orc_start: u64,
    count: u64,
    /// The end of the kernel's text, init text included (`_einittext`): modules lie above.
    text_end: u64,
    /// `orc_lookup`, its number of blocks, and the text range it covers.
    lookup: Option<(u64, u64, u64, u64)>,
}

/// The ORC tables of a kernel, found on first use.
#[derive(Default)]
pub struct Orc {
    format: OnceLock<OrcFormat>,
    image: OnceLock<Option<ImageTable>>,
    modules: Mutex<HashMap<u64, Option<Arc<ModuleTable>>>>,
}

impl Orc {
    pub fn format(&self, k: &Kernel) -> OrcFormat {
        *self.format.get_or_init(|| OrcFormat::of_kernel(k))
    }

    /// The entry covering `pc`, or `None` when no table covers it.
    pub fn find(&self, k: &Kernel, pc: u64) -> Option<OrcEntry> {
        let raw = match self.image(k) {
            Some(t) if pc >= t.first_ip(k)? && pc < t.text_end => t.find(k, pc)?,
            _ => self.find_in_module(k, pc)?,
        };
        Some(self.format(k).decode(raw))
    }

    fn image(&self, k: &Kernel) -> Option<ImageTable> {
        *self.image.get_or_init(|| ImageTable::locate(k).ok())
    }

    fn find_in_module(&self, k: &Kernel, pc: u64) -> Option<[u8; 6]> {
        let m = k.modules().ok()?.iter().find(|m| m.contains(pc))?;
        let table = {
            let mut cache = self.modules.lock().ok()?;
            cache.entry(m.address).or_insert_with(|| ModuleTable::read(k, m.address).ok().map(Arc::new)).clone()?
        };
        let i = table.ips.partition_point(|&ip| ip <= pc).checked_sub(1)?;
        Some(table.entries[i])
    }
}

impl ImageTable {
    fn locate(k: &Kernel) -> Result<ImageTable, KernelError> {
        let ip_start = k.symbol("__start_orc_unwind_ip")?;
        let ip_stop = k.symbol("__stop_orc_unwind_ip")?;
        let orc_start = k.symbol("__start_orc_unwind")?;
        let count = crate::validate::in_range(
            "__stop_orc_unwind_ip - __start_orc_unwind_ip",
            ip_stop.wrapping_sub(ip_start) / 4,
            1,
            1 << 24,
            "is not a plausible number of ORC entries",
        )?;
        let lookup = (|| -> Result<(u64, u64, u64, u64), KernelError> {
            let table = k.symbol("orc_lookup")?;
            let blocks = u64::from(
                k.memory()
                    .read_u32(k.symbol("lookup_num_blocks")?)
                    .map_err(|err| KernelError::Memory { what: "lookup_num_blocks".into(), err })?,
            );
            let stext = k.symbol("_stext")?;
            let etext = k.symbol("_etext")?;
            Ok((table, blocks, stext, etext))
        })()
        .ok()
        .filter(|&(_, blocks, s, e)| blocks > 1 && e > s && (e - s) >> LOOKUP_BLOCK_SHIFT <= blocks + 1);
        let text_end = k
            .symbol("_einittext")
            .or_else(|_| k.symbol("_etext"))
            .unwrap_or(super::paging::START_KERNEL_MAP + (1 << 30));
        Ok(ImageTable { ip_start, orc_start, count, text_end, lookup })
    }

    fn ip(&self, k: &Kernel, i: u64) -> Option<u64> {
        let at = self.ip_start + 4 * i;
        let off = k.memory().read_u32(at).ok()? as i32;
        Some(at.wrapping_add_signed(off.into()))
    }

    fn first_ip(&self, k: &Kernel) -> Option<u64> {
        self.ip(k, 0)
    }

    /// The last entry whose address is ≤ pc: within the `orc_lookup` block of pc when the
    /// kernel filled that table in, else over the whole table.
    fn find(&self, k: &Kernel, pc: u64) -> Option<[u8; 6]> {
        let narrowed = self.lookup.and_then(|(table, blocks, stext, etext)| {
            if pc < stext || pc >= etext {
                return None;
            }
            let block = (pc - stext) >> LOOKUP_BLOCK_SHIFT;
            if block + 1 >= blocks {
                return None;
            }
            let lo = u64::from(k.memory().read_u32(table + 4 * block).ok()?);
            let hi = u64::from(k.memory().read_u32(table + 4 * (block + 1)).ok()?) + 1;
            (lo < hi && hi <= self.count).then_some((lo, hi))
        });
        let i = match narrowed.and_then(|(lo, hi)| self.search(k, pc, lo, hi)) {
            Some(i) => i,
            None => self.search(k, pc, 0, self.count)?,
        };
        let mut raw = [0u8; 6];
        k.memory().read(self.orc_start + 6 * i, &mut raw).ok()?;
        Some(raw)
    }

    /// Binary search in `[lo, hi)` for the last ip ≤ pc.
    fn search(&self, k: &Kernel, pc: u64, mut lo: u64, mut hi: u64) -> Option<u64> {
        if self.ip(k, lo)? > pc {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.ip(k, mid)? <= pc {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }
}

impl ModuleTable {
    fn read(k: &Kernel, module: u64) -> Result<ModuleTable, KernelError> {
        let m = k.object(module, "struct module")?;
        let arch = m.member("arch")?;
        let n = crate::validate::in_range(
            "module arch.num_orcs",
            arch.member("num_orcs")?.read_int()?,
            0,
            MAX_MODULE_ORCS,
            "is more ORC entries than a module has",
        )?;
        let ip_at = arch.member("orc_unwind_ip")?.read_u64()?;
        let orc_at = arch.member("orc_unwind")?.read_u64()?;
        let mem = k.memory();
        let what = || format!("ORC table of the module at {module:#x}");
        let ips = mem.read_vec(ip_at, (n * 4) as usize).map_err(|err| KernelError::Memory { what: what(), err })?;
        let orcs = mem.read_vec(orc_at, (n * 6) as usize).map_err(|err| KernelError::Memory { what: what(), err })?;
        let mut pairs: Vec<(u64, [u8; 6])> = ips
            .chunks_exact(4)
            .zip(orcs.chunks_exact(6))
            .enumerate()
            .map(|(i, (ip, e))| {
                let off = i32::from_le_bytes(ip.try_into().expect("4 bytes"));
                (ip_at.wrapping_add(4 * i as u64).wrapping_add_signed(off.into()), e.try_into().expect("6 bytes"))
            })
            .collect();
        // Sorted when the module loaded; sort again rather than trust memory.
        pairs.sort_by_key(|p| p.0);
        Ok(ModuleTable { ips: pairs.iter().map(|p| p.0).collect(), entries: pairs.iter().map(|p| p.1).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(sp_offset: i16, bp_offset: i16, flags: u16) -> [u8; 6] {
        let mut r = [0u8; 6];
        r[0..2].copy_from_slice(&sp_offset.to_le_bytes());
        r[2..4].copy_from_slice(&bp_offset.to_le_bytes());
        r[4..6].copy_from_slice(&flags.to_le_bytes());
        r
    }

    #[test]
    fn the_frame_pointer_entry_in_each_layout() {
        // orc_fp_entry: CALL, sp = BP + 16, bp = *(PREV_SP - 16).
        let v1 = OrcFormat::V4_19.decode(raw(16, -16, 0x0014));
        let v3 = OrcFormat::V6_4.decode(raw(16, -16, 0x0214));
        let v4 = OrcFormat { regs: RegNumbering::Renumbered, ..OrcFormat::V6_4 }.decode(raw(16, -16, 0x0284));
        for e in [v1, v3, v4] {
            assert_eq!(
                (e.kind, e.sp_reg, e.bp_reg, e.sp_offset, e.bp_offset),
                (OrcType::Call, OrcReg::Bp, OrcReg::PrevSp, 16, -16)
            );
            assert!(!e.signal);
        }
    }

    #[test]
    fn ends_and_gaps_before_and_after_6_4() {
        // 4.19–6.3: sp_reg UNDEFINED with `end` is the stack's bottom, without it a gap.
        assert_eq!(OrcFormat::V4_19.decode(raw(0, 0, 1 << 10)).kind, OrcType::EndOfStack);
        assert_eq!(OrcFormat::V4_19.decode(raw(0, 0, 0)).kind, OrcType::Undefined);
        // 6.4+: the type says it.
        assert_eq!(OrcFormat::V6_4.decode(raw(0, 0, 1 << 8)).kind, OrcType::EndOfStack);
        assert_eq!(OrcFormat::V6_4.decode(raw(0, 0, 0)).kind, OrcType::Undefined);
        // REGS (sp + 0) and the iret frame; before 6.3 they imply `signal`.
        let regs = OrcFormat::V4_19.decode(raw(0, 0, 0x0105));
        assert_eq!((regs.kind, regs.sp_reg, regs.signal), (OrcType::Regs, OrcReg::Sp, true));
        let iret = OrcFormat::V6_4.decode(raw(8, 0, 0x0405 | 1 << 11));
        assert_eq!((iret.kind, iret.signal, iret.sp_offset), (OrcType::RegsPartial, true, 8));
        // 6.3: two-bit type at 8, `signal` at 10, `end` at 11 (what BTF's struct orc_entry
        // gives there); the old type numbers.
        let v6_3 = OrcFormat { end_bit: Some(11), signal_bit: Some(10), ..OrcFormat::V4_19 };
        assert_eq!(v6_3.decode(raw(0, 0, 1 << 11)).kind, OrcType::EndOfStack);
        let call = v6_3.decode(raw(8, 0, 0x0005));
        assert_eq!((call.kind, call.signal), (OrcType::Call, false));
        let sig = v6_3.decode(raw(8, 0, 0x0005 | 1 << 10));
        assert_eq!((sig.kind, sig.signal), (OrcType::Call, true));
        // 4.14 had no `end`: an UNDEFINED sp_reg always meant the bottom.
        let v4_14 = OrcFormat { end_bit: None, ..OrcFormat::V4_19 };
        assert_eq!(v4_14.decode(raw(0, 0, 0)).kind, OrcType::EndOfStack);
    }
}
