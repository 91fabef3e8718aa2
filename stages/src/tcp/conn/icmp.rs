//! ICMP errors about our segments (RFC 5927): the stage found the
//! connection by the quoted 4-tuple; here the quoted sequence number is
//! checked and the error applied.
//!
//! - A smaller path MTU ("fragmentation needed", RFC 1191; "packet too
//!   big", RFC 8201) lowers the path's MSS; when that lowers the MSS we
//!   send with, the send queue is cut to the new size and everything in
//!   flight goes again at once, with no congestion response (the loss
//!   was the path's, not congestion: Linux's `tcp_simple_retransmit`).
//! - A hard error (port or protocol unreachable, administratively
//!   prohibited) ends a connection still in its handshake; later it is
//!   only remembered, as a soft error is (RFC 5927 §4, RFC 1122
//!   §4.2.3.9): a timeout reports it instead of `TimedOut`.

use tpa::app::SocketError;
use tpa::buf::PacketBuf;

use super::super::seq::SeqNumber;
use super::open::MIN_SND_MSS;
use super::timers::Deadline;
use super::{Connection, State};

/// An ICMP error about a segment of ours, as the stage decoded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// The path carries segments of at most `mss` bytes of TCP options
    /// and payload (the reported MTU less the headers, floored by the
    /// stage at 536 for IPv4, 1220 for IPv6).
    PacketTooBig {
        /// The path's MSS.
        mss: u16,
    },
    /// An error that ends a connection in its handshake (Linux's "fatal"
    /// codes: port and protocol unreachable, administratively
    /// prohibited…), soft afterwards.
    Hard(SocketError),
    /// An error only remembered: reported if the connection times out
    /// (net or host unreachable, time exceeded…).
    Soft(SocketError),
}

/// What [`Connection::on_icmp_error`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpOutcome {
    /// The quoted sequence number is not in SND.UNA..SND.MAX (or the
    /// connection is already closed): not about a segment in flight
    /// (stale or forged, RFC 5927 §4.1), ignored.
    OutOfWindow,
    /// The MSS we send with fell (or an earlier cut that ran out of
    /// buffers was retried): `split` chunks of the send queue were cut,
    /// `starved` when buffers ran out before all were (the rest go whole,
    /// draw the next ICMP error, and that one retries).
    MssLowered {
        /// Chunks cut to the new MSS.
        split: usize,
        /// Buffers ran out before every long chunk was cut.
        starved: bool,
    },
    /// No lower than the MSS we send with: nothing changed.
    MssUnchanged,
    /// A hard error in the handshake: the connection is closed with it.
    Aborted,
    /// Kept as the soft error.
    Soft,
}

impl<B: PacketBuf> Connection<B> {
    /// Applies an ICMP error whose quoted TCP header carried sequence
    /// number `seq`; cuts the send queue with buffers from `alloc` when
    /// the MSS falls. Drain [`poll_transmit`](Connection::poll_transmit)
    /// afterwards.
    ///
    /// ```
    /// use tpa::app::SocketError;
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, IcmpError, IcmpOutcome, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// conn.poll_transmit(0).unwrap(); // the SYN, seq 1
    /// let refused = IcmpError::Hard(SocketError::ConnectionRefused);
    /// assert_eq!(conn.on_icmp_error(SeqNumber::new(2), refused, &mut || None, 5), IcmpOutcome::OutOfWindow);
    /// assert_eq!(conn.on_icmp_error(SeqNumber::new(1), refused, &mut || None, 5), IcmpOutcome::Aborted);
    /// assert_eq!(conn.state(), State::Closed);
    /// ```
    pub fn on_icmp_error(
        &mut self,
        seq: SeqNumber,
        error: IcmpError,
        alloc: &mut dyn FnMut() -> Option<B>,
        now_ns: u64,
    ) -> IcmpOutcome {
        self.clock_ns = self.clock_ns.max(now_ns);
        // RFC 5927 §4.1: SND.UNA <= SEG.SEQ < SND.NXT, with SND.NXT the
        // highest sent (a segment sent before a rewind is still in flight).
        let in_flight = self.state != State::Closed && seq.ge(self.snd_una) && seq.lt(self.snd_max);
        if !in_flight {
            self.stats.icmp_out_of_window += 1;
            return IcmpOutcome::OutOfWindow;
        }
        match error {
            IcmpError::PacketTooBig { mss } => self.lower_path_mss(mss, alloc),
            IcmpError::Hard(e) if matches!(self.state, State::SynSent | State::SynReceived) => {
                self.enter_closed(Some(e));
                self.trace_changes(now_ns);
                IcmpOutcome::Aborted
            }
            IcmpError::Hard(e) | IcmpError::Soft(e) => {
                self.soft_error = Some(e);
                IcmpOutcome::Soft
            }
        }
    }

    /// Caps the path's MSS at `mss` (the socket table's path MTU cache
    /// knows the destination's): a new connection's before its first
    /// segment, so the handshake agrees on no more.
    pub fn cap_path_mss(&mut self, mss: u16) {
        let mss = mss.max(MIN_SND_MSS);
        self.neg.path_mss = self.neg.path_mss.min(mss);
        self.neg.snd_mss = self.neg.snd_mss.min(mss);
        self.neg.refresh_payload_max();
    }

    /// RFC 1191 §6.3 / RFC 8201 §4: a lower path MTU is believed at once,
    /// a higher one never (only a timeout of the estimate raises it).
    fn lower_path_mss(&mut self, mss: u16, alloc: &mut dyn FnMut() -> Option<B>) -> IcmpOutcome {
        let mss = mss.max(MIN_SND_MSS);
        let lowered = mss < self.neg.snd_mss;
        self.neg.path_mss = self.neg.path_mss.min(mss);
        // A report no lower than what we send with changes nothing,
        // unless an earlier cut ran out of buffers: then it is retried.
        if !lowered && !self.send_queue.oversized() {
            return IcmpOutcome::MssUnchanged;
        }
        if lowered {
            self.neg.snd_mss = mss;
            self.neg.refresh_payload_max();
            self.stats.pmtu_reductions += 1;
        }
        if !self.state.is_synchronized() {
            // A SYN is never too big; data waits for the handshake.
            return IcmpOutcome::MssLowered {
                split: 0,
                starved: false,
            };
        }
        let (split, starved) = match self.send_queue.resegment(self.neg.payload_max(), alloc) {
            Ok(n) => (n, false),
            Err(n) => (n, true),
        };
        // A partly acknowledged chunk cut in pieces: the pieces below
        // SND.UNA go.
        self.send_queue.ack(self.snd_una.min(self.send_queue.end()));
        // tcp_simple_retransmit: the segments in flight were too big and
        // are lost; resend from SND.UNA in the new size, cwnd untouched.
        self.sack_on_rto(false);
        self.recovery = None;
        self.dup_acks = 0;
        self.rtt_timed = None;
        self.pending.retransmit_front = false;
        if !self.fin_acked {
            self.fin_sent = false;
        }
        // The resend starts a fresh timer (RFC 6298 §5.3, as Linux's
        // retransmission of the head does): the old one ran for segments
        // the router dropped, and would fire before the resend's ACKs.
        if self.timers.rto.is_running() {
            self.timers.rto = Deadline::at(self.clock_ns + self.rto.rto_ns());
        }
        IcmpOutcome::MssLowered { split, starved }
    }
}
