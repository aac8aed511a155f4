//! Runs one target's body on files, timing each: `cargo run --release -p
//! lockscope-fuzz-bodies --example replay -- TARGET FILE...` (to reproduce a fuzzing artifact).

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("TARGET FILE...");
    let (_, body) = lockscope_fuzz_bodies::TARGETS.iter().find(|(n, _)| *n == target).expect("a known target");
    let _ = lockscope_fuzz_bodies::base();
    for f in args {
        let data = std::fs::read(&f).expect("readable input");
        let t = std::time::Instant::now();
        body(&data);
        println!("{f}: {:.3} s", t.elapsed().as_secs_f64());
    }
}
