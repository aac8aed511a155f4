//! Patch records over task structs, CPU 0's run queue and the module list of the repository dump, then the task walk, CPUs and modules.
//! The body is `lockscope_fuzz_bodies::task_walk`, which the stable replay runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lockscope_fuzz_bodies::task_walk(data));
