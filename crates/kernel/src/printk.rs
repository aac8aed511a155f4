//! The kernel log, read from the dump: the lockless printk ring buffer (5.10+) and the
//! older variable-length record buffer (3.5–5.9), laid out from VMCOREINFO's own
//! SIZE/OFFSET entries — the same facts makedumpfile and crash use, so no debuginfo and no
//! BTF are needed. The result prints as dmesg does and feeds the log analyzer unchanged.

use crate::validate::{self, InfoStruct};
use crate::{Kernel, KernelError};
use lockscope_dump::VmcoreInfo;

/// Records read at most (a ring holds far fewer; bounds a corrupt count).
const MAX_RECORDS: u64 = 1 << 22;

/// One printk record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub ts_nsec: u64,
    /// Log level 0–7.
    pub level: u8,
    pub facility: u8,
    /// `T<pid>` or `C<cpu>` (printk caller id), when the kernel records it.
    pub caller: Option<Caller>,
    pub text: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Task(u32),
    Cpu(u32),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Task(p) => write!(f, "T{p}"),
            Caller::Cpu(c) => write!(f, "C{c}"),
        }
    }
}

/// The log and what could not be read of it.
#[derive(Clone, Debug, Default)]
pub struct KernelLog {
    pub records: Vec<Record>,
    /// Records skipped: not yet committed, overwritten while read, or in pages the dump lacks.
    pub skipped: u64,
    /// Records that failed the buffer's own consistency checks (their block names another
    /// record, lengths that do not fit, NUL bytes in the text...): damaged memory, not shown.
    pub damaged: u64,
    /// What was wrong with the first few damaged records.
    pub damage: Vec<String>,
    /// Which buffer format it came from.
    pub format: &'static str,
}

/// Damaged records described at most (the count covers them all).
const DAMAGE_EXAMPLES: usize = 5;

impl KernelLog {
    /// The log as `dmesg` prints it (`[    5.768123] text`), optionally with caller ids and
    /// `<level>` prefixes; continuation lines of a multi-line record get the same prefix.
    pub fn render(&self, levels: bool, callers: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.records.iter().map(|r| r.text.len() + 24).sum());
        for r in &self.records {
            let mut prefix = String::new();
            if levels {
                prefix.push_str(&format!("<{}>", r.level));
            }
            prefix.push_str(&format!("[{:5}.{:06}]", r.ts_nsec / 1_000_000_000, (r.ts_nsec % 1_000_000_000) / 1000));
            if callers && let Some(c) = r.caller {
                prefix.push_str(&format!("[{:>6}]", c.to_string()));
            }
            prefix.push(' ');
            for line in r.text.split(|&b| b == b'\n') {
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        out
    }

    /// One line for the user when records were damaged or unreadable, else `None`.
    pub fn damage_note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.damaged > 0 {
            parts.push(format!(
                "{} record(s) of the printk buffer are damaged and not shown ({})",
                self.damaged,
                self.damage.join("; ")
            ));
        }
        if self.skipped > 0 {
            parts.push(format!(
                "{} record(s) could not be read (not committed, overwritten, or in pages missing from the dump)",
                self.skipped
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn note_damage(&mut self, what: String) {
        self.damaged += 1;
        if self.damage.len() < DAMAGE_EXAMPLES {
            self.damage.push(what);
        }
    }
}

impl Kernel {
    /// Reads the kernel log buffer.
    pub fn log(&self) -> Result<KernelLog, KernelError> {
        if self.vmcoreinfo().symbol("prb").is_some() {
            self.log_lockless()
        } else if self.vmcoreinfo().symbol("log_buf").is_some() {
            self.log_records()
        } else {
            Err(KernelError::MissingInfo("SYMBOL(prb) or SYMBOL(log_buf)".into()))
        }
    }

    fn rd_u64(&self, what: &str, a: u64) -> Result<u64, KernelError> {
        self.memory().read_u64(a).map_err(|err| KernelError::Memory { what: what.to_string(), err })
    }

    fn rd_u32(&self, what: &str, a: u64) -> Result<u32, KernelError> {
        self.memory().read_u32(a).map_err(|err| KernelError::Memory { what: what.to_string(), err })
    }

    /// 5.10+: descriptors, infos and a text data ring (kernel/printk/printk_ringbuffer.h).
    fn log_lockless(&self) -> Result<KernelLog, KernelError> {
        let layout = LocklessLayout::from_info(self.vmcoreinfo())?;
        let ring = self.ring_state()?;
        let mem = self.memory();
        let count = 1u64 << ring.count_bits;
        // Descriptor and info arrays are read whole: two reads instead of one per record.
        let desc_len = validate::array_bytes("printk descriptors", count, layout.desc_size as u64)?;
        let descs = mem
            .read_vec(ring.descs, desc_len)
            .map_err(|err| KernelError::Memory { what: "printk descriptors".into(), err })?;
        let info_len = validate::array_bytes("printk infos", count, layout.info_size as u64)?;
        let infos = mem
            .read_vec(ring.infos, info_len)
            .map_err(|err| KernelError::Memory { what: "printk infos".into(), err })?;
        let text = TextRing::read(self, ring.data, 1u64 << ring.size_bits);
        let mut log = KernelLog { format: "lockless ring buffer (5.10+)", ..Default::default() };
        let (tail, head) = (ring.tail_id & ID_MASK, ring.head_id & ID_MASK);
        let n = head.wrapping_sub(tail).wrapping_add(1) & ID_MASK;
        if n > count.min(MAX_RECORDS) {
            return Err(validate::bad("printk_ringbuffer head_id - tail_id", n, "is more records than the ring holds"));
        }
        let mut last_seq = None;
        for k in 0..n {
            let id = tail.wrapping_add(k) & ID_MASK;
            let slot = Slot { id, index: (id % count) as usize, count };
            match layout.record(&descs, &infos, &text, slot, last_seq) {
                Ok(r) => {
                    last_seq = Some(r.seq);
                    log.records.push(r);
                }
                Err(Skip::NotReadable) => log.skipped += 1,
                Err(Skip::Reusable) => {}
                Err(Skip::Damaged(why)) => log.note_damage(format!("record id {id}: {why}")),
            }
        }
        if log.records.is_empty()
            && let TextRing::Missing(err) = text
        {
            return Err(KernelError::Memory { what: "printk text ring".into(), err });
        }
        Ok(log)
    }

    /// The ring's own header (`struct printk_ringbuffer` at `*prb`), its sizes checked
    /// against each other (`log_buf_len` would need kallsyms decoded: `log` stays lazy).
    fn ring_state(&self) -> Result<RingState, KernelError> {
        let info = self.vmcoreinfo();
        let prb = self.rd_u64("prb", self.symbol("prb")?)?;
        let desc_ring = prb.wrapping_add(validate::offset(info, "printk_ringbuffer.desc_ring")?);
        let text_ring = prb.wrapping_add(validate::offset(info, "printk_ringbuffer.text_data_ring")?);
        let at = |base: u64, key: &'static str| validate::offset(info, key).map(|o| base.wrapping_add(o));
        let count_bits = self.rd_u32("prb_desc_ring.count_bits", at(desc_ring, "prb_desc_ring.count_bits")?)?;
        let size_bits = self.rd_u32("prb_data_ring.size_bits", at(text_ring, "prb_data_ring.size_bits")?)?;
        validate::in_range("prb_desc_ring.count_bits", count_bits.into(), 1, 24, "is not a plausible ring size")?;
        validate::in_range("prb_data_ring.size_bits", size_bits.into(), 5, 30, "is not a plausible ring size")?;
        // The kernel sizes the descriptor ring from the text ring (PRB_AVGBITS = 5).
        if count_bits + 5 != size_bits {
            return Err(validate::bad(
                format!("prb_desc_ring.count_bits (with prb_data_ring.size_bits = {size_bits})"),
                count_bits.into(),
                "does not match the text ring: the kernel makes it size_bits - 5",
            ));
        }
        Ok(RingState {
            count_bits,
            size_bits,
            descs: self.rd_u64("prb_desc_ring.descs", at(desc_ring, "prb_desc_ring.descs")?)?,
            infos: self.rd_u64("prb_desc_ring.infos", at(desc_ring, "prb_desc_ring.infos")?)?,
            head_id: self.rd_u64("prb_desc_ring.head_id", at(desc_ring, "prb_desc_ring.head_id")?)?,
            tail_id: self.rd_u64("prb_desc_ring.tail_id", at(desc_ring, "prb_desc_ring.tail_id")?)?,
            data: self.rd_u64("prb_data_ring.data", at(text_ring, "prb_data_ring.data")?)?,
        })
    }

    /// 3.5–5.9: `struct printk_log` records in `log_buf`, from `log_first_idx` to `log_next_idx`.
    fn log_records(&self) -> Result<KernelLog, KernelError> {
        let layout = RecordLayout::from_info(self.vmcoreinfo())?;
        let buf = self.rd_u64("log_buf", self.symbol("log_buf")?)?;
        let buf_len = u64::from(self.rd_u32("log_buf_len", self.symbol("log_buf_len")?)?);
        validate::in_range("log_buf_len", buf_len, 1, 1 << 30, "is not a plausible log buffer size")?;
        let first = u64::from(self.rd_u32("log_first_idx", self.symbol("log_first_idx")?)?);
        let next = u64::from(self.rd_u32("log_next_idx", self.symbol("log_next_idx")?)?);
        validate::in_range("log_first_idx", first, 0, buf_len - 1, "lies outside log_buf")?;
        validate::in_range("log_next_idx", next, 0, buf_len - 1, "lies outside log_buf")?;
        let bytes = self
            .memory()
            .read_vec(buf, buf_len as usize)
            .map_err(|err| KernelError::Memory { what: "log_buf".into(), err })?;
        let mut log = KernelLog { format: "record buffer (3.5-5.9)", ..Default::default() };
        let mut idx = first as usize;
        let mut wrapped = false;
        while idx != next as usize && (log.records.len() as u64) < MAX_RECORDS {
            match layout.record(&bytes, idx, log.records.len() as u64) {
                RecordAt::Record(r, len) => {
                    log.records.push(r);
                    idx += len;
                }
                // A zero length (or no room for a header) marks the wrap to the buffer's start.
                RecordAt::Wrap if !wrapped => {
                    wrapped = true;
                    idx = 0;
                }
                RecordAt::Wrap => {
                    log.note_damage(format!("log_buf offset {idx:#x}: a second wrap before log_next_idx"));
                    break;
                }
                RecordAt::Damaged(why) => {
                    // Lengths chain the records: after a bad one the rest cannot be found.
                    log.note_damage(format!("log_buf offset {idx:#x}: {why}; the records after it are lost"));
                    break;
                }
            }
        }
        Ok(log)
    }
}

const ID_MASK: u64 = !(3u64 << 62);

/// The lockless ring's header fields.
struct RingState {
    count_bits: u32,
    size_bits: u32,
    descs: u64,
    infos: u64,
    head_id: u64,
    tail_id: u64,
    data: u64,
}

/// A descriptor's place in the ring.
#[derive(Clone, Copy)]
struct Slot {
    id: u64,
    index: usize,
    count: u64,
}

/// Why a record is not shown.
enum Skip {
    /// Not committed, reused meanwhile, or its text is in pages the dump lacks: normal.
    NotReadable,
    /// Already given back to the ring (its first placeholder descriptor): nothing lost.
    Reusable,
    /// Inconsistent with the ring's own rules: damaged memory.
    Damaged(String),
}

/// The text data ring: read whole when every page is there, else block by block.
enum TextRing<'k> {
    Whole(Vec<u8>),
    /// Some page is missing: each block is read on its own.
    Paged {
        kernel: &'k Kernel,
        base: u64,
        size: u64,
    },
    /// Not even the ring's address reads.
    Missing(crate::MemError),
}

impl<'k> TextRing<'k> {
    fn read(kernel: &'k Kernel, base: u64, size: u64) -> TextRing<'k> {
        match kernel.memory().read_vec(base, size as usize) {
            Ok(v) => TextRing::Whole(v),
            Err(e) if e.vaddr == base => TextRing::Missing(e),
            Err(_) => TextRing::Paged { kernel, base, size },
        }
    }

    /// `len` bytes at `start` in the ring.
    fn bytes(&self, start: u64, len: u64) -> Option<std::borrow::Cow<'_, [u8]>> {
        match self {
            TextRing::Whole(v) => {
                v.get(start as usize..start.checked_add(len)? as usize).map(std::borrow::Cow::Borrowed)
            }
            TextRing::Paged { kernel, base, .. } => {
                kernel.memory().read_vec(base.checked_add(start)?, len as usize).ok().map(std::borrow::Cow::Owned)
            }
            TextRing::Missing(_) => None,
        }
    }
}

/// Field offsets of `struct prb_desc` and `struct printk_info`, checked against their sizes.
struct LocklessLayout {
    desc_size: usize,
    state_var: usize,
    begin: usize,
    next: usize,
    info_size: usize,
    seq: usize,
    ts: usize,
    text_len: usize,
    caller: Option<usize>,
}

impl LocklessLayout {
    fn from_info(info: &VmcoreInfo) -> Result<LocklessLayout, KernelError> {
        let desc = InfoStruct::new(info, "prb_desc")?;
        let pinfo = InfoStruct::new(info, "printk_info")?;
        let lpos = desc.field("text_blk_lpos", 16)?;
        let in_desc = |key: &'static str| -> Result<usize, KernelError> {
            let off = lpos as u64 + validate::offset(info, key)?;
            validate::in_range(&format!("OFFSET({key})"), off + 8, 8, desc.size() as u64, "lies outside prb_desc")?;
            Ok(off as usize)
        };
        Ok(LocklessLayout {
            desc_size: desc.size(),
            state_var: desc.field("state_var", 8)?,
            begin: in_desc("prb_data_blk_lpos.begin")?,
            next: in_desc("prb_data_blk_lpos.next")?,
            info_size: pinfo.size(),
            seq: pinfo.field("seq", 8)?,
            ts: pinfo.field("ts_nsec", 8)?,
            // text_len (u16), then facility (u8), then flags:5 and level:3.
            text_len: pinfo.field("text_len", 4)?,
            caller: pinfo.optional_field("caller_id", 4)?,
        })
    }

    /// The record of one descriptor, checked against the ring's invariants.
    fn record(
        &self,
        descs: &[u8],
        infos: &[u8],
        text: &TextRing,
        slot: Slot,
        last_seq: Option<u64>,
    ) -> Result<Record, Skip> {
        let d = descs.get(slot.index * self.desc_size..).ok_or(Skip::NotReadable)?;
        let info = infos.get(slot.index * self.info_size..).ok_or(Skip::NotReadable)?;
        let field = |b: &[u8], off: usize| validate::le_u64(b, off).ok_or(Skip::NotReadable);
        let sv = field(d, self.state_var)?;
        // committed (1) or finalized (2), and still this id (not reused meanwhile). A reusable
        // (3) tail is the kernel's own placeholder (the ring's first descriptor): not a loss.
        match (sv & ID_MASK == slot.id, sv >> 62) {
            (true, 1 | 2) => {}
            (true, 3) => return Err(Skip::Reusable),
            _ => return Err(Skip::NotReadable),
        }
        let seq = field(info, self.seq)?;
        if seq % slot.count != slot.index as u64 {
            return Err(Skip::Damaged(format!("sequence number {seq} does not belong in descriptor {}", slot.index)));
        }
        if last_seq.is_some_and(|l| seq <= l) {
            return Err(Skip::Damaged(format!("sequence number {seq} goes backwards")));
        }
        let text_len = u64::from(validate::le_u16(info, self.text_len).ok_or(Skip::NotReadable)?);
        let body = block_text(text, field(d, self.begin)?, field(d, self.next)?, slot.id, text_len)?;
        if body.contains(&0) {
            return Err(Skip::Damaged("NUL bytes in its text".into()));
        }
        let c = |o| validate::le_u32(info, o);
        Ok(Record {
            seq,
            ts_nsec: field(info, self.ts)?,
            level: info.get(self.text_len + 3).map_or(0, |b| b >> 5),
            facility: info.get(self.text_len + 2).copied().unwrap_or(0),
            caller: self.caller.and_then(c).map(caller_of),
            text: body,
        })
    }
}

/// `printk_info.caller_id`: a CPU when the top bit is set, else a task.
fn caller_of(c: u32) -> Caller {
    if c & 0x8000_0000 != 0 { Caller::Cpu(c & 0x7fff_ffff) } else { Caller::Task(c) }
}

/// Field offsets of `struct printk_log`, checked against its size.
struct RecordLayout {
    hdr: usize,
    ts: usize,
    len: usize,
    text_len: usize,
    caller: Option<usize>,
}

enum RecordAt {
    /// A record and its length in the buffer.
    Record(Record, usize),
    Wrap,
    Damaged(String),
}

impl RecordLayout {
    fn from_info(info: &VmcoreInfo) -> Result<RecordLayout, KernelError> {
        let s = InfoStruct::new(info, "printk_log")?;
        Ok(RecordLayout {
            hdr: s.size(),
            ts: s.field("ts_nsec", 8)?,
            len: s.field("len", 2)?,
            // text_len (u16), dict_len (u16), facility (u8), flags:5 level:3.
            text_len: s.field("text_len", 6)?,
            caller: s.optional_field("caller_id", 4)?,
        })
    }

    fn record(&self, buf: &[u8], idx: usize, seq: u64) -> RecordAt {
        let Some(rec) = buf.get(idx..).filter(|r| r.len() >= self.hdr) else { return RecordAt::Wrap };
        let u16_at = |o| validate::le_u16(rec, o).map_or(0, usize::from);
        let len = u16_at(self.len);
        if len == 0 {
            return RecordAt::Wrap;
        }
        let (text_len, dict_len) = (u16_at(self.text_len), u16_at(self.text_len + 2));
        if len < self.hdr || len > rec.len() {
            return RecordAt::Damaged(format!("record length {len} does not fit the buffer"));
        }
        if self.hdr + text_len + dict_len > len {
            return RecordAt::Damaged(format!(
                "text ({text_len}) and dictionary ({dict_len}) overflow the record ({len})"
            ));
        }
        let text = &rec[self.hdr..self.hdr + text_len];
        if text.contains(&0) {
            return RecordAt::Damaged("NUL bytes in its text".into());
        }
        let r = Record {
            seq,
            ts_nsec: validate::le_u64(rec, self.ts).unwrap_or(0),
            level: rec.get(self.text_len + 5).map_or(0, |b| b >> 5),
            facility: rec.get(self.text_len + 4).copied().unwrap_or(0),
            caller: self.caller.and_then(|o| validate::le_u32(rec, o)).map(caller_of),
            text: text.to_vec(),
        };
        RecordAt::Record(r, len)
    }
}

/// The text of a data block `[begin, next)` of the ring: after the block's id (8 bytes), which
/// must be the descriptor's own id; a block that would wrap is stored whole at the ring's start.
fn block_text(ring: &TextRing, begin: u64, next: u64, id: u64, text_len: u64) -> Result<Vec<u8>, Skip> {
    // Data-less records (lpos with bit 0 set) have no text.
    if begin & 1 != 0 || next & 1 != 0 || begin == next {
        return Ok(Vec::new());
    }
    let Some((start, end)) = ring_span(ring_size(ring), begin, next) else {
        return Err(Skip::Damaged(format!("text block {begin:#x}..{next:#x} is not a block of the ring")));
    };
    let Some(block) = ring.bytes(start, end - start) else { return Err(Skip::NotReadable) };
    let owner = validate::le_u64(&block, 0).unwrap_or(0) & ID_MASK;
    if owner != id {
        return Err(Skip::Damaged(format!("its text block belongs to record id {owner}")));
    }
    if text_len > end - start - 8 {
        return Err(Skip::Damaged(format!("text length {text_len} exceeds its block ({})", end - start - 8)));
    }
    Ok(block[8..8 + text_len as usize].to_vec())
}

fn ring_size(ring: &TextRing) -> u64 {
    match ring {
        TextRing::Whole(v) => v.len() as u64,
        TextRing::Paged { size, .. } => *size,
        TextRing::Missing(_) => 0,
    }
}

/// Where a block `[begin, next)` lies in a ring of `size` bytes (a power of two): in one wrap,
/// or, when it would cross the end, whole at the start. Blocks are 8-byte aligned and hold at
/// least their id.
fn ring_span(size: u64, begin: u64, next: u64) -> Option<(u64, u64)> {
    if size == 0 || !begin.is_multiple_of(8) || !next.is_multiple_of(8) {
        return None;
    }
    let bits = size.trailing_zeros();
    let offset = |x: u64| x & (size - 1);
    let (start, end) = if begin < next && next - begin <= size && (next - 1) >> bits == begin >> bits {
        // In one wrap (a block may end exactly at the ring's end).
        (offset(begin), offset(begin) + (next - begin))
    } else if begin.wrapping_add(size) >> bits == next >> bits {
        (0, offset(next))
    } else {
        return None;
    };
    (end >= start + 8 && end - start <= size).then_some((start, end))
}
