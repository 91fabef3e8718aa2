//! A receive ring: the frames waiting for one queue of a lane's far end,
//! passed from one producer to one consumer without a lock.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::buf::PoolBuf;

/// The frames waiting for one receive queue, oldest first: a fixed array of
/// slots, a power of two at least the ring size long, between two running
/// counts: `head` (frames taken, the consumer's) and `tail` (frames put,
/// the producer's). The slot of count `c` is `c & mask`.
///
/// One producer and one consumer may use a ring at the same time, each from
/// its own thread; that each role has one holder at a time is the caller's
/// contract ([`push_back`](Self::push_back), [`pop_front`](Self::pop_front)).
///
/// Orderings: the producer writes a slot, then publishes it with a Release
/// store of `tail`; the consumer's Acquire load of `tail` makes that write
/// visible before it reads the slot. The other way, the consumer moves the
/// frame out of a slot, then frees it with a Release store of `head`; the
/// producer's Acquire load of `head` (in [`len`](Self::len), which it
/// checks before pushing) orders that read before its next write there.
pub(super) struct Ring {
    slots: Box<[UnsafeCell<MaybeUninit<PoolBuf>>]>,
    /// `slots.len() - 1`.
    mask: usize,
    /// Frames taken so far (wrapping); written by the consumer only.
    head: AtomicUsize,
    /// Frames put so far (wrapping); written by the producer only.
    tail: AtomicUsize,
}

// SAFETY: the slots are reached only through `push_back` and `pop_front`,
// whose contracts give each slot one writer or one reader at a time, the
// hand-over ordered by the Release/Acquire pairs on `head` and `tail` (see
// the type's comment); `PoolBuf` is `Send`.
unsafe impl Sync for Ring {}

impl Ring {
    /// An empty ring for up to `size` frames (at least one).
    pub(super) fn new(size: usize) -> Ring {
        let capacity = size.max(1).next_power_of_two();
        Ring {
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: capacity - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// The slots: the most frames the ring can hold.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Frames waiting. Exact for the producer (a count that may only fall
    /// as the consumer takes frames) and for the consumer (that may only
    /// rise); a moment's view for anyone else.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        // `head` first: `tail` read after it is at least as far on.
        let head = self.head.load(Ordering::Acquire);
        self.tail.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// Appends `b` behind the frames waiting.
    ///
    /// # Safety
    /// The caller is the ring's only producer for the call, and has seen
    /// with [`len`](Self::len), since its last push, room for this frame:
    /// fewer frames waiting than the slots.
    #[inline(always)]
    pub(super) unsafe fn push_back(&self, b: PoolBuf) {
        // Relaxed: only the producer writes `tail`.
        let tail = self.tail.load(Ordering::Relaxed);
        debug_assert!(tail.wrapping_sub(self.head.load(Ordering::Acquire)) < self.slots.len());
        // SAFETY: the index is masked by `mask`, `slots.len() - 1` (a power
        // of two, never changed), so in bounds. The slot is free: the
        // caller saw room (`len`'s Acquire load of `head` ordered the
        // consumer's last read of it before this write), and the consumer
        // does not read it before the Release store of `tail` below.
        unsafe { (*self.slots.get_unchecked(tail & self.mask).get()).write(b) };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
    }

    /// Takes the oldest frame.
    ///
    /// # Safety
    /// The caller is the ring's only consumer for the call.
    #[inline(always)]
    pub(super) unsafe fn pop_front(&self) -> Option<PoolBuf> {
        // Relaxed: only the consumer writes `head`.
        let head = self.head.load(Ordering::Relaxed);
        if self.tail.load(Ordering::Acquire) == head {
            return None;
        }
        // SAFETY: in bounds as in `push_back`. The slot holds a frame: the
        // producer wrote it before its Release store of a `tail` past
        // `head`, which the Acquire load above saw; the producer does not
        // write it again before the Release store of `head` below frees it.
        // The frame is moved out once: `head` moves past the slot.
        let b = unsafe { (*self.slots.get_unchecked(head & self.mask).get()).assume_init_read() };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(b)
    }

    /// Drops every frame waiting (their buffers go back to the pool).
    ///
    /// # Safety
    /// As for [`pop_front`](Self::pop_front).
    pub(super) unsafe fn clear(&self) {
        // SAFETY: the caller's contract is `pop_front`'s.
        while unsafe { self.pop_front() }.is_some() {}
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other producer or consumer.
        unsafe { self.clear() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{PacketBuf, Pool, PoolConfig};

    fn pool(capacity: usize) -> Pool {
        Pool::new(PoolConfig {
            name: "ring-test".into(),
            capacity,
            ..PoolConfig::default()
        })
        .expect("a pool")
    }

    fn frame(pool: &Pool, tag: u8) -> PoolBuf {
        let mut b = pool.alloc().expect("a buffer");
        b.extend_from_slice(&[tag]).expect("room");
        b
    }

    #[test]
    fn frames_leave_in_order_across_the_wrap() {
        let pool = pool(16);
        let ring = Ring::new(3);
        let mut next = 0u8;
        let mut expect = 0u8;
        for round in 0..10 {
            for _ in 0..(1 + round % 3) {
                assert!(ring.len() < 3);
                // SAFETY: one thread: the only producer; room checked.
                unsafe { ring.push_back(frame(&pool, next)) };
                next += 1;
            }
            // SAFETY: one thread: the only consumer.
            while let Some(b) = unsafe { ring.pop_front() } {
                assert_eq!(b.data(), &[expect]);
                expect += 1;
            }
            assert_eq!(ring.len(), 0);
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn clear_and_drop_give_the_buffers_back() {
        let pool = pool(16);
        let used = pool.in_use();
        let ring = Ring::new(4);
        for tag in 0..4 {
            // SAFETY: one thread: the only producer; 4 slots.
            unsafe { ring.push_back(frame(&pool, tag)) };
        }
        assert_eq!(pool.in_use(), used + 4);
        // SAFETY: one thread: the only consumer.
        unsafe { ring.clear() };
        assert_eq!(ring.len(), 0);
        assert_eq!(pool.in_use(), used);
        for tag in 0..3 {
            // SAFETY: as above.
            unsafe { ring.push_back(frame(&pool, tag)) };
        }
        drop(ring);
        assert_eq!(pool.in_use(), used);
    }

    /// One producer thread and one consumer thread: every frame arrives
    /// once, in order, and every buffer comes back.
    #[test]
    fn two_threads_pass_frames_in_order() {
        let frames: u32 = if cfg!(miri) { 200 } else { 200_000 };
        let pool = pool(64);
        let ring = Ring::new(8);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut next = 0u32;
                while next < frames {
                    if ring.len() < 8 {
                        if let Some(mut b) = pool.alloc() {
                            b.extend_from_slice(&next.to_le_bytes()).expect("room");
                            // SAFETY: this thread is the only producer;
                            // room checked just above.
                            unsafe { ring.push_back(b) };
                            next += 1;
                            continue;
                        }
                    }
                    std::thread::yield_now();
                }
            });
            let mut expect = 0u32;
            while expect < frames {
                // SAFETY: this thread is the only consumer.
                match unsafe { ring.pop_front() } {
                    Some(b) => {
                        assert_eq!(b.data(), &expect.to_le_bytes());
                        expect += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
        assert_eq!(ring.len(), 0);
    }
}
