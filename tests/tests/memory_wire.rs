//! MemoryWire: delivery, RSS, backpressure, every impairment, determinism,
//! threads, and that no buffer leaks.

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::memory::{
    Corruption, Direction, End, Impairment, LaneStats, MemoryPort, MemoryWire, Partition,
    VirtualClock, WireConfig,
};
use tpa::port::{Burst, Port, PortError};
use tpa::time::{TimeSource, TimerWheel};

/// An Ethernet + IPv4 + UDP frame from 10.0.0.1:`sport` to 10.0.0.2:`dport`
/// carrying `seq` in the first payload bytes, `len` bytes in all.
fn udp_frame(seq: u32, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let len = len.max(46);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x0b]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[46..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_add(seq) as u8;
    }
    f
}

fn seq_of(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[42..46].try_into().unwrap())
}

fn buf_with(port: &mut MemoryPort, bytes: &[u8]) -> PoolBuf {
    let mut b = port.alloc().expect("pool has buffers");
    b.extend_from_slice(bytes).unwrap();
    b
}

/// Sends one frame, asserting the wire took it.
fn send(port: &mut MemoryPort, bytes: &[u8]) {
    let mut tx: Burst<PoolBuf, 1> = Burst::new();
    tx.push(buf_with(port, bytes));
    assert_eq!(port.tx_burst(&mut tx), 1);
}

/// Receives everything currently deliverable.
fn recv_all(port: &mut MemoryPort) -> Vec<PoolBuf> {
    let mut out = Vec::new();
    let mut rx: Burst<PoolBuf, 32> = Burst::new();
    while port.rx_burst(&mut rx) > 0 {
        out.extend(rx.drain());
    }
    out
}

/// Asserts, when dropped at the end of a test, that every buffer of the pool
/// came back. Declare it before the wire so it is dropped after it.
struct LeakCheck(Pool);

impl Drop for LeakCheck {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.0.assert_whole();
        }
    }
}

/// `n` buffers, or at most 1024 under Miri, where building a pool takes time
/// in proportion to its buffers (the tests need far fewer than they ask).
fn capacity(n: usize) -> usize {
    if cfg!(miri) {
        n.min(1024)
    } else {
        n
    }
}

/// `cfg` with a fresh pool of its `pool_capacity`, and the leak check on it.
fn leak_checked(mut cfg: WireConfig) -> (LeakCheck, WireConfig) {
    cfg.pool_capacity = capacity(cfg.pool_capacity);
    let pool = Pool::new(PoolConfig {
        capacity: cfg.pool_capacity,
        ..PoolConfig::default()
    })
    .unwrap();
    cfg.pool = Some(pool.clone());
    (LeakCheck(pool), cfg)
}

/// A single-queue wire config with impairment `imp` on A → B, seeded, on a
/// virtual clock, with its leak check.
fn virtual_config(seed: u64, imp: Impairment) -> (WireConfig, VirtualClock, LeakCheck) {
    let clock = VirtualClock::new();
    let (leaks, cfg) = leak_checked(WireConfig {
        seed,
        a_to_b: imp,
        clock: clock.clone().into(),
        ring_size: 4096,
        pool_capacity: 16384,
        ..WireConfig::default()
    });
    (cfg, clock, leaks)
}

/// Sends `n` 100-byte frames A → B in bursts of 32, receiving after each
/// burst, and returns what B got (data of each received frame, in order) and
/// the A → B counters. Checks conservation and that no buffer leaked.
fn run(seed: u64, imp: Impairment, n: u32) -> (Vec<Vec<u8>>, LaneStats) {
    let (cfg, _clock, _leaks) = virtual_config(seed, imp);
    let wire = MemoryWire::new(cfg).unwrap();
    let mut a = wire.port(End::A, 0).unwrap();
    let mut b = wire.port(End::B, 0).unwrap();
    let mut got = Vec::new();
    let mut tx: Burst<PoolBuf, 32> = Burst::new();
    let mut seq = 0;
    while seq < n {
        while !tx.is_full() && seq < n {
            tx.push(buf_with(&mut a, &udp_frame(seq, 1000, 2000, 100)));
            seq += 1;
        }
        a.tx_burst(&mut tx);
        assert!(tx.is_empty(), "ring large enough for the test");
        got.extend(recv_all(&mut b).iter().map(|p| p.data().to_vec()));
        if let Some(c) = wire.clock().as_virtual() {
            c.advance(Duration::from_micros(10));
        }
    }
    // Let everything delayed or held back arrive.
    if let Some(c) = wire.clock().as_virtual() {
        c.advance(Duration::from_secs(10));
    }
    got.extend(recv_all(&mut b).iter().map(|p| p.data().to_vec()));
    let s = wire.stats(Direction::AToB);
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(
        s.sent + s.duplicated,
        s.delivered + s.dropped.total(),
        "conservation: {s:?}"
    );
    (got, s)
}

fn within(actual: u64, expected: f64, tolerance: f64, what: &str, seed: u64) {
    assert!(
        (actual as f64 - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} ± {tolerance} (seed {seed})"
    );
}

#[test]
fn frames_cross_both_ways_intact() {
    let (_leaks, cfg) = leak_checked(WireConfig::default());
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    assert_eq!(a.caps().name, "memory:a/q0");
    assert_eq!(b.caps().name, "memory:b/q0");
    assert_eq!(a.caps().mac.to_string(), "02:00:00:00:00:0a");
    assert_eq!(b.caps().mtu, 1500);
    assert!(!a.caps().rss);
    for i in 0..100 {
        send(&mut a, &udp_frame(i, 1, 2, 60 + i as usize));
        send(&mut b, &udp_frame(1000 + i, 2, 1, 60));
    }
    let at_b = recv_all(&mut b);
    let at_a = recv_all(&mut a);
    assert_eq!(at_b.len(), 100);
    assert_eq!(at_a.len(), 100);
    for (i, p) in at_b.iter().enumerate() {
        assert_eq!(p.data(), &udp_frame(i as u32, 1, 2, 60 + i)[..]);
        assert_eq!(p.meta().rx_queue, 0);
        assert_eq!(p.meta().rss_hash, None);
    }
    assert!(at_a.iter().all(|p| seq_of(p.data()) >= 1000));
    let pool = a.pool().clone();
    drop((at_a, at_b, a, b));
    pool.assert_whole();
}

#[test]
fn received_metadata_is_fresh() {
    let (_leaks, cfg) = leak_checked(WireConfig::default());
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let mut tx: Burst<PoolBuf, 1> = Burst::new();
    let mut p = buf_with(&mut a, &udp_frame(1, 1, 2, 64));
    p.meta_mut().flow_mark = Some(9);
    p.meta_mut().layers.l3 = 14;
    p.meta_mut().rss_hash = Some(0x1234);
    p.meta_mut().rx_queue = 7;
    tx.push(p);
    a.tx_burst(&mut tx);
    let got = recv_all(&mut b);
    assert_eq!(got[0].meta().flow_mark, None);
    assert_eq!(got[0].meta().layers, Default::default());
    assert_eq!(
        got[0].meta().rss_hash,
        None,
        "no hash on a single-queue wire"
    );
    assert_eq!(got[0].meta().rx_queue, 0);
}

#[test]
fn a_single_queue_wire_hashes_when_asked() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        rss_hash: true,
        ..WireConfig::default()
    });
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &udp_frame(1, 1000, 2000, 64));
    send(&mut a, &udp_frame(2, 1000, 2000, 64));
    send(&mut a, &udp_frame(3, 1000, 2001, 64));
    let got = recv_all(&mut b);
    let h: Vec<u32> = got
        .iter()
        .map(|p| p.meta().rss_hash.expect("a hash when asked"))
        .collect();
    assert_eq!(h[0], h[1], "one flow, one hash");
    assert_ne!(h[0], h[2], "another port, another hash");
    assert!(got.iter().all(|p| p.meta().rx_queue == 0));
}

#[test]
fn rss_spreads_flows_and_keeps_each_on_one_queue_both_ways() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        queues: 4,
        ..WireConfig::default()
    });
    let wire = MemoryWire::new(cfg).unwrap();
    let mut a = wire.ports(End::A).unwrap();
    let mut b = wire.ports(End::B).unwrap();
    assert_eq!(b[3].caps().name, "memory:b/q3");
    assert!(b[0].caps().rss);
    assert_eq!(b[2].caps().queue, 2);
    for flow in 0..64u16 {
        for i in 0..4 {
            send(
                &mut a[0],
                &udp_frame(u32::from(flow) * 10 + i, 10000 + flow, 80, 64),
            );
        }
    }
    let mut queue_of_flow = HashMap::new();
    let mut per_queue = [0; 4];
    for (q, port) in b.iter_mut().enumerate() {
        for p in recv_all(port) {
            let flow = seq_of(p.data()) / 10;
            assert_eq!(p.meta().rx_queue as usize, q);
            let h = p.meta().rss_hash.expect("an IP frame has a hash");
            assert_eq!(h as usize % 4, q);
            assert_eq!(
                *queue_of_flow.entry(flow).or_insert(q),
                q,
                "flow {flow} split"
            );
            per_queue[q] += 1;
        }
    }
    assert_eq!(queue_of_flow.len(), 64);
    assert!(per_queue.iter().all(|&n| n > 0), "{per_queue:?}");
    // Replies (ports and addresses swapped) come back on the same queue index.
    for flow in 0..64u16 {
        let mut reply = udp_frame(u32::from(flow) * 10, 80, 10000 + flow, 64);
        reply[26..30].copy_from_slice(&[10, 0, 0, 2]);
        reply[30..34].copy_from_slice(&[10, 0, 0, 1]);
        send(&mut b[1], &reply);
    }
    let mut replies = 0;
    for (q, port) in a.iter_mut().enumerate() {
        for p in recv_all(port) {
            let flow = seq_of(p.data()) / 10;
            assert_eq!(queue_of_flow[&flow], q, "reply of flow {flow}");
            replies += 1;
        }
    }
    assert_eq!(replies, 64, "every reply arrived");
    // Non-IP frames go to queue 0.
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    send(&mut a[2], &arp);
    let got = recv_all(&mut b[0]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta().rss_hash, None);
}

#[test]
fn full_ring_pushes_back_instead_of_dropping() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        ring_size: 8,
        ..WireConfig::default()
    });
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let mut tx: Burst<PoolBuf, 32> = Burst::new();
    for i in 0..20 {
        tx.push(buf_with(&mut a, &udp_frame(i, 1, 2, 64)));
    }
    assert_eq!(a.tx_burst(&mut tx), 8);
    assert_eq!(tx.len(), 12);
    assert_eq!(
        seq_of(tx.as_slice()[0].data()),
        8,
        "the unsent stay in order"
    );
    assert_eq!(a.tx_burst(&mut tx), 0);
    assert_eq!(recv_all(&mut b).len(), 8);
    assert_eq!(a.tx_burst(&mut tx), 8);
    let s = a.wire().stats(Direction::AToB);
    assert_eq!((s.sent, s.delivered, s.in_flight), (16, 8, 8));
}

#[test]
fn oversize_frames_are_dropped_and_counted() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        mtu: 1000,
        ..WireConfig::default()
    });
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &udp_frame(0, 1, 2, 1000 + 22));
    send(&mut a, &udp_frame(1, 1, 2, 1000 + 23));
    let got = recv_all(&mut b);
    assert_eq!(got.len(), 1);
    assert_eq!(seq_of(got[0].data()), 0);
    assert_eq!(a.wire().stats(Direction::AToB).dropped.oversize, 1);
}

/// One burst mixing frames that fit with one that does not: the transmit
/// path's single look at each packet (which stands in for the wire's own
/// length check when everything fits) sends the burst the long way, the
/// long frame is dropped and counted, the others arrive in order.
#[test]
fn an_oversize_frame_inside_a_burst_is_dropped_alone() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        mtu: 1000,
        ..WireConfig::default()
    });
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let mut tx: Burst<PoolBuf, 4> = Burst::new();
    for (seq, len) in [(0, 1000 + 22), (1, 1000 + 23), (2, 60), (3, 1000 + 22)] {
        let frame = udp_frame(seq, 1, 2, len);
        tx.push(buf_with(&mut a, &frame));
    }
    assert_eq!(a.tx_burst(&mut tx), 4, "the oversize frame counts as taken");
    let seqs: Vec<u32> = recv_all(&mut b).iter().map(|p| seq_of(p.data())).collect();
    assert_eq!(seqs, [0, 2, 3]);
    assert_eq!(a.wire().stats(Direction::AToB).dropped.oversize, 1);
}

#[test]
fn ports_exist_once_and_queues_are_checked() {
    let (_leaks, cfg) = leak_checked(WireConfig::default());
    let wire = MemoryWire::new(cfg).unwrap();
    let a = wire.port(End::A, 0).unwrap();
    assert!(matches!(wire.port(End::A, 0), Err(PortError::Busy { .. })));
    assert!(matches!(
        wire.port(End::B, 1),
        Err(PortError::InvalidConfig { .. })
    ));
    drop(a);
    assert!(wire.port(End::A, 0).is_ok());
    assert!(MemoryWire::new(WireConfig {
        queues: 0,
        ..WireConfig::default()
    })
    .is_err());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "statistical, over 10,000 packets and more: too slow under Miri"
)]
fn drop_rate_matches_configuration() {
    for seed in [1, 2, 3] {
        let imp = Impairment {
            drop: 0.1,
            ..Impairment::default()
        };
        let (got, s) = run(seed, imp, 100_000);
        within(s.dropped.random, 10_000.0, 600.0, "drops", seed);
        assert_eq!(got.len() as u64, 100_000 - s.dropped.random);
        // Survivors arrive in order.
        assert!(got.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])));
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "statistical, over 10,000 packets and more: too slow under Miri"
)]
fn each_impairment_rate_matches_configuration() {
    let seed = 11;
    let imp = Impairment {
        duplicate: 0.05,
        truncate: 0.02,
        corrupt: 0.03,
        reorder: 0.04,
        ..Impairment::default()
    };
    let (got, s) = run(seed, imp, 100_000);
    within(s.duplicated, 5_000.0, 400.0, "duplicated", seed);
    within(s.truncated, 2_000.0, 250.0, "truncated", seed);
    within(s.corrupted, 3_000.0, 300.0, "corrupted", seed);
    within(s.reordered, 4_000.0, 350.0, "reordered", seed);
    assert_eq!(got.len() as u64, 100_000 + s.duplicated);
}

#[test]
fn same_seed_same_outcome_other_seed_differs() {
    let imp = Impairment {
        drop: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        truncate: 0.05,
        corrupt: 0.05,
        corrupt_bits: 3,
        jitter: Duration::from_micros(30),
        ..Impairment::default()
    };
    let n = if cfg!(miri) { 300 } else { 5_000 };
    let (one, _) = run(77, imp.clone(), n);
    let (two, _) = run(77, imp.clone(), n);
    let (three, _) = run(78, imp, n);
    assert_eq!(one, two, "seed 77 twice");
    assert_ne!(one, three, "seeds 77 and 78");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "statistical, over 10,000 packets and more: too slow under Miri"
)]
fn reorder_delivers_held_packets_after_later_ones() {
    let imp = Impairment {
        reorder: 0.2,
        reorder_distance: 3,
        ..Impairment::default()
    };
    let (got, s) = run(5, imp, 10_000);
    let seqs: Vec<u32> = got.iter().map(|d| seq_of(d)).collect();
    let inversions = seqs.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 1000, "only {inversions} inversions");
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..10_000).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    // Only held-back packets arrive later than their place; none very late.
    let latest = seqs
        .iter()
        .enumerate()
        .map(|(pos, &s)| pos as i64 - i64::from(s))
        .max()
        .unwrap();
    assert!((1..=32).contains(&latest), "displacement {latest}");
    assert!(s.reordered > 1000);
}

#[test]
fn a_held_back_packet_lets_exactly_its_distance_pass() {
    let (cfg, _, _leaks) = virtual_config(1, Impairment::default());
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let wire = a.wire();
    for followers in 2..=5u32 {
        wire.set_impairment(
            Direction::AToB,
            Impairment {
                reorder: 1.0,
                reorder_distance: 1,
                ..Impairment::default()
            },
        );
        // With distance 1 the draw is fixed: exactly one packet passes.
        send(&mut a, &udp_frame(0, 1, 2, 64));
        wire.set_impairment(Direction::AToB, Impairment::default());
        for seq in 1..=followers {
            send(&mut a, &udp_frame(seq, 1, 2, 64));
        }
        let order: Vec<u32> = recv_all(&mut b).iter().map(|p| seq_of(p.data())).collect();
        let mut want = vec![1, 0];
        want.extend(2..=followers);
        assert_eq!(order, want);
    }
}

#[test]
fn held_back_packet_is_released_after_its_timeout() {
    let imp = Impairment {
        reorder: 1.0,
        reorder_distance: 5,
        reorder_timeout: Duration::from_millis(2),
        ..Impairment::default()
    };
    let (cfg, clock, _leaks) = virtual_config(1, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &udp_frame(0, 1, 2, 64));
    assert!(recv_all(&mut b).is_empty());
    clock.advance(Duration::from_micros(1999));
    assert!(recv_all(&mut b).is_empty());
    clock.advance(Duration::from_micros(1));
    assert_eq!(recv_all(&mut b).len(), 1);
}

#[test]
fn duplicate_delivers_every_packet_twice() {
    let imp = Impairment {
        duplicate: 1.0,
        ..Impairment::default()
    };
    let (got, s) = run(3, imp, 1000);
    assert_eq!(got.len(), 2000);
    for pair in got.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    assert_eq!(s.duplicated, 1000);
}

#[test]
fn corrupt_flips_exactly_the_configured_bits() {
    for (bits, len) in [(1u32, 100usize), (3, 100), (64, 1500), (64, 46)] {
        let imp = Impairment {
            corrupt: 1.0,
            corrupt_bits: bits,
            ..Impairment::default()
        };
        let (cfg, _, _leaks) = virtual_config(u64::from(bits), imp);
        let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
        for seq in 0..200 {
            let frame = udp_frame(seq, 1, 2, len);
            send(&mut a, &frame);
            let got = recv_all(&mut b);
            assert_eq!(got.len(), 1);
            let flipped: u32 = frame
                .iter()
                .zip(got[0].data())
                .map(|(x, y)| (x ^ y).count_ones())
                .sum();
            assert_eq!(flipped, bits, "bits {bits}, len {len}, seq {seq}");
        }
    }
    // A packet with fewer bits than asked has them all flipped.
    let imp = Impairment {
        corrupt: 1.0,
        corrupt_bits: 64,
        ..Impairment::default()
    };
    let (cfg, _, _leaks) = virtual_config(9, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &[0x0f, 0xf0]);
    assert_eq!(recv_all(&mut b)[0].data(), &[0xf0, 0x0f]);
}

#[test]
fn corruption_caught_by_the_fcs_is_a_counted_drop_and_the_rest_arrive_intact() {
    let imp = Impairment {
        corrupt: 0.3,
        corruption: Corruption::Fcs,
        ..Impairment::default()
    };
    let (cfg, _, _leaks) = virtual_config(21, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let mut arrived = 0u64;
    for seq in 0..1000 {
        let frame = udp_frame(seq, 1, 2, 200);
        send(&mut a, &frame);
        for got in recv_all(&mut b) {
            // What passes the frame check is what was sent, bit for bit.
            assert_eq!(got.data(), &frame[..], "seq {seq}");
            arrived += 1;
        }
    }
    let s = a.wire().stats(Direction::AToB);
    assert!((200..400).contains(&s.corrupted), "{s:?}");
    assert_eq!(s.dropped.fcs, s.corrupted, "{s:?}");
    assert_eq!(arrived + s.dropped.total(), 1000, "{s:?}");
}

#[test]
fn truncate_shortens_keeping_the_prefix() {
    let imp = Impairment {
        truncate: 1.0,
        ..Impairment::default()
    };
    let (cfg, _, _leaks) = virtual_config(4, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let mut lengths = Vec::new();
    for seq in 0..500 {
        let frame = udp_frame(seq, 1, 2, 300);
        send(&mut a, &frame);
        let got = recv_all(&mut b);
        let d = got[0].data();
        assert!(d.len() < frame.len());
        assert_eq!(d, &frame[..d.len()]);
        lengths.push(d.len());
    }
    assert!(lengths.contains(&0) || lengths.iter().any(|&l| l < 30));
    assert!(lengths.iter().any(|&l| l > 250));
    assert_eq!(a.wire().stats(Direction::AToB).truncated, 500);
}

#[test]
fn partition_blocks_only_the_chosen_direction_and_heals() {
    let (_leaks, cfg) = leak_checked(WireConfig::default());
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let wire = a.wire();
    wire.set_partition(Partition::AToB);
    assert_eq!(wire.partition(), Partition::AToB);
    send(&mut a, &udp_frame(1, 1, 2, 64));
    send(&mut b, &udp_frame(2, 2, 1, 64));
    assert!(recv_all(&mut b).is_empty());
    assert_eq!(recv_all(&mut a).len(), 1);
    wire.set_partition(Partition::Both);
    send(&mut b, &udp_frame(3, 2, 1, 64));
    assert!(recv_all(&mut a).is_empty());
    wire.set_partition(Partition::None);
    send(&mut a, &udp_frame(4, 1, 2, 64));
    send(&mut b, &udp_frame(5, 2, 1, 64));
    assert_eq!(seq_of(recv_all(&mut b)[0].data()), 4);
    assert_eq!(seq_of(recv_all(&mut a)[0].data()), 5);
    assert_eq!(wire.stats(Direction::AToB).dropped.partition, 1);
    assert_eq!(wire.stats(Direction::BToA).dropped.partition, 1);
}

#[test]
fn delay_holds_packets_until_the_clock_passes() {
    let imp = Impairment {
        delay: Duration::from_millis(5),
        ..Impairment::default()
    };
    let (cfg, clock, _leaks) = virtual_config(1, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &udp_frame(0, 1, 2, 64));
    clock.advance(Duration::from_millis(1));
    send(&mut a, &udp_frame(1, 1, 2, 64));
    clock.advance(Duration::from_micros(3999));
    assert!(recv_all(&mut b).is_empty());
    assert_eq!(a.wire().stats(Direction::AToB).in_flight, 2);
    clock.advance(Duration::from_micros(1));
    let got = recv_all(&mut b);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta().rx_timestamp_ns, 5_000_000);
    clock.advance(Duration::from_millis(1));
    assert_eq!(seq_of(recv_all(&mut b)[0].data()), 1);
}

#[test]
fn jitter_stays_within_its_bounds() {
    let imp = Impairment {
        delay: Duration::from_micros(100),
        jitter: Duration::from_micros(50),
        ..Impairment::default()
    };
    let (cfg, clock, _leaks) = virtual_config(8, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    for seq in 0..100 {
        send(&mut a, &udp_frame(seq, 1, 2, 64));
    }
    let mut arrivals = Vec::new();
    for t in 0..=200u64 {
        for p in recv_all(&mut b) {
            assert_eq!(p.meta().rx_timestamp_ns, t * 1000);
            arrivals.push(t);
        }
        clock.advance(Duration::from_micros(1));
    }
    assert_eq!(arrivals.len(), 100);
    assert!(
        arrivals.iter().all(|&t| (100..=150).contains(&t)),
        "{arrivals:?}"
    );
    assert!(arrivals.first() != arrivals.last());
}

#[test]
fn bandwidth_limit_paces_and_tail_drops() {
    let imp = Impairment {
        bandwidth_bps: Some(1_000_000),
        queue_packets: Some(10),
        ..Impairment::default()
    };
    let (cfg, clock, _leaks) = virtual_config(1, imp);
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    // 1000-byte frames take 8 ms each at 1 Mbit/s.
    for seq in 0..100 {
        send(&mut a, &udp_frame(seq, 1, 2, 1000));
    }
    let s = a.wire().stats(Direction::AToB);
    assert_eq!(s.dropped.queue, 90);
    assert_eq!(s.sent, 100);
    clock.advance(Duration::from_micros(7999));
    assert!(recv_all(&mut b).is_empty());
    clock.advance(Duration::from_micros(1));
    assert_eq!(seq_of(recv_all(&mut b)[0].data()), 0);
    // Once one packet has left the queue, one more fits.
    send(&mut a, &udp_frame(100, 1, 2, 1000));
    send(&mut a, &udp_frame(101, 1, 2, 1000));
    assert_eq!(a.wire().stats(Direction::AToB).dropped.queue, 91);
    clock.advance(Duration::from_millis(80));
    let seqs: Vec<u32> = recv_all(&mut b).iter().map(|p| seq_of(p.data())).collect();
    assert_eq!(seqs, (1..10).chain([100]).collect::<Vec<_>>());
}

#[test]
fn bandwidth_byte_limit_tail_drops() {
    let imp = Impairment {
        bandwidth_bps: Some(8_000_000),
        queue_bytes: Some(2500),
        ..Impairment::default()
    };
    let (cfg, _, _leaks) = virtual_config(1, imp);
    let (mut a, _b) = MemoryWire::pair(cfg).unwrap();
    for seq in 0..10 {
        send(&mut a, &udp_frame(seq, 1, 2, 1000));
    }
    assert_eq!(a.wire().stats(Direction::AToB).dropped.queue, 8);
}

#[test]
fn packets_in_flight_return_to_the_pool_when_the_wire_goes() {
    let pool = Pool::new(PoolConfig {
        capacity: capacity(4096),
        ..PoolConfig::default()
    })
    .unwrap();
    let imp = Impairment {
        delay: Duration::from_millis(1),
        reorder: 0.5,
        duplicate: 0.3,
        ..Impairment::default()
    };
    let clock = VirtualClock::new();
    let cfg = WireConfig {
        pool: Some(pool.clone()),
        clock: clock.clone().into(),
        a_to_b: imp,
        ..WireConfig::default()
    };
    let wire = MemoryWire::new(cfg).unwrap();
    let mut a = wire.port(End::A, 0).unwrap();
    let mut b = wire.port(End::B, 0).unwrap();
    for seq in 0..300 {
        send(&mut a, &udp_frame(seq, 1, 2, 64));
        send(&mut b, &udp_frame(seq, 2, 1, 64));
    }
    clock.advance(Duration::from_millis(2));
    let some = recv_all(&mut b);
    assert!(!some.is_empty());
    // Held-back packets, the new delayed one and all of B → A are on the wire.
    send(&mut a, &udp_frame(999, 1, 2, 64));
    assert!(wire.stats(Direction::AToB).in_flight > 1);
    assert!(wire.stats(Direction::BToA).in_flight >= 300);
    assert!(pool.in_use() > some.len() + 300);
    drop((a, b, wire, some));
    pool.assert_whole();
}

#[test]
fn clear_discards_packets_on_the_wire() {
    let (_leaks, cfg) = leak_checked(WireConfig::default());
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    for seq in 0..10 {
        send(&mut a, &udp_frame(seq, 1, 2, 64));
    }
    let wire = a.wire();
    assert_eq!(wire.stats(Direction::AToB).in_flight, 10);
    wire.clear();
    assert!(recv_all(&mut b).is_empty());
    wire.pool().assert_whole();
}

/// Sends frames numbered `0..n` (64 bytes, UDP 1 to 2) from `port` on a
/// thread of its own, in bursts of 32, retrying what the wire pushes back.
fn spawn_sender(mut port: MemoryPort, n: u32) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut tx: Burst<PoolBuf, 32> = Burst::new();
        let mut seq = 0;
        while seq < n || !tx.is_empty() {
            while !tx.is_full() && seq < n {
                let Some(mut p) = port.alloc() else { break };
                p.extend_from_slice(&udp_frame(seq, 1, 2, 64)).unwrap();
                tx.push(p);
                seq += 1;
            }
            if port.tx_burst(&mut tx) == 0 {
                thread::yield_now();
            }
        }
    })
}

#[test]
fn ends_on_two_threads_exchange_packets_in_order() {
    let pool = Pool::new(PoolConfig {
        capacity: capacity(4096),
        cache_size: 64,
        ..PoolConfig::default()
    })
    .unwrap();
    let (_leaks, cfg) = leak_checked(WireConfig {
        pool: Some(pool.clone()),
        ring_size: 256,
        ..WireConfig::default()
    });
    let (a, mut b) = MemoryWire::pair(cfg).unwrap();
    const N: u32 = if cfg!(miri) { 1_000 } else { 100_000 };
    let sender = spawn_sender(a, N);
    let receiver = thread::spawn(move || {
        let mut rx: Burst<PoolBuf, 32> = Burst::new();
        let mut next = 0;
        while next < N {
            if b.rx_burst(&mut rx) == 0 {
                thread::yield_now();
            }
            for p in rx.drain() {
                assert_eq!(seq_of(p.data()), next);
                next += 1;
            }
        }
    });
    sender.join().unwrap();
    receiver.join().unwrap();
    pool.assert_whole();
}

#[test]
fn a_full_queue_does_not_hold_up_the_others() {
    // Find two source ports whose flows land on different queues.
    let (_leaks_probe, cfg_probe) = leak_checked(WireConfig {
        queues: 2,
        ..WireConfig::default()
    });
    let probe = MemoryWire::new(cfg_probe).unwrap();
    let mut pa = probe.port(End::A, 0).unwrap();
    let mut pb = probe.ports(End::B).unwrap();
    let mut sport_of_queue = [None, None];
    for sport in 1..100u16 {
        send(&mut pa, &udp_frame(0, sport, 80, 64));
        for (q, port) in pb.iter_mut().enumerate() {
            if !recv_all(port).is_empty() {
                sport_of_queue[q].get_or_insert(sport);
            }
        }
    }
    let [Some(full), Some(other)] = sport_of_queue else {
        panic!("no flows for both queues: {sport_of_queue:?}")
    };
    let clock = VirtualClock::new();
    let (_leaks, cfg) = leak_checked(WireConfig {
        queues: 2,
        ring_size: 4,
        clock: clock.clone().into(),
        a_to_b: Impairment {
            delay: Duration::from_millis(1),
            ..Impairment::default()
        },
        ..WireConfig::default()
    });
    let wire = MemoryWire::new(cfg).unwrap();
    let mut a = wire.port(End::A, 0).unwrap();
    let mut b = wire.ports(End::B).unwrap();
    for seq in 0..6 {
        send(&mut a, &udp_frame(seq, full, 80, 64));
    }
    for seq in 6..8 {
        send(&mut a, &udp_frame(seq, other, 80, 64));
    }
    // Delayed packets count against ring_size × queues: the wire pushes back.
    let mut tx: Burst<PoolBuf, 1> = Burst::new();
    tx.push(buf_with(&mut a, &udp_frame(8, other, 80, 64)));
    assert_eq!(a.tx_burst(&mut tx), 0);
    clock.advance(Duration::from_millis(1));
    // Queue 0's ring takes 4 of its 6; queue 1 gets its packets regardless.
    let seqs = |port: &mut MemoryPort| -> Vec<u32> {
        recv_all(port).iter().map(|p| seq_of(p.data())).collect()
    };
    assert_eq!(seqs(&mut b[1]), [6, 7]);
    let mut rx: Burst<PoolBuf, 32> = Burst::new();
    assert_eq!(b[0].rx_burst(&mut rx), 4);
    assert_eq!(b[0].rx_burst(&mut rx), 2);
    let first: Vec<u32> = rx.as_slice().iter().map(|p| seq_of(p.data())).collect();
    assert_eq!(first, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn impair_both_applies_to_each_direction() {
    let (_leaks, cfg) = leak_checked(WireConfig::default().impair_both(Impairment {
        drop: 1.0,
        ..Impairment::default()
    }));
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    send(&mut a, &udp_frame(0, 1, 2, 64));
    send(&mut b, &udp_frame(1, 2, 1, 64));
    assert!(recv_all(&mut a).is_empty() && recv_all(&mut b).is_empty());
    let wire = a.wire();
    assert_eq!(wire.stats(Direction::AToB).dropped.random, 1);
    assert_eq!(wire.stats(Direction::BToA).dropped.random, 1);
    assert_eq!(wire.impairment(Direction::BToA).drop, 1.0);
}

#[test]
fn impaired_wire_between_threads_conserves_packets_and_buffers() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        seed: 99,
        ring_size: 256,
        pool_capacity: 4096,
        a_to_b: Impairment {
            drop: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            delay: Duration::from_micros(50),
            jitter: Duration::from_micros(20),
            ..Impairment::default()
        },
        ..WireConfig::default()
    });
    let (a, mut b) = MemoryWire::pair(cfg).unwrap();
    let wire = a.wire();
    const N: u32 = if cfg!(miri) { 1_000 } else { 20_000 };
    let sender = spawn_sender(a, N);
    let receiver = thread::spawn(move || {
        let mut rx: Burst<PoolBuf, 32> = Burst::new();
        let mut got = 0u64;
        // Held-back packets leave after their 10 ms timeout at the latest;
        // the deadline only keeps a broken wire from hanging the test.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if b.rx_burst(&mut rx) == 0 {
                thread::yield_now();
            }
            got += rx.len() as u64;
            rx.clear();
            let s = b.wire().stats(Direction::AToB);
            if s.sent == u64::from(N) && s.in_flight == 0 {
                break;
            }
        }
        got
    });
    sender.join().unwrap();
    let got = receiver.join().unwrap();
    let s = wire.stats(Direction::AToB);
    assert_eq!(s.sent, u64::from(N));
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(got, s.delivered);
    assert_eq!(
        s.sent + s.duplicated,
        s.delivered + s.dropped.total(),
        "{s:?}"
    );
}

#[test]
fn timers_and_delayed_packets_come_due_at_the_same_virtual_instants() {
    // One virtual time for the wire and a timer wheel: a timer set for the
    // instant a delayed packet is due fires in the same step as the packet
    // arrives, and neither a step earlier.
    let clock = VirtualClock::new();
    let time = TimeSource::from(clock.clone());
    let delay = Duration::from_millis(3);
    let (_leaks, cfg) = leak_checked(WireConfig {
        a_to_b: Impairment {
            delay,
            ..Impairment::default()
        },
        clock: time.clone(),
        ..WireConfig::default()
    });
    let wire = MemoryWire::new(cfg).unwrap();
    assert!(wire.clock().is_virtual());
    let mut a = wire.port(End::A, 0).unwrap();
    let mut b = wire.port(End::B, 0).unwrap();
    // 1 µs ticks; deadlines are whole ticks, so "due" is exact.
    let mut wheel: TimerWheel<u32> = TimerWheel::new(1_000);
    let delay_ns = delay.as_nanos() as u64;
    let sent_at = [0u64, 1_000_000, 1_250_000];
    let mut next = 0;
    let mut events = Vec::new();
    // Step 50 µs at a time through 6 ms.
    for step in 0..=120u64 {
        let now = step * 50_000;
        clock.advance_to(now);
        assert_eq!(time.now_ns(), now);
        while next < sent_at.len() && sent_at[next] == now {
            send(&mut a, &udp_frame(next as u32, 1, 2, 64));
            wheel.schedule(now + delay_ns, next as u32);
            next += 1;
        }
        let mut fired = Vec::new();
        wheel.advance_to(&time, |seq| fired.push(seq));
        let arrived: Vec<u32> = recv_all(&mut b)
            .iter()
            .map(|p| {
                assert_eq!(p.meta().rx_timestamp_ns, now, "received on the wire's time");
                seq_of(p.data())
            })
            .collect();
        assert_eq!(fired, arrived, "at {now} ns");
        events.extend(fired.iter().map(|&s| (s, now)));
    }
    assert_eq!(
        events,
        [(0, 3_000_000), (1, 4_000_000), (2, 4_250_000)],
        "each exactly `delay` after it was sent"
    );
    assert!(wheel.is_empty());
}

/// A frame of `len` bytes as a chain: the first 60 bytes in a header
/// segment, the rest in a segment shared with the returned handle (as a
/// sender's retransmission queue holds its payload).
fn chained_frame(
    port: &mut MemoryPort,
    len: usize,
) -> (PoolBuf, tpa::buf::Shared<PoolBuf>, Vec<u8>) {
    let bytes = udp_frame(7, 1, 2, len);
    let mut head = buf_with(port, &bytes[..60]);
    let held = buf_with(port, &bytes[60..]).share();
    head.chain_shared(held.clone()).unwrap();
    (head, held, bytes)
}

fn flat(b: &PoolBuf) -> Vec<u8> {
    b.segments().flatten().copied().collect()
}

/// A gathering wire moves a chain as it is: the receiver holds the
/// sender's very payload segment (one more reference, no copy); a wire
/// that does not gather (the default) copies it into one frame.
#[test]
fn a_gathering_wire_delivers_a_chain_as_a_chain() {
    for max_segments in [1, 4] {
        let (_leaks, cfg) = leak_checked(WireConfig {
            max_segments,
            ..WireConfig::default()
        });
        let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
        let (head, held, bytes) = chained_frame(&mut a, 1000);
        let mut tx: Burst<PoolBuf, 1> = Burst::new();
        tx.push(head);
        assert_eq!(a.tx_burst(&mut tx), 1);
        let got = recv_all(&mut b);
        assert_eq!(got.len(), 1);
        assert_eq!(flat(&got[0]), bytes, "max_segments {max_segments}");
        if max_segments == 1 {
            assert_eq!(got[0].segment_count(), 1);
            assert_eq!(held.ref_count(), 1, "the copy holds no reference");
            assert_eq!(a.offload_stats().linearized, 1);
        } else {
            assert_eq!(got[0].segment_count(), 2);
            assert_eq!(
                held.ref_count(),
                2,
                "the receiver holds the sender's segment"
            );
            assert_eq!(a.offload_stats().linearized, 0);
        }
        drop(got);
        assert_eq!(held.ref_count(), 1);
    }
}

/// A chain's length on the wire counts every segment: one longer than the
/// MTU allows is dropped as oversize though its first segment is short.
#[test]
fn a_gathering_wire_measures_chains_whole() {
    let (_leaks, cfg) = leak_checked(WireConfig {
        max_segments: 4,
        mtu: 1000,
        ..WireConfig::default()
    });
    let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
    let (long, _held, _) = chained_frame(&mut a, 1000 + 23);
    let (fits, _held2, bytes) = chained_frame(&mut a, 1000 + 22);
    let mut tx: Burst<PoolBuf, 2> = Burst::new();
    tx.push(long);
    tx.push(fits);
    assert_eq!(a.tx_burst(&mut tx), 2);
    let got = recv_all(&mut b);
    assert_eq!(got.len(), 1);
    assert_eq!(flat(&got[0]), bytes);
    assert_eq!(a.wire().stats(Direction::AToB).dropped.oversize, 1);
}

/// Corruption and truncation never write through a shared segment: a
/// chained frame is copied first, so the sender's held payload stays as
/// it was sent while the receiver gets the damaged copy.
#[test]
fn impairing_a_chain_leaves_the_senders_shared_segment_intact() {
    for seed in 0..8u64 {
        let imp = Impairment {
            corrupt: 1.0,
            corrupt_bits: 16,
            truncate: 0.5,
            ..Impairment::default()
        };
        let (cfg, _clock, _leaks) = virtual_config(seed, imp);
        let cfg = WireConfig {
            max_segments: 4,
            ..cfg
        };
        let (mut a, mut b) = MemoryWire::pair(cfg).unwrap();
        let (head, held, bytes) = chained_frame(&mut a, 1400);
        let mut tx: Burst<PoolBuf, 1> = Burst::new();
        tx.push(head);
        assert_eq!(a.tx_burst(&mut tx), 1);
        let got = recv_all(&mut b);
        assert_eq!(got.len(), 1, "seed {seed}");
        let stats = a.wire().stats(Direction::AToB);
        assert_eq!(stats.corrupted, 1, "seed {seed}");
        assert_eq!(got[0].segment_count(), 1, "seed {seed}: the copy");
        let seen = flat(&got[0]);
        assert!(seen.len() <= bytes.len(), "seed {seed}");
        assert_ne!(seen, bytes[..seen.len()], "seed {seed}: bits flipped");
        assert_eq!(
            held.data(),
            &bytes[60..],
            "seed {seed}: sender's copy intact"
        );
        assert_eq!(held.ref_count(), 1, "seed {seed}");
    }
}
