//! An `#[observer]` field whose type does not implement `Observer`.

use tpa::pipeline;
use tpa::port::memory::MemoryPort;

struct Pass;
impl<B: tpa::buf::PacketBuf> tpa::stage::Stage<B> for Pass {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut tpa::stage::Cx<'_, B>) -> tpa::stage::Verdict<B> {
        tpa::stage::Verdict::Pass(p)
    }
}

#[pipeline]
struct Wrong {
    port: MemoryPort,
    #[observer]
    log: Vec<u8>,
    pass: Pass,
}

fn main() {}
