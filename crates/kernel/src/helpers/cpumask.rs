//! CPU masks (`struct cpumask`: a bitmap of `nr_cpu_ids` bits in longs): the kernel's global
//! masks (`__cpu_online_mask`, …) and any mask at an address (an IPI's target CPUs).

use crate::{Kernel, KernelError};

impl Kernel {
    /// The CPUs set in the `struct cpumask` at `address`, of the first `n` CPUs.
    pub fn cpumask_at(&self, address: u64, n: u32) -> Result<Vec<u32>, KernelError> {
        let words = self
            .memory()
            .read_vec(address, (n as usize).div_ceil(64) * 8)
            .map_err(|err| KernelError::Memory { what: format!("cpumask at {address:#x}"), err })?;
        Ok((0..n).filter(|&c| words[(c / 8) as usize] >> (c % 8) & 1 == 1).collect())
    }

    /// A global mask as one flag per CPU id (`__cpu_online_mask` → online[cpu]).
    pub fn cpumask_flags(&self, name: &str, n: u32) -> Result<Vec<bool>, KernelError> {
        let set = self.cpumask_at(self.symbol(name)?, n)?;
        Ok((0..n).map(|c| set.contains(&c)).collect())
    }
}
