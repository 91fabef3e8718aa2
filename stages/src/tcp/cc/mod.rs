//! Congestion control: the window a sender may have in flight.
//!
//! [`CongestionControl`] is what the TCP output calls; [`Cc`] picks an
//! algorithm per socket with static dispatch: [`newreno::NewReno`]
//! (RFC 5681, RFC 3465, RFC 6582) or [`cubic::Cubic`] (RFC 9438). Both
//! share the slow start and the fast-recovery bookkeeping of this module.
//!
//! Sequence numbers (the recover point, the ACK) are
//! [`SeqNumber`]s, compared modulo 2^32.

pub mod cubic;
pub mod newreno;

use crate::tcp::seq::SeqNumber;
use cubic::Cubic;
use newreno::NewReno;

/// The initial window of RFC 6928 §2: min(10*MSS, max(2*MSS, 14600)) bytes.
///
/// ```
/// use tpa_stages::tcp::cc::initial_window;
/// assert_eq!(initial_window(1460), 14600);
/// assert_eq!(initial_window(9000), 18000);
/// ```
pub fn initial_window(mss: u32) -> u32 {
    initial_window_segments(mss, 10)
}

/// RFC 6928 §2's rule with its 10 segments replaced by `segments`:
/// min(N*MSS, max(2*MSS, N*1460)) bytes, so that N = 10 is RFC 6928's
/// window and a large MSS does not multiply it; at least one MSS.
///
/// ```
/// use tpa_stages::tcp::cc::initial_window_segments;
/// assert_eq!(initial_window_segments(1460, 4), 5840);
/// assert_eq!(initial_window_segments(9000, 10), 18000);
/// assert_eq!(initial_window_segments(1000, 0), 1000);
/// ```
pub fn initial_window_segments(mss: u32, segments: u32) -> u32 {
    let n = segments.max(1);
    mss.saturating_mul(n)
        .min(mss.saturating_mul(2).max(n.saturating_mul(1460)))
        .max(mss)
}

/// How a controller starts and how far it may grow.
///
/// ```
/// use tpa_stages::tcp::cc::{Cc, CcLimits, CongestionControl};
/// let limits = CcLimits { mss: 1000, initial_cwnd: 4000, max_cwnd: 6000 };
/// let cc = Cc::newreno_with(limits);
/// assert_eq!(cc.cwnd(), 4000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CcLimits {
    /// Segment size, bytes (0 is taken as 1).
    pub mss: u32,
    /// The initial window, bytes (at least one MSS).
    pub initial_cwnd: u32,
    /// The window's ceiling, bytes (at least the initial window).
    pub max_cwnd: u32,
}

impl CcLimits {
    /// RFC 6928's initial window and no ceiling.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::CcLimits;
    /// assert_eq!(CcLimits::rfc6928(1460).initial_cwnd, 14600);
    /// ```
    pub fn rfc6928(mss: u32) -> Self {
        let mss = mss.max(1);
        CcLimits {
            mss,
            initial_cwnd: initial_window(mss),
            max_cwnd: u32::MAX,
        }
    }

    /// `segments` initial segments (see [`initial_window_segments`]) and
    /// a ceiling of `max_cwnd` bytes.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::CcLimits;
    /// let l = CcLimits::new(1000, 2, 1 << 20);
    /// assert_eq!((l.initial_cwnd, l.max_cwnd), (2000, 1 << 20));
    /// ```
    pub fn new(mss: u32, segments: u32, max_cwnd: u32) -> Self {
        let mss = mss.max(1);
        CcLimits {
            mss,
            initial_cwnd: initial_window_segments(mss, segments),
            max_cwnd,
        }
    }
}

/// What an ACK did to fast recovery.
///
/// ```
/// use tpa_stages::tcp::cc::AckOutcome;
/// assert_ne!(AckOutcome::Normal, AckOutcome::PartialAck);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// Outside recovery, or the ACK that ends it.
    Normal,
    /// In recovery, below the recover point: the first unacknowledged
    /// segment is to be retransmitted now (RFC 6582 §3.2 step 5).
    PartialAck,
}

/// The calls the TCP output makes into a congestion controller.
///
/// ```
/// use tpa_stages::tcp::seq::SeqNumber;
/// use tpa_stages::tcp::cc::{CongestionControl, newreno::NewReno};
/// let mut cc = NewReno::new(1460);
/// cc.on_ack(1460, SeqNumber::new(1461), 0, None);
/// assert!(cc.in_slow_start());
/// assert_eq!(cc.cwnd(), 14600 + 1460);
/// ```
pub trait CongestionControl {
    /// New data acknowledged: `acked_bytes` newly covered by `ack_seq` at
    /// `now_ns`, with the connection's RTT if known.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// cc.on_ack(1000, SeqNumber::new(1000), 0, Some(10_000_000));
    /// assert_eq!(cc.cwnd(), 11_000);
    /// ```
    fn on_ack(
        &mut self,
        acked_bytes: u32,
        ack_seq: SeqNumber,
        now_ns: u64,
        rtt_ns: Option<u64>,
    ) -> AckOutcome;
    /// A duplicate ACK during recovery: inflates the window by one segment
    /// (RFC 5681 §3.2 step 4). Ignored outside recovery.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// cc.on_dup_ack();
    /// assert_eq!(cc.cwnd(), 10_000);
    /// ```
    fn on_dup_ack(&mut self);
    /// The third duplicate ACK: fast retransmit and enter recovery, with
    /// `flight_size` bytes outstanding and `snd_max` the highest sequence
    /// sent (the recover point of RFC 6582 §3.2 step 2). Ignored while
    /// already recovering.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// cc.enter_recovery(8000, SeqNumber::new(8000), 0);
    /// assert!(cc.in_recovery());
    /// ```
    fn enter_recovery(&mut self, flight_size: u32, snd_max: SeqNumber, now_ns: u64);
    /// The retransmission timer expired with `flight_size` bytes out.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// cc.on_rto(8000, 0);
    /// assert_eq!(cc.cwnd(), 1000);
    /// ```
    fn on_rto(&mut self, flight_size: u32, now_ns: u64);
    /// The congestion window, bytes; never below one MSS.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// assert_eq!(cc.cwnd(), 10_000);
    /// ```
    fn cwnd(&self) -> u32;
    /// The slow-start threshold, bytes.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// assert_eq!(cc.ssthresh(), u32::MAX);
    /// ```
    fn ssthresh(&self) -> u32;
    /// Whether cwnd < ssthresh (RFC 5681 §3.1).
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// assert!(cc.in_slow_start());
    /// ```
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
    /// Whether fast recovery is running.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// assert!(!cc.in_recovery());
    /// ```
    fn in_recovery(&self) -> bool;
    /// The last reduction proved spurious (every retransmission D-SACKed:
    /// RFC 3708 §3, Linux's undo): recovery ends, cwnd and ssthresh go
    /// back to at least `prior` (what they were before it).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl, Prior};
    /// let mut cc = Cc::newreno(1000);
    /// let prior = Prior::of(&cc);
    /// cc.enter_recovery(10_000, SeqNumber::new(10_000), 0);
    /// cc.undo(prior);
    /// assert!(!cc.in_recovery());
    /// assert_eq!((cc.cwnd(), cc.ssthresh()), (10_000, u32::MAX));
    /// ```
    fn undo(&mut self, prior: Prior);
    /// The window went unused (an idle restart, an application-limited
    /// period: RFC 7661 §4.4, RFC 5681 §4.1): cwnd falls to `cwnd` (never
    /// raised, never below one MSS) and ssthresh keeps at least three
    /// quarters of the old cwnd (Linux's `tcp_current_ssthresh`); a CUBIC
    /// epoch starts over.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// let mut cc = Cc::newreno(1000);
    /// cc.reduce_unused(4000);
    /// assert_eq!((cc.cwnd(), cc.ssthresh()), (4000, u32::MAX));
    /// cc.reduce_unused(9000);
    /// assert_eq!(cc.cwnd(), 4000, "never raised");
    /// ```
    fn reduce_unused(&mut self, cwnd: u32);
}

/// A controller's window before a reduction, kept to undo it.
///
/// ```
/// use tpa_stages::tcp::cc::{Cc, Prior};
/// assert_eq!(Prior::of(&Cc::newreno(1000)).cwnd, 10_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prior {
    /// cwnd, bytes.
    pub cwnd: u32,
    /// ssthresh, bytes.
    pub ssthresh: u32,
}

impl Prior {
    /// `cc`'s window now.
    pub fn of(cc: &impl CongestionControl) -> Self {
        Prior {
            cwnd: cc.cwnd(),
            ssthresh: cc.ssthresh(),
        }
    }
}

/// A congestion controller picked per socket.
///
/// ```
/// use tpa_stages::tcp::cc::{Cc, CongestionControl};
/// let cc = Cc::cubic(1460);
/// assert_eq!(cc.cwnd(), 14600);
/// ```
#[derive(Clone, Debug)]
// Both algorithms keep their shared `Window` first and the enum is laid
// out as C's tagged union, so the window sits at one offset whichever
// runs: reading cwnd, ssthresh or the recovery flag takes no branch on
// the algorithm.
#[repr(C, u8)]
pub enum Cc {
    /// RFC 5681/6582 NewReno.
    NewReno(NewReno),
    /// RFC 9438 CUBIC.
    Cubic(Cubic),
}

impl Cc {
    /// NewReno for segments of `mss` bytes.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// assert_eq!(Cc::newreno(1000).cwnd(), 10000);
    /// ```
    pub fn newreno(mss: u32) -> Self {
        Cc::NewReno(NewReno::new(mss))
    }

    /// NewReno starting from and bounded by `limits`.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CcLimits, CongestionControl};
    /// assert_eq!(Cc::newreno_with(CcLimits::new(1000, 3, 1 << 20)).cwnd(), 3000);
    /// ```
    pub fn newreno_with(limits: CcLimits) -> Self {
        Cc::NewReno(NewReno::with_limits(limits))
    }

    /// CUBIC for segments of `mss` bytes.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CongestionControl};
    /// assert!(Cc::cubic(1460).in_slow_start());
    /// ```
    pub fn cubic(mss: u32) -> Self {
        Cc::Cubic(Cubic::new(mss))
    }

    /// CUBIC starting from and bounded by `limits`.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{Cc, CcLimits, CongestionControl};
    /// assert_eq!(Cc::cubic_with(CcLimits::new(1000, 3, 1 << 20)).cwnd(), 3000);
    /// ```
    pub fn cubic_with(limits: CcLimits) -> Self {
        Cc::Cubic(Cubic::with_limits(limits))
    }
}

macro_rules! each {
    ($self:ident, $cc:ident => $e:expr) => {
        match $self {
            Cc::NewReno($cc) => $e,
            Cc::Cubic($cc) => $e,
        }
    };
}

impl Cc {
    /// The window state both algorithms share, reached with one match:
    /// what the socket trace compares after every event.
    #[inline]
    pub(crate) fn window(&self) -> &Window {
        each!(self, cc => &cc.w)
    }
}

impl CongestionControl for Cc {
    fn on_ack(
        &mut self,
        acked_bytes: u32,
        ack_seq: SeqNumber,
        now_ns: u64,
        rtt_ns: Option<u64>,
    ) -> AckOutcome {
        each!(self, cc => cc.on_ack(acked_bytes, ack_seq, now_ns, rtt_ns))
    }
    fn on_dup_ack(&mut self) {
        each!(self, cc => cc.on_dup_ack())
    }
    fn enter_recovery(&mut self, flight_size: u32, snd_max: SeqNumber, now_ns: u64) {
        each!(self, cc => cc.enter_recovery(flight_size, snd_max, now_ns))
    }
    fn on_rto(&mut self, flight_size: u32, now_ns: u64) {
        each!(self, cc => cc.on_rto(flight_size, now_ns))
    }
    #[inline]
    fn cwnd(&self) -> u32 {
        self.window().cwnd
    }
    #[inline]
    fn ssthresh(&self) -> u32 {
        self.window().ssthresh
    }
    #[inline]
    fn in_recovery(&self) -> bool {
        self.window().recover.is_some()
    }
    fn undo(&mut self, prior: Prior) {
        each!(self, cc => cc.undo(prior))
    }
    fn reduce_unused(&mut self, cwnd: u32) {
        each!(self, cc => cc.reduce_unused(cwnd))
    }
}

/// Window state both algorithms share: cwnd, ssthresh, slow start with
/// appropriate byte counting, and NewReno fast recovery.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub(crate) mss: u32,
    pub(crate) cwnd: u32,
    /// The ceiling cwnd never passes (`TcpConfig::max_cwnd_bytes`).
    pub(crate) max_cwnd: u32,
    pub(crate) ssthresh: u32,
    /// The recover point while in fast recovery (RFC 6582 §3.2).
    pub(crate) recover: Option<SeqNumber>,
    /// Bytes acknowledged toward the next congestion-avoidance increase
    /// (RFC 3465 §2.1).
    pub(crate) bytes_acked: u32,
}

impl Window {
    pub(crate) fn new(limits: CcLimits) -> Self {
        // An MSS of 0 would make every window 0: one byte is the floor.
        let mss = limits.mss.max(1);
        // The floors every window keeps: ssthresh >= 2*SMSS, so the
        // ceiling is at least that too.
        let max_cwnd = limits.max_cwnd.max(mss.saturating_mul(2));
        Window {
            mss,
            cwnd: limits.initial_cwnd.clamp(mss, max_cwnd),
            max_cwnd,
            // RFC 5681 §3.1: "arbitrarily high" initial ssthresh.
            ssthresh: u32::MAX,
            recover: None,
            bytes_acked: 0,
        }
    }

    /// RFC 5681 §3.1 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS).
    pub(crate) fn halved(&self, flight_size: u32) -> u32 {
        (flight_size / 2).max(self.mss.saturating_mul(2))
    }

    /// Slow start with RFC 3465 §2.2's limit L = 2*SMSS per ACK; cwnd stops
    /// at ssthresh is not required by RFC 5681 (it may overshoot by < L).
    pub(crate) fn slow_start(&mut self, acked_bytes: u32) {
        let inc = acked_bytes.min(self.mss.saturating_mul(2));
        self.cwnd = self.cwnd.saturating_add(inc).min(self.max_cwnd);
    }

    /// Recovery bookkeeping for a new ACK. Returns `None` when not in
    /// recovery (the algorithm grows the window), otherwise the outcome.
    pub(crate) fn recovery_ack(
        &mut self,
        acked_bytes: u32,
        ack_seq: SeqNumber,
    ) -> Option<AckOutcome> {
        let recover = self.recover?;
        if ack_seq.ge(recover) {
            // RFC 6582 §3.2 step 3 (full ACK), option 2: cwnd = ssthresh.
            self.recover = None;
            self.cwnd = self.ssthresh.clamp(self.mss, self.max_cwnd);
            self.bytes_acked = 0;
            Some(AckOutcome::Normal)
        } else {
            // RFC 6582 §3.2 step 5 (partial ACK): deflate by the amount
            // acknowledged, add back one SMSS if that was at least one SMSS.
            self.cwnd = self.cwnd.saturating_sub(acked_bytes);
            if acked_bytes >= self.mss {
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
            self.cwnd = self.cwnd.max(self.mss);
            Some(AckOutcome::PartialAck)
        }
    }

    /// Enters fast recovery with the new ssthresh (RFC 5681 §3.2 step 3:
    /// cwnd = ssthresh + 3*SMSS).
    pub(crate) fn start_recovery(&mut self, ssthresh: u32, snd_max: SeqNumber) {
        self.ssthresh = ssthresh.max(self.mss.saturating_mul(2));
        self.cwnd = self
            .ssthresh
            .saturating_add(self.mss.saturating_mul(3))
            .min(self.max_cwnd);
        self.recover = Some(snd_max);
        self.bytes_acked = 0;
    }

    /// RFC 5681 §3.2 step 4: each further duplicate ACK adds one SMSS.
    pub(crate) fn dup_ack(&mut self) {
        if self.recover.is_some() {
            self.cwnd = self.cwnd.saturating_add(self.mss).min(self.max_cwnd);
        }
    }

    /// Undoes a spurious reduction (RFC 3708 §3; Linux's
    /// tcp_undo_cwnd_reduction keeps the larger of each).
    pub(crate) fn undo(&mut self, prior: Prior) {
        self.recover = None;
        self.bytes_acked = 0;
        self.cwnd = self.cwnd.max(prior.cwnd).clamp(self.mss, self.max_cwnd);
        self.ssthresh = self.ssthresh.max(prior.ssthresh);
    }

    /// An unused window shrinks (RFC 7661 §4.4).
    pub(crate) fn reduce_unused(&mut self, cwnd: u32) {
        if cwnd >= self.cwnd {
            return;
        }
        self.ssthresh = self.ssthresh.max(self.cwnd / 4 * 3);
        self.cwnd = cwnd.max(self.mss);
        self.bytes_acked = 0;
    }

    /// RFC 5681 §3.1: after a timeout cwnd is the loss window, one SMSS;
    /// recovery is abandoned (RFC 6582 §3.2 step 2's note on timeouts).
    pub(crate) fn timeout(&mut self, ssthresh: u32) {
        self.ssthresh = ssthresh.max(self.mss.saturating_mul(2));
        self.cwnd = self.mss;
        self.recover = None;
        self.bytes_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(initial_window(1460), 14600);
        assert_eq!(initial_window(536), 5360);
        assert_eq!(initial_window(1), 10);
        // min(90000, max(18000, 14600)) = 18000
        assert_eq!(initial_window(9000), 18000);
        assert_eq!(initial_window(u32::MAX), u32::MAX);
    }

    #[test]
    fn initial_window_in_segments_generalises_rfc_6928() {
        for mss in [1, 536, 1460, 9000, u32::MAX] {
            assert_eq!(initial_window_segments(mss, 10), initial_window(mss));
        }
        assert_eq!(initial_window_segments(1000, 1), 1000);
        assert_eq!(initial_window_segments(1460, 4), 4 * 1460);
        // A jumbo MSS: max(2*MSS, 4*1460) = 18000 < 4*9000.
        assert_eq!(initial_window_segments(9000, 4), 18000);
        assert_eq!(initial_window_segments(1000, 0), 1000);
    }

    #[test]
    fn limits_set_the_start_and_cap_every_growth() {
        let limits = CcLimits::new(1000, 3, 7500);
        for mut cc in [Cc::newreno_with(limits), Cc::cubic_with(limits)] {
            assert_eq!(cc.cwnd(), 3000);
            let mut seq = 0u32;
            for i in 0..1000u64 {
                seq = seq.wrapping_add(1000);
                cc.on_ack(1000, SeqNumber::new(seq), i * 1_000_000, Some(1_000_000));
                assert!(cc.cwnd() <= 7500, "{cc:?}");
            }
            assert_eq!(cc.cwnd(), 7500, "{cc:?}");
            // Inflation in recovery stops at the ceiling too.
            cc.enter_recovery(7500, SeqNumber::new(seq.wrapping_add(7500)), 0);
            for _ in 0..20 {
                cc.on_dup_ack();
                assert!(cc.cwnd() <= 7500, "{cc:?}");
            }
        }
        // A ceiling under 2*SMSS is raised to it (ssthresh's floor).
        let tiny = Cc::newreno_with(CcLimits::new(1000, 10, 1));
        assert_eq!(tiny.cwnd(), 2000);
    }

    proptest! {
        #[test]
        fn any_event_sequence_keeps_cwnd_at_least_one_mss(
            cubic in any::<bool>(),
            mss in 1u32..65536,
            events in proptest::collection::vec((0u8..6, any::<u32>(), any::<u32>(), 0u64..10_000_000_000, proptest::option::of(any::<u64>())), 0..200),
        ) {
            let mut cc = if cubic { Cc::cubic(mss) } else { Cc::newreno(mss) };
            let mut now = 0u64;
            for (kind, bytes, seq, dt, rtt) in events {
                now = now.saturating_add(dt);
                match kind {
                    0 => { cc.on_ack(bytes, SeqNumber::new(seq), now, rtt); }
                    1 => cc.on_dup_ack(),
                    2 => cc.enter_recovery(bytes, SeqNumber::new(seq), now),
                    3 => cc.on_rto(bytes, now),
                    4 => cc.reduce_unused(bytes),
                    _ => cc.undo(Prior { cwnd: bytes, ssthresh: seq }),
                }
                prop_assert!(cc.cwnd() >= mss, "cwnd {} < mss {}", cc.cwnd(), mss);
                prop_assert!(cc.ssthresh() >= mss.saturating_mul(2));
            }
        }
    }
}
