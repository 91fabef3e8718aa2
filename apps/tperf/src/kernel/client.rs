//! The client over the kernel's sockets: a blocking control connection on
//! the calling thread, and `workers` threads each driving its share of the
//! data connections with non-blocking sockets and epoll (mio).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream as StdTcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::ClientConfig;
use crate::control::{ControlClient, ControlEvent, RUN_END_PATIENCE_NS};
use crate::cpu::process_cpu;
use crate::live::{Interval, LiveCounters, Totals};
use crate::protocol::{Role, Summary, HELLO_LEN};
use crate::report::ClientReport;
use crate::session::{ClientSession, ClientStats, Failure, NO_CONNECTION};

use super::{congestion, io_failure, Progress, SocketOptions, OPS_PER_TURN, READ_BUF};

/// How long connecting the control connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connections may take to end once the test's time is up.
const END_PATIENCE: Duration = Duration::from_secs(10);

/// Why a client run could not start.
#[derive(Debug)]
pub struct ClientError(pub String);

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClientError {}

/// Runs the test of `config` against a tperf server, over the kernel's
/// sockets; every `interval` (if any), calls `on_interval` with what the
/// last one moved. An error only when the run could not start (no
/// server); what went wrong during the run is in the report.
pub fn run_client(
    config: &ClientConfig,
    sockets: &SocketOptions,
    interval: Option<Duration>,
    mut on_interval: impl FnMut(&Interval),
) -> Result<ClientReport, ClientError> {
    let server = config.server;
    let mut control = StdTcpStream::connect_timeout(&server, CONNECT_TIMEOUT)
        .map_err(|e| ClientError(format!("cannot connect to the server at {server}: {e}")))?;
    let mut talk = ControlClient::new(config.hello(Role::Control, 0));
    control
        .set_nodelay(true)
        .and_then(|()| control.set_read_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(|e| ClientError(format!("control connection: {e}")))?;
    // The control connection's congestion control, set after its connect
    // (it carries a few messages): the name the report gives, that of
    // the data connections, which take it before theirs.
    sockets
        .apply(&control)
        .map_err(|e| ClientError(format!("control connection: {e}")))?;
    let congestion = congestion::get(&control).ok();
    match exchange(&mut control, &mut talk) {
        Ok(ControlEvent::Accepted) => {}
        Ok(other) => {
            return Err(ClientError(format!(
                "the server at {server} answered the run's hello with {other:?}"
            )))
        }
        Err(e) => {
            return Err(ClientError(format!(
                "the server at {server} did not take the run: {e}"
            )))
        }
    }

    let next_conn = AtomicU64::new(0);
    let cpu_before = process_cpu();
    let start = Instant::now();
    let live: Vec<LiveCounters> = (0..config.workers)
        .map(|_| LiveCounters::default())
        .collect();
    let stats = thread::scope(|scope| {
        let workers: Vec<_> = (0..config.workers)
            .map(|w| {
                let (next_conn, live) = (&next_conn, &live[w as usize]);
                scope.spawn(move || {
                    worker(
                        config,
                        sockets,
                        config.connections_of(w),
                        next_conn,
                        start,
                        live,
                    )
                })
            })
            .collect();
        let totals = || {
            let mut t = Totals::default();
            live.iter().for_each(|l| l.add_to(&mut t));
            t
        };
        if let Some(every) = interval.filter(|i| !i.is_zero()) {
            let mut before = Totals::default();
            let mut from = Duration::ZERO;
            while !workers.iter().all(|h| h.is_finished()) {
                thread::sleep(Duration::from_millis(10).min(every));
                let now = start.elapsed();
                if now < from + every {
                    continue;
                }
                let after = totals();
                on_interval(&Interval {
                    from_s: from.as_secs_f64(),
                    to_s: now.as_secs_f64(),
                    before,
                    after,
                });
                (before, from) = (after, now);
            }
            // The end of the last interval: the test's and the drain's.
            let now = start.elapsed();
            if now > from + every / 10 {
                let after = totals();
                on_interval(&Interval {
                    from_s: from.as_secs_f64(),
                    to_s: now.as_secs_f64(),
                    before,
                    after,
                });
            }
        }
        let mut all = ClientStats::default();
        let mut last_end = Duration::ZERO;
        for handle in workers {
            match handle.join() {
                Ok((s, end)) => {
                    all.merge(&s);
                    last_end = last_end.max(end);
                }
                Err(_) => all.fail(
                    NO_CONNECTION,
                    Failure::Io("a worker thread panicked".into()),
                ),
            }
        }
        (all, last_end)
    });
    let (stats, elapsed) = stats;
    let cpu = process_cpu().since(&cpu_before);

    let summary = finish_run(&mut control, &mut talk, stats.connections_announced);
    Ok(ClientReport {
        config: config.clone(),
        stack: "kernel",
        congestion,
        stats,
        elapsed,
        cpu,
        server: summary,
    })
}

/// Writes what `talk` has to say on the blocking `control` connection and
/// reads until the server's next message.
fn exchange(control: &mut StdTcpStream, talk: &mut ControlClient) -> Result<ControlEvent, String> {
    control
        .write_all(talk.pending())
        .map_err(|e| e.to_string())?;
    talk.wrote(talk.pending().len());
    let mut buf = [0; 128];
    loop {
        // One message at most: the server sends nothing unasked.
        let n = control.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the control connection".into());
        }
        if let Some(event) = talk.on_read(&buf[..n]).map_err(|f| f.to_string())? {
            return Ok(event);
        }
    }
}

/// Tells the server the run is over and reads its summary.
fn finish_run(
    control: &mut StdTcpStream,
    talk: &mut ControlClient,
    announced: u64,
) -> Result<Summary, String> {
    let patience = Duration::from_nanos(RUN_END_PATIENCE_NS) + CONNECT_TIMEOUT;
    control
        .set_read_timeout(Some(patience))
        .map_err(|e| e.to_string())?;
    talk.finish(announced);
    let summary = match exchange(control, talk)? {
        ControlEvent::Summary(s) => Ok(s),
        other => Err(format!(
            "the server sent {other:?} instead of the run's summary"
        )),
    };
    let _ = control.shutdown(Shutdown::Both);
    summary
}

/// One data connection of a worker.
struct Conn {
    stream: TcpStream,
    session: ClientSession,
    connected: bool,
}

/// A worker: keeps `slots` connections going until the test's time is
/// up (`crr`: a new one when one ends), then ends them cleanly. Returns
/// its figures and when, since `start`, its last connection ended.
fn worker(
    config: &ClientConfig,
    sockets: &SocketOptions,
    slots: u32,
    next_conn: &AtomicU64,
    start: Instant,
    live: &LiveCounters,
) -> (ClientStats, Duration) {
    let mut w = Worker {
        config,
        sockets,
        stats: ClientStats::default(),
        next_conn,
        start,
        stopped: false,
        write_buf: vec![0; config.message_size as usize + HELLO_LEN],
        read_buf: vec![0; READ_BUF],
    };
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            w.stats.fail(NO_CONNECTION, io_failure("epoll_create", &e));
            return (w.stats, start.elapsed());
        }
    };
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = (0..slots).map(|_| None).collect();
    for (slot, c) in conns.iter_mut().enumerate() {
        *c = w.open(&poll, slot);
    }
    let deadline = start + config.duration;
    let mut busy: Vec<usize> = Vec::new();
    let mut ready: Vec<usize> = Vec::new();
    loop {
        let now = Instant::now();
        if !w.stopped && now >= deadline {
            w.stopped = true;
            for slot in 0..conns.len() {
                if let Some(c) = conns[slot].as_mut() {
                    c.session.stop();
                    if c.connected {
                        w.turn(&poll, &mut conns, slot, &mut busy);
                    }
                }
            }
        }
        if conns.iter().all(Option::is_none) {
            break;
        }
        if w.stopped && now >= deadline + END_PATIENCE {
            for c in conns.iter_mut().filter_map(Option::take) {
                w.stats.fail(
                    c.session.conn(),
                    Failure::Io(format!(
                        "did not end within {} s of the end of the test",
                        END_PATIENCE.as_secs()
                    )),
                );
            }
            break;
        }
        let timeout = if !busy.is_empty() {
            Duration::ZERO
        } else if w.stopped {
            Duration::from_millis(100)
        } else {
            deadline.saturating_duration_since(now)
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            w.stats.fail(NO_CONNECTION, io_failure("epoll_wait", &e));
            break;
        }
        ready.clear();
        ready.append(&mut busy);
        ready.extend(events.iter().map(|e| e.token().0));
        ready.sort_unstable();
        ready.dedup();
        for &slot in &ready {
            w.turn(&poll, &mut conns, slot, &mut busy);
        }
        live.publish(&w.stats);
    }
    live.publish(&w.stats);
    (w.stats, start.elapsed())
}

struct Worker<'a> {
    config: &'a ClientConfig,
    sockets: &'a SocketOptions,
    stats: ClientStats,
    next_conn: &'a AtomicU64,
    start: Instant,
    stopped: bool,
    write_buf: Vec<u8>,
    read_buf: Vec<u8>,
}

impl Worker<'_> {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// A new data connection in `slot` (none once the test's time is up).
    fn open(&mut self, poll: &Poll, slot: usize) -> Option<Conn> {
        if self.stopped {
            return None;
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let session = ClientSession::new(self.config.hello(Role::Data, conn), self.now_ns());
        let mut stream = match self.sockets.connect(self.config.server) {
            Ok(s) => s,
            Err(e) => {
                self.stats.fail(conn, io_failure("connect", &e));
                return None;
            }
        };
        if let Err(e) = poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.stats.fail(conn, io_failure("epoll_ctl", &e));
            return None;
        }
        Some(Conn {
            stream,
            session,
            connected: false,
        })
    }

    /// Handles whatever is ready on `slot`: the end of a connect, data
    /// both ways, the end of the connection (then, in `crr`, the next).
    fn turn(
        &mut self,
        poll: &Poll,
        conns: &mut [Option<Conn>],
        slot: usize,
        busy: &mut Vec<usize>,
    ) {
        let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let result = if c.connected {
            self.drive(c)
        } else {
            self.check_connect(c).and_then(|up| {
                if up {
                    self.drive(c)
                } else {
                    Ok(Progress::Idle)
                }
            })
        };
        match result {
            Ok(Progress::Idle) => {}
            Ok(Progress::Busy) => busy.push(slot),
            Ok(Progress::Finished) => {
                let mut c = conns[slot].take().expect("the connection");
                let _ = poll.registry().deregister(&mut c.stream);
                drop(c);
                conns[slot] = self.open(poll, slot);
            }
            Err(failure) => {
                let mut c = conns[slot].take().expect("the connection");
                let _ = poll.registry().deregister(&mut c.stream);
                self.stats.fail(c.session.conn(), failure);
                // The slot stays empty: a failing server is not hammered.
            }
        }
    }

    /// Whether the connect completed (`Ok(false)`: not yet).
    fn check_connect(&mut self, c: &mut Conn) -> Result<bool, Failure> {
        if let Some(e) = c
            .stream
            .take_error()
            .map_err(|e| io_failure("connect", &e))?
        {
            return Err(io_failure("connect", &e));
        }
        match c.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(io_failure("connect", &e)),
        }
        c.connected = true;
        self.stats.connections_opened += 1;
        if self.config.test.is_transactional() {
            c.stream
                .set_nodelay(true)
                .map_err(|e| io_failure("TCP_NODELAY", &e))?;
        }
        c.session.connected(self.now_ns());
        Ok(true)
    }

    /// Writes and reads until the socket would block, the connection
    /// ends, or this turn's share of work is done.
    fn drive(&mut self, c: &mut Conn) -> Result<Progress, Failure> {
        let (mut writes, mut reads, mut more) = (0, 0, false);
        loop {
            let mut progress = false;
            while c.session.wants_write() {
                if writes == OPS_PER_TURN {
                    more = true;
                    break;
                }
                writes += 1;
                let limit = self.config.message_size as usize
                    + if c.session.hello_sent() { 0 } else { HELLO_LEN };
                let n = c.session.fill(&mut self.write_buf[..limit]);
                match c.stream.write(&self.write_buf[..n]) {
                    Ok(0) => return Err(Failure::Io("write returned 0".into())),
                    Ok(k) => {
                        c.session.wrote(k, &mut self.stats);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_failure("write", &e)),
                }
            }
            if c.session.wants_shutdown() {
                c.stream
                    .shutdown(Shutdown::Write)
                    .map_err(|e| io_failure("shutdown", &e))?;
                c.session.shut_down();
                progress = true;
            }
            loop {
                if reads == OPS_PER_TURN {
                    more = true;
                    break;
                }
                reads += 1;
                match c.stream.read(&mut self.read_buf) {
                    Ok(0) => {
                        c.session.on_eof(&mut self.stats)?;
                        return Ok(Progress::Finished);
                    }
                    Ok(k) => {
                        let now = self.now_ns();
                        c.session
                            .on_read(&self.read_buf[..k], now, &mut self.stats)?;
                        progress = true;
                        if c.session.wants_write() || c.session.wants_shutdown() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_failure("read", &e)),
                }
            }
            if more {
                return Ok(Progress::Busy);
            }
            if !progress {
                return Ok(Progress::Idle);
            }
        }
    }
}
