//! tpa's TCP client against kernel servers that are not ours, over a TAP
//! device in a namespace, IPv4 and IPv6: socat echoing 16 MiB (the echo
//! equal byte for byte and by sha256), and redis-server spoken to in RESP
//! (SET and GET of a 1 MiB value, then a pipeline of 10,000 INCRs; every
//! reply checked).
//!
//! Run as root: these tests create namespaces and TAP interfaces; socat,
//! redis-server and sha256sum must be installed (tests/run.sh installs
//! them).

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, Pool, PoolConfig};
use tpa::port::tap::Tap;
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;
use tpa_tests::netns::Netns;
use tpa_tests::tcp_host::{iface, open_tap, HostState, TcpHost, B};
use tpa_tests::tcp_peer::sha256;

const TPA_MAC: MacAddr = MacAddr([0x02, 0x54, 0x50, 0x41, 0, 0x06]);
/// How long a run may take before the test gives up (a hang, not a speed
/// check).
const PATIENCE: Duration = Duration::from_secs(120);

/// tpa's client: connects, sends `data` (then half-closes, when asked),
/// and keeps every byte it receives until the server's end of stream.
#[derive(Default)]
struct Client {
    remote: Option<SocketAddr>,
    data: Vec<u8>,
    /// Shut down our side once `data` is sent (socat: its cue to finish);
    /// otherwise the server ends the stream (redis: QUIT).
    half_close: bool,
    socket: Option<SocketId>,
    sent: usize,
    received: Vec<u8>,
    shut: bool,
    eof: bool,
    closed: bool,
    errors: Vec<SocketError>,
}

impl Client {
    fn step(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(s) = self.socket else { return 0 };
        if self.closed {
            return 0;
        }
        let mut work = 0;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tcp::read(cx, s, &mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.received.extend_from_slice(&chunk[..n]);
                    work += 1;
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
        }
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
        if self.half_close && self.sent == self.data.len() && !self.shut {
            self.shut = true;
            if let Err(e) = tcp::shutdown(cx, s) {
                self.errors.push(e);
            }
        }
        if self.eof && self.sent == self.data.len() {
            tcp::close(cx, s).expect("close");
            self.closed = true;
        }
        work
    }
}

impl App<B, HostState> for Client {
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
        self.closed = true;
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        if self.socket.is_none() {
            let remote = self.remote.expect("a server to connect to");
            self.socket = Some(tcp::connect(cx, remote).expect("connect"));
        }
        self.step(cx)
    }
}

type Host<P> = TcpHost<P, Client>;

fn pool(name: &str) -> Pool {
    Pool::new(PoolConfig {
        name: name.into(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap()
}

/// tpa's client host on `ns`'s TAP (192.0.2.2, 2001:db8::2).
fn host(ns: &Netns, pool: &Pool, app: Client) -> Host<Tap> {
    let state = HostState::new(
        iface(TPA_MAC, 2),
        TcpConfig::default(),
        std::process::id().into(),
    );
    TcpHost::build(open_tap(ns, pool, TPA_MAC), state, app)
}

/// A kernel server process in a namespace; killed on drop.
struct Server(Child);

impl Server {
    /// Starts `argv` in `ns` and waits until something listens on TCP
    /// `port` there.
    fn start(ns: &Netns, argv: &[&str], port: u16) -> Server {
        let child = ns
            .command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let mut server = Server(child);
        let filter = format!("sport = :{port}");
        let start = Instant::now();
        while ns
            .exec(&["ss", "-ltnH", &filter])
            .trim()
            .lines()
            .next()
            .is_none()
        {
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("{argv:?} ended before it listened: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{argv:?} never listened on {port}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `h` until its client closed (or failed); a stall fails with how
/// both ends stood (tpa's connection, the kernel's sockets).
fn drive(h: &mut Host<Tap>, ns: &Netns, context: &str) {
    let start = Instant::now();
    while !h.app.closed {
        h.run_once();
        if start.elapsed() > PATIENCE {
            let info = h.app.socket.map(|s| h.state.sockets.info(s));
            let ss = ns.exec_output(&["ss", "-tinoem"]);
            panic!(
                "{context}: stuck: sent {} of {}, received {}, eof {}, errors {:?}\n\
                 tpa: {info:?}\n{:?}\nthe kernel's sockets:\n{}",
                h.app.sent,
                h.app.data.len(),
                h.app.received.len(),
                h.app.eof,
                h.app.errors,
                h.state.sockets.counters(),
                String::from_utf8_lossy(&ss.stdout)
            );
        }
    }
}

/// Byte `i` of the stream tpa sends socat.
fn byte(i: usize) -> u8 {
    let z = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((z ^ (z >> 29)) >> 24) as u8
}

/// tpa's client sends 16 MiB to socat's echo server (`PIPE`), half-closes,
/// and reads the echo to socat's end of stream: the same bytes, the same
/// sha256.
#[test]
fn socat_echoes_16_mib_to_a_tpa_client() {
    const LEN: usize = 16 << 20;
    let pool = pool("tcp-socat");
    let data: Vec<u8> = (0..LEN).map(byte).collect();
    let want = sha256(&data);
    for v6 in [false, true] {
        let context = format!("socat v6 {v6}");
        let ns = Netns::with_tap(if v6 { "tks-s6" } else { "tks-s4" });
        let (listen, server) = if v6 {
            (
                "TCP6-LISTEN:5010,bind=[2001:db8::1],reuseaddr",
                "[2001:db8::1]:5010",
            )
        } else {
            (
                "TCP4-LISTEN:5010,bind=192.0.2.1,reuseaddr",
                "192.0.2.1:5010",
            )
        };
        // -t: after tpa's FIN, up to 30 s for the echo still in the pipe.
        // -b 4096 (PIPE_BUF): PIPE is one pipe socat both writes and reads,
        // with blocking writes; a write larger than the room its select
        // saw blocks socat on itself for good (seen with the default 8 KiB
        // blocks: socat stalled, 4 MB of tpa's bytes unread in its socket).
        let socat = Server::start(
            &ns,
            &["socat", "-b", "4096", "-t", "30", listen, "PIPE"],
            5010,
        );
        let app = Client {
            remote: Some(server.parse().unwrap()),
            data: data.clone(),
            half_close: true,
            ..Client::default()
        };
        let mut h = host(&ns, &pool, app);
        drive(&mut h, &ns, &context);
        assert!(h.app.errors.is_empty(), "{context}: {:?}", h.app.errors);
        assert!(h.app.eof, "{context}: no end of stream from socat");
        assert_eq!(h.app.received.len(), LEN, "{context}");
        let first_difference = h.app.received.iter().zip(&data).position(|(a, b)| a != b);
        assert_eq!(first_difference, None, "{context}: the echo differs");
        let got = sha256(&h.app.received);
        assert_eq!(got, want, "{context}");
        println!(
            "{context}: tpa client -> socat echo, 16 MiB each way, sha256 {got}; {:?}",
            h.state.sockets.counters()
        );
        drop(h);
        drop(socat);
    }
    pool.assert_whole();
}

/// A RESP command: an array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// tpa's client speaks RESP to redis-server: SET of a 1 MiB value, GET of
/// it, 10,000 INCRs of a fresh key, QUIT, all in one pipeline; the replies
/// are exactly `+OK`, the value as a bulk string, `:1` to `:10000`, `+OK`,
/// then redis closes.
#[test]
fn redis_server_answers_a_tpa_client_in_resp() {
    const VALUE: usize = 1 << 20;
    const INCRS: usize = 10_000;
    let pool = pool("tcp-redis");
    let value: Vec<u8> = (0..VALUE).map(|i| b'a' + (byte(i) % 26)).collect();
    let mut commands = resp(&[b"SET", b"tpa:value", &value]);
    commands.extend(resp(&[b"GET", b"tpa:value"]));
    for _ in 0..INCRS {
        commands.extend(resp(&[b"INCR", b"tpa:counter"]));
    }
    commands.extend(resp(&[b"QUIT"]));
    let mut want = b"+OK\r\n".to_vec();
    want.extend(format!("${VALUE}\r\n").as_bytes());
    want.extend(&value);
    want.extend(b"\r\n");
    for i in 1..=INCRS {
        want.extend(format!(":{i}\r\n").as_bytes());
    }
    want.extend(b"+OK\r\n");
    for v6 in [false, true] {
        let context = format!("redis v6 {v6}");
        let ns = Netns::with_tap(if v6 { "tkr-6" } else { "tkr-4" });
        let bind = if v6 { "2001:db8::1" } else { "192.0.2.1" };
        let redis = Server::start(
            &ns,
            &[
                "redis-server",
                "--bind",
                bind,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--dir",
                "/tmp",
            ],
            6379,
        );
        let server = SocketAddr::new(bind.parse().unwrap(), 6379);
        let app = Client {
            remote: Some(server),
            data: commands.clone(),
            half_close: false,
            ..Client::default()
        };
        let mut h = host(&ns, &pool, app);
        drive(&mut h, &ns, &context);
        assert!(h.app.errors.is_empty(), "{context}: {:?}", h.app.errors);
        assert!(h.app.eof, "{context}: redis did not close after QUIT");
        let got = &h.app.received;
        if got != &want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            let from = at.unwrap_or(got.len().min(want.len())).saturating_sub(16);
            panic!(
                "{context}: {} reply bytes, want {}; first difference at {at:?}: got {:?}, want {:?}",
                got.len(),
                want.len(),
                String::from_utf8_lossy(&got[from.min(got.len())..(from + 64).min(got.len())]),
                String::from_utf8_lossy(&want[from..(from + 64).min(want.len())])
            );
        }
        println!(
            "{context}: SET/GET 1 MiB and {INCRS} INCRs pipelined: {} bytes of commands, {} of replies, all as expected",
            commands.len(),
            got.len()
        );
        drop(h);
        drop(redis);
    }
    pool.assert_whole();
}
