//! Steering: which receive queue of a port a flow lands on.
//!
//! A worker that opens a connection wants the replies on its own queue, and
//! a worker that receives a frame wants to know whether it was meant for
//! it. Both need the port's answer to "which of my queues does this flow,
//! as it arrives from the peer, land on", computed with the hash the port
//! really uses. [`Port::steering`](super::Port::steering) gives it as a
//! [`Steering`]; [`Steering::queue_of`] answers for a [`Flow`], or says
//! it cannot know.
//!
//! Where a backend's own choice is hidden (the kernel's fanout and TAP
//! queue hashes use a per-boot random key), tpa installs its own: a
//! hand-assembled eBPF program ([`SteeringProgram`]) computing the
//! symmetric Toeplitz hash that [`MemoryWire`](super::memory::MemoryWire)
//! uses, so the same hash in Rust predicts the queue.
//!
//! [`Steering::pick_local_port`] chooses a local port for an active open
//! whose replies come back to a given queue; [`SteerCounter`] counts the
//! frames that land on a queue other than the one their flow steers to,
//! and [`SteerGuard`] (a port adapter) hands them over to their worker
//! through a [`Handover`] mesh. [`ShareAnswers`] (another adapter) copies
//! the neighbor answers that land on one queue to every worker, whose
//! neighbor caches are their own.
//!
//! ```
//! use std::net::SocketAddr;
//! use tpa::port::memory::{End, MemoryWire, WireConfig};
//! use tpa::port::steer::{Flow, L4};
//! use tpa::port::Port;
//!
//! let wire = MemoryWire::new(WireConfig { queues: 4, ..WireConfig::default() })?;
//! let port = wire.port(End::B, 2)?;
//! let steering = port.steering();
//! let remote: SocketAddr = "10.0.0.2:443".parse()?;
//! let local = "10.0.0.1".parse()?;
//! // A local port whose replies come back to queue 2.
//! let sport = steering.pick_local_port(L4::Tcp, local, remote, 49152..=65535, 2, |_| true)?;
//! let replies = Flow::new(L4::Tcp, remote, SocketAddr::new(local, sport));
//! assert_eq!(steering.queue_of(&replies), Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod handover;
mod program;
mod share;
mod toeplitz;

pub use handover::{Handover, HandoverStats, Refused, SteerGuard};
pub use program::SteeringProgram;
pub use share::{is_neighbor_answer, ShareAnswers, ShareStats};
pub use toeplitz::{symmetric_key, toeplitz, RssFields, RssTable};

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrayvec::ArrayVec;

use super::memory::rss;

/// The transport protocol of a [`Flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A TCP or UDP flow as its frames arrive at the port: `src` is the peer,
/// `dst` the local end. Both addresses must be of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// TCP or UDP.
    pub proto: L4,
    /// The sender of the arriving frames (the remote end).
    pub src: SocketAddr,
    /// Their destination (the local end).
    pub dst: SocketAddr,
}

/// The bytes hashed for a flow: source and destination address, then
/// source and destination port, in network byte order (36 bytes at most).
pub(crate) type Tuple = ArrayVec<u8, 36>;

impl Flow {
    /// The flow of frames from `src` to `dst` over `proto`.
    pub fn new(proto: L4, src: SocketAddr, dst: SocketAddr) -> Flow {
        Flow { proto, src, dst }
    }

    /// The addresses, then (with `ports`) the ports, as the hashes read
    /// them; `None` when the two addresses are of different families.
    pub(crate) fn tuple(&self, ports: bool) -> Option<Tuple> {
        let mut t = Tuple::new();
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                t.extend(s.octets());
                t.extend(d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                t.extend(s.octets());
                t.extend(d.octets());
            }
            _ => return None,
        }
        if ports {
            t.extend(self.src.port().to_be_bytes());
            t.extend(self.dst.port().to_be_bytes());
        }
        Some(t)
    }

    /// The flow of an untagged Ethernet frame carrying TCP or UDP over
    /// IPv4 (not a fragment) or IPv6 (no extension header). `None` for any
    /// other frame, including VLAN-tagged ones and those too short.
    pub fn from_frame(frame: &[u8]) -> Option<Flow> {
        let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
        let l3 = frame.get(14..)?;
        let (src, dst, proto, l4) = match ethertype {
            0x0800 => {
                let ihl = usize::from(*l3.first()? & 0x0f) * 4;
                if ihl < 20 || l3.len() < ihl {
                    return None;
                }
                if u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff != 0 {
                    return None;
                }
                let s: [u8; 4] = l3[12..16].try_into().ok()?;
                let d: [u8; 4] = l3[16..20].try_into().ok()?;
                (IpAddr::from(s), IpAddr::from(d), l3[9], l3.get(ihl..)?)
            }
            0x86dd => {
                if l3.len() < 40 {
                    return None;
                }
                let s: [u8; 16] = l3[8..24].try_into().ok()?;
                let d: [u8; 16] = l3[24..40].try_into().ok()?;
                (IpAddr::from(s), IpAddr::from(d), l3[6], &l3[40..])
            }
            _ => return None,
        };
        let proto = match proto {
            6 => L4::Tcp,
            17 => L4::Udp,
            _ => return None,
        };
        let sport = u16::from_be_bytes(l4.get(0..2)?.try_into().ok()?);
        let dport = u16::from_be_bytes(l4.get(2..4)?.try_into().ok()?);
        Some(Flow {
            proto,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
        })
    }
}

/// How a port spreads arriving frames over its receive queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steering {
    /// The port has one queue: every frame lands on queue 0.
    Single,
    /// A [`MemoryWire`](super::memory::MemoryWire) with several queues,
    /// or a DPDK device whose RSS is unknown, enforced in software by a
    /// [`SteerGuard`] on each queue (`DpdkDevice::worker_ports`): the
    /// symmetric Toeplitz hash (key `0x6d5a` repeated) of addresses
    /// and ports modulo `queues`; IP frames that are not TCP or UDP, and
    /// IPv4 fragments, hash on their addresses alone; other frames land on
    /// queue 0.
    Symmetric {
        /// Receive queues of the port.
        queues: u16,
    },
    /// tpa's [`SteeringProgram`] (AF_PACKET fanout, multi-queue TAP): the
    /// same symmetric Toeplitz hash of a TCP or UDP flow modulo `queues`;
    /// every other frame (not IP, not TCP or UDP, an IPv4 fragment, an
    /// IPv6 extension header, a VLAN tag, too short) lands on queue 0.
    Program {
        /// Receive queues (fanout members) of the port.
        queues: u16,
    },
    /// Receive-side scaling with the device's key and redirection table
    /// (DPDK).
    Rss(Arc<RssTable>),
    /// The port cannot tell: the kernel's hash with its secret key, or a
    /// device that does not report its RSS setup.
    Unknown,
}

impl Steering {
    /// The queue `flow`'s frames land on; `None` if the port cannot know
    /// (or the flow mixes address families).
    pub fn queue_of(&self, flow: &Flow) -> Option<u16> {
        match self {
            Steering::Single => Some(0),
            Steering::Symmetric { queues } | Steering::Program { queues } => {
                let t = flow.tuple(true)?;
                Some(modulo(rss::toeplitz(&[&t]), *queues))
            }
            Steering::Rss(table) => table.queue_of(flow),
            Steering::Unknown => None,
        }
    }

    /// The queue an Ethernet frame lands on; `None` if the port cannot know.
    pub fn queue_of_frame(&self, frame: &[u8]) -> Option<u16> {
        match self {
            Steering::Single => Some(0),
            Steering::Symmetric { queues } => {
                Some(rss::frame_hash(frame).map_or(0, |h| modulo(h, *queues)))
            }
            Steering::Program { .. } => match Flow::from_frame(frame) {
                Some(flow) => self.queue_of(&flow),
                None => Some(0),
            },
            Steering::Rss(table) => table.queue_of(&Flow::from_frame(frame)?),
            Steering::Unknown => None,
        }
    }

    /// A local port in `ports` for an active open from `local` to `remote`
    /// over `proto` whose replies land on `queue`, the first such port from
    /// the start of the range for which `free` says yes. Ports are tried in
    /// order, so pass a range starting where the last search ended to
    /// spread them.
    pub fn pick_local_port(
        &self,
        proto: L4,
        local: IpAddr,
        remote: SocketAddr,
        ports: RangeInclusive<u16>,
        queue: u16,
        mut free: impl FnMut(u16) -> bool,
    ) -> Result<u16, PickError> {
        if matches!(self, Steering::Unknown) {
            return Err(PickError::CannotKnow);
        }
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(PickError::MixedFamilies);
        }
        for port in ports {
            // The replies come from `remote` to (local, port).
            let replies = Flow::new(proto, remote, SocketAddr::new(local, port));
            if self.queue_of(&replies) == Some(queue) && free(port) {
                return Ok(port);
            }
        }
        Err(PickError::NoPortLands)
    }
}

fn modulo(hash: u32, queues: u16) -> u16 {
    (hash % u32::from(queues.max(1))) as u16
}

/// Why [`Steering::pick_local_port`] found no port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// The port cannot tell where flows land.
    CannotKnow,
    /// The local and remote addresses are of different families.
    MixedFamilies,
    /// No free port of the range brings the replies to the queue.
    NoPortLands,
}

impl std::fmt::Display for PickError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PickError::CannotKnow => "the port cannot tell which queue a flow lands on",
            PickError::MixedFamilies => "local and remote addresses are of different families",
            PickError::NoPortLands => "no free port in the range steers replies to the queue",
        })
    }
}

impl std::error::Error for PickError {}

/// Where a received frame belongs, as [`SteerCounter::observe`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    /// On the queue its flow steers to.
    Here,
    /// On this queue, but its flow steers to another one.
    Elsewhere(u16),
    /// The port cannot tell where it belongs.
    Unknown,
}

/// Counters of [`SteerCounter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteerStats {
    /// Frames on the queue their flow steers to.
    pub here: u64,
    /// Frames whose flow steers to another queue (misdelivered).
    pub elsewhere: u64,
    /// Frames the port could not place.
    pub unknown: u64,
}

/// Checks received frames against the port's steering and counts those
/// that landed on the wrong queue. A worker's classify step calls
/// [`observe`](Self::observe) per frame; [`SteerGuard`] does it on the
/// receive path of any port and hands misplaced frames over.
#[derive(Debug, Clone)]
pub struct SteerCounter {
    steering: Steering,
    queue: u16,
    stats: SteerStats,
}

impl SteerCounter {
    /// A counter for the port's `queue`, steered by `steering`.
    pub fn new(steering: Steering, queue: u16) -> SteerCounter {
        SteerCounter {
            steering,
            queue,
            stats: SteerStats::default(),
        }
    }

    /// Where `frame`, received on this queue, belongs; counted.
    pub fn observe(&mut self, frame: &[u8]) -> Landing {
        match self.steering.queue_of_frame(frame) {
            Some(q) if q == self.queue => {
                self.stats.here += 1;
                Landing::Here
            }
            Some(q) => {
                self.stats.elsewhere += 1;
                Landing::Elsewhere(q)
            }
            None => {
                self.stats.unknown += 1;
                Landing::Unknown
            }
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> SteerStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
