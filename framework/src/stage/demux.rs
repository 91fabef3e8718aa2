//! Branching: a classifying stage sends each packet down one of two arms.

use super::{Cx, Stage, Verdict};
use crate::buf::PacketBuf;

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
/// impl<B: PacketBuf> Stage<B> for ArpOrNot {
///     type In = B;
///     type Out = Fork<B, B>;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B>) -> Verdict<Fork<B, B>, B> {
///         match f.data().get(12..14) {
///             Some([0x08, 0x06]) => Verdict::Pass(Fork::Left(f)),
///             _ => Verdict::Pass(Fork::Right(f)),
///         }
///     }
/// }
/// /// Sends everything to the host.
/// struct ToHost;
/// impl<B: PacketBuf> Stage<B> for ToHost {
///     type In = B;
///     type Out = core::convert::Infallible;
///     fn process(&mut self, f: B, _: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
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

impl<B, C, L, R> Stage<B> for Demux<C, L, R>
where
    B: PacketBuf,
    L: Stage<B>,
    R: Stage<B, Out = L::Out>,
    C: Stage<B, Out = Fork<L::In, R::In>>,
{
    type In = C::In;
    type Out = L::Out;
    const CUSTOM_REASONS: &'static [&'static str] = C::CUSTOM_REASONS;

    #[inline(always)]
    fn process(&mut self, input: C::In, cx: &mut Cx<'_, B>) -> Verdict<L::Out, B> {
        match self.classify.process(input, cx) {
            Verdict::Pass(Fork::Left(p)) => self.left.process(p, cx),
            Verdict::Pass(Fork::Right(p)) => self.right.process(p, cx),
            Verdict::Drop(r) => Verdict::Drop(r),
            Verdict::Consumed => Verdict::Consumed,
            Verdict::Transmit(b) => Verdict::Transmit(b),
            Verdict::ToHost(b) => Verdict::ToHost(b),
        }
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B>) {
        self.classify.poll(cx);
        self.left.poll(cx);
        self.right.poll(cx);
    }
}
