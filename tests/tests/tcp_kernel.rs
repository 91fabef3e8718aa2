//! tpa's TCP against the Linux kernel's, through a TAP device in a
//! network namespace (the kernel's sockets pinned to cubic): a kernel
//! client (tests/src/tcp_peer.py) sends a megabyte of pattern bytes to a
//! tpa echo server and compares the sha256 of what came back; a tpa client
//! sends a megabyte to a kernel echo server, checks the echo byte for
//! byte, and compares the sha256 the kernel side computed with its own
//! (`sha256sum`). IPv4 and IPv6. The kernel's own counters (`nstat`) around
//! each transfer say how it saw us: one connection opened, no reset sent
//! or received, no loss recovery on the lossless TAP (tail loss probes at
//! most, on either side), no bad segment; and tpa's connection says it
//! got every segment in order.
//!
//! Each runs twice: once on a plain TAP, once with the TAP's offloads
//! (`virtio_net_hdr`): tpa then hands the kernel TCP super-segments
//! longer than the MTU to cut (TSO, counted by tpa's TCP and the TAP) and
//! leaves checksums to it both ways. The megabyte transfers run again over
//! a veth pair with an AF_PACKET port on tpa's end, without and with the
//! port's offloads (`PACKET_VNET_HDR`): tpa's server on the default rings
//! (a TPACKET_V2 frame ring each way), its client on the other paths
//! (`sendmmsg` out, the TPACKET_V3 block ring in). The veth pair
//! delivers in order only with its receive processing on one CPU
//! ([`Netns::in_order_receive`]): without, the kernel's segments to tpa
//! arrived reordered in about one run in three, and the kernel took the
//! holes tpa SACKed for losses (spurious fast retransmits, no byte lost).
//!
//! Run as root: these tests create namespaces, TAP and veth interfaces.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, RxMode, TxPath};
use tpa::port::tap::Tap;
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::TcpCounters;
use tpa_tests::netns::Netns;
use tpa_tests::nstat::Counters;
use tpa_tests::tcp_host::{iface, open_af_packet, open_tap_with, HostState, TcpHost, B};
use tpa_tests::tcp_peer::{sha256, TcpPeer};

const TPA_MAC: MacAddr = MacAddr([0x02, 0x54, 0x50, 0x41, 0, 0x02]);
const LEN: usize = 1 << 20;
/// How long a run may take before the test gives up (a hang, not a
/// speed check: a megabyte takes well under a second).
const PATIENCE: Duration = Duration::from_secs(60);
/// A gap between two iterations of tpa's loop that may make the kernel
/// time out (its RTO is 200 ms at least; half that, as an ACK tpa owed
/// may have waited behind a delayed-ACK timer and the kernel's timer
/// started before the stall).
const STALL: Duration = Duration::from_millis(100);

/// The longest gap between two iterations of a loop: its thread not
/// scheduled, on a loaded machine.
#[derive(Default)]
struct Stall {
    last: Option<Instant>,
    longest: Duration,
}

impl Stall {
    /// An iteration starts.
    fn tick(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.longest = self.longest.max(now - last);
        }
        self.last = Some(now);
    }
}

/// Sets a flag when dropped: the tpa thread stops also when the kernel
/// peer's run panics.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// tpa's end: an echo server (zero-copy: each received buffer is queued
/// back with `send_buf`) or a client sending `data` and checking its echo.
#[derive(Default)]
struct Peer {
    /// Client: where to connect; `None` for the server.
    remote: Option<SocketAddr>,
    data: Vec<u8>,
    started: bool,
    socket: Option<SocketId>,
    /// Server: received buffers not yet queued back.
    echo: VecDeque<B>,
    sent: usize,
    received: usize,
    mismatch: Option<usize>,
    /// Data segments that arrived ahead of a hole, from the connection's
    /// `TCP_INFO` just before the close.
    out_of_order: u64,
    eof: bool,
    shut: bool,
    closed: bool,
    errors: Vec<SocketError>,
}

impl Peer {
    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(s) = self.socket else { return 0 };
        if self.closed {
            return 0;
        }
        let mut work = 0;
        loop {
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => {
                    work += 1;
                    if self.remote.is_some() {
                        for segment in buf.segments() {
                            for &b in segment {
                                if self.mismatch.is_none()
                                    && self.data.get(self.received) != Some(&b)
                                {
                                    self.mismatch = Some(self.received);
                                }
                                self.received += 1;
                            }
                        }
                    } else {
                        self.received += buf.total_len();
                        self.echo.push_back(buf);
                    }
                }
                Ok(None) => {
                    self.eof = true;
                    break;
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
        }
        if self.remote.is_some() {
            while self.sent < self.data.len() {
                let end = self.data.len().min(self.sent + 16 * 1024);
                match tcp::send(cx, s, &self.data[self.sent..end]) {
                    Ok(0) | Err(SocketError::WouldBlock) => break,
                    Ok(n) => {
                        self.sent += n;
                        work += 1;
                    }
                    Err(e) => {
                        self.errors.push(e);
                        break;
                    }
                }
            }
            if self.sent == self.data.len() && !self.shut {
                self.shut = true;
                if let Err(e) = tcp::shutdown(cx, s) {
                    self.errors.push(e);
                }
            }
        } else {
            while let Some(buf) = self.echo.pop_front() {
                let n = buf.total_len();
                match tcp::send_buf(cx, s, buf) {
                    Ok(()) => {
                        self.sent += n;
                        work += 1;
                    }
                    Err((SocketError::WouldBlock, buf)) => {
                        self.echo.push_front(buf);
                        break;
                    }
                    Err((e, _)) => {
                        self.errors.push(e);
                        break;
                    }
                }
            }
            self.shut = self.eof && self.echo.is_empty();
        }
        if self.shut && self.eof {
            self.out_of_order = tcp::info(cx, s).expect("info").out_of_order;
            tcp::close(cx, s).expect("close");
            self.closed = true;
        }
        work
    }
}

impl App<B, HostState> for Peer {
    fn accepted(&mut self, _listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.socket = Some(socket);
        self.step(cx);
    }

    fn readable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.socket = Some(socket);
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
            if let Some(remote) = self.remote {
                self.socket = Some(tcp::connect(cx, remote).expect("connect"));
            }
        }
        self.step(cx)
    }
}

fn pool() -> Pool {
    Pool::new(PoolConfig {
        name: "tcp-kernel".into(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap()
}

type Host<P> = TcpHost<P, Peer>;

/// IPv4 or IPv6, with the port's offloads off or on: each transfer test's
/// cases.
const CASES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// How tpa reaches the kernel: through which port, in which namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A TAP device (`Netns::with_tap`).
    Tap,
    /// An AF_PACKET port on one end of a veth pair (`Netns::with_veth`).
    Veth,
}

impl Via {
    /// A namespace for one case, named from `tag`, the family and whether
    /// the port's offloads are on.
    fn namespace(self, tag: &str, v6: bool, offloads: bool) -> Netns {
        let tag = format!(
            "{tag}{}{}",
            if v6 { "6" } else { "4" },
            if offloads { "o" } else { "" }
        );
        match self {
            Via::Tap => Netns::with_tap(&tag),
            Via::Veth => Netns::with_veth(&tag),
        }
    }
}

/// tpa's host on the namespace's TAP, with `app`, the TAP's offloads on
/// when `offloads`. The namespace
/// (`Netns::with_tap`) is one per host: a single-queue TAP takes one
/// descriptor at a time, and a process another test thread forks holds a
/// copy of ours until it execs, so closing the TAP and opening it again at
/// once may find it still attached (EBUSY: "open tpa0" failed on a loaded
/// machine). The python peer pins cubic on its sockets (a namespace may
/// not change its default to one outside
/// `tcp_allowed_congestion_control`).
fn host(ns: &Netns, pool: &Pool, app: Peer, offloads: bool) -> Host<Tap> {
    let state = HostState::new(
        iface(TPA_MAC, 2),
        TcpConfig::default(),
        std::process::id().into(),
    );
    TcpHost::build(open_tap_with(ns, pool, TPA_MAC, offloads), state, app)
}

/// tpa's host on the namespace's veth end `vt` through AF_PACKET as
/// `config` says, at `vt`'s MAC, with `app`.
fn veth_host(ns: &Netns, pool: &Pool, app: Peer, config: AfPacketConfig) -> Host<AfPacket> {
    let (port, mac) = open_af_packet(ns, pool, config);
    let state = HostState::new(
        iface(mac, 2),
        TcpConfig::default(),
        std::process::id().into(),
    );
    TcpHost::build(port, state, app)
}

/// What a port's counters say of its offloads.
struct OffloadCounts {
    /// Super-segments handed to the kernel to cut.
    gso_frames: u64,
    /// Frames received with the L4 checksum trusted.
    checksum_trusted: u64,
    /// Whether a port without offloads may trust checksums anyway (an
    /// AF_PACKET socket reports the kernel's `TP_STATUS_CSUMNOTREADY`).
    trusts_without_offloads: bool,
    /// Super-frames the kernel handed over whole (dropped).
    rx_super_frames: u64,
    /// TSO packets cut in software.
    cut_in_software: u64,
    /// Frames sent.
    tx_packets: u64,
    /// Frames the kernel dropped for want of room in the port's receive
    /// ring (AF_PACKET's `PACKET_STATISTICS`; a TAP has no such ring).
    ring_drops: u64,
}

/// A port whose offload counters the tests read.
trait Offloading: Port<Buf = B> + Send {
    fn offload_counts(&mut self) -> OffloadCounts;
}

impl Offloading for Tap {
    fn offload_counts(&mut self) -> OffloadCounts {
        let s = self.stats();
        OffloadCounts {
            gso_frames: s.tx_gso_frames,
            checksum_trusted: s.rx_checksum_trusted,
            trusts_without_offloads: false,
            rx_super_frames: 0,
            cut_in_software: self.offload_stats().tso_packets,
            tx_packets: s.tx_packets,
            ring_drops: 0,
        }
    }
}

impl Offloading for AfPacket {
    fn offload_counts(&mut self) -> OffloadCounts {
        let s = self.stats();
        OffloadCounts {
            gso_frames: s.tx_gso_frames,
            checksum_trusted: s.rx_checksum_trusted,
            trusts_without_offloads: true,
            rx_super_frames: s.rx_gso_frames,
            cut_in_software: self.offload_stats().tso_packets,
            tx_packets: s.tx_packets,
            ring_drops: s.rx_kernel_drops,
        }
    }
}

/// With the port's offloads, tpa sent super-segments longer than the MTU
/// (its TCP joined segments, the port handed them to the kernel whole) and
/// trusted the kernel's unfinished checksums; without, no super-segment
/// left the port. Either way the kernel sent no super-frame tpa dropped,
/// and dropped no frame for a full receive ring.
fn assert_offloads_used<P: Offloading>(h: &mut Host<P>, offloads: bool, context: &str) {
    let tcp = h.state.sockets.counters();
    let port = h.port.offload_counts();
    println!(
        "{context}: tso_frames {} tso_segments {} segments_sent {}; port gso_frames {} \
         checksum_trusted {} tx_packets {}",
        tcp.tso_frames,
        tcp.tso_segments,
        tcp.segments_sent,
        port.gso_frames,
        port.checksum_trusted,
        port.tx_packets
    );
    assert_eq!(port.rx_super_frames, 0, "{context}: super-frames dropped");
    assert_eq!(port.ring_drops, 0, "{context}: receive ring overflowed");
    if offloads {
        assert!(tcp.tso_frames > 0, "{context}: no super-segment: {tcp:?}");
        assert!(tcp.tso_segments >= 2 * tcp.tso_frames, "{context}: {tcp:?}");
        assert_eq!(
            port.gso_frames, tcp.tso_frames,
            "{context}: port gso frames"
        );
        assert!(port.checksum_trusted > 0, "{context}: no checksum trusted");
        assert_eq!(port.cut_in_software, 0, "{context}: cut in software");
    } else {
        assert_eq!((tcp.tso_frames, port.gso_frames), (0, 0), "{context}");
        if !port.trusts_without_offloads {
            assert_eq!(port.checksum_trusted, 0, "{context}");
        }
    }
}

/// How the kernel saw a clean transfer over the lossless TAP, from its
/// counters' growth `d` over it: `opens` connections opened its way
/// (`TcpActiveOpens` for its client, `TcpPassiveOpens` for its server),
/// none reset either way, no bad segment, no challenge ACK or PAWS drop,
/// nothing out of order, and no loss recovery: no fast retransmit, SACK
/// recovery or timeout. Either side may still send a tail loss probe
/// (RFC 8985: the kernel's PTO is max(2 SRTT, 10 ms), tpa's 2 SRTT at
/// least 2 ms, which a loaded machine or a delayed ACK outlasts): every
/// kernel retransmission must be one of its probes (tpa reports such a
/// duplicate with a DSACK, counted in `TcpExtTCPDSACKRecv`), and every
/// tpa retransmission one of tpa's probes (`tpa`, its table's counters):
/// the kernel's DSACKs for duplicates it got (`TcpExtTCPDSACKOldSent`)
/// number no more than those.
///
/// One exception, never taken silently: when tpa's loop itself stopped
/// for [`STALL`] or longer (`stall`, the longest gap between two of its
/// iterations: a loaded machine that did not schedule its thread), the
/// kernel may have timed out waiting for an ACK tpa could not send, and
/// the retransmissions that follow (timeouts, a lost retransmission, an
/// undo, tpa's own resends) are allowed; resets, bad segments, challenge
/// ACKs, PAWS drops, reordering and fast retransmits never are.
fn assert_clean_transfer(
    d: &Counters,
    tpa: &TcpCounters,
    opens: (&str, u64),
    stall: Duration,
    context: &str,
) {
    let stalled = stall >= STALL;
    // The report's counters, then (for a failure's diagnosis: backlog or
    // queue drops, undo counters…) every other TCP one that moved.
    let moved: Vec<String> = d
        .all()
        .iter()
        .filter(|&(name, &v)| {
            v > 0
                && name.starts_with("Tcp")
                && !tpa_tests::nstat::TCP_REPORT.contains(&name.as_str())
        })
        .map(|(name, v)| format!("{name}={v}"))
        .collect();
    let s = format!("{}; also moved: {}", d.summary(), moved.join(" "));
    println!(
        "{context}: kernel nstat: {s} TcpExtTCPSynRetrans={}; tpa's longest stall {stall:?}",
        d.get("TcpExtTCPSynRetrans")
    );
    let s = format!("{s}; tpa's loop stalled at most {stall:?}");
    assert_eq!(d.get(opens.0), opens.1, "{context}: {}: {s}", opens.0);
    for name in [
        "TcpOutRsts",
        "TcpEstabResets",
        "TcpAttemptFails",
        "TcpExtTCPAbortOnData",
        "TcpExtTCPAbortOnClose",
        "TcpExtTCPFastRetrans",
        "TcpExtTCPSackRecovery",
        "TcpInErrs",
        "TcpInCsumErrors",
        "TcpExtTCPChallengeACK",
        "TcpExtPAWSEstab",
        "TcpExtTCPOFOQueue",
    ] {
        assert_eq!(d.get(name), 0, "{context}: {name}: {s}");
    }
    let segments = d.get("TcpInSegs");
    assert!(
        segments as usize >= LEN / 65536,
        "{context}: {segments} segments in for a megabyte: {s}"
    );
    if stalled {
        println!("{context}: tpa's loop stalled {stall:?}: the kernel's timeouts are allowed");
        return;
    }
    for name in [
        "TcpExtTCPTimeouts",
        "TcpExtTCPLostRetransmit",
        "TcpExtTCPSpuriousRTOs",
    ] {
        assert_eq!(d.get(name), 0, "{context}: {name}: {s}");
    }
    let retrans = d.get("TcpRetransSegs");
    let syn_retrans = d.get("TcpExtTCPSynRetrans");
    assert!(
        retrans <= d.get("TcpExtTCPLossProbes") + syn_retrans,
        "{context}: a retransmission that was not a tail loss probe or a SYN's \
         (TcpExtTCPSynRetrans {syn_retrans}): {s}"
    );
    assert!(
        tpa.retransmitted_segments <= tpa.loss_probes,
        "{context}: tpa retransmitted a segment other than a loss probe's: {tpa:?}"
    );
    let duplicates = d.get("TcpExtTCPDSACKOldSent");
    assert!(
        duplicates <= tpa.retransmitted_segments,
        "{context}: the kernel got {duplicates} duplicates, tpa sent {} segments again: {tpa:?}",
        tpa.retransmitted_segments
    );
}

/// The link delivered the kernel's segments to tpa in order: tpa's
/// connection saw none ahead of a hole. (A veth without
/// [`Netns::in_order_receive`] reorders them, and the kernel then
/// retransmits what tpa SACKed around: the fast retransmits
/// [`assert_clean_transfer`] refuses.)
fn assert_in_order(peer: &Peer, context: &str) {
    assert_eq!(
        peer.out_of_order, 0,
        "{context}: segments from the kernel arrived out of order"
    );
}

/// A kernel client sends a megabyte to tpa's echo server and gets it back:
/// the sha256 of what it sent equals that of what it received. Over a TAP.
#[test]
fn a_kernel_client_gets_its_megabyte_echoed_by_tpa() {
    let pool = pool();
    for (v6, offloads) in CASES {
        let ns = Via::Tap.namespace("tk-s", v6, offloads);
        let h = host(&ns, &pool, Peer::default(), offloads);
        kernel_client_echoed(&ns, h, v6, offloads, "tap");
    }
    pool.assert_whole();
}

/// The same over a veth pair, tpa's end an AF_PACKET port on its default
/// rings.
#[test]
fn a_kernel_client_gets_its_megabyte_echoed_by_tpa_over_af_packet() {
    let pool = pool();
    for (v6, offloads) in CASES {
        let ns = Via::Veth.namespace("tkv-s", v6, offloads);
        let config = AfPacketConfig {
            offloads,
            ..AfPacketConfig::new("vt")
        };
        let h = veth_host(&ns, &pool, Peer::default(), config);
        kernel_client_echoed(&ns, h, v6, offloads, "af_packet");
    }
    pool.assert_whole();
}

/// One case of the kernel client's megabyte echoed by `h`, tpa's host in
/// `ns` (2001:db8::2 or 192.0.2.2 as `v6` says).
fn kernel_client_echoed<P: Offloading>(
    ns: &Netns,
    mut h: Host<P>,
    v6: bool,
    offloads: bool,
    via: &str,
) {
    let any: SocketAddr = if v6 { "[::]:5001" } else { "0.0.0.0:5001" }
        .parse()
        .unwrap();
    let iface = h.state.egress.interface().clone();
    h.state.sockets.listen(any, 4, &iface).expect("listen");
    let done_flag = AtomicBool::new(false);
    let done = &done_flag;
    let to = if v6 { "2001:db8::2" } else { "192.0.2.2" };
    let out = thread::scope(|s| {
        let tpa = s.spawn(move || {
            let mut stall = Stall::default();
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) && start.elapsed() < PATIENCE {
                stall.tick();
                h.run_once();
            }
            (h, stall.longest)
        });
        let done_on_exit = SetOnDrop(done);
        let before = Counters::read(ns);
        let report = TcpPeer::new(ns).echo(SocketAddr::new(to.parse().unwrap(), 5001), LEN as u64);
        let seen = Counters::read(ns).delta(&before);
        drop(done_on_exit);
        let (h, stall) = tpa.join().expect("tpa thread");
        (report, seen, h, stall)
    });
    let (report, seen, mut h, stall) = out;
    let context = format!("{via} v6 {v6} offloads {offloads}: kernel client");
    assert_clean_transfer(
        &seen,
        &h.state.sockets.counters(),
        ("TcpActiveOpens", 1),
        stall,
        &context,
    );
    assert_offloads_used(&mut h, offloads, &context);
    assert_eq!(
        report.received_sha256, report.sent_sha256,
        "{context}: the echo differs: {report}"
    );
    assert_eq!(report.received, LEN as u64, "{context}: {report}");
    assert_eq!(report.cc, "cubic", "{context}: {report}");
    assert_eq!((h.app.received, h.app.sent), (LEN, LEN), "{context}");
    assert!(h.app.errors.is_empty(), "{context}: {:?}", h.app.errors);
    assert_in_order(&h.app, &context);
    println!(
        "{context}: kernel client -> tpa echo, 1 MiB each way, sha256 {} ({:?})",
        report.received_sha256,
        h.state.sockets.counters()
    );
}

/// Byte `i` of the client's stream.
fn byte(i: usize) -> u8 {
    let z = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((z ^ (z >> 29)) >> 24) as u8
}

/// tpa's client sends a megabyte to a kernel echo server: the echo comes
/// back byte for byte, and the server's sha256 of what it received is the
/// sha256 of what tpa sent. Over a TAP.
#[test]
fn tpa_sends_a_megabyte_to_a_kernel_echo_server() {
    let pool = pool();
    let data: Vec<u8> = (0..LEN).map(byte).collect();
    for (v6, offloads) in CASES {
        let ns = Via::Tap.namespace("tk-c", v6, offloads);
        tpa_client_echoed(&ns, &data, v6, offloads, "tap", |app| {
            host(&ns, &pool, app, offloads)
        });
    }
    pool.assert_whole();
}

/// The same over a veth pair, tpa's end an AF_PACKET port sending with
/// `sendmmsg` and receiving through the block ring.
#[test]
fn tpa_sends_a_megabyte_to_a_kernel_echo_server_over_af_packet() {
    let pool = pool();
    let data: Vec<u8> = (0..LEN).map(byte).collect();
    for (v6, offloads) in CASES {
        let ns = Via::Veth.namespace("tkv-c", v6, offloads);
        tpa_client_echoed(&ns, &data, v6, offloads, "af_packet", |app| {
            let config = AfPacketConfig {
                offloads,
                tx_path: TxPath::Sendmmsg,
                rx_mode: RxMode::throughput(),
                ..AfPacketConfig::new("vt")
            };
            veth_host(&ns, &pool, app, config)
        });
    }
    pool.assert_whole();
}

/// One case of tpa's client sending `data` to a kernel echo server in
/// `ns`, on the host `open` builds around the client.
fn tpa_client_echoed<P: Offloading>(
    ns: &Netns,
    data: &[u8],
    v6: bool,
    offloads: bool,
    via: &str,
    open: impl FnOnce(Peer) -> Host<P>,
) {
    let want = sha256(data);
    let context = format!("{via} v6 {v6} offloads {offloads}: kernel server");
    let server = if v6 { "2001:db8::1" } else { "192.0.2.1" };
    let before = Counters::read(ns);
    let peer = TcpPeer::new(ns).serve_echo(SocketAddr::new(server.parse().unwrap(), 5002));
    let app = Peer {
        remote: Some(SocketAddr::new(server.parse().unwrap(), 5002)),
        data: data.to_vec(),
        ..Peer::default()
    };
    let mut h = open(app);
    let start = Instant::now();
    let mut stall = Stall::default();
    while !(h.app.closed && h.app.eof) {
        stall.tick();
        h.run_once();
        assert!(
            start.elapsed() < PATIENCE,
            "{context}: stuck: sent {} received {} eof {} errors {:?}",
            h.app.sent,
            h.app.received,
            h.app.eof,
            h.app.errors
        );
    }
    // Run on until the connection is in TIME_WAIT (the kernel's FIN
    // acknowledged) or gone: a host stopped at close leaves that ACK
    // unsent, and the kernel's timeout resending its FIN is ours, not
    // the link's.
    while h.state.sockets.len() > h.state.sockets.time_wait_count() {
        stall.tick();
        h.run_once();
        assert!(
            start.elapsed() < PATIENCE,
            "{context}: the connection never reached TIME_WAIT"
        );
    }
    h.run_once();
    let report = peer.finish();
    let seen = Counters::read(ns).delta(&before);
    assert_clean_transfer(
        &seen,
        &h.state.sockets.counters(),
        ("TcpPassiveOpens", 1),
        stall.longest,
        &context,
    );
    assert_offloads_used(&mut h, offloads, &context);
    assert_eq!(
        report.received_sha256, want,
        "{context}: the kernel got other bytes: {report}"
    );
    assert_eq!(report.received, LEN as u64, "{context}: {report}");
    assert_eq!(report.cc, "cubic", "{context}: {report}");
    assert_eq!((h.app.sent, h.app.received), (LEN, LEN), "{context}");
    assert_eq!(h.app.mismatch, None, "{context}");
    assert!(h.app.errors.is_empty(), "{context}: {:?}", h.app.errors);
    assert_in_order(&h.app, &context);
    println!("{context}: tpa client -> kernel echo, 1 MiB each way, sha256 {want}");
}

/// tpa's server for the TIME_WAIT test: sends every connection it accepts
/// `data`, shuts it at once (its FIN goes first, so TIME_WAIT is on tpa's
/// side) and closes it at the peer's end of stream.
#[derive(Default)]
struct Source {
    data: Vec<u8>,
    /// Open connections and the bytes sent on each.
    conns: Vec<(SocketId, usize)>,
    closed: usize,
    errors: Vec<SocketError>,
}

impl Source {
    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let mut work = 0;
        let mut i = 0;
        while i < self.conns.len() {
            let (s, mut sent) = self.conns[i];
            while sent < self.data.len() {
                match tcp::send(cx, s, &self.data[sent..]) {
                    Ok(0) | Err(SocketError::WouldBlock) => break,
                    Ok(n) => {
                        sent += n;
                        work += 1;
                        if sent == self.data.len() {
                            if let Err(e) = tcp::shutdown(cx, s) {
                                self.errors.push(e);
                            }
                        }
                    }
                    Err(e) => {
                        self.errors.push(e);
                        sent = self.data.len();
                    }
                }
            }
            self.conns[i].1 = sent;
            let eof = loop {
                match tcp::recv(cx, s) {
                    Ok(Some(_)) => work += 1,
                    Ok(None) => break true,
                    Err(SocketError::WouldBlock) => break false,
                    Err(e) => {
                        self.errors.push(e);
                        break true;
                    }
                }
            };
            if eof && sent == self.data.len() {
                tcp::close(cx, s).expect("close");
                self.conns.swap_remove(i);
                self.closed += 1;
                work += 1;
            } else {
                i += 1;
            }
        }
        work
    }
}

impl App<B, HostState> for Source {
    fn accepted(&mut self, _listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.conns.push((socket, 0));
        self.step(cx);
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
        self.step(cx)
    }
}

/// A kernel client reconnecting from the port of a connection tpa closed
/// first (tpa holds it in TIME_WAIT) is let in at once (RFC 6191, as
/// Linux's own TIME_WAIT lets it in): no SYN retransmitted, no reset
/// either way, both connections' bytes intact, the reuse counted.
#[test]
fn a_kernel_client_reconnecting_from_its_port_gets_past_tpas_time_wait() {
    const N: usize = 64 * 1024;
    let pool = pool();
    let data: Vec<u8> = (0..N).map(byte).collect();
    let want = sha256(&data);
    for v6 in [false, true] {
        let context = format!("v6 {v6}: TIME_WAIT reuse");
        let ns = Netns::with_tap(if v6 { "tk-tw6" } else { "tk-tw4" });
        let app = Source {
            data: data.clone(),
            ..Source::default()
        };
        let state = HostState::new(
            iface(TPA_MAC, 2),
            TcpConfig::default(),
            std::process::id().into(),
        );
        let mut h = TcpHost::build(open_tap_with(&ns, &pool, TPA_MAC, false), state, app);
        let to: SocketAddr = if v6 {
            "[2001:db8::2]:5003"
        } else {
            "192.0.2.2:5003"
        }
        .parse()
        .unwrap();
        let iface = h.state.egress.interface().clone();
        h.state.sockets.listen(to, 4, &iface).expect("listen");
        let done_flag = AtomicBool::new(false);
        let done = &done_flag;
        let (reports, seen, h) = thread::scope(|s| {
            let tpa = s.spawn(move || {
                h.serve(done, PATIENCE);
                h
            });
            let done_on_exit = SetOnDrop(done);
            let before = Counters::read(&ns);
            let mut peer = TcpPeer::new(&ns);
            peer.check = false;
            peer.bind_port = Some(40_000);
            let first = peer.recv(to);
            // tpa's side is in TIME_WAIT once the kernel's FIN is in:
            // the kernel's close returned before tpa saw it.
            thread::sleep(Duration::from_millis(100));
            let second = peer.recv(to);
            let seen = Counters::read(&ns).delta(&before);
            drop(done_on_exit);
            ([first, second], seen, tpa.join().expect("tpa thread"))
        });
        let s = seen.summary();
        println!("{context}: kernel nstat: {s}");
        assert_eq!(seen.get("TcpActiveOpens"), 2, "{context}: {s}");
        for name in [
            "TcpExtTCPSynRetrans",
            "TcpOutRsts",
            "TcpAttemptFails",
            "TcpEstabResets",
        ] {
            assert_eq!(seen.get(name), 0, "{context}: {name}: {s}");
        }
        for r in &reports {
            assert_eq!(
                (r.received, &r.received_sha256),
                (N as u64, &want),
                "{context}: {r}"
            );
        }
        let counters = h.state.sockets.counters();
        println!("{context}: {counters:?}");
        assert_eq!(
            (counters.passive_opens, counters.time_wait_reuses),
            (2, 1),
            "{context}: {counters:?}"
        );
        assert_eq!(h.state.sockets.time_wait_count(), 1, "{context}");
        assert_eq!(h.app.closed, 2, "{context}");
        assert!(h.app.errors.is_empty(), "{context}: {:?}", h.app.errors);
        drop(h);
    }
    pool.assert_whole();
}
