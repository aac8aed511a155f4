//! `lockscope-dump-bench`: the vmcore reader (`lockscope-dump`) on the real corpus dumps and
//! on big sparse files (see BENCHMARKS.md, "vmcore reader"). One core unless said otherwise.
//!
//! - open time of every corpus dump and of every format of ipi_sleeping_holder.live (the ELF
//!   ones decompressed with `xz`, snappy/zstd made with `write_kdump`, since no tool here
//!   writes them), median of 21 opens of a file in the page cache;
//! - random 4 KiB reads per second (20 000 reads of random dumped pages) and a sequential
//!   scan of every page a file holds, MB/s of page data returned, per format;
//! - page decompression per core for each codec: the reader's own decoder (`decode_page`)
//!   on the 19 466 dumped pages of the -d 31 dump, compressed as makedumpfile would;
//! - sparse kdump files of 64 GiB, 1 TiB and 16 TiB of RAM holding 4096 real pages (copied
//!   from the corpus dump, recompressed with zlib, their data spread over the file so its
//!   apparent size is that of the memory): open time, first read, random reads, disk used.
//!
//! Usage: `lockscope-dump-bench [--shared DIR] [--tmp DIR] [--keep] [--only open|reads|codecs|sparse]`

use lockscope_dump::{Compression, Dump, PageState, WriteOptions, decode_page, write_kdump};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

struct Args {
    shared: PathBuf,
    tmp: PathBuf,
    keep: bool,
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        shared: std::env::var_os("LOCKSCOPE_SHARED").map_or("/work/shared".into(), PathBuf::from),
        tmp: std::env::temp_dir().join("lockscope-dump-bench"),
        keep: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--shared" => a.shared = val().into(),
            "--tmp" => a.tmp = val().into(),
            "--keep" => a.keep = true,
            "--only" => a.only = Some(val()),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!("lockscope-dump-bench: {msg}");
    eprintln!("usage: lockscope-dump-bench [--shared DIR] [--tmp DIR] [--keep] [--only open|reads|codecs|sparse]");
    std::process::exit(2)
}

/// A small xorshift generator: the same "random" pages for every format and run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn open_time(paths: &[PathBuf]) -> Duration {
    let _ = Dump::open_many(paths).expect("opens"); // page cache warm
    median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                let d = Dump::open_many(paths).expect("opens");
                let e = t.elapsed();
                drop(d);
                e
            })
            .collect(),
    )
}

fn size_of(paths: &[PathBuf]) -> u64 {
    paths.iter().map(|p| fs::metadata(p).map_or(0, |m| m.len())).sum()
}

fn unxz(src: &Path, out: &Path) -> bool {
    if out.is_file() {
        return true;
    }
    let Ok(f) = File::create(out) else { return false };
    Command::new("xz").arg("-dc").arg(src).stdout(f).status().is_ok_and(|s| s.success())
}

fn convert(from: &Dump, out: &Path, c: Compression) {
    if !out.is_file() {
        write_kdump(from, &[out], &WriteOptions::new(c), &mut |_| {}).expect("convert");
    }
}

fn main() {
    let args = parse_args();
    let case = args.shared.join("corpus/ipi_sleeping_holder.live");
    fs::create_dir_all(&args.tmp).expect("temp dir");
    let only = |s: &str| args.only.as_deref().is_none_or(|o| o == s);
    let t = &args.tmp;
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(1, |n| n.get()), cpu_name());

    // The formats of one frozen memory.
    let zlib = case.join("vmcore.mkd-zlib-d31");
    let qemu_elf = t.join("vmcore.qemu-elf");
    let mkd_elf = t.join("vmcore.mkd-elf-d31");
    let have_elf =
        unxz(&case.join("vmcore.qemu-elf.xz"), &qemu_elf) && unxz(&case.join("vmcore.mkd-elf-d31.xz"), &mkd_elf);
    let reference = Dump::open(&zlib).expect("corpus dump");
    convert(&reference, &t.join("vmcore.snappy-d31"), Compression::Snappy);
    convert(&reference, &t.join("vmcore.zstd-d31"), Compression::Zstd);
    let mut formats: Vec<(String, Vec<PathBuf>)> = vec![
        ("kdump zlib, -d 31 (makedumpfile -c)".into(), vec![zlib.clone()]),
        ("kdump lzo, -d 31 (makedumpfile -l)".into(), vec![case.join("vmcore.mkd-lzo-d31")]),
        ("kdump snappy, -d 31 (lockscope convert)".into(), vec![t.join("vmcore.snappy-d31")]),
        ("kdump zstd, -d 31 (lockscope convert)".into(), vec![t.join("vmcore.zstd-d31")]),
    ];
    if have_elf {
        let full = Dump::open(&qemu_elf).expect("QEMU ELF");
        convert(&full, &t.join("vmcore.zstd-full"), Compression::Zstd);
        convert(&full, &t.join("vmcore.snappy-full"), Compression::Snappy);
        let split: Vec<PathBuf> = (1..=3).map(|i| t.join(format!("vmcore.zstd-split.{i}"))).collect();
        if !split[0].is_file() {
            write_kdump(&full, &split, &WriteOptions::new(Compression::Zstd), &mut |_| {}).expect("split");
        }
        formats.push(("ELF, -d 31 (makedumpfile -E)".into(), vec![mkd_elf.clone()]));
        formats.push(("ELF, full (QEMU)".into(), vec![qemu_elf.clone()]));
        formats.push(("kdump zstd, full (lockscope convert)".into(), vec![t.join("vmcore.zstd-full")]));
        formats.push(("kdump snappy, full (lockscope convert)".into(), vec![t.join("vmcore.snappy-full")]));
        formats.push(("kdump zstd, full, split in 3 files".into(), split));
    } else {
        eprintln!("note: xz not available; ELF formats skipped");
    }
    formats.push(("kdump zlib, full, flattened (QEMU)".into(), vec![case.join("vmcore.qemu-kdump-zlib")]));

    if only("open") {
        println!("\n### Open time (median of 21, file in the page cache)\n");
        println!("| dump | size (MB) | open (µs) |");
        println!("|---|---:|---:|");
        let mut cases: Vec<PathBuf> = fs::read_dir(args.shared.join("corpus"))
            .map(|d| d.flatten().map(|e| e.path().join("vmcore.mkd-zlib-d31")).filter(|p| p.is_file()).collect())
            .unwrap_or_default();
        cases.sort();
        for p in &cases {
            let name = p.parent().and_then(|d| d.file_name()).unwrap_or_default().to_string_lossy();
            let v = vec![p.clone()];
            println!(
                "| {name} (zlib, -d 31) | {:.1} | {:.0} |",
                size_of(&v) as f64 / 1e6,
                open_time(&v).as_secs_f64() * 1e6
            );
        }
        for (name, paths) in &formats {
            println!(
                "| ipi_sleeping_holder.live: {name} | {:.1} | {:.0} |",
                size_of(paths) as f64 / 1e6,
                open_time(paths).as_secs_f64() * 1e6
            );
        }
    }

    if only("reads") {
        // The pages every format has: those the -d 31 files dumped.
        let dumped: Vec<u64> = (0..reference.metadata().max_pfn)
            .filter(|&p| reference.page_state(p * PAGE as u64) == PageState::Dumped)
            .collect();
        println!(
            "\n### Reads, one thread (random: 20 000 reads of random -d 31 pages; scan: every page the file holds, in order)\n"
        );
        println!("| format | random 4 KiB reads/s | sequential scan (MB/s) | pages scanned |");
        println!("|---|---:|---:|---:|");
        for (name, paths) in &formats {
            let d = Dump::open_many(paths).expect("opens");
            let mut buf = vec![0u8; PAGE];
            let mut rng = Rng(0x9e3779b97f4a7c15);
            let n = 20_000;
            let t0 = Instant::now();
            let mut ok = 0;
            for _ in 0..n {
                let pfn = dumped[(rng.next() % dumped.len() as u64) as usize];
                ok += d.read_phys(pfn * PAGE as u64, &mut buf).is_ok() as u32;
            }
            let random = n as f64 / t0.elapsed().as_secs_f64();
            let d = Dump::open_many(paths).expect("opens"); // cold page cache of the reader
            let t0 = Instant::now();
            let mut pages = 0u64;
            for pfn in 0..d.metadata().max_pfn {
                if d.read_phys(pfn * PAGE as u64, &mut buf).is_ok() {
                    pages += 1;
                }
            }
            let scan = pages as f64 * PAGE as f64 / 1e6 / t0.elapsed().as_secs_f64();
            let note =
                if ok < n { format!(" ({} of the random pages not in this file)", n - ok) } else { String::new() };
            println!("| {name}{note} | {random:.0} | {scan:.0} | {pages} |");
        }
    }

    if only("codecs") {
        codecs(&reference);
    }
    if only("sparse") {
        sparse(&reference, t);
    }
    if !args.keep {
        let _ = fs::remove_dir_all(t);
    }
}

fn cpu_name() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_default()
}

/// Decompression speed of each codec on the corpus dump's real pages, one core.
fn codecs(reference: &Dump) {
    let m = reference.metadata();
    let mut pages: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; PAGE];
    for pfn in 0..m.max_pfn {
        if reference.read_phys(pfn * PAGE as u64, &mut buf).is_ok() {
            pages.push(buf.clone());
        }
    }
    let bytes = (pages.len() * PAGE) as f64;
    println!(
        "\n### Page compression and decompression, one core ({} real pages, {:.0} MB)\n",
        pages.len(),
        bytes / 1e6
    );
    println!(
        "| codec (as makedumpfile uses it) | compressed size | compress (MB/s) | decompress (GB/s), lockscope reader |"
    );
    println!("|---|---:|---:|---:|");
    type Enc = Box<dyn FnMut(&[u8]) -> Vec<u8>>;
    let mut lzo_dict = lzokay::compress::Dict::new();
    let mut zstd1 = zstd::bulk::Compressor::new(1).expect("zstd");
    let mut snappy = snap::raw::Encoder::new();
    let codecs: Vec<(&str, u32, Enc)> = vec![
        (
            "zlib level 1 (zlib-rs through flate2)",
            0x1,
            Box::new(|p: &[u8]| {
                let mut z = flate2::Compress::new(flate2::Compression::fast(), true);
                let mut v = Vec::with_capacity(2 * PAGE);
                z.compress_vec(p, &mut v, flate2::FlushCompress::Finish).expect("zlib");
                v
            }),
        ),
        (
            "LZO1X (lockscope lzo.rs)",
            0x2,
            Box::new(move |p: &[u8]| lzokay::compress::compress_with_dict(p, &mut lzo_dict).expect("lzo")),
        ),
        ("snappy (snap)", 0x4, Box::new(move |p: &[u8]| snappy.compress_vec(p).expect("snappy"))),
        ("zstd level 1 (libzstd)", 0x20, Box::new(move |p: &[u8]| zstd1.compress(p).expect("zstd"))),
    ];
    let mut zstd_frames = Vec::new();
    for (name, flags, mut enc) in codecs {
        let t0 = Instant::now();
        let stored: Vec<Vec<u8>> = pages.iter().map(|p| enc(p)).collect();
        let ct = t0.elapsed().as_secs_f64();
        let size: usize = stored.iter().map(Vec::len).sum();
        let mut out = vec![0u8; PAGE];
        let t0 = Instant::now();
        let mut runs = 0;
        while runs < 3 || t0.elapsed() < Duration::from_millis(500) {
            for s in &stored {
                assert_eq!(decode_page(flags, s, &mut out), Some(true));
            }
            runs += 1;
        }
        let dt = t0.elapsed().as_secs_f64() / runs as f64;
        println!(
            "| {name} | {:.1}% | {:.0} | {:.2} |",
            100.0 * size as f64 / bytes,
            bytes / 1e6 / ct,
            bytes / 1e9 / dt
        );
        if flags == 0x20 {
            zstd_frames = stored;
        }
    }
    // libzstd's bulk API on the same frames (a fresh call per page), for comparison.
    let mut dctx = zstd::bulk::Decompressor::new().expect("zstd");
    let mut out = vec![0u8; PAGE];
    let t0 = Instant::now();
    let mut runs = 0;
    while runs < 3 || t0.elapsed() < Duration::from_millis(500) {
        for s in &zstd_frames {
            assert_eq!(dctx.decompress_to_buffer(s, &mut out[..]).expect("zstd"), PAGE);
        }
        runs += 1;
    }
    let dt = t0.elapsed().as_secs_f64() / runs as f64;
    println!("| zstd, libzstd bulk API directly (not through the reader) | | | {:.2} |", bytes / 1e9 / dt);
}

/// Sparse kdump files of a big machine holding a few thousand real pages.
fn sparse(reference: &Dump, dir: &Path) {
    let m = reference.metadata();
    let mut real: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; PAGE];
    let mut pfn = 0;
    while real.len() < 4096 && pfn < m.max_pfn {
        if reference.read_phys(pfn * PAGE as u64, &mut buf).is_ok() {
            let mut z = flate2::Compress::new(flate2::Compression::fast(), true);
            let mut v = Vec::with_capacity(2 * PAGE);
            z.compress_vec(&buf, &mut v, flate2::FlushCompress::Finish).expect("zlib");
            // As makedumpfile does: a page zlib does not shrink is stored as is.
            real.push(if v.len() < PAGE && z.total_in() == PAGE as u64 { (1, v) } else { (0, buf.clone()) });
        }
        pfn += 1;
    }
    let vmcoreinfo: String = reference
        .vmcoreinfo()
        .map(|v| v.entries().map(|(k, val)| format!("{k}={val}\n")).collect())
        .unwrap_or_default();
    println!("\n### Big sparse kdump files ({} real pages spread over the memory; open: median of 21)\n", real.len());
    println!(
        "| RAM described | bitmap 1 | file size (apparent) | disk used | open (µs) | first read (ms) | random reads/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (label, gib, all_ram) in
        [("64 GiB", 64u64, true), ("64 GiB", 64, false), ("1 TiB", 1024, false), ("16 TiB", 16 * 1024, false)]
    {
        let path = dir.join(format!("sparse-{gib}g-{}", if all_ram { "ram" } else { "holes" }));
        let max_pfn = gib << 18;
        let pfns = build_sparse(&path, max_pfn, all_ram, &real, vmcoreinfo.as_bytes());
        let v = vec![path.clone()];
        let open = open_time(&v);
        let d = Dump::open(&path).expect("opens");
        let t0 = Instant::now();
        d.read_phys(pfns[pfns.len() / 2] * PAGE as u64, &mut buf).expect("read");
        let first = t0.elapsed();
        let mut rng = Rng(7);
        let t0 = Instant::now();
        let n = 20_000;
        for _ in 0..n {
            let p = pfns[(rng.next() % pfns.len() as u64) as usize];
            d.read_phys(p * PAGE as u64, &mut buf).expect("read");
        }
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        let meta = fs::metadata(&path).expect("file");
        use std::os::unix::fs::MetadataExt;
        println!(
            "| {label} | {} | {:.1} GB | {:.1} MB | {:.0} | {:.1} | {rate:.0} |",
            if all_ram { "all RAM" } else { "only the dumped pages (holes)" },
            meta.len() as f64 / 1e9,
            meta.blocks() as f64 * 512.0 / 1e6,
            open.as_secs_f64() * 1e6,
            first.as_secs_f64() * 1e3
        );
        let _ = fs::remove_file(&path);
    }
}

/// Writes a kdump file (64-bit, header version 6) for `max_pfn` pages of RAM with `pages`
/// (zlib) at evenly spread PFNs, page data placed at offsets proportional to their PFN so
/// the file is as long as the memory; zeros are never written (holes). Returns the PFNs.
fn build_sparse(path: &Path, max_pfn: u64, all_ram: bool, pages: &[(u32, Vec<u8>)], vmcoreinfo: &[u8]) -> Vec<u64> {
    let bs = PAGE as u64;
    let _ = fs::remove_file(path);
    let f = File::create(path).expect("create");
    let mut note = Vec::new();
    note.extend_from_slice(&11u32.to_le_bytes());
    note.extend_from_slice(&(vmcoreinfo.len() as u32).to_le_bytes());
    note.extend_from_slice(&0u32.to_le_bytes());
    note.extend_from_slice(b"VMCOREINFO\0\0");
    note.extend_from_slice(vmcoreinfo);
    note.resize(note.len().next_multiple_of(4), 0);
    let sub_blocks = (104 + note.len() as u64).div_ceil(bs);
    let half = max_pfn.div_ceil(8).div_ceil(bs) * bs;
    let bitmap_off = (1 + sub_blocks) * bs;
    let desc_base = bitmap_off + 2 * half;
    let data_base = (desc_base + 24 * pages.len() as u64).next_multiple_of(bs);
    let step = max_pfn / pages.len() as u64;
    // Data at offsets proportional to the PFN; past 1 TiB scaled down (ext4 files end at 16 TiB).
    let scale = (max_pfn >> 28).max(1);
    let pfns: Vec<u64> = (0..pages.len() as u64).map(|i| i * step + (i * 7919) % step.max(1)).collect();
    let mut h = vec![0u8; (bs + 104) as usize + note.len()];
    h[..8].copy_from_slice(b"KDUMP   ");
    h[8..12].copy_from_slice(&6i32.to_le_bytes());
    h[12 + 4 * 65..12 + 4 * 65 + 6].copy_from_slice(b"x86_64");
    for (at, v) in [(424, 1u32), (428, bs as u32), (432, sub_blocks as u32), (436, (2 * half / bs) as u32)] {
        h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    h[440..444].copy_from_slice(&(max_pfn.min(u32::MAX as u64) as u32).to_le_bytes());
    h[460..464].copy_from_slice(&4i32.to_le_bytes());
    let s = bs as usize;
    h[s + 8..s + 12].copy_from_slice(&31i32.to_le_bytes());
    h[s + 48..s + 56].copy_from_slice(&(bs + 104).to_le_bytes());
    h[s + 56..s + 64].copy_from_slice(&(note.len() as u64).to_le_bytes());
    h[s + 96..s + 104].copy_from_slice(&max_pfn.to_le_bytes());
    h[s + 104..].copy_from_slice(&note);
    f.write_all_at(&h, 0).expect("write");
    // Bitmaps: RAM all set (written in 8 MiB pieces) or only the dumped bits.
    if all_ram {
        let ones = vec![0xffu8; 8 << 20];
        let mut at = 0;
        while at < max_pfn / 8 {
            let n = (ones.len() as u64).min(max_pfn / 8 - at);
            f.write_all_at(&ones[..n as usize], bitmap_off + at).expect("write");
            at += n;
        }
    }
    for &p in &pfns {
        let (byte, bit) = (p / 8, 1u8 << (p % 8));
        if !all_ram {
            let mut b = [0u8];
            let _ = f.read_at(&mut b, bitmap_off + byte);
            f.write_all_at(&[b[0] | bit], bitmap_off + byte).expect("write");
        }
        let mut b = [0u8];
        let _ = f.read_at(&mut b, bitmap_off + half + byte);
        f.write_all_at(&[b[0] | bit], bitmap_off + half + byte).expect("write");
    }
    let mut descs = Vec::with_capacity(24 * pages.len());
    for (&p, (flags, data)) in pfns.iter().zip(pages) {
        let at = data_base + p * bs / scale;
        f.write_all_at(data, at).expect("write");
        descs.extend_from_slice(&at.to_le_bytes());
        descs.extend_from_slice(&(data.len() as u32).to_le_bytes());
        descs.extend_from_slice(&flags.to_le_bytes());
        descs.extend_from_slice(&0u64.to_le_bytes());
    }
    f.write_all_at(&descs, desc_base).expect("write");
    f.set_len(data_base + max_pfn * bs / scale).expect("set_len");
    pfns
}
