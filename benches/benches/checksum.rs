//! The internet checksum (RFC 1071) of one buffer: tpa's `checksum::sum`
//! side by side with etherparse's and pnet_packet's (smoltcp's is
//! private to it), at the
//! lengths a stack sums: a 64-byte message, a 1460-byte segment's payload,
//! a 9000-byte jumbo frame, a 64 KiB TSO segment. Every function's sum is
//! compared with a byte-by-byte reference before anything is timed.
//!
//! Run: `cargo bench -p tpa-benches --bench checksum`, then
//! `python3 benches/report.py --only checksum`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};

/// The lengths summed, one criterion group each.
const LENGTHS: [usize; 4] = [64, 1460, 9000, 65536];

/// The folded sum of `bytes` as big-endian 16-bit words, the slow obvious
/// way: what every contender must equal.
fn reference(bytes: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for pair in bytes.chunks(2) {
        acc += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// A contender: the folded sum (not complemented) of the bytes, as a
/// host-order number.
type SumFn = fn(&[u8]) -> u16;

/// The contenders, by name.
fn contenders() -> Vec<(&'static str, SumFn)> {
    vec![
        ("tpa", |b| tpa::header::checksum::sum(b)),
        // etherparse sums native-endian words and gives the complement
        // as the bytes to store, read natively.
        ("etherparse", |b| {
            !u16::from_be(
                etherparse::checksum::Sum16BitWords::new()
                    .add_slice(b)
                    .ones_complement(),
            )
        }),
        // pnet gives the complemented checksum, big-endian as a number.
        ("pnet", |b| !pnet_packet::util::checksum(b, usize::MAX)),
    ]
}

fn checksum(c: &mut Criterion) {
    // Bytes from a fixed xorshift sequence, from an odd offset (as a
    // payload behind a 54-byte header would be, give or take).
    let mut x: u32 = 0x2545_f491;
    let bytes: Vec<u8> = (0..LENGTHS[3] + 1)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    for len in LENGTHS {
        let data = &bytes[1..1 + len];
        let want = reference(data);
        for (name, f) in contenders() {
            let got = f(data);
            // One's-complement zero has two forms: 0x0000 and 0xffff.
            assert!(
                got == want || (got | want == 0xffff && got & want == 0),
                "{name} sums {len} bytes to {got:#06x}, the reference to {want:#06x}"
            );
        }
        let mut g = c.benchmark_group(format!("checksum/{len}"));
        g.throughput(Throughput::Bytes(len as u64));
        for (name, f) in contenders() {
            g.bench_function(name, |b| b.iter(|| black_box(f(black_box(data)))));
        }
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    checksum(&mut c);
    c.final_summary();
}
