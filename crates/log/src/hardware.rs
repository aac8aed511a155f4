//! Hardware-error evidence: recognising machine-check, EDAC, APEI/GHES, memory-failure,
//! PCIe AER and arm64 SError lines in a kernel log, and parsing IPMI SEL dumps
//! (`ipmitool sel list` / `sel elist` rows and `sel get` detail blocks).
//!
//! Both produce [`HardwareRecord`]s so diagnosis can weigh "the hardware said something"
//! next to a lockup without caring which channel it came from. Kernel lines are matched
//! on the fixed printk prefixes of the kernel sources (mce/core.c, mce/amd.c, edac_mc.c,
//! sb_edac.c/skx_common.c, efi/cper.c, apei/ghes.c, pcie/aer.c, mm/memory-failure.c,
//! arm64 traps.c); one line at a time, so multi-line reports come out as one record per
//! line and grouping them is the caller's business.

use lockscope_facts::HardwareRecord;
use std::fmt::Write;

const CORRECTED: &str = "corrected";
const UNCORRECTED: &str = "uncorrected";
const FATAL: &str = "fatal";
const NON_RECOVERABLE: &str = "non_recoverable";
const INFO: &str = "info";

fn record(source: &str, severity: &str, component: Option<&str>, desc: &str) -> HardwareRecord {
    HardwareRecord {
        source: source.to_string(),
        severity: severity.to_string(),
        component: component.map(str::to_string),
        description: desc.trim().to_string(),
    }
}

/// Recognises one kernel log message (prefix already stripped) as a hardware-error line.
/// Panic lines (`Kernel panic - not syncing: Fatal machine check`) are left to the panic
/// parser. Severity is `info` for header and detail lines that carry none themselves.
pub fn classify_hardware_line(text: &str) -> Option<HardwareRecord> {
    let t = text.trim();
    if t.is_empty() || t.starts_with("Kernel panic") {
        return None;
    }
    if let Some(rest) = t.strip_prefix("mce: ") {
        return classify_mce_prefixed(rest);
    }
    if let Some(rest) = t.strip_prefix("EDAC ") {
        return classify_edac(t, rest);
    }
    if t.starts_with('{') || t.starts_with("[Hardware Error]") {
        return classify_hw_err(t);
    }
    if t.starts_with("Memory failure: ") || is_old_memory_failure(t) {
        // mm/memory-failure.c handles pages poisoned by an uncorrected error.
        return Some(record("memory_failure", UNCORRECTED, Some("memory"), t));
    }
    if t.contains("SError Interrupt on CPU") {
        // arm64 prints this only on its way to panic (arm64_serror_panic).
        return Some(record("serror", FATAL, None, t));
    }
    // 2.6-era x86_64 machine-check output had no `mce:`/`[Hardware Error]` prefixes.
    if matches!(t, "HARDWARE ERROR" | "Machine check events logged") {
        return Some(record("mce", INFO, None, t));
    }
    if t.starts_with("CPU ") && t.contains(": Machine Check Exception:") {
        return Some(mce_bank_line("mce", t, None));
    }
    if t.contains("CMCI storm detected") {
        return Some(record("mce", CORRECTED, Some("cpu"), t));
    }
    classify_pcie(t)
}

/// `MCE 0x1234: ...`: what older kernels printed instead of `Memory failure:`.
fn is_old_memory_failure(t: &str) -> bool {
    t.strip_prefix("MCE 0x")
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(hex, _)| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Lines with the `mce: ` pr_fmt prefix. Most of them are boot chatter (banks, thermal
/// monitoring), so without `[Hardware Error]` only the known error messages count.
fn classify_mce_prefixed(rest: &str) -> Option<HardwareRecord> {
    if let Some(body) = rest.strip_prefix("[Hardware Error]:") {
        return Some(mce_body(body.trim()));
    }
    if rest.starts_with("Uncorrected hardware memory error") || rest.starts_with("Memory error not recovered") {
        return Some(record("mce", UNCORRECTED, Some("memory"), rest));
    }
    if rest.contains("CMCI storm detected") {
        return Some(record("mce", CORRECTED, Some("cpu"), rest));
    }
    None
}

#[rustfmt::skip]
const MCE_SEVERITIES: &[(&str, &str)] = &[
    // mce/amd.c's summary line.
    ("Corrected error", CORRECTED), ("Uncorrected", UNCORRECTED), ("System Fatal error", FATAL),
    // AMD "deferred": uncorrectable data poisoned but not yet consumed.
    ("Deferred error", UNCORRECTED),
    // core.c prints these only on the mce_panic() path.
    ("Machine check: ", FATAL), ("Some CPUs didn't answer", FATAL), ("Fake kernel panic", FATAL),
];

/// The value of the first entry whose key starts `s`.
fn by_prefix(s: &str, table: &[(&str, &'static str)]) -> Option<&'static str> {
    table.iter().find(|(p, _)| s.starts_with(p)).map(|&(_, v)| v)
}

/// The text after `[Hardware Error]: ` of an MCE report: core.c's register dump, or the
/// AMD decoder (mce/amd.c) which prints without the `mce: ` prefix.
fn mce_body(body: &str) -> HardwareRecord {
    if body.contains("Machine Check") && body.contains("Bank ") {
        return mce_bank_line("mce", body, None);
    }
    if let Some(flags_end) = body.find("_STATUS[").and_then(|i| body[i..].find(']').map(|j| (i, i + j))) {
        return amd_status_line(body, flags_end);
    }
    let severity = by_prefix(body, MCE_SEVERITIES).unwrap_or(INFO);
    record("mce", severity, component_from_text(body), body)
}

/// `CPU 2: Machine Check: 0 Bank 3: cc5eb2c000100135` (also `... Exception:` and the EDAC
/// decoders' `... Event:`): severity and component come from the MCi_STATUS value.
fn mce_bank_line(source: &str, line: &str, component: Option<&'static str>) -> HardwareRecord {
    let status = line.rfind("Bank ").and_then(|i| {
        let after = line[i..].split_once(':')?.1.split_whitespace().next()?;
        u64::from_str_radix(after.trim_start_matches("0x"), 16).ok()
    });
    let (severity, derived) = match status {
        Some(s) => (status_severity(s), mcacod_component(s)),
        None => (INFO, None),
    };
    record(source, severity, component.or(derived), line)
}

/// MCi_STATUS architectural bits (Intel SDM vol. 3B 16.3.2.2): VAL 63, UC 61, PCC 57.
fn status_severity(status: u64) -> &'static str {
    let bit = |n: u32| status & (1u64 << n) != 0;
    match (bit(63), bit(61), bit(57)) {
        (false, _, _) => INFO,
        (true, true, true) => FATAL,
        (true, true, false) => UNCORRECTED,
        (true, false, _) => CORRECTED,
    }
}

/// Component from the compound MCA error code (low 16 bits, bit 12 is the filter bit).
/// Cache-hierarchy codes with the "generic" level are what memory controllers report on
/// AMD (UMC 0x011b), so only explicit L0-L2 levels are called `cache`.
fn mcacod_component(status: u64) -> Option<&'static str> {
    let code = (status & 0xefff) as u16;
    if code & 0xef80 == 0x0080 {
        Some("memory")
    } else if code & 0xef00 == 0x0100 {
        Some(if code & 0x3 == 0x3 { "memory" } else { "cache" })
    } else if code & 0xeff0 == 0x0010 || code & 0xfc00 == 0x0400 {
        Some("cpu") // TLB or internal (incl. the 0x0400 internal timer / watchdog)
    } else if code & 0xf800 == 0x0800 {
        Some("bus")
    } else {
        None
    }
}

/// AMD decoder `CPU:0 (17:1:1) MC15_STATUS[Over|CE|MiscV|...|PCC|...]: 0x...`.
fn amd_status_line(body: &str, (start, end): (usize, usize)) -> HardwareRecord {
    let flags: Vec<&str> = body[start + "_STATUS[".len()..end].split('|').collect();
    let has = |f: &str| flags.contains(&f);
    let severity = if has("UE") && has("PCC") {
        FATAL
    } else if has("UE") || has("Deferred") {
        UNCORRECTED
    } else if has("CE") {
        CORRECTED
    } else {
        INFO
    };
    record("mce", severity, None, body)
}

/// `EDAC MC0: 1 CE ...`, `EDAC skx MC2: HANDLING MCE MEMORY ERROR`, `EDAC DEVICE0: UE: ...`.
/// EDAC's own boot lines (`EDAC MC: Ver: 3.0.0`, `Giving out device ...`) are not errors.
fn classify_edac(line: &str, rest: &str) -> Option<HardwareRecord> {
    let (who, body) = rest.split_once(": ")?;
    let unit = who.rsplit(' ').next().unwrap_or(who);
    if !(unit.starts_with("MC") || unit.starts_with("DEVICE")) {
        return None;
    }
    let body = body.trim();
    let token = body.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
    let severity = if is_token(token, "CE") {
        CORRECTED
    } else if is_token(token, "UE") {
        UNCORRECTED
    } else if body.contains("Machine Check") && body.contains("Bank ") {
        return Some(mce_bank_line("edac", line, Some("memory")));
    } else if body.starts_with("HANDLING MCE MEMORY ERROR")
        || ["TSC ", "ADDR ", "MISC ", "PROCESSOR "].iter().any(|p| body.starts_with(p))
    {
        INFO // the sb_edac/skx decoders' register dump around a memory MCE
    } else {
        return None;
    };
    let component = if unit.starts_with("MC") { Some("memory") } else { component_from_text(body) };
    Some(record("edac", severity, component, line))
}

fn is_token(s: &str, token: &str) -> bool {
    s.strip_prefix(token).is_some_and(|r| r.is_empty() || r.starts_with([' ', ':']))
}

/// `[Hardware Error]: ...` with or without the GHES sequence number `{N}`.
fn classify_hw_err(t: &str) -> Option<HardwareRecord> {
    let (seq, rest) = match t.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (true, rest),
        _ => (false, t),
    };
    let body = rest.strip_prefix("[Hardware Error]:")?.trim();
    if seq || is_cper_line(body) { Some(ghes_body(body)) } else { Some(mce_body(body)) }
}

#[rustfmt::skip]
const CPER_PREFIXES: &[&str] = &[
    "Hardware error from APEI", "Hardware error detected on CPU", "It has been corrected by h/w",
    "event severity:", "section_type:", "section type:", "physical_address", "node:",
    "DIMM location:", "error_status:", "error_type:", "port_type:", "fru_", "MIDR:",
];

fn is_cper_line(body: &str) -> bool {
    CPER_PREFIXES.iter().any(|p| body.starts_with(p)) || cper_error_header(body).is_some()
}

/// `Error 0, type: corrected`: the per-section header of cper_estatus_print_section.
fn cper_error_header(body: &str) -> Option<&str> {
    let rest = body.strip_prefix("Error ")?;
    let (n, sev) = rest.split_once(", type: ")?;
    n.bytes().all(|b| b.is_ascii_digit()).then_some(sev)
}

/// CPER severity names (`cper_severity_str`) to the normalised scale.
fn cper_severity(s: &str) -> &'static str {
    match s.trim() {
        "fatal" => FATAL,
        "recoverable" => UNCORRECTED,
        "corrected" => CORRECTED,
        _ => INFO,
    }
}

fn ghes_body(body: &str) -> HardwareRecord {
    let severity = if let Some(sev) = body.strip_prefix("event severity:") {
        cper_severity(sev)
    } else if let Some(sev) = cper_error_header(body) {
        cper_severity(sev)
    } else if body.starts_with("It has been corrected by h/w") {
        CORRECTED
    } else {
        INFO
    };
    // cper_mem_err_location() lines start with the node; they only follow memory sections.
    let component = if body.starts_with("node:") { Some("memory") } else { component_from_text(body) };
    record("ghes", severity, component, body)
}

/// PCIe AER (`AER: Uncorrected (Fatal) error received: ...`, 6.x `Uncorrectable (Fatal)
/// error message received from ...`, `PCIe Bus Error: severity=...`) and DPC containment.
fn classify_pcie(t: &str) -> Option<HardwareRecord> {
    if let Some(i) = t.find("PCIe Bus Error: severity=") {
        let sev = by_prefix(&t[i + "PCIe Bus Error: severity=".len()..], AER_SEVERITIES)?;
        return Some(record("aer", sev, Some("pcie"), t));
    }
    if let Some(i) = t.find("AER: ") {
        let body = &t[i + 5..];
        let body = body.strip_prefix("Multiple ").unwrap_or(body);
        if body.contains(" error received") || body.contains(" error message received") {
            return Some(record("aer", by_prefix(body, AER_SEVERITIES)?, Some("pcie"), t));
        }
        if body.starts_with("device recovery failed") {
            return Some(record("aer", UNCORRECTED, Some("pcie"), t));
        }
        return None;
    }
    if t.contains("DPC: containment event") {
        return Some(record("dpc", UNCORRECTED, Some("pcie"), t));
    }
    None
}

#[rustfmt::skip]
const AER_SEVERITIES: &[(&str, &str)] = &[
    // aer_error_severity_string, before and after the 6.x rename.
    ("Uncorrected (Non-Fatal)", UNCORRECTED), ("Uncorrectable (Non-Fatal)", UNCORRECTED),
    ("Uncorrected (Fatal)", FATAL), ("Uncorrectable (Fatal)", FATAL),
    ("Corrected", CORRECTED), ("Correctable", CORRECTED),
];

#[rustfmt::skip]
const COMPONENT_WORDS: &[(&str, &[&str])] = &[
    ("pcie", &["pcie", "pci express", "aer_"]),
    ("cache", &["cache"]),
    ("memory", &["memory", "dram", "dimm", "ecc", "physical_address"]),
    ("cxl", &["cxl"]),
    ("cpu", &["processor", "cpu", "instruction fetch", "load store", "tlb", "midr"]),
];

/// Best-effort component from the words of a detail line.
fn component_from_text(s: &str) -> Option<&'static str> {
    let l = s.to_ascii_lowercase();
    COMPONENT_WORDS.iter().find(|(_, words)| words.iter().any(|w| l.contains(w))).map(|&(c, _)| c)
}

// ---------------------------------------------------------------------------------------
// IPMI SEL
// ---------------------------------------------------------------------------------------

/// One System Event Log record, from a `sel list`/`sel elist` row, a `sel get` block,
/// or both merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelRecord {
    /// Record id, lower-case hex without leading zeros, so `146` (list) and `0146` (get)
    /// agree.
    pub id: String,
    /// (year, month, day); `None` for `Pre-Init` time stamps.
    pub date: Option<(u16, u8, u8)>,
    /// (hour, minute, second).
    pub time: Option<(u8, u8, u8)>,
    /// The sensor column as printed: `Memory #0xeb`, `Memory CPU0_DIMM_A1`.
    pub sensor: String,
    /// IPMI sensor type (`Memory`, `Processor`, ...).
    pub sensor_type: Option<String>,
    pub sensor_number: Option<u8>,
    /// The SDR name from a `sel get` block (`RAS_MEMORY`).
    pub sensor_id: Option<String>,
    pub event: String,
    /// `Asserted` or `Deasserted`.
    pub direction: Option<String>,
    /// `sel get` fields: `Generic Discrete`, raw event data, record type.
    pub event_type: Option<String>,
    pub event_data: Option<String>,
    pub record_type: Option<String>,
    /// Columns after the direction (threshold readings, OEM data, annotations).
    pub extra: Vec<String>,
    /// 1-based line of the list row, or of `SEL Record ID` for a `sel get`-only record.
    pub line: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelParse {
    pub records: Vec<SelRecord>,
    /// (line number, reason) for lines that are neither SEL rows nor `sel get` fields.
    pub rejected: Vec<(u64, String)>,
}

/// Sensor type names as ipmitool prints them, old and new spellings; the longest match
/// wins (`Other FRU` over `Other`).
#[rustfmt::skip]
const SENSOR_TYPES: &[&str] = &[
    "Temperature", "Voltage", "Current", "Fan", "Physical Security", "Platform Security",
    "Processor", "Power Supply", "Power Unit", "Cooling Device", "POST Memory Resize",
    "Memory", "Drive Slot / Bay", "System Firmware Progress", "System Firmwares",
    "Event Logging Disabled", "Watchdog1", "Watchdog 1", "Watchdog2", "Watchdog 2",
    "System Event", "Critical Interrupt", "Button / Switch", "Button", "Module / Board",
    "Microcontroller / Coprocessor", "Microcontroller", "Add-in Card", "Chassis", "Chip Set",
    "Other FRU", "Cable / Interconnect", "Terminator", "System Boot / Restart Initiated",
    "System Boot Initiated", "Boot Error", "OS Boot", "OS Critical Stop", "Slot / Connector",
    "System ACPI Power State", "Platform Alert", "Entity Presence", "Monitor ASIC / IC",
    "Monitor ASIC", "LAN", "Management Subsystem Health", "Management Subsys Health",
    "Battery", "Session Audit", "Version Change", "FRU State", "Other",
];

/// Parses `ipmitool sel list`/`elist` output and `sel get` blocks, in any mix. A `sel get`
/// block is merged into the list record with the same id (and compatible time stamp).
/// A line of an e-mail reply without its quote markers (`> `, `>> `).
fn unquoted(mut line: &str) -> &str {
    while let Some(rest) = line.strip_prefix('>') {
        line = rest.trim_start();
    }
    line
}

pub fn parse_sel(input: &[u8]) -> SelParse {
    let mut out = SelParse::default();
    let mut details: Vec<SelRecord> = Vec::new();
    let mut open: Option<SelRecord> = None;
    for (idx, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line_no = idx as u64 + 1;
        let text = String::from_utf8_lossy(raw);
        let line = unquoted(text.trim());
        if line.is_empty() {
            continue; // `sel get` separates its two blocks with a blank line
        }
        if line.contains('|') {
            details.extend(open.take());
            match parse_list_row(line, line_no) {
                Ok(r) => out.records.push(r),
                Err(reason) => out.rejected.push((line_no, reason)),
            }
            continue;
        }
        let Some((key, value)) = split_field(line) else {
            out.rejected.push((line_no, "neither a `sel list` row nor a `sel get` field".into()));
            continue;
        };
        if key == "SEL Record ID" {
            details.extend(open.take());
            match parse_id(value) {
                Some(id) => open = Some(SelRecord { id, line: line_no, ..SelRecord::default() }),
                None => out.rejected.push((line_no, format!("SEL record id `{value}` is not hex"))),
            }
        } else if let Some(rec) = open.as_mut() {
            apply_field(rec, key, value);
        } else {
            out.rejected.push((line_no, format!("`{key}` field outside a `sel get` block")));
        }
    }
    details.extend(open.take());
    for d in details {
        merge_detail(&mut out.records, d);
    }
    out.records.sort_by_key(|r| r.line);
    out
}

fn parse_id(s: &str) -> Option<String> {
    let s = s.trim();
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(|n| format!("{n:x}"))
}

fn parse_list_row(line: &str, line_no: u64) -> Result<SelRecord, String> {
    let cols: Vec<&str> = line.split('|').map(str::trim).collect();
    if cols.len() < 5 {
        return Err(format!("{} columns, a SEL row has at least 5", cols.len()));
    }
    let id = parse_id(cols[0]).ok_or_else(|| format!("record id `{}` is not hex", cols[0]))?;
    // ipmitool prints `Pre-Init` for time stamps taken before the BMC clock was set,
    // with the raw seconds (or nothing) in the time column.
    let (date, time) = if cols[1].eq_ignore_ascii_case("Pre-Init") {
        (None, None)
    } else {
        let date = parse_date(cols[1]).ok_or_else(|| format!("bad date `{}`", cols[1]))?;
        let time = parse_time(cols[2]).ok_or_else(|| format!("bad time `{}`", cols[2]))?;
        (Some(date), Some(time))
    };
    if cols[3].is_empty() {
        return Err("empty sensor column".into());
    }
    let (sensor_type, sensor_number) = split_sensor(cols[3]);
    let mut rec = SelRecord {
        id,
        date,
        time,
        sensor: cols[3].to_string(),
        sensor_type,
        sensor_number,
        event: cols[4].to_string(),
        line: line_no,
        ..SelRecord::default()
    };
    for (i, col) in cols.iter().enumerate().skip(5) {
        let (first, rest) = col.split_once(char::is_whitespace).unwrap_or((col, ""));
        if i == 5 && (first == "Asserted" || first == "Deasserted") {
            rec.direction = Some(first.to_string());
            if !rest.trim().is_empty() {
                rec.extra.push(rest.trim().to_string());
            }
        } else if !col.is_empty() {
            rec.extra.push(col.to_string());
        }
    }
    Ok(rec)
}

/// `MM/DD/YYYY`, as ipmitool prints dates.
fn parse_date(s: &str) -> Option<(u16, u8, u8)> {
    let mut it = s.split('/');
    let (m, d, y) = (it.next()?.parse::<u8>().ok()?, it.next()?.parse::<u8>().ok()?, it.next()?.parse().ok()?);
    (it.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

fn parse_time(s: &str) -> Option<(u8, u8, u8)> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?.parse::<u8>().ok()?, it.next()?.parse::<u8>().ok()?, it.next()?.parse::<u8>().ok()?);
    (it.next().is_none() && h < 24 && m < 60 && sec < 61).then_some((h, m, sec))
}

/// `Memory #0xeb` → (Memory, 0xeb); `Memory CPU0_DIMM_A1` → (Memory, none).
fn split_sensor(sensor: &str) -> (Option<String>, Option<u8>) {
    let kind = SENSOR_TYPES
        .iter()
        .filter(|t| sensor.strip_prefix(**t).is_some_and(|r| r.is_empty() || r.starts_with(' ')))
        .max_by_key(|t| t.len())
        .map(|t| t.to_string());
    let number = sensor.rsplit_once("#0x").and_then(|(_, n)| u8::from_str_radix(n.trim(), 16).ok());
    (kind, number)
}

/// `Key            : value` lines of `sel get`. Keys are words, spaces and parentheses.
fn split_field(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim();
    let ok = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || " ()/-_.".contains(c));
    ok.then(|| (key, value.trim()))
}

/// Drops a trailing ` (0x0c)`-style annotation: `Memory (0x0c)`, `RAS_MEMORY (0xeb)`.
fn strip_paren(s: &str) -> &str {
    match s.rfind(" (") {
        Some(i) if s.ends_with(')') => s[..i].trim(),
        _ => s,
    }
}

fn apply_field(rec: &mut SelRecord, key: &str, value: &str) {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match key {
        "Record Type" => rec.record_type = some(value),
        "Timestamp" => {
            let (d, t) = value.split_once(' ').unwrap_or((value, ""));
            rec.date = parse_date(d);
            rec.time = parse_time(t.trim());
        }
        // Appears twice: `Memory` in the event block, `Memory (0x0c)` in the SDR block.
        "Sensor Type" if rec.sensor_type.is_none() => rec.sensor_type = some(strip_paren(value)),
        "Sensor Number" => rec.sensor_number = u8::from_str_radix(value.trim_start_matches("0x"), 16).ok(),
        "Sensor ID" => rec.sensor_id = some(strip_paren(value)),
        "Event Type" => rec.event_type = some(value),
        "Event Data (RAW)" | "Event Data" => rec.event_data = some(value),
        "Description" => rec.event = value.to_string(),
        "Event Direction" => {
            rec.direction = match value {
                "Assertion Event" => Some("Asserted".into()),
                "Deassertion Event" => Some("Deasserted".into()),
                _ => some(value),
            }
        }
        _ => {}
    }
}

/// Folds a `sel get` record into the list row with its id, or keeps it on its own. A SEL
/// that was cleared reuses ids, so differing time stamps mean different records.
fn merge_detail(records: &mut Vec<SelRecord>, mut d: SelRecord) {
    let same_time = |r: &SelRecord| {
        (r.date.is_none() || d.date.is_none() || r.date == d.date)
            && (r.time.is_none() || d.time.is_none() || r.time == d.time)
    };
    if let Some(r) = records.iter_mut().rev().find(|r| r.id == d.id && same_time(r)) {
        r.date = r.date.or(d.date);
        r.time = r.time.or(d.time);
        r.sensor_type = d.sensor_type.or(r.sensor_type.take());
        r.sensor_number = r.sensor_number.or(d.sensor_number);
        r.sensor_id = d.sensor_id;
        r.direction = r.direction.take().or(d.direction);
        r.event_type = d.event_type;
        r.event_data = d.event_data;
        r.record_type = d.record_type;
        if r.event.is_empty() {
            r.event = d.event;
        }
        return;
    }
    // Name it the way `sel list` would, so get-only and list records read alike.
    d.sensor = match (&d.sensor_type, d.sensor_number, &d.sensor_id) {
        (Some(t), Some(n), _) => format!("{t} #0x{n:02x}"),
        (_, _, Some(id)) => id.clone(),
        (Some(t), None, None) => t.clone(),
        _ => String::new(),
    };
    records.push(d);
}

/// Words that make a SEL event a fault report (matched lower-case).
#[rustfmt::skip]
const ERROR_WORDS: &[&str] = &[
    "non-recoverable", "critical", "correctable", "ecc", "ierr", "machine check", "error",
    "fail", "fault", "thermal trip", "parity", "perr", "serr", "fatal",
];

/// Event words to severity, first match wins; there is no finer scale than `uncorrected`
/// for "critical" in [`HardwareRecord`].
#[rustfmt::skip]
const SEL_SEVERITIES: &[(&str, &str)] = &[
    ("non-recoverable", NON_RECOVERABLE), ("uncorrectable", UNCORRECTED),
    ("correctable", CORRECTED), ("non-critical", INFO), ("critical", UNCORRECTED),
    ("ierr", UNCORRECTED), ("machine check", UNCORRECTED), ("fatal", UNCORRECTED),
    ("thermal trip", UNCORRECTED),
];

impl SelRecord {
    /// The event text without ipmitool's `from ...` tail (`Transition to Critical from
    /// less severe`), lower-cased: the tail names the previous state, not this one.
    fn event_head(&self) -> String {
        let l = self.event.to_ascii_lowercase();
        match l.find(" from ") {
            Some(i) => l[..i].to_string(),
            None => l,
        }
    }

    /// Whether the event reports a fault (memory/processor errors, transitions to
    /// critical or non-recoverable, ECC, IERR, machine checks), regardless of
    /// direction: a deassertion still documents the fault, `direction` tells the onset.
    pub fn is_error(&self) -> bool {
        // "Non-Critical" is a warning level; drop it before looking for "critical".
        let head = self.event_head().replace("non-critical", "");
        ERROR_WORDS.iter().any(|k| head.contains(k))
    }

    pub fn to_hardware_record(&self) -> HardwareRecord {
        let head = self.event_head();
        let severity = SEL_SEVERITIES.iter().find(|(k, _)| head.contains(k)).map_or(INFO, |&(_, v)| v);
        let mut desc = format!("SEL {}", self.id);
        if let (Some((y, mo, d)), Some((h, mi, s))) = (self.date, self.time) {
            let _ = write!(desc, " {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
        }
        let _ = write!(desc, " {}", self.sensor);
        if let Some(id) = &self.sensor_id {
            let _ = write!(desc, " [{id}]");
        }
        let _ = write!(desc, ": {}", self.event);
        if let Some(dir) = &self.direction {
            let _ = write!(desc, " ({dir})");
        }
        record("ipmi_sel", severity, self.component(), &desc)
    }

    fn component(&self) -> Option<&'static str> {
        let kind = self.sensor_type.as_deref()?.to_ascii_lowercase();
        let event = self.event.to_ascii_lowercase();
        Some(match kind.as_str() {
            "memory" | "post memory resize" => "memory",
            "processor" => "cpu",
            "power supply" | "power unit" | "voltage" | "current" => "power",
            "temperature" => "thermal",
            "fan" | "cooling device" => "fan",
            "drive slot / bay" => "disk",
            "chassis" => "chassis",
            "chip set" => "chipset",
            "battery" => "battery",
            "critical interrupt" if event.contains("pci") => "pcie",
            "critical interrupt" if event.contains("bus") => "bus",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Want = Option<(&'static str, &'static str, Option<&'static str>)>;

    fn check(cases: &[(&str, Want)]) {
        for &(line, want) in cases {
            let got = classify_hardware_line(line);
            // The scanner asks only about lines holding a trigger.
            let trigger = crate::headers::TRIGGERS.iter().any(|t| line.contains(t));
            assert!(got.is_none() || trigger, "no trigger in {line}");
            let got = got.as_ref().map(|r| (&*r.source, &*r.severity, r.component.as_deref()));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn mce_and_memory_failure_lines() {
        check(&[
            // Real, from a 4.10 boot log posted on a forum (found via code search).
            ("mce: [Hardware Error]: Machine check events logged", Some(("mce", INFO, None))),
            ("mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 3: cc5eb2c000100135", Some(("mce", CORRECTED, Some("cache")))),
            ("mce: [Hardware Error]: TSC 0 ADDR 4658130c0 MISC 102285 ", Some(("mce", INFO, None))),
            // Built from core.c's formats: UC+PCC set, internal timer error code 0x0400.
            ("mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 6: be00000000800400", Some(("mce", FATAL, Some("cpu")))),
            ("mce: [Hardware Error]: RIP 10:<ffffffff8103e1a6> {intel_idle+0x8d/0x130}", Some(("mce", INFO, None))),
            ("mce: [Hardware Error]: Machine check: Processor context corrupt", Some(("mce", FATAL, Some("cpu")))),
            // Real, from an LKML report of poison consumed through DAX.
            ("mce: Uncorrected hardware memory error in user-access at af34214200", Some(("mce", UNCORRECTED, Some("memory")))),
            ("Memory failure: 0x8a398a: recovery action for dirty LRU page: Recovered", Some(("memory_failure", UNCORRECTED, Some("memory")))),
            // 2.6-era print_mce(): UC+PCC, bus/interconnect code 0x0f0f.
            ("HARDWARE ERROR", Some(("mce", INFO, None))),
            ("CPU 0: Machine Check Exception: 4 Bank 4: b200000000070f0f", Some(("mce", FATAL, Some("bus")))),
            // Real, AMD decoder (mce/amd.c) output from a blog post and an mce-inject thread.
            ("[Hardware Error]: Corrected error, no action required.", Some(("mce", CORRECTED, None))),
            ("[Hardware Error]: CPU:0 (17:1:1) MC15_STATUS[Over|CE|MiscV|AddrV|-|-|SyndV|CECC|-|-|-]: 0xdc2040000000011b", Some(("mce", CORRECTED, None))),
            ("[Hardware Error]: Unified Memory Controller Ext. Error Code: 0, DRAM ECC error.", Some(("mce", INFO, Some("memory")))),
            ("[Hardware Error]: Deferred error, no action required.", Some(("mce", UNCORRECTED, None))),
            ("[Hardware Error]: CPU:0 (19:50:0) MC14_STATUS[-|UE|-|AddrV|PCC|-|-|-|-|-]: 0xb4000000000000", Some(("mce", FATAL, None))),
            // Not ours: the panic line, and mce boot chatter.
            ("Kernel panic - not syncing: Fatal machine check", None),
            ("mce: CPU0: Thermal monitoring enabled (TM1)", None),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn edac_lines() {
        let mem = Some("memory");
        check(&[
            // Built from edac_mc.c's CE/UE formats, with sb_edac's location text.
            ("EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x5ac0f offset:0x0 grain:32 syndrome:0x0 - area:DRAM err_code:0001:0090 socket:0 ha:0 channel_mask:2 rank:0)", Some(("edac", CORRECTED, mem))),
            ("EDAC MC1: 1 UE memory read error on CPU_SrcID#1_Ha#0_Chan#0_DIMM#0", Some(("edac", UNCORRECTED, mem))),
            ("EDAC MC0: UE - no information available: INTERNAL ERROR", Some(("edac", UNCORRECTED, mem))),
            // Real, AMD EDAC line from a linux-edac post.
            ("EDAC MC0: 1 CE Cannot decode normalized address on mc#0csrow#3channel#0 (csrow:3 channel:0 page:0x0 offset:0x0 grain:64 syndrome:0x1)", Some(("edac", CORRECTED, mem))),
            // Real, from the kernel's APEI EINJ documentation.
            ("EDAC sbridge MC3: HANDLING MCE MEMORY ERROR", Some(("edac", INFO, mem))),
            ("EDAC sbridge MC3: CPU 0: Machine Check Event: 0 Bank 7: 8c00004000010090", Some(("edac", CORRECTED, mem))),
            ("EDAC skx MC2: HANDLING MCE MEMORY ERROR", Some(("edac", INFO, mem))),
            ("EDAC MC: Ver: 3.0.0", None),
            ("EDAC MC0: Giving out device to module skx_edac controller Skylake Socket#0 IMC#0: DEV 0000:3a:0a.0 (INTERRUPT)", None),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn ghes_lines() {
        let ghes = |sev, comp| Some(("ghes", sev, comp));
        check(&[
            // Real, from an LKML ghes_edac/cper thread (x86 server, corrected memory error).
            ("{3}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 2", ghes(INFO, None)),
            ("{3}[Hardware Error]: It has been corrected by h/w and requires no further action", ghes(CORRECTED, None)),
            ("{3}[Hardware Error]: event severity: corrected", ghes(CORRECTED, None)),
            ("{3}[Hardware Error]:  Error 0, type: corrected", ghes(CORRECTED, None)),
            ("{3}[Hardware Error]:   section_type: memory error", ghes(INFO, Some("memory"))),
            ("{3}[Hardware Error]:   physical_address: 0x000000093724c020", ghes(INFO, Some("memory"))),
            ("{3}[Hardware Error]:   node: 0 card: 0 module: 0 rank: 0 bank: 257 row: 75492", ghes(INFO, Some("memory"))),
            ("{3}[Hardware Error]:   error_type: 4, single-symbol chipkill ECC", ghes(INFO, Some("memory"))),
            ("{3}[Hardware Error]:   DIMM location: not present. DMI handle: 0x0000", ghes(INFO, Some("memory"))),
            // Real, arm64 error injected through QEMU (LKML).
            ("{1}[Hardware Error]: event severity: recoverable", ghes(UNCORRECTED, None)),
            ("{1}[Hardware Error]:   section_type: ARM processor error", ghes(INFO, Some("cpu"))),
            ("{2}[Hardware Error]: event severity: fatal", ghes(FATAL, None)),
            ("[Hardware Error]:   section_type: PCIe error", ghes(INFO, Some("pcie"))),
        ]);
        let r = classify_hardware_line("{3}[Hardware Error]:  Error 0, type: corrected").unwrap();
        assert_eq!(r.description, "Error 0, type: corrected");
    }

    #[test]
    #[rustfmt::skip]
    fn pcie_arm64_and_garbage_lines() {
        let aer = |sev| Some(("aer", sev, Some("pcie")));
        check(&[
            // Real, from linux-pci threads and a blog post.
            ("pcieport 0000:00:01.0: AER: Uncorrected (Fatal) error received: id=0008", aer(FATAL)),
            ("pcieport 0000:00:01.0: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, id=0008(Requester ID)", aer(FATAL)),
            ("pcieport 0000:00:1c.0: AER: Multiple Uncorrectable (Non-Fatal) error message received from 0000:73:00.1", aer(UNCORRECTED)),
            ("pcieport 0000:00:01.0: AER: Corrected error received: 0000:01:00.0", aer(CORRECTED)),
            ("pcieport 0000:00:1c.0: AER: enabled with IRQ 122", None),
            // Real, from an arm64 board bring-up report.
            ("SError Interrupt on CPU4, code 0x00000000be000411 -- SError", Some(("serror", FATAL, None))),
            ("", None), ("   ", None), ("{", None), ("{}[Hardware Error]", None), ("{1}[Hardware Error]", None),
            ("EDAC ", None), ("EDAC MC0:", None), ("AER: ", None), ("MCE 0x: x", None), ("mce: ", None),
            ("random text", None),
            ("CPU 1: Machine Check Exception: 0 Bank zz: nothex", Some(("mce", INFO, None))),
        ]);
    }

    // `ipmitool sel list` rows and the `sel get` block from seed 003 (an arm64 server
    // whose BMC logged uncorrectable memory errors), as its author captured them.
    const SEED: &str = " ...

 124 | 03/22/2024 | 03:02:32 | Critical Interrupt #0xec | Transition to OK | Asserted
 125 | 03/22/2024 | 03:02:33 | Critical Interrupt #0xec | Transition to OK | Asserted
 126 | 03/22/2024 | 03:02:33 | Critical Interrupt #0xec | Transition to OK | Asserted
 127 | 03/22/2024 | 03:02:33 | Critical Interrupt #0xec | Transition to OK | Asserted
 128 | 03/23/2024 | 02:32:10 | Memory #0xeb | Transition to Non-recoverable | Asserted
 ====================(1)=====================
 129 | 03/23/2024 | 02:32:15 | Chassis #0xc4 | Transition to Critical from less severe | Asserted
 12a | 03/23/2024 | 08:39:53 | Memory #0xeb | Transition to Non-recoverable | Deasserted
 12b | 03/23/2024 | 08:40:21 | System ACPI Power State #0x7f | S4/S5: soft-off | Asserted
 12c | 03/23/2024 | 08:40:21 | Chassis #0xc4 | Transition to Critical from less severe | Deasserted
 12d | 03/23/2024 | 08:50:47 | System Boot Initiated #0xe8 | Initiated by power up | Asserted
 12e | 03/23/2024 | 08:51:45 | System ACPI Power State #0x7f | S0/G0: working | Asserted
 12f | 03/23/2024 | 08:52:07 | System Firmwares #0xd0 | Pointing device test | Asserted
 130 | 03/23/2024 | 08:53:09 | System Boot Initiated #0xc5 | State Asserted | Asserted
 131 | 03/25/2024 | 08:19:35 | System ACPI Power State #0x7f | S4/S5: soft-off | Asserted

 ...

 144 | 03/27/2024 | 03:46:28 | System Firmwares #0xd0 | Pointing device test | Asserted
 145 | 03/27/2024 | 03:47:00 | System Boot Initiated #0xc5 | State Asserted | Asserted
 ====================(2)=====================
 146 | 03/27/2024 | 12:48:44 | Memory #0xeb | Transition to Non-recoverable | Asserted     <----
 147 | 03/27/2024 | 12:48:46 | Chassis #0xc4 | Transition to Critical from less severe | Asserted
 148 | 03/28/2024 | 08:41:27 | System Boot Initiated #0xc6 | Initiated by warm reset | Asserted
 149 | 03/28/2024 | 08:41:32 | Power Supply #0x48 | Presence detected | Asserted
 14a | 03/28/2024 | 08:41:32 | Power Supply #0x49 | Presence detected | Asserted
 
";

    const SEED_GET: &str = "SEL Record ID          : 0146
 Record Type           : 02
 Timestamp             : 03/27/2024 12:48:44
 Generator ID          : 0020
 EvM Revision          : 04
 Sensor Type           : Memory
 Sensor Number         : eb
 Event Type            : Generic Discrete
 Event Direction       : Assertion Event
 Event Data (RAW)      : 063000
 Description           : Transition to Non-recoverable

Sensor ID              : RAS_MEMORY (0xeb)
Entity ID              : 0.0 (Unspecified)
Sensor Type            : Memory (0x0c)
";

    #[test]
    fn seed_sel_list_and_get_merge() {
        let parsed = parse_sel(format!("{SEED}{SEED_GET}").as_bytes());
        assert_eq!(parsed.records.len(), 21);
        // The author's `...` elisions and `===(n)===` markers.
        let rejected: Vec<u64> = parsed.rejected.iter().map(|r| r.0).collect();
        assert_eq!(rejected, [1, 8, 19, 23]);
        let r128 = &parsed.records[4];
        assert_eq!((&*r128.id, r128.line, r128.sensor_number), ("128", 7, Some(0xeb)));
        assert_eq!((r128.date, r128.time), (Some((2024, 3, 23)), Some((2, 32, 10))));
        assert_eq!(r128.sensor_type.as_deref(), Some("Memory"));
        let r146 = parsed.records.iter().find(|r| r.id == "146").unwrap();
        assert_eq!((r146.direction.as_deref(), &r146.extra[..]), (Some("Asserted"), &["<----".to_string()][..]));
        assert_eq!(r146.sensor_id.as_deref(), Some("RAS_MEMORY"));
        assert_eq!(r146.event_type.as_deref(), Some("Generic Discrete"));
        assert_eq!(r146.event_data.as_deref(), Some("063000"));
        assert_eq!(r146.record_type.as_deref(), Some("02"));
        let hw = r146.to_hardware_record();
        assert_eq!(
            (&*hw.source, &*hw.severity, hw.component.as_deref()),
            ("ipmi_sel", NON_RECOVERABLE, Some("memory"))
        );
        let desc = "SEL 146 2024-03-27 12:48:44 Memory #0xeb [RAS_MEMORY]: Transition to Non-recoverable (Asserted)";
        assert_eq!(hw.description, desc);
    }

    #[test]
    fn seed_sel_error_classification() {
        let parsed = parse_sel(SEED.as_bytes());
        let errors: Vec<&str> = parsed.records.iter().filter(|r| r.is_error()).map(|r| &*r.id).collect();
        // Memory non-recoverable (128, 12a, 146) and the chassis going critical.
        assert_eq!(errors, ["128", "129", "12a", "12c", "146", "147"]);
        for r in parsed.records.iter().filter(|r| r.event == "Transition to OK") {
            assert!(!r.is_error());
            assert_eq!(r.to_hardware_record().severity, INFO);
        }
        let chassis = parsed.records.iter().find(|r| r.id == "129").unwrap().to_hardware_record();
        assert_eq!((&*chassis.severity, chassis.component.as_deref()), (UNCORRECTED, Some("chassis")));
    }

    #[test]
    fn sel_get_only_and_elist_rows() {
        let parsed = parse_sel(SEED_GET.as_bytes());
        assert!(parsed.rejected.is_empty());
        let r = &parsed.records[0];
        assert_eq!((&*r.id, &*r.sensor, r.line), ("146", "Memory #0xeb", 1));
        assert_eq!(r.event, "Transition to Non-recoverable");
        // `sel elist` names sensors; events before the BMC clock was set are Pre-Init.
        let elist = "   1 | 04/04/2019 | 09:17:48 | Memory CPU0_DIMM_A1 | Correctable ECC | Asserted
   2 | Pre-Init  |0000000000| System Event #0x01 | Timestamp Clock Sync | Asserted
  3c | 09/20/2014 | 12:00:00 | Temperature CPU1 Temp | Upper Critical going high | Asserted | Reading 92 > Threshold 90 degrees C
  3d | 09/20/2014 | 12:00:05 | Processor CPU1 Status | IERR | Asserted
";
        let p = parse_sel(elist.as_bytes());
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        let [ecc, pre, temp, ierr] = &p.records[..] else { panic!("{:?}", p.records) };
        assert_eq!(ecc.sensor_type.as_deref(), Some("Memory"));
        assert!(ecc.is_error());
        assert_eq!(ecc.to_hardware_record().severity, CORRECTED);
        assert_eq!((pre.date, pre.time, pre.sensor_number), (None, None, Some(1)));
        assert!(!pre.is_error());
        assert_eq!(temp.extra, ["Reading 92 > Threshold 90 degrees C"]);
        assert_eq!(temp.to_hardware_record().component.as_deref(), Some("thermal"));
        assert!(ierr.is_error());
        assert_eq!(ierr.to_hardware_record().component.as_deref(), Some("cpu"));
    }

    #[test]
    fn sel_rows_quoted_in_a_reply_are_read() {
        // The seed's rows as an e-mail reply quotes them, twice deep for some.
        let quoted: String =
            SEED.lines().enumerate().map(|(i, l)| format!("{} {l}\n", if i % 2 == 0 { ">" } else { ">>" })).collect();
        let doc = format!("Hi,\n\nthe BMC says:\n\n{quoted}\nThanks\n");
        let (plain, mail) = (parse_sel(SEED.as_bytes()), parse_sel(doc.as_bytes()));
        let ids = |p: &SelParse| p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&mail), ids(&plain));
        // Left over: what the seed's own text leaves, and the letter's three lines.
        assert_eq!(mail.rejected.len(), plain.rejected.len() + 3, "{:?}", mail.rejected);
    }

    #[test]
    fn sel_garbage_never_panics() {
        let inputs: [&[u8]; 7] = [
            b"",
            b"\xff\xfe|\xc3\x28|\x80\n\n",
            b"| | | | |\nzz | 01/01/2020 | 00:00:00 | Memory | x\n",
            b" 1 | 13/45/2020 | 00:00:00 | Memory | x\n 2 | 01/01/2020 | 25:00:00 | Memory | x\n",
            b"Sensor Number : zz\nSEL Record ID : zz\nSEL Record ID : 1\nTimestamp : garbage\n",
            b"a|b\r\n\x00\x01\x02\r\n",
            b"SEL Record ID : 5\n 5 | 01/01/2020 | 00:00:00 |  | x\n",
        ];
        let rejected: Vec<usize> = inputs.iter().map(|i| parse_sel(i).rejected.len()).collect();
        assert_eq!(rejected, [0, 1, 2, 2, 2, 2, 1]);
        // Pseudo-random bytes from a fixed LCG: nothing may panic.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"0123456789abcdef|:/ \n#xMemory\xff";
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                alphabet[(x >> 33) as usize % alphabet.len()]
            })
            .collect();
        let _ = parse_sel(&noise);
        for line in noise.split(|&b| b == b'\n') {
            let _ = classify_hardware_line(&String::from_utf8_lossy(line));
        }
    }
}
