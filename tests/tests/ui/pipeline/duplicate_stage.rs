//! Two stages with the same name.

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
struct Twice {
    #[port]
    port: MemoryPort,
    check: Pass,
    check: Pass,
}

fn main() {}
