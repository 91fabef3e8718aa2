//! Shareable buffers on DPDK mbufs: random clone/drop/chain/unchain orders
//! against the model of `tpa_tests::share_model` (mempool whole at the
//! end), and a header chained in front of held data crossing a `net_ring`
//! vdev without a copy. The mempool's receive reserve: ordinary
//! allocations stop above it, counted and recoverable, and a `net_tap`
//! device keeps receiving from it while the application holds every other
//! mbuf (and starves without it). Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_sharebuf`.

#![cfg(feature = "dpdk")]

mod dpdk_common;
mod share_common;

use std::time::{Duration, Instant};

use dpdk_common::{eal, serial, small_config, vdev_name};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use share_common::op_sequences;
use tpa::buf::{BufferPool, PacketBuf, Shared};
use tpa::port::dpdk::{DpdkDevice, EalThread, Mbuf, Mempool, PoolConfig};
use tpa::port::PortError;
use tpa::port::{Burst, Port};
use tpa_tests::share_model::{self, Coverage};

fn ring(tag: &str) -> DpdkDevice {
    let name = vdev_name("net_ring", tag);
    DpdkDevice::create_vdev(eal(), &name, "", &small_config(1))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Any order of steps keeps every holder's view of the mbufs right
/// (`refcnt`, `next`, `nb_segs`, `pkt_len`) and returns every mbuf. The
/// runner prints the failing (shrunk) sequence.
#[test]
fn random_share_and_chain_orders_leave_the_mempool_whole() {
    let _s = serial();
    let dev = ring("shp");
    let port = dev.port(0).unwrap();
    let pool = port.pool();
    let seen = std::cell::Cell::new(Coverage::default());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let result = runner.run(&op_sequences(), |ops| {
        let mut c = seen.get();
        c += share_model::run(&ops, || pool.alloc());
        seen.set(c);
        prop_assert_eq!(pool.in_use(), 0, "mbufs not returned");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    seen.get().assert_all_reached();
    drop(port);
    close_whole(dev);
}

/// Closes `dev` and checks every mbuf of its pools came back.
fn close_whole(dev: DpdkDevice) {
    let pools = dev
        .close()
        .unwrap_or_else(|_| panic!("the device is still in use"));
    for pool in pools {
        pool.assert_whole();
    }
}

/// Data held for retransmission goes out twice behind two fresh headers:
/// the device takes the chains as they are (multi-segment transmit), the
/// far side gets both byte for byte, and the held mbuf ends with one
/// reference, unchanged.
#[test]
fn a_header_chained_to_held_data_crosses_the_ring_uncopied() {
    let _s = serial();
    let dev = ring("shtx");
    let mut port = dev.port(0).unwrap();
    let payload: Vec<u8> = (0..1200u32).map(|i| (i * 13) as u8).collect();
    let mut data = port.alloc().unwrap();
    data.append(payload.len())
        .unwrap()
        .copy_from_slice(&payload);
    let held: Shared<Mbuf> = data.share();
    let mut headers = Vec::new();
    let mut tx: Burst<Mbuf> = Burst::new();
    for i in 0..2u8 {
        let mut hdr = [0u8; 42];
        hdr[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        hdr[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        hdr[12..14].copy_from_slice(&[0x88, 0xb5]);
        hdr[14] = i;
        let mut pkt = port.alloc().unwrap();
        pkt.append(hdr.len()).unwrap().copy_from_slice(&hdr);
        pkt.chain_shared(held.clone()).unwrap();
        assert_eq!((pkt.nb_segs(), pkt.pkt_len()), (2, 42 + 1200));
        headers.push(hdr);
        tx.push(pkt);
    }
    assert_eq!(held.ref_count(), 3);
    assert_eq!(port.tx_burst(&mut tx), 2);
    assert_eq!(port.offload_stats().linearized, 0, "no copy");
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut rx: Burst<Mbuf> = Burst::new();
        port.rx_burst(&mut rx);
        got.extend(rx.drain());
        if got.len() >= 2 {
            break;
        }
    }
    assert_eq!(got.len(), 2);
    for (m, hdr) in got.iter().zip(&headers) {
        let bytes: Vec<u8> = m.segments().flatten().copied().collect();
        let want: Vec<u8> = hdr.iter().chain(&payload).copied().collect();
        assert_eq!(bytes, want);
        assert_eq!(m.segment_count(), 2, "the same chain came back");
    }
    // The receiver holds the data too: it cannot write it.
    let mut first = got.remove(0);
    assert_eq!(first.append(1).unwrap_err(), tpa::buf::BufError::Shared);
    drop((first, got));
    assert_eq!(held.ref_count(), 1);
    assert_eq!(held.data(), &payload[..]);
    drop((held, port));
    close_whole(dev);
}

/// Takes every mbuf an ordinary allocation gets.
fn hold_all(pool: &Mempool) -> Vec<Mbuf> {
    std::iter::from_fn(|| pool.alloc()).collect()
}

/// The reserve rule on a mempool alone, from a thread without an lcore
/// cache and from one with (`EalThread`): ordinary allocations stop with
/// exactly the reserve left, counted; receive allocations take it; mbufs
/// coming back refill it first; then ordinary allocation works again.
#[test]
fn a_mempool_keeps_its_receive_reserve() {
    let _s = serial();
    let eal = eal();
    let cfg = PoolConfig {
        mbufs: 255,
        cache: 32,
        rx_reserve: 40,
        ..PoolConfig::default()
    };
    let check = |pool: &Mempool| {
        let free = pool.free_here();
        assert_eq!(free, 255, "a fresh pool is all free");
        let mut held = hold_all(pool);
        assert_eq!(held.len(), 255 - 40);
        assert_eq!(pool.free_here(), 40);
        assert_eq!(pool.stats().failed_allocs, 1);
        let mut burst: Burst<Mbuf> = Burst::new();
        assert!(!pool.alloc_bulk(&mut burst, 2));
        assert_eq!(pool.stats().failed_allocs, 3);
        // The receive class takes the reserve, to the last mbuf.
        let rx: Vec<Mbuf> = std::iter::from_fn(|| pool.alloc_rx()).collect();
        assert_eq!(rx.len(), 40);
        let s = pool.stats();
        assert_eq!((s.failed_allocs, s.failed_rx_allocs), (4, 1));
        assert_eq!(s.in_use, 255);
        // What comes back refills the reserve before anyone else gets it.
        held.truncate(held.len() - 40);
        assert_eq!(pool.free_here(), 40);
        assert!(pool.alloc().is_none());
        held.pop();
        held.push(pool.alloc().expect("one above the reserve"));
        assert!(pool.alloc().is_none());
        assert_eq!(pool.stats().failed_allocs, 6);
        drop(rx);
        assert_eq!(pool.free_here(), 80);
        held.extend(hold_all(pool));
        assert_eq!(held.len(), 255 - 40);
        assert_eq!(pool.stats().failed_allocs, 7);
        // Recoverable: once the application lets go, it allocates again.
        drop(held);
        assert!(pool.alloc_bulk(&mut burst, 32));
        drop(burst);
        pool.assert_whole();
    };
    let plain = Mempool::create(eal, "resv", &cfg, eal.socket_id() as i32).unwrap();
    check(&plain);
    let cached = Mempool::create(eal, "resvc", &cfg, eal.socket_id() as i32).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let thread: EalThread = eal.register_thread().unwrap();
            assert!(thread.lcore_id() < 128);
            check(&cached);
        });
    });
    // A reserve of the whole pool leaves nothing: refused.
    let all = PoolConfig {
        rx_reserve: 255,
        ..cfg
    };
    assert!(matches!(
        Mempool::create(eal, "resvall", &all, 0),
        Err(PortError::InvalidConfig { .. })
    ));
}

/// What a `net_tap` device received while the application held every mbuf
/// an ordinary allocation could get: (frames received, the device's
/// `rx_nombuf`, ordinary allocations refused meanwhile).
fn receive_while_holding(rx_reserve: u32) -> (usize, u64, u64) {
    const FRAMES: usize = 100;
    let eal = eal();
    let ns = tpa_tests::netns::Netns::new("resv");
    let ifname = tpa_tests::netns::unique_name("dv");
    let vdev = vdev_name("net_tap", "resv");
    let mut cfg = small_config(1);
    cfg.promiscuous = true;
    cfg.rx_descriptors = 64;
    cfg.pool.rx_reserve = rx_reserve;
    let dev = ns
        .enter(|| DpdkDevice::create_vdev(eal, &vdev, &format!("iface={ifname}"), &cfg))
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    ns.add_addr(&ifname, "10.78.0.1/24");
    ns.up(&ifname);
    ns.add_neigh(&ifname, "10.78.0.2", "02:00:00:00:00:02");
    let mut port = dev.port(0).unwrap();
    // Let what the kernel sends on its own (IPv6 router solicitations,
    // MLD) come and go before the application takes everything.
    let mut rx: Burst<Mbuf> = Burst::new();
    port.rx_burst(&mut rx);
    rx.clear();
    let mut held = hold_all(port.pool());
    assert_eq!(port.pool().free_here(), rx_reserve as usize);
    let mut bulk: Burst<Mbuf> = Burst::new();
    assert_eq!(
        port.alloc_bulk(&mut bulk),
        0,
        "bulk allocation leaves the reserve too"
    );
    // Given back and taken again, in one burst and then one by one.
    held.truncate(held.len() - 40);
    assert_eq!(port.alloc_bulk(&mut bulk), 32);
    held.extend(bulk.drain());
    assert_eq!(port.alloc_bulk(&mut bulk), 8);
    held.extend(bulk.drain());
    assert_eq!(port.pool().free_here(), rx_reserve as usize);
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range({FRAMES}):\n    s.sendto(b'reserve', ('10.78.0.2', 9))\n"
    );
    ns.exec(&["python3", "-c", &script]);
    let mut received = 0;
    // Until every datagram is received, or the device has lost frames for
    // want of an mbuf and then receives nothing for a while (bounds on
    // waiting, not timing assertions).
    let deadline = Instant::now() + Duration::from_secs(10);
    let lost = || dev.stats().unwrap().rx_nombuf;
    let mut idle = 0;
    while received < FRAMES && Instant::now() < deadline && !(lost() > 0 && idle > 50) {
        if port.rx_burst(&mut rx) == 0 {
            idle += 1;
            std::thread::sleep(Duration::from_millis(2));
        } else {
            idle = 0;
        }
        // Handled and freed at once: back into the reserve.
        received += rx
            .drain()
            .filter(|m| m.data().ends_with(b"reserve"))
            .count();
        // The application still gets nothing.
        assert!(port.alloc().is_none());
    }
    let rx_nombuf = lost();
    let refused = port.pool().stats().failed_allocs;
    drop((held, rx, port));
    dpdk_common::close_whole(dev);
    drop(ns);
    (received, rx_nombuf, refused)
}

#[test]
fn the_device_receives_from_the_reserve_while_the_application_holds_the_rest() {
    let _s = serial();
    let (received, rx_nombuf, refused) = receive_while_holding(32);
    assert_eq!(received, 100, "every datagram received from the reserve");
    assert_eq!(rx_nombuf, 0);
    assert!(
        refused > 1,
        "the application's allocations were refused, counted"
    );
    // Without a reserve the same device starves: nothing is received,
    // and the device counts the mbufs it could not get.
    let (received, rx_nombuf, _) = receive_while_holding(0);
    assert_eq!(received, 0);
    assert!(rx_nombuf > 0);
}
