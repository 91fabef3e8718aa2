//! tpa's buffer pool: allocation, exhaustion, bulk paths, cross-thread frees,
//! buffer geometry, and the leak check.

use std::sync::mpsc;
use std::thread;

use tpa::buf::{BufError, BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig, PoolError};
use tpa::port::Burst;

fn pool(capacity: usize) -> Pool {
    Pool::new(PoolConfig {
        name: "test".into(),
        capacity,
        ..PoolConfig::default()
    })
    .expect("pool")
}

#[test]
fn alloc_and_drop_return_the_buffer() {
    let p = pool(64);
    let b = p.alloc().expect("buffer");
    assert_eq!(b.len(), 0);
    assert_eq!(b.headroom(), 128);
    assert_eq!(b.tailroom(), 2048);
    assert_eq!(b.capacity(), 2176);
    assert_eq!(p.in_use(), 1);
    assert!(!p.is_whole());
    drop(b);
    assert_eq!(p.in_use(), 0);
    p.assert_whole();
}

#[test]
fn exhaustion_returns_none_and_counts_failures() {
    let p = pool(16);
    let held: Vec<PoolBuf> = (0..16).map(|_| p.alloc().expect("buffer")).collect();
    assert_eq!(p.stats().in_use, 16);
    assert_eq!(p.stats().free, 0);
    assert!(p.alloc().is_none());
    assert!(p.alloc().is_none());
    assert_eq!(p.stats().failed_allocs, 2);
    drop(held);
    assert!(p.alloc().is_some());
    p.assert_whole();
}

#[test]
fn buffers_are_distinct_and_keep_their_bytes() {
    let p = pool(256);
    let bufs: Vec<PoolBuf> = (0..200u32)
        .map(|i| {
            let mut b = p.alloc().expect("buffer");
            b.extend_from_slice(&i.to_be_bytes()).unwrap();
            b
        })
        .collect();
    for (i, b) in bufs.iter().enumerate() {
        assert_eq!(b.data(), &(i as u32).to_be_bytes());
    }
    drop(bufs);
    p.assert_whole();
}

#[test]
fn reused_buffer_is_reset() {
    let p = pool(8);
    let mut b = p.alloc().unwrap();
    b.extend_from_slice(&[1; 100]).unwrap();
    b.trim_front(10).unwrap();
    b.meta_mut().rss_hash = Some(7);
    drop(b);
    // Drain everything so the same buffer must come back.
    let all: Vec<_> = (0..8).map(|_| p.alloc().unwrap()).collect();
    for b in &all {
        assert_eq!(b.len(), 0);
        assert_eq!(b.headroom(), 128);
        assert_eq!(b.meta().rss_hash, None);
    }
    drop(all);
    p.assert_whole();
}

#[test]
fn geometry_prepend_append_trim() {
    let p = Pool::new(PoolConfig {
        capacity: 8,
        data_room: 100,
        headroom: 16,
        ..PoolConfig::default()
    })
    .unwrap();
    let mut b = p.alloc().unwrap();
    b.append(60).unwrap().fill(0xaa);
    assert_eq!((b.headroom(), b.len(), b.tailroom()), (16, 60, 40));
    b.prepend(16).unwrap().fill(0xbb);
    assert_eq!((b.headroom(), b.len(), b.tailroom()), (0, 76, 40));
    assert_eq!(b.data()[0], 0xbb);
    assert_eq!(b.data()[16], 0xaa);
    assert_eq!(
        b.prepend(1),
        Err(BufError::NoHeadroom {
            needed: 1,
            available: 0
        })
    );
    assert_eq!(
        b.append(41),
        Err(BufError::NoTailroom {
            needed: 41,
            available: 40
        })
    );
    b.append(40).unwrap();
    assert_eq!(b.tailroom(), 0);
    assert_eq!(
        b.trim_front(117),
        Err(BufError::TooShort {
            needed: 117,
            available: 116
        })
    );
    // Failed operations leave the buffer unchanged.
    assert_eq!((b.headroom(), b.len(), b.tailroom()), (0, 116, 0));
    b.trim_front(16).unwrap();
    assert_eq!(b.data()[0], 0xaa);
    b.trim_back(50).unwrap();
    assert_eq!((b.headroom(), b.len(), b.tailroom()), (16, 50, 50));
    assert_eq!(
        b.trim_back(51),
        Err(BufError::TooShort {
            needed: 51,
            available: 50
        })
    );
    b.trim_back(50).unwrap();
    assert!(b.is_empty());
    b.set_len(10).unwrap();
    assert_eq!(b.len(), 10);
    b.set_len(3).unwrap();
    assert_eq!(b.len(), 3);
    assert!(b.set_len(1000).is_err());
    b.reset(8);
    assert_eq!((b.headroom(), b.len(), b.tailroom()), (8, 0, 108));
    b.reset(10_000);
    assert_eq!((b.headroom(), b.tailroom()), (116, 0));
    drop(b);
    p.assert_whole();
}

#[test]
fn copy_duplicates_data_headroom_and_meta() {
    let p = pool(8);
    let mut a = p.alloc().unwrap();
    a.extend_from_slice(b"hello world").unwrap();
    a.trim_front(6).unwrap();
    a.meta_mut().flow_mark = Some(3);
    let mut c = a.copy().unwrap();
    assert_eq!(c.data(), b"world");
    assert_eq!(c.headroom(), a.headroom());
    assert_eq!(c.meta(), a.meta());
    c.data_mut()[0] = b'W';
    assert_eq!(a.data(), b"world");
    assert_eq!(p.in_use(), 2);
    drop((a, c));
    p.assert_whole();
}

#[test]
fn bulk_alloc_fills_a_burst_and_free_bulk_returns() {
    let p = pool(100);
    let mut burst: Burst<PoolBuf, 32> = Burst::new();
    assert_eq!(p.alloc_bulk(&mut burst, 20), 20);
    assert_eq!(p.alloc_bulk(&mut burst, 20), 12, "bounded by the burst");
    assert_eq!(p.in_use(), 32);
    let mut second: Burst<PoolBuf, 128> = Burst::new();
    assert_eq!(p.alloc_bulk(&mut second, 128), 68, "bounded by the pool");
    assert_eq!(p.stats().failed_allocs, 60);
    PoolBuf::free_bulk(burst.drain());
    PoolBuf::free_bulk(second.drain());
    p.assert_whole();
}

#[test]
fn free_bulk_handles_buffers_of_several_pools() {
    let (p, q) = (pool(40), pool(40));
    let mut v = Vec::new();
    for _ in 0..30 {
        v.push(p.alloc().unwrap());
        v.push(q.alloc().unwrap());
    }
    PoolBuf::free_bulk(v);
    p.assert_whole();
    q.assert_whole();
}

#[test]
fn caches_count_as_free_and_flush_to_other_threads() {
    let p = Pool::new(PoolConfig {
        capacity: 64,
        cache_size: 16,
        ..PoolConfig::default()
    })
    .unwrap();
    drop(p.alloc());
    let s = p.stats();
    assert!(s.cached > 0, "{s:?}");
    assert!(p.is_whole());
    // Another thread can take every buffer once this thread flushes.
    p.flush_cache();
    assert_eq!(p.stats().cached, 0);
    let p2 = p.clone();
    let n = thread::spawn(move || {
        let v: Vec<_> = std::iter::from_fn(|| p2.alloc()).collect();
        v.len()
    })
    .join()
    .unwrap();
    assert_eq!(n, 64);
    // The other thread's exit returned its cache.
    p.assert_whole();
    assert_eq!(p.stats().cached, 0);
}

#[test]
fn cache_disabled_pool_works() {
    let p = Pool::new(PoolConfig {
        capacity: 4,
        cache_size: 0,
        ..PoolConfig::default()
    })
    .unwrap();
    let v: Vec<_> = std::iter::from_fn(|| p.alloc()).collect();
    assert_eq!(v.len(), 4);
    assert_eq!(p.stats().cached, 0);
    drop(v);
    assert_eq!(p.stats().cached, 0);
    p.assert_whole();
}

#[test]
fn buffers_freed_on_another_thread() {
    // At most 6 batches of 32 are out at once; Miri builds big pools slowly.
    let p = pool(if cfg!(miri) { 512 } else { 4096 });
    let (tx, rx) = mpsc::sync_channel::<Vec<PoolBuf>>(4);
    let consumer = thread::spawn(move || {
        let mut seen = 0u64;
        for batch in rx {
            for b in batch {
                seen += u64::from(b.data()[0]);
            }
        }
        seen
    });
    let mut expected = 0u64;
    // Miri checks every access of each round: fewer rounds there.
    let rounds = if cfg!(miri) { 40 } else { 2000 };
    for round in 0..rounds {
        let mut batch = Vec::with_capacity(32);
        for i in 0..32u32 {
            // The consumer may still hold a few batches: retry until it frees.
            let mut b = loop {
                if let Some(b) = p.alloc() {
                    break b;
                }
                p.flush_cache();
                thread::yield_now();
            };
            let v = ((round + i) % 251) as u8;
            b.extend_from_slice(&[v; 60]).unwrap();
            expected += u64::from(v);
            batch.push(b);
        }
        tx.send(batch).unwrap();
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), expected);
    p.assert_whole();
}

#[test]
fn many_threads_alloc_and_free_concurrently() {
    let p = Pool::new(PoolConfig {
        // 4 threads hold at most a burst and a cache each (4 × 96); Miri
        // builds big pools slowly.
        capacity: if cfg!(miri) { 512 } else { 2048 },
        cache_size: 64,
        ..PoolConfig::default()
    })
    .unwrap();
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            let p = p.clone();
            thread::spawn(move || {
                let mut burst: Burst<PoolBuf, 32> = Burst::new();
                for _ in 0..if cfg!(miri) { 10 } else { 5000 } {
                    p.alloc_bulk(&mut burst, 32);
                    for b in burst.as_mut_slice() {
                        b.extend_from_slice(&[t; 8]).unwrap();
                    }
                    for b in burst.as_slice() {
                        assert_eq!(b.data(), &[t; 8]);
                    }
                    burst.clear();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    p.assert_whole();
    assert_eq!(p.stats().failed_allocs, 0);
}

#[test]
fn buffers_outlive_their_pool_handle() {
    let p = pool(32);
    let mut b = p.alloc().unwrap();
    let other = thread::spawn({
        let p = p.clone();
        move || p.alloc().unwrap()
    })
    .join()
    .unwrap();
    drop(p);
    // The memory is still mapped: the buffers keep the pool alive.
    b.extend_from_slice(&[9; 1000]).unwrap();
    assert_eq!(b.data()[999], 9);
    let c = b.copy().unwrap();
    assert_eq!(c.data(), b.data());
    drop((b, c, other));
}

#[test]
fn invalid_configs_are_errors() {
    let invalid = |config: PoolConfig| match Pool::new(config) {
        Err(PoolError::InvalidConfig { name, what }) => (name, what),
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let (_, what) = invalid(PoolConfig {
        capacity: 0,
        ..PoolConfig::default()
    });
    assert!(what.contains("capacity"), "{what}");
    let (_, what) = invalid(PoolConfig {
        data_room: 0,
        headroom: 0,
        ..PoolConfig::default()
    });
    assert!(what.contains("room"), "{what}");
    let (name, what) = invalid(PoolConfig {
        name: "big".into(),
        capacity: usize::MAX / 2,
        ..PoolConfig::default()
    });
    assert_eq!(name, "big");
    assert!(what.contains("overflows"), "{what}");
}

#[test]
fn many_pools_come_and_go_on_one_thread() {
    // Miri takes a while per pool: fewer there.
    for i in 0..if cfg!(miri) { 20 } else { 200 } {
        let p = pool(64);
        let v: Vec<_> = (0..i % 50).map(|_| p.alloc().unwrap()).collect();
        drop(v);
        p.assert_whole();
    }
}

#[test]
fn pool_and_buffers_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool>();
    send_sync::<PoolBuf>();
}

#[test]
fn header_views_read_and_write_a_pool_buffer() {
    use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView};
    use tpa::wire::MacAddr;

    let p = pool(8);
    let mut b = p.alloc().unwrap();
    b.append(60).unwrap().fill(0);
    let eth = Ethernet {
        dst: MacAddr::BROADCAST,
        src: MacAddr([2, 0, 0, 0, 0, 1]),
        ether_type: EtherType::Arp,
    };
    eth.emit(b.data_mut()).unwrap();
    {
        let view = EthernetView::new(&mut b).unwrap();
        assert_eq!(view.ether_type(), EtherType::Arp);
    }
    // A view may also own the buffer.
    let view = EthernetView::new(b).unwrap();
    assert!(view.dst().is_broadcast());
    drop(view);
    p.assert_whole();
}

mod model {
    //! Buffer geometry against a plain model: (headroom, data, tailroom).
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Prepend(usize, u8),
        Append(usize, u8),
        TrimFront(usize),
        TrimBack(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..80usize, any::<u8>()).prop_map(|(n, v)| Op::Prepend(n, v)),
            (0..200usize, any::<u8>()).prop_map(|(n, v)| Op::Append(n, v)),
            (0..120usize).prop_map(Op::TrimFront),
            (0..120usize).prop_map(Op::TrimBack),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // Miri runs each case thousands of times slower, and a case here
            // is up to 60 operations over the whole buffer (7 minutes for 16).
            cases: if cfg!(miri) { 4 } else { ProptestConfig::default().cases },
            ..ProptestConfig::default()
        })]

        #[test]
        fn geometry_matches_model(ops in proptest::collection::vec(op(), 0..60)) {
            let p = Pool::new(PoolConfig {
                capacity: 4,
                data_room: 300,
                headroom: 64,
                ..PoolConfig::default()
            })
            .unwrap();
            let mut b = p.alloc().unwrap();
            let (mut head, mut data, room) = (64usize, Vec::<u8>::new(), 364usize);
            for op in ops {
                let tail = room - head - data.len();
                match op {
                    Op::Prepend(n, v) => {
                        let r = b.prepend(n).map(|s| s.fill(v));
                        prop_assert_eq!(r.is_ok(), n <= head);
                        if n <= head {
                            head -= n;
                            data.splice(0..0, std::iter::repeat_n(v, n));
                        }
                    }
                    Op::Append(n, v) => {
                        let r = b.append(n).map(|s| s.fill(v));
                        prop_assert_eq!(r.is_ok(), n <= tail);
                        if n <= tail {
                            data.extend(std::iter::repeat_n(v, n));
                        }
                    }
                    Op::TrimFront(n) => {
                        prop_assert_eq!(b.trim_front(n).is_ok(), n <= data.len());
                        if n <= data.len() {
                            head += n;
                            data.drain(..n);
                        }
                    }
                    Op::TrimBack(n) => {
                        prop_assert_eq!(b.trim_back(n).is_ok(), n <= data.len());
                        if n <= data.len() {
                            data.truncate(data.len() - n);
                        }
                    }
                }
                prop_assert_eq!(b.headroom(), head);
                prop_assert_eq!(b.data(), &data[..]);
                prop_assert_eq!(b.tailroom(), room - head - data.len());
            }
            drop(b);
            prop_assert!(p.is_whole(), "{:?}", p.stats());
        }
    }
}

#[test]
#[should_panic(expected = "1 of 8 buffers not returned")]
fn assert_whole_names_the_leak() {
    let p = pool(8);
    let _held = p.alloc().unwrap();
    p.assert_whole();
}

/// Free 2 MiB huge pages on this machine, from /proc/meminfo.
fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri the pool's region comes from the global allocator"
)]
fn huge_pages_are_used_when_free_and_skipped_silently_otherwise() {
    // 512 buffers of 2240 bytes: 1.1 MiB, one huge page.
    let config = PoolConfig {
        capacity: 512,
        ..PoolConfig::default()
    };
    let free_before = free_huge_pages();
    let p = Pool::new(config.clone()).unwrap();
    if free_before >= 1 {
        assert!(p.is_huge(), "{free_before} huge pages were free");
    } else {
        eprintln!("no free huge pages: checking the fallback only");
        assert!(!p.is_huge());
    }
    let no_huge = Pool::new(PoolConfig {
        huge_pages: false,
        ..config
    })
    .unwrap();
    assert!(!no_huge.is_huge());
    for pool in [&p, &no_huge] {
        let v: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
        assert_eq!(v.len(), 512);
        drop(v);
        pool.assert_whole();
    }
}
