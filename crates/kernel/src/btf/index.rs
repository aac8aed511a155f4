//! Lookup tables built on first use: names of types → type IDs, and enumerator names → their
//! enum and position. Both are open-addressing hash tables over the blob's own entries (no
//! string is copied): one `Vec` each, sized at most four times the number of entries, with
//! linear probing, so entries of equal name come out in ascending type ID order.

use super::{Btf, Kind};

/// Slots hold `own type index + 1` (0 = empty).
pub(super) struct NameIndex {
    slots: Vec<u32>,
    /// Own indexes of the DATASEC types (few; searched for a variable's section).
    pub(super) datasecs: Vec<u32>,
}

impl NameIndex {
    pub(super) fn build(btf: &Btf<'_>) -> NameIndex {
        let n = btf.own_len();
        let mut slots = vec![0u32; table_size(n)];
        let mut datasecs = Vec::new();
        for i in 0..n {
            let pos = btf.type_pos(i);
            let name_off = btf.u32_at(pos);
            if (btf.u32_at(pos + 4) >> 24) & 0x1f == Kind::Datasec as u32 {
                datasecs.push(i as u32);
            }
            if name_off != 0 {
                let (strs, rel) = btf.string_section(&btf.data, name_off);
                insert(&mut slots, hash_nul_terminated(strs, rel), i as u32 + 1);
            }
        }
        NameIndex { slots, datasecs }
    }

    /// Own indexes of the types named `name`, ascending.
    pub(super) fn find<'s>(&'s self, btf: &'s Btf<'_>, name: &'s str) -> impl Iterator<Item = usize> + 's {
        probe(&self.slots, hash(name.as_bytes()))
            .map(|s| s as usize - 1)
            .filter(move |&i| btf.type_at(i).name() == name)
    }
}

/// Slots hold `(own type index + 1) << 16 | enumerator index` (0 = empty).
pub(super) struct EnumIndex {
    slots: Vec<u64>,
}

impl EnumIndex {
    pub(super) fn build(btf: &Btf<'_>) -> EnumIndex {
        let enums =
            || (0..btf.own_len()).map(|i| btf.type_at(i)).filter(|t| matches!(t.kind(), Kind::Enum | Kind::Enum64));
        let count: usize = enums().map(|t| t.vlen() as usize).sum();
        let mut slots = vec![0u64; table_size(count)];
        for t in enums() {
            let i = (t.id().0 - btf.first_id) as u64;
            let stride = if t.kind() == Kind::Enum { 8 } else { 12 };
            for j in 0..t.vlen() as usize {
                let name_off = btf.u32_at(t.blob_offset() as usize + 12 + stride * j);
                if name_off != 0 {
                    let (strs, rel) = btf.string_section(&btf.data, name_off);
                    insert(&mut slots, hash_nul_terminated(strs, rel), (i + 1) << 16 | j as u64);
                }
            }
        }
        EnumIndex { slots }
    }

    /// (own type index, enumerator index) of the enumerators named `name`, ascending.
    pub(super) fn find<'s>(&'s self, btf: &'s Btf<'_>, name: &'s str) -> impl Iterator<Item = (usize, usize)> + 's {
        probe(&self.slots, hash(name.as_bytes()))
            .map(|s| ((s >> 16) as usize - 1, (s & 0xffff) as usize))
            .filter(move |&(i, j)| btf.type_at(i).enumerators().nth(j).is_some_and(|e| e.name == name))
    }
}

/// A power of two at least twice the entries (so probing always meets an empty slot).
fn table_size(entries: usize) -> usize {
    entries.saturating_mul(2).max(16).next_power_of_two()
}

trait Slot: Copy + PartialEq {
    const EMPTY: Self;
}
impl Slot for u32 {
    const EMPTY: u32 = 0;
}
impl Slot for u64 {
    const EMPTY: u64 = 0;
}

fn insert<S: Slot>(slots: &mut [S], hash: u64, value: S) {
    let mask = slots.len() - 1;
    let mut at = hash as usize & mask;
    // The table is at most half full: an empty slot is always found.
    for _ in 0..slots.len() {
        if slots[at] == S::EMPTY {
            slots[at] = value;
            return;
        }
        at = (at + 1) & mask;
    }
}

/// The occupied slots of the probe sequence of `hash`, up to the first empty one.
fn probe<S: Slot>(slots: &[S], hash: u64) -> impl Iterator<Item = S> + '_ {
    let mask = slots.len().wrapping_sub(1);
    let start = hash as usize & mask;
    (0..slots.len()).map(move |k| slots[(start + k) & mask]).take_while(|&s| s != S::EMPTY)
}

const K: u64 = 0x517c_c1b7_2722_0a95;
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

fn finish(h: u64, len: usize) -> u64 {
    let h = mix(h, len as u64);
    // Fold the well-mixed high bits into the low ones the mask keeps.
    h ^ (h >> 29) ^ (h >> 47)
}

/// A fast multiplicative hash of a name, over 8-byte little-endian words (the last one padded
/// with zeros); names are short identifiers.
fn hash(s: &[u8]) -> u64 {
    let mut h = 0;
    for chunk in s.chunks(8) {
        h = mix(h, load(chunk));
    }
    finish(h, s.len())
}

/// [`hash`] of the NUL-terminated string at `strs[at..]`, found a word at a time. The string
/// section ends with a NUL (checked on load); a missing one ends the string at the section's end.
fn hash_nul_terminated(strs: &[u8], at: usize) -> u64 {
    let mut h = 0;
    let mut p = at;
    loop {
        let rest = strs.get(p..).unwrap_or(&[]);
        let word = load(rest.get(..8).unwrap_or(rest));
        let zero = word.wrapping_sub(LOW_BITS) & !word & HIGH_BITS;
        if zero == 0 && rest.len() >= 8 {
            h = mix(h, word);
            p += 8;
            continue;
        }
        // The lowest flagged byte is the first NUL (the test is exact for it).
        let n = if zero == 0 { rest.len().min(8) } else { (zero.trailing_zeros() / 8) as usize };
        if n > 0 {
            h = mix(h, word & (u64::MAX >> (64 - 8 * n)));
        }
        return finish(h, p - at + n);
    }
}

/// Up to 8 bytes as a little-endian word, zero padded.
fn load(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}
