//! Streaming line reader: hands out chunks of complete lines from any `Read`, with memory
//! bounded by the chunk size whatever the file holds (a 2 GB line is cut, not loaded).

use std::io::{self, Read};

/// Longest line kept; the rest of a longer line is skipped (and counted). The reader cuts
/// lines longer than its buffer; `Scanner::scan` cuts the shorter ones it is handed whole.
pub const MAX_LINE: usize = 1 << 20;
/// The buffer starts small, for small inputs, and doubles each time a read fills it.
const FIRST_CHUNK: usize = 64 << 10;
const CHUNK: usize = 4 << 20;

pub struct ChunkReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Valid bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Inside an over-long line whose kept part was already handed out.
    skipping: bool,
    /// Bytes dropped from over-long lines.
    pub truncated_bytes: u64,
    pub truncated_lines: u64,
    pub bytes_read: u64,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkReader {
            inner,
            buf: vec![0; FIRST_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            skipping: false,
            truncated_bytes: 0,
            truncated_lines: 0,
            bytes_read: 0,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end < self.buf.len() {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    if self.end == self.buf.len() && self.buf.len() < CHUNK {
                        // A big input, or a long line: read more at a time from now on.
                        let len = self.buf.len();
                        self.buf.resize((len * 2).min(CHUNK), 0);
                    }
                    // One read is enough when it brought a line end.
                    if memchr::memchr(b'\n', &self.buf[self.end - n..self.end]).is_some() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next run of complete lines, each ending in `\n` except possibly the last line
    /// of the input. `None` at the end of input.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if self.start == self.end
                || (!self.eof && memchr::memrchr(b'\n', &self.buf[self.start..self.end]).is_none())
            {
                self.fill()?;
            }
            if self.start == self.end {
                return Ok(None);
            }
            let avail = &self.buf[self.start..self.end];
            if self.skipping {
                match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        self.truncated_bytes += i as u64;
                        self.start += i + 1;
                        self.skipping = false;
                    }
                    None => {
                        self.truncated_bytes += avail.len() as u64;
                        self.start = self.end;
                    }
                }
                continue;
            }
            match memchr::memrchr(b'\n', avail) {
                Some(i) => {
                    let s = self.start;
                    self.start += i + 1;
                    return Ok(Some(&self.buf[s..s + i + 1]));
                }
                None if self.eof => {
                    let s = self.start;
                    self.start = self.end;
                    return Ok(Some(&self.buf[s..self.end]));
                }
                None => {
                    // The buffer is full (at its largest) and holds no line end: keep the
                    // head of the line.
                    let s = self.start;
                    let keep = avail.len().min(MAX_LINE);
                    self.truncated_bytes += (avail.len() - keep) as u64;
                    self.truncated_lines += 1;
                    self.start = self.end;
                    self.skipping = true;
                    return Ok(Some(&self.buf[s..s + keep]));
                }
            }
        }
    }
}

/// Iterates the lines of a chunk, without their `\n` and trailing `\r`.
pub fn split_lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(trim_cr(line))
    })
}

/// Blanks as they were printed: no-break spaces (U+00A0, in a log copied from a web page,
/// for the blanks of `[   65.755230]` and of indented lines) as spaces, and rsyslog's
/// escaped tab `#011` in a syslog line (`kernel: rcu: #0110-...0: (1 GPs behind)`) as a tab.
pub fn plain_blanks(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NBSP: &[u8] = b"\xc2\xa0";
    // Most lines have neither: one byte search each (a memmem searcher per line costs more).
    let has = |pat: &[u8], l: &[u8]| memchr::memchr_iter(pat[0], l).any(|i| l[i..].starts_with(pat));
    let mut out = std::borrow::Cow::Borrowed(line);
    if has(NBSP, line) {
        out = std::borrow::Cow::Owned(replace_all(&out, NBSP, b" "));
    }
    if has(b"#011", &out) && has(b"kernel: ", &out) {
        out = std::borrow::Cow::Owned(replace_all(&out, b"#011", b"\t"));
    }
    out
}

fn replace_all(line: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

pub fn trim_cr(mut line: &[u8]) -> &[u8] {
    while let [head @ .., b'\r'] = line {
        line = head;
    }
    line
}

/// Where `needle` first occurs in `hay`. For a line and a short needle this is cheaper
/// than `str::find`, which sets up a Two-Way searcher on every call: the first byte is
/// found with `memchr`, the rest compared in place.
pub fn find_str(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return Some(0);
    };
    let last_start = h.len().checked_sub(n.len())?;
    memchr::memchr_iter(first, &h[..=last_start]).find(|&i| h[i + 1..].starts_with(rest))
}

/// Whether `hay` contains `needle` ([`find_str`]).
pub fn contains_str(hay: &str, needle: &str) -> bool {
    find_str(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn find_str_agrees_with_str_find() {
        let hay = "[  123.456] CPU: 3 PID: 1234 Comm: kworker/3:1 Not tainted 6.1.0 #1";
        for needle in
            ["", "C", "CPU: ", "PID: ", " Not tainted", "#1", "#2", "Comm: kworker/3:1 Not tainted 6.1.0 #1!", "é"]
        {
            assert_eq!(super::find_str(hay, needle), hay.find(needle), "{needle:?}");
        }
        assert_eq!(super::find_str("", "x"), None);
        assert_eq!(super::find_str("ab", "ab"), Some(0));
        assert_eq!(super::find_str("aab", "ab"), Some(1));
    }

    #[test]
    fn no_break_spaces_are_blanks() {
        assert_eq!(&*super::plain_blanks(b"[\xc2\xa0\xc2\xa0 65.7] rcu:"), b"[   65.7] rcu:");
        assert!(matches!(super::plain_blanks(b"[ 1.0] x"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            &*super::plain_blanks(b"Dec  9 19:08:31 kernel: rcu: #0110-...0: (1"),
            b"Dec  9 19:08:31 kernel: rcu: \t0-...0: (1"
        );
        assert_eq!(&*super::plain_blanks(b"csd: CSD lock (#0110)"), b"csd: CSD lock (#0110)");
    }

    use super::*;

    fn all_lines(data: &[u8]) -> Vec<Vec<u8>> {
        let mut r = ChunkReader::new(data);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            out.extend(split_lines(c).map(|l| l.to_vec()));
        }
        out
    }

    #[test]
    fn keeps_bytes_and_strips_cr() {
        let lines = all_lines(b"a\r\n\xff\x00b\nlast");
        assert_eq!(lines, vec![b"a".to_vec(), b"\xff\x00b".to_vec(), b"last".to_vec()]);
    }

    #[test]
    fn over_long_line_is_cut_not_loaded() {
        let mut data = vec![b'x'; CHUNK * 2 + 17];
        data.extend_from_slice(b"\nnext\n");
        let mut r = ChunkReader::new(&data[..]);
        let mut lines = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            lines.extend(split_lines(c).map(|l| l.len()));
        }
        assert_eq!(lines, vec![MAX_LINE, 4]);
        assert_eq!(r.truncated_lines, 1);
        assert_eq!(r.truncated_bytes, (CHUNK * 2 + 17 - MAX_LINE) as u64);
    }

    #[test]
    fn buffer_starts_small_and_grows() {
        let mut r = ChunkReader::new(&b"a\nb\n"[..]);
        while r.next_chunk().unwrap().is_some() {}
        assert_eq!(r.buf.len(), FIRST_CHUNK);
        // A line longer than the first buffer still comes whole.
        let mut data = vec![b'y'; FIRST_CHUNK * 3];
        data.push(b'\n');
        assert_eq!(all_lines(&data), vec![data[..data.len() - 1].to_vec()]);
        let mut r = ChunkReader::new(&data[..]);
        while r.next_chunk().unwrap().is_some() {}
        assert_eq!(r.buf.len(), FIRST_CHUNK * 4);
    }
}
