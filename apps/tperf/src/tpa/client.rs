//! The client on tpa: one pipeline per worker, each on its queue of the
//! port, driven by its app from tpa's events. Worker 0 holds the control
//! connection; every worker opens its share of the data connections
//! (from ports whose replies land on its queue) once worker 0 heard the
//! server's ack, and hands its figures to worker 0 when they ended.
//!
//! The app's life: connect the control connection and send the run's
//! hello; on the server's ack, open the data connections (the test's
//! clock starts); write, read and check on their events until the test's
//! time is up (`crr`: a new connection when one ends); then end them
//! cleanly, send `Done` and read the server's summary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::port::steer::ShareAnswers;
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::worker::{run_loop, LoopStats, Progress, StopFlag, WorkLoop};
use tpa_stages::ops::snapshot::Counter;
use tpa_stages::ops::{run_metered, Instance, Publisher};
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;

use super::{
    build, counters, drained, mark_opened, on_port, pool_buffers, send_filled, worker_line, Handed,
    MarkConnections, OnPort, TpaEndpoint, TpaError, TperfPipeline, TperfState, WorkerSetup,
    DRAIN_NS,
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
/// How often a worker looks at what the others did (the start, their
/// end) while it waits for them.
const RECHECK_NS: u64 = 1_000_000;
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

/// What the client's workers share.
struct Crew {
    workers: usize,
    /// When worker 0 heard the server's ack (0: not yet): the test's
    /// clock, the same for every worker.
    start_ns: AtomicU64,
    /// Worker 0 gave up the run: the others stop.
    abort: AtomicBool,
    /// Data connections' numbers, unique over the workers.
    next_conn: AtomicU64,
    /// Each worker's figures, published for the live intervals.
    live: Vec<LiveCounters>,
    /// What the other workers handed in once their connections ended.
    ended: Mutex<Ended>,
}

/// The other workers' figures, handed to worker 0.
#[derive(Default)]
struct Ended {
    workers: usize,
    stats: ClientStats,
    end_ns: u64,
}

impl Crew {
    fn new(workers: usize) -> Self {
        Crew {
            workers,
            start_ns: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            live: (0..workers).map(|_| LiveCounters::default()).collect(),
            ended: Mutex::new(Ended::default()),
        }
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, Ended> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One data connection.
struct DataConn {
    session: ClientSession,
    connected: bool,
}

/// The client's app.
struct Client<B> {
    config: ClientConfig,
    /// This worker's index (0: the control connection's).
    worker: usize,
    /// Its share of the connections open at once.
    share: u32,
    crew: Arc<Crew>,
    /// Data connections opened by this worker.
    opened: u64,
    /// When to look again at what the other workers did.
    recheck_ns: u64,
    phase: Phase,
    control: Option<SocketId>,
    talk: ControlClient,
    /// Why the run could not start or finish (no server, a broken control
    /// connection).
    fatal: Option<String>,
    summary: Option<Result<Summary, String>>,
    conns: HashMap<SocketId, DataConn>,
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
    fn new(config: &ClientConfig, worker: usize, crew: Arc<Crew>) -> Self {
        Client {
            config: config.clone(),
            worker,
            share: config.connections_of(worker as u32),
            crew,
            opened: 0,
            recheck_ns: 0,
            phase: Phase::Starting,
            control: None,
            talk: ControlClient::new(config.hello(Role::Control, 0)),
            fatal: None,
            summary: None,
            conns: HashMap::new(),
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
        self.crew.abort.store(true, Ordering::Relaxed);
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
        let conn = self.crew.next_conn.fetch_add(1, Ordering::Relaxed);
        self.opened += 1;
        let session = ClientSession::new(self.config.hello(Role::Data, conn), cx.now_ns());
        match tcp::connect(cx, self.config.server) {
            Ok(s) => {
                mark_opened(cx, s);
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
        let now = cx.now_ns().max(1);
        self.cpu_before = process_cpu();
        self.crew.start_ns.store(now, Ordering::Release);
        self.start_at(now, cx);
    }

    /// This worker's data connections open; the test's clock started at
    /// `start_ns`.
    fn start_at(&mut self, start_ns: u64, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.phase = Phase::Running;
        self.start_ns = start_ns;
        let duration = u64::try_from(self.config.duration.as_nanos()).unwrap_or(u64::MAX);
        self.deadline_ns = self.start_ns.saturating_add(duration);
        for _ in 0..self.share {
            self.open(cx);
        }
    }

    /// This worker's connections all ended: worker 0 waits for the
    /// others' figures, adds them to its own and finishes the run; the
    /// others hand theirs in.
    fn all_ended(&mut self, now: u64, cx: &mut Cx<'_, B, TperfState<B>>) -> usize {
        if self.end_ns == 0 {
            self.end_ns = now;
        }
        if self.worker != 0 {
            let mut ended = self.crew.ended();
            ended.workers += 1;
            ended.stats.merge(&self.stats);
            ended.end_ns = ended.end_ns.max(self.end_ns);
            drop(ended);
            self.phase = Phase::Done;
            return 1;
        }
        {
            let mut ended = self.crew.ended();
            if ended.workers + 1 < self.crew.workers {
                return 0;
            }
            self.stats.merge(&std::mem::take(&mut ended.stats));
            self.end_ns = self.end_ns.max(ended.end_ns);
        }
        self.cpu = process_cpu().since(&self.cpu_before);
        self.phase = Phase::Finishing;
        self.finish_by_ns = now
            .saturating_add(RUN_END_PATIENCE_NS)
            .saturating_add(CONNECT_NS);
        self.talk.finish(self.stats.connections_announced);
        self.control_write(cx);
        1
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
        self.recheck_ns = now.saturating_add(RECHECK_NS);
        if self.worker != 0 {
            return self.poll_other(now, cx);
        }
        match self.phase {
            Phase::Starting if self.control.is_none() && self.fatal.is_none() => {
                self.started_ns = now;
                let server = self.config.server;
                match tcp::connect(cx, server) {
                    Ok(s) => {
                        mark_opened(cx, s);
                        self.control = Some(s);
                    }
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
            Phase::Running => self.poll_running(now, cx),
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
            // Another worker waiting for the start looks every millisecond.
            Phase::Starting if self.worker != 0 => Some(self.recheck_ns),
            Phase::Starting => Some(self.started_ns.saturating_add(CONNECT_NS)),
            Phase::Running if !self.stopped => Some(self.deadline_ns),
            // Worker 0 waiting for the others' figures.
            Phase::Running if self.stopped && self.conns.is_empty() => Some(self.recheck_ns),
            Phase::Running => Some(self.deadline_ns.saturating_add(END_PATIENCE_NS)),
            Phase::Finishing => Some(self.finish_by_ns),
            Phase::Done => None,
        }
    }
}

impl<B: PacketBuf> Client<B> {
    /// A worker other than 0: starts with worker 0's clock, stops when it
    /// gave up.
    fn poll_other(&mut self, now: u64, cx: &mut Cx<'_, B, TperfState<B>>) -> usize {
        let abort = self.crew.abort.load(Ordering::Relaxed);
        match self.phase {
            Phase::Starting if abort => {
                self.phase = Phase::Done;
                1
            }
            Phase::Starting => match self.crew.start_ns.load(Ordering::Acquire) {
                0 => 0,
                start => {
                    self.start_at(start, cx);
                    1
                }
            },
            Phase::Running => {
                if abort && !self.stopped {
                    self.deadline_ns = now;
                }
                self.poll_running(now, cx)
            }
            _ => 0,
        }
    }

    /// The test runs: its end, late connections, and the end of every
    /// connection of this worker.
    fn poll_running(&mut self, now: u64, cx: &mut Cx<'_, B, TperfState<B>>) -> usize {
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
        if self.conns.is_empty() && (self.stopped || self.opened > 0) {
            return self.all_ended(now, cx);
        }
        0
    }
}

/// A worker's loop: the pipeline until the run is over; on worker 0, the
/// live figures of all every interval.
struct ClientLoop<P: Port, F> {
    pipeline: TperfPipeline<P, Client<P::Buf>>,
    stop: StopFlag,
    interval_ns: u64,
    /// Worker 0's.
    on_interval: Option<F>,
    before: Totals,
    from_ns: u64,
    /// Once the run is over: until when its connections may take to close.
    drain_until_ns: Option<u64>,
    /// The idle policy's counts, once the loop is over.
    loop_stats: LoopStats,
    /// The worker's stats, when the instance publishes them.
    stats: Option<Publisher>,
}

impl<P: Port, F: FnMut(&Interval)> ClientLoop<P, F> {
    /// Publishes this worker's figures; worker 0 prints the interval
    /// ending at `now_ns`.
    fn interval(&mut self, now_ns: u64) {
        let app = self.pipeline.app();
        let crew = &app.crew;
        crew.live[app.worker].publish(&app.stats);
        let start = app.start_ns;
        let Some(on_interval) = self.on_interval.as_mut() else {
            self.from_ns = now_ns;
            return;
        };
        let mut after = Totals::default();
        crew.live.iter().for_each(|l| l.add_to(&mut after));
        on_interval(&Interval {
            from_s: self.from_ns.saturating_sub(start) as f64 / 1e9,
            to_s: now_ns.saturating_sub(start) as f64 / 1e9,
            before: self.before,
            after,
        });
        (self.before, self.from_ns) = (after, now_ns);
    }
}

impl<P: Port, F: FnMut(&Interval)> WorkLoop for ClientLoop<P, F> {
    type Report = ();

    fn idle_change(&mut self) -> Option<tpa::worker::IdlePolicy> {
        self.stats.as_mut()?.idle_change()
    }

    fn run_once(&mut self) -> Progress {
        let (done, due) = run_metered(
            self.stats.as_mut(),
            &mut self.pipeline,
            |p| p.stats().now_ns(),
            |p, now| p.run_once_at(now),
        );
        if let (true, Some(stats)) = (due, self.stats.as_mut()) {
            let app = app_counters(&self.pipeline.app().stats);
            self.pipeline.publish(stats, app, false);
        }
        let app = self.pipeline.app();
        if self.interval_ns > 0 && app.phase == Phase::Running {
            let now = tpa::time::Clock::global().now_ns();
            if self.from_ns == 0 {
                self.from_ns = app.start_ns;
            }
            // The other workers publish more often than worker 0 prints.
            let every = if app.worker == 0 {
                self.interval_ns
            } else {
                self.interval_ns.min(10_000_000)
            };
            if now >= self.from_ns.saturating_add(every) {
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

    fn wait_rx(&mut self, timeout: std::time::Duration) -> tpa::port::RxWait {
        self.pipeline.wait_rx(timeout)
    }

    fn finish(self) {}
}

/// The client's own counters, for its stats.
fn app_counters(stats: &ClientStats) -> Vec<Counter> {
    vec![
        Counter::count("tperf_bytes_sent", stats.bytes_sent)
            .help("Payload bytes the worker's connections sent."),
        Counter::count("tperf_bytes_received", stats.bytes_received)
            .help("Payload bytes the worker's connections received."),
        Counter::count("tperf_transactions", stats.transactions)
            .help("rr and crr: responses received whole."),
        Counter::count("tperf_failures", stats.failures).help("Connections that failed."),
    ]
}

/// What the client runs on the ports.
struct ClientJob<'a, F> {
    config: &'a ClientConfig,
    tcp: TcpConfig,
    endpoint: &'a TpaEndpoint,
    interval: Option<Duration>,
    on_interval: F,
}

/// What every worker starts from.
#[derive(Clone, Copy)]
struct Setup<'a> {
    config: &'a ClientConfig,
    tcp: &'a TcpConfig,
    endpoint: &'a TpaEndpoint,
    interval_ns: u64,
    /// The flow rules of the worker on a queue (`--flow-marks`).
    marks: &'a (dyn Fn(u16) -> Option<Box<dyn MarkConnections>> + Sync),
    /// The instance (stats, control socket), when on.
    instance: Option<&'a Instance>,
}

impl Setup<'_> {
    /// Runs worker `worker`'s pipeline on `port` until its part of the
    /// run is over.
    fn work<P: Port, G: FnMut(&Interval)>(
        &self,
        port: P,
        worker: usize,
        crew: &Arc<Crew>,
        on_interval: Option<G>,
    ) -> ClientLoop<P, G> {
        let app = Client::new(self.config, worker, Arc::clone(crew));
        let marks = (self.marks)(port.caps().queue);
        let stats = self
            .instance
            .and_then(|i| i.publisher_or_warn(worker as u32));
        let mut work = ClientLoop {
            pipeline: build(
                port,
                self.endpoint,
                self.tcp.clone(),
                app,
                marks,
                self.instance,
            ),
            stop: StopFlag::new(),
            interval_ns: self.interval_ns,
            on_interval,
            before: Totals::default(),
            from_ns: 0,
            drain_until_ns: None,
            loop_stats: LoopStats::default(),
            stats,
        };
        let stop = work.stop.clone();
        work.loop_stats = run_loop(&mut work, &stop, self.endpoint.idle());
        if let Some(mut stats) = work.stats.take() {
            let app = app_counters(&work.pipeline.app().stats);
            work.pipeline.publish(&mut stats, app, true);
        }
        work
    }
}

impl<F: FnMut(&Interval)> OnPort for ClientJob<'_, F> {
    type Out = Result<ClientReport, TpaError>;
    const ROLE: &'static str = "tperf-client";

    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &WorkerSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send,
    {
        let crew = Arc::new(Crew::new(ports.len()));
        let mut ports = ports.into_iter();
        let first = ports.next().ok_or_else(|| TpaError("no port".into()))?;
        let mut on_interval = self.on_interval;
        let workers = Setup {
            marks: setup.marks,
            instance: setup.instance,
            config: self.config,
            tcp: &self.tcp,
            endpoint: self.endpoint,
            interval_ns: self
                .interval
                .map_or(0, |i| u64::try_from(i.as_nanos()).unwrap_or(u64::MAX)),
        };
        let work = thread::scope(|scope| {
            let others: Vec<_> = ports
                .enumerate()
                .map(|(i, port)| {
                    let crew = &crew;
                    scope.spawn(move || {
                        let _thread = (setup.on_thread)();
                        let work = workers.work(port, i + 1, crew, None::<fn(&Interval)>);
                        eprintln!("tpa-tperf: {}", worker_line(&work.pipeline));
                        if std::env::var_os("TPA_TPERF_COUNTERS").is_some() {
                            eprintln!("{}loop: {:?}", counters(&work.pipeline), work.loop_stats);
                        }
                    })
                })
                .collect();
            let work = workers.work(first, 0, &crew, Some(&mut on_interval));
            // A worker that died leaves worker 0 waiting for its figures
            // until its patience runs out: the run fails then.
            let panicked = others.into_iter().any(|h| h.join().is_err());
            (work, panicked)
        });
        let (mut work, panicked) = work;
        let work = &mut work;
        eprintln!("tpa-tperf: {}", worker_line(&work.pipeline));
        let app = work.pipeline.app();
        if panicked {
            return Err(TpaError("a worker thread panicked".into()));
        }
        if let Some(why) = &app.fatal {
            if app.phase != Phase::Done || app.opened == 0 {
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
            eprintln!("{}loop: {:?}", counters(&work.pipeline), work.loop_stats);
        }
        let server = match (&app.summary, &app.fatal) {
            (Some(s), _) => s.clone(),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Err("the run was stopped".into()),
        };
        Ok(ClientReport {
            config: self.config.clone(),
            stack: "tpa",
            congestion: Some(self.tcp.congestion.name().to_owned()),
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
    let workers = u16::try_from(config.workers)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or_else(|| TpaError(format!("-w {}: 1 to 65535 workers", config.workers)))?;
    if !has_family(endpoint, config.server) {
        return Err(TpaError(format!(
            "-s {}: no --ip of its family to connect from",
            config.server
        )));
    }
    let job = ClientJob {
        config,
        tcp: endpoint.tcp.clone(),
        endpoint,
        interval: interval.filter(|i| !i.is_zero()),
        on_interval,
    };
    let (report, leaked) = on_port(endpoint, workers, pool_buffers(config.connections), job)?;
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
