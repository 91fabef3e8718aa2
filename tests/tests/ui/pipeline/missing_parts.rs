//! A stage that needs two parts at once, one of which the state lacks.

use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::stage::{Cx, Stage, Verdict};
use tpa::state::{Parts, State};

#[derive(Default)]
struct Neighbors(Vec<u32>);
#[derive(Default)]
struct Routes(Vec<u32>);
#[derive(Default)]
struct Sockets(Vec<u32>);

/// Needs the routes and the neighbors together.
struct Output;
impl<B: PacketBuf, S: Parts<(Routes, Neighbors)>> Stage<B, S> for Output {
    type In = B;
    type Out = B;
    fn process(&mut self, f: B, cx: &mut Cx<'_, B, S>) -> Verdict<B> {
        let ((routes, neighbors), _port) = cx.parts::<(Routes, Neighbors)>();
        neighbors.0.extend(routes.0.first());
        Verdict::Pass(f)
    }
}

#[derive(State, Default)]
struct Tables {
    routes: Routes,
    sockets: Sockets,
}

#[pipeline]
struct Lacking {
    #[port]
    port: MemoryPort,
    #[state]
    tables: Tables,
    output: Output,
}

fn main() {}
