//! `lockscope dump-info` on the repository's test dump: text and JSON.

use std::process::Command;

const DUMP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");

#[test]
fn text_names_format_level_cpus_and_release() {
    let out = Command::new(env!("CARGO_BIN_EXE_lockscope")).args(["dump-info", DUMP]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "[PARTIAL DUMP]",
        "kdump-compressed, header version 6, compression zlib",
        "DUMP LEVEL: 31 (excluded zero pages, cache pages, private cache pages, user pages, free pages)",
        "CPUS: 4  (registers saved by: 0 1 2 3; numbering exact (QEMU vCPU index))",
        "RELEASE: 6.1.0-50-amd64",
        "CPU 1: pid 2      RIP ffffffff8876fdc1  RSP ffffd31c8036fe98",
        "KERNELOFFSET=7600000",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn json_and_a_bad_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_lockscope"))
        .args(["dump-info", "--json", DUMP, "Cargo.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a file that is not a dump fails the run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a vmcore"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["dumps"][0];
    assert_eq!(d["compression"], "zlib");
    assert_eq!(d["dump_level"], 31);
    assert_eq!(d["cpus"][3]["regs"]["rip"], "0xffffffff8904f700");
    assert_eq!(d["vmcoreinfo"]["KERNELOFFSET"], "7600000");
    assert_eq!(d["qemu_cpus"].as_array().unwrap().len(), 4);
}
