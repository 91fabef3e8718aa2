//! The bulk of a long checksum, on the vector unit: [`sum_avx2`] and
//! [`copy_sum_avx2`] with AVX2 (detected at run time by the caller), and
//! [`sum_blocks`] elsewhere.
//!
//! With AVX2 each 32 bytes take three instructions: the sixteen 16-bit
//! words have their top bit flipped (`vpxor`, as a memory operand the
//! load too), which turns each unsigned word `u` into the signed `u -
//! 2^15`, and `vpmaddwd` against ones adds them pairwise into eight
//! 32-bit lanes (`vpaddd`): every 32-bit result is the pair's sum less
//! 2^16, with no carry to lose while the lanes have headroom (see
//! [`RUN`]). The lanes, added together as 64-bit numbers, plus 2^16 for
//! each pair, are the exact sum of the words, which folds to the
//! one's-complement sum (2^16 - 1 divides every power of 2^16 less one:
//! RFC 1071, 2.C). The copy stores the 32 bytes it loads, so the sum costs
//! two instructions beside it. The loop takes 256 bytes a turn, then
//! 128, 64 and 32 more if left; the last 0 to 31 bytes are the 32-byte
//! load that ends at the data's last even offset, its bytes before them
//! masked to zero, and an odd last byte is added on its own.

//! Without AVX2, 64-byte blocks are summed as 32-bit words into sixteen
//! 64-bit lanes, a plain Rust loop the compiler vectorizes for the
//! baseline (SSE2 on x86-64), the last bytes on the caller's scalar loop.
//! AVX-512 is not used: on the machine of doc/benchmarks.md a 512-bit
//! loop made the in-memory bulk benchmark over twice as slow.

/// Bytes summed per block by [`sum_blocks`]: sixteen 32-bit words, one
/// per lane.
pub(super) const BLOCK: usize = 64;

/// At most this many blocks (8 GiB) go into [`sum_blocks`]' lanes before
/// they are folded: each lane then holds less than 2^59 and all sixteen
/// add up to less than 2^63, with no carry to lose.
const MAX_BLOCKS: usize = 1 << 27;

/// The one's-complement sum, as a 64-bit accumulator (fold it to 16 bits),
/// of `bytes` taken as native-endian words; `bytes.len()` is a multiple of
/// [`BLOCK`]. The loop for a CPU without AVX2.
#[inline]
pub(super) fn sum_blocks(bytes: &[u8]) -> u64 {
    debug_assert_eq!(bytes.len() % BLOCK, 0);
    let mut acc = 0;
    for part in bytes.chunks(MAX_BLOCKS.saturating_mul(BLOCK)) {
        acc = super::add_carry(acc, lanes(part));
    }
    acc
}

/// Sums each block's sixteen 32-bit words into sixteen lanes, then the
/// lanes together (plain additions: see [`MAX_BLOCKS`]).
#[inline]
fn lanes(bytes: &[u8]) -> u64 {
    let mut lanes = [0u64; BLOCK / 4];
    for block in bytes.chunks_exact(BLOCK) {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(4)) {
            *lane += u64::from(u32::from_ne_bytes(word.try_into().expect("4 bytes")));
        }
    }
    lanes.iter().sum()
}

/// The shortest data [`sum_avx2`] and [`copy_sum_avx2`] take (their
/// masked last load needs 32 bytes; shorter data does not pay for the
/// vectors' setup and reduction).
#[cfg(target_arch = "x86_64")]
pub(super) const AVX2_MIN: usize = 129;

/// Bytes summed into the 32-bit lanes before they are added up (a last
/// piece up to [`AVX2_MIN`] longer): at most `RUN / 32 + 5` vectors (the
/// last, masked, included), each of which moves a lane by at most
/// 2^16, keep every lane's total within 2^30 + 2^20 of zero, so the four
/// accumulators added together still fit in 32 bits. Even.
#[cfg(target_arch = "x86_64")]
pub(super) const RUN: usize = 1 << 19;

/// The one's-complement sum of `acc` (a native-endian partial sum) and
/// `bytes` (at least [`AVX2_MIN`] long) taken as native-endian words,
/// folded and swapped back: what `sum_from` gives for the start `acc`
/// swapped in. Folded here, so that its caller's call is its last.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn sum_avx2(acc: u64, bytes: &[u8]) -> u16 {
    if bytes.len() > RUN + AVX2_MIN {
        return sum_runs(acc, bytes);
    }
    u16::from_be(super::fold(super::add_carry(
        acc,
        run::<false>(&mut [], bytes),
    )))
}

/// Copies `src` into `dst` (of the same length, at least [`AVX2_MIN`])
/// and returns [`sum_avx2`] of the bytes from 0, in one pass: each 32
/// bytes are added into the lanes as they are stored, so the sum costs
/// next to nothing beside the copy. Written with the intrinsics: as plain
/// slices the compiler turns the copy back into a `memcpy` before the
/// loop and sums in a second pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn copy_sum_avx2(dst: &mut [u8], src: &[u8]) -> u16 {
    if src.len() > RUN + AVX2_MIN {
        return copy_sum_runs(dst, src);
    }
    u16::from_be(super::fold(run::<true>(dst, src)))
}

/// [`sum_avx2`] of more than [`RUN`] + [`AVX2_MIN`] bytes: [`RUN`] bytes
/// at a time (even: each piece starts on a word, and their sums add up),
/// the last piece what is left.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[cold]
#[inline(never)]
fn sum_runs(acc: u64, bytes: &[u8]) -> u16 {
    let (first, mut rest) = bytes.split_at(RUN);
    let mut sum = sum_avx2(acc, first);
    while rest.len() > RUN + AVX2_MIN {
        let (piece, more) = rest.split_at(RUN);
        sum = super::combine(sum, sum_avx2(0, piece));
        rest = more;
    }
    super::combine(sum, sum_avx2(0, rest))
}

/// [`copy_sum_avx2`] of more than [`RUN`] + [`AVX2_MIN`] bytes, in pieces
/// as [`sum_runs`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[cold]
#[inline(never)]
fn copy_sum_runs(dst: &mut [u8], src: &[u8]) -> u16 {
    assert_eq!(dst.len(), src.len(), "copy lengths differ");
    let mut sum = 0;
    let (mut dst, mut src) = (dst, src);
    while src.len() > RUN + AVX2_MIN {
        let (d, more_dst) = dst.split_at_mut(RUN);
        let (s, more_src) = src.split_at(RUN);
        sum = super::combine(sum, copy_sum_avx2(d, s));
        (dst, src) = (more_dst, more_src);
    }
    super::combine(sum, copy_sum_avx2(dst, src))
}

/// The exact sum of the native-endian words of `src` (from [`AVX2_MIN`]
/// to [`RUN`] + [`AVX2_MIN`] bytes), copied into `dst` when `COPY` (`dst`
/// is not used otherwise).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn run<const COPY: bool>(dst: &mut [u8], src: &[u8]) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_and_si256, _mm256_castsi256_si128,
        _mm256_cvtepi32_epi64, _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_set1_epi16, _mm256_setzero_si256, _mm256_storeu_si256, _mm256_xor_si256,
        _mm_add_epi64, _mm_cvtsi128_si64, _mm_unpackhi_epi64,
    };
    /// 32 zero bytes, then 32 of 0xff: the 32 from `k` on mask the 32
    /// bytes before an offset to their last `k`.
    static TAIL_MASK: [u8; 64] = {
        let mut m = [0; 64];
        let mut i = 32;
        while i < 64 {
            m[i] = 0xff;
            i += 1;
        }
        m
    };
    let n = src.len();
    assert!(n >= AVX2_MIN, "too short for the vector loop");
    // Not `assert_eq!`: its message's arguments would live on the stack.
    assert!(!COPY || dst.len() == n, "copy lengths differ");
    debug_assert!(n <= RUN + AVX2_MIN);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let (flip, ones) = (_mm256_set1_epi16(i16::MIN), _mm256_set1_epi16(1));
    // The words of 32 bytes, top bits flipped, added in pairs.
    let pairs = |v: __m256i| _mm256_madd_epi16(_mm256_xor_si256(v, flip), ones);
    // The 32 bytes at offset `o` of `src`, and into `dst` when `COPY`.
    // Every call below passes an `o` with `o + 32 <= n`.
    let load = |o: usize| {
        debug_assert!(o + 32 <= n);
        // SAFETY: the 32 bytes from `o` are in `src`; the unaligned load
        // needs no alignment.
        unsafe { _mm256_loadu_si256(s.add(o).cast()) }
    };
    let store = |o: usize, v: __m256i| {
        if COPY {
            debug_assert!(o + 32 <= n);
            // SAFETY: the 32 bytes from `o` are in `dst`, as long as `src`
            // (asserted above); the unaligned store needs no alignment.
            unsafe { _mm256_storeu_si256(d.add(o).cast(), v) }
        }
    };
    let mut lanes = [_mm256_setzero_si256(); 4];
    let mut at = 0;
    // Two rounds of 128 bytes a turn (the loop's own instructions halved).
    // All loads, then the stores: with each store right behind its load
    // the compiler made a `memcpy` call of the copy ahead of the loop (and
    // this loop a second pass over the bytes).
    for _ in 0..n / 256 {
        let v: [__m256i; 8] = std::array::from_fn(|i| load(at + 32 * i));
        for (i, v) in v.into_iter().enumerate() {
            store(at + 32 * i, v);
            lanes[i % 4] = _mm256_add_epi32(lanes[i % 4], pairs(v));
        }
        at += 256;
    }
    // The words left (0 to 255 bytes): 128, 64 and 32 of them if there
    // are, the last 0 to 31 bytes the 32 before the last even offset
    // (copied again: the same bytes), all but the words from `at` masked
    // off; an odd last byte is apart (the high byte of a big-endian word
    // padded with zero: native-endian, the low byte).
    let even = n & !1;
    let mut vectors = 8 * (n / 256) + 1;
    if even - at >= 128 {
        let v: [__m256i; 4] = std::array::from_fn(|i| load(at + 32 * i));
        for (i, (lane, v)) in lanes.iter_mut().zip(v).enumerate() {
            store(at + 32 * i, v);
            *lane = _mm256_add_epi32(*lane, pairs(v));
        }
        at += 128;
        vectors += 4;
    }
    if even - at >= 64 {
        let v: [__m256i; 2] = std::array::from_fn(|i| load(at + 32 * i));
        for (i, (lane, v)) in lanes.iter_mut().zip(v).enumerate() {
            store(at + 32 * i, v);
            *lane = _mm256_add_epi32(*lane, pairs(v));
        }
        at += 64;
        vectors += 2;
    }
    if even - at >= 32 {
        let v = load(at);
        store(at, v);
        lanes[2] = _mm256_add_epi32(lanes[2], pairs(v));
        at += 32;
        vectors += 1;
    }
    let mut odd = 0;
    if even != n {
        odd = u64::from(src[n - 1]);
        if COPY {
            dst[n - 1] = src[n - 1];
        }
    }
    let keep = even - at;
    let v = load(even - 32);
    store(even - 32, v);
    // SAFETY: `keep` is below 32: the 32 bytes from `keep` are in
    // `TAIL_MASK`.
    let mask = unsafe { _mm256_loadu_si256(TAIL_MASK.as_ptr().add(keep).cast()) };
    lanes[3] = _mm256_add_epi32(lanes[3], pairs(_mm256_and_si256(v, mask)));
    let [a, b, c, e] = lanes;
    let all = _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, e));
    let wide = _mm256_add_epi64(
        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(all)),
        _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(all)),
    );
    let half = _mm_add_epi64(
        _mm256_castsi256_si128(wide),
        _mm256_extracti128_si256::<1>(wide),
    );
    let lanes_sum = _mm_cvtsi128_si64(_mm_add_epi64(half, _mm_unpackhi_epi64(half, half)));
    // Each vector's eight pairs were each 2^16 short.
    let words = lanes_sum + ((vectors as i64) << 19);
    debug_assert!(words >= 0);
    words as u64 + odd
}
