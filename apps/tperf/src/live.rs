//! Figures while a run goes on: each worker publishes its running totals
//! ([`LiveCounters`]), and the run's thread prints what changed every
//! interval ([`Interval`]), as iperf and libtpa's tperf do.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::session::ClientStats;

/// One worker's running totals, readable from another thread.
#[derive(Debug, Default)]
pub struct LiveCounters {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    transactions: AtomicU64,
    latency_sum_ns: AtomicU64,
}

/// A snapshot of running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Test bytes written.
    pub bytes_sent: u64,
    /// Test bytes read.
    pub bytes_received: u64,
    /// Transactions completed.
    pub transactions: u64,
    /// Their latencies, added up.
    pub latency_sum_ns: u64,
}

impl LiveCounters {
    /// Publishes the worker's totals so far.
    pub fn publish(&self, stats: &ClientStats) {
        self.bytes_sent.store(stats.bytes_sent, Ordering::Relaxed);
        self.bytes_received
            .store(stats.bytes_received, Ordering::Relaxed);
        self.transactions
            .store(stats.transactions, Ordering::Relaxed);
        self.latency_sum_ns
            .store(stats.latency.sum() as u64, Ordering::Relaxed);
    }

    /// Adds the totals last published to `into`.
    pub fn add_to(&self, into: &mut Totals) {
        into.bytes_sent += self.bytes_sent.load(Ordering::Relaxed);
        into.bytes_received += self.bytes_received.load(Ordering::Relaxed);
        into.transactions += self.transactions.load(Ordering::Relaxed);
        into.latency_sum_ns += self.latency_sum_ns.load(Ordering::Relaxed);
    }
}

/// What happened between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Seconds since the run's start, at the interval's start.
    pub from_s: f64,
    /// And at its end.
    pub to_s: f64,
    /// The totals at the start.
    pub before: Totals,
    /// The totals at the end.
    pub after: Totals,
}

impl Interval {
    fn seconds(&self) -> f64 {
        (self.to_s - self.from_s).max(1e-9)
    }

    /// Bits per second of `after - before` bytes, in Gbit/s.
    fn gbit(&self, before: u64, after: u64) -> f64 {
        after.saturating_sub(before) as f64 * 8.0 / 1e9 / self.seconds()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, a) = (&self.before, &self.after);
        write!(
            f,
            "{:7.2}-{:.2} s  sent {:8.3} Gbit/s  received {:8.3} Gbit/s",
            self.from_s,
            self.to_s,
            self.gbit(b.bytes_sent, a.bytes_sent),
            self.gbit(b.bytes_received, a.bytes_received),
        )?;
        let txns = a.transactions.saturating_sub(b.transactions);
        if txns > 0 {
            let mean_ns = a.latency_sum_ns.saturating_sub(b.latency_sum_ns) as f64 / txns as f64;
            write!(
                f,
                "  {:10.1} transactions/s  mean latency {:8.1} us",
                txns as f64 / self.seconds(),
                mean_ns / 1e3
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_shows_rates_of_what_changed() {
        let mut stats = ClientStats::default();
        let live = LiveCounters::default();
        live.publish(&stats);
        let mut before = Totals::default();
        live.add_to(&mut before);
        stats.bytes_sent = 125_000_000;
        stats.transactions = 4;
        for v in [10_000, 20_000, 30_000, 40_000] {
            stats.latency.record(v);
        }
        live.publish(&stats);
        let mut after = Totals::default();
        live.add_to(&mut after);
        let line = Interval {
            from_s: 1.0,
            to_s: 2.0,
            before,
            after,
        }
        .to_string();
        assert!(line.contains("sent    1.000 Gbit/s"), "{line}");
        assert!(line.contains("received    0.000 Gbit/s"), "{line}");
        assert!(line.contains("4.0 transactions/s"), "{line}");
        assert!(line.contains("mean latency     25.0 us"), "{line}");
    }
}
