//! The server over the kernel's sockets: `workers` threads, each with an
//! epoll loop (mio) on its own clone of the listening socket (the first
//! to accept takes the connection) and the connections it accepted.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::config::ServerConfig;
use crate::control::{RunTotals, Runs};
use crate::cpu::process_cpu;
use crate::serve::{print_run, Conn};
use crate::session::Failure;

use super::{io_failure, Progress, SocketOptions, OPS_PER_TURN, READ_BUF};

/// The listener's token (connections use their slot's index).
const LISTENER: Token = Token(usize::MAX);
/// How often a worker wakes without events: to answer runs whose data
/// connections ended on other workers, and to see the server stop.
const TICK: Duration = Duration::from_millis(5);

/// Why a server could not run.
#[derive(Debug)]
pub struct ServerError(pub String);

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// Binds `config.listen`, calls `on_listening` with the address bound
/// (the port, when 0 was asked), and serves until `config.runs` client
/// runs were answered (forever without). `sockets` are set on the
/// listening socket, whose connections inherit them.
pub fn run_server(
    config: &ServerConfig,
    sockets: &SocketOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let listen = config.listen;
    let bind_error = |e: io::Error| ServerError(format!("cannot listen on {listen}: {e}"));
    let listener = StdTcpListener::bind(listen).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    sockets
        .apply(&listener)
        .map_err(|e| ServerError(e.to_string()))?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let listeners = (0..config.workers)
        .map(|_| listener.try_clone().map(TcpListener::from_std))
        .collect::<io::Result<Vec<_>>>()
        .map_err(bind_error)?;
    on_listening(bound);

    let runs = Runs::new();
    let answered = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let epoch = Instant::now();
    thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .into_iter()
            .map(|l| {
                let (runs, answered, stop) = (&runs, &answered, &stop);
                scope.spawn(move || {
                    let w = ServerWorker {
                        config,
                        runs,
                        answered,
                        stop,
                        epoch,
                        read_buf: vec![0; READ_BUF],
                        write_buf: Vec::new(),
                    };
                    let result = w.serve(l);
                    // One worker failing stops the others.
                    stop.store(true, Ordering::Relaxed);
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ServerError("a worker thread panicked".into())))
            })
            .collect::<Result<Vec<()>, _>>()
            .map(drop)
    })
}

struct ServerConn {
    stream: TcpStream,
    state: Conn,
}

struct ServerWorker<'a> {
    config: &'a ServerConfig,
    runs: &'a Runs,
    answered: &'a AtomicU64,
    stop: &'a AtomicBool,
    epoch: Instant,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
}

impl ServerWorker<'_> {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn serve(mut self, mut listener: TcpListener) -> Result<(), ServerError> {
        let fail = |what: &str, e: io::Error| ServerError(format!("{what}: {e}"));
        let mut poll = Poll::new().map_err(|e| fail("epoll_create", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| fail("epoll_ctl", e))?;
        let mut events = Events::with_capacity(1024);
        let mut conns: Vec<Option<ServerConn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut busy: Vec<usize> = Vec::new();
        let mut ready: Vec<usize> = Vec::new();
        let mut last_tick = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let timeout = if busy.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            match poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail("epoll_wait", e)),
            }
            ready.clear();
            ready.append(&mut busy);
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept_all(&poll, &listener, &mut conns, &mut free)?;
                } else {
                    ready.push(ev.token().0);
                }
            }
            // Control connections waiting for their run's other
            // connections get a turn every tick.
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                for (slot, c) in conns.iter().enumerate() {
                    if let Some(ServerConn {
                        state: Conn::Control(_),
                        ..
                    }) = c
                    {
                        ready.push(slot);
                    }
                }
            }
            ready.sort_unstable();
            ready.dedup();
            for &slot in &ready {
                self.turn(&poll, &mut conns, &mut free, slot, &mut busy);
            }
        }
        Ok(())
    }

    fn accept_all(
        &mut self,
        poll: &Poll,
        listener: &TcpListener,
        conns: &mut Vec<Option<ServerConn>>,
        free: &mut Vec<usize>,
    ) -> Result<(), ServerError> {
        loop {
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Out of file descriptors, a connection reset before its
                // accept…: that connection is lost, the server goes on.
                Err(e) => {
                    eprintln!("tpa-tperf server: accept: {e}");
                    return Ok(());
                }
            };
            let slot = free.pop().unwrap_or_else(|| {
                conns.push(None);
                conns.len() - 1
            });
            if let Err(e) = poll.registry().register(
                &mut stream,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                eprintln!("tpa-tperf server: epoll_ctl: {e}");
                free.push(slot);
                continue;
            }
            // Responses go out at once (rr); streams are written in
            // message-size pieces either way.
            let _ = stream.set_nodelay(true);
            conns[slot] = Some(ServerConn {
                stream,
                state: Conn::new(),
            });
        }
    }

    fn turn(
        &mut self,
        poll: &Poll,
        conns: &mut [Option<ServerConn>],
        free: &mut Vec<usize>,
        slot: usize,
        busy: &mut Vec<usize>,
    ) {
        let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let result = self.drive(c);
        let ended = match result {
            Ok(Progress::Idle) => false,
            Ok(Progress::Busy) => {
                busy.push(slot);
                false
            }
            Ok(Progress::Finished) => {
                c.state.ended(self.runs, None);
                true
            }
            Err(failure) => {
                c.state.ended(self.runs, Some(failure));
                true
            }
        };
        if ended {
            let mut c = conns[slot].take().expect("the connection");
            let _ = poll.registry().deregister(&mut c.stream);
            free.push(slot);
        }
    }

    fn drive(&mut self, c: &mut ServerConn) -> Result<Progress, Failure> {
        let (mut writes, mut reads, mut more) = (0, 0, false);
        loop {
            let mut progress = false;
            // Writes.
            match &mut c.state {
                Conn::Hello(_) => {}
                Conn::Data(s) => {
                    let size = s.write_size();
                    if self.write_buf.len() < size {
                        self.write_buf.resize(size, 0);
                    }
                    while s.wants_write() {
                        if writes == OPS_PER_TURN {
                            more = true;
                            break;
                        }
                        writes += 1;
                        let n = s.fill(&mut self.write_buf[..size]);
                        match c.stream.write(&self.write_buf[..n]) {
                            Ok(0) => return Err(Failure::Io("write returned 0".into())),
                            Ok(k) => {
                                s.wrote(k);
                                progress = true;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Err(io_failure("write", &e)),
                        }
                    }
                    if s.is_finished() {
                        let _ = c.stream.shutdown(Shutdown::Write);
                        return Ok(Progress::Finished);
                    }
                }
                Conn::Control(s) => {
                    if let Some(totals) = s.poll(self.runs, self.now_ns(), process_cpu) {
                        self.report_run(&totals, s.hello().run);
                    }
                    while !s.pending().is_empty() {
                        match c.stream.write(s.pending()) {
                            Ok(0) => return Err(Failure::Io("write returned 0".into())),
                            Ok(k) => {
                                s.wrote(k);
                                progress = true;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Err(io_failure("write", &e)),
                        }
                    }
                    if s.is_finished() {
                        return Ok(Progress::Finished);
                    }
                }
            }
            // Reads.
            loop {
                if reads == OPS_PER_TURN {
                    more = true;
                    break;
                }
                reads += 1;
                let n = match c.stream.read(&mut self.read_buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_failure("read", &e)),
                };
                progress = true;
                if n == 0 {
                    match &mut c.state {
                        Conn::Hello(r) if r.received() > 0 => {
                            return Err(Failure::Protocol(format!(
                                "the connection ended {} bytes into its hello",
                                r.received()
                            )))
                        }
                        Conn::Hello(_) => return Ok(Progress::Finished),
                        Conn::Data(s) => {
                            s.on_eof()?;
                            if s.is_finished() {
                                let _ = c.stream.shutdown(Shutdown::Write);
                                return Ok(Progress::Finished);
                            }
                            break; // responses still owed go out first
                        }
                        Conn::Control(s) => {
                            if s.is_finished() {
                                return Ok(Progress::Finished);
                            }
                            return Err(Failure::Protocol(
                                "the client closed the control connection before the run's end"
                                    .into(),
                            ));
                        }
                    }
                }
                let now = self.now_ns();
                c.state.feed(&self.read_buf[..n], self.runs, now)?;
                if matches!(&c.state, Conn::Data(s) if s.wants_write())
                    || matches!(&c.state, Conn::Control(s) if !s.pending().is_empty())
                {
                    break;
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

    /// Prints a run's totals; stops the server after `--runs` of them.
    fn report_run(&self, totals: &RunTotals, run: u64) {
        print_run(totals, run);
        let answered = self.answered.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.runs.is_some_and(|n| answered >= n) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}
