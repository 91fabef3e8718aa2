//! An `#[app]` in a pipeline without a `#[state]` (so without `Events`).

use tpa::app::NoApp;
use tpa::buf::PoolBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa_stages::discard::Discard;

#[pipeline]
struct Stateless {
    #[port]
    port: MemoryPort,
    #[app]
    app: NoApp,
    drop_all: Discard<PoolBuf>,
}

fn main() {}
