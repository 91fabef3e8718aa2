//! The bulk of a long checksum: 64-byte blocks summed as 32-bit words into
//! sixteen 64-bit lanes, on the widest vector unit worth using.
//!
//! A 32-bit word added into a 64-bit lane cannot carry out of it for a
//! long while (see [`MAX_BLOCKS`]), so the lanes need no end-around carry
//! until they are added together and folded; and the one's-complement sum
//! of 16-bit words is the same whether the data is taken 16, 32 or 64 bits
//! at a time (2^16 - 1 divides 2^32 - 1 and 2^64 - 1; RFC 1071, 2.C).
//! Without carries between words the additions are independent, which a
//! vector unit does many at a time: with AVX2 (detected at run time) the
//! loop compiles to one zero-extending load and one add per 16 bytes, in
//! four independent accumulators, where the scalar loop this replaces on
//! long data chains every 8-byte add through the carry flag. Elsewhere the
//! same loop is compiled for the baseline (SSE2 on x86-64). AVX-512 is not
//! used: on the machine of doc/benchmarks.md its 512-bit loop made the
//! in-memory bulk benchmark over twice as slow.

/// Bytes summed per block: sixteen 32-bit words, one per lane.
pub(super) const BLOCK: usize = 64;

/// At most this many blocks (8 GiB) go into the lanes before they are
/// folded: each lane then holds less than 2^59 and all sixteen add up to
/// less than 2^63, with no carry to lose.
const MAX_BLOCKS: usize = 1 << 27;

/// The one's-complement sum, as a 64-bit accumulator (fold it to 16 bits),
/// of `bytes` taken as native-endian words; `bytes.len()` is a multiple of
/// [`BLOCK`].
#[inline]
pub(super) fn sum_blocks(bytes: &[u8]) -> u64 {
    debug_assert_eq!(bytes.len() % BLOCK, 0);
    let mut acc = 0;
    for part in bytes.chunks(MAX_BLOCKS.saturating_mul(BLOCK)) {
        acc = super::add_carry(acc, sum_part(part));
    }
    acc
}

/// [`sum_blocks`] of at most [`MAX_BLOCKS`] blocks, on the widest unit.
#[inline]
fn sum_part(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the only
        // requirement of calling a function compiled for it.
        return unsafe { lanes_avx2(bytes) };
    }
    lanes(bytes)
}

/// The loop of [`sum_part`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_avx2(bytes: &[u8]) -> u64 {
    lanes(bytes)
}

/// Sums each block's sixteen 32-bit words into sixteen lanes, then the
/// lanes together (plain additions: see [`MAX_BLOCKS`]). Inlined into its
/// callers so each is vectorized for its own target features.
#[inline(always)]
fn lanes(bytes: &[u8]) -> u64 {
    let mut lanes = [0u64; BLOCK / 4];
    for block in bytes.chunks_exact(BLOCK) {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(4)) {
            *lane += u64::from(u32::from_ne_bytes(word.try_into().expect("4 bytes")));
        }
    }
    lanes.iter().sum()
}
