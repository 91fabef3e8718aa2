//! Two `#[state]` fields: a pipeline has one state, holding every part.

use tpa::app::Events;
use tpa::buf::PoolBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::state::State;
use tpa_stages::discard::Discard;

#[derive(State, Default)]
struct Sockets {
    events: Events,
}

#[derive(State, Default)]
struct Neighbors {
    count: u64,
}

#[pipeline]
struct Twice {
    #[port]
    port: MemoryPort,
    #[state]
    sockets: Sockets,
    #[state]
    neighbors: Neighbors,
    drop_all: Discard<PoolBuf>,
}

fn main() {}
