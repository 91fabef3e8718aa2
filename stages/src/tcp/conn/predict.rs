//! Header prediction: the input fast path (Van Jacobson's, Linux's
//! `tcp_rcv_established`). Nearly every segment an ESTABLISHED
//! connection gets is the next one in sequence, with only ACK (and maybe
//! PSH) set, the option layout agreed in the handshake, and an ACK that
//! acknowledges new data or none: in-order data, or a new ACK. When no
//! loss recovery, SACK scoreboard, F-RTO or loss probe is under way, the
//! full path's checks (sequence acceptability, RST, SYN, RFC 5961's ACK
//! range, duplicate ACKs, the scoreboard, RACK's loss detection, PRR,
//! the FIN) have nothing to do for such a segment: [`predicted`] says
//! so, and [`on_segment_predicted`] does only what remains, straight
//! through, in the full path's order, calling the same helpers. It must
//! leave the connection exactly as the full path would (the engine's
//! tests run seeded transfers both ways and compare every segment and
//! the state after every step); anything it is not sure of goes the
//! full way.
//!
//! Its point is size as much as count: the code one segment runs
//! through is what has to stay in the instruction cache.
//!
//! [`predicted`]: Connection::predicted
//! [`on_segment_predicted`]: Connection::on_segment_predicted

use tpa::buf::PacketBuf;
use tpa::wire::tcp::{TcpFlags, TcpOptionSet};

use super::super::segment::SegmentIn;
use super::super::seq::SeqNumber;
use super::super::wire::{CheckedHeader, SegmentShape};
use super::Connection;

#[cfg(test)]
thread_local! {
    /// Tests: whether [`Connection::on_answer_predicted`] takes its leaf
    /// (else it hands every segment to `on_segment_predicted`), and how
    /// many segments it took.
    pub(super) static ANSWER_LEAF: core::cell::Cell<(bool, u64)> =
        const { core::cell::Cell::new((true, 0)) };
}

/// Whether [`Connection::on_answer_predicted`] takes its leaf: always,
/// but in the test that compares it with the path it stands for.
#[inline(always)]
fn answer_leaf_on() -> bool {
    #[cfg(test)]
    {
        let (on, taken) = ANSWER_LEAF.get();
        ANSWER_LEAF.set((on, taken + u64::from(on)));
        on
    }
    #[cfg(not(test))]
    true
}

/// A received segment's header as header prediction reads it: a
/// [`SegmentIn`]'s, or the input stage's checked header read in place
/// (no copy of it built for the connection).
pub(crate) trait SegmentHeader {
    /// SEG.SEQ.
    fn seq(&self) -> SeqNumber;
    /// SEG.ACK.
    fn ack(&self) -> SeqNumber;
    /// The control bits.
    fn flags(&self) -> TcpFlags;
    /// SEG.WND as on the wire, not yet scaled.
    fn window(&self) -> u16;
    /// The options.
    fn options(&self) -> &TcpOptionSet;
}

impl<B> SegmentHeader for SegmentIn<B> {
    #[inline(always)]
    fn seq(&self) -> SeqNumber {
        self.seq
    }

    #[inline(always)]
    fn ack(&self) -> SeqNumber {
        self.ack
    }

    #[inline(always)]
    fn flags(&self) -> TcpFlags {
        self.flags
    }

    #[inline(always)]
    fn window(&self) -> u16 {
        self.window
    }

    #[inline(always)]
    fn options(&self) -> &TcpOptionSet {
        &self.options
    }
}

impl SegmentHeader for CheckedHeader {
    #[inline(always)]
    fn seq(&self) -> SeqNumber {
        SeqNumber::new(self.seq)
    }

    #[inline(always)]
    fn ack(&self) -> SeqNumber {
        SeqNumber::new(self.ack)
    }

    #[inline(always)]
    fn flags(&self) -> TcpFlags {
        self.flags
    }

    #[inline(always)]
    fn window(&self) -> u16 {
        self.window
    }

    #[inline(always)]
    fn options(&self) -> &TcpOptionSet {
        &self.options
    }
}

impl<B: PacketBuf> Connection<B> {
    /// Whether `seg`, for this ESTABLISHED connection, may take the fast
    /// path: ACK (± PSH) only, no SACK blocks, timestamps exactly when
    /// agreed (the header's [`SegmentShape`], compared with the one this
    /// connection predicts, `predict_shape`: see
    /// [`predict_shape_long`](Self::predict_shape_long); `NONE` unless prediction is allowed, nothing rare is
    /// under way ([`plain`](Self::plain): no scoreboard, recovery,
    /// F-RTO, probe, out-of-order FIN or data, timeout) and no FIN of
    /// ours is asked for); SEG.SEQ = RCV.NXT; the TSval not older than
    /// TS.Recent (PAWS passes); SND.UNA ≤ SEG.ACK ≤ SND.MAX; and either a
    /// new ACK without data or data that fits the window and the receive
    /// queue. `payload`: whether the segment has one (a buffer, maybe
    /// empty); `len` is its length (`seg.data_len`, which the input
    /// stage took).
    #[inline]
    pub(super) fn predicted(&self, seg: &CheckedHeader, payload: bool, len: u32) -> bool {
        #[cfg(any(test, debug_assertions))]
        assert_eq!(
            self.predict_shape,
            self.predict_shape_long(),
            "predicted shape stale"
        );
        #[cfg(any(test, debug_assertions))]
        assert_eq!(seg.shape, SegmentShape::of(seg.flags, &seg.options));
        if seg.shape != self.predict_shape || seg.seq() != self.rcv_nxt {
            return false;
        }
        // The shape says timestamps are there exactly when agreed.
        let paws_ok = match seg.options.timestamps {
            Some((tsval, _)) => SeqNumber::new(tsval).ge(SeqNumber::new(self.ts_recent)),
            None => true,
        };
        if !paws_ok || !seg.ack().is_between(self.snd_una, self.snd_max + 1) {
            return false;
        }
        if !payload {
            return seg.ack() != self.snd_una;
        }
        let len = len as usize;
        !self.app_closed
            && len <= self.rcv_adv.wrapping_sub(self.rcv_nxt) as usize
            && len <= self.receive_queue.free()
    }

    /// The long form of `predict_shape`: the shape of a predictable
    /// header on this connection (timestamped when they are agreed) if
    /// prediction is allowed, [`plain`](Self::plain) and no FIN of ours
    /// is asked for; else `NONE`.
    fn predict_shape_long(&self) -> SegmentShape {
        if self.knobs.header_prediction && self.plain() && !self.fin_requested {
            SegmentShape::predictable(self.neg.ts)
        } else {
            SegmentShape::NONE
        }
    }

    /// Takes `predict_shape` again: after every change of a field
    /// [`predict_shape_long`](Self::predict_shape_long) reads (the knob,
    /// the plain flag, a FIN asked for, the timestamps agreed).
    #[inline]
    pub(super) fn refresh_predicting(&mut self) {
        self.predict_shape = self.predict_shape_long();
    }

    /// A [`predicted`](Self::predicted) segment, header `seg` and
    /// `payload` of `len` bytes: in-order data that acknowledges nothing
    /// new (a bulk receiver's every segment) takes
    /// [`on_data_predicted`](Self::on_data_predicted), inline in the
    /// caller; data whose ACK covers everything sent (a request's answer)
    /// [`on_answer_predicted`](Self::on_answer_predicted); the rest
    /// [`on_segment_predicted`](Self::on_segment_predicted).
    /// Returns whether the segment's ACK may have released a chunk (the
    /// spare buffer [`take_spare_send_buf`](Self::take_spare_send_buf)
    /// hands out): not for data acknowledging nothing new.
    #[inline(always)]
    pub(crate) fn on_predicted(
        &mut self,
        seg: &CheckedHeader,
        payload: Option<B>,
        len: u32,
        now_ns: u64,
    ) -> bool {
        match payload {
            Some(payload) if seg.ack() == self.snd_una => {
                self.on_data_predicted(seg, payload, len, now_ns);
                false
            }
            Some(payload) if seg.ack() == self.snd_max => {
                self.on_answer_predicted(seg, payload, len, now_ns);
                true
            }
            payload => {
                self.on_segment_predicted(seg, payload, len, now_ns);
                true
            }
        }
    }

    /// [`on_segment_predicted`](Self::on_segment_predicted) of in-order
    /// data whose ACK is SND.UNA: nothing new acknowledged, so no RACK
    /// walk, no SND.UNA advance, no RTT sample; the window, RACK's probe
    /// timer, TS.Recent, the text and the ACK's schedule as that path
    /// takes them (the text first: nothing between reads what it
    /// changes). A leaf: what would need a call (the
    /// socket trace, latency stamps, keepalive's timer, the receive
    /// queue's storage growing) is rare, and tested once at the top,
    /// which hands such a segment to `on_segment_predicted` (a tail
    /// call); so is the persist timer's slow case, at the very end.
    #[inline(never)]
    fn on_data_predicted(&mut self, seg: &CheckedHeader, payload: B, len: u32, now_ns: u64) {
        debug_assert!(len > 0 && seg.ack() == self.snd_una);
        if !self.lean_receive() {
            return self.on_segment_predicted(seg, Some(payload), len, now_ns);
        }
        // `segment_seen` without the trace (off).
        self.clock_ns = self.clock_ns.max(now_ns);
        self.stats.segs_in += 1;
        self.stats.segs_predicted += 1;
        // SEG.SEQ = RCV.NXT and SEG.ACK = SND.UNA (the prediction and
        // the dispatch): the connection's own fields, which the window
        // update's tests then read as known.
        let (seq, ack) = (self.rcv_nxt, self.snd_una);
        debug_assert!(seq == seg.seq() && ack == seg.ack());
        // The text first, where the queue's free slot is known (no store
        // through another pointer since the test): nothing before the
        // ACK's schedule reads what it changes (SEG.SEQ is taken above).
        self.stats.data_segs_in += 1;
        self.deliver_data(payload, len as usize);
        // The peer is alive; keepalive is off, so no timer to restart.
        self.keepalive_sent = 0;
        self.probes_unanswered = 0;
        let window = u32::from(seg.window()) << self.neg.snd_wscale;
        self.update_send_window(seq, ack, window, false);
        if self.rack_active() {
            debug_assert!(self.send_queue.iter().all(|c| !c.sacked));
            self.rack_after_ack(false, self.snd_una == self.snd_max, now_ns);
        }
        if let Some((tsval, _)) = seg.options().timestamps {
            if seq.le(self.last_ack_sent) {
                self.ts_recent = tsval;
                self.ts_recent_ns = now_ns;
            }
        }
        self.schedule_ack(false, now_ns);
        // `segment_done`: the connection stays plain (nothing above
        // notes a rare case), so `settle_plain` has nothing to do, and
        // the trace is off.
        debug_assert!(self.plain);
        self.update_persist(now_ns);
    }

    /// [`on_segment_predicted`](Self::on_segment_predicted) of in-order
    /// data whose ACK covers everything sent (SEG.ACK = SND.MAX > SND.UNA:
    /// a request's answer) when the send queue holds one chunk, sent once,
    /// ending there: RACK's part for that one chunk and its release, then
    /// the ACK's advance, with no walk. The steps the full path takes, in
    /// an order that holds fewer of them at once: the window and
    /// TS.Recent first (the advance reads neither), the text next (nothing
    /// after reads what it changes; SEG.SEQ is taken before), then the
    /// chunk, read once. A leaf like
    /// [`on_data_predicted`](Self::on_data_predicted): anything else (the
    /// trace, latency stamps, keepalive, the receive queue's storage
    /// growing, no RACK state, more chunks or a retransmitted one) is
    /// tested once at the top and goes to `on_segment_predicted` (a tail
    /// call).
    #[inline(never)]
    fn on_answer_predicted(&mut self, seg: &CheckedHeader, payload: B, len: u32, now_ns: u64) {
        let ack = seg.ack();
        debug_assert!(len > 0 && ack == self.snd_max && ack.gt(self.snd_una));
        let sent_ns = match self.send_queue.sole() {
            Some(c)
                if self.lean_receive()
                    && self.rack_active()
                    && self.rack.is_some()
                    && self.send_queue.end() == ack
                    && !c.rexmit
                    && answer_leaf_on() =>
            {
                // No scoreboard (the connection is plain), so not SACKed.
                debug_assert!(!c.sacked && c.end() == ack && c.len > 0);
                c.sent_ns
            }
            _ => return self.on_segment_predicted(seg, Some(payload), len, now_ns),
        };
        // `segment_seen` without the trace (off).
        self.clock_ns = self.clock_ns.max(now_ns);
        self.stats.segs_in += 1;
        self.stats.segs_predicted += 1;
        // The peer is alive; keepalive is off, so no timer to restart.
        self.keepalive_sent = 0;
        self.probes_unanswered = 0;
        // SEG.SEQ = RCV.NXT (the prediction).
        let seq = self.rcv_nxt;
        debug_assert!(seq == seg.seq());
        let window = u32::from(seg.window()) << self.neg.snd_wscale;
        self.update_send_window(seq, ack, window, true);
        if let Some((tsval, _)) = seg.options().timestamps {
            if seq.le(self.last_ack_sent) {
                self.ts_recent = tsval;
                self.ts_recent_ns = now_ns;
            }
        }
        self.stats.data_segs_in += 1;
        self.deliver_data(payload, len as usize);
        self.rack_on_sole_ack(ack, sent_ns, now_ns);
        self.send_queue.release_sole();
        self.on_new_ack::<true>(ack, seg.options().timestamps, true, true, now_ns);
        self.rack_after_ack(true, true, now_ns);
        self.schedule_ack(false, now_ns);
        // `segment_done`: the connection stays plain and the trace is off.
        debug_assert!(self.plain);
        self.update_persist_with(true, now_ns);
    }

    /// Whether [`on_data_predicted`](Self::on_data_predicted) may take
    /// its leaf path: no socket trace, no latency stamps, keepalive off
    /// and a free slot in the receive queue's storage.
    #[inline(always)]
    fn lean_receive(&self) -> bool {
        self.trace.is_none()
            && self.latency.is_none()
            && !self.knobs.keepalive
            && self.receive_queue.has_slot()
    }

    /// A [`predicted`](Self::predicted) segment, header `seg` and
    /// `payload` of `len` bytes: what the full path does for it, without
    /// the checks that cannot fire, from its arrival to what every
    /// segment last does. One instance, for the input stage's checked
    /// header (a [`SegmentIn`] is turned into one): the ACK's helpers
    /// it calls stay inlined in it.
    #[inline(never)]
    pub(crate) fn on_segment_predicted(
        &mut self,
        seg: &CheckedHeader,
        payload: Option<B>,
        len: u32,
        now_ns: u64,
    ) {
        // A payload exactly when there are bytes (as the input stage
        // hands it, and `on_segment` lets through).
        debug_assert_eq!(payload.is_some(), len > 0);
        self.segment_seen(seg, len, now_ns);
        self.stats.segs_predicted += 1;
        // The peer is alive: keepalive's idle time starts again.
        self.keepalive_sent = 0;
        self.probes_unanswered = 0;
        self.arm_keepalive(now_ns);
        // The ACK field. With no scoreboard, recovery or probe, an ACK
        // that acknowledges nothing new (in-order data) changes nothing
        // in the loss machinery; a new one goes through RACK (what it
        // delivered, before SND.UNA moves) and SND.UNA's advance.
        let (seq, ack, timestamps) = (seg.seq(), seg.ack(), seg.options().timestamps);
        let window = u32::from(seg.window()) << self.neg.snd_wscale;
        let advanced = ack.gt(self.snd_una);
        // Whether nothing stays in flight: SEG.ACK is SND.UNA after the
        // segment (advanced or not), and SND.MAX does not move here.
        let all_acked = ack == self.snd_max;
        // The window and TS.Recent (RFC 7323 §4.3) before the ACK's
        // advance, which reads neither (nor the persist timer the window
        // may stop), and whose RACK and RTT steps they do not read: the
        // same state after both as in the full path's order, with fewer
        // of the header's fields held across the advance. A new ACK
        // always takes the window (`update_send_window`'s first test
        // holds before SND.UNA moves as after).
        self.update_send_window(seq, ack, window, advanced);
        if let Some((tsval, _)) = timestamps {
            if seq.le(self.last_ack_sent) {
                self.ts_recent = tsval;
                self.ts_recent_ns = now_ns;
            }
        }
        if advanced {
            let released = self.rack_on_cumulative_ack(ack, now_ns);
            self.on_new_ack::<true>(ack, timestamps, released, false, now_ns);
        }
        if self.rack_active() {
            // No scoreboard, so no chunk is SACKed: `skip_sacked_resends`
            // (the full path's) has nothing to skip.
            debug_assert!(self.send_queue.iter().all(|c| !c.sacked));
            self.rack_after_ack(advanced, all_acked, now_ns);
        }
        // The text: in order, and it fits.
        if let Some(payload) = payload {
            self.stats.data_segs_in += 1;
            self.deliver_data(payload, len as usize);
            self.schedule_ack(false, now_ns);
        }
        // `segment_done`, with what is known of SND.UNA and SND.MAX.
        self.update_persist_with(all_acked, now_ns);
        self.settle_plain();
        self.trace_changes(now_ns);
    }
}
