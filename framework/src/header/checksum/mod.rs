//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum of IPv4, ICMP, TCP and UDP is the one's complement of the
//! one's-complement sum of the data taken as big-endian 16-bit words (an odd
//! trailing byte is padded with a zero). This module computes:
//!
//! - [`sum`]: the folded one's-complement sum of a byte slice (not yet
//!   complemented), on the vector unit for long buffers;
//! - [`copy_and_sum`]: a copy that returns [`sum`] of the bytes copied;
//! - [`checksum`]: the value to store in a header (`!sum`);
//! - [`Checksum`]: an accumulator over several pieces of any length
//!   (pseudo-header, header, payload segments);
//! - [`pseudo_header_v4`] / [`pseudo_header_v6`]: the pseudo-header sums that
//!   TCP, UDP and ICMPv6 checksums start from;
//! - [`update`] / [`update_u32`]: patch a checksum after rewriting a field,
//!   without summing the data again.
//!
//! ```
//! use tpa::header::checksum;
//! // A real IPv4 header; its checksum field (bytes 10..12) holds 0xb861.
//! let mut ip = [
//!     0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
//!     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
//! ];
//! assert_eq!(checksum::checksum(&ip), 0); // a correct header sums to zero
//! ip[10..12].fill(0);
//! assert_eq!(checksum::checksum(&ip), 0xb861);
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

mod wide;

/// From this length on, [`sum_from`] sums the 64-byte blocks on the vector
/// unit ([`wide`]); shorter data (headers, small messages) stays on the
/// carry-chained scalar loop, which needs no lanes folded at the end.
const WIDE_MIN: usize = 256;

#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    WIDE_MIN >= wide::AVX2_MIN,
    "the AVX2 loop takes long data only"
);

/// The one's-complement sum of `bytes` as big-endian 16-bit words, folded to
/// 16 bits. An odd final byte counts as the high byte of a last word.
///
/// The result is a partial sum: add more with [`combine`] (when `bytes` has
/// an even length) or use [`Checksum`], and complement it with `!` for the
/// value to store.
///
/// ```
/// // The example of RFC 1071, section 3.
/// let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
/// assert_eq!(tpa::header::checksum::sum(&data), 0xddf2);
/// ```
#[inline]
pub fn sum(bytes: &[u8]) -> u16 {
    sum_from(0, bytes)
}

/// [`sum`] of data whose length is known when compiling (a fixed header,
/// such as IPv4's 20 bytes without options): inlined, and with the length
/// known so are the words to add, a handful of additions and no call.
///
/// ```
/// use tpa::header::checksum::{sum, sum_array};
/// let header = [0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7];
/// assert_eq!(sum_array(&header), sum(&header));
/// assert_eq!(sum_array(&header), 0xffff); // a correct header
/// ```
#[inline(always)]
pub fn sum_array<const N: usize>(bytes: &[u8; N]) -> u16 {
    if N < 64 {
        sum_tail(0, bytes)
    } else {
        sum(bytes)
    }
}

/// The one's-complement sum of `start` (a partial sum of data with an even
/// length, such as a pseudo-header's) and `bytes`, folded once: what
/// [`Checksum`] gives for the two pieces, without folding each apart.
///
/// ```
/// use tpa::header::checksum::{pseudo_header_v4, sum_from, Checksum};
/// let pseudo = pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, 9);
/// let segment = [0x04, 0xd2, 0x16, 0x2e, 0x00, 0x09, 0x00, 0x00, 0x61];
/// let mut c = Checksum::new();
/// c.add_sum(pseudo);
/// c.add_bytes(&segment);
/// assert_eq!(sum_from(pseudo, &segment), c.sum());
/// ```
#[inline]
pub fn sum_from(start: u16, bytes: &[u8]) -> u16 {
    // The one's-complement sum does not depend on byte order (RFC 1071,
    // 2.B): sum native-endian words and swap once at the end (`start`,
    // big-endian, is swapped in first). Words of 64 bits go into one 64-bit
    // accumulator with the end-around carry (a one's-complement sum modulo
    // 2^64 - 1 folds to the same 16-bit sum, as 2^16 - 1 divides it).
    sum_native(u64::from(start.to_be()), bytes)
}

/// Copies `src` into `dst` and returns [`sum`] of the bytes, in one pass
/// over them: long data is summed on the vector unit block by block as it
/// is stored (a later [`sum`] of the copy would read it all again), short
/// data is copied then summed on the scalar loop as [`sum_from`] does.
///
/// # Panics
///
/// When `dst` and `src` differ in length (as
/// [`slice::copy_from_slice`]).
///
/// ```
/// use tpa::header::checksum::{copy_and_sum, sum};
/// let src: Vec<u8> = (0..1460u32).map(|i| (i * 7) as u8).collect();
/// let mut dst = vec![0; src.len()];
/// assert_eq!(copy_and_sum(&mut dst, &src), sum(&src));
/// assert_eq!(dst, src);
/// ```
#[inline]
pub fn copy_and_sum(dst: &mut [u8], src: &[u8]) -> u16 {
    if src.len() < WIDE_MIN {
        dst.copy_from_slice(src);
        return sum_native(0, src);
    }
    copy_and_sum_wide(dst, src)
}

/// [`copy_and_sum`] of [`WIDE_MIN`] bytes or more: with AVX2 copied and
/// summed in one pass ([`wide::copy_sum_avx2`]), elsewhere copied, then
/// summed. Out of line, as [`sum_wide`].
#[inline(never)]
fn copy_and_sum_wide(dst: &mut [u8], src: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the only
        // requirement of calling a function compiled for it.
        return unsafe { wide::copy_sum_avx2(dst, src) };
    }
    copy_and_sum_baseline(dst, src)
}

/// [`copy_and_sum_wide`] without AVX2. Out of line, as
/// [`sum_wide_baseline`].
#[inline(never)]
fn copy_and_sum_baseline(dst: &mut [u8], src: &[u8]) -> u16 {
    dst.copy_from_slice(src);
    sum_wide_baseline(0, src)
}

/// The one's-complement sum of the IPv4 pseudo-header (RFC 9293 3.1)
/// from `src` to `dst` for `protocol` and of `segment`, whose length it
/// covers (as 16 bits): what [`sum_from`] gives from
/// [`pseudo_header_v4`], with the pseudo-header's words added as they
/// lie rather than swapped and folded first. A received TCP or UDP
/// segment's checksum verifies when this is 0xffff.
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::header::checksum::{pseudo_header_v4, sum_from, sum_segment_v4};
/// let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
/// let segment = [0x04, 0xd2, 0x16, 0x2e, 0x00, 0x09, 0x00, 0x00, 0x61];
/// assert_eq!(
///     sum_segment_v4(src, dst, 17, &segment),
///     sum_from(pseudo_header_v4(src, dst, 17, 9), &segment)
/// );
/// ```
#[inline]
pub fn sum_segment_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    let [len_hi, len_lo] = (segment.len() as u16).to_be_bytes();
    // Three 32-bit words into 64 bits: no carry out.
    let acc = u64::from(u32::from_ne_bytes(src.octets()))
        + u64::from(u32::from_ne_bytes(dst.octets()))
        + u64::from(u32::from_ne_bytes([0, protocol, len_hi, len_lo]));
    sum_native(acc, segment)
}

/// [`sum_segment_v4`] of a segment in two pieces, `head` then `rest` (a
/// header and a payload chained behind it), whose lengths together the
/// pseudo-header covers (as 16 bits): with `head` of an even length, one
/// pass on from the pseudo-header's words, folded once.
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::header::checksum::{sum_segment_v4, sum_segment_v4_split};
/// let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
/// let segment: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
/// let (head, rest) = segment.split_at(20);
/// assert_eq!(
///     sum_segment_v4_split(src, dst, 6, head, rest),
///     sum_segment_v4(src, dst, 6, &segment)
/// );
/// ```
#[inline]
pub fn sum_segment_v4_split(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    head: &[u8],
    rest: &[u8],
) -> u16 {
    let length = (head.len() + rest.len()) as u16;
    let [len_hi, len_lo] = length.to_be_bytes();
    if !head.len().is_multiple_of(2) {
        // The rest's words straddle the pieces: summed apart and swapped.
        let mut c = Checksum::new();
        c.add_sum(pseudo_header_v4(src, dst, protocol, length));
        c.add_bytes(head);
        c.add_bytes(rest);
        return c.sum();
    }
    // Three 32-bit words into 64 bits: no carry out.
    let mut acc = u64::from(u32::from_ne_bytes(src.octets()))
        + u64::from(u32::from_ne_bytes(dst.octets()))
        + u64::from(u32::from_ne_bytes([0, protocol, len_hi, len_lo]));
    let mut blocks = head.chunks_exact(64);
    for block in &mut blocks {
        acc = add_block(acc, block);
    }
    sum_native(add_tail(acc, blocks.remainder()), rest)
}

/// The sum of `bytes` taken as native-endian words, added to `acc` (a
/// partial sum in the same order), folded and swapped back to a
/// big-endian sum.
#[inline(always)]
fn sum_native(acc: u64, bytes: &[u8]) -> u16 {
    if bytes.len() >= WIDE_MIN {
        return sum_wide(acc, bytes);
    }
    let mut blocks = bytes.chunks_exact(64);
    let mut acc = acc;
    for block in &mut blocks {
        acc = add_block(acc, block);
    }
    sum_tail(acc, blocks.remainder())
}

/// [`sum_from`] of data of [`WIDE_MIN`] bytes or more, `acc` the start
/// swapped in: with AVX2 all of it on the vector unit
/// ([`wide::sum_avx2`]), elsewhere the 64-byte blocks on the vector loop
/// for the baseline and the rest on the scalar one. Out of line (and
/// called last): inlined, the vector loop's registers made every call
/// save six registers and set up a frame, the short headers' too.
#[inline(never)]
fn sum_wide(acc: u64, bytes: &[u8]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the only
        // requirement of calling a function compiled for it.
        return unsafe { wide::sum_avx2(acc, bytes) };
    }
    sum_wide_baseline(acc, bytes)
}

/// [`sum_wide`] without AVX2. Out of line: [`sum_wide`]'s calls are
/// then its last (jumps), with no registers to save around them.
#[inline(never)]
fn sum_wide_baseline(acc: u64, bytes: &[u8]) -> u16 {
    let (blocks, tail) = bytes.split_at(bytes.len() - bytes.len() % wide::BLOCK);
    sum_tail(add_carry(acc, wide::sum_blocks(blocks)), tail)
}

/// The last 0..=63 bytes into `acc`, folded and swapped back.
#[inline(always)]
fn sum_tail(acc: u64, tail: &[u8]) -> u16 {
    u16::from_be(fold(add_tail(acc, tail)))
}

/// The last 0..=63 bytes added into `acc` (native-endian): at most one
/// piece of each of 32, 16, 8, 4, 2 and 1 bytes, in order, each a test
/// and its words added (no loop: short headers and options are mostly
/// tail).
#[inline(always)]
fn add_tail(mut acc: u64, tail: &[u8]) -> u64 {
    debug_assert!(tail.len() < 64);
    let word = |w: &[u8; 8]| u64::from_ne_bytes(*w);
    let mut rest = tail;
    if let Some((c, r)) = rest.split_first_chunk::<32>() {
        acc = add_quarter_block(acc, c);
        rest = r;
    }
    if rest.is_empty() {
        // A multiple of 32 bytes (a TCP header with timestamps, a
        // 64-byte message behind it): no smaller pieces to test for.
        return acc;
    }
    if let Some((c, r)) = rest.split_first_chunk::<16>() {
        let (w, x) = c.split_first_chunk::<8>().expect("16 bytes");
        let x: &[u8; 8] = x.try_into().expect("8 bytes");
        acc = add_carry(add_carry(acc, word(w)), word(x));
        rest = r;
    }
    if let Some((c, r)) = rest.split_first_chunk::<8>() {
        acc = add_carry(acc, word(c));
        rest = r;
    }
    if let Some((c, r)) = rest.split_first_chunk::<4>() {
        acc = add_carry(acc, u64::from(u32::from_ne_bytes(*c)));
        rest = r;
    }
    if let Some((c, r)) = rest.split_first_chunk::<2>() {
        acc = add_carry(acc, u64::from(u16::from_ne_bytes(*c)));
        rest = r;
    }
    if let [last] = rest {
        // The odd byte is the high (first) byte of a zero-padded word.
        acc = add_carry(acc, u64::from(u16::from_ne_bytes([*last, 0])));
    }
    acc
}

/// `a + b` with the end-around carry: the one's-complement sum of two
/// 64-bit words.
#[inline(always)]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Adds eight native-endian 64-bit words (`block` is 64 bytes) to `acc`
/// with the end-around carry. On x86-64 the carries chain through the
/// flags (`add`, seven `adc`, one `adc 0`: about one instruction per eight
/// bytes); elsewhere each word's carry is added back on its own.
#[inline(always)]
fn add_block(acc: u64, block: &[u8]) -> u64 {
    let word = |i: usize| u64::from_ne_bytes(block[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::_addcarry_u64;
        let mut s = 0;
        let mut c = _addcarry_u64(0, acc, word(0), &mut s);
        for i in 1..8 {
            c = _addcarry_u64(c, s, word(i), &mut s);
        }
        s + u64::from(c)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut a = acc;
        let mut b = 0;
        for i in (0..8).step_by(2) {
            a = add_carry(a, word(i));
            b = add_carry(b, word(i + 1));
        }
        add_carry(a, b)
    }
}

/// Adds four native-endian 64-bit words (`piece` is 32 bytes) to `acc`
/// with the end-around carry, chained through the carry flag on x86-64
/// as in [`add_block`] (`add`, three `adc`, one `adc 0`).
#[inline(always)]
fn add_quarter_block(acc: u64, piece: &[u8; 32]) -> u64 {
    let word = |i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&piece[8 * i..8 * i + 8]);
        u64::from_ne_bytes(w)
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::_addcarry_u64;
        let mut s = 0;
        let mut c = _addcarry_u64(0, acc, word(0), &mut s);
        for i in 1..4 {
            c = _addcarry_u64(c, s, word(i), &mut s);
        }
        s + u64::from(c)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        add_carry(
            add_carry(acc, add_carry(word(0), word(1))),
            add_carry(word(2), word(3)),
        )
    }
}

/// Folds a wide one's-complement accumulator to 16 bits, without branches:
/// each step adds the high half to the low half with the end-around carry.
/// A sum of up to 2^48 partial sums folds to their one's-complement sum in
/// one step (where [`combine`] would fold after each).
///
/// ```
/// use tpa::header::checksum::{combine, fold};
/// let (a, b, c) = (0xfff0, 0x0123, 0xff00);
/// assert_eq!(fold(a as u64 + b as u64 + c as u64), combine(combine(a, b), c));
/// ```
#[inline]
pub fn fold(acc: u64) -> u16 {
    let (s, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let acc = s + u32::from(carry);
    let (s, carry) = (acc as u16).overflowing_add((acc >> 16) as u16);
    s + u16::from(carry)
}

/// The one's-complement sum of two partial sums.
///
/// Summing `a` of bytes `x` and `b` of bytes `y` gives the sum of `x`
/// followed by `y` only when `x` has an even length; [`Checksum`] handles
/// odd lengths.
#[inline]
pub fn combine(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The internet checksum of `bytes`: the complement of [`sum`].
///
/// Computing it over data that contains a correct checksum yields 0.
#[inline]
pub fn checksum(bytes: &[u8]) -> u16 {
    !sum(bytes)
}

/// The sum of the IPv4 pseudo-header TCP and UDP checksums cover: source,
/// destination, protocol and the length of the TCP/UDP header plus payload.
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::header::checksum::{pseudo_header_v4, Checksum};
/// let mut c = Checksum::new();
/// c.add_sum(pseudo_header_v4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 17, 8));
/// c.add_bytes(&[0x04, 0xd2, 0x16, 0x2e, 0x00, 0x08, 0x00, 0x00]); // UDP 1234 -> 5678, empty
/// assert_eq!(c.checksum(), 0xd0db);
/// ```
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200, 8.1) TCP, UDP and ICMPv6
/// checksums cover: source, destination, upper-layer length and next header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let addrs = combine(sum(&src.octets()), sum(&dst.octets()));
    let acc = u64::from(addrs)
        + u64::from(length >> 16)
        + u64::from(length & 0xffff)
        + u64::from(next_header);
    fold(acc)
}

/// Patches a checksum after one 16-bit word of the covered data changed
/// from `old_word` to `new_word` (RFC 1624, equation 3).
///
/// ```
/// use tpa::header::checksum::{checksum, update};
/// let mut ip = [
///     0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
///     0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
/// ];
/// // Decrement the TTL (the high byte of word 4) and patch the checksum.
/// let old = u16::from_be_bytes([ip[8], ip[9]]);
/// ip[8] -= 1;
/// let new = u16::from_be_bytes([ip[8], ip[9]]);
/// let c = update(0xb861, old, new);
/// ip[10..12].copy_from_slice(&c.to_be_bytes());
/// assert_eq!(checksum(&ip), 0);
/// ```
#[inline]
pub fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    !fold(u64::from(!old_checksum) + u64::from(!old_word) + u64::from(new_word))
}

/// Patches a checksum after a 32-bit value of the covered data (at an even
/// offset, say an IPv4 address) changed from `old` to `new`.
#[inline]
pub fn update_u32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!old_checksum)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// An internet-checksum accumulator over pieces of any length.
///
/// Pieces are summed in order as if they were one contiguous buffer: a piece
/// that starts at an odd offset is accounted for correctly.
///
/// ```
/// use tpa::header::checksum::{checksum, Checksum};
/// let data = [1u8, 2, 3, 4, 5, 6, 7];
/// let mut c = Checksum::new();
/// c.add_bytes(&data[..3]);
/// c.add_bytes(&data[3..]);
/// assert_eq!(c.checksum(), checksum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Folded sum so far.
    sum: u16,
    /// Whether an odd number of bytes has been added so far.
    odd: bool,
}

impl Checksum {
    /// An empty accumulator.
    #[inline]
    pub const fn new() -> Self {
        Checksum { sum: 0, odd: false }
    }

    /// Adds the next piece of data.
    #[inline]
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        let s = sum(bytes);
        // A piece starting at an odd offset has its bytes in the other half
        // of every word: its sum is the byte-swapped one (RFC 1071, 2.B).
        let s = if self.odd { s.swap_bytes() } else { s };
        self.sum = combine(self.sum, s);
        self.odd ^= bytes.len() % 2 == 1;
    }

    /// Adds a partial sum (from [`sum`] or a pseudo-header function) of data
    /// with an even length, such as a pseudo-header.
    #[inline]
    pub fn add_sum(&mut self, partial: u16) {
        let s = if self.odd {
            partial.swap_bytes()
        } else {
            partial
        };
        self.sum = combine(self.sum, s);
    }

    /// The folded sum so far (not complemented).
    #[inline]
    pub fn sum(&self) -> u16 {
        self.sum
    }

    /// The checksum of everything added: the value to store in a header.
    #[inline]
    pub fn checksum(&self) -> u16 {
        !self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook definition, one big-endian word at a time.
    fn reference_sum(bytes: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in bytes.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    /// Every length through the scalar path's pieces (blocks, then one
    /// each of 32, 16, 8, 4, 2 and 1 bytes) and into the vector path, with
    /// bytes that carry on every word and bytes that differ at every offset.
    #[test]
    fn every_length_matches_reference() {
        let mixed: Vec<u8> = (0..WIDE_MIN + 130).map(|i| (i * 37 + 11) as u8).collect();
        let saturated = vec![0xff; WIDE_MIN + 130];
        for data in [&mixed, &saturated] {
            for len in 0..=data.len() {
                assert_eq!(sum(&data[..len]), reference_sum(&data[..len]), "{len}");
                assert_eq!(
                    sum(&data[1..len.max(1)]),
                    reference_sum(&data[1..len.max(1)])
                );
            }
        }
    }

    /// Every length 0..300 (scalar and vector paths), from even and odd
    /// offsets of both buffers: the copy is exact and the sum is
    /// [`sum_from`]'s.
    #[test]
    fn copy_and_sum_matches_sum_from_at_every_length_and_alignment() {
        let mixed: Vec<u8> = (0..320).map(|i| (i * 37 + 11) as u8).collect();
        let saturated = vec![0xff; 320];
        for data in [&mixed, &saturated] {
            for len in 0..300 {
                for (from, to) in [(0, 0), (1, 0), (0, 1), (1, 3), (3, 2)] {
                    let src = &data[from..from + len];
                    let mut dst = vec![0u8; len + to];
                    let got = copy_and_sum(&mut dst[to..], src);
                    assert_eq!(got, sum_from(0, src), "{len} {from} {to}");
                    assert_eq!(&dst[to..], src);
                }
            }
        }
    }

    /// The AVX2 kernels against the reference, as [`sum_wide`] and
    /// [`copy_and_sum_wide`] call them: every length from their shortest
    /// through several rounds of the 128-byte loop and every remainder,
    /// from even and odd offsets of both buffers, with a start, with
    /// bytes that differ at every offset, all ones and all zeros.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_match_reference_at_every_length_and_offset() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mixed: Vec<u8> = (0..700).map(|i| (i * 37 + 11) as u8).collect();
        let saturated = vec![0xff; 700];
        let zeros = vec![0; 700];
        for data in [&mixed, &saturated, &zeros] {
            for len in wide::AVX2_MIN..690 {
                for (from, to) in [(0, 0), (1, 0), (0, 1), (1, 3), (3, 2)] {
                    let src = &data[from..from + len];
                    let want = reference_sum(src);
                    // SAFETY: the CPU has AVX2 (checked above).
                    let got = unsafe { wide::sum_avx2(0, src) };
                    assert_eq!(got, want, "sum {len} {from}");
                    let start = 0xfedc_u16;
                    // SAFETY: as above.
                    let got = unsafe { wide::sum_avx2(u64::from(start.to_be()), src) };
                    let mut c = Checksum::new();
                    c.add_sum(start);
                    c.add_bytes(src);
                    assert_eq!(got, c.sum(), "start {len} {from}");
                    let mut dst = vec![0u8; len + to];
                    // SAFETY: as above.
                    let got = unsafe { wide::copy_sum_avx2(&mut dst[to..], src) };
                    assert_eq!(got, want, "copy {len} {from} {to}");
                    assert_eq!(&dst[to..], src);
                }
            }
        }
    }

    /// The AVX2 kernels over lengths about the ends of their runs (where
    /// the lanes are added up and a new run starts), with bytes that
    /// differ at every offset and all ones (the lanes' worst case).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_match_reference_across_runs() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let len = 2 * wide::RUN + 2 * wide::AVX2_MIN + 1;
        let mixed: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let saturated = vec![0xff; len];
        let mut dst = vec![0; len];
        for data in [&mixed, &saturated] {
            for n in [
                wide::RUN - 1,
                wide::RUN,
                wide::RUN + 1,
                wide::RUN + 64,
                wide::RUN + wide::AVX2_MIN - 1,
                wide::RUN + wide::AVX2_MIN,
                wide::RUN + wide::AVX2_MIN + 1,
                2 * wide::RUN + 2 * wide::AVX2_MIN,
            ] {
                for from in [0, 1] {
                    let src = &data[from..from + n];
                    let want = reference_sum(src);
                    // SAFETY: the CPU has AVX2 (checked above).
                    let got = unsafe { wide::sum_avx2(0, src) };
                    assert_eq!(got, want, "sum {n} {from}");
                    dst.fill(0);
                    // SAFETY: as above.
                    let got = unsafe { wide::copy_sum_avx2(&mut dst[..n], src) };
                    assert_eq!(got, want, "copy {n} {from}");
                    assert_eq!(&dst[..n], src);
                }
            }
        }
    }

    /// The loop for a CPU without AVX2, at every length from
    /// [`WIDE_MIN`] through several blocks and every tail, from even and
    /// odd offsets.
    #[test]
    fn baseline_wide_sum_matches_reference() {
        let mixed: Vec<u8> = (0..WIDE_MIN + 300).map(|i| (i * 37 + 11) as u8).collect();
        let saturated = vec![0xff; WIDE_MIN + 300];
        for data in [&mixed, &saturated] {
            for len in WIDE_MIN..WIDE_MIN + 290 {
                for from in [0, 1, 3] {
                    let src = &data[from..from + len];
                    assert_eq!(
                        sum_wide_baseline(0, src),
                        reference_sum(src),
                        "{len} {from}"
                    );
                }
            }
        }
    }

    /// Saturated words over more bytes than the AVX2 loop's lanes take
    /// in one run, from an odd offset and with an odd length.
    #[test]
    fn long_saturated_sum_matches_reference() {
        let data = vec![0xff; (1 << 21) + 64 * 3 + 6];
        assert_eq!(sum(&data[1..]), reference_sum(&data[1..]));
        assert_eq!(sum(&data), reference_sum(&data));
    }

    /// Saturated words over more blocks than the fused loop's lanes take
    /// at once (the worst case for their headroom).
    #[test]
    fn long_saturated_copy_and_sum_matches_sum() {
        let src = vec![0xff; (1 << 21) + 64 * 3 + 5];
        let mut dst = vec![0; src.len()];
        assert_eq!(copy_and_sum(&mut dst, &src), sum(&src));
        assert_eq!(dst, src);
    }

    #[test]
    fn sum_array_matches_sum() {
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(73) ^ 0xa5).collect();
        assert_eq!(sum_array::<0>(&[]), sum(&[]));
        assert_eq!(
            sum_array::<20>(data[..20].try_into().unwrap()),
            sum(&data[..20])
        );
        assert_eq!(
            sum_array::<63>(data[..63].try_into().unwrap()),
            sum(&data[..63])
        );
        assert_eq!(sum_array::<100>(data[..].try_into().unwrap()), sum(&data));
    }

    #[test]
    fn ipv4_header() {
        let mut ip = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&ip), 0);
        ip[10] = 0;
        ip[11] = 0;
        assert_eq!(checksum(&ip), 0xb861);
    }

    #[test]
    fn odd_length_pads_high_byte() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x1234 + 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn ipv6_pseudo_header_matches_bytes() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&70000u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(&src, &dst, 58, 70000), sum(&bytes));
    }

    #[test]
    fn ipv4_pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(192, 168, 0, 1);
        let dst = Ipv4Addr::new(10, 255, 3, 7);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[0, 6]);
        bytes.extend_from_slice(&1480u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(src, dst, 6, 1480), sum(&bytes));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // Miri runs each case thousands of times slower.
            cases: if cfg!(miri) { 16 } else { ProptestConfig::default().cases },
            ..ProptestConfig::default()
        })]

        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        /// Long data, from any offset of its buffer, takes the vector
        /// path: whole blocks on the lanes, the rest on the scalar tail.
        #[test]
        fn long_sum_matches_reference(
            data in proptest::collection::vec(any::<u8>(), WIDE_MIN..4 * WIDE_MIN),
            skip in 0usize..8,
        ) {
            let data = &data[skip.min(data.len())..];
            prop_assert_eq!(sum(data), reference_sum(data));
        }

        /// Words of all ones, the worst case for the lanes' headroom, sum
        /// as the reference does.
        #[test]
        fn saturated_words_match_reference(len in WIDE_MIN..8 * WIDE_MIN, fill in 0xf0u8..=0xff) {
            let data = vec![fill; len];
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        /// A start folded in with the bytes is the same number as the two
        /// added apart (with a nonzero start, neither comes out as 0, the
        /// other zero than 0xffff).
        #[test]
        fn sum_from_matches_a_start_then_the_bytes(
            start in 1..=u16::MAX,
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut c = Checksum::new();
            c.add_sum(start);
            c.add_bytes(&data);
            prop_assert_eq!(sum_from(start, &data), c.sum());
        }

        #[test]
        fn sum_segment_v4_matches_the_pseudo_header_then_the_bytes(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            protocol in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let pseudo = pseudo_header_v4(src, dst, protocol, data.len() as u16);
            prop_assert_eq!(
                sum_segment_v4(src, dst, protocol, &data),
                sum_from(pseudo, &data)
            );
        }

        /// A segment cut anywhere into a head and a rest sums as it does
        /// whole, short or long, the head even or odd.
        #[test]
        fn sum_segment_v4_split_matches_the_whole_segment(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cut in any::<prop::sample::Index>(),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let (head, rest) = data.split_at(cut.index(data.len() + 1));
            prop_assert_eq!(
                sum_segment_v4_split(src, dst, 6, head, rest),
                sum_segment_v4(src, dst, 6, &data)
            );
        }

        /// Long data from any offset: the copy is exact and the sum is
        /// [`sum`]'s.
        #[test]
        fn long_copy_and_sum_matches_sum(
            data in proptest::collection::vec(any::<u8>(), 0..4 * WIDE_MIN),
            skip in 0usize..8,
        ) {
            let src = &data[skip.min(data.len())..];
            let mut dst = vec![0; src.len()];
            prop_assert_eq!(copy_and_sum(&mut dst, src), sum(src));
            prop_assert_eq!(&dst[..], src);
        }

        /// The AVX2 kernels from any offset, with any start: the sum is
        /// the reference's, the copy exact.
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn avx2_kernels_match_reference(
            data in proptest::collection::vec(any::<u8>(), wide::AVX2_MIN + 8..4 * WIDE_MIN),
            skip in 0usize..8,
            start in any::<u16>(),
        ) {
            if std::arch::is_x86_feature_detected!("avx2") {
                let src = &data[skip..];
                let mut c = Checksum::new();
                c.add_sum(start);
                c.add_bytes(src);
                // SAFETY: the CPU has AVX2 (checked above).
                let got = unsafe { wide::sum_avx2(u64::from(start.to_be()), src) };
                prop_assert_eq!(got, c.sum());
                let mut dst = vec![0; src.len()];
                // SAFETY: as above.
                let got = unsafe { wide::copy_sum_avx2(&mut dst, src) };
                prop_assert_eq!(got, reference_sum(src));
                prop_assert_eq!(&dst[..], src);
            }
        }

        #[test]
        fn fold_matches_repeated_halving(acc in any::<u64>()) {
            let mut slow = acc;
            while slow > 0xffff {
                slow = (slow & 0xffff) + (slow >> 16);
            }
            prop_assert_eq!(fold(acc), slow as u16);
        }

        #[test]
        fn pieces_match_whole(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut c = Checksum::new();
            let mut at = 0;
            for p in points.into_iter().chain([data.len()]) {
                c.add_bytes(&data[at..p]);
                at = p;
            }
            prop_assert_eq!(c.checksum(), checksum(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            words in proptest::collection::vec(any::<u16>(), 1..40),
            at in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let i = at.index(words.len());
            let before = checksum(&bytes);
            let mut after = bytes.clone();
            after[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
            // Checksums equal modulo the 0x0000/0xffff ambiguity of one's complement.
            let patched = update(before, words[i], new);
            let fresh = checksum(&after);
            prop_assert!(patched == fresh || (patched, fresh) == (0xffff, 0) || (patched, fresh) == (0, 0xffff),
                "patched {patched:#06x} fresh {fresh:#06x}");
        }

        #[test]
        fn incremental_update_u32_matches_recompute(
            words in proptest::collection::vec(any::<u16>(), 2..40),
            at in any::<prop::sample::Index>(),
            new in any::<u32>(),
        ) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let i = at.index(words.len() - 1);
            let old = u32::from_be_bytes([bytes[2 * i], bytes[2 * i + 1], bytes[2 * i + 2], bytes[2 * i + 3]]);
            let mut after = bytes.clone();
            after[2 * i..2 * i + 4].copy_from_slice(&new.to_be_bytes());
            let patched = update_u32(checksum(&bytes), old, new);
            let fresh = checksum(&after);
            prop_assert!(patched == fresh || (patched, fresh) == (0xffff, 0) || (patched, fresh) == (0, 0xffff),
                "patched {patched:#06x} fresh {fresh:#06x}");
        }
    }
}
