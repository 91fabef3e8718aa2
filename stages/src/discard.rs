//! The end of a branch: drops whatever reaches it, with a reason.

use core::convert::Infallible;
use core::marker::PhantomData;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};

/// Drops every packet of type `T` that reaches it, counted under `reason`:
/// the last stage of a branch whose earlier stages pass on what they did not
/// handle. Its `Out` is [`Infallible`], the type every terminal branch of a
/// demux shares.
///
/// ```
/// use tpa::stage::Reason;
/// use tpa_stages::discard::Discard;
/// use tpa_stages::packet::Ipv4Packet;
/// let _end: Discard<Ipv4Packet<tpa::buf::PoolBuf>> = Discard::new(Reason::UNSUPPORTED);
/// ```
pub struct Discard<T> {
    reason: Reason,
    _packets: PhantomData<fn(T)>,
}

impl<T> Discard<T> {
    /// Drops with `reason`.
    pub fn new(reason: Reason) -> Self {
        Discard {
            reason,
            _packets: PhantomData,
        }
    }
}

impl<T> Default for Discard<T> {
    /// Drops as `unsupported`.
    fn default() -> Self {
        Discard::new(Reason::UNSUPPORTED)
    }
}

impl<T> core::fmt::Debug for Discard<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Discard")
            .field("reason", &self.reason)
            .finish()
    }
}

impl<B: PacketBuf, T, S> Stage<B, S> for Discard<T> {
    type In = T;
    type Out = Infallible;

    #[inline]
    fn process(&mut self, packet: T, _cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        drop(packet);
        Verdict::Drop(self.reason)
    }
}
