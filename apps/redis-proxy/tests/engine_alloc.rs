//! The engine allocates nothing per request in steady state: a counting
//! allocator (this test binary's only) counts the heap allocations this
//! thread makes while GET and SET requests, single and in pipelines of 16
//! spread over four servers (replies arriving out of order), go through
//! the sans-IO engine after a warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[path = "support/engine_driver.rs"]
mod engine_driver;

use engine_driver::{Command, Driver, Workload};

/// `System`, counting this thread's allocations (and reallocations).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // A thread being torn down has no counter left: nothing to count.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is passed to `System` unchanged; counting touches a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations per request over `measured` batches of `command` in
/// pipelines of `pipeline`, after `warm` batches of warm-up.
fn allocations_per_request(command: Command, pipeline: usize, warm: usize, measured: usize) -> f64 {
    let w = Workload::new(command, warm + measured, pipeline);
    let mut d = Driver::new();
    for b in 0..warm {
        d.round(&w, b);
    }
    let (before, answered) = (allocations(), d.answered);
    for b in warm..w.len() {
        d.round(&w, b);
    }
    let made = allocations() - before;
    let requests = d.answered - answered;
    assert_eq!(
        requests,
        measured * pipeline,
        "every request reached a server"
    );
    let per = made as f64 / requests as f64;
    println!("{command:?} x{pipeline}: {made} allocations over {requests} requests ({per:.3} per request)");
    per
}

#[test]
fn no_allocation_per_request_in_steady_state() {
    // 10 000 requests of each kind, after 1 000 of warm-up (queues and
    // buffers reach their working size; nothing grows afterwards).
    let results = [
        (
            Command::Get,
            1,
            allocations_per_request(Command::Get, 1, 1000, 10_000),
        ),
        (
            Command::Set,
            1,
            allocations_per_request(Command::Set, 1, 1000, 10_000),
        ),
        (
            Command::Get,
            16,
            allocations_per_request(Command::Get, 16, 64, 625),
        ),
        (
            Command::Set,
            16,
            allocations_per_request(Command::Set, 16, 64, 625),
        ),
    ];
    for (command, pipeline, per) in results {
        assert_eq!(
            per, 0.0,
            "{command:?} in pipelines of {pipeline}: {per} allocations per request"
        );
    }
}
