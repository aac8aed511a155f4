//! What a stack waits for: the table of kernel wait primitives, read from frame names.
//!
//! Kernel versions differ in names (`rwsem_down_write_failed` in 2.6–4.x,
//! `rwsem_down_write_slowpath` in 5.x+; `__lock_page` vs `folio_lock`): the table lists
//! all of them, so the code that uses it never branches on a version.

use lockscope_facts::{Frame, WaitKind};

/// How telling a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    /// Generic scheduling (`schedule`, `io_schedule`): only used when nothing better shows.
    Generic,
    /// A wait primitive (`mutex_lock`, `wait_for_completion`).
    Primitive,
}

struct Rule {
    /// Function name, or prefix when ending in `*`.
    pattern: &'static str,
    kind: WaitKind,
    strength: Strength,
}

const fn p(pattern: &'static str, kind: WaitKind) -> Rule {
    Rule { pattern, kind, strength: Strength::Primitive }
}
const fn g(pattern: &'static str, kind: WaitKind) -> Rule {
    Rule { pattern, kind, strength: Strength::Generic }
}

use WaitKind::*;

/// Wait primitives, innermost match wins among primitives.
const RULES: &[Rule] = &[
    // Spinlocks: queued (4.2+), paravirt, ticket (2.6–4.1), debug variants.
    p("native_queued_spin_lock_slowpath", Spinlock),
    p("queued_spin_lock_slowpath", Spinlock),
    p("__pv_queued_spin_lock_slowpath", Spinlock),
    p("pv_queued_spin_lock_slowpath", Spinlock),
    p("__queued_spin_lock_slowpath", Spinlock),
    p("do_raw_spin_lock", Spinlock),
    p("_raw_spin_lock*", Spinlock),
    p("__raw_spin_lock*", Spinlock),
    p("_spin_lock*", Spinlock),
    p("__ticket_spin_lock", Spinlock),
    p("arch_spin_lock", Spinlock),
    p("__spin_lock_debug", Spinlock),
    p("queued_read_lock_slowpath", RwlockRead),
    p("_raw_read_lock*", RwlockRead),
    p("__raw_read_lock*", RwlockRead),
    p("queued_write_lock_slowpath", RwlockWrite),
    p("_raw_write_lock*", RwlockWrite),
    p("__raw_write_lock*", RwlockWrite),
    p("bit_spin_lock", BitSpinlock),
    p("__bit_spin_lock", BitSpinlock),
    p("hlist_bl_lock", BitSpinlock),
    // Cross-CPU function calls: the CPU spins until the targets ran the function.
    p("csd_lock_wait", CsdIpi),
    p("smp_call_function_many_cond", CsdIpi),
    p("smp_call_function_many", CsdIpi),
    p("smp_call_function_single", CsdIpi),
    p("smp_call_function", CsdIpi),
    p("smp_call_function_any", CsdIpi),
    p("generic_exec_single", CsdIpi),
    p("on_each_cpu_cond_mask", CsdIpi),
    p("on_each_cpu_mask", CsdIpi),
    p("on_each_cpu", CsdIpi),
    p("on_each_cpu_cond", CsdIpi),
    p("kick_all_cpus_sync", CsdIpi),
    // Sleeping locks.
    p("__mutex_lock*", Mutex),
    p("mutex_lock*", Mutex),
    p("__mutex_lock_slowpath", Mutex),
    p("__mutex_lock_common", Mutex),
    p("rt_mutex_slowlock*", Mutex),
    p("__rt_mutex_slowlock*", Mutex),
    p("ww_mutex_lock*", Mutex),
    p("rwsem_down_read_slowpath", RwsemRead),
    p("rwsem_down_read_failed*", RwsemRead),
    p("call_rwsem_down_read_failed", RwsemRead),
    p("__down_read*", RwsemRead),
    p("down_read*", RwsemRead),
    p("percpu_rwsem_wait", RwsemRead),
    p("__percpu_down_read", RwsemRead),
    p("rwsem_down_write_slowpath", RwsemWrite),
    p("rwsem_down_write_failed*", RwsemWrite),
    p("call_rwsem_down_write_failed", RwsemWrite),
    p("__down_write*", RwsemWrite),
    p("down_write*", RwsemWrite),
    p("percpu_down_write", RwsemWrite),
    p("__down_common", Semaphore),
    p("__down", Semaphore),
    p("__down_interruptible", Semaphore),
    p("__down_killable", Semaphore),
    p("__down_timeout", Semaphore),
    p("down", Semaphore),
    p("down_interruptible", Semaphore),
    p("down_killable", Semaphore),
    p("down_timeout", Semaphore),
    // Page and bit locks.
    p("__lock_page*", PageLock),
    p("lock_page*", PageLock),
    p("__folio_lock*", PageLock),
    p("folio_lock*", PageLock),
    p("__lock_page_or_retry", PageLock),
    p("__wait_on_bit_lock", BitWait),
    p("out_of_line_wait_on_bit_lock", BitWait),
    p("__wait_on_bit", BitWait),
    p("out_of_line_wait_on_bit", BitWait),
    p("wait_on_bit*", BitWait),
    p("__wait_on_buffer", BitWait),
    p("__lock_buffer", BitWait),
    p("wait_on_page_bit*", PageLock),
    p("folio_wait_bit*", PageLock),
    p("wait_on_page_writeback", IoWait),
    p("folio_wait_writeback", IoWait),
    // Completions and their common purposes.
    p("wait_for_completion*", Completion),
    p("__wait_for_common", Completion),
    p("wait_for_common*", Completion),
    p("do_wait_for_common", Completion),
    p("synchronize_rcu*", RcuGracePeriod),
    p("synchronize_sched*", RcuGracePeriod),
    p("synchronize_srcu*", RcuGracePeriod),
    p("__synchronize_srcu", RcuGracePeriod),
    p("wait_rcu_gp", RcuGracePeriod),
    p("__wait_rcu_gp", RcuGracePeriod),
    p("rcu_barrier*", RcuGracePeriod),
    p("synchronize_rcu_tasks*", RcuGracePeriod),
    p("rcu_tasks_wait_gp", RcuGracePeriod),
    p("stop_machine*", StopMachine),
    p("stop_cpus", StopMachine),
    p("__stop_cpus", StopMachine),
    p("stop_one_cpu", StopMachine),
    p("multi_cpu_stop", StopMachine),
    p("__flush_work", WorkqueueFlush),
    p("flush_work", WorkqueueFlush),
    p("__flush_workqueue", WorkqueueFlush),
    p("flush_workqueue", WorkqueueFlush),
    p("drain_workqueue", WorkqueueFlush),
    p("__cancel_work_timer", WorkqueueFlush),
    p("cancel_work_sync", WorkqueueFlush),
    p("msleep", Sleep),
    p("ssleep", Sleep),
    p("usleep_range*", Sleep),
    p("msleep_interruptible", Sleep),
    // Generic: the task sleeps, but the frame does not say on what.
    g("io_schedule*", IoWait),
    g("sync_page", IoWait),
    g("bit_wait_io", IoWait),
    g("schedule_timeout*", Sleep),
    // 2.6.3x: shared by readers and writers; the next frame says which.
    g("rwsem_down_failed_common", Unknown),
    g("schedule_preempt_disabled", Unknown),
    g("schedule", Unknown),
    g("__schedule", Unknown),
    g("schedule_hrtimeout*", Sleep),
    g("do_nanosleep", Sleep),
    g("hrtimer_nanosleep", Sleep),
    g("futex_wait*", Unknown),
    g("pipe_wait*", Unknown),
    g("do_wait", Unknown),
];

/// Purposes that explain a completion or a sleep better than the primitive itself.
fn refines(kind: WaitKind) -> bool {
    matches!(kind, RcuGracePeriod | StopMachine | WorkqueueFlush)
}

/// Frames of the machinery that reports a lockup (watchdog timer, RCU stall printing,
/// NMI backtrace, panic, interrupt entry): they say how the stack was printed, not where
/// the CPU was stuck.
const REPORTING: &[&str] = &[
    // The panic and kdump path a crash `bt` of the panicking CPU starts with.
    "machine_kexec",
    "crash_kexec",
    "__crash_kexec",
    "panic",
    "crash_nmi_callback",
    "native_machine_crash_shutdown",
    "dump_stack*",
    "show_stack",
    "show_regs",
    "__show_regs",
    "dump_backtrace",
    "sched_show_task",
    "dump_cpu_task",
    "rcu_dump_cpu_stacks",
    "print_other_cpu_stall",
    "rcu_print_task_stall*",
    "rcu_print_detail_task_stall*",
    "__rcu_pending",
    "show_state_filter",
    "print_cpu_stall*",
    "check_cpu_stall",
    "rcu_pending",
    "rcu_sched_clock_irq",
    "rcu_check_callbacks",
    "update_process_times",
    "tick_sched_handle*",
    "tick_sched_timer",
    "tick_nohz_handler",
    "tick_handle_periodic",
    "__hrtimer_run_queues",
    "hrtimer_interrupt",
    "hrtimer_run_queues",
    "watchdog_timer_fn*",
    "softlockup_fn",
    "watchdog_overflow_callback",
    "__perf_event_overflow",
    "perf_event_overflow",
    "perf_event_nmi_handler",
    "x86_pmu_handle_irq",
    "intel_pmu_handle_irq",
    "amd_pmu_handle_irq",
    "handle_pmi_common",
    "nmi_cpu_backtrace*",
    "nmi_trigger_cpumask_backtrace",
    "arch_trigger_cpumask_backtrace",
    "nmi_handle",
    "default_do_nmi",
    "exc_nmi",
    "do_nmi",
    "end_repeat_nmi",
    "nmi",
    "asm_exc_nmi",
    "panic",
    "vpanic",
    "__warn",
    "warn_slowpath*",
    "report_bug",
    "handle_bug",
    "exc_invalid_op",
    "asm_exc_invalid_op",
    "smp_apic_timer_interrupt",
    "apic_timer_interrupt",
    "__sysvec_apic_timer_interrupt",
    "sysvec_apic_timer_interrupt",
    "asm_sysvec_apic_timer_interrupt",
    "local_apic_timer_interrupt",
    "arch_timer_handler_phys",
    "arch_timer_handler_virt",
    "handle_percpu_devid_irq",
    "generic_handle_irq*",
    "generic_handle_domain_irq",
    "__handle_domain_irq",
    "handle_domain_irq",
    "gic_handle_irq",
    "el1_irq",
    "el1h_64_irq*",
    "el1_interrupt",
    "el0_irq",
    "call_on_irq_stack",
    "do_interrupt_handler",
    "irq_exit*",
    "__irq_exit_rcu",
    "irq_exit_rcu",
    "ret_from_intr",
    "common_interrupt",
    "asm_common_interrupt",
    "sysvec_call_function*",
    "asm_sysvec_call_function*",
    "hung_task_panic",
    "check_hung_task",
    "check_hung_uninterruptible_tasks",
    "watchdog",
    "stop_this_cpu",
    "smp_stop_nmi_callback",
    "nmi_panic",
    "ipi_stop",
    "handle_IPI",
    "do_handle_IPI",
    "ipi_handler",
    "rcu_exp_handler",
    "flush_smp_call_function_queue",
];

fn base_name(f: &str) -> &str {
    // `__schedule_bug.cold`, `tick_sched_handle.isra.5`: compiler suffixes
    f.split('.').next().unwrap_or(f)
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

pub fn is_reporting_frame(f: &Frame) -> bool {
    let n = base_name(&f.function);
    REPORTING.iter().any(|p| matches(p, n))
}

/// The frames that say where a CPU or task really was: reliable, not reporting machinery.
pub fn meaningful_frames(stack: &[Frame]) -> Vec<&Frame> {
    let mut frames: Vec<&Frame> = stack.iter().filter(|f| f.reliable && !is_reporting_frame(f)).collect();
    if frames.is_empty() {
        // Only `?` frames (a corrupted or frame-pointer-less trace): a hint, better than nothing.
        frames = stack.iter().filter(|f| !is_reporting_frame(f)).collect();
    }
    // With the reporting machinery (timer interrupt, NMI, stall printing) gone, the innermost
    // frame left is where the CPU was, be it in a task or inside an interrupt or softirq it
    // never left.
    frames
}

/// The stack has frames, but none the unwinder vouches for.
pub fn only_unreliable(stack: &[Frame]) -> bool {
    !stack.is_empty() && !stack.iter().any(|f| f.reliable && !is_reporting_frame(f))
}

/// The wait a stack shows, and the frame that shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StackWait {
    pub kind: WaitKind,
    pub frame: Option<Frame>,
    /// The first frame outside the wait machinery that called it: the code that took the
    /// lock or started the wait (`wiphy_lock` above `__mutex_lock_common`).
    pub caller: Option<Frame>,
}

/// How many meaningful frames to look at: deeper frames are callers, not the wait.
const DEPTH: usize = 14;

pub fn classify(stack: &[Frame]) -> StackWait {
    let frames = meaningful_frames(stack);
    let mut generic: Option<(WaitKind, usize)> = None;
    for (i, f) in frames.iter().take(DEPTH).enumerate() {
        let name = base_name(&f.function);
        let Some(rule) = RULES.iter().find(|r| matches(r.pattern, name)) else {
            continue;
        };
        match rule.strength {
            Strength::Generic => {
                if generic.is_none_or(|(k, _)| k == Unknown && rule.kind != Unknown) {
                    generic = Some((rule.kind, i));
                }
            }
            Strength::Primitive => {
                let mut kind = rule.kind;
                let mut at = i;
                // A completion or sleep waited for on behalf of a grace period, a stop_machine
                // or a work flush is better described by that purpose; a bit wait under
                // `__lock_page` is a page lock.
                if matches!(kind, Completion | Sleep | Unknown | BitWait) {
                    let refine = |k: WaitKind| if kind == BitWait { k == PageLock } else { refines(k) };
                    for (j, outer) in frames.iter().enumerate().skip(i + 1).take(6) {
                        if let Some(r) =
                            RULES.iter().find(|r| matches(r.pattern, base_name(&outer.function)) && refine(r.kind))
                        {
                            kind = r.kind;
                            at = j;
                            break;
                        }
                    }
                }
                return waiting(kind, &frames, at);
            }
        }
    }
    match generic {
        Some((kind, at)) => waiting(kind, &frames, at),
        None => {
            // Where it runs: the innermost frame that is not sanitizer or lockdep bookkeeping.
            let f = frames.iter().find(|f| !is_instrumentation(&f.function)).or(frames.first());
            StackWait { kind: Running, frame: f.map(|f| (*f).clone()), caller: None }
        }
    }
}

/// The wait `kind` shown by `frames[at]`, and who called it.
fn waiting(kind: WaitKind, frames: &[&Frame], at: usize) -> StackWait {
    let caller = frames[at + 1..]
        .iter()
        .find(|f| {
            let name = base_name(&f.function);
            !RULES.iter().any(|r| matches(r.pattern, name)) && !is_instrumentation(&f.function)
        })
        .map(|f| (*f).clone());
    StackWait { kind, frame: Some(frames[at].clone()), caller }
}

/// Compiler- and debug-inserted helpers (KCOV, KASAN, KCSAN, lockdep, irq tracing): called
/// from everywhere, they say nothing about where a CPU loops.
const INSTRUMENTATION: &[&str] = &[
    "__sanitizer_cov_*",
    "__asan_*",
    "__kasan_*",
    "kasan_*",
    "check_memory_region*",
    "kcsan_*",
    "__tsan_*",
    "lock_acquire*",
    "lock_release",
    "lock_is_held*",
    "lockdep_*",
    "trace_hardirqs_*",
    "debug_lockdep_rcu_enabled",
    "rcu_read_lock_held*",
    "rcu_read_lock_sched_held",
    "rcu_lockdep_current_cpu_online",
    "__might_sleep",
    "___might_sleep",
    "__might_fault",
    "preempt_count_add",
    "preempt_count_sub",
    "write_comp_data",
    "mark_lock*",
    "__lock_acquire",
];

fn is_instrumentation(function: &str) -> bool {
    let n = base_name(function);
    INSTRUMENTATION.iter().any(|p| matches(p, n))
}

/// Frames of idle loops: a CPU shown there is not stuck.
pub fn is_idle(stack: &[Frame]) -> bool {
    const IDLE: &[&str] = &[
        "default_idle*",
        "native_safe_halt",
        "arch_cpu_idle*",
        "cpuidle_enter*",
        "do_idle",
        "cpu_startup_entry",
        "intel_idle*",
        "acpi_idle*",
        "mwait_idle*",
        "poll_idle",
        "cpu_idle_poll",
        "cpu_do_idle",
        "arch_cpu_idle",
        "pv_native_safe_halt",
        "default_idle_call",
        "cpu_idle",
    ];
    let frames = meaningful_frames(stack);
    frames.first().is_some_and(|f| IDLE.iter().any(|p| matches(p, base_name(&f.function))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(names: &[&str]) -> Vec<Frame> {
        names
            .iter()
            .map(|n| {
                let mut f = Frame::named(n.trim_start_matches("? "));
                f.reliable = !n.starts_with("? ");
                f
            })
            .collect()
    }

    #[test]
    fn the_caller_of_the_wait_is_the_first_frame_outside_its_machinery() {
        // tests/data/syzbot-mail/137.log (6.4, lockdep): a worker blocked on a mutex.
        let s = stack(&[
            "context_switch",
            "__schedule",
            "schedule",
            "schedule_preempt_disabled",
            "__mutex_lock_common",
            "__mutex_lock",
            "mutex_lock_nested",
            "wiphy_lock",
            "cfg80211_event_work",
            "process_one_work",
        ]);
        let w = classify(&s);
        assert_eq!((w.kind, w.frame.unwrap().function.as_str()), (Mutex, "__mutex_lock_common"));
        assert_eq!(w.caller.unwrap().function, "wiphy_lock");
        // A CPU running code waits for nothing, so nothing called the wait.
        assert_eq!(classify(&stack(&["rcu_scan_table_demo", "rcu_hog_fn", "kthread"])).caller, None);
    }

    #[test]
    fn seed_004_stacks() {
        // uksmd: page lock
        let s = stack(&[
            "? sync_page",
            "io_schedule",
            "sync_page",
            "__wait_on_bit_lock",
            "__lock_page",
            "? wake_bit_function",
            "cmp_and_merge_page",
        ]);
        assert_eq!(classify(&s).kind, PageLock);
        // corpus hung_rwsem_chain: a bit lock taken directly, no page lock around it
        let s = stack(&[
            "__schedule",
            "schedule",
            "io_schedule",
            "bit_wait_io",
            "__wait_on_bit_lock",
            "out_of_line_wait_on_bit_lock",
            "lock_demo_page",
        ]);
        assert_eq!(classify(&s).kind, BitWait);
        // ... taken by the code that called the bit-wait machinery
        assert_eq!(classify(&s).caller.unwrap().function, "lock_demo_page");
        // khugepaged: writer
        let s = stack(&[
            "? do_dbs_timer",
            "rwsem_down_failed_common",
            "rwsem_down_write_failed",
            "call_rwsem_down_write_failed",
            "? down_write",
            "khugepaged",
        ]);
        assert_eq!(classify(&s).kind, RwsemWrite);
        let s = stack(&[
            "rwsem_down_failed_common",
            "rwsem_down_read_failed",
            "call_rwsem_down_read_failed",
            "? down_read",
            "__do_page_fault",
        ]);
        // rwsem_down_failed_common is shared by both directions; the read frame right after decides.
        assert_eq!(classify(&s).kind, RwsemRead);
    }

    #[test]
    fn corpus_stacks() {
        let s = stack(&["native_queued_spin_lock_slowpath", "_raw_spin_lock_irqsave", "rmqueue_bulk_demo"]);
        assert_eq!(classify(&s).kind, Spinlock);
        let s = stack(&[
            "smp_call_function_many_cond",
            "? 0xffffffffc0225000",
            "on_each_cpu_cond_mask",
            "flush_cpu_caches_demo",
        ]);
        assert_eq!(classify(&s).kind, CsdIpi);
        let s = stack(&[
            "__schedule",
            "schedule",
            "schedule_timeout",
            "? __bpf_trace_tick_stop",
            "msleep",
            "drain_zone_pages_sleep_demo",
        ]);
        assert_eq!(classify(&s).kind, Sleep);
        let s = stack(&["rcu_scan_table_demo", "rcu_hog_fn", "kthread", "ret_from_fork"]);
        let w = classify(&s);
        assert_eq!((w.kind, w.frame.unwrap().function.as_str()), (Running, "rcu_scan_table_demo"));
        let s = stack(&[
            "__schedule",
            "schedule",
            "schedule_timeout",
            "__wait_for_common",
            "__wait_rcu_gp",
            "synchronize_rcu",
        ]);
        assert_eq!(classify(&s).kind, RcuGracePeriod);
    }
}
