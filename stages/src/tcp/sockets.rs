//! The TCP socket table: listeners and connections in slots with
//! generations, the 4-tuple and listener maps, the timer queue, the list
//! of connections with work for the output path, and the randomness of
//! the stack (ISN key, ephemeral ports, timestamp offsets), all from one
//! seed.

use crate::hash::SeededHash;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tpa::app::{Event, EventKind, SocketError, SocketId, Transport};
use tpa::buf::PacketBuf;
use tpa::port::steer::Steering;
use tpa::port::SharedHost;

use tpa::wire::tcp::TcpFlags;

use super::config::TcpConfig;
use super::conn::{
    wscale_for, ConnEvents, ConnParams, Connection, IcmpError, IcmpOutcome, QueueStorage, State,
    TcpInfo, MIN_SND_MSS,
};
use super::host_key::HostKey;
use super::isn::IsnGenerator;
use super::listen::Listener;
use super::pmtu::{mss_for_mtu, PathMtuCache};
use super::ports::PortPicker;
use super::segment::{OptionsOut, SegmentIn, SegmentOut};
use super::seq::SeqNumber;
use super::syncookie::{CookieError, CookieOptions, CookieSyn, SynCookieMode, SynCookies};
use super::timers::TimerQueue;
use super::wire::FourTuple;
use crate::egress::PathV4;
use crate::iface::Interface;
use crate::trace::{TraceConfig, Tracer};

/// Adds `conn`'s retransmissions and loss probes to `counters`.
fn add_retransmissions<B: PacketBuf>(counters: &mut TcpCounters, conn: &Connection<B>) {
    counters.retransmitted_segments += conn.retransmitted_segments();
    counters.loss_probes += conn.loss_probes();
}

/// What the table did, for `tpactl` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// Connections opened by `connect`.
    pub active_opens: u64,
    /// Connections opened by a listener's SYN.
    pub passive_opens: u64,
    /// SYNs dropped: the listener's backlog was full.
    pub backlog_drops: u64,
    /// SYNs dropped: the table was full (`max_sockets`).
    pub table_full_drops: u64,
    /// Connections that reached TIME_WAIT.
    pub time_waits: u64,
    /// TIME_WAIT connections freed early: over `time_wait_max`.
    pub time_wait_evictions: u64,
    /// TIME_WAIT connections freed for a new SYN on their 4-tuple that
    /// RFC 6191 lets open a new incarnation (timestamps, else sequence
    /// numbers, above the old connection's).
    pub time_wait_reuses: u64,
    /// Segments handed to the egress path.
    pub segments_sent: u64,
    /// Super-segments handed to the egress path with a TSO request (their
    /// segments are counted in `segments_sent` one by one).
    pub tso_frames: u64,
    /// Segments sent inside those super-segments.
    pub tso_segments: u64,
    /// Segments the egress path refused (no buffer, no route…): the
    /// connection's retransmission recovers them.
    pub send_failures: u64,
    /// Events that found the event queue full at the output path's turn
    /// (raised again later; one that did not fit right after its segment
    /// is tried again by the same iteration's output path and counted
    /// there only).
    pub events_deferred: u64,
    /// SACK blocks left off segments they would have made larger than the
    /// path's MSS.
    pub sack_blocks_dropped: u64,
    /// SYN-ACKs sent with a SYN cookie (no state kept for the SYN).
    pub syn_cookies_sent: u64,
    /// ACKs whose cookie checked: each made a connection, unless the
    /// accept queue was full (`accept_queue_drops`) or the table
    /// (`table_full_drops`).
    pub syn_cookies_validated: u64,
    /// ACKs to a listener checked as cookies and refused, whatever the
    /// reason (`syn_cookies_expired` counts one of them).
    pub syn_cookies_failed: u64,
    /// Of the refused cookies: genuine ones older than the previous
    /// counter tick.
    pub syn_cookies_expired: u64,
    /// Valid cookies' ACKs dropped: the listener's accept queue was full
    /// (the peer retransmits, and its next segment is checked again).
    pub accept_queue_drops: u64,
    /// Challenge ACKs (RFC 5961) withheld: the table's budget for the
    /// second was spent (§7, `TcpConfig::challenge_ack_limit`).
    pub challenge_acks_limited: u64,
    /// Segments sent again, by every connection the table has had: fast,
    /// SACK and timeout retransmissions and the probes that resend data
    /// (Linux's `TcpRetransSegs`).
    pub retransmitted_segments: u64,
    /// Tail loss probes sent (RFC 8985 §7), new data or a resend
    /// (Linux's `TCPLossProbes`).
    pub loss_probes: u64,
    /// Segments whose forward progress (new data acknowledged, new
    /// in-order data) confirmed the peer's neighbor to the egress path:
    /// at most one per connection per [`CONFIRM_INTERVAL_NS`].
    pub neighbor_confirmations: u64,
}

/// How often at most one connection's forward progress confirms its
/// neighbor (RFC 4861 §7.3.1, Linux's `dst_confirm`): often enough that
/// a flow making progress keeps its neighbor REACHABLE (the cache lets
/// an unconfirmed entry in use go STALE after
/// [`NeighborConfig::unconfirmed_use_ns`](crate::neighbor::NeighborConfig::unconfirmed_use_ns),
/// 5 s), seldom enough that the hash lookup it costs is not paid per
/// segment.
pub const CONFIRM_INTERVAL_NS: u64 = 1_000_000_000;

/// What [`TcpSockets::input_event`] found on a connection after a
/// segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputEvent {
    /// Nothing to raise.
    None,
    /// This one event, taken from the connection.
    One(Event),
    /// Something else: the full path raises it.
    More,
}

/// A connection's entry.
struct Conn<B: PacketBuf> {
    conn: Connection<B>,
    tuple: FourTuple,
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
    /// Events not yet raised (the event queue was full).
    pending: ConnEvents,
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
}

/// Closed connections' queue storage a table keeps for new ones: the
/// allocations a short connection's first segments would make (a send and
/// a receive queue's), reused; a few are enough for connections opened
/// and closed one after another.
const SPARE_QUEUES: usize = 16;

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

/// RFC 5961 §7's limit on challenge ACKs across all connections of a
/// table, as Linux's `tcp_challenge_ack_limit` since CVE-2016-5696: each
/// one-second window gets a budget drawn at random from [limit / 2,
/// 3 × limit / 2), so an off-path attacker cannot count the ACKs spent
/// (a fixed, shared budget told it whether its guess drew one).
#[derive(Debug, Clone)]
struct ChallengeAckBudget {
    /// The mean budget per second (0: no limit).
    limit: u32,
    /// When the current window began (None: none yet).
    window_start_ns: Option<u64>,
    /// Challenge ACKs the current window still allows.
    left: u32,
    /// Its own random stream, so the table's other draws (ports,
    /// timestamp offsets) do not depend on how many challenges came.
    rng: SplitMix,
}

impl ChallengeAckBudget {
    fn new(limit: u32, seed: u64) -> Self {
        ChallengeAckBudget {
            limit,
            window_start_ns: None,
            left: 0,
            rng: SplitMix(seed ^ 0x6368_616c_6c65_6e67),
        }
    }

    /// Takes one challenge ACK from the budget; false when it is spent.
    fn allow(&mut self, now_ns: u64) -> bool {
        if self.limit == 0 {
            return true;
        }
        let expired = self
            .window_start_ns
            .is_none_or(|start| now_ns.saturating_sub(start) >= 1_000_000_000);
        if expired {
            self.window_start_ns = Some(now_ns);
            let half = self.limit / 2;
            self.left = half + (self.rng.next() % u64::from(self.limit)) as u32;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
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
    conns: HashMap<FourTuple, u32, TupleHash>,
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
    dirty: Vec<u32>,
    /// The other dirty list's allocation, kept while the output path
    /// works through one (no allocation per iteration).
    dirty_spare: Vec<u32>,
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
            conns: HashMap::with_hasher(hash),
            listeners: HashMap::with_hasher(hash),
            isn,
            cookies,
            boot_offset_ns: 0,
            ports,
            steering: Steering::Unknown,
            timers: TimerQueue::default(),
            last_found: u32::MAX,
            dirty: Vec::new(),
            dirty_spare: Vec::new(),
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
        let boot_ms = (self.boot_offset_ns / 1_000_000) as u32;
        self.cookies.ts_offset(tuple).wrapping_add(boot_ms)
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
        Ok(SocketId::new(Transport::Tcp, index, slot.generation))
    }

    /// The fixed size in bytes of one connection in the table, part by
    /// part: its slot, its boxed entry (the engine and the table's
    /// bookkeeping) and its 4-tuple map entry, then the engine's parts
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
            ("4-tuple map entry", size_of::<(FourTuple, u32)>()),
        ];
        sizes.extend(Connection::<B>::part_sizes());
        sizes
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
                self.conns.remove(&c.tuple);
                add_retransmissions(&mut self.counters, &c.conn);
                if let Some(t) = &self.tracer {
                    t.close(index);
                }
                if c.time_wait {
                    self.time_wait_count -= 1;
                }
                self.keep_queue_storage(&mut c.conn);
            }
        }
        self.open -= 1;
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

    /// Opens a listener on `local` (an address of `iface` or the
    /// unspecified address of a family) with `backlog`, capped by the
    /// configuration's.
    ///
    /// # Errors
    ///
    /// `AddressNotAvailable` for an address not ours, `InvalidArgument` for
    /// port 0, `AddressInUse` when a listener has it, `NoBuffers` at
    /// `max_sockets`.
    pub fn listen(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        iface: &Interface,
    ) -> Result<SocketId, SocketError> {
        let ours = match local.ip() {
            IpAddr::V4(a) => a.is_unspecified() || iface.owns_ipv4(a),
            IpAddr::V6(a) => a.is_unspecified() || iface.owns_ipv6(a),
        };
        if !ours {
            return Err(SocketError::AddressNotAvailable);
        }
        if local.port() == 0 {
            return Err(SocketError::InvalidArgument);
        }
        if self.listeners.contains_key(&local) {
            return Err(SocketError::AddressInUse);
        }
        let backlog = backlog.min(self.cfg.backlog);
        let id = self.take_slot(Entry::Listener(Box::new(Listener::new(local, backlog))))?;
        self.listeners.insert(local, id.index);
        if let Some(host) = &self.shared_host {
            if let Err(e) = host.open_port(Transport::Tcp, local.port()) {
                tracing::warn!("listen tcp {local}: the port stays the kernel's: {e}");
                self.free_slot(id.index);
                return Err(SocketError::AddressNotAvailable);
            }
        }
        Ok(id)
    }

    /// Opens a connection from `local` (our address; port 0 for an
    /// ephemeral one landing on `queue`) to `remote`, with `mss` for the
    /// path, at `now_ns`. The SYN goes out at the output path's next
    /// turn.
    ///
    /// # Errors
    ///
    /// `InvalidArgument` for a remote of port 0, unspecified, a group
    /// address or of the other family; `AddressInUse` when the 4-tuple is
    /// taken; `AddressNotAvailable` when no ephemeral port is left;
    /// `NoBuffers` at `max_sockets`.
    pub fn connect(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        mss: u16,
        queue: u16,
        now_ns: u64,
    ) -> Result<SocketId, SocketError> {
        if remote.port() == 0
            || !super::wire::unicast(remote.ip())
            || local.is_ipv4() != remote.is_ipv4()
        {
            return Err(SocketError::InvalidArgument);
        }
        if !self.make_room() {
            return Err(SocketError::NoBuffers);
        }
        let port = match local.port() {
            0 => {
                let conns = &self.conns;
                let listeners = &self.listeners;
                let ip = local.ip();
                self.ports.pick(&self.steering, queue, ip, remote, |port| {
                    let l = SocketAddr::new(ip, port);
                    !conns.contains_key(&FourTuple { local: l, remote })
                        && !listeners.contains_key(&l)
                })?
            }
            p => p,
        };
        let tuple = FourTuple {
            local: SocketAddr::new(local.ip(), port),
            remote,
        };
        if self.conns.contains_key(&tuple) {
            return Err(SocketError::AddressInUse);
        }
        let params = self.params(&tuple, mss, None, now_ns);
        let mut conn = Connection::connect(&self.cfg, params, now_ns);
        self.cap_by_path_mtu(&mut conn, &tuple, now_ns);
        let id = self.take_slot(Entry::Conn(Box::new(Conn::new(conn, tuple, None, true))))?;
        self.conns.insert(tuple, id.index);
        self.attach_trace(id, now_ns);
        self.counters.active_opens += 1;
        self.mark(id.index);
        Ok(id)
    }

    /// The parameters of a new connection on `tuple`: the keyed ISN
    /// (RFC 6528), at least `iss_floor` when a TIME_WAIT connection of
    /// the 4-tuple gave way to it; the timestamp offset a keyed hash of
    /// the 4-tuple (RFC 7323 §5.4), so one 4-tuple's incarnations send
    /// rising TSvals, which a peer holding the old one in TIME_WAIT
    /// checks before it lets a new SYN in (RFC 6191).
    fn params(
        &mut self,
        tuple: &FourTuple,
        mss: u16,
        iss_floor: Option<SeqNumber>,
        now_ns: u64,
    ) -> ConnParams {
        let clock_ns = now_ns.wrapping_add(self.boot_offset_ns);
        let mut iss = self.isn.isn(clock_ns, tuple.local, tuple.remote);
        if let Some(floor) = iss_floor {
            if iss.lt(floor) {
                iss = floor;
            }
        }
        ConnParams {
            mss,
            iss,
            ts_offset: self.ts_offset(tuple),
        }
    }

    /// Caps `conn`'s MSS by the path MTU learnt for its peer, if any.
    fn cap_by_path_mtu(&self, conn: &mut Connection<B>, tuple: &FourTuple, now_ns: u64) {
        let remote = tuple.remote.ip();
        if let Some(mtu) = self.path_mtus.get(remote, now_ns) {
            conn.cap_path_mss(mss_for_mtu(mtu, remote.is_ipv6()));
        }
    }

    /// The path MTU learnt for `dst` (from ICMP, not yet expired), which
    /// new connections to it start with.
    pub fn path_mtu(&self, dst: IpAddr, now_ns: u64) -> Option<u16> {
        self.path_mtus.get(dst, now_ns)
    }

    /// Hands an ICMP error quoting sequence number `seq` to the
    /// connection in slot `index` (buffers for cutting its send queue
    /// from `alloc`); a path MTU it believes (`mtu`) is remembered for
    /// its peer.
    pub(crate) fn icmp_error(
        &mut self,
        index: u32,
        seq: SeqNumber,
        error: IcmpError,
        mtu: Option<u16>,
        alloc: &mut dyn FnMut() -> Option<B>,
        now_ns: u64,
    ) -> Option<IcmpOutcome> {
        let c = self.conn_entry(index)?;
        let remote = c.tuple.remote.ip();
        let outcome = c.conn.on_icmp_error(seq, error, alloc, now_ns);
        if let (Some(mtu), IcmpOutcome::MssLowered { .. } | IcmpOutcome::MssUnchanged) =
            (mtu, outcome)
        {
            self.path_mtus.note(remote, mtu, now_ns);
        }
        self.mark(index);
        Some(outcome)
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
        let found = self.conns.get(tuple).copied();
        if let Some(index) = found {
            self.last_found = index;
        }
        found
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

    /// Hands `seg` to the connection in slot `index`; a challenge ACK it
    /// calls for takes one from the table's budget (RFC 5961 §7) or is
    /// withheld. Returns whether the segment made forward progress that
    /// should confirm the peer's neighbor (see [`CONFIRM_INTERVAL_NS`]).
    #[inline]
    pub(crate) fn deliver(&mut self, index: u32, seg: SegmentIn<B>, now_ns: u64) -> bool {
        let Some(c) = self.conn_entry(index) else {
            return false;
        };
        let pending_before = c.conn.challenge_ack_pending();
        let progress_before = c.conn.progress();
        c.conn.on_segment(seg, now_ns);
        let confirm = c.conn.progress() != progress_before && now_ns >= c.next_confirm_ns;
        if confirm {
            c.next_confirm_ns = now_ns.saturating_add(CONFIRM_INTERVAL_NS);
        }
        let new_challenge = !pending_before && c.conn.challenge_ack_pending();
        if new_challenge && !self.challenge_acks.allow(now_ns) {
            self.counters.challenge_acks_limited += 1;
            if let Some(c) = self.conn_entry(index) {
                c.conn.withhold_challenge_ack();
            }
        }
        self.mark(index);
        if confirm {
            self.counters.neighbor_confirmations += 1;
        }
        confirm
    }

    /// Frees the connection in slot `index` for `syn` if it is in
    /// TIME_WAIT, closed by the application, and RFC 6191 lets `syn` open
    /// a new incarnation of its 4-tuple
    /// ([`Connection::time_wait_accepts_syn`]); counted in
    /// `time_wait_reuses`. Returns the least ISS for the new incarnation.
    /// A TIME_WAIT connection the application still holds stays (its
    /// handle would go stale under it): the SYN is handled as RFC 9293
    /// says.
    pub(crate) fn reuse_time_wait(&mut self, index: u32, syn: &SegmentIn<B>) -> Option<SeqNumber> {
        let c = self.conn_entry(index)?;
        if !c.time_wait || !c.app_closed || !c.conn.time_wait_accepts_syn(syn) {
            return None;
        }
        let floor = c.conn.next_incarnation_iss();
        // Its place in the TIME_WAIT queue and the timer queue goes stale
        // with the slot's generation, as an eviction's does.
        self.free_slot(index);
        self.counters.time_wait_reuses += 1;
        Some(floor)
    }

    /// A connection for the SYN `syn` on `tuple`, spawned by the listener
    /// in slot `listener`, if its backlog and the table have room; its ISS
    /// at least `iss_floor` (a TIME_WAIT connection of the 4-tuple gave
    /// way to it).
    ///
    /// # Errors
    ///
    /// [`Spawn::BacklogFull`] or [`Spawn::TableFull`], counted.
    pub(crate) fn spawn(
        &mut self,
        listener: u32,
        tuple: FourTuple,
        syn: &SegmentIn<B>,
        mss: u16,
        iss_floor: Option<SeqNumber>,
        now_ns: u64,
    ) -> Result<SocketId, Spawn> {
        if !self.make_room() {
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        }
        let listener_id = self.id(listener);
        let admitted = self.listener_entry(listener).is_some_and(|l| l.admit());
        if !admitted {
            self.counters.backlog_drops += 1;
            return Err(Spawn::BacklogFull);
        }
        let params = self.params(&tuple, mss, iss_floor, now_ns);
        let conn = Connection::accept(&self.cfg, params, syn, now_ns);
        self.insert_passive(conn, tuple, listener, listener_id, now_ns)
    }

    /// Puts `conn`, on `tuple`, in a slot of its own for the listener in
    /// slot `listener` (`listener_id`), which admitted it: its MSS capped
    /// by the path's MTU, marked, counted as a passive open.
    ///
    /// # Errors
    ///
    /// [`Spawn::TableFull`], counted, the listener's place given back.
    fn insert_passive(
        &mut self,
        mut conn: Connection<B>,
        tuple: FourTuple,
        listener: u32,
        listener_id: SocketId,
        now_ns: u64,
    ) -> Result<SocketId, Spawn> {
        self.cap_by_path_mtu(&mut conn, &tuple, now_ns);
        let entry = Conn::new(conn, tuple, Some(listener_id), false);
        let Ok(id) = self.take_slot(Entry::Conn(Box::new(entry))) else {
            // The callers made room first; give the place back all the same.
            if let Some(l) = self.listener_entry(listener) {
                l.release(listener_id);
            }
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        };
        self.conns.insert(tuple, id.index);
        self.attach_trace(id, now_ns);
        self.counters.passive_opens += 1;
        self.mark(id.index);
        Ok(id)
    }

    /// Whether a SYN to the listener in slot `listener` is answered with
    /// a cookie: always, or when its backlog is full, as the
    /// configuration says; never while connections waiting to be
    /// accepted fill the backlog (the cookie's ACK would find no room:
    /// the SYN is dropped as `backlog-full`, as Linux drops it on a full
    /// accept queue).
    pub(crate) fn wants_cookie(&mut self, listener: u32) -> bool {
        let mode = self.cfg.syn_cookies;
        let Some(l) = self.listener_entry(listener) else {
            return false;
        };
        match mode {
            _ if l.accept_queue_full() => false,
            SynCookieMode::Off => false,
            SynCookieMode::Always => true,
            SynCookieMode::OnOverflow => l.is_full(),
        }
    }

    /// The SYN-ACK answering `syn` on `tuple` with a cookie, for the
    /// listener in slot `listener`, announcing `mss`. Nothing is kept but
    /// the listener's note that cookies are out. It agrees on what
    /// [`Connection::accept`] would, except that without timestamps it
    /// offers neither window scaling nor SACK (the cookie has nowhere to
    /// carry the peer's side of them).
    pub(crate) fn cookie_syn_ack(
        &mut self,
        listener: u32,
        tuple: &FourTuple,
        syn: &SegmentIn<B>,
        mss: u16,
        now_ns: u64,
    ) -> SegmentOut<B> {
        let cfg = &self.cfg;
        let peer = &syn.options;
        let timestamps = cfg.timestamps && peer.timestamps.is_some();
        let opts = CookieOptions {
            timestamps,
            window_scale: peer
                .window_scale
                .filter(|_| timestamps && cfg.window_scale)
                .map(|s| s.min(14)),
            sack: timestamps && cfg.sack && peer.sack_permitted,
        };
        // RFC 9293 §3.7.1: 536 when the SYN names none.
        let peer_mss = peer.mss.unwrap_or(536);
        let iss = self.cookies.make(now_ns, tuple, syn.seq, peer_mss, opts);
        let ts_offset = self.ts_offset(tuple);
        let ts = peer.timestamps.filter(|_| timestamps).map(|(tsval, _)| {
            // The connection's clock (1 ms ticks plus its offset), as
            // `Connection` keeps it once made from the cookie.
            let ts_now = ((now_ns / 1_000_000) as u32).wrapping_add(ts_offset);
            (SynCookies::tsval(ts_now, opts), tsval)
        });
        let options = OptionsOut {
            mss: Some(mss.max(MIN_SND_MSS)),
            window_scale: opts
                .window_scale
                .map(|_| wscale_for(cfg.receive_queue_bytes)),
            sack_permitted: opts.sack,
            timestamps: ts,
            sack: None,
        };
        let window = cfg.receive_queue_bytes.min(usize::from(u16::MAX)) as u16;
        if let Some(l) = self.listener_entry(listener) {
            l.cookie_sent(SynCookies::counter(now_ns));
        }
        SegmentOut {
            seq: iss,
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window,
            options,
            payload: None,
        }
    }

    /// Whether an ACK to the listener in slot `listener` is checked as a
    /// cookie: cookies are on and the listener sent one recently enough
    /// to be answered (otherwise it gets the reset any stray ACK does).
    pub(crate) fn checks_cookies(&mut self, listener: u32, now_ns: u64) -> bool {
        let counter = SynCookies::counter(now_ns);
        self.cfg.syn_cookies != SynCookieMode::Off
            && self
                .listener_entry(listener)
                .is_some_and(|l| l.cookies_recent(counter))
    }

    /// Checks the ACK `seg` on `tuple` as the answer to one of our
    /// cookies; counted.
    ///
    /// # Errors
    ///
    /// Why it is not one ([`CookieError`]).
    pub(crate) fn check_cookie(
        &mut self,
        tuple: &FourTuple,
        seg: &SegmentIn<B>,
        now_ns: u64,
    ) -> Result<CookieSyn, CookieError> {
        let options = match seg.options.timestamps.filter(|_| self.cfg.timestamps) {
            // The SYN-ACK's TSval, echoed: its low bits are the options.
            Some((_, tsecr)) => CookieOptions::from_bits(tsecr as u8),
            None => Some(CookieOptions::default()),
        };
        let checked = options.ok_or(CookieError::Invalid).and_then(|o| {
            self.cookies
                .check(now_ns, tuple, seg.seq - 1, seg.ack - 1, o)
        });
        match checked {
            Ok(_) => self.counters.syn_cookies_validated += 1,
            Err(e) => {
                self.counters.syn_cookies_failed += 1;
                self.counters.syn_cookies_expired += u64::from(e == CookieError::Expired);
            }
        }
        checked
    }

    /// The connection rebuilt from a valid cookie's ACK `ack` on `tuple`
    /// ([`Connection::from_cookie`]), for the listener in slot
    /// `listener`: ESTABLISHED, it joins the accept queue when its events
    /// are raised. Returns its slot.
    ///
    /// # Errors
    ///
    /// [`Spawn::AcceptQueueOverflow`] or [`Spawn::TableFull`], counted.
    pub(crate) fn spawn_from_cookie(
        &mut self,
        listener: u32,
        tuple: FourTuple,
        cookie: &CookieSyn,
        ack: SegmentIn<B>,
        mss: u16,
        now_ns: u64,
    ) -> Result<u32, Spawn> {
        if !self.make_room() {
            self.counters.table_full_drops += 1;
            return Err(Spawn::TableFull);
        }
        let listener_id = self.id(listener);
        let admitted = self
            .listener_entry(listener)
            .is_some_and(|l| l.admit_established());
        if !admitted {
            self.counters.accept_queue_drops += 1;
            return Err(Spawn::AcceptQueueOverflow);
        }
        let params = ConnParams {
            mss,
            iss: cookie.iss,
            ts_offset: self.ts_offset(&tuple),
        };
        let conn = Connection::from_cookie(&self.cfg, params, cookie, ack, now_ns);
        let id = self.insert_passive(conn, tuple, listener, listener_id, now_ns)?;
        Ok(id.index)
    }

    /// Whether a connection waits for the output path.
    #[inline]
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The dirty list, taken (the output path works through it); marks
    /// made meanwhile go to the spare list's allocation.
    pub(crate) fn take_dirty(&mut self) -> Vec<u32> {
        let spare = core::mem::take(&mut self.dirty_spare);
        let list = core::mem::replace(&mut self.dirty, spare);
        for &i in &list {
            if let Some(c) = self.conn_entry(i) {
                c.dirty = false;
            }
        }
        list
    }

    /// Gives back a dirty list's allocation, kept as the spare.
    pub(crate) fn return_dirty(&mut self, mut list: Vec<u32>) {
        list.clear();
        if list.capacity() >= self.dirty_spare.capacity() {
            self.dirty_spare = list;
        }
    }

    /// The events list's allocation, empty; give it back with
    /// [`return_events`](Self::return_events).
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    /// Gives back the events list taken by [`take_events`](Self::take_events).
    pub(crate) fn return_events(&mut self, mut events: Vec<Event>) {
        events.clear();
        if events.capacity() >= self.events.capacity() {
            self.events = events;
        }
    }

    /// The 4-tuple of the connection in slot `index`, if it holds one.
    #[inline]
    pub(crate) fn conn_tuple(&self, index: u32) -> Option<FourTuple> {
        match &self.slots[index as usize].entry {
            Entry::Conn(c) => Some(c.tuple),
            _ => None,
        }
    }

    /// The IPv4 way out of the connection in slot `index` (built by its
    /// first segment), if the slot holds a connection.
    #[inline]
    pub(crate) fn conn_path(&mut self, index: u32) -> Option<&mut PathV4> {
        match &mut self.slots[index as usize].entry {
            Entry::Conn(c) => Some(&mut c.path),
            _ => None,
        }
    }

    /// The next segment the connection in slot `index` sends (its tuple:
    /// [`conn_tuple`](Self::conn_tuple)). When it has nothing, a chunk
    /// the peer's window ends inside is cut at the edge
    /// ([`Connection::fit_window`], buffers from `alloc`) and its first
    /// part sent.
    #[inline]
    pub(crate) fn next_segment(
        &mut self,
        index: u32,
        now_ns: u64,
        alloc: &mut dyn FnMut() -> Option<B>,
    ) -> Option<SegmentOut<B>> {
        let c = self.conn_entry(index)?;
        match c.conn.poll_transmit(now_ns) {
            Some(seg) => Some(seg),
            None if c.conn.fit_window(alloc) => c.conn.poll_transmit(now_ns),
            None => None,
        }
    }

    /// Input's events of slot `index` after a segment, as a coalescing
    /// [`raise`](Self::raise) would gather them, when they are at most
    /// one event: none when the connection holds nothing but a
    /// `Readable` or `Writable` raised already since the last settle
    /// (every segment of a burst after the first; dropped, as that
    /// `raise` would); one new `Readable` or `Writable` of an announced
    /// connection the application holds (taken, marked raised); anything
    /// else is [`InputEvent::More`], left in place for the full path.
    #[inline]
    pub(crate) fn input_event(&mut self, index: u32) -> InputEvent {
        let generation = self.slots[index as usize].generation;
        let Some(c) = self.conn_entry(index) else {
            return InputEvent::None;
        };
        let ev = c.conn.peek_events();
        // Anything but `Readable` / `Writable`, events held back, or a
        // connection the application does not see: the full way.
        let only_rw = ConnEvents {
            readable: ev.readable,
            writable: ev.writable,
            ..ConnEvents::default()
        };
        if ev != only_rw || !c.pending.is_empty() || c.app_closed || !c.announced {
            return InputEvent::More;
        }
        let readable = ev.readable && !c.raised_readable;
        let writable = ev.writable && !c.raised_writable;
        let kind = match (readable, writable) {
            (false, false) => {
                // Raised already since the last settle: still queued.
                c.conn.take_events();
                return InputEvent::None;
            }
            (true, false) => {
                c.raised_readable = true;
                EventKind::Readable
            }
            (false, true) => {
                c.raised_writable = true;
                EventKind::Writable
            }
            (true, true) => return InputEvent::More,
        };
        c.conn.take_events();
        InputEvent::One(Event {
            socket: SocketId::new(Transport::Tcp, index, generation),
            kind,
        })
    }

    /// Input's look before [`raise`](Self::raise): whether a coalescing
    /// `raise` of slot `index` has anything to do. When the connection
    /// holds nothing but a `Readable` or `Writable` raised already since
    /// the last settle, it drops them, as that `raise` would, and says no.
    #[inline]
    pub(crate) fn gather_events(&mut self, index: u32) -> bool {
        let Some(c) = self.conn_entry(index) else {
            return false;
        };
        let ev = c.conn.peek_events();
        let raised = ConnEvents {
            readable: ev.readable && c.raised_readable,
            writable: ev.writable && c.raised_writable,
            ..ConnEvents::default()
        };
        if ev == raised && c.pending.is_empty() {
            c.conn.take_events();
            return false;
        }
        true
    }

    /// Collects the events of the connection in slot `index` into `out`
    /// (none once the application closed it), and puts a passive
    /// connection whose handshake completed just now on its listener's
    /// accept queue. Input calls it right after a segment, so the
    /// application sees the segment in the same loop iteration;
    /// [`settle`](Self::settle) calls it again for what output and
    /// timers raised. Input's calls (`coalesce`) leave out a `Readable`
    /// or `Writable` input already raised since the last settle: it is
    /// still in the queue, the application not having run in between.
    #[inline]
    pub(crate) fn raise(&mut self, index: u32, out: &mut Vec<Event>, coalesce: bool) {
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let ev = c.conn.take_events();
        if ev.is_empty() && c.pending.is_empty() {
            return; // the common case after input raised them already
        }
        self.raise_events(index, ev, out, coalesce);
    }

    /// [`raise`](Self::raise) once the connection has events `ev` or
    /// some pending (out of line: most calls find none).
    #[inline(never)]
    fn raise_events(&mut self, index: u32, ev: ConnEvents, out: &mut Vec<Event>, coalesce: bool) {
        let id = self.id(index);
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let pending = &mut c.pending;
        pending.connected |= ev.connected;
        pending.readable |= ev.readable;
        pending.writable |= ev.writable;
        pending.peer_closed |= ev.peer_closed;
        pending.closed |= ev.closed;
        pending.error = pending.error.or(ev.error);
        let mut events = core::mem::take(pending);
        if coalesce {
            events.readable &= !c.raised_readable;
            events.writable &= !c.raised_writable;
            c.raised_readable |= events.readable;
            c.raised_writable |= events.writable;
        }
        let (active, listener, app_closed) = (c.active, c.listener, c.app_closed);
        if events.connected && !app_closed {
            c.announced = true;
        }
        // A half-open passive connection the application never heard of
        // (no `Accepted` yet) dies silently: its handle means nothing to
        // the application.
        let announced = c.announced;
        // The handshake completed just now (not an event raised again): a
        // passive connection joins its listener's accept queue.
        if ev.connected && !active {
            if let Some(l) = listener.and_then(|l| self.index(l).ok()) {
                if let Some(l) = self.listener_entry(l) {
                    l.established(id);
                }
            }
        }
        if !app_closed && announced {
            let mut push = |kind| out.push(Event { socket: id, kind });
            if events.connected {
                match (active, listener) {
                    (false, Some(listener)) => push(EventKind::Accepted { listener }),
                    _ => push(EventKind::Writable),
                }
            }

            if events.readable {
                push(EventKind::Readable);
            }
            if events.writable && !(events.connected && active) {
                push(EventKind::Writable);
            }
            if events.peer_closed {
                push(EventKind::PeerClosed);
            }
            if let Some(e) = events.error {
                push(EventKind::Error(e));
            }
            if events.closed {
                push(EventKind::Closed);
            }
        }
    }

    /// After the connection in slot `index` was worked on: collects its
    /// events into `out` ([`raise`](Self::raise)), keeps the accept queue
    /// and TIME_WAIT bound, re-arms its timer and frees its slot once it
    /// is CLOSED and nobody holds its handle.
    pub(crate) fn settle(&mut self, index: u32, out: &mut Vec<Event>) {
        self.raise(index, out, false);
        // The common case straight through: a connection neither closed
        // nor in TIME_WAIT, no trace to archive; its timer re-armed in
        // place.
        let TcpSockets { slots, timers, .. } = self;
        let Entry::Conn(c) = &mut slots[index as usize].entry else {
            return;
        };
        c.raised_readable = false;
        c.raised_writable = false;
        if c.conn.trace_ring().is_some_and(|r| r.archive_due)
            || matches!(c.conn.state(), State::TimeWait | State::Closed)
        {
            return self.settle_rare(index);
        }
        let Some(at) = c.conn.next_deadline() else {
            return;
        };
        if c.timer_at.is_some_and(|armed| armed <= at) {
            return;
        }
        c.timer_at = Some(at);
        timers.arm(index, at);
    }

    /// [`settle`](Self::settle) for a connection closed, in TIME_WAIT or
    /// with its trace to archive.
    #[cold]
    #[inline(never)]
    fn settle_rare(&mut self, index: u32) {
        let id = self.id(index);
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        if c.conn.take_trace_archive() {
            let now_ns = c.conn.clock_ns();
            if let Some(t) = self.tracer.as_mut() {
                t.archive(index, id.generation, now_ns);
            }
        }
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let (listener, announced) = (c.listener, c.announced);
        let closed = c.conn.is_closed() && !c.conn.wants_transmit();
        let state = c.conn.state();
        let deadline = c.conn.next_deadline();
        if state == State::TimeWait {
            self.enter_time_wait(index);
        }
        if closed {
            // Died half-open: out of the backlog. One the application was
            // told of (`Accepted`) stays in the accept queue, as Linux
            // keeps a reset child: `accept` hands it out, its calls report
            // the error, and closing it (or the listener) frees it.
            if let Some(l) = listener.filter(|_| !announced) {
                if let Ok(li) = self.index(l) {
                    if let Some(l) = self.listener_entry(li) {
                        l.release(id);
                    }
                }
                if let Some(c) = self.conn_entry(index) {
                    c.listener = None;
                    // Nobody knows its handle unless it was announced.
                    c.app_closed |= !c.announced;
                }
            }
            if self.conn_entry(index).is_some_and(|c| c.app_closed) {
                self.free_slot(index);
                return;
            }
        }
        self.rearm(index, deadline);
    }

    /// Puts `events` (taken by [`settle`](Self::settle) but not raised:
    /// the event queue was full) back on slot `index`, to be raised at
    /// its next turn. `counted` adds it to
    /// [`TcpCounters::events_deferred`].
    pub(crate) fn defer(&mut self, index: u32, kind: EventKind, counted: bool) {
        self.counters.events_deferred += u64::from(counted);
        if let Some(c) = self.conn_entry(index) {
            // Not in the queue after all: not covering a later segment's.
            match kind {
                EventKind::Readable => c.raised_readable = false,
                EventKind::Writable => c.raised_writable = false,
                _ => {}
            }
            let p = &mut c.pending;
            match kind {
                EventKind::Accepted { .. } => p.connected = true,
                EventKind::Readable => p.readable = true,
                EventKind::Writable => p.writable = true,
                EventKind::PeerClosed => p.peer_closed = true,
                EventKind::Error(e) => p.error = Some(e),
                EventKind::Closed => p.closed = true,
            }
            self.mark(index);
        }
    }

    /// Whether the table has room for one more socket, after freeing the
    /// oldest closed-by-the-application TIME_WAIT connection when it is
    /// full (counted in `time_wait_evictions`): TIME_WAIT counts against
    /// `max_sockets`, and a table full of it must not refuse new
    /// connections (Linux's TIME_WAIT buckets never do).
    fn make_room(&mut self) -> bool {
        if self.open < self.cfg.max_sockets {
            return true;
        }
        let evictable = |slots: &[Slot<B>], (i, generation): (u32, u32)| {
            let slot = &slots[i as usize];
            slot.generation == generation
                && matches!(&slot.entry, Entry::Conn(c) if c.time_wait && c.app_closed)
        };
        let Some(at) = self
            .time_wait
            .iter()
            .position(|&e| evictable(&self.slots, e))
        else {
            return false;
        };
        let (i, _) = self.time_wait.remove(at).expect("a position in the queue");
        self.counters.time_wait_evictions += 1;
        self.free_slot(i);
        true
    }

    /// Counts slot `index` into TIME_WAIT (once) and frees the oldest
    /// closed-by-the-application TIME_WAIT connections over the bound.
    fn enter_time_wait(&mut self, index: u32) {
        let id = self.id(index);
        let room = self.spare_queues.len() < SPARE_QUEUES;
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        if c.time_wait {
            return;
        }
        c.time_wait = true;
        // Nothing is queued in TIME_WAIT: the storage can serve a new
        // connection now rather than at the end of the wait.
        let storage = room.then(|| c.conn.take_queue_storage()).flatten();
        self.spare_queues.extend(storage);
        self.time_wait_count += 1;
        self.counters.time_waits += 1;
        self.time_wait.push_back((index, id.generation));
        while self.time_wait_count > self.cfg.time_wait_max {
            let Some((i, generation)) = self.time_wait.pop_front() else {
                break;
            };
            if i == index || self.slots[i as usize].generation != generation {
                continue;
            }
            let evict = self
                .conn_entry(i)
                .is_some_and(|c| c.time_wait && c.app_closed);
            if evict {
                self.counters.time_wait_evictions += 1;
                self.free_slot(i);
            }
        }
        // Entries of freed slots are dropped as they reach the front.
        while let Some(&(i, generation)) = self.time_wait.front() {
            if self.slots[i as usize].generation == generation {
                break;
            }
            self.time_wait.pop_front();
        }
    }

    /// Arms slot `index`'s timer for `deadline` unless its live entry
    /// comes up no later: a deadline that moved later (the RTO restarted
    /// by an ACK, a timer stopped) keeps the earlier entry, which
    /// [`fire_due`](Self::fire_due) re-arms when it comes up, so most
    /// segments push nothing on the queue.
    fn rearm(&mut self, index: u32, deadline: Option<u64>) {
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let Some(at) = deadline else {
            return;
        };
        if c.timer_at.is_some_and(|armed| armed <= at) {
            return;
        }
        c.timer_at = Some(at);
        self.timers.arm(index, at);
    }

    /// When a connection's timer is next due (possibly early: see
    /// [`TimerQueue`]).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next_deadline()
    }

    /// Runs the timers of the connections due at `now_ns`; returns how
    /// many ran. Each runs once per call even if it re-arms in the past.
    #[inline]
    pub(crate) fn fire_due(&mut self, now_ns: u64) -> usize {
        // The check inline, the work out of line: nothing is due on
        // nearly every loop iteration.
        let due = self.timers.next_deadline().is_some_and(|at| at <= now_ns);
        if !due && !self.timers.wants_compact(self.open) {
            return 0;
        }
        self.run_due(now_ns)
    }

    #[inline(never)]
    fn run_due(&mut self, now_ns: u64) -> usize {
        let mut fired = 0;
        while let Some((at, index)) = self.timers.pop_due(now_ns) {
            let Some(c) = self.conn_entry(index) else {
                continue;
            };
            if c.timer_at != Some(at) {
                continue; // a stale entry
            }
            c.timer_at = None;
            match c.conn.next_deadline() {
                Some(due) if due <= now_ns => {
                    c.conn.on_timer(now_ns);
                    fired += 1;
                    self.mark(index);
                }
                // Armed early (the deadline moved later since) or no
                // timer left: re-arm for the one it has now.
                later => self.rearm(index, later),
            }
        }
        let slots = &self.slots;
        self.timers
            .compact(self.open, |at, i| match &slots[i as usize].entry {
                Entry::Conn(c) => c.timer_at == Some(at),
                _ => false,
            });
        fired
    }

    /// The connection `socket` names, for an application call: taken out
    /// of its listener's accept queue if it was waiting there, and queued
    /// for the output path.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle, a listener's, or one the
    /// application closed.
    #[inline]
    pub(crate) fn conn_mut(&mut self, socket: SocketId) -> Result<&mut Connection<B>, SocketError> {
        // The common call, straight through: a live handle on a
        // connection already accepted, already dirty or with room in the
        // dirty list. Everything else (a stale handle, the first call
        // after accept, the dirty list's growth) is `conn_mut_rare`, out
        // of line, with the same outcome.
        let i = socket.index as usize;
        let common = socket.transport == Transport::Tcp
            && matches!(self.slots.get(i), Some(Slot {
                generation,
                entry: Entry::Conn(c),
            }) if *generation == socket.generation
                && !c.app_closed
                && c.listener.is_none()
                && (c.dirty || self.dirty.len() < self.dirty.capacity()));
        if !common {
            return self.conn_mut_rare(socket);
        }
        let TcpSockets { slots, dirty, .. } = self;
        match &mut slots[i].entry {
            Entry::Conn(c) => {
                if !c.dirty {
                    c.dirty = true;
                    dirty.push(socket.index);
                }
                Ok(&mut c.conn)
            }
            // Checked above: a connection.
            _ => Err(SocketError::BadSocket),
        }
    }

    /// [`conn_mut`](Self::conn_mut) for every call but the common one.
    #[cold]
    #[inline(never)]
    fn conn_mut_rare(&mut self, socket: SocketId) -> Result<&mut Connection<B>, SocketError> {
        let index = self.index(socket)?;
        if matches!(&self.slots[index as usize].entry,
            Entry::Conn(c) if !c.app_closed && c.listener.is_some())
        {
            self.leave_accept_queue_first(index, socket);
        }
        // The slot looked up once more, marked for output in place.
        let TcpSockets { slots, dirty, .. } = self;
        match &mut slots[index as usize].entry {
            Entry::Conn(c) if !c.app_closed => {
                if !c.dirty {
                    c.dirty = true;
                    dirty.push(index);
                }
                Ok(&mut c.conn)
            }
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The first application call on an accepted connection: it leaves
    /// its listener's accept queue.
    #[cold]
    fn leave_accept_queue_first(&mut self, index: u32, socket: SocketId) {
        if let Some(l) = self.conn_entry(index).and_then(|c| c.listener.take()) {
            self.leave_accept_queue(l, socket);
        }
    }

    /// Takes `socket` out of the accept queue of `listener`, if both are
    /// current (the first application call on an accepted connection).
    #[inline(never)]
    fn leave_accept_queue(&mut self, listener: SocketId, socket: SocketId) {
        if let Ok(l) = self.index(listener) {
            if let Some(l) = self.listener_entry(l) {
                l.release(socket);
            }
        }
    }

    /// The connection `socket` names, to read.
    fn conn(&self, socket: SocketId) -> Result<&Conn<B>, SocketError> {
        let index = self.index(socket)?;
        match &self.slots[index as usize].entry {
            Entry::Conn(c) if !c.app_closed => Ok(c),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// The oldest connection waiting on `listener`, and its peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when none waits; `BadSocket` when `listener` is not a
    /// listener's handle; `InvalidArgument` for a connection's.
    pub fn accept(&mut self, listener: SocketId) -> Result<(SocketId, SocketAddr), SocketError> {
        let index = self.index(listener)?;
        let l = match &mut self.slots[index as usize].entry {
            Entry::Listener(l) => l,
            Entry::Conn(_) => return Err(SocketError::InvalidArgument),
            Entry::Free => return Err(SocketError::BadSocket),
        };
        let socket = l.pop().ok_or(SocketError::WouldBlock)?;
        let ci = self.index(socket)?;
        let c = self.conn_entry(ci).ok_or(SocketError::BadSocket)?;
        c.listener = None;
        Ok((socket, c.tuple.remote))
    }

    /// Closes `socket`. A listener stops at once: the connections waiting
    /// in its accept queue or half-open are reset (as Linux does). A
    /// connection sends its FIN after its queued data (or a reset when
    /// received data is left unread) and finishes closing in the
    /// background; its handle is invalid from now on.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle.
    pub fn close(&mut self, socket: SocketId) -> Result<(), SocketError> {
        let index = self.index(socket)?;
        match &mut self.slots[index as usize].entry {
            Entry::Free => Err(SocketError::BadSocket),
            Entry::Listener(_) => {
                self.close_listener(index, socket);
                Ok(())
            }
            Entry::Conn(c) if c.app_closed => Err(SocketError::BadSocket),
            Entry::Conn(_) => {
                self.conn_mut(socket)?.close();
                if let Some(c) = self.conn_entry(index) {
                    c.app_closed = true;
                }
                Ok(())
            }
        }
    }

    /// Resets `socket` now (RST to the peer) and frees its handle.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn abort(&mut self, socket: SocketId) -> Result<(), SocketError> {
        self.conn_mut(socket)?.abort();
        let index = socket.index;
        if let Some(c) = self.conn_entry(index) {
            c.app_closed = true;
        }
        Ok(())
    }

    fn close_listener(&mut self, index: u32, socket: SocketId) {
        // Half-open and waiting connections of this listener: reset.
        let children: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.entry {
                Entry::Conn(c) if c.listener == Some(socket) => Some(i as u32),
                _ => None,
            })
            .collect();
        if let Some(l) = self.listener_entry(index) {
            l.drain().for_each(drop);
        }
        for i in children {
            if let Some(c) = self.conn_entry(i) {
                c.listener = None;
                c.app_closed = true;
                c.conn.abort();
            }
            self.mark(i);
        }
        self.free_slot(index);
    }

    /// A snapshot of `socket`'s connection.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn info(&self, socket: SocketId) -> Result<TcpInfo, SocketError> {
        self.conn(socket).map(|c| c.conn.info())
    }

    /// `socket`'s two ends.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn tuple(&self, socket: SocketId) -> Result<FourTuple, SocketError> {
        self.conn(socket).map(|c| c.tuple)
    }

    /// The address a listener listens on.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a connection's.
    pub fn listener_addr(&self, socket: SocketId) -> Result<SocketAddr, SocketError> {
        let index = self.index(socket)?;
        match &self.slots[index as usize].entry {
            Entry::Listener(l) => Ok(l.local()),
            _ => Err(SocketError::BadSocket),
        }
    }

    /// `socket`'s state.
    ///
    /// # Errors
    ///
    /// `BadSocket` for a stale handle or a listener's.
    pub fn state(&self, socket: SocketId) -> Result<State, SocketError> {
        self.conn(socket).map(|c| c.conn.state())
    }

    /// Every open socket's handle and its state (`Listen` for a
    /// listener), closed-by-the-application connections included.
    pub fn iter(&self) -> impl Iterator<Item = (SocketId, State)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let id = SocketId::new(Transport::Tcp, i as u32, s.generation);
            match &s.entry {
                Entry::Free => None,
                Entry::Listener(_) => Some((id, State::Listen)),
                Entry::Conn(c) => Some((id, c.conn.state())),
            }
        })
    }
}

/// Why a listener's SYN made no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spawn {
    /// The listener's backlog is full.
    BacklogFull,
    /// The table is at `max_sockets`.
    TableFull,
    /// A valid cookie's ACK found the listener's accept queue full.
    AcceptQueueOverflow,
}

impl<B: PacketBuf> Conn<B> {
    fn new(
        conn: Connection<B>,
        tuple: FourTuple,
        listener: Option<SocketId>,
        active: bool,
    ) -> Self {
        Conn {
            conn,
            tuple,
            listener,
            active,
            app_closed: false,
            dirty: false,
            timer_at: None,
            time_wait: false,
            announced: active,
            pending: ConnEvents::default(),
            raised_readable: false,
            raised_writable: false,
            next_confirm_ns: 0,
            path: PathV4::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::PoolBuf;

    fn tuple() -> FourTuple {
        FourTuple {
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:5201".parse().unwrap(),
        }
    }

    #[test]
    fn the_lookup_never_takes_a_reused_slot_for_its_old_tuple() {
        let mut table: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), 3);
        let first = tuple();
        let a = table
            .connect(first.local, first.remote, 1460, 0, 0)
            .unwrap();
        assert_eq!(table.find(&first), Some(a.index));
        // Aborted, its RST sent and its slot freed: the slot found last
        // goes to the next connection, on another tuple.
        table.abort(a).unwrap();
        while table.next_segment(a.index, 0, &mut || None).is_some() {}
        table.settle(a.index, &mut Vec::new());
        assert_eq!(table.find(&first), None);
        let second = FourTuple {
            local: "10.0.0.1:40001".parse().unwrap(),
            ..first
        };
        let b = table
            .connect(second.local, second.remote, 1460, 0, 0)
            .unwrap();
        assert_eq!(b.index, a.index, "the slot is reused");
        assert_eq!(table.find(&first), None, "the old tuple is not found there");
        assert_eq!(table.find(&second), Some(b.index));
        // A third connection in another slot: found by the map, then by
        // the slot found last, and the second still by the map.
        let third = FourTuple {
            local: "10.0.0.1:40002".parse().unwrap(),
            ..first
        };
        let c = table
            .connect(third.local, third.remote, 1460, 0, 0)
            .unwrap();
        assert_ne!(c.index, b.index);
        assert_eq!(table.find(&third), Some(c.index));
        assert_eq!(table.find(&third), Some(c.index));
        assert_eq!(table.find(&second), Some(b.index));
    }

    /// The ISN and timestamp offset a table built from `seed` (and `key`,
    /// if any) gives `tuple()` at pipeline time `now_ns`.
    fn numbers(seed: u64, key: Option<&HostKey>, now_ns: u64) -> (SeqNumber, u32) {
        let mut table: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), seed);
        if let Some(key) = key {
            table = table.with_host_key(key);
        }
        let params = table.params(&tuple(), 1460, None, now_ns);
        (params.iss, params.ts_offset)
    }

    #[test]
    fn one_host_key_gives_one_isn_and_ts_offset_whatever_the_seed() {
        let key = HostKey::from_secret([3; 32], 0);
        let other = HostKey::from_secret([4; 32], 0);
        for seed in [1, 2, 0xdead_beef] {
            assert_eq!(numbers(seed, Some(&key), 0), numbers(99, Some(&key), 0));
            let (isn, ts) = numbers(seed, Some(&key), 0);
            let (other_isn, other_ts) = numbers(seed, Some(&other), 0);
            assert_ne!(isn, other_isn, "seed {seed}");
            assert_ne!(ts, other_ts, "seed {seed}");
        }
        // Without a host key the seed keys them, as the simulation needs.
        assert_eq!(numbers(1, None, 0), numbers(1, None, 0));
        assert_ne!(numbers(1, None, 0), numbers(2, None, 0));
    }

    #[test]
    fn a_later_process_goes_on_from_the_boot_clock() {
        // Process A's pipeline clock started at boot + 1 s; B's at boot +
        // 9 s. At the same boot time (10 s) both give the same numbers.
        let secret = [5; 32];
        let a = HostKey::from_secret(secret, 1_000_000_000);
        let b = HostKey::from_secret(secret, 9_000_000_000);
        let (isn_a, ts_a) = numbers(1, Some(&a), 9_000_000_000);
        let (isn_b, ts_b) = numbers(2, Some(&b), 1_000_000_000);
        assert_eq!(isn_a, isn_b);
        // The connection's TSval is pipeline milliseconds plus the offset.
        assert_eq!(ts_a.wrapping_add(9_000), ts_b.wrapping_add(1_000));
        // A second later on the boot clock, B's numbers are above A's.
        let (isn_later, _) = numbers(2, Some(&b), 2_000_000_000);
        assert_eq!(isn_later.wrapping_sub(isn_a), 250_000);
    }
}
