//! Time per input of each target on its seeds (release, no sanitizer):
//! `cargo run --release -p lockscope-fuzz-bodies --example time_targets`.

fn main() {
    let t = std::time::Instant::now();
    let _ = lockscope_fuzz_bodies::base();
    println!("base loaded in {:.2} s", t.elapsed().as_secs_f64());
    for (name, body) in lockscope_fuzz_bodies::TARGETS {
        let seeds = lockscope_fuzz_bodies::seeds(name);
        let t = std::time::Instant::now();
        for (_, s) in &seeds {
            body(s);
        }
        let per = t.elapsed().as_secs_f64() / seeds.len().max(1) as f64;
        println!("{name:12} {:8.2} ms per input ({} seeds)", per * 1e3, seeds.len());
    }
}
