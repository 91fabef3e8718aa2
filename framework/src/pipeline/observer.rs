//! Observers of the frames crossing a pipeline's port, both ways.

/// Sees every frame that crosses the pipeline's port, in both directions, the
/// way a packet capture on the interface would: an `#[observer]` field of a
/// `#[pipeline]` struct.
///
/// - [`on_rx`](Observer::on_rx) is called for every received frame, in arrival
///   order, before the first stage sees it;
/// - [`on_tx`](Observer::on_tx) is called for every frame the pipeline hands to
///   the port (replies, and frames stages built in `poll`), in transmit
///   order, when it is first offered to the port: at the end-of-iteration
///   flush, or at an early flush when the transmit queue fills up. A frame
///   the port does not take at once stays queued and is not shown again.
///
/// Frames handed to the host (`ToHost`) do not cross the port and are not
/// shown. An observer cannot change or keep a frame; `now_ns` is the
/// iteration's time. A pipeline without an `#[observer]` field makes no
/// observer calls at all.
///
/// `Option<T>` is an observer that may be switched off when the pipeline is
/// built, and a pair `(T, U)` shows every frame to both.
///
/// ```
/// use tpa::buf::PacketBuf;
/// use tpa::pipeline::Observer;
///
/// /// Counts the bytes going each way.
/// #[derive(Default)]
/// struct ByteCounter {
///     rx: u64,
///     tx: u64,
/// }
///
/// impl<B: PacketBuf> Observer<B> for ByteCounter {
///     fn on_rx(&mut self, frame: &B, _now_ns: u64) {
///         self.rx += frame.len() as u64;
///     }
///     fn on_tx(&mut self, frame: &B, _now_ns: u64) {
///         self.tx += frame.len() as u64;
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an observer for buffers of type `{B}`",
    label = "not an `Observer<{B}>`",
    note = "the `#[observer]` field of a `#[pipeline]` sees the frames crossing the port: implement `tpa::pipeline::Observer<B>` for it"
)]
pub trait Observer<B> {
    /// A frame was received (before any stage runs).
    fn on_rx(&mut self, frame: &B, now_ns: u64);
    /// A frame is being handed to the port for transmission.
    fn on_tx(&mut self, frame: &B, now_ns: u64);
}

/// No observer: what a pipeline without an `#[observer]` field uses. Its
/// calls are empty and vanish when inlined.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl<B> Observer<B> for NoObserver {
    #[inline(always)]
    fn on_rx(&mut self, _frame: &B, _now_ns: u64) {}
    #[inline(always)]
    fn on_tx(&mut self, _frame: &B, _now_ns: u64) {}
}

impl<B, T: Observer<B>> Observer<B> for Option<T> {
    #[inline]
    fn on_rx(&mut self, frame: &B, now_ns: u64) {
        if let Some(observer) = self {
            observer.on_rx(frame, now_ns);
        }
    }
    #[inline]
    fn on_tx(&mut self, frame: &B, now_ns: u64) {
        if let Some(observer) = self {
            observer.on_tx(frame, now_ns);
        }
    }
}

impl<B, T: Observer<B>, U: Observer<B>> Observer<B> for (T, U) {
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
