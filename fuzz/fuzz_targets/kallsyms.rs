//! Patch records over the repository dump's kallsyms tables, then the symbol table and its look-ups.
//! The body is `lockscope_fuzz_bodies::kallsyms`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::kallsyms(data));
