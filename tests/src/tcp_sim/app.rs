//! The application on each host: the client opens the scenario's
//! connections, the server accepts them, both send their seeded streams,
//! check every byte they receive and close as the plan says. Both ends
//! record what happened in a [`World`] they share (the two pipelines run
//! on one thread), which the checks read after the run.
//!
//! The app reads only when an event says so (`Readable`, `PeerClosed`)
//! and writes only on `Writable` (and after reading): a lost event stalls
//! a connection, which the run reports as stuck.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::stage::Cx;
use tpa_stages::tcp::{self, TcpSockets};

use super::scenario::{derive, CloseOrder, ConnPlan, Flow};
pub use crate::tcp_host::HostState;

type B = PoolBuf;

/// The port the server listens on, IPv4 and IPv6.
pub const PORT: u16 = 5001;
/// The client's addresses.
pub const CLIENT_V4: &str = "192.0.2.1";
/// The client's IPv6 address.
pub const CLIENT_V6: &str = "2001:db8::1";
/// The server's IPv4 address.
pub const SERVER_V4: &str = "192.0.2.2";
/// The server's IPv6 address.
pub const SERVER_V6: &str = "2001:db8::2";

/// The client (0) or the server (1): the index of an end.
pub const CLIENT: usize = 0;
/// The server's index.
pub const SERVER: usize = 1;

/// What one end of one connection did.
#[derive(Debug, Default, Clone)]
pub struct EndState {
    /// Its handle, once connected (client: at connect; server: at accept).
    pub socket: Option<SocketId>,
    /// The handshake completed (`Writable` for the client, `Accepted` for
    /// the server).
    pub connected: bool,
    /// Bytes it sends, and expects.
    pub send_len: usize,
    /// Bytes it expects from the peer.
    pub recv_len: usize,
    /// Bytes the send queue took.
    pub sent: usize,
    /// Bytes read.
    pub received: usize,
    /// The first offset where a received byte differed from the stream.
    pub mismatch: Option<usize>,
    /// The end of the peer's stream was read.
    pub eof: bool,
    /// It shut its sending side.
    pub shut: bool,
    /// It closed (or aborted) its handle: no more events.
    pub handle_closed: bool,
    /// When (virtual ns) it closed its handle or got `Closed`: events
    /// queued before, in the same turn, still come.
    pub closed_at_ns: Option<u64>,
    /// It aborted the connection.
    pub aborted: bool,
    /// Ready to close (a simultaneous close waits for both ends).
    pub ready: bool,
    /// `Error` events, in order.
    pub errors: Vec<SocketError>,
    /// `Closed` events.
    pub closed_events: u32,
    /// `Readable` events.
    pub readable_events: u32,
    /// Errors returned by calls that should not fail.
    pub call_errors: Vec<(&'static str, SocketError)>,
}

/// One connection's plan and both ends' records.
#[derive(Debug, Clone)]
pub struct ConnState {
    /// What it should do.
    pub plan: ConnPlan,
    /// Client and server.
    pub ends: [EndState; 2],
    /// Seeds of the streams client → server and server → client.
    pub stream_seed: [u64; 2],
    /// The client's connection left its socket table (its slot freed).
    pub client_gone: bool,
}

/// What both apps share.
#[derive(Debug)]
pub struct World {
    /// The connections.
    pub conns: Vec<ConnState>,
    /// Client port (and family) → connection, for the server's accepts.
    pub by_port: HashMap<(bool, u16), usize>,
    /// The server's listeners (IPv4, IPv6), until it closed them.
    pub listeners: Vec<SocketId>,
    /// The server closed its listeners.
    pub listeners_closed: bool,
    /// Things that must not happen (an event after close, an unknown
    /// socket…), as they happened.
    pub violations: Vec<String>,
    /// Bytes read by both ends so far.
    pub bytes_received: usize,
}

impl World {
    /// A world for `conns`, streams seeded from `seed`.
    pub fn new(seed: u64, conns: &[ConnPlan]) -> Self {
        let conns = conns
            .iter()
            .enumerate()
            .map(|(i, plan)| {
                let mut ends: [EndState; 2] = Default::default();
                ends[CLIENT].send_len = plan.c2s;
                ends[CLIENT].recv_len = plan.s2c;
                ends[SERVER].send_len = plan.s2c;
                ends[SERVER].recv_len = plan.c2s;
                ConnState {
                    plan: plan.clone(),
                    ends,
                    stream_seed: [
                        derive(seed, 0x1000 + 2 * i as u64),
                        derive(seed, 0x1001 + 2 * i as u64),
                    ],
                    client_gone: false,
                }
            })
            .collect();
        World {
            conns,
            by_port: HashMap::new(),
            listeners: Vec::new(),
            listeners_closed: false,
            violations: Vec::new(),
            bytes_received: 0,
        }
    }
}

/// Byte `i` of the stream seeded `seed`.
pub fn stream_byte(seed: u64, i: usize) -> u8 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 29)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z >> 56) as u8
}

/// The app of one host.
pub struct SimApp {
    /// [`CLIENT`] or [`SERVER`].
    side: usize,
    world: Rc<RefCell<World>>,
    /// This host's handles → connection index.
    by_socket: HashMap<SocketId, usize>,
    /// Client: which connections it opened.
    started: Vec<bool>,
    /// Virtual time of the run's start.
    origin_ns: u64,
}

impl SimApp {
    /// The app of `side`, sharing `world`; start times count from
    /// `origin_ns`.
    pub fn new(side: usize, world: Rc<RefCell<World>>, origin_ns: u64) -> Self {
        let n = world.borrow().conns.len();
        SimApp {
            side,
            world,
            by_socket: HashMap::new(),
            started: vec![false; n],
            origin_ns,
        }
    }

    fn violation(&self, what: String) {
        self.world.borrow_mut().violations.push(what);
    }

    /// The connection of `socket` on this host, or a violation.
    fn conn_of(&self, socket: SocketId, event: &str) -> Option<usize> {
        let i = self.by_socket.get(&socket).copied();
        if i.is_none() {
            self.violation(format!(
                "{}: {event} for unknown socket {socket:?}",
                side_name(self.side)
            ));
        }
        i
    }

    /// An event arrived for connection `i` at `now`: whether it is still
    /// open on our side; an event later than its close is a violation.
    fn event_ok(&self, i: usize, event: &str, now: u64) -> bool {
        let w = self.world.borrow();
        let end = &w.conns[i].ends[self.side];
        let open = !end.handle_closed && end.closed_events == 0;
        let bad = end.closed_at_ns.is_some_and(|at| now > at);
        drop(w);
        if bad {
            self.violation(format!(
                "{} conn {i}: {event} after the handle was closed",
                side_name(self.side)
            ));
        }
        open
    }

    /// Opens the connections whose time came.
    fn start_due(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let now = cx.now_ns().saturating_sub(self.origin_ns);
        let mut work = 0;
        for i in 0..self.started.len() {
            if self.started[i] {
                continue;
            }
            let plan = self.world.borrow().conns[i].plan.clone();
            if plan.start_ns > now {
                continue;
            }
            self.started[i] = true;
            work += 1;
            let ip: IpAddr = if plan.v6 { SERVER_V6 } else { SERVER_V4 }.parse().unwrap();
            match tcp::connect(cx, SocketAddr::new(ip, PORT)) {
                Ok(s) => {
                    let port = cx
                        .part::<TcpSockets<B>>()
                        .tuple(s)
                        .map(|t| t.local.port())
                        .unwrap_or(0);
                    self.by_socket.insert(s, i);
                    let mut w = self.world.borrow_mut();
                    w.by_port.insert((plan.v6, port), i);
                    w.conns[i].ends[CLIENT].socket = Some(s);
                }
                Err(e) => {
                    let mut w = self.world.borrow_mut();
                    w.conns[i].ends[CLIENT].call_errors.push(("connect", e));
                    w.conns[i].ends[CLIENT].handle_closed = true;
                }
            }
        }
        work
    }

    /// Reads what waits on connection `i`, checking every byte.
    fn drain(&mut self, i: usize, cx: &mut Cx<'_, B, HostState>) {
        let mut w = self.world.borrow_mut();
        let seed = w.conns[i].stream_seed[1 - self.side];
        let io = w.conns[i].plan.io[self.side];
        let mut got = 0;
        let end = &mut w.conns[i].ends[self.side];
        let Some(s) = end.socket.filter(|_| !end.handle_closed) else {
            return;
        };
        let mut check = |end: &mut EndState, bytes: &[u8]| {
            for &b in bytes {
                if end.mismatch.is_none() && b != stream_byte(seed, end.received) {
                    end.mismatch = Some(end.received);
                }
                end.received += 1;
            }
            got += bytes.len();
        };
        let mut chunk = vec![0u8; io.read_chunk];
        loop {
            let r = if io.zero_copy_read {
                tcp::recv(cx, s).map(|b| {
                    b.map(|b| {
                        for seg in b.segments() {
                            check(end, seg);
                        }
                    })
                })
            } else {
                tcp::read(cx, s, &mut chunk).map(|n| {
                    check(end, &chunk[..n]);
                    (n > 0).then_some(())
                })
            };
            match r {
                Ok(Some(())) => {}
                Ok(None) => {
                    end.eof = true;
                    break;
                }
                Err(SocketError::WouldBlock) => break,
                // The error event tells it too.
                Err(_) => break,
            }
        }
        w.bytes_received += got;
    }

    /// Writes, shuts, closes or aborts connection `i` as its plan says.
    fn pump(&mut self, i: usize, cx: &mut Cx<'_, B, HostState>) -> usize {
        let mut w = self.world.borrow_mut();
        let conn = &mut w.conns[i];
        let plan = conn.plan.clone();
        let seed = conn.stream_seed[self.side];
        let peer_ready = conn.ends[1 - self.side].ready;
        let end = &mut conn.ends[self.side];
        let Some(s) = end.socket.filter(|_| !end.handle_closed && end.connected) else {
            return 0;
        };
        if end.closed_events > 0 || !end.errors.is_empty() {
            return 0;
        }
        let client = self.side == CLIENT;
        if let CloseOrder::Abort { client: c, after } = plan.close {
            if c == client && end.sent + end.received >= after {
                end.aborted = true;
                end.handle_closed = true;
                end.closed_at_ns = Some(cx.now_ns());
                if let Err(e) = tcp::abort(cx, s) {
                    end.call_errors.push(("abort", e));
                }
                return 1;
            }
        }
        let mut work = 0;
        let may_send = plan.flow == Flow::Concurrent || client || end.received == end.recv_len;
        let io = plan.io[self.side];
        while may_send && end.sent < end.send_len {
            let n = io.write_chunk.min(end.send_len - end.sent);
            let r = if io.zero_copy_write {
                write_zero_copy(cx, s, seed, end.sent, n)
            } else {
                let data: Vec<u8> = (end.sent..end.sent + n)
                    .map(|k| stream_byte(seed, k))
                    .collect();
                tcp::send(cx, s, &data)
            };
            match r {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(k) => {
                    end.sent += k;
                    work += 1;
                }
                Err(e) => {
                    end.call_errors.push(("send", e));
                    break;
                }
            }
        }
        let all_sent = end.sent == end.send_len;
        let all_received = end.received == end.recv_len;
        let shut_first = matches!(plan.close, CloseOrder::HalfClose | CloseOrder::Abort { .. });
        if shut_first && all_sent && !end.shut {
            end.shut = true;
            work += 1;
            if let Err(e) = tcp::shutdown(cx, s) {
                end.call_errors.push(("shutdown", e));
            }
        }
        let close = match plan.close {
            CloseOrder::HalfClose | CloseOrder::Abort { .. } => end.shut && end.eof,
            CloseOrder::ClientFirst if client => all_sent && all_received,
            CloseOrder::ServerFirst if !client => all_sent && all_received,
            CloseOrder::ClientFirst | CloseOrder::ServerFirst => all_sent && end.eof,
            CloseOrder::Simultaneous => {
                end.ready = all_sent && all_received;
                end.ready && peer_ready
            }
        };
        if close {
            end.handle_closed = true;
            end.closed_at_ns = Some(cx.now_ns());
            work += 1;
            if let Err(e) = tcp::close(cx, s) {
                end.call_errors.push(("close", e));
            }
        }
        work
    }
}

/// Sends `n` bytes of stream `seed` from offset `at` in one pool buffer,
/// zero-copy (at most one segment's payload).
fn write_zero_copy(
    cx: &mut Cx<'_, B, HostState>,
    s: SocketId,
    seed: u64,
    at: usize,
    n: usize,
) -> Result<usize, SocketError> {
    let info = tcp::info(cx, s)?;
    let max = usize::from(info.snd_mss);
    let n = n.min(max);
    let Some(mut buf) = cx.alloc() else {
        return Err(SocketError::NoBuffers);
    };
    let n = n.min(buf.tailroom());
    match buf.append(n) {
        Ok(bytes) => {
            for (k, b) in bytes.iter_mut().enumerate() {
                *b = stream_byte(seed, at + k);
            }
        }
        Err(_) => return Err(SocketError::NoBuffers),
    }
    tcp::send_buf(cx, s, buf).map(|()| n).map_err(|(e, _)| e)
}

fn side_name(side: usize) -> &'static str {
    if side == CLIENT {
        "client"
    } else {
        "server"
    }
}

impl App<B, HostState> for SimApp {
    fn accepted(&mut self, listener: SocketId, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let popped = tcp::accept(cx, listener);
        let (popped, remote) = match popped {
            Ok(p) => p,
            Err(e) => {
                self.violation(format!("server: accept after Accepted: {e:?}"));
                return;
            }
        };
        if popped != socket {
            self.violation(format!(
                "server: Accepted {socket:?} but accept gave {popped:?}"
            ));
        }
        let key = (remote.is_ipv6(), remote.port());
        let Some(i) = self.world.borrow().by_port.get(&key).copied() else {
            self.violation(format!("server: accepted an unknown peer {remote}"));
            let _ = tcp::abort(cx, socket);
            return;
        };
        {
            let mut w = self.world.borrow_mut();
            let end = &mut w.conns[i].ends[SERVER];
            if end.socket.is_some() {
                drop(w);
                self.violation(format!("server conn {i}: accepted twice"));
                return;
            }
            end.socket = Some(socket);
            end.connected = true;
        }
        self.by_socket.insert(socket, i);
        self.pump(i, cx);
    }

    fn readable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let Some(i) = self.conn_of(socket, "Readable") else {
            return;
        };
        if !self.event_ok(i, "Readable", cx.now_ns()) {
            return;
        }
        self.world.borrow_mut().conns[i].ends[self.side].readable_events += 1;
        self.drain(i, cx);
        self.pump(i, cx);
    }

    fn writable(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let Some(i) = self.conn_of(socket, "Writable") else {
            return;
        };
        if !self.event_ok(i, "Writable", cx.now_ns()) {
            return;
        }
        self.world.borrow_mut().conns[i].ends[self.side].connected = true;
        self.pump(i, cx);
    }

    fn peer_closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let Some(i) = self.conn_of(socket, "PeerClosed") else {
            return;
        };
        if !self.event_ok(i, "PeerClosed", cx.now_ns()) {
            return;
        }
        self.drain(i, cx);
        self.pump(i, cx);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, cx: &mut Cx<'_, B, HostState>) {
        let Some(i) = self.conn_of(socket, "Error") else {
            return;
        };
        if !self.event_ok(i, "Error", cx.now_ns()) {
            return;
        }
        self.world.borrow_mut().conns[i].ends[self.side]
            .errors
            .push(error);
    }

    fn closed(&mut self, socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        let Some(i) = self.conn_of(socket, "Closed") else {
            return;
        };
        if !self.event_ok(i, "Closed", cx.now_ns()) {
            return;
        }
        let mut w = self.world.borrow_mut();
        let end = &mut w.conns[i].ends[self.side];
        end.closed_events += 1;
        end.handle_closed = true;
        end.closed_at_ns = Some(cx.now_ns());
        // The connection is gone; giving the handle back frees its slot.
        if let Err(e) = tcp::close(cx, socket) {
            end.call_errors.push(("close after Closed", e));
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let mut work = 0;
        if self.side == CLIENT {
            work += self.start_due(cx);
        }
        // A simultaneous close: the end that became ready second told the
        // first through the world; it closes now.
        let n = self.world.borrow().conns.len();
        for i in 0..n {
            let w = self.world.borrow();
            let c = &w.conns[i];
            let due = c.plan.close == CloseOrder::Simultaneous
                && c.ends[0].ready
                && c.ends[1].ready
                && !c.ends[self.side].handle_closed;
            drop(w);
            if due {
                work += self.pump(i, cx);
            }
        }
        if self.side == SERVER {
            work += self.close_listeners(cx);
        }
        work
    }

    fn next_deadline(&self) -> Option<u64> {
        let w = self.world.borrow();
        (self.side == CLIENT)
            .then(|| {
                w.conns
                    .iter()
                    .zip(&self.started)
                    .filter(|(_, started)| !**started)
                    .map(|(c, _)| self.origin_ns + c.plan.start_ns)
                    .min()
            })
            .flatten()
    }
}

impl SimApp {
    /// The server stops listening once every connection was accepted or
    /// is gone from the client's table without having been.
    fn close_listeners(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let mut w = self.world.borrow_mut();
        if w.listeners_closed {
            return 0;
        }
        let done = w
            .conns
            .iter()
            .all(|c| c.ends[SERVER].socket.is_some() || c.client_gone);
        if !done {
            return 0;
        }
        w.listeners_closed = true;
        let listeners = std::mem::take(&mut w.listeners);
        drop(w);
        for l in listeners {
            if let Err(e) = tcp::close(cx, l) {
                self.violation(format!("server: closing listener {l:?}: {e:?}"));
            }
        }
        1
    }
}
