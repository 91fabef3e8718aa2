//! The retransmission timeout estimator of RFC 6298.
//!
//! Round-trip samples feed a smoothed RTT (SRTT) and its variation (RTTVAR);
//! the timeout is derived from both, backed off on every expiry and reset by
//! the next valid sample. Karn's rule is the caller's to state: a sample
//! from a retransmitted segment is [`RttSample::Ambiguous`] and is ignored,
//! unless timestamps tell which transmission it measures (then it is
//! [`RttSample::Clean`]).

/// RFC 6298 §2: alpha = 1/8 (SRTT gain), as a divisor.
const ALPHA_DIV: u128 = 8;
/// RFC 6298 §2: beta = 1/4 (RTTVAR gain), as a divisor.
const BETA_DIV: u128 = 4;
/// RFC 6298 §2: K = 4 (RTTVAR multiplier).
const K: u128 = 4;

/// Bounds and granularity of the timeout, in nanoseconds.
///
/// ```
/// use tpa_stages::tcp::rto::RtoConfig;
/// let cfg = RtoConfig::default();
/// assert_eq!(cfg.min_ns, 200_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoConfig {
    /// Lowest timeout (Linux `TCP_RTO_MIN`, 200 ms; RFC 6298 §2.4 says 1 s).
    pub min_ns: u64,
    /// Highest timeout (Linux `TCP_RTO_MAX`, 120 s; RFC 6298 §2.5 allows a maximum of at least 60 s).
    pub max_ns: u64,
    /// Timeout before any sample (RFC 6298 §2.1: 1 s).
    pub initial_ns: u64,
    /// Clock granularity G of RFC 6298 §2.
    pub granularity_ns: u64,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            min_ns: 200_000_000,
            max_ns: 120_000_000_000,
            initial_ns: 1_000_000_000,
            granularity_ns: 1_000_000,
        }
    }
}

/// One round-trip measurement, as Karn's rule sees it.
///
/// ```
/// use tpa_stages::tcp::rto::RttSample;
/// let s = RttSample::Ambiguous(5_000_000);
/// assert!(matches!(s, RttSample::Ambiguous(_)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RttSample {
    /// Measures one known transmission: a segment never retransmitted, or
    /// one whose echoed timestamp names the transmission acknowledged.
    Clean(u64),
    /// Measures a retransmitted segment without a timestamp to say which
    /// copy was acknowledged: ignored (Karn's rule, RFC 6298 §3).
    Ambiguous(u64),
}

/// SRTT, RTTVAR, the current timeout and its backoff.
///
/// ```
/// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator, RttSample};
/// let mut rto = RtoEstimator::new(RtoConfig::default());
/// assert_eq!(rto.rto_ns(), 1_000_000_000);
/// rto.on_sample(RttSample::Clean(100_000_000));
/// assert_eq!(rto.rto_ns(), 300_000_000);
/// ```
#[derive(Clone, Debug)]
pub struct RtoEstimator {
    cfg: RtoConfig,
    srtt_ns: Option<u64>,
    rttvar_ns: u64,
    rto_ns: u64,
    backoffs: u32,
}

impl RtoEstimator {
    /// An estimator with no sample yet (timeout `cfg.initial_ns`). A
    /// maximum below the minimum is raised to it, and the initial timeout
    /// clamped to the bounds, so the timeout always lies within them.
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator};
    /// let rto = RtoEstimator::new(RtoConfig { max_ns: 1, ..RtoConfig::default() });
    /// assert_eq!(rto.rto_ns(), 200_000_000);
    /// ```
    pub fn new(mut cfg: RtoConfig) -> Self {
        cfg.max_ns = cfg.max_ns.max(cfg.min_ns);
        let rto_ns = cfg.initial_ns.clamp(cfg.min_ns, cfg.max_ns);
        RtoEstimator {
            cfg,
            srtt_ns: None,
            rttvar_ns: 0,
            rto_ns,
            backoffs: 0,
        }
    }

    /// Takes one sample; returns whether it was used (an ambiguous one is
    /// not). A used sample updates SRTT and RTTVAR (RFC 6298 §2.2, §2.3),
    /// recomputes the timeout and clears the backoff (§5.7's "RTO is
    /// recomputed" once a valid sample arrives after backing off).
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator, RttSample};
    /// let mut rto = RtoEstimator::new(RtoConfig::default());
    /// assert!(!rto.on_sample(RttSample::Ambiguous(100_000_000)));
    /// assert!(rto.on_sample(RttSample::Clean(100_000_000)));
    /// ```
    #[inline(always)]
    pub fn on_sample(&mut self, sample: RttSample) -> bool {
        let r = match sample {
            RttSample::Clean(r) => r,
            RttSample::Ambiguous(_) => return false,
        };
        match self.srtt_ns {
            // A sample equal to SRTT with RTTVAR at 0 and no backoff (a
            // steady RTT, every sample of a short path measured in
            // timestamp ticks): the update below leaves SRTT, RTTVAR and
            // the RTO as they are (the RTO was computed from them, since
            // only a timeout changes it otherwise, and a timeout counts a
            // backoff).
            Some(srtt) if srtt == r && (self.rttvar_ns | u64::from(self.backoffs)) == 0 => {
                #[cfg(any(test, debug_assertions))]
                assert_eq!(self.rto_ns, self.computed_rto());
                return true;
            }
            // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
            None => {
                self.srtt_ns = Some(r);
                self.rttvar_ns = r / 2;
            }
            // RFC 6298 §2.3: RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|,
            // then SRTT <- (1 - alpha) * SRTT + alpha * R' (RTTVAR first).
            // In u64 while every term is below 2^60 (any real RTT, in ns:
            // 36 years): no product or sum can overflow, and the result is
            // the same as in u128, which takes the rest.
            Some(srtt) if (srtt | r | self.rttvar_ns) < 1 << 60 => {
                let var = self.rttvar_ns;
                self.rttvar_ns = (var * (BETA_DIV as u64 - 1) + srtt.abs_diff(r)) / BETA_DIV as u64;
                self.srtt_ns = Some((srtt * (ALPHA_DIV as u64 - 1) + r) / ALPHA_DIV as u64);
            }
            Some(srtt) => self.update_wide(srtt, r),
        }
        self.backoffs = 0;
        self.rto_ns = self.computed_rto();
        true
    }

    /// [`on_sample`](Self::on_sample)'s RFC 6298 §2.3 update in u128,
    /// for terms of 2^60 ns and more (out of line: no real RTT gets here).
    #[cold]
    #[inline(never)]
    fn update_wide(&mut self, srtt: u64, r: u64) {
        let (srtt, r, var) = (u128::from(srtt), u128::from(r), u128::from(self.rttvar_ns));
        let var = (var * (BETA_DIV - 1) + srtt.abs_diff(r)) / BETA_DIV;
        let srtt = (srtt * (ALPHA_DIV - 1) + r) / ALPHA_DIV;
        // Both are weighted means of u64 values: they fit.
        self.rttvar_ns = u64::try_from(var).unwrap_or(u64::MAX);
        self.srtt_ns = Some(u64::try_from(srtt).unwrap_or(u64::MAX));
    }

    /// The timer expired: doubles the timeout (RFC 6298 §5.5), clamped to
    /// the maximum (§5.5 allows it, §2.5 sets it).
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator};
    /// let mut rto = RtoEstimator::new(RtoConfig::default());
    /// rto.on_timeout();
    /// assert_eq!(rto.rto_ns(), 2_000_000_000);
    /// assert_eq!(rto.backoffs(), 1);
    /// ```
    pub fn on_timeout(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1);
        self.rto_ns = self.rto_ns.saturating_mul(2).min(self.cfg.max_ns);
    }

    /// The current timeout, always within the configured bounds.
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator};
    /// assert_eq!(RtoEstimator::new(RtoConfig::default()).rto_ns(), 1_000_000_000);
    /// ```
    pub fn rto_ns(&self) -> u64 {
        self.rto_ns
    }

    /// The smoothed RTT, once a sample was taken.
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator};
    /// assert_eq!(RtoEstimator::new(RtoConfig::default()).srtt_ns(), None);
    /// ```
    pub fn srtt_ns(&self) -> Option<u64> {
        self.srtt_ns
    }

    /// The RTT variation (0 before the first sample).
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator, RttSample};
    /// let mut rto = RtoEstimator::new(RtoConfig::default());
    /// rto.on_sample(RttSample::Clean(10));
    /// assert_eq!(rto.rttvar_ns(), 5);
    /// ```
    pub fn rttvar_ns(&self) -> u64 {
        self.rttvar_ns
    }

    /// How many expiries since the last valid sample.
    ///
    /// ```
    /// use tpa_stages::tcp::rto::{RtoConfig, RtoEstimator};
    /// assert_eq!(RtoEstimator::new(RtoConfig::default()).backoffs(), 0);
    /// ```
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// RFC 6298 §2.2/§2.3: RTO <- SRTT + max(G, K * RTTVAR), then the
    /// bounds of §2.4 (minimum) and §2.5 (maximum). In u64, saturating: a sum past u64::MAX is past the maximum
    /// either way, so the clamp gives what exact arithmetic would.
    #[inline]
    fn computed_rto(&self) -> u64 {
        let srtt = self.srtt_ns.unwrap_or(0);
        let var = self
            .rttvar_ns
            .saturating_mul(K as u64)
            .max(self.cfg.granularity_ns);
        // `new` keeps min ≤ max: the same as `clamp`, without its check.
        srtt.saturating_add(var)
            .max(self.cfg.min_ns)
            .min(self.cfg.max_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn est() -> RtoEstimator {
        RtoEstimator::new(RtoConfig::default())
    }

    #[test]
    fn initial_timeout_is_one_second() {
        // RFC 6298 §2.1.
        let r = est();
        assert_eq!(r.rto_ns(), 1000 * MS);
        assert_eq!(r.srtt_ns(), None);
    }

    #[test]
    fn first_and_second_samples_follow_the_rfc_formulas() {
        let mut r = est();
        // §2.2: R = 100 ms -> SRTT 100, RTTVAR 50, RTO = 100 + 4*50 = 300 ms.
        assert!(r.on_sample(RttSample::Clean(100 * MS)));
        assert_eq!(r.srtt_ns(), Some(100 * MS));
        assert_eq!(r.rttvar_ns(), 50 * MS);
        assert_eq!(r.rto_ns(), 300 * MS);
        // §2.3: R' = 200 ms -> RTTVAR = 3/4*50 + 1/4*100 = 62.5,
        // SRTT = 7/8*100 + 1/8*200 = 112.5, RTO = 112.5 + 250 = 362.5 ms.
        r.on_sample(RttSample::Clean(200 * MS));
        assert_eq!(r.rttvar_ns(), 62_500_000);
        assert_eq!(r.srtt_ns(), Some(112_500_000));
        assert_eq!(r.rto_ns(), 362_500_000);
    }

    #[test]
    fn small_rtt_is_raised_to_the_minimum_and_granularity_counts() {
        let mut r = est();
        r.on_sample(RttSample::Clean(MS));
        assert_eq!(r.rto_ns(), 200 * MS);
        // With no minimum, a steady RTT of 10 ms ends at SRTT + G once
        // RTTVAR has decayed below G/4.
        let mut r = RtoEstimator::new(RtoConfig {
            min_ns: 0,
            granularity_ns: 5 * MS,
            ..RtoConfig::default()
        });
        for _ in 0..200 {
            r.on_sample(RttSample::Clean(10 * MS));
        }
        assert_eq!(r.rttvar_ns(), 0);
        assert_eq!(r.rto_ns(), 15 * MS);
    }

    #[test]
    fn timeouts_double_up_to_the_maximum() {
        let mut r = est();
        let mut expected = 1000 * MS;
        for i in 1..=10 {
            r.on_timeout();
            expected = (expected * 2).min(120_000 * MS);
            assert_eq!(r.rto_ns(), expected, "after {i} timeouts");
        }
        assert_eq!(r.rto_ns(), 120_000 * MS);
        assert_eq!(r.backoffs(), 10);
    }

    #[test]
    fn karn_ambiguous_samples_are_ignored_and_do_not_reset_backoff() {
        let mut r = est();
        r.on_sample(RttSample::Clean(100 * MS));
        r.on_timeout();
        r.on_timeout();
        assert_eq!(r.rto_ns(), 1200 * MS);
        assert!(!r.on_sample(RttSample::Ambiguous(5 * MS)));
        assert_eq!(r.rto_ns(), 1200 * MS);
        assert_eq!(r.srtt_ns(), Some(100 * MS));
        assert_eq!(r.backoffs(), 2);
        // A valid sample clears the backoff and recomputes.
        assert!(r.on_sample(RttSample::Clean(100 * MS)));
        assert_eq!(r.backoffs(), 0);
        assert!(r.rto_ns() < 1200 * MS);
    }

    #[test]
    fn extreme_samples_saturate_at_the_maximum() {
        let mut r = est();
        r.on_sample(RttSample::Clean(u64::MAX));
        assert_eq!(r.rto_ns(), 120_000 * MS);
        r.on_sample(RttSample::Clean(0));
        r.on_sample(RttSample::Clean(u64::MAX));
        assert_eq!(r.rto_ns(), 120_000 * MS);
    }

    /// RFC 6298 §2 in u128 throughout: what the estimator's u64 paths
    /// must give.
    fn reference(cfg: &RtoConfig, samples: &[u64]) -> (Option<u64>, u64, u64) {
        let (mut srtt, mut var) = (None::<u128>, 0u128);
        for &r in samples {
            let r = u128::from(r);
            match srtt {
                None => (srtt, var) = (Some(r), r / 2),
                Some(s) => {
                    var = (var * 3 + s.abs_diff(r)) / 4;
                    srtt = Some((s * 7 + r) / 8);
                }
            }
        }
        let max = cfg.max_ns.max(cfg.min_ns);
        let rto = match srtt {
            None => cfg.initial_ns.clamp(cfg.min_ns, max),
            Some(s) => (s + (4 * var).max(u128::from(cfg.granularity_ns)))
                .clamp(u128::from(cfg.min_ns), u128::from(max)) as u64,
        };
        (srtt.map(|s| s as u64), var as u64, rto)
    }

    proptest! {
        #[test]
        fn the_estimator_matches_rfc_6298_in_u128(
            min in 0u64..10_000_000_000,
            max in any::<u64>(),
            g in any::<u64>(),
            samples in proptest::collection::vec(
                prop_oneof![0u64..1 << 40, (1u64 << 59)..(1 << 61), any::<u64>()],
                0..24,
            ),
        ) {
            let cfg = RtoConfig { min_ns: min, max_ns: max, initial_ns: 1_000_000_000, granularity_ns: g };
            let mut r = RtoEstimator::new(cfg);
            for &s in &samples {
                r.on_sample(RttSample::Clean(s));
            }
            prop_assert_eq!((r.srtt_ns(), r.rttvar_ns(), r.rto_ns()), reference(&cfg, &samples));
        }

        #[test]
        fn rto_stays_within_bounds(
            min in 0u64..10_000_000_000,
            span in 0u64..200_000_000_000,
            initial in any::<u64>(),
            g in any::<u64>(),
            events in proptest::collection::vec((any::<u64>(), 0u8..3), 0..64),
        ) {
            let cfg = RtoConfig { min_ns: min, max_ns: min + span, initial_ns: initial, granularity_ns: g };
            let mut r = RtoEstimator::new(cfg);
            prop_assert!(r.rto_ns() >= min && r.rto_ns() <= min + span);
            for (sample, kind) in events {
                match kind {
                    0 => { r.on_sample(RttSample::Clean(sample)); }
                    1 => { r.on_sample(RttSample::Ambiguous(sample)); }
                    _ => r.on_timeout(),
                }
                prop_assert!(r.rto_ns() >= min && r.rto_ns() <= min + span);
            }
        }
    }
}
