//! `struct list_head` walks over memory that may be damaged: each step checks that the next
//! node links back (`next->prev == node`), that no node comes twice, and that the list ends;
//! a walk that breaks is completed from the other end, along `prev` from the head, so one bad
//! pointer loses one entry rather than the rest of the list.

use super::{Damage, DamageKind, Structure};
use crate::Kernel;
use std::collections::HashSet;

/// The nodes of a list (the head excluded), in order, and where it broke.
#[derive(Clone, Debug, Default)]
pub struct ListWalk {
    pub nodes: Vec<u64>,
    pub damage: Option<Damage>,
}

/// Which way a walk goes: through `next` (offset 0) or `prev` (offset 8).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

impl Direction {
    fn link(self) -> u64 {
        if self == Direction::Forward { 0 } else { 8 }
    }
    fn back_link(self) -> u64 {
        8 - self.link()
    }
}

impl Kernel {
    /// The nodes of the list whose head is at `head`, at most `max`. A break is recorded in
    /// the damage log under `structure` and repaired from the other end where possible.
    pub fn list_nodes(&self, head: u64, structure: Structure, max: usize) -> ListWalk {
        let mut seen = HashSet::new();
        let forward = self.walk(head, structure, Direction::Forward, max, &mut seen);
        let Some(mut why) = forward.1 else { return ListWalk { nodes: forward.0, damage: None } };
        let mut nodes = forward.0;
        let (mut back, _) = self.walk(head, structure, Direction::Backward, max.saturating_sub(nodes.len()), &mut seen);
        why.recovered = back.len();
        back.reverse();
        nodes.extend(back);
        self.record_damage(why.clone());
        ListWalk { nodes, damage: Some(why) }
    }

    /// Follows one direction until the head comes back, a node already in `seen` (the other
    /// walk's part, when walking back), or damage.
    fn walk(
        &self,
        head: u64,
        structure: Structure,
        dir: Direction,
        max: usize,
        seen: &mut HashSet<u64>,
    ) -> (Vec<u64>, Option<Damage>) {
        let backward_stop = dir == Direction::Backward;
        let mut out = Vec::new();
        let mut node = head;
        let damage = |at: u64, what: DamageKind| Some(Damage { structure, at, what, recovered: 0 });
        loop {
            let next = match self.memory().read_u64(node.wrapping_add(dir.link())) {
                Ok(n) => n,
                Err(e) => return (out, damage(node, DamageKind::Unreadable(e))),
            };
            if next == head {
                return (out, None);
            }
            if backward_stop && seen.contains(&next) {
                return (out, None);
            }
            if next == 0 || next % 8 != 0 || !self.memory().address_space().is_kernel_address(next) {
                return (out, damage(node, DamageKind::BadPointer(next)));
            }
            if !seen.insert(next) {
                return (out, damage(node, DamageKind::Loop { to: next }));
            }
            match self.memory().read_u64(next.wrapping_add(dir.back_link())) {
                Ok(back) if back == node => {}
                Ok(back) => return (out, damage(node, DamageKind::BrokenLink { next, back })),
                Err(e) => return (out, damage(next, DamageKind::Unreadable(e))),
            }
            if out.len() >= max {
                return (out, damage(node, DamageKind::TooLong(max)));
            }
            out.push(next);
            node = next;
        }
    }
}
