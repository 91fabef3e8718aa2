//! [`MemoryWire`]: two ports joined in memory, with a seeded impairment model.
//!
//! A wire has two ends, [`End::A`] and [`End::B`], each with `queues` queue
//! pairs; every [`MemoryPort`] drives one queue of one end and implements
//! [`Port`] with [`PoolBuf`] buffers. A frame sent on end A arrives on the
//! end-B queue its RSS hash picks (Toeplitz, symmetric key, IPv4/IPv6
//! 5-tuple; non-IP frames on queue 0), and the other way round.
//!
//! Each direction of the wire, a *lane*, has its own [`Impairment`] (drop,
//! duplicate, reorder, delay and jitter, truncate, corrupt, bandwidth with a
//! tail-drop queue) driven by a PRNG seeded from [`WireConfig::seed`], a
//! runtime-switchable partition, and [`LaneStats`] counters. The same seed
//! and the same sequence of calls give the same outcome, packet for packet;
//! run the wire on a virtual [`TimeSource`] ([`WireConfig::clock`]) to make
//! delays independent of real time too, and on the same time as the timers
//! and pipelines of a test.
//!
//! # Threads and cost
//!
//! The two ends (and several queues) may run on different threads. A
//! single-queue lane without impairment or partition, with nothing delayed
//! or held back, is crossed without a lock: the sending port pushes into
//! the receive ring and the receiving port pops from it, one producer and
//! one consumer. A burst raises and lowers the port's busy flag with plain
//! stores, and no fence: the rare side of the hand-over, a lock holder
//! closing the lock-free path, pays for both with `membarrier(2)` (Linux
//! 4.14 and later; elsewhere, or if the process cannot register for it,
//! the flag's store is a full fence: one atomic swap per burst). An
//! `rx_burst` that finds the ring empty raises nothing. Anything else
//! (impairment, partition, several queues, [`MemoryWire::clear`]) takes
//! the lane's `parking_lot` mutex, once per burst, never per packet, and
//! first waits until neither port is on the lock-free path, so it sees a
//! quiescent lane. [`MemoryWire::stats`] takes the mutex only: it leaves
//! the lock-free path open. An `rx_burst` on a locked
//! lane with nothing on the way takes no lock: it reads a count the lane's
//! last lock holder left (one load). Without impairment a burst goes straight into the
//! far end's receive ring: no allocation, no clock read on transmit, one on
//! receive (for the timestamp). When a receive ring is full, `tx_burst` takes
//! fewer packets and leaves the rest in the burst, like a device whose
//! transmit queue is full. A wire gathers only when asked
//! ([`WireConfig::max_segments`]): by default a chained packet is copied
//! into one frame on transmit. A wire offloads nothing: transmit requests in
//! [`Meta::tx`](crate::buf::Meta::tx) (checksums, TSO) are carried out in
//! software by [`offload::transmit`], counted in
//! [`MemoryPort::offload_stats`].
//!
//! ```
//! use tpa::buf::PacketBuf;
//! use tpa::port::memory::{MemoryWire, WireConfig};
//! use tpa::port::{Burst, Port};
//!
//! let (mut a, mut b) = MemoryWire::pair(WireConfig::default()).unwrap();
//! let mut tx: Burst<_> = Burst::new();
//! let mut pkt = a.alloc().unwrap();
//! pkt.extend_from_slice(&[0xff; 60]).unwrap();
//! tx.push(pkt);
//! assert_eq!(a.tx_burst(&mut tx), 1);
//! let mut rx: Burst<_> = Burst::new();
//! assert_eq!(b.rx_burst(&mut rx), 1);
//! assert_eq!(rx.as_slice()[0].data(), &[0xff; 60]);
//! // Both ends share one pool: every buffer is back once they are gone.
//! let pool = a.pool().clone();
//! drop((rx, a, b));
//! tpa::buf::BufferPool::assert_whole(&pool);
//! ```

mod impair;
mod lane;
mod membarrier;
mod ring;
mod rng;
pub(crate) mod rss;
mod stats;

/// Kept here for code written before the clock moved to [`crate::time`].
pub use crate::time::VirtualClock;
pub use impair::{Corruption, Impairment};
pub use stats::{Drops, LaneStats};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lane::{Lane, LaneSetup};
use membarrier::Barrier;

use crate::buf::{Pool, PoolBuf, PoolConfig};
use crate::port::offload::{self, OffloadStats, TxDevice};
use crate::port::steer::Steering;
use crate::port::{Burst, Offloads, Port, PortCaps, PortError};
use crate::time::TimeSource;
use crate::wire::MacAddr;

/// One end of a wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The first end.
    A,
    /// The second end.
    B,
}

impl End {
    /// The other end.
    pub fn peer(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }

    /// The direction this end transmits in.
    pub fn tx_direction(self) -> Direction {
        match self {
            End::A => Direction::AToB,
            End::B => Direction::BToA,
        }
    }

    fn letter(self) -> char {
        match self {
            End::A => 'a',
            End::B => 'b',
        }
    }
}

/// One direction of a wire: which lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From end A to end B.
    AToB,
    /// From end B to end A.
    BToA,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
    }
}

/// How to build a [`MemoryWire`]. Start from `WireConfig::default()`.
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Prefix of the port names (`"memory"` gives `memory:a/q0`).
    pub name: String,
    /// Queue pairs per end (at least 1).
    pub queues: u16,
    /// Receive ring size per queue, in packets.
    pub ring_size: usize,
    /// Largest IP packet carried; longer frames are dropped (counted).
    pub mtu: u16,
    /// MAC address of end A (reported in its caps; frames are not filtered).
    pub mac_a: MacAddr,
    /// MAC address of end B.
    pub mac_b: MacAddr,
    /// Compute the RSS hash even with one queue (always done with several).
    pub rss_hash: bool,
    /// The most buffer segments one frame may have, as a NIC's
    /// scatter-gather list ([`TxDevice::max_segments`]). 1 (the default):
    /// the wire does not gather, and a chained packet is copied into one
    /// frame on transmit ([`offload::transmit`]). Above 1, a chain with
    /// that many segments or fewer crosses as it is, by reference (the
    /// receiver gets the sender's segments, shared read-only); the RSS
    /// hash reads the first segment, lengths count every segment, and the
    /// impairments that write (truncate, corrupt) copy a chain first.
    pub max_segments: usize,
    /// The pool both ends allocate from; `None` creates one of
    /// `pool_capacity` default buffers.
    pub pool: Option<Pool>,
    /// Buffers of the pool created when `pool` is `None`.
    pub pool_capacity: usize,
    /// Impairment of the direction A → B.
    pub a_to_b: Impairment,
    /// Impairment of the direction B → A.
    pub b_to_a: Impairment,
    /// Seed of the impairment PRNGs.
    pub seed: u64,
    /// The time delays, bandwidth and receive timestamps run on: real time
    /// by default, or a [`VirtualClock`] that moves only when advanced
    /// (`clock: VirtualClock::new().into()`); share it with the timers
    /// and pipelines of the same test.
    pub clock: TimeSource,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            name: "memory".to_owned(),
            queues: 1,
            ring_size: 1024,
            mtu: 1500,
            mac_a: MacAddr([0x02, 0, 0, 0, 0, 0x0a]),
            mac_b: MacAddr([0x02, 0, 0, 0, 0, 0x0b]),
            rss_hash: false,
            max_segments: 1,
            pool: None,
            pool_capacity: 8192,
            a_to_b: Impairment::default(),
            b_to_a: Impairment::default(),
            seed: 0,
            clock: TimeSource::real(),
        }
    }
}

impl WireConfig {
    /// The same impairment in both directions.
    pub fn impair_both(mut self, imp: Impairment) -> WireConfig {
        self.a_to_b = imp.clone();
        self.b_to_a = imp;
        self
    }
}

/// Which directions of a wire are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partition {
    /// Both directions carry packets.
    #[default]
    None,
    /// A → B is cut.
    AToB,
    /// B → A is cut.
    BToA,
    /// Both directions are cut.
    Both,
}

/// What the ports and the handles of one wire share.
struct Shared {
    name: String,
    queues: u16,
    mtu: u16,
    /// [`WireConfig::max_segments`].
    max_segments: usize,
    macs: [MacAddr; 2],
    /// Indexed by [`Direction::index`]; each port holds the two it uses.
    lanes: [Arc<Lane>; 2],
    clock: TimeSource,
    pool: Pool,
    /// Which (end, queue) ports exist; indexed `end * queues + queue`.
    taken: Mutex<Vec<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handle to a wire: hands out its ports, switches partitions and
/// impairments at runtime, reads counters. Cheap to clone; `Send + Sync`.
/// The wire (and every packet on it) goes away with the last handle and port.
#[derive(Clone)]
pub struct MemoryWire {
    shared: Arc<Shared>,
}

impl MemoryWire {
    /// Builds a wire. Fails on zero queues or a zero ring size, or if the
    /// pool cannot be created.
    pub fn new(config: WireConfig) -> Result<MemoryWire, PortError> {
        MemoryWire::with_barrier(config, Barrier::detect())
    }

    /// [`MemoryWire::new`] with the plain path's hand-over on `barrier`
    /// (tests force [`Barrier::Symmetric`] with it).
    fn with_barrier(config: WireConfig, barrier: Barrier) -> Result<MemoryWire, PortError> {
        let invalid = |what: &str| PortError::InvalidConfig {
            name: config.name.clone(),
            what: what.to_owned(),
        };
        if config.queues == 0 {
            return Err(invalid("a memory wire needs at least one queue"));
        }
        if config.ring_size == 0 {
            return Err(invalid("the ring size must be at least 1"));
        }
        if config.max_segments == 0 {
            return Err(invalid("max_segments must be at least 1"));
        }
        let pool = match config.pool {
            Some(p) => p,
            None => Pool::new(PoolConfig {
                name: config.name.clone(),
                capacity: config.pool_capacity,
                ..PoolConfig::default()
            })
            .map_err(|e| invalid(&e.to_string()))?,
        };
        let lane = |impairment: Impairment, salt: u64| {
            Lane::new(
                LaneSetup {
                    queues: config.queues,
                    ring_size: config.ring_size,
                    mtu: config.mtu,
                    rss: config.rss_hash,
                    // Distinct, seed-determined streams per direction.
                    seed: config.seed ^ salt,
                    impairment,
                },
                barrier,
            )
        };
        Ok(MemoryWire {
            shared: Arc::new(Shared {
                name: config.name,
                queues: config.queues,
                mtu: config.mtu,
                max_segments: config.max_segments,
                macs: [config.mac_a, config.mac_b],
                lanes: [
                    Arc::new(lane(config.a_to_b, 0x5eed_a2b0_0000_0001)),
                    Arc::new(lane(config.b_to_a, 0x5eed_b2a0_0000_0002)),
                ],
                clock: config.clock,
                pool,
                taken: Mutex::new(vec![false; 2 * usize::from(config.queues)]),
            }),
        })
    }

    /// A single-queue wire's two ports: `(end A, end B)`.
    pub fn pair(config: WireConfig) -> Result<(MemoryPort, MemoryPort), PortError> {
        let wire = MemoryWire::new(config)?;
        Ok((wire.port(End::A, 0)?, wire.port(End::B, 0)?))
    }

    /// The port driving `queue` of `end`. Each exists once at a time:
    /// asking again while it is alive is [`PortError::Busy`].
    pub fn port(&self, end: End, queue: u16) -> Result<MemoryPort, PortError> {
        let s = &self.shared;
        let name = format!("{}:{}/q{queue}", s.name, end.letter());
        if queue >= s.queues {
            return Err(PortError::InvalidConfig {
                name,
                what: format!("queue {queue} out of range (wire has {})", s.queues),
            });
        }
        let mut taken = lock(&s.taken);
        let slot = &mut taken[slot_index(end, queue, s.queues)];
        if *slot {
            return Err(PortError::Busy { name });
        }
        *slot = true;
        drop(taken);
        let idx = match end {
            End::A => 0,
            End::B => 1,
        };
        Ok(MemoryPort {
            caps: PortCaps {
                name,
                mac: s.macs[idx],
                mtu: s.mtu,
                queues: s.queues,
                queue,
                rx_offloads: Offloads::default(),
                tx_offloads: Offloads::default(),
                rss: s.queues > 1,
                flow_rules: false,
            },
            shared: Arc::clone(s),
            rx_lane: Arc::clone(&s.lanes[end.peer().tx_direction().index()]),
            tx_lane: Arc::clone(&s.lanes[end.tx_direction().index()]),
            end,
            queue,
            pool: s.pool.clone(),
            offload: OffloadStats::default(),
        })
    }

    /// All queues of `end`, in queue order.
    pub fn ports(&self, end: End) -> Result<Vec<MemoryPort>, PortError> {
        (0..self.shared.queues).map(|q| self.port(end, q)).collect()
    }

    /// Cuts directions (or heals them); packets sent meanwhile are dropped
    /// and counted.
    pub fn set_partition(&self, p: Partition) {
        let (ab, ba) = match p {
            Partition::None => (false, false),
            Partition::AToB => (true, false),
            Partition::BToA => (false, true),
            Partition::Both => (true, true),
        };
        self.shared.lanes[0].set_partitioned(ab);
        self.shared.lanes[1].set_partitioned(ba);
    }

    /// The current partition.
    pub fn partition(&self) -> Partition {
        let ab = self.shared.lanes[0].is_partitioned();
        let ba = self.shared.lanes[1].is_partitioned();
        match (ab, ba) {
            (false, false) => Partition::None,
            (true, false) => Partition::AToB,
            (false, true) => Partition::BToA,
            (true, true) => Partition::Both,
        }
    }

    /// Replaces the impairment of one direction (the PRNG stream continues).
    pub fn set_impairment(&self, dir: Direction, imp: Impairment) {
        self.shared.lanes[dir.index()].set_impairment(imp);
    }

    /// The impairment of one direction.
    pub fn impairment(&self, dir: Direction) -> Impairment {
        self.shared.lanes[dir.index()].impairment()
    }

    /// Counters of one lane.
    pub fn stats(&self, dir: Direction) -> LaneStats {
        self.shared.lanes[dir.index()].stats()
    }

    /// Discards every packet on the wire (their buffers return to the pool).
    pub fn clear(&self) {
        self.shared.lanes.iter().for_each(|lane| lane.clear());
    }

    /// The time the wire runs on ([`TimeSource::as_virtual`] gives the
    /// virtual clock to advance, if it is one).
    pub fn clock(&self) -> &TimeSource {
        &self.shared.clock
    }

    /// The pool both ends allocate from.
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }
}

impl fmt::Debug for MemoryWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryWire")
            .field("name", &self.shared.name)
            .field("queues", &self.shared.queues)
            .field("a_to_b", &self.stats(Direction::AToB))
            .field("b_to_a", &self.stats(Direction::BToA))
            .finish()
    }
}

fn slot_index(end: End, queue: u16, queues: u16) -> usize {
    let e = match end {
        End::A => 0,
        End::B => 1,
    };
    e * usize::from(queues) + usize::from(queue)
}

/// One queue of one end of a [`MemoryWire`].
pub struct MemoryPort {
    shared: Arc<Shared>,
    /// The lane this port receives from (its peer's transmit lane), held
    /// apart from `shared` so the loop reaches it in one load.
    rx_lane: Arc<Lane>,
    /// The lane this port transmits onto.
    tx_lane: Arc<Lane>,
    end: End,
    queue: u16,
    caps: PortCaps,
    pool: Pool,
    offload: OffloadStats,
}

impl MemoryPort {
    /// A handle to the wire this port belongs to.
    pub fn wire(&self) -> MemoryWire {
        MemoryWire {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Which end this port is.
    pub fn end(&self) -> End {
        self.end
    }

    /// The pool this port allocates from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Counters of the transmit offload requests this port carried out (all
    /// in software: a wire offloads nothing).
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload
    }
}

/// The raw transmit side of one port: straight onto the lane.
struct WireTx<'a> {
    shared: &'a Shared,
    lane: &'a Lane,
}

impl TxDevice<PoolBuf> for WireTx<'_> {
    fn tx_offloads(&self) -> Offloads {
        Offloads::default()
    }

    #[inline]
    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.lane.transmit(tx, &self.shared.clock, false)
    }

    /// [`WireConfig::max_segments`]: 1 unless the wire gathers.
    #[inline]
    fn max_segments(&self) -> usize {
        self.shared.max_segments
    }

    /// The lane drops longer frames (counted as oversize).
    #[inline]
    fn max_frame_len(&self) -> usize {
        lane::max_frame(self.shared.mtu)
    }

    /// The lane's fast path skips its length check.
    #[inline]
    fn send_checked<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.lane.transmit(tx, &self.shared.clock, true)
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.shared.pool.alloc()
    }
}

impl Port for MemoryPort {
    type Buf = PoolBuf;

    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        self.rx_lane.receive(self.queue, rx, &self.shared.clock)
    }

    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        if tx.is_empty() {
            return 0;
        }
        let mut dev = WireTx {
            shared: &self.shared,
            lane: &self.tx_lane,
        };
        offload::transmit(&mut dev, tx, &mut self.offload)
    }

    fn pool(&self) -> &crate::buf::Pool {
        &self.pool
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }

    /// Symmetric Toeplitz over the wire's queues (see [`Steering::Symmetric`]).
    fn steering(&self) -> Steering {
        match self.shared.queues {
            1 => Steering::Single,
            queues => Steering::Symmetric { queues },
        }
    }
}

impl Drop for MemoryPort {
    fn drop(&mut self) {
        let s = &self.shared;
        lock(&s.taken)[slot_index(self.end, self.queue, s.queues)] = false;
    }
}

impl fmt::Debug for MemoryPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPort")
            .field("name", &self.caps.name)
            .finish()
    }
}
