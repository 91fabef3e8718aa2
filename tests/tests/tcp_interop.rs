//! tpa's TCP against the Linux kernel's, through a lossy bridge: the
//! kernel in a namespace of its own (a veth into the bridge, one segment
//! per packet, CUBIC pinned per socket and reported), tpa on the bridge
//! over a TAP device or over a veth with an AF_PACKET port, the bridge
//! clean or dropping 1% of the TCP frames each way (tests/src/impair.rs).
//!
//! Each test moves `TPA_INTEROP_BYTES` (64 MiB by default; the long run,
//! tests/tcp_interop_long.sh, sets 1 GiB) each way twice: a tpa server
//! against kernel clients (tpa's sink takes the kernel's stream, tpa's
//! source feeds the kernel's receiver), then a tpa client against kernel
//! servers (tpa sends to the kernel's sink, receives from the kernel's
//! source). Every stream is tperf's pattern: tpa checks each byte it
//! receives at its offset; the kernel's peer reports the sha256 of what it
//! received and sent, compared with the pattern's. The kernel's `nstat`
//! counters are read around each test and printed (retransmissions, SACK
//! recoveries, challenge ACKs, resets): no resets either way, and under
//! loss both ends retransmitted.
//!
//! Run as root: these tests create namespaces, veth pairs, a bridge and
//! TAP interfaces.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig};
use tpa::port::tap::{Tap, TapConfig, TapMode};
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_stages::iface::Interface;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::conn::TcpInfo;
use tpa_tests::impair::LossyBridge;
use tpa_tests::netns::Netns;
use tpa_tests::nstat::Counters;
use tpa_tests::pattern::Pattern;
use tpa_tests::tcp_host::{HostState, TcpHost, B};
use tpa_tests::tcp_peer::{pattern_sha256, PeerReport, TcpPeer};
use tpa_tests::RaiseOnDrop;

/// The pattern's seed (fixed: a failure replays with the same bytes).
const SEED: u64 = 0x7470_615f_696e_7400;
/// The port tpa and the kernel serve on.
const PORT: u16 = 5001;
/// How long a transfer may take before the test gives up: a bound on a
/// hang, not a speed check.
const PATIENCE: Duration = Duration::from_secs(600);

/// Bytes each way per transfer: `TPA_INTEROP_BYTES`, or 64 MiB.
fn size() -> u64 {
    static SIZE: OnceLock<u64> = OnceLock::new();
    *SIZE.get_or_init(|| match std::env::var("TPA_INTEROP_BYTES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("TPA_INTEROP_BYTES={v:?} is not a byte count")),
        Err(_) => 64 << 20,
    })
}

/// The sha256 of the transfer's bytes, computed once.
fn expected_sha256() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| pattern_sha256(size(), SEED))
}

/// The kernel's addresses and tpa's.
const KERNEL_V4: &str = "192.0.2.1";
const KERNEL_V6: &str = "2001:db8::1";
const TPA_V4: &str = "192.0.2.2";
const TPA_V6: &str = "2001:db8::2";
const TPA_MAC: MacAddr = MacAddr([0x02, 0x54, 0x50, 0x41, 0, 0x02]);

/// What tpa's application does on its one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Accept, read to the end, close.
    ServeSink,
    /// Accept, send the stream, half-close, read to the end, close.
    ServeSource,
    /// Connect, send the stream, half-close, read to the end, close.
    Send(SocketAddr),
    /// Connect, read to the end, close.
    Recv(SocketAddr),
}

impl Role {
    fn sends(self) -> bool {
        matches!(self, Role::ServeSource | Role::Send(_))
    }
}

/// tpa's end of one transfer.
struct Transfer {
    role: Role,
    size: u64,
    pattern: Pattern,
    started: bool,
    socket: Option<SocketId>,
    /// Pattern bytes filled but not yet taken by `send`.
    pending: Vec<u8>,
    sent: u64,
    received: u64,
    /// The first received byte that was not the pattern's.
    mismatch: Option<u64>,
    eof: bool,
    shut: bool,
    closed: bool,
    /// The connection's TCP_INFO, just before close (or when stopped).
    info: Option<TcpInfo>,
    /// The socket table's counters at the end.
    counters: String,
    errors: Vec<SocketError>,
}

impl Transfer {
    fn new(role: Role, size: u64) -> Self {
        Transfer {
            role,
            size,
            pattern: Pattern::new(SEED),
            started: false,
            socket: None,
            pending: Vec::new(),
            sent: 0,
            received: 0,
            mismatch: None,
            eof: false,
            shut: false,
            closed: false,
            info: None,
            counters: String::new(),
            errors: Vec::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.closed || !self.errors.is_empty()
    }

    fn describe(&self) -> String {
        format!(
            "{:?}: sent {} received {} eof {} shut {} closed {} mismatch {:?} errors {:?}\n  info {:?}\n  {}",
            self.role,
            self.sent,
            self.received,
            self.eof,
            self.shut,
            self.closed,
            self.mismatch,
            self.errors,
            self.info,
            self.counters
        )
    }

    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(s) = self.socket else { return 0 };
        if self.is_done() {
            return 0;
        }
        let mut work = 0;
        while !self.eof {
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => {
                    work += 1;
                    for segment in buf.segments() {
                        if self.mismatch.is_none() {
                            self.mismatch = self.pattern.first_mismatch(self.received, segment);
                        }
                        self.received += segment.len() as u64;
                    }
                }
                Ok(None) => self.eof = true,
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.errors.push(e);
                    return work;
                }
            }
        }
        if self.role.sends() {
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
                        work += 1;
                    }
                    Err(e) => {
                        self.errors.push(e);
                        return work;
                    }
                }
            }
            if self.sent == self.size && !self.shut {
                self.shut = true;
                if let Err(e) = tcp::shutdown(cx, s) {
                    self.errors.push(e);
                }
            }
        }
        if self.eof && (self.shut || !self.role.sends()) {
            self.info = tcp::info(cx, s).ok();
            if let Err(e) = tcp::close(cx, s) {
                self.errors.push(e);
            }
            self.closed = true;
        }
        work
    }
}

impl App<B, HostState> for Transfer {
    fn accepted(&mut self, _listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        if self.socket.is_none() {
            self.socket = Some(socket);
            self.step(cx);
        }
    }

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
        if !self.started {
            self.started = true;
            if let Role::Send(to) | Role::Recv(to) = self.role {
                match tcp::connect(cx, to) {
                    Ok(s) => self.socket = Some(s),
                    Err(e) => self.errors.push(e),
                }
            }
        }
        self.step(cx)
    }
}

type Host<P> = TcpHost<P, Transfer>;

/// tpa's host on `port` (with MAC `mac`), running `app`.
fn host<P: Port<Buf = B>>(port: P, mac: MacAddr, app: Transfer) -> Host<P> {
    // A seed per host (ISNs, ephemeral ports): successive hosts of a test
    // must not reuse a 4-tuple the kernel still holds in TIME_WAIT.
    static HOSTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = u64::from(std::process::id())
        ^ SEED
        ^ HOSTS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let iface = Interface::new(mac)
        .with_ipv4(format!("{TPA_V4}/24").parse().unwrap())
        .with_ipv6(format!("{TPA_V6}/64").parse().unwrap());
    TcpHost::build(port, HostState::new(iface, TcpConfig::default(), seed), app)
}

/// How tpa reaches the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A TAP device on the bridge.
    Tap,
    /// A veth pair, one end on the bridge, an AF_PACKET port on the other.
    AfPacket,
}

/// The scene: the kernel's namespace, the bridge, tpa's port's pool.
struct Scene {
    kernel: Netns,
    wire: LossyBridge,
    via: Via,
    pool: Pool,
    tag: String,
}

impl Scene {
    fn new(tag: &str, via: Via) -> Scene {
        let kernel = Netns::new(&format!("{tag}-k"));
        let wire = LossyBridge::new(&format!("{tag}-w"));
        wire.plug("pk", &kernel, "vk");
        kernel.one_segment_per_packet("vk");
        kernel.up("vk");
        kernel.add_addr("vk", &format!("{KERNEL_V4}/24"));
        kernel.ip(&[
            "addr",
            "add",
            &format!("{KERNEL_V6}/64"),
            "dev",
            "vk",
            "nodad",
        ]);
        eprintln!("{tag}: {}", kernel.pin_congestion_control("cubic"));
        match via {
            Via::Tap => {
                wire.ns()
                    .ip(&["tuntap", "add", "dev", "tpa0", "mode", "tap"]);
                wire.attach("tpa0");
            }
            Via::AfPacket => {
                wire.plug("pt", wire.ns(), "tv");
                wire.ns().up("tv");
            }
        }
        let pool = Pool::new(PoolConfig {
            name: format!("interop-{tag}"),
            capacity: 8192,
            huge_pages: false,
            ..PoolConfig::default()
        })
        .expect("pool");
        Scene {
            kernel,
            wire,
            via,
            pool,
            tag: tag.to_owned(),
        }
    }

    /// Runs `app` on tpa's host, over this scene's port, in the current
    /// thread until it is done or `stop` is raised (raising `listening`
    /// once its listener, if any, is open); returns it.
    fn run_tpa(
        &self,
        app: Transfer,
        listen: Option<SocketAddr>,
        listening: &AtomicBool,
        stop: &StopFlag,
    ) -> Transfer {
        match self.via {
            Via::Tap => {
                let config = TapConfig {
                    mode: TapMode::AttachExisting,
                    mac: Some(TPA_MAC),
                    ..TapConfig::new("tpa0")
                };
                let port = self
                    .wire
                    .ns()
                    .enter(|| Tap::open(&config, self.pool.clone()))
                    .expect("open tpa0");
                drive(host(port, TPA_MAC, app), listen, listening, stop)
            }
            Via::AfPacket => {
                let mac: MacAddr = self.wire.ns().mac_of("tv").parse().expect("tv's MAC");
                let port = self
                    .wire
                    .ns()
                    .enter(|| AfPacket::open(&AfPacketConfig::new("tv"), self.pool.clone()))
                    .expect("open AF_PACKET on tv");
                drive(host(port, mac, app), listen, listening, stop)
            }
        }
    }
}

impl Scene {
    /// Fails the test after the kernel's peer failed, with how both ends
    /// stood: tpa's transfer and connection, the kernel's sockets (`ss`).
    fn fail(&self, context: &str, kernel: &str, tpa: &Transfer) -> ! {
        let ss = self.kernel.exec_output(&["ss", "-tinoema"]);
        panic!(
            "{context}: {kernel}\ntpa: {}\nthe kernel's sockets:\n{}",
            tpa.describe(),
            String::from_utf8_lossy(&ss.stdout)
        );
    }
}

/// Runs `h` until its transfer is done and its connection closed (or in
/// TIME_WAIT), or `stop` is raised; returns the transfer.
fn drive<P: Port<Buf = B>>(
    mut h: Host<P>,
    listen: Option<SocketAddr>,
    listening: &AtomicBool,
    stop: &StopFlag,
) -> Transfer {
    if let Some(at) = listen {
        let iface = h.state.egress.interface().clone();
        h.state.sockets.listen(at, 4, &iface).expect("listen");
    }
    listening.store(true, Ordering::Relaxed);
    let start = Instant::now();
    while !h.app.is_done() && !stop.is_raised() {
        h.run_once();
        assert!(
            start.elapsed() < PATIENCE,
            "tpa stuck for {PATIENCE:?}: {}",
            h.app.describe()
        );
    }
    // Closed by the application, the connection still has to get its FIN
    // acknowledged, and only a running host retransmits a lost one (or
    // acknowledges the peer's again): run until it is gone (LAST_ACK
    // done) or in TIME_WAIT (both FINs done). Asked of the table: the
    // closed handle answers `BadSocket` (asking it stopped the host at
    // once, and one lost FIN in a hundred left the kernel in FIN_WAIT_1).
    while h.state.sockets.closing_count() > 0 && h.app.errors.is_empty() && !stop.is_raised() {
        h.run_once();
        assert!(
            start.elapsed() < PATIENCE,
            "tpa's connection stuck closing for {PATIENCE:?}: {}\n  {:?}",
            h.app.describe(),
            h.state.sockets.iter().collect::<Vec<_>>()
        );
    }
    if h.app.info.is_none() {
        // Stopped before the end: how the connection stood.
        h.app.info = h.app.socket.and_then(|s| h.state.sockets.info(s).ok());
    }
    // The egress side too: a direction that goes quiet shows here
    // (packets held for a neighbor, or its entry's state).
    let egress = &h.state.egress;
    h.app.counters = format!(
        "{:?}\n  egress {:?}\n  neighbors v4 {:?} {:?}\n  neighbors v6 {:?} {:?}",
        h.state.sockets.counters(),
        egress.counters(),
        egress.neighbors_v4().counters(),
        egress.neighbors_v4().iter().collect::<Vec<_>>(),
        egress.neighbors_v6().counters(),
        egress.neighbors_v6().iter().collect::<Vec<_>>(),
    );
    let role = h.app.role;
    std::mem::replace(&mut h.app, Transfer::new(role, 0))
}

fn peer(scene: &Scene) -> TcpPeer<'_> {
    let mut p = TcpPeer::new(&scene.kernel);
    p.seed = SEED;
    // tpa checks the pattern; the kernel's side's sha256 suffices there.
    p.check = false;
    p.timeout_s = 60;
    p.deadline_s = PATIENCE.as_secs() as u32;
    p
}

/// tpa's transfer moved the whole stream its role moves, intact, and
/// closed without error.
#[track_caller]
fn assert_tpa_done(t: &Transfer, context: &str) {
    assert!(t.errors.is_empty(), "{context}: {}", t.describe());
    assert!(t.closed, "{context}: {}", t.describe());
    assert_eq!(t.mismatch, None, "{context}: {}", t.describe());
    let (sent, received) = if t.role.sends() {
        (t.size, 0)
    } else {
        (0, t.size)
    };
    assert_eq!(
        (t.sent, t.received),
        (sent, received),
        "{context}: {}",
        t.describe()
    );
    if let Some(info) = &t.info {
        eprintln!(
            "{context}: tpa: retransmits {} fast {} lost {} rtt {} us cwnd {} mss {}/{} sack {} ts {} wscale {}/{} challenge ACKs {} dropped {} out of order {}",
            info.total_retrans,
            info.fast_retransmits,
            info.lost,
            info.rtt_ns / 1000,
            info.cwnd,
            info.snd_mss,
            info.rcv_mss,
            info.sack,
            info.timestamps,
            info.snd_wscale,
            info.rcv_wscale,
            info.challenge_acks,
            info.dropped,
            info.out_of_order
        );
    }
}

/// The kernel's peer moved the whole stream, intact, over CUBIC.
#[track_caller]
fn assert_kernel_done(r: &PeerReport, sends: bool, context: &str) {
    eprintln!("{context}: kernel: {r}");
    let expected = expected_sha256();
    if sends {
        assert_eq!(
            (r.sent, r.sent_sha256.as_str()),
            (size(), expected),
            "{context}: {r}"
        );
    } else {
        assert_eq!(
            (r.received, r.received_sha256.as_str()),
            (size(), expected),
            "{context}: {r}"
        );
    }
    assert_eq!(r.cc, "cubic", "{context}: {r}");
}

/// A tpa server (sink, then source) against kernel clients.
fn tpa_serves(scene: &Scene, tpa_ip: &str, context: &str) -> Vec<Transfer> {
    let listen = SocketAddr::new(tpa_ip.parse().unwrap(), PORT);
    let mut done = Vec::new();
    for role in [Role::ServeSink, Role::ServeSource] {
        let context = format!("{context}: tpa {role:?}");
        let (listening, stop) = (AtomicBool::new(false), StopFlag::new());
        let (t, report) = thread::scope(|s| {
            let tpa = s.spawn(|| {
                scene.run_tpa(Transfer::new(role, size()), Some(listen), &listening, &stop)
            });
            let raise = RaiseOnDrop(&stop);
            let start = Instant::now();
            while !listening.load(Ordering::Relaxed) && !tpa.is_finished() {
                assert!(start.elapsed() < PATIENCE, "{context}: tpa never listened");
                thread::sleep(Duration::from_millis(1));
            }
            let report = if role == Role::ServeSink {
                peer(scene).try_send(listen, size())
            } else {
                peer(scene).try_recv(listen)
            };
            // The kernel's peer is done: tpa finishes its side (closing
            // on the kernel's FIN; `drive` bounds it by PATIENCE) unless
            // the peer failed.
            while report.is_ok() && !tpa.is_finished() {
                thread::sleep(Duration::from_millis(1));
            }
            drop(raise);
            (tpa.join().expect("tpa thread"), report)
        });
        let report = report.unwrap_or_else(|e| scene.fail(&context, &e, &t));
        assert_kernel_done(&report, role == Role::ServeSink, &context);
        assert_tpa_done(&t, &context);
        done.push(t);
    }
    done
}

/// A tpa client (sending, then receiving) against kernel servers.
fn tpa_connects(scene: &Scene, kernel_ip: &str, context: &str) -> Vec<Transfer> {
    let server = SocketAddr::new(kernel_ip.parse::<IpAddr>().unwrap(), PORT);
    let mut done = Vec::new();
    for role in [Role::Send(server), Role::Recv(server)] {
        let context = format!("{context}: tpa {role:?}");
        let kernel = if role.sends() {
            peer(scene).serve_sink(server)
        } else {
            peer(scene).serve_source(server, size())
        };
        let t = scene.run_tpa(
            Transfer::new(role, size()),
            None,
            &AtomicBool::new(false),
            &StopFlag::new(),
        );
        let report = kernel
            .try_finish()
            .unwrap_or_else(|e| scene.fail(&context, &e, &t));
        assert_kernel_done(&report, !role.sends(), &context);
        assert_tpa_done(&t, &context);
        done.push(t);
    }
    done
}

/// Both roles, both ways, over `via`, IPv4 or IPv6, with `loss` percent
/// dropped each way on the bridge.
fn interop(tag: &str, via: Via, v6: bool, loss: u8) {
    let scene = Scene::new(tag, via);
    let (tpa_ip, kernel_ip) = if v6 {
        (TPA_V6, KERNEL_V6)
    } else {
        (TPA_V4, KERNEL_V4)
    };
    if loss > 0 {
        scene.wire.set_loss(loss);
    }
    let context = format!("{} {via:?} v6 {v6} loss {loss}%", scene.tag);
    let before = Counters::read(&scene.kernel);
    let mut transfers = tpa_serves(&scene, tpa_ip, &context);
    transfers.extend(tpa_connects(&scene, kernel_ip, &context));
    let d = Counters::read(&scene.kernel).delta(&before);
    eprintln!("{context}: kernel nstat: {}", d.summary());
    assert_eq!(
        d.get("TcpOutRsts"),
        0,
        "{context}: the kernel sent resets: {}",
        d.summary()
    );
    assert_eq!(d.get("TcpEstabResets"), 0, "{context}: {}", d.summary());
    assert_eq!(d.get("TcpInCsumErrors"), 0, "{context}: {}", d.summary());
    if loss > 0 {
        let dropped = scene.wire.dropped();
        eprintln!("{context}: the bridge dropped TCP frames from {dropped:?}");
        assert!(
            dropped.iter().all(|(_, n)| *n > 0),
            "{context}: {dropped:?}"
        );
        assert!(
            d.get("TcpRetransSegs") > 0,
            "{context}: the kernel sent through a {loss}% loss and retransmitted nothing: {}",
            d.summary()
        );
        let tpa_retrans: u64 = transfers
            .iter()
            .filter(|t| t.role.sends())
            .filter_map(|t| t.info.as_ref().map(|i| i.total_retrans))
            .sum();
        assert!(
            tpa_retrans > 0,
            "{context}: tpa sent through a {loss}% loss and retransmitted nothing"
        );
    }
    drop(transfers);
    scene.pool.assert_whole();
}

#[test]
fn tap_ipv4() {
    interop("it4", Via::Tap, false, 0);
}

#[test]
fn tap_ipv6() {
    interop("it6", Via::Tap, true, 0);
}

#[test]
fn tap_ipv4_one_percent_loss() {
    interop("il4", Via::Tap, false, 1);
}

#[test]
fn tap_ipv6_one_percent_loss() {
    interop("il6", Via::Tap, true, 1);
}

#[test]
fn af_packet_ipv4() {
    interop("ia4", Via::AfPacket, false, 0);
}

#[test]
fn af_packet_ipv6() {
    interop("ia6", Via::AfPacket, true, 0);
}

#[test]
fn af_packet_ipv4_one_percent_loss() {
    interop("ial4", Via::AfPacket, false, 1);
}

#[test]
fn af_packet_ipv6_one_percent_loss() {
    interop("ial6", Via::AfPacket, true, 1);
}
