//! Printers: one analysis result, several outputs — readable text (coloured on a
//! terminal), Markdown, and versioned JSON (`lockscope/1`, see docs/json-schema.md).
//!
//! Position in the flow: the last stage. It reads the facts and the diagnosis and never
//! reasons on its own, so every printer says the same thing.

pub mod escape;
pub mod html;
pub mod machine;

use lockscope_diagnosis::{ChainLink, Diagnosis, Incident, Stuck};
use lockscope_facts::{Event, Frame, FrameContext, HeldLocks};
pub use machine::MachineReport;
use serde::Serialize;
use std::fmt::Write;

pub const SCHEMA: &str = "lockscope/1";

/// An input as the report names it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputSummary {
    pub name: String,
    /// `kernel_log` or `ipmi_sel`.
    pub kind: String,
    pub bytes: u64,
    pub lines: u64,
    pub events: usize,
    pub notes: Vec<String>,
}

/// Everything a printer needs.
pub struct Report<'a> {
    pub inputs: &'a [InputSummary],
    pub events: &'a [Event],
    pub held_locks: &'a [HeldLocks],
    pub diagnosis: &'a Diagnosis,
    /// What each vmcore's memory shows.
    pub machines: &'a [MachineReport],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    inputs: &'a [InputSummary],
    events: &'a [Event],
    held_locks: &'a [HeldLocks],
    incidents: &'a [Incident],
    diagnosis: JsonDiagnosis<'a>,
    /// Facts read from each vmcore's memory (absent for logs).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    machine: &'a [MachineReport],
}

#[derive(Serialize)]
struct JsonDiagnosis<'a> {
    summary: &'a str,
    root: &'a Option<lockscope_diagnosis::Root>,
    chain: &'a [ChainLink],
    /// The chain as a graph, and its cycle (a deadlock's members) or null.
    graph: lockscope_diagnosis::graph::Graph,
    cycle: Option<Vec<lockscope_diagnosis::Node>>,
}

pub fn json(r: &Report<'_>) -> String {
    let j = JsonReport {
        schema: SCHEMA,
        inputs: r.inputs,
        events: r.events,
        held_locks: r.held_locks,
        incidents: &r.diagnosis.incidents,
        diagnosis: {
            let graph = lockscope_diagnosis::graph::Graph::of(&r.diagnosis.chain);
            JsonDiagnosis {
                summary: &r.diagnosis.summary,
                root: &r.diagnosis.root,
                chain: &r.diagnosis.chain,
                cycle: graph.cycle(),
                graph,
            }
        },
        machine: r.machines,
    };
    serde_json::to_string_pretty(&j).expect("report serializes") + "\n"
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

/// The SGR codes `Style` paints with (kept by `escape::output_styled`).
const STYLE_CODES: [&str; 6] = ["1", "2", "1;31", "33", "36", "0"];

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }
}

fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + w.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

fn time(t: Option<f64>) -> String {
    t.map(|t| format!("{t:.3} s")).unwrap_or_else(|| "?".into())
}

fn frame_line(f: &Frame, st: Style) -> String {
    let ctx = match f.context {
        FrameContext::Task => "",
        FrameContext::Irq => "[irq] ",
        FrameContext::SoftIrq => "[softirq] ",
        FrameContext::Nmi => "[nmi] ",
        FrameContext::Exception => "[exc] ",
    };
    let s = format!("{ctx}{f}");
    if f.reliable { s } else { st.dim(&s) }
}

fn input_name(r: &Report<'_>, source: usize) -> String {
    r.inputs.get(source).map(|i| i.name.clone()).unwrap_or_else(|| format!("input {source}"))
}

/// Where a piece of evidence is: a line, or a read of a dump's memory.
fn ev_loc(r: &Report<'_>, ev: &lockscope_diagnosis::Evidence) -> String {
    match &ev.memory {
        // A read a pasted crash session shows: its line, and what crash read.
        Some(m) if m.line.is_some() => format!("{} ({})", loc(r, ev.source, ev.line), m.what),
        Some(m) => match m.address {
            Some(a) => format!("memory {a:#x} ({})", m.what),
            None => format!("memory ({})", m.what),
        },
        None => loc(r, ev.source, ev.line),
    }
}

fn loc(r: &Report<'_>, source: usize, line: u64) -> String {
    // Log lines count from 1; line 0 is a report derived from a vmcore's memory.
    if line == 0 {
        return if r.inputs.len() > 1 { format!("{} (memory)", input_name(r, source)) } else { "memory".into() };
    }
    if r.inputs.len() > 1 { format!("{}:{line}", input_name(r, source)) } else { format!("line {line}") }
}

/// "came back 3 more times: boot 2 line 812 (16.1 s), ..." for a folded incident.
fn recurrences(r: &Report<'_>, inc: &Incident) -> Option<String> {
    const SHOWN: usize = 5;
    let rec = &inc.recurrences;
    if rec.count == 0 {
        return None;
    }
    let places: Vec<String> = rec
        .samples
        .iter()
        .take(SHOWN)
        .map(|o| {
            let host = o.host.as_deref().map(|h| format!("{h} ")).unwrap_or_default();
            format!("{host}boot {} {} ({})", o.boot, loc(r, o.source, o.line), time(o.first_time))
        })
        .collect();
    let more =
        if rec.count > places.len() { format!(", and {} more", rec.count - places.len()) } else { String::new() };
    Some(format!(
        "came back {} more time{}, the same: {}{more}",
        rec.count,
        if rec.count == 1 { "" } else { "s" },
        places.join("; ")
    ))
}

fn link_text(l: &ChainLink) -> String {
    format!("{} ──[{}]──▶ {}", l.waiter, l.via, l.waits_for)
}

fn stuck_text(out: &mut String, r: &Report<'_>, s: &Stuck, st: Style) {
    let e = &r.events[s.stack_event];
    let kinds: Vec<&str> = s.kinds.iter().map(|k| k.as_str()).collect();
    let mut head = format!("{}", lockscope_diagnosis::Node::subject(&s.subject));
    if let Some(state) = &s.state {
        head.push_str(&format!("  state {state}"));
    }
    if let Some(d) = s.max_duration_s {
        head.push_str(&format!("  stuck ≥{d:.0} s"));
    }
    match s.irqs_enabled {
        Some(true) => head.push_str("  IRQs on"),
        Some(false) => head.push_str(&format!("  {}", st.red("IRQs off"))),
        None => {}
    }
    let _ = writeln!(
        out,
        "  {}  {}",
        st.bold(&head),
        st.dim(&format!("[{}; {} report(s)]", kinds.join(", "), s.events.len()))
    );
    let w = &s.wait;
    let mut what = format!("waits for: {}", w.kind.as_str());
    if let Some(a) = w.lock_address {
        what.push_str(&format!(" at {a:#x}"));
    }
    if !w.target_cpus.is_empty() {
        what.push_str(&format!(
            " from CPU {}",
            w.target_cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
        ));
    }
    match (&w.function, &w.called_from) {
        (Some(f), Some(c)) => what.push_str(&format!(" ({f} from {c})")),
        (Some(f), None) => what.push_str(&format!(" ({f})")),
        _ => {}
    }
    let _ = writeln!(out, "    {}  [{}]", st.cyan(&what), w.confidence.as_str());
    for why in &w.reasoning {
        for l in why.lines() {
            let _ = writeln!(out, "      {}", st.dim(l));
        }
    }
    if !e.stack.is_empty() {
        let _ = writeln!(out, "    stack ({}, {}):", e.kind.as_str(), loc(r, e.lines.source, e.lines.first));
        for f in e.stack.iter().take(24) {
            let _ = writeln!(out, "      {}", frame_line(f, st));
        }
        if e.stack.len() > 24 {
            let _ = writeln!(out, "      {}", st.dim(&format!("... {} more", e.stack.len() - 24)));
        }
    }
}

pub fn text(r: &Report<'_>, st: Style) -> String {
    let mut out = String::new();
    let d = r.diagnosis;
    let names: Vec<&str> = r.inputs.iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(
        out,
        "{} {} — {} event(s), {} incident(s)",
        st.bold("lockscope"),
        names.join(", "),
        r.inputs.iter().filter(|i| i.kind != "ipmi_sel").map(|i| i.events).sum::<usize>(),
        d.incidents.len()
    );
    for i in r.inputs {
        for n in &i.notes {
            let _ = writeln!(out, "  {}", st.yellow(&format!("note: {}: {n}", i.name)));
        }
    }
    let _ = writeln!(out, "\n{}", st.bold("SUMMARY"));
    out.push_str(&wrap(&d.summary, "  ", 100));
    for inc in &d.incidents {
        let _ = writeln!(out, "\n{}", st.bold(&format!("INCIDENT {}: {}", inc.id, inc.title)));
        let counts: Vec<String> = inc.counts.iter().map(|(k, n)| format!("{} ×{n}", k.as_str())).collect();
        let mut meta = vec![format!("{} – {}", time(inc.first_time), time(inc.last_time))];
        if let Some(rel) = &inc.release {
            meta.insert(0, format!("kernel {rel}"));
        }
        if let Some(h) = &inc.host {
            meta.insert(0, format!("host {h}"));
        }
        let _ = writeln!(out, "  {}", st.dim(&meta.join(" · ")));
        let _ = writeln!(out, "  reports: {}", counts.join(", "));
        if let Some(again) = recurrences(r, inc) {
            let _ = writeln!(out, "  {}", st.yellow(&again));
        }
        if !inc.precursors.is_empty() {
            let _ = writeln!(out, "  before it:");
            for &p in &inc.precursors {
                let e = &r.events[p];
                let _ =
                    writeln!(out, "    {}  [{}] {}", loc(r, e.lines.source, e.lines.first), time(e.time), e.headline);
            }
        }
        if !inc.stuck.is_empty() {
            let _ = writeln!(out, "\n  {}", st.bold("Stuck"));
            for s in &inc.stuck {
                stuck_text(&mut out, r, s, st);
            }
        }
        if inc.groups.iter().any(|g| g.members.len() > 1) {
            let _ = writeln!(out, "\n  {}", st.bold("Waiting together"));
            for g in inc.groups.iter().filter(|g| g.members.len() > 1) {
                let who: Vec<String> =
                    g.members.iter().map(|m| lockscope_diagnosis::Node::subject(m).to_string()).collect();
                let lock = g.lock_address.map(|a| format!(" {a:#x}")).unwrap_or_default();
                let _ = writeln!(out, "    {} × {}{}: {}", g.members.len(), g.kind.as_str(), lock, who.join(", "));
            }
        }
        if !inc.chain.is_empty() {
            let _ = writeln!(out, "\n  {}", st.bold("Waits-for chain"));
            for l in &inc.chain {
                let _ = writeln!(out, "    {}  [{}]", link_text(l), l.confidence.as_str());
                for line in l.reasoning.lines().take(1) {
                    out.push_str(&wrap(line, "        ", 100).lines().map(|x| st.dim(x) + "\n").collect::<String>());
                }
            }
        }
        if !inc.hardware.is_empty() {
            let _ = writeln!(out, "\n  {}", st.bold("Hardware"));
            for h in &inc.hardware {
                let _ = writeln!(
                    out,
                    "    [{}] {} ({})",
                    h.confidence.as_str(),
                    h.record.description,
                    loc(r, h.evidence.source, h.evidence.line)
                );
                out.push_str(&wrap(&h.reasoning, "        ", 100));
            }
        }
        if let Some(root) = &inc.root {
            let kind =
                serde_json::to_value(root.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let _ = writeln!(out, "\n  {} [{}] {}", st.red("Root cause"), root.confidence.as_str(), st.dim(&kind));
            out.push_str(&wrap(&root.reason, "    ", 100));
            if !root.evidence.is_empty() {
                let _ = writeln!(out, "  {}", st.bold("Evidence"));
                for ev in root.evidence.iter().take(8) {
                    let _ = writeln!(out, "    {}: {}", ev_loc(r, ev), ev.text);
                    if let Some(cmd) = ev.memory.as_ref().and_then(|m| m.crash.as_deref()) {
                        let _ = writeln!(out, "      {}", st.dim(&format!("crash> {cmd}")));
                    }
                }
            }
        }
        if let Some(p) = inc.panic {
            let e = &r.events[p];
            let _ = writeln!(out, "\n  ended by: {} ({})", e.title, loc(r, e.lines.source, e.lines.first));
        }
    }
    for m in r.machines {
        let _ = writeln!(out, "\n{}", st.bold(&m.title()));
        out.push_str(&machine::text(m));
    }
    // Text from the inputs must not reach a terminal raw; only our own colours pass.
    escape::output_styled(&out, &STYLE_CODES)
}

pub fn markdown(r: &Report<'_>) -> String {
    let mut out = String::new();
    let d = r.diagnosis;
    let _ = writeln!(out, "# lockscope report\n");
    let _ =
        writeln!(out, "Inputs: {}\n", r.inputs.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", "));
    let _ = writeln!(out, "## Summary\n\n{}\n", d.summary);
    for inc in &d.incidents {
        let _ = writeln!(out, "## Incident {}: {}\n", inc.id, inc.title);
        let counts: Vec<String> = inc.counts.iter().map(|(k, n)| format!("{} ×{n}", k.as_str())).collect();
        let _ = writeln!(out, "- reports: {}", counts.join(", "));
        if let Some(again) = recurrences(r, inc) {
            let _ = writeln!(out, "- {again}");
        }
        let _ = writeln!(out, "- time: {} – {}", time(inc.first_time), time(inc.last_time));
        if let Some(rel) = &inc.release {
            let _ = writeln!(out, "- kernel: `{rel}`");
        }
        for &p in &inc.precursors {
            let e = &r.events[p];
            let _ = writeln!(out, "- before it ({}): `{}`", loc(r, e.lines.source, e.lines.first), e.headline);
        }
        if !inc.stuck.is_empty() {
            let _ = writeln!(out, "\n### Stuck\n");
            let _ = writeln!(out, "| who | waits for | confidence | IRQs |\n|---|---|---|---|");
            for s in &inc.stuck {
                let mut w = s.wait.kind.as_str().to_string();
                if let Some(a) = s.wait.lock_address {
                    w.push_str(&format!(" `{a:#x}`"));
                }
                if !s.wait.target_cpus.is_empty() {
                    w.push_str(&format!(" from CPU {:?}", s.wait.target_cpus));
                }
                match (&s.wait.function, &s.wait.called_from) {
                    (Some(f), Some(c)) => w.push_str(&format!(" (`{f}` from `{c}`)")),
                    (Some(f), None) => w.push_str(&format!(" (`{f}`)")),
                    _ => {}
                }
                let irq = match s.irqs_enabled {
                    Some(true) => "on",
                    Some(false) => "**off**",
                    None => "?",
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    lockscope_diagnosis::Node::subject(&s.subject),
                    w,
                    s.wait.confidence.as_str(),
                    irq
                );
            }
            for s in &inc.stuck {
                let e = &r.events[s.stack_event];
                let _ = writeln!(
                    out,
                    "\n{} ({}, {}):\n\n```",
                    lockscope_diagnosis::Node::subject(&s.subject),
                    e.kind.as_str(),
                    loc(r, e.lines.source, e.lines.first)
                );
                for f in &e.stack {
                    let _ = writeln!(out, "{f}");
                }
                let _ = writeln!(out, "```");
            }
        }
        if !inc.chain.is_empty() {
            let _ = writeln!(out, "\n### Waits-for chain\n");
            for l in &inc.chain {
                let _ = writeln!(
                    out,
                    "1. {} — *{}* — {}: {}",
                    link_text(l),
                    l.confidence.as_str(),
                    l.via,
                    l.reasoning.lines().next().unwrap_or("")
                );
            }
        }
        if let Some(root) = &inc.root {
            let _ = writeln!(out, "\n### Root cause ({})\n\n{}\n", root.confidence.as_str(), root.reason);
            for ev in &root.evidence {
                let _ = writeln!(out, "- {}: `{}`", ev_loc(r, ev), ev.text);
                if let Some(cmd) = ev.memory.as_ref().and_then(|m| m.crash.as_deref()) {
                    let _ = writeln!(out, "  (`crash> {cmd}`)");
                }
            }
        }
        out.push('\n');
    }
    for m in r.machines {
        let what = if m.crash_session { "From the crash session's output" } else { "From the dump's memory" };
        let _ = writeln!(out, "## {what}: `{}`\n\n```text\n{}```\n", m.name, machine::text(m));
    }
    escape::output(&out).into_owned()
}
