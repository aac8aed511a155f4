//! Typed reads in the spirit of drgn's `Object`: an address plus a BTF type, with member
//! access by path, pointer dereference, per-CPU instances and `container_of`.
//!
//! ```no_run
//! # fn f(k: &lockscope_kernel::Kernel) -> Result<(), lockscope_kernel::KernelError> {
//! let clock = k.global("runqueues")?.per_cpu(3)?.member("clock")?.read_u64()?;
//! # Ok(()) }
//! ```

use crate::btf::{Btf, Kind, TypeId};
use crate::{Kernel, KernelError, TypeProblem};

/// Globals whose type BTF does not record (BTF has VAR entries for per-CPU variables only):
/// the types they are known to have.
const KNOWN_GLOBALS: &[(&str, &str)] = &[
    ("init_task", "struct task_struct"),
    ("init_uts_ns", "struct uts_namespace"),
    ("jiffies_64", "u64"),
    ("jiffies", "long unsigned int"),
    ("nr_cpu_ids", "unsigned int"),
    ("__cpu_online_mask", "struct cpumask"),
    ("__cpu_possible_mask", "struct cpumask"),
    ("__cpu_present_mask", "struct cpumask"),
    ("__cpu_active_mask", "struct cpumask"),
    ("modules", "struct list_head"),
    ("avenrun", "long unsigned int [3]"),
    ("panic_cpu", "atomic_t"),
    ("rcu_state", "struct rcu_state"),
    ("tainted_mask", "long unsigned int"),
    ("totalram_pages", "atomic_long_t"),
    ("init_pid_ns", "struct pid_namespace"),
    ("shadow_timekeeper", "struct timekeeper"),
    ("contig_page_data", "struct pglist_data"),
];

/// A typed value in kernel memory.
#[derive(Clone, Copy)]
pub struct Object<'k> {
    k: &'k Kernel,
    /// The kernel's BTF, or a module's split BTF for module types.
    btf: &'k Btf<'static>,
    pub address: u64,
    pub ty: TypeId,
    /// For a bitfield member: (bit offset within the byte at `address`, width).
    bitfield: Option<(u8, u8)>,
}

impl std::fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Object({:#x}, type {})", self.address, self.ty.0)
    }
}

fn type_err(what: &str, e: crate::btf::TypeError) -> KernelError {
    KernelError::Type { what: what.to_string(), at: None, why: TypeProblem::Btf(e) }
}

impl Kernel {
    /// An object of a type, at an address.
    pub fn object(&self, address: u64, c_type: &str) -> Result<Object<'_>, KernelError> {
        let ty = self.type_named(c_type)?;
        Ok(Object { k: self, btf: self.btf()?, address, ty, bitfield: None })
    }

    /// An object of a type known by its ID in the kernel's BTF.
    pub fn object_typed(&self, address: u64, ty: TypeId) -> Result<Object<'_>, KernelError> {
        Ok(Object { k: self, btf: self.btf()?, address, ty, bitfield: None })
    }

    /// A type by its C name (`struct rq`, `task_struct`, `unsigned long [3]`, `char *`).
    pub fn type_named(&self, c_type: &str) -> Result<TypeId, KernelError> {
        let btf = self.btf()?;
        let t = c_type.trim();
        if t.ends_with('*') {
            return Err(KernelError::Type { what: t.to_string(), at: None, why: TypeProblem::PointerByName });
        }
        if let Some(open) = t.rfind('[')
            && t.ends_with(']')
        {
            // Arrays: the element type is enough for reading; the count is the caller's.
            return self.type_named(&t[..open]);
        }
        btf.lookup(t).map_err(|e| type_err(t, e))
    }

    /// A global variable, typed from BTF (per-CPU variables) or from the table of known globals.
    pub fn global(&self, name: &str) -> Result<Object<'_>, KernelError> {
        let address = self.symbol(name)?;
        let btf = self.btf()?;
        let ty = match btf.find_var(name) {
            Some(v) => v.ty,
            None => match KNOWN_GLOBALS.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => self.type_named(t)?,
                None => {
                    return Err(KernelError::UntypedGlobal(name.to_string()));
                }
            },
        };
        Ok(Object { k: self, btf, address, ty, bitfield: None })
    }

    /// An object of a type found in `btf` (a module's split BTF, from [`Kernel::module_btf`]).
    pub fn object_in<'k>(
        &'k self,
        btf: &'k Btf<'static>,
        address: u64,
        c_type: &str,
    ) -> Result<Object<'k>, KernelError> {
        let ty = btf.lookup(c_type.trim()).map_err(|e| type_err(c_type, e))?;
        Ok(Object { k: self, btf, address, ty, bitfield: None })
    }

    /// Byte offset of a member path in a type (`task_struct`, `se.sum_exec_runtime`).
    pub fn offset_of(&self, c_type: &str, path: &str) -> Result<u64, KernelError> {
        let btf = self.btf()?;
        btf.member_of(c_type, path).map(|m| m.byte_offset()).map_err(|e| type_err(&format!("{c_type}.{path}"), e))
    }

    /// Size of a type in bytes.
    pub fn size_of(&self, c_type: &str) -> Result<u64, KernelError> {
        let id = self.type_named(c_type)?;
        self.btf()?.size_of(id).map_err(|e| type_err(c_type, e))
    }
}

impl<'k> Object<'k> {
    pub fn kernel(&self) -> &'k Kernel {
        self.k
    }

    /// The BTF the object's type belongs to.
    pub fn types(&self) -> &'k Btf<'static> {
        self.btf
    }

    fn btf(&self) -> &'k Btf<'static> {
        self.btf
    }

    fn err(&self, what: &str, why: TypeProblem) -> KernelError {
        KernelError::Type { what: what.to_string(), at: Some(self.address), why }
    }

    fn btf_err(&self, what: &str, e: crate::btf::TypeError) -> KernelError {
        self.err(what, TypeProblem::Btf(e))
    }

    /// Its type, in the BTF it was found in.
    pub fn type_id(&self) -> TypeId {
        self.ty
    }

    /// The member at a dotted path (`se.sum_exec_runtime`, `lock.rlock.raw_lock`, `a[2].b`).
    pub fn member(&self, path: &str) -> Result<Object<'k>, KernelError> {
        let m = self.btf().member(self.ty, path).map_err(|e| self.btf_err(path, e))?;
        let address = self.address + m.byte_offset();
        let bitfield = m.bitfield_size.map(|w| ((m.bit_offset % 8) as u8, w));
        Ok(Object { k: self.k, btf: self.btf, address, ty: m.ty, bitfield })
    }

    /// The same object's instance on a CPU (per-CPU variables hold zero-based offsets).
    pub fn per_cpu(&self, cpu: u32) -> Result<Object<'k>, KernelError> {
        let off = self.k.per_cpu_offset(cpu)?;
        Ok(Object { address: self.address.wrapping_add(off), ..*self })
    }

    /// The pointed-to object.
    pub fn deref(&self) -> Result<Object<'k>, KernelError> {
        let btf = self.btf();
        let t = btf.resolved(self.ty).map_err(|e| self.btf_err("type", e))?;
        if t.kind() != Kind::Ptr {
            return Err(self.err("*", TypeProblem::NotPointer));
        }
        let target = t.target().unwrap_or(TypeId::VOID);
        let address = self.read_u64()?;
        Ok(Object { k: self.k, btf: self.btf, address, ty: target, bitfield: None })
    }

    /// Reinterprets the object as another type.
    pub fn cast(&self, c_type: &str) -> Result<Object<'k>, KernelError> {
        Ok(Object {
            k: self.k,
            btf: self.k.btf()?,
            address: self.address,
            ty: self.k.type_named(c_type)?,
            bitfield: None,
        })
    }

    /// The structure of `c_type` that holds this object as its member `path`.
    pub fn container_of(&self, c_type: &str, path: &str) -> Result<Object<'k>, KernelError> {
        let off = self.k.offset_of(c_type, path)?;
        self.k.object(self.address.wrapping_sub(off), c_type)
    }

    /// Element `i` of an array (or of the memory a pointer-typed object points at).
    pub fn index(&self, i: u64) -> Result<Object<'k>, KernelError> {
        let btf = self.btf();
        let t = btf.resolved(self.ty).map_err(|e| self.btf_err("type", e))?;
        let (base, elem) = match t.kind() {
            Kind::Array => {
                (self.address, t.array().map(|a| a.elem).ok_or_else(|| self.err("[]", TypeProblem::NotArray))?)
            }
            Kind::Ptr => (self.read_u64()?, t.target().unwrap_or(TypeId::VOID)),
            _ => return Err(self.err("[]", TypeProblem::NotArray)),
        };
        let size = btf.size_of(elem).map_err(|e| self.btf_err("type", e))?;
        Ok(Object { k: self.k, btf: self.btf, address: base + i * size, ty: elem, bitfield: None })
    }

    pub fn size(&self) -> Result<u64, KernelError> {
        self.btf().size_of(self.ty).map_err(|e| self.btf_err("type", e))
    }

    fn mem_err(&self, err: crate::MemError) -> KernelError {
        let name = self.btf().type_name(self.ty).unwrap_or_else(|_| "?".into());
        KernelError::Memory { what: format!("{name} at {:#x}", self.address), err }
    }

    pub fn read_bytes(&self, len: usize) -> Result<Vec<u8>, KernelError> {
        self.k.memory().read_vec(self.address, len).map_err(|e| self.mem_err(e))
    }

    pub fn read_u64(&self) -> Result<u64, KernelError> {
        self.k.memory().read_u64(self.address).map_err(|e| self.mem_err(e))
    }

    /// An integer (or pointer, enum, bool, bitfield) of any size, zero-extended; signed ones
    /// are sign-extended to 64 bits.
    pub fn read_int(&self) -> Result<u64, KernelError> {
        let btf = self.btf();
        let size = self.size()? as usize;
        if size == 0 || size > 8 {
            return Err(self.err("integer read", TypeProblem::NotInteger { size: size as u64 }));
        }
        let (bit, width) = self.bitfield.unwrap_or((0, (size * 8) as u8));
        let span = (usize::from(bit) + usize::from(width)).div_ceil(8).max(size).min(8);
        let b = self.read_bytes(span)?;
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        let mut v = v >> bit;
        if width < 64 {
            v &= (1u64 << width) - 1;
        }
        let signed = btf.int_encoding(self.ty).ok().flatten().is_some_and(|e| e.signed);
        if signed && width < 64 && v >> (width - 1) & 1 == 1 {
            v |= !0u64 << width;
        }
        Ok(v)
    }

    /// A `char[N]` array or a `char *` as text (up to the first NUL).
    pub fn read_string(&self, max: usize) -> Result<Vec<u8>, KernelError> {
        let t = self.btf().resolved(self.ty).map_err(|e| self.btf_err("type", e))?;
        let at = if t.kind() == Kind::Ptr { self.read_u64()? } else { self.address };
        let len = if t.kind() == Kind::Array { (self.size()? as usize).min(max) } else { max };
        self.k.memory().read_cstr(at, len).map_err(|e| self.mem_err(e))
    }
}
