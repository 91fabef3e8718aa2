//! The client on tpa: the control connection and the data connections
//! are sockets of one pipeline, driven by its app from tpa's events.
//!
//! The app's life: connect the control connection and send the run's
//! hello; on the server's ack, open the data connections (the test's
//! clock starts); write, read and check on their events until the test's
//! time is up (`crr`: a new connection when one ends); then end them
//! cleanly, send `Done` and read the server's summary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::worker::{run_loop, Progress, StopFlag, WorkLoop};
use tpa_stages::tcp;

use super::{
    build, counters, drained, on_port, pool_buffers, send_filled, OnPort, TpaEndpoint, TpaError,
    TperfPipeline, TperfState, DRAIN_NS,
};
use crate::config::ClientConfig;
use crate::control::{ControlClient, ControlEvent, RUN_END_PATIENCE_NS};
use crate::cpu::{process_cpu, CpuTime};
use crate::live::{Interval, LiveCounters, Totals};
use crate::protocol::{Role, Summary, HELLO_LEN};
use crate::report::ClientReport;
use crate::session::{ClientSession, ClientStats, Failure};

/// How long the control connection may take to be accepted.
const CONNECT_NS: u64 = 5_000_000_000;
/// How long connections may take to end once the test's time is up.
const END_PATIENCE_NS: u64 = 10_000_000_000;

/// What the client is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The control connection's handshake, hello and the server's ack.
    Starting,
    /// The data connections run (until every one ended after the test's
    /// time).
    Running,
    /// `Done` sent; waiting for the summary.
    Finishing,
    /// The summary arrived, or the run failed.
    Done,
}

/// One data connection.
struct DataConn {
    session: ClientSession,
    connected: bool,
}

/// The client's app.
struct Client<B> {
    config: ClientConfig,
    phase: Phase,
    control: Option<SocketId>,
    talk: ControlClient,
    /// Why the run could not start or finish (no server, a broken control
    /// connection).
    fatal: Option<String>,
    summary: Option<Result<Summary, String>>,
    conns: HashMap<SocketId, DataConn>,
    next_conn: u64,
    stats: ClientStats,
    started_ns: u64,
    start_ns: u64,
    deadline_ns: u64,
    stopped: bool,
    end_ns: u64,
    finish_by_ns: u64,
    cpu_before: CpuTime,
    cpu: CpuTime,
    _buffers: core::marker::PhantomData<fn(B)>,
}

impl<B: PacketBuf> Client<B> {
    fn new(config: &ClientConfig) -> Self {
        Client {
            config: config.clone(),
            phase: Phase::Starting,
            control: None,
            talk: ControlClient::new(config.hello(Role::Control, 0)),
            fatal: None,
            summary: None,
            conns: HashMap::new(),
            next_conn: 0,
            stats: ClientStats::default(),
            started_ns: 0,
            start_ns: 0,
            deadline_ns: 0,
            stopped: false,
            end_ns: 0,
            finish_by_ns: 0,
            cpu_before: CpuTime::default(),
            cpu: CpuTime::default(),
            _buffers: core::marker::PhantomData,
        }
    }

    fn fail_run(&mut self, why: String) {
        if self.fatal.is_none() {
            self.fatal = Some(why);
        }
        self.phase = Phase::Done;
    }

    /// The run is over: the control connection closes (our FIN after
    /// what it owes).
    fn close_control(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) {
        if let Some(s) = self.control.take() {
            let _ = tcp::close(cx, s);
        }
    }

    /// Opens one data connection (none once the test's time is up).
    fn open(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) {
        if self.stopped {
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let session = ClientSession::new(self.config.hello(Role::Data, conn), cx.now_ns());
        match tcp::connect(cx, self.config.server) {
            Ok(s) => {
                self.conns.insert(
                    s,
                    DataConn {
                        session,
                        connected: false,
                    },
                );
            }
            Err(e) => self.stats.fail(conn, Failure::Io(format!("connect: {e}"))),
        }
    }

    /// Writes what the control connection owes.
    fn control_write(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) {
        let Some(s) = self.control else { return };
        while !self.talk.pending().is_empty() {
            match tcp::send(cx, s, self.talk.pending()) {
                Ok(n) => self.talk.wrote(n),
                Err(SocketError::WouldBlock) => return,
                Err(e) => return self.fail_run(format!("control connection: send: {e}")),
            }
        }
    }

    /// Reads what the server said on the control connection.
    fn control_read(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) {
        let Some(s) = self.control else { return };
        loop {
            let buf = match tcp::recv(cx, s) {
                Ok(Some(buf)) => buf,
                Ok(None) => {
                    if self.phase != Phase::Done {
                        self.fail_run("the server closed the control connection".into());
                    }
                    return self.close_control(cx);
                }
                Err(SocketError::WouldBlock) => return,
                Err(e) => return self.fail_run(format!("control connection: {e}")),
            };
            for segment in buf.segments() {
                match self.talk.on_read(segment) {
                    Ok(None) => {}
                    Ok(Some(ControlEvent::Accepted)) => self.start(cx),
                    Ok(Some(ControlEvent::Summary(summary))) => {
                        self.summary = Some(Ok(summary));
                        self.phase = Phase::Done;
                        return self.close_control(cx);
                    }
                    Err(f) => {
                        self.fail_run(format!("the server did not take the run: {f}"));
                        return self.close_control(cx);
                    }
                }
            }
        }
    }

    /// The server took the run: the data connections open, the test's
    /// clock starts.
    fn start(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.phase = Phase::Running;
        self.start_ns = cx.now_ns();
        let duration = u64::try_from(self.config.duration.as_nanos()).unwrap_or(u64::MAX);
        self.deadline_ns = self.start_ns.saturating_add(duration);
        self.cpu_before = process_cpu();
        for _ in 0..self.config.connections {
            self.open(cx);
        }
    }

    /// Writes, shuts down, reads on data connection `s` until it would
    /// block; ends it when it is over.
    fn drive(&mut self, s: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        let Some(c) = self.conns.get_mut(&s) else {
            return;
        };
        if !c.connected {
            return;
        }
        let message_size = self.config.message_size as usize;
        let result = drive_conn(c, s, cx, &mut self.stats, message_size);
        match result {
            Ok(false) => {}
            Ok(true) => {
                self.conns.remove(&s);
                let _ = tcp::close(cx, s);
                self.end_ns = cx.now_ns();
                // crr: the next connection in its place.
                self.open(cx);
            }
            Err(failure) => self.fail_conn(s, failure, cx),
        }
    }

    fn fail_conn(&mut self, s: SocketId, failure: Failure, cx: &mut Cx<'_, B, TperfState<B>>) {
        if let Some(c) = self.conns.remove(&s) {
            self.stats.fail(c.session.conn(), failure);
            let _ = tcp::abort(cx, s);
            self.end_ns = cx.now_ns();
            // The slot stays empty: a failing server is not hammered.
        }
    }
}

/// One turn of data connection `c`: `Ok(true)` when it ended cleanly.
fn drive_conn<B: PacketBuf>(
    c: &mut DataConn,
    s: SocketId,
    cx: &mut Cx<'_, B, TperfState<B>>,
    stats: &mut ClientStats,
    message_size: usize,
) -> Result<bool, Failure> {
    let io = |call: &str, e: SocketError| Failure::Io(format!("{call}: {e}"));
    loop {
        let mut progress = false;
        while c.session.wants_write() {
            let limit = message_size + if c.session.hello_sent() { 0 } else { HELLO_LEN };
            let session = &c.session;
            match send_filled(cx, s, limit, |out| session.fill(out)) {
                Ok(Some(k)) => {
                    c.session.wrote(k, stats);
                    progress = true;
                }
                Ok(None) => break,
                Err(e) => return Err(io("send", e)),
            }
        }
        if c.session.wants_shutdown() {
            tcp::shutdown(cx, s).map_err(|e| io("shutdown", e))?;
            c.session.shut_down();
            progress = true;
        }
        loop {
            match tcp::recv(cx, s) {
                Ok(Some(buf)) => {
                    let now = cx.now_ns();
                    for segment in buf.segments() {
                        c.session.on_read(segment, now, stats)?;
                    }
                    progress = true;
                    if c.session.wants_write() || c.session.wants_shutdown() {
                        break;
                    }
                }
                Ok(None) => {
                    c.session.on_eof(stats)?;
                    return Ok(true);
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => return Err(io("recv", e)),
            }
        }
        if !progress {
            return Ok(false);
        }
    }
}

impl<B: PacketBuf> App<B, TperfState<B>> for Client<B> {
    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        if Some(socket) == self.control {
            return self.control_write(cx);
        }
        if let Some(c) = self.conns.get_mut(&socket) {
            if !c.connected {
                c.connected = true;
                self.stats.connections_opened += 1;
                c.session.connected(cx.now_ns());
            }
        }
        self.drive(socket, cx);
    }

    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        if Some(socket) == self.control {
            return self.control_read(cx);
        }
        self.drive(socket, cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.readable(socket, cx);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, TperfState<B>>) {
        if Some(socket) == self.control {
            let server = self.config.server;
            let _ = tcp::close(cx, socket);
            self.control = None;
            return self.fail_run(match self.phase {
                Phase::Starting => format!("cannot connect to the server at {server}: {error}"),
                _ => format!("control connection: {error}"),
            });
        }
        self.fail_conn(socket, Failure::Io(error.to_string()), cx);
    }

    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        if self.conns.contains_key(&socket) {
            self.fail_conn(socket, Failure::Io("closed under us".into()), cx);
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) -> usize {
        let now = cx.now_ns();
        match self.phase {
            Phase::Starting if self.control.is_none() && self.fatal.is_none() => {
                self.started_ns = now;
                let server = self.config.server;
                match tcp::connect(cx, server) {
                    Ok(s) => self.control = Some(s),
                    Err(e) => {
                        self.fail_run(format!("cannot connect to the server at {server}: {e}"))
                    }
                }
                1
            }
            Phase::Starting if now.saturating_sub(self.started_ns) > CONNECT_NS => {
                self.fail_run(format!(
                    "the server at {} did not take the run within {} s",
                    self.config.server,
                    CONNECT_NS / 1_000_000_000
                ));
                1
            }
            Phase::Running => {
                if !self.stopped && now >= self.deadline_ns {
                    self.stopped = true;
                    let sockets: Vec<SocketId> = self.conns.keys().copied().collect();
                    for s in sockets {
                        if let Some(c) = self.conns.get_mut(&s) {
                            c.session.stop();
                        }
                        self.drive(s, cx);
                    }
                }
                if self.stopped && now >= self.deadline_ns.saturating_add(END_PATIENCE_NS) {
                    let late: Vec<SocketId> = self.conns.keys().copied().collect();
                    for s in late {
                        let why = format!(
                            "did not end within {} s of the end of the test",
                            END_PATIENCE_NS / 1_000_000_000
                        );
                        self.fail_conn(s, Failure::Io(why), cx);
                    }
                }
                if self.conns.is_empty() && (self.stopped || self.next_conn > 0) {
                    self.cpu = process_cpu().since(&self.cpu_before);
                    if self.end_ns == 0 {
                        self.end_ns = now;
                    }
                    self.phase = Phase::Finishing;
                    self.finish_by_ns = now
                        .saturating_add(RUN_END_PATIENCE_NS)
                        .saturating_add(CONNECT_NS);
                    self.talk.finish(self.stats.connections_announced);
                    self.control_write(cx);
                    return 1;
                }
                0
            }
            Phase::Finishing if now >= self.finish_by_ns => {
                self.summary = Some(Err("the server's summary did not come in time".into()));
                self.phase = Phase::Done;
                self.close_control(cx);
                1
            }
            _ => 0,
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Starting => Some(self.started_ns.saturating_add(CONNECT_NS)),
            Phase::Running if !self.stopped => Some(self.deadline_ns),
            Phase::Running => Some(self.deadline_ns.saturating_add(END_PATIENCE_NS)),
            Phase::Finishing => Some(self.finish_by_ns),
            Phase::Done => None,
        }
    }
}

/// The client's loop: the pipeline until the run is over; the live
/// figures every interval.
struct ClientLoop<'a, P: Port, F> {
    pipeline: TperfPipeline<P, Client<P::Buf>>,
    stop: &'a StopFlag,
    interval_ns: u64,
    on_interval: F,
    live: LiveCounters,
    before: Totals,
    from_ns: u64,
    /// Once the run is over: until when its connections may take to close.
    drain_until_ns: Option<u64>,
}

impl<P: Port, F: FnMut(&Interval)> ClientLoop<'_, P, F> {
    fn interval(&mut self, now_ns: u64) {
        let app = self.pipeline.app();
        self.live.publish(&app.stats);
        let mut after = Totals::default();
        self.live.add_to(&mut after);
        let start = app.start_ns;
        (self.on_interval)(&Interval {
            from_s: self.from_ns.saturating_sub(start) as f64 / 1e9,
            to_s: now_ns.saturating_sub(start) as f64 / 1e9,
            before: self.before,
            after,
        });
        (self.before, self.from_ns) = (after, now_ns);
    }
}

impl<P: Port, F: FnMut(&Interval)> WorkLoop for ClientLoop<'_, P, F> {
    type Report = ();

    fn run_once(&mut self) -> Progress {
        let done = self.pipeline.run_once();
        let app = self.pipeline.app();
        if self.interval_ns > 0 && app.phase == Phase::Running {
            let now = tpa::time::Clock::global().now_ns();
            if self.from_ns == 0 {
                self.from_ns = app.start_ns;
            }
            if now >= self.from_ns.saturating_add(self.interval_ns) {
                self.interval(now);
            }
        }
        if self.pipeline.app().phase == Phase::Done {
            let now = tpa::time::Clock::global().now_ns();
            let until = *self
                .drain_until_ns
                .get_or_insert(now.saturating_add(DRAIN_NS));
            if drained(&self.pipeline.state().tcp, 0) || now >= until {
                self.stop.raise();
            }
        }
        done.into()
    }

    fn finish(self) {}
}

/// What the client runs on the port.
struct ClientJob<'a, F> {
    config: &'a ClientConfig,
    endpoint: &'a TpaEndpoint,
    interval: Option<Duration>,
    on_interval: F,
    stop: &'a StopFlag,
}

impl<F: FnMut(&Interval)> OnPort for ClientJob<'_, F> {
    type Out = Result<ClientReport, TpaError>;

    fn run<P: Port>(self, port: P) -> Self::Out {
        let pipeline = build(port, self.endpoint, Client::new(self.config));
        let mut work = ClientLoop {
            pipeline,
            stop: self.stop,
            interval_ns: self
                .interval
                .map_or(0, |i| u64::try_from(i.as_nanos()).unwrap_or(u64::MAX)),
            on_interval: self.on_interval,
            live: LiveCounters::default(),
            before: Totals::default(),
            from_ns: 0,
            drain_until_ns: None,
        };
        run_loop(&mut work, self.stop, self.endpoint.idle());
        let app = work.pipeline.app();
        if let Some(why) = &app.fatal {
            if app.phase != Phase::Done || app.next_conn == 0 {
                return Err(TpaError(why.clone()));
            }
        }
        // The last interval: the test's end and the drain.
        if work.interval_ns > 0 && app.start_ns > 0 {
            let end = app.end_ns.max(app.start_ns);
            if end > work.from_ns.saturating_add(work.interval_ns / 10) {
                work.interval(end);
            }
        }
        let app = work.pipeline.app();
        if std::env::var_os("TPA_TPERF_COUNTERS").is_some() {
            eprint!("{}", counters(&work.pipeline));
        }
        let server = match (&app.summary, &app.fatal) {
            (Some(s), _) => s.clone(),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Err("the run was stopped".into()),
        };
        Ok(ClientReport {
            config: self.config.clone(),
            stack: "tpa",
            stats: app.stats.clone(),
            elapsed: Duration::from_nanos(app.end_ns.saturating_sub(app.start_ns)),
            cpu: app.cpu,
            server,
        })
    }
}

/// Runs the test of `config` against a tperf server, over tpa on
/// `endpoint`'s port; every `interval` (if any), calls `on_interval`
/// with what the last one moved. An error only when the run could not
/// start (a bad flag, the port, no server); what went wrong during the
/// run is in the report.
pub fn run_client(
    config: &ClientConfig,
    endpoint: &TpaEndpoint,
    interval: Option<Duration>,
    on_interval: impl FnMut(&Interval),
) -> Result<ClientReport, TpaError> {
    endpoint.validate()?;
    if config.workers != 1 {
        return Err(TpaError(format!(
            "-w {}: tpa's backend runs one worker for now (one pipeline on one queue)",
            config.workers
        )));
    }
    if !has_family(endpoint, config.server) {
        return Err(TpaError(format!(
            "-s {}: no --ip of its family to connect from",
            config.server
        )));
    }
    let stop = StopFlag::new();
    let job = ClientJob {
        config,
        endpoint,
        interval: interval.filter(|i| !i.is_zero()),
        on_interval,
        stop: &stop,
    };
    let (report, leaked) = on_port(endpoint, pool_buffers(config.connections), job)?;
    if leaked > 0 {
        eprintln!("tpa-tperf: {leaked} buffers not returned to the pool (a leak)");
    }
    report
}

/// Whether `endpoint` has an address of `to`'s family.
fn has_family(endpoint: &TpaEndpoint, to: SocketAddr) -> bool {
    endpoint
        .ips
        .iter()
        .any(|ip| matches!(ip, tpa_responder::IpCidr::V4(_)) == to.is_ipv4())
}
