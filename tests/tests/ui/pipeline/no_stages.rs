//! A pipeline with a port and nothing to run.

use tpa::pipeline;
use tpa::port::memory::MemoryPort;

#[pipeline]
struct Empty {
    #[port]
    port: MemoryPort,
}

fn main() {}
