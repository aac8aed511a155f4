//! Kernel code as instructions: `dis` of a function or of a number of instructions from an
//! address, targets named by kallsyms and the modules' symbols.

use crate::arch::{Instruction, Syntax};
use crate::{Kernel, KernelError};

/// A function longer than this is shown in part.
const MAX_FUNCTION_BYTES: u64 = 64 << 10;
/// The longest x86_64 instruction.
const MAX_INSTRUCTION: usize = 15;

impl Kernel {
    /// `count` instructions from `address`, or, without a count, the whole function that
    /// starts there (to the next symbol).
    pub fn disassemble(
        &self,
        address: u64,
        count: Option<usize>,
        syntax: Syntax,
    ) -> Result<Vec<Instruction>, KernelError> {
        let len = match count {
            Some(n) => n.saturating_mul(MAX_INSTRUCTION),
            None => {
                let sym = self.lookup_address(address).ok_or(KernelError::NoSymbol(format!("{address:#x}")))?;
                let end = sym.address + sym.size.unwrap_or(256).min(MAX_FUNCTION_BYTES);
                end.saturating_sub(address).max(1) as usize
            }
        };
        let code = self.readable_prefix(address, len)?;
        let name = |a: u64| self.lookup_address(a).map(|s| crash_name(s.name, a - s.address, s.module));
        Ok(self.arch().disassemble(&code, address, count.unwrap_or(usize::MAX), syntax, &name))
    }

    /// The bytes at `address` up to `len`, or up to the first page the dump does not hold.
    fn readable_prefix(&self, address: u64, len: usize) -> Result<Vec<u8>, KernelError> {
        match self.memory().read_vec(address, len) {
            Ok(v) => Ok(v),
            Err(err) => {
                let page_end = (address | 0xfff) + 1;
                let first = (page_end - address) as usize;
                if first >= len {
                    return Err(KernelError::Memory { what: format!("code at {address:#x}"), err });
                }
                let mut v = self
                    .memory()
                    .read_vec(address, first)
                    .map_err(|err| KernelError::Memory { what: format!("code at {address:#x}"), err })?;
                let mut at = page_end;
                while v.len() < len {
                    let n = (len - v.len()).min(4096);
                    match self.memory().read_vec(at, n) {
                        Ok(more) => v.extend(more),
                        Err(_) => break,
                    }
                    at += 4096;
                }
                Ok(v)
            }
        }
    }
}

/// `name+off [module]` as crash writes it (decimal offset, none at the start).
pub fn crash_name(name: &str, offset: u64, module: Option<&str>) -> String {
    let mut s = name.to_string();
    if offset != 0 {
        s.push_str(&format!("+{offset}"));
    }
    if let Some(m) = module {
        s.push_str(&format!(" [{m}]"));
    }
    s
}

impl Kernel {
    /// The source lines of `[start, end)` (run-time addresses) from the `--vmlinux`'s DWARF
    /// line tables; empty without a vmlinux (the dump has no line tables).
    pub fn source_lines(&self, start: u64, end: u64) -> Result<Vec<crate::dwarf::lines::SourceLine>, KernelError> {
        let Some(path) = &self.options().vmlinux else { return Ok(Vec::new()) };
        let vm = self.open_vmlinux(path).map_err(KernelError::NoTypes)?;
        let shift = crate::sysmap::kaslr_offset(vm.symbol("_stext"), self.vmcoreinfo())
            .map_err(|(a, b)| KernelError::NoTypes(format!("{a} / {b}")))?;
        let mut lines = vm
            .source_lines(start.wrapping_sub(shift), end.wrapping_sub(shift))
            .map_err(|e| KernelError::NoTypes(e.to_string()))?;
        for l in &mut lines {
            l.address = l.address.wrapping_add(shift);
        }
        Ok(lines)
    }
}
