//! Handing misplaced frames over to the worker whose queue their flow
//! steers to: [`Handover`], one worker's end of a mesh of bounded queues,
//! and [`SteerGuard`], a port adapter that checks every received frame
//! against the steering and hands over those that landed on the wrong
//! queue.
//!
//! The queues are `std::sync::mpsc::sync_channel`s: one bounded inbox per
//! worker, every other worker holding a sender to it. They carry any
//! port's buffer type (`PoolBuf`, `Mbuf`), need no unsafe code, and a
//! frame is never blocked on: a full inbox refuses it (counted) and the
//! sender drops it, as a NIC drops on a full ring. Buffers left in an inbox
//! when its worker goes are freed with it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use super::{Landing, SteerCounter, SteerStats, Steering};
use crate::buf::PacketBuf;
use crate::port::{Burst, Port, PortCaps, PortError, RxWait};
use crate::worker::WAIT_FALLBACK_SLEEP;

/// Counters of one [`Handover`] end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandoverStats {
    /// Buffers handed over to another worker.
    pub sent: u64,
    /// Buffers received from other workers.
    pub received: u64,
    /// Buffers refused because the other worker's inbox was full.
    pub full: u64,
    /// Buffers refused because the other worker is gone (or no such
    /// queue exists).
    pub gone: u64,
}

/// Why [`Handover::send`] gave a buffer back.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<B> {
    /// The other worker's inbox is full.
    Full(B),
    /// The other worker is gone, or there is no such queue (or it is this
    /// one).
    Gone(B),
}

impl<B> Refused<B> {
    /// The buffer that was not handed over.
    pub fn into_inner(self) -> B {
        match self {
            Refused::Full(b) | Refused::Gone(b) => b,
        }
    }
}

/// One worker's end of a handover mesh ([`Handover::mesh`]): its inbox,
/// and a sender to every other worker's.
#[derive(Debug)]
pub struct Handover<B> {
    queue: u16,
    inbox: Receiver<B>,
    /// A buffer taken off the inbox by [`is_waiting`](Self::is_waiting),
    /// received before the inbox's others.
    held: Option<B>,
    peers: Vec<Option<SyncSender<B>>>,
    stats: HandoverStats,
}

impl<B: Send> Handover<B> {
    /// The ends of a mesh between `queues` workers, in queue order, each
    /// inbox holding up to `depth` buffers (at least 1).
    pub fn mesh(queues: u16, depth: usize) -> Vec<Handover<B>> {
        let (senders, inboxes): (Vec<_>, Vec<_>) =
            (0..queues).map(|_| sync_channel(depth.max(1))).unzip();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| Handover {
                queue: me as u16,
                inbox,
                held: None,
                peers: senders
                    .iter()
                    .enumerate()
                    .map(|(q, s)| (q != me).then(|| s.clone()))
                    .collect(),
                stats: HandoverStats::default(),
            })
            .collect()
    }
}

impl<B> Handover<B> {
    /// The queue (worker) this end belongs to.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Number of workers in the mesh.
    pub fn queues(&self) -> u16 {
        self.peers.len() as u16
    }

    /// Hands `buf` over to the worker of queue `to`, without blocking.
    /// Refused (counted, the buffer given back) when its inbox is full or
    /// it is gone.
    pub fn send(&mut self, to: u16, buf: B) -> Result<(), Refused<B>> {
        let Some(Some(peer)) = self.peers.get(usize::from(to)) else {
            self.stats.gone += 1;
            return Err(Refused::Gone(buf));
        };
        match peer.try_send(buf) {
            Ok(()) => {
                self.stats.sent += 1;
                Ok(())
            }
            Err(TrySendError::Full(b)) => {
                self.stats.full += 1;
                Err(Refused::Full(b))
            }
            Err(TrySendError::Disconnected(b)) => {
                self.stats.gone += 1;
                Err(Refused::Gone(b))
            }
        }
    }

    /// Moves buffers handed over to this worker into `into`, until it is
    /// full or the inbox empty. Returns how many.
    pub fn receive<const N: usize>(&mut self, into: &mut Burst<B, N>) -> usize {
        let mut n = 0;
        if !into.is_full() {
            if let Some(b) = self.held.take() {
                into.push(b);
                n += 1;
            }
        }
        while !into.is_full() {
            match self.inbox.try_recv() {
                Ok(b) => {
                    into.push(b);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.stats.received += n as u64;
        n
    }

    /// Whether a buffer handed over to this worker waits to be received.
    pub fn is_waiting(&mut self) -> bool {
        if self.held.is_none() {
            self.held = self.inbox.try_recv().ok();
        }
        self.held.is_some()
    }

    /// The counts so far.
    pub fn stats(&self) -> HandoverStats {
        self.stats
    }
}

/// A port whose received frames are checked against a [`Steering`]: those
/// on the queue their flow steers to, and those the steering cannot place,
/// are received as usual; those whose flow steers to another queue are
/// handed over to that queue's worker through a [`Handover`] (dropped,
/// counted, when its inbox is full), and the frames other workers handed
/// over are received here. Everything else passes through to the port.
///
/// With the port's own steering ([`SteerGuard::new`]) this counts and
/// repairs frames the device put on the wrong queue (flow rules, a table
/// changed behind tpa's back, a hash tpa predicted wrong). With a steering
/// tpa chooses ([`SteerGuard::enforcing`]) it spreads a device without
/// RSS over several workers in software: frames all arrive on queue 0 and
/// worker 0 hands each to its flow's worker. Either way
/// [`steering`](Port::steering) answers with the steering frames end up
/// following, so [`Steering::pick_local_port`] works through it.
#[derive(Debug)]
pub struct SteerGuard<P: Port> {
    port: P,
    counter: SteerCounter,
    handover: Handover<P::Buf>,
    steering: Steering,
    dropped: u64,
}

impl<P: Port> SteerGuard<P> {
    /// Guards `port` with its own steering; `handover` must be the end of
    /// the port's queue in a mesh of the port's queues.
    pub fn new(port: P, handover: Handover<P::Buf>) -> Result<SteerGuard<P>, PortError> {
        let steering = port.steering();
        SteerGuard::enforcing(port, handover, steering)
    }

    /// Guards `port` with `steering`, which frames are made to follow;
    /// `handover` must be the end of the port's queue in a mesh with a
    /// worker for every queue `steering` may name.
    pub fn enforcing(
        port: P,
        handover: Handover<P::Buf>,
        steering: Steering,
    ) -> Result<SteerGuard<P>, PortError> {
        let queue = port.caps().queue;
        let invalid = |what: String| PortError::InvalidConfig {
            name: port.caps().name.clone(),
            what,
        };
        if handover.queue() != queue {
            return Err(invalid(format!(
                "the handover end of queue {} guards queue {queue}",
                handover.queue()
            )));
        }
        let named = match &steering {
            Steering::Symmetric { queues } | Steering::Program { queues } => Some(*queues),
            Steering::Rss(table) => table.reta.iter().max().map(|q| q + 1),
            Steering::Single | Steering::Unknown => None,
        };
        if let Some(named) = named.filter(|&n| n > handover.queues()) {
            return Err(invalid(format!(
                "the steering names {named} queues, the handover mesh has {}",
                handover.queues()
            )));
        }
        Ok(SteerGuard {
            counter: SteerCounter::new(steering.clone(), queue),
            port,
            handover,
            steering,
            dropped: 0,
        })
    }

    /// Where the frames received from the port belonged.
    pub fn steer_stats(&self) -> SteerStats {
        self.counter.stats()
    }

    /// The handover's counts.
    pub fn handover_stats(&self) -> HandoverStats {
        self.handover.stats()
    }

    /// Misplaced frames dropped because their worker's inbox was full or
    /// it was gone.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The guarded port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The guarded port, writable.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// The port and the handover end, taken apart.
    pub fn into_parts(self) -> (P, Handover<P::Buf>) {
        (self.port, self.handover)
    }
}

impl<P: Port> Port for SteerGuard<P> {
    type Buf = P::Buf;

    /// Frames handed over by other workers first, then the port's own,
    /// minus those handed over from here.
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<P::Buf, N>) -> usize {
        let start = rx.len();
        self.handover.receive(rx);
        let before = rx.len();
        let n = self.port.rx_burst(rx);
        if n > 0 {
            if matches!(self.steering, Steering::Single | Steering::Unknown) {
                // Nothing to hand over: count only.
                for m in &rx.as_slice()[before..] {
                    self.counter.observe(m.data());
                }
            } else {
                // Take the fresh frames off the end (reversed), then put
                // back those that stay, in their order.
                let mut fresh: Burst<P::Buf, N> = Burst::new();
                while rx.len() > before {
                    if let Some(m) = rx.pop() {
                        fresh.push(m);
                    }
                }
                while let Some(m) = fresh.pop() {
                    match self.counter.observe(m.data()) {
                        Landing::Here | Landing::Unknown => rx.push(m),
                        Landing::Elsewhere(q) => {
                            if let Err(refused) = self.handover.send(q, m) {
                                drop(refused.into_inner());
                                self.dropped += 1;
                            }
                        }
                    }
                }
            }
        }
        rx.len() - start
    }

    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<P::Buf, N>) -> usize {
        self.port.tx_burst(tx)
    }

    fn pool(&self) -> &crate::buf::PoolOf<P::Buf> {
        self.port.pool()
    }

    fn alloc_bulk<const N: usize>(&mut self, out: &mut Burst<P::Buf, N>) -> usize {
        self.port.alloc_bulk(out)
    }

    fn caps(&self) -> &PortCaps {
        self.port.caps()
    }

    /// The steering received frames end up following.
    fn steering(&self) -> Steering {
        self.steering.clone()
    }

    /// The guarded port's wait, unless a frame handed over by another
    /// worker waits already ([`RxWait::Ready`]). A frame handed over
    /// during the wait does not wake it: with other workers in the mesh
    /// the wait lasts [`WAIT_FALLBACK_SLEEP`] at most, no longer than a
    /// loop whose port cannot block would sleep.
    fn wait_rx(&mut self, timeout: Duration) -> RxWait {
        if self.handover.is_waiting() {
            return RxWait::Ready;
        }
        let timeout = if self.handover.queues() > 1 {
            timeout.min(WAIT_FALLBACK_SLEEP)
        } else {
            timeout
        };
        self.port.wait_rx(timeout)
    }

    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        self.port.visit_counters(visit);
    }
}
