use bitvec::prelude::*;
use proptest::prelude::*;
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf};

use super::*;

/// A payload buffer holding `bytes`.
fn payload(pool: &Pool, bytes: &[u8]) -> PoolBuf {
    let mut b = pool.alloc().expect("pool large enough for the test");
    b.extend_from_slice(bytes).unwrap();
    b
}

/// A payload split over a chain of buffers, `cuts` bytes per link.
fn chained(pool: &Pool, bytes: &[u8], cut: usize) -> PoolBuf {
    let mut parts = bytes.chunks(cut);
    let mut head = payload(pool, parts.next().unwrap());
    for part in parts {
        head.chain(payload(pool, part)).unwrap();
    }
    head
}

fn all_bytes(buf: &PoolBuf) -> Vec<u8> {
    buf.segments().flatten().copied().collect()
}

fn s(v: u32) -> SeqNumber {
    SeqNumber::new(v)
}

fn r(a: u32, b: u32) -> SeqRange {
    SeqRange::new(s(a), s(b))
}

/// Everything the queue holds from `rcv_nxt` on, popped in order, and
/// the sequence number after it.
fn drain(q: &mut ReassemblyQueue<PoolBuf>, mut rcv_nxt: SeqNumber) -> (Vec<u8>, SeqNumber) {
    let mut out = Vec::new();
    while let Some(b) = q.pop_in_order(rcv_nxt) {
        rcv_nxt += b.total_len() as u32;
        out.extend(all_bytes(&b));
    }
    (out, rcv_nxt)
}

fn blocks(q: &ReassemblyQueue<PoolBuf>, max: usize) -> Vec<(u32, u32)> {
    q.sack_blocks(max)
        .map(|b| b.iter().map(|b| (b.left, b.right)).collect())
        .unwrap_or_default()
}

#[test]
fn a_newcomer_keeps_held_bytes_at_its_edges() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    assert_eq!(
        q.insert(s(10), payload(&pool, &[b'a'; 10])),
        Insert::Queued {
            bytes: 10,
            duplicate: None
        }
    );
    // Starts inside [10, 20): only [20, 30) is new.
    assert_eq!(
        q.insert(s(15), payload(&pool, &[b'b'; 15])),
        Insert::Queued {
            bytes: 10,
            duplicate: Some(r(15, 20))
        }
    );
    // Ends inside [10, 20): only [5, 10) is new.
    assert_eq!(
        q.insert(s(5), payload(&pool, &[b'c'; 10])),
        Insert::Queued {
            bytes: 5,
            duplicate: Some(r(10, 15))
        }
    );
    assert_eq!(
        q.ranges().collect::<Vec<_>>(),
        [r(5, 10), r(10, 20), r(20, 30)]
    );
    assert_eq!((q.bytes(), q.segments()), (25, 3));
    let (out, end) = drain(&mut q, s(5));
    assert_eq!(out, [&[b'c'; 5][..], &[b'a'; 10], &[b'b'; 10]].concat());
    assert_eq!(end, s(30));
    assert_eq!(q.stats().duplicate_bytes, 10);
    pool.assert_whole();
}

#[test]
fn a_newcomer_covering_held_segments_replaces_them() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(10), payload(&pool, &[b'a'; 10]));
    q.insert(s(30), payload(&pool, &[b'a'; 10]));
    q.insert(s(50), payload(&pool, &[b'a'; 5]));
    // [15, 45): keeps [10, 20) (edge), replaces [30, 40), keeps nothing
    // of [50, 55) (beyond it).
    let ins = q.insert(s(15), payload(&pool, &[b'b'; 30]));
    assert_eq!(
        ins,
        Insert::Queued {
            bytes: 15,
            duplicate: Some(r(15, 20))
        }
    );
    assert_eq!(
        q.ranges().collect::<Vec<_>>(),
        [r(10, 20), r(20, 45), r(50, 55)]
    );
    assert_eq!(q.stats().replaced, 1);
    // Covers everything: replaces all three, reported from the first.
    let ins = q.insert(s(0), payload(&pool, &[b'c'; 60]));
    assert_eq!(
        ins,
        Insert::Queued {
            bytes: 60 - 40,
            duplicate: Some(r(10, 20))
        }
    );
    assert_eq!((q.segments(), q.bytes()), (1, 60));
    assert_eq!(drain(&mut q, s(0)).0, [b'c'; 60]);
    assert_eq!(q.stats().replaced, 4);
    pool.assert_whole();
}

#[test]
fn a_segment_already_held_is_a_duplicate() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(10), payload(&pool, &[1; 10]));
    q.insert(s(20), payload(&pool, &[2; 10]));
    // Inside one, equal to one, across two adjacent ones.
    for (at, len) in [(12, 3), (10, 10), (15, 10), (10, 20)] {
        let ins = q.insert(s(at), payload(&pool, &vec![9; len as usize]));
        assert_eq!(ins, Insert::Duplicate(r(at, at + len)));
    }
    assert_eq!(q.stats().duplicates, 4);
    assert_eq!(q.stats().duplicate_bytes, 3 + 10 + 10 + 20);
    assert_eq!(drain(&mut q, s(10)).0, [[1; 10], [2; 10]].concat());
    assert_eq!(q.insert(s(99), payload(&pool, &[])), Insert::Empty);
    pool.assert_whole();
}

#[test]
fn at_a_bound_far_data_makes_room_for_nearer() {
    // Simulation seed 54134: a queue full of far segments refused the one
    // after the hole; a peer without SACK then moved one segment per
    // timeout.
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(30, 2);
    q.insert(s(40), payload(&pool, &[1; 10]));
    q.insert(s(60), payload(&pool, &[2; 10]));
    // Nearer than both, at the segment bound: the farthest goes.
    assert_eq!(
        q.insert(s(20), payload(&pool, &[3; 10])),
        Insert::Queued {
            bytes: 10,
            duplicate: None
        }
    );
    assert_eq!(q.ranges().collect::<Vec<_>>(), [r(20, 30), r(40, 50)]);
    assert_eq!(q.stats().pruned, 1);
    // At the byte bound: 20 held and 15 more pass 30, unless [40, 50)
    // goes.
    q.set_limits(30, 4);
    assert_eq!(
        q.insert(s(0), payload(&pool, &[4; 15])),
        Insert::Queued {
            bytes: 15,
            duplicate: None
        }
    );
    assert_eq!(q.ranges().collect::<Vec<_>>(), [r(0, 15), r(20, 30)]);
    assert_eq!((q.bytes(), q.stats().pruned), (25, 2));
    // Farther than everything held: nothing to prune, refused.
    q.set_limits(25, 2);
    assert_eq!(
        q.insert(s(90), payload(&pool, &[5; 5])),
        Insert::Refused(Refusal::Segments)
    );
    assert_eq!(q.ranges().collect::<Vec<_>>(), [r(0, 15), r(20, 30)]);
    drop(q);
    pool.assert_whole();
}

#[test]
fn bounds_refuse_the_newest() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(30, 2);
    q.insert(s(10), payload(&pool, &[1; 10]));
    q.insert(s(30), payload(&pool, &[2; 10]));
    // A third segment.
    assert_eq!(
        q.insert(s(50), payload(&pool, &[3; 5])),
        Insert::Refused(Refusal::Segments)
    );
    // Growing a held one past the byte bound: [20, 30) + [40, 52) is 22 new.
    assert_eq!(
        q.insert(s(15), payload(&pool, &[4; 37])),
        Insert::Refused(Refusal::Bytes)
    );
    // Replacing at the segment bound is fine: the count does not grow.
    assert_eq!(
        q.insert(s(25), payload(&pool, &[5; 20])),
        Insert::Queued {
            bytes: 10,
            duplicate: Some(r(30, 40))
        }
    );
    assert_eq!(q.ranges().collect::<Vec<_>>(), [r(10, 20), r(25, 45)]);
    assert_eq!((q.bytes(), q.segments()), (30, 2));
    let st = q.stats();
    assert_eq!((st.refused_segments, st.refused_bytes), (1, 1));
    // Bounds lowered below what is held: nothing is dropped, new data is.
    q.set_limits(10, 1);
    assert_eq!(
        q.insert(s(60), payload(&pool, &[6; 1])),
        Insert::Refused(Refusal::Segments)
    );
    q.clear();
    assert!(q.is_empty() && q.bytes() == 0);
    // `ooo_max_segments = 0`: out-of-order data is never held.
    let mut none = ReassemblyQueue::from_config(&TcpConfig {
        ooo_max_segments: 0,
        ..TcpConfig::default()
    });
    assert_eq!(
        none.insert(s(1), payload(&pool, &[7; 3])),
        Insert::Refused(Refusal::Segments)
    );
    pool.assert_whole();
}

#[test]
fn pop_trims_what_in_order_data_already_delivered() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(10), payload(&pool, b"0123456789"));
    q.insert(s(20), payload(&pool, b"abcdef"));
    q.insert(s(40), payload(&pool, b"xyz"));
    assert!(q.pop_in_order(s(9)).is_none());
    // In-order data up to 23 arrived meanwhile: [10, 20) goes, [20, 26)
    // comes back from 23.
    let b = q.pop_in_order(s(23)).unwrap();
    assert_eq!(b.data(), b"def");
    assert!(q.pop_in_order(s(26)).is_none());
    assert_eq!((q.bytes(), q.segments()), (3, 1));
    assert_eq!(q.highest_end(), Some(s(43)));
    drop(b);
    drop(q);
    pool.assert_whole();
}

#[test]
fn sack_blocks_most_recent_first() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    assert_eq!(q.sack_blocks(4), None);
    q.insert(s(10), payload(&pool, &[0; 10])); // A [10, 20)
    q.insert(s(30), payload(&pool, &[0; 10])); // B [30, 40)
    q.insert(s(50), payload(&pool, &[0; 10])); // C [50, 60)
    q.insert(s(70), payload(&pool, &[0; 10])); // D [70, 80)
    q.insert(s(90), payload(&pool, &[0; 10])); // E [90, 100)
    assert_eq!(blocks(&q, 4), [(90, 100), (70, 80), (50, 60), (30, 40)]);
    assert_eq!(blocks(&q, 3), [(90, 100), (70, 80), (50, 60)]);
    assert_eq!(blocks(&q, 9), blocks(&q, 4));
    assert_eq!(q.sack_blocks(0), None);
    // A duplicate inside A: A is where the latest segment went.
    assert_eq!(
        q.insert(s(12), payload(&pool, &[0; 2])),
        Insert::Duplicate(r(12, 14))
    );
    assert_eq!(blocks(&q, 3), [(10, 20), (90, 100), (70, 80)]);
    // Filling [20, 30) merges A and B into the newest block.
    q.insert(s(20), payload(&pool, &[0; 10]));
    assert_eq!(blocks(&q, 4), [(10, 40), (90, 100), (70, 80), (50, 60)]);
    // D-SACK first, then the block holding it (RFC 2883 §4).
    q.insert(s(52), payload(&pool, &[0; 4]));
    let d = q.sack_blocks_after(r(52, 56), 3).unwrap();
    let d: Vec<_> = d.iter().map(|b| (b.left, b.right)).collect();
    assert_eq!(d, [(52, 56), (50, 60), (10, 40)]);
    let one = q.sack_blocks_after(r(52, 56), 1).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(q.sack_blocks_after(r(52, 56), 0), None);
    drop(q);
    pool.assert_whole();
}

#[test]
fn wraps_around_sequence_space() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    let start = s(u32::MAX - 5);
    // [MAX-1, 4) across zero, then [4, 9), then an overlap [MAX-3, 2).
    q.insert(start + 4, payload(&pool, b"efghij"));
    q.insert(start + 10, payload(&pool, b"klmno"));
    let ins = q.insert(start + 2, payload(&pool, b"cdefgh"));
    assert_eq!(
        ins,
        Insert::Queued {
            bytes: 2,
            duplicate: Some(SeqRange::new(start + 4, start + 8))
        }
    );
    assert_eq!(blocks(&q, 4), [((start + 2).get(), 9)]);
    q.insert(start, payload(&pool, b"ab"));
    let (out, end) = drain(&mut q, start);
    assert_eq!(out, b"abcdefghijklmno");
    assert_eq!(end, s(9));
    pool.assert_whole();
}

#[test]
fn chained_payloads_are_trimmed_across_links() {
    let pool = Pool::with_capacity(32).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    let data: Vec<u8> = (0..40).collect();
    q.insert(s(100), payload(&pool, &data[0..7]));
    q.insert(s(133), payload(&pool, &data[33..40]));
    // [100, 140) in links of 4: the front cut of 7 drops a link and
    // trims the next; the back cut of 7 drops one and trims another.
    let ins = q.insert(s(100), chained(&pool, &data, 4));
    assert_eq!(
        ins,
        Insert::Queued {
            bytes: 26,
            duplicate: Some(r(100, 107))
        }
    );
    // A pop from inside the chain drops links before rcv_nxt.
    let b = q.pop_in_order(s(110)).unwrap();
    assert_eq!(all_bytes(&b), &data[10..33]);
    assert!(b.is_chained());
    drop(b);
    assert_eq!(drain(&mut q, s(133)).0, &data[33..40]);
    pool.assert_whole();
}

/// A chain whose tail is shared (a gathering port's frame: the sender's
/// chunk) is cut where a link ends without a copy: the shared link stays
/// whole, its other holder's bytes untouched.
#[test]
fn a_shared_chain_is_cut_at_a_link_without_a_copy() {
    let pool = Pool::with_capacity(16).unwrap();
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(0), payload(&pool, &[1; 4]));
    let mut head = payload(&pool, &[1; 4]);
    let tail = payload(&pool, &[2; 4]).share();
    head.chain_shared(tail.clone()).unwrap();
    // [0, 4) is held: only the shared link is kept.
    assert!(matches!(q.insert(s(0), head), Insert::Queued { .. }));
    assert_eq!(tail.ref_count(), 2, "kept by reference");
    assert_eq!(drain(&mut q, s(0)).0, [[1; 4], [2; 4]].concat());
    assert_eq!(tail.data(), &[2; 4]);
    drop((q, tail));
    pool.assert_whole();
}

/// A cut inside a shared link is made on a copy in the first link's room;
/// when that room is too small the segment is refused, the shared bytes
/// untouched.
#[test]
fn a_shared_chain_that_cannot_be_cut_is_refused() {
    let pool = Pool::with_capacity(16).unwrap();
    // The first link full to its last 10 bytes: the shared 100 do not fit.
    let mut head = pool.alloc().unwrap();
    let room = head.tailroom();
    head.extend_from_slice(&vec![1; room - 10]).unwrap();
    let tail = payload(&pool, &[2; 100]).share();
    head.chain_shared(tail.clone()).unwrap();
    let first = (room - 10) as u32;
    // Held from inside the shared link on: the new segment's back must be
    // cut there.
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(first + 50), payload(&pool, &[2; 150]));
    assert_eq!(q.insert(s(0), head), Insert::Refused(Refusal::Shared));
    assert_eq!(q.stats().refused_shared, 1);
    assert_eq!(tail.data(), &[2; 100][..]);
    drop(q);
    // Room enough: cut on a copy, which holds no reference.
    let mut q = ReassemblyQueue::new(1 << 20, 16);
    q.insert(s(0), payload(&pool, &[1; 6]));
    let mut head = payload(&pool, &[1; 2]);
    head.chain_shared(tail.clone()).unwrap();
    // [2, 104): [2, 6) is held, the cut falls 2 bytes into the shared link.
    assert!(matches!(q.insert(s(2), head), Insert::Queued { .. }));
    assert_eq!(tail.ref_count(), 1, "the copy holds no reference");
    assert_eq!(drain(&mut q, s(0)).0, [vec![1; 6], vec![2; 98]].concat());
    assert_eq!(tail.data(), &[2; 100][..]);
    drop((q, tail));
    pool.assert_whole();
}

/// A small deterministic generator, so a failing case is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// A byte stream cut into segments: a partition of it (so it can all
/// arrive), plus overlapping ranges and duplicates, shuffled. Offsets
/// are from the stream's start.
fn segmentation(rng: &mut Rng, len: usize) -> Vec<(usize, usize)> {
    let max_seg = 1 + rng.below(300);
    let mut segs = Vec::new();
    let mut at = 0;
    while at < len {
        let n = (1 + rng.below(max_seg)).min(len - at);
        segs.push((at, at + n));
        at += n;
    }
    for _ in 0..rng.below(12) {
        let a = rng.below(len);
        let b = (a + 1 + rng.below(400)).min(len);
        segs.push((a, b));
    }
    for _ in 0..rng.below(6) {
        let dup = segs[rng.below(segs.len())];
        segs.push(dup);
    }
    rng.shuffle(&mut segs);
    segs
}

/// The receiving side of a connection, as the engine will be: in-order
/// data is taken at once (and what it unblocks popped), the rest queued.
struct Receiver {
    q: ReassemblyQueue<PoolBuf>,
    isn: SeqNumber,
    rcv_nxt: SeqNumber,
    out: Vec<u8>,
}

impl Receiver {
    fn new(isn: SeqNumber, max_bytes: usize, max_segments: usize) -> Self {
        Receiver {
            q: ReassemblyQueue::new(max_bytes, max_segments),
            isn,
            rcv_nxt: isn,
            out: Vec::new(),
        }
    }

    /// Receives stream bytes `[a, b)`; what the queue said, if it was asked.
    fn receive(&mut self, pool: &Pool, stream: &[u8], (a, b): (usize, usize)) -> Option<Insert> {
        let seq = self.isn + a as u32;
        let end = self.isn + b as u32;
        if end.le(self.rcv_nxt) {
            return None; // old duplicate
        }
        let mut buf = payload(pool, &stream[a..b]);
        if seq.le(self.rcv_nxt) {
            buf.trim_front(self.rcv_nxt.wrapping_sub(seq) as usize)
                .unwrap();
            self.take(buf);
            while let Some(next) = self.q.pop_in_order(self.rcv_nxt) {
                self.take(next);
            }
            return None;
        }
        Some(self.q.insert(seq, buf))
    }

    fn take(&mut self, buf: PoolBuf) {
        self.rcv_nxt += buf.total_len() as u32;
        self.out.extend(all_bytes(&buf));
    }
}

/// Sequence numbers where wrap-around bugs live, or anywhere.
fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![
        (0u32..3000).prop_map(|d| u32::MAX - d),
        (0u32..3000).prop_map(|d| (1 << 31) - d),
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the segmentation, order, overlaps and duplicates, the
    /// stream comes out exactly once, in order, and nothing is left held.
    #[test]
    fn the_stream_comes_out_once_in_order(seed in any::<u64>(), isn in isn(), len in 1usize..4000) {
        let mut rng = Rng(seed | 1);
        let stream: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let segs = segmentation(&mut rng, len);
        let pool = Pool::with_capacity(segs.len() + 4).unwrap();
        let mut rx = Receiver::new(SeqNumber::new(isn), 1 << 20, 4096);
        for seg in &segs {
            let ins = rx.receive(&pool, &stream, *seg);
            prop_assert!(!matches!(ins, Some(Insert::Refused(_))), "seed {seed}: {ins:?}");
        }
        prop_assert!(rx.out == stream, "seed {seed} isn {isn}: stream differs");
        prop_assert!(rx.q.is_empty() && rx.q.bytes() == 0, "seed {seed}");
        drop(rx);
        pool.assert_whole();
    }

    /// With small bounds the queue never holds more than allowed, refuses
    /// only at a bound, and the stream still comes out exactly once when
    /// the sender keeps retransmitting.
    #[test]
    fn bounds_hold_and_retransmissions_finish_the_stream(
        seed in any::<u64>(),
        isn in isn(),
        len in 1usize..3000,
        max_bytes in 1usize..1500,
        max_segments in 1usize..6,
    ) {
        let mut rng = Rng(seed | 1);
        let stream: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut segs = segmentation(&mut rng, len);
        let pool = Pool::with_capacity(max_segments + 4).unwrap();
        let mut rx = Receiver::new(SeqNumber::new(isn), max_bytes, max_segments);
        let end = rx.isn + len as u32;
        let mut refused = 0u64;
        let mut rounds = 0;
        while rx.rcv_nxt != end {
            rounds += 1;
            prop_assert!(rounds <= segs.len() + 1, "seed {seed}: no progress");
            rng.shuffle(&mut segs);
            for seg in &segs {
                if let Some(Insert::Refused(why)) = rx.receive(&pool, &stream, *seg) {
                    prop_assert!(matches!(why, Refusal::Bytes | Refusal::Segments), "seed {seed}: {why:?}");
                    refused += 1;
                }
                prop_assert!(rx.q.bytes() <= max_bytes, "seed {seed}: {} bytes", rx.q.bytes());
                prop_assert!(rx.q.segments() <= max_segments, "seed {seed}");
                let held: usize = rx.q.ranges().map(|r| r.len() as usize).sum();
                prop_assert_eq!(held, rx.q.bytes(), "seed {}", seed);
            }
        }
        let st = rx.q.stats();
        prop_assert_eq!(st.refused_bytes + st.refused_segments, refused, "seed {}", seed);
        prop_assert_eq!(st.refused_shared + st.refused_span, 0, "seed {}", seed);
        prop_assert!(rx.out == stream, "seed {seed} isn {isn}: stream differs");
        prop_assert!(rx.q.is_empty(), "seed {seed}");
        drop(rx);
        pool.assert_whole();
    }

    /// Against a bitmap of the bytes received: the queue holds exactly
    /// them, in sorted disjoint ranges with the right bytes, and the SACK
    /// blocks are maximal runs of it, distinct, the first holding the
    /// latest segment.
    #[test]
    fn held_ranges_and_sack_blocks_match_a_bitmap(
        seed in any::<u64>(),
        isn in isn(),
        len in 2usize..3000,
        max in 1usize..=4,
    ) {
        let mut rng = Rng(seed | 1);
        let stream: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let segs = segmentation(&mut rng, len);
        let pool = Pool::with_capacity(segs.len() + 4).unwrap();
        let isn = SeqNumber::new(isn);
        let mut q = ReassemblyQueue::new(1 << 20, 4096);
        let mut oracle = bitvec![0; len];
        // Byte 0 never arrives: everything stays out of order.
        for &(a, b) in segs.iter().filter(|(a, _)| *a > 0) {
            let ins = q.insert(isn + a as u32, payload(&pool, &stream[a..b]));
            let fresh = oracle[a..b].not_any();
            let new = oracle[a..b].count_zeros() as u32;
            oracle[a..b].fill(true);
            match ins {
                Insert::Queued { bytes, duplicate } => {
                    prop_assert_eq!(bytes, new, "seed {}", seed);
                    prop_assert_eq!(duplicate.is_none(), fresh, "seed {}", seed);
                }
                Insert::Duplicate(r) => {
                    prop_assert_eq!(new, 0, "seed {}", seed);
                    prop_assert_eq!(r, SeqRange::from_len(isn + a as u32, (b - a) as u32));
                }
                other => prop_assert!(false, "seed {seed}: {other:?}"),
            }
            // The first block holds the segment just received.
            let first = q.sack_blocks(max).unwrap().as_slice()[0];
            let first = SeqRange::new(SeqNumber::new(first.left), SeqNumber::new(first.right));
            prop_assert!(first.contains(isn + a as u32) && first.contains(isn + (b - 1) as u32),
                "seed {seed}: {first:?} misses [{a}, {b})");
        }
        // Held ranges: sorted, disjoint, exactly the bitmap, right bytes.
        let mut held = bitvec![0; len];
        let mut prev_end = 0;
        for (range, h) in q.ranges().zip(q.held.iter()) {
            let a = range.start.wrapping_sub(isn) as usize;
            let b = range.end.wrapping_sub(isn) as usize;
            prop_assert!(prev_end <= a && a < b && b <= len, "seed {seed}: {range:?}");
            prev_end = b;
            held[a..b].fill(true);
            prop_assert!(all_bytes(&h.buf) == stream[a..b], "seed {seed}: bytes of {range:?}");
        }
        prop_assert_eq!(&held, &oracle, "seed {}", seed);
        prop_assert_eq!(q.bytes(), oracle.count_ones(), "seed {}", seed);
        // Blocks: maximal runs of the bitmap, distinct, as many as fit.
        let runs = oracle.iter().zip(oracle.iter().skip(1)).filter(|(a, b)| !**a && **b).count();
        let got = q.sack_blocks(max).map(|b| b.as_slice().to_vec()).unwrap_or_default();
        prop_assert_eq!(got.len(), runs.min(max), "seed {}", seed);
        let mut lefts: Vec<u32> = got.iter().map(|b| b.left).collect();
        lefts.sort_unstable();
        lefts.dedup();
        prop_assert_eq!(lefts.len(), got.len(), "seed {}", seed);
        for block in &got {
            let a = SeqNumber::new(block.left).wrapping_sub(isn) as usize;
            let b = SeqNumber::new(block.right).wrapping_sub(isn) as usize;
            prop_assert!(a > 0 && a < b && b <= len, "seed {seed}: {block:?}");
            prop_assert!(oracle[a..b].all() && !oracle[a - 1], "seed {seed}: {block:?}");
            prop_assert!(b == len || !oracle[b], "seed {seed}: {block:?} not maximal");
        }
        drop(q);
        pool.assert_whole();
    }
}

#[test]
fn a_segment_too_far_from_held_data_is_refused() {
    let pool = Pool::with_capacity(8).unwrap();
    let mut q = ReassemblyQueue::new(usize::MAX, 16);
    q.insert(s(0), payload(&pool, &[1; 10]));
    // Half a circle away: no order with what is held.
    let far = s(1 << 31);
    assert_eq!(
        q.insert(far, payload(&pool, &[2; 10])),
        Insert::Refused(Refusal::Span)
    );
    // Just inside the span, above and below.
    let top = s(0) + (MAX_SPAN - 10);
    assert!(matches!(
        q.insert(top, payload(&pool, &[3; 10])),
        Insert::Queued { .. }
    ));
    assert_eq!(
        q.insert(s(0) - 1, payload(&pool, &[4; 1])),
        Insert::Refused(Refusal::Span)
    );
    assert_eq!(q.stats().refused_span, 2);
    drop(q);
    pool.assert_whole();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a caller passes (any sequence numbers, pops at any point),
    /// nothing panics, held data stays sorted, disjoint and within
    /// `MAX_SPAN`, the counts add up, and every buffer comes back.
    #[test]
    fn any_input_keeps_the_invariants(
        ops in proptest::collection::vec(
            (any::<bool>(), prop_oneof![any::<u32>(), 0u32..64, (0u32..64).prop_map(|d| d.wrapping_sub(32))], 0usize..48),
            1..64,
        ),
        base in any::<u32>(),
        near in any::<bool>(),
    ) {
        let pool = Pool::with_capacity(80).unwrap();
        let mut q = ReassemblyQueue::new(400, 12);
        let bytes: Vec<u8> = (0..48).collect();
        for (pop, v, len) in ops {
            // Mostly close to `base` (overlaps), sometimes anywhere.
            let seq = if near { s(base) + v } else { s(v) };
            if pop {
                while let Some(b) = q.pop_in_order(seq) {
                    drop(b);
                }
            } else {
                let _ = q.insert(seq, payload(&pool, &bytes[..len]));
            }
            let ranges: Vec<_> = q.ranges().collect();
            for pair in ranges.windows(2) {
                prop_assert!(pair[0].end.le(pair[1].start), "{:?}", ranges);
            }
            for r in &ranges {
                prop_assert!(!r.is_empty() && r.len() <= MAX_SPAN, "{:?}", ranges);
            }
            if let (Some(a), Some(b)) = (ranges.first(), ranges.last()) {
                prop_assert!(b.end.wrapping_sub(a.start) <= MAX_SPAN, "{:?}", ranges);
            }
            let held: usize = ranges.iter().map(|r| r.len() as usize).sum();
            prop_assert_eq!(held, q.bytes());
            prop_assert!(q.bytes() <= 400 && q.segments() <= 12);
            let lens: usize = q.held.iter().map(|h| h.buf.total_len()).sum();
            prop_assert_eq!(lens, held);
            let _ = q.sack_blocks(4);
        }
        drop(q);
        pool.assert_whole();
    }
}
