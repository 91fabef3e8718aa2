//! UDP end to end over a MemoryWire: a `#[pipeline]` with a `#[state]`
//! (egress, sockets, events) and an `#[app]` (an echo server) against a
//! peer that builds its frames with etherparse and answers ARP and
//! neighbor solicitations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tpa::app::{App, Events, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, PoolBuf};
use tpa::pipeline;
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Counted, Cx, Reason};
use tpa::state::State;
use tpa::wire::arp::{Arp, ArpOperation, HARDWARE_ETHERNET};
use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::icmpv6::{
    Icmpv6Type, NdpOptionWriter, NeighborAdvertisement, NeighborAdvertisementView,
    NeighborSolicitationView,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::Ipv6;
use tpa::wire::MacAddr;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::icmp::{Icmpv4EchoResponder, Icmpv6EchoResponder};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::udp::{
    self, udp_branch, UdpBranch, UdpConfig, UdpIcmp, UdpInput, UdpSockets, UnreachableConfig,
    QUEUE_FULL,
};
use tpa_tests::netns::Netns;
use tpa_tests::tcp_host::open_tap;

type B = PoolBuf;

const US_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const THEM_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const US4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const THEM4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// On-link, but no one answers for it.
const SILENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const THEM6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const ECHO_PORT: u16 = 7;
const MS: u64 = 1_000_000;

fn iface() -> Interface {
    Interface::new(US_MAC)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap())
}

/// The pipeline's shared tables.
#[derive(State)]
struct EchoState {
    #[polled]
    egress: Egress<B>,
    sockets: UdpSockets<B>,
    events: Events,
}

/// Echoes every datagram back to its sender, zero-copy, unless paused;
/// records the errors the sockets report.
#[derive(Default)]
struct Echo {
    paused: bool,
    echoed: u64,
    send_failures: u64,
    errors: Vec<(SocketId, SocketError)>,
    /// What [`App::poll`] sends once: (socket, destination, payload).
    to_send: Vec<(SocketId, SocketAddr, Vec<u8>)>,
}

impl Echo {
    fn drain(&mut self, socket: SocketId, cx: &mut Cx<'_, B, EchoState>) {
        while let Ok(datagram) = udp::recv(cx, socket) {
            let from = datagram.from();
            match udp::send_buf_to(cx, socket, from, datagram.into_payload()) {
                Ok(_) => self.echoed += 1,
                Err(_) => self.send_failures += 1,
            }
        }
    }
}

impl App<B, EchoState> for Echo {
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, EchoState>) {
        if !self.paused {
            self.drain(socket, cx);
        }
    }

    fn error(&mut self, socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, EchoState>) {
        self.errors.push((socket, error));
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, EchoState>) -> usize {
        let work = self.to_send.len();
        for (socket, dst, payload) in std::mem::take(&mut self.to_send) {
            if udp::send_to(cx, socket, dst, &payload).is_err() {
                self.send_failures += 1;
            }
        }
        work
    }
}

type V4Other = (
    Counted<Icmpv4EchoResponder>,
    Counted<UdpIcmp<Ipv4Packet<B>>>,
    Discard<Ipv4Packet<B>>,
);
type V6Other = (
    Counted<Icmpv6EchoResponder>,
    Counted<UdpIcmp<Ipv6Packet<B>>>,
    Discard<Ipv6Packet<B>>,
);
type V4Branch = (
    Ipv4Input,
    UdpBranch<Ipv4Packet<B>, V4Other, Counted<UdpInput>>,
);
type V6Branch = (
    Ipv6Input,
    NdpResponder,
    UdpBranch<Ipv6Packet<B>, V6Other, Counted<UdpInput>>,
);

/// ethernet → (arp | ipv4 input → (icmp | udp) | ipv6 input → ndp → (icmp | udp)).
#[pipeline]
struct EchoServer<P: Port<Buf = B>> {
    #[port]
    port: P,
    #[state]
    state: EchoState,
    #[app]
    app: Echo,
    front: EthernetFront<B, ArpResponder, V4Branch, V6Branch>,
}

impl<P: Port<Buf = B>> EchoServer<P> {
    fn udp4(&self) -> &Counted<UdpInput> {
        &self.front.right.left.1.right
    }

    fn udp6(&self) -> &Counted<UdpInput> {
        &self.front.right.right.2.right
    }
}

fn build<P: Port<Buf = B>>(
    port: P,
    sockets: UdpConfig,
    unreachable: UnreachableConfig,
) -> EchoServer<P> {
    let iface = iface();
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            udp_branch(
                (
                    Counted::new(Icmpv4EchoResponder::new(iface.clone())),
                    Counted::new(UdpIcmp::new()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                Counted::new(UdpInput::new(unreachable)),
            ),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            udp_branch(
                (
                    Counted::new(Icmpv6EchoResponder::new(iface.clone())),
                    Counted::new(UdpIcmp::new()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                Counted::new(UdpInput::new(unreachable)),
            ),
        ),
    );
    let mut state = EchoState {
        egress: Egress::new(iface.clone()),
        sockets: UdpSockets::new(sockets),
        events: Events::default(),
    };
    for wildcard in ["0.0.0.0:7", "[::]:7"] {
        state
            .sockets
            .bind(wildcard.parse().unwrap(), &iface)
            .unwrap();
    }
    EchoServer::new(port, state, Echo::default(), front)
}

/// The test's end of the wire, with its clock: answers ARP requests and
/// neighbor solicitations for its addresses, collects everything else.
struct Peer {
    port: MemoryPort,
    now_ns: u64,
}

impl Peer {
    fn send(&mut self, frames: &[Vec<u8>]) {
        for chunk in frames.chunks(32) {
            let mut tx: Burst<B> = Burst::new();
            for f in chunk {
                let mut b = self.port.alloc().expect("peer pool has room");
                b.extend_from_slice(f).expect("frame fits a buffer");
                tx.push(b);
            }
            assert_eq!(self.port.tx_burst(&mut tx), chunk.len(), "wire full");
        }
    }

    /// Runs `iterations` loop iterations, a millisecond apart, answering
    /// address resolution after each; returns the other frames received.
    fn run<P: Port<Buf = B>>(&mut self, p: &mut EchoServer<P>, iterations: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..iterations {
            p.run_once_at(self.now_ns);
            self.now_ns += MS;
            let mut answers = Vec::new();
            loop {
                let mut rx: Burst<B> = Burst::new();
                if self.port.rx_burst(&mut rx) == 0 {
                    break;
                }
                for frame in rx.drain() {
                    match answer(frame.data()) {
                        Some(Some(reply)) => answers.push(reply),
                        Some(None) => {}
                        None => got.push(frame.data().to_vec()),
                    }
                }
            }
            self.send(&answers);
        }
        got
    }

    /// Sends `frames` and runs the loop until it has been quiet for a few
    /// iterations; returns what came back.
    fn exchange<P: Port<Buf = B>>(
        &mut self,
        p: &mut EchoServer<P>,
        frames: &[Vec<u8>],
    ) -> Vec<Vec<u8>> {
        self.send(frames);
        let mut got = Vec::new();
        let mut quiet = 0;
        while quiet < 3 {
            let more = self.run(p, 1);
            quiet = if more.is_empty() { quiet + 1 } else { 0 };
            got.extend(more);
        }
        got
    }
}

/// `Some(Some(reply))` for a resolution request for the peer,
/// `Some(None)` for other resolution traffic (announcements, requests for
/// others), `None` for everything else.
fn answer(frame: &[u8]) -> Option<Option<Vec<u8>>> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    match (&p.net, &p.transport) {
        (Some(NetSlice::Arp(arp)), _) => {
            let asks_us = arp.operation() == etherparse::ArpOperation::REQUEST
                && arp.target_protocol_addr() == THEM4.octets();
            Some(asks_us.then(|| arp_reply(arp.sender_hw_addr(), arp.sender_protocol_addr())))
        }
        (Some(NetSlice::Ipv6(_)), Some(TransportSlice::Icmpv6(icmp))) if icmp.type_u8() == 135 => {
            let ns = NeighborSolicitationView::new(icmp.slice()).ok()?;
            Some((ns.target() == THEM6).then(|| neighbor_advertisement(frame)))
        }
        (Some(NetSlice::Ipv6(_)), Some(TransportSlice::Icmpv6(icmp))) if icmp.type_u8() == 136 => {
            Some(None)
        }
        _ => None,
    }
}

fn arp_reply(asker_mac: &[u8], asker_ip: &[u8]) -> Vec<u8> {
    let asker_mac = MacAddr(asker_mac.try_into().unwrap());
    let mut f = vec![0u8; 14 + 28];
    Ethernet {
        dst: asker_mac,
        src: THEM_MAC,
        ether_type: EtherType::Arp,
    }
    .emit(&mut f)
    .unwrap();
    Arp {
        hardware_type: HARDWARE_ETHERNET,
        protocol_type: EtherType::Ipv4,
        hardware_addr_len: 6,
        protocol_addr_len: 4,
        operation: ArpOperation::Reply,
        sender_mac: THEM_MAC,
        sender_ip: THEM4,
        target_mac: asker_mac,
        target_ip: Ipv4Addr::from(<[u8; 4]>::try_from(asker_ip).unwrap()),
    }
    .emit(&mut f[14..])
    .unwrap();
    f
}

/// A solicited neighbor advertisement for THEM6 answering `ns` (a frame).
fn neighbor_advertisement(ns: &[u8]) -> Vec<u8> {
    let asker_mac = MacAddr(ns[6..12].try_into().unwrap());
    let asker: Ipv6Addr = <[u8; 16]>::try_from(&ns[22..38]).unwrap().into();
    let mut msg = vec![0u8; 24 + 8];
    NeighborAdvertisement {
        msg_type: Icmpv6Type::NeighborAdvertisement,
        code: 0,
        checksum: 0,
        router: false,
        solicited: true,
        override_entry: true,
        reserved: Default::default(),
        target: THEM6,
    }
    .emit(&mut msg)
    .unwrap();
    NdpOptionWriter::new(&mut msg[24..])
        .target_link_addr(THEM_MAC)
        .unwrap();
    NeighborAdvertisementView::new(&mut msg[..])
        .unwrap()
        .fill_checksum_v6(&THEM6, &asker);
    let mut f = vec![0u8; 14 + 40];
    Ethernet {
        dst: asker_mac,
        src: THEM_MAC,
        ether_type: EtherType::Ipv6,
    }
    .emit(&mut f)
    .unwrap();
    Ipv6 {
        version: 6,
        dscp: 0,
        ecn: 0,
        flow_label: 0,
        payload_len: msg.len() as u16,
        next_header: IpProtocol::Icmpv6,
        hop_limit: 255,
        src: THEM6,
        dst: asker,
    }
    .emit(&mut f[14..])
    .unwrap();
    f.extend_from_slice(&msg);
    f
}

/// A UDP datagram from the peer's `src_port` to our `dst_port`.
fn datagram(v6: bool, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let eth = PacketBuilder::ethernet2(THEM_MAC.0, US_MAC.0);
    if v6 {
        eth.ipv6(THEM6.octets(), US6.octets(), 64)
            .udp(src_port, dst_port)
            .write(&mut out, payload)
            .unwrap();
    } else {
        eth.ipv4(THEM4.octets(), US4.octets(), 64)
            .udp(src_port, dst_port)
            .write(&mut out, payload)
            .unwrap();
    }
    out
}

/// A UDP datagram as an independent parser reads it: (from, to, payload);
/// `None` for anything else. Panics on a wrong checksum.
fn parse_udp(frame: &[u8]) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Udp(udp)) = p.transport else {
        return None;
    };
    let h = udp.to_header();
    let (src, dst, sum): (IpAddr, IpAddr, u16) = match p.net? {
        NetSlice::Ipv4(ip) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            (
                s.into(),
                d.into(),
                h.calc_checksum_ipv4_raw(s, d, udp.payload()).unwrap(),
            )
        }
        NetSlice::Ipv6(ip) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            (
                s.into(),
                d.into(),
                h.calc_checksum_ipv6_raw(s, d, udp.payload()).unwrap(),
            )
        }
        _ => return None,
    };
    assert_eq!(h.checksum, sum, "UDP checksum of {frame:02x?}");
    Some((
        SocketAddr::new(src, h.source_port),
        SocketAddr::new(dst, h.destination_port),
        udp.payload().to_vec(),
    ))
}

fn them(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        (THEM6, port).into()
    } else {
        (THEM4, port).into()
    }
}

fn setup(sockets: UdpConfig, unreachable: UnreachableConfig) -> (EchoServer<MemoryPort>, Peer) {
    let (port, peer) = MemoryWire::pair(WireConfig::default()).expect("memory wire");
    let p = build(port, sockets, unreachable);
    (
        p,
        Peer {
            port: peer,
            now_ns: MS,
        },
    )
}

/// Drops the pipeline, then the peer, and checks every buffer came back.
fn finish<P: Port<Buf = B>>(p: EchoServer<P>, peer: Peer) {
    let pool = peer.port.pool().clone();
    drop(p);
    drop(peer);
    pool.assert_whole();
}

#[test]
fn datagrams_come_back_byte_for_byte_over_both_families() {
    let (mut p, mut peer) = setup(UdpConfig::default(), UnreachableConfig::default());
    for v6 in [false, true] {
        let max = if v6 { 1500 - 48 } else { 1500 - 28 };
        let sizes = [0usize, 1, 2, 3, 64, 513, max];
        let sent: Vec<(u16, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                (
                    40_000 + i as u16,
                    (0..n).map(|b| (b * 7 + i) as u8).collect(),
                )
            })
            .collect();
        let frames: Vec<_> = sent
            .iter()
            .map(|(port, d)| datagram(v6, *port, ECHO_PORT, d))
            .collect();
        let got = peer.exchange(&mut p, &frames);
        let echoes: Vec<_> = got.iter().filter_map(|f| parse_udp(f)).collect();
        assert_eq!(echoes.len(), sent.len(), "v6 {v6}: {got:02x?}");
        for ((port, payload), (from, to, echoed)) in sent.iter().zip(&echoes) {
            assert_eq!(from.port(), ECHO_PORT);
            assert_eq!(*to, them(v6, *port));
            assert_eq!(
                from.ip(),
                if v6 { IpAddr::V6(US6) } else { IpAddr::V4(US4) }
            );
            assert_eq!(echoed, payload);
        }
    }
    assert_eq!(p.app.echoed, 14);
    assert_eq!(p.app.send_failures, 0);
    assert_eq!((p.udp4().stats.consumed, p.udp6().stats.consumed), (7, 7));
    finish(p, peer);
}

/// The ICMP error in `frame`: (v6, type, code, quoted bytes).
fn icmp_error(frame: &[u8]) -> Option<(bool, u8, u8, Vec<u8>)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport? {
        TransportSlice::Icmpv4(icmp) => Some((
            false,
            icmp.type_u8(),
            icmp.code_u8(),
            icmp.payload().to_vec(),
        )),
        TransportSlice::Icmpv6(icmp) if icmp.type_u8() < 128 => {
            let ip = match p.net? {
                NetSlice::Ipv6(ip) => ip,
                _ => return None,
            };
            let (s, d) = (ip.header().source_addr(), ip.header().destination_addr());
            let view = tpa::wire::icmpv6::Icmpv6View::new(icmp.slice()).unwrap();
            assert!(view.checksum_ok_v6(&s, &d), "ICMPv6 checksum");
            Some((
                true,
                icmp.type_u8(),
                icmp.code_u8(),
                icmp.payload().to_vec(),
            ))
        }
        _ => None,
    }
}

#[test]
fn closed_ports_answer_port_unreachable_within_the_rate_limit() {
    let limit = UnreachableConfig {
        enabled: true,
        rate: 1,
        burst: 4,
    };
    let (mut p, mut peer) = setup(UdpConfig::default(), limit);
    for v6 in [false, true] {
        let frames: Vec<_> = (0..10u16)
            .map(|i| datagram(v6, 1000 + i, 9, b"anyone?"))
            .collect();
        let got = peer.exchange(&mut p, &frames);
        let errors: Vec<_> = got.iter().filter_map(|f| icmp_error(f)).collect();
        assert_eq!(errors.len(), 4, "v6 {v6}: the burst, then limited");
        for (i, (is_v6, kind, code, quoted)) in errors.iter().enumerate() {
            let want = if v6 { (1, 4) } else { (3, 3) };
            assert_eq!((*is_v6, *kind, *code), (v6, want.0, want.1));
            assert_eq!(quoted[..], frames[i][14..], "the whole datagram is quoted");
        }
        let stats = if v6 { p.udp6() } else { p.udp4() };
        assert_eq!(stats.stats.dropped(Reason::NO_SOCKET), 10);
        let c = stats.stage.counters();
        assert_eq!((c.unreachable_sent, c.unreachable_limited), (4, 6));
    }
    // Seconds later the bucket has refilled.
    peer.now_ns += 10_000 * MS;
    let got = peer.exchange(&mut p, &[datagram(false, 1, 9, b"later")]);
    assert_eq!(got.iter().filter_map(|f| icmp_error(f)).count(), 1);
    // Echo still works, ping too.
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(THEM_MAC.0, US_MAC.0)
        .ipv4(THEM4.octets(), US4.octets(), 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, b"ping")
        .unwrap();
    let got = peer.exchange(&mut p, &[ping, datagram(false, 1, ECHO_PORT, b"x")]);
    assert_eq!(got.len(), 2);
    finish(p, peer);
}

#[test]
fn bad_checksums_and_lengths_are_dropped_and_counted() {
    let (mut p, mut peer) = setup(UdpConfig::default(), UnreachableConfig::default());
    let mut frames = Vec::new();
    for v6 in [false, true] {
        let mut bad = datagram(v6, 1, ECHO_PORT, b"corrupted");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        frames.push(bad);
    }
    let mut zero6 = datagram(true, 1, ECHO_PORT, b"no sum");
    zero6[54 + 6..54 + 8].fill(0);
    frames.push(zero6);
    let mut zero4 = datagram(false, 1, ECHO_PORT, b"no sum");
    zero4[34 + 6..34 + 8].fill(0);
    frames.push(zero4);
    let got = peer.exchange(&mut p, &frames);
    let echoes: Vec<_> = got.iter().filter_map(|f| parse_udp(f)).collect();
    assert_eq!(echoes.len(), 1, "only IPv4's zero checksum (none) passes");
    assert_eq!(echoes[0].2, b"no sum");
    assert_eq!(p.udp4().stats.dropped(Reason::BAD_CHECKSUM), 1);
    assert_eq!(p.udp6().stats.dropped(Reason::BAD_CHECKSUM), 2);
    finish(p, peer);
}

#[test]
fn a_full_receive_queue_drops_and_counts_then_drains() {
    let config = UdpConfig {
        receive_limit: 8 * udp::MIN_CHARGE,
        ..UdpConfig::default()
    };
    let (mut p, mut peer) = setup(config, UnreachableConfig::default());
    p.app.paused = true;
    let frames: Vec<_> = (0..20u8)
        .map(|i| datagram(false, 2000, ECHO_PORT, &[i; 10]))
        .collect();
    assert!(peer.exchange(&mut p, &frames).is_empty());
    assert_eq!(p.udp4().stats.dropped(QUEUE_FULL), 12);
    assert_eq!(p.udp4().stats.consumed, 8);
    let socket = p.state.sockets.lookup(US4.into(), ECHO_PORT).unwrap();
    let c = p.state.sockets.counters(socket).unwrap();
    assert_eq!((c.received, c.dropped_full), (8, 12));
    // The app catches up from its own loop: the first 8, in order.
    p.app.paused = false;
    let mut app = std::mem::take(&mut p.app);
    p.with_cx(|cx| app.drain(socket, cx));
    p.app = app;
    let got = peer.run(&mut p, 2);
    let payloads: Vec<_> = got
        .iter()
        .filter_map(|f| parse_udp(f))
        .map(|e| e.2[0])
        .collect();
    assert_eq!(payloads, (0..8).collect::<Vec<u8>>());
    finish(p, peer);
}

#[test]
fn a_stale_handle_fails_after_close_and_rebind() {
    let (mut p, mut peer) = setup(UdpConfig::default(), UnreachableConfig::default());
    let old = p.state.sockets.lookup(US4.into(), ECHO_PORT).unwrap();
    let new = p.with_cx(|cx| {
        udp::close(cx, old).unwrap();
        udp::bind(cx, "192.0.2.1:7".parse().unwrap()).unwrap()
    });
    assert_eq!(new.index, old.index);
    let got = peer.exchange(&mut p, &[datagram(false, 3000, ECHO_PORT, b"still here")]);
    assert_eq!(
        got.iter().filter_map(|f| parse_udp(f)).count(),
        1,
        "the new socket echoes"
    );
    p.with_cx(|cx| {
        assert_eq!(udp::recv(cx, old).unwrap_err(), SocketError::BadSocket);
        assert_eq!(
            udp::send_to(cx, old, them(false, 1), b"x"),
            Err(SocketError::BadSocket)
        );
        assert_eq!(udp::close(cx, old), Err(SocketError::BadSocket));
    });
    finish(p, peer);
}

#[test]
fn a_neighbor_that_never_answers_is_an_error_event_on_the_socket() {
    let (mut p, mut peer) = setup(UdpConfig::default(), UnreachableConfig::default());
    let socket = p.with_cx(|cx| udp::bind(cx, "0.0.0.0:0".parse().unwrap()).unwrap());
    p.app
        .to_send
        .push((socket, (SILENT4, 9).into(), b"hello?".to_vec()));
    p.app
        .to_send
        .push((socket, (THEM4, 9).into(), b"hello!".to_vec()));
    // The resolution retries take seconds of the pipeline's clock.
    let got = peer.run(&mut p, 10_000);
    let delivered: Vec<_> = got.iter().filter_map(|f| parse_udp(f)).collect();
    assert_eq!(
        delivered.len(),
        1,
        "the answered neighbor gets its datagram"
    );
    assert_eq!(delivered[0].1, them(false, 9));
    assert_eq!(p.app.errors, [(socket, SocketError::HostUnreachable)]);
    finish(p, peer);
}

#[test]
fn ten_thousand_datagrams_echo_and_every_buffer_comes_back() {
    let seed = 0x5eed_u64;
    let (mut p, mut peer) = setup(UdpConfig::default(), UnreachableConfig::default());
    let mut x = seed;
    // The peer is resolved first: a burst to an unresolved neighbor
    // overflows its hold queue (counted by egress, refused as ENOBUFS).
    let warm_up = [
        datagram(false, 1, ECHO_PORT, b"4"),
        datagram(true, 1, ECHO_PORT, b"6"),
    ];
    assert_eq!(peer.exchange(&mut p, &warm_up).len(), 2);
    // Each socket keeps its datagrams' order; the two sockets' echoes
    // interleave as their events come, so echoes are matched by port.
    let mut expected = std::collections::HashMap::new();
    let mut received = 0usize;
    for round in 0..100 {
        let mut frames = Vec::new();
        for i in 0..100usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v6 = x & 1 == 1;
            let len = (x >> 8) as usize % 300;
            let payload: Vec<u8> = (0..len).map(|b| (b as u64 ^ x) as u8).collect();
            let port = 10_000 + (round * 100 + i) as u16;
            frames.push(datagram(v6, port, ECHO_PORT, &payload));
            expected.insert(them(v6, port), payload);
        }
        let got = peer.exchange(&mut p, &frames);
        for (from, to, payload) in got.iter().filter_map(|f| parse_udp(f)) {
            let want = expected.remove(&to);
            assert_eq!(
                want.as_ref(),
                Some(&payload),
                "seed {seed:#x}: echo to {to}"
            );
            assert_eq!(from.port(), ECHO_PORT);
            received += 1;
        }
    }
    assert_eq!(p.app.send_failures, 0);
    assert_eq!(received, 10_000, "seed {seed:#x}");
    assert_eq!(p.app.echoed, 10_002);
    finish(p, peer);
}

/// A port that says it computes UDP checksums on transmit, counts the
/// frames that ask it to, and leaves the work to its memory wire (which
/// does it in software, as every port's transmit path does what its
/// device does not).
struct UdpOffloading {
    inner: MemoryPort,
    caps: tpa::port::PortCaps,
    asked: u64,
}

impl Port for UdpOffloading {
    type Buf = B;
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<B, N>) -> usize {
        self.inner.rx_burst(rx)
    }
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<B, N>) -> usize {
        self.asked += tx
            .as_slice()
            .iter()
            .filter(|b| b.meta().tx.l4_checksum() == Some(tpa::buf::L4Protocol::Udp))
            .count() as u64;
        self.inner.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<B> {
        self.inner.pool()
    }
    fn caps(&self) -> &tpa::port::PortCaps {
        &self.caps
    }
}

#[test]
fn a_port_that_offloads_the_checksum_is_asked_to_and_the_datagrams_verify() {
    let (port, peer) = MemoryWire::pair(WireConfig::default()).expect("memory wire");
    let mut caps = port.caps().clone();
    caps.tx_offloads.udp_checksum = true;
    let port = UdpOffloading {
        inner: port,
        caps,
        asked: 0,
    };
    let mut p = build(port, UdpConfig::default(), UnreachableConfig::default());
    let mut peer = Peer {
        port: peer,
        now_ns: MS,
    };
    let frames: Vec<_> = [false, true]
        .iter()
        .flat_map(|&v6| {
            (0..3u8).map(move |i| datagram(v6, 100 + u16::from(i), ECHO_PORT, &[i; 33]))
        })
        .collect();
    let got = peer.exchange(&mut p, &frames);
    // parse_udp checks each checksum.
    assert_eq!(got.iter().filter_map(|f| parse_udp(f)).count(), 6);
    assert_eq!(p.port.asked, 6);
    finish(p, peer);
}

/// A datagram to a port no socket has in a kernel's namespace draws the
/// kernel's ICMP port unreachable: the sending socket gets an error event
/// and its pending error is ECONNREFUSED with the peer's address, once;
/// IPv4 and IPv6. Over a TAP device (run as root).
#[test]
fn a_closed_kernel_port_is_connection_refused_on_the_sending_socket() {
    let ns = Netns::new("udp-icmp");
    ns.ip(&["tuntap", "add", "dev", "tpa0", "mode", "tap"]);
    ns.add_addr("tpa0", &format!("{THEM4}/24"));
    ns.ip(&[
        "addr",
        "add",
        &format!("{THEM6}/64"),
        "dev",
        "tpa0",
        "nodad",
    ]);
    ns.up("tpa0");
    let pool = tpa::buf::Pool::new(tpa::buf::PoolConfig {
        name: "udp-icmp".into(),
        capacity: 1024,
        huge_pages: false,
        ..tpa::buf::PoolConfig::default()
    })
    .unwrap();
    let tap = open_tap(&ns, &pool, US_MAC);
    let mut p = build(tap, UdpConfig::default(), UnreachableConfig::default());
    // Port 9 (discard): nothing listens on it in a new namespace.
    let mut sockets = Vec::new();
    for (any, to) in [("0.0.0.0:0", them(false, 9)), ("[::]:0", them(true, 9))] {
        let socket = p.with_cx(|cx| udp::bind(cx, any.parse().unwrap()).unwrap());
        p.app.to_send.push((socket, to, b"anyone?".to_vec()));
        sockets.push((socket, to));
    }
    let start = std::time::Instant::now();
    while p.app.errors.len() < 2 {
        p.run_once();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no port unreachable after 30 s: errors {:?}, send failures {}",
            p.app.errors,
            p.app.send_failures
        );
    }
    for (socket, to) in sockets {
        assert!(
            p.app
                .errors
                .contains(&(socket, SocketError::ConnectionRefused)),
            "{to}: {:?}",
            p.app.errors
        );
        p.with_cx(|cx| {
            assert_eq!(
                udp::take_error(cx, socket),
                Ok(Some((SocketError::ConnectionRefused, to))),
                "{to}"
            );
            assert_eq!(udp::take_error(cx, socket), Ok(None), "{to}: read once");
        });
        let counters = p.state.sockets.counters(socket).unwrap();
        assert_eq!((counters.sent, counters.icmp_errors), (1, 1), "{to}");
    }
    drop(p);
    pool.assert_whole();
}
