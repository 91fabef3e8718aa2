//! What the client sends: a sequence number, then bytes derived from it and
//! from their position, so that every byte of an echo can be checked and a
//! datagram that comes back with another one's bytes is caught.
//!
//! ```
//! use tpa_echo::payload;
//! let mut d = vec![0; 64];
//! payload::fill(7, &mut d);
//! assert_eq!(payload::check(&d, 64), Ok(7));
//! d[40] ^= 1;
//! assert_eq!(payload::check(&d, 64), Err(payload::Corrupt::Byte { seq: 7, at: 40 }));
//! ```

use core::fmt;

/// The smallest datagram the client sends: the sequence number alone.
pub const MIN_SIZE: usize = 8;

/// Why an echo is not what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    /// It has another length than every datagram sent.
    Length {
        /// Bytes received.
        got: usize,
        /// Bytes sent.
        want: usize,
    },
    /// Its sequence number was never sent.
    Sequence(u64),
    /// Byte `at` differs from what datagram `seq` carried.
    Byte {
        /// The datagram's sequence number.
        seq: u64,
        /// The first byte that differs.
        at: usize,
    },
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corrupt::Length { got, want } => write!(f, "{got} bytes instead of {want}"),
            Corrupt::Sequence(seq) => write!(f, "sequence number {seq} was never sent"),
            Corrupt::Byte { seq, at } => write!(f, "datagram {seq}: byte {at} differs"),
        }
    }
}

/// The 8 bytes of chunk `chunk` (past the sequence number) of datagram
/// `seq`: SplitMix64 of the two, a bijection of `seq` for each chunk, so
/// that another sequence number changes every whole chunk.
#[inline]
fn word(seq: u64, chunk: usize) -> [u8; 8] {
    let mut z = seq.wrapping_add((chunk as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_be_bytes()
}

/// Writes datagram `seq` into `out` (all of it; `out` holds at least
/// [`MIN_SIZE`] bytes, shorter is left as it is).
pub fn fill(seq: u64, out: &mut [u8]) {
    let Some((head, rest)) = out.split_first_chunk_mut::<MIN_SIZE>() else {
        return;
    };
    *head = seq.to_be_bytes();
    for (i, chunk) in rest.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&word(seq, i)[..chunk.len()]);
    }
}

/// Checks that `data` is a whole datagram of `size` bytes as [`fill`] wrote
/// it; returns its sequence number.
pub fn check(data: &[u8], size: usize) -> Result<u64, Corrupt> {
    let wrong_length = Corrupt::Length {
        got: data.len(),
        want: size,
    };
    if data.len() != size {
        return Err(wrong_length);
    }
    let Some((head, rest)) = data.split_first_chunk::<MIN_SIZE>() else {
        return Err(wrong_length);
    };
    let seq = u64::from_be_bytes(*head);
    for (i, chunk) in rest.chunks(8).enumerate() {
        let want = word(seq, i);
        if let Some(j) = chunk.iter().zip(want).position(|(a, b)| *a != b) {
            return Err(Corrupt::Byte {
                seq,
                at: MIN_SIZE + 8 * i + j,
            });
        }
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_and_the_length_are_checked() {
        // From 16 bytes on, a changed sequence number changes a whole chunk
        // too; below, the session catches it (a number never sent).
        for size in [16, 17, 64, 1472] {
            let mut d = vec![0; size];
            fill(123_456, &mut d);
            assert_eq!(check(&d, size), Ok(123_456), "size {size}");
            for at in 0..size {
                let mut bad = d.clone();
                bad[at] ^= 0x40;
                assert!(check(&bad, size).is_err(), "size {size}: byte {at}");
            }
            assert_eq!(
                check(&d[..size - 1], size),
                Err(Corrupt::Length {
                    got: size - 1,
                    want: size
                })
            );
        }
    }

    #[test]
    fn another_datagrams_bytes_are_caught() {
        let (mut a, mut b) = (vec![0; 64], vec![0; 64]);
        fill(1, &mut a);
        fill(2, &mut b);
        assert_ne!(a[8..], b[8..]);
        a[..8].copy_from_slice(&b[..8]);
        assert!(matches!(check(&a, 64), Err(Corrupt::Byte { seq: 2, .. })));
    }

    #[test]
    fn a_runt_is_a_wrong_length_not_a_panic() {
        assert_eq!(
            check(&[1, 2, 3], 3),
            Err(Corrupt::Length { got: 3, want: 3 })
        );
        let mut short = [0u8; 3];
        fill(1, &mut short);
        assert_eq!(short, [0; 3]);
    }
}
