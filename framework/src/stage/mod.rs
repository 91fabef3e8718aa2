//! Stages: the units a pipeline is made of.
//!
//! A [`Stage`] takes one typed packet (`In`), does its work with the help of
//! a [`Cx`] (the time, the transmit queue, the host path, buffer allocation)
//! and returns a [`Verdict`]: pass a packet of type `Out` to the next stage,
//! drop it with a [`Reason`], keep it, transmit a buffer, or hand it to the
//! host. `#[pipeline]` chains stages into one loop, checking at compile time
//! that each stage's `In` is the previous stage's `Out`, and counts every
//! verdict per stage in [`StageStats`].
//!
//! Combinators are stages too, so branching keeps static dispatch:
//! - a tuple `(A, B, …)` of up to six stages is the chain A → B → …;
//! - [`Demux`] runs a classifying stage and sends each packet down one of
//!   two arms ([`Fork`]);
//! - [`Split`] is the classifier of a [`Demux`] nested in another's arm,
//!   for more than two ways;
//! - [`Counted`] keeps its own [`StageStats`] for a stage inside a
//!   combinator.
//!
//! The programming guide (`doc/guide/pipelines.md`) walks through writing a
//! stage and declaring a pipeline.

mod chain;
mod counted;
mod cx;
mod demux;
mod stats;
mod verdict;

pub use counted::Counted;
pub use cx::Cx;
pub use demux::{Demux, Fork, Split};
pub use stats::StageStats;
pub use verdict::{Reason, Verdict};

use crate::buf::PacketBuf;
use crate::port::Burst;

/// One step of a packet pipeline, for packets in buffers of type `B`.
///
/// A stage is usually written once for every buffer type,
/// `impl<B: PacketBuf> Stage<B> for MyStage`, so the same stage runs over
/// tpa's pool buffers, DPDK mbufs or a test's buffers.
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::stage::{Cx, Reason, Stage, Verdict};
///
/// /// Drops frames shorter than a minimum Ethernet frame (without FCS).
/// struct MinLength;
///
/// impl<B: PacketBuf> Stage<B> for MinLength {
///     type In = B;
///     type Out = B;
///     fn process(&mut self, frame: B, _cx: &mut Cx<'_, B>) -> Verdict<B> {
///         if frame.len() < 60 {
///             Verdict::Drop(Reason::TOO_SHORT)
///         } else {
///             Verdict::Pass(frame)
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stage for buffers of type `{B}`",
    label = "not a `Stage<{B}>`",
    note = "every field of a `#[pipeline]` struct except the port (and the host and the observer) is a stage: implement `tpa::stage::Stage<B>` for it"
)]
pub trait Stage<B: PacketBuf> {
    /// What the stage takes: the raw buffer for the first stage, a typed
    /// packet produced by the stage before it otherwise.
    type In;
    /// What the stage passes on to the next stage.
    type Out;

    /// Names of the stage's own drop reasons, `Reason::custom(0)` first; used
    /// when the pipeline's counters are printed.
    const CUSTOM_REASONS: &'static [&'static str] = &[];

    /// Handles one packet.
    fn process(&mut self, input: Self::In, cx: &mut Cx<'_, B>) -> Verdict<Self::Out, B>;

    /// Handles a burst, handing each verdict to `next` in order. The default
    /// calls [`process`](Stage::process) for each packet; override it where
    /// seeing the whole burst first pays (prefetching, batched lookups).
    /// The pipeline calls it for its first stage, which receives the whole
    /// RX burst; later stages see one packet at a time.
    #[inline]
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<Self::In, N>,
        cx: &mut Cx<'_, B>,
        mut next: impl FnMut(Verdict<Self::Out, B>, &mut Cx<'_, B>),
    ) {
        for input in burst.drain() {
            let verdict = self.process(input, cx);
            next(verdict, cx);
        }
    }

    /// Work not driven by a received packet (timers, queued output, the
    /// application's writes), called once per loop iteration after the RX
    /// burst, before the transmit queue is flushed. It may queue packets
    /// through `cx`. The default does nothing.
    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B>) {
        let _ = cx;
    }
}
