//! SACK-based loss recovery (RFC 6675) over the send queue's whole
//! chunks, through `tcp::sack`'s scoreboard.
//!
//! The scoreboard is made on the first ACK that carries SACK blocks (an
//! idle connection pays nothing for it) and fed every ACK after that.
//! With it, an ACK that SACKs new data counts as a duplicate ACK (RFC 6675
//! §2), recovery starts on the third one or once the oldest byte counts
//! as lost (IsLost, §5), the window is no longer inflated per duplicate
//! ACK (pipe replaces it), and what goes out while `cwnd − pipe` allows a
//! segment is chosen by NextSeg (§4): lost chunks first, then new data,
//! then unSACKed chunks, then one rescue retransmission. A timeout drops
//! the SACK information (§5.1) and the queue is sent again from its
//! oldest chunk as without SACK.
//!
//! While SACK recovery runs, how much goes out per ACK is set by
//! Proportional Rate Reduction (RFC 6937 §3, PRR-SSRB): [`Prr`] spreads
//! the window's reduction over the recovery's ACKs instead of sending
//! nothing for half an RTT and then bursting; `cwnd()` is PRR's
//! `pipe + sndcnt` until recovery ends.
//!
//! A recovery whose every retransmission comes back D-SACKed (RFC 2883:
//! the receiver had the data already) was spurious, reordering rather
//! than loss: the window is restored as RFC 3708 §3 suggests.

use tpa::buf::PacketBuf;

use super::super::cc::{CongestionControl, Prior};
use super::super::sack::{NextSeg, Rule, SackScoreboard};
use super::super::segment::SegmentIn;
use super::super::seq::{SeqNumber, SeqRange};
use super::Connection;

/// What a connection keeps about its loss recoveries beyond the
/// controller's window.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RecoveryState {
    /// Proportional Rate Reduction while SACK recovery runs (RFC 6937).
    pub(super) prr: Option<Prr>,
    /// The window before the last fast recovery, while it may be undone.
    pub(super) undo: Option<Prior>,
}

/// Proportional Rate Reduction's state for one recovery (RFC 6937 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Prr {
    /// RecoverFS: the flight when recovery began.
    recover_fs: u32,
    /// prr_delivered: bytes the receiver got during recovery.
    delivered: u32,
    /// prr_out: bytes sent during recovery.
    out: u32,
    /// The window the last ACK allowed: pipe + sndcnt.
    cwnd: u32,
}

impl Prr {
    /// Recovery begins with `flight` bytes out (RecoverFS).
    pub(super) fn new(flight: u32, cwnd: u32) -> Self {
        Prr {
            recover_fs: flight.max(1),
            delivered: 0,
            out: 0,
            cwnd,
        }
    }

    /// One ACK that `delivered` bytes (SND.UNA's advance plus the change
    /// in SACKed bytes): the window becomes pipe + sndcnt (RFC 6937 §3,
    /// with PRR-SSRB's bound once pipe is at or below ssthresh).
    pub(super) fn on_ack(&mut self, delivered: u32, pipe: u32, ssthresh: u32, smss: u32) {
        self.delivered = self.delivered.saturating_add(delivered);
        let sndcnt = if pipe > ssthresh {
            // sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out
            let fs = u64::from(self.recover_fs);
            let share = (u64::from(self.delivered) * u64::from(ssthresh)).div_ceil(fs);
            share
                .saturating_sub(u64::from(self.out))
                .min(u64::from(u32::MAX)) as u32
        } else {
            // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS
            let limit = self
                .delivered
                .saturating_sub(self.out)
                .max(delivered)
                .saturating_add(smss);
            ssthresh.saturating_sub(pipe).min(limit)
        };
        self.cwnd = pipe.saturating_add(sndcnt);
    }

    /// `bytes` were (re)transmitted.
    pub(super) fn on_sent(&mut self, bytes: u32) {
        self.out = self.out.saturating_add(bytes);
    }

    /// The window PRR allows now.
    pub(super) fn cwnd(&self) -> u32 {
        self.cwnd
    }
}

impl<B: PacketBuf> Connection<B> {
    /// Bytes SACKed above SND.UNA, for PRR's DeliveredData.
    pub(super) fn sacked_bytes(&self) -> u32 {
        self.sack.as_deref().map_or(0, |b| b.sacked_bytes())
    }

    /// PRR after an ACK (RFC 6937 §3): begins with SACK recovery, takes
    /// the bytes this ACK delivered, ends with recovery.
    pub(super) fn prr_on_ack(&mut self, delivered: u32, started: bool) {
        if !self.in_sack_recovery() {
            if let Some(r) = self.recovery.as_deref_mut() {
                r.prr = None;
            }
            return;
        }
        if started {
            let flight = self.snd_max.wrapping_sub(self.snd_una);
            let prr = Prr::new(flight, self.cc.cwnd());
            self.note_rare();
            self.recovery.get_or_insert_with(Default::default).prr = Some(prr);
        }
        let Some(pipe) = self.sack_pipe() else {
            return;
        };
        let (ssthresh, smss) = (self.cc.ssthresh(), self.neg.payload_max() as u32);
        if let Some(prr) = self.recovery.as_deref_mut().and_then(|r| r.prr.as_mut()) {
            prr.on_ack(delivered, pipe, ssthresh, smss);
        }
    }

    /// Undoes the last fast recovery's reduction once every one of its
    /// retransmissions was reported needless by a D-SACK (RFC 3708 §3's
    /// "all retransmissions D-SACKed" variant, as Linux's DSACK undo):
    /// the window goes back to what it was before, and PRR stops.
    pub(super) fn undo_if_spurious(&mut self) {
        let Some(prior) = self.recovery.as_deref().and_then(|r| r.undo) else {
            return;
        };
        if self
            .sack
            .as_deref()
            .is_some_and(|b| b.retransmits_all_spurious())
        {
            self.cc.undo(prior);
            self.recovery = None;
            self.stats.spurious_recoveries += 1;
        }
    }

    /// Counts a transmission of `bytes` toward PRR's prr_out.
    pub(super) fn prr_sent(&mut self, bytes: u32) {
        if let Some(prr) = self.recovery.as_deref_mut().and_then(|r| r.prr.as_mut()) {
            prr.on_sent(bytes);
        }
    }

    /// Feeds an acceptable ACK's blocks to the scoreboard; returns the
    /// bytes SACKed for the first time and the D-SACK block, if any.
    pub(super) fn sack_on_ack(&mut self, seg: &SegmentIn<B>) -> (u32, Option<SeqRange>) {
        if !self.neg.sack {
            return (0, None);
        }
        let blocks = seg.options.sack.as_ref().map_or(&[][..], |b| b.as_slice());
        if self.sack.is_none() {
            if blocks.is_empty() {
                return (0, None);
            }
            let smss = self.neg.payload_max() as u32;
            let mut board = SackScoreboard::new(self.snd_una, smss);
            // RACK decides what is lost (RFC 8985), not DupThresh.
            board.set_time_based(self.rack_active());
            self.note_rare();
            self.sack = Some(Box::new(board));
        }
        let Some(board) = self.sack.as_deref_mut() else {
            return (0, None);
        };
        let up = board.on_ack(seg.ack, blocks, self.snd_max);
        (up.newly_sacked, up.dsack)
    }

    /// Whether SACK-based recovery is running.
    pub(super) fn in_sack_recovery(&self) -> bool {
        self.sack.as_deref().is_some_and(|b| b.in_recovery())
    }

    /// The data sent so far: just past the last transmitted chunk.
    fn data_sent_end(&self) -> SeqNumber {
        self.send_queue.next_seq()
    }

    /// SetPipe (RFC 6675 §4) while recovery runs.
    pub(super) fn sack_pipe(&self) -> Option<u32> {
        let board = self.sack.as_deref().filter(|b| b.in_recovery())?;
        Some(board.pipe(self.data_sent_end(), self.send_queue.sent_ranges()))
    }

    /// Whether the duplicate ACKs so far, or the scoreboard's loss
    /// verdict on the oldest byte, start a recovery (RFC 6675 §5).
    pub(super) fn sack_says_lost(&self) -> bool {
        self.sack.as_deref().is_some_and(|b| {
            b.may_start_recovery() && b.is_lost(self.snd_una, self.send_queue.sent_ranges())
        })
    }

    /// Whether a new recovery may start (the last one's point reached).
    pub(super) fn sack_may_start_recovery(&self) -> bool {
        self.sack.as_deref().is_none_or(|b| b.may_start_recovery())
    }

    /// Starts the scoreboard's recovery alongside the controller's.
    pub(super) fn sack_start_recovery(&mut self) {
        let end = self.data_sent_end();
        if let Some(board) = self.sack.as_deref_mut() {
            board.start_recovery(end);
        }
    }

    /// A timeout: the scoreboard forgets what was SACKed (RFC 6675 §5.1),
    /// or, with RACK, keeps it when `keep_sacked` (RFC 8985 §6.3).
    pub(super) fn sack_on_rto(&mut self, keep_sacked: bool) {
        let end = self.snd_max;
        if let Some(board) = self.sack.as_deref_mut() {
            if keep_sacked {
                board.on_rto_keep_sacked(end);
            } else {
                board.on_rto(end);
            }
        }
    }

    /// The retransmission NextSeg picks (rules 1, 3, 4) when `cwnd − pipe`
    /// leaves room for a segment (RFC 6675 §5 step C); `None` when new
    /// data comes first, nothing is to be resent, or there is no room.
    pub(super) fn sack_retransmission(&self, can_send_new: bool) -> Option<NextSeg> {
        let board = self.sack.as_deref().filter(|b| b.in_recovery())?;
        let end = self.data_sent_end();
        let pipe = board.pipe(end, self.send_queue.sent_ranges());
        if self.cwnd().saturating_sub(pipe) < self.neg.payload_max() as u32 {
            return None;
        }
        board
            .next_seg(end, self.send_queue.sent_ranges(), can_send_new)
            .filter(|n| n.rule != Rule::NewData)
    }

    /// Records a retransmission for pipe and HighRxt.
    pub(super) fn sack_mark(&mut self, seg: NextSeg) {
        if let Some(board) = self.sack.as_deref_mut() {
            board.mark_retransmitted(seg);
        }
    }

    /// The oldest chunk as NextSeg would name it (the fast retransmit of
    /// RFC 6675 §5 step 4.3).
    pub(super) fn front_as_next_seg(&self) -> Option<NextSeg> {
        let c = self.send_queue.front()?;
        Some(NextSeg {
            index: 0,
            range: SeqRange::from_len(c.seq, c.len),
            rule: Rule::Lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Prr;

    const MSS: u32 = 1000;

    #[test]
    fn prr_sends_ssthresh_over_recover_fs_per_byte_delivered() {
        // RFC 6937 §3 with RecoverFS = 20 segments, ssthresh = 10 (a
        // halving): while pipe > ssthresh, one segment per two delivered
        // (the first ACK allows half a segment: nothing goes yet).
        let mut prr = Prr::new(20 * MSS, 13 * MSS);
        let mut pipe = 19 * MSS; // the lost one is out of pipe
        let mut sent = Vec::new();
        for _ in 0..8 {
            pipe -= MSS; // one segment delivered (SACKed)
            prr.on_ack(MSS, pipe, 10 * MSS, MSS);
            let n = (prr.cwnd() - pipe) / MSS;
            prr.on_sent(n * MSS);
            pipe += n * MSS;
            sent.push(n);
        }
        assert_eq!(sent, [0, 1, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn prr_ssrb_slow_starts_back_toward_ssthresh_when_pipe_falls_below() {
        // Pipe far below ssthresh (a burst of losses): PRR-SSRB sends at
        // most DeliveredData + 1 MSS per ACK, up to ssthresh - pipe.
        let mut prr = Prr::new(20 * MSS, 0);
        prr.on_ack(2 * MSS, 2 * MSS, 10 * MSS, MSS);
        assert_eq!(prr.cwnd(), 2 * MSS + 3 * MSS);
        prr.on_sent(3 * MSS);
        // Pipe now 5; an ACK delivering 1: limit max(2 - 3, 1) + 1 = 2.
        prr.on_ack(MSS, 4 * MSS, 10 * MSS, MSS);
        assert_eq!(prr.cwnd(), 4 * MSS + 2 * MSS);
        // Never beyond ssthresh.
        prr.on_ack(20 * MSS, 9 * MSS, 10 * MSS, MSS);
        assert_eq!(prr.cwnd(), 10 * MSS);
    }

    #[test]
    fn prr_sends_nothing_when_nothing_was_delivered_above_ssthresh() {
        let mut prr = Prr::new(20 * MSS, 13 * MSS);
        prr.on_ack(0, 18 * MSS, 10 * MSS, MSS);
        assert_eq!(prr.cwnd(), 18 * MSS);
        // A RecoverFS of 0 cannot divide by zero, nor shrink below pipe.
        let mut empty = Prr::new(0, 0);
        empty.on_ack(MSS, 5 * MSS, 2 * MSS, MSS);
        assert!(empty.cwnd() >= 5 * MSS);
    }
}
