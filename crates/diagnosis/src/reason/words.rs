//! The words: one sentence per stuck subject and the incident's summary.

use super::*;

pub(super) fn describe_stuck(s: &Stuck) -> String {
    let mut d = format!("{}", Node::subject(&s.subject));
    match s.wait.kind {
        WaitKind::Running => d.push_str(&format!(" runs {}", s.wait.function.as_deref().unwrap_or("?"))),
        WaitKind::Sleep => {
            d.push_str(&format!(" sleeps in {}", s.wait.function.as_deref().unwrap_or("?")));
            push_caller(&mut d, &s.wait);
        }
        WaitKind::Unknown if s.wait.function.is_none() && s.subject.cpu.is_some() => {
            d.push_str(" runs code the input does not show")
        }
        WaitKind::Unknown => {
            d.push_str(&format!(" is blocked in {}", s.wait.function.as_deref().unwrap_or("schedule")));
            push_caller(&mut d, &s.wait);
        }
        k => {
            d.push_str(&format!(" waits for {}", k.as_str()));
            if let Some(a) = s.wait.lock_address {
                d.push_str(&format!(" at {a:#x}"));
            }
            if !s.wait.target_cpus.is_empty() {
                let cpus: Vec<String> = s.wait.target_cpus.iter().map(|c| c.to_string()).collect();
                d.push_str(&format!(" from CPU {}", cpus.join(",")));
            }
            if let Some(f) = &s.wait.function {
                d.push_str(&format!(" in {f}"));
            }
            push_caller(&mut d, &s.wait);
        }
    }
    if s.irqs_enabled == Some(false) {
        d.push_str(" with interrupts off");
    }
    d
}

/// ` from CALLER`: the code that began the wait.
fn push_caller(d: &mut String, w: &Wait) {
    if let Some(c) = &w.called_from {
        d.push_str(&format!(" from {c}"));
    }
}

pub(super) fn summarize(inc: &Incident, events: &[Event]) -> String {
    let mut parts = Vec::new();
    let kinds: Vec<String> = inc
        .counts
        .iter()
        .filter(|(k, _)| *k != EventKind::NmiBacktrace)
        .map(
            |(k, n)| {
                if *n > 1 { format!("{} ×{n}", k.as_str().replace('_', " ")) } else { k.as_str().replace('_', " ") }
            },
        )
        .collect();
    let span = match (inc.first_time, inc.last_time) {
        (Some(a), Some(b)) if b - a >= 1.0 => format!(" over {:.0} s", b - a),
        _ => String::new(),
    };
    let what = format!("{}{span}", kinds.join(", "));
    let what = if what.is_empty() { String::new() } else { format!(" ({})", what.trim_start()) };
    parts.push(format!("{}{what}.", inc.title));
    if !inc.stuck.is_empty() {
        // Tell the chain from its first waiter to its end.
        let mut out: BTreeMap<&Node, &ChainLink> = BTreeMap::new();
        for l in &inc.chain {
            out.entry(&l.waiter).or_insert(l);
        }
        let steps = |s: &Stuck| {
            let mut n = stuck_node(s);
            let mut k = 0;
            while let Some(l) = out.get(&n) {
                n = l.waits_for.clone();
                k += 1;
                if k > inc.chain.len() {
                    break;
                }
            }
            k
        };
        let mut ordered: Vec<&Stuck> = inc.stuck.iter().collect();
        ordered.sort_by_key(|s| std::cmp::Reverse(steps(s)));
        let d: Vec<String> = ordered.into_iter().map(describe_stuck).collect();
        parts.push(format!("{}.", capitalize(&d.join("; "))));
    }
    if let Some(r) = &inc.root {
        parts.push(format!("Root cause ({}): {}.", r.confidence.as_str(), r.reason.trim_end_matches('.')));
    }
    if let Some(p) = inc.panic {
        parts.push(format!("It ended in a panic: {}.", events[p].message.as_deref().unwrap_or("")));
    }
    parts.join(" ")
}

pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
