//! The worker loop's time, measured by the loop itself: two clock reads
//! per iteration (the pipeline's TSC clock), a few additions.

use tpa::pipeline::IterationStats;

use super::snapshot::LoopCounters;

/// The longest gap after a busy iteration before the next one that is
/// not starvation: 1 ms. After a busy iteration the loop runs again at
/// once, so a longer gap means the thread was kept off its core
/// (descheduled, a page fault) while it had work.
pub const STARVATION_NS: u64 = 1_000_000;

/// Measures a worker loop: call [`iteration`](Self::iteration) after each
/// of its iterations.
#[derive(Debug, Clone, Default)]
pub struct WorkerMeter {
    counters: LoopCounters,
    /// When the last iteration ended, and whether it was busy.
    last: Option<(u64, bool)>,
}

impl WorkerMeter {
    /// A fresh meter.
    pub fn new() -> WorkerMeter {
        WorkerMeter::default()
    }

    /// Counts an iteration that ran from `start_ns` to `end_ns` and did
    /// `it`. Its time, and the gap since the previous one's end, go to
    /// busy or idle by whether it (the gap: the previous one) did work; a
    /// gap over [`STARVATION_NS`] after a busy iteration is starvation.
    #[inline]
    pub fn iteration(&mut self, start_ns: u64, end_ns: u64, it: &IterationStats) {
        let c = &mut self.counters;
        if let Some((prev_end, busy)) = self.last {
            let gap = start_ns.saturating_sub(prev_end);
            if busy {
                c.busy_ns += gap;
                if gap > STARVATION_NS {
                    c.starvations += 1;
                    c.starved_ns += gap;
                }
            } else {
                c.idle_ns += gap;
            }
        }
        let busy = it.busy();
        let took = end_ns.saturating_sub(start_ns);
        if busy {
            c.busy_ns += took;
        } else {
            c.idle_ns += took;
        }
        self.last = Some((end_ns, busy));
        c.iterations += 1;
        c.busy_iterations += u64::from(busy);
        c.rx_packets += it.rx as u64;
        c.tx_packets += it.tx as u64;
        c.work += it.work as u64;
    }

    /// The counters so far.
    pub fn counters(&self) -> LoopCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(rx: usize) -> IterationStats {
        IterationStats {
            rx,
            tx: 0,
            work: 0,
            next_deadline_ns: None,
        }
    }

    #[test]
    fn time_goes_to_the_kind_of_iteration_it_followed() {
        let mut m = WorkerMeter::new();
        m.iteration(0, 500, &it(2)); // busy 500
        m.iteration(1_000, 1_100, &it(0)); // gap 500 busy, 100 idle
        m.iteration(5_000, 5_200, &it(1)); // gap 3900 idle, 200 busy
        m.iteration(5_200 + 3_000_000, 5_200 + 3_000_050, &it(0)); // starved 3 ms
        let c = m.counters();
        assert_eq!(c.iterations, 4);
        assert_eq!(c.busy_iterations, 2);
        assert_eq!(c.busy_ns, 500 + 500 + 200 + 3_000_000);
        assert_eq!(c.idle_ns, 100 + 3_900 + 50);
        assert_eq!((c.starvations, c.starved_ns), (1, 3_000_000));
        assert_eq!(c.rx_packets, 3);
    }
}
