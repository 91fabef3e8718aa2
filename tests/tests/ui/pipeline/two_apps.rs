//! Two `#[app]` fields: a pipeline calls one application.

use tpa::app::{Events, NoApp};
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
struct Twice {
    #[port]
    port: MemoryPort,
    #[state]
    tables: Tables,
    #[app]
    first: NoApp,
    #[app]
    second: NoApp,
    drop_all: Discard<PoolBuf>,
}

fn main() {}
