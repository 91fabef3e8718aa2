//! l2fwd over DPDK's `net_ring` vdev next to tpa's `MemoryWire`: the cost of
//! the port layer itself (burst RX/TX, buffer handling, metadata), with no
//! device or kernel in between. 32 frames of 60 bytes make two hops per
//! iteration — A sends, B receives, swaps the MACs in place and sends back,
//! A receives — so each iteration forwards 64 frames. The same buffers go
//! round and round: no allocation in the loop.
//!
//! - `l2fwd/dpdk_net_ring`: `DpdkPort` over one `net_ring` device (its
//!   queue loops back to itself), `Mbuf`s from a DPDK mempool.
//! - `l2fwd/memory_wire`: the two ends of a `MemoryWire`, `PoolBuf`s.
//! - `l2fwd_pipeline/*`: the same forwarding done by a `#[pipeline]`
//!   reflector (one MAC-swap stage returning `Transmit`), generic over the
//!   port: two `run_once` per iteration (the `net_ring` port twice, or one
//!   reflector on each end of the wire), 64 frames forwarded.
//!
//! Needs root (DPDK's EAL, `--no-huge --no-pci`). Run:
//! `cargo bench -p tpa-benches --features dpdk --bench dpdk_ring`.

use criterion::{Criterion, Throughput};
use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::port::dpdk::{DeviceConfig, DpdkDevice, Eal, PoolConfig};
use tpa::port::memory::{MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Reason, Stage, Verdict};

/// Frames per burst.
const BURST: usize = 32;

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

impl<B: PacketBuf> Stage<B> for L2Fwd {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut frame: B, _cx: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
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

/// Sends `pkts` out of `port` until all are gone.
fn send_all<P: Port>(port: &mut P, pkts: &mut Burst<P::Buf>) {
    while !pkts.is_empty() {
        port.tx_burst(pkts);
    }
}

/// One hop: `from` sends `tx` (emptying it), `to` receives into `rx` and
/// swaps the MACs of what arrived.
#[inline]
fn hop<P: Port, Q: Port<Buf = P::Buf>>(
    from: &mut P,
    to: &mut Q,
    tx: &mut Burst<P::Buf>,
    rx: &mut Burst<P::Buf>,
) {
    while !tx.is_empty() {
        from.tx_burst(tx);
    }
    while rx.len() < BURST {
        to.rx_burst(rx);
    }
    for b in rx.as_mut_slice() {
        swap_macs(b);
    }
}

/// Two hops over `a` and `b`, the buffers ending where they started.
fn l2fwd<P: Port, Q: Port<Buf = P::Buf>>(
    a: &mut P,
    b: &mut Q,
    pkts: &mut Burst<P::Buf>,
    spare: &mut Burst<P::Buf>,
) {
    hop(a, b, pkts, spare);
    hop(b, a, spare, pkts);
}

fn fill<P: Port>(port: &mut P) -> Burst<P::Buf> {
    let mut pkts = Burst::new();
    for _ in 0..BURST {
        let mut m = port.alloc().expect("buffer");
        m.append(60).expect("room").copy_from_slice(&frame());
        pkts.push(m);
    }
    pkts
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2fwd");
    g.throughput(Throughput::Elements(2 * BURST as u64));

    let eal = Eal::init(&[
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "256",
        "--log-level",
        "lib.eal:warning",
        "--file-prefix",
        &format!("tpa-bench-{}", std::process::id()),
    ])
    .expect("EAL (run as root)");
    let cfg = DeviceConfig {
        pool: PoolConfig {
            mbufs: 1023,
            ..PoolConfig::default()
        },
        ..DeviceConfig::default()
    };
    let dev = DpdkDevice::create_vdev(eal, "net_ring_bench", "", &cfg).expect("net_ring");
    // One queue looping back to itself: A and B are the same port.
    let mut ring = dev.port(0).expect("port");
    let mut pkts = fill(&mut ring);
    let mut spare = Burst::new();
    g.bench_function("dpdk_net_ring", |bench| {
        bench.iter(|| {
            hop_self(&mut ring, &mut pkts, &mut spare);
            hop_self(&mut ring, &mut spare, &mut pkts);
        })
    });
    drop((pkts, spare));

    let (mut a, mut b) = MemoryWire::pair(WireConfig::default()).expect("wire");
    let mut pkts = fill(&mut a);
    let mut spare = Burst::new();
    g.bench_function("memory_wire", |bench| {
        bench.iter(|| l2fwd(&mut a, &mut b, &mut pkts, &mut spare))
    });
    drop((pkts, spare));
    g.finish();

    let mut g = c.benchmark_group("l2fwd_pipeline");
    g.throughput(Throughput::Elements(2 * BURST as u64));

    let mut pkts = fill(&mut ring);
    send_all(&mut ring, &mut pkts);
    let mut on_ring = Reflector::new(ring, L2Fwd);
    g.bench_function("dpdk_net_ring", |bench| {
        bench.iter(|| {
            on_ring.run_once();
            on_ring.run_once();
        })
    });

    let mut pkts = fill(&mut a);
    send_all(&mut a, &mut pkts);
    let (mut on_a, mut on_b) = (Reflector::new(a, L2Fwd), Reflector::new(b, L2Fwd));
    g.bench_function("memory_wire", |bench| {
        bench.iter(|| {
            on_b.run_once();
            on_a.run_once();
        })
    });
    g.finish();
    drop((on_ring, on_a, on_b));
}

/// A hop on a port that is its own peer.
#[inline]
fn hop_self<P: Port>(p: &mut P, tx: &mut Burst<P::Buf>, rx: &mut Burst<P::Buf>) {
    while !tx.is_empty() {
        p.tx_burst(tx);
    }
    while rx.len() < BURST {
        p.rx_burst(rx);
    }
    for b in rx.as_mut_slice() {
        swap_macs(b);
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/tpa-bench-{}", std::process::id()));
}
