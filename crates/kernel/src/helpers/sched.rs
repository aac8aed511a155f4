//! The scheduler's view: the task each CPU runs ([`Kernel::current_task`]), and task states
//! as the dumped kernel names them: the letters of `task_state_array`
//! (fs/proc/array.c, what `ps` and /proc print), read from the dump, so a kernel whose state
//! bits differ from the built-in table (before 4.14 every bit had its own letter) is decoded
//! by its own table.

use crate::{Kernel, KernelError};

/// The longest state table any kernel had (4.9: R S D T t X Z x K W P N).
const MAX_STATES: u64 = 16;
/// `TASK_IDLE` (`TASK_UNINTERRUPTIBLE | TASK_NOLOAD`): what the table's "I (idle)" reports.
const TASK_IDLE: u64 = 0x402;

/// Built-in: the 4.14+ bits (`include/linux/sched.h`), most specific first; used where the
/// dump lacks the kernel's table, and for bits the kernel's table does not report.
const BUILT_IN: &[(u64, char)] = &[
    (TASK_IDLE, 'I'),
    (0x0002, 'D'),
    (0x0001, 'S'),
    (0x0004, 'T'),
    (0x0008, 't'),
    (0x0040, 'P'),
    (0x0080, 'X'),
    (0x0200, 'W'),
    (0x0800, 'N'),
];

/// crash's two-letter code for a state letter.
pub fn crash_code(letter: char) -> &'static str {
    match letter {
        'R' => "RU",
        'S' => "IN",
        'D' => "UN",
        'T' => "ST",
        't' => "TR",
        'X' | 'x' => "DE",
        'Z' => "ZO",
        'P' => "PA",
        'I' => "ID",
        'W' => "WA",
        'N' => "NE",
        'K' => "WK",
        _ => "??",
    }
}

/// State bits → letters, most specific first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStates {
    pub bits: Vec<(u64, char)>,
    /// Read from the kernel's `task_state_array` (else the built-in table).
    pub from_kernel: bool,
}

impl TaskStates {
    pub fn built_in() -> TaskStates {
        TaskStates { bits: BUILT_IN.to_vec(), from_kernel: false }
    }

    /// From the letters of `task_state_array`, in order: entry 0 is running, entry i the bit
    /// 1 << (i - 1), "I (idle)" the idle report. Bits it does not name keep the built-in
    /// letters.
    pub fn from_letters(letters: &[char]) -> TaskStates {
        let mut bits: Vec<(u64, char)> = Vec::new();
        for (i, &l) in letters.iter().enumerate().skip(1) {
            bits.push(if l == 'I' { (TASK_IDLE, 'I') } else { (1 << (i - 1), l) });
        }
        for &(b, l) in BUILT_IN {
            if !bits.iter().any(|&(x, _)| x == b) {
                bits.push((b, l));
            }
        }
        // Composite masks first (idle before uninterruptible).
        bits.sort_by_key(|&(b, _)| std::cmp::Reverse(b.count_ones()));
        TaskStates { bits, from_kernel: true }
    }

    /// The letter and crash code of a task's `__state` and `exit_state`.
    pub fn decode(&self, state: u64, exit_state: u64) -> (char, &'static str) {
        if exit_state & 0x20 != 0 {
            return ('Z', "ZO");
        }
        if exit_state & 0x10 != 0 {
            return ('X', "DE");
        }
        if state == 0 {
            return ('R', "RU");
        }
        self.bits.iter().find(|&&(b, _)| state & b == b).map_or(('?', "??"), |&(_, l)| (l, crash_code(l)))
    }
}

impl Kernel {
    /// The task a CPU runs, from the per-CPU variable the kernel itself uses for `current`:
    /// `current_task` (up to 6.1 and from 6.15), `pcpu_hot.current_task` (6.2–6.14), else the
    /// run queue's `curr`.
    pub fn current_task(&self, cpu: u32) -> Result<u64, KernelError> {
        let via_var = |name: &str, path: Option<&str>| -> Result<u64, KernelError> {
            let mut o = self.global(name)?.per_cpu(cpu)?;
            if let Some(p) = path {
                o = o.member(p)?;
            }
            o.read_u64()
        };
        via_var("current_task", None)
            .or_else(|_| via_var("pcpu_hot", Some("current_task")))
            .or_else(|_| self.global("runqueues")?.per_cpu(cpu)?.member("curr")?.read_u64())
    }

    /// The kernel's own state table, when the dump has it.
    pub fn read_task_states(&self) -> TaskStates {
        self.task_state_letters().map_or_else(TaskStates::built_in, |l| TaskStates::from_letters(&l))
    }

    fn task_state_letters(&self) -> Option<Vec<char>> {
        let at = self.symbol("task_state_array").ok()?;
        let size = self.lookup_address(at).and_then(|s| s.size).unwrap_or(9 * 8);
        let n = (size / 8).clamp(2, MAX_STATES);
        let mut letters = Vec::new();
        for i in 0..n {
            let p = self.memory().read_u64(at + 8 * i).ok()?;
            let Ok(s) = self.memory().read_cstr(p, 32) else { break };
            // "R (running)": a letter, a space, a parenthesis.
            match s.as_slice() {
                [l, b' ', b'(', ..] if l.is_ascii_alphabetic() => letters.push(*l as char),
                _ => break,
            }
        }
        (letters.first() == Some(&'R') && letters.len() >= 3).then_some(letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_old_and_new_kernels() {
        // 4.14+: R S D T t X Z P I.
        let new = TaskStates::from_letters(&['R', 'S', 'D', 'T', 't', 'X', 'Z', 'P', 'I']);
        assert_eq!(new.decode(0x402, 0), ('I', "ID"));
        assert_eq!(new.decode(0x2, 0), ('D', "UN"));
        assert_eq!(new.decode(0x40, 0), ('P', "PA"));
        assert_eq!(new.decode(0x1, 0x20), ('Z', "ZO"));
        assert_eq!(new.decode(0x200, 0), ('W', "WA"));
        // 4.9: every bit its own letter, parked at 0x200.
        let old = TaskStates::from_letters(&['R', 'S', 'D', 'T', 't', 'X', 'Z', 'x', 'K', 'W', 'P', 'N']);
        assert_eq!(old.decode(0x200, 0), ('P', "PA"));
        assert_eq!(old.decode(0x100, 0), ('W', "WA"));
        assert_eq!(old.decode(0x80, 0), ('K', "WK"));
        assert_eq!(TaskStates::built_in().decode(0x402, 0), ('I', "ID"));
    }
}
