//! Branching: a classifying stage sends each packet down one of two arms.

use core::marker::PhantomData;

use super::{earliest, CountedView, Cx, Stage, Verdict};
use crate::buf::PacketBuf;
use crate::port::Burst;

/// Which arm of a [`Demux`] a packet takes, carrying the packet as that arm
/// expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork<L, R> {
    /// To the left arm.
    Left(L),
    /// To the right arm.
    Right(R),
}

/// A branch that is itself a stage: `classify` (a stage whose `Out` is a
/// [`Fork`]) decides, then `left` or `right` handles the packet. Both arms
/// pass on the same type, which is the demux's `Out`; an arm can be a chain
/// (a tuple of stages) or another `Demux`, for more than two ways.
///
/// Everything is known at compile time: a demux costs one `match`.
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::stage::{Cx, Demux, Fork, Stage, Verdict};
///
/// /// Splits on the EtherType: ARP left, everything else right.
/// struct ArpOrNot;
/// impl<B: PacketBuf, S> Stage<B, S> for ArpOrNot {
///     type In = B;
///     type Out = Fork<B, B>;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B, S>) -> Verdict<Fork<B, B>, B> {
///         match f.data().get(12..14) {
///             Some([0x08, 0x06]) => Verdict::Pass(Fork::Left(f)),
///             _ => Verdict::Pass(Fork::Right(f)),
///         }
///     }
/// }
/// /// Sends everything to the host.
/// struct ToHost;
/// impl<B: PacketBuf, S> Stage<B, S> for ToHost {
///     type In = B;
///     type Out = core::convert::Infallible;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
///         Verdict::ToHost(f)
///     }
/// }
/// let _arp_to_host_rest_too = Demux::new(ArpOrNot, ToHost, ToHost);
/// ```
#[derive(Debug, Default)]
pub struct Demux<C, L, R> {
    /// Decides the arm.
    pub classify: C,
    /// Takes `Fork::Left` packets.
    pub left: L,
    /// Takes `Fork::Right` packets.
    pub right: R,
}

impl<C, L, R> Demux<C, L, R> {
    /// A demux from its classifier and its two arms.
    pub fn new(classify: C, left: L, right: R) -> Self {
        Demux {
            classify,
            left,
            right,
        }
    }
}

impl<B, S, C, L, R> Stage<B, S> for Demux<C, L, R>
where
    B: PacketBuf,
    L: Stage<B, S>,
    R: Stage<B, S, Out = L::Out>,
    C: Stage<B, S, Out = Fork<L::In, R::In>>,
{
    type In = C::In;
    type Out = L::Out;
    const CUSTOM_REASONS: &'static [&'static str] = C::CUSTOM_REASONS;

    #[inline(always)]
    fn process(&mut self, input: C::In, cx: &mut Cx<'_, B, S>) -> Verdict<L::Out, B> {
        let (left, right) = (&mut self.left, &mut self.right);
        self.classify.process_then(
            input,
            cx,
            #[inline(always)]
            |verdict, cx| route(left, right, verdict, cx),
        )
    }

    #[inline(always)]
    fn prefetch(&self, input: &C::In) {
        self.classify.prefetch(input);
    }

    /// The burst goes to the classifier's `process_burst`; each packet then
    /// takes its arm. A classifier that
    /// [routes in its arms](Stage::ROUTES_IN_ARMS) is called packet by
    /// packet instead, each packet going straight down its arm after the
    /// classifier's [`prefetch`](Stage::prefetch) of the one that follows
    /// it, and `next` takes the arm's verdict once, after them.
    #[inline(always)]
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<C::In, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<L::Out, B>, &mut Cx<'_, B, S>),
    ) {
        if C::ROUTES_IN_ARMS {
            let mut packets = burst.drain();
            let mut ahead = packets.next();
            while let Some(input) = ahead.take() {
                ahead = packets.next();
                if let Some(after) = &ahead {
                    self.classify.prefetch(after);
                }
                let verdict = self.process(input, cx);
                next(verdict, cx);
            }
            return;
        }
        let (left, right) = (&mut self.left, &mut self.right);
        self.classify.process_burst(burst, cx, |verdict, cx| {
            let verdict = route(left, right, verdict, cx);
            next(verdict, cx)
        });
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        self.classify.poll(cx);
        self.left.poll(cx);
        self.right.poll(cx);
    }

    #[inline]
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        self.classify.fire_timers(cx) + self.left.fire_timers(cx) + self.right.fire_timers(cx)
    }

    #[inline]
    fn next_deadline(&self, state: &S) -> Option<u64> {
        earliest(
            self.classify.next_deadline(state),
            earliest(
                self.left.next_deadline(state),
                self.right.next_deadline(state),
            ),
        )
    }
    fn visit_counted(&self, visit: &mut dyn FnMut(CountedView<'_>)) {
        self.classify.visit_counted(visit);
        self.left.visit_counted(visit);
        self.right.visit_counted(visit);
    }
}

/// Sends the classifier's verdict down its arm.
#[inline(always)]
fn route<B, S, L, R>(
    left: &mut L,
    right: &mut R,
    verdict: Verdict<Fork<L::In, R::In>, B>,
    cx: &mut Cx<'_, B, S>,
) -> Verdict<L::Out, B>
where
    B: PacketBuf,
    L: Stage<B, S>,
    R: Stage<B, S, Out = L::Out>,
{
    match verdict {
        Verdict::Pass(Fork::Left(p)) => left.process(p, cx),
        Verdict::Pass(Fork::Right(p)) => right.process(p, cx),
        Verdict::Drop(r) => Verdict::Drop(r),
        Verdict::Consumed => Verdict::Consumed,
        Verdict::Transmit(b) => Verdict::Transmit(b),
        Verdict::ToHost(b) => Verdict::ToHost(b),
    }
}

/// The classifier of a [`Demux`] whose input is already a [`Fork`]: passes
/// it on as it is. With it, demuxes nest for more than two ways: a
/// classifier that returns `Fork<A, Fork<B, C>>` feeds
/// `Demux<Classify, ArmA, Demux<Split<B, C>, ArmB, ArmC>>`, and the inner
/// demux takes the right arm's `Fork<B, C>` apart without deciding again.
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::stage::{Cx, Demux, Fork, Split, Stage, Verdict};
///
/// /// ARP left; IPv4 or anything else right, already told apart.
/// struct ByEtherType;
/// impl<B: PacketBuf, S> Stage<B, S> for ByEtherType {
///     type In = B;
///     type Out = Fork<B, Fork<B, B>>;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
///         let way = match f.data().get(12..14) {
///             Some([0x08, 0x06]) => Fork::Left(f),
///             Some([0x08, 0x00]) => Fork::Right(Fork::Left(f)),
///             _ => Fork::Right(Fork::Right(f)),
///         };
///         Verdict::Pass(way)
///     }
/// }
/// /// Sends everything to the host.
/// struct ToHost;
/// impl<B: PacketBuf, S> Stage<B, S> for ToHost {
///     type In = B;
///     type Out = core::convert::Infallible;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
///         Verdict::ToHost(f)
///     }
/// }
/// /// ARP, IPv4 and the rest, each down its own arm.
/// fn three_ways<B: PacketBuf>() -> impl Stage<B, (), In = B> {
///     Demux::new(ByEtherType, ToHost, Demux::new(Split::new(), ToHost, ToHost))
/// }
/// ```
pub struct Split<L, R>(PhantomData<fn(L, R)>);

impl<L, R> Split<L, R> {
    /// The pass-through classifier.
    pub fn new() -> Self {
        Split(PhantomData)
    }
}

impl<L, R> Default for Split<L, R> {
    fn default() -> Self {
        Split::new()
    }
}

impl<L, R> core::fmt::Debug for Split<L, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Split")
    }
}

impl<B: PacketBuf, S, L, R> Stage<B, S> for Split<L, R> {
    type In = Fork<L, R>;
    type Out = Fork<L, R>;

    #[inline(always)]
    fn process(&mut self, fork: Fork<L, R>, _cx: &mut Cx<'_, B, S>) -> Verdict<Fork<L, R>, B> {
        Verdict::Pass(fork)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::PoolBuf;
    use crate::pipeline::{NoHost, Runtime};
    use crate::port::memory::{MemoryWire, WireConfig};

    /// Sends 0 left, 1 to the middle and anything else right.
    struct ThreeWays;
    impl Stage<PoolBuf> for ThreeWays {
        type In = u8;
        type Out = Fork<u8, Fork<u8, u8>>;
        fn process(&mut self, n: u8, _: &mut Cx<'_, PoolBuf>) -> Verdict<Self::Out, PoolBuf> {
            Verdict::Pass(match n {
                0 => Fork::Left(n),
                1 => Fork::Right(Fork::Left(n)),
                _ => Fork::Right(Fork::Right(n)),
            })
        }
    }

    /// Passes its input on, labelled with the arm's name.
    struct Arm(&'static str);
    impl Stage<PoolBuf> for Arm {
        type In = u8;
        type Out = (&'static str, u8);
        fn process(&mut self, n: u8, _: &mut Cx<'_, PoolBuf>) -> Verdict<Self::Out, PoolBuf> {
            Verdict::Pass((self.0, n))
        }
    }

    #[test]
    fn nested_demuxes_with_split_send_each_packet_down_its_own_arm() {
        let (mut port, _peer) = MemoryWire::pair(WireConfig::default()).expect("memory wire");
        let mut runtime: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
        let mut demux = Demux::new(
            ThreeWays,
            Arm("left"),
            Demux::new(Split::new(), Arm("middle"), Arm("right")),
        );
        let seen: Vec<_> = runtime.with_cx(&mut port, &mut NoHost, 0, |cx| {
            [0, 1, 2, 1]
                .into_iter()
                .map(|n| match demux.process(n, cx) {
                    Verdict::Pass(labelled) => Some(labelled),
                    _ => None,
                })
                .collect()
        });
        assert_eq!(
            seen,
            [
                Some(("left", 0)),
                Some(("middle", 1)),
                Some(("right", 2)),
                Some(("middle", 1)),
            ]
        );
    }

    /// Passes its input on as it is.
    struct Same;
    impl Stage<PoolBuf> for Same {
        type In = u8;
        type Out = u8;
        fn process(&mut self, n: u8, _: &mut Cx<'_, PoolBuf>) -> Verdict<u8, PoolBuf> {
            Verdict::Pass(n)
        }
    }

    #[test]
    fn counted_stages_nested_in_demuxes_and_chains_are_visited_in_order() {
        use crate::stage::Counted;
        let (mut port, _peer) = MemoryWire::pair(WireConfig::default()).expect("memory wire");
        let mut runtime: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
        let mut demux = Demux::new(
            Counted::new(ThreeWays),
            Counted::named("left", Arm("left")),
            Demux::new(
                Split::new(),
                (
                    Counted::named("before_middle", Same),
                    Counted::named("middle", Arm("middle")),
                ),
                Counted::named("right", Arm("right")),
            ),
        );
        runtime.with_cx(&mut port, &mut NoHost, 0, |cx| {
            for n in [0, 1, 2, 1, 1] {
                let _ = demux.process(n, cx);
            }
        });
        let mut seen = Vec::new();
        Stage::<PoolBuf>::visit_counted(&demux, &mut |view| {
            seen.push((view.name, view.stats.passed))
        });
        assert_eq!(
            seen,
            [
                ("ThreeWays", 5),
                ("left", 1),
                ("before_middle", 3),
                ("middle", 3),
                ("right", 1)
            ]
        );
    }
}
