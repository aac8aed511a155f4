//! ELF cores (/proc/vmcore saved as is, `makedumpfile -E`, QEMU `dump-guest-memory`):
//! program headers come from the `object` crate; PT_LOAD segments are folded into one sorted
//! table of non-overlapping physical spans, so a lookup is a binary search and the overlap
//! between the kernel-text segment and the RAM segment that holds it does not matter.

use crate::error::{DumpError, DumpErrorKind};
use crate::notes::{self, Arch, Notes};
use crate::raw::Endian;
use object::Endian as _;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use std::collections::BTreeSet;

/// Offset of the class byte (32/64-bit) in `e_ident`.
const EI_CLASS: usize = 4;

/// What a physical span of an ELF core holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpanKind {
    /// Bytes in the file, starting at this offset.
    Data { file_offset: u64 },
    /// Promised by `p_filesz` but the file ends first (it was cut short); the data would be
    /// at this offset.
    Lost { file_offset: u64 },
    /// `p_memsz` beyond `p_filesz`: left out by the dump tool.
    Filtered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u64,
    pub end: u64,
    pub kind: SpanKind,
}

/// One PT_LOAD as written, for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    pub paddr: u64,
    pub vaddr: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

pub(crate) struct ElfCore {
    pub spans: Vec<Span>,
    pub segments: Vec<LoadSegment>,
    pub arch: Arch,
    /// makedumpfile sets `e_flags` bit 0 when it could not write everything.
    pub incomplete: bool,
    pub notes: Notes,
    /// File ranges (offset, length) of the notes in the PT_NOTE segments.
    pub note_ranges: Vec<(u64, u64)>,
    /// The first PT_NOTE segment whose size says more than its notes.
    pub notes_cut: Option<notes::NotesCut>,
    pub endian: Endian,
    /// ELFCLASS32 core (a 32-bit machine).
    pub class32: bool,
    /// `e_machine`.
    pub machine: u16,
}

pub(crate) fn parse(data: &[u8]) -> Result<ElfCore, DumpError> {
    match data.get(EI_CLASS) {
        Some(&elf::ELFCLASS64) => parse_with::<elf::FileHeader64<object::Endianness>>(data),
        Some(&elf::ELFCLASS32) => parse_with::<elf::FileHeader32<object::Endianness>>(data),
        _ => Err(DumpError::bad("unknown ELF class", EI_CLASS as u64)),
    }
}

fn parse_with<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) -> Result<ElfCore, DumpError> {
    // object's messages are not 'static; say which step failed instead.
    let bad = |what: &'static str| move |_: object::read::Error| DumpError::new(DumpErrorKind::BadElf(what), 0);
    let header = H::parse(data).map_err(bad("unreadable file header"))?;
    let endian = header.endian().map_err(bad("unknown byte order"))?;
    if header.e_type(endian) != elf::ET_CORE {
        return Err(DumpError::new(DumpErrorKind::BadElf("not a core file (e_type is not ET_CORE)"), 16));
    }
    let machine = header.e_machine(endian);
    let arch = match machine {
        elf::EM_X86_64 => Arch::X86_64,
        elf::EM_AARCH64 => Arch::Aarch64,
        _ => Arch::Other,
    };
    let our_endian = if endian.is_little_endian() { Endian::Little } else { Endian::Big };
    let phdrs = header.program_headers(endian, data).map_err(bad("program headers out of the file"))?;
    let file_len = data.len() as u64;
    let mut segments = Vec::new();
    let mut notes = Notes::empty();
    let mut note_ranges = Vec::new();
    let mut notes_cut = None;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_LOAD => segments.push(LoadSegment {
                paddr: ph.p_paddr(endian).into(),
                vaddr: ph.p_vaddr(endian).into(),
                file_offset: ph.p_offset(endian).into(),
                file_size: ph.p_filesz(endian).into(),
                mem_size: ph.p_memsz(endian).into(),
            }),
            elf::PT_NOTE => {
                let off: u64 = ph.p_offset(endian).into();
                let size: u64 = ph.p_filesz(endian).into();
                // A note segment cut by the end of the file still yields the notes before the cut.
                let end = off.saturating_add(size).min(file_len);
                // Only the well-formed notes are kept: a damaged p_filesz must not make the
                // page data after them part of the notes.
                if off < end {
                    let blob = &data[off as usize..end as usize];
                    let used = notes::collect(&mut notes, blob, our_endian, arch);
                    notes_cut = notes_cut.or(notes::NotesCut::check(off, size, blob, used));
                    note_ranges.push((off, used as u64));
                }
            }
            _ => {}
        }
    }
    notes::number_cpus(&mut notes);
    let spans = fold_segments(&segments, file_len);
    let incomplete = header.e_flags(endian) & 1 != 0;
    let class32 = data.get(EI_CLASS) == Some(&elf::ELFCLASS32);
    Ok(ElfCore {
        spans,
        segments,
        arch,
        incomplete,
        notes,
        note_ranges,
        notes_cut,
        endian: our_endian,
        class32,
        machine,
    })
}

/// Folds possibly overlapping segments into sorted, disjoint spans. Where segments overlap,
/// bytes in the file win over a filtered or lost tail, and an earlier segment over a later one.
pub(crate) fn fold_segments(segments: &[LoadSegment], file_len: u64) -> Vec<Span> {
    // (start, end, rank, kind): lower rank wins.
    let mut pieces: Vec<(u64, u64, (u8, usize), SpanKind)> = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let Some(mem_end) = s.paddr.checked_add(s.mem_size) else { continue };
        let data_len = s.file_size.min(s.mem_size);
        let in_file = file_len.saturating_sub(s.file_offset).min(data_len);
        let data_end = s.paddr + in_file;
        if in_file > 0 {
            pieces.push((s.paddr, data_end, (0, i), SpanKind::Data { file_offset: s.file_offset }));
        }
        if data_len > in_file {
            let file_offset = s.file_offset.saturating_add(in_file);
            pieces.push((data_end, s.paddr + data_len, (1, i), SpanKind::Lost { file_offset }));
        }
        if s.mem_size > data_len {
            pieces.push((s.paddr + data_len, mem_end, (2, i), SpanKind::Filtered));
        }
    }
    // Sweep over the piece boundaries with the set of pieces covering the current point.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(pieces.len() * 2);
    for (idx, p) in pieces.iter().enumerate() {
        events.push((p.0, true, idx));
        events.push((p.1, false, idx));
    }
    events.sort_unstable_by_key(|e| (e.0, e.1));
    let mut active: BTreeSet<((u8, usize), usize)> = BTreeSet::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let x = events[i].0;
        while i < events.len() && events[i].0 == x {
            let (_, starts, idx) = events[i];
            if starts {
                active.insert((pieces[idx].2, idx));
            } else {
                active.remove(&(pieces[idx].2, idx));
            }
            i += 1;
        }
        let Some(&(_, owner)) = active.first() else { continue };
        let Some(next) = events.get(i).map(|e| e.0) else { break };
        let (p_start, _, _, kind) = pieces[owner];
        let kind = match kind {
            SpanKind::Data { file_offset } => SpanKind::Data { file_offset: file_offset + (x - p_start) },
            SpanKind::Lost { file_offset } => SpanKind::Lost { file_offset: file_offset.saturating_add(x - p_start) },
            k => k,
        };
        match spans.last_mut() {
            Some(last) if last.end == x && continues(last, kind) => last.end = next,
            _ => spans.push(Span { start: x, end: next, kind }),
        }
    }
    spans
}

fn continues(last: &Span, kind: SpanKind) -> bool {
    match (last.kind, kind) {
        (SpanKind::Data { file_offset: a }, SpanKind::Data { file_offset: b })
        | (SpanKind::Lost { file_offset: a }, SpanKind::Lost { file_offset: b }) => a + (last.end - last.start) == b,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(paddr: u64, file_offset: u64, file_size: u64, mem_size: u64) -> LoadSegment {
        LoadSegment { paddr, vaddr: 0, file_offset, file_size, mem_size }
    }

    #[test]
    fn overlapping_segments_prefer_file_data_and_report_filtered_tails() {
        // RAM 0..0x4000 with a filtered tail from 0x3000; a text segment repeating 0x2000..0x4000.
        let spans = fold_segments(&[seg(0, 0x1000, 0x3000, 0x4000), seg(0x2000, 0x9000, 0x2000, 0x2000)], 1 << 20);
        assert_eq!(
            spans,
            vec![
                Span { start: 0, end: 0x3000, kind: SpanKind::Data { file_offset: 0x1000 } },
                Span { start: 0x3000, end: 0x4000, kind: SpanKind::Data { file_offset: 0xa000 } },
            ]
        );
        let spans = fold_segments(&[seg(0, 0x1000, 0x1000, 0x3000)], 0x1800);
        assert_eq!(spans[0], Span { start: 0, end: 0x800, kind: SpanKind::Data { file_offset: 0x1000 } });
        assert_eq!(spans[1], Span { start: 0x800, end: 0x1000, kind: SpanKind::Lost { file_offset: 0x1800 } });
        assert_eq!(spans[2], Span { start: 0x1000, end: 0x3000, kind: SpanKind::Filtered });
    }
}
