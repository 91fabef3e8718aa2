//! CUBIC (RFC 9438): a window that grows as a cubic function of the time
//! since the last congestion event, concave up to the window where the
//! loss happened (W_max), convex beyond, never slower than Reno would be.
//!
//! The math is `f64` in segments; every input is bounded (windows capped
//! at what a `u32` of bytes holds, time a `u64` of nanoseconds) so no
//! value becomes infinite or NaN.

use super::{AckOutcome, CcLimits, CongestionControl, Prior, Window};
use crate::tcp::seq::SeqNumber;

/// RFC 9438 §5.1: C = 0.4 (segments / second^3).
const C: f64 = 0.4;
/// RFC 9438 §5.1: beta_cubic = 0.7, the multiplicative decrease factor.
const BETA: f64 = 0.7;
/// RFC 9438 §4.3 eq. (4): alpha_cubic = 3 * (1 - beta) / (1 + beta).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// RFC 9438 §4.4: the target is at most 1.5 * cwnd.
const MAX_TARGET_RATIO: f64 = 1.5;

/// The CUBIC congestion controller.
///
/// ```
/// use tpa_stages::tcp::seq::SeqNumber;
/// use tpa_stages::tcp::cc::{CongestionControl, cubic::Cubic};
/// let mut cc = Cubic::new(1000);
/// cc.enter_recovery(100_000, SeqNumber::new(100_000), 0);
/// assert_eq!(cc.ssthresh(), 70_000);
/// ```
#[derive(Clone, Debug)]
#[repr(C)] // `w` first: see `Cc`
pub struct Cubic {
    pub(super) w: Window,
    /// Window at the last congestion event (after fast convergence), segments.
    w_max: f64,
    /// cwnd just before the last reduction, segments (RFC 9438 §4.3 cwnd_prior).
    cwnd_prior: f64,
    /// The current congestion-avoidance epoch, if one began.
    epoch: Option<Epoch>,
    /// The last RTT the output reported, nanoseconds.
    rtt_ns: u64,
    /// W_max before the last reduction, for an undo.
    undo_w_max: f64,
}

/// One congestion-avoidance stage (RFC 9438 §4.2).
#[derive(Clone, Copy, Debug)]
struct Epoch {
    start_ns: u64,
    /// K: seconds until W_cubic reaches W_max (§4.2 eq. (2)).
    k: f64,
    /// cwnd in segments, with the fractions integer bytes lose.
    cwnd: f64,
    /// The Reno-friendly estimate W_est, segments (§4.3).
    w_est: f64,
}

impl Cubic {
    /// Starts at the RFC 6928 initial window for segments of `mss` bytes
    /// (an `mss` of 0 is taken as 1).
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{CongestionControl, cubic::Cubic};
    /// assert_eq!(Cubic::new(1460).cwnd(), 14600);
    /// ```
    pub fn new(mss: u32) -> Self {
        Self::with_limits(CcLimits::rfc6928(mss))
    }

    /// Starts at `limits.initial_cwnd` and never grows past
    /// `limits.max_cwnd`.
    ///
    /// ```
    /// use tpa_stages::tcp::cc::{CcLimits, CongestionControl, cubic::Cubic};
    /// assert_eq!(Cubic::with_limits(CcLimits::new(1000, 2, 4000)).cwnd(), 2000);
    /// ```
    pub fn with_limits(limits: CcLimits) -> Self {
        Cubic {
            w: Window::new(limits),
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch: None,
            rtt_ns: 0,
            undo_w_max: 0.0,
        }
    }

    /// The largest window in segments: the ceiling (at most what a
    /// `u32` of bytes holds).
    fn cap(&self) -> f64 {
        f64::from(self.w.max_cwnd) / f64::from(self.w.mss)
    }

    fn cwnd_segments(&self) -> f64 {
        f64::from(self.w.cwnd) / f64::from(self.w.mss)
    }

    /// W_cubic(t) = C * (t - K)^3 + W_max (RFC 9438 §4.2 eq. (1)).
    fn w_cubic(&self, t: f64, k: f64) -> f64 {
        C * (t - k).powi(3) + self.w_max
    }

    /// A congestion event: fast convergence (§4.7), then ssthresh =
    /// FlightSize * beta_cubic (§4.6). Returns the new ssthresh in bytes.
    fn reduce(&mut self, flight_size: u32) -> u32 {
        let cwnd = self.cwnd_segments();
        self.undo_w_max = self.w_max;
        self.cwnd_prior = cwnd;
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        self.epoch = None;
        // Saturating float-to-int cast: the product is finite and >= 0.
        (f64::from(flight_size) * BETA) as u32
    }

    /// Congestion avoidance for one ACK of `acked_bytes` (§4.2–§4.5).
    fn avoid(&mut self, acked_bytes: u32, now_ns: u64) {
        let cap = self.cap();
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                let cwnd = self.cwnd_segments();
                // §4.2 eq. (2): K = cbrt((W_max - cwnd_epoch) / C); a window
                // already at or past W_max starts the curve from itself.
                if self.w_max < cwnd {
                    self.w_max = cwnd;
                }
                let k = ((self.w_max - cwnd) / C).cbrt();
                // §4.3: W_est starts at cwnd_epoch.
                Epoch {
                    start_ns: now_ns,
                    k,
                    cwnd,
                    w_est: cwnd,
                }
            }
        };
        let mut e = epoch;
        let t = now_ns.saturating_sub(e.start_ns) as f64 / 1e9;
        let rtt = self.rtt_ns as f64 / 1e9;
        let acked = f64::from(acked_bytes) / f64::from(self.w.mss);
        // §4.3 eq. (5), alpha_cubic = 1 once W_est reached cwnd_prior.
        let alpha = if e.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        e.w_est = (e.w_est + alpha * acked / e.cwnd).min(cap);
        if self.w_cubic(t, e.k) < e.w_est {
            // §4.3: the Reno-friendly region.
            e.cwnd = e.cwnd.max(e.w_est);
        } else {
            // §4.4/§4.5: grow toward W_cubic(t + RTT), held within
            // [cwnd, 1.5 * cwnd], by (target - cwnd) / cwnd per segment.
            let target = self
                .w_cubic(t + rtt, e.k)
                .clamp(e.cwnd, MAX_TARGET_RATIO * e.cwnd);
            e.cwnd += (target - e.cwnd) / e.cwnd * acked;
        }
        e.cwnd = e.cwnd.min(cap);
        // Saturating cast of a finite, non-negative value.
        self.w.cwnd = ((e.cwnd * f64::from(self.w.mss)) as u32).max(self.w.mss);
        self.epoch = Some(e);
    }
}

impl CongestionControl for Cubic {
    fn on_ack(
        &mut self,
        acked_bytes: u32,
        ack_seq: SeqNumber,
        now_ns: u64,
        rtt_ns: Option<u64>,
    ) -> AckOutcome {
        if let Some(rtt) = rtt_ns {
            // Bounded so t + RTT stays a sensible number of seconds.
            self.rtt_ns = rtt.min(3_600_000_000_000);
        }
        if let Some(outcome) = self.w.recovery_ack(acked_bytes, ack_seq) {
            return outcome;
        }
        if self.w.cwnd < self.w.ssthresh {
            // RFC 9438 §4.10: slow start as in RFC 5681 (with RFC 3465's L).
            self.w.slow_start(acked_bytes);
        } else {
            self.avoid(acked_bytes, now_ns);
        }
        AckOutcome::Normal
    }

    fn on_dup_ack(&mut self) {
        self.w.dup_ack();
    }

    fn enter_recovery(&mut self, flight_size: u32, snd_max: SeqNumber, _now_ns: u64) {
        if self.w.recover.is_none() {
            let ssthresh = self.reduce(flight_size);
            self.w.start_recovery(ssthresh, snd_max);
        }
    }

    fn on_rto(&mut self, flight_size: u32, _now_ns: u64) {
        // RFC 9438 §4.8: ssthresh as after a loss, cwnd as Reno (one SMSS).
        let ssthresh = self.reduce(flight_size);
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
        // The curve restarts from the window before the loss (Linux's
        // cubic keeps W_max from before the event too).
        self.w_max = self.undo_w_max;
        self.epoch = None;
        self.w.undo(prior);
    }

    fn reduce_unused(&mut self, cwnd: u32) {
        // The curve restarts from the smaller window (Linux's cubic moves
        // its epoch past an idle period rather than jumping along it).
        if cwnd < self.w.cwnd {
            self.epoch = None;
        }
        self.w.reduce_unused(cwnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::cc::newreno::NewReno;

    const MSS: u32 = 1000;
    const MS: u64 = 1_000_000;

    /// Sends one window per RTT, ACKing it a segment at a time; returns
    /// the cwnd (segments) after each RTT.
    fn run<T: CongestionControl>(
        cc: &mut T,
        seq: &mut u32,
        now: &mut u64,
        rtt_ns: u64,
        rtts: usize,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        for _ in 0..rtts {
            let segments = (cc.cwnd() / MSS).max(1);
            let step = rtt_ns / u64::from(segments);
            for _ in 0..segments {
                *now += step;
                *seq = seq.wrapping_add(MSS);
                cc.on_ack(MSS, SeqNumber::new(*seq), *now, Some(rtt_ns));
            }
            out.push(cc.cwnd() / MSS);
        }
        out
    }

    /// A Cubic at 100 segments that has just lost and finished recovery.
    fn after_loss_at_100() -> (Cubic, u32, u64) {
        let mut cc = Cubic::new(MSS);
        cc.w.cwnd = 100 * MSS;
        cc.w.ssthresh = 100 * MSS;
        let seq = 1_000_000u32;
        cc.enter_recovery(100 * MSS, SeqNumber::new(seq), 0);
        cc.on_ack(MSS, SeqNumber::new(seq), 0, None);
        (cc, seq, 0)
    }

    #[test]
    fn after_a_loss_cwnd_is_beta_times_the_window() {
        let (cc, _, _) = after_loss_at_100();
        assert!(!cc.in_recovery());
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert_eq!(cc.w_max, 100.0);
    }

    #[test]
    fn k_matches_the_rfc_formula() {
        // RFC 9438 eq. (2): K = cbrt(W_max (1 - beta) / C) = cbrt(75) s.
        let (mut cc, mut seq, mut now) = after_loss_at_100();
        run(&mut cc, &mut seq, &mut now, 100 * MS, 1);
        let k = cc.epoch.map(|e| e.k).unwrap_or(0.0);
        assert!((k - 75f64.cbrt()).abs() < 1e-9, "K = {k}");
    }

    #[test]
    fn window_grows_concave_up_to_w_max_then_convex() {
        let (mut cc, mut seq, mut now) = after_loss_at_100();
        // K = 4.22 s = 42 RTTs of 100 ms.
        let w = run(&mut cc, &mut seq, &mut now, 100 * MS, 84);
        let growth = |a: usize, b: usize| i64::from(w[b]) - i64::from(w[a]);
        // Concave: the first half toward K grows more than the second.
        assert!(growth(0, 20) > 2 * growth(20, 40), "{w:?}");
        // Plateau near W_max around K.
        assert!((95..=105).contains(&w[41]), "{w:?}");
        // Convex: growth accelerates past K.
        assert!(growth(62, 83) > 2 * growth(42, 62), "{w:?}");
        assert!(w.windows(2).all(|p| p[1] >= p[0]), "{w:?}");
    }

    #[test]
    fn fast_convergence_lowers_w_max_when_losses_come_sooner() {
        let (mut cc, seq, _) = after_loss_at_100();
        // A second loss at 70 < W_max 100: W_max = 70 * 1.7 / 2 = 59.5.
        cc.enter_recovery(70 * MSS, SeqNumber::new(seq.wrapping_add(70 * MSS)), 0);
        assert!((cc.w_max - 59.5).abs() < 1e-9);
        assert_eq!(cc.ssthresh(), 49 * MSS);
    }

    #[test]
    fn reno_friendly_region_matches_newreno_at_small_rtt() {
        // At 1 ms RTT the cubic curve is nearly flat for seconds, so the
        // window follows W_est, which grows like NewReno once past W_max.
        let (mut cubic, mut seq, mut now) = after_loss_at_100();
        let mut reno = NewReno::new(MSS);
        reno.on_rto(140 * MSS, 0);
        let (mut rseq, mut rnow) = (0u32, 0u64);
        run(&mut reno, &mut rseq, &mut rnow, MS, 200); // leave slow start
        let c = run(&mut cubic, &mut seq, &mut now, MS, 200);
        let r = run(&mut reno, &mut rseq, &mut rnow, MS, 200);
        // Before W_est reaches cwnd_prior: alpha_cubic = 0.53 segment per RTT.
        let early = f64::from(c[40] - c[0]) / 40.0;
        assert!(
            (early - ALPHA).abs() < 0.15,
            "early per-RTT growth {early}, {c:?}"
        );
        // After: one segment per RTT, as NewReno.
        let (cg, rg) = (c[199] - c[99], r[199] - r[99]);
        assert!(
            (95..=105).contains(&rg),
            "newreno grew {rg} segments in 100 RTTs"
        );
        assert!(
            cg.abs_diff(rg) <= 2,
            "cubic {cg} vs newreno {rg} segments per 100 RTTs"
        );
    }

    #[test]
    fn timeout_sets_one_segment_and_restarts_from_slow_start() {
        let (mut cc, mut seq, mut now) = after_loss_at_100();
        cc.on_rto(70 * MSS, now);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 49 * MSS);
        assert!(cc.in_slow_start());
        run(&mut cc, &mut seq, &mut now, 10 * MS, 10);
        assert!(cc.cwnd() >= 49 * MSS);
    }

    #[test]
    fn extreme_inputs_stay_finite() {
        let mut cc = Cubic::new(1);
        cc.w.ssthresh = 2;
        cc.on_ack(u32::MAX, SeqNumber::new(1), 0, Some(u64::MAX));
        cc.on_ack(u32::MAX, SeqNumber::new(2), u64::MAX, Some(u64::MAX));
        assert!(cc.cwnd() >= 1);
        let e = cc.epoch.expect("in congestion avoidance");
        assert!(e.cwnd.is_finite() && e.w_est.is_finite());
    }
}
