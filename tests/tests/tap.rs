//! The TAP port against the Linux kernel, inside network namespaces.
//!
//! Run as root: these tests create namespaces and TAP interfaces.

mod kernel_common;

use std::net::Ipv4Addr;

use kernel_common::*;
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
use tpa::port::offload::OffloadStats;
use tpa::port::tap::{Tap, TapConfig, TapMode};
use tpa::port::{Port, PortError};
use tpa::wire::MacAddr;
use tpa_tests::netns::{unique_name, Netns};

const KERNEL_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x4b, 0x01]);
const TPA_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x7a, 0x02]);

/// A TAP named `tpa0` opened inside `ns`, the kernel side given `kernel_ip`.
fn tap_in(ns: &Netns, pool: &Pool, kernel_cidr: &str) -> Tap {
    let cfg = TapConfig {
        mac: Some(TPA_MAC),
        kernel_mac: Some(KERNEL_MAC),
        ..TapConfig::new("tpa0")
    };
    let tap = ns
        .enter(|| Tap::open(&cfg, pool.clone()))
        .expect("open TAP");
    ns.add_addr("tpa0", kernel_cidr);
    tap
}

/// The link `tap_in` makes (the kernel's side is `tpa0`), with these
/// addresses.
fn link(ns: &Netns, kernel_ip: Ipv4Addr, tpa_ip: Ipv4Addr) -> KernelLink<'_> {
    link_on(ns, "tpa0", kernel_ip, tpa_ip)
}

/// A TAP link whose kernel side is `dev`.
fn link_on<'a>(
    ns: &'a Netns,
    dev: &'a str,
    kernel_ip: Ipv4Addr,
    tpa_ip: Ipv4Addr,
) -> KernelLink<'a> {
    KernelLink {
        ns,
        kernel_dev: dev,
        kernel_mac: KERNEL_MAC,
        kernel_ip,
        tpa_mac: TPA_MAC,
        tpa_ip,
    }
}

#[test]
fn kernel_arp_is_answered_and_its_udp_received() {
    let ns = Netns::new("tap-arp");
    let pool = test_pool("tap-arp");
    let mut tap = tap_in(&ns, &pool, "192.0.2.1/24");
    assert_eq!(tap.caps().mac, TPA_MAC);
    assert_eq!(tap.caps().name, "tpa0");
    assert_eq!(tap.caps().mtu, 1500);
    let ends = link(
        &ns,
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 2),
    );
    ends.arp_then_udp(
        &mut tap,
        |_| {},
        |dgram| assert_eq!(dgram.meta().rx_queue, 0),
    );
    let stats = tap.stats();
    assert!(stats.rx_packets >= 2 && stats.tx_packets == 1, "{stats:?}");
    assert_eq!(stats.tx_errors, 0);

    drop(tap);
    pool.assert_whole();
}

#[test]
fn a_waiting_tap_wakes_for_a_frame_and_times_out_without_one() {
    let ns = Netns::new("tap-wait");
    // IPv6 off, so the kernel sends nothing on the TAP unasked.
    for key in ["all", "default"] {
        ns.try_set_sysctl(&format!("net.ipv6.conf.{key}.disable_ipv6"), "1")
            .expect("IPv6 off in the namespace");
    }
    let pool = test_pool("tap-wait");
    let mut tap = tap_in(&ns, &pool, "192.0.2.1/24");
    link(
        &ns,
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 2),
    )
    .wait_rx_wakes_for_a_frame(&mut tap);
    drop(tap);
    pool.assert_whole();
}

#[test]
fn tpa_udp_reaches_a_kernel_socket_through_a_moved_tap() {
    // Created in the test's own namespace under a unique name, then moved.
    let name = unique_name("tt");
    let pool = test_pool("tap-move");
    let cfg = TapConfig {
        mac: Some(TPA_MAC),
        kernel_mac: Some(KERNEL_MAC),
        ..TapConfig::new(name.clone())
    };
    let mut tap = Tap::open(&cfg, pool.clone()).expect("open TAP");
    assert_eq!(tap.name(), name);
    let ns = Netns::new("tap-move");
    ns.move_link(&name);
    ns.add_addr(&name, "198.51.100.1/24");
    ns.up(&name);

    let ends = link_on(
        &ns,
        &name,
        Ipv4Addr::new(198, 51, 100, 1),
        Ipv4Addr::new(198, 51, 100, 2),
    );
    ends.udp_to_kernel_socket(&mut tap, b"datagram from tpa over TAP");

    drop(tap);
    pool.assert_whole();
}

#[test]
fn multi_queue_tap_spreads_flows_and_loses_none() {
    let ns = Netns::new("tap-mq");
    let pool = test_pool("tap-mq");
    let cfg = TapConfig {
        mac: Some(TPA_MAC),
        kernel_mac: Some(KERNEL_MAC),
        queues: 2,
        ..TapConfig::new("tpa0")
    };
    let mut queues = ns
        .enter(|| Tap::open_queues(&cfg, pool.clone()))
        .expect("open multi-queue TAP");
    assert_eq!(queues.len(), 2);
    for (i, q) in queues.iter().enumerate() {
        assert_eq!(q.caps().queue, i as u16);
        assert_eq!(q.caps().queues, 2);
    }
    ns.add_addr("tpa0", "10.11.0.1/24");
    ns.add_neigh("tpa0", "10.11.0.2", &TPA_MAC.to_string());
    flows_spread_over_queues(&ns, &mut queues, Ipv4Addr::new(10, 11, 0, 2));
    drop(queues);
    pool.assert_whole();
}

#[test]
fn mac_and_mtu_are_applied_to_the_kernel_interface() {
    let ns = Netns::new("tap-cfg");
    let pool = Pool::new(PoolConfig {
        name: "tap-jumbo".into(),
        capacity: 64,
        data_room: 9216,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let cfg = TapConfig {
        kernel_mac: Some(KERNEL_MAC),
        mtu: Some(9000),
        ..TapConfig::new("tpa0")
    };
    let tap = ns
        .enter(|| Tap::open(&cfg, pool.clone()))
        .expect("open TAP");
    assert_eq!(tap.caps().mtu, 9000);
    assert_ne!(tap.caps().mac, KERNEL_MAC, "tpa's random MAC must differ");
    assert!(tap.caps().mac.is_unicast());
    let link = ns.ip(&["link", "show", "dev", "tpa0"]);
    assert!(link.contains("mtu 9000"), "{link}");
    assert!(link.contains(&KERNEL_MAC.to_string()), "{link}");
    assert!(link.contains(",UP"), "interface not up: {link}");
    drop(tap);
    pool.assert_whole();
}

#[test]
fn a_pool_too_small_for_the_mtu_is_refused() {
    let ns = Netns::new("tap-small");
    let pool = test_pool("tap-small");
    let cfg = TapConfig {
        mtu: Some(9000),
        ..TapConfig::new("tpa0")
    };
    assert_refused_for_mtu(ns.enter(|| Tap::open(&cfg, pool.clone())), "tpa0");
    pool.assert_whole();
}

#[test]
fn attaching_to_a_missing_tap_names_it() {
    let ns = Netns::new("tap-missing");
    let pool = test_pool("tap-missing");
    let cfg = TapConfig {
        mode: TapMode::AttachExisting,
        ..TapConfig::new("tpa-nothere")
    };
    let err = ns
        .enter(|| Tap::open(&cfg, pool.clone()))
        .expect_err("attached to a missing interface");
    assert_no_such_device(&err, "tpa-nothere");
    pool.assert_whole();
}

#[test]
fn a_tap_held_by_another_queue_is_busy() {
    let ns = Netns::new("tap-busy");
    let pool = test_pool("tap-busy");
    let cfg = TapConfig::new("tpa0");
    let first = ns
        .enter(|| Tap::open(&cfg, pool.clone()))
        .expect("first open");
    match ns.enter(|| Tap::open(&cfg, pool.clone())) {
        Err(PortError::Busy { name }) => assert_eq!(name, "tpa0"),
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(first);
    pool.assert_whole();
}

#[test]
fn bad_names_are_refused_before_touching_the_kernel() {
    let pool = test_pool("tap-names");
    for bad in ["a-name-longer-than-15", "with/slash", "with space"] {
        match Tap::open(&TapConfig::new(bad), pool.clone()) {
            Err(PortError::InvalidConfig { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    pool.assert_whole();
}

#[test]
fn a_frame_larger_than_the_buffers_is_dropped_and_counted() {
    let ns = Netns::new("tap-big");
    let pool = test_pool("tap-big");
    let mut tap = tap_in(&ns, &pool, "10.16.0.1/24");
    // Raise the MTU behind the port's back, past what its buffers hold.
    ns.ip(&["link", "set", "dev", "tpa0", "mtu", "4000"]);
    ns.add_neigh("tpa0", "10.16.0.2", &TPA_MAC.to_string());
    let big = "x".repeat(3000);
    kernel_send_udp(&ns, Ipv4Addr::new(10, 16, 0, 2), 4444, &[42000], &big);
    kernel_send_udp(&ns, Ipv4Addr::new(10, 16, 0, 2), 4444, &[42001], "small");
    let small = recv_matching(&mut tap, "the small datagram after the big one", |f| {
        parse_udp(f).is_some_and(|u| u.sport == 42001)
    });
    assert_eq!(parse_udp(small.data()).unwrap().payload, b"small");
    drop(small);
    let stats = tap.stats();
    assert_eq!(stats.rx_truncated, 1, "{stats:?}");
    assert_eq!(stats.rx_errors, 0, "{stats:?}");
    drop(tap);
    pool.assert_whole();
}

#[test]
fn requested_udp_checksums_are_filled_in_for_the_kernel() {
    let ns = Netns::new("tap-csum");
    let pool = test_pool("tap-csum");
    let mut tap = tap_in(&ns, &pool, "10.17.0.1/24");
    let ends = link(
        &ns,
        Ipv4Addr::new(10, 17, 0, 1),
        Ipv4Addr::new(10, 17, 0, 2),
    );
    ends.udp_checksum_request(&mut tap, "tap");
    assert_eq!(tap.offload_stats(), OffloadStats::default());
    assert_eq!(tap.stats().tx_packets, 1);
    drop(tap);
    pool.assert_whole();
}

/// A header chained in front of held data goes out with one `writev`,
/// not copied into one buffer first.
#[test]
fn a_chain_reaches_the_kernel_gathered() {
    let ns = Netns::new("tap-chain");
    let pool = test_pool("tap-chain");
    let mut tap = tap_in(&ns, &pool, "10.17.0.1/24");
    let ends = link(
        &ns,
        Ipv4Addr::new(10, 17, 0, 1),
        Ipv4Addr::new(10, 17, 0, 2),
    );
    ends.chained_udp_to_kernel_socket(&mut tap, "tap");
    assert_eq!(tap.offload_stats(), OffloadStats::default(), "no copy");
    assert_eq!(tap.stats().tx_packets, 1);
    drop(tap);
    pool.assert_whole();
}

/// With every ordinary buffer held by the application, the port still
/// receives: into the pool's receive reserve.
#[test]
fn the_receive_reserve_keeps_a_full_pool_receiving() {
    let ns = Netns::new("tap-reserve");
    let pool = Pool::new(PoolConfig {
        name: "tap-reserve".into(),
        capacity: 64,
        cache_size: 8,
        rx_reserve: 8,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let mut tap = tap_in(&ns, &pool, "10.17.0.1/24");
    let held: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
    assert_eq!(held.len(), 56);
    assert!(tap.alloc().is_none(), "ordinary allocations are exhausted");
    let tpa_ip = Ipv4Addr::new(10, 17, 0, 2);
    kernel_send_udp(&ns, tpa_ip, 7777, &[40001], "into the reserve");
    let req = recv_matching(&mut tap, "the kernel's ARP request", |f| {
        parse_arp(f).is_some_and(|a| a.op == 1 && a.target_ip == tpa_ip)
    });
    assert_eq!(tap.stats().rx_no_buffer, 0);
    drop((req, held, tap));
    pool.assert_whole();
}

#[test]
fn a_tso_request_reaches_the_kernel_as_checksummed_segments() {
    let ns = Netns::new("tap-tso");
    // One buffer holds the whole 3500-byte payload before segmentation.
    let pool = test_pool_with_room("tap-tso", 8192);
    let mut tap = tap_in(&ns, &pool, "10.18.0.1/24");
    ns.add_neigh("tpa0", "10.18.0.2", &TPA_MAC.to_string());
    let ends = link(
        &ns,
        Ipv4Addr::new(10, 18, 0, 1),
        Ipv4Addr::new(10, 18, 0, 2),
    );
    ends.tso_request(&mut tap, "tap");
    let off = tap.offload_stats();
    assert_eq!((off.tso_packets, off.tso_segments), (1, 4), "{off:?}");
    assert_eq!((off.malformed, off.tso_dropped), (0, 0), "{off:?}");
    assert_eq!(tap.stats().tx_packets, 4);
    drop(tap);
    pool.assert_whole();
}
