//! "Segment arrives" (RFC 9293 §3.10.7) for every state but SYN_SENT,
//! in the RFC's order: PAWS (RFC 7323 §5.3), sequence acceptability,
//! RST (RFC 5961 §3), SYN (RFC 5961 §4), ACK (RFC 5961 §5), text, FIN.

use tpa::app::SocketError;
use tpa::buf::PacketBuf;
use tpa::wire::tcp::TcpFlags;

use super::super::cc::{AckOutcome, CongestionControl, Prior};
use super::super::reassembly::Insert;
use super::super::rto::RttSample;
use super::super::segment::SegmentIn;
use super::super::seq::{SeqNumber, SeqRange};
use super::super::wire::CheckedHeader;
use super::frto::AckSeen;
use super::predict::SegmentHeader;
use super::timers::Deadline;
use super::{Connection, State};
use crate::chained::{trim_back as trim_back_chained, trim_front as trim_front_chained};

/// Duplicate ACKs that trigger a fast retransmit (RFC 5681 §3.2).
const DUP_ACK_THRESHOLD: u32 = 3;

/// Duplicate ACKs owed at once, at most (a burst of out-of-order
/// segments needs only a few to trigger the sender's fast retransmit).
const MAX_DUP_ACKS_OWED: u8 = 8;

/// The least time between two answers to out-of-window segments or
/// challenge ACKs of one connection (Linux `tcp_invalid_ratelimit`:
/// 500 ms; RFC 5961 §7 asks for a limit and leaves the value open).
const OOW_ACK_INTERVAL_NS: u64 = 500_000_000;

/// How long a peer's timestamp stays valid for PAWS: 24 days (RFC 7323
/// §5.5).
const PAWS_IDLE_NS: u64 = 24 * 24 * 3600 * 1_000_000_000;

impl<B: PacketBuf> Connection<B> {
    /// A segment for this connection (4-tuple matched, checksum good).
    /// Whatever it calls for (ACKs, RSTs, data) comes out of
    /// [`poll_transmit`](Connection::poll_transmit).
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::segment::SegmentIn;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(100), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// conn.poll_transmit(0).unwrap(); // the SYN
    /// conn.on_segment(SegmentIn {
    ///     seq: SeqNumber::new(5000), ack: SeqNumber::new(101), flags: TcpFlags::SYN | TcpFlags::ACK,
    ///     window: 65535, options: TcpOptionSet::default(), payload: None,
    /// }, 1_000_000);
    /// assert_eq!(conn.state(), State::Established);
    /// let ack = conn.poll_transmit(1_000_000).unwrap();
    /// assert_eq!((ack.flags, ack.ack), (TcpFlags::ACK, SeqNumber::new(5001)));
    /// ```
    pub fn on_segment(&mut self, mut seg: SegmentIn<B>, now_ns: u64) {
        let len = seg.data_len();
        let header = CheckedHeader::of_segment(&seg, len);
        // Header prediction takes a payload only when it is not empty
        // (as the input stage hands it: a buffer exactly when there are
        // bytes).
        if seg.payload.is_some() == (len > 0) && self.predicts(&header, len > 0, len) {
            let payload = seg.payload.take();
            let _ = self.on_predicted(&header, payload, len, now_ns);
        } else {
            self.on_segment_unpredicted(seg, len, now_ns);
        }
    }

    /// Whether the segment the input stage checked (`header`, a payload
    /// when `payload`, of `len` bytes) takes header prediction: then
    /// [`on_segment_predicted`](Self::on_segment_predicted) is what
    /// [`on_segment`](Self::on_segment) would do with it (its header read
    /// where the stage keeps it, never built as a [`SegmentIn`]), else
    /// [`on_segment_unpredicted`](Self::on_segment_unpredicted).
    #[inline(always)]
    pub(crate) fn predicts(&self, header: &CheckedHeader, payload: bool, len: u32) -> bool {
        self.state == State::Established && self.predicted(header, payload, len)
    }

    /// What every segment of `len` payload bytes first does: the clock,
    /// the counts, the trace.
    #[inline(always)]
    pub(super) fn segment_arrives<H: SegmentHeader>(&mut self, seg: &H, len: u32, now_ns: u64) {
        self.segment_seen(seg, len, now_ns);
        if len > 0 {
            self.stats.data_segs_in += 1;
        }
    }

    /// [`segment_arrives`](Self::segment_arrives) but the count of data
    /// segments, which its caller takes where it knows the segment has
    /// data.
    #[inline(always)]
    pub(super) fn segment_seen<H: SegmentHeader>(&mut self, seg: &H, len: u32, now_ns: u64) {
        self.clock_ns = self.clock_ns.max(now_ns);
        self.stats.segs_in += 1;
        self.trace_seg_in(seg, len, now_ns);
    }

    /// A segment of `len` payload bytes header prediction did not take,
    /// by state.
    #[inline(never)]
    pub(crate) fn on_segment_unpredicted(&mut self, seg: SegmentIn<B>, len: u32, now_ns: u64) {
        self.segment_arrives(&seg, len, now_ns);
        match self.state {
            State::Closed | State::Listen => self.stats.dropped += 1,
            State::SynSent => self.on_segment_syn_sent(seg, now_ns),
            _ => self.on_segment_synchronized(seg, now_ns),
        }
        self.segment_done(now_ns);
    }

    /// What every segment last does: the persist timer, the plain flag,
    /// the trace of what changed.
    #[inline(always)]
    pub(super) fn segment_done(&mut self, now_ns: u64) {
        self.update_persist(now_ns);
        self.settle_plain();
        self.trace_changes(now_ns);
    }

    /// Whether `syn`, a SYN on this connection's 4-tuple while it is in
    /// TIME_WAIT, may open a new incarnation (the table then frees this
    /// one and hands the SYN to the listener), as RFC 6191 says: with
    /// timestamps on this connection and on the SYN, its TSval must be
    /// above TS.Recent; otherwise (RFC 1122 §4.2.2.13) its sequence
    /// number must be above RCV.NXT. Anything else (a SYN with ACK or
    /// RST, another state) is not: it is handled as RFC 9293 says.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::segment::SegmentIn;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// let syn = SegmentIn::<PoolBuf> {
    ///     seq: SeqNumber::new(5), ack: SeqNumber::new(0), flags: TcpFlags::SYN,
    ///     window: 1000, options: TcpOptionSet::default(), payload: None,
    /// };
    /// assert!(!conn.time_wait_accepts_syn(&syn)); // SYN_SENT, not TIME_WAIT
    /// ```
    pub fn time_wait_accepts_syn(&self, syn: &SegmentIn<B>) -> bool {
        let flags = syn.flags;
        if self.state != State::TimeWait || !flags.syn() || flags.ack() || flags.rst() {
            return false;
        }
        match (self.neg.ts, syn.options.timestamps) {
            (true, Some((tsval, _))) => SeqNumber::new(tsval).gt(SeqNumber::new(self.ts_recent)),
            _ => syn.seq.gt(self.rcv_nxt),
        }
    }

    /// The least initial sequence number a new incarnation of this
    /// connection's 4-tuple should start from: past everything this one
    /// sent, by a window's worth (Linux's `tw_snd_nxt + 65535 + 2`), so
    /// the peer cannot take an old duplicate of ours for new data.
    pub fn next_incarnation_iss(&self) -> SeqNumber {
        self.snd_max + 65_537
    }

    /// RFC 9293 §3.10.7.4, SYN_RECEIVED through TIME_WAIT.
    fn on_segment_synchronized(&mut self, mut seg: SegmentIn<B>, now_ns: u64) {
        let flags = seg.flags;
        // RFC 7323 §5.3 R1: PAWS, before the sequence check.
        if self.neg.ts && !flags.rst() {
            if let Some((tsval, _)) = seg.options.timestamps {
                let stale = now_ns.saturating_sub(self.ts_recent_ns) > PAWS_IDLE_NS;
                if !stale && SeqNumber::new(tsval).lt(SeqNumber::new(self.ts_recent)) {
                    self.stats.dropped += 1;
                    self.out_of_window_ack(&seg, now_ns);
                    return;
                }
            }
        }
        // Simultaneous open (RFC 9293 §3.5 figure 8): the peer's SYN-ACK
        // repeats its SYN, already counted; what is new is its ACK. (Linux
        // lets exactly this segment through its SYN checks too.)
        if self.state == State::SynReceived
            && flags.syn()
            && flags.ack()
            && !flags.rst()
            && seg.seq + 1 == self.rcv_nxt
            && seg.payload.is_none()
            && seg.ack.is_between(self.snd_una + 1, self.snd_max + 1)
        {
            seg.seq += 1;
            seg.flags = TcpFlags(flags.0 & !TcpFlags::SYN.0);
            return self.on_segment_synchronized(seg, now_ns);
        }
        // First: is the segment acceptable (RFC 9293 §3.10.7.4 table)?
        let rcv_wnd = self.rcv_adv.wrapping_sub(self.rcv_nxt);
        if !self.acceptable(&seg, rcv_wnd) {
            self.stats.dropped += 1;
            if !flags.rst() && flags.ack() && seg.ack.is_between(self.snd_una, self.snd_max + 1) {
                // A duplicate with an acceptable ACK is the peer alive
                // (Linux counts any acceptable ACK, and lets a duplicate
                // ending at RCV.NXT through to its ACK processing):
                // keepalive starts its idle time again.
                self.keepalive_sent = 0;
                self.arm_keepalive(now_ns);
            }
            if !flags.rst() {
                self.dsack_old_duplicate(&seg);
                self.out_of_window_ack(&seg, now_ns);
            }
            return;
        }
        // Second: RST (RFC 5961 §3.2): only an exact match resets; in the
        // window it earns a challenge ACK.
        if flags.rst() {
            if seg.seq == self.rcv_nxt {
                self.on_reset();
            } else {
                self.challenge_ack(now_ns);
            }
            return;
        }
        // Fourth: a SYN in a synchronized state (RFC 5961 §4.2): challenge
        // ACK, whatever its sequence number. In SYN_RECEIVED, a repeated
        // SYN means the SYN-ACK was lost: send it again.
        if flags.syn() {
            if self.state == State::SynReceived {
                self.pending.syn = true;
            } else {
                self.challenge_ack(now_ns);
            }
            return;
        }
        // Fifth: the ACK field.
        if !flags.ack() {
            self.stats.dropped += 1;
            return;
        }
        if self.state == State::SynReceived {
            if seg.ack.is_between(self.snd_una + 1, self.snd_max + 1) {
                self.snd_wnd = u32::from(seg.window) << self.neg.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.pending.syn = false;
                self.establish(now_ns);
            } else {
                self.pending.rst = Some((seg.ack, None));
                self.note_output_rare();
                self.stats.dropped += 1;
                return;
            }
        }
        self.keepalive_sent = 0;
        self.probes_unanswered = 0;
        self.arm_keepalive(now_ns);
        if !self.on_ack(&seg, now_ns) {
            return;
        }
        // RFC 7323 §4.3: remember the peer's TSval from segments that
        // cover the left edge of our window, once both the segment and
        // its ACK were found acceptable (as Linux: tcp_ack's
        // FLAG_UPDATE_TS_RECENT). Earlier, a forged segment at RCV.NXT
        // with a bad ACK and a far-future TSval would set TS.Recent and
        // PAWS would then drop the real peer.
        if let (true, Some((tsval, _))) = (self.neg.ts, seg.options.timestamps) {
            if seg.seq.le(self.last_ack_sent)
                && SeqNumber::new(tsval).ge(SeqNumber::new(self.ts_recent))
            {
                self.ts_recent = tsval;
                self.ts_recent_ns = now_ns;
            }
        }
        if self.state == State::Closed {
            return;
        }
        // Sixth and seventh: the text, then eighth: FIN.
        if seg.payload.is_some() || flags.fin() {
            // Data that starts before RCV.NXT was received already: trim.
            let dup = self.rcv_nxt.wrapping_sub(seg.seq);
            if seg.seq.lt(self.rcv_nxt) {
                self.trim_old(&mut seg, dup);
            }
            self.process_text_and_fin(seg, now_ns);
        }
    }

    /// Whether a segment lies in the receive window (RFC 9293 §3.10.7.4's
    /// four cases). Data sent into a zero window is accepted at RCV.NXT for
    /// its ACK (the RFC's "special allowance"); its bytes are dropped later.
    fn acceptable(&self, seg: &SegmentIn<B>, rcv_wnd: u32) -> bool {
        let len = seg.seq_len();
        let end = self.rcv_nxt + rcv_wnd;
        match (len, rcv_wnd) {
            // An empty segment may sit at the right edge itself (as
            // Linux's tcp_sequence allows): a sender whose data filled our
            // window ACKs from there.
            (0, _) => seg.seq.is_between(self.rcv_nxt, end + 1),
            (_, 0) => seg.seq == self.rcv_nxt,
            (_, _) => {
                seg.seq.is_between(self.rcv_nxt, end)
                    || (seg.seq + len - 1).is_between(self.rcv_nxt, end)
            }
        }
    }

    /// Data wholly below RCV.NXT (a needless retransmission) is reported
    /// in a D-SACK block (RFC 2883 §4.1.1), so the sender can tell its
    /// recovery was spurious; as far back as a sender accepts blocks.
    fn dsack_old_duplicate(&mut self, seg: &SegmentIn<B>) {
        let len = seg.data_len();
        let end = seg.seq + len;
        if self.neg.sack && len > 0 && end.le(self.rcv_nxt) && seg.seq.ge(self.rcv_nxt - (1 << 30))
        {
            self.note_duplicate(SeqRange::from_len(seg.seq, len));
        }
    }

    /// Owes a D-SACK report of `range` (when SACK was agreed): the next
    /// ACK not already carrying one reports it as its first block, so a
    /// burst of duplicates gets one ACK each (RFC 2883 §4, as Linux).
    fn note_duplicate(&mut self, range: SeqRange) {
        if self.neg.sack {
            self.dsacks.push(range);
            self.note_output_rare();
        }
    }

    /// Answers an unacceptable segment with an ACK (a SYN-ACK while our
    /// SYN is unacknowledged).
    fn ack_unacceptable(&mut self) {
        if self.state == State::SynReceived {
            self.pending.syn = true;
        } else {
            self.pending.ack_now = true;
        }
    }

    /// The ACK owed for an unacceptable segment (RFC 9293 §3.10.7.4),
    /// rate-limited when the segment carries no data: two stacks that
    /// disagree about the window must not ping-pong ACKs (Linux's
    /// `tcp_oow_rate_limited`). Data and FIN segments are answered every
    /// time (a retransmission whose ACK was lost).
    fn out_of_window_ack(&mut self, seg: &SegmentIn<B>, now_ns: u64) {
        let bare = seg.data_len() == 0 && !seg.flags.fin();
        if (bare || seg.flags.syn()) && self.oow_rate_limited(now_ns) {
            return;
        }
        if self.state == State::TimeWait && seg.flags.fin() && !seg.flags.syn() {
            // The peer's FIN again: our ACK was lost. ACK it and restart
            // 2 MSL (RFC 9293 §3.10.7.4, TIME-WAIT).
            self.enter_time_wait(now_ns);
        }
        self.ack_unacceptable();
    }

    /// An ACK that asks the peer to prove it is in the stream (RFC 5961
    /// §3.2, §4.2, §5.2), rate-limited as RFC 5961 §7 asks.
    fn challenge_ack(&mut self, now_ns: u64) {
        if self.oow_rate_limited(now_ns) {
            return;
        }
        self.stats.challenge_acks += 1;
        if self.state == State::SynReceived {
            self.pending.syn = true;
        } else {
            self.pending.challenge = true;
        }
    }

    /// Whether a challenge ACK (RFC 5961 §3.2, §4.2, §5.2) waits to go
    /// out: the socket table checks its stack-wide limit (§7) after each
    /// segment and may [withhold](Self::withhold_challenge_ack) it.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert!(!conn.challenge_ack_pending());
    /// ```
    pub fn challenge_ack_pending(&self) -> bool {
        self.pending.challenge
    }

    /// Drops the pending challenge ACK: the stack-wide budget is spent
    /// (RFC 5961 §7). Counted in `acks_rate_limited`, no longer in
    /// `challenge_acks`; an ACK owed for another reason still goes.
    pub fn withhold_challenge_ack(&mut self) {
        if self.pending.challenge {
            self.pending.challenge = false;
            self.stats.challenge_acks = self.stats.challenge_acks.saturating_sub(1);
            self.stats.acks_rate_limited += 1;
        }
    }

    /// Whether an out-of-window answer is to be skipped: one per
    /// [`OOW_ACK_INTERVAL_NS`] at most. Counts the skipped ones.
    fn oow_rate_limited(&mut self, now_ns: u64) -> bool {
        if let Some(last) = self.last_oow_ack_ns {
            if now_ns.saturating_sub(last) < OOW_ACK_INTERVAL_NS {
                self.stats.acks_rate_limited += 1;
                return true;
            }
        }
        self.last_oow_ack_ns = Some(now_ns);
        false
    }

    /// An in-window, exact RST (RFC 9293 §3.10.7.4 second step).
    fn on_reset(&mut self) {
        let error = match self.state {
            // A passive open the application never saw: no error to give.
            // RFC 9293 §3.10.7.4: from an active open (via simultaneous
            // open) the connection was refused; a passive one the
            // application never saw ends without an error.
            State::SynReceived if self.active_open => Some(SocketError::ConnectionRefused),
            State::SynReceived => None,
            State::Closing | State::LastAck | State::TimeWait => None,
            _ => Some(SocketError::ConnectionReset),
        };
        self.enter_closed(error);
    }

    /// The fifth step: the ACK field. Returns false when the segment is
    /// to be dropped.
    fn on_ack(&mut self, seg: &SegmentIn<B>, now_ns: u64) -> bool {
        let ack = seg.ack;
        // RFC 5961 §5.2: acceptable ACKs lie in
        // [SND.UNA - MAX.SND.WND, SND.NXT]; others get an ACK and are dropped.
        if ack.gt(self.snd_max.max(self.probe_end)) {
            self.stats.dropped += 1;
            self.challenge_ack(now_ns);
            return false;
        }
        if ack.lt(self.snd_una - self.max_snd_wnd) {
            self.stats.dropped += 1;
            self.challenge_ack(now_ns);
            return false;
        }
        let window = u32::from(seg.window) << self.neg.snd_wscale;
        let advanced = ack.gt(self.snd_una);
        if !self.idle_ack(seg) {
            self.on_ack_in_flight(seg, window, advanced, now_ns);
        }
        self.on_ack_window_and_fin(seg, window, advanced, now_ns)
    }

    /// Whether `seg`'s ACK finds nothing to learn from: nothing in flight
    /// (it acknowledges SND.UNA = SND.MAX), no SACK blocks either way, no
    /// recovery, F-RTO or loss probe under way. The ACK field of every
    /// segment a receiving end gets in a one-way transfer: the loss
    /// machinery of [`on_ack_in_flight`](Self::on_ack_in_flight) has
    /// nothing to do for it (no duplicate: nothing is outstanding).
    #[inline]
    fn idle_ack(&self, seg: &SegmentIn<B>) -> bool {
        seg.ack == self.snd_una
            && self.snd_una == self.snd_max
            && seg.options.sack.is_none()
            && self.sack.is_none()
            && self.frto.is_none()
            && self.recovery.is_none()
            && !self.cc.in_recovery()
            && self.rack.as_deref().is_none_or(|r| r.probe.is_none())
    }

    /// The ACK's part in SACK, RACK-TLP, F-RTO, fast recovery and PRR,
    /// and SND.UNA's advance.
    fn on_ack_in_flight(&mut self, seg: &SegmentIn<B>, window: u32, advanced: bool, now_ns: u64) {
        let ack = seg.ack;
        let (una_before, sacked_before) = (self.snd_una, self.sacked_bytes());
        let recovering_before = self.in_sack_recovery();
        let (newly_sacked, dsack) = self.sack_on_ack(seg);
        let was_recovering = self.in_sack_recovery();
        let mut duplicate = false;
        // RACK (RFC 8985 §6.2): what this ACK delivered, before SND.UNA
        // moves and the delivered chunks leave the queue.
        self.rack_on_ack(seg, newly_sacked, dsack, now_ns);
        if ack.gt(self.snd_una) {
            self.on_new_ack::<false>(ack, seg.options.timestamps, false, false, now_ns);
        } else if ack == self.snd_una {
            // RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN,
            // the same window, while data is outstanding; RFC 6675 §2:
            // with SACK, one that SACKs new data.
            let outstanding = self.snd_max.gt(self.snd_una) && self.state.is_synchronized();
            let classic = seg.seq_len() == 0 && window == self.snd_wnd;
            duplicate = outstanding && (classic || newly_sacked > 0);
            if duplicate {
                self.on_dup_ack(now_ns);
            }
        }
        self.frto_on_ack(AckSeen {
            advanced,
            duplicate,
            tsecr: seg.options.timestamps.filter(|_| self.neg.ts).map(|t| t.1),
        });
        // RACK's losses (RFC 8985 §6.2 step 5), which may start recovery.
        self.rack_maybe_start_recovery(now_ns);
        if recovering_before && !self.in_sack_recovery() {
            if let Some(r) = self.rack.as_deref_mut() {
                r.on_recovery_end();
            }
        }
        // RFC 6937 §3: DeliveredData = change in SND.UNA + change in SACKed.
        let delivered = (self.snd_una.wrapping_sub(una_before) as i64
            + i64::from(self.sacked_bytes())
            - i64::from(sacked_before))
        .clamp(0, i64::from(u32::MAX)) as u32;
        let started = !was_recovering && self.in_sack_recovery();
        self.undo_if_spurious();
        self.prr_on_ack(delivered, started);
    }

    /// The window update, our FIN's acknowledgment, RACK's probe timer
    /// and a FIN again in TIME_WAIT. Returns false when the connection
    /// closed (LAST_ACK done).
    fn on_ack_window_and_fin(
        &mut self,
        seg: &SegmentIn<B>,
        window: u32,
        advanced: bool,
        now_ns: u64,
    ) -> bool {
        self.update_send_window(seg.seq, seg.ack, window, advanced);
        // Our FIN acknowledged: the closing states move on.
        // (Whether the FIN went out since a rewind does not matter: an ACK
        // past the data can only cover a FIN sent at some point.)
        if self.fin_requested && !self.fin_acked && self.snd_una == self.send_queue.end() + 1 {
            self.fin_acked = true;
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    // Keepalive watches a half-closed socket's peer.
                    self.arm_keepalive(now_ns);
                    if self.app_closed {
                        // An orphan waits for the peer's FIN this long at
                        // most (Linux `tcp_fin_timeout`).
                        self.timers.linger = Deadline::at(now_ns + self.knobs.time_wait_ns);
                    }
                }
                State::Closing => self.enter_time_wait(now_ns),
                State::LastAck => {
                    self.enter_closed(None);
                    return false;
                }
                _ => {}
            }
        }
        if self.rack_active() {
            self.skip_sacked_resends();
            self.rack_after_ack(advanced, self.snd_una == self.snd_max, now_ns);
        }
        if self.state == State::TimeWait && seg.flags.fin() {
            // A retransmitted FIN: ACK it and restart 2 MSL.
            self.pending.ack_now = true;
            self.enter_time_wait(now_ns);
        }
        true
    }

    /// The window update (RFC 9293 §3.10.7.4 takes it from a segment
    /// newer by SND.WL1/WL2), as Linux's tcp_may_update_window: from any
    /// ACK that moves SND.UNA (else a retransmission from the peer, old
    /// SEG.SEQ and new SEG.ACK, would move SND.UNA but keep an older
    /// window, and SND.UNA + SND.WND would pass the edge the peer
    /// announced), from a newer SEG.SEQ, and from the same SEG.SEQ and
    /// SEG.ACK only to grow or close (two pure ACKs differ in nothing
    /// else: taken out of order, the older one would shrink it).
    #[inline]
    pub(super) fn update_send_window(
        &mut self,
        seq: SeqNumber,
        ack: SeqNumber,
        window: u32,
        advanced: bool,
    ) {
        if ack.ge(self.snd_una)
            && (advanced
                || self.snd_wl1.lt(seq)
                || (self.snd_wl1 == seq
                    && (self.snd_wl2.lt(ack)
                        || (self.snd_wl2 == ack && (window > self.snd_wnd || window == 0)))))
        {
            let opened = window > self.snd_wnd;
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            if opened {
                self.timers.persist = Deadline::STOPPED;
                self.persist_backoff = 0;
            }
        }
    }

    /// SND.UNA advances to `ack`, the segment's `timestamps` the RTT
    /// sample's source. `released`: the chunks it acknowledges already
    /// left the send queue (RACK's walk, `rack_on_cumulative_ack`, let
    /// them go). `PREDICTED`: the ACK of a predicted segment
    /// (`conn::predict`), which is at most SND.MAX, comes outside
    /// recovery and with no FIN of ours queued: the checks those facts
    /// settle are left out (and asserted). `known_all_acked`: the caller
    /// knows `ack` is SND.MAX (the answer leaf's gate); else it is
    /// compared here. Inlined into each caller (the predicted ones'
    /// frames hold what it needs).
    #[inline(always)]
    pub(super) fn on_new_ack<const PREDICTED: bool>(
        &mut self,
        ack: SeqNumber,
        timestamps: Option<(u32, u32)>,
        released: bool,
        known_all_acked: bool,
        now_ns: u64,
    ) {
        #[cfg(any(test, debug_assertions))]
        assert!(!known_all_acked || ack == self.snd_max);
        #[cfg(any(test, debug_assertions))]
        assert!(
            !PREDICTED || (!self.fin_requested && ack.le(self.snd_max) && !self.cc.in_recovery())
        );
        let acked = ack.wrapping_sub(self.snd_una);
        // The FIN takes one sequence number but no byte.
        let fin_in = !PREDICTED && self.fin_requested && ack == self.send_queue.end() + 1;
        let syn_in = self.snd_una == self.iss;
        let acked_bytes = acked.saturating_sub(u32::from(fin_in) + u32::from(syn_in));
        self.snd_una = ack;
        if !PREDICTED {
            // A window probe's data may be acknowledged past SND.MAX.
            self.snd_max = self.snd_max.max(ack);
        }
        self.probe_end = self.probe_end.max(ack);
        // What the queue holds of it (not a FIN's number).
        let acked_to = || ack.min(self.send_queue.end());
        #[cfg(any(test, debug_assertions))]
        assert!(
            !released
                || (self.latency.is_none()
                    && self
                        .send_queue
                        .front()
                        .is_none_or(|c| !c.end().le(acked_to())))
        );
        // Released implies no latency stamps (asserted above): the stamps
        // are not looked at again, nor the queue's end.
        if !released {
            let acked_to = acked_to();
            match self.latency.as_deref_mut() {
                None => {
                    self.send_queue.ack(acked_to);
                }
                Some(lat) => {
                    self.send_queue
                        .ack_timed(acked_to, now_ns, &mut lat.write_acked);
                }
            }
        }
        self.stats.bytes_acked += u64::from(acked_bytes);
        // RTT (RFC 6298 §3 / RFC 7323 §4): from the echoed timestamp, else
        // from the one timed segment.
        let rtt = match (self.neg.ts, timestamps) {
            (true, Some((_, tsecr))) if tsecr != 0 => self.rtt_from_tsecr(tsecr, now_ns),
            _ => self.rtt_from_timed(ack, now_ns),
        };
        if acked_bytes > 0 {
            // RFC 7661 §4.3: an unvalidated window does not grow (the
            // controller sees the ACK only in recovery then).
            // A predicted ACK comes outside recovery (asserted above).
            let outcome = if self.cwnd_may_grow(!PREDICTED && self.cc.in_recovery()) {
                self.cc
                    .on_ack(acked_bytes, ack, now_ns, rtt.or(self.rto.srtt_ns()))
            } else {
                AckOutcome::Normal
            };
            match outcome {
                // NewReno's partial ACK resends the oldest chunk; with
                // SACK, NextSeg chooses instead.
                AckOutcome::PartialAck => {
                    self.pending.retransmit_front |= !self.in_sack_recovery();
                    self.note_output_rare();
                }
                AckOutcome::Normal => self.dup_acks = 0,
            }
        }
        // Outside recovery, the controller's `on_ack` does not start one.
        #[cfg(any(test, debug_assertions))]
        assert!(!PREDICTED || !self.cc.in_recovery());
        if !PREDICTED && self.cc.in_recovery() {
            self.dup_acks = 0;
        }
        self.retries = 0;
        // SND.MAX as SND.UNA's advance left it (nothing since moves either).
        let all_acked = known_all_acked || ack == self.snd_max;
        self.cwv_on_ack(!PREDICTED && self.cc.in_recovery(), all_acked, now_ns);
        // Something got through: an earlier ICMP error is stale.
        self.soft_error = None;
        // RFC 6298 §5.2 / §5.3: stop the timer when all is acknowledged,
        // restart it otherwise.
        self.timers.rto = if all_acked {
            Deadline::STOPPED
        } else {
            Deadline::at(now_ns + self.rto.rto_ns())
        };
        if self.write_blocked && self.send_queue.space() > 0 {
            self.write_blocked = false;
            self.events.set_writable();
        }
    }

    /// A duplicate ACK (RFC 5681 §3.2, RFC 6582 §3.2).
    fn on_dup_ack(&mut self, now_ns: u64) {
        self.stats.dup_acks_in += 1;
        self.dup_acks += 1;
        if self.cc.in_recovery() {
            // With SACK, pipe accounts for what left the network; without,
            // the window is inflated per duplicate (RFC 5681 §3.2 step 4).
            if !self.in_sack_recovery() {
                self.cc.on_dup_ack();
            }
        } else if !self.rack_decides()
            && (self.dup_acks >= DUP_ACK_THRESHOLD || self.sack_says_lost())
            && self.sack_may_start_recovery()
        {
            // With RACK, time decides instead (`rack_maybe_start_recovery`).
            self.enter_fast_recovery(now_ns);
        }
    }

    /// Fast retransmit and recovery begin (RFC 5681 §3.2, RFC 6675 §5).
    pub(super) fn enter_fast_recovery(&mut self, now_ns: u64) {
        let flight = self.snd_max.wrapping_sub(self.snd_una);
        let prior = Prior::of(&self.cc);
        self.note_rare();
        self.recovery.get_or_insert_with(Default::default).undo = Some(prior);
        self.cc.enter_recovery(flight, self.snd_max, now_ns);
        self.sack_start_recovery();
        if let Some(r) = self.rack.as_deref_mut() {
            // The reduction ends the probe's episode (Linux resets
            // tlp_high_seq with any reduction): its ACK must not reduce
            // the window a second time. A retransmitting probe's D-SACK
            // must not pass for this recovery's.
            r.pto_deadline = Deadline::STOPPED;
            r.probe_due = false;
            if r.probe.take().is_some_and(|p| p.is_retrans) {
                if let Some(board) = self.sack.as_deref_mut() {
                    board.expect_dsack();
                }
            }
        }
        self.pending.retransmit_front = true;
        self.note_output_rare();
        self.stats.fast_retransmits += 1;
        self.stats.lost += 1;
    }

    /// An RTT sample from an echoed timestamp (RFC 7323 §4.1); unambiguous
    /// even for a retransmission.
    #[inline(always)]
    pub(super) fn rtt_from_tsecr(&mut self, tsecr: u32, now_ns: u64) -> Option<u64> {
        let ticks = self.ts_now(now_ns).wrapping_sub(tsecr);
        if ticks > 1 << 30 {
            return None; // from the future or ancient: not a sample
        }
        // At least one tick: a sample of 0 would let the RTO collapse.
        let rtt = u64::from(ticks.max(1)) * 1_000_000;
        self.rto.on_sample(RttSample::Clean(rtt));
        self.rack_rtt_sample(rtt);
        self.rtt_timed = None;
        Some(rtt)
    }

    /// An RTT sample from the timed segment, once the ACK covers it (RFC
    /// 6298 §3: Karn's rule holds because a retransmission untimes it).
    pub(super) fn rtt_from_timed(&mut self, ack: SeqNumber, now_ns: u64) -> Option<u64> {
        let (end, sent_ns) = self.rtt_timed?;
        if !ack.ge(end) {
            return None;
        }
        self.rtt_timed = None;
        let rtt = now_ns.saturating_sub(sent_ns);
        self.rto.on_sample(RttSample::Clean(rtt));
        self.rack_rtt_sample(rtt);
        Some(rtt)
    }

    /// Trims the `n` bytes already received off a segment's front (a SYN
    /// counts as one of them).
    fn trim_old(&mut self, seg: &mut SegmentIn<B>, mut n: u32) {
        if seg.flags.syn() {
            seg.flags = TcpFlags(seg.flags.0 & !TcpFlags::SYN.0);
            n -= 1;
            seg.seq += 1;
        }
        let data = seg.data_len();
        let cut = n.min(data);
        if let Some(p) = seg.payload.as_mut() {
            if cut == data || trim_front_chained(p, cut as usize).is_err() {
                seg.payload = None;
            }
        }
        seg.seq += cut;
        if n > data {
            // Even the FIN is old (a retransmitted FIN).
            seg.flags = TcpFlags(seg.flags.0 & !TcpFlags::FIN.0);
            self.pending.ack_now = true;
        }
        if cut > 0 {
            // RFC 2883 §4: report the duplicate as the first SACK block.
            self.note_duplicate(SeqRange::from_len(seg.seq - cut, cut));
            // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: duplicate data asks for
            // an immediate ACK (the peer may be retransmitting for a lost
            // ACK).
            self.pending.ack_now = true;
        }
    }

    /// The sixth to eighth steps for a segment starting at or after
    /// RCV.NXT: queue in-order data (and what it lets out of the
    /// reassembly queue), hold out-of-order data, then take the FIN.
    pub(super) fn process_text_and_fin(&mut self, mut seg: SegmentIn<B>, now_ns: u64) {
        let receiving = matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2 | State::SynReceived
        );
        if !receiving {
            // After the peer's FIN nothing more can arrive; ACK and ignore.
            self.pending.ack_now |= seg.data_len() > 0;
            return;
        }
        if self.app_closed && seg.data_len() > 0 {
            // Linux: data for a socket the application closed resets the
            // connection (RFC 9293 §3.10.4's RST for data nobody reads).
            let end = seg.seq + seg.data_len();
            self.pending.rst = Some((self.snd_max, Some(end)));
            self.note_output_rare();
            self.enter_closed(None);
            return;
        }
        let fin_seq = seg.seq + seg.data_len();
        let fin = seg.flags.fin();
        if seg.seq != self.rcv_nxt {
            self.on_out_of_order(seg, fin.then_some(fin_seq));
            return;
        }
        let mut fin_here = fin;
        if let Some(mut payload) = seg.payload.take() {
            let window = self.rcv_adv.wrapping_sub(self.rcv_nxt) as usize;
            let len = payload.total_len();
            let take = len.min(window).min(self.receive_queue.free());
            if take < len {
                fin_here = false; // the FIN lies past what we keep
                if take == 0 || trim_back_chained(&mut payload, len - take).is_err() {
                    self.pending.ack_now = true;
                    return;
                }
            }
            let had_gap = !self.reassembly.is_empty();
            self.deliver(payload, take);
            // What the reassembly queue holds right behind it follows.
            if had_gap {
                while let Some(buf) = self.reassembly.pop_in_order(self.rcv_nxt) {
                    let len = buf.total_len();
                    self.deliver(buf, len);
                }
            }
            self.schedule_ack(had_gap, now_ns);
        }
        let fin_now = (fin_here && self.rcv_nxt == fin_seq) || self.ooo_fin == Some(self.rcv_nxt);
        if fin_now {
            self.ooo_fin = None;
            self.rcv_nxt += 1;
            self.pending.ack_now = true;
            self.events.set_peer_closed();
            self.events.set_readable();
            match self.state {
                State::SynReceived | State::Established => self.state = State::CloseWait,
                State::FinWait1 => {
                    if self.fin_acked {
                        self.enter_time_wait(now_ns);
                    } else {
                        self.state = State::Closing;
                    }
                }
                State::FinWait2 => self.enter_time_wait(now_ns),
                _ => {}
            }
        }
    }

    /// The ACK for in-order data just queued: at once when the segment
    /// filled (part of) a gap (RFC 5681 §4.2) or at least every second
    /// full-sized segment (RFC 9293 §3.8.6.3); otherwise delayed.
    #[inline]
    pub(super) fn schedule_ack(&mut self, filled_gap: bool, now_ns: u64) {
        if filled_gap
            || !self.knobs.delayed_ack
            || self.unacked_bytes >= 2 * self.neg.rcv_payload_max()
        {
            self.pending.ack_now = true;
        } else if self.timers.delayed_ack.is_stopped() {
            self.timers.delayed_ack = Deadline::at(now_ns + self.knobs.delayed_ack_ns);
        }
    }

    /// Queues `len` in-order bytes for the application (`buf`'s length,
    /// which the caller knows). An empty buffer queues nothing, and
    /// still makes the connection readable.
    pub(super) fn deliver(&mut self, buf: B, len: usize) {
        if len == 0 {
            self.events.set_readable();
            return;
        }
        self.deliver_data(buf, len);
    }

    /// [`deliver`](Self::deliver) of a payload of `len` bytes, not empty.
    #[inline]
    pub(super) fn deliver_data(&mut self, buf: B, len: usize) {
        debug_assert!(len > 0);
        self.rcv_nxt += len as u32;
        self.stats.bytes_received += len as u64;
        self.unacked_bytes += len;
        let mut buf = buf;
        if self.latency.is_some() && buf.meta().rx_timestamp_ns == 0 {
            // The port stamps nothing: the arrival is the queueing.
            buf.meta_mut().rx_timestamp_ns = self.clock_ns.max(1);
        }
        self.receive_queue.push(buf, len);
        self.events.set_readable();
    }

    /// Data beyond RCV.NXT: held in the reassembly queue (trimmed to the
    /// window), answered by a duplicate ACK at once (RFC 5681 §4.2) that
    /// carries SACK blocks when agreed.
    fn on_out_of_order(&mut self, mut seg: SegmentIn<B>, fin_seq: Option<SeqNumber>) {
        self.stats.out_of_order += 1;
        // One duplicate ACK per segment, even when several arrive before
        // the stage drains us: the sender counts them.
        self.pending.dup_acks = self
            .pending
            .dup_acks
            .saturating_add(1)
            .min(MAX_DUP_ACKS_OWED);
        self.note_output_rare();
        if let Some(f) = fin_seq {
            if f.is_between(self.rcv_nxt, self.rcv_adv + 1) {
                self.ooo_fin = Some(f);
                self.note_rare();
            }
        }
        let Some(mut payload) = seg.payload.take() else {
            return;
        };
        let room = self.rcv_adv.wrapping_sub(seg.seq);
        if !seg.seq.lt(self.rcv_adv) {
            return;
        }
        let len = payload.total_len() as u32;
        if len > room && trim_back_chained(&mut payload, (len - room) as usize).is_err() {
            return;
        }
        self.note_rare();
        match self.reassembly.insert(seg.seq, payload) {
            Insert::Queued {
                duplicate: Some(range),
                ..
            }
            | Insert::Duplicate(range) => self.note_duplicate(range),
            Insert::Queued { .. } => {}
            Insert::Refused(_) => self.stats.dropped += 1,
            Insert::Empty => {}
        }
    }

    /// TIME_WAIT for 2 MSL (RFC 9293 §3.10.7.4 eighth step).
    fn enter_time_wait(&mut self, now_ns: u64) {
        self.state = State::TimeWait;
        self.timers = super::Timers {
            linger: Deadline::at(now_ns + self.knobs.time_wait_ns),
            delayed_ack: self.timers.delayed_ack,
            ..super::Timers::default()
        };
        self.send_queue.clear();
        self.reassembly.clear();
        // Nothing is in flight any more: no timeout to undo.
        self.frto = None;
    }
}
