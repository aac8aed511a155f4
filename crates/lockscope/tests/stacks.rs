//! `bt` and `foreach … bt` on the repo's real dumps (6.1 and 6.12, two ORC layouts), with no
//! debuginfo: golden text next to the test, and the facts a diagnosis stands on checked
//! directly — the CPU spinning on a lock has the lock's address in RDI at the spinning frame,
//! with interrupts off; the CPU waiting for an IPI is in `smp_call_function_many_cond`.

mod common;

use common::run;
use serde_json::Value;

const DUMP_6_1: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";
const DUMP_6_12: &str = "tests/data/dumps/ipi_sleeping_holder.live.6.12.mkd1.7.2-zlib-d31";

fn text(args: &[&str]) -> String {
    let (out, err, code) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&text(&a)).unwrap()
}

fn functions(trace: &Value) -> Vec<String> {
    trace["trace"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["symbol"].as_str().unwrap().split('+').next().unwrap().to_string())
        .collect()
}

#[test]
fn bt_a_golden() {
    insta::assert_snapshot!("bt_a_6_1", text(&["bt", DUMP_6_1, "-a"]));
    insta::assert_snapshot!("bt_a_6_12", text(&["bt", DUMP_6_12, "-a"]));
    insta::assert_snapshot!("foreach_un_bt_6_1", text(&["foreach", DUMP_6_1, "UN", "bt"]));
}

#[test]
fn the_spinning_cpu_holds_the_lock_address_in_rdi_with_irqs_off() {
    for dump in [DUMP_6_1, DUMP_6_12] {
        let v = json(&["bt", dump, "-a"]);
        let traces = v["traces"].as_array().unwrap();
        let spinning = traces
            .iter()
            .find(|t| functions(t).first().is_some_and(|f| f.contains("queued_spin_lock_slowpath")))
            .unwrap_or_else(|| panic!("{dump}: no CPU in the spinlock slow path"));
        let frame = &spinning["trace"]["frames"][0];
        let lock = frame["registers"]["rdi"].as_str().unwrap();
        // RDI names a spinlock inside a module's data: `sym` resolves it to a data symbol.
        let sym = text(&["sym", dump, lock]);
        assert!(sym.contains("[lockscen]"), "{dump}: rdi {lock} is {sym}");
        let flags = u64::from_str_radix(frame["registers"]["rflags"].as_str().unwrap().trim_start_matches("0x"), 16);
        assert_eq!(flags.unwrap() & 0x200, 0, "{dump}: interrupts are off while spinning");
        assert_eq!(spinning["trace"]["stop"]["kind"], "end");
        // And the CPU waiting for the IPI.
        let waiting = traces.iter().find(|t| functions(t).iter().any(|f| f == "smp_call_function_many_cond"));
        assert!(waiting.is_some(), "{dump}: no CPU waits in smp_call_function_many_cond");
    }
}

#[test]
fn bt_pid_words_and_offsets() {
    let v = json(&["foreach", DUMP_6_1, "UN", "bt"]);
    let first = &v["traces"].as_array().unwrap()[0];
    let pid = first["task"]["pid"].as_u64().unwrap().to_string();
    let plain = text(&["bt", DUMP_6_1, &pid]);
    assert!(plain.contains(" __schedule at "), "{plain}");
    let s = text(&["bt", DUMP_6_1, &pid, "-s"]);
    assert!(s.contains(" __schedule+"), "{s}");
    let f = text(&["bt", DUMP_6_1, &pid, "-f"]);
    // Each frame's stack words follow it: more lines than without -f, all addresses.
    assert!(f.lines().count() > plain.lines().count() + 5, "{f}");
    assert!(f.lines().any(|l| l.trim_start().starts_with("ffff") && l.contains(": ")), "{f}");
    // Errors name what is missing and exit 2.
    let (_, err, code) = run(&["bt", DUMP_6_1, "-c", "9"]);
    assert_eq!(code, 2);
    assert!(err.contains("no registers for CPU 9"), "{err}");
    let (_, err, code) = run(&["bt", DUMP_6_1, "999999"]);
    assert_eq!(code, 2);
    assert!(err.contains("no task with pid 999999"), "{err}");
}

#[test]
fn dis_decodes_the_functions_on_the_stacks() {
    // Every frame's function decodes whole, with no bad bytes, and each frame's pc is an
    // instruction boundary of it (a return address follows a call).
    let v = json(&["bt", DUMP_6_1, "-a"]);
    let mut checked = 0;
    for t in v["traces"].as_array().unwrap() {
        let frames = t["trace"]["frames"].as_array().unwrap();
        for f in frames {
            let func = f["symbol"].as_str().unwrap().split('+').next().unwrap();
            if func.starts_with("asm_") || func.contains("startup") || func.contains("ret_from_fork") {
                continue; // entry code: labels inside, not functions
            }
            let (out, err, code) = run(&["dis", DUMP_6_1, func, "--json"]);
            if code == 2 && err.contains("filtered out") {
                continue; // init text, freed after boot: not in the dump
            }
            assert_eq!(code, 0, "{func}: {err}");
            let d: Value = serde_json::from_str(&out).unwrap();
            let insns = d["instructions"].as_array().unwrap();
            assert!(insns.len() > 1, "{func}");
            assert!(insns.iter().all(|i| i["invalid"] == false), "{func} has undecodable bytes");
            let pc = f["pc"].as_str().unwrap();
            let at = insns.iter().position(|i| i["address"] == pc);
            assert!(at.is_some(), "{func}: pc {pc} is no instruction boundary");
            if f["exact_pc"] == false {
                let call = &insns[at.unwrap() - 1]["text"];
                assert!(call.as_str().unwrap().starts_with("call"), "{func}: {pc} follows {call}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} frames checked");
    // Intel syntax, and targets named.
    let intel = text(&["dis", DUMP_6_1, "native_queued_spin_lock_slowpath", "4", "--intel"]);
    assert!(intel.contains("push    ") || intel.contains("push   r"), "{intel}");
    let att = text(&["dis", DUMP_6_1, "schedule"]);
    assert!(att.contains("call   0xffffffff") && att.contains("<__schedule>"), "{att}");
}
