//! `analyze --html FILE`: one self-contained page (no scripts, no external resources, every
//! input string escaped) with the summary, the root cause and the waits-for graph as inline
//! SVG — for a dump (from memory alone) and for a log. When Chromium is installed
//! (scripts/setup.sh installs Debian's), each page is rendered headless: the DOM the browser
//! built holds the graph's nodes and the summary, and a screenshot is taken
//! (target/html-screenshots/, to look at).

mod common;

use common::{root, run};
use std::path::{Path, PathBuf};
use std::process::Command;

const DUMP: &str = "tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31";
const LOG: &str = "tests/data/corpus/hung_rwsem_chain.live.console.log";

fn page(args: &[&str], out: &Path) -> String {
    let mut a = vec!["analyze", "--html", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let (_, err, code) = run(&a);
    assert_eq!(code, 0, "{args:?}: {err}");
    std::fs::read_to_string(out).unwrap()
}

fn self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for bad in ["<script", "<link", "<iframe", "src=", "@import", "url(http"] {
        assert!(!html.contains(bad), "the page has {bad}");
    }
    // The only URL is the SVG namespace.
    assert_eq!(html.matches("http").count(), html.matches("http://www.w3.org/2000/svg").count());
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Headless Chromium: the DOM it built, and a screenshot.
fn render(browser: &Path, html: &Path, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let url = format!("file://{}", html.display());
    let shot = Command::new(browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,1000")
        .arg(&url)
        .output()
        .unwrap();
    assert!(png.exists(), "no screenshot: {}", String::from_utf8_lossy(&shot.stderr));
    let dom = Command::new(browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn html_pages_for_a_dump_and_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let shots = root().join("target/html-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cases = [("dump", vec!["--no-log", DUMP], "zone_drain:135"), ("log", vec![LOG], "ksmd_demo:135")];
    for (name, args, root_task) in cases {
        let out = dir.path().join(format!("{name}.html"));
        let html = page(&args, &out);
        self_contained(&html);
        assert!(html.contains("<svg") && html.contains("class=\"node root\""), "{name}: no graph with a root");
        assert!(html.contains(root_task), "{name}: the root {root_task} is not on the page");
        assert!(html.contains("id=\"summary\""));
        if let Some(b) = chromium() {
            let png = shots.join(format!("{name}.png"));
            let _ = std::fs::remove_file(&png);
            let dom = render(&b, &out, &png);
            assert!(dom.contains("<svg") && dom.contains(root_task), "{name}: the browser's DOM lacks the graph");
            assert!(std::fs::metadata(&png).unwrap().len() > 10_000, "{name}: a blank screenshot?");
        } else {
            eprintln!("note: Chromium not installed (scripts/setup.sh installs it): {name} page not rendered");
        }
    }
}

#[test]
fn strings_from_inputs_are_escaped() {
    // A hung-task report whose task name carries markup (names are any 15 bytes).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    std::fs::write(
        &log,
        "[  120.000000] INFO: task <b>x</b>:77 blocked for more than 120 seconds.\n\
         [  120.000001]       Not tainted 6.1.0 #1\n\
         [  120.000002] task:<b>x</b>      state:D stack:0     pid:77    ppid:2      flags:0x00004000\n\
         [  120.000003] Call Trace:\n\
         [  120.000004]  <TASK>\n\
         [  120.000005]  __schedule+0x34d/0x9e0\n\
         [  120.000006]  schedule+0x5a/0xd0\n\
         [  120.000007]  io_schedule+0x42/0x70\n\
         [  120.000008]  </TASK>\n",
    )
    .unwrap();
    let out = dir.path().join("x.html");
    let html = page(&[log.to_str().unwrap()], &out);
    self_contained(&html);
    assert!(!html.contains("<b>x</b>"), "markup from the log reached the page");
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
}
