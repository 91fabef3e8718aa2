//! Hostile input against tpa's TCP (issue 10, proof 3): a tpa server on a
//! TAP device in a namespace sends a paced stream to a kernel client
//! (tests/src/tcp_hostile_peer.py) while the kit (tests/src/tcp_hostile.py,
//! proven on the kernel's TCP by tcp_hostile_kit.rs) forges segments of
//! the kernel client's from the namespace: RST/SYN/ACK/data in and around
//! the window (RFC 5961), an old timestamp (PAWS), malformed and truncated
//! options, while the SYN flood generator (tests/src/bin/synflood.rs)
//! floods the listener and, once the flood has filled its backlog, a
//! second kernel client connects to it through a SYN cookie
//! (`syn_cookies = "on_overflow"`, the default) and has tpa echo its
//! bytes; then a zero window (and its reopening) and a RST burst; then a
//! RST at exactly RCV.NXT resets a second connection. IPv4 and IPv6 (the
//! same battery and the same flood, from an on-link range of each
//! family).
//!
//! Asserted: no panic; the stream's bytes intact (sha256 both ends); no
//! forged byte delivered; the stream live through every injection; no
//! answer to a RST outside the window; tpa's own counters show what it
//! did: challenge ACKs (RFC 5961: in-window RST and SYN, ACK of unsent
//! data, ACK below SND.UNA - MAX.SND.WND, the burst's first) or answers
//! rate-limited, every challenged segment in one or the other and at
//! most one challenge ACK a round (the rate limit's slot is shared with
//! the peer's own out-of-window segments), segments dropped, malformed
//! options dropped by reason (`bad-options`), the flood's excess SYNs
//! answered with cookies (none dropped as `backlog-full`), the client
//! connected during the flood by exactly one validated cookie with its
//! bytes echoed intact (sha256 both ways), the exact RST's
//! ConnectionReset. The zero window: no new data into it, only window
//! probes (the first unacknowledged bytes again, counted by tpa as
//! probes) until the peer's next segment reopens it.
//! tpa sends a challenge ACK on a data segment when it has one, so the
//! kit's view of pure ACKs is only printed.
//!
//! Run as root: the test creates a namespace, a TAP device, raw sockets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
use tpa::port::tap::Tap;
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::conn::TcpInfo;
use tpa_stages::tcp::{self, TcpInput};
use tpa_tests::hostile::{self, find, run_kit, KitRun};
use tpa_tests::netns::Netns;
use tpa_tests::tcp_host::{iface, open_tap, HostState, TcpHost, B};
use tpa_tests::tcp_peer::sha256;

const TPA_MAC: MacAddr = MacAddr([0x02, 0x54, 0x50, 0x41, 0, 0x02]);
const TPA: &str = "192.0.2.2";
const KERNEL: &str = "192.0.2.1";
const TPA6: &str = "2001:db8::2";
const KERNEL6: &str = "2001:db8::1";
/// The stream's listener (flooded) and the second connection's.
const PORT: u16 = 5001;
const PORT2: u16 = 5002;
const FLOOD_NET: &str = "192.0.2.128/25";
/// The IPv6 flood's sources: on-link, no host of the test's there.
const FLOOD_NET6: &str = "2001:db8::8000:0/113";
const CHUNK: usize = 8192;
/// The names of TcpInput's own drop reasons.
const REASONS: &[&str] = <TcpInput as tpa::stage::Stage<B, HostState>>::CUSTOM_REASONS;
/// Bytes the client connected during the flood has echoed.
const ECHO_BYTES: usize = 128 * 1024;
const PAUSE: Duration = Duration::from_millis(10);
/// The kit's battery during the flood: all of it but the zero window
/// (and its reopening), which runs after.
const FLOOD_BATTERY: &[&str] = &[
    "rst-in-window",
    "rst-below-window",
    "rst-above-window",
    "syn-in-window",
    "ack-unsent",
    "ack-too-old",
    "data-above-window",
    "data-below-window",
    "data-old-tsval",
    "opt-len0",
    "opt-past-header",
    "opt-mss-len3",
    "opt-sack5",
    "opt-ts-truncated",
];
/// How long the test waits for a step before it gives up (a hang, not a
/// speed check).
const PATIENCE: Duration = Duration::from_secs(60);

/// Byte `i` of the stream.
fn byte(i: usize) -> u8 {
    let z = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((z ^ (z >> 29)) >> 24) as u8
}

/// One accepted connection's side of the test.
#[derive(Debug, Default)]
struct Side {
    socket: Option<SocketId>,
    sent: usize,
    received: usize,
    eof: bool,
    shut: bool,
    closed: bool,
    next: Option<Instant>,
    errors: Vec<SocketError>,
    info: Option<TcpInfo>,
}

/// The connection made during the flood: tpa echoes it.
#[derive(Debug, Default)]
struct Echo {
    socket: Option<SocketId>,
    /// Received, not yet taken by the send queue.
    pending: Vec<u8>,
    received: usize,
    echoed: usize,
    eof: bool,
    closed: bool,
    errors: Vec<SocketError>,
}

/// tpa's server: the first connection gets the paced stream until `stop`,
/// then a FIN; the second a byte every 10 ms until it fails; one made on
/// the flooded listener after the first is echoed.
struct Sender {
    stop: Arc<AtomicBool>,
    /// The flooded listener.
    flooded: Option<SocketId>,
    conn1: Side,
    conn2: Side,
    conn3: Echo,
}

impl Sender {
    /// Echoes what conn3 received, as far as its send queue takes it;
    /// closes once the peer's stream ended and all of it went back.
    fn echo(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let e = &mut self.conn3;
        let Some(s) = e.socket else { return 0 };
        if e.closed || !e.errors.is_empty() {
            return 0;
        }
        let mut work = 0;
        loop {
            while !e.pending.is_empty() {
                match tcp::send(cx, s, &e.pending) {
                    Ok(0) | Err(SocketError::WouldBlock) => break,
                    Ok(k) => {
                        e.pending.drain(..k);
                        e.echoed += k;
                        work += 1;
                    }
                    Err(err) => {
                        e.errors.push(err);
                        return work;
                    }
                }
            }
            if !e.pending.is_empty() {
                break; // the send queue is full: read on a later turn
            }
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => {
                    for segment in buf.segments() {
                        e.pending.extend_from_slice(segment);
                    }
                    e.received += buf.total_len();
                    work += 1;
                }
                Ok(None) => {
                    e.eof = true;
                    break;
                }
                Err(SocketError::WouldBlock) => break,
                Err(err) => {
                    e.errors.push(err);
                    break;
                }
            }
        }
        if e.eof && e.pending.is_empty() {
            if let Err(err) = tcp::close(cx, s) {
                e.errors.push(err);
            }
            e.closed = true;
            work += 1;
        }
        work
    }

    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let mut work = self.echo(cx);
        let stop = self.stop.load(Ordering::Relaxed);
        for (n, side) in [&mut self.conn1, &mut self.conn2].into_iter().enumerate() {
            let Some(s) = side.socket else { continue };
            if side.closed || !side.errors.is_empty() {
                continue;
            }
            if let Ok(info) = tcp::info(cx, s) {
                side.info = Some(info);
            }
            loop {
                match tcp::recv(cx, s) {
                    Ok(Some(buf)) => {
                        side.received += buf.total_len();
                        work += 1;
                    }
                    Ok(None) => {
                        side.eof = true;
                        break;
                    }
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => {
                        side.errors.push(e);
                        break;
                    }
                }
            }
            let now = Instant::now();
            if side.shut || side.next.is_some_and(|t| now < t) {
            } else if n == 0 && stop {
                side.shut = true;
                if let Err(e) = tcp::shutdown(cx, s) {
                    side.errors.push(e);
                }
            } else {
                let len = if n == 0 { CHUNK } else { 1 };
                let chunk: Vec<u8> = (side.sent..side.sent + len).map(byte).collect();
                match tcp::send(cx, s, &chunk) {
                    Ok(k) => side.sent += k,
                    Err(SocketError::WouldBlock) => {}
                    Err(e) => side.errors.push(e),
                }
                side.next = Some(side.next.unwrap_or(now) + PAUSE);
                work += 1;
            }
            if side.shut && side.eof && !side.closed {
                if let Err(e) = tcp::close(cx, s) {
                    side.errors.push(e);
                }
                side.closed = true;
            }
        }
        work
    }
}

impl App<B, HostState> for Sender {
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        if Some(listener) == self.flooded && self.conn1.socket.is_some() {
            assert!(
                self.conn3.socket.is_none(),
                "a second connection during the flood"
            );
            self.conn3.socket = Some(socket);
            self.step(cx);
            return;
        }
        let side = if self.conn1.socket.is_none() {
            &mut self.conn1
        } else {
            &mut self.conn2
        };
        assert!(side.socket.is_none(), "a third connection was accepted");
        side.socket = Some(socket);
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

    fn error(&mut self, socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        if self.conn3.socket == Some(socket) {
            self.conn3.errors.push(error);
        } else if self.conn1.socket == Some(socket) {
            self.conn1.errors.push(error);
        } else if self.conn2.socket == Some(socket) {
            self.conn2.errors.push(error);
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        self.step(cx)
    }
}

type Host<P> = TcpHost<P, Sender>;

fn host(ns: &Netns, pool: &Pool, app: Sender, seed: u64) -> Host<Tap> {
    let state = HostState::new(iface(TPA_MAC, 2), TcpConfig::default(), seed);
    TcpHost::build(open_tap(ns, pool, TPA_MAC), state, app)
}

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

/// One family at a time: the kit reads the live connection's state and
/// must forge between two of the peer's segments, which two runs at once
/// on two cores make harder than it needs to be.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn tpa_survives_the_hostile_kit_with_its_stream_intact() {
    hostile_kit_against_tpa(false);
}

#[test]
fn tpa_survives_the_hostile_kit_over_ipv6() {
    hostile_kit_against_tpa(true);
}

fn hostile_kit_against_tpa(v6: bool) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (tpa_ip, kernel_ip) = if v6 { (TPA6, KERNEL6) } else { (TPA, KERNEL) };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007);
    // The kernel's side: KERNEL/24 and KERNEL6/64.
    let ns = Netns::with_tap(if v6 { "hkt6" } else { "hkt" });
    let pool = Pool::new(PoolConfig {
        name: "tcp-hostile".into(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let app = Sender {
        stop: stop.clone(),
        flooded: None,
        conn1: Side::default(),
        conn2: Side::default(),
        conn3: Echo::default(),
    };
    let mut h = host(&ns, &pool, app, seed);
    let iface = h.state.egress.interface().clone();
    for port in [PORT, PORT2] {
        let any: SocketAddr = if v6 {
            format!("[::]:{port}")
        } else {
            format!("0.0.0.0:{port}")
        }
        .parse()
        .unwrap();
        let l = h.state.sockets.listen(any, 8, &iface).expect("listen");
        if port == PORT {
            h.app.flooded = Some(l);
        }
    }
    // SYN cookies sent so far, published by tpa's loop.
    let cookies_sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let peer = hostile::script("tcp_hostile_peer.py");
    let kit = |port: u16, only: Option<&[&str]>| {
        run_kit(
            &ns,
            &KitRun {
                iface: "tpa0",
                peer: (kernel_ip, port),
                target: (tpa_ip, PORT),
                only,
                // Each answer 500 ms apart: tpa rate-limits them as Linux
                // does by default.
                extra: &["--observe", "0.55"],
            },
        )
    };

    let (h, battery, burst, reset, flood, got, echo) = thread::scope(|s| {
        let tpa = s.spawn(|| {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) && start.elapsed() < 3 * PATIENCE {
                h.run_once();
                let sent = h.state.sockets.counters().syn_cookies_sent;
                cookies_sent.store(sent, Ordering::Relaxed);
            }
            h
        });
        // Stop tpa's loop also when a step below panics.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let guard = Done(&done);
        let mut client = Client(
            ns.command(&[
                "python3",
                &peer,
                "client",
                tpa_ip,
                &PORT.to_string(),
                &PORT2.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the kernel client"),
        );
        let mut out = BufReader::new(client.0.stdout.take().unwrap());
        let port1: u16 = line(&mut out, "conn1")[1].parse().unwrap();
        let macs = (ns.mac_of("tpa0"), TPA_MAC.to_string());
        let (mut battery, flood, echo) = thread::scope(|s2| {
            let flood = s2.spawn(|| {
                hostile::syn_flood(
                    &ns,
                    env!("CARGO_BIN_EXE_synflood"),
                    "tpa0",
                    (&macs.0, &macs.1),
                    if v6 { FLOOD_NET6 } else { FLOOD_NET },
                    (tpa_ip, PORT),
                    20_000,
                    20_000,
                    seed,
                )
            });
            // A client connects once the flood filled the backlog (tpa
            // answers with cookies): it must get through a cookie.
            let echo = s2.spawn(|| {
                let start = Instant::now();
                while cookies_sent.load(Ordering::Relaxed) == 0 {
                    assert!(start.elapsed() < PATIENCE, "no SYN cookie during the flood");
                    thread::sleep(Duration::from_millis(1));
                }
                ns.exec(&[
                    "python3",
                    &peer,
                    "echo-client",
                    tpa_ip,
                    &PORT.to_string(),
                    &ECHO_BYTES.to_string(),
                    &seed.to_string(),
                ])
            });
            (
                kit(port1, Some(FLOOD_BATTERY)),
                flood.join().expect("flood thread"),
                echo.join().expect("echo client thread"),
            )
        });
        // The zero window after the flood (whose frames fill the TAP's
        // queue, where the one forged ACK could be lost), the kernel
        // client stopped meanwhile (`--pause-pid`: see the kit).
        let pid = client.0.id().to_string();
        battery.extend(run_kit(
            &ns,
            &KitRun {
                iface: "tpa0",
                peer: (kernel_ip, port1),
                target: (tpa_ip, PORT),
                only: Some(&["zero-window"]),
                extra: &["--observe", "0.55", "--pause-pid", &pid],
            },
        ));
        let burst = kit(port1, Some(&["rst-burst"]));
        stop.store(true, Ordering::Relaxed);
        let got = line(&mut out, "conn1");
        let port2: u16 = line(&mut out, "conn2")[1].parse().unwrap();
        let reset = run_kit(
            &ns,
            &KitRun {
                iface: "tpa0",
                peer: (kernel_ip, port2),
                target: (tpa_ip, PORT2),
                only: Some(&["rst-exact"]),
                extra: &["--observe", "0.55"],
            },
        );
        // Let tpa see the reset's effect on its next send.
        thread::sleep(Duration::from_millis(100));
        drop(guard);
        drop(client);
        let h = tpa.join().expect("tpa thread");
        (h, battery, burst, reset, flood, got, echo)
    });

    let c1 = &h.app.conn1;
    let c2 = &h.app.conn2;
    let c3 = &h.app.conn3;
    let ctx = format!(
        "v6 {v6}, seed {seed}; {flood}\nduring the flood: {}\nconn3 {:?}\nkernel client: {}\nbattery:\n{}\nburst: {}\nsecond connection:\n{}\nconn1 {:?}\nconn2 {:?}\n\
         sockets {:?}\ntcp input {:?} drops {:?}",
        echo.trim(),
        (c3.received, c3.echoed, c3.eof, c3.closed, &c3.errors),
        got.join(" "),
        battery.iter().map(|l| l.0.to_string()).collect::<Vec<_>>().join("\n"),
        burst[0].0,
        reset.iter().map(|l| l.0.to_string()).collect::<Vec<_>>().join("\n"),
        c1,
        c2,
        h.state.sockets.counters(),
        h.tcp(v6).stage.counters(),
        h.tcp(v6)
            .stats
            .drops()
            .map(|(r, n)| format!("{} {n}", r.name(REASONS)))
            .collect::<Vec<_>>(),
    );
    eprintln!("{ctx}");

    // The stream: every byte intact, nothing forged delivered.
    let data: Vec<u8> = (0..c1.sent).map(byte).collect();
    assert_eq!(got[2], c1.sent.to_string(), "bytes received vs sent: {ctx}");
    assert_eq!(got[4], sha256(&data), "the stream's sha256: {ctx}");
    assert_eq!(c1.received, 0, "forged bytes were delivered: {ctx}");
    assert!(c1.errors.is_empty(), "{ctx}");
    // The reset: its Error event, and the failed send after it.
    assert!(
        !c2.errors.is_empty() && c2.errors.iter().all(|e| *e == SocketError::ConnectionReset),
        "{ctx}"
    );
    // Answers as RFC 5961 and RFC 7323 say.
    for l in &battery {
        if !l.name().starts_with("zero-window") {
            assert!(
                l.data_segments() > 0,
                "{} not during the stream: {ctx}",
                l.name()
            );
        }
    }
    // RFC 5961: a challenge ACK for an in-window RST and SYN, for an ACK
    // of data never sent and one below SND.UNA - MAX.SND.WND (tpa sends it
    // on a data segment when it has one: the kit sees a pure ACK only
    // sometimes, tpa's counter always), and for the burst of ten RSTs;
    // nothing for a RST outside the window; a duplicate ACK (also on data,
    // or rate-limited) for data outside the window and for the old
    // timestamp, all of them dropped.
    for name in ["rst-below-window", "rst-above-window"] {
        assert!(find(&battery, name).answers().is_empty(), "{name}: {ctx}");
    }
    let info = c1.info.expect("conn1's info");
    // What the engine guarantees (conn/input.rs `challenge_ack`,
    // `oow_rate_limited`; the table's budget, `withhold_challenge_ack`):
    // each of the 14 segments that call for a challenge ACK (four single
    // injections, the burst's ten) counts once, in `challenge_acks` when
    // the ACK went out, in `acks_rate_limited` when a limit held it back;
    // and one connection answers at most once in 500 ms, a slot its
    // duplicate ACKs for the peer's own out-of-window bare segments share
    // (a loaded machine makes the kernel send some). The five rounds are
    // the kit's --observe (0.55 s) apart, so at most five challenge ACKs;
    // a round can lose its ACK to one of the peer's segments answered just
    // before (then it is rate-limited, and counted), and the peer's
    // segments that the limit held back count in `acks_rate_limited` too.
    const CHALLENGED: u64 = 4 + 10;
    assert!(info.challenge_acks <= 5, "more than one per round: {ctx}");
    assert!(
        info.challenge_acks + info.acks_rate_limited >= CHALLENGED,
        "a challenged segment neither answered nor counted: {ctx}"
    );
    assert!(info.dropped >= 7, "{ctx}");
    assert_eq!(info.bytes_received, 0, "{ctx}");
    // The five malformed options: dropped at parsing, counted.
    for name in [
        "opt-len0",
        "opt-past-header",
        "opt-mss-len3",
        "opt-sack5",
        "opt-ts-truncated",
    ] {
        assert!(find(&battery, name).answers().is_empty(), "{name}: {ctx}");
    }
    assert_eq!(h.tcp(v6).stats.dropped(tcp::wire::BAD_OPTIONS), 5, "{ctx}");
    // The zero window: what tpa sent into it before the peer's next
    // segment reopened it are window probes only: each the first
    // unacknowledged bytes again (offset 0 from the acknowledged point),
    // never the stream's next bytes; at least one was sent (the persist
    // timer), and tpa counted it as a probe.
    let zero = find(&battery, "zero-window");
    let into: Vec<(f64, u64, u64)> = zero.0["zero_window_segments"]
        .as_array()
        .unwrap_or_else(|| panic!("no zero_window_segments in the kit's line: {ctx}"))
        .iter()
        .map(|s| {
            (
                s[0].as_f64().expect("ms"),
                s[1].as_u64().expect("offset"),
                s[2].as_u64().expect("len"),
            )
        })
        .collect();
    eprintln!("v6 {v6}: into the zero window (ms after, offset, length): {into:?}");
    assert!(
        !into.is_empty(),
        "no window probe into the zero window: {ctx}"
    );
    assert!(
        into.iter().all(|&(_, offset, _)| offset == 0),
        "new data sent into the zero window: {into:?}: {ctx}"
    );
    assert!(info.window_probes >= 1, "{ctx}");
    {
        // The flood: its half-open connections filled the backlog, and SYN
        // cookies answered every SYN over it (none dropped as backlog-full).
        let counters = h.state.sockets.counters();
        assert!(counters.syn_cookies_sent > 0, "{ctx}");
        assert_eq!(h.tcp(v6).stats.dropped(tcp::BACKLOG_FULL), 0, "{ctx}");
        assert_eq!(counters.backlog_drops, 0, "{ctx}");
        // The client connected during the flood: through the one cookie that
        // was answered (the flood's sources never answer), its bytes echoed
        // intact. `conn3 PORT sent N sha256 A echoed M sha256 B`.
        assert_eq!(counters.syn_cookies_validated, 1, "{ctx}");
        assert_eq!(h.tcp(v6).stage.counters().cookies_accepted, 1, "{ctx}");
        let words: Vec<&str> = echo.split_whitespace().collect();
        assert_eq!(words.len(), 10, "{ctx}");
        assert_eq!(words[3], ECHO_BYTES.to_string(), "{ctx}");
        assert_eq!(
            (words[7], words[9]),
            (words[3], words[5]),
            "the echo: {ctx}"
        );
        assert_eq!((c3.received, c3.echoed), (ECHO_BYTES, ECHO_BYTES), "{ctx}");
        assert!(c3.closed && c3.errors.is_empty(), "{ctx}");
    }
    drop(h);
    pool.assert_whole();
}
