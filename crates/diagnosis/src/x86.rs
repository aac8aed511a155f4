//! Register-level reasoning on x86_64 `Code:` bytes, the way an engineer reads `dis` output:
//! which register holds the CPU number a cross-CPU wait loop is waiting for.
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
    fn unrelated_code_gives_nothing() {
        // rcu_reader_spin.live: a plain loop, no per-CPU indexing
        let c = code(
            "00 00 00 00 00 0f 1f 44 00 00 e8 26 14 d4 de 65 ff 05 1f d8 a2 3f 48 8b 05 a0 21 00 00 48 83 c0 01 48 89 05 95 21 00 00 f3 90 <eb> ea 66 0f 1f 84 00 00 00 00 00 0f 1f 44 00 00 31 ff e8 94 fd ff",
        );
        let regs = Registers::new(Arch::X86_64);
        assert_eq!(percpu_loop_target(&c, &regs), None);
    }
}
