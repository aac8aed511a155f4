//! Any bytes as a BTF blob, then type look-ups, member paths and C names.
//! The body is `lockscope_fuzz_bodies::btf`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::btf(data));
