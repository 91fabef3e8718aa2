//! Steering on DPDK: tpa's Toeplitz against DPDK's own `rte_softrss` over
//! random tuples and keys; the RSS setup tpa programs, checked against
//! device limits, and the parser of what a device reports back checked
//! against `rte_softrss`; vdevs that do not report RSS answering "cannot
//! know", their frames counted as such; misplaced frames handed over to
//! their worker through a `SteerGuard`, and a device's worker ports
//! enforcing tpa's symmetric hash where its steering is unknown. Run as
//! root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_steer`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dpdk_common::{eal, serial, small_config, vdev_name};
use etherparse::PacketBuilder;
use tpa::buf::{BufferPool, PacketBuf};
use tpa::port::dpdk::{
    reta_from_groups, reta_groups, rss_fields, softrss, DpdkDevice, DpdkPort, Mbuf, NoRss,
    RssLimits, RssPlan, RSS_HASH_TYPES,
};
use tpa::port::steer::{
    toeplitz, Flow, Handover, Landing, RssFields, RssTable, SteerCounter, SteerGuard, Steering, L4,
};
use tpa::port::{Burst, Port};
use tpa_tests::netns::{unique_name, Netns};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1
}

#[test]
fn toeplitz_equals_rte_softrss_over_random_tuples_and_keys() {
    let seed = seed();
    let mut rng = Rng(seed);
    for round in 0..4000usize {
        let key = rng.fill(if round.is_multiple_of(2) { 40 } else { 52 });
        // IPv4 addresses, IPv4 with ports, IPv6 addresses, IPv6 with ports.
        let len = [8, 12, 32, 36][round % 4];
        let input = rng.fill(len);
        let ours = toeplitz(&key, &input);
        assert!(ours.is_some());
        assert_eq!(
            ours,
            softrss(&key, &input),
            "seed {seed}, key {key:02x?}, input {input:02x?}"
        );
    }
    // Both refuse a key too short for the input.
    assert_eq!(softrss(&[0; 12], &[0; 12]), None);
    assert_eq!(toeplitz(&[0; 12], &[0; 12]), None);
}

#[test]
fn rss_table_queues_follow_rte_softrss() {
    let seed = seed();
    let mut rng = Rng(seed);
    for _ in 0..500 {
        let table = RssTable {
            key: rng.fill(40),
            reta: (0..128).map(|_| (rng.next() % 4) as u16).collect(),
            fields: RssFields {
                ipv4: true,
                ipv4_tcp: true,
                ipv4_udp: true,
                ipv6: true,
                ipv6_tcp: true,
                ipv6_udp: true,
            },
        };
        let v6 = rng.next().is_multiple_of(2);
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            let a: [u8; 16] = rng.fill(16).try_into().unwrap();
            let b: [u8; 16] = rng.fill(16).try_into().unwrap();
            (a.into(), b.into())
        } else {
            let a: [u8; 4] = rng.fill(4).try_into().unwrap();
            let b: [u8; 4] = rng.fill(4).try_into().unwrap();
            (a.into(), b.into())
        };
        let (sp, dp) = (rng.next() as u16, rng.next() as u16);
        let flow = Flow::new(L4::Tcp, SocketAddr::new(src, sp), SocketAddr::new(dst, dp));
        let mut input = Vec::new();
        for ip in [src, dst] {
            match ip {
                IpAddr::V4(a) => input.extend(a.octets()),
                IpAddr::V6(a) => input.extend(a.octets()),
            }
        }
        input.extend(sp.to_be_bytes());
        input.extend(dp.to_be_bytes());
        let hash = softrss(&table.key, &input).unwrap();
        assert_eq!(table.hash(&flow), Some(hash), "seed {seed}");
        let want = table.reta[hash as usize % 128];
        assert_eq!(table.queue_of(&flow), Some(want), "seed {seed}");
        assert_eq!(
            Steering::Rss(table.into()).queue_of(&flow),
            Some(want),
            "seed {seed}"
        );
    }
}

#[test]
fn a_vdev_without_rss_cannot_know_and_its_frames_are_counted() {
    let _serial = serial();
    let name = vdev_name("net_ring", "steer");
    let dev = DpdkDevice::create_vdev(eal(), &name, "", &small_config(2))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!dev.caps().rss);
    let mut q0 = dev.port(0).unwrap();
    let q1 = dev.port(1).unwrap();
    assert_eq!(q0.steering(), Steering::Unknown);
    assert_eq!(q1.steering(), Steering::Unknown);
    let remote = SocketAddr::from(([10, 20, 0, 2], 80));
    assert!(q0
        .steering()
        .pick_local_port(
            L4::Tcp,
            [10, 20, 0, 1].into(),
            remote,
            1024..=65535,
            0,
            |_| true
        )
        .is_err());

    // A frame the ring brings back on queue 0: its place cannot be told,
    // and the counter says so.
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 20, 0, 2], [10, 20, 0, 1], 64)
        .udp(80, 4000);
    let mut frame = Vec::new();
    b.write(&mut frame, b"steer").unwrap();
    let mut m: Mbuf = q0.alloc().unwrap();
    m.append(frame.len()).unwrap().copy_from_slice(&frame);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(m);
    assert_eq!(q0.tx_burst(&mut tx), 1);
    let mut counter = SteerCounter::new(q0.steering(), 0);
    let mut rx: Burst<Mbuf> = Burst::new();
    for _ in 0..100 {
        if q0.rx_burst(&mut rx) > 0 {
            break;
        }
    }
    assert_eq!(rx.len(), 1);
    for m in rx.drain() {
        assert_eq!(counter.observe(m.data()), Landing::Unknown);
    }
    assert_eq!(counter.stats().unknown, 1);
    assert_eq!(counter.stats().here + counter.stats().elsewhere, 0);
    drop((rx, tx));
    q0.pool().assert_whole();
    q1.pool().assert_whole();
    drop((q0, q1, dev));

    // One queue: every flow lands on it.
    let name = vdev_name("net_ring", "steer1");
    let one = DpdkDevice::create_vdev(eal(), &name, "", &small_config(1))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(one.port(0).unwrap().steering(), Steering::Single);
}

/// The hash types of a device with every IP, TCP and UDP type, as mlx5,
/// i40e or ice report them (and more tpa does not ask for).
const ALL_TYPES: u64 = RSS_HASH_TYPES | (1 << 40);

/// Limits of real devices: (name, key size, RETA size).
const DEVICES: &[(&str, u8, u16)] = &[
    ("mlx5", 40, 512),
    ("ixgbe", 40, 128),
    ("i40e", 52, 512),
    ("ice", 52, 2048),
    ("virtio", 40, 128),
];

fn limits(key_size: u8, reta_size: u16) -> RssLimits {
    RssLimits {
        hash_types: ALL_TYPES,
        key_size,
        reta_size,
        max_rx_queues: 64,
    }
}

/// The input the device hashes for `flow` under `fields` (addresses, and
/// the ports where its type is hashed on them), `None` when unhashed.
fn hashed_input(flow: &Flow, fields: &RssFields) -> Option<Vec<u8>> {
    let v4 = flow.src.is_ipv4();
    let (l4, l3) = match (v4, flow.proto) {
        (true, L4::Tcp) => (fields.ipv4_tcp, fields.ipv4),
        (true, L4::Udp) => (fields.ipv4_udp, fields.ipv4),
        (false, L4::Tcp) => (fields.ipv6_tcp, fields.ipv6),
        (false, L4::Udp) => (fields.ipv6_udp, fields.ipv6),
    };
    if !l4 && !l3 {
        return None;
    }
    let mut input = Vec::new();
    for ip in [flow.src.ip(), flow.dst.ip()] {
        match ip {
            IpAddr::V4(a) => input.extend(a.octets()),
            IpAddr::V6(a) => input.extend(a.octets()),
        }
    }
    if l4 {
        input.extend(flow.src.port().to_be_bytes());
        input.extend(flow.dst.port().to_be_bytes());
    }
    Some(input)
}

fn random_flow(rng: &mut Rng) -> Flow {
    let (src, dst): (IpAddr, IpAddr) = if rng.next().is_multiple_of(2) {
        let a: [u8; 16] = rng.fill(16).try_into().unwrap();
        let b: [u8; 16] = rng.fill(16).try_into().unwrap();
        (a.into(), b.into())
    } else {
        let a: [u8; 4] = rng.fill(4).try_into().unwrap();
        let b: [u8; 4] = rng.fill(4).try_into().unwrap();
        (a.into(), b.into())
    };
    let proto = if rng.next().is_multiple_of(2) {
        L4::Tcp
    } else {
        L4::Udp
    };
    Flow::new(
        proto,
        SocketAddr::new(src, rng.next() as u16),
        SocketAddr::new(dst, rng.next() as u16),
    )
}

#[test]
fn the_rss_setup_tpa_programs_fits_each_device() {
    let seed = seed();
    let mut rng = Rng(seed);
    for &(device, key_size, reta_size) in DEVICES {
        for queues in [2u16, 3, 4, 16] {
            let plan = RssPlan::new(&limits(key_size, reta_size), queues).unwrap();
            assert_eq!(plan.key.len(), usize::from(key_size), "{device}");
            assert_eq!(plan.hash_types, RSS_HASH_TYPES, "{device}");
            assert_eq!(plan.reta.len(), usize::from(reta_size), "{device}");
            assert!(plan.reta.iter().all(|&q| q < queues), "{device}");
            for q in 0..queues {
                let n = plan.reta.iter().filter(|&&e| e == q).count();
                // Round robin: every queue gets its share of buckets.
                assert!(n >= usize::from(reta_size / queues), "{device} q{q}: {n}");
            }
            // The groups DPDK takes carry the table whole, every entry marked.
            let groups = reta_groups(&plan.reta);
            assert_eq!(groups.len(), usize::from(reta_size).div_ceil(64));
            assert_eq!(
                reta_from_groups(&groups, plan.reta.len()).as_deref(),
                Some(&plan.reta[..])
            );
            // tpa's key is symmetric: both directions of a flow share a
            // queue, and the device's hash is rte_softrss's.
            let table = plan.table();
            for _ in 0..200 {
                let flow = random_flow(&mut rng);
                let back = Flow::new(flow.proto, flow.dst, flow.src);
                let input = hashed_input(&flow, &table.fields).unwrap();
                let hash = softrss(&table.key, &input);
                assert_eq!(table.hash(&flow), hash, "{device}, seed {seed}");
                assert_eq!(table.hash(&back), hash, "{device}, seed {seed}");
                assert_eq!(
                    table.queue_of(&flow),
                    Some(plan.reta[hash.unwrap() as usize % plan.reta.len()])
                );
            }
        }
    }
    // What keeps tpa from programming a device: it then keeps its own.
    let ok = limits(40, 128);
    assert_eq!(RssPlan::new(&ok, 1), Err(NoRss::OneQueue));
    assert_eq!(RssPlan::new(&ok, 65), Err(NoRss::TooManyQueues));
    let refused = [
        (
            RssLimits {
                hash_types: 0,
                ..ok
            },
            NoRss::NoHashTypes,
        ),
        (
            RssLimits {
                hash_types: 1 << 40,
                ..ok
            },
            NoRss::NoHashTypes,
        ),
        (RssLimits { key_size: 0, ..ok }, NoRss::NoKey),
        (RssLimits { key_size: 12, ..ok }, NoRss::NoKey),
        (RssLimits { reta_size: 0, ..ok }, NoRss::NoReta),
        (RssLimits { reta_size: 2, ..ok }, NoRss::NoReta),
    ];
    for (l, why) in refused {
        assert_eq!(RssPlan::new(&l, 4), Err(why), "{l:?}");
    }
    // A device hashing IPv4 only is programmed for that only.
    let v4 = RssLimits {
        hash_types: tpa::port::dpdk::sys::RTE_ETH_RSS_IPV4
            | tpa::port::dpdk::sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP,
        ..ok
    };
    let plan = RssPlan::new(&v4, 4).unwrap();
    assert_eq!(
        plan.table().fields,
        RssFields {
            ipv4: true,
            ipv4_tcp: true,
            ..RssFields::default()
        }
    );
}

#[test]
fn the_read_back_parser_follows_rte_softrss() {
    let seed = seed();
    let mut rng = Rng(seed);
    for _ in 0..300 {
        // Any size a driver may report, whole groups of 64 or not.
        let size = 1 + (rng.next() % 2048) as usize;
        let queues = 1 + (rng.next() % 16) as u16;
        let reta: Vec<u16> = (0..size)
            .map(|_| (rng.next() % u64::from(queues)) as u16)
            .collect();
        // What the device writes back into the queried groups.
        let groups = reta_groups(&reta);
        let read = reta_from_groups(&groups, size).unwrap();
        assert_eq!(read, reta, "seed {seed}");
        let hash_types = rng.next() & RSS_HASH_TYPES;
        let key_len = if rng.next().is_multiple_of(2) { 40 } else { 52 };
        let table = RssTable {
            key: rng.fill(key_len),
            reta: read,
            fields: rss_fields(hash_types),
        };
        for _ in 0..20 {
            let flow = random_flow(&mut rng);
            let want = hashed_input(&flow, &table.fields)
                .map(|input| softrss(&table.key, &input).unwrap())
                .map(|h| table.reta[h as usize % size]);
            assert_eq!(table.queue_of(&flow), want, "seed {seed}, {flow:?}");
        }
    }
    // An entry the device did not mark was not reported: no table.
    let mut groups = reta_groups(&[1, 0, 1, 0]);
    groups[0].mask &= !0b100;
    assert_eq!(reta_from_groups(&groups, 4), None);
    assert_eq!(reta_from_groups(&groups, 2), Some(vec![1, 0]));
    assert_eq!(reta_from_groups(&groups, 65), None);
    // rss_fields reads DPDK's bits.
    assert_eq!(
        rss_fields(RSS_HASH_TYPES),
        RssFields {
            ipv4: true,
            ipv4_tcp: true,
            ipv4_udp: true,
            ipv6: true,
            ipv6_tcp: true,
            ipv6_udp: true,
        }
    );
    assert_eq!(rss_fields(0), RssFields::default());
}

/// A frame of `flow` (UDP or TCP) carrying `id`.
fn flow_frame(flow: &Flow, id: u32) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = match (flow.src.ip(), flow.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => unreachable!(),
    };
    let mut frame = Vec::new();
    let payload = id.to_be_bytes();
    match flow.proto {
        L4::Udp => b
            .udp(flow.src.port(), flow.dst.port())
            .write(&mut frame, &payload),
        L4::Tcp => b
            .tcp(flow.src.port(), flow.dst.port(), 1, 1000)
            .write(&mut frame, &payload),
    }
    .unwrap();
    frame
}

/// An ARP request carrying `id` in its padding: not a flow.
fn arp_frame(id: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[56..60].copy_from_slice(&id.to_be_bytes());
    f
}

/// The id a test frame carries: the last four bytes.
fn frame_id(m: &Mbuf) -> u32 {
    let d = m.data();
    u32::from_be_bytes(d[d.len() - 4..].try_into().unwrap())
}

/// Sends every frame on the queue `queue_of` picks, retrying while the
/// rings are full or the pools dry (the receivers drain them).
fn send_all(ports: &mut [DpdkPort], frames: &[Vec<u8>], queue_of: impl Fn(usize) -> usize) {
    let deadline = Instant::now() + PATIENCE;
    for (i, frame) in frames.iter().enumerate() {
        let port = &mut ports[queue_of(i)];
        let mut tx: Burst<Mbuf, 1> = Burst::new();
        loop {
            if tx.is_empty() {
                if let Some(mut m) = port.alloc() {
                    m.append(frame.len()).unwrap().copy_from_slice(frame);
                    tx.push(m);
                }
            }
            if !tx.is_empty() && port.tx_burst(&mut tx) == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "frame {i} not sent in {PATIENCE:?}"
            );
            std::thread::yield_now();
        }
    }
}

/// A bound on waiting for frames (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn misplaced_frames_are_handed_over_to_their_worker() {
    let _serial = serial();
    const QUEUES: u16 = 4;
    let seed = seed();
    let mut rng = Rng(seed);
    let (a, b) = DpdkDevice::ring_pair(eal(), "handover", &small_config(QUEUES)).unwrap();
    // net_ring has no RSS: tpa enforces its own symmetric steering in
    // software, frames arriving on whatever queue the sender picked.
    assert_eq!(b.port(0).unwrap().steering(), Steering::Unknown);
    let steering = Steering::Symmetric { queues: QUEUES };
    // Flows of every kind, and frames that are no flow (ARP: queue 0).
    let total = 3000;
    let frames: Vec<Vec<u8>> = (0..total as u32)
        .map(|id| {
            if id % 10 == 0 {
                arp_frame(id)
            } else {
                flow_frame(&random_flow(&mut rng), id)
            }
        })
        .collect();
    let sent_on: Vec<usize> = (0..total)
        .map(|_| (rng.next() % u64::from(QUEUES)) as usize)
        .collect();
    let expected: Vec<u16> = frames
        .iter()
        .map(|f| steering.queue_of_frame(f).unwrap())
        .collect();

    let guards: Vec<SteerGuard<DpdkPort>> = (0..QUEUES)
        .zip(Handover::mesh(QUEUES, 4096))
        .map(|(q, end)| SteerGuard::enforcing(b.port(q).unwrap(), end, steering.clone()).unwrap())
        .collect();
    assert!(guards.iter().all(|g| g.steering() == steering));
    let delivered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = guards
        .into_iter()
        .map(|mut guard| {
            let delivered = delivered.clone();
            std::thread::spawn(move || {
                let q = guard.caps().queue;
                let mut ids = Vec::new();
                let mut wrong = Vec::new();
                let deadline = Instant::now() + PATIENCE;
                while delivered.load(Ordering::Acquire) < total && Instant::now() < deadline {
                    let mut rx: Burst<Mbuf> = Burst::new();
                    let n = guard.rx_burst(&mut rx);
                    for m in rx.drain() {
                        if steering_queue(&m) != Some(q) {
                            wrong.push(frame_id(&m));
                        }
                        ids.push(frame_id(&m));
                    }
                    delivered.fetch_add(n, Ordering::AcqRel);
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
                (guard, ids, wrong)
            })
        })
        .collect();

    let mut senders: Vec<DpdkPort> = (0..QUEUES).map(|q| a.port(q).unwrap()).collect();
    send_all(&mut senders, &frames, |i| sent_on[i]);
    let mut seen = BTreeSet::new();
    let (mut here, mut elsewhere, mut unknown) = (0, 0, 0);
    let (mut handed, mut received) = (0, 0);
    let mut guards = Vec::new();
    for w in workers {
        let (guard, ids, wrong) = w.join().unwrap();
        let q = guard.caps().queue;
        assert!(
            wrong.is_empty(),
            "seed {seed}: queue {q} got frames {wrong:?}"
        );
        for id in &ids {
            assert_eq!(expected[*id as usize], q, "seed {seed}: frame {id}");
            assert!(seen.insert(*id), "seed {seed}: frame {id} twice");
        }
        let s = guard.steer_stats();
        let h = guard.handover_stats();
        // What stayed plus what came in is what this worker received.
        assert_eq!(
            s.here + h.received,
            ids.len() as u64,
            "seed {seed}: queue {q}"
        );
        assert_eq!(guard.dropped(), 0);
        assert_eq!((h.full, h.gone), (0, 0));
        here += s.here;
        elsewhere += s.elsewhere;
        unknown += s.unknown;
        handed += h.sent;
        received += h.received;
        guards.push(guard);
    }
    assert_eq!(seen.len(), total, "seed {seed}: frames lost");
    assert_eq!(here + elsewhere + unknown, total as u64);
    assert_eq!(unknown, 0, "the symmetric steering places every frame");
    assert_eq!(handed, elsewhere);
    assert_eq!(received, handed);
    // Random send queues: about three quarters landed elsewhere.
    let placed = sent_on
        .iter()
        .zip(&expected)
        .filter(|(s, e)| **s == usize::from(**e))
        .count() as u64;
    assert_eq!(here, placed, "seed {seed}");
    assert!(elsewhere > total as u64 / 2, "seed {seed}: {elsewhere}");
    drop((guards, senders));
    close_both_whole(a, b);
}

fn steering_queue(m: &Mbuf) -> Option<u16> {
    Steering::Symmetric { queues: 4 }.queue_of_frame(m.data())
}

/// Closes both ends of a ring pair, then checks every pool is whole (a
/// device's receive rings may hold the other's mbufs until it closes).
fn close_both_whole(a: DpdkDevice, b: DpdkDevice) {
    let pools: Vec<_> = [a, b]
        .into_iter()
        .flat_map(|d| {
            d.close()
                .unwrap_or_else(|_| panic!("a port of the device is still alive"))
        })
        .collect();
    for p in &pools {
        p.assert_whole();
    }
}

#[test]
fn without_known_steering_frames_stay_where_they_land_counted_unknown() {
    let _serial = serial();
    let (a, b) = DpdkDevice::ring_pair(eal(), "guardunk", &small_config(2)).unwrap();
    let mut guards = b.guarded_ports(64).unwrap();
    assert!(guards.iter().all(|g| g.steering() == Steering::Unknown));
    let mut rng = Rng(seed());
    let frames: Vec<Vec<u8>> = (0..100)
        .map(|id| flow_frame(&random_flow(&mut rng), id))
        .collect();
    let mut senders: Vec<DpdkPort> = (0..2).map(|q| a.port(q).unwrap()).collect();
    send_all(&mut senders, &frames, |i| i % 2);
    let deadline = Instant::now() + PATIENCE;
    let mut got = [Vec::new(), Vec::new()];
    while got[0].len() + got[1].len() < frames.len() && Instant::now() < deadline {
        for (q, g) in guards.iter_mut().enumerate() {
            let mut rx: Burst<Mbuf> = Burst::new();
            g.rx_burst(&mut rx);
            got[q].extend(rx.drain().map(|m| frame_id(&m)));
        }
    }
    for (q, ids) in got.iter().enumerate() {
        assert_eq!(ids.len(), 50, "queue {q}");
        assert!(
            ids.iter().all(|id| *id as usize % 2 == q),
            "queue {q}: {ids:?}"
        );
        let s = guards[q].steer_stats();
        assert_eq!((s.here, s.elsewhere, s.unknown), (0, 0, 50));
        assert_eq!(guards[q].handover_stats().sent, 0);
    }
    drop((guards, senders));
    close_both_whole(a, b);
}

/// `DpdkDevice::worker_ports` on a device that does not report its
/// steering (a ring pair, like net_tap): each port enforces tpa's
/// symmetric hash, so every frame ends up with the worker its flow
/// hashes to, whichever queue it came in on, and the frames that came in
/// elsewhere are exactly the ones handed over.
#[test]
fn worker_ports_enforce_the_symmetric_hash_where_steering_is_unknown() {
    let _serial = serial();
    let (a, b) = DpdkDevice::ring_pair(eal(), "workers", &small_config(2)).unwrap();
    let mut guards = b.worker_ports(256).unwrap();
    let symmetric = Steering::Symmetric { queues: 2 };
    assert!(guards.iter().all(|g| g.steering() == symmetric));
    let seed = seed();
    let mut rng = Rng(seed);
    let flows: Vec<Flow> = (0..200).map(|_| random_flow(&mut rng)).collect();
    let frames: Vec<Vec<u8>> = flows
        .iter()
        .enumerate()
        .map(|(id, f)| flow_frame(f, id as u32))
        .collect();
    let want: Vec<u16> = flows
        .iter()
        .map(|f| symmetric.queue_of(f).expect("a TCP or UDP flow"))
        .collect();
    let mut senders: Vec<DpdkPort> = (0..2).map(|q| a.port(q).unwrap()).collect();
    send_all(&mut senders, &frames, |i| i % 2);
    let misplaced = want
        .iter()
        .enumerate()
        .filter(|(i, q)| usize::from(**q) != i % 2)
        .count() as u64;
    let deadline = Instant::now() + PATIENCE;
    let mut got = [Vec::new(), Vec::new()];
    while got[0].len() + got[1].len() < frames.len() && Instant::now() < deadline {
        for (q, g) in guards.iter_mut().enumerate() {
            let mut rx: Burst<Mbuf> = Burst::new();
            g.rx_burst(&mut rx);
            got[q].extend(rx.drain().map(|m| frame_id(&m)));
        }
    }
    assert_eq!(got[0].len() + got[1].len(), frames.len(), "seed {seed}");
    for (q, ids) in got.iter().enumerate() {
        for id in ids {
            assert_eq!(
                usize::from(want[*id as usize]),
                q,
                "seed {seed}: frame {id}"
            );
        }
    }
    let sent: u64 = guards.iter().map(|g| g.handover_stats().sent).sum();
    let received: u64 = guards.iter().map(|g| g.handover_stats().received).sum();
    assert_eq!((sent, received), (misplaced, misplaced), "seed {seed}");
    assert!(guards.iter().all(|g| g.dropped() == 0));
    drop((guards, senders));
    close_both_whole(a, b);
}

#[test]
fn vdevs_without_rss_keep_working_and_cannot_know() {
    let _serial = serial();
    let eal = eal();
    // net_ring reports no RSS at all.
    let name = vdev_name("net_ring", "norss");
    let ring = DpdkDevice::create_vdev(eal, &name, "", &small_config(2))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let l = ring.rss_limits();
    assert_eq!(l.hash_types & RSS_HASH_TYPES, 0, "{l:?}");
    assert_eq!(RssPlan::new(&l, 2), Err(NoRss::NoHashTypes));
    assert!(!ring.caps().rss);
    assert_eq!(ring.port(1).unwrap().steering(), Steering::Unknown);
    dpdk_common::close_whole(ring);

    // net_tap, two queues, its kernel side in a namespace of its own.
    let ns = Netns::new("tapnorss");
    let ifname = unique_name("dr");
    let vdev = vdev_name("net_tap", "norss");
    let tap = ns
        .enter(|| DpdkDevice::create_vdev(eal, &vdev, &format!("iface={ifname}"), &small_config(2)))
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    let l = tap.rss_limits();
    let refused = RssPlan::new(&l, 2);
    eprintln!("net_tap reports {l:?}: {refused:?}");
    assert!(refused.is_err(), "{l:?}: {refused:?}");
    let mut ports: Vec<DpdkPort> = (0..2).map(|q| tap.port(q).unwrap()).collect();
    for p in &ports {
        assert_eq!(p.steering(), Steering::Unknown);
    }
    // The device works all the same: a frame goes out on each queue.
    for (q, p) in ports.iter_mut().enumerate() {
        let mut tx: Burst<Mbuf> = Burst::new();
        let mut m = p.alloc().unwrap();
        let frame = arp_frame(q as u32);
        m.append(frame.len()).unwrap().copy_from_slice(&frame);
        tx.push(m);
        assert_eq!(p.tx_burst(&mut tx), 1, "queue {q}");
    }
    drop(ports);
    dpdk_common::close_whole(tap);
    drop(ns);
}
