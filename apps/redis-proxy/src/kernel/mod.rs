//! The proxy on the kernel's sockets: one thread, one mio (epoll,
//! edge-triggered) loop driving the sans-IO [`crate::proxy::Engine`].
//! Each pool listens on TCP or a unix socket path; backends are TCP or
//! unix sockets; the stats port answers each connection with the JSON.

pub(crate) mod stream;
pub mod sys;

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use crate::config::{Listen, ServerAddress};
use crate::proxy::{Action, ClientId, Engine, ServerConnId, StatsClock};
use stream::Stream;

pub use sys::{catch_stop_signals, daemonize, STOP};

const STATS: Token = Token(1 << 20);
const SERVER_BASE: usize = 1 << 30;
const CLIENT_BASE: usize = 1 << 40;

/// How the runtime runs, besides the pools.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the stats JSON is served (`None`: not served).
    pub stats: Option<SocketAddr>,
    /// Bytes offered to each read (nutcracker's mbuf size).
    pub read_chunk: usize,
    /// The version the stats report.
    pub version: String,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

/// What a bound listener is: for the log and for tests.
pub type Bound = Vec<String>;

fn bind(listen: &Listen, backlog: u32) -> io::Result<(Listener, String)> {
    match listen {
        Listen::Tcp { host, port } => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    io::Error::new(ErrorKind::NotFound, format!("{host}: no address"))
                })?;
            let l = TcpListener::bind(addr)?;
            sys::set_backlog(&l, backlog)?;
            let bound = l.local_addr()?.to_string();
            Ok((Listener::Tcp(l), bound))
        }
        Listen::Unix { path, mode } => {
            // A socket file left by an earlier run would refuse the bind.
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                std::fs::remove_file(path)?;
            }
            let l = UnixListener::bind(path)?;
            sys::set_backlog(&l, backlog)?;
            if let Some(mode) = mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
            }
            Ok((Listener::Unix(l), path.clone()))
        }
    }
}

pub(crate) fn connect(address: &ServerAddress, keepalive: bool) -> io::Result<Stream> {
    match address {
        ServerAddress::Tcp { host, port } => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    io::Error::new(ErrorKind::NotFound, format!("{host}: no address"))
                })?;
            let s = TcpStream::connect(addr)?;
            let _ = s.set_nodelay(true);
            if keepalive {
                sys::set_keepalive(&s)?;
            }
            Ok(Stream::Tcp(s))
        }
        ServerAddress::Unix { path } => UnixStream::connect(path).map(Stream::Unix),
    }
}

/// An error's text without Rust's " (os error N)" suffix, as nutcracker
/// puts strerror in its error replies.
pub(crate) fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

struct ServerSock {
    stream: Stream,
    connected: bool,
}

struct Runtime<'l> {
    log: &'l mut dyn FnMut(u8, &str),
    poll: Poll,
    engine: Engine,
    clients: Vec<Option<(ClientId, Stream)>>,
    servers: Vec<Option<ServerSock>>,
    /// Clients not read while the engine held them back.
    paused: HashSet<u32>,
    read_chunk: usize,
}

/// Binds every pool's listener (and the stats port), calls `on_ready` with
/// what was bound, then serves until SIGINT/SIGTERM (see
/// `catch_stop_signals`).
/// `log(level, line)` gets the engine's log lines.
pub fn run(
    mut engine: Engine,
    options: &Options,
    on_ready: impl FnOnce(&Bound),
    log: &mut dyn FnMut(u8, &str),
) -> io::Result<()> {
    let poll = Poll::new()?;
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for (p, pool) in engine.pools().enumerate() {
        let (mut l, name) = bind(&pool.listen, pool.backlog).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "pool '{}': cannot listen on {:?}: {e}",
                    pool.name, pool.listen
                ),
            )
        })?;
        match &mut l {
            Listener::Tcp(t) => poll.registry().register(t, Token(p), Interest::READABLE)?,
            Listener::Unix(u) => poll.registry().register(u, Token(p), Interest::READABLE)?,
        }
        listeners.push(l);
        bound.push(name);
    }
    let mut stats = match options.stats {
        Some(addr) => {
            let mut l = TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("stats on {addr}: {e}")))?;
            poll.registry()
                .register(&mut l, STATS, Interest::READABLE)?;
            bound.push(l.local_addr()?.to_string());
            Some(l)
        }
        None => None,
    };
    on_ready(&bound);
    let started = Instant::now();
    let started_unix = SystemTime::now();
    engine.start(started);
    let servers = (0..engine.server_conn_count()).map(|_| None).collect();
    let mut rt = Runtime {
        log,
        poll,
        engine,
        clients: Vec::new(),
        servers,
        paused: HashSet::new(),
        read_chunk: options.read_chunk.max(512),
    };
    let mut events = Events::with_capacity(1024);
    rt.actions();
    while !STOP.load(Ordering::Relaxed) {
        // Actions run once per batch of events: the requests of every
        // client read in this batch leave in one write per server.
        let now = Instant::now();
        let timeout = rt
            .engine
            .next_deadline()
            .map(|d| d.saturating_duration_since(now) + Duration::from_micros(100));
        match rt.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let token = event.token().0;
            if token < listeners.len() {
                rt.accept(token, &listeners[token]);
            } else if event.token() == STATS {
                if let Some(l) = &mut stats {
                    let clock = StatsClock {
                        now: Instant::now(),
                        unix_micros: SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_micros() as u64),
                        uptime: started_unix.elapsed().map_or(0, |d| d.as_secs()),
                        source: hostname(),
                        version: options.version.clone(),
                    };
                    let json = rt.engine.stats_json(&clock);
                    while let Ok((s, _)) = l.accept() {
                        serve_stats(s, json.as_bytes());
                    }
                }
            } else if token >= CLIENT_BASE {
                let index = (token - CLIENT_BASE) as u32;
                if let Some(Some((id, _))) = rt.clients.get(index as usize) {
                    let id = *id;
                    let closed = event.is_read_closed() || event.is_error();
                    if event.is_readable() || closed {
                        rt.read_client(id, closed);
                    }
                    if event.is_writable() {
                        rt.write_client(id);
                    }
                }
            } else if token >= SERVER_BASE {
                let cid = token - SERVER_BASE;
                let closed = event.is_read_closed() || event.is_error();
                rt.server_event(
                    cid,
                    event.is_readable() || closed,
                    closed,
                    event.is_writable(),
                );
            }
        }
        rt.engine.tick(Instant::now());
        rt.actions();
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn serve_stats(stream: TcpStream, json: &[u8]) {
    let std: std::net::TcpStream = stream.into();
    let _ = std.set_nonblocking(false);
    let _ = std.set_write_timeout(Some(Duration::from_secs(1)));
    let mut std = std;
    let _ = std.write_all(json);
}

impl Runtime<'_> {
    fn accept(&mut self, pool: usize, listener: &Listener) {
        loop {
            let mut stream = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let local = match &stream {
                Stream::Tcp(s) => s.local_addr().ok(),
                Stream::Unix(_) => None,
            };
            let Some(id) = self.engine.client_accepted_at(pool, local) else {
                continue; // over client_connections: dropped, so closed
            };
            let token = Token(CLIENT_BASE + id.index as usize);
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                self.engine.client_closed(id, false);
                continue;
            }
            let index = id.index as usize;
            if self.clients.len() <= index {
                self.clients.resize_with(index + 1, || None);
            }
            self.clients[index] = Some((id, stream));
        }
    }

    fn drop_client(&mut self, id: ClientId) {
        if let Some(slot) = self.clients.get_mut(id.index as usize) {
            if slot.as_ref().is_some_and(|(c, _)| *c == id) {
                if let Some((_, mut s)) = slot.take() {
                    let _ = self.poll.registry().deregister(&mut s);
                }
            }
        }
        self.paused.remove(&id.index);
    }

    fn stream_of(&mut self, id: ClientId) -> Option<&mut Stream> {
        match self.clients.get_mut(id.index as usize) {
            Some(Some((c, s))) if *c == id => Some(s),
            _ => None,
        }
    }

    /// Reads the client until the socket is drained: until a read would
    /// block, or, unless `to_the_end` (its peer closed), until a read
    /// returns less than asked (epoll signals data arriving after that
    /// with a new edge; this saves the failing read).
    fn read_client(&mut self, id: ClientId, to_the_end: bool) {
        let chunk = self.read_chunk;
        loop {
            if !self.engine.client_wants_input(id) {
                if self.stream_of(id).is_some() {
                    self.paused.insert(id.index);
                }
                return;
            }
            self.paused.remove(&id.index);
            let Some(stream) = (match self.clients.get_mut(id.index as usize) {
                Some(Some((c, s))) if *c == id => Some(s),
                _ => None,
            }) else {
                return;
            };
            let Some(buf) = self.engine.client_buffer(id) else {
                return;
            };
            let room = buf.spare(chunk);
            let asked = room.len();
            match stream.read(room) {
                Ok(0) => {
                    self.client_gone(id, true);
                    return;
                }
                Ok(n) => {
                    buf.commit(n);
                    self.engine.client_input(id, Instant::now());
                    if n < asked && !to_the_end {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.client_gone(id, false);
                    return;
                }
            }
        }
    }

    fn write_client(&mut self, id: ClientId) {
        loop {
            let Some(Some((c, stream))) = self.clients.get_mut(id.index as usize) else {
                return;
            };
            if *c != id {
                return;
            }
            let out = self.engine.client_output(id);
            if out.is_empty() {
                return;
            }
            match stream.write(out) {
                Ok(n) => self.engine.client_wrote(id, n, Instant::now()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.client_gone(id, false);
                    return;
                }
            }
        }
    }

    /// The client's connection ended (`clean`: the client closed it) or
    /// failed: the engine is told, the socket dropped.
    fn client_gone(&mut self, id: ClientId, clean: bool) {
        self.engine.client_closed(id, clean);
        self.drop_client(id);
    }

    /// The server connection failed with `e`: dropped, the engine told
    /// why.
    fn server_failed(&mut self, cid: ServerConnId, e: &io::Error) {
        self.drop_server(cid);
        self.engine
            .server_closed(cid, Some(&reason(e)), Instant::now());
    }

    fn drop_server(&mut self, cid: ServerConnId) {
        if let Some(mut sock) = self.servers.get_mut(cid).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut sock.stream);
        }
    }

    fn server_event(&mut self, cid: ServerConnId, readable: bool, closed: bool, writable: bool) {
        let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
            return;
        };
        if !sock.connected {
            match sock.stream.connect_result() {
                Ok(true) => {
                    sock.connected = true;
                    self.engine.server_connected(cid);
                }
                Ok(false) => return,
                Err(e) => {
                    self.server_failed(cid, &e);
                    return;
                }
            }
        }
        if readable {
            self.read_server(cid, closed);
        }
        if writable {
            self.write_server(cid);
        }
    }

    /// Reads the server connection until drained (see `read_client`).
    fn read_server(&mut self, cid: ServerConnId, to_the_end: bool) {
        let chunk = self.read_chunk;
        loop {
            let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
                return;
            };
            let buf = self.engine.server_buffer(cid);
            let room = buf.spare(chunk);
            let asked = room.len();
            match sock.stream.read(room) {
                Ok(0) => {
                    self.drop_server(cid);
                    self.engine.server_closed(cid, None, Instant::now());
                    return;
                }
                Ok(n) => {
                    buf.commit(n);
                    self.engine.server_input(cid, Instant::now());
                    if n < asked && !to_the_end {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.server_failed(cid, &e);
                    return;
                }
            }
        }
    }

    fn write_server(&mut self, cid: ServerConnId) {
        loop {
            let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
                return;
            };
            if !sock.connected {
                return;
            }
            let out = self.engine.server_output(cid);
            if out.is_empty() {
                return;
            }
            match sock.stream.write(out) {
                Ok(n) => self.engine.server_wrote(cid, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.server_failed(cid, &e);
                    return;
                }
            }
        }
    }

    /// Carries out the engine's actions, then reads the clients it held
    /// back and now wants to hear from.
    fn actions(&mut self) {
        loop {
            while let Some(action) = self.engine.poll_action() {
                match action {
                    Action::Connect {
                        conn,
                        address,
                        keepalive,
                    } => {
                        self.drop_server(conn);
                        if self.servers.len() <= conn {
                            // A server the router learned (cluster mode).
                            self.servers.resize_with(conn + 1, || None);
                        }
                        let token = Token(SERVER_BASE + conn);
                        let opened = connect(&address, keepalive).and_then(|mut stream| {
                            self.poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            Ok(stream)
                        });
                        match opened {
                            Ok(stream) => {
                                self.servers[conn] = Some(ServerSock {
                                    stream,
                                    connected: false,
                                })
                            }
                            Err(e) => {
                                self.engine
                                    .server_closed(conn, Some(&reason(&e)), Instant::now())
                            }
                        }
                    }
                    Action::CloseServer(conn) => self.drop_server(conn),
                    Action::CloseClient(id) => self.drop_client(id),
                    Action::WriteClient(id) => self.write_client(id),
                    Action::WriteServer(conn) => self.write_server(conn),
                    Action::Log { level, message } => (self.log)(level, &message),
                }
            }
            let ready: Vec<u32> = self.paused.iter().copied().collect();
            let mut resumed = false;
            for index in ready {
                let Some(Some((id, _))) = self.clients.get(index as usize) else {
                    self.paused.remove(&index);
                    continue;
                };
                let id = *id;
                if self.engine.client_wants_input(id) {
                    resumed = true;
                    self.read_client(id, true);
                }
            }
            if !resumed {
                return;
            }
        }
    }
}
