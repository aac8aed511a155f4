//! `lockscope-x86`: register-level reasoning on x86_64 code bytes — a log's `Code:` line or
//! the same bytes read from a dump — the way an engineer reads `dis` output: which register
//! holds the CPU number a cross-CPU wait loop waits for, and which bit of which word a spin
//! loop polls (an inlined `bit_spin_lock`). Used at the facts stage by both paths: the log's
//! diagnosis and the dump's facts read the same loops the same way.
//!
//! In `smp_call_function_many_cond` (and 4.x `smp_call_function_many`) the wait loop
//! indexes `__per_cpu_offset[cpu]` to find the target's `call_single_data`. That load is
//! recognisable without symbols: a memory operand with no base, an index register scaled
//! by 8 and a kernel-address displacement. Tracing the index back through register moves
//! to a register that is not written again before RIP gives the CPU the loop waits on.

use iced_x86::{
    Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register,
};
use lockscope_facts::{CodeBytes, Registers};

/// The CPU a wait loop waits for, with the instructions that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopTarget {
    pub register: String,
    pub cpu: u32,
    pub evidence: Vec<String>,
}

fn decode_synced(code: &CodeBytes) -> Option<Vec<(usize, Instruction)>> {
    // The dump starts mid-instruction: find the first start offset whose decoding lands
    // exactly on the instruction at RIP.
    for start in 0..code.ip_index.min(code.bytes.len()) {
        let mut dec = Decoder::with_ip(64, &code.bytes[start..], start as u64, DecoderOptions::NONE);
        let mut out = Vec::new();
        let mut ok = false;
        while dec.can_decode() {
            let ins = dec.decode();
            let at = ins.ip() as usize;
            if ins.is_invalid() {
                break;
            }
            if at == code.ip_index {
                ok = true;
            }
            if at > code.ip_index && !ok {
                break;
            }
            out.push((at, ins));
        }
        if ok && out.iter().all(|(at, i)| *at >= code.ip_index || !i.is_invalid()) {
            return Some(out);
        }
    }
    None
}

fn writes(factory: &mut InstructionInfoFactory, ins: &Instruction, reg: Register) -> bool {
    factory.info(ins).used_registers().iter().any(|u| {
        u.register().full_register() == reg
            && matches!(
                u.access(),
                OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite
            )
    })
}

fn fmt(ins: &Instruction) -> String {
    let mut f = GasFormatter::new();
    let mut s = String::new();
    f.format(ins, &mut s);
    s
}

fn reg_name(r: Register) -> String {
    format!("{r:?}").to_ascii_lowercase()
}

/// Finds the register holding the CPU index of a per-CPU wait loop at RIP, and its value.
pub fn percpu_loop_target(code: &CodeBytes, regs: &Registers) -> Option<LoopTarget> {
    let instrs = decode_synced(code)?;
    let before: Vec<&(usize, Instruction)> = instrs.iter().filter(|(at, _)| *at < code.ip_index).collect();
    let mut factory = InstructionInfoFactory::new();
    // The per-CPU offset load: [disp + idx*8], no base, disp in the kernel image.
    let (xi, x) = before.iter().enumerate().rev().find_map(|(i, (_, ins))| {
        let mem = (0..ins.op_count()).any(|o| ins.op_kind(o) == OpKind::Memory);
        (mem && ins.memory_base() == Register::None
            && ins.memory_index() != Register::None
            && ins.memory_index_scale() == 8
            && ins.memory_displacement64() >= 0xffff_ffff_8000_0000)
            .then_some((i, ins))
    })?;
    let idx = x.memory_index().full_register();
    let mut evidence = vec![format!("{}: per-CPU offset of the CPU in %{}", fmt(x), reg_name(x.memory_index()))];
    let clobbered_after = |factory: &mut InstructionInfoFactory, from: usize, reg: Register| {
        before[from + 1..].iter().any(|(_, i)| writes(factory, i, reg))
    };
    let chosen = if !clobbered_after(&mut factory, xi, idx) {
        idx
    } else {
        // The index was overwritten after use: follow it back to the register it came from.
        let (di, d) = before[..xi].iter().enumerate().rev().find(|(_, (_, i))| writes(&mut factory, i, idx))?;
        let d = &d.1;
        let is_move = matches!(format!("{:?}", d.mnemonic()).as_str(), "Mov" | "Movsxd" | "Movzx" | "Movsx");
        if !is_move || d.op_count() != 2 || d.op_kind(1) != OpKind::Register {
            return None;
        }
        let src = d.op1_register().full_register();
        if clobbered_after(&mut factory, di, src) {
            return None;
        }
        evidence.insert(0, format!("{}: the index comes from %{}", fmt(d), reg_name(d.op1_register())));
        src
    };
    let name = reg_name(chosen);
    let value = regs.get(&name)?;
    evidence.push(format!("%{name} is not written again before RIP; {} = {value:#x}", name.to_ascii_uppercase()));
    Some(LoopTarget { register: name, cpu: (value & 0xffff_ffff) as u32, evidence })
}

/// A loop polling one bit of a word in memory, with RIP inside it: what an inlined
/// `bit_spin_lock` (or any flag wait) compiles to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpinBit {
    /// The 8-byte-aligned word and the bit in it (the byte a `testb` reads folded in).
    pub word: u64,
    pub bit: u32,
    /// The loop goes on while the bit is set (a bit lock someone holds), else while clear.
    pub while_set: bool,
    pub evidence: Vec<String>,
}

/// Loop bodies looked at, in bytes.
const MAX_LOOP: u64 = 64;

/// The conditional branch at or after RIP that jumps back to at or before it: the loop RIP
/// spins in, as (index of the branch, index of the loop's first instruction).
fn enclosing_loop(instrs: &[(usize, Instruction)], ip: u64) -> Option<(usize, usize)> {
    let bi = instrs.iter().position(|(at, ins)| {
        *at as u64 >= ip
            && ins.is_jcc_short_or_near()
            && ins.near_branch_target() <= ip
            && ip - ins.near_branch_target() < MAX_LOOP
    })?;
    let target = instrs[bi].1.near_branch_target();
    let start = instrs.iter().position(|(at, _)| *at as u64 == target)?;
    Some((bi, start))
}

/// A bit test of `imm` (a single bit) in the loop: `test/and $imm` on a register or on
/// memory, or `bt $n`. Its operand, and whether the branch keeps looping while the bit is set.
fn bit_test(ins: &Instruction, branch: &Instruction) -> Option<(u32, bool)> {
    use iced_x86::{ConditionCode, Mnemonic};
    let imm_kind = matches!(
        ins.op1_kind(),
        OpKind::Immediate8
            | OpKind::Immediate32
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
            | OpKind::Immediate16
            | OpKind::Immediate8to16
    );
    if ins.op_count() != 2 || !imm_kind {
        return None;
    }
    let imm = ins.immediate(1);
    let (bit, flag_set) = match ins.mnemonic() {
        Mnemonic::Test | Mnemonic::And if imm.is_power_of_two() => (imm.trailing_zeros(), ConditionCode::ne),
        Mnemonic::Bt if imm < 64 => (imm as u32, ConditionCode::b),
        _ => return None,
    };
    let cc = branch.condition_code();
    let opposite = if flag_set == ConditionCode::ne { ConditionCode::e } else { ConditionCode::ae };
    (cc == flag_set || cc == opposite).then_some((bit, cc == flag_set))
}

/// The bit of a word a spin loop at RIP polls: a load from `disp(%base)` (or the test on
/// memory itself) whose base is not written in the loop, a test of one bit, and the branch
/// back. The word's address is the base register's value at RIP plus the displacement.
pub fn spin_bit_loop(code: &CodeBytes, regs: &Registers) -> Option<SpinBit> {
    let instrs = decode_synced(code)?;
    let (bi, start) = enclosing_loop(&instrs, code.ip_index as u64)?;
    let body = &instrs[start..bi];
    let branch = &instrs[bi].1;
    let mut factory = InstructionInfoFactory::new();
    let written_in_loop =
        |factory: &mut InstructionInfoFactory, reg: Register| body.iter().any(|(_, i)| writes(factory, i, reg));
    // The last bit test before the branch decides it.
    let (ti, test) = body.iter().enumerate().rev().find(|(_, (_, i))| {
        matches!(i.mnemonic(), iced_x86::Mnemonic::Test | iced_x86::Mnemonic::And | iced_x86::Mnemonic::Bt)
    })?;
    let (bit, while_set) = bit_test(&test.1, branch)?;
    let mut evidence = Vec::new();
    // The memory operand: the test's own, or the load into the register it tests.
    let mem = if test.1.op0_kind() == OpKind::Memory {
        &test.1
    } else {
        let tested = test.1.op0_register().full_register();
        let (_, load) = body[..ti].iter().rev().find(|(_, i)| writes(&mut factory, i, tested))?;
        let is_load = matches!(
            load.mnemonic(),
            iced_x86::Mnemonic::Mov
                | iced_x86::Mnemonic::Movzx
                | iced_x86::Mnemonic::Movsx
                | iced_x86::Mnemonic::Movsxd
        ) && load.op1_kind() == OpKind::Memory;
        if !is_load {
            return None;
        }
        evidence.push(format!("{}: loads the word into %{}", fmt(load), reg_name(load.op0_register())));
        load
    };
    if mem.memory_index() != Register::None
        || mem.memory_base() == Register::None
        || mem.segment_prefix() != Register::None
    {
        return None;
    }
    let address = if mem.memory_base() == Register::RIP {
        // iced computed the target from the buffer offset: rebase on the real RIP.
        let rip = regs.get("rip").or_else(|| regs.ip.as_ref()?.address)?;
        mem.memory_displacement64().wrapping_sub(code.ip_index as u64).wrapping_add(rip)
    } else {
        let base = mem.memory_base().full_register();
        if written_in_loop(&mut factory, base) {
            return None;
        }
        let name = reg_name(base);
        let value = regs.get(&name)?;
        evidence.push(format!("%{name} is not written in the loop; {} = {value:#x}", name.to_ascii_uppercase()));
        value.wrapping_add(mem.memory_displacement64())
    };
    let (word, bit) = (address & !7, bit + 8 * (address & 7) as u32);
    evidence.push(format!("{}: tests bit {bit} of the word at {word:#x}", fmt(&test.1)));
    evidence.push(format!(
        "{} back {} bytes: loops while the bit is {}",
        format!("{:?}", branch.mnemonic()).to_ascii_lowercase(),
        code.ip_index as u64 - branch.near_branch_target() + (instrs[bi].0 - code.ip_index) as u64,
        if while_set { "set" } else { "clear" }
    ));
    Some(SpinBit { word, bit, while_set, evidence })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockscope_facts::Arch;

    fn code(s: &str) -> CodeBytes {
        let mut bytes = Vec::new();
        let mut ip_index = 0;
        for w in s.split_whitespace() {
            if let Some(x) = w.strip_prefix('<').and_then(|x| x.strip_suffix('>')) {
                ip_index = bytes.len();
                bytes.push(u8::from_str_radix(x, 16).unwrap());
            } else {
                bytes.push(u8::from_str_radix(w, 16).unwrap());
            }
        }
        CodeBytes { bytes, ip_index }
    }

    #[test]
    fn corpus_smp_call_function_many_cond_waits_for_cpu_3() {
        // ../shared/corpus/ipi_sleeping_holder.panic/console.log, soft lockup on CPU 1
        let c = code(
            "7b 08 48 63 d0 e8 bf 48 3c 00 3b 05 a9 cc ac 01 73 25 48 63 d0 48 8b 33 48 03 34 d5 60 ab 01 9b 8b 56 08 83 e2 01 74 0a f3 90 <8b> 4e 08 83 e1 01 75 f6 83 c0 01 eb c1 48 83 c4 38 5b 5d 41 5c 41",
        );
        let mut regs = Registers::new(Arch::X86_64);
        for (n, v) in [("rax", 3), ("rdx", 1), ("rcx", 1), ("rsi", 0xffff8d730b9b9480)] {
            regs.set(n, v);
        }
        let t = percpu_loop_target(&c, &regs).unwrap();
        assert_eq!((t.register.as_str(), t.cpu), ("rax", 3));
        assert!(t.evidence[0].contains("movslq %eax,%rdx"), "{:?}", t.evidence);
    }

    #[test]
    fn corpus_csd_wait_loop_polls_bit_0_of_the_csd_flags() {
        // The same loop from ../shared/corpus/ipi_sleeping_holder.panic/console.log: pause;
        // mov 0x8(%rsi),%ecx; and $1,%ecx; jne back — csd_lock_wait on CSD_FLAG_LOCK.
        let c = code(
            "7b 08 48 63 d0 e8 bf 48 3c 00 3b 05 a9 cc ac 01 73 25 48 63 d0 48 8b 33 48 03 34 d5 60 ab 01 9b 8b 56 08 83 e2 01 74 0a f3 90 <8b> 4e 08 83 e1 01 75 f6 83 c0 01 eb c1 48 83 c4 38 5b 5d 41 5c 41",
        );
        let mut regs = Registers::new(Arch::X86_64);
        regs.set("rsi", 0xffff8d730b9b9480);
        let s = spin_bit_loop(&c, &regs).unwrap();
        assert_eq!((s.word, s.bit, s.while_set), (0xffff8d730b9b9488, 0, true));
        assert!(s.evidence.iter().any(|e| e.contains("mov 8(%rsi),%ecx")), "{:?}", s.evidence);
        // Without the base register's value there is no address.
        assert_eq!(spin_bit_loop(&c, &Registers::new(Arch::X86_64)), None);
    }

    #[test]
    fn a_byte_test_on_memory_folds_into_the_word() {
        // pause; testb $0x2,0x3(%rdi); jne back
        let c = code("f3 90 <f6> 47 03 02 75 f8");
        let mut regs = Registers::new(Arch::X86_64);
        regs.set("rdi", 0x1000);
        let s = spin_bit_loop(&c, &regs).unwrap();
        assert_eq!((s.word, s.bit, s.while_set), (0x1000, 25, true));
        // je: loops while the bit is clear (a flag wait, not a lock).
        let c = code("f3 90 <f6> 47 03 02 74 f8");
        assert!(!spin_bit_loop(&c, &regs).unwrap().while_set);
    }

    #[test]
    fn a_loop_without_a_bit_test_gives_nothing() {
        // rcu_reader_spin.live: incrementing a counter forever, no condition.
        let c = code(
            "00 00 00 00 00 0f 1f 44 00 00 e8 26 14 d4 de 65 ff 05 1f d8 a2 3f 48 8b 05 a0 21 00 00 48 83 c0 01 48 89 05 95 21 00 00 f3 90 <eb> ea 66 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 31 ff e8 94 fd ff",
        );
        assert_eq!(spin_bit_loop(&c, &Registers::new(Arch::X86_64)), None);
    }

    #[test]
    fn unrelated_code_gives_nothing() {
        // rcu_reader_spin.live: a plain loop, no per-CPU indexing
        let c = code(
            "00 00 00 00 00 0f 1f 44 00 00 e8 26 14 d4 de 65 ff 05 1f d8 a2 3f 48 8b 05 a0 21 00 00 48 83 c0 01 48 89 05 95 21 00 00 f3 90 <eb> ea 66 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 31 ff e8 94 fd ff",
        );
        let regs = Registers::new(Arch::X86_64);
        assert_eq!(percpu_loop_target(&c, &regs), None);
    }
}
