//! Neighbor answers for every worker: ARP replies and NDP neighbor
//! advertisements reach one queue, every worker needs them.
//!
//! Steering places a TCP or UDP flow on one queue by its 4-tuple; a frame
//! with no ports (ARP, ICMPv6) lands on queue 0 ([`Steering::Program`],
//! and the RSS of most devices for non-IP frames). Each worker has its
//! own neighbor cache (shared-nothing), so the worker of queue 1 that
//! asked for a MAC address never hears the answer that reached queue 0,
//! and its connections stall. [`ShareAnswers`] wraps each queue's port:
//! an answer it receives is received as usual and a copy of it goes to
//! every other worker through a [`Handover`] mesh, which each worker's
//! wrapper receives before its own frames. A worker's ARP or NDP stage
//! then takes the copy as if it had arrived on its own queue: a worker
//! that asked learns it, one that did not ignores it (an answer never
//! creates an entry, RFC 4861 §7.2.5; Linux's ARP does the same).
//!
//! Chosen over a cache shared by all workers (a lock or atomics on every
//! lookup of the egress path, for an event that happens once per
//! neighbor and ReachableTime) and over sending every worker's
//! solicitations from queue 0: answers are rare, a copy of a 60-byte
//! frame per other worker costs nothing on the data path, the caches stay
//! per worker, and the ARP and NDP stages run unchanged.
//!
//! What is copied: ARP replies (opcode 2) and ICMPv6 neighbor
//! advertisements (type 136, directly after the IPv6 header), untagged or
//! behind one VLAN tag. Requests and solicitations are not: queue 0's
//! worker answers them, and copies would make every worker answer. A copy
//! that finds no buffer, or a full inbox, is dropped and counted
//! ([`ShareStats`]); the asking worker solicits again after its
//! RetransTimer.

use super::handover::{Handover, HandoverStats, Refused};
use super::Steering;
use crate::buf::{PacketBuf, PoolOf};
use crate::port::{Burst, Port, PortCaps};

/// What a [`ShareAnswers`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareStats {
    /// Answers received from the port and copied to the other workers.
    pub answers: u64,
    /// Copies handed to another worker.
    pub copies_sent: u64,
    /// Copies not made: the pool had no buffer.
    pub no_buffer: u64,
    /// Copies dropped: the other worker's inbox was full or gone.
    pub refused: u64,
    /// Copies received from other workers.
    pub copies_received: u64,
}

/// Whether `frame` is a neighbor answer every worker should see: an ARP
/// reply or an ICMPv6 neighbor advertisement (see the module's text).
///
/// ```
/// use tpa::port::steer::is_neighbor_answer;
/// let mut arp = vec![0u8; 42];
/// arp[12..14].copy_from_slice(&[0x08, 0x06]);
/// arp[20..22].copy_from_slice(&[0, 2]); // a reply
/// assert!(is_neighbor_answer(&arp));
/// arp[21] = 1; // a request
/// assert!(!is_neighbor_answer(&arp));
/// ```
pub fn is_neighbor_answer(frame: &[u8]) -> bool {
    let (ethertype, l3) = match frame.get(12..14) {
        Some([0x81, 0x00]) => (frame.get(16..18), 18),
        other => (other, 14),
    };
    match ethertype {
        // ARP: the opcode is bytes 6-7 of its header.
        Some([0x08, 0x06]) => frame.get(l3 + 6..l3 + 8) == Some(&[0, 2]),
        // IPv6, next header ICMPv6 (58), type 136.
        Some([0x86, 0xdd]) => frame.get(l3 + 6) == Some(&58) && frame.get(l3 + 40) == Some(&136),
        _ => false,
    }
}

/// A port whose neighbor answers reach every worker: see the module's
/// text. The other workers' copies are received first, then the port's
/// frames; an answer among those is received here too.
#[derive(Debug)]
pub struct ShareAnswers<P: Port> {
    port: P,
    handover: Handover<P::Buf>,
    stats: ShareStats,
}

impl<P: Port> ShareAnswers<P> {
    /// Wraps `port`; `handover` is its queue's end of a mesh with one end
    /// per worker ([`Handover::mesh`]; a mesh of one shares nothing).
    pub fn new(port: P, handover: Handover<P::Buf>) -> Self {
        ShareAnswers {
            port,
            handover,
            stats: ShareStats::default(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> ShareStats {
        self.stats
    }

    /// The handover mesh's counts.
    pub fn handover_stats(&self) -> HandoverStats {
        self.handover.stats()
    }

    /// The wrapped port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The wrapped port, writable.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// Copies `frame` to every other worker.
    #[cold]
    fn share(&mut self, frame: &[u8]) {
        self.stats.answers += 1;
        let me = self.handover.queue();
        for to in (0..self.handover.queues()).filter(|&q| q != me) {
            let Some(mut copy) = self.port.alloc() else {
                self.stats.no_buffer += 1;
                continue;
            };
            match copy.append(frame.len()) {
                Ok(out) => out.copy_from_slice(frame),
                Err(_) => {
                    self.stats.no_buffer += 1;
                    continue;
                }
            }
            match self.handover.send(to, copy) {
                Ok(()) => self.stats.copies_sent += 1,
                Err(Refused::Full(_) | Refused::Gone(_)) => self.stats.refused += 1,
            }
        }
    }
}

impl<P: Port> Port for ShareAnswers<P>
where
    P::Buf: Send,
{
    type Buf = P::Buf;

    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<P::Buf, N>) -> usize {
        let start = rx.len();
        if self.handover.queues() > 1 {
            self.stats.copies_received += self.handover.receive(rx) as u64;
        }
        let before = rx.len();
        let n = self.port.rx_burst(rx);
        if n > 0 && self.handover.queues() > 1 {
            for i in before..rx.len() {
                let frame = rx.as_slice()[i].data();
                if is_neighbor_answer(frame) {
                    self.share(frame);
                }
            }
        }
        rx.len() - start
    }

    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<P::Buf, N>) -> usize {
        self.port.tx_burst(tx)
    }

    #[inline]
    fn pool(&self) -> &PoolOf<P::Buf> {
        self.port.pool()
    }

    #[inline]
    fn caps(&self) -> &PortCaps {
        self.port.caps()
    }

    #[inline]
    fn steering(&self) -> Steering {
        self.port.steering()
    }

    /// The wrapped port's wait. Answers copied here by another worker do
    /// not wake it: they wait for the next frame or the end of `timeout`
    /// (neighbor answers are rare, and a resolution that waits retries).
    #[inline]
    fn wait_rx(&mut self, timeout: std::time::Duration) -> crate::port::RxWait {
        self.port.wait_rx(timeout)
    }

    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        self.port.visit_counters(visit);
    }

    fn shared_host(&self) -> Option<std::sync::Arc<dyn crate::port::SharedHost>> {
        self.port.shared_host()
    }
}
