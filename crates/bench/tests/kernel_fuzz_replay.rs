//! Replays the corpora of the kernel-view fuzz targets (`fuzz/corpus/{vmcoreinfo,printk_ring,
//! kallsyms,btf,task_walk}/`) on stable through the very bodies cargo-fuzz runs
//! (`lockscope-fuzz-bodies`): no input may panic or run for more than 10 s. Crashing inputs a fuzzing run saved in
//! `fuzz/artifacts/<target>/` are replayed by a test of their own.

use lockscope_fuzz_bodies::TARGETS;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files(sub: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(sub).join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Every input of `sub` through its target; the failures, as "target/file: why".
fn replay(sub: &str) -> (usize, Vec<String>) {
    let (mut n, mut failed) = (0, Vec::new());
    for (target, body) in TARGETS {
        for f in files(sub, target) {
            let data = std::fs::read(&f).unwrap();
            n += 1;
            let t = std::time::Instant::now();
            let done = catch_unwind(AssertUnwindSafe(|| body(&data)));
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if t.elapsed().as_secs() >= 10 {
                failed.push(format!("{target}/{name}: ran for {:.0} s", t.elapsed().as_secs_f64()));
            }
            if let Err(e) = done {
                let why = e.downcast_ref::<String>().cloned().or(e.downcast_ref::<&str>().map(|s| s.to_string()));
                failed.push(format!(
                    "{target}/{}: {}",
                    f.file_name().unwrap().to_string_lossy(),
                    why.unwrap_or_default()
                ));
            }
        }
    }
    (n, failed)
}

#[test]
fn corpora_replay_without_panics() {
    let (n, failed) = replay("corpus");
    assert!(n >= 5 * 3, "only {n} corpus inputs: are the seeds there?");
    assert!(failed.is_empty(), "{} of {n} inputs panicked:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn seeds_reach_the_kernel_view() {
    // The unpatched base must give a log, symbols and tasks, or the targets test nothing.
    let k = lockscope_kernel::Kernel::new(lockscope_fuzz_bodies::base().dump()).unwrap();
    assert!(k.log().unwrap().records.len() > 100);
    assert!(k.symbols().unwrap().len() > 50_000);
    assert!(k.tasks().unwrap().0.len() > 50);
    for (target, _) in TARGETS {
        assert!(!lockscope_fuzz_bodies::seeds(target).is_empty(), "{target} has no seeds");
    }
}

// The inputs the fuzzers found (printk layouts out of range, a looping thread list): each
// must now end quickly with an error or a partial answer.
#[test]
fn artifacts_replay_without_panics() {
    let (_, failed) = replay("artifacts");
    assert!(failed.is_empty(), "{} saved crash(es) still panic:\n{}", failed.len(), failed.join("\n"));
}
