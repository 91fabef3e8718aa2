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
use tpa::wire::tcp::TcpFlags;

use super::super::segment::SegmentIn;
use super::super::seq::SeqNumber;
use super::Connection;

impl<B: PacketBuf> Connection<B> {
    /// Whether `seg`, for this ESTABLISHED connection, may take the fast
    /// path: ACK (± PSH) only; SEG.SEQ = RCV.NXT; timestamps exactly when
    /// agreed, their TSval not older than TS.Recent (PAWS passes), no
    /// SACK blocks; SND.UNA ≤ SEG.ACK ≤ SND.MAX; nothing rare under way
    /// ([`plain`](Self::plain): no scoreboard, recovery, F-RTO, probe,
    /// out-of-order FIN or data, timeout) and no FIN of ours; and either
    /// a new ACK without data or data that fits the window and the
    /// receive queue. `len` is the segment's payload length
    /// (`seg.data_len()`, which the caller took: for a chained payload a
    /// walk over its segments, done once).
    #[inline]
    pub(super) fn predicted(&self, seg: &SegmentIn<B>, len: u32) -> bool {
        if !self.knobs.header_prediction
            || seg.flags.0 & !TcpFlags::PSH.0 != TcpFlags::ACK.0
            || seg.seq != self.rcv_nxt
            || seg.options.sack.is_some()
        {
            return false;
        }
        let ts_ok = match (self.neg.ts, seg.options.timestamps) {
            (true, Some((tsval, _))) => SeqNumber::new(tsval).ge(SeqNumber::new(self.ts_recent)),
            (false, None) => true,
            _ => false,
        };
        // No scoreboard, recovery, F-RTO, probe, out-of-order FIN or
        // data (`conn::plain`), no FIN of ours.
        let quiet = self.plain() && !self.fin_requested;
        if !ts_ok || !quiet || !seg.ack.is_between(self.snd_una, self.snd_max + 1) {
            return false;
        }
        match &seg.payload {
            None => seg.ack != self.snd_una,
            Some(_) => {
                let len = len as usize;
                !self.app_closed
                    && len <= self.rcv_adv.wrapping_sub(self.rcv_nxt) as usize
                    && len <= self.receive_queue.free()
            }
        }
    }

    /// A [`predicted`](Self::predicted) segment of `len` payload bytes:
    /// what the full path does for it, without the checks that cannot
    /// fire.
    pub(super) fn on_segment_predicted(&mut self, seg: SegmentIn<B>, len: u32, now_ns: u64) {
        self.stats.segs_predicted += 1;
        // The peer is alive: keepalive's idle time starts again.
        self.keepalive_sent = 0;
        self.probes_unanswered = 0;
        self.arm_keepalive(now_ns);
        // The ACK field. With no scoreboard, recovery or probe, an ACK
        // that acknowledges nothing new (in-order data) changes nothing
        // in the loss machinery; a new one goes through RACK (what it
        // delivered, before SND.UNA moves) and SND.UNA's advance.
        let window = u32::from(seg.window) << self.neg.snd_wscale;
        let advanced = seg.ack.gt(self.snd_una);
        if advanced {
            let released = self.rack_on_cumulative_ack(seg.ack, now_ns);
            self.on_new_ack::<true>(&seg, released, now_ns);
        }
        self.update_send_window(&seg, window, advanced);
        if self.rack_active() {
            // No scoreboard, so no chunk is SACKed: `skip_sacked_resends`
            // (the full path's) has nothing to skip.
            debug_assert!(self.send_queue.iter().all(|c| !c.sacked));
            self.rack_after_ack(advanced, now_ns);
        }
        // TS.Recent (RFC 7323 §4.3), as the full path takes it.
        if let Some((tsval, _)) = seg.options.timestamps {
            if seg.seq.le(self.last_ack_sent) {
                self.ts_recent = tsval;
                self.ts_recent_ns = now_ns;
            }
        }
        // The text: in order, and it fits.
        if let Some(payload) = seg.payload {
            self.deliver(payload, len as usize);
            self.schedule_ack(false, now_ns);
        }
    }
}
