//! Tree RCU from memory: `rcu_state`'s grace-period sequence and start, the leaf `rcu_node`s'
//! `qsmask` (CPUs that have not passed a quiescent state) and `blkd_tasks` (readers preempted
//! inside a critical section), every task's `rcu_read_lock_nesting` (preemptible RCU), and
//! the tasks waiting in `synchronize_rcu`.

use lockscope_facts::TaskRef;
use lockscope_facts::machine::{MemoryRead, RcuState};
use lockscope_kernel::Kernel;
use lockscope_kernel::helpers::Structure;

/// `RCU_SEQ_STATE_MASK`: the low bits of `gp_seq` are the grace period's phase (0 = idle).
const RCU_SEQ_STATE_MASK: u64 = 0x3;
/// Frames of a task waiting for a grace period.
const GP_WAITS: &[&str] = &["__wait_rcu_gp", "synchronize_rcu", "synchronize_rcu_expedited", "rcu_barrier"];
/// Nodes and blocked readers read at most.
const MAX_NODES: u64 = 1 << 12;
const MAX_BLOCKED: usize = 4096;

pub fn rcu_state(k: &Kernel, unknown: &mut Vec<String>) -> Option<RcuState> {
    let at = k.symbol("rcu_state").ok()?;
    let rs = match k.object(at, "struct rcu_state") {
        Ok(o) => o,
        Err(e) => {
            unknown.push(format!("rcu_state: {e}"));
            return None;
        }
    };
    let gp_seq = rs.member("gp_seq").and_then(|m| m.read_u64()).ok()?;
    let jiffies = k.read_symbol_u64("jiffies_64").or_else(|_| k.read_symbol_u64("jiffies")).ok();
    let gp_start = rs.member("gp_start").and_then(|m| m.read_u64()).ok();
    let mut out = RcuState {
        gp_seq,
        gp_in_progress: gp_seq & RCU_SEQ_STATE_MASK != 0,
        gp_age_jiffies: jiffies.zip(gp_start).map(|(j, s)| j.wrapping_sub(s)),
        origin: vec![
            MemoryRead::new(at, "rcu_state (gp_seq, gp_start)").crash("p rcu_state.gp_seq rcu_state.gp_start jiffies"),
        ],
        ..Default::default()
    };
    leaves(k, &rs, &mut out, unknown);
    tasks(k, &mut out);
    Some(out)
}

/// The leaf nodes: `qsmask` bits from `grplo`, and their blocked readers.
fn leaves(k: &Kernel, rs: &lockscope_kernel::object::Object<'_>, out: &mut RcuState, unknown: &mut Vec<String>) {
    let n = k.global("rcu_num_nodes").and_then(|v| v.read_int()).unwrap_or(1).min(MAX_NODES);
    let levels = k.global("rcu_num_lvls").and_then(|v| v.read_int()).unwrap_or(1);
    let Ok(entry_off) = k.offset_of("task_struct", "rcu_node_entry") else { return };
    for i in 0..n {
        let Ok(node) = rs.member(&format!("node[{i}]")) else { break };
        let level = node.member("level").and_then(|l| l.read_int()).unwrap_or(0);
        if level + 1 != levels {
            continue;
        }
        let (Ok(mask), Ok(lo)) =
            (node.member("qsmask").and_then(|m| m.read_int()), node.member("grplo").and_then(|m| m.read_int()))
        else {
            unknown.push(format!("rcu_state.node[{i}]: unreadable"));
            continue;
        };
        out.waiting_cpus.extend((0..64).filter(|b| mask >> b & 1 == 1).map(|b| lo as u32 + b));
        out.origin.push(
            MemoryRead::new(node.address, format!("rcu_state.node[{i}].qsmask = {mask:#x}"))
                .crash(format!("p rcu_state.node[{i}].qsmask")),
        );
        if let Ok(head) = node.member("blkd_tasks") {
            let walk = k.list_nodes(head.address, Structure::RcuBlockedTasks { node: node.address }, MAX_BLOCKED);
            for e in walk.nodes {
                if let Ok(t) = k.task(e - entry_off) {
                    out.blocked_readers.push(TaskRef { comm: t.comm, pid: t.pid });
                }
            }
        }
    }
}

/// Readers (`rcu_read_lock_nesting` > 0) and grace-period waiters among all tasks.
fn tasks(k: &Kernel, out: &mut RcuState) {
    let Ok((all, _)) = k.tasks() else { return };
    let nesting = k.offset_of("task_struct", "rcu_read_lock_nesting").ok();
    for t in &all {
        let me = TaskRef { comm: t.comm.clone(), pid: t.pid };
        if let Some(off) = nesting
            && k.memory().read_u32(t.address + off).is_ok_and(|n| n as i32 > 0)
        {
            out.readers.push((me.clone(), t.current_on));
        }
        if t.state_code == "UN"
            && let Ok(tr) = k.task_trace(t)
            && tr.frames.iter().any(|f| k.lookup_address(f.lookup_pc()).is_some_and(|s| GP_WAITS.contains(&s.name)))
        {
            out.gp_waiters.push(me);
        }
    }
}
