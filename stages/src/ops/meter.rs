//! The worker loop's time, measured by the loop itself from the time each
//! iteration starts at (the clock read the pipeline makes anyway: no read
//! of its own) and a few additions.

use tpa::pipeline::IterationStats;

use super::snapshot::LoopCounters;

/// The longest time from the start of a busy iteration to the start of
/// the next one that is not starvation: 1 ms. A busy iteration takes
/// microseconds and the loop runs again at once, so a longer interval
/// means the thread was kept off its core (descheduled, a page fault)
/// while it had work.
pub const STARVATION_NS: u64 = 1_000_000;

/// Measures a worker loop: call [`iteration`](Self::iteration) after each
/// of its iterations with the time it started at.
#[derive(Debug, Clone)]
pub struct WorkerMeter {
    counters: LoopCounters,
    /// When the last iteration started (`u64::MAX` before the first, so
    /// that the first counts no time).
    last_start: u64,
    /// Whether it was busy.
    last_busy: bool,
}

impl Default for WorkerMeter {
    fn default() -> Self {
        WorkerMeter {
            counters: LoopCounters::default(),
            last_start: u64::MAX,
            last_busy: false,
        }
    }
}

impl WorkerMeter {
    /// A fresh meter.
    pub fn new() -> WorkerMeter {
        WorkerMeter::default()
    }

    /// Counts an iteration that started at `start_ns` and did `it`. The
    /// time since the previous iteration's start (that iteration and the
    /// gap after it: spins, sleeps, waits on the port, a snapshot) goes to
    /// busy or idle by whether that iteration did work; over
    /// [`STARVATION_NS`] after a busy one it is starvation too. The last
    /// iteration's own time is counted when the next one starts.
    #[inline]
    pub fn iteration(&mut self, start_ns: u64, it: &IterationStats) {
        let c = &mut self.counters;
        let took = start_ns.saturating_sub(self.last_start);
        if self.last_busy {
            c.busy_ns += took;
            if took > STARVATION_NS {
                c.starvations += 1;
                c.starved_ns += took;
            }
        } else {
            c.idle_ns += took;
        }
        let busy = it.busy();
        self.last_start = start_ns;
        self.last_busy = busy;
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
        m.iteration(0, &it(2)); // busy
        m.iteration(1_000, &it(0)); // 1000 busy; idle
        m.iteration(5_000, &it(1)); // 4000 idle; busy
        m.iteration(5_200, &it(1)); // 200 busy; busy
        m.iteration(5_200 + 3_000_000, &it(0)); // starved 3 ms; idle
        m.iteration(5_200 + 3_000_050, &it(0)); // 50 idle, the last pending
        let c = m.counters();
        assert_eq!(c.iterations, 6);
        assert_eq!(c.busy_iterations, 3);
        assert_eq!(c.busy_ns, 1_000 + 200 + 3_000_000);
        assert_eq!(c.idle_ns, 4_000 + 50);
        assert_eq!((c.starvations, c.starved_ns), (1, 3_000_000));
        assert_eq!(c.rx_packets, 4);
    }

    #[test]
    fn a_long_idle_interval_is_not_starvation() {
        let mut m = WorkerMeter::new();
        m.iteration(0, &it(0));
        m.iteration(50_000_000, &it(1)); // a 50 ms wait on the port
        let c = m.counters();
        assert_eq!((c.idle_ns, c.busy_ns, c.starvations), (50_000_000, 0, 0));
    }
}
