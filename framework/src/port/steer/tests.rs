use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}

fn udp4_frame(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        unreachable!()
    };
    let mut f = vec![0u8; 14 + 20 + 8];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[14 + 9] = 17;
    f[26..30].copy_from_slice(&s.ip().octets());
    f[30..34].copy_from_slice(&d.ip().octets());
    f[34..36].copy_from_slice(&s.port().to_be_bytes());
    f[36..38].copy_from_slice(&d.port().to_be_bytes());
    f
}

#[test]
fn the_microsoft_rss_vectors_hold() {
    // From the Microsoft RSS verification suite, key of 40 bytes.
    let key = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];
    let table = RssTable {
        key: key.to_vec(),
        reta: (0..128).map(|i| i % 4).collect(),
        fields: RssFields {
            ipv4: true,
            ipv4_tcp: true,
            ipv6: true,
            ipv6_tcp: true,
            ..RssFields::default()
        },
    };
    // 66.9.149.187:2794 -> 161.142.100.80:1766
    let flow = Flow::new(
        L4::Tcp,
        v4([66, 9, 149, 187], 2794),
        v4([161, 142, 100, 80], 1766),
    );
    assert_eq!(table.hash(&flow), Some(0x51cc_c178));
    assert_eq!(
        table.queue_of(&flow),
        Some((0x51cc_c178u32 % 128 % 4) as u16)
    );
    // UDP is not hashed on ports here, only on addresses.
    let udp = Flow {
        proto: L4::Udp,
        ..flow
    };
    assert_eq!(table.hash(&udp), Some(0x323e_8fc2));
    // IPv6: 3ffe:2501:200:1fff::7 :2794 -> 3ffe:2501:200:3::1 :1766
    let s6: Ipv6Addr = "3ffe:2501:200:1fff::7".parse().unwrap();
    let d6: Ipv6Addr = "3ffe:2501:200:3::1".parse().unwrap();
    let flow6 = Flow::new(
        L4::Tcp,
        SocketAddr::from((s6, 2794)),
        SocketAddr::from((d6, 1766)),
    );
    assert_eq!(table.hash(&flow6), Some(0x4020_7d3d));
    // A key too short for IPv6 cannot hash it.
    let short = RssTable {
        key: key[..20].to_vec(),
        ..table.clone()
    };
    assert_eq!(short.hash(&flow6), None);
    assert_eq!(toeplitz(&key[..8], &[0; 5]), None);
}

#[test]
fn symmetric_and_program_steering_agree_with_the_wire_hash() {
    let s = Steering::Symmetric { queues: 4 };
    let p = Steering::Program { queues: 4 };
    let mut seen = [0u32; 4];
    for sport in 1000..1400 {
        let src = v4([10, 0, 0, 1], sport);
        let dst = v4([10, 0, 0, 2], 80);
        let frame = udp4_frame(src, dst);
        let flow = Flow::from_frame(&frame).unwrap();
        assert_eq!(flow, Flow::new(L4::Udp, src, dst));
        let want = (rss::frame_hash(&frame).unwrap() % 4) as u16;
        assert_eq!(s.queue_of(&flow), Some(want));
        assert_eq!(p.queue_of(&flow), Some(want));
        assert_eq!(s.queue_of_frame(&frame), Some(want));
        assert_eq!(p.queue_of_frame(&frame), Some(want));
        // Symmetric: the reverse direction lands on the same queue.
        assert_eq!(s.queue_of(&Flow::new(L4::Udp, dst, src)), Some(want));
        seen[usize::from(want)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
}

#[test]
fn frames_without_a_flow_land_where_each_steering_says() {
    let mut frag = udp4_frame(v4([10, 0, 0, 1], 5), v4([10, 0, 0, 2], 6));
    frag[14 + 6] = 0x20;
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut tagged = vec![0u8; 4];
    tagged.splice(0..0, udp4_frame(v4([1, 1, 1, 1], 1), v4([2, 2, 2, 2], 2)));
    tagged.copy_within(12..42, 16);
    tagged[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    for f in [&frag, &arp, &tagged] {
        assert_eq!(Flow::from_frame(f), None);
        assert_eq!(Steering::Program { queues: 4 }.queue_of_frame(f), Some(0));
        assert_eq!(Steering::Single.queue_of_frame(f), Some(0));
        assert_eq!(Steering::Unknown.queue_of_frame(f), None);
    }
    // The wire hashes fragments on their addresses.
    let by_addr = (rss::frame_hash(&frag).unwrap() % 4) as u16;
    assert_eq!(
        Steering::Symmetric { queues: 4 }.queue_of_frame(&frag),
        Some(by_addr)
    );
    for cut in 0..38 {
        assert_eq!(Flow::from_frame(&frag[..cut]), None);
    }
}

#[test]
fn picked_ports_bring_replies_to_the_queue() {
    let remote = v4([192, 168, 1, 9], 443);
    let local = IpAddr::from([192, 168, 1, 1]);
    for steering in [
        Steering::Program { queues: 4 },
        Steering::Symmetric { queues: 3 },
    ] {
        for queue in 0..3 {
            let mut taken = Vec::new();
            for _ in 0..5 {
                let port = steering
                    .pick_local_port(L4::Tcp, local, remote, 40000..=60000, queue, |p| {
                        !taken.contains(&p)
                    })
                    .unwrap();
                let replies = Flow::new(L4::Tcp, remote, SocketAddr::new(local, port));
                assert_eq!(steering.queue_of(&replies), Some(queue));
                taken.push(port);
            }
        }
    }
    let p = Steering::Program { queues: 4 };
    assert_eq!(
        p.pick_local_port(L4::Udp, local, remote, 1..=1, 0, |_| false),
        Err(PickError::NoPortLands)
    );
    assert_eq!(
        Steering::Unknown.pick_local_port(L4::Udp, local, remote, 1..=9, 0, |_| true),
        Err(PickError::CannotKnow)
    );
    let v6: IpAddr = "fd00::1".parse().unwrap();
    assert_eq!(
        p.pick_local_port(L4::Udp, v6, remote, 1..=9, 0, |_| true),
        Err(PickError::MixedFamilies)
    );
    assert_eq!(
        Flow::new(L4::Udp, remote, SocketAddr::new(v6, 1)).tuple(true),
        None
    );
}

#[test]
fn the_counter_counts_misplaced_frames() {
    let steering = Steering::Program { queues: 2 };
    let mut c = SteerCounter::new(steering.clone(), 1);
    let mut expect = SteerStats::default();
    for sport in 0..64 {
        let f = udp4_frame(v4([10, 1, 0, 1], 3000 + sport), v4([10, 1, 0, 2], 53));
        match c.observe(&f) {
            Landing::Here => expect.here += 1,
            Landing::Elsewhere(q) => {
                assert_eq!(q, 0);
                expect.elsewhere += 1;
            }
            Landing::Unknown => panic!("a program port always knows"),
        }
    }
    assert!(expect.here > 0 && expect.elsewhere > 0, "{expect:?}");
    assert_eq!(c.stats(), expect);
    let mut unknown = SteerCounter::new(Steering::Unknown, 0);
    assert_eq!(unknown.observe(&[0; 60]), Landing::Unknown);
    assert_eq!(unknown.stats().unknown, 1);
}

fn handover_pool() -> crate::buf::Pool {
    crate::buf::Pool::new(crate::buf::PoolConfig {
        name: "handover".into(),
        capacity: 1024,
        data_room: 64,
        huge_pages: false,
        ..crate::buf::PoolConfig::default()
    })
    .unwrap()
}

#[test]
fn handed_over_buffers_reach_their_worker_across_threads() {
    use crate::buf::{BufferPool, PacketBuf, PoolBuf};
    use crate::port::Burst;

    const WORKERS: u16 = 4;
    const EACH: usize = 600;
    let pool = handover_pool();
    // Worker w sends its i-th buffer to (w + 1 + i % 3) % 4: each worker
    // receives EACH in all.
    let ends = Handover::<PoolBuf>::mesh(WORKERS, 8);
    let threads: Vec<_> = ends
        .into_iter()
        .map(|mut end| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let me = end.queue();
                let mut got = Vec::new();
                let mut rx: Burst<PoolBuf> = Burst::new();
                let mut drain = |end: &mut Handover<PoolBuf>, got: &mut Vec<(u8, u8)>| {
                    end.receive(&mut rx);
                    for b in rx.drain() {
                        got.push((b.data()[0], b.data()[1]));
                    }
                };
                for i in 0..EACH {
                    let to = (me + 1 + (i % 3) as u16) % WORKERS;
                    let mut b = pool.alloc().expect("pool has room");
                    b.append(2).unwrap().copy_from_slice(&[me as u8, to as u8]);
                    loop {
                        match end.send(to, b) {
                            Ok(()) => break,
                            Err(Refused::Full(back)) => {
                                b = back;
                                drain(&mut end, &mut got);
                                std::thread::yield_now();
                            }
                            Err(Refused::Gone(_)) => panic!("worker {to} left early"),
                        }
                    }
                }
                while got.len() < EACH {
                    drain(&mut end, &mut got);
                    std::thread::yield_now();
                }
                (end.stats(), got)
            })
        })
        .collect();
    let mut sent = 0;
    for t in threads {
        let (stats, got) = t.join().unwrap();
        let me = got[0].1;
        assert!(got.iter().all(|&(from, to)| to == me && from != me));
        for from in 0..WORKERS as u8 {
            let n = got.iter().filter(|&&(f, _)| f == from).count();
            assert_eq!(n, if from == me { 0 } else { EACH / 3 }, "{me} from {from}");
        }
        assert_eq!(stats.received, EACH as u64);
        assert_eq!(stats.gone, 0);
        sent += stats.sent;
    }
    // Every refusal of a full inbox was retried until it went through.
    assert_eq!(sent, u64::from(WORKERS) * EACH as u64);
    pool.assert_whole();
}

#[test]
fn a_full_or_missing_inbox_refuses_and_counts() {
    use crate::buf::{BufferPool, PoolBuf};
    use crate::port::Burst;

    let pool = handover_pool();
    let mut ends = Handover::<PoolBuf>::mesh(3, 1);
    let b1 = ends.pop().unwrap();
    let mut b0 = ends.pop().unwrap();
    let mut a = ends.pop().unwrap();
    assert_eq!(
        (a.queue(), b0.queue(), b1.queue(), a.queues()),
        (0, 1, 2, 3)
    );
    a.send(1, pool.alloc().unwrap()).unwrap();
    assert!(matches!(
        a.send(1, pool.alloc().unwrap()),
        Err(Refused::Full(_))
    ));
    assert!(matches!(
        a.send(0, pool.alloc().unwrap()),
        Err(Refused::Gone(_))
    ));
    assert!(matches!(
        a.send(7, pool.alloc().unwrap()),
        Err(Refused::Gone(_))
    ));
    // A buffer left in an inbox is freed with it.
    a.send(2, pool.alloc().unwrap()).unwrap();
    drop(b1);
    assert!(matches!(
        a.send(2, pool.alloc().unwrap()),
        Err(Refused::Gone(_))
    ));
    let s = a.stats();
    assert_eq!((s.sent, s.full, s.gone, s.received), (2, 1, 3, 0));
    let mut rx: Burst<PoolBuf> = Burst::new();
    assert_eq!(b0.receive(&mut rx), 1);
    assert_eq!(b0.stats().received, 1);
    drop((rx, a, b0));
    pool.assert_whole();
}

#[test]
fn a_guard_refuses_a_handover_that_does_not_fit() {
    use crate::port::memory::{End, MemoryWire, WireConfig};
    use crate::port::{Port, PortError};

    let wire = MemoryWire::new(WireConfig {
        queues: 2,
        ..WireConfig::default()
    })
    .unwrap();
    let mut ends = Handover::mesh(2, 4);
    let end1 = ends.pop().unwrap();
    let end0 = ends.pop().unwrap();
    let wrong_end = SteerGuard::new(wire.port(End::B, 0).unwrap(), end1);
    assert!(
        matches!(&wrong_end, Err(PortError::InvalidConfig { what, .. }) if what.contains("queue 1")),
        "{wrong_end:?}"
    );
    let too_few = SteerGuard::enforcing(
        wire.port(End::B, 0).unwrap(),
        end0,
        Steering::Symmetric { queues: 4 },
    );
    assert!(
        matches!(&too_few, Err(PortError::InvalidConfig { what, .. }) if what.contains("4 queues")),
        "{too_few:?}"
    );
    let mut ends = Handover::mesh(2, 4);
    let end0 = ends.swap_remove(0);
    let guard = SteerGuard::new(wire.port(End::B, 0).unwrap(), end0).unwrap();
    assert_eq!(guard.steering(), Steering::Symmetric { queues: 2 });
}

/// An ARP frame with opcode `op` (1 request, 2 reply).
fn arp_frame(op: u8) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op]);
    f
}

/// An IPv6 frame carrying ICMPv6 of `kind` (135 solicitation, 136
/// advertisement).
fn icmpv6_frame(kind: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 24];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[14 + 6] = 58;
    f[14 + 8..14 + 24].copy_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).octets());
    f[14 + 24..14 + 40].copy_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).octets());
    f[54] = kind;
    f
}

#[test]
fn neighbor_answers_are_recognized_and_nothing_else() {
    assert!(is_neighbor_answer(&arp_frame(2)));
    assert!(!is_neighbor_answer(&arp_frame(1)));
    assert!(is_neighbor_answer(&icmpv6_frame(136)));
    assert!(!is_neighbor_answer(&icmpv6_frame(135)));
    let mut tagged = arp_frame(2);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    assert!(is_neighbor_answer(&tagged));
    let udp = udp4_frame(v4([10, 0, 0, 2], 53), v4([10, 0, 0, 1], 5353));
    assert!(!is_neighbor_answer(&udp));
    // Frames cut before the opcode are not answers (and do not panic);
    // the ARP stage drops shorter ones it is given.
    for cut in 0..22 {
        assert!(!is_neighbor_answer(&arp_frame(2)[..cut]));
    }
    assert!(!is_neighbor_answer(&icmpv6_frame(136)[..54]));
}

/// Four workers on a MemoryWire: the answers one queue receives reach
/// all four (once each), requests and flows reach one; buffers all come
/// back to the pool.
#[test]
fn every_worker_receives_the_neighbor_answers_one_queue_got() {
    use crate::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
    use crate::port::memory::{End, MemoryWire, WireConfig};
    use crate::port::{Burst, Port};

    let pool = Pool::new(PoolConfig {
        name: "share".into(),
        capacity: 256,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let wire = MemoryWire::new(WireConfig {
        queues: 4,
        pool: Some(pool.clone()),
        ..WireConfig::default()
    })
    .unwrap();
    let mut far = wire.port(End::A, 0).unwrap();
    let mut workers: Vec<_> = Handover::mesh(4, 16)
        .into_iter()
        .enumerate()
        .map(|(q, end)| ShareAnswers::new(wire.port(End::B, q as u16).unwrap(), end))
        .collect();
    let frames = [
        arp_frame(2),
        arp_frame(1),
        icmpv6_frame(136),
        icmpv6_frame(135),
        udp4_frame(v4([10, 0, 0, 2], 53), v4([10, 0, 0, 1], 5353)),
    ];
    let mut tx: Burst<_, 8> = Burst::new();
    for f in &frames {
        let mut b = far.alloc().unwrap();
        b.append(f.len()).unwrap().copy_from_slice(f);
        tx.push(b);
    }
    assert_eq!(far.tx_burst(&mut tx), frames.len());
    // Each worker's frames, by a few turns (copies arrive a turn later).
    let mut seen: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
    for _ in 0..3 {
        for (q, w) in workers.iter_mut().enumerate() {
            let mut rx: Burst<_, 32> = Burst::new();
            w.rx_burst(&mut rx);
            seen[q].extend(rx.drain().map(|b| b.data().to_vec()));
        }
    }
    for (q, got) in seen.iter().enumerate() {
        let count = |f: &Vec<u8>| got.iter().filter(|g| *g == f).count();
        assert_eq!(count(&frames[0]), 1, "queue {q}: the ARP reply");
        assert_eq!(count(&frames[2]), 1, "queue {q}: the advertisement");
    }
    let everywhere: usize = seen.iter().map(Vec::len).sum();
    // 2 answers x 4 workers, 3 others once.
    assert_eq!(everywhere, 2 * 4 + 3, "{seen:?}");
    let stats: Vec<ShareStats> = workers.iter().map(ShareAnswers::stats).collect();
    assert_eq!(stats.iter().map(|s| s.answers).sum::<u64>(), 2);
    assert_eq!(stats.iter().map(|s| s.copies_sent).sum::<u64>(), 6);
    assert_eq!(stats.iter().map(|s| s.copies_received).sum::<u64>(), 6);
    drop((workers, far, wire));
    pool.assert_whole();
}

/// A port that can block: it records each wait's timeout and times out.
struct Blocking<P> {
    port: P,
    waits: Vec<std::time::Duration>,
}

impl<P: crate::port::Port> crate::port::Port for Blocking<P> {
    type Buf = P::Buf;
    fn rx_burst<const N: usize>(&mut self, rx: &mut crate::port::Burst<P::Buf, N>) -> usize {
        self.port.rx_burst(rx)
    }
    fn tx_burst<const N: usize>(&mut self, tx: &mut crate::port::Burst<P::Buf, N>) -> usize {
        self.port.tx_burst(tx)
    }
    fn pool(&self) -> &crate::buf::PoolOf<P::Buf> {
        self.port.pool()
    }
    fn caps(&self) -> &crate::port::PortCaps {
        self.port.caps()
    }
    fn wait_rx(&mut self, timeout: std::time::Duration) -> crate::port::RxWait {
        self.waits.push(timeout);
        crate::port::RxWait::TimedOut
    }
}

/// The guard waits on its port (the `wait` idle policy keeps working):
/// for the whole timeout alone, for the fallback sleep at most with other
/// workers that may hand frames over, and not at all when one waits.
#[test]
fn a_steer_guard_waits_on_its_port_unless_a_frame_was_handed_over() {
    use crate::buf::{BufferPool, Pool, PoolConfig};
    use crate::port::memory::{End, MemoryWire, WireConfig};
    use crate::port::{Burst, Port, RxWait};
    use crate::worker::WAIT_FALLBACK_SLEEP;
    use std::time::Duration;

    let pool = Pool::new(PoolConfig {
        name: "guard-wait".into(),
        capacity: 64,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let wire = MemoryWire::new(WireConfig {
        queues: 2,
        pool: Some(pool.clone()),
        ..WireConfig::default()
    })
    .unwrap();
    let blocking = |q: u16| Blocking {
        port: wire.port(End::B, q).unwrap(),
        waits: Vec::new(),
    };
    let second = Duration::from_secs(1);

    let alone = Handover::mesh(1, 4).pop().unwrap();
    let mut guard = SteerGuard::enforcing(blocking(0), alone, Steering::Single).unwrap();
    assert_eq!(guard.wait_rx(second), RxWait::TimedOut);
    assert_eq!(guard.port().waits, [second]);
    drop(guard);

    let mut ends = Handover::mesh(2, 4);
    let mut end1 = ends.pop().unwrap();
    let end0 = ends.pop().unwrap();
    let mut guard = SteerGuard::new(blocking(0), end0).unwrap();
    assert_eq!(guard.wait_rx(second), RxWait::TimedOut);
    assert_eq!(guard.port().waits, [WAIT_FALLBACK_SLEEP]);

    end1.send(0, pool.alloc().unwrap()).unwrap();
    assert_eq!(guard.wait_rx(second), RxWait::Ready);
    assert_eq!(guard.port().waits.len(), 1, "no wait with a frame waiting");
    let mut rx: Burst<_, 8> = Burst::new();
    assert_eq!(guard.rx_burst(&mut rx), 1);
    assert_eq!(guard.handover_stats().received, 1);
    drop(rx);
    drop(guard);
    pool.assert_whole();
}
