//! Facts read from a damaged dump: the lock word's page unreadable, the holder's task struct
//! pointing its stack nowhere. The facts those held are "unknown" with the reason, the rest
//! of the diagnosis stands (the IPI link read from `cfd_data`), and the run exits 0. Built at
//! test time from the repository dump (an uncompressed copy in a temporary directory).

mod damage;

use damage::{patched_copy, plain_dump, plain_kernel, run, tmp};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The kdump file with the page holding `vaddr` made unreadable: its page descriptor points
/// past the end of the file.
fn unreadable_page_copy(name: &str, vaddr: u64) -> PathBuf {
    let mut b = std::fs::read(plain_dump()).unwrap();
    let k = plain_kernel();
    let pfn = (k.memory().translate(vaddr).unwrap() >> 12) as usize;
    let block = u32_at(&b, 428) as usize;
    let (sub, bitmap_blocks) = (u32_at(&b, 432) as usize, u32_at(&b, 436) as usize);
    let bitmaps = (1 + sub) * block;
    let descs = bitmaps + bitmap_blocks * block;
    let dumped = &b[bitmaps + bitmap_blocks * block / 2..descs];
    assert!(dumped[pfn / 8] >> (pfn % 8) & 1 == 1, "page {pfn:#x} is in the dump");
    let before: usize = dumped[..pfn / 8].iter().map(|x| x.count_ones() as usize).sum::<usize>()
        + (dumped[pfn / 8] & ((1u8 << (pfn % 8)) - 1)).count_ones() as usize;
    let at = descs + before * 24;
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let out = tmp().join(name);
    std::fs::write(&out, b).unwrap();
    out
}

fn analyze(dump: &Path) -> (Value, String) {
    let r = run(&["analyze", "--no-log", "--json", dump.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    (serde_json::from_slice(&r.stdout).unwrap(), r.stderr)
}

/// (waiter, target) of each chain link, as "cpu N" / "pid N".
fn links(v: &Value) -> Vec<(String, String)> {
    let node = |n: &Value| match (n["cpu"].as_u64(), n["task"]["pid"].as_u64()) {
        (Some(c), _) => format!("cpu {c}"),
        (None, Some(p)) => format!("pid {p}"),
        _ => n["resource"].as_str().unwrap_or("?").to_string(),
    };
    v["diagnosis"]["chain"].as_array().unwrap().iter().map(|l| (node(&l["waiter"]), node(&l["waits_for"]))).collect()
}

fn spinlock_address(v: &Value) -> u64 {
    let a = v["machine"][0]["locks"][0]["address"].as_str().unwrap();
    u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn a_lock_word_in_a_page_not_in_the_dump_is_unknown_and_the_rest_stands() {
    let (whole, _) = analyze(plain_dump());
    let lock = spinlock_address(&whole);
    let d = unreadable_page_copy("lock-page-gone", lock);
    let (v, _) = analyze(&d);
    let m = &v["machine"][0];
    let l = m["locks"].as_array().unwrap().iter().find(|l| l["kind"] == "spinlock").expect("the lock is still named");
    assert!(l["value"].is_null() && l["locked"].is_null(), "{l}");
    let why = m["unknown"].as_array().unwrap().iter().filter_map(|u| u.as_str()).collect::<Vec<_>>().join("\n");
    assert!(why.contains(&format!("spinlock at {lock:#x}")), "no reason given for the lock word: {why}");
    // The cross-CPU call is read from other pages: it stands.
    assert!(links(&v).contains(&("cpu 1".into(), "cpu 3".into())), "{:?}", links(&v));
}

#[test]
fn a_holder_whose_task_struct_points_its_stack_nowhere_leaves_the_holder_unknown() {
    let k = plain_kernel();
    let (whole, _) = analyze(plain_dump());
    assert!(links(&whole).contains(&("cpu 3".into(), "pid 135".into())), "{:?}", links(&whole));
    let task = k.task_addresses().unwrap().into_iter().find(|&t| k.task(t).is_ok_and(|x| x.pid == 135)).unwrap();
    let stack = task + k.offset_of("task_struct", "stack").unwrap();
    let d = patched_copy("holder-stack-gone", &[(stack, 0xdead_0000_0000_0000u64.to_le_bytes().to_vec())]);
    let (v, _) = analyze(&d);
    // Nothing proves the holder any more: no link claims pid 135 from memory.
    let l = links(&v);
    assert!(!l.contains(&("cpu 3".into(), "pid 135".into())), "{l:?}");
    assert!(l.contains(&("cpu 1".into(), "cpu 3".into())), "{l:?}");
    let lock = &v["machine"][0]["locks"][0];
    assert_eq!(lock["locked"], true, "the lock word still reads: {lock}");
    let why = v["machine"][0]["unknown"].to_string();
    assert!(why.contains("stack of pid 135"), "no reason given for the unreadable stack: {why}");
    assert!(v["diagnosis"]["root"].is_object(), "a root is still named");
}
