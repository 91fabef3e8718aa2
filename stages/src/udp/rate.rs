//! A token bucket: how often an error message may be sent.

/// Nanoseconds in a second.
const SECOND_NS: u128 = 1_000_000_000;

/// Allows `rate` events a second on average and bursts of up to `burst`,
/// over the pipeline's clock (nanoseconds). Starts full.
///
/// ```
/// use tpa_stages::udp::TokenBucket;
/// let mut bucket = TokenBucket::new(10, 2); // 10 a second, bursts of 2
/// assert!(bucket.try_take(0));
/// assert!(bucket.try_take(0));
/// assert!(!bucket.try_take(0), "the burst is spent");
/// assert!(bucket.try_take(100_000_000), "a token a tenth of a second");
/// assert_eq!(bucket.refused(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens, in units of 1/1e9 token (so refills need no division).
    nano_tokens: u128,
    last_ns: u64,
    refused: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate` a second (`rate`
    /// 0: only the first `burst`, ever).
    pub fn new(rate: u64, burst: u64) -> Self {
        TokenBucket {
            rate,
            burst,
            nano_tokens: u128::from(burst) * SECOND_NS,
            last_ns: 0,
            refused: 0,
        }
    }

    /// Takes a token at time `now_ns` if there is one; counts a refusal
    /// otherwise.
    #[inline]
    pub fn try_take(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let full = u128::from(self.burst) * SECOND_NS;
        self.nano_tokens =
            (self.nano_tokens + u128::from(elapsed) * u128::from(self.rate)).min(full);
        if self.nano_tokens >= SECOND_NS {
            self.nano_tokens -= SECOND_NS;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Events refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_rate_holds_over_a_long_run() {
        let mut b = TokenBucket::new(1000, 50);
        let mut allowed = 0;
        // 10 seconds of an event every 100 µs (10 000 a second).
        for i in 0..100_000u64 {
            if b.try_take(i * 100_000) {
                allowed += 1;
            }
        }
        // The burst, then 1000 a second for ~10 s.
        assert!((10_000..=10_050).contains(&allowed), "{allowed}");
        assert_eq!(b.refused(), 100_000 - allowed);
    }

    #[test]
    fn time_going_backwards_adds_nothing_and_rate_zero_never_refills() {
        let mut b = TokenBucket::new(1, 1);
        assert!(b.try_take(5_000_000_000));
        assert!(!b.try_take(1_000_000_000));
        assert!(!b.try_take(5_500_000_000));
        assert!(b.try_take(6_000_000_000));
        let mut never = TokenBucket::new(0, 1);
        assert!(never.try_take(0));
        assert!(!never.try_take(u64::MAX));
    }
}
