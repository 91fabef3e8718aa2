//! tpa's stack as a [`Backend`]: the whole host pipeline the TCP tests run
//! ([`TcpHost`]: Ethernet, ARP/NDP, IPv4/IPv6, TCP) on end A of a
//! `MemoryWire`, on a virtual clock. The runner is end B: its packets go
//! in as Ethernet frames, the frames the host sends come out with the
//! virtual time they left; end B answers the host's ARP requests and
//! neighbor solicitations itself (the script never sees them).
//!
//! Socket calls run inside the host's app ([`DrillApp`]) on its next loop
//! turn, so the segments they cause leave in that turn. A call that would
//! block on a blocking socket is retried every turn until it finishes.
//!
//! The stack starts at the first call that needs it (bind, listen,
//! connect, a packet): sysctls and options set on fresh sockets before
//! that (`TCP_NODELAY`, `SO_KEEPALIVE`, `TCP_MAXSEG`) shape its
//! [`TcpConfig`], which starts from Linux's defaults where tpa's differ
//! (Nagle on).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;

use tpa::app::{App, SocketError, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool};
use tpa::port::memory::{End, MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::Cx;
use tpa::time::VirtualClock;
use tpa_stages::iface::{Interface, Ipv4Cidr, Ipv6Cidr};
use tpa_stages::tcp::config::{CongestionAlgorithm, SynCookieMode, TcpConfig};
use tpa_stages::tcp::conn::State as TcpState;
use tpa_stages::tcp::{self, TcpSockets};
use tpa_tests::tcp_host::{memory_wire, HostState, TcpHost, B, MAC_A, MAC_B};

use super::{
    Backend, BackendError, CallResult, CallStatus, Family, IpVersion, Outbound, Setup, ShutdownHow,
    SockOpt, Syscall,
};

/// Where the virtual clock starts (script time 0).
const BASE_NS: u64 = 1_000_000_000;
/// Loop turns at one instant before the backend gives up (a storm).
const TURNS_PER_INSTANT: usize = 10_000;

/// A socket descriptor of the emulated process.
#[derive(Debug, Clone)]
enum Fd {
    /// `socket()` done, not yet listening or connected.
    Fresh { bound: Option<SocketAddr> },
    /// A listener.
    Listener(SocketId),
    /// A connection.
    Conn(SocketId),
}

#[derive(Debug, Clone)]
struct FdEntry {
    fd: Fd,
    family: Family,
    nonblocking: bool,
    /// `SO_LINGER` on with 0 seconds: close sends RST.
    linger_zero: bool,
}

/// A call waiting to be made in the app, or one blocked.
#[derive(Debug, Clone)]
enum Pending {
    Call(Syscall),
    /// A blocking `connect` waiting for the handshake.
    ConnectWait(i32),
}

/// What the app and the backend share.
#[derive(Default)]
struct Shared {
    fds: BTreeMap<i32, FdEntry>,
    /// The call to make at the app's next turn.
    pending: Option<Pending>,
    /// Its outcome.
    done: Option<CallStatus>,
    /// A blocked call, retried every turn.
    blocked: Option<Pending>,
    /// The blocked call's result and when (ns) it returned.
    blocked_done: Option<(u64, CallResult)>,
    /// Errors the stack reported per connection, until a call takes them.
    errors: HashMap<SocketId, SocketError>,
    /// Connections whose handle the stack closed.
    closed: Vec<SocketId>,
    /// Connections with data to read (raised by the stack, cleared when a
    /// read drains the queue): `poll`'s POLLIN.
    readable: HashSet<SocketId>,
    /// Connections whose peer finished sending (a read returns 0).
    eof: HashSet<SocketId>,
    /// Listeners with a connection to accept.
    acceptable: HashSet<SocketId>,
}

/// The host's app: makes the runner's calls.
pub struct DrillApp {
    shared: Rc<RefCell<Shared>>,
}

/// An errno for a tpa socket error.
pub fn errno_of(e: SocketError) -> i32 {
    match e {
        SocketError::WouldBlock => libc::EAGAIN,
        SocketError::HostUnreachable => libc::EHOSTUNREACH,
        SocketError::NetworkUnreachable => libc::ENETUNREACH,
        SocketError::ConnectionRefused => libc::ECONNREFUSED,
        SocketError::ConnectionReset => libc::ECONNRESET,
        SocketError::TimedOut => libc::ETIMEDOUT,
        SocketError::BrokenPipe => libc::EPIPE,
        SocketError::MessageTooLong => libc::EMSGSIZE,
        SocketError::AddressInUse => libc::EADDRINUSE,
        SocketError::AddressNotAvailable => libc::EADDRNOTAVAIL,
        SocketError::NoBuffers => libc::ENOBUFS,
        SocketError::BadSocket => libc::EBADF,
        SocketError::InProgress => libc::EINPROGRESS,
        SocketError::NotConnected => libc::ENOTCONN,
        SocketError::InvalidArgument => libc::EINVAL,
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d` (tpa's sockets are per family).
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// What a call did in the app.
enum Exec {
    Done(CallResult),
    WouldBlock,
}

type HostCx<'a> = Cx<'a, B, HostState>;

impl DrillApp {
    fn exec(sh: &mut Shared, p: &Pending, cx: &mut HostCx<'_>) -> Exec {
        match p {
            Pending::ConnectWait(fd) => Self::connect_wait(sh, *fd, cx),
            Pending::Call(c) => Self::exec_call(sh, c, cx),
        }
    }

    fn connect_wait(sh: &mut Shared, fd: i32, cx: &mut HostCx<'_>) -> Exec {
        let Some(FdEntry {
            fd: Fd::Conn(id), ..
        }) = sh.fds.get(&fd).cloned()
        else {
            return Exec::Done(CallResult::err(libc::EBADF));
        };
        if let Some(e) = sh.errors.remove(&id) {
            return Exec::Done(CallResult::err(errno_of(e)));
        }
        match cx.part::<TcpSockets<B>>().state(id) {
            Ok(TcpState::SynSent | TcpState::SynReceived) => Exec::WouldBlock,
            Ok(_) => Exec::Done(CallResult::ok(0)),
            Err(_) => Exec::Done(CallResult::err(libc::ECONNREFUSED)),
        }
    }

    fn conn(sh: &Shared, fd: i32) -> Result<(SocketId, bool), i32> {
        match sh.fds.get(&fd) {
            Some(FdEntry {
                fd: Fd::Conn(id),
                linger_zero,
                ..
            }) => Ok((*id, *linger_zero)),
            Some(_) => Err(libc::ENOTCONN),
            None => Err(libc::EBADF),
        }
    }

    /// A pending error of `id` (a reset, a timeout), taken.
    fn take_error(sh: &mut Shared, id: SocketId) -> Option<i32> {
        sh.errors.remove(&id).map(errno_of)
    }

    fn exec_call(sh: &mut Shared, c: &Syscall, cx: &mut HostCx<'_>) -> Exec {
        let done = |r: Result<i64, i32>| {
            Exec::Done(match r {
                Ok(v) => CallResult::ok(v),
                Err(e) => CallResult::err(e),
            })
        };
        match c {
            Syscall::Listen { fd, backlog } => {
                let Some(entry) = sh.fds.get_mut(fd) else {
                    return done(Err(libc::EBADF));
                };
                let Fd::Fresh { bound } = entry.fd else {
                    return done(Err(libc::EINVAL));
                };
                let Some(addr) = bound else {
                    return done(Err(libc::EINVAL));
                };
                match tcp::listen(cx, canonical(addr), (*backlog).max(1) as usize) {
                    Ok(id) => {
                        entry.fd = Fd::Listener(id);
                        done(Ok(0))
                    }
                    Err(e) => done(Err(errno_of(e))),
                }
            }
            Syscall::Accept { fd } => {
                let Some(FdEntry {
                    fd: Fd::Listener(l),
                    family,
                    ..
                }) = sh.fds.get(fd).cloned()
                else {
                    return done(Err(libc::EINVAL));
                };
                match tcp::accept(cx, l) {
                    Ok((id, _peer)) => {
                        let new = next_fd(&sh.fds);
                        sh.fds.insert(
                            new,
                            FdEntry {
                                fd: Fd::Conn(id),
                                family,
                                nonblocking: false,
                                linger_zero: false,
                            },
                        );
                        done(Ok(i64::from(new)))
                    }
                    Err(SocketError::WouldBlock) => {
                        sh.acceptable.remove(&l);
                        Exec::WouldBlock
                    }
                    Err(e) => done(Err(errno_of(e))),
                }
            }
            Syscall::Connect { fd, addr } => {
                let Some(entry) = sh.fds.get(fd).cloned() else {
                    return done(Err(libc::EBADF));
                };
                match entry.fd {
                    Fd::Fresh { bound } => {
                        let remote = canonical(*addr);
                        let r = match bound {
                            Some(local) => tcp::connect_from(cx, canonical(local), remote),
                            None => tcp::connect(cx, remote),
                        };
                        match r {
                            Ok(id) => {
                                if let Some(e) = sh.fds.get_mut(fd) {
                                    e.fd = Fd::Conn(id);
                                }
                                if entry.nonblocking {
                                    done(Err(libc::EINPROGRESS))
                                } else {
                                    // Blocks until the handshake ends.
                                    sh.blocked = Some(Pending::ConnectWait(*fd));
                                    Exec::WouldBlock
                                }
                            }
                            Err(e) => done(Err(errno_of(e))),
                        }
                    }
                    Fd::Conn(id) => match cx.part::<TcpSockets<B>>().state(id) {
                        Ok(TcpState::SynSent | TcpState::SynReceived) => done(Err(libc::EALREADY)),
                        Ok(_) => done(Err(libc::EISCONN)),
                        Err(_) => done(Err(Self::take_error(sh, id).unwrap_or(libc::ECONNREFUSED))),
                    },
                    Fd::Listener(_) => done(Err(libc::EINVAL)),
                }
            }
            Syscall::Write { fd, len } => {
                let (id, _) = match Self::conn(sh, *fd) {
                    Ok(c) => c,
                    Err(e) => return done(Err(e)),
                };
                if let Some(e) = Self::take_error(sh, id) {
                    return done(Err(e));
                }
                let zeros = vec![0u8; *len];
                let mut sent = 0;
                // A copying send takes at most a chunk a call: loop until
                // the queue is full.
                while sent < *len {
                    match tcp::send(cx, id, &zeros[sent..]) {
                        Ok(0) => break,
                        Ok(n) => sent += n,
                        Err(SocketError::WouldBlock) => break,
                        Err(e) if sent == 0 => return done(Err(errno_of(e))),
                        Err(_) => break,
                    }
                }
                if sent == 0 && *len > 0 {
                    Exec::WouldBlock
                } else {
                    done(Ok(sent as i64))
                }
            }
            Syscall::Read { fd, len } => {
                let (id, _) = match Self::conn(sh, *fd) {
                    Ok(c) => c,
                    Err(e) => return done(Err(e)),
                };
                let mut buf = vec![0u8; *len];
                let mut got = 0;
                while got < *len {
                    match tcp::read(cx, id, &mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(SocketError::WouldBlock) => break,
                        Err(e) if got == 0 => {
                            let e = Self::take_error(sh, id).unwrap_or(errno_of(e));
                            return done(Err(e));
                        }
                        Err(_) => break,
                    }
                }
                if got < *len {
                    // Drained.
                    sh.readable.remove(&id);
                }
                if got > 0 {
                    return done(Ok(got as i64));
                }
                match tcp::read(cx, id, &mut buf) {
                    Ok(_) => done(Ok(0)),
                    Err(SocketError::WouldBlock) => match Self::take_error(sh, id) {
                        Some(e) => done(Err(e)),
                        None => Exec::WouldBlock,
                    },
                    Err(e) => done(Err(Self::take_error(sh, id).unwrap_or(errno_of(e)))),
                }
            }
            Syscall::Shutdown { fd, how } => {
                let (id, _) = match Self::conn(sh, *fd) {
                    Ok(c) => c,
                    Err(e) => return done(Err(e)),
                };
                match how {
                    ShutdownHow::Read => done(Ok(0)),
                    ShutdownHow::Write | ShutdownHow::Both => match tcp::shutdown(cx, id) {
                        Ok(()) => done(Ok(0)),
                        Err(e) => done(Err(errno_of(e))),
                    },
                }
            }
            Syscall::Close { fd } => {
                let Some(entry) = sh.fds.remove(fd) else {
                    return done(Err(libc::EBADF));
                };
                match entry.fd {
                    Fd::Fresh { .. } => {}
                    Fd::Listener(id) => {
                        let _ = tcp::close(cx, id);
                    }
                    Fd::Conn(id) => {
                        let _ = if entry.linger_zero {
                            tcp::abort(cx, id)
                        } else {
                            tcp::close(cx, id)
                        };
                    }
                }
                done(Ok(0))
            }
            Syscall::GetSockOpt {
                fd,
                opt: SockOpt::Error,
            } => {
                let e = match sh.fds.get(fd).map(|e| e.fd.clone()) {
                    None => return done(Err(libc::EBADF)),
                    Some(Fd::Conn(id)) => Self::take_error(sh, id).unwrap_or(0),
                    Some(_) => 0,
                };
                Exec::Done(CallResult {
                    ret: 0,
                    value: Some(i64::from(e)),
                    ..CallResult::default()
                })
            }
            Syscall::Poll { fds, .. } => {
                let mut revents = Vec::new();
                for (fd, events) in fds {
                    let mut r: i16 = 0;
                    match sh.fds.get(fd).map(|e| e.fd.clone()) {
                        Some(Fd::Conn(id)) => {
                            let sockets = cx.part::<TcpSockets<B>>();
                            match sockets.state(id) {
                                Ok(
                                    TcpState::Established
                                    | TcpState::CloseWait
                                    | TcpState::FinWait1
                                    | TcpState::FinWait2,
                                ) => {
                                    if tcp::send_space(cx, id).unwrap_or(0) > 0 {
                                        r |= libc::POLLOUT;
                                    }
                                }
                                Ok(_) => {}
                                Err(_) => r |= libc::POLLHUP,
                            }
                            if sh.errors.contains_key(&id) {
                                r |= libc::POLLERR;
                            }
                            if sh.readable.contains(&id) || sh.eof.contains(&id) {
                                r |= libc::POLLIN;
                            }
                        }
                        Some(Fd::Listener(l)) => {
                            if sh.acceptable.contains(&l) {
                                r |= libc::POLLIN;
                            }
                        }
                        Some(_) => {}
                        None => r |= libc::POLLNVAL,
                    }
                    revents.push(r & (*events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL));
                }
                let n = revents.iter().filter(|r| **r != 0).count();
                Exec::Done(CallResult {
                    ret: n as i64,
                    revents,
                    ..CallResult::default()
                })
            }
            // Made without the stack (see `TpaBackend::call_local`).
            other => unreachable!("{other:?} is made by the backend itself"),
        }
    }
}

fn next_fd(fds: &BTreeMap<i32, FdEntry>) -> i32 {
    (3..).find(|fd| !fds.contains_key(fd)).unwrap_or(3)
}

impl App<B, HostState> for DrillApp {
    fn accepted(&mut self, listener: SocketId, _socket: SocketId, _cx: &mut HostCx<'_>) {
        self.shared.borrow_mut().acceptable.insert(listener);
    }

    fn readable(&mut self, socket: SocketId, _cx: &mut HostCx<'_>) {
        self.shared.borrow_mut().readable.insert(socket);
    }

    fn peer_closed(&mut self, socket: SocketId, _cx: &mut HostCx<'_>) {
        self.shared.borrow_mut().eof.insert(socket);
    }

    fn error(&mut self, socket: SocketId, error: SocketError, _cx: &mut HostCx<'_>) {
        self.shared.borrow_mut().errors.insert(socket, error);
    }

    fn closed(&mut self, socket: SocketId, _cx: &mut HostCx<'_>) {
        self.shared.borrow_mut().closed.push(socket);
    }

    fn poll(&mut self, cx: &mut HostCx<'_>) -> usize {
        let mut sh = self.shared.borrow_mut();
        let mut work = 0;
        if let Some(p) = sh.pending.take() {
            work += 1;
            let blocking = match &p {
                Pending::Call(c) => call_fd(c)
                    .and_then(|fd| sh.fds.get(&fd))
                    .is_some_and(|e| !e.nonblocking),
                Pending::ConnectWait(_) => true,
            };
            let status = match DrillApp::exec(&mut sh, &p, cx) {
                Exec::Done(r) => CallStatus::Done(r),
                Exec::WouldBlock if blocking => {
                    if sh.blocked.is_none() {
                        sh.blocked = Some(p);
                    }
                    CallStatus::Blocked
                }
                Exec::WouldBlock => CallStatus::Done(CallResult::err(libc::EAGAIN)),
            };
            sh.done = Some(status);
        } else if let Some(p) = sh.blocked.clone() {
            if let Exec::Done(r) = DrillApp::exec(&mut sh, &p, cx) {
                work += 1;
                sh.blocked = None;
                sh.blocked_done = Some((cx.now_ns(), r));
            }
        }
        work
    }
}

/// The fd a call is about.
fn call_fd(c: &Syscall) -> Option<i32> {
    match c {
        Syscall::Socket { .. } | Syscall::Poll { .. } => None,
        Syscall::Bind { fd, .. }
        | Syscall::Listen { fd, .. }
        | Syscall::Accept { fd }
        | Syscall::Connect { fd, .. }
        | Syscall::Write { fd, .. }
        | Syscall::Read { fd, .. }
        | Syscall::Shutdown { fd, .. }
        | Syscall::Close { fd }
        | Syscall::SetSockOpt { fd, .. }
        | Syscall::GetSockOpt { fd, .. }
        | Syscall::SetNonBlocking { fd, .. }
        | Syscall::GetFlags { fd } => Some(*fd),
    }
}

/// The running host and the runner's end of the wire.
struct Running {
    host: TcpHost<MemoryPort, DrillApp>,
    peer: MemoryPort,
    wire: MemoryWire,
    pool: Pool,
    /// When the host next needs a turn, ns.
    next_deadline: Option<u64>,
}

/// tpa's stack on a virtual clock.
pub struct TpaBackend {
    setup: Setup,
    cfg: TcpConfig,
    seed: u64,
    clock: VirtualClock,
    shared: Rc<RefCell<Shared>>,
    run: Option<Running>,
    outbound: VecDeque<Outbound>,
}

impl TpaBackend {
    /// A backend for a script run with `setup`; the stack's random
    /// choices (ISN, ports, timestamp offset) come from `seed`.
    pub fn new(setup: Setup, seed: u64) -> Self {
        let clock = VirtualClock::new();
        clock.advance_to(BASE_NS);
        TpaBackend {
            setup,
            cfg: TcpConfig {
                // Linux's default: Nagle's algorithm on.
                nodelay: false,
                ..TcpConfig::default()
            },
            seed,
            clock,
            shared: Rc::new(RefCell::new(Shared::default())),
            run: None,
            outbound: VecDeque::new(),
        }
    }

    /// The configuration the stack runs (or will run) with.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    fn interface(&self) -> Result<Interface, BackendError> {
        let bad = |what: &str| BackendError::Failed(format!("bad {what} address"));
        let mut iface = Interface::new(MAC_A);
        match (self.setup.local_ip, self.setup.ip) {
            (IpAddr::V4(a), _) => {
                iface = iface.with_ipv4(Ipv4Cidr::new(a, self.setup.prefix_len));
            }
            (IpAddr::V6(a), IpVersion::V6) => {
                iface = iface.with_ipv6(Ipv6Cidr::new(a, self.setup.prefix_len));
            }
            _ => return Err(bad("local")),
        }
        Ok(iface)
    }

    fn start(&mut self) -> Result<&mut Running, BackendError> {
        if self.run.is_none() {
            let (pool, wire) = memory_wire(
                format!("drill-{}", std::process::id()),
                &self.clock,
                WireConfig {
                    mtu: self.setup.mtu,
                    ..WireConfig::default()
                },
            );
            let port = wire
                .port(End::A, 0)
                .map_err(|e| BackendError::Failed(format!("wire port: {e}")))?;
            let peer = wire
                .port(End::B, 0)
                .map_err(|e| BackendError::Failed(format!("wire port: {e}")))?;
            let mut state = HostState::new(self.interface()?, self.cfg.clone(), self.seed);
            state.egress = state.egress.with_gateway(self.setup.gateway_ip);
            let app = DrillApp {
                shared: self.shared.clone(),
            };
            let host = TcpHost::build(port, state, app).with_time_source(self.clock.clone().into());
            self.run = Some(Running {
                host,
                peer,
                wire,
                pool,
                next_deadline: None,
            });
        }
        Ok(self.run.as_mut().expect("started above"))
    }

    /// Runs the host at the current instant until nothing more happens:
    /// loop turns, frames out collected (ARP and NDP answered).
    fn settle(&mut self) -> Result<(), BackendError> {
        let now = self.clock.now_ns();
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        for _ in 0..TURNS_PER_INSTANT {
            let stats = run.host.run_once_at(now);
            run.next_deadline = stats.next_deadline_ns;
            let mut rx: Burst<B> = Burst::new();
            let mut frames = 0;
            loop {
                let n = run.peer.rx_burst(&mut rx);
                if n == 0 {
                    break;
                }
                frames += n;
                let mut replies = Vec::new();
                for buf in rx.drain() {
                    let bytes: Vec<u8> = buf.segments().flatten().copied().collect();
                    drop(buf);
                    if let Some(reply) = answer_neighbor(&bytes) {
                        replies.push(reply);
                    } else if bytes.len() > 14 {
                        let et = u16::from_be_bytes([bytes[12], bytes[13]]);
                        if et == 0x0800 || et == 0x86dd {
                            self.outbound.push_back(Outbound {
                                at_us: (now - BASE_NS) / 1000,
                                packet: bytes[14..].to_vec(),
                            });
                        }
                    }
                }
                for r in replies {
                    send_frame(&mut run.peer, &r)?;
                }
            }
            if !stats.busy() && frames == 0 {
                return Ok(());
            }
        }
        Err(BackendError::Failed(format!(
            "the stack was still busy after {TURNS_PER_INSTANT} turns at one instant"
        )))
    }

    /// Moves the clock to `target_ns` through every deadline on the way,
    /// settling at each; stops early at a packet out when `until_packet`.
    fn run_to(&mut self, target_ns: u64, until_packet: bool) -> Result<(), BackendError> {
        loop {
            self.settle()?;
            let now = self.clock.now_ns();
            if now >= target_ns || (until_packet && !self.outbound.is_empty()) {
                return Ok(());
            }
            let next = self
                .run
                .as_ref()
                .and_then(|r| r.next_deadline)
                .map_or(target_ns, |d| d.max(now + 1_000).min(target_ns));
            self.clock.advance_to(next);
        }
    }

    fn call_local(&mut self, c: &Syscall) -> Result<Option<CallResult>, BackendError> {
        let started = self.run.is_some();
        let mut sh = self.shared.borrow_mut();
        let r = match c {
            Syscall::Socket {
                family,
                nonblocking,
            } => {
                let want = match self.setup.ip {
                    IpVersion::V4 => Family::Inet,
                    IpVersion::V6 | IpVersion::V4MappedV6 => Family::Inet6,
                };
                if *family != want {
                    return Err(BackendError::Unsupported(format!(
                        "a {family:?} socket in a {:?} script",
                        self.setup.ip
                    )));
                }
                let fd = next_fd(&sh.fds);
                sh.fds.insert(
                    fd,
                    FdEntry {
                        fd: Fd::Fresh { bound: None },
                        family: *family,
                        nonblocking: *nonblocking,
                        linger_zero: false,
                    },
                );
                CallResult::ok(i64::from(fd))
            }
            Syscall::Bind { fd, addr } => match sh.fds.get_mut(fd) {
                None => CallResult::err(libc::EBADF),
                Some(FdEntry {
                    fd: Fd::Fresh { bound },
                    ..
                }) if bound.is_none() => {
                    let ip = addr.ip().to_canonical();
                    if !ip.is_unspecified() && ip != self.setup.local_ip.to_canonical() {
                        CallResult::err(libc::EADDRNOTAVAIL)
                    } else {
                        *bound = Some(*addr);
                        CallResult::ok(0)
                    }
                }
                Some(_) => CallResult::err(libc::EINVAL),
            },
            Syscall::SetNonBlocking { fd, on } => match sh.fds.get_mut(fd) {
                None => CallResult::err(libc::EBADF),
                Some(e) => {
                    e.nonblocking = *on;
                    CallResult::ok(0)
                }
            },
            Syscall::GetFlags { fd } => match sh.fds.get(fd) {
                None => CallResult::err(libc::EBADF),
                Some(e) => CallResult::ok(i64::from(
                    libc::O_RDWR | if e.nonblocking { libc::O_NONBLOCK } else { 0 },
                )),
            },
            Syscall::SetSockOpt {
                fd,
                opt,
                value,
                linger_secs,
            } => {
                let Some(e) = sh.fds.get_mut(fd) else {
                    return Ok(Some(CallResult::err(libc::EBADF)));
                };
                let on = *value != 0;
                match opt {
                    SockOpt::ReuseAddr | SockOpt::ReusePort => {}
                    SockOpt::Linger => {
                        if on && *linger_secs != 0 {
                            return Err(BackendError::Unsupported(
                                "SO_LINGER with a timeout (tpa: abort or close)".into(),
                            ));
                        }
                        e.linger_zero = on;
                    }
                    table_wide => {
                        let mut next = self.cfg.clone();
                        set_table_wide(&mut next, *table_wide, *value)?;
                        if next != self.cfg {
                            if started {
                                return Err(BackendError::Unsupported(format!(
                                    "{table_wide:?} changed after the stack started (a table-wide setting in tpa)"
                                )));
                            }
                            self.cfg = next;
                        }
                    }
                }
                CallResult::ok(0)
            }
            Syscall::GetSockOpt { fd, opt } if *opt != SockOpt::Error => {
                if !sh.fds.contains_key(fd) {
                    return Ok(Some(CallResult::err(libc::EBADF)));
                }
                let v = match opt {
                    SockOpt::NoDelay => i64::from(self.cfg.nodelay),
                    SockOpt::KeepAlive => i64::from(self.cfg.keepalive),
                    SockOpt::KeepIdle => (self.cfg.keepalive_idle_ns / 1_000_000_000) as i64,
                    SockOpt::KeepIntvl => (self.cfg.keepalive_interval_ns / 1_000_000_000) as i64,
                    SockOpt::KeepCnt => i64::from(self.cfg.keepalive_probes),
                    other => {
                        return Err(BackendError::Unsupported(format!("getsockopt {other:?}")))
                    }
                };
                CallResult {
                    ret: 0,
                    value: Some(v),
                    ..CallResult::default()
                }
            }
            Syscall::Close { fd }
                if matches!(
                    sh.fds.get(fd),
                    Some(FdEntry {
                        fd: Fd::Fresh { .. },
                        ..
                    })
                ) =>
            {
                sh.fds.remove(fd);
                CallResult::ok(0)
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }
}

impl Backend for TpaBackend {
    fn name(&self) -> &'static str {
        "tpa"
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), BackendError> {
        if self.run.is_some() {
            return Err(BackendError::Unsupported(format!(
                "sysctl {key} after the stack started"
            )));
        }
        apply_sysctl(&mut self.cfg, key, value)
    }

    fn now_us(&self) -> u64 {
        (self.clock.now_ns() - BASE_NS) / 1000
    }

    fn advance_to(&mut self, at_us: u64) -> Result<(), BackendError> {
        self.run_to(BASE_NS.saturating_add(at_us.saturating_mul(1000)), false)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), BackendError> {
        self.start()?;
        let et: u16 = if packet.first().is_some_and(|b| b >> 4 == 6) {
            0x86dd
        } else {
            0x0800
        };
        let mut frame = Vec::with_capacity(14 + packet.len());
        frame.extend_from_slice(&MAC_A.0);
        frame.extend_from_slice(&MAC_B.0);
        frame.extend_from_slice(&et.to_be_bytes());
        frame.extend_from_slice(packet);
        let run = self.run.as_mut().expect("started");
        send_frame(&mut run.peer, &frame)?;
        self.settle()
    }

    fn next_outbound(&mut self, until_us: u64) -> Result<Option<Outbound>, BackendError> {
        if self.outbound.is_empty() {
            self.run_to(BASE_NS.saturating_add(until_us.saturating_mul(1000)), true)?;
        }
        Ok(self.outbound.pop_front())
    }

    fn call(&mut self, call: &Syscall) -> Result<CallStatus, BackendError> {
        if let Some(r) = self.call_local(call)? {
            return Ok(CallStatus::Done(r));
        }
        self.start()?;
        self.shared.borrow_mut().pending = Some(Pending::Call(call.clone()));
        self.settle()?;
        let status = self.shared.borrow_mut().done.take();
        status.ok_or_else(|| BackendError::Failed("the app did not run the call".into()))
    }

    fn take_blocked(&mut self) -> Option<(u64, CallResult)> {
        self.shared
            .borrow_mut()
            .blocked_done
            .take()
            .map(|(ns, r)| ((ns - BASE_NS) / 1000, r))
    }
}

impl Drop for TpaBackend {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            let Running {
                host,
                peer,
                wire,
                pool,
                ..
            } = run;
            drop((host, peer));
            wire.clear();
            drop(wire);
            // Every buffer back: a leak in the stack shows here.
            if !std::thread::panicking() {
                pool.assert_whole();
            }
        }
    }
}

fn send_frame(port: &mut MemoryPort, frame: &[u8]) -> Result<(), BackendError> {
    let mut buf = port
        .alloc()
        .ok_or_else(|| BackendError::Failed("the wire's pool is empty".into()))?;
    buf.append(frame.len())
        .map_err(|e| BackendError::Failed(format!("frame too long: {e:?}")))?
        .copy_from_slice(frame);
    let mut tx: Burst<B> = Burst::new();
    tx.push(buf);
    if port.tx_burst(&mut tx) != 1 {
        return Err(BackendError::Failed("the wire refused a frame".into()));
    }
    Ok(())
}

/// The reply of end B to an ARP request or a neighbor solicitation in
/// `frame`: every address is end B's (it is the gateway and the remote).
fn answer_neighbor(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.len() < 14 {
        return None;
    }
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    let src_mac = &frame[6..12];
    if et == 0x0806 && frame.len() >= 42 && frame[20..22] == [0, 1] {
        let arp = &frame[14..42];
        let mut r = Vec::with_capacity(42);
        r.extend_from_slice(src_mac);
        r.extend_from_slice(&MAC_B.0);
        r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&MAC_B.0);
        r.extend_from_slice(&arp[24..28]); // the target IP asked
        r.extend_from_slice(&arp[8..14]); // the asker's MAC
        r.extend_from_slice(&arp[14..18]); // the asker's IP
        return Some(r);
    }
    // ICMPv6 neighbor solicitation (type 135) without extension headers.
    if et == 0x86dd && frame.len() >= 14 + 40 + 24 && frame[14 + 6] == 58 && frame[54] == 135 {
        let ip = &frame[14..];
        let asker: [u8; 16] = ip[8..24].try_into().ok()?;
        let target: [u8; 16] = ip[48..64].try_into().ok()?;
        let mut icmp = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        icmp.extend_from_slice(&target);
        icmp.extend_from_slice(&[2, 1]);
        icmp.extend_from_slice(&MAC_B.0);
        let dst = if Ipv6Addr::from(asker).is_unspecified() {
            // DAD: answer to all-nodes.
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets()
        } else {
            asker
        };
        let mut acc: u32 = 0;
        for chunk in target.chunks(2).chain(dst.chunks(2)) {
            acc += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
        }
        acc += icmp.len() as u32 + 58;
        for chunk in icmp.chunks(2) {
            acc += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        let csum = !(acc as u16);
        icmp[2..4].copy_from_slice(&csum.to_be_bytes());
        let mut r = Vec::with_capacity(14 + 40 + icmp.len());
        r.extend_from_slice(src_mac);
        r.extend_from_slice(&MAC_B.0);
        r.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        r.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        r.extend_from_slice(&[58, 255]);
        r.extend_from_slice(&target);
        r.extend_from_slice(&dst);
        r.extend_from_slice(&icmp);
        return Some(r);
    }
    let _ = Ipv4Addr::UNSPECIFIED;
    None
}

/// Sets the table-wide equivalent of socket option `opt` in `cfg`.
fn set_table_wide(cfg: &mut TcpConfig, opt: SockOpt, value: i64) -> Result<(), BackendError> {
    let secs = (value.max(0) as u64) * 1_000_000_000;
    match opt {
        SockOpt::NoDelay => cfg.nodelay = value != 0,
        SockOpt::KeepAlive => cfg.keepalive = value != 0,
        SockOpt::MaxSeg => {
            cfg.mss = u16::try_from(value)
                .map_err(|_| BackendError::Unsupported(format!("TCP_MAXSEG {value}")))?
        }
        SockOpt::KeepIdle => cfg.keepalive_idle_ns = secs,
        SockOpt::KeepIntvl => cfg.keepalive_interval_ns = secs,
        SockOpt::KeepCnt => cfg.keepalive_probes = value.max(0) as u32,
        other => return Err(BackendError::Unsupported(format!("setsockopt {other:?}"))),
    }
    Ok(())
}

/// The sysctls tpa has a setting for (doc/conformance.md keeps the same
/// table): the key, the `[tcp]` setting, and how the value maps.
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.tcp_timestamps", "timestamps (0/1)"),
    ("net.ipv4.tcp_sack", "sack (0/1)"),
    ("net.ipv4.tcp_window_scaling", "window_scale (0/1)"),
    ("net.ipv4.tcp_syn_retries", "syn_retries"),
    ("net.ipv4.tcp_synack_retries", "syn_retries"),
    ("net.ipv4.tcp_retries2", "data_retries"),
    ("net.ipv4.tcp_keepalive_time", "keepalive_idle (s)"),
    ("net.ipv4.tcp_keepalive_intvl", "keepalive_interval (s)"),
    ("net.ipv4.tcp_keepalive_probes", "keepalive_probes"),
    (
        "net.ipv4.tcp_congestion_control",
        "congestion (reno → newreno, cubic)",
    ),
    (
        "net.ipv4.tcp_syncookies",
        "syn_cookies (0 off, 1 on_overflow, 2 always)",
    ),
    ("net.ipv4.tcp_recovery", "rack (bit 0 = RACK)"),
    ("net.ipv4.tcp_frto", "frto (0 off, else on)"),
    (
        "net.ipv4.tcp_slow_start_after_idle",
        "slow_start_after_idle (0/1)",
    ),
    ("net.ipv4.tcp_challenge_ack_limit", "challenge_ack_limit"),
    ("net.ipv4.tcp_max_tw_buckets", "time_wait_max"),
    ("net.ipv4.tcp_max_syn_backlog", "backlog"),
];

/// Applies sysctl `key = value` to `cfg`.
///
/// # Errors
///
/// `Unsupported` for a key tpa has no setting for, or a value it cannot
/// take.
pub fn apply_sysctl(cfg: &mut TcpConfig, key: &str, value: &str) -> Result<(), BackendError> {
    let key = key.replace('/', ".");
    let bad = || BackendError::Unsupported(format!("sysctl {key}={value}"));
    let num = || value.trim().parse::<u64>().map_err(|_| bad());
    let flag = || num().map(|v| v != 0);
    match key.as_str() {
        "net.ipv4.tcp_timestamps" => cfg.timestamps = flag()?,
        "net.ipv4.tcp_sack" => cfg.sack = flag()?,
        "net.ipv4.tcp_window_scaling" => cfg.window_scale = flag()?,
        "net.ipv4.tcp_syn_retries" | "net.ipv4.tcp_synack_retries" => {
            cfg.syn_retries = num()? as u32
        }
        "net.ipv4.tcp_retries2" => cfg.data_retries = num()? as u32,
        "net.ipv4.tcp_keepalive_time" => cfg.keepalive_idle_ns = num()? * 1_000_000_000,
        "net.ipv4.tcp_keepalive_intvl" => cfg.keepalive_interval_ns = num()? * 1_000_000_000,
        "net.ipv4.tcp_keepalive_probes" => cfg.keepalive_probes = num()? as u32,
        "net.ipv4.tcp_congestion_control" => {
            cfg.congestion = match value.trim() {
                "reno" => CongestionAlgorithm::NewReno,
                "cubic" => CongestionAlgorithm::Cubic,
                _ => return Err(bad()),
            }
        }
        "net.ipv4.tcp_syncookies" => {
            cfg.syn_cookies = match num()? {
                0 => SynCookieMode::Off,
                1 => SynCookieMode::OnOverflow,
                2 => SynCookieMode::Always,
                _ => return Err(bad()),
            }
        }
        "net.ipv4.tcp_recovery" => cfg.rack = num()? & 1 != 0,
        "net.ipv4.tcp_frto" => cfg.frto = flag()?,
        "net.ipv4.tcp_slow_start_after_idle" => cfg.slow_start_after_idle = flag()?,
        "net.ipv4.tcp_challenge_ack_limit" => cfg.challenge_ack_limit = num()? as u32,
        "net.ipv4.tcp_max_tw_buckets" => cfg.time_wait_max = num()? as usize,
        "net.ipv4.tcp_max_syn_backlog" => cfg.backlog = num()? as usize,
        _ => return Err(bad()),
    }
    Ok(())
}
