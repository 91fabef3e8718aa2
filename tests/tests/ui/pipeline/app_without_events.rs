//! An `#[app]` whose pipeline state has no `Events` part to deliver from.

use tpa::app::NoApp;
use tpa::buf::PoolBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::state::State;
use tpa_stages::discard::Discard;

#[derive(Default)]
struct Routes(Vec<u32>);

#[derive(State, Default)]
struct Tables {
    routes: Routes,
}

#[pipeline]
struct NoEvents {
    #[port]
    port: MemoryPort,
    #[state]
    tables: Tables,
    #[app]
    app: NoApp,
    drop_all: Discard<PoolBuf>,
}

fn main() {}
