//! The shared corpus beside the repository (../shared), for the suites that use it: where
//! it is, and every vmcore of a case, `.xz` ones decompressed into a temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// ../shared, when it is there.
pub fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    p.is_dir().then(|| p.canonicalize().unwrap())
}

/// `xz -dc file > dir/name`; None when xz is not installed.
fn unxz(file: &Path, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(file.file_stem().unwrap());
    let status = Command::new("xz").arg("-dc").arg(file).stdout(std::fs::File::create(&out).ok()?).status().ok()?;
    status.success().then_some(out)
}

/// Every vmcore of a case directory, in every format.
pub fn dumps_of(case: &Path, tmp: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(case).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("vmcore") {
            continue;
        }
        if name.ends_with(".xz") {
            let dir = tmp.join(case.file_name().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            match unxz(&p, &dir) {
                Some(d) => out.push(d),
                None => eprintln!("note: xz not available; {name} skipped"),
            }
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The case directories of one corpus (`corpus`, `corpus-6.12`), sorted.
pub fn cases(shared: &Path, corpus: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(shared.join(corpus)) else { return Vec::new() };
    let mut cases: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    cases
}
