//! The stack under test, as the runner sees it: IP packets in, IP packets
//! out (with the time they left), socket calls with their result, and a
//! clock. [`tpa`] drives tpa's stack over a `MemoryWire` on a virtual
//! clock; a kernel backend (a TUN device and real sockets on real time)
//! implements the same trait.
//!
//! The runner resolves every `...` and symbol of a call before handing
//! it over: a backend sees concrete addresses, lengths and options.

pub mod kernel;
pub mod tpa;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Which IP the script runs over (`--ip_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`: AF_INET sockets, IPv4 packets.
    V4,
    /// `ipv6`: AF_INET6 sockets, IPv6 packets.
    V6,
    /// `ipv4-mapped-ipv6`: AF_INET6 sockets on `::ffff:a.b.c.d`
    /// addresses, IPv4 packets.
    V4MappedV6,
}

impl IpVersion {
    /// Whether packets on the wire are IPv6.
    pub fn wire_v6(self) -> bool {
        self == IpVersion::V6
    }
}

/// What a backend is set up with for one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The IP version.
    pub ip: IpVersion,
    /// The stack's address (packetdrill's `--local_ip`).
    pub local_ip: IpAddr,
    /// The runner's address (`--remote_ip`).
    pub remote_ip: IpAddr,
    /// The local prefix length (the remote is reached through
    /// `gateway_ip` when outside it).
    pub prefix_len: u8,
    /// The gateway of the local network (`--gateway_ip`).
    pub gateway_ip: IpAddr,
    /// The link MTU (`--mtu`).
    pub mtu: u16,
}

/// The protocol family of a `socket()` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
}

/// Which way a `shutdown()` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownHow {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

/// A socket option the runner knows, with `level` implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOpt {
    /// `SOL_SOCKET, SO_REUSEADDR`.
    ReuseAddr,
    /// `SOL_SOCKET, SO_REUSEPORT`.
    ReusePort,
    /// `SOL_SOCKET, SO_KEEPALIVE`.
    KeepAlive,
    /// `SOL_SOCKET, SO_SNDBUF`.
    SndBuf,
    /// `SOL_SOCKET, SO_RCVBUF`.
    RcvBuf,
    /// `SOL_SOCKET, SO_LINGER` (the value is `l_onoff`, see
    /// [`Syscall::SetSockOpt::linger_secs`]).
    Linger,
    /// `SOL_SOCKET, SO_ERROR` (get only).
    Error,
    /// `IPPROTO_TCP, TCP_NODELAY`.
    NoDelay,
    /// `IPPROTO_TCP, TCP_MAXSEG`.
    MaxSeg,
    /// `IPPROTO_TCP, TCP_KEEPIDLE` (seconds).
    KeepIdle,
    /// `IPPROTO_TCP, TCP_KEEPINTVL` (seconds).
    KeepIntvl,
    /// `IPPROTO_TCP, TCP_KEEPCNT`.
    KeepCnt,
}

/// A socket call with every argument resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syscall {
    /// `socket(family, SOCK_STREAM[|SOCK_NONBLOCK], IPPROTO_TCP)`.
    Socket {
        /// The family.
        family: Family,
        /// `SOCK_NONBLOCK`.
        nonblocking: bool,
    },
    /// `bind(fd, addr, len)`.
    Bind {
        /// The socket.
        fd: i32,
        /// The address.
        addr: SocketAddr,
    },
    /// `listen(fd, backlog)`.
    Listen {
        /// The socket.
        fd: i32,
        /// The backlog.
        backlog: i32,
    },
    /// `accept(fd, ..., ...)`: the result is the new fd.
    Accept {
        /// The listener.
        fd: i32,
    },
    /// `connect(fd, addr, len)`.
    Connect {
        /// The socket.
        fd: i32,
        /// The peer.
        addr: SocketAddr,
    },
    /// `write`/`send`/`writev`/`sendto`/`sendmsg` of `len` bytes (the
    /// bytes are the runner's choice: zeros).
    Write {
        /// The socket.
        fd: i32,
        /// How many bytes.
        len: usize,
    },
    /// `read`/`recv`/`readv`/`recvfrom`/`recvmsg` of at most `len` bytes.
    Read {
        /// The socket.
        fd: i32,
        /// At most this many bytes.
        len: usize,
    },
    /// `shutdown(fd, how)`.
    Shutdown {
        /// The socket.
        fd: i32,
        /// Which way.
        how: ShutdownHow,
    },
    /// `close(fd)`.
    Close {
        /// The socket.
        fd: i32,
    },
    /// `setsockopt(fd, level, name, [value], len)`.
    SetSockOpt {
        /// The socket.
        fd: i32,
        /// Which option.
        opt: SockOpt,
        /// The value (`l_onoff` for `SO_LINGER`).
        value: i64,
        /// `l_linger` for `SO_LINGER`.
        linger_secs: i64,
    },
    /// `getsockopt(fd, level, name, [value], [len])`: the value is
    /// returned in [`CallResult::value`].
    GetSockOpt {
        /// The socket.
        fd: i32,
        /// Which option.
        opt: SockOpt,
    },
    /// `fcntl(fd, F_SETFL, O_RDWR|O_NONBLOCK)`.
    SetNonBlocking {
        /// The socket.
        fd: i32,
        /// Whether `O_NONBLOCK` is set.
        on: bool,
    },
    /// `fcntl(fd, F_GETFL)`: returns the flags (`O_RDWR` = 2, with
    /// `O_NONBLOCK` when set).
    GetFlags {
        /// The socket.
        fd: i32,
    },
    /// `poll([{fd=.., events=..}, ...], n, timeout_ms)`: returns how many
    /// fds have events; their `revents` in [`CallResult::revents`].
    Poll {
        /// `(fd, events)` pairs (`POLLIN` = 1, `POLLOUT` = 4, ...).
        fds: Vec<(i32, i16)>,
        /// The timeout (ms; -1 for none).
        timeout_ms: i32,
    },
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallResult {
    /// The return value (-1 on error).
    pub ret: i64,
    /// The errno when `ret` is -1 (a `libc::E*` value).
    pub errno: Option<i32>,
    /// A `getsockopt`'s value.
    pub value: Option<i64>,
    /// A `poll`'s `revents`, in the order of its fds.
    pub revents: Vec<i16>,
}

impl CallResult {
    /// Returned `ret`.
    pub fn ok(ret: i64) -> Self {
        CallResult {
            ret,
            ..CallResult::default()
        }
    }

    /// Failed with `errno`.
    pub fn err(errno: i32) -> Self {
        CallResult {
            ret: -1,
            errno: Some(errno),
            ..CallResult::default()
        }
    }
}

/// Whether a call finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    /// It returned at once.
    Done(CallResult),
    /// It blocks (a blocking socket with nothing to do yet): the backend
    /// finishes it as time advances and hands the result out of
    /// [`Backend::take_blocked`].
    Blocked,
}

/// A packet the stack sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// When it left, µs since the script's start.
    pub at_us: u64,
    /// The IP packet (IPv4 or IPv6 header, TCP header, payload).
    pub packet: Vec<u8>,
}

/// Why a backend cannot do what the script asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The backend has no equivalent: the script is unsupported there.
    Unsupported(String),
    /// The backend broke (setup failed, a device vanished).
    Failed(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unsupported(s) => write!(f, "unsupported: {s}"),
            BackendError::Failed(s) => write!(f, "backend failed: {s}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// A stack the runner drives through one script. Time is µs since the
/// script's start; a virtual backend moves it only in [`advance_to`]
/// and [`next_outbound`], a real one with the wall clock.
///
/// [`advance_to`]: Backend::advance_to
/// [`next_outbound`]: Backend::next_outbound
pub trait Backend {
    /// The backend's name for reports (`tpa`, `linux`).
    fn name(&self) -> &'static str;

    /// Applies a sysctl (`net.ipv4.tcp_timestamps`, `"0"`) before the
    /// first call or packet: as the backend's equivalent setting, or
    /// `Unsupported` when it has none (a skipped setting would silently
    /// change what the script expects).
    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), BackendError>;

    /// Now, µs since the script's start.
    fn now_us(&self) -> u64;

    /// Lets time pass until `at_us` (no-op if it has), running the
    /// stack: its timers fire, what it sends is queued for
    /// [`next_outbound`](Backend::next_outbound), a blocked call may
    /// finish.
    fn advance_to(&mut self, at_us: u64) -> Result<(), BackendError>;

    /// Hands `packet` (an IP packet) to the stack now.
    fn inject(&mut self, packet: &[u8]) -> Result<(), BackendError>;

    /// The oldest packet the stack sent and the runner has not taken;
    /// waits (advancing time) until `until_us` for one; `None` if none
    /// was sent by then.
    fn next_outbound(&mut self, until_us: u64) -> Result<Option<Outbound>, BackendError>;

    /// Makes `call` now.
    fn call(&mut self, call: &Syscall) -> Result<CallStatus, BackendError>;

    /// The result of the blocked call and when (µs) it returned, once it
    /// has.
    fn take_blocked(&mut self) -> Option<(u64, CallResult)>;
}
