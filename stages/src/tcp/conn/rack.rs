//! RACK-TLP (RFC 8985): loss detection by time, and tail loss probes.
//!
//! RACK ("recent ACK", §6) remembers when each chunk was last sent (the
//! send queue stamps it) and, on every ACK, which delivered chunk was sent
//! last (`RACK.xmit_ts`, `RACK.end_seq`) and how long its round trip took
//! (`RACK.rtt`). A chunk sent before that one and still not delivered
//! `RACK.rtt + RACK.reo_wnd` after it went out is lost: one SACKed segment
//! sent later is enough, where RFC 6675 waits for three. The reordering
//! window `reo_wnd` is a quarter of the least RTT seen, zero until
//! reordering was seen once three segments are SACKed or recovery runs
//! (which makes RACK as quick as DupThresh there), grown by each round
//! that brings a D-SACK (§6.2 step 4). A chunk that is not late yet arms
//! the reordering timer for when it will be.
//!
//! RACK's verdicts go to the SACK scoreboard (`tcp::sack`, set to decide
//! losses by time): NextSeg resends the lost chunks, pipe leaves them out,
//! and a first loss starts the recovery (with PRR) as three duplicate ACKs
//! did. Without SACK blocks from the peer there is nothing to compare, and
//! the RFC 6675 path runs as before.
//!
//! TLP (tail loss probe, §7): while data is outstanding outside recovery,
//! a probe timeout (PTO, about two RTTs) runs ahead of the RTO. When it
//! fires, one segment goes out (new data when the window allows, else the
//! last one sent again) so that the ACK it draws lets SACK and RACK repair
//! a tail loss in about an RTT instead of a timeout. The probe's ACK says
//! whether a loss happened (§7.4): an ACK beyond it without a D-SACK means
//! the probe repaired one, and the window is reduced as in fast recovery.
//!
//! After a timeout the chunks the peer SACKed keep their mark (§6.3,
//! unless the peer looks to have reneged), so the go-back-N resend skips
//! them.

use tpa::buf::PacketBuf;

use super::super::cc::CongestionControl;
use super::super::sack::DUP_THRESH;
use super::super::segment::SegmentIn;
use super::super::seq::{SeqNumber, SeqRange};
use super::send_queue::Chunk;
use super::timers::Deadline;
use super::Connection;

/// The receiver's worst-case delayed ACK the PTO allows for when one
/// segment is in flight (RFC 8985 §7.2: WCDelAckT, 200 ms).
pub(super) const WC_DEL_ACK_NS: u64 = 200_000_000;

/// The PTO before any RTT sample (RFC 8985 §7.2: 1 s).
const PTO_NO_RTT_NS: u64 = 1_000_000_000;

/// The least PTO (Linux's `TCP_TIMEOUT_MIN`, two jiffies): a PTO of 0
/// after an RTT of 0 on a local link would probe at once.
const PTO_MIN_NS: u64 = 2_000_000;

/// Recoveries without a D-SACK before a widened reordering window goes
/// back to its base (RFC 8985 §6.2 step 4: 16).
const REO_WND_PERSIST: u8 = 16;

/// The most the reordering window is multiplied by (it is capped by SRTT
/// anyway).
const REO_WND_MULT_MAX: u8 = 64;

/// A tail loss probe in flight (RFC 8985 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Probe {
    /// TLP.end_seq: SND.NXT when the probe went out.
    pub(super) end_seq: SeqNumber,
    /// TLP.is_retrans: the probe resent data rather than sent new data.
    pub(super) is_retrans: bool,
}

/// RACK-TLP's state for one connection (made at its first transmission:
/// an idle connection pays a pointer).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rack {
    /// RACK.xmit_ts and RACK.end_seq: the delivered chunk sent last.
    delivered: Option<(u64, SeqNumber)>,
    /// RACK.rtt: the round trip of that chunk.
    rtt_ns: u64,
    /// RACK.min_RTT: the least RTT seen (u64::MAX: none).
    min_rtt_ns: u64,
    /// RACK.fack: just past the highest byte delivered.
    fack: Option<SeqNumber>,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult.
    reo_wnd_mult: u8,
    /// RACK.reo_wnd_persist.
    reo_wnd_persist: u8,
    /// RACK.dsack_round: SND.NXT when the last round with a D-SACK began.
    dsack_round: Option<SeqNumber>,
    /// The reordering timer (RFC 8985 §6.2 step 5).
    pub(super) reo_deadline: Deadline,
    /// The probe timeout (RFC 8985 §7.2).
    pub(super) pto_deadline: Deadline,
    /// The PTO fired: a probe is to go out.
    pub(super) probe_due: bool,
    /// The probe in flight, until its ACK settles the episode.
    pub(super) probe: Option<Probe>,
    /// Counters for `TcpInfo` (here rather than in the connection's
    /// counters: a connection that never sent pays nothing for them).
    pub(super) stats: RackStats,
}

/// RACK-TLP's counters (see `TcpInfo`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RackStats {
    pub(super) tlp_probes: u64,
    pub(super) tlp_recoveries: u64,
    pub(super) rack_losses: u64,
}

/// RACK_sent_after (RFC 8985 §6.2): whether the segment sent at `t1`
/// ending at `s1` went out after the one sent at `t2` ending at `s2`.
fn sent_after(t1: u64, s1: SeqNumber, t2: u64, s2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && s1.gt(s2))
}

/// Whether a SACKed range in `ranges` (in order, from `*cursor` on)
/// covers `seg` whole; segments come in order.
fn covered(ranges: &[SeqRange], cursor: &mut usize, seg: SeqRange) -> bool {
    while *cursor < ranges.len() && ranges[*cursor].end.le(seg.start) {
        *cursor += 1;
    }
    ranges
        .get(*cursor)
        .is_some_and(|r| r.start.le(seg.start) && seg.end.le(r.end))
}

impl Rack {
    /// Fresh state; `min_rtt_ns` from the RTT samples so far (the
    /// handshake's), if any.
    pub(super) fn new(min_rtt_ns: Option<u64>) -> Self {
        Rack {
            delivered: None,
            rtt_ns: 0,
            min_rtt_ns: min_rtt_ns.unwrap_or(u64::MAX),
            fack: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            reo_deadline: Deadline::STOPPED,
            pto_deadline: Deadline::STOPPED,
            probe_due: false,
            probe: None,
            stats: RackStats::default(),
        }
    }

    /// An RTT sample for RACK.min_RTT.
    #[inline]
    pub(super) fn on_rtt(&mut self, rtt_ns: u64) {
        self.min_rtt_ns = self.min_rtt_ns.min(rtt_ns);
    }

    /// A delivered chunk, sent at `sent_ns`, ending at `end`, judged
    /// unambiguous (RFC 8985 §6.2 step 2).
    fn on_delivered(&mut self, sent_ns: u64, end: SeqNumber, now_ns: u64) {
        self.rtt_ns = now_ns.saturating_sub(sent_ns);
        let after = self
            .delivered
            .is_none_or(|(t, s)| sent_after(sent_ns, end, t, s));
        if after {
            self.delivered = Some((sent_ns, end));
        }
    }

    /// RACK_detect_reordering (§6.2 step 3) for one delivered chunk.
    fn detect_reordering(&mut self, end: SeqNumber, rexmit: bool) {
        match self.fack {
            Some(f) if end.lt(f) => self.reordering_seen |= !rexmit,
            _ => self.fack = Some(end),
        }
    }

    /// RACK_update_reo_wnd's D-SACK part (§6.2 step 4): a round (until
    /// SND.UNA passes `snd_nxt` as it was) that brings a D-SACK widens the
    /// window by one more quarter RTT, for the next 16 recoveries.
    #[inline]
    fn on_ack_dsack(&mut self, dsack: bool, snd_una: SeqNumber, snd_nxt: SeqNumber) {
        if self.dsack_round.is_some_and(|r| snd_una.ge(r)) {
            self.dsack_round = None;
        }
        if dsack && self.dsack_round.is_none() {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(REO_WND_MULT_MAX);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// A recovery ended: after 16 without a D-SACK, the window's
    /// multiplier goes back to 1 (§6.2 step 4).
    pub(super) fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// RACK.reo_wnd (§6.2 step 4, RACK_reo_wnd): 0 before any reordering
    /// once in recovery or with DupThresh segments SACKed; else
    /// `reo_wnd_mult · min_RTT / 4`, at most SRTT.
    fn reo_wnd(&self, recovering: bool, segs_sacked: u32, srtt_ns: Option<u64>) -> u64 {
        if !self.reordering_seen && (recovering || segs_sacked >= DUP_THRESH) {
            return 0;
        }
        if self.min_rtt_ns == u64::MAX {
            return 0;
        }
        let wnd = u64::from(self.reo_wnd_mult).saturating_mul(self.min_rtt_ns / 4);
        srtt_ns.map_or(wnd, |s| wnd.min(s))
    }

    /// The reordering window outside recovery, for tests.
    #[cfg(test)]
    pub(super) fn reo_wnd_now(&self, srtt_ns: Option<u64>) -> u64 {
        self.reo_wnd(false, 0, srtt_ns)
    }

    /// RACK.reordering_seen, for tests.
    #[cfg(test)]
    pub(super) fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// RACK.min_RTT, for tests.
    #[cfg(test)]
    pub(super) fn min_rtt_ns(&self) -> u64 {
        self.min_rtt_ns
    }
}

/// PTO (RFC 8985 §7.2): two smoothed RTTs, plus the worst-case delayed
/// ACK when one segment is in flight; 1 s before any sample; never past
/// the RTO's expiry.
#[inline]
fn pto_ns(srtt_ns: Option<u64>, one_segment: bool, rto_in_ns: Option<u64>) -> u64 {
    let pto = match srtt_ns {
        Some(srtt) => {
            let base = srtt.saturating_mul(2);
            if one_segment {
                base.saturating_add(WC_DEL_ACK_NS)
            } else {
                base
            }
        }
        None => PTO_NO_RTT_NS,
    }
    .max(PTO_MIN_NS);
    rto_in_ns.map_or(pto, |r| pto.min(r))
}

/// How many RACK boxes of finished connections a thread keeps for its
/// next connections (see [`new_rack`]).
const SPARE_RACKS: usize = 16;

std::thread_local! {
    /// Boxes of finished connections' RACK state (at most
    /// [`SPARE_RACKS`]), for the next connections made on this thread:
    /// a short connection's RACK state costs no malloc and no free. Per
    /// thread rather than per table because a connection makes its RACK
    /// state where it cannot see its table; every box is written whole
    /// (`Rack::new`) before use, so which table's connection had it
    /// changes nothing. Boxes on purpose: their allocations are what is
    /// kept, each moved back into a connection as it is.
    #[allow(clippy::vec_box)]
    static SPARE: core::cell::RefCell<Vec<Box<Rack>>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

/// A connection's RACK state, made on its first use (once per
/// connection), in a finished connection's box when this thread keeps
/// one: out of line, so the callers on every ACK and send keep no
/// allocation's call in their straight path.
#[cold]
#[inline(never)]
fn new_rack(srtt_ns: Option<u64>) -> Box<Rack> {
    let rack = Rack::new(srtt_ns);
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(mut b) => {
            *b = rack;
            b
        }
        None => Box::new(rack),
    }
}

impl<B: PacketBuf> Connection<B> {
    /// Whether RACK-TLP runs: configured, and SACK agreed (RACK compares
    /// against SACKed segments; Linux needs SACK for both too).
    #[inline]
    pub(super) fn rack_active(&self) -> bool {
        #[cfg(any(test, debug_assertions))]
        assert_eq!(self.neg.rack, self.knobs.rack && self.neg.sack);
        self.neg.rack
    }

    /// Whether RACK decides losses now: it runs and the peer has sent SACK
    /// blocks (a peer that agreed to SACK and sends none leaves
    /// DupThresh in charge).
    pub(super) fn rack_decides(&self) -> bool {
        self.rack_active() && self.sack.is_some()
    }

    /// Gives the RACK state's box to this thread's spares (see
    /// [`new_rack`]) when there is room: for a connection going away
    /// (after its counters were read), or one in TIME_WAIT
    /// (`counters_too`: only when its RACK counters are zero, so its
    /// `TcpInfo` reads the same without the box). In TIME_WAIT nothing is
    /// outstanding: RACK has nothing left to time, and were it ever asked
    /// again it would start fresh.
    pub(crate) fn recycle_rack(&mut self, counters_too: bool) {
        if counters_too
            && self.rack.as_deref().is_some_and(|r| {
                let s = &r.stats;
                s.tlp_probes != 0 || s.tlp_recoveries != 0 || s.rack_losses != 0
            })
        {
            return;
        }
        if let Some(b) = self.rack.take() {
            SPARE.with_borrow_mut(|s| {
                if s.len() < SPARE_RACKS {
                    s.push(b);
                }
            });
        }
    }

    /// The RACK state, made on first use.
    fn rack_mut(&mut self) -> &mut Rack {
        let srtt = self.rto.srtt_ns();
        self.rack.get_or_insert_with(|| new_rack(srtt))
    }

    /// Whether fast recovery or RTO recovery runs (RACK's reo_wnd is 0
    /// there before reordering; no probe is scheduled).
    fn recovering(&self) -> bool {
        self.cc.in_recovery() || self.in_sack_recovery() || self.retries > 0
    }

    /// Stamps the chunk at `index` as (re)transmitted at `now_ns`, before
    /// SND.MAX moves (a chunk below SND.MAX goes out again).
    pub(super) fn rack_stamp(&mut self, index: usize, now_ns: u64) {
        let snd_max = self.snd_max;
        if let Some(c) = self.send_queue.get_mut(index) {
            c.rexmit |= c.end().le(snd_max);
            c.sent_ns = now_ns;
        }
    }

    /// An RTT sample (from timestamps or the timed segment) for min_RTT.
    pub(super) fn rack_rtt_sample(&mut self, rtt_ns: u64) {
        if let Some(r) = self.rack.as_deref_mut() {
            r.on_rtt(rtt_ns);
        }
    }

    /// RACK's part of an acceptable ACK, after the scoreboard took its
    /// blocks and before SND.UNA moves (RFC 8985 §6.2 steps 1 to 4, and
    /// the probe's episode, §7.4): marks the chunks this ACK delivered,
    /// updates RACK.xmit_ts / end_seq / rtt, reordering and the D-SACK
    /// rounds.
    pub(super) fn rack_on_ack(
        &mut self,
        seg: &SegmentIn<B>,
        newly_sacked: u32,
        dsack: Option<SeqRange>,
        now_ns: u64,
    ) {
        if !self.rack_active() {
            return;
        }
        let ack = seg.ack;
        let advanced = ack.gt(self.snd_una);
        self.tlp_on_ack(ack, advanced, newly_sacked, dsack, now_ns);
        if !advanced && newly_sacked == 0 && dsack.is_none() {
            return;
        }
        let snd_max = self.snd_max;
        let srtt = self.rto.srtt_ns();
        let rack = self.rack.get_or_insert_with(|| new_rack(srtt)).as_mut();
        rack.on_ack_dsack(dsack.is_some(), ack.max(self.snd_una), snd_max);
        let ranges = self.sack.as_deref().map_or(&[][..], |b| b.sacked_slice());
        let mut cursor = 0;
        let mut latest: Option<(u64, SeqNumber)> = None;
        for c in self.send_queue.iter_mut() {
            if !c.seq.lt(snd_max) {
                break;
            }
            let end = c.end();
            let cumulative = end.le(ack);
            if !cumulative && newly_sacked == 0 {
                break;
            }
            let newly = if cumulative {
                !c.sacked
            } else if !c.sacked && covered(ranges, &mut cursor, SeqRange::new(c.seq, end)) {
                c.sacked = true;
                true
            } else {
                false
            };
            if !newly {
                continue;
            }
            rack.detect_reordering(end, c.rexmit);
            if c.rexmit && now_ns.saturating_sub(c.sent_ns) < rack.min_rtt_ns {
                // §6.2 step 2: an ACK quicker than any round trip is for
                // the original transmission, and says nothing of when the
                // retransmission arrived. (The RFC's other test, an echoed
                // timestamp older than the retransmission, is left out as
                // Linux does: a SACK for out-of-order data echoes the
                // TSval of the last in-order segment, RFC 7323 §4.3, so it
                // would discard the SACK of every retransmitted tail.)
                continue;
            }
            if latest.is_none_or(|(t, s)| sent_after(c.sent_ns, end, t, s)) {
                latest = Some((c.sent_ns, end));
            }
        }
        if let Some((sent_ns, end)) = latest {
            rack.on_delivered(sent_ns, end, now_ns);
        }
    }

    /// [`rack_on_ack`](Self::rack_on_ack) for an ACK that moves SND.UNA
    /// to `ack` with no SACK block, no D-SACK and no probe in flight (a
    /// predicted segment's, `conn::predict`): what it does for one, the
    /// probe's part and the scoreboard's left out. The chunks it delivers
    /// are released in the same walk (`SendQueue::ack_each`, as Linux's
    /// `tcp_clean_rtx_queue`), so `on_new_ack`, which follows, finds them
    /// gone; with the latency stages on, `on_new_ack` releases them (it
    /// times each). Returns whether it released them. Inlined into the
    /// predicted path (its one caller), with `on_new_ack`: one call frame
    /// for the whole segment.
    #[inline(always)]
    pub(super) fn rack_on_cumulative_ack(&mut self, ack: SeqNumber, now_ns: u64) -> bool {
        if !self.rack_active() {
            return false;
        }
        let snd_max = self.snd_max;
        let srtt = self.rto.srtt_ns();
        let rack = self.rack.get_or_insert_with(|| new_rack(srtt)).as_mut();
        debug_assert!(rack.probe.is_none() && ack.gt(self.snd_una));
        rack.on_ack_dsack(false, ack, snd_max);
        let mut latest: Option<(u64, SeqNumber)> = None;
        let mut on_chunk = |c: &Chunk<B>| {
            let end = c.end();
            // A chunk not sent yet (only past every sent one) or SACKed.
            if !c.seq.lt(snd_max) || c.sacked {
                return;
            }
            rack.detect_reordering(end, c.rexmit);
            if c.rexmit && now_ns.saturating_sub(c.sent_ns) < rack.min_rtt_ns {
                return; // §6.2 step 2, as in `rack_on_ack`
            }
            if latest.is_none_or(|(t, s)| sent_after(c.sent_ns, end, t, s)) {
                latest = Some((c.sent_ns, end));
            }
        };
        let released = self.latency.is_none();
        if released {
            // Every chunk ending at or below `ack` ends at or below the
            // queue's end, so these are the chunks `on_new_ack` would
            // release.
            self.send_queue.ack_each(ack, on_chunk);
        } else {
            for c in self.send_queue.iter() {
                if !c.end().le(ack) {
                    break;
                }
                on_chunk(c);
            }
        }
        if let Some((sent_ns, end)) = latest {
            rack.on_delivered(sent_ns, end, now_ns);
        }
        released
    }

    /// [`rack_on_cumulative_ack`](Self::rack_on_cumulative_ack)'s RACK
    /// part for an ACK that covers the send queue's one chunk, sent once
    /// at `sent_ns` and ending at `ack` (SND.MAX): the D-SACK round's
    /// end, the reordering test and the delivery of that chunk, the
    /// walk's only one (the caller releases it). RACK's state must exist.
    #[inline(always)]
    pub(super) fn rack_on_sole_ack(&mut self, ack: SeqNumber, sent_ns: u64, now_ns: u64) {
        debug_assert!(self.rack.is_some() && ack == self.snd_max);
        if let Some(rack) = self.rack.as_deref_mut() {
            rack.on_ack_dsack(false, ack, ack);
            rack.detect_reordering(ack, false);
            rack.on_delivered(sent_ns, ack, now_ns);
        }
    }

    /// RACK_detect_loss (RFC 8985 §6.2 step 5): every chunk sent before
    /// RACK's and not delivered within `RACK.rtt + reo_wnd` of its
    /// transmission is lost (the scoreboard's mark moves past it); the
    /// reordering timer is armed for the next that may be. Returns
    /// whether anything is marked lost above SND.UNA.
    pub(super) fn rack_detect_loss(&mut self, now_ns: u64) -> bool {
        if !self.rack_decides() {
            return false;
        }
        let recovering = self.recovering();
        let srtt = self.rto.srtt_ns();
        let (snd_una, snd_max) = (self.snd_una, self.snd_max);
        let (Some(rack), Some(board)) = (self.rack.as_deref_mut(), self.sack.as_deref_mut()) else {
            return false;
        };
        let Some((rack_ns, rack_end)) = rack.delivered else {
            rack.reo_deadline = Deadline::STOPPED;
            return false;
        };
        if board.sacked_bytes() == 0 {
            // Nothing delivered above SND.UNA: nothing to compare with
            // (and no walk over the queue on every ACK of a bulk transfer
            // once a scoreboard exists).
            rack.reo_deadline = Deadline::STOPPED;
            return board.lost_below().is_some();
        }
        let sent = || {
            self.send_queue
                .iter()
                .take_while(|c| c.seq.lt(snd_max))
                .filter(|c| c.end().gt(snd_una))
        };
        let segs_sacked = sent().filter(|c| c.sacked).count() as u32;
        if segs_sacked == 0 {
            rack.reo_deadline = Deadline::STOPPED;
            return board.lost_below().is_some();
        }
        let reo_wnd = rack.reo_wnd(recovering, segs_sacked, srtt);
        let before = board.lost_below();
        let mut lost_to = None::<SeqNumber>;
        let mut newly_lost = 0u64;
        let mut timeout = 0u64;
        for c in sent() {
            if c.sacked || !sent_after(rack_ns, rack_end, c.sent_ns, c.end()) {
                continue;
            }
            let deadline = c
                .sent_ns
                .saturating_add(rack.rtt_ns)
                .saturating_add(reo_wnd);
            if deadline <= now_ns {
                lost_to = Some(c.end());
                let range = SeqRange::new(c.seq, c.end());
                if before.is_none_or(|b| c.end().gt(b))
                    || (c.rexmit && board.retransmission_lost(range))
                {
                    newly_lost += 1;
                }
            } else {
                timeout = timeout.max(deadline - now_ns);
            }
        }
        rack.reo_deadline = if timeout > 0 {
            Deadline::at(now_ns + timeout)
        } else {
            Deadline::STOPPED
        };
        if let Some(end) = lost_to {
            board.mark_lost_below(end);
        }
        rack.stats.rack_losses += newly_lost;
        board.lost_below().is_some()
    }

    /// Starts fast recovery once RACK marked a loss (RFC 8985 §6.2; the
    /// way three duplicate ACKs do without it).
    pub(super) fn rack_maybe_start_recovery(&mut self, now_ns: u64) {
        if self.rack_detect_loss(now_ns)
            && !self.cc.in_recovery()
            && self.retries == 0
            && self.sack_may_start_recovery()
        {
            self.enter_fast_recovery(now_ns);
        }
    }

    /// The probe's part of an ACK (RFC 8985 §7.4.2, as Linux's
    /// `tcp_process_tlp_ack`): a D-SACK means the original and the probe
    /// both arrived; an ACK beyond the probe without one means the probe
    /// repaired a loss, which gets the congestion response of a fast
    /// recovery; a bare duplicate ACK at the probe's end ends the episode.
    fn tlp_on_ack(
        &mut self,
        ack: SeqNumber,
        advanced: bool,
        newly_sacked: u32,
        dsack: Option<SeqRange>,
        now_ns: u64,
    ) {
        let Some(probe) = self.rack.as_deref().and_then(|r| r.probe) else {
            return;
        };
        if ack.lt(probe.end_seq) {
            return;
        }
        let settled = if !probe.is_retrans || dsack.is_some() {
            true
        } else if ack.gt(probe.end_seq) {
            // §7.4.2: the loss was real; reduce as fast recovery would
            // (Linux: a CWR episode), at once.
            let cwnd = self.cc.cwnd();
            let una = self.snd_una;
            self.note_rare();
            self.cc.enter_recovery(cwnd, una, now_ns);
            self.cc.on_ack(0, una, now_ns, self.rto.srtt_ns());
            if let Some(r) = self.rack.as_deref_mut() {
                r.stats.tlp_recoveries += 1;
            }
            true
        } else {
            !advanced && newly_sacked == 0
        };
        if settled {
            if let Some(r) = self.rack.as_deref_mut() {
                r.probe = None;
            }
        }
    }

    /// Arms (or disarms) the probe timeout after new data went out or an
    /// ACK moved SND.UNA (RFC 8985 §7.2): only outside recovery, with
    /// data outstanding, one probe per episode.
    pub(super) fn rack_arm_pto(&mut self, now_ns: u64) {
        if !self.rack_active() {
            return;
        }
        if !self.may_probe() {
            if let Some(r) = self.rack.as_deref_mut() {
                r.pto_deadline = Deadline::STOPPED;
            }
            return;
        }
        self.rack_arm_pto_probing(now_ns);
    }

    /// [`rack_arm_pto`](Self::rack_arm_pto) once it found RACK running
    /// and a probe allowed ([`may_probe`](Self::may_probe)): the deadline
    /// two smoothed RTTs on (`pto_ns`).
    pub(super) fn rack_arm_pto_probing(&mut self, now_ns: u64) {
        #[cfg(any(test, debug_assertions))]
        assert!(
            self.rack_active() && self.may_probe(),
            "a probe may be armed"
        );
        let flight = self.snd_max.wrapping_sub(self.snd_una);
        let one_segment = flight as usize <= self.neg.payload_max() + 1;
        let rto_in = self.timers.rto.get().map(|t| t.saturating_sub(now_ns));
        let pto = pto_ns(self.rto.srtt_ns(), one_segment, rto_in);
        match self.rack.as_deref_mut() {
            Some(r) => r.pto_deadline = Deadline::at(now_ns + pto),
            // The first data of the connection: the state made out of
            // line, so the common call saves no registers for it.
            None => self.rack_arm_pto_first(now_ns + pto),
        }
    }

    /// [`rack_arm_pto`](Self::rack_arm_pto)'s deadline `at` on a
    /// connection without RACK state yet: made, then armed.
    #[cold]
    #[inline(never)]
    fn rack_arm_pto_first(&mut self, at: u64) {
        self.rack_mut().pto_deadline = Deadline::at(at);
    }

    /// After an ACK: the PTO restarts when SND.UNA moved (RFC 8985 §7.2),
    /// and stops when a probe may no longer go (recovery began, the
    /// window closed). `all_acked`: SND.UNA = SND.MAX, which the caller
    /// may know without looking.
    pub(super) fn rack_after_ack(&mut self, advanced: bool, all_acked: bool, now_ns: u64) {
        debug_assert_eq!(all_acked, self.snd_una == self.snd_max);
        if advanced && all_acked {
            // All acknowledged (a request's answer): no probe, as
            // `rack_arm_pto` would find, without its call.
            debug_assert!(!self.may_probe());
            if let Some(r) = self.rack.as_deref_mut() {
                r.pto_deadline = Deadline::STOPPED;
            }
        } else if advanced {
            self.rack_arm_pto(now_ns);
        } else if !self.may_probe() {
            if let Some(r) = self.rack.as_deref_mut() {
                r.pto_deadline = Deadline::STOPPED;
            }
        }
    }

    /// Whether a probe may be scheduled or sent (RFC 8985 §7.2): data
    /// outstanding in a sending state, outside recovery, the peer's
    /// window open (else the persist timer probes), one probe per
    /// episode.
    fn may_probe(&self) -> bool {
        // Nothing in flight first: a receiver's every segment stops there.
        self.snd_una != self.snd_max
            && self.sending_state()
            && self.snd_wnd > 0
            && (self.plain()
                || (!self.recovering() && self.rack.as_deref().is_none_or(|r| r.probe.is_none())))
    }

    /// The RACK-TLP timers due at `now_ns`: the reordering timer runs loss
    /// detection again; the PTO makes a probe due and restarts the RTO
    /// (RFC 8985 §7.3: the RTO, not another PTO, follows a probe).
    pub(super) fn rack_on_timer(&mut self, now_ns: u64) {
        let Some(r) = self.rack.as_deref_mut() else {
            return;
        };
        let (reo, pto) = (r.reo_deadline.is_due(now_ns), r.pto_deadline.is_due(now_ns));
        if reo {
            r.reo_deadline = Deadline::STOPPED;
        }
        if pto {
            r.pto_deadline = Deadline::STOPPED;
        }
        if reo {
            let was_recovering = self.in_sack_recovery();
            self.rack_maybe_start_recovery(now_ns);
            if !was_recovering && self.in_sack_recovery() {
                self.prr_on_ack(0, true);
            }
        }
        if pto && self.may_probe() {
            if let Some(r) = self.rack.as_deref_mut() {
                r.probe_due = true;
            }
            self.note_output_rare();
            self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
        }
    }

    /// A timeout: RACK's timers stop, the probe episode ends, and what
    /// the peer SACKed stays SACKed (RFC 8985 §6.3) unless the peer
    /// seems to have reneged (the oldest chunk SACKed, as Linux's
    /// `tcp_check_sack_reneging`) or this is a second timeout in a row:
    /// then the marks go, and go-back-N resends everything.
    pub(super) fn rack_on_rto(&mut self) -> bool {
        if let Some(r) = self.rack.as_deref_mut() {
            r.reo_deadline = Deadline::STOPPED;
            r.pto_deadline = Deadline::STOPPED;
            r.probe_due = false;
            r.probe = None;
        }
        let keep = self.rack_active()
            && self.retries <= 1
            && self.send_queue.front().is_none_or(|c| !c.sacked);
        if !keep {
            for c in self.send_queue.iter_mut() {
                c.sacked = false;
            }
        }
        keep
    }

    /// Moves the next transmission past chunks the peer SACKed, when
    /// they were sent before (a go-back-N resend after a timeout).
    pub(super) fn skip_sacked_resends(&mut self) {
        while let Some(c) = self.send_queue.next_unsent() {
            if !(c.sacked && c.end().le(self.snd_max)) {
                break;
            }
            self.send_queue.advance();
        }
    }

    /// The earlier of RACK's two deadlines, for `next_deadline`.
    #[inline]
    pub(super) fn rack_deadline(&self) -> Deadline {
        self.rack
            .as_deref()
            .map_or(Deadline::STOPPED, |r| r.reo_deadline.min(r.pto_deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn sent_after_breaks_ties_by_sequence() {
        let (a, b) = (SeqNumber::new(100), SeqNumber::new(200));
        assert!(sent_after(2, a, 1, b));
        assert!(sent_after(1, b, 1, a));
        assert!(!sent_after(1, a, 1, b));
        assert!(!sent_after(1, a, 1, a));
    }

    #[test]
    fn reo_wnd_is_a_quarter_min_rtt_until_recovery_or_dupthresh() {
        // RFC 8985 §6.2 step 4.
        let mut r = Rack::new(Some(40 * MS));
        assert_eq!(r.reo_wnd(false, 1, Some(50 * MS)), 10 * MS);
        assert_eq!(r.reo_wnd(true, 1, Some(50 * MS)), 0);
        assert_eq!(r.reo_wnd(false, DUP_THRESH, Some(50 * MS)), 0);
        r.reordering_seen = true;
        assert_eq!(r.reo_wnd(true, 5, Some(50 * MS)), 10 * MS);
        // Capped by SRTT.
        r.reo_wnd_mult = 10;
        assert_eq!(r.reo_wnd(true, 5, Some(50 * MS)), 50 * MS);
    }

    #[test]
    fn a_dsack_round_widens_reo_wnd_until_16_recoveries_pass() {
        let mut r = Rack::new(Some(40 * MS));
        let (una, nxt) = (SeqNumber::new(0), SeqNumber::new(10_000));
        r.on_ack_dsack(true, una, nxt);
        assert_eq!(r.reo_wnd_now(None), 20 * MS);
        // More D-SACKs in the same round: no more widening.
        r.on_ack_dsack(true, una + 5000, nxt + 5000);
        assert_eq!(r.reo_wnd_now(None), 20 * MS);
        // The next round's D-SACK widens again.
        r.on_ack_dsack(true, nxt, nxt + 10_000);
        assert_eq!(r.reo_wnd_now(None), 30 * MS);
        for _ in 0..15 {
            r.on_recovery_end();
        }
        assert_eq!(r.reo_wnd_now(None), 30 * MS);
        r.on_recovery_end();
        assert_eq!(r.reo_wnd_now(None), 10 * MS);
    }

    #[test]
    fn reordering_is_seen_when_an_older_original_arrives_late() {
        let mut r = Rack::new(None);
        r.detect_reordering(SeqNumber::new(300), false);
        r.detect_reordering(SeqNumber::new(200), true);
        assert!(!r.reordering_seen, "a retransmission filling a hole");
        r.detect_reordering(SeqNumber::new(100), false);
        assert!(r.reordering_seen);
    }

    #[test]
    fn pto_follows_rfc_8985_7_2() {
        assert_eq!(pto_ns(Some(10 * MS), false, None), 20 * MS);
        assert_eq!(pto_ns(Some(10 * MS), true, None), 220 * MS);
        assert_eq!(pto_ns(None, false, None), 1000 * MS);
        assert_eq!(pto_ns(Some(10 * MS), false, Some(15 * MS)), 15 * MS);
        assert_eq!(pto_ns(Some(0), false, None), PTO_MIN_NS);
    }
}
