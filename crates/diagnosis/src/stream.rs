//! Diagnosis of a log as it streams by, one segment (one boot) at a time, so that memory
//! follows the number of *distinct* incidents, not the size of the log.
//!
//! Each segment from `lockscope_log::Scanner::scan_segments` is diagnosed on its own (its
//! incidents never reach into another boot) and then dropped, keeping only the events its
//! incidents refer to. An incident that is the same as one already kept (same kind, title,
//! stuck CPUs and tasks by name, waits and root) is folded into it as a recurrence. A
//! segment with hardware errors, and every segment when records from outside the log (an
//! IPMI SEL) are given, waits for the end: tying hardware to a lockup needs the times at
//! which every log went silent, known only once all are read.

use crate::{ExternalRecord, Incident, Input, Occurrence, SourceFacts};
use lockscope_facts::{Event, EventKind, HeldLocks};
use std::collections::HashMap;

/// Recurrences listed with their place; the rest are only counted.
pub const RECURRENCE_SAMPLES: usize = 16;
/// Events outside any incident (warnings, informational reports) kept for the JSON output;
/// the rest are only counted.
pub const LOOSE_EVENTS_KEPT: usize = 10_000;

#[derive(Default)]
pub struct Streamer {
    events: Vec<Event>,
    held_locks: Vec<HeldLocks>,
    incidents: Vec<Incident>,
    by_signature: HashMap<String, usize>,
    /// Segments that wait for the end (hardware), concatenated.
    deferred: Vec<Event>,
    deferred_held: Vec<HeldLocks>,
    defer_all: bool,
    loose_kept: usize,
    /// Events neither in a kept incident nor kept loose.
    pub omitted_events: usize,
    /// Events seen, kept or not.
    pub seen_events: usize,
    /// Machine state of vmcore inputs, by input index.
    machine: Vec<(usize, lockscope_facts::machine::MachineState)>,
}

/// What a whole streamed diagnosis leaves: the events the incidents refer to, and them.
pub struct Streamed {
    pub events: Vec<Event>,
    pub held_locks: Vec<HeldLocks>,
    pub diagnosis: crate::Diagnosis,
    pub omitted_events: usize,
}

impl Streamer {
    /// `has_external`: records from outside the logs will be given to [`Streamer::finish`].
    pub fn new(has_external: bool) -> Streamer {
        Streamer { defer_all: has_external, ..Default::default() }
    }

    /// The machine state read from vmcore inputs (by input index), for the rules to use
    /// beside the logs; give it before the logs' segments.
    pub fn with_machine(mut self, machine: Vec<(usize, lockscope_facts::machine::MachineState)>) -> Streamer {
        self.machine = machine;
        self
    }

    /// Adds the machine state a log input showed (a crash session's command output), before
    /// that input's segment is pushed.
    pub fn add_machine(&mut self, source: usize, machine: lockscope_facts::machine::MachineState) {
        self.machine.push((source, machine));
    }

    /// Takes one segment: events that refer only to each other (`repeat_of` counts from the
    /// segment's start) and the lockdep listings printed among them.
    pub fn push(&mut self, events: Vec<Event>, held_locks: Vec<HeldLocks>) {
        self.seen_events += events.len();
        if self.defer_all || events.iter().any(|e| e.kind == EventKind::HardwareError) {
            let base = self.deferred.len();
            self.deferred.extend(events.into_iter().map(|mut e| {
                e.repeat_of = e.repeat_of.map(|r| r + base);
                e
            }));
            self.deferred_held.extend(held_locks);
            return;
        }
        let input =
            Input { events: &events, held_locks: &held_locks, external: &[], sources: &[], machine: &self.machine };
        let incidents = crate::analyze_incidents(&input);
        self.absorb(events, held_locks, incidents);
    }

    /// Diagnoses what waited for the end, and gives the verdict over everything.
    pub fn finish(mut self, external: &[ExternalRecord], sources: &[SourceFacts]) -> Streamed {
        let events = std::mem::take(&mut self.deferred);
        let held = std::mem::take(&mut self.deferred_held);
        let no_events = self.seen_events == 0;
        if !events.is_empty() || !external.is_empty() {
            let input = Input { events: &events, held_locks: &held, external, sources, machine: &self.machine };
            let incidents = crate::analyze_incidents(&input);
            self.absorb(events, held, incidents);
        }
        let Streamer { events, held_locks, mut incidents, omitted_events, .. } = self;
        let first_line = |inc: &Incident| inc.events.iter().map(|&i| events[i].lines.first).min().unwrap_or(0);
        incidents.sort_by(|a, b| {
            (a.source, &a.host, a.boot, first_line(a)).cmp(&(b.source, &b.host, b.boot, first_line(b)))
        });
        for (n, inc) in incidents.iter_mut().enumerate() {
            inc.id = n + 1;
        }
        let diagnosis = crate::conclude(incidents, no_events);
        Streamed { events, held_locks, diagnosis, omitted_events }
    }

    /// Keeps the segment's new incidents with the events they refer to, folds the ones
    /// already seen into their first occurrence, and drops the rest of the segment.
    fn absorb(&mut self, events: Vec<Event>, held_locks: Vec<HeldLocks>, incidents: Vec<Incident>) {
        let mut keep = vec![false; events.len()];
        let mut new_incidents = Vec::new();
        let mut in_incident = vec![false; events.len()];
        for inc in incidents {
            for i in referenced(&inc) {
                in_incident[i] = true;
            }
            let sig = signature(&inc, &events);
            if let Some(&k) = self.by_signature.get(&sig) {
                let first = &mut self.incidents[k];
                first.recurrences.count += 1;
                if first.recurrences.samples.len() < RECURRENCE_SAMPLES {
                    let line = inc.events.iter().map(|&i| events[i].lines.first).min().unwrap_or(0);
                    first.recurrences.samples.push(Occurrence {
                        source: inc.source,
                        host: inc.host.clone(),
                        boot: inc.boot,
                        line,
                        first_time: inc.first_time,
                        last_time: inc.last_time,
                    });
                }
                continue;
            }
            for i in referenced(&inc) {
                keep[i] = true;
            }
            new_incidents.push((sig, inc));
        }
        let kept_incidents = !new_incidents.is_empty();
        for i in 0..events.len() {
            if !in_incident[i] && !keep[i] {
                if self.loose_kept < LOOSE_EVENTS_KEPT {
                    self.loose_kept += 1;
                    keep[i] = true;
                } else {
                    self.omitted_events += 1;
                }
            }
        }
        // A kept repeat needs the event it repeats (its stack and registers are there).
        for i in 0..events.len() {
            if keep[i]
                && let Some(r) = events[i].repeat_of
                && r < events.len()
            {
                keep[r] = true;
            }
        }
        let base = self.events.len();
        let mut new_index = vec![usize::MAX; events.len()];
        let mut n = base;
        for (i, k) in keep.iter().enumerate() {
            if *k {
                new_index[i] = n;
                n += 1;
            }
        }
        for (i, mut e) in events.into_iter().enumerate() {
            if keep[i] {
                e.repeat_of = e.repeat_of.and_then(|r| new_index.get(r).copied()).filter(|&r| r != usize::MAX);
                self.events.push(e);
            }
        }
        for (sig, mut inc) in new_incidents {
            remap(&mut inc, &new_index);
            self.by_signature.insert(sig, self.incidents.len());
            self.incidents.push(inc);
        }
        if kept_incidents {
            self.held_locks.extend(held_locks);
        }
    }
}

/// Every event index an incident holds.
fn referenced(inc: &Incident) -> impl Iterator<Item = usize> + '_ {
    inc.events
        .iter()
        .chain(&inc.precursors)
        .chain(inc.panic.iter())
        .copied()
        .chain(inc.stuck.iter().flat_map(|s| s.events.iter().copied().chain([s.stack_event])))
}

fn remap(inc: &mut Incident, new_index: &[usize]) {
    let m = |i: &mut usize| *i = new_index[*i];
    inc.events.iter_mut().for_each(m);
    inc.precursors.iter_mut().for_each(m);
    inc.panic.iter_mut().for_each(m);
    for s in &mut inc.stuck {
        s.events.iter_mut().for_each(m);
        m(&mut s.stack_event);
    }
}

/// What makes two incidents the same: kind, title, kernel, host and input, and who is stuck
/// (CPU, and task by name: PIDs change from boot to boot) waiting for what, and the root.
fn signature(inc: &Incident, events: &[Event]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = write!(s, "{}|{:?}|{:?}|{}|{:?}", inc.source, inc.host, inc.kind, inc.title, inc.release);
    for st in &inc.stuck {
        let _ = write!(
            s,
            "|{:?}/{:?}:{:?}:{:?}:{:?}:{:?}",
            st.subject.cpu,
            st.subject.task.as_ref().map(|t| &t.comm),
            st.wait.kind,
            st.wait.function,
            st.wait.lock_address,
            st.wait.target_cpus
        );
    }
    if let Some(r) = &inc.root {
        let _ = write!(s, "|root {:?}/{:?}:{:?}", r.cpu, r.task.as_ref().map(|t| &t.comm), r.confidence);
    }
    // A crash without stuck subjects: its panic message tells crashes apart.
    if let Some(p) = inc.panic {
        let _ = write!(s, "|panic {}", events[p].message.as_deref().unwrap_or(""));
    }
    s
}
