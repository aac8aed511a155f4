//! Kernel logs in, [`Event`]s out.
//!
//! Position in the flow: this is the log path's reader, the counterpart of the dump
//! readers. It takes any kernel log a user may have — dmesg, serial console, syslog,
//! journal, crash `log`, `vmcore-dmesg.txt`, syzbot console logs, from kernels 2.6 to 6.x,
//! x86_64 and arm64 — as bytes, streams it with memory bounded by a chunk, and produces
//! the [`lockscope_facts::Event`]s that `lockscope-diagnosis` reasons about.
//!
//! Stages inside: [`lines`] (chunks of complete lines) → [`prefix`] (time, caller id,
//! host, level) → `events` (the report state machine, using [`headers`] for headlines and
//! [`stack`] for frames and registers) → [`title`] (syzkaller-compatible titles).
//! [`hardware`] recognises MCE/EDAC/GHES lines and parses IPMI SEL listings.

pub mod hardware;
pub mod headers;
pub mod lines;
pub mod prefix;
pub mod stack;
pub mod title;
pub mod transcript;

mod events;

use aho_corasick::AhoCorasick;
use lockscope_facts::machine::MachineState;
use lockscope_facts::{Event, EventKind, HeldLocks};
use std::io::{self, Read};

/// What a scan learned about one input file besides its events.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceInfo {
    pub name: String,
    pub bytes: u64,
    pub lines: u64,
    /// Lines longer than [`lines::MAX_LINE`], cut.
    pub truncated_lines: u64,
    /// The start of the file is not text.
    pub binary: bool,
    /// `Linux version` banners seen.
    pub boots: u32,
    pub releases: Vec<String>,
    pub hosts: Vec<String>,
    /// Time stamps of the last line, to tell when a log went silent.
    pub last_time: Option<f64>,
    pub last_wall: Option<String>,
    /// Wall time of the last line before each `Linux version` banner: when the previous
    /// boot went silent (syslog, journal).
    pub boot_ends: Vec<String>,
    /// What a pasted crash session's command output showed (`runq -T`, `struct`, `kmem`,
    /// `dis`…), when the input is one.
    #[serde(skip)]
    pub transcript: Option<MachineState>,
}

/// Everything one input gave.
/// The events of a stretch of log that nothing after it refers to (see
/// [`Scanner::scan_segments`]).
#[derive(Clone, Debug, Default)]
pub struct Segment {
    events: Vec<Event>,
    /// Titles still to set: they come from the stacks, work worth doing on the consumer's
    /// thread rather than the reader's.
    needs_title: Vec<bool>,
    held_locks: Vec<HeldLocks>,
    /// The input's index, and what its crash session output showed (the last segment of a
    /// transcript carries it).
    source: usize,
    machine: Option<Box<MachineState>>,
}

impl Segment {
    /// The machine state a crash session's output showed, with the input it came from.
    pub fn take_machine(&mut self) -> Option<(usize, MachineState)> {
        self.machine.take().map(|m| (self.source, *m))
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether a lockup or hang report is among the events.
    pub fn has_lockup(&self) -> bool {
        self.events.iter().any(|e| e.kind.is_lockup())
    }

    /// The events as read (titles of stack-titled reports not yet set).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Adds events from elsewhere (reports derived from a dump's memory) to the segment, so
    /// that they join its incidents; their titles are final.
    pub fn add_events(&mut self, more: Vec<Event>) {
        self.needs_title.extend(std::iter::repeat_n(false, more.len()));
        self.events.extend(more);
    }

    /// The finished events (titles set) and the lockdep listings.
    pub fn into_parts(mut self) -> (Vec<Event>, Vec<HeldLocks>) {
        events::complete_titles(&mut self.events, &self.needs_title);
        (self.events, self.held_locks)
    }
}

#[derive(Clone, Debug, Default)]
pub struct SourceScan {
    pub info: SourceInfo,
    pub events: Vec<Event>,
    pub held_locks: Vec<HeldLocks>,
}

/// Reads kernel logs. Build once, scan many files.
pub struct Scanner {
    triggers: AhoCorasick,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        let triggers = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(headers::TRIGGERS)
            .expect("static trigger table");
        Scanner { triggers }
    }

    /// Scans one input. `source` is its index among the inputs of a run; events carry it
    /// in their line ranges.
    /// Reads a whole log and returns every event in it.
    pub fn scan<R: Read>(&self, source: usize, name: &str, reader: R) -> io::Result<SourceScan> {
        let mut events = Vec::new();
        let mut held_locks = Vec::new();
        let info = self.scan_segments(source, name, reader, |seg| {
            let (seg_events, seg_held) = seg.into_parts();
            // `repeat_of` counts from the start of its segment.
            let base = events.len();
            events.extend(seg_events.into_iter().map(|mut e| {
                e.repeat_of = e.repeat_of.map(|r| r + base);
                e
            }));
            held_locks.extend(seg_held);
        })?;
        Ok(SourceScan { info, events, held_locks })
    }

    /// Reads a log and hands its events over one segment at a time, so that memory stays
    /// flat however long the log: a segment ends where a new boot begins while no report is
    /// open (logs of one host only; a log of several hosts is one segment). Events never
    /// refer across segments; `Event::repeat_of` counts from the start of its segment.
    pub fn scan_segments<R: Read>(
        &self,
        source: usize,
        name: &str,
        reader: R,
        mut on_segment: impl FnMut(Segment),
    ) -> io::Result<SourceInfo> {
        let mut emit =
            |events: Vec<Event>, needs_title: Vec<bool>, held_locks: Vec<HeldLocks>, machine: Option<MachineState>| {
                if !events.is_empty() || !held_locks.is_empty() || machine.is_some() {
                    on_segment(Segment { events, needs_title, held_locks, source, machine: machine.map(Box::new) });
                }
            };
        let mut rd = lines::ChunkReader::new(reader);
        let mut parser = events::Parser::new(source);
        let mut info = SourceInfo { name: name.to_string(), ..Default::default() };
        let mut lineno: u64 = 0;
        let mut first = true;
        let mut last_line: Vec<u8> = Vec::new();
        let mut prev_wall: Vec<u8> = Vec::new();
        // Lines longer than `lines::MAX_LINE` that the reader handed out whole (it cuts
        // only those longer than its buffer): cut here.
        let mut long_lines: u64 = 0;
        // Where the triggers start in the chunk, found in one pass: used both to skip to
        // the next trigger line and to tell whether a processed line holds one.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        let mut transcript: Option<transcript::Transcript> = None;
        while let Some(chunk) = rd.next_chunk()? {
            if first {
                info.binary = looks_binary(&chunk[..chunk.len().min(4096)]);
                // A crash session: every line may hold a fact, not only report lines.
                if looks_like_crash_session(chunk) {
                    transcript = Some(transcript::Transcript::new());
                }
                first = false;
            }
            hits.clear();
            hits.extend(self.triggers.find_iter(chunk).map(|m| (m.start(), m.end())));
            let mut h = 0;
            let mut pos = 0;
            while pos < chunk.len() {
                while h < hits.len() && hits[h].0 < pos {
                    h += 1;
                }
                if parser.idle() && transcript.is_none() {
                    // Skip straight to the line holding the next trigger.
                    let rest = &chunk[pos..];
                    match hits.get(h) {
                        None => {
                            lineno += count_lines(rest, &mut long_lines);
                            break;
                        }
                        Some(&(m, _)) => {
                            let start = memchr::memrchr(b'\n', &rest[..m - pos]).map_or(0, |i| i + 1);
                            lineno += count_lines(&rest[..start], &mut long_lines);
                            if start > 0 {
                                // The skipped line right before: when the log went silent, if
                                // this trigger is a boot banner.
                                let before = &rest[..start - 1];
                                let b = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
                                remember_wall(&mut prev_wall, cut(&before[b..]));
                            }
                            pos += start;
                        }
                    }
                }
                let rest = &chunk[pos..];
                let (mut line, next) = match memchr::memchr(b'\n', rest) {
                    Some(i) => (&rest[..i], pos + i + 1),
                    None => (rest, chunk.len()),
                };
                if line.len() > lines::MAX_LINE {
                    long_lines += 1;
                    line = &line[..lines::MAX_LINE];
                }
                lineno += 1;
                let line = lines::plain_blanks(lines::trim_cr(line));
                let line = &line[..];
                let rec = prefix::parse(line);
                if rec.text.starts_with(b"Linux version ") {
                    if !prev_wall.is_empty() {
                        info.boot_ends.push(String::from_utf8_lossy(&prev_wall).into_owned());
                    }
                    if rec.kernel
                        && let Some((events, needs_title, held)) = parser.take_segment()
                    {
                        emit(events, needs_title, held, None);
                    }
                }
                if let Some(w) = rec.wall {
                    prev_wall.clear();
                    prev_wall.extend_from_slice(w);
                }
                // The text is the end of the line: the first hit at or after the text's start
                // and ending in the line is a trigger in the text. A hit in the prefix (a
                // syslog host name), or one across the cut of a long line, may hide another
                // one: ask the automaton again.
                let text_at = pos + (rec.text.as_ptr() as usize - line.as_ptr() as usize);
                let line_end = pos + line.len();
                let has_trigger = match hits.get(h) {
                    Some(&(m, e)) if m >= text_at && e <= line_end => true,
                    Some(&(m, _)) if m < line_end => self.triggers.is_match(rec.text),
                    _ => false,
                };
                parser.line(lineno, &rec, has_trigger);
                if let Some(t) = transcript.as_mut() {
                    t.quoted_line(lineno, line, rec.text);
                }
                pos = next;
            }
            let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            let tail = &body[memchr::memrchr(b'\n', body).map_or(0, |i| i + 1)..];
            last_line.clear();
            last_line.extend_from_slice(lines::trim_cr(cut(tail)));
            remember_wall(&mut prev_wall, &last_line);
        }
        info.bytes = rd.bytes_read;
        info.truncated_lines = rd.truncated_lines + long_lines;
        info.lines = lineno;
        let rec = prefix::parse(&last_line);
        info.last_time = rec.time;
        info.last_wall = rec.wall.map(|w| String::from_utf8_lossy(w).into_owned());
        info.boots = parser.boots;
        info.releases = std::mem::take(&mut parser.releases);
        info.hosts = std::mem::take(&mut parser.host_names);
        let held_locks = std::mem::take(&mut parser.held);
        let (events, needs_title) = parser.finish();
        info.transcript = transcript.and_then(transcript::Transcript::finish);
        emit(events, needs_title, held_locks, info.transcript.clone());
        Ok(info)
    }
}

/// The kept part of a line: its first [`lines::MAX_LINE`] bytes.
fn cut(line: &[u8]) -> &[u8] {
    &line[..line.len().min(lines::MAX_LINE)]
}

/// Lines in `region` (the last one may lack its `\n`), counting in `long` those longer
/// than [`lines::MAX_LINE`].
fn count_lines(region: &[u8], long: &mut u64) -> u64 {
    let mut n = 0;
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', region) {
        n += 1;
        *long += u64::from(i - start > lines::MAX_LINE);
        start = i + 1;
    }
    if start < region.len() {
        n += 1;
        *long += u64::from(region.len() - start > lines::MAX_LINE);
    }
    n
}

/// Keeps the wall-clock stamp of `line`, if it has one.
fn remember_wall(prev: &mut Vec<u8>, line: &[u8]) {
    if let Some(w) = prefix::parse(lines::trim_cr(line)).wall {
        prev.clear();
        prev.extend_from_slice(w);
    }
}

/// A crash prompt, or the `PID: … COMMAND: "…"` header crash prints for every task.
fn looks_like_crash_session(chunk: &[u8]) -> bool {
    memchr::memmem::find(chunk, b"crash> ").is_some()
        || memchr::memmem::find(chunk, b"COMMAND: \"")
            .is_some_and(|i| chunk[..i].ends_with(b" ") && memchr::memmem::find(chunk, b"TASK: ").is_some())
}

fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let odd = head.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b)).count();
    odd * 10 > head.len()
}

/// Sets the event's title and the function it blames. A crash `bt` (frames with stack
/// pointers) prints the interrupt and NMI stacks first: the title reads the interrupted
/// task's frames, as the kernel's own report would show them.
pub fn set_title(e: &mut Event) {
    let from_crash = e.stack.iter().any(|f| f.stack_pointer.is_some());
    let full = from_crash.then(|| {
        let task_frames =
            e.stack.iter().filter(|f| f.context == lockscope_facts::FrameContext::Task).cloned().collect();
        std::mem::replace(&mut e.stack, task_frames)
    });
    match title_kind(e) {
        // A crash session's `bt` is whole: no frame to blame is not a corrupted report.
        Some(k) if from_crash => {
            e.guilty = title::guilty_frame(k, &e.stack);
            e.title = match &e.guilty {
                Some(g) => title::title_with(k, Some(g)),
                None => k.family().to_string(),
            };
        }
        Some(k) => {
            let t = title::titled(k, &e.stack);
            (e.title, e.guilty, e.alt_titles) = (t.title, t.guilty, t.alt_titles);
        }
        None => {
            e.title = title_of(e);
            e.guilty = None;
        }
    }
    if let Some(stack) = full {
        e.stack = stack;
    }
}

fn title_kind(e: &Event) -> Option<title::TitleKind> {
    use title::TitleKind;
    match e.kind {
        EventKind::SoftLockup => Some(TitleKind::SoftLockup),
        EventKind::RcuStall => Some(TitleKind::RcuStall),
        EventKind::HungTask if e.subkind == Some(lockscope_facts::Subkind::CantDie) => Some(TitleKind::TaskCantDie),
        EventKind::HungTask => Some(TitleKind::HungTask),
        EventKind::HardLockup => Some(TitleKind::HardLockup),
        _ => None,
    }
}

/// syzkaller-compatible titles for lockups, the report headline for the rest.
pub fn title_of(e: &Event) -> String {
    if let Some(k) = title_kind(e) {
        return title::lockup_title(k, &e.stack);
    }
    match e.kind {
        EventKind::WorkqueueLockup => "BUG: workqueue lockup".to_string(),
        EventKind::CsdLockTimeout => match e.csd.as_ref().and_then(|c| c.target_cpu) {
            Some(t) => format!(
                "csd: non-responsive CSD lock: CPU {} waits for CPU {t}",
                e.cpu.map_or("?".into(), |c| c.to_string())
            ),
            None => "csd: non-responsive CSD lock".to_string(),
        },
        EventKind::NmiBacktrace => format!("NMI backtrace for cpu {}", e.cpu.map_or("?".into(), |c| c.to_string())),
        EventKind::Panic => format!("Kernel panic - not syncing: {}", e.message.as_deref().unwrap_or("")),
        _ => e.headline.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_longer_than_max_line_are_cut_and_counted() {
        // 2 MiB: shorter than the reader's buffer, so handed out whole; the trigger lies
        // past the cut.
        let mut data = vec![b'x'; 2 << 20];
        data.extend_from_slice(b" watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [a:1]\n");
        data.extend_from_slice(b"[ 1.0] ok\n");
        let s = Scanner::new().scan(0, "t", &data[..]).unwrap();
        assert_eq!((s.info.lines, s.info.truncated_lines), (2, 1));
        assert!(s.events.is_empty());
    }

    #[test]
    fn hardware_lines_without_other_trigger_words() {
        let log = "[ 1.0] mce: CMCI storm detected: switching to poll mode\n\
                   [ 2.0] pcieport 0000:00:1c.0: DPC: containment event, status:0x1f01 source:0x0000\n\
                   [ 3.0] pcieport 0000:00:03.0: PCIe Bus Error: severity=Corrected, type=Physical Layer\n\
                   [ 4.0] MCE 0x8a398a: dirty LRU page recovery: Recovered\n";
        let s = Scanner::new().scan(0, "t", log.as_bytes()).unwrap();
        let sources: Vec<&str> = s.events.iter().filter_map(|e| e.hardware.as_ref()).map(|h| &*h.source).collect();
        assert_eq!(sources, ["mce", "dpc", "aer", "memory_failure"]);
    }
}
