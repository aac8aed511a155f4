//! The kernel log, read from the dump: the lockless printk ring buffer (5.10+) and the
//! older variable-length record buffer (3.5–5.9), laid out from VMCOREINFO's own
//! SIZE/OFFSET entries — the same facts makedumpfile and crash use, so no debuginfo and no
//! BTF are needed. The result prints as dmesg does and feeds the log analyzer unchanged.

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
    /// Which buffer format it came from.
    pub format: &'static str,
}

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
}

struct Layout<'a>(&'a VmcoreInfo);

impl Layout<'_> {
    fn off(&self, key: &'static str) -> Result<u64, KernelError> {
        self.0.offset(key).ok_or(KernelError::MissingInfo(key))
    }
    fn size(&self, key: &'static str) -> Result<u64, KernelError> {
        self.0.size(key).ok_or(KernelError::MissingInfo(key))
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
            Err(KernelError::MissingInfo("SYMBOL(prb) or SYMBOL(log_buf)"))
        }
    }

    fn rd_u64(&self, what: &str, a: u64) -> Result<u64, KernelError> {
        self.memory().read_u64(a).map_err(|err| KernelError::Memory { what: what.to_string(), err })
    }

    /// 5.10+: descriptors, infos and a text data ring (kernel/printk/printk_ringbuffer.h).
    fn log_lockless(&self) -> Result<KernelLog, KernelError> {
        let l = Layout(self.vmcoreinfo());
        let mem = self.memory();
        let prb = self.rd_u64("prb", self.symbol("prb")?)?;
        let desc_ring = prb + l.off("printk_ringbuffer.desc_ring")?;
        let text_ring = prb + l.off("printk_ringbuffer.text_data_ring")?;
        let count_bits = mem
            .read_u32(desc_ring + l.off("prb_desc_ring.count_bits")?)
            .map_err(|err| KernelError::Memory { what: "prb_desc_ring.count_bits".into(), err })?;
        if count_bits > 24 {
            return Err(KernelError::MissingInfo("a sane printk descriptor ring (prb_desc_ring.count_bits > 24)"));
        }
        let descs = self.rd_u64("prb_desc_ring.descs", desc_ring + l.off("prb_desc_ring.descs")?)?;
        let infos = self.rd_u64("prb_desc_ring.infos", desc_ring + l.off("prb_desc_ring.infos")?)?;
        let head_id = self.rd_u64("prb_desc_ring.head_id", desc_ring + l.off("prb_desc_ring.head_id")?)?;
        let tail_id = self.rd_u64("prb_desc_ring.tail_id", desc_ring + l.off("prb_desc_ring.tail_id")?)?;
        let size_bits = mem
            .read_u32(text_ring + l.off("prb_data_ring.size_bits")?)
            .map_err(|err| KernelError::Memory { what: "prb_data_ring.size_bits".into(), err })?;
        let data = self.rd_u64("prb_data_ring.data", text_ring + l.off("prb_data_ring.data")?)?;
        let desc_size = l.size("prb_desc")?;
        let info_size = l.size("printk_info")?;
        let sv_off = l.off("prb_desc.state_var")?;
        let lpos_off = l.off("prb_desc.text_blk_lpos")?;
        let begin_off = l.off("prb_data_blk_lpos.begin")?;
        let next_off = l.off("prb_data_blk_lpos.next")?;
        let seq_off = l.off("printk_info.seq")?;
        let ts_off = l.off("printk_info.ts_nsec")?;
        let len_off = l.off("printk_info.text_len")?;
        let caller_off = self.vmcoreinfo().offset("printk_info.caller_id");
        if size_bits > 30 {
            return Err(KernelError::MissingInfo("a sane printk text ring size (prb_data_ring.size_bits > 30)"));
        }
        let count = 1u64 << count_bits;
        let data_size = 1u64 << size_bits;
        // Descriptor and info arrays are read whole: two reads instead of one per record.
        let desc_bytes = mem
            .read_vec(descs, (count * desc_size) as usize)
            .map_err(|err| KernelError::Memory { what: "printk descriptors".into(), err })?;
        let info_bytes = mem
            .read_vec(infos, (count * info_size) as usize)
            .map_err(|err| KernelError::Memory { what: "printk infos".into(), err })?;
        let text = mem.read_vec(data, data_size as usize);
        let u64_at = |b: &[u8], o: u64| u64::from_le_bytes(b[o as usize..o as usize + 8].try_into().expect("8"));
        const ID_MASK: u64 = !(3u64 << 62);
        let mut log = KernelLog { format: "lockless ring buffer (5.10+)", ..Default::default() };
        let (tail, head) = (tail_id & ID_MASK, head_id & ID_MASK);
        let n = head.wrapping_sub(tail).wrapping_add(1) & ID_MASK;
        if n > count.min(MAX_RECORDS) {
            return Err(KernelError::MissingInfo("a sane printk ring (head and tail ids too far apart)"));
        }
        for k in 0..n {
            let id = tail.wrapping_add(k) & ID_MASK;
            let i = id % count;
            let d = &desc_bytes[(i * desc_size) as usize..][..desc_size as usize];
            let sv = u64_at(d, sv_off);
            let state = sv >> 62;
            // committed (1) or finalized (2), and still this id (not reused meanwhile).
            if sv & ID_MASK != id || !(state == 1 || state == 2) {
                log.skipped += 1;
                continue;
            }
            let begin = u64_at(d, lpos_off + begin_off);
            let next = u64_at(d, lpos_off + next_off);
            let info = &info_bytes[(i * info_size) as usize..][..info_size as usize];
            let text_len = u16::from_le_bytes([info[len_off as usize], info[len_off as usize + 1]]) as u64;
            // facility, then flags:5 and level:3 in the next byte (GCC bit-field order).
            let facility = info[len_off as usize + 2];
            let level = info[len_off as usize + 3] >> 5;
            let caller = caller_off.map(|o| {
                let c = u32::from_le_bytes(info[o as usize..o as usize + 4].try_into().expect("4"));
                if c & 0x8000_0000 != 0 { Caller::Cpu(c & 0x7fff_ffff) } else { Caller::Task(c) }
            });
            let body = match &text {
                Ok(t) => block_text(t, data_size, begin, next, text_len),
                Err(_) => None,
            };
            let Some(body) = body else {
                log.skipped += 1;
                continue;
            };
            log.records.push(Record {
                seq: u64_at(info, seq_off),
                ts_nsec: u64_at(info, ts_off),
                level,
                facility,
                caller,
                text: body.to_vec(),
            });
        }
        if let Err(err) = text
            && log.records.is_empty()
        {
            return Err(KernelError::Memory { what: "printk text ring".into(), err });
        }
        Ok(log)
    }

    /// 3.5–5.9: `struct printk_log` records in `log_buf`, from `log_first_idx` to `log_next_idx`.
    fn log_records(&self) -> Result<KernelLog, KernelError> {
        let l = Layout(self.vmcoreinfo());
        let mem = self.memory();
        let buf = self.rd_u64("log_buf", self.symbol("log_buf")?)?;
        let len_sym = self.symbol("log_buf_len")?;
        let buf_len =
            mem.read_u32(len_sym).map_err(|err| KernelError::Memory { what: "log_buf_len".into(), err })? as u64;
        let first = mem
            .read_u32(self.symbol("log_first_idx")?)
            .map_err(|err| KernelError::Memory { what: "log_first_idx".into(), err })? as u64;
        let next = mem
            .read_u32(self.symbol("log_next_idx")?)
            .map_err(|err| KernelError::Memory { what: "log_next_idx".into(), err })? as u64;
        if buf_len == 0 || buf_len > 1 << 30 {
            return Err(KernelError::MissingInfo("a sane log_buf_len"));
        }
        let hdr = l.size("printk_log")?;
        let ts_off = l.off("printk_log.ts_nsec")?;
        let len_off = l.off("printk_log.len")?;
        let text_len_off = l.off("printk_log.text_len")?;
        let caller_off = self.vmcoreinfo().offset("printk_log.caller_id");
        if text_len_off + 6 > hdr || len_off + 2 > hdr || ts_off + 8 > hdr {
            return Err(KernelError::MissingInfo("a sane struct printk_log layout"));
        }
        let bytes =
            mem.read_vec(buf, buf_len as usize).map_err(|err| KernelError::Memory { what: "log_buf".into(), err })?;
        let mut log = KernelLog { format: "record buffer (3.5-5.9)", ..Default::default() };
        let mut idx = first;
        let mut seq = 0;
        let mut wraps = 0;
        while idx != next && seq < MAX_RECORDS {
            let len = if idx + hdr > buf_len {
                0
            } else {
                u16::from_le_bytes([bytes[(idx + len_off) as usize], bytes[(idx + len_off) as usize + 1]]) as u64
            };
            if len == 0 {
                // A zero length (or no room for a header) marks the wrap to the buffer's start.
                wraps += 1;
                if wraps > 1 {
                    log.skipped += 1;
                    break;
                }
                idx = 0;
                continue;
            }
            let rec = &bytes[idx as usize..];
            if len < hdr || idx + len > buf_len {
                log.skipped += 1;
                break;
            }
            let ts = u64::from_le_bytes(rec[ts_off as usize..ts_off as usize + 8].try_into().expect("8"));
            let text_len = u16::from_le_bytes([rec[text_len_off as usize], rec[text_len_off as usize + 1]]) as u64;
            // dict_len (u16) follows text_len, then facility, then flags:5/level:3.
            let facility = rec[text_len_off as usize + 4];
            let level = rec[text_len_off as usize + 5] >> 5;
            let caller = caller_off.filter(|&o| o + 4 <= hdr).map(|o| {
                let c = u32::from_le_bytes(rec[o as usize..o as usize + 4].try_into().expect("4"));
                if c & 0x8000_0000 != 0 { Caller::Cpu(c & 0x7fff_ffff) } else { Caller::Task(c) }
            });
            let text = &rec[hdr as usize..(hdr + text_len.min(len - hdr)) as usize];
            log.records.push(Record { seq, ts_nsec: ts, level, facility, caller, text: text.to_vec() });
            seq += 1;
            idx += len;
        }
        Ok(log)
    }
}

/// The text of a data block `[begin, next)` of the ring: after the block's id (8 bytes); a
/// block that would wrap is stored whole at the ring's start.
fn block_text(ring: &[u8], size: u64, begin: u64, next: u64, text_len: u64) -> Option<&[u8]> {
    // Data-less records (lpos with bit 0 set) have no text.
    if begin & 1 != 0 || next & 1 != 0 || begin == next {
        return Some(&[]);
    }
    let bits = size.trailing_zeros();
    let (start, end) =
        if begin >> bits == next >> bits { (begin & (size - 1), next & (size - 1)) } else { (0, next & (size - 1)) };
    if end < start + 8 || end > ring.len() as u64 {
        return None;
    }
    let data = &ring[(start + 8) as usize..end as usize];
    Some(&data[..(text_len as usize).min(data.len())])
}
