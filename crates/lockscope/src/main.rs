//! `lockscope`: the command line. A thin layer: it opens inputs, detects what each one is,
//! runs the log reader and the diagnosis engine, and hands the result to a printer.

mod bt;
mod convert;
mod dis;
mod dump_info;
mod input;
mod kernel_cmds;

use clap::{Parser, Subcommand, ValueEnum};
use input::{Input, InputKind};
use lockscope_diagnosis::stream::Streamer;
use lockscope_diagnosis::{ExternalRecord, SourceFacts, WallTime};
use lockscope_report::{InputSummary, MachineReport, Report, Style};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lockscope",
    version,
    about = "Explains Linux lockups and hangs from kernel logs: who is stuck, on what, and why"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print text from dumps and logs as it is: no escaping of control characters and
    /// terminal escape sequences (which are shown as `\x1b` by default).
    #[arg(long, global = true)]
    raw: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse kernel logs (dmesg, console, syslog, journal, crash `log`, vmcore-dmesg.txt).
    Analyze(AnalyzeArgs),
    /// Describe vmcores: format, compression, dump level, CPUs and registers, memory, VMCOREINFO.
    DumpInfo(dump_info::DumpInfoArgs),
    /// Rewrite a vmcore as kdump-compressed: another compression, split into files, zero pages once.
    Convert(convert::ConvertArgs),
    #[command(flatten)]
    Kernel(kernel_cmds::KernelCommand),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
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
}

/// What the reading thread hands the diagnosing one.
enum Work {
    Segment(lockscope_log::Segment),
    /// Reports derived from a vmcore's memory.
    Events(Vec<lockscope_facts::Event>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lockscope_report::escape::set_raw(cli.raw);
    match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::DumpInfo(a) => dump_info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Kernel(c) => kernel_cmds::run(c),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("lockscope: {}", lockscope_report::escape::output(msg));
    ExitCode::from(2)
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    let mut files = args.files.clone();
    if files.is_empty() && args.sel.is_empty() {
        if std::io::stdin().is_terminal() {
            return fail("no input: give log files, or pipe a log on standard input (see --help)");
        }
        files.push("-".into());
    }
    let mut inputs: Vec<Input> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut machines: Vec<MachineReport> = Vec::new();
    for f in &files {
        match Input::open(f, None) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push(e),
        }
    }
    for f in &args.sel {
        match Input::open(f, Some(InputKind::Sel)) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push(e),
        }
    }
    // SEL listings first: whether there are records from outside the logs decides how the
    // logs stream (see `lockscope_diagnosis::stream`).
    let mut external: Vec<ExternalRecord> = Vec::new();
    let mut summaries: Vec<Option<InputSummary>> = vec![None; inputs.len()];
    let mut usable = 0;
    for (idx, inp) in inputs.iter_mut().enumerate() {
        if inp.kind != InputKind::Sel {
            continue;
        }
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
                    errors.push(format!("{}: no IPMI SEL records found", inp.name));
                } else {
                    usable += 1;
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
                        external.push(ExternalRecord {
                            text: hw.description.clone(),
                            record: hw,
                            wall,
                            source: idx,
                            line: rec.line,
                        });
                    }
                }
                summary.events = external.iter().filter(|x| x.source == idx).count();
            }
            Err(e) => errors.push(e),
        }
        summaries[idx] = Some(summary);
    }
    // The logs stream: this thread reads and parses, a second one diagnoses each segment
    // (a boot) as it comes and keeps only what differs from the incidents already seen.
    // A vmcore's memory is read first: its facts go to the diagnosis with its log.
    let mut dump_facts: std::collections::HashMap<usize, Result<input::DumpFacts, String>> = inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| i.kind == InputKind::Dump)
        .map(|(idx, i)| (idx, i.dump_facts(idx)))
        .collect();
    let machine: Vec<(usize, lockscope_facts::machine::MachineState)> =
        dump_facts.iter().filter_map(|(&idx, f)| f.as_ref().ok().map(|f| (idx, f.machine.clone()))).collect();
    let scanner = lockscope_log::Scanner::new();
    let mut facts = Vec::new();
    let streamer = std::thread::scope(|scope| {
        // Segments go over in batches: one wake-up of the worker per boot costs more than
        // a small boot takes to read.
        const BATCH_EVENTS: usize = 2048;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Work>>(4);
        let has_external = !external.is_empty();
        let worker = scope.spawn(move || {
            let mut streamer = Streamer::new(has_external).with_machine(machine);
            for batch in rx {
                for work in batch {
                    match work {
                        Work::Segment(seg) => {
                            let (events, held) = seg.into_parts();
                            streamer.push(events, held);
                        }
                        Work::Events(events) => streamer.push(events, Vec::new()),
                    }
                }
            }
            streamer
        });
        let mut batch: Vec<Work> = Vec::new();
        let mut batch_events = 0;
        for (idx, inp) in inputs.iter_mut().enumerate() {
            if inp.kind == InputKind::Sel {
                continue;
            }
            let mut summary =
                InputSummary { name: inp.name.clone(), kind: inp.kind.as_str().into(), ..Default::default() };
            let name = inp.name.clone();
            let mut count = 0;
            // A vmcore contributes its kernel log, the machine state its memory shows (which
            // the diagnosis reads too), and the lockup reports memory implies, used when the
            // log is ignored or has none.
            let mut memory_events: Vec<lockscope_facts::Event> = Vec::new();
            let dump_log = if inp.kind == InputKind::Dump {
                match dump_facts.remove(&idx).expect("read above") {
                    Ok(f) => {
                        summary.notes.extend(f.notes);
                        machines.push(MachineReport { input: idx, name: inp.name.clone(), state: f.machine });
                        if args.no_log {
                            summary.notes.push(format!(
                                "kernel log ignored (--no-log): {} lockup report(s) derived from memory",
                                f.events.len()
                            ));
                            summary.events = f.events.len();
                            batch.push(Work::Events(f.events));
                            facts.push(SourceFacts { name: inp.name.clone(), ..Default::default() });
                            usable += 1;
                            summaries[idx] = Some(summary);
                            continue;
                        }
                        summary
                            .notes
                            .push(format!("kernel log read from the dump's printk buffer ({} records)", f.records));
                        memory_events = f.events;
                        Some(f.log)
                    }
                    Err(e) => {
                        errors.push(e);
                        summaries[idx] = Some(summary);
                        continue;
                    }
                }
            } else {
                None
            };
            let reader: Result<Box<dyn std::io::Read + '_>, String> = match &dump_log {
                Some(log) => Ok(Box::new(&log[..])),
                None => inp.reader().map(|r| Box::new(r) as Box<dyn std::io::Read>),
            };
            let mut log_has_lockup = false;
            let scanned = reader.map(|r| {
                scanner.scan_segments(idx, &name, r, |seg| {
                    count += seg.len();
                    batch_events += seg.len() + 1;
                    log_has_lockup |= seg.has_lockup();
                    batch.push(Work::Segment(seg));
                    if batch_events >= BATCH_EVENTS {
                        batch_events = 0;
                        // The worker only stops early by panicking; the join below reports that.
                        let _ = tx.send(std::mem::take(&mut batch));
                    }
                })
            });
            if !log_has_lockup && !memory_events.is_empty() {
                summary.notes.push(format!(
                    "the dump's log holds no lockup report: {} derived from memory",
                    memory_events.len()
                ));
                count += memory_events.len();
                batch.push(Work::Events(std::mem::take(&mut memory_events)));
            }
            match scanned {
                Ok(Ok(info)) => {
                    summary.bytes = info.bytes;
                    summary.lines = info.lines;
                    summary.events = count;
                    if info.truncated_lines > 0 {
                        summary.notes.push(format!("{} over-long line(s) were cut at 1 MiB", info.truncated_lines));
                    }
                    if info.bytes == 0 {
                        errors.push(format!("{}: empty file", inp.name));
                    } else if count == 0 && !inp.looks_like_kernel_log {
                        errors.push(format!(
                            "{}: no kernel log lines found (not a dmesg, console, syslog or journal)",
                            inp.name
                        ));
                    } else {
                        usable += 1;
                        if count == 0 {
                            summary.notes.push("no lockup, hang, oops or panic report in this log".into());
                        }
                    }
                    facts.push(SourceFacts {
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
                Ok(Err(e)) => errors.push(format!("{}: read error after {} bytes: {e}", inp.name, inp.consumed())),
                Err(e) => errors.push(e),
            }
            summaries[idx] = Some(summary);
        }
        let _ = tx.send(batch);
        drop(tx);
        worker.join().expect("diagnosis thread")
    });
    let summaries: Vec<InputSummary> = summaries.into_iter().flatten().collect();
    for e in &errors {
        eprintln!("lockscope: {e}");
    }
    if usable == 0 {
        if errors.is_empty() {
            return fail("nothing to analyse");
        }
        return ExitCode::from(2);
    }
    let streamed = streamer.finish(&external, &facts);
    let (events, held, diagnosis) = (streamed.events, streamed.held_locks, streamed.diagnosis);
    let report =
        Report { inputs: &summaries, events: &events, held_locks: &held, diagnosis: &diagnosis, machines: &machines };
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
            return fail(&format!("{}: --html would overwrite an input", path.display()));
        }
        if let Err(e) = std::fs::write(path, lockscope_report::html::page(&report)) {
            return fail(&format!("{}: cannot write the HTML report: {e}", path.display()));
        }
    }
    let out = match format {
        Format::Json => lockscope_report::json(&report),
        Format::Markdown => lockscope_report::markdown(&report),
        Format::Text => lockscope_report::text(&report, Style { color }),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    ExitCode::SUCCESS
}
