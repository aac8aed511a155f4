//! The report state machine: turns prefixed lines into [`Event`]s. Reports are kept apart
//! per printing context (printk caller id, else syslog host), so lines of two CPUs'
//! reports interleaved on one console still land in the right report.

use crate::headers::{self, Headline, Opening};
use crate::prefix::{Caller, Record};
use crate::stack::{self, Marker, RegLine, TraceLine};
use crate::title::{self, TitleKind};
use lockscope_facts::{
    BlockedOn, CsdWait, Event, EventKind, Frame, FrameContext, HeldLock, HeldLocks, LineRange, RcuStall, Subkind,
    TaskRef,
};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// FxHash (rustc's): the open-report map is looked up several times per line with a tiny
/// key, where SipHash showed in profiles.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Unrelated lines tolerated inside a report before it is considered over.
const MAX_GAP: u32 = 3;

/// How far after its headline a trace may still give an RCU stall report its title.
const RCU_TITLE_LINES: u64 = 10_000;

/// How far after a stall report without a stack an NMI backtrace may still give it its
/// own (see [`link_rcu_to_nmi_backtraces`]).
const NMI_LINK_LINES: u64 = 3000;

/// How close to the first occurrence a repeat must be, in seconds (both time-stamped) or
/// lines: well inside what diagnosis counts as one incident (900 s, 5000 lines), so that a
/// repeat and the occurrence holding its stack always land in the same incident.
const REPEAT_WINDOW_S: f64 = 600.0;
const REPEAT_WINDOW_LINES: u64 = 3000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
struct Key {
    /// Index in [`Parser::host_names`].
    host: Option<usize>,
    caller: Option<Caller>,
}

/// Where the frames of the trace being printed go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    /// The report's event.
    Target,
    /// A task dumped inside the report (a 6.x lock owner): `blocked_on.owner_stack`.
    Owner,
    /// A dump that is part of the report but about nobody it names (the RCU grace-period
    /// kthread): kept out of every event, seen only when choosing the report's title.
    Aside,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regs {
    Open,
    Collecting,
    Done,
}

/// Where the lines after a header go.
#[derive(Debug)]
struct Report {
    /// Event receiving frames and registers.
    target: Option<usize>,
    /// A second event sharing the same trace (a panic that is also the hard-lockup report).
    twin: Option<usize>,
    /// All events opened by this report (one per stalled CPU for RCU).
    members: Vec<usize>,
    ctx: FrameContext,
    gap: u32,
    regs: Regs,
    dest: Dest,
    held: Option<usize>,
    /// Frames of the trace being printed, in printed order, `RIP:` frames included; kept
    /// only while an RCU stall report waits for its title trace.
    seg: Vec<Frame>,
    /// Indices in `seg` of the frames that came from `RIP:`/`pc :` lines.
    seg_rips: Vec<usize>,
    /// The caller of the last arm32 `(f) from (caller)` line: printed again as the next
    /// line's function.
    pair_caller: Option<String>,
    /// The last line was `Modules linked in:` or one of its continuation lines (a long
    /// module list printed over several lines, each starting with a blank).
    modules: bool,
}

impl Report {
    fn new() -> Report {
        Report {
            target: None,
            twin: None,
            members: Vec::new(),
            ctx: FrameContext::Task,
            gap: 0,
            regs: Regs::Open,
            dest: Dest::Target,
            held: None,
            seg: Vec::new(),
            seg_rips: Vec::new(),
            pair_caller: None,
            modules: false,
        }
    }
}

/// An RCU stall report whose title is not known yet. syzkaller titles an RCU stall after
/// the first trace of the report that passes through a timer-interrupt entry
/// (`apic_timer_interrupt`, `el1h_64_irq`, arm32 `__irq_svc`), read from that entry on:
/// the code the timer interrupted. That is often not the stalled CPU's own trace (a
/// grace-period kthread dump or another CPU's NMI backtrace may come first, or a warning
/// printed inside the report), so the choice is made here, over all traces of the
/// report's extent, while they are printed.
///
/// The extent: with printk caller ids, every later line of the headline's caller, and,
/// after `Sending NMI from CPU`, of any CPU context (the NMI backtraces print from their
/// own CPU); without caller ids, every line up to the next report headline (a panic or
/// an NMI backtrace does not end it).
#[derive(Debug)]
struct RcuTitle {
    key: Key,
    members: Vec<usize>,
    any_cpu: bool,
    first_line: u64,
}

impl RcuTitle {
    fn covers(&self, key: &Key) -> bool {
        key.host == self.key.host
            && match (self.key.caller, key.caller) {
                (None, _) => true,
                (Some(a), Some(b)) if a == b => true,
                (Some(_), Some(Caller::Cpu(_))) => self.any_cpu,
                _ => false,
            }
    }
}

/// A timer-interrupt entry syzkaller sees: printed reliable and with an offset (an inlined
/// `instr_sysvec_apic_timer_interrupt` is not a frame to it).
fn is_interrupt_entry(f: &Frame) -> bool {
    f.reliable && !title::is_inline(f) && title::is_interrupt_entry(title::base_name(&f.function))
}

/// A trace as syzkaller reads it for an RCU stall title, if it passes through a
/// timer-interrupt entry: from the entry, it skips to the next `RIP:` line (the interrupted
/// code) and reads on from there; the frames in between are dropped. They are normally
/// none, but on a console that interleaves two CPUs' traces they belong to the other CPU
/// (syzkaller corpus file 493). `rips` are the indices of the `RIP:` frames in `seg`.
fn rcu_title_trace(seg: &[Frame], rips: &[usize]) -> Option<Vec<Frame>> {
    let entry = seg.iter().position(is_interrupt_entry)?;
    let mut trace = seg[..=entry].to_vec();
    let from = rips.iter().copied().find(|&i| i > entry).unwrap_or(entry + 1);
    trace.extend_from_slice(&seg[from..]);
    Some(trace)
}

/// Lines that start a new trace (syzkaller's stack-start lines).
fn is_stack_start(t: &str) -> bool {
    t.starts_with("Call Trace")
        || t.starts_with("Call trace")
        || t.starts_with("Backtrace:")
        || t.starts_with("Allocated by task")
        || t.starts_with("Freed by task")
        || (t.contains(" backtrace:") && !t.contains("stack backtrace:"))
}

#[derive(Default, Debug, Clone)]
struct HostState {
    boot: u32,
    release: Option<String>,
}

pub struct Parser {
    source: usize,
    pub events: Vec<Event>,
    pub held: Vec<HeldLocks>,
    open: FxMap<Key, Report>,
    hosts: FxMap<Option<usize>, HostState>,
    pub boots: u32,
    pub releases: Vec<String>,
    pub host_names: Vec<String>,
    rcu_titles: Vec<RcuTitle>,
    /// Events whose title was decided while parsing (RCU stalls).
    titled: Vec<bool>,
    /// An `INFO: task COMM` line whose comm held a newline: the rest of the headline
    /// (`COMM:PID blocked for more than N seconds.`) is on the next line.
    split_head: Option<(Key, u64, String)>,
    /// The previous kernel line's number and key: a line with no prefix of its own right
    /// after it continues it (a long line wrapped by mail or a bug tracker).
    last_line: Option<(u64, Key)>,
    /// The previous kernel line's text (to read a line wrapped onto the next whole).
    /// (its number, its key, its text; the buffer is reused, as every line passes here).
    last_text: (u64, Key, String),
    /// The line being parsed.
    lineno: u64,
    /// Events opened by a register dump whose headline is missing (a log cut, or a quote
    /// that kept only the `CPU: N PID: N Comm: X` part): merged into the report they belong
    /// to at the end, never output on their own.
    orphans: Vec<usize>,
    /// Events before this index were offered to [`Parser::settle`]: compacted, unless an
    /// open report still referred to them (then they wait in `unsettled`).
    settled: usize,
    unsettled: Vec<usize>,
    /// First occurrences by the hash of their repeat key: the latest one of each key.
    firsts: HashMap<u64, Vec<usize>>,
    /// Switched-out tasks' traces (a crash `foreach bt`) by stack: tasks sharing one trace
    /// keep it once.
    shared_stacks: HashMap<u64, Vec<usize>>,
    /// Compacted repeats that had registers before (they do not lack them for
    /// [`Parser::merge_orphans`]).
    repeats_with_regs: HashSet<usize>,
    /// Settled RCU stall events without a stack, which may still take the stack of a
    /// nearby NMI backtrace at the end: those backtraces are kept whole.
    bare_rcu: Vec<usize>,
}

/// Borrowed when valid UTF-8 (nearly always: `from_utf8` checks that faster than
/// `from_utf8_lossy` does).
fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(b),
    }
}

impl Parser {
    pub fn new(source: usize) -> Parser {
        Parser {
            source,
            events: Vec::new(),
            held: Vec::new(),
            open: FxMap::default(),
            hosts: FxMap::default(),
            boots: 0,
            releases: Vec::new(),
            host_names: Vec::new(),
            rcu_titles: Vec::new(),
            titled: Vec::new(),
            split_head: None,
            last_line: None,
            last_text: (u64::MAX, Key::default(), String::new()),
            lineno: 0,
            orphans: Vec::new(),
            settled: 0,
            unsettled: Vec::new(),
            firsts: HashMap::new(),
            shared_stacks: HashMap::new(),
            repeats_with_regs: HashSet::new(),
            bare_rcu: Vec::new(),
        }
    }

    /// No report is open: the scanner may skip to the next trigger.
    pub fn idle(&self) -> bool {
        self.open.is_empty()
    }

    /// Feeds one line. `has_trigger` says whether the line holds one of the headline
    /// triggers (the caller found out with the pre-filter).
    pub fn line(&mut self, lineno: u64, rec: &Record<'_>, has_trigger: bool) {
        if !rec.kernel {
            return;
        }
        self.lineno = lineno;
        let (key, bare) = self.source_key(lineno, rec);
        let text = lossy(rec.text);
        if self.joins_split_headline(lineno, rec, key, &text, has_trigger)
            || self.completes_wrapped_headline(lineno, rec, &key, &text)
            || self.reads_wrapped_task_line(lineno, rec, key, bare, &text)
        {
            return;
        }
        if has_trigger {
            if let Some(h) = headers::parse_headline(&text) {
                self.headline(lineno, rec, key, &text, h);
                return;
            }
            if headers::is_split_task_headline(&text) {
                self.split_head = Some((key, lineno, text.trim_end().to_string()));
            }
        }
        // Every line `classify_hardware_line` accepts holds a trigger (`headers::TRIGGERS`).
        if has_trigger && let Some(hw) = crate::hardware::classify_hardware_line(&text) {
            self.hardware(lineno, rec, key, &text, hw);
            return;
        }
        if has_trigger && !self.open.contains_key(&key) {
            self.maybe_open_orphan(lineno, rec, &key, &text);
        }
        if self.open.contains_key(&key) {
            self.continuation(lineno, &key, &text);
        }
    }

    /// A `CPU: N PID: P Comm: X` line inside the report of `target` (and its `twin`).
    fn cpu_line(&mut self, key: &Key, target: usize, twin: Option<usize>, lineno: u64, cl: &headers::CpuLine) {
        // A new CPU's dump (`CPU: N PID: ...`) starts a new trace.
        self.end_trace(key);
        for i in [Some(target), twin].into_iter().flatten() {
            let e = &mut self.events[i];
            e.reporter_cpu = cl.cpu;
            e.taint = cl.taint.clone().or(e.taint.take());
            e.release = cl.release.clone().or(e.release.take());
            // Who runs on the CPU a report is about (NMI backtrace, panic, self-detected stall).
            if e.task.is_none() && (e.cpu.is_none() || cl.cpu.is_none() || e.cpu == cl.cpu) {
                e.task = cl.task.clone();
            }
            if e.cpu.is_none() && matches!(e.kind, EventKind::Panic | EventKind::Oops | EventKind::Warning) {
                e.cpu = cl.cpu;
            }
            e.lines.last = lineno;
        }
        if let (Some(cpu), Some(task)) = (cl.cpu, cl.task.as_ref()) {
            self.name_task_on_cpu(target, cpu, task, lineno);
        }
        // The report's own CPU after another CPU's task dump: its trace is the event's.
        let own = cl.cpu.is_some() && self.events[target].cpu == cl.cpu;
        if let Some(r) = self.open.get_mut(key).filter(|r| own && r.dest == Dest::Aside) {
            r.dest = Dest::Target;
        }
    }

    /// Whose line this is, and whether it has no prefix at all: a bare line right after a
    /// prefixed one continues it (a long line wrapped by mail or a bug tracker), so it takes
    /// that line's source.
    fn source_key(&mut self, lineno: u64, rec: &Record<'_>) -> (Key, bool) {
        let host = rec.host.map(|h| self.host_id(h));
        let mut key = Key { host, caller: rec.caller };
        let bare = rec.time.is_none() && rec.wall.is_none() && rec.host.is_none() && rec.caller.is_none();
        if let Some((l, k)) = self.last_line
            && bare
            && l + 1 == lineno
        {
            key = k;
        }
        self.last_line = Some((lineno, key));
        (key, bare)
    }

    /// The second half of a headline split in two by a newline in a comm (`INFO: task`),
    /// read with its first.
    fn joins_split_headline(&mut self, lineno: u64, rec: &Record<'_>, key: Key, text: &str, trigger: bool) -> bool {
        let Some((k, l, head)) = self.split_head.take() else { return false };
        if k != key || l + 1 != lineno || !trigger {
            return false;
        }
        let joined = format!("{head} {}", text.trim_start());
        let Some(h @ Headline::Open(_)) = headers::parse_headline(&joined) else { return false };
        let n = self.events.len();
        self.headline(lineno, rec, key, &joined, h);
        for e in &mut self.events[n..] {
            e.lines.first = l;
        }
        true
    }

    /// A task line wrapped after its first fields (`kworker/1:1  R  running task  0  29  2`
    /// / `0x0000000a`), read whole. Only a line with a prefix of its own is known to be cut
    /// by a wrap; its end may also come glued before the next record's time stamp. True
    /// when the line was that end and nothing else.
    fn reads_wrapped_task_line(&mut self, lineno: u64, rec: &Record<'_>, key: Key, bare: bool, text: &str) -> bool {
        let head = lossy(rec.glued_head);
        let tail = if bare { text } else { head.as_ref() };
        let joined = (!tail.trim().is_empty()
            && self.last_text.0.wrapping_add(1) == lineno
            && self.last_text.1 == key
            && self.open.contains_key(&key)
            && headers::parse_task_line(&self.last_text.2).is_none())
        .then(|| format!("{} {}", self.last_text.2, tail.trim()));
        // Kept only inside a report (where a task line can be cut): every line passes here.
        if !bare && self.open.contains_key(&key) {
            let (l, k, t) = &mut self.last_text;
            (*l, *k) = (lineno, key);
            t.clear();
            t.push_str(text.trim_end());
        }
        match joined.filter(|j| headers::parse_task_line(j).is_some()) {
            Some(joined) => {
                self.continuation(lineno, &key, &joined);
                bare
            }
            None => false,
        }
    }

    /// The CSD lock timeout of this boot and host that CPU `cpu` reported, waiting for
    /// `target`, not long before: what a `Continued` or `got unstuck` line is about.
    fn csd_wait_of(&self, key: &Key, lineno: u64, cpu: Option<u32>, target: Option<u32>) -> Option<usize> {
        const RECENT_LINES: u64 = 3000;
        let (boot, host) = (self.host_state(key.host).boot, self.host_name(key.host));
        self.recent_events(lineno, RECENT_LINES).find(|&i| {
            let e = &self.events[i];
            e.kind == EventKind::CsdLockTimeout
                && (e.boot, &e.host) == (boot, &host)
                && e.cpu == cpu
                && e.csd.as_ref().is_some_and(|c| c.target_cpu == target && !c.unstuck)
        })
    }

    /// Indices of the events opened fewer than `lines` lines before `lineno`, newest
    /// first: a look back that stops there, so that lines which find nothing stay cheap.
    fn recent_events(&self, lineno: u64, lines: u64) -> impl Iterator<Item = usize> + '_ {
        self.events.iter().enumerate().rev().take_while(move |(_, e)| e.lines.first + lines >= lineno).map(|(i, _)| i)
    }

    /// A self-detected stall's detail line (`2-...!: (137 ticks this GP)`) printed after
    /// another report opened on the same console (no caller ids) and ended its report:
    /// the stall of this boot and host just before, still without a CPU, is on that CPU.
    fn late_rcu_detail(&mut self, lineno: u64, key: &Key, time: Option<f64>, cpu: u32, detail: &str) {
        const RECENT_LINES: u64 = 100;
        const RECENT_S: f64 = 30.0;
        let (boot, host) = (self.host_state(key.host).boot, self.host_name(key.host));
        let found = self.recent_events(lineno, RECENT_LINES).find(|&i| {
            let e = &self.events[i];
            e.kind == EventKind::RcuStall
                && e.boot == boot
                && e.host == host
                && e.cpu.is_none()
                && e.rcu.as_ref().is_some_and(|r| r.form == "self_detected" && r.detail.is_none())
                && match (e.time, time) {
                    (Some(a), Some(b)) => (0.0..RECENT_S).contains(&(b - a)),
                    _ => true,
                }
        });
        let Some(i) = found else { return };
        let e = &mut self.events[i];
        e.cpu = Some(cpu);
        if let Some(rcu) = e.rcu.as_mut() {
            rcu.detail = Some(detail.trim().to_string());
        }
    }

    /// A `CPU: N PID: P Comm: C` line printed inside another report (a CSD waiter's own
    /// stack after the target's NMI backtrace, a stalled CPU's after the detector's) names
    /// the task on CPU N: a lockup event about CPU N just before, still without a task,
    /// takes it.
    fn name_task_on_cpu(&mut self, target: usize, cpu: u32, task: &TaskRef, lineno: u64) {
        const RECENT_LINES: u64 = 300;
        let (boot, host) = (self.events[target].boot, self.events[target].host.clone());
        let found = self
            .events
            .iter()
            .rposition(|e| e.lines.first + RECENT_LINES < lineno || e.cpu == Some(cpu) && e.kind.is_lockup())
            .filter(|&i| {
                let e = &self.events[i];
                i != target
                    && e.cpu == Some(cpu)
                    && e.task.is_none()
                    && e.boot == boot
                    && e.host == host
                    && matches!(e.kind, EventKind::CsdLockTimeout | EventKind::SoftLockup | EventKind::HardLockup)
            });
        if let Some(i) = found {
            self.events[i].task = Some(task.clone());
        }
    }

    /// A headline wrapped onto the next line, as mail and bug trackers wrap long lines
    /// (`BUG: soft lockup - CPU#45 stuck for 134s!` / `[kworker/u258:1:26886]`): the line
    /// right after a report's headline, without the time stamp the headline has, is read
    /// with it, and fills what the headline lacked (CPU, task, duration).
    fn completes_wrapped_headline(&mut self, lineno: u64, rec: &Record<'_>, key: &Key, text: &str) -> bool {
        let Some(t) = self.open.get(key).and_then(|r| r.target) else { return false };
        let e = &self.events[t];
        let bare = rec.time.is_none() && rec.wall.is_none() && rec.host.is_none();
        // Without time stamps to tell, a task bracket left open says the line was cut.
        let headline_prefixed =
            e.time.is_some() || e.wall_time.is_some() || e.headline.rfind('[') > e.headline.rfind(']');
        if e.lines.first + 1 != lineno || e.lines.last != e.lines.first || !headline_prefixed || !bare {
            return false;
        }
        let joined = format!("{} {}", e.headline, text.trim());
        let Some(Headline::Open(o)) = headers::parse_headline(&joined) else { return false };
        if o.kind != Some(e.kind) {
            return false;
        }
        // An RCU headline's CPU list (`{ 10-... }`): its first CPU.
        let cpu = o.cpu.or(o.cpus.first().copied());
        let fills = e.cpu.is_none() && cpu.is_some()
            || e.task.is_none() && o.task.is_some()
            || e.duration_s.is_none() && o.duration_s.is_some();
        if !fills {
            return false;
        }
        let e = &mut self.events[t];
        e.cpu = e.cpu.or(cpu);
        e.task = e.task.take().or(o.task);
        e.duration_s = e.duration_s.or(o.duration_s);
        e.headline = joined;
        e.lines.last = lineno;
        true
    }

    /// The index of a syslog host name in `host_names`, added when new.
    fn host_id(&mut self, name: &[u8]) -> usize {
        let name = lossy(name);
        match self.host_names.iter().position(|h| *h == name) {
            Some(i) => i,
            None => {
                self.host_names.push(name.into_owned());
                self.host_names.len() - 1
            }
        }
    }

    fn host_name(&self, host: Option<usize>) -> Option<String> {
        host.map(|h| self.host_names[h].clone())
    }

    fn host_state(&self, host: Option<usize>) -> HostState {
        self.hosts.get(&host).cloned().unwrap_or_default()
    }

    fn new_event(&mut self, kind: EventKind, lineno: u64, rec: &Record<'_>, key: &Key, headline: &str) -> usize {
        let hs = self.host_state(key.host);
        let mut e = Event::new(kind, headline.trim(), LineRange { source: self.source, first: lineno, last: lineno });
        e.time = rec.time;
        e.wall_time = rec.wall.map(|w| lossy(w).into_owned());
        e.host = self.host_name(key.host);
        e.boot = hs.boot;
        e.release = hs.release;
        e.caller = rec.caller.map(|c| c.to_string());
        self.events.push(e);
        self.events.len() - 1
    }

    /// Ends the report open for `key`, if any.
    fn close(&mut self, key: &Key) {
        if let Some(mut r) = self.open.remove(key) {
            if let Some(t) = r.target {
                detector_in_crash_bt(&mut self.events[t]);
            }
            self.offer_trace(key, std::mem::take(&mut r.seg), std::mem::take(&mut r.seg_rips));
            self.settle(&r);
        }
    }

    /// `closed` just ended: compacts the events no open report refers to any more (those
    /// of a report that stays open wait, without holding back the others).
    fn settle(&mut self, closed: &Report) {
        for i in [closed.target, closed.twin].into_iter().flatten().chain(closed.members.iter().copied()) {
            if let Some(k) = self.unsettled.iter().position(|&u| u == i)
                && !self.in_open_report(i)
            {
                self.unsettled.remove(k);
                self.compact(i);
            }
        }
        while self.settled < self.events.len() {
            let i = self.settled;
            self.settled += 1;
            if self.orphans.binary_search(&i).is_ok() {
                // Headless dumps are merged at the end, whole.
            } else if self.in_open_report(i) {
                self.unsettled.push(i);
            } else {
                self.compact(i);
            }
        }
    }

    fn in_open_report(&self, i: usize) -> bool {
        self.open.values().any(|r| r.target == Some(i) || r.twin == Some(i) || r.members.contains(&i))
    }

    /// Repeat compaction: a report saying again what an earlier one of the same source,
    /// host and boot said shortly before (same kind, subkind, CPU, task and reliable
    /// frames, registers or not) keeps its own headline, time, lines and duration, but
    /// drops its stack and registers and points at the first occurrence (`repeat_of`).
    /// This is what keeps memory from growing with every report of a lockup that lasts.
    fn compact(&mut self, i: usize) {
        // The stack grew by doubling: give back the spare room of what is kept.
        self.events[i].stack.shrink_to_fit();
        let e = &self.events[i];
        if e.kind == EventKind::RcuStall && e.stack.is_empty() && e.cpu.is_some() {
            self.bare_rcu.push(i);
            return;
        }
        if e.kind == EventKind::NmiBacktrace {
            // Events come in line order: stall reports too far back for the earliest event
            // still to compact are too far for every one. Those still open may end bare.
            let events = &self.events;
            let low = self.unsettled.iter().map(|&u| events[u].lines.first).fold(e.lines.first, u64::min);
            self.bare_rcu.retain(|&r| events[r].lines.last + NMI_LINK_LINES >= low);
            let open_rcu = self.unsettled.iter().filter(|&&u| events[u].kind == EventKind::RcuStall);
            if self.bare_rcu.iter().chain(open_rcu).any(|&r| {
                let s = &events[r];
                r < i
                    && s.lines.last + NMI_LINK_LINES >= e.lines.first
                    && s.cpu == e.cpu
                    && s.boot == e.boot
                    && s.host == e.host
            }) {
                return;
            }
        }
        if !e.reliable_frames().any(|_| true) {
            return;
        }
        if e.kind == EventKind::NmiBacktrace && e.cpu.is_none() && e.registers.is_none() {
            self.share_stack(i);
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        repeat_key(e).hash(&mut h);
        let firsts = self.firsts.entry(h.finish()).or_default();
        let same = firsts.iter_mut().find(|o| repeat_key(&self.events[**o]) == repeat_key(e));
        let Some(first) = same else {
            firsts.push(i);
            return;
        };
        if *first > i {
            // Settled out of order (its report stayed open): both stay whole.
            return;
        }
        let o = &self.events[*first];
        let near = match (o.time, e.time) {
            (Some(a), Some(b)) => (b - a).abs() <= REPEAT_WINDOW_S,
            _ => e.lines.first.saturating_sub(o.lines.last) <= REPEAT_WINDOW_LINES,
        };
        if !near {
            // Too far from the first occurrence: a first occurrence of its own.
            *first = i;
            return;
        }
        let first = *first;
        // The title comes from the stack: set it now, unless an RCU stall report's title is
        // still to be decided from a later trace.
        let pending = self.rcu_titles.iter().any(|p| p.members.contains(&i));
        if !self.titled.get(i).copied().unwrap_or(false) && !pending {
            let e = &mut self.events[i];
            mark_arm64_irq_frames(&mut e.stack);
            crate::set_title(e);
            self.mark_titled(i);
        }
        let e = &mut self.events[i];
        if e.registers.take().is_some() {
            self.repeats_with_regs.insert(i);
        }
        e.stack = Vec::new();
        e.repeat_of = Some(first);
    }

    /// A task's trace identical to an earlier task's (same frames, same boot and host):
    /// titled now, its stack dropped for the first one's (`repeat_of`). Thousands of idle
    /// workers in a `foreach bt` then cost one stack.
    fn share_stack(&mut self, i: usize) {
        type Key<'e> = (u32, Option<&'e str>, Vec<(&'e str, Option<u64>, bool)>);
        fn key(e: &Event) -> Key<'_> {
            let frames = e.stack.iter().map(|f| (f.function.as_str(), f.offset, f.reliable)).collect();
            (e.boot, e.host.as_deref(), frames)
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key(&self.events[i]).hash(&mut h);
        let slot = self.shared_stacks.entry(h.finish()).or_default();
        let Some(&first) = slot.iter().find(|&&o| key(&self.events[o]) == key(&self.events[i])) else {
            slot.push(i);
            return;
        };
        if !self.titled.get(i).copied().unwrap_or(false) {
            crate::set_title(&mut self.events[i]);
            self.mark_titled(i);
        }
        let e = &mut self.events[i];
        e.stack = Vec::new();
        e.repeat_of = Some(first);
    }

    fn mark_titled(&mut self, i: usize) {
        if self.titled.len() <= i {
            self.titled.resize(i + 1, false);
        }
        self.titled[i] = true;
    }

    /// Whether event `i` has (or, compacted, had) registers.
    fn had_registers(&self, i: usize) -> bool {
        self.events[i].registers.is_some() || self.repeats_with_regs.contains(&i)
    }

    /// Opens `r` for `key`, ending the report open there before.
    fn install(&mut self, key: Key, r: Report) {
        self.close(&key);
        self.open.insert(key, r);
    }

    /// Ends the trace being printed in the report open for `key`.
    fn end_trace(&mut self, key: &Key) {
        if self.rcu_titles.is_empty() {
            return;
        }
        if let Some(r) = self.open.get_mut(key) {
            let seg = std::mem::take(&mut r.seg);
            let rips = std::mem::take(&mut r.seg_rips);
            self.offer_trace(key, seg, rips);
        }
    }

    /// A trace printed under `key` is over: the first one with a timer-interrupt entry in
    /// an RCU stall report's extent gives the report its title.
    fn offer_trace(&mut self, key: &Key, seg: Vec<Frame>, rips: Vec<usize>) {
        if seg.is_empty() || !self.rcu_titles.iter().any(|p| p.covers(key)) {
            return;
        }
        let Some(trace) = rcu_title_trace(&seg, &rips) else {
            return;
        };
        let now = self.lineno;
        self.end_rcu_titles(|p| p.first_line + RCU_TITLE_LINES < now);
        let t = title::titled(TitleKind::RcuStall, &trace);
        let mut i = 0;
        while i < self.rcu_titles.len() {
            if self.rcu_titles[i].covers(key) {
                let p = self.rcu_titles.remove(i);
                self.set_titles(&p.members, &t);
            } else {
                i += 1;
            }
        }
    }

    fn set_titles(&mut self, members: &[usize], t: &title::Titled) {
        for &m in members {
            let e = &mut self.events[m];
            (e.title, e.guilty, e.alt_titles) = (t.title.clone(), t.guilty.clone(), t.alt_titles.clone());
            self.mark_titled(m);
        }
    }

    /// RCU stall reports whose extent ends without a trace through a timer interrupt are
    /// titled `in corrupted`, as syzkaller does. `ends` says which pending reports end.
    fn end_rcu_titles(&mut self, ends: impl Fn(&RcuTitle) -> bool) {
        let corrupted = title::Titled {
            title: title::title_with(TitleKind::RcuStall, None),
            guilty: None,
            alt_titles: title::alt_titles(TitleKind::RcuStall, None),
        };
        let mut i = 0;
        while i < self.rcu_titles.len() {
            if ends(&self.rcu_titles[i]) {
                let p = self.rcu_titles.remove(i);
                self.set_titles(&p.members, &corrupted);
            } else {
                i += 1;
            }
        }
    }

    /// A copy of report member `first` for another stalled CPU or task of the same report.
    fn add_member(&mut self, key: &Key, first: usize, e: Event) -> usize {
        self.events.push(e);
        let i = self.events.len() - 1;
        if let Some(r) = self.open.get_mut(key) {
            r.members.push(i);
        }
        if self.titled.get(first).copied().unwrap_or(false) {
            let f = &self.events[first];
            let t =
                title::Titled { title: f.title.clone(), guilty: f.guilty.clone(), alt_titles: f.alt_titles.clone() };
            self.set_titles(&[i], &t);
        }
        for p in &mut self.rcu_titles {
            if p.members.contains(&first) {
                p.members.push(i);
            }
        }
        i
    }

    fn headline(&mut self, lineno: u64, rec: &Record<'_>, key: Key, text: &str, h: Headline) {
        match h {
            Headline::Boot { release } => {
                let hs = self.hosts.entry(key.host).or_default();
                hs.boot += 1;
                hs.release = Some(release.clone());
                self.boots += 1;
                if !self.releases.contains(&release) {
                    self.releases.push(release);
                }
                self.close(&key);
                let host = key.host;
                self.end_rcu_titles(|p| p.key.host == host);
            }
            Headline::Open(o) => self.open_report(lineno, rec, key, text, o),
            Headline::HardLockupLine { cpu } => {
                // Re-label the open `WARNING: at kernel/watchdog.c` report, or open one.
                let idx = self.open.get(&key).and_then(|r| r.target).filter(|&i| {
                    self.events[i].kind == EventKind::Warning
                        && self.events[i].subkind == Some(Subkind::HardLockupWarning)
                });
                match idx {
                    Some(i) => {
                        let e = &mut self.events[i];
                        e.kind = EventKind::HardLockup;
                        e.subkind = None;
                        e.cpu = cpu.or(e.cpu);
                        e.headline = text.trim().to_string();
                        e.lines.last = lineno;
                    }
                    None => {
                        let o = Opening { kind: Some(EventKind::HardLockup), cpu, ..Default::default() };
                        self.open_report(lineno, rec, key, text, o);
                    }
                }
            }
            h @ (Headline::RcuCpuDetail { .. }
            | Headline::RcuTaskDetail { .. }
            | Headline::RcuDetectedBy { .. }
            | Headline::RcuStarved { .. }) => self.rcu_headline(lineno, rec, key, h),
            Headline::TaskDumpForCpu(cpu) => {
                self.end_trace(&key);
                let Some(r) = self.open.get_mut(&key) else {
                    return;
                };
                r.gap = 0;
                r.dest = Dest::Target;
                r.regs = Regs::Open;
                r.ctx = FrameContext::Task;
                let target = r.members.iter().copied().find(|&i| self.events[i].cpu == Some(cpu));
                if target.is_some() {
                    r.target = target;
                } else if r.target.and_then(|t| self.events[t].cpu).is_some_and(|c| c != cpu) {
                    // Another CPU's task (a self-detected stall also dumps the CPUs it waits
                    // on): not the task of the report's CPU.
                    r.dest = Dest::Aside;
                }
            }
            Headline::BlockedOn { task, primitive, owner } => {
                let Some(r) = self.open.get_mut(&key) else {
                    return;
                };
                r.gap = 0;
                if let Some(t) = r.target {
                    let e = &mut self.events[t];
                    if e.task.as_ref().is_some_and(|et| et.pid == task.pid) {
                        e.blocked_on = Some(BlockedOn { primitive, owner, owner_stack: Vec::new(), owner_state: None });
                        e.lines.last = lineno;
                    }
                }
            }
            h @ (Headline::CsdFollowUp | Headline::CsdContinued { .. } | Headline::CsdUnstuck { .. }) => {
                self.csd_headline(lineno, rec, key, text, h)
            }
            Headline::LocksHeld { task } => {
                let hs = self.host_state(key.host);
                let host = self.host_name(key.host);
                self.held.push(HeldLocks {
                    task,
                    locks: Vec::new(),
                    lines: LineRange { source: self.source, first: lineno, last: lineno },
                    boot: hs.boot,
                    host,
                });
                let mut r = Report::new();
                r.held = Some(self.held.len() - 1);
                self.install(key, r);
            }
        }
    }

    /// The lines of an RCU stall report after its headline: per-CPU and per-task detail,
    /// `detected by`, the starved grace-period kthread.
    fn rcu_headline(&mut self, lineno: u64, rec: &Record<'_>, key: Key, h: Headline) {
        match h {
            Headline::RcuCpuDetail { cpu, detail } => {
                let Some(r) = self.open.get_mut(&key) else {
                    self.late_rcu_detail(lineno, &key, rec.time, cpu, &detail);
                    return;
                };
                r.gap = 0;
                let members = r.members.clone();
                let Some(&first) = members.first() else {
                    return;
                };
                if self.events[first].kind != EventKind::RcuStall {
                    self.late_rcu_detail(lineno, &key, rec.time, cpu, &detail);
                    return;
                }
                // The first detail line fills the headline's event; later ones get their own.
                let idx = if self.events[first].cpu.is_none() && self.events[first].task.is_none() {
                    first
                } else if let Some(&i) = members.iter().find(|&&i| self.events[i].cpu == Some(cpu)) {
                    i
                } else {
                    let mut e = self.events[first].clone();
                    e.lines.first = lineno;
                    e.stack.clear();
                    e.registers = None;
                    e.task = None;
                    self.add_member(&key, first, e)
                };
                let e = &mut self.events[idx];
                e.cpu = Some(cpu);
                e.lines.last = lineno;
                if let Some(rcu) = e.rcu.as_mut() {
                    rcu.detail = Some(detail.trim().to_string());
                    rcu.ticks_this_gp =
                        detail.split_once(": (").and_then(|(_, t)| t.split_whitespace().next()?.parse().ok());
                }
                if self.events[idx].rcu.as_ref().is_some_and(|r| r.form == "self_detected") {
                    self.open.get_mut(&key).unwrap().target = Some(idx);
                }
            }
            Headline::RcuTaskDetail { pid } => {
                let Some(r) = self.open.get_mut(&key) else {
                    return;
                };
                r.gap = 0;
                let Some(&first) = r.members.first() else {
                    return;
                };
                let mut e = self.events[first].clone();
                e.cpu = None;
                e.task = Some(TaskRef { comm: String::new(), pid });
                e.lines = LineRange { source: self.source, first: lineno, last: lineno };
                if let Some(rcu) = e.rcu.as_mut() {
                    rcu.form = "tasks".into();
                }
                self.add_member(&key, first, e);
            }
            Headline::RcuDetectedBy { by, jiffies, gp } => {
                let Some(r) = self.open.get_mut(&key) else {
                    return;
                };
                r.gap = 0;
                for &i in &r.members.clone() {
                    let e = &mut self.events[i];
                    e.lines.last = lineno;
                    if let Some(rcu) = e.rcu.as_mut() {
                        rcu.detected_by = by.or(rcu.detected_by);
                        rcu.jiffies = jiffies.or(rcu.jiffies);
                        rcu.grace_period = gp.or(rcu.grace_period);
                    }
                    if e.duration_s.is_none() {
                        // Jiffies → seconds needs HZ; leave the raw count in `rcu.jiffies`.
                    }
                }
            }
            Headline::RcuStarved { jiffies, cpu: _ } => {
                // Belongs to the last RCU stall report of this boot.
                let boot = self.host_state(key.host).boot;
                let host = key.host.map(|h| self.host_names[h].as_str());
                // Events come in line order, and boots of one host in time order: stop at an
                // earlier boot of this host.
                let last = self
                    .events
                    .iter()
                    .rev()
                    .take_while(|e| e.host.as_deref() != host || e.boot == boot)
                    .position(|e| e.kind == EventKind::RcuStall && e.host.as_deref() == host)
                    .map(|back| self.events.len() - 1 - back);
                if let Some(last) = last {
                    let from = self.events[last].lines.first.saturating_sub(200);
                    // Every RCU stall event that starts from there on (a suffix of the events).
                    for e in self.events.iter_mut().rev().take_while(|e| e.lines.first >= from) {
                        if let Some(rcu) = e.rcu.as_mut().filter(|_| e.kind == EventKind::RcuStall) {
                            rcu.starved_jiffies = jiffies;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The `csd:` lines that follow or continue a CSD lock timeout report.
    fn csd_headline(&mut self, lineno: u64, rec: &Record<'_>, key: Key, text: &str, h: Headline) {
        match h {
            Headline::CsdFollowUp => {
                if let Some(r) = self.open.get_mut(&key) {
                    r.gap = 0;
                }
            }
            Headline::CsdContinued { cpu, target, waiting_ns } => match self.csd_wait_of(&key, lineno, cpu, target) {
                Some(i) => {
                    let csd = self.events[i].csd.get_or_insert_with(Default::default);
                    csd.waiting_ns = csd.waiting_ns.max(waiting_ns);
                    if let Some(r) = self.open.get_mut(&key) {
                        r.gap = 0;
                    }
                }
                // The log kept only the continuation: a report of its own.
                None => {
                    let mut o = Opening::new(EventKind::CsdLockTimeout);
                    (o.cpu, o.csd_target, o.csd_waiting_ns) = (cpu, target, waiting_ns);
                    self.open_report(lineno, rec, key, text, o);
                }
            },
            Headline::CsdUnstuck { cpu, target } => {
                if let Some(i) = self.csd_wait_of(&key, lineno, cpu, target) {
                    self.events[i].csd.get_or_insert_with(Default::default).unstuck = true;
                }
            }
            _ => {}
        }
    }

    fn open_report(&mut self, lineno: u64, rec: &Record<'_>, key: Key, text: &str, o: Opening) {
        let Some(kind) = o.kind else { return };
        // `Oops: 0000 [#1] SMP` / arm64 `Internal error: Oops:` continue the `BUG: unable to
        // handle ...` report they follow.
        if kind == EventKind::Oops
            && o.message.as_deref().is_some_and(|m| m.starts_with("Oops: ") || m.starts_with("Internal error: "))
            && let Some(r) = self.open.get_mut(&key)
            && let Some(t) = r.target.filter(|&t| self.events[t].kind == EventKind::Oops)
        {
            r.gap = 0;
            self.events[t].lines.last = lineno;
            return;
        }
        // A new report ends the extent of RCU stall reports without caller ids; with caller
        // ids the extent runs on (syzkaller keeps every line of the same context).
        self.close(&key);
        if !matches!(kind, EventKind::NmiBacktrace | EventKind::Panic)
            && !o
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("invalid opcode:") || m.starts_with("Internal error:"))
        {
            let k = key;
            let rcu = kind == EventKind::RcuStall;
            self.end_rcu_titles(|p| {
                // With caller ids only the next stall report of the same context ends it.
                p.covers(&k) && (p.key.caller.is_none() || (rcu && p.key == k))
                    || p.first_line + RCU_TITLE_LINES < lineno
            });
        }
        let idx = self.new_event(kind, lineno, rec, &key, text);
        let e = &mut self.events[idx];
        e.subkind = o.subkind;
        e.cpu = o.cpu;
        e.task = o.task.filter(|t| !(t.comm.is_empty() && kind == EventKind::Warning));
        e.duration_s = o.duration_s;
        e.message = o.message;
        if kind == EventKind::RcuStall {
            e.rcu = Some(RcuStall {
                flavor: o.rcu_flavor,
                form: o.rcu_form.unwrap_or("detected").to_string(),
                ..Default::default()
            });
            e.message = None;
        }
        if kind == EventKind::CsdLockTimeout {
            e.csd = Some(CsdWait {
                target_cpu: o.csd_target,
                function: o.csd_function,
                waiting_ns: o.csd_waiting_ns,
                unstuck: false,
            });
        }
        let mut r = Report::new();
        r.target = Some(idx);
        r.members.push(idx);
        // Old one-line RCU reports list every stalled CPU and task on the headline.
        let extra: Vec<(Option<u32>, Option<u32>)> =
            o.cpus.iter().map(|&c| (Some(c), None)).chain(o.pids.iter().map(|&p| (None, Some(p)))).collect();
        for (n, (cpu, pid)) in extra.into_iter().enumerate() {
            let i = if n == 0 {
                idx
            } else {
                let e = self.events[idx].clone();
                self.events.push(e);
                self.events.len() - 1
            };
            let e = &mut self.events[i];
            e.cpu = cpu;
            e.task = pid.map(|pid| TaskRef { comm: String::new(), pid });
            if i != idx {
                r.members.push(i);
            }
        }
        // A panic whose message is the hard-lockup report itself (old kernels, hardlockup_panic).
        if kind == EventKind::Panic
            && self.events[idx].message.as_deref().is_some_and(|m| m.contains("hard LOCKUP on cpu"))
        {
            let mut hl = self.events[idx].clone();
            hl.kind = EventKind::HardLockup;
            hl.message = None;
            self.events.push(hl);
            r.twin = Some(self.events.len() - 1);
        }
        if kind == EventKind::RcuStall {
            self.rcu_titles.push(RcuTitle { key, members: r.members.clone(), any_cpu: false, first_line: lineno });
        }
        self.install(key, r);
    }

    fn hardware(&mut self, lineno: u64, rec: &Record<'_>, key: Key, text: &str, hw: lockscope_facts::HardwareRecord) {
        // Consecutive lines of one hardware error record (a GHES block, an MCE dump) make one event.
        let continuing = self.open.get(&key).and_then(|r| r.target).filter(|&i| {
            let e = &self.events[i];
            e.kind == EventKind::HardwareError
                && e.hardware.as_ref().is_some_and(|h| h.source == hw.source)
                && lineno <= e.lines.last + 3
        });
        match continuing {
            Some(i) => {
                let e = &mut self.events[i];
                e.lines.last = lineno;
                let h = e.hardware.as_mut().unwrap();
                if severity_rank(&hw.severity) > severity_rank(&h.severity) {
                    h.severity = hw.severity;
                }
                if h.component.is_none() {
                    h.component = hw.component;
                }
                if h.description.len() < 400 {
                    h.description.push_str("; ");
                    h.description.push_str(&hw.description);
                }
            }
            None => {
                let idx = self.new_event(EventKind::HardwareError, lineno, rec, &key, text);
                self.events[idx].hardware = Some(hw);
                let mut r = Report::new();
                r.target = Some(idx);
                r.members.push(idx);
                self.install(key, r);
            }
        }
    }

    fn continuation(&mut self, lineno: u64, key: &Key, text: &str) {
        let Some(r) = self.open.get_mut(key) else {
            return;
        };
        // lockdep `locks held` listing
        if let Some(h) = r.held {
            match parse_held_lock(text) {
                Some(l) => {
                    self.held[h].locks.push(l);
                    self.held[h].lines.last = lineno;
                }
                None => self.close(key),
            }
            return;
        }
        let Some(target) = r.target else {
            self.close(key);
            return;
        };
        if let Some(tl) = stack::parse_trace_line(text) {
            let mut relabel = None;
            r.gap = 0;
            if r.regs == Regs::Collecting {
                r.regs = Regs::Done;
            }
            let frames = match tl {
                TraceLine::Frame(f) => [Some(f), None],
                TraceLine::CallPair(f, caller) => {
                    // The function is the caller of the line before: printed already.
                    let again = r.pair_caller.as_deref() == Some(f.function.as_str());
                    [(!again).then_some(f), Some(caller)]
                }
                TraceLine::Marker(m, f) => {
                    r.ctx = match m {
                        Marker::Enter(c) => c,
                        Marker::Leave(_) | Marker::EndOfIrqStack => FrameContext::Task,
                        Marker::EndOfStack(c) => {
                            relabel = Some(c);
                            FrameContext::Task
                        }
                    };
                    [f, None]
                }
            };
            let pair = frames[1].as_ref().map(|c| c.function.clone());
            let ctx = r.ctx;
            if let Some(c) = relabel {
                self.relabel_stack(target, c);
            }
            for mut f in frames.into_iter().flatten() {
                f.context = ctx;
                self.take_frame(key, target, f, false, lineno);
            }
            if let Some(r) = self.open.get_mut(key) {
                r.pair_caller = pair;
            }
            return;
        }
        if let Some(rl) = stack::parse_reg_line(text) {
            r.gap = 0;
            let dest = r.dest;
            if dest == Dest::Owner {
                return;
            }
            // An instruction pointer is also the innermost frame of its context; inside a
            // trace (after the interrupt entry) it is where the interrupted code was.
            if let RegLine::Ip(_, loc) = &rl
                && let (Some(func), false) = (&loc.function, loc.user)
            {
                let f = Frame {
                    offset: loc.offset,
                    size: loc.size,
                    module: loc.module.clone(),
                    address: loc.address,
                    context: r.ctx,
                    ..Frame::named(func)
                };
                self.take_frame(key, target, f, true, lineno);
            }
            let r = self.open.get_mut(key).unwrap();
            if r.regs != Regs::Done && dest == Dest::Target {
                r.regs = Regs::Collecting;
                for i in [Some(target), r.twin].into_iter().flatten() {
                    stack::apply_reg_line(&mut self.events[i].registers, rl.clone());
                    self.events[i].lines.last = lineno;
                }
            }
            return;
        }
        if r.regs == Regs::Collecting {
            r.regs = Regs::Done;
        }
        self.report_text_line(lineno, key, target, text);
    }

    /// A line of an open report that is neither a frame nor registers: the task, CPU,
    /// hardware and taint lines, trace starts and ends, the NMI round; unknown lines count
    /// towards the gap that ends the report.
    fn report_text_line(&mut self, lineno: u64, key: &Key, target: usize, text: &str) {
        let Some(r) = self.open.get_mut(key) else {
            return;
        };
        let t = text.trim_start();
        // crash's `sys` names the panic task on the lines after PANIC: `PID: 61`,
        // `COMMAND: "kworker/1:1"`.
        let e = &mut self.events[target];
        if e.kind == EventKind::Panic && e.headline.starts_with("PANIC: ") {
            if let Some(pid) = t.strip_prefix("PID: ").and_then(|p| p.trim().parse().ok()) {
                e.task = Some(TaskRef { comm: String::new(), pid });
                return;
            }
            if let (Some(c), Some(task)) =
                (t.strip_prefix("COMMAND: \"").and_then(|c| c.strip_suffix('"')), e.task.as_mut())
            {
                task.comm = c.to_string();
                return;
            }
        }
        if let Some(cl) = headers::parse_cpu_line(t) {
            r.gap = 0;
            let twin = r.twin;
            self.cpu_line(key, target, twin, lineno, &cl);
            return;
        }
        if t.starts_with("irq_soft_mask:")
            && let Some(task) = headers::paca_current(t)
        {
            r.gap = 0;
            let e = &mut self.events[target];
            if e.kind == EventKind::NmiBacktrace && e.task.is_none() {
                e.task = Some(task);
                e.lines.last = lineno;
            }
            return;
        }
        if let Some(hw) = t.strip_prefix("Hardware name: ") {
            r.gap = 0;
            for i in [Some(target), r.twin].into_iter().flatten() {
                self.events[i].hardware_name = Some(hw.trim().to_string());
            }
            return;
        }
        if t.starts_with("Tainted: ") || t.starts_with("Not tainted") {
            r.gap = 0;
            let (taint, release) = headers::parse_taint(t);
            let e = &mut self.events[target];
            e.taint = taint.or(e.taint.take());
            e.release = release.or(e.release.take());
            return;
        }
        if let Some((task, state)) = headers::parse_task_line(t) {
            r.gap = 0;
            self.end_trace(key);
            let r = self.open.get_mut(key).unwrap();
            let e = &mut self.events[target];
            let same = e.task.as_ref().is_none_or(|et| et.pid == task.pid);
            if r.dest == Dest::Aside {
                // The task of an aside dump (the RCU grace-period kthread).
            } else if same {
                if e.task.is_none() {
                    e.task = Some(task);
                }
                e.task_state = Some(state);
                r.dest = Dest::Target;
            } else if let Some(b) =
                e.blocked_on.as_mut().filter(|b| b.owner.as_ref().is_some_and(|o| o.pid == task.pid))
            {
                b.owner_state = Some(state);
                r.dest = Dest::Owner;
            } else if e.kind == EventKind::RcuStall {
                // rcu_tasks reports dump each holdout task.
                r.dest = Dest::Target;
            } else {
                r.dest = Dest::Owner;
            }
            return;
        }
        if t.starts_with("---[ end ") {
            self.events[target].lines.last = lineno;
            self.close(key);
            return;
        }
        if is_stack_start(t) {
            r.gap = 0;
            self.end_trace(key);
            return;
        }
        // `rcu: RCU grace-period kthread stack dump:`, `rcu: Stack dump where RCU GP kthread
        // last ran:`: stacks of the grace-period kthread and of its CPU, not of a stalled CPU.
        if t.contains("grace-period kthread stack dump") || t.contains("GP kthread last ran") {
            r.gap = 0;
            r.dest = Dest::Aside;
            r.ctx = FrameContext::Task;
            self.end_trace(key);
            return;
        }
        if t.starts_with("Sending NMI") {
            // The NMI backtraces that follow print from their own CPUs.
            r.gap = 0;
            r.dest = Dest::Target;
            for p in &mut self.rcu_titles {
                if p.covers(key) {
                    p.any_cpu = true;
                }
            }
            return;
        }
        let modules = t.starts_with("Modules linked in") || r.modules && is_module_list(t);
        r.modules = modules;
        if modules || is_report_line(t) || stack::is_trace_filler(t) {
            r.gap = 0;
            return;
        }
        // Blank lines do not count: mail and trackers show a console's empty records and
        // cut continuation lines as blank lines inside a report.
        if !t.trim().is_empty() {
            r.gap += 1;
        }
        if r.gap > MAX_GAP {
            self.close(key);
        }
    }

    /// One frame of the trace being printed under `key`.
    /// crash printed the frames of another stack before saying so: its `#N` frames still
    /// marked as the task's since the last marker were on `ctx`'s stack (an exception RIP
    /// among them is where the interrupted code was: it stays).
    fn relabel_stack(&mut self, target: usize, ctx: FrameContext) {
        let stack = &mut self.events[target].stack;
        for f in stack.iter_mut().rev().take_while(|f| f.context == FrameContext::Task) {
            if f.stack_pointer.is_some() {
                f.context = ctx;
            }
        }
    }

    fn take_frame(&mut self, key: &Key, target: usize, f: Frame, rip: bool, lineno: u64) {
        let Some(r) = self.open.get_mut(key) else {
            return;
        };
        // Only the part of a trace from a timer-interrupt entry on can title an RCU stall.
        if !self.rcu_titles.is_empty() && (!r.seg.is_empty() || is_interrupt_entry(&f)) {
            if rip {
                r.seg_rips.push(r.seg.len());
            }
            r.seg.push(f.clone());
        }
        let (twin, dest) = (r.twin, r.dest);
        match dest {
            Dest::Aside => {}
            Dest::Owner => {
                if let Some(b) = self.events[target].blocked_on.as_mut() {
                    b.owner_stack.push(f);
                }
            }
            Dest::Target => {
                let mut f = Some(f);
                let targets = [Some(target), twin];
                let last = targets.iter().rposition(Option::is_some);
                for (n, i) in targets.into_iter().enumerate().filter_map(|(n, i)| Some((n, i?))) {
                    // The frame itself goes to the last target; the one before gets a copy.
                    let f = if Some(n) == last { f.take().unwrap() } else { f.clone().unwrap() };
                    let e = &mut self.events[i];
                    e.lines.last = lineno;
                    // crash prints an exception frame's function again as its next `#N`
                    // frame: one frame, with the stack pointer crash gives.
                    if f.stack_pointer.is_some()
                        && let Some(l) =
                            e.stack.last_mut().filter(|l| l.stack_pointer.is_none() && l.function == f.function)
                    {
                        l.stack_pointer = f.stack_pointer;
                        l.module = l.module.take().or_else(|| f.module.clone());
                        continue;
                    }
                    // arm64 prints the pc function again as the first trace frame.
                    if e.stack.len() == 1
                        && e.stack.last().is_some_and(|l| {
                            l.function == f.function && l.offset == f.offset && l.reliable == f.reliable
                        })
                    {
                        continue;
                    }
                    if e.stack.capacity() == 0 {
                        // Traces run to 20-40 frames: skip the first few doublings.
                        e.stack.reserve(16);
                    }
                    e.stack.push(f);
                }
            }
        }
    }

    /// Ends the source: links reports that refer to each other.
    /// Titles are set here: syzkaller-compatible ones for lockups (see [`crate::title_of`]).
    /// A `CPU: N PID: N Comm: X` line outside any report starts a headless register dump.
    fn maybe_open_orphan(&mut self, lineno: u64, rec: &Record<'_>, key: &Key, text: &str) {
        let Some(cl) = headers::parse_cpu_line(text.trim_start()) else { return };
        if cl.task.is_none() {
            return;
        }
        let idx = self.new_event(EventKind::SoftLockup, lineno, rec, key, text);
        self.events[idx].cpu = cl.cpu;
        self.orphans.push(idx);
        let mut r = Report::new();
        r.target = Some(idx);
        r.members.push(idx);
        self.open.insert(*key, r);
    }

    /// Gives each headless register dump to the lockup report of the same CPU and task
    /// (nearest in time, lacking registers of its own), then drops the dumps.
    fn merge_orphans(&mut self, is_orphan: &[bool]) {
        if self.orphans.is_empty() {
            return;
        }
        // Candidate reports by (cpu, pid, boot, host), in event order: one pass over the
        // events instead of one per dump.
        type Who<'a> = (Option<u32>, Option<u32>, u32, &'a Option<String>);
        let mut by_who: HashMap<Who<'_>, Vec<usize>> = HashMap::new();
        for (i, e) in self.events.iter().enumerate() {
            if !is_orphan[i] && matches!(e.kind, EventKind::SoftLockup | EventKind::HardLockup | EventKind::RcuStall) {
                by_who.entry((e.cpu, e.task.as_ref().map(|t| t.pid), e.boot, &e.host)).or_default().push(i);
            }
        }
        let mut merges = Vec::new();
        // Which candidates got registers from an earlier dump: they no longer lack them.
        let mut given: Vec<usize> = Vec::new();
        for &o in &self.orphans {
            let dump = &self.events[o];
            if dump.registers.is_none() && dump.stack.is_empty() {
                continue;
            }
            let who = (dump.cpu, dump.task.as_ref().map(|t| t.pid), dump.boot, &dump.host);
            let Some(cands) = by_who.get(&who) else { continue };
            let target =
                cands.iter().copied().filter(|&i| !self.had_registers(i) && !given.contains(&i)).min_by_key(|&i| {
                    let e = &self.events[i];
                    match (e.time, dump.time) {
                        (Some(a), Some(b)) => ((a - b).abs() * 1000.0) as u64,
                        _ => e.lines.first.abs_diff(dump.lines.first),
                    }
                });
            let Some(t) = target else { continue };
            if dump.registers.is_some() {
                given.push(t);
            }
            merges.push((o, t));
        }
        drop(by_who);
        for (o, t) in merges {
            let (regs, stack) = (self.events[o].registers.clone(), self.events[o].stack.clone());
            let e = &mut self.events[t];
            if e.repeat_of.is_some() {
                // A repeat keeps no registers or stack of its own; its first occurrence has them.
                continue;
            }
            e.registers = regs;
            if e.stack.is_empty() {
                e.stack = stack;
            }
        }
    }

    /// Everything parsed so far, finished, when a new boot starts and no report is open:
    /// the links `finish` makes (register dumps, RCU titles, NMI backtraces, repeats) never
    /// cross a boot, so the events before it are final. The host and boot counters go on.
    /// Only for logs of one host: with several, the boots of the others are still running.
    pub fn take_segment(&mut self) -> Option<(Vec<Event>, Vec<bool>, Vec<HeldLocks>)> {
        if !self.open.is_empty() || self.host_names.len() > 1 || self.split_head.is_some() {
            return None;
        }
        let (events, needs_title) = self.finish();
        self.rcu_titles.clear();
        self.titled.clear();
        self.orphans.clear();
        self.settled = 0;
        self.unsettled.clear();
        self.firsts.clear();
        self.repeats_with_regs.clear();
        self.bare_rcu.clear();
        Some((events, needs_title, std::mem::take(&mut self.held)))
    }

    /// Ends the log: closes every report and makes the links across events. Returns the
    /// events and which still need a title ([`complete_titles`]).
    pub fn finish(&mut self) -> (Vec<Event>, Vec<bool>) {
        let keys: Vec<Key> = self.open.keys().cloned().collect();
        for k in keys {
            self.close(&k);
        }
        // Searches that stop early (starved RCU, NMI links, repeats) rely on this order.
        debug_assert!(self.events.windows(2).all(|w| w[0].lines.first <= w[1].lines.first));
        let mut is_orphan = vec![false; self.events.len()];
        for &o in &self.orphans {
            is_orphan[o] = true;
        }
        self.merge_orphans(&is_orphan);
        self.end_rcu_titles(|_| true);
        link_rcu_to_nmi_backtraces(&mut self.events);
        // Titles come from the stacks; the consumer sets them (`Segment::into_parts`), on
        // its own thread when it has one.
        let untitled: Vec<bool> =
            (0..self.events.len()).map(|i| !self.titled.get(i).copied().unwrap_or(false)).collect();
        // Indices once the dumps are gone, for `repeat_of`.
        let mut kept = 0;
        let new_index: Vec<usize> = is_orphan
            .iter()
            .map(|&o| {
                let k = kept;
                kept += usize::from(!o);
                k
            })
            .collect();
        let mut needs_title = Vec::with_capacity(kept);
        let events = std::mem::take(&mut self.events)
            .into_iter()
            .zip(is_orphan)
            .zip(untitled)
            .filter(|((_, orphan), _)| !orphan)
            .map(|((mut e, _), untitled)| {
                e.repeat_of = e.repeat_of.map(|o| new_index[o]);
                needs_title.push(untitled);
                e
            })
            .collect();
        (events, needs_title)
    }
}

/// A crash `bt` of a CPU (its frames carry stack pointers) that runs the soft-lockup
/// watchdog's timer or the hard-lockup NMI callback into `panic` is that detector's report
/// on that CPU: what the kernel printed before panicking, read from the stack.
fn detector_in_crash_bt(e: &mut Event) {
    if e.kind != EventKind::NmiBacktrace || !e.stack.iter().any(|f| f.stack_pointer.is_some()) {
        return;
    }
    // A task switched out (`#0 __schedule`): crash's `CPU:` is where it last ran, not a CPU
    // it is on.
    if e.stack.first().is_some_and(|f| crate::title::base_name(&f.function).trim_start_matches('_') == "schedule") {
        e.cpu = None;
        e.reporter_cpu = None;
        return;
    }
    let has = |name: &str| e.stack.iter().any(|f| f.function == name);
    if !has("panic") {
        return;
    }
    if has("watchdog_timer_fn") {
        e.kind = EventKind::SoftLockup;
    } else if has("watchdog_overflow_callback") {
        e.kind = EventKind::HardLockup;
    }
}

/// Sets the titles `Parser::finish` left to do (`needs_title`), after marking arm64
/// interrupt frames, which the titles skip.
pub fn complete_titles(events: &mut [Event], needs_title: &[bool]) {
    for (e, &needs) in events.iter_mut().zip(needs_title) {
        mark_arm64_irq_frames(&mut e.stack);
        if needs {
            crate::set_title(e);
        }
    }
}

/// What makes two reports the same for repeat compaction.
fn repeat_key(e: &Event) -> impl Hash + PartialEq + '_ {
    (
        (e.kind, e.subkind, e.cpu, e.task.as_ref().map(|t| t.pid)),
        (e.boot, e.host.as_deref(), e.registers.is_some()),
        e.reliable_frames().map(|f| f.function.as_str()).collect::<Vec<_>>(),
    )
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "fatal" => 4,
        "non_recoverable" => 3,
        "uncorrected" => 2,
        "corrected" => 1,
        _ => 0,
    }
}

/// A line of module names as `Modules linked in:` continues over lines: `nft_log
/// nft_limit(E) sit dummy [last unloaded: x]`.
fn is_module_list(t: &str) -> bool {
    let t = t.split(" [last unloaded:").next().unwrap_or(t);
    !t.is_empty()
        && t.split_whitespace().all(|w| {
            let name = w.split('(').next().unwrap_or(w);
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Lines that belong to a report without carrying frames or registers.
fn is_report_line(t: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Modules linked in",
        "Call Trace",
        "Call trace",
        "Backtrace",
        "Exception stack",
        "\"echo 0 >",
        "Kernel Offset",
        "Sending NMI",
        "Showing busy workqueues",
        "Showing backtraces",
        "workqueue ",
        "pwq ",
        "in-flight:",
        "pending:",
        "inactive:",
        "delayed:",
        "pool ",
        "---[ end",
        "Shutting down cpus",
        "Rebooting in",
        "in_atomic()",
        "Preemption disabled at",
        "irq event stamp",
        "hardirqs last",
        "softirqs last",
        "Oops:",
        "Internal error:",
        "#PF:",
        "PGD ",
        "P4D ",
        "PUD ",
        "PMD ",
        "Mem abort info",
        "ESR = ",
        "EC = ",
        "SET = ",
        "FAR = ",
        "EA = ",
        "S1PTW",
        "FSC = ",
        "Data abort info",
        "ISV = ",
        "CM = ",
        "GCS = ",
        "user pgtable",
        "note: ",
        "Kdump:",
        "csd:",
        "rcu: ",
        "Task dump",
        "------------[ cut here ]",
        "CPU features",
        "Showing all locks held",
        "=====",
        "INFO: lockdep is turned off",
        "NMI backtrace",
        "Dumping ftrace",
        "ftrace",
        "Code: Unable",
        "Code: Bad RIP",
    ];
    // Comparing the first byte inline spares a `memcmp` call per prefix.
    let first = t.as_bytes().first().copied();
    if PREFIXES.iter().any(|p| first == Some(p.as_bytes()[0]) && t.starts_with(p)) {
        return true;
    }
    // Raw stack words printed by 2.6-era kernels before the trace: 1 to 8 of them.
    let mut n = 0;
    for w in t.split_whitespace() {
        n += 1;
        if n > 8 || !((w.len() == 16 || w.len() == 8) && w.bytes().all(|b| b.is_ascii_hexdigit())) {
            return false;
        }
    }
    n > 0
}

/// ` #0: ffff88807e5f8e98 (&mm->mmap_lock){++++}-{3:3}, at: mmap_read_lock+0x1/0x2`
fn parse_held_lock(text: &str) -> Option<HeldLock> {
    let t = text.trim_start();
    let rest = t.strip_prefix('#')?;
    let (n, rest) = rest.split_once(':')?;
    n.parse::<u32>().ok()?;
    let rest = rest.trim_start();
    let (address, rest) = match rest.split_once(' ') {
        Some((a, r)) if a.len() >= 8 && a.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (u64::from_str_radix(a, 16).ok(), r.trim_start())
        }
        _ => (None, rest),
    };
    let rest = rest.strip_prefix('(')?;
    // The class name may hold parentheses: match the closing one by depth.
    let mut depth = 1;
    let mut end = None;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let name = rest[..end].to_string();
    let acquired_at = rest[end..].split_once(", at: ").map(|(_, a)| a.trim().to_string());
    Some(HeldLock { address, name, acquired_at })
}

/// A "detected stalls on CPUs" report names the stalled CPUs; their stacks come in the
/// NMI backtraces it triggers right after. Give each stalled-CPU event that stack.
fn link_rcu_to_nmi_backtraces(events: &mut [Event]) {
    for i in 0..events.len() {
        let e = &events[i];
        if e.kind != EventKind::RcuStall || !e.stack.is_empty() && e.task.is_some() {
            continue;
        }
        let Some(cpu) = e.cpu else { continue };
        let (line, boot, host) = (e.lines.last, e.boot, e.host.clone());
        // Events come in line order: stop at the first one too far down.
        let found =
            events.iter().enumerate().skip(i + 1).take_while(|(_, n)| n.lines.first <= line + NMI_LINK_LINES).find_map(
                |(j, n)| {
                    (n.boot == boot
                        && n.host == host
                        && n.kind == EventKind::NmiBacktrace
                        && n.cpu == Some(cpu)
                        && (!n.stack.is_empty() || n.task.is_some()))
                    .then_some(j)
                },
            );
        if let Some(j) = found {
            let (stack, regs, task) = (events[j].stack.clone(), events[j].registers.clone(), events[j].task.clone());
            let e = &mut events[i];
            if e.stack.is_empty() {
                e.stack = stack;
                e.registers = regs;
            }
            if e.task.is_none() {
                e.task = task;
            }
        }
    }
    share_task_of_one_stall(events);
}

/// One stall printed as two reports at the same moment (a CPU's self-detected report and
/// another CPU's "detected stalls" report, interleaved on one console): the task one of
/// them names for a CPU is the other's too.
fn share_task_of_one_stall(events: &mut [Event]) {
    const SAME_MOMENT_S: f64 = 1.0;
    // Two reports printed together lie within this many lines (events are in line order).
    const NEAR_LINES: u64 = 400;
    for i in 0..events.len() {
        let e = &events[i];
        if e.kind != EventKind::RcuStall || e.task.is_some() || e.cpu.is_none() {
            continue;
        }
        let Some(t) = e.time else { continue };
        let line = e.lines.first;
        let from = events[..i].iter().rposition(|n| n.lines.first + NEAR_LINES < line).map_or(0, |j| j + 1);
        let mut near = events[from..].iter().take_while(|n| n.lines.first <= line + NEAR_LINES);
        let twin = near.find(|n| {
            n.kind == EventKind::RcuStall
                && n.cpu == e.cpu
                && n.task.is_some()
                && n.boot == e.boot
                && n.host == e.host
                && n.time.is_some_and(|nt| (nt - t).abs() <= SAME_MOMENT_S)
        });
        if let Some(task) = twin.and_then(|n| n.task.clone()) {
            events[i].task = Some(task);
        }
    }
}

/// arm64 and arm32 traces print interrupt frames above the exception entry (`el1_irq`,
/// `el1h_64_irq`, arm32 `__irq_svc`) with no markers: everything up to the entry ran in
/// IRQ context.
fn mark_arm64_irq_frames(stack: &mut [Frame]) {
    const ENTRIES: &[&str] = &[
        "__irq_svc",
        "__irq_usr",
        "el1_irq",
        "el1h_64_irq",
        "el1_interrupt",
        "el0_irq",
        "el0t_64_irq",
        "el1h_64_fiq",
        "el1_fiq",
    ];
    if let Some(pos) = stack.iter().position(|f| ENTRIES.contains(&f.function.as_str())) {
        for f in &mut stack[..=pos] {
            if f.context == FrameContext::Task {
                f.context = FrameContext::Irq;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(log: &str) -> Vec<Event> {
        crate::Scanner::new().scan(0, "t", log.as_bytes()).unwrap().events
    }

    fn first(events: &[Event], kind: EventKind) -> &Event {
        events.iter().find(|e| e.kind == kind).expect("event")
    }

    #[test]
    fn csd_continued_and_unstuck_lines_update_the_wait_they_are_about() {
        // realworld/ext-027: the report, the target's NMI backtrace, then 5 s later the
        // `Continued` line of the same wait, with no stack.
        let log =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/realworld/ext-027.log"))
                .unwrap();
        let csd: Vec<Event> = scan(&log).into_iter().filter(|e| e.kind == EventKind::CsdLockTimeout).collect();
        assert_eq!(csd.len(), 1, "{csd:#?}");
        let wait = csd[0].csd.as_ref().unwrap();
        assert_eq!(
            (csd[0].cpu, wait.target_cpu, wait.waiting_ns, wait.unstuck),
            (Some(0), Some(1), Some(10000001888), false)
        );
        let unstuck = format!("{log}smp: csd: CSD lock (#1) got unstuck on CPU#00, CPU#01 released the lock.\n");
        let ev = scan(&unstuck);
        assert!(first(&ev, EventKind::CsdLockTimeout).csd.as_ref().unwrap().unstuck);
        // A log that kept only the continuation still shows the wait.
        let alone = "smp: csd: Continued non-responsive CSD lock (#1) on CPU#0, waiting 10000001888 ns for CPU#01 __lkdtm_CSDLOCKUP+0x0/0x8(0x0).\n";
        let e = first(&scan(alone), EventKind::CsdLockTimeout).clone();
        assert_eq!((e.cpu, e.csd.unwrap().target_cpu), (Some(0), Some(1)));
    }

    #[test]
    fn a_self_detected_stall_detail_line_after_another_report_names_its_cpu() {
        // realworld/rcu-028, cut: the detail line comes 6 s later, after a soft lockup
        // opened on the same console.
        let log = "\
[283539.715873] rcu: INFO: rcu_preempt self-detected stall on CPU
[283540.766023] watchdog: BUG: soft lockup - CPU#9 stuck for 64s! [kworker/u515:2:86301]
[283540.766046] Modules linked in: raw_gadget(OE) dummy_hcd(OE)
[283545.281916] rcu: 2-...!: (137 ticks this GP) idle=ecec/1/0x4000000000000000 softirq=11168967/11168969 fqs=0
";
        let ev = scan(log);
        assert_eq!(first(&ev, EventKind::RcuStall).cpu, Some(2));
        assert_eq!(first(&ev, EventKind::SoftLockup).cpu, Some(9));
        // Not an older stall of another report: a minute later it is left alone.
        let late = log.replace("[283545.281916]", "[283605.281916]");
        assert_eq!(first(&scan(&late), EventKind::RcuStall).cpu, None);
    }

    fn names(e: &Event) -> Vec<&str> {
        e.stack.iter().map(|f| f.function.as_str()).collect()
    }

    #[test]
    fn rcu_title_passes_over_the_grace_period_kthread_dump() {
        // syzkaller file 278: the GP kthread's stack comes first and has no interrupt entry.
        let ev = scan(include_str!("../testdata/syz278.log"));
        let e = first(&ev, EventKind::RcuStall);
        assert_eq!(e.title, "INFO: rcu detected stall in sys_futex");
        // The stalled CPU's own stack is its NMI backtrace, not the kthread's dump.
        assert_eq!(e.cpu, Some(1));
        assert_eq!(e.stack.first().unwrap().function, "dump_stack");
        assert!(!names(e).contains(&"rcu_gp_kthread"));
        // The `RIP:` line inside the trace is the top of the interrupted context.
        let n = names(e);
        let rip = n.iter().position(|f| *f == "_raw_spin_unlock_irq").unwrap();
        assert_eq!(n[rip - 1], "apic_timer_interrupt");
    }

    #[test]
    fn rcu_title_comes_from_the_first_trace_through_the_timer_interrupt() {
        // syzkaller file 421: CPU 1 stalls, but CPU 0's backtrace, printed first, is the
        // one interrupted by the timer; syzkaller titles the report from it.
        let ev = scan(include_str!("../testdata/syz421.log"));
        let e = first(&ev, EventKind::RcuStall);
        assert_eq!(e.title, "INFO: rcu detected stall in sys_exit_group");
        assert_eq!(e.cpu, Some(1));
        assert!(names(e).contains(&"rcu_dump_cpu_stacks"));
        assert!(!names(e).contains(&"do_exit"));
    }

    #[test]
    fn rcu_title_reads_on_from_the_rip_line() {
        // syzkaller file 493: two CPUs' traces interleaved; after the interrupt entry the
        // trace is read from the next `RIP:` line, skipping the other CPU's frames.
        let ev = scan(include_str!("../testdata/syz493.log"));
        let e = first(&ev, EventKind::RcuStall);
        assert_eq!(e.title, "INFO: rcu detected stall in __do_softirq");
    }

    #[test]
    fn rcu_extent_with_caller_ids() {
        // syzkaller file 718's headline (printed from CPU 1), then a backtrace printed from
        // CPU 0 (file 421's CPU 0 trace, moved to caller `[C0]`). It belongs to the report
        // only after `Sending NMI from CPU 1`.
        let head = "[  146.893110][    C1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n\
                    [  146.894767][    C1] rcu: \t(detected by 1, t=10002 jiffies, g=4241, q=1639 ncpus=2)\n";
        let send = "[  146.939867][    C1] Sending NMI from CPU 1 to CPUs 0:\n";
        let trace: String = include_str!("../testdata/syz421.log")
            .lines()
            .skip_while(|l| !l.contains("NMI backtrace for cpu 0"))
            .take_while(|l| !l.contains("NMI backtrace for cpu 1"))
            .map(|l| l.replace("[    C1]", "[    C0]") + "\n")
            .collect();
        let ev = scan(&format!("{head}{send}{trace}"));
        assert_eq!(first(&ev, EventKind::RcuStall).title, "INFO: rcu detected stall in sys_exit_group");
        let ev = scan(&format!("{head}{trace}"));
        assert_eq!(first(&ev, EventKind::RcuStall).title, "INFO: rcu detected stall in corrupted");
    }

    #[test]
    fn rcu_extent_without_caller_ids_ends_at_the_next_report() {
        // syzkaller file 278's headline, then a soft-lockup headline (file 266 wording),
        // then file 278's trace: it belongs to the soft lockup, not to the RCU stall.
        let log = include_str!("../testdata/syz278.log");
        let (head, rest) = log.split_at(log.find("[  246.204159]").unwrap());
        let trace = &rest[rest.find("[  246.496878]").unwrap()..];
        let lockup = "[  246.400000] watchdog: BUG: soft lockup - CPU#1 stuck for 134s! [syz-fuzzer:4356]\n";
        let ev = scan(&format!("{head}{lockup}{trace}"));
        assert_eq!(first(&ev, EventKind::RcuStall).title, "INFO: rcu detected stall in corrupted");
        // A panic or an NMI backtrace does not end it.
        let panic = "[  246.400000] Kernel panic - not syncing: hung_task: blocked tasks\n";
        let ev = scan(&format!("{head}{panic}{trace}"));
        assert_eq!(first(&ev, EventKind::RcuStall).title, "INFO: rcu detected stall in sys_futex");
    }

    #[test]
    fn arm32_traces() {
        // syzkaller file 547: `(func) from (caller)` frames, saved registers and
        // `Exception stack` dumps between them.
        let ev = scan(include_str!("../testdata/syz547.log"));
        let e = first(&ev, EventKind::RcuStall);
        assert_eq!(e.title, "INFO: rcu detected stall in tcp_setsockopt");
        let n = names(e);
        assert_eq!(&n[..3], ["dump_backtrace", "show_stack", "dump_stack"]);
        assert_eq!(n.last(), Some(&"ret_fast_syscall"));
        assert!(n.windows(2).all(|w| w[0] != w[1]), "{n:?}");
        // Frames up to the interrupt entry ran in IRQ context.
        let irq = n.iter().position(|f| *f == "__irq_svc").unwrap();
        assert!(e.stack[..=irq].iter().all(|f| f.context == FrameContext::Irq));
        assert_eq!(e.stack[irq + 1].context, FrameContext::Task);
        // syzkaller file 550: a hung task on a console without time stamps.
        let ev = scan(include_str!("../testdata/syz550.log"));
        let e = first(&ev, EventKind::HungTask);
        assert_eq!(e.title, "INFO: task hung in mpage_prepare_extent_to_map");
        assert_eq!(e.stack.len(), 24);
    }

    #[test]
    fn powerpc_trace() {
        // syzkaller file 379: `[sp] [pc] func+0x..` frames and ` (unreliable)` ones.
        let ev = scan(include_str!("../testdata/syz379.log"));
        let e = first(&ev, EventKind::HungTask);
        assert_eq!(e.title, "INFO: task hung in exit_aio");
        assert!(!e.stack[0].reliable);
        assert_eq!(e.stack[1].function, "__switch_to");
    }

    #[test]
    fn hung_task_headline_split_by_a_newline_in_the_comm() {
        // syzkaller file 1001
        let ev = scan(include_str!("../testdata/syz1001.log"));
        let e = first(&ev, EventKind::HungTask);
        assert_eq!(e.task.as_ref().map(|t| t.pid), Some(18088));
        assert_eq!(e.duration_s, Some(143.0));
        assert_eq!(e.lines.first, 1);
        assert_eq!(e.title, "INFO: task hung in p9_fd_close");
    }

    #[test]
    fn repeats_keep_their_headline_but_not_their_stack() {
        let report = |t: u32, stuck: u32| {
            format!(
                "[{t}.000000] watchdog: BUG: soft lockup - CPU#1 stuck for {stuck}s! [a:7]\n\
                 [{t}.000001] RIP: 0010:spin+0x1/0x2\n\
                 [{t}.000002] Call Trace:\n\
                 [{t}.000003]  ? dump+0x1/0x2\n\
                 [{t}.000004]  spin+0x1/0x2\n\
                 [{t}.000005]  worker+0x1/0x2\n\
                 [{t}.000006] ok\n[{t}.000007] ok\n[{t}.000008] ok\n[{t}.000009] ok\n"
            )
        };
        let log = [report(100, 22), report(128, 48), report(1000, 900)].concat();
        let ev = scan(&log);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].repeat_of, None);
        assert_eq!(names(&ev[0]), ["spin", "dump", "spin", "worker"]);
        // 28 s later: a repeat, with its own headline, time and duration.
        assert_eq!(ev[1].repeat_of, Some(0));
        assert!(ev[1].stack.is_empty() && ev[1].registers.is_none());
        assert_eq!((ev[1].time, ev[1].duration_s), (Some(128.0), Some(48.0)));
        assert_eq!(ev[1].title, ev[0].title);
        // Too far from the first: whole again.
        assert_eq!(ev[2].repeat_of, None);
        assert_eq!(ev[2].stack.len(), 4);
    }

    #[test]
    fn held_lock_lines() {
        let l = parse_held_lock(" #0: ffff88807e5f8e98 (&mm->mmap_lock){++++}-{3:3}, at: mmap_read_lock include/linux/mmap_lock.h:144 [inline]").unwrap();
        assert_eq!(l.address, Some(0xffff88807e5f8e98));
        assert_eq!(l.name, "&mm->mmap_lock");
        assert!(l.acquired_at.unwrap().starts_with("mmap_read_lock"));
        let l = parse_held_lock(" #1:  (&(&zone->lock)->rlock){-.-.}, at: [<ffffffff81234>] f+0x1/0x2").unwrap();
        assert_eq!((l.address, l.name.as_str()), (None, "&(&zone->lock)->rlock"));
    }
}
