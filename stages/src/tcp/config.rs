//! The TCP knobs: one value per stack, read by every connection.
//!
//! Defaults follow Linux where libtpa follows Linux. [`TcpConfig::load`]
//! reads the `[tcp]` table of a TOML config file, applies `TPA_TCP_*`
//! environment overrides and validates every value, naming the key at fault;
//! doc/guide/tcp-config.md lists every key. The pieces:
//!
//! - [`units`]: durations (`"200ms"`), sizes (`"512KiB"`), port ranges.
//! - `file`: the `[tcp]` table's layout and its mapping to [`TcpConfig`].
//! - [`env`](mod@env): the `TPA_TCP_*` overrides.
//! - `validate`: the ranges and the rules between keys.
//! - `load`: the steps from text to a checked config.
//! - [`ConfigError`]: what is wrong, and which key.

use serde::{Deserialize, Serialize};

use super::cc::{Cc, CcLimits};

pub mod env;
mod error;
mod file;
mod load;
pub(crate) mod nearest;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use super::syncookie::SynCookieMode;
pub use error::{ConfigError, ConfigErrorKind};

/// The largest window RFC 7323 §2.3 can announce: 65535 << 14.
pub const MAX_WINDOW_BYTES: u64 = 65_535 << 14;
/// Linux's `TCP_MIN_MSS`: the smallest MSS worth sending with.
pub const MIN_MSS: u64 = 88;
/// The largest MSS over IPv4: 65535 − 20 (IP) − 20 (TCP).
pub const MAX_MSS: u64 = 65_495;

#[doc = include_str!("../../../doc/guide/tcp-config.md")]
#[cfg(doctest)]
pub struct GuideTcpConfig;

/// Which congestion controller new connections use; `"newreno"` or
/// `"cubic"` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CongestionAlgorithm {
    /// NewReno (RFC 5681, RFC 6582).
    NewReno,
    /// CUBIC (RFC 9438), Linux's default.
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    /// Its name as the config file spells it.
    ///
    /// ```
    /// use tpa_stages::tcp::config::CongestionAlgorithm;
    /// assert_eq!(CongestionAlgorithm::NewReno.name(), "newreno");
    /// assert_eq!(CongestionAlgorithm::Cubic.name(), "cubic");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "newreno",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }

    /// A fresh controller of this kind for a connection with `mss`.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::CongestionControl;
    /// use tpa_stages::tcp::config::CongestionAlgorithm;
    /// assert_eq!(CongestionAlgorithm::NewReno.controller(1000).cwnd(), 10_000);
    /// ```
    pub fn controller(self, mss: u32) -> Cc {
        self.controller_with(CcLimits::rfc6928(mss))
    }

    /// A fresh controller of this kind starting from and bounded by
    /// `limits` (see [`TcpConfig::cc_limits`]).
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{CcLimits, CongestionControl};
    /// use tpa_stages::tcp::config::CongestionAlgorithm;
    /// let cc = CongestionAlgorithm::Cubic.controller_with(CcLimits::new(1000, 4, 1 << 20));
    /// assert_eq!(cc.cwnd(), 4000);
    /// ```
    pub fn controller_with(self, limits: CcLimits) -> Cc {
        match self {
            CongestionAlgorithm::NewReno => Cc::newreno_with(limits),
            CongestionAlgorithm::Cubic => Cc::cubic_with(limits),
        }
    }
}

/// Every TCP knob. Times are nanoseconds; sizes bytes.
///
/// Build it with [`TcpConfig::load`] (a config file's `[tcp]` table and the
/// `TPA_TCP_*` variables, validated) or in code; a value built in code is
/// checked by [`TcpConfig::validate`]. doc/guide/tcp-config.md names each
/// field's key.
///
/// ```
/// use tpa_stages::tcp::config::TcpConfig;
/// let cfg = TcpConfig::default();
/// assert!(cfg.timestamps && cfg.sack && cfg.window_scale);
/// assert_eq!(cfg.rto_min_ns, 200_000_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Sockets (listening, connected, TIME_WAIT) open at once, at most.
    pub max_sockets: usize,
    /// Bytes a connection's send queue holds (sent-unacknowledged plus
    /// not yet sent) before writes are refused with `WouldBlock`.
    pub send_queue_bytes: usize,
    /// Bytes a connection's receive queue holds (in order, unread, plus out
    /// of order): the most window it advertises.
    pub receive_queue_bytes: usize,
    /// Out-of-order segments a connection holds, at most (0: out-of-order
    /// data is dropped and a duplicate ACK sent).
    pub ooo_max_segments: usize,
    /// Buffers all of a worker's out-of-order queues hold together, at
    /// most; over it a new out-of-order segment is dropped, counted, so
    /// reordering on many connections cannot drain the pool (libtpa's
    /// `drop_ooo_threshold`). 0: no worker-wide bound.
    pub ooo_worker_max_buffers: usize,
    /// Connections waiting in a listener's accept queue (and half-open
    /// ones), at most: the backlog's upper bound.
    pub backlog: usize,
    /// The MSS we announce and send with, before the path's MTU caps it
    /// (0: from the interface's MTU).
    pub mss: u16,
    /// Send and accept window scaling (RFC 7323 §2).
    pub window_scale: bool,
    /// Send and accept timestamps (RFC 7323 §3), and PAWS with them.
    pub timestamps: bool,
    /// Send and accept SACK (RFC 2018).
    pub sack: bool,
    /// Drop segments whose timestamp is older than the last one accepted
    /// (PAWS, RFC 7323 §5); acts only on connections with timestamps.
    pub paws: bool,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_cwnd_segments: u32,
    /// The congestion window's ceiling, bytes.
    pub max_cwnd_bytes: u32,
    /// New connections' congestion controller.
    pub congestion: CongestionAlgorithm,
    /// Lowest retransmission timeout (Linux 200 ms).
    pub rto_min_ns: u64,
    /// Highest retransmission timeout (Linux 120 s).
    pub rto_max_ns: u64,
    /// Retransmission timeout before any RTT sample (RFC 6298: 1 s).
    pub rto_initial_ns: u64,
    /// SYN (or SYN-ACK) retransmissions before the open fails with
    /// `TimedOut` (Linux `tcp_syn_retries`: 6).
    pub syn_retries: u32,
    /// Data retransmissions before the connection fails with `TimedOut`
    /// (Linux `tcp_retries2`: 15).
    pub data_retries: u32,
    /// Delay ACKs (RFC 9293 §3.8.6.3).
    pub delayed_ack: bool,
    /// Longest an ACK is delayed (Linux 40 ms minimum; RFC 9293: < 0.5 s).
    pub delayed_ack_ns: u64,
    /// Send keepalive probes on idle connections (RFC 9293 §3.8.4).
    pub keepalive: bool,
    /// Idle time before the first probe (Linux 7200 s).
    pub keepalive_idle_ns: u64,
    /// Time between probes (Linux 75 s).
    pub keepalive_interval_ns: u64,
    /// Unanswered probes before the connection fails (Linux 9).
    pub keepalive_probes: u32,
    /// How long a connection stays in TIME_WAIT (2 MSL; Linux 60 s).
    pub time_wait_ns: u64,
    /// Connections in TIME_WAIT at once, at most; over it the oldest is
    /// closed early (Linux `tcp_max_tw_buckets`).
    pub time_wait_max: usize,
    /// Segment large writes through the port's TSO when it has it.
    pub tso: bool,
    /// The first local port of active opens (inclusive).
    pub port_first: u16,
    /// The last local port of active opens (inclusive).
    pub port_last: u16,
    /// Disable Nagle's algorithm (RFC 9293 §3.7.4): send small segments at
    /// once, as `TCP_NODELAY`. On by default, as latency-minded stacks do.
    pub nodelay: bool,
    /// The largest chunk a copying `send` puts in the send queue (libtpa's
    /// `write_chunk_size`); a chunk is also at most one MSS (one segment),
    /// so this bites only when it is the smaller.
    pub write_chunk_bytes: usize,
    /// Buffers chained into one packet at most: a TSO segment built from
    /// several send chunks, or a merged receive (libtpa's `pkt_max_chain`;
    /// NICs limit the segments of one TX descriptor chain).
    pub max_chain_buffers: u32,
    /// Merge back-to-back in-order segments of one receive burst into one
    /// buffer chain before they reach the receive queue (libtpa's
    /// `rx_merge`): fewer, larger reads.
    pub rx_merge: bool,
    /// When listeners answer SYNs with cookies (Linux `tcp_syncookies`):
    /// `on_overflow` (default), `always` or `off`.
    pub syn_cookies: SynCookieMode,
    /// Record per-socket read and write latencies (submit, transmit,
    /// acknowledged) for the socket info and the trace (libtpa's
    /// `measure_latency`); costs a clock read per operation.
    pub measure_latency: bool,
    /// Detect timeouts whose retransmission was needless and undo them:
    /// F-RTO (RFC 5682 §3, SACK-enhanced, as Linux's `tcp_frto = 2`) and,
    /// with timestamps, Eifel detection (RFC 3522).
    pub frto: bool,
    /// Congestion window validation (RFC 7661): cwnd grows only while the
    /// sender uses at least half of it, and a window left unused for a
    /// retransmission timeout decays (Linux `tcp_cwnd_validate`).
    pub cwnd_validation: bool,
    /// After an idle period longer than the retransmission timeout, cwnd
    /// restarts from at most the initial window (RFC 5681 §4.1, RFC 7661
    /// §4.4; Linux `tcp_slow_start_after_idle`).
    pub slow_start_after_idle: bool,
    /// Challenge ACKs (RFC 5961 §7) all connections of a worker's socket
    /// table send per second, at most, randomized each second to hide
    /// the count (Linux `tcp_challenge_ack_limit`); 0: no table-wide
    /// limit (each connection's own limit still holds).
    pub challenge_ack_limit: u32,
    /// Detect losses by time with RACK and probe tail losses with TLP
    /// (RFC 8985; Linux's `tcp_recovery = 1`, its default) on connections
    /// that negotiated SACK; off: RFC 6675's three duplicate ACKs alone.
    pub rack: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_sockets: 65536,
            send_queue_bytes: 512 * 1024,
            receive_queue_bytes: 512 * 1024,
            ooo_max_segments: 256,
            ooo_worker_max_buffers: 0,
            backlog: 1024,
            mss: 0,
            window_scale: true,
            timestamps: true,
            sack: true,
            paws: true,
            initial_cwnd_segments: 10,
            max_cwnd_bytes: 64 * 1024 * 1024,
            congestion: CongestionAlgorithm::Cubic,
            rto_min_ns: 200_000_000,
            rto_max_ns: 120_000_000_000,
            rto_initial_ns: 1_000_000_000,
            syn_retries: 6,
            data_retries: 15,
            delayed_ack: true,
            delayed_ack_ns: 40_000_000,
            keepalive: false,
            keepalive_idle_ns: 7200 * 1_000_000_000,
            keepalive_interval_ns: 75 * 1_000_000_000,
            keepalive_probes: 9,
            time_wait_ns: 60_000_000_000,
            time_wait_max: 262_144,
            tso: true,
            port_first: 32768,
            port_last: 60999,
            nodelay: true,
            write_chunk_bytes: 16 * 1024,
            max_chain_buffers: 45,
            rx_merge: true,
            measure_latency: false,
            syn_cookies: SynCookieMode::OnOverflow,
            frto: true,
            cwnd_validation: true,
            slow_start_after_idle: true,
            challenge_ack_limit: 1000,
            rack: true,
        }
    }
}

impl TcpConfig {
    /// The congestion window's start (`initial_cwnd_segments`) and
    /// ceiling (`max_cwnd_bytes`) for segments of `mss` bytes.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// let cfg = TcpConfig { initial_cwnd_segments: 4, ..TcpConfig::default() };
    /// assert_eq!(cfg.cc_limits(1000).initial_cwnd, 4000);
    /// ```
    pub fn cc_limits(&self, mss: u32) -> CcLimits {
        CcLimits::new(mss, self.initial_cwnd_segments, self.max_cwnd_bytes)
    }

    /// The retransmission timer's settings.
    ///
    /// ```
    /// use tpa_stages::tcp::config::TcpConfig;
    /// assert_eq!(TcpConfig::default().rto().initial_ns, 1_000_000_000);
    /// ```
    pub fn rto(&self) -> super::rto::RtoConfig {
        super::rto::RtoConfig {
            min_ns: self.rto_min_ns,
            max_ns: self.rto_max_ns,
            initial_ns: self.rto_initial_ns,
            ..super::rto::RtoConfig::default()
        }
    }
}
