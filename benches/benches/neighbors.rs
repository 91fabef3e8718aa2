//! Neighbor lookup (a hit, the egress fast path; groups `neighbors/<n>`) in tpa's hashed neighbor
//! cache against the linear table it replaced, at 16, 1024 and 65536
//! neighbors. Each iteration looks up the next address of a shuffled list
//! of every address in the table, so no lookup repeats the last one's probe.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput};
use tpa::wire::MacAddr;
use tpa_benches::linear_neighbors::LinearTable;
use tpa_stages::neighbor::{Heard, NeighborCache, NeighborConfig};

const NOW_NS: u64 = 1_000;

/// `n` addresses in 10.0.0.0/8, in a fixed shuffled order.
fn addresses(n: usize) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = (0..n as u32)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
        .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn mac_of(ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = ip.octets();
    MacAddr([2, 0, a, b, c, d])
}

/// A cache of the `ips`, every one REACHABLE.
fn filled_cache(ips: &[Ipv4Addr]) -> NeighborCache<Ipv4Addr, ()> {
    let mut cache = NeighborCache::new(NeighborConfig {
        capacity: ips.len(),
        seed: 7,
        ..NeighborConfig::default()
    });
    for &ip in ips {
        cache.learn(ip, Some(mac_of(ip)), Heard::Solicitation, 0, |_| {});
        cache.confirm(ip, 0);
    }
    cache
}

/// The old linear table of the `ips`, in their order.
fn filled_linear(ips: &[Ipv4Addr]) -> LinearTable<Ipv4Addr> {
    LinearTable::from_bindings(ips.iter().map(|&ip| (ip, mac_of(ip))))
}

/// An odd step through the addresses: a permutation of any power-of-two
/// table that is not the order they were inserted in, so even a few
/// lookups of a large linear table land anywhere in it.
const STRIDE: usize = 40_503;

/// `TPA_NEIGHBORS_RUN=<cache|linear>:<n>:<lookups>`: only that many lookups
/// of one variant, no criterion, for counting instructions under callgrind
/// (run twice with different counts; the difference over the extra lookups
/// is the count per lookup, free of the setup).
fn count_run(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [variant, n, lookups] = parts[..] else {
        panic!("TPA_NEIGHBORS_RUN={spec}: expected <cache|linear>:<n>:<lookups>");
    };
    let n: usize = n.parse().expect("a neighbor count");
    let lookups: usize = lookups.parse().expect("a lookup count");
    assert!(n.is_power_of_two(), "n must be a power of two");
    let ips = addresses(n);
    let mask = n - 1;
    let mut found = 0usize;
    match variant {
        "cache" => {
            let mut cache = filled_cache(&ips);
            for i in 0..lookups {
                found += cache
                    .lookup(black_box(ips[i.wrapping_mul(STRIDE) & mask]), NOW_NS)
                    .is_some() as usize;
            }
        }
        "linear" => {
            let linear = filled_linear(&ips);
            for i in 0..lookups {
                found += linear
                    .lookup(black_box(ips[i.wrapping_mul(STRIDE) & mask]))
                    .is_some() as usize;
            }
        }
        other => panic!("unknown variant {other}"),
    }
    assert_eq!(found, lookups);
}

fn lookup_hit(c: &mut Criterion) {
    for n in [16usize, 1024, 65536] {
        let mut g = c.benchmark_group(format!("neighbors/{n}"));
        g.throughput(Throughput::Elements(1));
        let ips = addresses(n);
        // `n` is a power of two: the next index is a mask, not a division.
        let mask = n - 1;

        // Every lookup is a hit on a REACHABLE entry (and finds its MAC).
        let mut cache = filled_cache(&ips);
        for &ip in &ips {
            assert_eq!(cache.lookup(ip, NOW_NS), Some(mac_of(ip)));
        }
        let mut i = 0;
        g.bench_function("cache", |b| {
            b.iter(|| {
                i = (i + 1) & mask;
                black_box(cache.lookup(black_box(ips[i]), NOW_NS))
            })
        });

        let linear = filled_linear(&ips);
        for &ip in &ips {
            assert_eq!(linear.lookup(ip), Some(mac_of(ip)));
        }
        let mut i = 0;
        g.bench_function("linear", |b| {
            b.iter(|| {
                i = (i + 1) & mask;
                black_box(linear.lookup(black_box(ips[i])))
            })
        });
        g.finish();
    }
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_NEIGHBORS_RUN") {
        count_run(&spec);
        return;
    }
    let mut c = tpa_benches::criterion();
    lookup_hit(&mut c);
    c.final_summary();
}
