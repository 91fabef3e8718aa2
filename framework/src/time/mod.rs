//! Time: the clock and the timer wheel.
//!
//! - [`Clock`]: a cheap monotonic nanosecond clock (the calibrated TSC on
//!   x86-64, `CLOCK_MONOTONIC` elsewhere).
//! - [`TimerWheel`]: per-worker timers with O(1) schedule, cancel and
//!   reschedule and no allocation per timer.

mod clock;
mod wheel;

pub use clock::{Clock, ClockSource};
pub use wheel::{StaleHandle, TimerHandle, TimerWheel, HORIZON_TICKS, LEVELS, SLOTS};
