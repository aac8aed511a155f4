//! Where a target's fuzz bytes land: kernel data given as virtual ranges, translated once to
//! physical runs (a page at most each) and seen as one concatenated buffer.

use lockscope_kernel::Kernel;

/// Physical runs of a target's kernel data, in order.
#[derive(Clone, Debug, Default)]
pub struct Regions {
    /// (physical address, length) of each piece; a piece never crosses a page.
    runs: Vec<(u64, u64)>,
    /// Where each named virtual range starts in the concatenation.
    pub starts: Vec<(String, u64)>,
    len: u64,
}

impl Regions {
    /// Adds the readable pages of `[vaddr, vaddr + len)`; pages that do not translate are
    /// left out.
    pub fn add(&mut self, k: &Kernel, name: &str, vaddr: u64, len: u64) {
        self.starts.push((name.to_string(), self.len));
        let mut at = vaddr;
        let end = vaddr.saturating_add(len);
        while at < end {
            let n = (4096 - at % 4096).min(end - at);
            if let Ok(p) = k.memory().translate(at) {
                self.runs.push((p, n));
                self.len += n;
            }
            at += n;
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (physical address, position in the bytes, length) of the pieces of
    /// `[offset, offset + len)` of the concatenation (cut at its end).
    fn pieces(&self, offset: u64, len: usize) -> Vec<(u64, usize, usize)> {
        let (mut out, mut pos, mut done) = (Vec::new(), 0u64, 0usize);
        for &(paddr, n) in &self.runs {
            let want = offset + done as u64;
            if done == len {
                break;
            }
            if want >= pos && want < pos + n {
                let skip = want - pos;
                let take = ((n - skip) as usize).min(len - done);
                out.push((paddr + skip, done, take));
                done += take;
            }
            pos += n;
        }
        out
    }

    fn place(&self, offset: u64, bytes: &[u8], out: &mut Vec<(u64, Vec<u8>)>) {
        for (paddr, at, n) in self.pieces(offset, bytes.len()) {
            out.push((paddr, bytes[at..at + n].to_vec()));
        }
    }

    /// The patch records of a fuzz input: `[u32 LE offset][u16 LE length][bytes]`, repeated;
    /// a record cut short by the input's end keeps what it has.
    pub fn patches(&self, mut data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while data.len() > 6 && self.len > 0 {
            let offset = u32::from_le_bytes(data[..4].try_into().unwrap()) as u64 % self.len;
            let n = (u16::from_le_bytes([data[4], data[5]]) as usize).min(data.len() - 6);
            self.place(offset, &data[6..6 + n], &mut out);
            data = &data[6 + n..];
        }
        out
    }

    /// One record: `bytes` at `offset`.
    pub fn record(offset: u64, bytes: &[u8]) -> Vec<u8> {
        let mut r = (offset as u32).to_le_bytes().to_vec();
        r.extend_from_slice(&(bytes.len().min(u16::MAX as usize) as u16).to_le_bytes());
        r.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
        r
    }

    /// The base dump's bytes at `[offset, offset + len)` of the concatenation.
    pub fn read(&self, k: &Kernel, offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        for (paddr, _, n) in self.pieces(offset, len) {
            let mut buf = vec![0u8; n];
            let _ = k.dump().read_phys(paddr, &mut buf);
            out.extend_from_slice(&buf);
        }
        out
    }
}
