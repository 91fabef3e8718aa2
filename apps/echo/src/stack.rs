//! The tpa modes: one `#[pipeline]` whose state holds the egress path, the
//! UDP sockets and the events, and whose inline app echoes (the server) or
//! runs the client's session.
//!
//! ```text
//! port ─► Ethernet front ─┬─► ARP responder
//!                          ├─► IPv4 input ─┬─► TCP input ─► TCP sockets ─► app
//!                          │               ├─► UDP input ─► UDP sockets ─► app
//!                          │               └─► ICMPv4 echo ─► discard
//!                          └─► IPv6 input ─┬─► TCP input ─► TCP sockets ─► app
//!                                          ├─► UDP input ─► UDP sockets ─► app
//!                                          └─► NDP ─► ICMPv6 echo ─► discard
//! app: recv (zero-copy) ─► send_buf(_to) ─► egress (IP, neighbor, Ethernet) ─► port
//! ```
//!
//! The server's app hands every received datagram back to the egress path
//! as it came, its UDP header prepended again in place: no copy, no
//! allocation; and every received TCP buffer into its connection's send
//! queue ([`crate::tcp_echo`]). The client's writes each datagram straight
//! into a pool buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tpa::app::{App, Events, SocketError, SocketId, Transport};
use tpa::buf::PacketBuf;
use tpa::port::{Burst, Port, PortCaps};
use tpa::stage::{Counted, Cx, Reason};
use tpa::state::{Part, State};
use tpa::worker::{run_loop, IdlePolicy, Progress, StopFlag, WorkLoop};
use tpa_responder::tcp_stack::host_key;
use tpa_responder::IpCidr;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::icmp::{Icmpv4EchoResponder, Icmpv6EchoResponder};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::ops::snapshot::Counter;
use tpa_stages::ops::stack::StackParts;
use tpa_stages::ops::{collect, run_metered, Instance, Publisher};
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::host_key::os_seed;
use tpa_stages::tcp::{self, tcp_branch, TcpBranch, TcpIcmp, TcpInput, TcpSockets};
use tpa_stages::trace::TraceConfig;
use tpa_stages::udp::{self, udp_branch, UdpBranch, UdpInput, UdpSockets};

use crate::config::{ClientConfig, ConfigError, Endpoint, ServerConfig};
use crate::report::{ClientReport, ServerReport};
use crate::session::Session;
use crate::tcp_echo::TcpEcho;

/// The IPv4 branch: input checks, then TCP, UDP, or ICMP echo and the
/// ICMP errors about TCP segments (the rest dropped).
pub type Ipv4Branch<B> = (
    Ipv4Input,
    TcpBranch<
        Ipv4Packet<B>,
        UdpBranch<
            Ipv4Packet<B>,
            (
                Counted<Icmpv4EchoResponder>,
                Counted<TcpIcmp<Ipv4Packet<B>>>,
                Discard<Ipv4Packet<B>>,
            ),
            UdpInput,
        >,
        Counted<TcpInput>,
    >,
);

/// The IPv6 branch: input checks, then TCP, UDP, or neighbor discovery,
/// ICMPv6 echo and the ICMPv6 errors about TCP segments (the rest
/// dropped).
pub type Ipv6Branch<B> = (
    Ipv6Input,
    TcpBranch<
        Ipv6Packet<B>,
        UdpBranch<
            Ipv6Packet<B>,
            (
                Counted<NdpResponder>,
                Counted<Icmpv6EchoResponder>,
                Counted<TcpIcmp<Ipv6Packet<B>>>,
                Discard<Ipv6Packet<B>>,
            ),
            UdpInput,
        >,
        Counted<TcpInput>,
    >,
);

/// The front with the three branches.
pub type EchoFront<B> = EthernetFront<B, Counted<ArpResponder>, Ipv4Branch<B>, Ipv6Branch<B>>;

/// What the stages and the app share: the output path (interface, routes,
/// neighbor caches), the UDP and TCP sockets and the events for the app.
#[derive(State)]
pub struct EchoState<B: PacketBuf> {
    /// IP output, neighbor resolution, Ethernet.
    #[polled]
    pub egress: Egress<B>,
    /// The UDP socket table.
    pub sockets: UdpSockets<B>,
    /// The TCP socket table.
    #[polled]
    pub tcp: TcpSockets<B>,
    /// Events for the app.
    pub events: Events,
    /// The socket trace's settings, for `tpactl cfg trace on`.
    pub trace: TraceConfig,
}

impl<B: PacketBuf> EchoState<B> {
    /// A state for `iface`, without sockets; TCP's random choices (initial
    /// sequence numbers, ports, timestamps) drawn from `seed`.
    pub fn new(iface: Interface, seed: u64) -> Self {
        Self::with_tcp(iface, TcpConfig::default(), seed)
    }

    /// As [`new`](Self::new), with the TCP knobs `tcp`.
    pub fn with_tcp(iface: Interface, tcp: TcpConfig, seed: u64) -> Self {
        EchoState {
            egress: Egress::new(iface),
            sockets: UdpSockets::default(),
            tcp: TcpSockets::new(tcp, seed),
            events: Events::default(),
            trace: TraceConfig::default(),
        }
    }
}

/// The echo pipeline on port `P` with app `A` (the server's [`Echo`] or
/// the client's [`Client`]).
#[tpa::pipeline]
pub struct EchoPipeline<P: Port, A: App<P::Buf, EchoState<P::Buf>>> {
    #[port]
    port: P,
    #[state]
    state: EchoState<P::Buf>,
    #[app]
    app: A,
    front: EchoFront<P::Buf>,
}

/// Builds the pipeline for `iface` on `port`, with `app`.
pub fn build<P: Port, A: App<P::Buf, EchoState<P::Buf>>>(
    port: P,
    iface: &Interface,
    app: A,
) -> EchoPipeline<P, A> {
    build_with(port, iface, TcpConfig::default(), app)
}

/// As [`build`], with the TCP knobs `tcp`.
pub fn build_with<P: Port, A: App<P::Buf, EchoState<P::Buf>>>(
    port: P,
    iface: &Interface,
    tcp: TcpConfig,
    app: A,
) -> EchoPipeline<P, A> {
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        Counted::named("arp", ArpResponder::new()),
        (
            Ipv4Input::new(iface.clone()),
            tcp_branch(
                udp_branch(
                    (
                        Counted::named("icmpv4_echo", Icmpv4EchoResponder::new(iface.clone())),
                        Counted::named("tcp_icmpv4", TcpIcmp::new()),
                        Discard::new(Reason::UNSUPPORTED),
                    ),
                    UdpInput::default(),
                ),
                Counted::named("tcp_input_v4", TcpInput::default()),
            ),
        ),
        (
            Ipv6Input::new(iface.clone()),
            tcp_branch(
                udp_branch(
                    (
                        Counted::named("ndp", NdpResponder::new()),
                        Counted::named("icmpv6_echo", Icmpv6EchoResponder::new(iface.clone())),
                        Counted::named("tcp_icmpv6", TcpIcmp::new()),
                        Discard::new(Reason::UNSUPPORTED),
                    ),
                    UdpInput::default(),
                ),
                Counted::named("tcp_input_v6", TcpInput::default()),
            ),
        ),
    );
    let mut state = EchoState::with_tcp(iface.clone(), tcp, os_seed());
    state.tcp = state.tcp.with_host_key(&host_key());
    if let Some(host) = port.shared_host() {
        // Beside the kernel: tpa's ports reach the port's filter, its
        // neighbours come from the kernel's table.
        state.egress.set_shared_host(host.clone());
        state.sockets.set_shared_host(host.clone());
        state.tcp.set_shared_host(host);
    }
    EchoPipeline::new(port, state, app, front)
}

impl<P: Port, A: App<P::Buf, EchoState<P::Buf>>> EchoPipeline<P, A> {
    /// The app.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The shared state: egress counters and neighbors, the sockets.
    pub fn state(&self) -> &EchoState<P::Buf> {
        &self.state
    }

    /// Publishes the worker's snapshot through `publisher` (`stopped`:
    /// its last) and applies the runtime knobs' changes.
    fn publish(&mut self, publisher: &mut Publisher, app: Vec<Counter>, stopped: bool) {
        let now = self.stats().now_ns();
        collect::pipeline(publisher.snapshot(), self.stats(), |visit| {
            self.visit_counted(visit)
        });
        let state = &mut self.state;
        StackParts {
            port: &mut self.port,
            tcp: &mut state.tcp,
            egress: &state.egress,
            trace: &state.trace,
        }
        .publish(publisher, now, app, stopped);
    }
}

/// The interface of `endpoint`'s addresses, with MAC address `mac`.
pub fn interface(endpoint: &Endpoint, mac: tpa::wire::MacAddr) -> Interface {
    endpoint
        .ips
        .iter()
        .fold(Interface::new(mac), |iface, ip| match *ip {
            IpCidr::V4(c) => iface.with_ipv4(c),
            IpCidr::V6(c) => iface.with_ipv6(c),
        })
}

/// The server's app: every datagram on its sockets goes back to its
/// sender, in the buffer it came in; every byte of its TCP connections
/// too ([`TcpEcho`]).
#[derive(Debug)]
pub struct Echo<B> {
    report: ServerReport,
    tcp: TcpEcho<B>,
}

impl<B> Default for Echo<B> {
    fn default() -> Self {
        Echo {
            report: ServerReport::default(),
            tcp: TcpEcho::default(),
        }
    }
}

impl<B: PacketBuf> Echo<B> {
    /// What was echoed so far (UDP; TCP's in [`tcp_report`](Self::tcp_report)).
    pub fn report(&self) -> &ServerReport {
        &self.report
    }

    /// What the TCP echo did so far.
    pub fn tcp_report(&self) -> crate::report::TcpReport {
        self.tcp.report()
    }
}

impl<B: PacketBuf, S> App<B, S> for Echo<B>
where
    S: Part<UdpSockets<B>> + Part<TcpSockets<B>> + Part<Egress<B>> + Part<Events>,
{
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        self.tcp.accepted(listener, socket, cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        if socket.transport == Transport::Tcp {
            self.tcp.pump(socket, cx);
        }
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        self.tcp.pump(socket, cx);
    }

    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        if socket.transport == Transport::Tcp {
            self.tcp.closed(socket, cx);
        }
    }

    #[inline]
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        if socket.transport == Transport::Tcp {
            return self.tcp.pump(socket, cx);
        }
        loop {
            let datagram = match udp::recv(cx, socket) {
                Ok(d) => d,
                Err(SocketError::WouldBlock) => return,
                Err(e) => return self.report.failed(e.name()),
            };
            self.report.received += 1;
            let (from, len) = (datagram.from(), datagram.len());
            match udp::send_buf_to(cx, socket, from, datagram.into_payload()) {
                Ok(_) => {
                    self.report.echoed += 1;
                    self.report.bytes += len as u64;
                }
                Err(e) => self.report.failed(e.name()),
            }
        }
    }

    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, S>) {
        if socket.transport == Transport::Tcp {
            return self.tcp.failed(socket, error, cx);
        }
        // An echo that was held for its neighbor and then dropped.
        self.report.later_error(error.name());
    }
}

/// The client's app: sends the session's datagrams from its socket as the
/// window and the rate allow (in `poll`), and checks the echoes (in
/// `readable`).
#[derive(Debug)]
pub struct Client {
    session: Session,
    socket: Option<SocketId>,
    to: SocketAddr,
    started: bool,
    /// What ended the run early.
    error: Option<SocketError>,
}

impl Client {
    /// A client of `config` (its session starts at the first poll).
    pub fn new(config: &ClientConfig) -> Self {
        Client {
            session: Session::new(config.plan(), 0),
            socket: None,
            to: config.to,
            started: false,
            error: None,
        }
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether every datagram came back or timed out, or the run failed
    /// (an error on the socket, or a send refused for good).
    pub fn is_done(&self) -> bool {
        self.error.is_some() || (self.started && self.session.is_done())
    }

    /// The report of the run so far.
    pub fn report(&self) -> ClientReport {
        let mut report = self.session.report();
        report.error = self.error.map(|e| match e {
            SocketError::HostUnreachable => format!("the server is unreachable: {e}"),
            _ => format!("sending failed: {e}"),
        });
        report
    }
}

impl<B: PacketBuf, S> App<B, S> for Client
where
    S: Part<UdpSockets<B>> + Part<Egress<B>> + Part<Events>,
{
    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, S>) {
        while let Ok(datagram) = udp::recv(cx, socket) {
            if datagram.from() == self.to {
                self.session.on_reply(datagram.payload(), cx.now_ns());
            }
        }
    }

    fn error(&mut self, _socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, S>) {
        match error {
            // ICMP port unreachable: the datagram is lost (it times out).
            SocketError::ConnectionRefused => self.session.refused(),
            // The next hop never answered: nothing more will get through.
            _ => self.error = Some(error),
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        let Some(socket) = self.socket else {
            return 0;
        };
        let now = cx.now_ns();
        if !self.started {
            self.session = Session::new(*self.session.plan(), now);
            self.started = true;
        }
        self.session.expire(now);
        let size = self.session.plan().size;
        let mut sent = 0;
        while self.session.may_send(now) {
            let Some(mut buf) = cx.alloc() else {
                break;
            };
            let Ok(out) = buf.append(size) else {
                // run_client checked the size against the MTU: a buffer
                // that cannot hold it is a pool too small for the port.
                self.error = Some(SocketError::MessageTooLong);
                break;
            };
            let Some(seq) = self.session.next_send(now, out) else {
                break;
            };
            match udp::send_buf_to(cx, socket, self.to, buf) {
                Ok(_) => sent += 1,
                // No room for now (the neighbor's hold queue is full while
                // it resolves): the same datagram goes at the next poll.
                Err(SocketError::NoBuffers | SocketError::WouldBlock) => {
                    self.session.unsend(seq);
                    break;
                }
                // No route, too long, …: the next would fail alike.
                Err(e) => {
                    self.session.send_failed(seq);
                    self.error = Some(e);
                    break;
                }
            }
        }
        sent
    }

    fn next_deadline(&self) -> Option<u64> {
        self.session.next_wake_ns()
    }
}

/// A port answering with a MAC address of our choosing (AF_PACKET and DPDK
/// ports in promiscuous mode).
struct WithMac<P> {
    port: P,
    caps: PortCaps,
}

impl<P: Port> Port for WithMac<P> {
    type Buf = P::Buf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<P::Buf, N>) -> usize {
        self.port.rx_burst(rx)
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<P::Buf, N>) -> usize {
        self.port.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<P::Buf> {
        self.port.pool()
    }
    fn caps(&self) -> &PortCaps {
        &self.caps
    }
    fn wait_rx(&mut self, timeout: std::time::Duration) -> tpa::port::RxWait {
        self.port.wait_rx(timeout)
    }
    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        self.port.visit_counters(visit);
    }

    fn shared_host(&self) -> Option<std::sync::Arc<dyn tpa::port::SharedHost>> {
        self.port.shared_host()
    }
}

/// Runs `f` with `port`, or with `port` answering as `mac` when that is
/// not the port's own address.
fn with_mac<P: Port, R>(
    port: P,
    mac: Option<tpa::wire::MacAddr>,
    f: impl FnOnce(WithMac<P>) -> R,
) -> R {
    let mut caps = port.caps().clone();
    if let Some(mac) = mac {
        caps.mac = mac;
    }
    f(WithMac { port, caps })
}

/// How the loop idles.
fn idle(endpoint: &Endpoint) -> IdlePolicy {
    if endpoint.spin {
        IdlePolicy::Spin
    } else {
        IdlePolicy::default()
    }
}

/// Every stage's counters, then every socket's.
fn counters<P: Port, A: App<P::Buf, EchoState<P::Buf>>>(pipeline: &EchoPipeline<P, A>) -> String {
    let mut out = pipeline.stats().to_string();
    for (_, local, counters) in pipeline.state().sockets.iter() {
        out.push_str(&format!("socket {local}: {counters}\n"));
    }
    let tcp = pipeline.state().tcp.counters();
    if tcp != tpa_stages::tcp::TcpCounters::default() {
        out.push_str(&format!("tcp sockets: {tcp:?}\n"));
    }
    out
}

/// The server's loop: the pipeline, until stopped or done.
struct ServerLoop<'a, P: Port> {
    pipeline: EchoPipeline<P, Echo<P::Buf>>,
    stop: &'a StopFlag,
    count: Option<u64>,
    deadline_ns: Option<u64>,
    /// TCP is served (its figures go in the report).
    tcp: bool,
    /// The worker's stats, when the instance publishes them.
    stats: Option<Publisher>,
}

impl<P: Port> WorkLoop for ServerLoop<'_, P> {
    type Report = ServerReport;

    fn idle_change(&mut self) -> Option<tpa::worker::IdlePolicy> {
        self.stats.as_mut()?.idle_change()
    }

    fn run_once(&mut self) -> Progress {
        let (done, due) = run_metered(
            self.stats.as_mut(),
            &mut self.pipeline,
            |p| p.stats().now_ns(),
            |p, now| p.run_once_at(now),
        );
        if let (true, Some(stats)) = (due, self.stats.as_mut()) {
            let app = echo_counters(self.pipeline.app().report());
            self.pipeline.publish(stats, app, false);
        }
        let echoed = self.pipeline.app().report().echoed;
        if self.count.is_some_and(|c| echoed >= c)
            || self
                .deadline_ns
                .is_some_and(|d| tpa::time::Clock::global().now_ns() >= d)
        {
            self.stop.raise();
        }
        done.into()
    }

    fn finish(mut self) -> ServerReport {
        if let Some(mut stats) = self.stats.take() {
            let app = echo_counters(self.pipeline.app().report());
            self.pipeline.publish(&mut stats, app, true);
        }
        let mut report = self.pipeline.app().report().clone();
        report.tcp = Some(self.pipeline.app().tcp_report()).filter(|_| self.tcp);
        report.counters = Some(counters(&self.pipeline));
        report.egress = Some(*self.pipeline.state().egress.counters());
        report
    }
}

/// Connections a TCP listener holds established or half-open before the
/// application takes them (capped by `TcpConfig::backlog`).
const LISTEN_BACKLOG: usize = 1024;

/// The echo server's own counters, for its stats.
fn echo_counters(report: &ServerReport) -> Vec<Counter> {
    vec![Counter::count("echo_datagrams_echoed", report.echoed).help("UDP datagrams echoed back.")]
}

/// Serves `config` on an opened `port` until `stop` (or the count or
/// duration), publishing its stats through `instance` if given; `ready`
/// is told where it listens once its sockets are bound.
pub fn serve<P: Port>(
    port: P,
    config: &ServerConfig,
    stop: &StopFlag,
    instance: Option<&Instance>,
    ready: impl FnOnce(&str),
) -> Result<ServerReport, crate::Error> {
    with_mac(port, config.endpoint.mac, |port| {
        let name = port.caps().name.clone();
        let iface = interface(&config.endpoint, port.caps().mac);
        let mut pipeline = build_with(port, &iface, config.tcp.clone(), Echo::default());
        // `[trace]` / `TPA_TRACE`: the socket trace, in the instance's
        // directory; `tpactl cfg trace` switches it later.
        if let Some(instance) = instance {
            let trace = instance.trace_config(&config.trace);
            pipeline.with_cx(|cx| {
                if let Err(e) = cx.state_mut().tcp.enable_trace(&trace) {
                    tracing::warn!("socket trace off: {e}");
                }
                cx.state_mut().trace = trace;
            });
        }
        let mut bound = Vec::new();
        for wildcard in wildcards(&config.endpoint) {
            let local = SocketAddr::new(wildcard, config.udp_port);
            pipeline
                .with_cx(|cx| udp::bind(cx, local))
                .map_err(|e| crate::Error::Bind(local, e))?;
            bound.push(local.to_string());
        }
        let mut listening = Vec::new();
        for wildcard in wildcards(&config.endpoint).into_iter() {
            let Some(port) = config.tcp_port else { break };
            let local = SocketAddr::new(wildcard, port);
            pipeline
                .with_cx(|cx| tcp::listen(cx, local, LISTEN_BACKLOG))
                .map_err(|e| crate::Error::Listen(local, e))?;
            listening.push(local.to_string());
        }
        let tcp_line = if listening.is_empty() {
            String::new()
        } else {
            format!(" tcp {}", listening.join(" "))
        };
        ready(&format!(
            "listening on udp {}{tcp_line} via {name} (tpa)",
            bound.join(" ")
        ));
        let deadline_ns = config.duration.map(|d| {
            tpa::time::Clock::global()
                .now_ns()
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        });
        let mut work = ServerLoop {
            pipeline,
            stop,
            count: config.count,
            deadline_ns,
            tcp: config.tcp_port.is_some(),
            stats: instance.and_then(|i| {
                // `tpactl cfg idle`: the loop follows it.
                i.follow_idle(idle(&config.endpoint));
                i.publisher_or_warn(0)
            }),
        };
        run_loop(&mut work, stop, idle(&config.endpoint));
        Ok(work.finish())
    })
}

/// The unspecified address of each family `endpoint` has an address of.
fn wildcards(endpoint: &Endpoint) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if endpoint.ips.iter().any(|ip| matches!(ip, IpCidr::V4(_))) {
        out.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    if endpoint.ips.iter().any(|ip| matches!(ip, IpCidr::V6(_))) {
        out.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
    out
}

/// The client's loop: the pipeline, until the session is done or stopped.
struct ClientLoop<'a, P: Port> {
    pipeline: EchoPipeline<P, Client>,
    stop: &'a StopFlag,
}

impl<P: Port> WorkLoop for ClientLoop<'_, P> {
    type Report = ClientReport;

    fn run_once(&mut self) -> Progress {
        let done = self.pipeline.run_once();
        if self.pipeline.app().is_done() {
            // Done: the loop ends as if stopped.
            self.stop.raise();
        }
        done.into()
    }

    fn finish(self) -> ClientReport {
        let mut report = self.pipeline.app().report();
        report.counters = Some(counters(&self.pipeline));
        report.egress = Some(*self.pipeline.state().egress.counters());
        report
    }
}

/// The UDP payload that fits in one frame of `mtu` bytes of IP to `to`.
fn max_payload(mtu: u16, to: SocketAddr) -> usize {
    let headers = if to.is_ipv4() { 20 + 8 } else { 40 + 8 };
    usize::from(mtu).saturating_sub(headers)
}

/// Runs the client of `config` on an opened `port` until every datagram
/// came back or timed out (or `stop`).
pub fn run_client<P: Port>(
    port: P,
    config: &ClientConfig,
    stop: &StopFlag,
) -> Result<ClientReport, crate::Error> {
    let max = max_payload(port.caps().mtu, config.to);
    if config.size > max {
        return Err(ConfigError::Size {
            size: config.size,
            max,
        }
        .into());
    }
    with_mac(port, config.endpoint.mac, |port| {
        let iface = interface(&config.endpoint, port.caps().mac);
        let mut pipeline = build(port, &iface, Client::new(config));
        let any = if config.to.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let local = SocketAddr::new(any, config.local_port);
        let socket = pipeline
            .with_cx(|cx| udp::bind(cx, local))
            .map_err(|e| crate::Error::Bind(local, e))?;
        pipeline.app.socket = Some(socket);
        let mut work = ClientLoop { pipeline, stop };
        run_loop(&mut work, stop, idle(&config.endpoint));
        Ok(work.finish())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tpa::buf::{BufferPool, Pool, PoolConfig};
    use tpa::port::memory::{Impairment, MemoryPort, MemoryWire, WireConfig};
    use tpa::wire::MacAddr;

    const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn endpoint(ips: &[&str]) -> Endpoint {
        Endpoint {
            port: Some("tap:unused".parse().unwrap()),
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            ..Endpoint::default()
        }
    }

    /// A server (end A: 192.0.2.1, 2001:db8::1, UDP port 7) and a client
    /// of `config` (end B: 192.0.2.2, 2001:db8::2) on one wire, run in
    /// turn until the client is done; returns both reports.
    fn exchange(wire: WireConfig, config: &ClientConfig) -> (ServerReport, ClientReport) {
        let (a, b) = MemoryWire::pair(WireConfig {
            mac_a: SERVER_MAC,
            mac_b: CLIENT_MAC,
            ..wire
        })
        .unwrap();
        let server_iface = interface(&endpoint(&["192.0.2.1/24", "2001:db8::1/64"]), SERVER_MAC);
        let mut server = build(a, &server_iface, Echo::default());
        for any in ["0.0.0.0:7", "[::]:7"] {
            server
                .with_cx(|cx| udp::bind(cx, any.parse().unwrap()))
                .unwrap();
        }
        let client_iface = interface(&config.endpoint, CLIENT_MAC);
        let mut client: EchoPipeline<MemoryPort, Client> =
            build(b, &client_iface, Client::new(config));
        let any: SocketAddr = if config.to.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .unwrap();
        client.app.socket = Some(client.with_cx(|cx| udp::bind(cx, any)).unwrap());
        // A bound on a hang, not a timing: a run takes a few thousand.
        for _ in 0..10_000_000 {
            if client.app().is_done() {
                break;
            }
            server.run_once();
            client.run_once();
        }
        assert!(client.app().is_done(), "{}", client.app().report());
        let report = client.app().report();
        (server.app().report().clone(), report)
    }

    fn client(to: &str, count: u64, window: u32) -> ClientConfig {
        ClientConfig {
            window,
            ..ClientConfig::new(
                endpoint(&["192.0.2.2/24", "2001:db8::2/64"]),
                to.parse().unwrap(),
                count,
                100,
            )
        }
    }

    /// tpa's client against tpa's server, IPv4 and IPv6: every datagram
    /// echoed intact (the first ones after ARP or neighbor discovery), and
    /// the wire's pool whole once both are gone.
    #[test]
    fn tpa_client_and_tpa_server_agree_over_a_memory_wire() {
        let pool = Pool::new(PoolConfig {
            capacity: 1024,
            ..PoolConfig::default()
        })
        .unwrap();
        for to in ["192.0.2.1:7", "[2001:db8::1]:7"] {
            let wire = WireConfig {
                pool: Some(pool.clone()),
                ..WireConfig::default()
            };
            let (served, r) = exchange(wire, &client(to, 500, 32));
            assert!(r.is_clean(), "{to}: {r}");
            assert_eq!((r.sent, r.received), (500, 500), "{to}: {r}");
            assert_eq!(
                (served.received, served.echoed),
                (500, 500),
                "{to}: {served}"
            );
            assert_eq!(served.bytes, 500 * 100);
            pool.assert_whole();
        }
    }

    /// A server off the interface's prefixes, without a gateway: the first
    /// send is refused (ENETUNREACH) and the run ends there, said why.
    #[test]
    fn no_route_ends_the_run_with_its_errno() {
        let pool = Pool::new(PoolConfig {
            capacity: 256,
            ..PoolConfig::default()
        })
        .unwrap();
        let wire = WireConfig {
            pool: Some(pool.clone()),
            ..WireConfig::default()
        };
        let (_, r) = exchange(wire, &client("203.0.113.9:7", 100, 4));
        assert_eq!((r.sent, r.send_errors, r.received), (1, 1, 0), "{r}");
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains("ENETUNREACH"), "{error:?}");
        pool.assert_whole();
    }

    /// A wire that drops, duplicates and reorders: the client's counts
    /// add up (every datagram is received or lost, never both), repeated
    /// echoes are told apart, nothing is taken for corrupt, and the pool is
    /// whole at the end.
    #[test]
    fn an_impaired_wire_loses_and_repeats_and_the_counts_add_up() {
        let seed: u64 = std::env::var("TPA_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0xec40_0009);
        let impaired = Impairment {
            drop: 0.05,
            duplicate: 0.05,
            reorder: 0.1,
            ..Impairment::default()
        };
        let pool = Pool::new(PoolConfig {
            capacity: 1024,
            ..PoolConfig::default()
        })
        .unwrap();
        let wire = WireConfig {
            pool: Some(pool.clone()),
            a_to_b: impaired.clone(),
            b_to_a: impaired,
            seed,
            ..WireConfig::default()
        };
        let config = ClientConfig {
            timeout: Duration::from_millis(50),
            ..client("192.0.2.1:7", 1_000, 8)
        };
        let (served, r) = exchange(wire, &config);
        assert_eq!(r.sent, 1_000, "seed {seed}: {r}");
        assert_eq!(r.received + r.lost, r.sent, "seed {seed}: {r}");
        assert!(r.lost > 0 && r.duplicate > 0, "seed {seed}: {r}");
        assert!(r.received > 700, "seed {seed}: {r}");
        assert_eq!(r.corrupt, 0, "seed {seed}: {r}");
        assert!(served.echoed >= r.received, "seed {seed}: {served} / {r}");
        pool.assert_whole();
    }

    /// A port that can block: it records each wait's timeout and times out.
    struct Blocking {
        port: MemoryPort,
        waits: Vec<Duration>,
    }

    impl Port for Blocking {
        type Buf = <MemoryPort as Port>::Buf;
        fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<Self::Buf, N>) -> usize {
            self.port.rx_burst(rx)
        }
        fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<Self::Buf, N>) -> usize {
            self.port.tx_burst(tx)
        }
        fn pool(&self) -> &tpa::buf::PoolOf<Self::Buf> {
            self.port.pool()
        }
        fn caps(&self) -> &PortCaps {
            self.port.caps()
        }
        fn wait_rx(&mut self, timeout: Duration) -> tpa::port::RxWait {
            self.waits.push(timeout);
            tpa::port::RxWait::TimedOut
        }
    }

    /// A port answering as another MAC still blocks on the port it wraps,
    /// so the `wait` idle policy does not fall back to sleeping.
    #[test]
    fn with_mac_waits_on_the_port_it_wraps() {
        let (a, _b) = MemoryWire::pair(WireConfig::default()).unwrap();
        let port = Blocking {
            port: a,
            waits: Vec::new(),
        };
        let timeout = Duration::from_millis(3);
        with_mac(port, Some(CLIENT_MAC), |mut port| {
            assert_eq!(port.caps().mac, CLIENT_MAC);
            assert_eq!(port.wait_rx(timeout), tpa::port::RxWait::TimedOut);
            assert_eq!(port.port.waits, [timeout]);
        });
    }
}
