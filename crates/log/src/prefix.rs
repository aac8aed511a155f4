//! Line prefixes: every common way a kernel message is wrapped, recognised per line so one
//! file may mix them (a syslog with console lines pasted in, a crash `log` after a dmesg).
//!
//! Recognised, outermost first:
//! - syslog `Mar 28 00:12:31 host kernel: ` and RFC 3339 `2024-03-28T00:12:31.123+01:00 host kernel: `;
//!   journalctl `short`, `short-precise`, `short-iso`, `short-monotonic` (`[ 12.3] host kernel: `);
//!   lines of other programs are kept apart as user-space (`kernel == false`);
//! - `<N>` console levels (before the time stamp, or after it as in crash `log -m`);
//! - `[ 1234.567890]` printk time and crash `log -T` `[Sat Mar 28 00:12:31 CST 2024]`;
//! - printk caller ids `[T123]`/`[C3]`, glued to the time stamp or after a space (`log -c`).

/// Who printed a line: a task (`T`) or a CPU in interrupt context (`C`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Thread(u32),
    Cpu(u32),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Thread(t) => write!(f, "T{t}"),
            Caller::Cpu(c) => write!(f, "C{c}"),
        }
    }
}

/// One log line, its prefix taken apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// The kernel message (or user-space text), without prefix.
    pub text: &'a [u8],
    pub time: Option<f64>,
    pub caller: Option<Caller>,
    pub level: Option<u8>,
    pub host: Option<&'a [u8]>,
    /// Wall-clock time as printed (syslog, journal, `log -T`).
    pub wall: Option<&'a [u8]>,
    /// False for syslog/journal lines of programs other than the kernel.
    pub kernel: bool,
    /// Text before a printk time stamp found inside the line: console noise, or the end of
    /// the previous line when a wrap or a lost line break glued them
    /// (`pid:845641 ppid:842539 flags:0x00000002[13081.589388] Call trace:`).
    pub glued_head: &'a [u8],
}

/// E-mail and Markdown quoting (`> `, `>> `) around a pasted log or crash session, and the
/// `| ` kernel commit messages put before a quoted log.
fn strip_quote(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_prefix(b">") {
        line = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    if let Some(rest) = line.strip_prefix(b"| ") {
        line = rest;
    }
    line
}

pub fn parse(line: &[u8]) -> Record<'_> {
    let line = strip_quote(line);
    let mut rec = Record {
        text: line,
        time: None,
        caller: None,
        level: None,
        host: None,
        wall: None,
        kernel: true,
        glued_head: &[],
    };
    let trimmed = trim_start(line);
    let mut s = trimmed;

    let mut prefixed = false;
    if let Some((wall, rest)) = syslog_time(s).or_else(|| rfc3339_time(s))
        && let Some(printk) = capture_stamp(rest)
    {
        // A capture tool's time stamp before the kernel's (CI runners, serial loggers):
        // `2025-01-24T02:15:03.9009694Z [  246.932163] msg`.
        rec.wall = Some(wall);
        s = printk;
        prefixed = true;
    } else if let Some((wall, rest)) = syslog_time(s).or_else(|| rfc3339_time(s)) {
        // `<date> host tag: message`, or `<date> severity host tag: message` (rsyslog
        // templates with the severity word)
        let rest = skip_severity(trim_start(rest));
        let host_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        // No host (`Dec  9 19:08:31 kernel: ...`): the tag comes first.
        let host_end = if rest[..host_end].ends_with(b":") { 0 } else { host_end };
        let (host, after) = rest.split_at(host_end);
        let after = trim_start(after);
        rec.wall = Some(wall);
        rec.host = (!host.is_empty()).then_some(host);
        match tag(after) {
            Some((t, msg)) if t == b"kernel" => s = msg,
            Some((_, msg)) => {
                rec.kernel = false;
                rec.text = msg;
                return glued_kernel_record(line).unwrap_or(rec);
            }
            None => {
                rec.kernel = false;
                rec.text = after;
                return glued_kernel_record(line).unwrap_or(rec);
            }
        }
    } else if let Some(rest) = s.strip_prefix(b"kernel: ") {
        // Syslog lines whose date and host were cut away: ` kernel: [157282.128180] rcu: ...`.
        s = rest;
        prefixed = true;
    } else if let Some((wall, rest)) = bracketed_digits(s) {
        // `[20170512182106]msg`: a logger's wall clock as one number.
        rec.wall = Some(wall);
        s = rest;
        prefixed = true;
    } else if s.len() < line.len() && !s.starts_with(b"[") && !s.starts_with(b"<") {
        // Leading blanks that do not introduce a prefix belong to the message (frames).
        return rec;
    } else if !s.starts_with(b"[") && !s.starts_with(b"<") {
        // Serial-console noise (BIOS escape sequences) glued before a printk time stamp.
        if let Some(at) = embedded_time(s) {
            rec.glued_head = &s[..at];
            s = &s[at..];
        }
    }

    if let Some((lvl, rest)) = level(s) {
        rec.level = Some(lvl);
        s = rest;
    }
    if let Some((t, rest)) = printk_time(s) {
        rec.time = Some(t);
        s = rest;
        // A continuation fragment (a tab, blanks) cut short by the next record printed on
        // the same console line: `[ 1034.802987] \t[ 1034.804831] INFO: rcu_sched ...`.
        let inner = trim_start(s);
        if inner.len() < s.len()
            && let Some((t2, rest2)) = printk_time(inner)
        {
            rec.time = Some(t2);
            s = rest2;
        }
        // journalctl -o short-monotonic: `[ 12.345678] host kernel: msg`
        if let Some(sp) = memchr::memchr(b' ', s.get(1..).unwrap_or_default()) {
            let host = &s[1..1 + sp];
            if let Some(msg) = s[1 + sp..].strip_prefix(b" kernel: ")
                && !host.is_empty()
                && !host.contains(&b':')
            {
                rec.host = Some(host);
                s = msg;
                rec.text = s;
                return rec;
            }
        }
    } else if let Some((wall, rest)) = crash_wall_time(s) {
        rec.wall = Some(wall);
        s = rest;
    } else if let Some((t, rest)) = cut_printk_time(s) {
        // A paste that begins inside the first line's time stamp: `40849.442492] BUG: ...`.
        rec.time = Some(t);
        s = rest;
    } else if let Some(rest) = relative_time(s) {
        // dmesg -H/--reltime: `[  +0.000014]` deltas and `[Aug25 18:36]` minute marks say
        // nothing of the time since boot: a prefix, without a time.
        s = rest;
        prefixed = true;
    }
    if let Some((c, rest)) = caller(s).or_else(|| s.strip_prefix(b" ").and_then(caller)) {
        rec.caller = Some(c);
        s = rest;
    }
    // One blank separates the prefix from the message; more belong to the message.
    if prefixed || rec.time.is_some() || rec.wall.is_some() || rec.caller.is_some() {
        s = s.strip_prefix(b" ").unwrap_or(s);
        if rec.level.is_none() {
            // crash `log -m`: `[ 12.3] <6>message`
            if let Some((lvl, rest)) = level(s) {
                rec.level = Some(lvl);
                s = rest;
            }
        }
    } else if rec.level.is_none() && rec.host.is_none() {
        // No prefix at all: the whole line, blanks included, is the message.
        return rec;
    }
    rec.text = s;
    rec
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t' || b == 0).count();
    &s[n..]
}

fn is_digit(b: Option<&u8>) -> bool {
    matches!(b, Some(b'0'..=b'9'))
}

/// `Mar 28 00:12:31` with optional `.123456` (journal short-precise); the month as the
/// locale names it (`set 01`, `nov 15`, `déc. 3`): letters, maybe a dot.
fn syslog_time(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let m = s.iter().take(6).take_while(|&&b| b.is_ascii_alphabetic() || b >= 0x80).count();
    if !(3..=5).contains(&m) {
        return None;
    }
    let m = m + usize::from(s.get(m) == Some(&b'.'));
    let s0 = s;
    let s = &s[m - 3..];
    if s.len() < 16 || s[3] != b' ' {
        return None;
    }
    let day = &s[4..6];
    if !(day[0] == b' ' || day[0].is_ascii_digit()) || !day[1].is_ascii_digit() || s[6] != b' ' {
        return None;
    }
    let t = &s[7..15];
    let ok = t.iter().enumerate().all(|(i, &b)| if i == 2 || i == 5 { b == b':' } else { b.is_ascii_digit() });
    if !ok {
        return None;
    }
    let mut end = 15;
    if s.get(15) == Some(&b'.') {
        end = 16 + s[16..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    let (s, end) = (s0, end + m - 3);
    if s.get(end) != Some(&b' ') {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

/// `2024-03-28T00:12:31(.frac)(Z|+01:00|+0100)`.
fn rfc3339_time(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.len() < 20 {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    for (i, &c) in shape.iter().enumerate() {
        let b = s[i];
        let ok = if c == b'd' { b.is_ascii_digit() } else { b == c || (c == b'T' && b == b' ') };
        if !ok {
            return None;
        }
    }
    let mut end = 19;
    if s.get(end) == Some(&b'.') || s.get(end) == Some(&b',') {
        end += 1 + s[end + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    match s.get(end) {
        Some(b'Z') => end += 1,
        Some(b'+') | Some(b'-') => {
            end += 1 + s[end + 1..].iter().take_while(|b| b.is_ascii_digit() || **b == b':').count()
        }
        _ => {}
    }
    if s.get(end) != Some(&b' ') {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

/// `kernel: msg` or `prog[123]: msg`.
fn tag(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', s)?;
    let t = &s[..colon];
    if t.is_empty() || t.contains(&b' ') {
        return None;
    }
    let name = match memchr::memchr(b'[', t) {
        Some(i) => &t[..i],
        None => t,
    };
    let rest = &s[colon + 1..];
    Some((name, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// `<4>`
fn level(s: &[u8]) -> Option<(u8, &[u8])> {
    if s.len() >= 3 && s[0] == b'<' && s[2] == b'>' && s[1].is_ascii_digit() {
        return Some((s[1] - b'0', &s[3..]));
    }
    // Facility-encoded levels as /dev/kmsg consumers print them: `<14>`.
    if s.len() >= 4 && s[0] == b'<' && s[3] == b'>' && s[1].is_ascii_digit() && s[2].is_ascii_digit() {
        return Some(((s[1] - b'0') * 10 + (s[2] - b'0')) % 8).map(|l| (l, &s[4..]));
    }
    None
}

/// `[ 1234.567890]`
fn printk_time(s: &[u8]) -> Option<(f64, &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    let start = i;
    while is_digit(s.get(i)) {
        i += 1;
    }
    if i == start || s.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let frac = i;
    while is_digit(s.get(i)) {
        i += 1;
    }
    if i == frac || s.get(i) != Some(&b']') {
        return None;
    }
    Some((decimal(&s[start..frac - 1], &s[frac..i])?, &s[i + 1..]))
}

/// `int.frac` (ASCII digits) as the nearest f64, as `str::parse` gives it: the digits as
/// one integer, divided by a power of ten; both are exact in f64 when small enough, so the
/// one rounding is the division's. Longer numbers take the slow path.
fn decimal(int: &[u8], frac: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    if int.len() + frac.len() <= 15 {
        let n = int.iter().chain(frac).fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        return Some(n as f64 / POW10[frac.len()]);
    }
    let mut text = String::with_capacity(int.len() + frac.len() + 1);
    text.push_str(std::str::from_utf8(int).ok()?);
    text.push('.');
    text.push_str(std::str::from_utf8(frac).ok()?);
    text.parse().ok()
}

/// Where a printk time stamp starts inside the first bytes of a line, if one does.
fn embedded_time(s: &[u8]) -> Option<usize> {
    let head = &s[..s.len().min(256)];
    memchr::memchr_iter(b'[', head).find(|&i| printk_time(&s[i..]).is_some())
}

/// A kernel syslog record glued to the end of another program's line (line breaks lost
/// when a log was pasted or captured): `... Test run will be stopped Sep 19 02:44:21 host
/// kernel: INFO: task nvme:19919 blocked ...`.
fn glued_kernel_record(line: &[u8]) -> Option<Record<'_>> {
    let at = memchr::memmem::find_iter(line, b" kernel: ").find_map(|k| {
        let from = k.saturating_sub(96);
        // Not at 0: the record must follow other text (and parsing it cannot come back here).
        (from.max(1)..k).find(|&p| line[p - 1] == b' ' && syslog_time(&line[p..]).is_some())
    })?;
    let rec = parse(&line[at..]);
    rec.kernel.then_some(rec)
}

/// After a capture tool's wall-clock stamp: the kernel's own `[ 1234.5678]` (the text
/// from it), or nothing.
fn capture_stamp(rest: &[u8]) -> Option<&[u8]> {
    let t = trim_start(rest);
    printk_time(t).map(|_| t)
}

/// A syslog severity (or `facility.severity`) word some rsyslog templates print before
/// the host: skipped.
fn skip_severity(s: &[u8]) -> &[u8] {
    const WORDS: [&[u8]; 10] =
        [b"emerg", b"alert", b"crit", b"err", b"error", b"warning", b"warn", b"notice", b"info", b"debug"];
    let end = memchr::memchr(b' ', s).unwrap_or(s.len());
    let word = &s[..end];
    let level = word.iter().rposition(|&b| b == b'.').map_or(word, |i| &word[i + 1..]);
    if end < s.len() && WORDS.contains(&level) { trim_start(&s[end..]) } else { s }
}

/// `[20170512182106]`: ten or more digits in brackets (a date and time run together).
fn bracketed_digits(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = s.strip_prefix(b"[")?;
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (n >= 10 && rest.get(n) == Some(&b']')).then(|| (&rest[..n], &rest[n + 1..]))
}

/// `40849.442492] `: a printk time stamp whose opening bracket was cut off.
fn cut_printk_time(s: &[u8]) -> Option<(f64, &[u8])> {
    let int = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let frac = s.get(int + 1..)?.iter().take_while(|b| b.is_ascii_digit()).count();
    if int == 0 || s[int] != b'.' || frac < 3 || s.get(int + 1 + frac) != Some(&b']') {
        return None;
    }
    Some((decimal(&s[..int], &s[int + 1..int + 1 + frac])?, &s[int + frac + 2..]))
}

/// dmesg's relative stamps: `[  +0.000014]`, `[ +43.245062]`, and `[Aug25 18:36]`.
fn relative_time(s: &[u8]) -> Option<&[u8]> {
    let rest = s.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', &rest[..rest.len().min(24)])?;
    let inner = trim_start(&rest[..close]);
    let delta = inner.strip_prefix(b"+").is_some_and(|d| {
        let (int, frac) = d.split_at(d.iter().position(|&b| b == b'.').unwrap_or(d.len()));
        !int.is_empty()
            && int.iter().all(u8::is_ascii_digit)
            && frac.len() > 1
            && frac[1..].iter().all(u8::is_ascii_digit)
    });
    // `Aug25 18:36`: a month, its day, hours and minutes.
    let minute = inner.len() == 11
        && inner[..3].iter().all(u8::is_ascii_alphabetic)
        && inner[3..5].iter().all(u8::is_ascii_digit)
        && inner[5] == b' '
        && inner[8] == b':';
    (delta || minute).then(|| &rest[close + 1..])
}

/// crash `log -T`: `[Sat Mar 28 00:12:31 CST 2024]`
fn crash_wall_time(s: &[u8]) -> Option<(&[u8], &[u8])> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    if s.len() < 26 || s[0] != b'[' || !DAYS.contains(&&s[1..4]) || s[4] != b' ' {
        return None;
    }
    let end = memchr::memchr(b']', &s[..s.len().min(48)])?;
    syslog_time(&s[5..end + 1].iter().map(|&b| if b == b']' { b' ' } else { b }).collect::<Vec<_>>())?;
    Some((&s[1..end], &s[end + 1..]))
}

/// `[T123]`, `[    T123]`, `[  C3]`
fn caller(s: &[u8]) -> Option<(Caller, &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    while s.get(i) == Some(&b' ') {
        i += 1;
    }
    let kind = *s.get(i)?;
    if kind != b'T' && kind != b'C' {
        return None;
    }
    i += 1;
    let start = i;
    while is_digit(s.get(i)) {
        i += 1;
    }
    if i == start || s.get(i) != Some(&b']') || i - start > 10 {
        return None;
    }
    let n = s[start..i].iter().try_fold(0u32, |n, &d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))?;
    let c = if kind == b'T' { Caller::Thread(n) } else { Caller::Cpu(n) };
    Some((c, &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &str) -> String {
        String::from_utf8_lossy(parse(line.as_bytes()).text).into_owned()
    }

    #[test]
    fn dmesg_and_caller_ids() {
        // corpus console.log and syzbot logs
        let r = parse(b"[   16.981164] watchdog: BUG: soft lockup - CPU#1 stuck for 10s! [text_poke:138]");
        assert_eq!(r.time, Some(16.981164));
        assert_eq!(r.text, b"watchdog: BUG: soft lockup - CPU#1 stuck for 10s! [text_poke:138]");
        let r = parse(b"[  584.319605][   T31]  __switch_to+0x2b0/0x6e0 (T)");
        assert_eq!(r.caller, Some(Caller::Thread(31)));
        assert_eq!(r.text, b" __switch_to+0x2b0/0x6e0 (T)");
        let r = parse(b"[ 1234.5] [  C3] NMI backtrace for cpu 3");
        assert_eq!(r.caller, Some(Caller::Cpu(3)));
        assert_eq!(r.text, b"NMI backtrace for cpu 3");
        assert_eq!(text("[   16.984542]  <TASK>"), " <TASK>");
    }

    #[test]
    fn syslog_and_journal() {
        // seed 004
        let r =
            parse(b"    Mar 28 00:12:31 localhost kernel: [ 4440.558086] [<ffffffff8111ec90>] ? sync_page+0x0/0x50");
        assert_eq!(r.host, Some(&b"localhost"[..]));
        assert_eq!(r.wall, Some(&b"Mar 28 00:12:31"[..]));
        assert_eq!(r.time, Some(4440.558086));
        assert_eq!(r.text, b"[<ffffffff8111ec90>] ? sync_page+0x0/0x50");
        // seed 003 /var/log/messages: another program
        let r = parse(b"Mar 27 20:48:45 node-2 etcd[17285]: {\"level\":\"warn\"}");
        assert!(!r.kernel);
        assert_eq!(r.host, Some(&b"node-2"[..]));
        let r = parse(b"Mar 28 17:04:54 node-2 kernel: Linux version 4.18.0-372.19.1.es8_10.aarch64");
        assert!(r.kernel);
        assert_eq!(r.text, b"Linux version 4.18.0-372.19.1.es8_10.aarch64");
        // journalctl -o short-precise / short-iso / short-monotonic
        assert_eq!(text("Mar 28 00:12:31.558031 host kernel: INFO: task a:1 blocked"), "INFO: task a:1 blocked");
        let r = parse(b"2024-03-28T00:12:31+0100 host kernel: x");
        assert_eq!((r.wall, r.text), (Some(&b"2024-03-28T00:12:31+0100"[..]), &b"x"[..]));
        let r = parse(b"2024-03-27T20:48:45.123456+08:00 node-2 kernel: [ 1.5] y");
        assert_eq!((r.time, r.text), (Some(1.5), &b"y"[..]));
        let r = parse(b"[ 4440.558031] localhost kernel: INFO: task");
        assert_eq!((r.host, r.text), (Some(&b"localhost"[..]), &b"INFO: task"[..]));
    }

    #[test]
    fn crash_log_forms() {
        assert_eq!(parse(b"<4>[ 1.000000] hello").level, Some(4));
        let r = parse(b"[    1.000000] <6>hello");
        assert_eq!((r.level, r.text), (Some(6), &b"hello"[..]));
        let r = parse(b"[Sat Mar 28 00:12:31 CST 2024] hello");
        assert_eq!((r.wall, r.text), (Some(&b"Sat Mar 28 00:12:31 CST 2024"[..]), &b"hello"[..]));
        let r = parse(b"[    0.000000] [    T0] Linux version 6.1.0");
        assert_eq!((r.caller, r.text), (Some(Caller::Thread(0)), &b"Linux version 6.1.0"[..]));
    }

    #[test]
    fn console_noise_before_time_stamp() {
        // corpus console.log line 9
        let r = parse(b"Probing EDD (edd=off to disable)... oc\x1b[?7l\x1b[2J[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org)");
        assert_eq!(r.time, Some(0.0));
        assert!(r.text.starts_with(b"Linux version 6.1.0-50-amd64"));
    }

    #[test]
    fn time_stamps_parse_as_str_parse_does() {
        for t in ["0.000000", "16.981164", "4440.558086", "1.5", "99999.999999", "123456789.123456", "0.1", "7.000001"]
        {
            let (int, frac) = t.split_once('.').unwrap();
            assert_eq!(decimal(int.as_bytes(), frac.as_bytes()), t.parse().ok(), "{t}");
        }
        assert_eq!(parse(b"[12345678901234.123456789] x").time, Some(12_345_678_901_234.123));
    }

    #[test]
    fn no_prefix_keeps_blanks() {
        assert_eq!(text("  func+0x1/0x2"), "  func+0x1/0x2");
        assert_eq!(text("[  OK  ] Started foo"), "[  OK  ] Started foo");
        assert_eq!(text(""), "");
        assert_eq!(text("["), "[");
    }
}
