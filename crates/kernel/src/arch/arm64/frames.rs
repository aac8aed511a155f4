//! arm64 frame records: every non-leaf kernel function saves (caller's x29, x30) at x29, so
//! following x29 gives the return addresses up the stack. Pointer authentication may sign a
//! saved x30: the bits `KERNELPACMASK` names are set back before use. This is the unwinder's
//! arm64 step in its plainest form; the exception frames (`pt_regs` at `el1h_64_irq` …) and
//! the IRQ/overflow/SDEI stacks come with the arm64 `Architecture`.

use crate::memory::KernelMemory;

/// Frames followed at most.
pub const MAX_FRAMES: usize = 192;

/// One frame record: where it is and the return address it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRecord {
    pub fp: u64,
    pub lr: u64,
}

/// Why the chain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// x29 is 0, or the final record (both words 0): the outermost frame.
    Outermost,
    /// The next record is below the current one: not a frame record any more.
    NotGrowing,
    /// A record could not be read (its page is not in the dump).
    Unreadable(u64),
    /// [`MAX_FRAMES`] reached.
    TooDeep,
}

/// A return address with its pointer-authentication code removed. `pac_mask` is
/// VMCOREINFO's `NUMBER(KERNELPACMASK)`, or bits 63 down to the VA size when the dump does
/// not say. Only kernel pointers (bit 55 set: the signing keeps it) get their top bits set
/// back; anything else is left as read, so a garbage word stays recognisably garbage.
pub fn strip_pac(lr: u64, pac_mask: u64) -> u64 {
    if lr & (1 << 55) != 0 { lr | pac_mask } else { lr }
}

/// The PAC bits of a kernel pointer when VMCOREINFO has no `KERNELPACMASK`: every bit above
/// the virtual address (what `ptrauth_kernel_pac_mask()` is, `GENMASK(63, vabits_actual)`).
pub fn default_pac_mask(va_bits: u32) -> u64 {
    !0u64 << va_bits.clamp(36, 63)
}

/// The frame records from `fp` up: (caller's fp, return address) each, and why it ended.
pub fn frame_records(mem: &KernelMemory, mut fp: u64, pac_mask: u64) -> (Vec<FrameRecord>, End) {
    let mut out = Vec::new();
    loop {
        if fp == 0 {
            return (out, End::Outermost);
        }
        if out.len() >= MAX_FRAMES {
            return (out, End::TooDeep);
        }
        let (Ok(next), Ok(lr)) = (mem.read_u64(fp), mem.read_u64(fp + 8)) else {
            return (out, End::Unreadable(fp));
        };
        // The final frame record at the top of a task's stack holds zeros (6.1+ `ret_from_fork`).
        if lr == 0 && next == 0 {
            return (out, End::Outermost);
        }
        out.push(FrameRecord { fp, lr: strip_pac(lr, pac_mask) });
        if next != 0 && next <= fp {
            return (out, End::NotGrowing);
        }
        fp = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pac_bits_are_set_back() {
        // A signed kernel return address keeps bit 55; the code sits above it and below 48.
        let mask = 0xffff_0000_0000_0000;
        assert_eq!(strip_pac(0x3aa3_ba4f_0578_28b8, mask), 0xffff_ba4f_0578_28b8);
        assert_eq!(strip_pac(0xffff_ba4f_0578_28b8, mask), 0xffff_ba4f_0578_28b8);
        // Not a kernel pointer (bit 55 clear): left alone, to fail the kernel-text test.
        assert_eq!(strip_pac(0x0023_3a4f_0578_28b8, mask), 0x0023_3a4f_0578_28b8);
        assert_eq!(strip_pac(0, mask), 0);
        assert_eq!(default_pac_mask(48), mask);
        assert_eq!(default_pac_mask(52), 0xfff0_0000_0000_0000);
    }
}
