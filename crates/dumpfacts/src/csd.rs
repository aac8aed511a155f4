//! Cross-CPU function calls (IPI / CSD) from memory: which CPUs a CPU waiting in
//! `smp_call_function_many(_cond)` still waits for — its per-CPU `cfd_data` mask, and each
//! target's call data still locked — and the calls queued on each CPU's
//! `call_single_queue`, with the CPU that sent each.

use lockscope_facts::Frame;
use lockscope_facts::machine::{IpiWait, LockedCall, MemoryRead, PendingCall};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::Structure;

/// `CSD_FLAG_LOCK`: set while the call is queued or running.
const CSD_FLAG_LOCK: u64 = 0x01;
/// Calls queued on one CPU at most.
const MAX_QUEUED: usize = 4096;
/// Functions that wait for the CPUs of a `cfd_data` mask.
const MANY_WAITERS: &[&str] = &["smp_call_function_many_cond", "smp_call_function_many", "on_each_cpu_cond_mask"];

/// Where CPU `source`'s call data for `target` lies: `per_cpu_ptr(cfd->pcpu, target)->csd`
/// (5.x–6.1) or `per_cpu_ptr(cfd->csd, target)` (6.2+).
fn cfd_csd(k: &Kernel, source: u32, target: u32) -> Option<u64> {
    let cfd = k.global("cfd_data").ok()?.per_cpu(source).ok()?;
    let off = k.per_cpu_offset(target).ok()?;
    if let Ok(pcpu) = cfd.member("pcpu") {
        let base = pcpu.read_u64().ok()?.wrapping_add(off);
        return Some(base + k.offset_of("cfd_percpu", "csd").ok()?);
    }
    Some(cfd.member("csd").ok()?.read_u64().ok()?.wrapping_add(off))
}

/// The flags word of a `call_single_data`: `node.u_flags` (5.11+) or `flags`.
fn csd_flags(k: &Kernel, csd: u64) -> Option<(u64, u64)> {
    let o = k.object(csd, "struct __call_single_data").ok()?;
    let f = o.member("node.u_flags").or_else(|_| o.member("flags")).ok()?;
    Some((f.address, f.read_int().ok()?))
}

/// The mask of CPUs a `cfd_data` was sent to (`cpumask_var_t`: a pointer when cpumasks are
/// off-stack, else inline).
fn cfd_mask(k: &Kernel, source: u32, n: u32) -> Option<(u64, Vec<u32>)> {
    let m = k.global("cfd_data").ok()?.per_cpu(source).ok()?.member("cpumask").ok()?;
    let at = m.deref().map(|d| d.address).unwrap_or(m.address);
    Some((at, k.cpumask_at(at, n).ok()?))
}

/// The IPI wait of each CPU whose stack is in a function waiting for a `cfd_data` mask.
pub fn ipi_waits(k: &Kernel, cpus: &[(u32, Vec<Frame>)], unknown: &mut Vec<String>) -> Vec<IpiWait> {
    let Ok(n) = k.nr_cpu_ids() else { return Vec::new() };
    let mut out = Vec::new();
    for (cpu, stack) in cpus {
        let Some(f) = stack.iter().find(|f| MANY_WAITERS.contains(&f.function.as_str())) else { continue };
        let Some((mask_at, mask)) = cfd_mask(k, *cpu, n) else {
            unknown.push(format!("cfd_data of CPU {cpu}: unreadable"));
            continue;
        };
        let origin =
            vec![MemoryRead::new(mask_at, format!("cfd_data[{cpu}].cpumask")).crash(format!("p cfd_data:{cpu}"))];
        let mut locked_calls = Vec::new();
        let mut targets = Vec::new();
        let mut call = None;
        for t in mask.into_iter().filter(|t| t != cpu) {
            let Some(csd) = cfd_csd(k, *cpu, t) else { continue };
            let Some((flags_at, flags)) = csd_flags(k, csd) else {
                unknown.push(format!("call data of CPU {cpu} for CPU {t} at {csd:#x}: unreadable"));
                continue;
            };
            if flags & CSD_FLAG_LOCK != 0 {
                targets.push(t);
                let read = MemoryRead::new(flags_at, format!("cfd_data[{cpu}] csd for CPU {t}: flags {flags:#x}"))
                    .crash(format!("p cfd_data:{cpu}"));
                locked_calls.push(LockedCall { target: t, flags, read });
                call = call.or_else(|| csd_function(k, csd).and_then(|(_, name)| name));
            }
        }
        out.push(IpiWait { cpu: *cpu, function: f.function.clone(), targets, call, locked_calls, origin });
    }
    out
}

fn csd_function(k: &Kernel, csd: u64) -> Option<(u64, Option<String>)> {
    let func = k.object(csd, "struct __call_single_data").ok()?.member("func").ok()?.read_u64().ok()?;
    Some((func, k.lookup_address(func).map(|s| s.name.to_string())))
}

/// The calls queued on every CPU's `call_single_queue`, each with its sender when it is a
/// CPU's `cfd_data` call.
pub fn pending_calls(k: &Kernel, unknown: &mut Vec<String>) -> Vec<PendingCall> {
    let Ok(n) = k.nr_cpu_ids() else { return Vec::new() };
    let Ok(node_off) =
        k.offset_of("__call_single_data", "node.llist").or_else(|_| k.offset_of("__call_single_data", "llist"))
    else {
        unknown.push("struct __call_single_data: no llist member".into());
        return Vec::new();
    };
    let mut out = Vec::new();
    for target in 0..n {
        let Ok(head) = k.per_cpu_address("call_single_queue", target) else { continue };
        let walk = k.llist_nodes(head, Structure::CallSingleQueue { cpu: target }, MAX_QUEUED);
        if let Some(d) = walk.damage {
            unknown.push(d.to_string());
        }
        for node in walk.nodes {
            let csd = node - node_off;
            let (func, name) = csd_function(k, csd).unwrap_or((0, None));
            let locked = csd_flags(k, csd).is_some_and(|(_, f)| f & CSD_FLAG_LOCK != 0);
            let source = (0..n).find(|&s| cfd_csd(k, s, target) == Some(csd));
            out.push(PendingCall {
                target_cpu: target,
                source_cpu: source,
                csd,
                function: name,
                function_address: func,
                locked,
                origin: MemoryRead::new(head, format!("call_single_queue[{target}]"))
                    .crash(format!("p call_single_queue:{target}")),
            });
        }
    }
    out
}
