//! tpa-echo against the Linux kernel, in network namespaces, over veth
//! pairs (and TAP devices for tpa): IPv4 and IPv6.
//!
//! The kernel's side is tests/src/udp_peer.py and, for TCP,
//! tests/src/tcp_peer.py (python3's socket module),
//! written apart from tpa-echo so that tpa-echo is never checked against
//! itself; the kernel modes of tpa-echo (`--kernel`) are checked against it
//! first, since the benchmark uses them as the baseline.
//!
//! Run as root: these tests create namespaces, TAP and veth interfaces.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tpa::worker::StopFlag;
use tpa_echo::{run_client, run_server, ClientConfig, Endpoint, ServerConfig, ServerReport};
use tpa_tests::netns::Netns;
use tpa_tests::tcp_peer::TcpPeer;
use tpa_tests::RaiseOnDrop;

const ECHO_PORT: u16 = 7;

/// The path of the python peer.
fn udp_peer() -> String {
    format!("{}/src/udp_peer.py", env!("CARGO_MANIFEST_DIR"))
}

/// A seed for the python client's random datagrams: the clock's, so runs
/// differ; every failure message carries it.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
}

/// Runs the python client in `ns`: `count` datagrams of 4 to `max_size`
/// bytes to `to`, at most `window` out; asserts every echo came back byte
/// for byte.
fn python_client(ns: &Netns, to: SocketAddr, count: u32, max_size: usize, window: u32) {
    let seed = seed();
    let fam = if to.is_ipv4() { "4" } else { "6" };
    let out = ns.exec_output(&[
        "python3",
        &udp_peer(),
        "client",
        fam,
        &to.ip().to_string(),
        &to.port().to_string(),
        &count.to_string(),
        &max_size.to_string(),
        &window.to_string(),
        &seed.to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == format!("echoed {count}"),
        "python client to {to} (seed {seed}) failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `conns` kernel TCP clients (tests/src/tcp_peer.py `echo`) in `ns`
/// at once, each sending `len` pattern bytes (its own seed) to `to` while
/// reading the echo, half-closing and reading to the end; asserts that
/// each got back exactly what it sent (count and sha256) and that the
/// kernel ran cubic. Returns the bytes sent in all.
fn python_tcp_clients(ns: &Netns, to: SocketAddr, conns: usize, len: usize) -> u64 {
    let reports: Vec<_> = thread::scope(|s| {
        let runs: Vec<_> = (0..conns)
            .map(|i| {
                s.spawn(move || {
                    let mut peer = TcpPeer::new(ns);
                    peer.seed = i as u64 + 1;
                    peer.try_echo(to, len as u64)
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("client thread"))
            .collect()
    });
    for (i, report) in reports.iter().enumerate() {
        let report = report
            .as_ref()
            .unwrap_or_else(|e| panic!("kernel TCP client {i} to {to} failed: {e}"));
        assert_eq!(
            report.sent, len as u64,
            "client {i} to {to}: {}",
            report.line
        );
        assert_eq!(
            report.received, len as u64,
            "client {i} to {to}: {}",
            report.line
        );
        assert_eq!(
            report.received_sha256, report.sent_sha256,
            "client {i} to {to}: the echo differs: {}",
            report.line
        );
        assert_eq!(report.cc, "cubic", "client {i} to {to}: {}", report.line);
    }
    (conns * len) as u64
}

/// Starts the python echo server in `ns` on `addr`; it runs until the
/// returned guard drops.
fn python_server(ns: &Netns, addr: SocketAddr) -> tpa_tests::netns::Background {
    let fam = if addr.is_ipv4() { "4" } else { "6" };
    ns.spawn_until(
        &[
            "python3",
            &udp_peer(),
            "server",
            fam,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ],
        "ready",
    )
}

/// Two namespaces joined by a veth pair: `a` with `va`, `b` with `vb`, both
/// up, with 10.9.0.1/24 + fd09::1/64 on `va` and, when `b_addresses`,
/// 10.9.0.2/24 + fd09::2/64 on `vb` (no DAD: IPv6 is usable at once).
fn veth_pair(tag: &str, b_addresses: bool) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}-a"));
    let b = Netns::new(&format!("{tag}-b"));
    a.add_veth("va", "vb");
    a.ip(&["link", "set", "dev", "vb", "netns", b.name()]);
    a.up("va");
    b.up("vb");
    a.add_addr("va", "10.9.0.1/24");
    a.ip(&["addr", "add", "fd09::1/64", "dev", "va", "nodad"]);
    if b_addresses {
        b.add_addr("vb", "10.9.0.2/24");
        b.ip(&["addr", "add", "fd09::2/64", "dev", "vb", "nodad"]);
    }
    (a, b)
}

/// Runs `run_server(config)` in `ns` on another thread while `f` runs
/// (once the server says it listens), then stops it and returns its report.
fn while_serving(ns: &Netns, config: &ServerConfig, f: impl FnOnce()) -> ServerReport {
    let stop = StopFlag::new();
    thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = s.spawn(|| {
            ns.enter(|| {
                run_server(config, &stop, move |line| {
                    let _ = ready_tx.send(line.to_owned());
                })
            })
        });
        // Stop the server even if `f` panics, so the test ends.
        let guard = RaiseOnDrop(&stop);
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => assert!(line.starts_with("listening on udp"), "{line}"),
            Err(_) => {
                drop(guard);
                let result = server.join().expect("server thread");
                panic!("the server did not start: {result:?}");
            }
        }
        f();
        drop(guard);
        server
            .join()
            .expect("server thread")
            .expect("the server ran")
    })
}

fn kernel(ips: &[&str]) -> Endpoint {
    Endpoint {
        kernel: true,
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        ..Endpoint::default()
    }
}

/// The kernel modes of tpa-echo against the python peer, both ways, IPv4
/// and IPv6: the server (bound to every address) echoes what python
/// sends; the client's datagrams come back intact from python's server.
#[test]
fn the_kernel_modes_work_with_an_independent_peer() {
    let (a, b) = veth_pair("ek", true);
    let server = ServerConfig::new(kernel(&[]), ECHO_PORT);
    let report = while_serving(&b, &server, || {
        python_client(&a, "10.9.0.2:7".parse().unwrap(), 300, 1472, 8);
        python_client(&a, "[fd09::2]:7".parse().unwrap(), 300, 1452, 8);
    });
    assert_eq!((report.received, report.echoed), (600, 600), "{report}");
    assert_eq!(report.failed, 0, "{report}");

    for to in ["10.9.0.1:9", "[fd09::1]:9"] {
        let to: SocketAddr = to.parse().unwrap();
        let _peer = python_server(&a, to);
        let client = ClientConfig {
            window: 4,
            ..ClientConfig::new(kernel(&[]), to, 500, 200)
        };
        let r = b
            .enter(|| run_client(&client, &StopFlag::new()))
            .expect("client ran");
        assert!(r.is_clean(), "{to}: {r}");
        assert_eq!((r.sent, r.received), (500, 500), "{to}: {r}");
    }
}

fn tpa(port: &str, ips: &[&str]) -> Endpoint {
    Endpoint {
        port: Some(port.parse().unwrap()),
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        ..Endpoint::default()
    }
}

/// Asserts that a tpa server echoed `n` datagrams, failed none and gave
/// every buffer back.
#[track_caller]
fn assert_echoed(report: &ServerReport, n: u64) {
    assert_eq!((report.received, report.echoed), (n, n), "{report}");
    assert_eq!((report.failed, report.later_errors), (0, 0), "{report}");
    assert_eq!(report.buffers_not_returned, Some(0), "{report}");
}

/// The kernel's UDP client (python) gets every datagram echoed by tpa,
/// byte for byte, IPv4 and IPv6, through a TAP device; the echo server
/// still answers ping and ping6 (ICMP echo beside UDP).
#[test]
fn tpa_echoes_a_kernel_client_through_a_tap() {
    let ns = Netns::with_tap("et");
    let server = ServerConfig::new(tpa("tap:tpa0", &["192.0.2.2/24", "2001:db8::2/64"]), 7);
    let report = while_serving(&ns, &server, || {
        python_client(&ns, "192.0.2.2:7".parse().unwrap(), 300, 1472, 8);
        python_client(&ns, "[2001:db8::2]:7".parse().unwrap(), 300, 1452, 8);
        ns.ping_ok("-4", "192.0.2.2");
        ns.ping_ok("-6", "2001:db8::2");
    });
    assert_echoed(&report, 600);
}

/// The kernel's TCP (python, cubic) through tpa-echo's TCP echo on the
/// UDP port, over a TAP: four connections at once each way of IPv4 and
/// IPv6, a megabyte each, every byte back (sha256), each connection ended
/// cleanly by both sides; the UDP echo answers on the same port meanwhile;
/// every buffer back in the pool.
#[test]
fn tpa_echoes_kernel_tcp_connections_through_a_tap() {
    let ns = Netns::with_tap("etc");
    let server = ServerConfig::new(tpa("tap:tpa0", &["192.0.2.2/24", "2001:db8::2/64"]), 7);
    let mut sent = 0;
    let report = while_serving(&ns, &server, || {
        sent += python_tcp_clients(&ns, "192.0.2.2:7".parse().unwrap(), 4, 1 << 20);
        python_client(&ns, "192.0.2.2:7".parse().unwrap(), 100, 1472, 8);
        sent += python_tcp_clients(&ns, "[2001:db8::2]:7".parse().unwrap(), 4, 1 << 20);
    });
    let tcp = report.tcp.clone().expect("TCP figures");
    assert_eq!((tcp.accepted, tcp.closed, tcp.failed), (8, 8, 0), "{tcp}");
    assert_eq!((tcp.open, tcp.bytes), (0, sent), "{tcp}");
    assert!(tcp.zero_copy > 0, "echoed without a copy: {tcp}");
    // No segment over the MTU (SACK blocks beside a full segment were,
    // once: the egress path refused them and retransmission made up).
    let egress = report.egress.expect("egress counters");
    assert_eq!(egress.too_big, 0, "{egress:?}");
    assert_echoed(&report, 100);
    println!("tcp: {tcp}");
}

/// One kernel connection over AF_PACKET on a veth pair, with `--tcp-port`
/// apart from the UDP port: 4 MiB through tpa's echo, IPv4 and IPv6.
#[test]
fn tpa_echoes_kernel_tcp_over_veth_with_af_packet() {
    let (a, b) = veth_pair("etv", false);
    // The kernel's segments one MTU each (no GSO super-frames on the veth).
    a.ip(&["link", "set", "dev", "va", "gso_max_segs", "1"]);
    let server = ServerConfig {
        tcp_port: Some(9000),
        ..ServerConfig::new(tpa("af_packet:vb", &["10.9.0.2/24", "fd09::2/64"]), 7)
    };
    let mut sent = 0;
    let report = while_serving(&b, &server, || {
        sent += python_tcp_clients(&a, "10.9.0.2:9000".parse().unwrap(), 1, 4 << 20);
        sent += python_tcp_clients(&a, "[fd09::2]:9000".parse().unwrap(), 1, 4 << 20);
    });
    let tcp = report.tcp.clone().expect("TCP figures");
    assert_eq!((tcp.accepted, tcp.closed, tcp.failed), (2, 2, 0), "{tcp}");
    assert_eq!(tcp.bytes, sent, "{tcp}");
    assert_eq!(report.buffers_not_returned, Some(0), "{report}");
    println!("tcp: {tcp}");
}

/// The same over a veth pair, tpa on its end through AF_PACKET (with the
/// interface's MAC address; the kernel on that end has no address).
#[test]
fn tpa_echoes_a_kernel_client_over_veth_with_af_packet() {
    let (a, b) = veth_pair("ev", false);
    let server = ServerConfig::new(tpa("af_packet:vb", &["10.9.0.2/24", "fd09::2/64"]), 7);
    let report = while_serving(&b, &server, || {
        python_client(&a, "10.9.0.2:7".parse().unwrap(), 300, 1472, 8);
        python_client(&a, "[fd09::2]:7".parse().unwrap(), 300, 1452, 8);
    });
    assert_echoed(&report, 600);
}

/// tpa sends first, to a kernel echo server it never heard from: its
/// first datagrams wait for the ARP reply (IPv4) or neighbor
/// advertisement (IPv6) and then leave; every one comes back.
fn tpa_sends_first(kernel_ns: &Netns, tpa_ns: &Netns, endpoint: Endpoint, servers: [&str; 2]) {
    for server in servers {
        let to: SocketAddr = server.parse().unwrap();
        let _peer = python_server(kernel_ns, to);
        let client = ClientConfig {
            window: 4,
            ..ClientConfig::new(endpoint.clone(), to, 200, 256)
        };
        let r = tpa_ns
            .enter(|| run_client(&client, &StopFlag::new()))
            .expect("client ran");
        assert!(r.is_clean(), "{to}: {r}");
        assert_eq!((r.sent, r.received), (200, 200), "{to}: {r}");
        assert_eq!(r.buffers_not_returned, Some(0), "{to}: {r}");
        // The first datagrams waited for the neighbor, and all of them left.
        let egress = r.egress.expect("tpa's egress counters");
        assert!(egress.held >= 1, "{to}: {egress:?}");
        assert_eq!(egress.released, egress.held, "{to}: {egress:?}");
        assert_eq!(egress.unreachable, 0, "{to}: {egress:?}");
        let asked = egress.arp_requests + egress.solicitations;
        assert!(asked >= 1, "{to}: {egress:?}");
    }
}

#[test]
fn tpa_sends_first_through_a_tap_and_nothing_is_lost() {
    let ns = Netns::with_tap("ef");
    tpa_sends_first(
        &ns,
        &ns,
        tpa("tap:tpa0", &["192.0.2.2/24", "2001:db8::2/64"]),
        ["192.0.2.1:9", "[2001:db8::1]:9"],
    );
}

#[test]
fn tpa_sends_first_over_veth_and_nothing_is_lost() {
    // tpa's client runs in `b` (on vb, through AF_PACKET); the kernel's
    // echo servers in `a`.
    let (a, b) = veth_pair("eg", false);
    tpa_sends_first(
        &a,
        &b,
        tpa("af_packet:vb", &["10.9.0.2/24", "fd09::2/64"]),
        ["10.9.0.1:9", "[fd09::1]:9"],
    );
}

/// 10 000 datagrams each way: the kernel client through tpa's echo server
/// over veth and AF_PACKET, then tpa's client through the kernel's echo
/// over a TAP; all echoed intact, and both pools whole at the end.
#[test]
fn ten_thousand_datagrams_and_the_pools_are_whole() {
    let (a, b) = veth_pair("e10", false);
    let server = ServerConfig::new(tpa("af_packet:vb", &["10.9.0.2/24"]), 7);
    let client = ClientConfig {
        window: 32,
        ..ClientConfig::new(kernel(&[]), "10.9.0.2:7".parse().unwrap(), 10_000, 64)
    };
    let mut by_kernel = None;
    let served = while_serving(&b, &server, || {
        by_kernel = Some(
            a.enter(|| run_client(&client, &StopFlag::new()))
                .expect("kernel client ran"),
        );
    });
    let by_kernel = by_kernel.expect("the client ran");
    assert!(by_kernel.is_clean(), "{by_kernel}");
    assert_eq!(by_kernel.received, 10_000, "{by_kernel}");
    assert_echoed(&served, 10_000);

    let ns = Netns::with_tap("e10t");
    let to: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let _peer = python_server(&ns, to);
    let client = ClientConfig {
        window: 32,
        ..ClientConfig::new(tpa("tap:tpa0", &["192.0.2.2/24"]), to, 10_000, 64)
    };
    let by_tpa = ns
        .enter(|| run_client(&client, &StopFlag::new()))
        .expect("tpa client ran");
    assert!(by_tpa.is_clean(), "{by_tpa}");
    assert_eq!(by_tpa.received, 10_000, "{by_tpa}");
    assert_eq!(by_tpa.buffers_not_returned, Some(0), "{by_tpa}");
}

/// tpa's client to an address on the link that nobody answers for: its
/// datagrams wait for ARP, the retries run out, the held datagrams are
/// dropped and counted, the socket gets EHOSTUNREACH, the client stops
/// with that error, and every buffer came back.
#[test]
fn tpa_client_to_a_silent_neighbor_stops_with_ehostunreach() {
    let ns = Netns::with_tap("eu");
    let client = ClientConfig {
        timeout: Duration::from_millis(500),
        ..ClientConfig::new(
            tpa("tap:tpa0", &["192.0.2.2/24"]),
            "192.0.2.77:9".parse().unwrap(),
            1_000,
            64,
        )
    };
    let r = ns
        .enter(|| run_client(&client, &StopFlag::new()))
        .expect("client ran");
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.contains("EHOSTUNREACH"), "{error:?}: {r}");
    assert_eq!(r.received, 0, "{r}");
    assert!(r.sent < 1_000, "stopped early: {r}");
    let egress = r.egress.expect("tpa's egress counters");
    assert!(egress.unreachable >= 1, "{egress:?}");
    assert!(egress.arp_requests >= 2, "retried: {egress:?}");
    assert_eq!(egress.released, 0, "{egress:?}");
    assert_eq!(r.buffers_not_returned, Some(0), "{r}");
}
