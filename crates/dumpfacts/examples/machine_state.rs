//! Prints the machine state read from a dump's memory, as JSON:
//! `cargo run -p lockscope-dumpfacts --example machine_state -- DUMP`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: machine_state DUMP");
    let dump = lockscope_dump::Dump::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let k = lockscope_kernel::Kernel::new(dump).unwrap_or_else(|e| panic!("{path}: {e}"));
    let m = lockscope_dumpfacts::machine_state(&k);
    println!("{}", serde_json::to_string_pretty(&m).expect("json"));
}
