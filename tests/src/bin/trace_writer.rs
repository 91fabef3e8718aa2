//! A socket trace writer for tests/tests/tcp_trace.rs to kill: creates a
//! trace file in the directory given, writes three records to slot 0,
//! prints `ready`, then writes a record a millisecond until killed.

use std::io::Write;
use std::time::Duration;

use tpa_stages::trace::record::{Kind, Record, TICK_NS};
use tpa_stages::trace::ring::TraceFile;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: trace_writer DIR");
    let path = std::path::Path::new(&dir).join("writer.trace");
    let file = TraceFile::create(&path, 2, 64).expect("create the trace file");
    let a = "192.0.2.1:1234".parse().unwrap();
    let b = "192.0.2.2:80".parse().unwrap();
    let mut ring = file.ring(0, 9, a, b, 0).expect("slot 0");
    ring.set_isns(11, 22);
    for n in 1..=3 {
        ring.push(
            Record::new(Kind::AppWrite, 0, n, n * 10, 0, 0),
            u64::from(n) * TICK_NS,
        );
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut t = 10_000u64;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        t += 1000;
        ring.push(Record::new(Kind::AppRead, 0, 1, 0, 0, 0), t);
    }
}
