//! The cost of reading the clock and of the timer wheel's operations.
//!
//! 1. `clock`: `Clock::now_ns` (the calibrated TSC here) against
//!    `std::time::Instant::now`.
//! 2. `wheel`: with 10 000 timers pending, one schedule + cancel pair, one
//!    reschedule, and one advance by a tick with nothing due; and
//!    schedule-then-fire of a timer 1–4096 ticks ahead (one advance to its
//!    deadline, cascading through the levels).
//!
//! Run: `cargo bench -p tpa-benches --bench time`.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use tpa::time::{Clock, TimerWheel};

fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock");
    let clock = Clock::global();
    g.bench_function(format!("tpa_now_ns_{:?}", clock.source()), |b| {
        b.iter(|| black_box(clock.now_ns()))
    });
    g.bench_function("std_instant_now", |b| b.iter(|| black_box(Instant::now())));
    g.finish();
}

/// A wheel of 1 µs ticks with `n` timers spread over a second from `start_ns`.
fn loaded_wheel(n: u64, start_ns: u64) -> TimerWheel<u64> {
    let mut w = TimerWheel::with_capacity(1_000, n as usize + 16);
    for i in 0..n {
        w.schedule(start_ns + (i * 7919) % 1_000_000_000, i);
    }
    w
}

fn wheel(c: &mut Criterion) {
    let mut g = c.benchmark_group("wheel");
    let mut w = loaded_wheel(10_000, 1_000);
    let mut deadline = 0u64;
    g.bench_function("schedule_cancel", |b| {
        b.iter(|| {
            deadline = (deadline + 104_729) % 1_000_000_000;
            let h = w.schedule(black_box(deadline), 0);
            black_box(w.cancel(h).ok())
        })
    });
    let h = w.schedule(500_000, 0);
    g.bench_function("reschedule", |b| {
        b.iter(|| {
            deadline = (deadline + 104_729) % 1_000_000_000;
            w.reschedule(h, black_box(deadline)).ok()
        })
    });
    let mut w = TimerWheel::with_capacity(1_000, 64);
    let mut now = 0u64;
    let mut ahead = 1u64;
    g.bench_function("schedule_fire", |b| {
        b.iter(|| {
            ahead = ahead % 4096 + 1;
            now += ahead * 1_000;
            w.schedule(now, ahead);
            w.advance(now, |t| {
                black_box(t);
            })
        })
    });
    // The pending timers are days away: each advance moves one tick and
    // finds nothing due.
    let mut w = loaded_wheel(10_000, 1 << 50);
    let mut now = 0u64;
    g.bench_function("advance_one_idle_tick", |b| {
        b.iter(|| {
            now += 1_000;
            black_box(w.advance(now, |_| {}))
        })
    });
    g.finish();
}

fn main() {
    let mut c = tpa_benches::criterion();
    clock(&mut c);
    wheel(&mut c);
    c.final_summary();
}
