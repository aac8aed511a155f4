//! On-disk layouts, kept apart from the parsing API: byte offsets of the fields lockscope
//! reads, and bounds-checked little/big-endian loads. Nothing here interprets a value; the
//! readers in the crate root's modules decide what the numbers mean and whether to trust them.

pub mod kdump;
pub mod notes;

/// Byte order of the dumped machine (kdump headers and notes are written in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// Loads a fixed-size field; `None` when it does not fit in `bytes`.
pub fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    bytes.get(offset..end)?.try_into().ok()
}

pub fn u16_at(bytes: &[u8], offset: usize, endian: Endian) -> Option<u16> {
    let a = array_at::<2>(bytes, offset)?;
    Some(match endian {
        Endian::Little => u16::from_le_bytes(a),
        Endian::Big => u16::from_be_bytes(a),
    })
}

pub fn u32_at(bytes: &[u8], offset: usize, endian: Endian) -> Option<u32> {
    let a = array_at::<4>(bytes, offset)?;
    Some(match endian {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    })
}

pub fn u64_at(bytes: &[u8], offset: usize, endian: Endian) -> Option<u64> {
    let a = array_at::<8>(bytes, offset)?;
    Some(match endian {
        Endian::Little => u64::from_le_bytes(a),
        Endian::Big => u64::from_be_bytes(a),
    })
}

pub fn i32_at(bytes: &[u8], offset: usize, endian: Endian) -> Option<i32> {
    u32_at(bytes, offset, endian).map(|v| v as i32)
}

pub fn i64_at(bytes: &[u8], offset: usize, endian: Endian) -> Option<i64> {
    u64_at(bytes, offset, endian).map(|v| v as i64)
}

/// A NUL-padded fixed-width text field (utsname members, signatures), cut at the first NUL.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
