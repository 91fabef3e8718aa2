//! The socket trace end to end: two tpa stacks on a MemoryWire (virtual
//! clock), the client traced; the server's port drops the client's third
//! data segment, so the client recovers; its ring decodes to the
//! handshake, the data, the recovery and its end, the close; the
//! recovery's end archived the ring to a file of its own.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
use tpa::port::memory::{Direction, End, MemoryWire, WireConfig};
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::time::VirtualClock;
use tpa::wire::MacAddr;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::conn::State;
use tpa_stages::trace::decode::{decode, lines, Event};
use tpa_stages::trace::record::CwndReason;
use tpa_stages::trace::ring::SlotStatus;
use tpa_stages::trace::TraceConfig;
use tpa_tests::tcp_host::{iface, virtual_step, HostState, TcpHost, B};

const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const PORT: u16 = 5001;
/// Bytes the client sends: about twenty full segments.
const LEN: usize = 28_000;

/// The client sends `LEN` bytes and half-closes; the server reads to the
/// end and closes; the client closes at the end of the server's stream.
#[derive(Default)]
struct OneWay {
    remote: Option<SocketAddr>,
    listener: Option<SocketId>,
    socket: Option<SocketId>,
    started: bool,
    sent: usize,
    received: usize,
    shut: bool,
    eof: bool,
    closed: bool,
    errors: Vec<SocketError>,
}

impl OneWay {
    fn pump(&mut self, cx: &mut Cx<'_, B, HostState>) {
        let Some(s) = self.socket else { return };
        if self.closed {
            return;
        }
        // Drain first: the server's stream ends with its FIN.
        loop {
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => self.received += buf.total_len(),
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
        let chunk = [0x5au8; 4096];
        while self.remote.is_some() && self.sent < LEN {
            let n = chunk.len().min(LEN - self.sent);
            match tcp::send(cx, s, &chunk[..n]) {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(k) => self.sent += k,
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
        }
        let done_sending = self.remote.is_none() || self.sent == LEN;
        if done_sending && !self.shut && (self.remote.is_some() || self.eof) {
            self.shut = true;
            if let Err(e) = tcp::shutdown(cx, s) {
                self.errors.push(e);
            }
        }
        if self.shut && self.eof {
            tcp::close(cx, s).expect("close");
            self.closed = true;
        }
    }
}

impl App<B, HostState> for OneWay {
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let _ = tcp::accept(cx, listener).expect("accept");
        tcp::close(cx, listener).expect("close the listener");
        self.listener = None;
        self.socket = Some(socket);
        self.pump(cx);
    }
    fn readable(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.pump(cx);
    }
    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.socket = Some(socket);
        self.pump(cx);
    }
    fn peer_closed(&mut self, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        self.pump(cx);
    }
    fn error(&mut self, _socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.errors.push(error);
    }
    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        if !self.started {
            self.started = true;
            if let Some(remote) = self.remote {
                self.socket = Some(tcp::connect(cx, remote).expect("connect"));
                return 1;
            }
        }
        0
    }
}

/// A port that loses the `nth` (from 1) received frame longer than
/// `min_len` bytes: one data segment.
struct DropNth<P> {
    port: P,
    min_len: usize,
    nth: usize,
    seen: Rc<Cell<usize>>,
}

impl<P: Port<Buf = B>> Port for DropNth<P> {
    type Buf = B;
    fn rx_burst<const N: usize>(&mut self, rx: &mut tpa::port::Burst<B, N>) -> usize {
        let before = rx.len();
        self.port.rx_burst(rx);
        let mut got = Vec::new();
        while rx.len() > before {
            got.push(rx.pop().expect("a frame"));
        }
        got.reverse();
        for buf in got {
            if buf.data().len() > self.min_len {
                self.seen.set(self.seen.get() + 1);
                if self.seen.get() == self.nth {
                    continue; // lost
                }
            }
            rx.push(buf);
        }
        rx.len() - before
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

/// One step of the story a trace must tell: what it is, how to know it.
type Step = Box<dyn Fn(&Event) -> bool>;

/// A fresh run directory under the system's temporary one.
fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tpa-trace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_loss_recovery_decodes_to_its_events_and_is_archived() {
    let seed = 7;
    let dir = run_dir("recovery");
    let clock = VirtualClock::new();
    let pool = Pool::new(PoolConfig {
        name: "tcp-trace".into(),
        capacity: 4096,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .unwrap();
    let wire = MemoryWire::new(WireConfig {
        seed,
        mac_a: MAC_A,
        mac_b: MAC_B,
        ring_size: 1024,
        pool: Some(pool.clone()),
        clock: clock.clone().into(),
        ..WireConfig::default()
    })
    .unwrap();
    let client_app = OneWay {
        remote: Some(SocketAddr::new("192.0.2.2".parse().unwrap(), PORT)),
        ..OneWay::default()
    };
    let mut client_state = HostState::new(iface(MAC_A, 1), TcpConfig::default(), seed);
    let trace_cfg = TraceConfig {
        enabled: true,
        records: 256,
        dir: dir.clone(),
        archive_per_sec: 10,
    };
    client_state
        .sockets
        .enable_trace(&trace_cfg)
        .expect("trace file");
    let trace_path = client_state.sockets.tracer().unwrap().path().to_path_buf();
    let mut a = TcpHost::build(wire.port(End::A, 0).unwrap(), client_state, client_app)
        .with_time_source(clock.clone().into());
    let dropped = Rc::new(Cell::new(0));
    let server_port = DropNth {
        port: wire.port(End::B, 0).unwrap(),
        min_len: 200,
        nth: 3,
        seen: Rc::clone(&dropped),
    };
    let server_state = HostState::new(iface(MAC_B, 2), TcpConfig::default(), !seed);
    let mut b = TcpHost::build(server_port, server_state, OneWay::default())
        .with_time_source(clock.clone().into());
    let listener = b
        .state
        .sockets
        .listen("0.0.0.0:5001".parse().unwrap(), 4, &iface(MAC_B, 2))
        .unwrap();
    b.app.listener = Some(listener);

    let deadline = clock.now_ns() + 600_000_000_000;
    loop {
        let now = clock.now_ns();
        let sa = a.run_once_at(now);
        let sb = b.run_once_at(now);
        if a.app.closed && b.app.closed && a.state.sockets.is_empty() && b.state.sockets.is_empty()
        {
            break;
        }
        assert!(
            now < deadline,
            "not finished: client {:?} server {:?}",
            (a.app.sent, a.app.errors.clone()),
            (b.app.received, b.app.errors.clone())
        );
        let in_flight =
            wire.stats(Direction::AToB).in_flight + wire.stats(Direction::BToA).in_flight;
        clock.advance_ns(virtual_step(now, &[sa, sb], &[], in_flight, 1_000_000));
    }
    assert_eq!(b.app.received, LEN);
    assert!(a.app.errors.is_empty() && b.app.errors.is_empty());
    assert!(dropped.get() > 3, "the third data segment was dropped");

    let dump = decode(&std::fs::read(&trace_path).unwrap()).expect("decodes");
    assert_eq!(dump.records, 256);
    assert_eq!(dump.sockets.len(), 1, "{dump:?}");
    let sock = &dump.sockets[0];
    for line in lines(sock) {
        println!("{line}");
    }
    assert_eq!(sock.status, SlotStatus::Closed, "freed after TIME_WAIT");
    assert_eq!(sock.remote, "192.0.2.2:5001".parse().unwrap());
    assert!(sock.iss != 0 && sock.irs != 0, "both ISNs known: {sock:?}");
    assert!(sock.written <= 256, "nothing wrapped away");
    let events: Vec<Event> = sock.entries.iter().map(|e| e.event).collect();
    // The expected story, in order (other records between).
    let story: Vec<(&str, Step)> = vec![
        (
            "attached in SYN_SENT",
            Box::new(|e| {
                matches!(
                    e,
                    Event::State {
                        to: Some(State::SynSent),
                        ..
                    }
                )
            }),
        ),
        (
            "our SYN",
            Box::new(|e| matches!(e, Event::Out(s) if s.flags == 0x02 && s.seq == 0)),
        ),
        (
            "their SYN-ACK",
            Box::new(|e| matches!(e, Event::In(s) if s.flags == 0x12 && s.ack == 1)),
        ),
        (
            "established",
            Box::new(|e| {
                matches!(
                    e,
                    Event::State {
                        to: Some(State::Established),
                        ..
                    }
                )
            }),
        ),
        (
            "a write",
            Box::new(|e| matches!(e, Event::Write { bytes, .. } if *bytes > 0)),
        ),
        // All of it is queued at once, and the half-close behind it.
        (
            "FIN_WAIT_1",
            Box::new(|e| {
                matches!(
                    e,
                    Event::State {
                        to: Some(State::FinWait1),
                        ..
                    }
                )
            }),
        ),
        (
            "the first data segment",
            Box::new(|e| matches!(e, Event::Out(s) if s.seq == 1 && s.len > 0)),
        ),
        (
            "a duplicate ACK for the hole",
            Box::new(|e| matches!(e, Event::In(s) if s.len == 0 && s.ack > 1)),
        ),
        (
            "recovery begins",
            Box::new(|e| {
                matches!(
                    e,
                    Event::Cwnd {
                        reason: Some(CwndReason::Recovery),
                        ..
                    }
                )
            }),
        ),
        (
            "the lost segment again",
            Box::new(|e| matches!(e, Event::Retransmit(s) if s.seq > 1 && s.len > 0)),
        ),
        (
            "recovery ends",
            Box::new(|e| {
                matches!(
                    e,
                    Event::Cwnd {
                        reason: Some(CwndReason::RecoveryEnd),
                        ..
                    }
                )
            }),
        ),
        (
            "our FIN",
            Box::new(|e| matches!(e, Event::Out(s) if s.flags & 0x01 != 0)),
        ),
        (
            "their FIN",
            Box::new(|e| matches!(e, Event::In(s) if s.flags & 0x01 != 0 && s.seq == 1)),
        ),
        (
            "TIME_WAIT",
            Box::new(|e| {
                matches!(
                    e,
                    Event::State {
                        to: Some(State::TimeWait),
                        ..
                    }
                )
            }),
        ),
        (
            "CLOSED",
            Box::new(|e| {
                matches!(
                    e,
                    Event::State {
                        to: Some(State::Closed),
                        ..
                    }
                )
            }),
        ),
    ];
    let mut at = 0;
    for (what, found) in &story {
        match events[at..].iter().position(found) {
            Some(i) => at += i + 1,
            None => panic!("seed {seed}: no {what} after record {at} in {events:#?}"),
        }
    }
    // The retransmission resends the third segment: what was lost.
    let first_len = events
        .iter()
        .find_map(|e| match e {
            Event::Out(s) if s.len > 0 => Some(u32::from(s.len)),
            _ => None,
        })
        .unwrap();
    let rexmt = events.iter().find_map(|e| match e {
        Event::Retransmit(s) => Some(s.seq),
        _ => None,
    });
    assert_eq!(rexmt, Some(1 + 2 * first_len));
    // Times never go backwards and the whole story took virtual time.
    let times: Vec<u64> = sock.entries.iter().map(|e| e.time_ns).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times.last().unwrap() > times.first().unwrap());

    // The recovery's end archived the ring.
    let archives: Vec<_> = std::fs::read_dir(dir.join("archive"))
        .expect("an archive directory")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let archived = decode(&std::fs::read(&archives[0]).unwrap()).unwrap();
    assert_eq!(archived.sockets.len(), 1);
    assert!(archived.sockets[0].entries.iter().any(|e| matches!(
        e.event,
        Event::Cwnd {
            reason: Some(CwndReason::RecoveryEnd),
            ..
        }
    )));
    assert_eq!(a.state.sockets.tracer().unwrap().archive_counts(), (1, 0));

    drop((a, b, wire));
    pool.assert_whole();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_writers_trace_is_read_by_another_process() {
    use std::io::BufRead;
    let dir = run_dir("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trace_writer"))
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no unmap
    let status = child.wait().unwrap();
    assert!(!status.success());
    let dump = decode(&std::fs::read(dir.join("writer.trace")).unwrap()).expect("decodes");
    assert_eq!(dump.sockets.len(), 1);
    let s = &dump.sockets[0];
    assert_eq!((s.index, s.generation, s.status), (0, 9, SlotStatus::Live));
    assert_eq!((s.iss, s.irs), (11, 22));
    assert!(s.written >= 3);
    let writes: Vec<(u64, u32, u32)> = s
        .entries
        .iter()
        .filter_map(|e| match e.event {
            Event::Write { bytes, queued } => Some((e.time_ns, bytes, queued)),
            _ => None,
        })
        .collect();
    if s.written <= 64 {
        let t = tpa_stages::trace::record::TICK_NS;
        assert_eq!(writes, vec![(t, 1, 10), (2 * t, 2, 20), (3 * t, 3, 30)]);
    }
    // Whatever the writer got to, every kept record decodes as written.
    assert!(s.entries.iter().all(|e| matches!(
        e.event,
        Event::Write { .. } | Event::Read { .. } | Event::Clock
    )));
    std::fs::remove_dir_all(&dir).unwrap();
}
