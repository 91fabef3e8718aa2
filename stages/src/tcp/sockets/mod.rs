//! The TCP socket table: listeners and connections in slots with
//! generations, the 4-tuple and listener maps, the timer queue, the list
//! of connections with work for the output path, and the randomness of
//! the stack (ISN key, ephemeral ports, timestamp offsets), all from one
//! seed.
//!
//! This module holds the table and its slots; the rest by concern:
//! `open` (listen, connect, passive opens and SYN cookies), `input` (what
//! the input stage asks for a segment), `flush` (what the output path
//! asks: connections with work, their segments and events), `lifecycle`
//! (settling a connection after its work, TIME_WAIT, timers), `app` (the
//! application's calls by handle), `counters` and `challenge` (RFC 5961's
//! budget).

use crate::hash::SeededHash;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hashbrown::HashTable;

use tpa::app::{Event, SocketError, SocketId, Transport};
use tpa::buf::PacketBuf;
use tpa::port::steer::Steering;
use tpa::port::SharedHost;

use super::config::TcpConfig;
use super::conn::{ConnEvents, Connection, QueueStorage, State};
use super::host_key::HostKey;
use super::isn::IsnGenerator;
use super::listen::Listener;
use super::pmtu::PathMtuCache;
use super::ports::PortPicker;
use super::syncookie::SynCookies;
use super::timers::TimerQueue;
use super::wire::FourTuple;
use crate::egress::{PathV4, PathV6};
use crate::trace::{TraceConfig, Tracer};

mod app;
mod challenge;
mod counters;
mod flush;
mod input;
mod lifecycle;
mod open;
#[cfg(test)]
mod tests;

use challenge::ChallengeAckBudget;
use counters::add_retransmissions;
pub use counters::TcpCounters;
pub(crate) use flush::ConnOut;
pub(crate) use input::{InputEvent, KnownDelivery};
pub(crate) use open::Spawn;

/// How often at most one connection's forward progress confirms its
/// neighbor (RFC 4861 §7.3.1, Linux's `dst_confirm`): often enough that
/// a flow making progress keeps its neighbor REACHABLE (the cache lets
/// an unconfirmed entry in use go STALE after
/// [`NeighborConfig::unconfirmed_use_ns`](crate::neighbor::NeighborConfig::unconfirmed_use_ns),
/// 5 s), seldom enough that the hash lookup it costs is not paid per
/// segment.
pub const CONFIRM_INTERVAL_NS: u64 = 1_000_000_000;

/// A connection's entry.
struct Conn<B: PacketBuf> {
    conn: Connection<B>,
    tuple: FourTuple,
    /// `tuple`'s hash in the table's 4-tuple index, kept for its removal
    /// and the index's growth.
    tuple_hash: u64,
    /// The listener that spawned it, until the application takes it.
    listener: Option<SocketId>,
    /// Opened by `connect` (its handshake raises `Writable`, not
    /// `Accepted`).
    active: bool,
    /// The application closed its handle: no more events, and the slot
    /// is freed once the connection is CLOSED.
    app_closed: bool,
    /// In the dirty list.
    dirty: bool,
    /// The deadline of its live entry in the timer queue: never later
    /// than the connection's next deadline (it may be earlier: the entry
    /// then re-arms when it comes up).
    timer_at: Option<u64>,
    /// Counted in TIME_WAIT.
    time_wait: bool,
    /// The application was told of it (`Accepted`, or it opened it).
    announced: bool,
    /// Events not yet raised (the event queue was full): `None` when
    /// there are none (never `Some` of no event), so a segment's check
    /// is one compare.
    pending: Option<ConnEvents>,
    /// `Readable` / `Writable` raised by input since the last settle:
    /// the application has not run since, so a later segment's same
    /// event is already in the queue (one per burst, not per segment).
    raised_readable: bool,
    raised_writable: bool,
    /// Forward progress before this time does not confirm the neighbor
    /// again (see [`CONFIRM_INTERVAL_NS`]).
    next_confirm_ns: u64,
    /// Its IPv4 way out (headers and next hop), built by its first
    /// segment sent (unused over IPv6).
    path: PathV4,
    /// Its IPv6 way out, as `path`: boxed by its first segment over IPv6
    /// (an IPv4 connection's slot stays as it was).
    path6: Option<Box<PathV6>>,
}

/// Closed connections' queue storage a table keeps for new ones: the
/// allocations a short connection's first segments would make (a send and
/// a receive queue's), reused; a few are enough for connections opened
/// and closed one after another.
const SPARE_QUEUES: usize = 16;

/// Closed connections' boxed entries a table keeps for new ones: the
/// allocation of the entry (engine and bookkeeping, a kilobyte or two) a
/// new connection would make and a closed one free, reused. The old
/// entry's value is dropped when its box is reused, so at most this many
/// closed connections' parts (their RACK state, trace ring) wait there.
const SPARE_CONNS: usize = 16;

/// Both kinds are boxed so a slot stays two words: a table of a million
/// connections pays 16 bytes a slot, not the listener's size.
enum Entry<B: PacketBuf> {
    Free,
    Listener(Box<Listener>),
    Conn(Box<Conn<B>>),
}

struct Slot<B: PacketBuf> {
    generation: u32,
    entry: Entry<B>,
}

/// The maps' hasher, keyed from the table's seed: peers choose the
/// four-tuples, and must not be able to aim them at one bucket.
pub type TupleHash = SeededHash;

/// SplitMix64: the stream of the table's random choices after its seed.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The TCP sockets of one worker, a part of the `#[state]` beside
/// [`Egress`](crate::egress::Egress) and [`Events`](tpa::app::Events):
/// listeners and connections behind [`SocketId`] handles
/// (`Transport::Tcp`, a slot and its generation: a closed handle stays
/// invalid when its slot is reused).
///
/// Every random choice (the RFC 6528 ISN key, where the ephemeral port
/// search starts, each connection's timestamp offset, the maps' hash key)
/// comes from the seed given to [`new`](Self::new): a simulation replays
/// exactly from it. A stack facing a real network passes a seed from the
/// OS ([`os_seed`](super::host_key::os_seed)) and keys its ISNs and
/// timestamps with the host's secret
/// ([`with_host_key`](Self::with_host_key)).
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa_stages::tcp::config::TcpConfig;
/// use tpa_stages::tcp::TcpSockets;
/// let sockets: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), 42);
/// assert_eq!(sockets.len(), 0);
/// ```
pub struct TcpSockets<B: PacketBuf> {
    cfg: TcpConfig,
    slots: Vec<Slot<B>>,
    free: Vec<u32>,
    open: usize,
    /// The queue storage of closed connections, for the next ones (at
    /// most [`SPARE_QUEUES`]).
    spare_queues: Vec<QueueStorage<B>>,
    /// The boxed entries of closed connections, for the next ones (at
    /// most [`SPARE_CONNS`]). Boxes on purpose: their allocations are
    /// what is kept, each moved back into a slot as it is.
    #[allow(clippy::vec_box)]
    spare_conns: Vec<Box<Conn<B>>>,
    /// The connections' slots, found by 4-tuple: each entry a slot index,
    /// hashed by its connection's tuple under `tuple_hash` (hashed once
    /// per lookup, insertion or removal; the tuple itself lives in the
    /// slot).
    conns: HashTable<u32>,
    tuple_hash: TupleHash,
    listeners: HashMap<SocketAddr, u32, TupleHash>,
    isn: IsnGenerator,
    cookies: SynCookies,
    /// Added to pipeline time for the clock under ISNs and timestamps:
    /// the host's boot clock with a [`HostKey`], 0 otherwise.
    boot_offset_ns: u64,
    ports: PortPicker,
    steering: Steering,
    timers: TimerQueue,
    /// The slot [`find`](Self::find) found last (`u32::MAX`: none yet).
    last_found: u32,
    /// The emptied buffer of an acknowledged send chunk, taken by the
    /// next write before the pool's.
    spare_send_buf: Option<B>,
    /// The slots marked for the output path, each once (its `dirty`),
    /// worked through in place.
    dirty: Vec<u32>,
    /// The events list's allocation, lent to the input and output paths.
    events: Vec<Event>,
    time_wait: VecDeque<(u32, u32)>,
    time_wait_count: usize,
    counters: TcpCounters,
    challenge_acks: ChallengeAckBudget,
    path_mtus: PathMtuCache,
    /// The socket trace's file (None: tracing off).
    tracer: Option<Tracer>,
    /// The port beside the host's kernel told of listening ports.
    shared_host: Option<Arc<dyn SharedHost>>,
}

impl<B: PacketBuf> TcpSockets<B> {
    /// An empty table with `cfg`'s limits, every random choice drawn from
    /// `seed`. Ephemeral ports are chosen without regard to steering until
    /// [`set_steering`](Self::set_steering) says how the port spreads
    /// flows.
    pub fn new(cfg: TcpConfig, seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        // The cookie secret derives from the ISN key's draw (another
        // domain), so the rest of the stream is as it was before cookies.
        let isn_seed = rng.next();
        let isn = IsnGenerator::from_seed(isn_seed);
        let cookies = SynCookies::from_seed(isn_seed);
        let hash = TupleHash::new(rng.next());
        let ports = PortPicker::new(cfg.port_first, cfg.port_last, rng.next());
        let challenge_acks = ChallengeAckBudget::new(cfg.challenge_ack_limit, seed);
        TcpSockets {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            spare_queues: Vec::new(),
            spare_conns: Vec::new(),
            conns: HashTable::new(),
            tuple_hash: hash,
            listeners: HashMap::with_hasher(hash),
            isn,
            cookies,
            boot_offset_ns: 0,
            ports,
            steering: Steering::Unknown,
            timers: TimerQueue::default(),
            last_found: u32::MAX,
            spare_send_buf: None,
            dirty: Vec::new(),
            events: Vec::new(),
            time_wait: VecDeque::new(),
            time_wait_count: 0,
            counters: TcpCounters::default(),
            challenge_acks,
            path_mtus: PathMtuCache::default(),
            tracer: None,
            shared_host: None,
        }
    }

    /// Tells `host` (a port beside the host's kernel) of every port a
    /// listener opens or its last listener closes, so the port hands
    /// tpa that port's frames. The active-open range is the port's to
    /// take when it opens (it should be [`TcpConfig`]'s `port_first..=port_last`).
    pub fn set_shared_host(&mut self, host: Arc<dyn SharedHost>) {
        self.shared_host = Some(host);
    }

    /// Keys ISNs, timestamp offsets and SYN cookies with the host's
    /// secret instead of the seed, on the host's boot clock: what every
    /// tpa process of the host shares, so a connection of this process
    /// follows on from an earlier process's on the same 4-tuple (see
    /// [`host_key`](super::host_key)). The seed still drives the table's
    /// other choices.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::host_key::HostKey;
    /// use tpa_stages::tcp::TcpSockets;
    /// let key = HostKey::from_secret([9; 32], 0);
    /// let sockets: TcpSockets<PoolBuf> =
    ///     TcpSockets::new(TcpConfig::default(), 42).with_host_key(&key);
    /// # let _ = sockets;
    /// ```
    pub fn with_host_key(mut self, key: &HostKey) -> Self {
        self.isn = IsnGenerator::from_key(key.isn_key());
        self.cookies = SynCookies::from_key(key.cookie_key());
        self.boot_offset_ns = key.boot_offset_ns();
        self
    }

    /// The timestamp offset of a connection on `tuple` (RFC 7323 §5.4),
    /// moved by the boot clock's offset in 1 ms ticks.
    fn ts_offset(&self, tuple: &FourTuple) -> u32 {
        self.boot_ts(self.isn.ts_offset(tuple.local, tuple.remote))
    }

    /// `offset` (an [`IsnGenerator`] timestamp offset) moved by the boot
    /// clock's offset in 1 ms ticks.
    fn boot_ts(&self, offset: u32) -> u32 {
        let boot_ms = (self.boot_offset_ns / 1_000_000) as u32;
        offset.wrapping_add(boot_ms)
    }

    /// Traces every connection opened from now on as `cfg` says (nothing
    /// when `cfg.enabled` is false): a file in `cfg.dir` with a ring of
    /// `cfg.records` records for each of the table's `max_sockets` slots.
    ///
    /// # Errors
    ///
    /// The file's creation failed; the table goes on untraced.
    pub fn enable_trace(&mut self, cfg: &TraceConfig) -> std::io::Result<()> {
        if !cfg.enabled {
            self.tracer = None;
            return Ok(());
        }
        let slots = u32::try_from(self.cfg.max_sockets).unwrap_or(u32::MAX);
        self.tracer = Some(Tracer::open(cfg, slots)?);
        Ok(())
    }

    /// The socket trace, when on.
    pub fn tracer(&self) -> Option<&Tracer> {
        self.tracer.as_ref()
    }

    /// Gives the connection behind `id` its trace ring, when tracing is on.
    fn attach_trace(&mut self, id: SocketId, now_ns: u64) {
        let Some(tracer) = self.tracer.as_ref() else {
            return;
        };
        if let Some(Slot {
            entry: Entry::Conn(c),
            ..
        }) = self.slots.get_mut(id.index as usize)
        {
            let (local, remote) = (c.tuple.local, c.tuple.remote);
            if let Some(ring) = tracer.attach(id.index, id.generation, local, remote, now_ns) {
                c.conn.attach_trace(ring, now_ns);
            }
        }
    }

    /// Says how the port spreads flows over its queues
    /// ([`Port::steering`](tpa::port::Port::steering)), so active opens
    /// pick ports whose replies land on this worker's queue.
    pub fn set_steering(&mut self, steering: Steering) {
        self.steering = steering;
    }

    /// The table with `steering` set; see [`set_steering`](Self::set_steering).
    pub fn with_steering(mut self, steering: Steering) -> Self {
        self.set_steering(steering);
        self
    }

    /// The knobs every connection reads.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Sockets open (listeners and connections, TIME_WAIT included).
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Connections in TIME_WAIT.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait_count
    }

    /// Connections still finishing a close: not CLOSED, not in TIME_WAIT,
    /// and closed by the application (whose handle answers `BadSocket`
    /// from then on) or in a closing state (FIN_WAIT_1/2, CLOSING,
    /// LAST_ACK). Their FIN, and their ACK of the peer's, are sent again
    /// only while the host runs: a host about to stop runs until this is
    /// 0, or its peers wait for a FIN that was lost. A walk over the
    /// table.
    pub fn closing_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| match &s.entry {
                Entry::Conn(c) => {
                    let state = c.conn.state();
                    let closing = matches!(
                        state,
                        State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck
                    );
                    (c.app_closed || closing) && !matches!(state, State::Closed | State::TimeWait)
                }
                _ => false,
            })
            .count()
    }

    /// What the table did. The retransmission counts add up the open
    /// connections' own, so this walks the table: a call for `tpactl` and
    /// tests, not for every segment.
    pub fn counters(&self) -> TcpCounters {
        let mut counters = self.counters;
        for slot in &self.slots {
            if let Entry::Conn(c) = &slot.entry {
                add_retransmissions(&mut counters, &c.conn);
            }
        }
        counters
    }

    pub(crate) fn counters_mut(&mut self) -> &mut TcpCounters {
        &mut self.counters
    }

    /// A free slot, or `NoBuffers` at `max_sockets`. A connection gets
    /// the queue storage a closed one left, if any.
    fn take_slot(&mut self, mut entry: Entry<B>) -> Result<SocketId, SocketError> {
        if self.open >= self.cfg.max_sockets {
            return Err(SocketError::NoBuffers);
        }
        if let Entry::Conn(c) = &mut entry {
            if let Some(storage) = self.spare_queues.pop() {
                c.conn.adopt_queue_storage(storage);
            }
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: Entry::Free,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = entry;
        self.open += 1;
        self.timers.set_live_slots(self.open);
        Ok(SocketId::new(Transport::Tcp, index, slot.generation))
    }

    /// The fixed size in bytes of one connection in the table, part by
    /// part: its slot, its boxed entry (the engine and the table's
    /// bookkeeping) and its 4-tuple table entry, then the engine's parts
    /// ([`Connection::part_sizes`]). Heap the queues take once data flows
    /// comes on top; an idle connection has none.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::TcpSockets;
    /// let sizes = TcpSockets::<PoolBuf>::connection_sizes();
    /// assert_eq!(sizes[0].0, "slot");
    /// ```
    pub fn connection_sizes() -> Vec<(&'static str, usize)> {
        use core::mem::size_of;
        let mut sizes = vec![
            ("slot", size_of::<Slot<B>>()),
            ("boxed entry (Conn)", size_of::<Conn<B>>()),
            ("engine (Connection)", size_of::<Connection<B>>()),
            ("4-tuple table entry", size_of::<u32>()),
        ];
        sizes.extend(Connection::<B>::part_sizes());
        sizes
    }

    /// The entry of `conn` on `tuple` ([`Conn::new`]), boxed: in a closed
    /// connection's box when one is kept (the closed connection's value
    /// dropped in it), else in a new one. The entry is built in its box:
    /// the engine, a kilobyte or two, is copied once, not once into an
    /// entry and again into the box. Inlined into its two callers (one
    /// per open), so the engine is copied from where they built it.
    #[inline(always)]
    fn boxed_conn(
        &mut self,
        conn: Connection<B>,
        tuple: FourTuple,
        tuple_hash: u64,
        listener: Option<SocketId>,
        active: bool,
    ) -> Box<Conn<B>> {
        debug_assert_eq!(tuple_hash, self.tuple_hash.hash_one(tuple));
        let entry = |conn| Conn::new(conn, tuple, tuple_hash, listener, active);
        match self.spare_conns.pop() {
            Some(mut b) => {
                *b = entry(conn);
                b
            }
            // Written into the new allocation, not built beside it first.
            None => Box::write(Box::new_uninit(), entry(conn)),
        }
    }

    /// Keeps the queue storage of `conn`, which is going away, for a new
    /// connection, if there is room among the spares and it is worth it.
    fn keep_queue_storage(&mut self, conn: &mut Connection<B>) {
        if self.spare_queues.len() < SPARE_QUEUES {
            self.spare_queues.extend(conn.take_queue_storage());
        }
    }

    /// Frees slot `index`: its handle becomes invalid.
    fn free_slot(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let entry = core::mem::replace(&mut slot.entry, Entry::Free);
        slot.generation = slot.generation.wrapping_add(1);
        match entry {
            Entry::Free => return,
            Entry::Listener(l) => {
                let port = l.local().port();
                self.listeners.remove(&l.local());
                let last = !self.listeners.keys().any(|a| a.port() == port);
                if let (true, Some(host)) = (last, &self.shared_host) {
                    if let Err(e) = host.close_port(Transport::Tcp, port) {
                        tracing::warn!("tcp port {port} stays steered to tpa: {e}");
                    }
                }
            }
            Entry::Conn(mut c) => {
                if let Ok(found) = self.conns.find_entry(c.tuple_hash, |&i| i == index) {
                    found.remove();
                }
                add_retransmissions(&mut self.counters, &c.conn);
                c.conn.recycle_rack(false);
                if let Some(t) = &self.tracer {
                    t.close(index);
                }
                if c.time_wait {
                    self.time_wait_count -= 1;
                }
                self.keep_queue_storage(&mut c.conn);
                if self.spare_conns.len() < SPARE_CONNS && c.conn.holds_no_buffers() {
                    self.spare_conns.push(c);
                }
            }
        }
        self.open -= 1;
        self.timers.set_live_slots(self.open);
        self.free.push(index);
    }

    /// The handle of slot `index` as it is now.
    #[inline]
    fn id(&self, index: u32) -> SocketId {
        SocketId::new(Transport::Tcp, index, self.slots[index as usize].generation)
    }

    /// The slot index `socket` names, if current.
    #[inline]
    fn index(&self, socket: SocketId) -> Result<u32, SocketError> {
        if socket.transport != Transport::Tcp {
            return Err(SocketError::BadSocket);
        }
        match self.slots.get(socket.index as usize) {
            Some(s) if s.generation == socket.generation => Ok(socket.index),
            _ => Err(SocketError::BadSocket),
        }
    }

    #[inline]
    fn conn_entry(&mut self, index: u32) -> Option<&mut Conn<B>> {
        match &mut self.slots[index as usize].entry {
            Entry::Conn(c) => Some(c),
            _ => None,
        }
    }

    #[inline]
    fn listener_entry(&mut self, index: u32) -> Option<&mut Listener> {
        match &mut self.slots[index as usize].entry {
            Entry::Listener(l) => Some(l),
            _ => None,
        }
    }

    /// Queues slot `index` for the output path (segments, events, timer).
    #[inline]
    fn mark(&mut self, index: u32) {
        if let Some(c) = self.conn_entry(index) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// The connection on `tuple`, if any. The slot found last is tried
    /// first (one slot read and a comparison, as for a flow mark): a
    /// burst of one flow's segments, or a request-response exchange,
    /// hashes the 4-tuple once. A slot holds a connection on `tuple`
    /// exactly when the map points there (an entry leaves the map only
    /// with its slot's connection), so the shortcut finds what the map
    /// would.
    #[inline]
    pub(crate) fn find(&mut self, tuple: &FourTuple) -> Option<u32> {
        let last = self.last_found;
        if let Some(Slot {
            entry: Entry::Conn(c),
            ..
        }) = self.slots.get(last as usize)
        {
            if c.tuple == *tuple {
                return Some(last);
            }
        }
        let found = self.find_hashed(self.tuple_hash.hash_one(tuple), tuple);
        if let Some(index) = found {
            self.last_found = index;
        }
        found
    }

    /// The connection on `tuple`, whose hash is `hash`, looked up in the
    /// table.
    #[inline]
    pub(super) fn find_hashed(&self, hash: u64, tuple: &FourTuple) -> Option<u32> {
        lookup(&self.conns, &self.slots, hash, tuple)
    }

    /// Enters the connection in slot `index` (not in the table yet) in
    /// the 4-tuple table, under the hash it keeps.
    pub(super) fn insert_conn(&mut self, index: u32) {
        let slots = &self.slots;
        let Some(c) = slot_conn(slots, index) else {
            return;
        };
        debug_assert!(lookup(&self.conns, slots, c.tuple_hash, &c.tuple).is_none());
        self.conns.insert_unique(c.tuple_hash, index, |&i| {
            slot_conn(slots, i)
                .expect("a table entry's slot holds its connection")
                .tuple_hash
        });
    }

    /// The connection a flow mark names, if it is the one on `tuple`
    /// (see [`classify`](super::classify)): no hash, one slot read and a
    /// comparison.
    #[inline]
    pub(crate) fn find_marked(&self, mark: u32, tuple: &FourTuple) -> Option<u32> {
        let slot = super::classify::slot_of_mark(mark)?;
        match &self.slots.get(slot as usize)?.entry {
            Entry::Conn(c) if c.tuple == *tuple => Some(slot),
            _ => None,
        }
    }

    /// The flow mark that names connection `socket` (see
    /// [`classify`](super::classify)): a port whose device marks flows
    /// (a DPDK `rte_flow` rule on the connection's 4-tuple with this MARK
    /// id) makes its segments skip the 4-tuple lookup. Valid while the
    /// connection lives; a mark left behind afterwards is caught (the
    /// 4-tuple is compared) and costs the ordinary lookup.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle, `NotConnected` for a listener;
    /// `NoBuffers` for a slot past what a mark can name (8 million
    /// sockets).
    pub fn flow_mark(&self, socket: SocketId) -> Result<u32, SocketError> {
        let index = self.index(socket)?;
        match &self.slots[index as usize].entry {
            Entry::Conn(_) => super::classify::conn_mark(index).ok_or(SocketError::NoBuffers),
            _ => Err(SocketError::NotConnected),
        }
    }

    /// The listener for segments to `local`: the one on exactly that
    /// address, else the one on its family's unspecified address.
    #[inline]
    pub(crate) fn find_listener(&self, local: SocketAddr) -> Option<u32> {
        if let Some(&i) = self.listeners.get(&local) {
            return Some(i);
        }
        let any: IpAddr = match local.ip() {
            IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        self.listeners
            .get(&SocketAddr::new(any, local.port()))
            .copied()
    }

    /// The 4-tuple of the connection in slot `index`, if it holds one.
    #[inline]
    pub(crate) fn conn_tuple(&self, index: u32) -> Option<FourTuple> {
        match &self.slots[index as usize].entry {
            Entry::Conn(c) => Some(c.tuple),
            _ => None,
        }
    }
}

/// The slot of the connection on `tuple` (whose hash is `hash`) in
/// `conns`, the 4-tuple table of `slots`.
#[inline]
fn lookup<B: PacketBuf>(
    conns: &HashTable<u32>,
    slots: &[Slot<B>],
    hash: u64,
    tuple: &FourTuple,
) -> Option<u32> {
    conns
        .find(hash, |&i| {
            slot_conn(slots, i).is_some_and(|c| c.tuple == *tuple)
        })
        .copied()
}

/// The connection in `slots[index]`, if it holds one.
#[inline]
fn slot_conn<B: PacketBuf>(slots: &[Slot<B>], index: u32) -> Option<&Conn<B>> {
    match &slots.get(index as usize)?.entry {
        Entry::Conn(c) => Some(c),
        _ => None,
    }
}

impl<B: PacketBuf> Conn<B> {
    #[inline]
    fn new(
        conn: Connection<B>,
        tuple: FourTuple,
        tuple_hash: u64,
        listener: Option<SocketId>,
        active: bool,
    ) -> Self {
        Conn {
            conn,
            tuple,
            tuple_hash,
            listener,
            active,
            app_closed: false,
            dirty: false,
            timer_at: None,
            time_wait: false,
            announced: active,
            pending: None,
            raised_readable: false,
            raised_writable: false,
            next_confirm_ns: 0,
            path: PathV4::default(),
            path6: None,
        }
    }
}
