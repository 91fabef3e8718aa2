//! Shareable buffers on DPDK mbufs: random clone/drop/chain/unchain orders
//! against the model of `tpa_tests::share_model` (mempool whole at the
//! end), and a header chained in front of held data crossing a `net_ring`
//! vdev without a copy. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_sharebuf`.

#![cfg(feature = "dpdk")]

mod dpdk_common;
mod share_common;

use dpdk_common::{eal, serial, small_config, vdev_name};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use share_common::op_sequences;
use tpa::buf::{BufferPool, PacketBuf, Shared};
use tpa::port::dpdk::{DpdkDevice, Mbuf};
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
