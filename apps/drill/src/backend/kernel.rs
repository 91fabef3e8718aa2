//! The Linux kernel as a [`Backend`], as packetdrill itself runs: the
//! script's socket calls are the kernel's, on real sockets in a namespace
//! of the script's own, on real time; its segments go through a TUN
//! device ([`crate::kernel`]).
//!
//! The script's descriptors (3, 4, ...) are mapped onto the process's
//! real ones, lowest free number first as in a fresh process. A call that
//! may block (on a blocking socket: `accept` or `read` with nothing
//! queued, `connect`, `poll` with a timeout and nothing ready, a `write`
//! or lingering `close` that does not finish at once) runs on its own
//! thread; the runner meanwhile plays the script's later lines and
//! collects the result from [`Backend::take_blocked`].

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use super::{
    Backend, BackendError, CallResult, CallStatus, Family, Outbound, Setup, ShutdownHow, SockOpt,
    Syscall,
};
use crate::kernel::calls::{self, Call, Detail, OptValue, Outcome, Pending};
use crate::kernel::tun::Capture;
use crate::kernel::{Lab, Link};

/// The congestion control every socket is pinned to unless the script
/// sets `net.ipv4.tcp_congestion_control` (tpa's default is CUBIC too).
pub const DEFAULT_CC: &str = "cubic";

/// The longest script time the kernel backend waits for: a script
/// whose events go past it (an RTO backed off to its 120 s maximum) is
/// unsupported here, so a directory run stays minutes long.
pub const MAX_SCRIPT_US: u64 = 150_000_000;

/// How long a call that could block but need not (a `write` on a
/// blocking socket, a lingering `close`, a failing `connect`) is given to
/// return before the runner is told it blocks.
const GRACE: Duration = Duration::from_millis(5);

/// The kernel's TCP in a namespace of its own.
#[derive(Debug)]
pub struct KernelBackend {
    // Field order is drop order: the capture thread stops before the
    // lab's TUN device closes.
    capture: Capture,
    lab: Lab,
    start: Instant,
    /// Script descriptor -> real descriptor.
    fds: BTreeMap<i32, i32>,
    /// The call that blocks, if one does.
    blocked: Option<(Pending, Call)>,
}

impl KernelBackend {
    /// A namespace and TUN device set up as `setup` says; time 0 is now.
    ///
    /// # Errors
    /// `Failed` if the namespace or device cannot be made (not root, no
    /// /dev/net/tun).
    pub fn new(setup: &Setup) -> Result<KernelBackend, BackendError> {
        let link = Link {
            local: setup.local_ip,
            prefix_len: setup.prefix_len,
            mtu: setup.mtu,
        };
        let lab = Lab::new(link, DEFAULT_CC).map_err(failed("setting up the namespace"))?;
        let capture = Capture::start(lab.tun().clone()).map_err(failed("reading the TUN"))?;
        Ok(KernelBackend {
            capture,
            lab,
            start: Instant::now(),
            fds: BTreeMap::new(),
            blocked: None,
        })
    }

    fn us_since_start(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    fn instant_of(&self, at_us: u64) -> Instant {
        self.start + Duration::from_micros(at_us)
    }

    /// The real descriptor behind script descriptor `fd`.
    fn real(&self, fd: i32) -> Option<i32> {
        self.fds.get(&fd).copied()
    }

    /// Maps a new real descriptor to the lowest free script number.
    fn adopt(&mut self, real: i32) -> i32 {
        let script = (3..)
            .find(|n| !self.fds.contains_key(n))
            .expect("fewer than 2^31 descriptors");
        self.fds.insert(script, real);
        script
    }

    /// The result of `outcome` for the script: a new descriptor mapped.
    fn finish(&mut self, call: &Call, outcome: Outcome) -> CallResult {
        let mut result = CallResult {
            ret: outcome.ret,
            errno: outcome.errno,
            ..CallResult::default()
        };
        match (call, outcome.detail) {
            (Call::Accept { .. } | Call::Socket { .. }, _) if outcome.ret >= 0 => {
                result.ret = i64::from(self.adopt(outcome.ret as i32));
            }
            (Call::Close { fd }, _) if outcome.ret == 0 => {
                self.fds.retain(|_, real| real != fd);
            }
            (Call::GetSockOpt { .. }, Detail::Opt(bytes)) => {
                result.value = bytes
                    .get(..4)
                    .map(|b| i64::from(i32::from_ne_bytes(b.try_into().expect("4 bytes"))));
            }
            (Call::Poll { .. }, Detail::Revents(revents)) => result.revents = revents,
            _ => {}
        }
        result
    }

    /// `call` translated to the kernel's, or the result the kernel would
    /// give at once (EBADF for a descriptor the script never had).
    fn translate(&self, call: &Syscall) -> Result<Call, CallResult> {
        let real = |fd: i32| self.real(fd).ok_or_else(|| CallResult::err(libc::EBADF));
        Ok(match call {
            Syscall::Socket {
                family,
                nonblocking,
            } => Call::Socket {
                domain: match family {
                    Family::Inet => libc::AF_INET,
                    Family::Inet6 => libc::AF_INET6,
                },
                ty: libc::SOCK_STREAM | if *nonblocking { libc::SOCK_NONBLOCK } else { 0 },
                protocol: libc::IPPROTO_TCP,
            },
            Syscall::Bind { fd, addr } => Call::Bind {
                fd: real(*fd)?,
                addr: *addr,
            },
            Syscall::Listen { fd, backlog } => Call::Listen {
                fd: real(*fd)?,
                backlog: *backlog,
            },
            Syscall::Accept { fd } => Call::Accept { fd: real(*fd)? },
            Syscall::Connect { fd, addr } => Call::Connect {
                fd: real(*fd)?,
                addr: *addr,
            },
            Syscall::Write { fd, len } => Call::Write {
                fd: real(*fd)?,
                len: *len,
            },
            Syscall::Read { fd, len } => Call::Read {
                fd: real(*fd)?,
                len: *len,
            },
            Syscall::Shutdown { fd, how } => Call::Shutdown {
                fd: real(*fd)?,
                how: match how {
                    ShutdownHow::Read => libc::SHUT_RD,
                    ShutdownHow::Write => libc::SHUT_WR,
                    ShutdownHow::Both => libc::SHUT_RDWR,
                },
            },
            Syscall::Close { fd } => Call::Close { fd: real(*fd)? },
            Syscall::SetSockOpt {
                fd,
                opt,
                value,
                linger_secs,
            } => {
                let (level, name) = option(*opt);
                let value = if *opt == SockOpt::Linger {
                    OptValue::Linger {
                        onoff: clamp(*value),
                        linger: clamp(*linger_secs),
                    }
                } else {
                    OptValue::Int(clamp(*value))
                };
                Call::SetSockOpt {
                    fd: real(*fd)?,
                    level,
                    name,
                    value,
                }
            }
            Syscall::GetSockOpt { fd, opt } => {
                let (level, name) = option(*opt);
                let len = if *opt == SockOpt::Linger { 8 } else { 4 };
                Call::GetSockOpt {
                    fd: real(*fd)?,
                    level,
                    name,
                    len,
                }
            }
            Syscall::SetNonBlocking { fd, on } => Call::SetFl {
                fd: real(*fd)?,
                flags: libc::O_RDWR | if *on { libc::O_NONBLOCK } else { 0 },
            },
            Syscall::GetFlags { fd } => Call::GetFl { fd: real(*fd)? },
            Syscall::Poll { fds, timeout_ms } => {
                // poll() ignores negative descriptors and reports POLLNVAL
                // for closed ones; a number the script never had is the
                // latter.
                let fds = fds
                    .iter()
                    .map(|&(fd, events)| (self.real(fd).unwrap_or(i32::MAX), events))
                    .collect();
                Call::Poll {
                    fds,
                    timeout_ms: *timeout_ms,
                }
            }
        })
    }

    /// How `call` is run: at once on this thread, on a thread of its own
    /// and reported blocked at once, or on a thread with [`GRACE`].
    fn plan(&self, call: &Call) -> Plan {
        let blocking_fd = |fd: i32| {
            let fl = calls::execute(&Call::GetFl { fd });
            fl.ret >= 0 && fl.ret as i32 & libc::O_NONBLOCK == 0
        };
        let ready = |fd: i32, events: i16| {
            let o = calls::execute(&Call::Poll {
                fds: vec![(fd, events)],
                timeout_ms: 0,
            });
            o.ret != 0
        };
        match *call {
            // A socket is made inside the namespace.
            Call::Socket { .. } => Plan::InNamespace,
            Call::Accept { fd }
            | Call::Read { fd, .. }
            | Call::Recv { fd, .. }
            | Call::Readv { fd, .. } => {
                if !blocking_fd(fd) || ready(fd, libc::POLLIN) {
                    Plan::Inline
                } else {
                    Plan::Blocks
                }
            }
            Call::Connect { fd, .. } => {
                if blocking_fd(fd) {
                    Plan::Grace
                } else {
                    Plan::Inline
                }
            }
            Call::Write { fd, .. } | Call::Send { fd, .. } | Call::Writev { fd, .. } => {
                if blocking_fd(fd) {
                    Plan::Grace
                } else {
                    Plan::Inline
                }
            }
            Call::Close { fd } => {
                let linger = calls::execute(&Call::GetSockOpt {
                    fd,
                    level: libc::SOL_SOCKET,
                    name: libc::SO_LINGER,
                    len: 8,
                });
                match linger.detail {
                    Detail::Opt(b) if b.get(..4).is_some_and(|on| on != [0; 4]) => Plan::Grace,
                    _ => Plan::Inline,
                }
            }
            Call::Poll {
                ref fds,
                timeout_ms,
            } => {
                let any_ready = calls::execute(&Call::Poll {
                    fds: fds.clone(),
                    timeout_ms: 0,
                });
                if timeout_ms == 0 || any_ready.ret != 0 {
                    Plan::Inline
                } else {
                    Plan::Blocks
                }
            }
            _ => Plan::Inline,
        }
    }
}

/// How a call is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// On the runner's thread: it cannot block.
    Inline,
    /// On a thread inside the namespace, waited for.
    InNamespace,
    /// On a thread of its own: it blocks.
    Blocks,
    /// On a thread of its own, waited for [`GRACE`]: it may block.
    Grace,
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), BackendError> {
        if key == "net.ipv4.tcp_congestion_control" {
            return self
                .lab
                .set_congestion_control(value)
                .map_err(|e| BackendError::Unsupported(format!("sysctl {key}={value}: {e}")));
        }
        match self.lab.namespace().set_sysctl(key, value) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                Err(BackendError::Unsupported(format!(
                    "sysctl {key}={value} (per-namespace net.* keys only): {e}"
                )))
            }
            Err(e) => Err(BackendError::Failed(format!("sysctl {key}={value}: {e}"))),
        }
    }

    fn now_us(&self) -> u64 {
        self.us_since_start(Instant::now())
    }

    fn advance_to(&mut self, at_us: u64) -> Result<(), BackendError> {
        within_limit(at_us)?;
        let until = self.instant_of(at_us);
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
        Ok(())
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), BackendError> {
        self.lab
            .tun()
            .send(packet)
            .map_err(failed("writing to the TUN"))
    }

    fn next_outbound(&mut self, until_us: u64) -> Result<Option<Outbound>, BackendError> {
        within_limit(until_us)?;
        let deadline = self.instant_of(until_us);
        loop {
            let Some((packet, at)) = self.capture.next(deadline) else {
                return Ok(None);
            };
            // The runner speaks TCP only; the kernel's other packets (an
            // ICMP error, IPv6 multicast listener reports) are not the
            // script's.
            if is_tcp(&packet) {
                return Ok(Some(Outbound {
                    at_us: self.us_since_start(at),
                    packet,
                }));
            }
        }
    }

    fn call(&mut self, call: &Syscall) -> Result<CallStatus, BackendError> {
        if self.blocked.is_some() {
            return Err(BackendError::Unsupported(
                "a socket call while another still blocks".into(),
            ));
        }
        let call = match self.translate(call) {
            Ok(c) => c,
            Err(result) => return Ok(CallStatus::Done(result)),
        };
        let ns = self.lab.namespace().clone();
        let outcome = match self.plan(&call) {
            Plan::Inline => calls::execute(&call),
            plan => {
                let pending =
                    Pending::start(&ns, call.clone()).map_err(failed("starting a call"))?;
                let waited = match plan {
                    Plan::InNamespace => pending.wait(Instant::now() + Duration::from_secs(10)),
                    Plan::Grace => pending.wait(Instant::now() + GRACE),
                    _ => None,
                };
                match waited {
                    Some(o) => o,
                    None if plan == Plan::InNamespace => {
                        return Err(BackendError::Failed(format!("{call:?} did not return")));
                    }
                    None => {
                        self.blocked = Some((pending, call));
                        return Ok(CallStatus::Blocked);
                    }
                }
            }
        };
        if let (Call::Socket { .. }, Some(fd)) =
            (&call, (outcome.ret >= 0).then_some(outcome.ret as i32))
        {
            self.lab
                .pin(fd)
                .map_err(failed("pinning the congestion control and window"))?;
        }
        Ok(CallStatus::Done(self.finish(&call, outcome)))
    }

    fn take_blocked(&mut self) -> Option<(u64, CallResult)> {
        let outcome = self.blocked.as_ref()?.0.wait(Instant::now())?;
        let (_, call) = self.blocked.take()?;
        let at = self.us_since_start(outcome.at);
        Some((at, self.finish(&call, outcome)))
    }
}

impl Drop for KernelBackend {
    fn drop(&mut self) {
        // Wake a call still blocked (shutdown makes accept, read and
        // connect return), collect what it made, and close every socket:
        // the namespace goes with the last of them.
        for &real in self.fds.values() {
            calls::execute(&Call::Shutdown {
                fd: real,
                how: libc::SHUT_RDWR,
            });
        }
        if let Some((pending, call)) = self.blocked.take() {
            let accepted = pending.wait(Instant::now() + Duration::from_secs(1));
            if let (Call::Accept { .. }, Some(o)) = (call, accepted) {
                if o.ret >= 0 {
                    calls::execute(&Call::Close { fd: o.ret as i32 });
                }
            }
        }
        for &real in self.fds.values() {
            calls::execute(&Call::Close { fd: real });
        }
    }
}

/// `Unsupported` past [`MAX_SCRIPT_US`].
fn within_limit(at_us: u64) -> Result<(), BackendError> {
    if at_us > MAX_SCRIPT_US {
        return Err(BackendError::Unsupported(format!(
            "script time {:.1} s: the kernel runs on real time, and waits at most {} s",
            at_us as f64 / 1e6,
            MAX_SCRIPT_US / 1_000_000
        )));
    }
    Ok(())
}

/// Whether `packet` is an IPv4 or IPv6 packet carrying TCP.
fn is_tcp(packet: &[u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(9) == Some(&(libc::IPPROTO_TCP as u8)),
        Some(6) => packet.get(6) == Some(&(libc::IPPROTO_TCP as u8)),
        _ => false,
    }
}

/// The level and name of `opt`.
fn option(opt: SockOpt) -> (i32, i32) {
    use SockOpt::*;
    let sol = libc::SOL_SOCKET;
    let tcp = libc::IPPROTO_TCP;
    match opt {
        ReuseAddr => (sol, libc::SO_REUSEADDR),
        ReusePort => (sol, libc::SO_REUSEPORT),
        KeepAlive => (sol, libc::SO_KEEPALIVE),
        SndBuf => (sol, libc::SO_SNDBUF),
        RcvBuf => (sol, libc::SO_RCVBUF),
        Linger => (sol, libc::SO_LINGER),
        Error => (sol, libc::SO_ERROR),
        NoDelay => (tcp, libc::TCP_NODELAY),
        MaxSeg => (tcp, libc::TCP_MAXSEG),
        KeepIdle => (tcp, libc::TCP_KEEPIDLE),
        KeepIntvl => (tcp, libc::TCP_KEEPINTVL),
        KeepCnt => (tcp, libc::TCP_KEEPCNT),
    }
}

/// An option value as the `int` setsockopt takes (saturating).
fn clamp(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn failed(what: &'static str) -> impl Fn(io::Error) -> BackendError {
    move |e| BackendError::Failed(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::super::IpVersion;
    use super::*;
    use crate::kernel::tests::{ip_tcp, Tcp, ACK, SYN};

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const LOCAL6: &str = "fd3d:fa7b:d17d::1";
    const REMOTE6: &str = "fd3d:fa7b:d17d:8888::1";

    fn setup(ip: IpVersion) -> Setup {
        let (local_ip, remote_ip, prefix_len, gateway_ip) = if ip.wire_v6() {
            (
                LOCAL6.parse().unwrap(),
                REMOTE6.parse().unwrap(),
                48,
                "fd3d:fa7b:d17d::2".parse().unwrap(),
            )
        } else {
            (
                IpAddr::V4(LOCAL),
                IpAddr::V4(REMOTE),
                16,
                IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2)),
            )
        };
        Setup {
            ip,
            local_ip,
            remote_ip,
            prefix_len,
            gateway_ip,
            mtu: 1500,
        }
    }

    fn backend() -> KernelBackend {
        KernelBackend::new(&setup(IpVersion::V4)).expect("set up the kernel backend (run as root)")
    }

    fn done(status: CallStatus) -> CallResult {
        match status {
            CallStatus::Done(r) => r,
            CallStatus::Blocked => panic!("the call blocked"),
        }
    }

    /// The TCP header of an outbound packet: (flags, seq, ack).
    fn tcp_of(out: &Outbound) -> (u8, u32, u32) {
        let ip_len = if out.packet[0] >> 4 == 6 { 40 } else { 20 };
        let t = &out.packet[ip_len..];
        let word = |at: usize| u32::from_be_bytes(t[at..at + 4].try_into().unwrap());
        (t[13], word(4), word(8))
    }

    /// socket, bind, listen, a blocked accept, the handshake from the
    /// TUN, the accepted descriptor, and close's FIN.
    fn passive_open(ip: IpVersion) {
        let setup = setup(ip);
        let mut b = KernelBackend::new(&setup).expect("set up the kernel backend (run as root)");
        assert_eq!(b.name(), "linux");
        let family = if ip == IpVersion::V4 {
            Family::Inet
        } else {
            Family::Inet6
        };
        let socket = Syscall::Socket {
            family,
            nonblocking: false,
        };
        assert_eq!(done(b.call(&socket).unwrap()), CallResult::ok(3));
        let bind = Syscall::Bind {
            fd: 3,
            addr: SocketAddr::new(setup.local_ip, 8080),
        };
        assert_eq!(done(b.call(&bind).unwrap()), CallResult::ok(0));
        let listen = Syscall::Listen { fd: 3, backlog: 1 };
        assert_eq!(done(b.call(&listen).unwrap()), CallResult::ok(0));
        let nodelay = Syscall::GetSockOpt {
            fd: 3,
            opt: SockOpt::NoDelay,
        };
        assert_eq!(done(b.call(&nodelay).unwrap()).value, Some(0));
        assert_eq!(
            b.call(&Syscall::Accept { fd: 3 }).unwrap(),
            CallStatus::Blocked
        );
        assert_eq!(b.take_blocked(), None);

        let (local, remote) = (setup.local_ip, setup.remote_ip);
        let syn = ip_tcp(
            remote,
            local,
            (40000, 8080),
            Tcp {
                seq: 0,
                ack: 0,
                flags: SYN,
                options: &[2, 4, 0x05, 0xb4],
            },
            &[],
        );
        let sent = b.now_us();
        b.inject(&syn).unwrap();
        let until = b.now_us() + 5_000_000;
        let synack = b.next_outbound(until).unwrap().expect("a SYN-ACK");
        assert_eq!(synack.packet[0] >> 4, if ip.wire_v6() { 6 } else { 4 });
        assert!(synack.at_us >= sent, "{} < {sent}", synack.at_us);
        let (flags, isn, ack) = tcp_of(&synack);
        assert_eq!((flags, ack), (SYN | ACK, 1));
        let ack = ip_tcp(
            remote,
            local,
            (40000, 8080),
            Tcp {
                seq: 1,
                ack: isn.wrapping_add(1),
                flags: ACK,
                options: &[],
            },
            &[],
        );
        b.inject(&ack).unwrap();
        let until = b.now_us() + 5_000_000;
        let accepted = loop {
            if let Some(r) = b.take_blocked() {
                break r;
            }
            assert!(b.now_us() < until, "accept never returned");
            b.advance_to(b.now_us() + 1_000).unwrap();
        };
        assert_eq!(accepted.1, CallResult::ok(4));
        assert!(accepted.0 >= synack.at_us);
        // Closing the connection sends its FIN.
        assert_eq!(
            done(b.call(&Syscall::Close { fd: 4 }).unwrap()),
            CallResult::ok(0)
        );
        let fin = b
            .next_outbound(b.now_us() + 5_000_000)
            .unwrap()
            .expect("a FIN");
        assert_eq!(tcp_of(&fin), (0x11, isn.wrapping_add(1), 1));
    }

    #[test]
    fn a_passive_open_over_ipv4() {
        passive_open(IpVersion::V4);
    }

    #[test]
    fn a_passive_open_over_ipv6() {
        passive_open(IpVersion::V6);
    }

    #[test]
    fn a_passive_open_on_a_mapped_address() {
        passive_open(IpVersion::V4MappedV6);
    }

    #[test]
    fn a_blocking_connect_returns_after_the_syn_ack() {
        let mut b = backend();
        let socket = Syscall::Socket {
            family: Family::Inet,
            nonblocking: false,
        };
        assert_eq!(done(b.call(&socket).unwrap()), CallResult::ok(3));
        let connect = Syscall::Connect {
            fd: 3,
            addr: SocketAddr::new(IpAddr::V4(REMOTE), 8080),
        };
        assert_eq!(b.call(&connect).unwrap(), CallStatus::Blocked);
        let syn = b
            .next_outbound(b.now_us() + 5_000_000)
            .unwrap()
            .expect("a SYN");
        let (flags, isn, _) = tcp_of(&syn);
        assert_eq!(flags, SYN);
        let port = u16::from_be_bytes([syn.packet[20], syn.packet[21]]);
        assert_eq!(b.take_blocked(), None);
        let synack = ip_tcp(
            REMOTE,
            LOCAL,
            (8080, port),
            Tcp {
                seq: 0,
                ack: isn.wrapping_add(1),
                flags: SYN | ACK,
                options: &[2, 4, 0x05, 0xb4],
            },
            &[],
        );
        b.inject(&synack).unwrap();
        let ack = b
            .next_outbound(b.now_us() + 5_000_000)
            .unwrap()
            .expect("an ACK");
        assert_eq!(tcp_of(&ack), (ACK, isn.wrapping_add(1), 1));
        let until = b.now_us() + 5_000_000;
        let connected = loop {
            if let Some(r) = b.take_blocked() {
                break r;
            }
            assert!(b.now_us() < until, "connect never returned");
            b.advance_to(b.now_us() + 1_000).unwrap();
        };
        assert_eq!(connected.1, CallResult::ok(0));
        // The second call after a connect: the socket's data goes out.
        let write = Syscall::Write { fd: 3, len: 100 };
        assert_eq!(done(b.call(&write).unwrap()), CallResult::ok(100));
    }

    #[test]
    fn descriptors_errors_and_settings() {
        let mut b = backend();
        let err = b.advance_to(MAX_SCRIPT_US + 1).unwrap_err();
        assert!(matches!(err, BackendError::Unsupported(_)), "{err}");
        let read = Syscall::Read { fd: 3, len: 10 };
        assert_eq!(done(b.call(&read).unwrap()), CallResult::err(libc::EBADF));
        let socket = Syscall::Socket {
            family: Family::Inet6,
            nonblocking: true,
        };
        assert_eq!(done(b.call(&socket).unwrap()), CallResult::ok(3));
        // Non-blocking: nothing to accept is EAGAIN at once, not a block.
        let listen = Syscall::Listen { fd: 3, backlog: 1 };
        assert_eq!(done(b.call(&listen).unwrap()), CallResult::ok(0));
        let accept = Syscall::Accept { fd: 3 };
        assert_eq!(
            done(b.call(&accept).unwrap()),
            CallResult::err(libc::EAGAIN)
        );
        let flags = done(b.call(&Syscall::GetFlags { fd: 3 }).unwrap());
        assert_eq!(flags.ret, i64::from(libc::O_RDWR | libc::O_NONBLOCK));
        assert_eq!(
            done(b.call(&Syscall::Close { fd: 3 }).unwrap()),
            CallResult::ok(0)
        );
        assert_eq!(
            done(b.call(&Syscall::Close { fd: 3 }).unwrap()),
            CallResult::err(libc::EBADF)
        );

        b.sysctl("net.ipv4.tcp_sack", "0").unwrap();
        assert_eq!(b.lab.namespace().sysctl("net.ipv4.tcp_sack").unwrap(), "0");
        b.sysctl("net.ipv4.tcp_congestion_control", "reno").unwrap();
        assert_eq!(b.lab.congestion_control(), "reno");
        for (key, value) in [
            ("kernel.hostname", "x"),
            ("net.ipv4.tcp_no_such_thing", "1"),
            ("net.ipv4.tcp_congestion_control", "nosuchcc"),
        ] {
            let err = b.sysctl(key, value).unwrap_err();
            assert!(matches!(err, BackendError::Unsupported(_)), "{key}: {err}");
        }
    }
}
