//! An `#[app]` field whose type is not an application.

use tpa::app::Events;
use tpa::buf::PoolBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::state::State;
use tpa_stages::discard::Discard;

#[derive(State, Default)]
struct Tables {
    events: Events,
}

#[pipeline]
struct Wrong {
    #[port]
    port: MemoryPort,
    #[state]
    tables: Tables,
    #[app]
    app: u64,
    drop_all: Discard<PoolBuf>,
}

fn main() {}
