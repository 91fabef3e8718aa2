//! The worker loop's time, measured by the loop itself: one clock read per
//! iteration (the pipeline's TSC clock), a few additions.

use tpa::pipeline::IterationStats;

use super::snapshot::LoopCounters;

/// A busy iteration's gap to the next beyond which the worker counts as
/// starved: 1 ms.
pub const STARVATION_NS: u64 = 1_000_000;

/// Measures a worker loop: call [`iteration`](Self::iteration) after each
/// of its iterations.
#[derive(Debug, Clone, Default)]
pub struct WorkerMeter {
    counters: LoopCounters,
    /// When the last iteration started, and whether it was busy.
    last: Option<(u64, bool)>,
}

impl WorkerMeter {
    /// A fresh meter.
    pub fn new() -> WorkerMeter {
        WorkerMeter::default()
    }

    /// Counts an iteration that started at `start_ns` and did `it`; the
    /// time since the previous one's start goes to that one's kind (busy
    /// or idle).
    #[inline]
    pub fn iteration(&mut self, start_ns: u64, it: &IterationStats) {
        let c = &mut self.counters;
        if let Some((prev, busy)) = self.last {
            let gap = start_ns.saturating_sub(prev);
            if busy {
                c.busy_ns += gap;
                if gap > STARVATION_NS {
                    c.starvations += 1;
                    c.starved_ns += gap - STARVATION_NS;
                }
            } else {
                c.idle_ns += gap;
            }
        }
        let busy = it.busy();
        self.last = Some((start_ns, busy));
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
        m.iteration(0, &it(2));
        m.iteration(1_000, &it(0));
        m.iteration(5_000, &it(1));
        m.iteration(5_000 + 3_000_000, &it(0));
        let c = m.counters();
        assert_eq!(c.iterations, 4);
        assert_eq!(c.busy_iterations, 2);
        assert_eq!(c.busy_ns, 1_000 + 3_000_000);
        assert_eq!(c.idle_ns, 4_000);
        assert_eq!((c.starvations, c.starved_ns), (1, 2_000_000));
        assert_eq!(c.rx_packets, 3);
    }
}
