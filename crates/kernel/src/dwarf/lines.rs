//! Source lines of kernel code from a vmlinux's DWARF line tables, for `dis` with
//! `--vmlinux`: `.debug_aranges` names the unit holding an address, and only that unit's line
//! program runs.

use super::parse::Rd;
use super::{DwarfError, DwarfErrorKind, Vmlinux};
use gimli::{EndianSlice, RunTimeEndian};

/// One row: the first address of a run of instructions from one source line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    pub address: u64,
    pub file: String,
    pub line: u64,
}

impl Vmlinux {
    /// The line rows of `[start, end)` (link-time addresses), by address.
    pub fn source_lines(&self, start: u64, end: u64) -> Result<Vec<SourceLine>, DwarfError> {
        let f = self.elf()?;
        let sections = self.dwarf_sections(&f)?;
        let dwarf: gimli::Dwarf<Rd<'_>> =
            gimli::Dwarf::load(|id| Ok::<_, gimli::Error>(EndianSlice::new(sections.get(id), RunTimeEndian::Little)))
                .map_err(|e| self.fail(e))?;
        let Some(unit_offset) = unit_of(&dwarf, start).map_err(|e| self.fail(e))? else {
            return Ok(Vec::new());
        };
        let header = dwarf.debug_info.header_from_offset(unit_offset).map_err(|e| self.fail(e))?;
        let unit = dwarf.unit(header).map_err(|e| self.fail(e))?;
        let Some(program) = unit.line_program.clone() else { return Ok(Vec::new()) };
        let mut rows = program.rows();
        let mut out = Vec::new();
        while let Some((header, row)) = rows.next_row().map_err(|e| self.fail(e))? {
            if row.end_sequence() || row.address() < start || row.address() >= end {
                continue;
            }
            let file = row.file(header).map_or_else(String::new, |file| {
                let name = dwarf.attr_string(&unit, file.path_name()).map(|s| s.to_string_lossy().into_owned());
                let dir = file
                    .directory(header)
                    .and_then(|d| dwarf.attr_string(&unit, d).ok())
                    .map(|s| s.to_string_lossy().into_owned());
                match (dir, name) {
                    (Some(d), Ok(n)) if !n.starts_with('/') && !d.is_empty() => format!("{d}/{n}"),
                    (_, Ok(n)) => n,
                    (_, Err(_)) => String::new(),
                }
            });
            out.push(SourceLine { address: row.address(), file, line: row.line().map_or(0, |l| l.get()) });
        }
        out.sort_by_key(|l| l.address);
        out.dedup_by_key(|l| l.address);
        Ok(out)
    }

    fn fail(&self, e: gimli::Error) -> DwarfError {
        self.err(DwarfErrorKind::Section { name: ".debug_line".into(), detail: e.to_string() })
    }
}

/// The unit whose address ranges (`.debug_aranges`) hold `address`.
fn unit_of(dwarf: &gimli::Dwarf<Rd<'_>>, address: u64) -> gimli::Result<Option<gimli::DebugInfoOffset>> {
    let mut headers = dwarf.debug_aranges.headers();
    while let Some(h) = headers.next()? {
        let mut entries = h.entries();
        while let Some(e) = entries.next()? {
            let r = e.range();
            if r.begin <= address && address < r.end {
                return Ok(Some(h.debug_info_offset()));
            }
        }
    }
    Ok(None)
}
