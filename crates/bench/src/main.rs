//! `lockscope-bench`: single-threaded throughput and peak memory of the kernel-log reader on
//! a large log assembled from real logs (see BENCHMARKS.md, "Kernel-log scanning").
//!
//! It writes a log of at least `--mb` MB (10^6 bytes) under the temp directory by repeating
//! real logs from `shared/` (the corpus serial consoles, the syzkaller reports without their
//! `TITLE:`/`TYPE:` header lines, the dmesg/syslog lines of the seed analyses), then times,
//! best of `--runs`:
//! - `memchr` line count: a lower bound for any line-oriented reader;
//! - `grep -c` of one trigger and of all triggers (`LC_ALL=C grep -F`), for comparison;
//! - "find event lines": the reader's pre-filter alone (its chunk reader and trigger
//!   automaton, as `Scanner::scan` uses them while no report is open);
//! - `Scanner::scan` end to end, with full parsing and titles;
//!
//! and the peak RSS (VmHWM, reset through `/proc/self/clear_refs` before each step).
//!
//! Usage: `lockscope-bench [--mb 500] [--mix all|console] [--runs 3] [--shared DIR] [--keep] [--scan-only]`

use aho_corasick::{AhoCorasick, MatchKind};
use lockscope_log::{Scanner, headers::TRIGGERS, lines::ChunkReader};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Args {
    mb: u64,
    mix: String,
    runs: usize,
    shared: PathBuf,
    keep: bool,
    /// Only the end-to-end scan (for profilers).
    scan_only: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        mb: 500,
        mix: "all".into(),
        runs: 3,
        shared: std::env::var_os("LOCKSCOPE_SHARED").map_or("/work/shared".into(), PathBuf::from),
        keep: false,
        scan_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--mb" => a.mb = val().parse().unwrap_or_else(|_| usage("--mb takes a number")),
            "--runs" => a.runs = val().parse().unwrap_or_else(|_| usage("--runs takes a number")),
            "--mix" => a.mix = val(),
            "--shared" => a.shared = val().into(),
            "--keep" => a.keep = true,
            "--scan-only" => a.scan_only = true,
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    if !matches!(a.mix.as_str(), "all" | "console") || a.runs == 0 {
        usage("--mix is all or console, --runs at least 1");
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!("lockscope-bench: {msg}");
    eprintln!("usage: lockscope-bench [--mb N] [--mix all|console] [--runs N] [--shared DIR] [--keep]");
    std::process::exit(2)
}

fn main() -> io::Result<()> {
    let args = parse_args();
    let pieces = real_logs(&args.shared, &args.mix)?;
    let path = std::env::temp_dir().join(format!("lockscope-bench-{}-{}MB.log", args.mix, args.mb));
    let size = assemble(&path, &pieces, args.mb * 1_000_000)?;
    drop(pieces);
    let mb = size as f64 / 1e6;
    println!("input: {} ({mb:.0} MB, mix `{}`, best of {} runs)", path.display(), args.mix, args.runs);
    println!();
    println!("| step | MB/s | seconds | peak RSS (MiB) | result |");
    println!("|---|---:|---:|---:|---|");
    // Peak RSS is this process's; grep runs as a child, so it has none here.
    let row = |name: &str, t: Duration, result: String, rss: Option<u64>| {
        let s = t.as_secs_f64();
        let rss = rss.map_or("–".into(), |k| (k / 1024).to_string());
        println!("| {name} | {:.0} | {s:.3} | {rss} | {result} |", mb / s);
    };

    if !args.scan_only {
        let (t, lines, rss) = measure(args.runs, || count_lines(&path))?;
        row("memchr line count (baseline)", t, format!("{lines} lines"), Some(rss));
        let (t, n, _) = measure(args.runs, || grep_count(&path, &["soft lockup"]))?;
        row("`grep -c -F 'soft lockup'`", t, format!("{n} lines"), None);
        let (t, grep_all, _) = measure(args.runs, || grep_count(&path, TRIGGERS))?;
        row(&format!("`grep -c -F` all {} triggers", TRIGGERS.len()), t, format!("{grep_all} lines"), None);
        let (t, found, rss) = measure(args.runs, || find_event_lines(&path))?;
        let share = 100.0 * found as f64 / lines.max(1) as f64;
        let result = format!("{found} trigger lines ({share:.1}% of lines)");
        row("find event lines (pre-filter)", t, result, Some(rss));
        if found != grep_all {
            eprintln!("warning: the pre-filter found {found} lines, grep {grep_all}");
        }
    }

    let scanner = Scanner::new();
    let (t, result, rss) = measure(args.runs, || {
        let s = scanner.scan(0, "bench", File::open(&path)?)?;
        let inside = 100.0 * lines_in_events(&s) as f64 / s.info.lines.max(1) as f64;
        let repeats = s.events.iter().filter(|e| e.repeat_of.is_some()).count();
        Ok(format!("{} events ({repeats} repeats) covering {inside:.0}% of {} lines", s.events.len(), s.info.lines))
    })?;
    row("`Scanner::scan` end to end", t, result, Some(rss));

    if !args.keep {
        fs::remove_file(&path)?;
    }
    Ok(())
}

/// Runs `f` `runs` times; the fastest time, its result and the highest peak RSS (KiB).
fn measure<T>(runs: usize, mut f: impl FnMut() -> io::Result<T>) -> io::Result<(Duration, T, u64)> {
    let mut best: Option<(Duration, T)> = None;
    let mut rss = 0;
    for _ in 0..runs {
        reset_peak_rss();
        let t0 = Instant::now();
        let r = f()?;
        let t = t0.elapsed();
        rss = rss.max(peak_rss_kib());
        if best.as_ref().is_none_or(|(b, _)| t < *b) {
            best = Some((t, r));
        }
    }
    let (t, r) = best.expect("runs >= 1");
    Ok((t, r, rss))
}

/// Lines inside at least one event's line range.
fn lines_in_events(s: &lockscope_log::SourceScan) -> u64 {
    let mut ranges: Vec<(u64, u64)> = s.events.iter().map(|e| (e.lines.first, e.lines.last)).collect();
    ranges.sort_unstable();
    let (mut total, mut reached) = (0, 0);
    for (first, last) in ranges {
        let first = first.max(reached + 1);
        if last >= first {
            total += last - first + 1;
            reached = last;
        }
    }
    total
}

/// Lets VmHWM restart from the current RSS (Linux ≥ 4.0); harmless where refused.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn count_lines(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += memchr::memchr_iter(b'\n', &buf[..k]).count() as u64;
    }
}

fn grep_count(path: &Path, patterns: &[&str]) -> io::Result<u64> {
    let mut cmd = Command::new("grep");
    // -a: without it grep treats NUL bytes of binary-looking input as line ends.
    cmd.env("LC_ALL", "C").arg("-c").arg("-a").arg("-F");
    for p in patterns {
        cmd.arg("-e").arg(p);
    }
    let out = cmd.arg(path).output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("grep failed: {}", String::from_utf8_lossy(&out.stderr))))
}

/// The scanner's idle path: its chunk reader and the same trigger automaton, jumping from
/// one line holding a trigger to the next. Returns the number of such lines.
fn find_event_lines(path: &Path) -> io::Result<u64> {
    let ac = AhoCorasick::builder().match_kind(MatchKind::LeftmostFirst).build(TRIGGERS).map_err(io::Error::other)?;
    let mut rd = ChunkReader::new(File::open(path)?);
    let mut hits = 0u64;
    while let Some(chunk) = rd.next_chunk()? {
        let mut pos = 0;
        while let Some(m) = ac.find(&chunk[pos..]) {
            hits += 1;
            let end = pos + m.end();
            match memchr::memchr(b'\n', &chunk[end..]) {
                Some(i) => pos = end + i + 1,
                None => break,
            }
        }
    }
    Ok(hits)
}

/// The real logs the benchmark input is made of, each ending in a newline.
fn real_logs(shared: &Path, mix: &str) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for dir in sorted_dir(&shared.join("corpus"))? {
        if let Ok(log) = fs::read(dir.join("console.log")) {
            out.push(log);
        }
    }
    if mix == "all" {
        for f in sorted_dir(&shared.join("external/syzkaller-report"))? {
            // Test cases are numbered; skip LICENSE and README.md.
            let numbered =
                f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if numbered {
                out.push(strip_report_header(&fs::read(&f)?).to_vec());
            }
        }
        for f in sorted_dir(&shared.join("seeds"))? {
            let text = fs::read(&f)?;
            let log: Vec<u8> = text
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| is_log_line(l))
                .flat_map(|l| l.trim_ascii_start().iter().copied())
                .collect();
            out.push(log);
        }
    }
    out.retain(|p| !p.is_empty());
    for p in &mut out {
        if !p.ends_with(b"\n") {
            p.push(b'\n');
        }
    }
    if out.is_empty() {
        return Err(io::Error::other(format!("no logs under {}", shared.display())));
    }
    Ok(out)
}

fn sorted_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// Drops a syzkaller test file's header (`TITLE: …`, `TYPE: …`, `# note`, up to the first
/// blank line), leaving the console output.
fn strip_report_header(text: &[u8]) -> &[u8] {
    let mut rest = text;
    while let Some(i) = memchr::memchr(b'\n', rest) {
        let line = &rest[..i];
        let key = line.iter().take_while(|b| b.is_ascii_uppercase()).count();
        if line.trim_ascii().is_empty() {
            return &rest[i + 1..];
        }
        if !(line.starts_with(b"#") || (key > 0 && line[key..].starts_with(b":"))) {
            return rest;
        }
        rest = &rest[i + 1..];
    }
    rest
}

/// A dmesg or syslog line in a seed write-up: `[ 123.456] …`, possibly indented or after
/// `host kernel: `.
fn is_log_line(line: &[u8]) -> bool {
    let mut t = line.trim_ascii_start();
    if let Some(i) = memchr::memmem::find(t, b"kernel: [") {
        t = &t[i + 8..];
    }
    let Some(stamp) = t.strip_prefix(b"[") else {
        return false;
    };
    let Some(close) = memchr::memchr(b']', stamp) else {
        return false;
    };
    let stamp = stamp[..close].trim_ascii();
    stamp.contains(&b'.') && stamp.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// Writes the pieces round-robin until the file holds at least `target` bytes; reuses a
/// file of the right size left by an earlier `--keep` run.
fn assemble(path: &Path, pieces: &[Vec<u8>], target: u64) -> io::Result<u64> {
    let round: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let want = target.div_ceil(round) * round;
    if fs::metadata(path).is_ok_and(|m| m.len() == want) {
        return Ok(want);
    }
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for _ in 0..want / round {
        for p in pieces {
            w.write_all(p)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_log_lines() {
        assert_eq!(strip_report_header(b"TITLE: x\nTYPE: HANG\n\n[ 1.0] a\n"), b"[ 1.0] a\n");
        assert_eq!(strip_report_header(b"\n[ 1.0] a\n"), b"[ 1.0] a\n");
        assert_eq!(strip_report_header(b"[ 1.0] a\n\nb\n"), b"[ 1.0] a\n\nb\n");
        assert!(is_log_line(b"    Mar 28 00:12:31 h kernel: [ 4440.558031] INFO: task"));
        assert!(is_log_line(b"[32227.272692]  ipmi_devintf"));
        assert!(!is_log_line(b"[<ffffffff8111ec90>] ? sync_page+0x0/0x50"));
        assert!(!is_log_line(b"crash> bt"));
    }
}
