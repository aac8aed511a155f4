//! Any bytes as the repository dump's VMCOREINFO, then the kernel view on it: log, symbols, the reads `sys` makes, the task list.
//! The body is `lockscope_fuzz_bodies::vmcoreinfo`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::vmcoreinfo(data));
