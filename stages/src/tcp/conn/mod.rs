//! The TCP connection engine (RFC 9293), sans-IO: segments in, segments
//! out, timers by deadline, the application's calls. No addresses, no
//! wire bytes, no clock of its own: the stages pass everything in.
//!
//! - [`State`]: the states of RFC 9293 §3.3.2.
//! - `open`: the handshakes (RFC 9293 §3.5) and option negotiation.
//! - `input`: "segment arrives" (RFC 9293 §3.10.7) in the RFC's order of
//!   checks, with RFC 5961's and RFC 7323's additions.
//! - `output`: what `poll_transmit` sends next.
//! - `predict`: header prediction, the input fast path for the common
//!   segment of an ESTABLISHED connection (in-order data, a new ACK).
//! - `recovery`: SACK-based loss recovery (RFC 6675) through `tcp::sack`.
//! - `frto`: spurious timeouts detected (F-RTO, Eifel) and undone.
//! - `cwv`: congestion window validation (RFC 7661), restart after idle.
//! - `rack`: loss detection by time and tail loss probes (RACK-TLP, RFC
//!   8985), feeding the recovery.
//! - `timers`: retransmission, delayed ACK, persist, keepalive, TIME_WAIT.
//! - `app`: the application's calls (send, recv, close...).
//! - `icmp`: ICMP errors about our segments (RFC 5927): path MTU
//!   (RFC 1191, RFC 8201), hard and soft errors.
//! - `send_queue`, `receive_queue`: the data held each way.
//! - [`ConnEvents`], [`TcpInfo`]: what the application learns.
//!
//! The stage that drives a connection drains `poll_transmit` after every
//! input, application call and timer, re-arms its timer from
//! `next_deadline`, and frees the connection once `is_closed()` and
//! `!wants_transmit()` (a final RST may still be waiting).

mod app;
mod cwv;
mod dsack;
mod events;
mod frto;
mod icmp;
mod info;
mod input;
mod latency;
mod open;
mod output;
mod plain;
mod predict;
mod rack;
mod receive_queue;
mod recovery;
mod send_queue;
pub mod state;
mod storage;
mod timers;
mod trace;

#[cfg(test)]
mod tests;

pub use events::ConnEvents;
pub use icmp::{IcmpError, IcmpOutcome};
pub use info::TcpInfo;
pub use latency::{LatencyStage, SocketLatency};
pub(crate) use open::{wscale_for, MIN_SND_MSS};
pub(crate) use output::{Quiet, QuietPass};
pub use state::State;

use tpa::app::SocketError;
use tpa::buf::PacketBuf;

use super::cc::{Cc, CongestionControl};
use super::reassembly::ReassemblyQueue;
use super::rto::RtoEstimator;
use super::sack::SackScoreboard;
use super::seq::SeqNumber;
use super::wire::SegmentShape;

use receive_queue::ReceiveQueue;
use send_queue::SendQueue;
pub(crate) use storage::QueueStorage;
use timers::Deadline;

/// What the socket table picks for a new connection.
///
/// ```
/// use tpa_stages::tcp::conn::ConnParams;
/// use tpa_stages::tcp::seq::SeqNumber;
/// let p = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
/// assert_eq!(p.mss, 1460);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnParams {
    /// Our MSS, from the path MTU (what we announce and the most we send).
    pub mss: u16,
    /// Our initial sequence number (RFC 6528, from the table's generator).
    pub iss: SeqNumber,
    /// Added to our millisecond clock to make TSval (RFC 7323 §5.4: a
    /// random offset per connection).
    pub ts_offset: u32,
}

/// The knobs a connection reads after it is built (a copy: the table's
/// config may change for new connections).
#[derive(Debug, Clone, Copy)]
struct Knobs {
    nodelay: bool,
    delayed_ack: bool,
    delayed_ack_ns: u64,
    syn_retries: u32,
    data_retries: u32,
    keepalive: bool,
    keepalive_idle_ns: u64,
    keepalive_interval_ns: u64,
    keepalive_probes: u32,
    time_wait_ns: u64,
    rto_max_ns: u64,
    max_cwnd: u32,
    /// The initial window in segments (RFC 6928: 10).
    initial_cwnd_segments: u32,
    /// Spurious timeouts detected and undone (`TcpConfig::frto`).
    frto: bool,
    /// RFC 7661's growth rule and application-limited decay.
    cwnd_validation: bool,
    /// RFC 5681 §4.1's restart after idle.
    slow_start_after_idle: bool,
    /// RACK-TLP (RFC 8985) on SACK connections.
    rack: bool,
    /// The input fast path (`predict`); off only in tests that prove it
    /// equal to the full path.
    header_prediction: bool,
}

/// What was agreed in the handshake (RFC 9293 §3.7.1, RFC 7323, RFC 2018).
#[derive(Debug, Clone, Copy)]
struct Negotiated {
    /// The MSS we announced.
    our_mss: u16,
    /// The MSS we send with: the peer's, capped by ours and the path's.
    snd_mss: u16,
    /// The MSS the path carries: ours until an ICMP "fragmentation
    /// needed" or "packet too big" (or the table's path MTU cache) says
    /// less; never raised.
    path_mss: u16,
    /// Shift applied to the peer's windows (0: scaling off).
    snd_wscale: u8,
    /// Shift applied to our windows.
    rcv_wscale: u8,
    /// The shift we offer in our SYN (None: not offered).
    offer_wscale: Option<u8>,
    /// Whether we offer timestamps, SACK.
    offer_ts: bool,
    offer_sack: bool,
    /// Timestamps on every segment.
    ts: bool,
    /// SACK permitted both ways.
    sack: bool,
    /// RACK-TLP runs: configured (`Knobs::rack`) and SACK agreed.
    rack: bool,
    /// [`payload_max`](Self::payload_max) and
    /// [`rcv_payload_max`](Self::rcv_payload_max), taken again by
    /// [`refresh_payload_max`](Self::refresh_payload_max) whenever an MSS
    /// or `ts` changes.
    snd_payload: u16,
    rcv_payload: u16,
    /// The widest window we can announce: 65535 scaled by `rcv_wscale`.
    /// This and `rcv_wnd_step` are taken again by
    /// [`refresh_window_limits`](Self::refresh_window_limits) whenever
    /// `ts` or `rcv_wscale` changes (`our_mss` and the receive buffer are
    /// fixed for the connection's life).
    rcv_wnd_max: u32,
    /// How far the announced window's right edge must move at least
    /// (receiver SWS avoidance): min(half the buffer, one full segment),
    /// at least 1.
    rcv_wnd_step: u32,
}

impl Negotiated {
    /// Payload bytes per segment: the MSS less the timestamp option
    /// (RFC 9293 §3.7.1: the MSS counts no options; Linux sends 1448 with
    /// timestamps on a 1460 MSS).
    #[inline]
    fn payload_max(&self) -> usize {
        #[cfg(any(test, debug_assertions))]
        assert_eq!(
            self.snd_payload,
            self.snd_mss - if self.ts { 12 } else { 0 }
        );
        usize::from(self.snd_payload)
    }

    /// What a full-sized segment from the peer carries.
    #[inline]
    fn rcv_payload_max(&self) -> usize {
        #[cfg(any(test, debug_assertions))]
        assert_eq!(
            self.rcv_payload,
            self.our_mss - if self.ts { 12 } else { 0 }
        );
        usize::from(self.rcv_payload)
    }

    /// Takes both payload sizes again, after `snd_mss`, `our_mss` or
    /// `ts` changed.
    fn refresh_payload_max(&mut self) {
        let options = if self.ts { 12 } else { 0 };
        self.snd_payload = self.snd_mss - options;
        self.rcv_payload = self.our_mss - options;
    }

    /// Takes the announced window's limits again for a receive buffer of
    /// `rcv_buffer` bytes, after `rcv_wscale` or the payload sizes
    /// ([`refresh_payload_max`](Self::refresh_payload_max)) changed.
    fn refresh_window_limits(&mut self, rcv_buffer: usize) {
        self.rcv_wnd_max = u32::from(u16::MAX) << self.rcv_wscale;
        self.rcv_wnd_step = (rcv_buffer as u32 / 2)
            .min(u32::from(self.rcv_payload))
            .max(1);
    }
}

/// The timers, each a deadline (stopped: not running).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    /// Retransmission (RFC 6298 §5), SYN and SYN-ACK included.
    rto: Deadline,
    /// Delayed ACK (RFC 9293 §3.8.6.3).
    delayed_ack: Deadline,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    persist: Deadline,
    /// Keepalive (RFC 9293 §3.8.4).
    keepalive: Deadline,
    /// TIME_WAIT's 2 MSL, or an orphaned FIN_WAIT_2's limit.
    linger: Deadline,
}

/// What must go out besides data.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// Our SYN (or SYN-ACK) is to be (re)sent.
    syn: bool,
    /// An ACK is due now.
    ack_now: bool,
    /// A challenge ACK is due (RFC 5961): an ACK the socket table may
    /// still withhold under its stack-wide limit (§7).
    challenge: bool,
    /// Duplicate ACKs owed, one per out-of-order segment (RFC 5681 §4.2).
    dup_acks: u8,
    /// The oldest unacknowledged chunk (or FIN) is to be retransmitted now
    /// (fast retransmit, partial ACK).
    retransmit_front: bool,
    /// A zero-window probe is due.
    window_probe: bool,
    /// A keepalive probe is due.
    keepalive_probe: bool,
    /// A reset `(SEQ, ACK)`: with ACK set when `ACK` is `Some`.
    rst: Option<(SeqNumber, Option<SeqNumber>)>,
}

/// One TCP connection.
pub struct Connection<B: PacketBuf> {
    state: State,
    knobs: Knobs,
    neg: Negotiated,
    ts_offset: u32,
    /// The peer's last in-window TSval (RFC 7323 §4.3) and when it came.
    ts_recent: u32,
    ts_recent_ns: u64,
    /// The right edge of the window our last ACK announced ... its ACK.
    last_ack_sent: SeqNumber,

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNumber,
    snd_una: SeqNumber,
    /// The highest sequence number sent, plus one.
    snd_max: SeqNumber,
    /// The end of the furthest window probe: its data may be acknowledged
    /// beyond SND.MAX.
    probe_end: SeqNumber,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    send_queue: SendQueue<B>,
    /// The application shut the sending side: a FIN follows the data.
    fin_requested: bool,
    /// The FIN went out since the last rewind.
    fin_sent: bool,
    /// Our FIN was acknowledged.
    fin_acked: bool,

    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    /// RCV.NXT + RCV.WND as last announced: never moves left.
    rcv_adv: SeqNumber,
    receive_queue: ReceiveQueue<B>,
    /// Data that arrived ahead of RCV.NXT.
    reassembly: ReassemblyQueue<B>,
    /// Where a FIN that arrived out of order sits.
    ooo_fin: Option<SeqNumber>,
    /// Duplicate ranges, each to report first in an ACK of its own (RFC
    /// 2883).
    dsacks: dsack::DsackQueue,
    /// In-order bytes received and not yet acknowledged.
    unacked_bytes: usize,

    // Loss recovery and timing.
    /// The SACK scoreboard, made on the first SACK block received.
    sack: Option<Box<SackScoreboard>>,
    /// PRR and undo state, made at the first recovery (boxed: an idle
    /// connection pays a pointer).
    recovery: Option<Box<recovery::RecoveryState>>,
    /// Spurious-timeout detection, from a timeout until SND.UNA passes
    /// the flight it covered (boxed, as `recovery`).
    frto: Option<Box<frto::Frto>>,
    /// How much of cwnd is used (RFC 7661).
    cwv: cwv::Cwv,
    /// RACK-TLP's state (RFC 8985), made at the first transmission when
    /// RACK runs.
    rack: Option<Box<rack::Rack>>,
    rto: RtoEstimator,
    cc: Cc,
    dup_acks: u32,
    /// Timeouts in a row (SYN or data) without progress.
    retries: u32,
    /// One segment timed for an RTT sample without timestamps: its end
    /// and when it went out (Karn: cleared by any retransmission).
    rtt_timed: Option<(SeqNumber, u64)>,
    persist_backoff: u32,
    /// Window probes sent since the peer last answered: over
    /// `data_retries` the peer is gone (Linux's `tcp_retries2` for probes).
    probes_unanswered: u32,
    keepalive_sent: u32,
    timers: Timers,
    pending: Pending,
    /// Nothing rare under way (`conn::plain`): false whenever a
    /// scoreboard, recovery, F-RTO, probe, out-of-order FIN or data, or a
    /// timeout is.
    plain: bool,
    /// Header prediction's connection-side conditions (besides
    /// ESTABLISHED) in one byte: the shape of header it predicts
    /// (`conn::predict`), timestamped when they are agreed, if prediction
    /// is allowed, plain and no FIN of ours is asked for; else `NONE`.
    /// Exact at every change of the fields it comes from (asserted under
    /// test/debug).
    predict_shape: SegmentShape,
    /// Something rare may be owed on the output side (`conn::output`'s
    /// [`quiet`](Self::quiet)): false only while no reset, duplicate ACK,
    /// front retransmission, window or keepalive probe, D-SACK report,
    /// trace or due loss probe is; set wherever one starts, cleared only
    /// by looking.
    output_rare: bool,

    // The application's side.
    events: ConnEvents,
    /// The socket's sticky error.
    error: Option<SocketError>,
    /// The last soft ICMP error (RFC 5927, Linux's `sk_err_soft`): what a
    /// timeout reports instead of `TimedOut`; cleared by progress.
    soft_error: Option<SocketError>,
    /// The application called close(): nothing more is read.
    app_closed: bool,
    /// A write was refused for lack of room: say Writable when room opens.
    write_blocked: bool,
    /// Reached ESTABLISHED at some point.
    was_established: bool,
    /// Opened by `connect` (not `accept`).
    active_open: bool,
    /// When the last answer to an out-of-window segment went out.
    last_oow_ack_ns: Option<u64>,
    stats: info::Counters,
    /// The latest time passed in (for the calls that take none).
    clock_ns: u64,
    /// The latency stages, when `TcpConfig::measure_latency` is on.
    latency: Option<Box<SocketLatency>>,
    /// The socket trace's ring (None: tracing off), boxed so an untraced
    /// connection pays a pointer.
    trace: Option<Box<crate::trace::ring::Ring>>,
}

impl<B: PacketBuf> Connection<B> {
    /// The state.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert_eq!(conn.state(), State::SynSent);
    /// ```
    pub fn state(&self) -> State {
        self.state
    }

    /// SND.UNA and RCV.NXT, which only move forward: a segment after which
    /// either differs made forward progress (the peer acknowledged new
    /// data, or sent new in-order data), what confirms that its neighbor
    /// is reachable (RFC 4861 §7.3.1).
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(7), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert_eq!(conn.progress().0, SeqNumber::new(7));
    /// ```
    #[inline]
    pub fn progress(&self) -> (SeqNumber, SeqNumber) {
        (self.snd_una, self.rcv_nxt)
    }

    /// Whether the connection is CLOSED: once `wants_transmit()` is false
    /// too, the table may free its slot.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// conn.abort();
    /// assert!(conn.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The events since the last call, cleared.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert!(conn.take_events().is_empty());
    /// ```
    pub fn take_events(&mut self) -> ConnEvents {
        core::mem::take(&mut self.events)
    }

    /// The events [`take_events`](Self::take_events) would return, left
    /// in place.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert!(conn.peek_events().is_empty());
    /// ```
    #[inline]
    pub fn peek_events(&self) -> ConnEvents {
        self.events
    }

    /// A TCP_INFO-like snapshot.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// let info = conn.info();
    /// assert_eq!((info.state, info.rcv_mss), (State::SynSent, 1460));
    /// ```
    pub fn info(&self) -> TcpInfo {
        let mut info = TcpInfo {
            state: self.state,
            rtt_ns: self.rto.srtt_ns().unwrap_or(0),
            rttvar_ns: self.rto.rttvar_ns(),
            rto_ns: self.rto.rto_ns(),
            cwnd: self.cwnd(),
            ssthresh: self.cc.ssthresh(),
            snd_mss: self.neg.payload_max() as u16,
            path_mss: self.neg.path_mss,
            rcv_mss: self.neg.our_mss,
            snd_wscale: self.neg.snd_wscale,
            rcv_wscale: self.neg.rcv_wscale,
            timestamps: self.neg.ts,
            sack: self.neg.sack,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv.wrapping_sub(self.rcv_nxt),
            bytes_in_flight: self.flight(),
            retransmits: self.retries,
            backoffs: self.rto.backoffs(),
            send_queue_bytes: self.send_queue.bytes(),
            receive_queue_bytes: self.receive_queue.bytes(),
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt(),
            snd_max: self.snd_max,
            rcv_nxt: self.rcv_nxt,
            latency: self.latency(),
            ..TcpInfo::default()
        };
        self.stats.fill(&mut info);
        if let Some(r) = self.rack.as_deref() {
            info.tlp_probes = r.stats.tlp_probes;
            info.tlp_recoveries = r.stats.tlp_recoveries;
            info.rack_losses = r.stats.rack_losses;
        }
        info
    }

    /// Segments sent again so far (TcpInfo's `total_retrans`), without
    /// taking a whole snapshot.
    pub(crate) fn retransmitted_segments(&self) -> u64 {
        self.stats.total_retrans
    }

    /// Tail loss probes sent so far (TcpInfo's `tlp_probes`).
    pub(crate) fn loss_probes(&self) -> u64 {
        self.rack.as_deref().map_or(0, |r| r.stats.tlp_probes)
    }

    /// The size in bytes of the connection's larger parts (the rest is
    /// sequence numbers, flags and counters), for the memory report:
    /// what an idle connection costs before any buffer is queued.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::Connection;
    /// let parts = Connection::<PoolBuf>::part_sizes();
    /// assert!(parts.iter().all(|&(_, n)| n < core::mem::size_of::<Connection<PoolBuf>>()));
    /// ```
    pub fn part_sizes() -> Vec<(&'static str, usize)> {
        use core::mem::size_of;
        vec![
            ("send queue", size_of::<SendQueue<B>>()),
            ("receive queue", size_of::<ReceiveQueue<B>>()),
            ("reassembly queue", size_of::<ReassemblyQueue<B>>()),
            ("RTO estimator", size_of::<RtoEstimator>()),
            ("congestion control", size_of::<Cc>()),
            ("counters", size_of::<info::Counters>()),
            ("window validation", size_of::<cwv::Cwv>()),
            ("timers", size_of::<Timers>()),
            ("pending", size_of::<Pending>()),
            ("D-SACK reports owed", size_of::<dsack::DsackQueue>()),
            ("knobs", size_of::<Knobs>()),
            ("negotiated", size_of::<Negotiated>()),
            ("events", size_of::<ConnEvents>()),
            (
                "trace ring handle (boxed)",
                size_of::<crate::trace::ring::Ring>(),
            ),
        ]
    }

    /// The congestion window, capped by the configured ceiling: during
    /// SACK recovery, the one PRR allows (RFC 6937).
    fn cwnd(&self) -> u32 {
        let cwnd = match self.recovery.as_deref().and_then(|r| r.prr) {
            Some(prr) if self.in_sack_recovery() => prr.cwnd(),
            _ => self.cc.cwnd(),
        };
        cwnd.min(self.knobs.max_cwnd)
    }

    /// Bytes sent and not acknowledged, as far as what is sent next goes:
    /// from SND.UNA to where the next transmission starts.
    fn flight(&self) -> u32 {
        let nxt = self.snd_nxt();
        if nxt.gt(self.snd_una) {
            nxt.wrapping_sub(self.snd_una)
        } else {
            0
        }
    }

    /// SND.NXT: where the next transmission starts.
    fn snd_nxt(&self) -> SeqNumber {
        if !self.state.is_synchronized() {
            return self.snd_max;
        }
        if self.send_queue.all_sent() {
            self.send_queue.end() + u32::from(self.fin_sent)
        } else {
            self.send_queue.next_seq()
        }
    }

    /// The timestamp clock: 1 ms ticks plus the connection's offset (RFC
    /// 7323 §5.4 allows 1 ms to 1 s per tick).
    fn ts_now(&self, now_ns: u64) -> u32 {
        ((now_ns / 1_000_000) as u32).wrapping_add(self.ts_offset)
    }

    /// Enters CLOSED with `error` (if any), dropping both queues' data.
    fn enter_closed(&mut self, error: Option<SocketError>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.send_queue.clear();
        self.reassembly.clear();
        self.sack = None;
        self.recovery = None;
        self.frto = None;
        if let Some(r) = self.rack.as_deref_mut() {
            // Its timers stop; its counters stay for `info()`.
            r.reo_deadline = Deadline::STOPPED;
            r.pto_deadline = Deadline::STOPPED;
            r.probe_due = false;
            r.probe = None;
        }
        if let Some(e) = error {
            self.receive_queue.clear();
            self.error = error;
            self.events.set_error(e);
        }
        self.timers = Timers::default();
        self.dsacks.clear();
        let rst = self.pending.rst.take();
        self.pending = Pending {
            rst,
            ..Pending::default()
        };
        self.events.set_closed();
    }

    /// Gives up after unanswered retransmissions or probes: the last soft
    /// error if one came (Linux's `tcp_write_err`: EHOSTUNREACH rather
    /// than ETIMEDOUT when a router said so), else `TimedOut`.
    fn timed_out(&mut self) {
        let error = self.soft_error.take().unwrap_or(SocketError::TimedOut);
        self.enter_closed(Some(error));
    }
}
