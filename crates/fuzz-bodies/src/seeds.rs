//! Seed inputs for each target, taken from the base dump's own bytes (`btf`: small blobs
//! built here, as the kernel's BTF is 4 MB). `examples/write_seeds.rs` writes them to
//! `fuzz/corpus/<target>/`.

use crate::btf::{build, s};
use crate::{Regions, base};
use lockscope_dump::Dump;
use lockscope_kernel::Kernel;

/// `(file name, bytes)` of a target's seeds.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "vmcoreinfo" => vmcoreinfo_seeds(),
        "printk_ring" => region_seeds(&base().printk, 4096),
        "kallsyms" => region_seeds(&base().kallsyms, 4096),
        "task_walk" => region_seeds(&base().tasks, 16384),
        "stacks" => region_seeds(&base().stacks, 16384),
        "btf" => btf_seeds(),
        _ => Vec::new(),
    }
}

fn vmcoreinfo_seeds() -> Vec<(String, Vec<u8>)> {
    let real = String::from_utf8_lossy(&base().vmcoreinfo).into_owned();
    let edit = |from: &str, to: &str| {
        real.lines()
            .map(|l| if l.starts_with(from) { to.to_string() } else { l.to_string() } + "\n")
            .collect::<String>()
    };
    let mut out = vec![("real".to_string(), real.clone().into_bytes())];
    for (name, from, to) in [
        ("pagesize-8192", "PAGESIZE=", "PAGESIZE=8192"),
        ("no-prb", "SYMBOL(prb)=", ""),
        ("no-kallsyms-names", "SYMBOL(kallsyms_names)=", ""),
        ("phys-base-hex", "NUMBER(phys_base)=", "NUMBER(phys_base)=0xffffffffff600000"),
    ] {
        out.push((name.to_string(), edit(from, to).into_bytes()));
    }
    out
}

/// Windows of the real bytes at the start of each named region, and one input patching the
/// start of every region at once.
fn region_seeds(r: &Regions, window: usize) -> Vec<(String, Vec<u8>)> {
    let k = Kernel::new(Dump::from_shared(base().image.clone()).expect("base")).expect("kernel");
    let mut all = Vec::new();
    let mut out = Vec::new();
    for (i, (name, start)) in r.starts.iter().enumerate() {
        let end = r.starts.get(i + 1).map_or(r.len(), |n| n.1);
        let bytes = r.read(&k, *start, window.min((end - start) as usize));
        let rec = Regions::record(*start, &bytes);
        all.extend_from_slice(&Regions::record(*start, &bytes[..bytes.len().min(64)]));
        out.push((name.replace(' ', "-"), rec));
    }
    out.push(("all-heads".to_string(), all));
    out
}

fn btf_seeds() -> Vec<(String, Vec<u8>)> {
    const INT: u32 = 1 << 24;
    const PTR: u32 = 2 << 24;
    const ARRAY: u32 = 3 << 24;
    const STRUCT: u32 = 4 << 24;
    const ENUM: u32 = 6 << 24;
    const TYPEDEF: u32 = 8 << 24;
    const VAR: u32 = 14 << 24;
    let types: &[(&str, u32, u32, &[u32])] = &[
        ("int", INT, 4, &[(1 << 24) | 32]),                        // 1
        ("unsigned long", INT, 8, &[64]),                          // 2
        ("list_head", STRUCT | 2, 16, &[s(0), 4, 0, s(1), 4, 64]), // 3
        ("", PTR, 3, &[]),                                         // 4
        ("", ARRAY, 0, &[6, 1, 16]),                               // 5
        ("char", INT, 1, &[(2 << 24) | 8]),                        // 6
        ("task_struct", STRUCT | 4, 64, &[s(2), 8, 0, s(3), 3, 64, s(4), 5, 192, s(5), 2, 320]), // 7
        ("pid_t", TYPEDEF, 1, &[]),                                // 8
        ("task_state", ENUM | 2, 4, &[s(6), 0, s(7), 64]),         // 9
        ("", PTR, 6, &[]),                                         // 10
        ("init_task", VAR, 7, &[1]),                               // 11
    ];
    let names = ["next", "prev", "pid", "tasks", "comm", "state", "TASK_RUNNING", "TASK_DEAD"];
    let full = build(types, &names);
    let mut out = vec![("small".to_string(), full.clone())];
    out.push(("ints-only".to_string(), build(&types[..2], &names)));
    let mut big_endian = full.clone();
    big_endian[..2].copy_from_slice(&[0xeb, 0x9f]);
    out.push(("wrong-endian".to_string(), big_endian));
    out
}
