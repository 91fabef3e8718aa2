//! The proxy as tpa's inline app: tpa's socket events feed the engine,
//! the engine's actions become tpa's socket calls.
//!
//! Received bytes are copied once, from the socket's receive buffers
//! into the engine's input buffer (a received buffer at a time,
//! `tcp::recv`, so a big value's head is seen after its first segment);
//! replies and requests are copied once into tpa's send buffers
//! (`tcp::send`).
//!
//! A big value is not copied at all past its first segment: the engine
//! splices its remainder (a bulk reply from a server to its client, a
//! request's last argument from a client to its server; see
//! `proxy::engine::passthrough`), and the received buffers go from one
//! socket to the other as they are (`tcp::recv` to `tcp::send_buf`),
//! released when the peer acknowledged them. A buffer the destination's
//! segments cannot carry whole (larger than its MSS), and the value's
//! part of a buffer that also holds what follows it, are copied instead.
//!
//! Backends at loopback addresses, names or unix sockets (the kernel's,
//! see [`crate::stack`]) are reached on kernel sockets: their readiness
//! comes from a mio poll with a zero timeout in the app's `poll`, once
//! per turn of the loop (which then idles by sleeping, not by blocking on
//! the port alone).

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa_stages::tcp;

use super::slots::BySocket;
use super::{listen_addr, Options, ProxyState, TpaError};
use crate::config::ServerAddress;
use crate::kernel::stream::Stream;
use crate::proxy::{Action, ClientId, Engine, ServerConnId, SpliceEnd, StatsClock, BIG};
use crate::stack::{server_side, Side};

/// Connections waiting to be accepted at most, per listener.
const BACKLOG: usize = 1024;

/// How often the stats port is looked at.
const STATS_EVERY: Duration = Duration::from_millis(5);

/// A server connection's socket: tpa's, or the kernel's for a backend
/// tpa cannot reach.
enum ServerConn {
    Tpa(SocketId),
    Kernel(Stream),
}

/// A server connection.
struct ServerSock {
    conn: ServerConn,
    connected: bool,
}

/// The kernel's sockets' readiness.
struct KernelPoll {
    poll: mio::Poll,
    events: mio::Events,
}

/// The least bulk reply payload passed through zero-copy: the engine's
/// big frame.
pub const PASSTHROUGH_MIN: usize = BIG;

/// What one step of a splice did.
enum Step {
    /// Moved (or dropped) some bytes: go on.
    Moved,
    /// The frame is through: the source is read as usual again.
    Done,
    /// Wait for an event (nothing received, the client's queue full, or
    /// not the client's turn yet), or the source is gone.
    Wait,
}

/// The proxy's app on one worker (see the module's doc).
pub struct ProxyApp<'l, B> {
    engine: Engine,
    started: bool,
    /// Listener → pool.
    listeners: HashMap<SocketId, usize>,
    /// Pools' listen addresses, in pool order.
    addrs: Vec<SocketAddr>,
    /// Client socket → the client, and whether it is in `paused`.
    clients: BySocket<(ClientId, bool)>,
    /// A client's slot (`ClientId::index`) → the client and its socket.
    client_sockets: Vec<Option<(ClientId, SocketId)>>,
    servers: Vec<Option<ServerSock>>,
    /// Made at the first kernel socket.
    kernel: Option<KernelPoll>,
    server_of: BySocket<ServerConnId>,
    /// Clients not read while the engine held them back (each flagged in
    /// `clients`).
    paused: Vec<SocketId>,
    read_chunk: usize,
    stats: Option<TcpListener>,
    /// Every worker's latest stats and this worker's place among them,
    /// when the stats port is on.
    board: Option<(StatsBoard, usize)>,
    /// The host's name, the stats' `source`.
    hostname: String,
    next_stats: Instant,
    started_unix: SystemTime,
    version: String,
    log: &'l (dyn Fn(u8, &str) + Sync),
    /// Per splice's source: a received buffer not moved yet and how many
    /// of its bytes already went.
    held: HashMap<SpliceEnd, (B, usize)>,
    /// Server connections not read while a big reply waits for its turn.
    stalled: HashSet<ServerConnId>,
}

/// Listens on every address (index = pool) on this worker.
pub(super) fn listen_all<B: PacketBuf>(
    cx: &mut Cx<'_, B, ProxyState<B>>,
    addrs: &[SocketAddr],
) -> Result<Vec<(SocketId, usize)>, TpaError> {
    addrs
        .iter()
        .enumerate()
        .map(|(pool, addr)| {
            tcp::listen(cx, *addr, BACKLOG)
                .map(|s| (s, pool))
                .map_err(|e| TpaError(format!("listen on {addr}: {e}")))
        })
        .collect()
}

/// A backend's address as tpa connects to it (an address; a name is
/// resolved once here).
fn server_addr(address: &ServerAddress) -> Result<SocketAddr, String> {
    match address {
        ServerAddress::Tcp { host, port } => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                return Ok(SocketAddr::new(ip, *port));
            }
            (bare, *port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| format!("{host}: no address"))
        }
        ServerAddress::Unix { path } => Err(format!("{path}: a unix socket is the kernel's")),
    }
}

/// Every worker's latest stats, posted every [`STATS_EVERY`] by each
/// worker and summed by the one serving the stats port.
pub(super) type StatsBoard = Arc<Mutex<Vec<Option<crate::proxy::StatsView>>>>;

impl<'l, B: PacketBuf> ProxyApp<'l, B> {
    /// An app over `engine`; `stats` (worker 0's) is served from `poll`,
    /// summing every worker's counters from `board` (this worker's place
    /// in it given).
    pub(super) fn new(
        engine: Engine,
        options: &Options,
        stats: Option<TcpListener>,
        board: Option<(StatsBoard, usize)>,
        log: &'l (dyn Fn(u8, &str) + Sync),
    ) -> ProxyApp<'l, B> {
        let addrs = engine
            .pools()
            .filter_map(|p| listen_addr(&p.listen).ok())
            .collect();
        let servers = (0..engine.server_conn_count()).map(|_| None).collect();
        let mut engine = engine;
        if passthrough_on() {
            // Servers on tpa's side: their sockets hand over buffers.
            engine.enable_passthrough(PASSTHROUGH_MIN, |a| matches!(server_side(a), Side::Tpa));
        }
        ProxyApp {
            engine,
            started: false,
            listeners: HashMap::new(),
            addrs,
            clients: BySocket::default(),
            client_sockets: Vec::new(),
            servers,
            kernel: None,
            server_of: BySocket::default(),
            paused: Vec::new(),
            read_chunk: options.read_chunk.max(512),
            stats,
            board,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into()),
            next_stats: Instant::now(),
            started_unix: SystemTime::now(),
            version: options.version.clone(),
            log,
            held: HashMap::new(),
            stalled: HashSet::new(),
        }
    }

    /// The engine (its counters, for the worker's stats).
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(super) fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    pub(super) fn set_listeners(&mut self, listeners: Vec<(SocketId, usize)>) {
        self.listeners = listeners.into_iter().collect();
    }

    fn accept(&mut self, listener: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        let Some(&pool) = self.listeners.get(&listener) else {
            return;
        };
        while let Ok((socket, _peer)) = tcp::accept(cx, listener) {
            // The address the client reached (cluster mode names it).
            let local = cx.state_mut().tcp.tuple(socket).ok().map(|t| t.local);
            let Some(id) = self.engine.client_accepted_at(pool, local) else {
                let _ = tcp::close(cx, socket); // over client_connections
                continue;
            };
            self.clients.insert(socket, (id, false));
            let slot = id.index as usize;
            if slot >= self.client_sockets.len() {
                self.client_sockets.resize(slot + 1, None);
            }
            self.client_sockets[slot] = Some((id, socket));
            self.read_client(socket, id, cx);
        }
    }

    fn client_socket(&self, id: ClientId) -> Option<SocketId> {
        match self.client_sockets.get(id.index as usize) {
            Some(Some((c, s))) if *c == id => Some(*s),
            _ => None,
        }
    }

    fn forget_client(&mut self, socket: SocketId) -> Option<ClientId> {
        let (id, paused) = self.clients.remove(&socket)?;
        if self.client_socket(id) == Some(socket) {
            self.client_sockets[id.index as usize] = None;
        }
        if paused {
            self.paused.retain(|s| *s != socket);
        }
        if !self.held.is_empty() {
            self.held.remove(&SpliceEnd::Client(id));
        }
        Some(id)
    }

    /// Marks client `socket` held back by the engine (not read until it
    /// wants input again).
    fn pause(&mut self, socket: SocketId) {
        let Some(entry) = self.clients.get_mut(&socket) else {
            return;
        };
        if !entry.1 {
            entry.1 = true;
            self.paused.push(socket);
        }
    }

    /// Client `socket` is read again.
    fn unpause(&mut self, socket: SocketId) {
        if let Some(entry) = self.clients.get_mut(&socket) {
            if entry.1 {
                entry.1 = false;
                self.paused.retain(|s| *s != socket);
            }
        }
    }

    /// Reads the client until its socket has nothing more or the engine
    /// holds it back.
    fn read_client(&mut self, socket: SocketId, id: ClientId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        loop {
            if self.engine.splice_from(SpliceEnd::Client(id)).is_some() {
                match self.splice_step(SpliceEnd::Client(id), cx) {
                    Step::Moved | Step::Done => continue,
                    Step::Wait => return,
                }
            }
            if !self.engine.client_wants_input(id) {
                self.pause(socket);
                return;
            }
            self.unpause(socket);
            // A received buffer at a time: a big value's head is seen after
            // its first segment, its remainder can be spliced.
            let read = match tcp::recv(cx, socket) {
                Ok(Some(buf)) => {
                    let n = buf.total_len();
                    let Some(input) = self.engine.client_buffer(id) else {
                        return;
                    };
                    copy_into(&buf, 0, n, input.spare(n));
                    input.commit(n);
                    Ok(n)
                }
                Ok(None) => Ok(0),
                Err(e) => Err(e),
            };
            match read {
                Ok(0) => {
                    self.forget_client(socket);
                    self.engine.client_closed(id, true);
                    let _ = tcp::close(cx, socket);
                    return;
                }
                Ok(_) => self.engine.client_input(id, Instant::now()),
                Err(SocketError::WouldBlock) => return,
                Err(_) => {
                    self.forget_client(socket);
                    self.engine.client_closed(id, false);
                    let _ = tcp::abort(cx, socket);
                    return;
                }
            }
        }
    }

    fn write_client(&mut self, id: ClientId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        let Some(socket) = self.client_socket(id) else {
            return;
        };
        loop {
            let out = self.engine.client_output(id);
            if out.is_empty() {
                // A reply splice's turn: its server's socket moves the bytes.
                if !self.splice_turn(SpliceEnd::Client(id), cx)
                    || self.client_socket(id) != Some(socket)
                {
                    return;
                }
                continue;
            }
            match tcp::send(cx, socket, out) {
                Ok(0) | Err(SocketError::WouldBlock) => return,
                Ok(n) => self.engine.client_wrote(id, n, Instant::now()),
                Err(_) => {
                    self.forget_client(socket);
                    self.engine.client_closed(id, false);
                    let _ = tcp::abort(cx, socket);
                    return;
                }
            }
        }
    }

    /// Whether some server connection is on a kernel socket (the loop
    /// must then look at them each turn rather than block on the port).
    pub(super) fn has_kernel_sockets(&self) -> bool {
        self.kernel.is_some()
    }

    /// Drops server connection `cid`'s socket: tpa's closed (`abort`:
    /// reset), the kernel's deregistered and closed.
    fn drop_server(&mut self, cid: ServerConnId, abort: bool, cx: &mut Cx<'_, B, ProxyState<B>>) {
        // A received buffer of a splice goes back to the pool.
        self.held.remove(&SpliceEnd::Server(cid));
        self.stalled.remove(&cid);
        let Some(sock) = self.servers.get_mut(cid).and_then(Option::take) else {
            return;
        };
        match sock.conn {
            ServerConn::Tpa(socket) => {
                self.server_of.remove(&socket);
                let _ = if abort {
                    tcp::abort(cx, socket)
                } else {
                    tcp::close(cx, socket)
                };
            }
            ServerConn::Kernel(mut stream) => {
                if let Some(k) = &self.kernel {
                    let _ = k.poll.registry().deregister(&mut stream);
                }
            }
        }
    }

    fn server_failed(&mut self, cid: ServerConnId, why: &str, cx: &mut Cx<'_, B, ProxyState<B>>) {
        self.drop_server(cid, true, cx);
        self.engine.server_closed(cid, Some(why), Instant::now());
    }

    fn read_server(&mut self, cid: ServerConnId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        let chunk = self.read_chunk;
        loop {
            if self.engine.splice_from(SpliceEnd::Server(cid)).is_some() {
                match self.splice_step(SpliceEnd::Server(cid), cx) {
                    Step::Moved | Step::Done => continue,
                    Step::Wait => return,
                }
            }
            if !self.engine.server_wants_input(cid) {
                // A big reply waits in the socket for its turn.
                self.stalled.insert(cid);
                return;
            }
            let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
                return;
            };
            let read = match &mut sock.conn {
                // A received buffer at a time: a big reply's head is seen
                // after its first segment, its remainder can be spliced.
                ServerConn::Tpa(socket) => match tcp::recv(cx, *socket) {
                    Ok(Some(buf)) => {
                        let n = buf.total_len();
                        copy_into(&buf, 0, n, self.engine.server_buffer(cid).spare(n));
                        Ok(n)
                    }
                    Ok(None) => Ok(0),
                    Err(SocketError::WouldBlock) => Err(None),
                    Err(e) => Err(Some(e.name().to_string())),
                },
                ServerConn::Kernel(stream) => {
                    let room = self.engine.server_buffer(cid).spare(chunk);
                    stream.read(room).map_err(|e| match e.kind() {
                        ErrorKind::WouldBlock | ErrorKind::Interrupted => None,
                        _ => Some(crate::kernel::reason(&e)),
                    })
                }
            };
            match read {
                Ok(0) => {
                    self.drop_server(cid, false, cx);
                    self.engine.server_closed(cid, None, Instant::now());
                    return;
                }
                Ok(n) => {
                    self.engine.server_buffer(cid).commit(n);
                    self.engine.server_input(cid, Instant::now());
                }
                Err(None) => return,
                Err(Some(why)) => {
                    self.server_failed(cid, &why, cx);
                    return;
                }
            }
        }
    }

    /// Moves one received buffer of the splice reading from `from` (a
    /// server connection's reply, a client's upload) to its destination
    /// (zero-copy when it is the frame's alone and fits a segment), or
    /// drops it when the destination left.
    fn splice_step(&mut self, from: SpliceEnd, cx: &mut Cx<'_, B, ProxyState<B>>) -> Step {
        let Some((to, left)) = self.engine.splice_from(from) else {
            return Step::Done;
        };
        let dest = match to {
            SpliceEnd::Drop => None,
            to => {
                // The destination's earlier output first.
                let turn = self.engine.splice_into(to).and(self.socket_of(to));
                let Some(socket) = turn else {
                    return Step::Wait;
                };
                Some(socket)
            }
        };
        let Some(source) = self.socket_of(from) else {
            return Step::Wait;
        };
        let (buf, done) = match self.held.remove(&from) {
            Some(held) => held,
            None => match tcp::recv(cx, source) {
                Ok(Some(buf)) => (buf, 0),
                Ok(None) => {
                    // The source closed mid-frame.
                    self.lost(from, None, cx);
                    return Step::Wait;
                }
                Err(SocketError::WouldBlock) => return Step::Wait,
                Err(e) => {
                    self.lost(from, Some(e.name()), cx);
                    return Step::Wait;
                }
            },
        };
        // The buffer's bytes that belong to the frame end here.
        let end = buf.total_len().min(done + left);
        let now = Instant::now();
        let sent = match dest {
            Some(socket) => move_buf(cx, socket, buf, done, end),
            None => Sent::dropped(buf, done, end),
        };
        match sent {
            Sent::All { n, zero_copy, rest } => {
                let finished = self.engine.splice_moved(from, n, zero_copy, now);
                if let Some(buf) = rest {
                    // The source's next replies or requests start in it.
                    self.input_rest(from, buf, end, now);
                }
                if finished {
                    Step::Done
                } else {
                    Step::Moved
                }
            }
            Sent::Part { n, buf, at, failed } => {
                self.engine.splice_moved(from, n, false, now);
                self.held.insert(from, (buf, at));
                if failed && dest.is_some() {
                    // The rest of the frame drains.
                    self.lost(to, Some("send failed"), cx);
                    Step::Moved
                } else {
                    Step::Wait
                }
            }
        }
    }

    /// The bytes of `buf` from `at` on (what follows a spliced frame) go
    /// to `end`'s input, which is then handled.
    fn input_rest(&mut self, end: SpliceEnd, buf: B, at: usize, now: Instant) {
        let len = buf.total_len() - at;
        match end {
            SpliceEnd::Client(id) => {
                if let Some(input) = self.engine.client_buffer(id) {
                    copy_into(&buf, at, len, input.spare(len));
                    input.commit(len);
                }
                drop(buf);
                self.engine.client_input(id, now);
            }
            SpliceEnd::Server(cid) => {
                let input = self.engine.server_buffer(cid);
                copy_into(&buf, at, len, input.spare(len));
                input.commit(len);
                drop(buf);
                self.engine.server_input(cid, now);
            }
            SpliceEnd::Drop => {}
        }
    }

    /// Reads `end`'s socket (see `read_client`, `read_server`).
    fn read_end(&mut self, end: SpliceEnd, cx: &mut Cx<'_, B, ProxyState<B>>) {
        match end {
            SpliceEnd::Client(id) => {
                if let Some(socket) = self.client_socket(id) {
                    self.read_client(socket, id, cx);
                }
            }
            SpliceEnd::Server(cid) => self.read_server(cid, cx),
            SpliceEnd::Drop => {}
        }
    }

    /// The splice into `to` has its turn (`to`'s output before the splice
    /// point is written): its source is read, which moves the bytes. True
    /// once it is through and `to`'s later output may go.
    fn splice_turn(&mut self, to: SpliceEnd, cx: &mut Cx<'_, B, ProxyState<B>>) -> bool {
        let Some((from, _)) = self.engine.splice_into(to) else {
            return false;
        };
        self.read_end(from, cx);
        self.engine.splice_into(to).is_none()
    }

    /// `end`'s socket: a client's, or a server connection's when it is
    /// tpa's.
    fn socket_of(&self, end: SpliceEnd) -> Option<SocketId> {
        match end {
            SpliceEnd::Client(id) => self.client_socket(id),
            SpliceEnd::Server(cid) => self.tpa_socket(cid),
            SpliceEnd::Drop => None,
        }
    }

    /// `end`'s socket closed (`why`: `None`) or failed: forgotten and
    /// closed (reset on failure), the engine told.
    fn lost(&mut self, end: SpliceEnd, why: Option<&str>, cx: &mut Cx<'_, B, ProxyState<B>>) {
        match (end, why) {
            (SpliceEnd::Client(id), None) => {
                if let Some(socket) = self.client_socket(id) {
                    self.forget_client(socket);
                    self.engine.client_closed(id, true);
                    let _ = tcp::close(cx, socket);
                }
            }
            (SpliceEnd::Client(id), Some(_)) => {
                if let Some(socket) = self.client_socket(id) {
                    self.client_failed(id, socket, cx);
                }
            }
            (SpliceEnd::Server(cid), None) => {
                self.drop_server(cid, false, cx);
                self.engine.server_closed(cid, None, Instant::now());
            }
            (SpliceEnd::Server(cid), Some(why)) => self.server_failed(cid, why, cx),
            (SpliceEnd::Drop, _) => {}
        }
    }

    /// Server connection `cid`'s socket when it is tpa's.
    fn tpa_socket(&self, cid: ServerConnId) -> Option<SocketId> {
        match self
            .servers
            .get(cid)
            .and_then(Option::as_ref)
            .map(|s| &s.conn)
        {
            Some(ServerConn::Tpa(socket)) => Some(*socket),
            _ => None,
        }
    }

    /// The client's socket failed: forgotten, reset; the engine told.
    fn client_failed(&mut self, id: ClientId, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        self.forget_client(socket);
        self.engine.client_closed(id, false);
        let _ = tcp::abort(cx, socket);
    }

    fn write_server(&mut self, cid: ServerConnId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        loop {
            let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
                return;
            };
            if !sock.connected {
                return;
            }
            let out = self.engine.server_output(cid);
            if out.is_empty() {
                // An upload's turn: its client's socket moves the bytes.
                if !self.splice_turn(SpliceEnd::Server(cid), cx) {
                    return;
                }
                continue;
            }
            let wrote = match &mut sock.conn {
                ServerConn::Tpa(socket) => tcp::send(cx, *socket, out).map_err(|e| match e {
                    SocketError::WouldBlock => None,
                    e => Some(e.name().to_string()),
                }),
                ServerConn::Kernel(stream) => stream.write(out).map_err(|e| match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::Interrupted => None,
                    _ => Some(crate::kernel::reason(&e)),
                }),
            };
            match wrote {
                Ok(0) | Err(None) => return,
                Ok(n) => self.engine.server_wrote(cid, n),
                Err(Some(why)) => {
                    self.server_failed(cid, &why, cx);
                    return;
                }
            }
        }
    }

    fn connect(
        &mut self,
        cid: ServerConnId,
        address: &ServerAddress,
        keepalive: bool,
        cx: &mut Cx<'_, B, ProxyState<B>>,
    ) {
        self.drop_server(cid, true, cx);
        if self.servers.len() <= cid {
            self.servers.resize_with(cid + 1, || None);
        }
        let opened = match server_side(address) {
            Side::Tpa => server_addr(address).and_then(|remote| {
                tcp::connect(cx, remote)
                    .map(ServerConn::Tpa)
                    .map_err(|e| e.name().to_string())
            }),
            Side::Kernel => self.connect_kernel(cid, address, keepalive),
        };
        match opened {
            Ok(conn) => {
                if let ServerConn::Tpa(socket) = conn {
                    self.server_of.insert(socket, cid);
                }
                self.servers[cid] = Some(ServerSock {
                    conn,
                    connected: false,
                });
            }
            Err(why) => self.engine.server_closed(cid, Some(&why), Instant::now()),
        }
    }

    /// A kernel socket to `address`, registered with the app's mio poll
    /// (made now if it is the first).
    fn connect_kernel(
        &mut self,
        cid: ServerConnId,
        address: &ServerAddress,
        keepalive: bool,
    ) -> Result<ServerConn, String> {
        let why = |e: std::io::Error| crate::kernel::reason(&e);
        if self.kernel.is_none() {
            self.kernel = Some(KernelPoll {
                poll: mio::Poll::new().map_err(why)?,
                events: mio::Events::with_capacity(256),
            });
        }
        let mut stream = crate::kernel::connect(address, keepalive).map_err(why)?;
        if let Some(k) = &self.kernel {
            k.poll
                .registry()
                .register(
                    &mut stream,
                    mio::Token(cid),
                    mio::Interest::READABLE | mio::Interest::WRITABLE,
                )
                .map_err(why)?;
        }
        Ok(ServerConn::Kernel(stream))
    }

    /// Handles the kernel sockets' readiness (a zero-timeout poll).
    fn poll_kernel(&mut self, cx: &mut Cx<'_, B, ProxyState<B>>) -> usize {
        let Some(k) = &mut self.kernel else {
            return 0;
        };
        if k.poll.poll(&mut k.events, Some(Duration::ZERO)).is_err() {
            return 0;
        }
        let ready: Vec<(usize, bool, bool)> = k
            .events
            .iter()
            .map(|e| {
                let closed = e.is_read_closed() || e.is_error();
                (e.token().0, e.is_readable() || closed, e.is_writable())
            })
            .collect();
        for &(cid, readable, writable) in &ready {
            let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) else {
                continue;
            };
            if !sock.connected {
                let ServerConn::Kernel(stream) = &sock.conn else {
                    continue;
                };
                match stream.connect_result() {
                    Ok(true) => {
                        sock.connected = true;
                        self.engine.server_connected(cid);
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        self.server_failed(cid, &crate::kernel::reason(&e), cx);
                        continue;
                    }
                }
            }
            if readable {
                self.read_server(cid, cx);
            }
            if writable {
                self.write_server(cid, cx);
            }
        }
        ready.len()
    }

    /// Carries out the engine's actions, then reads the clients it held
    /// back and now wants to hear from. Returns how many it did.
    fn actions(&mut self, cx: &mut Cx<'_, B, ProxyState<B>>) -> usize {
        let mut done = 0;
        loop {
            while let Some(action) = self.engine.poll_action() {
                done += 1;
                match action {
                    Action::Connect {
                        conn,
                        address,
                        keepalive,
                    } => self.connect(conn, &address, keepalive, cx),
                    Action::CloseServer(cid) => self.drop_server(cid, false, cx),
                    Action::CloseClient(id) => {
                        if let Some(socket) = self.client_socket(id) {
                            self.forget_client(socket);
                            let _ = tcp::close(cx, socket);
                        }
                    }
                    Action::WriteClient(id) => self.write_client(id, cx),
                    Action::WriteServer(cid) => self.write_server(cid, cx),
                    Action::Log { level, message } => (self.log)(level, &message),
                }
            }
            // Splices whose destination left: their bytes already
            // received bring no event.
            let drains: Vec<SpliceEnd> = self.engine.splice_drains().collect();
            for from in drains {
                self.read_end(from, cx);
            }
            // Server connections whose big reply's turn came (or whose
            // client left): what they received brings no new event.
            if !self.stalled.is_empty() {
                let due: Vec<ServerConnId> = self
                    .stalled
                    .iter()
                    .copied()
                    .filter(|&cid| {
                        self.engine.server_wants_input(cid)
                            || self.engine.splice_from(SpliceEnd::Server(cid)).is_some()
                    })
                    .collect();
                for cid in due {
                    self.stalled.remove(&cid);
                    self.read_server(cid, cx);
                }
            }
            if self.paused.is_empty() {
                return done;
            }
            let ready = self.paused.clone();
            let mut resumed = false;
            for socket in ready {
                let Some(&(id, _)) = self.clients.get(&socket) else {
                    continue;
                };
                if self.engine.client_wants_input(id) {
                    resumed = true;
                    self.read_client(socket, id, cx);
                }
            }
            if !resumed {
                return done;
            }
        }
    }

    /// The stats clock now.
    fn stats_clock(&self) -> StatsClock {
        StatsClock {
            now: Instant::now(),
            unix_micros: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            uptime: self.started_unix.elapsed().map_or(0, |d| d.as_secs()),
            source: self.hostname.clone(),
            version: self.version.clone(),
        }
    }

    /// Posts this worker's stats; serves the stats port (this worker's
    /// counters summed with every other worker's last post) when it has it.
    fn serve_stats(&mut self) {
        let clock = self.stats_clock();
        let Some((board, me)) = &self.board else {
            return;
        };
        let view = self.engine.stats_view(&clock);
        let Ok(mut posts) = board.lock() else {
            return;
        };
        if let Some(slot) = posts.get_mut(*me) {
            *slot = Some(view);
        }
        let Some(listener) = &self.stats else {
            return;
        };
        let mut json = None;
        while let Ok((stream, _)) = listener.accept() {
            let json = json.get_or_insert_with(|| {
                let mut sum = crate::proxy::StatsView::default();
                for view in posts.iter().flatten() {
                    sum.add(view);
                }
                sum.render(&clock)
            });
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut stream = stream;
            let _ = stream.write_all(json.as_bytes());
        }
    }

    fn turn(&mut self, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        if let Some(&(id, _)) = self.clients.get(&socket) {
            self.read_client(socket, id, cx);
            self.write_client(id, cx);
        } else if let Some(&cid) = self.server_of.get(&socket) {
            if let Some(sock) = self.servers.get_mut(cid).and_then(Option::as_mut) {
                if !sock.connected {
                    sock.connected = true;
                    self.engine.server_connected(cid);
                }
            }
            self.read_server(cid, cx);
            self.write_server(cid, cx);
        }
        // The engine's actions wait for `poll`, right after the turn's
        // last event and before the stack's output: the requests several
        // clients sent one server this turn go out in one send.
    }
}

impl<B: PacketBuf> App<B, ProxyState<B>> for ProxyApp<'_, B> {
    fn accepted(
        &mut self,
        listener: SocketId,
        _socket: SocketId,
        cx: &mut Cx<'_, B, ProxyState<B>>,
    ) {
        self.accept(listener, cx);
        self.actions(cx);
    }

    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        self.turn(socket, cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        self.turn(socket, cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        self.turn(socket, cx);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, ProxyState<B>>) {
        if let Some(id) = self.forget_client(socket) {
            self.engine.client_closed(id, false);
            let _ = tcp::close(cx, socket);
        } else if let Some(cid) = self.server_of.remove(&socket) {
            self.server_failed(cid, error.name(), cx);
        }
        self.actions(cx);
    }

    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, ProxyState<B>>) {
        if let Some(id) = self.forget_client(socket) {
            self.engine.client_closed(id, false);
        } else if let Some(cid) = self.server_of.remove(&socket) {
            if let Some(sock) = self.servers.get_mut(cid) {
                *sock = None;
            }
            self.engine
                .server_closed(cid, Some("connection closed"), Instant::now());
        }
        let _ = tcp::close(cx, socket);
        self.actions(cx);
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, ProxyState<B>>) -> usize {
        let now = Instant::now();
        let mut done = 0;
        if !self.started {
            self.started = true;
            self.engine.start(now);
            done += 1;
        }
        if self.engine.next_deadline().is_some_and(|d| d <= now) {
            self.engine.tick(now);
            done += 1;
        }
        done += self.poll_kernel(cx);
        if self.board.is_some() && now >= self.next_stats {
            self.next_stats = now + STATS_EVERY;
            self.serve_stats();
        }
        done + self.actions(cx)
    }

    fn next_deadline(&self) -> Option<u64> {
        let now = Instant::now();
        let mut next = self.engine.next_deadline();
        if self.board.is_some() {
            next = Some(next.map_or(self.next_stats, |d| d.min(self.next_stats)));
        }
        if !self.started {
            next = Some(now);
        }
        let wait = next?.saturating_duration_since(now);
        Some(
            tpa::time::Clock::global()
                .now_ns()
                .saturating_add(wait.as_nanos() as u64),
        )
    }
}

/// Copies `len` bytes of `buf` from offset `from` into the start of `out`.
fn copy_into<B: PacketBuf>(buf: &B, mut from: usize, len: usize, out: &mut [u8]) {
    let mut at = 0;
    for segment in buf.segments() {
        if at == len {
            break;
        }
        if from >= segment.len() {
            from -= segment.len();
            continue;
        }
        let n = (segment.len() - from).min(len - at);
        out[at..at + n].copy_from_slice(&segment[from..from + n]);
        at += n;
        from = 0;
    }
}

/// Whether big replies pass through zero-copy: on unless
/// `TPA_PROXY_PASSTHROUGH=0` (a switch for measuring what it saves).
fn passthrough_on() -> bool {
    std::env::var("TPA_PROXY_PASSTHROUGH").map_or(true, |v| v.trim() != "0")
}

/// What moving a received buffer's bytes to a socket did.
enum Sent<B> {
    /// All of them went (`zero_copy`: as the buffer itself), `n` bytes;
    /// the buffer back when bytes after them remain.
    All {
        n: usize,
        zero_copy: bool,
        rest: Option<B>,
    },
    /// `n` bytes went; the buffer to hold, its bytes before `at` gone
    /// (`failed`: the socket failed, else its queue is full).
    Part {
        n: usize,
        buf: B,
        at: usize,
        failed: bool,
    },
}

impl<B: PacketBuf> Sent<B> {
    /// `buf[done..end]` dropped (nobody wants them).
    fn dropped(buf: B, done: usize, end: usize) -> Sent<B> {
        let rest = (end < buf.total_len()).then_some(buf);
        Sent::All {
            n: end - done,
            zero_copy: false,
            rest,
        }
    }
}

/// Sends `buf[done..end]` on `socket`: the buffer itself (`send_buf`)
/// when that is all of it and it fits a segment, else a copy (`send`).
fn move_buf<B: PacketBuf>(
    cx: &mut Cx<'_, B, ProxyState<B>>,
    socket: SocketId,
    buf: B,
    done: usize,
    end: usize,
) -> Sent<B> {
    let len = buf.total_len();
    let buf = if done == 0 && end == len {
        match tcp::send_buf(cx, socket, buf) {
            Ok(()) => {
                return Sent::All {
                    n: len,
                    zero_copy: true,
                    rest: None,
                }
            }
            // Larger than the socket's segments: copied below.
            Err((SocketError::MessageTooLong, buf)) => buf,
            Err((e, buf)) => {
                return Sent::Part {
                    n: 0,
                    buf,
                    at: 0,
                    failed: e != SocketError::WouldBlock,
                }
            }
        }
    } else {
        buf
    };
    let mut at = done;
    let mut failed = false;
    let mut offset = 0;
    'segments: for segment in buf.segments() {
        let seg_end = offset + segment.len();
        while at >= offset && at < end.min(seg_end) {
            match tcp::send(cx, socket, &segment[at - offset..end.min(seg_end) - offset]) {
                Ok(0) | Err(SocketError::WouldBlock) => break 'segments,
                Ok(n) => at += n,
                Err(_) => {
                    failed = true;
                    break 'segments;
                }
            }
        }
        if at >= end {
            break;
        }
        offset = seg_end;
    }
    if at < end {
        return Sent::Part {
            n: at - done,
            buf,
            at,
            failed,
        };
    }
    let rest = (end < len).then_some(buf);
    Sent::All {
        n: end - done,
        zero_copy: false,
        rest,
    }
}
