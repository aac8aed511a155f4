//! `lockscope analyze`: opens the inputs, reads IPMI SEL listings, reads each vmcore's memory,
//! streams the logs (a vmcore's printk log among them) to the diagnosis on a second thread,
//! and prints the report in the chosen formats.

use crate::input::{self, Input, InputKind};
use clap::ValueEnum;
use lockscope_diagnosis::stream::Streamer;
use lockscope_diagnosis::{ExternalRecord, SourceFacts, WallTime};
use lockscope_facts::Event;
use lockscope_facts::machine::MachineState;
use lockscope_report::{InputSummary, MachineReport, Report, Style};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc::SyncSender;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Log files; `-` or nothing reads standard input. The kind of each is detected.
    files: Vec<String>,
    /// An IPMI SEL listing (`ipmitool sel list`/`elist`/`get` output) to correlate with.
    #[arg(long = "sel", value_name = "FILE")]
    sel: Vec<String>,
    /// Same as `--format json`.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// For vmcores: ignore the dump's kernel log and diagnose from its memory alone (a log
    /// that was lost, overwritten or is not trusted). Without it, memory's own lockup reports
    /// are used when the log has none.
    #[arg(long = "no-log")]
    no_log: bool,
    /// Also write the report as one self-contained HTML page (summary, root cause, the
    /// waits-for graph, every incident's details) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// For vmcores: a vmlinux with DWARF debuginfo of the dump's kernel build, for kernels
    /// whose dump lacks BTF or kallsyms (symbols and types from it).
    #[arg(long, value_name = "FILE")]
    vmlinux: Option<std::path::PathBuf>,
    /// For vmcores: the System.map of the dump's kernel, for symbols kallsyms lacks.
    #[arg(long = "system-map", value_name = "FILE")]
    system_map: Option<std::path::PathBuf>,
}

/// What the reading thread hands the diagnosing one.
enum Work {
    Segment(lockscope_log::Segment),
    /// Reports derived from a vmcore's memory.
    Events(Vec<Event>),
}

/// What reading the inputs gathers besides the events.
struct Gathered {
    errors: Vec<String>,
    summaries: Vec<Option<InputSummary>>,
    /// Inputs that gave something to analyse.
    usable: usize,
    external: Vec<ExternalRecord>,
    machines: Vec<MachineReport>,
    facts: Vec<SourceFacts>,
}

/// Work in batches: one wake-up of the worker per boot costs more than a small boot takes to
/// read.
struct Feeder {
    tx: SyncSender<Vec<Work>>,
    batch: Vec<Work>,
    events: usize,
}

impl Feeder {
    const BATCH_EVENTS: usize = 2048;

    fn push(&mut self, w: Work, events: usize) {
        self.events += events + 1;
        self.batch.push(w);
        if self.events >= Self::BATCH_EVENTS {
            self.events = 0;
            // The worker only stops early by panicking; the join reports that.
            let _ = self.tx.send(std::mem::take(&mut self.batch));
        }
    }
}

pub fn run(args: AnalyzeArgs) -> ExitCode {
    let (mut inputs, errors) = match open_inputs(&args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut g = Gathered {
        errors,
        summaries: vec![None; inputs.len()],
        usable: 0,
        external: Vec::new(),
        machines: Vec::new(),
        facts: Vec::new(),
    };
    // SEL listings first: whether there are records from outside the logs decides how the
    // logs stream (see `lockscope_diagnosis::stream`).
    for (idx, inp) in inputs.iter_mut().enumerate().filter(|(_, i)| i.kind == InputKind::Sel) {
        read_sel(idx, inp, &mut g);
    }
    // A vmcore's memory is read first: its facts go to the diagnosis with its log.
    let debuginfo = lockscope_kernel::KernelOptions {
        vmlinux: args.vmlinux.clone(),
        system_map: args.system_map.clone(),
        ..Default::default()
    };
    let mut dumps: HashMap<usize, Result<input::DumpFacts, String>> = inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| i.kind == InputKind::Dump)
        .map(|(idx, i)| (idx, i.dump_facts(idx, &debuginfo)))
        .collect();
    let machine: Vec<(usize, MachineState)> =
        dumps.iter().filter_map(|(&idx, f)| f.as_ref().ok().map(|f| (idx, f.machine.clone()))).collect();
    let streamer = stream_logs(&mut inputs, &args, &mut g, &mut dumps, machine);
    for e in &g.errors {
        eprintln!("lockscope: {e}");
    }
    if g.usable == 0 {
        if g.errors.is_empty() {
            return crate::fail("nothing to analyse");
        }
        return ExitCode::from(2);
    }
    let streamed = streamer.finish(&g.external, &g.facts);
    let summaries: Vec<InputSummary> = g.summaries.into_iter().flatten().collect();
    let report = Report {
        inputs: &summaries,
        events: &streamed.events,
        held_locks: &streamed.held_locks,
        diagnosis: &streamed.diagnosis,
        machines: &g.machines,
    };
    print(&args, &report)
}

fn open_inputs(args: &AnalyzeArgs) -> Result<(Vec<Input>, Vec<String>), ExitCode> {
    let mut files = args.files.clone();
    if files.is_empty() && args.sel.is_empty() {
        if std::io::stdin().is_terminal() {
            return Err(crate::fail("no input: give log files, or pipe a log on standard input (see --help)"));
        }
        files.push("-".into());
    }
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let kinds = files.iter().map(|f| (f, None)).chain(args.sel.iter().map(|f| (f, Some(InputKind::Sel))));
    for (f, kind) in kinds {
        match Input::open(f, kind) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push(e),
        }
    }
    Ok((inputs, errors))
}

/// An IPMI SEL listing: its error records, with their wall-clock times.
fn read_sel(idx: usize, inp: &mut Input, g: &mut Gathered) {
    let mut summary = InputSummary { name: inp.name.clone(), kind: inp.kind.as_str().into(), ..Default::default() };
    match inp.read_all().map(|b| lockscope_log::hardware::parse_sel(&b)) {
        Ok(p) => {
            summary.lines = p.records.len() as u64 + p.rejected.len() as u64;
            if !p.rejected.is_empty() {
                summary.notes.push(format!(
                    "{} line(s) are not SEL records (first: line {}: {})",
                    p.rejected.len(),
                    p.rejected[0].0,
                    p.rejected[0].1
                ));
            }
            if p.records.is_empty() {
                g.errors.push(format!("{}: no IPMI SEL records found", inp.name));
            } else {
                g.usable += 1;
            }
            for rec in &p.records {
                let wall = match (rec.date, rec.time) {
                    (Some((y, m, d)), Some((hh, mm, ss))) => Some(WallTime {
                        year: Some(y),
                        month: m,
                        day: d,
                        second_of_day: u32::from(hh) * 3600 + u32::from(mm) * 60 + u32::from(ss),
                    }),
                    _ => None,
                };
                // A deasserted event marks the end of a fault, not a new one.
                if rec.is_error() && rec.direction.as_deref() != Some("Deasserted") {
                    let hw = rec.to_hardware_record();
                    g.external.push(ExternalRecord {
                        text: hw.description.clone(),
                        record: hw,
                        wall,
                        source: idx,
                        line: rec.line,
                    });
                }
            }
            summary.events = g.external.iter().filter(|x| x.source == idx).count();
        }
        Err(e) => g.errors.push(e),
    }
    g.summaries[idx] = Some(summary);
}

/// The logs stream: this thread reads and parses, a second one diagnoses each segment (a
/// boot) as it comes and keeps only what differs from the incidents already seen.
fn stream_logs(
    inputs: &mut [Input],
    args: &AnalyzeArgs,
    g: &mut Gathered,
    dumps: &mut HashMap<usize, Result<input::DumpFacts, String>>,
    machine: Vec<(usize, MachineState)>,
) -> Streamer {
    let scanner = lockscope_log::Scanner::new();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Work>>(4);
        let has_external = !g.external.is_empty();
        let worker = scope.spawn(move || {
            let mut streamer = Streamer::new(has_external).with_machine(machine);
            for work in rx.into_iter().flatten() {
                match work {
                    Work::Segment(mut seg) => {
                        if let Some((source, m)) = seg.take_machine() {
                            streamer.add_machine(source, m);
                        }
                        let (events, held) = seg.into_parts();
                        streamer.push(events, held);
                    }
                    Work::Events(events) => streamer.push(events, Vec::new()),
                }
            }
            streamer
        });
        let mut feeder = Feeder { tx, batch: Vec::new(), events: 0 };
        for (idx, inp) in inputs.iter_mut().enumerate().filter(|(_, i)| i.kind != InputKind::Sel) {
            let dump = dumps.remove(&idx);
            scan_input(idx, inp, args, g, dump, &scanner, &mut feeder);
        }
        let Feeder { tx, batch, .. } = feeder;
        let _ = tx.send(batch);
        drop(tx);
        worker.join().expect("diagnosis thread")
    })
}

/// Adds to the dump log's last segment with a lockup report the reports derived from memory
/// about CPUs and tasks the log says nothing of (a task blocked for longer than the
/// hung-task timeout that the detector had not reported yet, say), placed just after that
/// segment's last lockup report so that they join its incident. Returns how many.
fn merge_memory_reports(segments: &mut [lockscope_log::Segment], memory: Vec<Event>) -> usize {
    let Some(last) = segments.iter().rposition(|s| s.has_lockup()) else { return 0 };
    let logged = |e: &Event| {
        segments.iter().flat_map(|s| s.events()).any(|l| {
            (e.cpu.is_some() && l.cpu == e.cpu && l.kind.is_lockup())
                || e.task.as_ref().is_some_and(|t| l.task.as_ref().is_some_and(|lt| lt.pid == t.pid))
        })
    };
    let Some(anchor) = segments[last].events().iter().rev().find(|e| e.kind.is_lockup()).cloned() else { return 0 };
    let new: Vec<Event> = memory
        .into_iter()
        .filter(|e| e.kind.is_lockup() && !logged(e))
        .map(|mut e| {
            e.time = anchor.time;
            e.boot = anchor.boot;
            e.host.clone_from(&anchor.host);
            e.release.clone_from(&anchor.release);
            e.lines = lockscope_facts::LineRange { first: anchor.lines.last, ..anchor.lines };
            e
        })
        .collect();
    let n = new.len();
    segments[last].add_events(new);
    n
}

/// One log, or one vmcore: its kernel log (or, with `--no-log` or a log without reports, the
/// reports derived from its memory) and its machine state.
fn scan_input(
    idx: usize,
    inp: &mut Input,
    args: &AnalyzeArgs,
    g: &mut Gathered,
    dump: Option<Result<input::DumpFacts, String>>,
    scanner: &lockscope_log::Scanner,
    feeder: &mut Feeder,
) {
    let mut summary = InputSummary { name: inp.name.clone(), kind: inp.kind.as_str().into(), ..Default::default() };
    let mut memory_events: Vec<Event> = Vec::new();
    let dump_log = match dump {
        None => None,
        Some(Err(e)) => {
            g.errors.push(e);
            g.summaries[idx] = Some(summary);
            return;
        }
        Some(Ok(f)) => {
            summary.notes.extend(f.notes);
            g.machines.push(MachineReport {
                input: idx,
                name: inp.name.clone(),
                crash_session: false,
                state: f.machine,
            });
            if args.no_log {
                summary
                    .notes
                    .push(format!("kernel log ignored (--no-log): {} report(s) derived from memory", f.events.len()));
                summary.events = f.events.len();
                feeder.push(Work::Events(f.events), summary.events);
                g.facts.push(SourceFacts { name: inp.name.clone(), ..Default::default() });
                g.usable += 1;
                g.summaries[idx] = Some(summary);
                return;
            }
            summary.notes.push(format!("kernel log read from the dump's printk buffer ({} records)", f.records));
            memory_events = f.events;
            Some(f.log)
        }
    };
    let name = inp.name.clone();
    let reader: Result<Box<dyn std::io::Read + '_>, String> = match &dump_log {
        Some(log) => Ok(Box::new(&log[..])),
        None => inp.reader().map(|r| Box::new(r) as Box<dyn std::io::Read>),
    };
    let mut count = 0;
    let mut log_has_lockup = false;
    // A dump's log is small: its segments wait until its memory's reports are merged in.
    let mut held_back: Vec<lockscope_log::Segment> = Vec::new();
    let is_dump = dump_log.is_some();
    let scanned = reader.map(|r| {
        scanner.scan_segments(idx, &name, r, |seg| {
            count += seg.len();
            log_has_lockup |= seg.has_lockup();
            if is_dump {
                held_back.push(seg);
            } else {
                let n = seg.len();
                feeder.push(Work::Segment(seg), n);
            }
        })
    });
    if log_has_lockup {
        let added = merge_memory_reports(&mut held_back, std::mem::take(&mut memory_events));
        if added > 0 {
            summary.notes.push(format!(
                "{added} report(s) derived from memory about CPUs or tasks the dump's log does not report on"
            ));
            count += added;
        }
    }
    // The log's own oops or panic report says more than memory's reading of the same crash.
    let log_has_crash = held_back
        .iter()
        .flat_map(|s| s.events())
        .any(|e| matches!(e.kind, lockscope_facts::EventKind::Oops | lockscope_facts::EventKind::Panic));
    if log_has_crash {
        memory_events.retain(|e| e.kind.is_lockup());
    }
    for seg in held_back {
        let n = seg.len();
        feeder.push(Work::Segment(seg), n);
    }
    if !memory_events.is_empty() {
        summary
            .notes
            .push(format!("the dump's log holds no lockup report: {} derived from memory", memory_events.len()));
        count += memory_events.len();
        let n = memory_events.len();
        feeder.push(Work::Events(memory_events), n);
    }
    match scanned {
        Ok(Ok(info)) => {
            if let Some(m) = info.transcript.clone() {
                summary.notes.push("a crash session: its command output read as machine state".into());
                g.machines.push(MachineReport { input: idx, name: inp.name.clone(), crash_session: true, state: m });
            }
            summary.bytes = info.bytes;
            summary.lines = info.lines;
            summary.events = count;
            if info.truncated_lines > 0 {
                summary.notes.push(format!("{} over-long line(s) were cut at 1 MiB", info.truncated_lines));
            }
            if info.bytes == 0 {
                g.errors.push(format!("{}: empty file", inp.name));
            } else if count == 0 && !inp.looks_like_kernel_log && info.transcript.is_none() {
                g.errors
                    .push(format!("{}: no kernel log lines found (not a dmesg, console, syslog or journal)", inp.name));
            } else {
                g.usable += 1;
                if count == 0 {
                    summary.notes.push("no lockup, hang, oops or panic report in this log".into());
                }
            }
            g.facts.push(SourceFacts {
                name: inp.name.clone(),
                hosts: info.hosts.clone(),
                silences: info
                    .boot_ends
                    .iter()
                    .chain(info.last_wall.iter())
                    .filter_map(|w| WallTime::parse(w))
                    .collect(),
                last_line: info.lines,
            });
        }
        Ok(Err(e)) => g.errors.push(format!("{}: read error after {} bytes: {e}", inp.name, inp.consumed())),
        Err(e) => g.errors.push(e),
    }
    g.summaries[idx] = Some(summary);
}

/// The report on standard output, and as an HTML page when asked.
fn print(args: &AnalyzeArgs, report: &Report<'_>) -> ExitCode {
    let format = if args.json { Format::Json } else { args.format };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    if let Some(path) = &args.html {
        // Never over an input.
        if args.files.iter().chain(&args.sel).any(|f| std::path::Path::new(f) == path.as_path()) {
            return crate::fail(&format!("{}: --html would overwrite an input", path.display()));
        }
        if let Err(e) = std::fs::write(path, lockscope_report::html::page(report)) {
            return crate::fail(&format!("{}: cannot write the HTML report: {e}", path.display()));
        }
    }
    let out = match format {
        Format::Json => lockscope_report::json(report),
        Format::Markdown => lockscope_report::markdown(report),
        Format::Text => lockscope_report::text(report, Style { color }),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    ExitCode::SUCCESS
}
