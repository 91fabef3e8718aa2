//! Per-stage counters, kept by the pipeline from the verdicts.

use super::{Reason, Verdict};

/// What one stage did with the packets it saw.
///
/// The pipeline updates these from each [`Verdict`]; stages do not count
/// for themselves.
///
/// ```
/// use tpa::stage::{Reason, StageStats, Verdict};
/// let mut s = StageStats::default();
/// s.record(&Verdict::<(), ()>::Drop(Reason::FILTERED));
/// s.record(&Verdict::<(), ()>::Pass(()));
/// assert_eq!((s.passed, s.dropped(Reason::FILTERED), s.total()), (1, 1, 2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageStats {
    /// Packets handed on to the next stage.
    pub passed: u64,
    /// Packets the stage kept or finished with.
    pub consumed: u64,
    /// Packets the stage sent out of the port.
    pub transmitted: u64,
    /// Packets the stage gave to the host.
    pub to_host: u64,
    /// Packets the stage sent on its own, from
    /// [`poll`](super::Stage::poll) and
    /// [`fire_timers`](super::Stage::fire_timers): not verdicts, so not in
    /// [`total`](Self::total).
    pub originated: u64,
    /// Packets dropped, by [`Reason::index`].
    drops: [u64; Reason::COUNT],
}

impl Default for StageStats {
    fn default() -> Self {
        StageStats {
            passed: 0,
            consumed: 0,
            transmitted: 0,
            to_host: 0,
            originated: 0,
            drops: [0; Reason::COUNT],
        }
    }
}

impl StageStats {
    /// Counts one verdict.
    #[inline(always)]
    pub fn record<T, B>(&mut self, verdict: &Verdict<T, B>) {
        match verdict {
            Verdict::Pass(_) => self.passed += 1,
            Verdict::Drop(r) => self.count_drop(*r),
            Verdict::Consumed => self.consumed += 1,
            Verdict::Transmit(_) => self.transmitted += 1,
            Verdict::ToHost(_) => self.to_host += 1,
        }
    }

    /// Counts one drop.
    #[inline(always)]
    pub fn count_drop(&mut self, reason: Reason) {
        // `Reason` cannot be built with an index out of range.
        if let Some(n) = self.drops.get_mut(reason.index()) {
            *n += 1;
        }
    }

    /// Packets dropped for `reason`.
    pub fn dropped(&self, reason: Reason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every reason with a non-zero count.
    pub fn drops(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        self.drops
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 0)
            .filter_map(|(i, n)| Reason::from_index(i).map(|r| (r, *n)))
    }

    /// Packets the stage saw: the sum of all verdicts.
    pub fn total(&self) -> u64 {
        self.passed + self.consumed + self.transmitted + self.to_host + self.dropped_total()
    }

    /// Adds another stage's counts to these.
    pub fn merge(&mut self, other: &StageStats) {
        self.passed += other.passed;
        self.consumed += other.consumed;
        self.transmitted += other.transmitted;
        self.to_host += other.to_host;
        self.originated += other.originated;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += *b;
        }
    }
}
