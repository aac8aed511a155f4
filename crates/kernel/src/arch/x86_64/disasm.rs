//! x86_64 disassembly for `dis` (iced-x86): AT&T or Intel, with branch, call and
//! RIP-relative targets named by the kernel's symbols.

use crate::arch::{Instruction, Syntax};
use iced_x86::{
    Decoder, DecoderOptions, Formatter, GasFormatter, IntelFormatter, OpKind, SymbolResolver, SymbolResult,
};
use std::collections::HashMap;

/// Names for the targets iced-x86 asks about, looked up before formatting (its formatter
/// keeps the resolver for its whole life).
struct Names(HashMap<u64, String>);

impl SymbolResolver for Names {
    fn symbol(
        &mut self,
        _instruction: &iced_x86::Instruction,
        _operand: u32,
        _instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<SymbolResult<'_>> {
        self.0.get(&address).map(|name| SymbolResult::with_string(address, format!("{address:#x} <{name}>")))
    }
}

/// The addresses an instruction refers to: branch targets, RIP-relative and absolute memory
/// operands, kernel-address immediates.
fn targets(ins: &iced_x86::Instruction) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..ins.op_count() {
        match ins.op_kind(i) {
            OpKind::NearBranch64 => out.push(ins.near_branch64()),
            OpKind::Memory if ins.is_ip_rel_memory_operand() => out.push(ins.ip_rel_memory_address()),
            OpKind::Memory => out.push(ins.memory_displacement64()),
            OpKind::Immediate32to64 | OpKind::Immediate64 => out.push(ins.immediate(i)),
            _ => {}
        }
    }
    // Small numbers are constants and offsets, not kernel addresses.
    out.retain(|&a| a >= 0xffff_0000_0000_0000);
    out
}

pub fn disassemble(
    code: &[u8],
    address: u64,
    count: usize,
    syntax: Syntax,
    symbolize: &dyn Fn(u64) -> Option<String>,
) -> Vec<Instruction> {
    let mut dec = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut decoded = Vec::new();
    while dec.can_decode() && decoded.len() < count {
        decoded.push(dec.decode());
    }
    let mut names = HashMap::new();
    for a in decoded.iter().flat_map(targets) {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(a)
            && let Some(n) = symbolize(a)
        {
            e.insert(n);
        }
    }
    let resolver: Box<dyn SymbolResolver> = Box::new(Names(names));
    let mut fmt: Box<dyn Formatter> = match syntax {
        Syntax::Att => Box::new(GasFormatter::with_options(Some(resolver), None)),
        Syntax::Intel => Box::new(IntelFormatter::with_options(Some(resolver), None)),
    };
    let o = fmt.options_mut();
    o.set_first_operand_char_index(7);
    // objdump's and crash's numbers: 0x-prefixed lower-case hex, small ones too.
    o.set_small_hex_numbers_in_decimal(false);
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_uppercase_hex(false);
    decoded
        .iter()
        .map(|ins| {
            let start = (ins.ip() - address) as usize;
            let mut text = String::new();
            if ins.is_invalid() {
                text.push_str("(bad)");
            } else {
                fmt.format(ins, &mut text);
            }
            Instruction {
                address: ins.ip(),
                bytes: code[start..start + ins.len()].to_vec(),
                text,
                invalid: ins.is_invalid(),
            }
        })
        .collect()
}

/// Whether the bytes just before `pc` (`code` = the 7 bytes ending there) end with a call
/// instruction: `call rel32` (5 bytes) or an indirect call of 2, 3, 6 or 7 bytes.
pub fn ends_with_call(code: &[u8], pc: u64) -> bool {
    [5usize, 2, 3, 6, 7].iter().any(|&n| {
        let Some(tail) = code.len().checked_sub(n).map(|s| &code[s..]) else { return false };
        let mut dec = Decoder::with_ip(64, tail, pc - n as u64, DecoderOptions::NONE);
        let ins = dec.decode();
        !ins.is_invalid() && ins.len() == n && ins.mnemonic() == iced_x86::Mnemonic::Call
    })
}
