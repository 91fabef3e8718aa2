//! Path MTU discovery and ICMP errors against Linux routers and hosts:
//! tpa in a namespace of its own, a kernel router in the middle whose link
//! toward the kernel's host carries 1280-byte packets (its end of that
//! veth at MTU 1280, the host's at 1500, so the host's SYN-ACK still
//! announces MSS 1460 and only the router knows better), the kernel's host
//! behind it.
//!
//! - tpa sends 4 MiB to a kernel sink through the router, IPv4 (DF set on
//!   every packet) and IPv6: the router answers the first full-sized
//!   segments with ICMP "fragmentation needed" / "packet too big"; tpa
//!   lowers its MSS (1240 / 1220), cuts its send queue and resends, and
//!   the sink's sha256 equals the pattern's.
//! - tpa connects to a port the host rejects with an nft rule (`reject
//!   with icmpx type port-unreachable`): ECONNREFUSED from the ICMP
//!   error, not from a timeout or a reset.
//!
//! Run as root: these tests create namespaces and veth pairs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, Pool, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig};
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa_stages::egress::Egress;
use tpa_stages::iface::Interface;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::conn::TcpInfo;
use tpa_tests::netns::Netns;
use tpa_tests::pattern::Pattern;
use tpa_tests::tcp_host::{HostState, TcpHost, B};
use tpa_tests::tcp_peer::{pattern_sha256, TcpPeer};

/// tpa's host over its AF_PACKET port.
type Host = TcpHost<AfPacket, Sender>;

/// The pattern's seed.
const SEED: u64 = 0x706d_7475_6400;
/// Bytes tpa sends.
const SIZE: u64 = 4 << 20;
/// The router's MTU toward the kernel's host.
const NARROW_MTU: &str = "1280";
/// A bound on a hang, not a speed check.
const PATIENCE: Duration = Duration::from_secs(120);

/// tpa's side (TEST-NET-2, 2001:db8:1::/64) and the host's side
/// (TEST-NET-3, 2001:db8:2::/64) of the router; all inside namespaces.
const ROUTER_TPA_V4: &str = "198.51.100.1";
const TPA_V4: &str = "198.51.100.2";
const ROUTER_HOST_V4: &str = "203.0.113.1";
const HOST_V4: &str = "203.0.113.2";
const ROUTER_TPA_V6: &str = "2001:db8:1::1";
const TPA_V6: &str = "2001:db8:1::2";
const ROUTER_HOST_V6: &str = "2001:db8:2::1";
const HOST_V6: &str = "2001:db8:2::2";
/// The kernel's sink, and the port its nft rule rejects.
const SINK_PORT: u16 = 5001;
const REJECTED_PORT: u16 = 5009;

/// tpa's application: one connection that sends `size` pattern bytes,
/// half-closes and reads to the end (or only records how its connect
/// failed).
struct Sender {
    to: SocketAddr,
    size: u64,
    pattern: Pattern,
    socket: Option<SocketId>,
    pending: Vec<u8>,
    sent: u64,
    shut: bool,
    eof: bool,
    closed: bool,
    info: Option<TcpInfo>,
    errors: Vec<SocketError>,
}

impl Sender {
    fn new(to: SocketAddr, size: u64) -> Sender {
        Sender {
            to,
            size,
            pattern: Pattern::new(SEED),
            socket: None,
            pending: Vec::new(),
            sent: 0,
            shut: false,
            eof: false,
            closed: false,
            info: None,
            errors: Vec::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.closed || !self.errors.is_empty()
    }

    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) {
        let Some(s) = self.socket else { return };
        if self.is_done() {
            return;
        }
        while self.sent < self.size {
            if self.pending.is_empty() {
                let n = (self.size - self.sent).min(64 * 1024) as usize;
                self.pending.resize(n, 0);
                self.pattern.fill(self.sent, &mut self.pending);
            }
            match tcp::send(cx, s, &self.pending) {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(n) => {
                    self.pending.drain(..n);
                    self.sent += n as u64;
                }
                Err(e) => return self.errors.push(e),
            }
        }
        if self.sent == self.size && !self.shut {
            self.shut = true;
            if let Err(e) = tcp::shutdown(cx, s) {
                self.errors.push(e);
            }
        }
        loop {
            match tcp::recv(cx, s) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.eof = true;
                    break;
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => return self.errors.push(e),
            }
        }
        if self.eof && self.shut {
            self.info = tcp::info(cx, s).ok();
            if let Err(e) = tcp::close(cx, s) {
                self.errors.push(e);
            }
            self.closed = true;
        }
    }
}

impl App<B, HostState> for Sender {
    fn readable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(cx);
    }

    fn writable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(cx);
    }

    fn peer_closed(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(cx);
    }

    fn error(&mut self, _socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.errors.push(error);
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        if self.socket.is_none() && self.errors.is_empty() {
            match tcp::connect(cx, self.to) {
                Ok(s) => self.socket = Some(s),
                Err(e) => self.errors.push(e),
            }
            return 1;
        }
        0
    }
}

/// The scene: tpa's namespace, the router's, the kernel host's.
struct Scene {
    tpa: Netns,
    _router: Netns,
    host: Netns,
    pool: Pool,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        let tpa = Netns::new(&format!("{tag}-t"));
        let router = Netns::new(&format!("{tag}-r"));
        let host = Netns::new(&format!("{tag}-h"));
        // No duplicate address detection: link-local addresses usable at
        // once (the kernels' first neighbor solicitations need one).
        for ns in [&router, &host] {
            for key in ["all", "default"] {
                ns.exec(&[
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{key}.accept_dad=0"),
                ]);
            }
        }
        // tpa's link: `tv` (tpa's AF_PACKET port) <-> `rt` (the router).
        tpa.add_veth("tv", "rt");
        tpa.ip(&["link", "set", "dev", "rt", "netns", router.name()]);
        tpa.up("tv");
        // The narrow link: `rh` (the router, MTU 1280) <-> `hr` (the host,
        // MTU 1500).
        router.add_veth("rh", "hr");
        router.ip(&["link", "set", "dev", "hr", "netns", host.name()]);
        router.ip(&["link", "set", "dev", "rh", "mtu", NARROW_MTU]);
        for (ns, dev) in [(&router, "rt"), (&router, "rh"), (&host, "hr")] {
            ns.up(dev);
        }
        let nodad = |ns: &Netns, cidr: &str, dev: &str| {
            ns.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
        };
        router.add_addr("rt", &format!("{ROUTER_TPA_V4}/24"));
        router.add_addr("rh", &format!("{ROUTER_HOST_V4}/24"));
        host.add_addr("hr", &format!("{HOST_V4}/24"));
        nodad(&router, &format!("{ROUTER_TPA_V6}/64"), "rt");
        nodad(&router, &format!("{ROUTER_HOST_V6}/64"), "rh");
        nodad(&host, &format!("{HOST_V6}/64"), "hr");
        host.ip(&["route", "add", "default", "via", ROUTER_HOST_V4]);
        host.ip(&["-6", "route", "add", "default", "via", ROUTER_HOST_V6]);
        router.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        router.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
        // The host refuses one port with ICMP, not a reset.
        host.exec(&["nft", "add", "table", "inet", "pmtud"]);
        host.exec(&[
            "nft",
            "add chain inet pmtud input { type filter hook input priority 0; }",
        ]);
        let rule = format!(
            "add rule inet pmtud input tcp dport {REJECTED_PORT} \
             reject with icmpx type port-unreachable"
        );
        host.exec(&["nft", &rule]);
        let pool = Pool::new(PoolConfig {
            name: format!("pmtud-{tag}"),
            capacity: 8192,
            huge_pages: false,
            ..PoolConfig::default()
        })
        .expect("pool");
        Scene {
            tpa,
            _router: router,
            host,
            pool,
        }
    }

    /// tpa's host on `tv`, with the router as the gateway of both
    /// families, running `app`.
    fn host(&self, app: Sender) -> Host {
        let mac: MacAddr = self.tpa.mac_of("tv").parse().expect("tv's MAC");
        let port = self
            .tpa
            .enter(|| AfPacket::open(&AfPacketConfig::new("tv"), self.pool.clone()))
            .expect("open AF_PACKET on tv");
        let iface = Interface::new(mac)
            .with_ipv4(format!("{TPA_V4}/24").parse().unwrap())
            .with_ipv6(format!("{TPA_V6}/64").parse().unwrap());
        let seed = SEED ^ u64::from(std::process::id());
        let mut state = HostState::new(iface.clone(), TcpConfig::default(), seed);
        state.egress = Egress::new(iface)
            .with_gateway(ROUTER_TPA_V4.parse().unwrap())
            .with_gateway(ROUTER_TPA_V6.parse().unwrap());
        TcpHost::build(port, state, app)
    }
}

/// Runs `h` until its application is done, then a little longer so a
/// closed connection's FIN is acknowledged; returns how long the
/// application took (printed, never asserted).
fn drive(h: &mut Host) -> Duration {
    let start = Instant::now();
    while !h.app.is_done() {
        h.run_once();
        assert!(
            start.elapsed() < PATIENCE,
            "tpa stuck: sent {} errors {:?} info {:?}",
            h.app.sent,
            h.app.errors,
            h.app.socket.and_then(|s| h.state.sockets.info(s).ok())
        );
    }
    let took = start.elapsed();
    let linger = Instant::now();
    while linger.elapsed() < Duration::from_millis(200) {
        h.run_once();
    }
    took
}

fn transfer_lowers_the_mss(ipv6: bool) {
    let scene = Scene::new(if ipv6 { "pm6" } else { "pm4" });
    let host_ip = if ipv6 { HOST_V6 } else { HOST_V4 };
    let at = SocketAddr::new(host_ip.parse().unwrap(), SINK_PORT);
    let mut peer = TcpPeer::new(&scene.host);
    peer.seed = SEED;
    peer.check = true;
    peer.timeout_s = 60;
    let sink = peer.serve_sink(at);
    let mut h = scene.host(Sender::new(at, SIZE));
    let took = drive(&mut h);
    let got = sink.finish();
    let info = h.app.info.expect("the connection's info");
    let icmp = if ipv6 { *h.icmp6() } else { *h.icmp4() };
    eprintln!(
        "ipv6 {ipv6}: {took:?}; kernel {got}\ntpa: {info:?}\nsnd_mss {} path_mss {} rcv_mss {} reductions {} retransmits {} lost {}\nICMP {icmp:?}\npath MTU cached {:?}",
        info.snd_mss,
        info.path_mss,
        info.rcv_mss,
        info.pmtu_reductions,
        info.total_retrans,
        info.lost,
        h.state.sockets.path_mtu(at.ip(), 0),
    );
    assert!(h.app.errors.is_empty(), "tpa's errors: {:?}", h.app.errors);
    assert_eq!(
        (got.received, got.received_sha256.as_str()),
        (SIZE, pattern_sha256(SIZE, SEED).as_str())
    );
    // The kernel's host announced 1460 (its link is 1500); the router's
    // 1280 made it 1240 (IPv4) or 1220 (IPv6), from real ICMP.
    let (announced, narrow) = if ipv6 { (1440, 1220) } else { (1460, 1240) };
    assert_eq!(info.rcv_mss, announced);
    // snd_mss is the effective MSS: less the timestamps' 12 bytes.
    assert_eq!((info.snd_mss, info.path_mss), (narrow - 12, narrow));
    assert_eq!(info.pmtu_reductions, 1);
    assert_eq!(icmp.mtu_lowered, 1);
    assert_eq!(h.state.sockets.path_mtu(at.ip(), 0), Some(1280));
    drop(h);
    scene.pool.assert_whole();
}

#[test]
fn ipv4_frag_needed_lowers_the_mss_of_a_4_mib_transfer() {
    transfer_lowers_the_mss(false);
}

#[test]
fn ipv6_packet_too_big_lowers_the_mss_of_a_4_mib_transfer() {
    transfer_lowers_the_mss(true);
}

#[test]
fn icmp_port_unreachable_refuses_a_connect() {
    let scene = Scene::new("pmr");
    for host_ip in [HOST_V4, HOST_V6] {
        let at = SocketAddr::new(host_ip.parse().unwrap(), REJECTED_PORT);
        let mut h = scene.host(Sender::new(at, 0));
        let took = drive(&mut h);
        let icmp = if at.is_ipv6() { *h.icmp6() } else { *h.icmp4() };
        let input = if at.is_ipv6() {
            &h.tcp6().stats
        } else {
            &h.tcp4().stats
        };
        eprintln!(
            "{at}: {:?} after {:?}; ICMP {icmp:?}; TCP input {input:?}",
            h.app.errors, took
        );
        assert_eq!(h.app.errors, [SocketError::ConnectionRefused]);
        // From the ICMP error, not a reset (no segment reached TCP).
        assert_eq!(icmp.aborted, 1);
        assert_eq!(input.consumed, 0, "no reset");
        drop(h);
    }
    scene.pool.assert_whole();
}
