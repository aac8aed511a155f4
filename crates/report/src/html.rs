//! The HTML printer: one self-contained page (no external resources) with the summary, the
//! root cause, the waits-for graph drawn as inline SVG, and every incident's details (stuck
//! CPUs and tasks with their stacks, the chain with its reasoning and evidence, what a dump's
//! memory showed) as the text report gives them. Every string from a log or dump is escaped.

use crate::{Report, Style};
use lockscope_diagnosis::graph::Graph;
use lockscope_diagnosis::{Diagnosis, Node};
use lockscope_facts::Confidence;
use std::fmt::Write;

const NODE_W: usize = 230;
const NODE_H: usize = 54;
const COL_GAP: usize = 190;
const ROW_GAP: usize = 36;
const MARGIN: usize = 20;
/// Room above the first row for self-loops and back edges.
const TOP: usize = 44;

/// `&`, `<`, `>`, `"`, `'` as entities, control characters as `\xNN`.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Each node's column: the longest path reaching it from a node nothing points at (cycles
/// cut where they close).
fn columns(g: &Graph) -> Vec<usize> {
    let mut col = vec![0usize; g.nodes.len()];
    for _ in 0..g.nodes.len() {
        let mut changed = false;
        for e in &g.edges {
            if e.from != e.to && col[e.to] < col[e.from] + 1 && col[e.from] + 1 < g.nodes.len() {
                col[e.to] = col[e.from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    col
}

fn label(n: &Node) -> (String, String) {
    match (&n.cpu, &n.task, &n.resource) {
        (Some(c), Some(t), _) => (format!("CPU {c}"), t.to_string()),
        (Some(c), None, _) => (format!("CPU {c}"), String::new()),
        (None, Some(t), _) => ("task".into(), t.to_string()),
        (None, None, Some(r)) => ("resource".into(), r.chars().take(34).collect()),
        _ => ("?".into(), String::new()),
    }
}

/// The waits-for graph as SVG: columns by depth, edges left to right, the root in red.
pub fn svg(d: &Diagnosis) -> String {
    let g = Graph::of(&d.chain);
    if g.nodes.is_empty() {
        return "<p class=\"none\">No waits-for chain: nothing waits for anything the input shows.</p>".into();
    }
    let col = columns(&g);
    let mut row = vec![0usize; g.nodes.len()];
    let mut per_col = vec![0usize; g.nodes.len() + 1];
    for (i, &c) in col.iter().enumerate() {
        row[i] = per_col[c];
        per_col[c] += 1;
    }
    let pos = |i: usize| (MARGIN + col[i] * (NODE_W + COL_GAP), TOP + row[i] * (NODE_H + ROW_GAP));
    let width = MARGIN * 2 + (col.iter().max().unwrap_or(&0) + 1) * (NODE_W + COL_GAP);
    let height = TOP + MARGIN + per_col.iter().max().unwrap_or(&1) * (NODE_H + ROW_GAP) + 20;
    let root = d.root.as_ref().map(|r| Node { cpu: r.cpu, task: r.task.clone(), resource: None });
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"graph\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"waits-for graph\">\
<defs><marker id=\"arrow\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\" fill=\"#444\"/></marker></defs>"
    );
    for e in &g.edges {
        let (x1, y1) = pos(e.from);
        let (x2, y2) = pos(e.to);
        let dash = if e.confidence == Confidence::Possible { " stroke-dasharray=\"6 4\"" } else { "" };
        let (ax, ay, bx, by) = (x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
        let path = if e.from == e.to {
            // A task waiting for itself: a loop over its top right corner.
            let (lx, rx) = (x1 + NODE_W - 50, x1 + NODE_W);
            format!("M{lx},{y1} C{lx},{} {},{} {rx},{}", y1.saturating_sub(34), rx + 34, y1 + 4, y1 + 14)
        } else if col[e.to] <= col[e.from] {
            // Back or self edge: arc above.
            let top = y1.min(y2).saturating_sub(ROW_GAP / 2 + 6);
            format!(
                "M{},{} C{},{} {},{} {},{}",
                x1 + NODE_W / 2,
                y1,
                x1 + NODE_W / 2,
                top,
                x2 + NODE_W / 2,
                top,
                x2 + NODE_W / 2 + 1,
                y2
            )
        } else {
            let mx = (ax + bx) / 2;
            format!("M{ax},{ay} C{mx},{ay} {mx},{by} {bx},{by}")
        };
        let _ = write!(
            s,
            "<path class=\"edge\" d=\"{path}\" fill=\"none\" stroke=\"#444\" stroke-width=\"1.6\"{dash} marker-end=\"url(#arrow)\"><title>{} ({})</title></path>",
            esc(&e.via),
            e.confidence.as_str()
        );
        let (lx, ly) =
            if e.from == e.to { (x1 + NODE_W - 20, y1.saturating_sub(22)) } else { ((ax + bx) / 2, (ay + by) / 2 - 6) };
        let via: String = e.via.chars().take(30).collect();
        let via = if e.via.chars().count() > 30 { format!("{via}…") } else { via };
        let _ = write!(s, "<text class=\"via\" x=\"{lx}\" y=\"{ly}\" text-anchor=\"middle\">{}</text>", esc(&via));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let (x, y) = pos(i);
        let is_root =
            root.as_ref().is_some_and(|r| (r.cpu.is_some() || r.task.is_some()) && r.cpu == n.cpu && r.task == n.task);
        let class = if is_root { "node root" } else { "node" };
        let (a, b) = label(n);
        let _ = write!(
            s,
            "<g class=\"{class}\"><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"8\"/>\
<text x=\"{}\" y=\"{}\" class=\"k\">{}</text><text x=\"{}\" y=\"{}\">{}</text><title>{}</title></g>",
            x + 10,
            y + 21,
            esc(&a),
            x + 10,
            y + 42,
            esc(&b),
            esc(&n.to_string())
        );
    }
    s.push_str("</svg>");
    s
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:22px 0 8px}\
.summary{background:#f4f6f8;border-left:4px solid #5b7;padding:10px 14px}\
.root{background:#fdecea;border-left:4px solid #c33;padding:10px 14px;margin-top:10px}\
#graphbox{overflow:auto;border:1px solid #ddd;padding:6px;margin-top:8px}\
.node rect{fill:#eef3fb;stroke:#4a6fa5;stroke-width:1.5}.node.root rect{fill:#fbe3e1;stroke:#c33;stroke-width:2.5}\
.node text{font:13px monospace;fill:#111}.node text.k{font-weight:bold}.via{font:11px sans-serif;fill:#555}\
pre{background:#fafafa;border:1px solid #e3e3e3;padding:10px;overflow:auto;font:12.5px/1.35 monospace}";

/// The page.
pub fn page(r: &Report<'_>) -> String {
    let d = r.diagnosis;
    let mut out = String::new();
    let names: Vec<String> = r.inputs.iter().map(|i| esc(&i.name)).collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lockscope: {}</title><style>{CSS}</style></head><body>",
        names.join(", ")
    );
    let _ = write!(out, "<h1>lockscope report</h1><p>Inputs: {}</p>", names.join(", "));
    let _ = write!(out, "<h2>Summary</h2><div class=\"summary\" id=\"summary\">{}</div>", esc(&d.summary));
    if let Some(root) = &d.root {
        let kind =
            serde_json::to_value(root.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = write!(
            out,
            "<div class=\"root\" id=\"root\"><b>Root cause</b> [{}] <code>{}</code><br>{}</div>",
            root.confidence.as_str(),
            esc(&kind),
            esc(&root.reason)
        );
    }
    let _ = write!(out, "<h2>Waits-for graph</h2><div id=\"graphbox\">{}</div>", svg(d));
    // The text report, uncoloured, holds every incident's stacks, chain and evidence.
    let text = crate::text(r, Style { color: false });
    let _ = write!(out, "<h2>Details</h2><pre id=\"details\">{}</pre>", esc(&text));
    out.push_str("</body></html>\n");
    out
}
