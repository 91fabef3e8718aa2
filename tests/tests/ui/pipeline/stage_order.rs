//! A stage whose input the previous stage does not produce.

use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::stage::{Cx, Stage, Verdict};

/// Takes raw frames, passes on their length.
struct Length;
impl<B: PacketBuf> Stage<B> for Length {
    type In = B;
    type Out = usize;
    fn process(&mut self, f: B, _: &mut Cx<'_, B>) -> Verdict<usize, B> {
        Verdict::Pass(f.len())
    }
}

/// Takes raw frames.
struct Count(u64);
impl<B: PacketBuf> Stage<B> for Count {
    type In = B;
    type Out = B;
    fn process(&mut self, f: B, _: &mut Cx<'_, B>) -> Verdict<B> {
        self.0 += 1;
        Verdict::Pass(f)
    }
}

#[pipeline]
struct Wrong {
    #[port]
    port: tpa::port::memory::MemoryPort,
    length: Length,
    count: Count,
}

fn main() {}
