//! Shareable buffers on tpa's pool: random clone/drop/chain/unchain orders
//! against a model (pool whole at the end), references dropped on other
//! threads, chains over MemoryWire (copied into one frame, counted) and the
//! pool's receive reserve under exhaustion.

mod share_common;

use std::sync::Barrier;
use std::thread;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use share_common::op_sequences;
use tpa::buf::{BufError, BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig, Shared};
use tpa::port::memory::MemoryWire;
use tpa::port::{Burst, Port};
use tpa_tests::share_model::{self, Coverage, Op};

fn small_pool(name: &str, capacity: usize) -> Pool {
    Pool::new(PoolConfig {
        name: name.to_owned(),
        capacity,
        cache_size: 8,
        data_room: 512,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// Any order of steps keeps every holder's view right and returns every
/// buffer; together the sequences reach every outcome. The runner prints
/// the failing (shrunk) sequence.
#[test]
fn random_share_and_chain_orders_leave_the_pool_whole() {
    let pool = small_pool("share-prop", 48);
    let seen = std::cell::Cell::new(Coverage::default());
    let mut runner = TestRunner::new(Config {
        // Miri runs a few (minutes each): the chosen sequences below cover
        // every outcome there.
        cases: if cfg!(miri) { 1 } else { 256 },
        ..Config::default()
    });
    let result = runner.run(&op_sequences(), |ops| {
        let mut c = seen.get();
        c += share_model::run(&ops, || pool.alloc());
        seen.set(c);
        prop_assert_eq!(pool.in_use(), 0, "buffers not returned");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    if !cfg!(miri) {
        seen.get().assert_all_reached();
    }
    pool.assert_whole();
}

/// A handful of sequences the random ones might miss, run every time.
#[test]
fn chosen_sequences_leave_the_pool_whole() {
    use Op::*;
    let pool = small_pool("share-chosen", 48);
    let seqs: &[&[Op]] = &[
        // Header + shared data, the data held twice, sent twice.
        &[
            Alloc { len: 100, fill: 1 },
            Share(0),
            Clone(0),
            Alloc { len: 20, fill: 2 },
            ChainShared { head: 2, tail: 1 },
            Append {
                at: 1,
                n: 1,
                fill: 3,
            },
            Unchain(1),
            TryUnique(0),
            Drop(2),
            TryUnique(0),
            Append {
                at: 1,
                n: 4,
                fill: 5,
            },
        ],
        // A chain of unique segments grows, is linearized, shared and split.
        &[
            Alloc { len: 10, fill: 1 },
            Alloc { len: 11, fill: 2 },
            Alloc { len: 12, fill: 3 },
            ChainUnique { head: 0, tail: 1 },
            ChainUnique { head: 0, tail: 1 },
            Append {
                at: 0,
                n: 7,
                fill: 9,
            },
            Prepend {
                at: 0,
                n: 3,
                fill: 8,
            },
            Share(0),
            Clone(0),
            DropElsewhere(0),
            TryUnique(0),
            Linearize(0),
            Unchain(0),
            Drop(0),
        ],
    ];
    let mut seen = Coverage::default();
    for ops in seqs {
        seen += share_model::run(ops, || pool.alloc());
        pool.assert_whole();
    }
    assert_eq!(
        (seen.chain_refused, seen.append_refused, seen.made_unique),
        (0, 1, 2)
    );
    assert!(seen.chained >= 3 && seen.linearized == 1, "{seen:?}");
}

/// Threads clone and drop handles to one packet at once; the count ends
/// where it started and the buffers come back.
#[test]
fn clones_dropped_on_many_threads_return_every_buffer() {
    let pool = small_pool("share-threads", 64);
    let mut head = pool.alloc().unwrap();
    head.extend_from_slice(b"head").unwrap();
    let mut data = pool.alloc().unwrap();
    data.extend_from_slice(&[7u8; 300]).unwrap();
    head.chain(data).unwrap();
    let held = head.share();
    let threads = 4;
    let go = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            let mine = held.clone();
            let go = &go;
            s.spawn(move || {
                go.wait();
                for _ in 0..if cfg!(miri) { 20 } else { 2000 } {
                    let c = mine.clone();
                    assert_eq!(c.total_len(), 304);
                    drop(c);
                }
                drop(mine);
            });
        }
    });
    assert_eq!(held.ref_count(), 1);
    let mut back = held.try_unique().expect("the last handle");
    back.append(1).expect("the last segment is ours again")[0] = 1;
    drop(back);
    pool.assert_whole();
}

/// Shared bytes are never written: the data segment behind a header can be
/// neither appended to nor trimmed while someone else holds it, and
/// nothing can be chained behind it.
#[test]
fn writes_to_a_shared_segment_are_refused() {
    let pool = small_pool("share-refuse", 16);
    let mut data = pool.alloc().unwrap();
    data.extend_from_slice(b"acknowledged later").unwrap();
    let held = data.share();
    let mut pkt = pool.alloc().unwrap();
    pkt.extend_from_slice(b"hdr").unwrap();
    pkt.chain_shared(held.clone()).unwrap();
    assert_eq!(pkt.append(1).unwrap_err(), BufError::Shared);
    assert_eq!(pkt.trim_back(1).unwrap_err(), BufError::Shared);
    let extra = pool.alloc().unwrap();
    let extra = pkt
        .chain(extra)
        .expect_err("nothing behind a shared segment");
    // The first segment is still ours.
    pkt.data_mut()[0] = b'H';
    pkt.prepend(2).unwrap().copy_from_slice(b"..");
    assert_eq!(
        pkt.segments().collect::<Vec<_>>(),
        [&b"..Hdr"[..], b"acknowledged later"]
    );
    assert_eq!(held.data(), b"acknowledged later");
    drop((pkt, extra));
    assert_eq!(held.ref_count(), 1);
    drop(held);
    pool.assert_whole();
}

/// A header chained in front of held data crosses a MemoryWire (which
/// cannot gather) as one frame holding both, copied once and counted; the
/// held data is untouched and the wire drops its reference.
#[test]
fn a_chain_crosses_a_memory_wire_as_one_frame() {
    let (mut a, mut b) = MemoryWire::pair(tpa::port::memory::WireConfig {
        pool_capacity: 64,
        ..Default::default()
    })
    .unwrap();
    let pool = a.pool().clone();
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut data = a.alloc().unwrap();
    data.extend_from_slice(&payload).unwrap();
    let held: Shared<PoolBuf> = data.share();
    let header = [0xabu8; 42];
    let mut tx: Burst<PoolBuf, 4> = Burst::new();
    for _ in 0..2 {
        // Sent, then "retransmitted": the same bytes behind a new header.
        let mut pkt = a.alloc().unwrap();
        pkt.extend_from_slice(&header).unwrap();
        pkt.chain_shared(held.clone()).unwrap();
        tx.push(pkt);
    }
    assert_eq!(held.ref_count(), 3);
    assert_eq!(a.tx_burst(&mut tx), 2);
    assert_eq!(a.offload_stats().linearized, 2);
    assert_eq!(a.offload_stats().linearize_dropped, 0);
    assert_eq!(held.ref_count(), 1, "the wire kept no reference");
    let mut rx: Burst<PoolBuf, 4> = Burst::new();
    assert_eq!(b.rx_burst(&mut rx), 2);
    let want: Vec<u8> = header.iter().chain(&payload).copied().collect();
    for got in rx.drain() {
        assert_eq!(got.segment_count(), 1);
        assert_eq!(got.data(), &want[..]);
    }
    assert_eq!(held.data(), &payload[..]);
    drop((held, a, b));
    pool.assert_whole();
}

/// A chain that fits no buffer, on a port that cannot gather, is dropped
/// and counted, and its buffers come back.
#[test]
fn a_chain_too_long_for_one_frame_is_dropped_and_counted() {
    let pool = small_pool("share-toolong", 32);
    let (mut a, mut b) = MemoryWire::pair(tpa::port::memory::WireConfig {
        pool: Some(pool.clone()),
        ..Default::default()
    })
    .unwrap();
    let mut pkt = a.alloc().unwrap();
    pkt.extend_from_slice(&[1u8; 400]).unwrap();
    for _ in 0..3 {
        let mut more = a.alloc().unwrap();
        more.extend_from_slice(&[2u8; 400]).unwrap();
        pkt.chain(more).unwrap();
    }
    let mut tx: Burst<PoolBuf, 1> = Burst::new();
    tx.push(pkt);
    // Taken (as a malformed request is): dropped, not left to retry.
    assert_eq!(a.tx_burst(&mut tx), 1);
    assert!(tx.is_empty());
    assert_eq!(a.offload_stats().linearize_dropped, 1);
    let mut rx: Burst<PoolBuf, 1> = Burst::new();
    assert_eq!(b.rx_burst(&mut rx), 0);
    drop((a, b));
    pool.assert_whole();
}

/// Ordinary allocations stop at the receive reserve; receive allocations
/// take it, then fail too, each failure counted, none a panic. Freed
/// buffers refill the reserve.
#[test]
fn the_receive_reserve_holds_under_exhaustion() {
    let pool = Pool::new(PoolConfig {
        name: "reserve".into(),
        capacity: 64,
        cache_size: 8,
        rx_reserve: 8,
        ..PoolConfig::default()
    })
    .unwrap();
    let mut held = Vec::new();
    while let Some(b) = pool.alloc() {
        held.push(b);
    }
    assert_eq!(held.len(), 56, "ordinary allocations leave the reserve");
    let mut burst: Burst<PoolBuf, 8> = Burst::new();
    assert_eq!(pool.alloc_bulk(&mut burst, 8), 0);
    let mut rx: Burst<PoolBuf, 16> = Burst::new();
    assert_eq!(pool.alloc_bulk_rx(&mut rx, 16), 8, "the reserve, no more");
    assert!(pool.alloc_rx().is_none());
    let s = pool.stats();
    assert_eq!((s.in_use, s.rx_reserve), (64, 8));
    assert_eq!(s.failed_rx_allocs, 1 + 8);
    assert_eq!(s.failed_allocs, 1 + 8 + 8 + 1);
    // Everything back, through the caches: the reserve is whole again.
    drop(rx);
    drop(held);
    pool.flush_cache();
    pool.assert_whole();
    let again: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
    assert_eq!(again.len(), 56);
    drop(again);
    pool.assert_whole();
}

#[test]
fn a_reserve_larger_than_the_pool_is_refused() {
    let err = Pool::new(PoolConfig {
        capacity: 8,
        rx_reserve: 9,
        ..PoolConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("rx_reserve"), "{err}");
}
