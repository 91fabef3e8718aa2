//! A stage that needs a part the pipeline state lacks.

use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::stage::{Cx, Stage, Verdict};
use tpa::state::{Part, State};

#[derive(Default)]
struct Neighbors(Vec<u32>);
#[derive(Default)]
struct Routes(Vec<u32>);

/// Counts frames in the neighbor table (it needs that part).
struct Learn;
impl<B: PacketBuf, S: Part<Neighbors>> Stage<B, S> for Learn {
    type In = B;
    type Out = B;
    fn process(&mut self, f: B, cx: &mut Cx<'_, B, S>) -> Verdict<B> {
        cx.part::<Neighbors>().0.push(f.len() as u32);
        Verdict::Pass(f)
    }
}

#[derive(State, Default)]
struct Tables {
    routes: Routes,
}

#[pipeline]
struct Lacking {
    #[port]
    port: MemoryPort,
    #[state]
    tables: Tables,
    learn: Learn,
}

fn main() {}
