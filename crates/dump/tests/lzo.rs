//! The reader's own LZO1X decoder (what `read_phys` uses for `page_desc.flags` = 2) on real
//! pages: the repository's dump recompressed with lzokay, and, when ../shared is beside the
//! checkout, makedumpfile's own LZO file of the same memory (written with liblzo2), read both
//! through `Dump` and page by page from its stored bytes. Then damaged streams: random
//! mutations and truncations of those real pages must decode or fail, never panic or write
//! past the page, and a stream that decodes must decode as lzokay's decoder reads it.

use lockscope_dump::raw::kdump::{header64, page_desc};
use lockscope_dump::{Compression, Dump, PageState, decode_page};
use std::path::{Path, PathBuf};

const PAGE: usize = 4096;
const LZO: u32 = 0x2;

fn repo_dump() -> Dump {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31");
    Dump::open(p).expect("the repository's test dump opens")
}

fn shared_case() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ipi_sleeping_holder.live");
    p.join("vmcore.mkd-lzo-d31").is_file().then_some(p)
}

/// Every page in release builds, every 37th in debug ones.
const STRIDE: usize = if cfg!(debug_assertions) { 37 } else { 1 };

/// The dumped pages of `d`, sampled with `STRIDE`: (PFN, bytes).
fn pages(d: &Dump) -> Vec<(u64, Vec<u8>)> {
    let mut buf = vec![0u8; PAGE];
    (0..d.metadata().max_pfn)
        .filter(|&pfn| d.page_state(pfn * PAGE as u64) == PageState::Dumped)
        .step_by(STRIDE)
        .map(|pfn| {
            d.read_phys(pfn * PAGE as u64, &mut buf).unwrap();
            (pfn, buf.clone())
        })
        .collect()
}

/// Our decoder into one page followed by guard bytes that must stay untouched.
fn ours(stream: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0x5au8; PAGE + 64];
    let r = decode_page(LZO, stream, &mut buf[..PAGE]).expect("LZO is a known method");
    assert!(buf[PAGE..].iter().all(|&b| b == 0x5a), "the decoder wrote past the page");
    r.then(|| buf[..PAGE].to_vec())
}

fn lzokay(stream: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; PAGE];
    matches!(lzokay::decompress::decompress(stream, &mut out), Ok(PAGE)).then_some(out)
}

/// The stored bytes of every LZO-compressed page of a plain (not flattened) 64-bit
/// little-endian kdump file, in PFN order: makedumpfile's own output, byte for byte.
fn stored_lzo_pages(file: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().unwrap()) as usize;
    let bs = u32_at(header64::BLOCK_SIZE);
    let (sub, bitmaps) = (u32_at(header64::SUB_HDR_SIZE), u32_at(header64::BITMAP_BLOCKS));
    assert_eq!(bs, PAGE);
    let bitmap2 = &file[(1 + sub + bitmaps / 2) * bs..(1 + sub + bitmaps) * bs];
    let dumped: usize = bitmap2.iter().map(|b| b.count_ones() as usize).sum();
    let descs = (1 + sub + bitmaps) * bs;
    (0..dumped)
        .filter_map(|i| {
            let d = descs + i * page_desc::LEN;
            let offset = u64::from_le_bytes(file[d..d + 8].try_into().unwrap()) as usize;
            let size = u32_at(d + page_desc::SIZE);
            (u32_at(d + page_desc::FLAGS) as u32 == LZO).then(|| file[offset..offset + size].to_vec())
        })
        .collect()
}

/// A small xorshift generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random change to a valid stream: bit flips, bytes replaced, inserted or removed,
/// truncation, trailing bytes, a run of zeros or 0xff (long lengths), two streams spliced.
fn mutate(rng: &mut Rng, s: &[u8], other: &[u8]) -> Vec<u8> {
    let mut m = s.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(m.len());
        match rng.below(9) {
            0 => {
                if !m.is_empty() {
                    m[at] ^= 1 << rng.below(8)
                }
            }
            1 => {
                if !m.is_empty() {
                    m[at] = rng.next() as u8
                }
            }
            2 => m.insert(at, rng.next() as u8),
            3 => {
                if !m.is_empty() {
                    m.remove(at);
                }
            }
            4 => m.truncate(at),
            5 => m.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
            6 => {
                let n = rng.below(40).min(m.len() - at);
                let v = if rng.next() & 1 == 0 { 0 } else { 0xff };
                m[at..at + n].fill(v);
            }
            7 => {
                let cut = rng.below(other.len());
                m.truncate(at);
                m.extend_from_slice(&other[cut..]);
            }
            _ => {
                // The first bytes: the opening literal run and the LZO-RLE prefix.
                if !m.is_empty() {
                    m[0] = [0, 1, 15, 16, 17, 18, 21, 22, 255][rng.below(9)];
                }
            }
        }
    }
    m
}

/// Mutations of `streams`: decoding never panics nor writes past the page, and whatever
/// decodes is what lzokay reads too (LZO-RLE streams, which lzokay does not know, aside).
fn mutations_never_misbehave(streams: &[Vec<u8>], rounds: usize, seed: u64) -> (usize, usize) {
    let mut rng = Rng(seed);
    let (mut decoded, mut failed) = (0, 0);
    for _ in 0..rounds {
        let s = &streams[rng.below(streams.len())];
        let other = &streams[rng.below(streams.len())];
        let m = mutate(&mut rng, s, other);
        match ours(&m) {
            Some(page) => {
                decoded += 1;
                if !(m.len() >= 5 && m[0] == 17) {
                    assert_eq!(lzokay(&m).as_deref(), Some(&page[..]), "lzokay reads {m:02x?} otherwise");
                }
            }
            None => {
                failed += 1;
                assert_eq!(lzokay(&m), None, "lzokay decodes {m:02x?}, we do not");
            }
        }
    }
    (decoded, failed)
}

#[test]
fn lzokay_pages_of_the_repository_dump_decode_byte_identical() {
    let d = repo_dump();
    let pages = pages(&d);
    assert!(pages.len() * STRIDE > 19_000, "{} pages", pages.len());
    let mut dict = lzokay::compress::Dict::new();
    let mut streams = Vec::new();
    for (pfn, page) in &pages {
        let c = lzokay::compress::compress_with_dict(page, &mut dict).unwrap();
        assert_eq!(ours(&c).as_deref(), Some(&page[..]), "pfn {pfn:#x}");
        // One byte more or less of output room: the page no longer fits, or is short.
        assert_eq!(decode_page(LZO, &c, &mut vec![0; PAGE - 1]), Some(false), "pfn {pfn:#x}");
        assert_eq!(decode_page(LZO, &c, &mut vec![0; PAGE + 1]), Some(false), "pfn {pfn:#x}");
        streams.push(c);
    }
    let rounds = if cfg!(debug_assertions) { 10_000 } else { 200_000 };
    let (ok, err) = mutations_never_misbehave(&streams, rounds, 0x9e3779b97f4a7c15);
    eprintln!("{ok} of {rounds} mutated streams decoded, {err} failed");
    assert!(ok > rounds / 50 && err > rounds / 2, "{ok} decoded, {err} failed");
}

#[test]
fn makedumpfile_lzo_file_reads_as_the_zlib_one() {
    let Some(case) = shared_case() else {
        eprintln!("note: ../shared/corpus not found; makedumpfile LZO file not checked");
        return;
    };
    let zlib = Dump::open(case.join("vmcore.mkd-zlib-d31")).unwrap();
    let lzo = Dump::open(case.join("vmcore.mkd-lzo-d31")).unwrap();
    assert_eq!(lzo.metadata().compression, Compression::Lzo);
    // Through the reader: every dumped page (sampled in debug builds) reads the same.
    let mut got = vec![0u8; PAGE];
    let want = pages(&zlib);
    for (pfn, page) in &want {
        assert_eq!(lzo.page_state(pfn * PAGE as u64), PageState::Dumped, "pfn {pfn:#x}");
        lzo.read_phys(pfn * PAGE as u64, &mut got).unwrap_or_else(|e| panic!("pfn {pfn:#x}: {e}"));
        assert!(&got == page, "pfn {pfn:#x} differs from the zlib file");
    }
    // Page by page from the stored bytes: every LZO page (the others makedumpfile stored
    // raw) decodes as lzokay decodes it, and the decoded pages are the zlib file's pages.
    let file = std::fs::read(case.join("vmcore.mkd-lzo-d31")).unwrap();
    let stored = stored_lzo_pages(&file);
    assert!(stored.len() > 13_000, "{} LZO pages", stored.len());
    let mut all: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    if STRIDE == 1 {
        all.extend(want.into_iter().map(|(_, p)| p));
    }
    for (i, s) in stored.iter().enumerate().step_by(STRIDE) {
        let page = ours(s).unwrap_or_else(|| panic!("LZO page {i} does not decode"));
        assert_eq!(lzokay(s).as_deref(), Some(&page[..]), "LZO page {i}: lzokay reads it otherwise");
        assert!(STRIDE > 1 || all.contains(&page), "LZO page {i} is no page of the zlib file");
    }
    let sample: Vec<Vec<u8>> = stored.into_iter().step_by(STRIDE).collect();
    let rounds = if cfg!(debug_assertions) { 10_000 } else { 200_000 };
    let (ok, err) = mutations_never_misbehave(&sample, rounds, 0x2545f4914f6cdd1d);
    eprintln!("{ok} of {rounds} mutated streams decoded, {err} failed");
    assert!(ok > rounds / 50 && err > rounds / 2, "{ok} decoded, {err} failed");
}

#[test]
fn truncated_and_extended_real_pages_fail() {
    let d = repo_dump();
    let mut dict = lzokay::compress::Dict::new();
    for (pfn, page) in pages(&d).iter().step_by(if cfg!(debug_assertions) { 25 } else { 97 }) {
        let c = lzokay::compress::compress_with_dict(page, &mut dict).unwrap();
        for n in 0..c.len() {
            assert_eq!(decode_page(LZO, &c[..n], &mut vec![0; PAGE]), Some(false), "pfn {pfn:#x} cut to {n}");
        }
        for extra in [&[0u8][..], &[0x11, 0, 0], &c] {
            let s = [&c[..], extra].concat();
            assert_eq!(decode_page(LZO, &s, &mut vec![0; PAGE]), Some(false), "pfn {pfn:#x} + {extra:02x?}");
        }
    }
}

/// What the `lzo` fuzz target checks (fuzz/fuzz_targets/lzo.rs), on stable: `Err` says what
/// broke. `Ok(true)` when lzokay decodes the bytes (or ours does, for LZO-RLE).
fn fuzz_checks(data: &[u8]) -> Result<bool, String> {
    let mut page = vec![0x5au8; PAGE + 64];
    let ours = decode_page(LZO, data, &mut page[..PAGE]) == Some(true);
    if page[PAGE..].iter().any(|&b| b != 0x5a) {
        return Err("wrote past the page".into());
    }
    let rle = data.len() >= 5 && data[0] == 17;
    let mut want = vec![0u8; 1 << 16];
    match lzokay::decompress::decompress(data, &mut want) {
        Ok(n) => {
            let mut out = vec![0u8; n];
            if rle || decode_page(LZO, data, &mut out) != Some(true) || out != want[..n] {
                return Err(format!("lzokay decodes {n} bytes, we do not"));
            }
            if (n > 0 && decode_page(LZO, data, &mut vec![0u8; n - 1]) != Some(false))
                || decode_page(LZO, data, &mut vec![0u8; n + 1]) != Some(false)
                || ours != (n == PAGE)
            {
                return Err(format!("{n} bytes: the output room is not checked"));
            }
            Ok(true)
        }
        Err(_) if ours && !rle => Err("we decode a page lzokay rejects".into()),
        // An LZO-RLE stream "decodes" when it fills some output size up to a page.
        Err(_) => Ok(rle && (0..=PAGE).any(|n| decode_page(LZO, data, &mut page[..n]) == Some(true))),
    }
}

#[test]
fn fuzz_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let files = |sub: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(fuzz.join(sub).join("lzo"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let seeds = files("corpus");
    assert!(seeds.len() >= 8, "fuzz/corpus/lzo holds {} seeds", seeds.len());
    for path in seeds.iter().chain(&files("artifacts")) {
        let data = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let decodes = fuzz_checks(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The curated seeds (named, not libFuzzer's SHA-1 names) are all valid streams.
        if seeds.contains(path) && name.len() != 40 {
            assert!(decodes, "seed {name} does not decode");
        }
    }
}
