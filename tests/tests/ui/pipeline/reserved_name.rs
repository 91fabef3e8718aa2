//! Names starting with `__tpa` belong to the code `#[pipeline]` writes.

use tpa::pipeline;
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
struct Clash {
    port: MemoryPort,
    __tpa_cx: Counted<Pass>,
}

fn main() {}
