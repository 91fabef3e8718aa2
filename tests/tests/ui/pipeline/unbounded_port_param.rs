//! A port type parameter without its `Port` bound.

use tpa::buf::PacketBuf;
use tpa::pipeline;
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
struct Generic<P> {
    #[port]
    port: P,
    pass: Pass,
}

fn main() {}
