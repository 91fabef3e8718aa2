//! Time: the clock and the timer wheel.
