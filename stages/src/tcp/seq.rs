//! TCP sequence numbers and their arithmetic modulo 2^32 (RFC 9293 §3.4).
//!
//! [`SeqNumber`] is the only way TCP code adds to, subtracts from and
//! compares sequence numbers, so no comparison is ever made on raw `u32`s
//! (where `0xffff_fff0 < 0x10` is true as integers but false on the wire).
//!
//! # Why there is no `Ord`
//!
//! Sequence space is a circle of 2^32 points, not a line. "`a` is before
//! `b`" means "`b` is less than half the circle ahead of `a`" (RFC 1982 §3.2,
//! the serial-number arithmetic RFC 9293 §3.4 relies on). That relation is
//! not transitive (`0 < 2^30 < 2^31 < 3·2^30 < 0`), and two numbers exactly
//! 2^31 apart are neither before nor after each other. `Ord` and `PartialOrd`
//! promise a consistent order that sorting and `BTreeMap` rely on; sequence
//! numbers cannot give one, so comparisons are the named methods
//! [`lt`](SeqNumber::lt), [`le`](SeqNumber::le), [`gt`](SeqNumber::gt),
//! [`ge`](SeqNumber::ge) and the window check
//! [`is_between`](SeqNumber::is_between), which TCP only ever applies to
//! numbers that are close together (within a window, at most 2^30 bytes
//! with window scaling, RFC 7323 §2.3).

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence (or acknowledgment) number, a point on the circle of
/// 2^32 values (RFC 9293 §3.4).
///
/// Adding or subtracting a `u32` length wraps; comparisons are modulo 2^32.
///
/// ```
/// use tpa_stages::tcp::seq::SeqNumber;
///
/// let snd_una = SeqNumber::new(0xffff_fff0);
/// let snd_nxt = snd_una + 0x20; // wrapped past zero
/// assert_eq!(u32::from(snd_nxt), 0x10);
/// assert!(snd_una.lt(snd_nxt));
/// assert_eq!(snd_nxt.wrapping_sub(snd_una), 0x20);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(u32);

impl SeqNumber {
    /// The sequence number with this value on the wire.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(SeqNumber::new(7).get(), 7);
    /// ```
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The value on the wire.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(SeqNumber::new(u32::MAX).get(), u32::MAX);
    /// ```
    pub const fn get(self) -> u32 {
        self.0
    }

    /// How far ahead of `earlier` this number is, going forward around the
    /// circle: `self - earlier` modulo 2^32. The byte count between
    /// `SND.UNA` and `SND.NXT` is `snd_nxt.wrapping_sub(snd_una)`.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(u32::MAX);
    /// assert_eq!((a + 5).wrapping_sub(a), 5);
    /// assert_eq!(a.wrapping_sub(a + 5), u32::MAX - 4);
    /// ```
    pub const fn wrapping_sub(self, earlier: SeqNumber) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// The signed shortest distance from `other` to this number: positive
    /// when this one is after `other`, negative when before. Two numbers
    /// exactly 2^31 apart give `i32::MIN` (they are not ordered).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(3);
    /// assert_eq!((a - 10).distance(a), -10);
    /// assert_eq!((a + 10).distance(a), 10);
    /// ```
    pub const fn distance(self, other: SeqNumber) -> i32 {
        // Two's complement reinterpretation is the RFC 1982 §3.2 rule.
        self.0.wrapping_sub(other.0) as i32
    }

    /// Whether this number is before `other`: `other` is 1 to 2^31 - 1
    /// ahead (RFC 1982 §3.2, RFC 9293 §3.4 "=<" and "<" are modulo 2^32).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(u32::MAX);
    /// assert!(a.lt(a + 1));
    /// assert!(!a.lt(a));
    /// assert!(!a.lt(a + (1 << 31))); // half a circle: not ordered
    /// ```
    pub const fn lt(self, other: SeqNumber) -> bool {
        // `other` 1 to 2^31 - 1 ahead is exactly a positive signed
        // distance: one compare of the difference's sign and zero.
        other.distance(self) > 0
    }

    /// Whether this number is before or equal to `other`.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(10);
    /// assert!(a.le(a) && a.le(a + 1) && !a.le(a - 1));
    /// ```
    pub const fn le(self, other: SeqNumber) -> bool {
        // Equal or 1 to 2^31 - 1 ahead: a distance of 0 to `i32::MAX`.
        other.distance(self) >= 0
    }

    /// Whether this number is after `other` (`other.lt(self)`).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(0);
    /// assert!(a.gt(a - 1));
    /// assert!(!a.gt(a + 1));
    /// ```
    pub const fn gt(self, other: SeqNumber) -> bool {
        other.lt(self)
    }

    /// Whether this number is after or equal to `other`.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(0);
    /// assert!(a.ge(a) && a.ge(a - 1) && !a.ge(a + 1));
    /// ```
    pub const fn ge(self, other: SeqNumber) -> bool {
        other.le(self)
    }

    /// Whether this number lies in the half-open window `[lo, hi)`, going
    /// forward around the circle from `lo`. An empty window (`lo == hi`)
    /// holds nothing; a window may be up to 2^32 - 1 long.
    ///
    /// This is the building block of the segment acceptability test of
    /// RFC 9293 §3.10.7.4: `RCV.NXT =< SEG.SEQ < RCV.NXT + RCV.WND` is
    /// `seg_seq.is_between(rcv_nxt, rcv_nxt + rcv_wnd)`. A window open at
    /// the bottom and closed at the top, like the ACK check
    /// `SND.UNA < SEG.ACK =< SND.NXT`, is
    /// `seg_ack.is_between(snd_una + 1, snd_nxt + 1)`.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let rcv_nxt = SeqNumber::new(u32::MAX - 1);
    /// let end = rcv_nxt + 4; // the window wraps past zero
    /// assert!(rcv_nxt.is_between(rcv_nxt, end));
    /// assert!(SeqNumber::new(1).is_between(rcv_nxt, end));
    /// assert!(!end.is_between(rcv_nxt, end));
    /// assert!(!(rcv_nxt - 1).is_between(rcv_nxt, end));
    /// assert!(!rcv_nxt.is_between(rcv_nxt, rcv_nxt)); // zero window
    /// ```
    pub const fn is_between(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        self.0.wrapping_sub(lo.0) < hi.0.wrapping_sub(lo.0)
    }

    /// The later of two numbers in sequence space; `self` when they are
    /// equal or not ordered (exactly 2^31 apart).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(u32::MAX);
    /// assert_eq!(a.max(a + 2), a + 2); // 1 is after u32::MAX
    /// ```
    pub const fn max(self, other: SeqNumber) -> SeqNumber {
        if self.lt(other) {
            other
        } else {
            self
        }
    }

    /// The earlier of two numbers in sequence space; `self` when they are
    /// equal or not ordered (exactly 2^31 apart).
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let a = SeqNumber::new(u32::MAX);
    /// assert_eq!(a.min(a + 2), a);
    /// ```
    pub const fn min(self, other: SeqNumber) -> SeqNumber {
        if other.lt(self) {
            other
        } else {
            self
        }
    }
}

impl From<u32> for SeqNumber {
    /// The sequence number with this wire value.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(SeqNumber::from(9), SeqNumber::new(9));
    /// ```
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<SeqNumber> for u32 {
    /// The wire value of a sequence number.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(u32::from(SeqNumber::new(9)), 9);
    /// ```
    fn from(seq: SeqNumber) -> Self {
        seq.0
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;

    /// Move forward by `len` bytes, wrapping past 2^32 - 1.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(SeqNumber::new(u32::MAX) + 1, SeqNumber::new(0));
    /// ```
    fn add(self, len: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(len))
    }
}

impl AddAssign<u32> for SeqNumber {
    /// Move forward by `len` bytes in place, wrapping.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let mut snd_nxt = SeqNumber::new(u32::MAX);
    /// snd_nxt += 2;
    /// assert_eq!(snd_nxt.get(), 1);
    /// ```
    fn add_assign(&mut self, len: u32) {
        *self = *self + len;
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;

    /// Move back by `len` bytes, wrapping below zero.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// assert_eq!(SeqNumber::new(0) - 1, SeqNumber::new(u32::MAX));
    /// ```
    fn sub(self, len: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(len))
    }
}

impl SubAssign<u32> for SeqNumber {
    /// Move back by `len` bytes in place, wrapping.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let mut s = SeqNumber::new(0);
    /// s -= 1;
    /// assert_eq!(s.get(), u32::MAX);
    /// ```
    fn sub_assign(&mut self, len: u32) {
        *self = *self - len;
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNumber({})", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A half-open range `[start, end)` of sequence space: the bytes a segment
/// carries, a SACK block (RFC 2018 §3: left edge, right edge).
///
/// ```
/// use tpa_stages::tcp::seq::{SeqNumber, SeqRange};
/// let r = SeqRange::new(SeqNumber::new(u32::MAX - 1), SeqNumber::new(3));
/// assert_eq!(r.len(), 5);
/// assert!(r.contains(SeqNumber::new(0)) && !r.contains(r.end));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqRange {
    /// The first number in the range.
    pub start: SeqNumber,
    /// The number just past the range.
    pub end: SeqNumber,
}

impl SeqRange {
    /// The range `[start, end)`.
    pub const fn new(start: SeqNumber, end: SeqNumber) -> Self {
        Self { start, end }
    }

    /// The `len` numbers from `start`.
    ///
    /// ```
    /// use tpa_stages::tcp::seq::{SeqNumber, SeqRange};
    /// let r = SeqRange::from_len(SeqNumber::new(10), 5);
    /// assert_eq!(r.end, SeqNumber::new(15));
    /// ```
    pub fn from_len(start: SeqNumber, len: u32) -> Self {
        Self {
            start,
            end: start + len,
        }
    }

    /// How many numbers the range holds (`end - start` modulo 2^32).
    pub const fn len(&self) -> u32 {
        self.end.wrapping_sub(self.start)
    }

    /// Whether the range holds nothing.
    pub const fn is_empty(&self) -> bool {
        self.start.get() == self.end.get()
    }

    /// Whether `seq` lies in the range.
    pub const fn contains(&self, seq: SeqNumber) -> bool {
        seq.is_between(self.start, self.end)
    }
}

impl fmt::Debug for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start.0, self.end.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The half circle: numbers this far apart or more are not ordered
    /// (RFC 1982 §3.2: `i2 - i1 < 2^(SERIAL_BITS - 1)` with `SERIAL_BITS = 32`).
    const HALF: u32 = 1 << 31;

    /// The values where wrap-around bugs live: both ends of the `u32`
    /// range and both sides of the half circle.
    const BOUNDARIES: [u32; 9] = [
        0,
        1,
        2,
        HALF - 2,
        HALF - 1,
        HALF,
        HALF + 1,
        u32::MAX - 1,
        u32::MAX,
    ];

    /// A value at a boundary or anywhere.
    fn seq_value() -> impl Strategy<Value = u32> {
        prop_oneof![proptest::sample::select(&BOUNDARIES[..]), any::<u32>()]
    }

    /// A distance that may sit on a boundary itself.
    fn offset() -> impl Strategy<Value = u32> {
        prop_oneof![proptest::sample::select(&BOUNDARIES[..]), any::<u32>()]
    }

    #[test]
    fn wraps_at_both_ends() {
        assert_eq!(SeqNumber::new(u32::MAX) + 1, SeqNumber::new(0));
        assert_eq!(SeqNumber::new(0) - 1, SeqNumber::new(u32::MAX));
        assert!(SeqNumber::new(u32::MAX).lt(SeqNumber::new(0)));
        assert!(SeqNumber::new(0).gt(SeqNumber::new(u32::MAX)));
        assert_eq!(SeqNumber::new(0).distance(SeqNumber::new(u32::MAX)), 1);
    }

    #[test]
    fn half_a_circle_apart_is_not_ordered() {
        for base in BOUNDARIES {
            let a = SeqNumber::new(base);
            let b = a + HALF;
            assert!(!a.lt(b) && !a.gt(b) && !a.le(b) && !a.ge(b), "{a} {b}");
            assert_eq!(a.max(b), a);
            assert_eq!(b.min(a), b);
            assert_eq!(a.distance(b), i32::MIN);
        }
    }

    #[test]
    fn not_transitive_around_the_circle() {
        let q = SeqNumber::new(0);
        let steps = [q, q + (1 << 30), q + HALF - 1, q + 3 * (1 << 30)];
        for pair in steps.windows(2) {
            assert!(pair[0].lt(pair[1]));
        }
        assert!(steps[3].lt(q), "the circle closes: no total order");
    }

    #[test]
    fn empty_and_full_windows() {
        for base in BOUNDARIES {
            let lo = SeqNumber::new(base);
            assert!(!lo.is_between(lo, lo));
            // The largest window holds every point but the one before lo.
            let hi = lo - 1;
            assert!(lo.is_between(lo, hi));
            assert!((lo + HALF).is_between(lo, hi));
            assert!((hi - 1).is_between(lo, hi));
            assert!(!hi.is_between(lo, hi));
        }
    }

    proptest! {
        /// Adding then subtracting is the identity, and `wrapping_sub`
        /// recovers the length added, at every boundary.
        #[test]
        fn add_sub_roundtrip(base in seq_value(), len in offset()) {
            let a = SeqNumber::new(base);
            prop_assert_eq!((a + len) - len, a);
            prop_assert_eq!((a + len).wrapping_sub(a), len);
            let mut b = a;
            b += len;
            prop_assert_eq!(b, a + len);
            b -= len;
            prop_assert_eq!(b, a);
            prop_assert_eq!(u32::from(a + len), base.wrapping_add(len));
        }

        /// `lt` and `le` (by the signed distance) are RFC 1982 §3.2's
        /// rule as written: `a.lt(b)` when `b` is 1 to 2^31 - 1 ahead of
        /// `a`, `a.le(b)` when 0 to 2^31 - 1.
        #[test]
        fn comparisons_are_the_serial_number_rule(x in seq_value(), d in offset()) {
            let (a, b) = (SeqNumber::new(x), SeqNumber::new(x.wrapping_add(d)));
            prop_assert_eq!(a.lt(b), d != 0 && d < HALF);
            prop_assert_eq!(a.le(b), d < HALF);
        }

        /// Against a u64 line: two points less than 2^31 apart compare as
        /// their unwrapped values do, wherever the line crosses 2^32.
        #[test]
        fn comparisons_match_unwrapped_line(
            base in seq_value(),
            lap in 0u64..4,
            a_off in 0u64..(1 << 31),
            gap in 0u64..(1 << 31),
            swap in any::<bool>(),
        ) {
            let line_a = (lap << 32) + u64::from(base) + a_off;
            let line_b = line_a + gap;
            let (x, y) = if swap { (line_b, line_a) } else { (line_a, line_b) };
            let sx = SeqNumber::new(x as u32);
            let sy = SeqNumber::new(y as u32);
            prop_assert_eq!(sx.lt(sy), x < y);
            prop_assert_eq!(sx.le(sy), x <= y);
            prop_assert_eq!(sx.gt(sy), x > y);
            prop_assert_eq!(sx.ge(sy), x >= y);
            prop_assert_eq!(i64::from(sx.distance(sy)), x as i64 - y as i64);
            let (lo, hi) = (x.min(y), x.max(y));
            prop_assert_eq!(sx.max(sy), SeqNumber::new(hi as u32));
            prop_assert_eq!(sx.min(sy), SeqNumber::new(lo as u32));
            // Exactly one of before, equal, after.
            let relations = [sx.lt(sy), sx == sy, sx.gt(sy)];
            prop_assert_eq!(relations.iter().filter(|r| **r).count(), 1);
        }

        /// Against a u64 line: `is_between(lo, hi)` is `lo <= x < hi` for
        /// every point that cannot alias into the window, i.e. any point
        /// in `[hi - 2^32, lo + 2^32)` on the unwrapped line.
        #[test]
        fn window_matches_unwrapped_line(
            base in seq_value(),
            window in offset(),
            anywhere in any::<u64>(),
            anchor in 0u8..3,
            nudge in -2i64..=2,
        ) {
            let window = u64::from(window);
            // The line starts a few laps in so points before lo stay >= 0.
            let lo = (4u64 << 32) + u64::from(base);
            let hi = lo + window;
            // The non-aliasing points span 2^33 - window values.
            let first = hi - (1u64 << 32);
            let span = (2u64 << 32) - window;
            // A third of the cases lands within 2 of each window edge,
            // where off-by-one bugs live.
            let near = |edge: u64| edge.checked_add_signed(nudge);
            let x = match anchor {
                1 => near(lo),
                2 => near(hi),
                _ => None,
            }
            .filter(|x| (first..first + span).contains(x))
            .unwrap_or(first + anywhere % span);
            let got = SeqNumber::new(x as u32)
                .is_between(SeqNumber::new(lo as u32), SeqNumber::new(hi as u32));
            prop_assert_eq!(got, lo <= x && x < hi, "lo {} hi {} x {}", lo, hi, x);
        }

        /// The RFC 9293 §3.10.7.4 ACK check `SND.UNA < SEG.ACK =< SND.NXT`
        /// written with `is_between` matches the line.
        #[test]
        fn ack_window_matches_unwrapped_line(
            base in seq_value(),
            in_flight in 0u64..(1 << 30),
            ack_off in 0u64..(1 << 31),
            before in any::<bool>(),
        ) {
            let una = (4u64 << 32) + u64::from(base);
            let nxt = una + in_flight;
            let ack = if before { una - ack_off } else { una + ack_off };
            let s = |v: u64| SeqNumber::new(v as u32);
            let got = s(ack).is_between(s(una) + 1, s(nxt) + 1);
            prop_assert_eq!(got, una < ack && ack <= nxt);
        }
    }
}
