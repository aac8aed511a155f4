//! The waits-for graph of a diagnosis: its nodes (CPUs, tasks, resources) and edges (who
//! waits for whom, through what, how sure), and the cycle in it when there is one.

use crate::{ChainLink, Node};
use lockscope_facts::Confidence;
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// An edge: indexes into `nodes`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub via: String,
    pub confidence: Confidence,
}

impl Graph {
    pub fn of(chain: &[ChainLink]) -> Graph {
        let mut g = Graph::default();
        for l in chain {
            let from = g.index(&l.waiter);
            let to = g.index(&l.waits_for);
            g.edges.push(Edge { from, to, via: l.via.clone(), confidence: l.confidence });
        }
        g
    }

    fn index(&mut self, n: &Node) -> usize {
        match self.nodes.iter().position(|x| x == n) {
            Some(i) => i,
            None => {
                self.nodes.push(n.clone());
                self.nodes.len() - 1
            }
        }
    }

    /// The members of the shortest cycle, in waiting order, when the graph has one.
    pub fn cycle(&self) -> Option<Vec<Node>> {
        let mut best: Option<Vec<usize>> = None;
        for start in 0..self.nodes.len() {
            // Breadth-first from `start` back to it: the shortest cycle through it.
            let mut prev = vec![usize::MAX; self.nodes.len()];
            let mut queue = std::collections::VecDeque::from([start]);
            let mut found = None;
            while let Some(n) = queue.pop_front() {
                for e in self.edges.iter().filter(|e| e.from == n) {
                    if e.to == start {
                        found = Some(n);
                        break;
                    }
                    if prev[e.to] == usize::MAX {
                        prev[e.to] = n;
                        queue.push_back(e.to);
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            let Some(mut last) = found else { continue };
            let mut path = vec![last];
            while last != start {
                last = prev[last];
                path.push(last);
            }
            path.reverse();
            if best.as_ref().is_none_or(|b| path.len() < b.len()) {
                best = Some(path);
            }
        }
        best.map(|p| p.into_iter().map(|i| self.nodes[i].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(a: u32, b: u32) -> ChainLink {
        ChainLink {
            waiter: Node::cpu(a),
            waits_for: Node::cpu(b),
            via: "spinlock".into(),
            wait: lockscope_facts::WaitKind::Spinlock,
            lock: None,
            confidence: Confidence::Likely,
            reasoning: String::new(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn chains_have_no_cycle_and_deadlocks_name_the_shortest() {
        assert_eq!(Graph::of(&[l(1, 3), l(3, 5)]).cycle(), None);
        let g = Graph::of(&[l(1, 2), l(2, 3), l(3, 1), l(4, 2), l(2, 2)]);
        assert_eq!(g.nodes.len(), 4);
        assert_eq!(g.cycle(), Some(vec![Node::cpu(2)]));
        let g = Graph::of(&[l(1, 2), l(2, 3), l(3, 1), l(4, 1)]);
        assert_eq!(g.cycle().map(|c| c.len()), Some(3));
    }
}
