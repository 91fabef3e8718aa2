//! UDP echo over a replaying port, per datagram: the generated pipeline
//! with the UDP stage, the socket table and an echo `App`, against the same
//! echo written by hand, and against a minimal echo that rewrites each
//! frame in place.
//!
//! 1. `udp_echo/pipeline`: a `#[pipeline]` with `#[state]` (egress,
//!    sockets, events) and `#[app]`: Ethernet front → IPv4 input →
//!    `UdpSplit` → `UdpInput` (length and checksum checked, the datagram
//!    queued zero-copy on its socket, a readable event) → the app receives
//!    each datagram and sends it back with `send_buf_to` (UDP header
//!    prepended in the headroom, checksum in software, egress: route,
//!    neighbor lookup, IPv4 and Ethernet headers).
//! 2. `udp_echo/hand`: the same logic without the framework's composition
//!    (no generated loop, no `Stage` trait or verdicts, no `App` dispatch,
//!    no phases): one loop over the receive burst calling the same
//!    building blocks (`Ipv4Packet::parse`, `UdpPacket::from_ipv4`,
//!    `UdpInput::input`: the same checks, socket queue and readable
//!    event), then the events popped and each readable socket drained with
//!    the same `udp::recv` and `udp::send_buf_to` through the same egress
//!    path, then what the ARP and NDP stages do every iteration
//!    (announcements, neighbor timers, the next deadline), the transmit
//!    queue flushed as the pipeline's is. The gap between 1 and 2 is what
//!    the framework's composition costs.
//! 3. `udp_echo/minimal`: what a socket API costs over the least work: the
//!    same Ethernet/IPv4 checks, UDP length and checksum, a lookup in the
//!    same socket table and neighbor cache, then the reply written over the
//!    request in place (addresses and ports swapped, a fresh IPv4 ID and
//!    header checksum, the UDP checksum computed again); no socket queue,
//!    no event, no egress path. The floor, not "the same logic".
//!
//! The port hands back every transmitted buffer rewritten with the request
//! again (the same copy per datagram for every variant). Every variant is
//! checked to echo every request before timing.
//!
//! Run: `cargo bench -p tpa-benches --bench udp_echo`;
//! `TPA_UDP_ECHO_RUN=<pipeline|hand|minimal>:<iterations>` runs one variant
//! alone for that many bursts, without criterion (for callgrind).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput};
use etherparse::PacketBuilder;
use tpa::app::{App, EventKind, Events, SocketId};
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::header::checksum::checksum;
use tpa::pipeline;
use tpa::pipeline::{NoHost, NoObserver, Runtime};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Reason};
use tpa::state::State;
use tpa::wire::ipv4::Ipv4View;
use tpa::wire::udp::UdpView;
use tpa::wire::MacAddr;
use tpa_benches::criterion;
use tpa_benches::loop_port::ReplayPort;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::icmp::{Icmpv4EchoResponder, Icmpv6EchoResponder};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::neighbor::Heard;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet, UdpPacket};
use tpa_stages::udp::{self, udp_branch, UdpBranch, UdpInput, UdpSockets};

const BURST: usize = 32;
const US: [u8; 6] = [2, 0, 0, 0, 0, 1];
const THEM: [u8; 6] = [2, 0, 0, 0, 0, 2];
const THEM4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PAYLOAD: usize = 64;
const NOW: u64 = 1;

fn iface() -> Interface {
    Interface::new(MacAddr(US))
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap())
}

/// A datagram from the peer's port 5000 to our port 7.
fn request() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(THEM, US)
        .ipv4(THEM4.octets(), [192, 0, 2, 1], 64)
        .udp(5000, 7)
        .write(&mut out, &[0x5a; PAYLOAD])
        .unwrap();
    out
}

/// Whether `frame` is the echo of [`request`].
fn is_echo(frame: &[u8]) -> bool {
    let Ok(p) = etherparse::SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
        return false;
    };
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        return false;
    };
    let h = udp.to_header();
    let sum = h.calc_checksum_ipv4_raw(
        ip.header().source(),
        ip.header().destination(),
        udp.payload(),
    );
    frame[..6] == THEM
        && ip.header().destination() == THEM4.octets()
        && (h.source_port, h.destination_port) == (7, 5000)
        && sum.is_ok_and(|s| s == h.checksum)
        && udp.payload() == [0x5a; PAYLOAD]
}

#[derive(State)]
struct EchoState {
    #[polled]
    egress: Egress<PoolBuf>,
    sockets: UdpSockets<PoolBuf>,
    events: Events,
}

/// Echoes every datagram, zero-copy.
#[derive(Default)]
struct Echo {
    echoed: u64,
}

impl App<PoolBuf, EchoState> for Echo {
    #[inline]
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, PoolBuf, EchoState>) {
        while let Ok(d) = udp::recv(cx, socket) {
            let from = d.from();
            if udp::send_buf_to(cx, socket, from, d.into_payload()).is_ok() {
                self.echoed += 1;
            }
        }
    }
}

type V4Branch = (
    Ipv4Input,
    UdpBranch<Ipv4Packet<PoolBuf>, (Icmpv4EchoResponder, Discard<Ipv4Packet<PoolBuf>>), UdpInput>,
);
type V6Branch = (
    Ipv6Input,
    NdpResponder,
    UdpBranch<Ipv6Packet<PoolBuf>, (Icmpv6EchoResponder, Discard<Ipv6Packet<PoolBuf>>), UdpInput>,
);

#[pipeline(burst = 32)]
struct EchoPipeline<P: Port<Buf = PoolBuf>> {
    #[port]
    port: P,
    #[state]
    state: EchoState,
    #[app]
    app: Echo,
    front: EthernetFront<PoolBuf, ArpResponder, V4Branch, V6Branch>,
}

/// The egress part, with the peer's MAC address learnt.
fn egress_knowing_the_peer<P: Port<Buf = PoolBuf>>(port: &mut P) -> Egress<PoolBuf> {
    let mut runtime: tpa::pipeline::Runtime<PoolBuf, 32, 0> = tpa::pipeline::Runtime::new([], []);
    let mut egress = Egress::new(iface());
    runtime.with_state(port, &mut tpa::pipeline::NoHost, NOW, &mut egress, |cx| {
        let (egress, port) = cx.split();
        egress.learn_v4(THEM4, Some(MacAddr(THEM)), Heard::Solicitation, port);
    });
    egress
}

fn pipeline_echo<P: Port<Buf = PoolBuf>>(mut port: P) -> EchoPipeline<P> {
    let iface = iface();
    let egress = egress_knowing_the_peer(&mut port);
    let mut sockets = UdpSockets::default();
    sockets.bind("0.0.0.0:7".parse().unwrap(), &iface).unwrap();
    let state = EchoState {
        egress,
        sockets,
        events: Events::default(),
    };
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            udp_branch(
                (
                    Icmpv4EchoResponder::new(iface.clone()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                UdpInput::default(),
            ),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            udp_branch(
                (
                    Icmpv6EchoResponder::new(iface.clone()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                UdpInput::default(),
            ),
        ),
    );
    EchoPipeline::new(port, state, Echo::default(), front)
}

/// The minimal echo: the same checks and lookups, the reply written over
/// the request, in one loop over the burst.
struct MinimalEcho {
    port: ReplayPort,
    iface: Interface,
    egress: Egress<PoolBuf>,
    sockets: UdpSockets<PoolBuf>,
    rx: Burst<PoolBuf, BURST>,
    tx: Burst<PoolBuf, 64>,
    ident: u16,
    echoed: u64,
    dropped: u64,
}

impl MinimalEcho {
    fn new() -> Self {
        let iface = iface();
        let mut port = ReplayPort::new(BURST, MacAddr(US), request());
        let egress = egress_knowing_the_peer(&mut port);
        let mut sockets = UdpSockets::default();
        sockets.bind("0.0.0.0:7".parse().unwrap(), &iface).unwrap();
        MinimalEcho {
            port,
            iface,
            egress,
            sockets,
            rx: Burst::new(),
            tx: Burst::new(),
            ident: 0,
            echoed: 0,
            dropped: 0,
        }
    }

    #[inline(always)]
    fn run_once(&mut self) {
        self.port.rx_burst(&mut self.rx);
        for buf in self.rx.drain() {
            match echo_in_place(
                buf,
                &self.iface,
                &self.sockets,
                &mut self.egress,
                &mut self.ident,
            ) {
                Some(reply) => {
                    self.echoed += 1;
                    self.tx.push(reply);
                }
                None => self.dropped += 1,
            }
        }
        self.port.tx_burst(&mut self.tx);
    }
}

/// The same echo as the pipeline's, written by hand: one loop over the
/// burst calling the building blocks the pipeline's stages and app call,
/// in the same order, over a state of the same parts.
struct HandEcho<P> {
    port: P,
    runtime: Runtime<PoolBuf, BURST, 0>,
    iface: Interface,
    state: EchoState,
    input: UdpInput,
    rx: Burst<PoolBuf, BURST>,
    echoed: u64,
    dropped: u64,
}

impl<P: Port<Buf = PoolBuf>> HandEcho<P> {
    fn new(mut port: P) -> Self {
        let iface = iface();
        let egress = egress_knowing_the_peer(&mut port);
        let mut sockets = UdpSockets::default();
        sockets.bind("0.0.0.0:7".parse().unwrap(), &iface).unwrap();
        HandEcho {
            port,
            runtime: Runtime::new([], []),
            iface,
            state: EchoState {
                egress,
                sockets,
                events: Events::default(),
            },
            input: UdpInput::default(),
            rx: Burst::new(),
            echoed: 0,
            dropped: 0,
        }
    }

    #[inline(always)]
    fn run_once(&mut self) {
        let HandEcho {
            port,
            runtime,
            iface,
            state,
            input,
            rx,
            echoed,
            dropped,
        } = self;
        let received = port.rx_burst(rx);
        let (work, deadline) = runtime.with_state(port, &mut NoHost, NOW, state, |cx| {
            // Receive: Ethernet and IPv4 checks, UDP input.
            for buf in rx.drain() {
                let queued = Ipv4Packet::parse(buf, iface)
                    .ok()
                    .and_then(|p| UdpPacket::from_ipv4(p).ok())
                    .is_some_and(|p| input.input(p, cx).is_ok());
                if !queued {
                    *dropped += 1;
                }
            }
            // Deliver: each readable socket drained and echoed.
            while let Some(event) = cx.part::<Events>().pop() {
                if event.kind != EventKind::Readable {
                    continue;
                }
                while let Ok(d) = udp::recv(cx, event.socket) {
                    let from = d.from();
                    if udp::send_buf_to(cx, event.socket, from, d.into_payload()).is_ok() {
                        *echoed += 1;
                    }
                }
            }
            // What the pipeline's polled `Egress` part does every iteration:
            // announcements, the neighbor caches' timers, their next deadline.
            let ((egress, events), port) = cx.parts::<(Egress<PoolBuf>, Events)>();
            egress.announce(port);
            let fired = egress.fire_timers(port, events);
            (fired, egress.next_deadline())
        });
        black_box(runtime.flush(
            port,
            &mut NoHost,
            &mut NoObserver,
            NOW,
            received,
            work,
            deadline,
        ));
    }
}

/// The reply to `buf`, a UDP datagram to one of our sockets, written over
/// it; `None` (the buffer dropped) for anything else.
#[inline(always)]
fn echo_in_place(
    buf: PoolBuf,
    iface: &Interface,
    sockets: &UdpSockets<PoolBuf>,
    egress: &mut Egress<PoolBuf>,
    ident: &mut u16,
) -> Option<PoolBuf> {
    let packet = UdpPacket::from_ipv4(Ipv4Packet::parse(buf, iface).ok()?).ok()?;
    let (l3, l4) = (packet.l3_offset(), packet.l4_offset());
    let ip = Ipv4View::new(packet.l3()).ok()?;
    let (src, dst) = (ip.src(), ip.dst());
    let udp = UdpView::new(packet.l4()).ok()?;
    let len = usize::from(udp.total_len());
    if len < 8 || len > packet.l4().len() || !udp.checksum_ok_v4(src, dst) {
        return None;
    }
    let (sport, dport) = (udp.src_port(), udp.dst_port());
    sockets.lookup(IpAddr::V4(dst), dport)?;
    let mac = egress.neighbors_v4_mut().lookup(src, NOW)?;
    *ident = ident.wrapping_add(1);
    let mut buf = packet.into_buf();
    let data = buf.data_mut();
    data[..6].copy_from_slice(&mac.0);
    data[6..12].copy_from_slice(&iface.mac.0);
    let header = &mut data[l3..l4];
    header[4..6].copy_from_slice(&ident.to_be_bytes());
    header[8] = 64;
    header[12..16].copy_from_slice(&dst.octets());
    header[16..20].copy_from_slice(&src.octets());
    header[10..12].fill(0);
    let sum = checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    let datagram = &mut data[l4..l4 + len];
    datagram[0..2].copy_from_slice(&dport.to_be_bytes());
    datagram[2..4].copy_from_slice(&sport.to_be_bytes());
    let mut view = UdpView::new(datagram).ok()?;
    view.fill_checksum_v4(dst, src);
    Some(buf)
}

/// The pipeline's echo of a burst, over a memory wire, checked byte for byte.
fn check_pipeline() {
    use tpa::port::memory::{MemoryWire, WireConfig};
    let (port, mut peer) = MemoryWire::pair(WireConfig {
        mac_a: MacAddr(US),
        mac_b: MacAddr(THEM),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let mut p = pipeline_echo(port);
    let mut tx: Burst<PoolBuf, BURST> = Burst::new();
    for _ in 0..BURST {
        let mut b = peer.alloc().expect("a buffer");
        b.extend_from_slice(&request()).expect("room");
        tx.push(b);
    }
    assert_eq!(peer.tx_burst(&mut tx), BURST);
    p.run_once_at(NOW);
    let mut rx: Burst<PoolBuf, BURST> = Burst::new();
    assert_eq!(peer.rx_burst(&mut rx), BURST, "every datagram echoed");
    assert!(
        rx.drain().all(|b| is_echo(b.data())),
        "echoes byte for byte"
    );
}

/// The hand loop's echo of a burst, checked byte for byte.
fn check_hand() {
    use tpa::port::memory::{MemoryWire, WireConfig};
    let (port, mut peer) = MemoryWire::pair(WireConfig {
        mac_a: MacAddr(US),
        mac_b: MacAddr(THEM),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let mut h = HandEcho::new(port);
    let mut tx: Burst<PoolBuf, BURST> = Burst::new();
    for _ in 0..BURST {
        let mut b = peer.alloc().expect("a buffer");
        b.extend_from_slice(&request()).expect("room");
        tx.push(b);
    }
    assert_eq!(peer.tx_burst(&mut tx), BURST);
    h.run_once();
    assert_eq!((h.echoed, h.dropped), (BURST as u64, 0));
    let mut rx: Burst<PoolBuf, BURST> = Burst::new();
    assert_eq!(peer.rx_burst(&mut rx), BURST, "every datagram echoed");
    assert!(
        rx.drain().all(|b| is_echo(b.data())),
        "echoes byte for byte"
    );
}

/// The minimal loop's echo, checked byte for byte.
fn check_minimal() {
    let mut h = MinimalEcho::new();
    let pool = tpa::buf::Pool::with_capacity(4).expect("a pool");
    let mut buf = pool.alloc().expect("a buffer");
    buf.extend_from_slice(&request()).expect("room");
    let reply = echo_in_place(buf, &h.iface, &h.sockets, &mut h.egress, &mut h.ident);
    assert!(
        reply.is_some_and(|r| is_echo(r.data())),
        "the hand echo is an echo"
    );
}

/// The echo variants, each checked to echo a whole burst before timing.
fn bench_udp_echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp_echo");
    g.throughput(Throughput::Elements(BURST as u64));

    check_pipeline();
    let mut p = pipeline_echo(ReplayPort::new(BURST, MacAddr(US), request()));
    p.run_once_at(NOW);
    assert_eq!(
        p.app.echoed, BURST as u64,
        "the pipeline echoes every datagram"
    );
    g.bench_function("pipeline", |b| b.iter(|| black_box(p.run_once_at(NOW))));

    check_hand();
    let mut h = HandEcho::new(ReplayPort::new(BURST, MacAddr(US), request()));
    h.run_once();
    assert_eq!(
        (h.echoed, h.dropped),
        (BURST as u64, 0),
        "the hand loop echoes every datagram"
    );
    g.bench_function("hand", |b| b.iter(|| h.run_once()));

    check_minimal();
    let mut m = MinimalEcho::new();
    m.run_once();
    assert_eq!(
        (m.echoed, m.dropped),
        (BURST as u64, 0),
        "the minimal loop echoes every datagram"
    );
    g.bench_function("minimal", |b| b.iter(|| m.run_once()));
    g.finish();
}

/// Runs `variant` for `iterations` bursts, without criterion (what a
/// callgrind run counts), checking every datagram was echoed.
fn run_alone(variant: &str, iterations: u64) -> Result<(), String> {
    let echoed = match variant {
        "pipeline" => {
            let mut p = pipeline_echo(ReplayPort::new(BURST, MacAddr(US), request()));
            for _ in 0..iterations {
                black_box(p.run_once_at(NOW));
            }
            p.app.echoed
        }
        "hand" => {
            let mut h = HandEcho::new(ReplayPort::new(BURST, MacAddr(US), request()));
            for _ in 0..iterations {
                h.run_once();
            }
            h.echoed
        }
        "minimal" => {
            let mut m = MinimalEcho::new();
            for _ in 0..iterations {
                m.run_once();
            }
            m.echoed
        }
        other => return Err(format!("no udp_echo variant {other}")),
    };
    if echoed != iterations * BURST as u64 {
        return Err(format!(
            "{variant}: {echoed} echoed of {}",
            iterations * BURST as u64
        ));
    }
    Ok(())
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_UDP_ECHO_RUN") {
        let result = match spec
            .split_once(':')
            .and_then(|(n, i)| Some((n, i.parse().ok()?)))
        {
            Some((variant, iterations)) => run_alone(variant, iterations),
            None => Err(format!(
                "TPA_UDP_ECHO_RUN={spec}: want <variant>:<iterations>"
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let mut c = criterion();
    bench_udp_echo(&mut c);
    c.final_summary();
}
