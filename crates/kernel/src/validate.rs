//! Numbers read from the dump are checked here before they size an allocation, index a
//! buffer or bound a loop: VMCOREINFO sizes and offsets, counts and lengths found in kernel
//! memory. A dump is the memory of a machine that was going wrong, often edited by tools
//! older than its kernel, so any of them can be garbage; each check turns a bad one into a
//! [`KernelError::BadValue`] that names where the number came from and what it was.

use crate::KernelError;
use lockscope_dump::VmcoreInfo;

/// No structure VMCOREINFO describes comes near this size; a bigger SIZE() is damage.
pub const MAX_STRUCT_SIZE: u64 = 1 << 16;
/// One buffer read from kernel memory at once (the printk text ring is at most 1 GiB by the
/// kernel's own limit; everything else is far smaller).
pub const MAX_READ: u64 = 1 << 30;

/// The error for an impossible number.
pub fn bad(key: impl Into<String>, value: u64, why: &'static str) -> KernelError {
    KernelError::BadValue { key: key.into(), value, why }
}

/// `value` when it lies in `lo..=hi`, else the error naming `key`.
pub fn in_range(key: &str, value: u64, lo: u64, hi: u64, why: &'static str) -> Result<u64, KernelError> {
    if (lo..=hi).contains(&value) { Ok(value) } else { Err(bad(key, value, why)) }
}

/// Bytes of `count` elements of `size` bytes: overflow-checked and capped by [`MAX_READ`].
pub fn array_bytes(key: &str, count: u64, size: u64) -> Result<usize, KernelError> {
    count
        .checked_mul(size)
        .filter(|&b| b <= MAX_READ)
        .map(|b| b as usize)
        .ok_or_else(|| bad(key, count.saturating_mul(size), "is more bytes than any kernel table holds"))
}

/// A structure as VMCOREINFO lays it out: `SIZE(name)` and each `OFFSET(name.member)`,
/// checked against each other once, so that reading a field of a copy can't go out of bounds.
pub struct InfoStruct<'a> {
    info: &'a VmcoreInfo,
    name: &'static str,
    size: u64,
}

impl<'a> InfoStruct<'a> {
    /// The structure's size, which must be given and plausible.
    pub fn new(info: &'a VmcoreInfo, name: &'static str) -> Result<InfoStruct<'a>, KernelError> {
        let size = info.size(name).ok_or_else(|| KernelError::MissingInfo(format!("SIZE({name})").into()))?;
        in_range(&format!("SIZE({name})"), size, 1, MAX_STRUCT_SIZE, "is not a plausible structure size")?;
        Ok(InfoStruct { info, name, size })
    }

    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// The offset of a member `width` bytes wide, inside the structure.
    pub fn field(&self, member: &'static str, width: u64) -> Result<usize, KernelError> {
        self.optional_field(member, width)?
            .ok_or_else(|| KernelError::MissingInfo(format!("OFFSET({}.{member})", self.name).into()))
    }

    /// As [`InfoStruct::field`] for members some kernels lack (`printk_info.caller_id`).
    pub fn optional_field(&self, member: &'static str, width: u64) -> Result<Option<usize>, KernelError> {
        let key = format!("{}.{member}", self.name);
        let Some(off) = self.info.offset(&key) else { return Ok(None) };
        if off.checked_add(width).is_none_or(|end| end > self.size) {
            return Err(bad(format!("OFFSET({key})"), off, "lies outside SIZE() of its structure"));
        }
        Ok(Some(off as usize))
    }
}

/// `OFFSET(key)` of a structure VMCOREINFO gives no size for, bounded by [`MAX_STRUCT_SIZE`].
pub fn offset(info: &VmcoreInfo, key: &'static str) -> Result<u64, KernelError> {
    let off = info.offset(key).ok_or_else(|| KernelError::MissingInfo(format!("OFFSET({key})").into()))?;
    in_range(&format!("OFFSET({key})"), off, 0, MAX_STRUCT_SIZE, "is beyond any structure's size")
}

/// Little-endian reads from a copy of a structure at offsets checked by [`InfoStruct`];
/// an offset that is still out of bounds reads as `None`, never a panic.
pub fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

pub fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

pub fn le_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> VmcoreInfo {
        VmcoreInfo::parse(text.as_bytes())
    }

    #[test]
    fn offsets_outside_their_structure_are_named() {
        let i = info("SIZE(printk_info)=88\nOFFSET(printk_info.seq)=99999\nOFFSET(printk_info.ts_nsec)=8\n");
        let s = InfoStruct::new(&i, "printk_info").unwrap();
        assert_eq!(s.field("ts_nsec", 8).unwrap(), 8);
        let e = s.field("seq", 8).unwrap_err().to_string();
        assert!(e.contains("OFFSET(printk_info.seq) = 99999"), "{e}");
        assert!(s.field("text_len", 2).is_err());
        assert_eq!(s.optional_field("caller_id", 4).unwrap(), None);
    }

    #[test]
    fn sizes_are_capped() {
        let i = info("SIZE(printk_info)=99999999\n");
        let e = InfoStruct::new(&i, "printk_info").err().unwrap().to_string();
        assert!(e.contains("SIZE(printk_info) = 99999999"), "{e}");
        assert!(array_bytes("descs", 1 << 24, 1 << 16).is_err());
        assert!(array_bytes("descs", u64::MAX, 2).is_err());
        assert_eq!(array_bytes("descs", 4096, 24).unwrap(), 98304);
    }

    #[test]
    fn reads_never_go_out_of_bounds() {
        let b = [1u8, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(le_u64(&b, 0), Some(1));
        assert_eq!(le_u64(&b, 2), None);
        assert_eq!(le_u16(&b, usize::MAX), None);
        assert_eq!(le_u32(&b, 5), Some(2 << 24));
    }
}
