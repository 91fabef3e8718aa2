//! Two `#[observer]` fields: one is allowed (a pair of them is an observer).

use tpa::pipeline;
use tpa::pipeline::NoObserver;
use tpa::port::memory::MemoryPort;
use tpa::stage::Counted;

struct Pass;
impl<B: tpa::buf::PacketBuf> tpa::stage::Stage<B> for Pass {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut tpa::stage::Cx<'_, B>) -> tpa::stage::Verdict<B> {
        tpa::stage::Verdict::Pass(p)
    }
}

#[pipeline]
struct Twice {
    port: MemoryPort,
    #[observer]
    one: NoObserver,
    #[observer]
    two: NoObserver,
    pass: Counted<Pass>,
}

fn main() {}
