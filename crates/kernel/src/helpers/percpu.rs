//! Per-CPU data: where CPU n's copy of a per-CPU variable lies (`__per_cpu_offset[n]` added
//! to the variable's address; typed reads go through [`crate::object::Object::per_cpu`]).

use crate::{Kernel, KernelError};

impl Kernel {
    /// `__per_cpu_offset[cpu]`.
    pub fn per_cpu_offset(&self, cpu: u32) -> Result<u64, KernelError> {
        let base = self.symbol("__per_cpu_offset")?;
        self.memory()
            .read_u64(base + u64::from(cpu) * 8)
            .map_err(|err| KernelError::Memory { what: format!("__per_cpu_offset[{cpu}]"), err })
    }

    /// The address of CPU `cpu`'s copy of the per-CPU variable `name`.
    pub fn per_cpu_address(&self, name: &str, cpu: u32) -> Result<u64, KernelError> {
        Ok(self.symbol(name)?.wrapping_add(self.per_cpu_offset(cpu)?))
    }
}
