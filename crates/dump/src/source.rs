//! The bytes of a dump file: a read-only mmap (or an owned buffer, for tests and fuzzing),
//! seen either as is or, for makedumpfile's flattened stream, through an index that maps
//! offsets of the file the stream describes onto the records that carry them. The stream is
//! never rewritten to disk; offsets no record covers read as zeros, as they would in the
//! sparse file `makedumpfile -R` writes.

use crate::error::DumpError;
use crate::raw::kdump::flattened;
use crate::raw::{Endian, i64_at};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub(crate) enum Storage {
    /// A mapped file and its (device, inode).
    Mapped(memmap2::Mmap, Option<(u64, u64)>),
    Owned(Vec<u8>),
    /// Bytes shared by several dumps (fuzzing: one decoded base file, a dump per input).
    Shared(std::sync::Arc<[u8]>),
}

impl Storage {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m, _) => m,
            Storage::Owned(v) => v,
            Storage::Shared(v) => v,
        }
    }
}

/// One piece of the un-flattened file: `[start, end)` is stored at `file_offset`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u64,
    end: u64,
    file_offset: u64,
}

/// Random access into a flattened stream.
pub(crate) struct FlatIndex {
    pieces: Vec<Piece>,
    len: u64,
    pub records: u64,
}

impl FlatIndex {
    pub fn is_flattened(data: &[u8]) -> bool {
        data.len() >= flattened::SIGNATURE.len() && data[..flattened::SIGNATURE.len()] == flattened::SIGNATURE[..]
    }

    /// Walks the records once. Later records overwrite earlier ones where they overlap, as
    /// they would when the stream is written out.
    pub fn build(data: &[u8]) -> Result<FlatIndex, DumpError> {
        if data.len() < flattened::HEADER_SIZE {
            return Err(DumpError::truncated(data.len() as u64));
        }
        let typ = i64_at(data, flattened::TYPE, Endian::Big).unwrap_or(0);
        if typ != 1 {
            return Err(DumpError::bad("flattened header type is not 1", flattened::TYPE as u64));
        }
        // BTreeMap keyed by start; pieces never overlap after each insertion.
        let mut map: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut pos = flattened::HEADER_SIZE;
        let mut records = 0u64;
        let mut len = 0u64;
        // A stream cut before its end mark keeps what arrived, like a partial dump.
        while let (Some(offset), Some(size)) = (i64_at(data, pos, Endian::Big), i64_at(data, pos + 8, Endian::Big)) {
            if offset == flattened::END_MARK && size == flattened::END_MARK {
                break;
            }
            if offset < 0 || size < 0 {
                return Err(DumpError::bad("negative flattened record offset or size", pos as u64));
            }
            let data_start = pos + flattened::RECORD_HEADER_LEN;
            let size_u = size as u64;
            if data_start > data.len() || ((data.len() - data_start) as u64) < size_u {
                return Err(DumpError::truncated(pos as u64));
            }
            let start = offset as u64;
            let end = start.checked_add(size_u).ok_or(DumpError::bad("flattened record past 2^64", pos as u64))?;
            if size_u > 0 {
                insert_piece(&mut map, start, end, data_start as u64);
                len = len.max(end);
            }
            records += 1;
            pos = data_start + size_u as usize;
        }
        let pieces = map.into_iter().map(|(start, (end, file_offset))| Piece { start, end, file_offset }).collect();
        Ok(FlatIndex { pieces, len, records })
    }

    fn copy(&self, data: &[u8], offset: u64, out: &mut [u8]) {
        out.fill(0);
        let end = offset + out.len() as u64;
        let first = self.pieces.partition_point(|p| p.end <= offset);
        for p in &self.pieces[first..] {
            if p.start >= end {
                break;
            }
            let s = p.start.max(offset);
            let e = p.end.min(end);
            let src = (p.file_offset + (s - p.start)) as usize;
            out[(s - offset) as usize..(e - offset) as usize].copy_from_slice(&data[src..src + (e - s) as usize]);
        }
    }

    fn borrow<'a>(&self, data: &'a [u8], offset: u64, len: usize) -> Option<&'a [u8]> {
        let i = self.pieces.partition_point(|p| p.end <= offset);
        let p = self.pieces.get(i)?;
        if p.start <= offset && offset + len as u64 <= p.end {
            let src = (p.file_offset + (offset - p.start)) as usize;
            return Some(&data[src..src + len]);
        }
        None
    }
}

fn insert_piece(map: &mut BTreeMap<u64, (u64, u64)>, start: u64, end: u64, file_offset: u64) {
    let overlapping: Vec<(u64, u64, u64)> =
        map.range(..end).rev().take_while(|(_, (e, _))| *e > start).map(|(&s, &(e, f))| (s, e, f)).collect();
    for (s, e, f) in overlapping {
        map.remove(&s);
        if s < start {
            map.insert(s, (start, f));
        }
        if e > end {
            map.insert(end, (e, f + (end - s)));
        }
    }
    map.insert(start, (end, file_offset));
}

/// The file as the readers see it.
pub(crate) struct Source {
    storage: Storage,
    flat: Option<FlatIndex>,
}

impl Source {
    pub fn new(storage: Storage) -> Result<Source, DumpError> {
        let flat =
            if FlatIndex::is_flattened(storage.bytes()) { Some(FlatIndex::build(storage.bytes())?) } else { None };
        Ok(Source { storage, flat })
    }

    pub fn raw(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// (device, inode) of the mapped file.
    pub fn file_id(&self) -> Option<(u64, u64)> {
        match self.storage {
            Storage::Mapped(_, id) => id,
            Storage::Owned(_) | Storage::Shared(_) => None,
        }
    }

    pub fn flat(&self) -> Option<&FlatIndex> {
        self.flat.as_ref()
    }

    /// Length of the (un-flattened) file.
    pub fn len(&self) -> u64 {
        match &self.flat {
            Some(f) => f.len,
            None => self.storage.bytes().len() as u64,
        }
    }

    /// `len` bytes at `offset`, borrowed when they are contiguous on disk; `None` past the end.
    pub fn bytes(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let end = offset.checked_add(len as u64)?;
        if end > self.len() {
            return None;
        }
        let data = self.storage.bytes();
        match &self.flat {
            None => Some(Cow::Borrowed(&data[offset as usize..end as usize])),
            Some(f) => match f.borrow(data, offset, len) {
                Some(b) => Some(Cow::Borrowed(b)),
                None => {
                    let mut v = vec![0u8; len];
                    f.copy(data, offset, &mut v);
                    Some(Cow::Owned(v))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(records: &[(i64, &[u8])]) -> Vec<u8> {
        let mut v = vec![0u8; flattened::HEADER_SIZE];
        v[..12].copy_from_slice(flattened::SIGNATURE);
        v[16..24].copy_from_slice(&1i64.to_be_bytes());
        v[24..32].copy_from_slice(&1i64.to_be_bytes());
        for (off, data) in records {
            v.extend_from_slice(&off.to_be_bytes());
            v.extend_from_slice(&(data.len() as i64).to_be_bytes());
            v.extend_from_slice(data);
        }
        v.extend_from_slice(&(-1i64).to_be_bytes());
        v.extend_from_slice(&(-1i64).to_be_bytes());
        v
    }

    #[test]
    fn later_records_win_and_gaps_read_as_zeros() {
        let s = Source::new(Storage::Owned(stream(&[(0, b"aaaaaaaa"), (4, b"bb"), (12, b"cc")]))).unwrap();
        assert_eq!(s.len(), 14);
        assert_eq!(&*s.bytes(0, 14).unwrap(), b"aaaabbaa\0\0\0\0cc");
        assert_eq!(&*s.bytes(4, 2).unwrap(), b"bb");
        assert!(s.bytes(10, 5).is_none());
    }

    #[test]
    fn truncated_record_is_an_error_and_missing_end_mark_is_not() {
        let mut v = stream(&[(0, b"abcd")]);
        v.truncate(v.len() - 16);
        assert!(Source::new(Storage::Owned(v.clone())).is_ok());
        v.truncate(v.len() - 2);
        let e = Source::new(Storage::Owned(v)).err().unwrap();
        assert_eq!(e.offset, flattened::HEADER_SIZE as u64);
    }
}
