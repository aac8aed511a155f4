//! `lockscope convert IN... OUT`: a vmcore (ELF core, kdump-compressed, flattened, or the files
//! of a split dump) written again as a kdump-compressed file with another page compression,
//! optionally split over several files (makedumpfile `--split`) or as a flattened stream.

use lockscope_dump::{Compression, Dump, Progress, WriteErrorKind, WriteOptions};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Codec {
    Zlib,
    /// LZO1X; compressing is slow here (~16 MB/s per thread).
    Lzo,
    Snappy,
    Zstd,
    None,
}

#[derive(clap::Args)]
#[command(after_help = "\
Filtering: only what needs no kernel knowledge is offered. --exclude-zero stores every page of
zeros once (dump level bit 1; the pages still read back as zeros, as with makedumpfile -d 1).
Excluding cache, user or free pages (levels 2, 4, 8, 16) needs the kernel's page flags, which
this command does not read: use makedumpfile for those. Pages the input already left out stay
left out, and the input's dump level is kept.

With --split N the output files are OUT.1 ... OUT.N, each holding an equal share of the pages;
`lockscope dump-info OUT.*` opens them together. The input is never written: outputs are
written under a temporary name beside them, then renamed.")]
pub struct ConvertArgs {
    /// The input vmcore (several files: the parts of a split dump), then the output file.
    #[arg(required = true, num_args = 2.., value_name = "IN... OUT")]
    paths: Vec<String>,
    /// Page compression of the output.
    #[arg(long, value_enum)]
    compress: Codec,
    /// Split the output into N files (OUT.1 ... OUT.N).
    #[arg(long, value_name = "N", default_value_t = 1)]
    split: usize,
    /// Store pages of zeros once (dump level bit 1).
    #[arg(long)]
    exclude_zero: bool,
    /// Write makedumpfile's flattened stream (as `makedumpfile -F`).
    #[arg(long)]
    flattened: bool,
    /// Threads compressing pages (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Replace output files that exist.
    #[arg(long)]
    force: bool,
}

pub fn run(args: ConvertArgs) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("lockscope: {msg}");
        ExitCode::from(2)
    };
    let (out, inputs) = args.paths.split_last().expect("clap requires two paths");
    if args.split == 0 || args.split > lockscope_dump::MAX_SPLIT {
        return fail(format!("--split takes 1 to {}", lockscope_dump::MAX_SPLIT));
    }
    let started = Instant::now();
    let dump = match Dump::open_many(inputs) {
        Ok(d) => d,
        Err(e) => {
            let who = e.file.and_then(|i| inputs.get(i as usize)).unwrap_or(&inputs[0]);
            return fail(format!("{who}: {e}"));
        }
    };
    let outputs: Vec<String> =
        if args.split == 1 { vec![out.clone()] } else { (1..=args.split).map(|i| format!("{out}.{i}")).collect() };
    let compression = match args.compress {
        Codec::Zlib => Compression::Zlib,
        Codec::Lzo => Compression::Lzo,
        Codec::Snappy => Compression::Snappy,
        Codec::Zstd => Compression::Zstd,
        Codec::None => Compression::None,
    };
    let opts = WriteOptions {
        compression,
        exclude_zero: args.exclude_zero,
        flattened: args.flattened,
        threads: args.threads,
        overwrite: args.force,
    };
    let mut bar = ProgressLine::new(std::io::stderr().is_terminal());
    let result = lockscope_dump::write_kdump(&dump, &outputs, &opts, &mut |p| bar.update(p));
    bar.clear();
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let who = match (e.kind, e.file) {
                (WriteErrorKind::Input(_), _) | (_, None) => inputs.join(" "),
                (_, Some(i)) => outputs.get(i as usize).cloned().unwrap_or_default(),
            };
            return fail(format!("{who}: {e}"));
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let meta = dump.metadata();
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "{} ({}) -> {} ({}): {} pages, {:.1} MB -> {:.1} MB in {secs:.2} s",
        inputs.join(" "),
        describe(meta),
        outputs.join(" "),
        compression.name(),
        stats.pages,
        meta.file_size as f64 / 1e6,
        stats.bytes as f64 / 1e6,
    );
    if let Some(c) = meta.notes_cut {
        let _ = writeln!(o, "  {}", notes_cut_text(&c));
    }
    if stats.zero_pages > 0 {
        let _ = writeln!(o, "  {} pages of zeros stored once (dump level bit 1)", stats.zero_pages);
    }
    if stats.stored_raw > 0 {
        let _ = writeln!(o, "  {} pages stored uncompressed (compression did not make them smaller)", stats.stored_raw);
    }
    if stats.lost_pages > 0 {
        let _ =
            writeln!(o, "  {} pages the input could not provide are marked lost (incomplete dump)", stats.lost_pages);
    }
    if stats.files.len() > 1 {
        for (name, f) in outputs.iter().zip(&stats.files) {
            let _ =
                writeln!(o, "  {name}: PFNs {:#x}-{:#x}, {} pages, {} bytes", f.start_pfn, f.end_pfn, f.pages, f.bytes);
        }
    }
    ExitCode::SUCCESS
}

/// Said by convert and dump-info alike.
pub(crate) fn notes_cut_text(c: &lockscope_dump::NotesCut) -> String {
    format!(
        "note area at offset {:#x} declares {} bytes but holds {} bytes of notes: only those are used",
        c.offset, c.declared, c.kept
    )
}

fn describe(meta: &lockscope_dump::Metadata) -> String {
    match meta.format {
        lockscope_dump::Format::Elf => meta.format.describe().to_string(),
        _ => format!("{}, {}", meta.format.describe(), meta.compression.name()),
    }
}

/// One line on a terminal, redrawn at most 10 times a second.
struct ProgressLine {
    on: bool,
    started: Instant,
    last: Option<Instant>,
}

impl ProgressLine {
    fn new(on: bool) -> ProgressLine {
        ProgressLine { on, started: Instant::now(), last: None }
    }

    fn update(&mut self, p: Progress) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let share = p.pages_done as f64 / p.pages_total.max(1) as f64;
        let eta = if share > 0.0 { secs / share - secs } else { 0.0 };
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2Kconverting: {:5.1}%  {}/{} pages  {:.0} pages/s  written {:.1} MB  ETA {:.0} s",
            100.0 * share,
            p.pages_done,
            p.pages_total,
            p.pages_done as f64 / secs,
            p.bytes_written as f64 / 1e6,
            eta
        );
        let _ = e.flush();
    }

    fn clear(&mut self) {
        if self.on && self.last.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
