//! Kernel-bound ports: TAP and AF_PACKET packet rates through the Linux
//! kernel, on one core, with 60-byte frames (64 on a wire with the FCS).
//!
//! - `tap/tx`: tpa writes frames to a TAP; the kernel receives and drops
//!   them (an EtherType nobody handles).
//! - `tap/bridge_loop`: tpa writes to TAP `a`, the kernel bridges to TAP `b`,
//!   tpa reads them back from `b`: TX + kernel forwarding + RX per frame.
//! - `af_packet/tx`: tpa sends through the TPACKET_V2 ring of veth `a`; the
//!   kernel receives on `b` and drops them.
//! - `af_packet/tx_ring_copy`: the same with `TxPath::RingCopy` (the
//!   kernel copies each frame out of the ring).
//! - `af_packet/tx_qdisc_bypass`: the same with `PACKET_QDISC_BYPASS`.
//! - `af_packet/tx_sendmmsg`: the same with `TxPath::Sendmmsg` (one
//!   `sendmmsg` per burst instead of the ring).
//! - `af_packet/veth_loop`: tpa sends on veth `a` and receives on veth `b`
//!   through the default low-latency receive ring (TPACKET_V2, one frame
//!   slot each): TX + veth + RX per frame.
//! - `af_packet/veth_loop_sendmmsg`: the same, sending with `sendmmsg`.
//! - `af_packet/veth_loop_throughput_rx`: the same as `veth_loop`,
//!   receiving through the throughput ring (`RxMode::Throughput`,
//!   TPACKET_V3 blocks).
//! - `af_xdp/tx`, `af_xdp/veth_loop`: the same with AF_XDP ports (copy
//!   mode, tpa's XDP program in native mode), UDP frames of 60 bytes to the
//!   receiver's address and an open port so the program hands them over.
//! - `rtt/{tap,af_packet_low_latency,af_packet_throughput}`: one round trip
//!   through the kernel per iteration: tpa sends an ICMP echo request to
//!   the kernel's address and polls its port until the reply is in. The
//!   receive ring's hand-over delay shows here: a TPACKET_V3 block waits
//!   for its retire timer (1 ms) when traffic is light.
//!
//! Loops keep at most 4096 frames in flight: enough to fill the receive
//! ring's blocks in throughput mode (a TPACKET_V3 block is handed over when
//! full or 1 ms after its first frame, so a small window would measure that
//! timeout), few enough not to overrun the receiver (the low-latency ring
//! is opened with 4096 slots, four times its default). A frame that never
//! arrives is reported, not hidden.
//! Each group runs in a network namespace of its own. Needs root.
//!
//! Run: `cargo bench -p tpa-benches --bench kernel_ports`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, FrameRingSize, RxMode, TxPath};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::{Burst, Port};
use tpa::wire::MacAddr;
use tpa_tests::netns::Netns;

/// Frames per burst, and per criterion iteration.
const BURST: usize = 32;
/// Most frames sent and not yet received in a loop benchmark (see the
/// module comment).
const WINDOW: usize = 4096;
/// A loop gives up on missing frames after this long without progress.
const STALL: Duration = Duration::from_millis(200);
/// The IEEE "local experimental" EtherType: no kernel protocol handles it.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbe, 0x01]);
const DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0xbe, 0x02]);

fn frame() -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&DST.0);
    f[6..12].copy_from_slice(&SRC.0);
    f[12..14].copy_from_slice(&ETHERTYPE);
    f
}

fn pool() -> Pool {
    Pool::new(PoolConfig {
        name: "kernel-ports-bench".into(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// Fills `tx` with up to `n` benchmark frames from `port`'s pool.
fn refill<P: Port<Buf = PoolBuf>>(port: &mut P, tx: &mut Burst<PoolBuf>, n: usize, f: &[u8]) {
    while tx.len() < n {
        let Some(mut b) = port.alloc() else { break };
        let Ok(dst) = b.append(f.len()) else { break };
        dst.copy_from_slice(f);
        tx.push(b);
    }
}

/// Sends `frames` frames on `tx_port` as fast as it takes them.
fn send_only<P: Port<Buf = PoolBuf>>(port: &mut P, frames: u64) -> Duration {
    send_frame(port, frames, &frame())
}

/// Sends `frames` copies of `f` on `port` as fast as it takes them.
fn send_frame<P: Port<Buf = PoolBuf>>(port: &mut P, frames: u64, f: &[u8]) -> Duration {
    let mut tx: Burst<PoolBuf> = Burst::new();
    let mut sent = 0u64;
    let start = Instant::now();
    while sent < frames {
        let want = (frames - sent).min(BURST as u64) as usize;
        refill(port, &mut tx, want, f);
        sent += port.tx_burst(&mut tx) as u64;
    }
    start.elapsed()
}

/// Streams `frames` frames from `tx_port` to `rx_port`, at most
/// [`WINDOW`] in flight; returns the time and how many never arrived.
fn stream<T, R>(tx_port: &mut T, rx_port: &mut R, frames: u64) -> (Duration, u64)
where
    T: Port<Buf = PoolBuf>,
    R: Port<Buf = PoolBuf>,
{
    stream_frame(tx_port, rx_port, frames, &frame())
}

/// [`stream`] with copies of `f`, counting received frames of its
/// EtherType.
fn stream_frame<T, R>(tx_port: &mut T, rx_port: &mut R, frames: u64, f: &[u8]) -> (Duration, u64)
where
    T: Port<Buf = PoolBuf>,
    R: Port<Buf = PoolBuf>,
{
    let mut tx: Burst<PoolBuf> = Burst::new();
    let mut rx: Burst<PoolBuf> = Burst::new();
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let mut progress = start;
    while received < frames {
        let in_flight = (sent - received) as usize;
        if sent < frames && in_flight < WINDOW {
            let want = (frames - sent).min((WINDOW - in_flight).min(BURST) as u64) as usize;
            refill(tx_port, &mut tx, want, f);
            sent += tx_port.tx_burst(&mut tx) as u64;
        }
        if rx_port.rx_burst(&mut rx) > 0 {
            progress = Instant::now();
            received += rx
                .drain()
                .filter(|b| b.data().get(12..14) == f.get(12..14))
                .count() as u64;
        } else if sent == frames && progress.elapsed() > STALL {
            break;
        }
    }
    let elapsed = start.elapsed();
    (elapsed, frames.saturating_sub(received))
}

fn tap_benches(c: &mut Criterion) {
    let pool = pool();
    let mut g = c.benchmark_group("tap");
    g.throughput(Throughput::Elements(BURST as u64));

    let ns = Netns::new("bench-tap");
    let mut a = ns
        .enter(|| Tap::open(&TapConfig::new("tapa"), pool.clone()))
        .expect("TAP a");
    g.bench_function("tx", |bch| {
        bch.iter_custom(|iters| send_only(&mut a, iters * BURST as u64))
    });

    let mut b = ns
        .enter(|| Tap::open(&TapConfig::new("tapb"), pool.clone()))
        .expect("TAP b");
    ns.ip(&["link", "add", "br0", "type", "bridge"]);
    ns.ip(&["link", "set", "dev", "tapa", "master", "br0"]);
    ns.ip(&["link", "set", "dev", "tapb", "master", "br0"]);
    ns.up("br0");
    let lost = Cell::new(0u64);
    g.bench_function("bridge_loop", |bch| {
        bch.iter_custom(|iters| {
            let (t, l) = stream(&mut a, &mut b, iters * BURST as u64);
            lost.set(lost.get() + l);
            t
        })
    });
    g.finish();
    if lost.get() > 0 {
        eprintln!("tap/bridge_loop: {} frames lost", lost.get());
    }
    drop((a, b));
    pool.assert_whole();
}

fn af_packet_benches(c: &mut Criterion) {
    let pool = pool();
    let mut g = c.benchmark_group("af_packet");
    g.throughput(Throughput::Elements(BURST as u64));

    let ns = Netns::new("bench-afp");
    ns.add_veth("va", "vb");
    ns.up("va");
    ns.up("vb");
    // The rows name their transmit path: the default (`TxPath::Auto`)
    // would pick `RingCopy` on these veths.
    let ring_cfg = AfPacketConfig {
        tx_path: TxPath::Ring,
        ..AfPacketConfig::new("va")
    };
    let mut a = ns
        .enter(|| AfPacket::open(&ring_cfg, pool.clone()))
        .expect("AF_PACKET a");
    g.bench_function("tx", |bch| {
        bch.iter_custom(|iters| send_only(&mut a, iters * BURST as u64))
    });

    let copy_cfg = AfPacketConfig {
        tx_path: TxPath::RingCopy,
        ..AfPacketConfig::new("va")
    };
    let mut copy = ns
        .enter(|| AfPacket::open(&copy_cfg, pool.clone()))
        .expect("AF_PACKET a, ring copied");
    g.bench_function("tx_ring_copy", |bch| {
        bch.iter_custom(|iters| send_only(&mut copy, iters * BURST as u64))
    });
    drop(copy);

    let bypass_cfg = AfPacketConfig {
        qdisc_bypass: true,
        ..ring_cfg.clone()
    };
    let mut bypass = ns
        .enter(|| AfPacket::open(&bypass_cfg, pool.clone()))
        .expect("AF_PACKET a, qdisc bypass");
    g.bench_function("tx_qdisc_bypass", |bch| {
        bch.iter_custom(|iters| send_only(&mut bypass, iters * BURST as u64))
    });
    drop(bypass);

    let mmsg_cfg = AfPacketConfig {
        tx_path: TxPath::Sendmmsg,
        ..AfPacketConfig::new("va")
    };
    let mut mmsg = ns
        .enter(|| AfPacket::open(&mmsg_cfg, pool.clone()))
        .expect("AF_PACKET a, sendmmsg");
    g.bench_function("tx_sendmmsg", |bch| {
        bch.iter_custom(|iters| send_only(&mut mmsg, iters * BURST as u64))
    });

    // A slot for every frame the loop may have in flight.
    let b_cfg = AfPacketConfig {
        rx_mode: RxMode::LowLatency(FrameRingSize {
            frame_count: WINDOW as u32,
        }),
        ..AfPacketConfig::new("vb")
    };
    let mut b = ns
        .enter(|| AfPacket::open(&b_cfg, pool.clone()))
        .expect("AF_PACKET b");
    let lost = Cell::new(0u64);
    g.bench_function("veth_loop", |bch| {
        bch.iter_custom(|iters| {
            let (t, l) = stream(&mut a, &mut b, iters * BURST as u64);
            lost.set(lost.get() + l);
            t
        })
    });
    g.bench_function("veth_loop_sendmmsg", |bch| {
        bch.iter_custom(|iters| {
            let (t, l) = stream(&mut mmsg, &mut b, iters * BURST as u64);
            lost.set(lost.get() + l);
            t
        })
    });
    // Only one receiver on `vb` at a time: the kernel copies every frame
    // into each open ring.
    let rx_low_latency = b.stats();
    drop(b);
    let v3_cfg = AfPacketConfig {
        rx_mode: RxMode::throughput(),
        ..AfPacketConfig::new("vb")
    };
    let mut b3 = ns
        .enter(|| AfPacket::open(&v3_cfg, pool.clone()))
        .expect("AF_PACKET b, throughput ring");
    g.bench_function("veth_loop_throughput_rx", |bch| {
        bch.iter_custom(|iters| {
            let (t, l) = stream(&mut a, &mut b3, iters * BURST as u64);
            lost.set(lost.get() + l);
            t
        })
    });
    g.finish();
    let sa = a.stats();
    eprintln!(
        "af_packet: a tx {} (oversize {}, errors {})",
        sa.tx_packets, sa.tx_oversize, sa.tx_errors
    );
    for (name, sb) in [("low latency", rx_low_latency), ("throughput", b3.stats())] {
        eprintln!(
            "af_packet: b ({name} ring) rx {} (kernel drops {}, no buffer {})",
            sb.rx_packets, sb.rx_kernel_drops, sb.rx_no_buffer
        );
    }
    if lost.get() > 0 {
        eprintln!("af_packet/veth_loop*: {} frames lost", lost.get());
    }
    drop((a, b3, mmsg));
    pool.assert_whole();
}

/// A 60-byte UDP/IPv4 frame from 10.97.0.1:9 to 10.97.0.2:9 (tpa's
/// flow on the AF_XDP receiver), 18 bytes of payload.
fn udp_frame(src: MacAddr, dst: MacAddr) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src.0, dst.0)
        .ipv4([10, 97, 0, 1], [10, 97, 0, 2], 64)
        .udp(9, 9);
    let payload = [0x5au8; 18];
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, &payload).expect("build UDP frame");
    assert_eq!(f.len(), 60);
    f
}

/// AF_XDP on a veth pair, the same 60-byte frames as AF_PACKET's groups
/// but UDP (the XDP program hands the receiver only tpa's flows):
/// `tx` sends from `xa`; `veth_loop` sends from `xa` and receives on
/// `xb`, both AF_XDP (copy mode: veth has no zero-copy), the program in
/// native mode on both ends.
fn af_xdp_benches(c: &mut Criterion) {
    use std::net::{IpAddr, Ipv4Addr};
    use tpa::port::af_xdp::{AfXdp, AfXdpConfig, Transport, XskRingSize};
    let rings = XskRingSize {
        fill: 4096,
        rx: 4096,
        tx: 1024,
        completion: 1024,
    };
    let pool = Pool::new(PoolConfig {
        name: "af-xdp-bench".into(),
        capacity: 32768,
        huge_pages: false,
        rx_reserve: 4096,
        ..PoolConfig::default()
    })
    .expect("pool");
    let mut g = c.benchmark_group("af_xdp");
    g.throughput(Throughput::Elements(BURST as u64));
    let ns = Netns::new("bench-xdp");
    ns.add_veth("xa", "xb");
    ns.up("xa");
    ns.up("xb");
    let open = |dev: &str, addr: [u8; 4]| {
        let cfg = AfXdpConfig {
            rings,
            ..AfXdpConfig::new(dev, vec![IpAddr::V4(Ipv4Addr::from(addr))])
        };
        ns.enter(|| AfXdp::open(&cfg, pool.clone()))
            .expect("AF_XDP")
    };
    let mut a = open("xa", [10, 97, 0, 1]);
    let mut b = open("xb", [10, 97, 0, 2]);
    b.filter().open_port(Transport::Udp, 9).expect("open port");
    let f = udp_frame(a.caps().mac, b.caps().mac);
    g.bench_function("tx", |bch| {
        bch.iter_custom(|iters| send_xdp(&mut a, &mut b, iters * BURST as u64, &f))
    });
    let lost = Cell::new(0u64);
    g.bench_function("veth_loop", |bch| {
        bch.iter_custom(|iters| {
            let (t, l) = stream_frame(&mut a, &mut b, iters * BURST as u64, &f);
            lost.set(lost.get() + l);
            t
        })
    });
    g.finish();
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "af_xdp: a tx {} (dropped {}, errors {}); b rx {} (kernel drops {}, fill empty {}); xdp on b {:?}",
        sa.tx_packets,
        sa.tx_dropped,
        sa.tx_errors,
        sb.rx_packets,
        sb.rx_kernel_dropped,
        sb.rx_fill_ring_empty,
        b.filter().counters()
    );
    if lost.get() > 0 {
        eprintln!("af_xdp/veth_loop: {} frames lost", lost.get());
    }
    drop((a, b));
    pool.assert_whole();
}

/// [`send_frame`] for AF_XDP, receiving and dropping what `b` gets
/// between bursts (off the clock is not possible: the receiver's ring
/// must drain for the sender's buffers to come back).
fn send_xdp(
    a: &mut tpa::port::af_xdp::AfXdp,
    b: &mut tpa::port::af_xdp::AfXdp,
    frames: u64,
    f: &[u8],
) -> Duration {
    let mut tx: Burst<PoolBuf> = Burst::new();
    let mut rx: Burst<PoolBuf> = Burst::new();
    let mut sent = 0u64;
    let start = Instant::now();
    let mut last = Instant::now();
    while sent < frames {
        let want = (frames - sent).min(BURST as u64) as usize;
        refill(a, &mut tx, want, f);
        let n = a.tx_burst(&mut tx) as u64;
        sent += n;
        if n > 0 {
            last = Instant::now();
        } else if last.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "stalled: a {:?} lent {} pool {:?}; b {:?} lent {}",
                a.stats(),
                a.lent(),
                a.pool().stats(),
                b.stats(),
                b.lent()
            );
            last = Instant::now();
        }
        b.rx_burst(&mut rx);
        rx.clear();
    }
    start.elapsed()
}

/// An ICMP echo request from `src` to `dst`.
fn echo_request(src: (MacAddr, [u8; 4]), dst: (MacAddr, [u8; 4])) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src.0 .0, dst.0 .0)
        .ipv4(src.1, dst.1, 64)
        .icmpv4_echo_request(0x7e57, 1);
    let payload = [0x5au8; 32];
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, &payload).expect("build echo request");
    f
}

fn is_echo_reply(frame: &[u8]) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    matches!(&p.transport, Some(TransportSlice::Icmpv4(i))
        if matches!(i.icmp_type(), Icmpv4Type::EchoReply(e) if e.id == 0x7e57))
}

/// `rounds` round trips: send `request`, poll `port` until the kernel's
/// echo reply arrives (a lost one is reported after a second).
fn round_trips<P: Port<Buf = PoolBuf>>(port: &mut P, request: &[u8], rounds: u64) -> Duration {
    let mut tx: Burst<PoolBuf> = Burst::new();
    let mut rx: Burst<PoolBuf> = Burst::new();
    let start = Instant::now();
    for _ in 0..rounds {
        refill(port, &mut tx, 1, request);
        while !tx.is_empty() {
            port.tx_burst(&mut tx);
        }
        let sent = Instant::now();
        loop {
            port.rx_burst(&mut rx);
            if rx.drain().filter(|b| is_echo_reply(b.data())).count() > 0 {
                break;
            }
            if sent.elapsed() > Duration::from_secs(1) {
                eprintln!("{}: an echo reply never came", port.caps().name);
                break;
            }
        }
    }
    start.elapsed()
}

fn rtt_benches(c: &mut Criterion) {
    let pool = pool();
    let mut g = c.benchmark_group("rtt");
    let ns = Netns::new("bench-rtt");
    let tpa_ip = [10, 98, 0, 2];
    let kernel_ip = [10, 98, 0, 1];

    let mut tap = ns
        .enter(|| Tap::open(&TapConfig::new("tapr"), pool.clone()))
        .expect("TAP");
    ns.add_addr("tapr", "10.98.0.1/24");
    ns.add_neigh("tapr", "10.98.0.2", &tap.caps().mac.to_string());
    let kernel_mac: MacAddr = ns.mac_of("tapr").parse().expect("MAC");
    let request = echo_request((tap.caps().mac, tpa_ip), (kernel_mac, kernel_ip));
    g.bench_function("tap", |bch| {
        bch.iter_custom(|iters| round_trips(&mut tap, &request, iters))
    });
    drop(tap);

    ns.add_veth("ra", "rb");
    ns.add_addr("rb", "10.99.0.1/24");
    ns.up("ra");
    ns.up("rb");
    let tpa_mac: MacAddr = ns.mac_of("ra").parse().expect("MAC");
    let kernel_mac: MacAddr = ns.mac_of("rb").parse().expect("MAC");
    ns.add_neigh("rb", "10.99.0.2", &tpa_mac.to_string());
    let request = echo_request((tpa_mac, [10, 99, 0, 2]), (kernel_mac, [10, 99, 0, 1]));
    for (name, mode) in [
        ("af_packet_low_latency", RxMode::low_latency()),
        ("af_packet_throughput", RxMode::throughput()),
    ] {
        let cfg = AfPacketConfig {
            rx_mode: mode,
            ..AfPacketConfig::new("ra")
        };
        let mut port = ns
            .enter(|| AfPacket::open(&cfg, pool.clone()))
            .expect("AF_PACKET");
        g.bench_function(name, |bch| {
            bch.iter_custom(|iters| round_trips(&mut port, &request, iters))
        });
    }
    g.finish();
    pool.assert_whole();
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    tap_benches(&mut c);
    af_packet_benches(&mut c);
    af_xdp_benches(&mut c);
    rtt_benches(&mut c);
    c.final_summary();
}
