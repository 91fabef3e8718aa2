//! Taps: observers of the frames crossing a pipeline's port, both ways.

/// Sees every frame that crosses the pipeline's port, in both directions, the
/// way a packet capture on the interface would: a `#[tap]` field of a
/// `#[pipeline]` struct.
///
/// - [`on_rx`](Tap::on_rx) is called for every received frame, in arrival
///   order, before the first stage sees it;
/// - [`on_tx`](Tap::on_tx) is called for every frame the pipeline hands to
///   the port (replies, and frames stages built in `poll`), in transmit
///   order, when it is first offered to the port: at the end-of-iteration
///   flush, or at an early flush when the transmit queue fills up. A frame
///   the port does not take at once stays queued and is not shown again.
///
/// Frames handed to the host (`ToHost`) do not cross the port and are not
/// shown. A tap cannot change or keep a frame; `now_ns` is the iteration's
/// time. A pipeline without a `#[tap]` field makes no tap calls at all.
///
/// `Option<T>` is a tap that may be switched off when the pipeline is
/// built, and a pair `(T, U)` shows every frame to both.
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::pipeline::Tap;
///
/// /// Counts the bytes going each way.
/// #[derive(Default)]
/// struct ByteCounter {
///     rx: u64,
///     tx: u64,
/// }
///
/// impl<B: PacketBuf> Tap<B> for ByteCounter {
///     fn on_rx(&mut self, frame: &B, _now_ns: u64) {
///         self.rx += frame.len() as u64;
///     }
///     fn on_tx(&mut self, frame: &B, _now_ns: u64) {
///         self.tx += frame.len() as u64;
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tap for buffers of type `{B}`",
    label = "not a `Tap<{B}>`",
    note = "the `#[tap]` field of a `#[pipeline]` sees the frames crossing the port: implement `tpa::pipeline::Tap<B>` for it"
)]
pub trait Tap<B> {
    /// A frame was received (before any stage runs).
    fn on_rx(&mut self, frame: &B, now_ns: u64);
    /// A frame is being handed to the port for transmission.
    fn on_tx(&mut self, frame: &B, now_ns: u64);
}

/// No tap: what a pipeline without a `#[tap]` field uses. Its calls are
/// empty and vanish when inlined.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTap;

impl<B> Tap<B> for NoTap {
    #[inline(always)]
    fn on_rx(&mut self, _frame: &B, _now_ns: u64) {}
    #[inline(always)]
    fn on_tx(&mut self, _frame: &B, _now_ns: u64) {}
}

impl<B, T: Tap<B>> Tap<B> for Option<T> {
    #[inline]
    fn on_rx(&mut self, frame: &B, now_ns: u64) {
        if let Some(tap) = self {
            tap.on_rx(frame, now_ns);
        }
    }
    #[inline]
    fn on_tx(&mut self, frame: &B, now_ns: u64) {
        if let Some(tap) = self {
            tap.on_tx(frame, now_ns);
        }
    }
}

impl<B, T: Tap<B>, U: Tap<B>> Tap<B> for (T, U) {
    #[inline]
    fn on_rx(&mut self, frame: &B, now_ns: u64) {
        self.0.on_rx(frame, now_ns);
        self.1.on_rx(frame, now_ns);
    }
    #[inline]
    fn on_tx(&mut self, frame: &B, now_ns: u64) {
        self.0.on_tx(frame, now_ns);
        self.1.on_tx(frame, now_ns);
    }
}
