//! `lockscope-kernel`: the kernel view, the third stage of the flow
//! (dump file → physical memory → **kernel view** → facts → diagnosis → report).
//!
//! Built on [`lockscope_dump::Dump`] (physical memory plus notes), it knows the kernel that was
//! running without any debuginfo: virtual-to-physical translation ([`arch`], [`memory`]),
//! symbols from the in-memory kallsyms tables ([`kallsyms`]), types from the in-memory BTF
//! blob ([`btf`]), and typed reads on top of them. Everything is loaded on first use, so a
//! command pays only for what it reads.

pub mod arch;
pub mod btf;
pub mod datasyms;
pub mod dwarf;
pub mod helpers;
pub mod kallsyms;
pub mod memory;
pub mod modules;
pub mod object;
pub mod printk;
pub mod sysmap;
pub mod tasks;
pub mod unwind;
pub mod validate;

use kallsyms::{Symbols, Tables};
use lockscope_dump::{Dump, VmcoreInfo};
pub use memory::{KernelMemory, MemError, MemErrorKind};
use std::sync::OnceLock;

/// Why the kernel view cannot be built, or a part of it.
#[derive(Debug)]
pub enum KernelError {
    /// The dump carries no VMCOREINFO note (QEMU without `-device vmcoreinfo`).
    NoVmcoreInfo,
    /// VMCOREINFO lacks a key this needs.
    MissingInfo(std::borrow::Cow<'static, str>),
    UnsupportedArch(String),
    /// The kernel's symbol table could not be loaded (from the dump or the files given).
    Kallsyms(String),
    /// A symbol the kernel should have is not there.
    NoSymbol(String),
    /// The kernel's types could not be loaded: no BTF in the dump and no usable `--vmlinux`.
    NoTypes(String),
    /// A type, member or operation a read needs does not fit the kernel's types.
    Type {
        what: String,
        /// The object it was applied to.
        at: Option<u64>,
        why: TypeProblem,
    },
    /// A global variable whose type the kernel's types do not give.
    UntypedGlobal(String),
    /// The module list could not be read.
    Modules(String),
    /// A module's own types are missing or unreadable.
    ModuleTypes {
        module: String,
        why: String,
    },
    Memory {
        what: String,
        err: MemError,
    },
    /// The dump holds no usable registers for a CPU.
    NoRegisters {
        cpu: u32,
        why: &'static str,
    },
    /// No task has that pid.
    NoTask(u32),
    /// A number read from the dump (VMCOREINFO, a count or length in kernel memory) is
    /// impossible: damage, or a tool that edited the dump wrongly.
    BadValue {
        key: String,
        value: u64,
        why: &'static str,
    },
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelError::NoVmcoreInfo => f.write_str(
                "the dump has no VMCOREINFO note (a QEMU dump without -device vmcoreinfo?) and no VMCOREINFO page was found in its memory: the kernel's symbols and page tables cannot be located",
            ),
            KernelError::MissingInfo(k) => write!(f, "VMCOREINFO lacks {k}"),
            KernelError::UnsupportedArch(a) => write!(f, "kernel view not supported yet for {a} dumps"),
            KernelError::Kallsyms(e) => f.write_str(e),
            KernelError::NoSymbol(s) => write!(f, "no symbol {s} in the kernel"),
            KernelError::NoTypes(e) => write!(f, "BTF: {e}"),
            KernelError::Type { what, at, why } => {
                write!(f, "{what}: {why}")?;
                match at {
                    Some(a) => write!(f, " (object at {a:#x})"),
                    None => Ok(()),
                }
            }
            KernelError::UntypedGlobal(name) => {
                write!(f, "the type of {name} is not known (BTF has no VAR for it)")
            }
            KernelError::Modules(e) => write!(f, "modules: {e}"),
            KernelError::ModuleTypes { module, why } => write!(f, "module {module}: {why}"),
            KernelError::Memory { what, err } => write!(f, "{what}: {err}"),
            KernelError::NoRegisters { cpu, why } => write!(f, "no registers for CPU {cpu}: {why}"),
            KernelError::NoTask(pid) => write!(f, "no task with pid {pid}"),
            KernelError::BadValue { key, value, why } => {
                write!(f, "damaged dump: {key} = {value} ({value:#x}) {why}")
            }
        }
    }
}

impl std::error::Error for KernelError {}

/// What is wrong with a type for the read asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeProblem {
    /// The type information itself says no (no such type or member, bad path, no size).
    Btf(btf::TypeError),
    /// A pointer type was asked for by name (pointers are reached through members).
    PointerByName,
    /// Dereferencing something that is not a pointer.
    NotPointer,
    /// Indexing something that is not an array (or pointer).
    NotArray,
    /// Reading as an integer something that is not one of 1 to 8 bytes.
    NotInteger { size: u64 },
}

impl std::fmt::Display for TypeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeProblem::Btf(e) => write!(f, "{e}"),
            TypeProblem::PointerByName => f.write_str("pointer types are reached through members, not by name"),
            TypeProblem::NotPointer => f.write_str("dereference of a non-pointer"),
            TypeProblem::NotArray => f.write_str("indexing a non-array"),
            TypeProblem::NotInteger { size } => write!(f, "not an integer of 1-8 bytes ({size})"),
        }
    }
}

/// Debuginfo given by the user, for kernels whose dump alone is not enough (no BTF, no
/// kallsyms in VMCOREINFO before 6.0).
#[derive(Clone, Debug, Default)]
pub struct KernelOptions {
    /// A vmlinux with DWARF (`/usr/lib/debug/boot/vmlinux-*`): symbols and types.
    pub vmlinux: Option<std::path::PathBuf>,
    /// A System.map: symbols only.
    pub system_map: Option<std::path::PathBuf>,
    /// Unwind by the vmlinux's DWARF CFI before the dump's ORC tables (a second opinion on
    /// ORC; without it CFI serves only where ORC has nothing).
    pub dwarf_unwind_first: bool,
}

/// The kernel of a dump.
pub struct Kernel {
    mem: KernelMemory,
    arch: std::sync::Arc<dyn arch::Architecture>,
    info: VmcoreInfo,
    options: KernelOptions,
    symbols: OnceLock<Result<Symbols, String>>,
    btf: OnceLock<Result<std::sync::Arc<btf::Btf<'static>>, String>>,
    modules: OnceLock<Result<Vec<modules::Module>, String>>,
    task_states: OnceLock<helpers::sched::TaskStates>,
    /// The task list once read whole (the tasks, the addresses that did not read): a dump
    /// does not change, and several facts walk it.
    task_list: OnceLock<(Vec<tasks::Task>, Vec<u64>)>,
    /// The vmlinux's `.debug_frame` and the KASLR shift to its link addresses.
    cfi: OnceLock<Option<(dwarf::cfi::CallFrameInfo, u64)>>,
    /// Data symbols found from BTF and code when kallsyms lists code only.
    found: OnceLock<datasyms::FoundSymbols>,
    /// Every damaged structure met so far, once each.
    damage: std::sync::Mutex<Vec<helpers::Damage>>,
}

impl Kernel {
    /// Sets up address translation from VMCOREINFO. Cheap: symbols and types load on use.
    pub fn new(dump: Dump) -> Result<Kernel, KernelError> {
        Kernel::with_options(dump, KernelOptions::default())
    }

    /// As [`Kernel::new`], with debuginfo files to use where the dump lacks something.
    pub fn with_options(dump: Dump, options: KernelOptions) -> Result<Kernel, KernelError> {
        // A note whose text is gone (zeroed, cut) is no VMCOREINFO: look in memory then too.
        let usable = |v: &VmcoreInfo| v.symbol("_stext").is_some() && v.page_size().is_some();
        let info = match dump.vmcoreinfo() {
            Some(v) if usable(v) => v.clone(),
            noted => match vmcoreinfo_in_memory(&dump) {
                Some(found) => found,
                None => noted.cloned().ok_or(KernelError::NoVmcoreInfo)?,
            },
        };
        let arch = arch::for_dump(&dump, &info)?;
        Ok(Kernel {
            mem: KernelMemory::new(dump, arch.clone()),
            arch,
            info,
            options,
            symbols: OnceLock::new(),
            btf: OnceLock::new(),
            modules: OnceLock::new(),
            task_states: OnceLock::new(),
            task_list: OnceLock::new(),
            cfi: OnceLock::new(),
            found: OnceLock::new(),
            damage: Default::default(),
        })
    }

    pub fn memory(&self) -> &KernelMemory {
        &self.mem
    }

    /// The dump's architecture: registers, stacks, unwinding.
    pub fn arch(&self) -> &dyn arch::Architecture {
        self.arch.as_ref()
    }

    pub fn dump(&self) -> &Dump {
        self.mem.dump()
    }

    pub fn vmcoreinfo(&self) -> &VmcoreInfo {
        &self.info
    }

    pub fn options(&self) -> &KernelOptions {
        &self.options
    }

    /// The damaged structures met so far (list walks that broke, trees with bad nodes), each
    /// once: what a command reports next to the facts that stand on them.
    pub fn damage(&self) -> Vec<helpers::Damage> {
        self.damage.lock().map(|d| d.clone()).unwrap_or_default()
    }

    pub(crate) fn record_damage(&self, d: helpers::Damage) {
        if let Ok(mut all) = self.damage.lock()
            && !all.contains(&d)
        {
            all.push(d);
        }
    }

    /// Task state letters, from the kernel's own table when the dump has it.
    pub fn task_states(&self) -> &helpers::sched::TaskStates {
        self.task_states.get_or_init(|| self.read_task_states())
    }

    pub(crate) fn modules_cache(&self) -> &OnceLock<Result<Vec<modules::Module>, String>> {
        &self.modules
    }

    /// The kernel's symbol table (decoded on first use).
    pub fn symbols(&self) -> Result<&Symbols, KernelError> {
        self.symbols
            .get_or_init(|| {
                // kallsyms from memory when VMCOREINFO locates them, else the vmlinux's symbol
                // table, else the System.map (both checked against the dump first).
                let in_memory = Tables::from_vmcoreinfo(&self.info)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Symbols::load(&self.mem, &t).map_err(|e| e.to_string()));
                match in_memory {
                    // kallsyms of code only (no CONFIG_KALLSYMS_ALL): the user's files, checked
                    // against the dump, name the data too.
                    Ok(s) if s.address_of("init_task").is_none() && self.has_symbol_files() => {
                        Ok(match self.symbols_from_files() {
                            Ok(files) => files_fill_in(kallsyms_of(&s), &files),
                            Err(_) => s,
                        })
                    }
                    Ok(s) => Ok(s),
                    Err(e) if self.options.vmlinux.is_none() && self.options.system_map.is_none() => Err(e),
                    Err(e) => self.symbols_from_files().map_err(|f| format!("{f} (and from the dump: {e})")),
                }
            })
            .as_ref()
            .map_err(|e| KernelError::Kallsyms(e.clone()))
    }

    /// The kernel's types (on first use): with `--vmlinux`, its DWARF converted to BTF (which
    /// also types every global variable); else the dump's own BTF, read from
    /// `__start_BTF`..`__stop_BTF`. A vmlinux without DWARF falls back to the dump's BTF; a
    /// vmlinux of another build is refused.
    pub fn btf(&self) -> Result<&btf::Btf<'static>, KernelError> {
        self.btf_arc().map(|b| &**b)
    }

    /// The kernel's BTF as the base that module (split) BTF builds on.
    pub fn btf_arc(&self) -> Result<&std::sync::Arc<btf::Btf<'static>>, KernelError> {
        self.btf
            .get_or_init(|| {
                let Some(path) = &self.options.vmlinux else {
                    return self.btf_from_dump().map(std::sync::Arc::new).map_err(|e| match e.contains("--vmlinux") {
                        true => e,
                        false => format!("{e}; give --vmlinux FILE (with DWARF) for this kernel"),
                    });
                };
                match self.btf_from_vmlinux(path)? {
                    Some(b) => Ok(b),
                    None => self
                        .btf_from_dump()
                        .map_err(|e| format!("{}: no DWARF debuginfo, and the dump: {e}", path.display())),
                }
                .map(std::sync::Arc::new)
            })
            .as_ref()
            .map_err(|e| KernelError::NoTypes(e.clone()))
    }

    /// Address of a kernel symbol: VMCOREINFO first (no decoding needed), then kallsyms, then
    /// the data symbols found from BTF and code when kallsyms lists code only.
    pub fn symbol(&self, name: &str) -> Result<u64, KernelError> {
        match self.listed_symbol(name) {
            Err(KernelError::NoSymbol(_)) => {
                self.found_symbols().get(name).ok_or_else(|| KernelError::NoSymbol(name.to_string()))
            }
            other => other,
        }
    }

    /// Address of a symbol VMCOREINFO or kallsyms lists (what finding the others stands on).
    pub(crate) fn listed_symbol(&self, name: &str) -> Result<u64, KernelError> {
        if let Some(a) = self.info.symbol(name) {
            return Ok(a);
        }
        self.symbols()?.address_of(name).ok_or_else(|| KernelError::NoSymbol(name.to_string()))
    }

    /// Reads a u64 at a symbol's address.
    pub fn read_symbol_u64(&self, name: &str) -> Result<u64, KernelError> {
        let a = self.symbol(name)?;
        self.mem.read_u64(a).map_err(|err| KernelError::Memory { what: name.to_string(), err })
    }
}

fn kallsyms_of(s: &Symbols) -> Vec<(u64, char, String)> {
    s.iter().map(|(a, k, n)| (a, k, n.to_string())).collect()
}

/// kallsyms' own entries, and the names a symbol file has that kallsyms lacks (its data
/// symbols when the kernel has no `CONFIG_KALLSYMS_ALL`).
fn files_fill_in(mut entries: Vec<(u64, char, String)>, files: &Symbols) -> Symbols {
    let known: std::collections::HashSet<String> = entries.iter().map(|e| e.2.clone()).collect();
    entries.extend(files.iter().filter(|(_, _, n)| !known.contains(*n)).map(|(a, k, n)| (a, k, n.to_string())));
    Symbols::from_entries(entries)
}

/// Private helpers of the debuginfo path (`--vmlinux`, `--system-map`).
impl Kernel {
    /// Bytes of the dump at a kernel virtual address, if readable.
    fn read_bytes(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        self.mem.read_vec(address, len).ok()
    }

    /// Opens the user's vmlinux and refuses it when it is not the dump's build.
    pub(crate) fn open_vmlinux(&self, path: &std::path::Path) -> Result<dwarf::Vmlinux, String> {
        let vm = dwarf::Vmlinux::open(path).map_err(|e| e.to_string())?;
        vm.check_against(&self.info, &|a, l| self.read_bytes(a, l)).map_err(|e| e.to_string())?;
        Ok(vm)
    }

    fn has_symbol_files(&self) -> bool {
        self.options.vmlinux.is_some() || self.options.system_map.is_some()
    }

    /// Symbols from the vmlinux's symbol table, else from the System.map, at run-time addresses.
    fn symbols_from_files(&self) -> Result<Symbols, String> {
        let read = |a, l| self.read_bytes(a, l);
        let mut why = String::new();
        if let Some(path) = &self.options.vmlinux {
            let vm = self.open_vmlinux(path)?;
            let entries = vm.symbols().map_err(|e| e.to_string())?;
            if !entries.is_empty() {
                let shift = sysmap::check(&entries, &self.info, &read).map_err(|(ours, theirs)| {
                    format!(
                        "{} is not the kernel of this dump: the vmlinux has {ours}, the dump has {theirs}",
                        path.display()
                    )
                })?;
                return Ok(Symbols::from_entries(sysmap::relocate(entries, shift)));
            }
            why = format!("{}: no symbol table (stripped)", path.display());
        }
        if let Some(path) = &self.options.system_map {
            let entries = sysmap::load(path).map_err(|e| e.to_string())?;
            let shift = sysmap::check(&entries, &self.info, &read).map_err(|(ours, theirs)| {
                format!(
                    "{} is not the System.map of this dump's kernel: it has {ours}, the dump has {theirs}",
                    path.display()
                )
            })?;
            return Ok(Symbols::from_entries(sysmap::relocate(entries, shift)));
        }
        Err(why)
    }

    /// The vmlinux's call frame information and the run-time minus link-time shift, when a
    /// `--vmlinux` of this build with `.debug_frame` was given.
    pub fn call_frame_info(&self) -> Option<&(dwarf::cfi::CallFrameInfo, u64)> {
        self.cfi
            .get_or_init(|| {
                let vm = self.open_vmlinux(self.options.vmlinux.as_ref()?).ok()?;
                let shift = sysmap::kaslr_offset(vm.symbol("_stext"), &self.info).ok()?;
                let cfi = vm.call_frame_info().ok().filter(|c| !c.is_empty())?;
                Some((cfi, shift))
            })
            .as_ref()
    }

    /// The vmlinux's DWARF as BTF; `None` when the file has no DWARF.
    fn btf_from_vmlinux(&self, path: &std::path::Path) -> Result<Option<btf::Btf<'static>>, String> {
        let vm = self.open_vmlinux(path)?;
        if !vm.has_dwarf() {
            return Ok(None);
        }
        vm.btf().map(Some).map_err(|e| e.to_string())
    }

    /// The BTF blob in the dump, between `__start_BTF` and `__stop_BTF`.
    fn btf_from_dump(&self) -> Result<btf::Btf<'static>, String> {
        let (start, stop) = match (self.listed_symbol("__start_BTF"), self.listed_symbol("__stop_BTF")) {
            (Ok(start), Ok(stop)) => (start, stop),
            (Err(e), _) | (_, Err(e)) => {
                self.btf_in_image().ok_or_else(|| format!("{e}, and no BTF header after the kernel's text"))?
            }
        };
        let len = stop.checked_sub(start).filter(|&l| l > 0 && l < 1 << 28).ok_or_else(|| {
            format!(
                "__start_BTF {start:#x} .. __stop_BTF {stop:#x} is not a plausible blob (kernel built without BTF?)"
            )
        })?;
        let bytes =
            self.mem.read_vec(start, len as usize).map_err(|e| format!("the BTF blob is not in the dump: {e}"))?;
        btf::Btf::parse(bytes).map_err(|e| e.to_string())
    }
}

impl Kernel {
    /// Where the BTF blob lies when kallsyms does not list `__start_BTF` (no
    /// `CONFIG_KALLSYMS_ALL`): the first BTF header (magic 0xeb9f, version 1, a 24-byte header,
    /// types first) in the read-only data after the kernel's text.
    fn btf_in_image(&self) -> Option<(u64, u64)> {
        const CHUNK: u64 = 1 << 20;
        const HEADER: [u8; 8] = [0x9f, 0xeb, 1, 0, 0x18, 0, 0, 0];
        // `_etext` where kallsyms keeps it (init text, also listed, lies beyond the data).
        let text_end = match self.listed_symbol("_etext") {
            Ok(e) => e,
            Err(_) => self.symbols().ok()?.iter().filter(|s| matches!(s.1, 't' | 'T')).map(|s| s.0).max()?,
        };
        let mut at = text_end & !0xfff;
        for _ in 0..96 {
            let Ok(chunk) = self.mem.read_vec(at, CHUNK as usize + 32) else {
                at += CHUNK;
                continue;
            };
            for pos in memchr::memmem::find_iter(&chunk[..CHUNK as usize + 8], &HEADER) {
                let w = |i: usize| u32::from_le_bytes(chunk[pos + i..pos + i + 4].try_into().unwrap_or_default());
                let (type_off, type_len, str_off, str_len) = (w(8), w(12), w(16), w(20));
                if type_off == 0 && str_off == type_len && type_len > 0 && str_len > 0 && str_len < 1 << 26 {
                    let start = at + pos as u64;
                    return Some((start, start + 24 + u64::from(type_len) + u64::from(str_len)));
                }
            }
            at += CHUNK;
        }
        None
    }
}

/// The kernel writes its VMCOREINFO text at boot into a page of its own (`vmcoreinfo_data`),
/// whether or not the dumper copied it into a note: a QEMU dump taken without `-device
/// vmcoreinfo` still holds it. Look for it at page starts.
fn vmcoreinfo_in_memory(dump: &Dump) -> Option<VmcoreInfo> {
    let page = dump.metadata().page_size.max(4096);
    let mut head = [0u8; 16];
    for r in dump.memory_ranges() {
        let mut p = r.start.next_multiple_of(page);
        while p + page <= r.end {
            if dump.read_phys(p, &mut head).is_ok() && head.starts_with(b"OSRELEASE=") {
                let mut buf = vec![0u8; page as usize];
                if dump.read_phys(p, &mut buf).is_ok() {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    let info = VmcoreInfo::parse(&buf[..end]);
                    if info.symbol("_stext").is_some() && info.page_size().is_some() {
                        return Some(info);
                    }
                }
            }
            p += page;
        }
    }
    None
}
