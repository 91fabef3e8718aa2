//! Ports: burst receive and transmit of [`PacketBuf`]s.
//!
//! A [`Port`] value is one queue pair of one device, owned by one worker.
//! Backends:
//! - [`memory`]: two ports joined in memory with seeded impairment (tests,
//!   simulation, benchmarks).
//! - [`tap`]: a Linux TAP device; the kernel is the peer.
//! - [`af_packet`]: TPACKET_V2/V3 mmap rings on any Linux interface.
//! - `af_xdp` (feature `af_xdp`): AF_XDP sockets beside the kernel on the
//!   same interface and address, tpa's XDP program handing tpa only its
//!   own flows.
//! - `dpdk` (feature `dpdk`): any DPDK port, mbufs as buffers.

pub mod af_packet;
#[cfg(feature = "af_xdp")]
pub mod af_xdp;
mod burst;
mod caps;
#[cfg(feature = "dpdk")]
pub mod dpdk;
mod error;
pub mod memory;
mod netdev;
pub mod offload;
pub mod shared_host;
pub mod steer;
pub mod tap;
pub mod vnet;

pub use burst::{Burst, BURST_SIZE};
pub use caps::{Offloads, PortCaps};
pub use error::PortError;
pub use shared_host::SharedHost;

#[doc = include_str!("../../../doc/guide/ports.md")]
#[cfg(doctest)]
pub struct GuidePorts;

use std::time::Duration;

use crate::buf::{BufSource, PacketBuf, PoolOf};
use steer::Steering;

/// What [`Port::wait_rx`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxWait {
    /// A frame may be waiting: call [`Port::rx_burst`].
    Ready,
    /// The time ran out with nothing received.
    TimedOut,
    /// The port cannot block (it returned at once): the caller sleeps or
    /// polls instead.
    Unsupported,
}

/// One RX/TX queue pair of a packet device.
pub trait Port {
    /// The buffer type this port receives into and transmits from.
    type Buf: PacketBuf;

    /// Receives packets, appending them to `rx` until it is full or the
    /// device has no more. Returns how many were appended.
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<Self::Buf, N>) -> usize;

    /// Transmits packets from the front of `tx`. The ones sent are removed;
    /// those the device could not take stay in `tx`, in order, for the caller
    /// to retry or drop. Returns how many were sent.
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<Self::Buf, N>) -> usize;

    /// The pool the port's buffers come from: where a stage's
    /// [`Cx::alloc`](crate::stage::Cx::alloc) allocates, with a direct call.
    fn pool(&self) -> &PoolOf<Self::Buf>;

    /// Allocates an empty buffer (with the port's default headroom) for a
    /// packet the application builds itself. `None` when the pool is empty.
    #[inline]
    fn alloc(&mut self) -> Option<Self::Buf> {
        BufSource::alloc(self.pool())
    }

    /// Fills `out` with empty buffers, as many as it has room for or the
    /// pool has; returns how many were added (the pool's bulk path).
    #[inline]
    fn alloc_bulk<const N: usize>(&mut self, out: &mut Burst<Self::Buf, N>) -> usize {
        BufSource::alloc_bulk(self.pool(), out)
    }

    /// What the device is and can do.
    fn caps(&self) -> &PortCaps;

    /// Which receive queue each flow lands on ([`steer`]). By default the
    /// port cannot tell.
    fn steering(&self) -> Steering {
        Steering::Unknown
    }

    /// Blocks until the port has a frame to receive or `timeout` has
    /// passed: the receive interrupt mode (as DPDK's Rx interrupts), for
    /// a worker with nothing to do that would otherwise poll an empty
    /// port or sleep blindly. A port that can ([`AfPacket`](af_packet::AfPacket),
    /// [`Tap`](tap::Tap)) waits in `ppoll(2)` on its file descriptor and
    /// is woken by the kernel when a frame arrives; the others return
    /// [`RxWait::Unsupported`] at once (the default), and
    /// [`IdlePolicy::Wait`](crate::worker::IdlePolicy::Wait) sleeps
    /// instead. A port may return [`RxWait::Ready`] spuriously (a signal,
    /// a frame it then drops), never [`RxWait::TimedOut`] with a frame in
    /// its ring.
    fn wait_rx(&mut self, timeout: Duration) -> RxWait {
        let _ = timeout;
        RxWait::Unsupported
    }

    /// Shows `visit` the port's own counters by name (`rx_packets`,
    /// `rx_bytes`, drops, the kernel's ring drops, ...), for stats. It may
    /// ask the kernel (AF_PACKET's ring drops): never on the packet path.
    /// A wrapper forwards to the port it wraps; the default has none.
    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        let _ = visit;
    }

    /// Beside the host's kernel (an AF_XDP port), what tpa's socket
    /// tables and egress path tell of their ports and learn neighbours
    /// from (see [`SharedHost`]); `None` (the default) for a port that
    /// has its interface to itself.
    fn shared_host(&self) -> Option<std::sync::Arc<dyn SharedHost>> {
        None
    }
}
