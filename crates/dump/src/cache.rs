//! A small bounded cache of decoded pages (clock replacement): a stack walk or a struct read
//! touches the same few pages many times, and inflating a page costs far more than a lookup.

use std::collections::HashMap;

pub(crate) struct PageCache {
    page_size: usize,
    capacity: usize,
    pfns: Vec<u64>,
    pages: Vec<Box<[u8]>>,
    referenced: Vec<bool>,
    index: HashMap<u64, usize>,
    hand: usize,
}

impl PageCache {
    pub fn new(page_size: usize, capacity: usize) -> PageCache {
        PageCache {
            page_size,
            capacity: capacity.max(1),
            pfns: Vec::new(),
            pages: Vec::new(),
            referenced: Vec::new(),
            index: HashMap::new(),
            hand: 0,
        }
    }

    pub fn get(&mut self, pfn: u64) -> Option<&[u8]> {
        let &slot = self.index.get(&pfn)?;
        self.referenced[slot] = true;
        Some(&self.pages[slot])
    }

    /// Fills a slot for `pfn` with `fill` (evicting a page not used since the hand last
    /// passed) and keeps it when `fill` succeeds.
    pub fn insert_with<E>(&mut self, pfn: u64, fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<&[u8], E> {
        let slot = if self.pages.len() < self.capacity {
            self.pages.push(vec![0u8; self.page_size].into_boxed_slice());
            self.pfns.push(u64::MAX);
            self.referenced.push(false);
            self.pages.len() - 1
        } else {
            while self.referenced[self.hand] {
                self.referenced[self.hand] = false;
                self.hand = (self.hand + 1) % self.capacity;
            }
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.capacity;
            self.index.remove(&self.pfns[slot]);
            self.pfns[slot] = u64::MAX;
            slot
        };
        fill(&mut self.pages[slot])?;
        self.pfns[slot] = pfn;
        self.referenced[slot] = true;
        self.index.insert(pfn, slot);
        Ok(&self.pages[slot])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_recently_used_pages() {
        let mut c = PageCache::new(8, 2);
        for pfn in 1..=3u64 {
            c.insert_with(pfn, |b| {
                b.fill(pfn as u8);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        assert_eq!(c.pages.len(), 2);
        assert_eq!(c.get(3), Some(&[3u8; 8][..]));
        assert!(c.insert_with(4, |_| Err(())).is_err());
        assert!(c.get(4).is_none());
        assert!(c.index.len() <= 2);
    }
}
