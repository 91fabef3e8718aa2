//! Steering on DPDK: tpa's Toeplitz against DPDK's own `rte_softrss` over
//! random tuples and keys, and a vdev that does not report RSS answering
//! "cannot know", its frames counted as such. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_steer`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use dpdk_common::{eal, serial, small_config, vdev_name};
use etherparse::PacketBuilder;
use tpa::buf::{BufferPool, PacketBuf};
use tpa::port::dpdk::{softrss, DpdkDevice, Mbuf};
use tpa::port::steer::{toeplitz, Flow, Landing, RssFields, RssTable, SteerCounter, Steering, L4};
use tpa::port::{Burst, Port};

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
