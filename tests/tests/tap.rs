//! The TAP port against the Linux kernel, inside network namespaces.
//!
//! Run as root: these tests create namespaces and TAP interfaces.

mod kernel_common;

use std::net::Ipv4Addr;

use kernel_common::*;
use tpa::buf::{L4Protocol, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::offload::OffloadStats;
use tpa::port::tap::{Tap, TapConfig, TapMode};
use tpa::port::{Burst, Port, PortError};
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

#[test]
fn kernel_arp_is_answered_and_its_udp_received() {
    let ns = Netns::new("tap-arp");
    let pool = test_pool("tap-arp");
    let mut tap = tap_in(&ns, &pool, "192.0.2.1/24");
    assert_eq!(tap.caps().mac, TPA_MAC);
    assert_eq!(tap.caps().name, "tpa0");
    assert_eq!(tap.caps().mtu, 1500);
    let kernel_ip = Ipv4Addr::new(192, 0, 2, 1);
    let tpa_ip = Ipv4Addr::new(192, 0, 2, 2);

    // The kernel must resolve 192.0.2.2 first: it broadcasts an ARP request
    // and holds the datagram until someone answers.
    kernel_send_udp(&ns, tpa_ip, 7777, &[40001], "hello tpa");
    let req = recv_matching(&mut tap, "ARP request for 192.0.2.2", |f| {
        parse_arp(f).is_some_and(|a| a.op == 1 && a.target_ip == tpa_ip)
    });
    assert_eq!(
        &req.data()[0..6],
        &MacAddr::BROADCAST.0,
        "ARP request not broadcast"
    );
    assert_eq!(&req.data()[6..12], &KERNEL_MAC.0);
    let arp = parse_arp(req.data()).unwrap();
    assert_eq!(arp.sender_mac, KERNEL_MAC);
    assert_eq!(arp.sender_ip, kernel_ip);
    drop(req);

    send_frame(&mut tap, &arp_reply(TPA_MAC, tpa_ip, KERNEL_MAC, kernel_ip));

    // With the answer learnt, the held datagram comes to tpa's MAC.
    let dgram = recv_matching(&mut tap, "UDP datagram to port 7777", |f| {
        parse_udp(f).is_some_and(|u| u.dport == 7777)
    });
    let udp = parse_udp(dgram.data()).unwrap();
    assert_eq!(udp.dst_mac, TPA_MAC);
    assert_eq!(udp.src_mac, KERNEL_MAC);
    assert_eq!((udp.src, udp.dst, udp.sport), (kernel_ip, tpa_ip, 40001));
    assert_eq!(udp.payload, b"hello tpa");
    assert_eq!(dgram.meta().rx_queue, 0);
    drop(dgram);

    let neigh = ns.ip(&["neigh", "show", "192.0.2.2", "dev", "tpa0"]);
    assert!(
        neigh.contains(&TPA_MAC.to_string()),
        "kernel did not learn tpa's MAC from the ARP reply: {neigh:?}"
    );
    let stats = tap.stats();
    assert!(stats.rx_packets >= 2 && stats.tx_packets == 1, "{stats:?}");
    assert_eq!(stats.tx_errors, 0);

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

    let kernel_ip = Ipv4Addr::new(198, 51, 100, 1);
    let tpa_ip = Ipv4Addr::new(198, 51, 100, 2);
    let listener = kernel_udp_listener(&ns, kernel_ip, 9999);
    let payload = b"datagram from tpa over TAP";
    send_frame(
        &mut tap,
        &udp_frame(TPA_MAC, KERNEL_MAC, tpa_ip, kernel_ip, 5555, 9999, payload),
    );
    let (src, sport, got) = listener_result(listener);
    assert_eq!((src, sport), (tpa_ip, 5555));
    assert_eq!(got, payload);

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

    let sports: Vec<u16> = (20000..20064).collect();
    kernel_send_udp(&ns, Ipv4Addr::new(10, 11, 0, 2), 4242, &sports, "mq");

    let mut got = vec![0u32; sports.len()];
    let mut per_queue = [0u32; 2];
    let start = std::time::Instant::now();
    while got.iter().sum::<u32>() < sports.len() as u32 {
        for (qi, q) in queues.iter_mut().enumerate() {
            let mut rx: Burst<PoolBuf> = Burst::new();
            q.rx_burst(&mut rx);
            for buf in rx.drain() {
                assert_eq!(buf.meta().rx_queue, qi as u16);
                if let Some(u) = parse_udp(buf.data()).filter(|u| u.dport == 4242) {
                    got[usize::from(u.sport - 20000)] += 1;
                    per_queue[qi] += 1;
                }
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "received {got:?} of 64 flows (per queue {per_queue:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(got.iter().all(|&n| n == 1), "each flow once: {got:?}");
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "64 flows all hashed to one queue: {per_queue:?}"
    );
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
    match ns.enter(|| Tap::open(&cfg, pool.clone())) {
        Err(PortError::InvalidConfig { name, what }) => {
            assert_eq!(name, "tpa0");
            assert!(what.contains("9000"), "{what}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
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
    match &err {
        PortError::NoSuchDevice { name } => assert_eq!(name, "tpa-nothere"),
        other => panic!("expected NoSuchDevice, got {other:?}"),
    }
    assert!(err.to_string().contains("tpa-nothere"), "{err}");
}

#[test]
fn a_tap_held_by_another_queue_is_busy() {
    let ns = Netns::new("tap-busy");
    let pool = test_pool("tap-busy");
    let cfg = TapConfig::new("tpa0");
    let _first = ns
        .enter(|| Tap::open(&cfg, pool.clone()))
        .expect("first open");
    match ns.enter(|| Tap::open(&cfg, pool.clone())) {
        Err(PortError::Busy { name }) => assert_eq!(name, "tpa0"),
        other => panic!("expected Busy, got {other:?}"),
    }
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
    let kernel_ip = Ipv4Addr::new(10, 17, 0, 1);
    let tpa_ip = Ipv4Addr::new(10, 17, 0, 2);
    let listener = kernel_udp_listener(&ns, kernel_ip, 9999);
    let payload = b"checksummed by tpa";
    // The kernel drops IPv4 headers and UDP datagrams with a wrong
    // checksum: only the port's software offload makes this one arrive.
    let frame =
        udp_frame_bad_checksums(TPA_MAC, KERNEL_MAC, tpa_ip, kernel_ip, 5555, 9999, payload);
    send_with_request(&mut tap, &frame, UDP4_LAYERS, |tx| {
        tx.request_checksums(L4Protocol::Udp);
    });
    let (src, sport, got) = listener_result(listener);
    assert_eq!((src, sport), (tpa_ip, 5555));
    assert_eq!(got, payload);
    assert_eq!(snmp_counter(&ns, "Udp", "InCsumErrors"), 0);
    assert_eq!(tap.offload_stats(), OffloadStats::default());
    assert_eq!(tap.stats().tx_packets, 1);
    drop(tap);
    pool.assert_whole();
}

#[test]
fn a_tso_request_reaches_the_kernel_as_checksummed_segments() {
    let ns = Netns::new("tap-tso");
    // One buffer holds the whole 3500-byte payload before segmentation.
    let pool = test_pool_with_room("tap-tso", 8192);
    let mut tap = tap_in(&ns, &pool, "10.18.0.1/24");
    let kernel_ip = Ipv4Addr::new(10, 18, 0, 1);
    let tpa_ip = Ipv4Addr::new(10, 18, 0, 2);
    ns.add_neigh("tpa0", "10.18.0.2", &TPA_MAC.to_string());
    let segs_before = snmp_counter(&ns, "Tcp", "InSegs");

    // PSH to a closed port: the kernel resets every segment it accepts.
    let seq = 1_000_000;
    let payload: Vec<u8> = (0..3500u32).map(|i| i as u8).collect();
    let frame = tcp_frame_unchecksummed(
        TPA_MAC, KERNEL_MAC, tpa_ip, kernel_ip, 40000, 5001, seq, &payload,
    );
    send_with_request(&mut tap, &frame, TCP4_LAYERS, |tx| {
        tx.request_checksums(L4Protocol::Tcp).request_tso(1000);
    });
    let acks = recv_resets(&mut tap, 40000, 4);
    assert_eq!(acks, [seq + 1000, seq + 2000, seq + 3000, seq + 3500]);
    assert_eq!(snmp_counter(&ns, "Tcp", "InCsumErrors"), 0);
    assert_eq!(snmp_counter(&ns, "Tcp", "InSegs") - segs_before, 4);
    let off = tap.offload_stats();
    assert_eq!((off.tso_packets, off.tso_segments), (1, 4), "{off:?}");
    assert_eq!((off.malformed, off.tso_dropped), (0, 0), "{off:?}");
    assert_eq!(tap.stats().tx_packets, 4);
    drop(tap);
    pool.assert_whole();
}
