//! Lock words decoded: a queued spinlock's value (locked byte, pending byte, the tail that
//! names the last CPU queued) and its MCS queue, walked through the per-CPU `qnodes`.
//!
//! The layout is the one of kernels built with fewer than 16384 CPUs (every distribution
//! kernel): locked in bits 0–7, pending in 8–15, the tail's node index in 16–17 and its
//! CPU + 1 in 18–31.

use crate::{Kernel, KernelError};

/// MCS nodes per CPU: task, softirq, hardirq and NMI context.
const MAX_NODES: u64 = 4;
/// Queue members followed at most (every CPU once per context).
const MAX_QUEUE: usize = 4 * 8192;

/// A queued spinlock's 32-bit value, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QspinlockValue {
    pub locked: bool,
    /// A CPU took the pending bit: the first waiter, spinning on the locked byte.
    pub pending: bool,
    /// The last CPU queued, and which of its MCS nodes it used.
    pub tail: Option<(u32, u32)>,
}

impl QspinlockValue {
    pub fn decode(v: u32) -> QspinlockValue {
        let tail_cpu = v >> 18;
        QspinlockValue {
            locked: v & 0xff != 0,
            pending: (v >> 8) & 0xff != 0,
            tail: (tail_cpu != 0).then_some((tail_cpu - 1, (v >> 16) & 3)),
        }
    }
}

/// One CPU's MCS node in a spinlock's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedCpu {
    pub cpu: u32,
    /// Its node index (0 task context, 1 softirq, 2 hardirq, 3 NMI).
    pub node: u32,
    pub address: u64,
}

impl Kernel {
    /// The address of `cpu`'s MCS node `idx` (`per_cpu(qnodes, cpu)[idx].mcs`).
    fn qnode(&self, cpu: u32, idx: u64) -> Result<u64, KernelError> {
        let base = self.per_cpu_address("qnodes", cpu)?;
        let size = self.size_of("qnode").or_else(|_| self.size_of("mcs_spinlock"))?;
        Ok(base + idx * size)
    }

    /// The CPUs queued on a queued spinlock whose value is `v`, from the head (the next to
    /// take the lock) to the tail the value names. The MCS nodes link forward (`next`): the
    /// head is the in-use node no other in-use node points to, whose chain reaches the tail.
    pub fn qspinlock_queue(&self, v: u32) -> Result<Vec<QueuedCpu>, KernelError> {
        let Some((tail_cpu, tail_idx)) = QspinlockValue::decode(v).tail else { return Ok(Vec::new()) };
        let tail = self.qnode(tail_cpu, u64::from(tail_idx))?;
        let next_off = self.offset_of("mcs_spinlock", "next")?;
        let count_off = self.offset_of("mcs_spinlock", "count")?;
        // Every node in use: a CPU's first node counts how many of its nodes are.
        let mut in_use: Vec<QueuedCpu> = Vec::new();
        for cpu in self.cpus()?.iter().map(|c| c.cpu) {
            let first = self.qnode(cpu, 0)?;
            let count = self.memory().read_u32(first + count_off).map_or(0, u64::from).min(MAX_NODES);
            for idx in 0..count {
                in_use.push(QueuedCpu { cpu, node: idx as u32, address: self.qnode(cpu, idx)? });
            }
        }
        let next_of = |n: &QueuedCpu| self.memory().read_u64(n.address + next_off).ok().filter(|&p| p != 0);
        let reaches_tail = |start: &QueuedCpu| -> Option<Vec<QueuedCpu>> {
            let mut path = vec![*start];
            while path.len() <= MAX_QUEUE {
                let last = path[path.len() - 1];
                if last.address == tail {
                    return Some(path);
                }
                let next = next_of(&last)?;
                path.push(*in_use.iter().find(|n| n.address == next)?);
            }
            None
        };
        let pointed: Vec<u64> = in_use.iter().filter_map(next_of).collect();
        let queue = in_use.iter().filter(|n| !pointed.contains(&n.address)).find_map(reaches_tail);
        // The tail alone, when no chain from a head reaches it (its `next` links torn).
        Ok(queue.unwrap_or_else(|| vec![QueuedCpu { cpu: tail_cpu, node: tail_idx, address: tail }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qspinlock_values_decode() {
        assert_eq!(QspinlockValue::decode(0), QspinlockValue { locked: false, pending: false, tail: None });
        assert_eq!(QspinlockValue::decode(1), QspinlockValue { locked: true, pending: false, tail: None });
        assert_eq!(QspinlockValue::decode(0x101), QspinlockValue { locked: true, pending: true, tail: None });
        // CPU 3 (tail 4) queued in its task-context node behind a pending waiter.
        let v = (4 << 18) | 0x101;
        assert_eq!(QspinlockValue::decode(v).tail, Some((3, 0)));
        // CPU 0 in its hardirq node.
        assert_eq!(QspinlockValue::decode((1 << 18) | (2 << 16) | 1).tail, Some((0, 2)));
    }
}
