//! Terminal safety: text that came from a dump or a log (utsname, task names, log lines,
//! symbol and module names, titles) must not reach a terminal raw, where an ESC sequence can
//! recolour, move the cursor, rewrite the window title or worse. Control characters other
//! than `\n` and `\t` (C0, DEL, C1), and bidirectional overrides, print as escapes (`\x1b`,
//! `\u{202e}`); bytes that are not UTF-8 print as `\xNN`. JSON output is not escaped (it is
//! exact, and JSON escapes controls itself). `--raw` turns escaping off for the process.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static RAW: AtomicBool = AtomicBool::new(false);

/// Turns escaping by [`output`] and [`output_bytes`] off (`--raw`) or on.
pub fn set_raw(raw: bool) {
    RAW.store(raw, Ordering::Relaxed);
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `s` with every control character but `\n` and `\t` written as an escape.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if needs_escape(c) { push_escaped(&mut out, c) } else { out.push(c) }
    }
    Cow::Owned(out)
}

/// [`for_terminal`] for bytes that may not be UTF-8: invalid bytes become `\xNN`.
pub fn bytes_for_terminal(b: &[u8]) -> Cow<'_, [u8]> {
    if let Ok(s) = std::str::from_utf8(b) {
        return match for_terminal(s) {
            Cow::Borrowed(_) => Cow::Borrowed(b),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        };
    }
    let mut out = String::with_capacity(b.len() + 16);
    for chunk in b.utf8_chunks() {
        out.push_str(&for_terminal(chunk.valid()));
        for &x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    Cow::Owned(out.into_bytes())
}

/// What the CLI prints as text: [`for_terminal`], unless `--raw`.
pub fn output(s: &str) -> Cow<'_, str> {
    if RAW.load(Ordering::Relaxed) { Cow::Borrowed(s) } else { for_terminal(s) }
}

/// [`output`] for bytes.
pub fn output_bytes(b: &[u8]) -> Cow<'_, [u8]> {
    if RAW.load(Ordering::Relaxed) { Cow::Borrowed(b) } else { bytes_for_terminal(b) }
}

/// [`output`] for text painted by [`crate::Style`]: its own SGR sequences (`paint`) are kept,
/// every other control is escaped. An input can therefore still show one of those few
/// colours, never move the cursor or send other sequences.
pub(crate) fn output_styled(s: &str, codes: &[&str]) -> String {
    if RAW.load(Ordering::Relaxed) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&for_terminal(&rest[..i]));
        rest = &rest[i..];
        match codes.iter().map(|c| format!("\x1b[{c}m")).find(|seq| rest.starts_with(seq.as_str())) {
            Some(seq) => {
                out.push_str(&seq);
                rest = &rest[seq.len()..];
            }
            None => {
                out.push_str("\\x1b");
                rest = &rest[1..];
            }
        }
    }
    out.push_str(&for_terminal(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_escapes() {
        assert_eq!(for_terminal("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(for_terminal("a\x1b[31mred\x07\r\x7f\u{9b}\u{202e}"), "a\\x1b[31mred\\x07\\x0d\\x7f\\x9b\\u{202e}");
        assert_eq!(&*bytes_for_terminal(b"ok\x1b]0;title\x07\xff\xc2\x9b\n"), b"ok\\x1b]0;title\\x07\\xff\\x9b\n");
    }

    #[test]
    fn styled_output_keeps_only_its_own_codes() {
        let s = "\x1b[1mTITLE \x1b[31mevil\x1b[2J\x1b[0m";
        assert_eq!(output_styled(s, &["1", "0"]), "\x1b[1mTITLE \\x1b[31mevil\\x1b[2J\x1b[0m");
    }
}
