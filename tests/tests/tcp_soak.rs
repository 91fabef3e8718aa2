//! The CI-sized soak: 20,000 connect–request–response–close cycles of
//! kernel clients (tests/src/tcp_crr.py, [`CLIENTS`] processes, each one
//! cycle at a time over its own range of cycles) against a
//! tpa server on a TAP device in a namespace. Every cycle's request is
//! checked by tpa and its response by the kernel's side; tpa closes first,
//! so TIME_WAIT is on tpa's side, and its count never goes over the
//! configured bound (with a bound well under the cycles, entries are
//! evicted); at the end no socket is left but the listener, then none, and
//! the pool is whole. The long run, 10^6 cycles against tperf's kernel
//! client with RSS, is tests/tcp_soak.sh.
//!
//! Run as root: the test creates a namespace and a TAP interface.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, Pool, PoolConfig};
use tpa::port::tap::Tap;
use tpa::stage::Cx;
use tpa::wire::MacAddr;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{self, TcpSockets};
use tpa_tests::netns::Netns;
use tpa_tests::tcp_host::{iface, open_tap, HostState, TcpHost, B};

const TPA_MAC: MacAddr = MacAddr([0x02, 0x54, 0x50, 0x41, 0, 0x05]);
const CYCLES: u64 = 20_000;
/// Kernel client processes at once, each with CYCLES / CLIENTS cycles.
const CLIENTS: u64 = 4;
const REQUEST: usize = 100;
const RESPONSE: usize = 300;
/// TIME_WAIT entries at once, at most: far fewer than the cycles, so the
/// bound is reached and entries are evicted.
const TIME_WAIT_MAX: usize = 256;
/// How long a connection stays in TIME_WAIT: short, so the end of the
/// test sees every one expire.
const TIME_WAIT_NS: u64 = 1_000_000_000;
/// How long the run may take before the test gives up (a hang, not a
/// speed check).
const PATIENCE: Duration = Duration::from_secs(300);

/// Byte `j` of cycle `i`'s request (tcp_crr.py's `request_byte`).
fn request_byte(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(j as u64 * 7 + 3) & 0xff) as u8
}

/// Byte `j` of cycle `i`'s response (tcp_crr.py's `response_byte`).
fn response_byte(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(13).wrapping_add(j as u64 * 5 + 1) & 0xff) as u8
}

/// tpa's server: reads each connection's request, checks it, answers and
/// closes.
#[derive(Default)]
struct Server {
    /// Requests being read, by connection.
    reading: HashMap<SocketId, Vec<u8>>,
    /// Cycles answered.
    answered: u64,
    /// Each cycle answered once: bit per cycle index.
    seen: Vec<bool>,
    /// What was wrong (bad request bytes, a socket error): empty when
    /// every cycle was clean.
    problems: Vec<String>,
    /// The most connections in TIME_WAIT seen at once.
    time_wait_peak: usize,
}

impl Server {
    fn step(&mut self, s: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let Some(request) = self.reading.get_mut(&s) else {
            return;
        };
        let mut chunk = [0u8; 512];
        loop {
            match tcp::read(cx, s, &mut chunk) {
                Ok(0) => {
                    self.problems
                        .push(format!("{s:?}: end of stream after {}", request.len()));
                    self.reading.remove(&s);
                    let _ = tcp::close(cx, s);
                    return;
                }
                Ok(n) => request.extend_from_slice(&chunk[..n]),
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.problems.push(format!("{s:?}: read: {e:?}"));
                    self.reading.remove(&s);
                    let _ = tcp::close(cx, s);
                    return;
                }
            }
        }
        if request.len() < REQUEST {
            return;
        }
        let request = self.reading.remove(&s).expect("reading");
        let i = u64::from_le_bytes(request[..8].try_into().expect("8 bytes"));
        let bad = request.len() != REQUEST
            || (8..REQUEST).any(|j| request[j] != request_byte(i, j))
            || i >= CYCLES
            || std::mem::replace(&mut self.seen[i as usize], true);
        if bad {
            self.problems.push(format!(
                "cycle {i}: a bad or repeated request of {} bytes",
                request.len()
            ));
        }
        let response: Vec<u8> = (0..RESPONSE).map(|j| response_byte(i, j)).collect();
        match tcp::send(cx, s, &response) {
            Ok(n) if n == RESPONSE => self.answered += 1,
            other => self
                .problems
                .push(format!("cycle {i}: send took {other:?} of {RESPONSE}")),
        }
        if let Err(e) = tcp::close(cx, s) {
            self.problems.push(format!("cycle {i}: close: {e:?}"));
        }
    }
}

impl App<B, HostState> for Server {
    fn accepted(&mut self, _listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.reading.insert(socket, Vec::with_capacity(REQUEST));
        self.step(socket, cx);
    }

    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(socket, cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.step(socket, cx);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.problems.push(format!("{socket:?}: {error:?}"));
        self.reading.remove(&socket);
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let tw = cx.part::<TcpSockets<B>>().time_wait_count();
        self.time_wait_peak = self.time_wait_peak.max(tw);
        0
    }
}

type Host<P> = TcpHost<P, Server>;

/// tpa's server host on `ns`'s TAP `tpa0`, 192.0.2.2, TIME_WAIT bounded
/// by [`TIME_WAIT_MAX`] and lasting [`TIME_WAIT_NS`].
fn host(ns: &Netns, pool: &Pool) -> Host<Tap> {
    let cfg = TcpConfig {
        time_wait_max: TIME_WAIT_MAX,
        time_wait_ns: TIME_WAIT_NS,
        ..TcpConfig::default()
    };
    cfg.validate().expect("a valid config");
    let state = HostState::new(iface(TPA_MAC, 2), cfg, std::process::id().into());
    let app = Server {
        seen: vec![false; CYCLES as usize],
        ..Server::default()
    };
    TcpHost::build(open_tap(ns, pool, TPA_MAC), state, app)
}

/// 20,000 cycles, each one's bytes checked both ways; TIME_WAIT never
/// over its bound; nothing left at the end.
#[test]
fn twenty_thousand_kernel_cycles_against_a_tpa_server() {
    let pool = Pool::new(PoolConfig {
        name: "tcp-soak".into(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let ns = Netns::new("tsoak");
    ns.ip(&["tuntap", "add", "dev", "tpa0", "mode", "tap"]);
    ns.add_addr("tpa0", "192.0.2.1/24");
    ns.up("tpa0");
    let mut h = host(&ns, &pool);
    let iface = h.state.egress.interface().clone();
    let listener = h
        .state
        .sockets
        .listen("192.0.2.2:5005".parse::<SocketAddr>().unwrap(), 64, &iface)
        .expect("listen");
    let done_flag = AtomicBool::new(false);
    let done = &done_flag;
    let script = format!("{}/src/tcp_crr.py", env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let (out, mut h) = thread::scope(|s| {
        let tpa = s.spawn(move || {
            while !done.load(Ordering::Relaxed) && started.elapsed() < PATIENCE {
                h.run_once();
            }
            h
        });
        let share = CYCLES / CLIENTS;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|k| {
                ns.command(&[
                    "python3",
                    &script,
                    "192.0.2.2",
                    "5005",
                    &(k * share).to_string(),
                    &share.to_string(),
                    &REQUEST.to_string(),
                    &RESPONSE.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start tcp_crr.py")
            })
            .collect();
        let out: Vec<Output> = clients
            .into_iter()
            .map(|c| c.wait_with_output().expect("tcp_crr.py ends"))
            .collect();
        done.store(true, Ordering::Relaxed);
        (out, tpa.join().expect("tpa thread"))
    });
    let elapsed = started.elapsed();
    for (k, out) in out.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kernel client {k} failed ({}): {stdout}{}\nserver: answered {}, problems {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            h.app.answered,
            h.app.problems
        );
        let share = CYCLES / CLIENTS;
        assert_eq!(
            stdout.trim(),
            format!(
                "cycles {share} sent {} received {}",
                share * REQUEST as u64,
                share * RESPONSE as u64
            ),
            "kernel client {k}"
        );
    }
    assert!(h.app.problems.is_empty(), "{:?}", h.app.problems);
    assert_eq!(h.app.answered, CYCLES);
    assert!(h.app.seen.iter().all(|&b| b), "a cycle never answered");
    assert!(h.app.reading.is_empty(), "{:?}", h.app.reading.keys());
    let counters = h.state.sockets.counters();
    assert_eq!(counters.passive_opens, CYCLES, "{counters:?}");
    assert_eq!(
        counters.time_waits, CYCLES,
        "tpa closes first: {counters:?}"
    );
    assert!(
        h.app.time_wait_peak <= TIME_WAIT_MAX,
        "{} in TIME_WAIT at once, over the bound {TIME_WAIT_MAX}",
        h.app.time_wait_peak
    );
    println!(
        "{CYCLES} cycles in {elapsed:?} ({:.0}/s); TIME_WAIT peak {} (bound {TIME_WAIT_MAX}); {counters:?}",
        CYCLES as f64 / elapsed.as_secs_f64(),
        h.app.time_wait_peak
    );
    // TIME_WAIT ends (1 s), then only the listener is left; then nothing.
    let start = Instant::now();
    while h.state.sockets.len() > 1 {
        h.run_once();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sockets left: {} ({} in TIME_WAIT)",
            h.state.sockets.len(),
            h.state.sockets.time_wait_count()
        );
        thread::sleep(Duration::from_millis(1));
    }
    h.state.sockets.close(listener).expect("close the listener");
    h.run_once();
    assert_eq!(h.state.sockets.len(), 0);
    assert_eq!(h.state.sockets.time_wait_count(), 0);
    drop(h);
    pool.assert_whole();
}
