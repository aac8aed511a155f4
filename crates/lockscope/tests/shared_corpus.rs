//! Shared-corpus suite: for every `../shared/corpus/*/console.log`, the events and the
//! diagnosis agree with its `truth.json` wherever a log can show it. Skips (passes with a
//! note) when ../shared is not beside the checkout.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    p.is_dir().then(|| p.canonicalize().unwrap())
}

fn analyze(log: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lockscope")).args(["analyze", "--json"]).arg(log).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Truth's event kind → ours (kind, subkind).
fn our_kind(truth: &str) -> (&str, Option<&str>) {
    match truth {
        "sched_while_atomic" => ("oops", Some("scheduling_while_atomic")),
        "null_deref" => ("oops", Some("null_pointer")),
        k => (k, None),
    }
}

fn check_case(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let truth: Value = serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let v = analyze(&dir.join("console.log"));
    let events = v["events"].as_array().unwrap();
    // Every event the log really shows is found, at its line, with its CPU and task.
    for te in truth["log_events"].as_array().unwrap() {
        let (kind, subkind) = our_kind(te["kind"].as_str().unwrap());
        let line = te["line"].as_u64().unwrap();
        let found = events.iter().find(|e| {
            e["kind"] == kind
                && e["lines"]["first"].as_u64().unwrap() <= line
                && line <= e["lines"]["last"].as_u64().unwrap()
                && subkind.is_none_or(|s| e["subkind"] == s)
        });
        let Some(e) = found else {
            problems.push(format!("no {kind} event covering line {line}"));
            continue;
        };
        if let Some(c) = te.get("cpu").and_then(Value::as_u64)
            && e["cpu"].as_u64() != Some(c)
        {
            problems.push(format!("{kind} at line {line}: cpu {} != {c}", e["cpu"]));
        }
        if let (Some(pid), true) = (te.get("pid").and_then(Value::as_u64), kind != "panic")
            && e["task"]["pid"].as_u64() != Some(pid)
        {
            problems.push(format!("{kind} at line {line}: pid {} != {pid}", e["task"]["pid"]));
        }
        if kind == "panic" && e["message"] != te["message"] {
            problems.push(format!("panic message {} != {}", e["message"], te["message"]));
        }
    }
    // The root cause names the task the truth names.
    let expected = &truth["expected"]["root_cause"];
    let root = &v["diagnosis"]["root"];
    if root["task"]["pid"] != expected["pid"] || root["task"]["comm"] != expected["comm"] {
        problems.push(format!("root {} != expected {}:{}", root["task"], expected["comm"], expected["pid"]));
    }
    // Each CPU of the expected chain that the log reports waits for what the truth says.
    let incidents = v["incidents"].as_array().unwrap();
    let stuck: Vec<&Value> = incidents.iter().flat_map(|i| i["stuck"].as_array().unwrap().iter()).collect();
    for link in truth["expected"]["waits_for_chain"].as_array().unwrap() {
        let Some(cpu) = link.get("cpu").and_then(Value::as_u64) else { continue };
        let Some(s) = stuck.iter().find(|s| s["subject"]["cpu"].as_u64() == Some(cpu)) else {
            continue; // the log printed nothing about this CPU
        };
        let w = &link["waits_for"];
        match w["type"].as_str() {
            Some("csd_ipi") if (s["wait"]["kind"] != "csd_ipi" || s["wait"]["target_cpus"] != w["target_cpus"]) => {
                problems.push(format!(
                    "CPU {cpu}: wait {} targets {} != csd_ipi {}",
                    s["wait"]["kind"], s["wait"]["target_cpus"], w["target_cpus"]
                ));
            }
            Some("spinlock") => {
                let addr =
                    u64::from_str_radix(w["lock_address"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
                if s["wait"]["kind"] != "spinlock"
                    || s["wait"]["lock_address"].as_str() != Some(format!("{addr:#x}").as_str())
                {
                    problems.push(format!(
                        "CPU {cpu}: wait {} at {} != spinlock {addr:#x}",
                        s["wait"]["kind"], s["wait"]["lock_address"]
                    ));
                }
            }
            _ => {}
        }
    }
    // Task waits of the chain (hung tasks).
    for link in truth["expected"]["waits_for_chain"].as_array().unwrap() {
        let (Some(pid), Some(t)) = (link.get("pid").and_then(Value::as_u64), link["waits_for"]["type"].as_str()) else {
            continue;
        };
        if link.get("cpu").is_some() {
            continue;
        }
        let Some(s) = stuck.iter().find(|s| s["subject"]["task"]["pid"].as_u64() == Some(pid)) else { continue };
        let ours = s["wait"]["kind"].as_str().unwrap();
        let agree = match t {
            "bit_lock" => matches!(ours, "bit_wait" | "page_lock" | "bit_spinlock"),
            "rwsem_read" | "rwsem_write" | "rcu_grace_period" => ours == t,
            _ => true,
        };
        if !agree {
            problems.push(format!("task {pid}: wait {ours} != {t}"));
        }
    }
    problems
}

#[test]
fn corpus_console_logs_agree_with_truth() {
    let Some(corpus) = corpus() else {
        eprintln!("../shared/corpus not found: shared-corpus suite skipped");
        return;
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("truth.json").exists())
        .collect();
    cases.sort();
    let mut failed = Vec::new();
    for c in &cases {
        let problems = check_case(c);
        let name = c.file_name().unwrap().to_string_lossy().into_owned();
        eprintln!(
            "{name}: {}",
            if problems.is_empty() { "agrees with truth.json".into() } else { problems.join("; ") }
        );
        if !problems.is_empty() {
            failed.push(name);
        }
    }
    assert!(!cases.is_empty());
    assert!(failed.is_empty(), "disagree with truth: {failed:?}");
}
