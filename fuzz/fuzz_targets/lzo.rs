//! Arbitrary bytes as one LZO1X page through the reader's own decoder (`decode_page` with
//! `page_desc.flags` = 2), against lzokay's decoder as the reference. Ours must never panic
//! nor write past the page; when lzokay decodes the bytes to n bytes, ours must decode them
//! to the same n bytes given exactly n bytes of room (and fail with one byte less or more);
//! when lzokay fails, ours must fail too, except on LZO-RLE streams (first byte 17 and at
//! least 5 bytes), which only ours reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockscope_dump::decode_page;

const LZO: u32 = 0x2;
const PAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut page = vec![0x5au8; PAGE + 64];
    let ours = decode_page(LZO, data, &mut page[..PAGE]).expect("LZO is a known method");
    assert!(page[PAGE..].iter().all(|&b| b == 0x5a), "wrote past the page");
    let rle = data.len() >= 5 && data[0] == 17;

    let mut want = vec![0u8; 1 << 16];
    match lzokay::decompress::decompress(data, &mut want) {
        Ok(n) => {
            assert!(!rle, "lzokay read a stream opening with 17");
            let mut out = vec![0u8; n];
            assert_eq!(decode_page(LZO, data, &mut out), Some(true), "lzokay decodes {n} bytes, we do not");
            assert!(out == want[..n], "decoded bytes differ from lzokay's");
            if n > 0 {
                assert_eq!(decode_page(LZO, data, &mut vec![0u8; n - 1]), Some(false), "{n} bytes fit in {}", n - 1);
            }
            assert_eq!(decode_page(LZO, data, &mut vec![0u8; n + 1]), Some(false), "{n} bytes fill {}", n + 1);
            assert_eq!(ours, n == PAGE);
            assert!(!ours || page[..PAGE] == want[..PAGE]);
        }
        Err(_) => assert!(!ours || rle, "we decode a page lzokay rejects"),
    }
});
