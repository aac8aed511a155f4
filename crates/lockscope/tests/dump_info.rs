//! `lockscope dump-info` on the repository's test dump: text and JSON; `lockscope convert`
//! of it (another compression, a split set shown by dump-info as one dump), and its refusals.

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

fn lockscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lockscope")).args(args).output().unwrap()
}

#[test]
fn convert_to_a_split_set_that_dump_info_shows_as_one_dump() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vmcore.zstd");
    let out = out.to_str().unwrap();
    let r = lockscope(&["convert", DUMP, out, "--compress", "zstd", "--split", "3"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let said = String::from_utf8(r.stdout).unwrap();
    assert!(said.contains("19466 pages"), "{said}");
    let parts: Vec<String> = (1..=3).map(|i| format!("{out}.{i}")).collect();
    // Given in any order, the three files are one dump.
    let r = lockscope(&["dump-info", &parts[2], &parts[0], &parts[1]]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8(r.stdout).unwrap();
    assert_eq!(text.matches("DUMPFILE:").count(), 1, "{text}");
    for want in [
        "kdump-compressed, header version 6, compression zstd",
        "SPLIT: 3 files, PFNs 0x0-",
        "DUMP LEVEL: 31",
        "RELEASE: 6.1.0-50-amd64",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Two of the three: one dump with the gap named.
    let r = lockscope(&["dump-info", "--json", &parts[0], &parts[2]]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["dumps"].as_array().unwrap().len(), 1);
    assert_eq!(v["dumps"][0]["files"].as_array().unwrap().len(), 2);
    assert_eq!(v["dumps"][0]["incomplete"], true);
    assert_eq!(v["dumps"][0]["split_missing_pfns"].as_array().unwrap().len(), 1);
}

#[test]
fn convert_refuses_to_write_its_input_or_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::copy(DUMP, &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let input = input.to_str().unwrap();
    let r = lockscope(&["convert", input, input, "--compress", "snappy", "--force"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("never written"), "{}", String::from_utf8_lossy(&r.stderr));
    let r = lockscope(&["convert", input, DUMP, "--compress", "snappy"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("exists"));
    assert_eq!(std::fs::read(input).unwrap(), before, "the input is untouched");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing left behind");
    let r = lockscope(&["convert", "--help"]);
    let help = String::from_utf8(r.stdout).unwrap();
    assert!(help.contains("page flags") && help.contains("--exclude-zero"), "{help}");
}
