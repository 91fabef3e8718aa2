//! The context a stage works in: time, the TX queue, the host path, buffers.

use crate::pipeline::{PortIo, Queues};
use crate::port::PortCaps;

/// What a stage may use besides the packet: the current time, the pipeline's
/// transmit queue, the exception path to the host and the port's buffer pool.
///
/// One `Cx` is built per loop iteration and passed to every stage call of
/// that iteration. Queueing is a push into an inline array (the queue is
/// flushed to the port at the end of the iteration, or earlier when it fills
/// up); allocating a buffer and flushing early go through the port, the only
/// calls here that are not inlined into the loop.
///
/// A stage outside a pipeline (in a unit test, say) gets a `Cx` from
/// [`Runtime::with_cx`](crate::pipeline::Runtime::with_cx).
pub struct Cx<'a, B> {
    now_ns: u64,
    queues: &'a mut Queues<B>,
    io: &'a mut dyn PortIo<B>,
}

impl<'a, B> Cx<'a, B> {
    /// A context at time `now_ns` over a pipeline's queues and port.
    #[inline]
    pub fn new(now_ns: u64, queues: &'a mut Queues<B>, io: &'a mut dyn PortIo<B>) -> Self {
        Cx { now_ns, queues, io }
    }

    /// The time of this iteration, in nanoseconds of the pipeline's clock
    /// (read once per iteration, so equal for every packet of a burst).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Queues `buf` for transmission. If the queue is full it is flushed to
    /// the port first; if the port takes nothing either, `buf` is dropped and
    /// counted in [`QueueCounters::tx_dropped`](crate::pipeline::QueueCounters).
    #[inline]
    pub fn transmit(&mut self, buf: B) {
        if let Err(buf) = self.queues.tx.try_push(buf) {
            transmit_full(self.queues, self.io, buf);
        }
    }

    /// Queues `buf` for transmission, flushing a full queue to the port first;
    /// gives `buf` back when there is still no room (the stage may keep it
    /// and retry in its next [`poll`](super::Stage::poll)).
    #[inline]
    pub fn try_transmit(&mut self, buf: B) -> Result<(), B> {
        match self.queues.tx.try_push(buf) {
            Ok(()) => Ok(()),
            Err(buf) => {
                self.queues.counters.tx_sent += self.io.send(&mut self.queues.tx) as u64;
                self.queues.tx.try_push(buf)
            }
        }
    }

    /// Room left in the transmit queue before it must be flushed.
    #[inline]
    pub fn tx_room(&self) -> usize {
        self.queues.tx.remaining()
    }

    /// Hands `buf` to the host stack (the exception path). Dropped and counted
    /// in `host_dropped` when the host does not take it.
    #[inline]
    pub fn to_host(&mut self, buf: B) {
        if let Err(buf) = self.queues.host.try_push(buf) {
            self.queues.counters.host_sent += self.io.send_to_host(&mut self.queues.host) as u64;
            if let Err(buf) = self.queues.host.try_push(buf) {
                drop(buf);
                self.queues.counters.host_dropped += 1;
            }
        }
    }

    /// An empty buffer from the port's pool, for a packet the stage builds
    /// itself. `None` (and counted in `alloc_failed`) when the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<B> {
        let buf = self.io.alloc();
        if buf.is_none() {
            self.queues.counters.alloc_failed += 1;
        }
        buf
    }

    /// The port's identity and abilities (its MAC address, MTU, offloads).
    #[inline]
    pub fn caps(&self) -> &PortCaps {
        self.io.caps()
    }
}

/// [`Cx::transmit`] when the queue is full: flush, then queue `buf` or drop
/// it. Out of line and given the queues rather than the `Cx`, so the loop
/// `transmit` is inlined into keeps the `Cx` in registers and stays a push.
#[cold]
#[inline(never)]
fn transmit_full<B>(queues: &mut Queues<B>, io: &mut dyn PortIo<B>, buf: B) {
    queues.counters.tx_sent += io.send(&mut queues.tx) as u64;
    if let Err(buf) = queues.tx.try_push(buf) {
        drop(buf);
        queues.counters.tx_dropped += 1;
    }
}
