//! The context a stage works in: the port side (time, the TX queue, the
//! host path, buffers) and the pipeline's state.

use crate::buf::{BufSource, PacketBuf};
use crate::pipeline::{PortIo, Queues};
use crate::port::{Burst, PortCaps, BURST_SIZE};
use crate::state::{Part, PartList, Parts};

/// What a stage may use besides the packet: the port side ([`PortCx`]: the
/// current time, the pipeline's transmit queue, the exception path to the
/// host, the port's buffer pool) and the pipeline's state `S` (the
/// `#[state]` field; `()` for a pipeline without one).
///
/// One `Cx` is built per loop phase and passed to every stage call of that
/// phase. The port-side methods ([`transmit`](Self::transmit),
/// [`alloc`](Self::alloc), …) are here too, forwarded to [`PortCx`]; a stage
/// that needs parts of the state and the transmit queue at the same time
/// takes them all with [`parts`](Self::parts) or [`split`](Self::split).
///
/// A stage outside a pipeline (in a unit test, say) gets a `Cx` from
/// [`Runtime::with_cx`](crate::pipeline::Runtime::with_cx) or
/// [`Runtime::with_state`](crate::pipeline::Runtime::with_state).
pub struct Cx<'a, B: PacketBuf, S = ()> {
    port: PortCx<'a, B>,
    state: &'a mut S,
}

/// The port side of a [`Cx`]: time, the transmit and host queues, buffer
/// allocation and the port's capabilities.
///
/// Queueing is a push into an inline array (the queue is flushed to the
/// port at the end of the iteration, or earlier when it fills up);
/// allocating a buffer and flushing early go through the port, the only
/// calls here that are not inlined into the loop.
pub struct PortCx<'a, B: PacketBuf> {
    now_ns: u64,
    /// The buffer type's pool: allocation is a direct call.
    pool: &'a B::Pool,
    /// The transmit queue's depth, read once.
    tx_depth: u8,
    queues: &'a mut Queues<B>,
    io: &'a mut dyn PortIo<B>,
}

impl<'a, B: PacketBuf, S> Cx<'a, B, S> {
    /// A context at time `now_ns` over a pipeline's queues, port, the
    /// port's buffer pool and state.
    #[inline]
    pub fn new(
        now_ns: u64,
        queues: &'a mut Queues<B>,
        io: &'a mut dyn PortIo<B>,
        pool: &'a B::Pool,
        state: &'a mut S,
    ) -> Self {
        Cx {
            port: PortCx {
                now_ns,
                pool,
                tx_depth: queues.tx.depth_u8(),
                queues,
                io,
            },
            state,
        }
    }

    /// The pipeline's state, to read.
    #[inline]
    pub fn state(&self) -> &S {
        self.state
    }

    /// The pipeline's state, to change.
    #[inline]
    pub fn state_mut(&mut self) -> &mut S {
        self.state
    }

    /// The state's part of type `T`.
    #[inline]
    pub fn part<T>(&mut self) -> &mut T
    where
        S: Part<T>,
    {
        self.state.part_mut()
    }

    /// Several parts of the state at once (a tuple of two or three types,
    /// `cx.parts::<(Sockets, Neighbors)>()`), with the port side: what an
    /// output step needs to look up a socket, resolve its next hop and queue
    /// the frame, all borrowed together.
    #[inline]
    pub fn parts<L: PartList>(&mut self) -> (L::Mut<'_>, &mut PortCx<'a, B>)
    where
        S: Parts<L>,
    {
        (self.state.parts(), &mut self.port)
    }

    /// The whole state and the port side, borrowed together.
    #[inline]
    pub fn split(&mut self) -> (&mut S, &mut PortCx<'a, B>) {
        (self.state, &mut self.port)
    }

    /// The port side alone.
    #[inline]
    pub fn port(&mut self) -> &mut PortCx<'a, B> {
        &mut self.port
    }

    /// See [`PortCx::now_ns`].
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.port.now_ns
    }

    /// See [`PortCx::transmit`].
    #[inline]
    pub fn transmit(&mut self, buf: B) {
        self.port.transmit(buf)
    }

    /// See [`PortCx::try_transmit`].
    #[inline]
    pub fn try_transmit(&mut self, buf: B) -> Result<(), B> {
        self.port.try_transmit(buf)
    }

    /// See [`PortCx::tx_room`].
    #[inline]
    pub fn tx_room(&self) -> usize {
        self.port.tx_room()
    }

    /// See [`PortCx::to_host`].
    #[inline]
    pub fn to_host(&mut self, buf: B) {
        self.port.to_host(buf)
    }

    /// See [`PortCx::from_host`].
    #[inline]
    pub fn from_host(&mut self, out: &mut Burst<B, BURST_SIZE>) -> usize {
        self.port.from_host(out)
    }

    /// See [`PortCx::has_host`].
    #[inline]
    pub fn has_host(&self) -> bool {
        self.port.has_host()
    }

    /// See [`PortCx::alloc`].
    #[inline]
    pub fn alloc(&mut self) -> Option<B> {
        self.port.alloc()
    }

    /// See [`PortCx::alloc_bulk`].
    #[inline]
    pub fn alloc_bulk<const N: usize>(&mut self, out: &mut Burst<B, N>) -> usize {
        self.port.alloc_bulk(out)
    }

    /// See [`PortCx::caps`].
    #[inline]
    pub fn caps(&self) -> &PortCaps {
        self.port.caps()
    }
}

impl<B: PacketBuf> PortCx<'_, B> {
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
        if let Err(buf) = self.queues.tx.push_within(buf, self.tx_depth) {
            transmit_full(self.queues, self.io, self.now_ns, buf);
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
                self.queues.counters.tx_sent +=
                    self.io.send(&mut self.queues.tx, self.now_ns) as u64;
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

    /// Whether the pipeline has a host path (a `#[host]` field): without
    /// one, [`to_host`](Self::to_host) drops every frame (counted).
    #[inline]
    pub fn has_host(&self) -> bool {
        self.io.has_host()
    }

    /// Adds to `out` (up to its room) the frames the host sent back
    /// through the pipeline's `#[host]` port (what the kernel behind a TAP
    /// transmitted); returns how many. Always 0 without a `#[host]` field.
    #[inline]
    pub fn from_host(&mut self, out: &mut Burst<B, BURST_SIZE>) -> usize {
        self.io.receive_from_host(out)
    }

    /// An empty buffer from the port's pool, for a packet the stage builds
    /// itself: a direct call to the buffer type's pool, inlined into the
    /// stage. `None` (and counted in `alloc_failed`) when the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<B> {
        let buf = self.pool.alloc();
        if buf.is_none() {
            self.queues.counters.alloc_failed += 1;
        }
        buf
    }

    /// Fills `out` with empty buffers from the port's pool, through the
    /// pool's bulk path; returns how many were added. Fewer than `out`'s
    /// room (counted once in `alloc_failed`) when the pool runs short.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&mut self, out: &mut Burst<B, N>) -> usize {
        let want = out.remaining();
        let got = self.pool.alloc_bulk(out);
        if got < want {
            self.queues.counters.alloc_failed += 1;
        }
        got
    }

    /// The port's identity and abilities (its MAC address, MTU, offloads).
    #[inline]
    pub fn caps(&self) -> &PortCaps {
        self.io.caps()
    }

    /// Frames queued for transmission since the pipeline started (sent,
    /// dropped at a full queue, or still waiting): the loop's measure of what
    /// a stage's `poll` sent. One counter, kept as frames are queued, so
    /// the measure around each call is a load.
    #[inline]
    pub(crate) fn tx_offered(&self) -> u64 {
        self.queues.tx.offered()
    }
}

/// [`PortCx::transmit`] when the queue is full: flush, then queue `buf` or
/// drop it. Out of line and given the queues rather than the `Cx`, so the
/// loop `transmit` is inlined into keeps the `Cx` in registers and stays a
/// push.
#[cold]
#[inline(never)]
fn transmit_full<B>(queues: &mut Queues<B>, io: &mut dyn PortIo<B>, now_ns: u64, buf: B) {
    queues.counters.tx_sent += io.send(&mut queues.tx, now_ns) as u64;
    if let Err(buf) = queues.tx.try_push(buf) {
        drop(buf);
        queues.tx.count_dropped();
        queues.counters.tx_dropped += 1;
    }
}
