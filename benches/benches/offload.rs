//! Software transmit offloads: checksums of one 1500-byte TCP/IPv4 and
//! UDP/IPv6 packet, and software TSO of 64 000 bytes into MSS-1448 segments.
//! `cargo bench -p tpa-benches --bench offload`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use etherparse::PacketBuilder;
use tpa::buf::{L4Protocol, LayerOffsets, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::offload::{self, TsoSegments};
use tpa::port::Offloads;

fn packet(pool: &Pool, v6_udp: bool, payload: usize) -> PoolBuf {
    let data = vec![0x5a; payload];
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::new();
    let (l3, l4, l4_proto) = if v6_udp {
        eth.ipv6([0xfd; 16], [0xfe; 16], 64)
            .udp(1, 2)
            .write(&mut out, &data)
            .unwrap();
        (14, 54, L4Protocol::Udp)
    } else {
        eth.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 3, 4)
            .write(&mut out, &data)
            .unwrap();
        (14, 34, L4Protocol::Tcp)
    };
    let mut b = pool.alloc().unwrap();
    b.extend_from_slice(&out).unwrap();
    b.meta_mut().layers = LayerOffsets {
        l2: 0,
        l3,
        l4,
        payload: LayerOffsets::UNSET,
    };
    b.meta_mut().tx.request_checksums(l4_proto);
    b
}

fn checksums(c: &mut Criterion) {
    let pool = Pool::with_capacity(64).unwrap();
    let mut g = c.benchmark_group("offload/software_checksums_1500B");
    g.throughput(Throughput::Elements(1));
    for (name, v6_udp, payload) in [("tcp_ipv4", false, 1460), ("udp_ipv6", true, 1452)] {
        let mut b = packet(&pool, v6_udp, payload);
        let request = b.meta().tx;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                b.meta_mut().tx = request;
                offload::prepare(&mut b, &Offloads::default()).unwrap()
            })
        });
    }
    g.finish();
}

fn tso(c: &mut Criterion) {
    let pool = Pool::new(PoolConfig {
        capacity: 256,
        data_room: 65536 + 256,
        ..PoolConfig::default()
    })
    .unwrap();
    let big = packet(&pool, false, 64_000);
    let mut g = c.benchmark_group("offload/software_tso");
    g.throughput(Throughput::Bytes(64_000));
    g.bench_function("64000B_mss1448_with_checksums", |bench| {
        bench.iter_batched(
            || (),
            |()| {
                let mut segs = TsoSegments::new(&big, 1448).unwrap();
                let mut n = 0;
                while let Some(seg) = segs.next_with(|| pool.alloc()) {
                    let mut seg = seg.unwrap();
                    offload::prepare(&mut seg, &Offloads::default()).unwrap();
                    n += seg.len();
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, checksums, tso);
criterion_main!(benches);
