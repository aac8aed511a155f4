use lockscope_log::Scanner;
fn main() {
    let sc = Scanner::new();
    for (i, p) in std::env::args().skip(1).enumerate() {
        let f = std::fs::File::open(&p).unwrap();
        let s = sc.scan(i, &p, f).unwrap();
        for e in &s.events {
            println!(
                "{:>5}-{:<5} {:?} cpu={:?} task={:?} dur={:?} frames={} | {}",
                e.lines.first,
                e.lines.last,
                e.kind,
                e.cpu,
                e.task.as_ref().map(|t| t.to_string()),
                e.duration_s,
                e.stack.len(),
                e.title
            );
        }
        println!("{:?}", s.info);
    }
}
