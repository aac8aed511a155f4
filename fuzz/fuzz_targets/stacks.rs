//! Patch records over task stacks and a module's ORC tables of the repository dump, then every CPU's and every D-state task's stack trace.
//! The body is `lockscope_fuzz_bodies::stacks`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::stacks(data));
