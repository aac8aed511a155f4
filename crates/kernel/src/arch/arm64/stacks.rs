//! The stacks an arm64 CPU runs on: the task's kernel stack, the CPU's IRQ stack
//! (`irq_stack_ptr`), its overflow stack (`overflow_stack`, for a stack that overflowed)
//! and the two SDEI stacks (`sdei_stack_normal_ptr`, `sdei_stack_critical_ptr`), each from
//! per-CPU data; sizes from the types where BTF gives them.

use crate::Kernel;
use crate::unwind::{Stack, StackKind};

/// THREAD_SIZE with 4 KiB pages and no KASAN: 16 KiB (`IRQ_STACK_SIZE` is the same).
const DEFAULT_THREAD_SIZE: u64 = 16 << 10;

pub fn stacks(k: &Kernel, task: u64, cpu: Option<u32>) -> Vec<Stack> {
    let size = k.thread_size().unwrap_or(DEFAULT_THREAD_SIZE);
    let mut out = Vec::new();
    if let Ok(base) = k.object(task, "struct task_struct").and_then(|t| t.member("stack")?.read_u64())
        && base != 0
    {
        out.push(Stack { kind: StackKind::Task, start: base, end: base + size });
    }
    let Some(cpu) = cpu else { return out };
    let pointed = |var: &str| k.global(var).and_then(|v| v.per_cpu(cpu)?.read_u64()).ok().filter(|&p| p != 0);
    if let Some(base) = pointed("irq_stack_ptr") {
        out.push(Stack { kind: StackKind::Irq, start: base, end: base + size });
    }
    for (var, name) in [("sdei_stack_normal_ptr", "SDEI"), ("sdei_stack_critical_ptr", "SDEI critical")] {
        if let Some(base) = pointed(var) {
            out.push(Stack { kind: StackKind::Exception(name), start: base, end: base + size });
        }
    }
    if let Ok(v) = k.global("overflow_stack").and_then(|v| v.per_cpu(cpu))
        && let Ok(len) = v.size()
    {
        out.push(Stack { kind: StackKind::Exception("overflow"), start: v.address, end: v.address + len });
    }
    out
}
