//! The TCP connection engine (RFC 9293), sans-IO: segments in, segments
//! out, timers by deadline, the application's calls. No addresses, no
//! wire bytes, no clock of its own: the stages pass everything in.

mod events;
mod info;
mod state;

pub use events::ConnEvents;
pub use info::TcpInfo;
pub use state::State;

use tpa::app::SocketError;
use tpa::buf::PacketBuf;

use super::config::TcpConfig;
use super::segment::{SegmentIn, SegmentOut};
use super::seq::SeqNumber;

/// What the socket table picks for a new connection.
///
/// ```
/// use tpa_stages::tcp::conn::ConnParams;
/// use tpa_stages::tcp::seq::SeqNumber;
/// let p = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
/// assert_eq!(p.mss, 1460);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnParams {
    /// Our MSS, from the path MTU (what we announce and the most we send).
    pub mss: u16,
    /// Our initial sequence number (RFC 6528, from the table's generator).
    pub iss: SeqNumber,
    /// Added to our millisecond clock to make TSval (RFC 7323 §5.4: a
    /// random offset per connection).
    pub ts_offset: u32,
}

/// One TCP connection.
pub struct Connection<B: PacketBuf> {
    _b: core::marker::PhantomData<B>,
}

impl<B: PacketBuf> Connection<B> {
    /// An active open: SYN_SENT, the SYN queued for `poll_transmit`.
    pub fn connect(cfg: &TcpConfig, params: ConnParams, now_ns: u64) -> Self {
        let _ = (cfg, params, now_ns);
        unimplemented!()
    }

    /// A passive open from a listener's SYN: SYN_RECEIVED, the SYN-ACK queued.
    pub fn accept(cfg: &TcpConfig, params: ConnParams, syn: &SegmentIn<B>, now_ns: u64) -> Self {
        let _ = (cfg, params, syn, now_ns);
        unimplemented!()
    }

    /// The state.
    pub fn state(&self) -> State {
        unimplemented!()
    }

    /// A segment for this connection (4-tuple matched, checksum good).
    pub fn on_segment(&mut self, seg: SegmentIn<B>, now_ns: u64) {
        let _ = (seg, now_ns);
        unimplemented!()
    }

    /// The next segment to send, `None` when there is nothing.
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<SegmentOut<B>> {
        let _ = now_ns;
        unimplemented!()
    }

    /// Whether `poll_transmit` would return a segment.
    pub fn wants_transmit(&self) -> bool {
        unimplemented!()
    }

    /// The earliest timer.
    pub fn next_deadline(&self) -> Option<u64> {
        unimplemented!()
    }

    /// Runs every timer due at `now_ns`.
    pub fn on_timer(&mut self, now_ns: u64) {
        let _ = now_ns;
        unimplemented!()
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> ConnEvents {
        unimplemented!()
    }

    /// Copies `data` into the send queue.
    pub fn send(
        &mut self,
        data: &[u8],
        alloc: &mut dyn FnMut() -> Option<B>,
    ) -> Result<usize, SocketError> {
        let _ = (data, alloc);
        unimplemented!()
    }

    /// Queues `buf` without a copy.
    pub fn send_buf(&mut self, buf: B) -> Result<(), (SocketError, B)> {
        let _ = buf;
        unimplemented!()
    }

    /// The next received buffer, zero-copy.
    pub fn recv(&mut self) -> Result<Option<B>, SocketError> {
        unimplemented!()
    }

    /// Copies received bytes into `out`.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, SocketError> {
        let _ = out;
        unimplemented!()
    }

    /// Bytes `send` would take now.
    pub fn send_space(&self) -> usize {
        unimplemented!()
    }

    /// Half-close.
    pub fn shutdown(&mut self) -> Result<(), SocketError> {
        unimplemented!()
    }

    /// Close.
    pub fn close(&mut self) {
        unimplemented!()
    }

    /// Reset.
    pub fn abort(&mut self) {
        unimplemented!()
    }

    /// A snapshot.
    pub fn info(&self) -> TcpInfo {
        unimplemented!()
    }

    /// Whether CLOSED.
    pub fn is_closed(&self) -> bool {
        unimplemented!()
    }
}
