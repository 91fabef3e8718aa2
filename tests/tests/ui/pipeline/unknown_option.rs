//! An option #[pipeline] does not have.

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

#[pipeline(bursts = 64)]
struct Typo {
    #[port]
    port: MemoryPort,
    pass: Pass,
}

fn main() {}
