//! Lock words decoded: a queued spinlock's value (locked byte, pending byte, the tail that
//! names the last CPU queued) and its MCS queue, walked through the per-CPU `qnodes`; a
//! ticket spinlock's head and tail (x86 before 4.2, arm64 and arm before their switch to
//! queued locks), told apart by `arch_spinlock_t`'s members; a queued rwlock's count.
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

/// A ticket spinlock: `head` (x86) or `owner` (arm) is the ticket served, `tail`/`next` the
/// next ticket to hand out. Paravirt x86 kernels count in steps of 2 and keep a slow-path
/// flag in bit 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketValue {
    pub head: u32,
    pub tail: u32,
    /// Ticket increment: 1, or 2 with paravirt spinlocks.
    pub step: u32,
}

impl TicketValue {
    fn served(&self) -> u32 {
        self.head & !(self.step - 1)
    }

    fn next(&self) -> u32 {
        self.tail & !(self.step - 1)
    }

    /// Held: a ticket was handed out that is not yet served past.
    pub fn locked(&self, width_bits: u32) -> bool {
        self.waiting(width_bits).is_some()
    }

    /// CPUs queued behind the holder, when the lock is held (the holder not counted).
    pub fn waiting(&self, width_bits: u32) -> Option<u32> {
        let mask = if width_bits >= 32 { u32::MAX } else { (1 << width_bits) - 1 };
        let outstanding = self.next().wrapping_sub(self.served()) & mask;
        (outstanding != 0).then(|| outstanding / self.step - 1)
    }
}

/// A queued rwlock's `cnts`: the writer byte (`0xff` when a writer holds it), the bit of a
/// writer waiting, and the readers holding it. The layout changed in 4.16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrwlockValue {
    pub writer_locked: bool,
    pub writer_waiting: bool,
    pub readers: u32,
}

/// (first kernel, waiting-writer bit, reader shift) of the queued rwlock layouts.
const QRWLOCK_LAYOUTS: [((u32, u32), u32, u32); 2] = [((4, 16), 0x100, 9), ((0, 0), 0x1, 8)];

impl QrwlockValue {
    /// `cnts` on a kernel of version `(major, minor)`.
    pub fn decode(cnts: u32, version: (u32, u32)) -> QrwlockValue {
        let (_, waiting, shift) =
            QRWLOCK_LAYOUTS.iter().find(|l| version >= l.0).copied().unwrap_or(QRWLOCK_LAYOUTS[0]);
        QrwlockValue {
            writer_locked: cnts & 0xff == 0xff,
            writer_waiting: cnts & waiting != 0 && cnts & 0xff != 0xff,
            readers: cnts >> shift,
        }
    }

    pub fn held(&self) -> bool {
        self.writer_locked || self.readers > 0
    }
}

/// A spinlock word as this kernel lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpinlockValue {
    Queued(QspinlockValue),
    /// A ticket lock, with the width of each ticket in bits.
    Ticket(TicketValue, u32),
}

impl SpinlockValue {
    pub fn locked(&self) -> bool {
        match self {
            SpinlockValue::Queued(q) => q.locked,
            SpinlockValue::Ticket(t, bits) => t.locked(*bits),
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
    /// The spinlock word at `address`, decoded by `arch_spinlock_t`'s layout: `val` (queued),
    /// `tickets.head`/`tickets.tail` (x86 ticket) or `owner`/`next` (arm ticket).
    pub fn spinlock_value(&self, address: u64) -> Result<SpinlockValue, KernelError> {
        let ticket = |head: &str, tail: &str| -> Result<SpinlockValue, KernelError> {
            let h = self.object(address, "arch_spinlock_t")?.member(head)?;
            let bits = (h.size()? * 8) as u32;
            let t = self.object(address, "arch_spinlock_t")?.member(tail)?;
            // Paravirt ticket locks (3.12 to 4.1) count in twos.
            let step =
                if self.symbol("__ticket_lock_spinning").is_ok() || self.symbol("pv_lock_ops").is_ok() { 2 } else { 1 };
            let value = TicketValue { head: h.read_int()? as u32, tail: t.read_int()? as u32, step };
            Ok(SpinlockValue::Ticket(value, bits))
        };
        if self.offset_of("arch_spinlock_t", "tickets.head").is_ok() {
            return ticket("tickets.head", "tickets.tail");
        }
        if self.offset_of("arch_spinlock_t", "owner").is_ok() && self.offset_of("arch_spinlock_t", "next").is_ok() {
            return ticket("owner", "next");
        }
        let v = self
            .memory()
            .read_u32(address)
            .map_err(|err| KernelError::Memory { what: format!("spinlock at {address:#x}"), err })?;
        Ok(SpinlockValue::Queued(QspinlockValue::decode(v)))
    }

    /// `(major, minor)` of the dumped kernel's release, when known.
    pub fn version(&self) -> Option<(u32, u32)> {
        let release = self.vmcoreinfo().osrelease()?;
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

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
    fn ticket_values_decode() {
        // Free: every ticket handed out was served.
        assert!(!TicketValue { head: 5, tail: 5, step: 1 }.locked(8));
        // Held, two CPUs queued behind the holder.
        let t = TicketValue { head: 5, tail: 8, step: 1 };
        assert_eq!((t.locked(8), t.waiting(8)), (true, Some(2)));
        // Wrapped 8-bit tickets.
        assert_eq!(TicketValue { head: 0xfe, tail: 0x01, step: 1 }.waiting(8), Some(2));
        // Paravirt: steps of 2, the slow-path flag in bit 0 of the head is not a ticket.
        let pv = TicketValue { head: 0x11, tail: 0x12, step: 2 };
        assert_eq!(pv.waiting(16), Some(0));
        assert!(!TicketValue { head: 0x13, tail: 0x12, step: 2 }.locked(16));
    }

    #[test]
    fn qrwlock_values_decode() {
        // 6.1: a writer holds it, nobody else.
        assert_eq!(
            QrwlockValue::decode(0xff, (6, 1)),
            QrwlockValue { writer_locked: true, writer_waiting: false, readers: 0 }
        );
        // Three readers, a writer waiting for them.
        let v = QrwlockValue::decode((3 << 9) | 0x100, (6, 1));
        assert_eq!((v.readers, v.writer_waiting, v.held()), (3, true, true));
        // 4.14's layout: readers from bit 8, the waiting bit is bit 0.
        let old = QrwlockValue::decode((2 << 8) | 0x1, (4, 14));
        assert_eq!((old.readers, old.writer_waiting), (2, true));
        assert!(!QrwlockValue::decode(0, (6, 1)).held());
    }

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
