//! The few facts about an instruction the loop readers need — what kind it is, its
//! operands, the registers it writes, where a branch goes — from either source: bytes
//! decoded with iced-x86 (a log's `Code:` line, a dump's memory) or a line of crash's `dis`
//! output in AT&T syntax (a pasted transcript). The readers in `lib.rs` see only this.

use iced_x86::{
    Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register,
};
use lockscope_facts::CodeBytes;
use lockscope_facts::machine::CodeLine;

/// A 64-bit general-purpose register (or `rip`), by its lower-case name.
pub(crate) type Reg = &'static str;

const GPRS: [Reg; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// Registers a `call` may change (the System V caller-saved set).
const CALL_CLOBBERS: [Reg; 9] = ["rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `mov` between a register and memory or another register.
    Move,
    /// A widening move (`movslq`, `movzbl`…).
    MoveExtend,
    Test,
    And,
    Bt,
    /// A conditional branch, its condition normalised (`ne`, `e`, `b`, `ae`…).
    Branch(&'static str),
    Jump,
    Pause,
    Other,
}

/// A memory operand. For a RIP-relative one, `disp` is the address it names, in the
/// listing's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mem {
    pub base: Option<Reg>,
    pub index: Option<Reg>,
    pub scale: u8,
    pub disp: u64,
    pub segment: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    Reg(Reg),
    Mem(Mem),
    Imm(u64),
}

/// One instruction. Operands in Intel order: the destination first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub at: u64,
    pub class: Class,
    pub ops: Vec<Operand>,
    pub writes: Vec<Reg>,
    pub target: Option<u64>,
    /// As an engineer reads it (GAS syntax).
    pub text: String,
}

impl Insn {
    pub fn mem(&self) -> Option<&Mem> {
        self.ops.iter().find_map(|o| match o {
            Operand::Mem(m) => Some(m),
            _ => None,
        })
    }

    pub fn writes(&self, r: Reg) -> bool {
        self.writes.contains(&r)
    }
}

/// A run of instructions and the index of the one at the instruction pointer.
pub(crate) struct Code {
    pub insns: Vec<Insn>,
    /// The instruction pointer in the run's address space.
    pub ip: u64,
}

// ---- from bytes (iced-x86) ----

fn full(r: Register) -> Option<Reg> {
    if r == Register::RIP {
        return Some("rip");
    }
    let f = r.full_register();
    let i = (f.number() as isize) - (Register::RAX.number() as isize);
    (f.is_gpr64() && (0..16).contains(&i)).then(|| GPRS[i as usize])
}

fn class_of(ins: &Instruction) -> Class {
    use iced_x86::{ConditionCode as C, Mnemonic as M};
    match ins.mnemonic() {
        M::Mov => Class::Move,
        M::Movsxd | M::Movzx | M::Movsx => Class::MoveExtend,
        M::Test => Class::Test,
        M::And => Class::And,
        M::Bt => Class::Bt,
        M::Pause => Class::Pause,
        M::Jmp => Class::Jump,
        _ if ins.is_jcc_short_or_near() => Class::Branch(match ins.condition_code() {
            C::ne => "ne",
            C::e => "e",
            C::b => "b",
            C::ae => "ae",
            C::a => "a",
            C::be => "be",
            C::l => "l",
            C::ge => "ge",
            C::g => "g",
            C::le => "le",
            C::s => "s",
            C::ns => "ns",
            _ => "other",
        }),
        _ => Class::Other,
    }
}

fn operand(ins: &Instruction, i: u32) -> Option<Operand> {
    Some(match ins.op_kind(i) {
        OpKind::Register => Operand::Reg(full(ins.op_register(i)).unwrap_or("other")),
        OpKind::Memory => Operand::Mem(Mem {
            base: (ins.memory_base() != Register::None).then(|| full(ins.memory_base()).unwrap_or("other")),
            index: (ins.memory_index() != Register::None).then(|| full(ins.memory_index()).unwrap_or("other")),
            scale: ins.memory_index_scale() as u8,
            disp: ins.memory_displacement64(),
            segment: ins.segment_prefix() != Register::None,
        }),
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate32to64 => Operand::Imm(ins.immediate(i)),
        _ => return None,
    })
}

fn from_iced(ins: &Instruction, factory: &mut InstructionInfoFactory) -> Insn {
    let mut writes: Vec<Reg> = factory
        .info(ins)
        .used_registers()
        .iter()
        .filter(|u| {
            matches!(u.access(), OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite)
        })
        .filter_map(|u| full(u.register()))
        .collect();
    writes.dedup();
    let mut text = String::new();
    GasFormatter::new().format(ins, &mut text);
    let branch = matches!(class_of(ins), Class::Branch(_) | Class::Jump);
    Insn {
        at: ins.ip(),
        class: class_of(ins),
        ops: (0..ins.op_count()).filter_map(|i| operand(ins, i)).collect(),
        writes,
        target: branch.then(|| ins.near_branch_target()),
        text,
    }
}

/// Decodes code bytes that start mid-instruction: the first start offset whose decoding
/// lands exactly on the instruction at the IP wins. Addresses are offsets into the bytes.
pub(crate) fn decode(code: &CodeBytes) -> Option<Code> {
    let mut factory = InstructionInfoFactory::new();
    for start in 0..code.ip_index.min(code.bytes.len()) {
        let mut dec = Decoder::with_ip(64, &code.bytes[start..], start as u64, DecoderOptions::NONE);
        let mut out = Vec::new();
        let mut synced = false;
        while dec.can_decode() {
            let ins = dec.decode();
            let at = ins.ip() as usize;
            if ins.is_invalid() || (at > code.ip_index && !synced) {
                break;
            }
            synced |= at == code.ip_index;
            out.push(from_iced(&ins, &mut factory));
        }
        if synced {
            return Some(Code { insns: out, ip: code.ip_index as u64 });
        }
    }
    None
}

// ---- from crash's `dis` text (AT&T syntax) ----

fn att_reg(name: &str) -> Option<Reg> {
    let n = name.strip_prefix('%')?;
    if n == "rip" {
        return Some("rip");
    }
    let legacy = [("a", 0), ("c", 1), ("d", 2), ("b", 3)];
    for (l, i) in legacy {
        if [format!("r{l}x"), format!("e{l}x"), format!("{l}x"), format!("{l}l"), format!("{l}h")]
            .iter()
            .any(|f| f == n)
        {
            return Some(GPRS[i]);
        }
    }
    for (l, i) in [("sp", 4), ("bp", 5), ("si", 6), ("di", 7)] {
        if [format!("r{l}"), format!("e{l}"), l.to_string(), format!("{l}l")].iter().any(|f| f == n) {
            return Some(GPRS[i]);
        }
    }
    let num = n.strip_prefix('r')?;
    let digits = num.trim_end_matches(['d', 'w', 'b']);
    let i: usize = digits.parse().ok()?;
    (8..16).contains(&i).then(|| GPRS[i])
}

fn number(s: &str) -> Option<u64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => s.parse().ok()?,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `disp(%base,%index,scale)` with an optional `%seg:` prefix.
fn att_mem(s: &str, rip_target: Option<u64>) -> Option<Mem> {
    let (segment, s) = match s.split_once(':') {
        Some((seg, rest)) if seg.starts_with('%') => (true, rest),
        _ => (false, s),
    };
    let (disp, inner) = match s.find('(') {
        Some(i) => (&s[..i], s[i + 1..].strip_suffix(')')?),
        None => (s, ""),
    };
    let disp = if disp.is_empty() { 0 } else { number(disp)? };
    let mut parts = inner.split(',').map(str::trim);
    let base = parts.next().filter(|p| !p.is_empty()).map(att_reg);
    let index = parts.next().filter(|p| !p.is_empty()).map(att_reg);
    let scale = parts.next().map_or(Some(1), |p| p.parse().ok())?;
    let (base, index) = (base.map_or(Some(None), |b| b.map(Some))?, index.map_or(Some(None), |i| i.map(Some))?);
    let disp = if base == Some("rip") { rip_target? } else { disp };
    Some(Mem { base, index, scale, disp, segment })
}

fn att_operand(s: &str, rip_target: Option<u64>) -> Option<Operand> {
    let s = s.trim().trim_start_matches('*');
    if let Some(imm) = s.strip_prefix('$') {
        return number(imm).map(Operand::Imm);
    }
    if s.starts_with('%') && !s.contains(':') {
        return att_reg(s).map(Operand::Reg);
    }
    att_mem(s, rip_target).map(Operand::Mem)
}

/// Splits operands at the commas outside parentheses.
fn split_operands(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn condition(cc: &str) -> Option<&'static str> {
    Some(match cc {
        "ne" | "nz" => "ne",
        "e" | "z" => "e",
        "b" | "c" | "nae" => "b",
        "ae" | "nc" | "nb" => "ae",
        "a" | "nbe" => "a",
        "be" | "na" => "be",
        "l" | "nge" => "l",
        "ge" | "nl" => "ge",
        "g" | "nle" => "g",
        "le" | "ng" => "le",
        "s" => "s",
        "ns" => "ns",
        _ => return None,
    })
}

/// The class of an AT&T mnemonic, size suffixes folded.
fn att_class(m: &str) -> Class {
    let sized = |base: &str| {
        m == base || (m.len() == base.len() + 1 && m.starts_with(base) && m.ends_with(['b', 'w', 'l', 'q']))
    };
    match m {
        "pause" => Class::Pause,
        "jmp" | "jmpq" => Class::Jump,
        "movslq" | "movsbl" | "movswl" | "movsbq" | "movswq" | "movsbw" | "movzbl" | "movzwl" | "movzbq" | "movzwq"
        | "movzbw" | "movsxd" => Class::MoveExtend,
        _ if sized("mov") => Class::Move,
        _ if sized("test") => Class::Test,
        _ if sized("and") => Class::And,
        _ if sized("bt") => Class::Bt,
        _ => match m.strip_prefix('j').and_then(condition) {
            Some(c) => Class::Branch(c),
            None => Class::Other,
        },
    }
}

/// The registers an AT&T instruction writes: its destination (last operand) when a
/// register, and the implicit ones of the few instructions that have them.
fn att_writes(m: &str, class: Class, ops: &[Operand]) -> Vec<Reg> {
    if matches!(class, Class::Test | Class::Bt | Class::Branch(_) | Class::Jump | Class::Pause)
        || m.starts_with("cmp") && !m.starts_with("cmpxchg")
        || m.starts_with("push")
        || m.starts_with("nop")
    {
        return Vec::new();
    }
    if m.starts_with("call") {
        return CALL_CLOBBERS.to_vec();
    }
    let mut w: Vec<Reg> = match ops.first() {
        Some(Operand::Reg(r)) => vec![r],
        _ => Vec::new(),
    };
    if m.starts_with("xchg")
        && let Some(Operand::Reg(r)) = ops.get(1)
    {
        w.push(r);
    }
    if m.starts_with("cmpxchg") || ops.len() == 1 && ["mul", "imul", "div", "idiv"].iter().any(|x| m.starts_with(x)) {
        w.extend(["rax", "rdx"]);
    }
    if ["cltq", "cqto", "cltd", "cwtl"].contains(&m) {
        w.extend(["rax", "rdx"]);
    }
    w
}

/// One `dis` line's instruction (`mov    0x18(%rdx),%ecx`, `jne    0xffff… <f+0x222>`,
/// `cmp    0x124746e(%rip),%eax        # 0xffffffff8d37b4a4`).
pub(crate) fn parse_att(at: u64, text: &str) -> Insn {
    let (body, comment) = match text.split_once('#') {
        Some((b, c)) => (b.trim(), c.split_whitespace().next()),
        None => (text.trim(), None),
    };
    let rip_target = comment.and_then(number);
    let mut words = body.split_whitespace().peekable();
    while words.peek().is_some_and(|w| ["lock", "rep", "repz", "repnz", "repe", "repne", "notrack", "bnd"].contains(w))
    {
        words.next();
    }
    let mnemonic = words.next().unwrap_or("").to_ascii_lowercase();
    let rest: String = words.collect::<Vec<_>>().join(" ");
    let class = att_class(&mnemonic);
    let (ops, target) = if matches!(class, Class::Branch(_) | Class::Jump) || mnemonic.starts_with("call") {
        let t = rest.split_whitespace().next().and_then(number);
        (Vec::new(), t)
    } else {
        // AT&T lists the destination last: reverse into Intel order.
        let mut ops: Vec<Operand> = split_operands(&rest).iter().filter_map(|o| att_operand(o, rip_target)).collect();
        ops.reverse();
        (ops, None)
    };
    let writes = att_writes(&mnemonic, class, &ops);
    Insn { at, class, ops, writes, target: target.filter(|_| class != Class::Other), text: body.to_string() }
}

/// A `dis` listing around `ip`, as instructions.
pub(crate) fn from_listing(lines: &[CodeLine], ip: u64) -> Option<Code> {
    lines
        .iter()
        .any(|l| l.address == ip)
        .then(|| Code { insns: lines.iter().map(|l| parse_att(l.address, &l.text)).collect(), ip })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn att_operands_come_out_in_intel_order() {
        let i = parse_att(0x10, "add    -0x72eb2c00(,%rcx,8),%rdx");
        assert_eq!(i.ops[0], Operand::Reg("rdx"));
        let Operand::Mem(m) = i.ops[1] else { panic!("{i:?}") };
        assert_eq!((m.base, m.index, m.scale, m.disp), (None, Some("rcx"), 8, 0xffff_ffff_8d14_d400));
        assert_eq!(i.writes, vec!["rdx"]);
    }

    #[test]
    fn rip_relative_operands_take_the_printed_target() {
        let i = parse_att(0x10, "cmp    0x124746e(%rip),%eax        # 0xffffffff8d37b4a4");
        assert_eq!(i.mem().unwrap().disp, 0xffffffff8d37b4a4);
        assert!(i.writes.is_empty());
    }

    #[test]
    fn branches_prefixes_and_sizes() {
        let j = parse_att(0x10, "jne    0xffffffff8c134052 <smp_call_function_many+0x222>");
        assert_eq!((j.class, j.target), (Class::Branch("ne"), Some(0xffffffff8c134052)));
        let t = parse_att(0x10, "testb  $0x2,0x3(%rdi)");
        assert_eq!(t.class, Class::Test);
        assert_eq!(t.ops[1], Operand::Imm(2));
        let l = parse_att(0x10, "lock btsl $0x18,(%r12)");
        assert_eq!(l.class, Class::Other);
        assert!(l.writes.is_empty());
        let c = parse_att(0x10, "callq  0xffffffff8c87f290 <cpumask_next>");
        assert!(c.writes("rax") && c.writes("rdi") && !c.writes("rbx"));
        let m = parse_att(0x10, "movslq %eax,%rcx");
        assert_eq!(
            (m.class, m.ops.clone(), m.writes.clone()),
            (Class::MoveExtend, vec![Operand::Reg("rcx"), Operand::Reg("rax")], vec!["rcx"])
        );
        assert!(parse_att(0x10, "mov    %gs:0x73edb2d6(%rip),%ebx        # 0xf130").mem().unwrap().segment);
        assert_eq!(att_reg("%r8d"), Some("r8"));
        assert_eq!(att_reg("%cl"), Some("rcx"));
        assert_eq!(att_reg("%sil"), Some("rsi"));
    }
}
