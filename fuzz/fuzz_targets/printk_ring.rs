//! Patch records over the repository dump's printk ring (control block, descriptors, infos, text), then `log()` and `render`.
//! The body is `lockscope_fuzz_bodies::printk_ring`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::printk_ring(data));
