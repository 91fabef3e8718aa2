//! Spurious retransmission timeouts: detection and undo.
//!
//! A timeout fires when an ACK is late, not only when data is lost (a
//! delay spike, a link-layer retry, a route change). Without detection
//! the sender collapses cwnd to one segment and sends the whole flight
//! again (go-back-N), every byte of it a duplicate.
//!
//! Two detectors, as Linux runs them (`tcp_frto = 2` and its timestamp
//! check in `tcp_try_undo_loss`):
//!
//! - **Eifel detection** (RFC 3522) when timestamps are on: the first ACK
//!   that covers the retransmission echoes a TSval older than the one the
//!   retransmission carried, so the original transmission got through.
//! - **F-RTO** (RFC 5682 §3, the SACK-enhanced algorithm, which also works
//!   without SACK): once the retransmission is acknowledged (step 2), two
//!   segments of *new* data go out instead of the rest of the flight; if
//!   the next ACK then acknowledges data that was never retransmitted
//!   (step 3b), the flight was not lost. A duplicate ACK (or one that
//!   SACKs only the new data) says it was (step 3a): go-back-N resumes.
//!
//! The response (RFC 4015 §3, as Linux's undo): cwnd and ssthresh go back
//! to at least what they were before the timeout, and sending resumes
//! after SND.MAX: nothing the timeout marked for resending goes again.
//! `TcpInfo::spurious_rtos` counts the undone timeouts (Linux's
//! `TCPSpuriousRTOs`), beside `spurious_recoveries` (D-SACK undo of a
//! fast recovery).
//!
//! F-RTO does not start while a fast recovery runs (RFC 5682 §3.1 step 1:
//! its retransmissions would make a later cumulative ACK ambiguous). SACK
//! blocks do not count as step 3b evidence here, only the cumulative ACK:
//! a block may describe data received before the timeout, which proves
//! nothing about the flight.

use tpa::buf::PacketBuf;

use super::super::cc::{CongestionControl, Prior};
use super::super::seq::SeqNumber;
use super::Connection;

/// Where one timeout's detection stands (RFC 5682 §3.1's steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Step 2: waiting for the ACK of the retransmission.
    AwaitRetransmitAck,
    /// Step 3: new data went out; the next ACK decides.
    AwaitSecondAck,
    /// The loss was real (or could not be told): conventional go-back-N
    /// until SND.UNA passes the recovery point.
    Conventional,
}

/// One timeout's detection state, made at the timeout and dropped once
/// SND.UNA passes the recovery point (boxed in the connection: an idle
/// connection pays a pointer).
#[derive(Debug, Clone, Copy)]
pub(super) struct Frto {
    /// cwnd and ssthresh before the timeout: what an undo restores.
    prior: Prior,
    /// SND.MAX when the timeout fired (RFC 5682's RecoveryPoint).
    recovery_point: SeqNumber,
    /// The TSval of the first retransmission (RFC 3522 §2's
    /// RetransmitTS); None without timestamps.
    retransmit_ts: Option<u32>,
    /// The end of the data resent since the timeout (fixed at step 2).
    resent_end: SeqNumber,
    /// Where the detection stands.
    pub(super) step: Step,
    /// New segments step 2b may still send past cwnd (RFC 5682 §3.1
    /// step 2b: up to two).
    new_allowance: u8,
}

/// What one ACK told F-RTO.
#[derive(Debug, Clone, Copy)]
pub(super) struct AckSeen {
    /// SND.UNA advanced.
    pub advanced: bool,
    /// A duplicate ACK (RFC 5681 §2), or one that SACKed new data.
    pub duplicate: bool,
    /// The echoed timestamp (TSecr), with timestamps on.
    pub tsecr: Option<u32>,
}

impl<B: PacketBuf> Connection<B> {
    /// The retransmission timer fired on data (RFC 5682 §3.1 step 1);
    /// call before the controller reduces the window.
    pub(super) fn frto_on_rto(&mut self, now_ns: u64) {
        if !self.knobs.frto {
            return;
        }
        let recovering = self.cc.in_recovery() || self.in_sack_recovery();
        let (snd_max, snd_una) = (self.snd_max, self.snd_una);
        match self.frto.as_deref_mut() {
            // A recurring timeout on the same SND.UNA: the same episode,
            // the first retransmission's TSval and the window before the
            // first timeout kept (Linux lets F-RTO run again here too).
            Some(f) if f.step == Step::AwaitRetransmitAck => {}
            Some(f) => {
                f.step = Step::Conventional;
                f.recovery_point = snd_max;
            }
            None if recovering => {}
            None => {
                // RFC 3522 takes the ACK's echo for the original
                // transmission's. A head sent again before this timeout (a
                // fast retransmit whose ACK was lost, then a timeout in
                // that recovery) may be what the echo names, which says
                // nothing of the rest of the flight: F-RTO alone judges.
                let resent_before = self.send_queue.front().is_some_and(|c| c.rexmit);
                let ts = (self.neg.ts && !resent_before).then(|| self.ts_now(now_ns));
                self.note_rare();
                self.frto = Some(Box::new(Frto {
                    prior: Prior::of(&self.cc),
                    recovery_point: snd_max,
                    retransmit_ts: ts,
                    resent_end: snd_una,
                    step: Step::AwaitRetransmitAck,
                    new_allowance: 0,
                }));
            }
        }
    }

    /// An acceptable ACK, after SND.UNA and the scoreboard took it.
    pub(super) fn frto_on_ack(&mut self, ack: AckSeen) {
        let Some(f) = self.frto.as_deref().copied() else {
            return;
        };
        if self.cc.in_recovery() && f.step != Step::Conventional {
            // Duplicate ACKs started a fast recovery: leave it the loss.
            self.frto_conventional(false);
            return;
        }
        // RFC 3522 §3.2: the ACK of the retransmission echoes the original
        // transmission's timestamp: that one arrived.
        let eifel = |f: &Frto| match (f.retransmit_ts, ack.tsecr) {
            (Some(rts), Some(echo)) => echo != 0 && SeqNumber::new(echo).lt(SeqNumber::new(rts)),
            _ => false,
        };
        match f.step {
            Step::AwaitRetransmitAck if ack.advanced => {
                if eifel(&f) {
                    return self.frto_undo(f);
                }
                if self.snd_una.ge(f.recovery_point) {
                    // Step 2a: everything acknowledged; nothing to tell.
                    self.frto = None;
                    return;
                }
                // Step 2b: new data instead of the rest of the flight,
                // when the peer's window takes a new segment.
                let resent_end = self.send_queue.next_seq().max(self.snd_una);
                let fits = self
                    .send_queue
                    .chunk_starting_at(self.snd_max)
                    .is_some_and(|c| c.end().wrapping_sub(self.snd_una) <= self.snd_wnd);
                if fits {
                    self.send_queue.skip_to(self.snd_max);
                    if let Some(g) = self.frto.as_deref_mut() {
                        g.resent_end = resent_end;
                        g.step = Step::AwaitSecondAck;
                        g.new_allowance = 2;
                    }
                } else {
                    // Nothing new may go: RFC 5682 §3.1 step 2b's
                    // recommendation is conventional recovery.
                    self.frto_conventional(false);
                }
            }
            Step::AwaitSecondAck => {
                if ack.advanced && self.snd_una.gt(f.resent_end) {
                    // Step 3b: data never retransmitted was acknowledged.
                    self.frto_undo(f);
                } else if ack.duplicate {
                    // Step 3a: the new data arrived past a hole.
                    self.frto_conventional(true);
                }
            }
            _ => {
                if self.snd_una.ge(f.recovery_point) {
                    self.frto = None;
                }
            }
        }
    }

    /// The loss was real: F-RTO steps aside; `resume` sends the flight
    /// again from SND.UNA (go-back-N, where step 2b had skipped it).
    fn frto_conventional(&mut self, resume: bool) {
        if let Some(f) = self.frto.as_deref_mut() {
            f.step = Step::Conventional;
            f.new_allowance = 0;
            f.recovery_point = f.recovery_point.max(self.snd_max);
        }
        if resume {
            self.send_queue.rewind();
            if !self.fin_acked {
                self.fin_sent = false;
            }
        }
    }

    /// The response to a spurious timeout (RFC 4015 §3, as Linux's
    /// `tcp_try_undo_loss`): the window before it, and no go-back-N.
    fn frto_undo(&mut self, f: Frto) {
        self.frto = None;
        self.cc.undo(f.prior);
        self.stats.spurious_rtos += 1;
        self.pending.retransmit_front = false;
        self.send_queue.skip_to(self.snd_max);
        if self.fin_requested && self.snd_max == self.send_queue.end() + 1 {
            self.fin_sent = true;
        }
        // A real loss further in the flight is SACK recovery's again.
        if let Some(board) = self.sack.as_deref_mut() {
            board.forget_timeout();
        }
    }

    /// Whether step 2b lets a chunk starting at `seq` go out past cwnd.
    pub(super) fn frto_allows_new(&self, seq: SeqNumber) -> bool {
        self.frto.as_deref().is_some_and(|f| {
            f.step == Step::AwaitSecondAck && f.new_allowance > 0 && seq.ge(f.recovery_point)
        })
    }

    /// A chunk starting at `seq` went out for the first time.
    pub(super) fn frto_sent_new(&mut self, seq: SeqNumber) {
        if let Some(f) = self.frto.as_deref_mut() {
            if f.step == Step::AwaitSecondAck && seq.ge(f.recovery_point) {
                f.new_allowance = f.new_allowance.saturating_sub(1);
            }
        }
    }
}
