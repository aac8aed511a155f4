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

mod events;

use aho_corasick::AhoCorasick;
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
}

/// Everything one input gave.
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
    pub fn scan<R: Read>(&self, source: usize, name: &str, reader: R) -> io::Result<SourceScan> {
        let mut rd = lines::ChunkReader::new(reader);
        let mut parser = events::Parser::new(source);
        let mut info = SourceInfo { name: name.to_string(), ..Default::default() };
        let mut lineno: u64 = 0;
        let mut first = true;
        let mut last_line: Vec<u8> = Vec::new();
        let mut prev_wall: Vec<u8> = Vec::new();
        while let Some(chunk) = rd.next_chunk()? {
            if first {
                info.binary = looks_binary(&chunk[..chunk.len().min(4096)]);
                first = false;
            }
            let mut pos = 0;
            while pos < chunk.len() {
                let rest = &chunk[pos..];
                if parser.idle() {
                    // Skip straight to the line holding the next trigger.
                    match self.triggers.find(rest) {
                        None => {
                            lineno += memchr::memchr_iter(b'\n', rest).count() as u64;
                            lineno += u64::from(!rest.ends_with(b"\n"));
                            break;
                        }
                        Some(m) => {
                            let start = memchr::memrchr(b'\n', &rest[..m.start()]).map_or(0, |i| i + 1);
                            lineno += memchr::memchr_iter(b'\n', &rest[..start]).count() as u64;
                            if start > 0 {
                                // The skipped line right before: when the log went silent, if
                                // this trigger is a boot banner.
                                let before = &rest[..start - 1];
                                let b = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
                                remember_wall(&mut prev_wall, &before[b..]);
                            }
                            pos += start;
                        }
                    }
                }
                let rest = &chunk[pos..];
                let (line, next) = match memchr::memchr(b'\n', rest) {
                    Some(i) => (&rest[..i], pos + i + 1),
                    None => (rest, chunk.len()),
                };
                lineno += 1;
                let line = lines::trim_cr(line);
                let rec = prefix::parse(line);
                if rec.text.starts_with(b"Linux version ") && !prev_wall.is_empty() {
                    info.boot_ends.push(String::from_utf8_lossy(&prev_wall).into_owned());
                }
                if let Some(w) = rec.wall {
                    prev_wall.clear();
                    prev_wall.extend_from_slice(w);
                }
                let has_trigger = self.triggers.is_match(rec.text);
                parser.line(lineno, &rec, has_trigger);
                pos = next;
            }
            let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            let tail = &body[memchr::memrchr(b'\n', body).map_or(0, |i| i + 1)..];
            last_line.clear();
            last_line.extend_from_slice(lines::trim_cr(tail));
            remember_wall(&mut prev_wall, &last_line);
        }
        info.bytes = rd.bytes_read;
        info.truncated_lines = rd.truncated_lines;
        info.lines = lineno;
        let rec = prefix::parse(&last_line);
        info.last_time = rec.time;
        info.last_wall = rec.wall.map(|w| String::from_utf8_lossy(w).into_owned());
        info.boots = parser.boots;
        info.releases = std::mem::take(&mut parser.releases);
        info.hosts = std::mem::take(&mut parser.host_names);
        let held_locks = std::mem::take(&mut parser.held);
        let events = parser.finish();
        Ok(SourceScan { info, events, held_locks })
    }
}

/// Keeps the wall-clock stamp of `line`, if it has one.
fn remember_wall(prev: &mut Vec<u8>, line: &[u8]) {
    if let Some(w) = prefix::parse(lines::trim_cr(line)).wall {
        prev.clear();
        prev.extend_from_slice(w);
    }
}

fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let odd = head.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b)).count();
    odd * 10 > head.len()
}

/// syzkaller-compatible titles for lockups, the report headline for the rest.
pub fn title_of(e: &Event) -> String {
    use title::TitleKind;
    let kind = match e.kind {
        EventKind::SoftLockup => Some(TitleKind::SoftLockup),
        EventKind::RcuStall => Some(TitleKind::RcuStall),
        EventKind::HungTask if e.subkind.as_deref() == Some("cant_die") => Some(TitleKind::TaskCantDie),
        EventKind::HungTask => Some(TitleKind::HungTask),
        EventKind::HardLockup => Some(TitleKind::HardLockup),
        _ => None,
    };
    if let Some(k) = kind {
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
