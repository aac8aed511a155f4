//! `lockscope dump-info DUMP...`: what a vmcore is and holds, before any kernel analysis —
//! the facts crash prints before its prompt (`sys`), plus what crash leaves out: the format
//! and compression, what the dump level excluded, which CPUs left registers, the physical
//! memory ranges and the VMCOREINFO keys.

use lockscope_dump::{CpuNumbering, Dump, Metadata, Registers, SubHeaderLayout, Truncation};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct DumpInfoArgs {
    /// vmcore files: ELF cores, kdump-compressed or flattened makedumpfile streams. The files
    /// of a split dump (makedumpfile --split) are shown together as one dump.
    #[arg(required = true)]
    dumps: Vec<String>,
    /// Print JSON (`lockscope-dump-info/1`) instead of text.
    #[arg(long)]
    json: bool,
}

/// VMCOREINFO keys shown by value in the text output (all keys are listed by name).
const KEY_VALUES: &[&str] = &[
    "OSRELEASE",
    "BUILD-ID",
    "PAGESIZE",
    "KERNELOFFSET",
    "NUMBER(phys_base)",
    "SYMBOL(_stext)",
    "SYMBOL(swapper_pg_dir)",
    "NUMBER(pgtable_l5_enabled)",
    "NUMBER(VA_BITS)",
    "NUMBER(kimage_voffset)",
    "NUMBER(PHYS_OFFSET)",
    "SYMBOL(kallsyms_names)",
    "CRASHTIME",
];

/// The files of one split dump: utsname, time stamp, page and memory size agree.
fn split_key(d: &Dump) -> Option<String> {
    let m = d.metadata();
    m.split?;
    Some(format!("{:?}|{:?}|{}|{}|{:?}", m.utsname, m.date, m.page_size, m.max_pfn, m.header_version))
}

pub fn run(args: DumpInfoArgs) -> ExitCode {
    let mut text = String::new();
    let mut reports = Vec::new();
    let mut failed = false;
    // Each file alone first (cheap: headers only); the parts of one split dump are then
    // opened together and shown as one dump.
    let mut alone: Vec<Option<(Dump, f64)>> = Vec::new();
    for path in &args.dumps {
        let started = Instant::now();
        match Dump::open(path) {
            Ok(dump) => alone.push(Some((dump, started.elapsed().as_secs_f64() * 1000.0))),
            Err(e) => {
                eprintln!("lockscope: {path}: {e}");
                failed = true;
                alone.push(None);
            }
        }
    }
    let keys: Vec<Option<String>> = alone.iter().map(|d| d.as_ref().and_then(|(d, _)| split_key(d))).collect();
    let mut shown: Vec<(Vec<usize>, Dump, f64)> = Vec::new();
    let mut taken = vec![false; alone.len()];
    for i in 0..alone.len() {
        if taken[i] {
            continue;
        }
        let group: Vec<usize> = match &keys[i] {
            Some(k) => (i..alone.len()).filter(|&j| keys[j].as_ref() == Some(k)).collect(),
            None => vec![i],
        };
        if group.len() > 1 {
            let paths: Vec<&str> = group.iter().map(|&j| args.dumps[j].as_str()).collect();
            let started = Instant::now();
            match Dump::open_many(&paths) {
                Ok(d) => {
                    group.iter().for_each(|&j| taken[j] = true);
                    shown.push((group, d, started.elapsed().as_secs_f64() * 1000.0));
                    continue;
                }
                Err(e) => {
                    let who = e.file.and_then(|f| paths.get(f as usize)).unwrap_or(&paths[0]);
                    eprintln!("lockscope: {who}: {e}; showing the files one by one");
                }
            }
        }
        taken[i] = true;
        if let Some((d, ms)) = alone[i].take() {
            shown.push((vec![i], d, ms));
        }
    }
    for (files, dump, open_ms) in &shown {
        let path = files.iter().map(|&j| args.dumps[j].as_str()).collect::<Vec<_>>().join(" + ");
        if args.json {
            let mut v = to_json(&path, dump, *open_ms);
            v["files"] = json!(files.iter().map(|&j| &args.dumps[j]).collect::<Vec<_>>());
            reports.push(v);
        } else {
            if !text.is_empty() {
                text.push('\n');
            }
            write_text(&mut text, &path, dump, *open_ms);
        }
    }
    let out = if args.json {
        let doc = json!({ "schema": "lockscope-dump-info/1", "dumps": reports });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        lockscope_report::escape::output(&text).into_owned()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if failed { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

fn format_line(meta: &Metadata) -> String {
    let mut s = meta.format.describe().to_string();
    if let Some(v) = meta.header_version {
        let _ = write!(s, ", header version {v}");
    }
    let _ = write!(s, ", compression {}", meta.compression.name());
    if let Some(n) = meta.flattened_records {
        let _ = write!(s, ", {n} stream records");
    }
    s
}

/// The cut, apart from the dump level: those pages were written, then lost with the tail.
fn truncation_text(t: &Truncation) -> String {
    let which = t.file.map(|i| format!("file {} of the set: ", i + 1)).unwrap_or_default();
    let promise = if t.exact { "" } else { "at least " };
    format!(
        "{which}file is {} bytes, its headers promise {promise}{} bytes: {} page(s) past the end are lost (not filtered)",
        t.file_size, t.expected_size, t.pages_lost
    )
}

fn page_size_text(meta: &Metadata) -> String {
    match meta.page_size_ignored {
        Some((v, fixed_by)) => {
            format!("{} (VMCOREINFO says PAGESIZE={v}: not used, {fixed_by} fixes it)", meta.page_size)
        }
        None => meta.page_size.to_string(),
    }
}

fn cpu_numbering(n: CpuNumbering) -> &'static str {
    match n {
        CpuNumbering::QemuIndex => "exact (QEMU vCPU index)",
        CpuNumbering::NoteOrder => "in note order (a CPU that saved no registers shifts the ones after it)",
        CpuNumbering::None => "no register notes",
    }
}

fn ram_bytes(dump: &Dump) -> (u64, u64, u64) {
    let ranges = dump.memory_ranges();
    let total = ranges.iter().map(|r| r.end - r.start).sum();
    let dumped = ranges.iter().map(|r| r.dumped_bytes).sum();
    let filtered = ranges.iter().map(|r| r.filtered_bytes).sum();
    (total, dumped, filtered)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn write_text(out: &mut String, path: &str, dump: &Dump, open_ms: f64) {
    let meta = dump.metadata();
    let notes = dump.notes();
    let vi = dump.vmcoreinfo();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:>14}: {value}");
    };
    let mut flags = String::new();
    if meta.partial {
        flags.push_str("  [PARTIAL DUMP]");
    }
    if meta.incomplete {
        flags.push_str("  [INCOMPLETE]");
    }
    let truncation = dump.truncation();
    if !truncation.is_empty() {
        flags.push_str("  [TRUNCATED]");
    }
    line("DUMPFILE", format!("{path}{flags}"));
    line("FORMAT", format_line(meta));
    if let Some(level) = meta.dump_level {
        let kinds = meta.excluded_page_kinds();
        let excluded =
            if kinds.is_empty() { "nothing excluded".to_string() } else { format!("excluded {}", kinds.join(", ")) };
        line("DUMP LEVEL", format!("{level} ({excluded})"));
    }
    for t in &truncation {
        line("TRUNCATED", truncation_text(t));
    }
    if let Some(c) = meta.notes_cut {
        line("NOTES", crate::convert::notes_cut_text(&c));
    }
    match meta.split_parts.len() {
        0 => {}
        1 => {
            let p = meta.split_parts[0];
            line("SPLIT", format!("this file holds PFNs {:#x}-{:#x} of a split dump", p.start_pfn, p.end_pfn));
        }
        n => {
            let parts: Vec<String> =
                meta.split_parts.iter().map(|p| format!("{:#x}-{:#x}", p.start_pfn, p.end_pfn)).collect();
            line("SPLIT", format!("{n} files, PFNs {}", parts.join(", ")));
        }
    }
    let missing = split_gaps(meta);
    if !missing.is_empty() {
        let gaps: Vec<String> = missing.iter().map(|(s, e)| format!("{s:#x}-{e:#x}")).collect();
        line("MISSING", format!("PFNs {} are in split files not given", gaps.join(", ")));
    }
    let with_regs: Vec<String> = notes.prstatus.iter().map(|p| p.cpu.to_string()).collect();
    line(
        "CPUS",
        format!(
            "{}  (registers saved by: {}; numbering {})",
            meta.nr_cpus,
            if with_regs.is_empty() { "none".into() } else { with_regs.join(" ") },
            cpu_numbering(notes.numbering)
        ),
    );
    if let Some(cpu) = meta.current_cpu.filter(|_| meta.format != lockscope_dump::Format::Elf) {
        line("CURRENT CPU", cpu.to_string());
    }
    if let Some(t) = meta.date {
        line("DATE", format_utc(t));
    }
    if let Some(u) = meta.utsname.as_ref().filter(|u| !u.nodename.is_empty()) {
        line("NODENAME", u.nodename.clone());
    }
    line("RELEASE", meta.release.clone().unwrap_or_else(|| "(unknown)".into()));
    if let Some(u) = meta.utsname.as_ref().filter(|u| !u.version.is_empty()) {
        line("VERSION", u.version.clone());
    }
    line("MACHINE", if meta.machine.is_empty() { meta.arch.name().to_string() } else { meta.machine.clone() });
    line("PAGE SIZE", page_size_text(meta));
    let (total, dumped, filtered) = ram_bytes(dump);
    line("MEMORY", format!("{}  ({} in the file, {} filtered out)", mib(total), mib(dumped), mib(filtered)));
    line("MAX PFN", format!("{:#x}", meta.max_pfn));
    // VMCOREINFO's NUMBER(phys_base) is the kernel's own value; QEMU fills the sub-header's
    // with a guess of its own, so both are shown when they differ.
    let from_vmcoreinfo = vi.and_then(|v| v.phys_base());
    match (from_vmcoreinfo, meta.phys_base) {
        (Some(v), Some(h)) if v as u64 != h => {
            line("PHYS BASE", format!("{} (VMCOREINFO; the dump header says {})", signed_hex(v), signed_hex(h as i64)))
        }
        (Some(v), _) => line("PHYS BASE", signed_hex(v)),
        (None, Some(h)) => line("PHYS BASE", format!("{} (dump header)", signed_hex(h as i64))),
        (None, None) => {}
    }
    line("FILE", format!("{} bytes, opened in {open_ms:.1} ms", meta.file_size));
    if let Some(l) = meta.kdump_layout.filter(|l| l.timeval_bits == 32 || l.sub_header != SubHeaderLayout::Lp64) {
        let packing = match l.sub_header {
            SubHeaderLayout::Lp64 => "64-bit longs",
            SubHeaderLayout::Ilp32Packed => "32-bit, 4-byte aligned (i386)",
            SubHeaderLayout::Ilp32Aligned => "32-bit, 8-byte aligned",
        };
        line("HEADER ABI", format!("{}-bit timeval, sub-header {packing}", l.timeval_bits));
    }
    let _ = writeln!(out, "\nPHYSICAL MEMORY");
    for r in dump.memory_ranges() {
        let _ = writeln!(
            out,
            "  {:#014x}-{:#014x}  {:>9}  dumped {:>9}  filtered {:>9}",
            r.start,
            r.end,
            mib(r.end - r.start),
            mib(r.dumped_bytes),
            mib(r.filtered_bytes)
        );
    }
    if !notes.prstatus.is_empty() {
        let _ = writeln!(out, "\nREGISTERS (NT_PRSTATUS)");
        for p in &notes.prstatus {
            let _ = write!(out, "  CPU {}: pid {:<6}", p.cpu, p.pid);
            match p.regs {
                Registers::X86_64(r) => {
                    let _ = writeln!(out, " RIP {:016x}  RSP {:016x}  RFLAGS {:08x}", r.rip, r.rsp, r.eflags);
                }
                Registers::Aarch64(r) => {
                    let _ = writeln!(out, " PC {:016x}  SP {:016x}  PSTATE {:08x}", r.pc, r.sp, r.pstate);
                }
            }
        }
    }
    if !notes.qemu.is_empty() {
        let _ = writeln!(out, "\nQEMU CPU STATE");
        for q in &notes.qemu {
            let _ = writeln!(
                out,
                "  CPU {}: CR3 {:016x}  GS base {:016x}  IDT base {:016x}",
                q.cpu, q.cr[3], q.gs_base, q.idt_base
            );
        }
    }
    match vi {
        None => {
            let _ = writeln!(out, "\nVMCOREINFO: none (no symbols can be found without it)");
        }
        Some(vi) => {
            let _ = writeln!(out, "\nVMCOREINFO ({} keys)", vi.len());
            for key in KEY_VALUES {
                if let Some(v) = vi.get(key) {
                    let _ = writeln!(out, "  {key}={v}");
                }
            }
            let mut keys = String::new();
            let mut width = 0;
            for (k, _) in vi.entries() {
                if width + k.len() + 1 > 100 {
                    keys.push_str("\n   ");
                    width = 0;
                }
                keys.push(' ');
                keys.push_str(k);
                width += k.len() + 1;
            }
            let _ = writeln!(out, "  keys:\n  {keys}");
        }
    }
}

fn to_json(path: &str, dump: &Dump, open_ms: f64) -> Value {
    let meta = dump.metadata();
    let notes = dump.notes();
    let (total, dumped, filtered) = ram_bytes(dump);
    let cpus: Vec<Value> = notes
        .prstatus
        .iter()
        .map(|p| {
            let regs = match p.regs {
                Registers::X86_64(r) => json!({
                    "rip": hex(r.rip), "rsp": hex(r.rsp), "rbp": hex(r.rbp), "rflags": hex(r.eflags),
                    "rax": hex(r.rax), "rbx": hex(r.rbx), "rcx": hex(r.rcx), "rdx": hex(r.rdx),
                    "rsi": hex(r.rsi), "rdi": hex(r.rdi), "r8": hex(r.r8), "r9": hex(r.r9),
                    "r10": hex(r.r10), "r11": hex(r.r11), "r12": hex(r.r12), "r13": hex(r.r13),
                    "r14": hex(r.r14), "r15": hex(r.r15), "cs": hex(r.cs), "ss": hex(r.ss),
                }),
                Registers::Aarch64(r) => json!({
                    "pc": hex(r.pc), "sp": hex(r.sp), "pstate": hex(r.pstate),
                    "x": r.x.iter().map(|v| hex(*v)).collect::<Vec<_>>(),
                }),
            };
            json!({ "cpu": p.cpu, "pid": p.pid, "regs": regs })
        })
        .collect();
    let qemu: Vec<Value> = notes
        .qemu
        .iter()
        .map(|q| json!({ "cpu": q.cpu, "cr3": hex(q.cr[3]), "gs_base": hex(q.gs_base), "idt_base": hex(q.idt_base) }))
        .collect();
    let ranges: Vec<Value> = dump
        .memory_ranges()
        .iter()
        .map(|r| json!({ "start": hex(r.start), "end": hex(r.end), "dumped_bytes": r.dumped_bytes, "filtered_bytes": r.filtered_bytes }))
        .collect();
    let vmcoreinfo = dump.vmcoreinfo().map(|vi| {
        let map: serde_json::Map<String, Value> = vi.entries().map(|(k, v)| (k.to_string(), Value::from(v))).collect();
        Value::Object(map)
    });
    json!({
        "file": path,
        "format": meta.format.describe(),
        "header_version": meta.header_version,
        "compression": meta.compression.name(),
        "dump_level": meta.dump_level,
        "excluded": meta.excluded_page_kinds(),
        "partial": meta.partial,
        "incomplete": meta.incomplete,
        "split_pfns": meta.split.map(|(s, e)| json!([s, e])),
        "split_parts": meta.split_parts.iter().map(|p| json!({
            "file": p.file, "start_pfn": p.start_pfn, "end_pfn": p.end_pfn, "file_size": p.file_size,
        })).collect::<Vec<_>>(),
        "split_missing_pfns": split_gaps(meta).iter().map(|(s, e)| json!([s, e])).collect::<Vec<_>>(),
        "kdump_layout": meta.kdump_layout.map(|l| json!({
            "timeval_bits": l.timeval_bits, "sub_header": format!("{:?}", l.sub_header), "big_endian": l.big_endian,
        })),
        "flattened_records": meta.flattened_records,
        "nr_cpus": meta.nr_cpus,
        "cpu_numbering": format!("{:?}", notes.numbering),
        "date": meta.date,
        "release": meta.release,
        "machine": meta.machine,
        "utsname": meta.utsname.as_ref().map(|u| json!({
            "sysname": u.sysname, "nodename": u.nodename, "release": u.release,
            "version": u.version, "machine": u.machine, "domainname": u.domainname,
        })),
        "page_size": meta.page_size,
        "vmcoreinfo_page_size_ignored": meta.page_size_ignored.map(|(v, _)| v),
        "notes_cut": meta.notes_cut.map(|c| json!({ "offset": c.offset, "declared": c.declared, "kept": c.kept })),
        "truncated": dump.truncation().iter().map(|t| json!({
            "file": t.file, "file_size": t.file_size, "expected_size": t.expected_size,
            "exact": t.exact, "pages_lost": t.pages_lost,
        })).collect::<Vec<_>>(),
        "max_pfn": meta.max_pfn,
        "phys_base": meta.phys_base.map(hex),
        "memory_bytes": total,
        "dumped_bytes": dumped,
        "filtered_bytes": filtered,
        "memory_ranges": ranges,
        "file_size": meta.file_size,
        "open_ms": (open_ms * 1000.0).round() / 1000.0,
        "cpus": cpus,
        "qemu_cpus": qemu,
        "vmcoreinfo": vmcoreinfo,
    })
}

/// PFN ranges of a split dump that no given file holds.
fn split_gaps(meta: &Metadata) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    if meta.split_parts.is_empty() {
        return gaps;
    }
    let mut at = 0;
    for p in &meta.split_parts {
        if p.start_pfn > at {
            gaps.push((at, p.start_pfn));
        }
        at = at.max(p.end_pfn);
    }
    if at < meta.max_pfn {
        gaps.push((at, meta.max_pfn));
    }
    gaps
}

fn signed_hex(v: i64) -> String {
    if v < 0 { format!("-{:#x}", v.unsigned_abs()) } else { format!("{v:#x}") }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Seconds since the epoch as `Sat Nov 21 05:19:29 UTC 2026` (crash's style), without a
/// time-zone database: civil date from days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} UTC {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::format_utc(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(super::format_utc(1_795_238_369), "Sat Nov 21 05:19:29 UTC 2026");
    }
}
