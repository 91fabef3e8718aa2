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

/// Copies `src` into `dst` (of the same length, a multiple of [`BLOCK`])
/// and returns [`sum_blocks`] of the bytes (the same sum modulo
/// 2^16 - 1, to fold), in one pass on AVX2: each block is added into the
/// lanes as it is stored, so the sum costs next to nothing beside the copy
/// (the later pass over the copy is what it saves). Elsewhere, the copy
/// and then [`sum_blocks`].
#[inline]
pub(super) fn copy_sum_blocks(dst: &mut [u8], src: &[u8]) -> u64 {
    assert_eq!(dst.len(), src.len());
    debug_assert_eq!(src.len() % BLOCK, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let step = COPY_MAX_BLOCKS * BLOCK;
        let mut acc = 0;
        for (d, s) in dst.chunks_mut(step).zip(src.chunks(step)) {
            // SAFETY: the CPU has AVX2 (checked just above), the only
            // requirement of calling a function compiled for it.
            acc = super::add_carry(acc, unsafe { copy_halves_avx2(d, s) });
        }
        return acc;
    }
    dst.copy_from_slice(src);
    sum_blocks(src)
}

/// At most this many blocks go through [`copy_halves_avx2`]'s 32-bit
/// lanes, each of which gains less than 2^16 per block: no carry lost.
#[cfg(target_arch = "x86_64")]
const COPY_MAX_BLOCKS: usize = 1 << 15;

/// Copies the 64-byte blocks of `src` (at most [`COPY_MAX_BLOCKS`]) into
/// `dst` 32 bytes at a time, each 32 bytes also split into the low and
/// high 16-bit halves of their eight 32-bit words and added into 32-bit
/// lanes (a 32-bit word is its two halves modulo 2^16 - 1): the loads the
/// copy makes anyway feed the sum. Written with the intrinsics: as plain
/// slices the compiler turns the copy back into a `memcpy` before the loop
/// and sums in a second pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_halves_avx2(dst: &mut [u8], src: &[u8]) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_and_si256, _mm256_castsi256_si128,
        _mm256_cvtepu32_epi64, _mm256_extract_epi64, _mm256_extracti128_si256, _mm256_loadu_si256,
        _mm256_set1_epi32, _mm256_setzero_si256, _mm256_srli_epi32, _mm256_storeu_si256,
    };
    debug_assert!(src.len() <= COPY_MAX_BLOCKS * BLOCK);
    let low = _mm256_set1_epi32(0xffff);
    let (mut lo0, mut hi0, mut lo1, mut hi1) = (
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
        _mm256_setzero_si256(),
    );
    for (to, block) in dst.chunks_exact_mut(BLOCK).zip(src.chunks_exact(BLOCK)) {
        let (from, to) = (
            block.as_ptr().cast::<__m256i>(),
            to.as_mut_ptr().cast::<__m256i>(),
        );
        // SAFETY: `block` and `to` are 64 bytes each: both 32-byte loads
        // and both 32-byte stores are in bounds; the unaligned forms need
        // no alignment.
        let (v, w) = unsafe {
            let (v, w) = (_mm256_loadu_si256(from), _mm256_loadu_si256(from.add(1)));
            _mm256_storeu_si256(to, v);
            _mm256_storeu_si256(to.add(1), w);
            (v, w)
        };
        lo0 = _mm256_add_epi32(lo0, _mm256_and_si256(v, low));
        hi0 = _mm256_add_epi32(hi0, _mm256_srli_epi32::<16>(v));
        lo1 = _mm256_add_epi32(lo1, _mm256_and_si256(w, low));
        hi1 = _mm256_add_epi32(hi1, _mm256_srli_epi32::<16>(w));
    }
    // Each lane is below 2^31: two added stay below 2^32. Then widened to
    // 64 bits, added, and the four 64-bit lanes added.
    let widen = |v: __m256i| {
        _mm256_add_epi64(
            _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v)),
            _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(v)),
        )
    };
    let t = _mm256_add_epi64(
        widen(_mm256_add_epi32(lo0, lo1)),
        widen(_mm256_add_epi32(hi0, hi1)),
    );
    [
        _mm256_extract_epi64::<0>(t),
        _mm256_extract_epi64::<1>(t),
        _mm256_extract_epi64::<2>(t),
        _mm256_extract_epi64::<3>(t),
    ]
    .iter()
    .map(|&l| l as u64)
    .sum()
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
