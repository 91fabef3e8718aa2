//! The proxy engine alone, for callgrind: GET or SET requests, single or
//! in pipelines of 16, through the sans-IO engine over four servers played
//! in memory (tests/support/engine_driver.rs). Run by
//! benches/callgrind_proxy_engine.sh, which counts the engine's
//! instructions per request; alone it prints the nanoseconds per request
//! (a rough figure: time on a shared machine).
//!
//! `TPA_PROXY_ENGINE_RUN=<get1|set1|get16|set16>:<batches>` picks the
//! variant and the number of measured batches (after 200 of warm-up).

use std::time::Instant;

#[path = "../tests/support/engine_driver.rs"]
mod engine_driver;

use engine_driver::{Command, Driver, Workload};

const WARM: usize = 200;

fn main() {
    let run = std::env::var("TPA_PROXY_ENGINE_RUN").unwrap_or_else(|_| "get16:2000".into());
    let (variant, batches) = run
        .split_once(':')
        .and_then(|(v, n)| Some((v, n.parse::<usize>().ok()?)))
        .unwrap_or_else(|| panic!("TPA_PROXY_ENGINE_RUN={run:?}: expected <variant>:<batches>"));
    let (command, pipeline) = match variant {
        "get1" => (Command::Get, 1),
        "set1" => (Command::Set, 1),
        "get16" => (Command::Get, 16),
        "set16" => (Command::Set, 16),
        other => {
            panic!("TPA_PROXY_ENGINE_RUN: unknown variant {other:?} (get1, set1, get16, set16)")
        }
    };
    let w = Workload::new(command, WARM + batches, pipeline);
    let mut d = Driver::new();
    for b in 0..WARM {
        d.round(&w, b);
    }
    let start = Instant::now();
    for b in WARM..w.len() {
        d.round(&w, b);
    }
    let took = start.elapsed();
    let requests = batches * pipeline;
    println!(
        "{variant}: {requests} requests, {:.0} ns per request",
        took.as_nanos() as f64 / requests as f64
    );
}
