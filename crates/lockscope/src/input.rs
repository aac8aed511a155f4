//! Opening inputs and telling what they are from their first bytes: a kernel log, an IPMI
//! SEL listing, a vmcore (whose kernel log is read from its printk buffer), or something
//! unusable.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Log,
    Sel,
    /// A vmcore: its kernel log is analysed.
    Dump,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Log => "kernel_log",
            InputKind::Sel => "ipmi_sel",
            InputKind::Dump => "vmcore",
        }
    }
}

pub struct Input {
    pub name: String,
    pub kind: InputKind,
    /// The head holds printk time stamps, syslog `kernel:` tags or kernel report lines.
    pub looks_like_kernel_log: bool,
    reader: Option<BufReader<Box<dyn Read>>>,
    consumed: u64,
}

const SNIFF: usize = 64 * 1024;

impl Input {
    /// Opens `path` (`-` = standard input). `kind` forces the kind (`--sel`).
    pub fn open(path: &str, kind: Option<InputKind>) -> Result<Input, String> {
        let (name, raw): (String, Box<dyn Read>) = if path == "-" {
            ("<stdin>".into(), Box::new(io::stdin()))
        } else {
            // A log may come through a pipe (`analyze <(zcat kern.log.gz)`) or a character
            // device; directories, sockets and block devices are refused unopened.
            let stream = is_stream(path);
            if !stream {
                lockscope_dump::check_regular_file(std::path::Path::new(path))
                    .map_err(|e| format!("cannot open {path}: {e}"))?;
            }
            let f = File::open(path).map_err(|e| format!("cannot open {path}: {}", describe(&e)))?;
            (path.to_string(), Box::new(f))
        };
        let mut reader = BufReader::with_capacity(SNIFF, raw);
        let head = reader.fill_buf().map_err(|e| format!("{name}: cannot read: {}", describe(&e)))?.to_vec();
        if let Some(what) = dump_format(&head) {
            if what.starts_with("xz") || path == "-" || is_stream(path) {
                return Err(format!("{name} is a {what} at offset 0; give it as a file, decompressed"));
            }
            return Ok(Input { name, kind: InputKind::Dump, looks_like_kernel_log: true, reader: None, consumed: 0 });
        }
        if is_binary(&head) {
            return Err(format!("{name}: binary data, not a kernel log (a vmcore with a damaged header?)"));
        }
        let kind = kind.unwrap_or_else(|| if looks_like_sel(&head) { InputKind::Sel } else { InputKind::Log });
        let looks_like_kernel_log = kernel_lines(&head) > 0;
        Ok(Input { name, kind, looks_like_kernel_log, reader: Some(reader), consumed: 0 })
    }

    pub fn reader(&mut self) -> Result<impl Read + '_, String> {
        let r = self.reader.as_mut().ok_or_else(|| format!("{}: already read", self.name))?;
        Ok(Counting { inner: r, count: &mut self.consumed })
    }

    pub fn read_all(&mut self) -> Result<Vec<u8>, String> {
        let name = self.name.clone();
        let mut buf = Vec::new();
        // SEL listings are small; a bound keeps a wrong file from filling memory.
        self.reader()?.take(256 << 20).read_to_end(&mut buf).map_err(|e| format!("{name}: read error: {e}"))?;
        Ok(buf)
    }

    /// A vmcore's kernel log, as dmesg prints it with caller ids, how many records it has,
    /// what of it was damaged or unreadable, and the machine state its memory shows.
    /// `index`: the input's position, which the events derived from memory name as theirs;
    /// `options`: the debuginfo files the user gave.
    pub fn dump_facts(&self, index: usize, options: &lockscope_kernel::KernelOptions) -> Result<DumpFacts, String> {
        let dump = lockscope_dump::Dump::open(&self.name).map_err(|e| format!("{}: {e}", self.name))?;
        let mut notes = Vec::new();
        if let Some(c) = dump.metadata().notes_cut {
            notes.push(format!(
                "the dump's note area at offset {:#x} is damaged: {} of its {} bytes are well-formed notes",
                c.offset, c.kept, c.declared
            ));
        }
        if dump.vmcoreinfo().is_none() {
            notes.push("no VMCOREINFO note: the kernel's own VMCOREINFO page was found in memory".into());
        }
        let kernel =
            lockscope_kernel::Kernel::with_options(dump, options.clone()).map_err(|e| format!("{}: {e}", self.name))?;
        let log = kernel.log().map_err(|e| format!("{}: kernel log: {e}", self.name))?;
        notes.extend(log.damage_note());
        let machine = lockscope_dumpfacts::machine_state(&kernel);
        let events = lockscope_dumpfacts::lockup_events(&kernel, &machine, index);
        notes.extend(kernel.damage().iter().map(|d| d.to_string()));
        Ok(DumpFacts { log: log.render(false, true), records: log.records.len(), notes, machine, events })
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}

/// What `analyze` takes from a vmcore.
pub struct DumpFacts {
    pub log: Vec<u8>,
    pub records: usize,
    pub notes: Vec<String>,
    pub machine: lockscope_facts::machine::MachineState,
    /// The lockup reports the kernel's detectors would have printed, derived from memory.
    pub events: Vec<lockscope_facts::Event>,
}

struct Counting<'a, R> {
    inner: R,
    count: &'a mut u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.count += n as u64;
        Ok(n)
    }
}

/// A FIFO (a pipe from `<(…)` too) or a character device: read as a stream of log lines.
fn is_stream(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_char_device())
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// vmcore formats recognised by their magic. Any ELF file counts, whatever its type and
/// class: one with a damaged header must fail to open as a dump, never be read as text.
fn dump_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x7fELF") {
        return Some("ELF core dump (vmcore)");
    }
    if head.starts_with(b"KDUMP   ") || head.starts_with(b"DISKDUMP") {
        return Some("kdump-compressed vmcore");
    }
    if head.starts_with(b"makedumpfile") {
        return Some("flattened makedumpfile vmcore");
    }
    if head.starts_with(b"\xfd7zXZ\0") {
        return Some("xz-compressed file (decompress it first)");
    }
    None
}

/// Whether the head cannot be a log: over 30% of it NUL and other control bytes or bytes
/// that are not UTF-8. Real logs, line noise of serial consoles included, stay under 13%
/// (tests/data, the syzkaller reports and the corpus consoles); a memory image or a vmcore
/// whose magic is destroyed is mostly zeros or compressed data (70-100%).
fn is_binary(head: &[u8]) -> bool {
    const TEXT_CONTROLS: &[u8] = b"\t\n\r\x08\x0b\x0c\x1b";
    if head.len() < 64 {
        return false;
    }
    let control = head.iter().filter(|&&b| (b < 0x20 && !TEXT_CONTROLS.contains(&b)) || b == 0x7f).count();
    let not_utf8: usize = head.utf8_chunks().map(|c| c.invalid().len()).sum();
    (control + not_utf8) * 10 > head.len() * 3
}

fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n').take(400)
}

fn kernel_lines(head: &[u8]) -> usize {
    lines(head)
        .filter(|l| {
            let l = lockscope_log::lines::plain_blanks(l);
            let r = lockscope_log::prefix::parse(&l);
            (r.kernel && (r.time.is_some() || r.caller.is_some() || r.host.is_some() || r.level.is_some()))
                || lockscope_log::stack::parse_trace_line(&String::from_utf8_lossy(r.text)).is_some()
                || facility_message(r.text)
        })
        .count()
}

/// A kernel message without any prefix (`printk.time=0`, `dmesg -t`) still starts with its
/// subsystem: `EXT4-fs (loop4): mounted ...`, `rcu: ...`, `Spectre V2 : ...`.
fn facility_message(text: &[u8]) -> bool {
    let Some(colon) = memchr_colon(text) else { return false };
    let head = &text[..colon];
    !head.is_empty()
        && head.len() <= 40
        && head[0].is_ascii_alphanumeric()
        && head.iter().all(|&b| b.is_ascii_alphanumeric() || b" _-./()#".contains(&b))
        && text.get(colon + 1) == Some(&b' ')
}

fn memchr_colon(text: &[u8]) -> Option<usize> {
    text.iter().take(42).position(|&b| b == b':')
}

fn looks_like_sel(head: &[u8]) -> bool {
    let p = lockscope_log::hardware::parse_sel(&head[..head.len().min(SNIFF)]);
    let total = lines(head).filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
    !p.records.is_empty() && p.records.len() * 2 >= total.min(400) && kernel_lines(head) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    /// The binary rule refuses no real log: the repo's test data, and when ../shared is
    /// beside the checkout the syzkaller reports and the corpus consoles.
    #[test]
    fn no_real_log_is_taken_for_binary_data() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        files_under(&repo.join("tests/data"), &mut files);
        files_under(&repo.join("../shared/external/syzkaller-report"), &mut files);
        for corpus in ["corpus", "corpus-6.12", "corpus-arm64"] {
            files_under(&repo.join("../shared").join(corpus), &mut files);
        }
        let mut checked = 0;
        for f in files.iter().filter(|f| !f.to_string_lossy().contains("vmcore") && !f.ends_with("LICENSE")) {
            let mut head = vec![0u8; SNIFF];
            let n = File::open(f).and_then(|mut r| r.read(&mut head)).unwrap();
            head.truncate(n);
            if dump_format(&head).is_some() {
                continue;
            }
            assert!(!is_binary(&head), "{} taken for binary data", f.display());
            checked += 1;
        }
        // Without ../shared only the repo's own logs are there.
        let want = if repo.join("../shared/external").is_dir() { 100 } else { 10 };
        assert!(checked > want, "only {checked} logs found");
    }
}
