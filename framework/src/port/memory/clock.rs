//! Time as the wire sees it: real monotonic time, or a virtual clock that
//! only moves when the test says so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::time::Clock;

/// A clock shared by handle that advances only by hand, so delays and
/// bandwidth limits are exact and repeatable.
///
/// ```
/// use std::time::Duration;
/// use tpa::port::memory::VirtualClock;
/// let clock = VirtualClock::new();
/// let c2 = clock.clone();
/// c2.advance(Duration::from_micros(5));
/// assert_eq!(clock.now_ns(), 5_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    ns: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock at time 0.
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    /// The current time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::Acquire)
    }

    /// Moves time forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        self.advance_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Moves time forward by `ns` nanoseconds (saturating).
    pub fn advance_ns(&self, ns: u64) {
        let _ = self
            .ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ns))
            });
    }
}

/// The clock a wire runs on.
#[derive(Debug, Clone)]
pub(super) enum WireClock {
    /// Real time: the process-wide [`Clock::global`], so receive timestamps
    /// compare with the rest of tpa's time.
    Real(Clock),
    /// Test-driven time.
    Virtual(VirtualClock),
}

impl WireClock {
    /// Nanoseconds since the clock's origin.
    #[inline]
    pub(super) fn now_ns(&self) -> u64 {
        match self {
            WireClock::Real(clock) => clock.now_ns(),
            WireClock::Virtual(v) => v.now_ns(),
        }
    }
}
