//! `lockscope-dumpfacts`: the kernel view turned into facts, the fourth stage of the dump path
//! (dump file → physical memory → kernel view → **facts** → diagnosis → report).
//!
//! The log path parses facts out of text; this crate reads the same facts out of a dump's
//! memory through [`lockscope_kernel::Kernel`], so one diagnosis engine serves both. It
//! starts with stacks: an unwound [`StackTrace`] becomes the [`lockscope_facts::Frame`]s a
//! log's call trace would have given, plus what only memory has (the stack pointer and the
//! registers known at each frame); then the machine's state ([`machine_state`]): per CPU
//! (task, stack, interrupts, preemption, clock lag, run time), the cross-CPU calls in
//! flight (who waits for which CPU, what is queued where, sent by whom), the locks waited
//! for, RCU, and the tasks blocked in D state (stack, how long since they ran).

mod cpus;
mod csd;
mod events;

pub use events::lockup_events;
mod locks;
pub use locks::cpu_spin_bit;
mod rcu;
mod sleeping;
mod tasks;

use lockscope_facts::machine::MachineState;
use lockscope_facts::{Frame, FrameContext};
use lockscope_kernel::Kernel;
use lockscope_kernel::unwind::{StackKind, StackTrace};

/// The frames of a trace, innermost first, as the log path's call traces are.
pub fn frames(k: &Kernel, trace: &StackTrace) -> Vec<Frame> {
    let names = k.arch().register_names();
    trace
        .frames
        .iter()
        .map(|f| {
            let sym = k.lookup_address(f.lookup_pc());
            Frame {
                function: sym.as_ref().map_or_else(|| format!("{:#x}", f.pc), |s| s.name.to_string()),
                offset: sym.as_ref().map(|s| f.pc.wrapping_sub(s.address)),
                size: sym.as_ref().and_then(|s| s.size),
                module: sym.as_ref().and_then(|s| s.module.map(str::to_string)),
                address: Some(f.pc),
                reliable: f.reliable,
                context: context(f.stack),
                stack_pointer: Some(f.sp),
                registers: f.regs.known().filter_map(|(r, v)| Some((names.get(r)?.to_string(), v))).collect(),
            }
        })
        .collect()
}

/// The context a stack stands for, in the log path's words.
fn context(stack: StackKind) -> FrameContext {
    match stack {
        StackKind::Irq => FrameContext::Irq,
        StackKind::Exception("NMI") => FrameContext::Nmi,
        StackKind::Exception(_) => FrameContext::Exception,
        StackKind::Task | StackKind::Entry | StackKind::Unknown => FrameContext::Task,
    }
}

/// Everything this crate reads from memory: each CPU's state and stack, the CPUs waiting for
/// cross-CPU calls and the calls still queued. What cannot be read is listed in `unknown`.
pub fn machine_state(k: &Kernel) -> MachineState {
    let mut unknown = Vec::new();
    let cpus = cpus::cpu_states(k, &mut unknown);
    let stacks: Vec<(u32, Vec<Frame>)> = cpus.iter().map(|c| (c.cpu, c.stack.clone())).collect();
    let ipi_waits = csd::ipi_waits(k, &stacks, &mut unknown);
    let pending_calls = csd::pending_calls(k, &mut unknown);
    let mut locks = locks::spinlocks(k, &cpus, &mut unknown);
    locks.extend(locks::bit_spinlocks(k, &cpus, &mut unknown));
    locks.extend(sleeping::sleeping_locks(k, &mut unknown));
    let rcu = rcu::rcu_state(k, &mut unknown);
    let blocked_tasks = tasks::blocked_tasks(k, &mut unknown);
    MachineState { cpus, ipi_waits, pending_calls, locks, rcu, blocked_tasks, unknown, ..Default::default() }
}
