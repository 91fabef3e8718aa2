//! The TCP interop kit proven kernel to kernel, before tpa's TCP uses it:
//! two namespaces joined through a bridge in a third (veth pairs), python
//! peers (tests/src/tcp_peer.py) moving 64 MB each way with CUBIC pinned,
//! IPv4 and IPv6, clean and with the bridge dropping 1% of the TCP frames
//! each way (nft); the kernel's `nstat` counters read around each
//! transfer.
//!
//! What each test shows: the bytes arrive whole (count and sha256 equal to
//! the pattern's, computed on its own), the peers ran the congestion
//! control asked for, nobody sent a reset, and under loss the loss rules
//! dropped packets both ways and the kernel retransmitted.
//!
//! Run as root: these tests create namespaces and veth interfaces.

use std::net::SocketAddr;
use std::sync::OnceLock;

use tpa_tests::impair::LossyBridge;
use tpa_tests::netns::Netns;
use tpa_tests::nstat::Counters;
use tpa_tests::tcp_peer::{pattern_sha256, PeerReport, TcpPeer};

/// Bytes each way per transfer.
const SIZE: u64 = 64 << 20;

/// A seed per test (fixed: a failure replays with the same bytes).
const SEED: u64 = 0x7470_615f_6b69_7400;

/// Two namespaces joined through a bridge: `va` (10.9.0.1, fd09::1) in
/// `a`, `vb` (10.9.0.2, fd09::2) in `b`, one TCP segment per packet on
/// both, CUBIC pinned in both (as far as the kernel lets a namespace: the
/// pin is printed, and the peers set it per socket anyway).
fn pair(tag: &str) -> (Netns, Netns, LossyBridge) {
    let a = Netns::new(&format!("{tag}-a"));
    let b = Netns::new(&format!("{tag}-b"));
    let wire = LossyBridge::new(&format!("{tag}-w"));
    wire.plug("pa", &a, "va");
    wire.plug("pb", &b, "vb");
    for (ns, dev, v4, v6) in [
        (&a, "va", "10.9.0.1/24", "fd09::1/64"),
        (&b, "vb", "10.9.0.2/24", "fd09::2/64"),
    ] {
        ns.one_segment_per_packet(dev);
        ns.up(dev);
        ns.add_addr(dev, v4);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        eprintln!("{}: {}", ns.name(), ns.pin_congestion_control("cubic"));
    }
    (a, b, wire)
}

/// The sha256 of the SIZE bytes of the pattern of SEED, computed once.
fn expected_sha256() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| pattern_sha256(SIZE, SEED))
}

/// `report` received the whole pattern intact over CUBIC.
#[track_caller]
fn assert_received_pattern(report: &PeerReport, expected_sha256: &str, context: &str) {
    assert_eq!(report.received, SIZE, "{context}: {report}");
    assert_eq!(
        report.received_sha256, expected_sha256,
        "{context}: {report}"
    );
    assert_eq!(report.cc, "cubic", "{context}: {report}");
}

/// 64 MB from `a` to `b` (b's sink, a's client) and 64 MB from `b` to `a`
/// (b's source, a's client), to b's address `server`; asserts both
/// arrived whole and returns the nstat deltas of `a` and `b` over both.
fn both_ways(a: &Netns, b: &Netns, server: SocketAddr, context: &str) -> (Counters, Counters) {
    let expected = expected_sha256();
    let mut peer_a = TcpPeer::new(a);
    let mut peer_b = TcpPeer::new(b);
    for p in [&mut peer_a, &mut peer_b] {
        p.seed = SEED;
        // sha256 is the check here; the per-byte check (for an offset)
        // would double the python peers' CPU time.
        p.check = false;
    }
    let (a0, b0) = (Counters::read(a), Counters::read(b));

    let sink = peer_b.serve_sink(server);
    let sent = peer_a.send(server, SIZE);
    let got = sink.finish();
    eprintln!("{context}: a -> b: {sent}\n{context}: a -> b: {got}");
    assert_eq!(
        (sent.sent, sent.sent_sha256.as_str()),
        (SIZE, expected),
        "{context}"
    );
    assert_received_pattern(&got, expected, &format!("{context}: a -> b"));

    let source = peer_b.serve_source(server, SIZE);
    let got = peer_a.recv(server);
    let sent = source.finish();
    eprintln!("{context}: b -> a: {sent}\n{context}: b -> a: {got}");
    assert_eq!(
        (sent.sent, sent.sent_sha256.as_str()),
        (SIZE, expected),
        "{context}"
    );
    assert_received_pattern(&got, expected, &format!("{context}: b -> a"));

    let (da, db) = (Counters::read(a).delta(&a0), Counters::read(b).delta(&b0));
    eprintln!("{context}: nstat a: {}", da.summary());
    eprintln!("{context}: nstat b: {}", db.summary());
    for (d, who) in [(&da, "a"), (&db, "b")] {
        assert_eq!(d.get("TcpOutRsts"), 0, "{context}: {who} sent resets");
        assert_eq!(d.get("TcpEstabResets"), 0, "{context}: {who} saw resets");
        assert_eq!(d.get("TcpInCsumErrors"), 0, "{context}: {who}");
        assert!(
            d.get("TcpInSegs") > SIZE / 1500,
            "{context}: {who}: nstat counted too few segments: {}",
            d.summary()
        );
    }
    (da, db)
}

fn clean(tag: &str, server: &str) {
    let (a, b, _wire) = pair(tag);
    // Intact, CUBIC, no reset: asserted in `both_ways`. The kernel may
    // still retransmit on a clean wire (a tail loss probe that fires
    // while the machine is busy), so retransmissions are only printed.
    both_ways(&a, &b, server.parse().unwrap(), tag);
}

fn lossy(tag: &str, server: &str) {
    let (a, b, wire) = pair(tag);
    wire.set_loss(1);
    let (da, db) = both_ways(&a, &b, server.parse().unwrap(), tag);
    let dropped = wire.dropped();
    eprintln!("{tag}: the bridge dropped TCP frames from {dropped:?}");
    // About 46,000 data segments each way plus their ACKs: a 1% loss
    // drops hundreds from each port (none has probability below e^-400).
    assert_eq!(dropped.len(), 2, "{tag}: {dropped:?}");
    assert!(dropped.iter().all(|(_, n)| *n > 0), "{tag}: {dropped:?}");
    for (d, who) in [(&da, "a"), (&db, "b")] {
        assert!(
            d.get("TcpRetransSegs") > 0 && d.get("TcpExtTCPSackRecovery") > 0,
            "{tag}: {who} sent 64 MB through a 1% loss without retransmitting or SACK recovery: {}",
            d.summary()
        );
    }
}

#[test]
fn kernel_to_kernel_64mb_each_way_ipv4() {
    clean("kk4", "10.9.0.2:5001");
}

#[test]
fn kernel_to_kernel_64mb_each_way_ipv6() {
    clean("kk6", "[fd09::2]:5001");
}

#[test]
fn kernel_to_kernel_64mb_each_way_ipv4_one_percent_loss() {
    lossy("kl4", "10.9.0.2:5001");
}

#[test]
fn kernel_to_kernel_64mb_each_way_ipv6_one_percent_loss() {
    lossy("kl6", "[fd09::2]:5001");
}

/// The peers' own checks fail when they should: a sink checking for
/// another seed's stream (received whole: the sha256 is the sender's)
/// reports its first byte as a mismatch, and a client whose server never
/// sends fails after its timeout, saying what it waited for, instead of
/// hanging.
#[test]
fn the_peers_catch_a_wrong_stream_and_a_silent_peer() {
    let ns = Netns::new("kp");
    let to: SocketAddr = "127.0.0.1:5002".parse().unwrap();
    let mut sink_peer = TcpPeer::new(&ns);
    sink_peer.seed = 2;
    let sink = sink_peer.serve_sink(to);
    let sent = TcpPeer::new(&ns).send(to, 1 << 20);
    let got = sink.finish();
    assert_eq!(got.received, 1 << 20, "{got}");
    assert_eq!(got.received_sha256, sent.sent_sha256, "{got}");
    // Streams of different seeds differ in their first word.
    assert!(got.mismatch.is_some_and(|at| at < 8), "{}", got.line);

    let mut silent = TcpPeer::new(&ns);
    silent.timeout_s = 30; // outlives the client's 1 s
    let _sink = silent.serve_sink(to); // reads, never sends; killed on drop
    let argv = [
        "python3",
        &tpa_tests::tcp_peer::script(),
        "--timeout",
        "1",
        "recv",
        "127.0.0.1",
        "5002",
    ];
    let out = ns.exec_output(&argv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("tcp_peer recv: recv failed after 0 bytes sent and 0 received")
            && err.contains("timed out"),
        "{err}"
    );
}
