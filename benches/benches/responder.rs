//! The responder's hot path: requests turned into replies in place by the
//! bundled stages, in a `#[pipeline]`, per packet.
//!
//! 1. `responder/{icmpv4_echo,arp_request,icmpv6_echo}`: bursts of 32
//!    requests through the responder's Ethernet front (Ethernet classify,
//!    IPv4/IPv6 input checks, ARP / echo responders); every request becomes
//!    a transmitted reply. The port hands back the transmitted buffers
//!    rewritten with the request again (a 42–118 byte copy per packet, the
//!    same for every variant).
//! 2. `peer/icmpv4_echo_etherparse`: the same reply built the way a
//!    parse-then-serialize library does it: etherparse slices the request
//!    and its `PacketBuilder` writes the reply into a reused `Vec`.
//!
//! Run: `cargo bench -p tpa-benches --bench responder`;
//! `TPA_RESPONDER_RUN=<variant>:<iterations>` runs one responder variant
//! alone for that many bursts, without criterion (what
//! `benches/callgrind_responder.sh` counts instructions of).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tpa::app::Events;
use tpa::buf::PoolBuf;
use tpa::pipeline;
use tpa::stage::Reason;
use tpa::state::State;
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
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};

const BURST: usize = 32;
const US: [u8; 6] = [2, 0, 0, 0, 0, 1];
const THEM: [u8; 6] = [2, 0, 0, 0, 0, 2];

type Front = EthernetFront<
    PoolBuf,
    ArpResponder,
    (Ipv4Input, Icmpv4EchoResponder, Discard<Ipv4Packet<PoolBuf>>),
    (
        Ipv6Input,
        NdpResponder,
        Icmpv6EchoResponder,
        Discard<Ipv6Packet<PoolBuf>>,
    ),
>;

/// The state the ARP and NDP stages share.
#[derive(State)]
struct Shared {
    #[polled]
    egress: Egress<PoolBuf>,
    events: Events,
}

#[pipeline(burst = 32)]
struct Responder {
    #[port]
    port: ReplayPort,
    #[state]
    state: Shared,
    front: Front,
}

fn responder(request: Vec<u8>) -> Responder {
    let iface = Interface::new(MacAddr(US))
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap());
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            Icmpv4EchoResponder::new(iface.clone()),
            Discard::new(Reason::UNSUPPORTED),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            Icmpv6EchoResponder::new(iface.clone()),
            Discard::new(Reason::UNSUPPORTED),
        ),
    );
    let state = Shared {
        egress: Egress::new(iface),
        events: Events::default(),
    };
    Responder::new(ReplayPort::new(BURST, MacAddr(US), request), state, front)
}

fn ping() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(THEM, US)
        .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut out, &[0x5a; 56])
        .unwrap();
    out
}

fn ping6() -> Vec<u8> {
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(THEM, US)
        .ipv6(v6("2001:db8::2"), v6("2001:db8::1"), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut out, &[0x5a; 56])
        .unwrap();
    out
}

fn arp() -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&THEM);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&THEM);
    f[28..32].copy_from_slice(&[192, 0, 2, 2]);
    f[38..42].copy_from_slice(&[192, 0, 2, 1]);
    f
}

/// The responder's variants: a name and the request it answers.
fn variants() -> [(&'static str, Vec<u8>); 3] {
    [
        ("icmpv4_echo", ping()),
        ("arp_request", arp()),
        ("icmpv6_echo", ping6()),
    ]
}

/// Runs variant `name` for `iterations` bursts, checking every request was
/// answered.
fn run_alone(name: &str, iterations: u64) -> Result<(), String> {
    let (_, request) = variants()
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("no responder variant {name}"))?;
    let mut r = responder(request);
    for _ in 0..iterations {
        black_box(r.run_once_at(1));
    }
    let answered = r.stats().stage("front").map_or(0, |s| s.transmitted);
    if answered != iterations * BURST as u64 {
        return Err(format!(
            "{name}: {answered} answered of {}",
            iterations * BURST as u64
        ));
    }
    Ok(())
}

fn bench_responder(c: &mut Criterion) {
    let mut g = c.benchmark_group("responder");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, request) in variants() {
        let mut r = responder(request);
        r.run_once_at(1);
        let answered = r.stats().stage("front").map_or(0, |s| s.transmitted);
        assert_eq!(
            answered, BURST as u64,
            "{name}: every request must be answered"
        );
        g.bench_function(name, |b| b.iter(|| black_box(r.run_once_at(1))));
    }
    g.finish();
}

/// The reply to an echo request, built by etherparse from the parsed request.
fn etherparse_reply(request: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let p = SlicedPacket::from_ethernet(request).ok()?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        return None;
    };
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        return None;
    };
    let etherparse::Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let h = ip.header();
    out.clear();
    PacketBuilder::ethernet2(US, THEM)
        .ipv4(h.destination(), h.source(), 64)
        .icmpv4_echo_reply(echo.id, echo.seq)
        .write(out, icmp.payload())
        .ok()
}

fn bench_peer(c: &mut Criterion) {
    let mut g = c.benchmark_group("peer");
    g.throughput(Throughput::Elements(BURST as u64));
    let requests: Vec<Vec<u8>> = (0..BURST).map(|_| ping()).collect();
    let mut out = Vec::with_capacity(256);
    g.bench_function("icmpv4_echo_etherparse", |b| {
        b.iter(|| {
            for r in &requests {
                etherparse_reply(black_box(r), &mut out).expect("a reply");
                black_box(&out);
            }
        })
    });
    g.finish();
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_RESPONDER_RUN") {
        let result = match spec
            .split_once(':')
            .and_then(|(n, i)| Some((n, i.parse().ok()?)))
        {
            Some((name, iterations)) => run_alone(name, iterations),
            None => Err(format!(
                "TPA_RESPONDER_RUN={spec}: want <variant>:<iterations>"
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let mut c = criterion();
    bench_responder(&mut c);
    bench_peer(&mut c);
    c.final_summary();
}
