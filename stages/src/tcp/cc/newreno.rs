//! NewReno: RFC 5681 slow start and congestion avoidance, with appropriate
//! byte counting (RFC 3465) and RFC 6582 fast recovery.

use super::{AckOutcome, CcLimits, CongestionControl, Prior, Window};
use crate::tcp::seq::SeqNumber;

/// The NewReno congestion controller.
///
/// ```
/// use tpa_stages::tcp::seq::SeqNumber;
/// use tpa_stages::tcp::cc::{CongestionControl, newreno::NewReno};
/// let mut cc = NewReno::new(1000);
/// cc.enter_recovery(20_000, SeqNumber::new(50_000), 0);
/// assert_eq!(cc.ssthresh(), 10_000);
/// assert_eq!(cc.cwnd(), 13_000);
/// ```
#[derive(Clone, Debug)]
#[repr(C)] // `w` first: see `Cc`
pub struct NewReno {
    pub(super) w: Window,
}

impl NewReno {
    /// Starts at the RFC 6928 initial window for segments of `mss` bytes
    /// (an `mss` of 0 is taken as 1).
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{CongestionControl, newreno::NewReno};
    /// assert_eq!(NewReno::new(1460).cwnd(), 14600);
    /// ```
    pub fn new(mss: u32) -> Self {
        Self::with_limits(CcLimits::rfc6928(mss))
    }

    /// Starts at `limits.initial_cwnd` and never grows past
    /// `limits.max_cwnd`.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{CcLimits, CongestionControl, newreno::NewReno};
    /// assert_eq!(NewReno::with_limits(CcLimits::new(1000, 2, 4000)).cwnd(), 2000);
    /// ```
    pub fn with_limits(limits: CcLimits) -> Self {
        NewReno {
            w: Window::new(limits),
        }
    }
}

impl CongestionControl for NewReno {
    fn on_ack(
        &mut self,
        acked_bytes: u32,
        ack_seq: SeqNumber,
        _now_ns: u64,
        _rtt_ns: Option<u64>,
    ) -> AckOutcome {
        if let Some(outcome) = self.w.recovery_ack(acked_bytes, ack_seq) {
            return outcome;
        }
        if self.w.cwnd < self.w.ssthresh {
            self.w.slow_start(acked_bytes);
        } else {
            // RFC 3465 §2.1: count bytes acknowledged; once they reach
            // cwnd, cwnd grows by one SMSS (RFC 5681 §3.1 eq. (3)'s intent).
            self.w.bytes_acked = self.w.bytes_acked.saturating_add(acked_bytes);
            if self.w.bytes_acked >= self.w.cwnd {
                self.w.bytes_acked -= self.w.cwnd;
                self.w.cwnd = self.w.cwnd.saturating_add(self.w.mss).min(self.w.max_cwnd);
            }
        }
        AckOutcome::Normal
    }

    fn on_dup_ack(&mut self) {
        self.w.dup_ack();
    }

    fn enter_recovery(&mut self, flight_size: u32, snd_max: SeqNumber, _now_ns: u64) {
        if self.w.recover.is_none() {
            let ssthresh = self.w.halved(flight_size);
            self.w.start_recovery(ssthresh, snd_max);
        }
    }

    fn on_rto(&mut self, flight_size: u32, _now_ns: u64) {
        let ssthresh = self.w.halved(flight_size);
        self.w.timeout(ssthresh);
    }

    fn cwnd(&self) -> u32 {
        self.w.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }

    fn in_recovery(&self) -> bool {
        self.w.recover.is_some()
    }

    fn undo(&mut self, prior: Prior) {
        self.w.undo(prior);
    }

    fn reduce_unused(&mut self, cwnd: u32) {
        self.w.reduce_unused(cwnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn slow_start_grows_by_at_most_two_segments_per_ack() {
        let mut cc = NewReno::new(MSS);
        assert_eq!(cc.cwnd(), 10 * MSS);
        // RFC 3465 §2.2, L = 2*SMSS: a stretch ACK of 3 segments adds 2.
        cc.on_ack(3 * MSS, SeqNumber::new(3 * MSS), 0, None);
        assert_eq!(cc.cwnd(), 12 * MSS);
        cc.on_ack(MSS / 2, SeqNumber::new(3 * MSS + MSS / 2), 0, None);
        assert_eq!(cc.cwnd(), 12 * MSS + MSS / 2);
        assert!(cc.in_slow_start());
    }

    #[test]
    fn congestion_avoidance_adds_one_segment_per_window_acked() {
        let mut cc = NewReno::new(MSS);
        cc.on_rto(20 * MSS, 0); // ssthresh 10 segments, cwnd 1
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        let mut seq = 0;
        while cc.in_slow_start() {
            seq += MSS;
            cc.on_ack(MSS, SeqNumber::new(seq), 0, None);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        // 9 segments of ACKs: still 10; the 10th makes it 11.
        for _ in 0..9 {
            seq += MSS;
            cc.on_ack(MSS, SeqNumber::new(seq), 0, None);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        seq += MSS;
        cc.on_ack(MSS, SeqNumber::new(seq), 0, None);
        assert_eq!(cc.cwnd(), 11 * MSS);
    }

    #[test]
    fn fast_recovery_inflates_deflates_on_partial_acks_and_exits_on_full_ack() {
        let mut cc = NewReno::new(MSS);
        // 20 segments out, highest sent 20_000: ssthresh 10, cwnd 13.
        cc.enter_recovery(20 * MSS, SeqNumber::new(20 * MSS), 0);
        assert!(cc.in_recovery());
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.cwnd(), 13 * MSS);
        cc.on_dup_ack();
        cc.on_dup_ack();
        assert_eq!(cc.cwnd(), 15 * MSS);
        // A second loss signal while recovering changes nothing.
        cc.enter_recovery(40 * MSS, SeqNumber::new(40 * MSS), 0);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        // Partial ACK of 4 segments: 15 - 4 + 1 = 12, retransmit.
        assert_eq!(
            cc.on_ack(4 * MSS, SeqNumber::new(4 * MSS), 0, None),
            AckOutcome::PartialAck
        );
        assert_eq!(cc.cwnd(), 12 * MSS);
        // Partial ACK smaller than a segment: no segment added back.
        assert_eq!(
            cc.on_ack(MSS / 2, SeqNumber::new(4 * MSS + MSS / 2), 0, None),
            AckOutcome::PartialAck
        );
        assert_eq!(cc.cwnd(), 12 * MSS - MSS / 2);
        // The full ACK ends recovery at ssthresh.
        assert_eq!(
            cc.on_ack(15 * MSS, SeqNumber::new(20 * MSS), 0, None),
            AckOutcome::Normal
        );
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert!(!cc.in_slow_start());
    }

    #[test]
    fn recover_point_across_sequence_wrap() {
        let mut cc = NewReno::new(MSS);
        let snd_max = 500u32; // wrapped past 0
        cc.enter_recovery(10 * MSS, SeqNumber::new(snd_max), 0);
        assert_eq!(
            cc.on_ack(MSS, SeqNumber::new(u32::MAX - 100), 0, None),
            AckOutcome::PartialAck
        );
        assert_eq!(
            cc.on_ack(MSS, SeqNumber::new(600), 0, None),
            AckOutcome::Normal
        );
    }

    #[test]
    fn timeout_sets_the_loss_window_and_ends_recovery() {
        let mut cc = NewReno::new(MSS);
        cc.enter_recovery(30 * MSS, SeqNumber::new(30 * MSS), 0);
        cc.on_rto(30 * MSS, 0);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        // Tiny flight: ssthresh floors at 2*SMSS.
        cc.on_rto(0, 0);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn huge_acks_saturate() {
        let mut cc = NewReno::new(u32::MAX);
        cc.on_ack(u32::MAX, SeqNumber::new(1), 0, None);
        assert_eq!(cc.cwnd(), u32::MAX);
    }
}
