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
#[derive(Debug)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// More entries than this want compacting: twice the live slots
    /// ([`set_live_slots`](Self::set_live_slots)), plus 64.
    compact_above: usize,
    /// When [`wants_work`](Self::wants_work) next says yes: the earliest
    /// entry's deadline (`u64::MAX` when empty), or 0 once an
    /// [`arm`](Self::arm) left the queue wanting compacting (until the
    /// next [`pop_due`](Self::pop_due) that takes an entry or
    /// [`compact`](Self::compact)). The loop's test reads one word.
    wake_ns: u64,
}

impl Default for TimerQueue {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            compact_above: 64,
            wake_ns: u64::MAX,
        }
    }
}

impl TimerQueue {
    /// Adds an entry for `slot` at `deadline_ns`. Entries the slot no
    /// longer wants stay until they come up; the caller tells them apart.
    #[inline]
    pub fn arm(&mut self, slot: u32, deadline_ns: u64) {
        self.heap.push(Reverse((deadline_ns, slot)));
        self.wake_ns = if self.wants_compact() {
            0
        } else {
            self.wake_ns.min(deadline_ns)
        };
        self.debug_check_wake();
    }

    /// Sets how many slots are live: [`compact`](Self::compact) rebuilds
    /// the queue once it holds more than twice as many entries, plus 64.
    /// Entries come only from [`arm`](Self::arm), which asks for the
    /// rebuild: fewer live slots leave it to the next one.
    #[inline]
    pub fn set_live_slots(&mut self, live_slots: usize) {
        self.compact_above = 2 * live_slots + 64;
    }

    /// Whether an entry is due at `now_ns` or the queue wants compacting:
    /// what the loop tests before popping ([`pop_due`](Self::pop_due))
    /// and [`compact`](Self::compact).
    #[inline(always)]
    pub fn wants_work(&self, now_ns: u64) -> bool {
        self.debug_check_wake();
        self.wake_ns <= now_ns
    }

    /// `wake_ns` set to the earliest entry's deadline, after the heap
    /// lost entries.
    #[inline]
    fn refresh_wake(&mut self) {
        self.wake_ns = self.next_deadline().unwrap_or(u64::MAX);
    }

    /// Checks `wake_ns` against the heap (tests and debug builds): no
    /// entry is due before it, and a compaction wanted since the last one
    /// is asked for.
    #[inline(always)]
    fn debug_check_wake(&self) {
        #[cfg(any(test, debug_assertions))]
        {
            let earliest = self.next_deadline().unwrap_or(u64::MAX);
            assert!(
                self.wake_ns == 0 || self.wake_ns == earliest,
                "stale wake_ns"
            );
        }
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
            Some(Reverse((at, _))) if *at <= now_ns => {
                let popped = self.heap.pop().map(|Reverse(e)| e);
                self.refresh_wake();
                popped
            }
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

    /// Whether [`compact`](Self::compact) would rebuild the queue: it
    /// holds more than twice the live slots' entries, plus 64.
    #[inline]
    pub fn wants_compact(&self) -> bool {
        self.heap.len() > self.compact_above
    }

    /// Keeps only the entries `live(deadline, slot)` says are current,
    /// when [`wants_compact`](Self::wants_compact).
    pub fn compact(&mut self, mut live: impl FnMut(u64, u32) -> bool) {
        if self.wants_compact() {
            self.heap.retain(|Reverse((at, slot))| live(*at, *slot));
        }
        self.refresh_wake();
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
        q.set_live_slots(2);
        assert!(q.wants_work(0), "compaction wanted");
        q.compact(|at, slot| slot != 9 || at == 1199);
        assert!(!q.wants_work(49) && q.wants_work(50));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(u64::MAX), Some((50, 1)));
        assert_eq!(q.pop_due(u64::MAX), Some((1199, 9)));
        assert!(q.is_empty());
    }
}
