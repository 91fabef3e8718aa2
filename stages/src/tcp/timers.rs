//! The deadline queue over connections: which slot's timers are due
//! next.
//!
//! A connection's deadline moves with nearly every segment (the RTO
//! restarts on each ACK), so entries are not updated in place: a deadline
//! that moved earlier pushes a new entry and the slot remembers which one
//! is its own; older entries are skipped when they come up (lazy
//! deletion). A deadline that moved later pushes nothing: the slot's
//! entry comes up early and is re-armed then (the socket table's
//! `rearm` and `fire_due`). The queue is rebuilt without stale entries
//! when they outnumber the live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slots of the socket table by deadline (nanoseconds), earliest first.
///
/// ```
/// use tpa_stages::tcp::timers::TimerQueue;
/// let mut q = TimerQueue::default();
/// q.arm(7, 300);
/// q.arm(3, 100);
/// assert_eq!(q.next_deadline(), Some(100));
/// assert_eq!(q.pop_due(250), Some((100, 3)));
/// assert_eq!(q.pop_due(250), None, "slot 7 is not due yet");
/// ```
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl TimerQueue {
    /// Adds an entry for `slot` at `deadline_ns`. Entries the slot no
    /// longer wants stay until they come up; the caller tells them apart.
    #[inline]
    pub fn arm(&mut self, slot: u32, deadline_ns: u64) {
        self.heap.push(Reverse((deadline_ns, slot)));
    }

    /// The earliest entry's deadline (possibly a stale one: waking for it
    /// costs one empty [`pop_due`](Self::pop_due)).
    #[inline]
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest entry due at `now_ns`, `(deadline, slot)`, removed.
    #[inline]
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(u64, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now_ns => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    #[inline]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether [`compact`](Self::compact) would rebuild the queue.
    #[inline]
    pub fn wants_compact(&self, live_slots: usize) -> bool {
        self.heap.len() > 2 * live_slots + 64
    }

    /// Keeps only the entries `live(deadline, slot)` says are current,
    /// when more than `2 * live_slots + 64` are held.
    pub fn compact(&mut self, live_slots: usize, mut live: impl FnMut(u64, u32) -> bool) {
        if !self.wants_compact(live_slots) {
            return;
        }
        self.heap.retain(|Reverse((at, slot))| live(*at, *slot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_in_deadline_order_and_stale_ones_can_be_dropped() {
        let mut q = TimerQueue::default();
        for (slot, at) in [(1, 50), (2, 10), (3, 30), (2, 20)] {
            q.arm(slot, at);
        }
        assert_eq!(q.len(), 4);
        let mut out = Vec::new();
        while let Some(e) = q.pop_due(40) {
            out.push(e);
        }
        assert_eq!(out, [(10, 2), (20, 2), (30, 3)]);
        assert_eq!(q.next_deadline(), Some(50));
        for i in 0..200 {
            q.arm(9, 1000 + i);
        }
        q.compact(2, |at, slot| slot != 9 || at == 1199);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(u64::MAX), Some((50, 1)));
        assert_eq!(q.pop_due(u64::MAX), Some((1199, 9)));
        assert!(q.is_empty());
    }
}
