//! A receive ring: the frames waiting for one queue of a lane's far end.

use crate::buf::PoolBuf;

/// The frames waiting for one receive queue, oldest first: a fixed array of
/// slots, a power of two at least the ring size long, read from `head`.
///
/// A lane never puts more than its ring size into a ring (every push is
/// checked against it first), so the ring never grows: a push or a pop is
/// an index, a mask and a slot, with no capacity test and no growth path
/// (`VecDeque`'s, which kept its `push_back` out of line once the lane
/// pushed from two places).
pub(super) struct Ring {
    slots: Box<[Option<PoolBuf>]>,
    /// `slots.len() - 1`.
    mask: usize,
    /// The oldest frame's slot; always masked, so below `slots.len()`.
    head: usize,
    len: usize,
}

impl Ring {
    /// An empty ring for up to `size` frames (at least one).
    pub(super) fn new(size: usize) -> Ring {
        let capacity = size.max(1).next_power_of_two();
        Ring {
            slots: (0..capacity).map(|_| None).collect(),
            mask: capacity - 1,
            head: 0,
            len: 0,
        }
    }

    /// Frames waiting.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `b` behind the frames waiting. The caller has checked that
    /// the ring holds fewer than its size.
    #[inline(always)]
    pub(super) fn push_back(&mut self, b: PoolBuf) {
        debug_assert!(self.len < self.slots.len(), "a full ring");
        let i = (self.head + self.len) & self.mask;
        // SAFETY: `i` is masked by `mask`, which is `slots.len() - 1`
        // (the length is a power of two, never changed): `i < slots.len()`.
        let slot = unsafe { self.slots.get_unchecked_mut(i) };
        *slot = Some(b);
        self.len += 1;
    }

    /// Takes the oldest frame.
    #[inline(always)]
    pub(super) fn pop_front(&mut self) -> Option<PoolBuf> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: `head` is always kept masked by `mask`, which is
        // `slots.len() - 1`: `head < slots.len()`.
        let b = unsafe { self.slots.get_unchecked_mut(self.head) }.take();
        self.head = (self.head + 1) & self.mask;
        self.len -= 1;
        b
    }

    /// Puts `b` back in front of the frames waiting (it was just popped).
    pub(super) fn push_front(&mut self, b: PoolBuf) {
        debug_assert!(self.len < self.slots.len(), "a full ring");
        let i = self.head.wrapping_add(self.mask) & self.mask;
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some(b);
            self.head = i;
            self.len += 1;
        }
    }

    /// Drops every frame waiting (their buffers go back to the pool).
    pub(super) fn clear(&mut self) {
        while self.pop_front().is_some() {}
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{PacketBuf, Pool, PoolConfig};

    fn pool() -> Pool {
        Pool::new(PoolConfig {
            name: "ring-test".into(),
            capacity: 16,
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
        let pool = pool();
        let mut ring = Ring::new(3);
        let mut next = 0u8;
        let mut expect = 0u8;
        for round in 0..10 {
            for _ in 0..(1 + round % 3) {
                ring.push_back(frame(&pool, next));
                next += 1;
            }
            while let Some(b) = ring.pop_front() {
                assert_eq!(b.data(), &[expect]);
                expect += 1;
            }
            assert_eq!(ring.len(), 0);
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn a_frame_put_back_is_the_next_out() {
        let pool = pool();
        let mut ring = Ring::new(4);
        for tag in 0..3 {
            ring.push_back(frame(&pool, tag));
        }
        let first = ring.pop_front().expect("a frame");
        ring.push_front(first);
        assert_eq!(ring.len(), 3);
        for tag in 0..3 {
            assert_eq!(ring.pop_front().expect("a frame").data(), &[tag]);
        }
        assert!(ring.pop_front().is_none());
    }

    #[test]
    fn clear_gives_the_buffers_back() {
        let pool = pool();
        let used = pool.in_use();
        let mut ring = Ring::new(4);
        for tag in 0..4 {
            ring.push_back(frame(&pool, tag));
        }
        assert_eq!(pool.in_use(), used + 4);
        ring.clear();
        assert_eq!(ring.len(), 0);
        assert_eq!(pool.in_use(), used);
    }
}
