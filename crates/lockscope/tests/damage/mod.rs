//! Helpers for tests on damaged and hostile dumps: copies of the repository dump in a
//! temporary directory (the repository file is never written), an uncompressed copy whose
//! kernel data can be patched in place, and running the binary under a time limit.

#![allow(dead_code)]

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
}

/// A temporary directory for the whole test binary.
pub fn tmp() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// The repository dump rewritten uncompressed (`convert --compress none`), once.
pub fn plain_dump() -> &'static Path {
    static PLAIN: OnceLock<PathBuf> = OnceLock::new();
    PLAIN.get_or_init(|| {
        let out = tmp().join("plain.kdump");
        let r = run(&["convert", "--compress", "none", repo_dump().to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(r.code, Some(0), "convert: {}", r.stderr);
        out
    })
}

/// What a run gave.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// None: killed by a signal, or by the time limit.
    pub code: Option<i32>,
    pub timed_out: bool,
}

/// Address space each run may use (util-linux `prlimit`, where present): a damaged number
/// that asks for a huge allocation then aborts the run, which the tests count as a failure.
const MAX_ADDRESS_SPACE: u64 = 4 << 30;

/// The command, under `prlimit --as` when the machine has it.
fn bounded_command() -> Command {
    let bin = env!("CARGO_BIN_EXE_lockscope");
    let have_prlimit = Command::new("prlimit").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have_prlimit {
        return Command::new(bin);
    }
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={MAX_ADDRESS_SPACE}")).arg("--").arg(bin);
    c
}

/// Runs `lockscope ARGS` with stdout and stderr in files (no pipe can fill), killed after
/// 20 s, its address space bounded.
pub fn run(args: &[&str]) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (tmp().join(format!("out.{n}")), tmp().join(format!("err.{n}")));
    let mut child = bounded_command()
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break (Some(s), false);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let r = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&std::fs::read(&e).unwrap_or_default()).into_owned(),
        code: status.and_then(|s| s.code()),
        timed_out,
    };
    let _ = (std::fs::remove_file(o), std::fs::remove_file(e));
    r
}

/// The file offset of the page holding kernel virtual address `vaddr` in an uncompressed
/// dump: its bytes, found once in the file (so the page must be unique there).
pub fn file_offset(file: &[u8], k: &Kernel, vaddr: u64) -> usize {
    let paddr = k.memory().translate(vaddr).unwrap();
    let mut page = vec![0u8; 4096];
    k.dump().read_phys(paddr & !0xfff, &mut page).unwrap();
    let mut hits = file.windows(4096).enumerate().filter(|(_, w)| *w == &page[..]).map(|(i, _)| i);
    let at = hits.next().expect("page found in the file");
    assert!(hits.next().is_none(), "page of {vaddr:#x} is not unique in the file");
    at + (paddr & 0xfff) as usize
}

/// A copy of the uncompressed dump with `patches` (kernel virtual address, bytes) written
/// into its page data; `name` in the temporary directory.
pub fn patched_copy(name: &str, patches: &[(u64, Vec<u8>)]) -> PathBuf {
    let mut file = std::fs::read(plain_dump()).unwrap();
    let k = Kernel::new(Dump::open(plain_dump()).unwrap()).unwrap();
    for (vaddr, bytes) in patches {
        let at = file_offset(&file, &k, *vaddr);
        file[at..at + bytes.len()].copy_from_slice(bytes);
    }
    let out = tmp().join(name);
    std::fs::write(&out, file).unwrap();
    out
}

/// A kernel view of the uncompressed copy (to find addresses to patch).
pub fn plain_kernel() -> Kernel {
    Kernel::new(Dump::open(plain_dump()).unwrap()).unwrap()
}
