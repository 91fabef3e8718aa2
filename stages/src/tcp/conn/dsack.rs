//! D-SACK reports owed (RFC 2883 §4): each duplicate segment received
//! gets an ACK of its own whose first SACK block is that duplicate's
//! range, as Linux sends, even when a burst of duplicates arrives before
//! the output path runs. The queue is bounded: a flood of duplicates
//! earns at most one ACK per duplicate, and at most [`MAX_OWED`] wait at
//! once (the oldest report gives way to the newest beyond that).

use super::super::seq::SeqRange;

/// D-SACK reports held at most: a receive burst's worth
/// (`tpa::port::BURST_SIZE`).
pub(super) const MAX_OWED: usize = 32;

/// The duplicate ranges not yet reported, oldest first. Boxed at the
/// first duplicate: a connection that never gets one pays a pointer.
#[derive(Debug, Default)]
pub(super) struct DsackQueue {
    ring: Option<Box<Ring>>,
}

/// A fixed ring of ranges: `len` of them from `head`.
#[derive(Debug, Default)]
struct Ring {
    ranges: [SeqRange; MAX_OWED],
    head: usize,
    len: usize,
}

impl DsackQueue {
    /// Owes a report of `range`, after those already owed.
    pub(super) fn push(&mut self, range: SeqRange) {
        let r = self.ring.get_or_insert_with(Box::default);
        if r.len == MAX_OWED {
            r.head = (r.head + 1) % MAX_OWED;
            r.len -= 1;
        }
        r.ranges[(r.head + r.len) % MAX_OWED] = range;
        r.len += 1;
    }

    /// The oldest report owed, taken.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<SeqRange> {
        let r = self.ring.as_deref_mut().filter(|r| r.len > 0)?;
        let range = r.ranges[r.head];
        r.head = (r.head + 1) % MAX_OWED;
        r.len -= 1;
        Some(range)
    }

    /// Whether no report is owed.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.ring.as_deref().is_none_or(|r| r.len == 0)
    }

    /// How many reports are owed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ring.as_deref().map_or(0, |r| r.len)
    }

    /// Forgets every report owed (the connection sends no more ACKs).
    pub(super) fn clear(&mut self) {
        self.ring = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::seq::SeqNumber;

    fn range(at: u32) -> SeqRange {
        SeqRange::from_len(SeqNumber::new(at), 10)
    }

    #[test]
    fn reports_come_out_in_arrival_order() {
        let mut q = DsackQueue::default();
        assert!(q.is_empty());
        q.push(range(100));
        q.push(range(50));
        assert_eq!(q.pop(), Some(range(100)));
        assert_eq!(q.pop(), Some(range(50)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn the_ring_wraps_in_order() {
        let mut q = DsackQueue::default();
        for i in 0..20 {
            q.push(range(i));
        }
        for i in 0..10 {
            assert_eq!(q.pop(), Some(range(i)));
        }
        // 10 left, 25 more: 35 owed, the 3 oldest give way.
        for i in 20..45 {
            q.push(range(i));
        }
        assert_eq!(q.len(), MAX_OWED);
        for i in 13..45 {
            assert_eq!(q.pop(), Some(range(i)), "report {i}");
        }
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_flood_keeps_the_newest_reports_within_the_bound() {
        let mut q = DsackQueue::default();
        let n = MAX_OWED as u32 + 5;
        for i in 0..n {
            q.push(range(i * 10));
        }
        assert_eq!(q.len(), MAX_OWED);
        assert_eq!(q.pop(), Some(range(5 * 10)), "the five oldest gave way");
        q.clear();
        assert!(q.is_empty());
    }
}
