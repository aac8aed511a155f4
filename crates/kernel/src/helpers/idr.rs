//! The pid index (`init_pid_ns.idr`): a radix tree of every `struct pid` in use, whose
//! `tasks[PIDTYPE_PID]` names the task. It is a second way to every task, independent of the
//! task list, so a broken task list or thread list loses nothing that this tree still holds.
//! The tree is an xarray from 4.20 (internal entries tagged `0b10`) and a radix tree with
//! internal entries tagged `0b01` in 4.15–4.19; older kernels hash pids instead (not read).

use super::{Damage, DamageKind, Structure};
use crate::{Kernel, KernelError};
use std::collections::HashSet;

/// Levels of a radix tree over 64-bit indexes, 6 bits a level.
const MAX_DEPTH: usize = 11;

/// How a tree tells its internal nodes from leaves.
#[derive(Clone, Copy)]
struct TreeLayout {
    node_tag: u64,
    slots_off: u64,
    slots: u64,
}

impl Kernel {
    /// The tasks the pid tree of the initial namespace leads to (the idle tasks, pid 0, are on
    /// no tree). Damage found in the tree is recorded, and what could be read is returned.
    pub fn tasks_from_pid_tree(&self, max: usize) -> Result<Vec<u64>, KernelError> {
        let root = self.global("init_pid_ns")?.member("idr.idr_rt")?;
        let head = root.member("xa_head").or_else(|_| root.member("rnode"))?.read_u64()?;
        let layout = self.tree_layout()?;
        let mut pids = Vec::new();
        let mut seen = HashSet::new();
        self.tree_entries(head, layout, 0, max, &mut seen, &mut pids);
        let pid_off = self.offset_of("task_struct", "pid_links").or_else(|_| self.offset_of("task_struct", "pids"))?;
        let first = self.offset_of("pid", "tasks")?;
        let tasks = pids
            .into_iter()
            .filter_map(|pid| self.memory().read_u64(pid + first).ok())
            .filter(|&node| node != 0)
            .map(|node| node.wrapping_sub(pid_off))
            .collect();
        Ok(tasks)
    }

    fn tree_layout(&self) -> Result<TreeLayout, KernelError> {
        let (ty, node_tag) = match self.size_of("struct xa_node") {
            Ok(_) => ("xa_node", 2),
            Err(_) => ("radix_tree_node", 1),
        };
        let slots_off = self.offset_of(ty, "slots")?;
        let node = self.object(0, &format!("struct {ty}"))?;
        let slots = node.member("slots")?.size()? / 8;
        Ok(TreeLayout { node_tag, slots_off, slots: slots.clamp(1, 256) })
    }

    /// Leaves under `entry`, depth first; a node met twice or too deep is damage.
    fn tree_entries(
        &self,
        entry: u64,
        layout: TreeLayout,
        depth: usize,
        max: usize,
        seen: &mut HashSet<u64>,
        out: &mut Vec<u64>,
    ) {
        if entry == 0 || out.len() >= max {
            return;
        }
        if entry & 3 == 0 {
            out.push(entry);
            return;
        }
        // Internal entries below a page are retry and sibling markers; value entries have bit 0.
        if entry & 3 != layout.node_tag || entry <= 4096 {
            return;
        }
        let node = entry & !3;
        let damage = |what| Damage { structure: Structure::PidTree, at: node, what, recovered: 0 };
        if depth > MAX_DEPTH || !seen.insert(node) {
            self.record_damage(damage(DamageKind::Loop { to: node }));
            return;
        }
        let slots = match self.memory().read_vec(node + layout.slots_off, (layout.slots * 8) as usize) {
            Ok(s) => s,
            Err(e) => return self.record_damage(damage(DamageKind::Unreadable(e))),
        };
        for slot in slots.chunks_exact(8) {
            let child = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
            self.tree_entries(child, layout, depth + 1, max, seen, out);
        }
    }
}
