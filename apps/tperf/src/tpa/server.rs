//! The server on tpa: a listener in one pipeline, whose app reads every
//! connection's hello and then serves it as a data connection
//! ([`ServerSession`]) or a run's control connection ([`ControlSession`]),
//! as the kernel backend's server does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::port::steer::ShareAnswers;
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::worker::{run_loop, Progress, StopFlag, WorkLoop};
use tpa_stages::ops::run_metered;
use tpa_stages::ops::snapshot::Counter;
use tpa_stages::tcp;
use tpa_stages::tcp::config::TcpConfig;

use super::{
    build, counters, drained, mark_opened, on_port, send_filled, worker_line, Handed, OnPort,
    TpaEndpoint, TpaError, TperfPipeline, TperfState, WorkerSetup, DRAIN_NS,
};
use crate::config::ServerConfig;
use crate::control::{RunTotals, Runs};
use crate::cpu::process_cpu;
use crate::serve::{print_run, Conn};
use crate::session::Failure;

/// How often control connections waiting for their run's data
/// connections are looked at.
const TICK_NS: u64 = 10_000_000;
/// Connections waiting to be accepted at most (capped by the TCP
/// configuration's backlog).
const BACKLOG: usize = 1024;

/// What the server's workers share: the runs (a run's control
/// connection and its data connections may land on different workers)
/// and how many were answered.
#[derive(Default)]
struct Crew {
    runs: Runs,
    answered: AtomicU64,
}

/// The server's app (one per worker).
struct Server {
    crew: Arc<Crew>,
    conns: HashMap<SocketId, Conn>,
    /// Stop after this many runs.
    max_runs: Option<u64>,
    next_tick_ns: u64,
}

impl Server {
    /// The app's own counters, for its stats: runs answered (by every
    /// worker) and this worker's connections.
    fn counters(&self) -> Vec<Counter> {
        vec![
            Counter::count(
                "tperf_runs_answered",
                self.crew.answered.load(Ordering::Relaxed),
            )
            .help("Client runs the server answered, all workers."),
            Counter::gauge("tperf_connections", self.conns.len() as u64)
                .help("The worker's data and control connections."),
        ]
    }

    fn accept<B: PacketBuf>(
        &mut self,
        listener: SocketId,
        socket: SocketId,
        cx: &mut Cx<'_, B, TperfState<B>>,
    ) {
        let mut taken = vec![socket];
        while let Ok((s, _)) = tcp::accept(cx, listener) {
            taken.push(s);
        }
        for s in taken {
            if let std::collections::hash_map::Entry::Vacant(new) = self.conns.entry(s) {
                new.insert(Conn::default());
                mark_opened(cx, s);
            }
            self.turn(s, cx);
        }
    }

    /// Serves `s` until it would block; ends it when it is over.
    fn turn<B: PacketBuf>(&mut self, s: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        let Some(mut conn) = self.conns.remove(&s) else {
            return;
        };
        match self.drive(&mut conn, s, cx) {
            Ok(false) => {
                self.conns.insert(s, conn);
            }
            Ok(true) => {
                conn.ended(&self.crew.runs, None);
                let _ = tcp::close(cx, s);
            }
            Err(failure) => {
                conn.ended(&self.crew.runs, Some(failure));
                let _ = tcp::abort(cx, s);
            }
        }
    }

    /// One turn: `Ok(true)` when the connection ended cleanly.
    fn drive<B: PacketBuf>(
        &mut self,
        conn: &mut Conn,
        s: SocketId,
        cx: &mut Cx<'_, B, TperfState<B>>,
    ) -> Result<bool, Failure> {
        let io = |call: &str, e: SocketError| Failure::Io(format!("{call}: {e}"));
        loop {
            let mut progress = false;
            match conn {
                Conn::Hello(_) => {}
                Conn::Data(session) => {
                    let size = session.write_size();
                    while session.wants_write() {
                        let ready = &*session;
                        match send_filled(cx, s, size, |out| ready.fill(out)) {
                            Ok(Some(k)) => {
                                session.wrote(k);
                                progress = true;
                            }
                            Ok(None) => break,
                            Err(e) => return Err(io("send", e)),
                        }
                    }
                    if session.is_finished() {
                        return Ok(true);
                    }
                }
                Conn::Control(control) => {
                    if let Some(totals) = control.poll(&self.crew.runs, cx.now_ns(), process_cpu) {
                        let run = control.hello().run;
                        self.report_run(&totals, run);
                    }
                    while !control.pending().is_empty() {
                        match tcp::send(cx, s, control.pending()) {
                            Ok(k) => {
                                control.wrote(k);
                                progress = true;
                            }
                            Err(SocketError::WouldBlock) => break,
                            Err(e) => return Err(io("send", e)),
                        }
                    }
                    if control.is_finished() {
                        return Ok(true);
                    }
                }
            }
            loop {
                let buf = match tcp::recv(cx, s) {
                    Ok(Some(buf)) => buf,
                    Ok(None) => {
                        match conn {
                            Conn::Hello(r) if r.received() > 0 => {
                                return Err(Failure::Protocol(format!(
                                    "the connection ended {} bytes into its hello",
                                    r.received()
                                )))
                            }
                            Conn::Hello(_) => return Ok(true),
                            Conn::Data(session) => {
                                session.on_eof()?;
                                if session.is_finished() {
                                    return Ok(true);
                                }
                            }
                            Conn::Control(control) => {
                                if control.is_finished() {
                                    return Ok(true);
                                }
                                return Err(Failure::Protocol(
                                    "the client closed the control connection before the run's end"
                                        .into(),
                                ));
                            }
                        }
                        break; // responses still owed go out first
                    }
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => return Err(io("recv", e)),
                };
                progress = true;
                let now = cx.now_ns();
                for segment in buf.segments() {
                    conn.feed(segment, &self.crew.runs, now)?;
                }
                let owes = match conn {
                    Conn::Data(session) => session.wants_write(),
                    Conn::Control(control) => !control.pending().is_empty(),
                    Conn::Hello(_) => false,
                };
                if owes {
                    break;
                }
            }
            if !progress {
                return Ok(false);
            }
        }
    }

    /// Prints a run's totals (as the kernel backend's server does).
    fn report_run(&mut self, totals: &RunTotals, run: u64) {
        print_run(totals, run);
        self.crew.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// `--runs` were answered (by any worker) and none of this worker's
    /// control connections still owes its summary.
    fn done(&self) -> bool {
        self.max_runs
            .is_some_and(|n| self.crew.answered.load(Ordering::Relaxed) >= n)
            && !self
                .conns
                .values()
                .any(|c| matches!(c, Conn::Control(s) if !s.is_finished()))
    }
}

impl<B: PacketBuf> App<B, TperfState<B>> for Server {
    fn accepted(
        &mut self,
        listener: SocketId,
        socket: SocketId,
        cx: &mut Cx<'_, B, TperfState<B>>,
    ) {
        self.accept(listener, socket, cx);
    }

    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.turn(socket, cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.turn(socket, cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        self.turn(socket, cx);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, TperfState<B>>) {
        if let Some(mut conn) = self.conns.remove(&socket) {
            conn.ended(&self.crew.runs, Some(Failure::Io(error.to_string())));
            let _ = tcp::close(cx, socket);
        }
    }

    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, TperfState<B>>) {
        if let Some(mut conn) = self.conns.remove(&socket) {
            conn.ended(&self.crew.runs, Some(Failure::Io("closed under us".into())));
            let _ = tcp::close(cx, socket);
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, TperfState<B>>) -> usize {
        let now = cx.now_ns();
        if now < self.next_tick_ns {
            return 0;
        }
        self.next_tick_ns = now.saturating_add(TICK_NS);
        // Control connections waiting for their run's other connections.
        let waiting: Vec<SocketId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c, Conn::Control(_)))
            .map(|(s, _)| *s)
            .collect();
        let n = waiting.len();
        for s in waiting {
            self.turn(s, cx);
        }
        n
    }

    fn next_deadline(&self) -> Option<u64> {
        self.conns
            .values()
            .any(|c| matches!(c, Conn::Control(_)))
            .then_some(self.next_tick_ns)
    }
}

/// A worker's loop: the pipeline until stopped (or `--runs` answered).
struct ServerLoop<'a, P: Port> {
    pipeline: TperfPipeline<P, Server>,
    /// The process's stop (signals).
    stop: &'a StopFlag,
    /// This worker's.
    local: StopFlag,
    /// Once `--runs` were answered: until when the last connections may
    /// take to close.
    drain_until_ns: Option<u64>,
    /// The worker's stats, when the instance publishes them.
    stats: Option<tpa_stages::ops::Publisher>,
}

impl<P: Port> WorkLoop for ServerLoop<'_, P> {
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
            let app = self.pipeline.app().counters();
            self.pipeline.publish(stats, app, false);
        }
        if self.stop.is_raised() {
            self.local.raise();
        }
        if self.pipeline.app().done() {
            let now = tpa::time::Clock::global().now_ns();
            let until = *self
                .drain_until_ns
                .get_or_insert(now.saturating_add(DRAIN_NS));
            if drained(&self.pipeline.state().tcp, 1) || now >= until {
                self.local.raise();
            }
        }
        done.into()
    }

    fn wait_rx(&mut self, timeout: std::time::Duration) -> tpa::port::RxWait {
        self.pipeline.wait_rx(timeout)
    }

    fn finish(self) {}
}

/// What the server runs on the port.
struct ServerJob<'a, F> {
    config: &'a ServerConfig,
    tcp: TcpConfig,
    endpoint: &'a TpaEndpoint,
    stop: &'a StopFlag,
    on_listening: F,
}

impl<F: FnOnce(SocketAddr)> OnPort for ServerJob<'_, F> {
    type Out = Result<(), TpaError>;
    const ROLE: &'static str = "tperf-server";

    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &WorkerSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send,
    {
        let crew = Arc::new(Crew::default());
        let listen = self.config.listen;
        let (listening, heard) = mpsc::channel::<Result<(), TpaError>>();
        let (stop, endpoint, max_runs) = (self.stop, self.endpoint, self.config.runs);
        let tcp_config = &self.tcp;
        thread::scope(|scope| {
            let workers: Vec<_> = ports
                .into_iter()
                .map(|port| {
                    let (crew, listening) = (Arc::clone(&crew), listening.clone());
                    scope.spawn(move || {
                        let _thread = (setup.on_thread)();
                        let marks = (setup.marks)(port.caps().queue);
                        let app = Server {
                            crew,
                            conns: HashMap::new(),
                            max_runs,
                            next_tick_ns: 0,
                        };
                        let worker = u32::from(port.caps().queue);
                        let mut pipeline = build(
                            port,
                            endpoint,
                            tcp_config.clone(),
                            app,
                            marks,
                            setup.instance,
                        );
                        // Every worker listens: a SYN lands on the worker
                        // its 4-tuple steers to.
                        let listened = pipeline
                            .with_cx(|cx| tcp::listen(cx, listen, BACKLOG))
                            .map(|_| ())
                            .map_err(|e| TpaError(format!("-l {listen}: listen: {e}")));
                        let failed = listened.is_err();
                        let _ = listening.send(listened);
                        if failed {
                            return;
                        }
                        let mut work = ServerLoop {
                            pipeline,
                            stop,
                            local: StopFlag::new(),
                            drain_until_ns: None,
                            stats: setup.publisher(worker),
                        };
                        let local = work.local.clone();
                        let idle = run_loop(&mut work, &local, endpoint.idle());
                        if let Some(mut stats) = work.stats.take() {
                            let app = work.pipeline.app().counters();
                            work.pipeline.publish(&mut stats, app, true);
                        }
                        println!("tpa-tperf server: {}", worker_line(&work.pipeline));
                        if std::env::var_os("TPA_TPERF_COUNTERS").is_some() {
                            eprintln!("{}loop: {idle:?}", counters(&work.pipeline));
                        }
                    })
                })
                .collect();
            drop(listening);
            let mut result = Ok(());
            for _ in 0..workers.len() {
                match heard.recv() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err(e),
                    Err(_) => result = Err(TpaError("a worker ended before listening".into())),
                }
            }
            match result {
                Ok(()) => (self.on_listening)(listen),
                // The others stop too.
                Err(_) => stop.raise(),
            }
            for w in workers {
                if w.join().is_err() {
                    result = Err(TpaError("a worker thread panicked".into()));
                }
            }
            result
        })
    }
}

/// Serves tperf clients over tpa on `endpoint`'s port until `stop` (or
/// `--runs` of them); `on_listening` is told the address once the
/// listener is open.
pub fn run_server(
    config: &ServerConfig,
    endpoint: &TpaEndpoint,
    stop: &StopFlag,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), TpaError> {
    endpoint.validate()?;
    let workers = u16::try_from(config.workers)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or_else(|| TpaError(format!("-w {}: 1 to 65535 workers", config.workers)))?;
    let job = ServerJob {
        config,
        tcp: endpoint.tcp.clone(),
        endpoint,
        stop,
        on_listening,
    };
    let (result, leaked) = on_port(
        endpoint,
        workers,
        super::pool_buffers(64 * u32::from(workers)),
        job,
    )?;
    if leaked > 0 {
        return Err(TpaError(format!(
            "{leaked} buffers not returned to the pool (a leak)"
        )));
    }
    result
}
