//! D-SACK reports owed (RFC 2883 §4): each duplicate segment received
//! gets an ACK of its own whose first SACK block is that duplicate's
//! range, as Linux sends, even when a burst of duplicates arrives before
//! the output path runs. The queue is bounded: a flood of duplicates
//! earns at most one ACK per duplicate, and at most [`MAX_OWED`] wait at
//! once (the oldest report gives way to the newest beyond that).

use std::collections::VecDeque;

use super::super::seq::SeqRange;

/// D-SACK reports held at most: a receive burst's worth
/// (`tpa::port::BURST_SIZE`).
pub(super) const MAX_OWED: usize = 32;

/// The duplicate ranges not yet reported, oldest first. Boxed at the
/// first duplicate: a connection that never gets one pays a pointer.
#[derive(Debug, Default)]
pub(super) struct DsackQueue {
    ranges: Option<Box<VecDeque<SeqRange>>>,
}

impl DsackQueue {
    /// Owes a report of `range`, after those already owed.
    pub(super) fn push(&mut self, range: SeqRange) {
        let ranges = self.ranges.get_or_insert_with(Box::default);
        if ranges.len() == MAX_OWED {
            ranges.pop_front();
        }
        ranges.push_back(range);
    }

    /// The oldest report owed, taken.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<SeqRange> {
        self.ranges.as_mut()?.pop_front()
    }

    /// Whether no report is owed.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.as_ref().is_none_or(|r| r.is_empty())
    }

    /// How many reports are owed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ranges.as_ref().map_or(0, |r| r.len())
    }

    /// Forgets every report owed (the connection sends no more ACKs).
    pub(super) fn clear(&mut self) {
        self.ranges = None;
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
