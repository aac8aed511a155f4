//! `dis`: kernel code from the dump, as crash prints it (`0xADDR <func+off>:  insn`), AT&T
//! by default, `--intel` on request, branch and RIP-relative targets named.

use crate::kernel_cmds::{DumpArg, emit, emit_json};
use lockscope_kernel::arch::Syntax;
use lockscope_kernel::helpers::code::crash_name;
use lockscope_kernel::{Kernel, KernelError};
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn dis(k: &Kernel, d: &DumpArg, at: u64, count: Option<usize>, intel: bool) -> Result<ExitCode, KernelError> {
    let syntax = if intel { Syntax::Intel } else { Syntax::Att };
    let insns = k.disassemble(at, count, syntax)?;
    // With a --vmlinux, the source line each run of instructions comes from (crash's `dis -l`).
    let end = insns.last().map_or(at, |i| i.address + i.bytes.len() as u64);
    let lines = k.source_lines(at, end).unwrap_or_default();
    let line_at = |a: u64| lines.iter().find(|l| l.address == a);
    let label =
        |a: u64| k.lookup_address(a).map_or_else(|| format!("{a:#x}"), |s| crash_name(s.name, a - s.address, s.module));
    if d.json {
        let v: Vec<_> = insns
            .iter()
            .map(|i| {
                json!({
                    "address": format!("{:#x}", i.address), "symbol": label(i.address),
                    "source": line_at(i.address).map(|l| format!("{}: {}", l.file, l.line)),
                    "bytes": i.bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    "text": i.text, "invalid": i.invalid,
                })
            })
            .collect();
        return Ok(emit_json(k, &json!({ "instructions": v })));
    }
    let labels: Vec<String> = insns.iter().map(|i| format!("{:#x} <{}>:", i.address, label(i.address))).collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    let mut s = String::new();
    let mut last: Option<(&str, u64)> = None;
    for (l, i) in labels.iter().zip(&insns) {
        if let Some(src) = line_at(i.address)
            && last != Some((src.file.as_str(), src.line))
        {
            let _ = writeln!(s, "{}: {}", src.file, src.line);
            last = Some((src.file.as_str(), src.line));
        }
        let _ = writeln!(s, "{l:<width$} {}", i.text);
    }
    Ok(emit(&s))
}
