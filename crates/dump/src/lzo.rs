//! LZO1X decompression: the streams liblzo2's `lzo1x_decompress_safe` reads, which is what
//! makedumpfile writes for each page of a `-l` dump (LZO1X-1 output ending with the
//! end-of-stream marker). Written for the page reader: the output is a slice the caller sizes
//! (exactly one page there), and everything a damaged or hostile stream can do — a match
//! before the start of the output, a length past its end, input that stops early or goes on
//! after the end marker — is an error, never a panic or a write outside that slice.
//!
//! The format, as the Linux kernel documents it (`Documentation/staging/lzo.rst`): a stream
//! of instructions, each a copy from the output already written (a "match": distance and
//! length) followed by 0–3 literal bytes whose count sits in the instruction's low two bits,
//! or, when the previous instruction copied no literal, a run of 4 or more literals. The first
//! byte may also open with a literal run. Lengths too big for their bits continue in extra
//! bytes: each zero byte adds 255, the first non-zero byte ends the length. The end marker is
//! a far match (`0001HLLL`) of length 3 and distance 16384: bytes `11 00 00` (the low two bits
//! of the distance are ignored). The kernel's LZO-RLE variant (first byte 17, then a version
//! byte, and far matches of distance 0xbfff meaning runs of zeros) is read too, as the kernel
//! reads it; liblzo2 would reject such a stream, and makedumpfile never writes one.
//!
//! Speed comes from copying in fixed 16- and 8-byte chunks wherever the input and output have
//! room past the bytes really needed (the extra bytes written are overwritten by what follows,
//! or lie past the end of the decoded data), so most instructions cost a few loads and stores
//! and no call to `memcpy`.

#![forbid(unsafe_code)]

use std::fmt;

/// Why a stream did not decode (liblzo2's error codes of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LzoError {
    /// The input ends inside an instruction or before the end-of-stream marker.
    InputOverrun,
    /// The output would not fit in the slice given.
    OutputOverrun,
    /// A match reaches back before the start of the output.
    LookbehindOverrun,
    /// Bytes follow the end-of-stream marker.
    InputNotConsumed,
    /// An end-of-stream marker whose length is not 3.
    BadEndMarker,
}

impl fmt::Display for LzoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LzoError::InputOverrun => "LZO input ends early",
            LzoError::OutputOverrun => "LZO output does not fit",
            LzoError::LookbehindOverrun => "LZO match before the start of the output",
            LzoError::InputNotConsumed => "bytes after the LZO end-of-stream marker",
            LzoError::BadEndMarker => "LZO end-of-stream marker of a wrong length",
        })
    }
}

impl std::error::Error for LzoError {}

use LzoError::*;

/// Far matches (`0001HLLL`) start at this distance; with H = 0 and no other distance bits
/// the instruction is the end-of-stream marker.
const FAR: usize = 0x4000;
/// Matches `0000DDSS` right after a run of 4 or more literals start at this distance.
const AFTER_RUN: usize = 0x0801;

/// Decodes the LZO1X stream `src` into `dst`, which bounds the output: the number of bytes
/// written (bytes of `dst` past it may have been overwritten). `src` must hold exactly one
/// stream, end-of-stream marker included.
pub(crate) fn decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, LzoError> {
    if src.len() < 3 {
        return Err(InputOverrun);
    }
    // Invariants for the whole loop: ip <= src.len() and op <= dst.len().
    let mut ip = 0;
    let mut op = 0;
    // LZO-RLE (the kernel's extension): 17 and a version byte in front of the stream.
    let mut rle = false;
    if src.len() >= 5 && src[0] == 17 {
        rle = src[1] != 0;
        ip = 2;
    }
    // The number of literals the last instruction copied: 0, 1–3, or 4 for "4 or more".
    let mut state = 0;
    let first = src[ip];
    if first > 17 {
        // A literal run opens the stream: 1–3 (then the state as after a match) or 4–238.
        let n = usize::from(first - 17);
        ip += 1;
        copy_literals(src, &mut ip, dst, &mut op, n)?;
        state = n.min(4);
    }
    loop {
        // Every instruction is followed by at least the 3-byte end marker, and none is
        // shorter than 2 bytes: reading 3 at once costs one bounds check.
        let Some(&[t, b1, b2]) = src.get(ip..).and_then(<[u8]>::first_chunk::<3>) else {
            return Err(InputOverrun);
        };
        let t = usize::from(t);
        let (dist, len, next);
        if t >= 64 {
            // 1LLDDDSS (length 5–8) or 01LDDDSS (3–4), then HHHHHHHH: distance (H << 3) + D + 1.
            // The most common instruction: one 8-byte copy when it does not overlap.
            let dist = (usize::from(b1) << 3) + ((t >> 2) & 7) + 1;
            let len = (t >> 5) + 1;
            let next = t & 3;
            ip += 2;
            if dist >= 8 && dist <= op && dst.len() - op >= 8 {
                dst.copy_within(op - dist..op - dist + 8, op);
                op += len;
            } else {
                op = copy_match(dst, op, dist, len)?;
            }
            copy_short_literals(src, &mut ip, dst, &mut op, next)?;
            state = next;
            continue;
        } else if t >= 32 {
            // 001LLLLL, then LE16 DDDDDDDD DDDDDDSS: length L + 2, distance D + 1.
            let v;
            if t == 32 {
                ip += 1;
                len = 33 + extension(src, &mut ip)?;
                v = le16(src, &mut ip)?;
            } else {
                len = (t & 31) + 2;
                v = usize::from(b1) | usize::from(b2) << 8;
                ip += 3;
            }
            dist = (v >> 2) + 1;
            next = v & 3;
        } else if t >= 16 {
            // 0001HLLL, then LE16: length L + 2, distance 16384 + (H << 14) + D.
            if rle && t & 8 != 0 && b1 >= 0xfc && b2 == 0xff {
                // LZO-RLE: distance 0xbfff is a run of (L | X << 3) + 4 zeros, X the next byte.
                let x = *src.get(ip + 3).ok_or(InputOverrun)?;
                let n = ((t & 7) | usize::from(x) << 3) + 4;
                let out = dst.get_mut(op..op + n).ok_or(OutputOverrun)?;
                out.fill(0);
                op += n;
                ip += 4;
                state = usize::from(b1 & 3);
                copy_short_literals(src, &mut ip, dst, &mut op, state)?;
                continue;
            }
            let v;
            if t & 7 == 0 {
                ip += 1;
                len = 9 + extension(src, &mut ip)?;
                v = le16(src, &mut ip)?;
            } else {
                len = (t & 7) + 2;
                v = usize::from(b1) | usize::from(b2) << 8;
                ip += 3;
            }
            let d = ((t & 8) << 11) + (v >> 2);
            if d == 0 {
                return if len != 3 {
                    Err(BadEndMarker)
                } else if ip == src.len() {
                    Ok(op)
                } else {
                    Err(InputNotConsumed)
                };
            }
            dist = d + FAR;
            next = v & 3;
        } else if state == 0 {
            // 0000LLLL after no literal: a run of L + 3 literals (L = 0: 18 + extension).
            let n = if t == 0 {
                ip += 1;
                18 + extension(src, &mut ip)?
            } else {
                ip += 1;
                t + 3
            };
            copy_literals(src, &mut ip, dst, &mut op, n)?;
            state = 4;
            continue;
        } else {
            // 0000DDSS, then HHHHHHHH: after 1–3 literals, 2 bytes from (H << 2) + D + 1;
            // after a run of 4 or more, 3 bytes from (H << 2) + D + 2049.
            let (base, l) = if state < 4 { (1, 2) } else { (AFTER_RUN, 3) };
            dist = (usize::from(b1) << 2) + (t >> 2) + base;
            len = l;
            next = t & 3;
            ip += 2;
        }
        op = copy_match(dst, op, dist, len)?;
        copy_short_literals(src, &mut ip, dst, &mut op, next)?;
        state = next;
    }
}

/// A length's extension bytes: 255 for each zero byte, plus the first non-zero one.
#[inline]
fn extension(src: &[u8], ip: &mut usize) -> Result<usize, LzoError> {
    let rest = src.get(*ip..).unwrap_or_default();
    let zeros = rest.iter().position(|&b| b != 0).ok_or(InputOverrun)?;
    let last = usize::from(rest[zeros]);
    *ip += zeros + 1;
    // Bounded by the input's length; saturating so a 32-bit target cannot wrap.
    Ok(zeros.saturating_mul(255).saturating_add(last))
}

#[inline]
fn le16(src: &[u8], ip: &mut usize) -> Result<usize, LzoError> {
    let &[lo, hi] = src.get(*ip..).and_then(<[u8]>::first_chunk::<2>).ok_or(InputOverrun)?;
    *ip += 2;
    Ok(usize::from(lo) | usize::from(hi) << 8)
}

/// Copies `n` literals (4 or more, or the opening 1–3).
#[inline(always)]
fn copy_literals(src: &[u8], ip: &mut usize, dst: &mut [u8], op: &mut usize, n: usize) -> Result<(), LzoError> {
    let (i, o) = (*ip, *op);
    if n <= 16 && src.len() - i >= 16 && dst.len() - o >= 16 {
        dst[o..o + 16].copy_from_slice(&src[i..i + 16]);
    } else if n <= 32 && src.len() - i >= 32 && dst.len() - o >= 32 {
        dst[o..o + 32].copy_from_slice(&src[i..i + 32]);
    } else {
        let from = src.get(i..i.saturating_add(n)).ok_or(InputOverrun)?;
        dst.get_mut(o..o.saturating_add(n)).ok_or(OutputOverrun)?.copy_from_slice(from);
    }
    *ip = i + n;
    *op = o + n;
    Ok(())
}

/// Copies the 0–3 literals that follow a match.
#[inline(always)]
fn copy_short_literals(src: &[u8], ip: &mut usize, dst: &mut [u8], op: &mut usize, n: usize) -> Result<(), LzoError> {
    let (i, o) = (*ip, *op);
    if src.len() - i >= 4 && dst.len() - o >= 4 {
        dst[o..o + 4].copy_from_slice(&src[i..i + 4]);
    } else if n != 0 {
        let from = src.get(i..i + n).ok_or(InputOverrun)?;
        dst.get_mut(o..o + n).ok_or(OutputOverrun)?.copy_from_slice(from);
    }
    *ip = i + n;
    *op = o + n;
    Ok(())
}

/// Copies `len` bytes from `dist` bytes back to `op`, the two overlapping when `dist < len`
/// (then the copy repeats the last `dist` bytes); returns the new output position.
#[inline(always)]
fn copy_match(dst: &mut [u8], op: usize, dist: usize, len: usize) -> Result<usize, LzoError> {
    let from = op.checked_sub(dist).ok_or(LookbehindOverrun)?;
    let end = op.checked_add(len).filter(|&e| e <= dst.len()).ok_or(OutputOverrun)?;
    let room = dst.len() - end;
    if dist >= 16 && room >= 15 {
        // Each 16-byte chunk reads only bytes before the one it writes (already final).
        let mut i = 0;
        loop {
            dst.copy_within(from + i..from + i + 16, op + i);
            i += 16;
            if i >= len {
                break;
            }
        }
    } else if dist >= 8 && room >= 7 {
        let mut i = 0;
        loop {
            dst.copy_within(from + i..from + i + 8, op + i);
            i += 8;
            if i >= len {
                break;
            }
        }
    } else if dist >= len {
        dst.copy_within(from..from + len, op);
    } else if dist == 1 {
        let b = dst[from];
        dst[op..end].fill(b);
    } else if len <= 32 {
        for i in op..end {
            dst[i] = dst[i - dist];
        }
    } else {
        // A period of `dist` bytes: copy what is there, doubling the span each time.
        let mut at = op;
        while at < end {
            let n = (at - from).min(end - at);
            dst.copy_within(from..from + n, at);
            at += n;
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes into a buffer of `cap` bytes followed by guard bytes that must stay untouched.
    fn run(src: &[u8], cap: usize) -> Result<Vec<u8>, LzoError> {
        let mut buf = vec![0xa5u8; cap + 64];
        let r = decompress(src, &mut buf[..cap]);
        assert!(buf[cap..].iter().all(|&b| b == 0xa5), "wrote past the output slice");
        r.map(|n| buf[..n].to_vec())
    }

    fn ok(src: &[u8], cap: usize) -> Vec<u8> {
        let got = run(src, cap).unwrap_or_else(|e| panic!("{src:02x?}: {e}"));
        // lzokay reads the same (LZO-RLE streams aside).
        if !(src.len() >= 5 && src[0] == 17) {
            let mut want = vec![0u8; cap];
            let n = lzokay::decompress::decompress(src, &mut want).expect("lzokay decodes it too");
            assert_eq!(got, want[..n], "lzokay disagrees");
        }
        got
    }

    const END: [u8; 3] = [0x11, 0, 0];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// The instruction for a run of `n` >= 4 literals after no literal (or at the start):
    /// 0000LLLL for up to 18, else 0 and the extension (255 per zero byte, then 1–255).
    fn run_of(n: usize) -> Vec<u8> {
        assert!(n >= 4);
        if n <= 18 {
            return vec![(n - 3) as u8];
        }
        let ext = n - 18;
        let mut s = vec![0u8];
        s.extend(std::iter::repeat_n(0, (ext - 1) / 255));
        s.push(((ext - 1) % 255 + 1) as u8);
        s
    }

    /// Bytes 0, 1, 2, … (mod 251, so no short period).
    fn ramp(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn empty_stream() {
        assert_eq!(ok(&END, 0), b"");
        assert_eq!(ok(&END, 10), b"");
        // The two low bits of the end marker's distance are ignored.
        assert_eq!(ok(&[0x11, 3, 0], 10), b"");
        assert_eq!(run(&[0x11, 0], 10), Err(InputOverrun));
        assert_eq!(run(&[], 10), Err(InputOverrun));
    }

    #[test]
    fn opening_literals() {
        // 18..20: 1–3 literals; 21..255: 4–238.
        assert_eq!(ok(&cat(&[&[18, b'x'], &END]), 16), b"x");
        assert_eq!(ok(&cat(&[&[20, b'a', b'b', b'c'], &END]), 16), b"abc");
        assert_eq!(ok(&cat(&[&[21], b"abcd", &END]), 16), b"abcd");
        let lit = ramp(238);
        assert_eq!(ok(&cat(&[&[255], &lit, &END]), 4096), lit);
        // Exactly the output size, and one byte short.
        assert_eq!(ok(&cat(&[&[255], &lit, &END]), 238), lit);
        assert_eq!(run(&cat(&[&[255], &lit, &END]), 237), Err(OutputOverrun));
    }

    #[test]
    fn literal_runs_after_no_literal() {
        // First byte 0..15: the instruction itself, a run of L + 3 literals.
        let lit = ramp(18);
        assert_eq!(ok(&cat(&[&[15], &lit, &END]), 64), lit);
        assert_eq!(ok(&cat(&[&[1], &lit[..4], &END]), 64), lit[..4]);
        // L = 0: 18 + the extension; each zero byte adds 255.
        for n in [19, 100, 18 + 255, 18 + 255 + 1, 300, 18 + 3 * 255 + 7, 4096] {
            let lit = ramp(n);
            assert_eq!(ok(&cat(&[&run_of(n), &lit, &END]), 4096), lit, "run of {n}");
            assert_eq!(ok(&cat(&[&run_of(n), &lit, &END]), n), lit, "run of {n}, exact");
        }
        // A match with no trailing literal, then a run: 0000LLLL is a run again.
        let s = cat(&[&[21], b"abcd", &[0x6c, 0], &[2], b"wxyzv", &END]);
        assert_eq!(ok(&s, 64), b"abcdabcdwxyzv");
    }

    #[test]
    fn near_matches_m2() {
        // 1LLDDDSS: length 5 + L, distance (H << 3) + D + 1; 01LDDDSS: 3 + L.
        let s = cat(&[&[21], b"abcd", &[0x80 | 3 << 5 | 3 << 2, 0], &END]);
        assert_eq!(ok(&s, 64), b"abcdabcdabcd");
        let s = cat(&[&[21], b"abcd", &[0x40 | 1 << 5 | 1 << 2 | 2, 0], b"XY", &END]);
        assert_eq!(ok(&s, 64), b"abcdcdcdXY");
        // H: distance 8 * 10 + 1 over a 100-byte ramp.
        let lit = ramp(100);
        let s = cat(&[&run_of(100), &lit, &[0x80 | 2 << 5, 10], &END]);
        let mut want = lit.clone();
        want.extend_from_slice(&lit[100 - 81..100 - 81 + 7]);
        assert_eq!(ok(&s, 4096), want);
    }

    #[test]
    fn short_matches_m1() {
        // After 1–3 literals, 0000DDSS HHHHHHHH copies 2 bytes from (H << 2) + D + 1.
        let s = cat(&[&[21], b"abcd", &[0x40 | 2 << 2 | 1, 0], b"Z", &[1 << 2 | 2, 0], b"PQ", &END]);
        assert_eq!(ok(&s, 64), b"abcdbcdZdZPQ");
        // After a run of 4 or more: 3 bytes from (H << 2) + D + 2049.
        let lit = ramp(3000);
        let mut s = run_of(3000);
        s.extend_from_slice(&lit);
        s.extend_from_slice(&[3 << 2 | 3, 100]);
        s.extend_from_slice(b"end");
        s.extend_from_slice(&END);
        let mut want = lit.clone();
        let from = 3000 - (100 * 4 + 3 + 2049);
        want.extend_from_slice(&lit[from..from + 3]);
        want.extend_from_slice(b"end");
        assert_eq!(ok(&s, 4096), want);
        // Too far back for the output so far.
        let s = cat(&[&[21], b"abcd", &[0x40 | 1, 0], b"e", &[0, 200], &END]);
        assert_eq!(run(&s, 64), Err(LookbehindOverrun));
    }

    #[test]
    fn middle_matches_m3() {
        // 001LLLLL then LE16: length L + 2, distance (LE16 >> 2) + 1, low bits the literals.
        let lit = ramp(40);
        let s = cat(&[&run_of(40), &lit, &[0x20 | 31, 39 << 2 | 1, 0], b"!", &END]);
        let mut want = lit.clone();
        want.extend_from_slice(&lit[..33]);
        want.push(b'!');
        assert_eq!(ok(&s, 4096), want);
        // A distance above 255 (the high byte), and L = 0: 33 + the extension.
        let lit = ramp(1000);
        let (d, v) = (999, 998 << 2);
        let s = cat(&[&run_of(1000), &lit, &[0x20, 0, 0, 2, v as u8, (v >> 8) as u8], &END]);
        let mut want = lit.clone();
        for _ in 0..33 + 2 * 255 + 2 {
            want.push(want[want.len() - d]);
        }
        assert_eq!(ok(&s, 4096), want);
    }

    #[test]
    fn far_matches_m4() {
        // 0001HLLL then LE16: distance 16384 + (H << 14) + (LE16 >> 2).
        let n = 50_000;
        let lit = ramp(n);
        let head = run_of(n);
        for (t, v, dist, len) in [
            (0x11u8, 1usize << 2, 16385usize, 3usize),
            (0x17, 5 << 2, 16389, 9),
            (0x19, 0, 32768, 3),
            (0x1f, 0x3ffe << 2, 16384 + 16384 + 0x3ffe, 9),
        ] {
            let s = cat(&[&head, &lit, &[t, v as u8, (v >> 8) as u8], &END]);
            let mut want = lit.clone();
            for _ in 0..len {
                want.push(want[want.len() - dist]);
            }
            assert_eq!(ok(&s, 64 * 1024), want, "{t:#x} {v:#x}");
        }
        // L = 0: 9 + the extension.
        let s = cat(&[&head, &lit, &[0x10, 0, 1, 4, 0], &END]);
        let mut want = lit.clone();
        for _ in 0..9 + 255 + 1 {
            want.push(want[want.len() - 16385]);
        }
        assert_eq!(ok(&s, 64 * 1024), want);
        // Distance past the output so far.
        let s = cat(&[&[21], b"abcd", &[0x11, 4, 0], &END]);
        assert_eq!(run(&s, 64), Err(LookbehindOverrun));
    }

    #[test]
    fn overlapping_matches() {
        // A run of one byte (distance 1) of every length class, and short periods.
        for len in [3usize, 8, 9, 15, 16, 17, 31, 32, 33, 34, 100, 255, 1000, 4000] {
            for dist in [1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17] {
                let lit = &b"0123456789abcdefghijklmnopq"[..dist.max(4)];
                let v = (dist - 1) << 2;
                let mut s = vec![(17 + lit.len()) as u8];
                s.extend_from_slice(lit);
                if len <= 33 {
                    s.push(0x20 | (len - 2) as u8);
                } else {
                    let ext = len - 33;
                    s.push(0x20);
                    s.extend(std::iter::repeat_n(0, (ext - 1) / 255));
                    s.push(((ext - 1) % 255 + 1) as u8);
                }
                s.extend_from_slice(&[v as u8, (v >> 8) as u8]);
                s.extend_from_slice(&END);
                let mut want = lit.to_vec();
                for _ in 0..len {
                    want.push(want[want.len() - dist]);
                }
                // Room to spare, and exactly the size (no room for chunked copies).
                assert_eq!(ok(&s, 8192), want, "dist {dist} len {len}");
                assert_eq!(ok(&s, want.len()), want, "dist {dist} len {len}, exact");
                assert_eq!(run(&s, want.len() - 1), Err(OutputOverrun));
            }
        }
    }

    #[test]
    fn lzo_rle_zero_runs() {
        // 17, version 1, then the stream; 00011LLL 0xfc|S 0xff X is a run of (L | X << 3) + 4 zeros.
        let s = cat(&[&[17, 1, 21], b"abcd", &[0x18 | 5, 0xfc | 2, 0xff, 3], b"xy", &END]);
        let mut want = b"abcd".to_vec();
        want.extend(std::iter::repeat_n(0, (5 | 3 << 3) + 4));
        want.extend_from_slice(b"xy");
        assert_eq!(ok(&s, 4096), want);
        assert_eq!(run(&s, want.len() - 3), Err(OutputOverrun));
        // Version 0: the same bytes are a far match, too far back here.
        let mut s0 = s.clone();
        s0[1] = 0;
        assert_eq!(run(&s0, 4096), Err(LookbehindOverrun));
    }

    #[test]
    fn malformed() {
        let good = cat(&[&[21], b"abcd", &[0x80 | 3 << 5 | 3 << 2, 0], &END]);
        assert_eq!(ok(&good, 64), b"abcdabcdabcd");
        // Every truncation fails; so do trailing bytes.
        for n in 0..good.len() {
            assert!(run(&good[..n], 64).is_err(), "truncated to {n}");
        }
        assert_eq!(run(&cat(&[&good, &[0]]), 64), Err(InputNotConsumed));
        // An end marker must have length 3.
        assert_eq!(run(&cat(&[&[21], b"abcd", &[0x12, 0, 0]]), 64), Err(BadEndMarker));
        assert_eq!(run(&cat(&[&[21], b"abcd", &[0x10, 1, 0, 0]]), 64), Err(BadEndMarker));
        // A match at the very start, and one past the only literal.
        assert_eq!(run(&[0x10, 1, 4, 0, 0x11, 0, 0], 64), Err(LookbehindOverrun));
        assert_eq!(run(&[18, b'a', 0x21, 8, 0, 0x11, 0, 0], 64), Err(LookbehindOverrun));
        // A run that extends past the input, a length extension that never ends.
        assert_eq!(run(&[0x0f, 1, 2, 3], 64), Err(InputOverrun));
        assert_eq!(run(&[0, 0, 0, 0, 0, 0], 64), Err(InputOverrun));
        assert_eq!(run(&[18, 1, 0x20, 0, 0, 0], 64), Err(InputOverrun));
        // A huge length claimed by zero bytes must fail cleanly.
        let mut s = vec![21, 1, 2, 3, 4, 0x20];
        s.extend(std::iter::repeat_n(0, 100_000));
        s.extend_from_slice(&[1, 4, 0, 0x11, 0, 0]);
        assert_eq!(run(&s, 4096), Err(OutputOverrun));
    }

    #[test]
    fn agrees_with_lzokay_on_its_own_output() {
        // Text, runs, periodic data, noise, and mixes of them, through lzokay's compressor.
        let mut x = 0x2545f4914f6cdd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let mut page = Vec::with_capacity(4096);
            while page.len() < 4096 {
                let r = rnd();
                let n = (r >> 8) as usize % 300 + 1;
                match r % 5 {
                    0 => page.extend(std::iter::repeat_n((r >> 32) as u8, n)),
                    1 => page.extend((0..n).map(|_| rnd() as u8)),
                    2 => page.extend(b"struct task_struct *p = current; ".iter().cycle().take(n)),
                    3 => {
                        let p = (r >> 20) as usize % 12 + 1;
                        let pat: Vec<u8> = (0..p).map(|_| rnd() as u8).collect();
                        page.extend(pat.iter().cycle().take(n));
                    }
                    _ => {
                        if page.len() > 8 {
                            let from = (r >> 24) as usize % page.len();
                            let take = n.min(page.len() - from);
                            page.extend_from_within(from..from + take);
                        }
                    }
                }
            }
            page.truncate(4096);
            let size = if round % 2 == 0 { 4096 } else { (round * 37) % 4096 + 1 };
            let page = &page[..size];
            let c = lzokay::compress::compress(page).unwrap();
            assert_eq!(ok(&c, size), page, "round {round}");
        }
    }
}
