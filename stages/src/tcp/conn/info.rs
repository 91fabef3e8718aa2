//! A TCP_INFO-like snapshot of one connection.

use super::latency::SocketLatency;
use super::state::State;
use crate::tcp::seq::SeqNumber;

/// What a connection knows about itself, as Linux's `TCP_INFO` reports it.
/// Times are nanoseconds, sizes bytes.
///
/// ```
/// use tpa_stages::tcp::conn::{State, TcpInfo};
/// let info = TcpInfo::default();
/// assert_eq!(info.state, State::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// The state.
    pub state: State,
    /// Smoothed RTT (0 before the first sample).
    pub rtt_ns: u64,
    /// RTT variation.
    pub rttvar_ns: u64,
    /// The current retransmission timeout.
    pub rto_ns: u64,
    /// Congestion window.
    pub cwnd: u32,
    /// Slow-start threshold.
    pub ssthresh: u32,
    /// The effective MSS: the payload of a full segment we send (the
    /// peer's MSS capped by ours, less the 12 bytes of timestamps when
    /// they are on; 1448 on a 1500-byte MTU, as Linux's `tcpi_snd_mss`).
    pub snd_mss: u16,
    /// The MSS the path carries, options included (the MSS we announced
    /// until an ICMP "fragmentation needed" or "packet too big" lowered
    /// it; `snd_mss` is at most this less the timestamps).
    pub path_mss: u16,
    /// The MSS we announced.
    pub rcv_mss: u16,
    /// The peer's window scale shift (0 when off).
    pub snd_wscale: u8,
    /// Our window scale shift (0 when off).
    pub rcv_wscale: u8,
    /// Timestamps negotiated.
    pub timestamps: bool,
    /// SACK negotiated.
    pub sack: bool,
    /// The peer's current window, scaled.
    pub snd_wnd: u32,
    /// The window we advertise, scaled.
    pub rcv_wnd: u32,
    /// Bytes sent and not yet acknowledged.
    pub bytes_in_flight: u32,
    /// Retransmissions of the segment at SND.UNA since its last progress.
    pub retransmits: u32,
    /// Every retransmitted segment.
    pub total_retrans: u64,
    /// Timeouts since the last valid RTT sample (RTO backoffs).
    pub backoffs: u32,
    /// Fast retransmits (three duplicate ACKs).
    pub fast_retransmits: u64,
    /// Retransmissions chosen by SACK recovery (RFC 6675 NextSeg).
    pub sack_retransmits: u64,
    /// Fast recoveries undone because every retransmission came back
    /// D-SACKed (RFC 3708; Linux's `TCPDSACKUndo`).
    pub spurious_recoveries: u64,
    /// Retransmission timeouts undone because the retransmission proved
    /// needless (F-RTO, RFC 5682, or Eifel, RFC 3522; Linux's
    /// `TCPSpuriousRTOs`).
    pub spurious_rtos: u64,
    /// Times cwnd was cut for going unused: a restart after idle (RFC
    /// 5681 §4.1) or an application-limited period (RFC 7661 §4.4).
    pub cwnd_unused_reductions: u64,
    /// Segments presumed lost (retransmitted by timeout or fast retransmit).
    pub lost: u64,
    /// Bytes of ours the peer acknowledged.
    pub bytes_acked: u64,
    /// In-order payload bytes received.
    pub bytes_received: u64,
    /// Segments received (every one handed to the connection).
    pub segs_in: u64,
    /// Segments of those that took the header-prediction fast path
    /// (in-order data or a new ACK on an ESTABLISHED connection with no
    /// loss recovery under way; Linux's `TCPHPHits` and `TCPHPAcks`).
    pub segs_predicted: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Data segments sent (retransmissions included).
    pub data_segs_out: u64,
    /// Data segments received.
    pub data_segs_in: u64,
    /// Duplicate ACKs received.
    pub dup_acks_in: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Answers to out-of-window segments and challenge ACKs skipped by
    /// the rate limit (RFC 5961 §7).
    pub acks_rate_limited: u64,
    /// Segments dropped as unacceptable or old (PAWS, out of window).
    pub dropped: u64,
    /// Out-of-order data segments (dropped or queued).
    pub out_of_order: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// Keepalive probes sent.
    pub keepalive_probes: u64,
    /// Times an ICMP "fragmentation needed" / "packet too big" lowered
    /// the MSS we send with.
    pub pmtu_reductions: u64,
    /// ICMP errors ignored: their quoted sequence number was not in
    /// flight (RFC 5927 §4.1).
    pub icmp_out_of_window: u64,

    /// Tail loss probes sent (RFC 8985 §7.3).
    pub tlp_probes: u64,
    /// Losses a tail loss probe repaired (RFC 8985 §7.4: its ACK went
    /// beyond the probe without a D-SACK).
    pub tlp_recoveries: u64,
    /// Segments RACK marked lost by time (RFC 8985 §6.2).
    pub rack_losses: u64,
    /// Bytes in the send queue (unacknowledged and unsent).
    pub send_queue_bytes: usize,
    /// Bytes received in order and not yet read.
    pub receive_queue_bytes: usize,
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub snd_una: SeqNumber,
    /// SND.NXT: where the next transmission starts (behind SND.MAX after
    /// a rewind).
    pub snd_nxt: SeqNumber,
    /// The highest sequence number sent, plus one.
    pub snd_max: SeqNumber,
    /// RCV.NXT: the next sequence number expected (0 before the peer's
    /// SYN).
    pub rcv_nxt: SeqNumber,
    /// The read and write latency stages (`TcpConfig::measure_latency`;
    /// all zero when it is off).
    pub latency: SocketLatency,
}

impl Default for TcpInfo {
    fn default() -> Self {
        TcpInfo {
            state: State::Closed,
            rtt_ns: 0,
            rttvar_ns: 0,
            rto_ns: 0,
            cwnd: 0,
            ssthresh: 0,
            snd_mss: 0,
            path_mss: 0,
            rcv_mss: 0,
            snd_wscale: 0,
            rcv_wscale: 0,
            timestamps: false,
            sack: false,
            snd_wnd: 0,
            rcv_wnd: 0,
            bytes_in_flight: 0,
            retransmits: 0,
            total_retrans: 0,
            backoffs: 0,
            fast_retransmits: 0,
            sack_retransmits: 0,
            spurious_recoveries: 0,
            spurious_rtos: 0,
            cwnd_unused_reductions: 0,
            lost: 0,
            bytes_acked: 0,
            bytes_received: 0,
            segs_in: 0,
            segs_predicted: 0,
            segs_out: 0,
            data_segs_out: 0,
            data_segs_in: 0,
            dup_acks_in: 0,
            challenge_acks: 0,
            acks_rate_limited: 0,
            dropped: 0,
            out_of_order: 0,
            window_probes: 0,
            keepalive_probes: 0,
            pmtu_reductions: 0,
            icmp_out_of_window: 0,

            tlp_probes: 0,
            tlp_recoveries: 0,
            rack_losses: 0,
            send_queue_bytes: 0,
            receive_queue_bytes: 0,
            snd_una: SeqNumber::new(0),
            snd_nxt: SeqNumber::new(0),
            snd_max: SeqNumber::new(0),
            rcv_nxt: SeqNumber::new(0),
            latency: SocketLatency::default(),
        }
    }
}

/// The counters a connection keeps for [`TcpInfo`] (the rest of the
/// snapshot is read from the connection's state when it is taken), so a
/// connection carries its counters rather than a whole snapshot. A new
/// counter of [`TcpInfo`] the engine keeps goes here too, with its line in
/// [`fill`](Self::fill).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub total_retrans: u64,
    pub fast_retransmits: u64,
    pub sack_retransmits: u64,
    pub spurious_recoveries: u64,
    pub spurious_rtos: u64,
    pub cwnd_unused_reductions: u64,
    pub lost: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_in: u64,
    pub segs_predicted: u64,
    pub segs_out: u64,
    pub data_segs_out: u64,
    pub data_segs_in: u64,
    pub dup_acks_in: u64,
    pub challenge_acks: u64,
    pub acks_rate_limited: u64,
    pub dropped: u64,
    pub out_of_order: u64,
    pub window_probes: u64,
    pub keepalive_probes: u64,
    pub pmtu_reductions: u64,
    pub icmp_out_of_window: u64,
}

impl Counters {
    /// Copies the counters into `info`.
    pub fn fill(&self, info: &mut TcpInfo) {
        info.total_retrans = self.total_retrans;
        info.fast_retransmits = self.fast_retransmits;
        info.sack_retransmits = self.sack_retransmits;
        info.spurious_recoveries = self.spurious_recoveries;
        info.spurious_rtos = self.spurious_rtos;
        info.cwnd_unused_reductions = self.cwnd_unused_reductions;
        info.lost = self.lost;
        info.bytes_acked = self.bytes_acked;
        info.bytes_received = self.bytes_received;
        info.segs_in = self.segs_in;
        info.segs_predicted = self.segs_predicted;
        info.segs_out = self.segs_out;
        info.data_segs_out = self.data_segs_out;
        info.data_segs_in = self.data_segs_in;
        info.dup_acks_in = self.dup_acks_in;
        info.challenge_acks = self.challenge_acks;
        info.acks_rate_limited = self.acks_rate_limited;
        info.dropped = self.dropped;
        info.out_of_order = self.out_of_order;
        info.window_probes = self.window_probes;
        info.keepalive_probes = self.keepalive_probes;
        info.pmtu_reductions = self.pmtu_reductions;
        info.icmp_out_of_window = self.icmp_out_of_window;
    }
}
