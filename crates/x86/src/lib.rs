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

mod insn;

use insn::{Class, Code, Insn, Operand, Reg};
use lockscope_facts::machine::CodeLine;
use lockscope_facts::{CodeBytes, Registers};

/// The CPU a wait loop waits for, with the instructions that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopTarget {
    pub register: String,
    pub cpu: u32,
    pub evidence: Vec<String>,
}

/// Finds the register holding the CPU index of a per-CPU wait loop at RIP, and its value.
pub fn percpu_loop_target(code: &CodeBytes, regs: &Registers) -> Option<LoopTarget> {
    percpu_target(&insn::decode(code)?, regs)
}

/// The same, on the instructions of a `dis` listing that shows the one at RIP.
pub fn percpu_loop_target_in_listing(lines: &[CodeLine], rip: u64, regs: &Registers) -> Option<LoopTarget> {
    percpu_target(&insn::from_listing(lines, rip)?, regs)
}

fn percpu_target(code: &Code, regs: &Registers) -> Option<LoopTarget> {
    let before: Vec<&Insn> = code.insns.iter().filter(|i| i.at < code.ip).collect();
    // The per-CPU offset load: [disp + idx*8], no base, disp in the kernel image.
    let (xi, x, idx) = before.iter().enumerate().rev().find_map(|(n, i)| {
        let m = i.mem()?;
        (m.base.is_none() && m.scale == 8 && m.disp >= 0xffff_ffff_8000_0000).then_some((n, *i, m.index?))
    })?;
    let mut evidence = vec![format!("{}: per-CPU offset of the CPU in %{idx}", x.text)];
    let clobbered_after = |from: usize, reg: Reg| before[from + 1..].iter().any(|i| i.writes(reg));
    let chosen = if !clobbered_after(xi, idx) {
        idx
    } else {
        // The index was overwritten after use: follow it back to the register it came from.
        let (di, d) = before[..xi].iter().enumerate().rev().find(|(_, i)| i.writes(idx))?;
        let src = match (d.class, d.ops.as_slice()) {
            (Class::Move | Class::MoveExtend, [_, Operand::Reg(src)]) => *src,
            _ => return None,
        };
        if clobbered_after(di, src) {
            return None;
        }
        evidence.insert(0, format!("{}: the index comes from %{src}", d.text));
        src
    };
    let value = regs.get(chosen)?;
    evidence.push(format!("%{chosen} is not written again before RIP; {} = {value:#x}", chosen.to_ascii_uppercase()));
    Some(LoopTarget { register: chosen.to_string(), cpu: (value & 0xffff_ffff) as u32, evidence })
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
    /// The branch back was seen; false when a listing stops before it (then a `pause`
    /// before the load is what marks the loop).
    pub branch_seen: bool,
    pub evidence: Vec<String>,
}

/// Loop bodies looked at, in bytes.
const MAX_LOOP: u64 = 64;

/// The conditional branch at or after RIP that jumps back to at or before it: the loop RIP
/// spins in, as (index of the branch, index of the loop's first instruction).
fn enclosing_loop(code: &Code) -> Option<(usize, usize)> {
    let ip = code.ip;
    let bi = code.insns.iter().position(|i| {
        i.at >= ip && matches!(i.class, Class::Branch(_)) && i.target.is_some_and(|t| t <= ip && ip - t < MAX_LOOP)
    })?;
    let target = code.insns[bi].target?;
    let start = code.insns.iter().position(|i| i.at == target)?;
    Some((bi, start))
}

/// A listing cut right after RIP: `pause` shortly before RIP and no branch shown after it.
/// The loop is taken to run from after the pause to the end of the listing.
fn cut_loop(code: &Code) -> Option<(usize, usize)> {
    let at_ip = code.insns.iter().position(|i| i.at == code.ip)?;
    let after = &code.insns[at_ip + 1..];
    if after.len() > 2 || after.iter().any(|i| matches!(i.class, Class::Branch(_) | Class::Jump)) {
        return None;
    }
    let pause = code.insns[..at_ip].iter().rposition(|i| i.class == Class::Pause).filter(|&p| at_ip - p <= 3)?;
    Some((code.insns.len(), pause + 1))
}

/// A bit test of `imm` (a single bit): `test/and $imm` on a register or on memory, or
/// `bt $n`. The bit, and whether a branch of condition `cc` keeps looping while it is set
/// (no branch: assumed, as a lock wait loops while the bit is set).
fn bit_test(ins: &Insn, cc: Option<&str>) -> Option<(u32, bool)> {
    let [_, Operand::Imm(imm)] = ins.ops.as_slice() else { return None };
    let (bit, flag_set, opposite) = match ins.class {
        Class::Test | Class::And if imm.is_power_of_two() => (imm.trailing_zeros(), "ne", "e"),
        Class::Bt if *imm < 64 => (*imm as u32, "b", "ae"),
        _ => return None,
    };
    match cc {
        None => Some((bit, true)),
        Some(cc) => (cc == flag_set || cc == opposite).then_some((bit, cc == flag_set)),
    }
}

/// The bit of a word a spin loop at RIP polls: a load from `disp(%base)` (or the test on
/// memory itself) whose base is not written in the loop, a test of one bit, and the branch
/// back. The word's address is the base register's value at RIP plus the displacement.
pub fn spin_bit_loop(code: &CodeBytes, regs: &Registers) -> Option<SpinBit> {
    spin_bit(&insn::decode(code)?, regs)
}

/// The same, on the instructions of a `dis` listing that shows the one at RIP.
pub fn spin_bit_loop_in_listing(lines: &[CodeLine], rip: u64, regs: &Registers) -> Option<SpinBit> {
    spin_bit(&insn::from_listing(lines, rip)?, regs)
}

fn spin_bit(code: &Code, regs: &Registers) -> Option<SpinBit> {
    let (bi, start, branch_seen) = match enclosing_loop(code) {
        Some((b, s)) => (b, s, true),
        None => cut_loop(code).map(|(b, s)| (b, s, false))?,
    };
    let body = &code.insns[start..bi];
    let branch = code.insns.get(bi).filter(|_| branch_seen);
    let cc = branch.map(|b| match b.class {
        Class::Branch(c) => c,
        _ => "other",
    });
    let written_in_loop = |reg: Reg| body.iter().any(|i| i.writes(reg));
    // The last bit test before the branch decides it.
    let (ti, test) =
        body.iter().enumerate().rev().find(|(_, i)| matches!(i.class, Class::Test | Class::And | Class::Bt))?;
    let (bit, while_set) = bit_test(test, cc)?;
    let mut evidence = Vec::new();
    // The memory operand: the test's own, or the load into the register it tests.
    let mem = match test.ops.first() {
        Some(Operand::Mem(m)) => *m,
        Some(Operand::Reg(tested)) => {
            let load = body[..ti].iter().rev().find(|i| i.writes(tested))?;
            let m = match (load.class, load.ops.as_slice()) {
                (Class::Move | Class::MoveExtend, [_, Operand::Mem(m)]) => *m,
                _ => return None,
            };
            evidence.push(format!("{}: loads the word into %{tested}", load.text));
            m
        }
        _ => return None,
    };
    if mem.index.is_some() || mem.segment {
        return None;
    }
    let address = match mem.base {
        // A RIP-relative operand names an address in the code's own address space: rebase it
        // on the real RIP.
        Some("rip") => {
            let rip = regs.get("rip").or_else(|| regs.ip.as_ref()?.address)?;
            mem.disp.wrapping_sub(code.ip).wrapping_add(rip)
        }
        Some(base) => {
            if written_in_loop(base) {
                return None;
            }
            let value = regs.get(base)?;
            evidence.push(format!("%{base} is not written in the loop; {} = {value:#x}", base.to_ascii_uppercase()));
            value.wrapping_add(mem.disp)
        }
        None => return None,
    };
    let (word, bit) = (address & !7, bit + 8 * (address & 7) as u32);
    evidence.push(format!("{}: tests bit {bit} of the word at {word:#x}", test.text));
    match branch {
        Some(b) => evidence.push(format!(
            "{} back {} bytes: loops while the bit is {}",
            b.text.split_whitespace().next().unwrap_or("branch"),
            b.at - b.target.unwrap_or(b.at),
            if while_set { "set" } else { "clear" }
        )),
        None => evidence.push(format!(
            "the listing stops before the branch back; the pause at {:#x} marks the spin loop",
            code.insns[start - 1].at
        )),
    }
    Some(SpinBit { word, bit, while_set, branch_seen, evidence })
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

    fn listing(text: &str) -> Vec<CodeLine> {
        text.lines()
            .filter_map(|l| {
                let (addr, rest) = l.trim().split_once(' ')?;
                let (loc, ins) = rest.split_once(">:")?;
                Some(CodeLine {
                    address: u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok()?,
                    location: loc.trim_start_matches('<').to_string(),
                    text: ins.trim().to_string(),
                    source: None,
                    line: 0,
                })
            })
            .collect()
    }

    #[test]
    fn seed_001_dis_listing_waits_for_cpu_3() {
        // tests/data/seed-001/crash-session.txt: `dis -l smp_call_function_many` (tail) and
        // CPU 1's exception frame, RIP smp_call_function_many+0x227, RAX 3.
        let l = listing(
            "0xffffffff8c13402b <smp_call_function_many+0x1fb>:      callq  0xffffffff8c87f290 <cpumask_next>
0xffffffff8c134030 <smp_call_function_many+0x200>:      cmp    0x124746e(%rip),%eax        # 0xffffffff8d37b4a4
0xffffffff8c134036 <smp_call_function_many+0x206>:      jae    0xffffffff8c133e9b <smp_call_function_many+0x6b>
0xffffffff8c13403c <smp_call_function_many+0x20c>:      movslq %eax,%rcx
0xffffffff8c13403f <smp_call_function_many+0x20f>:      mov    (%rbx),%rdx
0xffffffff8c134042 <smp_call_function_many+0x212>:      add    -0x72eb2c00(,%rcx,8),%rdx
0xffffffff8c13404a <smp_call_function_many+0x21a>:      mov    0x18(%rdx),%ecx
0xffffffff8c13404d <smp_call_function_many+0x21d>:      and    $0x1,%ecx
0xffffffff8c134050 <smp_call_function_many+0x220>:      je     0xffffffff8c13405c <smp_call_function_many+0x22c>
0xffffffff8c134052 <smp_call_function_many+0x222>:      pause
0xffffffff8c134054 <smp_call_function_many+0x224>:      mov    0x18(%rdx),%ecx
0xffffffff8c134057 <smp_call_function_many+0x227>:      and    $0x1,%ecx
0xffffffff8c13405a <smp_call_function_many+0x22a>:      jne    0xffffffff8c134052 <smp_call_function_many+0x222>
0xffffffff8c13405c <smp_call_function_many+0x22c>:      jmp    0xffffffff8c134025 <smp_call_function_many+0x1f5>",
        );
        let mut regs = Registers::new(Arch::X86_64);
        for (n, v) in [("rax", 3), ("rcx", 3), ("rdx", 0xffff8f6f7b2e69c0), ("rbx", 0xffff8f6f7b261cc0)] {
            regs.set(n, v);
        }
        let t = percpu_loop_target_in_listing(&l, 0xffffffff8c134057, &regs).unwrap();
        assert_eq!((t.register.as_str(), t.cpu), ("rax", 3), "{:?}", t.evidence);
        assert!(t.evidence[0].starts_with("movslq %eax,%rcx"), "{:?}", t.evidence);
        let s = spin_bit_loop_in_listing(&l, 0xffffffff8c134057, &regs).unwrap();
        assert_eq!((s.word, s.bit, s.branch_seen), (0xffff8f6f7b2e69d8, 0, true));
        // RIP outside the listing: nothing.
        assert_eq!(percpu_loop_target_in_listing(&l, 0xffffffff8c134058, &regs), None);
    }

    #[test]
    fn seed_002_cut_listing_polls_bit_24_of_the_head_page() {
        // tests/data/seed-002/crash-session.txt: the three lines shown around CPU 10's RIP
        // put_compound_page+336 (R12 ffffea0123300000); the branch back is not shown.
        let l = listing(
            "0xffffffff81178b5a <put_compound_page+330>:     pause
0xffffffff81178b5c <put_compound_page+332>:     mov    (%r12),%rax
0xffffffff81178b60 <put_compound_page+336>:     test   $0x1000000,%eax",
        );
        let mut regs = Registers::new(Arch::X86_64);
        regs.set("r12", 0xffffea0123300000);
        let s = spin_bit_loop_in_listing(&l, 0xffffffff81178b60, &regs).unwrap();
        assert_eq!((s.word, s.bit, s.while_set, s.branch_seen), (0xffffea0123300000, 24, true, false));
        // Without the pause it is not a spin loop.
        assert_eq!(spin_bit_loop_in_listing(&l[1..], 0xffffffff81178b60, &regs), None);
    }
}
