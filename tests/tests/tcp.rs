//! TCP end to end between two tpa pipelines over a MemoryWire on a
//! virtual clock: a client connects, both ends send a seeded byte stream
//! and check every byte they receive, both close, TIME_WAIT runs out, and
//! every socket is gone and every buffer back. Then the same over an
//! impaired wire (loss, reordering, duplicates) for a few seeds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf};
use tpa::port::memory::{Direction, End, Impairment, WireConfig};
use tpa::port::steer::{Handover, ShareAnswers};
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::time::VirtualClock;
use tpa::wire::MacAddr;
use tpa_stages::iface::Interface;
use tpa_stages::pcap::PcapCapture;
use tpa_stages::tcp;
use tpa_stages::tcp::config::{SynCookieMode, TcpConfig};
use tpa_stages::tcp::TcpCounters;
use tpa_tests::tcp_host::{iface, memory_wire, virtual_step, HostState, TcpHost, B, MAC_A, MAC_B};

const PORT: u16 = 5001;
const MB: usize = 1 << 20;

/// One end of a transfer: sends `len` bytes of its seeded stream, checks
/// the peer's, half-closes when done sending, closes when both are done.
struct Bulk {
    /// The server listens on this; the client connects to `remote`.
    listener: Option<SocketId>,
    remote: Option<SocketAddr>,
    /// The client connects from this address (else an ephemeral port).
    local: Option<SocketAddr>,
    started: bool,
    socket: Option<SocketId>,
    /// Seeds of what this end sends and what it expects.
    send_seed: u64,
    recv_seed: u64,
    len: usize,
    sent: usize,
    received: usize,
    /// The first offset where a received byte differed.
    mismatch: Option<usize>,
    eof: bool,
    shut: bool,
    closed: bool,
    errors: Vec<SocketError>,
    accepted_events: usize,
    /// Buffers `tcp::recv` handed out as chains (a gathering wire's
    /// frames: the sender's send-queue chunk behind an emptied header).
    chained_reads: usize,
    /// The server keeps its listener open after its one connection.
    keep_listener: bool,
    /// Half-closes only after the peer's stream ended (so the peer
    /// closes first).
    shut_after_eof: bool,
}

impl Bulk {
    fn new(send_seed: u64, recv_seed: u64, len: usize) -> Self {
        Bulk {
            listener: None,
            remote: None,
            local: None,
            started: false,
            socket: None,
            send_seed,
            recv_seed,
            len,
            sent: 0,
            received: 0,
            mismatch: None,
            eof: false,
            shut: false,
            closed: false,
            errors: Vec::new(),
            accepted_events: 0,
            chained_reads: 0,
            keep_listener: false,
            shut_after_eof: false,
        }
    }

    fn done(&self) -> bool {
        self.closed
    }

    /// Sends what the queue takes; half-closes once everything is queued;
    /// closes once the peer's stream ended too.
    fn pump(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(s) = self.socket else { return 0 };
        if self.closed {
            return 0;
        }
        let mut work = 0;
        let mut chunk = [0u8; 4096];
        while self.sent < self.len {
            let n = chunk.len().min(self.len - self.sent);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = byte(self.send_seed, self.sent + i);
            }
            match tcp::send(cx, s, &chunk[..n]) {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(k) => {
                    self.sent += k;
                    work += 1;
                }
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
        }
        if self.sent == self.len && !self.shut && (self.eof || !self.shut_after_eof) {
            self.shut = true;
            if let Err(e) = tcp::shutdown(cx, s) {
                self.errors.push(e);
            }
            work += 1;
        }
        if self.shut && self.eof {
            tcp::close(cx, s).expect("close an open connection");
            self.closed = true;
            work += 1;
        }
        work
    }

    /// Reads everything waiting, zero-copy, checking each byte.
    fn drain(&mut self, cx: &mut Cx<'_, B, HostState>) {
        let Some(s) = self.socket else { return };
        if self.closed {
            return;
        }
        loop {
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => {
                    if buf.is_chained() {
                        self.chained_reads += 1;
                    }
                    for segment in buf.segments() {
                        for &b in segment {
                            if self.mismatch.is_none() && b != byte(self.recv_seed, self.received) {
                                self.mismatch = Some(self.received);
                            }
                            self.received += 1;
                        }
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
    }
}

/// Byte `i` of the stream seeded `seed`.
fn byte(seed: u64, i: usize) -> u8 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z >> 56) as u8
}

impl App<B, HostState> for Bulk {
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.accepted_events += 1;
        // The poll-style call hands out the same connection.
        let (popped, _) = tcp::accept(cx, listener).expect("the accept queue holds it");
        assert_eq!(popped, socket);
        self.socket = Some(socket);
        // One connection is all this server takes.
        if !self.keep_listener {
            tcp::close(cx, listener).expect("close the listener");
            self.listener = None;
        }
        self.pump(cx);
    }

    fn readable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.drain(cx);
        self.pump(cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.socket = Some(socket);
        self.pump(cx);
    }

    fn peer_closed(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.drain(cx);
        self.pump(cx);
    }

    fn error(&mut self, _socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.errors.push(error);
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        if !self.started {
            self.started = true;
            if let Some(remote) = self.remote {
                let s = match self.local {
                    Some(local) => tcp::connect_from(cx, local, remote),
                    None => tcp::connect(cx, remote),
                };
                self.socket = Some(s.expect("connect"));
            }
            return 1;
        }
        self.pump(cx)
    }
}

type Host<P> = TcpHost<P, Bulk>;

fn host<P: Port<Buf = B>>(
    port: P,
    iface: Interface,
    seed: u64,
    app: Bulk,
    capture: Option<PcapCapture>,
) -> Host<P> {
    host_with(port, iface, seed, app, capture, TcpConfig::default())
}

/// [`host`] with the TCP knobs `cfg`.
fn host_with<P: Port<Buf = B>>(
    port: P,
    iface: Interface,
    seed: u64,
    app: Bulk,
    capture: Option<PcapCapture>,
    cfg: TcpConfig,
) -> Host<P> {
    TcpHost::build(port, HostState::new(iface, cfg, seed), app).capturing(capture)
}

/// What a run ended with.
struct Outcome {
    client: Bulk,
    server: Bulk,
    /// The client's and the server's table counters once every socket is
    /// gone.
    tables: [TcpCounters; 2],
    virtual_ms: u64,
}

/// Runs a transfer of `len` bytes each way over a wire impaired by `imp`
/// (both directions), seeded by `seed`, over IPv4 or IPv6; panics (naming
/// the seed) if it does not finish within `limit` of virtual time.
fn transfer(seed: u64, v6: bool, len: usize, imp: Impairment, limit: Duration) -> Outcome {
    transfer_captured(seed, v6, len, imp, limit, None, 1)
}

/// [`transfer`], with the client's frames (both ways) captured by
/// `capture`, over a wire that gathers `max_segments` segments per frame
/// ([`WireConfig::max_segments`]).
fn transfer_captured(
    seed: u64,
    v6: bool,
    len: usize,
    imp: Impairment,
    limit: Duration,
    capture: Option<PcapCapture>,
    max_segments: usize,
) -> Outcome {
    let clock = VirtualClock::new();
    let (pool, wire) = memory_wire(
        format!("tcp-{seed}"),
        &clock,
        WireConfig {
            seed,
            max_segments,
            ..WireConfig::default()
        }
        .impair_both(imp),
    );
    let server_ip: IpAddr = if v6 {
        "2001:db8::2".parse().unwrap()
    } else {
        "192.0.2.2".parse().unwrap()
    };
    let mut client_app = Bulk::new(seed ^ 1, seed ^ 2, len);
    client_app.remote = Some(SocketAddr::new(server_ip, PORT));
    let server_app = Bulk::new(seed ^ 2, seed ^ 1, len);
    let mut a = host(
        wire.port(End::A, 0).unwrap(),
        iface(MAC_A, 1),
        seed,
        client_app,
        capture,
    )
    .with_time_source(clock.clone().into());
    let mut b = host(
        wire.port(End::B, 0).unwrap(),
        iface(MAC_B, 2),
        !seed,
        server_app,
        None,
    )
    .with_time_source(clock.clone().into());
    let any: SocketAddr = if v6 { "[::]:5001" } else { "0.0.0.0:5001" }
        .parse()
        .unwrap();
    let listener = b
        .state
        .sockets
        .listen(any, 16, &iface(MAC_B, 2))
        .expect("listen");
    b.app.listener = Some(listener);

    let start = clock.now_ns();
    let deadline = start + limit.as_nanos() as u64;
    loop {
        let now = clock.now_ns();
        let sa = a.run_once_at(now);
        let sb = b.run_once_at(now);
        let finished = a.app.done()
            && b.app.done()
            && a.state.sockets.is_empty()
            && b.state.sockets.is_empty();
        if finished {
            break;
        }
        assert!(
            now < deadline,
            "seed {seed} v6 {v6}: not finished after {limit:?} of virtual time: client sent {} \
             received {} eof {} closed {} errors {:?}; server sent {} received {} eof {} closed {} \
             errors {:?}; sockets {:?} / {:?}; tables {:?} / {:?}; egress {:?} / {:?}",
            a.app.sent,
            a.app.received,
            a.app.eof,
            a.app.closed,
            a.app.errors,
            b.app.sent,
            b.app.received,
            b.app.eof,
            b.app.closed,
            b.app.errors,
            a.state
                .sockets
                .iter()
                .map(|(id, st)| (st, a.state.sockets.info(id)))
                .collect::<Vec<_>>(),
            b.state
                .sockets
                .iter()
                .map(|(id, st)| (st, b.state.sockets.info(id)))
                .collect::<Vec<_>>(),
            a.state.sockets.counters(),
            b.state.sockets.counters(),
            a.state.egress.counters(),
            b.state.egress.counters(),
        );
        let in_flight =
            wire.stats(Direction::AToB).in_flight + wire.stats(Direction::BToA).in_flight;
        let step = virtual_step(now, &[sa, sb], &[], in_flight, 1_000_000);
        clock.advance_ns(step);
    }
    let virtual_ms = (clock.now_ns() - start) / 1_000_000;
    assert!(a.tcp4().stats.consumed + b.tcp4().stats.consumed > 0 || v6);
    let tables = [a.state.sockets.counters(), b.state.sockets.counters()];
    let TcpHost { app: client, .. } = a;
    let TcpHost { app: server, .. } = b;
    drop(wire);
    pool.assert_whole();
    Outcome {
        client,
        server,
        tables,
        virtual_ms,
    }
}

fn check(o: &Outcome, seed: u64, len: usize) {
    for (name, end) in [("client", &o.client), ("server", &o.server)] {
        assert_eq!(end.sent, len, "seed {seed}: {name} sent");
        assert_eq!(end.received, len, "seed {seed}: {name} received");
        assert_eq!(end.mismatch, None, "seed {seed}: {name} got a wrong byte");
        assert!(end.eof && end.closed, "seed {seed}: {name} finished");
        assert!(
            end.errors.is_empty(),
            "seed {seed}: {name}: {:?}",
            end.errors
        );
    }
    assert_eq!(o.server.accepted_events, 1);
}

#[test]
fn a_megabyte_each_way_arrives_intact_and_every_socket_closes() {
    for v6 in [false, true] {
        let o = transfer(1, v6, MB, Impairment::default(), Duration::from_secs(300));
        check(&o, 1, MB);
        for t in o.tables {
            // A wire that loses nothing and a virtual clock that never
            // outruns an ACK: nothing is sent twice, not even a probe.
            assert_eq!(
                (t.retransmitted_segments, t.loss_probes),
                (0, 0),
                "v6 {v6}: {t:?}"
            );
        }
        println!(
            "v6 {v6}: 1 MB each way, closed, TIME_WAIT over: {} ms virtual",
            o.virtual_ms
        );
    }
}

/// A client reconnecting from the port of a connection the server closed
/// first (so the server holds it in TIME_WAIT) is let in at once (RFC
/// 6191: its timestamps, with timestamps; its ISN, without), and both
/// connections move their bytes.
#[test]
fn a_client_reconnecting_from_its_port_gets_past_the_servers_time_wait() {
    for (v6, timestamps) in [(false, true), (true, true), (false, false)] {
        let seed = 11;
        let what = format!("seed {seed} v6 {v6} timestamps {timestamps}");
        let clock = VirtualClock::new();
        let (pool, wire) = memory_wire(
            "tcp-reuse".into(),
            &clock,
            WireConfig {
                seed,
                ..WireConfig::default()
            },
        );
        let (client_ip, server_ip): (IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            )
        } else {
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        };
        let cfg = TcpConfig {
            timestamps,
            ..TcpConfig::default()
        };
        let len = 64 * 1024;
        // The server sends nothing and shuts its side at once: its FIN
        // goes first, so TIME_WAIT is on its side.
        let round = |n: u64| {
            let mut client = Bulk::new(n, n + 100, len);
            client.remote = Some(SocketAddr::new(server_ip, PORT));
            client.local = Some(SocketAddr::new(client_ip, 40_000));
            client.shut_after_eof = true;
            let mut server = Bulk::new(n + 100, n, 0);
            server.keep_listener = true;
            (client, server)
        };
        let (client, server) = round(1);
        let mut a = host_with(
            wire.port(End::A, 0).unwrap(),
            iface(MAC_A, 1),
            seed,
            client,
            None,
            cfg.clone(),
        )
        .with_time_source(clock.clone().into());
        let mut b = host_with(
            wire.port(End::B, 0).unwrap(),
            iface(MAC_B, 2),
            !seed,
            server,
            None,
            cfg.clone(),
        )
        .with_time_source(clock.clone().into());
        let listener = b
            .state
            .sockets
            .listen(SocketAddr::new(server_ip, PORT), 16, &iface(MAC_B, 2))
            .expect("listen");
        for n in 1..=2 {
            if n == 2 {
                let (client, mut server) = round(2);
                server.listener = Some(listener);
                a.app = client;
                b.app = server;
            }
            b.app.listener = Some(listener);
            let deadline = clock.now_ns() + 60_000_000_000;
            loop {
                let now = clock.now_ns();
                let sa = a.run_once_at(now);
                let sb = b.run_once_at(now);
                if a.app.done() && b.app.done() && a.state.sockets.is_empty() {
                    break;
                }
                assert!(
                    now < deadline,
                    "{what}: round {n} stuck: client {:?} {:?}, server {:?} {:?}",
                    a.app.errors,
                    a.state.sockets.counters(),
                    b.app.errors,
                    b.state.sockets.counters()
                );
                let in_flight =
                    wire.stats(Direction::AToB).in_flight + wire.stats(Direction::BToA).in_flight;
                clock.advance_ns(virtual_step(now, &[sa, sb], &[], in_flight, 1_000_000));
            }
            for (name, end, sent, received) in
                [("client", &a.app, len, 0), ("server", &b.app, 0, len)]
            {
                assert_eq!((end.sent, end.received), (sent, received), "{what}: {name}");
                assert_eq!(end.mismatch, None, "{what}: {name} got a wrong byte");
                assert!(end.errors.is_empty(), "{what}: {name}: {:?}", end.errors);
            }
            assert_eq!(b.app.accepted_events, 1, "{what}: round {n}");
            let counters = b.state.sockets.counters();
            assert_eq!(
                (counters.passive_opens, counters.time_wait_reuses),
                (n, n - 1),
                "{what}: round {n}: {counters:?}"
            );
            assert_eq!(b.state.sockets.time_wait_count(), 1, "{what}: round {n}");
            // The next SYN's timestamp must be newer than the last one
            // the server saw (a millisecond passes); without timestamps
            // its ISN must be above the old RCV.NXT: RFC 6528's clock
            // (4 µs a step) must have moved past the 64 KiB sent, so a
            // second passes.
            clock.advance_ns(1_000_000_000);
        }
        assert_eq!(a.state.sockets.counters().active_opens, 2, "{what}");
        b.state.sockets.close(listener).expect("close the listener");
        while !b.state.sockets.is_empty() {
            let now = clock.now_ns();
            b.run_once_at(now);
            a.run_once_at(now);
            clock.advance_ns(1_000_000_000);
        }
        drop((a, b, wire));
        pool.assert_whole();
    }
}

#[test]
fn an_impaired_wire_loses_no_byte() {
    let imp = Impairment {
        // The mix of the simulation proof.
        drop: 0.05,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_distance: 4,
        reorder_timeout: Duration::from_millis(5),
        delay: Duration::from_micros(200),
        corrupt: 0.01,
        corrupt_bits: 1,
        truncate: 0.01,
        ..Impairment::default()
    };
    // 200 seeds by default (alternating IPv4 and IPv6); more, or others,
    // from the environment for a longer run:
    // TPA_TCP_SEEDS=1000 TPA_TCP_FIRST_SEED=11 cargo test -p tpa-tests --test tcp impaired
    let seeds: u64 = std::env::var("TPA_TCP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let first: u64 = std::env::var("TPA_TCP_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    for seed in first..first + seeds {
        let v6 = seed % 2 == 0;
        // Half the seeds (both families) over a wire that gathers: data
        // segments cross as chains sharing the sender's chunks, and the
        // impairments that write copy them first.
        let max_segments = if seed % 4 >= 2 { 4 } else { 1 };
        // TPA_TCP_PCAP=file captures the client's frames of a replayed seed.
        let capture = std::env::var("TPA_TCP_PCAP")
            .ok()
            .map(|p| PcapCapture::create(p).unwrap());
        let o = transfer_captured(
            seed,
            v6,
            MB / 4,
            imp.clone(),
            Duration::from_secs(900),
            capture,
            max_segments,
        );
        check(&o, seed, MB / 4);
        for end in [&o.client, &o.server] {
            // Chains reach the application only over a gathering wire.
            assert_eq!(
                end.chained_reads > 0,
                max_segments > 1,
                "seed {seed}: {} chained reads over a wire gathering {max_segments}",
                end.chained_reads
            );
        }
        // 5% loss of ~200 data segments each way: both ends resend.
        for t in o.tables {
            assert!(t.retransmitted_segments > 0, "seed {seed}: {t:?}");
        }
        println!(
            "seed {seed} v6 {v6}: 256 KiB each way over 5% loss, 2% dup, 5% reorder, 1% corrupt, 1% cut: {} ms virtual",
            o.virtual_ms
        );
    }
}

/// Every segment both ends sent in a clean transfer, read by tshark (the
/// real Wireshark dissectors): checksums good, the SYN's options as
/// announced, no retransmission, no out-of-order or lost segment in
/// tshark's sequence analysis, and the handshake and both FINs present.
#[test]
fn tshark_reads_every_segment_of_a_transfer_as_good() {
    let path = std::env::temp_dir().join(format!("tpa-tcp-{}.pcap", std::process::id()));
    let capture = PcapCapture::create(&path).unwrap();
    let len = 64 * 1024;
    let o = transfer_captured(
        3,
        false,
        len,
        Impairment::default(),
        Duration::from_secs(300),
        Some(capture),
        // A gathering wire: the frames captured both ways are chains,
        // recorded whole.
        4,
    );
    check(&o, 3, len);
    let prefs = [
        "tcp.check_checksum:TRUE",
        "tcp.relative_sequence_numbers:FALSE",
        "tcp.analyze_sequence_numbers:TRUE",
    ];
    let fields = [
        "tcp.flags",
        "tcp.checksum.status",
        "tcp.options.mss_val",
        "tcp.options.wscale.shift",
        "tcp.options.sack_perm",
        "tcp.options.timestamp.tsval",
        "tcp.analysis.flags",
        "tcp.len",
    ];
    let rows = tpa_tests::tshark::fields(&path, &prefs, &fields);
    std::fs::remove_file(&path).unwrap();
    let tcp: Vec<&Vec<String>> = rows.iter().filter(|r| !r[0].is_empty()).collect();
    assert!(tcp.len() > 2 * len / 1460, "{} TCP frames", tcp.len());
    for r in &tcp {
        assert_eq!(r[1], "1", "a bad or unverified checksum: {r:?}");
        assert!(
            r[5].parse::<u32>().is_ok(),
            "timestamps on every segment: {r:?}"
        );
        // Window updates are flagged as analysis notes; nothing else may be.
        assert!(
            r[6].is_empty() || r[6] == "1" && r[7] == "0",
            "tshark flagged {r:?}"
        );
    }
    let syn = tcp.iter().find(|r| r[0] == "0x0002").expect("a SYN");
    // MSS, and SACK permitted present (tshark prints its kind and length).
    assert_eq!(
        (syn[2].as_str(), syn[4].as_str()),
        ("1460", "0402"),
        "{syn:?}"
    );
    assert!(syn[3].parse::<u8>().is_ok(), "window scale: {syn:?}");
    assert!(tcp.iter().any(|r| r[0] == "0x0012"), "a SYN-ACK");
    let fins = tcp
        .iter()
        .filter(|r| u16::from_str_radix(&r[0][2..], 16).unwrap() & 1 != 0)
        .count();
    assert_eq!(fins, 2, "one FIN each way");
    let data: usize = tcp.iter().map(|r| r[7].parse::<usize>().unwrap()).sum();
    assert_eq!(data, 2 * len, "every byte once: no retransmission");
}

/// Active opens land on their own worker: a wire with four queues per
/// end, a pipeline per queue; the client on queue 3 of end A picks a port
/// whose replies the wire's hash steers back to queue 3, so the transfer
/// completes there and no other worker of A sees a segment of it. ARP
/// lands on queue 0 whatever its target: each worker's port shares the
/// answers it gets with the others (`ShareAnswers`), so the workers that
/// asked (A's 3, B's that the SYN lands on) learn their neighbor from a
/// reply received by worker 0.
#[test]
fn an_active_open_picks_a_port_whose_replies_land_on_its_own_queue() {
    let clock = VirtualClock::new();
    let (pool, wire) = memory_wire(
        "tcp-steer".into(),
        &clock,
        WireConfig {
            queues: 4,
            ..WireConfig::default()
        },
    );
    let len = 64 * 1024;
    let server: SocketAddr = "192.0.2.2:5001".parse().unwrap();
    let mut a = Vec::new();
    let mut b = Vec::new();
    let (mut mesh_a, mut mesh_b) = (Handover::mesh(4, 16), Handover::mesh(4, 16));
    for q in 0..4u16 {
        let mut client = Bulk::new(7, 8, len);
        client.started = q != 3; // only queue 3's worker connects
        client.remote = Some(server);
        let port = ShareAnswers::new(wire.port(End::A, q).unwrap(), mesh_a.remove(0));
        let steering = port.steering();
        let mut h = host(port, iface(MAC_A, 1), 100 + u64::from(q), client, None)
            .with_time_source(clock.clone().into());
        h.state.sockets.set_steering(steering);
        a.push(h);
        let port = ShareAnswers::new(wire.port(End::B, q).unwrap(), mesh_b.remove(0));
        let mut h = host(
            port,
            iface(MAC_B, 2),
            200 + u64::from(q),
            Bulk::new(8, 7, len),
            None,
        )
        .with_time_source(clock.clone().into());
        let listener = h
            .state
            .sockets
            .listen("0.0.0.0:5001".parse().unwrap(), 4, &iface(MAC_B, 2))
            .unwrap();
        h.app.listener = Some(listener);
        b.push(h);
    }
    for _ in 0..100_000 {
        let now = clock.now_ns();
        for h in a.iter_mut() {
            h.run_once_at(now);
        }
        for h in b.iter_mut() {
            h.run_once_at(now);
        }
        if a[3].app.done() {
            break;
        }
        clock.advance(Duration::from_micros(100));
    }
    let c = &a[3].app;
    assert_eq!((c.sent, c.received, c.mismatch), (len, len, None));
    assert!(c.closed && c.errors.is_empty(), "{:?}", c.errors);
    for (q, h) in a.iter().enumerate().take(3) {
        let stats = &h.tcp4().stats;
        let seen = stats.total();
        assert_eq!(seen, 0, "worker {q} of A saw a segment: {stats:?}");
    }
    // A's worker 3 and one of B's learned from a copy.
    let copies = |hs: &[Host<ShareAnswers<_>>]| -> u64 {
        hs.iter().map(|h| h.port.stats().copies_received).sum()
    };
    assert!(
        copies(&a) >= 3 && copies(&b) >= 3,
        "{} {}",
        copies(&a),
        copies(&b)
    );
    let served: Vec<usize> = b.iter().map(|h| h.app.received).collect();
    assert_eq!(
        served.iter().filter(|&&n| n == len).count(),
        1,
        "{served:?}"
    );
    drop((a, b, wire));
    pool.assert_whole();
}

/// Spoofed sources of the SYN flood: 192.0.2.100 and up, which the
/// server is taught are behind the client's MAC (a router's), so its
/// SYN-ACKs reach the client's host, which drops them (not its address).
const FLOOD_SOURCES: u8 = 50;

/// Sends `n` SYNs from spoofed sources to 192.0.2.2:5001 out of `h`
/// (frames built by hand: the stack sends only from its own addresses),
/// numbered from `first`, each from its own source port, with the options
/// Linux offers.
fn syn_flood<P: Port<Buf = B>>(h: &mut Host<P>, first: u32, n: u32) {
    h.with_cx(|cx| {
        for i in first..first + n {
            let src = [192, 0, 2, 100 + (i % u32::from(FLOOD_SOURCES)) as u8];
            let mut frame = Vec::new();
            etherparse::PacketBuilder::ethernet2(MAC_A.0, MAC_B.0)
                .ipv4(src, [192, 0, 2, 2], 64)
                .tcp(
                    1024 + (i % 60_000) as u16,
                    PORT,
                    i.wrapping_mul(0x9e37_79b9),
                    64_240,
                )
                .syn()
                .options(&[
                    etherparse::TcpOptionElement::MaximumSegmentSize(1460),
                    etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
                    etherparse::TcpOptionElement::Timestamp(i, 0),
                    etherparse::TcpOptionElement::Noop,
                    etherparse::TcpOptionElement::WindowScale(7),
                ])
                .expect("the options fit")
                .write(&mut frame, &[])
                .expect("a SYN frame");
            let mut buf = cx.alloc().expect("a buffer for a flood SYN");
            buf.extend_from_slice(&frame).expect("the frame fits");
            cx.transmit(buf);
        }
    });
}

#[test]
fn a_client_connects_and_moves_data_through_a_syn_flood_with_cookies() {
    // Backlog 1: the flood's first SYN takes the place (its SYN-ACKs are
    // never answered); every later SYN, the client's among them, finds it
    // full and gets a cookie (on_overflow), or every SYN does (always).
    for mode in [SynCookieMode::OnOverflow, SynCookieMode::Always] {
        let seed = 0x5c00 + mode as u64;
        let len = 256 * 1024;
        let clock = VirtualClock::new();
        let (pool, wire) = memory_wire(
            format!("tcp-flood-{seed}"),
            &clock,
            WireConfig {
                seed,
                ..WireConfig::default()
            },
        );
        let server: SocketAddr = "192.0.2.2:5001".parse().unwrap();
        let mut client_app = Bulk::new(seed ^ 1, seed ^ 2, len);
        client_app.remote = Some(server);
        let mut a = host(
            wire.port(End::A, 0).unwrap(),
            iface(MAC_A, 1),
            seed,
            client_app,
            None,
        )
        .with_time_source(clock.clone().into());
        let cfg = TcpConfig {
            syn_cookies: mode,
            ..TcpConfig::default()
        };
        let mut b = host_with(
            wire.port(End::B, 0).unwrap(),
            iface(MAC_B, 2),
            !seed,
            Bulk::new(seed ^ 2, seed ^ 1, len),
            None,
            cfg,
        )
        .with_time_source(clock.clone().into());
        let listener = b
            .state
            .sockets
            .listen("0.0.0.0:5001".parse().unwrap(), 1, &iface(MAC_B, 2))
            .expect("listen");
        b.app.listener = Some(listener);
        // Listening all along: every flood SYN finds the listener.
        b.app.keep_listener = true;
        know(&mut a, "192.0.2.2", MAC_B);
        for i in 0..FLOOD_SOURCES {
            know(&mut b, &format!("192.0.2.{}", 100 + i), MAC_A);
        }
        // A flood is in flight before the client's SYN, and keeps coming
        // while it connects and sends.
        let (burst, bursts) = (32, 40);
        syn_flood(&mut a, 0, burst);
        let mut sent = burst;
        let mut iterations = 0u64;
        loop {
            let now = clock.now_ns();
            a.run_once_at(now);
            b.run_once_at(now);
            if sent < burst * bursts {
                syn_flood(&mut a, sent, burst);
                sent += burst;
            }
            let idle = wire.stats(Direction::AToB).in_flight == 0;
            if a.app.done() && b.app.done() && sent == burst * bursts && idle {
                break;
            }
            iterations += 1;
            assert!(
                iterations < 200_000,
                "seed {seed} {mode:?}: not finished: client sent {} received {} errors {:?}; \
                 server sent {} received {} errors {:?}; server table {:?} {:?} {:?}",
                a.app.sent,
                a.app.received,
                a.app.errors,
                b.app.sent,
                b.app.received,
                b.app.errors,
                b.state.sockets.counters(),
                b.tcp4().stats,
                wire.stats(Direction::AToB),
            );
            clock.advance(Duration::from_micros(100));
        }
        let c = b.state.sockets.counters();
        let stats = b.tcp4().stats.clone();
        // The only drops: SYNs in the receive burst behind the client's
        // ACK, which found its connection filling the accept queue
        // (backlog 1) before the application took it.
        let backlog_full = stats.dropped(tcp::BACKLOG_FULL);
        assert_eq!(
            stats.dropped_total(),
            backlog_full,
            "seed {seed} {mode:?}: {stats:?}"
        );
        assert!(
            backlog_full < u64::from(burst),
            "seed {seed} {mode:?}: {stats:?}"
        );
        let client = std::mem::replace(&mut a.app, Bulk::new(0, 0, 0));
        let server = std::mem::replace(&mut b.app, Bulk::new(0, 0, 0));
        let tables = [a.state.sockets.counters(), c];
        drop((a, b));
        let o = Outcome {
            client,
            server,
            tables,
            virtual_ms: 0,
        };
        check(&o, seed, len);
        // Every flood SYN but a stateful first (on_overflow) and those
        // dropped above got a cookie, and so did the client's SYN; only
        // the client answered one.
        let stateful = u64::from(mode == SynCookieMode::OnOverflow);
        assert_eq!(c.backlog_drops, backlog_full, "{c:?}");
        assert_eq!(
            c.syn_cookies_sent + c.backlog_drops,
            u64::from(sent) + 1 - stateful,
            "seed {seed} {mode:?}: {c:?}"
        );
        assert!(c.syn_cookies_sent > u64::from(sent) / 2, "{c:?}");
        assert_eq!(
            (c.syn_cookies_validated, c.syn_cookies_failed),
            (1, 0),
            "seed {seed} {mode:?}: {c:?}"
        );
        assert_eq!(c.passive_opens, 1 + stateful, "{c:?}");
        drop(wire);
        pool.assert_whole();
    }
}

/// Teaches `h`'s egress that `ip` is at `mac`.
fn know<P: Port<Buf = B>>(h: &mut Host<P>, ip: &str, mac: MacAddr) {
    h.with_cx(|cx| {
        let (state, port) = cx.split();
        let heard = tpa_stages::neighbor::Heard::Solicitation;
        state
            .egress
            .learn_v4(ip.parse().unwrap(), Some(mac), heard, port);
    });
}

/// The flow rules of a marking device, shared by the test and the port
/// it wraps: a connection's 4-tuple as it arrives (source, destination)
/// to its mark.
type MarkRules =
    std::rc::Rc<std::cell::RefCell<std::collections::HashMap<(SocketAddr, SocketAddr), u32>>>;

/// A port that marks received frames as a NIC with `rte_flow` MARK rules
/// does: a frame whose TCP 4-tuple has a rule carries its mark in
/// `Meta::flow_mark`.
struct Marking<P> {
    port: P,
    rules: MarkRules,
}

impl<P: Port<Buf = B>> Port for Marking<P> {
    type Buf = B;
    fn rx_burst<const N: usize>(&mut self, rx: &mut tpa::port::Burst<B, N>) -> usize {
        let before = rx.len();
        let n = self.port.rx_burst(rx);
        let rules = self.rules.borrow();
        for buf in &mut rx.as_mut_slice()[before..] {
            let flow = tpa::port::steer::Flow::from_frame(buf.data());
            if let Some(&mark) = flow.and_then(|f| rules.get(&(f.src, f.dst))) {
                buf.meta_mut().flow_mark = Some(mark);
            }
        }
        n
    }
    fn tx_burst<const N: usize>(&mut self, tx: &mut tpa::port::Burst<B, N>) -> usize {
        self.port.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<B> {
        self.port.pool()
    }
    fn caps(&self) -> &tpa::port::PortCaps {
        self.port.caps()
    }
}

/// Installs a rule for every connection of `h` that has none, with the
/// mark its table gives (its slot bits xor `skew`: 0 for the right mark);
/// returns how many it installed.
fn install_marks<P: Port<Buf = B>>(h: &Host<P>, rules: &MarkRules, skew: u32) -> usize {
    let mut rules = rules.borrow_mut();
    let mut installed = 0;
    for (id, _) in h.state.sockets.iter() {
        let (Ok(mark), Ok(t)) = (h.state.sockets.flow_mark(id), h.state.sockets.tuple(id)) else {
            continue;
        };
        if rules.insert((t.remote, t.local), mark ^ skew).is_none() {
            installed += 1;
        }
    }
    installed
}

/// The flow-mark fast path on a MemoryWire whose ports mark frames by
/// rules the test installs from each connection's `flow_mark` (as an
/// application would program `rte_flow`): 256 KiB each way arrive
/// intact; past the handshake every segment finds its connection by its
/// mark, none by the 4-tuple lookup. Then a rule is pointed at the wrong
/// slot: every segment of the next transfer is caught (`mark_missed`)
/// and still delivered by the lookup.
#[test]
fn segments_find_their_connection_by_the_ports_flow_mark() {
    for wrong in [false, true] {
        let clock = VirtualClock::new();
        let (pool, wire) = memory_wire("tcp-marks".into(), &clock, WireConfig::default());
        let len = 256 * 1024;
        let (rules_a, rules_b) = (MarkRules::default(), MarkRules::default());
        let mut client = Bulk::new(11, 12, len);
        client.remote = Some("192.0.2.2:5001".parse().unwrap());
        let port = Marking {
            port: wire.port(End::A, 0).unwrap(),
            rules: rules_a.clone(),
        };
        let mut a =
            host(port, iface(MAC_A, 1), 3, client, None).with_time_source(clock.clone().into());
        let port = Marking {
            port: wire.port(End::B, 0).unwrap(),
            rules: rules_b.clone(),
        };
        let mut b = host(port, iface(MAC_B, 2), 4, Bulk::new(12, 11, len), None)
            .with_time_source(clock.clone().into());
        let listener = b
            .state
            .sockets
            .listen("0.0.0.0:5001".parse().unwrap(), 4, &iface(MAC_B, 2))
            .unwrap();
        b.app.listener = Some(listener);
        let mut installed = 0;
        for _ in 0..200_000 {
            let now = clock.now_ns();
            a.run_once_at(now);
            b.run_once_at(now);
            // With `wrong`, the client's rule names a slot of its table
            // that is not its connection's.
            installed +=
                install_marks(&a, &rules_a, u32::from(wrong)) + install_marks(&b, &rules_b, 0);
            if a.app.done() && b.app.done() && a.state.sockets.is_empty() {
                break;
            }
            clock.advance(Duration::from_micros(100));
        }
        let (c, s) = (&a.app, &b.app);
        assert_eq!(
            (c.sent, c.received, c.mismatch),
            (len, len, None),
            "wrong {wrong}"
        );
        assert_eq!(
            (s.sent, s.received, s.mismatch),
            (len, len, None),
            "wrong {wrong}"
        );
        assert_eq!(installed, 2, "one rule per end");
        let (ca, cb) = (a.tcp4().stage.counters(), b.tcp4().stage.counters());
        println!("wrong marks {wrong}: client {ca:?}\nserver {cb:?}");
        assert!(cb.delivered > 100, "{cb:?}");
        // The server's connection is made by the SYN: every later segment
        // comes marked. The client's rule follows its connect, before
        // the SYN-ACK.
        assert_eq!(cb.marked, cb.delivered, "{cb:?}");
        assert_eq!(cb.mark_missed, 0, "{cb:?}");
        if wrong {
            assert_eq!((ca.marked, ca.mark_missed), (0, ca.delivered), "{ca:?}");
        } else {
            assert_eq!((ca.marked, ca.mark_missed), (ca.delivered, 0), "{ca:?}");
        }
        drop((a, b, wire));
        pool.assert_whole();
    }
}
