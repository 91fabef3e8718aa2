//! One notion of "now" for everything that reads time: the real clock, or
//! a virtual clock that a test or a simulation moves by hand.
//!
//! A [`TimeSource`] is what a [`MemoryWire`](crate::port::memory::MemoryWire)
//! times its delays by, what a worker hands to its pipeline
//! (`run_once_at(time.now_ns())`) and what drives a
//! [`TimerWheel`](super::TimerWheel) ([`advance_to`](super::TimerWheel::advance_to)).
//! Give all of them clones of the same source and they agree on the time:
//! with a virtual one, packets delayed on a wire and timers come due at the
//! same virtual instants, exactly, whatever the machine's speed.
//!
//! ```
//! use std::time::Duration;
//! use tpa::time::{TimeSource, TimerWheel, VirtualClock};
//!
//! let clock = VirtualClock::new();
//! let time = TimeSource::from(clock.clone());
//! let mut wheel = TimerWheel::new(1_000);
//! wheel.schedule(5_000, "retransmit");
//! assert_eq!(wheel.advance_to(&time, |_| {}), 0);
//! clock.advance(Duration::from_micros(5));
//! assert_eq!(wheel.advance_to(&time, |t| assert_eq!(t, "retransmit")), 1);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Clock;

/// A clock shared by handle that advances only by hand, so delays, timers
/// and bandwidth limits are exact and repeatable. Clones read and move the
/// same time; it starts at 0 and never goes back.
///
/// ```
/// use std::time::Duration;
/// use tpa::time::VirtualClock;
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
    #[inline]
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

    /// Moves time forward by `ns` nanoseconds (saturating) and returns the
    /// new time, for a clock that one thread alone moves (a simulation's
    /// or a benchmark's loop; clones still read it from anywhere): a load
    /// and a release store, where [`advance_ns`](Self::advance_ns) pays a
    /// locked read-modify-write that any number of movers may share. A
    /// move by another thread between the two would be overwritten (and
    /// time could go back): debug builds check for it and panic.
    ///
    /// ```
    /// use tpa::time::VirtualClock;
    /// let clock = VirtualClock::new();
    /// let reader = clock.clone();
    /// assert_eq!(clock.advance_alone_ns(7), 7);
    /// assert_eq!(reader.now_ns(), 7);
    /// ```
    #[inline]
    pub fn advance_alone_ns(&self, ns: u64) -> u64 {
        let then = self.ns.load(Ordering::Relaxed);
        let now = then.saturating_add(ns);
        if cfg!(debug_assertions) {
            let moved = self
                .ns
                .compare_exchange(then, now, Ordering::AcqRel, Ordering::Relaxed);
            assert!(
                moved.is_ok(),
                "VirtualClock::advance_alone_ns: another thread moved the clock"
            );
        } else {
            self.ns.store(now, Ordering::Release);
        }
        now
    }

    /// Moves time forward to `ns` nanoseconds; a time already passed
    /// leaves the clock where it is (it never goes back).
    pub fn advance_to(&self, ns: u64) {
        self.ns.fetch_max(ns, Ordering::AcqRel);
    }
}

/// Where time is read from: the real monotonic [`Clock`] or a shared
/// [`VirtualClock`]. Cheap to clone; reading the real clock through it
/// costs one predictable branch on top of [`Clock::now_ns`].
///
/// ```
/// use tpa::time::{Clock, TimeSource, VirtualClock};
/// let real = TimeSource::real();
/// assert!(!real.is_virtual());
/// let a = real.now_ns();
/// assert!(real.now_ns() >= a);
///
/// let clock = VirtualClock::new();
/// let simulated = TimeSource::from(clock.clone());
/// clock.advance_ns(42);
/// assert_eq!(simulated.now_ns(), 42);
/// ```
#[derive(Debug, Clone)]
pub enum TimeSource {
    /// Real time: a copy of a calibrated clock, normally [`Clock::global`]
    /// so that readings compare across the process.
    Real(Clock),
    /// Test- or simulation-driven time.
    Virtual(VirtualClock),
}

impl TimeSource {
    /// Real time on the process-wide [`Clock::global`].
    pub fn real() -> TimeSource {
        TimeSource::Real(*Clock::global())
    }

    /// Nanoseconds since the source's origin (the real clock's calibration,
    /// or the virtual clock's start).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self {
            TimeSource::Real(clock) => clock.now_ns(),
            TimeSource::Virtual(clock) => clock.now_ns(),
        }
    }

    /// Whether time here moves only by hand.
    pub fn is_virtual(&self) -> bool {
        matches!(self, TimeSource::Virtual(_))
    }

    /// The virtual clock, if this source is one (to advance it).
    pub fn as_virtual(&self) -> Option<&VirtualClock> {
        match self {
            TimeSource::Virtual(clock) => Some(clock),
            TimeSource::Real(_) => None,
        }
    }
}

impl Default for TimeSource {
    /// [`TimeSource::real`].
    fn default() -> Self {
        TimeSource::real()
    }
}

impl From<VirtualClock> for TimeSource {
    fn from(clock: VirtualClock) -> Self {
        TimeSource::Virtual(clock)
    }
}

impl From<Clock> for TimeSource {
    fn from(clock: Clock) -> Self {
        TimeSource::Real(clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_moves_only_forward_and_only_by_hand() {
        let clock = VirtualClock::new();
        let time = TimeSource::from(clock.clone());
        assert_eq!(time.now_ns(), 0);
        clock.advance_ns(10);
        clock.advance_to(5);
        assert_eq!(time.now_ns(), 10, "advance_to never goes back");
        clock.advance_to(25);
        assert_eq!(time.now_ns(), 25);
        clock.advance_ns(u64::MAX);
        assert_eq!(time.now_ns(), u64::MAX, "saturates");
        assert!(time.is_virtual());
        assert!(time.as_virtual().is_some());
    }

    #[test]
    fn the_real_source_reads_the_global_clock() {
        let time = TimeSource::default();
        assert!(!time.is_virtual());
        assert!(time.as_virtual().is_none());
        let before = Clock::global().now_ns();
        let t = time.now_ns();
        let after = Clock::global().now_ns();
        assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    }
}
