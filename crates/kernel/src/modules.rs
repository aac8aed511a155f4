//! Loaded modules and their symbols, read from each `struct module` on the `modules` list:
//! name, where its code and data are, and its own symbol table (`mod_kallsyms`: ELF symbols
//! with sizes, and a type letter each). Module frames in a lockup are often the culprit's.

use crate::{Kernel, KernelError};

/// Walks stop here: a corrupted list must not loop forever.
const MAX_MODULES: usize = 8192;
const MAX_MODULE_SYMS: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModuleSymbol {
    pub address: u64,
    pub size: u64,
    pub kind: char,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Module {
    pub name: String,
    /// The `struct module`.
    pub address: u64,
    /// Memory regions of the module (`[start, end)`): text, data, ...
    pub regions: Vec<(u64, u64)>,
    /// Where its code ends (a function symbol names nothing beyond).
    pub text_end: Option<u64>,
    /// Its ELF sections and where they were loaded (`sect_attrs`, as
    /// /sys/module/NAME/sections shows them): names data no symbol covers.
    pub sections: Vec<(String, u64)>,
    /// Its symbols by address.
    pub symbols: Vec<ModuleSymbol>,
    /// Where its split BTF is (`btf_data`, `btf_data_size`), when the kernel keeps it.
    pub btf: Option<(u64, u32)>,
}

impl Module {
    pub fn contains(&self, addr: u64) -> bool {
        self.regions.iter().any(|&(s, e)| addr >= s && addr < e)
    }

    /// The symbol holding an address (by its ELF size), or the nearest one below in the module.
    /// Where several share the address, a sized object or function wins over a zero-sized
    /// marker (`__start_alloc_tags` and other section bounds sit on the first variable).
    pub fn lookup(&self, addr: u64) -> Option<&ModuleSymbol> {
        let i = self.symbols.partition_point(|s| s.address <= addr).checked_sub(1)?;
        let at = self.symbols[i].address;
        let same = self.symbols[..=i].iter().rev().take_while(|s| s.address == at);
        let s = same.clone().find(|s| addr < s.address.saturating_add(s.size)).or_else(|| same.last())?;
        let inside = addr < s.address + s.size.max(1);
        // A function does not reach past the module's code (its data has no symbols of its
        // own when kallsyms keeps code only).
        let code_past_text = matches!(s.kind, 't' | 'T') && self.text_end.is_some_and(|end| addr >= end);
        (inside || self.contains(addr) && !code_past_text).then_some(s)
    }

    /// The loaded section an address lies in (the nearest section start below it), for an
    /// address no symbol covers: (section name, its start).
    pub fn section_of(&self, addr: u64) -> Option<(&str, u64)> {
        if !self.contains(addr) {
            return None;
        }
        self.sections.iter().filter(|(_, a)| *a <= addr).max_by_key(|(_, a)| *a).map(|(n, a)| (n.as_str(), *a))
    }
}

impl Kernel {
    /// Every loaded module (read on first use).
    pub fn modules(&self) -> Result<&[Module], KernelError> {
        self.modules_cache()
            .get_or_init(|| self.read_modules().map_err(|e| e.to_string()))
            .as_deref()
            .map_err(|e| KernelError::Modules(e.clone()))
    }

    fn read_modules(&self) -> Result<Vec<Module>, KernelError> {
        let head = self.symbol("modules")?;
        let list_off = self.offset_of("module", "list")?;
        let mut out = Vec::new();
        // A module that cannot be read is left out; a broken list is in the damage log.
        for node in self.list_nodes(head, crate::helpers::Structure::ModuleList, MAX_MODULES).nodes {
            let m = self.object(node - list_off, "struct module")?;
            match self.read_module(m) {
                Ok(module) => out.push(module),
                Err(e) => self.record_damage(crate::helpers::Damage {
                    structure: crate::helpers::Structure::ModuleList,
                    at: node - list_off,
                    what: crate::helpers::DamageKind::BadEntry(format!("module unreadable: {e}")),
                    recovered: 0,
                }),
            }
        }
        Ok(out)
    }

    fn read_module(&self, m: crate::object::Object<'_>) -> Result<Module, KernelError> {
        let name = String::from_utf8_lossy(&m.member("name")?.read_string(64)?).into_owned();
        let mut regions = Vec::new();
        let mut text_end = None;
        // Up to 6.3: core_layout/init_layout {base, size}; 6.4+: mem[MOD_MEM_NUM_TYPES].
        if let Ok(core) = m.member("core_layout") {
            let base = core.member("base")?.read_u64()?;
            regions.push((base, core.member("size")?.read_int()?));
            text_end = core.member("text_size").and_then(|t| t.read_int()).ok().map(|t| base + t);
        } else if let Ok(mem) = m.member("mem") {
            for i in 0..7 {
                let Ok(r) = mem.index(i) else { break };
                regions.push((r.member("base")?.read_u64()?, r.member("size")?.read_int()?));
            }
        }
        let regions: Vec<(u64, u64)> =
            regions.into_iter().filter(|&(b, s)| b != 0 && s != 0).map(|(b, s)| (b, b.saturating_add(s))).collect();
        let mut symbols = Vec::new();
        if let Ok(ks) = m.member("kallsyms").and_then(|k| k.deref()) {
            let n = crate::validate::in_range(
                "module kallsyms num_symtab",
                ks.member("num_symtab")?.read_int()?,
                0,
                MAX_MODULE_SYMS,
                "is more symbols than a module has",
            )?;
            let symtab = ks.member("symtab")?.read_u64()?;
            let strtab = ks.member("strtab")?.read_u64()?;
            let typetab = ks.member("typetab").and_then(|t| t.read_u64()).ok();
            let mem = self.memory();
            let raw = mem
                .read_vec(symtab, (n * 24) as usize)
                .map_err(|err| KernelError::Memory { what: format!("symbols of module {name}"), err })?;
            let types = typetab.and_then(|t| mem.read_vec(t, n as usize).ok());
            for (i, e) in raw.chunks_exact(24).enumerate() {
                let st_name = u32::from_le_bytes(e[0..4].try_into().expect("4"));
                let value = u64::from_le_bytes(e[8..16].try_into().expect("8"));
                let size = u64::from_le_bytes(e[16..24].try_into().expect("8"));
                if st_name == 0 || value == 0 {
                    continue;
                }
                let Ok(sname) = mem.read_cstr(strtab + u64::from(st_name), 512) else { continue };
                let kind = types.as_ref().and_then(|t| t.get(i)).map_or('?', |&b| b as char);
                symbols.push(ModuleSymbol {
                    address: value,
                    size,
                    kind,
                    name: String::from_utf8_lossy(&sname).into_owned(),
                });
            }
        }
        symbols.sort_by_key(|s| s.address);
        let btf = match (
            m.member("btf_data").and_then(|b| b.read_u64()),
            m.member("btf_data_size").and_then(|n| n.read_int()),
        ) {
            (Ok(at), Ok(len)) if at != 0 && len > 0 && len < 1 << 28 => Some((at, len as u32)),
            // Freed after loading; the BPF subsystem keeps its own copy.
            _ => self.registered_module_btf(m.address),
        };
        let sections = self.module_sections(m);
        Ok(Module { name, address: m.address, regions, text_end, sections, symbols, btf })
    }

    /// A module's loaded sections: `sect_attrs->attrs[i]` = { `battr.attr.name`, `address` }.
    fn module_sections(&self, m: crate::object::Object<'_>) -> Vec<(String, u64)> {
        let read = || -> Result<Vec<(String, u64)>, KernelError> {
            let attrs = m.member("sect_attrs")?.deref()?;
            let n = attrs.member("nsections")?.read_int()?.min(256);
            let list = attrs.member("attrs")?;
            let mut out = Vec::new();
            for i in 0..n {
                let a = list.index(i)?;
                let name = a.member("battr.attr.name")?.read_u64()?;
                let name = self
                    .memory()
                    .read_cstr(name, 64)
                    .map_err(|err| KernelError::Memory { what: "section name".into(), err })?;
                out.push((String::from_utf8_lossy(&name).into_owned(), a.member("address")?.read_u64()?));
            }
            Ok(out)
        };
        read().unwrap_or_default()
    }

    /// The copy of a module's BTF the BPF subsystem keeps: the `btf_modules` list of
    /// `struct btf_module { list, module, btf, ... }`, each `struct btf` with `data`/`data_size`.
    fn registered_module_btf(&self, module: u64) -> Option<(u64, u32)> {
        let head = self.symbol("btf_modules").ok()?;
        let list_off = self.offset_of("btf_module", "list").ok()?;
        let mut node = self.memory().read_u64(head).ok()?;
        let mut n = 0;
        while node != head && n < MAX_MODULES {
            let bm = self.object(node - list_off, "struct btf_module").ok()?;
            if bm.member("module").ok()?.read_u64().ok()? == module {
                let btf = bm.member("btf").ok()?.deref().ok()?;
                let at = btf.member("data").ok()?.read_u64().ok()?;
                let len = btf.member("data_size").ok()?.read_int().ok()?;
                return (at != 0 && len > 0 && len < 1 << 28).then_some((at, len as u32));
            }
            node = self.memory().read_u64(node).ok()?;
            n += 1;
        }
        None
    }

    /// A module's own types: its split BTF on top of the kernel's.
    pub fn module_btf(&self, name: &str) -> Result<std::sync::Arc<crate::btf::Btf<'static>>, KernelError> {
        let m = self
            .modules()?
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| KernelError::NoSymbol(format!("module {name} is not loaded")))?;
        let (at, len) =
            m.btf.ok_or_else(|| KernelError::ModuleTypes { module: name.to_string(), why: "has no BTF".into() })?;
        let bytes = self
            .memory()
            .read_vec(at, len as usize)
            .map_err(|err| KernelError::Memory { what: format!("BTF of module {name}"), err })?;
        let base = self.btf_arc()?.clone();
        crate::btf::Btf::parse_split(bytes, base)
            .map(std::sync::Arc::new)
            .map_err(|e| KernelError::ModuleTypes { module: name.to_string(), why: e.to_string() })
    }

    /// The kernel or module symbol an address falls in.
    pub fn lookup_address(&self, addr: u64) -> Option<crate::kallsyms::SymbolRef<'_>> {
        if let Ok(syms) = self.symbols()
            && let Some(s) = syms.lookup(addr)
        {
            return Some(s);
        }
        let mods = self.modules().ok()?;
        let m = mods.iter().find(|m| m.contains(addr) || m.lookup(addr).is_some_and(|s| addr < s.address + s.size))?;
        if let Some(s) = m.lookup(addr) {
            return Some(crate::kallsyms::SymbolRef {
                name: &s.name,
                address: s.address,
                kind: s.kind,
                size: Some(s.size),
                module: Some(&m.name),
            });
        }
        let (section, start) = m.section_of(addr)?;
        Some(crate::kallsyms::SymbolRef { name: section, address: start, kind: 'd', size: None, module: Some(&m.name) })
    }

    /// `name+0xoff/0xsize [module]` for any kernel or module address.
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        self.lookup_address(addr).map(|s| s.format(addr))
    }

    /// Every symbol of that name: the kernel's (listed, else found), else the modules' (reading the modules needs
    /// the types, so a kernel name does not pay for them): (address, type, module).
    pub fn find_symbols(&self, name: &str) -> Vec<(u64, char, Option<String>)> {
        let mut out: Vec<(u64, char, Option<String>)> = Vec::new();
        if let Ok(syms) = self.symbols() {
            out.extend(syms.find(name).iter().map(|s| (s.address, s.kind, None)));
        }
        if !out.is_empty() {
            return out;
        }
        // A data symbol kallsyms leaves out, found from BTF and code (its letter unknown).
        if let Some(a) = self.found_symbols().get(name) {
            return vec![(a, 'D', None)];
        }
        if let Ok(mods) = self.modules() {
            for m in mods {
                out.extend(
                    m.symbols.iter().filter(|s| s.name == name).map(|s| (s.address, s.kind, Some(m.name.clone()))),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_past_the_code_is_named_by_its_section_not_the_last_function() {
        let m = Module {
            name: "m".into(),
            address: 0,
            regions: vec![(0x1000, 0x3000)],
            text_end: Some(0x2000),
            sections: vec![(".text".into(), 0x1000), (".data".into(), 0x2140), (".bss".into(), 0x2580)],
            symbols: vec![ModuleSymbol { address: 0x1f00, size: 0x40, kind: 't', name: "last_fn".into() }],
            btf: None,
        };
        assert_eq!(m.lookup(0x1f10).unwrap().name, "last_fn");
        assert!(m.lookup(0x21e0).is_none());
        assert_eq!(m.section_of(0x21e0), Some((".data", 0x2140)));
        assert_eq!(m.section_of(0x2590), Some((".bss", 0x2580)));
        assert_eq!(m.section_of(0x4000), None);
    }

    fn sym(address: u64, size: u64, name: &str) -> ModuleSymbol {
        ModuleSymbol { address, size, kind: 'd', name: name.into() }
    }

    #[test]
    fn a_sized_symbol_wins_over_a_section_marker_at_its_address() {
        for order in [["__start_alloc_tags", "demo_zone"], ["demo_zone", "__start_alloc_tags"]] {
            let symbols = order
                .iter()
                .map(|&n| if n == "demo_zone" { sym(0x1000, 0x40, n) } else { sym(0x1000, 0, n) })
                .collect();
            let m = Module {
                name: "m".into(),
                address: 0,
                regions: vec![(0x1000, 0x2000)],
                text_end: None,
                sections: Vec::new(),
                symbols,
                btf: None,
            };
            assert_eq!(m.lookup(0x1000).unwrap().name, "demo_zone");
            assert_eq!(m.lookup(0x1020).unwrap().name, "demo_zone");
        }
    }
}
