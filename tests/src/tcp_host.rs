//! The tpa host with TCP that the TCP tests run (tests/tests/tcp.rs,
//! tcp_kernel.rs, tcp_hostile.rs, tcp_interop.rs and the simulation in
//! [`tcp_sim`](crate::tcp_sim)): the pipeline
//! `ethernet → (arp | ipv4 → (tcp | icmp errors → rest) | ipv6 → ndp →
//! (tcp | icmp errors → rest))`
//! over any port, with the test's application, its shared tables, and the
//! loops that drive one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tpa::app::{App, Events};
use tpa::buf::{Pool, PoolBuf, PoolConfig};
use tpa::pipeline;
use tpa::pipeline::IterationStats;
use tpa::port::af_packet::{AfPacket, AfPacketConfig};
use tpa::port::memory::{MemoryWire, WireConfig};
use tpa::port::tap::{Tap, TapConfig, TapMode};
use tpa::port::Port;
use tpa::stage::{Counted, Reason};
use tpa::state::State;
use tpa::time::VirtualClock;
use tpa::wire::MacAddr;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::{Egress, EgressConfig};
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::pcap::PcapCapture;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{tcp_branch, TcpBranch, TcpIcmp, TcpIcmpCounters, TcpInput, TcpSockets};

use crate::netns::Netns;

/// The hosts' buffer.
pub type B = PoolBuf;

/// A host's shared tables.
#[derive(State)]
pub struct HostState {
    /// Routes and neighbors.
    #[polled]
    pub egress: Egress<B>,
    /// The TCP sockets.
    #[polled]
    pub sockets: TcpSockets<B>,
    /// Events for the app.
    pub events: Events,
}

impl HostState {
    /// The tables of a host on `iface`: TCP configured by `tcp`, its random
    /// choices (ISN key, ports, timestamp offsets, hash key) from `seed`;
    /// the egress path's defaults.
    pub fn new(iface: Interface, tcp: TcpConfig, seed: u64) -> Self {
        HostState {
            egress: Egress::new(iface),
            sockets: TcpSockets::new(tcp, seed),
            events: Events::default(),
        }
    }

    /// The same with the egress path configured by `config`.
    pub fn with_egress_config(mut self, config: EgressConfig) -> Self {
        self.egress = self.egress.with_config(config);
        self
    }
}

/// What is not TCP in the IPv4 branch: the ICMP errors about TCP
/// segments to their connections, the rest a counted drop.
pub type V4Rest = (TcpIcmp<Ipv4Packet<B>>, Discard<Ipv4Packet<B>>);
/// The same for IPv6.
pub type V6Rest = (TcpIcmp<Ipv6Packet<B>>, Discard<Ipv6Packet<B>>);
/// The IPv4 branch: input, then TCP, or ICMP errors to TCP and a counted
/// drop.
pub type V4Branch = (
    Ipv4Input,
    TcpBranch<Ipv4Packet<B>, V4Rest, Counted<TcpInput>>,
);
/// The IPv6 branch: input, NDP, then TCP, or ICMPv6 errors to TCP and a
/// counted drop.
pub type V6Branch = (
    Ipv6Input,
    NdpResponder,
    TcpBranch<Ipv6Packet<B>, V6Rest, Counted<TcpInput>>,
);
/// The whole chain after the port.
pub type TcpFront = EthernetFront<B, ArpResponder, V4Branch, V6Branch>;

/// The chain for a host on `iface`.
pub fn tcp_front(iface: &Interface) -> TcpFront {
    ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            tcp_branch(
                (TcpIcmp::new(), Discard::new(Reason::UNSUPPORTED)),
                Counted::new(TcpInput::default()),
            ),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            tcp_branch(
                (TcpIcmp::new(), Discard::new(Reason::UNSUPPORTED)),
                Counted::new(TcpInput::default()),
            ),
        ),
    )
}

/// ethernet → (arp | ipv4 → (tcp | rest) | ipv6 → ndp → (tcp | rest)),
/// over port `P`, running application `A`.
#[pipeline]
pub struct TcpHost<P: Port<Buf = B>, A: App<B, HostState>> {
    /// The port.
    #[port]
    pub port: P,
    /// Every frame sent and received, when capturing.
    #[observer]
    pub capture: Option<PcapCapture>,
    /// The shared tables.
    #[state]
    pub state: HostState,
    /// The test's application.
    #[app]
    pub app: A,
    /// The stages.
    pub front: TcpFront,
}

impl<P: Port<Buf = B>, A: App<B, HostState>> TcpHost<P, A> {
    /// A host on `port` with the tables `state` (whose interface the
    /// stages serve), running `app`, not capturing.
    pub fn build(port: P, state: HostState, app: A) -> Self {
        let front = tcp_front(state.egress.interface());
        TcpHost::new(port, None, state, app, front)
    }

    /// The same, capturing every frame into `capture` when given.
    pub fn capturing(mut self, capture: Option<PcapCapture>) -> Self {
        self.capture = capture;
        self
    }

    /// The IPv4 TCP input stage, with its counts.
    pub fn tcp4(&self) -> &Counted<TcpInput> {
        &self.front.right.left.1.right
    }

    /// The IPv6 TCP input stage, with its counts.
    pub fn tcp6(&self) -> &Counted<TcpInput> {
        &self.front.right.right.2.right
    }

    /// What the IPv4 ICMP errors did to the connections.
    pub fn icmp4(&self) -> &TcpIcmpCounters {
        self.front.right.left.1.left.0.counters()
    }

    /// What the ICMPv6 errors did to the connections.
    pub fn icmp6(&self) -> &TcpIcmpCounters {
        self.front.right.right.2.left.0.counters()
    }

    /// The TCP input stage of IPv6 (`v6`) or IPv4.
    pub fn tcp(&self, v6: bool) -> &Counted<TcpInput> {
        if v6 {
            self.tcp6()
        } else {
            self.tcp4()
        }
    }

    /// Runs the loop until `stop` is set or `patience` has passed (a
    /// server in its own thread while the test drives the peer).
    pub fn serve(&mut self, stop: &AtomicBool, patience: Duration) {
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) && start.elapsed() < patience {
            self.run_once();
        }
    }
}

/// The interface `192.0.2.<last>/24`, `2001:db8::<last>/64` at `mac`.
pub fn iface(mac: MacAddr, last: u8) -> Interface {
    Interface::new(mac)
        .with_ipv4(format!("192.0.2.{last}/24").parse().unwrap())
        .with_ipv6(format!("2001:db8::{last}/64").parse().unwrap())
}

/// The MACs of the two ends of [`memory_wire`].
pub const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
/// See [`MAC_A`].
pub const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

/// A pool of 16384 buffers named `name`, and a `MemoryWire` over it
/// between [`MAC_A`] and [`MAC_B`] on `clock`'s time with rings of 4096;
/// the rest (seed, queues, impairment) as `wire` says.
pub fn memory_wire(name: String, clock: &VirtualClock, wire: WireConfig) -> (Pool, MemoryWire) {
    let pool = Pool::new(PoolConfig {
        name,
        capacity: 16384,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let wire = MemoryWire::new(WireConfig {
        mac_a: MAC_A,
        mac_b: MAC_B,
        ring_size: 4096,
        pool: Some(pool.clone()),
        clock: clock.clone().into(),
        ..wire
    })
    .unwrap();
    (pool, wire)
}

/// The TAP `tpa0` that `ns` made, opened at `mac` with buffers from
/// `pool`, once the kernel's IPv6 took its carrier up.
pub fn open_tap(ns: &Netns, pool: &Pool, mac: MacAddr) -> Tap {
    open_tap_with(ns, pool, mac, false)
}

/// [`open_tap`], with the kernel doing checksums and TCP segmentation
/// (`virtio_net_hdr`) when `offloads`.
pub fn open_tap_with(ns: &Netns, pool: &Pool, mac: MacAddr, offloads: bool) -> Tap {
    let config = TapConfig {
        mode: TapMode::AttachExisting,
        mac: Some(mac),
        offloads,
        ..TapConfig::new("tpa0")
    };
    let tap = ns
        .enter(|| Tap::open(&config, pool.clone()))
        .unwrap_or_else(|e| panic!("open tpa0 in {}: {e} ({e:?})", ns.name()));
    ns.wait_ipv6_ready("tpa0");
    tap
}

/// An AF_PACKET port on the veth end `vt` that [`Netns::with_veth`] made,
/// as `config` says (its interface set to `vt`), with buffers from `pool`;
/// and `vt`'s MAC, once the kernel's end has its IPv6 link-local address.
pub fn open_af_packet(ns: &Netns, pool: &Pool, config: AfPacketConfig) -> (AfPacket, MacAddr) {
    let config = AfPacketConfig {
        interface: "vt".into(),
        ..config
    };
    let port = ns
        .enter(|| AfPacket::open(&config, pool.clone()))
        .unwrap_or_else(|e| panic!("open AF_PACKET on vt in {}: {e} ({e:?})", ns.name()));
    ns.wait_ipv6_ready("vk");
    let mac = ns.mac_of("vt").parse().expect("vt's MAC");
    (port, mac)
}

/// How far to move a virtual clock after a loop turn of hosts on a
/// `MemoryWire`, at `now`: 10 µs while any turn had work; else to the
/// earliest deadline (the turns' and `deadlines`), at least 1 µs, and at
/// most 1 ms while packets are `in_flight` (their delivery is the wire's,
/// not a deadline); 1 ms with packets in flight and no deadline; `idle_ns`
/// with neither.
pub fn virtual_step(
    now: u64,
    turns: &[IterationStats],
    deadlines: &[Option<u64>],
    in_flight: u64,
    idle_ns: u64,
) -> u64 {
    if turns.iter().any(IterationStats::busy) {
        return 10_000;
    }
    let next = turns
        .iter()
        .map(|t| t.next_deadline_ns)
        .chain(deadlines.iter().copied())
        .flatten()
        .min();
    match next {
        Some(at) if in_flight == 0 => at.saturating_sub(now).max(1_000),
        Some(at) => at.saturating_sub(now).clamp(1_000, 1_000_000),
        None if in_flight > 0 => 1_000_000,
        None => idle_ns,
    }
}
