//! A cheap monotonic clock: the CPU's time-stamp counter where it is
//! trustworthy, `CLOCK_MONOTONIC` otherwise.
//!
//! On x86-64 with an invariant TSC (constant rate, ticking through sleep
//! states, as on every server CPU of the last decade) reading the clock is one
//! `rdtsc` instruction plus a multiply-shift to nanoseconds. The TSC rate is
//! measured once, against `CLOCK_MONOTONIC`, when the clock is calibrated.
//! Elsewhere, or when the CPU does not advertise an invariant TSC, the clock
//! reads `std::time::Instant` (a vDSO call, still cheap). Under Miri, which
//! cannot run `cpuid`, the clock always reads `Instant`.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Fixed-point shift of the ticks-to-nanoseconds multiplier.
const SCALE_SHIFT: u32 = 32;

/// How long calibration watches the TSC against `CLOCK_MONOTONIC`.
const CALIBRATION_WINDOW: Duration = Duration::from_millis(20);

/// Where a [`Clock`] reads time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    /// The x86-64 time-stamp counter (`rdtsc`), calibrated at startup.
    Tsc,
    /// The operating system's monotonic clock through `std::time::Instant`.
    Monotonic,
}

/// A monotonic nanosecond clock, cheap enough to read once per packet burst.
///
/// `now_ns` counts nanoseconds since the clock was calibrated. Every thread
/// of a process should share one calibration, [`Clock::global`], so that
/// their readings compare.
///
/// ```
/// use tpa::time::Clock;
/// let clock = Clock::global();
/// let a = clock.now_ns();
/// let b = clock.now_ns();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    source: ClockSource,
    /// Raw counter value at the origin (TSC source only).
    origin_ticks: u64,
    /// The origin as an `Instant` (monotonic source, and for reference).
    origin_instant: Instant,
    /// Nanoseconds per tick, as a fixed-point number with `SCALE_SHIFT`
    /// fractional bits (TSC source only).
    ns_per_tick_scaled: u64,
    /// Measured counter frequency in Hz (1e9 for the monotonic source).
    frequency_hz: u64,
    /// Wall-clock time of the origin, in nanoseconds since the Unix epoch.
    origin_unix_ns: u64,
    /// `CLOCK_MONOTONIC` at the origin: nanoseconds since the host booted,
    /// the one time every process of the host reads alike.
    origin_boot_ns: u64,
}

static GLOBAL: OnceLock<Clock> = OnceLock::new();

impl Clock {
    /// The process-wide clock, calibrated on first use (this first call
    /// takes about 20 ms when the TSC is used).
    pub fn global() -> &'static Clock {
        GLOBAL.get_or_init(Clock::calibrate)
    }

    /// Builds a clock on the best source this CPU offers, measuring the TSC
    /// rate if that is the TSC. Prefer [`Clock::global`]; calibrate a clock
    /// of one's own only to compare sources.
    pub fn calibrate() -> Clock {
        if tsc::is_invariant() {
            Clock::calibrate_tsc()
        } else {
            Clock::monotonic()
        }
    }

    /// A clock reading `CLOCK_MONOTONIC` through `std::time::Instant`.
    pub fn monotonic() -> Clock {
        let origin_instant = Instant::now();
        Clock {
            source: ClockSource::Monotonic,
            origin_ticks: 0,
            origin_instant,
            ns_per_tick_scaled: 1 << SCALE_SHIFT,
            frequency_hz: 1_000_000_000,
            origin_unix_ns: unix_now_ns(),
            origin_boot_ns: boot_now_ns(),
        }
    }

    fn calibrate_tsc() -> Clock {
        let (start_instant, start_ticks) = paired_reading();
        let origin_boot_ns = boot_now_ns();
        let origin_unix_ns = unix_now_ns();
        std::thread::sleep(CALIBRATION_WINDOW);
        let (end_instant, end_ticks) = paired_reading();
        let elapsed_ns = (end_instant - start_instant).as_nanos() as u64;
        let elapsed_ticks = end_ticks.wrapping_sub(start_ticks);
        if elapsed_ticks == 0 || elapsed_ns == 0 {
            return Clock::monotonic();
        }
        let ns_per_tick_scaled =
            ((u128::from(elapsed_ns) << SCALE_SHIFT) / u128::from(elapsed_ticks)) as u64;
        let frequency_hz =
            (u128::from(elapsed_ticks) * 1_000_000_000 / u128::from(elapsed_ns)) as u64;
        Clock {
            source: ClockSource::Tsc,
            origin_ticks: start_ticks,
            origin_instant: start_instant,
            ns_per_tick_scaled,
            frequency_hz,
            origin_unix_ns,
            origin_boot_ns,
        }
    }

    /// Which source this clock reads.
    #[inline]
    pub fn source(&self) -> ClockSource {
        self.source
    }

    /// The measured tick rate of the source in Hz (1 GHz for the monotonic
    /// source, whose ticks are nanoseconds).
    #[inline]
    pub fn frequency_hz(&self) -> u64 {
        self.frequency_hz
    }

    /// The raw counter: TSC ticks, or nanoseconds for the monotonic source.
    /// Convert differences with [`ticks_to_ns`](Self::ticks_to_ns).
    #[inline]
    pub fn ticks(&self) -> u64 {
        match self.source {
            ClockSource::Tsc => tsc::read(),
            ClockSource::Monotonic => self.origin_instant.elapsed().as_nanos() as u64,
        }
    }

    /// Converts a number of ticks of this clock's source to nanoseconds.
    #[inline]
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        match self.source {
            ClockSource::Tsc => {
                ((u128::from(ticks) * u128::from(self.ns_per_tick_scaled)) >> SCALE_SHIFT) as u64
            }
            ClockSource::Monotonic => ticks,
        }
    }

    /// Nanoseconds since this clock's origin (its calibration).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self.source {
            ClockSource::Tsc => self.ticks_to_ns(tsc::read().wrapping_sub(self.origin_ticks)),
            ClockSource::Monotonic => self.origin_instant.elapsed().as_nanos() as u64,
        }
    }

    /// Converts a reading of [`now_ns`](Self::now_ns) to wall-clock
    /// nanoseconds since the Unix epoch (as sampled once at calibration; the
    /// wall clock's later steps are not followed).
    #[inline]
    pub fn to_unix_ns(&self, now_ns: u64) -> u64 {
        self.origin_unix_ns.saturating_add(now_ns)
    }

    /// Converts wall-clock nanoseconds since the Unix epoch (a kernel's
    /// receive timestamp, say) to this clock's timeline: the inverse of
    /// [`to_unix_ns`](Self::to_unix_ns), 0 for a time before the clock's
    /// origin.
    ///
    /// ```
    /// use tpa::time::Clock;
    /// let clock = Clock::global();
    /// let now = clock.now_ns();
    /// assert_eq!(clock.from_unix_ns(clock.to_unix_ns(now)), now);
    /// ```
    #[inline]
    pub fn from_unix_ns(&self, unix_ns: u64) -> u64 {
        unix_ns.saturating_sub(self.origin_unix_ns)
    }

    /// Converts a reading of [`now_ns`](Self::now_ns) to nanoseconds since
    /// the host booted (`CLOCK_MONOTONIC`, sampled once at calibration):
    /// a time that every process of the host shares, unlike `now_ns`,
    /// which starts again at each process's calibration.
    ///
    /// ```
    /// use tpa::time::Clock;
    /// let clock = Clock::global();
    /// let now = clock.now_ns();
    /// assert!(clock.to_boot_ns(now) >= now);
    /// ```
    #[inline]
    pub fn to_boot_ns(&self, now_ns: u64) -> u64 {
        self.origin_boot_ns.wrapping_add(now_ns)
    }
}

/// Reads the monotonic clock and the raw counter as close together as
/// possible: the counter is read on both sides of the `Instant` and averaged.
fn paired_reading() -> (Instant, u64) {
    let before = tsc::read();
    let instant = Instant::now();
    let after = tsc::read();
    (instant, before + after.wrapping_sub(before) / 2)
}

/// `CLOCK_MONOTONIC` in nanoseconds: time since the host booted (less
/// any time suspended), the same for every process of the host.
fn boot_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call,
    // and `CLOCK_MONOTONIC` is a clock every Linux kernel has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod tsc {
    /// Whether the CPU advertises an invariant TSC (CPUID 8000_0007h,
    /// EDX bit 8): constant rate across frequency and sleep states.
    pub(super) fn is_invariant() -> bool {
        use core::arch::x86_64::__cpuid;
        let max_extended = __cpuid(0x8000_0000).eax;
        if max_extended < 0x8000_0007 {
            return false;
        }
        __cpuid(0x8000_0007).edx & (1 << 8) != 0
    }

    /// Reads the time-stamp counter.
    #[inline(always)]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` exists on every x86-64 CPU, reads a register and
        // touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
}

/// No usable counter: elsewhere than x86-64, and under Miri.
#[cfg(any(not(target_arch = "x86_64"), miri))]
mod tsc {
    pub(super) fn is_invariant() -> bool {
        false
    }

    #[inline(always)]
    pub(super) fn read() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_never_go_backwards() {
        let clock = Clock::global();
        let mut last = clock.now_ns();
        for _ in 0..100_000 {
            let now = clock.now_ns();
            assert!(now >= last, "clock went back from {last} to {now}");
            last = now;
        }
    }

    #[test]
    fn clock_measures_an_interval_within_the_monotonic_bounds() {
        // Not a timing assertion: the clock's interval [a, b] lies inside the
        // `Instant` interval [start, end] and contains a sleep of 30 ms, so it
        // must fall between those two, up to 1% of calibration error.
        let clock = Clock::global();
        let start = Instant::now();
        let a = clock.now_ns();
        std::thread::sleep(Duration::from_millis(30));
        let b = clock.now_ns();
        let outer = start.elapsed().as_nanos() as u64;
        let measured = b - a;
        let slept = 30_000_000u64;
        assert!(
            measured >= slept - slept / 100 && measured <= outer + outer / 100,
            "{:?} clock measured {measured} ns, sleep {slept} ns, Instant {outer} ns",
            clock.source()
        );
    }

    #[test]
    fn monotonic_clock_ticks_are_nanoseconds() {
        let clock = Clock::monotonic();
        assert_eq!(clock.source(), ClockSource::Monotonic);
        assert_eq!(clock.ticks_to_ns(12345), 12345);
        assert_eq!(clock.frequency_hz(), 1_000_000_000);
    }

    #[test]
    fn unix_time_is_after_2020() {
        let clock = Clock::global();
        let unix = clock.to_unix_ns(clock.now_ns());
        assert!(unix > 1_577_836_800 * 1_000_000_000);
    }
}
