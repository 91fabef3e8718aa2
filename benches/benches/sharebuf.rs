//! Shareable buffers: holding a 1460-byte payload by reference (clone +
//! drop of a `Shared`) against copying it, and sending a retransmission
//! over a MemoryWire as a header segment chained to the held payload
//! against building the flat frame. `cargo bench -p tpa-benches --bench sharebuf`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::memory::{MemoryWire, WireConfig};
use tpa::port::{Burst, Port};

const PAYLOAD: usize = 1460;
const HEADER: usize = 42;
const BURST: usize = 32;

fn pool() -> Pool {
    Pool::new(PoolConfig {
        capacity: 1024,
        ..PoolConfig::default()
    })
    .unwrap()
}

fn payload(pool: &Pool) -> PoolBuf {
    let mut b = pool.alloc().unwrap();
    b.extend_from_slice(&[0x5a; PAYLOAD]).unwrap();
    b
}

fn hold(c: &mut Criterion) {
    let pool = pool();
    let mut g = c.benchmark_group("sharebuf/hold_1460B");
    g.throughput(Throughput::Elements(1));
    let held = payload(&pool).share();
    g.bench_function("clone_drop_shared", |b| {
        b.iter(|| drop(std::hint::black_box(held.clone())))
    });
    let flat = payload(&pool);
    g.bench_function("copy_drop", |b| {
        b.iter(|| drop(std::hint::black_box(flat.copy().unwrap())))
    });
    g.bench_function("alloc_drop_unshared", |b| {
        b.iter(|| drop(std::hint::black_box(pool.alloc().unwrap())))
    });
    g.finish();
    drop((held, flat));
    pool.assert_whole();
}

fn send(c: &mut Criterion) {
    let (mut a, mut z) = MemoryWire::pair(WireConfig {
        pool: Some(pool()),
        ..WireConfig::default()
    })
    .unwrap();
    let held = payload(a.pool()).share();
    let frame = [0x5au8; HEADER + PAYLOAD];
    let mut g = c.benchmark_group("sharebuf/send_1502B_memory_wire");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut round = |a: &mut tpa::port::memory::MemoryPort, build: &dyn Fn(&mut PoolBuf)| {
        let mut tx: Burst<PoolBuf, BURST> = Burst::new();
        for _ in 0..BURST {
            let mut p = a.alloc().unwrap();
            build(&mut p);
            tx.push(p);
        }
        assert_eq!(a.tx_burst(&mut tx), BURST);
        let mut rx: Burst<PoolBuf, BURST> = Burst::new();
        assert_eq!(z.rx_burst(&mut rx), BURST);
        debug_assert!(rx.as_slice().iter().all(|p| p.len() == HEADER + PAYLOAD));
    };
    g.bench_function("flat_frame", |b| {
        b.iter(|| round(&mut a, &|p| p.extend_from_slice(&frame).unwrap()))
    });
    g.bench_function("header_chained_to_held_payload", |b| {
        b.iter(|| {
            round(&mut a, &|p| {
                p.extend_from_slice(&frame[..HEADER]).unwrap();
                p.chain_shared(held.clone()).unwrap();
            })
        })
    });
    g.finish();
    let pool = a.pool().clone();
    drop((held, a, z));
    pool.assert_whole();
}

criterion_group! {
    name = benches;
    config = tpa_benches::criterion();
    targets = hold, send
}
criterion_main!(benches);
