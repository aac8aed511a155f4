//! arm64 disassembly for `dis` (yaxpeax-arm), printed as GNU objdump and crash print it:
//! branch, `adr`/`adrp` and literal-load targets as absolute addresses named by the kernel's
//! symbols, memory offsets in decimal, the system registers, PSTATE fields, hints and cache
//! and TLB maintenance operations a kernel uses by name.

use crate::arch::Instruction;
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Instruction as A64, Opcode, Operand, ShiftStyle, SizeCode};

/// The column the operands start at: objdump's tab after the mnemonic.
const OPERAND_COLUMN: usize = 8;

/// Decodes up to `count` instructions (4 bytes each, little-endian) of `code` loaded at `address`.
pub fn disassemble(
    code: &[u8],
    address: u64,
    count: usize,
    symbolize: &dyn Fn(u64) -> Option<String>,
) -> Vec<Instruction> {
    let decoder = InstDecoder::default();
    code.chunks_exact(4)
        .take(count)
        .enumerate()
        .map(|(i, bytes)| {
            let pc = address.wrapping_add(4 * i as u64);
            let word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let decoded = decoder.decode(&mut U8Reader::new(bytes)).ok().filter(|ins| ins.opcode != Opcode::Invalid);
            let (text, invalid) = match decoded {
                Some(ins) => (render(&repaired(ins, word), word, pc, symbolize), false),
                None => (align(&format!(".inst 0x{word:08x} ; undefined")), true),
            };
            Instruction { address: pc, bytes: bytes.to_vec(), text, invalid }
        })
        .collect()
}

/// Whether the instruction word is a call: BL, BLR, BLRAA, BLRAAZ, BLRAB, BLRABZ.
pub fn is_call(word: u32) -> bool {
    // BL imm26
    word & 0xfc00_0000 == 0x9400_0000
        // BLR Xn; BLRAAZ Xn; BLRABZ Xn (Rm = 11111)
        || matches!(word & 0xffff_fc1f, 0xd63f_0000 | 0xd63f_081f | 0xd63f_0c1f)
        // BLRAA Xn, Xm|SP; BLRAB Xn, Xm|SP
        || matches!(word & 0xffff_fc00, 0xd73f_0800 | 0xd73f_0c00)
}

/// What yaxpeax-arm 0.5 decodes wrongly, put right: MSR (register) takes only the low four
/// bits of Rt (`msr fpcr, x23` comes out as `msr fpcr, x7`).
fn repaired(mut ins: A64, word: u32) -> A64 {
    if let (Opcode::MSR, Operand::SystemReg(_), Operand::Register(size, _)) =
        (ins.opcode, ins.operands[0], ins.operands[1])
    {
        ins.operands[1] = Operand::Register(size, (word & 31) as u16);
    }
    ins
}

/// yaxpeax-arm's text with the operands it prints unlike objdump put right, aligned.
fn render(ins: &A64, word: u32, pc: u64, symbolize: &dyn Fn(u64) -> Option<String>) -> String {
    if let Some(text) = hint(ins).or_else(|| sys_alias(ins)) {
        return align(&text);
    }
    let mut text = ins.to_string();
    if matches!(ins.opcode, Opcode::UBFM | Opcode::SBFM | Opcode::BFM | Opcode::EXTR | Opcode::UDF) {
        // Bit positions, widths and shift counts (`lsl x0, x1, #3`, `ubfx x0, x1, #4, #8`).
        text = decimal_immediates(&text);
    }
    for op in &ins.operands {
        let new = match *op {
            Operand::PCOffset(offset) => {
                let base = if ins.opcode == Opcode::ADRP { pc & !0xfff } else { pc };
                target(base.wrapping_add(offset as u64), symbolize)
            }
            Operand::RegPreIndex(reg, offset, writeback) if offset != 0 || writeback => {
                format!("[{}, #{offset}]{}", base_register(reg), if writeback { "!" } else { "" })
            }
            Operand::RegPostIndex(reg, offset) => format!("[{}], #{offset}", base_register(reg)),
            Operand::RegRegOffset(reg, index, size, extend, amount) => {
                // objdump shows the amount when the S bit is set (`lsl #0` too), and an
                // extend without it when clear (`sxtw`, not `sxtw #0`).
                let (base, index) = (base_register(reg), Operand::Register(size, index));
                match (word >> 12 & 1 == 1, extend) {
                    (true, _) => format!("[{base}, {index}, {extend} #{amount}]"),
                    (false, ShiftStyle::LSL) => format!("[{base}, {index}]"),
                    (false, _) => format!("[{base}, {index}, {extend}]"),
                }
            }
            Operand::RegShift(style @ (ShiftStyle::LSR | ShiftStyle::ASR | ShiftStyle::ROR), 0, size, reg) => {
                format!("{}, {style} #0", Operand::Register(size, reg))
            }
            // An operation without a name: objdump prints it as an immediate.
            Operand::PrefetchOp(kind) if !op.to_string().starts_with('p') => format!("#{kind:#04x}"),
            Operand::Imm16(bit) if matches!(ins.opcode, Opcode::TBZ | Opcode::TBNZ) => format!("#{bit}"),
            Operand::SystemReg(reg) => match system_register(reg) {
                Some(name) => name.to_string(),
                None => continue,
            },
            Operand::PstateField(field) => match pstate_field(field) {
                Some(name) => name.to_string(),
                None => continue,
            },
            _ => continue,
        };
        text = text.replacen(&op.to_string(), &new, 1);
    }
    if let Some((old, new)) = extended_register(ins, word) {
        // The last operand: replace from the end, the register may also be the destination.
        if let Some(at) = text.rfind(&old) {
            text.replace_range(at..at + old.len(), &new);
        }
    }
    if ins.operands.iter().any(|op| matches!(op, Operand::ConditionCode(_))) || matches!(ins.opcode, Opcode::Bcc(_)) {
        text = gnu_condition(&text);
    }
    align(&text)
}

/// ADD, ADDS, SUB, SUBS (extended register): yaxpeax-arm prints `uxtw` (32-bit) and `uxtx`
/// (64-bit) as `lsl` whether or not SP is involved; objdump, as the ARM ARM says, prints `lsl`
/// only with SP (`add sp, sp, x0`), else the extension (`add x0, x1, w2, uxtw #3`). Returns
/// the operand's text as yaxpeax-arm prints it and as objdump does.
fn extended_register(ins: &A64, word: u32) -> Option<(String, String)> {
    let (Opcode::ADD | Opcode::ADDS | Opcode::SUB | Opcode::SUBS, op @ Operand::RegShift(_, _, size, rm)) =
        (ins.opcode, ins.operands[2])
    else {
        return None;
    };
    if word & 0x1fe0_0000 != 0x0b20_0000 {
        return None;
    }
    let (sixty_four, sets_flags) = (word >> 31 == 1, word >> 29 & 1 == 1);
    let (option, amount) = (word >> 13 & 7, word >> 10 & 7);
    let (rd, rn) = (word & 31, word >> 5 & 31);
    let sp = rn == 31 || (rd == 31 && !sets_flags);
    let lsl_option = if sixty_four { 0b011 } else { 0b010 };
    let extend = if sp && option == lsl_option {
        "lsl"
    } else {
        ["uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx"][option as usize]
    };
    let register = Operand::Register(size, rm);
    let new = match (extend, amount) {
        ("lsl", 0) => register.to_string(),
        (_, 0) => format!("{register}, {extend}"),
        _ => format!("{register}, {extend} #{amount}"),
    };
    Some((op.to_string(), new))
}

/// objdump's names for the carry conditions: `cs` and `cc`, not `hs` and `lo` (`b.cs`,
/// `csel x0, x1, x2, cc`). The condition is the mnemonic's suffix or the last operand.
fn gnu_condition(text: &str) -> String {
    for (from, to) in [("b.hs", "b.cs"), ("b.lo", "b.cc"), ("bc.hs", "bc.cs"), ("bc.lo", "bc.cc")] {
        if let Some(rest) = text.strip_prefix(from)
            && (rest.is_empty() || rest.starts_with(' '))
        {
            return format!("{to}{rest}");
        }
    }
    for (from, to) in [(", hs", ", cs"), (", lo", ", cc")] {
        if let Some(head) = text.strip_suffix(from) {
            return format!("{head}{to}");
        }
    }
    text.to_string()
}

/// `#0x1f` → `#31` throughout.
fn decimal_immediates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#0x") {
        out.push_str(&rest[..at + 1]);
        let digits = &rest[at + 3..];
        let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
        match u64::from_str_radix(&digits[..end], 16) {
            Ok(value) => out.push_str(&value.to_string()),
            Err(_) => out.push_str(&rest[at + 1..at + 3 + end]),
        }
        rest = &digits[end..];
    }
    out.push_str(rest);
    out
}

/// `0x<addr> <symbol+off>`, as the x86_64 side prints targets.
fn target(address: u64, symbolize: &dyn Fn(u64) -> Option<String>) -> String {
    match symbolize(address) {
        Some(name) => format!("{address:#x} <{name}>"),
        None => format!("{address:#x}"),
    }
}

fn base_register(reg: u16) -> String {
    Operand::RegisterOrSP(SizeCode::X, reg).to_string()
}

/// Pads the mnemonic so that the operands start at [`OPERAND_COLUMN`].
fn align(text: &str) -> String {
    match text.split_once(' ') {
        Some((mnemonic, operands)) => format!("{mnemonic:<width$} {operands}", width = OPERAND_COLUMN - 1),
        None => text.to_string(),
    }
}

/// The hints objdump names and yaxpeax-arm does not, or names wrongly: it calls #0x15 `sevl`,
/// and #0x40 and up by the name of the number modulo 0x40.
fn hint(ins: &A64) -> Option<String> {
    let (Opcode::HINT, Operand::ControlReg(crm), Operand::Immediate(op2)) =
        (ins.opcode, ins.operands[0], ins.operands[1])
    else {
        return None;
    };
    let number = (u32::from(crm) << 3 | op2) & 0x7f;
    let name = match number {
        0x05 => "sevl",
        0x15 | 0x40.. => return Some(format!("hint #{number:#x}")),
        0x16 => "clearbhb",
        0x20 => "bti",
        0x22 => "bti c",
        0x24 => "bti j",
        0x26 => "bti jc",
        _ => return None,
    };
    Some(name.to_string())
}

/// `sys` as the cache, TLB and address-translation operation it is (`dc civac, x0`,
/// `tlbi vmalle1is`), for the operations a kernel uses.
fn sys_alias(ins: &A64) -> Option<String> {
    let (Opcode::SYS(ops), Operand::Register(_, rt), Operand::ControlReg(crn), Operand::ControlReg(crm)) =
        (ins.opcode, ins.operands[0], ins.operands[1], ins.operands[2])
    else {
        return None;
    };
    let key = (ops.op1(), crn, crm, ops.op2());
    let &(.., name, takes_register) = SYS_OPERATIONS.iter().find(|&&(op1, n, m, op2, ..)| (op1, n, m, op2) == key)?;
    match (takes_register, rt) {
        (false, 31) => Some(name.to_string()),
        (true, _) => Some(format!("{name}, {}", Operand::Register(SizeCode::X, rt))),
        // An operation without a register given one: objdump prints `sys`, as does yaxpeax-arm.
        (false, _) => None,
    }
}

/// (op1, CRn, CRm, op2, name, takes a register) of SYS aliases.
const SYS_OPERATIONS: &[(u8, u16, u16, u8, &str, bool)] = &[
    // Instruction cache.
    (0, 7, 1, 0, "ic ialluis", false),
    (0, 7, 5, 0, "ic iallu", false),
    (3, 7, 5, 1, "ic ivau", true),
    // Data cache.
    (0, 7, 6, 1, "dc ivac", true),
    (0, 7, 6, 2, "dc isw", true),
    (0, 7, 10, 2, "dc csw", true),
    (0, 7, 14, 2, "dc cisw", true),
    (3, 7, 4, 1, "dc zva", true),
    (3, 7, 4, 3, "dc gva", true),
    (3, 7, 4, 4, "dc gzva", true),
    (3, 7, 10, 1, "dc cvac", true),
    (3, 7, 11, 1, "dc cvau", true),
    (3, 7, 12, 1, "dc cvap", true),
    (3, 7, 13, 1, "dc cvadp", true),
    (3, 7, 14, 1, "dc civac", true),
    // Address translation.
    (0, 7, 8, 0, "at s1e1r", true),
    (0, 7, 8, 1, "at s1e1w", true),
    (0, 7, 8, 2, "at s1e0r", true),
    (0, 7, 8, 3, "at s1e0w", true),
    (0, 7, 9, 0, "at s1e1rp", true),
    (0, 7, 9, 1, "at s1e1wp", true),
    (4, 7, 8, 0, "at s1e2r", true),
    (4, 7, 8, 1, "at s1e2w", true),
    (4, 7, 8, 4, "at s12e1r", true),
    (4, 7, 8, 5, "at s12e1w", true),
    // TLB maintenance, EL1.
    (0, 8, 1, 0, "tlbi vmalle1os", false),
    (0, 8, 1, 1, "tlbi vae1os", true),
    (0, 8, 1, 2, "tlbi aside1os", true),
    (0, 8, 1, 3, "tlbi vaae1os", true),
    (0, 8, 1, 5, "tlbi vale1os", true),
    (0, 8, 1, 7, "tlbi vaale1os", true),
    (0, 8, 2, 1, "tlbi rvae1is", true),
    (0, 8, 2, 3, "tlbi rvaae1is", true),
    (0, 8, 2, 5, "tlbi rvale1is", true),
    (0, 8, 2, 7, "tlbi rvaale1is", true),
    (0, 8, 3, 0, "tlbi vmalle1is", false),
    (0, 8, 3, 1, "tlbi vae1is", true),
    (0, 8, 3, 2, "tlbi aside1is", true),
    (0, 8, 3, 3, "tlbi vaae1is", true),
    (0, 8, 3, 5, "tlbi vale1is", true),
    (0, 8, 3, 7, "tlbi vaale1is", true),
    (0, 8, 5, 1, "tlbi rvae1os", true),
    (0, 8, 5, 3, "tlbi rvaae1os", true),
    (0, 8, 5, 5, "tlbi rvale1os", true),
    (0, 8, 5, 7, "tlbi rvaale1os", true),
    (0, 8, 6, 1, "tlbi rvae1", true),
    (0, 8, 6, 3, "tlbi rvaae1", true),
    (0, 8, 6, 5, "tlbi rvale1", true),
    (0, 8, 6, 7, "tlbi rvaale1", true),
    (0, 8, 7, 0, "tlbi vmalle1", false),
    (0, 8, 7, 1, "tlbi vae1", true),
    (0, 8, 7, 2, "tlbi aside1", true),
    (0, 8, 7, 3, "tlbi vaae1", true),
    (0, 8, 7, 5, "tlbi vale1", true),
    (0, 8, 7, 7, "tlbi vaale1", true),
    // TLB maintenance, EL2 (KVM).
    (4, 8, 0, 1, "tlbi ipas2e1is", true),
    (4, 8, 0, 5, "tlbi ipas2le1is", true),
    (4, 8, 3, 0, "tlbi alle2is", false),
    (4, 8, 3, 1, "tlbi vae2is", true),
    (4, 8, 3, 4, "tlbi alle1is", false),
    (4, 8, 3, 5, "tlbi vale2is", true),
    (4, 8, 3, 6, "tlbi vmalls12e1is", false),
    (4, 8, 4, 1, "tlbi ipas2e1", true),
    (4, 8, 4, 5, "tlbi ipas2le1", true),
    (4, 8, 7, 0, "tlbi alle2", false),
    (4, 8, 7, 1, "tlbi vae2", true),
    (4, 8, 7, 4, "tlbi alle1", false),
    (4, 8, 7, 5, "tlbi vale2", true),
    (4, 8, 7, 6, "tlbi vmalls12e1", false),
];

/// The names objdump gives the PSTATE fields of `msr <field>, #imm` (yaxpeax-arm: `pstate.0x1e`),
/// by op1 << 3 | op2.
fn pstate_field(field: u8) -> Option<&'static str> {
    Some(match field {
        0x03 => "uao",
        0x04 => "pan",
        0x05 => "spsel",
        0x19 => "ssbs",
        0x1a => "dit",
        0x1c => "tco",
        0x1e => "daifset",
        0x1f => "daifclr",
        _ => return None,
    })
}

/// yaxpeax-arm's number for a system register: op0 − 2, op1, CRn, CRm, op2 from bit 14 down.
const fn sysreg(op0: u16, op1: u16, crn: u16, crm: u16, op2: u16) -> u16 {
    (op0 - 2) << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

/// The name of a system register a kernel reads or writes (yaxpeax-arm names only three and
/// prints the others as `s3_0_c13_c0_4`, as objdump does for registers it does not know).
fn system_register(reg: u16) -> Option<&'static str> {
    SYSTEM_REGISTERS.iter().find(|&&(r, _)| r == reg).map(|&(_, name)| name)
}

const SYSTEM_REGISTERS: &[(u16, &str)] = &[
    // Debug.
    (sysreg(2, 0, 0, 2, 2), "mdscr_el1"),
    (sysreg(2, 0, 1, 0, 4), "oslar_el1"),
    (sysreg(2, 0, 1, 1, 4), "oslsr_el1"),
    (sysreg(2, 0, 1, 3, 4), "osdlr_el1"),
    (sysreg(2, 3, 0, 4, 0), "dbgdtr_el0"),
    // Identification.
    (sysreg(3, 0, 0, 0, 0), "midr_el1"),
    (sysreg(3, 0, 0, 0, 5), "mpidr_el1"),
    (sysreg(3, 0, 0, 0, 6), "revidr_el1"),
    (sysreg(3, 0, 0, 4, 0), "id_aa64pfr0_el1"),
    (sysreg(3, 0, 0, 4, 1), "id_aa64pfr1_el1"),
    (sysreg(3, 0, 0, 4, 4), "id_aa64zfr0_el1"),
    (sysreg(3, 0, 0, 5, 0), "id_aa64dfr0_el1"),
    (sysreg(3, 0, 0, 5, 1), "id_aa64dfr1_el1"),
    (sysreg(3, 0, 0, 6, 0), "id_aa64isar0_el1"),
    (sysreg(3, 0, 0, 6, 1), "id_aa64isar1_el1"),
    (sysreg(3, 0, 0, 6, 2), "id_aa64isar2_el1"),
    (sysreg(3, 0, 0, 7, 0), "id_aa64mmfr0_el1"),
    (sysreg(3, 0, 0, 7, 1), "id_aa64mmfr1_el1"),
    (sysreg(3, 0, 0, 7, 2), "id_aa64mmfr2_el1"),
    (sysreg(3, 1, 0, 0, 0), "ccsidr_el1"),
    (sysreg(3, 1, 0, 0, 1), "clidr_el1"),
    (sysreg(3, 2, 0, 0, 0), "csselr_el1"),
    (sysreg(3, 3, 0, 0, 1), "ctr_el0"),
    (sysreg(3, 3, 0, 0, 7), "dczid_el0"),
    // System control, translation, pointer authentication keys.
    (sysreg(3, 0, 1, 0, 0), "sctlr_el1"),
    (sysreg(3, 0, 1, 0, 1), "actlr_el1"),
    (sysreg(3, 0, 1, 0, 2), "cpacr_el1"),
    (sysreg(3, 0, 1, 0, 5), "rgsr_el1"),
    (sysreg(3, 0, 1, 0, 6), "gcr_el1"),
    (sysreg(3, 0, 1, 2, 0), "zcr_el1"),
    (sysreg(3, 0, 1, 2, 6), "smcr_el1"),
    (sysreg(3, 0, 2, 0, 0), "ttbr0_el1"),
    (sysreg(3, 0, 2, 0, 1), "ttbr1_el1"),
    (sysreg(3, 0, 2, 0, 2), "tcr_el1"),
    (sysreg(3, 0, 2, 1, 0), "apiakeylo_el1"),
    (sysreg(3, 0, 2, 1, 1), "apiakeyhi_el1"),
    (sysreg(3, 0, 2, 1, 2), "apibkeylo_el1"),
    (sysreg(3, 0, 2, 1, 3), "apibkeyhi_el1"),
    (sysreg(3, 0, 2, 2, 0), "apdakeylo_el1"),
    (sysreg(3, 0, 2, 2, 1), "apdakeyhi_el1"),
    (sysreg(3, 0, 2, 2, 2), "apdbkeylo_el1"),
    (sysreg(3, 0, 2, 2, 3), "apdbkeyhi_el1"),
    (sysreg(3, 0, 2, 3, 0), "apgakeylo_el1"),
    (sysreg(3, 0, 2, 3, 1), "apgakeyhi_el1"),
    // Exception state, special purpose.
    (sysreg(3, 0, 4, 0, 0), "spsr_el1"),
    (sysreg(3, 0, 4, 0, 1), "elr_el1"),
    (sysreg(3, 0, 4, 1, 0), "sp_el0"),
    (sysreg(3, 0, 4, 2, 0), "spsel"),
    (sysreg(3, 0, 4, 2, 2), "currentel"),
    (sysreg(3, 0, 4, 2, 3), "pan"),
    (sysreg(3, 0, 4, 2, 4), "uao"),
    (sysreg(3, 0, 4, 6, 0), "icc_pmr_el1"),
    (sysreg(3, 0, 5, 1, 0), "afsr0_el1"),
    (sysreg(3, 0, 5, 1, 1), "afsr1_el1"),
    (sysreg(3, 0, 5, 2, 0), "esr_el1"),
    (sysreg(3, 0, 5, 6, 0), "tfsr_el1"),
    (sysreg(3, 0, 5, 6, 1), "tfsre0_el1"),
    (sysreg(3, 0, 6, 0, 0), "far_el1"),
    (sysreg(3, 0, 7, 4, 0), "par_el1"),
    (sysreg(3, 0, 9, 14, 1), "pmintenset_el1"),
    (sysreg(3, 0, 9, 14, 2), "pmintenclr_el1"),
    (sysreg(3, 0, 10, 2, 0), "mair_el1"),
    (sysreg(3, 0, 10, 3, 0), "amair_el1"),
    (sysreg(3, 0, 12, 0, 0), "vbar_el1"),
    (sysreg(3, 0, 12, 1, 0), "isr_el1"),
    (sysreg(3, 0, 12, 1, 1), "disr_el1"),
    // GICv3 CPU interface.
    (sysreg(3, 0, 12, 8, 0), "icc_iar0_el1"),
    (sysreg(3, 0, 12, 8, 1), "icc_eoir0_el1"),
    (sysreg(3, 0, 12, 8, 2), "icc_hppir0_el1"),
    (sysreg(3, 0, 12, 8, 3), "icc_bpr0_el1"),
    (sysreg(3, 0, 12, 8, 4), "icc_ap0r0_el1"),
    (sysreg(3, 0, 12, 9, 0), "icc_ap1r0_el1"),
    (sysreg(3, 0, 12, 11, 1), "icc_dir_el1"),
    (sysreg(3, 0, 12, 11, 3), "icc_rpr_el1"),
    (sysreg(3, 0, 12, 11, 5), "icc_sgi1r_el1"),
    (sysreg(3, 0, 12, 11, 6), "icc_asgi1r_el1"),
    (sysreg(3, 0, 12, 11, 7), "icc_sgi0r_el1"),
    (sysreg(3, 0, 12, 12, 0), "icc_iar1_el1"),
    (sysreg(3, 0, 12, 12, 1), "icc_eoir1_el1"),
    (sysreg(3, 0, 12, 12, 2), "icc_hppir1_el1"),
    (sysreg(3, 0, 12, 12, 3), "icc_bpr1_el1"),
    (sysreg(3, 0, 12, 12, 4), "icc_ctlr_el1"),
    (sysreg(3, 0, 12, 12, 5), "icc_sre_el1"),
    (sysreg(3, 0, 12, 12, 6), "icc_igrpen0_el1"),
    (sysreg(3, 0, 12, 12, 7), "icc_igrpen1_el1"),
    // Thread and context ids.
    (sysreg(3, 0, 13, 0, 1), "contextidr_el1"),
    (sysreg(3, 0, 13, 0, 4), "tpidr_el1"),
    (sysreg(3, 0, 14, 1, 0), "cntkctl_el1"),
    // EL0-visible state.
    (sysreg(3, 3, 2, 4, 0), "rndr"),
    (sysreg(3, 3, 2, 4, 1), "rndrrs"),
    (sysreg(3, 3, 4, 2, 0), "nzcv"),
    (sysreg(3, 3, 4, 2, 1), "daif"),
    (sysreg(3, 3, 4, 2, 2), "svcr"),
    (sysreg(3, 3, 4, 2, 5), "dit"),
    (sysreg(3, 3, 4, 2, 6), "ssbs"),
    (sysreg(3, 3, 4, 2, 7), "tco"),
    (sysreg(3, 3, 4, 4, 0), "fpcr"),
    (sysreg(3, 3, 4, 4, 1), "fpsr"),
    (sysreg(3, 3, 4, 5, 0), "dspsr_el0"),
    (sysreg(3, 3, 4, 5, 1), "dlr_el0"),
    (sysreg(3, 3, 9, 12, 0), "pmcr_el0"),
    (sysreg(3, 3, 9, 12, 1), "pmcntenset_el0"),
    (sysreg(3, 3, 9, 12, 2), "pmcntenclr_el0"),
    (sysreg(3, 3, 9, 12, 3), "pmovsclr_el0"),
    (sysreg(3, 3, 9, 12, 5), "pmselr_el0"),
    (sysreg(3, 3, 9, 13, 0), "pmccntr_el0"),
    (sysreg(3, 3, 9, 13, 1), "pmxevtyper_el0"),
    (sysreg(3, 3, 9, 13, 2), "pmxevcntr_el0"),
    (sysreg(3, 3, 9, 14, 0), "pmuserenr_el0"),
    (sysreg(3, 3, 9, 14, 3), "pmovsset_el0"),
    (sysreg(3, 3, 13, 0, 2), "tpidr_el0"),
    (sysreg(3, 3, 13, 0, 3), "tpidrro_el0"),
    (sysreg(3, 3, 13, 0, 5), "tpidr2_el0"),
    // Generic timer.
    (sysreg(3, 3, 14, 0, 0), "cntfrq_el0"),
    (sysreg(3, 3, 14, 0, 1), "cntpct_el0"),
    (sysreg(3, 3, 14, 0, 2), "cntvct_el0"),
    (sysreg(3, 3, 14, 0, 5), "cntpctss_el0"),
    (sysreg(3, 3, 14, 0, 6), "cntvctss_el0"),
    (sysreg(3, 3, 14, 2, 0), "cntp_tval_el0"),
    (sysreg(3, 3, 14, 2, 1), "cntp_ctl_el0"),
    (sysreg(3, 3, 14, 2, 2), "cntp_cval_el0"),
    (sysreg(3, 3, 14, 3, 0), "cntv_tval_el0"),
    (sysreg(3, 3, 14, 3, 1), "cntv_ctl_el0"),
    (sysreg(3, 3, 14, 3, 2), "cntv_cval_el0"),
    // EL2 (KVM, VHE).
    (sysreg(3, 4, 1, 0, 0), "sctlr_el2"),
    (sysreg(3, 4, 1, 1, 0), "hcr_el2"),
    (sysreg(3, 4, 1, 1, 1), "mdcr_el2"),
    (sysreg(3, 4, 1, 1, 2), "cptr_el2"),
    (sysreg(3, 4, 1, 1, 7), "hacr_el2"),
    (sysreg(3, 4, 2, 0, 0), "ttbr0_el2"),
    (sysreg(3, 4, 2, 0, 2), "tcr_el2"),
    (sysreg(3, 4, 2, 1, 0), "vttbr_el2"),
    (sysreg(3, 4, 2, 1, 2), "vtcr_el2"),
    (sysreg(3, 4, 4, 0, 0), "spsr_el2"),
    (sysreg(3, 4, 4, 0, 1), "elr_el2"),
    (sysreg(3, 4, 4, 1, 0), "sp_el1"),
    (sysreg(3, 4, 5, 2, 0), "esr_el2"),
    (sysreg(3, 4, 6, 0, 0), "far_el2"),
    (sysreg(3, 4, 6, 0, 4), "hpfar_el2"),
    (sysreg(3, 4, 10, 2, 0), "mair_el2"),
    (sysreg(3, 4, 12, 0, 0), "vbar_el2"),
    (sysreg(3, 4, 13, 0, 1), "contextidr_el2"),
    (sysreg(3, 4, 13, 0, 2), "tpidr_el2"),
    (sysreg(3, 4, 14, 0, 3), "cntvoff_el2"),
    (sysreg(3, 4, 14, 1, 0), "cnthctl_el2"),
    (sysreg(3, 5, 1, 0, 0), "sctlr_el12"),
    (sysreg(3, 5, 1, 0, 2), "cpacr_el12"),
    (sysreg(3, 5, 2, 0, 0), "ttbr0_el12"),
    (sysreg(3, 5, 2, 0, 1), "ttbr1_el12"),
    (sysreg(3, 5, 2, 0, 2), "tcr_el12"),
    (sysreg(3, 5, 4, 0, 0), "spsr_el12"),
    (sysreg(3, 5, 4, 0, 1), "elr_el12"),
    (sysreg(3, 5, 5, 2, 0), "esr_el12"),
    (sysreg(3, 5, 6, 0, 0), "far_el12"),
    (sysreg(3, 5, 10, 2, 0), "mair_el12"),
    (sysreg(3, 5, 12, 0, 0), "vbar_el12"),
    (sysreg(3, 5, 13, 0, 1), "contextidr_el12"),
    (sysreg(3, 5, 14, 1, 0), "cntkctl_el12"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0xffff_8000_1000_0000;

    /// Disassembles one word at `address`, naming nothing.
    fn one_at(word: u32, address: u64) -> Instruction {
        let mut out = disassemble(&word.to_le_bytes(), address, 1, &|_| None);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    /// The text of one word with the alignment spaces collapsed, as objdump's
    /// listings write it.
    fn text(word: u32) -> String {
        squeeze(&one_at(word, BASE).text)
    }

    fn squeeze(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn prologue_epilogue_and_common_instructions() {
        let cases: &[(u32, &str)] = &[
            (0xa9bf7bfd, "stp x29, x30, [sp, #-16]!"),
            (0xa9be7bfd, "stp x29, x30, [sp, #-32]!"),
            (0x910003fd, "mov x29, sp"),
            (0xa90153f3, "stp x19, x20, [sp, #16]"),
            (0xa8c253f3, "ldp x19, x20, [sp], #32"),
            (0xf9400420, "ldr x0, [x1, #8]"),
            (0xf8627820, "ldr x0, [x1, x2, lsl #3]"),
            (0xb8625823, "ldr w3, [x1, w2, uxtw #2]"),
            (0xf81f83a0, "stur x0, [x29, #-8]"),
            (0xc85f7c20, "ldxr x0, [x1]"),
            (0xd65f03c0, "ret"),
            (0xd503201f, "nop"),
            (0xd503233f, "paciasp"),
            (0xd50323bf, "autiasp"),
            (0xd63f0020, "blr x1"),
            (0xd538d080, "mrs x0, tpidr_el1"),
            (0xd5384101, "mrs x1, sp_el0"),
            (0xd53b4222, "mrs x2, daif"),
            (0xd51b4222, "msr daif, x2"),
            (0xd51b4417, "msr fpcr, x23"),
            (0xd518d09e, "msr tpidr_el1, x30"),
            (0xd51b423f, "msr daif, xzr"),
            (0xd50342df, "msr daifset, #0x2"),
            (0xd50342ff, "msr daifclr, #0x2"),
            (0xd53be040, "mrs x0, cntvct_el0"),
            (0xd503245f, "bti c"),
            (0xd50322df, "clearbhb"),
            (0xd50320bf, "sevl"),
            (0xd50322bf, "hint #0x15"),
            (0xd50328bf, "hint #0x45"),
            (0xd5033bbf, "dmb ish"),
            (0xd5087800, "at s1e1r, x0"),
            (0xd508831f, "tlbi vmalle1is"),
            (0xd50b7e20, "dc civac, x0"),
            (0xd4210000, "brk #0x800"),
            (0xd10103ff, "sub sp, sp, #0x40"),
            (0xaa0203e1, "mov x1, x2"),
            (0x8a9a021e, "and x30, x16, x26, asr #0"),
            (0xf9800011, "prfm pstl1strm, [x0]"),
            (0xd8f16adf, "prfm #0x1f, 0xffff80000ffe2d58"),
            (0xd37df020, "lsl x0, x1, #3"),
            (0xd3442c20, "ubfx x0, x1, #4, #8"),
            (0x8b224c20, "add x0, x1, w2, uxtw #3"),
            (0x8b224020, "add x0, x1, w2, uxtw"),
            (0x8b2063ff, "add sp, sp, x0"),
            (0xeb21401f, "cmp x0, w1, uxtw"),
            (0x3862c820, "ldrb w0, [x1, w2, sxtw]"),
            (0x38627820, "ldrb w0, [x1, x2, lsl #0]"),
            (0xf862e820, "ldr x0, [x1, x2, sxtx]"),
            (0x54000002, "b.cs 0xffff800010000000"),
            (0x54000003, "b.cc 0xffff800010000000"),
            (0x9a823020, "csel x0, x1, x2, cc"),
            (0x1a9f37e0, "cset w0, cs"),
        ];
        for &(word, want) in cases {
            assert_eq!(text(word), want, "{word:#010x}");
        }
    }

    #[test]
    fn operands_start_at_a_fixed_column() {
        assert_eq!(one_at(0x910003fd, BASE).text, "mov     x29, sp");
        assert_eq!(one_at(0xd65f03c0, BASE).text, "ret");
        assert_eq!(one_at(0x54000041, BASE).text, "b.ne    0xffff800010000008");
    }

    #[test]
    fn branch_targets_are_absolute_and_named() {
        let names = |a: u64| match a {
            0xffff_8000_1000_0100 => Some("schedule+0x10".to_string()),
            0xffff_8000_0fff_f000 => Some("panic".to_string()),
            _ => None,
        };
        let code: Vec<u8> = [
            0x94000040u32, // bl .+0x100
            0x97fffc00,    // bl .-0x1000 (at BASE+4)
            0x14000400,    // b .+0x1000
            0x54ffff80,    // b.eq .-0x10
            0xb4000100,    // cbz x0, .+0x20
            0x35ffffc1,    // cbnz w1, .-8
            0x36180060,    // tbz w0, #3, .+12
            0xb747ffe0,    // tbnz x0, #40, .-4
            0x58000080,    // ldr x0, .+16 (literal)
            0x10000001,    // adr x1, .
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
        let out = disassemble(&code, BASE, 100, &names);
        let texts: Vec<String> = out.iter().map(|i| squeeze(&i.text)).collect();
        assert_eq!(
            texts,
            [
                "bl 0xffff800010000100 <schedule+0x10>",
                "bl 0xffff80000ffff004",
                "b 0xffff800010001008",
                "b.eq 0xffff80000ffffffc",
                "cbz x0, 0xffff800010000030",
                "cbnz w1, 0xffff80001000000c",
                "tbz w0, #3, 0xffff800010000024",
                "tbnz x0, #40, 0xffff800010000018",
                "ldr x0, 0xffff800010000030",
                "adr x1, 0xffff800010000024",
            ]
        );
        let addresses: Vec<u64> = out.iter().map(|i| i.address).collect();
        assert_eq!(addresses, (0..10).map(|i| BASE + 4 * i).collect::<Vec<_>>());
        assert_eq!(out[0].bytes, 0x94000040u32.to_le_bytes());
        // A backward call into a named function.
        let back = disassemble(&0x97fffc00u32.to_le_bytes(), BASE + 0x1000, 1, &names);
        assert_eq!(squeeze(&back[0].text), "bl 0xffff800010000000");
        let back = disassemble(&0x97fffc00u32.to_le_bytes(), BASE, 1, &names);
        assert_eq!(squeeze(&back[0].text), "bl 0xffff80000ffff000 <panic>");
    }

    #[test]
    fn adrp_targets_the_4k_page() {
        // adrp x0, .+0x12000 (immlo = 2, immhi = 0x4: imm = 0x12) from inside a page.
        let word = 0x9000_0000 | 2 << 29 | 0x4 << 5;
        assert_eq!(squeeze(&one_at(word, BASE + 0x7a4).text), "adrp x0, 0xffff800010012000");
        // adrp x3, .-0x10000: imm = -0x10 (21-bit two's complement).
        let imm: u32 = (-0x10i32 as u32) & 0x1f_ffff;
        let word = 0x9000_0003 | (imm & 3) << 29 | (imm >> 2) << 5;
        let names = |a: u64| (a == 0xffff_8000_0fff_0000).then(|| "swapper_pg_dir".to_string());
        let out = disassemble(&word.to_le_bytes(), BASE + 0xffc, 1, &names);
        assert_eq!(squeeze(&out[0].text), "adrp x3, 0xffff80000fff0000 <swapper_pg_dir>");
    }

    #[test]
    fn calls() {
        for word in
            [0x94000000, 0x97ffffff, 0xd63f0020, 0xd63f03c0, 0xd73f0822, 0xd63f087f, 0xd63f083f, 0xd73f0c22, 0xd63f0c7f]
        {
            assert!(is_call(word), "{word:#010x}");
        }
        for word in [
            0x14000000, // b
            0x54000041, // b.ne
            0xd61f0200, // br x16
            0xd65f03c0, // ret
            0xd71f0822, // braa x1, x2
            0xd61f081f, // braaz x0
            0xd65f0bff, // retaa
            0xd63f0021, // blr with Rm != 0: unallocated
            0xd63f0820, // blraaz with Rm != 31: unallocated
            0xb4000100, // cbz
            0xd503201f, // nop
        ] {
            assert!(!is_call(word), "{word:#010x}");
        }
    }

    #[test]
    fn undecodable_words() {
        let ins = one_at(0xffff_ffff, BASE);
        assert!(ins.invalid);
        assert_eq!(squeeze(&ins.text), ".inst 0xffffffff ; undefined");
        assert_eq!(ins.bytes, [0xff; 4]);
        assert!(!one_at(0xd503201f, BASE).invalid);
    }

    #[test]
    fn count_and_trailing_bytes() {
        let code = [0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6, 0xfd, 0x7b];
        let all = disassemble(&code, BASE, 10, &|_| None);
        assert_eq!(all.len(), 2, "the trailing half word is ignored");
        assert_eq!(all[1].text, "ret");
        assert_eq!(disassemble(&code, BASE, 1, &|_| None).len(), 1);
        assert!(disassemble(&code[..3], BASE, 10, &|_| None).is_empty());
        assert!(disassemble(&code, BASE, 0, &|_| None).is_empty());
    }

    #[test]
    fn no_panic_on_any_input() {
        // Near the top of the address space targets wrap; every word of a pseudo-random
        // stream and every single-bit pattern must decode or be `.inst`.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut code = Vec::with_capacity(4 * 200_000);
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            code.extend_from_slice(&(state as u32).to_le_bytes());
        }
        for bit in 0..32 {
            code.extend_from_slice(&(1u32 << bit).to_le_bytes());
            code.extend_from_slice(&(!(1u32 << bit)).to_le_bytes());
        }
        code.extend_from_slice(&[0xff; 64]);
        code.extend_from_slice(&[0; 64]);
        let n = code.len() / 4;
        for address in [0, BASE, u64::MAX - 7] {
            let out = disassemble(&code, address, usize::MAX, &|a| Some(format!("sym+{a:#x}")));
            assert_eq!(out.len(), n);
            assert!(out.iter().all(|i| !i.text.is_empty() && !i.text.contains('$')));
        }
    }
}
