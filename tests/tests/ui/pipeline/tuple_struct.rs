//! A tuple struct has no stage names.

use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::port::memory::MemoryPort;
use tpa::stage::{Cx, Stage, Verdict};

struct Pass;
impl<B: PacketBuf> Stage<B> for Pass {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B>) -> Verdict<B> {
        Verdict::Pass(p)
    }
}

#[pipeline]
struct Unnamed(MemoryPort, Pass);

fn main() {}
