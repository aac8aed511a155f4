//! ELF note layouts: the note header, `struct elf_prstatus` (x86_64, arm64) and QEMU's
//! `QEMUCPUState` (x86_64). Offsets in bytes from the start of the note's descriptor.

/// `Elf_Nhdr`: namesz, descsz, type (u32 each); name and descriptor padded to 4 bytes.
pub const NOTE_HEADER_LEN: usize = 12;
pub const NT_PRSTATUS: u32 = 1;
/// Floating-point registers (QEMU writes them for arm64 vCPUs).
pub const NT_PRFPREG: u32 = 2;

/// `struct elf_prstatus` fields shared by the 64-bit architectures.
pub mod prstatus {
    pub const CURSIG: usize = 12; // i16
    pub const PID: usize = 32; // i32
    pub const PPID: usize = 36; // i32
    /// `pr_reg`: the register array (user_regs_struct order).
    pub const REGS: usize = 112;
    /// 27 × u64 on x86_64.
    pub const X86_64_REG_COUNT: usize = 27;
    pub const X86_64_LEN: usize = 336;
    /// 34 × u64 on arm64: x0..x30, sp, pc, pstate.
    pub const AARCH64_REG_COUNT: usize = 34;
    pub const AARCH64_LEN: usize = 392;
}

/// QEMU's `QEMUCPUState` version 1 (target/i386/arch_dump.c), note name "QEMU", type 0.
pub mod qemu_cpu_state {
    pub const VERSION: usize = 0; // u32
    pub const SIZE: usize = 4; // u32
    /// rax rbx rcx rdx rsi rdi rsp rbp r8..r15, then rip and rflags: u64 each.
    pub const GPRS: usize = 8;
    pub const RIP: usize = 136;
    pub const RFLAGS: usize = 144;
    /// cs ds es fs gs ss ldt tr gdt idt, each {u32 selector, u32 limit, u32 flags, u32 pad, u64 base}.
    pub const SEGMENTS: usize = 152;
    pub const SEGMENT_LEN: usize = 24;
    pub const SEGMENT_BASE: usize = 16;
    pub const CR: usize = 392; // 5 × u64: cr0..cr4
    pub const LEN_V1: usize = 432;
}
