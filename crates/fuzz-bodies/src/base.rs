//! The base every dump target patches: the repository's real dump (or `$LOCKSCOPE_FUZZ_DUMP`),
//! decoded once per process into an uncompressed kdump image in memory, and the regions of
//! kernel data each target writes over, found by reading it.

use crate::Regions;
use lockscope_dump::{Compression, Dump, WriteOptions, write_kdump_to_memory};
use lockscope_kernel::Kernel;
use std::sync::{Arc, OnceLock};

/// The shared base image and the targets' regions.
pub struct Base {
    pub image: Arc<[u8]>,
    /// The printk ring: control block, descriptors, infos, text.
    pub printk: Regions,
    /// The kallsyms tables.
    pub kallsyms: Regions,
    /// init_task and a few tasks, CPU 0's run queue, the module list head and first module.
    pub tasks: Regions,
    /// The stacks of the tasks in D state and of every CPU's current task, and the first
    /// module's ORC tables.
    pub stacks: Regions,
    /// The dump's own VMCOREINFO text.
    pub vmcoreinfo: Vec<u8>,
    /// The same with `SYMBOL()` lines for the globals the task walk reads, so that it does
    /// not decode kallsyms for each input (task_walk does not fuzz them).
    pub task_vmcoreinfo: Vec<u8>,
}

/// Globals the task walk, CPUs and modules look up.
const TASK_GLOBALS: [&str; 13] = [
    "init_task",
    "runqueues",
    "__per_cpu_offset",
    "nr_cpu_ids",
    "__cpu_online_mask",
    "__cpu_possible_mask",
    "__cpu_present_mask",
    "__cpu_active_mask",
    "modules",
    "__start_BTF",
    "__stop_BTF",
    "btf_modules",
    "jiffies_64",
];

fn with_symbols(k: &Kernel, text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    for name in TASK_GLOBALS {
        if let Ok(a) = k.symbol(name) {
            out.extend_from_slice(format!("SYMBOL({name})={a:x}\n").as_bytes());
        }
    }
    out
}

/// The repository's dump, unless `LOCKSCOPE_FUZZ_DUMP` names another.
pub fn dump_path() -> std::path::PathBuf {
    std::env::var_os("LOCKSCOPE_FUZZ_DUMP").map(Into::into).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/dumps/ipi_sleeping_holder.live.mkd-zlib-d31")
    })
}

/// Loaded on first use, once per process.
pub fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| load().unwrap_or_else(|e| panic!("fuzz base {}: {e}", dump_path().display())))
}

fn load() -> Result<Base, String> {
    let dump = Dump::open(dump_path()).map_err(|e| e.to_string())?;
    let opts = WriteOptions { threads: 2, ..WriteOptions::new(Compression::None) };
    let (files, _) = write_kdump_to_memory(&dump, 1, &opts).map_err(|e| e.to_string())?;
    let image: Arc<[u8]> = files.into_iter().next().ok_or("no file written")?.into();
    let k = Kernel::new(Dump::from_shared(image.clone()).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let vmcoreinfo = dump.notes().vmcoreinfo.clone().unwrap_or_default();
    Ok(Base {
        printk: printk_regions(&k).ok_or("the printk ring cannot be located")?,
        kallsyms: kallsyms_regions(&k),
        tasks: task_regions(&k).map_err(|e| e.to_string())?,
        stacks: stack_regions(&k).map_err(|e| e.to_string())?,
        task_vmcoreinfo: with_symbols(&k, &vmcoreinfo),
        image,
        vmcoreinfo,
    })
}

fn printk_regions(k: &Kernel) -> Option<Regions> {
    let vi = k.vmcoreinfo();
    let (m, off) = (k.memory(), |key| vi.offset(key));
    let prb = m.read_u64(vi.symbol("prb")?).ok()?;
    let desc_ring = prb + off("printk_ringbuffer.desc_ring")?;
    let text_ring = prb + off("printk_ringbuffer.text_data_ring")?;
    let count = 1u64 << m.read_u32(desc_ring + off("prb_desc_ring.count_bits")?).ok()?.min(20);
    let size = 1u64 << m.read_u32(text_ring + off("prb_data_ring.size_bits")?).ok()?.min(24);
    let mut r = Regions::default();
    r.add(k, "printk_ringbuffer", prb, vi.size("printk_ringbuffer")?);
    r.add(k, "descs", m.read_u64(desc_ring + off("prb_desc_ring.descs")?).ok()?, count * vi.size("prb_desc")?);
    r.add(k, "infos", m.read_u64(desc_ring + off("prb_desc_ring.infos")?).ok()?, count * vi.size("printk_info")?);
    r.add(k, "text", m.read_u64(text_ring + off("prb_data_ring.data")?).ok()?, size);
    Some(r)
}

/// Each table up to the next one (kallsyms_markers, between names and the token table, is
/// included in the names), 2 MiB at most; the last table is the 256-entry token index.
fn kallsyms_regions(k: &Kernel) -> Regions {
    let names = [
        "kallsyms_offsets",
        "kallsyms_relative_base",
        "kallsyms_num_syms",
        "kallsyms_names",
        "kallsyms_token_table",
        "kallsyms_token_index",
    ];
    let mut found: Vec<(u64, &str)> = names.iter().filter_map(|n| Some((k.vmcoreinfo().symbol(n)?, *n))).collect();
    found.sort();
    let mut r = Regions::default();
    for (i, &(a, n)) in found.iter().enumerate() {
        let len = found.get(i + 1).map_or(512, |&(next, _)| (next - a).min(2 << 20));
        r.add(k, n, a, len);
    }
    r
}

fn task_regions(k: &Kernel) -> Result<Regions, lockscope_kernel::KernelError> {
    let mut r = Regions::default();
    let task_size = k.size_of("struct task_struct")?;
    for (i, t) in k.task_addresses()?.into_iter().take(8).enumerate() {
        r.add(k, &format!("task {i}"), t, task_size);
    }
    if let Ok(c) = k.cpus() {
        r.add(k, "cpu 0 rq", c[0].rq, k.size_of("struct rq")?);
    }
    let modules = k.symbol("modules")?;
    r.add(k, "modules", modules, 16);
    let list_off = k.offset_of("module", "list")?;
    let first = k
        .memory()
        .read_u64(modules)
        .map_err(|err| lockscope_kernel::KernelError::Memory { what: "modules".into(), err })?;
    r.add(k, "module 0", first.wrapping_sub(list_off), k.size_of("struct module")?);
    Ok(r)
}

fn stack_regions(k: &Kernel) -> Result<Regions, lockscope_kernel::KernelError> {
    let mut r = Regions::default();
    let (tasks, _) = k.tasks()?;
    for t in tasks.iter().filter(|t| t.state_code == "UN" || (t.current_on.is_some() && t.pid != 0)) {
        r.add(k, &format!("stack of pid {}", t.pid), t.stack, 16 << 10);
    }
    if let Some(m) = k.modules()?.first() {
        let arch = k.object(m.address, "struct module")?.member("arch")?;
        let n = arch.member("num_orcs")?.read_int()?.min(4096);
        r.add(k, "module orc_unwind_ip", arch.member("orc_unwind_ip")?.read_u64()?, n * 4);
        r.add(k, "module orc_unwind", arch.member("orc_unwind")?.read_u64()?, n * 6);
    }
    Ok(r)
}
