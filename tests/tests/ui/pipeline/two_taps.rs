//! Two `#[tap]` fields: one is allowed (a pair of taps is a tap).

use tpa::pipeline;
use tpa::pipeline::NoTap;
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
    #[tap]
    one: NoTap,
    #[tap]
    two: NoTap,
    pass: Counted<Pass>,
}

fn main() {}
