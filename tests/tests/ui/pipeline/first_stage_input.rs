//! A first stage that does not take the port's buffers.

use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::stage::{Cx, Stage, Verdict};

/// Takes lengths, not buffers.
struct Sum(usize);
impl<B: PacketBuf> Stage<B> for Sum {
    type In = usize;
    type Out = usize;
    fn process(&mut self, n: usize, _: &mut Cx<'_, B>) -> Verdict<usize, B> {
        self.0 += n;
        Verdict::Pass(n)
    }
}

#[pipeline]
struct Wrong {
    #[port]
    port: tpa::port::memory::MemoryPort,
    sum: Sum,
}

fn main() {}
