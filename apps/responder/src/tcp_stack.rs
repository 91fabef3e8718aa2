//! The TCP stack the TCP apps on tpa's own stack (tpa-redis-proxy, tperf)
//! build a worker of: the front whose IPv4 and IPv6 branches end in TCP
//! input, ICMP echo (and neighbor discovery) and the ICMP errors about
//! TCP segments, the host's TCP key, and a worker's output path and
//! socket table on its port. All of it statically typed: the apps'
//! pipelines name these types.

use std::sync::Arc;

use tpa::buf::PacketBuf;
use tpa::port::Port;
use tpa::stage::{Counted, Reason};
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
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::host_key::{os_seed, HostKey};
use tpa_stages::tcp::{tcp_branch, TcpBranch, TcpIcmp, TcpInput, TcpSockets};
use tpa_stages::trace::TraceConfig;

use crate::workers::beside_kernel;

/// The IPv4 branch: input checks, then TCP, or ICMP echo and the ICMP
/// errors about TCP segments (the rest dropped).
pub type TcpIpv4Branch<B> = (
    Ipv4Input,
    TcpBranch<
        Ipv4Packet<B>,
        (
            Counted<Icmpv4EchoResponder>,
            Counted<TcpIcmp<Ipv4Packet<B>>>,
            Discard<Ipv4Packet<B>>,
        ),
        Counted<TcpInput>,
    >,
);

/// The IPv6 branch: input checks, then TCP, or neighbor discovery, ICMPv6
/// echo and the ICMPv6 errors about TCP segments (the rest dropped).
pub type TcpIpv6Branch<B> = (
    Ipv6Input,
    TcpBranch<
        Ipv6Packet<B>,
        (
            Counted<NdpResponder>,
            Counted<Icmpv6EchoResponder>,
            Counted<TcpIcmp<Ipv6Packet<B>>>,
            Discard<Ipv6Packet<B>>,
        ),
        Counted<TcpInput>,
    >,
);

/// The front with its branches (ARP answered, other frames dropped).
pub type TcpFront<B> = EthernetFront<B, Counted<ArpResponder>, TcpIpv4Branch<B>, TcpIpv6Branch<B>>;

/// The front for `iface`, `input` the TCP input stage of both branches
/// (named `tcp_input_v4` and `tcp_input_v6` in the counters).
pub fn tcp_front<B: PacketBuf>(iface: &Interface, input: TcpInput) -> TcpFront<B> {
    ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        Counted::named("arp", ArpResponder::new()),
        (
            Ipv4Input::new(iface.clone()),
            tcp_branch(
                (
                    Counted::named("icmpv4_echo", Icmpv4EchoResponder::new(iface.clone())),
                    Counted::named("tcp_icmpv4", TcpIcmp::new()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                Counted::named("tcp_input_v4", input.clone()),
            ),
        ),
        (
            Ipv6Input::new(iface.clone()),
            tcp_branch(
                (
                    Counted::named("ndp", NdpResponder::new()),
                    Counted::named("icmpv6_echo", Icmpv6EchoResponder::new(iface.clone())),
                    Counted::named("tcp_icmpv6", TcpIcmp::new()),
                    Discard::new(Reason::UNSUPPORTED),
                ),
                Counted::named("tcp_input_v6", input),
            ),
        ),
    )
}

/// The host's TCP key (ISNs and timestamps that follow on from earlier
/// processes' on a 4-tuple, so a peer's TIME_WAIT lets a new connection
/// in at once), or this process's own with a warning when it cannot be
/// had.
pub fn host_key() -> HostKey {
    HostKey::for_this_host().unwrap_or_else(|e| {
        tracing::warn!("TCP host key: {e}; keying ISNs and timestamps for this process only");
        HostKey::per_process()
    })
}

/// A worker's output path on `iface` and TCP socket table with `tcp`'s
/// knobs, on `port`: keyed by the host's key ([`host_key`]), active opens
/// on ports whose replies land on the worker's queue (the port's
/// steering), the socket trace on as `trace` says (a warning if it
/// cannot be); beside the kernel (AF_XDP, [`beside_kernel`]) active opens
/// from the ports the port took from the kernel, listening ports reaching
/// the port's filter and neighbours from the kernel's table.
pub fn tcp_egress<P: Port>(
    port: &P,
    iface: Interface,
    tcp: TcpConfig,
    trace: &TraceConfig,
) -> (Egress<P::Buf>, TcpSockets<P::Buf>) {
    let mut tcp = tcp;
    let shared_host = beside_kernel(port, &mut tcp);
    let mut sockets = TcpSockets::new(tcp, os_seed())
        .with_host_key(&host_key())
        .with_steering(port.steering());
    if let Err(e) = sockets.enable_trace(trace) {
        tracing::warn!("socket trace off: {e}");
    }
    let mut egress = Egress::new(iface);
    if let Some(host) = shared_host {
        egress.set_shared_host(Arc::clone(&host));
        sockets.set_shared_host(host);
    }
    (egress, sockets)
}
