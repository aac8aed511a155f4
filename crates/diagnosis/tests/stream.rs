//! Streamed diagnosis (one boot at a time) against the whole-log diagnosis, on the real logs
//! in tests/data.

use lockscope_diagnosis::stream::Streamer;
use lockscope_diagnosis::{Diagnosis, Input, diagnose};
use lockscope_log::Scanner;
use std::path::PathBuf;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn logs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["corpus", "syzbot", "seed-003", "seed-004"] {
        for e in std::fs::read_dir(data().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 12, "test logs missing: {out:?}");
    out
}

fn whole(bytes: &[u8]) -> Diagnosis {
    let scan = Scanner::new().scan(0, "t", bytes).unwrap();
    diagnose(Input { events: &scan.events, held_locks: &scan.held_locks, external: &[], sources: &[], machine: &[] })
}

fn streamed(bytes: &[u8]) -> (lockscope_diagnosis::stream::Streamed, usize) {
    let mut s = Streamer::new(false);
    let mut segments = 0;
    Scanner::new()
        .scan_segments(0, "t", bytes, |seg| {
            segments += 1;
            let (e, h) = seg.into_parts();
            s.push(e, h);
        })
        .unwrap();
    (s.finish(&[], &[]), segments)
}

/// Incidents without their event indexes (which differ: the streamed store drops events).
fn shape(d: &Diagnosis) -> Vec<(String, String, usize, Option<String>)> {
    d.incidents
        .iter()
        .map(|i| (i.title.clone(), i.summary.clone(), i.stuck.len(), i.root.as_ref().map(|r| r.reason.clone())))
        .collect()
}

#[test]
fn streaming_gives_the_same_incidents_as_the_whole_log() {
    for p in logs() {
        let bytes = std::fs::read(&p).unwrap();
        let w = whole(&bytes);
        let (s, _) = streamed(&bytes);
        // Distinct incidents only: the same lockup in two boots of one log is folded.
        let again: usize = s.diagnosis.incidents.iter().map(|i| i.recurrences.count).sum();
        assert_eq!(s.diagnosis.incidents.len() + again, w.incidents.len(), "{}", p.display());
        if again == 0 {
            assert_eq!(shape(&s.diagnosis), shape(&w), "{}", p.display());
            assert_eq!(s.diagnosis.summary, w.summary, "{}", p.display());
        }
        // Every index the incidents hold points at a kept event of the right kind.
        for inc in &s.diagnosis.incidents {
            for &i in inc.events.iter().chain(&inc.precursors) {
                assert!(i < s.events.len(), "{}", p.display());
            }
            for st in &inc.stuck {
                let e = &s.events[st.stack_event];
                assert!(st.subject.cpu.is_none() || e.cpu.is_some() || e.task.is_some(), "{}", p.display());
            }
        }
    }
}

#[test]
fn the_same_lockup_in_every_boot_is_one_incident() {
    let one = std::fs::read(data().join("corpus/ipi_sleeping_holder.live.console.log")).unwrap();
    let w = whole(&one);
    let mut many = Vec::new();
    for _ in 0..5 {
        many.extend_from_slice(&one);
    }
    let (s, segments) = streamed(&many);
    assert_eq!(segments, 5, "one segment per boot");
    assert_eq!(s.diagnosis.incidents.len(), w.incidents.len());
    let inc = &s.diagnosis.incidents[0];
    assert_eq!(inc.recurrences.count, 4);
    let boots: Vec<u32> = inc.recurrences.samples.iter().map(|o| o.boot).collect();
    assert_eq!(boots, [2, 3, 4, 5]);
    assert_eq!(inc.summary, w.incidents[0].summary);
    assert_eq!(inc.root.as_ref().map(|r| &r.reason), w.incidents[0].root.as_ref().map(|r| &r.reason));
    assert!(s.diagnosis.summary.contains("came back 4 more times"), "{}", s.diagnosis.summary);
    // Only the first boot's events are kept.
    assert!(s.events.iter().all(|e| e.boot == 1), "{:?}", s.events.iter().map(|e| e.boot).collect::<Vec<_>>());
}

#[test]
fn different_lockups_in_turn_are_kept_apart() {
    let a = std::fs::read(data().join("corpus/ipi_sleeping_holder.live.console.log")).unwrap();
    let b = std::fs::read(data().join("corpus/hung_rwsem_chain.live.console.log")).unwrap();
    let log = [a.clone(), b.clone(), a, b].concat();
    let (s, segments) = streamed(&log);
    assert_eq!(segments, 4);
    assert_eq!(s.diagnosis.incidents.len(), 2);
    assert!(s.diagnosis.incidents.iter().all(|i| i.recurrences.count == 1));
    assert_eq!(s.diagnosis.incidents[0].recurrences.samples[0].boot, 3);
    assert_eq!(s.diagnosis.incidents[1].recurrences.samples[0].boot, 4);
}
