//! What a connection sends next: control segments first, then
//! retransmissions, new data within both windows (RFC 9293 §3.8.6, RFC
//! 5681), the FIN, probes, and ACKs.

use tpa::buf::PacketBuf;
use tpa::wire::tcp::{SackBlocks, TcpFlags};

use super::super::cc::CongestionControl;
use super::super::segment::{OptionsOut, QuietSeg, SegmentOut, SummedLen};
use super::super::seq::SeqNumber;
use super::send_queue::Chunk;
use super::timers::Deadline;
use super::{Connection, State};

/// What `poll_transmit` sends next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Rst,
    Syn,
    RetransmitFront,
    SackRetransmit,
    TailLossProbe,
    Data,
    Fin,
    WindowProbe,
    KeepaliveProbe,
    DupAck,
    Ack,
}

/// What [`Connection::poll_quiet`] found.
pub(crate) enum Quiet<'a, B: PacketBuf> {
    /// The next segment, built by the straight path.
    Seg(QuietSeg<'a, B>),
    /// Nothing to send, and no chunk waiting.
    Nothing,
    /// A chunk the window holds back: ask
    /// [`poll_transmit`](Connection::poll_transmit) (and its window cut).
    Full,
}

/// What the straight path's segments of one pass share: the segments
/// [`Connection::poll_quiet`] gives one after another at one time, the
/// connection borrowed throughout (nothing received, read or timed out
/// in between). Fresh ([`Default`]) for each pass.
#[derive(Default)]
pub(crate) struct QuietPass {
    /// The ACK fields once the pass's first segment took them: the
    /// receive side does not move within a pass, so every later segment
    /// carries the same ones (the window already announced, the
    /// timestamps of the same time).
    ack: QuietAck,
    /// Whether `ack` was taken (a flag, not an `Option`: one byte
    /// tested, not the timestamps' tag).
    has_ack: bool,
    /// Whether a segment of the pass carried new data with RACK running:
    /// the probe timeout restarts (RFC 8985 §7.2) once, at the pass's end
    /// ([`Connection::end_quiet_pass`]), for its last such segment.
    /// Nothing reads the PTO within a pass, and the last segment's
    /// restart sets it from the same time, flight and RTO as the pass's
    /// end.
    pto_owed: bool,
}

/// A pass dropped with its probe timeout not armed: a way out of the
/// straight path's loop missed [`Connection::end_quiet_pass`].
#[cfg(any(test, debug_assertions))]
impl Drop for QuietPass {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(!self.pto_owed, "a quiet pass ended without its PTO armed");
        }
    }
}

/// The ACK fields of a straight-path segment ([`QuietSeg`]'s `ack`,
/// `window` and `timestamps`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct QuietAck {
    /// SEG.ACK.
    ack: SeqNumber,
    /// SEG.WND, scaled down.
    window: u16,
    /// `(TSval, TSecr)`, when timestamps were agreed.
    timestamps: Option<(u32, u32)>,
}

impl<B: PacketBuf> Connection<B> {
    /// The next segment to send, `None` when there is nothing. Drain it
    /// after every input, application call and timer.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// assert!(conn.wants_transmit());
    /// assert!(conn.poll_transmit(0).unwrap().flags.syn());
    /// assert!(!conn.wants_transmit());
    /// ```
    #[inline]
    pub fn poll_transmit(&mut self, now_ns: u64) -> Option<SegmentOut<B>> {
        self.clock_ns = self.clock_ns.max(now_ns);
        let next = self.next()?;
        self.transmit(next, now_ns)
    }

    /// Builds and accounts the segment `next` says goes out. Out of line:
    /// the output path asks [`poll_transmit`](Self::poll_transmit) once
    /// more after every segment, and that last call, which finds nothing,
    /// skips this function's frame.
    #[inline(never)]
    fn transmit(&mut self, next: Next, now_ns: u64) -> Option<SegmentOut<B>> {
        let snd_max = self.snd_max;
        let seg = match next {
            Next::Rst => {
                let (seq, ack) = self.pending.rst.take()?;
                SegmentOut {
                    seq,
                    ack: ack.unwrap_or_default(),
                    flags: if ack.is_some() {
                        TcpFlags::RST | TcpFlags::ACK
                    } else {
                        TcpFlags::RST
                    },
                    window: 0,
                    options: OptionsOut::default(),
                    payload: None,
                }
            }
            Next::Syn => self.syn_segment(now_ns),
            Next::RetransmitFront => {
                self.pending.retransmit_front = false;
                self.retransmit_front(now_ns)
            }
            Next::SackRetransmit => self.sack_retransmit(now_ns),
            Next::TailLossProbe => self.tail_loss_probe(now_ns),
            Next::Data => self.data_segment(now_ns),
            Next::Fin => {
                let seq = self.send_queue.end();
                self.fin_sent = true;
                self.note_sent(seq, 1, now_ns);
                self.with_ack(seq, TcpFlags::FIN, None, now_ns)
            }
            Next::WindowProbe => {
                self.pending.window_probe = false;
                self.stats.window_probes += 1;
                let seg = match self.send_queue.next_unsent() {
                    Some(c) => {
                        // RFC 9293 §3.8.6.1: a probe carries data; the
                        // receiver keeps what fits and ACKs with its window.
                        let (seq, end, buf) = (c.seq, c.end(), c.buf.clone());
                        self.rack_stamp(self.send_queue.next_index(), now_ns);
                        self.probe_end = self.probe_end.max(end);
                        self.with_ack(seq, TcpFlags::PSH, Some(buf), now_ns)
                    }
                    None => self.with_ack(self.snd_max, TcpFlags(0), None, now_ns),
                };
                // The next probe, backed off, in case this one or its
                // answer is lost.
                self.update_persist(now_ns);
                seg
            }
            Next::KeepaliveProbe => {
                self.pending.keepalive_probe = false;
                self.stats.keepalive_probes += 1;
                // RFC 9293 §3.8.4: SEG.SEQ = SND.NXT - 1, no data.
                self.with_ack(self.snd_una - 1, TcpFlags(0), None, now_ns)
            }
            Next::DupAck => {
                let owed = self.pending.dup_acks - 1;
                let seg = self.with_ack(self.snd_max, TcpFlags(0), None, now_ns);
                self.pending.dup_acks = owed;
                seg
            }
            Next::Ack => self.with_ack(self.snd_max, TcpFlags(0), None, now_ns),
        };
        self.stats.segs_out += 1;
        let len = seg.data_len();
        if len > 0 {
            self.stats.data_segs_out += 1;
        }
        self.trace_seg_out(&seg, len, snd_max, now_ns);
        Some(seg)
    }

    /// Whether [`poll_transmit`](Connection::poll_transmit) would return a
    /// segment now.
    pub fn wants_transmit(&self) -> bool {
        self.next().is_some()
    }

    /// Decides what goes out next, without changing anything.
    ///
    /// The established connection with no loss state and nothing rare
    /// owed (no reset, duplicate ACKs, retransmission, probes, SACK
    /// scoreboard or due loss probe: every segment of a loss-free
    /// exchange) is decided here in one pass: new data when the next
    /// chunk may go, else an ACK when one is owed, else nothing (the
    /// output path asks once more after every segment). That is what
    /// [`next_full`](Self::next_full) answers for such a connection: its
    /// other cases (SYN, FIN, SACK retransmission, probes) cannot arise
    /// in it. Every other connection goes through `next_full`.
    #[inline]
    fn next(&self) -> Option<Next> {
        let p = &self.pending;
        let quiet = self.state == State::Established
            && p.rst.is_none()
            && p.dup_acks == 0
            && !p.retransmit_front
            && !p.window_probe
            && !p.keepalive_probe
            && self.sack.is_none()
            && !self.rack.as_deref().is_some_and(|r| r.probe_due);
        if !quiet {
            return self.next_full();
        }
        let next = if self.can_send_quiet() {
            Some(Next::Data)
        } else {
            (p.ack_now || p.challenge || !self.dsacks.is_empty()).then_some(Next::Ack)
        };
        // The crate's tests (the engine's unit tests and the seeded
        // simulations, clean and impaired) hold every quick answer
        // against the full path's.
        #[cfg(test)]
        assert_eq!(next, self.next_full(), "the quick decision differs");
        next
    }

    /// Whether [`poll_quiet`](Self::poll_quiet) takes the connection:
    /// ESTABLISHED, nothing rare owed, no SACK option to write, no trace.
    /// A segment of the straight path changes none of it, so a caller
    /// that found it true asks `poll_quiet` for every segment that
    /// follows without asking again. The [`plain`](Self::plain) flag
    /// stands for no scoreboard and nothing held out of order (it implies
    /// both, and asks a little more: a connection in recovery takes the
    /// full path, as one with a scoreboard does).
    ///
    /// The rare output states are one flag (`output_rare`), looked at
    /// again only once something set it
    /// ([`settle_output_rare`](Self::settle_output_rare)).
    #[inline]
    pub(crate) fn quiet(&mut self) -> bool {
        let quiet = self.state == State::Established
            && self.plain()
            && (!self.output_rare || self.settle_output_rare());
        #[cfg(any(test, debug_assertions))]
        assert_eq!(quiet, self.quiet_long(), "output_rare flag left clear");
        quiet
    }

    /// [`quiet`](Self::quiet) field by field.
    #[cfg(any(test, debug_assertions))]
    fn quiet_long(&self) -> bool {
        let quiet = self.state == State::Established && self.plain() && !self.any_output_rare();
        assert!(
            !quiet || (self.sack.is_none() && self.reassembly.is_empty()),
            "a quiet connection has no scoreboard and nothing out of order"
        );
        quiet
    }

    /// Whether a reset, duplicate ACKs, a front retransmission, a window
    /// or keepalive probe, a D-SACK report or a due loss probe is owed,
    /// or a trace records: what the straight path does not send.
    fn any_output_rare(&self) -> bool {
        let p = &self.pending;
        p.rst.is_some()
            || p.dup_acks > 0
            || p.retransmit_front
            || p.window_probe
            || p.keepalive_probe
            || !self.dsacks.is_empty()
            || self.trace.is_some()
            || self.rack.as_deref().is_some_and(|r| r.probe_due)
    }

    /// One of the rare output states starts: [`quiet`](Self::quiet) looks
    /// at them all again.
    #[inline]
    pub(super) fn note_output_rare(&mut self) {
        self.output_rare = true;
    }

    /// The rare output states looked at after one started: the flag
    /// cleared once all are over. Returns whether they are. Out of line:
    /// a loss-free exchange never comes here.
    #[cold]
    #[inline(never)]
    fn settle_output_rare(&mut self) -> bool {
        self.output_rare = self.any_output_rare();
        !self.output_rare
    }

    /// Whether at most one chunk waits to be sent: the straight case's
    /// segments are then at most one data segment (a chunk holds at most
    /// one) and ACKs, never two data segments a port with TSO would join
    /// into a super-segment ([`Batch::pair`](crate::tcp::tso::Batch::pair)).
    #[inline]
    pub(crate) fn one_chunk_at_most(&self) -> bool {
        self.send_queue.next_unsent().is_none() || self.send_queue.next_is_last()
    }

    /// The output path's straight case, for a connection found
    /// [`quiet`](Self::quiet) (ESTABLISHED with nothing rare owed: the
    /// conditions of [`next`](Self::next)'s quick case; no SACK option to
    /// write: no D-SACK report owed, nothing held out of order; no trace
    /// to record) with nothing but straight-path segments sent since
    /// (checked in debug builds): decides and builds the next segment in
    /// one pass, new data when the next chunk may go, else an ACK when one
    /// is owed. The segment is the one [`poll_transmit`](Self::poll_transmit)
    /// would return, with the same accounting. [`Quiet::Nothing`] when
    /// `poll_transmit` would return nothing and no chunk waits (so no
    /// window cut could free one); [`Quiet::Full`] when a chunk waits that
    /// the window holds back, which the caller asks of `poll_transmit`
    /// (and its window cut). Under `cfg(test)` every answer is held
    /// against [`next_full`](Self::next_full)'s.
    #[inline(always)]
    pub(crate) fn poll_quiet(&mut self, now_ns: u64, pass: &mut QuietPass) -> Quiet<'_, B> {
        #[cfg(any(test, debug_assertions))]
        assert!(self.quiet_long(), "only a quiet connection");
        self.clock_ns = self.clock_ns.max(now_ns);
        #[cfg(test)]
        let expect = self.next_full();
        if self.can_send_quiet() {
            #[cfg(test)]
            assert_eq!(expect, Some(Next::Data), "the straight path sends data");
            return Quiet::Seg(self.quiet_data(now_ns, pass));
        }
        if self.pending.ack_now || self.pending.challenge {
            #[cfg(test)]
            assert_eq!(expect, Some(Next::Ack), "the straight path sends an ACK");
            self.stats.segs_out += 1;
            return Quiet::Seg(self.quiet_ack(self.snd_max, TcpFlags(0), now_ns, pass));
        }
        #[cfg(test)]
        assert_eq!(expect, None, "the straight path sends nothing");
        if self.send_queue.next_unsent().is_some() {
            Quiet::Full // a window cut may free a segment (`fit_window`)
        } else {
            Quiet::Nothing
        }
    }

    /// Whether [`poll_quiet`](Self::poll_quiet) would answer
    /// [`Quiet::Nothing`] now, found as it would (its clock moved to
    /// `now_ns` alike), without a chunk's window checks: no chunk waits
    /// and no ACK is owed now.
    #[inline(always)]
    pub(crate) fn quiet_sends_nothing(&mut self, now_ns: u64) -> bool {
        #[cfg(any(test, debug_assertions))]
        assert!(self.quiet_long(), "only a quiet connection");
        let nothing = self.send_queue.next_unsent().is_none()
            && !self.pending.ack_now
            && !self.pending.challenge;
        if nothing {
            self.clock_ns = self.clock_ns.max(now_ns);
            #[cfg(test)]
            assert_eq!(self.next_full(), None, "the straight path sends nothing");
        }
        nothing
    }

    /// Whether [`poll_quiet`](Self::poll_quiet), asked again after it
    /// gave a segment (at the same time), would answer [`Quiet::Nothing`]:
    /// no chunk waits, and that segment settled any ACK owed
    /// ([`quiet_ack`](Self::quiet_ack)).
    #[inline(always)]
    pub(crate) fn quiet_sent_all(&self) -> bool {
        let done = self.send_queue.next_unsent().is_none();
        #[cfg(any(test, debug_assertions))]
        assert!(
            !done || !(self.pending.ack_now || self.pending.challenge),
            "the straight path's segment settled the ACK owed"
        );
        #[cfg(test)]
        assert!(
            !done || self.next_full().is_none(),
            "the straight path sends nothing"
        );
        done
    }

    /// [`data_segment`](Self::data_segment) and [`with_ack`](Self::with_ack)
    /// in one, for [`poll_quiet`](Self::poll_quiet)'s connection (no SACK
    /// option to write), with [`transmit`](Self::transmit)'s counts.
    #[inline(always)]
    fn quiet_data(&mut self, now_ns: u64, pass: &mut QuietPass) -> QuietSeg<'_, B> {
        let last = self.send_queue.next_is_last();
        let snd_max = self.snd_max;
        let index = self.send_queue.next_index();
        // The chunk two segments on: its header is cold in a long queue
        // (written when the application's bytes were copied in).
        self.send_queue.prefetch(index + 2);
        let Some((seq, len, first_ns)) = self.send_queue.next_unsent_mut().map(|c| {
            let resent = c.end().le(snd_max);
            c.rexmit |= resent;
            c.sent_ns = now_ns;
            let first_ns = if resent { 0 } else { c.written_ns };
            (c.seq, c.len, first_ns)
        }) else {
            // `can_send_quiet` found a chunk; an ACK is harmless otherwise.
            self.stats.segs_out += 1;
            return self.quiet_ack(self.snd_max, TcpFlags(0), now_ns, pass);
        };
        if first_ns != 0 {
            if let Some(lat) = self.latency.as_deref_mut() {
                lat.write_sent.record(now_ns.saturating_sub(first_ns));
            }
        }
        self.cwv_before_send(now_ns);
        self.send_queue.advance();
        // A plain connection has no F-RTO under way (`frto_sent_new`),
        // and no scoreboard, so no chunk is SACKed
        // (`skip_sacked_resends` has nothing to skip).
        #[cfg(any(test, debug_assertions))]
        assert!(
            self.frto.is_none() && self.send_queue.next_unsent().is_none_or(|c| !c.sacked),
            "a plain connection"
        );
        let mut flags = TcpFlags(0);
        let mut seq_len = len;
        if last {
            flags |= TcpFlags::PSH;
            if self.fin_requested {
                flags |= TcpFlags::FIN;
                self.fin_sent = true;
                seq_len += 1;
            }
        }
        let end = self.quiet_note_sent(seq, seq_len, now_ns, pass);
        self.cwv_after_send_ending(end);
        self.stats.segs_out += 1;
        // A branch, not `+= u64::from(len > 0)`: LLVM joined that and
        // the line above into vector adds of 9 instructions.
        if len > 0 {
            self.stats.data_segs_out += 1;
        }
        let seg = self.quiet_ack(seq, flags, now_ns, pass);
        // The chunk stays where it was (sent, not yet acknowledged): the
        // segment borrows its data, no reference taken.
        let chunk = self.send_queue.get_mut(index);
        debug_assert!(chunk.is_some(), "the chunk just sent");
        let payload_sum = chunk.as_ref().map_or(SummedLen::NONE, |c| c.summed);
        QuietSeg {
            payload: chunk.map(|c| &mut c.buf),
            payload_sum,
            ..seg
        }
    }

    /// [`with_ack`](Self::with_ack) without SACK blocks (none to report)
    /// nor data: the straight path's segment fields, the ACK's taken
    /// once per `pass` ([`QuietPass`]; under test and debug builds taken
    /// again for every segment and held against the pass's).
    #[inline(always)]
    fn quiet_ack<'a>(
        &mut self,
        seq: SeqNumber,
        flags: TcpFlags,
        now_ns: u64,
        pass: &mut QuietPass,
    ) -> QuietSeg<'a, B> {
        let ack = if pass.has_ack {
            #[cfg(any(test, debug_assertions))]
            {
                let rcv_adv = self.rcv_adv;
                assert_eq!(
                    pass.ack,
                    self.take_quiet_ack(now_ns),
                    "the pass's ACK fields"
                );
                assert_eq!(rcv_adv, self.rcv_adv, "the window announced once");
            }
            pass.ack
        } else {
            // The value kept, not read back from where it was stored.
            let ack = self.take_quiet_ack(now_ns);
            pass.ack = ack;
            pass.has_ack = true;
            ack
        };
        QuietSeg {
            seq,
            ack: ack.ack,
            flags: flags | TcpFlags::ACK,
            window: ack.window,
            timestamps: ack.timestamps,
            payload: None,
            payload_sum: SummedLen::NONE,
        }
    }

    /// The ACK fields of a straight-path segment sent now: the window
    /// announced, the ACK owed and the delayed ACK settled by it.
    #[inline(always)]
    fn take_quiet_ack(&mut self, now_ns: u64) -> QuietAck {
        // Quiet: no duplicate ACK owed either.
        debug_assert!(
            self.dsacks.is_empty() && self.reassembly.is_empty() && self.pending.dup_acks == 0
        );
        let window = self.announce_window();
        self.pending.ack_now = false;
        self.pending.challenge = false;
        self.timers.delayed_ack = Deadline::STOPPED;
        self.unacked_bytes = 0;
        self.last_ack_sent = self.rcv_nxt;
        QuietAck {
            ack: self.rcv_nxt,
            window,
            timestamps: self.neg.ts.then(|| (self.ts_now(now_ns), self.ts_recent)),
        }
    }

    /// [`next`](Self::next) for any connection, case by case.
    #[inline(never)]
    fn next_full(&self) -> Option<Next> {
        if self.pending.rst.is_some() {
            return Some(Next::Rst);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived => {
                return self.pending.syn.then_some(Next::Syn);
            }
            State::TimeWait => {
                return (self.pending.ack_now || self.pending.challenge || !self.dsacks.is_empty())
                    .then_some(Next::Ack)
            }
            _ if self.pending.dup_acks > 0 => return Some(Next::DupAck),
            _ => {}
        }
        if self.pending.retransmit_front && self.can_retransmit_front() {
            return Some(Next::RetransmitFront);
        }
        let can_send_data = self.can_send_data();
        // (No call into NextSeg outside SACK recovery: it picks nothing there.)
        if self.sending_state()
            && self.in_sack_recovery()
            && self.sack_retransmission(can_send_data).is_some()
        {
            return Some(Next::SackRetransmit);
        }
        if self.rack.as_deref().is_some_and(|r| r.probe_due) {
            return Some(Next::TailLossProbe);
        }
        if can_send_data {
            return Some(Next::Data);
        }
        if self.can_send_fin() {
            return Some(Next::Fin);
        }
        if self.pending.window_probe {
            return Some(Next::WindowProbe);
        }
        if self.pending.keepalive_probe {
            return Some(Next::KeepaliveProbe);
        }
        // Every duplicate gets an ACK of its own with its D-SACK block.
        (self.pending.ack_now || self.pending.challenge || !self.dsacks.is_empty())
            .then_some(Next::Ack)
    }

    /// Whether the oldest chunk (or the FIN alone) was sent and may be
    /// sent again.
    fn can_retransmit_front(&self) -> bool {
        match self.send_queue.front() {
            // Not yet resent since a rewind: the data path sends it anyway.
            Some(_) => {
                self.send_queue.next_seq()
                    != self.send_queue.front().map(|c| c.seq).unwrap_or_default()
            }
            None => {
                self.fin_requested && !self.fin_acked && self.snd_max == self.send_queue.end() + 1
            }
        }
    }

    /// Whether the state lets data go out.
    pub(super) fn sending_state(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// [`can_send_data`](Self::can_send_data) for the connection
    /// [`next`](Self::next) decides in one pass: ESTABLISHED (a sending
    /// state) without a SACK scoreboard, so no SACK recovery: no pipe to
    /// count and PRR's window not in force, cwnd is the controller's.
    /// The same checks otherwise, in the same order.
    #[inline(always)]
    fn can_send_quiet(&self) -> bool {
        debug_assert!(self.state == State::Established && self.sack.is_none());
        let Some(chunk) = self.send_queue.next_unsent() else {
            return false;
        };
        let reach = chunk.end().wrapping_sub(self.snd_una);
        let cwnd = self.cc.cwnd().min(self.knobs.max_cwnd);
        let in_cwnd = reach <= cwnd || self.frto_allows_new(chunk.seq);
        let new_data = chunk.end().gt(self.snd_max);
        if (new_data && reach > self.snd_wnd) || !in_cwnd {
            return false;
        }
        self.refilled_and_past_nagle(chunk)
    }

    /// Whether the next chunk fits both windows and passes Nagle.
    fn can_send_data(&self) -> bool {
        if !self.sending_state() {
            return false;
        }
        let Some(chunk) = self.send_queue.next_unsent() else {
            return false;
        };
        let reach = chunk.end().wrapping_sub(self.snd_una);
        // The sender never goes beyond the peer's window (RFC 9293
        // §3.8.6), nor beyond cwnd (RFC 5681 §3.1; during SACK recovery,
        // cwnd less pipe, RFC 6675 §5 step C).
        let in_cwnd = match self.sack_pipe() {
            Some(pipe) => pipe.saturating_add(chunk.len) <= self.cwnd(),
            None => reach <= self.cwnd(),
        } || self.frto_allows_new(chunk.seq);
        // Data sent before (a go-back-N resend after a timeout) lay within
        // the window the peer announced then, and that edge never moves
        // left (RFC 9293 §3.8.6): only new data is held to SND.WND, so a
        // window that looks smaller now cannot stall a retransmission.
        let new_data = chunk.end().gt(self.snd_max);
        if (new_data && reach > self.snd_wnd) || !in_cwnd {
            return false;
        }
        self.refilled_and_past_nagle(chunk)
    }

    /// The checks of the next chunk after the windows, shared by
    /// [`can_send_quiet`](Self::can_send_quiet) and
    /// [`can_send_data`](Self::can_send_data): a cut's short leftover is
    /// refilled first (`fit_window`), and Nagle (RFC 9293 §3.7.4) holds a
    /// small segment while data is unacknowledged, unless nodelay or it is
    /// the last before a FIN.
    #[inline(always)]
    fn refilled_and_past_nagle(&self, chunk: &Chunk<B>) -> bool {
        if chunk.short
            && self
                .send_queue
                .next_wants_refill(self.refill_target(chunk.seq))
        {
            return false;
        }
        let small = (chunk.len as usize) < self.neg.payload_max();
        let last_before_fin = self.fin_requested && self.send_queue.next_is_last();
        !small || self.knobs.nodelay || self.flight() == 0 || last_before_fin
    }

    /// Cuts the next chunk at the peer's window edge when the window is
    /// open but ends inside it, and a short segment may go (sender silly
    /// window syndrome avoidance, RFC 9293 §3.8.6.2.1): nothing is in
    /// flight (Nagle's rule at the window's edge, as Linux sends), or at
    /// least half the largest window the peer offered fits. Buffers for
    /// the cut come from `alloc`. Returns whether it cut; the caller then
    /// asks [`poll_transmit`](Self::poll_transmit) again. Without it a
    /// window smaller than the next chunk would hold the data until the
    /// persist timer, whose probe then overruns the window.
    ///
    /// ```
    /// use tpa::buf::{Pool, PoolBuf};
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// let pool = Pool::with_capacity(8).unwrap();
    /// // Nothing queued: nothing to cut.
    /// assert!(!conn.fit_window(&mut || pool.alloc()));
    /// ```
    #[inline]
    pub fn fit_window(&mut self, alloc: &mut dyn FnMut() -> Option<B>) -> bool {
        self.send_queue.next_unsent().is_some() && self.fit_window_cut(alloc)
    }

    #[inline(never)]
    fn fit_window_cut(&mut self, alloc: &mut dyn FnMut() -> Option<B>) -> bool {
        if !self.sending_state() {
            return false;
        }
        let Some(chunk) = self.send_queue.next_unsent() else {
            return false;
        };
        if chunk.short {
            // What the last cut left, shorter than a segment while data
            // follows it: filled up to what the window takes, so the
            // sender does not send a small segment it could avoid (RFC
            // 9293 §3.8.6.2.1, as Linux sends from one large buffer).
            let target = self.refill_target(chunk.seq);
            if self.send_queue.next_wants_refill(target) {
                self.send_queue.refill_next(target, alloc);
                return true;
            }
        }
        if self.snd_wnd > self.cwnd() {
            return false;
        }
        let edge = self.snd_una + self.snd_wnd;
        // Only new data is held to the window (see `can_send_data`), and
        // only a chunk the edge falls inside is cut.
        if !chunk.end().gt(self.snd_max) || !edge.gt(chunk.seq) || !chunk.end().gt(edge) {
            return false;
        }
        let usable = edge.wrapping_sub(chunk.seq);
        if self.flight() > 0 && usable.saturating_mul(2) < self.max_snd_wnd {
            return false;
        }
        let max = self.neg.payload_max();
        self.send_queue.split_next(usable, max, alloc)
    }

    /// How many bytes a segment starting at `seq` may carry: a full one,
    /// or less where the peer's window ends first.
    fn refill_target(&self, seq: SeqNumber) -> usize {
        let edge = self.snd_una + self.snd_wnd;
        let usable = if edge.gt(seq) {
            edge.wrapping_sub(seq)
        } else {
            0
        };
        self.neg.payload_max().min(usable as usize)
    }

    /// Whether the FIN goes out alone now.
    fn can_send_fin(&self) -> bool {
        self.fin_requested
            && !self.fin_sent
            && self.send_queue.all_sent()
            && matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
    }

    /// The window to announce (RFC 9293 §3.8.6.2.2, receiver SWS
    /// avoidance): the right edge moves right only by at least
    /// min(half the buffer, one full segment), never left.
    pub(super) fn announce_window(&mut self) -> u16 {
        let shift = self.neg.rcv_wscale;
        let max = self.neg.rcv_wnd_max;
        let free = (self.receive_queue.free() as u32).min(max);
        let cur = if self.rcv_adv.gt(self.rcv_nxt) {
            self.rcv_adv.wrapping_sub(self.rcv_nxt)
        } else {
            0
        };
        let threshold = self.neg.rcv_wnd_step;
        #[cfg(any(test, debug_assertions))]
        assert_eq!(
            (max, threshold),
            (
                u32::from(u16::MAX) << shift,
                (self.receive_queue.capacity() as u32 / 2)
                    .min(self.neg.rcv_payload_max() as u32)
                    .max(1)
            ),
            "the announced window's limits, as taken"
        );
        if free >= cur.saturating_add(threshold) || (free > cur && free == max) {
            let wnd = free & !((1u32 << shift) - 1);
            let edge = self.rcv_nxt + wnd;
            if edge.gt(self.rcv_adv) {
                self.rcv_adv = edge;
            }
        }
        let wnd = self.rcv_adv.wrapping_sub(self.rcv_nxt);
        if self.rcv_adv.lt(self.rcv_nxt) {
            return 0;
        }
        (wnd >> shift).min(u32::from(u16::MAX)) as u16
    }

    /// The window a SYN announces: unscaled (RFC 7323 §2.2).
    pub(super) fn syn_window(&self) -> u32 {
        (self.receive_queue.free() as u32).min(u32::from(u16::MAX))
    }

    /// Our SYN or SYN-ACK, with the options offered (SYN) or agreed (SYN-ACK).
    fn syn_segment(&mut self, now_ns: u64) -> SegmentOut<B> {
        self.pending.syn = false;
        let syn_ack = self.state == State::SynReceived;
        let window = self.syn_window();
        let ts = self.neg.offer_ts.then(|| {
            let tsecr = if syn_ack { self.ts_recent } else { 0 };
            (self.ts_now(now_ns), tsecr)
        });
        let options = OptionsOut {
            mss: Some(self.neg.our_mss),
            window_scale: self.neg.offer_wscale,
            sack_permitted: self.neg.offer_sack,
            timestamps: ts,
            sack: None,
        };
        if self.retries > 0 {
            self.stats.total_retrans += 1;
            self.rtt_timed = None;
        } else if !self.neg.ts && self.rtt_timed.is_none() {
            self.rtt_timed = Some((self.iss + 1, now_ns));
        }
        self.snd_max = self.iss + 1;
        if self.timers.rto.is_stopped() {
            self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
        }
        let mut flags = TcpFlags::SYN;
        let mut ack = SeqNumber::default();
        if syn_ack {
            flags |= TcpFlags::ACK;
            ack = self.rcv_nxt;
            self.last_ack_sent = self.rcv_nxt;
            let edge = self.rcv_nxt + window;
            if edge.gt(self.rcv_adv) {
                self.rcv_adv = edge;
            }
        }
        SegmentOut {
            seq: self.iss,
            ack,
            flags,
            window: window as u16,
            options,
            payload: None,
        }
    }

    /// A segment with ACK set and the current window and timestamps;
    /// sending it settles any ACK owed.
    fn with_ack(
        &mut self,
        seq: SeqNumber,
        flags: TcpFlags,
        payload: Option<tpa::buf::Shared<B>>,
        now_ns: u64,
    ) -> SegmentOut<B> {
        let window = self.announce_window();
        self.pending.ack_now = false;
        self.pending.challenge = false;
        self.pending.dup_acks = 0;
        self.timers.delayed_ack = Deadline::STOPPED;
        self.unacked_bytes = 0;
        self.last_ack_sent = self.rcv_nxt;
        // Nothing to report (no D-SACK owed, nothing held out of order:
        // every segment of an in-order exchange) means no blocks, whatever
        // the room; the blocks are worked out only otherwise.
        let sack = if self.dsacks.is_empty() && self.reassembly.is_empty() {
            None
        } else {
            self.sack_option(payload.as_ref().map_or(0, |p| p.total_len()))
        };
        let options = OptionsOut {
            timestamps: self.neg.ts.then(|| (self.ts_now(now_ns), self.ts_recent)),
            sack,
            ..OptionsOut::default()
        };
        SegmentOut {
            seq,
            ack: self.rcv_nxt,
            flags: flags | TcpFlags::ACK,
            window,
            options,
            payload,
        }
    }

    /// The SACK option of a segment with `payload_len` bytes of data
    /// while a D-SACK report is owed or data is held out of order; a
    /// report that cannot go with a pure ACK is dropped. Out of line:
    /// only for a connection seeing loss or reordering.
    #[cold]
    #[inline(never)]
    fn sack_option(&mut self, payload_len: usize) -> Option<SackBlocks> {
        // RFC 2018 §3: as many blocks as fit beside the timestamps, and
        // beside the payload: options and data together stay within the
        // peer's MSS (RFC 9293 §3.7.1), so a full-sized segment carries
        // none (the blocks are advisory; the next pure ACK has them).
        let ts_len = if self.neg.ts { 12 } else { 0 };
        let room = usize::from(self.neg.snd_mss).saturating_sub(payload_len + ts_len);
        let fit = room.saturating_sub(4) / 8; // NOP NOP kind len, then 8 a block
        let max = fit.min(if self.neg.ts { 3 } else { 4 });
        if self.neg.sack && max > 0 {
            match self.dsacks.pop() {
                Some(dup) => self.reassembly.sack_blocks_after(dup, max),
                None => self.reassembly.sack_blocks(max),
            }
        } else {
            if payload_len == 0 {
                // A report a pure ACK cannot carry is dropped: it must
                // not keep asking for ACKs.
                self.dsacks.pop();
            }
            None
        }
    }

    /// Bookkeeping for a segment that takes sequence space: SND.MAX, the
    /// retransmission timer (RFC 6298 §5.1), Karn's rule.
    fn note_sent(&mut self, seq: SeqNumber, len: u32, now_ns: u64) {
        self.prr_sent(len);
        let (_, new_data) = self.book_sent(seq, len, now_ns);
        if new_data {
            // New data: the probe timeout restarts (RFC 8985 §7.2).
            self.rack_arm_pto(now_ns);
        }
    }

    /// What every segment `[seq, seq + len)` that takes sequence space
    /// books, whatever path sent it: SND.MAX (and an RTT timing when
    /// timestamps are off) for new data, Karn's rule for a
    /// retransmission, the retransmission timer started if stopped.
    /// Returns the segment's end and whether it carried new data.
    #[inline(always)]
    fn book_sent(&mut self, seq: SeqNumber, len: u32, now_ns: u64) -> (SeqNumber, bool) {
        let end = seq + len;
        let new_data = end.gt(self.snd_max);
        if new_data {
            if !self.neg.ts && self.rtt_timed.is_none() && seq.ge(self.snd_max) {
                self.rtt_timed = Some((end, now_ns));
            }
            self.snd_max = end;
        } else {
            // RFC 6298 §3 (Karn): a retransmission is not timed, and the
            // timing in progress may now be ambiguous.
            self.rtt_timed = None;
            self.stats.total_retrans += 1;
        }
        if self.timers.rto.is_stopped() {
            self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
        }
        (end, new_data)
    }

    /// [`note_sent`](Self::note_sent) for [`quiet_data`](Self::quiet_data)'s
    /// chunk `[seq, seq + len)` on a plain connection: no PRR to count
    /// (no recovery), and new data it sent fit the peer's open window,
    /// so a probe may be armed: owed by the `pass`, armed at its end
    /// ([`end_quiet_pass`](Self::end_quiet_pass)). Returns the segment's
    /// end, where the next transmission starts.
    #[inline(always)]
    fn quiet_note_sent(
        &mut self,
        seq: SeqNumber,
        len: u32,
        now_ns: u64,
        pass: &mut QuietPass,
    ) -> SeqNumber {
        debug_assert!(self.recovery.is_none(), "a plain connection");
        let (end, new_data) = self.book_sent(seq, len, now_ns);
        if new_data && self.rack_active() {
            pass.pto_owed = true;
        }
        end
    }

    /// Ends the straight path's `pass` at `now_ns` (the time it ran at):
    /// the probe timeout its new data restarts, armed once
    /// ([`rack_arm_pto_probing`](Self::rack_arm_pto_probing)). Every way
    /// out of a pass comes here before the connection is settled or
    /// asked anything else.
    #[inline(always)]
    pub(crate) fn end_quiet_pass(&mut self, now_ns: u64, pass: &mut QuietPass) {
        if pass.pto_owed {
            pass.pto_owed = false;
            self.rack_arm_pto_probing(now_ns);
        }
    }

    /// The next chunk, as a segment (with the FIN when it is the last and
    /// the application shut down).
    fn data_segment(&mut self, now_ns: u64) -> SegmentOut<B> {
        let last = self.send_queue.next_is_last();
        let snd_max = self.snd_max;
        // The chunk looked up once: taken, and stamped for RACK (as
        // `rack_stamp` does).
        let Some((seq, len, buf, first_ns)) = self.send_queue.next_unsent_mut().map(|c| {
            let resent = c.end().le(snd_max);
            c.rexmit |= resent;
            c.sent_ns = now_ns;
            // The write's stamp, at its first transmission only.
            let first_ns = if resent { 0 } else { c.written_ns };
            (c.seq, c.len, c.buf.clone(), first_ns)
        }) else {
            // `can_send_data` found a chunk; an ACK is harmless otherwise.
            return self.with_ack(self.snd_max, TcpFlags(0), None, now_ns);
        };
        if first_ns != 0 {
            if let Some(lat) = self.latency.as_deref_mut() {
                lat.write_sent.record(now_ns.saturating_sub(first_ns));
            }
        }
        self.cwv_before_send(now_ns);
        self.send_queue.advance();
        self.frto_sent_new(seq);
        if self.rack_active() {
            self.skip_sacked_resends();
        }
        let mut flags = TcpFlags(0);
        let mut seq_len = len;
        if last {
            flags |= TcpFlags::PSH;
            if self.fin_requested {
                flags |= TcpFlags::FIN;
                self.fin_sent = true;
                seq_len += 1;
            }
        }
        self.note_sent(seq, seq_len, now_ns);
        self.cwv_after_send();
        self.with_ack(seq, flags, Some(buf), now_ns)
    }

    /// The chunk NextSeg picked during SACK recovery.
    fn sack_retransmit(&mut self, now_ns: u64) -> SegmentOut<B> {
        let can_send_data = self.can_send_data();
        let picked = self.sack_retransmission(can_send_data).and_then(|n| {
            let c = self.send_queue.get(n.index)?;
            Some((n, c.seq, c.buf.clone()))
        });
        let Some((next, seq, buf)) = picked else {
            return self.with_ack(self.snd_max, TcpFlags(0), None, now_ns);
        };
        self.rack_stamp(next.index, now_ns);
        self.sack_mark(next);
        self.prr_sent(next.range.len());
        self.stats.total_retrans += 1;
        self.stats.sack_retransmits += 1;
        self.rtt_timed = None;
        if self.timers.rto.is_stopped() {
            self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
        }
        self.with_ack(seq, TcpFlags(0), Some(buf), now_ns)
    }

    /// The tail loss probe (RFC 8985 §7.3): a new chunk when the peer's
    /// window takes it (cwnd aside), else the last chunk sent (with the
    /// FIN if it went with it), else the FIN alone; the RTO was restarted
    /// when the PTO fired.
    fn tail_loss_probe(&mut self, now_ns: u64) -> SegmentOut<B> {
        if let Some(r) = self.rack.as_deref_mut() {
            r.probe_due = false;
            r.pto_deadline = Deadline::STOPPED;
        }
        let new_fits = self.send_queue.next_unsent().is_some_and(|c| {
            c.end().gt(self.snd_max) && c.end().wrapping_sub(self.snd_una) <= self.snd_wnd
        });
        let (seg, is_retrans) = if new_fits && self.sending_state() {
            (self.data_segment(now_ns), false)
        } else if let Some(index) = self.send_queue.next_index().checked_sub(1) {
            self.rack_stamp(index, now_ns);
            let last_in_queue = index + 1 == self.send_queue.len();
            let Some((seq, buf)) = self.send_queue.get(index).map(|c| (c.seq, c.buf.clone()))
            else {
                return self.with_ack(self.snd_max, TcpFlags(0), None, now_ns);
            };
            let fin = last_in_queue && self.fin_sent;
            let flags = if fin { TcpFlags::FIN } else { TcpFlags(0) };
            self.stats.total_retrans += 1;
            self.rtt_timed = None;
            (self.with_ack(seq, flags, Some(buf), now_ns), true)
        } else if self.fin_sent && !self.fin_acked {
            self.stats.total_retrans += 1;
            self.rtt_timed = None;
            let seq = self.send_queue.end();
            (self.with_ack(seq, TcpFlags::FIN, None, now_ns), true)
        } else {
            return self.with_ack(self.snd_max, TcpFlags(0), None, now_ns);
        };
        let end_seq = self.snd_max;
        self.note_rare();
        if let Some(r) = self.rack.as_deref_mut() {
            r.stats.tlp_probes += 1;
            r.probe = Some(super::rack::Probe {
                end_seq,
                is_retrans,
            });
            r.pto_deadline = Deadline::STOPPED;
        }
        seg
    }

    /// The oldest chunk again (fast retransmit, partial ACK), or the FIN.
    fn retransmit_front(&mut self, now_ns: u64) -> SegmentOut<B> {
        self.stats.total_retrans += 1;
        self.rtt_timed = None;
        if self.in_sack_recovery() {
            if let Some(front) = self.front_as_next_seg() {
                self.sack_mark(front);
                self.prr_sent(front.range.len());
            }
        }
        self.rack_stamp(0, now_ns);
        match self.send_queue.front() {
            Some(c) => {
                let (seq, buf) = (c.seq, c.buf.clone());
                let fin = self.send_queue.front_is_last() && self.fin_sent;
                let flags = if fin { TcpFlags::FIN } else { TcpFlags(0) };
                self.with_ack(seq, flags, Some(buf), now_ns)
            }
            None => {
                let seq = self.send_queue.end();
                self.with_ack(seq, TcpFlags::FIN, None, now_ns)
            }
        }
    }
}
