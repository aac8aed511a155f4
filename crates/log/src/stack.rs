//! Call-trace and register lines: frames in every printed form (2.6 `[<addr>] ? f+0x/0x`,
//! 4.x+ ` f+0x/0x [mod]`, syzkaller's symbolised ` f file.c:12 [inline]`, arm64), the
//! context markers that split a trace into task/IRQ/NMI segments, and `show_regs` output
//! of x86_64 and arm64 parsed to numbers.

use lockscope_facts::{Arch, CodeBytes, CodeLocation, Frame, FrameContext, Registers};

/// What a trace line says.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceLine {
    Frame(Frame),
    /// arm32 `[<pc>] (func) from [<lr>] (caller+0x28/0x2c)`: a function and its caller,
    /// innermost first. The caller is printed again as the function of the next line.
    CallPair(Frame, Frame),
    /// A context marker, optionally followed by a frame on the same line (2.6 `<IRQ>  [<..>] f`).
    Marker(Marker, Option<Frame>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Enter(FrameContext),
    Leave(FrameContext),
    /// `<EOI>`, `--- <IRQ stack> ---` ends an IRQ stack whose interrupted frames follow.
    EndOfIrqStack,
    /// crash's `--- <IRQ stack> ---` / `--- <NMI exception stack> ---`: the frames printed
    /// since the last marker were on that stack; the interrupted ones follow.
    EndOfStack(FrameContext),
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$'
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `name+0xoff/0xsize`, `name+0xoff`, or `name`.
pub fn parse_symbol(token: &str) -> Option<(String, Option<u64>, Option<u64>)> {
    let (name, offs) = match memchr::memchr(b'+', token.as_bytes()) {
        Some(i) => (&token[..i], Some(&token[i + 1..])),
        None => (token, None),
    };
    if name.is_empty() || !name.bytes().all(is_ident_byte) || name.starts_with('.') {
        return None;
    }
    let (off, size) = match offs {
        None => (None, None),
        Some(o) => match o.split_once('/') {
            Some((a, b)) => (Some(parse_hex(a)?), Some(parse_hex(b)?)),
            None => (Some(parse_hex(o)?), None),
        },
    };
    Some((name.to_string(), off, size))
}

fn marker(tok: &str) -> Option<Marker> {
    Some(match tok {
        "<IRQ>" => Marker::Enter(FrameContext::Irq),
        "</IRQ>" => Marker::Leave(FrameContext::Irq),
        "<NMI>" => Marker::Enter(FrameContext::Nmi),
        "</NMI>" | "<<EOE>>" => Marker::Leave(FrameContext::Nmi),
        "<SOFTIRQ>" => Marker::Enter(FrameContext::SoftIrq),
        "</SOFTIRQ>" => Marker::Leave(FrameContext::SoftIrq),
        "<TASK>" => Marker::Enter(FrameContext::Task),
        "</TASK>" => Marker::Leave(FrameContext::Task),
        "<EOI>" => Marker::EndOfIrqStack,
        _ => return None,
    })
}

/// Parses one line of a call trace (message text without the log prefix).
pub fn parse_trace_line(text: &str) -> Option<TraceLine> {
    let t = text.trim_start();
    let indented = t.len() < text.len();
    if t.starts_with("--- <IRQ stack> ---") {
        return Some(TraceLine::Marker(Marker::EndOfStack(FrameContext::Irq), None));
    }
    if t.starts_with("--- <NMI stack> ---") || t.starts_with("--- <NMI exception stack> ---") {
        return Some(TraceLine::Marker(Marker::EndOfStack(FrameContext::Nmi), None));
    }
    if let Some(f) = parse_crash_frame(t) {
        return Some(TraceLine::Frame(f));
    }
    if t.starts_with('<') {
        let tok = t.split_whitespace().next()?;
        let m = marker(tok)?;
        let rest = &t[tok.len()..];
        let frame = if rest.trim().is_empty() { None } else { parse_frame(rest, true) };
        return Some(TraceLine::Marker(m, frame));
    }
    if !indented && !t.starts_with("[<") && bracketed_hex(t).is_none() {
        return None;
    }
    if let Some(pair) = parse_call_pair(t) {
        return Some(pair);
    }
    parse_frame(t, indented).map(TraceLine::Frame)
}

/// crash's `bt` frame: `#8 [ffffb39780993ce8] apic_timer_interrupt at ffffffff8ca02182`,
/// with `-s` `func+0x227 at addr`, a module as `[mod]` after the address.
fn parse_crash_frame(t: &str) -> Option<Frame> {
    let rest = t.strip_prefix('#')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (sp, rest) = bracketed_hex(rest[digits..].trim_start())?;
    let mut words = rest.split_whitespace();
    let sym = words.next()?;
    if words.next()? != "at" {
        return None;
    }
    // An engineer's remark may be glued to the address (`ffffffff8163df9b-----被调度出去了`).
    let word = words.next()?;
    let address = parse_hex(&word[..word.bytes().take_while(u8::is_ascii_hexdigit).count()])?;
    let (function, offset, size) = parse_symbol(sym)?;
    let module = words.next().and_then(|m| m.strip_prefix('[')?.strip_suffix(']')).map(str::to_string);
    Some(Frame { function, offset, size, module, address: Some(address), stack_pointer: Some(sp), ..Frame::named("") })
}

/// `[c000000049a87710] rest`: a powerpc stack pointer or address in brackets (8 to 16 hex
/// digits, no angle brackets), and what follows it.
fn bracketed_hex(t: &str) -> Option<(u64, &str)> {
    let rest = t.strip_prefix('[')?;
    let end = rest.find(']')?;
    let hex = &rest[..end];
    if !(8..=16).contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((u64::from_str_radix(hex, 16).ok()?, &rest[end + 1..]))
}

/// Strips the one or two leading addresses of a frame line: `[<ffffffff8111ec90>]` (x86
/// and arm before 4.x, printed once or twice) or powerpc `[sp] [pc]`. Returns the last
/// address and the rest.
fn strip_addresses(mut t: &str) -> Option<(Option<u64>, &str)> {
    let mut address = None;
    for _ in 0..2 {
        t = t.trim_start();
        if let Some(rest) = t.strip_prefix("[<") {
            let end = rest.find(">]")?;
            address = Some(parse_hex(&rest[..end])?);
            t = &rest[end + 2..];
        } else if let Some((a, rest)) = bracketed_hex(t) {
            address = Some(a);
            t = rest;
        } else {
            break;
        }
    }
    Some((address, t.trim_start()))
}

/// arm32 `[<80de0078>] (dump_backtrace) from [<80de0574>] (show_stack+0x28/0x2c)`, or the
/// older `[<c0012345>] (func+0x10/0x20) from [<c0023456>] (caller+0x30/0x40)`.
fn parse_call_pair(t: &str) -> Option<TraceLine> {
    let (address, rest) = strip_addresses(t)?;
    let rest = rest.strip_prefix('(')?;
    let (callee, rest) = rest.split_once(") from ")?;
    let (caller_address, rest) = strip_addresses(rest)?;
    let caller = rest.strip_prefix('(')?.trim_end().strip_suffix(')')?;
    let frame = |sym: &str, address: Option<u64>| {
        let (function, offset, size) = parse_symbol(sym)?;
        Some(Frame { function, offset, size, address, ..Frame::named("") })
    };
    Some(TraceLine::CallPair(frame(callee, address)?, frame(caller, caller_address)?))
}

fn parse_frame(t: &str, indented: bool) -> Option<Frame> {
    let (address, mut t) = strip_addresses(t)?;
    let mut reliable = true;
    // powerpc marks return addresses the unwinder could not vouch for at the end.
    if let Some(rest) = t.trim_end().strip_suffix(" (unreliable)") {
        reliable = false;
        t = rest;
    }
    if let Some(rest) = t.strip_prefix("? ") {
        reliable = false;
        t = rest.trim_start();
    }
    let mut words = t.split_whitespace();
    let sym = words.next()?;
    let mut frame = Frame { address, reliable, ..Frame::named("") };
    if let Some(hex) = sym.strip_prefix("0x") {
        // An address no symbol covers (`? 0xffffffffc0225000`).
        frame.address = Some(u64::from_str_radix(hex, 16).ok()?);
        frame.function = sym.to_string();
        return words.next().is_none().then_some(frame);
    }
    let (name, off, size) = parse_symbol(sym)?;
    frame.function = name;
    frame.offset = off;
    frame.size = size;
    // What may follow: `[module]` / `[module buildid]`, `(T)`, `file.c:12`, `[inline]`.
    let rest: Vec<&str> = words.collect();
    let mut i = 0;
    let mut has_source = false;
    while i < rest.len() {
        let w = rest[i];
        if w == "[inline]" {
            has_source = true;
        } else if let Some(m) = w.strip_prefix('[') {
            let m = m.trim_end_matches(']');
            if m.is_empty() || !m.bytes().all(|b| is_ident_byte(b) || b == b'-') {
                return None;
            }
            frame.module = Some(m.to_string());
            // Skip a build id: `[lockscen 0123abcd...]`
            while !rest[i].ends_with(']') {
                i += 1;
                if i >= rest.len() {
                    return None;
                }
            }
        } else if w.len() == 3 && w.starts_with('(') && w.ends_with(')') {
            // arm64 6.x `(T)`/`(P)`/`(L)`: where the unwinder found the frame.
        } else if w.contains(':') && (w.contains('/') || w.contains(".c:") || w.contains(".h:") || w.contains(".S:")) {
            has_source = true;
        } else {
            return None;
        }
        i += 1;
    }
    // A bare word is a frame only with an address or source position: anything else is
    // ordinary indented text (the tail of `Modules linked in:`).
    if off.is_none() && address.is_none() && !has_source {
        return None;
    }
    let _ = indented;
    Some(frame)
}

/// Lines printed inside a trace that carry neither frames nor the trapped registers: arm32
/// saved registers of a frame (` r9:40000193 r8:ffffffff r7:00000001`) and the words of an
/// `Exception stack(0x83711dd0 to 0x83711e18)` dump (`1dc0:   80ffa650 0000009c`).
pub fn is_trace_filler(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return false;
    };
    let hex = |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(offset) = first.strip_suffix(':') {
        // stack dump: `1dc0:` then 32-bit words
        return hex(offset) && words.all(|w| w.len() == 8 && hex(w));
    }
    // saved registers: `r10:81208ed4`, `fp:83711e54`, `ip:...`
    std::iter::once(first).chain(words).all(|w| {
        w.split_once(':').is_some_and(|(name, v)| {
            (1..=3).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && v.len() == 8
                && hex(v)
        })
    })
}

/// `RIP: 0010:func+0x/0x`, `RIP: 0010:[<addr>]  [<addr>] func+0x/0x`, `RIP: 0033:0x7f..`,
/// arm64 `pc : func+0x/0x`, `pc : [<addr>]`.
pub fn parse_code_location(s: &str) -> CodeLocation {
    let s = s.trim();
    let mut loc = CodeLocation { function: None, offset: None, size: None, module: None, address: None, user: false };
    let mut rest = s;
    // x86 segment selector: `0010:`
    if rest.len() > 5 && rest.as_bytes()[4] == b':' && rest[..4].bytes().all(|b| b.is_ascii_hexdigit()) {
        let seg = u16::from_str_radix(&rest[..4], 16).unwrap_or(0);
        loc.user = seg & 3 == 3;
        rest = &rest[5..];
    }
    let mut words = rest.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if let Some(inner) = w.strip_prefix("[<").and_then(|x| x.strip_suffix(">]")) {
            loc.address = parse_hex(inner);
        } else if let Some(hex) = w.strip_prefix("0x") {
            loc.address = u64::from_str_radix(hex, 16).ok();
        } else if w.len() >= 8 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
            // A bare address before the symbol (mips, loongarch, s390's PSW words): the last wins.
            loc.address = parse_hex(w);
        } else if let Some(m) = w.strip_prefix('[') {
            loc.module = Some(m.trim_end_matches(']').to_string());
            while words.peek().is_some() && !w.ends_with(']') {
                if words.next().is_some_and(|x| x.ends_with(']')) {
                    break;
                }
            }
        } else if let Some((name, off, size)) = parse_symbol(w)
            && loc.function.is_none()
        {
            loc.function = Some(name);
            loc.offset = off;
            loc.size = size;
        }
    }
    loc
}

const X86_REGS: &[&str] = &[
    "RIP", "RSP", "RFLAGS", "EFLAGS", "ORIG_RAX", "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R08", "R09", "R10",
    "R11", "R12", "R13", "R14", "R15", "FS", "GS", "knlGS", "CS", "DS", "ES", "CR0", "CR2", "CR3", "CR4", "DR0", "DR1",
    "DR2", "DR3", "DR6", "DR7", "PKRU",
];

/// Which register-dump line this is, if any.
#[derive(Clone, Debug, PartialEq)]
pub enum RegLine {
    Ip(Arch, CodeLocation),
    Lr(CodeLocation),
    Values(Arch, Vec<(String, u64)>),
    Code(CodeBytes),
}

/// Parses a `show_regs` line: `RIP:`, `RAX: .. RBX: ..`, `Code:`, arm64 `pc :`, `x29: ..`.
pub fn parse_reg_line(text: &str) -> Option<RegLine> {
    let t = text.trim_start();
    // crash: `[exception RIP: smp_call_function_many+0x227]` opens an exception frame's
    // registers; its `RIP: ffffffff8c134057  RSP: …  RFLAGS: 00000202` line holds values.
    // An engineer's remark may follow the bracket (`]-----这个RIP`).
    if let Some(rest) = t.strip_prefix("[exception RIP: ").and_then(|r| Some(&r[..r.find(']')?])) {
        let mut loc = parse_code_location(rest);
        // crash prints `func+336` in decimal, `func+0x150` in hex.
        if let Some((_, off)) = rest.rsplit_once('+')
            && !off.starts_with("0x")
        {
            loc.offset = off.parse().ok();
        }
        return Some(RegLine::Ip(Arch::X86_64, loc));
    }
    // Every form below starts with one of these bytes: most lines end here.
    if !matches!(
        t.as_bytes().first(),
        Some(
            b'C' | b'D'
                | b'E'
                | b'F'
                | b'G'
                | b'K'
                | b'L'
                | b'N'
                | b'O'
                | b'P'
                | b'R'
                | b'e'
                | b'k'
                | b'l'
                | b'p'
                | b'r'
                | b's'
                | b'x'
        )
    ) {
        return None;
    }
    if let Some(rest) = t.strip_prefix("RIP: ")
        && !rest.split_whitespace().next().is_some_and(|w| w.len() == 16 && parse_hex(w).is_some())
    {
        return Some(RegLine::Ip(Arch::X86_64, parse_code_location(rest)));
    }
    if let Some(rest) = t.strip_prefix("pc : ") {
        // 4.14-era arm64 prints `pc : [<a>] lr : [<b>] pstate: 80000145` on one line.
        let (pc, tail) = match rest.find(" lr : ") {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let loc = parse_code_location(pc);
        let _ = tail;
        return Some(RegLine::Ip(Arch::Arm64, loc));
    }
    if let Some(rest) = t.strip_prefix("lr : ") {
        return Some(RegLine::Lr(parse_code_location(rest)));
    }
    if let Some(l) = other_arch_ip_line(t) {
        return Some(l);
    }
    if let Some(rest) = t.strip_prefix("Code: ") {
        return parse_code(rest).map(RegLine::Code);
    }
    let first = t.split(':').next()?;
    let arch = if X86_REGS.contains(&first) {
        Arch::X86_64
    } else if ["EIP", "EAX", "ESI"].contains(&first) {
        // i386's `EIP: 0060:[<c06ca742>] EFLAGS: 00003296 CPU: 1`, `EAX: .. EBX: ..`, `ESI: ..`
        Arch::I386
    } else if first == "pstate" || first == "sp " || is_arm64_gpr(first.trim_end()) {
        Arch::Arm64
    } else {
        return None;
    };
    // arm64 pads names: `x9 : 0000000000000008`, `sp : ffff80003344f900`.
    let normalized: std::borrow::Cow<'_, str> =
        if t.contains(" :") { t.replace(" : ", ": ").replace(" :", ":").into() } else { t.into() };
    let mut values = Vec::new();
    let mut words = normalized.split_whitespace();
    while let Some(w) = words.next() {
        let (name, v) = match w.strip_suffix(':') {
            Some(name) => match words.next() {
                Some(v) => (name, v),
                None => break,
            },
            // `GS:ffff8d730b880000(0000)`, `knlGS:0000000000000000`
            None => match w.split_once(':') {
                Some((n, v)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()) => (n, v),
                _ => continue,
            },
        };
        // `0018:ffffd2e880373e98` (selector:value), `0000000000000000(0000)`
        let v = v.rsplit(':').next().unwrap_or(v);
        let v = v.split('(').next().unwrap_or(v);
        if let Some(n) = parse_hex(v) {
            // crash says RFLAGS where the kernel says EFLAGS.
            let name = if name == "RFLAGS" { "eflags".to_string() } else { name.to_ascii_lowercase() };
            values.push((name, n));
        }
    }
    (!values.is_empty()).then_some(RegLine::Values(arch, values))
}

/// Where other architectures' `show_regs` print the interrupted function and the return
/// address: (line prefix, architecture, whether it is the link register).
const OTHER_ARCH_IP_LINES: &[(&str, Arch, bool)] = &[
    ("EIP is at ", Arch::I386, false),  // i386, 2.6–4.x: `EIP is at ioread32+0x32/0x40`
    ("EIP: [<", Arch::I386, false),     // i386, 2.6: `EIP: [<c0123>] f+0x54/0x140 SS:ESP ..`
    ("PC is at ", Arch::Arm, false),    // arm, arm64 before 4.16
    ("LR is at ", Arch::Arm, true),     //
    ("NIP [", Arch::PowerPc, false),    // `NIP [c00000000209218c] memory_dev_init+0x114/0x1e0`
    ("LR [", Arch::PowerPc, true),      //
    ("Krnl PSW : ", Arch::S390, false), // `Krnl PSW : 0704c001.. 000001e43ac595e4 (f+0x4/0x2a0)`
    ("epc   : ", Arch::Mips, false),    // `epc   : ffffffff8020d72c f+0x2f4/0x370`
    ("ra    : ", Arch::Mips, true),     //
    ("epc : ", Arch::RiscV, false),     // `epc : get_wchan+0x5c/0x88` (a line of values
    ("ra : ", Arch::RiscV, true),       //   when the word after is an address)
    ("ERA: ", Arch::LoongArch, false),  // `ERA: 9000000000332100 kgdb_cpu_enter+0x540/0x640`
    (" ra: ", Arch::LoongArch, true),   //
];

fn other_arch_ip_line(t: &str) -> Option<RegLine> {
    let &(prefix, arch, lr) = OTHER_ARCH_IP_LINES.iter().find(|(p, ..)| t.starts_with(p.trim_start()))?;
    let rest = &t[prefix.trim_start().len()..];
    // powerpc: `[address] function`, the address bracketed without `<>`.
    if arch == Arch::PowerPc {
        let (addr, after) = rest.split_once(']')?;
        let loc = CodeLocation { address: parse_hex(addr), ..parse_code_location(after) };
        return Some(ip_or_lr(arch, lr, loc));
    }
    let rest = match prefix {
        "EIP: [<" => &t["EIP: ".len()..],
        _ => rest.split(" SS:ESP").next().unwrap_or(rest),
    };
    // s390 puts the function in parentheses after the PSW's two words.
    let loc = parse_code_location(&rest.replace(['(', ')'], " "));
    // riscv's `epc : 0000000000cc9d6e ra : ... sp : ...` is a line of values, not this.
    (loc.function.is_some() && loc.offset.is_some()).then(|| ip_or_lr(arch, lr, loc))
}

fn ip_or_lr(arch: Arch, lr: bool, loc: CodeLocation) -> RegLine {
    if lr { RegLine::Lr(loc) } else { RegLine::Ip(arch, loc) }
}

fn is_arm64_gpr(s: &str) -> bool {
    s.strip_prefix('x').is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `7b 08 48 <8b> 4e` (x86_64) or `d503201f (b9400041)` (arm64 words).
fn parse_code(s: &str) -> Option<CodeBytes> {
    let mut bytes = Vec::new();
    let mut ip_index = None;
    for w in s.split_whitespace() {
        let (inner, marked) = match w.strip_prefix('<').and_then(|x| x.strip_suffix('>')) {
            Some(x) => (x, true),
            None => match w.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
                Some(x) => (x, true),
                None => (w, false),
            },
        };
        if marked {
            ip_index = Some(bytes.len());
        }
        match inner.len() {
            2 => bytes.push(u8::from_str_radix(inner, 16).ok()?),
            8 => bytes.extend_from_slice(&u32::from_str_radix(inner, 16).ok()?.to_le_bytes()),
            _ => return None,
        }
    }
    Some(CodeBytes { bytes, ip_index: ip_index? })
}

/// Applies a register line to a register set being built.
pub fn apply_reg_line(regs: &mut Option<Registers>, line: RegLine) {
    let arch = match &line {
        RegLine::Ip(a, _) | RegLine::Values(a, _) => *a,
        RegLine::Lr(_) => Arch::Arm64,
        RegLine::Code(_) => regs.as_ref().map_or(Arch::X86_64, |r| r.arch),
    };
    let r = regs.get_or_insert_with(|| Registers::new(arch));
    match line {
        RegLine::Ip(_, loc) => r.ip = Some(loc),
        RegLine::Lr(loc) => r.lr = Some(loc),
        RegLine::Values(_, vals) => {
            for (n, v) in vals {
                r.set(&n, v);
            }
        }
        RegLine::Code(c) => r.code = Some(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Frame {
        match parse_trace_line(s) {
            Some(TraceLine::Frame(f)) => f,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn frames_in_every_form() {
        // corpus ipi_sleeping_holder console.log
        let f = frame(" flush_cpu_caches_demo+0x21/0x40 [lockscen]");
        assert_eq!((f.function.as_str(), f.offset, f.size), ("flush_cpu_caches_demo", Some(0x21), Some(0x40)));
        assert_eq!(f.module.as_deref(), Some("lockscen"));
        let f = frame(" ? kthread_complete_and_exit+0x20/0x20");
        assert!(!f.reliable);
        let f = frame(" ? 0xffffffffc0225000");
        assert_eq!(f.address, Some(0xffffffffc0225000));
        // seed 004 (2.6.3x)
        let f = frame("[<ffffffff8111ec90>] ? sync_page+0x0/0x50");
        assert_eq!((f.address, f.reliable, f.function.as_str()), (Some(0xffffffff8111ec90), false, "sync_page"));
        let f = frame("[<ffffffffa1004f40>] ? do_dbs_timer+0x0/0x384 [cpufreq_ondemand]");
        assert_eq!(f.module.as_deref(), Some("cpufreq_ondemand"));
        // syzbot file 1000 (arm64, 6.x)
        let f = frame(" __switch_to+0x2b0/0x6e0 (T)");
        assert_eq!(f.function, "__switch_to");
        // syzbot symbolised frames
        let f = frame(" __schedule kernel/sched/core.c:5409 [inline]");
        assert_eq!((f.function.as_str(), f.offset), ("__schedule", None));
        let f = frame(" schedule+0x14b/0x320 kernel/sched/core.c:6806");
        assert_eq!(f.offset, Some(0x14b));
        // 6.x module with build id
        let f = frame(" foo+0x1/0x2 [ext4 0123456789abcdef0123456789abcdef01234567]");
        assert_eq!(f.module.as_deref(), Some("ext4"));
    }

    #[test]
    fn not_frames() {
        for s in [
            " ipmi_devintf ipmi_msghandler escache",
            "Call Trace:",
            "      Tainted: G           OE      6.1.0-50-amd64 #1 Debian 6.1.176-1",
            " #0: ffff888 (&mm->mmap_lock){++++}-{3:3}, at: foo+0x1/0x2",
            "watchdog: BUG: soft lockup - CPU#1 stuck for 10s! [text_poke:138]",
        ] {
            assert!(!matches!(parse_trace_line(s), Some(TraceLine::Frame(_))), "{s}");
        }
    }

    #[test]
    fn powerpc_frames() {
        // syzkaller corpus file 379 (powerpc, 5.1)
        let f = frame("[c000000049a87710] [c0000000000286fc] __switch_to+0x43c/0x6d0");
        assert_eq!(
            (f.function.as_str(), f.offset, f.address, f.reliable),
            ("__switch_to", Some(0x43c), Some(0xc0000000000286fc), true)
        );
        let f = frame("[c000000049a87530] [c000000049a875a0] 0xc000000049a875a0 (unreliable)");
        assert!(!f.reliable);
        assert_eq!(f.address, Some(0xc000000049a875a0));
        // `[  OK  ]` and other bracketed words are not addresses.
        assert_eq!(parse_trace_line("[  OK  ] Started foo+0x1/0x2"), None);
        assert_eq!(parse_trace_line("[deadbeef] not a frame"), None);
    }

    #[test]
    fn arm32_call_pairs() {
        // syzkaller corpus file 547 (arm32, 5.10)
        let Some(TraceLine::CallPair(f, c)) =
            parse_trace_line("[<80de0078>] (dump_backtrace) from [<80de0574>] (show_stack+0x28/0x2c)")
        else {
            panic!()
        };
        assert_eq!((f.function.as_str(), f.address, f.offset), ("dump_backtrace", Some(0x80de0078), None));
        assert_eq!(
            (c.function.as_str(), c.address, c.offset, c.size),
            ("show_stack", Some(0x80de0574), Some(0x28), Some(0x2c))
        );
        let Some(TraceLine::CallPair(f, c)) = parse_trace_line(
            "[<80cc6a44>] (do_tcp_setsockopt.constprop.0) from [<80cc7fa0>] (tcp_setsockopt+0xa0/0xb4)",
        ) else {
            panic!()
        };
        assert_eq!((f.function.as_str(), c.function.as_str()), ("do_tcp_setsockopt.constprop.0", "tcp_setsockopt"));
        // syzkaller corpus file 550: no time stamps at all
        assert!(matches!(
            parse_trace_line("[<80c1e5e8>] (__schedule) from [<80c1eb20>] (schedule+0x60/0xdc)"),
            Some(TraceLine::CallPair(..))
        ));
        // file 547: what arm32 prints between the frames
        for l in [
            " r9:40000193 r8:ffffffff r7:00000001 r6:00000080 r5:8101acf4 r4:00000000",
            " r4:81225180",
            "1dc0:                                     80ffa650 0000009c 00000000 00040000",
            "1e00: 83711e20 83711e20 8034d678 8018c67c 60000013 ffffffff",
        ] {
            assert!(is_trace_filler(l), "{l}");
        }
        for l in ["Call Trace:", " func+0x1/0x2", "rcu: 1-...: (2 ticks this GP)"] {
            assert!(!is_trace_filler(l), "{l}");
        }
    }

    #[test]
    fn markers() {
        assert_eq!(parse_trace_line(" <IRQ>"), Some(TraceLine::Marker(Marker::Enter(FrameContext::Irq), None)));
        assert_eq!(parse_trace_line(" </TASK>"), Some(TraceLine::Marker(Marker::Leave(FrameContext::Task), None)));
        let Some(TraceLine::Marker(Marker::EndOfIrqStack, Some(f))) =
            parse_trace_line(" <EOI>  [<ffffffff8100c2ca>] child_rip+0xa/0x20")
        else {
            panic!()
        };
        assert_eq!(f.function, "child_rip");
    }

    #[test]
    fn x86_registers() {
        // corpus ipi_sleeping_holder.panic console.log
        let mut regs = None;
        for l in [
            "RIP: 0010:smp_call_function_many_cond+0xf1/0x330",
            "Code: 7b 08 48 63 d0 e8 bf 48 3c 00 3b 05 a9 cc ac 01 73 25 48 63 d0 48 8b 33 48 03 34 d5 60 ab 01 9b 8b 56 08 83 e2 01 74 0a f3 90 <8b> 4e 08 83 e1 01 75 f6 83 c0 01 eb c1 48 83 c4 38 5b 5d 41 5c 41",
            "RSP: 0018:ffffd2e880373e98 EFLAGS: 00000202",
            "RAX: 0000000000000003 RBX: ffff8d730b8b2e00 RCX: 0000000000000001",
            "FS:  0000000000000000(0000) GS:ffff8d730b880000(0000) knlGS:0000000000000000",
        ] {
            apply_reg_line(&mut regs, parse_reg_line(l).expect(l));
        }
        let regs = regs.unwrap();
        assert_eq!(regs.arch, Arch::X86_64);
        assert_eq!(regs.ip.as_ref().unwrap().function.as_deref(), Some("smp_call_function_many_cond"));
        assert_eq!(regs.get("rax"), Some(3));
        assert_eq!(regs.get("rsp"), Some(0xffffd2e880373e98));
        assert_eq!(regs.get("gs"), Some(0xffff8d730b880000));
        assert_eq!(regs.irqs_enabled(), Some(true));
        let code = regs.code.unwrap();
        assert_eq!(code.bytes[code.ip_index], 0x8b);
        // old form and user mode
        let Some(RegLine::Ip(_, loc)) =
            parse_reg_line("RIP: 0010:[<ffffffff810b7a6e>]  [<ffffffff810b7a6e>] put_compound_page+0x150/0x1a0")
        else {
            panic!()
        };
        assert_eq!((loc.address, loc.function.as_deref()), (Some(0xffffffff810b7a6e), Some("put_compound_page")));
        let Some(RegLine::Ip(_, loc)) = parse_reg_line("RIP: 0033:0x7f0e1c2d3e4f") else { panic!() };
        assert!(loc.user);
    }

    #[test]
    fn arm64_registers() {
        // seed 003
        let mut regs = None;
        for l in [
            "pstate: 80c00009 (Nzcv daif +PAN +UAO)",
            "pc : smp_call_function_many_cond+0x34c/0x3a0",
            "lr : smp_call_function_many_cond+0x308/0x3a0",
            "sp : ffff80003344f900",
            "x29: ffff80003344f900 x28: fffff10eea740000 ",
            "x9 : 0000000000000008 x8 : ffff40000198b710 ",
            "x1 : 0000000000000003 x0 : 0000000000000000 ",
        ] {
            apply_reg_line(&mut regs, parse_reg_line(l).expect(l));
        }
        let regs = regs.unwrap();
        assert_eq!(regs.arch, Arch::Arm64);
        assert_eq!(regs.get("x1"), Some(3));
        assert_eq!(regs.get("x9"), Some(8));
        assert_eq!(regs.get("sp"), Some(0xffff80003344f900));
        assert_eq!(regs.irqs_enabled(), Some(true));
        assert_eq!(regs.lr.unwrap().offset, Some(0x308));
    }

    /// Real lines of `tests/data/realworld` (i386, arm, powerpc, s390, mips, riscv,
    /// loongarch): the interrupted function and, where printed, the return address.
    #[test]
    fn other_architectures_name_the_interrupted_function() {
        let ip = |l: &str| match parse_reg_line(l) {
            Some(RegLine::Ip(arch, loc)) => (arch, loc.function.unwrap_or_default(), loc.offset, loc.address),
            other => panic!("{l:?} gave {other:?}"),
        };
        let cases = [
            ("EIP is at ioread32+0x32/0x40", Arch::I386, "ioread32", Some(0x32), None),
            (
                "EIP: [<f83f9f24>] radeon_audio_detect+0x54/0x140 [radeon] SS:ESP 0068:f33b9d04",
                Arch::I386,
                "radeon_audio_detect",
                Some(0x54),
                Some(0xf83f9f24),
            ),
            ("PC is at smp_call_function_many+0x29c/0x308", Arch::Arm, "smp_call_function_many", Some(0x29c), None),
            (
                "NIP [c00000000209218c] memory_dev_init+0x114/0x1e0",
                Arch::PowerPc,
                "memory_dev_init",
                Some(0x114),
                Some(0xc00000000209218c),
            ),
            (
                "Krnl PSW : 0404e00180000000 000001e43ac595e4 (hrtimer_interrupt+0x4/0x2a0)",
                Arch::S390,
                "hrtimer_interrupt",
                Some(4),
                Some(0x1e43ac595e4),
            ),
            (
                "epc   : ffffffff8020d72c smp_call_function_many+0x2f4/0x370",
                Arch::Mips,
                "smp_call_function_many",
                Some(0x2f4),
                Some(0xffffffff8020d72c),
            ),
            ("epc : unthrottle_cfs_rq+0x3b4/0x3b8", Arch::RiscV, "unthrottle_cfs_rq", Some(0x3b4), None),
            (
                "ERA: 9000000000332100 kgdb_cpu_enter+0x540/0x640",
                Arch::LoongArch,
                "kgdb_cpu_enter",
                Some(0x540),
                Some(0x9000000000332100),
            ),
        ];
        for (line, arch, func, off, addr) in cases {
            assert_eq!(ip(line), (arch, func.to_string(), off, addr), "{line}");
        }
        let Some(RegLine::Lr(lr)) = parse_reg_line("LR [c0000000000164c4] arch_local_irq_restore+0x74/0x90") else {
            panic!()
        };
        assert_eq!(lr.function.as_deref(), Some("arch_local_irq_restore"));
        assert!(matches!(parse_reg_line("LR is at do_one_initcall+0x90/0x1e8"), Some(RegLine::Lr(_))));
        let mut regs = None;
        for l in [
            "EIP: 0060:[<c06ca742>] EFLAGS: 00003296 CPU: 1",
            "EIP is at ioread32+0x32/0x40",
            "EAX: ffffffff EBX: f2042780 ECX: 00000000 EDX: 00000000",
            " DS: 007b ES: 007b FS: 00d8 GS: 00e0 SS: 0068",
        ] {
            apply_reg_line(&mut regs, parse_reg_line(l).expect(l));
        }
        let regs = regs.unwrap();
        assert_eq!((regs.arch, regs.get("ebx"), regs.irqs_enabled()), (Arch::I386, Some(0xf2042780), Some(true)));
        assert!(matches!(parse_reg_line(" ra : get_wchan+0x42/0x88"), Some(RegLine::Lr(_))));
        // riscv's line of values is not an instruction pointer line.
        assert!(!matches!(
            parse_reg_line("epc : 0000000000cc9d6e ra : 0000000000d80428 sp : 0000003fffe6f8a0"),
            Some(RegLine::Ip(..))
        ));
    }
}
