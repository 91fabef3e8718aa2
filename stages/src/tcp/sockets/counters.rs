//! The table's counters.

use tpa::buf::PacketBuf;

use crate::tcp::conn::Connection;

/// Adds `conn`'s retransmissions and loss probes to `counters`.
pub(super) fn add_retransmissions<B: PacketBuf>(counters: &mut TcpCounters, conn: &Connection<B>) {
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
    /// at most one per connection per [`CONFIRM_INTERVAL_NS`](super::CONFIRM_INTERVAL_NS).
    pub neighbor_confirmations: u64,
}
