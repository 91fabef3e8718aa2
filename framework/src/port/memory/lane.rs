//! A lane: one direction of a wire, with the receive rings of the far end's
//! queues and the impairment engine in front of them.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use arrayvec::ArrayVec;

use super::impair::{Corruption, Impairment};
use super::ring::Ring;
use super::rng::Rng;
use super::rss;
use super::stats::LaneStats;
use crate::buf::{Meta, PacketBuf, PoolBuf};
use crate::port::Burst;
use crate::time::TimeSource;

/// Ethernet header plus two VLAN tags: what a frame may carry beyond the MTU.
const L2_OVERHEAD: usize = 14 + 8;

/// The longest frame a lane of a wire with this MTU carries; longer ones
/// are dropped and counted as oversize.
pub(super) fn max_frame(mtu: u16) -> usize {
    usize::from(mtu) + L2_OVERHEAD
}

/// A frame's length on the wire: over all its segments (a chain from a
/// gathering wire's sender).
#[inline]
fn frame_len(b: &PoolBuf) -> usize {
    if b.is_chained() {
        b.total_len()
    } else {
        b.len()
    }
}

/// Most bits a corrupted packet has flipped.
const MAX_CORRUPT_BITS: usize = 64;

/// A packet on its way, delivered at `release_ns` (ties in `seq` order).
struct InFlight {
    release_ns: u64,
    seq: u64,
    queue: u16,
    buf: PoolBuf,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed, so the max-heap yields the earliest packet first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.release_ns, other.seq).cmp(&(self.release_ns, self.seq))
    }
}

/// A packet held back by the reorder impairment.
struct HeldBack {
    /// Later packets still to let pass.
    remaining: u32,
    /// When it is released regardless.
    deadline_ns: u64,
    item: InFlight,
}

/// How a [`Lane`] is set up.
pub(super) struct LaneSetup {
    pub(super) queues: u16,
    pub(super) ring_size: usize,
    pub(super) mtu: u16,
    pub(super) rss: bool,
    pub(super) seed: u64,
    pub(super) impairment: Impairment,
}

/// A lane: one direction of a wire.
pub(super) struct Lane {
    /// The receive ring of each queue of the far end: `queues` of them (at
    /// least one), made once; the length never changes.
    rings: Box<[Ring]>,
    ring_size: usize,
    /// Per-queue packets accepted in the current burst (transparent path).
    pending: Box<[usize]>,
    queues: u16,
    rss: bool,
    max_frame: usize,
    imp: Impairment,
    partitioned: bool,
    /// No impairment and no partition: the fast path.
    transparent: bool,
    rng: Rng,
    /// Delayed packets per far-end queue, earliest first (one heap per queue,
    /// so a full ring holds up only its own queue).
    flight: Box<[BinaryHeap<InFlight>]>,
    /// Packets in all `flight` heaps.
    flight_len: usize,
    /// Most packets delayed or held back before `tx_burst` pushes back
    /// (`ring_size × queues`); duplicates may exceed it by a burst.
    flight_cap: usize,
    held: Vec<HeldBack>,
    /// Packets waiting for the bandwidth-limited lane: (finish time, bytes).
    backlog: VecDeque<(u64, usize)>,
    backlog_bytes: usize,
    /// When the bandwidth-limited lane is free again.
    lane_free_ns: u64,
    seq: u64,
    stats: LaneStats,
}

impl Lane {
    pub(super) fn new(s: LaneSetup) -> Lane {
        let queues = s.queues.max(1);
        let flight_cap = s.ring_size * usize::from(queues);
        let transparent = s.impairment.is_transparent();
        Lane {
            rings: (0..queues).map(|_| Ring::new(s.ring_size)).collect(),
            ring_size: s.ring_size,
            pending: vec![0; usize::from(queues)].into_boxed_slice(),
            queues,
            rss: s.rss || queues > 1,
            max_frame: max_frame(s.mtu),
            imp: s.impairment,
            partitioned: false,
            transparent,
            rng: Rng::new(s.seed),
            flight: (0..queues)
                .map(|_| BinaryHeap::with_capacity(s.ring_size))
                .collect(),
            flight_len: 0,
            flight_cap,
            held: Vec::new(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            lane_free_ns: 0,
            seq: 0,
            stats: LaneStats::default(),
        }
    }

    /// Cuts (or restores) this direction.
    pub(super) fn set_partitioned(&mut self, on: bool) {
        self.partitioned = on;
        self.transparent = !on && self.imp.is_transparent();
    }

    pub(super) fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Replaces the impairment; packets already on the way keep their fate.
    pub(super) fn set_impairment(&mut self, imp: Impairment) {
        self.imp = imp;
        self.set_partitioned(self.partitioned);
    }

    pub(super) fn impairment(&self) -> &Impairment {
        &self.imp
    }

    pub(super) fn stats(&self) -> LaneStats {
        let queued: usize = self.rings.iter().map(Ring::len).sum();
        LaneStats {
            in_flight: (queued + self.flight_len + self.held.len()) as u64,
            ..self.stats
        }
    }

    /// Packets on the way: in the receive rings, in flight or held back.
    #[inline]
    pub(super) fn on_way(&self) -> usize {
        let queued: usize = match &*self.rings {
            [ring] => ring.len(),
            rings => rings.iter().map(Ring::len).sum(),
        };
        queued + self.flight_len + self.held.len()
    }

    /// Drops every packet on the way (their buffers go back to the pool).
    pub(super) fn clear(&mut self) {
        self.rings.iter_mut().for_each(Ring::clear);
        self.flight.iter_mut().for_each(BinaryHeap::clear);
        self.flight_len = 0;
        self.held.clear();
        self.backlog.clear();
        self.backlog_bytes = 0;
    }

    /// Records the RSS hash (where the wire computes them) and picks the far
    /// end's queue.
    #[inline]
    fn steer(&self, b: &mut PoolBuf) -> u16 {
        if !self.rss {
            return 0;
        }
        let hash = rss::frame_hash(b.data());
        b.meta_mut().rss_hash = hash;
        hash.map_or(0, |h| (h % u32::from(self.queues)) as u16)
    }

    /// Takes packets from the front of `tx` onto the wire; see
    /// [`Port::tx_burst`](crate::port::Port::tx_burst). `fit` says the
    /// caller has checked that no packet is longer than
    /// [`max_frame`]: the fast path then moves the burst without a look.
    #[inline]
    pub(super) fn transmit<const N: usize>(
        &mut self,
        tx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
        fit: bool,
    ) -> Moved {
        if self.transparent && self.flight_len == 0 && self.held.is_empty() {
            if self.queues == 1 {
                let moved = self.transmit_one_queue(tx, fit);
                debug_assert_eq!(moved.on_way, self.on_way());
                moved
            } else {
                let n = self.transmit_steered(tx);
                Moved {
                    n,
                    on_way: self.on_way(),
                }
            }
        } else {
            let n = self.transmit_impaired(tx, clock.now_ns());
            Moved {
                n,
                on_way: self.on_way(),
            }
        }
    }

    /// The fast path of a single-queue wire: no steering, one move of the
    /// burst into the receive ring. Packets are only read (their length,
    /// unless `fit`), unless the wire computes RSS hashes anyway. With
    /// nothing in flight or held back, what is on the way is the ring.
    #[inline]
    fn transmit_one_queue<const N: usize>(
        &mut self,
        tx: &mut Burst<PoolBuf, N>,
        fit: bool,
    ) -> Moved {
        // SAFETY: `rings` is made with `queues` (at least 1) rings and
        // never changes length: ring 0 is there.
        let ring = unsafe { self.rings.get_unchecked_mut(0) };
        let n = tx.len().min(self.ring_size.saturating_sub(ring.len()));
        if self.rss {
            // Only the packets that leave: the rest stay with the caller
            // and would be hashed again on the next attempt.
            for b in &mut tx.as_mut_slice()[..n] {
                b.meta_mut().rss_hash = rss::frame_hash(b.data());
            }
        }
        let max_frame = self.max_frame;
        if fit || tx.as_slice()[..n].iter().all(|b| frame_len(b) <= max_frame) {
            if n == 1 && tx.len() == 1 {
                // The whole burst is one frame (a request, a reply, an
                // ACK): taken off the back, without a drain's bookkeeping.
                if let Some(b) = tx.pop() {
                    ring.push_back(b);
                }
            } else {
                // Frame by frame (see `receive`): cheaper than an extend
                // for the one or two a burst mostly holds.
                for b in tx.drain_front(n) {
                    ring.push_back(b);
                }
            }
        } else {
            for b in tx.drain_front(n) {
                if frame_len(&b) > max_frame {
                    self.stats.dropped.oversize += 1;
                } else {
                    ring.push_back(b);
                }
            }
        }
        self.stats.sent += n as u64;
        Moved {
            n,
            on_way: ring.len(),
        }
    }

    /// The fast path of a multi-queue wire: each packet into the ring of
    /// the queue its RSS hash picks, as many as fit.
    fn transmit_steered<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        // Pass 1: hash and steer, and stop at the first packet whose ring
        // is full.
        self.pending.iter_mut().for_each(|p| *p = 0);
        let mut queue_of: ArrayVec<u16, N> = ArrayVec::new();
        for b in tx.as_mut_slice() {
            let q = self.steer(b);
            let qi = usize::from(q);
            if self.rings[qi].len() + self.pending[qi] >= self.ring_size {
                break;
            }
            if frame_len(b) <= self.max_frame {
                self.pending[qi] += 1;
            }
            queue_of.push(q);
        }
        // Pass 2: move them.
        let n = queue_of.len();
        for (b, q) in tx.drain_front(n).zip(queue_of) {
            if frame_len(&b) > self.max_frame {
                self.stats.dropped.oversize += 1;
            } else {
                self.rings[usize::from(q)].push_back(b);
            }
        }
        self.stats.sent += n as u64;
        n
    }

    /// The impaired path: every packet through the impairment model.
    fn transmit_impaired<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>, now: u64) -> usize {
        self.deliver_due(now);
        let room = self
            .flight_cap
            .saturating_sub(self.flight_len + self.held.len());
        let n = tx.len().min(room);
        for b in tx.drain_front(n) {
            self.impair(b, now);
        }
        self.deliver_due(now);
        n
    }

    /// One packet through the model, in the documented order.
    fn impair(&mut self, mut b: PoolBuf, now: u64) {
        self.stats.sent += 1;
        let len = frame_len(&b);
        if len > self.max_frame {
            self.stats.dropped.oversize += 1;
            return;
        }
        if self.partitioned {
            self.stats.dropped.partition += 1;
            return;
        }
        if self.rng.chance(self.imp.drop) {
            self.stats.dropped.random += 1;
            return;
        }
        let mut release_ns = now;
        if let Some(bps) = self.imp.bandwidth_bps.filter(|&b| b > 0) {
            match self.enter_bandwidth_queue(len, bps, now) {
                Some(finish) => release_ns = finish,
                None => {
                    self.stats.dropped.queue += 1;
                    return;
                }
            }
        }
        if len > 0 && self.rng.chance(self.imp.truncate) {
            let keep = self.rng.below(len as u64) as usize;
            if !self.own_bytes(&mut b) {
                return;
            }
            // Cannot fail: `len - keep <= len`, one segment held alone.
            let _ = b.trim_back(len - keep);
            self.stats.truncated += 1;
        }
        if frame_len(&b) > 0 && self.rng.chance(self.imp.corrupt) {
            self.stats.corrupted += 1;
            if self.imp.corruption == Corruption::Fcs {
                // The receiver's frame check fails: the NIC drops it.
                self.stats.dropped.fcs += 1;
                return;
            }
            if !self.own_bytes(&mut b) {
                return;
            }
            self.flip_bits(&mut b);
        }
        release_ns = release_ns.saturating_add(duration_ns(self.imp.delay));
        let jitter = duration_ns(self.imp.jitter);
        if jitter > 0 {
            release_ns = release_ns.saturating_add(self.rng.below(jitter.saturating_add(1)));
        }
        let queue = self.steer(&mut b);
        let copy = if self.rng.chance(self.imp.duplicate) {
            let c = b.copy();
            if c.is_none() {
                self.stats.duplicate_failed += 1;
            }
            c
        } else {
            None
        };
        let item = InFlight {
            release_ns,
            seq: self.next_seq(),
            queue,
            buf: b,
        };
        if self.rng.chance(self.imp.reorder) {
            let distance = self.imp.reorder_distance.max(1);
            self.held.push(HeldBack {
                remaining: 1 + self.rng.below(u64::from(distance)) as u32,
                deadline_ns: now.saturating_add(duration_ns(self.imp.reorder_timeout)),
                item,
            });
            self.stats.reordered += 1;
        } else {
            self.enqueue_passing(item);
        }
        if let Some(buf) = copy {
            self.stats.duplicated += 1;
            let dup = InFlight {
                release_ns,
                seq: self.next_seq(),
                queue,
                buf,
            };
            self.enqueue_passing(dup);
        }
    }

    /// Makes `b` one segment this lane may write before it is cut or its
    /// bits flipped: a chain's later segments may be shared with another
    /// holder (the sender's retransmission queue), whose bytes must stay
    /// as they are, so a chain is replaced by a copy. False (counted in
    /// `dropped.no_buffer`, the frame dropped) when no buffer was free.
    fn own_bytes(&mut self, b: &mut PoolBuf) -> bool {
        if !b.is_chained() {
            return true;
        }
        match b.copy() {
            Some(flat) => {
                *b = flat;
                true
            }
            None => {
                self.stats.dropped.no_buffer += 1;
                false
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Books `len` bytes onto the rate-limited lane. Returns when the packet
    /// has been serialized, or `None` if the queue is full (tail-drop).
    fn enter_bandwidth_queue(&mut self, len: usize, bps: u64, now: u64) -> Option<u64> {
        while let Some(&(finish, bytes)) = self.backlog.front() {
            if finish > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= bytes;
        }
        let full_packets = self
            .imp
            .queue_packets
            .is_some_and(|m| self.backlog.len() >= m);
        let full_bytes = self
            .imp
            .queue_bytes
            .is_some_and(|m| self.backlog_bytes + len > m);
        if full_packets || full_bytes {
            return None;
        }
        let bits = (len as u128) * 8 * 1_000_000_000;
        let serialize_ns = u64::try_from(bits.div_ceil(u128::from(bps))).unwrap_or(u64::MAX);
        let finish = self.lane_free_ns.max(now).saturating_add(serialize_ns);
        self.lane_free_ns = finish;
        self.backlog.push_back((finish, len));
        self.backlog_bytes += len;
        Some(finish)
    }

    /// Flips `corrupt_bits` distinct random bits of the packet.
    fn flip_bits(&mut self, b: &mut PoolBuf) {
        let nbits = b.len() as u64 * 8;
        let k = (self.imp.corrupt_bits as usize)
            .min(MAX_CORRUPT_BITS)
            .min(nbits as usize);
        let mut chosen: ArrayVec<u64, MAX_CORRUPT_BITS> = ArrayVec::new();
        while chosen.len() < k {
            let bit = self.rng.below(nbits);
            if !chosen.contains(&bit) {
                chosen.push(bit);
            }
        }
        let data = b.data_mut();
        for bit in chosen {
            data[(bit / 8) as usize] ^= 0x80 >> (bit % 8);
        }
    }

    /// Puts a packet on the way and lets held-back packets count it.
    fn enqueue_passing(&mut self, item: InFlight) {
        let release_ns = item.release_ns;
        self.enqueue(item);
        let mut i = 0;
        while i < self.held.len() {
            self.held[i].remaining -= 1;
            if self.held[i].remaining == 0 {
                let mut h = self.held.swap_remove(i).item;
                // Behind the packet that just passed it.
                h.release_ns = h.release_ns.max(release_ns);
                h.seq = self.next_seq();
                self.enqueue(h);
            } else {
                i += 1;
            }
        }
    }

    /// Puts a packet on the way; [`deliver_due`](Self::deliver_due) moves it
    /// into its ring when its time has come.
    fn enqueue(&mut self, item: InFlight) {
        self.flight[usize::from(item.queue)].push(item);
        self.flight_len += 1;
    }

    /// Moves packets whose time has come into the receive rings (and releases
    /// held-back packets past their deadline).
    fn deliver_due(&mut self, now: u64) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].deadline_ns <= now {
                let mut h = self.held.swap_remove(i).item;
                h.seq = self.next_seq();
                self.enqueue(h);
            } else {
                i += 1;
            }
        }
        if self.flight_len == 0 {
            return;
        }
        for (heap, ring) in self.flight.iter_mut().zip(self.rings.iter_mut()) {
            while let Some(top) = heap.peek() {
                if top.release_ns > now || ring.len() >= self.ring_size {
                    break;
                }
                let Some(item) = heap.pop() else { break };
                ring.push_back(item.buf);
                self.flight_len -= 1;
            }
        }
    }

    /// Hands received packets of `queue` to `rx`; see
    /// [`Port::rx_burst`](crate::port::Port::rx_burst).
    #[inline]
    pub(super) fn receive<const N: usize>(
        &mut self,
        queue: u16,
        rx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
    ) -> Moved {
        let mut now = None;
        let quiet = self.flight_len == 0 && self.held.is_empty();
        if !quiet {
            let t = clock.now_ns();
            self.deliver_due(t);
            now = Some(t);
        }
        let one_queue = self.queues == 1;
        let ring = &mut self.rings[usize::from(queue)];
        let n = rx.remaining().min(ring.len());
        if n == 0 {
            return Moved {
                n,
                on_way: self.on_way(),
            };
        }
        let now = now.unwrap_or_else(|| clock.now_ns());
        // One frame at a time off the ring's front: a burst is mostly one
        // or two frames, for which a drain and an extend cost several times
        // the moves themselves.
        let rss = self.rss;
        for _ in 0..n {
            let Some(mut b) = ring.pop_front() else {
                break;
            };
            // Fresh metadata (the default's bytes copied whole, then the
            // receive fields); the RSS hash (set on transmit) is kept where
            // the wire computes them.
            let m = b.meta_mut();
            let rss_hash = m.rss_hash;
            *m = Meta::default();
            m.rx_queue = queue;
            m.rx_timestamp_ns = now;
            if rss {
                m.rss_hash = rss_hash;
            }
            if let Err(b) = rx.try_push(b) {
                // Not reached: `n` is at most the room left.
                ring.push_front(b);
                break;
            }
        }
        self.stats.delivered += n as u64;
        let on_way = if quiet && one_queue {
            // Nothing in flight or held back, one ring: the ring is all.
            ring.len()
        } else {
            self.on_way()
        };
        debug_assert_eq!(on_way, self.on_way());
        Moved { n, on_way }
    }
}

/// What a burst moved on a lane: how many packets, and how many are on the
/// way after it (what [`Lane::on_way`] counts), for the lock-free look of
/// the next receive.
pub(super) struct Moved {
    /// Packets moved.
    pub(super) n: usize,
    /// Packets on the way.
    pub(super) on_way: usize,
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
