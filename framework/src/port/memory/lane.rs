//! A lane: one direction of a wire, with the receive rings of the far end's
//! queues and the impairment engine in front of them.
//!
//! # The plain path and the lock
//!
//! A lane's impairment state sits behind a mutex. A *plain* lane (one queue,
//! no impairment, no partition, nothing in flight or held back) is crossed
//! without it: the sending port pushes into the receive ring and the
//! receiving port pops from it, the ring passing frames from its one
//! producer to its one consumer ([`Ring`]).
//!
//! Everything else takes the lock, and a lock holder that may touch the
//! rings first stops the plain path ([`Lane::lock`]), so that it sees a
//! quiescent lane and is the rings' only producer and consumer; when it
//! lets go, the lane is plain again if its state says so.
//!
//! ## The hand-over
//!
//! It is Dekker's, on three atomics: `plain` (open or closed, written only
//! by lock holders) and the two ports' busy flags (each written only by
//! its port). A port on the plain path
//!
//! 1. reads `plain` (a hint: closed, it goes to the lock at once);
//! 2. raises its busy flag (a store);
//! 3. fences: the store before the load of 4 ([`Barrier`]);
//! 4. reads `plain` again (Acquire): closed, it lowers its flag and goes
//!    to the lock; open, it uses the ring;
//! 5. lowers its flag with a Release store after its last ring access.
//!
//! A lock holder that finds `plain` open (under the lock, exact)
//!
//! 1. stores `plain` closed;
//! 2. fences: the store before the loads of 3 ([`Barrier`]);
//! 3. reads both busy flags (Acquire) until both are down;
//! 4. uses the rings, and when it lets go, stores `plain` open again (if
//!    the lane is plain) with a Release store after its last ring access.
//!
//! Why a port that read `plain` open in its step 4 cannot use the ring
//! while a lock holder does: both sides store and then, after their
//! fence, load the other's location, so at least one sees the other's
//! store. If the lock holder's step 3 sees the port's flag up, it waits
//! for the port's step 5, whose Release store its Acquire load reads: the
//! port's ring accesses happen before its own. If the port's step 4 sees
//! `plain` closed, it does not use the ring. The fences make "at least one
//! sees the other": with [`Barrier::Symmetric`] both stores and loads are
//! SeqCst (a SeqCst store is a full fence on x86: an `xchg`), so in
//! their single total order one store comes first and the other side's
//! later load sees it; with [`Barrier::Asymmetric`] the port's fence is a
//! compiler fence only (its store and load stay in program order, but the
//! CPU may let the load pass the store), and the lock holder's fence is
//! [`membarrier::heavy`], which cuts every running thread's program order
//! with a full barrier during the call: the port's flag store came before
//! that barrier (visible to the lock holder's loads after the call), or
//! its load of `plain` comes after it (and sees the closing store, made
//! before the call). The other way round, a port that reads `plain` open
//! again reads the Release store of the lock holder that reopened it, so
//! that holder's ring accesses happen before the port's.
//!
//! A busy flag has one writer: the port's role has one holder at a time.
//! A plain lane has one queue, whose one port per end is handed out once
//! by [`MemoryWire::port`](super::MemoryWire::port) and crosses the lane
//! only through `&mut self` (`tx_burst`, `rx_burst`); a port dropped and
//! made again on another thread is ordered by the wire's `taken` mutex.
//! Debug builds check that a flag is down when its port raises it.
//!
//! The port's side, steps 1 to 5, costs no atomic read-modify-write and
//! no fence with [`Barrier::Asymmetric`]: plain loads and stores. The lock
//! holder pays a system call (and an interrupt of each CPU running one of
//! the process's threads) each time it closes an open lane: on an
//! impairment or partition change, a `clear`, or a port's locked burst
//! racing a reopening. [`Lane::stats`] does not close it.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{self, AtomicBool, AtomicU64, AtomicU8, AtomicUsize};

use arrayvec::ArrayVec;

use super::impair::{Corruption, Impairment};
use super::membarrier::{self, Barrier};
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

/// Gives a received frame fresh metadata (the default's bytes copied
/// whole, then the receive fields); the RSS hash (set on transmit) is kept
/// where the wire computes them.
#[inline(always)]
fn fresh_meta(b: &mut PoolBuf, queue: u16, now: u64, rss: bool) {
    let m = b.meta_mut();
    let rss_hash = m.rss_hash;
    *m = Meta::default();
    m.rx_queue = queue;
    m.rx_timestamp_ns = now;
    if rss {
        m.rss_hash = rss_hash;
    }
}

/// Adds `n` to a counter that has one writer at a time (a plain load and
/// store, no read-modify-write). The store is Release, so that a reader's
/// Acquire load of it sees what the writer did before (see
/// [`Lane::stats`]).
#[inline(always)]
fn add(counter: &AtomicU64, n: usize) {
    let v = counter.load(atomic::Ordering::Relaxed);
    counter.store(v + n as u64, atomic::Ordering::Release);
}

/// `Lane::plain`: the plain path is closed.
const CLOSED: u8 = 0;
/// `Lane::plain`: open, on [`Barrier::Asymmetric`].
const OPEN_ASYMMETRIC: u8 = 1;
/// `Lane::plain`: open, on [`Barrier::Symmetric`].
const OPEN_SYMMETRIC: u8 = 2;

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

/// A lane: one direction of a wire (see the module's comment).
pub(super) struct Lane {
    /// The receive ring of each queue of the far end: `queues` of them (at
    /// least one), made once; the length never changes.
    rings: Box<[Ring]>,
    ring_size: usize,
    max_frame: usize,
    /// The wire computes RSS hashes.
    rss: bool,
    /// Whether the plain path is open (one queue, transparent, nothing in
    /// flight or held back), and on which barrier: [`CLOSED`] or `open`.
    /// Written only by lock holders.
    plain: AtomicU8,
    /// What `plain` holds when open: [`OPEN_ASYMMETRIC`] or
    /// [`OPEN_SYMMETRIC`], the wire's [`Barrier`], so that a port reads its
    /// barrier in the same load as the mode.
    open: u8,
    /// The sending port is on the plain path.
    tx_busy: AtomicBool,
    /// The receiving port is on the plain path.
    rx_busy: AtomicBool,
    /// Packets on the way (queued, in flight or held back) as the last lock
    /// holder left them: a lane that is not plain and has nothing on the
    /// way is polled without its lock.
    on_way: AtomicUsize,
    /// The plain path's counters, each with one writer at a time: the
    /// holder of the matching busy flag, or the lock holder with the plain
    /// path stopped.
    plain_sent: AtomicU64,
    plain_oversize: AtomicU64,
    plain_delivered: AtomicU64,
    state: parking_lot::Mutex<LaneState>,
}

/// A lane's state behind its lock: the impairment engine.
struct LaneState {
    ring_size: usize,
    /// Per-queue packets accepted in the current burst (transparent path).
    pending: Box<[usize]>,
    queues: u16,
    rss: bool,
    max_frame: usize,
    imp: Impairment,
    partitioned: bool,
    /// No impairment and no partition.
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

/// A port's busy flag, raised (see the module's comment); lowered when
/// dropped, with a Release store.
struct Busy<'a>(&'a AtomicBool);

impl<'a> Busy<'a> {
    /// Raises `flag` (steps 2 to 4 of the module's comment) on the barrier
    /// of `open`, the value the port read in `plain` (step 1), and checks
    /// that the plain path is still open: `None` if it is closed (the flag
    /// lowered again).
    #[inline(always)]
    fn raise(flag: &'a AtomicBool, plain: &AtomicU8, open: u8) -> Option<Busy<'a>> {
        // One holder per flag (see the module's comment).
        debug_assert!(!flag.load(atomic::Ordering::Relaxed));
        if open == OPEN_SYMMETRIC {
            flag.store(true, atomic::Ordering::SeqCst);
        } else {
            flag.store(true, atomic::Ordering::Relaxed);
            // The lock holder's `membarrier::heavy` is the other half.
            atomic::compiler_fence(atomic::Ordering::SeqCst);
        }
        let busy = Busy(flag);
        (plain.load(atomic::Ordering::SeqCst) != CLOSED).then_some(busy)
    }
}

impl Drop for Busy<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.store(false, atomic::Ordering::Release);
    }
}

/// The lock held with the plain path stopped: the lock holder is the only
/// producer and consumer of the rings. Dropping it reopens the plain path
/// if the lane is plain, and leaves the count on the way.
struct Held<'a> {
    lane: &'a Lane,
    state: parking_lot::MutexGuard<'a, LaneState>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let lane = self.lane;
        let st = &*self.state;
        let queued: usize = lane.rings.iter().map(Ring::len).sum();
        lane.on_way.store(
            queued + st.flight_len + st.held.len(),
            atomic::Ordering::Release,
        );
        // Last: the ring accesses above come before it (see the module's
        // comment); the lock goes after.
        let plain = if st.is_plain() { lane.open } else { CLOSED };
        lane.plain.store(plain, atomic::Ordering::SeqCst);
    }
}

/// The rings as a [`Held`] lock holder uses them.
#[derive(Clone, Copy)]
struct HeldRings<'a>(&'a [Ring]);

impl HeldRings<'_> {
    fn len(self, q: usize) -> usize {
        self.0[q].len()
    }

    fn push_back(self, q: usize, b: PoolBuf) {
        debug_assert!(self.len(q) < self.0[q].capacity());
        // SAFETY: a `HeldRings` is only made by `Held::parts`, borrowing the `Held`: under the
        // lock with the plain path stopped: the only producer. Every caller
        // checks the ring size (at most the slots) first.
        unsafe { self.0[q].push_back(b) }
    }

    fn pop_front(self, q: usize) -> Option<PoolBuf> {
        // SAFETY: as in `push_back`: the only consumer.
        unsafe { self.0[q].pop_front() }
    }

    fn clear(self) {
        for ring in self.0 {
            // SAFETY: as in `push_back`: the only consumer.
            unsafe { ring.clear() }
        }
    }
}

impl Held<'_> {
    /// The rings and the state, to use together.
    fn parts(&mut self) -> (HeldRings<'_>, &mut LaneState) {
        (HeldRings(&self.lane.rings), &mut self.state)
    }
}

impl Lane {
    /// A lane whose plain path hands over on `barrier`.
    pub(super) fn new(s: LaneSetup, barrier: Barrier) -> Lane {
        let queues = s.queues.max(1);
        let flight_cap = s.ring_size * usize::from(queues);
        let transparent = s.impairment.is_transparent();
        let rss = s.rss || queues > 1;
        let max_frame = max_frame(s.mtu);
        let open = match barrier {
            Barrier::Asymmetric => OPEN_ASYMMETRIC,
            Barrier::Symmetric => OPEN_SYMMETRIC,
        };
        let state = LaneState {
            ring_size: s.ring_size,
            pending: vec![0; usize::from(queues)].into_boxed_slice(),
            queues,
            rss,
            max_frame,
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
        };
        Lane {
            rings: (0..queues).map(|_| Ring::new(s.ring_size)).collect(),
            ring_size: s.ring_size,
            max_frame,
            rss,
            plain: AtomicU8::new(if state.is_plain() { open } else { CLOSED }),
            open,
            tx_busy: AtomicBool::new(false),
            rx_busy: AtomicBool::new(false),
            on_way: AtomicUsize::new(0),
            plain_sent: AtomicU64::new(0),
            plain_oversize: AtomicU64::new(0),
            plain_delivered: AtomicU64::new(0),
            state: parking_lot::Mutex::new(state),
        }
    }

    /// Takes the lock and stops the plain path: waits until neither port is
    /// on it (see the module's comment).
    fn lock(&self) -> Held<'_> {
        let state = self.state.lock();
        // Only lock holders write `plain`: under the lock, this is exact.
        if self.plain.load(atomic::Ordering::Relaxed) != CLOSED {
            self.plain.store(CLOSED, atomic::Ordering::SeqCst);
            if self.open == OPEN_ASYMMETRIC {
                membarrier::heavy();
            }
            while self.tx_busy.load(atomic::Ordering::SeqCst)
                || self.rx_busy.load(atomic::Ordering::SeqCst)
            {
                std::hint::spin_loop();
            }
        }
        Held { lane: self, state }
    }

    /// The first ring: queue 0's, the only one of a plain lane.
    #[inline(always)]
    fn first_ring(&self) -> &Ring {
        // SAFETY: `rings` is made with `queues` (at least 1) rings and
        // never changes length: ring 0 is there.
        unsafe { self.rings.get_unchecked(0) }
    }

    /// Cuts (or restores) this direction.
    pub(super) fn set_partitioned(&self, on: bool) {
        self.lock().state.set_partitioned(on);
    }

    pub(super) fn is_partitioned(&self) -> bool {
        self.state.lock().partitioned
    }

    /// Replaces the impairment; packets already on the way keep their fate.
    pub(super) fn set_impairment(&self, imp: Impairment) {
        let mut held = self.lock();
        held.state.imp = imp;
        let partitioned = held.state.partitioned;
        held.state.set_partitioned(partitioned);
    }

    pub(super) fn impairment(&self) -> Impairment {
        self.state.lock().imp.clone()
    }

    /// The counters, without stopping the plain path: exact when no port
    /// is in a burst meanwhile (always so when the thread that reads them
    /// drives the ports); else each plain-path counter and the frames
    /// waiting in the rings are a moment's view, and `delivered` is read
    /// before `sent`, so that it never counts a frame `sent` has not (the
    /// sending port counts a burst before it pushes it).
    pub(super) fn stats(&self) -> LaneStats {
        let st = self.state.lock();
        let mut stats = st.stats;
        // Acquire: pairs with `add`'s Release, after the receiving port's
        // Acquire of the ring's tail, after the sending port's count.
        stats.delivered += self.plain_delivered.load(atomic::Ordering::Acquire);
        stats.sent += self.plain_sent.load(atomic::Ordering::Acquire);
        stats.dropped.oversize += self.plain_oversize.load(atomic::Ordering::Acquire);
        let queued: usize = self.rings.iter().map(Ring::len).sum();
        stats.in_flight = (queued + st.flight_len + st.held.len()) as u64;
        stats
    }

    /// Drops every packet on the way (their buffers go back to the pool).
    pub(super) fn clear(&self) {
        let mut held = self.lock();
        let (rings, st) = held.parts();
        rings.clear();
        st.clear();
    }

    /// Takes packets from the front of `tx` onto the wire; see
    /// [`Port::tx_burst`](crate::port::Port::tx_burst). `fit` says the
    /// caller has checked that no packet is longer than
    /// [`max_frame`]: the plain path then moves the burst without a look.
    #[inline]
    pub(super) fn transmit<const N: usize>(
        &self,
        tx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
        fit: bool,
    ) -> usize {
        let open = self.plain.load(atomic::Ordering::Relaxed);
        if open != CLOSED {
            if let Some(_busy) = Busy::raise(&self.tx_busy, &self.plain, open) {
                return self.transmit_plain(tx, fit);
            }
        }
        self.transmit_locked(tx, clock, fit)
    }

    #[inline(never)]
    fn transmit_locked<const N: usize>(
        &self,
        tx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
        fit: bool,
    ) -> usize {
        let mut held = self.lock();
        let (rings, st) = held.parts();
        if st.transparent && st.flight_len == 0 && st.held.is_empty() {
            if st.queues == 1 {
                self.transmit_plain(tx, fit)
            } else {
                st.transmit_steered(rings, tx)
            }
        } else {
            st.transmit_impaired(rings, tx, clock.now_ns())
        }
    }

    /// The plain path of a single-queue wire: no steering, one move of the
    /// burst into the receive ring. Packets are only read (their length,
    /// unless `fit`), unless the wire computes RSS hashes anyway. Run by
    /// the producer: the holder of the raised `tx_busy` with the plain path
    /// open, or the lock holder with it stopped.
    #[inline]
    fn transmit_plain<const N: usize>(&self, tx: &mut Burst<PoolBuf, N>, fit: bool) -> usize {
        let ring = self.first_ring();
        let n = tx.len().min(self.ring_size.saturating_sub(ring.len()));
        if self.rss {
            // Only the packets that leave: the rest stay with the caller
            // and would be hashed again on the next attempt.
            for b in &mut tx.as_mut_slice()[..n] {
                b.meta_mut().rss_hash = rss::frame_hash(b.data());
            }
        }
        // Counted before the frames can be delivered (see `stats`).
        add(&self.plain_sent, n);
        let max_frame = self.max_frame;
        // SAFETY (each push below): the caller is the only producer (see
        // above), and `n` is at most the room `len` showed (the ring size,
        // at most the slots, less the frames waiting).
        if fit || tx.as_slice()[..n].iter().all(|b| frame_len(b) <= max_frame) {
            if n == 1 && tx.len() == 1 {
                // The whole burst is one frame (a request, a reply, an
                // ACK): taken off the back, without a drain's bookkeeping.
                if let Some(b) = tx.pop() {
                    // SAFETY: see above.
                    unsafe { ring.push_back(b) };
                }
            } else {
                // Frame by frame (see `receive_plain`): cheaper than an
                // extend for the one or two a burst mostly holds.
                for b in tx.drain_front(n) {
                    // SAFETY: see above.
                    unsafe { ring.push_back(b) };
                }
            }
        } else {
            let mut oversize = 0;
            for b in tx.drain_front(n) {
                if frame_len(&b) > max_frame {
                    oversize += 1;
                } else {
                    // SAFETY: see above.
                    unsafe { ring.push_back(b) };
                }
            }
            add(&self.plain_oversize, oversize);
        }
        n
    }

    /// Hands received packets of `queue` to `rx`; see
    /// [`Port::rx_burst`](crate::port::Port::rx_burst).
    #[inline]
    pub(super) fn receive<const N: usize>(
        &self,
        queue: u16,
        rx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
    ) -> usize {
        let open = self.plain.load(atomic::Ordering::Relaxed);
        if open != CLOSED {
            // A plain lane has one queue (0): its ring is all on the way.
            // A frame sent after this look waits for the next poll, as it
            // would had it come a moment later.
            if self.first_ring().len() == 0 {
                return 0;
            }
            if let Some(_busy) = Busy::raise(&self.rx_busy, &self.plain, open) {
                return self.receive_plain(rx, clock);
            }
        } else if self.on_way.load(atomic::Ordering::Acquire) == 0 {
            // Acquire: pairs with the Release of the last lock holder.
            return 0;
        }
        self.receive_locked(queue, rx, clock)
    }

    #[inline(never)]
    fn receive_locked<const N: usize>(
        &self,
        queue: u16,
        rx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
    ) -> usize {
        let mut held = self.lock();
        let (rings, st) = held.parts();
        st.receive(rings, queue, rx, clock)
    }

    /// The plain path's receive: the holder of the raised `rx_busy` with
    /// the plain path open, the ring's only consumer.
    #[inline]
    fn receive_plain<const N: usize>(
        &self,
        rx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
    ) -> usize {
        let ring = self.first_ring();
        let n = rx.remaining().min(ring.len());
        if n == 0 {
            return 0;
        }
        let now = clock.now_ns();
        let rss = self.rss;
        // One frame at a time off the ring's front: a burst is mostly one
        // or two frames, for which a drain and an extend cost several times
        // the moves themselves.
        for _ in 0..n {
            // SAFETY: the only consumer (see above).
            let Some(mut b) = (unsafe { ring.pop_front() }) else {
                break;
            };
            fresh_meta(&mut b, 0, now, rss);
            // `n` is at most the room left.
            rx.push(b);
        }
        add(&self.plain_delivered, n);
        n
    }
}

impl LaneState {
    /// The plain path may run: one queue, transparent, nothing in flight or
    /// held back.
    fn is_plain(&self) -> bool {
        self.queues == 1 && self.transparent && self.flight_len == 0 && self.held.is_empty()
    }

    fn set_partitioned(&mut self, on: bool) {
        self.partitioned = on;
        self.transparent = !on && self.imp.is_transparent();
    }

    fn clear(&mut self) {
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

    /// The fast path of a multi-queue wire: each packet into the ring of
    /// the queue its RSS hash picks, as many as fit.
    fn transmit_steered<const N: usize>(
        &mut self,
        rings: HeldRings<'_>,
        tx: &mut Burst<PoolBuf, N>,
    ) -> usize {
        // Pass 1: hash and steer, and stop at the first packet whose ring
        // is full.
        self.pending.iter_mut().for_each(|p| *p = 0);
        let mut queue_of: ArrayVec<u16, N> = ArrayVec::new();
        for b in tx.as_mut_slice() {
            let q = self.steer(b);
            let qi = usize::from(q);
            if rings.len(qi) + self.pending[qi] >= self.ring_size {
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
                rings.push_back(usize::from(q), b);
            }
        }
        self.stats.sent += n as u64;
        n
    }

    /// The impaired path: every packet through the impairment model.
    fn transmit_impaired<const N: usize>(
        &mut self,
        rings: HeldRings<'_>,
        tx: &mut Burst<PoolBuf, N>,
        now: u64,
    ) -> usize {
        self.deliver_due(rings, now);
        let room = self
            .flight_cap
            .saturating_sub(self.flight_len + self.held.len());
        let n = tx.len().min(room);
        for b in tx.drain_front(n) {
            self.impair(b, now);
        }
        self.deliver_due(rings, now);
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
    fn deliver_due(&mut self, rings: HeldRings<'_>, now: u64) {
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
        for (q, heap) in self.flight.iter_mut().enumerate() {
            while let Some(top) = heap.peek() {
                if top.release_ns > now || rings.len(q) >= self.ring_size {
                    break;
                }
                let Some(item) = heap.pop() else { break };
                rings.push_back(q, item.buf);
                self.flight_len -= 1;
            }
        }
    }

    /// The locked receive: delivers what is due, then hands received
    /// packets of `queue` to `rx`.
    fn receive<const N: usize>(
        &mut self,
        rings: HeldRings<'_>,
        queue: u16,
        rx: &mut Burst<PoolBuf, N>,
        clock: &TimeSource,
    ) -> usize {
        let mut now = None;
        if self.flight_len != 0 || !self.held.is_empty() {
            let t = clock.now_ns();
            self.deliver_due(rings, t);
            now = Some(t);
        }
        let q = usize::from(queue);
        let n = rx.remaining().min(rings.len(q));
        if n == 0 {
            return 0;
        }
        let now = now.unwrap_or_else(|| clock.now_ns());
        for _ in 0..n {
            let Some(mut b) = rings.pop_front(q) else {
                break;
            };
            fresh_meta(&mut b, queue, now, self.rss);
            // `n` is at most the room left.
            rx.push(b);
        }
        self.stats.delivered += n as u64;
        n
    }
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::super::rng::Rng;
    use super::super::{Direction, End, Impairment, MemoryWire, Partition, WireConfig};
    use super::Barrier;
    use crate::buf::{BufferPool, PacketBuf};
    use crate::port::{Burst, Port};

    const END_MARK: u32 = u32::MAX;
    /// Switches the stress test makes.
    const SWITCHES: u32 = if cfg!(miri) { 20 } else { 2_000 };

    /// One thread sends numbered frames and another receives them, while
    /// the test's thread switches the lane between the plain path and the
    /// lock (random loss, a partition, `clear`, `stats`) `SWITCHES` times,
    /// a seeded random number of frames apart: frames arrive in order, each at most once,
    /// the last one, sent once the lane is plain again, arrives, and every
    /// buffer comes back. The seed is printed (shown if the test fails);
    /// `TPA_LANE_STRESS_SEED` replays one. On the barrier this process
    /// detects (asymmetric, membarrier, where the kernel offers it).
    #[test]
    #[cfg_attr(miri, ignore)]
    fn plain_and_locked_paths_hand_over_between_threads() {
        hand_over_between_threads(Barrier::detect());
    }

    /// The same on the fallback: a full fence on both sides. Under Miri
    /// (whose weak-memory emulation then checks the hand-over), which
    /// needs the real clock: `MIRIFLAGS=-Zmiri-disable-isolation cargo
    /// +nightly miri test -p tpa --lib symmetric_barrier --
    /// --include-ignored`.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn plain_and_locked_paths_hand_over_on_the_symmetric_barrier() {
        hand_over_between_threads(Barrier::Symmetric);
    }

    fn hand_over_between_threads(barrier: Barrier) {
        let seed = std::env::var("TPA_LANE_STRESS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("lane stress seed {seed} (TPA_LANE_STRESS_SEED={seed} to replay), {barrier:?}");
        let wire = MemoryWire::with_barrier(
            WireConfig {
                ring_size: 16,
                pool_capacity: 1024,
                seed,
                ..WireConfig::default()
            },
            barrier,
        )
        .expect("a wire");
        let mut a = wire.port(End::A, 0).expect("end A");
        let mut b = wire.port(End::B, 0).expect("end B");
        let switched = AtomicBool::new(false);
        let received = AtomicU64::new(0);
        std::thread::scope(|s| {
            let sender = s.spawn(|| {
                let pool = a.pool().clone();
                let frame = |n: u32| loop {
                    if let Some(mut p) = pool.alloc() {
                        p.extend_from_slice(&[0xee; 60]).expect("room");
                        p.data_mut()[..4].copy_from_slice(&n.to_le_bytes());
                        break p;
                    }
                    std::thread::yield_now();
                };
                let mut tx: Burst<_> = Burst::new();
                let mut flush = |tx: &mut Burst<_>| {
                    while !tx.is_empty() {
                        if a.tx_burst(tx) == 0 {
                            std::thread::yield_now();
                        }
                    }
                };
                let mut n = 0;
                while !switched.load(Ordering::Acquire) {
                    tx.push(frame(n));
                    // Bursts of one to four frames.
                    if n % 4 == 3 || n % 7 == 0 {
                        flush(&mut tx);
                    }
                    n += 1;
                }
                tx.push(frame(END_MARK));
                flush(&mut tx);
            });
            let receiver = s.spawn(|| {
                let mut rx: Burst<_> = Burst::new();
                let mut last: Option<u32> = None;
                loop {
                    if b.rx_burst(&mut rx) == 0 {
                        std::thread::yield_now();
                    }
                    for p in rx.drain() {
                        let mut n = [0; 4];
                        n.copy_from_slice(&p.data()[..4]);
                        let n = u32::from_le_bytes(n);
                        if n == END_MARK {
                            return;
                        }
                        assert!(last.is_none_or(|l| n > l), "frame {n} after {last:?}");
                        last = Some(n);
                        received.fetch_add(1, Ordering::Release);
                    }
                }
            });
            let mut rng = Rng::new(seed);
            // Random loss keeps the order (a delay would not: switched off,
            // later frames would pass the delayed ones).
            let lossy = Impairment {
                drop: 0.3,
                ..Impairment::default()
            };
            for _ in 0..SWITCHES {
                match rng.below(5) {
                    0 => wire.set_impairment(Direction::AToB, lossy.clone()),
                    1 => wire.set_impairment(Direction::AToB, Impairment::default()),
                    2 => {
                        wire.set_partition(Partition::AToB);
                        wire.set_partition(Partition::None);
                    }
                    _ => {
                        if rng.below(2) == 0 {
                            wire.clear();
                        } else {
                            let stats = wire.stats(Direction::AToB);
                            assert!(stats.delivered <= stats.sent);
                        }
                    }
                }
                // Some frames across before the next switch.
                let target = received.load(Ordering::Acquire) + rng.below(8);
                while received.load(Ordering::Acquire) < target {
                    std::thread::yield_now();
                }
            }
            println!("after the switches: {:?}", wire.stats(Direction::AToB));
            wire.set_partition(Partition::None);
            wire.set_impairment(Direction::AToB, Impairment::default());
            switched.store(true, Ordering::Release);
            // Joined here, not by the scope: a scoped thread's join waits
            // for its thread-local destructors, which give its pool cache
            // back (the scope's end waits only for the closure).
            sender.join().expect("the sender");
            receiver.join().expect("the receiver");
        });
        let pool = wire.pool().clone();
        drop((a, b, wire));
        BufferPool::assert_whole(&pool);
    }
}
