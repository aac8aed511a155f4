//! DWARF call frame information (`.debug_frame`) of a vmlinux: the fallback unwind data for
//! kernels whose dump has no ORC (before 4.14, or built with frame pointers), and a second
//! opinion on ORC when asked. Kernel CFI describes C functions only; entry code has none.

use super::{DwarfError, DwarfErrorKind, Vmlinux};
use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EndianSlice, LittleEndian, RegisterRule, UnwindContext, UnwindSection,
};

/// How to find the caller's registers at one address: the CFA as register + offset, and
/// where registers were saved, as offsets from the CFA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfiRow {
    pub cfa_register: u16,
    pub cfa_offset: i64,
    /// (DWARF register, offset from the CFA) of each register saved on the stack; the return
    /// address column among them.
    pub saved: Vec<(u16, i64)>,
    /// Registers whose value the caller had too.
    pub same: Vec<u16>,
    /// The return-address column of the entry.
    pub return_address: u16,
}

/// `.debug_frame`, with its FDEs indexed by address (the section has no index of its own).
pub struct CallFrameInfo {
    data: Vec<u8>,
    /// (start, end, FDE offset), sorted by start.
    fdes: Vec<(u64, u64, usize)>,
}

impl std::fmt::Debug for CallFrameInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFrameInfo").field("fdes", &self.fdes.len()).finish()
    }
}

impl Vmlinux {
    /// The file's `.debug_frame`, indexed; an error when it has none.
    pub fn call_frame_info(&self) -> Result<CallFrameInfo, DwarfError> {
        use object::{Object, ObjectSection};
        let f = self.elf()?;
        let s = f.section_by_name(".debug_frame").ok_or_else(|| self.err(DwarfErrorKind::NoDwarf))?;
        let data = s
            .uncompressed_data()
            .map_err(|e| self.err(DwarfErrorKind::Section { name: ".debug_frame".into(), detail: e.to_string() }))?
            .into_owned();
        let mut cfi = CallFrameInfo { data, fdes: Vec::new() };
        cfi.index();
        Ok(cfi)
    }
}

impl CallFrameInfo {
    fn section(&self) -> DebugFrame<EndianSlice<'_, LittleEndian>> {
        let mut s = DebugFrame::new(&self.data, LittleEndian);
        s.set_address_size(8);
        s
    }

    fn index(&mut self) {
        let section = self.section();
        let bases = BaseAddresses::default();
        let mut entries = section.entries(&bases);
        let mut fdes = Vec::new();
        while let Ok(Some(e)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = e
                && let Ok(fde) = partial.parse(DebugFrame::cie_from_offset)
                && fde.len() > 0
            {
                let offset = fde.offset();
                fdes.push((fde.initial_address(), fde.initial_address() + fde.len(), offset));
            }
        }
        fdes.sort_unstable();
        self.fdes = fdes;
    }

    /// Number of functions described.
    pub fn len(&self) -> usize {
        self.fdes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fdes.is_empty()
    }

    /// The row for a link-time address, when an FDE covers it and its CFA is register-based.
    pub fn row(&self, pc: u64) -> Option<CfiRow> {
        let i = self.fdes.partition_point(|f| f.0 <= pc).checked_sub(1)?;
        let (start, end, offset) = self.fdes[i];
        if pc < start || pc >= end {
            return None;
        }
        let section = self.section();
        let bases = BaseAddresses::default();
        let fde = section.fde_from_offset(&bases, gimli::DebugFrameOffset(offset), DebugFrame::cie_from_offset).ok()?;
        let mut ctx = Box::new(UnwindContext::new());
        let row = fde.unwind_info_for_address(&section, &bases, &mut ctx, pc).ok()?;
        let CfaRule::RegisterAndOffset { register, offset } = row.cfa() else { return None };
        let mut out = CfiRow {
            cfa_register: register.0,
            cfa_offset: *offset,
            saved: Vec::new(),
            same: Vec::new(),
            return_address: fde.cie().return_address_register().0,
        };
        for (reg, rule) in row.registers() {
            match rule {
                RegisterRule::Offset(o) => out.saved.push((reg.0, *o)),
                RegisterRule::SameValue => out.same.push(reg.0),
                _ => {}
            }
        }
        Some(out)
    }
}
