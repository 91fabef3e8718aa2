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
pub use cx::{Cx, PortCx};
pub use demux::{Demux, Fork, Split};
pub use stats::StageStats;
pub use verdict::{Reason, Verdict};

use crate::buf::PacketBuf;
use crate::port::Burst;

/// One step of a packet pipeline, for packets in buffers of type `B`, in a
/// pipeline whose state is `S` (`()`: no state).
///
/// A stage is usually written once for every buffer type and every state,
/// `impl<B: PacketBuf, S> Stage<B, S> for MyStage`, so the same stage runs
/// over tpa's pool buffers, DPDK mbufs or a test's buffers, in any
/// pipeline. A stage that uses parts of the state says so in a bound
/// (`S: Part<NeighborCache>`, `S: Parts<(Sockets, Neighbors)>`; see
/// [`crate::state`]).
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::stage::{Cx, Reason, Stage, Verdict};
///
/// /// Drops frames shorter than a minimum Ethernet frame (without FCS).
/// struct MinLength;
///
/// impl<B: PacketBuf, S> Stage<B, S> for MinLength {
///     type In = B;
///     type Out = B;
///     fn process(&mut self, frame: B, _cx: &mut Cx<'_, B, S>) -> Verdict<B> {
///         if frame.len() < 60 {
///             Verdict::Drop(Reason::TOO_SHORT)
///         } else {
///             Verdict::Pass(frame)
///         }
///     }
/// }
/// ```
///
/// One iteration of the loop calls a stage's methods in a fixed order:
/// [`process_burst`](Stage::process_burst) (or [`process`](Stage::process)
/// per packet) with what was received, then, after the application ran,
/// [`poll`](Stage::poll) (protocol output), then
/// [`fire_timers`](Stage::fire_timers); the worker asks
/// [`next_deadline`](Stage::next_deadline) before it sleeps. Work on a
/// table several stages share (TCP's sockets, fed by an IPv4 and an IPv6
/// branch) is the state's instead, run once per iteration after the
/// stages' ([`Polled`](crate::state::Polled)), not each sharing stage's.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stage for buffers of type `{B}` and state `{S}`",
    label = "not a `Stage<{B}, {S}>`",
    note = "every field of a `#[pipeline]` struct except the port, host, observer, state and app is a stage: implement `tpa::stage::Stage<B, S>` for it, generic over `S` unless it needs parts of the state"
)]
pub trait Stage<B: PacketBuf, S = ()> {
    /// What the stage takes: the raw buffer for the first stage, a typed
    /// packet produced by the stage before it otherwise.
    type In;
    /// What the stage passes on to the next stage.
    type Out;

    /// Names of the stage's own drop reasons, `Reason::custom(0)` first; used
    /// when the pipeline's counters are printed.
    const CUSTOM_REASONS: &'static [&'static str] = &[];

    /// Whether [`process_then`](Stage::process_then) calls its
    /// continuation in each of its arms and
    /// [`process_burst`](Stage::process_burst) is the default: a [`Demux`]
    /// with this stage as classifier then takes a burst packet by packet,
    /// each straight down its arm, and hands the arm's verdict on once.
    /// Only a stage that overrides `process_then` and not `process_burst`
    /// sets it.
    const ROUTES_IN_ARMS: bool = false;

    /// Handles one packet.
    fn process(&mut self, input: Self::In, cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B>;

    /// Handles one packet and hands its verdict to `then`, returning what
    /// `then` returns: the same verdict [`process`](Stage::process) would
    /// give, handed over once. The default calls `process`; a classifier
    /// overrides it to call `then` in each of its arms, so that a
    /// [`Demux`] after it, inlined there, calls the arm's branch directly
    /// instead of matching the verdict again.
    #[inline(always)]
    fn process_then<R>(
        &mut self,
        input: Self::In,
        cx: &mut Cx<'_, B, S>,
        then: impl FnOnce(Verdict<Self::Out, B>, &mut Cx<'_, B, S>) -> R,
    ) -> R {
        let verdict = self.process(input, cx);
        then(verdict, cx)
    }

    /// Starts loading what [`process`](Stage::process) of `input` reads
    /// first, ahead of its turn: a burst's loop calls it for the next
    /// packet before it processes the current one (what a DPDK loop does
    /// with `rte_prefetch0`). A hint with no effect on the outcome; the
    /// default does nothing.
    #[inline(always)]
    fn prefetch(&self, input: &Self::In) {
        let _ = input;
    }

    /// Handles a burst, handing each verdict to `next` in order, exactly one
    /// verdict per input (the pipeline derives its pass counts from that).
    /// The default calls [`process`](Stage::process) for each packet, after
    /// [`prefetch`](Stage::prefetch) of the one that follows it; override
    /// it where seeing the whole burst first pays (batched lookups). The
    /// pipeline calls it for its first stage, which receives the whole RX
    /// burst; the combinators (chains, `Demux`,
    /// `Counted`) hand the burst on to their first stage in turn (a
    /// [`Demux`] whose classifier is [`ROUTES_IN_ARMS`](Stage::ROUTES_IN_ARMS)
    /// takes it packet by packet instead).
    #[inline]
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<Self::In, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<Self::Out, B>, &mut Cx<'_, B, S>),
    ) {
        let mut packets = burst.drain();
        let mut ahead = packets.next();
        while let Some(input) = ahead.take() {
            ahead = packets.next();
            if let Some(after) = &ahead {
                self.prefetch(after);
            }
            let verdict = self.process(input, cx);
            next(verdict, cx);
        }
    }

    /// Work not driven by a received packet: protocol output (queued data,
    /// ACKs, what the application wrote), called once per loop iteration
    /// after the application ran. It may queue packets through `cx`; the
    /// pipeline counts them as the stage's
    /// [`originated`](StageStats::originated). The default does nothing.
    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        let _ = cx;
    }

    /// Fires the stage's timers that are due at `cx.now_ns()` (retransmits,
    /// neighbor probes, keepalives), after every stage's
    /// [`poll`](Stage::poll); returns how many fired, work that keeps the
    /// worker from idling. Packets it queues count as
    /// [`originated`](StageStats::originated). The default fires nothing.
    #[inline]
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        let _ = cx;
        0
    }

    /// When the stage next needs [`fire_timers`](Stage::fire_timers) called
    /// (nanoseconds of the pipeline's clock), if ever: a sleeping worker
    /// wakes for it. `state` is the pipeline's state, for timers kept
    /// there. The default has no timers.
    #[inline]
    fn next_deadline(&self, state: &S) -> Option<u64> {
        let _ = state;
        None
    }

    /// Shows `visit` each [`Counted`] stage inside this one, in order:
    /// its name, its counters and its own drop reasons' names, for stats
    /// of stages nested in combinators. A combinator (chain, [`Demux`],
    /// `Counted`, ...) visits its parts; the default has none. Never
    /// called on the packet path.
    fn visit_counted(&self, visit: &mut dyn FnMut(CountedView<'_>)) {
        let _ = visit;
    }
}

/// One [`Counted`] stage as [`Stage::visit_counted`] shows it.
#[derive(Debug, Clone, Copy)]
pub struct CountedView<'a> {
    /// Its name ([`Counted::named`], else its stage's type's name).
    pub name: &'static str,
    /// Its counters.
    pub stats: &'a StageStats,
    /// The names of its stage's own drop reasons.
    pub custom_reasons: &'static [&'static str],
}

/// The earlier of two optional deadlines.
#[inline]
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
