//! The egress path over a MemoryWire, in a generated pipeline with a
//! `#[state]` and an `#[app]`: the application sends the first datagram
//! to a neighbor nobody has heard from; the test, on the wire's other end,
//! plays the neighbor (answers the ARP request or neighbor solicitation,
//! or stays silent) and checks what arrives with etherparse.

mod egress_common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use egress_common::{host, Datagram, Host};
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use tpa::app::{SocketError, SocketId, Transport};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::time::VirtualClock;
use tpa::wire::arp::Arp;
use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::MacAddr;
use tpa_stages::egress::{Egress, EgressConfig, Sent};
use tpa_stages::iface::Interface;

const US_MAC: MacAddr = MacAddr([0x02, 0x74, 0x70, 0x61, 0, 1]);
const THEM_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);
const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const THEM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SECOND: u64 = 1_000_000_000;

fn us6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn them6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}

/// A host for 192.0.2.1/24 and 2001:db8::1/64 on a wire of its own (on a
/// virtual clock), the wire's other end, and the pool of both.
fn setup(config: EgressConfig) -> (Host<MemoryPort>, MemoryPort, Pool, VirtualClock) {
    let pool = Pool::new(PoolConfig {
        name: "egress-wire".into(),
        capacity: 256,
        ..PoolConfig::default()
    })
    .unwrap();
    let (port, peer) = MemoryWire::pair(WireConfig {
        mac_a: US_MAC,
        mac_b: THEM_MAC,
        pool: Some(pool.clone()),
        ..WireConfig::default()
    })
    .unwrap();
    let iface = Interface::new(US_MAC)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap());
    let clock = VirtualClock::new();
    let host =
        host(port, Egress::new(iface).with_config(config)).with_time_source(clock.clone().into());
    (host, peer, pool, clock)
}

/// Every frame waiting at `peer`.
fn receive(peer: &mut MemoryPort) -> Vec<Vec<u8>> {
    let mut rx: Burst<PoolBuf> = Burst::new();
    peer.rx_burst(&mut rx);
    rx.drain().map(|b| b.data().to_vec()).collect()
}

/// Sends `frames` from `peer`.
fn send(peer: &mut MemoryPort, frames: &[Vec<u8>]) {
    let mut tx: Burst<PoolBuf> = Burst::new();
    for f in frames {
        let mut buf = peer.alloc().unwrap();
        buf.extend_from_slice(f).unwrap();
        tx.push(buf);
    }
    assert_eq!(peer.tx_burst(&mut tx), frames.len());
}

/// The ARP request tpa sends for `target`, as RFC 826 lays it out.
fn arp_request_for(target: Ipv4Addr) -> Vec<u8> {
    let mut bytes = vec![0u8; 60];
    Ethernet {
        dst: MacAddr::BROADCAST,
        src: US_MAC,
        ether_type: EtherType::Arp,
    }
    .emit(&mut bytes)
    .unwrap();
    Arp::request(US_MAC, US, target)
        .emit(&mut bytes[14..])
        .unwrap();
    bytes
}

/// Their ARP reply to that request.
fn arp_reply() -> Vec<u8> {
    let reply = Arp::reply_to(&Arp::request(US_MAC, US, THEM), THEM_MAC);
    let mut bytes = vec![0u8; 60];
    Ethernet {
        dst: US_MAC,
        src: THEM_MAC,
        ether_type: EtherType::Arp,
    }
    .emit(&mut bytes)
    .unwrap();
    reply.emit(&mut bytes[14..]).unwrap();
    bytes
}

/// Their solicited neighbor advertisement, built by etherparse.
fn neighbor_advertisement() -> Vec<u8> {
    let mut payload = them6().octets().to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&THEM_MAC.octets());
    let mut na = Vec::new();
    PacketBuilder::ethernet2(THEM_MAC.octets(), US_MAC.octets())
        .ipv6(them6().octets(), us6().octets(), 255)
        .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
        .write(&mut na, &payload)
        .unwrap();
    na
}

fn datagram(dst: IpAddr, data: &[u8], owner: Option<SocketId>) -> Datagram {
    Datagram {
        dst,
        ports: (4000, 5000),
        data: data.to_vec(),
        owner,
    }
}

/// Parses `frame` with etherparse as a UDP datagram to THEM's MAC address
/// and checks both checksums; returns (source, destination, data).
fn udp_to_them(frame: &[u8]) -> (IpAddr, IpAddr, Vec<u8>) {
    let headers = PacketHeaders::from_ethernet_slice(frame).expect("an Ethernet frame");
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = headers.link else {
        panic!("not Ethernet II");
    };
    assert_eq!(
        (eth.source, eth.destination),
        (US_MAC.octets(), THEM_MAC.octets())
    );
    let Some(TransportHeader::Udp(udp)) = headers.transport else {
        panic!("not UDP: {:?}", headers.transport);
    };
    let data = headers.payload.slice();
    assert_eq!((udp.source_port, udp.destination_port), (4000, 5000));
    let (src, dst) = match headers.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert!(ip.dont_fragment);
            assert_eq!(
                udp.checksum,
                udp.calc_checksum_ipv4(&ip, data).unwrap(),
                "UDP checksum"
            );
            (IpAddr::from(ip.source), IpAddr::from(ip.destination))
        }
        Some(NetHeaders::Ipv6(ip, _)) => {
            assert_eq!(
                udp.checksum,
                udp.calc_checksum_ipv6(&ip, data).unwrap(),
                "UDP checksum"
            );
            (IpAddr::from(ip.source), IpAddr::from(ip.destination))
        }
        other => panic!("not IP: {other:?}"),
    };
    (src, dst, data.to_vec())
}

#[test]
fn the_first_datagram_waits_for_arp_and_ndp_and_arrives_intact() {
    let (mut host, mut peer, pool, clock) = setup(EgressConfig::default());
    let first = b"sent to a neighbor nobody had heard from".to_vec();
    host.app
        .queue
        .push_back(datagram(THEM.into(), &first, None));
    host.app
        .queue
        .push_back(datagram(them6().into(), b"and over IPv6", None));
    host.app
        .queue
        .push_back(datagram(THEM.into(), b"second", None));
    host.run_once();
    assert_eq!(host.app.results, [Ok(Sent::Held); 3]);

    // On the wire: the ARP request and the neighbor solicitation, nothing else.
    let asked = receive(&mut peer);
    assert_eq!(asked.len(), 2, "one question per neighbor");
    assert_eq!(asked[0], arp_request_for(THEM));
    let ns = PacketHeaders::from_ethernet_slice(&asked[1]).unwrap();
    let Some(NetHeaders::Ipv6(ip, _)) = ns.net else {
        panic!("not IPv6");
    };
    assert_eq!(
        ip.destination,
        "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&asked[1][62..78], &them6().octets(), "the NS target");

    // The answers, a little later: every held datagram leaves, in order.
    clock.advance_ns(SECOND / 10);
    send(&mut peer, &[arp_reply(), neighbor_advertisement()]);
    host.run_once();
    let arrived: Vec<_> = receive(&mut peer).iter().map(|f| udp_to_them(f)).collect();
    assert_eq!(
        arrived,
        [
            (US.into(), THEM.into(), first),
            (US.into(), THEM.into(), b"second".to_vec()),
            (us6().into(), them6().into(), b"and over IPv6".to_vec()),
        ]
    );
    let c = *host.net.egress.counters();
    assert_eq!((c.held, c.released, c.unreachable), (3, 3, 0));
    assert_eq!((c.arp_requests, c.solicitations), (1, 1));
    assert_eq!(
        host.net.egress.next_deadline(),
        None,
        "nothing left to resolve"
    );

    // Resolved: the next one leaves in the same iteration.
    host.app
        .queue
        .push_back(datagram(THEM.into(), b"third", None));
    host.run_once();
    assert_eq!(host.app.results.last(), Some(&Ok(Sent::Queued)));
    let third = receive(&mut peer);
    assert_eq!(udp_to_them(&third[0]).2, b"third");
    drop((host, peer));
    pool.assert_whole();
}

#[test]
fn a_next_hop_that_never_answers_costs_the_retries_then_the_app_gets_ehostunreach() {
    let (mut host, mut peer, pool, clock) = setup(EgressConfig::default());
    let socket = SocketId::new(Transport::Udp, 1, 0);
    for n in 0..3u8 {
        host.app
            .queue
            .push_back(datagram(THEM.into(), &[n; 100], Some(socket)));
    }
    host.run_once();
    assert_eq!(host.app.results, [Ok(Sent::Held); 3]);
    let mut requests = receive(&mut peer).len();
    // Iterations every 100 ms until the neighbor is given up.
    let mut iterations = 0;
    while host.net.egress.next_deadline().is_some() {
        assert!(
            iterations < 100,
            "still resolving after 10 s of virtual time"
        );
        clock.advance_ns(SECOND / 10);
        let stats = host.run_once();
        iterations += 1;
        for frame in receive(&mut peer) {
            assert_eq!(frame, arp_request_for(THEM), "only requests go out");
            requests += 1;
        }
        if host.net.egress.next_deadline().is_some() {
            assert_eq!(stats.next_deadline_ns, host.net.egress.next_deadline());
        }
    }
    // MAX_MULTICAST_SOLICIT requests one RetransTimer apart, then the drop.
    assert_eq!(requests, 3);
    assert_eq!(clock.now_ns(), 3 * SECOND);
    let c = *host.net.egress.counters();
    assert_eq!(
        (c.held, c.unreachable, c.owner_errors, c.released),
        (3, 3, 3, 0)
    );
    // The timers raised one event per datagram after this iteration's
    // deliver phase; the next iteration hands them to the app.
    assert_eq!(host.net.events.len(), 3);
    assert!(host.app.errors.is_empty());
    host.run_once();
    assert_eq!(host.app.errors, [(socket, SocketError::HostUnreachable); 3]);
    drop((host, peer));
    pool.assert_whole();
}

#[test]
fn a_full_hold_queue_tells_the_sender_at_once() {
    let mut config = EgressConfig::default();
    config.neighbors.hold_per_neighbor = 4;
    let (mut host, mut peer, pool, _clock) = setup(config);
    for n in 0..6u8 {
        host.app.queue.push_back(datagram(THEM.into(), &[n], None));
    }
    host.run_once();
    let held = Ok(Sent::Held);
    let full = Err(SocketError::NoBuffers);
    assert_eq!(host.app.results, [held, held, held, held, full, full]);
    assert_eq!(host.net.egress.counters().hold_full, 2);
    receive(&mut peer);
    send(&mut peer, &[arp_reply()]);
    host.run_once();
    let data: Vec<u8> = receive(&mut peer)
        .iter()
        .map(|f| udp_to_them(f).2[0])
        .collect();
    assert_eq!(data, [0, 1, 2, 3], "the first four, in order");
    drop((host, peer));
    pool.assert_whole();
}
