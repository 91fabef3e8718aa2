//! [`LaneLock`]: the lock around one lane of a wire, taken once per burst.
//!
//! A lane's critical sections are short (a burst moved into or out of a
//! ring, a counter read) and mostly uncontended: the two ends of a wire
//! usually run on one thread, one after the other. A `std::sync::Mutex`
//! costs about thirty instructions a lock and unlock there (the poison
//! flag's two panic-count reads, an exchange to unlock and its test for
//! waiters); this lock is one compare-exchange to lock and one store to
//! unlock. A waiter spins a little, then yields its time slice until the
//! holder is done. A panic while the lock is held unlocks it (the guard's
//! drop): the lane stays usable, as the wire used to take a poisoned
//! mutex's lane as it was.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Busy-wait rounds before a waiter yields its time slice instead.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A value behind a flag: one holder at a time, see the module doc.
pub(super) struct LaneLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `LaneGuard`, and at most one
// guard exists at a time (the `locked` flag, taken with Acquire and released
// with Release, orders each holder's accesses after the previous one's): as
// with `Mutex<T>`, sharing the lock hands the value from thread to thread,
// one at a time, which `T: Send` allows.
unsafe impl<T: Send> Sync for LaneLock<T> {}

impl<T> LaneLock<T> {
    /// An unlocked lock around `value`.
    pub(super) fn new(value: T) -> Self {
        LaneLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits until the lock is free and takes it.
    #[inline]
    pub(super) fn lock(&self) -> LaneGuard<'_, T> {
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        LaneGuard {
            lock: self,
            _value: PhantomData,
        }
    }

    /// [`lock`](Self::lock) when another holder has it: waits reading the
    /// flag (spinning a little, then yielding), and tries again when it
    /// reads free.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// The held lock: the value, until dropped.
pub(super) struct LaneGuard<'a, T> {
    lock: &'a LaneLock<T>,
    /// Send and Sync as `&mut T` is.
    _value: PhantomData<&'a mut T>,
}

impl<T> Deref for LaneGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (taken in `LaneLock::lock`, freed
        // only by its drop), so no other reference to the value exists but
        // the ones borrowed from this guard, which Rust's borrow rules keep
        // apart.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for LaneGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for LaneGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn one_holder_at_a_time() {
        let lock = Arc::new(LaneLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let mut v = lock.lock();
                        // Not atomic: a second holder would lose counts.
                        let seen = *v;
                        std::hint::black_box(&mut *v);
                        *v = seen + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }

    #[test]
    fn a_panic_while_held_frees_the_lock() {
        let lock = Arc::new(LaneLock::new(1u32));
        let held = Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            let mut v = held.lock();
            *v = 2;
            panic!("while holding the lane");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(*lock.lock(), 2);
    }
}
