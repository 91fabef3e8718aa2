//! l2fwd over DPDK's `net_ring` next to tpa's `MemoryWire`: the cost of the
//! port layer itself (burst RX/TX, buffer handling, metadata), with no
//! device or kernel in between.
//!
//! Two ports: a peer on port A sends a burst of 32 frames of 60 bytes to
//! the forwarder on port B, which receives them, swaps the MACs in place
//! and sends them back; the peer takes them back and puts them at the end
//! of its line of frames. The figure is the forwarder's: frames that left
//! port B, each once (32 per iteration), though the peer's work is in the
//! time too. No allocation in the loop.
//!
//! - `hot`: the same 32 buffers go round, always in cache.
//! - `cold`: the peer's line holds [`COLD_FRAMES`] (2^18) distinct buffers
//!   and sends them in turn, so each comes back round only after every
//!   other one: the ~4 cache lines each frame touches (mbuf or buffer
//!   header, metadata, data) add up to about 64 MiB, twice this machine's
//!   32 MiB last-level cache. (2^16 buffers would touch about 16 MiB.)
//!
//! Groups:
//! - `dpdk_l2fwd/*`: the forwarder is a hand-written loop.
//! - `dpdk_l2fwd_pipeline/*`: the forwarder is a `#[pipeline]` reflector
//!   (one MAC-swap stage returning `Transmit`), one `run_once` per
//!   iteration.
//!
//! The two `net_ring` ports are a `DpdkDevice::ring_pair`: one ring each
//! way. A frame missing fails the bench; at the end every count is
//! checked, the devices are closed and every pool is checked whole.
//!
//! Needs root (DPDK's EAL, `--no-huge --no-pci`). Run:
//! `cargo bench -p tpa-benches --features dpdk --bench dpdk_ring`.

use std::collections::VecDeque;

use criterion::{Criterion, Throughput};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig as BufPoolConfig};
use tpa::pipeline;
use tpa::port::dpdk::{sys, DeviceConfig, DpdkDevice, DpdkPort, Eal, PoolConfig};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Reason, Stage, Verdict};

/// Frames per burst.
const BURST: usize = 32;
/// Distinct buffers in the cold variants.
const COLD_FRAMES: usize = 1 << 18;
/// Receive polls a peer makes for one burst before it calls frames lost.
const PATIENCE: u32 = 1_000_000;

fn frame() -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// Swaps destination and source MAC in place, as l2fwd does.
#[inline]
fn swap_macs<B: PacketBuf>(b: &mut B) {
    let d = b.data_mut();
    if d.len() >= 12 {
        let (dst, src) = d.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
    }
}

/// The l2fwd stage: swap the MACs, send the frame back out.
struct L2Fwd;

impl<B: PacketBuf, S> Stage<B, S> for L2Fwd {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut frame: B, _cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if frame.len() < 12 {
            return Verdict::Drop(Reason::TOO_SHORT);
        }
        swap_macs(&mut frame);
        Verdict::Transmit(frame)
    }
}

/// A MAC-swapping reflector on any port.
#[pipeline(burst = 32)]
struct Reflector<P: Port> {
    #[port]
    port: P,
    swap: L2Fwd,
}

/// The traffic source and sink on port A: a line of filled buffers, sent a
/// burst at a time from the front and put back at the end when they return.
struct Peer<P: Port> {
    port: P,
    line: VecDeque<P::Buf>,
    sent: u64,
    received: u64,
}

impl<P: Port> Peer<P> {
    /// A peer on `port` with `frames` buffers from the port's pool.
    fn new(mut port: P, frames: usize) -> Peer<P> {
        let mut line = VecDeque::with_capacity(frames);
        for _ in 0..frames {
            let mut b = port.alloc().expect("a buffer for the peer's line");
            b.append(60).expect("room").copy_from_slice(&frame());
            line.push_back(b);
        }
        Peer {
            port,
            line,
            sent: 0,
            received: 0,
        }
    }

    /// Sends the next burst from the front of the line.
    #[inline]
    fn send(&mut self) {
        let mut tx: Burst<P::Buf> = Burst::new();
        for _ in 0..BURST {
            tx.push(self.line.pop_front().expect("the line holds a burst"));
        }
        while !tx.is_empty() {
            self.port.tx_burst(&mut tx);
        }
        self.sent += BURST as u64;
    }

    /// Takes a whole burst back, to the end of the line.
    #[inline]
    fn receive(&mut self) {
        let mut rx: Burst<P::Buf> = Burst::new();
        let mut polls = 0;
        while rx.len() < BURST {
            if self.port.rx_burst(&mut rx) == 0 {
                polls += 1;
                assert!(polls < PATIENCE, "only {} of {BURST} came back", rx.len());
            }
        }
        self.received += BURST as u64;
        self.line.extend(rx.drain());
    }
}

/// The hand-written forwarder on port B: what arrived, MACs swapped, back
/// out; counts what left.
struct HandForwarder<P: Port> {
    port: P,
    burst: Burst<P::Buf>,
    forwarded: u64,
}

impl<P: Port> HandForwarder<P> {
    fn new(port: P) -> Self {
        HandForwarder {
            port,
            burst: Burst::new(),
            forwarded: 0,
        }
    }

    #[inline]
    fn run_once(&mut self) {
        self.port.rx_burst(&mut self.burst);
        for b in self.burst.as_mut_slice() {
            swap_macs(b);
        }
        let n = self.burst.len();
        while !self.burst.is_empty() {
            self.port.tx_burst(&mut self.burst);
        }
        self.forwarded += n as u64;
    }
}

/// One iteration: the peer sends a burst, the forwarder forwards it, the
/// peer takes it back.
#[inline]
fn l2fwd<P: Port, F>(peer: &mut Peer<P>, forward: impl FnOnce(&mut F), forwarder: &mut F) {
    peer.send();
    forward(forwarder);
    peer.receive();
}

/// Two `net_ring` ports wired to each other (`DpdkDevice::ring_pair`),
/// with pools of `mbufs` (A's holds the peer's line; B's only feeds its
/// receive queue, which `net_ring` never fills from it).
fn ring_pair(eal: &Eal, tag: &str, mbufs: u32) -> (DpdkDevice, DpdkDevice) {
    let cfg = DeviceConfig {
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        pool: PoolConfig {
            mbufs,
            cache: 256,
            // Headroom and 128 bytes: room for the 60-byte frames, and
            // small objects so the cold line is mostly what frames touch.
            data_room: sys::RTE_PKTMBUF_HEADROOM as u16 + 128,
            ..PoolConfig::default()
        },
        ..DeviceConfig::default()
    };
    DpdkDevice::ring_pair(eal, tag, &cfg).expect("net_ring pair")
}

/// A `MemoryWire` whose pool holds `buffers` buffers, and that pool.
fn wire(buffers: usize) -> (MemoryPort, MemoryPort, Pool) {
    let pool = Pool::new(BufPoolConfig {
        name: format!("wire{buffers}"),
        capacity: buffers,
        data_room: 128,
        ..BufPoolConfig::default()
    })
    .expect("pool");
    let (a, b) = MemoryWire::pair(WireConfig {
        pool: Some(pool.clone()),
        ..WireConfig::default()
    })
    .expect("wire");
    (a, b, pool)
}

/// The frames a peer got back equal those it sent and the forwarder
/// forwarded.
fn check_counts<P: Port>(what: &str, peer: &Peer<P>, forwarded: u64) {
    assert_eq!(peer.sent, peer.received, "{what}: frames lost");
    assert_eq!(peer.sent, forwarded, "{what}: the forwarder's count");
    println!("{what}: {forwarded} frames forwarded, every one back");
}

fn bench(c: &mut Criterion) {
    let eal = Eal::init(&[
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "768",
        "--log-level",
        "lib.eal:warning",
        "--file-prefix",
        &format!("tpa-bench-{}", std::process::id()),
    ])
    .expect("EAL (run as root)");

    let (hot_a, hot_b) = ring_pair(eal, "h", 1023);
    let (cold_a, cold_b) = ring_pair(eal, "c", (COLD_FRAMES + 1023) as u32);
    let (wire_hot_a, wire_hot_b, wire_hot_pool) = wire(1024);
    let (wire_cold_a, wire_cold_b, wire_cold_pool) = wire(COLD_FRAMES + 1024);

    let mut ring_hot = Peer::new(hot_a.port(0).expect("port"), BURST);
    let mut ring_cold = Peer::new(cold_a.port(0).expect("port"), COLD_FRAMES);
    let mut wire_hot = Peer::new(wire_hot_a, BURST);
    let mut wire_cold = Peer::new(wire_cold_a, COLD_FRAMES);

    // The forwarder written by hand.
    let mut g = c.benchmark_group("dpdk_l2fwd");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut fwd_ring_hot = HandForwarder::new(hot_b.port(0).expect("port"));
    let mut fwd_ring_cold = HandForwarder::new(cold_b.port(0).expect("port"));
    let mut fwd_wire_hot = HandForwarder::new(wire_hot_b);
    let mut fwd_wire_cold = HandForwarder::new(wire_cold_b);
    g.bench_function("net_ring_hot", |bench| {
        bench.iter(|| l2fwd(&mut ring_hot, HandForwarder::run_once, &mut fwd_ring_hot))
    });
    g.bench_function("net_ring_cold", |bench| {
        bench.iter(|| l2fwd(&mut ring_cold, HandForwarder::run_once, &mut fwd_ring_cold))
    });
    g.bench_function("memory_wire_hot", |bench| {
        bench.iter(|| l2fwd(&mut wire_hot, HandForwarder::run_once, &mut fwd_wire_hot))
    });
    g.bench_function("memory_wire_cold", |bench| {
        bench.iter(|| l2fwd(&mut wire_cold, HandForwarder::run_once, &mut fwd_wire_cold))
    });
    g.finish();
    check_counts("dpdk_l2fwd/net_ring_hot", &ring_hot, fwd_ring_hot.forwarded);
    check_counts(
        "dpdk_l2fwd/net_ring_cold",
        &ring_cold,
        fwd_ring_cold.forwarded,
    );
    check_counts(
        "dpdk_l2fwd/memory_wire_hot",
        &wire_hot,
        fwd_wire_hot.forwarded,
    );
    check_counts(
        "dpdk_l2fwd/memory_wire_cold",
        &wire_cold,
        fwd_wire_cold.forwarded,
    );

    // The forwarder as a #[pipeline].
    let mut g = c.benchmark_group("dpdk_l2fwd_pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut pipe_ring_hot = Reflector::new(fwd_ring_hot.port, L2Fwd);
    let mut pipe_ring_cold = Reflector::new(fwd_ring_cold.port, L2Fwd);
    let mut pipe_wire_hot = Reflector::new(fwd_wire_hot.port, L2Fwd);
    let mut pipe_wire_cold = Reflector::new(fwd_wire_cold.port, L2Fwd);
    let peers_before = [ring_hot.sent, ring_cold.sent, wire_hot.sent, wire_cold.sent];
    g.bench_function("net_ring_hot", |bench| {
        bench.iter(|| {
            l2fwd(
                &mut ring_hot,
                |p: &mut Reflector<DpdkPort>| {
                    p.run_once();
                },
                &mut pipe_ring_hot,
            )
        })
    });
    g.bench_function("net_ring_cold", |bench| {
        bench.iter(|| {
            l2fwd(
                &mut ring_cold,
                |p: &mut Reflector<DpdkPort>| {
                    p.run_once();
                },
                &mut pipe_ring_cold,
            )
        })
    });
    g.bench_function("memory_wire_hot", |bench| {
        bench.iter(|| {
            l2fwd(
                &mut wire_hot,
                |p: &mut Reflector<MemoryPort>| {
                    p.run_once();
                },
                &mut pipe_wire_hot,
            )
        })
    });
    g.bench_function("memory_wire_cold", |bench| {
        bench.iter(|| {
            l2fwd(
                &mut wire_cold,
                |p: &mut Reflector<MemoryPort>| {
                    p.run_once();
                },
                &mut pipe_wire_cold,
            )
        })
    });
    g.finish();
    // What each peer sent during this group, the pipeline forwarded.
    let sent_now = [ring_hot.sent, ring_cold.sent, wire_hot.sent, wire_cold.sent];
    let forwarded = [
        pipe_ring_hot.stats().queue_counters().tx_sent,
        pipe_ring_cold.stats().queue_counters().tx_sent,
        pipe_wire_hot.stats().queue_counters().tx_sent,
        pipe_wire_cold.stats().queue_counters().tx_sent,
    ];
    let names = [
        "net_ring_hot",
        "net_ring_cold",
        "memory_wire_hot",
        "memory_wire_cold",
    ];
    for i in 0..4 {
        let what = names[i];
        assert_eq!(
            forwarded[i],
            sent_now[i] - peers_before[i],
            "dpdk_l2fwd_pipeline/{what}: frames forwarded"
        );
        println!(
            "dpdk_l2fwd_pipeline/{what}: {} frames forwarded",
            forwarded[i]
        );
    }
    for (what, sent, received) in [
        (names[0], ring_hot.sent, ring_hot.received),
        (names[1], ring_cold.sent, ring_cold.received),
        (names[2], wire_hot.sent, wire_hot.received),
        (names[3], wire_cold.sent, wire_cold.received),
    ] {
        assert_eq!(sent, received, "{what}: frames lost");
    }

    // Every buffer back: the lines freed, both ends of each pair closed
    // (each drains its own receive ring), each pool whole.
    drop((ring_hot, ring_cold, wire_hot, wire_cold));
    drop((pipe_ring_hot, pipe_ring_cold, pipe_wire_hot, pipe_wire_cold));
    for dev in [hot_b, hot_a, cold_b, cold_a] {
        let name = dev.name().to_owned();
        for pool in dev
            .close()
            .unwrap_or_else(|_| panic!("{name} still in use"))
        {
            pool.assert_whole();
        }
    }
    wire_hot_pool.assert_whole();
    wire_cold_pool.assert_whole();
    println!("every pool whole");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/tpa-bench-{}", std::process::id()));
}
