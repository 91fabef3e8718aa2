//! Time: the clock and the timer wheel.
//!
//! - [`Clock`]: a cheap monotonic nanosecond clock (the calibrated TSC on
//!   x86-64, `CLOCK_MONOTONIC` elsewhere).
//! - [`TimerWheel`]: per-worker timers with O(1) schedule, cancel and
//!   reschedule and no allocation per timer.
//! - [`TimeSource`]: the real clock or a shared [`VirtualClock`], one
//!   notion of "now" for wires, pipelines and timer wheels.

mod clock;
mod source;
mod wheel;

pub use clock::{Clock, ClockSource};
pub use source::{TimeSource, VirtualClock};
pub use wheel::{StaleHandle, TimerHandle, TimerWheel, HORIZON_TICKS, LEVELS, SLOTS};
