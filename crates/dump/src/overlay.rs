//! An in-memory overlay on a dump's physical memory: the way to rewrite kernel data without
//! writing any file — for tests (a damaged task list, a hostile log line), fuzzing (fuzz bytes
//! over the pages of a real dump) and what-if questions.
//!
//! ```no_run
//! # use lockscope_dump::Dump;
//! let dump = Dump::open("vmcore")?.with_patches(vec![(0x1000, b"\x1b[31m".to_vec())]);
//! let mut b = [0u8; 5];
//! dump.read_phys(0x1000, &mut b)?; // the patched bytes; the file is untouched
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Patches land on bytes the dump can provide: a patch over a hole or a filtered page does
//! not make it readable. A later patch wins where two overlap. An empty overlay costs one
//! branch per read.

use std::collections::{BTreeMap, BTreeSet};

/// Patched byte runs, sorted by physical address and disjoint; pages taken out.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    runs: BTreeMap<u64, Vec<u8>>,
    /// Page frame numbers that read as filtered out.
    removed: BTreeSet<u64>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn remove_page(&mut self, pfn: u64) {
        self.removed.insert(pfn);
    }

    pub fn is_removed(&self, pfn: u64) -> bool {
        !self.removed.is_empty() && self.removed.contains(&pfn)
    }

    /// Adds `bytes` at `paddr`, over any earlier patch; merged with the runs it touches. Bytes
    /// that would pass the end of the address space are dropped.
    pub fn insert(&mut self, paddr: u64, bytes: &[u8]) {
        let len = bytes.len().min((u64::MAX - paddr) as usize);
        if len == 0 {
            return;
        }
        let end = paddr + len as u64;
        let touching: Vec<u64> =
            self.runs.range(..=end).rev().take_while(|(s, b)| *s + b.len() as u64 >= paddr).map(|(s, _)| *s).collect();
        let start = touching.last().map_or(paddr, |&s| s.min(paddr));
        let old: Vec<(u64, Vec<u8>)> = touching.iter().filter_map(|s| self.runs.remove_entry(s)).collect();
        let stop = old.iter().map(|(s, b)| s + b.len() as u64).fold(end, u64::max);
        let mut run = vec![0u8; (stop - start) as usize];
        for (s, b) in &old {
            run[(s - start) as usize..][..b.len()].copy_from_slice(b);
        }
        run[(paddr - start) as usize..][..len].copy_from_slice(&bytes[..len]);
        self.runs.insert(start, run);
    }

    /// Writes the patched bytes of `[paddr, paddr + buf.len())` into `buf`.
    pub fn apply(&self, paddr: u64, buf: &mut [u8]) {
        let end = paddr.saturating_add(buf.len() as u64);
        for (&s, run) in self.runs.range(..end).rev() {
            let run_end = s + run.len() as u64;
            if run_end <= paddr {
                break;
            }
            let (from, to) = (s.max(paddr), run_end.min(end));
            buf[(from - paddr) as usize..(to - paddr) as usize]
                .copy_from_slice(&run[(from - s) as usize..(to - s) as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(o: &Overlay, at: u64, n: usize) -> Vec<u8> {
        let mut b = vec![b'.'; n];
        o.apply(at, &mut b);
        b
    }

    #[test]
    fn later_patches_win_and_runs_merge() {
        let mut o = Overlay::default();
        o.insert(10, b"abcd");
        o.insert(20, b"xy");
        o.insert(12, b"ZZ");
        assert_eq!(read(&o, 8, 16), b"..abZZ......xy..");
        assert_eq!(o.runs.len(), 2);
        o.insert(13, b"0123456"); // ends where the run at 20 starts: one run
        assert_eq!(o.runs.len(), 1);
        assert_eq!(read(&o, 8, 16), b"..abZ0123456xy..");
        assert_eq!(read(&o, 0, 4), b"....");
    }

    #[test]
    fn end_of_address_space() {
        let mut o = Overlay::default();
        o.insert(u64::MAX - 2, b"abcdef");
        assert_eq!(read(&o, u64::MAX - 4, 4), b"..ab");
        o.insert(5, b"");
        assert_eq!(o.runs.len(), 1);
    }
}
