//! The stacks an x86_64 CPU runs on: the task's kernel stack, the CPU's hard-IRQ stack
//! (softirqs run there too) and its exception stacks (NMI, double fault, debug, machine
//! check, and SEV's two #VC stacks) in the CPU entry area, each found from per-CPU data.

use crate::Kernel;
use crate::unwind::{Stack, StackKind};

/// THREAD_SIZE without KASAN: 16 KiB.
const DEFAULT_THREAD_SIZE: u64 = 16 << 10;
const EXCEPTION_STACKS: [&str; 6] = ["DF", "NMI", "DB", "MCE", "VC", "VC2"];

/// The size of a task's stack ([`Kernel::thread_size`], larger with KASAN), 16 KiB when the
/// symbols do not show it.
pub fn thread_size(k: &Kernel) -> u64 {
    k.thread_size().unwrap_or(DEFAULT_THREAD_SIZE)
}

pub fn stacks(k: &Kernel, task: u64, cpu: Option<u32>) -> Vec<Stack> {
    let size = thread_size(k);
    let mut out = Vec::new();
    if let Ok(base) = k.object(task, "struct task_struct").and_then(|t| t.member("stack")?.read_u64())
        && base != 0
    {
        out.push(Stack { kind: StackKind::Task, start: base, end: base + size });
    }
    if let Some(cpu) = cpu {
        out.extend(irq_stack(k, cpu, size));
        out.extend(exception_stacks(k, cpu));
    }
    out
}

/// The hard-IRQ stack: the per-CPU `hardirq_stack_ptr` (before 6.2 and again later) or
/// `pcpu_hot.hardirq_stack_ptr` points at the stack's top word (where the entry code saves
/// the interrupted stack pointer), or at its very end.
fn irq_stack(k: &Kernel, cpu: u32, size: u64) -> Option<Stack> {
    let top = k
        .global("hardirq_stack_ptr")
        .and_then(|v| v.per_cpu(cpu)?.read_u64())
        .or_else(|_| k.global("pcpu_hot")?.per_cpu(cpu)?.member("hardirq_stack_ptr")?.read_u64())
        .ok()
        .filter(|&t| t != 0)?;
    let end = if top % 4096 == 0 { top } else { top + 8 };
    Some(Stack { kind: StackKind::Irq, start: end - size, end })
}

/// The exception stacks: `cea_exception_stacks` (per CPU) points at a `struct
/// cea_exception_stacks` of guard pages and stacks, laid out by BTF. It is the `estacks`
/// member of the CPU's `struct cpu_entry_area`, which also holds the entry trampoline stack.
fn exception_stacks(k: &Kernel, cpu: u32) -> Vec<Stack> {
    let Ok(base) = k.global("cea_exception_stacks").and_then(|v| v.per_cpu(cpu)?.read_u64()) else {
        return Vec::new();
    };
    let Ok(btf) = k.btf() else { return Vec::new() };
    let entry = (|| {
        let estacks = btf.member_of("struct cpu_entry_area", "estacks").ok()?;
        let page = btf.member_of("struct cpu_entry_area", "entry_stack_page").ok()?;
        let start = base.checked_sub(estacks.byte_offset())? + page.byte_offset();
        Some(Stack { kind: StackKind::Entry, start, end: start + btf.size_of(page.ty).ok()? })
    })();
    entry
        .into_iter()
        .chain(EXCEPTION_STACKS.iter().filter_map(|&name| {
            let m = btf.member_of("struct cea_exception_stacks", &format!("{name}_stack")).ok()?;
            let size = btf.size_of(m.ty).ok()?;
            let start = base + m.byte_offset();
            Some(Stack { kind: StackKind::Exception(name), start, end: start + size })
        }))
        .collect()
}
