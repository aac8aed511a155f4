//! Tasks blocked in D state: who they are, how long since each last ran (crash's `ps -m`,
//! against the most advanced CPU clock, since a stopped CPU's own clock stops too), and the
//! stack each switched out on.

use lockscope_facts::TaskRef;
use lockscope_facts::machine::{MemoryRead, TaskState};
use lockscope_kernel::Kernel;

/// Blocked tasks listed at most (their stacks are unwound): a machine with thousands in D
/// state is described by its longest-blocked ones.
const MAX_BLOCKED: usize = 512;

pub fn blocked_tasks(k: &Kernel, unknown: &mut Vec<String>) -> Vec<TaskState> {
    let (tasks, cpus) = match (k.tasks(), k.cpus()) {
        (Ok((t, _)), Ok(c)) => (t, c),
        (Err(e), _) | (_, Err(e)) => {
            unknown.push(format!("blocked tasks: {e}"));
            return Vec::new();
        }
    };
    let newest = cpus.iter().map(|c| c.clock).max();
    let last_arrival = k.offset_of("task_struct", "sched_info.last_arrival").ok();
    let mut blocked: Vec<_> = tasks.iter().filter(|t| t.state_code == "UN" && t.current_on.is_none()).collect();
    blocked.sort_by_key(|t| t.last_arrival);
    blocked
        .into_iter()
        .take(MAX_BLOCKED)
        .map(|t| {
            let stack = match k.task_trace(t) {
                Ok(trace) => crate::frames(k, &trace),
                Err(e) => {
                    unknown.push(format!("stack of pid {}: {e}", t.pid));
                    Vec::new()
                }
            };
            TaskState {
                task: TaskRef { comm: t.comm.clone(), pid: t.pid },
                state: t.state_letter.to_string(),
                blocked_ns: newest.zip(last_arrival).map(|(n, _)| n.saturating_sub(t.last_arrival)),
                stack,
                origin: MemoryRead::new(
                    t.address + last_arrival.unwrap_or(0),
                    format!("task {}'s sched_info.last_arrival", t.pid),
                )
                .crash(format!("ps -m {}", t.pid)),
            }
        })
        .collect()
}
