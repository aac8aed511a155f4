//! The record-buffer printk format (3.5–5.9), on a synthetic ELF core: no dump of such a
//! kernel is at hand, so the layout VMCOREINFO describes is built here, wrap included.

use lockscope_dump::Dump;
use lockscope_kernel::Kernel;
use lockscope_kernel::printk::Caller;

const IMAGE: u64 = 0xffff_ffff_8000_0000;
/// Physical start of the one RAM segment; kernel-image addresses map to it by formula.
const PHYS: u64 = 0x100_0000;

fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [name.len() as u32 + 1, desc.len() as u32, kind] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(name);
    v.push(0);
    v.resize(v.len().next_multiple_of(4), 0);
    v.extend_from_slice(desc);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// An x86_64 ELF core: one PT_NOTE (VMCOREINFO) and one PT_LOAD of `mem` at `PHYS`.
fn elf_core(vmcoreinfo: &str, mem: &[u8]) -> Vec<u8> {
    let notes = note(b"VMCOREINFO", 0, vmcoreinfo.as_bytes());
    let mut f = vec![0u8; 64 + 2 * 56];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    f[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let notes_at = f.len() as u64;
    let mem_at = notes_at + notes.len() as u64;
    for (i, (typ, off, paddr, size)) in
        [(4u32, notes_at, 0, notes.len() as u64), (1, mem_at, PHYS, mem.len() as u64)].into_iter().enumerate()
    {
        let p = 64 + 56 * i;
        f[p..p + 4].copy_from_slice(&typ.to_le_bytes());
        f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        f[p + 16..p + 24].copy_from_slice(&(IMAGE + paddr).to_le_bytes());
        f[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
        f[p + 32..p + 40].copy_from_slice(&size.to_le_bytes());
        f[p + 40..p + 48].copy_from_slice(&size.to_le_bytes());
    }
    f.extend_from_slice(&notes);
    f.extend_from_slice(mem);
    f
}

/// `struct printk_log` with a caller id (5.1–5.9, CONFIG_PRINTK_CALLER): 24 bytes, records
/// aligned to 8, text right after the header.
fn record(ts: u64, level: u8, facility: u8, caller: u32, text: &str) -> Vec<u8> {
    let len = (24 + text.len()).next_multiple_of(8);
    let mut r = vec![0u8; len];
    r[0..8].copy_from_slice(&ts.to_le_bytes());
    r[8..10].copy_from_slice(&(len as u16).to_le_bytes());
    r[10..12].copy_from_slice(&(text.len() as u16).to_le_bytes());
    r[14] = facility;
    r[15] = level << 5;
    r[16..20].copy_from_slice(&caller.to_le_bytes());
    r[24..24 + text.len()].copy_from_slice(text.as_bytes());
    r
}

/// VMCOREINFO of a 5.x kernel with the record buffer: its variables at fixed places of the
/// image, `struct printk_log` with `text_len` at `text_len` and a caller id if asked.
fn layout(text_len: u64, caller: bool) -> String {
    let va = |off: u64| IMAGE + PHYS + off;
    let caller = if caller { "OFFSET(printk_log.caller_id)=16\n" } else { "" };
    format!(
        "OSRELEASE=5.4.0-synthetic\nPAGESIZE=4096\nSYMBOL(_stext)={:x}\nSYMBOL(init_top_pgt)={:x}\nNUMBER(phys_base)=0\n\
         SYMBOL(log_buf)={:x}\nSYMBOL(log_buf_len)={:x}\nSYMBOL(log_first_idx)={:x}\nSYMBOL(log_next_idx)={:x}\n\
         SIZE(printk_log)=24\nOFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\nOFFSET(printk_log.text_len)={text_len}\n\
         {caller}",
        va(0),
        va(0x3000),
        va(0x1000),
        va(0x1008),
        va(0x1010),
        va(0x1014)
    )
}

#[test]
fn record_buffer_with_a_wrap() {
    let va = |off: u64| IMAGE + PHYS + off;
    let buf_off = 0x2000u64;
    let buf_len = 1024u64;
    let mut mem = vec![0u8; 0x4000];
    // The buffer: the oldest kept record sits near the end, then the wrap marker (a zero
    // header), then newer records from the start; an overwritten one before `first`.
    let old = record(1_000, 6, 0, 1, "overwritten, before log_first_idx");
    let a = record(5_768_123_000, 3, 0, 135, "BUG: scheduling while atomic: zone_drain/135/0x00000002");
    let b = record(16_151_000_000, 4, 0, 0x8000_0001, "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:");
    let c = record(16_151_100_000, 6, 1, 0x8000_0003, "multi\nline");
    let first = buf_len - a.len() as u64 - 32;
    let put = |mem: &mut Vec<u8>, at: u64, r: &[u8]| {
        mem[(buf_off + at) as usize..(buf_off + at) as usize + r.len()].copy_from_slice(r)
    };
    put(&mut mem, first - old.len() as u64, &old);
    put(&mut mem, first, &a);
    // bytes after `a` stay zero: the wrap marker.
    put(&mut mem, 0, &b);
    put(&mut mem, b.len() as u64, &c);
    let next = (b.len() + c.len()) as u64;
    // Variables: log_buf (pointer), log_buf_len, log_first_idx, log_next_idx.
    mem[0x1000..0x1008].copy_from_slice(&va(buf_off).to_le_bytes());
    mem[0x1008..0x100c].copy_from_slice(&(buf_len as u32).to_le_bytes());
    mem[0x1010..0x1014].copy_from_slice(&(first as u32).to_le_bytes());
    mem[0x1014..0x1018].copy_from_slice(&(next as u32).to_le_bytes());
    let vmcoreinfo = layout(10, true);
    let k = Kernel::new(Dump::from_bytes(elf_core(&vmcoreinfo, &mem)).unwrap()).unwrap();
    let log = k.log().unwrap();
    assert_eq!(log.format, "record buffer (3.5-5.9)");
    let texts: Vec<String> = log.records.iter().map(|r| String::from_utf8_lossy(&r.text).into_owned()).collect();
    assert_eq!(
        texts,
        [
            "BUG: scheduling while atomic: zone_drain/135/0x00000002",
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "multi\nline"
        ]
    );
    assert_eq!(log.records[0].level, 3);
    assert_eq!(log.records[0].caller, Some(Caller::Task(135)));
    assert_eq!(log.records[1].caller, Some(Caller::Cpu(1)));
    assert_eq!(log.records[2].facility, 1);
    let rendered = String::from_utf8(log.render(true, true)).unwrap();
    assert!(rendered.starts_with("<3>[    5.768123][  T135] BUG: scheduling while atomic"), "{rendered}");
    assert!(rendered.contains("[   16.151100][    C3] multi\n<6>[   16.151100][    C3] line\n"), "{rendered}");

    // A corrupt length never loops or reads past the buffer: the record is counted as
    // damaged, with its offset, and the ones after it are lost.
    let damaged = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = mem.clone();
        edit(&mut bad);
        Kernel::new(Dump::from_bytes(elf_core(&vmcoreinfo, &bad)).unwrap()).unwrap().log().unwrap()
    };
    let at = (buf_off + first) as usize;
    let log = damaged(&|m| m[at + 8..at + 10].copy_from_slice(&0xfff0u16.to_le_bytes()));
    assert!(log.records.is_empty() && log.damaged == 1, "{log:?}");
    assert!(log.damage_note().unwrap().contains(&format!("log_buf offset {first:#x}: record length 65520")));
    // A text longer than its record.
    let log = damaged(&|m| m[at + 10..at + 12].copy_from_slice(&900u16.to_le_bytes()));
    assert!(log.records.is_empty() && log.damaged == 1 && log.damage[0].contains("overflow"), "{log:?}");
    // NUL bytes inside the text (a page of zeros where text should be).
    let log = damaged(&|m| m[at + 24..at + 30].fill(0));
    assert!(log.damaged == 1 && log.damage[0].contains("NUL"), "{log:?}");
}

#[test]
fn record_buffer_numbers_are_checked() {
    let mem = vec![0u8; 0x4000];
    let va = |off: u64| IMAGE + PHYS + off;
    let mut m = mem.clone();
    m[0x1000..0x1008].copy_from_slice(&va(0x2000).to_le_bytes());
    m[0x1008..0x100c].copy_from_slice(&1024u32.to_le_bytes());
    m[0x1010..0x1014].copy_from_slice(&5000u32.to_le_bytes());
    let vmcoreinfo = layout(20, false);
    let k = Kernel::new(Dump::from_bytes(elf_core(&vmcoreinfo, &m)).unwrap()).unwrap();
    // text_len at 20 leaves no room for dict_len, facility and level inside 24 bytes.
    let e = k.log().unwrap_err().to_string();
    assert!(e.contains("OFFSET(printk_log.text_len) = 20"), "{e}");
    let fixed = layout(10, false);
    let k = Kernel::new(Dump::from_bytes(elf_core(&fixed, &m)).unwrap()).unwrap();
    let e = k.log().unwrap_err().to_string();
    assert!(e.contains("log_first_idx = 5000") && e.contains("lies outside log_buf"), "{e}");
}
