//! Steering: every frame arrives on the queue the port's Rust answer
//! predicts, and a local port picked for a queue brings the replies there.
//! MemoryWire with 4 queues; against the kernel in namespaces, AF_PACKET
//! with 2 fanout members over veth and a 4-queue TAP; and tpa's steering
//! program run in the kernel on random frames.
//!
//! Run as root: these tests load eBPF programs and create namespaces.

mod kernel_common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use etherparse::PacketBuilder;
use kernel_common::*;
use tpa::buf::{BufferPool, PacketBuf, PoolBuf};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, Fanout};
use tpa::port::memory::{End, MemoryWire, WireConfig};
use tpa::port::steer::{Flow, Landing, SteerCounter, Steering, SteeringProgram, L4};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::{Burst, Port};
use tpa::wire::MacAddr;
use tpa_tests::netns::Netns;

const KERNEL_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x5e, 0x01]);
const TPA_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x5e, 0x02]);

/// A small xorshift generator; tests print its seed when they fail.
struct Rng(u64);

impl Rng {
    fn from_time() -> (Rng, u64) {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next() as u8)
    }
}

/// A random frame of one of the kinds steering must place: TCP or UDP over
/// IPv4 (with options) or IPv6, and the frames that go to queue 0 (IPv4
/// fragments, ICMP, an IPv6 extension header, ARP, a VLAN tag, truncated).
fn random_frame(rng: &mut Rng) -> Vec<u8> {
    let kind = rng.below(10);
    let mut f = vec![0u8; 12];
    f[..12].copy_from_slice(&rng.bytes::<12>());
    let proto = [6u8, 17, 1, 0, 58][rng.below(5) as usize % if kind < 6 { 2 } else { 5 }];
    match kind {
        0..=3 | 6 | 7 => {
            f.extend_from_slice(&[0x08, 0x00]);
            let ihl = if rng.below(3) == 0 {
                5 + rng.below(11) as u8
            } else {
                5
            };
            let mut ip = vec![0u8; usize::from(ihl) * 4];
            ip[0] = 0x40 | ihl;
            if kind == 7 {
                // A fragment: more-fragments or an offset.
                let frag = if rng.below(2) == 0 {
                    0x2000
                } else {
                    1 + rng.below(0x1fff) as u16
                };
                ip[6..8].copy_from_slice(&frag.to_be_bytes());
            } else if rng.below(2) == 0 {
                ip[6] = 0x40; // don't fragment: no effect
            }
            ip[9] = proto;
            ip[12..20].copy_from_slice(&rng.bytes::<8>());
            f.extend_from_slice(&ip);
        }
        4 | 5 | 8 => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[6] = if kind == 8 { 0 } else { proto };
            ip[8..40].copy_from_slice(&rng.bytes::<32>());
            f.extend_from_slice(&ip);
        }
        _ => {
            // ARP, or a VLAN tag in front of IPv4.
            if rng.below(2) == 0 {
                f.extend_from_slice(&[0x08, 0x06]);
            } else {
                f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x08, 0x00, 0x45]);
            }
            f.extend_from_slice(&[0; 28]);
        }
    }
    f.extend_from_slice(&rng.bytes::<8>());
    f.extend_from_slice(&[0; 8]);
    if rng.below(8) == 0 {
        // Truncated anywhere after the IP header (the kernel's test run
        // refuses a shorter one; the program sends it to queue 0 anyway).
        let min = match (f[12], f[13]) {
            (0x08, 0x00) => 14 + 20,
            (0x86, 0xdd) => 14 + 40,
            _ => 14,
        };
        let keep = min + rng.below((f.len() - min) as u64) as usize;
        f.truncate(keep);
    }
    f
}

#[test]
fn the_program_in_the_kernel_agrees_with_the_rust_answer() {
    let (mut rng, seed) = Rng::from_time();
    for queues in [1u16, 2, 3, 4, 7, 16] {
        let prog = SteeringProgram::load(queues).expect("load the steering program");
        assert_eq!(prog.queues(), queues);
        let steering = Steering::Program { queues };
        let mut per_queue = vec![0u32; usize::from(queues)];
        for _ in 0..2000 {
            let frame = random_frame(&mut rng);
            let got = prog
                .run(&frame)
                .unwrap_or_else(|e| panic!("seed {seed}: test run on {frame:02x?}: {e}"));
            let want = steering.queue_of_frame(&frame).unwrap();
            assert_eq!(
                got,
                u32::from(want),
                "seed {seed}, {queues} queues, frame {frame:02x?}"
            );
            per_queue[usize::from(want)] += 1;
        }
        assert!(
            per_queue.iter().all(|&n| n > 0),
            "seed {seed}: {per_queue:?}"
        );
    }
}

/// An Ethernet/IPv4 UDP frame from `src` to `dst`.
fn udp4(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv4 only")
    };
    udp_frame(KERNEL_MAC, TPA_MAC, s, d, src.port(), dst.port(), b"steer")
}

#[test]
fn memory_wire_frames_and_replies_land_on_the_predicted_queue() {
    let wire = MemoryWire::new(WireConfig {
        queues: 4,
        ..WireConfig::default()
    })
    .unwrap();
    let mut peer = wire.port(End::A, 0).unwrap();
    let mut tpa = wire.ports(End::B).unwrap();
    let steering = tpa[0].steering();
    assert_eq!(steering, Steering::Symmetric { queues: 4 });
    let local = IpAddr::from([10, 9, 0, 1]);
    let remote = SocketAddr::from(([10, 9, 0, 2], 53));

    // For each queue, a picked port; the peer's "replies" to it.
    let mut expected = Vec::new();
    let mut taken = Vec::new();
    for queue in 0..4 {
        for _ in 0..8 {
            let port = steering
                .pick_local_port(L4::Udp, local, remote, 49152..=65535, queue, |p| {
                    !taken.contains(&p)
                })
                .unwrap();
            taken.push(port);
            expected.push((port, queue));
        }
    }
    // And many flows the peer starts.
    for sport in 30000..30100 {
        let flow = Flow::new(
            L4::Udp,
            SocketAddr::from(([10, 9, 0, 3], sport)),
            SocketAddr::new(local, 7),
        );
        expected.push((sport, steering.queue_of(&flow).unwrap()));
    }
    let mut tx: Burst<PoolBuf> = Burst::new();
    for &(port, _) in &expected {
        let frame = if port >= 49152 {
            udp4(remote, SocketAddr::new(local, port))
        } else {
            udp4(
                SocketAddr::from(([10, 9, 0, 3], port)),
                SocketAddr::new(local, 7),
            )
        };
        let mut b = peer.alloc().unwrap();
        b.extend_from_slice(&frame).unwrap();
        tx.push(b);
        if tx.is_full() {
            while !tx.is_empty() {
                peer.tx_burst(&mut tx);
            }
        }
    }
    while !tx.is_empty() {
        peer.tx_burst(&mut tx);
    }
    let mut arrived = Vec::new();
    let mut counters: Vec<SteerCounter> = (0..4)
        .map(|q| SteerCounter::new(steering.clone(), q))
        .collect();
    for (q, port) in tpa.iter_mut().enumerate() {
        let mut rx: Burst<PoolBuf> = Burst::new();
        while port.rx_burst(&mut rx) > 0 {
            for b in rx.drain() {
                assert_eq!(counters[q].observe(b.data()), Landing::Here);
                let u = parse_udp(b.data()).unwrap();
                let key = if u.dport == 7 { u.sport } else { u.dport };
                arrived.push((key, q as u16));
            }
        }
    }
    arrived.sort_unstable();
    expected.sort_unstable();
    assert_eq!(arrived, expected);
    assert!(counters.iter().all(|c| c.stats().elsewhere == 0));
    drop((peer, tpa, tx));
    wire.pool().assert_whole();
}

/// A TCP segment (PSH, correct checksums) from tpa to a closed kernel
/// port: the kernel answers with a reset to `from`.
fn tcp_probe(from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(TPA_MAC.0, KERNEL_MAC.0);
    let b = match (from.ip(), to.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let b = b.tcp(from.port(), to.port(), 1, 65535).psh();
    let mut f = Vec::new();
    b.write(&mut f, b"probe").expect("build TCP frame");
    f
}

/// Sends UDP datagrams from the kernel in `ns` to `dst:dport`, one per
/// source port, over IPv4 or IPv6.
fn kernel_send_udp_any(ns: &Netns, dst: IpAddr, dport: u16, sports: &[u16]) {
    let family = if dst.is_ipv4() { "AF_INET" } else { "AF_INET6" };
    let script = format!(
        "import socket\n\
         for sp in {sports:?}:\n\
         \x20   s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('', sp))\n\
         \x20   s.sendto(b'steer', ('{dst}', {dport}))\n\
         \x20   s.close()\n"
    );
    ns.exec(&["python3", "-c", &script]);
}

/// Receives on every queue until `want` frames passing `keep` have arrived;
/// returns (queue, flow) of each.
fn receive_flows<P: Port<Buf = PoolBuf>>(
    queues: &mut [P],
    want: usize,
    what: &str,
    keep: impl Fn(&Flow) -> bool,
) -> Vec<(u16, Flow)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut counters: Vec<SteerCounter> = queues
        .iter()
        .map(|q| SteerCounter::new(q.steering(), q.caps().queue))
        .collect();
    while got.len() < want {
        for (qi, q) in queues.iter_mut().enumerate() {
            let mut rx: Burst<PoolBuf> = Burst::new();
            q.rx_burst(&mut rx);
            for b in rx.drain() {
                assert_eq!(b.meta().rx_queue, qi as u16);
                assert_ne!(
                    &b.data()[6..12],
                    &TPA_MAC.0,
                    "{what}: a frame sent out of the interface came back on queue {qi}"
                );
                let Some(flow) = Flow::from_frame(b.data()).filter(|f| keep(f)) else {
                    continue;
                };
                assert_eq!(
                    counters[qi].observe(b.data()),
                    Landing::Here,
                    "{what}: {flow:?} on queue {qi}"
                );
                got.push((qi as u16, flow));
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: {} of {want} frames arrived",
            got.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    got
}

/// The checks every kernel-backed port must pass: the kernel's UDP from
/// many source ports (IPv4 and IPv6) lands where predicted and spreads over
/// every queue; for each queue, ports picked for it bring the kernel's
/// replies (TCP resets) there.
fn kernel_flows_land_where_predicted<P: Port<Buf = PoolBuf>>(
    ns: &Netns,
    queues: &mut [P],
    kernel: [IpAddr; 2],
    tpa: [IpAddr; 2],
) {
    let steering = queues[0].steering();
    let n = queues.len() as u16;
    assert_eq!(steering, Steering::Program { queues: n });
    for (i, q) in queues.iter().enumerate() {
        assert_eq!(q.steering(), steering);
        assert_eq!(q.caps().queue, i as u16);
    }
    for (k, t) in kernel.into_iter().zip(tpa) {
        // The kernel starts flows from many ports.
        let sports: Vec<u16> = (21000..21064).collect();
        kernel_send_udp_any(ns, t, 4242, &sports);
        let got = receive_flows(queues, sports.len(), "kernel UDP", |f| {
            f.proto == L4::Udp && f.dst.port() == 4242
        });
        let mut per_queue = vec![0u32; usize::from(n)];
        for (q, flow) in &got {
            assert_eq!((flow.src.ip(), flow.dst.ip()), (k, t));
            assert_eq!(steering.queue_of(flow), Some(*q), "{flow:?}");
            per_queue[usize::from(*q)] += 1;
        }
        assert!(per_queue.iter().all(|&c| c > 0), "{per_queue:?}");

        // tpa opens towards a closed kernel port from picked ports.
        let remote = SocketAddr::new(k, 9);
        let mut picked = Vec::new();
        for queue in 0..n {
            for _ in 0..3 {
                let port = steering
                    .pick_local_port(L4::Tcp, t, remote, 50000..=60000, queue, |p| {
                        !picked.iter().any(|&(pp, _)| pp == p)
                    })
                    .unwrap();
                picked.push((port, queue));
                let probe = tcp_probe(SocketAddr::new(t, port), remote);
                send_frame(&mut queues[usize::from(queue)], &probe);
            }
        }
        let resets = receive_flows(queues, picked.len(), "kernel resets", |f| {
            f.proto == L4::Tcp && f.src == remote
        });
        let mut landed: Vec<(u16, u16)> = resets.iter().map(|(q, f)| (f.dst.port(), *q)).collect();
        landed.sort_unstable();
        picked.sort_unstable();
        assert_eq!(landed, picked, "replies to picked ports (port, queue)");
    }
}

/// Adds `tpa`'s addresses as permanent neighbours on `dev` and the kernel's
/// IPv6 address without duplicate detection.
fn addresses(ns: &Netns, dev: &str, kernel_v6: &str, tpa: [IpAddr; 2]) {
    ns.ip(&["-6", "addr", "add", kernel_v6, "dev", dev, "nodad"]);
    for t in tpa {
        ns.add_neigh(dev, &t.to_string(), &TPA_MAC.to_string());
    }
}

#[test]
fn af_packet_fanout_steers_kernel_flows_to_the_predicted_member() {
    let ns = Netns::new("steer-afp");
    ns.add_veth("tpa0", "knl0");
    ns.set_mac("tpa0", TPA_MAC);
    ns.set_mac("knl0", KERNEL_MAC);
    ns.add_addr("knl0", "10.13.0.1/24");
    ns.up("tpa0");
    ns.up("knl0");
    let tpa: [IpAddr; 2] = [
        Ipv4Addr::new(10, 13, 0, 2).into(),
        "fd13::2".parse::<Ipv6Addr>().unwrap().into(),
    ];
    let kernel: [IpAddr; 2] = [
        Ipv4Addr::new(10, 13, 0, 1).into(),
        "fd13::1".parse::<Ipv6Addr>().unwrap().into(),
    ];
    addresses(&ns, "knl0", "fd13::1/64", tpa);

    let pool = test_pool("steer-afp");
    let cfg = AfPacketConfig {
        queues: 2,
        ..AfPacketConfig::new("tpa0")
    };
    assert_eq!(cfg.fanout, Fanout::Steered);
    let mut queues = ns
        .enter(|| AfPacket::open_queues(&cfg, pool.clone()))
        .expect("open two queues");
    kernel_flows_land_where_predicted(&ns, &mut queues, kernel, tpa);
    drop(queues);

    // The kernel's own hash cannot be predicted, and says so.
    let hashed = AfPacketConfig {
        fanout: Fanout::KernelHash,
        ..cfg
    };
    let queues = ns
        .enter(|| AfPacket::open_queues(&hashed, pool.clone()))
        .expect("open two hashed queues");
    assert!(queues.iter().all(|q| q.steering() == Steering::Unknown));
    drop(queues);
    // One queue without fanout: everything lands on it.
    let one = ns
        .enter(|| AfPacket::open(&AfPacketConfig::new("tpa0"), pool.clone()))
        .expect("open one queue");
    assert_eq!(one.steering(), Steering::Single);
    drop(one);
    pool.assert_whole();
}

#[test]
fn multi_queue_tap_steers_kernel_flows_to_the_predicted_queue() {
    let ns = Netns::new("steer-tap");
    let pool = test_pool("steer-tap");
    let cfg = TapConfig {
        mac: Some(TPA_MAC),
        kernel_mac: Some(KERNEL_MAC),
        queues: 4,
        ..TapConfig::new("tpa0")
    };
    assert!(cfg.steered);
    let mut queues = ns
        .enter(|| Tap::open_queues(&cfg, pool.clone()))
        .expect("open a 4-queue TAP");
    ns.add_addr("tpa0", "10.14.0.1/24");
    let tpa: [IpAddr; 2] = [
        Ipv4Addr::new(10, 14, 0, 2).into(),
        "fd14::2".parse::<Ipv6Addr>().unwrap().into(),
    ];
    let kernel: [IpAddr; 2] = [
        Ipv4Addr::new(10, 14, 0, 1).into(),
        "fd14::1".parse::<Ipv6Addr>().unwrap().into(),
    ];
    addresses(&ns, "tpa0", "fd14::1/64", tpa);
    kernel_flows_land_where_predicted(&ns, &mut queues, kernel, tpa);
    drop(queues);

    // Each opening below on a device of its own: a process another test
    // thread forked may still hold a copy of a queue just dropped (until
    // it execs), and tpa0 would then still be a 4-queue device.
    let single = TapConfig {
        name: "tpa1".into(),
        queues: 1,
        ..cfg.clone()
    };
    let one = ns
        .enter(|| Tap::open(&single, pool.clone()))
        .expect("one queue");
    assert_eq!(one.steering(), Steering::Single);
    drop(one);
    let unsteered = TapConfig {
        name: "tpa2".into(),
        steered: false,
        ..cfg
    };
    let queues = ns
        .enter(|| Tap::open_queues(&unsteered, pool.clone()))
        .expect("open unsteered");
    assert!(queues.iter().all(|q| q.steering() == Steering::Unknown));
    drop(queues);
    pool.assert_whole();
}
