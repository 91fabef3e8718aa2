//! The bytes of a test stream, and the check of every byte received.
//!
//! Each direction of each connection carries its own endless stream: byte
//! `i` of the stream with seed `s` is byte `i % 8` (little-endian) of the
//! 64-bit word `mix(s + (i / 8) · γ)`, where `mix` is SplitMix64's output
//! function and γ its increment. Either side computes any byte from its
//! offset alone, eight at a time, so writing and checking cost about as
//! much as a copy, and a byte that is wrong, missing or there twice shows
//! up at the offset where the stream first differs from the pattern
//! (a shifted stream matches by chance with probability 1/256 per byte).

/// SplitMix64's increment (2^64 / φ).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijection of `u64` that mixes every
/// input bit into every output bit.
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one direction of one connection: `run` identifies the
/// client's run, `conn` the connection within it, `to_server` the
/// direction.
pub const fn stream_seed(run: u64, conn: u64, to_server: bool) -> u64 {
    let dir = if to_server { 1 } else { 2 };
    mix(run ^ mix(conn.wrapping_mul(4).wrapping_add(dir).wrapping_mul(GAMMA)))
}

/// The endless byte stream of one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream of `seed`.
    pub const fn new(seed: u64) -> Self {
        Pattern { seed }
    }

    /// The eight bytes at offsets `8·index .. 8·index + 8`, as a
    /// little-endian word.
    #[inline]
    pub fn word(&self, index: u64) -> u64 {
        mix(self.seed.wrapping_add(index.wrapping_mul(GAMMA)))
    }

    /// The byte at `offset`.
    pub fn byte_at(&self, offset: u64) -> u8 {
        self.word(offset / 8).to_le_bytes()[(offset % 8) as usize]
    }

    /// Writes the bytes at `offset .. offset + out.len()` into `out`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let head = usize::min(((8 - offset % 8) % 8) as usize, out.len());
        for (i, b) in out[..head].iter_mut().enumerate() {
            *b = self.byte_at(offset + i as u64);
        }
        let len = out.len() as u64;
        let first = (offset + head as u64) / 8;
        let mut words = out[head..].chunks_exact_mut(8);
        for (index, chunk) in (first..).zip(&mut words) {
            chunk.copy_from_slice(&self.word(index).to_le_bytes());
        }
        let tail = words.into_remainder();
        let tail_start = offset + len - tail.len() as u64;
        for (i, b) in tail.iter_mut().enumerate() {
            *b = self.byte_at(tail_start + i as u64);
        }
    }
}

/// A received byte that is not the pattern's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Its offset in the stream (0 = the first byte of data).
    pub offset: u64,
    /// The pattern's byte there.
    pub expected: u8,
    /// The byte received.
    pub got: u8,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "byte at offset {} is {:#04x}, expected {:#04x}",
            self.offset, self.got, self.expected
        )
    }
}

/// Checks a received stream against its pattern, in pieces of any size.
#[derive(Debug, Clone)]
pub struct Checker {
    pattern: Pattern,
    offset: u64,
}

impl Checker {
    /// A checker of the stream of `seed`, expecting its first byte.
    pub const fn new(seed: u64) -> Self {
        Checker {
            pattern: Pattern::new(seed),
            offset: 0,
        }
    }

    /// The offset of the next byte expected (= bytes checked so far).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Checks the next `data.len()` bytes of the stream. On the first
    /// byte that differs, stops there (the offset stays at that byte) and
    /// returns where it is and what it should have been.
    pub fn check(&mut self, data: &[u8]) -> Result<(), Mismatch> {
        let head = usize::min(((8 - self.offset % 8) % 8) as usize, data.len());
        self.check_bytes(&data[..head])?;
        let mut words = data[head..].chunks_exact(8);
        for chunk in &mut words {
            let got = u64::from_le_bytes(chunk.try_into().expect("chunk of 8"));
            if got != self.pattern.word(self.offset / 8) {
                return self.check_bytes(chunk);
            }
            self.offset += 8;
        }
        self.check_bytes(words.remainder())
    }

    fn check_bytes(&mut self, data: &[u8]) -> Result<(), Mismatch> {
        for &got in data {
            let expected = self.pattern.byte_at(self.offset);
            if got != expected {
                return Err(Mismatch {
                    offset: self.offset,
                    expected,
                    got,
                });
            }
            self.offset += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u64 = 0x7470_6572_6600_0001;

    fn stream(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Pattern::new(seed).fill(0, &mut v);
        v
    }

    #[test]
    fn fill_at_any_offset_and_length_agrees_with_byte_at() {
        let p = Pattern::new(SEED);
        for offset in 0..20u64 {
            for len in 0..40 {
                let mut out = vec![0; len];
                p.fill(offset, &mut out);
                for (i, &b) in out.iter().enumerate() {
                    assert_eq!(b, p.byte_at(offset + i as u64), "offset {offset} len {len}");
                }
            }
        }
    }

    #[test]
    fn streams_of_different_seeds_differ() {
        let a = stream(stream_seed(1, 0, true), 64);
        let b = stream(stream_seed(1, 0, false), 64);
        let c = stream(stream_seed(1, 1, true), 64);
        let d = stream(stream_seed(2, 0, true), 64);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn an_intact_stream_in_pieces_of_any_size_passes() {
        let data = stream(SEED, 10_000);
        for piece in [1, 3, 7, 8, 9, 64, 1000, 4096] {
            let mut c = Checker::new(SEED);
            for chunk in data.chunks(piece) {
                assert_eq!(c.check(chunk), Ok(()), "pieces of {piece}");
            }
            assert_eq!(c.offset(), 10_000);
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_at_its_offset() {
        for at in [0usize, 1, 7, 8, 4095, 9_999] {
            let mut data = stream(SEED, 10_000);
            data[at] ^= 0x10;
            let mut c = Checker::new(SEED);
            let err = data.chunks(1500).try_for_each(|ch| c.check(ch));
            let expected = Pattern::new(SEED).byte_at(at as u64);
            assert_eq!(
                err,
                Err(Mismatch {
                    offset: at as u64,
                    expected,
                    got: expected ^ 0x10,
                })
            );
            assert_eq!(c.offset(), at as u64, "the checker stops at the bad byte");
        }
    }

    #[test]
    fn a_dropped_byte_is_caught_where_the_stream_shifts() {
        let p = Pattern::new(SEED);
        for at in [0usize, 5, 8, 1234, 5000] {
            // The seed is fixed: the pattern's bytes at `at` and `at + 1`
            // differ, so the shift shows at `at` itself.
            assert_ne!(p.byte_at(at as u64), p.byte_at(at as u64 + 1));
            let mut data = stream(SEED, 6000);
            data.remove(at);
            let mut c = Checker::new(SEED);
            let err = data.chunks(1000).try_for_each(|ch| c.check(ch));
            assert_eq!(
                err.map_err(|m| m.offset),
                Err(at as u64),
                "byte {at} dropped"
            );
        }
    }

    #[test]
    fn a_duplicated_byte_is_caught_at_the_copy() {
        let p = Pattern::new(SEED);
        for at in [0usize, 9, 100, 4095] {
            assert_ne!(p.byte_at(at as u64), p.byte_at(at as u64 + 1));
            let mut data = stream(SEED, 5000);
            data.insert(at + 1, data[at]);
            let mut c = Checker::new(SEED);
            let err = data.chunks(777).try_for_each(|ch| c.check(ch));
            assert_eq!(
                err,
                Err(Mismatch {
                    offset: at as u64 + 1,
                    expected: p.byte_at(at as u64 + 1),
                    got: p.byte_at(at as u64),
                }),
                "byte {at} twice"
            );
        }
    }

    #[test]
    fn a_stream_of_another_connection_is_caught_at_once() {
        let data = stream(stream_seed(9, 1, true), 64);
        let mut c = Checker::new(stream_seed(9, 2, true));
        let err = c.check(&data).unwrap_err();
        assert!(err.offset < 8, "caught in the first word: {err}");
    }
}
