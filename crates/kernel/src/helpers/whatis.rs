//! What an address belongs to, as crash's `kmem ADDR` and drgn's `slab_object_info` tell it:
//! a global (`symbol+off`), one CPU's copy of a per-CPU variable, or an object of a slab
//! cache (its cache name, the object's start and size). The page of a direct-map address
//! is found through `vmemmap`; whether it is a slab page, from `PG_slab` (its bit read from
//! BTF's `enum pageflags`); its cache from `struct slab` (5.17 and later) or `struct page`.

use crate::{Kernel, KernelError};

/// x86_64's `vmemmap` without KASLR of the memory layout (`VMEMMAP_START`).
const X86_VMEMMAP_DEFAULT: u64 = 0xffff_ea00_0000_0000;
const PAGE_SHIFT: u64 = 12;
/// Structures a member path stops at: a lock is named, not its words.
const LOCK_TYPES: &[&str] = &[
    "spinlock",
    "raw_spinlock",
    "qspinlock",
    "qrwlock",
    "rw_semaphore",
    "percpu_rw_semaphore",
    "mutex",
    "semaphore",
    "rt_mutex_base",
    "seqcount",
    "seqcount_spinlock",
    "wait_queue_head",
    "completion",
];

/// An object of a slab cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabObject {
    /// The cache's name (`kmalloc-64`, `task_struct`).
    pub cache: String,
    /// Where the object containing the address starts, and its size in the cache.
    pub object: u64,
    pub size: u64,
    /// The address's offset in the object.
    pub offset: u64,
}

/// What an address is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressOwner {
    /// A global or module variable: `name+0xoff [module]`.
    Symbol(String),
    /// CPU `cpu`'s copy of a per-CPU variable: `name+0xoff`.
    PerCpu {
        cpu: u32,
        name: String,
    },
    Slab(SlabObject),
    /// A member of a structure allocated at boot (`NODE_DATA(0).node_zones[1].lock`).
    Member(String),
    /// A word of a task's kernel stack (a completion or a waiter the task put there).
    Stack {
        pid: u32,
        comm: String,
        offset: u64,
    },
}

impl std::fmt::Display for AddressOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressOwner::Symbol(s) => f.write_str(s),
            AddressOwner::PerCpu { cpu, name } => write!(f, "per-CPU {name} of CPU {cpu}"),
            AddressOwner::Slab(o) => {
                write!(f, "+{:#x} in a {} object at {:#x} ({} bytes)", o.offset, o.cache, o.object, o.size)
            }
            AddressOwner::Member(m) => f.write_str(m),
            AddressOwner::Stack { pid, comm, offset } => write!(f, "on the stack of {comm}:{pid} (+{offset:#x})"),
        }
    }
}

impl Kernel {
    /// What `address` belongs to, when anything known covers it.
    pub fn whatis(&self, address: u64) -> Option<AddressOwner> {
        // Per-CPU symbols are offsets (x86_64): the nearest below a direct-map address.
        let per_cpu_end = self.symbol("__per_cpu_end").unwrap_or(0);
        let covers = |s: &&crate::kallsyms::SymbolRef<'_>| {
            s.address > per_cpu_end && s.size.is_none_or(|n| address < s.address + n)
        };
        if let Some(s) = self.lookup_address(address).as_ref().filter(covers) {
            let mut n = format!("{}+{:#x}", s.name, address - s.address);
            if let Some(m) = s.module {
                n.push_str(&format!(" [{m}]"));
            }
            let ty = self.global(s.name).ok().map(|g| g.type_id());
            if let Some(member) = ty.and_then(|ty| self.member_named(s.name, ty, s.address, address)) {
                n.push_str(&format!(": {member}"));
            }
            return Some(AddressOwner::Symbol(n));
        }
        if let Some(p) = self.per_cpu_owner(address) {
            return Some(p);
        }
        if let Some(n) = self.node_data_owner(address) {
            return Some(AddressOwner::Member(n));
        }
        if let Some(s) = self.slab_object(address).ok().flatten() {
            return Some(AddressOwner::Slab(s));
        }
        self.stack_owner(address)
    }

    /// The task whose kernel stack holds `address`.
    fn stack_owner(&self, address: u64) -> Option<AddressOwner> {
        let size = self.thread_size()?;
        let (tasks, _) = self.tasks().ok()?;
        let t = tasks.iter().find(|t| t.stack != 0 && address >= t.stack && address < t.stack + size)?;
        Some(AddressOwner::Stack { pid: t.pid, comm: t.comm.clone(), offset: address - t.stack })
    }

    /// The member of a typed global an address falls in (`contig_page_data.node_zones[1].lock`),
    /// with the name of the innermost structure that has one (a `struct zone`'s `name`:
    /// `zone DMA32`).
    fn member_named(&self, name: &str, ty: crate::btf::TypeId, start: u64, address: u64) -> Option<String> {
        let btf = self.btf().ok()?;
        let (path, passed) = btf.path_at(ty, address - start, &|name| LOCK_TYPES.contains(&name));
        if path.is_empty() {
            return None;
        }
        let mut out = format!("{name}.{path}");
        for &(ty, off) in passed.iter().rev() {
            let Ok(m) = btf.member(ty, "name") else { continue };
            let Ok(o) = self.object_typed(start + off + m.byte_offset(), m.ty) else { continue };
            if let Ok(text) = o.deref().and_then(|p| p.read_string(32)).or_else(|_| o.read_string(32))
                && !text.is_empty()
                && text.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
            {
                let kind = btf.resolved(ty).map(|t| t.name().to_string()).unwrap_or_default();
                out.push_str(&format!(" ({kind} {})", String::from_utf8_lossy(&text)));
                break;
            }
        }
        Some(out)
    }

    /// A member of a NUMA node's `pglist_data` (`NODE_DATA(0).node_zones[1].lock (zone
    /// DMA32)`): allocated at boot, neither a global nor a slab object.
    fn node_data_owner(&self, address: u64) -> Option<String> {
        let table = self.symbol("node_data").ok()?;
        let ty = self.type_named("struct pglist_data").ok()?;
        let size = self.size_of("struct pglist_data").ok()?;
        for node in 0..1024u64 {
            let nd = self.memory().read_u64(table + node * 8).ok()?;
            if nd == 0 {
                break;
            }
            if (nd..nd + size).contains(&address) {
                return self.member_named(&format!("NODE_DATA({node})"), ty, nd, address);
            }
        }
        None
    }

    /// The per-CPU variable and CPU whose copy holds `address`.
    fn per_cpu_owner(&self, address: u64) -> Option<AddressOwner> {
        let (start, end) = (self.symbol("__per_cpu_start").ok()?, self.symbol("__per_cpu_end").ok()?);
        for cpu in self.cpus().ok()?.iter().map(|c| c.cpu) {
            let off = address.wrapping_sub(self.per_cpu_offset(cpu).ok()?);
            if (start..end).contains(&off) {
                let s = self.symbols().ok()?.lookup_per_cpu(off)?;
                return Some(AddressOwner::PerCpu { cpu, name: format!("{}+{:#x}", s.name, off - s.address) });
            }
        }
        None
    }

    /// The `struct page` of the page holding a mapped kernel address.
    pub fn page_of(&self, address: u64) -> Result<u64, KernelError> {
        let phys = self
            .memory()
            .translate(address)
            .map_err(|err| KernelError::Memory { what: format!("the page of {address:#x}"), err })?;
        Ok(self.vmemmap()? + (phys >> PAGE_SHIFT) * self.size_of("page")?)
    }

    /// The slab object holding `address`: None when its page is not a slab page.
    pub fn slab_object(&self, address: u64) -> Result<Option<SlabObject>, KernelError> {
        let page = self.page_of(address)?;
        let head = self.compound_head(page)?;
        let btf = self.btf()?;
        let Some((_, pg_slab)) = btf.find_enumerator("PG_slab") else { return Ok(None) };
        let flags = self.object(head, "struct page")?.member("flags")?.read_u64()?;
        if flags & (1 << pg_slab.raw) == 0 {
            return Ok(None);
        }
        // 5.17 and later: `struct slab` overlays the page; before, the page itself.
        let holder = if btf.lookup("struct slab").is_ok() { "struct slab" } else { "struct page" };
        let cache = self.object(head, holder)?.member("slab_cache")?.deref()?;
        let name = cache.member("name")?.deref()?.read_string(64)?;
        let size = cache.member("size")?.read_int()?;
        let red_left = cache.member("red_left_pad").and_then(|o| o.read_int()).unwrap_or(0);
        let base = self.page_address(head)?;
        if size == 0 || address < base {
            return Ok(None);
        }
        let object = base + (address - base) / size * size + red_left;
        let offset = address.wrapping_sub(object);
        Ok(Some(SlabObject { cache: String::from_utf8_lossy(&name).into_owned(), object, size, offset }))
    }

    /// The head page of a compound page (a tail page's `compound_head` has bit 0 set).
    fn compound_head(&self, page: u64) -> Result<u64, KernelError> {
        let word = self.object(page, "struct page")?.member("compound_head")?.read_u64()?;
        Ok(if word & 1 == 1 { word - 1 } else { page })
    }

    /// The direct-map address of a page (`page_offset_base` + its physical address).
    fn page_address(&self, page: u64) -> Result<u64, KernelError> {
        let pfn = (page - self.vmemmap()?) / self.size_of("page")?;
        Ok(self.read_global_u64("page_offset_base")? + (pfn << PAGE_SHIFT))
    }

    /// Where the `struct page` array starts: `vmemmap_base` (randomized with KASLR), else
    /// the fixed `VMEMMAP_START`.
    fn vmemmap(&self) -> Result<u64, KernelError> {
        match self.symbol("vmemmap_base") {
            Ok(_) => self.read_global_u64("vmemmap_base"),
            Err(_) => Ok(X86_VMEMMAP_DEFAULT),
        }
    }

    fn read_global_u64(&self, name: &str) -> Result<u64, KernelError> {
        let at = self.symbol(name)?;
        self.memory().read_u64(at).map_err(|err| KernelError::Memory { what: name.into(), err })
    }
}
