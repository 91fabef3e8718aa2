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

use tpa::buf::PacketBuf;

use super::super::sack::{NextSeg, Rule, SackScoreboard};
use super::super::segment::SegmentIn;
use super::super::seq::SeqRange;
use super::Connection;

impl<B: PacketBuf> Connection<B> {
    /// Feeds an acceptable ACK's blocks to the scoreboard; returns the
    /// bytes SACKed for the first time.
    pub(super) fn sack_on_ack(&mut self, seg: &SegmentIn<B>) -> u32 {
        if !self.neg.sack {
            return 0;
        }
        let blocks = seg.options.sack.as_ref().map_or(&[][..], |b| b.as_slice());
        if self.sack.is_none() {
            if blocks.is_empty() {
                return 0;
            }
            let smss = self.neg.payload_max() as u32;
            self.sack = Some(Box::new(SackScoreboard::new(self.snd_una, smss)));
        }
        let Some(board) = self.sack.as_deref_mut() else {
            return 0;
        };
        let up = board.on_ack(seg.ack, blocks, self.snd_max);
        up.newly_sacked
    }

    /// Whether SACK-based recovery is running.
    pub(super) fn in_sack_recovery(&self) -> bool {
        self.sack.as_deref().is_some_and(|b| b.in_recovery())
    }

    /// The data sent so far: just past the last transmitted chunk.
    fn data_sent_end(&self) -> super::SeqNumber {
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

    /// A timeout: the scoreboard forgets what was SACKed (RFC 6675 §5.1).
    pub(super) fn sack_on_rto(&mut self) {
        let end = self.snd_max;
        if let Some(board) = self.sack.as_deref_mut() {
            board.on_rto(end);
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
