//! Writes every target's seeds to `fuzz/corpus/<target>/seed-<name>` (or under the directory
//! given as the first argument): `cargo run --release -p lockscope-fuzz-bodies --example write_seeds`.

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"));
    for (target, _) in lockscope_fuzz_bodies::TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in lockscope_fuzz_bodies::seeds(target) {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
    }
    Ok(())
}
