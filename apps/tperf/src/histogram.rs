//! A latency histogram in the manner of HdrHistogram: log-linear buckets,
//! exact below 256 and within 1/128 (0.8 %) of the value above, over the
//! whole `u64` range, in a fixed 59 KiB; cheap to record into and to merge.

/// Sub-buckets per power of two above the exact range: 2^7.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are counted exactly, one bucket each.
const EXACT: u64 = 2 * SUB;
/// Buckets: the exact range, then `SUB` per power of two from 2^8 to 2^63.
const BUCKETS: usize = EXACT as usize + (63 - SUB_BITS as usize) * SUB as usize;

/// Counts of values (nanoseconds, say) in log-linear buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl core::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("min", &self.min())
            .field("max", &self.max())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

/// The bucket of `v`.
fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 8
    let sub = (v >> (exp - SUB_BITS)) - SUB; // 0..SUB
    (EXACT + u64::from(exp - SUB_BITS - 1) * SUB + sub) as usize
}

/// The smallest and the largest value of bucket `i`.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, i);
    }
    let exp = (i - EXACT) / SUB + u64::from(SUB_BITS) + 1;
    let sub = (i - EXACT) % SUB + SUB;
    let low = sub << (exp - u64::from(SUB_BITS));
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    (low, low + (width - 1))
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value counted by `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The values counted, added up.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// The smallest value counted (exact), `None` when empty.
    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    /// The largest value counted (exact), `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The mean of the values counted (exact), `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p999): the
    /// smallest value such that at least `q` of the values counted are at
    /// most it, as the largest value of its bucket (so never below the
    /// true one, and at most 0.8 % above it), and never above
    /// [`max`](Self::max). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (_, high) = bucket_range(i);
                return Some(high.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u64_in_order_without_gaps() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (low, high) = bucket_range(i);
            assert_eq!(low, next, "bucket {i} starts where {} ended", i.max(1) - 1);
            assert!(high >= low);
            assert_eq!(bucket(low), i);
            assert_eq!(bucket(high), i);
            // The relative width stays within 1/128.
            assert!((high - low) as f64 <= low as f64 / 128.0, "bucket {i}");
            next = high.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn percentiles_of_exact_values() {
        let mut h = Histogram::new();
        for v in 1..=200 {
            h.record(v);
        }
        assert_eq!(h.count(), 200);
        assert_eq!(h.quantile(0.5), Some(100));
        assert_eq!(h.quantile(0.99), Some(198));
        assert_eq!(h.quantile(0.999), Some(200));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(200));
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.max(), Some(200));
        assert_eq!(h.mean(), Some(100.5));
    }

    #[test]
    fn percentiles_of_large_values_are_within_the_bucket_precision() {
        // 1..=100_000 µs in ns: the true p50 is 50_000_000, p99 99_000_000,
        // p999 99_900_000.
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, truth) in [
            (0.5, 50_000_000u64),
            (0.99, 99_000_000),
            (0.999, 99_900_000),
        ] {
            let got = h.quantile(q).expect("values");
            assert!(
                got >= truth && (got - truth) as f64 <= truth as f64 / 128.0,
                "q {q}: {got} vs {truth}"
            );
        }
        assert_eq!(
            h.quantile(1.0),
            Some(100_000_000),
            "clamped to the exact max"
        );
    }

    #[test]
    fn a_tail_shows_in_p999_not_p99() {
        let mut h = Histogram::new();
        for _ in 0..9_990 {
            h.record(20_000);
        }
        for _ in 0..10 {
            h.record(5_000_000);
        }
        assert!(h.quantile(0.99).expect("values") < 20_200);
        assert!(
            h.quantile(0.999).expect("values") < 20_200,
            "rank 9990 is still fast"
        );
        assert!(h.quantile(0.9995).expect("values") >= 5_000_000);
    }

    #[test]
    fn merging_equals_recording_into_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for v in 0..5000u64 {
            let v = v * v;
            if v % 3 == 0 { &mut a } else { &mut b }.record(v);
            both.record(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), both.count());
        assert_eq!(a.min(), both.min());
        assert_eq!(a.max(), both.max());
        assert_eq!(a.mean(), both.mean());
        for q in [0.1, 0.5, 0.9, 0.99, 0.999] {
            assert_eq!(a.quantile(q), both.quantile(q), "q {q}");
        }
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.min(), None);
        assert_eq!(h.mean(), None);
    }
}
