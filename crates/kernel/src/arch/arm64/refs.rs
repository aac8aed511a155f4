//! The addresses arm64 code builds and the memory it reaches through them: `adrp` (+ `add`),
//! loads and stores at an offset from such an address, per-CPU references (an address added
//! to the per-CPU offset that `mrs tpidr_el1`/`tpidr_el2` reads) and arrays indexed by a
//! register (`ldr x, [base, idx, lsl #3]`). A small forward pass over one function's words,
//! by register; a register's address is forgotten a few instructions after it was made, so
//! a stale one cannot attach to an unrelated access. What [`crate::datasyms`] reads code for.

use crate::arch::{CodeRef, RefKind};

/// Instructions a register keeps an address it was given.
const FORGET_AFTER: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Unknown,
    /// An `adrp` page: the low 12 bits come with the next `add` or access.
    Page(u64),
    /// A whole address.
    Address(u64),
    /// The CPU's per-CPU offset (`tpidr_el1` or `tpidr_el2`).
    PerCpuOffset,
}

struct Regs {
    value: [Value; 32],
    set_at: [usize; 32],
}

impl Regs {
    fn get(&self, r: u32, now: usize) -> Value {
        let r = r as usize;
        if r == 31 || now.saturating_sub(self.set_at[r]) > FORGET_AFTER { Value::Unknown } else { self.value[r] }
    }
    fn set(&mut self, r: u32, v: Value, now: usize) {
        if r < 31 {
            self.value[r as usize] = v;
            self.set_at[r as usize] = now;
        }
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// The references of the code at `address`.
pub fn code_references(code: &[u8], address: u64) -> Vec<CodeRef> {
    let mut regs = Regs { value: [Value::Unknown; 32], set_at: [0; 32] };
    let mut out = Vec::new();
    for (i, word) in code.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let pc = address + 4 * i as u64;
        let now = i + 1;
        step(w, pc, now, &mut regs, &mut out);
    }
    out
}

fn step(w: u32, pc: u64, now: usize, regs: &mut Regs, out: &mut Vec<CodeRef>) {
    let rd = w & 31;
    let rn = (w >> 5) & 31;
    let rm = (w >> 16) & 31;
    let mut push = |target: u64, kind: RefKind| out.push(CodeRef { at: pc, target, kind });
    if w & 0x9f00_0000 == 0x9000_0000 {
        // adrp
        let imm = ((u64::from(w) >> 5) & 0x7ffff) << 2 | (u64::from(w) >> 29) & 3;
        let page = (pc & !0xfff).wrapping_add_signed(sign_extend(imm, 21) << 12);
        regs.set(rd, Value::Page(page), now);
    } else if w & 0x9f00_0000 == 0x1000_0000 {
        // adr
        let imm = ((u64::from(w) >> 5) & 0x7ffff) << 2 | (u64::from(w) >> 29) & 3;
        let a = pc.wrapping_add_signed(sign_extend(imm, 21));
        push(a, RefKind::Address);
        regs.set(rd, Value::Address(a), now);
    } else if w & 0xff80_0000 == 0x9100_0000 {
        // add xd, xn, #imm{, lsl #12}
        let imm = u64::from((w >> 10) & 0xfff) << (12 * ((w >> 22) & 1));
        let v = match regs.get(rn, now) {
            Value::Page(p) | Value::Address(p) => {
                let a = p.wrapping_add(imm);
                push(a, RefKind::Address);
                Value::Address(a)
            }
            _ => Value::Unknown,
        };
        regs.set(rd, v, now);
    } else if w & 0xff20_0000 == 0x8b00_0000 {
        // add xd, xn, xm{, shift}: a per-CPU address, or an element of an array (a bitmap's
        // word, `add x2, x4, x3, lsl #3`)
        let (base, index) = (regs.get(rn, now), regs.get(rm, now));
        let lsl = (w >> 22) & 3 == 0;
        let amount = (w >> 10) & 0x3f;
        if let Some(a) = per_cpu_pair(base, index) {
            push(a, RefKind::PerCpu);
        } else if let Value::Address(a) = base
            && index == Value::Unknown
            && lsl
            && (1..=4).contains(&amount)
        {
            push(a, RefKind::Indexed(1 << amount));
        }
        regs.set(rd, Value::Unknown, now);
    } else if w & 0xffe0_ffe0 == 0xaa00_03e0 {
        // mov xd, xm
        let v = regs.get(rm, now);
        regs.set(rd, v, now);
    } else if w & 0xffff_ffe0 == 0xd538_d080 || w & 0xffff_ffe0 == 0xd53c_d040 {
        // mrs xd, tpidr_el1 / tpidr_el2
        regs.set(rd, Value::PerCpuOffset, now);
    } else if w & 0x3f00_0000 == 0x3900_0000 {
        // ldr/str (unsigned offset), integer registers
        let size = w >> 30;
        let offset = u64::from((w >> 10) & 0xfff) << size;
        let load = (w >> 22) & 3 != 0;
        if let Value::Page(p) | Value::Address(p) = regs.get(rn, now) {
            let bytes = 1u8 << size;
            push(p.wrapping_add(offset), if load { RefKind::Load(bytes) } else { RefKind::Store(bytes) });
        }
        if load {
            regs.set(rd, Value::Unknown, now);
        }
    } else if w & 0x3f20_0c00 == 0x3820_0800 {
        // ldr/str (register offset)
        let size = w >> 30;
        let shifted = (w >> 12) & 1 == 1;
        let (base, index) = (regs.get(rn, now), regs.get(rm, now));
        if let Some(a) = per_cpu_pair(base, index) {
            push(a, RefKind::PerCpu);
        } else if let Value::Address(a) = base
            && shifted
            && index == Value::Unknown
        {
            push(a, RefKind::Indexed(1 << size));
        }
        if (w >> 22) & 3 != 0 {
            regs.set(rd, Value::Unknown, now);
        }
    } else if w & 0x3c00_0000 == 0x2800_0000 && matches!(w >> 30, 0 | 2) && matches!((w >> 23) & 7, 1..=3) {
        pair(w, now, regs, &mut push);
    } else if writes_rd(w) || w & 0xfff0_0000 == 0xd530_0000 {
        regs.set(rd, Value::Unknown, now);
    }
}

/// ldp/stp of two 32- or 64-bit registers (signed offset, pre- or post-index): two
/// neighbouring words (`ldp x25, x0, [x27, #8]` reads two globals a section anchor reaches).
fn pair(w: u32, now: usize, regs: &mut Regs, push: &mut impl FnMut(u64, RefKind)) {
    let (rt, rn, rt2) = (w & 31, (w >> 5) & 31, (w >> 10) & 31);
    let size: u8 = if w >> 30 == 2 { 8 } else { 4 };
    let variant = (w >> 23) & 7;
    let load = (w >> 22) & 1 == 1;
    if let Value::Page(p) | Value::Address(p) = regs.get(rn, now) {
        let offset = sign_extend(u64::from((w >> 15) & 0x7f), 7) * i64::from(size);
        let first = if variant == 1 { p } else { p.wrapping_add_signed(offset) };
        for a in [first, first + u64::from(size)] {
            push(a, if load { RefKind::Load(size) } else { RefKind::Store(size) });
        }
    }
    if variant != 2 {
        regs.set(rn, Value::Unknown, now);
    }
    if load {
        regs.set(rt, Value::Unknown, now);
        regs.set(rt2, Value::Unknown, now);
    }
}

/// The loads of the code at `address` (ordinary, acquiring and exclusive ones, of any
/// size): where each is and its base register (31 = sp).
pub fn loads(code: &[u8], address: u64) -> Vec<(u64, u32)> {
    code.chunks_exact(4)
        .enumerate()
        .filter_map(|(i, b)| {
            let w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let integer_load = |w: u32| (w >> 22) & 3 != 0 && (w >> 26) & 1 == 0;
            let is_load = (w & 0x3f40_0000 == 0x0840_0000) // ldxr, ldaxr, ldar, ldlar
                || (w & 0x3f00_0000 == 0x3900_0000 && integer_load(w)) // ldr (unsigned offset)
                || (w & 0x3f20_0000 == 0x3800_0000 && integer_load(w)) // ldur, ldr pre/post-index
                || w & 0x3fff_fc00 == 0x38bf_c000; // ldapr
            is_load.then_some((address + 4 * i as u64, (w >> 5) & 31))
        })
        .collect()
}

/// An address added to the per-CPU offset: a per-CPU variable.
fn per_cpu_pair(a: Value, b: Value) -> Option<u64> {
    match (a, b) {
        (Value::Address(x), Value::PerCpuOffset) | (Value::PerCpuOffset, Value::Address(x)) => Some(x),
        _ => None,
    }
}

/// Data-processing instructions (immediate and register groups) and loads write Rd/Rt; the
/// branches, stores and system instructions do not.
fn writes_rd(w: u32) -> bool {
    let op0 = (w >> 25) & 0xf;
    matches!(op0, 0b1000 | 0b1001 | 0b0101 | 0b1101) || (op0 & 0b0101 == 0b0100 && (w >> 22) & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn adrp_add_and_a_load_at_an_offset() {
        // adrp x0, 0x1000 pages up; add x0, x0, #0x230; ldr x1, [x0, #8]
        let code = words(&[0x9000_0000 | (1 << 29), 0x9108_c000, 0xf940_0401]);
        let r = code_references(&code, 0xffff_0000_0000_0ffc);
        assert_eq!(r[0], CodeRef { at: 0xffff_0000_0000_1000, target: 0xffff_0000_0000_1230, kind: RefKind::Address });
        assert_eq!(r[1].target, 0xffff_0000_0000_1238);
        assert_eq!(r[1].kind, RefKind::Load(8));
    }

    #[test]
    fn per_cpu_and_indexed_references() {
        // adrp x1, page; add x1, x1, #0x40; mrs x2, tpidr_el1; add x1, x1, x2
        let code = words(&[0x9000_0001, 0x9101_0021, 0xd538_d082, 0x8b02_0021]);
        let r = code_references(&code, 0x10_0000);
        assert!(r.contains(&CodeRef { at: 0x10_000c, target: 0x10_0040, kind: RefKind::PerCpu }), "{r:?}");
        // adrp x1, page; add x1, x1, #0x80; ldr x1, [x1, w0, sxtw #3]
        let code = words(&[0x9000_0001, 0x9102_0021, 0xf860_d821]);
        let r = code_references(&code, 0x10_0000);
        assert!(r.contains(&CodeRef { at: 0x10_0008, target: 0x10_0080, kind: RefKind::Indexed(8) }), "{r:?}");
    }

    #[test]
    fn a_load_pair_reaches_two_words() {
        // adrp x6, page; add x27, x6, #0xb48; ldp x25, x0, [x27, #8] (hung_task.c's watchdog)
        let code = words(&[0x9000_0006, 0x912d_20db, 0xa940_8379]);
        let r = code_references(&code, 0x10_0000);
        let loads: Vec<(u64, RefKind)> = r.iter().skip(1).map(|c| (c.target, c.kind)).collect();
        assert_eq!(loads, vec![(0x10_0b50, RefKind::Load(8)), (0x10_0b58, RefKind::Load(8))]);
        // stp x29, x30, [sp, #-16]!: no address known in sp
        assert!(code_references(&words(&[0xa9bf_7bfd]), 0x10_0000).is_empty());
    }

    #[test]
    fn the_loads_of_a_spin_loop() {
        // ldxr w1, [x19]; eor w1, w1, w0; ldar w0, [x19]; ldrb w2, [x3, #1]; str w0, [x4]
        let code = words(&[0x885f_7e61, 0x4a00_0021, 0x88df_fe60, 0x3940_0462, 0xb900_0080]);
        assert_eq!(loads(&code, 0x100), vec![(0x100, 19), (0x108, 19), (0x10c, 3)]);
    }

    #[test]
    fn a_negative_adrp_and_a_forgotten_register() {
        // adrp x3, -1 page
        let code = words(&[0x9000_0003 | (0x7ffff << 5) | (3 << 29)]);
        code_references(&code, 0x5000);
        let mut regs = Regs { value: [Value::Unknown; 32], set_at: [0; 32] };
        let mut out = Vec::new();
        step(0x9000_0003 | (0x7ffff << 5) | (3 << 29), 0x5000, 1, &mut regs, &mut out);
        assert_eq!(regs.get(3, 1), Value::Page(0x4000));
        assert_eq!(regs.get(3, 1 + FORGET_AFTER + 1), Value::Unknown);
        // movz x3, #1 overwrites it
        step(0xd280_0023, 0x5004, 2, &mut regs, &mut out);
        assert_eq!(regs.get(3, 2), Value::Unknown);
    }
}
