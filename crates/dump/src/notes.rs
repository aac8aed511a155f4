//! ELF notes of a dump: per-CPU registers (`NT_PRSTATUS`, QEMU's CPU state) and the
//! VMCOREINFO text. The same note blob appears in ELF cores (PT_NOTE) and after the
//! kdump sub-header.

use crate::raw::notes::{NOTE_HEADER_LEN, NT_PRFPREG, NT_PRSTATUS, prstatus, qemu_cpu_state};
use crate::raw::{Endian, i32_at, u32_at, u64_at};

/// The machine the dump came from, as far as register layouts are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    Other,
}

impl Arch {
    /// The architecture a dump's notes show when its header does not name one (QEMU's
    /// kdump files leave utsname empty): the register layout of its CPU notes, else the
    /// VMCOREINFO keys only one architecture writes.
    pub fn from_notes(notes: &Notes) -> Arch {
        if let Some(p) = notes.prstatus.first() {
            return p.regs.arch();
        }
        let info = notes.vmcoreinfo.as_deref().map(crate::VmcoreInfo::parse);
        match info {
            Some(i) if i.number("kimage_voffset").is_some() => Arch::Aarch64,
            Some(i) if i.symbol("init_top_pgt").is_some() || i.number("phys_base").is_some() => Arch::X86_64,
            _ => Arch::Other,
        }
    }

    pub fn from_machine_name(machine: &str) -> Arch {
        match machine {
            "x86_64" => Arch::X86_64,
            "aarch64" | "arm64" => Arch::Aarch64,
            _ => Arch::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Other => "unknown",
        }
    }
}

/// x86_64 `user_regs_struct` as saved in `elf_prstatus.pr_reg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X86_64Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl X86_64Regs {
    fn from_pr_reg(r: &[u64; prstatus::X86_64_REG_COUNT]) -> X86_64Regs {
        X86_64Regs {
            r15: r[0],
            r14: r[1],
            r13: r[2],
            r12: r[3],
            rbp: r[4],
            rbx: r[5],
            r11: r[6],
            r10: r[7],
            r9: r[8],
            r8: r[9],
            rax: r[10],
            rcx: r[11],
            rdx: r[12],
            rsi: r[13],
            rdi: r[14],
            orig_rax: r[15],
            rip: r[16],
            cs: r[17],
            eflags: r[18],
            rsp: r[19],
            ss: r[20],
            fs_base: r[21],
            gs_base: r[22],
            ds: r[23],
            es: r[24],
            fs: r[25],
            gs: r[26],
        }
    }
}

/// arm64 `user_pt_regs`: x0..x30 (x29 = frame pointer, x30 = link register), sp, pc, pstate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aarch64Regs {
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
}

/// Registers in the layout of the dumped architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registers {
    X86_64(X86_64Regs),
    Aarch64(Aarch64Regs),
}

impl Registers {
    /// The architecture whose layout these are.
    pub fn arch(&self) -> Arch {
        match self {
            Registers::X86_64(_) => Arch::X86_64,
            Registers::Aarch64(_) => Arch::Aarch64,
        }
    }

    /// Instruction pointer (rip / pc).
    pub fn ip(&self) -> u64 {
        match self {
            Registers::X86_64(r) => r.rip,
            Registers::Aarch64(r) => r.pc,
        }
    }
    /// Stack pointer (rsp / sp).
    pub fn sp(&self) -> u64 {
        match self {
            Registers::X86_64(r) => r.rsp,
            Registers::Aarch64(r) => r.sp,
        }
    }
}

/// One CPU's `NT_PRSTATUS` note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrStatus {
    /// The CPU number (see `Notes::numbering` for how sure it is).
    pub cpu: u32,
    /// Position among the PRSTATUS notes, from 0.
    pub note_index: u32,
    /// kdump: pid of the task current on that CPU (0 = idle). QEMU: cpu index + 1.
    pub pid: i32,
    pub signal: i16,
    pub regs: Registers,
}

/// QEMU's per-vCPU state note (x86_64): the registers plus what a kdump note lacks,
/// control registers (CR3 = page-table root) and segment bases (GS base = per-CPU area in
/// kernel mode, IDT base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QemuCpuState {
    pub cpu: u32,
    pub regs: X86_64Regs,
    /// CR0..CR4.
    pub cr: [u64; 5],
    pub fs_base: u64,
    pub gs_base: u64,
    pub gdt_base: u64,
    pub idt_base: u64,
}

/// How `PrStatus::cpu` was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuNumbering {
    /// QEMU wrote the notes: one per vCPU and `pr_pid` = cpu index + 1, so every number is exact.
    QemuIndex,
    /// A kernel's crash path wrote them: the k-th note is taken for the k-th CPU, which is
    /// wrong when a CPU left no note (a CPU that never answered the crash NMI). Exact numbers
    /// need the per-CPU `crash_notes` variable, i.e. symbols (the kernel layer's job).
    NoteOrder,
    /// No register notes.
    None,
}

/// Everything the dump's notes say.
#[derive(Clone, Debug)]
pub struct Notes {
    pub prstatus: Vec<PrStatus>,
    pub qemu: Vec<QemuCpuState>,
    pub numbering: CpuNumbering,
    /// The VMCOREINFO note's text, when there was one.
    pub vmcoreinfo: Option<Vec<u8>>,
    /// `NT_PRFPREG` notes: QEMU writes one after each CPU's `NT_PRSTATUS` on arm64 (with
    /// no QEMU note there to tell its notes apart); a kernel's crash path writes none.
    pub fp_regs: u32,
    /// Notes of other names and types, counted.
    pub other: u32,
}

impl Notes {
    pub(crate) fn empty() -> Notes {
        Notes {
            prstatus: Vec::new(),
            qemu: Vec::new(),
            numbering: CpuNumbering::None,
            vmcoreinfo: None,
            fp_regs: 0,
            other: 0,
        }
    }

    /// The notes of a blob found elsewhere than the dump's note area: a CPU's `crash_notes`
    /// buffer in kernel memory, where the crash path saves its registers.
    pub fn parse(blob: &[u8], big_endian: bool, arch: Arch) -> Notes {
        let mut notes = Notes::empty();
        let endian = if big_endian { Endian::Big } else { Endian::Little };
        collect(&mut notes, blob, endian, arch);
        number_cpus(&mut notes);
        notes
    }
}

/// One raw note: name without its NUL, type, descriptor.
pub(crate) struct RawNote<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

/// Iterates a note blob. A header or a size that runs past the blob ends the walk (a blob
/// padded with zeros, as kdump leaves it, ends at the first empty header).
pub(crate) fn iter_notes(blob: &[u8], endian: Endian) -> impl Iterator<Item = RawNote<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let namesz = u32_at(blob, pos, endian)? as usize;
        let descsz = u32_at(blob, pos + 4, endian)? as usize;
        let kind = u32_at(blob, pos + 8, endian)?;
        if namesz == 0 && descsz == 0 && kind == 0 {
            return None;
        }
        let name_start = pos + NOTE_HEADER_LEN;
        let desc_start = name_start.checked_add(namesz.checked_next_multiple_of(4)?)?;
        let next = desc_start.checked_add(descsz.checked_next_multiple_of(4)?)?;
        let name = blob.get(name_start..name_start + namesz)?;
        let desc = blob.get(desc_start..desc_start + descsz)?;
        pos = next;
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        Some(RawNote { name, kind, desc })
    })
}

/// A note area whose declared size is more than its notes: the bytes after the last
/// well-formed note are not zeros, so the size field is damaged and only the notes are used
/// (a writer copying the area would otherwise carry megabytes of page data as "notes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotesCut {
    /// File offset of the note area.
    pub offset: u64,
    /// Its size as declared (PT_NOTE `p_filesz`, kdump `size_note`).
    pub declared: u64,
    /// Bytes of well-formed notes kept.
    pub kept: u64,
}

impl NotesCut {
    /// The cut, when `blob` (the area as declared, possibly capped by the file or header)
    /// holds more than its first `used` bytes of notes and the rest is not padding.
    pub(crate) fn check(offset: u64, declared: u64, blob: &[u8], used: usize) -> Option<NotesCut> {
        let garbage = declared > blob.len() as u64 || blob[used..].iter().any(|&b| b != 0);
        garbage.then_some(NotesCut { offset, declared, kept: used as u64 })
    }
}

/// Collects the notes of one blob into `notes` (several PT_NOTE segments may add up) and
/// returns how many bytes at its start are well-formed notes.
pub(crate) fn collect(notes: &mut Notes, blob: &[u8], endian: Endian, arch: Arch) -> usize {
    let mut used = 0;
    for n in iter_notes(blob, endian) {
        let desc_end = n.desc.as_ptr() as usize - blob.as_ptr() as usize + n.desc.len();
        used = desc_end.next_multiple_of(4).min(blob.len());
        match (n.name, n.kind) {
            (b"CORE", NT_PRSTATUS) => match parse_prstatus(n.desc, endian, arch) {
                Some((pid, signal, regs)) => {
                    let index = notes.prstatus.len() as u32;
                    notes.prstatus.push(PrStatus { cpu: index, note_index: index, pid, signal, regs });
                }
                None => notes.other += 1,
            },
            (b"QEMU", 0) => match parse_qemu(n.desc, endian) {
                Some(mut q) => {
                    q.cpu = notes.qemu.len() as u32;
                    notes.qemu.push(q);
                }
                None => notes.other += 1,
            },
            (b"VMCOREINFO", 0) => notes.vmcoreinfo = Some(n.desc.to_vec()),
            (b"CORE", NT_PRFPREG) => notes.fp_regs += 1,
            _ => notes.other += 1,
        }
    }
    used
}

/// Settles CPU numbers once all notes are in.
pub(crate) fn number_cpus(notes: &mut Notes) {
    if notes.prstatus.is_empty() {
        notes.numbering = CpuNumbering::None;
        return;
    }
    // QEMU writes a CORE note for every vCPU with pr_pid = index + 1, and its QEMU notes (x86)
    // or an NT_PRFPREG note (arm64) in the same order; a kernel writes the current task's pid
    // instead, and no FP registers.
    let n = notes.prstatus.len();
    let qemu_written = (notes.qemu.len() == n || notes.fp_regs as usize == n)
        && notes.prstatus.iter().enumerate().all(|(i, p)| p.pid == i as i32 + 1);
    if qemu_written {
        for p in &mut notes.prstatus {
            p.cpu = (p.pid - 1) as u32;
        }
        notes.numbering = CpuNumbering::QemuIndex;
    } else {
        notes.numbering = CpuNumbering::NoteOrder;
    }
}

fn parse_prstatus(desc: &[u8], endian: Endian, arch: Arch) -> Option<(i32, i16, Registers)> {
    // The descriptor size tells the layout when the header did not name the machine.
    let arch = match arch {
        Arch::Other if desc.len() == prstatus::X86_64_LEN => Arch::X86_64,
        Arch::Other if desc.len() == prstatus::AARCH64_LEN => Arch::Aarch64,
        a => a,
    };
    let pid = i32_at(desc, prstatus::PID, endian)?;
    let signal = crate::raw::u16_at(desc, prstatus::CURSIG, endian)? as i16;
    let reg = |i: usize| u64_at(desc, prstatus::REGS + 8 * i, endian);
    let regs = match arch {
        Arch::X86_64 => {
            let mut r = [0u64; prstatus::X86_64_REG_COUNT];
            for (i, slot) in r.iter_mut().enumerate() {
                *slot = reg(i)?;
            }
            Registers::X86_64(X86_64Regs::from_pr_reg(&r))
        }
        Arch::Aarch64 => {
            let mut x = [0u64; 31];
            for (i, slot) in x.iter_mut().enumerate() {
                *slot = reg(i)?;
            }
            Registers::Aarch64(Aarch64Regs { x, sp: reg(31)?, pc: reg(32)?, pstate: reg(33)? })
        }
        Arch::Other => return None,
    };
    Some((pid, signal, regs))
}

fn parse_qemu(desc: &[u8], endian: Endian) -> Option<QemuCpuState> {
    use qemu_cpu_state as q;
    if u32_at(desc, q::VERSION, endian)? != 1 || desc.len() < q::LEN_V1 {
        return None;
    }
    let at = |off: usize| u64_at(desc, off, endian);
    // QEMU's order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15.
    let g = |i: usize| at(q::GPRS + 8 * i);
    let seg_base = |i: usize| at(q::SEGMENTS + q::SEGMENT_LEN * i + q::SEGMENT_BASE);
    let regs = X86_64Regs {
        rax: g(0)?,
        rbx: g(1)?,
        rcx: g(2)?,
        rdx: g(3)?,
        rsi: g(4)?,
        rdi: g(5)?,
        rsp: g(6)?,
        rbp: g(7)?,
        r8: g(8)?,
        r9: g(9)?,
        r10: g(10)?,
        r11: g(11)?,
        r12: g(12)?,
        r13: g(13)?,
        r14: g(14)?,
        r15: g(15)?,
        rip: at(q::RIP)?,
        eflags: at(q::RFLAGS)?,
        cs: u32_at(desc, q::SEGMENTS, endian)? as u64,
        ss: u32_at(desc, q::SEGMENTS + 5 * q::SEGMENT_LEN, endian)? as u64,
        ds: u32_at(desc, q::SEGMENTS + q::SEGMENT_LEN, endian)? as u64,
        es: u32_at(desc, q::SEGMENTS + 2 * q::SEGMENT_LEN, endian)? as u64,
        fs: u32_at(desc, q::SEGMENTS + 3 * q::SEGMENT_LEN, endian)? as u64,
        gs: u32_at(desc, q::SEGMENTS + 4 * q::SEGMENT_LEN, endian)? as u64,
        fs_base: seg_base(3)?,
        gs_base: seg_base(4)?,
        orig_rax: 0,
    };
    let mut cr = [0u64; 5];
    for (i, c) in cr.iter_mut().enumerate() {
        *c = at(q::CR + 8 * i)?;
    }
    Some(QemuCpuState {
        cpu: 0,
        regs,
        cr,
        fs_base: seg_base(3)?,
        gs_base: seg_base(4)?,
        gdt_base: seg_base(8)?,
        idt_base: seg_base(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn kernel_written_notes_are_numbered_in_order_and_oversized_notes_stop_the_walk() {
        let mut desc = vec![0u8; prstatus::X86_64_LEN];
        desc[prstatus::PID..prstatus::PID + 4].copy_from_slice(&137i32.to_le_bytes());
        let rip = prstatus::REGS + 16 * 8;
        desc[rip..rip + 8].copy_from_slice(&0xffffffff8876fdc1u64.to_le_bytes());
        let mut blob = note(b"CORE", NT_PRSTATUS, &desc);
        blob.extend(note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n"));
        // A note claiming more bytes than there are.
        blob.extend_from_slice(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0]);
        let mut notes = Notes::empty();
        collect(&mut notes, &blob, Endian::Little, Arch::Other);
        number_cpus(&mut notes);
        assert_eq!(notes.numbering, CpuNumbering::NoteOrder);
        assert_eq!(notes.prstatus.len(), 1);
        assert_eq!(notes.prstatus[0].pid, 137);
        assert_eq!(notes.prstatus[0].regs.ip(), 0xffffffff8876fdc1);
        assert_eq!(notes.vmcoreinfo.as_deref(), Some(&b"OSRELEASE=6.1\n"[..]));
    }
}
