//! syzkaller-compatible titles for lockup and hang reports.
//!
//! syzbot names a lockup after one "guilty" function of the stuck stack
//! (`INFO: task hung in rtnl_lock`). Producing the same title lets a lockscope
//! report be matched against the syzbot dashboard and its known bugs. The rules
//! below restate, in our own tables, the behaviour of syzkaller's Linux report
//! parser: which part of the trace it reads for each kind of report, which
//! frames it never blames, how it reduces syscall wrapper names, and how it
//! picks a representative frame out of a looping stack.
//!
//! When no frame survives the rules, a console report is titled as syzkaller titles it,
//! `FAMILY in corrupted` (`INFO: task hung in corrupted`): the report was cut, interleaved
//! or printed only unreliable frames. A trace that did not come from a console (a crash
//! session's `bt`, a dump) is not a corrupted report, so it keeps the bare family.

use aho_corasick::AhoCorasick;
use lockscope_facts::Frame;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Which title family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TitleKind {
    SoftLockup,
    RcuStall,
    HungTask,
    TaskCantDie,
    /// Not a syzkaller title (syzbot sees hard lockups only as panics); named
    /// like a soft lockup and picked by the same rules.
    HardLockup,
}

impl TitleKind {
    /// The kind-neutral family of syzkaller's alternative title (`stall in F`).
    pub fn alt_family(self) -> &'static str {
        match self {
            TitleKind::SoftLockup | TitleKind::RcuStall | TitleKind::HardLockup => "stall",
            TitleKind::HungTask | TitleKind::TaskCantDie => "hang",
        }
    }

    /// The title without its `in FUNC` part.
    pub fn family(self) -> &'static str {
        match self {
            TitleKind::SoftLockup => "BUG: soft lockup",
            TitleKind::RcuStall => "INFO: rcu detected stall",
            TitleKind::HungTask => "INFO: task hung",
            TitleKind::TaskCantDie => "INFO: task can't die",
            TitleKind::HardLockup => "BUG: hard lockup",
        }
    }

    /// Patterns skipped for this kind only, on top of [`NEVER_GUILTY`].
    fn extra_skips(self) -> &'static [Pat] {
        match self {
            // The stall detector runs from the timer interrupt: its own frames
            // and every RCU function are noise.
            TitleKind::RcuStall => &[Pat::Sub("apic_timer_interrupt"), Pat::Sub("rcu")],
            TitleKind::TaskCantDie => &[Pat::Sub("schedule")],
            _ => &[],
        }
    }
}

/// The guilty function name for this report kind, given the frames in printed
/// order.
///
/// Expected input:
/// - soft/hard lockup: the interrupted IP (`RIP:`/`pc :` function) first, then
///   the `Call Trace` of the stuck CPU;
/// - RCU stall: the trace that shows the timer interrupt (`*apic_timer_interrupt`,
///   `el1h_64_irq`, ...) with the interrupted IP inserted where the `RIP:` line was
///   printed; only the frames after the interrupt entry are considered;
/// - hung task / can't die: the task's `Call Trace`.
///
/// Frames printed with `?` (`reliable == false`) are ignored, as syzkaller drops
/// those lines.
pub fn guilty_frame(kind: TitleKind, stack: &[Frame]) -> Option<String> {
    guilty(kind, stack).map(|g| g.canonical)
}

/// The guilty frame as printed (`raw`: `__se_sys_io_uring_register`) and as the title
/// names it (`canonical`: `io_uring_register`, the syscall wrapper prefix removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guilty {
    pub raw: String,
    pub canonical: String,
}

/// [`guilty_frame`], with the frame as printed.
pub fn guilty(kind: TitleKind, stack: &[Frame]) -> Option<Guilty> {
    let mut reliable: Vec<&str> =
        stack.iter().filter(|f| f.reliable && !is_inline(f)).map(|f| base_name(&f.function)).collect();
    // A fault-injection dump (`should_fail`, `should_failslab`) printed at the same time is
    // interleaved with the trace: as syzkaller, read the trace only up to it.
    if let Some(i) = reliable.iter().position(|n| matches!(*n, "should_fail" | "should_failslab")) {
        reliable.truncate(i);
    }
    let considered: &[&str] = match kind {
        TitleKind::RcuStall => match reliable.iter().position(|n| is_interrupt_entry(n)) {
            Some(i) => &reliable[i + 1..],
            // syzkaller reads only past the interrupt entry; without one it gives up.
            None => return None,
        },
        _ => &reliable,
    };
    let extra = kind.extra_skips();
    let raw: Vec<&str> =
        considered.iter().copied().filter(|n| !n.is_empty() && !never_guilty(n) && !matches_any(extra, n)).collect();
    let names: Vec<&str> = raw.iter().map(|n| strip_syscall_prefix(n)).collect();
    let (canonical, i) = match kind {
        TitleKind::SoftLockup | TitleKind::HardLockup | TitleKind::RcuStall => stall_frame(&names)?,
        TitleKind::HungTask => hung_frame(&names)?,
        TitleKind::TaskCantDie => (names.first()?.to_string(), 0),
    };
    Some(Guilty { raw: raw[i].to_string(), canonical })
}

/// A lockup's title with the alternative titles syzbot matches known bugs by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Titled {
    pub title: String,
    pub guilty: Option<String>,
    pub alt_titles: Vec<String>,
}

/// The title of a console report of `kind` with this stack, and its alternatives.
///
/// A lockup that lasts reports the same stack again and again: titles are kept per thread
/// by the frames that decide them (the reliable, not inlined names), up to a bound.
pub fn titled(kind: TitleKind, stack: &[Frame]) -> Titled {
    const KEPT: usize = 4096;
    thread_local! {
        static KNOWN: std::cell::RefCell<HashMap<(TitleKind, String), Titled>> = Default::default();
    }
    let mut names = String::with_capacity(stack.len() * 24);
    for f in stack.iter().filter(|f| f.reliable && !is_inline(f)) {
        names.push_str(base_name(&f.function));
        names.push('\n');
    }
    let key = (kind, names);
    if let Some(t) = KNOWN.with_borrow(|k| k.get(&key).cloned()) {
        return t;
    }
    let t = titled_afresh(kind, stack);
    KNOWN.with_borrow_mut(|k| {
        if k.len() >= KEPT {
            k.clear();
        }
        k.insert(key, t.clone());
    });
    t
}

fn titled_afresh(kind: TitleKind, stack: &[Frame]) -> Titled {
    let g = guilty(kind, stack);
    Titled {
        title: title_with(kind, g.as_ref().map(|g| g.canonical.as_str())),
        alt_titles: alt_titles(kind, g.as_ref()),
        guilty: g.map(|g| g.canonical),
    }
}

/// syzkaller's alternative titles: the kind-neutral `stall in F` / `hang in F` (so that a
/// soft lockup and an RCU stall in one function are one bug), and the titles made from
/// the frame as printed with each syscall prefix removed in turn (`INFO: task hung in
/// sys_io_uring_register` for `__se_sys_io_uring_register`), under which older bugs were
/// filed.
pub fn alt_titles(kind: TitleKind, g: Option<&Guilty>) -> Vec<String> {
    let canonical = g.map_or(CORRUPTED, |g| g.canonical.as_str());
    let title = title_with(kind, Some(canonical));
    let mut alts = vec![format!("{} in {canonical}", kind.alt_family())];
    if let Some(g) = g {
        let raw = g.raw.as_str();
        let variants = std::iter::once(raw).chain(SYSCALL_PREFIXES.iter().filter_map(|p| raw.strip_prefix(p)));
        for v in variants {
            let full = title_with(kind, Some(v));
            if full != title {
                alts.push(full);
            }
            alts.push(format!("{} in {v}", kind.alt_family()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    alts.retain(|a| seen.insert(a.clone()));
    alts
}

/// A console frame printed without an offset: a function inlined into the next frame
/// (`context_switch kernel/sched/core.c:5380 [inline]`). syzkaller reads a frame only
/// where `+offset` follows the name, so the function it was inlined into stands for it.
/// Frames unwound from memory (they carry a stack pointer) are real calls.
pub(crate) fn is_inline(f: &Frame) -> bool {
    f.offset.is_none() && f.stack_pointer.is_none()
}

/// The full title, e.g. "INFO: task hung in read_cache_folio".
pub fn lockup_title(kind: TitleKind, stack: &[Frame]) -> String {
    title_with(kind, guilty_frame(kind, stack).as_deref())
}

/// The title of a console report of `kind` blaming `guilty`; without one, syzkaller's
/// `FAMILY in corrupted`.
pub fn title_with(kind: TitleKind, guilty: Option<&str>) -> String {
    format!("{} in {}", kind.family(), guilty.unwrap_or(CORRUPTED))
}

/// The frame syzkaller names when it could extract none.
pub const CORRUPTED: &str = "corrupted";

/// The function name as syzkaller keys it: compiler suffixes (`.isra.0`,
/// `.cold`, `.constprop.0`) removed.
pub(crate) fn base_name(function: &str) -> &str {
    let name = function.trim();
    name.split('.').next().unwrap_or(name)
}

/// Where the interrupted context begins in a trace printed from the timer
/// interrupt: x86 (`apic_timer_interrupt`, `asm_sysvec_apic_timer_interrupt`),
/// arm64 (`el1h_64_irq`, `el1_irq` before 5.13) and arm32 (the `__irq_svc`
/// frame that precedes the `Exception stack` dump).
pub(crate) fn is_interrupt_entry(name: &str) -> bool {
    name.contains("apic_timer_interrupt") || name.contains("el1h_64_irq") || name == "el1_irq" || name == "__irq_svc"
}

/// Syscall wrapper prefixes, per architecture and kernel era. The longest one
/// that matches is removed (only one), so `__x64_sys_ioctl` becomes `sys_ioctl`
/// while `__se_sys_ioctl`, `__do_sys_ioctl`, `ksys_ioctl` and `SyS_ioctl` become
/// `ioctl`.
const SYSCALL_PREFIXES: &[&str] = &[
    "SYSC_",
    "SyS_",
    "sys_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_",
    "__se_sys_",
    "__do_sys_",
    "compat_SYSC_",
    "compat_SyS_",
    "ksys_",
];

fn strip_syscall_prefix(name: &str) -> &str {
    SYSCALL_PREFIXES.iter().filter_map(|p| name.strip_prefix(p)).min_by_key(|rest| rest.len()).unwrap_or(name)
}

/// Stalls loop over several functions, so the top frame is arbitrary. Blame
/// instead the frame just above the first "dispatcher" (syscall entry, work
/// item, timer, softirq, VFS or socket entry point...): the handler that the
/// dispatcher called. A CPU stuck in a cross-CPU call is blamed on
/// `smp_call_function` itself, whatever the variant.
fn stall_frame(names: &[&str]) -> Option<(String, usize)> {
    let mut prev = (*names.first()?, 0);
    for (i, &name) in names.iter().enumerate() {
        if is_stall_dispatcher(name) {
            if name.contains("smp_call_function") {
                return Some(("smp_call_function".to_string(), i));
            }
            return Some((prev.0.to_string(), prev.1));
        }
        prev = (name, i);
    }
    None
}

/// Hung tasks show the victim, not the culprit. Waits on RTNL and on RCU grace
/// periods are grouped into one title each; otherwise the first frame that is
/// not a generic sleeping/locking primitive is blamed.
fn hung_frame(names: &[&str]) -> Option<(String, usize)> {
    for (i, &name) in names.iter().enumerate() {
        if name.contains("rtnl_lock") {
            return Some((name.to_string(), i));
        }
        if ["synchronize_rcu", "synchronize_srcu", "synchronize_net", "synchronize_sched"]
            .iter()
            .any(|a| name.contains(a))
        {
            return Some(("synchronize_rcu".to_string(), i));
        }
    }
    const WAITING: &[&str] = &[
        "sched",
        "_lock",
        "_slowlock",
        "down",
        "rwsem",
        "completion",
        "kthread",
        "wait",
        "synchronize",
        "context_switch",
        "__switch_to",
        "cancel_delayed_work",
        "rcu_barrier",
    ];
    names.iter().position(|n| !WAITING.iter().any(|w| n.contains(w))).map(|i| (names[i].to_string(), i))
}

/// A name pattern. Plain substrings are the common case.
enum Pat {
    Sub(&'static str),
    Prefix(&'static str),
    Suffix(&'static str),
    Exact(&'static str),
    Test(fn(&str) -> bool),
}

impl Pat {
    fn matches(&self, name: &str) -> bool {
        match *self {
            Pat::Sub(s) => name.contains(s),
            Pat::Prefix(s) => name.starts_with(s),
            Pat::Suffix(s) => name.ends_with(s),
            Pat::Exact(s) => name == s,
            Pat::Test(f) => f(name),
        }
    }
}

fn matches_any(pats: &[Pat], name: &str) -> bool {
    pats.iter().any(|p| p.matches(name))
}

/// A pattern table made fast: its plain substrings go through one automaton, the rest
/// are tried in turn. Frame names of every lockup go through these tables.
struct PatTable {
    subs: AhoCorasick,
    others: Vec<&'static Pat>,
}

impl PatTable {
    fn new(pats: &'static [Pat]) -> PatTable {
        let subs = pats.iter().filter_map(|p| match p {
            Pat::Sub(s) => Some(*s),
            _ => None,
        });
        let others = pats.iter().filter(|p| !matches!(p, Pat::Sub(_))).collect();
        PatTable { subs: AhoCorasick::new(subs).expect("static pattern table"), others }
    }

    fn matches(&self, name: &str) -> bool {
        self.subs.is_match(name) || self.others.iter().any(|p| p.matches(name))
    }
}

/// `matches_any(NEVER_GUILTY, name)`, through a [`PatTable`]: the table holds hundreds
/// of substrings.
fn never_guilty(name: &str) -> bool {
    static TABLE: OnceLock<PatTable> = OnceLock::new();
    TABLE.get_or_init(|| PatTable::new(NEVER_GUILTY)).matches(name)
}

/// `matches_any(STALL_DISPATCHERS, name)`, through a [`PatTable`].
fn is_stall_dispatcher(name: &str) -> bool {
    static TABLE: OnceLock<PatTable> = OnceLock::new();
    TABLE.get_or_init(|| PatTable::new(STALL_DISPATCHERS)).matches(name)
}

/// `atomic_inc`, `atomic64_try_cmpxchg`, `arch_atomic_read`...
fn is_atomic_op(name: &str) -> bool {
    const OPS: &[&str] =
        &["dec", "inc", "read", "set", "or", "xor", "and", "add", "sub", "fetch", "xchg", "cmpxchg", "try"];
    ["atomic_", "atomic64_"]
        .iter()
        .any(|stem| name.match_indices(stem).any(|(i, _)| OPS.iter().any(|op| name[i + stem.len()..].starts_with(op))))
}

/// `read_once_word_nocheck` and friends: KASAN-free stack readers.
fn is_unchecked_once(name: &str) -> bool {
    ["read_once_", "write_once_"]
        .iter()
        .any(|stem| name.find(stem).is_some_and(|i| name[i + stem.len()..].contains("nocheck")))
}

/// `crc32`, `crc16_...`: checksum loops.
fn is_crc(name: &str) -> bool {
    name.strip_prefix("crc").is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Functions never blamed for any report: sanitizer and reporting machinery,
/// allocators, locking and atomic primitives, string/copy helpers, printing,
/// generic workqueue/device/USB plumbing, MMIO accessors, fault entry.
const NEVER_GUILTY: &[Pat] = &[
    // Sanitizers and the bug-reporting path itself.
    Pat::Sub("__sanitizer"),
    Pat::Sub("__asan"),
    Pat::Sub("kasan"),
    Pat::Sub("hwasan"),
    Pat::Sub("__msan"),
    Pat::Sub("kmsan"),
    Pat::Sub("kcsan_setup_watchpoint"),
    Pat::Sub("check_memory_region"),
    Pat::Sub("check_heap_object"),
    Pat::Sub("check_object"),
    Pat::Sub("read_word_at_a_time"),
    Pat::Test(is_unchecked_once),
    Pat::Sub("print_address_description"),
    Pat::Sub("panic"),
    Pat::Sub("invalid_op"),
    Pat::Sub("report_bug"),
    Pat::Sub("fixup_bug"),
    Pat::Sub("print_report"),
    Pat::Sub("print_usage_bug"),
    Pat::Sub("do_error"),
    Pat::Suffix("_trap"),
    Pat::Sub("do_trap"),
    Pat::Sub("program_check_exception"),
    Pat::Sub("program_check_common"),
    Pat::Sub("print_tainted"),
    Pat::Sub("__fortify_report"),
    Pat::Exact("get_taint"),
    Pat::Sub("assertfail"),
    // Stack dumping.
    Pat::Sub("show_stack"),
    Pat::Sub("dump_stack"),
    Pat::Sub("walk_stack"),
    Pat::Sub("dump_backtrace"),
    Pat::Sub("stack_trace_consume_entry"),
    Pat::Sub("arch_stack_walk"),
    Pat::Sub("stack_trace_save"),
    Pat::Sub("warn_slowpath"),
    Pat::Sub("warn_alloc"),
    Pat::Sub("warn_bogus"),
    Pat::Sub("__warn"),
    // Memory allocation and the page cache lookups that allocate.
    Pat::Sub("alloc_page"),
    Pat::Sub("malloc"),
    Pat::Sub("zalloc"),
    Pat::Sub("calloc"),
    Pat::Sub("krealloc"),
    Pat::Sub("kmem_cache"),
    Pat::Sub("allocate_slab"),
    Pat::Sub("__alloc_frozen_pages_noprof"),
    Pat::Sub("folio_alloc"),
    Pat::Sub("folio_unlock"),
    Pat::Sub("filemap_alloc_folio"),
    Pat::Sub("__filemap_get_folio"),
    Pat::Sub("find_or_create_page"),
    Pat::Sub("do_read_cache_folio"),
    Pat::Sub("read_cache_page"),
    Pat::Sub("pagecache_get_page"),
    Pat::Sub("grab_cache_page_write_begin"),
    Pat::Sub("slab_"),
    Pat::Exact("kfree"),
    Pat::Exact("kvfree"),
    Pat::Sub("kfree_skb"),
    Pat::Sub("memdup"),
    Pat::Sub("__phys_addr"),
    Pat::Sub("find_lock_entries"),
    Pat::Sub("truncate_inode_pages_range"),
    Pat::Sub("xas_start"),
    Pat::Sub("xas_load"),
    Pat::Sub("xas_find"),
    // Debug objects and annotations.
    Pat::Sub("debug_object"),
    Pat::Sub("timer_is_static_object"),
    Pat::Sub("work_is_static_object"),
    Pat::Sub("__might_fault"),
    Pat::Sub("might_fault"),
    Pat::Sub("might_sleep"),
    Pat::Sub("__might_resched"),
    Pat::Sub("seqprop_assert"),
    Pat::Sub("ref_tracker"),
    Pat::Sub("perf_trace"),
    // Lock debugging and lock primitives.
    Pat::Sub("print_unlock"),
    Pat::Sub("imbalance_bug"),
    Pat::Sub("lockdep"),
    Pat::Sub("lock_acquire"),
    Pat::Sub("lock_release"),
    Pat::Sub("lock_class"),
    Pat::Sub("mark_lock"),
    Pat::Sub("reacquire_held_locks"),
    Pat::Sub("mark_held_locks"),
    Pat::Sub("trace_hardirq"),
    Pat::Sub("trace_softirq"),
    Pat::Sub("lockdep_hardirq"),
    Pat::Sub("lockdep_softirq"),
    Pat::Sub("bh_enable"),
    Pat::Sub("bh_disable"),
    Pat::Sub("raw_spin_rq"),
    Pat::Sub("spin_lock"),
    Pat::Sub("spin_trylock"),
    Pat::Sub("spin_unlock"),
    Pat::Sub("read_lock"),
    Pat::Sub("read_trylock"),
    Pat::Sub("read_unlock"),
    Pat::Sub("write_lock"),
    Pat::Sub("write_trylock"),
    Pat::Sub("write_unlock"),
    Pat::Exact("down"),
    Pat::Sub("down_read"),
    Pat::Sub("down_write"),
    Pat::Sub("down_trylock"),
    Pat::Sub("up_read"),
    Pat::Sub("up_write"),
    Pat::Prefix("mutex_"),
    Pat::Prefix("__mutex_"),
    Pat::Prefix("rt_mutex_"),
    Pat::Sub("owner_on_cpu"),
    Pat::Sub("osq_lock"),
    Pat::Sub("osq_unlock"),
    Pat::Prefix("lock_page"),
    Pat::Prefix("unlock_page"),
    // Atomics, bit ops, reference counts, wakeups.
    Pat::Test(is_atomic_op),
    Pat::Sub("set_bit"),
    Pat::Sub("clear_bit"),
    Pat::Sub("change_bit"),
    Pat::Sub("test_bit"),
    Pat::Prefix("refcount_"),
    Pat::Prefix("kref_"),
    Pat::Sub("__wake_up"),
    Pat::Exact("complete"),
    Pat::Sub("wait_for_completion"),
    Pat::Sub("finish_wait"),
    // Memory and string helpers, user copies, formatting and printing.
    Pat::Sub("memcpy"),
    Pat::Sub("memcmp"),
    Pat::Sub("memset"),
    Pat::Sub("memchr"),
    Pat::Sub("memmove"),
    Pat::Sub("strcmp"),
    Pat::Sub("strncmp"),
    Pat::Sub("strcpy"),
    Pat::Sub("strlcpy"),
    Pat::Sub("strncpy"),
    Pat::Sub("strscpy"),
    Pat::Sub("strlen"),
    Pat::Sub("strstr"),
    Pat::Sub("strnstr"),
    Pat::Sub("strnlen"),
    Pat::Sub("strchr"),
    Pat::Sub("strdup"),
    Pat::Sub("strndup"),
    Pat::Sub("string"),
    Pat::Sub("pointer"),
    Pat::Sub("snprintf"),
    Pat::Sub("scnprintf"),
    Pat::Sub("kasprintf"),
    Pat::Sub("kvasprintf"),
    Pat::Sub("printk"),
    Pat::Sub("va_format"),
    Pat::Sub("dev_info"),
    Pat::Sub("dev_notice"),
    Pat::Sub("dev_warn"),
    Pat::Sub("dev_err"),
    Pat::Sub("dev_alert"),
    Pat::Sub("dev_crit"),
    Pat::Sub("dev_emerg"),
    Pat::Sub("hex_dump_to_buffer"),
    Pat::Sub("print_hex_dump"),
    Pat::Sub("copy_to_user"),
    Pat::Sub("copy_from_user"),
    Pat::Sub("copy_to_iter"),
    Pat::Sub("copy_from_iter"),
    Pat::Sub("copy_page_to_iter"),
    Pat::Sub("copy_page_from_iter"),
    Pat::Sub("copy_folio_to_iter"),
    Pat::Exact("copyin"),
    Pat::Exact("copyout"),
    Pat::Sub("put_user"),
    Pat::Sub("get_user"),
    Pat::Sub("extract_user_to_sg"),
    Pat::Sub("extract_iter_to_sg"),
    Pat::Test(is_crc),
    Pat::Sub("crc_itu_t"),
    // Lists and trees.
    Pat::Sub("list_add"),
    Pat::Sub("list_del"),
    Pat::Sub("list_replace"),
    Pat::Sub("list_move"),
    Pat::Sub("list_splice"),
    Pat::Prefix("rb_"),
    Pat::Prefix("__rb_"),
    Pat::Prefix("klist_"),
    Pat::Sub("rhashtable_lookup"),
    // Retpolines.
    Pat::Sub("_indirect_thunk_"),
    // Timers and workqueue plumbing.
    Pat::Sub("del_timer"),
    Pat::Sub("lock_timer_base"),
    Pat::Sub("__timer_delete_sync"),
    Pat::Sub("sk_stop_timer_sync"),
    Pat::Sub("__mod_timer"),
    Pat::Sub("flush_work"),
    Pat::Sub("__cancel_work_timer"),
    Pat::Sub("cancel_work_sync"),
    Pat::Sub("try_to_grab_pending"),
    Pat::Sub("flush_workqueue"),
    Pat::Sub("drain_workqueue"),
    Pat::Sub("destroy_workqueue"),
    Pat::Sub("queue_work"),
    Pat::Sub("insert_work"),
    Pat::Sub("__queue_delayed_work"),
    Pat::Sub("queue_delayed_work_on"),
    Pat::Sub("kthread_stop"),
    Pat::Sub("cleanup_srcu_struct"),
    // Device model, sysfs, networking and USB teardown helpers.
    Pat::Sub("kobject_"),
    Pat::Sub("add_uevent_var"),
    Pat::Sub("get_device_parent"),
    Pat::Sub("device_add"),
    Pat::Sub("device_del"),
    Pat::Sub("device_unregister"),
    Pat::Sub("device_destroy"),
    Pat::Sub("device_release"),
    Pat::Sub("devres_release_all"),
    Pat::Sub("device_for_each_child"),
    Pat::Sub("device_remove_file"),
    Pat::Exact("put_device"),
    Pat::Sub("hwrng_unregister"),
    Pat::Sub("i2c_del_adapter"),
    Pat::Sub("__unregister_client"),
    Pat::Sub("rollback_registered"),
    Pat::Sub("unregister_netdev"),
    Pat::Sub("sysfs_remove"),
    Pat::Sub("tty_unregister_device"),
    Pat::Sub("ida_free"),
    Pat::Sub("dummy_urb_enqueue"),
    Pat::Sub("usb_kill_urb"),
    Pat::Sub("usb_kill_anchored_urbs"),
    Pat::Sub("usb_control_msg"),
    Pat::Sub("usb_hcd_submit_urb"),
    Pat::Sub("usb_submit_urb"),
    // MMIO and port accessors.
    Pat::Suffix("readb"),
    Pat::Suffix("readw"),
    Pat::Suffix("readl"),
    Pat::Suffix("readq"),
    Pat::Suffix("writeb"),
    Pat::Suffix("writew"),
    Pat::Suffix("writel"),
    Pat::Suffix("writeq"),
    Pat::Sub("logic_in"),
    Pat::Sub("logic_out"),
    // Inode and dentry reference drops.
    Pat::Exact("iput"),
    Pat::Exact("iput_final"),
    Pat::Exact("ihold"),
    Pat::Sub("drop_nlink"),
    Pat::Sub("dput"),
    Pat::Sub("mark_buffer_dirty"),
    // arm64 synchronous exception (fault) entry.
    Pat::Sub("do_kernel_fault"),
    Pat::Sub("do_translation_fault"),
    Pat::Sub("do_mem_abort"),
    Pat::Sub("el1_abort"),
    Pat::Sub("el1h_64_sync"),
];

/// Generic dispatchers: the frame a stall is blamed on is the one they called.
const STALL_DISPATCHERS: &[Pat] = &[
    // Syscall entry, per architecture and era.
    Pat::Sub("do_syscall_"),
    Pat::Sub("do_fast_syscall_"),
    Pat::Sub("sysenter_dispatch"),
    Pat::Sub("tracesys_phase2"),
    Pat::Sub("el0_svc_handler"),
    Pat::Sub("invoke_syscall"),
    Pat::Sub("ret_fast_syscall"),
    // Deferred work, interrupts bottom halves, kernel threads.
    Pat::Sub("process_one_work"),
    Pat::Sub("netif_receive_skb"),
    Pat::Sub("do_softirq"),
    Pat::Sub("call_timer_fn"),
    Pat::Sub("_run_timers"),
    Pat::Sub("run_timer_softirq"),
    Pat::Sub("hrtimer_run"),
    Pat::Sub("run_ksoftirqd"),
    Pat::Sub("smpboot_thread_fn"),
    Pat::Exact("kthread"),
    Pat::Sub("start_secondary"),
    Pat::Sub("cpu_startup_entry"),
    Pat::Sub("ret_from_fork"),
    Pat::Sub("tasklet_action"),
    Pat::Sub("tasklet_hi_action"),
    Pat::Sub("smp_call_function"),
    // File operations: blame the driver/filesystem callback.
    Pat::Sub("vfs_write"),
    Pat::Sub("vfs_read"),
    Pat::Sub("vfs_iter_read"),
    Pat::Sub("vfs_iter_write"),
    Pat::Sub("do_iter_read"),
    Pat::Sub("do_iter_write"),
    Pat::Sub("do_iter_readv_writev"),
    Pat::Sub("call_read_iter"),
    Pat::Sub("call_write_iter"),
    Pat::Sub("new_sync_read"),
    Pat::Sub("new_sync_write"),
    Pat::Sub("vfs_ioctl"),
    Pat::Sub("ksys_ioctl"),
    Pat::Sub("compat_ioctl"),
    Pat::Sub("compat_sys_ioctl"),
    Pat::Sub("blkdev_driver_ioctl"),
    Pat::Sub("blkdev_ioctl"),
    Pat::Prefix("call_mmap"),
    Pat::Sub("mmap_region"),
    Pat::Sub("do_mmap"),
    Pat::Sub("do_dentry_open"),
    Pat::Sub("vfs_open"),
    // Socket operations: blame the protocol.
    Pat::Prefix("sock_sendmsg"),
    Pat::Prefix("sock_recvmsg"),
    Pat::Prefix("sock_release"),
    Pat::Prefix("__sock_release"),
    Pat::Exact("setsockopt"),
    Pat::Sub("kernel_setsockopt"),
    Pat::Sub("sock_common_setsockopt"),
    Pat::Exact("listen"),
    Pat::Sub("kernel_listen"),
    Pat::Sub("sk_common_release"),
    Pat::Prefix("sock_mmap"),
    Pat::Exact("accept"),
    Pat::Sub("kernel_accept"),
    Pat::Prefix("sock_do_ioctl"),
    Pat::Prefix("sock_ioctl"),
    Pat::Prefix("compat_sock_ioctl"),
    Pat::Prefix("nfnetlink_rcv_msg"),
    Pat::Prefix("rtnetlink_rcv_msg"),
    Pat::Prefix("netlink_dump"),
    Pat::Test(is_multiplexed_syscall),
    // Page faults.
    Pat::Sub("__do_fault"),
    Pat::Sub("do_page_fault"),
    Pat::Exact("page_fault"),
    // Work run on return to user space.
    Pat::Sub("__fput"),
    Pat::Sub("task_work_run"),
    Pat::Sub("exit_to_usermode"),
];

/// `ioctl`, `connect`, `socketpair` (optionally `sys_`-prefixed): syscalls whose
/// name says nothing, so the callee is blamed instead.
fn is_multiplexed_syscall(name: &str) -> bool {
    let name = name.strip_prefix("sys_").unwrap_or(name);
    ["socketpair", "connect", "ioctl"].iter().any(|s| name.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockscope_facts::FrameContext;

    /// Frames from a trace as printed, one per line: `? name` for unreliable frames,
    /// `name [inline]` for inlined ones (no offset), the others at offset 0x10,
    /// `<IRQ>`/`</IRQ>` (and NMI) markers switch the context like the kernel's.
    fn frames(spec: &str) -> Vec<Frame> {
        let mut context = FrameContext::Task;
        let mut out = Vec::new();
        for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line {
                "<IRQ>" => context = FrameContext::Irq,
                "<NMI>" => context = FrameContext::Nmi,
                "</IRQ>" | "</NMI>" => context = FrameContext::Task,
                _ => {
                    let (name, reliable) = match line.strip_prefix("? ") {
                        Some(name) => (name, false),
                        None => (line, true),
                    };
                    let (name, inline) = match name.strip_suffix(" [inline]") {
                        Some(name) => (name, true),
                        None => (name, false),
                    };
                    let mut frame = Frame::named(name);
                    frame.offset = (!inline).then_some(0x10);
                    frame.reliable = reliable;
                    frame.context = context;
                    out.push(frame);
                }
            }
        }
        out
    }

    #[test]
    fn never_guilty_automaton_agrees_with_the_table() {
        let names = [
            "__sanitizer_cov_trace_pc",
            "kasan_check_read",
            "_raw_spin_lock",
            "mutex_lock_nested",
            "down_write",
            "atomic_inc",
            "arch_atomic64_try_cmpxchg",
            "read_once_word_nocheck",
            "crc32_le",
            "memcpy",
            "printk",
            "process_one_work",
            "usb_submit_urb",
            "kmem_cache_alloc",
            "tcp_setsockopt",
            "p9_fd_close",
            "ext4_writepages",
            "sys_futex",
            "rtnl_lock",
            "synchronize_rcu",
            "do_syscall_64",
            "smp_call_function_single",
            "crc",
            "",
        ];
        for n in names {
            assert_eq!(never_guilty(n), matches_any(NEVER_GUILTY, n), "{n}");
            assert_eq!(is_stall_dispatcher(n), matches_any(STALL_DISPATCHERS, n), "{n}");
        }
    }

    #[test]
    fn syscall_prefixes_lose_their_longest_wrapper() {
        let cases = [
            ("__x64_sys_ioctl", "sys_ioctl"),
            ("__arm64_sys_openat", "sys_openat"),
            ("__ia32_sys_mount", "sys_mount"),
            ("__se_sys_ioctl", "ioctl"),
            ("__do_sys_ioctl", "ioctl"),
            ("ksys_ioctl", "ioctl"),
            ("SyS_ioctl", "ioctl"),
            ("sys_ioctl", "ioctl"),
            ("__sys_sendmsg", "sendmsg"),
            ("____sys_recvmsg", "recvmsg"),
            ("compat_SyS_mount", "mount"),
            ("vfs_ioctl", "vfs_ioctl"),
        ];
        for (raw, stripped) in cases {
            assert_eq!(strip_syscall_prefix(raw), stripped, "{raw}");
        }
    }

    #[test]
    fn compiler_suffixes_are_ignored() {
        assert_eq!(base_name("check_cpu_stall.isra.61"), "check_cpu_stall");
        assert_eq!(base_name("sched_show_task.cold"), "sched_show_task");
        let stack = frames(
            "
            hash_ip4_expire.isra.17
            ip_set_ad.isra.33
            nfnetlink_rcv_msg
            ",
        );
        assert_eq!(guilty_frame(TitleKind::SoftLockup, &stack).as_deref(), Some("ip_set_ad"));
    }

    #[test]
    fn empty_stack_gives_corrupted_titles() {
        assert_eq!(lockup_title(TitleKind::SoftLockup, &[]), "BUG: soft lockup in corrupted");
        assert_eq!(lockup_title(TitleKind::RcuStall, &[]), "INFO: rcu detected stall in corrupted");
        assert_eq!(lockup_title(TitleKind::HungTask, &[]), "INFO: task hung in corrupted");
        assert_eq!(lockup_title(TitleKind::TaskCantDie, &[]), "INFO: task can't die in corrupted");
        assert_eq!(lockup_title(TitleKind::HardLockup, &[]), "BUG: hard lockup in corrupted");
    }

    #[test]
    fn stall_without_dispatcher_has_no_guilty_frame() {
        // A truncated trace: syzkaller finds no dispatcher frame to anchor on.
        let stack = frames(
            "
            ip6_input_finish
            ip6_input
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in corrupted");
    }

    // File 65. x86_64 4.x, kworker spinning in smp_call_function_single: the
    // smp_call_function family is blamed as a whole.
    #[test]
    fn soft_lockup_in_cross_cpu_call() {
        let stack = frames(
            "
            smp_call_function_single
            smp_call_function_many
            on_each_cpu
            text_poke_bp
            __jump_label_transform.isra.0
            arch_jump_label_transform
            __jump_label_update
            jump_label_update
            static_key_slow_dec_cpuslocked
            jump_label_update_timeout
            process_one_work
            worker_thread
            kthread
            ret_from_fork
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in smp_call_function");
    }

    // File 266. Only `__x64_` is removed from `__x64_sys_rmdir`; the top frames are lock
    // and KASAN helpers.
    #[test]
    fn soft_lockup_x64_syscall_keeps_sys_prefix() {
        let stack = frames(
            "
            check_memory_region
            do_raw_spin_unlock
            _raw_spin_unlock
            d_walk
            shrink_dcache_parent
            vfs_rmdir
            do_rmdir
            __x64_sys_rmdir
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in sys_rmdir");
    }

    // File 535. arm64: `pc` function first, then the trace; netif_receive_skb_list_internal
    // is the dispatcher.
    #[test]
    fn soft_lockup_arm64_in_softirq() {
        let stack = frames(
            "
            _raw_spin_unlock_irqrestore
            _raw_spin_unlock_irqrestore
            debug_check_no_obj_freed
            slab_free_freelist_hook
            kmem_cache_free
            kfree_skbmem
            consume_skb
            __dev_kfree_skb_any
            napi_consume_skb
            free_old_xmit_skbs
            start_xmit
            dev_hard_start_xmit
            sch_direct_xmit
            __qdisc_run
            __dev_queue_xmit
            dev_queue_xmit
            ip_finish_output2
            __ip_finish_output
            ip_finish_output
            ip_output
            ip_local_out
            __ip_queue_xmit
            ip_queue_xmit
            __tcp_transmit_skb
            __tcp_send_ack.part.0
            tcp_send_ack
            __tcp_ack_snd_check
            tcp_rcv_established
            tcp_v4_do_rcv
            tcp_v4_rcv
            ip_protocol_deliver_rcu
            ip_local_deliver_finish
            ip_local_deliver
            ip_sublist_rcv_finish
            ip_sublist_rcv
            ip_list_rcv
            __netif_receive_skb_list_core
            netif_receive_skb_list_internal
            gro_normal_list.part.0
            net_rx_action
            _stext
            irq_exit
            __handle_domain_irq
            gic_handle_irq
            el1_irq
            kthread_should_stop
            smpboot_thread_fn
            kthread
            ret_from_fork
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in ip_list_rcv");
    }

    // File 67. x86 4.x with `?` frames; RIP in memcpy (skipped).
    #[test]
    fn soft_lockup_blames_caller_of_vfs_write() {
        let stack = frames(
            "
            memcpy
            mulaw_decode
            ? trace_hardirqs_on_caller
            ? snd_pcm_plugin_build_linear
            ? snd_pcm_plugin_client_channels
            ? io_src_channels
            mulaw_transfer
            ? lock_release
            ? mulaw_encode
            snd_pcm_plug_write_transfer
            ? snd_pcm_plug_client_channels_buf
            ? snd_pcm_format_physical_width
            ? snd_pcm_plug_client_channels_buf
            snd_pcm_oss_write2
            ? snd_pcm_oss_write3
            ? snd_pcm_oss_write2
            ? snd_pcm_oss_write2
            snd_pcm_oss_write
            ? snd_pcm_oss_ioctl_compat
            ? find_held_lock
            ? snd_pcm_oss_ioctl_compat
            __vfs_write
            ? rcu_note_context_switch
            ? kernel_read
            ? __might_sleep
            ? _cond_resched
            ? __inode_security_revalidate
            ? avc_policy_seqno
            ? selinux_file_permission
            ? security_file_permission
            ? rw_verify_area
            ? __fdget_raw
            vfs_write
            SyS_write
            ? __do_page_fault
            ? SyS_read
            ? do_fast_syscall_32
            ? SyS_read
            do_fast_syscall_32
            ? do_int80_syscall_32
            ? syscall_return_slowpath
            ? prepare_exit_to_usermode
            ? retint_user
            ? trace_hardirqs_off_thunk
            entry_SYSENTER_compat
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in snd_pcm_oss_write");
    }

    // File 296. `compat_SyS_mount` loses its whole prefix.
    #[test]
    fn soft_lockup_compat_syscall() {
        let stack = frames(
            "
            change_mnt_propagation
            umount_tree
            attach_recursive_mnt
            graft_tree
            do_mount
            compat_SyS_mount
            do_fast_syscall_32
            entry_SYSENTER_compat
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in mount");
    }

    // File 506. 5.x kworker: smp_call_function_single wins over process_one_work.
    #[test]
    fn soft_lockup_in_workqueue() {
        let stack = frames(
            "
            smp_call_function_single
            rcu_barrier
            fqdir_work_fn
            process_one_work
            worker_thread
            kthread
            ret_from_fork
            ",
        );
        assert_eq!(lockup_title(TitleKind::SoftLockup, &stack), "BUG: soft lockup in smp_call_function");
    }

    // File 278. Self-detected stall, x86 4.x: the reporter's own trace, read past
    // apic_timer_interrupt; RIP frame inserted after it.
    #[test]
    fn rcu_self_detected_x86() {
        let stack = frames(
            "
            <IRQ>
            dump_stack
            nmi_cpu_backtrace.cold.3
            nmi_trigger_cpumask_backtrace
            arch_trigger_cpumask_backtrace
            rcu_dump_cpu_stacks
            print_cpu_stall.cold.78
            rcu_check_callbacks
            update_process_times
            tick_sched_handle
            tick_sched_timer
            __hrtimer_run_queues
            hrtimer_interrupt
            smp_apic_timer_interrupt
            apic_timer_interrupt
            </IRQ>
            _raw_spin_unlock_irq
            finish_task_switch
            __schedule
            schedule
            futex_wait_queue_me
            futex_wait
            do_futex
            __x64_sys_futex
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in sys_futex");
    }

    // File 610. x86 5.10: `<IRQ>` part ends in __sysvec_apic_timer_interrupt, the task part
    // starts with asm_sysvec_apic_timer_interrupt, then the RIP frame.
    #[test]
    fn rcu_self_detected_x86_sysvec() {
        let stack = frames(
            "
            <IRQ>
            dump_stack
            nmi_cpu_backtrace.cold
            nmi_trigger_cpumask_backtrace
            arch_trigger_cpumask_backtrace
            rcu_dump_cpu_stacks
            rcu_sched_clock_irq.cold
            update_process_times
            tick_sched_handle
            tick_sched_timer
            __hrtimer_run_queues
            hrtimer_interrupt
            __sysvec_apic_timer_interrupt
            asm_call_irq_on_stack
            </IRQ>
            sysvec_apic_timer_interrupt
            asm_sysvec_apic_timer_interrupt
            count_memcg_event_mm.part.0
            handle_mm_fault
            do_user_addr_fault
            exc_page_fault
            asm_exc_page_fault
            copy_user_generic_unrolled
            __copy_msghdr_from_user
            ___sys_recvmsg
            do_recvmmsg
            __x64_sys_recvmmsg
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in sys_recvmmsg");
    }

    // File 688. arm64: the interrupted context starts after el1h_64_irq.
    #[test]
    fn rcu_self_detected_arm64() {
        let stack = frames(
            "
            walk_stackframe
            show_stack
            _sched_show_task
            dump_cpu_task
            rcu_dump_cpu_stacks
            print_cpu_stall
            check_cpu_stall
            rcu_sched_clock_irq
            update_process_times
            tick_sched_timer
            __hrtimer_run_queues
            hrtimer_interrupt
            arch_timer_handler_virt
            handle_percpu_devid_irq
            handle_domain_irq
            gic_handle_irq
            call_on_irq_stack
            do_interrupt_handler
            el1_interrupt
            el1h_64_irq_handler
            el1h_64_irq
            lock_acquire
            _raw_spin_lock_bh
            sk_msg_recvmsg
            tcp_bpf_recvmsg_parser
            inet_recvmsg
            ____sys_recvmsg
            do_recvmmsg
            __arm64_sys_recvmmsg
            invoke_syscall
            el0_svc_common
            do_el0_svc
            el0_svc
            el0t_64_sync_handler
            el0t_64_sync
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in sys_recvmmsg");
    }

    // File 547. arm32 `(func) from (caller)` lines, one frame per name: interrupted context
    // after __irq_svc.
    #[test]
    fn rcu_self_detected_arm32() {
        let stack = frames(
            "
            dump_backtrace
            show_stack
            show_stack
            dump_stack
            dump_stack
            nmi_cpu_backtrace
            nmi_cpu_backtrace
            nmi_trigger_cpumask_backtrace
            nmi_trigger_cpumask_backtrace
            arch_trigger_cpumask_backtrace
            arch_trigger_cpumask_backtrace
            rcu_dump_cpu_stacks
            rcu_dump_cpu_stacks
            rcu_sched_clock_irq
            rcu_sched_clock_irq
            update_process_times
            update_process_times
            tick_periodic
            tick_periodic
            tick_handle_periodic
            tick_handle_periodic
            arch_timer_handler_virt
            arch_timer_handler_virt
            handle_percpu_devid_irq
            handle_percpu_devid_irq
            __handle_domain_irq
            __handle_domain_irq
            gic_handle_irq
            gic_handle_irq
            __irq_svc
            __might_fault
            do_tcp_setsockopt.constprop.0
            do_tcp_setsockopt.constprop.0
            tcp_setsockopt
            tcp_setsockopt
            sock_common_setsockopt
            sock_common_setsockopt
            __sys_setsockopt
            __sys_setsockopt
            sys_setsockopt
            sys_setsockopt
            ret_fast_syscall
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in tcp_setsockopt");
    }

    // File 145. 4.x `detected stalls on CPUs`: the first trace through the timer interrupt
    // is the reporter's (print_other_cpu_stall).
    #[test]
    fn rcu_detected_by_other_old_kernel() {
        let stack = frames(
            "
            <IRQ>
            sched_show_task
            print_other_cpu_stall
            check_cpu_stall.isra.61
            rcu_check_callbacks
            update_process_times
            tick_sched_handle
            tick_sched_timer
            __hrtimer_run_queues
            hrtimer_interrupt
            smp_apic_timer_interrupt
            apic_timer_interrupt
            </IRQ>
            __sanitizer_cov_trace_pc
            <IRQ>
            __xfrm_decode_session
            __xfrm_policy_check
            rawv6_rcv
            raw6_local_deliver
            ip6_input_finish
            ip6_input
            ip6_rcv_finish
            ipv6_rcv
            __netif_receive_skb_core
            __netif_receive_skb
            process_backlog
            net_rx_action
            __do_softirq
            do_softirq_own_stack
            </IRQ>
            do_softirq.part.21
            __local_bh_enable_ip
            ip6_finish_output2
            ip6_fragment
            ip6_finish_output
            ip6_output
            ip6_local_out
            ip6_send_skb
            ip6_push_pending_frames
            rawv6_sendmsg
            inet_sendmsg
            sock_sendmsg
            SYSC_sendto
            SyS_sendto
            entry_SYSCALL_64_fastpath
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in ipv6_rcv");
    }

    // File 421. After the starved GP kthread's stack (no interrupt entry), the NMI
    // backtrace of CPU 0: a
    // timer softirq on top of an exiting task. Reading starts after the first timer interrupt
    // frame, so the task below the softirq is blamed. (`?` frames omitted.)
    #[test]
    fn rcu_stall_nested_irq_uses_first_interrupt_entry() {
        let stack = frames(
            "
            hhf_dequeue
            <IRQ>
            __qdisc_run
            __dev_queue_xmit
            dev_queue_xmit
            br_dev_queue_push_xmit
            br_forward_finish
            __br_forward
            deliver_clone
            maybe_deliver
            br_flood
            br_dev_xmit
            dev_hard_start_xmit
            __dev_queue_xmit
            dev_queue_xmit
            ip_finish_output2
            __ip_finish_output
            ip_finish_output
            ip_output
            ip_local_out
            igmpv3_sendpack
            igmp_ifc_timer_expire
            call_timer_fn
            run_timer_softirq
            __do_softirq
            irq_exit
            smp_apic_timer_interrupt
            apic_timer_interrupt
            </IRQ>
            _raw_write_unlock_irq
            do_exit
            do_group_exit
            __x64_sys_exit_group
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in sys_exit_group");
    }

    // File 275. The RIP frame smp_call_function_single is kept.
    #[test]
    fn rcu_reporter_waiting_in_smp_call_function() {
        let stack = frames(
            "
            <IRQ>
            sched_show_task.cold.85
            print_other_cpu_stall.cold.79
            rcu_check_callbacks
            update_process_times
            tick_sched_handle
            tick_sched_timer
            __hrtimer_run_queues
            hrtimer_interrupt
            smp_apic_timer_interrupt
            apic_timer_interrupt
            </IRQ>
            smp_call_function_single
            vmx_vcpu_load
            kvm_arch_vcpu_load
            vcpu_load
            kvm_arch_destroy_vm
            kvm_put_kvm
            kvm_vcpu_release
            __fput
            ____fput
            task_work_run
            exit_to_usermode_loop
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in smp_call_function");
    }

    // File 718. 6.10 `kthread starved`: the GP kthread's stack has no timer interrupt;
    // syzkaller titles it `in corrupted`. (`?` frames omitted.)
    #[test]
    fn rcu_kthread_starved_without_timer_interrupt() {
        let stack = frames(
            "
            __schedule
            schedule
            schedule_timeout
            rcu_gp_fqs_loop
            rcu_gp_kthread
            kthread
            ret_from_fork
            ret_from_fork_asm
            ",
        );
        assert_eq!(lockup_title(TitleKind::RcuStall, &stack), "INFO: rcu detected stall in corrupted");
    }

    // File 1000. arm64 hung task: schedule/wait frames skipped; do_read_cache_folio is
    // never guilty. Tail of the trace cut.
    #[test]
    fn hung_task_arm64_page_cache() {
        let stack = frames(
            "
            __switch_to
            __schedule
            schedule
            io_schedule
            folio_wait_bit_common
            do_read_cache_folio
            read_cache_folio
            read_part_sector
            adfspart_check_POWERTEC
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in read_cache_folio");
    }

    // File 179. synchronize_sched waits are grouped under synchronize_rcu. (`?` frames
    // omitted.) Tail of the trace cut.
    #[test]
    fn hung_task_x86_grouped_under_synchronize_rcu() {
        let stack = frames(
            "
            __schedule
            schedule
            schedule_timeout
            wait_for_completion
            __wait_rcu_gp
            synchronize_sched.part.64
            synchronize_sched
            input_close_device
            mousedev_close_device
            mixdev_close_devices
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in synchronize_rcu");
    }

    // File 436. RTNL waits are grouped under rtnl_lock. Tail of the trace cut.
    #[test]
    fn hung_task_rtnl_lock() {
        let stack = frames(
            "
            __schedule
            schedule
            schedule_preempt_disabled
            __mutex_lock
            mutex_lock_nested
            rtnl_lock
            addrconf_verify_work
            process_one_work
            worker_thread
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in rtnl_lock");
    }

    // File 379. powerpc `[sp] [pc] func` frames. Tail of the trace cut.
    #[test]
    fn hung_task_powerpc() {
        let stack = frames(
            "
            __switch_to
            __schedule
            schedule
            schedule_timeout
            wait_for_common
            exit_aio
            mmput
            do_exit
            do_group_exit
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in exit_aio");
    }

    // File 550. arm32: __lock_page is a lock primitive. Tail of the trace cut.
    #[test]
    fn hung_task_arm32() {
        let stack = frames(
            "
            __schedule
            schedule
            schedule
            io_schedule
            io_schedule
            wait_on_page_bit_common
            wait_on_page_bit_common
            __lock_page
            __lock_page
            mpage_prepare_extent_to_map
            mpage_prepare_extent_to_map
            ext4_writepages
            ext4_writepages
            do_writepages
            do_writepages
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in mpage_prepare_extent_to_map");
    }

    // File 1001. x86 6.x, ia32 mount. (`?` frames omitted.) Tail of the trace cut.
    #[test]
    fn hung_task_x86_modern() {
        let stack = frames(
            "
            __schedule
            schedule
            schedule_timeout
            __wait_for_common
            __flush_work
            p9_fd_close
            p9_client_create
            v9fs_session_init
            v9fs_get_tree
            vfs_get_tree
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in p9_fd_close");
    }

    // File 508. Only `schedule` is skipped for this kind.
    #[test]
    fn cant_die() {
        let stack = frames(
            "
            __schedule
            schedule
            p9_client_rpc
            p9_client_flush
            p9_client_rpc
            p9_client_create
            v9fs_session_init
            v9fs_mount
            legacy_get_tree
            vfs_get_tree
            do_mount
            __x64_sys_mount
            do_syscall_64
            entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::TaskCantDie, &stack), "INFO: task can't die in p9_client_rpc");
    }

    // File 482. Every frame printed with `?`: syzkaller says `in corrupted`.
    #[test]
    fn cant_die_all_unreliable() {
        let stack = frames(
            "
            ? rcu_read_lock_sched_held
            ? __alloc_pages_nodemask
            ? trace_hardirqs_on_thunk
            ? __alloc_pages_slowpath
            ? __sanitizer_cov_trace_const_cmp2
            ? alloc_pages_current
            ? set_memory_decrypted
            ? arch_kexec_post_alloc_pages
            ? kimage_alloc_pages
            ? __sanitizer_cov_trace_const_cmp8
            ? kimage_alloc_page
            ? kimage_load_segment
            ? do_kexec_load
            ? __x64_sys_kexec_load
            ? do_syscall_64
            ? entry_SYSCALL_64_after_hwframe
            ",
        );
        assert_eq!(lockup_title(TitleKind::TaskCantDie, &stack), "INFO: task can't die in corrupted");
    }

    // File 178. One reliable frame, __schedule, which is skipped; the rest are `?` frames.
    #[test]
    fn hung_task_only_scheduler_frames() {
        let stack = frames(
            "
            __schedule
            ? __sched_text_start
            ? check_noncircular
            ? __queue_work
            ? insert_work
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in corrupted");
    }

    // File 235. Console without caller ids: a fault-injection dump is interleaved with the
    // trace (syzkaller: `in corrupted`).
    #[test]
    fn hung_task_interleaved_fault_injection() {
        let stack = frames(
            "
            dump_stack
            ? arch_local_irq_restore
            should_fail
            ? fault_create_debugfs_attr
            ? lock_downgrade
            ? kasan_check_write
            ? map_files_get_link
            ? find_held_lock
            ? check_same_owner
            ? rcu_note_context_switch
            should_failslab
            __kmalloc
            ? strncpy_from_user
            ? fput
            ? SyS_memfd_create
            ? memfd_fcntl
            SyS_memfd_create
            ? memfd_fcntl
            ? do_fast_syscall_32
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in corrupted");
        // The frames printed before the fault-injection dump still title the report.
        let stack = frames(
            "
            __schedule
            schedule
            mutex_lock_nested
            wdm_flush
            filp_close
            should_failslab
            __kmalloc
            ",
        );
        assert_eq!(lockup_title(TitleKind::HungTask, &stack), "INFO: task hung in wdm_flush");
    }
}
