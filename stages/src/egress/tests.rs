//! The egress path driven as a stage or an application would: `send_ip`
//! with a state of its own, the ARP and NDP stages answering and running
//! the timers, frames checked byte for byte and by independent checksums.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tpa::app::{Event, EventKind, Events, SocketError, SocketId, Transport};
use tpa::buf::{L4Protocol, PacketBuf, PoolBuf};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::offload::{self, Prepared};
use tpa::port::{Burst, Offloads, Port, PortCaps};
use tpa::stage::{Cx, Stage, Verdict};
use tpa::wire::arp::Arp;
use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::MacAddr;

use super::*;
use crate::arp::ArpResponder;
use crate::iface::Interface;
use crate::ndp::NdpResponder;
use crate::neighbor::NeighborState;
use crate::packet::{ArpFrame, Ipv6Packet};
use crate::testing::{frame, pool, BufferPool, EgressState, NOW_NS};

const US_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
const THEM_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 0xfe]);
const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const THEM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const FAR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const SECOND: u64 = 1_000_000_000;

fn us6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn them6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}

fn iface() -> Interface {
    Interface::new(US_MAC)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap())
}

/// A memory port that claims other capabilities (the IPv4 checksum
/// offload, which the wire then does in software), or takes no frame.
struct Custom {
    inner: MemoryPort,
    caps: PortCaps,
    refuse_tx: bool,
}

impl Port for Custom {
    type Buf = PoolBuf;
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        self.inner.rx_burst(rx)
    }
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        if self.refuse_tx {
            return 0;
        }
        self.inner.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<PoolBuf> {
        self.inner.pool()
    }
    fn caps(&self) -> &PortCaps {
        &self.caps
    }
}

/// The egress state, its stages, and a port to drive them on.
struct Rig<P> {
    state: EgressState,
    arp: ArpResponder,
    ndp: NdpResponder,
    port: P,
    _peer: MemoryPort,
    runtime: Runtime<PoolBuf, 32, 0>,
}

fn rig() -> Rig<MemoryPort> {
    rig_with(iface(), |c| c)
}

fn rig_with(
    iface: Interface,
    config: impl FnOnce(EgressConfig) -> EgressConfig,
) -> Rig<MemoryPort> {
    let (port, peer) = MemoryWire::pair(WireConfig {
        pool: Some(pool()),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let mut state = EgressState::new(iface);
    let base = state.egress.config().clone();
    state.egress = Egress::new(state.egress.interface().clone()).with_config(config(base));
    Rig {
        state,
        arp: ArpResponder::new(),
        ndp: NdpResponder::new(),
        port,
        _peer: peer,
        runtime: Runtime::new([], []),
    }
}

impl<P: Port<Buf = PoolBuf>> Rig<P> {
    /// Runs `f` at `now_ns`; returns its result and the frames it queued.
    fn at<R>(
        &mut self,
        now_ns: u64,
        f: impl FnOnce(&mut Cx<'_, PoolBuf, EgressState>, &mut ArpResponder, &mut NdpResponder) -> R,
    ) -> (R, Vec<PoolBuf>) {
        let (arp, ndp) = (&mut self.arp, &mut self.ndp);
        let r =
            self.runtime
                .with_state(&mut self.port, &mut NoHost, now_ns, &mut self.state, |cx| {
                    f(cx, arp, ndp)
                });
        (r, self.runtime.drain_tx().collect())
    }

    /// Sends `udp` (a UDP header and data) from `src` to `dst` for `owner`.
    fn send(
        &mut self,
        (src, dst): (IpAddr, IpAddr),
        udp: PoolBuf,
        owner: Option<SocketId>,
    ) -> (Result<Sent, SocketError>, Vec<PoolBuf>) {
        let ip = IpSend {
            src,
            dst,
            protocol: IpProtocol::Udp,
            hop_limit: None,
            owner,
        };
        self.at(NOW_NS, |cx, _, _| send_ip(cx, udp, ip))
    }

    /// Both caches' timers at `now_ns`, if the caches say any is due.
    fn timers(&mut self, now_ns: u64) -> Vec<PoolBuf> {
        let egress = &self.state.egress;
        egress.check_wake();
        let due = [
            egress.neighbors_v4().next_deadline(),
            egress.neighbors_v6().next_deadline(),
        ];
        let ((v4, v6), sent) = self.at(now_ns, |cx, _, _| {
            let ((egress, events), port) = cx.parts::<(Egress<PoolBuf>, Events)>();
            (
                egress.fire_timers_v4(port, events),
                egress.fire_timers_v6(port, events),
            )
        });
        assert_eq!(v4 > 0, due[0].is_some_and(|at| at <= now_ns), "ARP timers");
        assert_eq!(v6 > 0, due[1].is_some_and(|at| at <= now_ns), "NDP timers");
        sent
    }

    /// Hands `bytes` (an ARP frame) to the ARP stage at `now_ns`.
    fn arp_in(&mut self, bytes: &[u8], now_ns: u64) -> Vec<PoolBuf> {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        let (verdict, sent) = self.at(now_ns, |cx, arp, _| {
            arp.process(ArpFrame::new_unchecked(buf), cx)
        });
        assert!(matches!(verdict, Verdict::Consumed), "a reply to us");
        sent
    }
}

/// A UDP header from port 1000 to 2000 with checksum 0, then `data`.
fn udp(data: &[u8]) -> PoolBuf {
    let mut bytes = vec![0x03, 0xe8, 0x07, 0xd0];
    bytes.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(data);
    frame(&bytes)
}

/// An ARP reply from `mac` at `ip`, unicast to us.
fn arp_reply(ip: Ipv4Addr, mac: MacAddr) -> Vec<u8> {
    let reply = Arp::reply_to(&Arp::request(US_MAC, US, ip), mac);
    let mut bytes = vec![0u8; 60];
    Ethernet {
        dst: US_MAC,
        src: mac,
        ether_type: EtherType::Arp,
    }
    .emit(&mut bytes)
    .unwrap();
    reply.emit(&mut bytes[14..]).unwrap();
    bytes
}

/// RFC 1071's sum, written here apart from `tpa::header::checksum`.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Checks an Ethernet + IPv4 + UDP frame: addresses, header checksum, the
/// UDP checksum when not zero; returns the UDP header and data.
fn ipv4_udp(frame: &[u8], eth_dst: MacAddr, (src, dst): (Ipv4Addr, Ipv4Addr)) -> Vec<u8> {
    assert_eq!(&frame[..6], &eth_dst.octets(), "Ethernet destination");
    assert_eq!(&frame[6..12], &US_MAC.octets(), "Ethernet source");
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    let ip = &frame[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(ones_sum(&[ip]), 0xffff, "IPv4 header checksum");
    assert_eq!(&ip[6..8], &[0x40, 0], "DF, not a fragment");
    assert_eq!((ip[8], ip[9]), (64, 17), "TTL, UDP");
    assert_eq!(&ip[12..16], &src.octets());
    assert_eq!(&ip[16..20], &dst.octets());
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, frame.len() - 14);
    let l4 = &frame[34..];
    if l4[6..8] != [0, 0] {
        let len = (l4.len() as u16).to_be_bytes();
        let pseudo = [&ip[12..20], &[0, 17], &len[..]];
        assert_eq!(
            ones_sum(&[pseudo[0], pseudo[1], pseudo[2], l4]),
            0xffff,
            "UDP checksum"
        );
    }
    l4.to_vec()
}

#[test]
fn a_first_send_is_held_asks_and_leaves_intact_with_the_reply() {
    let mut rig = rig();
    let data = b"the first datagram, sent before anyone answered";
    let (sent, frames) = rig.send((US.into(), THEM.into()), udp(data), None);
    assert_eq!(sent, Ok(Sent::Held));
    assert_eq!(frames.len(), 1, "the ARP request, at once");
    assert_eq!(&frames[0].data()[..6], &[0xff; 6]);
    assert_eq!(&frames[0].data()[12..14], &[0x08, 0x06]);
    assert_eq!(&frames[0].data()[38..42], &THEM.octets(), "asks for them");
    assert_eq!(
        rig.state
            .egress
            .neighbors_v4()
            .get(THEM, NOW_NS)
            .map(|n| (n.state, n.held)),
        Some((NeighborState::Incomplete, 1))
    );
    drop(frames);
    // A second datagram waits behind the first.
    let (second, frames) = rig.send((US.into(), THEM.into()), udp(b"second"), None);
    assert_eq!((second, frames.len()), (Ok(Sent::Held), 0));

    let released = rig.arp_in(&arp_reply(THEM, THEM_MAC), NOW_NS + 1000);
    assert_eq!(released.len(), 2, "both, in order");
    let first = ipv4_udp(released[0].data(), THEM_MAC, (US, THEM));
    assert_eq!(&first[8..], data);
    assert_eq!(
        &ipv4_udp(released[1].data(), THEM_MAC, (US, THEM))[8..],
        b"second"
    );
    let id = |f: &PoolBuf| u16::from_be_bytes([f.data()[18], f.data()[19]]);
    assert_eq!(
        id(&released[1]),
        id(&released[0]).wrapping_add(1),
        "a fresh ID each"
    );
    let c = *rig.state.egress.counters();
    assert_eq!((c.held, c.released, c.sent, c.arp_requests), (2, 2, 0, 1));
    drop(released);

    // Known now: the next one leaves at once.
    let (third, frames) = rig.send((US.into(), THEM.into()), udp(b"third"), None);
    assert_eq!((third, frames.len()), (Ok(Sent::Queued), 1));
    assert_eq!(
        &ipv4_udp(frames[0].data(), THEM_MAC, (US, THEM))[8..],
        b"third"
    );
    assert_eq!(rig.state.egress.counters().sent, 1);
    drop((frames, rig));
    pool().assert_whole();
}

#[test]
fn the_loops_one_test_is_never_after_the_earliest_neighbor_deadline() {
    let mut rig = rig();
    let fire = |rig: &mut Rig<MemoryPort>, now_ns| {
        rig.at(now_ns, |cx, _, _| {
            let ((egress, events), port) = cx.parts::<(Egress<PoolBuf>, Events)>();
            egress.fire_timers(port, events)
        })
    };
    assert_eq!(rig.state.egress.wake_ns, u64::MAX, "nothing owed");
    // A send to a neighbor not known yet: the retry's deadline sets it.
    let (sent, frames) = rig.send((US.into(), THEM.into()), udp(b"held"), None);
    assert_eq!((sent, frames.len()), (Ok(Sent::Held), 1));
    drop(frames);
    let due = rig.state.egress.next_deadline().expect("the retry");
    assert_eq!(rig.state.egress.wake_ns, due);
    let (fired, frames) = fire(&mut rig, due - 1);
    assert_eq!((fired, frames.len()), (0, 0), "not yet");
    let (fired, frames) = fire(&mut rig, due);
    assert_eq!((fired, frames.len()), (1, 1), "the request again");
    drop(frames);
    let next = rig.state.egress.next_deadline().expect("the next retry");
    assert!(next > due);
    assert_eq!(rig.state.egress.wake_ns, next, "exact again");
    // The cache lent out writable: the next loop looks again.
    rig.state.egress.neighbors_v4_mut();
    assert_eq!(rig.state.egress.wake_ns, 0);
    let (fired, _) = fire(&mut rig, due);
    assert_eq!(fired, 0);
    assert_eq!(rig.state.egress.wake_ns, next);
    // An announcement owed: the wake time says so until it is sent.
    rig.state.egress.set_announcing(true);
    assert_eq!(rig.state.egress.wake_ns, 0);
    let (announced, frames) = rig.at(due, |cx, _, _| {
        let (state, port) = cx.split();
        state.egress.announce(port)
    });
    assert_eq!(announced, frames.len());
    assert!(announced > 0);
    drop((frames, rig));
    pool().assert_whole();
}

#[test]
fn a_neighbor_that_never_answers_costs_the_retries_then_a_counted_drop_and_an_error() {
    let mut rig = rig_with(iface(), |mut c| {
        c.neighbors.max_multicast_solicit = 4;
        c.neighbors.retrans_timer_ns = SECOND / 2;
        c
    });
    let owner = SocketId::new(Transport::Udp, 7, 2);
    let (sent, first) = rig.send((US.into(), THEM.into()), udp(b"lost"), Some(owner));
    assert_eq!((sent, first.len()), (Ok(Sent::Held), 1));
    drop(first);
    let (other, _) = rig.send((US.into(), THEM.into()), udp(b"anonymous"), None);
    assert_eq!(other, Ok(Sent::Held));
    let mut retries = 0;
    let mut t = NOW_NS;
    while rig.state.egress.next_deadline().is_some() {
        t += SECOND / 2;
        retries += rig.timers(t).len();
        assert!(rig.state.events.is_empty() || rig.state.egress.next_deadline().is_none());
    }
    assert_eq!(retries, 3, "three retries after the first of four requests");
    assert_eq!(
        t,
        NOW_NS + 4 * SECOND / 2,
        "given up one RetransTimer after the last"
    );
    let c = *rig.state.egress.counters();
    assert_eq!((c.arp_requests, c.unreachable, c.owner_errors), (4, 2, 1));
    assert_eq!(
        rig.state.events.pop(),
        Some(Event {
            socket: owner,
            kind: EventKind::Error(SocketError::HostUnreachable)
        })
    );
    assert_eq!(rig.state.events.pop(), None, "no owner, no event");
    assert!(rig.state.egress.neighbors_v4().is_empty());
    drop(rig);
    pool().assert_whole();
}

#[test]
fn off_link_destinations_go_to_the_gateway_or_nowhere() {
    let mut rig = rig();
    let (sent, frames) = rig.send((US.into(), FAR.into()), udp(b"far"), None);
    assert_eq!(
        (sent, frames.len()),
        (Err(SocketError::NetworkUnreachable), 0)
    );
    assert_eq!(rig.state.egress.counters().no_route, 1);

    rig.state.egress = Egress::new(iface()).with_gateway(GATEWAY.into());
    let (sent, frames) = rig.send((US.into(), FAR.into()), udp(b"far"), None);
    assert_eq!(sent, Ok(Sent::Held));
    assert_eq!(
        &frames[0].data()[38..42],
        &GATEWAY.octets(),
        "asks for the gateway"
    );
    drop(frames);
    let released = rig.arp_in(&arp_reply(GATEWAY, GATEWAY_MAC), NOW_NS);
    assert_eq!(released.len(), 1);
    // To the gateway's MAC, with the far address in the IP header.
    assert_eq!(
        &ipv4_udp(released[0].data(), GATEWAY_MAC, (US, FAR))[8..],
        b"far"
    );
    assert!(rig.state.egress.neighbors_v4().get(FAR, NOW_NS).is_none());
    drop((released, rig));
    pool().assert_whole();
}

#[test]
fn packets_larger_than_the_mtu_are_refused_not_fragmented() {
    let mut rig = rig();
    // 20 + 8 + 1472 = 1500: fits the wire's MTU exactly.
    let (sent, frames) = rig.send(
        (US.into(), "192.0.2.255".parse().unwrap()),
        udp(&[7; 1472]),
        None,
    );
    assert_eq!(sent, Ok(Sent::Queued), "broadcast: no resolution");
    assert_eq!(frames[0].len(), 14 + 1500);
    assert_eq!(&frames[0].data()[..6], &[0xff; 6]);
    drop(frames);
    let (sent, frames) = rig.send((US.into(), THEM.into()), udp(&[7; 1473]), None);
    assert_eq!((sent, frames.len()), (Err(SocketError::MessageTooLong), 0));
    // IPv6: 40 + 8 + 1452 = 1500.
    let (sent, _) = rig.send((us6().into(), them6().into()), udp(&[7; 1453]), None);
    assert_eq!(sent, Err(SocketError::MessageTooLong));
    // A configured MTU below the port's wins.
    rig.state.egress = Egress::new(iface()).with_config(EgressConfig {
        mtu: Some(576),
        ..EgressConfig::default()
    });
    let (sent, _) = rig.send((US.into(), THEM.into()), udp(&[7; 549]), None);
    assert_eq!(sent, Err(SocketError::MessageTooLong));
    let (sent, frames) = rig.send((US.into(), THEM.into()), udp(&[7; 548]), None);
    assert_eq!(sent, Ok(Sent::Held));
    assert_eq!(rig.state.egress.counters().too_big, 1);
    drop((frames, rig));
    pool().assert_whole();
}

#[test]
fn the_header_checksum_is_computed_or_asked_of_the_port_and_verifies_either_way() {
    let (inner, peer) = MemoryWire::pair(WireConfig {
        pool: Some(pool()),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let mut caps = inner.caps().clone();
    caps.tx_offloads = Offloads {
        ipv4_checksum: true,
        ..Offloads::default()
    };
    let mut offloading = Rig {
        state: EgressState::new(iface()),
        arp: ArpResponder::new(),
        ndp: NdpResponder::new(),
        port: Custom {
            inner,
            caps,
            refuse_tx: false,
        },
        _peer: peer,
        runtime: Runtime::new([], []),
    };
    let mut software = rig();
    for (i, rig_frames) in [
        {
            let (_, f) =
                offloading.send((US.into(), "192.0.2.255".parse().unwrap()), udp(b"x"), None);
            f
        },
        {
            let (_, f) =
                software.send((US.into(), "192.0.2.255".parse().unwrap()), udp(b"x"), None);
            f
        },
    ]
    .into_iter()
    .enumerate()
    {
        let [mut frame] = <[PoolBuf; 1]>::try_from(rig_frames).expect("one frame");
        let asked = frame.meta().tx.wants_ipv4_checksum();
        assert_eq!(asked, i == 0, "asked only of the offloading port");
        let layers = frame.meta().layers;
        assert_eq!(
            (layers.l2, layers.l3, layers.l4, layers.payload),
            (0, 14, 34, 42)
        );
        if asked {
            assert_eq!(&frame.data()[24..26], &[0, 0], "left for the device");
            // What the device's (here: software) transmit path does.
            assert_eq!(
                offload::prepare(&mut frame, &Offloads::default()),
                Ok(Prepared::Done)
            );
        }
        assert_eq!(
            &ipv4_udp(
                frame.data(),
                MacAddr::BROADCAST,
                (US, "192.0.2.255".parse().unwrap())
            )[8..],
            b"x"
        );
    }
    drop((offloading, software));
    pool().assert_whole();
}

#[test]
fn a_transport_checksum_asked_of_the_port_is_finished_there() {
    let mut rig = rig();
    for dst in [
        IpAddr::from("192.0.2.255".parse::<Ipv4Addr>().unwrap()),
        "ff02::1".parse().unwrap(),
    ] {
        let src = rig.state.egress.source_for(dst).unwrap();
        let mut payload = udp(b"checksum me");
        payload.meta_mut().tx.request_l4_checksum(L4Protocol::Udp);
        let (sent, frames) = rig.send((src, dst), payload, None);
        assert_eq!(sent, Ok(Sent::Queued));
        let [mut frame] = <[PoolBuf; 1]>::try_from(frames).expect("one frame");
        assert_eq!(
            offload::prepare(&mut frame, &Offloads::default()),
            Ok(Prepared::Done)
        );
        let data = frame.data();
        let sum = match dst {
            IpAddr::V4(_) => {
                let len = ((data.len() - 34) as u16).to_be_bytes();
                ones_sum(&[&data[26..34], &[0, 17], &len, &data[34..]])
            }
            IpAddr::V6(_) => {
                assert_eq!(&data[..6], &[0x33, 0x33, 0, 0, 0, 1], "all-nodes group");
                let len = ((data.len() - 54) as u32).to_be_bytes();
                ones_sum(&[&data[22..54], &len, &[0, 0, 0, 17], &data[54..]])
            }
        };
        assert_ne!(&data[data.len() - 13..data.len() - 11], &[0, 0]);
        assert_eq!(sum, 0xffff, "{dst}");
    }
    drop(rig);
    pool().assert_whole();
}

#[test]
fn a_full_hold_queue_refuses_the_newest_and_keeps_the_order() {
    let mut rig = rig_with(iface(), |mut c| {
        c.neighbors.hold_per_neighbor = 2;
        c
    });
    for (i, expected) in [Ok(Sent::Held), Ok(Sent::Held), Err(SocketError::NoBuffers)]
        .into_iter()
        .enumerate()
    {
        let (sent, _) = rig.send((US.into(), THEM.into()), udp(&[i as u8]), None);
        assert_eq!(sent, expected, "datagram {i}");
    }
    assert_eq!(rig.state.egress.counters().hold_full, 1);
    let released = rig.arp_in(&arp_reply(THEM, THEM_MAC), NOW_NS);
    let data: Vec<u8> = released.iter().map(|f| f.data()[42]).collect();
    assert_eq!(data, [0, 1], "the oldest kept, in order");
    drop((released, rig));
    pool().assert_whole();
}

#[test]
fn ipv6_solicits_the_group_and_the_advertisement_releases() {
    let mut rig = rig();
    let (sent, frames) = rig.send((us6().into(), them6().into()), udp(b"six"), None);
    assert_eq!(sent, Ok(Sent::Held));
    assert_eq!(frames.len(), 1);
    let ns = frames[0].data();
    assert_eq!(
        &ns[..6],
        &[0x33, 0x33, 0xff, 0, 0, 2],
        "the solicited-node group"
    );
    assert_eq!((ns[20], ns[21], ns[54]), (58, 255, 135));
    assert_eq!(&ns[62..78], &them6().octets(), "the target");
    drop(frames);
    // A solicited advertisement with their MAC, built by etherparse.
    let mut payload = them6().octets().to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&THEM_MAC.octets());
    let mut na = Vec::new();
    etherparse::PacketBuilder::ethernet2(THEM_MAC.octets(), US_MAC.octets())
        .ipv6(them6().octets(), us6().octets(), 255)
        .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
        .write(&mut na, &payload)
        .unwrap();
    let mut buf = frame(&na);
    buf.meta_mut().layers.l3 = 14;
    buf.meta_mut().layers.l4 = 54;
    let (verdict, released) = rig.at(NOW_NS, |cx, _, ndp| {
        ndp.process(Ipv6Packet::new_unchecked(buf), cx)
    });
    assert!(matches!(verdict, Verdict::Consumed));
    assert_eq!(released.len(), 1);
    let f = released[0].data();
    assert_eq!(&f[..6], &THEM_MAC.octets());
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    assert_eq!((f[20], f[21]), (17, 64), "UDP, hop limit 64");
    assert_eq!(&f[22..38], &us6().octets());
    assert_eq!(&f[38..54], &them6().octets());
    assert_eq!(&f[54 + 8..], b"six");
    drop((released, rig));
    pool().assert_whole();
}

#[test]
fn bad_sources_and_missing_headroom_are_refused_and_counted() {
    let mut rig = rig();
    let (sent, _) = rig.send((us6().into(), THEM.into()), udp(b"x"), None);
    assert_eq!(sent, Err(SocketError::InvalidArgument));
    let (sent, _) = rig.send(("192.0.2.9".parse().unwrap(), THEM.into()), udp(b"x"), None);
    assert_eq!(sent, Err(SocketError::AddressNotAvailable));
    assert_eq!(rig.state.egress.counters().bad_source, 2);
    // A payload filling the buffer's front: no room for the headers.
    let mut tight = pool().alloc().unwrap();
    let room = tight.headroom();
    tight.prepend(room).unwrap().fill(0);
    assert_eq!(tight.headroom(), 0);
    let (sent, _) = rig.send((US.into(), THEM.into()), tight, None);
    assert_eq!(sent, Err(SocketError::NoBuffers));
    assert_eq!(rig.state.egress.counters().no_headroom, 1);
    drop(rig);
    pool().assert_whole();
}

#[test]
fn a_full_transmit_queue_that_the_port_will_not_drain_refuses() {
    let (inner, peer) = MemoryWire::pair(WireConfig {
        pool: Some(pool()),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let caps = inner.caps().clone();
    let mut rig = Rig {
        state: EgressState::new(iface()),
        arp: ArpResponder::new(),
        ndp: NdpResponder::new(),
        port: Custom {
            inner,
            caps,
            refuse_tx: true,
        },
        _peer: peer,
        runtime: Runtime::new([], []),
    };
    let broadcast: IpAddr = "192.0.2.255".parse().unwrap();
    let (results, queued) = rig.at(NOW_NS, |cx, _, _| {
        (0..tpa::pipeline::TX_QUEUE_LEN + 1)
            .map(|_| {
                let ip = IpSend {
                    src: US.into(),
                    dst: broadcast,
                    protocol: IpProtocol::Udp,
                    hop_limit: None,
                    owner: None,
                };
                send_ip(cx, udp(b"x"), ip)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(queued.len(), tpa::pipeline::TX_QUEUE_LEN);
    assert!(results[..queued.len()]
        .iter()
        .all(|r| *r == Ok(Sent::Queued)));
    assert_eq!(results.last(), Some(&Err(SocketError::NoBuffers)));
    let c = *rig.state.egress.counters();
    assert_eq!((c.sent, c.tx_full), (tpa::pipeline::TX_QUEUE_LEN as u64, 1));
    drop((queued, rig));
    pool().assert_whole();
}

#[test]
fn the_remembered_route_answers_as_routing_does_from_any_source() {
    let mut rig = rig();
    rig.state.egress = Egress::new(iface().with_ipv4("198.51.100.1/24".parse().unwrap()));
    let second: Ipv4Addr = "198.51.100.1".parse().unwrap();
    // The socket's question first: the route to THEM is remembered.
    assert_eq!(
        rig.state.egress.route_source_for(THEM.into()),
        Some(US.into())
    );
    // Our other address sends to the same destination: still ours, checked.
    let (sent, _) = rig.send((second.into(), THEM.into()), udp(b"a"), None);
    assert_eq!(sent, Ok(Sent::Held));
    // A foreign source is refused though the destination is remembered.
    let (sent, _) = rig.send(("192.0.2.9".parse().unwrap(), THEM.into()), udp(b"b"), None);
    assert_eq!(sent, Err(SocketError::AddressNotAvailable));
    // Other destinations in turn: each answered as routing says.
    let (sent, _) = rig.send((US.into(), FAR.into()), udp(b"c"), None);
    assert_eq!(sent, Err(SocketError::NetworkUnreachable));
    assert_eq!(
        rig.state
            .egress
            .route_source_for("198.51.100.7".parse().unwrap()),
        Some(second.into())
    );
    assert_eq!(
        rig.state.egress.route_source_for(FAR.into()),
        rig.state.egress.source_for(FAR.into())
    );
    let (sent, _) = rig.send((US.into(), THEM.into()), udp(b"d"), None);
    assert_eq!(sent, Ok(Sent::Held));
    let c = rig.state.egress.counters();
    assert_eq!((c.bad_source, c.no_route, c.held), (1, 1, 2));
    drop(rig);
    pool().assert_whole();
}

/// A TCP header from port 1000 to 80 (data offset 5, checksum left
/// zero: egress does not read it), then `data`.
fn tcp(data: &[u8]) -> PoolBuf {
    let mut bytes = vec![
        0x03, 0xe8, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff,
    ];
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(data);
    frame(&bytes)
}

/// Sends `data` as TCP from `src` to `dst` on two rigs of the same
/// configuration, through a connection's way out `path` on the first and
/// through `send_ip` on the second, at `now_ns`: both say the same and put
/// the same frames (bytes, layer offsets, checksum requests) on the wire.
/// Returns what was said and the frames.
fn same_both_ways(
    (on_path, full): (&mut Rig<MemoryPort>, &mut Rig<MemoryPort>),
    path: &mut PathV4,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    data: &[u8],
    now_ns: u64,
) -> (Result<Sent, SocketError>, Vec<PoolBuf>) {
    let (a, a_frames) = on_path.at(now_ns, |cx, _, _| {
        let (state, port) = cx.split();
        state
            .egress
            .send_tcp_v4_on(port, tcp(data), path, (src, dst), 20)
    });
    let ip = IpSend {
        src: src.into(),
        dst: dst.into(),
        protocol: IpProtocol::Tcp,
        hop_limit: None,
        owner: None,
    };
    let (b, b_frames) = full.at(now_ns, |cx, _, _| send_ip(cx, tcp(data), ip));
    assert_eq!(a, b, "{data:?}");
    assert_eq!(a_frames.len(), b_frames.len(), "{data:?}");
    for (x, y) in a_frames.iter().zip(&b_frames) {
        assert_eq!(x.data(), y.data(), "{data:?}");
        assert_eq!(x.meta().layers, y.meta().layers);
        assert_eq!(
            x.meta().tx.wants_ipv4_checksum(),
            y.meta().tx.wants_ipv4_checksum()
        );
    }
    assert_eq!(
        format!("{:?}", on_path.state.egress.counters()),
        format!("{:?}", full.state.egress.counters()),
        "{data:?}"
    );
    (a, a_frames)
}

#[test]
fn a_connections_way_out_puts_the_frames_of_the_full_path_on_the_wire() {
    // Every buffer in the block's frames, rigs and queues back in the
    // pool at its end.
    {
        let (mut a, mut b) = (rig(), rig());
        let mut path = PathV4::default();
        let both =
            |a: &mut Rig<MemoryPort>, b: &mut Rig<MemoryPort>, path: &mut PathV4, data, now| {
                same_both_ways((a, b), path, (US, THEM), data, now)
            };
        // Not resolved yet: held, the ARP request out; the reply releases it.
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"first", NOW_NS);
        assert_eq!((sent, frames.len()), (Ok(Sent::Held), 1));
        assert_ne!(path.stamp(), 0, "built by its first segment");
        let built = path.stamp();
        let released = a.arp_in(&arp_reply(THEM, THEM_MAC), NOW_NS + 1000);
        let again = b.arp_in(&arp_reply(THEM, THEM_MAC), NOW_NS + 1000);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].data(), again[0].data());
        assert_eq!(&released[0].data()[..6], &THEM_MAC.octets());
        drop((released, again));
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"second", NOW_NS + 2000);
        assert_eq!((sent, frames.len()), (Ok(Sent::Queued), 1));
        assert_eq!(&frames[0].data()[..6], &THEM_MAC.octets());
        assert_eq!(path.stamp(), built, "not built again");

        // The neighbor moves (an overriding advertisement): the next frame
        // goes to its new address.
        let moved = MacAddr([0x02, 0xdd, 0, 0, 0, 9]);
        for rig in [&mut a, &mut b] {
            rig.at(NOW_NS + 3000, |cx, _, _| {
                let (state, port) = cx.split();
                let heard = crate::neighbor::Heard::Advertisement {
                    solicited: false,
                    override_entry: true,
                };
                state.egress.learn_v4(THEM, Some(moved), heard, port)
            });
        }
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"third", NOW_NS + 4000);
        assert_eq!((sent, frames.len()), (Ok(Sent::Queued), 1));
        assert_eq!(&frames[0].data()[..6], &moved.octets());
        // Long after: the entry is stale, goes to DELAY with the frame, and
        // the probe goes out on both as the timers say.
        let later = NOW_NS + 600 * SECOND;
        let (sent, _) = both(&mut a, &mut b, &mut path, b"fourth", later);
        assert_eq!(sent, Ok(Sent::Queued));
        assert_eq!(
            a.state
                .egress
                .neighbors_v4()
                .get(THEM, later)
                .map(|n| n.state),
            Some(NeighborState::Delay)
        );
        let probes = (a.timers(later + 10 * SECOND), b.timers(later + 10 * SECOND));
        assert_eq!(probes.0.len(), 1, "the unicast probe");
        assert_eq!(probes.0[0].data(), probes.1[0].data());
        drop(probes);

        // Off-link with no gateway: refused alike, the path not built.
        let mut far = PathV4::default();
        let (sent, _) = same_both_ways((&mut a, &mut b), &mut far, (US, FAR), b"far", later);
        assert_eq!(sent, Err(SocketError::NetworkUnreachable));
        assert_eq!(far.stamp(), 0);
        // A source that is not ours: refused alike.
        let mut spoofed = PathV4::default();
        let not_ours = Ipv4Addr::new(192, 0, 2, 99);
        let (sent, _) = same_both_ways(
            (&mut a, &mut b),
            &mut spoofed,
            (not_ours, THEM),
            b"x",
            later,
        );
        assert_eq!(sent, Err(SocketError::AddressNotAvailable));
        // A gateway added: a new egress path, so both ways out are built again.
        for rig in [&mut a, &mut b] {
            let egress = std::mem::replace(&mut rig.state.egress, Egress::new(iface()));
            rig.state.egress = egress.with_gateway(GATEWAY.into());
        }
        let (sent, frames) = same_both_ways((&mut a, &mut b), &mut far, (US, FAR), b"far", later);
        assert_eq!(
            (sent, frames.len()),
            (Ok(Sent::Held), 1),
            "the gateway asked for"
        );
        assert_eq!(&frames[0].data()[38..42], &GATEWAY.octets());
        let (sent, _) = both(&mut a, &mut b, &mut path, b"fifth", later);
        assert_ne!(path.stamp(), built, "built again for the new egress path");
        assert_eq!(sent, Ok(Sent::Queued));
    }
    pool().assert_whole();
}

/// [`same_both_ways`] over IPv6: `data` as TCP from `src` to `dst` through
/// the way out `path` ([`Egress::send_tcp_v6_on`]) on the first rig and
/// through `send_ip` on the second; the same answer, frames (bytes, layer
/// offsets, checksum requests) and counters.
fn same_both_ways_v6(
    (on_path, full): (&mut Rig<MemoryPort>, &mut Rig<MemoryPort>),
    path: &mut PathV6,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    data: &[u8],
    now_ns: u64,
) -> (Result<Sent, SocketError>, Vec<PoolBuf>) {
    let (a, a_frames) = on_path.at(now_ns, |cx, _, _| {
        let (state, port) = cx.split();
        state
            .egress
            .send_tcp_v6_on(port, tcp(data), path, (src, dst), 20)
    });
    let ip = IpSend {
        src: src.into(),
        dst: dst.into(),
        protocol: IpProtocol::Tcp,
        hop_limit: None,
        owner: None,
    };
    let (b, b_frames) = full.at(now_ns, |cx, _, _| send_ip(cx, tcp(data), ip));
    assert_eq!(a, b, "{data:?}");
    assert_eq!(a_frames.len(), b_frames.len(), "{data:?}");
    for (x, y) in a_frames.iter().zip(&b_frames) {
        assert_eq!(x.data(), y.data(), "{data:?}");
        assert_eq!(x.meta().layers, y.meta().layers);
        assert_eq!(x.meta().tx.l4_checksum(), y.meta().tx.l4_checksum());
    }
    assert_eq!(
        format!("{:?}", on_path.state.egress.counters()),
        format!("{:?}", full.state.egress.counters()),
        "{data:?}"
    );
    (a, a_frames)
}

/// A neighbor advertisement from `mac` for `target`, solicited, with the
/// override flag: what releases or moves an IPv6 neighbor.
fn neighbor_advertisement(target: Ipv6Addr, mac: MacAddr) -> PoolBuf {
    let mut payload = target.octets().to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&mac.octets());
    let mut na = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac.octets(), US_MAC.octets())
        .ipv6(target.octets(), us6().octets(), 255)
        .icmpv6_raw(136, 0, [0x60, 0, 0, 0])
        .write(&mut na, &payload)
        .unwrap();
    let mut buf = frame(&na);
    buf.meta_mut().layers.l3 = 14;
    buf.meta_mut().layers.l4 = 54;
    buf
}

#[test]
fn a_connections_ipv6_way_out_puts_the_frames_of_the_full_path_on_the_wire() {
    {
        let (mut a, mut b) = (rig(), rig());
        let mut path = PathV6::default();
        let both =
            |a: &mut Rig<MemoryPort>, b: &mut Rig<MemoryPort>, path: &mut PathV6, data, now| {
                same_both_ways_v6((a, b), path, (us6(), them6()), data, now)
            };
        let advertise = |rig: &mut Rig<MemoryPort>, mac, now| {
            let na = neighbor_advertisement(them6(), mac);
            let (verdict, released) = rig.at(now, |cx, _, ndp| {
                ndp.process(Ipv6Packet::new_unchecked(na), cx)
            });
            assert!(matches!(verdict, Verdict::Consumed));
            released
        };
        // Not resolved yet: held, the solicitation out; the advertisement
        // releases it.
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"first", NOW_NS);
        assert_eq!((sent, frames.len()), (Ok(Sent::Held), 1));
        assert_eq!(&frames[0].data()[..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        assert_ne!(path.stamp(), 0, "built by its first segment");
        let built = path.stamp();
        let released = advertise(&mut a, THEM_MAC, NOW_NS + 1000);
        let again = advertise(&mut b, THEM_MAC, NOW_NS + 1000);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].data(), again[0].data());
        assert_eq!(&released[0].data()[..6], &THEM_MAC.octets());
        assert_eq!(&released[0].data()[54 + 20..], b"first");
        drop((released, again));
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"second", NOW_NS + 2000);
        assert_eq!((sent, frames.len()), (Ok(Sent::Queued), 1));
        let f = frames[0].data();
        assert_eq!(&f[..6], &THEM_MAC.octets());
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(&f[18..22], &[0, 26, 6, 64], "length, TCP, hop limit");
        assert_eq!(path.stamp(), built, "not built again");

        // The neighbor moves (an overriding advertisement): the next frame
        // goes to its new address.
        let moved = MacAddr([0x02, 0xdd, 0, 0, 0, 9]);
        for rig in [&mut a, &mut b] {
            assert!(advertise(rig, moved, NOW_NS + 3000).is_empty());
        }
        let (sent, frames) = both(&mut a, &mut b, &mut path, b"third", NOW_NS + 4000);
        assert_eq!((sent, frames.len()), (Ok(Sent::Queued), 1));
        assert_eq!(&frames[0].data()[..6], &moved.octets());
        // Long after: the entry is stale and goes to DELAY with the frame;
        // the probe goes out on both as the timers say.
        let later = NOW_NS + 600 * SECOND;
        let (sent, _) = both(&mut a, &mut b, &mut path, b"fourth", later);
        assert_eq!(sent, Ok(Sent::Queued));
        assert_eq!(
            a.state
                .egress
                .neighbors_v6()
                .get(them6(), later)
                .map(|n| n.state),
            Some(NeighborState::Delay)
        );
        let probes = (a.timers(later + 10 * SECOND), b.timers(later + 10 * SECOND));
        assert_eq!(probes.0.len(), 1, "the unicast probe");
        assert_eq!(probes.0[0].data(), probes.1[0].data());
        drop(probes);

        // Off-link with no gateway: refused alike, the path not built.
        let far6: Ipv6Addr = "2001:db8:99::9".parse().unwrap();
        let mut far = PathV6::default();
        let (sent, _) = same_both_ways_v6((&mut a, &mut b), &mut far, (us6(), far6), b"far", later);
        assert_eq!(sent, Err(SocketError::NetworkUnreachable));
        assert_eq!(far.stamp(), 0);
        // A source that is not ours: refused alike.
        let mut spoofed = PathV6::default();
        let not_ours: Ipv6Addr = "2001:db8::99".parse().unwrap();
        let (sent, _) = same_both_ways_v6(
            (&mut a, &mut b),
            &mut spoofed,
            (not_ours, them6()),
            b"x",
            later,
        );
        assert_eq!(sent, Err(SocketError::AddressNotAvailable));
        assert_eq!(spoofed.stamp(), 0);
        // Larger than the MTU: refused alike.
        let (sent, _) = both(&mut a, &mut b, &mut path, &[1; 1500 - 40 - 20 + 1], later);
        assert_eq!(sent, Err(SocketError::MessageTooLong));
        // A gateway added: a new egress path, so both ways out are built again.
        let gateway6: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        for rig in [&mut a, &mut b] {
            let egress = std::mem::replace(&mut rig.state.egress, Egress::new(iface()));
            rig.state.egress = egress.with_gateway(gateway6.into());
        }
        let (sent, frames) =
            same_both_ways_v6((&mut a, &mut b), &mut far, (us6(), far6), b"far", later);
        assert_eq!(
            (sent, frames.len()),
            (Ok(Sent::Held), 1),
            "the gateway solicited"
        );
        assert_eq!(&frames[0].data()[62..78], &gateway6.octets(), "the target");
        assert_ne!(far.stamp(), 0);
        let (sent, _) = both(&mut a, &mut b, &mut path, b"fifth", later);
        assert_ne!(path.stamp(), built, "built again for the new egress path");
        assert_eq!(sent, Ok(Sent::Queued));
    }
    pool().assert_whole();
}
