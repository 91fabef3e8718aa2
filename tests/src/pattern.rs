//! The byte pattern of the TCP interop tests, on tpa's side: tperf's
//! (apps/tperf/src/pattern.rs), which tests/src/tcp_peer.py computes on the
//! kernel's side. Byte `i` of the stream of seed `s` is byte `i % 8`
//! (little-endian) of `mix(s + (i / 8)·γ)`, `mix` being SplitMix64's output
//! function and γ its increment; either end computes any byte from its
//! offset. (Written out here: tpa-tperf's tests depend on tpa-tests, not
//! the other way round.)

/// SplitMix64's increment (2^64 / φ).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The endless stream of one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream of `seed`.
    pub const fn new(seed: u64) -> Self {
        Pattern { seed }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        mix(self.seed.wrapping_add(index.wrapping_mul(GAMMA))).to_le_bytes()
    }

    /// The byte at `offset`.
    pub fn byte_at(&self, offset: u64) -> u8 {
        self.word(offset / 8)[(offset % 8) as usize]
    }

    /// Writes the bytes at `offset .. offset + out.len()` into `out`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let mut at = offset;
        let mut rest = out;
        while !rest.is_empty() {
            let word = self.word(at / 8);
            let from = (at % 8) as usize;
            let n = usize::min(8 - from, rest.len());
            rest[..n].copy_from_slice(&word[from..from + n]);
            rest = &mut rest[n..];
            at += n as u64;
        }
    }

    /// The offset of the first byte of `data` (which starts at stream
    /// offset `offset`) that is not the pattern's, if any.
    pub fn first_mismatch(&self, offset: u64, data: &[u8]) -> Option<u64> {
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let word = self.word(at / 8);
            let from = (at % 8) as usize;
            let n = usize::min(8 - from, rest.len());
            if rest[..n] != word[from..from + n] {
                let i = (0..n).find(|&i| rest[i] != word[from + i]).unwrap_or(0);
                return Some(at + i as u64);
            }
            rest = &rest[n..];
            at += n as u64;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_check_agree_with_byte_at_at_any_offset() {
        let p = Pattern::new(7);
        for offset in 0..20u64 {
            for len in 0..30usize {
                let mut out = vec![0; len];
                p.fill(offset, &mut out);
                for (i, &b) in out.iter().enumerate() {
                    assert_eq!(b, p.byte_at(offset + i as u64));
                }
                assert_eq!(p.first_mismatch(offset, &out), None);
                if len > 0 {
                    out[len / 2] ^= 1;
                    assert_eq!(
                        p.first_mismatch(offset, &out),
                        Some(offset + (len / 2) as u64)
                    );
                }
            }
        }
    }
}
