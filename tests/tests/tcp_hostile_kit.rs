//! The hostile-input kit for TCP (tests/src/tcp_hostile.py, the SYN flood
//! generator tests/src/bin/synflood.rs) proven on the kernel's TCP, which
//! implements RFC 5961 and PAWS: a paced kernel transfer between two
//! namespaces over a veth pair, the injections forged from the receiving
//! peer's namespace on its veth while the transfer runs. The bytes stay
//! intact, no forged byte is delivered, and the kernel's own counters show
//! that each injection hit what it aimed at (challenge ACKs, PAWS drops,
//! rate-limited challenge ACKs, SYN cookies under the flood, the reset).
//! tests/tests/tcp_hostile.rs points the same kit at tpa.
//!
//! Run as root: the test creates namespaces, veth interfaces and raw
//! sockets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::thread;

use tpa_tests::hostile::{self, delta, deltas, find, kernel_counters, run_kit, KitRun};
use tpa_tests::netns::Netns;

const PORT: u16 = 5001;
const SERVER: &str = "10.9.0.2";
const CLIENT: &str = "10.9.0.1";
/// The flood's sources: on the veth's subnet, owned by nobody.
const FLOOD_NET: &str = "10.9.0.128/25";

/// The kernel client, killed on drop (its second connection never ends).
struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next line of `out` split into words, which must start with `tag`.
fn line(out: &mut impl BufRead, tag: &str) -> Vec<String> {
    let mut l = String::new();
    out.read_line(&mut l).expect("read the client's output");
    let words: Vec<String> = l.split_whitespace().map(String::from).collect();
    assert!(
        words.first().map(String::as_str) == Some(tag),
        "expected a `{tag} …` line from the client, got {l:?}"
    );
    words
}

#[test]
fn the_kit_hits_the_kernel_where_it_aims_and_the_transfer_survives() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007);
    let a = Netns::new("hka");
    let b = Netns::new("hkb");
    a.add_veth("va", "vb");
    a.ip(&["link", "set", "dev", "vb", "netns", b.name()]);
    a.add_addr("va", &format!("{CLIENT}/24"));
    b.add_addr("vb", &format!("{SERVER}/24"));
    a.up("va");
    b.up("vb");
    // Every challenge ACK answered (the per-socket limit is lifted here and
    // put back for the burst), SYN cookies on as by default.
    b.exec(&["sysctl", "-qw", "net.ipv4.tcp_invalid_ratelimit=0"]);
    b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);

    let stop = std::env::temp_dir().join(tpa_tests::netns::unique_name("hkstop"));
    let _ = std::fs::remove_file(&stop);
    let peer = hostile::script("tcp_hostile_peer.py");
    let server = b.spawn_until(
        &[
            "python3",
            &peer,
            "server",
            SERVER,
            &PORT.to_string(),
            "8",
            &seed.to_string(),
            stop.to_str().unwrap(),
        ],
        "ready",
    );
    let mut client = Client(
        a.command(&["python3", &peer, "client", SERVER, &PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the kernel client"),
    );
    let mut out = BufReader::new(client.0.stdout.take().unwrap());
    let port1: u16 = line(&mut out, "conn1")[1].parse().unwrap();

    let kit = |port: u16, only: Option<&[&str]>| {
        run_kit(
            &a,
            &KitRun {
                iface: "va",
                peer: (CLIENT, port),
                target: (SERVER, PORT),
                only,
                extra: &["--observe", "0.2"],
            },
        )
    };
    let macs = (a.mac_of("va"), b.mac_of("vb"));
    let flood_bin = env!("CARGO_BIN_EXE_synflood");

    // The battery and the flood at once, against the live transfer.
    let c0 = kernel_counters(&b);
    let (battery, flood) = thread::scope(|s| {
        let flood = s.spawn(|| {
            hostile::syn_flood(
                &a,
                flood_bin,
                "va",
                (&macs.0, &macs.1),
                FLOOD_NET,
                (SERVER, PORT),
                20_000,
                20_000,
                seed,
            )
        });
        (kit(port1, None), flood.join().expect("flood thread"))
    });
    let c1 = kernel_counters(&b);
    // Then a burst of in-window RSTs under the kernel's default rate limit.
    b.exec(&["sysctl", "-qw", "net.ipv4.tcp_invalid_ratelimit=500"]);
    let burst = kit(port1, Some(&["rst-burst"]));
    let c2 = kernel_counters(&b);
    std::fs::write(&stop, b"").expect("create the stop file");
    let got = line(&mut out, "conn1");
    let _ = std::fs::remove_file(&stop);

    // The second connection, reset by a RST at exactly RCV.NXT.
    let port2: u16 = line(&mut out, "conn2")[1].parse().unwrap();
    let reset = kit(port2, Some(&["rst-exact"]));
    let sent = server.finish();
    let c3 = kernel_counters(&b);

    let ctx = format!(
        "seed {seed}; {flood}\nbattery:\n{}\nburst: {}\nsecond connection:\n{}\n\
         kernel counters, battery + flood:\n{}burst:\n{}reset:\n{}server: {sent}",
        battery
            .iter()
            .map(|l| l.0.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        burst[0].0,
        reset
            .iter()
            .map(|l| l.0.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        deltas(&c0, &c1),
        deltas(&c1, &c2),
        deltas(&c2, &c3),
    );
    eprintln!("{ctx}");

    // The healthy transfer: every byte intact, no forged byte delivered.
    let sent_words: Vec<&str> = sent.split_whitespace().collect();
    assert!(
        sent_words.len() >= 7 && sent_words[0] == "conn1",
        "server report: {ctx}"
    );
    assert_eq!(
        (got[2].as_str(), got[4].as_str()),
        (sent_words[2], sent_words[4]),
        "bytes and sha256 received vs sent: {ctx}"
    );
    assert_eq!(sent_words[6], "0", "forged bytes were delivered: {ctx}");
    assert!(
        sent.lines().any(|l| l == "conn2 reset"),
        "the RST at RCV.NXT did not reset: {ctx}"
    );

    // The transfer was live during every injection but the zero window.
    for l in &battery {
        if !l.name().starts_with("zero-window") {
            assert!(
                l.data_segments() > 0,
                "{} not during the transfer: {ctx}",
                l.name()
            );
        }
    }
    // RFC 5961: a challenge ACK for an in-window RST and SYN and for an
    // ACK below SND.UNA - MAX.SND.WND; nothing for a RST outside the window.
    for name in ["rst-in-window", "syn-in-window", "ack-too-old"] {
        assert_eq!(find(&battery, name).acks_at_rcv_nxt(), 1, "{name}: {ctx}");
    }
    for name in ["rst-below-window", "rst-above-window"] {
        assert!(find(&battery, name).answers().is_empty(), "{name}: {ctx}");
    }
    for name in ["data-above-window", "data-below-window", "data-old-tsval"] {
        assert!(find(&battery, name).acks_at_rcv_nxt() >= 1, "{name}: {ctx}");
    }
    assert_eq!(
        find(&battery, "zero-window").field("new_data_before_peer_update"),
        Some(0),
        "data sent into a zero window: {ctx}"
    );
    // The kernel counted what the kit aimed at.
    assert!(delta(&c0, &c1, "TcpExtTCPChallengeACK") >= 3, "{ctx}");
    assert!(delta(&c0, &c1, "TcpExtTCPSYNChallenge") >= 1, "{ctx}");
    assert!(delta(&c0, &c1, "TcpExtPAWSEstab") >= 1, "{ctx}");
    assert!(delta(&c0, &c1, "TcpExtSyncookiesSent") > 0, "{ctx}");
    assert_eq!(delta(&c0, &c1, "TcpEstabResets"), 0, "{ctx}");
    // The burst: one challenge ACK, the other nine rate limited.
    assert_eq!(delta(&c1, &c2, "TcpExtTCPChallengeACK"), 1, "{ctx}");
    assert_eq!(delta(&c1, &c2, "TcpExtTCPACKSkippedChallenge"), 9, "{ctx}");
    assert_eq!(delta(&c1, &c2, "TcpEstabResets"), 0, "{ctx}");
    // The second connection: the RST at exactly RCV.NXT resets it.
    assert_eq!(delta(&c2, &c3, "TcpEstabResets"), 1, "{ctx}");
}
