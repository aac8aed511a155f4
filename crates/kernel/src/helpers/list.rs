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

/// The two singly linked lists of the kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Single {
    /// `struct hlist_head { first }` / `struct hlist_node { next, pprev }`: each node's
    /// `pprev` holds the address of the link that points at it.
    Hlist,
    /// `struct llist_head { first }` / `struct llist_node { next }` (lock-free queues such as
    /// a CPU's `call_single_queue`): nothing links back.
    Llist,
}

impl Kernel {
    /// The nodes of the hlist whose `struct hlist_head` is at `head`, at most `max`.
    pub fn hlist_nodes(&self, head: u64, structure: Structure, max: usize) -> ListWalk {
        self.single_walk(head, structure, max, Single::Hlist)
    }

    /// The nodes of the llist whose `struct llist_head` is at `head`, at most `max`.
    pub fn llist_nodes(&self, head: u64, structure: Structure, max: usize) -> ListWalk {
        self.single_walk(head, structure, max, Single::Llist)
    }

    fn single_walk(&self, head: u64, structure: Structure, max: usize, kind: Single) -> ListWalk {
        let mut seen = HashSet::new();
        let mut nodes = Vec::new();
        let mut link = head;
        let damage = |at: u64, what: DamageKind| Some(Damage { structure, at, what, recovered: 0 });
        let broke = loop {
            let next = match self.memory().read_u64(link) {
                Ok(n) => n,
                Err(e) => break damage(link, DamageKind::Unreadable(e)),
            };
            if next == 0 {
                break None;
            }
            if next % 8 != 0 || !self.memory().address_space().is_kernel_address(next) {
                break damage(link, DamageKind::BadPointer(next));
            }
            if !seen.insert(next) {
                break damage(link, DamageKind::Loop { to: next });
            }
            if kind == Single::Hlist {
                match self.memory().read_u64(next + 8) {
                    Ok(pprev) if pprev == link => {}
                    Ok(pprev) => break damage(link, DamageKind::BrokenLink { next, back: pprev }),
                    Err(e) => break damage(next, DamageKind::Unreadable(e)),
                }
            }
            if nodes.len() >= max {
                break damage(link, DamageKind::TooLong(max));
            }
            nodes.push(next);
            link = next;
        };
        if let Some(d) = &broke {
            self.record_damage(d.clone());
        }
        ListWalk { nodes, damage: broke }
    }
}
