//! VMCOREINFO: the `KEY=VALUE` lines the kernel exports for dump tools (kernel/vmcore_info.c),
//! typed. Symbol values are runtime (KASLR-shifted) virtual addresses.

use std::collections::HashMap;

/// The parsed VMCOREINFO note. Keys keep their exact spelling (`SYMBOL(_stext)`,
/// `OFFSET(page.flags)`); typed getters cover the families.
#[derive(Clone, Debug, Default)]
pub struct VmcoreInfo {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl VmcoreInfo {
    /// Parses the note text. Lines without `=` are ignored; a repeated key keeps its last value
    /// (the kernel appends CRASHTIME after the fact, so later lines are newer).
    pub fn parse(bytes: &[u8]) -> VmcoreInfo {
        let text = String::from_utf8_lossy(bytes);
        let mut info = VmcoreInfo::default();
        for line in text.split('\n') {
            let line = line.trim_end_matches(['\r', '\0']);
            let Some((k, v)) = line.split_once('=') else { continue };
            if k.is_empty() {
                continue;
            }
            match info.index.get(k) {
                Some(&i) => info.entries[i].1 = v.to_string(),
                None => {
                    info.index.insert(k.to_string(), info.entries.len());
                    info.entries.push((k.to_string(), v.to_string()));
                }
            }
        }
        info
    }

    /// Every key and value, in note order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw value of a key, e.g. `get("SYMBOL(_stext)")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }

    fn family(&self, family: &str, name: &str) -> Option<&str> {
        self.get(&format!("{family}({name})"))
    }

    /// `SYMBOL(name)=hex`, no `0x`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        parse_hex(self.family("SYMBOL", name)?)
    }

    /// `NUMBER(name)`: printed `%ld` by generic code and `0x%llx` by some arch code, so the
    /// radix and sign are taken from the text.
    pub fn number(&self, name: &str) -> Option<i64> {
        parse_auto(self.family("NUMBER", name)?)
    }

    /// `OFFSET(struct.member)`.
    pub fn offset(&self, struct_member: &str) -> Option<u64> {
        parse_unsigned_auto(self.family("OFFSET", struct_member)?)
    }

    /// `SIZE(type)`.
    pub fn size(&self, name: &str) -> Option<u64> {
        parse_unsigned_auto(self.family("SIZE", name)?)
    }

    /// `LENGTH(array)`.
    pub fn length(&self, name: &str) -> Option<u64> {
        parse_unsigned_auto(self.family("LENGTH", name)?)
    }

    /// `KERNELOFFSET=hex`: the KASLR shift of the kernel image (0 when absent or off).
    pub fn kernel_offset(&self) -> Option<u64> {
        parse_hex(self.get("KERNELOFFSET")?)
    }

    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    pub fn build_id(&self) -> Option<&str> {
        self.get("BUILD-ID")
    }

    pub fn page_size(&self) -> Option<u64> {
        parse_unsigned_auto(self.get("PAGESIZE")?)
    }

    /// `CRASHTIME=` seconds since the epoch, written at panic (absent for a live dump).
    pub fn crash_time(&self) -> Option<i64> {
        parse_auto(self.get("CRASHTIME")?)
    }

    /// x86_64 `phys_base`: `NUMBER(phys_base)` since 4.10, `SYMBOL(phys_base)` before (the
    /// latter is the variable's address, not its value, so it is not returned here).
    pub fn phys_base(&self) -> Option<i64> {
        self.number("phys_base")
    }

    /// `CONFIG_X=y` lines.
    pub fn config(&self, name: &str) -> Option<&str> {
        self.get(&format!("CONFIG_{name}"))
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn parse_unsigned_auto(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_auto(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let magnitude = parse_unsigned_auto(digits)?;
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        // `0x%llx` of a negative value prints its two's complement: keep the bits.
        Some(magnitude as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_radix() {
        let v = VmcoreInfo::parse(
            b"OSRELEASE=6.1.0\nSYMBOL(_stext)=ffffffff88600000\nNUMBER(phys_base)=-10485760\n\
              NUMBER(VA_BITS)=0x30\nOFFSET(page.flags)=0\nSIZE(page)=64\nLENGTH(zone.free_area)=11\n\
              KERNELOFFSET=7600000\nPAGESIZE=4096\nnoise\nCRASHTIME=1795239205\n",
        );
        assert_eq!(v.osrelease(), Some("6.1.0"));
        assert_eq!(v.symbol("_stext"), Some(0xffffffff88600000));
        assert_eq!(v.phys_base(), Some(-10485760));
        assert_eq!(v.number("VA_BITS"), Some(48));
        assert_eq!(v.offset("page.flags"), Some(0));
        assert_eq!(v.size("page"), Some(64));
        assert_eq!(v.length("zone.free_area"), Some(11));
        assert_eq!(v.kernel_offset(), Some(0x7600000));
        assert_eq!(v.page_size(), Some(4096));
        assert_eq!(v.crash_time(), Some(1795239205));
        assert_eq!(v.len(), 10);
    }
}
