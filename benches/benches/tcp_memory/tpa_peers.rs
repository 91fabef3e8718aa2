//! tpa's side: two `#[pipeline]`s over a `MemoryWire` on a virtual clock,
//! each with the Ethernet front, IPv4 (and IPv6) input, the TCP split and
//! `TcpInput`, and a state of egress, `TcpSockets` and events; the
//! application is a `Peer` that plays client or server.
//!
//! Settings: `TcpConfig::default()` on both hosts, except TIME_WAIT for
//! crr, cut to 100 ms of virtual time, and `measure_latency` when
//! `TPA_TCP_MEASURE_LATENCY` is set (the latency stages' cost). smoltcp
//! reuses a socket in TIME_WAIT at the next `connect`; tpa keeps each closed connection's entry for the
//! whole TIME_WAIT, and over the virtual seconds a long crr run covers the
//! default 60 s would hold every ephemeral port. With 100 ms each
//! connection's entry still goes through its TIME_WAIT timer and expiry,
//! which smoltcp does not do.
//!
//! Copies: the application's bytes are copied into the send queue's
//! buffers (`tcp::send`, as smoltcp's `send_slice`); each segment is sent
//! as a chain, a fresh header buffer and a shared reference to the
//! chunk, which the wire moves as it is (`WireConfig::max_segments`: it
//! models a NIC with scatter-gather, as mlx5 or DPDK's multi-segment
//! transmit); the receiver checks the checksum over the chain and hands it
//! to the application (`tcp::recv_more`, zero-copy: its bytes are the sender's
//! chunk, shared read-only by reference counts until both sides let go),
//! which checks them in place. One copy of every payload byte (and two
//! reads, the sender's and the receiver's checksums). A wire that does not
//! gather (the default) copies each chain into one frame at transmit, a
//! second copy. smoltcp makes three: its `phy::Device` cannot gather, it
//! hands smoltcp one contiguous buffer to serialize each frame into.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tpa::app::{App, Events, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, PoolBuf};
use tpa::pipeline;
use tpa::port::memory::{Direction, End, MemoryPort, MemoryWire, WireConfig};
use tpa::port::Port;
use tpa::stage::{Cx, Reason};
use tpa::state::State;
use tpa::time::VirtualClock;
use tpa::wire::MacAddr;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::ops::{collect, Instance, OpsConfig, Publisher};
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{self, tcp_branch, TcpBranch, TcpInput, TcpSockets};
use tpa_stages::trace::TraceConfig;

use super::stream::{request, Message, Pattern, Received, Transactions, MESSAGE};
use super::{Peers, Workload, MAX_ROUNDS, PORT, ROUND_US};

type B = PoolBuf;

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// TIME_WAIT of the crr hosts (see the module's doc).
const CRR_TIME_WAIT: Duration = Duration::from_millis(100);

/// Segments per frame the wire gathers: a header and the payload's chunk
/// (two), with room to spare, as a NIC's scatter-gather list.
const GATHER: usize = 4;

/// A host's shared tables.
#[derive(State)]
struct HostState {
    #[polled]
    egress: Egress<B>,
    #[polled]
    sockets: TcpSockets<B>,
    events: Events,
}

/// The application of either end: a client that connects, sends the bulk
/// stream or requests and gathers responses; a server that accepts, checks
/// the stream or echoes requests.
struct Peer {
    server: bool,
    workload: Workload,
    pattern: Pattern,
    socket: Option<SocketId>,
    /// The client connects to it at its next poll.
    connect_to: Option<SocketAddr>,
    established: bool,
    /// Bulk: bytes the client queued, and up to where it may.
    sent: u64,
    target: u64,
    /// Bulk: what the server checked.
    received: Received,
    /// The client's request to send once established.
    request: Option<[u8; MESSAGE]>,
    /// The response (client) or request (server) being gathered.
    msg: Message,
    /// crr: connections the server closed.
    closed: u64,
    errors: Vec<SocketError>,
}

impl Peer {
    fn new(server: bool, workload: Workload) -> Peer {
        Peer {
            server,
            workload,
            pattern: Pattern::new(),
            socket: None,
            connect_to: None,
            established: false,
            sent: 0,
            target: 0,
            received: Received::default(),
            request: None,
            msg: Message::default(),
            closed: 0,
            errors: Vec::new(),
        }
    }

    /// Sends what is due: the request, or the stream up to the target.
    #[inline]
    fn pump(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(s) = self.socket.filter(|_| self.established) else {
            return 0;
        };
        let mut work = 0;
        if let Some(req) = self.request.take() {
            match tcp::send(cx, s, &req) {
                Ok(n) if n == req.len() => {}
                Ok(_) => self.errors.push(SocketError::WouldBlock),
                Err(e) => self.errors.push(e),
            }
            work += 1;
        }
        while self.sent < self.target {
            let chunk = self
                .pattern
                .at(self.sent, (self.target - self.sent) as usize);
            match tcp::send(cx, s, chunk) {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(n) => self.sent += n as u64,
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
            work += 1;
        }
        work
    }

    /// Takes everything received, zero-copy: checks the stream, echoes
    /// requests, or gathers the response (and closes after it, in crr).
    /// Stops once `recv_more` says nothing else waits (readiness is
    /// edge-triggered: the next `Readable` comes with new data).
    #[inline]
    fn read(&mut self, cx: &mut Cx<'_, B, HostState>) {
        let Some(s) = self.socket else { return };
        'read: {
            let mut socket = match tcp::socket_ref(cx, s) {
                Ok(socket) => socket,
                Err(e) => {
                    self.errors.push(e);
                    break 'read;
                }
            };
            loop {
                match socket.recv_more() {
                    Ok(Some((buf, more))) => {
                        for mut data in buf.segments() {
                            if self.server && self.workload == Workload::Bulk {
                                self.received.check(&self.pattern, data);
                                continue;
                            }
                            while !data.is_empty() {
                                let n = self.msg.fill(data);
                                data = &data[n..];
                                if self.server && self.msg.is_full() {
                                    match socket.send(self.msg.bytes()) {
                                        Ok(MESSAGE) => {}
                                        Ok(_) => self.errors.push(SocketError::WouldBlock),
                                        Err(e) => self.errors.push(e),
                                    }
                                    self.msg.clear();
                                }
                            }
                        }
                        if !more {
                            break;
                        }
                    }
                    Ok(None) | Err(SocketError::WouldBlock) => break,
                    Err(e) => {
                        self.errors.push(e);
                        break;
                    }
                }
            }
        }
        if !self.server && self.workload == Workload::Crr && self.msg.is_full() {
            if let Err(e) = tcp::close(cx, s) {
                self.errors.push(e);
            }
            self.socket = None;
        }
    }
}

impl App<B, HostState> for Peer {
    fn accepted(&mut self, listener: SocketId, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        match tcp::accept(cx, listener) {
            Ok((s, _)) => {
                self.socket = Some(s);
                self.established = true;
                self.read(cx);
            }
            Err(e) => self.errors.push(e),
        }
    }

    fn readable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.read(cx);
    }

    fn writable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.established = true;
        self.pump(cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        if self.server && self.socket == Some(socket) {
            self.read(cx);
            if let Err(e) = tcp::close(cx, socket) {
                self.errors.push(e);
            }
            self.socket = None;
            self.closed += 1;
        }
    }

    fn error(&mut self, _socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.errors.push(error);
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        if let Some(remote) = self.connect_to.take() {
            match tcp::connect(cx, remote) {
                Ok(s) => {
                    self.socket = Some(s);
                    self.established = false;
                }
                Err(e) => self.errors.push(e),
            }
            return 1;
        }
        self.pump(cx)
    }
}

type V4Branch = (
    Ipv4Input,
    TcpBranch<Ipv4Packet<B>, Discard<Ipv4Packet<B>>, TcpInput>,
);
type V6Branch = (
    Ipv6Input,
    NdpResponder,
    TcpBranch<Ipv6Packet<B>, Discard<Ipv6Packet<B>>, TcpInput>,
);

/// ethernet → (arp | ipv4 → (tcp | rest) | ipv6 → ndp → (tcp | rest)).
#[pipeline]
struct Host<P: Port<Buf = B>> {
    #[port]
    port: P,
    #[state]
    state: HostState,
    #[app]
    app: Peer,
    front: EthernetFront<B, ArpResponder, V4Branch, V6Branch>,
}

fn iface(mac: MacAddr, last: u8) -> Interface {
    Interface::new(mac)
        .with_ipv4(format!("192.0.2.{last}/24").parse().expect("an address"))
        .with_ipv6(format!("2001:db8::{last}/64").parse().expect("an address"))
}

fn host(
    port: MemoryPort,
    iface: Interface,
    cfg: TcpConfig,
    trace: &TraceConfig,
    seed: u64,
    app: Peer,
) -> Host<MemoryPort> {
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            tcp_branch(Discard::new(Reason::UNSUPPORTED), TcpInput::default()),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            tcp_branch(Discard::new(Reason::UNSUPPORTED), TcpInput::default()),
        ),
    );
    let mut sockets = TcpSockets::new(cfg, seed);
    sockets.enable_trace(trace).expect("the trace file");
    let state = HostState {
        egress: Egress::new(iface),
        sockets,
        events: Events::default(),
    };
    Host::new(port, state, app, front)
}

/// What a pair of hosts does beside TCP: trace every connection
/// (`TPA_TRACE=1`, the trace's cost measured by
/// benches/callgrind_trace.sh), and publish their stats as tperf's workers
/// do (`TPA_STATS=1`: the loop meter fed each iteration's start, a
/// snapshot every `TPA_STATS_INTERVAL_MS` of the hosts' time), into
/// `$TPA_RUN_DIR` (measured by benches/callgrind_stats.sh).
#[derive(Debug, Clone)]
pub struct Ops {
    /// The trace's knobs (`enabled` or not).
    pub trace: TraceConfig,
    /// The stats' instance, when on.
    pub stats: Option<OpsConfig>,
}

impl Ops {
    /// As the `TPA_TRACE*` and `TPA_STATS*` variables say.
    pub fn from_env() -> Result<Ops, String> {
        let trace = TraceConfig::from_env().map_err(|e| e.to_string())?;
        let stats = match std::env::var("TPA_STATS").as_deref() {
            Ok("1") => Some(OpsConfig::from_env().map_err(|e| e.to_string())?),
            _ => None,
        };
        Ok(Ops { trace, stats })
    }
}

/// Both hosts' stats: one instance, a publisher for each.
struct Stats {
    _instance: Instance,
    client: Publisher,
    server: Publisher,
}

impl Stats {
    fn start(cfg: &OpsConfig) -> Result<Stats, String> {
        let instance = Instance::start(cfg, "tcp-memory", false)?;
        let client = instance.publisher(0)?;
        let server = instance.publisher(1)?;
        Ok(Stats {
            _instance: instance,
            client,
            server,
        })
    }
}

/// One iteration of `host` at `now`, its stats published through `stats`
/// when on. tperf's loop gives the meter the time the iteration runs at,
/// which its pipeline reads anyway: no clock read of the meter's own.
/// Here that time is the virtual clock's, so snapshots fall due every
/// `TPA_STATS_INTERVAL_MS` of virtual time (10 µs a round), whatever the
/// machine's speed or load.
#[inline]
fn run_host(host: &mut Host<MemoryPort>, stats: Option<&mut Publisher>, now: u64) {
    let it = host.run_once_at(now);
    let Some(p) = stats else {
        return;
    };
    if p.iteration(now, &it) {
        let max = p.max_sockets();
        let snap = p.snapshot();
        collect::stages(snap, host.stats());
        collect::tcp(snap, &host.state.sockets, max);
        collect::neighbors(snap, &host.state.egress, now);
        p.publish(now, false);
    }
}

/// A client and a server pipeline on one wire.
pub struct TpaPeers {
    wire: MemoryWire,
    clock: VirtualClock,
    client: Host<MemoryPort>,
    server: Host<MemoryPort>,
    rr: Transactions,
    crr: Transactions,
    stats: Option<Stats>,
}

impl TpaPeers {
    /// One round's step of the virtual clock.
    #[inline]
    fn tick(&mut self) -> u64 {
        // The bench's loop alone moves the clock (smoltcp's side stores
        // its time the same way).
        self.clock.advance_alone_ns(ROUND_US * 1_000)
    }

    fn server_addr() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(SERVER_IP), PORT)
    }

    #[inline]
    fn run_client(&mut self, now: u64) {
        run_host(
            &mut self.client,
            self.stats.as_mut().map(|s| &mut s.client),
            now,
        );
    }

    #[inline]
    fn run_server(&mut self, now: u64) {
        run_host(
            &mut self.server,
            self.stats.as_mut().map(|s| &mut s.server),
            now,
        );
    }

    fn errors(&self) -> Option<String> {
        let (c, s) = (&self.client.app.errors, &self.server.app.errors);
        (!c.is_empty() || !s.is_empty()).then(|| format!("errors: client {c:?}, server {s:?}"))
    }
}

impl TpaPeers {
    /// Both hosts up for `workload`, tracing and publishing stats as `ops`
    /// says, no connection yet.
    pub fn with_ops(workload: Workload, ops: &Ops) -> Result<Self, String> {
        let clock = VirtualClock::new();
        let wire = MemoryWire::new(WireConfig {
            mac_a: CLIENT_MAC,
            mac_b: SERVER_MAC,
            clock: clock.clone().into(),
            // A NIC with scatter-gather (see the module's doc on copies).
            max_segments: GATHER,
            ..WireConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let mut cfg = TcpConfig::default();
        // The latency stages' cost (benches/callgrind_tcp_memory.sh).
        if let Some(v) = std::env::var_os("TPA_TCP_MEASURE_LATENCY") {
            cfg =
                TcpConfig::load("", [("TPA_TCP_MEASURE_LATENCY", v)]).map_err(|e| e.to_string())?;
        }
        if workload == Workload::Crr {
            cfg.time_wait_ns = CRR_TIME_WAIT.as_nanos() as u64;
        }
        let port = |end| wire.port(end, 0).map_err(|e| e.to_string());
        let client = host(
            port(End::A)?,
            iface(CLIENT_MAC, 1),
            cfg.clone(),
            &ops.trace,
            1,
            Peer::new(false, workload),
        )
        .with_time_source(clock.clone().into());
        let server = host(
            port(End::B)?,
            iface(SERVER_MAC, 2),
            cfg,
            &ops.trace,
            2,
            Peer::new(true, workload),
        )
        .with_time_source(clock.clone().into());
        let mut p = TpaPeers {
            wire,
            clock,
            client,
            server,
            rr: Transactions::default(),
            crr: Transactions::default(),
            stats: ops.stats.as_ref().map(Stats::start).transpose()?,
        };
        let any: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT);
        let server_iface = iface(SERVER_MAC, 2);
        p.server
            .state
            .sockets
            .listen(any, 16, &server_iface)
            .map_err(|e| format!("listen: {e:?}"))?;
        Ok(p)
    }
}

impl Peers for TpaPeers {
    const NAME: &'static str = "tpa";

    fn new(workload: Workload) -> Result<Self, String> {
        TpaPeers::with_ops(workload, &Ops::from_env()?)
    }

    fn connect(&mut self) -> Result<(), String> {
        self.client.app.connect_to = Some(Self::server_addr());
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.run_client(now);
            self.run_server(now);
            if let Some(e) = self.errors() {
                return Err(e);
            }
            if self.client.app.established && self.server.app.established {
                return Ok(());
            }
        }
        Err(format!("not established after {MAX_ROUNDS} rounds"))
    }

    fn bulk(&mut self, len: u64) -> Result<(), String> {
        self.client.app.target += len;
        let target = self.client.app.target;
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.run_client(now);
            self.run_server(now);
            if self.server.app.received.bytes >= target {
                return Ok(());
            }
        }
        Err(format!(
            "bulk: {} of {target} bytes after {MAX_ROUNDS} rounds; {}",
            self.server.app.received.bytes,
            self.errors().unwrap_or_default()
        ))
    }

    fn rr(&mut self) -> Result<(), String> {
        let req = request(self.rr.done + self.rr.wrong);
        self.client.app.request = Some(req);
        self.client.app.msg.clear();
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.run_client(now);
            if self.client.app.msg.is_full() {
                if self.client.app.msg.bytes() == &req {
                    self.rr.done += 1;
                } else {
                    self.rr.wrong += 1;
                }
                return Ok(());
            }
            self.run_server(now);
        }
        Err(format!(
            "rr: no response after {MAX_ROUNDS} rounds; {}",
            self.errors().unwrap_or_default()
        ))
    }

    fn crr(&mut self) -> Result<(), String> {
        let req = request(self.crr.done + self.crr.wrong);
        let c = &mut self.client.app;
        c.connect_to = Some(Self::server_addr());
        c.request = Some(req);
        c.msg.clear();
        let closed_before = self.server.app.closed;
        for _ in 0..MAX_ROUNDS {
            let now = self.tick();
            self.run_client(now);
            let sockets = &self.client.state.sockets;
            // The client closed once the response was in; its connection
            // is done once in TIME_WAIT.
            let client_done = self.client.app.msg.is_full()
                && self.client.app.socket.is_none()
                && sockets.len() == sockets.time_wait_count();
            self.run_server(now);
            // Only the listener left: the accepted connection is gone.
            let server_done =
                self.server.app.closed > closed_before && self.server.state.sockets.len() == 1;
            if client_done && server_done {
                if self.client.app.msg.bytes() == &req {
                    self.crr.done += 1;
                } else {
                    self.crr.wrong += 1;
                }
                return Ok(());
            }
        }
        Err(format!(
            "crr: not done after {MAX_ROUNDS} rounds: client sockets {:?}, server {:?}; {}",
            self.client.state.sockets.iter().collect::<Vec<_>>(),
            self.server.state.sockets.iter().collect::<Vec<_>>(),
            self.errors().unwrap_or_default()
        ))
    }

    fn check(&self) -> Result<(), String> {
        let received = self.server.app.received;
        let dropped = self.wire.stats(Direction::AToB).dropped.total()
            + self.wire.stats(Direction::BToA).dropped.total();
        let problems: Vec<String> = [
            (received.wrong > 0)
                .then(|| format!("{} of {} bulk bytes wrong", received.wrong, received.bytes)),
            (self.rr.wrong > 0).then(|| format!("{} rr responses wrong", self.rr.wrong)),
            (self.crr.wrong > 0).then(|| format!("{} crr responses wrong", self.crr.wrong)),
            (dropped > 0).then(|| format!("{dropped} frames dropped on the wire")),
            self.errors(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("tpa: {}", problems.join("; ")))
        }
    }

    fn teardown(self) -> Result<(), String> {
        let pool = self.wire.pool().clone();
        drop(self);
        if pool.is_whole() {
            Ok(())
        } else {
            Err(format!(
                "tpa: {} of {} buffers not back after teardown",
                pool.in_use(),
                pool.capacity()
            ))
        }
    }

    fn summary(&self) -> String {
        format!(
            "tpa: {} bulk bytes checked, {} rr, {} crr; frames client->server {}, \
             server->client {}; {} virtual us",
            self.server.app.received.bytes,
            self.rr.done,
            self.crr.done,
            self.wire.stats(Direction::AToB).sent,
            self.wire.stats(Direction::BToA).sent,
            self.clock.now_ns() / 1000
        )
    }
}
