//! Every command on the real arm64 dump in tests/data (Debian 6.1.0-50-arm64 under QEMU, the
//! live IPI lockup; kallsyms holds code only), and `analyze` against its truth.json: the same
//! root, root kind and chain as on x86_64.

mod common;

use common::run;

const DUMP: &str = "tests/data/dumps/ipi_sleeping_holder.live.arm64.qemu-kdump-zlib";

fn truth() -> serde_json::Value {
    let p = common::root().join("tests/data/arm64/ipi_sleeping_holder.live.truth.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ok(args: &[&str]) -> String {
    let (out, err, code) = run(args);
    assert_eq!(code, 0, "lockscope {args:?}: {err}");
    out
}

#[test]
fn analyze_finds_truths_root_kind_and_chain() {
    let truth = truth();
    let v: serde_json::Value = serde_json::from_str(&ok(&["analyze", "--json", DUMP])).unwrap();
    let d = &v["diagnosis"];
    let root = &truth["expected"]["root_cause"];
    assert_eq!(d["root"]["task"]["pid"], root["pid"], "{}", d["root"]);
    assert_eq!(d["root"]["kind"], "sleeps_holding_spinlock", "{}", d["root"]);
    let chain = d["chain"].as_array().unwrap();
    let lock = truth["locks"]["demo_zone.lock"]["lock_address"].as_str().unwrap();
    let lock = u64::from_str_radix(lock.trim_start_matches("0x"), 16).unwrap();
    // CPU 1 → CPU 3 (the CSD target read from cfd_data) → the sleeping holder.
    let ipi = chain.iter().find(|l| l["waiter"]["cpu"] == 1).expect("CPU 1's link");
    assert_eq!(ipi["waits_for"]["cpu"], 3, "{ipi}");
    let spin = chain.iter().find(|l| l["waiter"]["cpu"] == 3).expect("CPU 3's link");
    assert_eq!(spin["waits_for"]["task"]["pid"], root["pid"], "{spin}");
    let text = ok(&["analyze", DUMP]);
    assert!(text.contains(&format!("{lock:#x}")), "the lock of truth is named: {text}");
    assert!(text.contains("X19 of the spinning slow path"), "{text}");
}

#[test]
fn every_command_works() {
    let sys = ok(&["sys", DUMP]);
    assert!(sys.contains("RELEASE: 6.1.0-50-arm64") && sys.contains("CPUS: 4") && sys.contains("TASKS:"), "{sys}");
    let ps = ok(&["ps", DUMP]);
    assert!(ps.contains(">   147") && ps.contains("UN  [zone_drain]"), "{ps}");
    let runq = ok(&["runq", "-T", DUMP]);
    assert!(runq.contains("CPU 3: 27.35 secs"), "{runq}");
    let log = ok(&["log", DUMP]);
    assert!(log.contains("soft lockup - CPU#1 stuck"), "{log}");
    let sym = ok(&["sym", DUMP, "runqueues"]);
    assert!(sym.contains("not in kallsyms; found:"), "{sym}");
    let data = ok(&["sym", DUMP, "ffffba4e9e0d31e0"]);
    assert!(data.contains(".data+160 [lockscen]"), "module data is named by its section: {data}");
    let st = ok(&["struct", DUMP, "rq.cpu", "ffff28b98ff3ef40"]);
    assert!(st.contains("cpu = 3"), "{st}");
    let rd = ok(&["rd", DUMP, "ffffba4e9e0d31e0", "2"]);
    assert!(rd.contains("0000000000000101") || rd.contains("33414d4400000101"), "{rd}");
    let fe = ok(&["foreach", DUMP, "UN", "bt"]);
    assert!(fe.contains("zone_drain") && fe.contains("msleep"), "{fe}");
    let dis = ok(&["dis", DUMP, "queued_spin_lock_slowpath"]);
    assert!(dis.contains("ldxr") && dis.contains("[x19]"), "{dis}");
    let bt = ok(&["bt", DUMP, "145"]);
    assert!(bt.contains("drain_zone_pages_sleep_demo") && !bt.contains("exception"), "{bt}");
    let info = ok(&["dump-info", DUMP]);
    assert!(info.contains("PSTATE"), "{info}");
}

#[test]
fn bt_json_names_arm64_registers() {
    let v: serde_json::Value = serde_json::from_str(&ok(&["bt", "--json", "-c", "3", DUMP])).unwrap();
    let frames = v["traces"][0]["trace"]["frames"].as_array().or_else(|| v[0]["trace"]["frames"].as_array());
    let frames = frames.unwrap_or_else(|| panic!("{v}"));
    let regs = &frames[0]["registers"];
    assert!(regs["x19"].is_string() && regs["pstate"].is_string() && regs["pc"].is_string(), "{regs}");
    assert_eq!(frames[1]["symbol"].as_str().map(|s| s.starts_with("rmqueue_bulk_demo")), Some(true), "{}", frames[1]);
}

/// The arm64 dump with its VMCOREINFO note's text blanked (a dump taken without `-device
/// vmcoreinfo` looks the same): the kernel's own copy in memory is found, and the stacks come
/// out as before. A temporary copy is changed, never the input.
#[test]
fn without_the_vmcoreinfo_note_the_copy_in_memory_serves() {
    let mut bytes = std::fs::read(common::root().join(DUMP)).unwrap();
    let start = bytes.windows(10).position(|w| w == b"OSRELEASE=").unwrap();
    let end = start + bytes[start..].iter().position(|&b| b == 0).unwrap();
    bytes[start..end].fill(b'x');
    let dir = std::env::temp_dir().join(format!("lockscope-arm64-noinfo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("vmcore");
    std::fs::write(&copy, &bytes).unwrap();
    let copy = copy.to_str().unwrap();
    let info = ok(&["dump-info", copy]);
    assert!(info.contains("VMCOREINFO (0 keys)"), "{info}");
    let bt = ok(&["bt", "-c", "3", copy]);
    assert!(bt.contains("queued_spin_lock_slowpath") && bt.contains("rmqueue_bulk_demo"), "{bt}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["analyze", "--json", copy])).unwrap();
    assert_eq!(v["diagnosis"]["root"]["kind"], "sleeps_holding_spinlock", "{}", v["diagnosis"]["root"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_system_map_adds_the_data_symbols_kallsyms_lacks() {
    const MAP: &str = "tests/data/arm64/System.map-6.1.0-50-arm64.subset";
    // linux_banner: neither in kallsyms (code only) nor among the symbols found from BTF and code.
    let (_, err, code) = run(&["sym", DUMP, "linux_banner"]);
    assert_ne!(code, 0, "{err}");
    let banner = ok(&["sym", "--system-map", MAP, DUMP, "linux_banner"]);
    let at = u64::from_str_radix(banner.split_whitespace().next().unwrap(), 16).unwrap();
    let text = ok(&["rd", "--system-map", MAP, DUMP, &format!("{at:#x}"), "2"]);
    assert!(text.contains("Linux ve"), "the map's address, moved by KASLR, holds the banner: {text}");
    // kallsyms' code symbols stay (the 37-line map has none of them).
    assert!(ok(&["sym", "--system-map", MAP, DUMP, "el1h_64_irq_handler"]).contains("(T) el1h_64_irq_handler"));
    // analyze takes the map too and comes to the same diagnosis.
    let with: serde_json::Value = serde_json::from_str(&ok(&["analyze", "--json", "--system-map", MAP, DUMP])).unwrap();
    let without: serde_json::Value = serde_json::from_str(&ok(&["analyze", "--json", DUMP])).unwrap();
    assert_eq!(with["diagnosis"]["root"], without["diagnosis"]["root"]);
}
